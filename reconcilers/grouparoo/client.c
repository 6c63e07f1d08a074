/*
 * The Grouparoo REST client: one session per engine run talks to a Grouparoo 0.9 server under
 * <url>/api/v1 with `Authorization: Bearer <api key>`, over the shared HTTP client (bounded
 * replies, timeouts, classified transport failures). Every kind's runtime slot goes through
 * tp_gr_call, which turns Grouparoo's answers into Tapestry's error kinds: Grouparoo reports
 * nearly every failure as HTTP 500 with {"error": {"message", "code"}}, so the message is what
 * tells "not found" from "locked" from "validation", and it is kept, word for word (minus any
 * secret the request carried), in the error Tapestry reports. Reads (GET) that fail
 * transiently are asked again here, a few times with backoff and Retry-After, like every
 * provider's client does; writes are left to the engine's retry, which knows whether the
 * object was made.
 */
#include "grouparoo_int.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define PAGE 100
#define MAX_PAGES 1000
#define READ_ATTEMPTS 3
#define READ_BACKOFF_MS 200
#define READ_BACKOFF_CAP_MS 5000
#define RETRY_AFTER_CAP_MS 10000
#define MAX_REPLY ((size_t)32 * 1024 * 1024)
#define DEFAULT_DELETE_WAIT_MS ((int64_t)10 * 60 * 1000)

struct tp_gr_session {
	tp_http_client *http;
	char *base;          /* ".../api/v1", no trailing slash */
	char *auth;          /* "Authorization: Bearer <key>": wiped on close */
	int64_t delete_wait_ms;
	pthread_mutex_t mu;  /* guards baselines */
	json_t *baselines;   /* {address: [ids]} */
};

/* ---------------------------------------------------------------- session */

static char *base_url(const char *url)
{
	size_t n = strlen(url);
	while (n > 0 && url[n - 1] == '/')
		n--;
	if (n >= 7 && strncmp(url + n - 7, "/api/v1", 7) == 0)
		return tp_strndup(url, n);
	{
		char *root = tp_strndup(url, n);
		char *b = tp_sprintf("%s/api/v1", root);
		free(root);
		return b;
	}
}

static bool header_safe(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return false;
	return true;
}

int tp_gr_open(void **out, const tp_provider_env *env)
{
	const char *url = env->endpoint && *env->endpoint ? env->endpoint
							   : tp_json_get_str(env->config, "url");
	const char *key = tp_json_get_str(env->config, "api_key");
	const char *wait = tp_json_get_str(env->config, "delete_timeout");
	tp_gr_session *s;
	int64_t ms = DEFAULT_DELETE_WAIT_MS;

	*out = NULL;
	if (!url || !*url)
		return tp_error_set(TP_EINVALID, "providers.grouparoo.url is not set (the server's "
						 "base URL, e.g. http://grouparoo.internal:3000)");
	if (strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0)
		return tp_error_set(TP_EINVALID, "providers.grouparoo.url must start with http:// "
						 "or https://, got \"%s\"", url);
	if (!key || !*key)
		return tp_error_set(TP_EINVALID, "providers.grouparoo.api_key resolved to an empty "
						 "value");
	if (!header_safe(key))
		return tp_error_set(TP_EINVALID, "providers.grouparoo.api_key holds control "
						 "characters (a trailing newline in the secret?)");
	if (wait && tp_duration_parse(&ms, wait) < 0)
		return tp_error_set(TP_EINVALID, "providers.grouparoo.delete_timeout must be a "
						 "duration such as \"10m\", got \"%s\"", wait);
	s = tp_calloc(1, sizeof(*s));
	s->http = tp_http_client_new();
	s->base = base_url(url);
	s->auth = tp_sprintf("Authorization: Bearer %s", key);
	s->delete_wait_ms = ms;
	s->baselines = json_object();
	pthread_mutex_init(&s->mu, NULL);
	*out = s;
	return 0;
}

void tp_gr_close(void *session)
{
	tp_gr_session *s = session;
	if (!s)
		return;
	tp_http_client_free(s->http);
	free(s->base);
	tp_secret_free(s->auth);
	json_decref(s->baselines);
	pthread_mutex_destroy(&s->mu);
	free(s);
}

const char *tp_gr_base_url(const tp_gr_session *s)
{
	return s->base;
}

int64_t tp_gr_delete_wait_ms(const tp_gr_session *s)
{
	return s->delete_wait_ms;
}

