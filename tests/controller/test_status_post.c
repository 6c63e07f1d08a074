/*
 * controller/status_post.c against a fake GitHub API started here (libmicrohttpd on
 * 127.0.0.1): the request GitHub documents (method, path, Authorization, Accept, API version,
 * JSON body), GitHub's errors turned into messages (401 Bad credentials, 422 Validation Failed
 * with its errors, 404), retries of 5xx and rate limits, and arguments refused before any
 * request is made.
 */
#include <criterion/criterion.h>
#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "controller/controller.h"
#include "support/support.h"
#include "util/util.h"

#define SHA "3f2a9c1d0e5b7a8c9d0e1f2a3b4c5d6e7f809112"

typedef struct {
	int status;
	const char *body;
	const char *header; /* "Name: value" or NULL */
} canned;

static struct MHD_Daemon *daemon_;
static int port;
static char *api;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static canned script[8];
static size_t nscript, served;
static struct {
	char method[16], url[512], auth[256], accept[128], version[64], ctype[64];
	tp_buf body;
} last;

typedef struct {
	tp_buf body;
} conn_state;

static void set_script(const canned *c, size_t n)
{
	pthread_mutex_lock(&mu);
	if (n)
		memcpy(script, c, n * sizeof(*c));
	nscript = n;
	served = 0;
	pthread_mutex_unlock(&mu);
}

static void copy_header(char *dst, size_t n, struct MHD_Connection *conn, const char *name)
{
	const char *v = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, name);
	snprintf(dst, n, "%s", v ? v : "");
}

static enum MHD_Result answer(void *cls, struct MHD_Connection *conn, const char *url,
			      const char *method, const char *version, const char *upload,
			      size_t *upload_size, void **state)
{
	conn_state *cs = *state;
	struct MHD_Response *r;
	enum MHD_Result ret;
	canned c = {500, "{\"message\":\"no script\"}", NULL};
	(void)cls;
	(void)version;
	if (!cs) {
		cs = calloc(1, sizeof(*cs));
		tp_buf_init(&cs->body, 1u << 20);
		*state = cs;
		return MHD_YES;
	}
	if (*upload_size) {
		tp_buf_put(&cs->body, upload, *upload_size);
		*upload_size = 0;
		return MHD_YES;
	}
	pthread_mutex_lock(&mu);
	snprintf(last.method, sizeof(last.method), "%s", method);
	snprintf(last.url, sizeof(last.url), "%s", url);
	copy_header(last.auth, sizeof(last.auth), conn, "Authorization");
	copy_header(last.accept, sizeof(last.accept), conn, "Accept");
	copy_header(last.version, sizeof(last.version), conn, "X-GitHub-Api-Version");
	copy_header(last.ctype, sizeof(last.ctype), conn, "Content-Type");
	tp_buf_clear(&last.body);
	tp_buf_puts(&last.body, tp_buf_cstr(&cs->body));
	if (served < nscript)
		c = script[served];
	served++;
	pthread_mutex_unlock(&mu);
	r = MHD_create_response_from_buffer(strlen(c.body), (void *)(uintptr_t)c.body,
					    MHD_RESPMEM_MUST_COPY);
	MHD_add_response_header(r, "Content-Type", "application/json; charset=utf-8");
	if (c.header) {
		char name[64];
		const char *colon = strchr(c.header, ':');
		snprintf(name, sizeof(name), "%.*s", (int)(colon - c.header), c.header);
		MHD_add_response_header(r, name, colon + 2);
	}
	ret = MHD_queue_response(conn, (unsigned)c.status, r);
	MHD_destroy_response(r);
	return ret;
}

static void completed(void *cls, struct MHD_Connection *conn, void **state,
		      enum MHD_RequestTerminationCode toe)
{
	conn_state *cs = *state;
	(void)cls;
	(void)conn;
	(void)toe;
	if (cs) {
		tp_buf_free(&cs->body);
		free(cs);
		*state = NULL;
	}
}

