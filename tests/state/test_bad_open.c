/*
 * Bad input for tp_state_open: files that are not Tapestry's, a schema from the future, a
 * missing directory, a database locked by another process. Each is refused with a clear code
 * and message, and the file (and its directory) is left exactly as it was.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "state/internal.h" /* tp_state_open_timeout: a short busy timeout for one test */
#include "state_test.h"

typedef struct {
	char *dir;
	char *path;
	char *bytes;
	size_t len;
	char *listing;
} before;

static void remember(before *b)
{
	b->bytes = st_read_all(b->path, &b->len);
	cr_assert_not_null(b->bytes);
	b->listing = ts_snapshot(b->dir);
}

/* The entries of the listing, without its first line (the directory itself, whose mtime
 * moves when SQLite creates and removes the -wal/-shm files of a WAL database while reading). */
static const char *entries(const char *listing)
{
	const char *nl = strchr(listing, '\n');
	return nl ? nl + 1 : "";
}

/* Same bytes, same mode and mtime, and no new files (no -wal, -shm, -journal or key left). */
static void assert_untouched(before *b)
{
	char *listing = ts_snapshot(b->dir);
	st_assert_same_bytes(b->path, b->bytes, b->len);
	cr_assert_str_eq(entries(listing), entries(b->listing),
			 "the directory changed:\n%s\nwas:\n%s", listing, b->listing);
	free(listing);
}

static void done(before *b)
{
	free(b->bytes);
	free(b->listing);
	free(b->path);
	ts_rmtree(b->dir);
	free(b->dir);
}

static void expect_refused(before *b, tp_state_mode mode, int code, const char *needle)
{
	tp_state *s = (tp_state *)1;
	int rc = tp_state_open(&s, b->path, mode);
	cr_assert_eq(rc, code, "open returned %d (%s), expected %d", rc, tp_error_last(), code);
	cr_assert_null(s);
	st_assert_msg(needle);
	st_assert_msg(b->path);
	assert_untouched(b);
}

static void sql_file(const char *path, const char *sql)
{
	sqlite3 *db = NULL;
	char *err = NULL;
	cr_assert_eq(sqlite3_open(path, &db), SQLITE_OK);
	cr_assert_eq(sqlite3_exec(db, sql, NULL, NULL, &err), SQLITE_OK, "%s", err);
	sqlite3_close(db);
}

Test(bad_open, random_bytes)
{
	before b;
	unsigned char junk[8192];
	b.path = st_db_path(&b.dir);
	cr_assert_eq(tp_random_bytes(junk, sizeof(junk)), 0);
	ts_write_bytes(b.dir, "state.db", junk, sizeof(junk));
	remember(&b);
	expect_refused(&b, TP_STATE_READWRITE, TP_EINVALID, "is not an SQLite database");
	expect_refused(&b, TP_STATE_READONLY, TP_EINVALID, "is not an SQLite database");
	done(&b);
}

Test(bad_open, text_file)
{
	before b;
	b.path = st_db_path(&b.dir);
	ts_write(b.dir, "state.db", "pipeline: rainshield\nsettings: {}\n");
	remember(&b);
	expect_refused(&b, TP_STATE_READWRITE, TP_EINVALID, "is not an SQLite database");
	done(&b);
}

Test(bad_open, foreign_sqlite_database)
{
	before b;
	b.path = st_db_path(&b.dir);
	sql_file(b.path, "CREATE TABLE customers (id INTEGER PRIMARY KEY, email TEXT);"
			 "INSERT INTO customers (email) VALUES ('a@example.com');");
	remember(&b);
	expect_refused(&b, TP_STATE_READWRITE, TP_EINVALID, "Tapestry did not create");
	expect_refused(&b, TP_STATE_READONLY, TP_EINVALID, "Tapestry did not create");
	done(&b);
}

Test(bad_open, foreign_database_with_a_meta_table)
{
	before b;
	b.path = st_db_path(&b.dir);
	/* a meta table of another shape, and one of our shape naming another application */
	sql_file(b.path, "CREATE TABLE meta (name TEXT, data BLOB);");
	remember(&b);
	expect_refused(&b, TP_STATE_READWRITE, TP_EINVALID, "Tapestry did not create");
	done(&b);

	b.path = st_db_path(&b.dir);
	sql_file(b.path, "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT);"
			 "INSERT INTO meta VALUES ('application', 'grouparoo');");
	remember(&b);
	expect_refused(&b, TP_STATE_READWRITE, TP_EINVALID, "Tapestry did not create");
	done(&b);
}

Test(bad_open, foreign_wal_database)
{
	/* in WAL mode already, so that even the journal mode is not ours to set */
	before b;
	b.path = st_db_path(&b.dir);
	sql_file(b.path,
		 "PRAGMA journal_mode = WAL; CREATE TABLE t (x); INSERT INTO t VALUES (1);");
	remember(&b);
	expect_refused(&b, TP_STATE_READWRITE, TP_EINVALID, "Tapestry did not create");
	done(&b);
}

