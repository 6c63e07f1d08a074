/*
 * util/http_client.c against a real HTTP server on 127.0.0.1 (libmicrohttpd, in-process):
 * status and body, headers, Retry-After in both forms, the response cap, timeouts and refused
 * connections classified as transient, and the status → error-code mapping.
 */
#include <criterion/criterion.h>
#include <microhttpd.h>
#include <string.h>
#include <unistd.h>

#include "support/support.h"
#include "util/util.h"

static struct MHD_Daemon *d;
static int port;

static enum MHD_Result answer(void *cls, struct MHD_Connection *conn, const char *url,
			      const char *method, const char *version, const char *upload,
			      size_t *upload_size, void **state)
{
	struct MHD_Response *r;
	enum MHD_Result ret;
	int status = 200;
	const char *body = "ok";
	char echo[256];
	static int marker;
	(void)cls;
	(void)version;
	(void)upload;
	if (*state == NULL) {
		*state = &marker;
		return MHD_YES;
	}
	if (*upload_size) {
		*upload_size = 0; /* body consumed; answer on the final call */
		return MHD_YES;
	}
	if (strcmp(url, "/throttled") == 0 || strcmp(url, "/throttled-forever") == 0) {
		status = 429;
		body = "{\"message\":\"slow down\"}";
	} else if (strcmp(url, "/unavailable") == 0) {
		status = 503;
		body = "<html>proxy error</html>";
	} else if (strcmp(url, "/big") == 0) {
		static char big[200000];
		memset(big, 'x', sizeof(big) - 1);
		body = big;
	} else if (strcmp(url, "/slow") == 0) {
		usleep(700000);
	} else if (strcmp(url, "/echo") == 0) {
		const char *h = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-Test");
		snprintf(echo, sizeof(echo), "%s %s", method, h ? h : "-");
		body = echo;
	}
	r = MHD_create_response_from_buffer(strlen(body), (void *)(uintptr_t)body,
					    MHD_RESPMEM_MUST_COPY);
	if (strcmp(url, "/throttled") == 0)
		MHD_add_response_header(r, "Retry-After", "7");
	if (strcmp(url, "/throttled-forever") == 0)
		MHD_add_response_header(r, "Retry-After", "99999999999999999999");
	if (strcmp(url, "/unavailable") == 0)
		MHD_add_response_header(r, "Retry-After", "Wed, 21 Oct 2099 07:28:00 GMT");
	MHD_add_response_header(r, "X-Request-Id", "req-123");
	ret = MHD_queue_response(conn, (unsigned)status, r);
	MHD_destroy_response(r);
	return ret;
}

static void setup(void)
{
	port = ts_free_port();
	d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION,
			     (uint16_t)port, NULL, NULL, answer, NULL, MHD_OPTION_END);
	cr_assert_not_null(d, "cannot start the test server");
}

static void teardown(void)
{
	MHD_stop_daemon(d);
}

TestSuite(http_client, .init = setup, .fini = teardown);

static int call(tp_http_client *c, tp_http_reply *out, const char *method, const char *path,
		size_t cap, int64_t timeout)
{
	char url[128];
	const char *headers[] = {"X-Test: hello", NULL};
	tp_http_request req = {0};
	snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", port, path);
	req.method = method;
	req.url = url;
	req.headers = headers;
	req.body = strcmp(method, "POST") == 0 ? "{\"a\":1}" : NULL;
	req.body_len = req.body ? strlen(req.body) : 0;
	req.max_response = cap;
	req.timeout_ms = timeout;
	return tp_http_client_do(c, out, &req);
}

Test(http_client, status_body_and_headers)
{
	tp_http_client *c = tp_http_client_new();
	tp_http_reply r;
	cr_assert_eq(call(c, &r, "POST", "/echo", 0, 0), 0, "%s", tp_error_last());
	cr_assert_eq(r.status, 200);
	cr_assert_str_eq(tp_buf_cstr(&r.body), "POST hello");
	cr_assert_str_eq(tp_http_reply_header(&r, "x-request-id"), "req-123");
	cr_assert_str_eq(tp_http_reply_header(&r, "X-Request-ID"), "req-123");
	cr_assert_eq(r.retry_after_ms, -1);
	cr_assert_eq(tp_http_status_error(&r, "echo", NULL), 0);
	tp_http_reply_clear(&r);
	/* the same client again: connections are reused */
	cr_assert_eq(call(c, &r, "GET", "/echo", 0, 0), 0);
	cr_assert_str_eq(tp_buf_cstr(&r.body), "GET hello");
	tp_http_reply_clear(&r);
	tp_http_client_free(c);
}

