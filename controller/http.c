/*
 * The controller's HTTP server (libmicrohttpd): the webhook endpoints that trigger an
 * immediate fetch, and every GET the rest of the controller serves through on_get (health,
 * readiness, /metrics, the status API, the dashboard). It sits at the edge of the data flow:
 * nothing it receives reaches the engine except an authenticated, de-duplicated delivery.
 *
 * Hardening, in the order a request meets it:
 *  - Binds exactly the configured address (no wildcard), a pool of 4 threads over epoll/poll
 *    so slow clients cost a socket, not a thread; at most 128 connections; 30 s idle timeout.
 *  - Webhooks: Content-Length over max_body is refused with 413 before any body is read; a
 *    chunked body that grows past it is discarded (a bounded amount more is drained so the
 *    client can read the 413, then the connection is dropped). Nothing is parsed before the
 *    signature is verified (webhook.c). Handling of authentic deliveries is serialised, so the
 *    duplicate check and on_webhook run one at a time and in arrival order.
 *  - GET/HEAD: with api_token set, every path but /healthz and /readyz needs
 *    "Authorization: Bearer <token>" (compared through SHA-256 digests in constant time).
 *  - Every response carries Cache-Control: no-store and X-Content-Type-Options: nosniff.
 */
#include "controller.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include <microhttpd.h>
#include <openssl/crypto.h>

#define DEFAULT_MAX_BODY      ((size_t)1024 * 1024)
#define GET_BODY_MAX          ((size_t)16 * 1024 * 1024)
#define DELIVERY_LOG_CAPACITY 1024
#define POOL_THREADS          4u
#define CONNECTION_LIMIT      128u
#define CONNECTION_TIMEOUT_S  30u
#define NKINDS                3

struct tp_http {
	struct MHD_Daemon *daemon;
	tp_delivery_log *deliveries;
	pthread_mutex_t hook_mu; /* serialises duplicate check + on_webhook */
	char *secrets[NKINDS];   /* by tp_webhook_kind; NULL: path answers 404 */
	bool api_token_set;
	uint8_t api_token_digest[TP_SHA256_LEN];
	size_t max_body;
	void (*on_webhook)(void *ctx, const tp_webhook_info *info);
	void (*on_get)(void *ctx, const char *path, const char *query, tp_http_response *resp);
	void *ctx;
	pthread_t starter;     /* thread running tp_http_start */
	char start_error[512]; /* last libmicrohttpd message logged while starting */
};

/* Per-request state, created by the URI log callback (which sees the raw request target, so
 * the query string reaches on_get undecoded) and freed by the completion callback. */
typedef struct {
	char *uri;
	bool started;
	int hook; /* tp_webhook_kind of a webhook POST, -1 otherwise */
	tp_buf body;
	bool too_big;
	size_t discarded; /* bytes drained after the body passed max_body */
} request;

static const char *const hook_paths[NKINDS] = {
	[TP_WEBHOOK_GITHUB] = "/hooks/github",
	[TP_WEBHOOK_GITLAB] = "/hooks/gitlab",
	[TP_WEBHOOK_GENERIC] = "/hooks/generic",
};

static const char *const kind_names[NKINDS] = {
	[TP_WEBHOOK_GITHUB] = "github",
	[TP_WEBHOOK_GITLAB] = "gitlab",
	[TP_WEBHOOK_GENERIC] = "generic",
};

/* ---------------------------------------------------------------- helpers */

static void free_secret(char *s)
{
	if (!s)
		return;
	OPENSSL_cleanse(s, strlen(s));
	free(s);
}

