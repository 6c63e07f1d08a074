/*
 * Runtime slots of the snowflake kinds that are named objects with a COMMENT: warehouses,
 * databases, schemas, roles, users and views. One table row per kind says how its spec maps
 * to SQL properties and to SHOW columns; the slots are shared.
 *
 * Observe runs one SHOW per kind and scope (SHOW WAREHOUSES; SHOW SCHEMAS IN DATABASE d;
 * SHOW VIEWS IN SCHEMA d.s), narrowed with LIKE when it looks for one object, and matches
 * names exactly itself (LIKE ignores case and treats _ and % as wildcards). SHOW is metadata
 * only: observing never runs on, or resumes, a warehouse. Ownership is a marker at the end of
 * the COMMENT ("<comment> [managed by tapestry:<pipeline>:<address>]"), stripped again when
 * observing so it never shows as drift; remove refuses objects without it. Writes go through
 * tp_sf_run, which batches concurrent resources into one multi-statement request.
 */
#include "snowflake_int.h"

#include "../../spec/spec.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MAX_SQL_FILE ((size_t)4 << 20)

typedef enum { SV_WORD, SV_INT, SV_BOOL, SV_STR, SV_IDENT, SV_PATH, SV_SECRET } sv_type;

typedef struct {
	const char *field; /* spec field */
	const char *prop;  /* SQL property */
	sv_type type;
	bool create_only;
} sf_prop;

typedef struct sf_kind sf_kind;
struct sf_kind {
	const char *kind;   /* "snowflake.warehouse" */
	const char *type;   /* "WAREHOUSE" */
	const char *plural; /* "WAREHOUSES" */
	int parts;          /* name parts: 1, 2 (schema in a database), 3 (view) */
	const sf_prop *props;
	const char *const *required; /* SHOW columns the kind cannot do without */
	void (*from_row)(const sf_kind *k, json_t *spec, const tp_sf_result *r, size_t row,
			 const tp_op *op);
};

/* ---------------------------------------------------------------- kind tables */

static const sf_prop warehouse_props[] = {
	{"warehouse_size", "WAREHOUSE_SIZE", SV_WORD, false},
	{"warehouse_type", "WAREHOUSE_TYPE", SV_STR, false},
	{"min_cluster_count", "MIN_CLUSTER_COUNT", SV_INT, false},
	{"max_cluster_count", "MAX_CLUSTER_COUNT", SV_INT, false},
	{"scaling_policy", "SCALING_POLICY", SV_WORD, false},
	{"auto_suspend", "AUTO_SUSPEND", SV_INT, false},
	{"auto_resume", "AUTO_RESUME", SV_BOOL, false},
	{"initially_suspended", "INITIALLY_SUSPENDED", SV_BOOL, true},
	{"resource_monitor", "RESOURCE_MONITOR", SV_IDENT, false},
	{NULL, NULL, 0, false},
};

static const sf_prop database_props[] = {
	{"data_retention_time_in_days", "DATA_RETENTION_TIME_IN_DAYS", SV_INT, false},
	{NULL, NULL, 0, false},
};

static const sf_prop no_props[] = {{NULL, NULL, 0, false}};

static const sf_prop user_props[] = {
	{"login_name", "LOGIN_NAME", SV_STR, false},
	{"display_name", "DISPLAY_NAME", SV_STR, false},
	{"email", "EMAIL", SV_STR, false},
	{"default_role", "DEFAULT_ROLE", SV_IDENT, false},
	{"default_warehouse", "DEFAULT_WAREHOUSE", SV_IDENT, false},
	{"default_namespace", "DEFAULT_NAMESPACE", SV_PATH, false},
	{"rsa_public_key", "RSA_PUBLIC_KEY", SV_STR, false},
	{"password", "PASSWORD", SV_SECRET, false},
	{"must_change_password", "MUST_CHANGE_PASSWORD", SV_BOOL, false},
	{"disabled", "DISABLED", SV_BOOL, false},
	{"type", "TYPE", SV_WORD, false},
	{NULL, NULL, 0, false},
};

static void warehouse_row(const sf_kind *k, json_t *spec, const tp_sf_result *r, size_t row,
			  const tp_op *op);
static void database_row(const sf_kind *k, json_t *spec, const tp_sf_result *r, size_t row,
			 const tp_op *op);
static void plain_row(const sf_kind *k, json_t *spec, const tp_sf_result *r, size_t row,
		      const tp_op *op);
static void user_row(const sf_kind *k, json_t *spec, const tp_sf_result *r, size_t row,
		     const tp_op *op);
