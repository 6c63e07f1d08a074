/*
 * The plan: desired (spec) × last applied and last observed (state) → ordered actions with
 * field-level changes. Deletes of resources removed from Git come first, dependants before
 * what they depend on; then every resource in Git in dependency order, each created, updated,
 * replaced or left alone. Lifecycle rules (prevent_destroy, the prune guard) are checked last
 * and turn into plan errors. See diff.h for the semantics.
 */
#include "diff.h"

#include <stdlib.h>
#include <string.h>

#define MASKED "**********"

const char *tp_action_name(tp_action a)
{
	switch (a) {
	case TP_ACTION_NOOP: return "no-op";
	case TP_ACTION_CREATE: return "create";
	case TP_ACTION_UPDATE: return "update";
	case TP_ACTION_REPLACE: return "replace";
	case TP_ACTION_DELETE: return "delete";
	case TP_ACTION_FORGET: return "forget";
	}
	return "?";
}

json_t *tp_unknown_new(void)
{
	return json_pack("{s:b}", TP_UNKNOWN_KEY, 1);
}

bool tp_is_unknown(const json_t *v)
{
	return json_is_object(v) && json_object_size(v) == 1 &&
	       json_object_get(v, TP_UNKNOWN_KEY) != NULL;
}

bool tp_is_absent(const json_t *observed)
{
	return json_is_object(observed) && json_is_true(json_object_get(observed, TP_ABSENT_KEY));
}

static bool is_hmac(const json_t *v)
{
	return json_is_object(v) && json_object_size(v) == 1 &&
	       json_is_string(json_object_get(v, TP_HMAC_KEY));
}

static bool contains_unknown(const json_t *v)
{
	const char *k;
	json_t *c;
	size_t i;
	if (tp_is_unknown(v))
		return true;
	if (json_is_object(v)) {
		json_object_foreach((json_t *)(uintptr_t)v, k, c)
			if (contains_unknown(c))
				return true;
	} else if (json_is_array(v)) {
		json_array_foreach(v, i, c)
			if (contains_unknown(c))
				return true;
	}
	return false;
}

static char *join(const char *path, const char *key)
{
	return path[0] ? tp_sprintf("%s.%s", path, key) : tp_strdup(key);
}

bool tp_path_under(const char *path, const char *pattern)
{
	const char *p = path, *q = pattern;
	if (!*q)
		return false;
	while (*q) {
		const char *pe = strchr(p, '.'), *qe = strchr(q, '.');
		size_t pl = pe ? (size_t)(pe - p) : strlen(p);
		size_t ql = qe ? (size_t)(qe - q) : strlen(q);
		if (!*p)
			return false;
		if (!(ql == 1 && q[0] == '*') && (pl != ql || strncmp(p, q, pl) != 0))
			return false;
		p += pl;
		q += ql;
		if (*q == '.') {
			q++;
			if (*p != '.')
				return false;
			p++;
		}
	}
	return *p == '\0' || *p == '.';
}

static bool list_covers(const tp_strlist *l, const char *path)
{
	for (size_t i = 0; l && i < l->len; i++)
		if (tp_path_under(path, l->items[i]))
			return true;
	return false;
}

unsigned tp_schema_flags(const tp_field *fields, const char *path)
{
	unsigned flags = 0;
	const tp_field *cur = NULL;
	const char *p = path;
	char seg[256];
	while (*p) {
		const char *dot = strchr(p, '.');
		size_t n = dot ? (size_t)(dot - p) : strlen(p);
		if (n >= sizeof(seg))
			break;
		memcpy(seg, p, n);
		seg[n] = '\0';
		if (!cur) {
			const tp_field *f = NULL;
			for (size_t i = 0; fields && fields[i].name; i++)
				if (strcmp(fields[i].name, seg) == 0)
					f = &fields[i];
			if (!f)
				break;
			cur = f;
		} else if (cur->type == TP_TYPE_OBJECT) {
			const tp_field *f = NULL;
			for (size_t i = 0; cur->fields && cur->fields[i].name; i++)
				if (strcmp(cur->fields[i].name, seg) == 0)
					f = &cur->fields[i];
			if (!f)
				break;
			cur = f;
		} else if ((cur->type == TP_TYPE_LIST || cur->type == TP_TYPE_MAP) && cur->items) {
			cur = cur->items;
		} else {
			break; /* ANY or scalar: descendants inherit */
		}
		flags |= cur->flags;
		p += n;
		if (*p == '.')
			p++;
	}
	return flags;
}

/* ---------------------------------------------------------------- sensitivity */

typedef struct {
	const tp_kind *kind;
	tp_strlist sensitive; /* paths */
	const tp_strlist *ignore;
	const json_t *hashes; /* recorded secret_hashes */
} entry_ctx;

