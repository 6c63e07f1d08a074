/*
 * The Airbyte public API client: every request the airbyte provider makes goes through here.
 * It sits between the kinds' runtime slots (actors.c, connections.c) and util's HTTP client,
 * and owns what is particular to Airbyte's wire: the bearer token (client credentials
 * exchanged at POST /applications/token, refreshed shortly before it expires and once after
 * a 401; or a static token), problem-JSON errors turned into messages with their title and
 * detail, and list pagination by limit/offset that stops on a short page and never follows
 * the `next` link a server builds from its own idea of its host name.
 *
 * Thread-safe: slots call it from several engine workers; the token is guarded by a mutex
 * and refreshed by one caller while the others wait.
 */
#include "airbyte_int.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define PAGE_LIMIT         100
#define MAX_PAGES          1000
#define MAX_REPLY          ((size_t)32 << 20)
#define REFRESH_MARGIN_MS  60000
#define RETRY_AFTER_CAP_MS 10000

struct tp_ab_client {
	tp_http_client *http;
	char *base;
	char *client_id, *client_secret; /* secrets: wiped on free */
	char *static_token;
	int64_t timeout_ms;
	int read_attempts;
	int64_t read_backoff_ms;
	pthread_mutex_t mu;
	char *token;         /* current access token, or NULL */
	uint64_t generation; /* bumped whenever the token changes */
	bool refused;        /* a freshly issued token was refused: no more refreshing */
	int64_t refresh_at;  /* mono ms after which the token is renewed before use */
	tp_ab_client_stats stats;
};

static void wipe_free(char *s)
{
	if (s) {
		explicit_bzero(s, strlen(s));
		free(s);
	}
}

int tp_ab_client_new(tp_ab_client **out, const tp_ab_client_opts *o)
{
	tp_ab_client *c;
	size_t n;
	*out = NULL;
	if (!o->base_url ||
	    (strncmp(o->base_url, "http://", 7) != 0 && strncmp(o->base_url, "https://", 8) != 0))
		return tp_error_set(TP_EINVALID,
				    "airbyte: url must be an http(s) URL including "
				    "/api/public/v1, got \"%s\"",
				    o->base_url ? o->base_url : "");
	if (!o->token && !(o->client_id && o->client_secret))
		return tp_error_set(TP_EINVALID, "airbyte: set client_id and client_secret (an "
						 "application's credentials), or token");
	c = tp_calloc(1, sizeof(*c));
	c->http = tp_http_client_new();
	c->base = tp_strdup(o->base_url);
	n = strlen(c->base);
	while (n > 0 && c->base[n - 1] == '/')
		c->base[--n] = '\0';
	if (o->token) {
		c->static_token = tp_strdup(o->token);
	} else {
		c->client_id = tp_strdup(o->client_id);
		c->client_secret = tp_strdup(o->client_secret);
	}
	c->timeout_ms = o->timeout_ms > 0 ? o->timeout_ms : 60000;
	c->read_attempts = o->read_attempts > 0 ? o->read_attempts : 3;
	c->read_backoff_ms = o->read_backoff_ms > 0 ? o->read_backoff_ms : 200;
	pthread_mutex_init(&c->mu, NULL);
	*out = c;
	return 0;
}

void tp_ab_client_free(tp_ab_client *c)
{
	if (!c)
		return;
	tp_http_client_free(c->http);
	free(c->base);
	wipe_free(c->client_id);
	wipe_free(c->client_secret);
	wipe_free(c->static_token);
	wipe_free(c->token);
	pthread_mutex_destroy(&c->mu);
	free(c);
}

const char *tp_ab_client_base(const tp_ab_client *c)
{
	return c->base;
}

void tp_ab_client_get_stats(tp_ab_client *c, tp_ab_client_stats *out)
{
	pthread_mutex_lock(&c->mu);
	*out = c->stats;
	pthread_mutex_unlock(&c->mu);
}

/* ---------------------------------------------------------------- errors */

/* "title: detail" from a problem-JSON body, or NULL when the body is not one. */
static char *problem_text(const tp_http_reply *r)
{
	json_t *p = NULL;
	const char *title, *detail;
	char *text = NULL;
	if (r->body.len == 0 || tp_json_parse(&p, r->body.ptr, r->body.len) < 0) {
		tp_error_clear();
		return NULL;
	}
	title = tp_json_get_str(p, "title");
	detail = tp_json_get_str(p, "detail");
	if (!detail)
		detail = tp_json_get_str(p, "message"); /* older servers */
	if (title && detail)
		text = tp_sprintf("%s: %s", title, detail);
	else if (title || detail)
		text = tp_strdup(title ? title : detail);
	json_decref(p);
	return text;
}

static int status_error(const tp_http_reply *r, const char *method, const char *path,
			const char *suffix)
{
	char *what = tp_sprintf("airbyte: %s %s", method, path);
	char *detail = problem_text(r);
	int rc;
	if (suffix && *suffix) {
		char *d = tp_sprintf("%s%s", detail ? detail : "", suffix);
		free(detail);
		detail = d;
	}
	rc = tp_http_status_error(r, what, detail);
	free(detail);
	free(what);
	return rc;
}

