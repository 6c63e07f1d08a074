/*
 * `tapestry plan` end to end through the binary: a fresh pipeline with no state, a recorded
 * state with no changes, --detailed-exitcode, the three formats, lifecycle refusals, and bad
 * state files (corrupt, foreign, from a newer schema) refused without touching them.
 */
#include <criterion/criterion.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

#include "state/state.h"
#include "support/support.h"

static char *dir, *db;

static void setup(void)
{
	dir = ts_tmpdir();
	db = tp_sprintf("%s/state.db", dir);
	ts_write(dir, "p/tapestry.yaml", "pipeline: cli\n");
	ts_write(dir, "p/resources/files.yaml",
		 "kind: local.file\nname: a\nspec: {path: /srv/a, content: hello}\n---\n"
		 "kind: local.file\nname: b\nspec: {path: /srv/b, content: \"${local.file/a.path}\","
		 " mode: \"0600\"}\n");
}

static void teardown(void)
{
	ts_rmtree(dir);
	free(dir);
	free(db);
}

TestSuite(cli_plan, .init = setup, .fini = teardown);

static ts_result plan(const char *fmt, bool detailed)
{
	char *p = tp_sprintf("%s/p", dir);
	const char *args[8] = {"plan", p, "--state", db, NULL, NULL, NULL, NULL};
	int n = 4;
	ts_result r;
	if (fmt) {
		args[n++] = "--format";
		args[n++] = fmt;
	}
	if (detailed)
		args[n++] = "--detailed-exitcode";
	r = ts_run_tapestry(args, NULL);
	free(p);
	return r;
}

static void record(const char *name, const char *path, const char *content, const char *mode,
		   const char *deps)
{
	tp_state *s = NULL;
	tp_state_resource r = {0};
	json_error_t e;
	cr_assert_eq(tp_state_open(&s, db, TP_STATE_READWRITE), 0, "%s", tp_error_last());
	r.address = tp_sprintf("local.file/%s", name);
	r.kind = tp_strdup("local.file");
	r.name = tp_strdup(name);
	r.applied = json_pack("{s:s,s:s,s:s}", "path", path, "content", content, "mode", mode);
	r.outputs = json_pack("{s:s}", "path", path);
	r.lifecycle = json_pack("{s:b,s:s}", "prevent_destroy", 0, "deletion", "delete");
	r.deps = json_loads(deps, 0, &e);
	r.status = tp_strdup("ready");
	cr_assert_eq(tp_state_resource_put(s, &r), 0, "%s", tp_error_last());
	tp_state_resource_clear(&r);
	tp_state_close(s);
}

Test(cli_plan, missing_state_means_everything_is_created)
{
	ts_result r = plan(NULL, false);
	cr_assert_eq(r.status, 0, "%s", r.err);
	cr_assert(strstr(r.out, "# local.file/a will be created"), "%s", r.out);
	cr_assert(strstr(r.out, "Plan: 2 to add, 0 to change, 0 to destroy."), "%s", r.out);
	cr_assert(!strchr(r.out, '\033'), "colour escapes when stdout is not a terminal");
	ts_result_free(&r);
	cr_assert_null(ts_read(db), "plan created the state file");
	r = plan(NULL, true);
	cr_assert_eq(r.status, 2, "--detailed-exitcode with changes must exit 2");
	ts_result_free(&r);
}

Test(cli_plan, recorded_state_in_sync_is_no_changes)
{
	char *before, *after;
	ts_result r;
	record("a", "/srv/a", "hello", "0644", "[]");
	record("b", "/srv/b", "/srv/a", "0600", "[\"local.file/a\"]");
	before = ts_read(db);
	r = plan(NULL, true);
	after = ts_read(db);
	cr_assert_eq(r.status, 0, "%s%s", r.out, r.err);
	cr_assert_str_eq(r.out, "No changes. Live state matches the pipeline in Git.\n");
	cr_assert(before && after && strcmp(before, after) == 0, "plan modified the state");
	ts_result_free(&r);
	free(before);
	free(after);
}

