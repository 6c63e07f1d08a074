/* state/history.c, tp_state_prune: the history is kept within limits (newest runs with their
 * journal and events, newest events younger than an age, newest revisions) while nothing that
 * recovery or the status needs goes — pending journal rows and their run, the run of the
 * applied revision, a run in progress, the last applied revision, resources, cache, lock. */
#include "state_test.h"

static tp_state_retention keep_all(void)
{
	tp_state_retention k = {.runs = TP_STATE_KEEP_MAX,
				.revisions = TP_STATE_KEEP_MAX,
				.events = TP_STATE_KEEP_MAX,
				.event_age_ms = 0};
	return k;
}

/* A finished run of revision rev with one completed journal row and one event. */
static int64_t finished_run(fixture *f, const char *rev)
{
	int64_t run = 0, j = 0;
	cr_assert_eq(tp_state_run_begin(&run, f->s, rev, "poll"), 0, "%s", tp_error_last());
	cr_assert_eq(tp_state_journal_begin(&j, f->s, run, "local.file/a", "update", "tok", "h"), 0,
		     "%s", tp_error_last());
	cr_assert_eq(tp_state_journal_complete(f->s, j, "done", NULL), 0);
	cr_assert_eq(tp_state_event_add(f->s, run, "local.file/a", "info", "updated", "ok"), 0);
	cr_assert_eq(tp_state_run_end(f->s, run, "succeeded", NULL), 0);
	f->clk.now += 1000;
	return run;
}

static int64_t count(fixture *f, const char *sql)
{
	return st_sql_int(f->path, sql);
}

/* ---------------------------------------------------------------- runs */

Test(retention, keeps_the_newest_runs_with_their_journal_and_events)
{
	fixture f;
	tp_state_retention k = keep_all();
	tp_state_pruned n;
	int64_t runs[10];
	json_t *list = NULL, *got = NULL;
	fx_open(&f);
	for (int i = 0; i < 10; i++)
		runs[i] = finished_run(&f, "aaa");

	k.runs = 3;
	cr_assert_eq(tp_state_prune(&n, f.s, &k), 0, "%s", tp_error_last());
	cr_assert_eq(n.runs, 7);
	cr_assert_eq(n.journal, 7);
	cr_assert_eq(n.events, 7);
	cr_assert_eq(n.revisions, 0);
	cr_assert_eq(tp_state_runs_list(&list, f.s, 100), 0);
	cr_assert_eq(json_array_size(list), 3);
	for (int i = 0; i < 3; i++)
		cr_assert_eq(
		    json_integer_value(json_object_get(json_array_get(list, (size_t)i), "id")),
		    runs[9 - i], "the newest three stay, newest first");
	json_decref(list);
	/* what is left of a kept run is whole; a pruned one is gone as a whole */
	cr_assert_eq(tp_state_run_get(&got, f.s, runs[7]), 0);
	cr_assert_eq(json_array_size(json_object_get(got, "journal")), 1);
	json_decref(got);
	cr_assert_eq(tp_state_run_get(&got, f.s, runs[6]), TP_ENOTFOUND);
	cr_assert_eq(count(&f, "SELECT count(*) FROM journal"), 3);
	cr_assert_eq(count(&f, "SELECT count(*) FROM events"), 3);
	cr_assert_eq(count(&f, "SELECT min(run_id) FROM events"), runs[7]);

	/* again: nothing more to do */
	cr_assert_eq(tp_state_prune(&n, f.s, &k), 0);
	cr_assert_eq(n.runs + n.journal + n.events + n.revisions, 0);
	fx_close(&f);
}