static void view_row(const sf_kind *k, json_t *spec, const tp_sf_result *r, size_t row,
		     const tp_op *op);

static const char *const wh_cols[] = {"name", "comment", "size", "auto_suspend", "auto_resume",
				      NULL};
static const char *const db_cols[] = {"name", "comment", "retention_time", "options", NULL};
static const char *const plain_cols[] = {"name", "comment", NULL};
static const char *const user_cols[] = {"name", "comment", "login_name", "display_name",
					"email", "default_role", "default_warehouse",
					"default_namespace", "disabled", "must_change_password",
					"has_rsa_public_key", NULL};
static const char *const view_cols[] = {"name", "comment", "text", "is_secure", NULL};

static const sf_kind kinds[] = {
	{"snowflake.warehouse", "WAREHOUSE", "WAREHOUSES", 1, warehouse_props, wh_cols,
	 warehouse_row},
	{"snowflake.database", "DATABASE", "DATABASES", 1, database_props, db_cols, database_row},
	{"snowflake.schema", "SCHEMA", "SCHEMAS", 2, database_props, db_cols, database_row},
	{"snowflake.role", "ROLE", "ROLES", 1, no_props, plain_cols, plain_row},
	{"snowflake.user", "USER", "USERS", 1, user_props, user_cols, user_row},
	{"snowflake.view", "VIEW", "VIEWS", 3, no_props, view_cols, view_row},
};

static const sf_kind *kind_of(const char *address)
{
	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
		size_t n = strlen(kinds[i].kind);
		if (strncmp(address, kinds[i].kind, n) == 0 && address[n] == '/')
			return &kinds[i];
	}
	return NULL;
}

static const sf_kind *kind_named(const char *kind)
{
	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
		if (strcmp(kinds[i].kind, kind) == 0)
			return &kinds[i];
	return NULL;
}

/* ---------------------------------------------------------------- names */

typedef struct {
	char *canon[3];  /* canonical parts, outermost first */
	char *stored[3]; /* stored names */
	int n;
	char *fqn;       /* canonical path */
} sf_name;

static void name_free(sf_name *nm)
{
	for (int i = 0; i < nm->n; i++) {
		free(nm->canon[i]);
		free(nm->stored[i]);
	}
	free(nm->fqn);
	memset(nm, 0, sizeof(*nm));
}

/* The object's name from a spec: database.schema.name as the kind needs. */
static int name_of(sf_name *out, const sf_kind *k, const json_t *spec, const char *address)
{
	static const char *const fields3[] = {"database", "schema", "name"};
	static const char *const fields2[] = {"database", "name"};
	const char *const *fields = k->parts == 3 ? fields3 : k->parts == 2 ? fields2 : fields3 + 2;
	tp_buf b;
	memset(out, 0, sizeof(*out));
	tp_buf_init(&b, 1 << 16);
	tp_buf_put(&b, "", 0);
	for (int i = 0; i < k->parts; i++) {
		const char *v = tp_json_get_str(spec, fields[i]);
		tp_strlist parts = {0};
		if (!v || tp_sf_path_split(&parts, v) < 0 || parts.len != 1) {
			tp_strlist_free(&parts);
			tp_buf_free(&b);
			name_free(out);
			return tp_error_set(TP_EINVALID, "%s: %s is not a single identifier",
					    address, fields[i]);
		}
		out->stored[i] = tp_strdup(parts.items[0]);
		out->canon[i] = tp_sf_canon(parts.items[0]);
		out->n = i + 1;
		tp_buf_printf(&b, "%s%s", i ? "." : "", out->canon[i]);
		tp_strlist_free(&parts);
	}
	out->fqn = tp_buf_detach(&b);
	return 0;
}

/* "SHOW <plural> [LIKE 'x'] [IN DATABASE d | IN SCHEMA d.s]" for the name's scope. */
static char *show_sql(const sf_kind *k, const sf_name *nm, bool like)
{
	tp_buf b;
	tp_buf_init(&b, 1 << 16);
	tp_buf_printf(&b, "SHOW %s", k->plural);
	if (like)
		tp_sf_put_like(&b, nm->stored[nm->n - 1]);
	if (k->parts >= 2) {
		tp_buf_puts(&b, k->parts == 2 ? " IN DATABASE " : " IN SCHEMA ");
		for (int i = 0; i < k->parts - 1; i++) {
			if (i)
				tp_buf_putc(&b, '.');
			tp_sf_put_ident(&b, nm->stored[i]);
		}
	}
	return tp_buf_detach(&b);
}

