/*
 * The SQL API client against the fake: rows read by column name (whatever the column order,
 * with columns it does not know), every partition fetched, 202 answers polled, throttling and
 * server errors retried with the same requestId and retry=true (Retry-After honoured), cut-off
 * replies asked for again, SQL errors surfaced with Snowflake's code, sqlState and message,
 * concurrent writes batched into one multi-statement request with a failure charged to the
 * statement it belongs to, and the fake's own strictness (headers, body, JWT) on raw requests.
 */
#include "sf_test.h"

static char *dir;
static sf_fake F;

static void setup(void)
{
	EVP_PKEY *k;
	dir = ts_tmpdir();
	k = sf_keygen(dir, "key", NULL, 2048);
	EVP_PKEY_free(k);
}

static void teardown(void)
{
	if (F.pid)
		sf_fake_stop(&F);
	ts_rmtree(dir);
	free(dir);
}

TestSuite(sf_client, .init = setup, .fini = teardown, .timeout = 90);

static size_t entries_with(const json_t *log, const char *key)
{
	size_t i, n = 0;
	json_t *e;
	json_array_foreach(log, i, e)
		n += json_is_true(json_object_get(e, key)) || json_is_string(json_object_get(e,
											   key));
	return n;
}

Test(sf_client, rows_by_column_name_whatever_the_order)
{
	tp_sf_session *s;
	tp_sf_result r = {0};
	static const char *const need[] = {"name", "size", "auto_suspend", NULL};
	int idx[3];

	sf_fake_start(&F, dir, NULL);
	s = sf_session(&F, 0);
	cr_assert(tp_sf_exec(s, NULL, "CREATE WAREHOUSE \"W1\" WAREHOUSE_SIZE = MEDIUM "
				      "AUTO_SUSPEND = 120", 1, NULL) == 0, "%s", tp_error_last());
	cr_assert(tp_sf_query(s, &r, "SHOW WAREHOUSES LIKE 'W1'") == 0, "%s", tp_error_last());
	cr_assert(tp_sf_result_cols(&r, "show", need, idx) == 0);
	cr_assert_eq(tp_sf_result_rows(&r), 1);
	cr_assert_str_eq(tp_sf_cell(&r, 0, idx[0]), "W1");
	cr_assert_str_eq(tp_sf_cell(&r, 0, idx[1]), "Medium");
	cr_assert_str_eq(tp_sf_cell(&r, 0, idx[2]), "120");
	tp_sf_result_clear(&r);

	/* columns reversed plus one this client has never seen: still read by name */
	{
		char *url = tp_sprintf("%s/fake/faults", F.url);
		ts_http_result h = ts_http("POST", url, NULL, "columns");
		cr_assert_eq(h.status, 200);
		ts_http_result_free(&h);
		cr_assert(tp_sf_query(s, &r, "SHOW WAREHOUSES LIKE 'W1'") == 0);
		cr_assert(tp_sf_result_cols(&r, "show", need, idx) == 0);
		cr_assert_neq(idx[0], 0);
		cr_assert_str_eq(tp_sf_cell(&r, 0, idx[0]), "W1");
		cr_assert_str_eq(tp_sf_cell(&r, 0, idx[1]), "Medium");
		tp_sf_result_clear(&r);
		/* a column it needs is missing: a clear error, not a crash */
		h = ts_http("POST", url, NULL, "nocolumns");
		ts_http_result_free(&h);
		cr_assert(tp_sf_query(s, &r, "SHOW WAREHOUSES LIKE 'W1'") == 0);
		cr_assert_eq(tp_sf_result_cols(&r, "SHOW WAREHOUSES", need, idx), TP_EINVALID);
		cr_assert(strstr(tp_error_last(), "no column \"name\""), "%s", tp_error_last());
		tp_sf_result_clear(&r);
		free(url);
	}
	/* and the observe slot reports it instead of guessing */
	{
		json_t *applied = json_pack("{s:s}", "name", "W1"), *out = NULL;
		tp_op op = {.address = "snowflake.warehouse/w1", .name = "w1", .applied = applied,
			    .marker = "tapestry:t:snowflake.warehouse/w1"};
		char *url = tp_sprintf("%s/fake/faults", F.url);
		ts_http_result h = ts_http("POST", url, NULL, "nocolumns");
		ts_http_result_free(&h);
		cr_assert_eq(tp_sf_warehouse_observe(s, &op, 1, &out), TP_EINVALID);
		cr_assert(strstr(tp_error_last(), "no column \"name\""), "%s", tp_error_last());
		cr_assert_null(out);
		json_decref(applied);
		free(url);
	}
	tp_sf_session_close(s);
}

