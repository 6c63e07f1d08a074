/*
 * The Airbyte fake itself (tests/fakes/airbyte): a fake that is lenient where the real API is
 * strict would let reconciler bugs through, so its strictness is tested on its own — tokens,
 * request validation against the spec subset (required, types, enums, unknown fields), masked
 * secrets, PATCH merge vs PUT replace, pagination with absolute next links, soft deletes that
 * cascade, connection semantics (cron " UTC", catalog order, filled-in keys), jobs, injected
 * failures and latency, the request log, and a clean stop on SIGTERM.
 */
#include "ab_fake.h"

static char *dir;
static ab_fake fk;

static void setup(void)
{
	dir = ts_tmpdir();
}

static void teardown(void)
{
	ab_fake_stop(&fk);
	ts_rmtree(dir);
	free(dir);
}

TestSuite(airbyte_fake, .init = setup, .fini = teardown, .timeout = 60);

static const char *problem_detail(const ab_reply *r)
{
	const char *d = json_string_value(json_object_get(r->json, "detail"));
	return d ? d : "";
}

static char *workspace_id(void)
{
	ab_reply r = ab_api(&fk, "GET", "/workspaces", NULL);
	char *id;
	cr_assert_eq(r.status, 200, "%s", r.text);
	id = tp_strdup(json_string_value(json_object_get(
		json_array_get(json_object_get(r.json, "data"), 0), "workspaceId")));
	ab_reply_free(&r);
	return id;
}

/* Creates an object and returns its id (field id_key of the answer). */
static char *create(const char *path, const char *id_key, const char *body)
{
	ab_reply r = ab_api(&fk, "POST", path, body);
	char *id;
	cr_assert_eq(r.status, 200, "POST %s: %s", path, r.text);
	id = tp_strdup(json_string_value(json_object_get(r.json, id_key)));
	ab_reply_free(&r);
	return id;
}

static char *zoom_source(const char *ws, const char *secret)
{
	char *body = tp_sprintf("{\"name\":\"zoom\",\"workspaceId\":\"%s\",\"configuration\":{"
				"\"sourceType\":\"zoom\",\"account_id\":\"acct\",\"client_id\":"
				"\"cid\",\"client_secret\":\"%s\",\"authorization_endpoint\":"
				"\"https://zoom.us/oauth/token\"}}",
				ws, secret);
	char *id = create("/sources", "sourceId", body);
	free(body);
	return id;
}

static char *devnull(const char *ws, const char *name)
{
	char *body = tp_sprintf("{\"name\":\"%s\",\"workspaceId\":\"%s\",\"configuration\":{"
				"\"destinationType\":\"dev-null\"}}",
				name, ws);
	char *id = create("/destinations", "destinationId", body);
	free(body);
	return id;
}

Test(airbyte_fake, tokens_are_required_and_checked)
{
	char *url;
	ab_reply r;
	ab_fake_start(&fk, dir, (const char *[]){"--token-ttl", "1", NULL});
	url = tp_sprintf("%s/applications/token", fk.base);
	r = ab_http("POST", url, NULL,
		    "{\"client_id\":\"" AB_CLIENT_ID "\",\"client_secret\":"
		    "\"wrong\",\"grant_type\":\"client_credentials\"}");
	cr_assert_eq(r.status, 401, "%s", r.text);
	cr_assert_str_eq(json_string_value(json_object_get(r.json, "title")), "unauthorized");
	ab_reply_free(&r);
	r = ab_http("POST", url, NULL,
		    "{\"client_id\":\"" AB_CLIENT_ID "\",\"client_secret\":\"" AB_CLIENT_SECRET
		    "\"}");
	cr_assert_eq(r.status, 400, "grant_type is required: %s", r.text);
	cr_assert(strstr(problem_detail(&r), "grant_type"), "%s", r.text);
	ab_reply_free(&r);
	free(url);

	r = ab_http("GET", fk.base, NULL, NULL); /* the root needs no token */
	ab_reply_free(&r);
	{
		char *ws_url = tp_sprintf("%s/workspaces", fk.base);
		r = ab_http("GET", ws_url, NULL, NULL);
		cr_assert_eq(r.status, 401, "%s", r.text);
		ab_reply_free(&r);
		r = ab_http("GET", ws_url, "not-a-token", NULL);
		cr_assert_eq(r.status, 401);
		ab_reply_free(&r);
		r = ab_http("GET", ws_url, ab_token(&fk), NULL);
		cr_assert_eq(r.status, 200, "%s", r.text);
		ab_reply_free(&r);
		usleep(1100 * 1000); /* --token-ttl 1 */
		r = ab_http("GET", ws_url, ab_token(&fk), NULL);
		cr_assert_eq(r.status, 401);
		cr_assert(strstr(problem_detail(&r), "expired"), "%s", r.text);
		ab_reply_free(&r);
		free(ws_url);
	}
	{
		json_t *log = ab_log(&fk);
		char *text = ts_read(fk.log);
		cr_assert_null(strstr(text, AB_CLIENT_SECRET), "the log never shows credentials");
		cr_assert(strstr(text, "(secret)"));
		free(text);
		json_decref(log);
	}
}

