/*
 * `tapestry run` end to end: the real binary following a real Git repository (file:// and a
 * local git daemon) on 127.0.0.1, with local.file resources as the target. Commits add,
 * change and delete resources and the controller converges to each; a commit that empties the
 * pipeline is refused by the prune guard; webhooks trigger a sync within a second only when
 * signed and new; the HTTP API, metrics and readiness answer; SIGTERM stops it cleanly.
 */
#include <criterion/criterion.h>
#include <microhttpd.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "state/state.h"
#include "support/support.h"
#include "util/util.h"

#define SECRET "webhook-secret-for-tests"

static char *tmp, *origin, *out, *statedir, *logpath, *base_url;
static int port;
static pid_t ctl_pid = -1;
static const char *extra_env; /* one more "NAME=value" for the controller, or NULL */
static const char *extra_config; /* more controller.yaml lines, or NULL */
static const char *drift_interval = "1h";

static void setup(void)
{
	ts_git_env();
	tmp = ts_tmpdir();
	origin = tp_sprintf("%s/origin", tmp);
	out = tp_sprintf("%s/out", tmp);
	statedir = tp_sprintf("%s/state", tmp);
	logpath = tp_sprintf("%s/controller.log", tmp);
	mkdir(out, 0755);
	mkdir(statedir, 0700);
	free(ts_git(tmp, "init -q origin"));
	port = ts_free_port();
	base_url = tp_sprintf("http://127.0.0.1:%d", port);
}

static void teardown(void)
{
	extra_env = NULL;
	extra_config = NULL;
	ts_stop_pid(ctl_pid);
	ctl_pid = -1;
	ts_rmtree(tmp);
	free(tmp);
	free(origin);
	free(out);
	free(statedir);
	free(logpath);
	free(base_url);
}

TestSuite(run, .init = setup, .fini = teardown, .timeout = 180);

/* ---------------------------------------------------------------- helpers */

static void write_resources(const char *rel, const char *resources)
{
	char *text = ts_replace(resources, "@OUT@", out); /* @OUT@: the output directory */
	ts_write(origin, rel, text);
	free(text);
}

static void write_pipeline(const char *resources)
{
	ts_write(origin, "pipe/tapestry.yaml", "pipeline: run-test\n");
	write_resources("pipe/resources/files.yaml", resources);
}

static void commit(const char *message)
{
	free(ts_git(origin, "add -A"));
	free(ts_git(origin, "commit -q --allow-empty -m '%s'", message));
}

static void start(const char *poll, const char *url)
{
	char *cfg = tp_sprintf("%s/controller.yaml", tmp);
	char *repo = url ? tp_strdup(url) : tp_sprintf("file://%s", origin);
	char *text = tp_sprintf("repository: {url: \"%s\", branch: main, path: pipe}\n"
				"state_dir: %s\nlisten: \"127.0.0.1:%d\"\npoll_interval: %s\n"
				"drift_interval: %s\n"
				"webhooks: {github_secret: \"${secret:env:HOOK_SECRET}\"}\n%s",
				repo, statedir, port, poll, drift_interval,
				extra_config ? extra_config : "");
	const char *args[] = {"run", "--config", cfg, NULL};
	const char *env[] = {"HOOK_SECRET=" SECRET, extra_env, NULL};
	FILE *f = fopen(cfg, "w");
	fputs(text, f);
	fclose(f);
	ctl_pid = ts_spawn_tapestry(args, env, logpath);
	free(text);
	free(repo);
	free(cfg);
}

static json_t *get_json(const char *path)
{
	char *url = tp_sprintf("%s%s", base_url, path);
	ts_http_result r = ts_http("GET", url, NULL, NULL);
	json_t *v = NULL;
	if (r.status == 200)
		tp_json_parse(&v, r.body, strlen(r.body));
	ts_http_result_free(&r);
	free(url);
	return v;
}

static char *status_str(const char *path)
{
	json_t *s = get_json("/api/status");
	const char *v = s ? json_string_value(tp_json_path_get(s, path)) : NULL;
	char *copy = v ? tp_strdup(v) : NULL;
	json_decref(s);
	return copy;
}

static long status_int(const char *path)
{
	json_t *s = get_json("/api/status");
	long v = s ? (long)json_integer_value(tp_json_path_get(s, path)) : -1;
	json_decref(s);
	return v;
}

