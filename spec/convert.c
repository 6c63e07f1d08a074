/*
 * Schema walk: a YAML node tree checked against a kind's tp_field schema and turned into the
 * JSON spec the rest of the engine works on. Scalars are typed by the schema, not guessed
 * (a string field keeps "1.10" and "NO" as written; a bool field accepts only true/false).
 * References inside strings are parsed and collected with their positions; sensitive paths
 * are recorded; every alias expansion is counted against TP_SPEC_MAX_NODES.
 */
#include "spec_int.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define TAG_PREFIX "tag:yaml.org,2002:"

static char *join(const char *path, const char *key)
{
	return path[0] ? tp_sprintf("%s.%s", path, key) : tp_strdup(key);
}

char *tp_path_display(const char *prefix, const char *path)
{
	tp_buf b;
	const char *p = path;
	tp_buf_init(&b, 1 << 20);
	tp_buf_puts(&b, prefix ? prefix : "");
	while (*p) {
		const char *dot = strchr(p, '.');
		size_t n = dot ? (size_t)(dot - p) : strlen(p);
		bool index = n > 0 && strspn(p, "0123456789") >= n;
		if (index)
			tp_buf_printf(&b, "[%.*s]", (int)n, p);
		else if (b.len)
			tp_buf_printf(&b, ".%.*s", (int)n, p);
		else
			tp_buf_put(&b, p, n);
		p += n;
		if (*p == '.')
			p++;
	}
	return tp_buf_detach(&b);
}

