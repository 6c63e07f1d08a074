/*
 * The airbyte provider's client, session and slots in-process against the strict fake:
 * tokens (one per session, refreshed before expiry, refreshed once after a 401 and then a
 * clear failure, static tokens never refreshed, bad credentials), pagination that never
 * follows a `next` link to another host, malformed answers, problem responses (409, 422) with
 * their title and detail, reads retried and writes not, workspaces looked up once, catalogs
 * cached and re-discovered, and the slots' ownership rules (a retried create finds its own
 * object, a stranger's object is refused, adopt refuses to guess, a source with connections
 * is not deleted).
 */
#include "ab_fake.h"

#include "reconcilers/airbyte/airbyte_int.h"

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

TestSuite(airbyte_client, .init = setup, .fini = teardown, .timeout = 90);

static tp_ab_client *client(void)
{
	tp_ab_client *c = NULL;
	tp_ab_client_opts o = {0};
	o.base_url = fk.base;
	o.client_id = AB_CLIENT_ID;
	o.client_secret = AB_CLIENT_SECRET;
	o.read_backoff_ms = 10;
	cr_assert_eq(tp_ab_client_new(&c, &o), 0, "%s", tp_error_last());
	return c;
}

static tp_ab_session *session(const char *workspace)
{
	json_t *conf = json_pack("{s:s,s:s,s:s}", "url", fk.base, "client_id", AB_CLIENT_ID,
				 "client_secret", AB_CLIENT_SECRET);
	tp_provider_env env = {0};
	void *s = NULL;
	if (workspace)
		json_object_set_new(conf, "workspace", json_string(workspace));
	env.pipeline = "test";
	env.config = conf;
	cr_assert_eq(tp_provider_airbyte.open(&s, &env), 0, "%s", tp_error_last());
	json_decref(conf);
	return s;
}

static void inject(const char *fault_json)
{
	ab_reply r = ab_control(&fk, "POST", "/_fake/faults", fault_json);
	cr_assert_eq(r.status, 200, "%s", r.text);
	ab_reply_free(&r);
}

static size_t token_requests(const json_t *log, size_t from)
{
	return ab_count(log, from, "POST", "/applications/token");
}

Test(airbyte_client, one_token_per_client_refreshed_before_it_expires)
{
	tp_ab_client *c;
	tp_ab_client_stats st;
	json_t *log, *v = NULL;
	ab_fake_start(&fk, dir, (const char *[]){"--token-ttl", "2", NULL});
	c = client();
	for (int i = 0; i < 3; i++) {
		cr_assert_eq(tp_ab_call(c, &v, "GET", "/workspaces", NULL, NULL), 0, "%s",
			     tp_error_last());
		json_decref(v);
	}
	tp_ab_client_get_stats(c, &st);
	cr_assert_eq(st.token_requests, 1);
	cr_assert_eq(st.requests, 3);
	/* a 2 s token is renewed in its last quarter, before the server would refuse it */
	usleep(1600 * 1000);
	cr_assert_eq(tp_ab_call(c, &v, "GET", "/workspaces", NULL, NULL), 0, "%s", tp_error_last());
	json_decref(v);
	log = ab_log(&fk);
	cr_assert_eq(token_requests(log, 0), 2);
	cr_assert_eq(ab_count(log, 0, NULL, NULL) - token_requests(log, 0), 4);
	for (size_t i = 0; i < json_array_size(log); i++)
		cr_assert_eq(json_integer_value(json_object_get(json_array_get(log, i), "status")),
			     200, "never refused: %s", ab_log_summary(log, 0));
	json_decref(log);
	tp_ab_client_free(c);
}

