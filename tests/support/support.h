/*
 * Helpers shared by the test suites: temporary directories, files, and running the tapestry
 * binary with captured output. Tests use real files and real processes, never mocks of them.
 */
#ifndef TP_TEST_SUPPORT_H
#define TP_TEST_SUPPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Creates a fresh directory under $TMPDIR (or /tmp); caller frees the path and removes it. */
char *ts_tmpdir(void);
/* Removes a directory tree (refuses paths outside the temp area). */
void ts_rmtree(const char *path);
/* Writes text to dir/rel, creating parent directories. */
void ts_write(const char *dir, const char *rel, const char *text);
void ts_write_bytes(const char *dir, const char *rel, const void *data, size_t len);
/* Reads a file into a new string (NULL when missing). */
char *ts_read(const char *path);
/* Reads dir/rel into a new string (NULL when missing). */
char *ts_read_in(const char *dir, const char *rel);
/* Asserts that dir/rel holds exactly want (want NULL: that the file does not exist). */
void ts_expect_file(const char *dir, const char *rel, const char *want);
/* A new string: text with every occurrence of token replaced by value (an empty token
 * replaces nothing). */
char *ts_replace(const char *text, const char *token, const char *value);

typedef struct {
	int status;   /* exit status, or 128+signal */
	char *out;    /* captured stdout */
	char *err;    /* captured stderr */
} ts_result;

/* Runs the built tapestry binary with args (NULL-terminated) and extra environment entries
 * ("NAME=value", NULL-terminated, may be NULL), with a time limit. */
ts_result ts_run_tapestry(const char *const *args, const char *const *env);
/* The same with another time limit (ms), for commands that wait on a slow server. */
ts_result ts_run_tapestry_for(const char *const *args, const char *const *env, int64_t limit_ms);
void ts_result_free(ts_result *r);

/* A listing of every path under dir with size and mode, to prove a command changed nothing. */
char *ts_snapshot(const char *dir);

/* Path of a file in the source tree (tests/fixtures/...). */
char *ts_source_path(const char *rel);

/* ---- git: real repositories built with the git command line */

/* Fixed identities and dates (author and committer at @1700000000 +0000), no user or system
 * configuration. Fails the test (with how to install git) when git is missing. */
void ts_git_env(void);
/* Runs `git -C dir <args>` (default branch main, no signing, symlinks stored as symlinks);
 * fails the test on a non-zero exit; returns trimmed stdout. */
char *ts_git(const char *dir, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Starts `git daemon` serving base (every repository below it) on 127.0.0.1:port; returns its
 * PID once it accepts connections (bounded wait). Stop it with ts_stop_pid. */
pid_t ts_git_daemon_start(const char *base, int port);
/* The same, run with --verbose and its output written to log_path (truncated first); a NULL
 * log_path is ts_git_daemon_start. */
pid_t ts_git_daemon_start_logged(const char *base, int port, const char *log_path);

/* ---- processes and sockets */

/* A TCP port on 127.0.0.1 that was free a moment ago. */
int ts_free_port(void);
bool ts_can_connect(int port);
/* SIGTERM, then SIGKILL after a grace period; reaps the child. */
void ts_stop_pid(pid_t pid);
/* Starts the tapestry binary in the background with args and env (like ts_run_tapestry),
 * stdout and stderr appended to log_path. */
pid_t ts_spawn_tapestry(const char *const *args, const char *const *env, const char *log_path);

/* ---- HTTP (libcurl) */

typedef struct {
	long status;  /* 0 when the request failed */
	char *body;
} ts_http_result;

/* method "GET" or "POST"; headers NULL-terminated "Name: value" (may be NULL); body may be
 * NULL. 10 s timeout. */
ts_http_result ts_http(const char *method, const char *url, const char *const *headers,
		       const char *body);
void ts_http_result_free(ts_http_result *r);

#endif
