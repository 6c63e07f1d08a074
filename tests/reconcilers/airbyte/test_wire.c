/*
 * Spec ↔ wire for the airbyte kinds (reconcilers/airbyte/wire.c and the kinds' normalise
 * hooks), without a server: what Airbyte answers for what Tapestry sent must compare equal
 * after normalisation (cron " UTC", stream order, default sync modes and source-defined keys,
 * selectedFields [] vs absent), real differences must not (a basic schedule, a stream added by
 * hand), secrets stay masked or become fingerprints, updates send a secret only when its hash
 * changed and use PUT only to drop a key. Also the catalog check and the catalog caches.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "reconcilers/airbyte/airbyte_int.h"
#include "state/state.h"
#include "support/support.h"

static json_t *parse(const char *text)
{
	json_error_t e;
	json_t *v = json_loads(text, 0, &e);
	cr_assert_not_null(v, "bad test JSON: %s: %s", e.text, text);
	return v;
}

static void normalise(const char *kind, json_t *spec)
{
	const tp_kind *k = tp_registry_kind(kind);
	cr_assert_not_null(k);
	k->normalise(spec);
}

/* Every field of applied equals the observed one (what the plan's drift check looks at). */
static void expect_no_drift(const json_t *applied, const json_t *observed)
{
	const char *k;
	json_t *v;
	json_object_foreach((json_t *)(uintptr_t)applied, k, v) {
		json_t *o = json_object_get(observed, k);
		char *a = tp_json_canonical(v),
		     *b = o ? tp_json_canonical(o) : tp_strdup("(absent)");
		cr_assert(o && json_equal(v, o), "%s: applied %s, observed %s", k, a, b);
		free(a);
		free(b);
	}
}

/* What a normalised spec with defaults looks like in state, and what Airbyte answers. */
static const char *APPLIED_CONNECTION =
	"{\"name\":\"sf\",\"source\":\"0C31738C-0B2D-4887-B506-E2CD1C39CC35\","
	"\"destination\":\"af0c3c67-aa61-419f-8922-95b0bf840e86\","
	"\"schedule\":{\"type\":\"cron\",\"cron\":\"0 0 */6 * * ?\"},"
	"\"streams\":[{\"name\":\"Contact\",\"sync_mode\":\"incremental_deduped_history\","
	"\"cursor_field\":[\"SystemModstamp\"],\"primary_key\":[[\"Id\"]],"
	"\"selected_fields\":[\"SystemModstamp\",\"Id\",\"Email\"]},{\"name\":\"Account\"},"
	"{\"name\":\"Opportunity\",\"selected_fields\":[]}],"
	"\"namespace_definition\":\"destination\",\"prefix\":\"\",\"status\":\"active\","
	"\"non_breaking_schema_updates_behavior\":\"ignore\"}";

static const char *LIVE_CONNECTION =
	"{\"connectionId\":\"9924bcd0-99be-453d-ba47-c2c9766f7da5\",\"name\":\"sf\","
	"\"sourceId\":\"0c31738c-0b2d-4887-b506-e2cd1c39cc35\","
	"\"destinationId\":\"af0c3c67-aa61-419f-8922-95b0bf840e86\","
	"\"workspaceId\":\"871d9b60-11d1-44cb-8c92-c246d53bf87e\",\"status\":\"active\","
	"\"schedule\":{\"scheduleType\":\"cron\",\"cronExpression\":\"0 0 */6 * * ? UTC\"},"
	"\"nonBreakingSchemaUpdatesBehavior\":\"ignore\",\"namespaceDefinition\":\"destination\","
	"\"namespaceFormat\":\"${SOURCE_NAMESPACE}\",\"prefix\":\"\",\"createdAt\":1,\"tags\":[],"
	"\"configurations\":{\"streams\":["
	"{\"name\":\"Opportunity\",\"syncMode\":\"full_refresh_overwrite\",\"primaryKey\":"
	"[[\"Id\"]],\"selectedFields\":[]},"
	"{\"name\":\"Account\",\"syncMode\":\"full_refresh_overwrite\",\"primaryKey\":[[\"Id\"]],"
	"\"selectedFields\":[]},"
	"{\"name\":\"Contact\",\"syncMode\":\"incremental_deduped_history\",\"cursorField\":"
	"[\"SystemModstamp\"],\"primaryKey\":[[\"Id\"]],\"selectedFields\":["
	"{\"fieldPath\":[\"Email\"]},{\"fieldPath\":[\"Id\"]},{\"fieldPath\":[\"SystemModstamp\"]}"
	"]}]}}";