Test(airbyte_fake, requests_are_validated_against_the_spec)
{
	char *ws, *body;
	ab_reply r;
	ab_fake_start(&fk, dir, NULL);
	ws = workspace_id();

	body = tp_sprintf("{\"name\":\"x\",\"workspaceId\":\"%s\",\"configuration\":{"
			  "\"destinationType\":\"dev-null\"},\"color\":\"red\"}",
			  ws);
	r = ab_api(&fk, "POST", "/destinations", body);
	cr_assert_eq(r.status, 400, "unknown field: %s", r.text);
	cr_assert(strstr(problem_detail(&r), "color: unknown field"), "%s", r.text);
	ab_reply_free(&r);
	free(body);

	r = ab_api(&fk, "POST", "/destinations", "{\"name\":\"x\",\"configuration\":{}}");
	cr_assert_eq(r.status, 400);
	cr_assert(strstr(problem_detail(&r), "workspaceId: required"), "%s", r.text);
	ab_reply_free(&r);

	body = tp_sprintf("{\"name\":7,\"workspaceId\":\"%s\",\"configuration\":{}}", ws);
	r = ab_api(&fk, "POST", "/destinations", body);
	cr_assert_eq(r.status, 400);
	cr_assert(strstr(problem_detail(&r), "name: must be a string, got an integer"), "%s",
		  r.text);
	ab_reply_free(&r);
	free(body);

	r = ab_api(&fk, "POST", "/destinations",
		   "{\"name\":\"x\",\"workspaceId\":\"nope\",\"configuration\":{}}");
	cr_assert_eq(r.status, 400);
	cr_assert(strstr(problem_detail(&r), "must be a uuid"), "%s", r.text);
	ab_reply_free(&r);

	r = ab_api(&fk, "POST", "/jobs",
		   "{\"connectionId\":\"00000000-0000-4000-8000-000000000000\",\"jobType\":"
		   "\"resync\"}");
	cr_assert_eq(r.status, 400);
	cr_assert(strstr(problem_detail(&r), "jobType: must be one of sync, reset"), "%s", r.text);
	ab_reply_free(&r);

	r = ab_api(&fk, "GET", "/sources?limit=500", NULL);
	cr_assert_eq(r.status, 400, "%s", r.text);
	ab_reply_free(&r);
	r = ab_api(&fk, "GET", "/sources?pageSize=5", NULL);
	cr_assert_eq(r.status, 400, "%s", r.text);
	cr_assert(strstr(problem_detail(&r), "unknown query parameter"), "%s", r.text);
	ab_reply_free(&r);
	r = ab_api(&fk, "POST", "/sources", "{\"name\": ");
	cr_assert_eq(r.status, 400);
	cr_assert(strstr(problem_detail(&r), "not valid JSON"), "%s", r.text);
	ab_reply_free(&r);

	/* a connector's required configuration is the connector spec's business: 422 */
	body = tp_sprintf("{\"name\":\"z\",\"workspaceId\":\"%s\",\"configuration\":{"
			  "\"sourceType\":\"zoom\",\"client_id\":\"a\"}}",
			  ws);
	r = ab_api(&fk, "POST", "/sources", body);
	cr_assert_eq(r.status, 422, "%s", r.text);
	cr_assert(strstr(problem_detail(&r), "$.account_id: is missing"), "%s", r.text);
	ab_reply_free(&r);
	free(body);
	body = tp_sprintf("{\"name\":\"z\",\"workspaceId\":\"%s\",\"configuration\":{"
			  "\"sourceType\":\"no-such-connector\"}}",
			  ws);
	r = ab_api(&fk, "POST", "/sources", body);
	cr_assert_eq(r.status, 400, "%s", r.text);
	ab_reply_free(&r);
	free(body);
	free(ws);
}

