/*
 * libFuzzer target for what the Snowflake SQL API v2 answers the snowflake provider
 * (reconcilers/snowflake): the replies of a scripted server on 127.0.0.1 (scripted_http.h) go
 * through the provider's real client (client.c: statement responses, 202 polling, result
 * partitions, error bodies with code/sqlState/message, retries honouring Retry-After) into the
 * observe slots that turn SHOW results into observed specs (objects.c, grants.c).
 * Scenarios (first line of the input):
 *
 *   warehouses, warehouse, databases, schemas, roles, users, views
 *                 the observe slot of that kind (SHOW ... [LIKE] [IN DATABASE|SCHEMA])
 *   grants        snowflake.grant observe: SHOW GRANTS TO ROLE, SHOW FUTURE GRANTS IN SCHEMA,
 *                 and a grant ON ALL that needs no query
 *   role-grants   snowflake.role_grant observe (SHOW GRANTS OF ROLE)
 *   exec          one statement with its result set read by column name: partitions fetched
 *                 and checked, a 202 polled until it finishes
 *   run           three write statements in one multi-statement request, a failure charged
 *                 to the statement Snowflake names, the fallback to one statement per request
 *
 * Any crash, sanitizer report or leak is a bug, and so is an observed spec that breaks the
 * observe contract (fz_check_observed) or a result set whose rows do not match its columns.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "reconcilers/snowflake/snowflake_int.h"
#include "scripted_http.h"

static const char *const scenarios[] = {"warehouses",  "warehouse", "databases", "schemas",
					"roles",       "users",     "views",     "grants",
					"role-grants", "exec",      "run"};

static const struct {
	const char *kind;
	const char *specs[3];  /* applied specs, NULL-terminated */
	const char *sensitive; /* a sensitive path of the first one, or NULL */
} kinds[] = {
    {"snowflake.warehouse",
     {"{\"name\":\"LOADING\",\"warehouse_size\":\"XSMALL\",\"auto_suspend\":60,"
      "\"auto_resume\":true,\"comment\":\"Airbyte loads\",\"initially_suspended\":true}",
      "{\"name\":\"\\\"Transforming wh\\\"\",\"warehouse_size\":\"SMALL\"}", NULL},
     NULL},
    {"snowflake.warehouse", {"{\"name\":\"LOADING\",\"warehouse_size\":\"XSMALL\"}", NULL}, NULL},
    {"snowflake.database",
     {"{\"name\":\"RAW\",\"comment\":\"raw data\",\"data_retention_time_in_days\":1}",
      "{\"name\":\"ANALYTICS\",\"transient\":false}", NULL},
     NULL},
    {"snowflake.schema",
     {"{\"database\":\"RAW\",\"name\":\"ZOOM\",\"managed_access\":false}",
      "{\"database\":\"RAW\",\"name\":\"\\\"Sales force\\\"\"}",
      "{\"database\":\"ANALYTICS\",\"name\":\"MODELS\"}"},
     NULL},
    {"snowflake.role", {"{\"name\":\"LOADER\",\"comment\":\"loads\"}", NULL}, NULL},
    {"snowflake.user",
     {"{\"name\":\"GROUPAROO\",\"login_name\":\"grouparoo\",\"password\":\"${secret:env:PW}\","
      "\"default_role\":\"REPORTER\",\"must_change_password\":false}",
      "{\"name\":\"AIRBYTE_USER\",\"default_role\":\"LOADER\",\"default_warehouse\":"
      "\"LOADING\",\"default_namespace\":\"RAW.ZOOM\",\"rsa_public_key\":\"MIIBIjANBgkq\","
      "\"type\":\"SERVICE\"}",
      NULL},
     "password"},
    {"snowflake.view",
     {"{\"database\":\"ANALYTICS\",\"schema\":\"MODELS\",\"name\":\"EMAIL_MODEL\",\"sql\":"
      "\"models/email.sql@sha256:0123456789abcdef\",\"secure\":false}",
      "{\"database\":\"ANALYTICS\",\"schema\":\"MODELS\",\"name\":\"PEOPLE\",\"sql\":"
      "\"models/people.sql\",\"secure\":true,\"comment\":\"people\"}",
      NULL},
     NULL},
    {"snowflake.grant",
     {"{\"role\":\"LOADER\",\"privileges\":[\"USAGE\"],\"on\":{\"type\":\"WAREHOUSE\","
      "\"name\":\"LOADING\"},\"with_grant_option\":false}",
      "{\"role\":\"REPORTER\",\"privileges\":[\"SELECT\"],\"on\":{\"type\":\"SCHEMA\","
      "\"name\":\"ANALYTICS.MODELS\",\"future\":\"VIEWS\"},\"with_grant_option\":false}",
      "{\"role\":\"REPORTER\",\"privileges\":[\"SELECT\"],\"on\":{\"type\":\"SCHEMA\","
      "\"name\":\"RAW.ZOOM\",\"all\":\"TABLES\"},\"with_grant_option\":false}"},
     NULL},
    {"snowflake.role_grant",
     {"{\"role\":\"LOADER\",\"to_user\":\"AIRBYTE_USER\"}",
      "{\"role\":\"LOADER\",\"to_role\":\"TRANSFORMER\"}",
      "{\"role\":\"REPORTER\",\"to_role\":"
      "\"\\\"Mixed Case\\\"\"}"},
     NULL},
};