static char *head(void)
{
	return ts_git(origin, "rev-parse HEAD");
}

/* Waits until the controller reports commit as applied (or result), bounded. */
static void wait_for(const char *what, const char *commit, int64_t ms)
{
	int64_t deadline = tp_clock_mono_ms() + ms;
	for (;;) {
		char *applied = status_str("revision.applied");
		char *result = status_str("last_sync.result");
		bool ok = commit ? (applied && strcmp(applied, commit) == 0)
				 : (result && strcmp(result, what) == 0);
		free(applied);
		free(result);
		if (ok)
			return;
		if (tp_clock_mono_ms() > deadline) {
			char *log = ts_read(logpath);
			cr_assert_fail("timed out waiting for %s %s\ncontroller log:\n%s", what,
				       commit ? commit : "", log ? log : "");
		}
		usleep(50000);
	}
}

/* Asserts the content of out/name (NULL: the file must not exist). */
static void expect_out(const char *name, const char *want)
{
	ts_expect_file(out, name, want);
}

static void wait_ready(void)
{
	int64_t deadline = tp_clock_mono_ms() + 30000;
	char *url = tp_sprintf("%s/readyz", base_url);
	for (;;) {
		ts_http_result r = ts_http("GET", url, NULL, NULL);
		long st = r.status;
		ts_http_result_free(&r);
		if (st == 200)
			break;
		if (tp_clock_mono_ms() > deadline) {
			char *log = ts_read(logpath);
			cr_assert_fail("controller not ready in 30 s\n%s", log ? log : "");
		}
		usleep(50000);
	}
	free(url);
}

static const char *TWO =
	"kind: local.file\nname: a\nspec: {path: @OUT@/a.txt, content: one}\n---\n"
	"kind: local.file\nname: b\nspec: {path: @OUT@/b.txt, content: \"${local.file/a.path}\"}\n"
	"---\nkind: local.file\nname: keep\nspec: {path: @OUT@/keep.txt, content: kept}\n"
	"lifecycle: {deletion: retain}\n---\n"
	"kind: local.file\nname: c\nspec: {path: @OUT@/c.txt, content: three}\n";

/* ---------------------------------------------------------------- tests */