static void err(tp_conv *c, const tp_ynode *n, const char *path, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static void err(tp_conv *c, const tp_ynode *n, const char *path, const char *fmt, ...)
{
	va_list ap;
	tp_buf msg;
	char *where = tp_path_display(c->prefix, path);
	tp_buf_init(&msg, 8192);
	va_start(ap, fmt);
	tp_buf_vprintf(&msg, fmt, ap);
	va_end(ap);
	tp_diags_add(c->diags, c->file, n ? n->line : 0, n ? n->col : 0, "%s%s%s", where,
		     where[0] ? ": " : "", tp_buf_cstr(&msg));
	tp_buf_free(&msg);
	free(where);
	c->errors++;
}

static bool spend(tp_conv *c, const tp_ynode *n)
{
	if (c->budget == 0) {
		if (!c->budget_hit)
			tp_diags_add(c->diags, c->file, n->line, n->col,
				     "document expands to more than %d YAML nodes (aliases are "
				     "expanded; refusing a possible alias bomb)", TP_SPEC_MAX_NODES);
		c->budget_hit = true;
		c->errors++;
		return false;
	}
	c->budget--;
	return true;
}

static const char *type_name(tp_type t)
{
	switch (t) {
	case TP_TYPE_STRING: return "a string";
	case TP_TYPE_INT: return "an integer";
	case TP_TYPE_NUMBER: return "a number";
	case TP_TYPE_BOOL: return "true or false";
	case TP_TYPE_OBJECT: return "a mapping";
	case TP_TYPE_LIST: return "a list";
	case TP_TYPE_MAP: return "a mapping";
	case TP_TYPE_ANY: return "a value";
	}
	return "a value";
}

static void sensitive_push(tp_conv *c, const char *path)
{
	if (!tp_strlist_contains(&c->sensitive, path))
		tp_strlist_push(&c->sensitive, path);
}

typedef struct {
	tp_conv *c;
	const tp_ynode *n;
	const char *path;
	bool secret;
	bool resource;
} scan_ctx;

static int on_ref(void *ctx, const tp_ref *r, size_t start, size_t end)
{
	scan_ctx *s = ctx;
	tp_conv *c = s->c;
	tp_ref *copy;
	(void)start;
	(void)end;
	if (r->type == TP_REF_SECRET)
		s->secret = true;
	else
		s->resource = true;
	if (c->nrefs == c->caprefs) {
		c->caprefs = c->caprefs ? c->caprefs * 2 : 8;
		c->refs = tp_realloc(c->refs, c->caprefs * sizeof(*c->refs));
	}
	copy = &c->refs[c->nrefs++];
	memset(copy, 0, sizeof(*copy));
	copy->type = r->type;
	copy->kind = r->kind ? tp_strdup(r->kind) : NULL;
	copy->name = r->name ? tp_strdup(r->name) : NULL;
	copy->output = r->output ? tp_strdup(r->output) : NULL;
	copy->scheme = r->scheme ? tp_strdup(r->scheme) : NULL;
	copy->location = r->location ? tp_strdup(r->location) : NULL;
	copy->path = tp_strdup(s->path);
	copy->line = s->n->line;
	copy->col = s->n->col;
	return 0;
}

/* References in any string value: parsed, collected, and marking the path sensitive when a
 * secret flows into it. */
static bool scan_string(tp_conv *c, const tp_ynode *n, const char *path, bool *has_resource)
{
	size_t before = c->nrefs;
	scan_ctx s = {c, n, path, false, false};
	if (tp_refs_scan(n->text, on_ref, &s) < 0) {
		err(c, n, path, "%s", tp_error_last());
		return false;
	}
	if (s.resource && !c->allow_resource_refs) {
		err(c, n, path, "resource references are not allowed here");
		for (size_t i = before; i < c->nrefs; i++)
			tp_ref_clear(&c->refs[i]);
		c->nrefs = before;
		return false;
	}
	if (s.secret)
		sensitive_push(c, path);
	if (has_resource)
		*has_resource = s.resource;
	return true;
}

static bool has_nul(const tp_ynode *n)
{
	return memchr(n->text, '\0', n->len) != NULL;
}

static bool is_str_tag(const tp_ynode *n)
{
	return n->tag && strcmp(n->tag, TAG_PREFIX "str") == 0;
}

static bool check_tag(tp_conv *c, const tp_ynode *n, const char *path)
{
	if (!n->tag || strncmp(n->tag, TAG_PREFIX, strlen(TAG_PREFIX)) == 0 ||
	    strcmp(n->tag, "!") == 0)
		return true;
	err(c, n, path, "YAML tag %s is not supported here", n->tag);
	return false;
}

static json_t *conv_file(tp_conv *c, const tp_ynode *n, const char *path)
{
	char *norm = NULL;
	tp_buf content;
	size_t bad;
	json_t *out = NULL;

	tp_buf_init(&content, TP_SPEC_MAX_FILE_BYTES);
	if (strstr(n->text, "${")) {
		err(c, n, path, "file paths cannot contain references");
		goto done;
	}
	if (tp_path_normalise(&norm, n->text) < 0) {
		err(c, n, path, "%s", tp_error_last());
		goto done;
	}
	if (c->tree) {
		int rc = c->tree->read(c->tree, &content, norm, TP_SPEC_MAX_FILE_BYTES);
		if (rc == TP_ENOTFOUND) {
			err(c, n, path, "file \"%s\" does not exist in the pipeline directory",
			    norm);
			goto done;
		} else if (rc < 0) {
			err(c, n, path, "%s", tp_error_last());
			goto done;
		}
		if (!tp_utf8_valid(content.ptr, content.len, &bad)) {
			err(c, n, path, "file \"%s\" is not valid UTF-8 (at byte %zu)", norm, bad);
			goto done;
		}
	}
	if (c->tree) {
		/* The value carries the content's digest, so that changing the file in Git
		 * changes the spec (a new template updates the stack, new SQL replaces the view)
		 * and the engine can check it reads the same content that was planned. */
		uint8_t d[TP_SHA256_LEN];
		char hex[2 * TP_SHA256_LEN + 1];
		char *v;
		tp_sha256(d, content.ptr ? content.ptr : "", content.len);
		tp_hex_encode(hex, d, sizeof(d));
		hex[TP_FILE_DIGEST_HEX] = '\0';
		v = tp_sprintf("%s" TP_FILE_DIGEST_SEP "%s", norm, hex);
		out = json_string(v);
		free(v);
	} else {
		out = json_string(norm);
	}
done:
	free(norm);
	tp_buf_free(&content);
	return out;
}

static json_t *conv_string(tp_conv *c, const tp_ynode *n, const tp_field *f, const char *path)
{
	bool has_resource = false;
	if (n->type != TP_YNODE_SCALAR) {
		err(c, n, path, "expected a string, got a %s", tp_ynode_type_name(n));
		return NULL;
	}
	if (has_nul(n)) {
		err(c, n, path, "strings must not contain NUL bytes");
		return NULL;
	}
	if (f->flags & TP_F_FILE)
		return conv_file(c, n, path);
	if ((f->flags & TP_F_NOREF) && strstr(n->text, "${")) {
		err(c, n, path, "references are not allowed in this field");
		return NULL;
	}
	if ((f->flags & TP_F_SECRET_REF) && !tp_ref_is_whole_secret(n->text)) {
		err(c, n, path,
		    "must be a secret reference such as ${secret:ssm:/path}, ${secret:env:NAME} or "
		    "${secret:file:/path}: secret values never live in Git");
		return NULL;
	}
	if (!scan_string(c, n, path, &has_resource))
		return NULL;
	if (f->enums && !strstr(n->text, "${")) {
		size_t i, k;
		tp_buf list;
		for (i = 0; f->enums[i]; i++)
			if (strcmp(f->enums[i], n->text) == 0)
				break;
		if (!f->enums[i]) {
			tp_buf_init(&list, 4096);
			for (k = 0; f->enums[k]; k++)
				tp_buf_printf(&list, "%s%s", k ? ", " : "", f->enums[k]);
			err(c, n, path, "\"%s\" is not one of: %s", n->text, tp_buf_cstr(&list));
			tp_buf_free(&list);
			return NULL;
		}
	}
	if (f->flags & (TP_F_SENSITIVE | TP_F_SECRET_REF))
		sensitive_push(c, path);
	return json_stringn(n->text, n->len);
}

/* Scalar shapes per the YAML 1.2 core schema. */
static bool parse_int(const char *s, json_int_t *out)
{
	char *end = NULL;
	long long v;
	if (!*s || strspn(s, "+-0123456789") != strlen(s))
		return false;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno || *end)
		return false;
	*out = (json_int_t)v;
	return true;
}