Test(retention, keeps_pending_journal_rows_and_their_run)
{
	fixture f;
	tp_state_retention k = keep_all();
	tp_journal_entry *pending = NULL;
	size_t npending = 0;
	int64_t crashed = 0, j = 0, done_j = 0, last = 0;
	fx_open(&f);
	/* a run killed between its journal row and the provider's answer */
	cr_assert_eq(tp_state_run_begin(&crashed, f.s, "aaa", "poll"), 0);
	cr_assert_eq(
	    tp_state_journal_begin(&done_j, f.s, crashed, "local.file/a", "create", "t0", "h"), 0);
	cr_assert_eq(tp_state_journal_complete(f.s, done_j, "done", NULL), 0);
	cr_assert_eq(tp_state_journal_begin(&j, f.s, crashed, "local.file/b", "create", "t1", "h"),
		     0);
	for (int i = 0; i < 5; i++)
		last = finished_run(&f, "bbb");

	k.runs = 1;
	cr_assert_eq(tp_state_prune(NULL, f.s, &k), 0, "%s", tp_error_last());
	cr_assert_eq(tp_state_journal_pending(&pending, &npending, f.s), 0);
	cr_assert_eq(npending, 1, "recovery still finds the pending row");
	cr_assert_eq(pending[0].id, j);
	cr_assert_eq(pending[0].run_id, crashed);
	tp_journal_entry_clear(&pending[0]);
	free(pending);
	cr_assert_eq(count(&f, "SELECT count(*) FROM runs"), 2);
	cr_assert_eq(count(&f, "SELECT max(id) FROM runs"), last);
	cr_assert_eq(count(&f, "SELECT min(id) FROM runs"), crashed);

	/* once recovery has resolved it, the run is history like the others */
	cr_assert_eq(tp_state_journal_complete(f.s, j, "done", NULL), 0);
	cr_assert_eq(tp_state_prune(NULL, f.s, &k), 0);
	cr_assert_eq(count(&f, "SELECT count(*) FROM runs"), 1);
	cr_assert_eq(count(&f, "SELECT count(*) FROM journal"), 1);
	fx_close(&f);
}

Test(retention, keeps_the_run_that_applied_the_current_revision)
{
	fixture f;
	tp_state_retention k = keep_all();
	int64_t applied_run, newest = 0;
	char *rev = NULL;
	fx_open(&f);
	applied_run = finished_run(&f, "aaa");
	cr_assert_eq(tp_state_revision_record(f.s, "aaa", "t1", "applied", NULL), 0);
	/* later commits that failed: aaa stays the applied revision */
	for (int i = 0; i < 4; i++) {
		char commit[8];
		snprintf(commit, sizeof(commit), "bad%d", i);
		newest = finished_run(&f, commit);
		cr_assert_eq(tp_state_revision_record(f.s, commit, "t2", "failed", "boom"), 0);
	}
	k.runs = 1;
	k.revisions = 1;
	cr_assert_eq(tp_state_prune(NULL, f.s, &k), 0, "%s", tp_error_last());
	cr_assert_eq(count(&f, "SELECT count(*) FROM runs"), 2);
	cr_assert_eq(count(&f, "SELECT min(id) FROM runs"), applied_run);
	cr_assert_eq(count(&f, "SELECT max(id) FROM runs"), newest);
	/* the newest revision and the applied one */
	cr_assert_eq(count(&f, "SELECT count(*) FROM revisions"), 2);
	cr_assert_eq(tp_state_revision_last_applied(&rev, f.s), 0);
	cr_assert_str_eq(rev, "aaa");
	free(rev);
	cr_assert_eq(count(&f, "SELECT count(*) FROM revisions WHERE commit_id = 'bad3'"), 1);
	fx_close(&f);
}

Test(retention, keeps_a_run_in_progress_not_an_interrupted_one)
{
	fixture f;
	tp_state_retention k = keep_all();
	int64_t interrupted = 0, ended, running1 = 0, running2 = 0;
	fx_open(&f);
	/* never ended, and a later run did: it was interrupted */
	cr_assert_eq(tp_state_run_begin(&interrupted, f.s, "aaa", "poll"), 0);
	finished_run(&f, "aaa");
	ended = finished_run(&f, "aaa");
	/* not ended and newer than every ended run: in progress */
	cr_assert_eq(tp_state_run_begin(&running1, f.s, "bbb", "poll"), 0);
	cr_assert_eq(tp_state_run_begin(&running2, f.s, "bbb", "poll"), 0);

	k.runs = 1;
	cr_assert_eq(tp_state_prune(NULL, f.s, &k), 0, "%s", tp_error_last());
	cr_assert_eq(count(&f, "SELECT count(*) FROM runs"), 2);
	cr_assert_eq(count(&f, "SELECT min(id) FROM runs"), running1);
	cr_assert_eq(count(&f, "SELECT max(id) FROM runs"), running2);
	cr_assert_eq(tp_state_run_end(f.s, running1, "succeeded", NULL), 0,
		     "the run in progress can still end");
	cr_assert(ended < running1 && interrupted < ended);
	fx_close(&f);
}

