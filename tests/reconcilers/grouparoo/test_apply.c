/*
 * The syncing end of the case study, end to end: the real `tapestry` binary applies a
 * pipeline repository to the real Grouparoo 0.9.0 (started once for this binary, see
 * grouparoo_server.h). The provider's url points at a counting proxy in front of Grouparoo,
 * so every write call Tapestry makes is seen: a no-op run makes none, a mapping change and a
 * group rule change make one each. Also: removing the destination from the repository
 * deletes it (waiting for Grouparoo's workers, as the plan says), an object of Grouparoo's
 * code config is left alone, and bad input (wrong API key, a source whose bootstrap fails, an
 * unknown plugin type, a mapping to an unknown property) surfaces Grouparoo's message and
 * leaves nothing behind that the state does not record.
 */
#include <microhttpd.h>
#include <pthread.h>

#include "grouparoo_server.h"
#include "state/state.h"

ReportHook(PRE_ALL)(struct criterion_test_set *set)
{
	(void)set;
	grh_suite_start();
}

ReportHook(POST_ALL)(struct criterion_global_stats *stats)
{
	(void)stats;
	grh_suite_stop();
}

/* ---------------------------------------------------------------- counting proxy */

typedef struct {
	struct MHD_Daemon *d;
	int port;
	char url[64];
	tp_http_client *http;
	pthread_mutex_t mu;
	int writes;
	tp_buf log; /* "METHOD /path -> status" lines of the write calls */
	char lose[128]; /* "METHOD /path": the next such call is forwarded, its answer lost */
	char kill_on[128]; /* "METHOD /path" prefix: the next such call kills kill_pid instead */
	pid_t kill_pid;
} proxy;

typedef struct {
	char *uri;
	tp_buf body;
	bool started;
} proxy_req;

static proxy px;

static void *px_uri(void *cls, const char *uri, struct MHD_Connection *c)
{
	proxy_req *r = tp_calloc(1, sizeof(*r));
	(void)cls;
	(void)c;
	r->uri = tp_strdup(uri);
	tp_buf_init(&r->body, 16u << 20);
	return r;
}

static void px_done(void *cls, struct MHD_Connection *c, void **con_cls,
		    enum MHD_RequestTerminationCode toe)
{
	proxy_req *r = *con_cls;
	(void)cls;
	(void)c;
	(void)toe;
	if (!r)
		return;
	free(r->uri);
	tp_buf_free(&r->body);
	free(r);
	*con_cls = NULL;
}

static enum MHD_Result px_answer(void *cls, struct MHD_Connection *conn, const char *url,
				 const char *method, const char *version, const char *upload,
				 size_t *upload_size, void **con_cls)
{
	proxy_req *r = *con_cls;
	const char *auth = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Authorization");
	char *auth_h = NULL, *target;
	const char *headers[3] = {NULL, NULL, NULL};
	tp_http_request req = {0};
	tp_http_reply rep = {0};
	struct MHD_Response *resp;
	enum MHD_Result ret;
	bool write = strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0;
	(void)cls;
	(void)url;
	(void)version;

	if (!r->started) {
		r->started = true;
		return MHD_YES;
	}
	if (*upload_size) {
		tp_buf_put(&r->body, upload, *upload_size);
		*upload_size = 0;
		return MHD_YES;
	}
	pthread_mutex_lock(&px.mu);
	if (px.kill_on[0] && px.kill_pid > 0) {
		char *call = tp_sprintf("%s %s", method, r->uri);
		if (strncmp(call, px.kill_on, strlen(px.kill_on)) == 0) {
			/* the process dies between two calls of one create: this one never
			 * reaches Grouparoo */
			kill(px.kill_pid, SIGKILL);
			px.kill_on[0] = '\0';
			free(call);
			pthread_mutex_unlock(&px.mu);
			resp = MHD_create_response_from_buffer(0, (void *)(uintptr_t)"",
							       MHD_RESPMEM_PERSISTENT);
			ret = MHD_queue_response(conn, 502, resp);
			MHD_destroy_response(resp);
			return ret;
		}
		free(call);
	}
	pthread_mutex_unlock(&px.mu);
	target = tp_sprintf("%s%s", grh_url(), r->uri);
	if (auth) {
		auth_h = tp_sprintf("Authorization: %s", auth);
		headers[0] = auth_h;
	}
	headers[auth ? 1 : 0] = "Content-Type: application/json";
	req.method = method;
	req.url = target;
	req.headers = headers;
	req.body = r->body.len ? r->body.ptr : NULL;
	req.body_len = r->body.len;
	req.timeout_ms = 120000;
	if (tp_http_client_do(px.http, &rep, &req) < 0)
		rep.status = 502;
	pthread_mutex_lock(&px.mu);
	if (write) {
		px.writes++;
		tp_buf_printf(&px.log, "%s %s -> %ld\n", method, r->uri, rep.status);
	}
	if (px.lose[0]) {
		char *call = tp_sprintf("%s %s", method, r->uri);
		if (strcmp(call, px.lose) == 0) {
			/* Grouparoo did it; Tapestry hears a gateway timeout */
			px.lose[0] = '\0';
			rep.status = 504;
			tp_buf_clear(&rep.body);
		}
		free(call);
	}
	pthread_mutex_unlock(&px.mu);
	resp = MHD_create_response_from_buffer(rep.body.len, rep.body.ptr ? rep.body.ptr : "",
					       MHD_RESPMEM_MUST_COPY);
	MHD_add_response_header(resp, "Content-Type", "application/json");
	ret = MHD_queue_response(conn, (unsigned)(rep.status ? rep.status : 502), resp);
	MHD_destroy_response(resp);
	tp_http_reply_clear(&rep);
	free(target);
	free(auth_h);
	return ret;
}