static bool parse_float(const char *s, double *out)
{
	char *end = NULL;
	double v;
	if (!*s || strspn(s, "+-0123456789.eE") != strlen(s) || !strpbrk(s, "0123456789"))
		return false;
	errno = 0;
	v = strtod(s, &end);
	if (errno || *end || !isfinite(v))
		return false;
	*out = v;
	return true;
}

static int parse_bool(const char *s)
{
	if (!strcmp(s, "true") || !strcmp(s, "True") || !strcmp(s, "TRUE"))
		return 1;
	if (!strcmp(s, "false") || !strcmp(s, "False") || !strcmp(s, "FALSE"))
		return 0;
	return -1;
}

static json_t *conv_scalar_typed(tp_conv *c, const tp_ynode *n, const tp_field *f,
				 const char *path)
{
	json_int_t iv;
	double dv;
	int bv;

	if (n->type != TP_YNODE_SCALAR) {
		err(c, n, path, "expected %s, got a %s", type_name(f->type), tp_ynode_type_name(n));
		return NULL;
	}
	if (!n->plain || is_str_tag(n)) {
		err(c, n, path, "expected %s, got the quoted string \"%s\"", type_name(f->type),
		    n->text);
		return NULL;
	}
	switch (f->type) {
	case TP_TYPE_INT:
		if (!parse_int(n->text, &iv)) {
			err(c, n, path, "expected an integer, got \"%s\"", n->text);
			return NULL;
		}
		if (f->min < f->max && (iv < f->min || iv > f->max)) {
			err(c, n, path, "%lld is out of range (%lld to %lld)", (long long)iv,
			    (long long)f->min, (long long)f->max);
			return NULL;
		}
		return json_integer(iv);
	case TP_TYPE_NUMBER:
		if (parse_int(n->text, &iv))
			return json_integer(iv);
		if (!parse_float(n->text, &dv)) {
			err(c, n, path, "expected a number, got \"%s\"", n->text);
			return NULL;
		}
		return json_real(dv);
	default:
		bv = parse_bool(n->text);
		if (bv < 0) {
			err(c, n, path, "expected true or false, got \"%s\"", n->text);
			return NULL;
		}
		return json_boolean(bv);
	}
}