Test(sf_client, partitions_are_all_fetched)
{
	tp_sf_session *s;
	tp_sf_result r = {0};
	tp_buf sql;
	json_t *log;
	size_t gets = 0, i;
	json_t *e;

	sf_fake_start(&F, dir, "--partition-rows", "3", NULL);
	s = sf_session(&F, 0);
	tp_buf_init(&sql, 1 << 16);
	for (int k = 0; k < 10; k++)
		tp_buf_printf(&sql, "%sCREATE ROLE R%02d", k ? ";\n" : "", k);
	cr_assert(tp_sf_exec(s, NULL, tp_buf_cstr(&sql), 10, NULL) == 0, "%s", tp_error_last());
	cr_assert(tp_sf_query(s, &r, "SHOW ROLES LIKE 'R%'") == 0, "%s", tp_error_last());
	cr_assert_eq(tp_sf_result_rows(&r), 10);
	cr_assert_str_eq(tp_sf_cell(&r, 9, tp_sf_result_col(&r, "name")), "R09");
	log = sf_log(&F);
	json_array_foreach(log, i, e)
		if (strcmp(tp_json_get_str(e, "method"), "GET") == 0) {
			cr_assert(json_object_get(json_object_get(e, "query"), "partition"));
			gets++;
		}
	cr_assert_eq(gets, 3, "partitions 1..3 fetched with GET");
	json_decref(log);
	tp_sf_result_clear(&r);
	tp_buf_free(&sql);
	tp_sf_session_close(s);
}

Test(sf_client, long_statement_answered_202_is_polled)
{
	tp_sf_session *s;
	tp_sf_result r = {0};
	json_t *log, *e;
	size_t i, gets202 = 0;

	sf_fake_start(&F, dir, "--sync-wait-ms", "50", NULL);
	s = sf_session(&F, 0);
	cr_assert(tp_sf_query(s, &r, "SELECT SYSTEM$WAIT(400, 'MILLISECONDS')") == 0, "%s",
		  tp_error_last());
	cr_assert_eq(tp_sf_result_rows(&r), 1);
	cr_assert(strstr(tp_sf_cell(&r, 0, 0), "waited"));
	log = sf_log(&F);
	cr_assert_eq(json_integer_value(json_object_get(json_array_get(log, 0), "status")), 202);
	json_array_foreach(log, i, e)
		if (strcmp(tp_json_get_str(e, "method"), "GET") == 0 &&
		    json_integer_value(json_object_get(e, "status")) == 202)
			gets202++;
	cr_assert_geq(gets202, 1, "polled while running");
	cr_assert_eq(json_integer_value(json_object_get(json_array_get(log, json_array_size(log) -
									   1),
							"status")),
		     200);
	/* the query ran on the user's default warehouse, which was resumed for it */
	cr_assert_str_eq(tp_json_get_str(json_array_get(log, 0), "resumed"), "COMPUTE_WH");
	json_decref(log);
	tp_sf_result_clear(&r);
	tp_sf_session_close(s);
}