static void put_name(tp_buf *b, const sf_name *nm)
{
	for (int i = 0; i < nm->n; i++) {
		if (i)
			tp_buf_putc(b, '.');
		tp_sf_put_ident(b, nm->stored[i]);
	}
}

/* ---------------------------------------------------------------- SHOW rows → spec */

static const char *cell(const tp_sf_result *r, size_t row, const char *col)
{
	return tp_sf_cell(r, row, tp_sf_result_col(r, col));
}

static void set_int(json_t *spec, const char *key, const char *v)
{
	char *end = NULL;
	long long n;
	if (!v || !*v || strcmp(v, "null") == 0)
		return;
	n = strtoll(v, &end, 10);
	if (end && !*end)
		json_object_set_new(spec, key, json_integer(n));
}

static void set_bool(json_t *spec, const char *key, const char *v)
{
	if (v && (strcasecmp(v, "true") == 0 || strcasecmp(v, "false") == 0))
		json_object_set_new(spec, key, json_boolean(strcasecmp(v, "true") == 0));
}

static void set_str(json_t *spec, const char *key, const char *v)
{
	if (v)
		json_object_set_new(spec, key, json_string(v));
}

/* A stored name from SHOW as the canonical identifier a spec holds. */
static void set_ident(json_t *spec, const char *key, const char *v)
{
	char *c;
	if (!v || !*v || strcmp(v, "null") == 0)
		return;
	c = tp_sf_canon(v);
	json_object_set_new(spec, key, json_string(c));
	free(c);
}

/* name and comment (without the marker) of every kind. */
static void common_row(json_t *spec, const tp_sf_result *r, size_t row, char **extra)
{
	char *user = NULL, *marker = NULL, *ex = NULL;
	set_ident(spec, "name", cell(r, row, "name"));
	tp_sf_comment_split(cell(r, row, "comment"), &user, &marker, &ex);
	json_object_set_new(spec, "comment", json_string(user));
	free(user);
	free(marker);
	if (extra)
		*extra = ex;
	else
		free(ex);
}

static void warehouse_row(const sf_kind *k, json_t *spec, const tp_sf_result *r, size_t row,
			  const tp_op *op)
{
	const char *rm = cell(r, row, "resource_monitor");
	const char *suspend = cell(r, row, "auto_suspend");
	(void)k;
	(void)op;
	common_row(spec, r, row, NULL);
	set_str(spec, "warehouse_size", cell(r, row, "size"));
	/* NULL and 0 both mean "never suspends" */
	if (!suspend || strcmp(suspend, "null") == 0)
		json_object_set_new(spec, "auto_suspend", json_integer(0));
	else
		set_int(spec, "auto_suspend", suspend);
	set_bool(spec, "auto_resume", cell(r, row, "auto_resume"));
	set_int(spec, "min_cluster_count", cell(r, row, "min_cluster_count"));
	set_int(spec, "max_cluster_count", cell(r, row, "max_cluster_count"));
	set_str(spec, "scaling_policy", cell(r, row, "scaling_policy"));
	set_str(spec, "warehouse_type", cell(r, row, "type"));
	set_ident(spec, "resource_monitor", rm);
}

static void database_row(const sf_kind *k, json_t *spec, const tp_sf_result *r, size_t row,
			 const tp_op *op)
{
	const char *options = cell(r, row, "options");
	(void)op;
	common_row(spec, r, row, NULL);
	set_int(spec, "data_retention_time_in_days", cell(r, row, "retention_time"));
	json_object_set_new(spec, "transient",
			    json_boolean(options && strstr(options, "TRANSIENT") != NULL));
	if (k->parts == 2) {
		set_ident(spec, "database", cell(r, row, "database_name"));
		json_object_set_new(spec, "managed_access",
				    json_boolean(options && strstr(options, "MANAGED ACCESS")));
	}
}

static void plain_row(const sf_kind *k, json_t *spec, const tp_sf_result *r, size_t row,
		      const tp_op *op)
{
	(void)k;
	(void)op;
	common_row(spec, r, row, NULL);
}