Test(bad_open, foreign_wal_with_uncheckpointed_frames)
{
	/* another application's WAL still holds committed frames: closing after the refusal
	 * must not checkpoint them into its database */
	char *dir = NULL, *path = st_db_path(&dir);
	char *wal = tp_sprintf("%s-wal", path);
	char *db_bytes, *wal_bytes;
	size_t db_len = 0, wal_len = 0;
	sqlite3 *db = NULL;
	tp_state *s = NULL;

	cr_assert_eq(sqlite3_open(path, &db), SQLITE_OK);
	cr_assert_eq(sqlite3_db_config(db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, (int *)NULL),
		     SQLITE_OK);
	cr_assert_eq(sqlite3_exec(db,
				  "PRAGMA journal_mode = WAL; PRAGMA wal_autocheckpoint = 0;"
				  "CREATE TABLE t (x); INSERT INTO t VALUES (randomblob(5000));",
				  NULL, NULL, NULL),
		     SQLITE_OK);
	sqlite3_close(db);
	db_bytes = st_read_all(path, &db_len);
	wal_bytes = st_read_all(wal, &wal_len);
	cr_assert_not_null(wal_bytes);
	cr_assert(wal_len > 0, "the test needs frames left in the WAL");

	cr_assert_eq(tp_state_open(&s, path, TP_STATE_READWRITE), TP_EINVALID);
	st_assert_msg("Tapestry did not create");
	cr_assert_null(s);
	st_assert_same_bytes(path, db_bytes, db_len);
	st_assert_same_bytes(wal, wal_bytes, wal_len);
	free(db_bytes);
	free(wal_bytes);
	free(wal);
	free(path);
	ts_rmtree(dir);
	free(dir);
}

Test(bad_open, empty_database_with_a_user_version)
{
	before b;
	b.path = st_db_path(&b.dir);
	sql_file(b.path, "PRAGMA user_version = 7; CREATE TABLE t (x); DROP TABLE t;");
	remember(&b);
	expect_refused(&b, TP_STATE_READWRITE, TP_EINVALID, "Tapestry did not create");
	done(&b);
}

Test(bad_open, schema_from_a_newer_tapestry)
{
	before b;
	b.path = st_db_path(&b.dir);
	sql_file(b.path, "CREATE TABLE meta (key TEXT PRIMARY KEY NOT NULL, value TEXT NOT NULL);"
			 "INSERT INTO meta VALUES ('application', 'tapestry');"
			 "CREATE TABLE resources_v99 (address TEXT PRIMARY KEY);"
			 "PRAGMA user_version = 99;");
	remember(&b);
	{
		char *rw = tp_sprintf("was written by a newer Tapestry (schema 99, this binary knows "
				      "%d); upgrade tapestry", TP_STATE_SCHEMA_VERSION);
		char *ro = tp_sprintf("schema 99, this binary knows %d", TP_STATE_SCHEMA_VERSION);
		expect_refused(&b, TP_STATE_READWRITE, TP_EINVALID, rw);
		expect_refused(&b, TP_STATE_READONLY, TP_EINVALID, ro);
		free(rw);
		free(ro);
	}
	done(&b);
}

Test(bad_open, a_tapestry_mark_without_a_schema_version)
{
	before b;
	b.path = st_db_path(&b.dir);
	sql_file(b.path, "CREATE TABLE meta (key TEXT PRIMARY KEY NOT NULL, value TEXT NOT NULL);"
			 "INSERT INTO meta VALUES ('application', 'tapestry');");
	remember(&b);
	expect_refused(&b, TP_STATE_READWRITE, TP_EINVALID, "no schema version");
	expect_refused(&b, TP_STATE_READONLY, TP_EINVALID, "no schema version");
	done(&b);
}

Test(bad_open, a_real_database_upgraded_by_a_newer_tapestry)
{
	/* our own file, then bumped as a future migration would: still refused untouched */
	before b;
	tp_state *s;
	b.path = st_db_path(&b.dir);
	s = st_open_rw(b.path);
	tp_state_close(s);
	{
		char *bump = tp_sprintf("PRAGMA user_version = %d;", TP_STATE_SCHEMA_VERSION + 1);
		char *want = tp_sprintf("schema %d, this binary knows %d",
					TP_STATE_SCHEMA_VERSION + 1, TP_STATE_SCHEMA_VERSION);
		sql_file(b.path, bump);
		remember(&b);
		expect_refused(&b, TP_STATE_READWRITE, TP_EINVALID, want);
		free(bump);
		free(want);
	}
	done(&b);
}

Test(bad_open, missing_directory)
{
	char *dir = ts_tmpdir();
	char *missing = tp_sprintf("%s/no/such/dir", dir);
	char *path = tp_sprintf("%s/state.db", missing);
	char *listing = ts_snapshot(dir);
	char *after;
	tp_state *s = NULL;

	cr_assert_eq(tp_state_open(&s, path, TP_STATE_READWRITE), TP_ENOTFOUND);
	cr_assert_null(s);
	st_assert_msg(missing);
	st_assert_msg("does not exist");
	cr_assert_eq(tp_state_open(&s, path, TP_STATE_READONLY), TP_ENOTFOUND);
	cr_assert_null(s);
	after = ts_snapshot(dir);
	cr_assert_str_eq(after, listing, "nothing may be created");
	free(after);
	free(listing);
	free(path);
	free(missing);
	ts_rmtree(dir);
	free(dir);
}

