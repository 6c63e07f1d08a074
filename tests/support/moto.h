/*
 * AWS test servers for the aws provider's suites: moto_server (the independent AWS emulator,
 * started on 127.0.0.1 with request signing enforced) and a scripted HTTP server on
 * 127.0.0.1 that answers from canned, AWS-shaped replies and, given an upstream, forwards
 * everything else to it while recording every request (a counting, fault-injecting proxy in
 * front of moto). Nothing here talks to any address but 127.0.0.1.
 */
#ifndef TP_TEST_MOTO_H
#define TP_TEST_MOTO_H

#include <stdbool.h>
#include <sys/types.h>

#include <jansson.h>

#define TS_MOTO_HINT "moto_server is required: pip install 'moto[server]'"

typedef struct {
	pid_t pid;
	int port;
	char url[64];          /* "http://127.0.0.1:<port>/" */
	char access_key[64];   /* auth: the IAM user's access key */
	char secret_key[128];
	char log_path[256];
} ts_moto;

/*
 * Starts moto_server on a free port of 127.0.0.1 and waits (bounded) until it answers. With
 * auth, moto enforces SigV4 after INITIAL_NO_AUTH_ACTION_COUNT=3 calls, which are spent here
 * creating IAM user "tapestry", an inline allow-all policy and an access key (in
 * access_key/secret_key); from then on only signed requests with those keys pass. Fails the
 * test with TS_MOTO_HINT when moto_server is missing. The server dies with the test process
 * (PR_SET_PDEATHSIG).
 */
void ts_moto_start(ts_moto *m, bool auth);
void ts_moto_stop(ts_moto *m);
/* Sends one Query-protocol IAM call signed with the given keys ("Action=...&Version=..."
 * body); returns the HTTP status and sets *body (new string). */
long ts_moto_iam(const ts_moto *m, const char *key, const char *secret, const char *form,
		 char **body);

/* ---- scripted server / recording proxy */

typedef struct ts_aws_server ts_aws_server;

/* upstream: base URL to forward unscripted requests to (moto), or NULL (they get a 500). */
ts_aws_server *ts_aws_server_start(const char *upstream);
void ts_aws_server_stop(ts_aws_server *s);
/* "http://127.0.0.1:<port>/" */
const char *ts_aws_server_url(const ts_aws_server *s);
/*
 * Queues a reply for the next request with this action, used once, in the order queued.
 * The action of a request is its X-Amz-Target ("AmazonSSM.PutParameter"), else the Query
 * Action ("CreateStack"), else "<METHOD> <path>" ("PUT /latest/api/token"); NULL matches
 * any request.
 */
void ts_aws_server_reply(ts_aws_server *s, const char *action, int status,
			 const char *content_type, const char *body);
/* Queues raw bytes written as the whole reply (status line included), e.g. a truncated body
 * or a reply cut off by a closed connection. */
void ts_aws_server_reply_raw(ts_aws_server *s, const char *action, const char *raw);
/* A reply used for this action whenever nothing is queued for it (replaces an earlier one;
 * body NULL removes it). */
void ts_aws_server_default(ts_aws_server *s, const char *action, int status,
			   const char *content_type, const char *body);
/* Requests received with this action (NULL: all). */
int ts_aws_server_count(ts_aws_server *s, const char *action);
/* Requests received whose action writes (Create*, Update*, Delete*, Put*, Execute*, ...). */
int ts_aws_server_write_count(ts_aws_server *s);
/* Every request so far: [{"method","path","action","headers":{lower-case name: value},
 * "body"}] (new reference). */
json_t *ts_aws_server_requests(ts_aws_server *s);
/* Forgets the recorded requests (scripted replies stay queued). */
void ts_aws_server_reset(ts_aws_server *s);

#endif