Test(airbyte_wire, an_unchanged_connection_observes_as_applied)
{
	json_t *applied = parse(APPLIED_CONNECTION), *live = parse(LIVE_CONNECTION);
	json_t *obs;
	normalise("airbyte.connection", applied);
	obs = tp_ab_connection_observed(live, applied);
	normalise("airbyte.connection", obs);
	expect_no_drift(applied, obs);
	/* normalising is idempotent */
	{
		json_t *again = json_deep_copy(obs);
		normalise("airbyte.connection", again);
		cr_assert(json_equal(again, obs));
		json_decref(again);
	}
	json_decref(obs);
	json_decref(applied);
	json_decref(live);
}

Test(airbyte_wire, real_connection_changes_show)
{
	json_t *applied = parse(APPLIED_CONNECTION), *live = parse(LIVE_CONNECTION), *obs;
	normalise("airbyte.connection", applied);
	/* the UI's "every 24 hours" is not the cron Tapestry set; a hand-added stream and a
	 * changed sync mode are differences too */
	json_object_set_new(live, "schedule",
			    parse("{\"scheduleType\":\"basic\",\"basicTiming\":"
				  "\"Every 24 HOURS\"}"));
	json_array_append_new(tp_json_path_get(live, "configurations.streams"),
			      parse("{\"name\":\"Lead\",\"syncMode\":\"full_refresh_append\","
				    "\"selectedFields\":[]}"));
	json_object_set_new(json_array_get(tp_json_path_get(live, "configurations.streams"), 1),
			    "syncMode", json_string("full_refresh_append"));
	obs = tp_ab_connection_observed(live, applied);
	normalise("airbyte.connection", obs);
	cr_assert_str_eq(json_string_value(tp_json_path_get(obs, "schedule.type")), "basic");
	cr_assert_not(
		json_equal(json_object_get(obs, "schedule"), json_object_get(applied, "schedule")));
	cr_assert_eq(json_array_size(json_object_get(obs, "streams")), 4);
	cr_assert_str_eq(json_string_value(tp_json_path_get(obs, "streams.1.name")), "Contact");
	cr_assert_str_eq(json_string_value(tp_json_path_get(obs, "streams.2.name")), "Lead");
	cr_assert_str_eq(json_string_value(tp_json_path_get(obs, "streams.2.sync_mode")),
			 "full_refresh_append");
	/* Account: the applied spec sets no sync mode, so a changed one is not what Tapestry
	 * set and is not compared; Lead is new */
	cr_assert_null(tp_json_path_get(obs, "streams.0.sync_mode"));
	json_decref(obs);

	/* turning field selection off by hand is a change of a field Tapestry set */
	json_object_set_new(json_array_get(tp_json_path_get(live, "configurations.streams"), 2),
			    "selectedFields", json_array());
	obs = tp_ab_connection_observed(live, applied);
	normalise("airbyte.connection", obs);
	cr_assert_null(tp_json_path_get(obs, "streams.1.selected_fields"));
	cr_assert_not(
		json_equal(json_object_get(obs, "streams"), json_object_get(applied, "streams")));
	json_decref(obs);
	json_decref(applied);
	json_decref(live);
}

Test(airbyte_wire, connection_bodies_use_the_api_names)
{
	json_t *spec = parse(APPLIED_CONNECTION), *b;
	json_object_set_new(spec, "namespace_definition", json_string("custom_format"));
	json_object_set_new(spec, "namespace_format", json_string("${SOURCE_NAMESPACE}_raw"));
	b = tp_ab_connection_body(spec, true);
	cr_assert_str_eq(json_string_value(json_object_get(b, "sourceId")),
			 "0C31738C-0B2D-4887-B506-E2CD1C39CC35");
	cr_assert_str_eq(json_string_value(tp_json_path_get(b, "schedule.scheduleType")), "cron");
	cr_assert_str_eq(json_string_value(tp_json_path_get(b, "schedule.cronExpression")),
			 "0 0 */6 * * ?");
	cr_assert_str_eq(json_string_value(json_object_get(b, "namespaceFormat")),
			 "${SOURCE_NAMESPACE}_raw");
	cr_assert_str_eq(json_string_value(tp_json_path_get(
				 b, "configurations.streams.0.selectedFields.1.fieldPath.0")),
			 "Id");
	cr_assert_str_eq(
		json_string_value(tp_json_path_get(b, "configurations.streams.0.syncMode")),
		"incremental_deduped_history");
	cr_assert_null(tp_json_path_get(b, "configurations.streams.2.selectedFields"),
		       "an empty selection is not sent");
	json_decref(b);
	b = tp_ab_connection_body(spec, false);
	cr_assert_null(json_object_get(b, "sourceId"), "PATCH cannot move a connection");
	json_decref(b);
	json_object_set_new(spec, "schedule", parse("{\"type\":\"manual\"}"));
	b = tp_ab_connection_body(spec, false);
	{
		json_t *manual = parse("{\"scheduleType\":\"manual\"}");
		cr_assert(json_equal(json_object_get(b, "schedule"), manual));
		json_decref(manual);
	}
	json_decref(b);
	json_decref(spec);
}

