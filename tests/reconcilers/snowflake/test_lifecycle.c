/*
 * `tapestry apply` on snowflake resources against the fake, through the real binary: create,
 * a no-op that only reads (one SHOW per kind and scope, no warehouse resumed, zero writes), a
 * property change that is one ALTER, drift made behind Tapestry's back (reported; corrected
 * only with self_heal), and deletion in reverse dependency order — with the round trips
 * counted from the fake's log. Also: objects Tapestry did not create are neither taken over
 * nor dropped, identifiers with quotes, dots and unicode round-trip without diffs, a changed
 * model re-creates its view, and a SQL error reaches the user with Snowflake's code.
 */
#include "sf_test.h"

static char *dir, *pdir, *db;
static sf_fake F;

static void setup(void)
{
	EVP_PKEY *k;
	dir = ts_tmpdir();
	pdir = tp_sprintf("%s/p", dir);
	db = tp_sprintf("%s/state.db", dir);
	k = sf_keygen(dir, "key", NULL, 2048);
	EVP_PKEY_free(k);
	sf_fake_start(&F, dir, NULL);
}

static void teardown(void)
{
	sf_fake_stop(&F);
	ts_rmtree(dir);
	free(dir);
	free(pdir);
	free(db);
}

TestSuite(sf_lifecycle, .init = setup, .fini = teardown, .timeout = 240);

/* A local.file keeps the pipeline non-empty when every snowflake resource is removed. */
static void resources(const char *yaml)
{
	char *anchor = tp_sprintf("kind: local.file\nname: anchor\nspec: {path: %s/anchor.txt, "
				  "content: x}\n---\n%s", dir, yaml);
	ts_write(pdir, "resources/r.yaml", anchor);
	free(anchor);
}

static ts_result apply(void)
{
	return sf_tapestry(&F, "apply", pdir, db, "--auto-approve", NULL);
}

static void expect_ok(ts_result *r, const char *what)
{
	cr_assert_eq(r->status, 0, "%s: exit %d\nstdout:\n%s\nstderr:\n%s", what, r->status,
		     r->out, r->err);
}

static const char *WH_SIZE = "@SIZE@";

static const char *PIPELINE =
	"kind: snowflake.warehouse\nname: loading\n"
	"spec: {name: LOADING, warehouse_size: @SIZE@, auto_suspend: 60, comment: Loads}\n---\n"
	"kind: snowflake.database\nname: raw\nspec: {name: RAW, comment: Raw data}\n---\n"
	"kind: snowflake.schema\nname: zoom\n"
	"spec: {name: ZOOM, database: \"${snowflake.database/raw.name}\"}\n---\n"
	"kind: snowflake.role\nname: loader\nspec: {name: LOADER, comment: Loads}\n---\n"
	"kind: snowflake.user\nname: svc\n"
	"spec: {name: SVC, type: SERVICE, comment: a service,\n"
	"  default_role: \"${snowflake.role/loader.name}\",\n"
	"  default_warehouse: \"${snowflake.warehouse/loading.name}\",\n"
	"  default_namespace: \"${snowflake.schema/zoom.fqn}\"}\n---\n"
	"kind: snowflake.role_grant\nname: loader-svc\n"
	"spec: {role: \"${snowflake.role/loader.name}\", to_user: \"${snowflake.user/svc.name}\"}\n"
	"---\n"
	"kind: snowflake.grant\nname: loader-wh\n"
	"spec: {role: \"${snowflake.role/loader.name}\", privileges: [usage],\n"
	"  on: {type: warehouse, name: \"${snowflake.warehouse/loading.name}\"}}\n---\n"
	"kind: snowflake.grant\nname: loader-zoom\n"
	"spec: {role: \"${snowflake.role/loader.name}\", privileges: [CREATE TABLE, USAGE],\n"
	"  on: {type: SCHEMA, name: \"${snowflake.schema/zoom.fqn}\"}}\n---\n"
	"kind: snowflake.grant\nname: loader-future\n"
	"spec: {role: \"${snowflake.role/loader.name}\", privileges: [SELECT],\n"
	"  on: {type: SCHEMA, name: \"${snowflake.schema/zoom.fqn}\", future: tables}}\n---\n"
	"kind: snowflake.view\nname: v\n"
	"spec: {name: V, database: \"${snowflake.schema/zoom.database}\",\n"
	"  schema: \"${snowflake.schema/zoom.name}\", sql: models/v.sql, comment: A view}\n---\n"
	"kind: snowflake.grant\nname: loader-v\n"
	"spec: {role: \"${snowflake.role/loader.name}\", privileges: [SELECT],\n"
	"  on: {type: VIEW, name: \"${snowflake.view/v.fqn}\"}}\n";

