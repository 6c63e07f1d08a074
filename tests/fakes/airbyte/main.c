/*
 * fake_airbyte — a strict fake of the Airbyte public API (the subset Tapestry uses:
 * applications/token, workspaces, sources, destinations, connections, streams, jobs) for the
 * reconciler's tests and the demo's embedded Airbyte. This file is the server: command line,
 * HTTP (libmicrohttpd, 127.0.0.1 only), bearer tokens, injected latency and failures, the
 * request log, and the test-control endpoints; api.c holds the resources.
 *
 *   fake_airbyte --port 0 --client-id X --client-secret Y [--log FILE] [--latency-ms N]
 *                [--fail-every N] [--fail-status CODE] [--fail-rate SPEC] [--retry-after S]
 *                [--seed N] [--token-ttl S] [--workspace NAME] [--public-url URL]
 *                [--job-seconds N]
 *
 *   --port N          listen on 127.0.0.1:N (0: pick a free port). The first line on stdout
 *                     is "fake_airbyte listening on http://127.0.0.1:<port>" once it accepts.
 *   --client-id/--client-secret
 *                     the application credentials POST /api/public/v1/applications/token takes
 *   --token-ttl S     lifetime of an access token (expires_in), default 900; an expired or
 *                     unknown token gets 401
 *   --log FILE        one JSON line per API request: {"seq","ts","method","path","query",
 *                     "status","fault","body"} (ts: arrival, ms since the epoch; fault: the
 *                     injected fault or ""; status 0 for a reset) with secret values in
 *                     request bodies shown as "(secret)" (the mask "**********" stays as
 *                     sent)
 *   --latency-ms N    every API request waits N ms before it is handled
 *   --fail-every N    every Nth API request (not counting token requests) fails with
 *                     --fail-status (default 503; 429 answers Retry-After) and changes
 *                     nothing
 *   --fail-rate SPEC  random faults on every API request, token requests included:
 *                     comma-separated FAULT:P with FAULT a status 500-599, 429 (answered
 *                     with Retry-After) or `reset` (the connection is closed with a TCP
 *                     reset, no answer), P its probability per request ("503:0.1,429:0.05,
 *                     reset:0.05", summing to at most 1); a faulted request changes nothing
 *   --retry-after S   Retry-After seconds of injected 429s (default 1; 0: no header)
 *   --seed N          seed of --fail-rate's draws (default 1): one draw per request, in
 *                     arrival order, so a sequential client sees the same faults every run
 *   --workspace NAME  name of the workspace that exists at start (default "default")
 *   --public-url URL  base of the absolute next/previous links (default this server's
 *                     http://127.0.0.1:<port>/api/public/v1), as a real server builds them from
 *                     its configured host
 *   --job-seconds N   a sync job runs N seconds before it succeeds (default 2)
 *
 * Test control (no authentication, never logged), below /_fake:
 *   POST /_fake/faults   {"status":N, "method":"PATCH", "path":"/connections", "count":1,
 *                         "skip":0, "body":"raw reply", "after":false, "retry_after":1}
 *                        after `skip` matching requests, the next `count` API requests
 *                        matching method and path prefix (below /api/public/v1) get that
 *                        status (problem JSON, or the raw body given); with "after": true the
 *                        request is handled first and only its reply is lost (the change
 *                        happened)
 *   DELETE /_fake/faults every injected fault is dropped
 *   POST /_fake/revoke   every access token issued so far becomes invalid (401)
 *   GET  /_fake/object?id=ID    the stored object, secrets in clear
 *   PATCH /_fake/object?id=ID   merge fields into the stored object (drift the API refuses)
 *   PUT  /_fake/catalog?sourceId=ID   [StreamProperties...]: what the source discovers
 *
 * SIGTERM or SIGINT stops it (exit 0).
 */
#include "fake.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <microhttpd.h>

#define MAX_BODY ((size_t)1 << 20)

#define MAX_RATES 16

typedef struct {
	char name[8];    /* "503", "429", "reset" */
	unsigned status; /* 0: reset */
	double p;
} fail_rate;

