/*
 * The airbyte reconciler end to end: the real tapestry binary (apply, plan --refresh) against
 * the strict fake, with request counts taken from the fake's log. The story: create a source,
 * a destination and a connection → a no-op run makes zero write calls → changing one
 * stream's sync mode is one PATCH → a rotated secret is one update and its value is never
 * printed or stored → a schedule changed by hand is reported as drift → deleting the source
 * deletes its connection first. Then: objects deleted behind Tapestry's back are created
 * again, an interrupted create is adopted and never duplicated, throttling and server errors
 * are ridden out, bad input (401 after a refresh, unknown streams, 409/422 problems,
 * malformed JSON) fails clearly, and the kickstart example's Airbyte documents apply.
 *
 * The fake is reached through providers.airbyte.url, except where TAPESTRY_ENDPOINT_AIRBYTE is
 * shown to win over a url that leads nowhere.
 */
#include "ab_fake.h"

#include <sys/stat.h>

#include "state/state.h"

static char *dir, *db, *pdir;
static ab_fake fk;
static char env_endpoint[256] = "AB_NO_ENDPOINT=1";
static char env_zoom_secret[128] = "ZOOM_SECRET=canary-zoom-secret-1";

static void setup(void)
{
	dir = ts_tmpdir();
	db = tp_sprintf("%s/state.db", dir);
	pdir = tp_sprintf("%s/p", dir);
}

static void teardown(void)
{
	ab_fake_stop(&fk);
	ts_rmtree(dir);
	free(dir);
	free(db);
	free(pdir);
}

TestSuite(airbyte_apply, .init = setup, .fini = teardown, .timeout = 120);

/* Starts the fake; url_override: the url tapestry.yaml names instead of the fake's, which
 * is then given as TAPESTRY_ENDPOINT_AIRBYTE. */
static void start_with(const char *const *extra, const char *url_override)
{
	char *yaml;
	ab_fake_start(&fk, dir, extra);
	if (url_override)
		snprintf(env_endpoint, sizeof(env_endpoint), "TAPESTRY_ENDPOINT_AIRBYTE=%s",
			 fk.base);
	else
		snprintf(env_endpoint, sizeof(env_endpoint), "AB_NO_ENDPOINT=1");
	yaml = tp_sprintf("pipeline: abtest\n"
			  "settings: {max_prune: 100%%}\n"
			  "providers:\n"
			  "  airbyte:\n"
			  "    url: %s\n"
			  "    client_id: ${secret:env:AB_CLIENT_ID}\n"
			  "    client_secret: ${secret:env:AB_CLIENT_SECRET}\n",
			  url_override ? url_override : fk.base);
	ts_write(dir, "p/tapestry.yaml", yaml);
	free(yaml);
}

static void start(const char *const *extra)
{
	start_with(extra, NULL);
}

static ts_result run(const char *const *args)
{
	const char *env[] = {env_endpoint,
			     "AB_CLIENT_ID=" AB_CLIENT_ID,
			     "AB_CLIENT_SECRET=" AB_CLIENT_SECRET,
			     "ZOOM_ACCOUNT=acct-8842",
			     "ZOOM_CLIENT_ID=canary-zoom-client-id",
			     env_zoom_secret,
			     "SF_PRIVATE_KEY=canary-snowflake-key",
			     NULL};
	return ts_run_tapestry(args, env);
}

static ts_result apply(void)
{
	const char *args[] = {"apply", pdir, "--state", db, "--auto-approve", NULL};
	return run(args);
}

static ts_result plan_refresh(void)
{
	const char *args[] = {"plan", pdir, "--state", db, "--refresh", NULL};
	return run(args);
}

static const char *SOURCE = "kind: airbyte.source\n"
			    "name: zoom\n"
			    "spec:\n"
			    "  name: Zoom webinars\n"
			    "  connector: source-zoom\n"
			    "  configuration:\n"
			    "    account_id: ${secret:env:ZOOM_ACCOUNT}\n"
			    "    client_id: ${secret:env:ZOOM_CLIENT_ID}\n"
			    "    client_secret: ${secret:env:ZOOM_SECRET}\n"
			    "    authorization_endpoint: https://zoom.us/oauth/token\n";