Test(airbyte_client, a_401_refreshes_the_token_once_then_fails_clearly)
{
	tp_ab_client *c;
	json_t *v = NULL, *log;
	size_t mark;
	ab_fake_start(&fk, dir, NULL);
	c = client();
	cr_assert_eq(tp_ab_call(c, &v, "GET", "/workspaces", NULL, NULL), 0, "%s", tp_error_last());
	json_decref(v);

	/* every token revoked behind our back: one 401, a new token, the call goes through */
	ab_reply r = ab_control(&fk, "POST", "/_fake/revoke", NULL);
	ab_reply_free(&r);
	mark = ab_log_len(&fk);
	cr_assert_eq(tp_ab_call(c, &v, "GET", "/workspaces", NULL, NULL), 0, "%s", tp_error_last());
	json_decref(v);
	log = ab_log(&fk);
	cr_assert_eq(ab_count(log, mark, NULL, NULL), 3, "%s", ab_log_summary(log, mark));
	cr_assert_eq(json_integer_value(tp_json_path_get(log, "1.status")), 200);
	cr_assert_eq(token_requests(log, mark), 1);
	json_decref(log);

	/* refused again with the fresh token: a clear failure after exactly one refresh */
	inject("{\"status\":401,\"method\":\"GET\",\"path\":\"/sources\",\"count\":5}");
	mark = ab_log_len(&fk);
	cr_assert_eq(tp_ab_call(c, &v, "GET", "/sources", NULL, NULL), TP_EAUTH);
	cr_assert_null(v);
	cr_assert(strstr(tp_error_last(), "airbyte: GET /sources: HTTP 401: unauthorized: "
					  "injected failure (401) (refused again with a freshly "
					  "issued access token)"),
		  "%s", tp_error_last());
	log = ab_log(&fk);
	cr_assert_eq(token_requests(log, mark), 1, "%s", ab_log_summary(log, mark));
	cr_assert_eq(ab_count(log, mark, "GET", "/sources"), 2);
	json_decref(log);
	tp_ab_client_free(c);
}

/* Found by bench/reliability/faults.sh: a 503 or 429 from the token endpoint failed the call
 * it was fetched for (reads included, which are otherwise retried), so one bad answer there
 * failed a whole run's observation. Nothing of the call was sent yet: the token is asked for
 * again, honouring Retry-After. */
Test(airbyte_client, a_token_endpoint_that_fails_transiently_is_asked_again)
{
	tp_ab_client *c;
	json_t *v = NULL, *log;
	int64_t t0;
	ab_fake_start(&fk, dir, NULL);
	c = client();
	inject("{\"status\":429,\"method\":\"POST\",\"path\":\"/applications/token\","
	       "\"retry_after\":1}");
	inject("{\"status\":503,\"method\":\"POST\",\"path\":\"/applications/token\"}");
	t0 = tp_clock_mono_ms();
	cr_assert_eq(tp_ab_call(c, &v, "GET", "/workspaces", NULL, NULL), 0, "%s", tp_error_last());
	cr_assert_geq(tp_clock_mono_ms() - t0, 1000, "Retry-After: 1 was not waited for");
	json_decref(v);
	log = ab_log(&fk);
	cr_assert_eq(token_requests(log, 0), 3, "%s", ab_log_summary(log, 0));
	cr_assert_eq(ab_count(log, 0, "GET", "/workspaces"), 1, "%s", ab_log_summary(log, 0));
	json_decref(log);

	/* bounded: a token endpoint that keeps failing fails the call after the read attempts */
	tp_ab_client_free(c);
	c = client();
	inject("{\"status\":503,\"method\":\"POST\",\"path\":\"/applications/token\","
	       "\"count\":10}");
	cr_assert_eq(tp_ab_call(c, &v, "GET", "/workspaces", NULL, NULL), TP_ETRANSIENT);
	cr_assert(strstr(tp_error_last(), "getting an access token") ||
		  strstr(tp_error_last(), "/applications/token"), "%s", tp_error_last());
	log = ab_log(&fk);
	cr_assert_eq(token_requests(log, 0), 6, "%s", ab_log_summary(log, 0));
	json_decref(log);
	tp_ab_client_free(c);
}

