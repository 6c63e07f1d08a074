/*
 * YAML → node tree with positions. libyaml's event parser feeds a tree this file builds
 * itself, so every node keeps its line and column for error messages, and so the dangerous
 * parts of YAML stay bounded: aliases share nodes instead of copying them (expansion is
 * counted later by the converter against TP_SPEC_MAX_NODES), an alias may only name an anchor
 * whose node is complete (no recursive structures), and nesting depth is capped.
 */
#include "spec_int.h"

#include <stdlib.h>
#include <string.h>

#include <yaml.h>

typedef struct {
	char *name;
	tp_ynode *node;
} anchor;

typedef struct {
	tp_yfile *f;
	const char *file;
	tp_diags *diags;
	tp_ynode *stack[TP_SPEC_MAX_DEPTH + 1];
	size_t depth;
	anchor *anchors;
	size_t nanchors, capanchors;
	char *pending_anchor[TP_SPEC_MAX_DEPTH + 1]; /* anchor of each open container */
	int errors;
} builder;

static tp_ynode *node_new(builder *b, tp_ynode_type type, const yaml_mark_t *m)
{
	tp_ynode *n = tp_calloc(1, sizeof(*n));
	n->type = type;
	n->line = (int)m->line + 1;
	n->col = (int)m->column + 1;
	if (b->f->nall == b->f->capall) {
		b->f->capall = b->f->capall ? b->f->capall * 2 : 64;
		b->f->all = tp_realloc(b->f->all, b->f->capall * sizeof(*b->f->all));
	}
	b->f->all[b->f->nall++] = n;
	return n;
}

static void kid_push(tp_ynode *parent, tp_ynode *kid)
{
	if (parent->nkids == parent->cap) {
		parent->cap = parent->cap ? parent->cap * 2 : 8;
		parent->kids = tp_realloc(parent->kids, parent->cap * sizeof(*parent->kids));
	}
	parent->kids[parent->nkids++] = kid;
}

static void doc_push(tp_yfile *f, tp_ynode *root)
{
	if (f->ndocs == f->capdocs) {
		f->capdocs = f->capdocs ? f->capdocs * 2 : 8;
		f->docs = tp_realloc(f->docs, f->capdocs * sizeof(*f->docs));
	}
	f->docs[f->ndocs++] = root;
}

static void anchor_define(builder *b, const char *name, tp_ynode *n)
{
	/* A redefined anchor shadows the earlier one, as the YAML spec says. */
	if (b->nanchors == b->capanchors) {
		b->capanchors = b->capanchors ? b->capanchors * 2 : 8;
		b->anchors = tp_realloc(b->anchors, b->capanchors * sizeof(*b->anchors));
	}
	b->anchors[b->nanchors].name = tp_strdup(name);
	b->anchors[b->nanchors].node = n;
	b->nanchors++;
}

static tp_ynode *anchor_find(builder *b, const char *name)
{
	for (size_t i = b->nanchors; i > 0; i--)
		if (strcmp(b->anchors[i - 1].name, name) == 0)
			return b->anchors[i - 1].node;
	return NULL;
}

/* Attaches a finished node to the open container or as a document root. */
static void attach(builder *b, tp_ynode *n)
{
	if (b->depth == 0)
		doc_push(b->f, n);
	else
		kid_push(b->stack[b->depth - 1], n);
}

static int cmp_keys(const void *x, const void *y)
{
	const tp_ynode *a = *(tp_ynode *const *)x, *c = *(tp_ynode *const *)y;
	size_t n = a->len < c->len ? a->len : c->len;
	int r = memcmp(a->text, c->text, n);
	if (r)
		return r;
	if (a->len != c->len)
		return a->len < c->len ? -1 : 1;
	/* equal keys: order by position so the later one is reported */
	if (a->line != c->line)
		return a->line - c->line;
	return a->col - c->col;
}

/* Checks a finished mapping: keys are scalars and unique. Sorting key pointers keeps this
 * O(n log n) for hostile mappings with very many keys. These problems are reported but do not
 * stop the parse, so the rest of the file is still checked (the diagnostics fail the load). */
