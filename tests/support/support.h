/*
 * Helpers shared by the test suites: temporary directories, files, and running the tapestry
 * binary with captured output. Tests use real files and real processes, never mocks of them.
 */
#ifndef TP_TEST_SUPPORT_H
#define TP_TEST_SUPPORT_H

#include <stdbool.h>
#include <stddef.h>

/* Creates a fresh directory under $TMPDIR (or /tmp); caller frees the path and removes it. */
char *ts_tmpdir(void);
/* Removes a directory tree (refuses paths outside the temp area). */
void ts_rmtree(const char *path);
/* Writes text to dir/rel, creating parent directories. */
void ts_write(const char *dir, const char *rel, const char *text);
void ts_write_bytes(const char *dir, const char *rel, const void *data, size_t len);
/* Reads a file into a new string (NULL when missing). */
char *ts_read(const char *path);

typedef struct {
	int status;   /* exit status, or 128+signal */
	char *out;    /* captured stdout */
	char *err;    /* captured stderr */
} ts_result;

/* Runs the built tapestry binary with args (NULL-terminated) and extra environment entries
 * ("NAME=value", NULL-terminated, may be NULL), with a time limit. */
ts_result ts_run_tapestry(const char *const *args, const char *const *env);
void ts_result_free(ts_result *r);

/* A listing of every path under dir with size and mode, to prove a command changed nothing. */
char *ts_snapshot(const char *dir);

/* Path of a file in the source tree (tests/fixtures/...). */
char *ts_source_path(const char *rel);

#endif