Test(sf_client, throttling_and_server_errors_retried_with_the_same_request_id)
{
	tp_sf_session *s;
	json_t *log;
	const char *rid;
	int64_t t0;

	sf_fake_start(&F, dir, "--fail", "429,503,drop", "--retry-after", "1", NULL);
	s = sf_session(&F, 0);
	s->backoff_base_ms = 20;
	t0 = tp_clock_mono_ms();
	cr_assert(tp_sf_exec(s, NULL, "CREATE ROLE RETRIED", 1, NULL) == 0, "%s",
		  tp_error_last());
	cr_assert_geq(tp_clock_mono_ms() - t0, 950, "Retry-After: 1 honoured");
	log = sf_log(&F);
	cr_assert_eq(json_array_size(log), 4);
	rid = tp_json_get_str(json_array_get(log, 0), "request_id");
	cr_assert(rid && strlen(rid) == 36);
	for (size_t i = 0; i < 4; i++) {
		json_t *e = json_array_get(log, i);
		cr_assert_str_eq(tp_json_get_str(e, "request_id"), rid, "one requestId throughout");
		cr_assert_eq(json_is_true(json_object_get(e, "retry")), i > 0, "retry=true on "
			     "attempt %zu", i + 1);
	}
	cr_assert_eq(json_integer_value(json_object_get(json_array_get(log, 0), "status")), 429);
	cr_assert_eq(json_integer_value(json_object_get(json_array_get(log, 1), "status")), 503);
	cr_assert_eq(json_integer_value(json_object_get(json_array_get(log, 3), "status")), 200);
	cr_assert_eq(sf_write_statements(log), 1, "run once");
	json_decref(log);

	/* throttled beyond the client's attempts: handed to the engine as throttled */
	sf_log_reset(&F);
	{
		char *url = tp_sprintf("%s/fake/faults", F.url);
		ts_http_result h = ts_http("POST", url, NULL, "429x4");
		ts_http_result_free(&h);
		free(url);
	}
	cr_assert_eq(tp_sf_exec(s, NULL, "CREATE ROLE NEVER", 1, NULL), TP_ETHROTTLED);
	cr_assert(strstr(tp_error_last(), "390505"), "%s", tp_error_last());
	cr_assert_geq(tp_error_retry_after(), 1000);
	tp_sf_session_close(s);
}

/* Found by bench/reliability/faults.sh: a write throttled beyond the client's attempts lost
 * its Retry-After on the way to the engine (the batch runner carried the message, not the
 * delay, and the slots re-worded the message), so the engine's own retry came after its
 * backoff, sooner than the server had asked. */
Test(sf_client, a_throttled_write_hands_its_retry_after_to_the_engine)
{
	tp_sf_session *s;
	tp_strlist stmts = {0};

	sf_fake_start(&F, dir, "--fail", "429x4", "--retry-after", "1", NULL);
	s = sf_session(&F, 0);
	s->backoff_base_ms = 1;
	s->backoff_cap_ms = 1; /* the client waits min(Retry-After, cap x 6): quick here */
	tp_strlist_push(&stmts, "CREATE ROLE THROTTLED");
	cr_assert_eq(tp_sf_run(s, &stmts, NULL), TP_ETHROTTLED, "%s", tp_error_last());
	cr_assert(strstr(tp_error_last(), "390505"), "%s", tp_error_last());
	cr_assert_eq(tp_error_retry_after(), 1000);
	tp_strlist_free(&stmts);
	tp_sf_session_close(s);
}

/* The fake's faults as the reliability harness uses them: `reset` (the connection aborted
 * with a TCP reset before anything ran) is ridden out like a dropped connection, and
 * --fail-rate takes only known fault names with probabilities summing to at most 1. */
Test(sf_client, resets_are_retried_and_fail_rates_are_checked)
{
	static const char *const bad[] = {"reset", "bogus:0.1", "503:2", "429:0.6,reset:0.6"};
	tp_sf_session *s;
	json_t *log;

	sf_fake_start(&F, dir, "--fail", "reset,reset", NULL);
	s = sf_session(&F, 0);
	s->backoff_base_ms = 1;
	cr_assert(tp_sf_exec(s, NULL, "CREATE ROLE AFTER_RESETS", 1, NULL) == 0, "%s",
		  tp_error_last());
	log = sf_log(&F);
	cr_assert_eq(sf_write_statements(log), 1, "run once");
	cr_assert_str_eq(tp_json_get_str(json_array_get(log, 0), "fault"), "reset");
	cr_assert_eq(json_integer_value(json_object_get(json_array_get(log, 0), "status")), 0);
	cr_assert_not_null(tp_json_get_str(json_array_get(log, 0), "body_sha"));
	json_decref(log);
	tp_sf_session_close(s);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		pid_t pid = fork();
		int st = 0;
		cr_assert(pid >= 0);
		if (pid == 0) {
			int null = open("/dev/null", O_WRONLY);
			dup2(null, 1);
			dup2(null, 2);
			execl(TP_BUILD_DIR "/fake_snowflake", "fake_snowflake", "--port", "0",
			      "--account", "A-B", "--user", "U", "--public-key", F.pub, "--fail-rate",
			      bad[i], (char *)NULL);
			_exit(127);
		}
		waitpid(pid, &st, 0);
		cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 64, "--fail-rate %s: status %d", bad[i],
			  st);
	}
}