/* ---------------------------------------------------------------- sources, secrets */

static const uint8_t KEY[32] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10};

static char *hex_of(const tp_op *op, const char *value)
{
	json_t *fp = tp_op_fingerprint(op, value, strlen(value));
	char *hex = tp_strdup(json_string_value(json_object_get(fp, "$hmac")));
	json_decref(fp);
	return hex;
}

Test(airbyte_wire, observed_sources_keep_masks_and_fingerprint_clear_secrets)
{
	tp_strlist sens = {0};
	tp_op op = {0};
	json_t *resp =
		parse("{\"sourceId\":\"18DCCC91-0ab1-4f72-9ed7-0b8fc27c5826\",\"name\":\"z\","
		      "\"sourceType\":\"zoom\",\"definitionId\":"
		      "\"CBFD9856-1322-44fb-bcf1-0b39b7a8e92e\",\"workspaceId\":"
		      "\"744cc0ed-7f05-4949-9e60-2a814f90c035\",\"configuration\":{"
		      "\"sourceType\":\"zoom\",\"account_id\":\"acct-canary\","
		      "\"client_secret\":\"**********\",\"start\":\"2021\"}}");
	json_t *obs;
	char *hex;
	tp_strlist_push(&sens, "configuration.account_id");
	tp_strlist_push(&sens, "configuration.client_secret");
	op.sensitive = &sens;
	op.fingerprint_key = KEY;
	obs = tp_ab_actor_observed(&tp_ab_source, &op, resp, "default");
	hex = hex_of(&op, "acct-canary");
	cr_assert_str_eq(json_string_value(tp_json_path_get(obs, "configuration.account_id.$hmac")),
			 hex, "a secret answered in clear is kept as its fingerprint");
	cr_assert_str_eq(json_string_value(tp_json_path_get(obs, "configuration.client_secret")),
			 "**********", "a masked secret stays masked (unknown)");
	cr_assert_str_eq(json_string_value(tp_json_path_get(obs, "configuration.start")), "2021");
	cr_assert_null(tp_json_path_get(obs, "configuration.sourceType"));
	cr_assert_str_eq(json_string_value(json_object_get(obs, "connector")), "zoom");
	cr_assert_str_eq(json_string_value(json_object_get(obs, "definition_id")),
			 "cbfd9856-1322-44fb-bcf1-0b39b7a8e92e");
	cr_assert_str_eq(json_string_value(json_object_get(obs, "workspace")), "default");
	{
		char *text = tp_json_canonical(obs);
		cr_assert_null(strstr(text, "acct-canary"));
		free(text);
	}
	/* the answer can be wiped without touching the observed spec */
	tp_ab_json_wipe(resp);
	cr_assert_str_eq(json_string_value(json_object_get(obs, "name")), "z");
	{
		json_t *want = parse("{\"name\":\"z\",\"connector\":\"zoom\"}");
		json_t *same = parse("{\"name\":\"z\",\"sourceType\":\"zoom\"}");
		json_t *other = parse("{\"name\":\"z\",\"sourceType\":\"salesforce\"}");
		cr_assert(tp_ab_actor_matches(&tp_ab_source, want, same));
		cr_assert_not(tp_ab_actor_matches(&tp_ab_source, want, other));
		json_decref(want);
		json_decref(same);
		json_decref(other);
	}
	free(hex);
	json_decref(obs);
	json_decref(resp);
	tp_strlist_free(&sens);
}