Test(airbyte_client, static_tokens_and_bad_credentials_fail_without_leaking)
{
	tp_ab_client *c = NULL;
	tp_ab_client_opts o = {0};
	json_t *v = NULL, *log;
	ab_fake_start(&fk, dir, NULL);
	o.base_url = fk.base;
	o.token = "canary-static-token";
	cr_assert_eq(tp_ab_client_new(&c, &o), 0);
	cr_assert_eq(tp_ab_call(c, &v, "GET", "/workspaces", NULL, NULL), TP_EAUTH);
	cr_assert(strstr(tp_error_last(), "HTTP 401: unauthorized: invalid access token"), "%s",
		  tp_error_last());
	cr_assert_null(strstr(tp_error_last(), "canary"));
	tp_ab_client_free(c);

	o.token = NULL;
	o.client_id = AB_CLIENT_ID;
	o.client_secret = "canary-wrong-secret";
	cr_assert_eq(tp_ab_client_new(&c, &o), 0);
	cr_assert_eq(tp_ab_call(c, &v, "GET", "/workspaces", NULL, NULL), TP_EAUTH);
	cr_assert(strstr(tp_error_last(), "airbyte: POST /applications/token: HTTP 401: "
					  "unauthorized: Invalid client credentials (check "
					  "providers.airbyte client_id and client_secret)"),
		  "%s", tp_error_last());
	cr_assert_null(strstr(tp_error_last(), "canary"));
	tp_ab_client_free(c);
	log = ab_log(&fk);
	cr_assert_eq(token_requests(log, 0), 1, "static tokens are never refreshed");
	json_decref(log);

	o.client_secret = NULL;
	cr_assert_eq(tp_ab_client_new(&c, &o), TP_EINVALID);
	cr_assert(strstr(tp_error_last(), "set client_id and client_secret"), "%s",
		  tp_error_last());
	o.client_secret = "x";
	o.base_url = "airbyte.internal:8000";
	cr_assert_eq(tp_ab_client_new(&c, &o), TP_EINVALID);
}

Test(airbyte_client, lists_page_by_offset_and_never_follow_next)
{
	ab_fake other;
	tp_ab_client *c;
	json_t *all = NULL, *log;
	char *ws, *public_url;
	size_t mark;
	/* the server believes it lives elsewhere: its next links point at another server */
	ab_fake_start_named(&other, dir, "other", NULL);
	public_url = tp_sprintf("%s", other.base);
	ab_fake_start(&fk, dir, (const char *[]){"--public-url", public_url, NULL});
	{
		ab_reply r = ab_api(&fk, "GET", "/workspaces", NULL);
		ws = tp_strdup(json_string_value(tp_json_path_get(r.json, "data.0.workspaceId")));
		ab_reply_free(&r);
	}
	for (int i = 0; i < 230; i++) {
		char *body = tp_sprintf("{\"name\":\"d%03d\",\"workspaceId\":\"%s\","
					"\"configuration\":{\"destinationType\":\"dev-null\"}}",
					i, ws);
		ab_reply r = ab_api(&fk, "POST", "/destinations", body);
		cr_assert_eq(r.status, 200, "%s", r.text);
		ab_reply_free(&r);
		free(body);
	}
	c = client();
	mark = ab_log_len(&fk);
	cr_assert_eq(tp_ab_list(c, &all, "/destinations", NULL), 0, "%s", tp_error_last());
	cr_assert_eq(json_array_size(all), 230);
	cr_assert_str_eq(json_string_value(tp_json_path_get(all, "229.name")), "d229");
	json_decref(all);
	log = ab_log(&fk);
	cr_assert_eq(ab_count(log, mark, "GET", "/destinations"), 3, "%s",
		     ab_log_summary(log, mark));
	cr_assert_str_eq(json_string_value(json_object_get(json_array_get(log, mark + 3), "query")),
			 "limit=100&offset=200", "%s", ab_log_summary(log, mark));
	json_decref(log);
	log = ab_log(&other);
	cr_assert_eq(json_array_size(log), 0, "the next link's host got %s",
		     ab_log_summary(log, 0));
	json_decref(log);
	tp_ab_client_free(c);
	ab_fake_stop(&other);
	free(public_url);
	free(ws);
}