Test(run, converges_to_each_commit_and_refuses_an_empty_one)
{
	char *c;
	json_t *v;
	write_pipeline(TWO);
	commit("first");
	start("200ms", NULL);
	wait_ready();
	c = head();
	wait_for("commit", c, 20000);
	free(c);
	expect_out("a.txt", "one");
	expect_out("keep.txt", "kept");

	/* change one resource */
	write_pipeline("kind: local.file\nname: a\nspec: {path: @OUT@/a.txt, content: two}\n---\n"
		       "kind: local.file\nname: b\nspec: {path: @OUT@/b.txt, content: "
		       "\"${local.file/a.path}\"}\n---\nkind: local.file\nname: keep\nspec: {path: "
		       "@OUT@/keep.txt, content: kept}\nlifecycle: {deletion: retain}\n---\n"
		       "kind: local.file\nname: c\nspec: {path: @OUT@/c.txt, content: three}\n");
	commit("change a");
	c = head();
	wait_for("commit", c, 20000);
	free(c);
	expect_out("a.txt", "two");

	/* a commit outside the pipeline path is recorded and changes nothing */
	ts_write(origin, "README.md", "docs\n");
	commit("docs only");
	{
		char *docs = head();
		int64_t deadline = tp_clock_mono_ms() + 10000;
		char *fetched = NULL;
		while (tp_clock_mono_ms() < deadline) {
			free(fetched);
			fetched = status_str("revision.fetched");
			if (fetched && strcmp(fetched, docs) == 0)
				break;
			usleep(50000);
		}
		cr_assert(fetched && strcmp(fetched, docs) == 0, "docs commit never fetched");
		free(fetched);
		free(docs);
	}

	/* removing resources deletes one (b) and forgets the retained one (keep) */
	write_pipeline("kind: local.file\nname: a\nspec: {path: @OUT@/a.txt, content: two}\n---\n"
		       "kind: local.file\nname: c\nspec: {path: @OUT@/c.txt, content: three}\n");
	commit("drop b and keep");
	c = head();
	wait_for("commit", c, 20000);
	free(c);
	expect_out("b.txt", NULL);
	expect_out("keep.txt", "kept");

	/* an emptied pipeline (all resources removed) is refused by the prune guard */
	{
		char *f = tp_sprintf("%s/pipe/resources/files.yaml", origin);
		unlink(f);
		free(f);
	}
	ts_write(origin, "pipe/resources/other.yaml",
		 "kind: local.file\nname: z\nspec: {path: /nonexistent-dir/z, content: z}\n");
	commit("oops: everything removed");
	wait_for("refused", NULL, 20000);
	expect_out("a.txt", "two");
	expect_out("c.txt", "three");
	c = status_str("last_sync.error");
	cr_assert(c && strstr(c, "prune guard"), "%s", c ? c : "(none)");
	free(c);

	/* the API and the metrics */
	v = get_json("/api/resources");
	cr_assert_eq(json_array_size(v), 2, "resources: %zu", json_array_size(v));
	json_decref(v);
	v = get_json("/api/runs?limit=10");
	cr_assert_geq(json_array_size(v), 3);
	json_decref(v);
	v = get_json("/api/events?address=local.file%2Fb");
	cr_assert_geq(json_array_size(v), 1);
	cr_assert_str_eq(tp_json_get_str(json_array_get(v, 0), "address"), "local.file/b");
	json_decref(v);
	{
		char *url = tp_sprintf("%s/metrics", base_url);
		ts_http_result r = ts_http("GET", url, NULL, NULL);
		cr_assert_eq(r.status, 200);
		cr_assert(strstr(r.body, "tapestry_reconcile_total{result=\"refused\"} 1"), "%s",
			  r.body);
		cr_assert(strstr(r.body, "tapestry_resources{kind=\"local.file\",status=\"ready\"} 2"),
			  "%s", r.body);
		cr_assert(strstr(r.body, "tapestry_reconcile_duration_seconds_bucket"), "%s",
			  r.body);
		cr_assert(strstr(r.body, "tapestry_info{"), "%s", r.body);
		cr_assert(strstr(r.body, "tapestry_last_applied_timestamp_seconds"), "%s", r.body);
		ts_http_result_free(&r);
		free(url);
	}
	/* `tapestry status` reads the state and asks the running controller */
	{
		char *db = tp_sprintf("%s/state.db", statedir);
		const char *args[] = {"status", "--state", db, "--api", base_url, NULL};
		ts_result r = ts_run_tapestry(args, NULL);
		cr_assert_eq(r.status, 0, "%s", r.err);
		cr_assert(strstr(r.out, "local.file/a") && strstr(r.out, "Locked by tapestry run"),
			  "%s", r.out);
		cr_assert(strstr(r.out, "ready, mode normal"), "%s", r.out);
		cr_assert(strstr(r.out, "last sync: refused: prune guard"), "%s", r.out);
		ts_result_free(&r);
		free(db);
	}
	/* the commit message can allow it explicitly: the next commit carries the trailer */
	ts_write(origin, "pipe/resources/other.yaml",
		 "kind: local.file\nname: z\nspec: {path: /nonexistent-dir/z, content: z}\n"
		 "lifecycle: {deletion: delete}\n");
	free(ts_git(origin, "add -A"));
	free(ts_git(origin, "commit -q -m 'retire the pipeline' -m 'Tapestry-Allow-Mass-Delete: yes'"));
	{
		int64_t deadline = tp_clock_mono_ms() + 20000;
		char *a = ts_read_in(out, "a.txt");
		while (a && tp_clock_mono_ms() < deadline) {
			free(a);
			usleep(50000);
			a = ts_read_in(out, "a.txt");
		}
		cr_assert_null(a, "an allowed mass delete did not delete a.txt");
	}
	expect_out("keep.txt", "kept");
}

static long post_hook(const char *body, const char *delivery, const char *secret)
{
	char *url = tp_sprintf("%s/hooks/github", base_url);
	char sig[80] = "sha256=", *h1 = NULL, *h2 = tp_sprintf("X-GitHub-Delivery: %s", delivery);
	const char *headers[5] = {"X-GitHub-Event: push", "Content-Type: application/json", h2,
				  NULL, NULL};
	ts_http_result r;
	long st;
	if (secret) {
		uint8_t mac[TP_SHA256_LEN];
		tp_hmac_sha256(mac, secret, strlen(secret), body, strlen(body));
		tp_hex_encode(sig + 7, mac, sizeof(mac));
		h1 = tp_sprintf("X-Hub-Signature-256: %s", sig);
		headers[3] = h1;
	}
	r = ts_http("POST", url, headers, body);
	st = r.status;
	ts_http_result_free(&r);
	free(url);
	free(h1);
	free(h2);
	return st;
}