static struct {
	const char *client_id, *client_secret;
	int64_t token_ttl_s;
	int64_t latency_ms;
	long fail_every;
	unsigned fail_status;
	fail_rate rates[MAX_RATES];
	size_t nrates;
	int retry_after;
	uint64_t rng;
	char *public_base;
	FILE *log;
} cfg = {NULL, NULL, 900, 0, 0, 503, {{"", 0, 0}}, 0, 1, 1, NULL, NULL};

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static json_t *tokens; /* {token: expiry ms} */
static json_t *faults; /* [{status, method, path, count, body, after, retry_after}] */
static long api_count; /* API requests counted for --fail-every */
static long log_seq;

typedef struct {
	char *uri;
	tp_buf body;
	bool too_big;
	bool started; /* libmicrohttpd's first call carries no body yet */
} request;

/* ---------------------------------------------------------------- helpers */

static enum MHD_Result send_reply(struct MHD_Connection *conn, unsigned status,
				  const char *content_type, char *body, int retry_after)
{
	struct MHD_Response *resp;
	enum MHD_Result ret;
	size_t len = body ? strlen(body) : 0;
	resp = MHD_create_response_from_buffer(len, body ? body : (void *)"",
					       body ? MHD_RESPMEM_MUST_FREE
						    : MHD_RESPMEM_PERSISTENT);
	if (!resp) {
		free(body);
		return MHD_NO;
	}
	if (body && content_type)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
	if (retry_after >= 0) {
		char ra[16];
		snprintf(ra, sizeof(ra), "%d", retry_after);
		MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, ra);
	}
	ret = MHD_queue_response(conn, status, resp);
	MHD_destroy_response(resp);
	return ret;
}

static enum MHD_Result send_fk(struct MHD_Connection *conn, fk_reply *r)
{
	char *text = r->body ? json_dumps(r->body, JSON_COMPACT) : NULL;
	enum MHD_Result ret = send_reply(conn, r->status, r->content_type, text, r->retry_after);
	json_decref(r->body);
	r->body = NULL;
	return ret;
}

static int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Percent-decoding ('+' is a space in forms and queries). */
static char *url_decode(const char *s, size_t n)
{
	char *out = tp_malloc(n + 1);
	size_t o = 0;
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '%' && i + 2 < n && hexval(s[i + 1]) >= 0 && hexval(s[i + 2]) >= 0) {
			out[o++] = (char)(hexval(s[i + 1]) * 16 + hexval(s[i + 2]));
			i += 2;
		} else {
			out[o++] = s[i] == '+' ? ' ' : s[i];
		}
	}
	out[o] = '\0';
	return out;
}

/* "a=1&b=2&a=3" → {"a": ["1", "3"], "b": ["2"]} */
static json_t *parse_pairs(const char *text)
{
	json_t *o = json_object();
	const char *p = text;
	while (p && *p) {
		const char *amp = strchr(p, '&');
		size_t len = amp ? (size_t)(amp - p) : strlen(p);
		const char *eq = memchr(p, '=', len);
		if (len) {
			char *k = url_decode(p, eq ? (size_t)(eq - p) : len);
			char *v =
				eq ? url_decode(eq + 1, len - (size_t)(eq - p) - 1) : tp_strdup("");
			json_t *vals = json_object_get(o, k);
			if (!vals) {
				vals = json_array();
				json_object_set_new(o, k, vals);
			}
			json_array_append_new(vals, json_string(v));
			free(k);
			free(v);
		}
		p = amp ? amp + 1 : NULL;
	}
	return o;
}