/* "127.0.0.1:7777" or "[::1]:7777" into a socket address; numeric hosts only. */
static int parse_bind(struct sockaddr_storage *out, bool *ipv6, uint16_t *port, const char *bind)
{
	struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)out;
	struct sockaddr_in *a4 = (struct sockaddr_in *)out;
	char host[INET6_ADDRSTRLEN + 1];
	const char *colon, *p;
	unsigned long v = 0;
	size_t hlen;

	memset(out, 0, sizeof(*out));
	if (!bind || !bind[0])
		return tp_error_set(TP_EINVALID, "http: no bind address");
	colon = strrchr(bind, ':');
	if (!colon || !colon[1] || strlen(colon + 1) > 5)
		goto bad;
	for (p = colon + 1; *p; p++) {
		if (*p < '0' || *p > '9')
			goto bad;
		v = v * 10 + (unsigned long)(*p - '0');
	}
	if (v > 65535)
		goto bad;
	*port = (uint16_t)v;
	if (bind[0] == '[') {
		hlen = (size_t)(colon - bind);
		if (hlen < 3 || bind[hlen - 1] != ']' || hlen - 2 >= sizeof(host))
			goto bad;
		memcpy(host, bind + 1, hlen - 2);
		host[hlen - 2] = '\0';
		if (inet_pton(AF_INET6, host, &a6->sin6_addr) != 1)
			goto bad;
		a6->sin6_family = AF_INET6;
		a6->sin6_port = htons(*port);
		*ipv6 = true;
		return 0;
	}
	hlen = (size_t)(colon - bind);
	if (hlen == 0 || hlen >= sizeof(host))
		goto bad;
	memcpy(host, bind, hlen);
	host[hlen] = '\0';
	if (inet_pton(AF_INET, host, &a4->sin_addr) != 1)
		goto bad;
	a4->sin_family = AF_INET;
	a4->sin_port = htons(*port);
	*ipv6 = false;
	return 0;
bad:
	return tp_error_set(TP_EINVALID,
			    "http: bad bind address \"%s\" (want IPv4 host:port or [IPv6]:port)",
			    bind);
}

static const char *conn_header(void *ctx, const char *name)
{
	return MHD_lookup_connection_value(ctx, MHD_HEADER_KIND, name);
}

/* Queues a response whose body (malloc'd, owned) is handed to libmicrohttpd. */
static enum MHD_Result respond(struct MHD_Connection *conn, unsigned int status,
			       const char *content_type, char *body, size_t len,
			       const char *extra_name, const char *extra_value)
{
	struct MHD_Response *resp;
	enum MHD_Result ret;

	resp = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
	if (!resp) {
		free(body);
		return MHD_NO;
	}
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
	MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
	if (extra_name)
		MHD_add_response_header(resp, extra_name, extra_value);
	ret = MHD_queue_response(conn, status, resp);
	MHD_destroy_response(resp);
	return ret;
}

static enum MHD_Result respond_json(struct MHD_Connection *conn, unsigned int status,
				    const char *json, const char *extra_name,
				    const char *extra_value)
{
	char *body = tp_sprintf("%s\n", json);
	return respond(conn, status, "application/json", body, strlen(body), extra_name,
		       extra_value);
}

static int hook_kind(const char *url)
{
	for (int k = 0; k < NKINDS; k++)
		if (strcmp(url, hook_paths[k]) == 0)
			return k;
	return -1;
}

static bool bearer_ok(const tp_http *h, struct MHD_Connection *conn)
{
	const char *v =
	    MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
	uint8_t digest[TP_SHA256_LEN];

	if (!v || strncasecmp(v, "Bearer ", 7) != 0)
		return false;
	v += 7;
	while (*v == ' ')
		v++;
	tp_sha256(digest, v, strlen(v));
	return tp_ct_equal(digest, h->api_token_digest, TP_SHA256_LEN);
}

/* ---------------------------------------------------------------- webhooks */