static const char *DESTINATION = "kind: airbyte.destination\n"
				 "name: snowflake\n"
				 "spec:\n"
				 "  name: Snowflake RAW\n"
				 "  connector: destination-snowflake\n"
				 "  configuration:\n"
				 "    host: example.snowflakecomputing.com\n"
				 "    role: LOADER\n"
				 "    warehouse: LOADING\n"
				 "    database: RAW\n"
				 "    username: AIRBYTE_USER\n"
				 "    credentials:\n"
				 "      auth_type: Key Pair Authentication\n"
				 "      private_key: ${secret:env:SF_PRIVATE_KEY}\n";

static const char *CONNECTION =
	"kind: airbyte.connection\n"
	"name: zoom-to-snowflake\n"
	"spec:\n"
	"  source: ${airbyte.source/zoom.id}\n"
	"  destination: ${airbyte.destination/snowflake.id}\n"
	"  schedule: {type: cron, cron: \"0 0 6 * * ?\"}\n"
	"  streams:\n"
	"    - name: webinar_registrants\n"
	"      sync_mode: @MODE@\n"
	"      selected_fields: [id, email, first_name, last_name, create_time]\n"
	"    - name: users\n"
	"  namespace_definition: custom_format\n"
	"  namespace_format: ZOOM\n"
	"  prefix: tapestry_\n"
	"  non_breaking_schema_updates_behavior: propagate_columns\n";

static void resources(bool source, bool connection, const char *mode)
{
	tp_buf b;
	char *conn = ts_replace(CONNECTION, "@MODE@", mode ? mode : "full_refresh_overwrite");
	tp_buf_init(&b, 0);
	if (source)
		tp_buf_printf(&b, "%s---\n", SOURCE);
	tp_buf_printf(&b, "%s", DESTINATION);
	if (connection)
		tp_buf_printf(&b, "---\n%s", conn);
	ts_write(dir, "p/resources/ingestion.yaml", tp_buf_cstr(&b));
	tp_buf_free(&b);
	free(conn);
}

static void expect_ok(const ts_result *r, const char *want)
{
	cr_assert_eq(r->status, 0, "exit %d\n%s%s", r->status, r->out, r->err);
	cr_assert(strstr(r->out, want), "wanted \"%s\" in:\n%s%s", want, r->out, r->err);
}

/* The canaries of every secret never reach output, the state database or its key. */
static void expect_no_canary(const ts_result *r)
{
	static const char *const files[] = {"", "-wal", "-shm", ".key"};
	cr_assert_null(strstr(r->out, "canary"), "%s", r->out);
	cr_assert_null(strstr(r->err, "canary"), "%s", r->err);
	for (size_t i = 0; i < 4; i++) {
		char *path = tp_sprintf("%s%s", db, files[i]);
		tp_buf bytes;
		tp_buf_init(&bytes, 0);
		if (tp_file_read(&bytes, path, 64u << 20) == 0)
			cr_assert_null(memmem(bytes.ptr, bytes.len, "canary", 6),
				       "a secret reached %s", path);
		tp_buf_free(&bytes);
		free(path);
	}
}

static char *raw_secret(const char *id, const char *path)
{
	char *url = tp_sprintf("/_fake/object?id=%s", id);
	ab_reply r = ab_control(&fk, "GET", url, NULL);
	char *v;
	cr_assert_eq(r.status, 200, "%s", r.text);
	v = tp_strdup(json_string_value(tp_json_path_get(r.json, path)));
	ab_reply_free(&r);
	free(url);
	return v;
}

static char *live_id(const char *list, const char *key, const char *name)
{
	json_t *o = ab_find(&fk, list, "name", name);
	char *id;
	cr_assert_not_null(o, "no %s named %s", list, name);
	id = tp_strdup(json_string_value(json_object_get(o, key)));
	json_decref(o);
	return id;
}

/* Queues a fault in the fake (POST /_fake/faults), or clears them all (NULL). */
static void faults(const char *json)
{
	ab_reply c = ab_control(&fk, json ? "POST" : "DELETE", "/_fake/faults", json);
	ab_reply_free(&c);
}

/* One connection was ever created, and one is live: never duplicated. */
static void expect_one_connection(void)
{
	json_t *log = ab_log(&fk);
	ab_reply l;
	cr_assert_eq(ab_count(log, 0, "POST", "/connections"), 1, "%s", ab_log_summary(log, 0));
	json_decref(log);
	l = ab_api(&fk, "GET", "/connections", NULL);
	cr_assert_eq(json_array_size(json_object_get(l.json, "data")), 1);
	ab_reply_free(&l);
}

