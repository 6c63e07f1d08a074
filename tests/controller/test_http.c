/* controller/http.c: a real server on 127.0.0.1 (port 0) driven with libcurl — routes, signed
 * and forged webhooks, duplicates, body limits, the API token, methods and security headers. */
#include <criterion/criterion.h>
#include <curl/curl.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "controller/controller.h"
#include "support/support.h"

#define SECRET    "webhook-secret"
#define TOKEN     "api-token-123"
#define PUSH_BODY "{\"ref\":\"refs/heads/main\",\"after\":\"abc\"}"

/* What the callbacks saw; written on server threads. */
typedef struct {
	pthread_mutex_t mu;
	int webhooks;
	tp_webhook_info last;
	int gets;
	char last_query[256];
} seen;

static seen calls = {.mu = PTHREAD_MUTEX_INITIALIZER};
static tp_http *server;

static void on_webhook(void *ctx, const tp_webhook_info *info)
{
	seen *s = ctx;
	pthread_mutex_lock(&s->mu);
	s->webhooks++;
	s->last = *info;
	pthread_mutex_unlock(&s->mu);
}

static void on_get(void *ctx, const char *path, const char *query, tp_http_response *resp)
{
	seen *s = ctx;
	pthread_mutex_lock(&s->mu);
	s->gets++;
	snprintf(s->last_query, sizeof(s->last_query), "%s", query);
	pthread_mutex_unlock(&s->mu);
	if (strcmp(path, "/healthz") == 0 || strcmp(path, "/readyz") == 0) {
		resp->status = 200;
		resp->content_type = "text/plain; charset=utf-8";
		tp_buf_puts(&resp->body, "ok\n");
	} else if (strcmp(path, "/api/status") == 0) {
		resp->status = 200;
		resp->content_type = "application/json";
		tp_buf_puts(&resp->body, "{\"state\":\"idle\"}");
	} else if (strcmp(path, "/echo") == 0) {
		resp->status = 200;
		tp_buf_printf(&resp->body, "query=%s", query);
	} else if (strcmp(path, "/teapot") == 0) {
		resp->status = 418;
	}
	/* anything else: status left 0 → 404 */
}

static int seen_webhooks(void)
{
	int n;
	pthread_mutex_lock(&calls.mu);
	n = calls.webhooks;
	pthread_mutex_unlock(&calls.mu);
	return n;
}

static void start(const char *api_token, size_t max_body, bool gitlab)
{
	tp_http_opts opts = {
	    .bind = "127.0.0.1:0",
	    .max_body = max_body,
	    .github_secret = SECRET,
	    .gitlab_token = gitlab ? SECRET : NULL,
	    .generic_secret = SECRET,
	    .api_token = api_token,
	    .on_webhook = on_webhook,
	    .on_get = on_get,
	    .ctx = &calls,
	};
	cr_assert_eq(tp_http_start(&server, &opts), 0, "%s", tp_error_last());
	cr_assert_gt(tp_http_port(server), 0);
}

static void setup(void)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
}

static void teardown(void)
{
	tp_http_stop(server);
	server = NULL;
	curl_global_cleanup();
}

TestSuite(http, .init = setup, .fini = teardown);

/* ---------------------------------------------------------------- a tiny client */

typedef struct {
	long status; /* 0: transport failure */
	tp_buf body;
	tp_buf headers; /* raw response header lines */
} reply;

typedef struct {
	const char *data;
	size_t len, off;
} upload;

static size_t on_body(char *p, size_t size, size_t n, void *ud)
{
	tp_buf_put(ud, p, size * n);
	return size * n;
}

static size_t on_read(char *p, size_t size, size_t n, void *ud)
{
	upload *u = ud;
	size_t k = size * n;
	if (k > u->len - u->off)
		k = u->len - u->off;
	if (k > 1000)
		k = 1000; /* many small chunks */
	memcpy(p, u->data + u->off, k);
	u->off += k;
	return k;
}

