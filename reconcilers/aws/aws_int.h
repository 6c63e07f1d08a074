/*
 * aws_int.h — the private contract between the files of the aws provider.
 *
 * Layering, bottom up:
 *   sigv4.c        Signature Version 4 (canonical request, string to sign, header and
 *                  presigned-query signatures); pure functions, no I/O.
 *   xml.c          a small bounded DOM over expat for the Query protocol's XML replies.
 *   credentials.c  the credentials chain (environment, shared files, IMDSv2, optional STS
 *                  AssumeRole), cached and refreshed before expiry.
 *   query.c        the session: endpoints, signing, sending (Query and JSON 1.1 protocols),
 *                  AWS error parsing and classification, the SDK "standard" retry mode.
 *   cloudformation.c, ssm.c   the kinds' runtime slots.
 *   aws.c          schemas, checks, normalisation and the provider vtable.
 * Nothing outside reconcilers/aws includes this header except the aws test suites.
 */
#ifndef TP_AWS_INT_H
#define TP_AWS_INT_H

#include <pthread.h>

#include "../reconciler.h"

/* ---------------------------------------------------------------- credentials */

typedef struct {
	char *access_key_id;
	char *secret_access_key; /* never logged */
	char *session_token;     /* NULL for long-term keys; never logged */
	int64_t expires_ms;      /* wall clock; 0: does not expire */
	char source[128];        /* "environment", "profile default", "instance role r", ... */
} tp_aws_credentials;

/* Wipes and frees the strings; the struct can be reused. Accepts NULL. */
void tp_aws_credentials_clear(tp_aws_credentials *c);
void tp_aws_credentials_copy(tp_aws_credentials *out, const tp_aws_credentials *in);

/* ---------------------------------------------------------------- sigv4 */

typedef struct {
	const char *name;
	const char *value;
} tp_aws_header;

typedef struct {
	const char *method;
	/* The path as it appears in the request line; it is URI-encoded once more for the
	 * canonical request (services other than S3 "double-encode"). */
	const char *path;
	const char *query;           /* raw query string without '?', or NULL */
	const tp_aws_header *headers; /* every header to sign; must include host */
	size_t nheaders;
	const void *body;
	size_t body_len;
	const char *region;
	const char *service;
	int64_t time_ms;             /* signing time (wall clock) */
	bool normalize_path;         /* remove dot segments and empty segments (not S3) */
	bool sign_body;              /* add and sign x-amz-content-sha256 (header mode) */
	bool omit_session_token;     /* token sent but not signed (added after signing) */
	bool presign;                /* signature in the query string instead of headers */
	int64_t expires_s;           /* presign: X-Amz-Expires */
} tp_aws_sign_input;

typedef struct {
	char amz_date[17];      /* "20150830T123600Z" */
	char payload_hash[65];
	char signature[65];
	char *canonical_request;
	char *string_to_sign;
	char *signed_headers;   /* "host;x-amz-date" */
	char *authorization;    /* header mode: the Authorization header value */
	char *query;            /* presign mode: the complete query string to send */
} tp_aws_signature;

/* Signs a request. Header mode: the caller sends X-Amz-Date: amz_date, the session token as
 * X-Amz-Security-Token (when there is one), x-amz-content-sha256 (sign_body) and
 * Authorization. TP_EINVALID for a request that cannot be signed (no host header, bad
 * credentials). */
int tp_aws_sign(tp_aws_signature *out, const tp_aws_sign_input *in,
		const tp_aws_credentials *creds);
void tp_aws_signature_clear(tp_aws_signature *s);
/* RFC 3986 encoding as SigV4 wants it: everything but A-Za-z0-9-._~ (and '/' when
 * keep_slash) as %XX with upper-case hex. */
void tp_aws_uri_encode(tp_buf *out, const char *s, size_t len, bool keep_slash);

/* ---------------------------------------------------------------- xml */

