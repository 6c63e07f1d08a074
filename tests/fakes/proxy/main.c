/*
 * fake_proxy — a counting, latency-adding, fault-injecting HTTP reverse proxy for Tapestry's
 * tests and benchmarks. It sits between the controller and one backend (moto_server, a fake)
 * and forwards every request unchanged — method, path and query exactly as sent (no
 * re-encoding), every end-to-end header including Host, Authorization and X-Amz-* (so SigV4
 * signatures still verify upstream), and the body — then relays the status, headers and body
 * back. Around that it adds what a real network and a real API do to a client: latency,
 * server errors, throttling and dropped connections, and it counts and logs every call, so
 * every backend is measured the same way.
 *
 * Usage:
 *   fake_proxy --port N --upstream http://127.0.0.1:PORT [--latency-ms N] [--fail-rate SPEC]
 *              [--retry-after S] [--seed N] [--log FILE] [--timeout-s S]
 *
 *   --port N          listen on 127.0.0.1:N (only loopback); 0 picks a free port. The first
 *                     line on stdout is "fake_proxy listening on http://127.0.0.1:<port>".
 *   --upstream URL    the backend: http:// on a loopback host (127.0.0.1, localhost, [::1])
 *                     with an optional base path that is prefixed to every request path
 *   --latency-ms N    every request (faulted ones too) waits N ms before it is answered
 *   --fail-rate SPEC  random faults, INSTEAD of forwarding: comma-separated FAULT:P where
 *                     FAULT is a status 500-599, 429 (sent with Retry-After) or `reset`
 *                     (the connection is closed without an answer), and P the
 *                     probability per request; e.g. "503:0.1,429:0.05,reset:0.05" (sum <= 1)
 *   --retry-after S   Retry-After seconds sent with an injected 429 (default 1; 0: none)
 *   --seed N          seed of the faults (default 1). The draw of a request depends only on
 *                     the seed, its method, path, body and how many identical requests came
 *                     before it, so a run gets the same faults whatever the interleaving of
 *                     concurrent requests.
 *   --log FILE        one JSON line per request:
 *                     {"seq","t_ms","ts","method","path","query","action","status",
 *                      "fault","body_sha","ms"} — t_ms: arrival, ms since the proxy started
 *                     (ts: the same as ms since the epoch, to line up several proxies'
 *                     logs); path without the query; action: X-Amz-Target, else the Query/form
 *                     parameter Action=, else ""; status: what the client got (0 for a
 *                     reset, 502 when the upstream could not be reached, with "error");
 *                     fault: "", "503", "429", "reset"...; body_sha: SHA-256 hex of the
 *                     request body (retries of one request share it); ms: time spent in the
 *                     proxy, latency included
 *   --timeout-s S     upper bound of one upstream request (default 300)
 *
 * Control endpoints (never forwarded, counted or logged):
 *   GET  /__proxy/stats   {"requests":N,"faults":{"503":n,...},"by_action":{name:n},
 *                          "by_method":{...},"by_status":{...},"upstream_errors":n};
 *                         by_action uses "METHOD /path" for requests without an action
 *                         (after 10,000 distinct keys, new ones count as "(other)")
 *   POST /__proxy/reset   zeroes the counters and the fault draws (the log's seq and t_ms
 *                         go on)
 *
 * Each client connection gets its own upstream connection (kept alive while the client keeps
 * its own). Request bodies are capped at 64 MiB (413) and upstream replies at 256 MiB (502).
 * SIGTERM or SIGINT stops it (exit 0).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <curl/curl.h>
#include <microhttpd.h>

#include "util/util.h"

#define MAX_REQUEST_BODY ((size_t)64 << 20)
#define MAX_REPLY_BODY ((size_t)256 << 20)
#define MAX_REPLY_HEADERS ((size_t)1 << 20)
#define MAX_FAULTS 16
#define MAX_DRAW_KEYS 100000 /* distinct requests remembered for the fault draws */
#define MAX_ACTION_KEYS 10000 /* by_action entries; later new ones count as "(other)" */