/* method "POST" sends body; "POST-CHUNKED" sends it with chunked transfer encoding. */
static reply request(const char *method, const char *path, const char *const *hdrs,
		     const char *body, size_t len)
{
	CURL *c = curl_easy_init();
	struct curl_slist *list = NULL;
	char url[512];
	upload up = {body, len, 0};
	reply r = {0};

	tp_buf_init(&r.body, 0);
	tp_buf_init(&r.headers, 0);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", tp_http_port(server), path);
	for (size_t i = 0; hdrs && hdrs[i]; i++)
		list = curl_slist_append(list, hdrs[i]);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, 20L);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &r.body);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, &r.headers);
	if (strcmp(method, "POST") == 0) {
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
	} else if (strcmp(method, "POST-CHUNKED") == 0) {
		curl_easy_setopt(c, CURLOPT_POST, 1L);
		curl_easy_setopt(c, CURLOPT_READFUNCTION, on_read);
		curl_easy_setopt(c, CURLOPT_READDATA, &up);
		list = curl_slist_append(list, "Transfer-Encoding: chunked");
	} else if (strcmp(method, "HEAD") == 0) {
		curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
	} else if (strcmp(method, "GET") != 0) {
		curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	}
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, list);
	if (curl_easy_perform(c) == CURLE_OK)
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r.status);
	curl_slist_free_all(list);
	curl_easy_cleanup(c);
	return r;
}

static void reply_free(reply *r)
{
	tp_buf_free(&r->body);
	tp_buf_free(&r->headers);
}

static bool has_header(const reply *r, const char *line)
{
	return strcasestr(tp_buf_cstr(&r->headers), line) != NULL;
}

static reply get(const char *path, const char *auth)
{
	const char *hdrs[] = {auth, NULL};
	return request("GET", path, auth ? hdrs : NULL, NULL, 0);
}

/* A GitHub delivery signed with secret. */
static reply github_post(const char *secret, const char *delivery, const char *body, size_t len)
{
	uint8_t mac[TP_SHA256_LEN];
	char hex[2 * TP_SHA256_LEN + 1], sig[128], id[200];
	const char *hdrs[] = {sig, id, "X-GitHub-Event: push", "Content-Type: application/json",
			      NULL};
	tp_hmac_sha256(mac, secret, strlen(secret), body, len);
	tp_hex_encode(hex, mac, sizeof(mac));
	snprintf(sig, sizeof(sig), "X-Hub-Signature-256: sha256=%s", hex);
	snprintf(id, sizeof(id), "X-GitHub-Delivery: %s", delivery);
	return request("POST", "/hooks/github", hdrs, body, len);
}

/* ---------------------------------------------------------------- GET */

Test(http, healthz_through_on_get_with_security_headers)
{
	reply r;
	start(NULL, 0, false);
	r = get("/healthz", NULL);
	cr_assert_eq(r.status, 200);
	cr_assert_str_eq(tp_buf_cstr(&r.body), "ok\n");
	cr_assert(has_header(&r, "Content-Type: text/plain; charset=utf-8\r\n"));
	cr_assert(has_header(&r, "Cache-Control: no-store\r\n"));
	cr_assert(has_header(&r, "X-Content-Type-Options: nosniff\r\n"));
	reply_free(&r);
}

Test(http, unknown_path_is_404)
{
	reply r;
	start(NULL, 0, false);
	r = get("/nope", NULL);
	cr_assert_eq(r.status, 404);
	cr_assert(has_header(&r, "Cache-Control: no-store\r\n"));
	reply_free(&r);
	r = get("/teapot", NULL); /* a status without a body is passed through */
	cr_assert_eq(r.status, 418);
	reply_free(&r);
}

Test(http, query_string_reaches_on_get_raw)
{
	reply r;
	start(NULL, 0, false);
	r = get("/echo?limit=10&after=a%20b", NULL);
	cr_assert_eq(r.status, 200);
	cr_assert_str_eq(tp_buf_cstr(&r.body), "query=limit=10&after=a%20b");
	reply_free(&r);
	r = get("/echo", NULL);
	cr_assert_str_eq(tp_buf_cstr(&r.body), "query=");
	reply_free(&r);
}

Test(http, head_has_headers_and_no_body)
{
	reply r;
	start(NULL, 0, false);
	r = request("HEAD", "/api/status", NULL, NULL, 0);
	cr_assert_eq(r.status, 200);
	cr_assert_eq(r.body.len, 0);
	cr_assert(has_header(&r, "Content-Type: application/json\r\n"));
	reply_free(&r);
}

Test(http, other_methods_are_405)
{
	reply r;
	start(NULL, 0, false);
	r = request("PUT", "/healthz", NULL, "x", 1);
	cr_assert_eq(r.status, 405);
	cr_assert(has_header(&r, "Allow: GET, HEAD\r\n"));
	reply_free(&r);
	r = request("DELETE", "/api/status", NULL, NULL, 0);
	cr_assert_eq(r.status, 405);
	reply_free(&r);
	r = request("POST", "/api/status", NULL, "{}", 2);
	cr_assert_eq(r.status, 405);
	reply_free(&r);
	r = get("/hooks/github", NULL); /* webhook paths take POST only */
	cr_assert_eq(r.status, 405);
	cr_assert(has_header(&r, "Allow: POST\r\n"));
	reply_free(&r);
}

