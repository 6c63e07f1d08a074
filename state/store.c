/*
 * state/store.c — opening the state database and keeping it sound. Before anything is written
 * the file is classified by reading only (empty, ours, somebody else's, not SQLite at all), so a
 * refused open leaves it byte-for-byte as it was; only then are WAL mode and the migrations
 * (a table of SQL keyed by PRAGMA user_version, run in one IMMEDIATE transaction) applied. Also
 * here: nestable transactions, the installation key file "<path>.key", and the helpers the
 * other files of state/ share (error mapping, binding, JSON columns). Everything else in
 * state/ runs on the connection opened here.
 */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef TAPESTRY_VERSION
#define TAPESTRY_VERSION "unknown"
#endif

#define KEY_LEN 32

/* ---------------------------------------------------------------- schema */

/*
 * Migration N takes a database from user_version N-1 to N and must end by setting
 * user_version = N (checked after it runs). Entries are never edited once released: a schema
 * change is a new entry. The meta table and its 'application' row are the mark by which open
 * recognises a Tapestry database; every future schema must keep them.
 */
typedef struct {
	int version;
	const char *sql;
} migration;

/* The schema reads best laid out as the SQL it is. */
/* clang-format off */
/* Version 1: the initial schema. */
static const char migration_1[] =
	"CREATE TABLE meta ("
	"  key   TEXT PRIMARY KEY NOT NULL,"
	"  value TEXT NOT NULL"
	");"
	"INSERT INTO meta (key, value) VALUES ('application', 'tapestry');"

	/* last applied and last observed state, one row per managed object */
	"CREATE TABLE resources ("
	"  address       TEXT PRIMARY KEY NOT NULL," /* kind/name */
	"  kind          TEXT NOT NULL,"
	"  name          TEXT NOT NULL,"
	"  provider_id   TEXT,"
	"  applied       TEXT," /* canonical JSON text, NULL for a NULL json_t */
	"  secret_hashes TEXT,"
	"  outputs       TEXT,"
	"  observed      TEXT,"
	"  lifecycle     TEXT,"
	"  deps          TEXT,"
	"  spec_hash     TEXT,"
	"  status        TEXT NOT NULL,"
	"  revision      TEXT,"
	"  created_ms    INTEGER NOT NULL,"
	"  updated_ms    INTEGER NOT NULL,"
	"  observed_ms   INTEGER NOT NULL DEFAULT 0"
	");"

	/* every commit seen; seq orders "newest" without depending on distinct clock ticks */
	"CREATE TABLE revisions ("
	"  commit_id     TEXT PRIMARY KEY NOT NULL,"
	"  tree          TEXT,"
	"  first_seen_ms INTEGER NOT NULL,"
	"  updated_ms    INTEGER NOT NULL,"
	"  seq           INTEGER NOT NULL,"
	"  result        TEXT NOT NULL,"
	"  detail        TEXT"
	");"
	"CREATE INDEX revisions_by_result ON revisions (result, seq);"

	"CREATE TABLE runs ("
	"  id           INTEGER PRIMARY KEY AUTOINCREMENT,"
	"  revision     TEXT,"
	"  triggered_by TEXT NOT NULL,"
	"  started_ms   INTEGER NOT NULL,"
	"  ended_ms     INTEGER," /* NULL while running */
	"  result       TEXT,"
	"  counts       TEXT"
	");"

	/* write-ahead journal of provider calls */
	"CREATE TABLE journal ("
	"  id         INTEGER PRIMARY KEY AUTOINCREMENT,"
	"  run_id     INTEGER NOT NULL REFERENCES runs (id),"
	"  address    TEXT NOT NULL,"
	"  action     TEXT NOT NULL,"
	"  token      TEXT NOT NULL,"
	"  spec_hash  TEXT,"
	"  status     TEXT NOT NULL CHECK (status IN ('pending', 'done', 'failed')),"
	"  attempts   INTEGER NOT NULL DEFAULT 1,"
	"  error      TEXT,"
	"  started_ms INTEGER NOT NULL,"
	"  ended_ms   INTEGER"
	");"
	"CREATE INDEX journal_by_status ON journal (status, id);"
	"CREATE INDEX journal_by_run ON journal (run_id);"

	"CREATE TABLE events ("
	"  id      INTEGER PRIMARY KEY AUTOINCREMENT,"
	"  ts_ms   INTEGER NOT NULL,"
	"  run_id  INTEGER REFERENCES runs (id)," /* NULL: not tied to a run */
	"  address TEXT,"
	"  level   TEXT NOT NULL CHECK (level IN ('info', 'warn', 'error')),"
	"  type    TEXT NOT NULL,"
	"  message TEXT NOT NULL"
	");"
	"CREATE INDEX events_by_address ON events (address, id);"
	"CREATE INDEX events_by_run ON events (run_id);"

	"CREATE TABLE cache ("
	"  key        TEXT PRIMARY KEY NOT NULL,"
	"  value      TEXT NOT NULL,"
	"  expires_ms INTEGER NOT NULL"
	");"
	"CREATE INDEX cache_by_expiry ON cache (expires_ms);"

	/* one controller per database: a single row with a lease */
	"CREATE TABLE lock ("
	"  id          INTEGER PRIMARY KEY CHECK (id = 1),"
	"  owner       TEXT NOT NULL,"
	"  acquired_ms INTEGER NOT NULL,"
	"  expires_ms  INTEGER NOT NULL"
	");"

	"PRAGMA application_id = 1414550356;" /* 'TPST', for file(1) and friends */
	"PRAGMA user_version = 1;";

