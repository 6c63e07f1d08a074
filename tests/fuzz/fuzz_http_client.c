/*
 * libFuzzer target for the shared HTTP client (util/http_client.c) on what a server answers:
 * the input is the complete answer, status line, headers and framing included, of a server on
 * 127.0.0.1 (scripted_http.h, raw mode) to one request of tp_http_client_do. The reply then
 * goes through what every provider does with a failed call: tp_http_status_error (status
 * classes, Retry-After recorded for throttling and transient failures) and header lookups.
 *
 * Besides crashes, sanitizer reports and leaks, a reply that breaks the client's documented
 * guarantees is a bug: a body over the request's cap or not NUL-terminated, a header name not
 * in lower case, a Retry-After below -1, a failure code the contract does not list, a status
 * error that is not classified as util.h says.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "scripted_http.h"

#define BODY_CAP 4096

static void check_reply(const tp_http_reply *r)
{
	const char *k;
	json_t *v;
	int code;
	if (r->body.len > BODY_CAP || !r->body.ptr || r->body.ptr[r->body.len] != '\0')
		abort();
	if (r->retry_after_ms < -1)
		abort();
	json_object_foreach(r->headers, k, v)
	{
		for (const char *p = k; *p; p++)
			if (*p >= 'A' && *p <= 'Z')
				abort();
		if (!json_is_string(v))
			abort();
	}
	(void)tp_http_reply_header(r, "Content-Type");
	(void)tp_http_reply_header(r, "X-Amzn-RequestId");
	tp_error_set_retry_after(-1);
	code = tp_http_status_error(r, "fuzz GET /", NULL);
	if (r->status < 400) {
		if (code != 0)
			abort();
		return;
	}
	if (code != (r->status == 429                       ? TP_ETHROTTLED
		     : r->status >= 500 || r->status == 408 ? TP_ETRANSIENT
		     : r->status == 401 || r->status == 403 ? TP_EAUTH
		     : r->status == 404                     ? TP_ENOTFOUND
		     : r->status == 409                     ? TP_ECONFLICT
							    : TP_EINVALID))
		abort();
	if ((code == TP_ETHROTTLED || code == TP_ETRANSIENT) &&
	    tp_error_retry_after() != r->retry_after_ms)
		abort();
	if (strlen(tp_error_last()) > 512)
		abort(); /* the excerpt of the body is bounded */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static bool ready;
	static char url[96];
	tp_http_client *c;
	tp_http_request req;
	tp_http_reply rep;
	const char *headers[] = {"Accept: application/json", NULL};
	int rc;

	if (!ready) {
		fz_server_start();
		fz_clock_install();
		unsetenv("http_proxy");
		unsetenv("HTTP_PROXY");
		setenv("NO_PROXY", "127.0.0.1", 1);
		snprintf(url, sizeof(url), "%s/api/v1/things?limit=100", fz_server_url());
		ready = true;
	}
	fz_clock_reset();
	fz_server_load_raw(data, size);
	c = tp_http_client_new();
	memset(&req, 0, sizeof(req));
	req.method = "GET";
	req.url = url;
	req.headers = headers;
	req.timeout_ms = 5000;
	req.max_response = BODY_CAP;
	rc = tp_http_client_do(c, &rep, &req);
	if (rc == 0)
		check_reply(&rep);
	else if (rc != TP_ETRANSIENT && rc != TP_ETOOBIG && rc != TP_EINVALID)
		abort();
	tp_http_reply_clear(&rep);
	tp_http_client_free(c);
	fz_server_unload();
	tp_error_clear();
	return 0;
}