Test(http_client, throttling_and_server_errors_carry_retry_after)
{
	tp_http_client *c = tp_http_client_new();
	tp_http_reply r;
	cr_assert_eq(call(c, &r, "GET", "/throttled", 0, 0), 0);
	cr_assert_eq(r.status, 429);
	cr_assert_eq(r.retry_after_ms, 7000);
	cr_assert_eq(tp_http_status_error(&r, "list sources", NULL), TP_ETHROTTLED);
	cr_assert_eq(tp_error_retry_after(), 7000);
	cr_assert_str_eq(tp_error_last(), "list sources: HTTP 429: {\"message\":\"slow down\"}");
	tp_http_reply_clear(&r);
	cr_assert_eq(call(c, &r, "GET", "/unavailable", 0, 0), 0);
	cr_assert_gt(r.retry_after_ms, 1000LL * 3600 * 24 * 365);
	cr_assert_eq(tp_http_status_error(&r, "x", "upstream down"), TP_ETRANSIENT);
	cr_assert_str_eq(tp_error_last(), "x: HTTP 503: upstream down");
	tp_http_reply_clear(&r);
	tp_http_client_free(c);
}

/* found by fuzz_http_client: delta-seconds too large for milliseconds overflowed (UBSan) */
Test(http_client, a_huge_retry_after_is_held_at_the_latest_http_date)
{
	tp_http_client *c = tp_http_client_new();
	tp_http_reply r;
	cr_assert_eq(call(c, &r, "GET", "/throttled-forever", 0, 0), 0);
	cr_assert_eq(r.status, 429);
	cr_assert_eq(r.retry_after_ms, 253402300799LL * 1000);
	cr_assert_eq(tp_http_status_error(&r, "list sources", NULL), TP_ETHROTTLED);
	cr_assert_eq(tp_error_retry_after(), 253402300799LL * 1000);
	tp_http_reply_clear(&r);
	tp_http_client_free(c);
}

Test(http_client, status_codes_map_to_error_kinds)
{
	static const struct {
		long status;
		int code;
	} map[] = {{401, TP_EAUTH}, {403, TP_EAUTH}, {404, TP_ENOTFOUND}, {409, TP_ECONFLICT},
		   {422, TP_EINVALID}, {400, TP_EINVALID}, {408, TP_ETRANSIENT},
		   {500, TP_ETRANSIENT}, {204, 0}, {302, 0}};
	for (size_t i = 0; i < sizeof(map) / sizeof(*map); i++) {
		tp_http_reply r = {0};
		tp_buf_init(&r.body, 0);
		r.status = map[i].status;
		r.retry_after_ms = -1;
		cr_expect_eq(tp_http_status_error(&r, "op", NULL), map[i].code, "status %ld",
			     map[i].status);
		tp_buf_free(&r.body);
	}
}

Test(http_client, oversized_slow_and_refused)
{
	tp_http_client *c = tp_http_client_new();
	tp_http_reply r;
	char url[64];
	tp_http_request req = {0};
	cr_assert_eq(call(c, &r, "GET", "/big", 1000, 0), TP_ETOOBIG);
	cr_assert(strstr(tp_error_last(), "larger than 1000 bytes"), "%s", tp_error_last());
	tp_http_reply_clear(&r);
	cr_assert_eq(call(c, &r, "GET", "/slow", 0, 200), TP_ETRANSIENT);
	cr_assert(strstr(tp_error_last(), "/slow"), "%s", tp_error_last());
	tp_http_reply_clear(&r);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/", ts_free_port());
	req.method = "GET";
	req.url = url;
	cr_assert_eq(tp_http_client_do(c, &r, &req), TP_ETRANSIENT);
	tp_http_reply_clear(&r);
	req.url = "ftp://127.0.0.1/x";
	cr_assert_eq(tp_http_client_do(c, &r, &req), TP_EINVALID);
	tp_http_reply_clear(&r);
	tp_http_client_free(c);
}

Test(http_client, backoff_is_bounded_full_jitter)
{
	for (int attempt = 1; attempt < 40; attempt++) {
		int64_t delay = tp_backoff_ms(attempt, 100, 5000);
		int64_t ceiling = attempt < 7 ? (100LL << (attempt - 1)) : 5000;
		cr_assert(delay >= 0 && delay <= (ceiling < 5000 ? ceiling : 5000), "attempt %d: %lld",
			  attempt, (long long)delay);
	}
}