/* ---------------------------------------------------------------- webhooks */

Test(http, signed_github_push_then_duplicate)
{
	reply r;
	start(NULL, 0, false);
	r = github_post(SECRET, "delivery-1", PUSH_BODY, strlen(PUSH_BODY));
	cr_assert_eq(r.status, 202, "%ld %s", r.status, tp_buf_cstr(&r.body));
	cr_assert(strstr(tp_buf_cstr(&r.body), "\"status\":\"accepted\""));
	cr_assert(has_header(&r, "Cache-Control: no-store\r\n"));
	reply_free(&r);
	cr_assert_eq(seen_webhooks(), 1);
	cr_assert_str_eq(calls.last.ref, "refs/heads/main");
	cr_assert_str_eq(calls.last.delivery, "delivery-1");
	cr_assert_str_eq(calls.last.event, "push");
	cr_assert_eq(calls.last.kind, TP_WEBHOOK_GITHUB);

	r = github_post(SECRET, "delivery-1", PUSH_BODY, strlen(PUSH_BODY));
	cr_assert_eq(r.status, 200);
	cr_assert(strstr(tp_buf_cstr(&r.body), "\"status\":\"duplicate\""));
	reply_free(&r);
	cr_assert_eq(seen_webhooks(), 1);

	r = github_post(SECRET, "delivery-2", PUSH_BODY, strlen(PUSH_BODY));
	cr_assert_eq(r.status, 202);
	reply_free(&r);
	cr_assert_eq(seen_webhooks(), 2);
}

Test(http, bad_signature_is_401_and_triggers_nothing)
{
	reply r;
	const char *hdrs[] = {"X-GitHub-Delivery: x", NULL};
	start(NULL, 0, false);
	r = github_post("not the secret", "delivery-1", PUSH_BODY, strlen(PUSH_BODY));
	cr_assert_eq(r.status, 401);
	cr_assert_str_eq(tp_buf_cstr(&r.body), "{\"error\":\"invalid signature\"}\n");
	reply_free(&r);
	r = request("POST", "/hooks/github", hdrs, PUSH_BODY, strlen(PUSH_BODY)); /* unsigned */
	cr_assert_eq(r.status, 401);
	reply_free(&r);
	r = request("POST", "/hooks/generic", hdrs, PUSH_BODY, strlen(PUSH_BODY));
	cr_assert_eq(r.status, 401);
	reply_free(&r);
	cr_assert_eq(seen_webhooks(), 0);
	/* a refused delivery id is not remembered: the authentic one still goes through */
	r = github_post(SECRET, "delivery-1", PUSH_BODY, strlen(PUSH_BODY));
	cr_assert_eq(r.status, 202);
	reply_free(&r);
	cr_assert_eq(seen_webhooks(), 1);
}

Test(http, oversized_body_is_413)
{
	size_t big = 2 * 1024 * 1024;
	char *body = tp_malloc(big);
	reply r;
	memset(body, ' ', big);
	body[0] = '{';
	body[big - 1] = '}';
	start(NULL, 0, false);
	r = github_post(SECRET, "big-1", body, big); /* correctly signed, still too big */
	cr_assert_eq(r.status, 413);
	reply_free(&r);
	cr_assert_eq(seen_webhooks(), 0);
	/* exactly at the limit is fine (not JSON either: the signature is what counts) */
	r = github_post(SECRET, "limit-1", body + big - 1024 * 1024, 1024 * 1024);
	cr_assert_eq(r.status, 202);
	reply_free(&r);
	cr_assert_eq(seen_webhooks(), 1);
	cr_assert_str_eq(calls.last.ref, "");
	free(body);
}

Test(http, chunked_body_over_the_limit_is_refused)
{
	char body[6000];
	const char *hdrs[] = {"X-Tapestry-Signature-256: sha256=00", NULL};
	reply r;
	memset(body, 'a', sizeof(body));
	start(NULL, 4096, false);
	r = request("POST-CHUNKED", "/hooks/generic", hdrs, body, sizeof(body));
	cr_assert_eq(r.status, 413, "%ld", r.status);
	reply_free(&r);
	/* far over: the server stops draining and drops the connection (or answers 413) */
	{
		size_t huge = 256 * 1024;
		char *p = tp_malloc(huge);
		memset(p, 'a', huge);
		r = request("POST-CHUNKED", "/hooks/generic", hdrs, p, huge);
		cr_assert(r.status == 413 || r.status == 0, "%ld", r.status);
		reply_free(&r);
		free(p);
	}
	cr_assert_eq(seen_webhooks(), 0);
	/* and the server is still healthy */
	r = get("/healthz", NULL);
	cr_assert_eq(r.status, 200);
	reply_free(&r);
}

