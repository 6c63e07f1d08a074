/* state/history.c: revisions, runs, the write-ahead journal and events — what the status API,
 * `tapestry history`/`events` and crash recovery read back. */
#include "state_test.h"

/* ---------------------------------------------------------------- revisions */

Test(revisions, record_and_last_applied)
{
	fixture f;
	char *c = NULL;
	fx_open(&f);
	cr_assert_eq(tp_state_revision_last_applied(&c, f.s), TP_ENOTFOUND);
	st_assert_msg("no revision has been applied");
	cr_assert_null(c);

	cr_assert_eq(tp_state_revision_record(f.s, "aaa", "t1", "applied", NULL), 0);
	cr_assert_eq(tp_state_revision_record(f.s, "bbb", "t2", "invalid", "resources/x.yaml:3:1"),
		     0);
	cr_assert_eq(tp_state_revision_last_applied(&c, f.s), 0);
	cr_assert_str_eq(c, "aaa", "an invalid commit never becomes the applied one");
	free(c);

	/* same millisecond on purpose: the order of recording decides, not clock ticks */
	cr_assert_eq(tp_state_revision_record(f.s, "ccc", "t3", "applied", NULL), 0);
	cr_assert_eq(tp_state_revision_last_applied(&c, f.s), 0);
	cr_assert_str_eq(c, "ccc");
	free(c);
	/* the branch was reset to an older commit, which is applied again */
	cr_assert_eq(tp_state_revision_record(f.s, "aaa", NULL, "applied", NULL), 0);
	cr_assert_eq(tp_state_revision_last_applied(&c, f.s), 0);
	cr_assert_str_eq(c, "aaa");
	free(c);
	/* idempotent: one row per commit, tree kept when not given, first_seen kept */
	f.clk.now += 60000;
	cr_assert_eq(tp_state_revision_record(f.s, "aaa", NULL, "applied", NULL), 0);
	cr_assert_eq(st_sql_int(f.path, "SELECT count(*) FROM revisions"), 3);
	cr_assert_eq(st_sql_int(f.path, "SELECT count(*) FROM revisions WHERE commit_id = 'aaa' "
					"AND tree = 't1'"),
		     1);
	cr_assert_eq(st_sql_int(f.path, "SELECT first_seen_ms FROM revisions WHERE commit_id = "
					"'aaa'"),
		     1700000000000LL);
	cr_assert_eq(st_sql_int(f.path, "SELECT updated_ms FROM revisions WHERE commit_id = 'aaa'"),
		     1700000060000LL);

	cr_assert_eq(tp_state_revision_record(f.s, "", NULL, "applied", NULL), TP_EINVALID);
	cr_assert_eq(tp_state_revision_record(f.s, "ddd", NULL, NULL, NULL), TP_EINVALID);
	fx_close(&f);
}

/* ---------------------------------------------------------------- runs */