static void user_row(const sf_kind *k, json_t *spec, const tp_sf_result *r, size_t row,
		     const tp_op *op)
{
	const char *type = cell(r, row, "type");
	const char *has_key = cell(r, row, "has_rsa_public_key");
	const char *applied_key = tp_json_get_str(op->applied, "rsa_public_key");
	(void)k;
	common_row(spec, r, row, NULL);
	set_str(spec, "login_name", cell(r, row, "login_name"));
	set_str(spec, "display_name", cell(r, row, "display_name"));
	set_str(spec, "email", cell(r, row, "email"));
	set_ident(spec, "default_role", cell(r, row, "default_role"));
	set_ident(spec, "default_warehouse", cell(r, row, "default_warehouse"));
	if (cell(r, row, "default_namespace") && *cell(r, row, "default_namespace"))
		set_str(spec, "default_namespace", cell(r, row, "default_namespace"));
	set_bool(spec, "disabled", cell(r, row, "disabled"));
	set_bool(spec, "must_change_password", cell(r, row, "must_change_password"));
	if (type && *type && strcmp(type, "null") != 0)
		set_str(spec, "type", type);
	/* SHOW USERS says whether a key is set, not which: a key that is there is taken to be
	 * the one Tapestry set (DESC USER per user would cost one request per object); a key
	 * removed by hand shows as drift. The password is never readable: left out. */
	if (applied_key && has_key)
		json_object_set_new(spec, "rsa_public_key",
				    json_string(strcasecmp(has_key, "true") == 0 ? applied_key
										 : ""));
}

static void view_row(const sf_kind *k, json_t *spec, const tp_sf_result *r, size_t row,
		     const tp_op *op)
{
	const char *applied_sql = tp_json_get_str(op->applied, "sql");
	char *extra = NULL, *body = tp_sf_view_body(cell(r, row, "text") ? cell(r, row, "text")
									 : "");
	char live[17] = "";
	(void)k;
	common_row(spec, r, row, &extra);
	set_ident(spec, "database", cell(r, row, "database_name"));
	set_ident(spec, "schema", cell(r, row, "schema_name"));
	set_bool(spec, "secure", cell(r, row, "is_secure"));
	if (body)
		tp_sf_digest16(live, body);
	if (applied_sql) {
		const char *digest = "";
		char *path = tp_file_field_path(applied_sql, &digest);
		bool same = body && ((extra && strncmp(extra, "sql:", 4) == 0 &&
				      strcmp(extra + 4, live) == 0) ||
				     (digest[0] && strncmp(live, digest, strlen(digest)) == 0));
		if (same) {
			json_object_set_new(spec, "sql", json_string(applied_sql));
		} else {
			/* the query was changed outside Tapestry: a different value, so the
			 * view shows as drifted (and self_heal re-creates it) */
			char *v = tp_sprintf("%s@sha256:%s", path, body ? live : "(no query)");
			json_object_set_new(spec, "sql", json_string(v));
			free(v);
		}
		free(path);
	}
	free(extra);
	free(body);
}

/* ---------------------------------------------------------------- observe */

static const json_t *known_spec(const tp_op *op)
{
	return op->applied ? op->applied : op->spec;
}

/* Finds the row of a stored name (exact match). -1 when absent. */
static ssize_t find_row(const tp_sf_result *r, int namecol, const char *stored)
{
	for (size_t i = 0; i < tp_sf_result_rows(r); i++) {
		const char *v = tp_sf_cell(r, i, namecol);
		if (v && strcmp(v, stored) == 0)
			return (ssize_t)i;
	}
	return -1;
}

/* One SHOW for the scope of `nm` (LIKE when like): *r filled, or TP_ENOTFOUND when the scope
 * (database, schema) does not exist. */
static int show(tp_sf_session *s, tp_sf_result *r, const sf_kind *k, const sf_name *nm,
		bool like, int *idx)
{
	char *sql = show_sql(k, nm, like);
	int rc = tp_sf_query(s, r, sql);
	if (rc == 0 && (rc = tp_sf_result_cols(r, sql, k->required, idx)) < 0)
		tp_sf_result_clear(r);
	free(sql);
	return rc;
}