static void px_start(void)
{
	pthread_mutex_init(&px.mu, NULL);
	tp_buf_init(&px.log, 1u << 20);
	px.http = tp_http_client_new();
	px.port = ts_free_port();
	px.d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION,
				(uint16_t)px.port, NULL, NULL, px_answer, NULL,
				MHD_OPTION_URI_LOG_CALLBACK, px_uri, NULL,
				MHD_OPTION_NOTIFY_COMPLETED, px_done, NULL, MHD_OPTION_END);
	cr_assert_not_null(px.d, "cannot start the counting proxy");
	snprintf(px.url, sizeof(px.url), "http://127.0.0.1:%d", px.port);
}

static void px_stop(void)
{
	if (px.d)
		MHD_stop_daemon(px.d);
	tp_http_client_free(px.http);
	tp_buf_free(&px.log);
	pthread_mutex_destroy(&px.mu);
	memset(&px, 0, sizeof(px));
}

/* Write calls since the last reset, and what they were. */
static int px_writes(char **what)
{
	int n;
	pthread_mutex_lock(&px.mu);
	n = px.writes;
	if (what)
		*what = tp_strdup(tp_buf_cstr(&px.log));
	pthread_mutex_unlock(&px.mu);
	return n;
}

static void px_reset(void)
{
	pthread_mutex_lock(&px.mu);
	px.writes = 0;
	tp_buf_clear(&px.log);
	pthread_mutex_unlock(&px.mu);
}

/* ---------------------------------------------------------------- the pipeline */

static char *dir, *db, *pdir;

static void setup(void)
{
	grh_require();
	px_start();
	dir = ts_tmpdir();
	db = tp_sprintf("%s/state.db", dir);
	pdir = tp_sprintf("%s/p", dir);
}

static void teardown(void)
{
	px_stop();
	ts_rmtree(dir);
	free(dir);
	free(db);
	free(pdir);
}

TestSuite(grouparoo_apply, .init = setup, .fini = teardown, .timeout = 400);

/* tapestry.yaml: the provider at the proxy, the API key from the environment. */
static void write_settings(void)
{
	char *yaml = tp_sprintf("pipeline: grouparoo-e2e\n"
				"settings: {max_prune: 100%%}\n"
				"providers:\n"
				"  grouparoo:\n"
				"    url: \"%s\"\n"
				"    api_key: \"${secret:env:GROUPAROO_API_KEY}\"\n",
				px.url);
	ts_write(pdir, "tapestry.yaml", yaml);
	free(yaml);
}

/* resources/syncing.yaml from a template: @P@ prefix (names and keys are unique per test on
 * the shared server), @FILE@ the warehouse file. */
static void write_resources(const char *prefix, const char *yaml)
{
	char *file = grh_path("users.sqlite");
	char *a = ts_replace(yaml, "@P@", prefix);
	char *b = ts_replace(a, "@FILE@", file);
	ts_write(pdir, "resources/syncing.yaml", b);
	free(a);
	free(b);
	free(file);
}

static ts_result run(const char *const *args, const char *api_key)
{
	char *key = tp_sprintf("GROUPAROO_API_KEY=%s", api_key ? api_key : grh_key());
	const char *env[] = {key, "MAILCHIMP_API_KEY=mc-canary-5f1e2d-us6", "NO_COLOR=1", NULL};
	ts_result r;
	px_reset();
	/* deleting a model waits for Grouparoo's single worker to clear its records, which
	 * takes minutes when the machine is busy: the limit is the provider's own bound */
	r = ts_run_tapestry_for(args, env, 600000);
	free(key);
	return r;
}

static ts_result apply_with_key(const char *api_key)
{
	const char *args[] = {"apply", pdir, "--state", db, "--auto-approve", NULL};
	return run(args, api_key);
}

static ts_result apply(void)
{
	return apply_with_key(NULL);
}

static ts_result plan_refresh(void)
{
	const char *args[] = {"plan", pdir, "--state", db, "--refresh", "--detailed-exitcode",
			      NULL};
	return run(args, NULL);
}

