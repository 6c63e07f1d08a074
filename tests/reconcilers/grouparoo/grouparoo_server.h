/*
 * The real Grouparoo 0.9.0 for a Grouparoo test binary: started once per binary (Criterion's
 * PRE_ALL report hook, in the runner process) through tests/grouparoo/run-grouparoo.sh, on
 * 127.0.0.1 at a free port, in its own process group, and stopped by that group at POST_ALL.
 * Tests run in child processes and find the server through the environment:
 *   GRH_URL   http://127.0.0.1:<port>        GRH_KEY   the API key it accepts
 *   GRH_DATA  its data directory: users.sqlite (the warehouse table the sources read),
 *             config/ (code config: the locked app "code-app", id code_app), grouparoo.log
 *   GRH_ERROR set instead when it could not be started: every test fails with that message
 * (a missing node or npm says how to install them; nothing is ever skipped).
 *
 * Header-only: each test binary includes it once and calls grh_suite_start and grh_suite_stop
 * from its PRE_ALL and POST_ALL report hooks.
 */
#ifndef GROUPAROO_SERVER_H
#define GROUPAROO_SERVER_H

#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <criterion/hooks.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "support/support.h"
#include "util/util.h"

#define GRH_SCRIPT TP_SOURCE_DIR "/tests/grouparoo/run-grouparoo.sh"
#define GRH_INSTALL_LIMIT_MS (20 * 60 * 1000)
#define GRH_START_LIMIT_MS (240 * 1000)

static pid_t grh_pid;
static char grh_data[512];

/* Runs `bash run-grouparoo.sh install` with a time limit; 0 when it succeeded, else out gets
 * the tail of its output (what it said: how to get node and npm, npm's error). */
static inline int grh_install(char *out, size_t outlen)
{
	int fds[2], st = 0;
	pid_t pid;
	tp_buf b;
	int64_t deadline = tp_clock_mono_ms() + GRH_INSTALL_LIMIT_MS;
	bool killed = false;

	if (pipe(fds) != 0) {
		snprintf(out, outlen, "pipe: %s", strerror(errno));
		return -1;
	}
	pid = fork();
	if (pid < 0) {
		snprintf(out, outlen, "fork: %s", strerror(errno));
		return -1;
	}
	if (pid == 0) {
		dup2(fds[1], 1);
		dup2(fds[1], 2);
		close(fds[0]);
		execl("/bin/bash", "bash", GRH_SCRIPT, "install", (char *)NULL);
		_exit(127);
	}
	close(fds[1]);
	tp_buf_init(&b, 1 << 20);
	for (;;) {
		struct pollfd p = {fds[0], POLLIN, 0};
		char chunk[4096];
		ssize_t n;
		if (tp_clock_mono_ms() > deadline) {
			kill(pid, SIGKILL);
			killed = true;
			break;
		}
		if (poll(&p, 1, 1000) <= 0)
			continue;
		n = read(fds[0], chunk, sizeof(chunk));
		if (n > 0)
			tp_buf_put(&b, chunk, (size_t)n);
		else if (n == 0 || errno != EINTR)
			break;
	}
	close(fds[0]);
	waitpid(pid, &st, 0);
	{
		const char *text = tp_buf_cstr(&b);
		size_t len = strlen(text);
		snprintf(out, outlen, "%s%s", killed ? "timed out; " : "",
			 len > outlen - 64 ? text + len - (outlen - 64) : text);
	}
	tp_buf_free(&b);
	return !killed && WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -1;
}

static inline int grh_free_port(void)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0};
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0), port = -1;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
	    getsockname(fd, (struct sockaddr *)&a, &len) == 0)
		port = ntohs(a.sin_port);
	if (fd >= 0)
		close(fd);
	return port;
}

static inline bool grh_exec_sql(const char *path, const char *sql, char *err, size_t errlen)
{
	sqlite3 *db = NULL;
	char *msg = NULL;
	bool ok = sqlite3_open(path, &db) == SQLITE_OK &&
		  sqlite3_exec(db, sql, NULL, NULL, &msg) == SQLITE_OK;
	if (!ok)
		snprintf(err, errlen, "%s: %s", path, msg ? msg : sqlite3_errmsg(db));
	sqlite3_free(msg);
	sqlite3_close(db);
	return ok;
}

static inline bool grh_write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	bool ok = f && fputs(text, f) >= 0;
	if (f)
		ok = fclose(f) == 0 && ok;
	return ok;
}

/* The warehouse: people with e-mail addresses, read by the sources of the tests. */
static const char grh_users_sql[] =
	"CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT, first_name TEXT);"
	"INSERT INTO users VALUES (1, 'ada@example.com', 'Ada'), (2, 'bob@corp.com', 'Bob'),"
	" (3, 'cy@example.com', 'Cy');";