Test(airbyte_apply, create_noop_stream_change_rotation_drift_and_delete)
{
	ts_result r;
	json_t *log;
	size_t mark;
	char *sid, *cid, *v;

	start(NULL);
	resources(true, true, NULL);

	/* 1. create: one POST each, nothing else written */
	r = apply();
	expect_ok(&r, "Apply complete! Resources: 3 added, 0 changed, 0 destroyed.");
	expect_no_canary(&r);
	ts_result_free(&r);
	log = ab_log(&fk);
	cr_assert_eq(ab_count(log, 0, "POST", "/sources"), 1);
	cr_assert_eq(ab_count(log, 0, "POST", "/destinations"), 1);
	cr_assert_eq(ab_count(log, 0, "POST", "/connections"), 1);
	cr_assert_eq(ab_writes(log, 0), 3, "%s", ab_log_summary(log, 0));
	json_decref(log);
	sid = live_id("/sources", "sourceId", "Zoom webinars");
	cid = live_id("/connections", "connectionId", "zoom-to-snowflake");
	v = raw_secret(sid, "configuration.client_secret");
	cr_assert_str_eq(v, "canary-zoom-secret-1");
	free(v);

	/* 2. nothing changed: observing only, zero writes */
	mark = ab_log_len(&fk);
	r = apply();
	expect_ok(&r, "No changes.");
	cr_assert_null(strstr(r.out, "Drift"), "masked secrets are never drift: %s", r.out);
	ts_result_free(&r);
	log = ab_log(&fk);
	cr_assert_eq(ab_writes(log, mark), 0, "%s", ab_log_summary(log, mark));
	cr_assert(ab_count(log, mark, "GET", NULL) >= 3);
	json_decref(log);

	/* 3. one stream's sync mode: one PATCH of the connection */
	resources(true, true, "full_refresh_append");
	mark = ab_log_len(&fk);
	r = apply();
	expect_ok(&r, "Apply complete! Resources: 0 added, 1 changed, 0 destroyed.");
	cr_assert(strstr(r.out, "airbyte.connection/zoom-to-snowflake will be updated in-place"),
		  "%s", r.out);
	ts_result_free(&r);
	log = ab_log(&fk);
	cr_assert_eq(ab_writes(log, mark), 1, "%s", ab_log_summary(log, mark));
	cr_assert_eq(ab_count(log, mark, "PATCH", cid), 1);
	/* the catalog discovered by the first run came from the state's cache table */
	cr_assert_eq(ab_count(log, mark, "GET", "/streams"), 0, "%s", ab_log_summary(log, mark));
	json_decref(log);
	/* --refresh-schemas discovers it again, then the cache serves the next run */
	{
		const char *args[] = {"apply", pdir, "--state", db, "--auto-approve",
				      "--refresh-schemas", NULL};
		resources(true, true, "full_refresh_overwrite");
		mark = ab_log_len(&fk);
		r = run(args);
		cr_assert_eq(r.status, 0, "%s%s", r.out, r.err);
		ts_result_free(&r);
		log = ab_log(&fk);
		cr_assert_geq(ab_count(log, mark, "GET", "/streams"), 1, "%s",
			      ab_log_summary(log, mark));
		json_decref(log);
		resources(true, true, "full_refresh_append");
		mark = ab_log_len(&fk);
		r = apply();
		expect_ok(&r, "Apply complete! Resources: 0 added, 1 changed, 0 destroyed.");
		ts_result_free(&r);
		log = ab_log(&fk);
		cr_assert_eq(ab_count(log, mark, "GET", "/streams"), 0, "%s",
			     ab_log_summary(log, mark));
		json_decref(log);
	}
	{
		char *path = tp_sprintf("/connections/%s", cid);
		ab_reply c = ab_api(&fk, "GET", path, NULL);
		json_t *streams = tp_json_path_get(c.json, "configurations.streams");
		cr_assert_str_eq(json_string_value(tp_json_path_get(streams, "1.name")),
				 "webinar_registrants");
		cr_assert_str_eq(json_string_value(tp_json_path_get(streams, "1.syncMode")),
				 "full_refresh_append");
		ab_reply_free(&c);
		free(path);
	}

	/* 4. a rotated secret: one update, the value reaches Airbyte and nothing else */
	snprintf(env_zoom_secret, sizeof(env_zoom_secret), "ZOOM_SECRET=canary-zoom-secret-2");
	mark = ab_log_len(&fk);
	r = apply();
	expect_ok(&r, "~ configuration.client_secret = (sensitive) -> (sensitive)");
	cr_assert(strstr(r.out, "a secret value changed (compared by keyed hash)"), "%s", r.out);
	cr_assert(strstr(r.out, "0 added, 1 changed, 0 destroyed"), "%s", r.out);
	expect_no_canary(&r);
	ts_result_free(&r);
	log = ab_log(&fk);
	cr_assert_eq(ab_writes(log, mark), 1, "%s", ab_log_summary(log, mark));
	cr_assert_eq(ab_count(log, mark, "PATCH", sid), 1);
	json_decref(log);
	v = raw_secret(sid, "configuration.client_secret");
	cr_assert_str_eq(v, "canary-zoom-secret-2");
	free(v);
	v = raw_secret(sid, "configuration.authorization_endpoint");
	cr_assert_str_eq(v, "https://zoom.us/oauth/token", "PATCH merged, nothing lost");
	free(v);
	mark = ab_log_len(&fk);
	r = apply();
	expect_ok(&r, "No changes.");
	ts_result_free(&r);

	/* 5. a schedule changed by hand is drift, reported and left alone */
	{
		char *path = tp_sprintf("/connections/%s", cid);
		ab_reply c = ab_api(&fk, "PATCH", path,
				    "{\"schedule\":{\"scheduleType\":\"cron\",\"cronExpression\":"
				    "\"0 0 7 * * ?\"}}");
		cr_assert_eq(c.status, 200, "%s", c.text);
		ab_reply_free(&c);
		free(path);
	}
	mark = ab_log_len(&fk);
	r = plan_refresh();
	expect_ok(&r, "Drift: objects changed outside Tapestry");
	cr_assert(strstr(r.out, "# airbyte.connection/zoom-to-snowflake: 1 field differs from "
				"what Tapestry applied"),
		  "%s", r.out);
	cr_assert(strstr(r.out, "~ schedule.cron = \"0 0 6 * * ?\" -> \"0 0 7 * * ?\""), "%s",
		  r.out);
	cr_assert(strstr(r.out, "No changes."), "%s", r.out);
	ts_result_free(&r);
	log = ab_log(&fk);
	cr_assert_eq(ab_writes(log, mark), 0, "plan never writes: %s", ab_log_summary(log, mark));
	json_decref(log);

	/* 6. the source and its connection leave Git: the connection is deleted first */
	resources(false, false, NULL);
	mark = ab_log_len(&fk);
	r = apply();
	expect_ok(&r, "Apply complete! Resources: 0 added, 0 changed, 2 destroyed.");
	cr_assert(strstr(r.out, "airbyte.connection/zoom-to-snowflake will be destroyed"), "%s",
		  r.out);
	cr_assert(strstr(r.out, "airbyte.source/zoom will be destroyed"), "%s", r.out);
	ts_result_free(&r);
	log = ab_log(&fk);
	cr_assert_eq(ab_writes(log, mark), 2, "%s", ab_log_summary(log, mark));
	{
		ssize_t conn_at = -1, src_at = -1;
		for (size_t i = mark; i < json_array_size(log); i++) {
			const json_t *e = json_array_get(log, i);
			const char *m = json_string_value(json_object_get(e, "method"));
			const char *p = json_string_value(json_object_get(e, "path"));
			if (strcmp(m, "DELETE") == 0 && strstr(p, cid))
				conn_at = (ssize_t)i;
			if (strcmp(m, "DELETE") == 0 && strstr(p, sid))
				src_at = (ssize_t)i;
		}
		cr_assert(conn_at >= 0 && src_at > conn_at, "%s", ab_log_summary(log, mark));
	}
	json_decref(log);
	r = apply();
	expect_ok(&r, "No changes.");
	ts_result_free(&r);
	free(sid);
	free(cid);
}

