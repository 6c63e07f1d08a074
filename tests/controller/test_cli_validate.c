/*
 * `tapestry validate` end to end, through the real binary: exit codes, the one-line summary,
 * path:line:col errors relative to DIR on stderr, --json, usage errors, and no file touched.
 */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "support/support.h"
#include "util/util.h"

Test(cli_validate, kickstart_example_is_valid)
{
	char *dir = ts_source_path("examples/kickstart");
	char *before = ts_snapshot(dir), *after;
	const char *args[] = {"validate", dir, NULL};
	ts_result r = ts_run_tapestry(args, NULL);
	after = ts_snapshot(dir);
	cr_assert_eq(r.status, 0, "stderr: %s", r.err);
	cr_assert(strstr(r.out, "pipeline \"rainshield\" is valid"), "%s", r.out);
	cr_assert_str_eq(r.err, "");
	cr_assert_str_eq(before, after, "validate changed files in the example");
	ts_result_free(&r);
	free(before);
	free(after);
	free(dir);
}

Test(cli_validate, errors_are_relative_to_the_directory_and_exit_1)
{
	char *dir = ts_tmpdir();
	const char *args[] = {"validate", dir, NULL};
	ts_result r;
	ts_write(dir, "tapestry.yaml", "pipeline: p\n");
	ts_write(dir, "resources/a.yaml",
		 "kind: local.file\nname: a\nspec: {path: /a, content: x, colour: red}\n---\n"
		 "kind: local.file\nname: b\nspec: {path: /b}\n");
	r = ts_run_tapestry(args, NULL);
	cr_assert_eq(r.status, 1);
	cr_assert_str_eq(r.out, "");
	cr_assert(strncmp(r.err, "resources/a.yaml:3:30: spec.colour: unknown field", 49) == 0,
		  "%s", r.err);
	cr_assert(strstr(r.err, "\nresources/a.yaml:7:7: spec: exactly one of `content` and "
				"`source` must be set\n"), "%s", r.err);
	cr_assert(strstr(r.err, "is not valid: 2 errors"), "%s", r.err);
	ts_result_free(&r);
	ts_rmtree(dir);
	free(dir);
}

Test(cli_validate, json_output)
{
	char *dir = ts_tmpdir();
	const char *args[] = {"validate", "--json", dir, NULL};
	ts_result r;
	json_t *doc = NULL;
	ts_write(dir, "tapestry.yaml", "pipeline: p\n");
	ts_write(dir, "resources/a.yaml", "kind: local.file\nname: a\nspec: {path: /a}\n");
	r = ts_run_tapestry(args, NULL);
	cr_assert_eq(r.status, 1);
	cr_assert_eq(tp_json_parse(&doc, r.out, strlen(r.out)), 0, "%s", r.out);
	cr_assert(json_is_false(json_object_get(doc, "valid")));
	cr_assert_eq(json_array_size(json_object_get(doc, "errors")), 1);
	cr_assert_eq(json_integer_value(json_object_get(json_array_get(json_object_get(doc,
		"errors"), 0), "line")), 3);
	json_decref(doc);
	ts_result_free(&r);
	ts_rmtree(dir);
	free(dir);
}

Test(cli_validate, usage_and_missing_directory)
{
	const char *a1[] = {"validate", "--frobnicate", NULL};
	const char *a2[] = {"validate", "/nonexistent/pipeline", NULL};
	const char *a3[] = {"no-such-command", NULL};
	const char *a4[] = {"validate", "--help", NULL};
	ts_result r = ts_run_tapestry(a1, NULL);
	cr_assert_eq(r.status, 64);
	cr_assert(strstr(r.err, "unknown option --frobnicate"), "%s", r.err);
	ts_result_free(&r);
	r = ts_run_tapestry(a2, NULL);
	cr_assert_eq(r.status, 1);
	cr_assert(strstr(r.err, "Error: /nonexistent/pipeline: No such file or directory"), "%s",
		  r.err);
	ts_result_free(&r);
	r = ts_run_tapestry(a3, NULL);
	cr_assert_eq(r.status, 64);
	ts_result_free(&r);
	r = ts_run_tapestry(a4, NULL);
	cr_assert_eq(r.status, 0);
	cr_assert(strstr(r.out, "Usage: tapestry validate"), "%s", r.out);
	ts_result_free(&r);
}

Test(cli_validate, endpoint_environment_variable_must_be_a_url)
{
	char *dir = ts_tmpdir();
	const char *args[] = {"validate", dir, NULL};
	const char *env[] = {"TAPESTRY_ENDPOINT_AWS=localhost:5000", NULL};
	ts_result r;
	ts_write(dir, "tapestry.yaml", "pipeline: p\nproviders: {aws: {region: us-east-1}}\n");
	ts_write(dir, "resources/a.yaml", "kind: local.file\nname: a\nspec: {path: /a, content: x}\n");
	r = ts_run_tapestry(args, env);
	cr_assert_eq(r.status, 1);
	cr_assert(strstr(r.err, "TAPESTRY_ENDPOINT_AWS: \"localhost:5000\" is not an http(s) URL"),
		  "%s", r.err);
	ts_result_free(&r);
	ts_rmtree(dir);
	free(dir);
}

Test(cli, kinds_lists_every_kind_and_describes_one)
{
	const char *a1[] = {"kinds", NULL};
	const char *a2[] = {"kinds", "snowflake.warehouse", NULL};
	const char *a3[] = {"kinds", "nope.kind", NULL};
	ts_result r = ts_run_tapestry(a1, NULL);
	cr_assert_eq(r.status, 0);
	cr_assert(strstr(r.out, "aws.stack") && strstr(r.out, "grouparoo.destination"));
	ts_result_free(&r);
	r = ts_run_tapestry(a2, NULL);
	cr_assert_eq(r.status, 0);
	cr_assert(strstr(r.out, "warehouse_size"), "%s", r.out);
	ts_result_free(&r);
	r = ts_run_tapestry(a3, NULL);
	cr_assert_eq(r.status, 1);
	cr_assert(strstr(r.err, "unknown kind"), "%s", r.err);
	ts_result_free(&r);
}

Test(cli, read_only_commands_refuse_bad_options)
{
	static const struct {
		const char *args[6];
		const char *msg;
	} cases[] = {
		{{"status", NULL}, "--state FILE is required"},
		{{"history", "--state", "/tmp/x.db", "--limit", "0", NULL}, "--limit takes 1 to 10000"},
		{{"events", "--state", "/tmp/x.db", "--bogus", NULL}, "unknown option --bogus"},
		{{"history", "--state", "/tmp/x.db", "--resource", "a/b", NULL},
		 "unknown option --resource"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
		ts_result r = ts_run_tapestry(cases[i].args, NULL);
		cr_expect_eq(r.status, 64, "case %zu: %s", i, r.err);
		cr_expect(strstr(r.err, cases[i].msg), "case %zu: %s", i, r.err);
		ts_result_free(&r);
	}
}
