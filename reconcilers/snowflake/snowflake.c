/*
 * The snowflake provider's schemas: the warehouse objects the pipeline lands data in and
 * models it with (warehouses, databases, schemas, roles, users, privilege and role grants,
 * and views built from the SQL files under models/). This is the declarative half of the
 * provider: the field schemas the spec loader enforces, the semantic checks it runs after
 * them, and the normalisation the diff applies before comparing. The SQL API code (key-pair
 * JWT, statements, SHOW-based observation) sits beside it.
 *
 * Identifiers follow Snowflake's rule everywhere: an unquoted identifier is stored upper-case,
 * a double-quoted one keeps its case ("" inside stands for one quote). The canonical form is
 * the unquoted upper-case spelling whenever one exists (raw, RAW and "RAW" are one object) and
 * the quoted spelling otherwise; the SQL layer quotes every identifier it writes.
 */
#include "snowflake_int.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define IDENT_MAX 255
#define BASE64_CHARS "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/="

/* ---------------------------------------------------------------- helpers */

static bool is_ident_start(char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || ch == '_';
}

static bool is_ident_char(char ch)
{
	return is_ident_start(ch) || (ch >= '0' && ch <= '9') || ch == '$';
}

static void upcase(char *s)
{
	for (; *s; s++)
		*s = (char)toupper((unsigned char)*s);
}

/* Length of the identifier part at the start of s: a quoted part runs through its closing
 * quote (a doubled "" does not close it), an unquoted one up to the next '.'. */
static size_t ident_span(const char *s)
{
	size_t i = 1;

	if (s[0] != '"')
		return strcspn(s, ".");
	while (s[i]) {
		if (s[i] == '"') {
			if (s[i + 1] != '"')
				return i + 1;
			i++;
		}
		i++;
	}
	return i; /* unterminated: the whole rest */
}

/* Why the identifier part s[0..n) is malformed, or NULL when it is well formed. */
static const char *ident_part_error(const char *s, size_t n)
{
	size_t len = 0;

	if (n == 0)
		return "an empty identifier";
	if (s[0] == '"') {
		if (n < 2 || s[n - 1] != '"')
			return "a quoted identifier without its closing quote";
		for (size_t i = 1; i < n - 1; i++, len++) {
			if (s[i] == '"') {
				if (i + 1 >= n - 1 || s[i + 1] != '"')
					return "a quote inside a quoted identifier that is not "
					       "doubled";
				i++;
			}
		}
		if (len == 0)
			return "an empty quoted identifier";
		if (len > IDENT_MAX)
			return "an identifier longer than 255 characters";
		return NULL;
	}
	if (n > IDENT_MAX)
		return "an identifier longer than 255 characters";
	if (!is_ident_start(s[0]))
		return "an unquoted identifier that does not start with a letter or '_' (double-"
		       "quote the name to keep it as written)";
	for (size_t i = 1; i < n; i++)
		if (!is_ident_char(s[i]))
			return "an unquoted identifier with characters other than letters, digits, "
			       "'_' and '$' (write '_' instead, or double-quote the name to keep "
			       "them)";
	return NULL;
}

/* Checks an identifier path of min..max dot-separated parts ("RAW", "RAW.SALESFORCE",
 * "RAW.SALESFORCE.\"Contact\""). References are not checked. */
static void check_ident_path(tp_check *c, const char *path, const char *s, int min, int max)
{
	const char *p = s;
	int parts = 0;

	if (!s || tp_kind_has_ref(s))
		return;
	for (;;) {
		size_t n = ident_span(p);
		const char *why = ident_part_error(p, n);
		if (why) {
			tp_check_error(c, path, "\"%s\" has %s", s, why);
			return;
		}
		parts++;
		p += n;
		if (*p == '\0')
			break;
		if (*p != '.') {
			tp_check_error(c, path, "\"%s\" has text after a closing quote; expected "
				       "'.' or the end", s);
			return;
		}
		p++;
	}
	if (parts < min || parts > max) {
		if (min == max && min == 1)
			tp_check_error(c, path, "\"%s\" must be a single identifier (quote a name "
				       "that contains '.')", s);
		else if (min == max)
			tp_check_error(c, path, "\"%s\" must be a name of %d dot-separated parts",
				       s, min);
		else
			tp_check_error(c, path, "\"%s\" must be a name of %d to %d dot-separated "
				       "parts", s, min, max);
	}
}

static void check_ident(tp_check *c, const char *path, const char *s)
{
	check_ident_path(c, path, s, 1, 1);
}

/* Appends the canonical form of the well-formed part s[0..n). */
static void ident_part_canon(tp_buf *b, const char *s, size_t n)
{
	bool plain = n > 2 && is_ident_start(s[1]) && !(s[1] >= 'a' && s[1] <= 'z');

	if (s[0] != '"') {
		for (size_t i = 0; i < n; i++)
			tp_buf_putc(b, (char)toupper((unsigned char)s[i]));
		return;
	}
	/* "RAW" is RAW: drop the quotes when the content is upper-case and would be a valid
	 * unquoted identifier. */
	for (size_t i = 1; plain && i < n - 1; i++)
		plain = is_ident_char(s[i]) && !(s[i] >= 'a' && s[i] <= 'z');
	if (plain)
		tp_buf_put(b, s + 1, n - 2);
	else
		tp_buf_put(b, s, n);
}

/* The canonical form of an identifier path, or NULL when s holds a reference or is malformed
 * (then it is left as written: the loader has reported it). Caller frees. */