static inline void grh_fail_all(const char *why)
{
	setenv("GRH_ERROR", why, 1);
	fprintf(stderr, "grouparoo test server: %s\n", why);
}

static inline void grh_suite_start(void)
{
	char why[4096], path[700], url[64], port_s[16], key[40];
	const char *tmp = getenv("TMPDIR") && *getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
	uint8_t raw[12];
	int port;
	int64_t deadline;
	tp_http_client *http;

	unsetenv("GRH_ERROR");
	if (grh_install(why, sizeof(why)) < 0) {
		char msg[4200];
		snprintf(msg, sizeof(msg), "installing Grouparoo 0.9.0 failed (%s install): %s",
			 GRH_SCRIPT, why);
		grh_fail_all(msg);
		return;
	}
	snprintf(grh_data, sizeof(grh_data), "%s/tapestry-test-grouparoo-XXXXXX", tmp);
	if (!mkdtemp(grh_data)) {
		grh_fail_all("mkdtemp failed");
		return;
	}
	snprintf(path, sizeof(path), "%s/config", grh_data);
	mkdir(path, 0700);
	snprintf(path, sizeof(path), "%s/users.sqlite", grh_data);
	if (!grh_exec_sql(path, grh_users_sql, why, sizeof(why))) {
		grh_fail_all(why);
		return;
	}
	{
		/* an object of Grouparoo's own code config: locked, "config:code" */
		char *json = tp_sprintf("{\"class\": \"App\", \"id\": \"code_app\", \"name\": "
					"\"code-app\", \"type\": \"sqlite\", \"options\": "
					"{\"file\": \"%s\"}}\n", path);
		char cfg[700];
		snprintf(cfg, sizeof(cfg), "%s/config/code_app.json", grh_data);
		if (!grh_write_file(cfg, json)) {
			free(json);
			grh_fail_all("cannot write the code config");
			return;
		}
		free(json);
	}
	if (tp_random_bytes(raw, sizeof(raw)) < 0) {
		grh_fail_all("no randomness for the API key");
		return;
	}
	memcpy(key, "tpk", 3);
	tp_hex_encode(key + 3, raw, sizeof(raw));
	port = grh_free_port();
	snprintf(port_s, sizeof(port_s), "%d", port);
	grh_pid = fork();
	if (grh_pid < 0) {
		grh_fail_all("fork failed");
		return;
	}
	if (grh_pid == 0) {
		char log[700];
		int fd;
		snprintf(log, sizeof(log), "%s/grouparoo.log", grh_data);
		fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		setsid();                          /* its own process group: stopped as one */
		prctl(PR_SET_PDEATHSIG, SIGKILL);  /* never outlives the test binary */
		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		setenv("GROUPAROO_API_KEY", key, 1);
		execl("/bin/bash", "bash", GRH_SCRIPT, "exec", grh_data, port_s, (char *)NULL);
		_exit(127);
	}
	snprintf(url, sizeof(url), "http://127.0.0.1:%d", port);
	http = tp_http_client_new();
	deadline = tp_clock_mono_ms() + GRH_START_LIMIT_MS;
	for (;;) {
		tp_http_reply rep = {0};
		tp_http_request req = {0};
		char *status = tp_sprintf("%s/api/v1/status/public", url);
		int st = 0;
		bool ok;
		req.method = "GET";
		req.url = status;
		req.timeout_ms = 3000;
		ok = tp_http_client_do(http, &rep, &req) == 0 && rep.status == 200 &&
		     strstr(tp_buf_cstr(&rep.body), "\"ok\"");
		tp_http_reply_clear(&rep);
		free(status);
		if (ok)
			break;
		if (waitpid(grh_pid, &st, WNOHANG) == grh_pid) {
			char *log = tp_sprintf("%s/grouparoo.log", grh_data);
			snprintf(why, sizeof(why), "Grouparoo exited during its start (status %d); "
				 "see %s", st, log);
			free(log);
			grh_pid = 0;
			grh_fail_all(why);
			tp_http_client_free(http);
			return;
		}
		if (tp_clock_mono_ms() > deadline) {
			snprintf(why, sizeof(why), "Grouparoo did not answer %s/api/v1/status/public "
				 "within %d s; see %s/grouparoo.log", url, GRH_START_LIMIT_MS / 1000,
				 grh_data);
			grh_fail_all(why);
			tp_http_client_free(http);
			return;
		}
		usleep(250000);
	}
	tp_http_client_free(http);
	setenv("GRH_URL", url, 1);
	setenv("GRH_KEY", key, 1);
	setenv("GRH_DATA", grh_data, 1);
}

