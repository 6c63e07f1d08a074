/*
 * controller/source.c against real Git repositories made with the git command line: a bare
 * mirror fetched over file://, a plain local path and a local `git daemon` (git://); revision
 * resolution; the pipeline loader reading straight from the object database; tree ids that
 * tell whether a commit touched the pipeline path; new commits, force-pushes, moved tags and
 * deleted branches followed after a fetch; symlinks, submodules and oversized blobs refused;
 * and the failure paths that need a misbehaving server (a fake one that keeps asking for
 * credentials, and one that trickles progress forever) for the auth bound and the timeout.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "controller/controller.h"
#include "support/support.h"

#define PIPELINE "pipelines/rainshield"

static char *tmp;     /* everything lives here */
static char *origin;  /* a non-bare repository playing the remote */
static char *mirror;  /* where tp_source keeps its bare mirror */
static char *origin_url;
static tp_source *src;
static pid_t daemon_pid = -1;

/* ---------------------------------------------------------------- running git */

#define git(...) free(ts_git(origin, __VA_ARGS__))

static void commit_all(const char *message)
{
	git("add -A");
	git("commit -q -m '%s'", message);
}

static char *rev_parse(const char *rev)
{
	return ts_git(origin, "rev-parse '%s'", rev);
}

/* origin: a pipeline under pipelines/rainshield plus a file outside it; one commit, tag v1 */
static void make_origin(void)
{
	free(ts_git(tmp, "init -q origin"));
	ts_write(origin, "README.md", "# infra\n");
	ts_write(origin, PIPELINE "/tapestry.yaml", "pipeline: rainshield\n");
	ts_write(origin, PIPELINE "/resources/files.yaml",
		 "kind: local.file\nname: a\nspec: {path: /srv/a, content: hi}\n---\n"
		 "kind: local.file\nname: b\nspec: {path: /srv/b, source: files/b.txt}\n");
	ts_write(origin, PIPELINE "/files/b.txt", "from git\n");
	commit_all("first");
	git("tag v1");
}

static void setup(void)
{
	ts_git_env(); /* fixed names and dates: commit_info's author and time are asserted */
	tmp = ts_tmpdir();
	origin = tp_sprintf("%s/origin", tmp);
	mirror = tp_sprintf("%s/state/mirror.git", tmp);
	origin_url = tp_sprintf("file://%s", origin);
	make_origin();
}

static void stop_daemon(void)
{
	ts_stop_pid(daemon_pid);
	daemon_pid = -1;
}

static void teardown(void)
{
	tp_source_free(src);
	src = NULL;
	stop_daemon();
	ts_rmtree(tmp);
	free(tmp);
	free(origin);
	free(mirror);
	free(origin_url);
}

TestSuite(source, .init = setup, .fini = teardown, .timeout = 30);

/* ---------------------------------------------------------------- helpers */

static tp_source *open_url(const char *url)
{
	tp_source *s = NULL;
	tp_source_opts o = {.url = url, .branch = "main", .path = PIPELINE "/",
			    .mirror_dir = mirror};
	int rc = tp_source_open(&s, &o);
	cr_assert_eq(rc, 0, "open %s: %s", url, tp_error_last());
	return s;
}

static tp_source *open_fetched(void)
{
	tp_source *s = open_url(origin_url);
	int rc = tp_source_fetch(s);
	cr_assert_eq(rc, 0, "fetch: %s", tp_error_last());
	return s;
}

static void assert_resolves(tp_source *s, const char *rev, const char *want)
{
	char got[41];
	int rc = tp_source_resolve(got, s, rev);
	cr_assert_eq(rc, 0, "resolve %s: %s", rev ? rev : "(null)", tp_error_last());
	cr_assert_str_eq(got, want, "resolve %s", rev ? rev : "(null)");
}

static tp_tree *tree_at(tp_source *s, const char *commit)
{
	tp_tree *t = NULL;
	int rc = tp_source_tree(&t, s, commit);
	cr_assert_eq(rc, 0, "tree at %s: %s", commit, tp_error_last());
	return t;
}

static char *path_tree_id(tp_source *s, const char *commit)
{
	tp_commit_info ci;
	char *id;
	int rc = tp_source_commit_info(&ci, s, commit);
	cr_assert_eq(rc, 0, "commit info %s: %s", commit, tp_error_last());
	id = tp_strdup(ci.tree);
	tp_commit_info_clear(&ci);
	return id;
}

/* ---------------------------------------------------------------- open, fetch, resolve */

Test(source, open_fetch_and_resolve_branches_tags_and_ids)
{
	char *c1 = rev_parse("main"), *c2, *shortid;
	char got[41];
	int rc;

	git("tag -a v2 -m release");
	ts_write(origin, "README.md", "# infra, v2\n");
	commit_all("second");
	c2 = rev_parse("main");
	src = open_fetched();

	assert_resolves(src, "main", c2);
	assert_resolves(src, NULL, c2);         /* the configured branch */
	assert_resolves(src, "origin/main", c2);
	assert_resolves(src, "HEAD", c2);       /* HEAD follows the branch in the mirror */
	assert_resolves(src, "HEAD~1", c1);
	assert_resolves(src, "main~1", c1);
	assert_resolves(src, "main^", c1);
	assert_resolves(src, "v1", c1);         /* lightweight tag */
	assert_resolves(src, "v2", c1);         /* annotated tag, peeled to its commit */
	assert_resolves(src, "refs/tags/v2", c1);
	assert_resolves(src, c2, c2);
	shortid = tp_strndup(c1, 8);
	assert_resolves(src, shortid, c1);

	rc = tp_source_resolve(got, src, "no-such-branch");
	cr_assert_eq(rc, TP_ENOTFOUND, "%s", tp_error_name(rc));
	cr_assert(strstr(tp_error_last(), "\"no-such-branch\" not found"), "%s", tp_error_last());
	cr_assert_str_eq(got, "");
	rc = tp_source_resolve(got, src, "0123456789abcdef0123456789abcdef01234567");
	cr_assert_eq(rc, TP_ENOTFOUND, "%s: %s", tp_error_name(rc), tp_error_last());
	rc = tp_source_resolve(got, src, "main:README.md");
	cr_assert_eq(rc, TP_EINVALID, "%s", tp_error_name(rc));
	cr_assert(strstr(tp_error_last(), "not a commit"), "%s", tp_error_last());

	free(c1);
	free(c2);
	free(shortid);
}

Test(source, resolve_before_fetch_is_not_found)
{
	char got[41];
	src = open_url(origin_url);
	cr_assert_eq(tp_source_resolve(got, src, "main"), TP_ENOTFOUND, "%s", tp_error_last());
}