static char *ident_canon(const char *s)
{
	tp_buf b;
	const char *p = s;

	if (tp_kind_has_ref(s))
		return NULL;
	tp_buf_init(&b, TP_BUF_DEFAULT_MAX);
	for (;;) {
		size_t n = ident_span(p);
		if (ident_part_error(p, n))
			goto fail;
		ident_part_canon(&b, p, n);
		p += n;
		if (*p == '\0')
			break;
		if (*p != '.')
			goto fail;
		tp_buf_putc(&b, '.');
		p++;
	}
	return tp_buf_detach(&b);
fail:
	tp_buf_free(&b);
	return NULL;
}

static void canon_ident_field(json_t *obj, const char *key)
{
	const char *s = tp_json_get_str(obj, key);
	char *canon = s ? ident_canon(s) : NULL;

	if (canon) {
		json_object_set_new(obj, key, json_string(canon));
		free(canon);
	}
}

/* Sets key to a new string value when it differs (keeps the string borrowed from the old
 * value alive until the new one is built). */
static void set_str(json_t *obj, const char *key, const char *value)
{
	const char *cur = tp_json_get_str(obj, key);
	if (!cur || strcmp(cur, value) != 0)
		json_object_set_new(obj, key, json_string(value));
}

/* Snowflake reads back an absent comment as "": the two are the same. */
static void drop_empty_comment(json_t *spec)
{
	tp_json_drop_empty(spec, "comment", TP_JSON_EMPTY_STRING);
}

/* Upper-cases a keyword phrase and collapses '_' and runs of blanks to single spaces
 * ("materialized_view" -> "MATERIALIZED VIEW"). Caller frees. */
static char *keyword_canon(const char *s)
{
	char *out = tp_malloc(strlen(s) + 1);
	size_t k = 0;
	bool gap = false;

	for (; *s; s++) {
		if (*s == '_' || isspace((unsigned char)*s)) {
			gap = k > 0;
			continue;
		}
		if (gap)
			out[k++] = ' ';
		gap = false;
		out[k++] = (char)toupper((unsigned char)*s);
	}
	out[k] = '\0';
	return out;
}

/* Shared by every named object. */
#define NAME_FIELD(what)                                                                      \
	{.name = "name", .type = TP_TYPE_STRING, .flags = TP_F_DEFAULT_NAME | TP_F_IMMUTABLE,   \
	 .doc = what " name (identifier; a rename replaces it); defaults to the resource name"}
#define COMMENT_FIELD                                                                         \
	{.name = "comment", .type = TP_TYPE_STRING,                                           \
	 .doc = "free-text comment; Tapestry appends its ownership marker when writing it"}

static const char *const name_outputs[] = {"name", NULL};
static const char *const no_outputs[] = {NULL};

/* ---------------------------------------------------------------- snowflake.warehouse */

/* Canonical sizes: the spelling CREATE WAREHOUSE documents. SHOW WAREHOUSES answers
 * "X-Small", "Large", "2X-Large", "4X-Large"...; both map to these. */
static const char *const warehouse_sizes[] = {
	"XSMALL", "SMALL", "MEDIUM", "LARGE", "XLARGE", "XXLARGE", "XXXLARGE", "X4LARGE",
	"X5LARGE", "X6LARGE", NULL,
};

static const struct {
	const char *alias;
	const char *canon;
} warehouse_size_aliases[] = {
	{"2XLARGE", "XXLARGE"}, {"X2LARGE", "XXLARGE"}, {"3XLARGE", "XXXLARGE"},
	{"X3LARGE", "XXXLARGE"}, {"4XLARGE", "X4LARGE"}, {"5XLARGE", "X5LARGE"},
	{"6XLARGE", "X6LARGE"},
};

/* The canonical spelling of a warehouse size in any of Snowflake's spellings and any case,
 * or NULL when it is none of them. */
static const char *warehouse_size_canon(const char *s)
{
	char key[16];
	size_t k = 0;

	for (; *s; s++) {
		if (*s == '-' || *s == '_' || *s == ' ')
			continue;
		if (k + 1 >= sizeof(key))
			return NULL;
		key[k++] = (char)toupper((unsigned char)*s);
	}
	key[k] = '\0';
	for (size_t i = 0; warehouse_sizes[i]; i++)
		if (strcmp(key, warehouse_sizes[i]) == 0)
			return warehouse_sizes[i];
	for (size_t i = 0; i < sizeof(warehouse_size_aliases) / sizeof(warehouse_size_aliases[0]);
	     i++)
		if (strcmp(key, warehouse_size_aliases[i].alias) == 0)
			return warehouse_size_aliases[i].canon;
	return NULL;
}

static const char *const scaling_policy_enums[] = {"STANDARD", "ECONOMY", NULL};
static const char *const warehouse_type_enums[] = {"STANDARD", "SNOWPARK-OPTIMIZED", NULL};

