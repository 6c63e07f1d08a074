/*
 * `tapestry init`: the embedded skeleton (valid, planned, committed on main), the kickstart
 * example found through TAPESTRY_EXAMPLES, through <prefix>/share/tapestry/examples next to
 * an installed binary, and in the source tree; refusals that leave the disk as it was; no
 * nested repository inside an existing work tree; no commit without a Git identity.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "support/support.h"
#include "util/util.h"

static char *tmp;

static void setup(void)
{
	ts_git_env();
	tmp = ts_tmpdir();
	unsetenv("TAPESTRY_EXAMPLES");
}

static void teardown(void)
{
	ts_rmtree(tmp);
	free(tmp);
}

TestSuite(init, .init = setup, .fini = teardown);

static bool exists(const char *dir, const char *rel)
{
	char *p = tp_sprintf("%s/%s", dir, rel);
	struct stat st;
	bool ok = lstat(p, &st) == 0;
	free(p);
	return ok;
}

/* Asserts every file under want_dir exists under got_dir with the same bytes; returns the
 * number of files compared. */
static size_t expect_same_tree(const char *want_dir, const char *got_dir)
{
	DIR *d = opendir(want_dir);
	struct dirent *e;
	size_t n = 0;
	cr_assert_not_null(d, "%s: %s", want_dir, strerror(errno));
	while ((e = readdir(d)) != NULL) {
		char *w, *g;
		struct stat st;
		if (e->d_name[0] == '.')
			continue;
		w = tp_sprintf("%s/%s", want_dir, e->d_name);
		g = tp_sprintf("%s/%s", got_dir, e->d_name);
		cr_assert_eq(stat(w, &st), 0);
		if (S_ISDIR(st.st_mode)) {
			n += expect_same_tree(w, g);
		} else {
			char *a = ts_read(w), *b = ts_read(g);
			cr_assert_not_null(b, "%s was not copied", g);
			cr_assert_str_eq(a, b, "%s differs from %s", g, w);
			free(a);
			free(b);
			n++;
		}
		free(w);
		free(g);
	}
	closedir(d);
	return n;
}

Test(init, skeleton_is_valid_planned_and_committed)
{
	char *dir = tp_sprintf("%s/acme-data.pipeline", tmp);
	char *db = tp_sprintf("%s/state.db", tmp);
	const char *a1[] = {"init", dir, NULL};
	const char *a2[] = {"validate", dir, NULL};
	const char *a3[] = {"plan", dir, "--state", db, NULL};
	ts_result r = ts_run_tapestry(a1, NULL);
	char *yaml, *files, *branch, *log;
	cr_assert_eq(r.status, 0, "%s%s", r.out, r.err);
	cr_assert(strstr(r.out, "Created pipeline \"acme-data-pipeline\" in "), "%s", r.out);
	cr_assert(strstr(r.out, "Initialised a Git repository (branch main) and committed"),
		  "%s", r.out);
	cr_assert(strstr(r.out, "Next steps:\n  cd "), "%s", r.out);
	cr_assert(strstr(r.out, "tapestry validate"), "%s", r.out);
	cr_assert(strstr(r.out, "tapestry plan --state state.db"), "%s", r.out);
	cr_assert(strstr(r.out, "tapestry run --repo <URL> --branch main\n"), "%s", r.out);
	ts_result_free(&r);
	yaml = ts_read_in(dir, "tapestry.yaml");
	cr_assert(strstr(yaml, "\npipeline: acme-data-pipeline\n"), "%s", yaml);
	cr_assert(strstr(yaml, "#   snowflake:"), "providers are documented, commented: %s", yaml);
	free(yaml);
	/* the same loader as the controller accepts it, and the plan creates the one file */
	r = ts_run_tapestry(a2, NULL);
	cr_assert_eq(r.status, 0, "%s%s", r.out, r.err);
	cr_assert(strstr(r.out, "pipeline \"acme-data-pipeline\" is valid: 1 resource"), "%s",
		  r.out);
	ts_result_free(&r);
	r = ts_run_tapestry(a3, NULL);
	cr_assert_eq(r.status, 0, "%s%s", r.out, r.err);
	cr_assert(strstr(r.out, "local.file/hello will be created"), "%s", r.out);
	cr_assert(strstr(r.out, "/var/lib/tapestry/acme-data-pipeline-hello.txt"), "%s", r.out);
	cr_assert(strstr(r.out, "Plan: 1 to add, 0 to change, 0 to destroy."), "%s", r.out);
	ts_result_free(&r);
	/* one commit on main holding exactly the skeleton */
	branch = ts_git(dir, "symbolic-ref --short HEAD");
	cr_assert_str_eq(branch, "main");
	files = ts_git(dir, "ls-tree -r --name-only HEAD");
	cr_assert_str_eq(files, ".gitignore\nREADME.md\nresources/hello.yaml\ntapestry.yaml");
	log = ts_git(dir, "log --format=%%an%%n%%s");
	cr_assert_str_eq(log, "Ada Lovelace\nStart the pipeline (tapestry init)");
	free(log);
	free(files);
	free(branch);
	free(dir);
	free(db);
}