Test(airbyte_fake, secrets_are_masked_patch_merges_and_put_restores_masks)
{
	char *ws, *id, *path, *raw_path, *body;
	ab_reply r;
	ab_fake_start(&fk, dir, NULL);
	ws = workspace_id();
	id = zoom_source(ws, "canary-zoom-a1");
	path = tp_sprintf("/sources/%s", id);
	raw_path = tp_sprintf("/_fake/object?id=%s", id);

	r = ab_api(&fk, "GET", path, NULL);
	cr_assert_eq(r.status, 200);
	cr_assert_str_eq(json_string_value(tp_json_path_get(r.json, "configuration.client_secret")),
			 "**********");
	cr_assert_str_eq(json_string_value(tp_json_path_get(r.json, "configuration.account_id")),
			 "acct", "a field the connector does not mark comes back in clear");
	cr_assert_null(tp_json_path_get(r.json, "configuration.sourceType"));
	cr_assert_str_eq(json_string_value(json_object_get(r.json, "sourceType")), "zoom");
	cr_assert(strstr(r.text, "canary") == NULL);
	ab_reply_free(&r);
	r = ab_api(&fk, "GET", "/sources", NULL);
	cr_assert(strstr(r.text, "canary") == NULL, "lists are masked too");
	ab_reply_free(&r);

	/* PATCH merges: untouched keys stay, and the mask sent back is stored as the value */
	r = ab_api(&fk, "PATCH", path,
		   "{\"configuration\":{\"account_id\":\"acct2\","
		   "\"client_id\":\"**********\"}}");
	cr_assert_eq(r.status, 200, "%s", r.text);
	ab_reply_free(&r);
	r = ab_control(&fk, "GET", raw_path, NULL);
	cr_assert_str_eq(json_string_value(tp_json_path_get(r.json, "configuration.account_id")),
			 "acct2");
	cr_assert_str_eq(json_string_value(tp_json_path_get(r.json, "configuration.client_id")),
			 "**********", "PATCH does not treat the mask specially");
	cr_assert_str_eq(json_string_value(tp_json_path_get(r.json, "configuration.client_secret")),
			 "canary-zoom-a1");
	ab_reply_free(&r);

	/* PUT replaces: a key left out is gone, a masked value keeps the stored secret */
	body = tp_strdup("{\"name\":\"zoom\",\"configuration\":{\"account_id\":\"acct3\","
			 "\"client_id\":\"cid3\",\"client_secret\":\"**********\","
			 "\"authorization_endpoint\":\"https://zoom.us/oauth/token\"}}");
	r = ab_api(&fk, "PUT", path, body);
	cr_assert_eq(r.status, 200, "%s", r.text);
	ab_reply_free(&r);
	free(body);
	r = ab_control(&fk, "GET", raw_path, NULL);
	cr_assert_str_eq(json_string_value(tp_json_path_get(r.json, "configuration.client_secret")),
			 "canary-zoom-a1", "PUT keeps the stored secret for the mask");
	cr_assert_str_eq(json_string_value(tp_json_path_get(r.json, "configuration.client_id")),
			 "cid3");
	ab_reply_free(&r);
	r = ab_api(&fk, "PUT", path,
		   "{\"name\":\"zoom\",\"configuration\":{\"account_id\":\"a\"}}");
	cr_assert_eq(r.status, 422, "PUT checks the whole configuration: %s", r.text);
	ab_reply_free(&r);
	{
		char *text = ts_read(fk.log);
		cr_assert_null(strstr(text, "canary-zoom-a1"), "secrets never reach the log");
		cr_assert(strstr(text, "\"client_secret\":\"**********\""),
			  "the mask sent as such shows in the log");
		free(text);
	}
	free(ws);
	free(id);
	free(path);
	free(raw_path);
}