/* The recorded resources' addresses, one per line. */
static char *state_addresses(void)
{
	tp_state *s = NULL;
	tp_state_resources l = {0};
	tp_buf b;
	tp_buf_init(&b, 0);
	if (tp_state_open(&s, db, TP_STATE_READONLY) != 0)
		return tp_buf_detach(&b);
	cr_assert_eq(tp_state_resources_list(&l, s), 0);
	for (size_t i = 0; i < l.len; i++)
		tp_buf_printf(&b, "%s\n", l.items[i].address);
	tp_state_resources_free(&l);
	tp_state_close(s);
	return tp_buf_detach(&b);
}

static const char *CASE_STUDY =
	"kind: grouparoo.model\nname: people\nspec: {name: \"@P@ people\", type: profile}\n"
	"---\n"
	"kind: grouparoo.app\nname: warehouse\n"
	"spec: {name: \"@P@ warehouse\", type: sqlite, options: {file: \"@FILE@\"}}\n"
	"---\n"
	"kind: grouparoo.app\nname: mailchimp\n"
	"spec: {name: \"@P@ mailchimp\", type: mailchimp,\n"
	"       options: {apiKey: \"${secret:env:MAILCHIMP_API_KEY}\"}}\n"
	"---\n"
	"kind: grouparoo.source\nname: users\nspec:\n"
	"  name: \"@P@ users\"\n"
	"  app: ${grouparoo.app/warehouse.id}\n"
	"  model: ${grouparoo.model/people.id}\n"
	"  type: sqlite-import-table\n"
	"  options: {table: users}\n"
	"  mapping: {id: @P@_user_id}\n"
	"  schedule: {frequency: 1h, options: {column: id}}\n"
	"---\n"
	"kind: grouparoo.property\nname: user-id\nspec:\n"
	"  key: @P@_user_id\n  type: integer\n  unique: true\n"
	"  source: ${grouparoo.source/users.id}\n"
	"  options: {column: id, aggregationMethod: exact}\n"
	"---\n"
	"kind: grouparoo.property\nname: email\nspec:\n"
	"  key: @P@_email\n  type: email\n  unique: true\n"
	"  source: ${grouparoo.source/users.id}\n"
	"  options: {column: email, aggregationMethod: exact}\n"
	"---\n"
	"kind: grouparoo.group\nname: example-users\nspec:\n"
	"  name: \"@P@ example users\"\n"
	"  model: ${grouparoo.model/people.id}\n"
	"  rules: [{key: \"${grouparoo.property/email.key}\", op: like, match: \"@MATCH@\"}]\n";

static const char *DESTINATION =
	"---\n"
	"kind: grouparoo.destination\nname: crm\nspec:\n"
	"  name: \"@P@ crm\"\n"
	"  app: ${grouparoo.app/warehouse.id}\n"
	"  model: ${grouparoo.model/people.id}\n"
	"  type: sqlite-export-records\n"
	"  sync_mode: sync\n"
	"  options: {table: @P@_out, primaryKey: id, groupsTable: @P@_out_groups,\n"
	"            groupForeignKey: user_id, groupColumnName: group_name}\n"
	"  mapping: {id: \"${grouparoo.property/user-id.key}\",\n"
	"            @COLUMN@: \"${grouparoo.property/email.key}\"}\n"
	"  group: ${grouparoo.group/example-users.id}\n"
	"  destination_group_memberships:\n"
	"    - {group: \"${grouparoo.group/example-users.id}\", remote_key: Example}\n";

static void case_study(const char *match, const char *column, bool destination)
{
	char *a = ts_replace(CASE_STUDY, "@MATCH@", match);
	char *d = ts_replace(DESTINATION, "@COLUMN@", column);
	char *all = tp_sprintf("%s%s", a, destination ? d : "");
	write_resources("cs", all);
	free(a);
	free(d);
	free(all);
}

static json_t *live_destination(void)
{
	json_t *d = grh_find("destinations", "name", "cs crm");
	cr_assert_not_null(d, "the destination \"cs crm\" is not in Grouparoo");
	return d;
}

