/*
 * Plan renderers: a tp_plan (built by plan.c) → text for a terminal, Markdown for a
 * pull-request comment, or versioned JSON for machines (docs/plan-json.md). This is the last
 * step of `tapestry plan`; the apply engine never reads this output.
 *
 * Renderers are the last line of defence for secrets: the plan builder already redacts, but
 * every value printed here passes through scrub() again, which replaces anything at a
 * sensitive path (entry->sensitive_paths, or a field the kind's schema marks sensitive or
 * secret-referencing) and any {"$hmac": ...} fingerprint with "(sensitive)", and every
 * TP_UNKNOWN marker with "(known after apply)". Free-form text (addresses, reasons, errors,
 * keys) has control characters replaced so a hostile name cannot drive the terminal.
 *
 * Output is appended to `out`; a full buffer (TP_ETOOBIG) stops rendering and is returned.
 */
#include "diff.h"

#include <stdlib.h>
#include <string.h>

#define SENSITIVE   "(sensitive)"
#define KNOWN_AFTER "(known after apply)"

#define C_RESET  "\033[0m"
#define C_BOLD   "\033[1m"
#define C_RED    "\033[31m"
#define C_GREEN  "\033[32m"
#define C_YELLOW "\033[33m"

/* ---------------------------------------------------------------- output context */

typedef struct {
	tp_buf *out;
	int rc;     /* first failure; every put is a no-op after it */
	bool color; /* ANSI escapes (text only) */
	bool md;    /* Markdown diff layout: the symbol in column 0 */
} ctx;

static void put(ctx *c, const char *s)
{
	if (c->rc == 0)
		c->rc = tp_buf_puts(c->out, s);
}

static void putn(ctx *c, const char *s, size_t n)
{
	if (c->rc == 0)
		c->rc = tp_buf_put(c->out, s, n);
}