static int observe_kind(const sf_kind *k, tp_sf_session *s, const tp_op *ops, size_t n,
			json_t **out)
{
	sf_name *names = tp_calloc(n ? n : 1, sizeof(*names));
	bool *ok = tp_calloc(n ? n : 1, sizeof(*ok));
	bool *done = tp_calloc(n ? n : 1, sizeof(*done));
	int rc = 0;

	for (size_t i = 0; i < n; i++) {
		out[i] = NULL;
		ok[i] = name_of(&names[i], k, known_spec(&ops[i]), ops[i].address) == 0;
		done[i] = !ok[i];
	}
	for (size_t i = 0; i < n && rc == 0; i++) {
		tp_sf_result r = {0};
		size_t members = 0;
		int idx[16];
		int qrc;
		if (done[i])
			continue;
		/* the ops that share this one's scope (its database / schema) */
		for (size_t j = i; j < n; j++) {
			bool same = ok[j] && !done[j];
			for (int p = 0; same && p < k->parts - 1; p++)
				same = strcmp(names[i].stored[p], names[j].stored[p]) == 0;
			members += same;
		}
		qrc = show(s, &r, k, &names[i], members == 1, idx);
		if (qrc < 0 && qrc != TP_ENOTFOUND) {
			rc = qrc;
			break;
		}
		for (size_t j = i; j < n; j++) {
			bool same = ok[j] && !done[j];
			ssize_t row;
			for (int p = 0; same && p < k->parts - 1; p++)
				same = strcmp(names[i].stored[p], names[j].stored[p]) == 0;
			if (!same)
				continue;
			done[j] = true;
			if (qrc == TP_ENOTFOUND)
				continue; /* its database or schema is gone, so is it */
			row = find_row(&r, idx[0], names[j].stored[names[j].n - 1]);
			if (row < 0)
				continue;
			out[j] = json_object();
			k->from_row(k, out[j], &r, (size_t)row, &ops[j]);
			if (k->parts == 3) {
				/* SHOW VIEWS names the scope; SHOW SCHEMAS the database */
				set_ident(out[j], "database", names[j].stored[0]);
				set_ident(out[j], "schema", names[j].stored[1]);
			} else if (k->parts == 2) {
				set_ident(out[j], "database", names[j].stored[0]);
			}
		}
		tp_sf_result_clear(&r);
	}
	if (rc < 0)
		for (size_t i = 0; i < n; i++) {
			json_decref(out[i]);
			out[i] = NULL;
		}
	for (size_t i = 0; i < n; i++)
		name_free(&names[i]);
	free(names);
	free(ok);
	free(done);
	return rc;
}

#define OBSERVE(fn, kindname)                                                                  \
	int fn(void *s, const tp_op *ops, size_t n, json_t **out)                              \
	{                                                                                      \
		return observe_kind(kind_named(kindname), s, ops, n, out);                     \
	}

OBSERVE(tp_sf_warehouse_observe, "snowflake.warehouse")
OBSERVE(tp_sf_database_observe, "snowflake.database")
OBSERVE(tp_sf_schema_observe, "snowflake.schema")
OBSERVE(tp_sf_role_observe, "snowflake.role")
OBSERVE(tp_sf_user_observe, "snowflake.user")
OBSERVE(tp_sf_view_observe, "snowflake.view")

/* ---------------------------------------------------------------- statements */

/* Appends " PROP = value" for one spec value. */
static int put_prop(tp_buf *b, const sf_prop *p, const json_t *v, const char *address)
{
	tp_buf_printf(b, " %s = ", p->prop);
	switch (p->type) {
	case SV_INT:
		if (!json_is_integer(v))
			goto bad;
		tp_buf_printf(b, "%lld", (long long)json_integer_value(v));
		return 0;
	case SV_BOOL:
		if (!json_is_boolean(v))
			goto bad;
		tp_buf_puts(b, json_is_true(v) ? "TRUE" : "FALSE");
		return 0;
	case SV_WORD: {
		const char *s = json_string_value(v);
		if (!s || !*s)
			goto bad;
		for (const char *q = s; *q; q++)
			if (!((*q >= 'A' && *q <= 'Z') || (*q >= '0' && *q <= '9') || *q == '_'))
				goto literal; /* "SNOWPARK-OPTIMIZED" and the like */
		tp_buf_puts(b, s);
		return 0;
	literal:
		tp_sf_put_literal(b, s);
		return 0;
	}
	case SV_STR:
	case SV_SECRET:
		if (!json_is_string(v))
			goto bad;
		tp_sf_put_literal(b, json_string_value(v));
		return 0;
	case SV_IDENT:
	case SV_PATH:
		if (!json_is_string(v))
			goto bad;
		if (tp_sf_put_path(b, json_string_value(v)) < 0)
			return tp_error_set(TP_EINVALID, "%s: %s: %s", address, p->field,
					    tp_error_last());
		return 0;
	}
bad:
	return tp_error_set(TP_EINVALID, "%s: %s has an unexpected value", address, p->field);
}

/* The query of a view: the model file (its digest checked against the plan), references
 * interpolated, trailing ';' and blanks removed. */