static void write_pipeline(const char *size, const char *settings)
{
	char *text = ts_replace(PIPELINE, WH_SIZE, size);
	sf_pipeline(pdir, &F, settings);
	resources(text);
	free(text);
}

static json_t *wh(json_t *cat, const char *name)
{
	return json_object_get(json_object_get(cat, "warehouses"), name);
}

static bool has_grant(json_t *cat, const char *priv, const char *on, const char *name,
		      const char *role)
{
	size_t i;
	json_t *g;
	json_array_foreach(json_object_get(cat, "grants"), i, g)
		if (strcmp(tp_json_get_str(g, "privilege"), priv) == 0 &&
		    strcmp(tp_json_get_str(g, "granted_on"), on) == 0 &&
		    strcmp(tp_json_get_str(g, "name"), name) == 0 &&
		    strcmp(tp_json_get_str(g, "grantee"), role) == 0)
			return true;
	return false;
}

Test(sf_lifecycle, create_noop_change_drift_self_heal_delete)
{
	ts_result r;
	json_t *log, *stmts, *cat, *e;
	size_t i;

	ts_write(pdir, "models/v.sql", "-- the model; it has a comment\nSELECT 1 AS ONE\n");
	write_pipeline("XSMALL", "max_prune: 100%");

	/* ---- create: 11 objects in a handful of round trips (dependency waves) */
	r = apply();
	expect_ok(&r, "create");
	ts_result_free(&r);
	log = sf_log(&F);
	cr_assert_eq(sf_write_statements(log), 11);
	cr_assert_leq(sf_write_requests(log), 6, "batched: %zu write requests",
		      sf_write_requests(log));
	cat = sf_catalog(&F);
	cr_assert_str_eq(tp_json_get_str(wh(cat, "LOADING"), "comment"),
			 "Loads [managed by tapestry:sftest:snowflake.warehouse/loading]");
	cr_assert(has_grant(cat, "CREATE TABLE", "SCHEMA", "RAW.ZOOM", "LOADER"));
	cr_assert(has_grant(cat, "SELECT", "VIEW", "RAW.ZOOM.V", "LOADER"));
	json_decref(cat);
	json_decref(log);

	/* ---- no-op: reads only, one SHOW per kind and scope, no warehouse resumed */
	sf_log_reset(&F);
	r = apply();
	expect_ok(&r, "no-op");
	cr_assert(strstr(r.out, "No changes"), "%s", r.out);
	ts_result_free(&r);
	log = sf_log(&F);
	cr_assert_eq(sf_write_statements(log), 0);
	stmts = sf_statements(log);
	cr_assert_eq(json_array_size(stmts), 9, "one SHOW per kind and scope, got %zu",
		     json_array_size(stmts));
	cr_assert_eq(sf_count_prefix(stmts, "SHOW "), 9);
	cr_assert_eq(sf_count_prefix(stmts, "SHOW GRANTS TO ROLE"), 1, "grants share it");
	json_array_foreach(log, i, e)
		cr_assert_null(json_object_get(e, "resumed"), "SHOW never resumes a warehouse");
	json_decref(stmts);
	json_decref(log);

	/* ---- one property changed in Git: one ALTER */
	sf_log_reset(&F);
	write_pipeline("SMALL", "max_prune: 100%");
	r = apply();
	expect_ok(&r, "update");
	cr_assert(strstr(r.out, "1 changed"), "%s", r.out);
	ts_result_free(&r);
	log = sf_log(&F);
	stmts = sf_statements(log);
	cr_assert_eq(sf_write_statements(log), 1);
	cr_assert_eq(sf_count_prefix(stmts, "ALTER WAREHOUSE \"LOADING\" SET"), 1);
	cr_assert(strstr(json_string_value(json_array_get(stmts, sf_find(stmts, "ALTER"))),
			 "WAREHOUSE_SIZE = SMALL"));
	cat = sf_catalog(&F);
	cr_assert_str_eq(tp_json_get_str(wh(cat, "LOADING"), "warehouse_size"), "SMALL");
	json_decref(cat);
	json_decref(stmts);
	json_decref(log);

	/* ---- drift behind Tapestry's back: reported, not corrected without self_heal */
	sf_sql(&F, "ALTER WAREHOUSE LOADING SET WAREHOUSE_SIZE = 'X-LARGE'");
	sf_sql(&F, "REVOKE CREATE TABLE ON SCHEMA RAW.ZOOM FROM ROLE LOADER");
	sf_log_reset(&F);
	r = sf_tapestry(&F, "plan", pdir, db, "--refresh", NULL);
	cr_assert_eq(r.status, 0, "%s%s", r.out, r.err);
	cr_assert(strstr(r.out, "rift"), "%s", r.out);
	cr_assert(strstr(r.out, "snowflake.warehouse"), "%s", r.out);
	cr_assert(strstr(r.out, "XLARGE") || strstr(r.out, "X-Large"), "%s", r.out);
	cr_assert(strstr(r.out, "snowflake.grant"), "%s", r.out);
	ts_result_free(&r);
	r = apply();
	expect_ok(&r, "apply with drift, self_heal off");
	ts_result_free(&r);
	log = sf_log(&F);
	cr_assert_eq(sf_write_statements(log), 0, "drift is only reported");
	json_decref(log);
	cat = sf_catalog(&F);
	cr_assert_str_eq(tp_json_get_str(wh(cat, "LOADING"), "warehouse_size"), "XLARGE");
	json_decref(cat);

	/* ---- self_heal: corrected */
	sf_log_reset(&F);
	write_pipeline("SMALL", "max_prune: 100%, self_heal: true");
	r = apply();
	expect_ok(&r, "self-heal");
	ts_result_free(&r);
	log = sf_log(&F);
	stmts = sf_statements(log);
	cr_assert_eq(sf_count_prefix(stmts, "ALTER WAREHOUSE \"LOADING\" SET"), 1);
	cr_assert_eq(sf_count_prefix(stmts, "GRANT CREATE TABLE ON SCHEMA \"RAW\".\"ZOOM\""), 1);
	cr_assert_eq(sf_write_statements(log), 2);
	json_decref(stmts);
	json_decref(log);
	cat = sf_catalog(&F);
	cr_assert_str_eq(tp_json_get_str(wh(cat, "LOADING"), "warehouse_size"), "SMALL");
	cr_assert(has_grant(cat, "CREATE TABLE", "SCHEMA", "RAW.ZOOM", "LOADER"));
	json_decref(cat);
	sf_log_reset(&F);
	r = apply();
	expect_ok(&r, "converged");
	cr_assert(strstr(r.out, "No changes"), "%s", r.out);
	ts_result_free(&r);

	/* ---- delete everything: dependants first */
	sf_log_reset(&F);
	resources("");
	r = apply();
	expect_ok(&r, "delete");
	cr_assert(strstr(r.out, "11 destroyed"), "%s", r.out);
	ts_result_free(&r);
	log = sf_log(&F);
	stmts = sf_statements(log);
	{
		ssize_t rev_v = sf_find(stmts, "REVOKE SELECT ON VIEW");
		ssize_t drop_v = sf_find(stmts, "DROP VIEW");
		ssize_t drop_s = sf_find(stmts, "DROP SCHEMA");
		ssize_t drop_d = sf_find(stmts, "DROP DATABASE");
		ssize_t rev_u = sf_find(stmts, "REVOKE ROLE \"LOADER\" FROM USER");
		ssize_t drop_u = sf_find(stmts, "DROP USER");
		ssize_t drop_r = sf_find(stmts, "DROP ROLE");
		ssize_t drop_w = sf_find(stmts, "DROP WAREHOUSE");
		ssize_t rev_w = sf_find(stmts, "REVOKE USAGE ON WAREHOUSE");
		cr_assert(rev_v >= 0 && drop_v >= 0 && drop_s >= 0 && drop_d >= 0 && rev_u >= 0 &&
			  drop_u >= 0 && drop_r >= 0 && drop_w >= 0 && rev_w >= 0);
		cr_assert_lt(rev_v, drop_v);
		cr_assert_lt(drop_v, drop_s);
		cr_assert_lt(drop_s, drop_d);
		cr_assert_lt(rev_u, drop_u);
		cr_assert_lt(drop_u, drop_r);
		cr_assert_lt(drop_u, drop_w);
		cr_assert_lt(rev_w, drop_w);
		cr_assert_lt(rev_w, drop_r);
	}
	json_decref(stmts);
	json_decref(log);
	cat = sf_catalog(&F);
	cr_assert_null(wh(cat, "LOADING"));
	cr_assert_null(json_object_get(json_object_get(cat, "databases"), "RAW"));
	cr_assert_null(json_object_get(json_object_get(cat, "roles"), "LOADER"));
	cr_assert_null(json_object_get(json_object_get(cat, "users"), "SVC"));
	cr_assert_not_null(json_object_get(json_object_get(cat, "roles"), "TAPESTRY_ADMIN"));
	json_decref(cat);
}