/* 2: the plan each run carried out, for the status API and the dashboard */
static const char migration_2[] =
	"ALTER TABLE runs ADD COLUMN plan TEXT;"
	"PRAGMA user_version = 2;";

/* 3: indexes for pruning history (tp_state_prune) and for numbering revisions: events by
 * time (age limit), revisions by seq (the count limit, and max(seq) at each record without a
 * scan), runs by revision (the run that applied the current revision is kept). IF NOT EXISTS:
 * tests rebuild older schemas from a current one. */
static const char migration_3[] =
	"CREATE INDEX IF NOT EXISTS events_by_time ON events (ts_ms);"
	"CREATE INDEX IF NOT EXISTS revisions_by_seq ON revisions (seq);"
	"CREATE INDEX IF NOT EXISTS runs_by_revision ON runs (revision, id);"
	"PRAGMA user_version = 3;";

static const migration migrations[] = {
	{1, migration_1},
	{2, migration_2},
	{3, migration_3},
};
/* clang-format on */

#define MIGRATION_COUNT ((int)(sizeof(migrations) / sizeof(migrations[0])))

_Static_assert(sizeof(migrations) / sizeof(migrations[0]) == TP_STATE_SCHEMA_VERSION,
	       "one migration per schema version");

/* ---------------------------------------------------------------- shared helpers */

int tp_state_fail(tp_state *s, int rc, const char *fmt, ...)
{
	char what[512];
	const char *msg;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	/* the connection's message belongs to this failure only when its code matches */
	if (s->db && (sqlite3_extended_errcode(s->db) == rc || sqlite3_errcode(s->db) == rc))
		msg = sqlite3_errmsg(s->db);
	else
		msg = sqlite3_errstr(rc);

	switch (rc & 0xff) {
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		return tp_error_set(TP_ECONFLICT,
				    "state database %s is locked by another process (waited %d ms "
				    "to %s: %s); stop the other tapestry process or retry later",
				    s->path, s->busy_ms, what, msg);
	case SQLITE_NOTADB:
		return tp_error_set(TP_EINVALID,
				    "state database %s is not an SQLite database (%s); refusing to "
				    "touch it: move it away or choose another state path",
				    s->path, msg);
	case SQLITE_CORRUPT:
		return tp_error_set(
		    TP_EINVALID, "state database %s is corrupt (%s: %s); restore it from a backup",
		    s->path, what, msg);
	case SQLITE_CONSTRAINT:
	case SQLITE_MISMATCH:
	case SQLITE_RANGE:
	case SQLITE_TOOBIG:
		return tp_error_set(TP_EINVALID, "state database %s: %s: %s", s->path, what, msg);
	case SQLITE_NOMEM:
		return tp_error_set(TP_ENOMEM, "state database %s: %s: %s", s->path, what, msg);
	case SQLITE_IOERR:
	case SQLITE_FULL:
	case SQLITE_CANTOPEN:
	case SQLITE_PERM:
	case SQLITE_READONLY:
		return tp_error_set(TP_EIO, "state database %s: %s: %s", s->path, what, msg);
	default: return tp_error_set(TP_ERROR, "state database %s: %s: %s", s->path, what, msg);
	}
}