Test(grouparoo_apply, case_study_create_noop_mapping_rule_and_delete, .timeout = 900)
{
	ts_result r;
	json_t *d, *g, *src, *mc;
	char *what = NULL, *state;

	grh_sql("CREATE TABLE cs_out (id INTEGER PRIMARY KEY, email TEXT, name TEXT);"
		"CREATE TABLE cs_out_groups (user_id INTEGER, group_name TEXT);");
	write_settings();
	case_study("%@example.com", "email", true);

	/* created from the repository, in dependency order */
	r = apply();
	cr_assert_eq(r.status, 0, "%s%s", r.out, r.err);
	cr_assert(strstr(r.out, "Apply complete! Resources: 8 added, 0 changed, 0 destroyed."),
		  "%s", r.out);
	cr_assert(strstr(r.out, "apiKey = (sensitive)") || strstr(r.out, "\"apiKey\":\"(sensitive)\""),
		  "%s", r.out);
	cr_assert_null(strstr(r.out, "mc-canary-5f1e2d"));
	cr_assert_null(strstr(r.err, "mc-canary-5f1e2d"));
	ts_result_free(&r);
	src = grh_find("sources", "name", "cs users");
	cr_assert_not_null(src);
	cr_assert_str_eq(tp_json_get_str(src, "state"), "ready");
	cr_assert_str_eq(tp_json_get_str(json_object_get(src, "mapping"), "id"), "cs_user_id");
	json_decref(src);
	cr_assert_eq(grh_count("properties", "key", "cs_user_id"), 1,
		     "the bootstrapped key property is taken up, not duplicated");
	d = live_destination();
	cr_assert_str_eq(tp_json_get_str(d, "state"), "ready");
	cr_assert_str_eq(tp_json_get_str(d, "collection"), "group");
	cr_assert_str_eq(tp_json_get_str(json_object_get(d, "mapping"), "email"), "cs_email");
	cr_assert_str_eq(tp_json_get_str(json_array_get(json_object_get(
				 d, "destinationGroupMemberships"), 0), "remoteKey"), "Example");
	json_decref(d);
	mc = grh_find("apps", "name", "cs mailchimp");
	cr_assert_str_eq(tp_json_get_str(json_object_get(mc, "options"), "apiKey"),
			 "__ObfuscatedOption");
	json_decref(mc);
	state = ts_read(db);
	cr_assert_null(strstr(state ? state : "", "mc-canary-5f1e2d"), "a secret reached the state");
	free(state);

	/* nothing changed: no write call at all */
	r = apply();
	cr_assert_eq(r.status, 0, "%s%s", r.out, r.err);
	cr_assert(strstr(r.out, "No changes."), "%s", r.out);
	cr_assert_eq(px_writes(&what), 0, "a no-op run wrote to Grouparoo:\n%s", what);
	free(what);
	ts_result_free(&r);
	/* and what Grouparoo answers compares equal to what was applied: no drift, no change */
	r = plan_refresh();
	cr_assert_eq(r.status, 0, "plan --refresh found differences:\n%s%s", r.out, r.err);
	cr_assert_eq(px_writes(NULL), 0);
	ts_result_free(&r);

	/* a mapping change is one update, one write call */
	case_study("%@example.com", "name", true);
	r = apply();
	cr_assert_eq(r.status, 0, "%s%s", r.out, r.err);
	cr_assert(strstr(r.out, "grouparoo.destination/crm will be updated in-place"), "%s", r.out);
	cr_assert(strstr(r.out, "Resources: 0 added, 1 changed, 0 destroyed"), "%s", r.out);
	cr_assert_eq(px_writes(&what), 1, "%s", what);
	cr_assert(strstr(what, "PUT /api/v1/destination/dst_"), "%s", what);
	free(what);
	ts_result_free(&r);
	d = live_destination();
	cr_assert_str_eq(tp_json_get_str(json_object_get(d, "mapping"), "name"), "cs_email");
	cr_assert_null(json_object_get(json_object_get(d, "mapping"), "email"));
	json_decref(d);

	/* a group rule change is one update, one write call */
	case_study("%@corp.com", "name", true);
	r = apply();
	cr_assert_eq(r.status, 0, "%s%s", r.out, r.err);
	cr_assert(strstr(r.out, "grouparoo.group/example-users will be updated in-place"), "%s",
		  r.out);
	cr_assert(strstr(r.out, "Resources: 0 added, 1 changed, 0 destroyed"), "%s", r.out);
	cr_assert_eq(px_writes(&what), 1, "%s", what);
	cr_assert(strstr(what, "PUT /api/v1/group/grp_"), "%s", what);
	free(what);
	ts_result_free(&r);
	g = grh_find("groups", "name", "cs example users");
	cr_assert_not_null(g);
	cr_assert_str_eq(tp_json_get_str(json_array_get(json_object_get(g, "rules"), 0), "match"),
			 "%@corp.com");
	json_decref(g);

	/* removing the destination from the repository deletes it; the plan says it waits for
	 * Grouparoo's workers (delete_mode) */
	case_study("%@corp.com", "name", false);
	r = apply();
	cr_assert_eq(r.status, 0, "%s%s", r.out, r.err);
	cr_assert(strstr(r.out, "grouparoo.destination/crm will be destroyed"), "%s", r.out);
	cr_assert(strstr(r.out, "delete_mode"), "%s", r.out);
	cr_assert(strstr(r.out, "\"wait\""), "%s", r.out);
	cr_assert(strstr(r.out, "Resources: 0 added, 0 changed, 1 destroyed"), "%s", r.out);
	cr_assert_eq(px_writes(&what), 1, "%s", what);
	cr_assert(strstr(what, "DELETE /api/v1/destination/dst_"), "%s", what);
	cr_assert_null(strstr(what, "force=true"), "%s", what);
	free(what);
	ts_result_free(&r);
	cr_assert_eq(grh_count("destinations", "name", "cs crm"), 0,
		     "the destination is still in Grouparoo");
	state = state_addresses();
	cr_assert_null(strstr(state, "grouparoo.destination/crm"), "%s", state);
	free(state);

	/* and everything else is still in sync */
	r = plan_refresh();
	cr_assert_eq(r.status, 0, "%s%s", r.out, r.err);
	ts_result_free(&r);

	/* deliberately forced: the group goes at once when it is deleted. A Tapestry-side
	 * setting: the update makes no write call */
	{
		char *a = ts_replace(CASE_STUDY, "@MATCH@", "%@corp.com");
		char *forced = tp_sprintf("%s  delete_mode: force\n", a);
		write_resources("cs", forced);
		free(a);
		free(forced);
	}
	r = apply();
	cr_assert_eq(r.status, 0, "%s%s", r.out, r.err);
	cr_assert(strstr(r.out, "~ delete_mode = \"wait\" -> \"force\""), "%s", r.out);
	cr_assert_eq(px_writes(&what), 0, "%s", what);
	free(what);
	ts_result_free(&r);

	/* the syncing side removed, dependants first. The model stays: deleting a model waits
	 * for Grouparoo's one worker to clear the records imported into it, which on this test
	 * server can outlast any bound a test can afford (the provider waits up to its
	 * delete_timeout, then reports it). */
	{
		char *marker = tp_sprintf("kind: local.file\nname: marker\n"
					  "spec: {path: \"%s/marker\", content: \"\"}\n---\n"
					  "kind: grouparoo.model\nname: people\n"
					  "spec: {name: \"cs people\", type: profile}\n", dir);
		ts_write(pdir, "resources/syncing.yaml", marker);
		free(marker);
	}
	{
		const char *args[] = {"apply", pdir, "--state", db, "--auto-approve",
				      "--allow-mass-delete", NULL};
		r = run(args, NULL);
	}
	cr_assert_eq(r.status, 0, "%s%s", r.out, r.err);
	cr_assert(strstr(r.out, "6 destroyed"), "%s", r.out);
	ts_result_free(&r);
	cr_assert_eq(grh_count("sources", "name", "cs users"), 0);
	cr_assert_eq(grh_count("properties", "key", "cs_email"), 0);
	cr_assert_eq(grh_count("properties", "key", "cs_user_id"), 0);
	cr_assert_eq(grh_count("groups", "name", "cs example users"), 0);
	cr_assert_eq(grh_count("apps", "name", "cs warehouse"), 0);
	cr_assert_eq(grh_count("models", "name", "cs people"), 1);
	cr_assert_eq(grh_count("schedules", "name", "cs users"), 0);
	state = state_addresses();
	cr_assert_str_eq(state, "grouparoo.model/people\nlocal.file/marker\n");
	free(state);
}