typedef struct {
	char name[8]; /* "503", "429", "reset" */
	unsigned status;
	double p;
} fault_rate;

static struct {
	char *upstream; /* base URL without a trailing '/' */
	int64_t latency_ms;
	fault_rate rates[MAX_FAULTS];
	size_t nrates;
	long retry_after;
	uint64_t seed;
	long timeout_s;
	FILE *log;
	int64_t t0;
} cfg = {NULL, 0, {{"", 0, 0}}, 0, 1, 1, 300, NULL, 0};

/* Counters and draws, under mu. */
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static struct {
	long requests;
	long upstream_errors;
	long seq;
	json_t *faults, *by_action, *by_method, *by_status;
	json_t *draws; /* "METHOD path sha" → identical requests seen */
} st;

/* Per request, from the URI callback to the completion callback. */
typedef struct {
	char *uri; /* raw request target as received: path and query, still percent-encoded */
	tp_buf body;
	bool started;
	bool too_big;
} request;

/* ---------------------------------------------------------------- counters */

static void count(json_t *obj, const char *key)
{
	json_t *v = json_object_get(obj, key);
	json_object_set_new(obj, key, json_integer(v ? json_integer_value(v) + 1 : 1));
}

static void stats_reset(void)
{
	json_decref(st.faults);
	json_decref(st.by_action);
	json_decref(st.by_method);
	json_decref(st.by_status);
	json_decref(st.draws);
	st.requests = 0;
	st.upstream_errors = 0;
	st.faults = json_object();
	st.by_action = json_object();
	st.by_method = json_object();
	st.by_status = json_object();
	st.draws = json_object();
}

/* ---------------------------------------------------------------- request facts */

static const char *header(struct MHD_Connection *c, const char *name)
{
	return MHD_lookup_connection_value(c, MHD_HEADER_KIND, name);
}

/* The value of parameter `name` in a form/query string ("a=1&Action=X&b=2"), decoded
 * (%XX and '+'), or NULL. */
static char *form_param(const char *form, size_t len, const char *name)
{
	size_t nl = strlen(name);
	size_t i = 0;
	while (i < len) {
		size_t end = i;
		while (end < len && form[end] != '&')
			end++;
		if (end - i > nl && memcmp(form + i, name, nl) == 0 && form[i + nl] == '=') {
			tp_buf v;
			tp_buf_init(&v, 4096);
			for (size_t k = i + nl + 1; k < end; k++) {
				char ch = form[k];
				if (ch == '+') {
					ch = ' ';
				} else if (ch == '%' && k + 2 < end) {
					char hex[3] = {form[k + 1], form[k + 2], 0};
					char *stop = NULL;
					long b = strtol(hex, &stop, 16);
					if (stop == hex + 2) {
						ch = (char)b;
						k += 2;
					}
				}
				if (tp_buf_putc(&v, ch) < 0)
					break;
			}
			return tp_buf_detach(&v);
		}
		i = end + 1;
	}
	return NULL;
}

/* X-Amz-Target, else Action= in the query, else Action= in a form body; "" when none. */
static char *action_of(struct MHD_Connection *c, const char *query, const tp_buf *body)
{
	const char *target = header(c, "X-Amz-Target");
	const char *ctype = header(c, MHD_HTTP_HEADER_CONTENT_TYPE);
	char *a = NULL;
	if (target && target[0])
		return tp_strdup(target);
	if (query && (a = form_param(query, strlen(query), "Action")))
		return a;
	if (ctype && strncasecmp(ctype, "application/x-www-form-urlencoded", 33) == 0 &&
	    body->len > 0 && (a = form_param(body->ptr, body->len, "Action")))
		return a;
	return tp_strdup("");
}

/*
 * Which fault this request gets (index into cfg.rates, or -1), mutex held. One uniform draw
 * per request from SHA-256(seed, method, path, body hash, occurrence), compared with the
 * cumulative probabilities.
 */