int tp_state_prepare(sqlite3_stmt **out, tp_state *s, const char *sql)
{
	int rc = sqlite3_prepare_v2(s->db, sql, -1, out, NULL);
	if (rc != SQLITE_OK) {
		sqlite3_finalize(*out);
		*out = NULL;
		/* the SQL is a constant of ours (values are always bound): safe to quote */
		return tp_state_fail(s, rc, "prepare \"%.60s...\"", sql);
	}
	return 0;
}

int tp_state_exec(tp_state *s, const char *sql, const char *what)
{
	sqlite3_stmt *st = NULL;
	int rc = tp_state_prepare(&st, s, sql);
	int src;

	if (rc < 0)
		goto done;
	while ((src = sqlite3_step(st)) == SQLITE_ROW)
		;
	if (src != SQLITE_DONE)
		rc = tp_state_fail(s, src, "%s", what);
done:
	sqlite3_finalize(st);
	return rc;
}

void tp_state_bind_text(int *brc, sqlite3_stmt *st, int idx, const char *v)
{
	if (*brc != SQLITE_OK)
		return;
	*brc = v ? sqlite3_bind_text(st, idx, v, -1, SQLITE_TRANSIENT) : sqlite3_bind_null(st, idx);
}

void tp_state_bind_i64(int *brc, sqlite3_stmt *st, int idx, int64_t v)
{
	if (*brc != SQLITE_OK)
		return;
	*brc = sqlite3_bind_int64(st, idx, (sqlite3_int64)v);
}

void tp_state_bind_json(int *brc, sqlite3_stmt *st, int idx, const json_t *v)
{
	if (*brc != SQLITE_OK)
		return;
	if (!v) {
		*brc = sqlite3_bind_null(st, idx);
		return;
	}
	/* sqlite calls free on the text when done with it, also when the bind fails */
	*brc = sqlite3_bind_text(st, idx, tp_json_canonical(v), -1, free);
}

char *tp_state_column_strdup(sqlite3_stmt *st, int col)
{
	const unsigned char *t = sqlite3_column_text(st, col);
	if (!t)
		return NULL;
	return tp_strndup((const char *)t, (size_t)sqlite3_column_bytes(st, col));
}

int tp_state_column_json(json_t **out, tp_state *s, sqlite3_stmt *st, int col, const char *row)
{
	const unsigned char *t = sqlite3_column_text(st, col);
	char *why = NULL;
	int rc = 0;

	*out = NULL;
	if (!t)
		return 0;
	rc = tp_json_parse(out, (const char *)t, (size_t)sqlite3_column_bytes(st, col));
	if (rc < 0) {
		why = tp_strdup(tp_error_last());
		rc = tp_error_set(TP_EINVALID,
				  "state database %s: %s: column %s does not hold valid JSON (%s); "
				  "was the database edited outside tapestry?",
				  s->path, row, sqlite3_column_name(st, col), why);
	}
	free(why);
	return rc;
}

/* ---------------------------------------------------------------- opening */

/* What a file holds, decided by reading only. */
typedef enum { DB_EMPTY, DB_OURS, DB_FOREIGN } db_kind;

static int read_int(int64_t *out, tp_state *s, const char *sql, const char *what)
{
	sqlite3_stmt *st = NULL;
	int rc = tp_state_prepare(&st, s, sql);
	int src;

	*out = 0;
	if (rc < 0)
		goto done;
	src = sqlite3_step(st);
	if (src == SQLITE_ROW)
		*out = (int64_t)sqlite3_column_int64(st, 0);
	else if (src != SQLITE_DONE)
		rc = tp_state_fail(s, src, "%s", what);
done:
	sqlite3_finalize(st);
	return rc;
}

/*
 * Empty (no schema objects at all, user_version 0), ours (a meta table whose 'application'
 * row says tapestry), or foreign. Reads only: safe on any file.
 */