/* First call of a webhook POST: only headers are known. Refuses early what can be refused. */
static enum MHD_Result hook_begin(tp_http *h, request *r, struct MHD_Connection *conn, int kind,
				  const char *method)
{
	const char *cl;

	if (!h->secrets[kind])
		return respond_json(conn, MHD_HTTP_NOT_FOUND, "{\"error\":\"not found\"}", NULL,
				    NULL);
	if (strcmp(method, MHD_HTTP_METHOD_POST) != 0)
		return respond_json(conn, MHD_HTTP_METHOD_NOT_ALLOWED,
				    "{\"error\":\"method not allowed\"}", MHD_HTTP_HEADER_ALLOW,
				    "POST");
	cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
	if (cl) {
		char *end = NULL;
		unsigned long long n;
		errno = 0;
		n = strtoull(cl, &end, 10);
		if (errno || end == cl || n > h->max_body) {
			tp_log_warn("webhook %s: body of %s bytes refused (limit %zu)",
				    kind_names[kind], cl, h->max_body);
			return respond_json(conn, MHD_HTTP_CONTENT_TOO_LARGE,
					    "{\"error\":\"body too large\"}", NULL, NULL);
		}
	}
	r->hook = kind;
	tp_buf_init(&r->body, h->max_body);
	return MHD_YES;
}

/* Body chunks of a webhook POST. Past max_body the content is dropped; a bounded amount more
 * is drained so the 413 can be read, then the connection is closed. */
static enum MHD_Result hook_chunk(tp_http *h, request *r, const char *data, size_t *size)
{
	if (!r->too_big && tp_buf_put(&r->body, data, *size) < 0) {
		r->too_big = true;
		tp_buf_free(&r->body);
		tp_log_warn("webhook %s: body over %zu bytes refused", kind_names[r->hook],
			    h->max_body);
	}
	if (r->too_big) {
		r->discarded += *size;
		if (r->discarded > h->max_body)
			return MHD_NO;
	}
	*size = 0;
	return MHD_YES;
}

/* The whole body is in: verify, de-duplicate, trigger. */
static enum MHD_Result hook_finish(tp_http *h, request *r, struct MHD_Connection *conn)
{
	tp_webhook_info info;
	char key[160];
	bool duplicate = false;
	int rc;

	if (r->too_big)
		return respond_json(conn, MHD_HTTP_CONTENT_TOO_LARGE,
				    "{\"error\":\"body too large\"}", NULL, NULL);
	rc = tp_webhook_verify(&info, (tp_webhook_kind)r->hook, h->secrets[r->hook], conn_header,
			       conn, tp_buf_cstr(&r->body), r->body.len);
	if (rc == TP_EAUTH) {
		tp_log_warn("%s", tp_error_last());
		return respond_json(conn, MHD_HTTP_UNAUTHORIZED,
				    "{\"error\":\"invalid signature\"}", NULL, NULL);
	}
	if (rc < 0) {
		tp_log_warn("%s", tp_error_last());
		return respond_json(conn, MHD_HTTP_BAD_REQUEST, "{\"error\":\"invalid request\"}",
				    NULL, NULL);
	}
	/* ids are namespaced by kind: the three senders do not share an id space */
	snprintf(key, sizeof(key), "%s:%s", kind_names[r->hook], info.delivery);
	pthread_mutex_lock(&h->hook_mu);
	duplicate = info.delivery[0] && tp_delivery_log_seen(h->deliveries, key);
	if (!duplicate && h->on_webhook)
		h->on_webhook(h->ctx, &info);
	pthread_mutex_unlock(&h->hook_mu);
	tp_log_info("webhook %s: %s delivery \"%s\" event \"%s\" ref \"%s\"", kind_names[r->hook],
		    duplicate ? "duplicate" : "accepted", info.delivery, info.event, info.ref);
	if (duplicate)
		return respond_json(conn, MHD_HTTP_OK, "{\"status\":\"duplicate\"}", NULL, NULL);
	return respond_json(conn, MHD_HTTP_ACCEPTED, "{\"status\":\"accepted\"}", NULL, NULL);
}

/* ---------------------------------------------------------------- GET */

/* on_get receives the path as libmicrohttpd decoded it (percent-escapes resolved, no query)
 * and the query string raw, exactly as the client sent it after '?'. */
