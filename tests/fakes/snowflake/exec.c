/*
 * The fake's SQL engine: executes the DDL, GRANT and SHOW subset Tapestry's reconciler uses
 * against an in-memory catalog (a JSON document), the way Snowflake does it: identifiers are
 * upper-cased unless quoted, LIKE is case-insensitive with % and _, names must exist (or not)
 * with Snowflake's error codes and messages, ALL PRIVILEGES expands into single privileges,
 * IMPORTED PRIVILEGES reads back as USAGE, future grants are copied onto new objects, and
 * dropping an object drops the grants on it. SHOW answers with Snowflake's lower-case column
 * names (including the volatile ones a client must ignore) and OWNERSHIP rows.
 *
 * What it does not do: run queries (a view's query is stored, not analysed; tables are names
 * only), enforce privileges beyond "the role is granted to the user", or keep history.
 */
#include "fake.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#define NOT_FOUND "002003", "02000"
#define EXISTS "002002", "42710"
#define SYNTAX "001003", "42000"
#define INVALID "001008", "22023"

typedef struct {
	fk_toks t;
	size_t i;
	const char *sql;
	fk_error *e;
	json_t *cat;
	const fk_ctx *ctx;
	fk_result *out;
} P;

/* ---------------------------------------------------------------- names */

static bool plain_upper(const char *raw)
{
	if (!raw[0] || !(isupper((unsigned char)raw[0]) || raw[0] == '_'))
		return false;
	for (const char *p = raw; *p; p++)
		if (!(isupper((unsigned char)*p) || isdigit((unsigned char)*p) || *p == '_' ||
		      *p == '$'))
			return false;
	return true;
}

/* Appends the canonical spelling of one stored name: as is when it needs no quotes. */
static void put_canon(tp_buf *b, const char *raw)
{
	if (plain_upper(raw)) {
		tp_buf_puts(b, raw);
		return;
	}
	tp_buf_putc(b, '"');
	for (const char *p = raw; *p; p++) {
		if (*p == '"')
			tp_buf_putc(b, '"');
		tp_buf_putc(b, *p);
	}
	tp_buf_putc(b, '"');
}

static char *canon_path(char *const *parts, int n)
{
	tp_buf b;
	tp_buf_init(&b, 1 << 16);
	tp_buf_put(&b, "", 0);
	for (int i = 0; i < n; i++) {
		if (i)
			tp_buf_putc(&b, '.');
		put_canon(&b, parts[i]);
	}
	return tp_buf_detach(&b);
}

static char *canon1(const char *raw)
{
	char *parts[1] = {(char *)(uintptr_t)raw};
	return canon_path(parts, 1);
}

/* LIKE: case-insensitive, % any run, _ one character, backslash escapes. */
static bool like(const char *s, const char *p)
{
	for (;;) {
		if (*p == '\0')
			return *s == '\0';
		if (*p == '%') {
			while (*p == '%')
				p++;
			if (*p == '\0')
				return true;
			for (; *s; s++)
				if (like(s, p))
					return true;
			return false;
		}
		if (*s == '\0')
			return false;
		if (*p == '_') {
			p++;
			s++;
			continue;
		}
		if (*p == '\\' && p[1])
			p++;
		if (tolower((unsigned char)*s) != tolower((unsigned char)*p))
			return false;
		s++;
		p++;
	}
}

/* ---------------------------------------------------------------- parser helpers */

static fk_tok *cur(P *p)
{
	return &p->t.items[p->i];
}

static fk_tok *ahead(P *p, size_t k)
{
	size_t j = p->i + k;
	return &p->t.items[j < p->t.len ? j : p->t.len - 1];
}

static bool is_kw(const fk_tok *t, const char *w)
{
	return t->type == FK_WORD && strcmp(t->up, w) == 0;
}

static bool kw(P *p, const char *w)
{
	if (!is_kw(cur(p), w))
		return false;
	p->i++;
	return true;
}

/* A phrase of keywords separated by single spaces ("IF NOT EXISTS"), all or nothing. */
static bool kws(P *p, const char *phrase)
{
	char buf[128];
	size_t k = 0;
	char *save = NULL, *w;
	snprintf(buf, sizeof(buf), "%s", phrase);
	for (w = strtok_r(buf, " ", &save); w; w = strtok_r(NULL, " ", &save), k++)
		if (!is_kw(ahead(p, k), w))
			return false;
	p->i += k;
	return true;
}

static bool punct(P *p, char c)
{
	if (cur(p)->type != FK_PUNCT || cur(p)->text[0] != c)
		return false;
	p->i++;
	return true;
}

static int syntax(P *p)
{
	fk_tok *t = cur(p);
	int line = 1, col = 0;
	for (size_t i = 0; i < t->off && p->sql[i]; i++) {
		if (p->sql[i] == '\n') {
			line++;
			col = 0;
		} else {
			col++;
		}
	}
	return fk_fail(p->e, SYNTAX, "SQL compilation error:\nsyntax error line %d at position "
		       "%d unexpected '%s'.", line, col, t->type == FK_EOF ? "<EOF>" : t->text);
}

static int end_of(P *p)
{
	return cur(p)->type == FK_EOF ? 0 : syntax(p);
}

/* One identifier: its stored name (new string). */
static int ident(P *p, char **out)
{
	fk_tok *t = cur(p);
	if (t->type == FK_WORD) {
		*out = tp_strdup(t->up);
	} else if (t->type == FK_QIDENT) {
		if (!t->text[0])
			return fk_fail(p->e, SYNTAX, "SQL compilation error:\nZero-length "
				       "delimited identifier.");
		*out = tp_strdup(t->text);
	} else {
		return syntax(p);
	}
	p->i++;
	return 0;
}

typedef struct {
	char *parts[3];
	int n;
} name_t;

static void name_free(name_t *n)
{
	for (int i = 0; i < n->n; i++)
		free(n->parts[i]);
	n->n = 0;
}

static int name_path(P *p, name_t *out, int max)
{
	memset(out, 0, sizeof(*out));
	for (;;) {
		if (out->n == max) {
			name_free(out);
			return syntax(p);
		}
		if (ident(p, &out->parts[out->n]) < 0) {
			name_free(out);
			return -1;
		}
		out->n++;
		if (!punct(p, '.'))
			return 0;
	}
}

/* Qualifies a name to `want` parts with the current database/schema. */
static int qualify(P *p, name_t *n, int want, const char *what)
{
	const char *ctxparts[2] = {p->ctx->database, p->ctx->schema};
	int missing = want - n->n;
	if (missing < 0)
		return syntax(p);
	for (int k = 0; k < missing; k++)
		if (!ctxparts[k])
			return fk_fail(p->e, "090105", "22000", "Cannot perform %s. This session "
				       "does not have a current %s. Call 'USE %s', or use a "
				       "qualified name.", what, k == 0 ? "database" : "schema",
				       k == 0 ? "DATABASE" : "SCHEMA");
	if (missing > 0) {
		memmove(&n->parts[missing], &n->parts[0], (size_t)n->n * sizeof(char *));
		for (int k = 0; k < missing; k++)
			n->parts[k] = tp_strdup(ctxparts[k]);
		n->n = want;
	}
	return 0;
}

/* ---------------------------------------------------------------- values and properties */

enum { V_STR, V_NUM, V_WORD, V_PATH };

typedef struct {
	int type;
	char *text; /* V_PATH: canonical path; V_WORD: upper-case */
	char *raw;  /* V_PATH of one part / V_WORD: the stored name it designates */
} val_t;

static void val_free(val_t *v)
{
	free(v->text);
	free(v->raw);
	memset(v, 0, sizeof(*v));
}

static int value(P *p, val_t *out)
{
	fk_tok *t = cur(p);
	memset(out, 0, sizeof(*out));
	if (t->type == FK_STRING) {
		out->type = V_STR;
		out->text = tp_strdup(t->text);
		p->i++;
		return 0;
	}
	if (t->type == FK_NUMBER || (t->type == FK_PUNCT && t->text[0] == '-' &&
				     ahead(p, 1)->type == FK_NUMBER)) {
		bool neg = t->type == FK_PUNCT;
		if (neg)
			p->i++;
		out->type = V_NUM;
		out->text = tp_sprintf("%s%s", neg ? "-" : "", cur(p)->text);
		p->i++;
		return 0;
	}
	if ((t->type == FK_WORD && ahead(p, 1)->type == FK_PUNCT &&
	     ahead(p, 1)->text[0] == '.') || t->type == FK_QIDENT) {
		name_t n;
		if (name_path(p, &n, 3) < 0)
			return -1;
		out->type = V_PATH;
		out->text = canon_path(n.parts, n.n);
		if (n.n == 1)
			out->raw = tp_strdup(n.parts[0]);
		name_free(&n);
		return 0;
	}
	if (t->type == FK_WORD) {
		out->type = V_WORD;
		out->text = tp_strdup(t->up);
		out->raw = tp_strdup(t->up);
		p->i++;
		return 0;
	}
	return syntax(p);
}

typedef enum { PT_BOOL, PT_INT, PT_STR, PT_IDENT, PT_NAMESPACE, PT_ENUM, PT_SIZE, PT_KEY,
	       PT_SECRET } prop_type;

typedef struct {
	const char *name; /* SQL property, upper-case */
	prop_type type;
	const char *const *enums;
	long long min, max;
	bool create_only;
} prop_spec;

static const char *const size_canon[] = {"XSMALL", "SMALL", "MEDIUM", "LARGE", "XLARGE",
					  "XXLARGE", "XXXLARGE", "X4LARGE", "X5LARGE", "X6LARGE",
					  NULL};
static const char *const size_show[] = {"X-Small", "Small", "Medium", "Large", "X-Large",
					 "2X-Large", "3X-Large", "4X-Large", "5X-Large",
					 "6X-Large", NULL};

static const char *size_lookup(const char *s)
{
	static const struct {
		const char *alias, *canon;
	} alias[] = {
		{"X-SMALL", "XSMALL"}, {"X-LARGE", "XLARGE"}, {"2X-LARGE", "XXLARGE"},
		{"X2LARGE", "XXLARGE"}, {"3X-LARGE", "XXXLARGE"}, {"X3LARGE", "XXXLARGE"},
		{"4X-LARGE", "X4LARGE"}, {"5X-LARGE", "X5LARGE"}, {"6X-LARGE", "X6LARGE"},
	};
	char up[32];
	size_t n = strlen(s);
	if (n >= sizeof(up))
		return NULL;
	for (size_t i = 0; i <= n; i++)
		up[i] = (char)toupper((unsigned char)s[i]);
	for (size_t i = 0; size_canon[i]; i++)
		if (strcmp(up, size_canon[i]) == 0)
			return size_canon[i];
	for (size_t i = 0; i < sizeof(alias) / sizeof(alias[0]); i++)
		if (strcmp(up, alias[i].alias) == 0)
			return alias[i].canon;
	return NULL;
}

static const char *size_display(const char *canon)
{
	for (size_t i = 0; size_canon[i]; i++)
		if (strcmp(canon, size_canon[i]) == 0)
			return size_show[i];
	return canon;
}

static const char *const scaling_enums[] = {"STANDARD", "ECONOMY", NULL};
static const char *const wh_type_enums[] = {"STANDARD", "SNOWPARK-OPTIMIZED", NULL};
static const char *const user_type_enums[] = {"PERSON", "SERVICE", "LEGACY_SERVICE", NULL};

static const prop_spec warehouse_props[] = {
	{"WAREHOUSE_SIZE", PT_SIZE, NULL, 0, 0, false},
	{"WAREHOUSE_TYPE", PT_ENUM, wh_type_enums, 0, 0, false},
	{"MAX_CLUSTER_COUNT", PT_INT, NULL, 1, 10, false},
	{"MIN_CLUSTER_COUNT", PT_INT, NULL, 1, 10, false},
	{"SCALING_POLICY", PT_ENUM, scaling_enums, 0, 0, false},
	{"AUTO_SUSPEND", PT_INT, NULL, 0, 2147483647, false},
	{"AUTO_RESUME", PT_BOOL, NULL, 0, 0, false},
	{"INITIALLY_SUSPENDED", PT_BOOL, NULL, 0, 0, true},
	{"RESOURCE_MONITOR", PT_IDENT, NULL, 0, 0, false},
	{"ENABLE_QUERY_ACCELERATION", PT_BOOL, NULL, 0, 0, false},
	{"QUERY_ACCELERATION_MAX_SCALE_FACTOR", PT_INT, NULL, 0, 100, false},
	{"STATEMENT_TIMEOUT_IN_SECONDS", PT_INT, NULL, 0, 604800, false},
	{"COMMENT", PT_STR, NULL, 0, 0, false},
	{NULL, 0, NULL, 0, 0, false},
};

static const prop_spec database_props[] = {
	{"DATA_RETENTION_TIME_IN_DAYS", PT_INT, NULL, 0, 90, false},
	{"MAX_DATA_EXTENSION_TIME_IN_DAYS", PT_INT, NULL, 0, 90, false},
	{"DEFAULT_DDL_COLLATION", PT_STR, NULL, 0, 0, false},
	{"COMMENT", PT_STR, NULL, 0, 0, false},
	{NULL, 0, NULL, 0, 0, false},
};

static const prop_spec role_props[] = {
	{"COMMENT", PT_STR, NULL, 0, 0, false},
	{NULL, 0, NULL, 0, 0, false},
};