static const uint8_t fp_key[32] = {7, 7, 7};
static json_t *applied[sizeof(kinds) / sizeof(kinds[0])][3];
static tp_strlist sensitive[sizeof(kinds) / sizeof(kinds[0])];

static void init_once(void)
{
	for (size_t k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++) {
		for (size_t i = 0; i < 3 && kinds[k].specs[i]; i++)
			if (!(applied[k][i] = json_loads(kinds[k].specs[i], 0, NULL)))
				abort();
		if (kinds[k].sensitive)
			tp_strlist_push(&sensitive[k], kinds[k].sensitive);
	}
	/* one request per call: the batching window would only wait (in virtual time) */
	setenv("TAPESTRY_SNOWFLAKE_BATCH_MS", "0", 1);
	unsetenv("http_proxy");
	unsetenv("HTTP_PROXY");
	setenv("NO_PROXY", "127.0.0.1", 1);
}

static void observe(void *session, size_t k)
{
	const tp_kind *kind = tp_registry_kind(kinds[k].kind);
	tp_op ops[3];
	char address[3][64];
	json_t *out[3] = {NULL, NULL, NULL};
	size_t n = 0;
	int rc;

	for (; n < 3 && applied[k][n]; n++) {
		memset(&ops[n], 0, sizeof(ops[n]));
		snprintf(address[n], sizeof(address[n]), "%s/r%zu", kinds[k].kind, n);
		ops[n].address = address[n];
		ops[n].name = address[n] + strlen(kinds[k].kind) + 1;
		ops[n].applied = applied[k][n];
		ops[n].sensitive = n == 0 ? &sensitive[k] : NULL;
		ops[n].fingerprint_key = fp_key;
		ops[n].marker = "tapestry:fuzz:x";
	}
	rc = kind->observe(session, ops, n, out);
	fz_check_observed(kind, ops, n, out, rc, "**********");
	for (size_t i = 0; i < n; i++)
		json_decref(out[i]);
}

static void exec_one(tp_sf_session *s)
{
	tp_sf_result r;
	tp_sf_status st;
	static const char *const cols[] = {"name", "comment", NULL};
	int idx[2];
	if (tp_sf_exec(s, &r, "SHOW WAREHOUSES LIKE 'LOADING'", 1, &st) < 0)
		return;
	if (!json_is_array(r.columns) || !json_is_array(r.rows))
		abort();
	for (size_t i = 0; i < tp_sf_result_rows(&r); i++) {
		if (json_array_size(json_array_get(r.rows, i)) != json_array_size(r.columns))
			abort(); /* take_rows checks every row against rowType */
		for (size_t c = 0; c < json_array_size(r.columns); c++)
			(void)tp_sf_cell(&r, i, (int)c);
	}
	if (tp_sf_result_cols(&r, "fuzz", cols, idx) == 0)
		(void)tp_sf_cell(&r, 0, idx[1]);
	tp_sf_result_clear(&r);
}

static void run_three(tp_sf_session *s)
{
	tp_strlist stmts = {0};
	tp_sf_status st;
	tp_strlist_push(&stmts, "CREATE WAREHOUSE \"LOADING\" WAREHOUSE_SIZE = 'XSMALL'");
	tp_strlist_push(&stmts, "ALTER WAREHOUSE \"LOADING\" SET\n  AUTO_SUSPEND = 60");
	tp_strlist_push(&stmts, "GRANT USAGE ON WAREHOUSE \"LOADING\" TO ROLE \"LOADER\"");
	memset(&st, 0, sizeof(st));
	if (tp_sf_run(s, &stmts, &st) < 0 &&
	    (strnlen(st.code, sizeof(st.code)) >= sizeof(st.code) ||
	     strnlen(st.sql_state, sizeof(st.sql_state)) >= sizeof(st.sql_state)))
		abort();
	tp_strlist_free(&stmts);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static bool ready;
	static json_t *config;
	fz_script script;
	tp_provider_env env;
	void *session = NULL;
	size_t which;

	if (!ready) {
		fz_server_start();
		fz_clock_install();
		tp_log_set_level(TP_LOG_ERROR);
		init_once();
		config = json_pack("{s:s,s:s,s:s,s:s,s:s}", "account", "MYORG-MYACCOUNT", "user",
				   "TAPESTRY", "role", "TAPESTRY_ADMIN", "warehouse", "COMPUTE_WH",
				   "token", "ver:1-hint:1234-ETMsDgAAAYfuzzfuzzfuzz");
		ready = true;
	}
	fz_clock_reset();
	fz_script_parse(&script, data, size);
	which = fz_pick(&script, scenarios, sizeof(scenarios) / sizeof(scenarios[0]));
	memset(&env, 0, sizeof(env));
	env.pipeline = "fuzz";
	env.config = config;
	env.endpoint = fz_server_url();
	fz_server_load(&script);
	if (tp_provider_snowflake.open(&session, &env) < 0)
		abort(); /* the configuration is fixed and valid */
	if (which < sizeof(kinds) / sizeof(kinds[0]))
		observe(session, which);
	else if (strcmp(scenarios[which], "exec") == 0)
		exec_one(session);
	else
		run_three(session);
	tp_provider_snowflake.close(session);
	fz_server_unload();
	tp_error_clear();
	return 0;
}