typedef struct tp_aws_xml tp_aws_xml;
struct tp_aws_xml {
	char *name;           /* local name (namespace prefix dropped) */
	char *text;           /* concatenated character data directly inside ("" if none) */
	size_t text_len;
	tp_aws_xml *parent;
	tp_aws_xml *first;    /* children in document order */
	tp_aws_xml *last;
	tp_aws_xml *next;
};

#define TP_AWS_XML_MAX_DEPTH 64
#define TP_AWS_XML_MAX_NODES 200000

/* Parses a whole document. DOCTYPE and entity declarations are refused (no expansion
 * attacks), depth and node count are bounded. TP_EINVALID with "line L col C: reason". */
int tp_aws_xml_parse(tp_aws_xml **out, const char *data, size_t len);
void tp_aws_xml_free(tp_aws_xml *root);
/* First child element with this name, or NULL. */
const tp_aws_xml *tp_aws_xml_child(const tp_aws_xml *n, const char *name);
/* Follows a '/'-separated path of child names ("DescribeStacksResult/Stacks"). */
const tp_aws_xml *tp_aws_xml_path(const tp_aws_xml *n, const char *path);
/* Text of the element at path, or NULL when there is no such element. */
const char *tp_aws_xml_text(const tp_aws_xml *n, const char *path);
/* First element with this name anywhere below n (depth first), or NULL. */
const tp_aws_xml *tp_aws_xml_find(const tp_aws_xml *n, const char *name);

/* ---------------------------------------------------------------- session */

typedef struct tp_aws_session tp_aws_session;

/* Where credentials come from; tests point these at temporary files and local servers. */
typedef struct {
	const char *profile;           /* config `profile`, else AWS_PROFILE; NULL: default */
	const char *role_arn;          /* config `role_arn`: STS AssumeRole on top */
	const char *imds_endpoint;     /* NULL: AWS_EC2_METADATA_SERVICE_ENDPOINT, else the
					  link-local address */
} tp_aws_cred_options;

/* Waiting for CloudFormation: first poll after poll_ms, doubling up to poll_max_ms (with
 * jitter); an operation gives up after op_max_ms, a stack someone else is changing is
 * waited for at most busy_max_ms. */
typedef struct {
	int64_t poll_ms;
	int64_t poll_max_ms;
	int64_t op_max_ms;
	int64_t busy_max_ms;
} tp_aws_wait_policy;

struct tp_aws_session {
	tp_http_client *http;
	char *region;
	char *endpoint;        /* override for every service (moto, tests), or NULL */
	char *pipeline;
	tp_metrics *metrics;

	/* credentials (credentials.c) */
	pthread_mutex_t cred_mu;
	tp_aws_credentials base;     /* from the chain */
	tp_aws_credentials assumed;  /* role_arn: from STS */
	char *profile;
	bool profile_explicit;
	char *role_arn;
	char *imds_endpoint;
	char *imds_token;
	int64_t imds_token_expires_ms;
	bool imds_v1;                /* the token request was refused with 404/405 */

	/* who the credentials belong to (credentials.c, STS GetCallerIdentity once a session) */
	pthread_mutex_t identity_mu;
	bool identity_known;
	char partition[24];          /* "aws", "aws-cn", "aws-us-gov", ... */
	char account[16];            /* 12 digits */

	/* retries (query.c) */
	pthread_mutex_t retry_mu;
	int retry_tokens;
	int max_attempts;
	int64_t retry_base_ms;
	int64_t throttle_base_ms;
	int64_t retry_cap_ms;

	tp_aws_wait_policy wait;

	/* request counts by "service.Action" (tests and debugging) */
	pthread_mutex_t count_mu;
	json_t *counts;
};

/* Opens a session: region (config, else AWS_REGION / AWS_DEFAULT_REGION), endpoint override,
 * credentials options. Credentials are fetched lazily, on the first signed request. */
int tp_aws_session_new(tp_aws_session **out, const char *region, const char *endpoint,
		       const char *pipeline, const tp_aws_cred_options *copts);