Test(airbyte_fake, lists_paginate_with_next_links_from_the_public_url)
{
	char *ws;
	ab_reply r;
	ab_fake_start(&fk, dir,
		      (const char *[]){"--public-url",
				       "http://airbyte.elsewhere:8000/api/public/v1", NULL});
	ws = workspace_id();
	for (int i = 0; i < 45; i++) {
		char name[16];
		snprintf(name, sizeof(name), "d%02d", i);
		free(devnull(ws, name));
	}
	r = ab_api(&fk, "GET", "/destinations", NULL);
	cr_assert_eq(json_array_size(json_object_get(r.json, "data")), 20, "default limit 20");
	cr_assert_str_eq(json_string_value(json_object_get(r.json, "next")),
			 "http://airbyte.elsewhere:8000/api/public/v1/destinations?limit=20&"
			 "offset=20");
	cr_assert_null(json_object_get(r.json, "previous"));
	ab_reply_free(&r);
	r = ab_api(&fk, "GET", "/destinations?limit=20&offset=40", NULL);
	cr_assert_eq(json_array_size(json_object_get(r.json, "data")), 5);
	cr_assert_str_eq(json_string_value(tp_json_path_get(r.json, "data.0.name")), "d40");
	cr_assert_not_null(json_object_get(r.json, "next"), "next is set even on the last page");
	cr_assert_str_eq(json_string_value(json_object_get(r.json, "previous")),
			 "http://airbyte.elsewhere:8000/api/public/v1/destinations?limit=20&"
			 "offset=20");
	ab_reply_free(&r);
	{
		char *q = tp_sprintf("/destinations?workspaceIds=%s&limit=100", ws);
		r = ab_api(&fk, "GET", q, NULL);
		cr_assert_eq(json_array_size(json_object_get(r.json, "data")), 45);
		ab_reply_free(&r);
		free(q);
	}
	r = ab_api(&fk, "GET", "/destinations?workspaceIds=00000000-0000-4000-8000-000000000000",
		   NULL);
	cr_assert_eq(json_array_size(json_object_get(r.json, "data")), 0);
	ab_reply_free(&r);
	free(ws);
}

