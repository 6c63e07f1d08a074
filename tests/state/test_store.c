/* state/store.c: creating and reopening the database, read-only opens, nestable transactions
 * and the installation key file. */
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "state/internal.h" /* the connection, to read its safety level */
#include "state_test.h"

static mode_t file_mode(const char *path)
{
	struct stat st;
	cr_assert_eq(stat(path, &st), 0, "stat %s", path);
	return st.st_mode & 07777;
}

static tp_state_resource sample(const char *kind, const char *name)
{
	tp_state_resource r;
	memset(&r, 0, sizeof(r));
	r.address = tp_sprintf("%s/%s", kind, name);
	r.kind = tp_strdup(kind);
	r.name = tp_strdup(name);
	r.status = tp_strdup("ready");
	return r;
}

static void put_sample(tp_state *s, const char *kind, const char *name)
{
	tp_state_resource r = sample(kind, name);
	cr_assert_eq(tp_state_resource_put(s, &r), 0, "%s", tp_error_last());
	tp_state_resource_clear(&r);
}

static size_t count_resources(tp_state *s)
{
	tp_state_resources l = {0};
	size_t n;
	cr_assert_eq(tp_state_resources_list(&l, s), 0, "%s", tp_error_last());
	n = l.len;
	tp_state_resources_free(&l);
	return n;
}

Test(store, create_is_0600_wal_and_versioned)
{
	char *dir = NULL, *path = st_db_path(&dir);
	char *wal = tp_sprintf("%s-wal", path), *shm = tp_sprintf("%s-shm", path);
	tp_state *s;

	umask(0); /* the mode must not depend on the caller's umask */
	s = st_open_rw(path);
	cr_assert_str_eq(tp_state_path(s), path);
	cr_assert_eq(file_mode(path), 0600);
	put_sample(s, "local.file", "a");
	/* WAL side files exist while open and are as private as the database */
	cr_assert_eq(file_mode(wal), 0600);
	cr_assert_eq(file_mode(shm), 0600);
	cr_assert_eq(st_sql_int(path, "PRAGMA user_version"), TP_STATE_SCHEMA_VERSION);
	cr_assert_eq(st_sql_int(path, "PRAGMA application_id"), 0x54505354);
	cr_assert_eq(st_sql_int(path, "SELECT count(*) FROM meta WHERE key = 'application' AND "
				      "value = 'tapestry'"),
		     1);
	cr_assert_eq(st_sql_int(path, "SELECT count(*) FROM meta WHERE key = 'created_ms'"), 1);
	tp_state_close(s);
	{
		/* the journal mode is persistent: bytes 18 and 19 of the header are 2 for WAL */
		size_t len = 0;
		char *bytes = st_read_all(path, &len);
		cr_assert(len >= 100);
		cr_assert_eq(bytes[18], 2);
		cr_assert_eq(bytes[19], 2);
		free(bytes);
	}
	cr_assert_eq(file_mode(path), 0600);
	free(wal);
	free(shm);
	free(path);
	ts_rmtree(dir);
	free(dir);
}

Test(store, foreign_keys_are_enforced)
{
	char *dir = NULL, *path = st_db_path(&dir);
	tp_state *s = st_open_rw(path);
	int64_t id = 0;
	cr_assert_eq(tp_state_journal_begin(&id, s, 4242, "local.file/a", "create", "tok", NULL),
		     TP_ENOTFOUND);
	st_assert_msg("no run 4242");
	cr_assert_eq(tp_state_event_add(s, 77, NULL, "info", "x", "y"), TP_ENOTFOUND);
	tp_state_close(s);
	free(path);
	ts_rmtree(dir);
	free(dir);
}

Test(store, reopen_keeps_data_and_does_not_migrate_again)
{
	char *dir = NULL, *path = st_db_path(&dir);
	tp_state *s = st_open_rw(path);
	tp_state_resource r;
	put_sample(s, "local.file", "kept");
	cr_assert_eq(tp_state_revision_record(s, "c1", "t1", "applied", NULL), 0);
	tp_state_close(s);

	s = st_open_rw(path);
	cr_assert_eq(tp_state_resource_get(&r, s, "local.file/kept"), 0, "%s", tp_error_last());
	cr_assert_str_eq(r.name, "kept");
	tp_state_resource_clear(&r);
	cr_assert_eq(st_sql_int(path, "SELECT count(*) FROM meta WHERE key = 'application'"), 1);
	tp_state_close(s);
	free(path);
	ts_rmtree(dir);
	free(dir);
}

Test(store, empty_existing_file_is_initialised)
{
	char *dir = NULL, *path = st_db_path(&dir);
	tp_state *s;
	ts_write(dir, "state.db", "");
	s = st_open_rw(path);
	put_sample(s, "local.file", "a");
	tp_state_close(s);
	cr_assert_eq(st_sql_int(path, "PRAGMA user_version"), TP_STATE_SCHEMA_VERSION);
	free(path);
	ts_rmtree(dir);
	free(dir);
}

