/*
 * Helpers for the state/ suites: a fake clock the tests move by hand, a fresh database in a
 * temporary directory, and whole-file reads for "left byte-for-byte unchanged" checks. Static
 * inline so each suite uses what it needs without unused-function warnings.
 */
#ifndef TP_TEST_STATE_H
#define TP_TEST_STATE_H

#include <criterion/criterion.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

#include "state/state.h"
#include "support/support.h"

typedef struct {
	int64_t now;
} st_fake_clock;

static inline int64_t st_fake_now(void *ctx)
{
	return ((st_fake_clock *)ctx)->now;
}

static inline void st_fake_sleep(void *ctx, int64_t ms)
{
	((st_fake_clock *)ctx)->now += ms;
}

static inline uint64_t st_fake_rand(void *ctx)
{
	(void)ctx;
	return 4;
}

/* Installs a fake clock starting at start_ms; the ops live in *ops for the test's duration. */
static inline void st_fake_clock_install(tp_clock_ops *ops, st_fake_clock *c, int64_t start_ms)
{
	c->now = start_ms;
	ops->now_ms = st_fake_now;
	ops->mono_ms = st_fake_now;
	ops->sleep_ms = st_fake_sleep;
	ops->rand_u64 = st_fake_rand;
	ops->ctx = c;
	tp_clock_set(ops);
}

/* A fresh temporary directory and the path of "state.db" inside it (both caller-freed). */
static inline char *st_db_path(char **dir_out)
{
	*dir_out = ts_tmpdir();
	return tp_sprintf("%s/state.db", *dir_out);
}

static inline tp_state *st_open_rw(const char *path)
{
	tp_state *s = NULL;
	cr_assert_eq(tp_state_open(&s, path, TP_STATE_READWRITE), 0, "open %s: %s", path,
		     tp_error_last());
	cr_assert_not_null(s);
	return s;
}

/* The whole file, binary-safe; *len set; NULL when it cannot be read. */
static inline char *st_read_all(const char *path, size_t *len)
{
	tp_buf b;
	tp_buf_init(&b, 64u << 20);
	if (tp_file_read(&b, path, 64u << 20) < 0) {
		tp_buf_free(&b);
		return NULL;
	}
	*len = b.len;
	return tp_buf_detach(&b);
}

static inline void st_assert_same_bytes(const char *path, const char *before, size_t before_len)
{
	size_t len = 0;
	char *after = st_read_all(path, &len);
	cr_assert_not_null(after, "%s vanished", path);
	cr_assert_eq(len, before_len, "%s changed size: %zu -> %zu", path, before_len, len);
	cr_assert(memcmp(before, after, len) == 0, "%s changed content", path);
	free(after);
}

/* Asserts the last error message contains needle. */
static inline void st_assert_msg(const char *needle)
{
	cr_assert(strstr(tp_error_last(), needle) != NULL, "message \"%s\" lacks \"%s\"",
		  tp_error_last(), needle);
}

/* One integer from a direct SQLite query on the file (to look behind the API). */
static inline int64_t st_sql_int(const char *path, const char *sql)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	int64_t v;
	cr_assert_eq(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	cr_assert_eq(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK, "%s: %s", sql,
		     sqlite3_errmsg(db));
	cr_assert_eq(sqlite3_step(st), SQLITE_ROW, "%s: %s", sql, sqlite3_errmsg(db));
	v = (int64_t)sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(db);
	return v;
}

/* A read-write database in a temporary directory with the fake clock installed (at
 * 2023-11-14), for the suites that move time by hand. */
typedef struct {
	char *dir;
	char *path;
	tp_state *s;
	tp_clock_ops ops;
	st_fake_clock clk;
} fixture;

static inline void fx_open(fixture *f)
{
	st_fake_clock_install(&f->ops, &f->clk, 1700000000000LL);
	f->path = st_db_path(&f->dir);
	f->s = st_open_rw(f->path);
}

static inline void fx_close(fixture *f)
{
	tp_state_close(f->s);
	tp_clock_set(NULL);
	free(f->path);
	ts_rmtree(f->dir);
	free(f->dir);
}

#endif
