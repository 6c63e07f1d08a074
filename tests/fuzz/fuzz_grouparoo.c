/*
 * libFuzzer target for what Grouparoo's REST API answers the grouparoo provider
 * (reconcilers/grouparoo): the replies of a scripted server on 127.0.0.1 (scripted_http.h) go
 * through the provider's real client (client.c: HTTP 500 with {"error":{"message","code"}}
 * mapped to Tapestry's error kinds, secrets scrubbed from messages, paged lists with their
 * `total`) into the observe and adopt slots of the six kinds, which turn API objects into
 * observed specs (options obfuscated by Grouparoo become the mask, secrets in clear keyed
 * fingerprints, objects locked by the code config reported as such).
 *
 * Scenarios (first line of the input), for each kind K of model, app, source, property,
 * group, destination:
 *   K             observe of one object (GET /K/:id)
 *   Ks            observe of three objects (GET /Ks?limit=100&offset=..., pages by `total`;
 *                 "properties" for property)
 *   K-adopt       adopt: a namesake in the list that an interrupted create left behind
 * The seeds are what Grouparoo 0.9 answered (tests/grouparoo/run-grouparoo.sh), with its
 * generated ids shortened to <prefix>_1.
 *
 * Any crash, sanitizer report or leak is a bug, and so is an observed spec that breaks the
 * observe contract (fz_check_observed) or an adopted object without an id.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "reconcilers/grouparoo/grouparoo_int.h"
#include "scripted_http.h"

static const struct {
	const char *kind;
	const char *what;   /* the scenario of one object */
	const char *plural; /* the scenario of three */
	const char *prefix; /* of the ids Grouparoo gives this kind */
	const char *spec;
	const char *sensitive; /* or NULL */
} kinds[] = {
    {"grouparoo.model", "model", "models", "mod", "{\"name\":\"People\",\"type\":\"profile\"}",
     NULL},
    {"grouparoo.app", "app", "apps", "app",
     "{\"name\":\"Warehouse\",\"type\":\"sqlite\",\"options\":{\"file\":"
     "\"/var/lib/grouparoo/users.sqlite\",\"password\":\"${secret:env:PW}\"}}",
     "options.password"},
    {"grouparoo.source", "source", "sources", "src",
     "{\"name\":\"Users\",\"app\":\"app_1\",\"model\":\"mod_1\",\"type\":"
     "\"sqlite-import-table\",\"options\":{\"table\":\"users\"},\"mapping\":{\"id\":"
     "\"user_id\"},\"schedule\":{\"recurring\":true,\"frequency\":\"1h\",\"options\":"
     "{\"column\":\"id\"},\"filters\":[{\"key\":\"id\",\"op\":\"gt\",\"match\":\"0\"}]}}",
     NULL},
    {"grouparoo.property", "property", "properties", "prp",
     "{\"key\":\"email\",\"type\":\"email\",\"unique\":true,\"is_array\":false,\"source\":"
     "\"src_1\",\"options\":{\"column\":\"email\",\"aggregationMethod\":\"exact\"},"
     "\"filters\":[{\"key\":\"email\",\"op\":\"like\",\"match\":\"%@%\"}]}",
     NULL},
    {"grouparoo.group", "group", "groups", "grp",
     "{\"name\":\"Customers\",\"model\":\"mod_1\",\"match_type\":\"all\",\"rules\":"
     "[{\"key\":\"email\",\"op\":\"like\",\"match\":\"%@example.com\"},{\"key\":"
     "\"created_at\",\"op\":\"relative_gt\",\"relative_match_number\":3,"
     "\"relative_match_unit\":\"days\",\"relative_match_direction\":\"subtract\"}],"
     "\"delete_mode\":\"wait\"}",
     NULL},
    {"grouparoo.destination", "destination", "destinations", "dst",
     "{\"name\":\"CRM\",\"app\":\"app_1\",\"model\":\"mod_1\",\"type\":"
     "\"sqlite-export-records\",\"sync_mode\":\"sync\",\"options\":{\"table\":\"out\","
     "\"primaryKey\":\"id\",\"groupsTable\":\"out_groups\",\"groupForeignKey\":\"user_id\","
     "\"groupColumnName\":\"group_name\"},\"mapping\":{\"id\":\"user_id\",\"email\":"
     "\"email\"},\"collection\":\"group\",\"group\":\"grp_1\","
     "\"destination_group_memberships\":[{\"group\":\"grp_1\",\"remote_key\":"
     "\"Customers\"}]}",
     NULL},
};