/* ---------------------------------------------------------------- code config */

static const char *LOCKED_NAMESAKE =
	"kind: grouparoo.app\nname: code-app\n"
	"spec: {name: code-app, type: sqlite, options: {file: \"@FILE@\"}}\n";

static const char *ANCHOR =
	"kind: grouparoo.model\nname: anchor\nspec: {name: \"@P@ anchor\", type: profile}\n";

/* What Grouparoo has for the code-config app, compactly. */
static char *code_app_now(void)
{
	long st = 0;
	json_t *reply = grh_api(&st, "GET", "/app/code_app", NULL);
	json_t *app = json_object_get(reply, "app");
	char *text;
	cr_assert_eq(st, 200, "the code-config app is gone");
	json_object_del(app, "updatedAt");
	text = tp_json_canonical(app);
	json_decref(reply);
	return text;
}

Test(grouparoo_apply, locked_code_config_object_is_left_alone)
{
	char *before = code_app_now(), *after, *what = NULL, *state, *yaml;
	tp_state *s = NULL;
	tp_state_resource row = {0};
	char *file = grh_path("users.sqlite");
	ts_result r;

	write_settings();
	/* 1. declaring an object of the code config: refused, nothing written */
	yaml = tp_sprintf("%s---\n%s", ANCHOR, LOCKED_NAMESAKE);
	write_resources("lk", yaml);
	free(yaml);
	r = apply();
	cr_assert_eq(r.status, 1, "%s%s", r.out, r.err);
	cr_assert(strstr(r.out, "is defined in Grouparoo's code config"), "%s", r.out);
	cr_assert(strstr(r.out, "locked: config:code"), "%s", r.out);
	cr_assert_eq(px_writes(&what), 1, "only the model is created:\n%s", what);
	free(what);
	ts_result_free(&r);
	cr_assert_eq(grh_count("apps", "name", "code-app"), 1);
	state = state_addresses();
	cr_assert_null(strstr(state, "grouparoo.app/code-app"), "%s", state);
	free(state);

	/* 2. a managed object that Grouparoo's code config took over since (recorded with its
	 * id): observe reports it, update and delete refuse with a clear message */
	cr_assert_eq(tp_state_open(&s, db, TP_STATE_READWRITE), 0, "%s", tp_error_last());
	row.address = (char *)"grouparoo.app/legacy";
	row.kind = (char *)"grouparoo.app";
	row.name = (char *)"legacy";
	row.provider_id = (char *)"code_app";
	row.applied = json_pack("{s:s,s:s,s:{s:s}}", "name", "code-app", "type", "sqlite",
				"options", "file", file);
	row.outputs = json_pack("{s:s}", "id", "code_app");
	row.lifecycle = json_pack("{s:b,s:s,s:[]}", "prevent_destroy", 0, "deletion", "delete",
				  "ignore_changes");
	row.deps = json_array();
	row.spec_hash = (char *)"0";
	row.status = (char *)"ready";
	cr_assert_eq(tp_state_resource_put(s, &row), 0, "%s", tp_error_last());
	json_decref(row.applied);
	json_decref(row.outputs);
	json_decref(row.lifecycle);
	json_decref(row.deps);
	tp_state_close(s);

	yaml = tp_sprintf("%s---\nkind: grouparoo.app\nname: legacy\n"
			  "spec: {name: code-app-renamed, type: sqlite, options: {file: \"@FILE@\"}}\n",
			  ANCHOR);
	write_resources("lk", yaml);
	free(yaml);
	/* the plan leaves the locked object out and says so; apply writes nothing */
	r = plan_refresh();
	cr_assert_eq(r.status, 0, "%s%s", r.out, r.err);
	cr_assert(strstr(r.err, "is defined in Grouparoo's code config (locked: config:code)"),
		  "observe must report the lock:\n%s", r.err);
	cr_assert(strstr(r.out, "Note: grouparoo.app/legacy is locked (config:code), owned outside "
				"Tapestry: its update is left out of this plan"), "%s", r.out);
	ts_result_free(&r);
	r = apply();
	cr_assert_eq(r.status, 0, "%s%s", r.out, r.err);
	cr_assert(strstr(r.out, "Note: grouparoo.app/legacy is locked"), "%s", r.out);
	cr_assert_eq(px_writes(&what), 0, "%s", what);
	free(what);
	ts_result_free(&r);

	/* removed from the repository: forgotten, never deleted */
	write_resources("lk", ANCHOR);
	r = apply();
	cr_assert_eq(r.status, 0, "%s%s", r.out, r.err);
	cr_assert(strstr(r.out, "grouparoo.app/legacy will be forgotten"), "%s", r.out);
	cr_assert(strstr(r.out, "locked (config:code)"), "%s", r.out);
	cr_assert_eq(px_writes(&what), 0, "%s", what);
	free(what);
	ts_result_free(&r);

	/* (the write slots also refuse locked objects on their own, for a plan made without
	 * observing: grouparoo_client covers that) */
	after = code_app_now();
	cr_assert_str_eq(after, before, "the code-config app was changed");
	free(before);
	free(after);
	free(file);
}