/* ---------------------------------------------------------------- events */

Test(retention, keeps_the_newest_events_younger_than_the_age)
{
	fixture f;
	tp_state_retention k = keep_all();
	tp_state_pruned n;
	json_t *list = NULL;
	fx_open(&f);
	/* one event a day for 20 days, the last one now */
	for (int i = 0; i < 20; i++) {
		char msg[16];
		snprintf(msg, sizeof(msg), "day %d", i);
		cr_assert_eq(tp_state_event_add(f.s, 0, i % 2 ? "local.file/a" : NULL, "warn",
						"drifted", msg),
			     0);
		if (i < 19)
			f.clk.now += 86400000;
	}
	k.events = 12;
	cr_assert_eq(tp_state_prune(&n, f.s, &k), 0, "%s", tp_error_last());
	cr_assert_eq(n.events, 8);
	cr_assert_eq(tp_state_events_list(&list, f.s, NULL, 100), 0);
	cr_assert_eq(json_array_size(list), 12);
	cr_assert_str_eq(tp_json_get_str(json_array_get(list, 0), "message"), "day 19");
	cr_assert_str_eq(tp_json_get_str(json_array_get(list, 11), "message"), "day 8");
	json_decref(list);

	/* the age limit: events older than three days go (day 16 is exactly three days old) */
	k.event_age_ms = 3 * 86400000LL;
	cr_assert_eq(tp_state_prune(&n, f.s, &k), 0);
	cr_assert_eq(n.events, 8);
	cr_assert_eq(tp_state_events_list(&list, f.s, NULL, 100), 0);
	cr_assert_eq(json_array_size(list), 4);
	cr_assert_str_eq(tp_json_get_str(json_array_get(list, 3), "message"), "day 16");
	json_decref(list);
	/* the filtered list reads the same rows */
	cr_assert_eq(tp_state_events_list(&list, f.s, "local.file/a", 100), 0);
	cr_assert_eq(json_array_size(list), 2);
	json_decref(list);
	fx_close(&f);
}

Test(retention, a_kept_run_whose_events_were_pruned_still_reads)
{
	fixture f;
	tp_state_retention k = keep_all();
	json_t *got = NULL, *list = NULL;
	int64_t run;
	fx_open(&f);
	run = finished_run(&f, "aaa");
	for (int i = 0; i < 5; i++)
		cr_assert_eq(tp_state_event_add(f.s, 0, NULL, "error", "invalid-revision", "x"), 0);
	k.events = 2;
	cr_assert_eq(tp_state_prune(NULL, f.s, &k), 0);
	cr_assert_eq(count(&f, "SELECT count(*) FROM events WHERE run_id IS NOT NULL"), 0);
	cr_assert_eq(tp_state_run_get(&got, f.s, run), 0, "%s", tp_error_last());
	cr_assert_eq(json_array_size(json_object_get(got, "journal")), 1);
	json_decref(got);
	cr_assert_eq(tp_state_runs_list(&list, f.s, 10), 0);
	cr_assert_eq(json_array_size(list), 1);
	json_decref(list);
	fx_close(&f);
}

/* ---------------------------------------------------------------- revisions */