static void setup(void)
{
	struct sockaddr_in sa = {.sin_family = AF_INET};
	port = ts_free_port();
	sa.sin_port = htons((uint16_t)port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	tp_buf_init(&last.body, 1u << 20);
	daemon_ = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION,
			     (uint16_t)port, NULL, NULL, answer, NULL, MHD_OPTION_SOCK_ADDR, &sa,
			     MHD_OPTION_NOTIFY_COMPLETED, completed, NULL, MHD_OPTION_END);
	cr_assert_not_null(daemon_, "cannot start the fake GitHub API");
	api = tp_sprintf("http://127.0.0.1:%d/api/v3/", port);
}

static void teardown(void)
{
	MHD_stop_daemon(daemon_);
	tp_buf_free(&last.body);
	free(api);
}

TestSuite(status_post, .init = setup, .fini = teardown);

Test(status_post, posts_the_status_github_documents)
{
	canned ok[] = {{201, "{\"id\":1,\"state\":\"success\"}", NULL}};
	json_t *body = NULL;
	set_script(ok, 1);
	cr_assert_eq(tp_commit_status_post(api, "ghp_secret123", "rainshield/data-pipeline", SHA,
					   "success", "applied: 2 created, 1 updated \"ok\"\n",
					   "tapestry/rainshield",
					   "https://tapestry.example.com/api/runs"),
		     0, "%s", tp_error_last());
	cr_assert_eq(served, 1);
	cr_assert_str_eq(last.method, "POST");
	cr_assert_str_eq(last.url, "/api/v3/repos/rainshield/data-pipeline/statuses/" SHA);
	cr_assert_str_eq(last.auth, "Bearer ghp_secret123");
	cr_assert_str_eq(last.accept, "application/vnd.github+json");
	cr_assert_str_eq(last.version, "2022-11-28");
	cr_assert_str_eq(last.ctype, "application/json");
	cr_assert_eq(tp_json_parse(&body, last.body.ptr, last.body.len), 0, "%s", last.body.ptr);
	cr_assert_str_eq(tp_json_get_str(body, "state"), "success");
	cr_assert_str_eq(tp_json_get_str(body, "description"), "applied: 2 created, 1 updated \"ok\"\n");
	cr_assert_str_eq(tp_json_get_str(body, "context"), "tapestry/rainshield");
	cr_assert_str_eq(tp_json_get_str(body, "target_url"), "https://tapestry.example.com/api/runs");
	cr_assert_eq(json_object_size(body), 4);
	json_decref(body);
}

Test(status_post, defaults_and_long_descriptions)
{
	canned ok[] = {{201, "{}", NULL}};
	json_t *body = NULL;
	tp_buf desc;
	const char *d;
	tp_buf_init(&desc, 0);
	for (int i = 0; i < 100; i++)
		tp_buf_puts(&desc, "é"); /* 2 bytes, 1 character */
	for (int i = 0; i < 100; i++)
		tp_buf_puts(&desc, "x");
	set_script(ok, 1);
	cr_assert_eq(tp_commit_status_post(api, "t", "o/r", SHA, "failure", desc.ptr, NULL, NULL),
		     0, "%s", tp_error_last());
	cr_assert_eq(tp_json_parse(&body, last.body.ptr, last.body.len), 0);
	cr_assert_str_eq(tp_json_get_str(body, "context"), "tapestry");
	cr_assert_null(json_object_get(body, "target_url"));
	d = tp_json_get_str(body, "description");
	cr_assert_not_null(d);
	{
		size_t chars = 0;
		for (const char *p = d; *p; p++)
			chars += ((unsigned char)*p & 0xC0) != 0x80;
		cr_assert_eq(chars, 140, "%zu characters: %s", chars, d);
	}
	cr_assert(strstr(d, "xxx…") != NULL && strcmp(d + strlen(d) - 3, "…") == 0, "%s", d);
	json_decref(body);
	/* no description at all: the field is left out */
	set_script(ok, 1);
	cr_assert_eq(tp_commit_status_post(api, "t", "o/r", SHA, "pending", NULL, NULL, NULL), 0);
	cr_assert_eq(tp_json_parse(&body, last.body.ptr, last.body.len), 0);
	cr_assert_null(json_object_get(body, "description"));
	json_decref(body);
	tp_buf_free(&desc);
}