Test(sf_client, replayed_request_is_not_run_twice)
{
	tp_sf_session *s;
	json_t *log;

	/* a reply lost after the statement ran: the retry (same requestId, retry=true) gets the
	 * stored result instead of running CREATE again (which would fail: already exists) */
	sf_fake_start(&F, dir, NULL);
	s = sf_session(&F, 0);
	s->backoff_base_ms = 20;
	{
		char *url = tp_sprintf("%s/fake/faults", F.url);
		ts_http_result h = ts_http("POST", url, NULL, "lost");
		ts_http_result_free(&h);
		free(url);
	}
	cr_assert(tp_sf_exec(s, NULL, "CREATE ROLE ONCE", 1, NULL) == 0, "%s", tp_error_last());
	log = sf_log(&F);
	cr_assert_eq(json_array_size(log), 2);
	cr_assert_str_eq(tp_json_get_str(json_array_get(log, 0), "fault"), "lost");
	cr_assert_eq(json_integer_value(json_object_get(json_array_get(log, 0), "writes")), 1);
	cr_assert(json_is_true(json_object_get(json_array_get(log, 1), "retry")));
	cr_assert(json_is_true(json_object_get(json_array_get(log, 1), "replayed")));
	cr_assert_eq(sf_write_statements(log), 1, "CREATE ran once");
	cr_assert_eq(entries_with(log, "duplicate_request_id"), 0);
	json_decref(log);

	/* a truncated reply (the statement did not run): asked again, runs once */
	sf_log_reset(&F);
	{
		char *url = tp_sprintf("%s/fake/faults", F.url);
		ts_http_result h = ts_http("POST", url, NULL, "badjson");
		ts_http_result_free(&h);
		free(url);
	}
	cr_assert(tp_sf_exec(s, NULL, "CREATE ROLE ONCE_MORE", 1, NULL) == 0, "%s",
		  tp_error_last());
	log = sf_log(&F);
	cr_assert_eq(json_array_size(log), 2);
	cr_assert_str_eq(tp_json_get_str(json_array_get(log, 0), "fault"), "badjson");
	cr_assert(json_is_true(json_object_get(json_array_get(log, 1), "retry")));
	cr_assert_eq(sf_write_statements(log), 1);
	json_decref(log);

	/* malformed every time: a clear, permanent error */
	{
		char *url = tp_sprintf("%s/fake/faults", F.url);
		ts_http_result h = ts_http("POST", url, NULL, "badjsonx4");
		ts_http_result_free(&h);
		free(url);
	}
	cr_assert_eq(tp_sf_exec(s, NULL, "CREATE ROLE TWICE", 1, NULL), TP_EINVALID);
	cr_assert(strstr(tp_error_last(), "malformed JSON"), "%s", tp_error_last());
	tp_sf_session_close(s);
}