static enum MHD_Result serve_get(tp_http *h, request *r, struct MHD_Connection *conn,
				 const char *url)
{
	tp_http_response resp = {0};
	const char *query = r->uri ? strchr(r->uri, '?') : NULL;
	const char *ctype;
	unsigned int status;
	size_t len;
	char *body;

	tp_buf_init(&resp.body, GET_BODY_MAX);
	if (h->on_get)
		h->on_get(h->ctx, url, query ? query + 1 : "", &resp);
	if (resp.status == 0 && resp.body.len == 0) {
		tp_buf_free(&resp.body);
		return respond_json(conn, MHD_HTTP_NOT_FOUND, "{\"error\":\"not found\"}", NULL,
				    NULL);
	}
	status = resp.status == 0 ? MHD_HTTP_NOT_FOUND : (unsigned int)resp.status;
	if (status < 100 || status > 599) {
		tp_log_error("http: GET %s: handler returned status %d", url, resp.status);
		status = MHD_HTTP_INTERNAL_SERVER_ERROR;
	}
	ctype = resp.content_type ? resp.content_type : "text/plain; charset=utf-8";
	len = resp.body.len;
	body = tp_buf_detach(&resp.body);
	return respond(conn, status, ctype, body, len,
		       resp.csp ? "Content-Security-Policy" : NULL, resp.csp);
}

/* ---------------------------------------------------------------- libmicrohttpd callbacks */

static request *request_new(const char *uri)
{
	request *r = tp_calloc(1, sizeof(*r));
	r->uri = uri ? tp_strdup(uri) : NULL;
	r->hook = -1;
	tp_buf_init(&r->body, DEFAULT_MAX_BODY);
	return r;
}

static void request_free(request *r)
{
	if (!r)
		return;
	free(r->uri);
	tp_buf_free(&r->body);
	free(r);
}

static void *on_uri(void *cls, const char *uri, struct MHD_Connection *conn)
{
	return request_new(uri);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
			 enum MHD_RequestTerminationCode toe)
{
	request_free(*con_cls);
	*con_cls = NULL;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
				  const char *method, const char *version, const char *upload_data,
				  size_t *upload_data_size, void **con_cls)
{
	tp_http *h = cls;
	request *r = *con_cls;
	int kind;

	if (!r) /* the URI callback always runs first; be safe if it did not */
		*con_cls = r = request_new(NULL);
	if (r->started && r->hook >= 0) {
		if (*upload_data_size > 0)
			return hook_chunk(h, r, upload_data, upload_data_size);
		return hook_finish(h, r, conn);
	}
	if (r->started) { /* answered on the first call; drain anything left */
		*upload_data_size = 0;
		return MHD_YES;
	}
	r->started = true;
	kind = hook_kind(url);
	if (kind >= 0)
		return hook_begin(h, r, conn, kind, method);
	if (strncmp(url, "/hooks/", 7) == 0 && strcmp(method, MHD_HTTP_METHOD_POST) == 0)
		return respond_json(conn, MHD_HTTP_NOT_FOUND, "{\"error\":\"not found\"}", NULL,
				    NULL);
	if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
		return respond_json(conn, MHD_HTTP_METHOD_NOT_ALLOWED,
				    "{\"error\":\"method not allowed\"}", MHD_HTTP_HEADER_ALLOW,
				    "GET, HEAD");
	/* the dashboard's static assets hold no data: the page loads, then asks for the token */
	if (h->api_token_set && strcmp(url, "/healthz") != 0 && strcmp(url, "/readyz") != 0 &&
	    !tp_dashboard_is_asset(url) && !bearer_ok(h, conn))
		return respond_json(conn, MHD_HTTP_UNAUTHORIZED, "{\"error\":\"unauthorized\"}",
				    MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer");
	return serve_get(h, r, conn, url);
}

__attribute__((format(printf, 2, 0))) static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
	tp_http *h = cls;
	char msg[512];
	size_t n;

	vsnprintf(msg, sizeof(msg), fmt, ap);
	n = strlen(msg);
	while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
		msg[--n] = '\0';
	if (pthread_equal(pthread_self(), h->starter))
		snprintf(h->start_error, sizeof(h->start_error), "%s", msg);
	tp_log_warn("http: %s", msg);
}