Test(runs, begin_end_and_list_newest_first)
{
	fixture f;
	int64_t r1 = 0, r2 = 0, r3 = 0;
	json_t *list = NULL, *counts = json_pack("{s:i,s:i}", "created", 2, "updated", 1);
	json_t *e;
	fx_open(&f);

	cr_assert_eq(tp_state_run_begin(&r1, f.s, "aaa", "poll"), 0, "%s", tp_error_last());
	f.clk.now += 1500;
	cr_assert_eq(tp_state_run_end(f.s, r1, "succeeded", counts), 0, "%s", tp_error_last());
	cr_assert_eq(tp_state_run_begin(&r2, f.s, NULL, "cli"), 0);
	cr_assert_eq(tp_state_run_end(f.s, r2, "no-op", NULL), 0);
	cr_assert_eq(tp_state_run_begin(&r3, f.s, "bbb", "webhook"), 0);
	cr_assert(r1 > 0 && r2 > r1 && r3 > r2);

	cr_assert_eq(tp_state_runs_list(&list, f.s, 10), 0, "%s", tp_error_last());
	cr_assert_eq(json_array_size(list), 3);
	e = json_array_get(list, 0);
	cr_assert_eq(json_integer_value(json_object_get(e, "id")), r3);
	cr_assert_str_eq(tp_json_get_str(e, "trigger"), "webhook");
	cr_assert_str_eq(tp_json_get_str(e, "revision"), "bbb");
	cr_assert(json_is_null(json_object_get(e, "ended_ms")), "still running");
	cr_assert(json_is_null(json_object_get(e, "result")));
	cr_assert(json_is_null(json_object_get(e, "counts")));
	e = json_array_get(list, 1);
	cr_assert(json_is_null(json_object_get(e, "revision")));
	e = json_array_get(list, 2);
	cr_assert_eq(json_integer_value(json_object_get(e, "id")), r1);
	cr_assert_eq(json_integer_value(json_object_get(e, "started_ms")), 1700000000000LL);
	cr_assert_eq(json_integer_value(json_object_get(e, "ended_ms")), 1700000001500LL);
	cr_assert_str_eq(tp_json_get_str(e, "result"), "succeeded");
	cr_assert(json_equal(json_object_get(e, "counts"), counts));
	cr_assert_eq(json_object_size(e), 7);
	json_decref(list);

	cr_assert_eq(tp_state_runs_list(&list, f.s, 1), 0);
	cr_assert_eq(json_array_size(list), 1);
	json_decref(list);
	cr_assert_eq(tp_state_runs_list(&list, f.s, 0), TP_EINVALID);
	cr_assert_null(list);

	cr_assert_eq(tp_state_run_end(f.s, r1, "failed", NULL), TP_EINVALID);
	st_assert_msg("already ended");
	cr_assert_eq(tp_state_run_end(f.s, 999, "failed", NULL), TP_ENOTFOUND);
	st_assert_msg("no run 999");
	cr_assert_eq(tp_state_run_begin(&r1, f.s, NULL, NULL), TP_EINVALID);
	json_decref(counts);
	fx_close(&f);
}

/* ---------------------------------------------------------------- journal */

Test(journal, pending_until_completed)
{
	fixture f;
	int64_t run = 0, j1 = 0, j2 = 0;
	tp_journal_entry *p = NULL;
	size_t n = 99;
	fx_open(&f);

	cr_assert_eq(tp_state_journal_pending(&p, &n, f.s), 0);
	cr_assert_eq(n, 0);
	cr_assert_null(p);
	cr_assert_eq(tp_state_run_begin(&run, f.s, "aaa", "poll"), 0);
	cr_assert_eq(
	    tp_state_journal_begin(&j1, f.s, run, "aws.stack/net", "create", "tok-1", "hash1"), 0,
	    "%s", tp_error_last());
	f.clk.now += 10;
	cr_assert_eq(
	    tp_state_journal_begin(&j2, f.s, run, "snowflake.role/R", "delete", "tok-2", NULL), 0);
	cr_assert_eq(tp_state_journal_attempt(f.s, j1), 0, "%s", tp_error_last());
	cr_assert_eq(tp_state_journal_attempt(f.s, j1), 0);

	cr_assert_eq(tp_state_journal_pending(&p, &n, f.s), 0, "%s", tp_error_last());
	cr_assert_eq(n, 2);
	cr_assert_eq(p[0].id, j1, "oldest first");
	cr_assert_eq(p[0].run_id, run);
	cr_assert_str_eq(p[0].address, "aws.stack/net");
	cr_assert_str_eq(p[0].action, "create");
	cr_assert_str_eq(p[0].token, "tok-1");
	cr_assert_str_eq(p[0].spec_hash, "hash1");
	cr_assert_str_eq(p[0].status, "pending");
	cr_assert_eq(p[0].attempts, 3);
	cr_assert_null(p[0].error);
	cr_assert_eq(p[0].started_ms, 1700000000000LL);
	cr_assert_eq(p[0].ended_ms, 0);
	cr_assert_eq(p[1].id, j2);
	cr_assert_eq(p[1].attempts, 1);
	cr_assert_null(p[1].spec_hash);
	for (size_t i = 0; i < n; i++)
		tp_journal_entry_clear(&p[i]);
	free(p);

	f.clk.now += 500;
	cr_assert_eq(tp_state_journal_complete(f.s, j1, "done", NULL), 0, "%s", tp_error_last());
	cr_assert_eq(tp_state_journal_complete(f.s, j2, "failed", "403: not authorised"), 0);
	cr_assert_eq(tp_state_journal_pending(&p, &n, f.s), 0);
	cr_assert_eq(n, 0);
	free(p);
	cr_assert_eq(st_sql_int(f.path, "SELECT ended_ms FROM journal WHERE status = 'done'"),
		     1700000000510LL);
	cr_assert_eq(st_sql_int(f.path, "SELECT count(*) FROM journal WHERE status = 'failed' AND "
					"error = '403: not authorised'"),
		     1);

	cr_assert_eq(tp_state_journal_complete(f.s, j1, "done", NULL), TP_EINVALID);
	st_assert_msg("already completed");
	cr_assert_eq(tp_state_journal_attempt(f.s, j1), TP_EINVALID);
	cr_assert_eq(tp_state_journal_complete(f.s, 4242, "done", NULL), TP_ENOTFOUND);
	cr_assert_eq(tp_state_journal_attempt(f.s, 4242), TP_ENOTFOUND);
	cr_assert_eq(tp_state_journal_complete(f.s, j2, "pending", NULL), TP_EINVALID);
	st_assert_msg("must be \"done\" or \"failed\"");
	fx_close(&f);
}