/* ---------------------------------------------------------------- lost answers */

Test(grouparoo_apply, create_whose_answer_is_lost_is_retried_without_duplicate)
{
	ts_result r;
	char *state;
	const char *yaml =
		"kind: grouparoo.model\nname: people\nspec: {name: \"@P@ people\", type: profile}\n"
		"---\n"
		"kind: grouparoo.group\nname: everyone\nspec:\n"
		"  name: \"@P@ everyone\"\n  model: ${grouparoo.model/people.id}\n";
	write_settings();
	write_resources("la", yaml);
	pthread_mutex_lock(&px.mu);
	snprintf(px.lose, sizeof(px.lose), "POST /api/v1/group");
	pthread_mutex_unlock(&px.mu);
	r = apply();
	cr_assert_eq(r.status, 0, "%s%s", r.out, r.err);
	cr_assert(strstr(r.out, "Still trying"), "the lost answer must be retried:\n%s", r.out);
	cr_assert(strstr(r.out, "Resources: 2 added"), "%s", r.out);
	ts_result_free(&r);
	cr_assert_eq(grh_count("groups", "name", "la everyone"), 1,
		     "the retried create made a second group");
	state = state_addresses();
	cr_assert_str_eq(state, "grouparoo.group/everyone\ngrouparoo.model/people\n");
	free(state);
	r = apply();
	cr_assert_eq(r.status, 0, "%s%s", r.out, r.err);
	cr_assert(strstr(r.out, "No changes."), "%s", r.out);
	ts_result_free(&r);
}

/* ---------------------------------------------------------------- crashes */

/* Found by bench/reliability/crash.sh: a kill between a destination's create (POST) and the
 * call that sets what it exports (PUT ... group) left a destination without its group.
 * Recovery adopted it and recorded the whole spec as applied, so the missing group showed
 * as drift for ever (self_heal off) instead of being finished. The restart's create now
 * takes the object up and brings it to the spec. */