static int classify(db_kind *out, int64_t *version, tp_state *s)
{
	sqlite3_stmt *st = NULL;
	int64_t objects = 0;
	int rc, src;

	*out = DB_FOREIGN;
	rc = read_int(
	    &objects, s,
	    "SELECT count(*) FROM sqlite_master WHERE name NOT LIKE 'sqlite\\_%' ESCAPE '\\'",
	    "read the schema");
	if (rc < 0)
		goto done;
	rc = read_int(version, s, "PRAGMA user_version", "read the schema version");
	if (rc < 0)
		goto done;
	if (objects == 0) {
		*out = *version == 0 ? DB_EMPTY : DB_FOREIGN;
		goto done;
	}
	/* a database without a usable meta table fails to prepare this: that is "foreign" */
	src = sqlite3_prepare_v2(s->db, "SELECT value FROM meta WHERE key = 'application'", -1, &st,
				 NULL);
	if (src != SQLITE_OK) {
		if ((src & 0xff) != SQLITE_ERROR)
			rc = tp_state_fail(s, src, "read the meta table");
		goto done;
	}
	src = sqlite3_step(st);
	if (src == SQLITE_ROW) {
		const unsigned char *v = sqlite3_column_text(st, 0);
		if (v && strcmp((const char *)v, "tapestry") == 0)
			*out = DB_OURS;
	} else if (src != SQLITE_DONE) {
		rc = tp_state_fail(s, src, "read the meta table");
	}
done:
	sqlite3_finalize(st);
	return rc;
}

static int check_parent_dir(const char *path)
{
	char *copy = tp_strdup(path);
	const char *dir = dirname(copy);
	struct stat st;
	int rc = 0;

	if (stat(dir, &st) != 0) {
		if (errno == ENOENT || errno == ENOTDIR)
			rc = tp_error_set(
			    TP_ENOTFOUND,
			    "state database %s: directory %s does not exist; create it "
			    "(e.g. mkdir -p %s) or choose another state path",
			    path, dir, dir);
		else
			rc =
			    tp_error_set(TP_EIO, "state database %s: cannot reach directory %s: %s",
					 path, dir, strerror(errno));
	} else if (!S_ISDIR(st.st_mode)) {
		rc = tp_error_set(
		    TP_ENOTFOUND,
		    "state database %s: %s is not a directory; choose another state path", path,
		    dir);
	}
	free(copy);
	return rc;
}

/* Creates the file ourselves so that it is 0600 whatever the umask; *created tells whether
 * this call made it (another process may win the race, which is fine). */
static int create_file(bool *created, const char *path)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);

	*created = false;
	if (fd < 0) {
		if (errno == EEXIST)
			return 0;
		return tp_error_set(TP_EIO, "state database %s: cannot create it: %s", path,
				    strerror(errno));
	}
	*created = true;
	if (fchmod(fd, 0600) != 0) {
		int e = errno;
		close(fd);
		return tp_error_set(TP_EIO, "state database %s: cannot set mode 0600: %s", path,
				    strerror(e));
	}
	close(fd);
	return 0;
}

static void remove_created(const char *path)
{
	static const char *const suffixes[] = {"", "-wal", "-shm", "-journal"};
	for (size_t i = 0; i < sizeof(suffixes) / sizeof(suffixes[0]); i++) {
		char *p = tp_sprintf("%s%s", path, suffixes[i]);
		unlink(p);
		free(p);
	}
}

static int refuse_newer(tp_state *s, int64_t version)
{
	return tp_error_set(TP_EINVALID,
			    "state database %s was written by a newer Tapestry (schema %lld, this "
			    "binary knows %d); upgrade tapestry",
			    s->path, (long long)version, TP_STATE_SCHEMA_VERSION);
}

static int set_wal(tp_state *s)
{
	sqlite3_stmt *st = NULL;
	int rc = tp_state_prepare(&st, s, "PRAGMA journal_mode = WAL");
	int src;

	if (rc < 0)
		goto done;
	src = sqlite3_step(st);
	if (src != SQLITE_ROW) {
		rc = tp_state_fail(s, src, "switch to WAL journal mode");
		goto done;
	}
	/* the pragma answers with the mode in force, which stays the old one when it cannot
	 * switch (e.g. another connection holds the file in rollback mode) */
	if (sqlite3_stricmp((const char *)sqlite3_column_text(st, 0), "wal") != 0)
		rc =
		    tp_error_set(TP_ECONFLICT,
				 "state database %s: cannot switch to WAL journal mode (still %s); "
				 "is another process using it?",
				 s->path, (const char *)sqlite3_column_text(st, 0));
done:
	sqlite3_finalize(st);
	return rc;
}