Test(airbyte_wire, updates_send_only_changed_secrets_and_put_only_to_drop_keys)
{
	tp_strlist sens = {0};
	tp_op op = {0};
	json_t *spec = parse("{\"name\":\"sf\",\"connector\":\"salesforce\",\"configuration\":{"
			     "\"client_id\":\"id-1\",\"client_secret\":\"secret-NEW\","
			     "\"refresh_token\":\"token-1\",\"is_sandbox\":false}}");
	json_t *applied = parse("{\"name\":\"sf\",\"connector\":\"salesforce\",\"configuration\":{"
				"\"client_id\":\"${secret:env:A}\",\"client_secret\":"
				"\"${secret:env:B}\",\"refresh_token\":\"${secret:env:C}\","
				"\"is_sandbox\":false}}");
	json_t *hashes = json_object(), *b;
	const char *method = NULL;
	char *h;
	tp_strlist_push(&sens, "configuration.client_id");
	tp_strlist_push(&sens, "configuration.client_secret");
	tp_strlist_push(&sens, "configuration.refresh_token");
	op.spec = spec;
	op.applied = applied;
	op.sensitive = &sens;
	op.fingerprint_key = KEY;
	h = hex_of(&op, "id-1");
	json_object_set_new(hashes, "configuration.client_id", json_string(h));
	free(h);
	h = hex_of(&op, "secret-OLD");
	json_object_set_new(hashes, "configuration.client_secret", json_string(h));
	free(h);
	h = hex_of(&op, "token-1");
	json_object_set_new(hashes, "configuration.refresh_token", json_string(h));
	free(h);

	cr_assert(tp_ab_secret_changed(&op, "configuration.client_secret", hashes));
	cr_assert_not(tp_ab_secret_changed(&op, "configuration.client_id", hashes));
	b = tp_ab_actor_update_body(&tp_ab_source, &op, hashes, &method);
	cr_assert_str_eq(method, "PATCH");
	cr_assert_str_eq(json_string_value(tp_json_path_get(b, "configuration.client_secret")),
			 "secret-NEW");
	cr_assert_null(tp_json_path_get(b, "configuration.client_id"),
		       "an unchanged secret is left out of a PATCH");
	cr_assert_null(tp_json_path_get(b, "configuration.refresh_token"));
	cr_assert(json_is_false(tp_json_path_get(b, "configuration.is_sandbox")));
	cr_assert_str_eq(json_string_value(json_object_get(b, "name")), "sf");
	json_decref(b);

	/* without recorded hashes every secret counts as changed */
	b = tp_ab_actor_update_body(&tp_ab_source, &op, NULL, &method);
	cr_assert_str_eq(json_string_value(tp_json_path_get(b, "configuration.client_id")), "id-1");
	json_decref(b);

	/* a key dropped from the configuration: PUT, with unchanged secrets as the mask */
	json_object_del(json_object_get(spec, "configuration"), "is_sandbox");
	b = tp_ab_actor_update_body(&tp_ab_source, &op, hashes, &method);
	cr_assert_str_eq(method, "PUT");
	cr_assert_null(tp_json_path_get(b, "configuration.is_sandbox"));
	cr_assert_str_eq(json_string_value(tp_json_path_get(b, "configuration.client_id")),
			 "**********");
	cr_assert_str_eq(json_string_value(tp_json_path_get(b, "configuration.refresh_token")),
			 "**********");
	cr_assert_str_eq(json_string_value(tp_json_path_get(b, "configuration.client_secret")),
			 "secret-NEW");
	/* the body is a copy: wiping it leaves the spec alone */
	tp_ab_json_wipe(b);
	cr_assert_str_eq(json_string_value(json_object_get(spec, "name")), "sf");
	json_decref(b);

	b = tp_ab_actor_create_body(&tp_ab_source, spec, "744cc0ed-7f05-4949-9e60-2a814f90c035");
	cr_assert_str_eq(json_string_value(tp_json_path_get(b, "configuration.sourceType")),
			 "salesforce", "a connector name goes in as configuration.sourceType");
	cr_assert_null(json_object_get(b, "definitionId"));
	json_decref(b);
	json_object_del(spec, "connector");
	json_object_set_new(spec, "definition_id",
			    json_string("B117307C-14b6-41aa-9422-947e34922962"));
	b = tp_ab_actor_create_body(&tp_ab_source, spec, "744cc0ed-7f05-4949-9e60-2a814f90c035");
	cr_assert_str_eq(json_string_value(json_object_get(b, "definitionId")),
			 "b117307c-14b6-41aa-9422-947e34922962");
	cr_assert_null(tp_json_path_get(b, "configuration.sourceType"));
	json_decref(b);
	json_decref(hashes);
	json_decref(spec);
	json_decref(applied);
	tp_strlist_free(&sens);
}