Test(run, signed_webhooks_sync_within_a_second_others_do_nothing)
{
	const char *body = "{\"ref\":\"refs/heads/main\",\"after\":\"x\"}";
	char *c;
	long syncs;
	int64_t t0;
	write_pipeline(TWO);
	commit("first");
	start("1h", NULL); /* polling practically off: only webhooks trigger */
	wait_ready();
	c = head();
	wait_for("commit", c, 20000);
	free(c);
	syncs = status_int("syncs");

	write_pipeline("kind: local.file\nname: a\nspec: {path: @OUT@/a.txt, content: hooked}\n");
	write_resources("pipe/resources/more.yaml",
		 "kind: local.file\nname: b\nspec: {path: @OUT@/b.txt, content: x}\n---\n"
		 "kind: local.file\nname: c\nspec: {path: @OUT@/c.txt, content: three}\n---\n"
		 "kind: local.file\nname: keep\nspec: {path: @OUT@/keep.txt, content: kept}\n"
		 "lifecycle: {deletion: retain}\n");
	commit("for the webhook");

	/* unsigned, wrongly signed: 401, nothing happens */
	cr_assert_eq(post_hook(body, "d-0", NULL), 401);
	cr_assert_eq(post_hook(body, "d-1", "wrong secret"), 401);
	usleep(1500000);
	cr_assert_eq(status_int("syncs"), syncs, "an unsigned webhook triggered a sync");
	expect_out("a.txt", "one");

	/* signed: a sync starts within a second (it has fetched the new commit), and applies */
	t0 = tp_clock_mono_ms();
	cr_assert_eq(post_hook(body, "d-2", SECRET), 202);
	c = head();
	for (;;) {
		char *fetched = status_str("revision.fetched");
		bool seen = fetched && strcmp(fetched, c) == 0;
		free(fetched);
		if (seen)
			break;
		cr_assert_lt(tp_clock_mono_ms() - t0, 1000, "no sync within 1 s of the webhook");
		usleep(20000);
	}
	cr_log_info("webhook to sync: %lld ms", (long long)(tp_clock_mono_ms() - t0));
	wait_for("commit", c, 10000);
	free(c);
	cr_log_info("webhook to applied: %lld ms", (long long)(tp_clock_mono_ms() - t0));
	expect_out("a.txt", "hooked");

	/* replayed delivery: acknowledged, not acted on */
	syncs = status_int("syncs");
	cr_assert_eq(post_hook(body, "d-2", SECRET), 200);
	usleep(1000000);
	cr_assert_eq(status_int("syncs"), syncs, "a replayed delivery triggered a sync");
	/* a push to another branch: accepted, ignored */
	cr_assert_eq(post_hook("{\"ref\":\"refs/heads/feature\"}", "d-3", SECRET), 202);
	usleep(500000);
	cr_assert_eq(status_int("syncs"), syncs, "a push to another branch triggered a sync");
}