static int view_query(char **out, const tp_op *op)
{
	const char *value = tp_json_get_str(op->spec, "sql");
	const char *digest = "";
	char *path = NULL, *text = NULL;
	tp_buf b;
	size_t n;
	int rc = 0;

	*out = NULL;
	tp_buf_init(&b, MAX_SQL_FILE);
	if (!value || !op->tree) {
		rc = tp_error_set(TP_EINVALID, "%s: no SQL file to read", op->address);
		goto done;
	}
	path = tp_file_field_path(value, &digest);
	if ((rc = op->tree->read(op->tree, &b, path, MAX_SQL_FILE)) < 0)
		goto done;
	if (digest[0]) {
		char d[17];
		tp_sf_digest16(d, tp_buf_cstr(&b));
		if (strncmp(d, digest, strlen(digest)) != 0) {
			rc = tp_error_set(TP_ECONFLICT, "%s: %s changed since the plan was made; "
					  "plan again", op->address, path);
			goto done;
		}
	}
	if (op->interpolate) {
		if ((rc = op->interpolate(op->interpolate_ctx, tp_buf_cstr(&b), &text)) < 0)
			goto done;
	} else {
		text = tp_strdup(tp_buf_cstr(&b));
	}
	n = strlen(text);
	while (n > 0 && (text[n - 1] == ';' || text[n - 1] == ' ' || text[n - 1] == '\n' ||
			 text[n - 1] == '\t' || text[n - 1] == '\r'))
		text[--n] = '\0';
	{
		size_t lead = strspn(text, " \t\r\n");
		memmove(text, text + lead, n - lead + 1);
	}
	if (!text[0]) {
		rc = tp_error_set(TP_EINVALID, "%s: %s holds no query", op->address, path);
		goto done;
	}
	*out = text;
	text = NULL;
done:
	tp_secret_free(text);
	free(path);
	tp_buf_free(&b);
	return rc;
}

/* The COMMENT a spec asks for, with the marker (and for a view, its query's digest). */
static char *comment_for(const sf_kind *k, const tp_op *op, const char *query)
{
	char extra[32];
	const char *c = tp_json_get_str(op->spec, "comment");
	if (k->parts == 3 && query) {
		char d[17];
		tp_sf_digest16(d, query);
		snprintf(extra, sizeof(extra), "sql:%s", d);
		return tp_sf_comment_compose(c, op->marker, extra);
	}
	return tp_sf_comment_compose(c, op->marker, NULL);
}

static int create_sql(tp_buf *b, const sf_kind *k, const tp_op *op, const sf_name *nm,
		      const char *query, bool replace)
{
	char *comment = comment_for(k, op, query);
	int rc = 0;

	if (k->parts == 3) {
		tp_buf_printf(b, "CREATE %s%sVIEW ", replace ? "OR REPLACE " : "",
			      json_is_true(json_object_get(op->spec, "secure")) ? "SECURE " : "");
		put_name(b, nm);
		if (replace)
			tp_buf_puts(b, " COPY GRANTS");
		tp_buf_puts(b, " COMMENT = ");
		tp_sf_put_literal(b, comment);
		/* the query on lines of its own: a trailing -- comment in it cannot swallow
		 * what follows */
		tp_buf_printf(b, " AS\n%s\n", query);
		goto done;
	}
	tp_buf_printf(b, "CREATE %s%s ",
		      json_is_true(json_object_get(op->spec, "transient")) ? "TRANSIENT " : "",
		      k->type);
	put_name(b, nm);
	if (k->parts == 2 && json_is_true(json_object_get(op->spec, "managed_access")))
		tp_buf_puts(b, " WITH MANAGED ACCESS");
	for (const sf_prop *p = k->props; p->field; p++) {
		const json_t *v = json_object_get(op->spec, p->field);
		if (v && !json_is_null(v) && (rc = put_prop(b, p, v, op->address)) < 0)
			goto done;
	}
	tp_buf_puts(b, " COMMENT = ");
	tp_sf_put_literal(b, comment);
done:
	free(comment);
	return rc;
}

/* ALTER statements that bring the object to op->spec whatever its live state (so they also
 * correct drift): every property set, those Tapestry set before and the spec dropped unset. */