Test(status_post, bad_credentials_is_an_auth_error_with_githubs_message)
{
	canned unauthorized[] = {
		{401, "{\"message\":\"Bad credentials\",\"documentation_url\":"
		      "\"https://docs.github.com/rest\",\"status\":\"401\"}", NULL}};
	set_script(unauthorized, 1);
	cr_assert_eq(tp_commit_status_post(api, "ghp_wrong", "o/r", SHA, "success", "x", NULL, NULL),
		     TP_EAUTH);
	cr_assert(strstr(tp_error_last(), "HTTP 401: Bad credentials"), "%s", tp_error_last());
	cr_assert_null(strstr(tp_error_last(), "ghp_wrong"), "the token leaked: %s",
		       tp_error_last());
	cr_assert_eq(served, 1, "not retried");
}

Test(status_post, validation_failed_names_the_field)
{
	canned invalid[] = {
		{422, "{\"message\":\"Validation Failed\",\"errors\":[{\"resource\":\"Status\","
		      "\"code\":\"custom\",\"field\":\"state\",\"message\":\"state is not included "
		      "in the list\"},{\"resource\":\"Status\",\"field\":\"target_url\",\"code\":"
		      "\"invalid\"}],\"documentation_url\":\"https://docs.github.com/rest\"}", NULL}};
	set_script(invalid, 1);
	cr_assert_eq(tp_commit_status_post(api, "t", "o/r", SHA, "error", "x", NULL, "ftp://x"),
		     TP_EINVALID);
	cr_assert(strstr(tp_error_last(), "HTTP 422: Validation Failed (state is not included in "
					  "the list; target_url invalid)"),
		  "%s", tp_error_last());
	cr_assert_eq(served, 1);
}

Test(status_post, unknown_repository_or_commit)
{
	canned missing[] = {{404, "{\"message\":\"Not Found\"}", NULL}};
	set_script(missing, 1);
	cr_assert_eq(tp_commit_status_post(api, "t", "o/r", SHA, "success", "x", NULL, NULL),
		     TP_ENOTFOUND);
	cr_assert(strstr(tp_error_last(), "HTTP 404: Not Found"), "%s", tp_error_last());
	cr_assert(strstr(tp_error_last(), "3f2a9c1d0e5b on o/r"), "%s", tp_error_last());
}

Test(status_post, server_errors_and_rate_limits_are_retried)
{
	canned flaky[] = {{502, "<html>bad gateway</html>", NULL},
			  {403, "{\"message\":\"You have exceeded a secondary rate limit\"}",
			   "Retry-After: 1"},
			  {201, "{}", NULL}};
	canned down[] = {{503, "{\"message\":\"unavailable\"}", NULL},
			 {503, "{\"message\":\"unavailable\"}", NULL},
			 {503, "{\"message\":\"unavailable\"}", NULL},
			 {201, "{}", NULL}};
	canned slow_down[] = {{429, "{\"message\":\"slow\"}", "Retry-After: 3600"}};
	set_script(flaky, 3);
	cr_assert_eq(tp_commit_status_post(api, "t", "o/r", SHA, "success", "x", NULL, NULL), 0,
		     "%s", tp_error_last());
	cr_assert_eq(served, 3);
	set_script(down, 4);
	cr_assert_eq(tp_commit_status_post(api, "t", "o/r", SHA, "success", "x", NULL, NULL),
		     TP_ETRANSIENT);
	cr_assert_eq(served, 3, "three attempts, then give up");
	cr_assert(strstr(tp_error_last(), "HTTP 503: unavailable"), "%s", tp_error_last());
	/* asked to wait an hour: give up now, the next sync reports again */
	set_script(slow_down, 1);
	cr_assert_eq(tp_commit_status_post(api, "t", "o/r", SHA, "success", "x", NULL, NULL),
		     TP_ETHROTTLED);
	cr_assert_eq(served, 1);
}