Test(airbyte_fake, connections_answer_like_airbyte_and_deletes_cascade)
{
	char *ws, *src, *dst, *body, *cid, *path;
	ab_reply r;
	json_t *streams;
	ab_fake_start(&fk, dir, NULL);
	ws = workspace_id();
	src = zoom_source(ws, "s1");
	dst = devnull(ws, "sink");

	body = tp_sprintf("{\"sourceId\":\"%s\",\"destinationId\":\"%s\",\"configurations\":{"
			  "\"streams\":[{\"name\":\"no_such_stream\"}]}}",
			  src, dst);
	r = ab_api(&fk, "POST", "/connections", body);
	cr_assert_eq(r.status, 422, "%s", r.text);
	cr_assert(strstr(problem_detail(&r), "not in the source's catalog"), "%s", r.text);
	ab_reply_free(&r);
	free(body);
	body = tp_sprintf(
		"{\"sourceId\":\"%s\",\"destinationId\":\"%s\",\"configurations\":{"
		"\"streams\":[{\"name\":\"users\",\"syncMode\":\"incremental_append\"}]}}",
		src, dst);
	r = ab_api(&fk, "POST", "/connections", body);
	cr_assert_eq(r.status, 422, "zoom users has no incremental mode: %s", r.text);
	ab_reply_free(&r);
	free(body);
	body = tp_sprintf("{\"sourceId\":\"%s\",\"destinationId\":\"%s\",\"schedule\":{"
			  "\"scheduleType\":\"cron\",\"cronExpression\":\"0 * * * * ?\"}}",
			  src, dst);
	r = ab_api(&fk, "POST", "/connections", body);
	cr_assert_eq(r.status, 422, "more often than hourly: %s", r.text);
	ab_reply_free(&r);
	free(body);

	body = tp_sprintf("{\"sourceId\":\"%s\",\"destinationId\":\"%s\",\"name\":\"c\","
			  "\"schedule\":{\"scheduleType\":\"cron\",\"cronExpression\":"
			  "\"0 0 6 * * ?\"},\"configurations\":{\"streams\":["
			  "{\"name\":\"webinar_registrants\",\"selectedFields\":[{\"fieldPath\":"
			  "[\"email\"]}]},{\"name\":\"users\"}]}}",
			  src, dst);
	cid = create("/connections", "connectionId", body);
	free(body);
	path = tp_sprintf("/connections/%s", cid);
	r = ab_api(&fk, "GET", path, NULL);
	cr_assert_str_eq(json_string_value(tp_json_path_get(r.json, "schedule.cronExpression")),
			 "0 0 6 * * ? UTC");
	streams = tp_json_path_get(r.json, "configurations.streams");
	cr_assert_eq(json_array_size(streams), 2);
	cr_assert_str_eq(json_string_value(tp_json_path_get(streams, "0.name")), "users",
			 "streams come back in catalog order");
	cr_assert_str_eq(json_string_value(tp_json_path_get(streams, "0.syncMode")),
			 "full_refresh_overwrite", "the default sync mode is filled in");
	cr_assert_str_eq(json_string_value(tp_json_path_get(streams, "0.primaryKey.0.0")), "id",
			 "the source-defined primary key is filled in");
	cr_assert_eq(json_array_size(tp_json_path_get(streams, "0.selectedFields")), 0,
		     "no field selection comes back as []");
	cr_assert_str_eq(json_string_value(json_object_get(r.json, "namespaceFormat")),
			 "${SOURCE_NAMESPACE}");
	ab_reply_free(&r);

	r = ab_api(&fk, "PATCH", path, "{\"sourceId\":\"00000000-0000-4000-8000-000000000000\"}");
	cr_assert_eq(r.status, 400, "sourceId cannot be patched: %s", r.text);
	ab_reply_free(&r);
	{
		char *raw = tp_sprintf("/_fake/object?id=%s", cid);
		ab_reply c = ab_control(&fk, "PATCH", raw, "{\"status\":\"locked\"}");
		cr_assert_eq(c.status, 200);
		ab_reply_free(&c);
		r = ab_api(&fk, "PATCH", path, "{\"prefix\":\"x_\"}");
		cr_assert_eq(r.status, 409, "a locked connection refuses PATCH: %s", r.text);
		ab_reply_free(&r);
		c = ab_control(&fk, "PATCH", raw, "{\"status\":\"active\"}");
		ab_reply_free(&c);
		free(raw);
	}
	/* jobs: one sync at a time */
	body = tp_sprintf("{\"connectionId\":\"%s\",\"jobType\":\"sync\"}", cid);
	r = ab_api(&fk, "POST", "/jobs", body);
	cr_assert_eq(r.status, 200, "%s", r.text);
	cr_assert_str_eq(json_string_value(json_object_get(r.json, "status")), "running");
	ab_reply_free(&r);
	r = ab_api(&fk, "POST", "/jobs", body);
	cr_assert_eq(r.status, 409, "%s", r.text);
	ab_reply_free(&r);
	free(body);
	r = ab_api(&fk, "DELETE", "/jobs/1", NULL);
	cr_assert_eq(r.status, 200, "%s", r.text);
	cr_assert_str_eq(json_string_value(json_object_get(r.json, "status")), "cancelled");
	ab_reply_free(&r);

	/* deleting the source soft-deletes its connection */
	{
		char *sp = tp_sprintf("/sources/%s", src);
		r = ab_api(&fk, "DELETE", sp, NULL);
		cr_assert_eq(r.status, 204);
		ab_reply_free(&r);
		r = ab_api(&fk, "GET", sp, NULL);
		cr_assert_eq(r.status, 404);
		cr_assert_str_eq(json_string_value(json_object_get(r.json, "title")),
				 "resource-not-found");
		ab_reply_free(&r);
		free(sp);
	}
	r = ab_api(&fk, "GET", path, NULL);
	cr_assert_eq(r.status, 404, "%s", r.text);
	ab_reply_free(&r);
	r = ab_api(&fk, "GET", "/connections?includeDeleted=true", NULL);
	cr_assert_eq(json_array_size(json_object_get(r.json, "data")), 1);
	ab_reply_free(&r);
	free(ws);
	free(src);
	free(dst);
	free(cid);
	free(path);
}

