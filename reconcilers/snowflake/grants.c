/*
 * Runtime slots of snowflake.grant (privileges on an object, or on all/future objects of a
 * type in a database or schema, to a role) and snowflake.role_grant (a role to a role or a
 * user). Grants have no comment to carry an ownership marker: they are identified by what they
 * grant to whom, and revoking one that is already gone is success.
 *
 * Observe: one SHOW GRANTS TO ROLE r per role, one SHOW FUTURE GRANTS IN SCHEMA|DATABASE x per
 * container, one SHOW GRANTS OF ROLE r per granted role. Privileges are compared as sets,
 * OWNERSHIP rows are not grants, USAGE reads back for IMPORTED PRIVILEGES. A grant on ALL
 * objects is a one-time grant on what existed then: there is nothing to observe afterwards, so
 * it is reported as applied (never drift).
 */
#include "snowflake_int.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---------------------------------------------------------------- helpers */

static const json_t *known_spec(const tp_op *op)
{
	return op->applied ? op->applied : op->spec;
}

/* "MATERIALIZED_VIEW" and "MATERIALIZED VIEW" are one type. */
static bool type_eq(const char *a, const char *b)
{
	if (!a || !b)
		return false;
	for (; *a && *b; a++, b++) {
		char x = *a == '_' ? ' ' : *a, y = *b == '_' ? ' ' : *b;
		if (x != y && ((x | 0x20) != (y | 0x20)))
			return false;
	}
	return *a == *b;
}

/* Whether two identifier paths name the same object (quoting differences ignored). */
static bool path_eq(const char *a, const char *b)
{
	tp_strlist pa = {0}, pb = {0};
	bool eq = false;
	if (a && b && tp_sf_path_split(&pa, a) == 0 && tp_sf_path_split(&pb, b) == 0 &&
	    pa.len == pb.len) {
		eq = true;
		for (size_t i = 0; eq && i < pa.len; i++)
			eq = strcmp(pa.items[i], pb.items[i]) == 0;
	}
	tp_strlist_free(&pa);
	tp_strlist_free(&pb);
	return eq;
}

static char *stored1(const char *canonical, const char *address, const char *field)
{
	tp_strlist p = {0};
	char *out = NULL;
	if (canonical && tp_sf_path_split(&p, canonical) == 0 && p.len == 1)
		out = tp_strdup(p.items[0]);
	else
		tp_error_set(TP_EINVALID, "%s: %s is not a single identifier", address, field);
	tp_strlist_free(&p);
	return out;
}

/* The singular type of an ALL/FUTURE plural ("FILE FORMATS" → "FILE FORMAT"). */
static char *singular(const char *plural)
{
	size_t n = strlen(plural);
	return tp_strndup(plural, n > 1 && plural[n - 1] == 'S' ? n - 1 : n);
}

/* " ON ..." for a grant's `on`. */
static int on_clause(tp_buf *b, const json_t *on, const char *address)
{
	const char *type = tp_json_get_str(on, "type");
	const char *name = tp_json_get_str(on, "name");
	const char *all = tp_json_get_str(on, "all");
	const char *future = tp_json_get_str(on, "future");
	if (!type)
		return tp_error_set(TP_EINVALID, "%s: on.type is missing", address);
	if (all || future) {
		tp_buf_printf(b, " ON %s %s IN %s ", all ? "ALL" : "FUTURE", all ? all : future,
			      type);
	} else if (strcmp(type, "ACCOUNT") == 0) {
		tp_buf_puts(b, " ON ACCOUNT");
		return 0;
	} else {
		tp_buf_printf(b, " ON %s ", type);
	}
	if (!name || tp_sf_put_path(b, name) < 0)
		return tp_error_set(TP_EINVALID, "%s: on.name is not an identifier path", address);
	return 0;
}

static void put_privs(tp_buf *b, const json_t *privs)
{
	size_t i;
	json_t *p;
	json_array_foreach(privs, i, p)
		tp_buf_printf(b, "%s%s", i ? ", " : "", json_string_value(p));
}

static bool list_has(const json_t *list, const char *s)
{
	size_t i;
	json_t *v;
	json_array_foreach(list, i, v)
		if (type_eq(json_string_value(v), s))
			return true;
	return false;
}

/* a - b (strings) */
static json_t *list_minus(const json_t *a, const json_t *b)
{
	json_t *out = json_array(), *v;
	size_t i;
	json_array_foreach(a, i, v)
		if (!list_has(b, json_string_value(v)))
			json_array_append(out, v);
	return out;
}

