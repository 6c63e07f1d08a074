/*
 * `tapestry plan DIR --state FILE`: what applying the pipeline in DIR would change, computed
 * from Git (the directory) and the recorded state alone — no network and no credentials, so a
 * reviewer can run it on a pull request. With --refresh the providers observe live state
 * first. The state file is opened read-only and never changed; a missing one means nothing is
 * managed yet.
 */
#include "controller.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../diff/diff.h"
#include "../spec/spec.h"
#include "../state/state.h"

typedef struct {
	const char *dir;
	const char *repo;   /* --repo URL|DIR: plan a commit of a repository */
	const char *rev;    /* --rev: the commit to plan (default HEAD / the branch) */
	const char *base;   /* --base: plan against the state this revision would produce */
	const char *path;   /* --path: pipeline directory inside the repository */
	const char *state_path;
	tp_render_format format;
	bool detailed_exitcode;
	bool allow_mass_delete;
	bool refresh;
	bool refresh_schemas;
} plan_args;

static int parse_args(plan_args *a, int argc, char **argv)
{
	memset(a, 0, sizeof(*a));
	a->format = TP_RENDER_TEXT;
	for (int i = 1; i < argc; i++) {
		const char *arg = argv[i];
		const char *val = NULL;
		if (strncmp(arg, "--state=", 8) == 0) {
			a->state_path = arg + 8;
		} else if (strcmp(arg, "--state") == 0) {
			if (++i >= argc)
				return tp_error_set(TP_EUSAGE, "--state needs a file");
			a->state_path = argv[i];
		} else if (strncmp(arg, "--format=", 9) == 0 || strcmp(arg, "--format") == 0) {
			if (arg[8] == '=')
				val = arg + 9;
			else if (++i < argc)
				val = argv[i];
			if (!val)
				return tp_error_set(TP_EUSAGE, "--format needs text, markdown or json");
			if (strcmp(val, "text") == 0)
				a->format = TP_RENDER_TEXT;
			else if (strcmp(val, "markdown") == 0 || strcmp(val, "md") == 0)
				a->format = TP_RENDER_MARKDOWN;
			else if (strcmp(val, "json") == 0)
				a->format = TP_RENDER_JSON;
			else
				return tp_error_set(TP_EUSAGE,
						    "unknown format \"%s\" (text, markdown or json)",
						    val);
		} else if (strcmp(arg, "--repo") == 0 || strcmp(arg, "--rev") == 0 ||
			   strcmp(arg, "--base") == 0 || strcmp(arg, "--path") == 0) {
			const char **dst = arg[2] == 'r' && arg[3] == 'e' && arg[4] == 'p' ? &a->repo
					   : arg[2] == 'r' ? &a->rev
					   : arg[2] == 'b' ? &a->base : &a->path;
			if (++i >= argc)
				return tp_error_set(TP_EUSAGE, "%s needs a value", arg);
			*dst = argv[i];
		} else if (strcmp(arg, "--detailed-exitcode") == 0) {
			a->detailed_exitcode = true;
		} else if (strcmp(arg, "--allow-mass-delete") == 0) {
			a->allow_mass_delete = true;
		} else if (strcmp(arg, "--refresh") == 0) {
			a->refresh = true;
		} else if (strcmp(arg, "--refresh-schemas") == 0) {
			a->refresh = true;
			a->refresh_schemas = true;
		} else if (arg[0] == '-') {
			return tp_error_set(TP_EUSAGE, "unknown option %s", arg);
		} else if (!a->dir) {
			a->dir = arg;
		} else {
			return tp_error_set(TP_EUSAGE, "plan takes one directory");
		}
	}
	if (a->repo && a->dir)
		return tp_error_set(TP_EUSAGE, "give either a directory or --repo, not both");
	if (!a->repo && (a->rev || a->base || a->path))
		return tp_error_set(TP_EUSAGE, "--rev, --base and --path need --repo");
	if (!a->dir)
		a->dir = ".";
	if (!a->state_path && !a->base)
		return tp_error_set(TP_EUSAGE, "--state FILE is required (a missing file means "
					       "nothing is managed yet), or --base REV to plan a "
					       "change against its base revision");
	return 0;
}

static bool use_color(void)
{
	const char *nc = getenv("NO_COLOR");
	return isatty(STDOUT_FILENO) && !(nc && nc[0]);
}