Test(retention, keeps_the_newest_revisions_and_the_applied_one)
{
	fixture f;
	tp_state_retention k = keep_all();
	tp_state_pruned n;
	fx_open(&f);
	cr_assert_eq(tp_state_revision_record(f.s, "good", "t", "applied", NULL), 0);
	for (int i = 0; i < 10; i++) {
		char commit[8];
		snprintf(commit, sizeof(commit), "c%d", i);
		cr_assert_eq(tp_state_revision_record(f.s, commit, "t", "invalid", "x.yaml:1:1"),
			     0);
	}
	/* recorded again (the broken head polled once more): it counts as newest */
	cr_assert_eq(tp_state_revision_record(f.s, "c0", "t", "invalid", "x.yaml:1:1"), 0);

	k.revisions = 3;
	cr_assert_eq(tp_state_prune(&n, f.s, &k), 0, "%s", tp_error_last());
	cr_assert_eq(n.revisions, 7);
	cr_assert_eq(count(&f, "SELECT count(*) FROM revisions"), 4);
	cr_assert_eq(count(&f, "SELECT count(*) FROM revisions WHERE commit_id IN ('good', 'c0', "
			       "'c9', 'c8')"),
		     4);
	/* numbering goes on after the newest */
	cr_assert_eq(tp_state_revision_record(f.s, "c10", "t", "skipped", NULL), 0);
	cr_assert_eq(count(&f, "SELECT commit_id = 'c10' FROM revisions ORDER BY seq DESC LIMIT 1"),
		     1);
	fx_close(&f);
}

/* ---------------------------------------------------------------- what is never touched */

Test(retention, never_touches_resources_cache_lock_or_meta)
{
	fixture f;
	tp_state_retention k = {.runs = 1, .revisions = 1, .events = 1, .event_age_ms = 1};
	tp_state_resource r;
	json_t *v = json_pack("{s:i}", "x", 1);
	int64_t meta;
	fx_open(&f);
	memset(&r, 0, sizeof(r));
	r.address = "local.file/a";
	r.kind = "local.file";
	r.name = "a";
	r.status = "ready";
	r.revision = "old";
	cr_assert_eq(tp_state_resource_put(f.s, &r), 0, "%s", tp_error_last());
	cr_assert_eq(tp_state_cache_put(f.s, "catalog/x", v, 1), 0);
	cr_assert_eq(tp_state_lock_acquire(f.s, "me", 1), 0);
	meta = count(&f, "SELECT count(*) FROM meta");
	for (int i = 0; i < 3; i++)
		finished_run(&f, "old");
	f.clk.now += 86400000; /* the cache entry and the lease expire, the events age */

	cr_assert_eq(tp_state_prune(NULL, f.s, &k), 0, "%s", tp_error_last());
	cr_assert_eq(count(&f, "SELECT count(*) FROM resources"), 1);
	cr_assert_eq(count(&f, "SELECT count(*) FROM cache"), 1);
	cr_assert_eq(count(&f, "SELECT count(*) FROM lock"), 1);
	cr_assert_eq(count(&f, "SELECT count(*) FROM meta"), meta);
	cr_assert_eq(count(&f, "SELECT count(*) FROM runs"), 1);
	cr_assert_eq(count(&f, "SELECT count(*) FROM events"), 0);
	json_decref(v);
	fx_close(&f);
}

/* ---------------------------------------------------------------- transactions and limits */

Test(retention, nests_in_the_callers_transaction)
{
	fixture f;
	tp_state_retention k = keep_all();
	fx_open(&f);
	for (int i = 0; i < 4; i++)
		finished_run(&f, "aaa");
	k.runs = 1;
	cr_assert_eq(tp_state_begin(f.s), 0);
	cr_assert_eq(tp_state_prune(NULL, f.s, &k), 0, "%s", tp_error_last());
	tp_state_rollback(f.s);
	cr_assert_eq(count(&f, "SELECT count(*) FROM runs"), 4, "rolled back with the caller's");
	cr_assert_eq(count(&f, "SELECT count(*) FROM journal"), 4);
	fx_close(&f);
}

Test(retention, limits_out_of_range_are_refused)
{
	fixture f;
	tp_state_retention k = keep_all();
	tp_state_pruned n = {.runs = 99};
	fx_open(&f);
	finished_run(&f, "aaa");
	finished_run(&f, "aaa");
	k.runs = 0;
	cr_assert_eq(tp_state_prune(&n, f.s, &k), TP_EINVALID);
	st_assert_msg("keep runs: expected 1 to");
	cr_assert_eq(n.runs, 0);
	k.runs = 1;
	k.events = TP_STATE_KEEP_MAX + 1LL;
	cr_assert_eq(tp_state_prune(&n, f.s, &k), TP_EINVALID);
	st_assert_msg("keep events");
	k.events = 1;
	k.revisions = -5;
	cr_assert_eq(tp_state_prune(&n, f.s, &k), TP_EINVALID);
	k.revisions = 1;
	k.event_age_ms = -1;
	cr_assert_eq(tp_state_prune(&n, f.s, &k), TP_EINVALID);
	st_assert_msg("negative age");
	cr_assert_eq(count(&f, "SELECT count(*) FROM runs"), 2, "a refused prune deletes nothing");
	fx_close(&f);
}