Test(bad_open, a_directory_instead_of_a_file)
{
	char *dir = ts_tmpdir();
	char *path = tp_sprintf("%s/state.db", dir);
	tp_state *s = NULL;
	cr_assert_eq(mkdir(path, 0700), 0);
	cr_assert_eq(tp_state_open(&s, path, TP_STATE_READWRITE), TP_EINVALID);
	st_assert_msg("is not a regular file");
	cr_assert_null(s);
	free(path);
	ts_rmtree(dir);
	free(dir);
}

Test(bad_open, empty_path)
{
	tp_state *s = NULL;
	cr_assert_eq(tp_state_open(&s, "", TP_STATE_READWRITE), TP_EINVALID);
	cr_assert_null(s);
}

/* ---------------------------------------------------------------- another process */

typedef struct {
	pid_t pid;
	int release_fd; /* closing it lets the child go */
} holder;

/* Forks a child that opens path with plain SQLite and holds BEGIN EXCLUSIVE until released
 * (at most 60 s); returns once the lock is held. */
static holder hold_exclusive(const char *path)
{
	int ready[2], release[2];
	holder h;
	char c = 0;

	cr_assert_eq(pipe(ready), 0);
	cr_assert_eq(pipe(release), 0);
	h.pid = fork();
	cr_assert(h.pid >= 0, "fork: %s", strerror(errno));
	if (h.pid == 0) {
		sqlite3 *db = NULL;
		struct pollfd p;
		char ok = 'x';
		close(ready[0]);
		close(release[1]);
		if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK ||
		    sqlite3_exec(db, "BEGIN EXCLUSIVE", NULL, NULL, NULL) != SQLITE_OK)
			ok = 'e';
		if (write(ready[1], &ok, 1) != 1)
			_exit(2);
		p.fd = release[0];
		p.events = POLLIN;
		poll(&p, 1, 60000);
		sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
		sqlite3_close(db);
		_exit(ok == 'x' ? 0 : 1);
	}
	close(ready[1]);
	close(release[0]);
	cr_assert_eq(read(ready[0], &c, 1), 1);
	cr_assert_eq(c, 'x', "the child could not lock %s", path);
	close(ready[0]);
	h.release_fd = release[1];
	return h;
}

static void let_go(holder *h)
{
	int status = 0;
	close(h->release_fd);
	cr_assert_eq(waitpid(h->pid, &status, 0), h->pid);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child status %d", status);
}

Test(bad_open, locked_by_another_process, .timeout = 60)
{
	before b;
	tp_state *s = NULL;
	holder h;
	int64_t t0, waited;
	int rc;

	b.path = st_db_path(&b.dir);
	s = st_open_rw(b.path);
	tp_state_close(s);
	s = NULL;
	remember(&b);

	h = hold_exclusive(b.path);
	t0 = tp_clock_mono_ms();
	rc = tp_state_open(&s, b.path, TP_STATE_READWRITE); /* the real 5 s timeout */
	waited = tp_clock_mono_ms() - t0;
	cr_assert_eq(rc, TP_ECONFLICT, "open returned %d: %s", rc, tp_error_last());
	cr_assert_null(s);
	st_assert_msg("is locked by another process");
	st_assert_msg(b.path);
	cr_assert(waited >= TP_STATE_BUSY_TIMEOUT_MS - 100, "gave up after %lld ms",
		  (long long)waited);
	let_go(&h);
	assert_untouched(&b);

	/* and once the other process is gone the same file opens */
	s = st_open_rw(b.path);
	tp_state_close(s);
	done(&b);
}

Test(bad_open, locked_while_open_writes_conflict, .timeout = 60)
{
	/* a handle opened before the other process locked: its writes wait, then conflict */
	before b;
	tp_state *s = NULL;
	tp_state_resource r;
	holder h;

	b.path = st_db_path(&b.dir);
	cr_assert_eq(tp_state_open_timeout(&s, b.path, TP_STATE_READWRITE, 200), 0, "%s",
		     tp_error_last());
	h = hold_exclusive(b.path);
	cr_assert_eq(tp_state_begin(s), TP_ECONFLICT);
	st_assert_msg("is locked by another process (waited 200 ms");
	cr_assert_eq(tp_state_event_add(s, 0, NULL, "info", "t", "m"), TP_ECONFLICT);
	memset(&r, 0, sizeof(r));
	cr_assert_eq(tp_state_resource_get(&r, s, "local.file/a"), TP_ENOTFOUND,
		     "readers are not blocked in WAL mode: %s", tp_error_last());
	let_go(&h);
	cr_assert_eq(tp_state_event_add(s, 0, NULL, "info", "t", "m"), 0, "%s", tp_error_last());
	tp_state_close(s);
	b.bytes = NULL;
	b.listing = NULL;
	done(&b);
}