Test(run, sigterm_stops_cleanly_with_nothing_pending)
{
	tp_buf b;
	int st = 0;
	tp_state *s = NULL;
	tp_journal_entry *pending = NULL;
	size_t n = 0;
	char *db;
	/* throttling on every write keeps the first apply busy for a second or so */
	extra_env = "TAPESTRY_LOCAL_FAULTS=throttle:3";
	tp_buf_init(&b, 0);
	for (int i = 0; i < 60; i++)
		tp_buf_printf(&b, "---\nkind: local.file\nname: f%d\nspec: {path: @OUT@/f%d, "
				  "content: \"%d\"}\n", i, i, i);
	write_pipeline(tp_buf_cstr(&b));
	tp_buf_free(&b);
	commit("many");
	start("200ms", NULL);
	/* stop it while the first apply is in flight (or just after) */
	usleep(300000);
	kill(ctl_pid, SIGTERM);
	cr_assert_eq(waitpid(ctl_pid, &st, 0), ctl_pid);
	ctl_pid = -1;
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "exit status %d", st);
	db = tp_sprintf("%s/state.db", statedir);
	cr_assert_eq(tp_state_open(&s, db, TP_STATE_READONLY), 0, "%s", tp_error_last());
	cr_assert_eq(tp_state_journal_pending(&pending, &n, s), 0);
	cr_assert_eq(n, 0, "%zu journal rows left pending after SIGTERM", n);
	free(pending);
	tp_state_close(s);
	{
		/* it stopped part-way: not every file was written yet */
		int missing = 0;
		for (int i = 0; i < 60; i++) {
			char name[16];
			char *c;
			snprintf(name, sizeof(name), "f%d", i);
			c = ts_read_in(out, name);
			missing += c == NULL;
			free(c);
		}
		cr_log_info("SIGTERM during the first apply: %d of 60 files not yet written",
			    missing);
		if (missing > 0) {
			/* a run stopped part-way is not an applied revision */
			char *rev = NULL;
			cr_assert_eq(tp_state_open(&s, db, TP_STATE_READONLY), 0, "%s",
				     tp_error_last());
			cr_assert_eq(tp_state_revision_last_applied(&rev, s), TP_ENOTFOUND,
				     "a stopped run was recorded as applied (%s)", rev ? rev : "");
			tp_state_close(s);
		}
	}
	/* and a restart picks up where it stopped */
	extra_env = NULL;
	start("200ms", NULL);
	{
		char *c = head();
		wait_for("commit", c, 30000);
		free(c);
	}
	expect_out("f59", "59");
	free(db);
}

Test(run, follows_a_repository_served_by_git_daemon)
{
	int dport = ts_free_port();
	pid_t dpid;
	char *url, *c;
	write_pipeline(TWO);
	commit("first");
	dpid = ts_git_daemon_start(tmp, dport);
	url = tp_sprintf("git://127.0.0.1:%d/origin", dport);
	start("200ms", url);
	wait_ready();
	c = head();
	wait_for("commit", c, 20000);
	free(c);
	expect_out("c.txt", "three");
	ts_stop_pid(ctl_pid);
	ctl_pid = -1;
	ts_stop_pid(dpid);
	free(url);
}

Test(run, a_flaky_target_converges_and_the_metrics_count_the_retries)
{
	char *c, *url;
	ts_http_result r;
	extra_env = "TAPESTRY_LOCAL_FAULTS=throttle:2,transient:1";
	write_pipeline(TWO);
	commit("first");
	start("200ms", NULL);
	wait_ready();
	c = head();
	wait_for("commit", c, 30000);
	free(c);
	expect_out("c.txt", "three");
	url = tp_sprintf("%s/metrics", base_url);
	r = ts_http("GET", url, NULL, NULL);
	/* 4 resources x (2 throttled + 1 server error), each retried */
	cr_assert(strstr(r.body, "tapestry_retries_total{provider=\"local\"} 12"), "%s", r.body);
	cr_assert(strstr(r.body, "tapestry_api_requests_total{provider=\"local\",code=\"throttled\"} 8"),
		  "%s", r.body);
	cr_assert(strstr(r.body, "tapestry_api_requests_total{provider=\"local\",code=\"transient\"} 4"),
		  "%s", r.body);
	cr_assert(strstr(r.body, "tapestry_api_requests_total{provider=\"local\",code=\"ok\"} 4"),
		  "%s", r.body);
	ts_http_result_free(&r);
	free(url);
	{
		/* the API the dashboard reads */
		json_t *v = get_json("/api/providers"), *run, *logs, *res;
		size_t i;
		json_t *p;
		bool seen = false;
		json_array_foreach(v, i, p) {
			if (strcmp(tp_json_get_str(p, "provider"), "local") != 0)
				continue;
			seen = true;
			cr_assert_eq(json_integer_value(tp_json_path_get(p, "requests.throttled")), 8);
			cr_assert_eq(json_integer_value(json_object_get(p, "retries")), 12);
			cr_assert_float_eq(json_real_value(json_object_get(p, "error_rate")),
					   12.0 / 16.0, 1e-9);
		}
		cr_assert(seen, "no local provider in /api/providers");
		json_decref(v);
		v = get_json("/api/runs?limit=1");
		{
			char *path = tp_sprintf("/api/runs/%lld", (long long)json_integer_value(
							    tp_json_path_get(v, "0.id")));
			run = get_json(path);
			free(path);
		}
		cr_assert_not_null(run);
		cr_assert_str_eq(json_string_value(tp_json_path_get(run, "plan.format_version")),
				 "1.0");
		cr_assert_eq(json_array_size(json_object_get(run, "journal")), 4);
		cr_assert_str_eq(json_string_value(tp_json_path_get(run, "journal.0.status")), "done");
		cr_assert_eq(json_integer_value(tp_json_path_get(run, "journal.0.attempts")), 4);
		json_decref(run);
		json_decref(v);
		logs = get_json("/api/logs?address=local.file%2Fa&level=warn");
		cr_assert_gt(json_array_size(logs), 0);
		cr_assert_str_eq(json_string_value(tp_json_path_get(logs, "0.resource")),
				 "local.file/a");
		json_decref(logs);
		res = get_json("/api/resources");
		cr_assert(json_is_array(tp_json_path_get(res, "0.drift")));
		json_decref(res);
		v = get_json("/api/events?type=create&limit=2");
		cr_assert_eq(json_array_size(v), 2);
		cr_assert_str_eq(json_string_value(tp_json_path_get(v, "1.type")), "create");
		json_decref(v);
		v = get_json("/api/runs/999999");
		cr_assert_null(v);
	}
}