Test(sf_client, sql_errors_carry_code_state_and_message)
{
	tp_sf_session *s;
	tp_sf_status st;

	sf_fake_start(&F, dir, NULL);
	s = sf_session(&F, 0);
	cr_assert_eq(tp_sf_exec(s, NULL, "CREATE SCHEMA \"NOPE\".\"X\"", 1, &st), TP_ENOTFOUND);
	cr_assert_str_eq(st.code, "002003");
	cr_assert_str_eq(st.sql_state, "02000");
	cr_assert_eq(st.http_status, 422);
	cr_assert(strstr(tp_error_last(), "Database 'NOPE' does not exist or not authorized"),
		  "%s", tp_error_last());
	cr_assert(strstr(tp_error_last(), "code 002003, SQL state 02000"), "%s",
		  tp_error_last());
	cr_assert(!strchr(tp_error_last(), '\n'), "one line");

	cr_assert_eq(tp_sf_exec(s, NULL, "CREATE WAREHOUS X", 1, &st), TP_EINVALID);
	cr_assert_str_eq(st.code, "001003");
	cr_assert_str_eq(st.sql_state, "42000");
	cr_assert(strstr(tp_error_last(), "syntax error"), "%s", tp_error_last());

	cr_assert(tp_sf_exec(s, NULL, "CREATE ROLE DUP", 1, NULL) == 0);
	cr_assert_eq(tp_sf_exec(s, NULL, "CREATE ROLE DUP", 1, &st), TP_EEXISTS);
	cr_assert_str_eq(st.code, "002002");

	cr_assert_eq(tp_sf_exec(s, NULL, "GRANT CREATE TABLE ON WAREHOUSE COMPUTE_WH TO ROLE DUP",
				1, &st),
		     TP_EINVALID);
	cr_assert_str_eq(st.code, "003011");
	tp_sf_session_close(s);
}

typedef struct {
	tp_sf_session *s;
	tp_strlist stmts;
	int rc;
	char msg[512];
} job_arg;

static void *run_job(void *arg)
{
	job_arg *j = arg;
	j->rc = tp_sf_run(j->s, &j->stmts, NULL);
	snprintf(j->msg, sizeof(j->msg), "%s", j->rc ? tp_error_last() : "");
	return NULL;
}

Test(sf_client, concurrent_writes_share_one_request_and_failures_stay_with_their_owner)
{
	tp_sf_session *s;
	job_arg jobs[3];
	pthread_t th[3];
	json_t *log, *cat;

	sf_fake_start(&F, dir, NULL);
	s = sf_session(&F, 300);
	memset(jobs, 0, sizeof(jobs));
	for (int i = 0; i < 3; i++)
		jobs[i].s = s;
	tp_strlist_push(&jobs[0].stmts, "CREATE ROLE A1");
	tp_strlist_push(&jobs[0].stmts, "CREATE ROLE A2 COMMENT = 'two\nlines'");
	tp_strlist_push(&jobs[1].stmts, "CREATE ROLE B1");
	tp_strlist_push(&jobs[1].stmts, "GRANT USAGE ON DATABASE MISSING TO ROLE B1");
	tp_strlist_push(&jobs[2].stmts, "CREATE ROLE C1");
	for (int i = 0; i < 3; i++) {
		pthread_create(&th[i], NULL, run_job, &jobs[i]);
		usleep(20000); /* in order, well within the window */
	}
	for (int i = 0; i < 3; i++)
		pthread_join(th[i], NULL);
	cr_assert_eq(jobs[0].rc, 0, "%s", jobs[0].msg);
	cr_assert_eq(jobs[1].rc, TP_ENOTFOUND);
	cr_assert(strstr(jobs[1].msg, "Database 'MISSING' does not exist"), "%s", jobs[1].msg);
	cr_assert(strstr(jobs[1].msg, "002003"), "%s", jobs[1].msg);
	cr_assert_eq(jobs[2].rc, 0, "%s", jobs[2].msg);
	log = sf_log(&F);
	/* one request with all five statements (failing at the fourth), then the third job's
	 * statement again */
	cr_assert_eq(sf_posts(log), 2);
	cr_assert_eq(json_array_size(json_object_get(json_array_get(log, 0), "statements")), 5);
	cr_assert(json_is_true(json_object_get(json_array_get(log, 0), "multi")));
	cr_assert_eq(json_array_size(json_object_get(json_array_get(log, 1), "statements")), 1);
	cat = sf_catalog(&F);
	cr_assert(json_object_get(json_object_get(cat, "roles"), "A2"));
	cr_assert(json_object_get(json_object_get(cat, "roles"), "B1"));
	cr_assert(json_object_get(json_object_get(cat, "roles"), "C1"));
	json_decref(cat);
	json_decref(log);
	for (int i = 0; i < 3; i++)
		tp_strlist_free(&jobs[i].stmts);
	tp_sf_session_close(s);
}