static char *grant_id(const json_t *spec)
{
	const json_t *on = json_object_get(spec, "on");
	const char *all = tp_json_get_str(on, "all"), *future = tp_json_get_str(on, "future");
	return tp_sprintf("%s:%s%s%s%s%s", tp_json_get_str(spec, "role"),
			  all ? "ALL " : future ? "FUTURE " : "", all ? all : future ? future : "",
			  all || future ? " IN " : "", tp_json_get_str(on, "type"),
			  tp_json_get_str(on, "name") ? tp_json_get_str(on, "name") : "");
}

static int with_address(const tp_op *op, int rc)
{
	char *m = tp_strdup(tp_error_last());
	rc = tp_error_wrap(rc, "%s: %s", op->address, m);
	free(m);
	return rc;
}

/* ---------------------------------------------------------------- grant: observe */

/* The observed spec of one grant from the rows of its scope's SHOW, or NULL when none of its
 * privileges is there. */
static json_t *grant_from_rows(const tp_op *op, const tp_sf_result *r, bool future,
			       const char *role_stored)
{
	const json_t *spec = known_spec(op);
	const json_t *on = json_object_get(spec, "on");
	const char *type = tp_json_get_str(on, "type");
	const char *name = tp_json_get_str(on, "name");
	int c_priv = tp_sf_result_col(r, "privilege");
	int c_on = tp_sf_result_col(r, future ? "grant_on" : "granted_on");
	int c_name = tp_sf_result_col(r, "name");
	int c_opt = tp_sf_result_col(r, "grant_option");
	int c_grantee = tp_sf_result_col(r, "grantee_name");
	char *want_on = future ? singular(tp_json_get_str(on, "future")) : tp_strdup(type);
	json_t *privs = json_array(), *out = NULL;
	bool all_opt = true;
	bool imported = list_has(json_object_get(spec, "privileges"), "IMPORTED PRIVILEGES");

	for (size_t i = 0; i < tp_sf_result_rows(r); i++) {
		const char *priv = tp_sf_cell(r, i, c_priv);
		const char *opt = tp_sf_cell(r, i, c_opt);
		if (!priv || strcmp(priv, "OWNERSHIP") == 0 ||
		    !type_eq(tp_sf_cell(r, i, c_on), want_on))
			continue;
		if (future) {
			const char *g = tp_sf_cell(r, i, c_grantee);
			if (!g || strcmp(g, role_stored) != 0)
				continue;
		} else if (strcmp(type, "ACCOUNT") != 0 &&
			   !path_eq(tp_sf_cell(r, i, c_name), name)) {
			continue;
		}
		if (imported && strcmp(priv, "USAGE") == 0 && strcmp(type, "DATABASE") == 0)
			priv = "IMPORTED PRIVILEGES"; /* how a shared database's grant reads back */
		if (!list_has(privs, priv))
			json_array_append_new(privs, json_string(priv));
		all_opt = all_opt && opt && strcasecmp(opt, "true") == 0;
	}
	if (json_array_size(privs) > 0) {
		tp_json_array_sort(privs, tp_json_qsort_cmp, true);
		out = json_pack("{s:O,s:O,s:O,s:b}", "role", json_object_get(spec, "role"),
				"privileges", privs, "on", on, "with_grant_option", all_opt);
	}
	json_decref(privs);
	free(want_on);
	return out;
}

/* The SHOW that lists a grant's scope; NULL for grants on ALL (nothing to observe). */
static char *grant_show(const tp_op *op, char **role_stored, bool *future)
{
	const json_t *spec = known_spec(op);
	const json_t *on = json_object_get(spec, "on");
	tp_buf b;
	*future = tp_json_get_str(on, "future") != NULL;
	*role_stored = stored1(tp_json_get_str(spec, "role"), op->address, "role");
	if (!*role_stored || tp_json_get_str(on, "all"))
		return NULL;
	tp_buf_init(&b, 1 << 16);
	if (*future) {
		tp_buf_printf(&b, "SHOW FUTURE GRANTS IN %s ", tp_json_get_str(on, "type"));
		if (tp_sf_put_path(&b, tp_json_get_str(on, "name")) < 0) {
			tp_buf_free(&b);
			return NULL;
		}
	} else {
		tp_buf_puts(&b, "SHOW GRANTS TO ROLE ");
		tp_sf_put_ident(&b, *role_stored);
	}
	return tp_buf_detach(&b);
}