/* Brings the schema to TP_STATE_SCHEMA_VERSION inside one IMMEDIATE transaction; the version
 * is read again under the write lock because another process may have migrated meanwhile. */
static int migrate(tp_state *s)
{
	sqlite3_stmt *st = NULL;
	int64_t version = 0, after = 0;
	bool in_tx = false;
	int rc, brc = SQLITE_OK;

	rc = tp_state_exec(s, "BEGIN IMMEDIATE", "start the schema migration");
	if (rc < 0)
		goto done;
	in_tx = true;
	rc = read_int(&version, s, "PRAGMA user_version", "read the schema version");
	if (rc < 0)
		goto done;
	if (version > TP_STATE_SCHEMA_VERSION) {
		rc = refuse_newer(s, version);
		goto done;
	}
	for (int i = (int)version; i < MIGRATION_COUNT; i++) {
		int src = sqlite3_exec(s->db, migrations[i].sql, NULL, NULL, NULL);
		if (src != SQLITE_OK) {
			rc = tp_state_fail(s, src, "migrate the schema to version %d",
					   migrations[i].version);
			goto done;
		}
		rc = read_int(&after, s, "PRAGMA user_version", "read the schema version");
		if (rc < 0)
			goto done;
		if (after != migrations[i].version) {
			rc = tp_error_set(
			    TP_ERROR,
			    "state database %s: migration %d left user_version at %lld "
			    "(programming error)",
			    s->path, migrations[i].version, (long long)after);
			goto done;
		}
	}
	if (version == 0) {
		rc = tp_state_prepare(&st, s,
				      "INSERT INTO meta (key, value) VALUES ('created_ms', ?1), "
				      "('created_by', ?2)");
		if (rc < 0)
			goto done;
		tp_state_bind_i64(&brc, st, 1, tp_clock_now_ms());
		tp_state_bind_text(&brc, st, 2, "tapestry " TAPESTRY_VERSION);
		if (brc == SQLITE_OK)
			brc = sqlite3_step(st);
		if (brc != SQLITE_DONE) {
			rc = tp_state_fail(s, brc, "record the creation of the database");
			goto done;
		}
	}
	rc = tp_state_exec(s, "COMMIT", "commit the schema migration");
	if (rc == 0)
		in_tx = false;
done:
	sqlite3_finalize(st);
	if (in_tx)
		sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
	return rc;
}

static int configure(tp_state *s)
{
	int rc;

	sqlite3_extended_result_codes(s->db, 1);
	sqlite3_busy_timeout(s->db, s->busy_ms);
	/* the file may be hostile until classified: no schema tricks, no writable schema */
	sqlite3_db_config(s->db, SQLITE_DBCONFIG_DEFENSIVE, 1, (int *)NULL);
	sqlite3_db_config(s->db, SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0, (int *)NULL);
	rc = tp_state_exec(s, "PRAGMA foreign_keys = ON", "enable foreign keys");
	/* FULL: a committed journal row survives power loss, not just a process crash */
	if (rc == 0)
		rc = tp_state_exec(s, "PRAGMA synchronous = FULL", "set synchronous mode");
	return rc;
}

/* Everything about the path before SQLite sees it: the directory exists, the file is a regular
 * file, and in READWRITE mode a missing file is created 0600 (*created says we made it). */
static int prepare_path(bool *created, const char *path, tp_state_mode mode)
{
	struct stat st;
	int rc = 0;

	*created = false;
	if (mode == TP_STATE_READWRITE) {
		rc = check_parent_dir(path);
		if (rc < 0)
			return rc;
	}
	if (stat(path, &st) != 0) {
		if (errno != ENOENT)
			return tp_error_set(TP_EIO, "state database %s: %s", path, strerror(errno));
		if (mode == TP_STATE_READONLY)
			return tp_error_set(
			    TP_ENOTFOUND,
			    "state database %s does not exist (nothing applied yet); "
			    "a read-write command creates it",
			    path);
		return create_file(created, path);
	}
	if (!S_ISREG(st.st_mode))
		return tp_error_set(TP_EINVALID,
				    "state database %s is not a regular file; choose another state "
				    "path",
				    path);
	return 0;
}