Test(source, open_refuses_bad_options_and_foreign_directories)
{
	tp_source *s = NULL;
	tp_source_opts o = {.url = origin_url, .mirror_dir = mirror};
	char *junk = tp_sprintf("%s/junk", tmp);

	o.branch = "bad..name";
	cr_assert_eq(tp_source_open(&s, &o), TP_EINVALID);
	cr_assert(strstr(tp_error_last(), "bad..name"), "%s", tp_error_last());
	o.branch = NULL;
	o.path = "../outside";
	cr_assert_eq(tp_source_open(&s, &o), TP_EINVALID);
	cr_assert(strstr(tp_error_last(), "pipeline path"), "%s", tp_error_last());
	o.path = "/abs";
	cr_assert_eq(tp_source_open(&s, &o), TP_EINVALID);
	o.path = NULL;
	o.url = "";
	cr_assert_eq(tp_source_open(&s, &o), TP_EINVALID);
	o.url = origin_url;

	/* an existing directory that is not a bare repository is never taken over */
	ts_write(junk, "precious.txt", "do not touch\n");
	o.mirror_dir = junk;
	cr_assert_eq(tp_source_open(&s, &o), TP_EINVALID);
	cr_assert(strstr(tp_error_last(), "not a bare Git repository"), "%s", tp_error_last());
	o.mirror_dir = origin; /* a repository with a working tree is not a bare mirror either */
	cr_assert_eq(tp_source_open(&s, &o), TP_EINVALID, "%s", tp_error_last());
	cr_assert_null(s);
	free(junk);
}

Test(source, reopening_keeps_the_mirror_and_follows_a_changed_url)
{
	char *other = tp_sprintf("%s/other", tmp);
	char *c_origin = rev_parse("main"), *c_other;
	char got[41];

	src = open_fetched();
	assert_resolves(src, "main", c_origin);
	tp_source_free(src);

	/* same mirror, same URL: nothing to redo, refs still there before any fetch */
	src = open_url(origin_url);
	assert_resolves(src, "main", c_origin);
	tp_source_free(src);
	src = NULL;

	/* the repository moved: the mirror's origin follows, stale refs are pruned */
	free(ts_git(tmp, "init -q other"));
	ts_write(other, "x.txt", "other\n");
	free(ts_git(other, "add -A"));
	free(ts_git(other, "commit -q -m other"));
	free(ts_git(other, "branch -m main trunk"));
	c_other = ts_git(other, "rev-parse trunk");
	{
		tp_source_opts o = {.url = other, .branch = "trunk", .mirror_dir = mirror};
		cr_assert_eq(tp_source_open(&src, &o), 0, "%s", tp_error_last());
	}
	cr_assert_eq(tp_source_fetch(src), 0, "%s", tp_error_last());
	assert_resolves(src, "trunk", c_other);
	assert_resolves(src, "HEAD", c_other);
	cr_assert_eq(tp_source_resolve(got, src, "origin/main"), TP_ENOTFOUND);
	{
		char *url = ts_git(mirror, "config remote.origin.url");
		cr_assert_str_eq(url, other);
		free(url);
	}
	free(other);
	free(c_origin);
	free(c_other);
}

Test(source, fetch_reports_a_missing_branch)
{
	tp_source_opts o = {.url = origin_url, .branch = "mian", .mirror_dir = mirror};
	char got[41];
	cr_assert_eq(tp_source_open(&src, &o), 0, "%s", tp_error_last());
	cr_assert_eq(tp_source_fetch(src), TP_ENOTFOUND);
	cr_assert(strstr(tp_error_last(), "has no branch \"mian\""), "%s", tp_error_last());
	/* what was fetched is still there */
	cr_assert_eq(tp_source_resolve(got, src, "main"), 0, "%s", tp_error_last());
}

Test(source, plain_local_path_works_as_url)
{
	char *c1 = rev_parse("main");
	src = open_url(origin); /* "/tmp/.../origin", no scheme */
	cr_assert_eq(tp_source_fetch(src), 0, "%s", tp_error_last());
	assert_resolves(src, "main", c1);
	free(c1);
}

/* ---------------------------------------------------------------- the tree and the loader */

Test(source, pipeline_loads_from_the_object_database)
{
	char *c1 = rev_parse("main");
	tp_tree *t;
	tp_pipeline *p = NULL;
	tp_diags d = {0};
	tp_buf b;
	int rc;

	src = open_fetched();
	t = tree_at(src, c1);
	rc = tp_pipeline_load(&p, t, &d);
	if (rc != 0)
		tp_diags_print(&d, stderr);
	cr_assert_eq(rc, 0, "load: %s", tp_error_last());
	cr_assert_str_eq(p->name, "rainshield");
	cr_assert_eq(p->nresources, 2);
	cr_assert_not_null(tp_pipeline_find(p, "local.file/a"));
	cr_assert_not_null(tp_pipeline_find(p, "local.file/b"));
	cr_assert_str_eq(tp_json_get_str(tp_pipeline_find(p, "local.file/a")->spec, "content"),
			 "hi");

	/* the root names the remote, the commit and the path */
	{
		char *want = tp_sprintf("%s@%.12s:%s", origin_url, c1, PIPELINE);
		cr_assert_str_eq(t->root, want);
		free(want);
	}

	/* the tree owns its objects: it outlives the source */
	tp_source_free(src);
	src = NULL;
	tp_buf_init(&b, 0);
	cr_assert_eq(t->read(t, &b, "files/b.txt", 1024), 0, "%s", tp_error_last());
	cr_assert_str_eq(tp_buf_cstr(&b), "from git\n");
	cr_assert_eq(b.len, 9);

	tp_buf_free(&b);
	tp_pipeline_free(p);
	tp_diags_free(&d);
	tp_tree_free(t);
	free(c1);
}

Test(source, pipeline_errors_name_the_git_tree)
{
	char *c2;
	tp_tree *t;
	tp_pipeline *p = NULL;
	tp_diags d = {0};
	int rc;

	ts_write(origin, PIPELINE "/resources/bad.yaml",
		 "kind: local.file\nname: c\nspec: {path: /srv/c, content: x, colour: red}\n");
	commit_all("bad resource");
	c2 = rev_parse("main");
	src = open_fetched();
	t = tree_at(src, c2);
	rc = tp_pipeline_load(&p, t, &d);
	cr_assert_eq(rc, TP_EINVALID);
	cr_assert_null(p);
	cr_assert_geq(d.len, 1);
	cr_assert_str_eq(d.items[0].file, "resources/bad.yaml");
	cr_assert_eq(d.items[0].line, 3);
	cr_assert(strstr(tp_error_last(), t->root), "%s", tp_error_last());
	tp_diags_free(&d);
	tp_tree_free(t);
	free(c2);
}