void tp_aws_session_free(tp_aws_session *s);
/* How many requests were sent for "cloudformation.CreateStack", "ssm.PutParameter"
 * (attempts, retries included); "*" counts every request. */
int tp_aws_session_count(tp_aws_session *s, const char *what);
/* Requests for actions that write (Create*, Update*, Delete*, Put*, Execute*, ...). */
int tp_aws_session_write_count(tp_aws_session *s);

/* The credentials to sign with now (refreshed when they expire within 5 minutes). */
int tp_aws_session_credentials(tp_aws_session *s, tp_aws_credentials *out);
/* The partition and account the session's credentials act in (STS GetCallerIdentity on
 * first use, then remembered for the session): what ARNs of the objects it makes hold. */
int tp_aws_session_identity(tp_aws_session *s, char partition[24], char account[16]);
/* Forgets cached credentials (after ExpiredToken) so the next call fetches new ones. */
void tp_aws_session_invalidate_credentials(tp_aws_session *s);
/* The chain without STS: environment, profile, IMDS (credentials.c, for tests). */
int tp_aws_credentials_resolve(tp_aws_session *s, tp_aws_credentials *out);

/* Parsed AWS error of a failed call. */
typedef struct {
	long status;
	char code[128];
	char message[1024];
	char request_id[128];
} tp_aws_error;

/* Classifies an AWS error as Tapestry's codes: throttling → TP_ETHROTTLED, transient →
 * TP_ETRANSIENT, auth → TP_EAUTH, else by HTTP status. */
int tp_aws_error_class(const tp_aws_error *e);
/* Parses an error reply (Query XML in any of its shapes, JSON 1.1, or anything else such
 * as a proxy's HTML page) into e. */
void tp_aws_error_parse(tp_aws_error *e, const tp_http_reply *r);

/* One Query-protocol call: params are form fields (name → string value) without Action and
 * Version; *out (when out is not NULL) receives the parsed reply document. On failure err (may be NULL) receives
 * the AWS error and the message "<service> <Action>: <Code>: <Message>" is set. */
typedef struct {
	const char *service;   /* signing name and endpoint prefix: "cloudformation", "sts" */
	const char *version;   /* API version: "2010-05-15" */
	const char *action;
	const char *address;   /* resource address for logs, or NULL */
} tp_aws_call;

int tp_aws_query(tp_aws_session *s, const tp_aws_call *call, const json_t *params,
		 tp_aws_xml **out, tp_aws_error *err);
/* The same, signed with the given credentials instead of the session's (STS AssumeRole). */
int tp_aws_query_creds(tp_aws_session *s, const tp_aws_call *call, const json_t *params,
		       const tp_aws_credentials *creds, tp_aws_xml **out, tp_aws_error *err);
/* One JSON 1.1 call (X-Amz-Target: <target_prefix>.<action>). *out: the reply object. */
int tp_aws_json(tp_aws_session *s, const tp_aws_call *call, const char *target_prefix,
		const json_t *body, json_t **out, tp_aws_error *err);
/* The URL of a service for this session ("https://ssm.us-east-1.amazonaws.com/" or the
 * override). New string. */
char *tp_aws_service_url(const tp_aws_session *s, const char *service);
/* Form-encodes params (sorted by name) for the Query protocol. */
int tp_aws_form_encode(tp_buf *out, const char *action, const char *version,
		       const json_t *params);

/* ---------------------------------------------------------------- cloudformation */