static json_t *conv_any(tp_conv *c, const tp_ynode *n, const char *path)
{
	json_t *out;
	json_int_t iv;
	double dv;
	int bv;

	if (!spend(c, n) || !check_tag(c, n, path))
		return NULL;
	switch (n->type) {
	case TP_YNODE_SCALAR:
		if (tp_ynode_is_null(n))
			return json_null();
		if (n->plain && !is_str_tag(n)) {
			if ((bv = parse_bool(n->text)) >= 0)
				return json_boolean(bv);
			if (parse_int(n->text, &iv))
				return json_integer(iv);
			if (parse_float(n->text, &dv))
				return json_real(dv);
		}
		if (has_nul(n)) {
			err(c, n, path, "strings must not contain NUL bytes");
			return NULL;
		}
		if (!scan_string(c, n, path, NULL))
			return NULL;
		return json_stringn(n->text, n->len);
	case TP_YNODE_SEQ:
		out = json_array();
		for (size_t i = 0; i < n->nkids; i++) {
			char idx[32];
			char *sub;
			json_t *v;
			snprintf(idx, sizeof(idx), "%zu", i);
			sub = join(path, idx);
			v = conv_any(c, n->kids[i], sub);
			free(sub);
			if (!v) {
				json_decref(out);
				return NULL;
			}
			json_array_append_new(out, v);
		}
		return out;
	case TP_YNODE_MAP:
		out = json_object();
		for (size_t i = 0; i + 1 < n->nkids; i += 2) {
			const tp_ynode *k = n->kids[i];
			char *sub;
			json_t *v;
			if (k->type != TP_YNODE_SCALAR)
				continue; /* reported by the parser */
			if (k->plain && strcmp(k->text, "<<") == 0) {
				err(c, k, path, "YAML merge keys (<<) are not supported");
				json_decref(out);
				return NULL;
			}
			sub = join(path, k->text);
			v = conv_any(c, n->kids[i + 1], sub);
			free(sub);
			if (!v) {
				json_decref(out);
				return NULL;
			}
			json_object_set_new(out, k->text, v);
		}
		return out;
	}
	return NULL;
}

static json_t *conv_list(tp_conv *c, const tp_ynode *n, const tp_field *f, const char *path)
{
	json_t *out;
	bool ok = true;
	if (n->type != TP_YNODE_SEQ) {
		err(c, n, path, "expected a list, got a %s", tp_ynode_type_name(n));
		return NULL;
	}
	out = json_array();
	for (size_t i = 0; i < n->nkids; i++) {
		char idx[32];
		char *sub;
		json_t *v;
		snprintf(idx, sizeof(idx), "%zu", i);
		sub = join(path, idx);
		if (tp_ynode_is_null(n->kids[i])) {
			err(c, n->kids[i], sub, "list items must not be null");
			v = NULL;
		} else {
			v = tp_conv_field(c, n->kids[i], f->items, sub);
		}
		free(sub);
		if (v)
			json_array_append_new(out, v);
		else
			ok = false;
		if (c->budget_hit)
			break;
	}
	if (!ok) {
		json_decref(out);
		return NULL;
	}
	return out;
}