static void log_request(int64_t ts, const char *method, const char *path, const char *query,
			unsigned status, const char *fault, const json_t *body)
{
	json_t *line;
	char *text;
	if (!cfg.log)
		return;
	line = json_pack("{s:I,s:I,s:s,s:s,s:s,s:i,s:s}", "seq", (json_int_t)++log_seq, "ts",
			 (json_int_t)ts, "method", method, "path", path, "query",
			 query ? query : "", "status", (int)status, "fault", fault);
	if (body) {
		const char *below = strncmp(path, FK_PREFIX, strlen(FK_PREFIX)) == 0
					    ? path + strlen(FK_PREFIX)
					    : path;
		json_object_set_new(line, "body", fk_api_redact_body(below, body));
	}
	text = json_dumps(line, JSON_COMPACT);
	fprintf(cfg.log, "%s\n", text);
	fflush(cfg.log);
	free(text);
	json_decref(line);
}

/* ---------------------------------------------------------------- authentication */

static void issue_token(fk_reply *out, const json_t *body)
{
	char err[512];
	uint8_t raw[24];
	char tok[64];
	const char *id, *secret;
	if (!body) {
		fk_problem(out, 400,
			   "the body must be JSON or a form with client_id, "
			   "client_secret and grant_type");
		return;
	}
	if (fk_validate(body, &fk_token_request, "", err, sizeof(err)) < 0) {
		fk_problem(out, 400, "%s", err);
		return;
	}
	id = tp_json_get_str(body, "client_id");
	secret = tp_json_get_str(body, "client_secret");
	if (!cfg.client_id || strcmp(id, cfg.client_id) != 0 ||
	    strcmp(secret, cfg.client_secret) != 0) {
		fk_problem(out, 401, "Invalid client credentials");
		return;
	}
	tp_random_bytes(raw, sizeof(raw));
	tp_hex_encode(tok, raw, sizeof(raw));
	json_object_set_new(tokens, tok, json_integer(tp_clock_mono_ms() + cfg.token_ttl_s * 1000));
	out->status = 200;
	out->content_type = "application/json";
	out->body = json_pack("{s:s,s:s,s:I}", "access_token", tok, "token_type", "Bearer",
			      "expires_in", (json_int_t)cfg.token_ttl_s);
}

/* NULL when the bearer token is valid, else the reason. */
static const char *auth_problem(struct MHD_Connection *conn)
{
	const char *h =
		MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
	json_t *exp;
	if (!h || strncasecmp(h, "Bearer ", 7) != 0)
		return "missing bearer token";
	exp = json_object_get(tokens, h + 7);
	if (!exp)
		return "invalid access token";
	if (tp_clock_mono_ms() >= json_integer_value(exp))
		return "the access token has expired";
	return NULL;
}

/* ---------------------------------------------------------------- faults */

/* --fail-rate's draw for this request (mutex held): an index into cfg.rates, or -1. One
 * uniform number per request (xorshift64*, seeded), compared with the cumulative
 * probabilities. */
static int draw_rate(void)
{
	double x, acc = 0;
	if (cfg.nrates == 0)
		return -1;
	cfg.rng ^= cfg.rng >> 12;
	cfg.rng ^= cfg.rng << 25;
	cfg.rng ^= cfg.rng >> 27;
	x = (double)((cfg.rng * 2685821657736338717ULL) >> 11) / 9007199254740992.0;
	for (size_t i = 0; i < cfg.nrates; i++) {
		acc += cfg.rates[i].p;
		if (x < acc)
			return (int)i;
	}
	return -1;
}

