/*
 * `tapestry init DIR [--kickstart] [--name NAME] [--no-git]`: starts a pipeline repository.
 * Without --kickstart it writes a small skeleton (tapestry.yaml with every provider commented
 * out, one local.file resource so the pipeline is valid and has something to plan, a README
 * and a .gitignore for local state files), embedded here so an installed binary needs nothing
 * else. With --kickstart it copies the case-study pipeline from the examples installed with
 * Tapestry. Then it makes DIR a Git repository (libgit2; branch main, one commit when an
 * identity is configured) unless DIR already lies inside one, checks the result with the
 * loader `validate` uses, and prints the next steps. DIR must be missing or empty.
 */
#include "controller.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <git2.h>

#include "../spec/spec.h"

/* ---------------------------------------------------------------- the embedded skeleton */

static const char skeleton_tapestry_yaml[] =
	"# @NAME@: a Tapestry pipeline. This file names the pipeline, tunes the controller and\n"
	"# says how to reach each provider. It holds no secret: credentials are ${secret:...}\n"
	"# references (env:NAME, file:/path, ssm:/path), resolved only when changes are applied.\n"
	"pipeline: @NAME@\n"
	"\n"
	"settings:\n"
	"  concurrency: 8          # independent actions applied at once\n"
	"  max_prune: 25%          # refuse a plan that deletes more than a quarter of the pipeline\n"
	"  self_heal: false        # report drift (changes made by hand) instead of undoing it\n"
	"  drift_interval: 10m     # how often live state is observed for drift\n"
	"\n"
	"# Uncomment the providers your resources use; `tapestry kinds aws` (or snowflake, airbyte,\n"
	"# grouparoo) lists each one's settings, and `tapestry kinds` every resource kind.\n"
	"# providers:\n"
	"#   aws:\n"
	"#     region: us-east-1\n"
	"#   snowflake:\n"
	"#     account: MYORG-MYACCOUNT\n"
	"#     user: TAPESTRY\n"
	"#     role: TAPESTRY_ADMIN\n"
	"#     private_key: \"${secret:file:/etc/tapestry/snowflake_key.p8}\"\n"
	"#   airbyte:\n"
	"#     url: \"http://airbyte.internal:8000/api/public/v1\"\n"
	"#     workspace: default\n"
	"#     client_id: \"${secret:ssm:/@NAME@/airbyte/client_id}\"\n"
	"#     client_secret: \"${secret:ssm:/@NAME@/airbyte/client_secret}\"\n"
	"#   grouparoo:\n"
	"#     url: \"http://grouparoo.internal:3000\"\n"
	"#     api_key: \"${secret:ssm:/@NAME@/grouparoo/api_key}\"\n";

static const char skeleton_resource[] =
	"# A first resource, so the pipeline has something to plan: a file on the controller host\n"
	"# (local.file needs no provider settings and no credentials). Replace it with your own\n"
	"# resources: any number of documents per file, separated by ---, in resources/*.yaml.\n"
	"kind: local.file\n"
	"name: hello\n"
	"spec:\n"
	"  # the controller's state directory: writable under the hardened systemd unit\n"
	"  path: /var/lib/tapestry/@NAME@-hello.txt\n"
	"  content: |\n"
	"    Managed by Tapestry from the @NAME@ pipeline repository.\n";

static const char skeleton_readme[] =
	"# @NAME@\n"
	"\n"
	"The desired state of the @NAME@ data pipeline, kept in sync by Tapestry. Every change is a\n"
	"commit: a pull request shows its plan, a merge applies it, a revert rolls it back.\n"
	"\n"
	"```\n"
	"tapestry.yaml      pipeline name, settings and provider connections (no secrets)\n"
	"resources/*.yaml   resource documents, several per file (--- separated)\n"
	"templates/*.yaml   CloudFormation templates referenced by aws.stack resources\n"
	"models/*.sql       SQL models referenced by snowflake.view resources\n"
	"```\n"
	"\n"
	"- `tapestry validate` checks every file and reports errors as `file:line:col`.\n"
	"- `tapestry plan --state state.db` shows what applying would change.\n"
	"- `tapestry kinds` lists the resource kinds; `tapestry kinds KIND` their fields.\n";

static const char skeleton_gitignore[] =
	"# local state of `tapestry apply --state ...` runs: never commit it\n"
	"*.db\n"
	"*.db-wal\n"
	"*.db-shm\n"
	"*.db.key\n";

/* ---------------------------------------------------------------- files */