static const tp_field warehouse_fields[] = {
	NAME_FIELD("warehouse"),
	COMMENT_FIELD,
	{.name = "warehouse_size", .type = TP_TYPE_STRING, .def = "\"XSMALL\"",
	 .doc = "XSMALL, SMALL, MEDIUM, LARGE, XLARGE, XXLARGE, XXXLARGE, X4LARGE, X5LARGE or "
		"X6LARGE (X-Small, 2X-Large... accepted)"},
	{.name = "auto_suspend", .type = TP_TYPE_INT, .def = "60", .min = 0, .max = INT32_MAX,
	 .doc = "seconds of inactivity before the warehouse suspends; 0 never suspends"},
	{.name = "auto_resume", .type = TP_TYPE_BOOL, .def = "true",
	 .doc = "resume automatically when a statement needs the warehouse"},
	{.name = "initially_suspended", .type = TP_TYPE_BOOL, .def = "true",
	 .doc = "creation only: create the warehouse suspended (not compared afterwards)"},
	{.name = "min_cluster_count", .type = TP_TYPE_INT, .min = 1, .max = 10,
	 .doc = "fewest clusters of a multi-cluster warehouse (at most max_cluster_count)"},
	{.name = "max_cluster_count", .type = TP_TYPE_INT, .min = 1, .max = 10,
	 .doc = "most clusters of a multi-cluster warehouse; above 1 needs Enterprise edition"},
	{.name = "scaling_policy", .type = TP_TYPE_STRING, .enums = scaling_policy_enums,
	 .doc = "how a multi-cluster warehouse adds clusters: STANDARD or ECONOMY"},
	{.name = "warehouse_type", .type = TP_TYPE_STRING, .enums = warehouse_type_enums,
	 .doc = "STANDARD or SNOWPARK-OPTIMIZED (more memory per node)"},
	{.name = "resource_monitor", .type = TP_TYPE_STRING,
	 .doc = "resource monitor (identifier) that caps the warehouse's credit use"},
	{0},
};

static void warehouse_check(const json_t *spec, tp_check *c)
{
	const char *size = tp_json_get_str(spec, "warehouse_size");
	json_t *min = json_object_get(spec, "min_cluster_count");
	json_t *max = json_object_get(spec, "max_cluster_count");

	check_ident(c, "name", tp_json_get_str(spec, "name"));
	check_ident(c, "resource_monitor", tp_json_get_str(spec, "resource_monitor"));
	if (size && !tp_kind_has_ref(size) && !warehouse_size_canon(size))
		tp_check_error(c, "warehouse_size", "unknown warehouse size \"%s\"; expected "
			       "one of XSMALL, SMALL, MEDIUM, LARGE, XLARGE, XXLARGE, XXXLARGE, "
			       "X4LARGE, X5LARGE, X6LARGE (Snowflake's spellings such as X-Small "
			       "or 2X-Large work too)", size);
	if (json_is_integer(min) && json_is_integer(max) &&
	    json_integer_value(min) > json_integer_value(max))
		tp_check_error(c, "min_cluster_count", "must not exceed max_cluster_count (%lld > "
			       "%lld)", (long long)json_integer_value(min),
			       (long long)json_integer_value(max));
}

static void warehouse_normalise(json_t *spec)
{
	const char *size = tp_json_get_str(spec, "warehouse_size");
	const char *canon = size ? warehouse_size_canon(size) : NULL;

	canon_ident_field(spec, "name");
	canon_ident_field(spec, "resource_monitor");
	drop_empty_comment(spec);
	if (canon)
		set_str(spec, "warehouse_size", canon);
}

static const tp_kind kind_warehouse = {
	.name = "snowflake.warehouse",
	.phase = TP_PHASE_WAREHOUSE,
	.doc = "a virtual warehouse (compute for loading and transforming)",
	.fields = warehouse_fields,
	.outputs = name_outputs,
	.check = warehouse_check,
	.normalise = warehouse_normalise,
	.observe = tp_sf_warehouse_observe,
	.create = tp_sf_object_create,
	.update = tp_sf_object_update,
	.remove = tp_sf_object_remove,
	.adopt = tp_sf_object_adopt,
};

/* ---------------------------------------------------------------- snowflake.database */

static const tp_field database_fields[] = {
	NAME_FIELD("database"),
	COMMENT_FIELD,
	{.name = "data_retention_time_in_days", .type = TP_TYPE_INT, .min = 0, .max = 90,
	 .doc = "days of Time Travel (above 1 needs Enterprise edition; transient: 0 or 1)"},
	{.name = "transient", .type = TP_TYPE_BOOL, .flags = TP_F_IMMUTABLE,
	 .doc = "no Fail-safe and at most 1 day of Time Travel; cannot change after creation"},
	{0},
};

/* Transient databases and schemas keep at most one day of Time Travel. */
static void check_transient_retention(const json_t *spec, tp_check *c)
{
	json_t *retention = json_object_get(spec, "data_retention_time_in_days");

	if (json_is_true(json_object_get(spec, "transient")) && json_is_integer(retention) &&
	    json_integer_value(retention) > 1)
		tp_check_error(c, "data_retention_time_in_days", "a transient object keeps at most "
			       "1 day of Time Travel, got %lld",
			       (long long)json_integer_value(retention));
}

static void database_check(const json_t *spec, tp_check *c)
{
	check_ident(c, "name", tp_json_get_str(spec, "name"));
	check_transient_retention(spec, c);
}

static void database_normalise(json_t *spec)
{
	canon_ident_field(spec, "name");
	drop_empty_comment(spec);
}

static const tp_kind kind_database = {
	.name = "snowflake.database",
	.phase = TP_PHASE_WAREHOUSE,
	.doc = "a database",
	.fields = database_fields,
	.outputs = name_outputs,
	.check = database_check,
	.normalise = database_normalise,
	.observe = tp_sf_database_observe,
	.create = tp_sf_object_create,
	.update = tp_sf_object_update,
	.remove = tp_sf_object_remove,
	.adopt = tp_sf_object_adopt,
};

/* ---------------------------------------------------------------- snowflake.schema */