void tp_gr_baseline_set(tp_gr_session *s, const char *address, const json_t *ids)
{
	pthread_mutex_lock(&s->mu);
	if (!json_object_get(s->baselines, address))
		json_object_set_new(s->baselines, address, json_deep_copy(ids));
	pthread_mutex_unlock(&s->mu);
}

json_t *tp_gr_baseline_get(tp_gr_session *s, const char *address)
{
	json_t *v;
	pthread_mutex_lock(&s->mu);
	v = json_deep_copy(json_object_get(s->baselines, address));
	pthread_mutex_unlock(&s->mu);
	return v;
}

/* ---------------------------------------------------------------- errors */

static bool has(const char *hay, const char *needle)
{
	return hay && strstr(hay, needle) != NULL;
}

static bool starts(const char *s, const char *prefix)
{
	return s && strncmp(s, prefix, strlen(prefix)) == 0;
}

int tp_gr_error_code(long status, const char *message, const char *code)
{
	if (status == 429)
		return TP_ETHROTTLED;
	if (status == 401 || status == 403 || has(code, "AUTHENTICATION_ERROR") ||
	    has(code, "AUTHORIZATION_ERROR") || has(message, "Please log in") ||
	    has(message, "apiKey not found") || starts(message, "Not authorized for mode"))
		return TP_EAUTH;
	/* the database behind Grouparoo was busy: try again later */
	if (has(message, "SQLITE_BUSY") || has(message, "database is locked") ||
	    has(message, "deadlock") || has(message, "ECONNREFUSED") ||
	    has(message, "ETIMEDOUT") || has(message, "the server is shutting down") ||
	    has(message, "too many pending requests"))
		return TP_ETRANSIENT;
	if (starts(message, "cannot find ") || has(message, " not found") ||
	    has(message, "does not exist"))
		return TP_ENOTFOUND;
	/* objects from Grouparoo's code config: "you cannot update this locked app (...)" */
	if (has(message, "locked"))
		return TP_ECONFLICT;
	if (has(message, "already in use") || has(message, "already exists") ||
	    has(code, "unique violation"))
		return TP_EEXISTS;
	/* dependencies: "cannot delete ..., source src_1 relies on it", "still in use" */
	if (has(message, "in use") || has(message, "relies on it") ||
	    has(message, "is based on it") || has(message, "using it in a mapping") ||
	    starts(message, "cannot delete"))
		return TP_ECONFLICT;
	if (message)
		return TP_EINVALID; /* validation: Grouparoo's 500 for a refused value */
	if (status >= 500 || status == 408)
		return TP_ETRANSIENT;
	if (status == 404)
		return TP_ENOTFOUND;
	if (status == 409)
		return TP_ECONFLICT;
	return TP_EINVALID;
}

/* msg with every scrub string replaced by "(sensitive)" (new string). */
static char *scrubbed(const char *msg, const tp_strlist *scrub)
{
	char *cur = tp_strdup(msg);
	for (size_t i = 0; scrub && i < scrub->len; i++) {
		const char *secret = scrub->items[i];
		size_t slen = strlen(secret);
		tp_buf b;
		const char *p = cur;
		if (slen < 4) /* too short to mean anything; replacing it would garble the text */
			continue;
		tp_buf_init(&b, 0);
		for (;;) {
			const char *at = strstr(p, secret);
			if (!at) {
				tp_buf_puts(&b, p);
				break;
			}
			tp_buf_put(&b, p, (size_t)(at - p));
			tp_buf_puts(&b, "(sensitive)");
			p = at + slen;
		}
		explicit_bzero(cur, strlen(cur));
		free(cur);
		cur = tp_buf_detach(&b);
	}
	return cur;
}

/* ---------------------------------------------------------------- calls */

static void wipe_buf(tp_buf *b)
{
	if (b->ptr)
		explicit_bzero(b->ptr, b->len);
}