static int write_file(const char *path, const char *text, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
	size_t n = strlen(text), done = 0;
	if (fd < 0)
		return tp_error_set(TP_EIO, "cannot create %s: %s", path, strerror(errno));
	while (done < n) {
		ssize_t w = write(fd, text + done, n - done);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			int e = errno;
			close(fd);
			return tp_error_set(TP_EIO, "writing %s: %s", path, strerror(e));
		}
		done += (size_t)w;
	}
	if (close(fd) < 0)
		return tp_error_set(TP_EIO, "writing %s: %s", path, strerror(errno));
	return 0;
}

static int make_dir(const char *path)
{
	if (mkdir(path, 0755) < 0 && errno != EEXIST)
		return tp_error_set(TP_EIO, "cannot create %s: %s", path, strerror(errno));
	return 0;
}

/* Creates dir (and its parents) or checks that it exists and is empty. */
static int prepare_dir(const char *dir)
{
	struct stat st;
	DIR *d;
	struct dirent *e;
	if (stat(dir, &st) < 0) {
		char *copy;
		if (errno != ENOENT)
			return tp_error_set(TP_EIO, "%s: %s", dir, strerror(errno));
		copy = tp_strdup(dir);
		for (char *p = copy + 1; *p; p++) {
			if (*p != '/')
				continue;
			*p = '\0';
			if (mkdir(copy, 0755) < 0 && errno != EEXIST) {
				int rc = tp_error_set(TP_EIO, "cannot create %s: %s", copy,
						      strerror(errno));
				free(copy);
				return rc;
			}
			*p = '/';
		}
		free(copy);
		return make_dir(dir);
	}
	if (!S_ISDIR(st.st_mode))
		return tp_error_set(TP_EEXISTS, "%s exists and is not a directory", dir);
	d = opendir(dir);
	if (!d)
		return tp_error_set(TP_EIO, "%s: %s", dir, strerror(errno));
	while ((e = readdir(d)) != NULL) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		{
			char *first = tp_strdup(e->d_name);
			int rc;
			closedir(d);
			rc = tp_error_set(TP_EEXISTS, "%s is not empty (it holds %s): init only "
						      "fills a new or empty directory", dir, first);
			free(first);
			return rc;
		}
	}
	closedir(d);
	return 0;
}

/* Copies the regular files and directories under src into dst (which exists). Symlinks and
 * special files are refused: a pipeline repository holds plain files. *count += files. */
static int copy_tree(const char *src, const char *dst, size_t *count)
{
	DIR *d = opendir(src);
	struct dirent *e;
	int rc = 0;
	if (!d)
		return tp_error_set(TP_EIO, "%s: %s", src, strerror(errno));
	while (rc == 0 && (e = readdir(d)) != NULL) {
		char *from, *to;
		struct stat st;
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		from = tp_sprintf("%s/%s", src, e->d_name);
		to = tp_sprintf("%s/%s", dst, e->d_name);
		if (lstat(from, &st) < 0) {
			rc = tp_error_set(TP_EIO, "%s: %s", from, strerror(errno));
		} else if (S_ISDIR(st.st_mode)) {
			if ((rc = make_dir(to)) == 0)
				rc = copy_tree(from, to, count);
		} else if (S_ISREG(st.st_mode)) {
			tp_buf b;
			tp_buf_init(&b, (size_t)16 << 20);
			if ((rc = tp_file_read(&b, from, (size_t)16 << 20)) == 0 &&
			    (rc = write_file(to, tp_buf_cstr(&b), 0644)) == 0)
				(*count)++;
			tp_buf_free(&b);
		} else {
			rc = tp_error_set(TP_EINVALID, "%s is not a regular file or directory; the "
						       "example is damaged", from);
		}
		free(from);
		free(to);
	}
	closedir(d);
	return rc;
}

static bool has_pipeline(const char *dir)
{
	char *f = tp_sprintf("%s/tapestry.yaml", dir);
	struct stat st;
	bool ok = stat(f, &st) == 0 && S_ISREG(st.st_mode);
	free(f);
	return ok;
}

static char *dir_of(const char *path)
{
	const char *slash = strrchr(path, '/');
	return slash && slash != path ? tp_strndup(path, (size_t)(slash - path)) : tp_strdup("/");
}

/*
 * Where the kickstart example is: $TAPESTRY_EXAMPLES/kickstart when the variable is set (and
 * nowhere else then), otherwise <prefix>/share/tapestry/examples/kickstart next to the
 * running binary (<prefix>/bin/tapestry), otherwise the source tree this file was built from.
 */