Test(journal, begin_is_durable_and_refused_inside_a_transaction)
{
	fixture f;
	int64_t run = 0, j = 0;
	tp_journal_entry *p = NULL;
	size_t n = 0;
	fx_open(&f);

	cr_assert_eq(tp_state_run_begin(&run, f.s, "aaa", "poll"), 0);
	cr_assert_eq(tp_state_begin(f.s), 0);
	cr_assert_eq(tp_state_journal_begin(&j, f.s, run, "aws.stack/net", "create", "t", NULL),
		     TP_EINVALID);
	st_assert_msg("inside an open transaction");
	tp_state_rollback(f.s);

	/* committed before the call: a crash right after leaves it pending for start-up */
	cr_assert_eq(tp_state_journal_begin(&j, f.s, run, "aws.stack/net", "create", "t", NULL), 0);
	cr_assert_eq(st_sql_int(f.path, "SELECT count(*) FROM journal WHERE status = 'pending'"),
		     1);
	tp_state_close(f.s);
	f.s = st_open_rw(f.path);
	cr_assert_eq(tp_state_journal_pending(&p, &n, f.s), 0);
	cr_assert_eq(n, 1);
	cr_assert_eq(p[0].id, j);
	tp_journal_entry_clear(&p[0]);
	tp_journal_entry_clear(NULL);
	free(p);

	cr_assert_eq(tp_state_journal_begin(&j, f.s, run, "aws.stack/net", "create", NULL, NULL),
		     TP_EINVALID);
	fx_close(&f);
}

/* A create's provisional row and its journal entry are one commit: both are there (and
 * durable) when it returns, neither when it fails, and it refuses an open transaction. */
