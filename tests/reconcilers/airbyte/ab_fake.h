/*
 * Helpers for the airbyte suites: start the strict fake (TP_BUILD_DIR/fake_airbyte) as a child
 * that dies with the test (PR_SET_PDEATHSIG) and stop it by PID, read its request log, and
 * talk to it directly (the public API with a token of our own, and its /_fake control
 * endpoints) to arrange what happens "behind Tapestry's back". Static and unused-tolerant, so
 * each suite takes what it needs.
 */
#ifndef TP_TEST_AB_FAKE_H
#define TP_TEST_AB_FAKE_H

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "support/support.h"
#include "util/util.h"

#define AB_UNUSED        __attribute__((unused))
#define AB_CLIENT_ID     "tapestry-test-client"
#define AB_CLIENT_SECRET "canary-client-secret-5b1e"

typedef struct {
	pid_t pid;
	int port;
	char *root;  /* http://127.0.0.1:<port> */
	char *base;  /* root + /api/public/v1 */
	char *log;   /* request log path */
	char *token; /* our own access token (for arranging things) */
} ab_fake;

/* Starts the fake with --log dir/<name>.log and extra args (NULL-terminated, may be NULL). */
static AB_UNUSED void ab_fake_start_named(ab_fake *f, const char *dir, const char *name,
					  const char *const *extra)
{
	int pipefd[2];
	char line[256];
	size_t got = 0;
	int64_t deadline = tp_clock_mono_ms() + 10000;
	memset(f, 0, sizeof(*f));
	f->log = tp_sprintf("%s/%s.log", dir, name);
	cr_assert_eq(pipe(pipefd), 0);
	f->pid = fork();
	cr_assert(f->pid >= 0);
	if (f->pid == 0) {
		const char *argv[64];
		size_t n = 0;
		char *err = tp_sprintf("%s/%s.err", dir, name);
		int efd = open(err, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		prctl(PR_SET_PDEATHSIG, SIGKILL); /* never outlives the test */
		argv[n++] = TP_BUILD_DIR "/fake_airbyte";
		argv[n++] = "--port";
		argv[n++] = "0";
		argv[n++] = "--client-id";
		argv[n++] = AB_CLIENT_ID;
		argv[n++] = "--client-secret";
		argv[n++] = AB_CLIENT_SECRET;
		argv[n++] = "--log";
		argv[n++] = f->log;
		for (size_t i = 0; extra && extra[i] && n < 62; i++)
			argv[n++] = extra[i];
		argv[n] = NULL;
		dup2(pipefd[1], 1);
		if (efd >= 0)
			dup2(efd, 2);
		close(pipefd[0]);
		execv(argv[0], (char *const *)(uintptr_t)argv);
		_exit(127);
	}
	close(pipefd[1]);
	/* the first line says where it listens */
	while (got < sizeof(line) - 1 && !memchr(line, '\n', got)) {
		struct pollfd p = {pipefd[0], POLLIN, 0};
		ssize_t r;
		cr_assert(tp_clock_mono_ms() < deadline, "fake_airbyte did not start within 10 s");
		if (poll(&p, 1, 200) <= 0)
			continue;
		r = read(pipefd[0], line + got, sizeof(line) - 1 - got);
		cr_assert(r > 0, "fake_airbyte exited at start (see %s/%s.err)", dir, name);
		got += (size_t)r;
		line[got] = '\0';
	}
	line[got] = '\0';
	close(pipefd[0]);
	{
		const char *p = strstr(line, "127.0.0.1:");
		cr_assert_not_null(p, "unexpected first line: %s", line);
		f->port = atoi(p + 10);
	}
	f->root = tp_sprintf("http://127.0.0.1:%d", f->port);
	f->base = tp_sprintf("%s/api/public/v1", f->root);
}

static AB_UNUSED void ab_fake_start(ab_fake *f, const char *dir, const char *const *extra)
{
	ab_fake_start_named(f, dir, "fake", extra);
}

static AB_UNUSED void ab_fake_stop(ab_fake *f)
{
	if (f->pid > 0) {
		int st = 0;
		kill(f->pid, SIGTERM);
		for (int i = 0; i < 250; i++) {
			if (waitpid(f->pid, &st, WNOHANG) == f->pid) {
				f->pid = 0;
				break;
			}
			usleep(20000);
		}
		if (f->pid > 0) {
			kill(f->pid, SIGKILL);
			waitpid(f->pid, &st, 0);
		}
	}
	f->pid = 0;
	free(f->root);
	free(f->base);
	free(f->log);
	free(f->token);
	memset(f, 0, sizeof(*f));
}

/* ---------------------------------------------------------------- HTTP */

typedef struct {
	long status;
	json_t *json; /* parsed body, or NULL */
	char *text;   /* raw body */
} ab_reply;

static AB_UNUSED void ab_reply_free(ab_reply *r)
{
	json_decref(r->json);
	free(r->text);
	memset(r, 0, sizeof(*r));
}

static AB_UNUSED ab_reply ab_http(const char *method, const char *url, const char *auth,
				  const char *body)
{
	tp_http_client *c = tp_http_client_new();
	tp_http_request rq = {0};
	tp_http_reply rp = {0};
	ab_reply out = {0};
	char *hauth = auth ? tp_sprintf("Authorization: Bearer %s", auth) : NULL;
	const char *headers[] = {"Content-Type: application/json", hauth, NULL};
	rq.method = method;
	rq.url = url;
	rq.headers = headers;
	rq.body = body;
	rq.body_len = body ? strlen(body) : 0;
	rq.timeout_ms = 10000;
	cr_assert_eq(tp_http_client_do(c, &rp, &rq), 0, "%s %s: %s", method, url, tp_error_last());
	out.status = rp.status;
	out.text = tp_strdup(tp_buf_cstr(&rp.body));
	if (rp.body.len)
		out.json = json_loads(out.text, 0, NULL);
	tp_http_reply_clear(&rp);
	tp_http_client_free(c);
	free(hauth);
	return out;
}

/* Our own token (not counted against Tapestry's: the log tells requests apart by order). */
static AB_UNUSED const char *ab_token(ab_fake *f)
{
	if (!f->token) {
		char *url = tp_sprintf("%s/applications/token", f->base);
		ab_reply r = ab_http("POST", url, NULL,
				     "{\"client_id\":\"" AB_CLIENT_ID
				     "\",\"client_secret\":\"" AB_CLIENT_SECRET
				     "\",\"grant_type\":\"client_credentials\"}");
		cr_assert_eq(r.status, 200, "token: %s", r.text);
		f->token = tp_strdup(json_string_value(json_object_get(r.json, "access_token")));
		ab_reply_free(&r);
		free(url);
	}
	return f->token;
}

/* An API call with our token: path below /api/public/v1. */
static AB_UNUSED ab_reply ab_api(ab_fake *f, const char *method, const char *path, const char *body)
{
	char *url = tp_sprintf("%s%s", f->base, path);
	ab_reply r = ab_http(method, url, ab_token(f), body);
	free(url);
	return r;
}

/* A test-control call (path starting with /_fake/). */
static AB_UNUSED ab_reply ab_control(ab_fake *f, const char *method, const char *path,
				     const char *body)
{
	char *url = tp_sprintf("%s%s", f->root, path);
	ab_reply r = ab_http(method, url, NULL, body);
	free(url);
	return r;
}

/* The first item of a list endpoint whose `key` equals value (new reference), or NULL. */
static AB_UNUSED json_t *ab_find(ab_fake *f, const char *list_path, const char *key,
				 const char *value)
{
	ab_reply r = ab_api(f, "GET", list_path, NULL);
	json_t *found = NULL;
	size_t i;
	json_t *o;
	cr_assert_eq(r.status, 200, "GET %s: %s", list_path, r.text);
	json_array_foreach(json_object_get(r.json, "data"), i, o)
		if (!found && json_is_string(json_object_get(o, key)) &&
		    strcmp(json_string_value(json_object_get(o, key)), value) == 0)
			found = json_incref(o);
	ab_reply_free(&r);
	return found;
}

/* ---------------------------------------------------------------- the request log */

/* Every entry logged so far (a new array). */
static AB_UNUSED json_t *ab_log(const ab_fake *f)
{
	json_t *a = json_array();
	char *text = ts_read(f->log);
	char *save = NULL;
	for (char *line = text ? strtok_r(text, "\n", &save) : NULL; line;
	     line = strtok_r(NULL, "\n", &save)) {
		json_t *e = json_loads(line, 0, NULL);
		cr_assert_not_null(e, "bad log line: %s", line);
		json_array_append_new(a, e);
	}
	free(text);
	return a;
}

static AB_UNUSED size_t ab_log_len(const ab_fake *f)
{
	json_t *a = ab_log(f);
	size_t n = json_array_size(a);
	json_decref(a);
	return n;
}

static AB_UNUSED bool ab_is_write(const json_t *e)
{
	const char *m = json_string_value(json_object_get(e, "method"));
	const char *p = json_string_value(json_object_get(e, "path"));
	return m && p && strcmp(m, "GET") != 0 && !strstr(p, "/applications/token");
}

/* Entries from index `from` on with this method (NULL: any) and path containing `path`
 * (NULL: any). */
static AB_UNUSED size_t ab_count(const json_t *log, size_t from, const char *method,
				 const char *path)
{
	size_t n = 0;
	for (size_t i = from; i < json_array_size(log); i++) {
		const json_t *e = json_array_get(log, i);
		const char *m = json_string_value(json_object_get(e, "method"));
		const char *p = json_string_value(json_object_get(e, "path"));
		if (method && strcmp(method, m) != 0)
			continue;
		if (path && !strstr(p, path))
			continue;
		n++;
	}
	return n;
}

static AB_UNUSED size_t ab_writes(const json_t *log, size_t from)
{
	size_t n = 0;
	for (size_t i = from; i < json_array_size(log); i++)
		n += ab_is_write(json_array_get(log, i));
	return n;
}

/* A one-line summary of the entries from `from` on, for assertion messages. */
static AB_UNUSED char *ab_log_summary(const json_t *log, size_t from)
{
	tp_buf b;
	tp_buf_init(&b, 1 << 20);
	for (size_t i = from; i < json_array_size(log); i++) {
		const json_t *e = json_array_get(log, i);
		tp_buf_printf(&b, "%s %s %lld; ", json_string_value(json_object_get(e, "method")),
			      json_string_value(json_object_get(e, "path")),
			      (long long)json_integer_value(json_object_get(e, "status")));
	}
	return tp_buf_detach(&b);
}

#endif
