/*
 * `tapestry apply DIR --state FILE`: the one-shot form of a reconcile. Takes the state lock,
 * resolves what an interrupted run left pending, observes live state, plans, shows the plan,
 * asks for confirmation on a terminal (unless --auto-approve), and applies it with the engine.
 */
#include "controller.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct {
	const char *dir;
	const char *repo;
	const char *rev;
	const char *path;
	const char *state_path;
	bool auto_approve;
	bool allow_mass_delete;
	bool refresh;
	bool refresh_schemas;
	int concurrency;
} apply_args;

static int parse_args(apply_args *a, int argc, char **argv)
{
	memset(a, 0, sizeof(*a));
	a->refresh = true;
	for (int i = 1; i < argc; i++) {
		const char *arg = argv[i];
		if (strcmp(arg, "--state") == 0) {
			if (++i >= argc)
				return tp_error_set(TP_EUSAGE, "--state needs a file");
			a->state_path = argv[i];
		} else if (strncmp(arg, "--state=", 8) == 0) {
			a->state_path = arg + 8;
		} else if (strcmp(arg, "--repo") == 0 || strcmp(arg, "--rev") == 0 ||
			   strcmp(arg, "--path") == 0) {
			const char **dst = strcmp(arg, "--repo") == 0  ? &a->repo
					   : strcmp(arg, "--rev") == 0 ? &a->rev
								       : &a->path;
			if (++i >= argc)
				return tp_error_set(TP_EUSAGE, "%s needs a value", arg);
			*dst = argv[i];
		} else if (strcmp(arg, "--auto-approve") == 0) {
			a->auto_approve = true;
		} else if (strcmp(arg, "--allow-mass-delete") == 0) {
			a->allow_mass_delete = true;
		} else if (strcmp(arg, "--refresh-schemas") == 0) {
			a->refresh_schemas = true;
		} else if (strcmp(arg, "--refresh=false") == 0 || strcmp(arg, "--no-refresh") == 0) {
			a->refresh = false;
		} else if (strncmp(arg, "--concurrency=", 14) == 0) {
			a->concurrency = atoi(arg + 14);
			if (a->concurrency < 1 || a->concurrency > 256)
				return tp_error_set(TP_EUSAGE, "--concurrency takes 1 to 256");
		} else if (arg[0] == '-') {
			return tp_error_set(TP_EUSAGE, "unknown option %s", arg);
		} else if (!a->dir) {
			a->dir = arg;
		} else {
			return tp_error_set(TP_EUSAGE, "apply takes one directory");
		}
	}
	if (a->repo && a->dir)
		return tp_error_set(TP_EUSAGE, "give either a directory or --repo, not both");
	if (!a->repo && (a->rev || a->path))
		return tp_error_set(TP_EUSAGE, "--rev and --path need --repo");
	if (!a->dir)
		a->dir = ".";
	if (!a->state_path)
		return tp_error_set(TP_EUSAGE, "--state FILE is required");
	return 0;
}

static const char *verb(const char *action, bool done)
{
	if (strcmp(action, "create") == 0)
		return done ? "Creation complete" : "Creating...";
	if (strcmp(action, "update") == 0)
		return done ? "Modifications complete" : "Modifying...";
	if (strcmp(action, "replace") == 0)
		return done ? "Replacement complete" : "Replacing...";
	if (strcmp(action, "delete") == 0)
		return done ? "Destruction complete" : "Destroying...";
	if (strcmp(action, "forget") == 0)
		return done ? "Forgotten (the object is kept)" : "Forgetting...";
	return action;
}

static void on_progress(void *ctx, const char *address, const char *action, const char *phase,
			const char *detail)
{
	(void)ctx;
	if (strcmp(phase, "start") == 0)
		printf("%s: %s\n", address, verb(action, false));
	else if (strcmp(phase, "done") == 0)
		printf("%s: %s %s\n", address, verb(action, true), detail ? detail : "");
	else if (strcmp(phase, "failed") == 0)
		printf("%s: Error: %s\n", address, detail ? detail : "failed");
	else if (strcmp(phase, "skipped") == 0)
		printf("%s: Skipped: %s\n", address, detail ? detail : "");
	else if (strcmp(phase, "unchanged") == 0)
		printf("%s: Unchanged once its references resolved: nothing sent\n", address);
	else if (strcmp(phase, "retry") == 0)
		printf("%s: Still trying: %s\n", address, detail ? detail : "");
	fflush(stdout);
}

static bool confirm(void)
{
	char line[16] = {0};
	fputs("\nDo you want to perform these actions?\n  Only 'yes' will be accepted to "
	      "approve.\n\n  Enter a value: ", stdout);
	fflush(stdout);
	if (!fgets(line, sizeof(line), stdin))
		return false;
	line[strcspn(line, "\r\n")] = '\0';
	return strcmp(line, "yes") == 0;
}