/* ---------------------------------------------------------------- commit statuses */

/* A stand-in for GitHub's statuses endpoint: records what it was sent. */
static pthread_mutex_t gh_mu = PTHREAD_MUTEX_INITIALIZER;
static tp_strlist gh_seen; /* "METHOD PATH AUTH BODY" */

static enum MHD_Result gh_answer(void *cls, struct MHD_Connection *conn, const char *url,
				 const char *method, const char *version, const char *upload,
				 size_t *upload_size, void **state)
{
	tp_buf *body = *state;
	struct MHD_Response *r;
	enum MHD_Result ret;
	const char *auth;
	(void)cls;
	(void)version;
	if (!body) {
		body = tp_calloc(1, sizeof(*body));
		tp_buf_init(body, 1 << 20);
		*state = body;
		return MHD_YES;
	}
	if (*upload_size) {
		tp_buf_put(body, upload, *upload_size);
		*upload_size = 0;
		return MHD_YES;
	}
	auth = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Authorization");
	pthread_mutex_lock(&gh_mu);
	tp_strlist_push_owned(&gh_seen, tp_sprintf("%s %s %s %s", method, url, auth ? auth : "-",
						   tp_buf_cstr(body)));
	pthread_mutex_unlock(&gh_mu);
	tp_buf_free(body);
	free(body);
	*state = NULL;
	r = MHD_create_response_from_buffer(2, (void *)(uintptr_t)"{}", MHD_RESPMEM_PERSISTENT);
	ret = MHD_queue_response(conn, 201, r);
	MHD_destroy_response(r);
	return ret;
}

Test(run, posts_each_sync_result_as_a_commit_status)
{
	int gh_port = ts_free_port();
	struct MHD_Daemon *gh = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD,
						 (uint16_t)gh_port, NULL, NULL, gh_answer, NULL,
						 MHD_OPTION_END);
	char *cfg, *c, *want;
	bool found = false;
	const char *env = "GH_STATUS_TOKEN=ghs_status_token_for_tests";
	cr_assert_not_null(gh);
	cfg = tp_sprintf("commit_status: {repository: rainshield/pipeline, token: "
			 "\"${secret:env:GH_STATUS_TOKEN}\", api_url: \"http://127.0.0.1:%d\"}\n",
			 gh_port);
	extra_config = cfg;
	extra_env = env;
	write_pipeline(TWO);
	commit("first");
	start("200ms", NULL);
	wait_ready();
	c = head();
	wait_for("commit", c, 20000);
	want = tp_sprintf("POST /repos/rainshield/pipeline/statuses/%s", c);
	for (int i = 0; i < 100 && !found; i++) {
		pthread_mutex_lock(&gh_mu);
		for (size_t k = 0; k < gh_seen.len; k++)
			if (strncmp(gh_seen.items[k], want, strlen(want)) == 0) {
				found = true;
				cr_assert(strstr(gh_seen.items[k], "ghs_status_token_for_tests"),
					  "no token: %s", gh_seen.items[k]);
				cr_assert(strstr(gh_seen.items[k], "\"state\":\"success\""), "%s",
					  gh_seen.items[k]);
			}
		pthread_mutex_unlock(&gh_mu);
		if (!found)
			usleep(50000);
	}
	cr_assert(found, "no commit status was posted for %s", c);
	ts_stop_pid(ctl_pid);
	ctl_pid = -1;
	MHD_stop_daemon(gh);
	tp_strlist_free(&gh_seen);
	free(want);
	free(c);
	free(cfg);
}