int tp_sf_grant_observe(void *session, const tp_op *ops, size_t n, json_t **out)
{
	tp_sf_session *s = session;
	char **sqls = tp_calloc(n ? n : 1, sizeof(*sqls));
	char **roles = tp_calloc(n ? n : 1, sizeof(*roles));
	bool *future = tp_calloc(n ? n : 1, sizeof(*future));
	bool *done = tp_calloc(n ? n : 1, sizeof(*done));
	int rc = 0;

	for (size_t i = 0; i < n; i++) {
		out[i] = NULL;
		sqls[i] = grant_show(&ops[i], &roles[i], &future[i]);
		if (!sqls[i]) {
			/* ON ALL: a one-time grant; what was applied is all there is to say */
			const json_t *spec = known_spec(&ops[i]);
			done[i] = true;
			if (roles[i] && spec)
				out[i] = json_deep_copy(spec);
		}
	}
	for (size_t i = 0; i < n && rc == 0; i++) {
		tp_sf_result r = {0};
		static const char *const need_to[] = {"privilege", "granted_on", "name",
						      "grant_option", NULL};
		static const char *const need_future[] = {"privilege", "grant_on", "grantee_name",
							  "grant_option", NULL};
		int idx[8];
		int qrc;
		if (done[i])
			continue;
		/* one SHOW per scope, shared by every grant in it */
		qrc = tp_sf_query(s, &r, sqls[i]);
		if (qrc == 0)
			qrc = tp_sf_result_cols(&r, sqls[i], future[i] ? need_future : need_to, idx);
		if (qrc < 0 && qrc != TP_ENOTFOUND) {
			rc = qrc;
			tp_sf_result_clear(&r);
			break;
		}
		for (size_t j = i; j < n; j++) {
			if (done[j] || strcmp(sqls[j], sqls[i]) != 0)
				continue;
			done[j] = true;
			if (qrc == 0)
				out[j] = grant_from_rows(&ops[j], &r, future[j], roles[j]);
		}
		tp_sf_result_clear(&r);
	}
	for (size_t i = 0; i < n; i++) {
		if (rc < 0) {
			json_decref(out[i]);
			out[i] = NULL;
		}
		free(sqls[i]);
		free(roles[i]);
	}
	free(sqls);
	free(roles);
	free(future);
	free(done);
	return rc;
}

/* ---------------------------------------------------------------- grant: writes */

static int grant_stmt(tp_strlist *out, const tp_op *op, const json_t *privs, const char *verb,
		      bool option)
{
	const json_t *spec = op->spec ? op->spec : op->applied;
	char *role = stored1(tp_json_get_str(spec, "role"), op->address, "role");
	bool revoke = strcmp(verb, "REVOKE") == 0;
	tp_buf b;
	int rc = 0;

	if (!role)
		return TP_EINVALID;
	if (json_array_size(privs) == 0) {
		free(role);
		return 0;
	}
	tp_buf_init(&b, 1 << 20);
	tp_buf_printf(&b, "%s ", verb);
	if (revoke && option)
		tp_buf_puts(&b, "GRANT OPTION FOR ");
	put_privs(&b, privs);
	if ((rc = on_clause(&b, json_object_get(spec, "on"), op->address)) < 0) {
		tp_buf_free(&b);
		free(role);
		return rc;
	}
	tp_buf_printf(&b, " %s ROLE ", revoke ? "FROM" : "TO");
	tp_sf_put_ident(&b, role);
	if (!revoke && option)
		tp_buf_puts(&b, " WITH GRANT OPTION");
	tp_strlist_push_owned(out, tp_buf_detach(&b));
	free(role);
	return 0;
}

int tp_sf_grant_create(void *session, const tp_op *op, tp_op_result *out)
{
	tp_strlist stmts = {0};
	int rc = grant_stmt(&stmts, op, json_object_get(op->spec, "privileges"), "GRANT",
			    json_is_true(json_object_get(op->spec, "with_grant_option")));
	if (rc == 0 && (rc = tp_sf_run(session, &stmts, NULL)) < 0)
		rc = with_address(op, rc);
	if (rc == 0)
		out->provider_id = grant_id(op->spec);
	tp_strlist_free(&stmts);
	return rc;
}

/*
 * Brings the grant to op->spec from what is live now (so hand-made changes are corrected
 * too): privileges granted that the spec does not list are revoked, missing ones granted, and
 * the grant option added or taken away.
 */
