/*
 * The case study's Snowflake set-up — examples/kickstart's warehouse and transformation
 * documents, copied as they are into a pipeline pointed at the fake — created by
 * `tapestry apply`: 37 objects (what the original system's 34 set-up statements did, plus
 * the grant on the model) in a few multi-statement round trips instead of one per statement,
 * then a no-op that costs one SHOW per kind and scope and writes nothing. The only edits to
 * the documents are the ones a test without AWS and Airbyte needs: the Grouparoo password
 * comes from the environment instead of SSM, and the view does not wait for the Airbyte
 * connections.
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
	sf_fake_start(&F, dir, "--account", "RAINSHIELD-ANALYTICS", NULL);
}

static void teardown(void)
{
	sf_fake_stop(&F);
	ts_rmtree(dir);
	free(dir);
	free(pdir);
	free(db);
}

TestSuite(sf_kickstart, .init = setup, .fini = teardown, .timeout = 240);

#define PASSWORD "Grouparoo-Pa55word!"

/* text with `from` replaced by `to`, failing the test when the example no longer has it. */
static char *edit(char *text, const char *from, const char *to)
{
	char *out;
	cr_assert(strstr(text, from), "examples/kickstart changed: \"%s\" not found", from);
	out = ts_replace(text, from, to);
	free(text);
	return out;
}

static void copy_kickstart(void)
{
	char *src = ts_source_path("examples/kickstart");
	char *wh = ts_read_in(src, "resources/warehouse.yaml");
	char *tr = ts_read_in(src, "resources/transformation.yaml");
	char *model = ts_read_in(src, "models/email_model.sql");
	char *settings;
	cr_assert(wh && tr && model, "examples/kickstart is missing files");
	wh = edit(wh, "${secret:ssm:/rainshield/snowflake/grouparoo_password}",
		  "${secret:env:SF_GROUPAROO_PASSWORD}");
	wh = edit(wh, "depends_on: [aws.ssm_parameter/snowflake-grouparoo-password]\n", "");
	tr = edit(tr, "  - airbyte.connection/zoom-to-snowflake\n", "");
	tr = edit(tr, "  - airbyte.connection/salesforce-to-snowflake\n", "");
	ts_write(pdir, "resources/warehouse.yaml", wh);
	ts_write(pdir, "resources/transformation.yaml", tr);
	ts_write(pdir, "models/email_model.sql", model);
	settings = tp_sprintf("pipeline: rainshield\nsettings: {concurrency: 8, max_prune: 25%%}\n"
			      "providers:\n  snowflake:\n    account: RAINSHIELD-ANALYTICS\n"
			      "    user: TAPESTRY\n    role: TAPESTRY_ADMIN\n"
			      "    private_key: \"${secret:file:%s}\"\n", F.key);
	ts_write(pdir, "tapestry.yaml", settings);
	free(settings);
	free(wh);
	free(tr);
	free(model);
	free(src);
}

Test(sf_kickstart, case_study_created_in_few_round_trips_then_no_op)
{
	ts_result r;
	json_t *log, *stmts, *cat, *e, *users, *roles;
	char *text;
	size_t i;

	setenv("SF_GROUPAROO_PASSWORD", PASSWORD, 1);
	copy_kickstart();
	r = sf_tapestry(&F, "apply", pdir, db, "--auto-approve", NULL);
	cr_assert_eq(r.status, 0, "exit %d\n%s\n%s", r.status, r.out, r.err);
	cr_assert(strstr(r.out, "37 added"), "%s", r.out);
	cr_assert(!strstr(r.out, PASSWORD) && !strstr(r.err, PASSWORD));
	ts_result_free(&r);

	log = sf_log(&F);
	stmts = sf_statements(log);
	cr_assert_eq(sf_write_statements(log), 37);
	/* waves of the dependency graph, each one multi-statement request (concurrency 8) */
	cr_assert_leq(sf_write_requests(log), 10, "%zu write round trips for 37 statements",
		      sf_write_requests(log));
	cr_assert_leq(sf_posts(log), 10);
	cr_assert_eq(sf_count_prefix(stmts, "CREATE VIEW \"ANALYTICS\".\"MODELS\".\"EMAIL_MODEL\""),
		     1);
	text = ts_read(F.log);
	cr_assert(!strstr(text, PASSWORD), "the fake's log blanks passwords; none was sent "
		  "anywhere else");
	free(text);
	json_decref(stmts);
	json_decref(log);

	cat = sf_catalog(&F);
	users = json_object_get(cat, "users");
	roles = json_object_get(cat, "roles");
	cr_assert(json_object_get(json_object_get(cat, "warehouses"), "LOADING"));
	cr_assert(json_object_get(json_object_get(cat, "warehouses"), "TRANSFORMING"));
	cr_assert(json_is_true(json_object_get(json_object_get(users, "GROUPAROO_USER"),
					       "has_password")));
	cr_assert_str_eq(tp_json_get_str(json_object_get(users, "GROUPAROO_USER"),
					 "default_namespace"),
			 "ANALYTICS.MODELS");
	cr_assert(tp_json_get_str(json_object_get(users, "AIRBYTE_USER"), "rsa_public_key"));
	cr_assert(json_object_get(roles, "LOADER") && json_object_get(roles, "TRANSFORMER") &&
		  json_object_get(roles, "REPORTER"));
	{
		json_t *v = json_object_get(json_object_get(json_object_get(json_object_get(
			json_object_get(json_object_get(cat, "databases"), "ANALYTICS"), "schemas"),
			"MODELS"), "views"), "EMAIL_MODEL");
		cr_assert_not_null(v);
		cr_assert(strstr(tp_json_get_str(v, "text"), "QUALIFY ROW_NUMBER() OVER ("));
	}
	json_decref(cat);

	/* nothing changed: reads only, one SHOW per kind and scope, no warehouse resumed */
	sf_log_reset(&F);
	r = sf_tapestry(&F, "apply", pdir, db, "--auto-approve", NULL);
	cr_assert_eq(r.status, 0, "%s\n%s", r.out, r.err);
	cr_assert(strstr(r.out, "No changes"), "%s", r.out);
	ts_result_free(&r);
	log = sf_log(&F);
	stmts = sf_statements(log);
	cr_assert_eq(sf_write_statements(log), 0);
	cr_assert_eq(sf_count_prefix(stmts, "SHOW "), json_array_size(stmts));
	/* warehouses, databases, roles, users: 1 each; schemas in RAW and ANALYTICS; grants to
	 * LOADER, TRANSFORMER, REPORTER; future grants in 3 schemas; grants of 3 roles; views
	 * in ANALYTICS.MODELS */
	cr_assert_eq(json_array_size(stmts), 16, "%zu SHOW requests", json_array_size(stmts));
	json_array_foreach(log, i, e)
		cr_assert_null(json_object_get(e, "resumed"));
	json_decref(stmts);
	json_decref(log);
}