/* How a stack status is handled. */
typedef enum {
	TP_AWS_STACK_UNKNOWN,       /* not a status this code knows: refused before writing */
	TP_AWS_STACK_OK,            /* CREATE/UPDATE/IMPORT_COMPLETE, UPDATE_ROLLBACK_COMPLETE */
	TP_AWS_STACK_BUSY,          /* *_IN_PROGRESS except REVIEW_IN_PROGRESS */
	TP_AWS_STACK_DEAD,          /* a failed create: ROLLBACK_COMPLETE/FAILED, CREATE_FAILED */
	TP_AWS_STACK_BROKEN,        /* UPDATE_ROLLBACK_FAILED, UPDATE_FAILED, ... */
	TP_AWS_STACK_DELETE_FAILED,
	TP_AWS_STACK_GONE,          /* DELETE_COMPLETE */
	TP_AWS_STACK_REVIEW         /* REVIEW_IN_PROGRESS: created by an unexecuted change set */
} tp_aws_stack_class;

tp_aws_stack_class tp_aws_stack_status_class(const char *status);

/* One stack of a DescribeStacks reply. */
typedef struct {
	char *id;
	char *name;
	char *status;
	char *reason;
	json_t *parameters;   /* {key: value} ("****" for NoEcho) */
	json_t *outputs;      /* {key: value} */
	json_t *tags;         /* {key: value} */
	json_t *capabilities; /* [..] */
	bool termination_protection;
	int timeout_minutes;  /* 0: none */
} tp_aws_stack;

int tp_aws_stack_parse(tp_aws_stack *out, const tp_aws_xml *member);
void tp_aws_stack_clear(tp_aws_stack *s);
/* A DescribeStacks reply: *out (n stacks) and the NextToken (NULL on the last page). */
int tp_aws_stacks_parse(tp_aws_stack **out, size_t *n, char **next_token,
			const tp_aws_xml *doc);

typedef struct {
	char *id;
	char *logical_id;
	char *type;
	char *status;
	char *reason;
	char *token;     /* ClientRequestToken of the operation (AWS; moto leaves it out) */
	char *timestamp;
} tp_aws_event;

void tp_aws_event_clear(tp_aws_event *e);
/* A DescribeStackEvents reply, newest first. */
int tp_aws_events_parse(tp_aws_event **out, size_t *n, char **next_token,
			const tp_aws_xml *doc);
/* A DescribeChangeSet reply: the resource changes ([{"Action","LogicalResourceId",
 * "PhysicalResourceId","ResourceType","Replacement"}]), Status and StatusReason. */
int tp_aws_change_set_parse(json_t **changes, char **status, char **reason,
			    const tp_aws_xml *doc);
/* A ListStackResources reply. */
int tp_aws_resources_parse(json_t **out, char **next_token, const tp_aws_xml *doc);

/* ---------------------------------------------------------------- kinds */

#define TP_AWS_OWNER_TAG "tapestry:owner"

/* Runtime slots (cloudformation.c, ssm.c). */
int tp_aws_stack_observe(void *session, const tp_op *ops, size_t n, json_t **out);
int tp_aws_stack_create(void *session, const tp_op *op, tp_op_result *out);
int tp_aws_stack_update(void *session, const tp_op *op, tp_op_result *out);
int tp_aws_stack_remove(void *session, const tp_op *op);
int tp_aws_stack_adopt(void *session, const tp_op *op, tp_op_result *out);
/* Validates a template's syntax (JSON, or YAML with CloudFormation's short-form tags). */
int tp_aws_template_check(const char *what, const char *text, size_t len);
/* Resource changes a stack update would make, from a change set that is created, described
 * and deleted again (read-only for the stack): [{"Action","LogicalResourceId",
 * "ResourceType","Replacement"}...]. *out is NULL when the stack does not exist. */
int tp_aws_stack_change_set(void *session, const tp_op *op, json_t **out);

int tp_aws_ssm_observe(void *session, const tp_op *ops, size_t n, json_t **out);
int tp_aws_ssm_create(void *session, const tp_op *op, tp_op_result *out);
int tp_aws_ssm_update(void *session, const tp_op *op, tp_op_result *out);
int tp_aws_ssm_remove(void *session, const tp_op *op);
int tp_aws_ssm_adopt(void *session, const tp_op *op, tp_op_result *out);
int tp_aws_ssm_resolve_secret(void *session, const char *location, char **out);

#endif