int tp_cmd_plan(int argc, char **argv)
{
	plan_args a;
	tp_source *src = NULL;
	char *mirror = NULL;
	tp_tree *tree = NULL, *base_tree = NULL;
	tp_pipeline *base_pipeline = NULL;
	tp_pipeline *p = NULL;
	tp_diags diags = {0};
	tp_state *st = NULL;
	tp_state_resources recorded = {0};
	tp_plan *plan = NULL;
	tp_plan_options opts = {0};
	tp_strlist unreadable = {0};
	json_t *hashes = NULL;
	tp_buf out;
	int rc;

	tp_buf_init(&out, TP_BUF_DEFAULT_MAX);
	if ((rc = parse_args(&a, argc, argv)) < 0)
		goto done;
	if (a.repo) {
		if ((rc = tp_cli_repo_open(&src, &mirror, a.repo, a.path)) < 0)
			goto done;
		if ((rc = tp_cli_repo_load(&tree, &base_pipeline, NULL, src, a.rev, "--rev", NULL)) < 0)
			goto done;
		tp_pipeline_free(base_pipeline); /* only the tree was asked for */
		base_pipeline = NULL;
		if (a.base) {
			rc = tp_cli_repo_load(&base_tree, &base_pipeline, NULL, src, a.base, "--base", &diags);
			if (rc == TP_EINVALID) {
				tp_diags_print(&diags, stderr);
				tp_error_set(rc, "the base revision %s is not valid; plan against "
						 "--state instead", a.base);
				goto done;
			}
			if (rc < 0)
				goto done;
		}
	} else if ((rc = tp_tree_fs_open(&tree, a.dir)) < 0) {
		goto done;
	}
	if ((rc = tp_cli_pipeline_load(&p, tree, &diags, "planned")) < 0)
		goto done;

	rc = a.state_path ? tp_state_open(&st, a.state_path, TP_STATE_READONLY) : TP_ENOTFOUND;
	if (rc == TP_ENOTFOUND) {
		rc = 0; /* no state yet (missing or empty file): everything is new */
	} else if (rc < 0) {
		goto done;
	} else if ((rc = tp_state_resources_list(&recorded, st)) < 0) {
		goto done;
	}

	if (a.refresh && st && recorded.len) {
		/* observe live state; the state file is still never written */
		tp_engine_opts eo = {0};
		tp_strlist unobserved = {0};
		eo.pipeline = p;
		eo.tree = tree;
		eo.state = st;
		eo.trigger = "plan";
		eo.refresh_schemas = a.refresh_schemas;
		rc = tp_engine_refresh(&eo, &recorded, false, &unobserved);
		for (size_t i = 0; i < unobserved.len; i++)
			fprintf(stderr, "Warning: %s cannot observe live state yet: its drift is not "
					"checked\n", unobserved.items[i]);
		tp_strlist_free(&unobserved);
		if (rc < 0)
			goto done;
		/* with credentials at hand, rotated secrets show up too */
		if ((rc = tp_engine_secret_hashes(&hashes, &eo, &recorded, &unreadable)) < 0)
			goto done;
		for (size_t i = 0; i < unreadable.len; i++)
			fprintf(stderr, "Warning: %s: whether it changed is unknown\n",
				unreadable.items[i]);
		opts.secret_hashes = hashes;
	}

	if (base_pipeline) {
		/* what the base revision would have produced: the reviewer sees only the change */
		tp_state_resources synthetic = {0};
		tp_plan_synthetic_state(&synthetic, base_pipeline, &recorded);
		tp_state_resources_free(&recorded);
		recorded = synthetic;
		opts.symbolic_refs = true;
	}
	opts.self_heal = p->settings.self_heal;
	opts.max_prune_percent = p->settings.max_prune_percent;
	opts.allow_mass_delete = a.allow_mass_delete;
	if ((rc = tp_plan_build(&plan, p, &recorded, &opts)) < 0)
		goto done;
	if (a.refresh && st && !base_pipeline) {
		/* providers' own previews of updates (CloudFormation change sets) */
		tp_engine_opts eo = {0};
		eo.pipeline = p;
		eo.tree = tree;
		eo.state = st;
		eo.trigger = "plan";
		eo.refresh_schemas = a.refresh_schemas;
		tp_engine_plan_details(&eo, plan, &recorded);
	}
	if ((rc = tp_plan_render(&out, plan, a.format,
				 a.format == TP_RENDER_TEXT && use_color())) < 0)
		goto done;
	fwrite(out.ptr ? out.ptr : "", 1, out.len, stdout);
	fflush(stdout);
	if (plan->errors.len) {
		rc = tp_error_set(TP_EINVALID, "the plan violates %zu lifecycle rule%s (see above)",
				  plan->errors.len, plan->errors.len == 1 ? "" : "s");
		goto done;
	}
	rc = a.detailed_exitcode && tp_plan_has_changes(plan) ? TP_EXIT_CHANGES : 0;
done:
	tp_tree_free(base_tree);
	tp_pipeline_free(base_pipeline);
	tp_cli_repo_close(src, mirror);
	json_decref(hashes);
	tp_strlist_free(&unreadable);
	tp_buf_free(&out);
	tp_plan_free(plan);
	tp_state_resources_free(&recorded);
	tp_state_close(st);
	tp_pipeline_free(p);
	tp_diags_free(&diags);
	tp_tree_free(tree);
	return rc;
}