static const tp_field schema_fields[] = {
	NAME_FIELD("schema"),
	COMMENT_FIELD,
	{.name = "database", .type = TP_TYPE_STRING, .flags = TP_F_REQUIRED | TP_F_IMMUTABLE,
	 .doc = "database the schema is in, usually ${snowflake.database/<name>.name}"},
	{.name = "managed_access", .type = TP_TYPE_BOOL,
	 .doc = "managed access: only the schema owner grants privileges on its objects"},
	{.name = "transient", .type = TP_TYPE_BOOL, .flags = TP_F_IMMUTABLE,
	 .doc = "no Fail-safe and at most 1 day of Time Travel; cannot change after creation"},
	{.name = "data_retention_time_in_days", .type = TP_TYPE_INT, .min = 0, .max = 90,
	 .doc = "days of Time Travel for the schema's tables (default: the database's)"},
	{0},
};

static const char *const schema_outputs[] = {"name", "database", "fqn", NULL};

static void schema_check(const json_t *spec, tp_check *c)
{
	const char *name = tp_json_get_str(spec, "name");

	check_ident(c, "name", name);
	check_ident(c, "database", tp_json_get_str(spec, "database"));
	check_transient_retention(spec, c);
	if (name && !tp_kind_has_ref(name)) {
		char *canon = ident_canon(name);
		if (canon && strcmp(canon, "INFORMATION_SCHEMA") == 0)
			tp_check_error(c, "name", "INFORMATION_SCHEMA is Snowflake's own read-only "
				       "schema in every database");
		free(canon);
	}
}

static void schema_normalise(json_t *spec)
{
	canon_ident_field(spec, "name");
	canon_ident_field(spec, "database");
	drop_empty_comment(spec);
}

/* fqn = the dotted names of database, schema (for a view) and the object: known at plan
 * time whenever its parts are plain strings. */
static json_t *fqn_predict(const json_t *spec)
{
	static const char *const parts[] = {"database", "schema", "name"};
	json_t *out = json_object();
	tp_buf b;
	bool ok = true;
	tp_buf_init(&b, 4096);
	for (size_t i = 0; i < sizeof(parts) / sizeof(*parts); i++) {
		const char *v = tp_json_get_str(spec, parts[i]);
		if (!json_object_get(spec, parts[i]))
			continue;
		if (!v) {
			ok = false;
			break;
		}
		tp_buf_printf(&b, "%s%s", b.len ? "." : "", v);
	}
	if (ok && b.len)
		json_object_set_new(out, "fqn", json_string(tp_buf_cstr(&b)));
	tp_buf_free(&b);
	return out;
}

static const tp_kind kind_schema = {
	.name = "snowflake.schema",
	.phase = TP_PHASE_WAREHOUSE,
	.doc = "a schema in a database",
	.fields = schema_fields,
	.outputs = schema_outputs,
	.check = schema_check,
	.normalise = schema_normalise,
	.predict_outputs = fqn_predict,
	.observe = tp_sf_schema_observe,
	.create = tp_sf_object_create,
	.update = tp_sf_object_update,
	.remove = tp_sf_object_remove,
	.adopt = tp_sf_object_adopt,
};

/* ---------------------------------------------------------------- snowflake.role */

/* Roles every account has and Snowflake owns: they can be granted and granted to, never
 * created or dropped. */
static const char *const system_roles[] = {
	"ACCOUNTADMIN", "ORGADMIN", "SECURITYADMIN", "SYSADMIN", "USERADMIN", "PUBLIC", NULL,
};

static const tp_field role_fields[] = {
	NAME_FIELD("role"),
	COMMENT_FIELD,
	{0},
};

static void role_check(const json_t *spec, tp_check *c)
{
	const char *name = tp_json_get_str(spec, "name");
	char *canon = name ? ident_canon(name) : NULL;

	check_ident(c, "name", name);
	for (size_t i = 0; canon && system_roles[i]; i++)
		if (strcmp(canon, system_roles[i]) == 0)
			tp_check_error(c, "name", "%s is a system role: grant it or grant to it "
				       "with snowflake.role_grant, but do not declare it as a role",
				       system_roles[i]);
	free(canon);
}

static void role_normalise(json_t *spec)
{
	canon_ident_field(spec, "name");
	drop_empty_comment(spec);
}

static const tp_kind kind_role = {
	.name = "snowflake.role",
	.phase = TP_PHASE_WAREHOUSE,
	.doc = "an account role",
	.fields = role_fields,
	.outputs = name_outputs,
	.check = role_check,
	.normalise = role_normalise,
	.observe = tp_sf_role_observe,
	.create = tp_sf_object_create,
	.update = tp_sf_object_update,
	.remove = tp_sf_object_remove,
	.adopt = tp_sf_object_adopt,
};

/* ---------------------------------------------------------------- snowflake.user */

static const char *const user_type_enums[] = {"PERSON", "SERVICE", "LEGACY_SERVICE", NULL};

static const tp_field user_fields[] = {
	NAME_FIELD("user"),
	COMMENT_FIELD,
	{.name = "login_name", .type = TP_TYPE_STRING,
	 .doc = "name the user logs in with (case-insensitive; default: the user name)"},
	{.name = "display_name", .type = TP_TYPE_STRING,
	 .doc = "name shown in the Snowflake UI"},
	{.name = "email", .type = TP_TYPE_STRING,
	 .doc = "email address"},
	{.name = "default_role", .type = TP_TYPE_STRING,
	 .doc = "role (identifier) active at login; it must also be granted to the user"},
	{.name = "default_warehouse", .type = TP_TYPE_STRING,
	 .doc = "warehouse (identifier) active at login"},
	{.name = "default_namespace", .type = TP_TYPE_STRING,
	 .doc = "database or database.schema active at login"},
	{.name = "rsa_public_key", .type = TP_TYPE_STRING,
	 .doc = "RSA public key for key-pair authentication (PEM, with or without the BEGIN/END "
		"lines)"},
	{.name = "password", .type = TP_TYPE_STRING, .flags = TP_F_SECRET_REF,
	 .doc = "password, as a ${secret:...} reference (not for type SERVICE)"},
	{.name = "must_change_password", .type = TP_TYPE_BOOL,
	 .doc = "force a password change at the next login (not for type SERVICE)"},
	{.name = "disabled", .type = TP_TYPE_BOOL,
	 .doc = "lock the user out, keeping the user and its grants"},
	{.name = "type", .type = TP_TYPE_STRING, .enums = user_type_enums,
	 .doc = "PERSON (a human), SERVICE (a program; no password) or LEGACY_SERVICE"},
	{0},
};

