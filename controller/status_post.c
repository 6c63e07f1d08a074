/*
 * GitHub commit statuses for sync results: validates the arguments (nothing unchecked reaches
 * a URL or a header), builds the JSON body, sends it with the shared HTTP client (util/) and
 * turns GitHub's error bodies ({"message":…,"errors":[…]}) into messages people can act on.
 * Called by the reconcile loop after each sync of a commit when commit_status is configured.
 */

#include "controller.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../util/util.h"

#define MAX_ATTEMPTS 3
#define MAX_RETRY_AFTER_MS 10000
#define DESCRIPTION_MAX 140 /* characters, GitHub's limit */

static bool name_ok(const char *s, size_t n)
{
	if (n == 0 || n > 100)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && s[i] != '-' && s[i] != '_' && s[i] != '.')
			return false;
	return !(n == 1 && s[0] == '.') && !(n == 2 && s[0] == '.' && s[1] == '.');
}

static bool repo_ok(const char *repo)
{
	const char *slash = repo ? strchr(repo, '/') : NULL;
	return slash && strchr(slash + 1, '/') == NULL && name_ok(repo, (size_t)(slash - repo)) &&
	       name_ok(slash + 1, strlen(slash + 1));
}

static bool sha_ok(const char *sha)
{
	size_t n = sha ? strlen(sha) : 0;
	if (n != 40 && n != 64)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isxdigit((unsigned char)sha[i]))
			return false;
	return true;
}

static bool token_ok(const char *t)
{
	if (!t || !*t)
		return false;
	for (; *t; t++)
		if ((unsigned char)*t <= 0x20 || (unsigned char)*t >= 0x7f)
			return false; /* no spaces, no CR/LF: it goes into a header */
	return true;
}

/* s cut to at most max characters (UTF-8 code points), ending in "…" when cut. */
static char *shorten(const char *s, size_t max)
{
	size_t chars = 0, i = 0, cut = 0;
	for (; s[i]; i++) {
		if (((unsigned char)s[i] & 0xC0) != 0x80) {
			if (chars == max - 1)
				cut = i; /* where the ellipsis would go */
			chars++;
		}
	}
	if (chars <= max)
		return tp_strdup(s);
	return tp_sprintf("%.*s…", (int)cut, s);
}

/* GitHub's {"message": "...", "errors": [{"message"|"field"+"code"}]} as one line. */
static char *github_detail(const tp_http_reply *r)
{
	json_t *doc = NULL, *errors;
	tp_buf b;
	const char *msg;
	size_t i;
	json_t *e;
	if (tp_json_parse(&doc, tp_buf_cstr(&r->body), r->body.len) < 0) {
		tp_error_clear();
		return NULL;
	}
	msg = tp_json_get_str(doc, "message");
	if (!msg) {
		json_decref(doc);
		return NULL;
	}
	tp_buf_init(&b, 4096);
	tp_buf_puts(&b, msg);
	errors = json_object_get(doc, "errors");
	json_array_foreach(errors, i, e) {
		const char *m = json_is_string(e) ? json_string_value(e) : tp_json_get_str(e, "message");
		tp_buf_puts(&b, i == 0 ? " (" : "; ");
		if (m)
			tp_buf_puts(&b, m);
		else
			tp_buf_printf(&b, "%s %s",
				      tp_json_get_str(e, "field") ? tp_json_get_str(e, "field") : "?",
				      tp_json_get_str(e, "code") ? tp_json_get_str(e, "code") : "invalid");
	}
	if (json_array_size(errors))
		tp_buf_putc(&b, ')');
	json_decref(doc);
	return tp_buf_detach(&b);
}

static int reply_error(const tp_http_reply *r, const char *what)
{
	char *detail = github_detail(r);
	const char *remaining = tp_http_reply_header(r, "x-ratelimit-remaining");
	int rc;
	if (r->status == 403 && ((remaining && strcmp(remaining, "0") == 0) ||
				 r->retry_after_ms >= 0)) {
		/* GitHub's primary and secondary rate limits answer 403, not 429 */
		rc = tp_error_set(TP_ETHROTTLED, "%s: HTTP 403: %s", what,
				  detail ? detail : "rate limited");
		tp_error_set_retry_after(r->retry_after_ms);
	} else {
		rc = tp_http_status_error(r, what, detail);
	}
	free(detail);
	return rc;
}