Test(journal, begin_create_commits_the_provisional_row_with_the_entry)
{
	fixture f;
	int64_t run = 0, j = 0;
	tp_state_resource prov = {0};
	tp_state_resource got = {0};
	fx_open(&f);

	prov.address = "local.file/a";
	prov.kind = "local.file";
	prov.name = "a";
	prov.status = "creating";
	prov.spec_hash = "h";
	cr_assert_eq(tp_state_run_begin(&run, f.s, "aaa", "poll"), 0);
	cr_assert_eq(tp_state_begin(f.s), 0);
	cr_assert_eq(tp_state_journal_begin_create(&j, f.s, run, &prov, "t", "h"), TP_EINVALID);
	st_assert_msg("inside an open transaction");
	tp_state_rollback(f.s);

	/* an unknown run: the journal row cannot go in, so the provisional row does not either */
	cr_assert_eq(tp_state_journal_begin_create(&j, f.s, run + 100, &prov, "t", "h"),
		     TP_ENOTFOUND);
	cr_assert_eq(j, 0);
	cr_assert_eq(st_sql_int(f.path, "SELECT count(*) FROM resources"), 0);
	cr_assert_eq(st_sql_int(f.path, "SELECT count(*) FROM journal"), 0);

	cr_assert_eq(tp_state_journal_begin_create(&j, f.s, run, &prov, "t", "h"), 0,
		     "%s", tp_error_last());
	cr_assert_gt(j, 0);
	/* read through another connection: committed, not just written */
	cr_assert_eq(st_sql_int(f.path, "SELECT count(*) FROM journal WHERE status = 'pending' "
					"AND action = 'create' AND address = 'local.file/a'"),
		     1);
	cr_assert_eq(tp_state_resource_get(&got, f.s, "local.file/a"), 0);
	cr_assert_str_eq(got.status, "creating");
	tp_state_resource_clear(&got);
	fx_close(&f);
}

/* ---------------------------------------------------------------- events */

Test(events, add_and_list_with_filter)
{
	fixture f;
	int64_t run = 0;
	json_t *list = NULL, *e;
	fx_open(&f);

	cr_assert_eq(tp_state_run_begin(&run, f.s, "aaa", "poll"), 0);
	cr_assert_eq(tp_state_event_add(f.s, run, "aws.stack/net", "info", "applied", "created"), 0,
		     "%s", tp_error_last());
	f.clk.now += 5;
	cr_assert_eq(tp_state_event_add(f.s, 0, NULL, "warn", "invalid-revision", "bad yaml"), 0);
	f.clk.now += 5;
	cr_assert_eq(tp_state_event_add(f.s, run, "aws.stack/net", "error", "drift", "changed"), 0);
	cr_assert_eq(tp_state_event_add(f.s, run, "local.file/env", "info", "applied", "ok"), 0);

	cr_assert_eq(tp_state_events_list(&list, f.s, NULL, 100), 0, "%s", tp_error_last());
	cr_assert_eq(json_array_size(list), 4);
	e = json_array_get(list, 0);
	cr_assert_str_eq(tp_json_get_str(e, "address"), "local.file/env", "newest first");
	e = json_array_get(list, 2);
	cr_assert(json_is_null(json_object_get(e, "run")));
	cr_assert(json_is_null(json_object_get(e, "address")));
	cr_assert_str_eq(tp_json_get_str(e, "level"), "warn");
	cr_assert_str_eq(tp_json_get_str(e, "type"), "invalid-revision");
	cr_assert_str_eq(tp_json_get_str(e, "message"), "bad yaml");
	cr_assert_eq(json_integer_value(json_object_get(e, "ts_ms")), 1700000000005LL);
	cr_assert_eq(json_object_size(e), 7);
	e = json_array_get(list, 3);
	cr_assert_eq(json_integer_value(json_object_get(e, "run")), run);
	cr_assert(json_integer_value(json_object_get(e, "id")) > 0);
	json_decref(list);

	cr_assert_eq(tp_state_events_list(&list, f.s, "aws.stack/net", 100), 0);
	cr_assert_eq(json_array_size(list), 2);
	cr_assert_str_eq(tp_json_get_str(json_array_get(list, 0), "type"), "drift");
	cr_assert_str_eq(tp_json_get_str(json_array_get(list, 1), "type"), "applied");
	json_decref(list);
	cr_assert_eq(tp_state_events_list(&list, f.s, "aws.stack/net", 1), 0);
	cr_assert_eq(json_array_size(list), 1);
	json_decref(list);
	cr_assert_eq(tp_state_events_list(&list, f.s, "nothing/here", 10), 0);
	cr_assert_eq(json_array_size(list), 0);
	json_decref(list);
	cr_assert_eq(tp_state_events_list(&list, f.s, NULL, -1), TP_EINVALID);
	cr_assert_null(list);

	cr_assert_eq(tp_state_event_add(f.s, 0, NULL, "fatal", "x", "y"), TP_EINVALID);
	st_assert_msg("info, warn or error");
	cr_assert_eq(tp_state_event_add(f.s, 0, NULL, "info", NULL, "y"), TP_EINVALID);
	fx_close(&f);
}

