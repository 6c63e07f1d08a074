/*
 * A pipeline tree on the local file system (`tapestry validate DIR`, `plan DIR`). Every path
 * is normalised lexically first, then resolved with realpath(3) and checked to stay under the
 * tree's own real root, so neither "../" nor a symlink can make the loader read a file outside
 * the pipeline directory. The Git tree (controller/source) implements the same interface.
 */
#include "spec.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

typedef struct {
	tp_tree base;
	char *root;      /* as given */
	char *realroot;  /* realpath of root */
} fs_tree;

int tp_path_normalise(char **out, const char *path)
{
	tp_buf b;
	const char *p = path;
	size_t *marks = NULL, nmarks = 0;
	int rc = 0;

	*out = NULL;
	tp_buf_init(&b, 4096);
	if (!path || !*path) {
		rc = tp_error_set(TP_EINVALID, "empty path");
		goto done;
	}
	if (path[0] == '/') {
		rc = tp_error_set(TP_EINVALID,
				  "absolute path \"%s\" is not allowed: paths are relative to the "
				  "pipeline directory", path);
		goto done;
	}
	marks = tp_malloc((strlen(path) + 1) * sizeof(*marks));
	while (*p) {
		const char *slash = strchr(p, '/');
		size_t n = slash ? (size_t)(slash - p) : strlen(p);
		if (n == 0 || (n == 1 && p[0] == '.')) {
			/* empty or "." component */
		} else if (n == 2 && p[0] == '.' && p[1] == '.') {
			if (nmarks == 0) {
				rc = tp_error_set(TP_EINVALID,
						  "path \"%s\" escapes the pipeline directory", path);
				goto done;
			}
			b.len = marks[--nmarks];
			if (b.ptr)
				b.ptr[b.len] = '\0';
		} else {
			marks[nmarks++] = b.len;
			if (b.len && (rc = tp_buf_putc(&b, '/')) < 0)
				goto done;
			if ((rc = tp_buf_put(&b, p, n)) < 0)
				goto done;
		}
		p += n;
		if (*p == '/')
			p++;
	}
	if (b.len == 0) {
		rc = tp_error_set(TP_EINVALID, "path \"%s\" names the pipeline directory itself",
				  path);
		goto done;
	}
	*out = tp_buf_detach(&b);
done:
	free(marks);
	tp_buf_free(&b);
	return rc;
}

/* Resolves rel under the tree and checks the result stays inside it. */
static int resolve(fs_tree *t, char **out, const char *rel)
{
	char *joined = rel[0] ? tp_sprintf("%s/%s", t->root, rel) : tp_strdup(t->root);
	char *real = realpath(joined, NULL);
	size_t n = strlen(t->realroot);
	int rc = 0;

	*out = NULL;
	if (!real) {
		rc = tp_error_set(errno == ENOENT || errno == ENOTDIR ? TP_ENOTFOUND : TP_EIO,
				  "%s: %s", rel[0] ? rel : ".", strerror(errno));
		goto done;
	}
	if (strcmp(real, t->realroot) != 0 &&
	    !(strncmp(real, t->realroot, n) == 0 && (real[n] == '/' || n == 1))) {
		rc = tp_error_set(TP_EINVALID,
				  "%s: resolves outside the pipeline directory (symlink to %s)",
				  rel, real);
		goto done;
	}
	*out = real;
	real = NULL;
done:
	free(joined);
	free(real);
	return rc;
}

static int fs_read(tp_tree *tt, tp_buf *out, const char *rel, size_t max)
{
	fs_tree *t = (fs_tree *)tt;
	char *real = NULL;
	int rc = resolve(t, &real, rel);
	if (rc == 0) {
		rc = tp_file_read(out, real, max);
		if (rc < 0) {
			/* name the file by its pipeline path, not the resolved one */
			const char *m = tp_error_last();
			const char *colon = strstr(m, ": ");
			char *tail = tp_strdup(colon ? colon + 2 : m);
			tp_error_set(rc, "%s: %s", rel, tail);
			free(tail);
		}
	}
	free(real);
	return rc;
}

static int fs_list(tp_tree *tt, tp_strlist *out, const char *reldir)
{
	fs_tree *t = (fs_tree *)tt;
	char *real = NULL;
	DIR *d = NULL;
	struct dirent *e;
	int rc = resolve(t, &real, reldir);

	if (rc < 0)
		goto done;
	d = opendir(real);
	if (!d) {
		rc = tp_error_set(errno == ENOENT ? TP_ENOTFOUND : TP_EIO, "%s: %s",
				  reldir[0] ? reldir : ".", strerror(errno));
		goto done;
	}
	while ((e = readdir(d)) != NULL) {
		struct stat st;
		char *full;
		if (e->d_name[0] == '.')
			continue;
		full = tp_sprintf("%s/%s", real, e->d_name);
		/* lstat: symlinks are listed (and checked when read), directories are not */
		if (lstat(full, &st) == 0 && (S_ISREG(st.st_mode) || S_ISLNK(st.st_mode)))
			tp_strlist_push(out, e->d_name);
		free(full);
		if (out->len > TP_SPEC_MAX_FILES) {
			rc = tp_error_set(TP_ETOOBIG, "%s: more than %d files",
					  reldir[0] ? reldir : ".", TP_SPEC_MAX_FILES);
			goto done;
		}
	}
	tp_strlist_sort(out);
done:
	if (d)
		closedir(d);
	free(real);
	return rc;
}

static void fs_free(tp_tree *tt)
{
	fs_tree *t = (fs_tree *)tt;
	free(t->root);
	free(t->realroot);
	free(t);
}

int tp_tree_fs_open(tp_tree **out, const char *dir)
{
	fs_tree *t = NULL;
	struct stat st;
	char *real = NULL;

	*out = NULL;
	if (stat(dir, &st) < 0)
		return tp_error_set(errno == ENOENT ? TP_ENOTFOUND : TP_EIO, "%s: %s", dir,
				    strerror(errno));
	if (!S_ISDIR(st.st_mode))
		return tp_error_set(TP_EINVALID, "%s: not a directory", dir);
	real = realpath(dir, NULL);
	if (!real)
		return tp_error_set(TP_EIO, "%s: %s", dir, strerror(errno));
	t = tp_calloc(1, sizeof(*t));
	t->root = tp_strdup(dir);
	t->realroot = real;
	t->base.read = fs_read;
	t->base.list = fs_list;
	t->base.free = fs_free;
	t->base.root = t->root;
	*out = &t->base;
	return 0;
}

void tp_tree_free(tp_tree *t)
{
	if (t)
		t->free(t);
}
