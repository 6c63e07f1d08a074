/*
 * libFuzzer target for what the Airbyte public API answers the airbyte provider
 * (reconcilers/airbyte): the replies of a scripted server on 127.0.0.1 (scripted_http.h) go
 * through the provider's real client (client.c: the application token from
 * /applications/token, problem-JSON error bodies, 401 refresh, retries honouring
 * Retry-After, limit/offset list pages) and its session (workspaces resolved by name, the
 * catalog cache) into the runtime slots and wire.c's mapping of API objects into observed
 * specs. Scenarios (first line of the input):
 *
 *   sources, destinations   observe of two objects: token, workspace lookup (GET
 *                           /workspaces pages), the list of the workspace's objects, objects
 *                           missing from it fetched one by one
 *   connections             airbyte.connection observe: GET /connections pages, streams
 *                           projected on what the applied spec sets
 *   source-adopt            adopt: the namesakes of a source in its workspace
 *   connection-adopt        adopt of a connection (its source's workspace first)
 *   source-remove           remove: the connections still using the source, then DELETE
 *   catalog                 a source's discovered catalog (GET /streams) checked against
 *                           a connection's streams
 *
 * Any crash, sanitizer report or leak is a bug, and so is an observed spec that breaks the
 * observe contract (fz_check_observed: a secret answered in clear must come out as a keyed
 * fingerprint, a masked one as the mask).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "reconcilers/airbyte/airbyte_int.h"
#include "scripted_http.h"

#define SOURCE_ID "5ae6b09b-fdec-41af-aaf7-7d94cfc33ef6"
#define DEST_ID   "b3c9f1d2-0e4a-4c59-9a61-3f0d2e7c8a14"
#define CONN_ID   "9e1f6a3c-7b2d-4e8f-a1c0-6d5b4a392817"

static const char *const scenarios[] = {"sources",      "destinations",     "connections",
					"source-adopt", "connection-adopt", "source-remove",
					"catalog"};

static const uint8_t fp_key[32] = {42};
static json_t *source_applied[2], *dest_applied[2], *conn_applied[2];
static tp_strlist source_sens, dest_sens;

static json_t *load(const char *text)
{
	json_t *v = json_loads(text, 0, NULL);
	if (!v)
		abort();
	return v;
}

static void init_once(void)
{
	source_applied[0] = load(
	    "{\"name\":\"zoom\",\"workspace\":\"default\",\"connector\":\"zoom\","
	    "\"configuration\":{\"account_id\":\"acc-1\",\"client_id\":\"${secret:ssm:/zoom/id}\","
	    "\"client_secret\":\"${secret:ssm:/zoom/secret}\",\"authorization_endpoint\":"
	    "\"https://zoom.us/oauth/token\",\"start_date\":\"2024-01-01T00:00:00Z\"}}");
	source_applied[1] = load(
	    "{\"name\":\"salesforce\",\"workspace\":\"default\",\"definition_id\":"
	    "\"b117307c-14b6-41aa-9422-947e34922962\",\"configuration\":{\"client_id\":\"abc\","
	    "\"client_secret\":\"${secret:env:SF}\",\"refresh_token\":\"${secret:env:RT}\","
	    "\"is_sandbox\":false}}");
	dest_applied[0] =
	    load("{\"name\":\"snowflake\",\"workspace\":\"default\",\"connector\":\"snowflake\","
		 "\"configuration\":{\"host\":\"myorg-myaccount.snowflakecomputing.com\",\"role\":"
		 "\"LOADER\",\"warehouse\":\"LOADING\",\"database\":\"RAW\",\"username\":"
		 "\"AIRBYTE_USER\",\"credentials\":{\"auth_type\":\"Key Pair Authentication\","
		 "\"private_key\":\"${secret:ssm:/k}\"}}}");
	dest_applied[1] = load("{\"name\":\"s3\",\"workspace\":\"" SOURCE_ID "\",\"connector\":"
			       "\"s3\"}");
	conn_applied[0] = load(
	    "{\"name\":\"zoom-to-snowflake\",\"source\":\"" SOURCE_ID
	    "\",\"destination\":\"" DEST_ID
	    "\",\"schedule\":{\"type\":\"cron\",\"cron\":\"0 0 * * * ?\"},\"namespace_definition\":"
	    "\"custom_format\",\"namespace_format\":\"ZOOM\",\"streams\":[{\"name\":\"webinars\","
	    "\"sync_mode\":\"full_refresh_overwrite\"},{\"name\":\"users\",\"sync_mode\":"
	    "\"full_refresh_append\",\"selected_fields\":[\"id\",\"email\"]},{\"name\":"
	    "\"Contact\",\"namespace\":\"sf\",\"sync_mode\":\"incremental_deduped_history\","
	    "\"cursor_field\":[\"SystemModstamp\"]}]}");
	conn_applied[1] =
	    load("{\"name\":\"manual\",\"source\":\"" SOURCE_ID "\",\"destination\":\"" DEST_ID
		 "\",\"schedule\":{\"type\":\"manual\"}}");
	tp_strlist_push(&source_sens, "configuration.client_id");
	tp_strlist_push(&source_sens, "configuration.client_secret");
	tp_strlist_push(&source_sens, "configuration.refresh_token");
	tp_strlist_push(&dest_sens, "configuration.credentials.private_key");
	unsetenv("TAPESTRY_AIRBYTE_REFRESH_SCHEMAS");
	unsetenv("http_proxy");
	unsetenv("HTTP_PROXY");
	setenv("NO_PROXY", "127.0.0.1", 1);
}

static void op_init(tp_op *op, const char *address, const char *id, const json_t *applied,
		    const tp_strlist *sens)
{
	memset(op, 0, sizeof(*op));
	op->address = address;
	op->name = strchr(address, '/') + 1;
	op->provider_id = id;
	op->applied = applied;
	op->sensitive = sens;
	op->fingerprint_key = fp_key;
	op->token = "0b1c2d3e-4f50-4a6b-8c7d-9e0f1a2b3c4d";
	op->marker = "tapestry:fuzz:x";
}

static void observe(const char *kind, void *session, const tp_op *ops, size_t n)
{
	const tp_kind *k = tp_registry_kind(kind);
	json_t *out[2] = {NULL, NULL};
	int rc = k->observe(session, ops, n, out);
	fz_check_observed(k, ops, n, out, rc, TP_AB_MASK);
	for (size_t i = 0; i < n; i++)
		json_decref(out[i]);
}

static void catalog(tp_ab_session *s)
{
	json_t *cat = NULL;
	if (tp_ab_session_catalog(s, &cat, SOURCE_ID, false) == 0) {
		if (!json_is_array(cat))
			abort();
		(void)tp_ab_streams_check(cat, json_object_get(conn_applied[0], "streams"),
					  "airbyte.connection/zoom-to-snowflake");
	}
	json_decref(cat);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static bool ready;
	static json_t *config;
	static char base[96];
	fz_script script;
	tp_provider_env env;
	void *session = NULL;
	tp_op ops[2];
	tp_op_result res = {0};
	size_t which;

	if (!ready) {
		fz_server_start();
		fz_clock_install();
		tp_log_set_level(TP_LOG_ERROR);
		init_once();
		snprintf(base, sizeof(base), "%s/api/public/v1", fz_server_url());
		config = json_pack("{s:s,s:s,s:s,s:s}", "url", base, "workspace", "default",
				   "client_id", "fuzz-client", "client_secret", "fuzz-secret");
		ready = true;
	}
	fz_clock_reset();
	fz_script_parse(&script, data, size);
	which = fz_pick(&script, scenarios, sizeof(scenarios) / sizeof(scenarios[0]));
	memset(&env, 0, sizeof(env));
	env.pipeline = "fuzz";
	env.config = config;
	env.endpoint = base;
	fz_server_load(&script);
	if (tp_provider_airbyte.open(&session, &env) < 0)
		abort(); /* the configuration is fixed and valid */

	switch (which) {
	case 0:
		op_init(&ops[0], "airbyte.source/zoom", SOURCE_ID, source_applied[0], &source_sens);
		op_init(&ops[1], "airbyte.source/salesforce",
			"0e6f7a8b-9c0d-4e1f-a2b3-c4d5e6f7a8b9", source_applied[1], &source_sens);
		observe("airbyte.source", session, ops, 2);
		break;
	case 1:
		op_init(&ops[0], "airbyte.destination/snowflake", DEST_ID, dest_applied[0],
			&dest_sens);
		op_init(&ops[1], "airbyte.destination/s3", "1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d",
			dest_applied[1], NULL);
		observe("airbyte.destination", session, ops, 2);
		break;
	case 2:
		op_init(&ops[0], "airbyte.connection/zoom-to-snowflake", CONN_ID, conn_applied[0],
			NULL);
		op_init(&ops[1], "airbyte.connection/manual",
			"2b3c4d5e-6f7a-4b8c-9d0e-1f2a3b4c5d6e", conn_applied[1], NULL);
		observe("airbyte.connection", session, ops, 2);
		break;
	case 3:
		op_init(&ops[0], "airbyte.source/zoom", NULL, source_applied[0], &source_sens);
		if (tp_ab_source_adopt(session, &ops[0], &res) == 0 &&
		    !tp_ab_is_uuid(res.provider_id))
			abort(); /* an adopted id is always a uuid */
		break;
	case 4:
		op_init(&ops[0], "airbyte.connection/zoom-to-snowflake", NULL, conn_applied[0],
			NULL);
		if (tp_ab_connection_adopt(session, &ops[0], &res) == 0 &&
		    !tp_ab_is_uuid(res.provider_id))
			abort();
		break;
	case 5:
		op_init(&ops[0], "airbyte.source/zoom", SOURCE_ID, source_applied[0], &source_sens);
		tp_ab_source_remove(session, &ops[0]);
		break;
	default: catalog(session); break;
	}
	tp_op_result_clear(&res);
	tp_provider_airbyte.close(session);
	fz_server_unload();
	tp_error_clear();
	return 0;
}