/* The base64 body of a PEM public key: BEGIN/END lines and all white space removed. That is
 * what ALTER USER takes and what DESC USER shows. Caller frees. */
static char *rsa_key_body(const char *pem)
{
	char *out = tp_malloc(strlen(pem) + 1);
	size_t k = 0;
	const char *p = pem;

	while (*p) {
		size_t n = strcspn(p, "\n");
		if (strncmp(p, "-----", 5) != 0)
			for (size_t i = 0; i < n; i++)
				if (!isspace((unsigned char)p[i]))
					out[k++] = p[i];
		p += n;
		if (*p == '\n')
			p++;
	}
	out[k] = '\0';
	return out;
}

static void user_check(const json_t *spec, tp_check *c)
{
	const char *type = tp_json_get_str(spec, "type");
	const char *key = tp_json_get_str(spec, "rsa_public_key");

	check_ident(c, "name", tp_json_get_str(spec, "name"));
	check_ident(c, "default_role", tp_json_get_str(spec, "default_role"));
	check_ident(c, "default_warehouse", tp_json_get_str(spec, "default_warehouse"));
	check_ident_path(c, "default_namespace", tp_json_get_str(spec, "default_namespace"), 1,
			 2);
	if (key && !tp_kind_has_ref(key)) {
		char *body = rsa_key_body(key);
		size_t n = strlen(body);
		if (strstr(key, "PRIVATE KEY"))
			tp_check_error(c, "rsa_public_key", "this is a private key: put the public "
				       "key here and keep the private key out of Git");
		else if (n == 0 || strspn(body, BASE64_CHARS) != n)
			tp_check_error(c, "rsa_public_key", "must be a PEM public key or its "
				       "base64 body");
		free(body);
	}
	if (type && strcmp(type, "SERVICE") == 0) {
		if (json_object_get(spec, "password"))
			tp_check_error(c, "password", "a SERVICE user cannot have a password; use "
				       "rsa_public_key, or type LEGACY_SERVICE");
		if (json_is_true(json_object_get(spec, "must_change_password")))
			tp_check_error(c, "must_change_password", "a SERVICE user has no password "
				       "to change");
	}
}

static void user_normalise(json_t *spec)
{
	const char *login = tp_json_get_str(spec, "login_name");
	const char *key = tp_json_get_str(spec, "rsa_public_key");

	canon_ident_field(spec, "name");
	canon_ident_field(spec, "default_role");
	canon_ident_field(spec, "default_warehouse");
	canon_ident_field(spec, "default_namespace");
	drop_empty_comment(spec);
	/* Login names are case-insensitive and read back upper-case. */
	if (login && !tp_kind_has_ref(login)) {
		char *up = tp_strdup(login);
		upcase(up);
		set_str(spec, "login_name", up);
		free(up);
	}
	if (key && !tp_kind_has_ref(key)) {
		char *body = rsa_key_body(key);
		set_str(spec, "rsa_public_key", body);
		free(body);
	}
}

static const tp_kind kind_user = {
	.name = "snowflake.user",
	.phase = TP_PHASE_WAREHOUSE,
	.doc = "a user (a person or a service such as the Airbyte loader)",
	.fields = user_fields,
	.outputs = name_outputs,
	.check = user_check,
	.normalise = user_normalise,
	.observe = tp_sf_user_observe,
	.create = tp_sf_object_create,
	.update = tp_sf_object_update,
	.remove = tp_sf_object_remove,
	.adopt = tp_sf_object_adopt,
};

/* ---------------------------------------------------------------- snowflake.grant */

/*
 * Object types a privilege can be granted on, in the spelling GRANT takes. `parts` is the
 * number of name parts of one such object (0: ACCOUNT has no name; -1: a single one cannot
 * be named here, e.g. functions need argument types); `plural` is the spelling after ALL or
 * FUTURE, NULL when the type cannot be granted that way.
 */
static const struct grant_type {
	const char *name;
	const char *plural;
	int parts;
} grant_types[] = {
	{"ACCOUNT", NULL, 0},
	{"DATABASE", NULL, 1},
	{"WAREHOUSE", NULL, 1},
	{"INTEGRATION", NULL, 1},
	{"RESOURCE MONITOR", NULL, 1},
	{"USER", NULL, 1},
	{"SCHEMA", "SCHEMAS", 2},
	{"TABLE", "TABLES", 3},
	{"VIEW", "VIEWS", 3},
	{"MATERIALIZED VIEW", "MATERIALIZED VIEWS", 3},
	{"EXTERNAL TABLE", "EXTERNAL TABLES", 3},
	{"DYNAMIC TABLE", "DYNAMIC TABLES", 3},
	{"STAGE", "STAGES", 3},
	{"FILE FORMAT", "FILE FORMATS", 3},
	{"SEQUENCE", "SEQUENCES", 3},
	{"STREAM", "STREAMS", 3},
	{"TASK", "TASKS", 3},
	{"PIPE", "PIPES", 3},
	{"FUNCTION", "FUNCTIONS", -1},
	{"PROCEDURE", "PROCEDURES", -1},
	{NULL, NULL, 0},
};