static int draw_fault(const char *method, const char *path, const char *body_sha)
{
	char *key;
	json_t *seen;
	json_int_t n;
	char *text;
	uint8_t h[TP_SHA256_LEN];
	uint64_t u = 0;
	double x, acc = 0;
	int hit = -1;

	if (cfg.nrates == 0)
		return -1;
	key = tp_sprintf("%s %s %s", method, path, body_sha);
	seen = json_object_get(st.draws, key);
	n = seen ? json_integer_value(seen) : 0;
	if (json_object_size(st.draws) >= MAX_DRAW_KEYS)
		json_object_clear(st.draws);
	json_object_set_new(st.draws, key, json_integer(n + 1));
	text = tp_sprintf("%llu\n%s\n%lld", (unsigned long long)cfg.seed, key, (long long)n);
	tp_sha256(h, text, strlen(text));
	for (int i = 0; i < 8; i++)
		u = (u << 8) | h[i];
	x = (double)(u >> 11) / 9007199254740992.0; /* [0, 1) */
	for (size_t i = 0; i < cfg.nrates && hit < 0; i++) {
		acc += cfg.rates[i].p;
		if (x < acc)
			hit = (int)i;
	}
	free(text);
	free(key);
	return hit;
}

/* ---------------------------------------------------------------- replies */

static enum MHD_Result reply_text(struct MHD_Connection *c, unsigned status, const char *ctype,
				  const char *text, const char *retry_after)
{
	struct MHD_Response *r = MHD_create_response_from_buffer(strlen(text), (void *)(uintptr_t)text,
								 MHD_RESPMEM_MUST_COPY);
	enum MHD_Result ret;
	if (!r)
		return MHD_NO;
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
	if (retry_after)
		MHD_add_response_header(r, MHD_HTTP_HEADER_RETRY_AFTER, retry_after);
	ret = MHD_queue_response(c, status, r);
	MHD_destroy_response(r);
	return ret;
}

/* Closes the connection without an answer (SO_LINGER 0, so the close aborts it rather than
 * lingering). */