static int update_sql(tp_strlist *out, const sf_kind *k, const tp_op *op, const sf_name *nm,
		      const char *query)
{
	char *comment = comment_for(k, op, query);
	tp_buf b, un;
	int rc = 0;

	tp_buf_init(&b, TP_BUF_DEFAULT_MAX);
	tp_buf_init(&un, 1 << 16);
	tp_buf_put(&un, "", 0);
	tp_buf_printf(&b, "ALTER %s ", k->type);
	put_name(&b, nm);
	tp_buf_puts(&b, " SET");
	for (const sf_prop *p = k->props; p->field; p++) {
		const json_t *v = json_object_get(op->spec, p->field);
		if (p->create_only)
			continue;
		if (v && !json_is_null(v)) {
			if ((rc = put_prop(&b, p, v, op->address)) < 0)
				goto done;
		} else if (json_object_get(op->applied, p->field)) {
			tp_buf_printf(&un, "%s%s", un.len ? ", " : "", p->prop);
		}
	}
	tp_buf_puts(&b, " COMMENT = ");
	tp_sf_put_literal(&b, comment);
	tp_strlist_push_owned(out, tp_buf_detach(&b));
	if (un.len) {
		tp_buf_printf(&b, "ALTER %s ", k->type);
		put_name(&b, nm);
		tp_buf_printf(&b, " UNSET %s", tp_buf_cstr(&un));
		tp_strlist_push_owned(out, tp_buf_detach(&b));
	}
	if (k->parts == 2 && json_object_get(op->spec, "managed_access")) {
		tp_buf_puts(&b, "ALTER SCHEMA ");
		put_name(&b, nm);
		tp_buf_puts(&b, json_is_true(json_object_get(op->spec, "managed_access"))
					? " ENABLE MANAGED ACCESS"
					: " DISABLE MANAGED ACCESS");
		tp_strlist_push_owned(out, tp_buf_detach(&b));
	}
	if (k->parts == 3 && json_object_get(op->spec, "secure")) {
		tp_buf_puts(&b, "ALTER VIEW ");
		put_name(&b, nm);
		tp_buf_puts(&b, json_is_true(json_object_get(op->spec, "secure")) ? " SET SECURE"
										  : " UNSET SECURE");
		tp_strlist_push_owned(out, tp_buf_detach(&b));
	}
done:
	tp_buf_free(&b);
	tp_buf_free(&un);
	free(comment);
	return rc;
}

static json_t *outputs_for(const sf_kind *k, const sf_name *nm)
{
	json_t *o = json_pack("{s:s}", "name", nm->canon[nm->n - 1]);
	if (k->parts >= 2) {
		json_object_set_new(o, "database", json_string(nm->canon[0]));
		json_object_set_new(o, "fqn", json_string(nm->fqn));
	}
	if (k->parts == 3)
		json_object_set_new(o, "schema", json_string(nm->canon[1]));
	return o;
}

/* The live row of one object: 1 found (*row set), 0 absent; the comment's marker in *marker
 * (new string or NULL). */
static int find_live(tp_sf_session *s, const sf_kind *k, const sf_name *nm, char **marker)
{
	tp_sf_result r = {0};
	int idx[16];
	ssize_t row;
	int rc;

	*marker = NULL;
	rc = show(s, &r, k, nm, true, idx);
	if (rc == TP_ENOTFOUND)
		return 0;
	if (rc < 0)
		return rc;
	row = find_row(&r, idx[0], nm->stored[nm->n - 1]);
	if (row >= 0) {
		char *user = NULL, *extra = NULL;
		tp_sf_comment_split(tp_sf_cell(&r, (size_t)row, idx[1]), &user, marker, &extra);
		free(user);
		free(extra);
	}
	tp_sf_result_clear(&r);
	return row >= 0 ? 1 : 0;
}

/* ---------------------------------------------------------------- slots */

/* Statements of a user may hold its password: overwritten before they are freed. */
static void stmts_free(tp_strlist *l)
{
	for (size_t i = 0; i < l->len; i++)
		explicit_bzero(l->items[i], strlen(l->items[i]));
	tp_strlist_free(l);
}