static inline int grh_rm(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(p);
}

static inline void grh_suite_stop(void)
{
	pid_t group = grh_pid;
	if (group > 0) {
		int st;
		bool reaped = false;
		kill(-group, SIGTERM);
		for (int i = 0; i < 150 && !reaped; i++) {
			reaped = waitpid(group, &st, WNOHANG) == group;
			if (!reaped)
				usleep(100000);
		}
		kill(-group, SIGKILL); /* whatever is left in its process group */
		if (!reaped)
			waitpid(group, &st, 0);
		grh_pid = 0;
	}
	if (grh_data[0] && !getenv("GRH_KEEP"))
		nftw(grh_data, grh_rm, 16, FTW_DEPTH | FTW_PHYS);
}

/* ---------------------------------------------------------------- in the tests */

/* Fails the test when the server could not be started (with the reason). */
static inline void grh_require(void)
{
	const char *why = getenv("GRH_ERROR");
	if (why)
		cr_assert_fail("the Grouparoo test server is not available: %s", why);
	cr_assert(getenv("GRH_URL") && getenv("GRH_KEY") && getenv("GRH_DATA"),
		  "the Grouparoo test server was not started (PRE_ALL hook)");
}

static inline const char *grh_url(void)
{
	return getenv("GRH_URL");
}

static inline const char *grh_key(void)
{
	return getenv("GRH_KEY");
}

/* A path in the server's data directory (new string). */
static inline char *grh_path(const char *rel)
{
	return tp_sprintf("%s/%s", getenv("GRH_DATA"), rel);
}

/* The test's own view of Grouparoo: a call with the API key; *status gets the HTTP status;
 * returns the parsed reply (new reference; an object, also for errors). */
static inline json_t *grh_api(long *status, const char *method, const char *path, const char *body)
{
	char *url = tp_sprintf("%s/api/v1%s", grh_url(), path);
	char *auth = tp_sprintf("Authorization: Bearer %s", grh_key());
	const char *headers[] = {auth, "Content-Type: application/json", NULL};
	tp_http_client *c = tp_http_client_new();
	tp_http_request req = {0};
	tp_http_reply rep = {0};
	json_t *doc = NULL;
	req.method = method;
	req.url = url;
	req.headers = headers;
	req.body = body;
	req.body_len = body ? strlen(body) : 0;
	req.timeout_ms = 60000;
	cr_assert_eq(tp_http_client_do(c, &rep, &req), 0, "%s %s: %s", method, path,
		     tp_error_last());
	if (status)
		*status = rep.status;
	if (tp_json_parse(&doc, rep.body.ptr ? rep.body.ptr : "{}", rep.body.len ? rep.body.len
										: 2) < 0)
		doc = json_object();
	tp_http_reply_clear(&rep);
	tp_http_client_free(c);
	free(url);
	free(auth);
	return doc;
}

/* GET a list and return its array (new reference). */
static inline json_t *grh_list(const char *collection)
{
	char *path = tp_sprintf("/%s?limit=1000", collection);
	long st = 0;
	json_t *reply = grh_api(&st, "GET", path, NULL);
	json_t *items = json_incref(json_object_get(reply, collection));
	cr_assert_eq(st, 200, "GET %s: HTTP %ld", path, st);
	cr_assert(json_is_array(items), "GET %s: no %s array", path, collection);
	json_decref(reply);
	free(path);
	return items;
}

/* How many objects of a collection have field == value (e.g. sources named "x"). */
static inline size_t grh_count(const char *collection, const char *field, const char *value)
{
	json_t *items = grh_list(collection);
	size_t i, n = 0;
	json_t *o;
	json_array_foreach(items, i, o) {
		const char *v = tp_json_get_str(o, field);
		if (v && strcmp(v, value) == 0)
			n++;
	}
	json_decref(items);
	return n;
}

/* The object of a collection with field == value (new reference), or NULL. */
static inline json_t *grh_find(const char *collection, const char *field, const char *value)
{
	json_t *items = grh_list(collection), *found = NULL;
	size_t i;
	json_t *o;
	json_array_foreach(items, i, o) {
		const char *v = tp_json_get_str(o, field);
		if (v && strcmp(v, value) == 0) {
			found = json_incref(o);
			break;
		}
	}
	json_decref(items);
	return found;
}

/* Creates a table in the warehouse file (for destinations that export into it). */
static inline void grh_sql(const char *sql)
{
	char err[1024];
	char *path = grh_path("users.sqlite");
	cr_assert(grh_exec_sql(path, sql, err, sizeof(err)), "%s", err);
	free(path);
}

#endif