static enum MHD_Result reply_reset(struct MHD_Connection *c)
{
	const union MHD_ConnectionInfo *ci =
		MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
	if (ci) {
		struct linger lg = {1, 0};
		setsockopt(ci->connect_fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	}
	return MHD_NO;
}

/* ---------------------------------------------------------------- forwarding */

/* Hop-by-hop headers and those the proxy (or libcurl) sets itself: never forwarded. */
static bool hop_by_hop(const char *name, size_t len)
{
	static const char *const names[] = {"connection",       "keep-alive", "transfer-encoding",
					    "te",               "trailer",    "upgrade",
					    "proxy-connection", "proxy-authorization",
					    "content-length",   "expect",     NULL};
	for (size_t i = 0; names[i]; i++)
		if (strlen(names[i]) == len && strncasecmp(names[i], name, len) == 0)
			return true;
	return false;
}

typedef struct {
	struct curl_slist *list;
	bool has_accept, has_ctype, failed;
} req_headers;

static void add_header(req_headers *h, const char *line)
{
	struct curl_slist *next = h->failed ? NULL : curl_slist_append(h->list, line);
	if (next)
		h->list = next;
	else
		h->failed = true;
}

static enum MHD_Result collect_header(void *cls, enum MHD_ValueKind kind, const char *key,
				      const char *value)
{
	req_headers *h = cls;
	char *line;
	(void)kind;
	if (!key || hop_by_hop(key, strlen(key)))
		return MHD_YES;
	if (strcasecmp(key, "Accept") == 0)
		h->has_accept = true;
	if (strcasecmp(key, "Content-Type") == 0)
		h->has_ctype = true;
	/* "Name;" is libcurl's way of sending a header with an empty value */
	line = value && value[0] ? tp_sprintf("%s: %s", key, value) : tp_sprintf("%s;", key);
	add_header(h, line);
	free(line);
	return h->failed ? MHD_NO : MHD_YES;
}

typedef struct {
	tp_buf body;
	tp_buf headers; /* "Name: value\n" lines of the final response */
	bool too_big;
} upstream_reply;

static size_t on_body(char *data, size_t size, size_t n, void *ctx)
{
	upstream_reply *u = ctx;
	if (tp_buf_put(&u->body, data, size * n) < 0) {
		u->too_big = true;
		return 0;
	}
	return size * n;
}

static size_t on_header(char *data, size_t size, size_t n, void *ctx)
{
	upstream_reply *u = ctx;
	size_t len = size * n;
	const char *colon;
	if (len >= 5 && strncmp(data, "HTTP/", 5) == 0) {
		tp_buf_clear(&u->headers); /* a new response (after 100 Continue) */
		return len;
	}
	while (len > 0 && (data[len - 1] == '\r' || data[len - 1] == '\n'))
		len--;
	colon = memchr(data, ':', len);
	if (!colon || colon == data || hop_by_hop(data, (size_t)(colon - data)))
		return size * n;
	if (tp_buf_put(&u->headers, data, len) < 0 || tp_buf_putc(&u->headers, '\n') < 0) {
		u->too_big = true;
		return 0;
	}
	return size * n;
}

/* Adds the relayed headers to an MHD response. */
static void relay_headers(struct MHD_Response *r, const tp_buf *lines)
{
	char *copy = tp_strndup(tp_buf_cstr(lines), lines->len);
	char *save = NULL;
	for (char *l = strtok_r(copy, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
		char *colon = strchr(l, ':');
		char *v;
		if (!colon)
			continue;
		*colon = '\0';
		v = colon + 1;
		while (*v == ' ' || *v == '\t')
			v++;
		MHD_add_response_header(r, l, v);
	}
	free(copy);
}

/*
 * Forwards the request on this connection's upstream handle and queues the reply. *status
 * receives what the client gets; *error a message when the upstream failed (502).
 */
static enum MHD_Result forward(struct MHD_Connection *c, CURL *h, const char *method,
			       const request *rq, unsigned *status, char **error)
{
	req_headers hs = {NULL, false, false, false};
	upstream_reply u;
	char *url = tp_sprintf("%s%s", cfg.upstream, rq->uri);
	char errbuf[CURL_ERROR_SIZE] = "";
	struct MHD_Response *r = NULL;
	enum MHD_Result ret = MHD_NO;
	CURLcode cc;
	long code = 0;

	tp_buf_init(&u.body, MAX_REPLY_BODY);
	tp_buf_init(&u.headers, MAX_REPLY_HEADERS);
	u.too_big = false;
	*error = NULL;
	MHD_get_connection_values(c, MHD_HEADER_KIND, collect_header, &hs);
	/* what libcurl would add on its own when the client did not send it */
	if (!hs.has_accept)
		add_header(&hs, "Accept:");
	if (!hs.has_ctype)
		add_header(&hs, "Content-Type:");
	add_header(&hs, "Expect:");
	if (hs.failed) {
		*error = tp_strdup("out of memory building the upstream headers");
		goto upstream_failed;
	}

	curl_easy_reset(h); /* options only: the live connection stays */
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_PATH_AS_IS, 1L);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hs.list);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http");
	curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, 10000L);
	curl_easy_setopt(h, CURLOPT_TIMEOUT, cfg.timeout_s);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &u);
	curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(h, CURLOPT_HEADERDATA, &u);
	if (strcmp(method, "HEAD") == 0) {
		curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
	} else if (strcmp(method, "GET") == 0 && rq->body.len == 0) {
		curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
	} else {
		if (rq->body.len > 0 || strcmp(method, "POST") == 0 || strcmp(method, "PUT") == 0 ||
		    strcmp(method, "PATCH") == 0) {
			curl_easy_setopt(h, CURLOPT_POSTFIELDS, tp_buf_cstr(&rq->body));
			curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)rq->body.len);
		}
		curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
	}
	cc = curl_easy_perform(h);
	if (cc != CURLE_OK || u.too_big) {
		*error = u.too_big ? tp_strdup("the upstream reply exceeds the proxy's cap")
				   : tp_sprintf("upstream: %s", errbuf[0] ? errbuf
									 : curl_easy_strerror(cc));
		goto upstream_failed;
	}
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
	{
		size_t len = u.body.len;
		char *data = tp_buf_detach(&u.body);
		r = MHD_create_response_from_buffer(len, data, MHD_RESPMEM_MUST_FREE);
		if (!r) {
			free(data);
			*error = tp_strdup("cannot build the reply");
			goto upstream_failed;
		}
	}
	relay_headers(r, &u.headers);
	*status = (unsigned)code;
	ret = MHD_queue_response(c, (unsigned)code, r);
	goto done;