static int find_kickstart(char **out)
{
	const char *env = getenv("TAPESTRY_EXAMPLES");
	char exe[PATH_MAX];
	ssize_t n;
	tp_strlist tried = {0};
	tp_buf msg;
	int rc;

	*out = NULL;
	if (env && *env) {
		char *c = tp_sprintf("%s/kickstart", env);
		if (has_pipeline(c)) {
			*out = c;
			return 0;
		}
		rc = tp_error_set(TP_ENOTFOUND, "TAPESTRY_EXAMPLES is %s, but %s/tapestry.yaml does "
						"not exist", env, c);
		free(c);
		return rc;
	}
	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n > 0) {
		char *bindir, *prefix, *c;
		exe[n] = '\0';
		bindir = dir_of(exe);
		prefix = dir_of(bindir);
		c = tp_sprintf("%s/share/tapestry/examples/kickstart",
			       strcmp(prefix, "/") == 0 ? "" : prefix);
		free(bindir);
		free(prefix);
		if (has_pipeline(c)) {
			*out = c;
			tp_strlist_free(&tried);
			return 0;
		}
		tp_strlist_push_owned(&tried, c);
	}
	{
		/* __FILE__ is <source>/controller/cmd_init.c when built with absolute paths */
		const char *me = __FILE__;
		const char *tail = strstr(me, "controller/cmd_init.c");
		if (me[0] == '/' && tail) {
			char *c = tp_sprintf("%.*sexamples/kickstart", (int)(tail - me), me);
			if (has_pipeline(c)) {
				*out = c;
				tp_strlist_free(&tried);
				return 0;
			}
			tp_strlist_push_owned(&tried, c);
		}
	}
	tp_buf_init(&msg, 0);
	for (size_t i = 0; i < tried.len; i++)
		tp_buf_printf(&msg, "%s%s", i ? ", " : "", tried.items[i]);
	rc = tp_error_set(TP_ENOTFOUND, "cannot find the kickstart example (looked in %s); "
					"install Tapestry with deploy/install.sh, which puts it in "
					"<prefix>/share/tapestry/examples, or set TAPESTRY_EXAMPLES to "
					"an examples directory", msg.len ? msg.ptr : "no place");
	tp_buf_free(&msg);
	tp_strlist_free(&tried);
	return rc;
}

/* ---------------------------------------------------------------- names */

static bool valid_pipeline_name(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > TP_SPEC_MAX_NAME)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
		if (!alnum && (i == 0 || (c != '-' && c != '_')))
			return false;
	}
	return true;
}

/* A pipeline name from the directory's last component: other characters become '-'. */
static char *name_from_dir(const char *dir)
{
	char *copy = tp_strdup(dir), *base, *out;
	size_t n = strlen(copy), j = 0;
	while (n > 1 && copy[n - 1] == '/')
		copy[--n] = '\0';
	base = strrchr(copy, '/') ? strrchr(copy, '/') + 1 : copy;
	if (strcmp(base, ".") == 0 || strcmp(base, "..") == 0 || !*base) {
		char cwd[PATH_MAX];
		free(copy);
		if (strcmp(dir, ".") == 0 && getcwd(cwd, sizeof(cwd)))
			return name_from_dir(cwd);
		return tp_strdup("pipeline");
	}
	out = tp_calloc(1, strlen(base) + 1);
	for (size_t i = 0; base[i] && j < TP_SPEC_MAX_NAME; i++) {
		char c = base[i];
		bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
		if (alnum)
			out[j++] = c;
		else if (j > 0 && out[j - 1] != '-')
			out[j++] = '-';
	}
	while (j > 0 && out[j - 1] == '-')
		out[--j] = '\0';
	free(copy);
	if (j == 0) {
		free(out);
		return tp_strdup("pipeline");
	}
	return out;
}

static int write_skeleton(const char *dir, const char *name, size_t *count)
{
	static const struct {
		const char *rel;
		const char *text;
	} files[] = {
		{"tapestry.yaml", skeleton_tapestry_yaml},
		{"resources/hello.yaml", skeleton_resource},
		{"README.md", skeleton_readme},
		{".gitignore", skeleton_gitignore},
	};
	char *res = tp_sprintf("%s/resources", dir);
	int rc = make_dir(res);
	free(res);
	for (size_t i = 0; rc == 0 && i < sizeof(files) / sizeof(*files); i++) {
		char *text = NULL, *path = tp_sprintf("%s/%s", dir, files[i].rel);
		tp_buf b;
		tp_buf_init(&b, 0);
		/* fill in @NAME@ */
		for (const char *p = files[i].text;;) {
			const char *at = strstr(p, "@NAME@");
			if (!at) {
				tp_buf_puts(&b, p);
				break;
			}
			tp_buf_put(&b, p, (size_t)(at - p));
			tp_buf_puts(&b, name);
			p = at + 6;
		}
		text = tp_buf_detach(&b);
		rc = write_file(path, text, 0644);
		if (rc == 0)
			(*count)++;
		free(text);
		free(path);
	}
	return rc;
}