Test(retention, defaults)
{
	tp_state_retention k = TP_STATE_RETENTION_DEFAULT;
	cr_assert_eq(k.runs, 1000);
	cr_assert_eq(k.revisions, 1000);
	cr_assert_eq(k.events, 10000);
	cr_assert_eq(k.event_age_ms, 30LL * 86400000);
}

/* ---------------------------------------------------------------- schema */

Test(retention, a_schema_2_database_gets_the_indexes)
{
	char *dir = NULL, *path = st_db_path(&dir);
	tp_state *s = st_open_rw(path);
	tp_state_retention k = {.runs = 1, .revisions = 1, .events = 1, .event_age_ms = 0};
	sqlite3 *h = NULL;
	tp_state_close(s);
	/* what a database written before schema 3 looks like */
	cr_assert_eq(sqlite3_open(path, &h), SQLITE_OK);
	cr_assert_eq(sqlite3_exec(h,
				  "DROP INDEX events_by_time; DROP INDEX revisions_by_seq; "
				  "DROP INDEX runs_by_revision; PRAGMA user_version = 2;",
				  NULL, NULL, NULL),
		     SQLITE_OK);
	sqlite3_close(h);
	s = st_open_rw(path);
	cr_assert_eq(st_sql_int(path, "PRAGMA user_version"), 3);
	cr_assert_eq(st_sql_int(path, "SELECT count(*) FROM sqlite_master WHERE type = 'index' "
				      "AND name IN ('events_by_time', 'revisions_by_seq', "
				      "'runs_by_revision')"),
		     3);
	cr_assert_eq(tp_state_prune(NULL, s, &k), 0, "%s", tp_error_last());
	tp_state_close(s);
	ts_rmtree(dir);
	free(dir);
	free(path);
}

/* The prune's deletes are ranges over an index, never scans of a table: the plans SQLite
 * picks for the same shapes of statement, on the real schema. */
Test(retention, deletes_use_indexes)
{
	static const char *const sql[] = {
	    "DELETE FROM events WHERE ts_ms < 5",
	    "DELETE FROM events WHERE id <= (SELECT max(id) FROM events) - 5",
	    "DELETE FROM revisions WHERE seq < (SELECT seq FROM revisions ORDER BY seq DESC "
	    "LIMIT 1 OFFSET 4) AND seq IS NOT (SELECT max(seq) FROM revisions WHERE result = "
	    "'applied')",
	    "SELECT max(id) FROM runs WHERE revision = 'x'",
	    "SELECT coalesce(max(seq), 0) + 1 FROM revisions",
	};
	char *dir = NULL, *path = st_db_path(&dir);
	tp_state *s = st_open_rw(path);
	sqlite3 *h = NULL;
	tp_state_close(s);
	cr_assert_eq(sqlite3_open_v2(path, &h, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	for (size_t i = 0; i < sizeof(sql) / sizeof(sql[0]); i++) {
		char *q = tp_sprintf("EXPLAIN QUERY PLAN %s", sql[i]);
		sqlite3_stmt *st = NULL;
		cr_assert_eq(sqlite3_prepare_v2(h, q, -1, &st, NULL), SQLITE_OK, "%s: %s", q,
			     sqlite3_errmsg(h));
		while (sqlite3_step(st) == SQLITE_ROW) {
			const char *detail = (const char *)sqlite3_column_text(st, 3);
			cr_assert(strncmp(detail, "SCAN ", 5) != 0 ||
				      strstr(detail, "USING") != NULL,
				  "%s: %s", sql[i], detail);
		}
		sqlite3_finalize(st);
		free(q);
	}
	sqlite3_close(h);
	ts_rmtree(dir);
	free(dir);
	free(path);
}