upstream_failed:
	*status = 502;
	{
		json_t *b = json_pack("{s:s}", "proxy_error", *error);
		char *text = b ? json_dumps(b, JSON_COMPACT) : NULL;
		ret = reply_text(c, 502, "application/json", text ? text : "{}", NULL);
		free(text);
		json_decref(b);
	}
done:
	if (r)
		MHD_destroy_response(r);
	curl_slist_free_all(hs.list);
	tp_buf_free(&u.body);
	tp_buf_free(&u.headers);
	free(url);
	return ret;
}

/* ---------------------------------------------------------------- the handler */

static void log_line(long seq, int64_t t_ms, const char *method, const char *path,
		     const char *query, const char *action, unsigned status, const char *fault,
		     const char *body_sha, int64_t ms, const char *error)
{
	json_t *o;
	char *text;
	if (!cfg.log)
		return;
	o = json_pack("{s:I,s:I,s:I,s:s,s:s,s:s,s:s,s:i,s:s,s:s,s:I}", "seq", (json_int_t)seq,
		      "t_ms", (json_int_t)t_ms, "ts", (json_int_t)(cfg.t0 + t_ms), "method", method,
		      "path", path, "query", query ? query : "", "action", action, "status",
		      (int)status, "fault", fault, "body_sha", body_sha, "ms", (json_int_t)ms);
	if (!o)
		return; /* a string that is not UTF-8: nothing sensible to log */
	if (error)
		json_object_set_new(o, "error", json_string(error));
	text = json_dumps(o, JSON_COMPACT);
	pthread_mutex_lock(&mu);
	if (text) {
		fputs(text, cfg.log);
		fputc('\n', cfg.log);
		fflush(cfg.log);
	}
	pthread_mutex_unlock(&mu);
	free(text);
	json_decref(o);
}

static enum MHD_Result control(struct MHD_Connection *c, const char *path, const char *method)
{
	enum MHD_Result ret;
	char *text;
	json_t *b;
	if (strcmp(path, "/__proxy/reset") == 0 &&
	    (strcmp(method, "POST") == 0 || strcmp(method, "GET") == 0)) {
		pthread_mutex_lock(&mu);
		stats_reset();
		pthread_mutex_unlock(&mu);
		return reply_text(c, 200, "application/json", "{\"reset\":true}", NULL);
	}
	if (strcmp(path, "/__proxy/stats") != 0 || strcmp(method, "GET") != 0)
		return reply_text(c, 404, "application/json",
				  "{\"proxy_error\":\"unknown control endpoint\"}", NULL);
	pthread_mutex_lock(&mu);
	b = json_pack("{s:I,s:O,s:O,s:O,s:O,s:I}", "requests", (json_int_t)st.requests, "faults",
		      st.faults, "by_action", st.by_action, "by_method", st.by_method,
		      "by_status", st.by_status, "upstream_errors",
		      (json_int_t)st.upstream_errors);
	text = json_dumps(b, JSON_COMPACT | JSON_SORT_KEYS);
	pthread_mutex_unlock(&mu);
	ret = reply_text(c, 200, "application/json", text ? text : "{}", NULL);
	free(text);
	json_decref(b);
	return ret;
}