Test(cli_plan, update_in_json_and_markdown)
{
	ts_result r;
	json_t *doc = NULL;
	record("a", "/srv/a", "old", "0644", "[]");
	record("b", "/srv/b", "/srv/a", "0600", "[\"local.file/a\"]");
	r = plan("json", true);
	cr_assert_eq(r.status, 2, "%s", r.err);
	cr_assert_eq(tp_json_parse(&doc, r.out, strlen(r.out)), 0, "%s", r.out);
	cr_assert_str_eq(json_string_value(tp_json_path_get(doc,
		"resource_changes.0.actions.0")), "update");
	cr_assert_str_eq(json_string_value(tp_json_path_get(doc,
		"resource_changes.0.changes.0.after")), "hello");
	json_decref(doc);
	ts_result_free(&r);
	r = plan("markdown", false);
	cr_assert_eq(r.status, 0);
	cr_assert(strstr(r.out, "<details>") && strstr(r.out, "| Action | Resource | Reason |"),
		  "%s", r.out);
	ts_result_free(&r);
}

Test(cli_plan, prune_guard_refuses_with_exit_1)
{
	ts_result r;
	record("a", "/srv/a", "hello", "0644", "[]");
	record("b", "/srv/b", "/srv/a", "0600", "[\"local.file/a\"]");
	record("gone1", "/srv/g1", "x", "0644", "[]");
	record("gone2", "/srv/g2", "x", "0644", "[]");
	r = plan(NULL, true);
	cr_assert_eq(r.status, 1);
	cr_assert(strstr(r.out, "Error: prune guard: this plan would delete 2 of 4"), "%s", r.out);
	cr_assert(strstr(r.err, "lifecycle rule"), "%s", r.err);
	ts_result_free(&r);
}

static void check_refused(const char *what, const char *needle)
{
	char *before = ts_read(db), *after;
	ts_result r = plan(NULL, false);
	after = ts_read(db);
	cr_assert_eq(r.status, 1, "%s: %s", what, r.err);
	cr_assert_str_eq(r.out, "", "%s: printed a plan", what);
	cr_assert(strstr(r.err, needle), "%s: %s", what, r.err);
	cr_assert(before && after && strcmp(before, after) == 0, "%s: file changed", what);
	ts_result_free(&r);
	free(before);
	free(after);
}

Test(cli_plan, bad_state_files_are_refused_unchanged)
{
	sqlite3 *h = NULL;
	ts_write(dir, "state.db", "this is not a database at all, just text\n");
	check_refused("garbage", "is not an SQLite database");
	remove(db);
	cr_assert_eq(sqlite3_open(db, &h), SQLITE_OK);
	cr_assert_eq(sqlite3_exec(h, "CREATE TABLE users(id INTEGER); INSERT INTO users VALUES(1);",
				  NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(h);
	check_refused("foreign", "SQLite database that Tapestry did not create");
	remove(db);
	record("a", "/srv/a", "hello", "0644", "[]");
	cr_assert_eq(sqlite3_open(db, &h), SQLITE_OK);
	cr_assert_eq(sqlite3_exec(h, "PRAGMA user_version = 99;", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(h);
	check_refused("newer", "newer Tapestry");
}

Test(cli_plan, state_in_missing_directory_and_usage)
{
	const char *a1[] = {"plan", "/nonexistent", NULL};
	ts_result r = ts_run_tapestry(a1, NULL);
	cr_assert_eq(r.status, 64);
	cr_assert(strstr(r.err, "--state FILE is required"), "%s", r.err);
	ts_result_free(&r);
	free(db);
	db = tp_sprintf("%s/no/such/dir/state.db", dir);
	r = plan(NULL, false);
	/* read-only planning treats a missing state as empty, whatever the directory */
	cr_assert_eq(r.status, 0, "%s", r.err);
	ts_result_free(&r);
}

Test(cli_plan, invalid_pipeline_plans_nothing)
{
	ts_result r;
	ts_write(dir, "p/resources/bad.yaml", "kind: local.file\nname: c\nspec: {path: /c}\n");
	r = plan(NULL, false);
	cr_assert_eq(r.status, 1);
	cr_assert_str_eq(r.out, "");
	cr_assert(strstr(r.err, "resources/bad.yaml:3:7:"), "%s", r.err);
	cr_assert(strstr(r.err, "nothing was planned"), "%s", r.err);
	ts_result_free(&r);
}