Test(source, tree_read_and_list_errors)
{
	char *c1 = rev_parse("main"), *c2;
	char *link = tp_sprintf("%s/%s/resources/link.yaml", origin, PIPELINE);
	char *script = tp_sprintf("%s/%s/files/run.sh", origin, PIPELINE);
	char *yaml = tp_sprintf("%s/%s/resources/files.yaml", origin, PIPELINE);
	struct stat st;
	tp_strlist l = {0};
	tp_tree *t;
	tp_buf b;
	char *want;
	int rc;

	/* next to the resources: a symlink, a subdirectory and a submodule; an executable file */
	cr_assert_eq(symlink("../tapestry.yaml", link), 0, "symlink: %s", strerror(errno));
	ts_write(origin, PIPELINE "/resources/nested/deep.yaml", "kind: x\n");
	ts_write(origin, PIPELINE "/files/run.sh", "#!/bin/sh\n");
	cr_assert_eq(chmod(script, 0755), 0);
	git("add -A");
	git("update-index --add --cacheinfo 160000,%s,%s/resources/sub", c1, PIPELINE);
	git("commit -q -m 'odd entries'");
	c2 = rev_parse("main");
	src = open_fetched();
	t = tree_at(src, c2);
	tp_buf_init(&b, 0);

	/* list: regular and executable files only, sorted */
	cr_assert_eq(t->list(t, &l, "resources"), 0, "%s", tp_error_last());
	cr_assert_eq(l.len, 1);
	cr_assert_str_eq(l.items[0], "files.yaml");
	tp_strlist_free(&l);
	cr_assert_eq(t->list(t, &l, "files"), 0, "%s", tp_error_last());
	cr_assert_eq(l.len, 2);
	cr_assert_str_eq(l.items[0], "b.txt");
	cr_assert_str_eq(l.items[1], "run.sh");
	tp_strlist_free(&l);
	cr_assert_eq(t->list(t, &l, ""), 0, "%s", tp_error_last());
	cr_assert_eq(l.len, 1);
	cr_assert_str_eq(l.items[0], "tapestry.yaml");
	tp_strlist_free(&l);
	cr_assert_eq(t->list(t, &l, "nope"), TP_ENOTFOUND);
	cr_assert_eq(t->list(t, &l, "tapestry.yaml"), TP_EINVALID, "%s", tp_error_last());
	tp_strlist_free(&l);

	/* read */
	cr_assert_eq(t->read(t, &b, "files/run.sh", 100), 0, "%s", tp_error_last());
	cr_assert_str_eq(tp_buf_cstr(&b), "#!/bin/sh\n");
	rc = t->read(t, &b, "resources/missing.yaml", 100);
	cr_assert_eq(rc, TP_ENOTFOUND, "%s", tp_error_name(rc));
	cr_assert(strstr(tp_error_last(), "resources/missing.yaml"), "%s", tp_error_last());
	cr_assert_eq(t->read(t, &b, "README.md", 100), TP_ENOTFOUND); /* outside the path */
	cr_assert_eq(t->read(t, &b, "files/b.txt/x", 100), TP_ENOTFOUND);
	rc = t->read(t, &b, "resources/link.yaml", 100);
	cr_assert_eq(rc, TP_EINVALID, "%s", tp_error_name(rc));
	cr_assert_str_eq(tp_error_last(), "resources/link.yaml: is a symlink; symlinks are not "
					  "followed in Git trees");
	cr_assert_eq(t->read(t, &b, "resources/nested", 100), TP_EINVALID);
	cr_assert(strstr(tp_error_last(), "directory"), "%s", tp_error_last());
	cr_assert_eq(t->read(t, &b, "resources/sub", 100), TP_EINVALID);
	cr_assert(strstr(tp_error_last(), "submodule"), "%s", tp_error_last());
	cr_assert_eq(t->read(t, &b, "../README.md", 100), TP_EINVALID);

	/* the size cap is checked before the blob is copied, and the buffer is left alone */
	tp_buf_clear(&b);
	tp_buf_puts(&b, "untouched");
	cr_assert_eq(stat(yaml, &st), 0);
	rc = t->read(t, &b, "resources/files.yaml", 10);
	cr_assert_eq(rc, TP_ETOOBIG, "%s", tp_error_name(rc));
	want = tp_sprintf("resources/files.yaml: file is %lld bytes, over the limit of 10 bytes",
			  (long long)st.st_size);
	cr_assert_str_eq(tp_error_last(), want);
	cr_assert_str_eq(tp_buf_cstr(&b), "untouched");
	/* exactly at the limit is fine */
	cr_assert_eq(t->read(t, &b, "resources/files.yaml", (size_t)st.st_size), 0);
	cr_assert_eq(b.len, (size_t)st.st_size);

	tp_buf_free(&b);
	tp_tree_free(t);
	free(want);
	free(link);
	free(script);
	free(yaml);
	free(c1);
	free(c2);
}

Test(source, loader_reports_a_symlinked_source_file)
{
	char *link = tp_sprintf("%s/%s/files/passwd.txt", origin, PIPELINE);
	char *c2;
	tp_tree *t;
	tp_pipeline *p = NULL;
	tp_diags d = {0};

	cr_assert_eq(symlink("/etc/passwd", link), 0, "symlink: %s", strerror(errno));
	ts_write(origin, PIPELINE "/resources/leak.yaml",
		 "kind: local.file\nname: leak\n"
		 "spec: {path: /srv/leak, source: files/passwd.txt}\n");
	commit_all("symlink out of the repository");
	c2 = rev_parse("main");
	src = open_fetched();
	t = tree_at(src, c2);
	cr_assert_eq(tp_pipeline_load(&p, t, &d), TP_EINVALID);
	cr_assert_eq(d.len, 1);
	cr_assert_str_eq(d.items[0].file, "resources/leak.yaml");
	cr_assert(strstr(d.items[0].msg, "symlink"), "%s", d.items[0].msg);
	tp_diags_free(&d);
	tp_tree_free(t);
	free(link);
	free(c2);
}