static enum MHD_Result handle(struct MHD_Connection *c, CURL *h, request *rq, const char *method)
{
	const char *q = strchr(rq->uri, '?');
	char *path = q ? tp_strndup(rq->uri, (size_t)(q - rq->uri)) : tp_strdup(rq->uri);
	const char *query = q ? q + 1 : "";
	int64_t start = tp_clock_mono_ms();
	int64_t t_ms = tp_clock_now_ms() - cfg.t0;
	uint8_t digest[TP_SHA256_LEN];
	char sha[2 * TP_SHA256_LEN + 1];
	char *action = NULL, *error = NULL, *key = NULL;
	const char *fault = "";
	enum MHD_Result ret;
	unsigned status = 0;
	long seq;
	int f;

	if (strncmp(path, "/__proxy/", 9) == 0) {
		ret = control(c, path, method);
		goto done;
	}
	tp_sha256(digest, rq->body.ptr ? rq->body.ptr : "", rq->body.len);
	tp_hex_encode(sha, digest, sizeof(digest));
	action = action_of(c, query, &rq->body);
	key = action[0] ? tp_strdup(action) : tp_sprintf("%s %s", method, path);

	pthread_mutex_lock(&mu);
	seq = ++st.seq;
	st.requests++;
	count(st.by_action, json_object_get(st.by_action, key) ||
					    json_object_size(st.by_action) < MAX_ACTION_KEYS
				    ? key
				    : "(other)");
	count(st.by_method, method);
	f = rq->too_big ? -1 : draw_fault(method, path, sha);
	if (f >= 0)
		count(st.faults, cfg.rates[f].name);
	pthread_mutex_unlock(&mu);

	if (cfg.latency_ms > 0)
		tp_clock_sleep_ms(cfg.latency_ms);
	if (rq->too_big) {
		status = 413;
		ret = reply_text(c, 413, "application/json",
				 "{\"proxy_error\":\"request body over the proxy's cap\"}", NULL);
	} else if (f >= 0 && cfg.rates[f].status == 0) {
		fault = cfg.rates[f].name;
		ret = reply_reset(c);
	} else if (f >= 0) {
		char ra[24];
		fault = cfg.rates[f].name;
		status = cfg.rates[f].status;
		snprintf(ra, sizeof(ra), "%ld", cfg.retry_after);
		ret = reply_text(c, status, "application/json",
				 status == 429 ? "{\"proxy_error\":\"injected throttling\"}"
					       : "{\"proxy_error\":\"injected server error\"}",
				 status == 429 && cfg.retry_after > 0 ? ra : NULL);
	} else {
		ret = forward(c, h, method, rq, &status, &error);
	}

	pthread_mutex_lock(&mu);
	{
		char code[16];
		snprintf(code, sizeof(code), "%u", status);
		count(st.by_status, code);
		if (error)
			st.upstream_errors++;
	}
	pthread_mutex_unlock(&mu);
	log_line(seq, t_ms, method, path, query, action, status, fault, sha,
		 tp_clock_mono_ms() - start, error);
done:
	free(key);
	free(error);
	free(action);
	free(path);
	return ret;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
				  const char *method, const char *version, const char *upload_data,
				  size_t *upload_data_size, void **con_cls)
{
	request *rq = *con_cls;
	const union MHD_ConnectionInfo *ci;
	(void)cls;
	(void)url;
	(void)version;
	if (!rq)
		return MHD_NO;
	if (!rq->started) {
		rq->started = true;
		return MHD_YES;
	}
	if (*upload_data_size) {
		if (!rq->too_big && tp_buf_put(&rq->body, upload_data, *upload_data_size) < 0)
			rq->too_big = true;
		*upload_data_size = 0;
		return MHD_YES;
	}
	ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
	if (!ci || !ci->socket_context)
		return MHD_NO;
	return handle(c, ci->socket_context, rq, method);
}

/* The raw request target (MHD hands the handler a decoded path; the proxy must not change
 * the encoding a signature covers). Its return value becomes the request's context. */