/* Looks a type up in any case with '_' or ' ' between words; `plural` also accepts the
 * plural (for ALL/FUTURE). */
static const struct grant_type *grant_type_find(const char *s, bool plural)
{
	char *key = keyword_canon(s);
	const struct grant_type *found = NULL;

	for (size_t i = 0; grant_types[i].name && !found; i++)
		if (strcmp(key, grant_types[i].name) == 0 ||
		    (plural && grant_types[i].plural && strcmp(key, grant_types[i].plural) == 0))
			found = &grant_types[i];
	free(key);
	return found;
}

static const tp_field privilege_item = {
	.type = TP_TYPE_STRING,
	.doc = "a privilege, e.g. USAGE, SELECT, CREATE SCHEMA",
};

static const tp_field grant_on_fields[] = {
	{.name = "type", .type = TP_TYPE_STRING,
	 .flags = TP_F_REQUIRED | TP_F_IMMUTABLE | TP_F_NOREF,
	 .doc = "ACCOUNT, DATABASE, WAREHOUSE, SCHEMA, TABLE, VIEW, ...; with all/future the "
		"container: DATABASE or SCHEMA"},
	{.name = "name", .type = TP_TYPE_STRING, .flags = TP_F_IMMUTABLE,
	 .doc = "fully-qualified object name (DB, DB.SCHEMA, DB.SCHEMA.OBJECT); none for ACCOUNT"},
	{.name = "all", .type = TP_TYPE_STRING, .flags = TP_F_IMMUTABLE | TP_F_NOREF,
	 .doc = "grant on all existing objects of this type in the container, e.g. TABLES"},
	{.name = "future", .type = TP_TYPE_STRING, .flags = TP_F_IMMUTABLE | TP_F_NOREF,
	 .doc = "grant on objects of this type created in the container later, e.g. TABLES"},
	{0},
};

static const tp_field grant_fields[] = {
	{.name = "role", .type = TP_TYPE_STRING, .flags = TP_F_REQUIRED | TP_F_IMMUTABLE,
	 .doc = "role (identifier) receiving the privileges"},
	{.name = "privileges", .type = TP_TYPE_LIST, .flags = TP_F_REQUIRED | TP_F_UNORDERED,
	 .items = &privilege_item,
	 .doc = "privileges granted, e.g. [USAGE, CREATE SCHEMA]; ALL and OWNERSHIP are refused"},
	{.name = "on", .type = TP_TYPE_OBJECT, .flags = TP_F_REQUIRED | TP_F_IMMUTABLE,
	 .fields = grant_on_fields,
	 .doc = "what the privileges are on: a named object, or all/future objects of a type in "
		"a database or schema"},
	{.name = "with_grant_option", .type = TP_TYPE_BOOL, .def = "false",
	 .doc = "the role may grant these privileges on to other roles"},
	{0},
};

/* True when s is one or more words of letters and '_' separated by blanks. */
static bool is_privilege_words(const char *s)
{
	bool word = false;

	for (; *s; s++) {
		if (isalpha((unsigned char)*s) || *s == '_')
			word = true;
		else if (*s != ' ' && *s != '\t')
			return false;
	}
	return word;
}

static void grant_check_privileges(json_t *privs, tp_check *c)
{
	char path[64];

	if (json_array_size(privs) == 0)
		tp_check_error(c, "privileges", "must list at least one privilege");
	for (size_t i = 0; i < json_array_size(privs); i++) {
		const char *p = json_string_value(json_array_get(privs, i));
		char *canon;

		if (!p || tp_kind_has_ref(p))
			continue;
		snprintf(path, sizeof(path), "privileges.%zu", i);
		if (!is_privilege_words(p)) {
			tp_check_error(c, path, "\"%s\" is not a privilege: expected words of "
				       "letters such as USAGE or CREATE SCHEMA", p);
			continue;
		}
		canon = keyword_canon(p);
		if (strcmp(canon, "ALL") == 0 || strcmp(canon, "ALL PRIVILEGES") == 0)
			tp_check_error(c, path, "ALL PRIVILEGES reads back as the single "
				       "privileges and would never match; list the privileges");
		else if (strcmp(canon, "OWNERSHIP") == 0)
			tp_check_error(c, path, "OWNERSHIP is transferred, not granted: Tapestry "
				       "owns the objects it creates");
		free(canon);
	}
}