/* ---------------------------------------------------------------- git */

static const char *git_msg(void)
{
	const git_error *e = git_error_last();
	return e && e->message ? e->message : "unknown libgit2 error";
}

/* Outcome of the Git step, for the summary. */
typedef struct {
	char *enclosing;   /* DIR lies inside this existing work tree: nothing created */
	char *relpath;     /* DIR relative to that work tree (its --path) */
	bool initialised;  /* a new repository was created */
	bool committed;
	char commit[41];
} git_outcome;

static int make_signature(git_signature **sig, git_repository *repo)
{
	const char *name = getenv("GIT_AUTHOR_NAME"), *email = getenv("GIT_AUTHOR_EMAIL");
	if (name && *name && email && *email)
		return git_signature_now(sig, name, email);
	return git_signature_default(sig, repo);
}

static int git_setup(git_outcome *o, const char *dir)
{
	git_repository *repo = NULL;
	git_repository_init_options opts;
	git_buf found = {0};
	git_index *index = NULL;
	git_oid tree_id, commit_id;
	git_tree *tree = NULL;
	git_signature *sig = NULL;
	char *parent = NULL, abs[PATH_MAX];
	int rc = 0;

	if (git_libgit2_init() < 0)
		return tp_error_set(TP_EIO, "libgit2 failed to initialise");
	if (!realpath(dir, abs)) {
		rc = tp_error_set(TP_EIO, "%s: %s", dir, strerror(errno));
		goto done;
	}
	/* inside an existing work tree (a monorepo's pipelines/<name>): no nested repository */
	parent = dir_of(abs);
	if (git_repository_discover(&found, parent, 0, NULL) == 0) {
		git_repository *outer = NULL;
		if (git_repository_open(&outer, found.ptr) == 0 && !git_repository_is_bare(outer) &&
		    git_repository_workdir(outer)) {
			size_t n;
			o->enclosing = tp_strdup(git_repository_workdir(outer));
			n = strlen(o->enclosing);
			if (n > 1 && o->enclosing[n - 1] == '/')
				o->enclosing[--n] = '\0';
			o->relpath = tp_strdup(strncmp(abs, o->enclosing, n) == 0 && abs[n] == '/'
						       ? abs + n + 1
						       : abs);
		}
		git_repository_free(outer);
		if (o->enclosing)
			goto done;
	}
	git_error_clear();

	git_repository_init_options_init(&opts, GIT_REPOSITORY_INIT_OPTIONS_VERSION);
	opts.flags = GIT_REPOSITORY_INIT_MKPATH | GIT_REPOSITORY_INIT_NO_REINIT;
	opts.initial_head = "main";
	if (git_repository_init_ext(&repo, abs, &opts) < 0) {
		rc = tp_error_set(TP_EIO, "git init %s: %s", dir, git_msg());
		goto done;
	}
	o->initialised = true;
	if (make_signature(&sig, repo) < 0) {
		git_error_clear();
		goto done; /* no identity: leave the first commit to the user */
	}
	if (git_repository_index(&index, repo) < 0 ||
	    git_index_add_all(index, NULL, 0, NULL, NULL) < 0 || git_index_write(index) < 0 ||
	    git_index_write_tree(&tree_id, index) < 0 ||
	    git_tree_lookup(&tree, repo, &tree_id) < 0 ||
	    git_commit_create_v(&commit_id, repo, "HEAD", sig, sig, NULL,
				"Start the pipeline (tapestry init)\n", tree, 0) < 0) {
		rc = tp_error_set(TP_EIO, "git commit in %s: %s", dir, git_msg());
		goto done;
	}
	git_oid_tostr(o->commit, sizeof(o->commit), &commit_id);
	o->committed = true;
done:
	git_buf_dispose(&found);
	git_signature_free(sig);
	git_tree_free(tree);
	git_index_free(index);
	git_repository_free(repo);
	free(parent);
	git_libgit2_shutdown();
	return rc;
}