static void *on_uri(void *cls, const char *uri, struct MHD_Connection *c)
{
	request *rq = tp_calloc(1, sizeof(*rq));
	(void)cls;
	(void)c;
	rq->uri = tp_strdup(uri && uri[0] ? uri : "/");
	tp_buf_init(&rq->body, MAX_REQUEST_BODY);
	return rq;
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
			 enum MHD_RequestTerminationCode toe)
{
	request *rq = *con_cls;
	(void)cls;
	(void)c;
	(void)toe;
	if (!rq)
		return;
	free(rq->uri);
	tp_buf_free(&rq->body);
	free(rq);
	*con_cls = NULL;
}

/* One upstream handle per client connection: opened with it, closed with it. */
static void on_connection(void *cls, struct MHD_Connection *c, void **socket_context,
			  enum MHD_ConnectionNotificationCode toe)
{
	(void)cls;
	(void)c;
	if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
		*socket_context = curl_easy_init();
	} else if (*socket_context) {
		curl_easy_cleanup(*socket_context);
		*socket_context = NULL;
	}
}

/* libmicrohttpd's messages on stderr, without the one every injected reset causes. */
__attribute__((format(printf, 2, 0))) static void on_mhd_log(void *cls, const char *fmt,
							       va_list ap)
{
	char line[512];
	(void)cls;
	vsnprintf(line, sizeof(line), fmt, ap);
	if (strstr(line, "Application reported internal error"))
		return;
	fprintf(stderr, "fake_proxy: %s", line);
}

/* ---------------------------------------------------------------- command line */

static void usage(void)
{
	fprintf(stderr, "usage: fake_proxy --port N --upstream http://127.0.0.1:PORT "
			"[--latency-ms N] [--fail-rate SPEC] [--retry-after S] [--seed N] "
			"[--log FILE] [--timeout-s S]\n");
	exit(64);
}

static long num_arg(const char *s, long min, long max)
{
	char *end;
	long v;
	errno = 0;
	v = strtol(s, &end, 10);
	if (!*s || *end || errno || v < min || v > max)
		usage();
	return v;
}

/* "503:0.1,429:0.05,reset:0.05" into cfg.rates; -1 on a malformed spec. */
static int parse_rates(const char *spec)
{
	char *copy = tp_strdup(spec), *save = NULL;
	double sum = 0;
	int rc = 0;
	for (char *item = strtok_r(copy, ",", &save); item && rc == 0;
	     item = strtok_r(NULL, ",", &save)) {
		char *colon = strchr(item, ':'), *end = NULL;
		fault_rate *fr;
		double p;
		if (!colon || cfg.nrates == MAX_FAULTS) {
			rc = -1;
			break;
		}
		*colon = '\0';
		while (*item == ' ')
			item++;
		p = strtod(colon + 1, &end);
		if (!end || *end || end == colon + 1 || !(p >= 0 && p <= 1)) {
			rc = -1;
			break;
		}
		fr = &cfg.rates[cfg.nrates];
		if (strcmp(item, "reset") == 0) {
			fr->status = 0;
		} else {
			char *stop = NULL;
			long code = strtol(item, &stop, 10);
			if (!stop || *stop || !(code == 429 || (code >= 500 && code <= 599))) {
				rc = -1;
				break;
			}
			fr->status = (unsigned)code;
		}
		snprintf(fr->name, sizeof(fr->name), "%s", item);
		fr->p = p;
		sum += p;
		cfg.nrates++;
	}
	if (sum > 1.0 + 1e-9)
		rc = -1;
	free(copy);
	return rc;
}