Test(sf_client, no_warehouse_falls_back_to_one_statement_per_request)
{
	tp_sf_session *s;
	tp_strlist stmts = {0};
	json_t *log;

	sf_fake_start(&F, dir, "--no-default-warehouse", NULL);
	s = sf_session(&F, 0);
	tp_strlist_push(&stmts, "CREATE ROLE X1");
	tp_strlist_push(&stmts, "CREATE ROLE X2");
	cr_assert(tp_sf_run(s, &stmts, NULL) == 0, "%s", tp_error_last());
	log = sf_log(&F);
	cr_assert_eq(sf_posts(log), 3, "refused multi-statement, then one by one");
	cr_assert_str_eq(tp_json_get_str(json_array_get(log, 0), "error_code"), "000606");
	cr_assert_eq(sf_write_statements(log), 2);
	json_decref(log);
	tp_strlist_free(&stmts);
	tp_sf_session_close(s);
}

Test(sf_client, like_is_narrowed_then_matched_exactly)
{
	tp_sf_session *s;
	json_t *applied = json_pack("{s:s}", "name", "A_B"), *out = NULL;
	tp_op op = {.address = "snowflake.role/ab", .name = "ab", .applied = applied,
		    .marker = "tapestry:t:snowflake.role/ab"};

	sf_fake_start(&F, dir, NULL);
	s = sf_session(&F, 0);
	/* AXB matches LIKE 'A_B' unescaped; a_b (quoted, lower-case) matches it ignoring case */
	cr_assert(tp_sf_exec(s, NULL, "CREATE ROLE AXB COMMENT = 'x'", 1, NULL) == 0);
	cr_assert(tp_sf_exec(s, NULL, "CREATE ROLE \"a_b\" COMMENT = 'y'", 1, NULL) == 0);
	cr_assert(tp_sf_role_observe(s, &op, 1, &out) == 0, "%s", tp_error_last());
	cr_assert_null(out, "neither is A_B");
	cr_assert(tp_sf_exec(s, NULL, "CREATE ROLE A_B COMMENT = 'z'", 1, NULL) == 0);
	cr_assert(tp_sf_role_observe(s, &op, 1, &out) == 0);
	cr_assert_not_null(out);
	cr_assert_str_eq(tp_json_get_str(out, "name"), "A_B");
	cr_assert_str_eq(tp_json_get_str(out, "comment"), "z");
	json_decref(out);
	json_decref(applied);
	tp_sf_session_close(s);
}

/* ---------------------------------------------------------------- the fake's strictness */

static char *jwt_for(const char *keyname, int64_t iat, int64_t life)
{
	char *path = tp_sprintf("%s/%s.pem", dir, keyname), *pem = ts_read(path);
	EVP_PKEY *k = NULL;
	char *jwt = NULL;
	cr_assert(tp_sf_key_load(&k, pem, NULL) == 0);
	if (life > 3600) {
		/* tp_sf_jwt_make never issues these: build one by hand */
		char fp[128];
		char *payload;
		tp_buf b;
		EVP_MD_CTX *md = EVP_MD_CTX_new();
		unsigned char sig[512];
		size_t sl = sizeof(sig);
		tp_sf_key_fingerprint(fp, sizeof(fp), k);
		payload = tp_sprintf("{\"iss\":\"ACME-TEST.TAPESTRY.%s\",\"sub\":\"ACME-TEST."
				     "TAPESTRY\",\"iat\":%lld,\"exp\":%lld}", fp, (long long)iat,
				     (long long)(iat + life));
		tp_buf_init(&b, 1 << 16);
		tp_base64url_encode(&b, "{\"alg\":\"RS256\",\"typ\":\"JWT\"}", 27);
		tp_buf_putc(&b, '.');
		tp_base64url_encode(&b, payload, strlen(payload));
		EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, k);
		EVP_DigestSign(md, sig, &sl, (unsigned char *)b.ptr, b.len);
		tp_buf_putc(&b, '.');
		tp_base64url_encode(&b, sig, sl);
		jwt = tp_buf_detach(&b);
		EVP_MD_CTX_free(md);
		free(payload);
	} else {
		cr_assert(tp_sf_jwt_make(&jwt, k, "acme-test", "tapestry", iat, life) == 0);
	}
	EVP_PKEY_free(k);
	free(pem);
	free(path);
	return jwt;
}