static void putf(ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void putf(ctx *c, const char *fmt, ...)
{
	va_list ap;
	if (c->rc != 0)
		return;
	va_start(ap, fmt);
	c->rc = tp_buf_vprintf(c->out, fmt, ap);
	va_end(ap);
}

static void put_spaces(ctx *c, size_t n)
{
	static const char sp[] = "                                ";
	while (n > 0) {
		size_t k = n < sizeof(sp) - 1 ? n : sizeof(sp) - 1;
		putn(c, sp, k);
		n -= k;
	}
}

/* An ANSI sequence, only when colour is on. */
static void esc(ctx *c, const char *code)
{
	if (c->color)
		put(c, code);
}

/* Free-form text for a terminal or a code block: control characters become '?'. */
static void put_clean(ctx *c, const char *s)
{
	const char *run = s;
	for (const char *p = s; *p; p++) {
		unsigned char ch = (unsigned char)*p;
		if (ch < 0x20 || ch == 0x7f) {
			putn(c, run, (size_t)(p - run));
			put(c, "?");
			run = p + 1;
		}
	}
	put(c, run);
}

/* Markdown inline text (table cells, headings, quotes): table and emphasis syntax escaped with
 * a backslash, HTML special characters as entities, line breaks and controls as spaces. */
static void put_md(ctx *c, const char *s)
{
	for (const char *p = s; *p; p++) {
		unsigned char ch = (unsigned char)*p;
		switch (ch) {
		case '|': put(c, "\\|"); break;
		case '`': put(c, "\\`"); break;
		case '\\': put(c, "\\\\"); break;
		case '*': put(c, "\\*"); break;
		case '_': put(c, "\\_"); break;
		case '[': put(c, "\\["); break;
		case ']': put(c, "\\]"); break;
		case '<': put(c, "&lt;"); break;
		case '>': put(c, "&gt;"); break;
		case '&': put(c, "&amp;"); break;
		default:
			if (ch < 0x20 || ch == 0x7f)
				put(c, " ");
			else
				putn(c, p, 1);
		}
	}
}

/* Text inside HTML elements (<summary>, <code>). */
static void put_html(ctx *c, const char *s)
{
	for (const char *p = s; *p; p++) {
		unsigned char ch = (unsigned char)*p;
		switch (ch) {
		case '<': put(c, "&lt;"); break;
		case '>': put(c, "&gt;"); break;
		case '&': put(c, "&amp;"); break;
		case '"': put(c, "&quot;"); break;
		default:
			if (ch < 0x20 || ch == 0x7f)
				put(c, " ");
			else
				putn(c, p, 1);
		}
	}
}

/* ---------------------------------------------------------------- redaction */

typedef struct {
	const tp_strlist *paths; /* entry->sensitive_paths, or NULL */
	const tp_field *fields;  /* the kind's schema, or NULL */
} scrub_ctx;

static bool is_hmac(const json_t *v)
{
	return json_is_object(v) && json_object_size(v) == 1 &&
	       json_object_get(v, TP_HMAC_KEY) != NULL;
}

static char *join(const char *path, const char *key)
{
	return path[0] ? tp_sprintf("%s.%s", path, key) : tp_strdup(key);
}

static bool path_sensitive(const scrub_ctx *sc, const char *path)
{
	if (!path[0])
		return false;
	for (size_t i = 0; sc->paths && i < sc->paths->len; i++)
		if (tp_path_under(path, sc->paths->items[i]))
			return true;
	return (tp_schema_flags(sc->fields, path) & (TP_F_SENSITIVE | TP_F_SECRET_REF)) != 0;
}

/* A new copy of v (found at path) that is safe to print: sensitive values and fingerprints
 * become "(sensitive)", unknown markers "(known after apply)". NULL for NULL. */
static json_t *scrub(const scrub_ctx *sc, const json_t *v, const char *path)
{
	json_t *out = NULL, *child;
	const char *k;
	size_t i;

	if (!v)
		return NULL;
	if (is_hmac(v) || path_sensitive(sc, path))
		return json_string(SENSITIVE);
	if (tp_is_unknown(v))
		return json_string(KNOWN_AFTER);
	if (json_is_object(v)) {
		out = json_object();
		json_object_foreach((json_t *)(uintptr_t)v, k, child) {
			char *sub = join(path, k);
			json_object_set_new(out, k, scrub(sc, child, sub));
			free(sub);
		}
	} else if (json_is_array(v)) {
		out = json_array();
		json_array_foreach(v, i, child) {
			char *sub = path[0] ? tp_sprintf("%s.%zu", path, i) : tp_sprintf("%zu", i);
			json_array_append_new(out, scrub(sc, child, sub));
			free(sub);
		}
	} else {
		out = json_deep_copy(v);
	}
	return out;
}

static scrub_ctx entry_scrub(const tp_plan_entry *e)
{
	scrub_ctx sc = {&e->sensitive_paths, e->kind ? e->kind->fields : NULL};
	return sc;
}

/*
 * The two printable sides of a change (new references, NULL when the field is absent on that
 * side). A sensitive change carries no values (diff.h), so for entries the presence of each
 * side is read from the entry's redacted specs; drift has no live spec here and shows both.
 */
static void change_sides(json_t **before, json_t **after, const tp_plan_entry *e,
			 const tp_change *ch, bool drift)
{
	scrub_ctx sc = entry_scrub(e);
	*before = NULL;
	*after = NULL;
	if (ch->sensitive || path_sensitive(&sc, ch->path)) {
		bool hb = ch->before != NULL, ha = ch->after != NULL;
		if (!hb && !ha && !drift) {
			hb = e->before && tp_json_path_get(e->before, ch->path);
			ha = e->after && tp_json_path_get(e->after, ch->path);
		}
		if (!hb && !ha)
			hb = ha = true;
		*before = hb ? json_string(SENSITIVE) : NULL;
		*after = ha ? json_string(SENSITIVE) : NULL;
		return;
	}
	*before = scrub(&sc, ch->before, ch->path);
	if (ch->unknown && (!ch->after || tp_is_unknown(ch->after)))
		*after = json_string(KNOWN_AFTER);
	else
		*after = scrub(&sc, ch->after, ch->path);
}

static bool change_sensitive(const tp_plan_entry *e, const tp_change *ch)
{
	scrub_ctx sc = entry_scrub(e);
	return ch->sensitive || path_sensitive(&sc, ch->path);
}

/* Text form of a scrubbed value: the two markers bare, everything else compact JSON. */
static char *value_str(const json_t *v)
{
	const char *s = json_string_value(v);
	if (!v)
		return tp_strdup("null");
	if (s && (strcmp(s, SENSITIVE) == 0 || strcmp(s, KNOWN_AFTER) == 0))
		return tp_strdup(s);
	return tp_json_canonical(v);
}

/* ---------------------------------------------------------------- attribute rows */

/* One "sym key = lhs [-> rhs] [# forces replacement]" line; rows of a block are aligned. */
typedef struct {
	const char *sym;
	const char *key; /* borrowed */
	char *lhs;
	char *rhs; /* NULL: no arrow */
	bool forces;
} row;

typedef struct {
	row *items;
	size_t len, cap;
} rows;

static void rows_add(rows *r, const char *sym, const char *key, const json_t *lhs,
		     const json_t *rhs, bool arrow, bool forces)
{
	row *x;
	if (r->len == r->cap) {
		r->cap = r->cap ? r->cap * 2 : 8;
		r->items = tp_realloc(r->items, r->cap * sizeof(*r->items));
	}
	x = &r->items[r->len++];
	x->sym = sym;
	x->key = key;
	x->lhs = value_str(lhs);
	x->rhs = arrow ? value_str(rhs) : NULL;
	x->forces = forces;
}

static void rows_add_change(rows *r, const tp_plan_entry *e, const tp_change *ch, bool drift)
{
	json_t *b = NULL, *a = NULL;
	change_sides(&b, &a, e, ch, drift);
	if (b && a)
		rows_add(r, "~", ch->path, b, a, true, ch->forces_replacement);
	else if (a)
		rows_add(r, "+", ch->path, a, NULL, false, ch->forces_replacement);
	else if (b)
		rows_add(r, "-", ch->path, b, NULL, true, ch->forces_replacement);
	else
		rows_add(r, "~", ch->path, NULL, NULL, true, ch->forces_replacement);
	json_decref(b);
	json_decref(a);
}

static int cmp_key(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* One row per top-level field of a scrubbed object, sorted by key: "+ k = v" for a create,
 * "- k = v -> null" for a destroy. Keys are borrowed from obj. */
static void rows_add_fields(rows *r, const json_t *obj, bool destroy)
{
	const char **keys = NULL;
	const char *k;
	json_t *v;
	size_t n = 0;

	if (!json_is_object(obj) || json_object_size(obj) == 0)
		return;
	keys = tp_malloc(json_object_size(obj) * sizeof(*keys));
	json_object_foreach((json_t *)(uintptr_t)obj, k, v)
		keys[n++] = k;
	qsort(keys, n, sizeof(*keys), cmp_key);
	for (size_t i = 0; i < n; i++) {
		v = json_object_get(obj, keys[i]);
		if (destroy)
			rows_add(r, "-", keys[i], v, NULL, true, false);
		else
			rows_add(r, "+", keys[i], v, NULL, false, false);
	}
	free(keys);
}

static void rows_free(rows *r)
{
	for (size_t i = 0; i < r->len; i++) {
		free(r->items[i].lhs);
		free(r->items[i].rhs);
	}
	free(r->items);
	r->items = NULL;
	r->len = r->cap = 0;
}

/* ---------------------------------------------------------------- lines */

static const char *sym_color(const char *sym)
{
	switch (sym[0]) {
	case '+': return C_GREEN;
	case '~': return C_YELLOW;
	case '-': return C_RED;
	default: return NULL;
	}
}

/*
 * Starts a line with a symbol (or "" for none) at a nesting depth. Text: Terraform's layout,
 * the symbol right-aligned in three columns after the indentation ("      ~ key"). Markdown:
 * the symbol first, so a ```diff block colours + and - lines ("~       key").
 */
static void line_begin(ctx *c, const char *sym, int depth)
{
	size_t n = strlen(sym);
	if (c->md) {
		put(c, sym);
		put_spaces(c, (n < 3 ? 3 - n : 0) + 1 + 4 * (size_t)depth);
		return;
	}
	put_spaces(c, 4 * (size_t)depth + (n < 3 ? 3 - n : 0));
	if (strcmp(sym, "-/+") == 0) {
		esc(c, C_RED);
		put(c, "-");
		esc(c, C_RESET);
		put(c, "/");
		esc(c, C_GREEN);
		put(c, "+");
		esc(c, C_RESET);
	} else if (n && sym_color(sym)) {
		esc(c, sym_color(sym));
		put(c, sym);
		esc(c, C_RESET);
	} else {
		put(c, sym);
	}
	put(c, " ");
}

/* "  # ..." comment header lines (bold on a terminal). */
static void header_begin(ctx *c)
{
	if (!c->md)
		put(c, "  ");
	esc(c, C_BOLD);
	put(c, "# ");
}

static void header_end(ctx *c)
{
	esc(c, C_RESET);
	put(c, "\n");
}

static void rows_emit(ctx *c, const rows *r, int depth)
{
	size_t width = 0;
	for (size_t i = 0; i < r->len; i++)
		if (strlen(r->items[i].key) > width)
			width = strlen(r->items[i].key);
	for (size_t i = 0; i < r->len; i++) {
		const row *x = &r->items[i];
		line_begin(c, x->sym, depth);
		put_clean(c, x->key);
		put_spaces(c, width - strlen(x->key));
		put(c, " = ");
		put(c, x->lhs);
		if (x->rhs) {
			put(c, " -> ");
			put(c, x->rhs);
		}
		if (x->forces)
			put(c, " # forces replacement");
		put(c, "\n");
	}
}

/* ---------------------------------------------------------------- blocks */

/* The kind's name; for an entry without a registered kind, the address up to its '/'. */
static char *kind_name(const tp_plan_entry *e)
{
	const char *addr = e->address ? e->address : "";
	const char *slash = strchr(addr, '/');
	if (e->kind)
		return tp_strdup(e->kind->name);
	return slash ? tp_strndup(addr, (size_t)(slash - addr)) : tp_strdup(addr);
}

/* `kind "name"` of the symbol line. */
static void put_kind_name(ctx *c, const tp_plan_entry *e)
{
	char *kind = kind_name(e);
	put_clean(c, kind);
	put(c, " ");
	if (c->rc == 0)
		c->rc = tp_buf_put_json_string(c->out, e->name ? e->name : "");
	free(kind);
}

static const char *action_symbol(tp_action a)
{
	switch (a) {
	case TP_ACTION_CREATE: return "+";
	case TP_ACTION_UPDATE: return "~";
	case TP_ACTION_REPLACE: return "-/+";
	case TP_ACTION_DELETE: return "-";
	case TP_ACTION_FORGET: return ".";
	case TP_ACTION_NOOP: break;
	}
	return "";
}

static const char *action_phrase(tp_action a)
{
	switch (a) {
	case TP_ACTION_CREATE: return "will be created";
	case TP_ACTION_UPDATE: return "will be updated in-place";
	case TP_ACTION_REPLACE: return "must be replaced";
	case TP_ACTION_DELETE: return "will be destroyed";
	case TP_ACTION_FORGET: return "will be forgotten";
	case TP_ACTION_NOOP: break;
	}
	return "has no changes";
}

/* The header, symbol line and attribute rows of one action (same lines in text and in the
 * Markdown diff blocks). */
/* A provider's preview (details.resource_changes), e.g. a CloudFormation change set:
 *   # change set: Modify AWS::EC2::Instance AirbyteInstance (replacement: True)
 * (moto, the emulator, reports changes roughly and without Replacement) */
static void render_details(ctx *c, const tp_plan_entry *e)
{
	const json_t *list = json_object_get(e->details, "resource_changes");
	size_t i;
	json_t *rc;
	if (!json_array_size(list))
		return;
	json_array_foreach(list, i, rc) {
		const char *action = tp_json_get_str(rc, "Action");
		const char *type = tp_json_get_str(rc, "ResourceType");
		const char *id = tp_json_get_str(rc, "LogicalResourceId");
		const char *repl = tp_json_get_str(rc, "Replacement");
		header_begin(c);
		put(c, "change set: ");
		put_clean(c, action ? action : "?");
		put(c, " ");
		put_clean(c, type ? type : "?");
		put(c, " ");
		put_clean(c, id ? id : "?");
		if (repl && repl[0]) {
			put(c, " (replacement: ");
			put_clean(c, repl);
			put(c, ")");
		}
		header_end(c);
	}
}

static void render_block(ctx *c, const tp_plan_entry *e)
{
	rows r = {0};
	json_t *fields = NULL;
	scrub_ctx sc = entry_scrub(e);
	const char *reason = e->reason && e->reason[0] ? e->reason : NULL;

	header_begin(c);
	put_clean(c, e->address ? e->address : "");
	put(c, " ");
	put(c, action_phrase(e->action));
	if (e->action == TP_ACTION_FORGET) {
		/* one line: the reason is the point of a forget */
		if (reason) {
			put(c, ": ");
			put_clean(c, reason);
		}
		if (!reason || !strstr(reason, "object is kept"))
			put(c, "; the object is kept");
		header_end(c);
		line_begin(c, ".", 0);
		put_kind_name(c, e);
		put(c, "\n");
		goto done;
	}
	header_end(c);
	if (reason) {
		header_begin(c);
		put(c, "(");
		put_clean(c, reason);
		put(c, ")");
		header_end(c);
	}

	switch (e->action) {
	case TP_ACTION_CREATE:
		fields = scrub(&sc, e->after, "");
		rows_add_fields(&r, fields, false);
		break;
	case TP_ACTION_DELETE:
		if (e->before) {
			fields = scrub(&sc, e->before, "");
			rows_add_fields(&r, fields, true);
			break;
		}
		/* no recorded spec: fall back to the changes */
		/* fallthrough */
	default:
		for (size_t i = 0; i < e->nchanges; i++)
			rows_add_change(&r, e, &e->changes[i], false);
		break;
	}

	line_begin(c, action_symbol(e->action), 0);
	put_kind_name(c, e);
	if (r.len == 0) {
		put(c, " {}\n");
		goto details;
	}
	put(c, " {\n");
	rows_emit(c, &r, 1);
	line_begin(c, "", 0);
	put(c, "}\n");
details:
	render_details(c, e);
done:
	rows_free(&r);
	json_decref(fields);
}

static void render_drift_entry(ctx *c, const tp_plan_entry *e)
{
	rows r = {0};

	header_begin(c);
	put_clean(c, e->address ? e->address : "");
	putf(c, ": %zu %s from what Tapestry applied ", e->ndrift,
	     e->ndrift == 1 ? "field differs" : "fields differ");
	put(c, e->drift_corrected ? "(corrected by this plan: self_heal)"
				  : "(reported, not corrected: self_heal is off)");
	header_end(c);
	for (size_t i = 0; i < e->ndrift; i++)
		rows_add_change(&r, e, &e->drift[i], true);
	rows_emit(c, &r, 0);
	rows_free(&r);
}

static size_t count_actions(const tp_plan *p)
{
	size_t n = 0;
	for (size_t i = 0; i < p->len; i++)
		if (p->entries[i].action != TP_ACTION_NOOP)
			n++;
	return n;
}

static size_t count_drifted(const tp_plan *p)
{
	size_t n = 0;
	for (size_t i = 0; i < p->len; i++)
		if (p->entries[i].ndrift > 0)
			n++;
	return n;
}

/* Drift entries, separated by blank lines. */
static void render_drift_entries(ctx *c, const tp_plan *p)
{
	bool first = true;
	for (size_t i = 0; i < p->len; i++) {
		if (p->entries[i].ndrift == 0)
			continue;
		if (!first)
			put(c, "\n");
		first = false;
		render_drift_entry(c, &p->entries[i]);
	}
}

static void put_summary(ctx *c, const tp_plan *p)
{
	putf(c, "Plan: %zu to add, %zu to change, %zu to destroy", p->add, p->change, p->destroy);
	if (p->forget > 0)
		putf(c, ", %zu to forget", p->forget);
	put(c, ".");
}

#define NO_CHANGES    "No changes. Live state matches the pipeline in Git."
#define DRIFT_TITLE   "Drift: objects changed outside Tapestry"
#define NOT_APPLYABLE "This plan cannot be applied."

/* ---------------------------------------------------------------- text */

static void render_text(ctx *c, const tp_plan *p)
{
	size_t nactions = count_actions(p);

	if (nactions > 0) {
		put(c, "Tapestry will perform the following actions:\n");
		for (size_t i = 0; i < p->len; i++) {
			if (p->entries[i].action == TP_ACTION_NOOP)
				continue;
			put(c, "\n");
			render_block(c, &p->entries[i]);
		}
	} else {
		esc(c, C_BOLD);
		put(c, NO_CHANGES);
		esc(c, C_RESET);
		put(c, "\n");
	}
	if (count_drifted(p) > 0) {
		put(c, "\n");
		esc(c, C_BOLD);
		put(c, DRIFT_TITLE);
		esc(c, C_RESET);
		put(c, "\n\n");
		render_drift_entries(c, p);
	}
	if (nactions > 0) {
		put(c, "\n");
		esc(c, C_BOLD);
		put_summary(c, p);
		esc(c, C_RESET);
		put(c, "\n");
	}
	if (p->notes.len > 0) {
		put(c, "\n");
		for (size_t i = 0; i < p->notes.len; i++) {
			esc(c, C_BOLD);
			put(c, "Note:");
			esc(c, C_RESET);
			put(c, " ");
			put_clean(c, p->notes.items[i]);
			put(c, "\n");
		}
	}
	if (p->errors.len > 0) {
		put(c, "\n");
		for (size_t i = 0; i < p->errors.len; i++) {
			esc(c, C_BOLD C_RED);
			put(c, "Error:");
			esc(c, C_RESET);
			put(c, " ");
			put_clean(c, p->errors.items[i]);
			put(c, "\n");
		}
		put(c, "\n" NOT_APPLYABLE "\n");
	}
}

/* ---------------------------------------------------------------- markdown */

static void render_markdown(ctx *c, const tp_plan *p)
{
	size_t nactions = count_actions(p);

	put(c, "### Tapestry plan for ");
	put_md(c, p->pipeline ? p->pipeline : "");
	put(c, "\n\n**");
	if (nactions > 0)
		put_summary(c, p);
	else
		put(c, NO_CHANGES);
	put(c, "**\n");

	if (nactions > 0) {
		put(c, "\n| Action | Resource | Reason |\n|---|---|---|\n");
		for (size_t i = 0; i < p->len; i++) {
			const tp_plan_entry *e = &p->entries[i];
			if (e->action == TP_ACTION_NOOP)
				continue;
			put(c, "| ");
			put_md(c, tp_action_name(e->action));
			put(c, " | ");
			put_md(c, e->address ? e->address : "");
			put(c, " | ");
			put_md(c, e->reason ? e->reason : "");
			put(c, " |\n");
		}
		for (size_t i = 0; i < p->len; i++) {
			const tp_plan_entry *e = &p->entries[i];
			if (e->action == TP_ACTION_NOOP)
				continue;
			put(c, "\n<details><summary><code>");
			put_html(c, e->address ? e->address : "");
			put(c, "</code> — ");
			put(c, tp_action_name(e->action));
			put(c, "</summary>\n\n```diff\n");
			render_block(c, e);
			put(c, "```\n\n</details>\n");
		}
	}
	if (count_drifted(p) > 0) {
		put(c, "\n#### " DRIFT_TITLE "\n\n```diff\n");
		render_drift_entries(c, p);
		put(c, "```\n");
	}
	for (size_t i = 0; i < p->notes.len; i++) {
		put(c, i ? "" : "\n");
		put(c, "> **Note:** ");
		put_md(c, p->notes.items[i]);
		put(c, "\n\n");
	}
	if (p->errors.len > 0) {
		put(c, "\n");
		for (size_t i = 0; i < p->errors.len; i++) {
			put(c, "> **Error:** ");
			put_md(c, p->errors.items[i]);
			put(c, "\n>\n");
		}
		put(c, "> " NOT_APPLYABLE "\n");
	}
}

/* ---------------------------------------------------------------- json */

/* A JSON string, or null for NULL; bytes that are not valid UTF-8 become '?'. */
static json_t *jstr(const char *s)
{
	json_t *v;
	char *copy;
	if (!s)
		return json_null();
	v = json_string(s);
	if (v)
		return v;
	copy = tp_strdup(s);
	for (char *q = copy; *q; q++)
		if ((unsigned char)*q >= 0x80)
			*q = '?';
	v = json_string(copy);
	free(copy);
	return v ? v : json_string("");
}

static json_t *jval(json_t *v)
{
	return v ? v : json_null();
}

static json_t *actions_json(tp_action a)
{
	json_t *arr = json_array();
	if (a == TP_ACTION_REPLACE) {
		json_array_append_new(arr, json_string("delete"));
		json_array_append_new(arr, json_string("create"));
	} else {
		json_array_append_new(arr, json_string(tp_action_name(a)));
	}
	return arr;
}

static json_t *change_json(const tp_plan_entry *e, const tp_change *ch, bool drift)
{
	json_t *b = NULL, *a = NULL, *o = json_object();
	change_sides(&b, &a, e, ch, drift);
	json_object_set_new(o, "path", jstr(ch->path));
	json_object_set_new(o, drift ? "applied" : "before", jval(b));
	json_object_set_new(o, drift ? "live" : "after", jval(a));
	json_object_set_new(o, "sensitive", json_boolean(change_sensitive(e, ch)));
	if (!drift) {
		json_object_set_new(o, "forces_replacement", json_boolean(ch->forces_replacement));
		json_object_set_new(o, "unknown",
				    json_boolean(ch->unknown || tp_is_unknown(ch->after)));
	}
	return o;
}

static json_t *entry_json(const tp_plan_entry *e)
{
	scrub_ctx sc = entry_scrub(e);
	scrub_ctx plain = {NULL, NULL};
	json_t *o = json_object(), *sp = json_array(), *chs = json_array(), *dr = json_array();
	char *kind = kind_name(e);

	json_object_set_new(o, "address", jstr(e->address));
	json_object_set_new(o, "kind", jstr(kind));
	json_object_set_new(o, "name", jstr(e->name));
	json_object_set_new(o, "actions", actions_json(e->action));
	json_object_set_new(o, "reason", jstr(e->reason));
	json_object_set_new(o, "before", jval(scrub(&sc, e->before, "")));
	json_object_set_new(o, "after", jval(scrub(&sc, e->after, "")));
	for (size_t i = 0; i < e->sensitive_paths.len; i++)
		json_array_append_new(sp, jstr(e->sensitive_paths.items[i]));
	json_object_set_new(o, "sensitive_paths", sp);
	for (size_t i = 0; i < e->nchanges; i++)
		json_array_append_new(chs, change_json(e, &e->changes[i], false));
	json_object_set_new(o, "changes", chs);
	for (size_t i = 0; i < e->ndrift; i++)
		json_array_append_new(dr, change_json(e, &e->drift[i], true));
	json_object_set_new(o, "drift", dr);
	json_object_set_new(o, "drift_corrected", json_boolean(e->drift_corrected));
	json_object_set_new(o, "details", jval(scrub(&plain, e->details, "")));
	free(kind);
	return o;
}

static int render_json(ctx *c, const tp_plan *p)
{
	json_t *root = json_object(), *rc = json_array(), *errs = json_array();
	char *text = NULL;
	int err = 0;

	for (size_t i = 0; i < p->len; i++)
		json_array_append_new(rc, entry_json(&p->entries[i]));
	for (size_t i = 0; i < p->errors.len; i++)
		json_array_append_new(errs, jstr(p->errors.items[i]));
	json_object_set_new(root, "format_version", json_string(TP_PLAN_FORMAT_VERSION));
	json_object_set_new(root, "pipeline", jstr(p->pipeline ? p->pipeline : ""));
	json_object_set_new(root, "resource_changes", rc);
	json_object_set_new(root, "summary",
			    json_pack("{s:I,s:I,s:I,s:I,s:I,s:I}", "add", (json_int_t)p->add,
				      "change", (json_int_t)p->change, "destroy",
				      (json_int_t)p->destroy, "forget", (json_int_t)p->forget,
				      "drifted", (json_int_t)p->drifted, "unchanged",
				      (json_int_t)p->unchanged));
	json_object_set_new(root, "errors", errs);
	{
		json_t *notes = json_array();
		for (size_t i = 0; i < p->notes.len; i++)
			json_array_append_new(notes, jstr(p->notes.items[i]));
		json_object_set_new(root, "notes", notes);
	}
	json_object_set_new(root, "applyable", json_boolean(p->errors.len == 0));

	text = json_dumps(root, JSON_INDENT(2) | JSON_SORT_KEYS);
	if (!text) {
		err = tp_error_set(TP_ERROR, "plan: JSON serialisation failed");
		goto done;
	}
	put(c, text);
	put(c, "\n");
done:
	free(text);
	json_decref(root);
	return err;
}

/* ---------------------------------------------------------------- entry point */

int tp_plan_render(tp_buf *out, const tp_plan *p, tp_render_format fmt, bool color)
{
	ctx c = {out, 0, false, false};
	int rc = 0;

	if (!out || !p)
		return tp_error_set(TP_EINVALID, "plan render: no plan or no output buffer");
	switch (fmt) {
	case TP_RENDER_TEXT:
		c.color = color;
		render_text(&c, p);
		break;
	case TP_RENDER_MARKDOWN:
		c.md = true;
		render_markdown(&c, p);
		break;
	case TP_RENDER_JSON:
		rc = render_json(&c, p);
		break;
	default:
		return tp_error_set(TP_EINVALID, "plan render: unknown format %d", (int)fmt);
	}
	return rc < 0 ? rc : c.rc;
}