Test(airbyte_client, malformed_and_problem_answers_are_reported)
{
	tp_ab_client *c;
	json_t *v = NULL, *body;
	size_t mark;
	ab_fake_start(&fk, dir, NULL);
	c = client();

	inject("{\"status\":200,\"method\":\"GET\",\"path\":\"/workspaces\",\"body\":\"{oops\"}");
	cr_assert_eq(tp_ab_call(c, &v, "GET", "/workspaces", NULL, NULL), TP_EINVALID);
	cr_assert(strstr(tp_error_last(), "airbyte: GET /workspaces: HTTP 200: the answer is not "
					  "valid JSON"),
		  "%s", tp_error_last());
	cr_assert_null(v);
	inject("{\"status\":200,\"method\":\"GET\",\"path\":\"/workspaces\",\"body\":"
	       "\"{\\\"next\\\":\\\"x\\\"}\"}");
	cr_assert_eq(tp_ab_list(c, &v, "/workspaces", NULL), TP_EINVALID);
	cr_assert(strstr(tp_error_last(), "has no `data` list"), "%s", tp_error_last());

	inject("{\"status\":409,\"method\":\"PATCH\"}");
	body = json_pack("{s:s}", "prefix", "x_");
	cr_assert_eq(tp_ab_call(c, &v, "PATCH", "/connections/9924bcd0-99be-453d-ba47-c2c9766f7da5",
				NULL, body),
		     TP_ECONFLICT);
	cr_assert(strstr(tp_error_last(), "airbyte: PATCH /connections/9924bcd0-99be-453d-ba47-"
					  "c2c9766f7da5: HTTP 409: state-conflict: injected "
					  "failure (409)"),
		  "%s", tp_error_last());
	json_decref(body);

	/* a real 422: the connector's specification refuses the configuration */
	{
		ab_reply r = ab_api(&fk, "GET", "/workspaces", NULL);
		body = json_pack("{s:s,s:s,s:{s:s}}", "name", "z", "workspaceId",
				 json_string_value(tp_json_path_get(r.json, "data.0.workspaceId")),
				 "configuration", "sourceType", "zoom");
		ab_reply_free(&r);
	}
	cr_assert_eq(tp_ab_call(c, &v, "POST", "/sources", NULL, body), TP_EINVALID);
	cr_assert(strstr(tp_error_last(), "airbyte: POST /sources: HTTP 422: unprocessable-entity: "
					  "The provided configuration does not fulfill the "
					  "specification."),
		  "%s", tp_error_last());
	json_decref(body);

	/* reads are retried through 5xx and 429; writes are left to the engine */
	inject("{\"status\":503,\"method\":\"GET\",\"path\":\"/workspaces\",\"count\":1}");
	inject("{\"status\":429,\"method\":\"GET\",\"path\":\"/workspaces\",\"retry_after\":0}");
	mark = ab_log_len(&fk);
	cr_assert_eq(tp_ab_call(c, &v, "GET", "/workspaces", NULL, NULL), 0, "%s", tp_error_last());
	json_decref(v);
	inject("{\"status\":503,\"method\":\"POST\",\"path\":\"/workspaces\"}");
	body = json_pack("{s:s}", "name", "w2");
	cr_assert_eq(tp_ab_call(c, &v, "POST", "/workspaces", NULL, body), TP_ETRANSIENT);
	json_decref(body);
	{
		json_t *log = ab_log(&fk);
		cr_assert_eq(ab_count(log, mark, "GET", "/workspaces"), 3, "%s",
			     ab_log_summary(log, mark));
		cr_assert_eq(ab_count(log, mark, "POST", "/workspaces"), 1);
		json_decref(log);
	}
	inject("{\"status\":429,\"method\":\"GET\",\"count\":10,\"retry_after\":0}");
	cr_assert_eq(tp_ab_call(c, &v, "GET", "/workspaces", NULL, NULL), TP_ETHROTTLED);
	tp_ab_client_free(c);
}