int tp_sf_grant_update(void *session, const tp_op *op, tp_op_result *out)
{
	const json_t *want = json_object_get(op->spec, "privileges");
	bool want_opt = json_is_true(json_object_get(op->spec, "with_grant_option"));
	json_t *live = NULL, *have, *revoke = NULL, *grant = NULL;
	tp_strlist stmts = {0};
	tp_op probe = *op;
	bool have_opt;
	int rc;

	probe.applied = op->spec;
	if ((rc = tp_sf_grant_observe(session, &probe, 1, &live)) < 0)
		goto done;
	if (tp_json_get_str(json_object_get(op->spec, "on"), "all")) {
		/* not observable: start from what was applied */
		json_decref(live);
		live = op->applied ? json_deep_copy(op->applied) : NULL;
	}
	have = json_object_get(live, "privileges");
	have_opt = json_is_true(json_object_get(live, "with_grant_option"));
	revoke = list_minus(have, want);
	grant = want_opt && !have_opt ? json_deep_copy(want) : list_minus(want, have);
	if ((rc = grant_stmt(&stmts, op, revoke, "REVOKE", false)) < 0 ||
	    (rc = grant_stmt(&stmts, op, grant, "GRANT", want_opt)) < 0)
		goto done;
	if (!want_opt && have_opt) {
		json_t *both = list_minus(want, grant); /* held already, with the option */
		rc = grant_stmt(&stmts, op, both, "REVOKE", true);
		json_decref(both);
		if (rc < 0)
			goto done;
	}
	if ((rc = tp_sf_run(session, &stmts, NULL)) < 0)
		rc = with_address(op, rc);
	if (rc == 0)
		out->provider_id = grant_id(op->spec);
done:
	json_decref(live);
	json_decref(revoke);
	json_decref(grant);
	tp_strlist_free(&stmts);
	return rc;
}

int tp_sf_grant_remove(void *session, const tp_op *op)
{
	tp_strlist stmts = {0};
	tp_op o = *op;
	int rc;
	if (!op->applied)
		return 0;
	o.spec = NULL; /* revoke what was applied */
	rc = grant_stmt(&stmts, &o, json_object_get(op->applied, "privileges"), "REVOKE", false);
	if (rc == 0) {
		rc = tp_sf_run(session, &stmts, NULL);
		if (rc == TP_ENOTFOUND)
			rc = 0; /* the role or the object is gone, and the grant with it */
		else if (rc < 0)
			rc = with_address(op, rc);
	}
	tp_strlist_free(&stmts);
	return rc;
}

int tp_sf_grant_adopt(void *session, const tp_op *op, tp_op_result *out)
{
	json_t *live = NULL;
	int rc = tp_sf_grant_observe(session, op, 1, &live);
	if (rc == 0 && !live)
		rc = tp_error_set(TP_ENOTFOUND, "%s: not granted", op->address);
	if (rc == 0)
		out->provider_id = grant_id(known_spec(op));
	json_decref(live);
	return rc;
}

/* ---------------------------------------------------------------- role_grant */

/* role, grantee type (ROLE/USER) and grantee as stored names. */
static int role_grant_parts(const tp_op *op, const json_t *spec, char **role, const char **to,
			    char **grantee)
{
	const char *to_role = tp_json_get_str(spec, "to_role");
	const char *to_user = tp_json_get_str(spec, "to_user");
	*role = stored1(tp_json_get_str(spec, "role"), op->address, "role");
	*to = to_role ? "ROLE" : "USER";
	*grantee = stored1(to_role ? to_role : to_user, op->address, to_role ? "to_role"
									       : "to_user");
	if (!*role || !*grantee) {
		free(*role);
		free(*grantee);
		*role = *grantee = NULL;
		return TP_EINVALID;
	}
	return 0;
}