Test(http, chunked_body_within_the_limit_is_verified)
{
	static const char body[] = "{\"ref\":\"refs/heads/dev\"}";
	uint8_t mac[TP_SHA256_LEN];
	char hex[2 * TP_SHA256_LEN + 1], sig[128];
	const char *hdrs[] = {sig, "X-Tapestry-Delivery: c-1", NULL};
	reply r;
	tp_hmac_sha256(mac, SECRET, strlen(SECRET), body, strlen(body));
	tp_hex_encode(hex, mac, sizeof(mac));
	snprintf(sig, sizeof(sig), "X-Tapestry-Signature-256: sha256=%s", hex);
	start(NULL, 0, false);
	r = request("POST-CHUNKED", "/hooks/generic", hdrs, body, strlen(body));
	cr_assert_eq(r.status, 202, "%ld", r.status);
	reply_free(&r);
	cr_assert_eq(seen_webhooks(), 1);
	cr_assert_str_eq(calls.last.ref, "refs/heads/dev");
	cr_assert_eq(calls.last.kind, TP_WEBHOOK_GENERIC);
}

Test(http, unconfigured_hook_is_404)
{
	const char *hdrs[] = {"X-Gitlab-Token: " SECRET, NULL};
	reply r;
	start(NULL, 0, false);
	r = request("POST", "/hooks/gitlab", hdrs, PUSH_BODY, strlen(PUSH_BODY));
	cr_assert_eq(r.status, 404);
	reply_free(&r);
	r = request("POST", "/hooks/bitbucket", hdrs, PUSH_BODY, strlen(PUSH_BODY));
	cr_assert_eq(r.status, 404);
	reply_free(&r);
	cr_assert_eq(seen_webhooks(), 0);
}

Test(http, gitlab_token_hook)
{
	const char *good[] = {"X-Gitlab-Token: " SECRET, "X-Gitlab-Event: Push Hook",
			      "X-Gitlab-Event-UUID: g-1", NULL};
	const char *bad[] = {"X-Gitlab-Token: nope", "X-Gitlab-Event-UUID: g-2", NULL};
	reply r;
	start(NULL, 0, true);
	r = request("POST", "/hooks/gitlab", bad, PUSH_BODY, strlen(PUSH_BODY));
	cr_assert_eq(r.status, 401);
	reply_free(&r);
	r = request("POST", "/hooks/gitlab", good, PUSH_BODY, strlen(PUSH_BODY));
	cr_assert_eq(r.status, 202);
	reply_free(&r);
	cr_assert_eq(seen_webhooks(), 1);
	cr_assert_str_eq(calls.last.event, "push");
	r = request("POST", "/hooks/gitlab", good, PUSH_BODY, strlen(PUSH_BODY));
	cr_assert_eq(r.status, 200);
	reply_free(&r);
	cr_assert_eq(seen_webhooks(), 1);
}

Test(http, deliveries_without_id_are_never_duplicates)
{
	uint8_t mac[TP_SHA256_LEN];
	char hex[2 * TP_SHA256_LEN + 1], sig[128];
	const char *hdrs[] = {sig, NULL};
	reply r;
	tp_hmac_sha256(mac, SECRET, strlen(SECRET), PUSH_BODY, strlen(PUSH_BODY));
	tp_hex_encode(hex, mac, sizeof(mac));
	snprintf(sig, sizeof(sig), "X-Hub-Signature-256: sha256=%s", hex);
	start(NULL, 0, false);
	for (int i = 0; i < 2; i++) {
		r = request("POST", "/hooks/github", hdrs, PUSH_BODY, strlen(PUSH_BODY));
		cr_assert_eq(r.status, 202);
		reply_free(&r);
	}
	cr_assert_eq(seen_webhooks(), 2);
}

/* ---------------------------------------------------------------- API token */

