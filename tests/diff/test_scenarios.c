/*
 * Plan scenarios as data. Each directory under tests/scenarios/ holds:
 *   pipeline/      a pipeline repository (tapestry.yaml, resources/...)
 *   state.json     the recorded state: {"resources": [{address, kind, name, provider_id,
 *                  applied, secret_hashes, outputs, observed, lifecycle, deps, status}]}
 *   options.json   optional: {"allow_mass_delete": true, "secret_hashes": {address:
 *                  {path: hmac}}} (the keyed hashes of the desired secret values)
 *   expected.txt   the exact text plan (no colour)
 * One driver runs them all; TP_UPDATE_GOLDEN=1 rewrites expected.txt (review the diff).
 * The JSON rendering of every scenario is also checked for the invariants of the format.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "diff/diff.h"
#include "support/support.h"

static char *dup_or_null(const json_t *v)
{
	return json_is_string(v) ? tp_strdup(json_string_value(v)) : NULL;
}

static json_t *copy_or_null(const json_t *v)
{
	return v && !json_is_null(v) ? json_deep_copy(v) : NULL;
}

static void load_state(tp_state_resources *out, const char *path)
{
	char *text = ts_read(path);
	json_t *doc = NULL, *list, *r;
	size_t i;
	cr_assert_not_null(text, "missing %s", path);
	cr_assert_eq(tp_json_parse(&doc, text, strlen(text)), 0, "%s: %s", path, tp_error_last());
	list = json_object_get(doc, "resources");
	out->len = json_array_size(list);
	out->items = tp_calloc(out->len ? out->len : 1, sizeof(*out->items));
	json_array_foreach(list, i, r) {
		tp_state_resource *s = &out->items[i];
		s->address = dup_or_null(json_object_get(r, "address"));
		s->kind = dup_or_null(json_object_get(r, "kind"));
		s->name = dup_or_null(json_object_get(r, "name"));
		s->provider_id = dup_or_null(json_object_get(r, "provider_id"));
		s->status = dup_or_null(json_object_get(r, "status"));
		s->applied = copy_or_null(json_object_get(r, "applied"));
		s->secret_hashes = copy_or_null(json_object_get(r, "secret_hashes"));
		s->outputs = copy_or_null(json_object_get(r, "outputs"));
		s->observed = copy_or_null(json_object_get(r, "observed"));
		s->lifecycle = copy_or_null(json_object_get(r, "lifecycle"));
		s->deps = copy_or_null(json_object_get(r, "deps"));
		if (i > 0)
			cr_assert_lt(strcmp(out->items[i - 1].address, s->address), 0,
				     "%s: resources must be sorted by address", path);
	}
	json_decref(doc);
	free(text);
}

static void check_json(const tp_plan *plan, const char *name)
{
	tp_buf out;
	json_t *doc = NULL;
	tp_buf_init(&out, 0);
	cr_assert_eq(tp_plan_render(&out, plan, TP_RENDER_JSON, false), 0);
	cr_assert_eq(tp_json_parse(&doc, out.ptr, out.len), 0, "%s: plan JSON: %s", name,
		     tp_error_last());
	cr_expect_str_eq(tp_json_get_str(doc, "format_version"), TP_PLAN_FORMAT_VERSION);
	cr_expect_eq(json_array_size(json_object_get(doc, "resource_changes")), plan->len, "%s",
		     name);
	cr_expect_eq(json_integer_value(tp_json_path_get(doc, "summary.add")), (json_int_t)plan->add);
	cr_expect_eq(json_is_true(json_object_get(doc, "applyable")), plan->errors.len == 0);
	json_decref(doc);
	tp_buf_free(&out);
}

Test(scenarios, every_scenario_plans_as_expected)
{
	char *root = ts_source_path("tests/scenarios");
	DIR *d = opendir(root);
	struct dirent *e;
	int cases = 0, failures = 0;
	cr_assert_not_null(d);
	while ((e = readdir(d)) != NULL) {
		char *dir, *pdir, *spath, *opath, *epath, *otext, *expected;
		tp_tree *tree = NULL;
		tp_pipeline *p = NULL;
		tp_diags diags = {0};
		tp_state_resources state = {0};
		tp_plan *plan = NULL;
		tp_plan_options opts = {0};
		json_t *hashes = NULL;
		tp_buf out;
		if (e->d_name[0] == '.')
			continue;
		cases++;
		dir = tp_sprintf("%s/%s", root, e->d_name);
		pdir = tp_sprintf("%s/pipeline", dir);
		spath = tp_sprintf("%s/state.json", dir);
		opath = tp_sprintf("%s/options.json", dir);
		epath = tp_sprintf("%s/expected.txt", dir);
		cr_assert_eq(tp_tree_fs_open(&tree, pdir), 0, "%s", tp_error_last());
		if (tp_pipeline_load(&p, tree, &diags) != 0) {
			tp_diags_print(&diags, stderr);
			cr_assert_fail("%s: pipeline does not load", e->d_name);
		}
		load_state(&state, spath);
		opts.self_heal = p->settings.self_heal;
		opts.max_prune_percent = p->settings.max_prune_percent;
		otext = ts_read(opath);
		if (otext) {
			json_t *o = NULL;
			cr_assert_eq(tp_json_parse(&o, otext, strlen(otext)), 0);
			opts.allow_mass_delete = json_is_true(json_object_get(o, "allow_mass_delete"));
			hashes = json_incref(json_object_get(o, "secret_hashes"));
			opts.secret_hashes = hashes;
			json_decref(o);
			free(otext);
		}
		cr_assert_eq(tp_plan_build(&plan, p, &state, &opts), 0, "%s", tp_error_last());
		tp_buf_init(&out, 0);
		cr_assert_eq(tp_plan_render(&out, plan, TP_RENDER_TEXT, false), 0);
		if (getenv("TP_UPDATE_GOLDEN")) {
			FILE *f = fopen(epath, "w");
			fputs(tp_buf_cstr(&out), f);
			fclose(f);
		}
		expected = ts_read(epath);
		cr_expect_not_null(expected, "%s: no expected.txt", e->d_name);
		if (expected && strcmp(expected, tp_buf_cstr(&out)) != 0) {
			failures++;
			cr_log_error("%s: plan differs\n--- expected\n%s--- got\n%s", e->d_name,
				     expected, tp_buf_cstr(&out));
		}
		check_json(plan, e->d_name);
		free(expected);
		json_decref(hashes);
		tp_buf_free(&out);
		tp_plan_free(plan);
		tp_state_resources_free(&state);
		tp_pipeline_free(p);
		tp_diags_free(&diags);
		tp_tree_free(tree);
		free(dir);
		free(pdir);
		free(spath);
		free(opath);
		free(epath);
	}
	closedir(d);
	free(root);
	cr_assert_geq(cases, 12, "only %d scenarios", cases);
	cr_assert_eq(failures, 0, "%d scenarios differ", failures);
}