Test(status_post, refused_before_any_request)
{
	char *dead = tp_sprintf("http://127.0.0.1:%d", ts_free_port());
	set_script(NULL, 0);
	cr_assert_eq(tp_commit_status_post(api, "t", "noslash", SHA, "success", NULL, NULL, NULL),
		     TP_EINVALID);
	cr_assert_eq(tp_commit_status_post(api, "t", "o/r/x", SHA, "success", NULL, NULL, NULL),
		     TP_EINVALID);
	cr_assert_eq(tp_commit_status_post(api, "t", "o/../r", SHA, "success", NULL, NULL, NULL),
		     TP_EINVALID);
	cr_assert_eq(tp_commit_status_post(api, "t", "o/r", "main", "success", NULL, NULL, NULL),
		     TP_EINVALID);
	cr_assert_eq(tp_commit_status_post(api, "t", "o/r", SHA, "green", NULL, NULL, NULL),
		     TP_EINVALID);
	cr_assert(strstr(tp_error_last(), "\"green\""), "%s", tp_error_last());
	cr_assert_eq(tp_commit_status_post(api, "t\r\nX-Evil: 1", "o/r", SHA, "success", NULL,
					   NULL, NULL),
		     TP_EINVALID);
	cr_assert_eq(tp_commit_status_post(api, "", "o/r", SHA, "success", NULL, NULL, NULL),
		     TP_EINVALID);
	cr_assert_eq(tp_commit_status_post("file:///etc", "t", "o/r", SHA, "success", NULL, NULL,
					   NULL),
		     TP_EINVALID);
	cr_assert_eq(served, 0);
	/* nobody listening: a transient failure, after the retries */
	cr_assert_eq(tp_commit_status_post(dead, "t", "o/r", SHA, "success", NULL, NULL, NULL),
		     TP_ETRANSIENT);
	free(dead);
}

Test(status_post, result_mapping_and_repository_from_url)
{
	char repo[128];
	cr_assert_str_eq(tp_commit_status_state_for("applied"), "success");
	cr_assert_str_eq(tp_commit_status_state_for("no-op"), "success");
	cr_assert_str_eq(tp_commit_status_state_for("planned"), "success");
	cr_assert_str_eq(tp_commit_status_state_for("invalid"), "failure");
	cr_assert_str_eq(tp_commit_status_state_for("refused"), "failure");
	cr_assert_str_eq(tp_commit_status_state_for("partial"), "failure");
	cr_assert_str_eq(tp_commit_status_state_for("failed"), "failure");
	cr_assert_str_eq(tp_commit_status_state_for("stopped"), "error");
	cr_assert_null(tp_commit_status_state_for("skipped"));
	cr_assert_null(tp_commit_status_state_for("fetch-failed"));
	cr_assert_null(tp_commit_status_state_for(NULL));
	cr_assert_eq(tp_github_repo_from_url(repo, sizeof(repo),
					     "https://github.com/rainshield/data-pipeline.git"), 0);
	cr_assert_str_eq(repo, "rainshield/data-pipeline");
	cr_assert_eq(tp_github_repo_from_url(repo, sizeof(repo), "git@github.com:a/b.c"), 0);
	cr_assert_str_eq(repo, "a/b.c");
	cr_assert_eq(tp_github_repo_from_url(repo, sizeof(repo), "ssh://git@github.com/a/b.git/"),
		     0);
	cr_assert_str_eq(repo, "a/b");
	cr_assert_eq(tp_github_repo_from_url(repo, sizeof(repo), "https://gitlab.com/a/b.git"),
		     TP_EINVALID);
	cr_assert_eq(tp_github_repo_from_url(repo, sizeof(repo), "https://github.com/a"),
		     TP_EINVALID);
	cr_assert_eq(tp_github_repo_from_url(repo, 4, "https://github.com/abc/def"), TP_EINVALID);
}