static void grant_check_on(json_t *on, tp_check *c)
{
	const char *type = tp_json_get_str(on, "type");
	const char *name = tp_json_get_str(on, "name");
	const char *all = tp_json_get_str(on, "all");
	const char *future = tp_json_get_str(on, "future");
	const char *many = all ? all : future;
	const char *many_key = all ? "on.all" : "on.future";
	const struct grant_type *t = type ? grant_type_find(type, false) : NULL;
	const struct grant_type *inner = NULL;

	if (!type)
		return;
	if (!t) {
		tp_check_error(c, "on.type", "unknown object type \"%s\"; expected ACCOUNT, "
			       "DATABASE, WAREHOUSE, INTEGRATION, RESOURCE MONITOR, USER, SCHEMA, "
			       "TABLE, VIEW, MATERIALIZED VIEW, EXTERNAL TABLE, DYNAMIC TABLE, "
			       "STAGE, FILE FORMAT, SEQUENCE, STREAM, TASK or PIPE", type);
		return;
	}
	if (all && future) {
		tp_check_error(c, "on", "set one of `all` and `future`, not both (declare two "
			       "grants for existing and future objects)");
		return;
	}
	if (many) {
		inner = grant_type_find(many, true);
		if (!inner || !inner->plural) {
			tp_check_error(c, many_key, "\"%s\" cannot be granted on in bulk; "
				       "expected SCHEMAS, TABLES, VIEWS, MATERIALIZED VIEWS, "
				       "EXTERNAL TABLES, DYNAMIC TABLES, STAGES, FILE FORMATS, "
				       "SEQUENCES, STREAMS, TASKS, PIPES, FUNCTIONS or PROCEDURES",
				       many);
			return;
		}
		if (strcmp(t->name, "DATABASE") != 0 && strcmp(t->name, "SCHEMA") != 0) {
			tp_check_error(c, "on.type", "with `%s` the type is the container, "
				       "DATABASE or SCHEMA, got %s", all ? "all" : "future",
				       t->name);
			return;
		}
		if (strcmp(t->name, "SCHEMA") == 0 && strcmp(inner->name, "SCHEMA") == 0) {
			tp_check_error(c, many_key, "schemas are in a database: use type DATABASE");
			return;
		}
	} else if (t->parts < 0) {
		tp_check_error(c, "on.type", "grants on a single %s are not supported (it needs "
			       "argument types); use all or future %s in a schema", t->name,
			       t->plural);
		return;
	}
	if (t->parts == 0) {
		if (name)
			tp_check_error(c, "on.name", "ACCOUNT takes no name");
		return;
	}
	if (!name) {
		tp_check_error(c, "on.name", "the %s%s needs a name", t->name,
			       many ? " container" : "");
		return;
	}
	check_ident_path(c, "on.name", name, t->parts, t->parts);
}

static void grant_check(const json_t *spec, tp_check *c)
{
	json_t *on = json_object_get(spec, "on");

	check_ident(c, "role", tp_json_get_str(spec, "role"));
	grant_check_privileges(json_object_get(spec, "privileges"), c);
	if (json_is_object(on))
		grant_check_on(on, c);
}

/* Privileges: upper-case, single-spaced, sorted, without duplicates. A list holding anything
 * but plain strings is left as it is. */
static void grant_normalise_privileges(json_t *spec)
{
	json_t *list = json_object_get(spec, "privileges");
	size_t n = json_array_size(list);
	char **items = NULL;
	json_t *out = NULL;
	size_t k = 0;

	if (n == 0)
		return;
	items = tp_calloc(n, sizeof(*items));
	for (; k < n; k++) {
		const char *p = json_string_value(json_array_get(list, k));
		if (!p || tp_kind_has_ref(p))
			goto done;
		items[k] = keyword_canon(p);
	}
	qsort(items, n, sizeof(*items), tp_str_qsort_cmp);
	out = json_array();
	for (size_t i = 0; i < n; i++)
		if (i == 0 || strcmp(items[i], items[i - 1]) != 0)
			json_array_append_new(out, json_string(items[i]));
	json_object_set_new(spec, "privileges", out);
done:
	for (size_t i = 0; i < k; i++)
		free(items[i]);
	free(items);
}

static void grant_normalise(json_t *spec)
{
	json_t *on = json_object_get(spec, "on");
	const char *type = tp_json_get_str(on, "type");
	const struct grant_type *t = type ? grant_type_find(type, false) : NULL;

	canon_ident_field(spec, "role");
	grant_normalise_privileges(spec);
	if (!json_is_object(on))
		return;
	if (t)
		set_str(on, "type", t->name);
	for (size_t i = 0; i < 2; i++) {
		const char *key = i == 0 ? "all" : "future";
		const char *s = tp_json_get_str(on, key);
		const struct grant_type *inner = s ? grant_type_find(s, true) : NULL;
		if (inner && inner->plural)
			set_str(on, key, inner->plural);
	}
	canon_ident_field(on, "name");
}

static const tp_kind kind_grant = {
	.name = "snowflake.grant",
	.phase = TP_PHASE_WAREHOUSE,
	.doc = "privileges on an object (or on all/future objects of a type) granted to a role",
	.fields = grant_fields,
	.outputs = no_outputs,
	.check = grant_check,
	.normalise = grant_normalise,
	.observe = tp_sf_grant_observe,
	.create = tp_sf_grant_create,
	.update = tp_sf_grant_update,
	.remove = tp_sf_grant_remove,
	.adopt = tp_sf_grant_adopt,
};

/* ---------------------------------------------------------------- snowflake.role_grant */

static const tp_field role_grant_fields[] = {
	{.name = "role", .type = TP_TYPE_STRING, .flags = TP_F_REQUIRED | TP_F_IMMUTABLE,
	 .doc = "role (identifier) being granted"},
	{.name = "to_role", .type = TP_TYPE_STRING, .flags = TP_F_IMMUTABLE,
	 .doc = "role that receives it (role hierarchy); exactly one of to_role and to_user"},
	{.name = "to_user", .type = TP_TYPE_STRING, .flags = TP_F_IMMUTABLE,
	 .doc = "user that receives it; exactly one of to_role and to_user"},
	{0},
};

static void role_grant_check(const json_t *spec, tp_check *c)
{
	const char *role = tp_json_get_str(spec, "role");
	const char *to_role = tp_json_get_str(spec, "to_role");
	const char *to_user = tp_json_get_str(spec, "to_user");
	bool has_role = json_object_get(spec, "to_role") != NULL;
	bool has_user = json_object_get(spec, "to_user") != NULL;

	check_ident(c, "role", role);
	check_ident(c, "to_role", to_role);
	check_ident(c, "to_user", to_user);
	if (has_role == has_user)
		tp_check_error(c, "", "exactly one of `to_role` and `to_user` must be set");
	if (role && to_role) {
		char *a = ident_canon(role);
		char *b = ident_canon(to_role);
		if (a && b && strcmp(a, b) == 0)
			tp_check_error(c, "to_role", "a role cannot be granted to itself");
		free(a);
		free(b);
	}
}