static void check_map(builder *b, tp_ynode *m)
{
	size_t nkeys = m->nkids / 2, nscalar;
	tp_ynode **keys;
	if (nkeys == 0)
		return;
	keys = tp_malloc(nkeys * sizeof(*keys));
	nscalar = 0;
	for (size_t i = 0; i < nkeys; i++) {
		tp_ynode *k = m->kids[2 * i];
		if (k->type != TP_YNODE_SCALAR) {
			tp_diags_add(b->diags, b->file, k->line, k->col,
				     "mapping keys must be scalars, found a %s",
				     tp_ynode_type_name(k));
			continue;
		}
		keys[nscalar++] = k;
	}
	if (nscalar > 1)
		qsort(keys, nscalar, sizeof(*keys), cmp_keys);
	for (size_t i = 1; i < nscalar; i++) {
		if (keys[i]->len == keys[i - 1]->len &&
		    memcmp(keys[i]->text, keys[i - 1]->text, keys[i]->len) == 0) {
			tp_diags_add(b->diags, b->file, keys[i]->line, keys[i]->col,
				     "duplicate key \"%s\" (first at line %d, column %d)",
				     keys[i]->text, keys[i - 1]->line, keys[i - 1]->col);
		}
	}
	free(keys);
}

/* Turns libyaml's error into a diagnostic, with a clearer message for the common mistake of
 * indenting with tabs. */
static void report_parser_error(builder *b, yaml_parser_t *p, const char *text, size_t len)
{
	size_t line = p->problem_mark.line, col = p->problem_mark.column;
	const char *ls = text, *end = text + len;
	for (size_t l = 0; l < line && ls < end; l++) {
		const char *nl = memchr(ls, '\n', (size_t)(end - ls));
		ls = nl ? nl + 1 : end;
	}
	for (const char *q = ls; q < end && (*q == ' ' || *q == '\t'); q++) {
		if (*q == '\t') {
			tp_diags_add(b->diags, b->file, (int)line + 1, (int)(q - ls) + 1,
				     "tab character in indentation (YAML allows only spaces)");
			b->errors++;
			return;
		}
	}
	if (p->context)
		tp_diags_add(b->diags, b->file, (int)line + 1, (int)col + 1,
			     "YAML syntax error: %s (%s at line %zu, column %zu)",
			     p->problem ? p->problem : "unknown problem", p->context,
			     p->context_mark.line + 1, p->context_mark.column + 1);
	else
		tp_diags_add(b->diags, b->file, (int)line + 1, (int)col + 1,
			     "YAML syntax error: %s", p->problem ? p->problem : "unknown problem");
	b->errors++;
}

static void offset_to_pos(const char *text, size_t off, int *line, int *col)
{
	int l = 1, c = 1;
	for (size_t i = 0; i < off; i++) {
		if (text[i] == '\n') {
			l++;
			c = 1;
		} else if (((unsigned char)text[i] & 0xc0) != 0x80) {
			c++;
		}
	}
	*line = l;
	*col = c;
}

static bool open_container(builder *b, tp_ynode *n, const yaml_char_t *anchor_name,
			   const yaml_char_t *tag)
{
	if (b->depth >= TP_SPEC_MAX_DEPTH) {
		tp_diags_add(b->diags, b->file, n->line, n->col,
			     "nesting deeper than %d levels", TP_SPEC_MAX_DEPTH);
		b->errors++;
		return false;
	}
	if (tag)
		n->tag = tp_strdup((const char *)tag);
	b->pending_anchor[b->depth] = anchor_name ? tp_strdup((const char *)anchor_name) : NULL;
	b->stack[b->depth++] = n;
	return true;
}

static void close_container(builder *b)
{
	tp_ynode *n = b->stack[--b->depth];
	char *name = b->pending_anchor[b->depth];
	if (n->type == TP_YNODE_MAP)
		check_map(b, n);
	if (name) {
		anchor_define(b, name, n);
		free(name);
		b->pending_anchor[b->depth] = NULL;
	}
	attach(b, n);
}