Test(airbyte_client, workspaces_are_looked_up_once_and_catalogs_cached)
{
	tp_ab_session *s;
	char *a = NULL, *b = NULL, *src = NULL;
	json_t *cat = NULL, *log;
	size_t mark;
	ab_fake_start(&fk, dir, (const char *[]){"--workspace", "analytics", NULL});
	s = session("analytics");
	cr_assert_eq(tp_ab_workspace_id(s, &a, NULL), 0, "%s", tp_error_last());
	cr_assert_eq(tp_ab_workspace_id(s, &b, "analytics"), 0);
	cr_assert_str_eq(a, b);
	free(b);
	cr_assert_eq(tp_ab_workspace_id(s, &b, "0C31738C-0B2D-4887-B506-E2CD1C39CC35"), 0);
	cr_assert_str_eq(b, "0c31738c-0b2d-4887-b506-e2cd1c39cc35", "ids need no lookup");
	free(b);
	cr_assert_eq(tp_ab_workspace_id(s, &b, "marketing"), TP_ENOTFOUND);
	cr_assert(strstr(tp_error_last(), "no workspace is named \"marketing\" (there are: "
					  "\"analytics\")"),
		  "%s", tp_error_last());
	log = ab_log(&fk);
	cr_assert_eq(ab_count(log, 0, "GET", "/workspaces"), 2, "one lookup per name");
	json_decref(log);

	{
		char *body =
			tp_sprintf("{\"name\":\"pg\",\"workspaceId\":\"%s\",\"configuration\":"
				   "{\"sourceType\":\"postgres\",\"host\":\"db\",\"port\":5432,"
				   "\"database\":\"app\",\"username\":\"u\"}}",
				   a);
		ab_reply r = ab_api(&fk, "POST", "/sources", body);
		src = tp_strdup(json_string_value(json_object_get(r.json, "sourceId")));
		ab_reply_free(&r);
		free(body);
	}
	mark = ab_log_len(&fk);
	for (int i = 0; i < 3; i++) {
		cr_assert_eq(tp_ab_session_catalog(s, &cat, src, false), 0, "%s", tp_error_last());
		cr_assert_eq(json_array_size(cat), 3);
		json_decref(cat);
	}
	/* a stream missing from the cached catalog: discovered fresh, once */
	cr_assert_eq(tp_ab_session_catalog(s, &cat, src, true), 0);
	json_decref(cat);
	cr_assert_neq(tp_ab_session_catalog(s, &cat, src, true), 0);
	log = ab_log(&fk);
	cr_assert_eq(ab_count(log, mark, "GET", "/streams"), 2, "%s", ab_log_summary(log, mark));
	{
		char *want = tp_sprintf("sourceId=%s&ignoreCache=true", src);
		cr_assert_str_eq(
			json_string_value(json_object_get(json_array_get(log, mark + 1), "query")),
			want);
		free(want);
	}
	json_decref(log);
	tp_provider_airbyte.close(s);

	/* --refresh-schemas: the cache is bypassed and discovery asks for a fresh catalog */
	setenv("TAPESTRY_AIRBYTE_REFRESH_SCHEMAS", "1", 1);
	s = session("analytics");
	unsetenv("TAPESTRY_AIRBYTE_REFRESH_SCHEMAS");
	mark = ab_log_len(&fk);
	cr_assert_eq(tp_ab_session_catalog(s, &cat, src, false), 0, "%s", tp_error_last());
	json_decref(cat);
	cr_assert_eq(tp_ab_session_catalog(s, &cat, src, false), 0);
	json_decref(cat);
	log = ab_log(&fk);
	cr_assert_eq(ab_count(log, mark, "GET", "/streams"), 1, "%s", ab_log_summary(log, mark));
	cr_assert(strstr(json_string_value(json_object_get(
				 json_array_get(log, json_array_size(log) - 1), "query")),
			 "ignoreCache=true"),
		  "%s", ab_log_summary(log, mark));
	json_decref(log);
	tp_provider_airbyte.close(s);
	free(a);
	free(src);
}

/* ---------------------------------------------------------------- slots */

static const tp_kind *kind(const char *name)
{
	const tp_kind *k = tp_registry_kind(name);
	cr_assert_not_null(k);
	return k;
}

