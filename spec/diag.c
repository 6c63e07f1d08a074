/*
 * Diagnostics: every problem the loader finds, with file:line:col, collected so that
 * `tapestry validate` reports all of them in one pass. Bounded: past `max` they are counted.
 */
#include "spec.h"

#include <stdlib.h>
#include <string.h>

void tp_diags_add(tp_diags *d, const char *file, int line, int col, const char *fmt, ...)
{
	va_list ap;
	tp_buf msg;
	size_t max = d->max ? d->max : 1000;

	if (d->len >= max) {
		d->dropped++;
		return;
	}
	if (d->len == d->cap) {
		d->cap = d->cap ? d->cap * 2 : 16;
		d->items = tp_realloc(d->items, d->cap * sizeof(*d->items));
	}
	tp_buf_init(&msg, 8192);
	va_start(ap, fmt);
	if (tp_buf_vprintf(&msg, fmt, ap) < 0)
		tp_buf_puts(&msg, "(message too long)");
	va_end(ap);
	d->items[d->len].file = tp_strdup(file ? file : "");
	d->items[d->len].line = line;
	d->items[d->len].col = col;
	d->items[d->len].msg = tp_buf_detach(&msg);
	d->len++;
}

static int cmp_diag(const void *x, const void *y)
{
	const tp_diag *a = x, *b = y;
	int r = strcmp(a->file, b->file);
	if (r)
		return r;
	if (a->line != b->line)
		return a->line < b->line ? -1 : 1;
	if (a->col != b->col)
		return a->col < b->col ? -1 : 1;
	return strcmp(a->msg, b->msg);
}

void tp_diags_print(tp_diags *d, FILE *f)
{
	if (d->len > 1)
		qsort(d->items, d->len, sizeof(*d->items), cmp_diag);
	for (size_t i = 0; i < d->len; i++) {
		const tp_diag *g = &d->items[i];
		if (g->line > 0)
			fprintf(f, "%s:%d:%d: %s\n", g->file, g->line, g->col, g->msg);
		else if (g->file[0])
			fprintf(f, "%s: %s\n", g->file, g->msg);
		else
			fprintf(f, "%s\n", g->msg);
	}
	if (d->dropped)
		fprintf(f, "... and %zu more errors\n", d->dropped);
}

void tp_diags_free(tp_diags *d)
{
	if (!d)
		return;
	for (size_t i = 0; i < d->len; i++) {
		free(d->items[i].file);
		free(d->items[i].msg);
	}
	free(d->items);
	d->items = NULL;
	d->len = d->cap = 0;
	d->dropped = 0;
}