int tp_yaml_parse(tp_yfile **out, const char *file, const char *text, size_t len,
		  tp_diags *diags)
{
	yaml_parser_t parser;
	yaml_event_t ev;
	builder b = {0};
	size_t bad = 0;
	bool parser_ok = false, done = false;
	int rc = 0;

	*out = NULL;
	b.f = tp_calloc(1, sizeof(*b.f));
	b.file = file;
	b.diags = diags;

	if (!tp_utf8_valid(text, len, &bad)) {
		int l, c;
		offset_to_pos(text, bad, &l, &c);
		tp_diags_add(diags, file, l, c, "file is not valid UTF-8 (byte 0x%02x)",
			     (unsigned char)text[bad]);
		rc = TP_EINVALID;
		goto done;
	}
	if (memchr(text, '\0', len)) {
		int l, c;
		offset_to_pos(text, (size_t)((const char *)memchr(text, '\0', len) - text), &l, &c);
		tp_diags_add(diags, file, l, c, "file contains a NUL byte");
		rc = TP_EINVALID;
		goto done;
	}

	if (!yaml_parser_initialize(&parser)) {
		rc = tp_error_set(TP_ENOMEM, "libyaml: cannot initialise parser");
		goto done;
	}
	parser_ok = true;
	yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);

	while (!done && b.errors == 0) {
		tp_ynode *n;
		if (!yaml_parser_parse(&parser, &ev)) {
			report_parser_error(&b, &parser, text, len);
			break;
		}
		switch (ev.type) {
		case YAML_STREAM_END_EVENT:
			done = true;
			break;
		case YAML_DOCUMENT_START_EVENT:
			/* anchors are scoped to their document */
			for (size_t i = 0; i < b.nanchors; i++)
				free(b.anchors[i].name);
			b.nanchors = 0;
			break;
		case YAML_SCALAR_EVENT:
			n = node_new(&b, TP_YNODE_SCALAR, &ev.start_mark);
			n->len = ev.data.scalar.length;
			n->text = tp_malloc(n->len + 1);
			memcpy(n->text, ev.data.scalar.value, n->len);
			n->text[n->len] = '\0';
			n->plain = ev.data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
			if (ev.data.scalar.tag)
				n->tag = tp_strdup((const char *)ev.data.scalar.tag);
			if (ev.data.scalar.anchor)
				anchor_define(&b, (const char *)ev.data.scalar.anchor, n);
			attach(&b, n);
			break;
		case YAML_SEQUENCE_START_EVENT:
			n = node_new(&b, TP_YNODE_SEQ, &ev.start_mark);
			if (!open_container(&b, n, ev.data.sequence_start.anchor,
					    ev.data.sequence_start.tag))
				break;
			break;
		case YAML_MAPPING_START_EVENT:
			n = node_new(&b, TP_YNODE_MAP, &ev.start_mark);
			if (!open_container(&b, n, ev.data.mapping_start.anchor,
					    ev.data.mapping_start.tag))
				break;
			break;
		case YAML_SEQUENCE_END_EVENT:
		case YAML_MAPPING_END_EVENT:
			close_container(&b);
			break;
		case YAML_ALIAS_EVENT:
			n = anchor_find(&b, (const char *)ev.data.alias.anchor);
			if (!n) {
				tp_diags_add(diags, file, (int)ev.start_mark.line + 1,
					     (int)ev.start_mark.column + 1,
					     "alias *%s names no complete anchor (undefined, or "
					     "recursive)",
					     (const char *)ev.data.alias.anchor);
				b.errors++;
				break;
			}
			attach(&b, n);
			break;
		default:
			break;
		}
		yaml_event_delete(&ev);
	}
	if (b.errors)
		rc = TP_EINVALID;
done:
	if (parser_ok)
		yaml_parser_delete(&parser);
	for (size_t i = 0; i < b.nanchors; i++)
		free(b.anchors[i].name);
	free(b.anchors);
	for (size_t i = 0; i < b.depth; i++)
		free(b.pending_anchor[i]);
	if (rc == 0)
		*out = b.f;
	else
		tp_yfile_free(b.f);
	return rc;
}

void tp_yfile_free(tp_yfile *f)
{
	if (!f)
		return;
	for (size_t i = 0; i < f->nall; i++) {
		free(f->all[i]->text);
		free(f->all[i]->tag);
		free(f->all[i]->kids);
		free(f->all[i]);
	}
	free(f->all);
	free(f->docs);
	free(f);
}

bool tp_ynode_is_null(const tp_ynode *n)
{
	if (!n)
		return true;
	if (n->type != TP_YNODE_SCALAR || !n->plain)
		return false;
	if (n->tag && strcmp(n->tag, "tag:yaml.org,2002:null") != 0)
		return false;
	return n->len == 0 || strcmp(n->text, "~") == 0 || strcmp(n->text, "null") == 0 ||
	       strcmp(n->text, "Null") == 0 || strcmp(n->text, "NULL") == 0;
}

const tp_ynode *tp_ynode_get(const tp_ynode *map, const char *key)
{
	if (!map || map->type != TP_YNODE_MAP)
		return NULL;
	for (size_t i = 0; i + 1 < map->nkids; i += 2) {
		const tp_ynode *k = map->kids[i];
		if (k->type == TP_YNODE_SCALAR && strcmp(k->text, key) == 0)
			return map->kids[i + 1];
	}
	return NULL;
}

const char *tp_ynode_type_name(const tp_ynode *n)
{
	if (!n)
		return "nothing";
	switch (n->type) {
	case TP_YNODE_SCALAR: return tp_ynode_is_null(n) ? "null" : "scalar";
	case TP_YNODE_SEQ: return "list";
	case TP_YNODE_MAP: return "mapping";
	}
	return "node";
}