static void role_grant_normalise(json_t *spec)
{
	canon_ident_field(spec, "role");
	canon_ident_field(spec, "to_role");
	canon_ident_field(spec, "to_user");
}

static const tp_kind kind_role_grant = {
	.name = "snowflake.role_grant",
	.phase = TP_PHASE_WAREHOUSE,
	.doc = "a role granted to another role or to a user",
	.fields = role_grant_fields,
	.outputs = no_outputs,
	.check = role_grant_check,
	.normalise = role_grant_normalise,
	.observe = tp_sf_role_grant_observe,
	.create = tp_sf_role_grant_create,
	.update = tp_sf_role_grant_update,
	.remove = tp_sf_role_grant_remove,
	.adopt = tp_sf_role_grant_adopt,
};

/* ---------------------------------------------------------------- snowflake.view */

static const tp_field view_fields[] = {
	NAME_FIELD("view"),
	COMMENT_FIELD,
	{.name = "database", .type = TP_TYPE_STRING, .flags = TP_F_REQUIRED | TP_F_IMMUTABLE,
	 .doc = "database of the view, usually ${snowflake.schema/<name>.database}"},
	{.name = "schema", .type = TP_TYPE_STRING, .flags = TP_F_REQUIRED | TP_F_IMMUTABLE,
	 .doc = "schema of the view, usually ${snowflake.schema/<name>.name}"},
	{.name = "sql", .type = TP_TYPE_STRING,
	 .flags = TP_F_FILE | TP_F_REQUIRED | TP_F_IMMUTABLE,
	 .doc = "file holding the view's query (the SELECT only), e.g. models/email_model.sql; "
		"a change re-creates the view"},
	{.name = "secure", .type = TP_TYPE_BOOL,
	 .doc = "secure view: its definition is hidden from roles that do not own it"},
	{0},
};

static const char *const view_outputs[] = {"name", "database", "schema", "fqn", NULL};

static void view_check(const json_t *spec, tp_check *c)
{
	check_ident(c, "name", tp_json_get_str(spec, "name"));
	check_ident(c, "database", tp_json_get_str(spec, "database"));
	check_ident(c, "schema", tp_json_get_str(spec, "schema"));
}

static void view_normalise(json_t *spec)
{
	canon_ident_field(spec, "name");
	canon_ident_field(spec, "database");
	canon_ident_field(spec, "schema");
	drop_empty_comment(spec);
}

static const tp_kind kind_view = {
	.name = "snowflake.view",
	.phase = TP_PHASE_TRANSFORMATION,
	.doc = "a view whose query is a SQL model in the pipeline repository",
	.fields = view_fields,
	.outputs = view_outputs,
	.check = view_check,
	.normalise = view_normalise,
	.predict_outputs = fqn_predict,
	.observe = tp_sf_view_observe,
	.create = tp_sf_object_create,
	.update = tp_sf_object_update,
	.remove = tp_sf_object_remove,
	.adopt = tp_sf_object_adopt,
};

/* ---------------------------------------------------------------- provider */

/* Authentication is a key pair (private_key) or a token; the SQL API code picks whichever is
 * set and refuses a configuration with neither. */
#define SNOWFLAKE_MAX_CONCURRENCY 16

static const tp_field config_fields[] = {
	{.name = "account", .type = TP_TYPE_STRING, .flags = TP_F_REQUIRED,
	 .doc = "account identifier, ORGNAME-ACCOUNTNAME (or the account locator)"},
	{.name = "user", .type = TP_TYPE_STRING, .flags = TP_F_REQUIRED,
	 .doc = "user Tapestry connects as"},
	{.name = "role", .type = TP_TYPE_STRING,
	 .doc = "role Tapestry works as (default: the user's default role)"},
	{.name = "warehouse", .type = TP_TYPE_STRING,
	 .doc = "warehouse for statements that need one (SHOW and DDL do not)"},
	{.name = "private_key", .type = TP_TYPE_STRING, .flags = TP_F_SECRET_REF,
	 .doc = "PEM private key for key-pair (JWT) authentication"},
	{.name = "private_key_passphrase", .type = TP_TYPE_STRING, .flags = TP_F_SECRET_REF,
	 .doc = "passphrase of an encrypted private_key"},
	{.name = "token", .type = TP_TYPE_STRING, .flags = TP_F_SECRET_REF,
	 .doc = "OAuth or programmatic access token, instead of private_key"},
	{.name = "endpoint", .type = TP_TYPE_STRING,
	 .doc = "base URL instead of https://<account>.snowflakecomputing.com; "
		"TAPESTRY_ENDPOINT_SNOWFLAKE wins over it"},
	TP_FIELD_MAX_CONCURRENCY(SNOWFLAKE_MAX_CONCURRENCY),
	{0},
};

static const tp_kind *const kinds[] = {
	&kind_warehouse, &kind_database, &kind_schema, &kind_role, &kind_user,
	&kind_grant, &kind_role_grant, &kind_view, NULL,
};

const tp_provider tp_provider_snowflake = {
	.name = "snowflake",
	.config = config_fields,
	.needs_config = true,
	.kinds = kinds,
	.open = tp_sf_session_open,
	.close = tp_sf_session_close,
	/* writes are batched per request (client.c), so more calls in flight means fewer
	 * requests, not more load */
	.max_concurrency = SNOWFLAKE_MAX_CONCURRENCY,
};