Test(airbyte_apply, objects_deleted_behind_its_back_are_created_again)
{
	ts_result r;
	json_t *log;
	size_t mark;
	char *did, *path;
	/* the environment's endpoint wins over the file's url */
	start_with(NULL, "http://127.0.0.1:1/api/public/v1");
	resources(true, true, NULL);
	r = apply();
	expect_ok(&r, "3 added");
	ts_result_free(&r);
	/* deleting the destination by hand takes its connection along (soft delete) */
	did = live_id("/destinations", "destinationId", "Snowflake RAW");
	path = tp_sprintf("/destinations/%s", did);
	{
		ab_reply c = ab_api(&fk, "DELETE", path, NULL);
		cr_assert_eq(c.status, 204);
		ab_reply_free(&c);
	}
	mark = ab_log_len(&fk);
	r = apply();
	expect_ok(&r, "Apply complete! Resources: 2 added, 0 changed, 0 destroyed.");
	cr_assert(strstr(r.out, "missing live: deleted outside Tapestry, created again"), "%s",
		  r.out);
	ts_result_free(&r);
	log = ab_log(&fk);
	cr_assert_eq(ab_count(log, mark, "POST", "/destinations"), 1);
	cr_assert_eq(ab_count(log, mark, "POST", "/connections"), 1);
	cr_assert_eq(ab_writes(log, mark), 2, "%s", ab_log_summary(log, mark));
	json_decref(log);
	r = apply();
	expect_ok(&r, "No changes.");
	ts_result_free(&r);
	free(did);
	free(path);
}