/* Refuses what classify found unless it is ours at a version this mode can use (or empty, in
 * READWRITE mode). Writes nothing. */
static int check_usable(tp_state *s, db_kind kind, int64_t version)
{
	if (kind == DB_FOREIGN)
		return tp_error_set(TP_EINVALID,
				    "state database %s is an SQLite database that Tapestry did not "
				    "create (it has no Tapestry meta row); refusing to modify it: "
				    "choose another state path",
				    s->path);
	if (kind == DB_OURS && version > TP_STATE_SCHEMA_VERSION)
		return refuse_newer(s, version);
	/* migration 1 writes the mark and the version in one transaction: a mark without a
	 * version was not made by tapestry (or was edited by hand) */
	if (kind == DB_OURS && version == 0)
		return tp_error_set(
		    TP_EINVALID,
		    "state database %s has a Tapestry meta row but no schema "
		    "version; it was not created by tapestry or was edited by hand: "
		    "restore it from a backup or choose another state path",
		    s->path);
	if (s->mode == TP_STATE_READONLY && kind == DB_EMPTY)
		return tp_error_set(
		    TP_ENOTFOUND,
		    "state database %s is empty (nothing applied yet); a read-write "
		    "command initialises it",
		    s->path);
	if (s->mode == TP_STATE_READONLY && version != TP_STATE_SCHEMA_VERSION)
		return tp_error_set(
		    TP_EINVALID,
		    "state database %s has schema %lld but this binary reads schema "
		    "%d; run a read-write command (tapestry apply or run) once to "
		    "migrate it",
		    s->path, (long long)version, TP_STATE_SCHEMA_VERSION);
	return 0;
}

int tp_state_open_timeout(tp_state **out, const char *path, tp_state_mode mode, int busy_ms)
{
	tp_state *s = NULL;
	bool created = false, wal_pending = false;
	char *wal_path = NULL;
	db_kind kind = DB_FOREIGN;
	int64_t version = 0;
	struct stat st;
	int rc = 0, src, flags;

	*out = NULL;
	if (!path || !*path)
		return tp_error_set(TP_EINVALID, "state database: empty path");
	s = tp_calloc(1, sizeof(*s));
	s->path = tp_strdup(path);
	s->mode = mode;
	s->busy_ms = busy_ms;

	rc = prepare_path(&created, path, mode);
	if (rc < 0)
		goto done;
	wal_path = tp_sprintf("%s-wal", path);
	wal_pending = stat(wal_path, &st) == 0 && st.st_size > 0;
	flags = (mode == TP_STATE_READONLY ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE) |
		SQLITE_OPEN_NOMUTEX;
	src = sqlite3_open_v2(path, &s->db, flags, NULL);
	if (src != SQLITE_OK) {
		rc = tp_state_fail(s, src, "open it");
		goto done;
	}
	if (mode == TP_STATE_READWRITE && sqlite3_db_readonly(s->db, "main") == 1) {
		rc = tp_error_set(TP_EIO,
				  "state database %s is not writable by this user; check its owner "
				  "and mode (it should be 0600, owned by the tapestry user)",
				  path);
		goto done;
	}
	/* a WAL with frames in it may belong to somebody else's database: closing after a
	 * refused open must not checkpoint it into the file (an empty WAL is merely removed) */
	if (wal_pending)
		sqlite3_db_config(s->db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, (int *)NULL);
	rc = configure(s);
	if (rc == 0)
		rc = classify(&kind, &version, s);
	if (rc < 0)
		goto done;
	rc = check_usable(s, kind, version);
	if (rc < 0 || mode == TP_STATE_READONLY)
		goto done;
	/* verified ours or empty: only now may anything be written */
	sqlite3_db_config(s->db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 0, (int *)NULL);
	rc = set_wal(s);
	if (rc == 0)
		rc = migrate(s);
	if (rc == 0 && created && chmod(path, 0600) != 0)
		rc = tp_error_set(TP_EIO, "state database %s: cannot set mode 0600: %s", path,
				  strerror(errno));
done:
	free(wal_path);
	if (rc < 0) {
		tp_state_close(s);
		if (created)
			remove_created(path);
		return rc;
	}
	*out = s;
	return 0;
}