/* ---------------------------------------------------------------- token */

/* Exchanges the client credentials for an access token (mutex held). */
static int fetch_token(tp_ab_client *c)
{
	json_t *req = json_pack("{s:s,s:s,s:s}", "client_id", c->client_id, "client_secret",
				c->client_secret, "grant_type", "client_credentials");
	char *body = json_dumps(req, JSON_COMPACT);
	char *url = tp_sprintf("%s/applications/token", c->base);
	const char *headers[] = {"Content-Type: application/json", "Accept: application/json",
				 NULL};
	tp_http_request hr = {0};
	tp_http_reply reply = {0};
	json_t *ans = NULL;
	const char *tok;
	json_int_t ttl;
	int rc;

	hr.method = "POST";
	hr.url = url;
	hr.headers = headers;
	hr.body = body;
	hr.body_len = strlen(body);
	hr.timeout_ms = c->timeout_ms;
	hr.max_response = 1 << 20;
	c->stats.token_requests++;
	rc = tp_http_client_do(c->http, &reply, &hr);
	if (rc < 0) {
		char *m = tp_strdup(tp_error_last());
		rc = tp_error_set(rc, "airbyte: getting an access token: %s", m);
		free(m);
		goto done;
	}
	if (reply.status >= 300) {
		rc = status_error(&reply, "POST", "/applications/token",
				  reply.status == 401 || reply.status == 403
					  ? " (check providers.airbyte client_id and client_secret)"
					  : NULL);
		goto done;
	}
	if (tp_json_parse(&ans, reply.body.ptr, reply.body.len) < 0 ||
	    !(tok = tp_json_get_str(ans, "access_token")) || !*tok) {
		rc = tp_error_set(TP_EAUTH, "airbyte: POST /applications/token: the answer holds "
					    "no access_token");
		goto done;
	}
	ttl = json_integer_value(json_object_get(ans, "expires_in"));
	if (ttl <= 0)
		ttl = 900; /* the server's default lifetime */
	wipe_free(c->token);
	c->token = tp_strdup(tok);
	c->generation++;
	{
		int64_t life = (int64_t)ttl * 1000;
		int64_t margin = life / 4 < REFRESH_MARGIN_MS ? life / 4 : REFRESH_MARGIN_MS;
		c->refresh_at = tp_clock_mono_ms() + life - margin;
	}
done:
	if (ans) {
		tp_ab_json_wipe(ans);
		json_decref(ans);
	}
	if (reply.body.ptr)
		explicit_bzero(reply.body.ptr, reply.body.len);
	tp_http_reply_clear(&reply);
	wipe_free(body);
	tp_ab_json_wipe(req);
	json_decref(req);
	free(url);
	return rc;
}

/* "Authorization: Bearer <token>" for the next request (a new string to wipe), refreshing a
 * token that is about to expire; *gen is the token's generation. */
static int auth_header(tp_ab_client *c, char **out, uint64_t *gen)
{
	int rc = 0;
	*out = NULL;
	pthread_mutex_lock(&c->mu);
	if (c->static_token) {
		*out = tp_sprintf("Authorization: Bearer %s", c->static_token);
	} else {
		if (!c->token || tp_clock_mono_ms() >= c->refresh_at)
			rc = fetch_token(c);
		if (rc == 0)
			*out = tp_sprintf("Authorization: Bearer %s", c->token);
	}
	*gen = c->generation;
	pthread_mutex_unlock(&c->mu);
	return rc;
}

/* After a 401 with the token of generation gen: drop it unless another caller already
 * replaced it. False when there is nothing to refresh (a static token). */
static bool invalidate(tp_ab_client *c, uint64_t gen)
{
	bool can;
	pthread_mutex_lock(&c->mu);
	can = c->static_token == NULL && !c->refused;
	if (can && c->generation == gen) {
		wipe_free(c->token);
		c->token = NULL;
	}
	pthread_mutex_unlock(&c->mu);
	return can;
}

/* ---------------------------------------------------------------- calls */

static bool transient_status(long status)
{
	return status == 429 || status == 408 || status >= 500;
}