Test(airbyte_apply, an_interrupted_create_is_adopted_never_duplicated)
{
	ts_result r;
	start(NULL);
	resources(true, true, NULL);
	/* the connection is created but its answer is lost, and Airbyte then fails every
	 * retry: the run ends with the create unfinished */
	faults("{\"status\":502,\"method\":\"POST\",\"path\":\"/connections\","
		       "\"after\":true}");
	faults("{\"status\":503,\"method\":\"GET\",\"path\":\"/sources/\",\"skip\":1,"
		       "\"count\":60}");
	r = apply();
	cr_assert_eq(r.status, 1, "%s%s", r.out, r.err);
	cr_assert(strstr(r.out, "airbyte.connection/zoom-to-snowflake: Error:"), "%s", r.out);
	ts_result_free(&r);
	faults(NULL);

	/* the next run finds it (recovery, by name), and the create takes it up and brings it
	 * to the spec instead of making another */
	r = apply();
	cr_assert_eq(r.status, 0, "%s%s", r.out, r.err);
	cr_assert(strstr(r.err, "unfinished create of airbyte.connection/zoom-to-snowflake: the "
				"object exists"),
		  "%s", r.err);
	cr_assert(strstr(r.err, "an interrupted create's object turned up"), "%s", r.err);
	ts_result_free(&r);
	r = apply();
	expect_ok(&r, "No changes.");
	ts_result_free(&r);
	expect_one_connection();
	{
		tp_state *s = NULL;
		tp_state_resource sr = {0};
		cr_assert_eq(tp_state_open(&s, db, TP_STATE_READONLY), 0);
		cr_assert_eq(tp_state_resource_get(&sr, s, "airbyte.connection/zoom-to-snowflake"),
			     0);
		cr_assert_str_eq(sr.status, "ready");
		cr_assert_not_null(sr.provider_id);
		tp_state_resource_clear(&sr);
		tp_state_close(s);
	}
}

/* Found by bench/reliability/crash.sh: a create interrupted by a crash whose object the
 * restart's recovery could not find (the server was still finishing the dead process's
 * request, or the lookup failed) was refused forever afterwards as a stranger's namesake.
 * The create now looks for the interrupted create's object again right before creating. */
Test(airbyte_apply, an_interrupted_create_recovery_could_not_see_is_adopted_by_the_create)
{
	ts_result r;
	start(NULL);
	resources(true, true, NULL);
	/* the connection is created but its answer is lost, and every retry fails: the run
	 * ends with the create unfinished and the object live */
	faults("{\"status\":502,\"method\":\"POST\",\"path\":\"/connections\","
		       "\"after\":true}");
	faults("{\"status\":503,\"method\":\"GET\",\"path\":\"/sources/\",\"skip\":1,"
		       "\"count\":60}");
	r = apply();
	cr_assert_eq(r.status, 1, "%s%s", r.out, r.err);
	ts_result_free(&r);
	faults(NULL);

	/* the restart's recovery cannot look (its lookups fail three times: the client's read
	 * attempts), so the row stays unfinished and the plan creates the connection again */
	faults("{\"status\":503,\"method\":\"GET\",\"path\":\"/sources/\",\"count\":3}");
	r = apply();
	cr_assert_eq(r.status, 0, "%s%s", r.out, r.err);
	cr_assert(strstr(r.err, "unfinished create of airbyte.connection/zoom-to-snowflake cannot "
				"be checked now"),
		  "%s", r.err);
	cr_assert(strstr(r.err, "an interrupted create's object turned up"), "%s", r.err);
	cr_assert_null(strstr(r.out, "Error:"), "%s", r.out);
	ts_result_free(&r);
	r = apply();
	expect_ok(&r, "No changes.");
	ts_result_free(&r);
	expect_one_connection();
}