Test(airbyte_client, a_retried_create_finds_its_object_and_strangers_are_refused)
{
	tp_ab_session *s;
	const tp_kind *dst = kind("airbyte.destination");
	json_t *spec = json_pack("{s:s,s:s,s:{}}", "name", "sink", "connector", "dev-null",
				 "configuration");
	tp_strlist sens = {0};
	tp_op op = {0};
	tp_op_result res = {0}, res2 = {0};
	json_t *log;
	ab_fake_start(&fk, dir, NULL);
	s = session(NULL);
	op.address = "airbyte.destination/sink";
	op.name = "sink";
	op.spec = spec;
	op.sensitive = &sens;
	op.token = "token-1";
	op.marker = "tapestry:test:airbyte.destination/sink";

	/* the create happens, its answer is lost: the engine retries with the same token */
	inject("{\"status\":502,\"method\":\"POST\",\"path\":\"/destinations\",\"after\":true}");
	cr_assert_eq(dst->create(s, &op, &res), TP_ETRANSIENT);
	cr_assert_eq(dst->create(s, &op, &res), 0, "%s", tp_error_last());
	cr_assert_not_null(res.provider_id);
	cr_assert_str_eq(json_string_value(json_object_get(res.outputs, "id")), res.provider_id);
	log = ab_log(&fk);
	cr_assert_eq(ab_count(log, 0, "POST", "/destinations"), 1, "never duplicated");
	json_decref(log);

	/* another create of the same name is not ours: refused */
	op.token = "token-2";
	cr_assert_eq(dst->create(s, &op, &res2), TP_EEXISTS);
	cr_assert(strstr(tp_error_last(), "a destination named \"sink\""), "%s", tp_error_last());
	cr_assert(strstr(tp_error_last(), "does not take over"), "%s", tp_error_last());

	/* adopt (recovery after a crash) finds it by name and connector, from the applied spec */
	op.spec = NULL;
	op.applied = spec;
	cr_assert_eq(dst->adopt(s, &op, &res2), 0, "%s", tp_error_last());
	cr_assert_str_eq(res2.provider_id, res.provider_id);
	tp_op_result_clear(&res2);
	{
		ab_reply r = ab_api(&fk, "GET", "/workspaces", NULL);
		char *body = tp_sprintf(
			"{\"name\":\"sink\",\"workspaceId\":\"%s\",\"configuration\":"
			"{\"destinationType\":\"dev-null\"}}",
			json_string_value(tp_json_path_get(r.json, "data.0.workspaceId")));
		ab_reply c = ab_api(&fk, "POST", "/destinations", body);
		ab_reply_free(&c);
		ab_reply_free(&r);
		free(body);
	}
	cr_assert_eq(dst->adopt(s, &op, &res2), TP_ECONFLICT);
	cr_assert(strstr(tp_error_last(), "cannot tell which one Tapestry created"), "%s",
		  tp_error_last());
	json_object_set_new(spec, "name", json_string("nothing-here"));
	cr_assert_eq(dst->adopt(s, &op, &res2), TP_ENOTFOUND);
	tp_op_result_clear(&res);
	tp_op_result_clear(&res2);
	json_decref(spec);
	tp_provider_airbyte.close(s);
}