Test(source, missing_pipeline_path_and_unknown_commits)
{
	char *c1 = rev_parse("main"), *c2;
	tp_tree *t = NULL;
	tp_commit_info ci;
	int rc;

	git("rm -rq pipelines");
	git("commit -q -m 'remove the pipeline'");
	c2 = rev_parse("main");
	src = open_fetched();

	rc = tp_source_tree(&t, src, c2);
	cr_assert_eq(rc, TP_ENOTFOUND, "%s", tp_error_name(rc));
	cr_assert(strstr(tp_error_last(), PIPELINE), "%s", tp_error_last());
	cr_assert_null(t);
	cr_assert_eq(tp_source_commit_info(&ci, src, c2), 0, "%s", tp_error_last());
	cr_assert_str_eq(ci.tree, "");
	cr_assert_str_eq(ci.message, "remove the pipeline\n");
	tp_commit_info_clear(&ci);

	rc = tp_source_tree(&t, src, "0123456789abcdef0123456789abcdef01234567");
	cr_assert_eq(rc, TP_ENOTFOUND, "%s", tp_error_name(rc));
	rc = tp_source_tree(&t, src, "main");
	cr_assert_eq(rc, TP_EINVALID, "%s", tp_error_name(rc));
	rc = tp_source_commit_info(&ci, src, "deadbeef");
	cr_assert_eq(rc, TP_EINVALID, "%s", tp_error_name(rc));
	cr_assert_null(ci.message);
	/* a tree id is not a commit */
	{
		char *tree = ts_git(origin, "rev-parse '%s^{tree}'", c1);
		cr_assert_eq(tp_source_commit_info(&ci, src, tree), TP_EINVALID);
		cr_assert(strstr(tp_error_last(), "is a tree, not a commit"), "%s",
			  tp_error_last());
		free(tree);
	}
	free(c1);
	free(c2);
}

Test(source, path_tree_id_changes_only_with_the_pipeline)
{
	char *c1 = rev_parse("main"), *c2, *c3, *t1, *t2, *t3, *want;
	tp_commit_info ci;

	ts_write(origin, "README.md", "# infra\n\nonly docs changed\n");
	commit_all("docs only");
	c2 = rev_parse("main");
	ts_write(origin, PIPELINE "/files/b.txt", "from git, changed\n");
	commit_all("change the pipeline");
	c3 = rev_parse("main");
	src = open_fetched();

	t1 = path_tree_id(src, c1);
	t2 = path_tree_id(src, c2);
	t3 = path_tree_id(src, c3);
	cr_assert_str_eq(t1, t2, "a commit outside the path keeps its tree id");
	cr_assert_str_neq(t2, t3, "a commit inside the path changes its tree id");
	want = ts_git(origin, "rev-parse '%s:%s'", c3, PIPELINE);
	cr_assert_str_eq(t3, want);

	cr_assert_eq(tp_source_commit_info(&ci, src, c2), 0, "%s", tp_error_last());
	cr_assert_str_eq(ci.commit, c2);
	cr_assert_str_eq(ci.message, "docs only\n");
	cr_assert_str_eq(ci.author, "Ada Lovelace <ada@example.com>");
	cr_assert_eq(ci.time_ms, INT64_C(1700000000000));
	tp_commit_info_clear(&ci);
	tp_commit_info_clear(&ci); /* clearing twice is harmless */

	free(c1);
	free(c2);
	free(c3);
	free(t1);
	free(t2);
	free(t3);
	free(want);
}

Test(source, whole_repository_as_pipeline_path)
{
	char *c1 = rev_parse("main"), *root_tree;
	tp_source_opts o = {.url = origin_url, .path = "./", .mirror_dir = mirror};
	tp_strlist l = {0};
	tp_tree *t;

	cr_assert_eq(tp_source_open(&src, &o), 0, "%s", tp_error_last());
	cr_assert_eq(tp_source_fetch(src), 0, "%s", tp_error_last());
	t = tree_at(src, c1);
	cr_assert_eq(t->list(t, &l, ""), 0);
	cr_assert_eq(l.len, 1);
	cr_assert_str_eq(l.items[0], "README.md");
	root_tree = ts_git(origin, "rev-parse '%s^{tree}'", c1);
	{
		char *id = path_tree_id(src, c1);
		cr_assert_str_eq(id, root_tree);
		free(id);
	}
	tp_strlist_free(&l);
	tp_tree_free(t);
	free(root_tree);
	free(c1);
}

/* ---------------------------------------------------------------- following the remote */

Test(source, fetch_picks_up_new_commits_and_tags)
{
	char *c1 = rev_parse("main"), *c2;
	src = open_fetched();
	assert_resolves(src, "main", c1);

	ts_write(origin, PIPELINE "/resources/more.yaml",
		 "kind: local.file\nname: c\nspec: {path: /srv/c, content: more}\n");
	commit_all("more");
	git("tag v3");
	c2 = rev_parse("main");
	assert_resolves(src, "main", c1); /* not before a fetch */
	cr_assert_eq(tp_source_fetch(src), 0, "%s", tp_error_last());
	assert_resolves(src, "main", c2);
	assert_resolves(src, "v3", c2);
	assert_resolves(src, "v1", c1);
	/* a fetch with nothing new is fine */
	cr_assert_eq(tp_source_fetch(src), 0, "%s", tp_error_last());
	assert_resolves(src, "main", c2);
	free(c1);
	free(c2);
}

Test(source, force_push_moved_tags_and_deleted_branches_are_followed)
{
	char *c1 = rev_parse("main"), *c2, *c3;
	char got[41];

	ts_write(origin, PIPELINE "/files/b.txt", "second\n");
	commit_all("second");
	c2 = rev_parse("main");
	git("branch feature");
	src = open_fetched();
	assert_resolves(src, "main", c2);
	assert_resolves(src, "feature", c2);

	/* history rewritten: main goes back and grows a different commit; the tag moves */
	git("reset -q --hard %s", c1);
	ts_write(origin, PIPELINE "/files/b.txt", "rewritten\n");
	commit_all("rewritten");
	c3 = rev_parse("main");
	git("tag -f v1 %s", c3);
	git("branch -D feature");
	cr_assert_eq(tp_source_fetch(src), 0, "%s", tp_error_last());
	assert_resolves(src, "main", c3);
	assert_resolves(src, "main~1", c1);
	assert_resolves(src, "v1", c3);
	cr_assert_eq(tp_source_resolve(got, src, "feature"), TP_ENOTFOUND);
	/* the old commit is still readable by id (objects are never dropped by a fetch) */
	{
		tp_tree *t = tree_at(src, c2);
		tp_buf b;
		tp_buf_init(&b, 0);
		cr_assert_eq(t->read(t, &b, "files/b.txt", 100), 0, "%s", tp_error_last());
		cr_assert_str_eq(tp_buf_cstr(&b), "second\n");
		tp_buf_free(&b);
		tp_tree_free(t);
	}
	/* a deleted tag is pruned too */
	git("tag -d v1");
	cr_assert_eq(tp_source_fetch(src), 0, "%s", tp_error_last());
	cr_assert_eq(tp_source_resolve(got, src, "v1"), TP_ENOTFOUND);
	free(c1);
	free(c2);
	free(c3);
}