Test(sf_lifecycle, objects_tapestry_did_not_create_are_neither_taken_nor_dropped)
{
	ts_result r;
	json_t *cat;

	sf_pipeline(pdir, &F, "max_prune: 100%");
	sf_sql(&F, "CREATE ROLE ANALYST COMMENT = 'made by hand'");
	resources("kind: snowflake.role\nname: analyst\nspec: {name: ANALYST}\n---\n"
		  "kind: snowflake.role\nname: ours\nspec: {name: OURS, comment: ours}\n");
	r = apply();
	cr_assert_eq(r.status, 1, "%s%s", r.out, r.err);
	cr_assert(strstr(r.out, "not managed by this pipeline") ||
		  strstr(r.err, "not managed by this pipeline"), "%s%s", r.out, r.err);
	cr_assert(strstr(r.out, "002002") || strstr(r.err, "002002"), "%s%s", r.out, r.err);
	ts_result_free(&r);
	cat = sf_catalog(&F);
	cr_assert_str_eq(tp_json_get_str(json_object_get(json_object_get(cat, "roles"),
							 "ANALYST"),
					 "comment"),
			 "made by hand");
	json_decref(cat);

	/* our role loses its marker by hand: removing it from Git must not drop it */
	sf_sql(&F, "ALTER ROLE OURS SET COMMENT = 'taken over'");
	resources("");
	r = apply();
	cr_assert_eq(r.status, 1, "%s%s", r.out, r.err);
	cr_assert(strstr(r.out, "ownership marker") || strstr(r.err, "ownership marker"), "%s%s",
		  r.out, r.err);
	ts_result_free(&r);
	cat = sf_catalog(&F);
	cr_assert_not_null(json_object_get(json_object_get(cat, "roles"), "OURS"));
	json_decref(cat);
}