int tp_cmd_apply(int argc, char **argv)
{
	apply_args a;
	tp_source *src = NULL;
	char *mirror = NULL;
	char commit[41] = "";
	tp_tree *tree = NULL;
	tp_pipeline *p = NULL;
	tp_diags diags = {0};
	tp_state *st = NULL;
	tp_state_resources recorded = {0};
	tp_plan *plan = NULL;
	tp_plan_options popts = {0};
	tp_engine_opts eo = {0};
	tp_engine_summary sum;
	tp_strlist unobserved = {0};
	tp_buf out;
	char *owner = NULL;
	json_t *hashes = NULL;
	tp_state_retention keep = TP_STATE_RETENTION_DEFAULT;
	bool locked = false;
	int rc;

	tp_buf_init(&out, TP_BUF_DEFAULT_MAX);
	if ((rc = parse_args(&a, argc, argv)) < 0)
		goto done;
	if (a.repo) {
		if ((rc = tp_cli_repo_open(&src, &mirror, a.repo, a.path)) < 0 ||
		    (rc = tp_cli_repo_load(&tree, &p, commit, src, a.rev, "--rev", NULL)) < 0)
			goto done;
	} else if ((rc = tp_tree_fs_open(&tree, a.dir)) < 0) {
		goto done;
	}
	if ((rc = tp_cli_pipeline_load(&p, tree, &diags, "applied")) < 0)
		goto done;
	if ((rc = tp_state_open(&st, a.state_path, TP_STATE_READWRITE)) < 0)
		goto done;
	owner = tp_lock_owner("tapestry apply");
	if ((rc = tp_lock_take(st, owner, 3600 * 1000)) < 0)
		goto done;
	locked = true;

	eo.pipeline = p;
	eo.tree = tree;
	eo.state = st;
	eo.trigger = "cli";
	eo.refresh_schemas = a.refresh_schemas;
	eo.revision = commit[0] ? commit : NULL;
	eo.concurrency = a.concurrency;
	eo.progress = on_progress;
	if ((rc = tp_engine_recover(&eo)) < 0)
		goto done;
	/* history past the default limits goes, as after each sync of `tapestry run` */
	if (tp_state_prune(NULL, st, &keep) < 0)
		fprintf(stderr, "Warning: %s\n", tp_error_last());
	if ((rc = tp_state_resources_list(&recorded, st)) < 0)
		goto done;
	if (a.refresh && recorded.len) {
		if ((rc = tp_engine_refresh(&eo, &recorded, true, &unobserved)) < 0)
			goto done;
		for (size_t i = 0; i < unobserved.len; i++)
			fprintf(stderr, "Warning: %s cannot observe live state yet: its drift is not "
					"checked\n", unobserved.items[i]);
	}

	{
		tp_strlist errs = {0};
		rc = tp_engine_secret_hashes(&hashes, &eo, &recorded, &errs);
		if (rc == 0 && errs.len) {
			for (size_t i = 0; i < errs.len; i++)
				fprintf(stderr, "Error: %s\n", errs.items[i]);
			rc = tp_error_set(TP_EINVALID, "%zu secret%s cannot be read; nothing was "
						       "applied", errs.len, errs.len == 1 ? "" : "s");
		}
		tp_strlist_free(&errs);
		if (rc < 0)
			goto done;
	}
	popts.secret_hashes = hashes;
	popts.self_heal = p->settings.self_heal; /* the same plan `tapestry plan` shows */
	popts.max_prune_percent = p->settings.max_prune_percent;
	popts.allow_mass_delete = a.allow_mass_delete;
	if ((rc = tp_plan_build(&plan, p, &recorded, &popts)) < 0)
		goto done;
	if ((rc = tp_plan_render(&out, plan, TP_RENDER_TEXT,
				 isatty(STDOUT_FILENO) && !getenv("NO_COLOR"))) < 0)
		goto done;
	fwrite(out.ptr ? out.ptr : "", 1, out.len, stdout);
	if (plan->errors.len) {
		rc = tp_error_set(TP_EINVALID, "nothing was applied: the plan violates %zu "
					       "lifecycle rule%s", plan->errors.len,
				  plan->errors.len == 1 ? "" : "s");
		goto done;
	}
	if (!tp_plan_has_changes(plan)) {
		rc = 0;
		goto done;
	}
	if (!a.auto_approve) {
		if (!isatty(STDIN_FILENO)) {
			rc = tp_error_set(TP_EINVALID, "refusing to apply without confirmation: "
						       "stdin is not a terminal (use --auto-approve)");
			goto done;
		}
		if (!confirm()) {
			rc = tp_error_set(TP_EINVALID, "apply cancelled");
			goto done;
		}
	}
	putchar('\n');
	rc = tp_engine_apply(&sum, &eo, plan);
	if (rc == 0 || sum.run_id) {
		printf("\n%s Resources: %zu added, %zu changed, %zu destroyed", rc == 0 ?
		       "Apply complete!" : "Apply failed.", sum.created + sum.replaced, sum.updated,
		       sum.deleted + sum.replaced);
		if (sum.forgotten)
			printf(", %zu forgotten", sum.forgotten);
		if (sum.failed || sum.skipped)
			printf("; %zu failed, %zu skipped", sum.failed, sum.skipped);
		puts(".");
	}
done:
	json_decref(hashes);
	if (locked)
		tp_state_lock_release(st, owner);
	free(owner);
	tp_strlist_free(&unobserved);
	tp_buf_free(&out);
	tp_plan_free(plan);
	tp_state_resources_free(&recorded);
	tp_state_close(st);
	tp_pipeline_free(p);
	tp_diags_free(&diags);
	tp_tree_free(tree);
	tp_cli_repo_close(src, mirror);
	return rc;
}