/* ---------------------------------------------------------------- the command */

int tp_cmd_init(int argc, char **argv)
{
	const char *dir = NULL, *name_opt = NULL;
	bool kickstart = false, no_git = false;
	char *example = NULL, *name = NULL;
	git_outcome g = {0};
	tp_tree *tree = NULL;
	tp_pipeline *p = NULL;
	tp_diags diags = {0};
	size_t files = 0;
	int rc;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--kickstart") == 0)
			kickstart = true;
		else if (strcmp(argv[i], "--no-git") == 0)
			no_git = true;
		else if (strcmp(argv[i], "--name") == 0 && i + 1 < argc)
			name_opt = argv[++i];
		else if (strncmp(argv[i], "--name=", 7) == 0)
			name_opt = argv[i] + 7;
		else if (argv[i][0] == '-' && argv[i][1])
			return tp_error_set(TP_EUSAGE, "unknown option %s", argv[i]);
		else if (!dir)
			dir = argv[i];
		else
			return tp_error_set(TP_EUSAGE, "init takes one directory");
	}
	if (!dir)
		return tp_error_set(TP_EUSAGE, "init needs the directory to create");
	if (name_opt && kickstart)
		return tp_error_set(TP_EUSAGE, "--name does not apply to --kickstart (the example "
					       "is the \"rainshield\" pipeline; rename it in "
					       "tapestry.yaml)");
	if (name_opt && !valid_pipeline_name(name_opt))
		return tp_error_set(TP_EUSAGE, "--name \"%s\" is not a valid pipeline name "
					       "(letters, digits, '-' and '_', starting with a letter "
					       "or digit)", name_opt);
	/* find the example before touching anything */
	if (kickstart && (rc = find_kickstart(&example)) < 0)
		return rc;
	if ((rc = prepare_dir(dir)) < 0)
		goto done;
	if (kickstart) {
		rc = copy_tree(example, dir, &files);
	} else {
		name = name_opt ? tp_strdup(name_opt) : name_from_dir(dir);
		rc = write_skeleton(dir, name, &files);
	}
	if (rc < 0)
		goto done;
	/* what we wrote must load exactly as `tapestry validate` would load it */
	if ((rc = tp_tree_fs_open(&tree, dir)) < 0)
		goto done;
	if ((rc = tp_pipeline_load(&p, tree, &diags)) < 0) {
		tp_diags_print(&diags, stderr);
		rc = tp_error_set(TP_EINVALID, "the new pipeline in %s does not validate (a bug in "
					       "tapestry init or a damaged example)", dir);
		goto done;
	}
	if (!no_git && (rc = git_setup(&g, dir)) < 0)
		goto done;

	printf("Created pipeline \"%s\" in %s: %zu files, %zu resource%s%s%s.\n", p->name, dir,
	       files, p->nresources, p->nresources == 1 ? "" : "s",
	       kickstart ? ", copied from " : "", kickstart ? example : "");
	if (g.enclosing)
		printf("%s is inside the Git repository %s: no new repository was made; commit the "
		       "files there.\n", dir, g.enclosing);
	else if (g.committed)
		printf("Initialised a Git repository (branch main) and committed the files as "
		       "%.12s.\n", g.commit);
	else if (g.initialised)
		printf("Initialised a Git repository (branch main); no Git identity is configured, "
		       "so nothing is committed yet.\n");
	printf("\nNext steps:\n");
	printf("  cd %s\n", dir);
	if (g.initialised && !g.committed)
		printf("  git add -A && git commit -m \"Start the pipeline\"\n");
	if (kickstart)
		printf("  # replace the example VPC, subnet and hosted-zone ids in resources/, and "
		       "read README.md (Secrets)\n");
	else
		printf("  # describe your pipeline in resources/*.yaml (`tapestry kinds` lists the "
		       "kinds)\n");
	printf("  tapestry validate                    # every error, as file:line:col\n");
	printf("  tapestry plan --state state.db       # what applying would change; touches "
	       "nothing\n");
	printf("  git remote add origin <URL> && git push -u origin main\n");
	printf("  # then on the controller host (deploy/README.md):\n");
	printf("  tapestry run --repo <URL> --branch main%s%s\n", g.relpath ? " --path " : "",
	       g.relpath ? g.relpath : "");
	rc = 0;
done:
	tp_pipeline_free(p);
	tp_tree_free(tree);
	tp_diags_free(&diags);
	free(g.enclosing);
	free(g.relpath);
	free(example);
	free(name);
	return rc;
}
