/*
 * Bad input as data: every directory under tests/fixtures/spec/bad is a pipeline that must be
 * refused. Its expected.txt holds the exact diagnostics (file:line:col: message, one per
 * line). Loading must fail with TP_EINVALID, return no pipeline and change no file.
 * TP_UPDATE_GOLDEN=1 rewrites expected.txt from the current output (review the diff).
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "spec/spec.h"
#include "support/support.h"

static char *load_errors(const char *dir, int *rc_out)
{
	tp_tree *tree = NULL;
	tp_pipeline *p = NULL;
	tp_diags diags = {0};
	char *text = NULL;
	size_t len = 0;
	FILE *mem = open_memstream(&text, &len);
	cr_assert_eq(tp_tree_fs_open(&tree, dir), 0, "%s", tp_error_last());
	*rc_out = tp_pipeline_load(&p, tree, &diags);
	cr_assert_null(p, "%s: a refused pipeline must not be returned", dir);
	tp_diags_print(&diags, mem);
	fclose(mem);
	tp_diags_free(&diags);
	tp_tree_free(tree);
	return text;
}

Test(bad_inputs, every_fixture_is_refused_with_exact_diagnostics)
{
	char *root = ts_source_path("tests/fixtures/spec/bad");
	DIR *d = opendir(root);
	struct dirent *e;
	int cases = 0, failures = 0;
	cr_assert_not_null(d, "missing %s", root);
	while ((e = readdir(d)) != NULL) {
		char *dir, *expected_path, *expected, *before, *after, *got;
		int rc = 0;
		if (e->d_name[0] == '.')
			continue;
		dir = tp_sprintf("%s/%s", root, e->d_name);
		expected_path = tp_sprintf("%s/expected.txt", dir);
		before = ts_snapshot(dir);
		got = load_errors(dir, &rc);
		after = ts_snapshot(dir);
		cases++;
		cr_expect_eq(rc, TP_EINVALID, "%s: expected TP_EINVALID, got %d", e->d_name, rc);
		cr_expect_str_eq(before, after, "%s: loading changed files", e->d_name);
		if (getenv("TP_UPDATE_GOLDEN")) {
			FILE *f = fopen(expected_path, "w");
			fputs(got, f);
			fclose(f);
		}
		expected = ts_read(expected_path);
		cr_expect_not_null(expected, "%s: no expected.txt", e->d_name);
		if (expected && strcmp(expected, got) != 0) {
			failures++;
			cr_log_error("%s: diagnostics differ\n--- expected\n%s--- got\n%s", e->d_name,
				     expected, got);
		}
		cr_expect(got[0] != '\0', "%s: refused without any diagnostic", e->d_name);
		free(expected);
		free(got);
		free(before);
		free(after);
		free(expected_path);
		free(dir);
	}
	closedir(d);
	free(root);
	cr_assert_gt(cases, 20, "only %d bad-input fixtures found", cases);
	cr_assert_eq(failures, 0, "%d fixtures produced different diagnostics", failures);
}
