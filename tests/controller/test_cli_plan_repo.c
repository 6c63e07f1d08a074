/*
 * `tapestry plan --repo` for pull requests: a real repository with a base branch and a
 * feature branch, planned in place (a CI checkout, detached commits included) and through a
 * file:// URL (fetched into a temporary mirror), with and without --base.
 */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "support/support.h"
#include "util/util.h"

static char *tmp, *repo;

static void setup(void)
{
	ts_git_env();
	tmp = ts_tmpdir();
	repo = tp_sprintf("%s/repo", tmp);
	free(ts_git(tmp, "init -q repo"));
	ts_write(repo, "infra/pipe/tapestry.yaml", "pipeline: pr\n");
	ts_write(repo, "infra/pipe/resources/a.yaml",
		 "kind: local.file\nname: a\nspec: {path: /srv/a, content: one}\n---\n"
		 "kind: local.file\nname: b\nspec: {path: /srv/b, content: \"${local.file/a.path}\"}\n");
	free(ts_git(repo, "add -A"));
	free(ts_git(repo, "commit -q -m base"));
	free(ts_git(repo, "checkout -q -b feature"));
	ts_write(repo, "infra/pipe/resources/a.yaml",
		 "kind: local.file\nname: a\nspec: {path: /srv/a, content: two}\n---\n"
		 "kind: local.file\nname: b\nspec: {path: /srv/b, content: \"${local.file/a.path}\"}\n"
		 "---\nkind: local.file\nname: c\nspec: {path: /srv/c, content: new}\n");
	free(ts_git(repo, "add -A"));
	free(ts_git(repo, "commit -q -m feature"));
	free(ts_git(repo, "checkout -q main"));
}

static void teardown(void)
{
	ts_rmtree(tmp);
	free(tmp);
	free(repo);
}

TestSuite(plan_repo, .init = setup, .fini = teardown);

Test(plan_repo, base_shows_only_what_the_change_alters)
{
	const char *args[] = {"plan", "--repo", repo, "--rev", "feature", "--base", "main",
			      "--path", "infra/pipe", "--detailed-exitcode", NULL};
	ts_result r = ts_run_tapestry(args, NULL);
	cr_assert_eq(r.status, 2, "%s%s", r.out, r.err);
	cr_assert(strstr(r.out, "~ content = \"one\" -> \"two\""), "%s", r.out);
	cr_assert(strstr(r.out, "# local.file/c will be created"), "%s", r.out);
	cr_assert_null(strstr(r.out, "local.file/b"), "b did not change: %s", r.out);
	cr_assert(strstr(r.out, "Plan: 1 to add, 1 to change, 0 to destroy."), "%s", r.out);
	ts_result_free(&r);
}

Test(plan_repo, detached_commit_in_place_and_url_with_markdown)
{
	char *sha = ts_git(repo, "rev-parse feature");
	char *url = tp_sprintf("file://%s", repo);
	char *db = tp_sprintf("%s/none.db", tmp);
	const char *a1[] = {"plan", "--repo", repo, "--rev", sha, "--base", "main", "--path",
			    "infra/pipe", "--format", "markdown", NULL};
	const char *a2[] = {"plan", "--repo", url, "--rev", "feature", "--path", "infra/pipe",
			    "--state", db, NULL};
	ts_result r;
	free(ts_git(repo, "checkout -q --detach feature"));
	r = ts_run_tapestry(a1, NULL);
	cr_assert_eq(r.status, 0, "%s%s", r.out, r.err);
	cr_assert(strstr(r.out, "### Tapestry plan for pr"), "%s", r.out);
	cr_assert(strstr(r.out, "| create | local.file/c |"), "%s", r.out);
	ts_result_free(&r);
	r = ts_run_tapestry(a2, NULL);
	cr_assert_eq(r.status, 0, "%s%s", r.out, r.err);
	cr_assert(strstr(r.out, "Plan: 3 to add, 0 to change, 0 to destroy."), "%s", r.out);
	ts_result_free(&r);
	free(sha);
	free(url);
	free(db);
}

Test(plan_repo, bad_revisions_and_paths)
{
	const char *a1[] = {"plan", "--repo", repo, "--rev", "nope", "--base", "main", "--path",
			    "infra/pipe", NULL};
	const char *a2[] = {"plan", "--repo", repo, "--rev", "feature", "--base", "main",
			    "--path", "no/such/dir", NULL};
	const char *a3[] = {"plan", "--rev", "feature", NULL};
	ts_result r = ts_run_tapestry(a1, NULL);
	cr_assert_eq(r.status, 1);
	cr_assert(strstr(r.err, "--rev nope"), "%s", r.err);
	ts_result_free(&r);
	r = ts_run_tapestry(a2, NULL);
	cr_assert_eq(r.status, 1);
	cr_assert(strstr(r.err, "no/such/dir"), "%s", r.err);
	ts_result_free(&r);
	r = ts_run_tapestry(a3, NULL);
	cr_assert_eq(r.status, 64);
	ts_result_free(&r);
}

Test(plan_repo, apply_a_commit_of_a_repository_records_its_revision)
{
	char *db = tp_sprintf("%s/state.db", tmp);
	char *sha = ts_git(repo, "rev-parse main");
	const char *a1[] = {"apply", "--repo", repo, "--rev", "main", "--path", "infra/pipe",
			    "--state", db, "--auto-approve", "--no-refresh", NULL};
	const char *a2[] = {"history", "--state", db, "--json", NULL};
	ts_result r;
	json_t *runs = NULL;
	/* the pipeline writes to /srv: point it at the temp dir through a branch of its own */
	free(ts_git(repo, "checkout -q -b local"));
	{
		char *text = tp_sprintf("kind: local.file\nname: a\nspec: {path: %s/a, content: one}\n",
					tmp);
		ts_write(repo, "infra/pipe/resources/a.yaml", text);
		free(text);
	}
	free(ts_git(repo, "commit -q -am local"));
	free(sha);
	sha = ts_git(repo, "rev-parse local");
	a1[4] = "local";
	r = ts_run_tapestry(a1, NULL);
	cr_assert_eq(r.status, 0, "%s%s", r.out, r.err);
	cr_assert(strstr(r.out, "Apply complete! Resources: 1 added"), "%s", r.out);
	ts_result_free(&r);
	r = ts_run_tapestry(a2, NULL);
	cr_assert_eq(tp_json_parse(&runs, r.out, strlen(r.out)), 0, "%s", r.out);
	cr_assert_str_eq(json_string_value(tp_json_path_get(runs, "0.revision")), sha);
	json_decref(runs);
	ts_result_free(&r);
	free(sha);
	free(db);
}