/* Only http:// on a loopback host: the proxy never talks to another machine. */
static int set_upstream(const char *url)
{
	static const char *const hosts[] = {"127.0.0.1", "localhost", "[::1]", NULL};
	const char *rest;
	size_t len;
	if (strncmp(url, "http://", 7) != 0)
		return -1;
	rest = url + 7;
	for (size_t i = 0; hosts[i]; i++) {
		size_t hl = strlen(hosts[i]);
		if (strncmp(rest, hosts[i], hl) == 0 &&
		    (rest[hl] == ':' || rest[hl] == '/' || rest[hl] == '\0')) {
			len = strlen(url);
			while (len > 0 && url[len - 1] == '/')
				len--;
			cfg.upstream = tp_strndup(url, len);
			return 0;
		}
	}
	return -1;
}

int main(int argc, char **argv)
{
	struct sockaddr_in addr = {.sin_family = AF_INET};
	struct MHD_Daemon *d;
	const union MHD_DaemonInfo *info;
	const char *log_path = NULL;
	long port = -1;
	sigset_t sigs;
	int sig;

	for (int i = 1; i < argc; i += 2) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (!v)
			usage();
		if (strcmp(a, "--port") == 0) {
			port = num_arg(v, 0, 65535);
		} else if (strcmp(a, "--upstream") == 0) {
			if (set_upstream(v) < 0) {
				fprintf(stderr, "fake_proxy: --upstream must be http:// on 127.0.0.1, "
						"localhost or [::1]: %s\n", v);
				return 64;
			}
		} else if (strcmp(a, "--latency-ms") == 0) {
			cfg.latency_ms = num_arg(v, 0, 600000);
		} else if (strcmp(a, "--fail-rate") == 0) {
			if (parse_rates(v) < 0) {
				fprintf(stderr, "fake_proxy: bad --fail-rate \"%s\" (e.g. "
						"\"503:0.1,429:0.05,reset:0.05\"; faults 500-599, "
						"429, reset; probabilities summing to at most 1)\n",
					v);
				return 64;
			}
		} else if (strcmp(a, "--retry-after") == 0) {
			cfg.retry_after = num_arg(v, 0, 86400);
		} else if (strcmp(a, "--seed") == 0) {
			cfg.seed = (uint64_t)num_arg(v, 0, 0x7fffffffL);
		} else if (strcmp(a, "--log") == 0) {
			log_path = v;
		} else if (strcmp(a, "--timeout-s") == 0) {
			cfg.timeout_s = num_arg(v, 1, 86400);
		} else {
			usage();
		}
	}
	if (port < 0 || !cfg.upstream)
		usage();
	if (log_path && !(cfg.log = fopen(log_path, "a"))) {
		fprintf(stderr, "fake_proxy: %s: %s\n", log_path, strerror(errno));
		return 1;
	}

	/* the signals are taken by sigwait below; threads inherit the mask */
	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);

	curl_global_init(CURL_GLOBAL_DEFAULT);
	stats_reset();
	cfg.t0 = tp_clock_now_ms();

	addr.sin_port = htons((uint16_t)port);
	addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION |
				     MHD_USE_AUTO | MHD_USE_ERROR_LOG,
			     0, NULL, NULL, on_request, NULL, MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log,
			     NULL, MHD_OPTION_SOCK_ADDR, &addr, MHD_OPTION_URI_LOG_CALLBACK, on_uri,
			     NULL, MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL,
			     MHD_OPTION_NOTIFY_CONNECTION, on_connection, NULL,
			     MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)120, MHD_OPTION_END);
	if (!d) {
		fprintf(stderr, "fake_proxy: cannot listen on 127.0.0.1:%ld\n", port);
		return 1;
	}
	info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
	port = info ? info->port : port;
	printf("fake_proxy listening on http://127.0.0.1:%ld\n", port);
	fflush(stdout);

	while (sigwait(&sigs, &sig) != 0)
		;
	MHD_stop_daemon(d);
	pthread_mutex_lock(&mu);
	json_decref(st.faults);
	json_decref(st.by_action);
	json_decref(st.by_method);
	json_decref(st.by_status);
	json_decref(st.draws);
	pthread_mutex_unlock(&mu);
	curl_global_cleanup();
	free(cfg.upstream);
	if (cfg.log)
		fclose(cfg.log);
	return 0;
}