/* ---------------------------------------------------------------- catalogs */

static const char *CATALOG =
	"[{\"streamName\":\"accounts\",\"streamnamespace\":\"public\",\"syncModes\":["
	"\"full_refresh_overwrite\",\"incremental_append\"]},"
	"{\"streamName\":\"accounts\",\"streamnamespace\":\"audit\",\"syncModes\":["
	"\"full_refresh_overwrite\"]},"
	"{\"streamName\":\"orders\",\"streamnamespace\":\"public\",\"syncModes\":["
	"\"full_refresh_overwrite\"]}]";

Test(airbyte_wire, streams_are_checked_against_the_catalog)
{
	json_t *cat = parse(CATALOG), *streams;
	streams = parse("[{\"name\":\"orders\"},{\"name\":\"accounts\",\"namespace\":\"public\","
			"\"sync_mode\":\"incremental_append\"}]");
	cr_assert_eq(tp_ab_streams_check(cat, streams, "airbyte.connection/c"), 0, "%s",
		     tp_error_last());
	json_decref(streams);
	streams = parse("[{\"name\":\"invoices\"}]");
	cr_assert_eq(tp_ab_streams_check(cat, streams, "airbyte.connection/c"), TP_EINVALID);
	cr_assert(strstr(tp_error_last(), "airbyte.connection/c: stream \"invoices\" is not in the "
					  "source's catalog (it offers: public.accounts, "
					  "audit.accounts, public.orders)"),
		  "%s", tp_error_last());
	json_decref(streams);
	streams = parse("[{\"name\":\"accounts\"}]");
	cr_assert_eq(tp_ab_streams_check(cat, streams, "a"), TP_EINVALID);
	cr_assert(strstr(tp_error_last(), "several namespaces"), "%s", tp_error_last());
	json_decref(streams);
	streams = parse("[{\"name\":\"orders\",\"sync_mode\":\"incremental_append\"}]");
	cr_assert_eq(tp_ab_streams_check(cat, streams, "a"), TP_EINVALID);
	cr_assert(strstr(tp_error_last(), "does not support sync mode incremental_append (it "
					  "supports: full_refresh_overwrite)"),
		  "%s", tp_error_last());
	json_decref(streams);
	json_decref(cat);
}

typedef struct {
	int64_t now;
} fake_clock;

static int64_t fc_now(void *ctx)
{
	return ((fake_clock *)ctx)->now;
}

static void fc_sleep(void *ctx, int64_t ms)
{
	((fake_clock *)ctx)->now += ms;
}

static uint64_t fc_rand(void *ctx)
{
	(void)ctx;
	return 7;
}

/* The same TTL semantics from both cache implementations. */
static void exercise_cache(tp_ab_cache *c, fake_clock *clk)
{
	json_t *v = NULL, *cat = parse(CATALOG);
	cr_assert_eq(c->get(c->ctx, &v, "k"), TP_ENOTFOUND);
	cr_assert_eq(c->put(c->ctx, "k", cat, 1000), 0, "%s", tp_error_last());
	clk->now += 999;
	cr_assert_eq(c->get(c->ctx, &v, "k"), 0);
	cr_assert(json_equal(v, cat));
	json_decref(v);
	clk->now += 1;
	cr_assert_eq(c->get(c->ctx, &v, "k"), TP_ENOTFOUND, "expired once now >= put + ttl");
	cr_assert_eq(c->put(c->ctx, "k", cat, 0), TP_EINVALID);
	json_decref(cat);
}

Test(airbyte_wire, catalog_caches_expire_after_their_ttl)
{
	fake_clock clk = {1700000000000};
	tp_clock_ops ops = {fc_now, fc_now, fc_sleep, fc_rand, &clk};
	tp_ab_cache c = {0};
	char *dir = ts_tmpdir();
	char *db = tp_sprintf("%s/state.db", dir);
	tp_state *st = NULL;

	tp_clock_set(&ops);
	tp_ab_cache_memory(&c);
	exercise_cache(&c, &clk);
	tp_ab_cache_release(&c);

	cr_assert_eq(tp_state_open(&st, db, TP_STATE_READWRITE), 0, "%s", tp_error_last());
	tp_ab_cache_state(&c, st);
	exercise_cache(&c, &clk);
	tp_ab_cache_release(&c);
	tp_ab_cache_release(&c); /* twice is harmless */
	tp_state_close(st);
	tp_clock_set(NULL);
	ts_rmtree(dir);
	free(db);
	free(dir);
}