static const prop_spec view_props[] = {
	{"COMMENT", PT_STR, NULL, 0, 0, false},
	{NULL, 0, NULL, 0, 0, false},
};

static const prop_spec user_props[] = {
	{"PASSWORD", PT_SECRET, NULL, 0, 0, false},
	{"LOGIN_NAME", PT_STR, NULL, 0, 0, false},
	{"DISPLAY_NAME", PT_STR, NULL, 0, 0, false},
	{"FIRST_NAME", PT_STR, NULL, 0, 0, false},
	{"LAST_NAME", PT_STR, NULL, 0, 0, false},
	{"EMAIL", PT_STR, NULL, 0, 0, false},
	{"MUST_CHANGE_PASSWORD", PT_BOOL, NULL, 0, 0, false},
	{"DISABLED", PT_BOOL, NULL, 0, 0, false},
	{"DEFAULT_WAREHOUSE", PT_IDENT, NULL, 0, 0, false},
	{"DEFAULT_NAMESPACE", PT_NAMESPACE, NULL, 0, 0, false},
	{"DEFAULT_ROLE", PT_IDENT, NULL, 0, 0, false},
	{"RSA_PUBLIC_KEY", PT_KEY, NULL, 0, 0, false},
	{"RSA_PUBLIC_KEY_2", PT_KEY, NULL, 0, 0, false},
	{"TYPE", PT_ENUM, user_type_enums, 0, 0, false},
	{"COMMENT", PT_STR, NULL, 0, 0, false},
	{NULL, 0, NULL, 0, 0, false},
};

static const prop_spec *prop_find(const prop_spec *specs, const char *name)
{
	for (size_t i = 0; specs[i].name; i++)
		if (strcmp(specs[i].name, name) == 0)
			return &specs[i];
	return NULL;
}

static char *lower(const char *s)
{
	char *out = tp_strdup(s);
	for (char *q = out; *q; q++)
		*q = (char)tolower((unsigned char)*q);
	return out;
}

/* Checks and stores one property value into obj (key: the property in lower case). */
static int prop_set(P *p, json_t *obj, const prop_spec *ps, const val_t *v, const char *what)
{
	char *key = lower(ps->name);
	json_t *jv = NULL;
	int rc = 0;

	switch (ps->type) {
	case PT_BOOL:
		if (v->type == V_WORD && (strcmp(v->text, "TRUE") == 0 ||
					  strcmp(v->text, "FALSE") == 0))
			jv = json_boolean(strcmp(v->text, "TRUE") == 0);
		break;
	case PT_INT:
		if (v->type == V_NUM && !strchr(v->text, '.')) {
			long long n = strtoll(v->text, NULL, 10);
			if (n >= ps->min && n <= ps->max)
				jv = json_integer(n);
		} else if (v->type == V_WORD && strcmp(v->text, "NULL") == 0 &&
			   strcmp(ps->name, "AUTO_SUSPEND") == 0) {
			jv = json_integer(0);
		}
		break;
	case PT_STR:
	case PT_SECRET:
		if (v->type == V_STR)
			jv = json_string(v->text);
		break;
	case PT_IDENT:
		if (v->type == V_STR)
			jv = json_string(v->text);
		else if ((v->type == V_WORD || v->type == V_PATH) && v->raw)
			jv = json_string(v->raw);
		break;
	case PT_NAMESPACE:
		if (v->type == V_STR || v->type == V_WORD || v->type == V_PATH)
			jv = json_string(v->text);
		break;
	case PT_ENUM:
		if (v->type == V_WORD || v->type == V_STR) {
			char *up = tp_strdup(v->text);
			for (char *q = up; *q; q++)
				*q = (char)toupper((unsigned char)*q);
			for (size_t i = 0; ps->enums[i] && !jv; i++)
				if (strcmp(up, ps->enums[i]) == 0)
					jv = json_string(ps->enums[i]);
			free(up);
		}
		break;
	case PT_SIZE:
		if ((v->type == V_WORD || v->type == V_STR) && size_lookup(v->text))
			jv = json_string(size_lookup(v->text));
		break;
	case PT_KEY:
		if (v->type == V_STR) {
			char *fp = fk_key_fingerprint(v->text);
			if (!fp) {
				rc = fk_fail(p->e, "001008", "22023", "Invalid RSA public key: the "
					     "value of %s is not a base64 DER RSA public key.",
					     ps->name);
				goto done;
			}
			free(fp);
			jv = json_string(v->text);
		}
		break;
	}
	if (!jv) {
		rc = fk_fail(p->e, INVALID, "SQL compilation error:\ninvalid value [%s] for "
			     "parameter '%s'",
			     ps->type == PT_SECRET ? "***" : v->text ? v->text : "", ps->name);
		goto done;
	}
	if (ps->type == PT_SECRET) {
		json_object_set_new(obj, "has_password", json_true());
		json_decref(jv);
	} else {
		json_object_set_new(obj, key, jv);
	}
	(void)what;
done:
	free(key);
	return rc;
}

/* KEY = value [,] KEY = value ... into obj; stops at anything that is not `WORD =`. */
static int props(P *p, json_t *obj, const prop_spec *specs, const char *what, bool creating)
{
	for (;;) {
		fk_tok *k = cur(p);
		const prop_spec *ps;
		val_t v;
		int rc;
		if (k->type == FK_PUNCT && k->text[0] == ',' && ahead(p, 1)->type == FK_WORD) {
			p->i++;
			continue;
		}
		if (k->type != FK_WORD || ahead(p, 1)->type != FK_PUNCT ||
		    ahead(p, 1)->text[0] != '=')
			return 0;
		ps = prop_find(specs, k->up);
		if (!ps || (ps->create_only && !creating))
			return fk_fail(p->e, "002029", "42601", "SQL compilation error:\ninvalid "
				       "property '%s' for '%s'", k->up, what);
		p->i += 2;
		if (value(p, &v) < 0)
			return -1;
		rc = prop_set(p, obj, ps, &v, what);
		val_free(&v);
		if (rc < 0)
			return -1;
	}
}

/* UNSET a, b: back to the defaults in `defaults` (or absent). */
static int unset(P *p, json_t *obj, const prop_spec *specs, const json_t *defaults,
		 const char *what)
{
	do {
		fk_tok *k = cur(p);
		const prop_spec *ps;
		char *key;
		if (k->type != FK_WORD)
			return syntax(p);
		ps = prop_find(specs, k->up);
		if (!ps || ps->create_only)
			return fk_fail(p->e, "002029", "42601", "SQL compilation error:\ninvalid "
				       "property '%s' for '%s'", k->up, what);
		p->i++;
		key = lower(ps->name);
		if (ps->type == PT_SECRET)
			json_object_set_new(obj, "has_password", json_false());
		else if (json_object_get(defaults, key))
			json_object_set(obj, key, json_object_get(defaults, key));
		else
			json_object_del(obj, key);
		free(key);
	} while (punct(p, ','));
	return 0;
}

/* ---------------------------------------------------------------- catalog access */

static json_t *section(json_t *cat, const char *key)
{
	return json_object_get(cat, key);
}

static json_t *find_db(P *p, const char *name)
{
	return json_object_get(section(p->cat, "databases"), name);
}

static json_t *find_schema(P *p, const char *db, const char *schema)
{
	return json_object_get(json_object_get(find_db(p, db), "schemas"), schema);
}

static int missing(P *p, const char *type, char *const *parts, int n)
{
	char *c = canon_path(parts, n);
	fk_fail(p->e, NOT_FOUND, "SQL compilation error:\n%s '%s' does not exist or not "
		"authorized.", type, c);
	free(c);
	return -1;
}

static int exists_err(P *p, char *const *parts, int n)
{
	char *c = canon_path(parts, n);
	fk_fail(p->e, EXISTS, "SQL compilation error:\nObject '%s' already exists.", c);
	free(c);
	return -1;
}

static void ts_str(char *out, size_t n, int64_t ms)
{
	snprintf(out, n, "%lld.%03lld000000", (long long)(ms / 1000), (long long)(ms % 1000));
}

static json_t *new_object(P *p, const char *name)
{
	return json_pack("{s:s,s:s,s:I}", "name", name, "owner", p->ctx->role, "created_on",
			 (json_int_t)p->ctx->now_ms);
}