int tp_state_open(tp_state **out, const char *path, tp_state_mode mode)
{
	return tp_state_open_timeout(out, path, mode, TP_STATE_BUSY_TIMEOUT_MS);
}

void tp_state_close(tp_state *s)
{
	if (!s)
		return;
	if (s->db) {
		if (!sqlite3_get_autocommit(s->db))
			sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
		sqlite3_close(s->db);
	}
	explicit_bzero(s->key, sizeof(s->key));
	free(s->path);
	free(s);
}

const char *tp_state_path(const tp_state *s)
{
	return s ? s->path : NULL;
}

/* ---------------------------------------------------------------- transactions */

int tp_state_begin(tp_state *s)
{
	if (s->depth == 0) {
		/* IMMEDIATE takes the write lock now, through the busy handler; a deferred
		 * transaction upgrading later would fail at once with SQLITE_BUSY in WAL mode */
		int rc =
		    tp_state_exec(s, s->mode == TP_STATE_READONLY ? "BEGIN" : "BEGIN IMMEDIATE",
				  "begin a transaction");
		if (rc < 0)
			return rc;
		s->doomed = false;
	}
	s->depth++;
	return 0;
}

static void end_lazy(tp_state *s);

int tp_state_commit(tp_state *s)
{
	int rc;

	if (s->depth == 0)
		return tp_error_set(TP_EINVALID,
				    "state database %s: commit without a matching begin "
				    "(programming error)",
				    s->path);
	if (--s->depth > 0)
		return 0;
	if (s->doomed || sqlite3_get_autocommit(s->db)) {
		/* an inner rollback, or SQLite aborted the transaction after an error */
		if (!sqlite3_get_autocommit(s->db))
			sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
		s->doomed = false;
		end_lazy(s);
		return tp_error_set(TP_ERROR,
				    "state database %s: the transaction was rolled back (a nested "
				    "step failed); nothing was committed",
				    s->path);
	}
	rc = tp_state_exec(s, "COMMIT", "commit a transaction");
	if (rc < 0 && !sqlite3_get_autocommit(s->db))
		sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
	end_lazy(s);
	return rc;
}

int tp_state_begin_lazy(tp_state *s)
{
	int rc;
	/* the safety level cannot change inside a transaction: set it before, back after */
	bool outer = s->depth == 0 && s->mode != TP_STATE_READONLY;
	if (outer && tp_state_exec(s, "PRAGMA synchronous = NORMAL", "relax synchronous mode") < 0)
		tp_error_clear(); /* then an ordinary, waiting commit */
	rc = tp_state_begin(s);
	if (outer && rc == 0)
		s->lazy = true;
	else if (outer)
		sqlite3_exec(s->db, "PRAGMA synchronous = FULL", NULL, NULL, NULL);
	return rc;
}

/* After the outermost commit or rollback of a lazy transaction: FULL again for the next. */
static void end_lazy(tp_state *s)
{
	if (s->depth == 0 && s->lazy) {
		s->lazy = false;
		sqlite3_exec(s->db, "PRAGMA synchronous = FULL", NULL, NULL, NULL);
	}
}

void tp_state_rollback(tp_state *s)
{
	if (!s || s->depth == 0)
		return;
	if (--s->depth > 0) {
		s->doomed = true;
		return;
	}
	/* never touches the error message: this runs on failure paths after it was set */
	if (!sqlite3_get_autocommit(s->db))
		sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
	s->doomed = false;
	end_lazy(s);
}

/* ---------------------------------------------------------------- installation key */