Test(run, refuses_credentials_in_the_repository_url)
{
	int st = 0;
	char *log, *mirror;
	struct stat sb;
	write_pipeline("kind: local.file\nname: a\nspec: {path: @OUT@/a, content: a}\n");
	commit("one");
	start("1s", "https://deploy:s3cr3t-token@git.example.invalid/rainshield/pipeline.git");
	cr_assert_eq(waitpid(ctl_pid, &st, 0), ctl_pid);
	ctl_pid = -1;
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) != 0, "exit status %d", st);
	log = ts_read(logpath);
	cr_assert(strstr(log, "credentials in the URL are refused"), "%s", log);
	cr_assert(!strstr(log, "s3cr3t-token"), "the token reached the log: %s", log);
	/* nothing was fetched or written: no mirror in the state directory */
	mirror = tp_sprintf("%s/mirror.git", statedir);
	cr_assert(stat(mirror, &sb) != 0, "a mirror was created");
	free(mirror);
	free(log);
}

/* The first event of a given type for an address, or NULL. */
static json_t *event_of(const char *type, const char *address)
{
	char *q = tp_sprintf("/api/events?type=%s", type);
	json_t *v = get_json(q), *found = NULL, *list, *e;
	size_t i;
	free(q);
	list = json_is_array(v) ? v : json_object_get(v, "events");
	json_array_foreach(list, i, e) {
		const char *a = tp_json_get_str(e, "address");
		if (a && strcmp(a, address) == 0) {
			found = json_incref(e);
			break;
		}
	}
	json_decref(v);
	return found;
}

Test(run, drift_is_an_event_and_the_status_names_the_newest_commit)
{
	char *c, *path;
	json_t *ev = NULL, *provs;
	int64_t deadline;
	FILE *f;
	drift_interval = "300ms";
	write_pipeline(TWO);
	commit("first of two");
	start("200ms", NULL);
	wait_ready();
	c = head();
	wait_for("commit", c, 20000);
	free(c);
	{
		char *m = status_str("revision.fetched_message");
		char *a = status_str("revision.fetched_author");
		cr_assert(m && strncmp(m, "first of two", 12) == 0, "fetched_message %s", m ? m : "-");
		cr_assert(a && strlen(a) > 0, "no fetched_author");
		free(m);
		free(a);
	}
	/* behind Tapestry's back */
	path = tp_sprintf("%s/a.txt", out);
	f = fopen(path, "w");
	cr_assert_not_null(f);
	fputs("changed by hand", f);
	fclose(f);
	free(path);
	deadline = tp_clock_mono_ms() + 20000;
	while (!(ev = event_of("drifted", "local.file/a")) && tp_clock_mono_ms() < deadline)
		usleep(100000);
	cr_assert_not_null(ev, "no drifted event for local.file/a\n%s", ts_read(logpath));
	cr_assert(strstr(json_string_value(json_object_get(ev, "message")), "content"), "%s",
		  json_string_value(json_object_get(ev, "message")));
	cr_assert_null(strstr(json_string_value(json_object_get(ev, "message")), "by hand"),
		       "a drift event must not carry values");
	json_decref(ev);
	/* one event, not one per drift check */
	usleep(1000000);
	{
		json_t *v = get_json("/api/events?type=drifted");
		json_t *list = json_is_array(v) ? v : json_object_get(v, "events");
		cr_assert_eq(json_array_size(list), 1, "%s", json_dumps(v, 0));
		json_decref(v);
	}
	provs = get_json("/api/providers");
	{
		json_t *list = json_is_array(provs) ? provs : json_object_get(provs, "providers");
		json_t *p;
		size_t i;
		bool local = false;
		json_array_foreach(list, i, p) {
			if (strcmp(tp_json_get_str(p, "provider"), "local") != 0)
				continue;
			local = true;
			cr_assert(json_is_number(json_object_get(p, "error_rate_5m")), "%s",
				  json_dumps(p, 0));
			/* the drift checks' observations count as calls */
			cr_assert_gt(json_integer_value(json_object_get(
					     json_object_get(p, "requests"), "ok")), 2, "%s",
				     json_dumps(p, 0));
		}
		cr_assert(local);
	}
	json_decref(provs);
}