Test(airbyte_apply, throttling_and_server_errors_are_ridden_out)
{
	ts_result r;
	json_t *log;
	start((const char *[]){"--fail-every", "4", "--fail-status", "503", NULL});
	resources(true, true, NULL);
	r = apply();
	expect_ok(&r, "3 added");
	ts_result_free(&r);
	r = apply();
	expect_ok(&r, "No changes.");
	ts_result_free(&r);
	log = ab_log(&fk);
	{
		size_t failed = 0;
		for (size_t i = 0; i < json_array_size(log); i++)
			failed += json_integer_value(
					  json_object_get(json_array_get(log, i), "status")) == 503;
		cr_assert(failed >= 3, "failures were injected: %s", ab_log_summary(log, 0));
	}
	{
		ab_reply l = ab_api(&fk, "GET", "/connections", NULL);
		cr_assert_eq(json_array_size(json_object_get(l.json, "data")), 1,
			     "one connection however often it was retried");
		ab_reply_free(&l);
	}
	json_decref(log);
}

/* ---------------------------------------------------------------- bad input */

Test(airbyte_apply, refused_credentials_fail_after_one_refresh)
{
	ts_result r;
	json_t *log;
	size_t mark;
	start(NULL);
	resources(true, true, NULL);
	r = apply();
	expect_ok(&r, "3 added");
	ts_result_free(&r);
	faults("{\"status\":401,\"method\":\"GET\",\"count\":50}");
	mark = ab_log_len(&fk);
	r = apply();
	cr_assert_eq(r.status, 1, "%s%s", r.out, r.err);
	cr_assert(strstr(r.err, "HTTP 401: unauthorized: injected failure (401) (refused again "
				"with a freshly issued access token)"),
		  "%s", r.err);
	cr_assert_null(strstr(r.err, AB_CLIENT_SECRET));
	ts_result_free(&r);
	log = ab_log(&fk);
	cr_assert_eq(ab_writes(log, mark), 0);
	cr_assert_eq(ab_count(log, mark, "POST", "/applications/token"), 2,
		     "one token, one refresh: %s", ab_log_summary(log, mark));
	json_decref(log);
}

Test(airbyte_apply, unknown_streams_and_problem_answers_fail_clearly)
{
	ts_result r;
	json_t *log;
	char *conn;
	start(NULL);
	/* a stream the source does not have: refused before the connection is written */
	conn = ts_replace(CONNECTION, "webinar_registrants", "webinar_attendees");
	{
		char *all = tp_sprintf("%s---\n%s---\n%s", SOURCE, DESTINATION, conn);
		char *m = ts_replace(all, "@MODE@", "full_refresh_overwrite");
		ts_write(dir, "p/resources/ingestion.yaml", m);
		free(all);
		free(m);
	}
	r = apply();
	cr_assert_eq(r.status, 1, "%s%s", r.out, r.err);
	cr_assert(strstr(r.out, "airbyte.connection/zoom-to-snowflake: stream "
				"\"webinar_attendees\" is not in the source's catalog (it offers: "
				"users, meetings, webinars, webinar_registrants)"),
		  "%s", r.out);
	cr_assert(strstr(r.out, "2 added"), "%s", r.out);
	ts_result_free(&r);
	log = ab_log(&fk);
	cr_assert_eq(ab_count(log, 0, "POST", "/connections"), 0);
	cr_assert_eq(ab_count(log, 0, "GET", "/streams"), 2,
		     "cached, then discovered fresh once: %s", ab_log_summary(log, 0));
	json_decref(log);
	free(conn);

	/* 409 from a PATCH: the API's own title and detail */
	resources(true, true, NULL);
	r = apply();
	expect_ok(&r, "1 added");
	ts_result_free(&r);
	faults("{\"status\":409,\"method\":\"PATCH\"}");
	resources(true, true, "full_refresh_append");
	r = apply();
	cr_assert_eq(r.status, 1, "%s%s", r.out, r.err);
	cr_assert(strstr(r.out, "HTTP 409: state-conflict: injected failure (409)"), "%s", r.out);
	ts_result_free(&r);

	/* 422: the connector's specification refuses the configuration */
	{
		char *bad = ts_replace(SOURCE, "    account_id: ${secret:env:ZOOM_ACCOUNT}\n", "");
		char *all = tp_sprintf("%s---\n%s", bad, DESTINATION);
		ts_write(dir, "p/resources/ingestion.yaml", all);
		free(bad);
		free(all);
	}
	r = apply();
	cr_assert_eq(r.status, 1, "%s%s", r.out, r.err);
	cr_assert(strstr(r.out, "HTTP 422: unprocessable-entity: The provided configuration does "
				"not fulfill the specification."),
		  "%s", r.out);
	cr_assert(strstr(r.out, "$.account_id: is missing but it is required"), "%s", r.out);
	expect_no_canary(&r);
	ts_result_free(&r);

	/* malformed JSON while observing: the run stops before planning */
	faults("{\"status\":200,\"method\":\"GET\",\"path\":\"/sources\",\"body\":"
		       "\"<html>gateway</html>\"}");
	r = apply();
	cr_assert_eq(r.status, 1, "%s%s", r.out, r.err);
	cr_assert(strstr(r.err, "airbyte: GET /sources: HTTP 200: the answer is not valid JSON"),
		  "%s", r.err);
	cr_assert_null(strstr(r.out, "will be"), "nothing planned: %s", r.out);
	ts_result_free(&r);
}