int tp_sf_role_grant_observe(void *session, const tp_op *ops, size_t n, json_t **out)
{
	tp_sf_session *s = session;
	bool *done = tp_calloc(n ? n : 1, sizeof(*done));
	int rc = 0;

	for (size_t i = 0; i < n; i++)
		out[i] = NULL;
	for (size_t i = 0; i < n && rc == 0; i++) {
		char *role = NULL, *grantee = NULL;
		const char *to;
		tp_sf_result r = {0};
		tp_buf b;
		int qrc;
		static const char *const need[] = {"granted_to", "grantee_name", NULL};
		int idx[4];
		if (done[i])
			continue;
		if (role_grant_parts(&ops[i], known_spec(&ops[i]), &role, &to, &grantee) < 0) {
			done[i] = true;
			continue;
		}
		tp_buf_init(&b, 1 << 16);
		tp_buf_puts(&b, "SHOW GRANTS OF ROLE ");
		tp_sf_put_ident(&b, role);
		qrc = tp_sf_query(s, &r, tp_buf_cstr(&b));
		if (qrc == 0)
			qrc = tp_sf_result_cols(&r, tp_buf_cstr(&b), need, idx);
		tp_buf_free(&b);
		if (qrc < 0 && qrc != TP_ENOTFOUND) {
			rc = qrc;
		} else {
			/* every role_grant of the same role from this one SHOW */
			for (size_t j = i; j < n; j++) {
				char *rj = NULL, *gj = NULL;
				const char *tj;
				if (done[j] || role_grant_parts(&ops[j], known_spec(&ops[j]), &rj,
								&tj, &gj) < 0)
					continue;
				if (strcmp(rj, role) == 0) {
					done[j] = true;
					for (size_t row = 0; qrc == 0 && row < tp_sf_result_rows(&r);
					     row++) {
						const char *gt = tp_sf_cell(&r, row, idx[0]);
						const char *gn = tp_sf_cell(&r, row, idx[1]);
						if (gt && gn && strcmp(gt, tj) == 0 &&
						    strcmp(gn, gj) == 0) {
							const json_t *sp = known_spec(&ops[j]);
							out[j] = json_pack(
								"{s:O}", "role",
								json_object_get(sp, "role"));
							json_object_set(
								out[j],
								strcmp(tj, "ROLE") == 0 ? "to_role"
											: "to_user",
								json_object_get(
									sp, strcmp(tj, "ROLE") == 0
										    ? "to_role"
										    : "to_user"));
							break;
						}
					}
				}
				free(rj);
				free(gj);
			}
		}
		tp_sf_result_clear(&r);
		free(role);
		free(grantee);
	}
	if (rc < 0)
		for (size_t i = 0; i < n; i++) {
			json_decref(out[i]);
			out[i] = NULL;
		}
	free(done);
	return rc;
}

static int role_grant_stmt(tp_strlist *out, const tp_op *op, const json_t *spec, bool grant)
{
	char *role = NULL, *grantee = NULL;
	const char *to;
	tp_buf b;
	if (role_grant_parts(op, spec, &role, &to, &grantee) < 0)
		return TP_EINVALID;
	tp_buf_init(&b, 1 << 16);
	tp_buf_printf(&b, "%s ROLE ", grant ? "GRANT" : "REVOKE");
	tp_sf_put_ident(&b, role);
	tp_buf_printf(&b, " %s %s ", grant ? "TO" : "FROM", to);
	tp_sf_put_ident(&b, grantee);
	tp_strlist_push_owned(out, tp_buf_detach(&b));
	free(role);
	free(grantee);
	return 0;
}

static char *role_grant_id(const json_t *spec)
{
	const char *to_role = tp_json_get_str(spec, "to_role");
	return tp_sprintf("%s->%s %s", tp_json_get_str(spec, "role"), to_role ? "ROLE" : "USER",
			  to_role ? to_role : tp_json_get_str(spec, "to_user"));
}

int tp_sf_role_grant_create(void *session, const tp_op *op, tp_op_result *out)
{
	tp_strlist stmts = {0};
	int rc = role_grant_stmt(&stmts, op, op->spec, true);
	if (rc == 0 && (rc = tp_sf_run(session, &stmts, NULL)) < 0)
		rc = with_address(op, rc);
	if (rc == 0)
		out->provider_id = role_grant_id(op->spec);
	tp_strlist_free(&stmts);
	return rc;
}

int tp_sf_role_grant_update(void *session, const tp_op *op, tp_op_result *out)
{
	/* every field is immutable: a change is a replace. Granting again is harmless and
	 * restores a grant revoked by hand (self_heal). */
	return tp_sf_role_grant_create(session, op, out);
}

int tp_sf_role_grant_remove(void *session, const tp_op *op)
{
	tp_strlist stmts = {0};
	int rc;
	if (!op->applied)
		return 0;
	rc = role_grant_stmt(&stmts, op, op->applied, false);
	if (rc == 0) {
		rc = tp_sf_run(session, &stmts, NULL);
		if (rc == TP_ENOTFOUND)
			rc = 0; /* the role, user or grant is gone already */
		else if (rc < 0)
			rc = with_address(op, rc);
	}
	tp_strlist_free(&stmts);
	return rc;
}

int tp_sf_role_grant_adopt(void *session, const tp_op *op, tp_op_result *out)
{
	json_t *live = NULL;
	int rc = tp_sf_role_grant_observe(session, op, 1, &live);
	if (rc == 0 && !live)
		rc = tp_error_set(TP_ENOTFOUND, "%s: not granted", op->address);
	if (rc == 0)
		out->provider_id = role_grant_id(known_spec(op));
	json_decref(live);
	return rc;
}