Test(sf_lifecycle, quoted_dotted_and_unicode_identifiers_round_trip)
{
	ts_result r;
	json_t *cat, *log, *dbs, *d;

	sf_pipeline(pdir, &F, "max_prune: 100%");
	ts_write(pdir, "models/q.sql", "SELECT 'it''s' AS \"Quote\"\n");
	resources("kind: snowflake.database\nname: odd\n"
		  "spec: {name: '\"Ünïcode \"\"db\"\".v2\"', comment: \"it's \\\\ odd\"}\n---\n"
		  "kind: snowflake.schema\nname: dotted\n"
		  "spec: {name: '\"lower.case\"', database: \"${snowflake.database/odd.name}\"}\n"
		  "---\n"
		  "kind: snowflake.role\nname: quoted\nspec: {name: '\"Role \"\"Q\"\"\"'}\n---\n"
		  "kind: snowflake.grant\nname: g\n"
		  "spec: {role: \"${snowflake.role/quoted.name}\", privileges: [USAGE],\n"
		  "  on: {type: SCHEMA, name: \"${snowflake.schema/dotted.fqn}\"}}\n---\n"
		  "kind: snowflake.view\nname: q\n"
		  "spec: {name: '\"v-1\"', database: \"${snowflake.schema/dotted.database}\",\n"
		  "  schema: \"${snowflake.schema/dotted.name}\", sql: models/q.sql}\n---\n"
		  "kind: snowflake.role\nname: plain\nspec: {name: '\"PLAIN\"'}\n");
	r = apply();
	expect_ok(&r, "create");
	ts_result_free(&r);
	cat = sf_catalog(&F);
	dbs = json_object_get(cat, "databases");
	d = json_object_get(dbs, "Ünïcode \"db\".v2");
	cr_assert_not_null(d, "stored name with its quotes, dot and accents");
	cr_assert_str_eq(tp_json_get_str(d, "comment"),
			 "it's \\ odd [managed by tapestry:sftest:snowflake.database/odd]");
	cr_assert_not_null(json_object_get(json_object_get(d, "schemas"), "lower.case"));
	cr_assert_not_null(json_object_get(json_object_get(cat, "roles"), "Role \"Q\""));
	cr_assert_not_null(json_object_get(json_object_get(cat, "roles"), "PLAIN"),
			   "\"PLAIN\" is the same object as PLAIN");
	cr_assert(has_grant(cat, "USAGE", "SCHEMA", "\"Ünïcode \"\"db\"\".v2\".\"lower.case\"",
			    "Role \"Q\""));
	json_decref(cat);

	sf_log_reset(&F);
	r = apply();
	expect_ok(&r, "no-op");
	cr_assert(strstr(r.out, "No changes"), "quoting must not show as a diff:\n%s", r.out);
	ts_result_free(&r);
	log = sf_log(&F);
	cr_assert_eq(sf_write_statements(log), 0);
	json_decref(log);

	resources("");
	r = apply();
	expect_ok(&r, "delete");
	ts_result_free(&r);
	cat = sf_catalog(&F);
	cr_assert_eq(json_object_size(json_object_get(cat, "databases")), 0);
	cr_assert_null(json_object_get(json_object_get(cat, "roles"), "Role \"Q\""));
	json_decref(cat);
}