/* ---------------------------------------------------------------- API */

int tp_http_start(tp_http **out, const tp_http_opts *opts)
{
	struct sockaddr_storage addr;
	const char *secrets[NKINDS];
	tp_http *h = NULL;
	bool ipv6 = false;
	uint16_t port = 0;
	unsigned int flags;
	int rc = 0;

	*out = NULL;
	if (!opts)
		return tp_error_set(TP_EINVALID, "http: no options");
	rc = parse_bind(&addr, &ipv6, &port, opts->bind);
	if (rc < 0)
		goto done;
	if (opts->api_token && !opts->api_token[0]) {
		/* an empty token would silently mean "no authentication": refuse it */
		rc = tp_error_set(TP_EINVALID, "http: api_token is set but empty");
		goto done;
	}

	h = tp_calloc(1, sizeof(*h));
	pthread_mutex_init(&h->hook_mu, NULL);
	h->deliveries = tp_delivery_log_new(DELIVERY_LOG_CAPACITY);
	h->max_body = opts->max_body ? opts->max_body : DEFAULT_MAX_BODY;
	h->on_webhook = opts->on_webhook;
	h->on_get = opts->on_get;
	h->ctx = opts->ctx;
	h->starter = pthread_self();
	secrets[TP_WEBHOOK_GITHUB] = opts->github_secret;
	secrets[TP_WEBHOOK_GITLAB] = opts->gitlab_token;
	secrets[TP_WEBHOOK_GENERIC] = opts->generic_secret;
	for (int k = 0; k < NKINDS; k++)
		if (secrets[k] && secrets[k][0]) /* empty: not configured, the path answers 404 */
			h->secrets[k] = tp_strdup(secrets[k]);
	if (opts->api_token) {
		h->api_token_set = true;
		tp_sha256(h->api_token_digest, opts->api_token, strlen(opts->api_token));
	}

	flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO | MHD_USE_ERROR_LOG;
	if (ipv6)
		flags |= MHD_USE_IPv6;
	/* the logger must come first or early messages go to libmicrohttpd's own stderr logger */
	/* clang-format off: one option and its values per line */
	h->daemon = MHD_start_daemon(flags, port, NULL, NULL, on_request, h,
				     MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, h,
				     MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr,
				     MHD_OPTION_THREAD_POOL_SIZE, POOL_THREADS,
				     MHD_OPTION_CONNECTION_LIMIT, CONNECTION_LIMIT,
				     MHD_OPTION_CONNECTION_TIMEOUT, CONNECTION_TIMEOUT_S,
				     MHD_OPTION_URI_LOG_CALLBACK, on_uri, h,
				     MHD_OPTION_NOTIFY_COMPLETED, on_completed, h,
				     MHD_OPTION_END);
	/* clang-format on */
	if (!h->daemon) {
		rc = tp_error_set(TP_EIO, "http: cannot listen on %s%s%s", opts->bind,
				  h->start_error[0] ? ": " : "", h->start_error);
		goto done;
	}
	tp_log_info("http: listening on %s (port %d)", opts->bind, tp_http_port(h));
	*out = h;
	h = NULL;
done:
	tp_http_stop(h);
	return rc;
}

int tp_http_port(const tp_http *h)
{
	const union MHD_DaemonInfo *info;
	if (!h || !h->daemon)
		return -1;
	info = MHD_get_daemon_info(h->daemon, MHD_DAEMON_INFO_BIND_PORT);
	return info ? (int)info->port : -1;
}

void tp_http_stop(tp_http *h)
{
	if (!h)
		return;
	if (h->daemon)
		MHD_stop_daemon(h->daemon); /* joins the threads; completes pending requests */
	tp_delivery_log_free(h->deliveries);
	for (int k = 0; k < NKINDS; k++)
		free_secret(h->secrets[k]);
	OPENSSL_cleanse(h->api_token_digest, sizeof(h->api_token_digest));
	pthread_mutex_destroy(&h->hook_mu);
	free(h);
}
