/*
 * The bounded growable buffer and the string list. Every byte Tapestry reads from a file, a
 * socket or an API lands in a tp_buf whose cap bounds what hostile input can cost.
 */
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

void tp_buf_init(tp_buf *b, size_t max)
{
	b->ptr = NULL;
	b->len = 0;
	b->cap = 0;
	b->max = max ? max : TP_BUF_DEFAULT_MAX;
}

static int grow(tp_buf *b, size_t extra)
{
	size_t need, cap;
	if (extra > b->max || b->len > b->max - extra)
		return tp_error_set(TP_ETOOBIG, "buffer limit of %zu bytes exceeded", b->max);
	need = b->len + extra + 1;
	if (need <= b->cap)
		return 0;
	cap = b->cap ? b->cap : 64;
	while (cap < need)
		cap = cap > SIZE_MAX / 2 ? need : cap * 2;
	b->ptr = tp_realloc(b->ptr, cap);
	b->cap = cap;
	return 0;
}

int tp_buf_put(tp_buf *b, const void *data, size_t len)
{
	int rc = grow(b, len);
	if (rc < 0)
		return rc;
	if (len)
		memcpy(b->ptr + b->len, data, len);
	b->len += len;
	b->ptr[b->len] = '\0';
	return 0;
}

int tp_buf_puts(tp_buf *b, const char *s)
{
	return tp_buf_put(b, s, strlen(s));
}

int tp_buf_putc(tp_buf *b, char c)
{
	return tp_buf_put(b, &c, 1);
}

int tp_buf_vprintf(tp_buf *b, const char *fmt, va_list ap)
{
	va_list cp;
	int n, rc;
	va_copy(cp, ap);
	n = vsnprintf(NULL, 0, fmt, cp);
	va_end(cp);
	if (n < 0)
		return tp_error_set(TP_ERROR, "format error");
	rc = grow(b, (size_t)n);
	if (rc < 0)
		return rc;
	vsnprintf(b->ptr + b->len, (size_t)n + 1, fmt, ap);
	b->len += (size_t)n;
	return 0;
}

int tp_buf_printf(tp_buf *b, const char *fmt, ...)
{
	va_list ap;
	int rc;
	va_start(ap, fmt);
	rc = tp_buf_vprintf(b, fmt, ap);
	va_end(ap);
	return rc;
}

void tp_buf_clear(tp_buf *b)
{
	b->len = 0;
	if (b->ptr)
		b->ptr[0] = '\0';
}

char *tp_buf_detach(tp_buf *b)
{
	char *p = b->ptr ? b->ptr : tp_strdup("");
	b->ptr = NULL;
	b->len = 0;
	b->cap = 0;
	return p;
}

const char *tp_buf_cstr(const tp_buf *b)
{
	return b->ptr ? b->ptr : "";
}

void tp_buf_free(tp_buf *b)
{
	if (!b)
		return;
	free(b->ptr);
	b->ptr = NULL;
	b->len = 0;
	b->cap = 0;
}

int tp_file_read(tp_buf *out, const char *path, size_t max)
{
	int fd = -1, rc = 0;
	struct stat st;
	char chunk[65536];

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		rc = tp_error_set(errno == ENOENT ? TP_ENOTFOUND : TP_EIO, "%s: %s", path,
				  strerror(errno));
		goto done;
	}
	if (fstat(fd, &st) < 0) {
		rc = tp_error_set(TP_EIO, "%s: %s", path, strerror(errno));
		goto done;
	}
	if (!S_ISREG(st.st_mode)) {
		rc = tp_error_set(TP_EINVALID, "%s: not a regular file", path);
		goto done;
	}
	if ((uint64_t)st.st_size > max) {
		rc = tp_error_set(TP_ETOOBIG, "%s: file is %lld bytes, over the limit of %zu bytes",
				  path, (long long)st.st_size, max);
		goto done;
	}
	tp_buf_clear(out);
	for (;;) {
		ssize_t n = read(fd, chunk, sizeof(chunk));
		if (n < 0) {
			if (errno == EINTR)
				continue;
			rc = tp_error_set(TP_EIO, "%s: %s", path, strerror(errno));
			goto done;
		}
		if (n == 0)
			break;
		if (out->len + (size_t)n > max) {
			rc = tp_error_set(TP_ETOOBIG, "%s: file grew over the limit of %zu bytes",
					  path, max);
			goto done;
		}
		if ((rc = tp_buf_put(out, chunk, (size_t)n)) < 0)
			goto done;
	}
	if (!out->ptr)
		rc = tp_buf_put(out, "", 0);
done:
	if (fd >= 0)
		close(fd);
	return rc;
}

void tp_strlist_push_owned(tp_strlist *l, char *s)
{
	if (l->len == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 8;
		l->items = tp_realloc(l->items, l->cap * sizeof(char *));
	}
	l->items[l->len++] = s;
}

void tp_strlist_push(tp_strlist *l, const char *s)
{
	tp_strlist_push_owned(l, tp_strdup(s));
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

void tp_strlist_sort(tp_strlist *l)
{
	if (l->len > 1)
		qsort(l->items, l->len, sizeof(char *), cmp_str);
}

bool tp_strlist_contains(const tp_strlist *l, const char *s)
{
	for (size_t i = 0; i < l->len; i++)
		if (strcmp(l->items[i], s) == 0)
			return true;
	return false;
}

void tp_strlist_free(tp_strlist *l)
{
	if (!l)
		return;
	for (size_t i = 0; i < l->len; i++)
		free(l->items[i]);
	free(l->items);
	l->items = NULL;
	l->len = 0;
	l->cap = 0;
}