static void status_row(P *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void status_row(P *p, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	p->out->columns = json_pack("[[s,s]]", "status", "text");
	p->out->rows = json_pack("[[s]]", msg);
}

/* Drops every grant (and future grant) on `path` or, with prefix, on anything inside it. */
static void drop_grants_on(P *p, const char *path, bool inside)
{
	const char *keys[] = {"grants", "future_grants"};
	size_t plen = strlen(path);
	for (int k = 0; k < 2; k++) {
		json_t *arr = section(p->cat, keys[k]);
		for (size_t i = json_array_size(arr); i-- > 0;) {
			const char *n = tp_json_get_str(json_array_get(arr, i),
							k == 0 ? "name" : "scope");
			if (!n)
				continue;
			if (strcmp(n, path) == 0 ||
			    (inside && strncmp(n, path, plen) == 0 && n[plen] == '.'))
				json_array_remove(arr, i);
		}
	}
}

/* ---------------------------------------------------------------- results */

static void cols(P *p, const char *const *names)
{
	p->out->columns = json_array();
	for (size_t i = 0; names[i]; i += 2)
		json_array_append_new(p->out->columns, json_pack("[s,s]", names[i], names[i + 1]));
	p->out->rows = json_array();
}

static json_t *jstr(const json_t *obj, const char *key)
{
	const json_t *v = json_object_get(obj, key);
	char buf[32];
	if (json_is_string(v))
		return json_string(json_string_value(v));
	if (json_is_integer(v)) {
		snprintf(buf, sizeof(buf), "%lld", (long long)json_integer_value(v));
		return json_string(buf);
	}
	if (json_is_boolean(v))
		return json_string(json_is_true(v) ? "true" : "false");
	return json_null();
}

static json_t *jbool(bool b)
{
	return json_string(b ? "true" : "false");
}

static json_t *jts(const json_t *obj, const char *key)
{
	char buf[48];
	json_t *v = json_object_get(obj, key);
	if (!json_is_integer(v))
		return json_null();
	ts_str(buf, sizeof(buf), json_integer_value(v));
	return json_string(buf);
}

/* Sorted keys of an object section, filtered by an optional LIKE pattern. */
static json_t *names_like(json_t *objs, const char *pattern)
{
	json_t *out = json_array();
	const char *k;
	json_t *v;
	json_object_foreach(objs, k, v)
		if (!pattern || like(k, pattern))
			json_array_append_new(out, json_string(k));
	tp_json_array_sort(out, tp_json_qsort_cmp, false);
	return out;
}

/* [LIKE 'pattern'] (new string or NULL) */
static int like_clause(P *p, char **out)
{
	*out = NULL;
	if (!kw(p, "LIKE"))
		return 0;
	if (cur(p)->type != FK_STRING)
		return syntax(p);
	*out = tp_strdup(cur(p)->text);
	p->i++;
	return 0;
}

/* ---------------------------------------------------------------- warehouses */

static json_t *warehouse_defaults(void)
{
	return json_pack("{s:s,s:s,s:i,s:i,s:s,s:i,s:b,s:b}", "warehouse_size", "XSMALL",
			 "warehouse_type", "STANDARD", "min_cluster_count", 1, "max_cluster_count",
			 1, "scaling_policy", "STANDARD", "auto_suspend", 600, "auto_resume", 1,
			 "enable_query_acceleration", 0);
}

static int create_warehouse(P *p, bool replace)
{
	json_t *whs = section(p->cat, "warehouses"), *obj = NULL, *def = warehouse_defaults();
	bool if_not = kws(p, "IF NOT EXISTS");
	char *name = NULL;
	const char *k;
	json_t *v;
	int rc;

	if ((rc = ident(p, &name)) < 0)
		goto done;
	kw(p, "WITH");
	obj = new_object(p, name);
	json_object_foreach(def, k, v)
		json_object_set(obj, k, v);
	if ((rc = props(p, obj, warehouse_props, "WAREHOUSE", true)) < 0 ||
	    (rc = end_of(p)) < 0)
		goto done;
	if (json_integer_value(json_object_get(obj, "min_cluster_count")) >
	    json_integer_value(json_object_get(obj, "max_cluster_count"))) {
		rc = fk_fail(p->e, INVALID, "SQL compilation error:\nMIN_CLUSTER_COUNT must be "
			     "less than or equal to MAX_CLUSTER_COUNT");
		goto done;
	}
	if (json_object_get(whs, name) && !replace) {
		if (if_not) {
			status_row(p, "%s already exists, statement succeeded.", name);
			goto done;
		}
		rc = exists_err(p, &name, 1);
		goto done;
	}
	if (json_object_get(whs, name)) {
		char *c = canon1(name);
		drop_grants_on(p, c, false);
		free(c);
	}
	json_object_set_new(obj, "state",
			    json_string(json_is_false(json_object_get(obj, "initially_suspended"))
						? "STARTED"
						: "SUSPENDED"));
	json_object_del(obj, "initially_suspended");
	json_object_set_new(obj, "updated_on", json_integer(p->ctx->now_ms));
	json_object_set(whs, name, obj);
	p->out->write = true;
	status_row(p, "Warehouse %s successfully created.", name);
done:
	json_decref(obj);
	json_decref(def);
	free(name);
	return rc;
}

static int alter_warehouse(P *p)
{
	bool if_exists = kws(p, "IF EXISTS");
	char *name = NULL;
	json_t *obj, *def = warehouse_defaults();
	int rc;

	if ((rc = ident(p, &name)) < 0)
		goto done;
	obj = json_object_get(section(p->cat, "warehouses"), name);
	if (!obj) {
		if (if_exists) {
			status_row(p, "Statement executed successfully.");
			goto done;
		}
		rc = missing(p, "Warehouse", &name, 1);
		goto done;
	}
	if (kw(p, "SET"))
		rc = props(p, obj, warehouse_props, "WAREHOUSE", false);
	else if (kw(p, "UNSET"))
		rc = unset(p, obj, warehouse_props, def, "WAREHOUSE");
	else if (kw(p, "SUSPEND"))
		json_object_set_new(obj, "state", json_string("SUSPENDED"));
	else if (kw(p, "RESUME")) {
		kws(p, "IF SUSPENDED");
		json_object_set_new(obj, "state", json_string("STARTED"));
		json_object_set_new(obj, "resumed_on", json_integer(p->ctx->now_ms));
	} else
		rc = syntax(p);
	if (rc == 0)
		rc = end_of(p);
	if (rc == 0) {
		json_object_set_new(obj, "updated_on", json_integer(p->ctx->now_ms));
		p->out->write = true;
		status_row(p, "Statement executed successfully.");
	}
done:
	json_decref(def);
	free(name);
	return rc;
}

static int show_warehouses(P *p)
{
	static const char *const c[] = {
		"name", "text", "state", "text", "type", "text", "size", "text",
		"min_cluster_count", "fixed", "max_cluster_count", "fixed", "started_clusters",
		"fixed", "running", "fixed", "queued", "fixed", "is_default", "text",
		"is_current", "text", "auto_suspend", "fixed", "auto_resume", "text",
		"available", "text", "provisioning", "text", "quiescing", "text", "other",
		"text", "created_on", "timestamp_ltz", "resumed_on", "timestamp_ltz",
		"updated_on", "timestamp_ltz", "owner", "text", "comment", "text",
		"enable_query_acceleration", "text", "query_acceleration_max_scale_factor",
		"fixed", "resource_monitor", "text", "scaling_policy", "text",
		"owner_role_type", "text", NULL};
	json_t *whs = section(p->cat, "warehouses"), *names;
	char *pattern = NULL;
	size_t i;
	json_t *nv;

	if (like_clause(p, &pattern) < 0 || end_of(p) < 0) {
		free(pattern);
		return -1;
	}
	cols(p, c);
	names = names_like(whs, pattern);
	json_array_foreach(names, i, nv) {
		const char *name = json_string_value(nv);
		json_t *w = json_object_get(whs, name);
		bool started = strcmp(tp_json_get_str(w, "state"), "STARTED") == 0;
		int64_t suspend = json_integer_value(json_object_get(w, "auto_suspend"));
		json_t *row = json_array();
		json_array_append_new(row, json_string(name));
		json_array_append_new(row, json_string(tp_json_get_str(w, "state")));
		json_array_append_new(row, jstr(w, "warehouse_type"));
		json_array_append_new(row, json_string(size_display(tp_json_get_str(
						   w, "warehouse_size"))));
		json_array_append_new(row, jstr(w, "min_cluster_count"));
		json_array_append_new(row, jstr(w, "max_cluster_count"));
		json_array_append_new(row, json_string(started ? "1" : "0"));
		json_array_append_new(row, json_string("0"));
		json_array_append_new(row, json_string("0"));
		json_array_append_new(row, json_string("N"));
		json_array_append_new(row, json_string(p->ctx->warehouse &&
						       strcmp(p->ctx->warehouse, name) == 0
							       ? "Y" : "N"));
		json_array_append_new(row, suspend > 0 ? jstr(w, "auto_suspend") : json_null());
		json_array_append_new(row, jstr(w, "auto_resume"));
		json_array_append_new(row, json_string(started ? "100" : ""));
		json_array_append_new(row, json_string(""));
		json_array_append_new(row, json_string(""));
		json_array_append_new(row, json_string(""));
		json_array_append_new(row, jts(w, "created_on"));
		json_array_append_new(row, jts(w, "resumed_on"));
		json_array_append_new(row, jts(w, "updated_on"));
		json_array_append_new(row, jstr(w, "owner"));
		json_array_append_new(row, json_string(tp_json_get_str(w, "comment")
							       ? tp_json_get_str(w, "comment")
							       : ""));
		json_array_append_new(row, jstr(w, "enable_query_acceleration"));
		json_array_append_new(row, json_string("8"));
		json_array_append_new(row, json_object_get(w, "resource_monitor")
						   ? jstr(w, "resource_monitor")
						   : json_string("null"));
		json_array_append_new(row, jstr(w, "scaling_policy"));
		json_array_append_new(row, json_string("ROLE"));
		json_array_append_new(p->out->rows, row);
	}
	json_decref(names);
	free(pattern);
	return 0;
}

/* ---------------------------------------------------------------- databases and schemas */

static int create_database(P *p, bool replace, bool transient)
{
	json_t *dbs = section(p->cat, "databases"), *obj = NULL;
	bool if_not = kws(p, "IF NOT EXISTS");
	char *name = NULL;
	int rc;

	if ((rc = ident(p, &name)) < 0)
		goto done;
	obj = new_object(p, name);
	json_object_set_new(obj, "data_retention_time_in_days", json_integer(1));
	json_object_set_new(obj, "transient", json_boolean(transient));
	json_object_set_new(obj, "schemas", json_object());
	if ((rc = props(p, obj, database_props, "DATABASE", true)) < 0 || (rc = end_of(p)) < 0)
		goto done;
	if (transient && json_integer_value(json_object_get(obj, "data_retention_time_in_days")) >
				 1) {
		rc = fk_fail(p->e, INVALID, "SQL compilation error:\ninvalid value [%lld] for "
			     "parameter 'DATA_RETENTION_TIME_IN_DAYS'",
			     (long long)json_integer_value(
				     json_object_get(obj, "data_retention_time_in_days")));
		goto done;
	}
	if (json_object_get(dbs, name) && !replace) {
		if (if_not) {
			status_row(p, "%s already exists, statement succeeded.", name);
			goto done;
		}
		rc = exists_err(p, &name, 1);
		goto done;
	}
	{
		/* every database has these two schemas */
		json_t *schemas = json_object_get(obj, "schemas");
		json_object_set_new(schemas, "PUBLIC",
				    json_pack("{s:s,s:s,s:I,s:o,s:o,s:b,s:b}", "name", "PUBLIC",
					      "owner", p->ctx->role, "created_on",
					      (json_int_t)p->ctx->now_ms, "views", json_object(),
					      "tables", json_object(), "transient", transient,
					      "managed_access", 0));
	}
	if (json_object_get(dbs, name)) {
		char *c = canon1(name);
		drop_grants_on(p, c, true);
		free(c);
	}
	json_object_set(dbs, name, obj);
	p->out->write = true;
	status_row(p, "Database %s successfully created.", name);
done:
	json_decref(obj);
	free(name);
	return rc;
}

static int create_schema(P *p, bool replace, bool transient)
{
	bool if_not = kws(p, "IF NOT EXISTS");
	name_t n = {0};
	json_t *db, *obj = NULL, *schemas;
	int rc;

	if ((rc = name_path(p, &n, 2)) < 0 || (rc = qualify(p, &n, 2, "CREATE SCHEMA")) < 0)
		goto done;
	obj = new_object(p, n.parts[1]);
	json_object_set_new(obj, "transient", json_boolean(transient));
	json_object_set_new(obj, "managed_access", json_false());
	json_object_set_new(obj, "views", json_object());
	json_object_set_new(obj, "tables", json_object());
	if (kws(p, "WITH MANAGED ACCESS"))
		json_object_set_new(obj, "managed_access", json_true());
	if ((rc = props(p, obj, database_props, "SCHEMA", true)) < 0 || (rc = end_of(p)) < 0)
		goto done;
	if (!(db = find_db(p, n.parts[0]))) {
		rc = missing(p, "Database", n.parts, 1);
		goto done;
	}
	if (!json_object_get(obj, "data_retention_time_in_days"))
		json_object_set(obj, "data_retention_time_in_days",
				json_object_get(db, "data_retention_time_in_days"));
	if (strcmp(n.parts[1], "INFORMATION_SCHEMA") == 0) {
		rc = exists_err(p, n.parts, 2);
		goto done;
	}
	schemas = json_object_get(db, "schemas");
	if (json_object_get(schemas, n.parts[1]) && !replace) {
		if (if_not) {
			status_row(p, "%s already exists, statement succeeded.", n.parts[1]);
			goto done;
		}
		rc = exists_err(p, n.parts, 2);
		goto done;
	}
	if (json_object_get(schemas, n.parts[1])) {
		char *c = canon_path(n.parts, 2);
		drop_grants_on(p, c, true);
		free(c);
	}
	json_object_set(schemas, n.parts[1], obj);
	p->out->write = true;
	status_row(p, "Schema %s successfully created.", n.parts[1]);
done:
	json_decref(obj);
	name_free(&n);
	return rc;
}

static int alter_container(P *p, bool schema)
{
	bool if_exists = kws(p, "IF EXISTS");
	name_t n = {0};
	json_t *obj, *def;
	int rc;

	if ((rc = name_path(p, &n, schema ? 2 : 1)) < 0 ||
	    (schema && (rc = qualify(p, &n, 2, "ALTER SCHEMA")) < 0))
		goto done;
	obj = schema ? find_schema(p, n.parts[0], n.parts[1]) : find_db(p, n.parts[0]);
	if (!obj) {
		if (if_exists) {
			status_row(p, "Statement executed successfully.");
			goto done;
		}
		rc = missing(p, schema ? "Schema" : "Database", n.parts, n.n);
		goto done;
	}
	def = json_pack("{s:i}", "data_retention_time_in_days", 1);
	if (kw(p, "SET"))
		rc = props(p, obj, database_props, schema ? "SCHEMA" : "DATABASE", false);
	else if (kw(p, "UNSET"))
		rc = unset(p, obj, database_props, def, schema ? "SCHEMA" : "DATABASE");
	else if (schema && kws(p, "ENABLE MANAGED ACCESS"))
		json_object_set_new(obj, "managed_access", json_true());
	else if (schema && kws(p, "DISABLE MANAGED ACCESS"))
		json_object_set_new(obj, "managed_access", json_false());
	else
		rc = syntax(p);
	json_decref(def);
	if (rc == 0)
		rc = end_of(p);
	if (rc == 0) {
		p->out->write = true;
		status_row(p, "Statement executed successfully.");
	}
done:
	name_free(&n);
	return rc;
}

static int show_databases(P *p)
{
	static const char *const c[] = {
		"created_on", "timestamp_ltz", "name", "text", "is_default", "text",
		"is_current", "text", "origin", "text", "owner", "text", "comment", "text",
		"options", "text", "retention_time", "text", "kind", "text", "budget", "text",
		"owner_role_type", "text", NULL};
	json_t *dbs = section(p->cat, "databases"), *names;
	char *pattern = NULL;
	size_t i;
	json_t *nv;

	if (like_clause(p, &pattern) < 0 || (kw(p, "IN") && !kw(p, "ACCOUNT")) || end_of(p) < 0) {
		free(pattern);
		return p->e->code[0] ? -1 : syntax(p);
	}
	cols(p, c);
	names = names_like(dbs, pattern);
	json_array_foreach(names, i, nv) {
		json_t *d = json_object_get(dbs, json_string_value(nv));
		json_array_append_new(
			p->out->rows,
			json_pack("[o,s,s,s,s,o,s,s,o,s,n,s]", jts(d, "created_on"),
				  json_string_value(nv), "N",
				  p->ctx->database && strcmp(p->ctx->database,
							     json_string_value(nv)) == 0
					  ? "Y" : "N",
				  "", jstr(d, "owner"),
				  tp_json_get_str(d, "comment") ? tp_json_get_str(d, "comment") : "",
				  json_is_true(json_object_get(d, "transient")) ? "TRANSIENT" : "",
				  jstr(d, "data_retention_time_in_days"), "STANDARD", "ROLE"));
	}
	json_decref(names);
	free(pattern);
	return 0;
}

static json_t *schema_row(const char *db, const char *name, json_t *s)
{
	char opts[64] = "";
	bool tr = json_is_true(json_object_get(s, "transient"));
	bool ma = json_is_true(json_object_get(s, "managed_access"));
	snprintf(opts, sizeof(opts), "%s%s%s", tr ? "TRANSIENT" : "", tr && ma ? ", " : "",
		 ma ? "MANAGED ACCESS" : "");
	return json_pack("[o,s,s,s,s,o,s,s,o,s,n]", jts(s, "created_on"), name, "N", "N", db,
			 jstr(s, "owner"),
			 tp_json_get_str(s, "comment") ? tp_json_get_str(s, "comment") : "", opts,
			 jstr(s, "data_retention_time_in_days"), "ROLE");
}

static int show_schemas(P *p)
{
	static const char *const c[] = {
		"created_on", "timestamp_ltz", "name", "text", "is_default", "text",
		"is_current", "text", "database_name", "text", "owner", "text", "comment",
		"text", "options", "text", "retention_time", "text", "owner_role_type", "text",
		"budget", "text", NULL};
	char *pattern = NULL;
	char *dbname = NULL;
	json_t *dbs = section(p->cat, "databases");
	json_t *dbnames = NULL;
	size_t i;
	json_t *dv;
	int rc;

	if ((rc = like_clause(p, &pattern)) < 0)
		goto done;
	if (kw(p, "IN")) {
		if (kw(p, "ACCOUNT")) {
			dbnames = names_like(dbs, NULL);
		} else {
			kw(p, "DATABASE");
			if ((rc = ident(p, &dbname)) < 0)
				goto done;
			if (!json_object_get(dbs, dbname)) {
				rc = missing(p, "Database", &dbname, 1);
				goto done;
			}
			dbnames = json_pack("[s]", dbname);
		}
	} else if (p->ctx->database) {
		dbnames = json_pack("[s]", p->ctx->database);
	} else {
		rc = fk_fail(p->e, "090105", "22000", "Cannot perform SHOW SCHEMAS. This session "
			     "does not have a current database. Call 'USE DATABASE', or use a "
			     "qualified name.");
		goto done;
	}
	if ((rc = end_of(p)) < 0)
		goto done;
	cols(p, c);
	json_array_foreach(dbnames, i, dv) {
		const char *db = json_string_value(dv);
		json_t *schemas = json_object_get(json_object_get(dbs, db), "schemas");
		json_t *names = names_like(schemas, NULL);
		size_t j;
		json_t *nv;
		/* INFORMATION_SCHEMA is listed in every database */
		json_array_append_new(names, json_string("INFORMATION_SCHEMA"));
		tp_json_array_sort(names, tp_json_qsort_cmp, false);
		json_array_foreach(names, j, nv) {
			const char *name = json_string_value(nv);
			json_t *s = json_object_get(schemas, name);
			json_t *info = NULL;
			if (pattern && !like(name, pattern))
				continue;
			if (!s)
				s = info = json_pack("{s:s,s:s}", "owner", "",
						     "comment", "Views describing the contents "
						     "of schemas in this database");
			json_array_append_new(p->out->rows, schema_row(db, name, s));
			json_decref(info);
		}
		json_decref(names);
	}
done:
	json_decref(dbnames);
	free(dbname);
	free(pattern);
	return rc;
}

/* ---------------------------------------------------------------- roles */

static const char *const system_roles[] = {"ACCOUNTADMIN", "ORGADMIN", "SECURITYADMIN",
					    "SYSADMIN", "USERADMIN", "PUBLIC", NULL};

static bool is_system_role(const char *r)
{
	for (size_t i = 0; system_roles[i]; i++)
		if (strcmp(r, system_roles[i]) == 0)
			return true;
	return false;
}

static int create_role(P *p, bool replace)
{
	json_t *roles = section(p->cat, "roles"), *obj = NULL;
	bool if_not = kws(p, "IF NOT EXISTS");
	char *name = NULL;
	int rc;

	if ((rc = ident(p, &name)) < 0)
		goto done;
	obj = new_object(p, name);
	if ((rc = props(p, obj, role_props, "ROLE", true)) < 0 || (rc = end_of(p)) < 0)
		goto done;
	if (json_object_get(roles, name) && (!replace || is_system_role(name))) {
		if (if_not) {
			status_row(p, "%s already exists, statement succeeded.", name);
			goto done;
		}
		rc = exists_err(p, &name, 1);
		goto done;
	}
	json_object_set(roles, name, obj);
	p->out->write = true;
	status_row(p, "Role %s successfully created.", name);
done:
	json_decref(obj);
	free(name);
	return rc;
}

static int alter_role(P *p)
{
	bool if_exists = kws(p, "IF EXISTS");
	char *name = NULL;
	json_t *obj;
	int rc;

	if ((rc = ident(p, &name)) < 0)
		goto done;
	if (!(obj = json_object_get(section(p->cat, "roles"), name))) {
		if (if_exists) {
			status_row(p, "Statement executed successfully.");
			goto done;
		}
		rc = missing(p, "Role", &name, 1);
		goto done;
	}
	if (kw(p, "SET"))
		rc = props(p, obj, role_props, "ROLE", false);
	else if (kw(p, "UNSET"))
		rc = unset(p, obj, role_props, NULL, "ROLE");
	else
		rc = syntax(p);
	if (rc == 0)
		rc = end_of(p);
	if (rc == 0) {
		p->out->write = true;
		status_row(p, "Statement executed successfully.");
	}
done:
	free(name);
	return rc;
}

static size_t count_role_grants(P *p, const char *field, const char *value, const char *type)
{
	json_t *rg = section(p->cat, "role_grants");
	size_t i, n = 0;
	json_t *g;
	json_array_foreach(rg, i, g)
		if (strcmp(tp_json_get_str(g, field), value) == 0 &&
		    (!type || strcmp(tp_json_get_str(g, "granted_to"), type) == 0))
			n++;
	return n;
}

static int show_roles(P *p)
{
	static const char *const c[] = {
		"created_on", "timestamp_ltz", "name", "text", "is_default", "text",
		"is_current", "text", "is_inherited", "text", "assigned_to_users", "fixed",
		"granted_to_roles", "fixed", "granted_roles", "fixed", "owner", "text",
		"comment", "text", "owner_role_type", "text", NULL};
	json_t *roles = section(p->cat, "roles"), *names;
	char *pattern = NULL;
	size_t i;
	json_t *nv;

	if (like_clause(p, &pattern) < 0 || end_of(p) < 0) {
		free(pattern);
		return -1;
	}
	cols(p, c);
	names = names_like(roles, pattern);
	json_array_foreach(names, i, nv) {
		const char *name = json_string_value(nv);
		json_t *r = json_object_get(roles, name);
		char a[24], b[24], d[24];
		snprintf(a, sizeof(a), "%zu", count_role_grants(p, "role", name, "USER"));
		snprintf(b, sizeof(b), "%zu", count_role_grants(p, "role", name, "ROLE"));
		snprintf(d, sizeof(d), "%zu", count_role_grants(p, "grantee", name, "ROLE"));
		json_array_append_new(
			p->out->rows,
			json_pack("[o,s,s,s,s,s,s,s,o,s,s]", jts(r, "created_on"), name, "N",
				  strcmp(p->ctx->role, name) == 0 ? "Y" : "N", "N", a, b, d,
				  jstr(r, "owner"),
				  tp_json_get_str(r, "comment") ? tp_json_get_str(r, "comment") : "",
				  "ROLE"));
	}
	json_decref(names);
	free(pattern);
	return 0;
}

/* ---------------------------------------------------------------- users */

static int create_user(P *p, bool replace)
{
	json_t *users = section(p->cat, "users"), *obj = NULL;
	bool if_not = kws(p, "IF NOT EXISTS");
	char *name = NULL;
	int rc;

	if ((rc = ident(p, &name)) < 0)
		goto done;
	obj = new_object(p, name);
	json_object_set_new(obj, "login_name", json_string(name));
	json_object_set_new(obj, "display_name", json_string(name));
	json_object_set_new(obj, "has_password", json_false());
	json_object_set_new(obj, "disabled", json_false());
	json_object_set_new(obj, "must_change_password", json_false());
	if ((rc = props(p, obj, user_props, "USER", true)) < 0 || (rc = end_of(p)) < 0)
		goto done;
	if (json_is_true(json_object_get(obj, "has_password")) &&
	    strcmp(tp_json_get_str(obj, "type") ? tp_json_get_str(obj, "type") : "", "SERVICE") ==
		    0) {
		rc = fk_fail(p->e, "002029", "42601", "SQL compilation error:\nCannot set "
			     "PASSWORD for a user of TYPE = SERVICE.");
		goto done;
	}
	if (json_object_get(users, name) && !replace) {
		if (if_not) {
			status_row(p, "%s already exists, statement succeeded.", name);
			goto done;
		}
		rc = exists_err(p, &name, 1);
		goto done;
	}
	{
		/* LOGIN_NAME is case-insensitive: stored upper-case */
		char *up = tp_strdup(tp_json_get_str(obj, "login_name"));
		for (char *q = up; *q; q++)
			*q = (char)toupper((unsigned char)*q);
		json_object_set_new(obj, "login_name", json_string(up));
		free(up);
	}
	json_object_set(users, name, obj);
	p->out->write = true;
	status_row(p, "User %s successfully created.", name);
done:
	json_decref(obj);
	free(name);
	return rc;
}

static int alter_user(P *p)
{
	bool if_exists = kws(p, "IF EXISTS");
	char *name = NULL;
	json_t *obj, *def = NULL;
	int rc;

	if ((rc = ident(p, &name)) < 0)
		goto done;
	if (!(obj = json_object_get(section(p->cat, "users"), name))) {
		if (if_exists) {
			status_row(p, "Statement executed successfully.");
			goto done;
		}
		rc = missing(p, "User", &name, 1);
		goto done;
	}
	def = json_pack("{s:s,s:s,s:b,s:b}", "login_name", name, "display_name", name,
			"disabled", 0, "must_change_password", 0);
	if (kw(p, "SET")) {
		rc = props(p, obj, user_props, "USER", false);
		if (rc == 0 && json_object_get(obj, "login_name")) {
			char *up = tp_strdup(tp_json_get_str(obj, "login_name"));
			for (char *q = up; *q; q++)
				*q = (char)toupper((unsigned char)*q);
			json_object_set_new(obj, "login_name", json_string(up));
			free(up);
		}
	} else if (kw(p, "UNSET")) {
		rc = unset(p, obj, user_props, def, "USER");
	} else {
		rc = syntax(p);
	}
	if (rc == 0)
		rc = end_of(p);
	if (rc == 0) {
		p->out->write = true;
		status_row(p, "Statement executed successfully.");
	}
done:
	json_decref(def);
	free(name);
	return rc;
}

static int show_users(P *p)
{
	static const char *const c[] = {
		"name", "text", "created_on", "timestamp_ltz", "login_name", "text",
		"display_name", "text", "first_name", "text", "last_name", "text", "email",
		"text", "mins_to_unlock", "text", "days_to_expiry", "text", "comment", "text",
		"disabled", "text", "must_change_password", "text", "snowflake_lock", "text",
		"default_warehouse", "text", "default_namespace", "text", "default_role", "text",
		"default_secondary_roles", "text", "ext_authn_duo", "text", "ext_authn_uid",
		"text", "mins_to_bypass_mfa", "text", "owner", "text", "last_success_login",
		"timestamp_ltz", "expires_at_time", "timestamp_ltz", "locked_until_time",
		"timestamp_ltz", "has_password", "text", "has_rsa_public_key", "text", "type",
		"text", "has_mfa", "text", NULL};
	json_t *users = section(p->cat, "users"), *names;
	char *pattern = NULL;
	size_t i;
	json_t *nv;

	if (like_clause(p, &pattern) < 0 || end_of(p) < 0) {
		free(pattern);
		return -1;
	}
	cols(p, c);
	names = names_like(users, pattern);
	json_array_foreach(names, i, nv) {
		json_t *u = json_object_get(users, json_string_value(nv));
		json_t *row = json_array();
		bool key = json_object_get(u, "rsa_public_key") ||
			   json_object_get(u, "rsa_public_key_2");
		json_array_append_new(row, json_string(json_string_value(nv)));
		json_array_append_new(row, jts(u, "created_on"));
		json_array_append_new(row, jstr(u, "login_name"));
		json_array_append_new(row, jstr(u, "display_name"));
		json_array_append_new(row, jstr(u, "first_name"));
		json_array_append_new(row, jstr(u, "last_name"));
		json_array_append_new(row, jstr(u, "email"));
		json_array_append_new(row, json_null());
		json_array_append_new(row, json_null());
		json_array_append_new(row, jstr(u, "comment"));
		json_array_append_new(row, jstr(u, "disabled"));
		json_array_append_new(row, jstr(u, "must_change_password"));
		json_array_append_new(row, json_string("false"));
		json_array_append_new(row, jstr(u, "default_warehouse"));
		json_array_append_new(row, jstr(u, "default_namespace"));
		json_array_append_new(row, jstr(u, "default_role"));
		json_array_append_new(row, json_string("[\"ALL\"]"));
		json_array_append_new(row, json_string("false"));
		json_array_append_new(row, json_null());
		json_array_append_new(row, json_null());
		json_array_append_new(row, jstr(u, "owner"));
		json_array_append_new(row, json_null());
		json_array_append_new(row, json_null());
		json_array_append_new(row, json_null());
		json_array_append_new(row, jstr(u, "has_password"));
		json_array_append_new(row, jbool(key));
		json_array_append_new(row, jstr(u, "type"));
		json_array_append_new(row, json_string("false"));
		json_array_append_new(p->out->rows, row);
	}
	json_decref(names);
	free(pattern);
	return 0;
}

static int describe_user(P *p)
{
	static const char *const c[] = {"property", "text", "value", "text", "default", "text",
					"description", "text", NULL};
	static const char *const show[] = {"NAME", "COMMENT", "DISPLAY_NAME", "LOGIN_NAME",
					   "EMAIL", "TYPE", "DISABLED", "MUST_CHANGE_PASSWORD",
					   "DEFAULT_WAREHOUSE", "DEFAULT_NAMESPACE",
					   "DEFAULT_ROLE", "RSA_PUBLIC_KEY", "RSA_PUBLIC_KEY_FP",
					   "RSA_PUBLIC_KEY_2", "RSA_PUBLIC_KEY_2_FP", NULL};
	char *name = NULL;
	json_t *u;
	int rc;

	if ((rc = ident(p, &name)) < 0 || (rc = end_of(p)) < 0)
		goto done;
	if (!(u = json_object_get(section(p->cat, "users"), name))) {
		rc = missing(p, "User", &name, 1);
		goto done;
	}
	cols(p, c);
	for (size_t i = 0; show[i]; i++) {
		json_t *v;
		size_t n = strlen(show[i]);
		if (n > 3 && strcmp(show[i] + n - 3, "_FP") == 0) {
			char *key = lower(show[i]);
			char *fp;
			key[n - 3] = '\0';
			fp = tp_json_get_str(u, key) ? fk_key_fingerprint(tp_json_get_str(u, key))
						     : NULL;
			v = fp ? json_string(fp) : json_null();
			free(fp);
			free(key);
		} else {
			char *key = lower(show[i]);
			v = jstr(u, key);
			free(key);
		}
		json_array_append_new(p->out->rows, json_pack("[s,o,n,s]", show[i], v, ""));
	}
done:
	free(name);
	return rc;
}

/* ---------------------------------------------------------------- views and tables */

/* The grants a new object of `type` (TABLE, VIEW) inside db.schema inherits from future
 * grants: the schema's when it has any for the type, else the database's. */
static void apply_future_grants(P *p, const char *type, char *const *parts)
{
	json_t *fg = section(p->cat, "future_grants"), *g;
	char *schema = canon_path(parts, 2), *db = canon_path(parts, 1);
	char *obj = canon_path(parts, 3);
	bool schema_level = false;
	size_t i;
	json_array_foreach(fg, i, g)
		if (strcmp(tp_json_get_str(g, "grant_on"), type) == 0 &&
		    strcmp(tp_json_get_str(g, "scope"), schema) == 0)
			schema_level = true;
	json_array_foreach(fg, i, g) {
		const char *scope = tp_json_get_str(g, "scope");
		if (strcmp(tp_json_get_str(g, "grant_on"), type) != 0 ||
		    strcmp(scope, schema_level ? schema : db) != 0 ||
		    strcmp(tp_json_get_str(g, "scope_type"), schema_level ? "SCHEMA" : "DATABASE"))
			continue;
		json_array_append_new(
			section(p->cat, "grants"),
			json_pack("{s:s,s:s,s:s,s:s,s:O,s:s,s:I}", "privilege",
				  tp_json_get_str(g, "privilege"), "granted_on", type, "name", obj,
				  "grantee", tp_json_get_str(g, "grantee"), "grant_option",
				  json_object_get(g, "grant_option"), "granted_by", p->ctx->role,
				  "created_on", (json_int_t)p->ctx->now_ms));
	}
	free(schema);
	free(db);
	free(obj);
}

static int create_view(P *p, bool replace, bool secure)
{
	bool if_not = kws(p, "IF NOT EXISTS");
	name_t n = {0};
	json_t *schema, *views, *obj = NULL;
	bool copy_grants;
	int rc;

	if ((rc = name_path(p, &n, 3)) < 0 || (rc = qualify(p, &n, 3, "CREATE VIEW")) < 0)
		goto done;
	copy_grants = kws(p, "COPY GRANTS");
	obj = new_object(p, n.parts[2]);
	json_object_set_new(obj, "is_secure", json_boolean(secure));
	if ((rc = props(p, obj, view_props, "VIEW", true)) < 0)
		goto done;
	if (!kw(p, "AS")) {
		rc = syntax(p);
		goto done;
	}
	if (!is_kw(cur(p), "SELECT") && !is_kw(cur(p), "WITH") &&
	    !(cur(p)->type == FK_PUNCT && cur(p)->text[0] == '(')) {
		rc = syntax(p);
		goto done;
	}
	json_object_set_new(obj, "text", json_string(p->sql));
	if (!find_db(p, n.parts[0])) {
		rc = missing(p, "Database", n.parts, 1);
		goto done;
	}
	if (!(schema = find_schema(p, n.parts[0], n.parts[1]))) {
		rc = missing(p, "Schema", n.parts, 2);
		goto done;
	}
	views = json_object_get(schema, "views");
	if ((json_object_get(views, n.parts[2]) ||
	     json_object_get(json_object_get(schema, "tables"), n.parts[2])) && !replace) {
		if (if_not) {
			status_row(p, "%s already exists, statement succeeded.", n.parts[2]);
			goto done;
		}
		rc = exists_err(p, n.parts, 3);
		goto done;
	}
	if (json_object_get(views, n.parts[2]) && !copy_grants) {
		char *c = canon_path(n.parts, 3);
		drop_grants_on(p, c, false);
		free(c);
	}
	if (!json_object_get(views, n.parts[2]))
		apply_future_grants(p, "VIEW", n.parts);
	json_object_set(views, n.parts[2], obj);
	p->out->write = true;
	status_row(p, "View %s successfully created.", n.parts[2]);
done:
	json_decref(obj);
	name_free(&n);
	return rc;
}

static int alter_view(P *p)
{
	bool if_exists = kws(p, "IF EXISTS");
	name_t n = {0};
	json_t *v;
	int rc;

	if ((rc = name_path(p, &n, 3)) < 0 || (rc = qualify(p, &n, 3, "ALTER VIEW")) < 0)
		goto done;
	v = json_object_get(json_object_get(find_schema(p, n.parts[0], n.parts[1]), "views"),
			    n.parts[2]);
	if (!v) {
		if (if_exists) {
			status_row(p, "Statement executed successfully.");
			goto done;
		}
		rc = missing(p, "View", n.parts, 3);
		goto done;
	}
	if (kws(p, "SET SECURE"))
		json_object_set_new(v, "is_secure", json_true());
	else if (kws(p, "UNSET SECURE"))
		json_object_set_new(v, "is_secure", json_false());
	else if (kw(p, "SET"))
		rc = props(p, v, view_props, "VIEW", false);
	else if (kw(p, "UNSET"))
		rc = unset(p, v, view_props, NULL, "VIEW");
	else
		rc = syntax(p);
	if (rc == 0)
		rc = end_of(p);
	if (rc == 0) {
		p->out->write = true;
		status_row(p, "Statement executed successfully.");
	}
done:
	name_free(&n);
	return rc;
}

static int show_views(P *p)
{
	static const char *const c[] = {
		"created_on", "timestamp_ltz", "name", "text", "reserved", "text",
		"database_name", "text", "schema_name", "text", "owner", "text", "comment",
		"text", "text", "text", "is_secure", "text", "is_materialized", "text",
		"owner_role_type", "text", "change_tracking", "text", NULL};
	char *pattern = NULL;
	name_t n = {0};
	json_t *dbs = section(p->cat, "databases");
	int rc;
	const char *dk;
	json_t *dv;

	if ((rc = like_clause(p, &pattern)) < 0)
		goto done;
	if (kw(p, "IN")) {
		if (kw(p, "ACCOUNT")) {
			n.n = 0;
		} else if (kw(p, "DATABASE")) {
			if ((rc = name_path(p, &n, 1)) < 0)
				goto done;
		} else {
			kw(p, "SCHEMA");
			if ((rc = name_path(p, &n, 2)) < 0 ||
			    (rc = qualify(p, &n, 2, "SHOW VIEWS")) < 0)
				goto done;
		}
	} else if ((rc = qualify(p, &n, 2, "SHOW VIEWS")) < 0) {
		goto done;
	}
	if ((rc = end_of(p)) < 0)
		goto done;
	if (n.n >= 1 && !find_db(p, n.parts[0])) {
		rc = missing(p, "Database", n.parts, 1);
		goto done;
	}
	if (n.n == 2 && !find_schema(p, n.parts[0], n.parts[1])) {
		rc = missing(p, "Schema", n.parts, 2);
		goto done;
	}
	cols(p, c);
	json_object_foreach(dbs, dk, dv) {
		const char *sk;
		json_t *sv;
		if (n.n >= 1 && strcmp(dk, n.parts[0]) != 0)
			continue;
		json_object_foreach(json_object_get(dv, "schemas"), sk, sv) {
			json_t *views = json_object_get(sv, "views");
			json_t *names;
			size_t i;
			json_t *nv;
			if (n.n == 2 && strcmp(sk, n.parts[1]) != 0)
				continue;
			names = names_like(views, pattern);
			json_array_foreach(names, i, nv) {
				json_t *v = json_object_get(views, json_string_value(nv));
				json_array_append_new(
					p->out->rows,
					json_pack("[o,s,s,s,s,o,s,o,o,s,s,s]", jts(v, "created_on"),
						  json_string_value(nv), "", dk, sk, jstr(v, "owner"),
						  tp_json_get_str(v, "comment")
							  ? tp_json_get_str(v, "comment") : "",
						  jstr(v, "text"), jstr(v, "is_secure"), "false", "ROLE",
						  "OFF"));
			}
			json_decref(names);
		}
	}
done:
	name_free(&n);
	free(pattern);
	return rc;
}

static int create_table(P *p, bool replace)
{
	bool if_not = kws(p, "IF NOT EXISTS");
	name_t n = {0};
	json_t *schema, *tables;
	int depth = 0, rc;

	if ((rc = name_path(p, &n, 3)) < 0 || (rc = qualify(p, &n, 3, "CREATE TABLE")) < 0)
		goto done;
	if (!punct(p, '(')) {
		rc = syntax(p);
		goto done;
	}
	for (depth = 1; depth > 0 && cur(p)->type != FK_EOF; p->i++) {
		if (cur(p)->type == FK_PUNCT && cur(p)->text[0] == '(')
			depth++;
		if (cur(p)->type == FK_PUNCT && cur(p)->text[0] == ')')
			depth--;
	}
	if (depth > 0 || (rc = end_of(p)) < 0) {
		rc = rc < 0 ? rc : syntax(p);
		goto done;
	}
	if (!(schema = find_schema(p, n.parts[0], n.parts[1]))) {
		rc = missing(p, "Schema", n.parts, 2);
		goto done;
	}
	tables = json_object_get(schema, "tables");
	if (json_object_get(tables, n.parts[2]) && !replace) {
		if (if_not) {
			status_row(p, "%s already exists, statement succeeded.", n.parts[2]);
			goto done;
		}
		rc = exists_err(p, n.parts, 3);
		goto done;
	}
	if (!json_object_get(tables, n.parts[2]))
		apply_future_grants(p, "TABLE", n.parts);
	json_object_set_new(tables, n.parts[2], new_object(p, n.parts[2]));
	p->out->write = true;
	status_row(p, "Table %s successfully created.", n.parts[2]);
done:
	name_free(&n);
	return rc;
}

/* ---------------------------------------------------------------- drop */

static int drop(P *p)
{
	static const char *const types[] = {"WAREHOUSE", "DATABASE", "SCHEMA", "ROLE", "USER",
					    "VIEW", "TABLE", NULL};
	const char *type = NULL;
	bool if_exists;
	name_t n = {0};
	json_t *container = NULL;
	const char *key = NULL;
	char *c = NULL;
	int rc = 0, parts = 1;

	for (size_t i = 0; types[i] && !type; i++)
		if (kw(p, types[i]))
			type = types[i];
	if (!type)
		return syntax(p);
	if_exists = kws(p, "IF EXISTS");
	if (strcmp(type, "SCHEMA") == 0)
		parts = 2;
	else if (strcmp(type, "VIEW") == 0 || strcmp(type, "TABLE") == 0)
		parts = 3;
	if ((rc = name_path(p, &n, parts)) < 0 ||
	    (rc = qualify(p, &n, parts, "DROP")) < 0)
		goto done;
	if (!kw(p, "CASCADE"))
		kw(p, "RESTRICT");
	if ((rc = end_of(p)) < 0)
		goto done;
	key = n.parts[n.n - 1];
	if (strcmp(type, "WAREHOUSE") == 0)
		container = section(p->cat, "warehouses");
	else if (strcmp(type, "DATABASE") == 0)
		container = section(p->cat, "databases");
	else if (strcmp(type, "ROLE") == 0)
		container = section(p->cat, "roles");
	else if (strcmp(type, "USER") == 0)
		container = section(p->cat, "users");
	else if (strcmp(type, "SCHEMA") == 0)
		container = json_object_get(find_db(p, n.parts[0]), "schemas");
	else
		container = json_object_get(find_schema(p, n.parts[0], n.parts[1]),
					    strcmp(type, "VIEW") == 0 ? "views" : "tables");
	if (!json_object_get(container, key)) {
		if (if_exists) {
			status_row(p, "Drop statement executed successfully (%s already dropped).",
				   key);
			goto done;
		}
		rc = missing(p, strcmp(type, "WAREHOUSE") == 0 ? "Warehouse"
				: strcmp(type, "DATABASE") == 0 ? "Database"
				: strcmp(type, "SCHEMA") == 0 ? "Schema"
				: strcmp(type, "ROLE") == 0 ? "Role"
				: strcmp(type, "USER") == 0 ? "User"
				: strcmp(type, "VIEW") == 0 ? "View" : "Table",
			     n.parts, n.n);
		goto done;
	}
	if (strcmp(type, "ROLE") == 0 && is_system_role(key)) {
		rc = fk_fail(p->e, "003001", "42501", "SQL access control error:\nInsufficient "
			     "privileges to operate on role '%s'", key);
		goto done;
	}
	c = canon_path(n.parts, n.n);
	drop_grants_on(p, c, strcmp(type, "DATABASE") == 0 || strcmp(type, "SCHEMA") == 0);
	if (strcmp(type, "ROLE") == 0 || strcmp(type, "USER") == 0) {
		json_t *rg = section(p->cat, "role_grants");
		const char *gtype = strcmp(type, "ROLE") == 0 ? "ROLE" : "USER";
		for (size_t i = json_array_size(rg); i-- > 0;) {
			json_t *g = json_array_get(rg, i);
			if ((strcmp(gtype, "ROLE") == 0 && strcmp(tp_json_get_str(g, "role"), key) ==
								   0) ||
			    (strcmp(tp_json_get_str(g, "granted_to"), gtype) == 0 &&
			     strcmp(tp_json_get_str(g, "grantee"), key) == 0))
				json_array_remove(rg, i);
		}
		if (strcmp(type, "ROLE") == 0) {
			const char *sk[] = {"grants", "future_grants"};
			for (int s = 0; s < 2; s++) {
				json_t *arr = section(p->cat, sk[s]);
				for (size_t i = json_array_size(arr); i-- > 0;)
					if (strcmp(tp_json_get_str(json_array_get(arr, i),
								   "grantee"), key) == 0)
						json_array_remove(arr, i);
			}
		}
	}
	json_object_del(container, key);
	p->out->write = true;
	status_row(p, "%s successfully dropped.", key);
done:
	free(c);
	name_free(&n);
	return rc;
}

/* ---------------------------------------------------------------- grants */

static const char *const priv_account[] = {
	"CREATE DATABASE", "CREATE WAREHOUSE", "CREATE ROLE", "CREATE USER", "CREATE INTEGRATION",
	"EXECUTE TASK", "MONITOR USAGE", "MONITOR EXECUTION", "MANAGE GRANTS",
	"IMPORT SHARE", "CREATE SHARE", "APPLY MASKING POLICY", NULL};
static const char *const priv_warehouse[] = {"USAGE", "OPERATE", "MONITOR", "MODIFY",
					      "APPLYBUDGET", NULL};
static const char *const priv_database[] = {"USAGE", "MONITOR", "CREATE SCHEMA", "MODIFY",
					     "CREATE DATABASE ROLE", "APPLYBUDGET", NULL};
static const char *const priv_schema[] = {
	"USAGE", "MONITOR", "MODIFY", "CREATE TABLE", "CREATE VIEW", "CREATE STAGE",
	"CREATE FILE FORMAT", "CREATE SEQUENCE", "CREATE FUNCTION", "CREATE PIPE",
	"CREATE STREAM", "CREATE TASK", "CREATE PROCEDURE", "CREATE MATERIALIZED VIEW",
	"CREATE EXTERNAL TABLE", "CREATE DYNAMIC TABLE", "ADD SEARCH OPTIMIZATION", NULL};
static const char *const priv_table[] = {"SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE",
					  "REFERENCES", "EVOLVE SCHEMA", "REBUILD", NULL};
static const char *const priv_view[] = {"SELECT", "REFERENCES", NULL};
static const char *const priv_simple[] = {"USAGE", "MONITOR", "MODIFY", NULL};

static const char *const *privs_for(const char *type)
{
	if (strcmp(type, "ACCOUNT") == 0)
		return priv_account;
	if (strcmp(type, "WAREHOUSE") == 0)
		return priv_warehouse;
	if (strcmp(type, "DATABASE") == 0)
		return priv_database;
	if (strcmp(type, "SCHEMA") == 0)
		return priv_schema;
	if (strcmp(type, "TABLE") == 0)
		return priv_table;
	if (strcmp(type, "VIEW") == 0)
		return priv_view;
	return priv_simple;
}

static bool in_list(const char *const *l, const char *s)
{
	for (size_t i = 0; l[i]; i++)
		if (strcmp(l[i], s) == 0)
			return true;
	return false;
}

/* priv [words], priv ... up to ON: a list of upper-case privileges. */
static int privilege_list(P *p, json_t *out)
{
	for (;;) {
		tp_buf b;
		tp_buf_init(&b, 256);
		tp_buf_put(&b, "", 0);
		while (cur(p)->type == FK_WORD && !is_kw(cur(p), "ON")) {
			tp_buf_printf(&b, "%s%s", b.len ? " " : "", cur(p)->up);
			p->i++;
		}
		if (b.len == 0) {
			tp_buf_free(&b);
			return syntax(p);
		}
		json_array_append_new(out, json_string(tp_buf_cstr(&b)));
		tp_buf_free(&b);
		if (!punct(p, ','))
			return 0;
	}
}

static const struct {
	const char *singular, *plural;
} plurals[] = {
	{"TABLE", "TABLES"}, {"VIEW", "VIEWS"}, {"SCHEMA", "SCHEMAS"},
	{"MATERIALIZED VIEW", "MATERIALIZED VIEWS"}, {"EXTERNAL TABLE", "EXTERNAL TABLES"},
	{"DYNAMIC TABLE", "DYNAMIC TABLES"}, {"STAGE", "STAGES"}, {"FILE FORMAT", "FILE FORMATS"},
	{"SEQUENCE", "SEQUENCES"}, {"STREAM", "STREAMS"}, {"TASK", "TASKS"}, {"PIPE", "PIPES"},
	{"FUNCTION", "FUNCTIONS"}, {"PROCEDURE", "PROCEDURES"},
};

/* An object type of one or two words (singular, or plural when `plural`). */
static const char *object_type(P *p, bool plural)
{
	static const char *const singles[] = {"ACCOUNT", "WAREHOUSE", "DATABASE", "SCHEMA",
					      "TABLE", "VIEW", "USER", "INTEGRATION", "STAGE",
					      "SEQUENCE", "STREAM", "TASK", "PIPE", NULL};
	char two[64];
	fk_tok *a = cur(p), *b = ahead(p, 1);
	if (a->type != FK_WORD)
		return NULL;
	if (b->type == FK_WORD) {
		snprintf(two, sizeof(two), "%s %s", a->up, b->up);
		for (size_t i = 0; i < sizeof(plurals) / sizeof(plurals[0]); i++) {
			const char *w = plural ? plurals[i].plural : plurals[i].singular;
			if (strcmp(two, w) == 0) {
				p->i += 2;
				return w;
			}
		}
		if (!plural && strcmp(two, "RESOURCE MONITOR") == 0) {
			p->i += 2;
			return "RESOURCE MONITOR";
		}
	}
	if (plural) {
		for (size_t i = 0; i < sizeof(plurals) / sizeof(plurals[0]); i++)
			if (strcmp(a->up, plurals[i].plural) == 0) {
				p->i++;
				return plurals[i].plural;
			}
		return NULL;
	}
	for (size_t i = 0; singles[i]; i++)
		if (strcmp(a->up, singles[i]) == 0) {
			p->i++;
			return singles[i];
		}
	return NULL;
}

static const char *singular_of(const char *plural)
{
	for (size_t i = 0; i < sizeof(plurals) / sizeof(plurals[0]); i++)
		if (strcmp(plurals[i].plural, plural) == 0)
			return plurals[i].singular;
	return plural;
}

/* Whether the named object exists; its canonical path in *path. */
static int object_exists(P *p, const char *type, name_t *n, char **path)
{
	json_t *obj = NULL;
	int parts = strcmp(type, "SCHEMA") == 0 ? 2
		    : (strcmp(type, "TABLE") == 0 || strcmp(type, "VIEW") == 0) ? 3 : 1;
	if (qualify(p, n, parts, "GRANT") < 0)
		return -1;
	if (strcmp(type, "WAREHOUSE") == 0)
		obj = json_object_get(section(p->cat, "warehouses"), n->parts[0]);
	else if (strcmp(type, "DATABASE") == 0)
		obj = find_db(p, n->parts[0]);
	else if (strcmp(type, "USER") == 0)
		obj = json_object_get(section(p->cat, "users"), n->parts[0]);
	else if (strcmp(type, "SCHEMA") == 0)
		obj = find_schema(p, n->parts[0], n->parts[1]);
	else if (strcmp(type, "TABLE") == 0 || strcmp(type, "VIEW") == 0)
		obj = json_object_get(json_object_get(find_schema(p, n->parts[0], n->parts[1]),
						      strcmp(type, "VIEW") == 0 ? "views"
										: "tables"),
				      n->parts[2]);
	else
		obj = json_true(); /* integrations, monitors...: not modelled, taken as existing */
	if (!obj) {
		char t[32];
		snprintf(t, sizeof(t), "%c%s", type[0], type + 1);
		for (char *q = t + 1; *q; q++)
			*q = (char)tolower((unsigned char)*q);
		return missing(p, t, n->parts, n->n);
	}
	*path = canon_path(n->parts, n->n);
	return 0;
}

static void grant_one(P *p, const char *priv, const char *type, const char *path,
		      const char *role, bool option)
{
	json_t *grants = section(p->cat, "grants"), *g;
	size_t i;
	json_array_foreach(grants, i, g)
		if (strcmp(tp_json_get_str(g, "privilege"), priv) == 0 &&
		    strcmp(tp_json_get_str(g, "granted_on"), type) == 0 &&
		    strcmp(tp_json_get_str(g, "name"), path) == 0 &&
		    strcmp(tp_json_get_str(g, "grantee"), role) == 0) {
			if (option)
				json_object_set_new(g, "grant_option", json_true());
			return;
		}
	json_array_append_new(grants, json_pack("{s:s,s:s,s:s,s:s,s:b,s:s,s:I}", "privilege",
						priv, "granted_on", type, "name", path, "grantee",
						role, "grant_option", option, "granted_by",
						p->ctx->role, "created_on",
						(json_int_t)p->ctx->now_ms));
}

static void revoke_one(P *p, const char *priv, const char *type, const char *path,
		       const char *role, bool option_only)
{
	json_t *grants = section(p->cat, "grants");
	for (size_t i = json_array_size(grants); i-- > 0;) {
		json_t *g = json_array_get(grants, i);
		if (strcmp(tp_json_get_str(g, "privilege"), priv) != 0 ||
		    strcmp(tp_json_get_str(g, "granted_on"), type) != 0 ||
		    strcmp(tp_json_get_str(g, "name"), path) != 0 ||
		    strcmp(tp_json_get_str(g, "grantee"), role) != 0)
			continue;
		if (option_only)
			json_object_set_new(g, "grant_option", json_false());
		else
			json_array_remove(grants, i);
	}
}

/* Names of the objects of `type` inside a container (for ON ALL). */
static json_t *objects_in(P *p, const char *type, const char *scope_type, char *const *parts)
{
	json_t *out = json_array();
	json_t *db = find_db(p, parts[0]);
	const char *sk;
	json_t *sv;
	json_object_foreach(json_object_get(db, "schemas"), sk, sv) {
		const char *ok;
		json_t *ov;
		char *three[3] = {parts[0], (char *)(uintptr_t)sk, NULL};
		if (strcmp(scope_type, "SCHEMA") == 0 && strcmp(sk, parts[1]) != 0)
			continue;
		if (strcmp(type, "SCHEMA") == 0) {
			char *c = canon_path(three, 2);
			json_array_append_new(out, json_string(c));
			free(c);
			continue;
		}
		json_object_foreach(json_object_get(sv, strcmp(type, "VIEW") == 0 ? "views"
										  : "tables"),
				    ok, ov) {
			char *c;
			three[2] = (char *)(uintptr_t)ok;
			c = canon_path(three, 3);
			json_array_append_new(out, json_string(c));
			free(c);
		}
	}
	return out;
}

static int grant_or_revoke(P *p, bool grant)
{
	json_t *privs = json_array(), *expanded = json_array();
	bool option_only = false, option = false, all = false, future = false;
	const char *type = NULL, *scope_type = NULL;
	name_t n = {0};
	char *role = NULL, *path = NULL;
	const char *const *allowed;
	size_t i;
	json_t *pv;
	int rc = 0;

	if (!grant)
		option_only = kws(p, "GRANT OPTION FOR");
	if ((rc = privilege_list(p, privs)) < 0)
		goto done;
	if (!kw(p, "ON")) {
		rc = syntax(p);
		goto done;
	}
	if (kw(p, "ALL"))
		all = true;
	else if (kw(p, "FUTURE"))
		future = true;
	if (!(type = object_type(p, all || future))) {
		rc = syntax(p);
		goto done;
	}
	if (all || future) {
		type = singular_of(type);
		if (!kw(p, "IN")) {
			rc = syntax(p);
			goto done;
		}
		if (kw(p, "SCHEMA"))
			scope_type = "SCHEMA";
		else if (kw(p, "DATABASE"))
			scope_type = "DATABASE";
		else {
			rc = syntax(p);
			goto done;
		}
		if ((rc = name_path(p, &n, strcmp(scope_type, "SCHEMA") == 0 ? 2 : 1)) < 0 ||
		    (rc = object_exists(p, scope_type, &n, &path)) < 0)
			goto done;
	} else if (strcmp(type, "ACCOUNT") != 0) {
		if ((rc = name_path(p, &n, 3)) < 0 || (rc = object_exists(p, type, &n, &path)) < 0)
			goto done;
	} else {
		path = tp_strdup("");
	}
	if (!kw(p, grant ? "TO" : "FROM")) {
		rc = syntax(p);
		goto done;
	}
	kw(p, "ROLE");
	if ((rc = ident(p, &role)) < 0)
		goto done;
	if (grant && kws(p, "WITH GRANT OPTION"))
		option = true;
	if (!grant && !kw(p, "CASCADE"))
		kw(p, "RESTRICT");
	if ((rc = end_of(p)) < 0)
		goto done;
	if (!json_object_get(section(p->cat, "roles"), role)) {
		rc = missing(p, "Role", &role, 1);
		goto done;
	}
	allowed = privs_for(type);
	json_array_foreach(privs, i, pv) {
		const char *pr = json_string_value(pv);
		if (strcmp(pr, "ALL") == 0 || strcmp(pr, "ALL PRIVILEGES") == 0) {
			for (size_t k = 0; allowed[k]; k++)
				json_array_append_new(expanded, json_string(allowed[k]));
		} else if (strcmp(pr, "IMPORTED PRIVILEGES") == 0 &&
			   strcmp(type, "DATABASE") == 0) {
			json_array_append_new(expanded, json_string("USAGE"));
		} else if (strcmp(pr, "OWNERSHIP") == 0) {
			rc = fk_fail(p->e, "003011", "42501", "SQL compilation error:\nOWNERSHIP "
				     "is transferred with GRANT OWNERSHIP ... COPY|REVOKE CURRENT "
				     "GRANTS.");
			goto done;
		} else if (!in_list(allowed, pr)) {
			rc = fk_fail(p->e, "003011", "42501", "SQL compilation error:\nInvalid "
				     "privilege %s on %s.", pr, type);
			goto done;
		} else {
			json_array_append(expanded, pv);
		}
	}
	json_array_foreach(expanded, i, pv) {
		const char *pr = json_string_value(pv);
		if (future) {
			json_t *fg = section(p->cat, "future_grants");
			bool found = false;
			for (size_t k = json_array_size(fg); k-- > 0;) {
				json_t *g = json_array_get(fg, k);
				if (strcmp(tp_json_get_str(g, "privilege"), pr) ||
				    strcmp(tp_json_get_str(g, "grant_on"), type) ||
				    strcmp(tp_json_get_str(g, "scope"), path) ||
				    strcmp(tp_json_get_str(g, "grantee"), role))
					continue;
				found = true;
				if (!grant && !option_only)
					json_array_remove(fg, k);
				else
					json_object_set_new(g, "grant_option",
							    json_boolean(grant && option));
			}
			if (grant && !found)
				json_array_append_new(
					fg, json_pack("{s:s,s:s,s:s,s:s,s:s,s:b,s:I}", "privilege",
						      pr, "grant_on", type, "scope_type", scope_type,
						      "scope", path, "grantee", role, "grant_option",
						      option, "created_on",
						      (json_int_t)p->ctx->now_ms));
		} else if (all) {
			json_t *objs = objects_in(p, type, scope_type, n.parts);
			size_t k;
			json_t *ov;
			json_array_foreach(objs, k, ov) {
				if (grant)
					grant_one(p, pr, type, json_string_value(ov), role, option);
				else
					revoke_one(p, pr, type, json_string_value(ov), role,
						   option_only);
			}
			json_decref(objs);
		} else if (grant) {
			grant_one(p, pr, type, path, role, option);
		} else {
			revoke_one(p, pr, type, path, role, option_only);
		}
	}
	p->out->write = true;
	status_row(p, "Statement executed successfully.");
done:
	json_decref(privs);
	json_decref(expanded);
	name_free(&n);
	free(role);
	free(path);
	return rc;
}

/* GRANT ROLE r TO ROLE x | USER u; REVOKE ROLE r FROM ... */
static int role_grant(P *p, bool grant)
{
	char *role = NULL, *grantee = NULL;
	const char *to;
	json_t *rg = section(p->cat, "role_grants");
	int rc;

	if ((rc = ident(p, &role)) < 0)
		goto done;
	if (!kw(p, grant ? "TO" : "FROM")) {
		rc = syntax(p);
		goto done;
	}
	if (kw(p, "ROLE"))
		to = "ROLE";
	else if (kw(p, "USER"))
		to = "USER";
	else {
		rc = syntax(p);
		goto done;
	}
	if ((rc = ident(p, &grantee)) < 0 || (rc = end_of(p)) < 0)
		goto done;
	if (!json_object_get(section(p->cat, "roles"), role)) {
		rc = missing(p, "Role", &role, 1);
		goto done;
	}
	if (!json_object_get(section(p->cat, strcmp(to, "ROLE") == 0 ? "roles" : "users"),
			     grantee)) {
		rc = missing(p, strcmp(to, "ROLE") == 0 ? "Role" : "User", &grantee, 1);
		goto done;
	}
	if (grant && strcmp(to, "ROLE") == 0 && strcmp(role, grantee) == 0) {
		rc = fk_fail(p->e, "003013", "42601", "SQL compilation error:\nCannot grant role "
			     "'%s' to itself.", role);
		goto done;
	}
	for (size_t i = json_array_size(rg); i-- > 0;) {
		json_t *g = json_array_get(rg, i);
		if (strcmp(tp_json_get_str(g, "role"), role) == 0 &&
		    strcmp(tp_json_get_str(g, "granted_to"), to) == 0 &&
		    strcmp(tp_json_get_str(g, "grantee"), grantee) == 0) {
			if (!grant)
				json_array_remove(rg, i);
			goto ok;
		}
	}
	if (grant)
		json_array_append_new(rg, json_pack("{s:s,s:s,s:s,s:s,s:I}", "role", role,
						    "granted_to", to, "grantee", grantee,
						    "granted_by", p->ctx->role, "created_on",
						    (json_int_t)p->ctx->now_ms));
ok:
	p->out->write = true;
	status_row(p, "Statement executed successfully.");
done:
	free(role);
	free(grantee);
	return rc;
}

static void grant_row(P *p, json_t *rows, int64_t created, const char *priv, const char *on,
		      const char *name, const char *to, const char *grantee, bool option,
		      const char *by)
{
	char buf[48];
	(void)p;
	ts_str(buf, sizeof(buf), created);
	json_array_append_new(rows, json_pack("[s,s,s,s,s,s,s,s]", buf, priv, on, name, to,
					      grantee, option ? "true" : "false", by));
}

/* OWNERSHIP rows for every object `role` owns. */
static void ownership_rows(P *p, const char *role, json_t *rows)
{
	static const struct {
		const char *section, *type;
	} top[] = {{"warehouses", "WAREHOUSE"}, {"databases", "DATABASE"}, {"roles", "ROLE"},
		   {"users", "USER"}};
	for (size_t t = 0; t < sizeof(top) / sizeof(top[0]); t++) {
		const char *k;
		json_t *v;
		json_object_foreach(section(p->cat, top[t].section), k, v) {
			char *c;
			if (strcmp(tp_json_get_str(v, "owner") ? tp_json_get_str(v, "owner") : "",
				   role) != 0)
				continue;
			c = canon1(k);
			grant_row(p, rows, json_integer_value(json_object_get(v, "created_on")),
				  "OWNERSHIP", top[t].type, c, "ROLE", role, true, role);
			free(c);
		}
	}
	{
		const char *dk, *sk, *vk;
		json_t *dv, *sv, *vv;
		json_object_foreach(section(p->cat, "databases"), dk, dv) {
			json_object_foreach(json_object_get(dv, "schemas"), sk, sv) {
				char *parts[3] = {(char *)(uintptr_t)dk, (char *)(uintptr_t)sk, NULL};
				char *c;
				if (strcmp(tp_json_get_str(sv, "owner"), role) == 0) {
					c = canon_path(parts, 2);
					grant_row(p, rows, json_integer_value(json_object_get(
								   sv, "created_on")),
						  "OWNERSHIP", "SCHEMA", c, "ROLE", role, true, role);
					free(c);
				}
				json_object_foreach(json_object_get(sv, "views"), vk, vv) {
					if (strcmp(tp_json_get_str(vv, "owner"), role) != 0)
						continue;
					parts[2] = (char *)(uintptr_t)vk;
					c = canon_path(parts, 3);
					grant_row(p, rows, json_integer_value(json_object_get(
								   vv, "created_on")),
						  "OWNERSHIP", "VIEW", c, "ROLE", role, true, role);
					free(c);
				}
			}
		}
	}
}

static int show_grants(P *p)
{
	static const char *const c_to[] = {
		"created_on", "timestamp_ltz", "privilege", "text", "granted_on", "text", "name",
		"text", "granted_to", "text", "grantee_name", "text", "grant_option", "text",
		"granted_by", "text", NULL};
	static const char *const c_of[] = {"created_on", "timestamp_ltz", "role", "text",
					   "granted_to", "text", "grantee_name", "text",
					   "granted_by", "text", NULL};
	char *who = NULL;
	json_t *g;
	size_t i;
	int rc = 0;

	if (kws(p, "TO ROLE")) {
		if ((rc = ident(p, &who)) < 0 || (rc = end_of(p)) < 0)
			goto done;
		if (!json_object_get(section(p->cat, "roles"), who)) {
			rc = missing(p, "Role", &who, 1);
			goto done;
		}
		cols(p, c_to);
		ownership_rows(p, who, p->out->rows);
		json_array_foreach(section(p->cat, "grants"), i, g)
			if (strcmp(tp_json_get_str(g, "grantee"), who) == 0)
				grant_row(p, p->out->rows,
					  json_integer_value(json_object_get(g, "created_on")),
					  tp_json_get_str(g, "privilege"),
					  tp_json_get_str(g, "granted_on"), tp_json_get_str(g, "name"),
					  "ROLE", who, json_is_true(json_object_get(g, "grant_option")),
					  tp_json_get_str(g, "granted_by"));
		json_array_foreach(section(p->cat, "role_grants"), i, g) {
			char *c;
			if (strcmp(tp_json_get_str(g, "granted_to"), "ROLE") != 0 ||
			    strcmp(tp_json_get_str(g, "grantee"), who) != 0)
				continue;
			c = canon1(tp_json_get_str(g, "role"));
			grant_row(p, p->out->rows,
				  json_integer_value(json_object_get(g, "created_on")), "USAGE",
				  "ROLE", c, "ROLE", who, false, tp_json_get_str(g, "granted_by"));
			free(c);
		}
	} else if (kws(p, "OF ROLE")) {
		if ((rc = ident(p, &who)) < 0 || (rc = end_of(p)) < 0)
			goto done;
		if (!json_object_get(section(p->cat, "roles"), who)) {
			rc = missing(p, "Role", &who, 1);
			goto done;
		}
		cols(p, c_of);
		json_array_foreach(section(p->cat, "role_grants"), i, g) {
			char buf[48];
			if (strcmp(tp_json_get_str(g, "role"), who) != 0)
				continue;
			ts_str(buf, sizeof(buf),
			       json_integer_value(json_object_get(g, "created_on")));
			json_array_append_new(p->out->rows,
					      json_pack("[s,s,s,s,s]", buf, who,
							tp_json_get_str(g, "granted_to"),
							tp_json_get_str(g, "grantee"),
							tp_json_get_str(g, "granted_by")));
		}
	} else if (kws(p, "TO USER")) {
		if ((rc = ident(p, &who)) < 0 || (rc = end_of(p)) < 0)
			goto done;
		if (!json_object_get(section(p->cat, "users"), who)) {
			rc = missing(p, "User", &who, 1);
			goto done;
		}
		cols(p, c_of);
		json_array_foreach(section(p->cat, "role_grants"), i, g) {
			char buf[48];
			if (strcmp(tp_json_get_str(g, "granted_to"), "USER") != 0 ||
			    strcmp(tp_json_get_str(g, "grantee"), who) != 0)
				continue;
			ts_str(buf, sizeof(buf),
			       json_integer_value(json_object_get(g, "created_on")));
			json_array_append_new(p->out->rows,
					      json_pack("[s,s,s,s,s]", buf,
							tp_json_get_str(g, "role"), "USER", who,
							tp_json_get_str(g, "granted_by")));
		}
	} else if (kw(p, "ON")) {
		const char *type = object_type(p, false);
		name_t n = {0};
		char *path = NULL;
		if (!type) {
			rc = syntax(p);
			goto done;
		}
		if ((rc = name_path(p, &n, 3)) < 0 || (rc = end_of(p)) < 0 ||
		    (rc = object_exists(p, type, &n, &path)) < 0) {
			name_free(&n);
			goto done;
		}
		cols(p, c_to);
		json_array_foreach(section(p->cat, "grants"), i, g)
			if (strcmp(tp_json_get_str(g, "name"), path) == 0 &&
			    strcmp(tp_json_get_str(g, "granted_on"), type) == 0)
				grant_row(p, p->out->rows,
					  json_integer_value(json_object_get(g, "created_on")),
					  tp_json_get_str(g, "privilege"), type, path, "ROLE",
					  tp_json_get_str(g, "grantee"),
					  json_is_true(json_object_get(g, "grant_option")),
					  tp_json_get_str(g, "granted_by"));
		name_free(&n);
		free(path);
	} else {
		rc = syntax(p);
	}
done:
	free(who);
	return rc;
}

static int show_future_grants(P *p)
{
	static const char *const c[] = {"created_on", "timestamp_ltz", "privilege", "text",
					"grant_on", "text", "name", "text", "grant_to", "text",
					"grantee_name", "text", "grant_option", "text", NULL};
	const char *scope_type;
	name_t n = {0};
	char *path = NULL;
	json_t *g;
	size_t i;
	int rc;

	if (!kw(p, "IN"))
		return syntax(p);
	if (kw(p, "SCHEMA"))
		scope_type = "SCHEMA";
	else if (kw(p, "DATABASE"))
		scope_type = "DATABASE";
	else
		return syntax(p);
	if ((rc = name_path(p, &n, strcmp(scope_type, "SCHEMA") == 0 ? 2 : 1)) < 0 ||
	    (rc = end_of(p)) < 0 || (rc = object_exists(p, scope_type, &n, &path)) < 0)
		goto done;
	cols(p, c);
	json_array_foreach(section(p->cat, "future_grants"), i, g) {
		char buf[48];
		char *name;
		if (strcmp(tp_json_get_str(g, "scope"), path) != 0 ||
		    strcmp(tp_json_get_str(g, "scope_type"), scope_type) != 0)
			continue;
		ts_str(buf, sizeof(buf), json_integer_value(json_object_get(g, "created_on")));
		name = tp_sprintf("%s.<%s>", path, tp_json_get_str(g, "grant_on"));
		json_array_append_new(
			p->out->rows,
			json_pack("[s,s,s,s,s,s,s]", buf, tp_json_get_str(g, "privilege"),
				  tp_json_get_str(g, "grant_on"), name, "ROLE",
				  tp_json_get_str(g, "grantee"),
				  json_is_true(json_object_get(g, "grant_option")) ? "true"
										    : "false"));
		free(name);
	}
done:
	name_free(&n);
	free(path);
	return rc;
}

/* ---------------------------------------------------------------- SELECT (a few functions) */

static int select_stmt(P *p)
{
	fk_tok *t = cur(p);
	p->out->needs_warehouse = true;
	if (t->type == FK_WORD && strcmp(t->up, "SYSTEM$WAIT") == 0) {
		double amount;
		const char *unit = "SECONDS";
		char *label;
		p->i++;
		if (!punct(p, '(') || cur(p)->type != FK_NUMBER)
			return syntax(p);
		amount = strtod(cur(p)->text, NULL);
		p->i++;
		if (punct(p, ',')) {
			if (cur(p)->type != FK_STRING)
				return syntax(p);
			unit = cur(p)->text;
			p->i++;
		}
		if (strcasecmp(unit, "SECONDS") != 0 && strcasecmp(unit, "MILLISECONDS") != 0)
			return fk_fail(p->e, INVALID, "invalid time unit '%s'", unit);
		p->out->wait_ms = (int64_t)(amount * (strcasecmp(unit, "SECONDS") == 0 ? 1000 : 1));
		if (!punct(p, ')') || end_of(p) < 0)
			return p->e->code[0] ? -1 : syntax(p);
		label = tp_sprintf("waited %g %s", amount, unit);
		p->out->columns = json_pack("[[s,s]]", "SYSTEM$WAIT", "text");
		p->out->rows = json_pack("[[s]]", label);
		free(label);
		return 0;
	}
	if (t->type == FK_WORD && (strcmp(t->up, "CURRENT_ROLE") == 0 ||
				   strcmp(t->up, "CURRENT_USER") == 0 ||
				   strcmp(t->up, "CURRENT_WAREHOUSE") == 0)) {
		const char *v = strcmp(t->up, "CURRENT_ROLE") == 0   ? p->ctx->role
				: strcmp(t->up, "CURRENT_USER") == 0 ? p->ctx->user
								     : p->ctx->warehouse;
		char *label = tp_sprintf("%s()", t->up);
		p->i++;
		if (!punct(p, '(') || !punct(p, ')') || end_of(p) < 0) {
			free(label);
			return p->e->code[0] ? -1 : syntax(p);
		}
		p->out->columns = json_pack("[[s,s]]", label, "text");
		p->out->rows = json_pack("[[o]]", v ? json_string(v) : json_null());
		free(label);
		return 0;
	}
	if (t->type == FK_NUMBER) {
		p->i++;
		if (end_of(p) < 0)
			return -1;
		p->out->columns = json_pack("[[s,s]]", t->text, "fixed");
		p->out->rows = json_pack("[[s]]", t->text);
		return 0;
	}
	return fk_fail(p->e, "002003", "42S02", "SQL compilation error:\nthe fake runs only "
		       "SELECT SYSTEM$WAIT(n), CURRENT_ROLE(), CURRENT_USER(), "
		       "CURRENT_WAREHOUSE() and constants");
}

/* ---------------------------------------------------------------- dispatch */

void fk_result_clear(fk_result *r)
{
	if (!r)
		return;
	json_decref(r->columns);
	json_decref(r->rows);
	memset(r, 0, sizeof(*r));
}

int fk_exec(json_t *cat, const fk_ctx *ctx, const char *sql, fk_result *out, fk_error *e)
{
	P p = {.sql = sql, .e = e, .cat = cat, .ctx = ctx, .out = out};
	bool replace = false, transient = false, secure = false;
	int rc;

	memset(out, 0, sizeof(*out));
	memset(e, 0, sizeof(*e));
	if (fk_lex(&p.t, sql, strlen(sql), e) < 0)
		return -1;
	if (kw(&p, "CREATE")) {
		replace = kws(&p, "OR REPLACE");
		transient = kw(&p, "TRANSIENT");
		secure = kw(&p, "SECURE");
		kw(&p, "RECURSIVE");
		if (kw(&p, "WAREHOUSE") && !transient && !secure)
			rc = create_warehouse(&p, replace);
		else if (kw(&p, "DATABASE") && !secure)
			rc = create_database(&p, replace, transient);
		else if (kw(&p, "SCHEMA") && !secure)
			rc = create_schema(&p, replace, transient);
		else if (kw(&p, "ROLE") && !transient && !secure)
			rc = create_role(&p, replace);
		else if (kw(&p, "USER") && !transient && !secure)
			rc = create_user(&p, replace);
		else if (kw(&p, "VIEW") && !transient)
			rc = create_view(&p, replace, secure);
		else if (kw(&p, "TABLE") && !secure)
			rc = create_table(&p, replace);
		else
			rc = syntax(&p);
	} else if (kw(&p, "ALTER")) {
		if (kw(&p, "WAREHOUSE"))
			rc = alter_warehouse(&p);
		else if (kw(&p, "DATABASE"))
			rc = alter_container(&p, false);
		else if (kw(&p, "SCHEMA"))
			rc = alter_container(&p, true);
		else if (kw(&p, "ROLE"))
			rc = alter_role(&p);
		else if (kw(&p, "USER"))
			rc = alter_user(&p);
		else if (kw(&p, "VIEW"))
			rc = alter_view(&p);
		else if (kw(&p, "SESSION"))
			rc = fk_fail(e, "391911", "0A000", "Unsupported statement type 'ALTER "
				     "SESSION'.");
		else
			rc = syntax(&p);
	} else if (kw(&p, "DROP")) {
		rc = drop(&p);
	} else if (kw(&p, "GRANT")) {
		rc = is_kw(cur(&p), "ROLE") && (p.i++, true) ? role_grant(&p, true)
							      : grant_or_revoke(&p, true);
	} else if (kw(&p, "REVOKE")) {
		rc = is_kw(cur(&p), "ROLE") && (p.i++, true) ? role_grant(&p, false)
							      : grant_or_revoke(&p, false);
	} else if (kw(&p, "SHOW")) {
		kw(&p, "TERSE");
		if (kw(&p, "WAREHOUSES"))
			rc = show_warehouses(&p);
		else if (kw(&p, "DATABASES"))
			rc = show_databases(&p);
		else if (kw(&p, "SCHEMAS"))
			rc = show_schemas(&p);
		else if (kw(&p, "ROLES"))
			rc = show_roles(&p);
		else if (kw(&p, "USERS"))
			rc = show_users(&p);
		else if (kw(&p, "VIEWS"))
			rc = show_views(&p);
		else if (kw(&p, "GRANTS"))
			rc = show_grants(&p);
		else if (kws(&p, "FUTURE GRANTS"))
			rc = show_future_grants(&p);
		else
			rc = syntax(&p);
	} else if (kw(&p, "DESC") || kw(&p, "DESCRIBE")) {
		rc = kw(&p, "USER") ? describe_user(&p) : syntax(&p);
	} else if (kw(&p, "SELECT")) {
		rc = select_stmt(&p);
	} else if (is_kw(cur(&p), "USE") || is_kw(cur(&p), "BEGIN") || is_kw(cur(&p), "COMMIT") ||
		   is_kw(cur(&p), "ROLLBACK") || is_kw(cur(&p), "PUT") || is_kw(cur(&p), "GET") ||
		   is_kw(cur(&p), "SET")) {
		rc = fk_fail(e, "391911", "0A000", "Unsupported statement type '%s'.",
			     cur(&p)->up);
	} else {
		rc = syntax(&p);
	}
	fk_toks_free(&p.t);
	if (rc < 0)
		fk_result_clear(out);
	return rc;
}

/* ---------------------------------------------------------------- helpers for main.c */

json_t *fk_catalog_new(const char *user, const char *public_key_b64, const char *role,
		       const char *warehouse, int64_t now_ms)
{
	json_t *cat = json_pack("{s:o,s:o,s:o,s:o,s:o,s:o,s:o}", "warehouses", json_object(),
				"databases", json_object(), "roles", json_object(), "users",
				json_object(), "grants", json_array(), "role_grants", json_array(),
				"future_grants", json_array());
	json_t *roles = json_object_get(cat, "roles");
	json_t *u;
	for (size_t i = 0; system_roles[i]; i++)
		json_object_set_new(roles, system_roles[i],
				    json_pack("{s:s,s:s,s:I}", "name", system_roles[i], "owner", "",
					      "created_on", (json_int_t)now_ms));
	u = json_pack("{s:s,s:s,s:s,s:b,s:b,s:b,s:s,s:s,s:I}", "name", user, "login_name", user,
		      "display_name", user, "has_password", 0, "disabled", 0,
		      "must_change_password", 0, "type", "SERVICE", "owner", "ACCOUNTADMIN",
		      "created_on", (json_int_t)now_ms);
	if (public_key_b64)
		json_object_set_new(u, "rsa_public_key", json_string(public_key_b64));
	if (role) {
		if (!json_object_get(roles, role))
			json_object_set_new(roles, role,
					    json_pack("{s:s,s:s,s:I}", "name", role, "owner",
						      "ACCOUNTADMIN", "created_on",
						      (json_int_t)now_ms));
		json_object_set_new(u, "default_role", json_string(role));
		json_array_append_new(json_object_get(cat, "role_grants"),
				      json_pack("{s:s,s:s,s:s,s:s,s:I}", "role", role, "granted_to",
						"USER", "grantee", user, "granted_by",
						"ACCOUNTADMIN", "created_on", (json_int_t)now_ms));
	}
	if (warehouse) {
		json_t *w = warehouse_defaults();
		json_object_set_new(w, "name", json_string(warehouse));
		json_object_set_new(w, "owner", json_string("ACCOUNTADMIN"));
		json_object_set_new(w, "state", json_string("SUSPENDED"));
		json_object_set_new(w, "auto_suspend", json_integer(60));
		json_object_set_new(w, "created_on", json_integer(now_ms));
		json_object_set_new(w, "updated_on", json_integer(now_ms));
		json_object_set_new(json_object_get(cat, "warehouses"), warehouse, w);
		json_object_set_new(u, "default_warehouse", json_string(warehouse));
	}
	json_object_set_new(json_object_get(cat, "users"), user, u);
	return cat;
}

bool fk_role_granted(json_t *cat, const char *user, const char *role)
{
	json_t *g;
	size_t i;
	if (strcmp(role, "PUBLIC") == 0)
		return json_object_get(json_object_get(cat, "roles"), role) != NULL;
	json_array_foreach(json_object_get(cat, "role_grants"), i, g)
		if (strcmp(tp_json_get_str(g, "granted_to"), "USER") == 0 &&
		    strcmp(tp_json_get_str(g, "grantee"), user) == 0 &&
		    strcmp(tp_json_get_str(g, "role"), role) == 0)
			return true;
	return false;
}

int fk_warehouse_use(json_t *cat, const char *name, int64_t now_ms, fk_error *e)
{
	json_t *w = json_object_get(json_object_get(cat, "warehouses"), name);
	if (!w)
		return fk_fail(e, "000606", "57P03", "No active warehouse selected in the current "
			       "session.  Select an active warehouse with the 'use warehouse' "
			       "command.\n");
	if (strcmp(tp_json_get_str(w, "state"), "STARTED") == 0) {
		json_object_set_new(w, "last_used", json_integer(now_ms));
		return 0;
	}
	if (!json_is_true(json_object_get(w, "auto_resume")))
		return fk_fail(e, "000606", "57P03", "Warehouse '%s' is suspended and "
			       "AUTO_RESUME is FALSE.", name);
	json_object_set_new(w, "state", json_string("STARTED"));
	json_object_set_new(w, "resumed_on", json_integer(now_ms));
	json_object_set_new(w, "last_used", json_integer(now_ms));
	return 1;
}

char *fk_redact(const char *sql)
{
	fk_toks t;
	fk_error e;
	tp_buf b;
	size_t from = 0;
	if (fk_lex(&t, sql, strlen(sql), &e) < 0)
		return tp_strdup(sql);
	tp_buf_init(&b, 16 << 20);
	tp_buf_put(&b, "", 0);
	for (size_t i = 0; i + 2 < t.len; i++) {
		if (t.items[i].type == FK_WORD && strcmp(t.items[i].up, "PASSWORD") == 0 &&
		    t.items[i + 1].type == FK_PUNCT && t.items[i + 1].text[0] == '=' &&
		    t.items[i + 2].type == FK_STRING) {
			size_t start = t.items[i + 2].off;
			tp_buf_put(&b, sql + from, start - from);
			tp_buf_puts(&b, "'***'");
			from = t.items[i + 2].end;
		}
	}
	tp_buf_puts(&b, sql + from);
	fk_toks_free(&t);
	return tp_buf_detach(&b);
}