static json_t *conv_map(tp_conv *c, const tp_ynode *n, const tp_field *f, const char *path)
{
	json_t *out;
	bool ok = true;
	if (n->type != TP_YNODE_MAP) {
		err(c, n, path, "expected a mapping, got a %s", tp_ynode_type_name(n));
		return NULL;
	}
	out = json_object();
	for (size_t i = 0; i + 1 < n->nkids; i += 2) {
		const tp_ynode *k = n->kids[i], *v = n->kids[i + 1];
		char *sub;
		json_t *jv;
		if (k->type != TP_YNODE_SCALAR)
			continue;
		if (k->plain && strcmp(k->text, "<<") == 0) {
			err(c, k, path, "YAML merge keys (<<) are not supported");
			ok = false;
			continue;
		}
		if (k->len == 0 || strchr(k->text, '.')) {
			err(c, k, path, "key \"%s\" must be non-empty and contain no dots",
			    k->text);
			ok = false;
			continue;
		}
		sub = join(path, k->text);
		jv = tp_ynode_is_null(v) ? json_null() : tp_conv_field(c, v, f->items, sub);
		free(sub);
		if (jv)
			json_object_set_new(out, k->text, jv);
		else
			ok = false;
		if (c->budget_hit)
			break;
	}
	if (!ok) {
		json_decref(out);
		return NULL;
	}
	return out;
}

static const char *const *field_names(const tp_field *fields, size_t *n)
{
	static _Thread_local const char *names[128];
	size_t k = 0;
	for (; fields[k].name && k < 128; k++)
		names[k] = fields[k].name;
	*n = k;
	return names;
}

json_t *tp_conv_object(tp_conv *c, const tp_ynode *n, const tp_field *fields, const char *path)
{
	json_t *out;
	bool ok = true;

	if (!n || n->type != TP_YNODE_MAP) {
		err(c, n, path, "expected a mapping, got a %s", tp_ynode_type_name(n));
		return NULL;
	}
	out = json_object();
	for (size_t i = 0; i + 1 < n->nkids; i += 2) {
		const tp_ynode *k = n->kids[i], *v = n->kids[i + 1];
		const tp_field *f = NULL;
		char *sub;
		json_t *jv;
		if (k->type != TP_YNODE_SCALAR)
			continue;
		for (size_t j = 0; fields[j].name; j++)
			if (strcmp(fields[j].name, k->text) == 0)
				f = &fields[j];
		sub = join(path, k->text);
		if (!f) {
			size_t nn;
			const char *const *names = field_names(fields, &nn);
			const char *near = tp_suggest(k->text, names, nn);
			tp_buf list;
			tp_buf_init(&list, 8192);
			for (size_t j = 0; j < nn; j++)
				tp_buf_printf(&list, "%s%s", j ? ", " : "", names[j]);
			if (near)
				err(c, k, sub, "unknown field (did you mean \"%s\"?)", near);
			else if (nn)
				err(c, k, sub, "unknown field (known fields: %s)", tp_buf_cstr(&list));
			else
				err(c, k, sub, "unknown field (this takes no fields)");
			tp_buf_free(&list);
			free(sub);
			ok = false;
			continue;
		}
		if (tp_ynode_is_null(v)) {
			jv = NULL;
		} else {
			jv = tp_conv_field(c, v, f, sub);
			if (!jv)
				ok = false;
		}
		free(sub);
		if (jv)
			json_object_set_new(out, k->text, jv);
		if (c->budget_hit)
			break;
	}
	for (size_t j = 0; fields[j].name; j++) {
		const tp_field *f = &fields[j];
		if (json_object_get(out, f->name))
			continue;
		if (f->def) {
			json_error_t je;
			json_t *d = json_loads(f->def, JSON_DECODE_ANY, &je);
			if (d)
				json_object_set_new(out, f->name, d);
		} else if ((f->flags & TP_F_REQUIRED) &&
			   (!tp_ynode_get(n, f->name) || tp_ynode_is_null(tp_ynode_get(n, f->name)))) {
			/* (present but invalid was reported where it is) */
			char *sub = join(path, f->name);
			err(c, n, sub, "missing required field");
			free(sub);
			ok = false;
		}
	}
	/* A partial object is returned even when fields failed (errors are counted in c), so
	 * callers can go on checking what did convert and report everything in one pass. */
	(void)ok;
	return out;
}