Test(grouparoo_apply, a_kill_inside_a_destinations_create_is_finished_by_the_restart,
     .timeout = 900)
{
	const char *args[] = {"apply", pdir, "--state", db, "--auto-approve", NULL};
	char *key = tp_sprintf("GROUPAROO_API_KEY=%s", grh_key());
	const char *env[] = {key, "MAILCHIMP_API_KEY=mc-canary-5f1e2d-us6", "NO_COLOR=1", NULL};
	char *a = ts_replace(CASE_STUDY, "@MATCH@", "%@example.com");
	char *d = ts_replace(DESTINATION, "@COLUMN@", "email");
	char *all = tp_sprintf("%s%s", a, d);
	char *log = tp_sprintf("%s/killed.log", dir);
	int64_t deadline = tp_clock_mono_ms() + 600000;
	int st = 0;
	pid_t pid;
	ts_result r;
	json_t *dst;

	grh_sql("CREATE TABLE ck_out (id INTEGER PRIMARY KEY, email TEXT, name TEXT);"
		"CREATE TABLE ck_out_groups (user_id INTEGER, group_name TEXT);");
	write_settings();
	write_resources("ck", all);
	pthread_mutex_lock(&px.mu);
	snprintf(px.kill_on, sizeof(px.kill_on), "PUT /api/v1/destination/");
	pid = ts_spawn_tapestry(args, env, log);
	px.kill_pid = pid;
	pthread_mutex_unlock(&px.mu);
	while (waitpid(pid, &st, WNOHANG) == 0) {
		cr_assert(tp_clock_mono_ms() < deadline, "the first apply did not end");
		tp_clock_sleep_ms(50);
	}
	cr_assert(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL,
		  "the apply was not killed inside the destination's create:\n%s", ts_read(log));
	dst = grh_find("destinations", "name", "ck crm");
	cr_assert_not_null(dst, "the destination's POST did not go through");
	cr_assert_str_neq(tp_json_get_str(dst, "collection") ? tp_json_get_str(dst, "collection")
							     : "", "group");
	json_decref(dst);

	r = apply();
	cr_assert_eq(r.status, 0, "%s%s", r.out, r.err);
	cr_assert(strstr(r.err, "unfinished create of grouparoo.destination/crm: the object exists"),
		  "%s", r.err);
	ts_result_free(&r);
	cr_assert_eq(grh_count("destinations", "name", "ck crm"), 1, "a second destination");
	dst = grh_find("destinations", "name", "ck crm");
	cr_assert_str_eq(tp_json_get_str(dst, "collection"), "group");
	json_decref(dst);
	r = plan_refresh();
	cr_assert_eq(r.status, 0, "%s%s", r.out, r.err);
	cr_assert(strstr(r.out, "No changes."), "%s", r.out);
	cr_assert_null(strstr(r.out, "Drift"), "%s", r.out);
	ts_result_free(&r);
	free(key);
	free(a);
	free(d);
	free(all);
	free(log);
}

/* A kill inside a source's create (the draft made, its key property not yet bootstrapped):
 * the restart's create takes the draft up and finishes it, never updating a draft (which
 * Grouparoo refuses: its mapping names a property that does not exist yet) and never
 * making a second source. */
Test(grouparoo_apply, a_kill_inside_a_sources_create_is_finished_by_the_restart,
     .timeout = 900)
{
	const char *args[] = {"apply", pdir, "--state", db, "--auto-approve", NULL};
	char *key = tp_sprintf("GROUPAROO_API_KEY=%s", grh_key());
	const char *env[] = {key, "MAILCHIMP_API_KEY=mc-canary-5f1e2d-us6", "NO_COLOR=1", NULL};
	char *a = ts_replace(CASE_STUDY, "@MATCH@", "%@example.com");
	char *log = tp_sprintf("%s/killed.log", dir);
	int64_t deadline = tp_clock_mono_ms() + 600000;
	int st = 0;
	pid_t pid;
	ts_result r;
	json_t *src;

	write_settings();
	write_resources("kd", a);
	pthread_mutex_lock(&px.mu);
	snprintf(px.kill_on, sizeof(px.kill_on), "POST /api/v1/source/");
	pid = ts_spawn_tapestry(args, env, log);
	px.kill_pid = pid;
	pthread_mutex_unlock(&px.mu);
	while (waitpid(pid, &st, WNOHANG) == 0) {
		cr_assert(tp_clock_mono_ms() < deadline, "the first apply did not end");
		tp_clock_sleep_ms(50);
	}
	cr_assert(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL,
		  "the apply was not killed inside the source's create:\n%s", ts_read(log));
	src = grh_find("sources", "name", "kd users");
	cr_assert_not_null(src, "the draft was not made");
	cr_assert_str_eq(tp_json_get_str(src, "state"), "draft");
	json_decref(src);

	r = apply();
	cr_assert_eq(r.status, 0, "%s%s", r.out, r.err);
	ts_result_free(&r);
	cr_assert_eq(grh_count("sources", "name", "kd users"), 1, "a second source");
	src = grh_find("sources", "name", "kd users");
	cr_assert_str_eq(tp_json_get_str(src, "state"), "ready");
	json_decref(src);
	cr_assert_eq(grh_count("properties", "key", "kd_user_id"), 1);
	r = plan_refresh();
	cr_assert_eq(r.status, 0, "%s%s", r.out, r.err);
	cr_assert(strstr(r.out, "No changes."), "%s", r.out);
	cr_assert_null(strstr(r.out, "Drift"), "%s", r.out);
	ts_result_free(&r);
	free(key);
	free(a);
	free(log);
}

/* ---------------------------------------------------------------- bad input */