Test(init, kickstart_from_tapestry_examples)
{
	char *examples = ts_source_path("examples");
	char *env = tp_sprintf("TAPESTRY_EXAMPLES=%s", examples);
	char *dir = tp_sprintf("%s/rain", tmp);
	char *src = tp_sprintf("%s/kickstart", examples);
	const char *a1[] = {"init", dir, "--kickstart", NULL};
	const char *a2[] = {"validate", dir, NULL};
	const char *envs[] = {env, NULL};
	ts_result r = ts_run_tapestry(a1, envs);
	size_t n;
	char *files;
	cr_assert_eq(r.status, 0, "%s%s", r.out, r.err);
	cr_assert(strstr(r.out, "Created pipeline \"rainshield\""), "%s", r.out);
	cr_assert(strstr(r.out, src), "names where it copied from: %s", r.out);
	cr_assert(strstr(r.out, "README.md (Secrets)"), "%s", r.out);
	ts_result_free(&r);
	n = expect_same_tree(src, dir);
	cr_assert_geq(n, 10);
	r = ts_run_tapestry(a2, NULL);
	cr_assert_eq(r.status, 0, "%s%s", r.out, r.err);
	cr_assert(strstr(r.out, "pipeline \"rainshield\" is valid: 67 resources"), "%s", r.out);
	ts_result_free(&r);
	files = ts_git(dir, "ls-files");
	cr_assert(strstr(files, "templates/grouparoo.yaml"), "%s", files);
	cr_assert(strstr(files, "models/email_model.sql"), "%s", files);
	free(files);
	free(examples);
	free(env);
	free(dir);
	free(src);
}