/* ---------------------------------------------------------------- failures */

Test(source, bad_urls_fail_with_clear_messages)
{
	char *missing = tp_sprintf("file://%s/no-such-repo", tmp);
	int port = ts_free_port();
	char *with_creds = tp_sprintf("http://deploy:hunter2@127.0.0.1:%d/org/repo.git", port);
	char *shown = tp_sprintf("http://127.0.0.1:%d/org/repo.git", port);
	int rc;

	src = open_url(missing);
	rc = tp_source_fetch(src);
	cr_assert_lt(rc, 0);
	cr_assert(strstr(tp_error_last(), missing), "%s", tp_error_last());
	tp_source_free(src);
	src = NULL;
	ts_rmtree(mirror);

	/* a plain path that does not exist */
	src = open_url(missing + strlen("file://"));
	cr_assert_eq(tp_source_fetch(src), TP_ENOTFOUND, "%s", tp_error_last());
	cr_assert(strstr(tp_error_last(), missing + strlen("file://")), "%s", tp_error_last());
	tp_source_free(src);
	src = NULL;
	ts_rmtree(mirror);

	/* nothing listens there: connection refused, and the password is never shown */
	src = open_url(with_creds);
	rc = tp_source_fetch(src);
	cr_assert_eq(rc, TP_EIO, "%s: %s", tp_error_name(rc), tp_error_last());
	cr_assert(strstr(tp_error_last(), shown), "%s", tp_error_last());
	cr_assert_null(strstr(tp_error_last(), "hunter2"), "%s", tp_error_last());
	tp_source_free(src);
	src = NULL;
	ts_rmtree(mirror);

	/* ssh keeps the user name in messages (not a secret), drops a password */
	free(with_creds);
	free(shown);
	with_creds = tp_sprintf("ssh://git:hunter2@127.0.0.1:%d/org/repo.git", port);
	shown = tp_sprintf("ssh://git@127.0.0.1:%d/org/repo.git", port);
	src = open_url(with_creds);
	rc = tp_source_fetch(src);
	cr_assert_lt(rc, 0);
	cr_assert(strstr(tp_error_last(), shown), "%s", tp_error_last());
	cr_assert_null(strstr(tp_error_last(), "hunter2"), "%s", tp_error_last());
	tp_source_free(src);
	src = NULL;
	ts_rmtree(mirror);

	src = open_url("gopher://127.0.0.1/repo");
	rc = tp_source_fetch(src);
	cr_assert_lt(rc, 0);
	cr_assert(strstr(tp_error_last(), "gopher://127.0.0.1/repo"), "%s", tp_error_last());
	free(missing);
	free(with_creds);
	free(shown);
}

Test(source, fetch_over_git_daemon)
{
	char *logpath = tp_sprintf("%s/daemon.log", tmp);
	char *dlog;
	char *url, *c1 = rev_parse("main"), *c2;
	int port = ts_free_port();

	daemon_pid = ts_git_daemon_start_logged(tmp, port, logpath);

	url = tp_sprintf("git://127.0.0.1:%d/origin", port);
	src = open_url(url);
	if (tp_source_fetch(src) != 0) {
		dlog = ts_read(logpath);
		cr_assert_fail("%s\ngit daemon log:\n%s", tp_error_last(), dlog ? dlog : "");
	}
	assert_resolves(src, "main", c1);
	assert_resolves(src, "v1", c1);

	ts_write(origin, PIPELINE "/files/b.txt", "over the daemon\n");
	commit_all("second");
	c2 = rev_parse("main");
	cr_assert_eq(tp_source_fetch(src), 0, "%s", tp_error_last());
	assert_resolves(src, "main", c2);
	{
		tp_tree *t = tree_at(src, c2);
		tp_pipeline *p = NULL;
		tp_diags d = {0};
		cr_assert_eq(tp_pipeline_load(&p, t, &d), 0, "%s", tp_error_last());
		cr_assert_eq(p->nresources, 2);
		tp_pipeline_free(p);
		tp_diags_free(&d);
		tp_tree_free(t);
	}
	stop_daemon();

	free(logpath);
	free(url);
	free(c1);
	free(c2);
}

/* ---------------------------------------------------------------- misbehaving servers */

/*
 * A one-thread TCP server on 127.0.0.1 for the cases no real server produces on demand.
 * `serve` handles one accepted connection; the thread stops when `stop` is set.
 */
typedef struct fake_server fake_server;
struct fake_server {
	int lfd;
	int port;
	pthread_t thread;
	int stop;          /* atomic */
	void (*serve)(fake_server *f, int fd);
	int requests;      /* connections served */
	int auth_requests; /* HTTP requests that carried an Authorization header */
	char auth[512];    /* the last Authorization header value */
};

static void *fake_main(void *arg)
{
	fake_server *f = arg;
	while (!__atomic_load_n(&f->stop, __ATOMIC_ACQUIRE)) {
		struct pollfd p = {f->lfd, POLLIN, 0};
		int fd;
		if (poll(&p, 1, 50) <= 0)
			continue;
		fd = accept(f->lfd, NULL, NULL);
		if (fd < 0)
			continue;
		f->requests++;
		f->serve(f, fd);
		close(fd);
	}
	return NULL;
}

static void fake_start(fake_server *f, void (*serve)(fake_server *, int))
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0};
	socklen_t len = sizeof(a);
	int one = 1;

	memset(f, 0, sizeof(*f));
	f->serve = serve;
	f->lfd = socket(AF_INET, SOCK_STREAM, 0);
	cr_assert(f->lfd >= 0);
	setsockopt(f->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	cr_assert(bind(f->lfd, (struct sockaddr *)&a, sizeof(a)) == 0);
	cr_assert(listen(f->lfd, 8) == 0);
	cr_assert(getsockname(f->lfd, (struct sockaddr *)&a, &len) == 0);
	f->port = ntohs(a.sin_port);
	cr_assert(pthread_create(&f->thread, NULL, fake_main, f) == 0);
}

static void fake_stop(fake_server *f)
{
	__atomic_store_n(&f->stop, 1, __ATOMIC_RELEASE);
	pthread_join(f->thread, NULL);
	close(f->lfd);
}