Test(sf_lifecycle, changed_model_recreates_the_view_and_hand_edits_are_drift)
{
	ts_result r;
	json_t *log, *stmts, *cat, *v;
	const char *base = "kind: snowflake.database\nname: a\nspec: {name: A}\n---\n"
			   "kind: snowflake.schema\nname: m\n"
			   "spec: {name: M, database: \"${snowflake.database/a.name}\"}\n---\n"
			   "kind: snowflake.view\nname: email-model\n"
			   "spec: {name: EMAIL_MODEL, database: \"${snowflake.schema/m.database}\",\n"
			   "  schema: \"${snowflake.schema/m.name}\", sql: models/email.sql}\n";

	sf_pipeline(pdir, &F, "max_prune: 100%");
	ts_write(pdir, "models/email.sql", "SELECT 1 AS EMAIL;\n");
	resources(base);
	r = apply();
	expect_ok(&r, "create");
	ts_result_free(&r);

	/* the model changes in Git: the view is re-created with the new query */
	ts_write(pdir, "models/email.sql", "SELECT 2 AS EMAIL\n");
	sf_log_reset(&F);
	r = sf_tapestry(&F, "plan", pdir, db, NULL, NULL);
	cr_assert(strstr(r.out, "-/+") && strstr(r.out, "snowflake.view"), "%s", r.out);
	ts_result_free(&r);
	r = apply();
	expect_ok(&r, "replace");
	ts_result_free(&r);
	log = sf_log(&F);
	stmts = sf_statements(log);
	cr_assert_lt(sf_find(stmts, "DROP VIEW"), sf_find(stmts, "CREATE VIEW"));
	json_decref(stmts);
	json_decref(log);
	cat = sf_catalog(&F);
	v = json_object_get(json_object_get(json_object_get(json_object_get(json_object_get(
		json_object_get(cat, "databases"), "A"), "schemas"), "M"), "views"),
			    "EMAIL_MODEL");
	cr_assert(strstr(tp_json_get_str(v, "text"), "SELECT 2 AS EMAIL"));

	/* someone replaces the query by hand (keeping the comment): drift on sql, re-created
	 * with self_heal */
	{
		tp_buf b;
		tp_buf_init(&b, 1 << 16);
		tp_buf_puts(&b, "CREATE OR REPLACE VIEW A.M.EMAIL_MODEL COMMENT = ");
		tp_sf_put_literal(&b, tp_json_get_str(v, "comment"));
		tp_buf_puts(&b, " AS SELECT 3 AS EMAIL");
		json_decref(cat);
		sf_sql(&F, tp_buf_cstr(&b));
		tp_buf_free(&b);
	}
	r = sf_tapestry(&F, "plan", pdir, db, "--refresh", NULL);
	cr_assert(strstr(r.out, "rift") && strstr(r.out, "sql"), "%s", r.out);
	ts_result_free(&r);
	sf_pipeline(pdir, &F, "max_prune: 100%, self_heal: true");
	r = apply();
	expect_ok(&r, "heal");
	ts_result_free(&r);
	cat = sf_catalog(&F);
	v = json_object_get(json_object_get(json_object_get(json_object_get(json_object_get(
		json_object_get(cat, "databases"), "A"), "schemas"), "M"), "views"),
			    "EMAIL_MODEL");
	cr_assert(strstr(tp_json_get_str(v, "text"), "SELECT 2 AS EMAIL"), "%s",
		  tp_json_get_str(v, "text"));
	cr_assert(strstr(tp_json_get_str(v, "comment"), "[managed by tapestry:"));
	json_decref(cat);
	r = apply();
	expect_ok(&r, "converged");
	cr_assert(strstr(r.out, "No changes"), "%s", r.out);
	ts_result_free(&r);

	/* replaced by hand without the comment: the marker is gone, so Tapestry reports the
	 * drift but will not drop a view it cannot prove it owns */
	sf_sql(&F, "CREATE OR REPLACE VIEW A.M.EMAIL_MODEL AS SELECT 4 AS EMAIL");
	r = apply();
	cr_assert_eq(r.status, 1, "%s%s", r.out, r.err);
	cr_assert(strstr(r.out, "ownership marker"), "%s", r.out);
	ts_result_free(&r);
}

Test(sf_lifecycle, sql_errors_reach_the_user_with_snowflakes_code)
{
	ts_result r;
	sf_pipeline(pdir, &F, "max_prune: 100%");
	resources("kind: snowflake.role\nname: r\nspec: {name: R}\n---\n"
		  "kind: snowflake.grant\nname: bad\n"
		  "spec: {role: \"${snowflake.role/r.name}\", privileges: [CREATE TABLE],\n"
		  "  on: {type: WAREHOUSE, name: COMPUTE_WH}}\n");
	r = apply();
	cr_assert_eq(r.status, 1, "%s%s", r.out, r.err);
	cr_assert(strstr(r.out, "003011") || strstr(r.err, "003011"), "%s%s", r.out, r.err);
	cr_assert(strstr(r.out, "Invalid privilege CREATE TABLE") ||
		  strstr(r.err, "Invalid privilege CREATE TABLE"), "%s%s", r.out, r.err);
	cr_assert(strstr(r.out, "snowflake.role/r: Creation complete"), "the role was created: "
		  "%s", r.out);
	ts_result_free(&r);
}