Test(events, invalid_utf8_is_shown_not_dropped)
{
	fixture f;
	json_t *list = NULL;
	fx_open(&f);
	cr_assert_eq(tp_state_event_add(f.s, 0, NULL, "error", "apply-failed", "bad \xff byte"), 0);
	cr_assert_eq(tp_state_events_list(&list, f.s, NULL, 10), 0);
	cr_assert_eq(json_array_size(list), 1);
	cr_assert_str_eq(tp_json_get_str(json_array_get(list, 0), "message"), "bad ? byte");
	json_decref(list);
	fx_close(&f);
}

Test(runs, plan_and_journal_of_one_run)
{
	fixture f;
	int64_t run = 0, j = 0;
	json_t *got = NULL, *plan = json_pack("{s:s,s:[]}", "format_version", "1.0",
					      "resource_changes");
	fx_open(&f);
	cr_assert_eq(tp_state_run_begin(&run, f.s, "abc", "cli"), 0);
	cr_assert_eq(tp_state_journal_begin(&j, f.s, run, "local.file/a", "create", "t1", "h"), 0);
	cr_assert_eq(tp_state_journal_complete(f.s, j, "done", NULL), 0);
	cr_assert_eq(tp_state_run_set_plan(f.s, run, plan), 0, "%s", tp_error_last());
	cr_assert_eq(tp_state_run_get(&got, f.s, run), 0, "%s", tp_error_last());
	cr_assert_str_eq(json_string_value(tp_json_path_get(got, "plan.format_version")), "1.0");
	cr_assert_str_eq(json_string_value(tp_json_path_get(got, "run.revision")), "abc");
	cr_assert_eq(json_array_size(json_object_get(got, "journal")), 1);
	cr_assert_str_eq(json_string_value(tp_json_path_get(got, "journal.0.address")),
			 "local.file/a");
	json_decref(got);
	cr_assert_eq(tp_state_run_get(&got, f.s, run + 100), TP_ENOTFOUND);
	cr_assert_eq(tp_state_run_set_plan(f.s, run + 100, plan), TP_ENOTFOUND);
	json_decref(plan);
	fx_close(&f);
}

Test(runs, a_schema_1_database_is_migrated_to_keep_plans)
{
	char *dir = NULL, *path = st_db_path(&dir);
	tp_state *s = st_open_rw(path);
	sqlite3 *h = NULL;
	int64_t run = 0;
	json_t *plan = json_pack("{s:s}", "format_version", "1.0");
	tp_state_close(s);
	/* what a database written before schema 2 looks like */
	cr_assert_eq(sqlite3_open(path, &h), SQLITE_OK);
	cr_assert_eq(sqlite3_exec(h, "ALTER TABLE runs DROP COLUMN plan; PRAGMA user_version = 1;",
				  NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(h);
	s = st_open_rw(path);
	cr_assert_eq(st_sql_int(path, "PRAGMA user_version"), TP_STATE_SCHEMA_VERSION);
	cr_assert_eq(tp_state_run_begin(&run, s, NULL, "cli"), 0);
	cr_assert_eq(tp_state_run_set_plan(s, run, plan), 0, "%s", tp_error_last());
	tp_state_close(s);
	json_decref(plan);
	ts_rmtree(dir);
	free(dir);
	free(path);
}