Test(store, readonly_reads_and_never_writes)
{
	char *dir = NULL, *path = st_db_path(&dir);
	tp_state *s = NULL, *rw;
	tp_state_resources l = {0};
	size_t before_len = 0;
	char *before;

	cr_assert_eq(tp_state_open(&s, path, TP_STATE_READONLY), TP_ENOTFOUND);
	cr_assert_null(s);
	st_assert_msg("does not exist");
	cr_assert_eq(access(path, F_OK), -1, "a read-only open must not create the file");

	rw = st_open_rw(path);
	put_sample(rw, "local.file", "a");
	tp_state_close(rw);
	before = st_read_all(path, &before_len);

	cr_assert_eq(tp_state_open(&s, path, TP_STATE_READONLY), 0, "%s", tp_error_last());
	cr_assert_eq(tp_state_resources_list(&l, s), 0, "%s", tp_error_last());
	cr_assert_eq(l.len, 1);
	tp_state_resources_free(&l);
	cr_assert_lt(tp_state_event_add(s, 0, NULL, "info", "x", "y"), 0);
	cr_assert_eq(tp_state_begin(s), 0, "%s", tp_error_last());
	cr_assert_eq(tp_state_commit(s), 0, "%s", tp_error_last());
	tp_state_close(s);
	st_assert_same_bytes(path, before, before_len);
	free(before);
	free(path);
	ts_rmtree(dir);
	free(dir);
}

Test(store, readonly_on_an_empty_file_is_not_found)
{
	char *dir = NULL, *path = st_db_path(&dir);
	tp_state *s = NULL;
	ts_write(dir, "state.db", "");
	cr_assert_eq(tp_state_open(&s, path, TP_STATE_READONLY), TP_ENOTFOUND);
	st_assert_msg("empty");
	cr_assert_null(s);
	free(path);
	ts_rmtree(dir);
	free(dir);
}

Test(store, transactions_nest_and_commit_once)
{
	char *dir = NULL, *path = st_db_path(&dir);
	tp_state *s = st_open_rw(path);

	cr_assert_eq(tp_state_begin(s), 0);
	put_sample(s, "local.file", "a");
	cr_assert_eq(tp_state_begin(s), 0);
	put_sample(s, "local.file", "b");
	cr_assert_eq(tp_state_commit(s), 0);
	/* the inner commit did not reach SQLite: another connection sees nothing yet */
	cr_assert_eq(st_sql_int(path, "SELECT count(*) FROM resources"), 0);
	cr_assert_eq(tp_state_commit(s), 0, "%s", tp_error_last());
	cr_assert_eq(st_sql_int(path, "SELECT count(*) FROM resources"), 2);

	cr_assert_eq(tp_state_commit(s), TP_EINVALID);
	st_assert_msg("without a matching begin");
	tp_state_close(s);
	free(path);
	ts_rmtree(dir);
	free(dir);
}

