/*
 * state/internal.h — what the files of state/ share and nothing outside this folder may use:
 * the layout of the handle and the small SQLite helpers (error mapping with the sqlite message,
 * binding values and canonical JSON, reading nullable text and JSON columns). Not part of the
 * contract: code outside state/ includes "state/state.h" only.
 */
#ifndef TP_STATE_INTERNAL_H
#define TP_STATE_INTERNAL_H

#include <sqlite3.h>

#include "state.h"

struct tp_state {
	sqlite3 *db;
	char *path;
	tp_state_mode mode;
	int busy_ms; /* the busy timeout in force, quoted in "locked" messages */
	int depth;   /* tp_state_begin nesting; only depth 0 <-> 1 touches SQLite */
	bool doomed; /* an inner tp_state_rollback happened: the outer commit must roll back */
	bool lazy;   /* the open transaction commits without waiting for the disk */
	bool key_loaded;
	uint8_t key[32];
};

/* tp_state_open with the busy timeout as a parameter: the public function passes
 * TP_STATE_BUSY_TIMEOUT_MS; tests pass a short one to prove lock handling quickly. */
int tp_state_open_timeout(tp_state **out, const char *path, tp_state_mode mode, int busy_ms);

/*
 * Records a failed SQLite call (rc is its result code) and returns the matching TP_E* code:
 * BUSY/LOCKED → TP_ECONFLICT ("locked by another process"), NOTADB/CORRUPT/CONSTRAINT →
 * TP_EINVALID, I/O and permission failures → TP_EIO, otherwise TP_ERROR. The message names the
 * database, what was being done (printf-style) and sqlite3_errmsg.
 */
int tp_state_fail(tp_state *s, int rc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* sqlite3_prepare_v2 with the failure reported through tp_state_fail. */
int tp_state_prepare(sqlite3_stmt **out, tp_state *s, const char *sql);

/* Runs one constant statement that returns no rows we need (BEGIN, PRAGMA x = y, ...). */
int tp_state_exec(tp_state *s, const char *sql, const char *what);

/*
 * Binding keeps the first failure in *brc (an SQLite code, SQLITE_OK initially), so a run of
 * binds needs a single check afterwards. NULL text or JSON binds SQL NULL; JSON is stored as
 * its canonical text (tp_json_canonical).
 */
void tp_state_bind_text(int *brc, sqlite3_stmt *st, int idx, const char *v);
void tp_state_bind_i64(int *brc, sqlite3_stmt *st, int idx, int64_t v);
void tp_state_bind_json(int *brc, sqlite3_stmt *st, int idx, const json_t *v);

/* A new copy of a text column, NULL when the column is SQL NULL. */
char *tp_state_column_strdup(sqlite3_stmt *st, int col);
/* Parses a JSON text column into a new reference (*out NULL for SQL NULL). A column that does
 * not parse is TP_EINVALID naming the row (`row`, e.g. "resource aws.stack/x") and column. */
int tp_state_column_json(json_t **out, tp_state *s, sqlite3_stmt *st, int col, const char *row);

#endif