int tp_ab_call(tp_ab_client *c, json_t **out, const char *method, const char *path,
	       const char *query, const json_t *body)
{
	bool read = strcmp(method, "GET") == 0;
	char *url = query && *query ? tp_sprintf("%s%s?%s", c->base, path, query)
				    : tp_sprintf("%s%s", c->base, path);
	char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
	bool refreshed = false;
	int rc = 0, attempt = 0;

	if (out)
		*out = NULL;
	for (;;) {
		const char *headers[4] = {"Accept: application/json", NULL, NULL, NULL};
		char *auth = NULL;
		tp_http_request hr = {0};
		tp_http_reply reply = {0};
		uint64_t gen = 0;
		int64_t delay = -1;

		attempt++;
		if ((rc = auth_header(c, &auth, &gen)) < 0) {
			/* the token endpoint failed transiently: nothing of this call was sent
			 * yet, so reads and writes alike ask for a token again */
			if ((rc == TP_ETRANSIENT || rc == TP_ETHROTTLED) && attempt < c->read_attempts) {
				int64_t after = tp_error_retry_after();
				int64_t wait = tp_backoff_ms(attempt, c->read_backoff_ms, 5000);
				if (after >= 0)
					wait = after < RETRY_AFTER_CAP_MS ? after : RETRY_AFTER_CAP_MS;
				tp_clock_sleep_ms(wait);
				continue;
			}
			break;
		}
		headers[1] = auth;
		if (text)
			headers[2] = "Content-Type: application/json";
		hr.method = method;
		hr.url = url;
		hr.headers = headers;
		hr.body = text;
		hr.body_len = text ? strlen(text) : 0;
		hr.timeout_ms = c->timeout_ms;
		hr.max_response = MAX_REPLY;
		pthread_mutex_lock(&c->mu);
		c->stats.requests++;
		pthread_mutex_unlock(&c->mu);
		rc = tp_http_client_do(c->http, &reply, &hr);
		wipe_free(auth);
		if (rc < 0) {
			char *m = tp_strdup(tp_error_last());
			rc = tp_error_set(rc, "airbyte: %s", m);
			free(m);
			if (rc == TP_ETRANSIENT && read && attempt < c->read_attempts)
				delay = tp_backoff_ms(attempt, c->read_backoff_ms, 5000);
		} else if (reply.status == 401 && !refreshed && invalidate(c, gen)) {
			/* expired or revoked behind our back: one new token, one more try */
			refreshed = true;
			attempt--;
			tp_http_reply_clear(&reply);
			continue;
		} else if (reply.status >= 300) {
			if (reply.status == 401 && refreshed) {
				/* the credentials themselves are refused: refreshing again and
				 * again would only hammer the token endpoint */
				pthread_mutex_lock(&c->mu);
				c->refused = true;
				pthread_mutex_unlock(&c->mu);
			}
			rc = status_error(&reply, method, path,
					  reply.status == 401 && refreshed
						  ? " (refused again with a freshly issued access "
						    "token)"
						  : NULL);
			if (read && transient_status(reply.status) && attempt < c->read_attempts) {
				delay = tp_backoff_ms(attempt, c->read_backoff_ms, 5000);
				if (reply.retry_after_ms >= 0)
					delay = reply.retry_after_ms < RETRY_AFTER_CAP_MS
							? reply.retry_after_ms
							: RETRY_AFTER_CAP_MS;
			}
		} else if (reply.body.len > 0 && out) {
			if (tp_json_parse(out, reply.body.ptr, reply.body.len) < 0) {
				char *m = tp_strdup(tp_error_last());
				rc = tp_error_set(TP_EINVALID,
						  "airbyte: %s %s: HTTP %ld: the answer "
						  "is not valid JSON (%s)",
						  method, path, reply.status, m);
				free(m);
			}
		}
		if (reply.body.ptr)
			explicit_bzero(reply.body.ptr, reply.body.len);
		tp_http_reply_clear(&reply);
		if (delay < 0)
			break;
		tp_clock_sleep_ms(delay);
	}
	if (rc < 0 && out && *out) {
		json_decref(*out);
		*out = NULL;
	}
	wipe_free(text);
	free(url);
	return rc;
}

int tp_ab_list(tp_ab_client *c, json_t **out, const char *path, const char *query)
{
	json_t *all = json_array();
	int rc = 0;
	*out = NULL;
	for (int page = 0;; page++) {
		char *q;
		json_t *ans = NULL, *data;
		size_t n;
		if (page >= MAX_PAGES) {
			rc = tp_error_set(TP_ETOOBIG, "airbyte: GET %s: more than %d pages of %d",
					  path, MAX_PAGES, PAGE_LIMIT);
			break;
		}
		q = query && *query
			    ? tp_sprintf("%s&limit=%d&offset=%d", query, PAGE_LIMIT,
					 page * PAGE_LIMIT)
			    : tp_sprintf("limit=%d&offset=%d", PAGE_LIMIT, page * PAGE_LIMIT);
		rc = tp_ab_call(c, &ans, "GET", path, q, NULL);
		free(q);
		if (rc < 0)
			break;
		data = json_object_get(ans, "data");
		if (!json_is_array(data)) {
			json_decref(ans);
			rc = tp_error_set(TP_EINVALID,
					  "airbyte: GET %s: the answer has no `data` "
					  "list",
					  path);
			break;
		}
		n = json_array_size(data);
		json_array_extend(all, data);
		json_decref(ans);
		/* a short page is the last one; `next` is set even then, and may name a host
		 * other than the one we talk to: it is never followed */
		if (n < PAGE_LIMIT)
			break;
	}
	if (rc < 0) {
		json_decref(all);
		return rc;
	}
	*out = all;
	return 0;
}
