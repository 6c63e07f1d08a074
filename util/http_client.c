/*
 * The HTTP client (libcurl) providers talk to their APIs with. One client per provider
 * session: requests share a connection cache (a CURLSH guarded by mutexes) and may run from
 * several engine workers at once, each on its own easy handle. Replies are bounded; failures
 * are classified (transient, throttled, auth, invalid...) for the retry policy.
 */
#include "util.h"

#include <ctype.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <curl/curl.h>

struct tp_http_client {
	CURLSH *share;
	pthread_mutex_t locks[CURL_LOCK_DATA_LAST];
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;

static void curl_init_once(void)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
}

static void share_lock(CURL *h, curl_lock_data data, curl_lock_access access, void *ctx)
{
	tp_http_client *c = ctx;
	(void)h;
	(void)access;
	pthread_mutex_lock(&c->locks[data]);
}

static void share_unlock(CURL *h, curl_lock_data data, void *ctx)
{
	tp_http_client *c = ctx;
	(void)h;
	pthread_mutex_unlock(&c->locks[data]);
}

tp_http_client *tp_http_client_new(void)
{
	tp_http_client *c;
	pthread_once(&curl_once, curl_init_once);
	c = tp_calloc(1, sizeof(*c));
	for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
		pthread_mutex_init(&c->locks[i], NULL);
	c->share = curl_share_init();
	curl_share_setopt(c->share, CURLSHOPT_LOCKFUNC, share_lock);
	curl_share_setopt(c->share, CURLSHOPT_UNLOCKFUNC, share_unlock);
	curl_share_setopt(c->share, CURLSHOPT_USERDATA, c);
	curl_share_setopt(c->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_CONNECT);
	curl_share_setopt(c->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
	curl_share_setopt(c->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
	return c;
}

void tp_http_client_free(tp_http_client *c)
{
	if (!c)
		return;
	curl_share_cleanup(c->share);
	for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
		pthread_mutex_destroy(&c->locks[i]);
	free(c);
}

typedef struct {
	tp_http_reply *reply;
	bool too_big;
} sink;

static size_t on_body(char *data, size_t size, size_t n, void *ctx)
{
	sink *s = ctx;
	if (tp_buf_put(&s->reply->body, data, size * n) < 0) {
		s->too_big = true;
		return 0; /* aborts the transfer */
	}
	return size * n;
}

/* The latest moment an HTTP date can name (9999-12-31T23:59:59Z), in seconds: a larger
 * delta-seconds is held there instead of overflowing when turned into milliseconds. */
#define RETRY_AFTER_MAX_S ((long)253402300799)

/* Retry-After: delta-seconds or an HTTP date. */
static int64_t parse_retry_after(const char *v)
{
	struct tm tm;
	char *end = NULL;
	long secs;
	while (*v == ' ')
		v++;
	secs = strtol(v, &end, 10);
	if (end != v && (*end == '\0' || isspace((unsigned char)*end))) {
		if (secs > RETRY_AFTER_MAX_S)
			secs = RETRY_AFTER_MAX_S;
		return secs < 0 ? 0 : (int64_t)secs * 1000;
	}
	memset(&tm, 0, sizeof(tm));
	if (strptime(v, "%a, %d %b %Y %H:%M:%S GMT", &tm)) {
		int64_t when = (int64_t)timegm(&tm) * 1000, now = tp_clock_now_ms();
		return when > now ? when - now : 0;
	}
	return -1;
}

static size_t on_header(char *data, size_t size, size_t n, void *ctx)
{
	sink *s = ctx;
	size_t len = size * n;
	char *line, *colon, *name, *value, *end;
	if (len < 3 || len > 8192)
		return len;
	line = tp_strndup(data, len);
	if (strncmp(line, "HTTP/", 5) == 0) {
		/* a new response (after a redirect or 100 Continue) starts a new header set */
		json_object_clear(s->reply->headers);
		free(line);
		return len;
	}
	colon = strchr(line, ':');
	if (colon) {
		*colon = '\0';
		name = line;
		value = colon + 1;
		while (*value == ' ' || *value == '\t')
			value++;
		end = value + strlen(value);
		while (end > value && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' '))
			*--end = '\0';
		for (char *p = name; *p; p++)
			*p = (char)tolower((unsigned char)*p);
		json_object_set_new(s->reply->headers, name, json_string(value));
	}
	free(line);
	return len;
}

int tp_http_client_do(tp_http_client *c, tp_http_reply *out, const tp_http_request *req)
{
	CURL *h = NULL;
	struct curl_slist *hl = NULL;
	sink s = {out, false};
	char errbuf[CURL_ERROR_SIZE] = "";
	CURLcode cc;
	const char *ra;
	char *ua = NULL;
	int rc = 0;

	memset(out, 0, sizeof(*out));
	tp_buf_init(&out->body, req->max_response ? req->max_response : (size_t)16 << 20);
	out->headers = json_object();
	out->retry_after_ms = -1;
	h = curl_easy_init();
	if (!h) {
		rc = tp_error_set(TP_ERROR, "libcurl: cannot create a handle");
		goto done;
	}
	for (size_t i = 0; req->headers && req->headers[i]; i++)
		hl = curl_slist_append(hl, req->headers[i]);
	/* libcurl adds "Expect: 100-continue" to larger bodies: one round trip too many */
	hl = curl_slist_append(hl, "Expect:");
	ua = req->user_agent ? tp_strdup(req->user_agent) : tp_sprintf("tapestry/%s",
									TAPESTRY_VERSION);
	curl_easy_setopt(h, CURLOPT_SHARE, c ? c->share : NULL);
	curl_easy_setopt(h, CURLOPT_URL, req->url);
	curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, req->method);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hl);
	curl_easy_setopt(h, CURLOPT_USERAGENT, ua);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)(req->timeout_ms > 0 ? req->timeout_ms
									    : 30000));
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS,
			 (long)(req->connect_timeout_ms > 0 ? req->connect_timeout_ms : 10000));
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &s);
	curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(h, CURLOPT_HEADERDATA, &s);
	if (strcmp(req->method, "HEAD") == 0)
		curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
	if (req->body) {
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, req->body);
		curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
	}
	cc = curl_easy_perform(h);
	if (s.too_big) {
		rc = tp_error_set(TP_ETOOBIG, "%s %s: the response is larger than %zu bytes",
				  req->method, req->url, out->body.max);
		goto done;
	}
	if (cc == CURLE_URL_MALFORMAT || cc == CURLE_UNSUPPORTED_PROTOCOL) {
		rc = tp_error_set(TP_EINVALID, "%s %s: %s", req->method, req->url,
				  errbuf[0] ? errbuf : curl_easy_strerror(cc));
		goto done;
	}
	if (cc != CURLE_OK) {
		/* connection refused, reset, DNS, TLS handshake, timeout: worth another try */
		rc = tp_error_set(TP_ETRANSIENT, "%s %s: %s", req->method, req->url,
				  errbuf[0] ? errbuf : curl_easy_strerror(cc));
		goto done;
	}
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &out->status);
	if ((ra = tp_json_get_str(out->headers, "retry-after")) != NULL)
		out->retry_after_ms = parse_retry_after(ra);
	if (!out->body.ptr)
		tp_buf_put(&out->body, "", 0);