static int object_write(void *session, const tp_op *op, tp_op_result *out, bool creating)
{
	tp_sf_session *s = session;
	const sf_kind *k = kind_of(op->address);
	sf_name nm = {0};
	tp_strlist stmts = {0};
	tp_buf b;
	char *query = NULL, *marker = NULL;
	int rc;

	tp_buf_init(&b, TP_BUF_DEFAULT_MAX);
	if (!k)
		return tp_error_set(TP_EINVALID, "%s: not a snowflake object kind", op->address);
	if ((rc = name_of(&nm, k, op->spec, op->address)) < 0)
		goto done;
	if (k->parts == 3 && (rc = view_query(&query, op)) < 0)
		goto done;
	if (creating) {
		if ((rc = create_sql(&b, k, op, &nm, query, false)) < 0)
			goto done;
		tp_strlist_push_owned(&stmts, tp_buf_detach(&b));
		rc = tp_sf_run(s, &stmts, NULL);
		if (rc == TP_EEXISTS) {
			/* left by an interrupted create of ours (adopt it), or someone else's */
			char *why = tp_strdup(tp_error_last());
			int found = find_live(s, k, &nm, &marker);
			if (found < 0) {
				rc = found;
			} else if (found == 1 && marker && strcmp(marker, op->marker) == 0) {
				stmts_free(&stmts);
				if (k->parts == 3) {
					rc = create_sql(&b, k, op, &nm, query, true);
					if (rc == 0)
						tp_strlist_push_owned(&stmts, tp_buf_detach(&b));
				} else {
					rc = update_sql(&stmts, k, op, &nm, query);
				}
				if (rc == 0)
					rc = tp_sf_run(s, &stmts, NULL);
			} else {
				rc = tp_error_set(TP_EEXISTS, "%s: %s %s already exists and is not "
						  "managed by this pipeline (its comment has no "
						  "ownership marker [managed by %s]); Tapestry does "
						  "not take over objects it did not create (%s)",
						  op->address, k->type, nm.fqn, op->marker, why);
			}
			free(why);
		}
	} else {
		if ((rc = update_sql(&stmts, k, op, &nm, query)) < 0)
			goto done;
		rc = tp_sf_run(s, &stmts, NULL);
	}
	if (rc < 0) {
		char *m = tp_strdup(tp_error_last());
		rc = tp_error_wrap(rc, "%s: %s", op->address, m);
		free(m);
		goto done;
	}
	out->provider_id = tp_strdup(nm.fqn);
	out->outputs = outputs_for(k, &nm);
done:
	tp_secret_free(query);
	free(marker);
	if (b.ptr)
		explicit_bzero(b.ptr, b.len);
	tp_buf_free(&b);
	stmts_free(&stmts);
	name_free(&nm);
	return rc;
}

int tp_sf_object_create(void *s, const tp_op *op, tp_op_result *out)
{
	return object_write(s, op, out, true);
}

int tp_sf_object_update(void *s, const tp_op *op, tp_op_result *out)
{
	return object_write(s, op, out, false);
}

int tp_sf_object_remove(void *session, const tp_op *op)
{
	tp_sf_session *s = session;
	const sf_kind *k = kind_of(op->address);
	sf_name nm = {0};
	tp_strlist stmts = {0};
	char *marker = NULL;
	tp_buf b;
	int rc, found;

	if (!k)
		return tp_error_set(TP_EINVALID, "%s: not a snowflake object kind", op->address);
	if (!op->applied)
		return 0; /* nothing was ever applied: nothing to drop */
	if ((rc = name_of(&nm, k, op->applied, op->address)) < 0)
		return rc;
	found = find_live(s, k, &nm, &marker);
	if (found <= 0) {
		rc = found; /* 0: already gone */
		goto done;
	}
	if (!marker || strcmp(marker, op->marker) != 0) {
		rc = tp_error_set(TP_ECONFLICT, "%s: %s %s does not carry this pipeline's "
				  "ownership marker ([managed by %s] at the end of its comment); "
				  "not dropping it", op->address, k->type, nm.fqn, op->marker);
		goto done;
	}
	tp_buf_init(&b, 1 << 16);
	tp_buf_printf(&b, "DROP %s IF EXISTS ", k->type);
	put_name(&b, &nm);
	tp_strlist_push_owned(&stmts, tp_buf_detach(&b));
	rc = tp_sf_run(s, &stmts, NULL);
	if (rc == TP_ENOTFOUND)
		rc = 0; /* its database went first */
	if (rc < 0) {
		char *m = tp_strdup(tp_error_last());
		rc = tp_error_wrap(rc, "%s: %s", op->address, m);
		free(m);
	}
done:
	free(marker);
	tp_strlist_free(&stmts);
	name_free(&nm);
	return rc;
}

int tp_sf_object_adopt(void *session, const tp_op *op, tp_op_result *out)
{
	tp_sf_session *s = session;
	const sf_kind *k = kind_of(op->address);
	const json_t *spec = op->spec ? op->spec : op->applied;
	sf_name nm = {0};
	char *marker = NULL;
	int rc, found;

	if (!k || !spec)
		return tp_error_set(TP_ENOTFOUND, "%s: nothing to adopt", op->address);
	if ((rc = name_of(&nm, k, spec, op->address)) < 0)
		return rc;
	found = find_live(s, k, &nm, &marker);
	if (found < 0) {
		rc = found;
	} else if (found == 1 && marker && strcmp(marker, op->marker) == 0) {
		out->provider_id = tp_strdup(nm.fqn);
		out->outputs = outputs_for(k, &nm);
	} else {
		rc = tp_error_set(TP_ENOTFOUND, "%s: no %s %s with this pipeline's marker",
				  op->address, k->type, nm.fqn);
	}
	free(marker);
	name_free(&nm);
	return rc;
}