/* "503:0.1,429:0.05,reset:0.05" into cfg.rates; -1 when malformed. */
static int parse_rates(const char *spec)
{
	char *copy = tp_strdup(spec), *save = NULL;
	double sum = 0;
	int rc = 0;
	for (char *item = strtok_r(copy, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
		char *colon = strchr(item, ':'), *end = NULL, *stop = NULL;
		fail_rate *fr;
		long code = 0;
		double p;
		while (*item == ' ')
			item++;
		if (!colon || cfg.nrates == MAX_RATES) {
			rc = -1;
			break;
		}
		*colon = '\0';
		p = strtod(colon + 1, &end);
		if (end == colon + 1 || *end || !(p >= 0 && p <= 1)) {
			rc = -1;
			break;
		}
		if (strcmp(item, "reset") != 0) {
			code = strtol(item, &stop, 10);
			if (stop == item || *stop || !(code == 429 || (code >= 500 && code <= 599))) {
				rc = -1;
				break;
			}
		}
		fr = &cfg.rates[cfg.nrates++];
		snprintf(fr->name, sizeof(fr->name), "%s", item);
		fr->status = (unsigned)code;
		fr->p = p;
		sum += p;
	}
	if (sum > 1.0 + 1e-9)
		rc = -1;
	free(copy);
	return rc;
}

/* Closes the connection with a TCP reset instead of an answer (SO_LINGER 0 makes the close
 * an abort). */
static enum MHD_Result reply_reset(struct MHD_Connection *conn)
{
	const union MHD_ConnectionInfo *ci =
		MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
	if (ci) {
		struct linger lg = {1, 0};
		setsockopt(ci->connect_fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	}
	return MHD_NO;
}

/* The first injected fault matching this request (count taken), or NULL. Owned. */
static json_t *take_fault(const char *method, const char *below)
{
	size_t i;
	json_t *f;
	json_array_foreach(faults, i, f) {
		const char *m = tp_json_get_str(f, "method");
		const char *p = tp_json_get_str(f, "path");
		json_int_t left = json_integer_value(json_object_get(f, "count"));
		json_int_t skip = json_integer_value(json_object_get(f, "skip"));
		if (m && strcasecmp(m, method) != 0)
			continue;
		if (p && strncmp(below, p, strlen(p)) != 0)
			continue;
		if (skip > 0) {
			/* this many matching requests pass untouched first */
			json_object_set_new(f, "skip", json_integer(skip - 1));
			return NULL;
		}
		json_incref(f);
		if (left <= 1)
			json_array_remove(faults, i);
		else
			json_object_set_new(f, "count", json_integer(left - 1));
		return f;
	}
	return NULL;
}

static void fault_reply(fk_reply *out, const json_t *f, char **raw)
{
	unsigned status = (unsigned)json_integer_value(json_object_get(f, "status"));
	const char *body = tp_json_get_str(f, "body");
	json_t *ra = json_object_get(f, "retry_after");
	json_decref(out->body);
	out->body = NULL;
	out->retry_after = -1;
	if (body) {
		out->status = status;
		out->content_type = "application/json";
		*raw = tp_strdup(body);
	} else {
		fk_problem(out, status, "injected failure (%u)", status);
	}
	if (status == 429)
		out->retry_after = ra ? (int)json_integer_value(ra) : cfg.retry_after;
}

/* ---------------------------------------------------------------- control endpoints */

static enum MHD_Result control(struct MHD_Connection *conn, const char *method, const char *path,
			       json_t *query, const json_t *body)
{
	fk_reply r = {200, NULL, "application/json", -1};
	const char *id = json_string_value(json_array_get(json_object_get(query, "id"), 0));
	pthread_mutex_lock(&mu);
	if (strcmp(path, "/_fake/faults") == 0 && strcmp(method, "POST") == 0) {
		if (!json_is_object(body) || !json_is_integer(json_object_get(body, "status"))) {
			fk_problem(&r, 400, "faults: {\"status\": N, ...} expected");
		} else {
			json_t *f = json_deep_copy(body);
			if (!json_object_get(f, "count"))
				json_object_set_new(f, "count", json_integer(1));
			json_array_append_new(faults, f);
			r.body = json_pack("{s:b}", "ok", 1);
		}
	} else if (strcmp(path, "/_fake/faults") == 0 && strcmp(method, "DELETE") == 0) {
		json_array_clear(faults);
		r.body = json_pack("{s:b}", "ok", 1);
	} else if (strcmp(path, "/_fake/revoke") == 0 && strcmp(method, "POST") == 0) {
		json_object_clear(tokens);
		r.body = json_pack("{s:b}", "ok", 1);
	} else if (strcmp(path, "/_fake/object") == 0 && strcmp(method, "GET") == 0) {
		r.body = fk_api_raw(id);
		if (!r.body)
			fk_problem(&r, 404, "no object %s", id ? id : "(no id)");
	} else if (strcmp(path, "/_fake/object") == 0 && strcmp(method, "PATCH") == 0) {
		if (fk_api_raw_patch(id, body) < 0)
			fk_problem(&r, 404, "no object %s", id ? id : "(no id)");
		else
			r.body = fk_api_raw(id);
	} else if (strcmp(path, "/_fake/catalog") == 0 && strcmp(method, "PUT") == 0) {
		const char *sid =
			json_string_value(json_array_get(json_object_get(query, "sourceId"), 0));
		if (fk_api_set_catalog(sid, body) < 0)
			fk_problem(&r, 400, "catalog: a live sourceId and an array expected");
		else
			r.body = json_pack("{s:b}", "ok", 1);
	} else {
		fk_problem(&r, 404, "no control endpoint %s %s", method, path);
	}
	pthread_mutex_unlock(&mu);
	return send_fk(conn, &r);
}

/* ---------------------------------------------------------------- requests */

static void *on_uri(void *cls, const char *uri, struct MHD_Connection *conn)
{
	request *r = tp_calloc(1, sizeof(*r));
	(void)cls;
	(void)conn;
	r->uri = tp_strdup(uri);
	tp_buf_init(&r->body, MAX_BODY);
	return r;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
			 enum MHD_RequestTerminationCode toe)
{
	request *r = *con_cls;
	(void)cls;
	(void)conn;
	(void)toe;
	if (!r)
		return;
	if (r->body.ptr)
		explicit_bzero(r->body.ptr, r->body.len);
	tp_buf_free(&r->body);
	free(r->uri);
	free(r);
	*con_cls = NULL;
}

static json_t *parse_body(const request *r, const char *ctype, bool *bad)
{
	json_t *body = NULL;
	*bad = false;
	if (r->body.len == 0)
		return NULL;
	if (ctype && strncasecmp(ctype, "application/x-www-form-urlencoded", 33) == 0) {
		json_t *pairs = parse_pairs(tp_buf_cstr(&r->body));
		const char *k;
		json_t *v;
		body = json_object();
		json_object_foreach(pairs, k, v)
			json_object_set(body, k, json_array_get(v, 0));
		json_decref(pairs);
		return body;
	}
	body = json_loadb(r->body.ptr, r->body.len, JSON_REJECT_DUPLICATES, NULL);
	*bad = body == NULL;
	return body;
}

static enum MHD_Result handle(struct MHD_Connection *conn, request *r, const char *method)
{
	const char *ctype =
		MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
	char *path = tp_strdup(r->uri);
	char *qmark = strchr(path, '?');
	const char *raw_query = NULL;
	const char *below;
	json_t *query, *body, *fault = NULL;
	fk_reply out = {200, NULL, "application/json", -1};
	char *raw_reply = NULL;
	const char *fault_name = "";
	bool bad_body, counted;
	int64_t ts = tp_clock_now_ms();
	int rate = -1;
	enum MHD_Result ret;

	if (qmark) {
		*qmark = '\0';
		raw_query = qmark + 1;
	}
	query = parse_pairs(raw_query);
	body = parse_body(r, ctype, &bad_body);
	if (strncmp(path, "/_fake/", 7) == 0) {
		ret = control(conn, method, path, query, body);
		goto done;
	}
	if (strncmp(path, FK_PREFIX, strlen(FK_PREFIX)) != 0 ||
	    (path[strlen(FK_PREFIX)] != '/' && path[strlen(FK_PREFIX)] != '\0')) {
		fk_problem(&out, 404, "no such resource: %.200s (the API is below %s)", path,
			   FK_PREFIX);
		ret = send_fk(conn, &out);
		goto done;
	}
	below = path + strlen(FK_PREFIX);
	if (cfg.latency_ms > 0)
		tp_clock_sleep_ms(cfg.latency_ms);

	pthread_mutex_lock(&mu);
	counted = strcmp(below, "/applications/token") != 0;
	if (counted)
		api_count++;
	if (!r->too_big && (rate = draw_rate()) >= 0)
		fault_name = cfg.rates[rate].name;
	if (rate >= 0 && cfg.rates[rate].status == 0) {
		/* reset: nothing handled, no answer */
		log_request(ts, method, path, raw_query, 0, fault_name, body);
		pthread_mutex_unlock(&mu);
		ret = reply_reset(conn);
		goto done;
	}
	if (r->too_big) {
		fk_problem(&out, 413, "the request body is larger than %zu bytes", MAX_BODY);
	} else if (rate >= 0) {
		fk_problem(&out, cfg.rates[rate].status, "injected failure (%s)", fault_name);
		if (cfg.rates[rate].status == 429 && cfg.retry_after > 0)
			out.retry_after = cfg.retry_after;
	} else if (counted && cfg.fail_every > 0 && api_count % cfg.fail_every == 0) {
		fk_problem(&out, cfg.fail_status, "injected failure (every %ld requests)",
			   cfg.fail_every);
		fault_name = "every";
		if (cfg.fail_status == 429)
			out.retry_after = cfg.retry_after > 0 ? cfg.retry_after : -1;
	} else if ((fault = take_fault(method, below)) &&
		   !json_is_true(json_object_get(fault, "after"))) {
		fault_reply(&out, fault, &raw_reply);
	} else if (bad_body) {
		fk_problem(&out, 400, "the request body is not valid JSON");
	} else if (strcmp(below, "/applications/token") == 0) {
		if (strcmp(method, "POST") != 0)
			fk_problem(&out, 405, "%s is not allowed on /applications/token", method);
		else
			issue_token(&out, body);
	} else if (strcmp(below, "/health") == 0 || strcmp(below, "") == 0) {
		out.body = json_pack("{s:s}", "status", "ok");
	} else {
		const char *why = auth_problem(conn);
		bool writes = strcmp(method, "POST") == 0 || strcmp(method, "PUT") == 0 ||
			      strcmp(method, "PATCH") == 0;
		if (why) {
			fk_problem(&out, 401, "%s", why);
		} else if (writes && (!ctype || strncasecmp(ctype, "application/json", 16) != 0)) {
			fk_problem(&out, 415, "the request body must be application/json");
		} else if (writes && !body) {
			fk_problem(&out, 400, "a JSON request body is required");
		} else {
			fk_request rq = {method, below[0] ? below : "/", query, body,
					 cfg.public_base};
			fk_api_handle(&rq, &out);
		}
	}
	if (fault && json_is_true(json_object_get(fault, "after")))
		fault_reply(&out, fault, &raw_reply);
	if (fault)
		fault_name = "injected";
	log_request(ts, method, path, raw_query, out.status, fault_name, body);
	pthread_mutex_unlock(&mu);
	if (raw_reply) {
		json_decref(out.body);
		ret = send_reply(conn, out.status, out.content_type, raw_reply, out.retry_after);
	} else {
		ret = send_fk(conn, &out);
	}
done:
	json_decref(fault);
	json_decref(query);
	json_decref(body);
	free(path);
	return ret;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
				  const char *method, const char *version, const char *upload_data,
				  size_t *upload_data_size, void **con_cls)
{
	request *r = *con_cls;
	(void)cls;
	(void)url;
	(void)version;
	if (!r->started) {
		r->started = true;
		return MHD_YES;
	}
	if (*upload_data_size) {
		if (!r->too_big && tp_buf_put(&r->body, upload_data, *upload_data_size) < 0)
			r->too_big = true;
		*upload_data_size = 0;
		return MHD_YES;
	}
	return handle(conn, r, method);
}

/* ---------------------------------------------------------------- main */

static void usage(void)
{
	fprintf(stderr, "usage: fake_airbyte --port N --client-id X --client-secret Y [--log FILE] "
			"[--latency-ms N] [--fail-every N] [--fail-status CODE] [--fail-rate SPEC] "
			"[--retry-after S] [--seed N] [--token-ttl S] [--workspace NAME] "
			"[--public-url URL] [--job-seconds N]\n");
	exit(64);
}

static long num_arg(const char *s, long min, long max)
{
	char *end;
	long v = strtol(s, &end, 10);
	if (!*s || *end || v < min || v > max)
		usage();
	return v;
}

int main(int argc, char **argv)
{
	struct sockaddr_in addr = {.sin_family = AF_INET};
	struct MHD_Daemon *d;
	const union MHD_DaemonInfo *info;
	const char *workspace = "default", *log_path = NULL, *public_url = NULL;
	long port = -1, job_secs = 2;
	sigset_t sigs;
	int sig;

	for (int i = 1; i < argc; i += 2) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (!v)
			usage();
		if (strcmp(a, "--port") == 0)
			port = num_arg(v, 0, 65535);
		else if (strcmp(a, "--client-id") == 0)
			cfg.client_id = v;
		else if (strcmp(a, "--client-secret") == 0)
			cfg.client_secret = v;
		else if (strcmp(a, "--log") == 0)
			log_path = v;
		else if (strcmp(a, "--latency-ms") == 0)
			cfg.latency_ms = num_arg(v, 0, 600000);
		else if (strcmp(a, "--fail-every") == 0)
			cfg.fail_every = num_arg(v, 0, 1000000);
		else if (strcmp(a, "--fail-status") == 0)
			cfg.fail_status = (unsigned)num_arg(v, 400, 599);
		else if (strcmp(a, "--fail-rate") == 0) {
			if (parse_rates(v) < 0) {
				fprintf(stderr, "fake_airbyte: bad --fail-rate \"%s\" (e.g. "
						"\"503:0.1,429:0.05,reset:0.05\"; faults 500-599, 429, "
						"reset; probabilities summing to at most 1)\n", v);
				return 64;
			}
		} else if (strcmp(a, "--retry-after") == 0)
			cfg.retry_after = (int)num_arg(v, 0, 86400);
		else if (strcmp(a, "--seed") == 0)
			cfg.rng = ((uint64_t)num_arg(v, 0, 0x7fffffffL) << 1) | 1;
		else if (strcmp(a, "--token-ttl") == 0)
			cfg.token_ttl_s = num_arg(v, 1, 86400);
		else if (strcmp(a, "--workspace") == 0)
			workspace = v;
		else if (strcmp(a, "--public-url") == 0)
			public_url = v;
		else if (strcmp(a, "--job-seconds") == 0)
			job_secs = num_arg(v, 0, 86400);
		else
			usage();
	}
	if (port < 0 || !cfg.client_id || !cfg.client_secret)
		usage();
	if (log_path && !(cfg.log = fopen(log_path, "a"))) {
		fprintf(stderr, "fake_airbyte: %s: %s\n", log_path, strerror(errno));
		return 1;
	}

	/* the signals are taken by sigwait below; threads inherit the mask */
	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);

	tokens = json_object();
	faults = json_array();
	fk_api_init(workspace, (int)job_secs);

	addr.sin_port = htons((uint16_t)port);
	addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION |
				     MHD_USE_ERROR_LOG,
			     0, NULL, NULL, on_request, NULL, MHD_OPTION_SOCK_ADDR, &addr,
			     MHD_OPTION_URI_LOG_CALLBACK, on_uri, NULL, MHD_OPTION_NOTIFY_COMPLETED,
			     on_completed, NULL, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)60,
			     MHD_OPTION_END);
	if (!d) {
		fprintf(stderr, "fake_airbyte: cannot listen on 127.0.0.1:%ld\n", port);
		return 1;
	}
	info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
	port = info ? info->port : port;
	cfg.public_base = public_url ? tp_strdup(public_url)
				     : tp_sprintf("http://127.0.0.1:%ld%s", port, FK_PREFIX);
	printf("fake_airbyte listening on http://127.0.0.1:%ld\n", port);
	fflush(stdout);

	while (sigwait(&sigs, &sig) != 0)
		;
	MHD_stop_daemon(d);
	fk_api_free();
	json_decref(tokens);
	json_decref(faults);
	free(cfg.public_base);
	if (cfg.log)
		fclose(cfg.log);
	return 0;
}