/* Reads what the peer sends until `until` appears (or 2 s pass); returns bytes read. The
 * git protocol puts NUL bytes in requests, hence memmem. */
static size_t read_until(int fd, char *buf, size_t cap, const char *until)
{
	size_t len = 0;
	int64_t deadline = tp_clock_mono_ms() + 2000;
	buf[0] = '\0';
	while (len + 1 < cap && !memmem(buf, len, until, strlen(until)) &&
	       tp_clock_mono_ms() < deadline) {
		struct pollfd p = {fd, POLLIN, 0};
		ssize_t n;
		if (poll(&p, 1, 50) <= 0)
			continue;
		n = recv(fd, buf + len, cap - 1 - len, 0);
		if (n <= 0)
			break;
		len += (size_t)n;
		buf[len] = '\0';
	}
	return len;
}

static bool send_pkt(int fd, const char *data, size_t len)
{
	char hdr[5];
	snprintf(hdr, sizeof(hdr), "%04zx", len + 4);
	return send(fd, hdr, 4, MSG_NOSIGNAL) == 4 &&
	       send(fd, data, len, MSG_NOSIGNAL) == (ssize_t)len;
}

/* git:// upload-pack that advertises a commit, answers NAK, then sends progress forever */
static void serve_trickle(fake_server *f, int fd)
{
	static const char head[] = "1111111111111111111111111111111111111111 HEAD\0side-band-64k\n";
	static const char main_ref[] = "1111111111111111111111111111111111111111 refs/heads/main\n";
	char buf[4096];
	int64_t until = tp_clock_mono_ms() + 10000;

	read_until(fd, buf, sizeof(buf), "host="); /* "git-upload-pack /repo\0host=...\0" */
	if (!send_pkt(fd, head, sizeof(head) - 1) ||
	    !send_pkt(fd, main_ref, sizeof(main_ref) - 1) || send(fd, "0000", 4, MSG_NOSIGNAL) != 4)
		return;
	read_until(fd, buf, sizeof(buf), "done");
	if (!send_pkt(fd, "NAK\n", 4))
		return;
	while (!__atomic_load_n(&f->stop, __ATOMIC_ACQUIRE) && tp_clock_mono_ms() < until) {
		if (!send_pkt(fd, "\2Counting objects: still counting\r", 34))
			return;
		usleep(20000);
	}
}

/* HTTP that refuses every request with 401, remembering the credentials it was sent */
static void serve_401(fake_server *f, int fd)
{
	static const char resp[] = "HTTP/1.1 401 Unauthorized\r\n"
				   "WWW-Authenticate: Basic realm=\"git\"\r\n"
				   "Content-Length: 0\r\nConnection: close\r\n\r\n";
	char buf[8192];
	char *h;
	read_until(fd, buf, sizeof(buf), "\r\n\r\n");
	h = strcasestr(buf, "\r\nAuthorization: ");
	if (h) {
		size_t n;
		h += strlen("\r\nAuthorization: ");
		n = strcspn(h, "\r\n");
		snprintf(f->auth, sizeof(f->auth), "%.*s", (int)n, h);
		f->auth_requests++;
	}
	send(fd, resp, sizeof(resp) - 1, MSG_NOSIGNAL);
}

Test(source, fetch_is_bounded_by_the_timeout)
{
	fake_server f;
	char *url;
	int64_t start, took;
	int rc;

	fake_start(&f, serve_trickle);
	url = tp_sprintf("git://127.0.0.1:%d/repo", f.port);
	{
		tp_source_opts o = {.url = url, .mirror_dir = mirror, .timeout_ms = 300};
		cr_assert_eq(tp_source_open(&src, &o), 0, "%s", tp_error_last());
	}
	start = tp_clock_mono_ms();
	rc = tp_source_fetch(src);
	took = tp_clock_mono_ms() - start;
	fake_stop(&f);
	cr_assert_eq(rc, TP_EIO, "%s: %s", tp_error_name(rc), tp_error_last());
	cr_assert(strstr(tp_error_last(), "timed out after 300 ms"), "%s", tp_error_last());
	cr_assert(strstr(tp_error_last(), url), "%s", tp_error_last());
	cr_assert_geq(took, 300);
	cr_assert_lt(took, 1500, "took %lld ms", (long long)took);
	free(url);
}

Test(source, refused_token_gives_up_after_three_attempts)
{
	static const char token[] = "s3cr3t-t0ken";
	fake_server f;
	tp_buf want;
	char *url;
	int rc;

	fake_start(&f, serve_401);
	url = tp_sprintf("http://127.0.0.1:%d/org/repo.git", f.port);
	{
		tp_source_opts o = {.url = url, .mirror_dir = mirror, .token = token};
		cr_assert_eq(tp_source_open(&src, &o), 0, "%s", tp_error_last());
	}
	rc = tp_source_fetch(src);
	fake_stop(&f);
	cr_assert_eq(rc, TP_EAUTH, "%s: %s", tp_error_name(rc), tp_error_last());
	cr_assert(strstr(tp_error_last(), "authentication failed for "), "%s", tp_error_last());
	cr_assert(strstr(tp_error_last(), url), "%s", tp_error_last());
	cr_assert(strstr(tp_error_last(), "refused the token 3 times"), "%s", tp_error_last());
	cr_assert_null(strstr(tp_error_last(), token), "%s", tp_error_last());
	cr_assert_eq(f.auth_requests, 3, "%d requests with credentials", f.auth_requests);
	/* basic auth, user x-access-token, password the token */
	tp_buf_init(&want, 0);
	tp_buf_puts(&want, "Basic ");
	tp_base64_encode(&want, "x-access-token:s3cr3t-t0ken", 27);
	cr_assert_str_eq(f.auth, tp_buf_cstr(&want));
	tp_buf_free(&want);
	free(url);
}

Test(source, server_asking_for_credentials_without_a_token)
{
	fake_server f;
	char *url;
	int rc;

	fake_start(&f, serve_401);
	url = tp_sprintf("http://127.0.0.1:%d/org/repo.git", f.port);
	src = open_url(url);
	rc = tp_source_fetch(src);
	fake_stop(&f);
	cr_assert_eq(rc, TP_EAUTH, "%s: %s", tp_error_name(rc), tp_error_last());
	cr_assert(strstr(tp_error_last(), "authentication failed for "), "%s", tp_error_last());
	cr_assert(strstr(tp_error_last(), url), "%s", tp_error_last());
	cr_assert_eq(f.auth_requests, 0);
	free(url);
}

/* ---------------------------------------------------------------- a long-running mirror */