Test(airbyte_client, a_source_with_connections_is_not_deleted)
{
	tp_ab_session *s;
	const tp_kind *src = kind("airbyte.source"), *conn = kind("airbyte.connection");
	char *ws, *sid, *did, *cid;
	tp_op op = {0};
	ab_reply r;
	ab_fake_start(&fk, dir, NULL);
	s = session(NULL);
	r = ab_api(&fk, "GET", "/workspaces", NULL);
	ws = tp_strdup(json_string_value(tp_json_path_get(r.json, "data.0.workspaceId")));
	ab_reply_free(&r);
	{
		char *b = tp_sprintf("{\"name\":\"f\",\"workspaceId\":\"%s\",\"configuration\":{"
				     "\"sourceType\":\"faker\"}}",
				     ws);
		r = ab_api(&fk, "POST", "/sources", b);
		sid = tp_strdup(json_string_value(json_object_get(r.json, "sourceId")));
		ab_reply_free(&r);
		free(b);
		b = tp_sprintf("{\"name\":\"n\",\"workspaceId\":\"%s\",\"configuration\":{"
			       "\"destinationType\":\"dev-null\"}}",
			       ws);
		r = ab_api(&fk, "POST", "/destinations", b);
		did = tp_strdup(json_string_value(json_object_get(r.json, "destinationId")));
		ab_reply_free(&r);
		free(b);
		b = tp_sprintf(
			"{\"name\":\"by hand\",\"sourceId\":\"%s\",\"destinationId\":\"%s\"}", sid,
			did);
		r = ab_api(&fk, "POST", "/connections", b);
		cid = tp_strdup(json_string_value(json_object_get(r.json, "connectionId")));
		ab_reply_free(&r);
		free(b);
	}
	op.address = "airbyte.source/f";
	op.provider_id = sid;
	cr_assert_eq(src->remove(s, &op), TP_ECONFLICT);
	cr_assert(strstr(tp_error_last(), "1 connection still uses this source: \"by hand\""), "%s",
		  tp_error_last());
	{
		char *path = tp_sprintf("/sources/%s", sid);
		r = ab_api(&fk, "GET", path, NULL);
		cr_assert_eq(r.status, 200, "nothing was deleted");
		ab_reply_free(&r);
		free(path);
	}

	op.address = "airbyte.connection/c";
	op.provider_id = cid;
	cr_assert_eq(conn->remove(s, &op), 0, "%s", tp_error_last());
	cr_assert_eq(conn->remove(s, &op), 0, "already gone is success");
	op.address = "airbyte.source/f";
	op.provider_id = sid;
	cr_assert_eq(src->remove(s, &op), 0, "%s", tp_error_last());
	cr_assert_eq(src->remove(s, &op), 0);
	tp_provider_airbyte.close(s);
	free(ws);
	free(sid);
	free(did);
	free(cid);
}

Test(airbyte_client, creates_in_one_session_list_the_collection_once)
{
	tp_ab_session *s;
	const tp_kind *dst = kind("airbyte.destination");
	tp_strlist sens = {0};
	json_t *log;
	size_t lists = 0;
	ab_fake_start(&fk, dir, NULL);
	s = session(NULL);
	for (int i = 0; i < 5; i++) {
		char name[16], token[16], address[48];
		json_t *spec;
		tp_op op = {0};
		tp_op_result res = {0};
		snprintf(name, sizeof(name), "sink-%d", i);
		snprintf(token, sizeof(token), "token-%d", i);
		snprintf(address, sizeof(address), "airbyte.destination/%s", name);
		spec = json_pack("{s:s,s:s,s:{}}", "name", name, "connector", "dev-null",
				 "configuration");
		op.address = address;
		op.name = name;
		op.spec = spec;
		op.sensitive = &sens;
		op.token = token;
		cr_assert_eq(dst->create(s, &op, &res), 0, "%s", tp_error_last());
		tp_op_result_clear(&res);
		json_decref(spec);
	}
	{
		/* a sixth of a name made earlier in this session is still refused */
		json_t *spec = json_pack("{s:s,s:s,s:{}}", "name", "sink-2", "connector", "dev-null",
					 "configuration");
		tp_op op = {.address = "airbyte.destination/again", .name = "again", .spec = spec,
			    .sensitive = &sens, .token = "token-again"};
		tp_op_result res = {0};
		cr_assert_eq(dst->create(s, &op, &res), TP_EEXISTS);
		json_decref(spec);
	}
	log = ab_log(&fk);
	for (size_t i = 0; i < json_array_size(log); i++) {
		const json_t *e = json_array_get(log, i);
		if (!strcmp(tp_json_get_str(e, "method"), "GET") &&
		    !strcmp(tp_json_get_str(e, "path"), "/api/public/v1/destinations"))
			lists++;
	}
	cr_assert_eq(ab_count(log, 0, "POST", "/destinations"), 5);
	cr_assert_eq(lists, 1, "the collection was listed %zu times for 6 creates", lists);
	json_decref(log);
	tp_provider_airbyte.close(s);
}