Test(http, api_token_is_enforced)
{
	reply r;
	start(TOKEN, 0, false);
	r = get("/api/status", NULL);
	cr_assert_eq(r.status, 401);
	cr_assert(has_header(&r, "WWW-Authenticate: Bearer"));
	reply_free(&r);
	r = get("/api/status", "Authorization: Bearer wrong");
	cr_assert_eq(r.status, 401);
	reply_free(&r);
	r = get("/api/status", "Authorization: Bearer " TOKEN "x");
	cr_assert_eq(r.status, 401);
	reply_free(&r);
	r = get("/api/status", "Authorization: Basic " TOKEN);
	cr_assert_eq(r.status, 401);
	reply_free(&r);
	r = get("/api/status", "Authorization: Bearer " TOKEN);
	cr_assert_eq(r.status, 200);
	cr_assert_str_eq(tp_buf_cstr(&r.body), "{\"state\":\"idle\"}");
	reply_free(&r);
	r = get("/api/status", "authorization: bearer " TOKEN); /* scheme is case-insensitive */
	cr_assert_eq(r.status, 200);
	reply_free(&r);
	/* unknown paths are not revealed without the token either */
	r = get("/nope", NULL);
	cr_assert_eq(r.status, 401);
	reply_free(&r);
	/* probes stay open */
	r = get("/healthz", NULL);
	cr_assert_eq(r.status, 200);
	reply_free(&r);
	r = get("/readyz", NULL);
	cr_assert_eq(r.status, 200);
	reply_free(&r);
	/* webhooks authenticate by signature, not by token */
	r = github_post(SECRET, "t-1", PUSH_BODY, strlen(PUSH_BODY));
	cr_assert_eq(r.status, 202);
	reply_free(&r);
}

/* ---------------------------------------------------------------- start-up */

Test(http, bad_options_are_refused)
{
	static const char *bad[] = {"",          "nonsense",       "localhost:7777",
				    "127.0.0.1", "127.0.0.1:",     "127.0.0.1:99999",
				    ":7777",     "127.0.0.1:7x",   "[::1:7777",
				    "[]:7777",   "256.0.0.1:7777", "127.0.0.1:123456"};
	tp_http_opts opts = {.bind = "127.0.0.1:0"};
	tp_http *h = NULL;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		opts.bind = bad[i];
		cr_assert_eq(tp_http_start(&h, &opts), TP_EINVALID, "%s", bad[i]);
		cr_assert_null(h);
	}
	opts.bind = NULL;
	cr_assert_eq(tp_http_start(&h, &opts), TP_EINVALID);
	opts.bind = "127.0.0.1:0";
	opts.api_token = ""; /* would mean "no authentication": refused */
	cr_assert_eq(tp_http_start(&h, &opts), TP_EINVALID);
	cr_assert_null(h);
	tp_http_stop(NULL);
	cr_assert_eq(tp_http_port(NULL), -1);
}

Test(http, busy_port_is_an_error)
{
	tp_http_opts opts = {0};
	tp_http *h = NULL;
	char bind[64];
	start(NULL, 0, false);
	snprintf(bind, sizeof(bind), "127.0.0.1:%d", tp_http_port(server));
	opts.bind = bind;
	cr_assert_eq(tp_http_start(&h, &opts), TP_EIO);
	cr_assert(strstr(tp_error_last(), bind), "%s", tp_error_last());
	cr_assert_null(h);
}

Test(http, ipv6_loopback)
{
	tp_http_opts opts = {.bind = "[::1]:0", .on_get = on_get, .ctx = &calls};
	char url[128];
	long status = 0;
	CURL *c;
	if (tp_http_start(&server, &opts) != 0)
		cr_skip_test("no IPv6 loopback here: %s", tp_error_last());
	snprintf(url, sizeof(url), "http://[::1]:%d/healthz", tp_http_port(server));
	c = curl_easy_init();
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	{
		tp_buf b;
		tp_buf_init(&b, 0);
		curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
		cr_assert_eq(curl_easy_perform(c), CURLE_OK);
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
		tp_buf_free(&b);
	}
	curl_easy_cleanup(c);
	cr_assert_eq(status, 200);
}

/* ---------------------------------------------------------------- concurrency */

#define CLIENTS 6
#define ROUNDS  15

static void *client(void *arg)
{
	long ok = 0;
	for (int i = 0; i < ROUNDS; i++) {
		reply r = get("/healthz", NULL);
		if (r.status == 200 && strcmp(tp_buf_cstr(&r.body), "ok\n") == 0)
			ok++;
		reply_free(&r);
	}
	return (void *)ok;
}

Test(http, concurrent_clients)
{
	pthread_t t[CLIENTS];
	long total = 0;
	start(NULL, 0, false);
	for (int i = 0; i < CLIENTS; i++)
		cr_assert_eq(pthread_create(&t[i], NULL, client, NULL), 0);
	for (int i = 0; i < CLIENTS; i++) {
		void *ret;
		pthread_join(t[i], &ret);
		total += (long)ret;
	}
	cr_assert_eq(total, CLIENTS * ROUNDS);
}