/* Runs `bin args...` with cwd; returns the exit status; output in *out. */
static int run_binary(const char *bin, const char *cwd, const char *args, char **out)
{
	char *cmd = tp_sprintf("cd '%s' && env -u TAPESTRY_EXAMPLES '%s' %s 2>&1", cwd, bin, args);
	FILE *p = popen(cmd, "r");
	tp_buf b;
	char chunk[4096];
	size_t n;
	int st;
	cr_assert_not_null(p);
	tp_buf_init(&b, 0);
	while ((n = fread(chunk, 1, sizeof(chunk), p)) > 0)
		tp_buf_put(&b, chunk, n);
	st = pclose(p);
	*out = tp_buf_detach(&b);
	free(cmd);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

Test(init, kickstart_next_to_an_installed_binary)
{
	/* an installation: <prefix>/bin/tapestry and <prefix>/share/tapestry/examples/kickstart,
	 * the example marked so the test can tell which copy was used */
	char *prefix = tp_sprintf("%s/prefix", tmp);
	char *bin = tp_sprintf("%s/bin/tapestry", prefix);
	char *cmd = tp_sprintf("mkdir -p '%s/bin' '%s/share/tapestry/examples' && cp '%s' '%s' && "
			       "cp -R '%s/examples/kickstart' '%s/share/tapestry/examples/' && "
			       "sed -i 's/^pipeline: rainshield$/pipeline: installed-copy/' "
			       "'%s/share/tapestry/examples/kickstart/tapestry.yaml'",
			       prefix, prefix, TP_BINARY, bin, TP_SOURCE_DIR, prefix, prefix);
	char *out = NULL;
	cr_assert_eq(system(cmd), 0, "%s", cmd);
	cr_assert_eq(run_binary(bin, tmp, "init from-prefix --kickstart", &out), 0, "%s", out);
	cr_assert(strstr(out, "Created pipeline \"installed-copy\" in from-prefix"), "%s", out);
	cr_assert(strstr(out, "/share/tapestry/examples/kickstart"), "%s", out);
	free(out);
	/* without an installed copy, the build falls back on the source tree it came from */
	cr_assert_eq(run_binary(TP_BINARY, tmp, "init from-source --kickstart", &out), 0, "%s",
		     out);
	cr_assert(strstr(out, "Created pipeline \"rainshield\" in from-source"), "%s", out);
	cr_assert(strstr(out, TP_SOURCE_DIR "/examples/kickstart"), "%s", out);
	free(out);
	free(cmd);
	free(bin);
	free(prefix);
}

Test(init, refusals_change_nothing)
{
	char *full = tp_sprintf("%s/full", tmp);
	char *before, *after;
	const char *a1[] = {"init", full, NULL};
	const char *a2[] = {"init", full, "--kickstart", NULL};
	const char *a3[] = {"init", NULL};
	const char *a4[] = {"init", full, "--name", "has space", NULL};
	const char *a5[] = {"init", full, "--frobnicate", NULL};
	const char *bad_env[] = {"TAPESTRY_EXAMPLES=/nonexistent/examples", NULL};
	char *fresh = tp_sprintf("%s/fresh", tmp);
	const char *a6[] = {"init", fresh, "--kickstart", NULL};
	ts_result r;
	ts_write(full, "notes.txt", "mine\n");
	before = ts_snapshot(tmp);
	r = ts_run_tapestry(a1, NULL);
	cr_assert_eq(r.status, 1);
	cr_assert(strstr(r.err, "is not empty (it holds notes.txt)"), "%s", r.err);
	ts_result_free(&r);
	r = ts_run_tapestry(a2, NULL);
	cr_assert_eq(r.status, 1);
	ts_result_free(&r);
	r = ts_run_tapestry(a3, NULL);
	cr_assert_eq(r.status, 64, "%s", r.err);
	cr_assert(strstr(r.err, "Usage: tapestry init DIR"), "%s", r.err);
	ts_result_free(&r);
	r = ts_run_tapestry(a4, NULL);
	cr_assert_eq(r.status, 64);
	ts_result_free(&r);
	r = ts_run_tapestry(a5, NULL);
	cr_assert_eq(r.status, 64);
	ts_result_free(&r);
	/* an examples directory that is not there: a clear error, and no directory made */
	r = ts_run_tapestry(a6, bad_env);
	cr_assert_eq(r.status, 1);
	cr_assert(strstr(r.err, "TAPESTRY_EXAMPLES is /nonexistent/examples, but "
				"/nonexistent/examples/kickstart/tapestry.yaml does not exist"),
		  "%s", r.err);
	ts_result_free(&r);
	after = ts_snapshot(tmp);
	cr_assert_str_eq(before, after, "a refused init changed the disk");
	free(before);
	free(after);
	free(full);
	free(fresh);
}

Test(init, inside_an_existing_repository_and_without_git)
{
	char *mono = tp_sprintf("%s/mono", tmp);
	char *sub = tp_sprintf("%s/pipelines/sales", mono);
	char *plain = tp_sprintf("%s/plain", tmp);
	char *out = NULL;
	const char *a2[] = {"init", plain, "--no-git", "--name", "plain_one", NULL};
	ts_result r;
	free(ts_git(tmp, "init -q mono"));
	cr_assert_eq(run_binary(TP_BINARY, mono, "init pipelines/sales", &out), 0, "%s", out);
	cr_assert(strstr(out, "is inside the Git repository"), "%s", out);
	cr_assert(strstr(out, "--path pipelines/sales\n"), "%s", out);
	cr_assert(!exists(sub, ".git"), "a nested repository was created");
	cr_assert(exists(sub, "tapestry.yaml"));
	free(out);
	r = ts_run_tapestry(a2, NULL);
	cr_assert_eq(r.status, 0, "%s%s", r.out, r.err);
	cr_assert(!exists(plain, ".git"));
	cr_assert(strstr(r.out, "Created pipeline \"plain_one\""), "%s", r.out);
	ts_result_free(&r);
	free(mono);
	free(sub);
	free(plain);
}

Test(init, no_identity_means_no_commit)
{
	char *dir = tp_sprintf("%s/anon", tmp);
	char *home = tp_sprintf("HOME=%s", tmp);
	char *xdg = tp_sprintf("XDG_CONFIG_HOME=%s", tmp);
	const char *args[] = {"init", dir, NULL};
	const char *env[] = {home, xdg, "GIT_AUTHOR_NAME=", "GIT_AUTHOR_EMAIL=", NULL};
	ts_result r;
	{
		/* libgit2 also reads the system configuration, which the test cannot move */
		char *sys = ts_read("/etc/gitconfig");
		bool has_identity = sys && strstr(sys, "email");
		free(sys);
		if (has_identity)
			cr_skip_test("/etc/gitconfig sets a Git identity on this machine");
	}
	r = ts_run_tapestry(args, env);
	cr_assert_eq(r.status, 0, "%s%s", r.out, r.err);
	cr_assert(strstr(r.out, "no Git identity is configured, so nothing is committed yet"),
		  "%s", r.out);
	cr_assert(strstr(r.out, "git add -A && git commit"), "%s", r.out);
	cr_assert(exists(dir, ".git/HEAD"));
	ts_result_free(&r);
	free(dir);
	free(home);
	free(xdg);
}