Test(airbyte_fake, failures_latency_and_a_clean_stop)
{
	ab_reply r;
	int64_t t0;
	ab_fake_start(&fk, dir,
		      (const char *[]){"--fail-every", "3", "--fail-status", "429", "--latency-ms",
				       "150", NULL});
	ab_token(&fk); /* token requests are not counted */
	t0 = tp_clock_mono_ms();
	r = ab_api(&fk, "GET", "/workspaces", NULL);
	cr_assert(tp_clock_mono_ms() - t0 >= 150, "latency is injected");
	cr_assert_eq(r.status, 200);
	ab_reply_free(&r);
	r = ab_api(&fk, "GET", "/workspaces", NULL);
	cr_assert_eq(r.status, 200);
	ab_reply_free(&r);
	r = ab_api(&fk, "GET", "/workspaces", NULL);
	cr_assert_eq(r.status, 429, "every third request: %s", r.text);
	ab_reply_free(&r);

	/* injected: a malformed answer, and a write whose answer is lost after it happened */
	r = ab_control(&fk, "POST", "/_fake/faults",
		       "{\"status\":200,\"method\":\"GET\",\"path\":\"/workspaces\",\"body\":"
		       "\"{not json\"}");
	cr_assert_eq(r.status, 200, "%s", r.text);
	ab_reply_free(&r);
	r = ab_api(&fk, "GET", "/workspaces", NULL);
	cr_assert_eq(r.status, 200);
	cr_assert_str_eq(r.text, "{not json");
	ab_reply_free(&r);
	r = ab_control(
		&fk, "POST", "/_fake/faults",
		"{\"status\":502,\"method\":\"POST\",\"path\":\"/workspaces\",\"after\":true}");
	ab_reply_free(&r);
	r = ab_api(&fk, "POST", "/workspaces", "{\"name\":\"second\"}");
	cr_assert_eq(r.status, 502);
	ab_reply_free(&r);
	r = ab_api(&fk, "GET", "/workspaces", NULL); /* the 6th request: fails (429) */
	ab_reply_free(&r);
	r = ab_api(&fk, "GET", "/workspaces", NULL);
	cr_assert_eq(r.status, 200, "%s", r.text);
	cr_assert_eq(json_array_size(json_object_get(r.json, "data")), 2,
		     "the create happened although its answer was lost");
	ab_reply_free(&r);
	{
		int st = 0;
		pid_t pid = fk.pid;
		cr_assert_eq(kill(pid, SIGTERM), 0);
		for (int i = 0; i < 250 && waitpid(pid, &st, WNOHANG) != pid; i++)
			usleep(20000);
		cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "SIGTERM: exit 0 (status %d)", st);
		fk.pid = 0;
	}
}