static int call_once(tp_gr_session *s, json_t **out, const char *who, const char *method,
		     const char *path, const json_t *body, const tp_strlist *scrub)
{
	char *url = tp_sprintf("%s%s", s->base, path);
	char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
	const char *headers[] = {s->auth, "Accept: application/json",
				 text ? "Content-Type: application/json" : NULL, NULL};
	tp_http_request req = {0};
	tp_http_reply rep = {0};
	json_t *doc = NULL;
	int rc;

	if (out)
		*out = NULL;
	req.method = method;
	req.url = url;
	req.headers = headers;
	req.body = text;
	req.body_len = text ? strlen(text) : 0;
	req.timeout_ms = 120000;
	req.max_response = MAX_REPLY;
	rc = tp_http_client_do(s->http, &rep, &req);
	if (rc < 0) {
		char *why = scrubbed(tp_error_last(), scrub);
		rc = tp_error_set(rc, "%s: Grouparoo did not answer: %s", who, why);
		free(why);
		goto done;
	}
	if (rep.body.len > 0 && tp_json_parse(&doc, rep.body.ptr, rep.body.len) < 0)
		doc = NULL;
	if (rep.status >= 200 && rep.status < 300) {
		if (!json_is_object(doc)) {
			rc = tp_error_set(TP_ETRANSIENT, "%s: Grouparoo answered %s %s with HTTP %ld "
							 "and no JSON object", who, method, path,
					  rep.status);
			goto done;
		}
		/* Grouparoo echoes the request's parameters (secrets included): drop them */
		json_object_del(doc, "requesterInformation");
		json_object_del(doc, "serverInformation");
		if (out) {
			*out = doc;
			doc = NULL;
		}
		goto done;
	}
	{
		json_t *err = json_object_get(doc, "error");
		const char *message = json_is_string(err) ? json_string_value(err)
							  : tp_json_get_str(err, "message");
		const char *code = tp_json_get_str(err, "code");
		if (!message || !*message) {
			char *what = tp_sprintf("%s: Grouparoo %s %s", who, method, path);
			/* never the body: Grouparoo echoes the request, secrets included */
			rc = tp_http_status_error(&rep, what, "no error message in the reply");
			free(what);
		} else {
			char *m = scrubbed(message, scrub);
			rc = tp_error_set(tp_gr_error_code(rep.status, message, code),
					  "%s: Grouparoo: %s (%s %s)", who, m, method, path);
			free(m);
			if (rc == TP_ETHROTTLED)
				tp_error_set_retry_after(rep.retry_after_ms);
		}
		if (rc == 0) /* an unexpected 1xx-3xx */
			rc = tp_error_set(TP_ETRANSIENT, "%s: Grouparoo answered %s %s with HTTP %ld",
					  who, method, path, rep.status);
	}
done:
	if (text) {
		explicit_bzero(text, strlen(text));
		free(text);
	}
	wipe_buf(&rep.body);
	tp_http_reply_clear(&rep);
	json_decref(doc);
	free(url);
	return rc;
}

int tp_gr_call(tp_gr_session *s, json_t **out, const char *who, const char *method,
	       const char *path, const json_t *body, const tp_strlist *scrub)
{
	bool read = strcmp(method, "GET") == 0;
	for (int attempt = 1;; attempt++) {
		int rc = call_once(s, out, who, method, path, body, scrub);
		int64_t delay, after;
		if (rc == 0 || !read || attempt >= READ_ATTEMPTS ||
		    (rc != TP_ETRANSIENT && rc != TP_ETHROTTLED))
			return rc;
		after = tp_error_retry_after();
		delay = tp_backoff_ms(attempt, READ_BACKOFF_MS, READ_BACKOFF_CAP_MS);
		if (after >= 0)
			delay = after < RETRY_AFTER_CAP_MS ? after : RETRY_AFTER_CAP_MS;
		tp_log(TP_LOG_DEBUG, NULL, NULL, "%s: GET %s: attempt %d failed (%s); again in %lld ms",
		       who, path, attempt, tp_error_name(rc), (long long)delay);
		tp_clock_sleep_ms(delay);
	}
}

int tp_gr_list(tp_gr_session *s, json_t **out, const char *who, const char *collection)
{
	json_t *all = json_array();
	int rc = 0;

	*out = NULL;
	for (size_t page = 0; page < MAX_PAGES; page++) {
		char *path = tp_sprintf("/%s?limit=%d&offset=%zu", collection, PAGE,
					page * PAGE);
		json_t *reply = NULL, *items;
		json_int_t total;
		rc = tp_gr_call(s, &reply, who, "GET", path, NULL, NULL);
		free(path);
		if (rc < 0)
			break;
		items = json_object_get(reply, collection);
		total = json_integer_value(json_object_get(reply, "total"));
		if (!json_is_array(items)) {
			json_decref(reply);
			rc = tp_error_set(TP_ETRANSIENT, "%s: Grouparoo's list of %s has no \"%s\" "
							 "array", who, collection, collection);
			break;
		}
		json_array_extend(all, items);
		json_decref(reply);
		if (json_array_size(items) < PAGE || (json_int_t)json_array_size(all) >= total)
			break;
	}
	if (rc < 0) {
		json_decref(all);
		return rc;
	}
	*out = all;
	return 0;
}