static size_t count_packs(void)
{
	char *dir = tp_sprintf("%s/objects/pack", mirror);
	DIR *d = opendir(dir);
	struct dirent *de;
	size_t n = 0;
	cr_assert_not_null(d, "%s", dir);
	while ((de = readdir(d)))
		n += strstr(de->d_name, ".pack") != NULL;
	closedir(d);
	free(dir);
	return n;
}

static size_t open_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	size_t n = 0;
	cr_assert_not_null(d);
	while (readdir(d))
		n++;
	closedir(d);
	return n;
}

Test(source, packs_from_many_fetches_are_consolidated_and_every_commit_stays_readable)
{
	char *ids[40];
	size_t fds_after_10 = 0;
	tp_source *s = open_fetched();
	git("tag -a -m 'annotated' v2");
	for (int i = 0; i < 40; i++) {
		char *text = tp_sprintf("kind: local.file\nname: f%d\nspec: {path: /tmp/f%d, "
					"content: \"%d\"}\n", i, i, i);
		char *msg = tp_sprintf("commit %d", i);
		ts_write(origin, PIPELINE "/resources/many.yaml", text);
		commit_all(msg);
		cr_assert_eq(tp_source_fetch(s), 0, "fetch %d: %s", i, tp_error_last());
		ids[i] = rev_parse("HEAD");
		if (i == 10)
			fds_after_10 = open_fds();
		free(text);
		free(msg);
	}
	/* without consolidation: one pack (and one open descriptor) per fetch */
	cr_assert_leq(count_packs(), 17, "%zu packs in the mirror", count_packs());
	cr_assert_leq(open_fds(), fds_after_10 + 20, "descriptors grow with the fetches: %zu "
		      "now, %zu after 10 fetches", open_fds(), fds_after_10);
	for (int i = 0; i < 40; i++) {
		tp_tree *t = tree_at(s, ids[i]);
		char *want = tp_sprintf("content: \"%d\"", i);
		tp_buf b;
		tp_buf_init(&b, 0);
		cr_assert_eq(t->read(t, &b, "resources/many.yaml", 4096), 0, "%s", tp_error_last());
		cr_assert(strstr(tp_buf_cstr(&b), want), "commit %d: %s", i, tp_buf_cstr(&b));
		tp_buf_free(&b);
		t->free(t);
		free(want);
		free(ids[i]);
	}
	{
		/* the annotated tag and everything else still resolve after the rewrite */
		char *v2 = rev_parse("v2^{commit}");
		assert_resolves(s, "v2", v2);
		free(v2);
		/* every object every ref reaches is still there (a missing one prints "?id") */
		char *objs = ts_git(mirror, "rev-list --objects --all --missing=print");
		cr_assert(strlen(objs) > 0);
		cr_assert(objs[0] != '?' && !strstr(objs, "\n?"), "objects missing: %s", objs);
		free(objs);
	}
	tp_source_free(s);
}

/*
 * Consolidation past 16 packs is geometric: the first one writes a base pack of everything and
 * records it; later ones keep it (same file) and write one pack of what came since, until a
 * force-push leaves commits of the base unreachable, the record is damaged or its pack gone,
 * or what came since outgrows half the base: then everything is rewritten again.
 */

#define MAX_HISTORY 128

static char *history[MAX_HISTORY]; /* commit ids made by commit_and_fetch, in order */
static int n_history;

/* kib KiB of text zlib cannot shrink much: big next to the small commits */
static void write_noise(const char *rel, unsigned seed, size_t kib)
{
	size_t n = kib * 1024;
	char *text = tp_malloc(n + 1);
	for (size_t i = 0; i < n; i++) {
		seed = seed * 1103515245u + 12345u;
		text[i] = (i % 64 == 63) ? '\n' : (char)('!' + (seed >> 16) % 90);
	}
	text[n] = '\0';
	ts_write(origin, rel, text);
	free(text);
}

static void commit_and_fetch(tp_source *s)
{
	int i = n_history;
	char *text = tp_sprintf("kind: local.file\nname: f%d\nspec: {path: /tmp/f%d, "
				"content: \"%d\"}\n", i, i, i);
	char *msg = tp_sprintf("commit %d", i);
	cr_assert_lt(i, MAX_HISTORY);
	ts_write(origin, PIPELINE "/resources/many.yaml", text);
	commit_all(msg);
	history[n_history++] = rev_parse("HEAD");
	cr_assert_eq(tp_source_fetch(s), 0, "fetch %d: %s", i, tp_error_last());
	free(text);
	free(msg);
}

/* Commits and fetches until a fetch consolidates the packs. */
static void fetch_until_consolidated(tp_source *s)
{
	for (int i = 0; i < 20; i++) {
		size_t before = count_packs();
		commit_and_fetch(s);
		if (count_packs() < before)
			return;
	}
	cr_assert_fail("20 fetches and no consolidation: %zu packs", count_packs());
}

/* The one pack of the mirror's: its name and inode. */
static char *only_pack(ino_t *ino)
{
	char *dir = tp_sprintf("%s/objects/pack", mirror), *name = NULL, *path;
	DIR *d = opendir(dir);
	struct dirent *de;
	struct stat st;
	cr_assert_not_null(d, "%s", dir);
	while ((de = readdir(d)))
		if (strstr(de->d_name, ".pack")) {
			cr_assert_null(name, "more than one pack: %s and %s", name, de->d_name);
			name = tp_strdup(de->d_name);
		}
	closedir(d);
	cr_assert_not_null(name, "no pack in %s", dir);
	path = tp_sprintf("%s/%s", dir, name);
	cr_assert_eq(stat(path, &st), 0, "%s: %s", path, strerror(errno));
	*ino = st.st_ino;
	free(path);
	free(dir);
	return name;
}

/* The pack is there and is the same file (not rewritten under the same name). */
static void assert_pack_kept(const char *name, ino_t ino)
{
	char *path = tp_sprintf("%s/objects/pack/%s", mirror, name);
	struct stat st;
	cr_assert_eq(stat(path, &st), 0, "the base pack %s was removed", name);
	cr_assert_eq(st.st_ino, ino, "the base pack %s was rewritten", name);
	free(path);
}

static void assert_pack_gone(const char *name)
{
	char *path = tp_sprintf("%s/objects/pack/%s", mirror, name);
	cr_assert_neq(access(path, F_OK), 0, "the old base pack %s is still there", name);
	free(path);
}