static bool is_sensitive(const entry_ctx *c, const char *path)
{
	if (tp_schema_flags(c->kind->fields, path) & (TP_F_SENSITIVE | TP_F_SECRET_REF))
		return true;
	return list_covers(&c->sensitive, path);
}

static void set_path(json_t *root, const char *path, json_t *value)
{
	char *copy = tp_strdup(path);
	char *last = strrchr(copy, '.');
	json_t *parent = root;
	if (last) {
		*last = '\0';
		parent = tp_json_path_get(root, copy);
		last++;
	} else {
		last = copy;
	}
	if (json_is_object(parent) && json_object_get(parent, last))
		json_object_set(parent, last, value);
	else if (json_is_array(parent)) {
		char *end = NULL;
		unsigned long i = strtoul(last, &end, 10);
		if (*end == '\0' && i < json_array_size(parent))
			json_array_set(parent, i, value);
	}
	free(copy);
}

/* A copy of v (found at path) with every sensitive path at or below it replaced. */
static json_t *redact(const entry_ctx *c, const json_t *v, const char *path)
{
	json_t *copy, *mark;
	if (!v)
		return NULL;
	if (path[0] && is_sensitive(c, path))
		return json_string("(sensitive)");
	copy = json_deep_copy(v);
	mark = json_string("(sensitive)");
	for (size_t i = 0; i < c->sensitive.len; i++) {
		const char *sp = c->sensitive.items[i];
		size_t n = strlen(path);
		if (n == 0)
			set_path(copy, sp, mark);
		else if (strncmp(sp, path, n) == 0 && sp[n] == '.')
			set_path(copy, sp + n + 1, mark);
	}
	/* schema-sensitive top-level fields */
	if (json_is_object(copy) && path[0] == '\0') {
		const char *k;
		json_t *x;
		json_object_foreach(copy, k, x) {
			if (is_sensitive(c, k))
				json_object_set(copy, k, mark);
		}
	}
	json_decref(mark);
	return copy;
}

/* ---------------------------------------------------------------- changes */

typedef struct {
	tp_change *items;
	size_t len, cap;
} changes;

static void change_add(changes *l, const entry_ctx *c, const char *path, const json_t *before,
		       const json_t *after)
{
	tp_change *ch;
	bool sens = is_sensitive(c, path);
	if (l->len == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 8;
		l->items = tp_realloc(l->items, l->cap * sizeof(*l->items));
	}
	ch = &l->items[l->len++];
	memset(ch, 0, sizeof(*ch));
	ch->path = tp_strdup(path);
	ch->sensitive = sens;
	ch->unknown = after && contains_unknown(after);
	ch->forces_replacement = (tp_schema_flags(c->kind->fields, path) & TP_F_IMMUTABLE) != 0;
	if (!sens) {
		ch->before = redact(c, before, path);
		ch->after = redact(c, after, path);
	}
}