static long raw_post(const char *jwt, const char *ua, const char *ctype, const char *query,
		     const char *body, char **reply)
{
	char *url = tp_sprintf("%s/api/v2/statements%s", F.url, query ? query : "");
	char *auth = jwt ? tp_sprintf("Authorization: Bearer %s", jwt) : NULL;
	char *uah = ua ? tp_sprintf("User-Agent: %s", ua) : tp_strdup("User-Agent:");
	char *cth = ctype ? tp_sprintf("Content-Type: %s", ctype) : tp_strdup("Content-Type:");
	const char *h[6];
	size_t n = 0;
	ts_http_result r;
	long status;
	if (auth)
		h[n++] = auth;
	h[n++] = "X-Snowflake-Authorization-Token-Type: KEYPAIR_JWT";
	h[n++] = uah;
	h[n++] = cth;
	h[n++] = "Accept: application/json";
	h[n] = NULL;
	r = ts_http("POST", url, h, body);
	status = r.status;
	if (reply)
		*reply = tp_strdup(r.body ? r.body : "");
	ts_http_result_free(&r);
	free(url);
	free(auth);
	free(uah);
	free(cth);
	return status;
}

Test(sf_client, fake_refuses_what_snowflake_refuses)
{
	int64_t now = tp_clock_now_ms() / 1000;
	char *good = NULL, *other = NULL, *expired = NULL, *too_long = NULL, *reply = NULL;
	const char *ok_body = "{\"statement\":\"SHOW ROLES\"}";
	EVP_PKEY *k2;

	sf_fake_start(&F, dir, NULL);
	k2 = sf_keygen(dir, "other", NULL, 2048);
	good = jwt_for("key", now, 3000);
	other = jwt_for("other", now, 3000);
	expired = jwt_for("key", now - 4000, 3000);
	too_long = jwt_for("key", now, 7200);

	cr_assert_eq(raw_post(good, "t/1", "application/json", NULL, ok_body, NULL), 200);
	cr_assert_eq(raw_post(NULL, "t/1", "application/json", NULL, ok_body, NULL), 401);
	cr_assert_eq(raw_post(good, NULL, "application/json", NULL, ok_body, NULL), 400);
	cr_assert_eq(raw_post(good, "t/1", "text/plain", NULL, ok_body, NULL), 415);
	cr_assert_eq(raw_post(other, "t/1", "application/json", NULL, ok_body, &reply), 401);
	cr_assert(strstr(reply, "390144"), "%s", reply);
	free(reply);
	cr_assert_eq(raw_post(expired, "t/1", "application/json", NULL, ok_body, &reply), 401);
	cr_assert(strstr(reply, "expired"), "%s", reply);
	free(reply);
	cr_assert_eq(raw_post(too_long, "t/1", "application/json", NULL, ok_body, &reply), 401);
	cr_assert(strstr(reply, "longer than one hour"), "%s", reply);
	free(reply);
	cr_assert_eq(raw_post(good, "t/1", "application/json", "?requestId=nope", ok_body, NULL),
		     400);
	cr_assert_eq(raw_post(good, "t/1", "application/json", "?foo=1", ok_body, NULL), 400);
	cr_assert_eq(raw_post(good, "t/1", "application/json", NULL, "{\"statement\":", &reply),
		     400);
	free(reply);
	cr_assert_eq(raw_post(good, "t/1", "application/json", NULL,
			      "{\"statement\":\"SHOW ROLES\",\"bogus\":1}", NULL),
		     400);
	cr_assert_eq(raw_post(good, "t/1", "application/json", NULL,
			      "{\"statement\":\"SHOW ROLES; SHOW USERS\"}", &reply),
		     422);
	cr_assert(strstr(reply, "000008"), "%s", reply);
	free(reply);
	cr_assert_eq(raw_post(good, "t/1", "application/json", NULL,
			      "{\"statement\":\"SHOW ROLES\",\"role\":\"SYSADMIN\"}", &reply),
		     422);
	cr_assert(strstr(reply, "not granted"), "%s", reply);
	free(reply);
	free(good);
	free(other);
	free(expired);
	free(too_long);
	EVP_PKEY_free(k2);
}