Test(grouparoo_apply, wrong_api_key_surfaces_grouparoo_message)
{
	ts_result r;
	char *state;
	write_settings();
	write_resources("wk", ANCHOR);
	r = apply_with_key("not-the-key");
	cr_assert_eq(r.status, 1, "%s%s", r.out, r.err);
	cr_assert(strstr(r.out, "grouparoo.model/anchor: Error:"), "%s", r.out);
	cr_assert(strstr(r.out, "Grouparoo: apiKey not found"), "%s", r.out);
	cr_assert_null(strstr(r.out, "not-the-key"), "the key must not be printed");
	cr_assert_null(strstr(r.err, "not-the-key"), "the key must not be logged");
	ts_result_free(&r);
	cr_assert_eq(grh_count("models", "name", "wk anchor"), 0);
	state = state_addresses();
	cr_assert_str_eq(state, "");
	free(state);
}

Test(grouparoo_apply, unknown_plugin_type_creates_nothing)
{
	ts_result r;
	char *state, *yaml;
	write_settings();
	yaml = tp_sprintf("%s---\nkind: grouparoo.app\nname: bogus\n"
			  "spec: {name: \"@P@ bogus\", type: hubspot, options: {}}\n", ANCHOR);
	write_resources("up", yaml);
	free(yaml);
	r = apply();
	cr_assert_eq(r.status, 1, "%s%s", r.out, r.err);
	cr_assert(strstr(r.out, "grouparoo.app/bogus: Error:"), "%s", r.out);
	cr_assert(strstr(r.out, "Cannot find a \"hubspot\" app available within the installed "
				"plugins"), "%s", r.out);
	ts_result_free(&r);
	cr_assert_eq(grh_count("apps", "name", "up bogus"), 0);
	state = state_addresses();
	cr_assert_str_eq(state, "grouparoo.model/anchor\n");
	free(state);
}

static const char *BAD_SOURCE =
	"kind: grouparoo.model\nname: people\nspec: {name: \"@P@ people\", type: profile}\n"
	"---\n"
	"kind: grouparoo.app\nname: warehouse\n"
	"spec: {name: \"@P@ warehouse\", type: sqlite, options: {file: \"@FILE@\"}}\n"
	"---\n"
	"kind: grouparoo.source\nname: users\nspec:\n"
	"  name: \"@P@ users\"\n"
	"  app: ${grouparoo.app/warehouse.id}\n"
	"  model: ${grouparoo.model/people.id}\n"
	"  type: sqlite-import-table\n"
	"  options: {table: users}\n"
	"  mapping: {no_such_column: @P@_user_id}\n"
	"---\n"
	"kind: grouparoo.property\nname: email\nspec:\n"
	"  key: @P@_email\n  type: email\n  source: ${grouparoo.source/users.id}\n"
	"  options: {column: email, aggregationMethod: exact}\n";

Test(grouparoo_apply, source_whose_bootstrap_fails_leaves_nothing)
{
	ts_result r;
	char *state;
	write_settings();
	write_resources("bs", BAD_SOURCE);
	r = apply();
	cr_assert_eq(r.status, 1, "%s%s", r.out, r.err);
	cr_assert(strstr(r.out, "grouparoo.source/users: Error:"), "%s", r.out);
	cr_assert(strstr(r.out, "\"no_such_column\" is not a valid remote mapping key"), "%s",
		  r.out);
	cr_assert(strstr(r.out, "grouparoo.property/email: Skipped"), "%s", r.out);
	ts_result_free(&r);
	/* the draft and the bootstrapped property were removed again */
	cr_assert_eq(grh_count("sources", "name", "bs users"), 0);
	cr_assert_eq(grh_count("properties", "key", "bs_user_id"), 0);
	state = state_addresses();
	cr_assert_str_eq(state, "grouparoo.app/warehouse\ngrouparoo.model/people\n");
	free(state);
}

Test(grouparoo_apply, mapping_to_unknown_property_creates_nothing)
{
	ts_result r;
	char *state, *a, *b, *yaml;
	grh_sql("CREATE TABLE mp_out (id INTEGER PRIMARY KEY, email TEXT);"
		"CREATE TABLE mp_out_groups (user_id INTEGER, group_name TEXT);");
	write_settings();
	a = ts_replace(CASE_STUDY, "@MATCH@", "%@example.com");
	b = ts_replace(DESTINATION, "@COLUMN@: \"${grouparoo.property/email.key}\"",
		       "email: mp_no_such_property");
	yaml = tp_sprintf("%s%s", a, b);
	write_resources("mp", yaml);
	free(a);
	free(b);
	free(yaml);
	r = apply();
	cr_assert_eq(r.status, 1, "%s%s", r.out, r.err);
	cr_assert(strstr(r.out, "grouparoo.destination/crm: Error:"), "%s", r.out);
	cr_assert(strstr(r.out, "cannot find property mp_no_such_property"), "%s", r.out);
	cr_assert(strstr(r.out, "7 added"), "%s", r.out);
	ts_result_free(&r);
	cr_assert_eq(grh_count("destinations", "name", "mp crm"), 0);
	state = state_addresses();
	cr_assert_null(strstr(state, "grouparoo.destination/crm"), "%s", state);
	free(state);
}