int tp_commit_status_post(const char *api_base, const char *token, const char *repo,
			  const char *sha, const char *state, const char *description,
			  const char *context, const char *target_url)
{
	static const char *const states[] = {"success", "failure", "pending", "error"};
	tp_http_client *client = NULL;
	tp_http_request req = {0};
	tp_http_reply reply;
	json_t *body;
	char *url = NULL, *text = NULL, *auth = NULL, *what = NULL, *base;
	const char *headers[5];
	bool state_ok = false;
	int rc = 0;

	for (size_t i = 0; state && i < sizeof(states) / sizeof(*states); i++)
		state_ok = state_ok || strcmp(state, states[i]) == 0;
	if (!state_ok)
		return tp_error_set(TP_EINVALID, "commit status: state \"%s\" is not one of success, "
						 "failure, pending, error", state ? state : "");
	if (!repo_ok(repo))
		return tp_error_set(TP_EINVALID, "commit status: repository \"%s\" is not "
						 "owner/name", repo ? repo : "");
	if (!sha_ok(sha))
		return tp_error_set(TP_EINVALID, "commit status: \"%s\" is not a full commit id",
				    sha ? sha : "");
	if (!token_ok(token))
		return tp_error_set(TP_EINVALID, "commit status: the token is missing or has "
						 "spaces or control characters");
	if (!api_base || !*api_base)
		api_base = TP_GITHUB_API_DEFAULT;
	if (strncmp(api_base, "https://", 8) != 0 && strncmp(api_base, "http://", 7) != 0)
		return tp_error_set(TP_EINVALID, "commit status: api_url \"%s\" is not an http(s) "
						 "URL", api_base);

	base = tp_strdup(api_base);
	while (*base && base[strlen(base) - 1] == '/')
		base[strlen(base) - 1] = '\0';
	url = tp_sprintf("%s/repos/%s/statuses/%s", base, repo, sha);
	what = tp_sprintf("commit status for %.12s on %s", sha, repo);
	free(base);

	body = json_pack("{s:s, s:s}", "state", state, "context",
			 context && *context ? context : "tapestry");
	if (description) {
		char *d = shorten(description, DESCRIPTION_MAX);
		json_object_set_new(body, "description", json_string(d));
		free(d);
	}
	if (target_url && *target_url)
		json_object_set_new(body, "target_url", json_string(target_url));
	text = json_dumps(body, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(body);
	if (!text) {
		rc = tp_error_set(TP_EINVALID, "%s: the description is not valid UTF-8", what);
		goto done;
	}

	auth = tp_sprintf("Authorization: Bearer %s", token);
	headers[0] = auth;
	headers[1] = "Accept: application/vnd.github+json";
	headers[2] = "X-GitHub-Api-Version: 2022-11-28";
	headers[3] = "Content-Type: application/json";
	headers[4] = NULL;
	req.method = "POST";
	req.url = url;
	req.headers = headers;
	req.body = text;
	req.body_len = strlen(text);
	req.timeout_ms = 15000;
	req.max_response = 1u << 20;

	client = tp_http_client_new();
	for (int attempt = 1;; attempt++) {
		int64_t wait;
		rc = tp_http_client_do(client, &reply, &req);
		if (rc == 0) {
			rc = reply.status >= 200 && reply.status < 300 ? 0 : reply_error(&reply, what);
			tp_http_reply_clear(&reply);
		}
		if (rc == 0 || (rc != TP_ETRANSIENT && rc != TP_ETHROTTLED) ||
		    attempt >= MAX_ATTEMPTS)
			break;
		wait = tp_error_retry_after();
		if (wait > MAX_RETRY_AFTER_MS)
			break; /* the next sync will report again; do not hold the loop */
		if (wait < 0)
			wait = tp_backoff_ms(attempt, 500, 4000);
		tp_log_warn("%s; retrying in %lld ms", tp_error_last(), (long long)wait);
		tp_clock_sleep_ms(wait);
	}
done:
	tp_http_client_free(client);
	free(auth);
	free(text);
	free(url);
	free(what);
	return rc;
}

const char *tp_commit_status_state_for(const char *result)
{
	static const char *const ok[] = {"applied", "succeeded", "no-op", "planned"};
	static const char *const bad[] = {"invalid", "refused", "failed", "partial"};
	if (!result)
		return NULL;
	for (size_t i = 0; i < sizeof(ok) / sizeof(*ok); i++)
		if (strcmp(result, ok[i]) == 0)
			return "success";
	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++)
		if (strcmp(result, bad[i]) == 0)
			return "failure";
	if (strcmp(result, "stopped") == 0)
		return "error";
	return NULL;
}

int tp_github_repo_from_url(char *out, size_t outlen, const char *url)
{
	static const char *const prefixes[] = {"https://github.com/", "http://github.com/",
					       "ssh://git@github.com/", "git@github.com:",
					       "https://www.github.com/"};
	const char *rest = NULL;
	char buf[256];
	size_t n;
	for (size_t i = 0; url && i < sizeof(prefixes) / sizeof(*prefixes) && !rest; i++)
		if (strncmp(url, prefixes[i], strlen(prefixes[i])) == 0)
			rest = url + strlen(prefixes[i]);
	if (!rest)
		return tp_error_set(TP_EINVALID, "not a github.com repository URL: set "
						 "commit_status.repository to owner/name");
	n = strlen(rest);
	while (n > 0 && rest[n - 1] == '/')
		n--;
	if (n >= 4 && strncmp(rest + n - 4, ".git", 4) == 0)
		n -= 4;
	if (n >= sizeof(buf))
		return tp_error_set(TP_EINVALID, "repository URL too long");
	memcpy(buf, rest, n);
	buf[n] = '\0';
	if (!repo_ok(buf) || n + 1 > outlen)
		return tp_error_set(TP_EINVALID, "cannot find owner/name in the repository URL");
	memcpy(out, buf, n + 1);
	return 0;
}