/* ---------------------------------------------------------------- kickstart */

/* The kickstart's ingestion documents, made to stand alone: SSM secrets become files, other
 * providers' outputs become literals, and depends_on on other providers goes. */
static char *standalone_ingestion(const char *secrets_dir)
{
	char *path = ts_source_path("examples/kickstart/resources/ingestion.yaml");
	char *text = ts_read(path);
	char *prefix = tp_sprintf("${secret:file:%s", secrets_dir);
	char *step = ts_replace(text, "${secret:ssm:", prefix);
	tp_buf b;
	const char *p = step;
	bool in_deps = false;
	cr_assert_not_null(text, "%s", path);
	tp_buf_init(&b, 0);
	while (*p) {
		const char *nl = strchr(p, '\n');
		size_t len = nl ? (size_t)(nl - p + 1) : strlen(p);
		char *line = tp_strndup(p, len);
		p += len;
		if (strncmp(line, "depends_on:", 11) == 0) {
			in_deps = true;
			free(line);
			continue;
		}
		if (in_deps && strncmp(line, "  - ", 4) == 0) {
			free(line);
			continue;
		}
		in_deps = false;
		/* ${snowflake....} and ${aws....} references: a literal instead */
		for (;;) {
			char *ref = strstr(line, "${snowflake.");
			char *end, *fixed;
			if (!ref)
				ref = strstr(line, "${aws.");
			if (!ref || !(end = strchr(ref, '}')))
				break;
			*ref = '\0';
			fixed = tp_sprintf("%sKICKSTART%s", line, end + 1);
			free(line);
			line = fixed;
		}
		tp_buf_puts(&b, line);
		free(line);
	}
	free(path);
	free(text);
	free(prefix);
	free(step);
	return tp_buf_detach(&b);
}