static bool changes_has(const changes *l, const char *path)
{
	for (size_t i = 0; i < l->len; i++)
		if (strcmp(l->items[i].path, path) == 0)
			return true;
	return false;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Desired vs applied: every difference over the union of both specs' fields. Objects are
 * compared member by member; lists and scalars as whole values. */
static void diff_values(changes *out, const entry_ctx *c, const char *path, const json_t *a,
			const json_t *b)
{
	if (json_is_object(a) && json_is_object(b) && !tp_is_unknown(a) && !tp_is_unknown(b) &&
	    !is_hmac(a) && !is_hmac(b)) {
		const char **keys = tp_malloc((json_object_size(a) + json_object_size(b) + 1) *
					      sizeof(char *));
		size_t n = 0;
		const char *k;
		json_t *v;
		json_object_foreach((json_t *)(uintptr_t)a, k, v)
			keys[n++] = k;
		json_object_foreach((json_t *)(uintptr_t)b, k, v)
			if (!json_object_get(a, k))
				keys[n++] = k;
		qsort(keys, n, sizeof(*keys), cmp_str);
		for (size_t i = 0; i < n; i++) {
			char *sub = join(path, keys[i]);
			diff_values(out, c, sub, json_object_get(a, keys[i]),
				    json_object_get(b, keys[i]));
			free(sub);
		}
		free(keys);
		return;
	}
	if (a && b && json_equal((json_t *)(uintptr_t)a, (json_t *)(uintptr_t)b) &&
	    !contains_unknown(b))
		return;
	if (!a && !b)
		return;
	change_add(out, c, path, a, b);
}

/* Applied vs live, over the fields Tapestry applied only. Absent live fields are unknown
 * (the API does not return them), masked ones too; sensitive ones compare by hash. */
static void drift_values(changes *out, const entry_ctx *c, const char *path, const json_t *a,
			 const json_t *l)
{
	if (!l || !a)
		return;
	if (path[0] && list_covers(c->ignore, path))
		return;
	if (json_is_string(l) && strcmp(json_string_value(l), MASKED) == 0)
		return;
	if (is_hmac(l)) {
		const char *want = tp_json_get_str(c->hashes, path);
		if (want && strcmp(want, tp_json_get_str(l, TP_HMAC_KEY)) != 0)
			change_add(out, c, path, a, l);
		return;
	}
	if (path[0] && is_sensitive(c, path))
		return; /* no hash to compare: never reported */
	if (json_is_object(a) && json_is_object(l)) {
		const char *k;
		json_t *v;
		json_object_foreach((json_t *)(uintptr_t)a, k, v) {
			char *sub = join(path, k);
			drift_values(out, c, sub, v, json_object_get(l, k));
			free(sub);
		}
		return;
	}
	if (!json_equal((json_t *)(uintptr_t)a, (json_t *)(uintptr_t)l))
		change_add(out, c, path, a, l);
}

/* ---------------------------------------------------------------- references */

typedef struct {
	const tp_pipeline *p;
	const tp_state_resources *state;
	const unsigned char *pending; /* per resource: TP_PENDING_* */
	json_t *const *predicted;     /* per resource: outputs known before apply, or NULL */
	const json_t *outputs_map;    /* engine: {address: outputs} instead of state, or NULL */
	const tp_resource *r;
} resolve_ctx;

/* Whether output (as referenced) is declared '~' (may change on update) by kind. */
static bool output_volatile(const tp_kind *k, const char *output)
{
	for (size_t i = 0; k->outputs && k->outputs[i]; i++) {
		const char *o = k->outputs[i];
		size_t n;
		if (o[0] != '~')
			continue;
		o++;
		n = strlen(o);
		if (strcmp(o, output) == 0)
			return true;
		if (n >= 2 && strcmp(o + n - 2, ".*") == 0 && strncmp(o, output, n - 1) == 0)
			return true;
	}
	return false;
}

static const tp_state_resource *state_find(const tp_state_resources *s, const char *address)
{
	size_t lo = 0, hi = s ? s->len : 0;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(s->items[mid].address, address);
		if (c == 0)
			return &s->items[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

/* The recorded value of an output, or NULL when it is not known yet. */
static const json_t *output_value(const resolve_ctx *x, const tp_ref *ref)
{
	const tp_resource *t = &x->p->resources[ref->target];
	const tp_state_resource *sr;
	unsigned char pend = x->pending ? x->pending[ref->target] : TP_PENDING_NONE;
	if (x->outputs_map)
		return json_object_get(json_object_get(x->outputs_map, t->address), ref->output);
	if (pend == TP_PENDING_NEW ||
	    (pend == TP_PENDING_UPDATE && output_volatile(t->kind, ref->output))) {
		/* changing in this plan: known only if the kind can predict it */
		const json_t *v = x->predicted && x->predicted[ref->target]
					  ? json_object_get(x->predicted[ref->target], ref->output)
					  : NULL;
		return v && !contains_unknown(v) ? v : NULL;
	}
	sr = state_find(x->state, t->address);
	if (!sr)
		return NULL;
	return json_object_get(sr->outputs, ref->output);
}

typedef struct {
	const resolve_ctx *x;
	tp_buf out;
	size_t last;
	bool unknown;
	const char *text;
	const json_t *whole; /* the value when the string is exactly one reference */
	int count;
} interp;

/* Copies text, turning the escape "$${" into a literal "${". */
static void put_unescaped(tp_buf *b, const char *text, size_t n)
{
	size_t i = 0;
	while (i < n) {
		if (i + 2 < n && text[i] == '$' && text[i + 1] == '$' && text[i + 2] == '{') {
			tp_buf_puts(b, "${");
			i += 3;
		} else {
			tp_buf_putc(b, text[i++]);
		}
	}
}

static int on_ref(void *ctx, const tp_ref *ref, size_t start, size_t end)
{
	interp *it = ctx;
	const json_t *v;
	const tp_ref *resolved = NULL;
	/* find the resolved target index recorded by the loader for this reference */
	for (size_t i = 0; i < it->x->r->nrefs; i++) {
		const tp_ref *cand = &it->x->r->refs[i];
		if (cand->type == TP_REF_RESOURCE && ref->type == TP_REF_RESOURCE &&
		    strcmp(cand->kind, ref->kind) == 0 && strcmp(cand->name, ref->name) == 0 &&
		    strcmp(cand->output, ref->output) == 0) {
			resolved = cand;
			break;
		}
	}
	put_unescaped(&it->out, it->text + it->last, start - it->last);
	it->last = end;
	if (ref->type == TP_REF_SECRET || !resolved) {
		/* secrets stay as text; they resolve at apply time only */
		tp_buf_put(&it->out, it->text + start, end - start);
		return 0;
	}
	it->count++;
	v = output_value(it->x, resolved);
	if (!v) {
		it->unknown = true;
		return 0;
	}
	if (start == 0 && it->text[end] == '\0')
		it->whole = v;
	if (json_is_string(v)) {
		tp_buf_puts(&it->out, json_string_value(v));
	} else {
		char *s = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
		tp_buf_puts(&it->out, s ? s : "");
		free(s);
	}
	return 0;
}

static json_t *resolve_string(const resolve_ctx *x, const char *s)
{
	interp it = {x, {0}, 0, false, s, NULL, 0};
	json_t *out;
	if (!strstr(s, "${"))
		return json_string(s);
	tp_buf_init(&it.out, TP_BUF_DEFAULT_MAX);
	if (tp_refs_scan(s, on_ref, &it) < 0) {
		tp_buf_free(&it.out);
		return json_string(s);
	}
	put_unescaped(&it.out, s + it.last, strlen(s + it.last));
	if (it.unknown)
		out = tp_unknown_new();
	else if (it.whole && it.count == 1)
		out = json_deep_copy(it.whole);
	else
		out = json_string(tp_buf_cstr(&it.out));
	tp_buf_free(&it.out);
	return out;
}

static json_t *resolve_value(const resolve_ctx *x, const json_t *v)
{
	json_t *out, *c;
	const char *k;
	size_t i;
	if (json_is_string(v))
		return resolve_string(x, json_string_value(v));
	if (json_is_object(v)) {
		out = json_object();
		json_object_foreach((json_t *)(uintptr_t)v, k, c)
			json_object_set_new(out, k, resolve_value(x, c));
		return out;
	}
	if (json_is_array(v)) {
		out = json_array();
		json_array_foreach(v, i, c)
			json_array_append_new(out, resolve_value(x, c));
		return out;
	}
	return json_deep_copy(v);
}

static json_t *resolve_with(const tp_resource *r, const tp_pipeline *p,
			    const tp_state_resources *state, const unsigned char *pending,
			    json_t *const *predicted)
{
	resolve_ctx x = {p, state, pending, predicted, NULL, r};
	return resolve_value(&x, r->spec);
}

json_t *tp_spec_resolve_outputs(const tp_resource *r, const tp_pipeline *p,
				const json_t *outputs_by_address)
{
	resolve_ctx x = {p, NULL, NULL, NULL, outputs_by_address, r};
	return resolve_value(&x, r->spec);
}

bool tp_json_has_unknown(const json_t *v)
{
	return contains_unknown(v);
}

json_t *tp_spec_resolve(const tp_resource *r, const tp_pipeline *p,
			const tp_state_resources *state, const unsigned char *pending)
{
	return resolve_with(r, p, state, pending, NULL);
}

/* ---------------------------------------------------------------- entries */

typedef struct {
	tp_plan *plan;
	size_t cap;
} builder;

static tp_plan_entry *entry_new(builder *b)
{
	tp_plan *p = b->plan;
	if (p->len == b->cap) {
		b->cap = b->cap ? b->cap * 2 : 64;
		p->entries = tp_realloc(p->entries, b->cap * sizeof(*p->entries));
	}
	memset(&p->entries[p->len], 0, sizeof(tp_plan_entry));
	return &p->entries[p->len++];
}

static void entry_ctx_init(entry_ctx *c, const tp_kind *kind, const tp_resource *r,
			   const tp_state_resource *sr)
{
	const char *k;
	json_t *v;
	size_t i;
	memset(c, 0, sizeof(*c));
	c->kind = kind;
	if (r)
		for (i = 0; i < r->sensitive_paths.len; i++)
			tp_strlist_push(&c->sensitive, r->sensitive_paths.items[i]);
	if (sr && json_is_object(sr->secret_hashes)) {
		json_object_foreach(sr->secret_hashes, k, v)
			if (!tp_strlist_contains(&c->sensitive, k))
				tp_strlist_push(&c->sensitive, k);
	}
	c->ignore = r ? &r->ignore_changes : NULL;
	c->hashes = sr ? sr->secret_hashes : NULL;
	(void)v;
}

static void take_changes(tp_change **dst, size_t *n, changes *src)
{
	*dst = src->items;
	*n = src->len;
	src->items = NULL;
	src->len = src->cap = 0;
}

static char *replace_reason(const changes *ch)
{
	tp_buf b;
	size_t n = 0;
	tp_buf_init(&b, 1 << 16);
	for (size_t i = 0; i < ch->len; i++) {
		if (!ch->items[i].forces_replacement)
			continue;
		tp_buf_printf(&b, "%s%s", n++ ? ", " : "", ch->items[i].path);
	}
	if (n == 1) {
		char *field = tp_buf_detach(&b);
		char *r = tp_sprintf("immutable field %s changed", field);
		free(field);
		return r;
	} else {
		char *fields = tp_buf_detach(&b);
		char *r = tp_sprintf("immutable fields %s changed", fields);
		free(fields);
		return r;
	}
}

/* Outputs known before apply: what the kind predicts, plus every declared output that
 * simply repeats a top-level spec field of the same name (an object's name, a schema's
 * database), so a plan shows LOADER rather than "(known after apply)" for a new role. */
static json_t *predict_outputs(const tp_kind *k, const json_t *spec)
{
	json_t *out = k->predict_outputs ? k->predict_outputs(spec) : json_object();
	for (size_t i = 0; k->outputs && k->outputs[i]; i++) {
		const char *o = k->outputs[i];
		json_t *v;
		if (o[0] == '~' || strchr(o, '.') || json_object_get(out, o))
			continue;
		v = json_object_get(spec, o);
		if (json_is_string(v) || json_is_integer(v))
			json_object_set(out, o, v);
	}
	return out;
}

/* Whether the desired spec holds a resource reference at (or under) path. */
static bool path_has_ref(const tp_resource *r, const char *path)
{
	for (size_t i = 0; i < r->nrefs; i++)
		if (r->refs[i].type == TP_REF_RESOURCE && tp_path_under(r->refs[i].path, path))
			return true;
	return false;
}

static void plan_desired(builder *b, const tp_pipeline *p, const tp_state_resources *state,
			 const tp_plan_options *opts, unsigned char *pending, size_t *entry_of)
{
	json_t **predicted = tp_calloc(p->nresources ? p->nresources : 1, sizeof(json_t *));
	for (size_t oi = 0; oi < p->nresources; oi++) {
		size_t i = p->order[oi];
		const tp_resource *r = &p->resources[i];
		const tp_state_resource *sr = state_find(state, r->address);
		tp_plan_entry *e = entry_new(b);
		entry_ctx c;
		changes ch = {0}, dr = {0};
		json_t *desired = opts->symbolic_refs ? json_deep_copy(r->spec)
						      : resolve_with(r, p, state, pending, predicted);
		bool replace = false;
		size_t secret_changes = 0;

		if (r->kind->normalise)
			r->kind->normalise(desired);
		predicted[i] = predict_outputs(r->kind, desired);
		entry_ctx_init(&c, r->kind, r, sr);
		e->address = tp_strdup(r->address);
		e->kind = r->kind;
		e->name = tp_strdup(r->name);
		e->desired = r;
		e->recorded = sr;
		entry_of[i] = b->plan->len - 1;
		for (size_t k = 0; k < c.sensitive.len; k++)
			tp_strlist_push(&e->sensitive_paths, c.sensitive.items[k]);
		e->after = redact(&c, desired, "");

		if (!sr || tp_is_absent(sr->observed) ||
		    (sr->status && strcmp(sr->status, TP_STATUS_CREATING) == 0)) {
			e->action = TP_ACTION_CREATE;
			e->reason = tp_strdup(!sr ? "new in Git"
					      : tp_is_absent(sr->observed)
						  ? "missing live: deleted outside Tapestry, created "
						    "again"
						  : "an earlier create did not finish");
			pending[i] = TP_PENDING_NEW;
			goto next;
		}
		e->before = redact(&c, sr->applied, "");
		diff_values(&ch, &c, "", sr->applied, desired);
		if (sr->observed) {
			json_t *live = json_deep_copy(sr->observed);
			if (r->kind->normalise)
				r->kind->normalise(live);
			drift_values(&dr, &c, "", sr->applied, live);
			json_decref(live);
		}
		{
			/* secrets rotated behind an unchanged reference: compared by keyed hash */
			const json_t *want = json_object_get(opts->secret_hashes, r->address);
			const char *path;
			json_t *h;
			json_object_foreach((json_t *)(uintptr_t)want, path, h) {
				const char *have = tp_json_get_str(sr->secret_hashes, path);
				if (changes_has(&ch, path))
					continue;
				if (!have || strcmp(have, json_string_value(h)) != 0) {
					change_add(&ch, &c, path, NULL, NULL);
					ch.items[ch.len - 1].sensitive = true;
					secret_changes++;
				}
			}
		}
		for (size_t k = 0; k < ch.len; k++)
			replace = replace || ch.items[k].forces_replacement;
		if (dr.len && opts->self_heal) {
			/* fold drift into the action: live → desired for each drifted field */
			for (size_t k = 0; k < dr.len; k++) {
				const char *path = dr.items[k].path;
				if (changes_has(&ch, path))
					continue;
				change_add(&ch, &c, path, tp_json_path_get(sr->observed, path),
					   tp_json_path_get(desired, path));
				replace = replace || ch.items[ch.len - 1].forces_replacement;
			}
			e->drift_corrected = true;
		}
		if (replace) {
			e->action = TP_ACTION_REPLACE;
			e->reason = replace_reason(&ch);
			pending[i] = TP_PENDING_NEW;
		} else if (ch.len) {
			bool only_drift = e->drift_corrected && ch.len == dr.len;
			bool only_unknown = true, only_refs = true;
			for (size_t k = 0; k < ch.len; k++) {
				only_unknown = only_unknown && ch.items[k].unknown;
				only_refs = only_refs && path_has_ref(r, ch.items[k].path);
			}
			e->action = TP_ACTION_UPDATE;
			pending[i] = TP_PENDING_UPDATE;
			if (only_drift)
				e->reason = tp_strdup("drift: live differs from Git, corrected "
						      "(self_heal)");
			else if (secret_changes == ch.len)
				e->reason = tp_strdup("a secret value changed (compared by keyed "
						      "hash)");
			else if (only_unknown)
				e->reason = tp_strdup("a value it references changes in this plan "
						      "(known after apply)");
			else if (only_refs)
				e->reason = tp_strdup("a value it references changed");
			else
				e->reason = tp_strdup("spec changed in Git");
		} else {
			e->action = TP_ACTION_NOOP;
			e->reason = tp_strdup(dr.len ? "drift: live differs from Git (reported; "
						       "self_heal is off)"
						     : "in sync");
		}
		{
			const char *lock = tp_json_get_str(sr->observed, TP_LOCKED_KEY);
			if (lock && e->action != TP_ACTION_NOOP) {
				tp_strlist_push_owned(
					&b->plan->notes,
					tp_sprintf("%s is locked (%s), owned outside Tapestry: its %s "
						   "is left out of this plan", r->address, lock,
						   e->action == TP_ACTION_REPLACE ? "replacement"
										  : "update"));
				free(e->reason);
				e->reason = tp_sprintf("locked (%s): owned outside Tapestry, never "
						       "modified", lock);
				e->action = TP_ACTION_NOOP;
				pending[i] = TP_PENDING_NONE;
			}
		}
		take_changes(&e->changes, &e->nchanges, &ch);
		take_changes(&e->drift, &e->ndrift, &dr);
		if (e->action == TP_ACTION_NOOP && e->ndrift == 0) {
			/* in sync: nothing to show, and large pipelines are mostly this */
			json_decref(e->before);
			json_decref(e->after);
			e->before = e->after = NULL;
		}
next:
		json_decref(desired);
		tp_strlist_free(&c.sensitive);
	}
	for (size_t i = 0; i < p->nresources; i++)
		json_decref(predicted[i]);
	free(predicted);
}

/* Resources in state that Git no longer has: dependants first (reverse dependency order over
 * the dependencies recorded at their last apply). */
static void plan_removed(builder *b, const tp_pipeline *p, const tp_state_resources *state)
{
	size_t n = state ? state->len : 0, norder = 0;
	bool *gone = tp_calloc(n ? n : 1, sizeof(bool));
	unsigned char *mark = tp_calloc(n ? n : 1, 1);
	size_t *order = tp_malloc((n ? n : 1) * sizeof(size_t));
	size_t *stack = tp_malloc((n ? n : 1) * sizeof(size_t));
	size_t *next = tp_calloc(n ? n : 1, sizeof(size_t));

	for (size_t i = 0; i < n; i++)
		gone[i] = tp_pipeline_find(p, state->items[i].address) == NULL;
	/* postorder DFS over recorded deps: dependencies come out before dependants */
	for (size_t s0 = 0; s0 < n; s0++) {
		size_t sp = 0;
		if (!gone[s0] || mark[s0])
			continue;
		stack[sp++] = s0;
		mark[s0] = 1;
		while (sp) {
			size_t v = stack[sp - 1];
			const json_t *deps = state->items[v].deps;
			if (next[v] < json_array_size(deps)) {
				const char *a = json_string_value(json_array_get(deps, next[v]++));
				const tp_state_resource *d = a ? state_find(state, a) : NULL;
				size_t w = d ? (size_t)(d - state->items) : n;
				if (w < n && gone[w] && !mark[w]) {
					mark[w] = 1;
					stack[sp++] = w;
				}
			} else {
				order[norder++] = v;
				sp--;
			}
		}
	}
	for (size_t k = norder; k > 0; k--) {
		const tp_state_resource *sr = &state->items[order[k - 1]];
		const tp_kind *kind = tp_registry_kind(sr->kind);
		tp_plan_entry *e;
		entry_ctx c;
		const char *deletion = tp_json_get_str(sr->lifecycle, "deletion");
		if (!kind) {
			tp_strlist_push_owned(&b->plan->errors,
					      tp_sprintf("%s: state holds kind \"%s\", which this "
							 "version of Tapestry does not know",
							 sr->address, sr->kind));
			continue;
		}
		e = entry_new(b);
		entry_ctx_init(&c, kind, NULL, sr);
		e->address = tp_strdup(sr->address);
		e->kind = kind;
		e->name = tp_strdup(sr->name);
		e->recorded = sr;
		e->before = redact(&c, sr->applied, "");
		for (size_t i = 0; i < c.sensitive.len; i++)
			tp_strlist_push(&e->sensitive_paths, c.sensitive.items[i]);
		if (tp_is_absent(sr->observed)) {
			e->action = TP_ACTION_FORGET;
			e->reason = tp_strdup("removed from Git, and already gone live");
		} else if (tp_json_get_str(sr->observed, TP_LOCKED_KEY)) {
			e->action = TP_ACTION_FORGET;
			e->reason = tp_sprintf("removed from Git, but locked (%s) and owned outside "
					       "Tapestry: forgotten, never deleted",
					       tp_json_get_str(sr->observed, TP_LOCKED_KEY));
			tp_strlist_push_owned(&b->plan->notes,
					      tp_sprintf("%s is locked (%s): it is forgotten, not "
							 "deleted", sr->address,
							 tp_json_get_str(sr->observed,
									 TP_LOCKED_KEY)));
		} else if (deletion && strcmp(deletion, "retain") == 0) {
			e->action = TP_ACTION_FORGET;
			e->reason = tp_strdup("removed from Git; lifecycle.deletion is retain, so the "
					      "object is kept and only forgotten");
		} else {
			changes ch = {0};
			e->action = TP_ACTION_DELETE;
			e->reason = tp_strdup("removed from Git");
			diff_values(&ch, &c, "", sr->applied, NULL);
			take_changes(&e->changes, &e->nchanges, &ch);
		}
		tp_strlist_free(&c.sensitive);
	}
	free(gone);
	free(mark);
	free(order);
	free(stack);
	free(next);
}

static void add_entry_dep(tp_plan_entry *e, size_t idx)
{
	for (size_t i = 0; i < e->ndeps; i++)
		if (e->deps[i] == idx)
			return;
	e->deps = tp_realloc(e->deps, (e->ndeps + 1) * sizeof(size_t));
	e->deps[e->ndeps++] = idx;
}

static void link_entries(tp_plan *plan, const tp_pipeline *p, const size_t *entry_of,
			 size_t first_desired)
{
	/* desired: after the entries of their dependencies */
	for (size_t i = 0; i < p->nresources; i++) {
		tp_plan_entry *e = &plan->entries[entry_of[i]];
		for (size_t k = 0; k < p->resources[i].ndeps; k++)
			add_entry_dep(e, entry_of[p->resources[i].deps[k]]);
	}
	/* deletes: after the deletes of what depended on them */
	for (size_t i = 0; i < first_desired; i++) {
		tp_plan_entry *e = &plan->entries[i];
		for (size_t j = 0; j < first_desired; j++) {
			const json_t *deps = plan->entries[j].recorded->deps;
			size_t k;
			json_t *v;
			json_array_foreach(deps, k, v)
				if (json_is_string(v) && strcmp(json_string_value(v), e->address) == 0)
					add_entry_dep(e, j);
		}
	}
}

static void check_lifecycle(tp_plan *plan, const tp_state_resources *state,
			    const tp_plan_options *opts)
{
	size_t managed = state ? state->len : 0, deletes = 0;
	for (size_t i = 0; i < plan->len; i++) {
		const tp_plan_entry *e = &plan->entries[i];
		bool prevent;
		if (e->action != TP_ACTION_DELETE && e->action != TP_ACTION_REPLACE)
			continue;
		if (e->action == TP_ACTION_DELETE)
			deletes++;
		prevent = e->desired ? e->desired->prevent_destroy
				     : json_is_true(json_object_get(e->recorded->lifecycle,
								    "prevent_destroy"));
		if (prevent)
			tp_strlist_push_owned(
				&plan->errors,
				tp_sprintf("%s has lifecycle.prevent_destroy set, and this plan would "
					   "%s it (%s)", e->address,
					   e->action == TP_ACTION_DELETE ? "delete" : "replace",
					   e->reason));
	}
	if (managed > 0 && deletes > 0 && !opts->allow_mass_delete) {
		double pct = 100.0 * (double)deletes / (double)managed;
		if (deletes == managed)
			tp_strlist_push_owned(
				&plan->errors,
				tp_sprintf("prune guard: this plan would delete all %zu managed "
					   "resources; an empty or broken checkout must not tear down "
					   "a pipeline (allow it explicitly with --allow-mass-delete)",
					   managed));
		else if (pct > opts->max_prune_percent)
			tp_strlist_push_owned(
				&plan->errors,
				tp_sprintf("prune guard: this plan would delete %zu of %zu managed "
					   "resources (%.0f%%), over max_prune %.0f%% (allow it "
					   "explicitly with --allow-mass-delete)",
					   deletes, managed, pct, opts->max_prune_percent));
	}
}

int tp_plan_build(tp_plan **out, const tp_pipeline *desired, const tp_state_resources *state,
		  const tp_plan_options *opts)
{
	builder b = {0};
	unsigned char *pending = tp_calloc(desired->nresources ? desired->nresources : 1, 1);
	size_t *entry_of = tp_calloc(desired->nresources ? desired->nresources : 1,
				     sizeof(size_t));
	size_t first_desired;

	*out = NULL;
	b.plan = tp_calloc(1, sizeof(*b.plan));
	b.plan->pipeline = tp_strdup(desired->name ? desired->name : "");
	plan_removed(&b, desired, state);
	first_desired = b.plan->len;
	plan_desired(&b, desired, state, opts, pending, entry_of);
	link_entries(b.plan, desired, entry_of, first_desired);
	check_lifecycle(b.plan, state, opts);

	for (size_t i = 0; i < b.plan->len; i++) {
		const tp_plan_entry *e = &b.plan->entries[i];
		switch (e->action) {
		case TP_ACTION_CREATE: b.plan->add++; break;
		case TP_ACTION_UPDATE: b.plan->change++; break;
		case TP_ACTION_REPLACE: b.plan->add++, b.plan->destroy++; break;
		case TP_ACTION_DELETE: b.plan->destroy++; break;
		case TP_ACTION_FORGET: b.plan->forget++; break;
		case TP_ACTION_NOOP: b.plan->unchanged++; break;
		}
		if (e->ndrift)
			b.plan->drifted++;
	}
	free(pending);
	free(entry_of);
	*out = b.plan;
	return 0;
}

bool tp_plan_has_changes(const tp_plan *p)
{
	return p->add || p->change || p->destroy || p->forget;
}

static void changes_free(tp_change *c, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(c[i].path);
		json_decref(c[i].before);
		json_decref(c[i].after);
	}
	free(c);
}

void tp_plan_free(tp_plan *p)
{
	if (!p)
		return;
	for (size_t i = 0; i < p->len; i++) {
		tp_plan_entry *e = &p->entries[i];
		free(e->address);
		free(e->name);
		free(e->reason);
		changes_free(e->changes, e->nchanges);
		changes_free(e->drift, e->ndrift);
		json_decref(e->before);
		json_decref(e->after);
		json_decref(e->details);
		tp_strlist_free(&e->sensitive_paths);
		free(e->deps);
	}
	free(p->entries);
	free(p->pipeline);
	tp_strlist_free(&p->errors);
	tp_strlist_free(&p->notes);
	free(p);
}

int tp_plan_synthetic_state(tp_state_resources *out, const tp_pipeline *p,
			    const tp_state_resources *known)
{
	out->len = p->nresources;
	out->items = tp_calloc(p->nresources ? p->nresources : 1, sizeof(*out->items));
	/* p->resources is sorted by address, as state lists must be */
	for (size_t i = 0; i < p->nresources; i++) {
		const tp_resource *r = &p->resources[i];
		tp_state_resource *s = &out->items[i];
		const tp_state_resource *k = state_find(known, r->address);
		json_t *ic = json_array();
		s->address = tp_strdup(r->address);
		s->kind = tp_strdup(r->kind->name);
		s->name = tp_strdup(r->name);
		s->applied = json_deep_copy(r->spec);
		if (r->kind->normalise)
			r->kind->normalise(s->applied);
		s->outputs = k && k->outputs ? json_deep_copy(k->outputs) : json_object();
		s->provider_id = k && k->provider_id ? tp_strdup(k->provider_id) : NULL;
		s->secret_hashes = k && k->secret_hashes ? json_deep_copy(k->secret_hashes) : NULL;
		for (size_t j = 0; j < r->ignore_changes.len; j++)
			json_array_append_new(ic, json_string(r->ignore_changes.items[j]));
		s->lifecycle = json_pack("{s:b,s:s,s:o}", "prevent_destroy", r->prevent_destroy,
					 "deletion", r->deletion == TP_DELETION_RETAIN ? "retain"
										       : "delete",
					 "ignore_changes", ic);
		s->deps = json_array();
		for (size_t j = 0; j < r->ndeps; j++)
			json_array_append_new(s->deps,
					      json_string(p->resources[r->deps[j]].address));
		s->status = tp_strdup("ready");
	}
	return 0;
}