#define NKINDS (sizeof(kinds) / sizeof(kinds[0]))

static const uint8_t fp_key[32] = {9, 9};
static json_t *applied[NKINDS];
static tp_strlist sensitive[NKINDS];
static char *scenario_names[3 * NKINDS];

static void init_once(void)
{
	for (size_t k = 0; k < NKINDS; k++) {
		if (!(applied[k] = json_loads(kinds[k].spec, 0, NULL)))
			abort();
		if (kinds[k].sensitive)
			tp_strlist_push(&sensitive[k], kinds[k].sensitive);
		scenario_names[3 * k] = tp_strdup(kinds[k].what);
		scenario_names[3 * k + 1] = tp_strdup(kinds[k].plural);
		scenario_names[3 * k + 2] = tp_sprintf("%s-adopt", kinds[k].what);
	}
	unsetenv("http_proxy");
	unsetenv("HTTP_PROXY");
	setenv("NO_PROXY", "127.0.0.1", 1);
}

static void run(void *session, size_t k, int mode)
{
	const tp_kind *kind = tp_registry_kind(kinds[k].kind);
	char address[3][64], ids[3][16];
	tp_op ops[3];
	json_t *out[3] = {NULL, NULL, NULL};
	tp_op_result res = {0};
	size_t n = mode == 1 ? 3 : 1;
	int rc;

	for (size_t i = 0; i < n; i++) {
		memset(&ops[i], 0, sizeof(ops[i]));
		snprintf(address[i], sizeof(address[i]), "%s/r%zu", kinds[k].kind, i);
		ops[i].address = address[i];
		ops[i].name = address[i] + strlen(kinds[k].kind) + 1;
		snprintf(ids[i], sizeof(ids[i]), "%s_%zu", kinds[k].prefix, i + 1);
		ops[i].provider_id = mode == 2 ? NULL : ids[i];
		ops[i].applied = applied[k];
		ops[i].sensitive = &sensitive[k];
		ops[i].fingerprint_key = fp_key;
		ops[i].marker = "tapestry:fuzz:x";
		ops[i].token = "3c4d5e6f-7a8b-4c9d-8e0f-1a2b3c4d5e6f";
	}
	if (mode == 2) {
		rc = kind->adopt(session, &ops[0], &res);
		if (rc == 0 && (!res.provider_id || !res.provider_id[0]))
			abort(); /* an adopted object the engine could not find again */
		tp_op_result_clear(&res);
		return;
	}
	rc = kind->observe(session, ops, n, out);
	fz_check_observed(kind, ops, n, out, rc, TP_GR_MASK);
	for (size_t i = 0; i < n; i++)
		json_decref(out[i]);
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
		config = json_pack("{s:s,s:s,s:s}", "url", fz_server_url(), "api_key",
				   "fuzz-api-key-0123456789", "delete_timeout", "1m");
		ready = true;
	}
	fz_clock_reset();
	fz_script_parse(&script, data, size);
	which = fz_pick(&script, (const char *const *)scenario_names, 3 * NKINDS);
	memset(&env, 0, sizeof(env));
	env.pipeline = "fuzz";
	env.config = config;
	env.endpoint = fz_server_url();
	fz_server_load(&script);
	if (tp_provider_grouparoo.open(&session, &env) < 0)
		abort(); /* the configuration is fixed and valid */
	run(session, which / 3, (int)(which % 3));
	tp_provider_grouparoo.close(session);
	fz_server_unload();
	tp_error_clear();
	return 0;
}