/* history[from..to) all load through the source, and every object the refs reach is there */
static void assert_history_reads(tp_source *s, int from, int to)
{
	for (int i = from; i < to; i++) {
		tp_tree *t = tree_at(s, history[i]);
		char *want = tp_sprintf("content: \"%d\"", i);
		tp_buf b;
		tp_buf_init(&b, 0);
		cr_assert_eq(t->read(t, &b, "resources/many.yaml", 4096), 0, "commit %d: %s", i,
			     tp_error_last());
		cr_assert(strstr(tp_buf_cstr(&b), want), "commit %d: %s", i, tp_buf_cstr(&b));
		tp_buf_free(&b);
		t->free(t);
		free(want);
	}
	{
		char *objs = ts_git(mirror, "rev-list --objects --all --missing=print");
		cr_assert(strlen(objs) > 0);
		cr_assert(objs[0] != '?' && !strstr(objs, "\n?"), "objects missing: %s", objs);
		free(objs);
	}
}

static void free_history(void)
{
	for (int i = 0; i < n_history; i++)
		free(history[i]);
	n_history = 0;
}

/* the first commit (tag v1), through the source: the oldest tree there is */
static void assert_first_commit_reads(tp_source *s)
{
	char *c1 = rev_parse("v1");
	tp_tree *t = tree_at(s, c1);
	tp_buf b;
	tp_buf_init(&b, 0);
	cr_assert_eq(t->read(t, &b, "files/b.txt", 100), 0, "%s", tp_error_last());
	cr_assert_str_eq(tp_buf_cstr(&b), "from git\n");
	tp_buf_free(&b);
	t->free(t);
	free(c1);
}

Test(source, incremental_consolidation_keeps_the_base_pack_and_every_commit_reads)
{
	tp_source *s;
	char *base, *record;
	ino_t ino;

	write_noise("data/noise.txt", 1, 256);
	commit_all("noise");
	s = open_fetched();
	fetch_until_consolidated(s); /* the first time: everything, recorded as the base */
	base = only_pack(&ino);
	record = tp_sprintf("%s/tapestry-base", mirror);
	cr_assert_eq(access(record, F_OK), 0, "no base record at %s", record);
	for (int round = 0; round < 3; round++) {
		git("tag -a -m 'round %d' r%d", round, round);
		fetch_until_consolidated(s);
		/* the base and one pack of what came since it */
		assert_pack_kept(base, ino);
		cr_assert_eq(count_packs(), 2, "round %d: %zu packs", round, count_packs());
	}
	assert_history_reads(s, 0, n_history);
	assert_first_commit_reads(s);
	{
		char *r0 = rev_parse("r0^{commit}");
		assert_resolves(s, "r0", r0);
		free(r0);
	}
	tp_source_free(s);
	free_history();
	free(record);
	free(base);
}

Test(source, force_push_dropping_the_base_commits_rewrites_everything)
{
	tp_source *s;
	char *base, got[41];
	int kept;
	ino_t ino;

	write_noise("data/noise.txt", 2, 256);
	commit_all("noise");
	s = open_fetched();
	fetch_until_consolidated(s);
	base = only_pack(&ino);
	fetch_until_consolidated(s); /* an incremental one: the base stays */
	assert_pack_kept(base, ino);

	/* history rewritten: main goes back to the first commit; the base's tip is unreachable */
	git("reset -q --hard v1");
	write_noise("data/noise.txt", 6, 64); /* under half the old base */
	commit_all("noise again");
	kept = n_history;
	fetch_until_consolidated(s);
	assert_pack_gone(base);
	cr_assert_eq(count_packs(), 1, "%zu packs", count_packs());
	assert_history_reads(s, kept, n_history);
	assert_first_commit_reads(s);
	/* the dropped commits went with the old base */
	cr_assert_eq(tp_source_resolve(got, s, history[kept - 1]), TP_ENOTFOUND, "%s", got);
	/* and the new base is built on again */
	free(base);
	base = only_pack(&ino);
	fetch_until_consolidated(s);
	assert_pack_kept(base, ino);
	assert_history_reads(s, kept, n_history);
	tp_source_free(s);
	free_history();
	free(base);
}

Test(source, consolidation_rewrites_everything_when_the_new_part_outgrows_half_the_base)
{
	tp_source *s;
	char *base;
	ino_t ino;

	write_noise("data/noise.txt", 3, 32);
	commit_all("some noise");
	s = open_fetched();
	fetch_until_consolidated(s);
	base = only_pack(&ino); /* 32 KiB and a few small commits */
	fetch_until_consolidated(s);
	assert_pack_kept(base, ino); /* a few small commits more: well under half */

	/* far bigger than the base: the next pack beyond it would outweigh it */
	write_noise("data/noise.txt", 5, 256);
	commit_all("noise");
	fetch_until_consolidated(s);
	assert_pack_gone(base);
	cr_assert_eq(count_packs(), 1, "%zu packs", count_packs());
	assert_history_reads(s, 0, n_history);

	/* the bigger base is kept while small commits follow */
	free(base);
	base = only_pack(&ino);
	fetch_until_consolidated(s);
	assert_pack_kept(base, ino);
	cr_assert_eq(count_packs(), 2, "%zu packs", count_packs());
	assert_history_reads(s, 0, n_history);
	assert_first_commit_reads(s);
	tp_source_free(s);
	free_history();
	free(base);
}

Test(source, a_damaged_base_record_or_a_missing_base_pack_means_a_full_rewrite)
{
	tp_source *s;
	char *base, *record = tp_sprintf("%s/tapestry-base", mirror);
	ino_t ino;

	write_noise("data/noise.txt", 4, 256);
	commit_all("noise");
	s = open_fetched();
	fetch_until_consolidated(s);
	base = only_pack(&ino);

	/* garbage in the record */
	ts_write(mirror, "tapestry-base", "tapestry base pack 1\npack zz\ntip 123\n");
	fetch_until_consolidated(s);
	assert_pack_gone(base);
	cr_assert_eq(count_packs(), 1, "%zu packs", count_packs());
	assert_history_reads(s, 0, n_history);

	/* a well-formed record of a pack that is not there */
	free(base);
	base = only_pack(&ino);
	{
		char *text = ts_read(record), *at = strstr(text, "\npack ");
		cr_assert_not_null(at, "%s", text);
		at[6] = at[6] == '0' ? '1' : '0'; /* another pack's name */
		ts_write(mirror, "tapestry-base", text);
		free(text);
	}
	fetch_until_consolidated(s);
	assert_pack_gone(base);
	cr_assert_eq(count_packs(), 1, "%zu packs", count_packs());
	assert_history_reads(s, 0, n_history);
	assert_first_commit_reads(s);
	tp_source_free(s);
	free_history();
	free(base);
	free(record);
}