done:
	if (rc < 0) /* no reply to read: nothing for the caller to clear */
		tp_http_reply_clear(out);
	curl_slist_free_all(hl);
	if (h)
		curl_easy_cleanup(h);
	free(ua);
	return rc;
}

void tp_http_reply_clear(tp_http_reply *r)
{
	if (!r)
		return;
	tp_buf_free(&r->body);
	json_decref(r->headers);
	r->headers = NULL;
}

const char *tp_http_reply_header(const tp_http_reply *r, const char *name)
{
	char lower[128];
	size_t n = strlen(name);
	if (n >= sizeof(lower))
		return NULL;
	for (size_t i = 0; i <= n; i++)
		lower[i] = (char)tolower((unsigned char)name[i]);
	return tp_json_get_str(r->headers, lower);
}

int tp_http_status_error(const tp_http_reply *r, const char *what, const char *detail)
{
	char excerpt[301];
	size_t n = 0;
	int code;
	if (r->status < 400)
		return 0;
	if (!detail) {
		const char *b = tp_buf_cstr(&r->body);
		for (; b[n] && n < sizeof(excerpt) - 1; n++)
			excerpt[n] = (unsigned char)b[n] < 0x20 ? ' ' : b[n];
		excerpt[n] = '\0';
		detail = excerpt;
	}
	if (r->status == 429)
		code = TP_ETHROTTLED;
	else if (r->status >= 500 || r->status == 408)
		code = TP_ETRANSIENT;
	else if (r->status == 401 || r->status == 403)
		code = TP_EAUTH;
	else if (r->status == 404)
		code = TP_ENOTFOUND;
	else if (r->status == 409)
		code = TP_ECONFLICT;
	else
		code = TP_EINVALID;
	tp_error_set(code, "%s: HTTP %ld%s%s", what, r->status, detail[0] ? ": " : "", detail);
	if (code == TP_ETHROTTLED || code == TP_ETRANSIENT)
		tp_error_set_retry_after(r->retry_after_ms);
	return code;
}

int64_t tp_backoff_ms(int attempt, int64_t base_ms, int64_t cap_ms)
{
	int64_t ceiling;
	if (attempt < 1)
		attempt = 1;
	ceiling = base_ms << (attempt - 1 < 20 ? attempt - 1 : 20);
	if (ceiling > cap_ms || ceiling <= 0)
		ceiling = cap_ms;
	return (int64_t)tp_clock_rand_below((uint64_t)ceiling + 1);
}