static int read_key(uint8_t out[KEY_LEN], const char *keypath, bool *missing)
{
	int fd = open(keypath, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	struct stat st;
	ssize_t n = 0;
	int rc = 0;

	*missing = false;
	if (fd < 0) {
		if (errno == ENOENT)
			*missing = true;
		else
			rc = tp_error_set(TP_EIO, "secret key file %s: cannot open it: %s", keypath,
					  strerror(errno));
		goto done;
	}
	if (fstat(fd, &st) != 0) {
		rc = tp_error_set(TP_EIO, "secret key file %s: %s", keypath, strerror(errno));
		goto done;
	}
	if (!S_ISREG(st.st_mode) || st.st_size != KEY_LEN) {
		rc =
		    tp_error_set(TP_EINVALID,
				 "secret key file %s is damaged (%lld bytes, expected %d); restore "
				 "it from a backup (a new key would make every stored secret "
				 "fingerprint look changed)",
				 keypath, (long long)st.st_size, KEY_LEN);
		goto done;
	}
	if (st.st_mode & 077)
		tp_log_warn("secret key file %s is readable by others (mode %03o); chmod 600 it",
			    keypath, (unsigned)(st.st_mode & 0777));
	while (n < KEY_LEN) {
		ssize_t r = read(fd, out + n, (size_t)(KEY_LEN - n));
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			rc = tp_error_set(TP_EIO, "secret key file %s: short read: %s", keypath,
					  r < 0 ? strerror(errno) : "end of file");
			goto done;
		}
		n += r;
	}
done:
	if (fd >= 0)
		close(fd);
	return rc;
}

/* Writes a fresh key to a private temporary file and links it into place: link() never
 * replaces an existing key, and nobody can read a half-written one. *lost is set when another
 * process created the key first (the caller then reads theirs). */
static int create_key(tp_state *s, const char *keypath, bool *lost)
{
	uint8_t key[KEY_LEN];
	char *tmp = tp_sprintf("%s.tmp-XXXXXX", keypath);
	int fd = -1, rc;
	size_t n = 0;

	*lost = false;
	rc = tp_random_bytes(key, sizeof(key));
	if (rc < 0)
		goto done;
	fd = mkostemp(tmp, O_CLOEXEC); /* O_CREAT | O_EXCL, mode 0600 */
	if (fd < 0) {
		rc = tp_error_set(TP_EIO, "secret key file %s: cannot create %s: %s", keypath, tmp,
				  strerror(errno));
		free(tmp);
		tmp = NULL;
		goto done;
	}
	if (fchmod(fd, 0600) != 0) {
		rc = tp_error_set(TP_EIO, "secret key file %s: cannot set mode 0600: %s", keypath,
				  strerror(errno));
		goto done;
	}
	while (n < sizeof(key)) {
		ssize_t w = write(fd, key + n, sizeof(key) - n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			rc = tp_error_set(TP_EIO, "secret key file %s: cannot write it: %s",
					  keypath, w < 0 ? strerror(errno) : "short write");
			goto done;
		}
		n += (size_t)w;
	}
	if (fsync(fd) != 0) {
		rc =
		    tp_error_set(TP_EIO, "secret key file %s: fsync: %s", keypath, strerror(errno));
		goto done;
	}
	if (link(tmp, keypath) != 0) {
		if (errno == EEXIST)
			*lost = true;
		else
			rc = tp_error_set(TP_EIO, "secret key file %s: cannot create it: %s",
					  keypath, strerror(errno));
		goto done;
	}
	memcpy(s->key, key, sizeof(key));
	s->key_loaded = true;
done:
	if (fd >= 0)
		close(fd);
	if (tmp) {
		unlink(tmp);
		free(tmp);
	}
	explicit_bzero(key, sizeof(key));
	return rc;
}

int tp_state_secret_key(tp_state *s, uint8_t out[32])
{
	char *keypath = tp_sprintf("%s.key", s->path);
	bool missing = false, lost = false;
	int rc = 0;

	if (s->key_loaded)
		goto done;
	rc = read_key(s->key, keypath, &missing);
	if (rc < 0)
		goto done;
	if (!missing) {
		s->key_loaded = true;
		goto done;
	}
	if (s->mode == TP_STATE_READONLY) {
		rc = tp_error_set(
		    TP_ENOTFOUND,
		    "secret key file %s does not exist; a read-write command creates it", keypath);
		goto done;
	}
	rc = create_key(s, keypath, &lost);
	if (rc < 0 || !lost)
		goto done;
	rc = read_key(s->key, keypath, &missing);
	if (rc == 0 && missing)
		rc = tp_error_set(TP_EIO, "secret key file %s vanished while it was being created",
				  keypath);
	if (rc == 0)
		s->key_loaded = true;
done:
	if (rc == 0)
		memcpy(out, s->key, KEY_LEN);
	else
		explicit_bzero(s->key, sizeof(s->key));
	free(keypath);
	return rc;
}