Test(airbyte_apply, the_kickstart_airbyte_documents_apply)
{
	static const char *const secrets[] = {"rainshield/zoom/account_id",
					      "rainshield/zoom/client_id",
					      "rainshield/zoom/client_secret",
					      "rainshield/salesforce/client_id",
					      "rainshield/salesforce/client_secret",
					      "rainshield/salesforce/refresh_token",
					      "rainshield/snowflake/loader_private_key",
					      "rainshield/airbyte/s3_access_key_id",
					      "rainshield/airbyte/s3_secret_access_key",
					      NULL};
	char *sdir = tp_sprintf("%s/secrets", dir);
	char *docs, *yaml;
	ts_result r;
	json_t *log;
	const char *args[] = {"apply", pdir, "--state", db, "--auto-approve", NULL};
	const char *plan[] = {"plan", pdir, "--state", db, "--refresh", NULL};
	const char *env[] = {"AB_CLIENT_ID=" AB_CLIENT_ID, "AB_CLIENT_SECRET=" AB_CLIENT_SECRET,
			     NULL};

	ab_fake_start(&fk, dir, NULL);
	for (size_t i = 0; secrets[i]; i++) {
		char *rel = tp_sprintf("secrets/%s", secrets[i]);
		char *val = tp_sprintf("canary-kickstart-%zu\n", i);
		ts_write(dir, rel, val);
		free(rel);
		free(val);
	}
	docs = standalone_ingestion(sdir);
	ts_write(dir, "p/resources/ingestion.yaml", docs);
	/* the provider block as the kickstart writes it, pointed at the fake through `url` */
	yaml = tp_sprintf("pipeline: rainshield\n"
			  "providers:\n"
			  "  airbyte:\n"
			  "    url: \"%s\"\n"
			  "    workspace: default\n"
			  "    client_id: \"${secret:env:AB_CLIENT_ID}\"\n"
			  "    client_secret: \"${secret:env:AB_CLIENT_SECRET}\"\n",
			  fk.base);
	ts_write(dir, "p/tapestry.yaml", yaml);
	r = ts_run_tapestry(args, env);
	expect_ok(&r, "Apply complete! Resources: 5 added, 0 changed, 0 destroyed.");
	expect_no_canary(&r);
	ts_result_free(&r);
	log = ab_log(&fk);
	cr_assert_eq(ab_writes(log, 0), 5, "%s", ab_log_summary(log, 0));
	json_decref(log);
	{
		json_t *c = ab_find(&fk, "/connections", "name",
				    "Salesforce → Snowflake RAW.SALESFORCE");
		cr_assert_not_null(c);
		cr_assert_str_eq(json_string_value(tp_json_path_get(c, "schedule.cronExpression")),
				 "0 0 */6 * * ? UTC");
		cr_assert_str_eq(
			json_string_value(tp_json_path_get(c, "configurations.streams.0.syncMode")),
			"incremental_deduped_history");
		cr_assert_str_eq(json_string_value(json_object_get(c, "namespaceFormat")),
				 "KICKSTART");
		json_decref(c);
	}
	/* and what Airbyte answers compares equal to what was applied */
	r = ts_run_tapestry(plan, env);
	expect_ok(&r, "No changes.");
	cr_assert_null(strstr(r.out, "Drift"), "%s", r.out);
	ts_result_free(&r);
	free(docs);
	free(yaml);
	free(sdir);
}

Test(airbyte_apply, replacing_a_source_replaces_its_connections_in_order)
{
	ts_result r;
	char *src, *dst, *conn_text, *all, *old_sid, *new_sid;
	json_t *conn;
	size_t mark;
	json_t *log;
	start(NULL);
	resources(true, true, NULL);
	r = apply();
	expect_ok(&r, "3 added");
	ts_result_free(&r);
	old_sid = live_id("/sources", "sourceId", "Zoom webinars");
	/* a workspace is immutable: moving source and destination replaces both, and the
	 * connection between them (its source and destination change): the old connection is
	 * deleted before the old source and destination, the new one created after theirs */
	{
		ab_reply w = ab_api(&fk, "POST", "/workspaces", "{\"name\":\"analytics\"}");
		cr_assert_eq(w.status, 200, "%s", w.text);
		ab_reply_free(&w);
	}
	src = ts_replace(SOURCE, "  name: Zoom webinars\n",
			 "  name: Zoom webinars\n  workspace: analytics\n");
	dst = ts_replace(DESTINATION, "  name: Snowflake RAW\n",
			 "  name: Snowflake RAW\n  workspace: analytics\n");
	conn_text = ts_replace(CONNECTION, "@MODE@", "full_refresh_overwrite");
	all = tp_sprintf("%s---\n%s---\n%s", src, dst, conn_text);
	ts_write(dir, "p/resources/ingestion.yaml", all);
	mark = ab_log_len(&fk);
	r = apply();
	expect_ok(&r, "Apply complete! Resources: 3 added, 0 changed, 3 destroyed.");
	ts_result_free(&r);
	log = ab_log(&fk);
	cr_assert_eq(ab_count(log, mark, "DELETE", "/connections/"), 1, "%s",
		     ab_log_summary(log, mark));
	cr_assert_eq(ab_count(log, mark, "POST", "/connections"), 1, "%s",
		     ab_log_summary(log, mark));
	json_decref(log);
	new_sid = live_id("/sources", "sourceId", "Zoom webinars");
	cr_assert_str_neq(new_sid, old_sid);
	conn = ab_find(&fk, "/connections", "sourceId", new_sid);
	cr_assert_not_null(conn, "the connection was not created on the new source");
	json_decref(conn);
	r = apply();
	expect_ok(&r, "No changes.");
	ts_result_free(&r);
	free(src);
	free(dst);
	free(conn_text);
	free(all);
	free(old_sid);
	free(new_sid);
}