json_t *tp_conv_field(tp_conv *c, const tp_ynode *n, const tp_field *f, const char *path)
{
	if (!spend(c, n) || !check_tag(c, n, path))
		return NULL;
	if (tp_ynode_is_null(n))
		return NULL;
	switch (f->type) {
	case TP_TYPE_STRING: return conv_string(c, n, f, path);
	case TP_TYPE_INT:
	case TP_TYPE_NUMBER:
	case TP_TYPE_BOOL: return conv_scalar_typed(c, n, f, path);
	case TP_TYPE_OBJECT: return tp_conv_object(c, n, f->fields, path);
	case TP_TYPE_LIST: return conv_list(c, n, f, path);
	case TP_TYPE_MAP: return conv_map(c, n, f, path);
	case TP_TYPE_ANY: {
		json_t *v = conv_any(c, n, path);
		if (v && (f->flags & TP_F_SENSITIVE))
			sensitive_push(c, path);
		return v;
	}
	}
	return NULL;
}

void tp_conv_free(tp_conv *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < c->nrefs; i++)
		tp_ref_clear(&c->refs[i]);
	free(c->refs);
	c->refs = NULL;
	c->nrefs = c->caprefs = 0;
	tp_strlist_free(&c->sensitive);
}

const tp_ynode *tp_ynode_at_path(const tp_ynode *root, const char *path)
{
	const tp_ynode *cur = root;
	const char *p = path;
	char seg[256];
	while (cur && *p) {
		const char *dot = strchr(p, '.');
		size_t n = dot ? (size_t)(dot - p) : strlen(p);
		const tp_ynode *next = NULL;
		if (n >= sizeof(seg))
			break;
		memcpy(seg, p, n);
		seg[n] = '\0';
		if (cur->type == TP_YNODE_MAP) {
			for (size_t i = 0; i + 1 < cur->nkids; i += 2)
				if (cur->kids[i]->type == TP_YNODE_SCALAR &&
				    strcmp(cur->kids[i]->text, seg) == 0)
					next = cur->kids[i + 1];
		} else if (cur->type == TP_YNODE_SEQ) {
			char *end = NULL;
			unsigned long idx = strtoul(seg, &end, 10);
			if (*end == '\0' && idx < cur->nkids)
				next = cur->kids[idx];
		}
		if (!next)
			break;
		cur = next;
		p += n;
		if (*p == '.')
			p++;
	}
	return cur;
}

const char *tp_suggest(const char *word, const char *const *candidates, size_t n)
{
	const char *best = NULL;
	size_t best_d = (size_t)-1, wl = strlen(word);
	size_t limit = wl / 3 > 2 ? wl / 3 : 2;
	if (wl > 64)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		size_t cl = strlen(candidates[i]), row[66], d;
		if (cl > 64)
			continue;
		for (size_t j = 0; j <= cl; j++)
			row[j] = j;
		for (size_t a = 1; a <= wl; a++) {
			size_t prev = row[0];
			row[0] = a;
			for (size_t b = 1; b <= cl; b++) {
				size_t cur = row[b];
				size_t cost = word[a - 1] == candidates[i][b - 1] ? 0 : 1;
				size_t m = prev + cost;
				if (row[b] + 1 < m)
					m = row[b] + 1;
				if (row[b - 1] + 1 < m)
					m = row[b - 1] + 1;
				row[b] = m;
				prev = cur;
			}
		}
		d = row[cl];
		if (d < best_d) {
			best_d = d;
			best = candidates[i];
		}
	}
	return best_d <= limit ? best : NULL;
}