/* The safety level of the connection: 2 FULL, 1 NORMAL. */
static int synchronous_of(tp_state *s)
{
	sqlite3_stmt *st = NULL;
	int v = -1;
	cr_assert_eq(sqlite3_prepare_v2(s->db, "PRAGMA synchronous", -1, &st, NULL),
		     SQLITE_OK);
	if (sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	return v;
}

/* A lazy transaction commits like any other (visible to other connections) with NORMAL for
 * itself alone: FULL again after its commit or rollback, and nested in an ordinary one it
 * changes nothing. */
Test(store, lazy_transactions_relax_only_themselves)
{
	char *dir = NULL, *path = st_db_path(&dir);
	tp_state *s = st_open_rw(path);

	cr_assert_eq(synchronous_of(s), 2);
	cr_assert_eq(tp_state_begin_lazy(s), 0);
	cr_assert_eq(synchronous_of(s), 1);
	put_sample(s, "local.file", "a");
	cr_assert_eq(tp_state_commit(s), 0, "%s", tp_error_last());
	cr_assert_eq(st_sql_int(path, "SELECT count(*) FROM resources"), 1);
	cr_assert_eq(synchronous_of(s), 2);

	cr_assert_eq(tp_state_begin_lazy(s), 0);
	put_sample(s, "local.file", "b");
	tp_state_rollback(s);
	cr_assert_eq(synchronous_of(s), 2);
	cr_assert_eq(st_sql_int(path, "SELECT count(*) FROM resources"), 1);

	cr_assert_eq(tp_state_begin(s), 0);
	cr_assert_eq(tp_state_begin_lazy(s), 0);
	cr_assert_eq(synchronous_of(s), 2, "nested in an ordinary transaction: still FULL");
	put_sample(s, "local.file", "c");
	cr_assert_eq(tp_state_commit(s), 0);
	cr_assert_eq(tp_state_commit(s), 0);
	cr_assert_eq(st_sql_int(path, "SELECT count(*) FROM resources"), 2);
	tp_state_close(s);
	free(path);
	ts_rmtree(dir);
	free(dir);
}

Test(store, outer_rollback_discards_everything)
{
	char *dir = NULL, *path = st_db_path(&dir);
	tp_state *s = st_open_rw(path);
	cr_assert_eq(tp_state_begin(s), 0);
	put_sample(s, "local.file", "a");
	cr_assert_eq(tp_state_begin(s), 0);
	put_sample(s, "local.file", "b");
	cr_assert_eq(tp_state_commit(s), 0);
	tp_state_rollback(s);
	cr_assert_eq(count_resources(s), 0);
	tp_state_rollback(s); /* unbalanced rollback is harmless */
	put_sample(s, "local.file", "c");
	cr_assert_eq(count_resources(s), 1);
	tp_state_close(s);
	free(path);
	ts_rmtree(dir);
	free(dir);
}

Test(store, inner_rollback_dooms_the_outer_commit)
{
	char *dir = NULL, *path = st_db_path(&dir);
	tp_state *s = st_open_rw(path);
	cr_assert_eq(tp_state_begin(s), 0);
	put_sample(s, "local.file", "a");
	cr_assert_eq(tp_state_begin(s), 0);
	put_sample(s, "local.file", "b");
	tp_state_rollback(s);
	cr_assert_eq(tp_state_commit(s), TP_ERROR);
	st_assert_msg("rolled back");
	cr_assert_eq(count_resources(s), 0);
	/* the handle is usable again afterwards */
	cr_assert_eq(tp_state_begin(s), 0);
	put_sample(s, "local.file", "c");
	cr_assert_eq(tp_state_commit(s), 0, "%s", tp_error_last());
	cr_assert_eq(count_resources(s), 1);
	tp_state_close(s);
	free(path);
	ts_rmtree(dir);
	free(dir);
}

Test(store, close_rolls_back_an_open_transaction)
{
	char *dir = NULL, *path = st_db_path(&dir);
	tp_state *s = st_open_rw(path);
	cr_assert_eq(tp_state_begin(s), 0);
	put_sample(s, "local.file", "a");
	tp_state_close(s);
	s = st_open_rw(path);
	cr_assert_eq(count_resources(s), 0);
	tp_state_close(s);
	free(path);
	ts_rmtree(dir);
	free(dir);
}

Test(store, secret_key_is_private_and_stable)
{
	char *dir = NULL, *path = st_db_path(&dir);
	char *keypath = tp_sprintf("%s.key", path);
	uint8_t k1[32], k2[32], k3[32], zero[32] = {0};
	tp_state *s = NULL;
	size_t len = 0;
	char *bytes;

	umask(0);
	s = st_open_rw(path);
	cr_assert_eq(tp_state_secret_key(s, k1), 0, "%s", tp_error_last());
	cr_assert_eq(file_mode(keypath), 0600);
	cr_assert(memcmp(k1, zero, 32) != 0);
	cr_assert_eq(tp_state_secret_key(s, k2), 0);
	cr_assert(memcmp(k1, k2, 32) == 0);
	tp_state_close(s);

	bytes = st_read_all(keypath, &len);
	cr_assert_eq(len, 32);
	cr_assert(memcmp(bytes, k1, 32) == 0);
	free(bytes);

	cr_assert_eq(tp_state_open(&s, path, TP_STATE_READONLY), 0, "%s", tp_error_last());
	cr_assert_eq(tp_state_secret_key(s, k3), 0, "%s", tp_error_last());
	cr_assert(memcmp(k1, k3, 32) == 0);
	tp_state_close(s);

	/* no temporary files left next to the key */
	{
		char *snap = ts_snapshot(dir);
		cr_assert(strstr(snap, ".tmp-") == NULL, "%s", snap);
		free(snap);
	}
	free(keypath);
	free(path);
	ts_rmtree(dir);
	free(dir);
}

Test(store, secret_key_missing_readonly_or_damaged)
{
	char *dir = NULL, *path = st_db_path(&dir);
	char *keypath = tp_sprintf("%s.key", path);
	uint8_t k[32];
	tp_state *s = st_open_rw(path);
	tp_state_close(s);

	cr_assert_eq(tp_state_open(&s, path, TP_STATE_READONLY), 0, "%s", tp_error_last());
	cr_assert_eq(tp_state_secret_key(s, k), TP_ENOTFOUND);
	st_assert_msg(keypath);
	tp_state_close(s);
	cr_assert_eq(access(keypath, F_OK), -1);

	ts_write(dir, "state.db.key", "too short");
	s = st_open_rw(path);
	cr_assert_eq(tp_state_secret_key(s, k), TP_EINVALID);
	st_assert_msg("9 bytes, expected 32");
	tp_state_close(s);
	{
		char *text = ts_read(keypath);
		cr_assert_str_eq(text, "too short", "a damaged key must never be replaced");
		free(text);
	}
	free(keypath);
	free(path);
	ts_rmtree(dir);
	free(dir);
}
