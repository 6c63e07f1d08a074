/*
 * Command-line access to a pipeline in a Git repository (`plan --repo`, `apply --repo`): a
 * local repository is read in place, so a CI checkout's detached commits resolve; a URL is
 * fetched into a temporary mirror that is removed afterwards.
 */
#include "controller.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* A repository to plan from: a local one is read in place (a CI checkout, detached PR
 * commits included); a URL is fetched into a temporary mirror. */
int tp_cli_repo_open(tp_source **out, char **mirror, const char *repo, const char *path)
{
	struct stat st;
	tp_source_opts so = {0};
	char tmpl[] = "/tmp/tapestry-plan-XXXXXX";
	int rc;
	*mirror = NULL;
	if (stat(repo, &st) == 0 && S_ISDIR(st.st_mode))
		return tp_source_open_local(out, repo, path);
	if (!mkdtemp(tmpl))
		return tp_error_set(TP_EIO, "cannot create a temporary mirror directory");
	*mirror = tp_strdup(tmpl);
	so.url = repo;
	so.path = path;
	so.mirror_dir = tmpl;
	if ((rc = tp_source_open(out, &so)) < 0)
		return rc;
	return tp_source_fetch(*out);
}

int tp_cli_repo_load(tp_tree **tree, tp_pipeline **p, char *commit_out, tp_source *src,
		     const char *rev, const char *what, tp_diags *diags)
{
	char commit[41];
	int rc;
	*tree = NULL;
	*p = NULL;
	if ((rc = tp_source_resolve(commit, src, rev)) < 0) {
		char *m = tp_strdup(tp_error_last());
		rc = tp_error_set(rc, "%s %s: %s", what, rev ? rev : "(default)", m);
		free(m);
		return rc;
	}
	if (commit_out)
		memcpy(commit_out, commit, sizeof(commit));
	if ((rc = tp_source_tree(tree, src, commit)) < 0)
		return rc;
	if (diags)
		rc = tp_pipeline_load(p, *tree, diags);
	return rc;
}

void tp_cli_repo_close(tp_source *src, char *mirror)
{
	tp_source_free(src);
	if (mirror) {
		char *cmd = tp_sprintf("rm -rf '%s'", mirror);
		if (system(cmd) != 0)
			tp_log_warn("could not remove %s", mirror);
		free(cmd);
		free(mirror);
	}
}

int tp_cli_pipeline_load(tp_pipeline **out, tp_tree *tree, tp_diags *diags, const char *what)
{
	int rc = tp_pipeline_load(out, tree, diags);
	if (rc == TP_EINVALID) {
		size_t n = diags->len + diags->dropped;
		tp_diags_print(diags, stderr);
		tp_error_set(rc, "%s is not valid: %zu error%s; nothing was %s", tree->root, n,
			     n == 1 ? "" : "s", what);
	}
	return rc;
}