/* --fail-rate: seeded random 5xx, 429 with Retry-After and connection resets on every API
 * request, the same draws for the same seed, each logged with its fault and arrival time; a
 * malformed spec is refused. (libcurl sends a request again on a fresh connection when a
 * reused one is reset before any answer, so the fake's log, not the client, counts them.) */
static void draw_sequence(const char *seed, char *out, size_t n)
{
	tp_http_client *c = tp_http_client_new();
	char *url;
	json_t *log;
	ab_fake_start(&fk, dir,
		      (const char *[]){"--fail-rate", "429:0.3,503:0.2,reset:0.3", "--retry-after", "3",
				       "--seed", seed, NULL});
	url = tp_sprintf("%s/health", fk.base);
	for (size_t i = 0; i < 200; i++) {
		tp_http_request rq = {.method = "GET", .url = url, .timeout_ms = 10000};
		tp_http_reply rp = {0};
		int rc = tp_http_client_do(c, &rp, &rq);
		cr_assert(rc == 0 || rc == TP_ETRANSIENT, "%s", tp_error_last());
		if (rc == 0 && rp.status == 429)
			cr_assert_eq(rp.retry_after_ms, 3000);
		if (rc == 0)
			cr_assert(rp.status == 200 || rp.status == 429 || rp.status == 503, "%ld",
				  rp.status);
		tp_http_reply_clear(&rp);
	}
	log = ab_log(&fk);
	cr_assert_geq(json_array_size(log), 200);
	out[0] = '\0';
	for (size_t i = 0; i < json_array_size(log) && i + 1 < n; i++) {
		json_t *e = json_array_get(log, i);
		const char *f = tp_json_get_str(e, "fault");
		long st = (long)json_integer_value(json_object_get(e, "status"));
		cr_assert(json_integer_value(json_object_get(e, "ts")) > 0);
		out[i] = !f || !*f ? '.' : strcmp(f, "429") == 0 ? 'T' : strcmp(f, "503") == 0 ? 'U'
			 : strcmp(f, "reset") == 0 ? 'R' : '?';
		cr_assert_eq(st, out[i] == 'T' ? 429 : out[i] == 'U' ? 503 : out[i] == 'R' ? 0 : 200);
		out[i + 1] = '\0';
	}
	json_decref(log);
	free(url);
	tp_http_client_free(c);
}

Test(airbyte_fake, seeded_fail_rate_with_throttling_and_resets)
{
	char a[512], b[512];
	size_t counts[128] = {0};
	draw_sequence("7", a, sizeof(a));
	for (size_t i = 0; a[i]; i++)
		counts[(unsigned char)a[i]]++;
	cr_assert(counts['T'] > 30 && counts['R'] > 30 && counts['U'] > 15 && counts['.'] > 15,
		  "drew %s", a);
	cr_assert_eq(counts['?'], 0, "%s", a);
	ab_fake_stop(&fk);
	draw_sequence("7", b, sizeof(b));
	/* one draw per request received, in order: the same sequence (as far as both went) */
	cr_assert_eq(strncmp(a, b, 200), 0, "the same seed draws the same faults:\n%s\n%s", a, b);
	ab_fake_stop(&fk);
	draw_sequence("8", b, sizeof(b));
	cr_assert_str_neq(a, b, "another seed draws others");
}

Test(airbyte_fake, a_malformed_fail_rate_is_refused)
{
	static const char *const bad[] = {"429", "404:0.1", "503:2", "503:0.7,429:0.7", "drop:0.1"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		pid_t pid = fork();
		int st = 0;
		cr_assert(pid >= 0);
		if (pid == 0) {
			int null = open("/dev/null", O_WRONLY);
			dup2(null, 1);
			dup2(null, 2);
			execl(TP_BUILD_DIR "/fake_airbyte", "fake_airbyte", "--port", "0", "--client-id",
			      "x", "--client-secret", "y", "--fail-rate", bad[i], (char *)NULL);
			_exit(127);
		}
		waitpid(pid, &st, 0);
		cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 64, "--fail-rate %s: status %d", bad[i],
			  st);
	}
}
