/*
 * The reconcile loop behind `tapestry run`: Git source → spec → plan → engine, forever.
 *
 * A sync is triggered by the poll timer (jittered), by a verified webhook, or by the drift
 * timer. It fetches the branch, skips commits that do not touch the pipeline path, loads and
 * validates the pipeline (a broken commit is recorded and the last good revision stays in
 * force), resolves interrupted work, observes live state, plans, and applies unless the
 * controller is suspended or plan-only. The HTTP server (its own threads) answers health,
 * readiness, metrics and the JSON API from a snapshot kept under a mutex and from read-only
 * state handles, so a long sync never blocks /healthz.
 */
#include "controller.h"

#include <ctype.h>
#include <malloc.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

typedef struct {
	tp_controller_config *cfg;
	const char *config_path;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool wake;
	bool ready;
	char pipeline[160];
	char fetched[41];        /* newest commit seen on the branch */
	char applied[41];        /* last commit whose pipeline was applied (or planned) */
	char applied_tree[41];   /* the pipeline path's tree id at that commit */
	char *applied_message;
	char *applied_author;
	char *fetched_message;   /* subject and author of the newest commit seen */
	char *fetched_author;
	tp_strlist drifted_now;  /* addresses drifted at the last plan (drift events on change) */
	json_t *api_window;      /* per provider: [[mono ms, calls, failed], ...] for 5-min rates */
	char *last_result;       /* "applied", "no-op", "invalid", "refused", "failed", ... */
	char *last_error;
	int64_t last_sync_ms, last_applied_ms;
	size_t drifted;
	size_t syncs;
	tp_metrics *m;
	char *db_path;
	volatile int *stop;
	tp_strlist problems;     /* diagnostics of the last invalid revision */
	json_t *last_plan;       /* GET /api/plan: the last plan built, or NULL */
	int64_t started_ms;
} ctl;

static const double duration_buckets[] = {0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300};

/* ---------------------------------------------------------------- configuration */

static const tp_field repo_fields[] = {
	{.name = "url", .type = TP_TYPE_STRING, .flags = TP_F_REQUIRED | TP_F_NOREF,
	 .doc = "https://, ssh://, git@host:path, file:// URL or local path of the repository"},
	{.name = "branch", .type = TP_TYPE_STRING, .def = "\"main\"", .flags = TP_F_NOREF,
	 .doc = "branch to follow"},
	{.name = "path", .type = TP_TYPE_STRING, .def = "\"\"", .flags = TP_F_NOREF,
	 .doc = "pipeline directory inside the repository"},
	{.name = "token", .type = TP_TYPE_STRING, .flags = TP_F_SECRET_REF,
	 .doc = "https access token, as a secret reference"},
	{.name = "ssh_key", .type = TP_TYPE_STRING, .flags = TP_F_NOREF,
	 .doc = "private key file for ssh remotes"},
	{0},
};

static const tp_field hook_fields[] = {
	{.name = "github_secret", .type = TP_TYPE_STRING, .flags = TP_F_SECRET_REF,
	 .doc = "GitHub webhook secret (X-Hub-Signature-256), enables POST /hooks/github"},
	{.name = "gitlab_token", .type = TP_TYPE_STRING, .flags = TP_F_SECRET_REF,
	 .doc = "GitLab webhook token (X-Gitlab-Token), enables POST /hooks/gitlab"},
	{.name = "generic_secret", .type = TP_TYPE_STRING, .flags = TP_F_SECRET_REF,
	 .doc = "HMAC secret for POST /hooks/generic (X-Tapestry-Signature-256)"},
	{0},
};

static const tp_field status_fields[] = {
	{.name = "repository", .type = TP_TYPE_STRING, .flags = TP_F_NOREF,
	 .doc = "owner/name on GitHub (default: derived from repository.url)"},
	{.name = "token", .type = TP_TYPE_STRING, .flags = TP_F_SECRET_REF | TP_F_REQUIRED,
	 .doc = "GitHub token allowed to write commit statuses, as a secret reference"},
	{.name = "api_url", .type = TP_TYPE_STRING, .flags = TP_F_NOREF,
	 .def = "\"https://api.github.com\"", .doc = "GitHub API base URL"},
	{.name = "context", .type = TP_TYPE_STRING, .flags = TP_F_NOREF, .def = "\"tapestry\"",
	 .doc = "the status context shown on the commit"},
	{.name = "target_url", .type = TP_TYPE_STRING, .flags = TP_F_NOREF,
	 .doc = "link shown with the status (e.g. the dashboard)"},
	{0},
};

#define STR_(x) #x
#define STR(x)  STR_(x)

static const tp_field history_fields[] = {
	{.name = "runs", .type = TP_TYPE_INT, .def = STR(TP_STATE_KEEP_RUNS), .min = 1,
	 .max = TP_STATE_KEEP_MAX, .doc = "newest runs kept, with their plans, journal and events"},
	{.name = "revisions", .type = TP_TYPE_INT, .def = STR(TP_STATE_KEEP_REVISIONS), .min = 1,
	 .max = TP_STATE_KEEP_MAX, .doc = "newest commits kept in the revision log"},
	{.name = "events", .type = TP_TYPE_INT, .def = STR(TP_STATE_KEEP_EVENTS), .min = 1,
	 .max = TP_STATE_KEEP_MAX, .doc = "newest events kept"},
	{.name = "event_max_age", .type = TP_TYPE_STRING, .def = "\"30d\"", .flags = TP_F_NOREF,
	 .doc = "events older than this are deleted (0s: no age limit)"},
	{0},
};

static const tp_field config_fields[] = {
	{.name = "repository", .type = TP_TYPE_OBJECT, .fields = repo_fields,
	 .flags = TP_F_REQUIRED, .doc = "the pipeline repository"},
	{.name = "state_dir", .type = TP_TYPE_STRING, .def = "\"/var/lib/tapestry\"",
	 .flags = TP_F_NOREF, .doc = "state database and Git mirror"},
	{.name = "listen", .type = TP_TYPE_STRING, .def = "\"127.0.0.1:7777\"",
	 .flags = TP_F_NOREF, .doc = "HTTP address (health, metrics, API, webhooks)"},
	{.name = "poll_interval", .type = TP_TYPE_STRING, .def = "\"60s\"", .flags = TP_F_NOREF,
	 .doc = "how often to fetch the repository"},
	{.name = "drift_interval", .type = TP_TYPE_STRING, .flags = TP_F_NOREF,
	 .doc = "how often to observe live state (default: the pipeline's setting)"},
	{.name = "plan_only", .type = TP_TYPE_BOOL, .def = "false",
	 .doc = "plan and report every change, never apply"},
	{.name = "suspend", .type = TP_TYPE_BOOL, .def = "false",
	 .doc = "stop applying; keep observing and reporting"},
	{.name = "allow_mass_delete", .type = TP_TYPE_BOOL, .def = "false",
	 .doc = "let plans pass the prune guard (prefer the commit message trailer)"},
	{.name = "webhooks", .type = TP_TYPE_OBJECT, .fields = hook_fields, .def = "{}",
	 .doc = "webhook secrets"},
	{.name = "api_token", .type = TP_TYPE_STRING, .flags = TP_F_SECRET_REF,
	 .doc = "bearer token for the API when listening beyond loopback"},
	{.name = "commit_status", .type = TP_TYPE_OBJECT, .fields = status_fields,
	 .doc = "post each sync's result as a GitHub commit status"},
	{.name = "history", .type = TP_TYPE_OBJECT, .fields = history_fields, .def = "{}",
	 .doc = "how much history the state database keeps (pruned after each sync)"},
	{0},
};

/* A field nothing scalar matches: see value_position. */
static const tp_field no_fields[] = {{0}};

/*
 * Where the value of key ("poll_interval", "history.event_max_age": at most one dot) sits in
 * the configuration file, for a problem the schema cannot see (a duration that does not parse).
 * The schema walk places every value it refuses, so the file is walked again with that field
 * declared an object, which no scalar is, and the walk's complaint carries the line and column.
 * Both stay 0 when the value is not found.
 */
static void value_position(int *line, int *col, const char *path, const char *key)
{
	const size_t n = sizeof(config_fields) / sizeof(config_fields[0]);
	tp_field top[sizeof(config_fields) / sizeof(config_fields[0])];
	tp_field *inner = NULL, *f = NULL;
	const char *dot = strchr(key, '.');
	size_t plen = dot ? (size_t)(dot - key) : strlen(key);
	tp_diags d = {0};
	json_t *doc = NULL;

	*line = *col = 0;
	memcpy(top, config_fields, sizeof(top));
	for (size_t i = 0; i + 1 < n && !f; i++)
		if (strlen(top[i].name) == plen && strncmp(top[i].name, key, plen) == 0)
			f = &top[i];
	if (f && dot && f->type == TP_TYPE_OBJECT) {
		size_t m = 0;
		while (f->fields[m].name)
			m++;
		inner = tp_calloc(m + 1, sizeof(*inner));
		memcpy(inner, f->fields, m * sizeof(*inner));
		f->fields = inner;
		f = NULL;
		for (size_t i = 0; i < m && !f; i++)
			if (strcmp(inner[i].name, dot + 1) == 0)
				f = &inner[i];
	} else if (dot) {
		f = NULL;
	}
	if (!f)
		goto done;
	f->type = TP_TYPE_OBJECT;
	f->fields = no_fields;
	f->flags = 0;
	f->def = NULL;
	if (tp_spec_load_file(&doc, path, top, true, &d) < 0)
		for (size_t i = 0; i < d.len; i++)
			if (strncmp(d.items[i].msg, key, strlen(key)) == 0 &&
			    d.items[i].msg[strlen(key)] == ':') {
				*line = d.items[i].line;
				*col = d.items[i].col;
				break;
			}
	tp_error_clear();
done:
	json_decref(doc);
	tp_diags_free(&d);
	free(inner);
}

/* A problem with the value of key, placed at file:line:col (see value_position). */
static void config_diag(tp_diags *d, const char *path, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void config_diag(tp_diags *d, const char *path, const char *key, const char *fmt, ...)
{
	char msg[1024];
	int line, col;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	value_position(&line, &col, path, key);
	tp_diags_add(d, path, line, col, "%s: %s", key, msg);
}

static char *dup_str(const json_t *o, const char *key)
{
	const char *v = tp_json_get_str(o, key);
	return v ? tp_strdup(v) : NULL;
}

/* An http(s) URL with a user part ("https://user:pass@host/..." or "https://TOKEN@host/...")
 * or any URL with a password. ssh://git@host/... and git@host:path are fine. */
static bool url_has_credentials(const char *url)
{
	const char *scheme = url ? strstr(url, "://") : NULL;
	const char *host, *end, *at, *colon;
	if (!scheme)
		return false;
	host = scheme + 3;
	end = host + strcspn(host, "/?#");
	at = memchr(host, '@', (size_t)(end - host));
	if (!at)
		return false;
	if (!strncmp(url, "http://", 7) || !strncmp(url, "https://", 8))
		return true;
	colon = memchr(host, ':', (size_t)(at - host));
	return colon != NULL;
}

static int resolve_field(char **out, const json_t *o, const char *key, const char *what)
{
	const char *v = tp_json_get_str(o, key);
	int rc;
	*out = NULL;
	if (!v)
		return 0;
	rc = tp_secret_substitute(out, v);
	if (rc < 0) {
		char *m = tp_strdup(tp_error_last());
		rc = tp_error_set(rc, "%s: %s", what, m);
		free(m);
	}
	return rc;
}

/* The history: section (absent keys keep their defaults). */
static int history_load(tp_state_retention *out, const json_t *h, const char *path, tp_diags *diags)
{
	const char *age = tp_json_get_str(h, "event_max_age");
	int rc = 0;

	*out = (tp_state_retention)TP_STATE_RETENTION_DEFAULT;
	if (json_is_integer(json_object_get(h, "runs")))
		out->runs = json_integer_value(json_object_get(h, "runs"));
	if (json_is_integer(json_object_get(h, "revisions")))
		out->revisions = json_integer_value(json_object_get(h, "revisions"));
	if (json_is_integer(json_object_get(h, "events")))
		out->events = json_integer_value(json_object_get(h, "events"));
	if (age && (rc = tp_duration_parse(&out->event_age_ms, age)) < 0)
		config_diag(diags, path, "history.event_max_age", "%s", tp_error_last());
	return rc;
}

void tp_controller_config_clear(tp_controller_config *c)
{
	if (!c)
		return;
	free(c->repo_url);
	free(c->branch);
	free(c->path);
	tp_secret_free(c->token);
	free(c->ssh_key);
	free(c->state_dir);
	free(c->listen);
	tp_secret_free(c->github_secret);
	tp_secret_free(c->gitlab_token);
	tp_secret_free(c->generic_secret);
	tp_secret_free(c->api_token);
	free(c->status_repo);
	tp_secret_free(c->status_token);
	free(c->status_api_url);
	free(c->status_context);
	free(c->status_target_url);
	memset(c, 0, sizeof(*c));
}

int tp_controller_config_load(tp_controller_config *c, const char *path, tp_diags *diags)
{
	json_t *doc = NULL, *repo, *hooks;
	int rc = 0;

	memset(c, 0, sizeof(*c));
	c->branch = tp_strdup("main");
	c->path = tp_strdup("");
	c->state_dir = tp_strdup("/var/lib/tapestry");
	c->listen = tp_strdup("127.0.0.1:7777");
	c->poll_ms = 60000;
	c->history = (tp_state_retention)TP_STATE_RETENTION_DEFAULT;
	if (!path)
		return 0;
	if ((rc = tp_spec_load_file(&doc, path, config_fields, true, diags)) < 0)
		goto done;
	repo = json_object_get(doc, "repository");
	hooks = json_object_get(doc, "webhooks");
	free(c->branch);
	free(c->path);
	free(c->state_dir);
	free(c->listen);
	c->repo_url = dup_str(repo, "url");
	c->branch = dup_str(repo, "branch");
	c->path = dup_str(repo, "path");
	c->ssh_key = dup_str(repo, "ssh_key");
	c->state_dir = dup_str(doc, "state_dir");
	c->listen = dup_str(doc, "listen");
	c->plan_only = json_is_true(json_object_get(doc, "plan_only"));
	c->suspend = json_is_true(json_object_get(doc, "suspend"));
	c->allow_mass_delete = json_is_true(json_object_get(doc, "allow_mass_delete"));
	if (url_has_credentials(c->repo_url)) {
		/* libgit2 would keep them in the mirror's config, and they would show in logs */
		config_diag(diags, path, "repository.url",
			    "credentials in the URL are refused (they would be stored in the "
			    "mirror's config in plain text); put the token in repository.token, "
			    "e.g. token: ${secret:env:GIT_TOKEN}");
		rc = TP_EINVALID;
		goto done;
	}
	if ((rc = tp_duration_parse(&c->poll_ms, tp_json_get_str(doc, "poll_interval"))) < 0) {
		config_diag(diags, path, "poll_interval", "%s", tp_error_last());
		goto done;
	}
	if (tp_json_get_str(doc, "drift_interval") &&
	    (rc = tp_duration_parse(&c->drift_ms, tp_json_get_str(doc, "drift_interval"))) < 0) {
		config_diag(diags, path, "drift_interval", "%s", tp_error_last());
		goto done;
	}
	if ((rc = history_load(&c->history, json_object_get(doc, "history"), path, diags)) < 0)
		goto done;
	if ((rc = resolve_field(&c->token, repo, "token", "repository.token")) < 0 ||
	    (rc = resolve_field(&c->github_secret, hooks, "github_secret", "webhooks")) < 0 ||
	    (rc = resolve_field(&c->gitlab_token, hooks, "gitlab_token", "webhooks")) < 0 ||
	    (rc = resolve_field(&c->generic_secret, hooks, "generic_secret", "webhooks")) < 0 ||
	    (rc = resolve_field(&c->api_token, doc, "api_token", "api_token")) < 0) {
		tp_diags_add(diags, path, 0, 0, "%s", tp_error_last());
		goto done;
	}
	if (json_object_get(doc, "commit_status")) {
		json_t *cs = json_object_get(doc, "commit_status");
		if ((rc = resolve_field(&c->status_token, cs, "token", "commit_status.token")) < 0) {
			tp_diags_add(diags, path, 0, 0, "%s", tp_error_last());
			goto done;
		}
		c->status_api_url = dup_str(cs, "api_url");
		c->status_context = dup_str(cs, "context");
		c->status_target_url = dup_str(cs, "target_url");
		c->status_repo = dup_str(cs, "repository");
		if (!c->status_repo) {
			char owner_name[256];
			if (tp_github_repo_from_url(owner_name, sizeof(owner_name), c->repo_url) < 0) {
				tp_diags_add(diags, path, 0, 0,
					     "commit_status.repository: cannot derive owner/name from "
					     "%s; set it", c->repo_url);
				rc = TP_EINVALID;
				goto done;
			}
			c->status_repo = tp_strdup(owner_name);
		}
	}
done:
	json_decref(doc);
	return rc;
}

/* ---------------------------------------------------------------- status for the API */

static void set_str(char **dst, const char *v)
{
	free(*dst);
	*dst = v ? tp_strdup(v) : NULL;
}

/* The repository URL without any credentials, for status pages and logs. */
static char *safe_url(const char *url)
{
	const char *scheme = strstr(url, "://");
	const char *at, *host;
	if (!scheme)
		return tp_strdup(url);
	host = scheme + 3;
	at = strchr(host, '@');
	if (!at || (strchr(host, '/') && strchr(host, '/') < at))
		return tp_strdup(url);
	return tp_sprintf("%.*s%s", (int)(host - url), url, at + 1);
}

static json_t *status_json(ctl *c)
{
	json_t *o;
	char *url = safe_url(c->cfg->repo_url);
	char when[40] = "", applied_at[40] = "";
	pthread_mutex_lock(&c->mu);
	if (c->last_sync_ms)
		tp_clock_format_rfc3339(when, sizeof(when), c->last_sync_ms);
	if (c->last_applied_ms)
		tp_clock_format_rfc3339(applied_at, sizeof(applied_at), c->last_applied_ms);
	o = json_pack("{s:s,s:{s:s,s:s,s:s},s:{s:s?,s:s?,s:s?,s:s?,s:s?},s:b,s:s,"
		      "s:{s:s?,s:s?,s:s?},s:I,s:I}",
		      "pipeline", c->pipeline,
		      "repository", "url", url, "branch", c->cfg->branch, "path", c->cfg->path,
		      "revision", "fetched", c->fetched[0] ? c->fetched : NULL, "applied",
		      c->applied[0] ? c->applied : NULL, "message", c->applied_message, "author",
		      c->applied_author, "applied_at", applied_at[0] ? applied_at : NULL,
		      "ready", c->ready,
		      "mode", c->cfg->suspend ? "suspended" : c->cfg->plan_only ? "plan-only" : "normal",
		      "last_sync", "at", when[0] ? when : NULL, "result", c->last_result, "error",
		      c->last_error,
		      "drifted", (json_int_t)c->drifted, "syncs", (json_int_t)c->syncs);
	{
		char started[40];
		tp_clock_format_rfc3339(started, sizeof(started), c->started_ms);
		json_object_set_new(o, "version", json_string(TAPESTRY_VERSION));
		json_object_set_new(o, "started_at", json_string(started));
		json_object_set_new(o, "poll_interval_ms", json_integer(c->cfg->poll_ms));
		json_object_set_new(o, "drift_interval_ms",
				    json_integer(c->cfg->drift_ms > 0 ? c->cfg->drift_ms : 600000));
		if (c->fetched_message)
			json_object_set_new(json_object_get(o, "revision"), "fetched_message",
					    json_string(c->fetched_message));
		if (c->fetched_author)
			json_object_set_new(json_object_get(o, "revision"), "fetched_author",
					    json_string(c->fetched_author));
	}
	if (c->problems.len) {
		json_t *a = json_array();
		for (size_t i = 0; i < c->problems.len; i++)
			json_array_append_new(a, json_string(c->problems.items[i]));
		json_object_set_new(json_object_get(o, "last_sync"), "problems", a);
	}
	pthread_mutex_unlock(&c->mu);
	free(url);
	return o;
}

static int query_int(const char *query, const char *key, int def)
{
	const char *p = query ? strstr(query, key) : NULL;
	if (!p || (p != query && p[-1] != '&') || p[strlen(key)] != '=')
		return def;
	return atoi(p + strlen(key) + 1);
}

/* Value of key in a query string into out, percent-decoded. */
static bool query_str(const char *query, const char *key, char *out, size_t n)
{
	const char *p = query ? strstr(query, key) : NULL;
	size_t len, j = 0;
	if (!p || (p != query && p[-1] != '&') || p[strlen(key)] != '=')
		return false;
	p += strlen(key) + 1;
	len = strcspn(p, "&");
	for (size_t i = 0; i < len && j + 1 < n; i++) {
		if (p[i] == '%' && i + 2 < len && isxdigit((unsigned char)p[i + 1]) &&
		    isxdigit((unsigned char)p[i + 2])) {
			char hex[3] = {p[i + 1], p[i + 2], 0};
			char ch = (char)strtol(hex, NULL, 16);
			out[j++] = ch ? ch : '?';
			i += 2;
		} else {
			out[j++] = p[i] == '+' ? ' ' : p[i];
		}
	}
	out[j] = '\0';
	return j > 0;
}

static void respond_json(tp_http_response *resp, int status, json_t *v)
{
	char *text = json_dumps(v, JSON_INDENT(2) | JSON_SORT_KEYS);
	resp->status = status;
	resp->content_type = "application/json";
	tp_buf_puts(&resp->body, text ? text : "null");
	tp_buf_putc(&resp->body, '\n');
	free(text);
	json_decref(v);
}

/* The drift the last plan found, by address: {address: [{path, applied, live, sensitive}]} */
static json_t *drift_by_address(ctl *c)
{
	json_t *out = json_object(), *list;
	size_t i;
	json_t *e;
	pthread_mutex_lock(&c->mu);
	list = c->last_plan ? tp_json_path_get(c->last_plan, "plan.resource_changes") : NULL;
	json_array_foreach(list, i, e) {
		json_t *d = json_object_get(e, "drift");
		const char *a = tp_json_get_str(e, "address");
		if (a && json_array_size(d))
			json_object_set_new(out, a, json_deep_copy(d));
	}
	pthread_mutex_unlock(&c->mu);
	return out;
}

static json_t *resources_json(ctl *c, tp_state *st)
{
	tp_state_resources l = {0};
	json_t *a = json_array();
	json_t *drift = drift_by_address(c);
	if (tp_state_resources_list(&l, st) < 0) {
		json_decref(drift);
		return a;
	}
	for (size_t i = 0; i < l.len; i++) {
		const tp_state_resource *r = &l.items[i];
		const tp_kind *k = tp_registry_kind(r->kind);
		json_t *o = json_pack("{s:s,s:s,s:s,s:s?,s:s?,s:s?,s:O?,s:b,s:I,s:I}", "address",
				      r->address, "kind", r->kind, "name", r->name, "provider_id",
				      r->provider_id, "status", r->status, "phase",
				      k ? tp_phase_name(k->phase) : NULL, "outputs", r->outputs,
				      "observed", r->observed != NULL, "updated_ms",
				      (json_int_t)r->updated_ms, "observed_ms",
				      (json_int_t)r->observed_ms);
		/* outputs are ids and names, never secrets; applied specs and observed values
		 * stay out of the API (they can be large, and observed values are fingerprints) */
		json_object_set_new(o, "deps", r->deps ? json_incref(r->deps) : json_array());
		if (r->lifecycle)
			json_object_set(o, "lifecycle", r->lifecycle);
		json_object_set_new(o, "revision", r->revision ? json_string(r->revision)
							       : json_null());
		json_object_set_new(o, "drift", json_object_get(drift, r->address)
							? json_incref(json_object_get(drift, r->address))
							: json_array());
		json_array_append_new(a, o);
	}
	json_decref(drift);
	tp_state_resources_free(&l);
	return a;
}

static void update_resource_gauges(ctl *c, tp_state *st)
{
	tp_state_resources l = {0};
	json_t *counts = json_object();
	const char *k;
	json_t *v;
	if (tp_state_resources_list(&l, st) < 0) {
		json_decref(counts);
		return;
	}
	for (size_t i = 0; i < l.len; i++) {
		char lbl[256];
		snprintf(lbl, sizeof(lbl), "kind=\"%s\",status=\"%s\"", l.items[i].kind,
			 l.items[i].status ? l.items[i].status : "unknown");
		json_object_set_new(counts, lbl,
				    json_integer(json_integer_value(json_object_get(counts, lbl)) +
						 1));
	}
	json_object_foreach(counts, k, v)
		tp_metrics_set(c->m, "tapestry_resources", k, (double)json_integer_value(v));
	json_decref(counts);
	tp_state_resources_free(&l);
}

/* Whether a comma-separated list holds item. */
static bool list_has(const char *list, const char *item)
{
	size_t n = strlen(item);
	for (const char *p = list; p && *p;) {
		size_t len = strcspn(p, ",");
		if (len == n && strncmp(p, item, n) == 0)
			return true;
		p += len;
		if (*p == ',')
			p++;
	}
	return false;
}

#define RATE_WINDOW_MS ((int64_t)5 * 60 * 1000)

/* Records a provider's call totals now and returns its failed/total ratio over the last five
 * minutes: since the newest sample at least that old (the oldest kept), or since start. */
static double recent_error_rate(ctl *c, const char *provider, double total, double failed)
{
	int64_t now = tp_clock_mono_ms();
	json_t *w, *base;
	double rate, dt, df;
	pthread_mutex_lock(&c->mu);
	if (!c->api_window)
		c->api_window = json_object();
	if (!(w = json_object_get(c->api_window, provider))) {
		w = json_array();
		json_object_set_new(c->api_window, provider, w);
	}
	json_array_append_new(w, json_pack("[I,f,f]", (json_int_t)now, total, failed));
	/* keep one sample at or beyond the window's start as the base */
	while (json_array_size(w) > 1 &&
	       now - json_integer_value(json_array_get(json_array_get(w, 1), 0)) >= RATE_WINDOW_MS)
		json_array_remove(w, 0);
	while (json_array_size(w) > 512) /* polled very often: thin out, bounded */
		json_array_remove(w, 1);
	base = json_array_get(w, 0);
	dt = total - json_real_value(json_array_get(base, 1));
	df = failed - json_real_value(json_array_get(base, 2));
	if (json_array_size(w) == 1 || now - json_integer_value(json_array_get(base, 0)) <
					       RATE_WINDOW_MS) {
		/* younger than the window: everything since start counts */
		dt = total;
		df = failed;
	}
	rate = dt > 0 ? df / dt : 0.0;
	pthread_mutex_unlock(&c->mu);
	return rate;
}

/* Per-provider API health from the metrics: calls by outcome, retries, error rates (since
 * start and over the last five minutes). */
static json_t *providers_json(ctl *c)
{
	static const char *const codes[] = {"ok", "throttled", "transient", "error"};
	const tp_provider *const *provs = tp_registry_providers();
	json_t *out = json_array();
	for (size_t i = 0; provs[i]; i++) {
		json_t *req = json_object();
		double total = 0, failed = 0, retries;
		char lbl[160];
		for (size_t k = 0; k < 4; k++) {
			double v;
			snprintf(lbl, sizeof(lbl), "provider=\"%s\",code=\"%s\"", provs[i]->name,
				 codes[k]);
			v = tp_metrics_get(c->m, "tapestry_api_requests_total", lbl);
			json_object_set_new(req, codes[k], json_integer((json_int_t)v));
			total += v;
			if (k)
				failed += v;
		}
		snprintf(lbl, sizeof(lbl), "provider=\"%s\"", provs[i]->name);
		retries = tp_metrics_get(c->m, "tapestry_retries_total", lbl);
		json_array_append_new(out, json_pack("{s:s,s:o,s:I,s:f,s:f}", "provider",
						     provs[i]->name, "requests", req, "retries",
						     (json_int_t)retries, "error_rate",
						     total > 0 ? failed / total : 0.0, "error_rate_5m",
						     recent_error_rate(c, provs[i]->name, total,
								       failed)));
	}
	return out;
}

static void on_get(void *ctx, const char *path, const char *query, tp_http_response *resp)
{
	ctl *c = ctx;
	tp_state *st = NULL;

	if (tp_dashboard_serve(path, resp))
		return;
	if (strcmp(path, "/api/plan") == 0) {
		json_t *v;
		pthread_mutex_lock(&c->mu);
		v = c->last_plan ? json_deep_copy(c->last_plan) : NULL;
		pthread_mutex_unlock(&c->mu);
		if (v)
			respond_json(resp, 200, v);
		else
			respond_json(resp, 404, json_pack("{s:s}", "error", "no plan built yet"));
		return;
	}
	if (strcmp(path, "/healthz") == 0) {
		resp->status = 200;
		resp->content_type = "text/plain";
		tp_buf_puts(&resp->body, "ok\n");
		return;
	}
	if (strcmp(path, "/readyz") == 0) {
		bool ready;
		pthread_mutex_lock(&c->mu);
		ready = c->ready;
		pthread_mutex_unlock(&c->mu);
		resp->status = ready ? 200 : 503;
		resp->content_type = "text/plain";
		tp_buf_puts(&resp->body, ready ? "ready\n" : "not ready: no successful sync yet\n");
		return;
	}
	if (strcmp(path, "/metrics") == 0) {
		char rev[64];
		resp->status = 200;
		resp->content_type = "text/plain; version=0.0.4";
		tp_metrics_render(c->m, &resp->body);
		pthread_mutex_lock(&c->mu);
		tp_metrics_label_escape(rev, sizeof(rev), c->applied);
		pthread_mutex_unlock(&c->mu);
		tp_buf_printf(&resp->body,
			      "# HELP tapestry_info Build and revision of this controller.\n"
			      "# TYPE tapestry_info gauge\n"
			      "tapestry_info{version=\"%s\",revision=\"%s\"} 1\n", TAPESTRY_VERSION,
			      rev);
		return;
	}
	if (strcmp(path, "/api/status") == 0) {
		respond_json(resp, 200, status_json(c));
		return;
	}
	if (strncmp(path, "/api/", 5) != 0) {
		resp->status = 404;
		resp->content_type = "application/json";
		tp_buf_puts(&resp->body, "{\"error\":\"not found\"}\n");
		return;
	}
	if (strcmp(path, "/api/logs") == 0) {
		char address[256], run[64], level[16];
		int limit = query_int(query, "limit", 200);
		tp_log_level min = TP_LOG_DEBUG;
		bool by_addr = query_str(query, "address", address, sizeof(address));
		bool by_run = query_str(query, "run", run, sizeof(run));
		if (query_str(query, "level", level, sizeof(level)))
			min = strcmp(level, "error") == 0  ? TP_LOG_ERROR
			      : strcmp(level, "warn") == 0 ? TP_LOG_WARN
			      : strcmp(level, "info") == 0 ? TP_LOG_INFO
							   : TP_LOG_DEBUG;
		if (limit < 1 || limit > 2000)
			limit = 200;
		respond_json(resp, 200, tp_log_recent(by_addr ? address : NULL, by_run ? run : NULL,
						      min, limit));
		return;
	}
	if (strcmp(path, "/api/providers") == 0) {
		respond_json(resp, 200, providers_json(c));
		return;
	}
	/* the state database: one read-only handle per request (handles are per thread) */
	if (tp_state_open(&st, c->db_path, TP_STATE_READONLY) < 0) {
		respond_json(resp, 503, json_pack("{s:s}", "error", "no state yet"));
		return;
	}
	if (strcmp(path, "/api/resources") == 0) {
		respond_json(resp, 200, resources_json(c, st));
	} else if (strncmp(path, "/api/runs/", 10) == 0) {
		char *end = NULL;
		long long id = strtoll(path + 10, &end, 10);
		json_t *run = NULL;
		int rc = *end == '\0' && id > 0 ? tp_state_run_get(&run, st, id) : TP_ENOTFOUND;
		if (rc == 0)
			respond_json(resp, 200, run);
		else
			respond_json(resp, rc == TP_ENOTFOUND ? 404 : 500,
				     json_pack("{s:s}", "error", tp_error_last()));
	} else if (strcmp(path, "/api/runs") == 0) {
		json_t *runs = NULL;
		int limit = query_int(query, "limit", 50);
		if (limit < 1 || limit > 1000)
			limit = 50;
		if (tp_state_runs_list(&runs, st, limit) == 0)
			respond_json(resp, 200, runs);
		else
			respond_json(resp, 500, json_pack("{s:s}", "error", tp_error_last()));
	} else if (strcmp(path, "/api/events") == 0) {
		json_t *events = NULL;
		char address[256];
		int limit = query_int(query, "limit", 100);
		bool filter = query_str(query, "address", address, sizeof(address));
		if (limit < 1 || limit > 1000)
			limit = 100;
		char types[256];
		bool by_type = query_str(query, "type", types, sizeof(types));
		/* with a type filter, read further back so the limit applies after filtering */
		if (tp_state_events_list(&events, st, filter ? address : NULL,
					 by_type ? 1000 : limit) == 0) {
			if (by_type) {
				json_t *kept = json_array();
				size_t i;
				json_t *ev;
				json_array_foreach(events, i, ev) {
					const char *t = tp_json_get_str(ev, "type");
					if (t && list_has(types, t) &&
					    json_array_size(kept) < (size_t)limit)
						json_array_append(kept, ev);
				}
				json_decref(events);
				events = kept;
			}
			respond_json(resp, 200, events);
		}
		else
			respond_json(resp, 500, json_pack("{s:s}", "error", tp_error_last()));
	} else {
		respond_json(resp, 404, json_pack("{s:s}", "error", "not found"));
	}
	tp_state_close(st);
}

static void on_webhook(void *ctx, const tp_webhook_info *info)
{
	ctl *c = ctx;
	char want[300];
	snprintf(want, sizeof(want), "refs/heads/%s", c->cfg->branch);
	if (info->ref[0] && strcmp(info->ref, want) != 0) {
		tp_log_info("webhook %s for %s ignored: following %s", info->delivery, info->ref,
			    want);
		return;
	}
	tp_log_info("webhook %s (%s): syncing now", info->delivery, info->event);
	pthread_mutex_lock(&c->mu);
	c->wake = true;
	pthread_cond_broadcast(&c->cv);
	pthread_mutex_unlock(&c->mu);
}

/* ---------------------------------------------------------------- one sync */

/* The sync's result as a commit status on GitHub, when configured. A failure to post is
 * logged and changes nothing else. */
static void post_commit_status(ctl *c, const char *commit, const char *result,
			       const char *error)
{
	const char *state = commit && c->cfg->status_token ? tp_commit_status_state_for(result)
							   : NULL;
	char *d;
	if (!state)
		return;
	d = tp_sprintf("%s%s%s", result, error ? ": " : "", error ? error : "");
	if (tp_commit_status_post(c->cfg->status_api_url, c->cfg->status_token, c->cfg->status_repo,
				  commit, state, d, c->cfg->status_context,
				  c->cfg->status_target_url) < 0)
		tp_log_warn("commit status: %s", tp_error_last());
	free(d);
}

static void record(ctl *c, tp_state *st, const char *commit, const char *tree,
		   const char *result, const char *error)
{
	if (commit)
		tp_state_revision_record(st, commit, tree, result, error);
	pthread_mutex_lock(&c->mu);
	set_str(&c->last_result, result);
	set_str(&c->last_error, error);
	c->last_sync_ms = tp_clock_now_ms();
	pthread_mutex_unlock(&c->mu);
	if (c->m) {
		char lbl[64];
		snprintf(lbl, sizeof(lbl), "result=\"%s\"", result);
		tp_metrics_add(c->m, "tapestry_reconcile_total", lbl, 1);
	}
	post_commit_status(c, commit, result, error);
}

static bool allows_mass_delete(const char *message)
{
	return message && strstr(message, "Tapestry-Allow-Mass-Delete: yes") != NULL;
}

static void diags_to_problems(ctl *c, tp_diags *d)
{
	pthread_mutex_lock(&c->mu);
	tp_strlist_free(&c->problems);
	for (size_t i = 0; i < d->len && i < 50; i++)
		tp_strlist_push_owned(&c->problems,
				      d->items[i].line ? tp_sprintf("%s:%d:%d: %s", d->items[i].file,
								    d->items[i].line, d->items[i].col,
								    d->items[i].msg)
						       : tp_sprintf("%s: %s", d->items[i].file,
								    d->items[i].msg));
	pthread_mutex_unlock(&c->mu);
}

/* Keeps the plan just built for GET /api/plan: its JSON rendering (format 1.0, redacted)
 * plus what the dashboard needs that the format does not carry (phase and dependencies of
 * every resource in Git at that revision). */
static void stash_plan(ctl *c, const tp_plan *plan, const tp_pipeline *p, const char *commit,
		       const char *trigger)
{
	tp_buf b;
	json_t *doc = NULL, *res = json_object(), *v;
	char when[40];
	tp_buf_init(&b, 0);
	if (tp_plan_render(&b, plan, TP_RENDER_JSON, false) < 0 ||
	    tp_json_parse(&doc, tp_buf_cstr(&b), b.len) < 0) {
		tp_buf_free(&b);
		json_decref(res);
		return;
	}
	tp_buf_free(&b);
	for (size_t i = 0; i < p->nresources; i++) {
		const tp_resource *r = &p->resources[i];
		json_t *deps = json_array();
		for (size_t k = 0; k < r->ndeps; k++)
			json_array_append_new(deps, json_string(p->resources[r->deps[k]].address));
		json_object_set_new(res, r->address,
				    json_pack("{s:s,s:o,s:s}", "phase", tp_phase_name(r->kind->phase),
					      "deps", deps, "deletion",
					      r->deletion == TP_DELETION_RETAIN ? "retain" : "delete"));
	}
	tp_clock_format_rfc3339(when, sizeof(when), tp_clock_now_ms());
	v = json_pack("{s:s,s:s,s:s,s:I,s:n,s:n,s:o,s:o}", "revision", commit, "built_at", when,
		      "trigger", trigger, "built_ms", (json_int_t)tp_clock_now_ms(), "outcome",
		      "run", "resources", res, "plan", doc);
	pthread_mutex_lock(&c->mu);
	json_decref(c->last_plan);
	c->last_plan = v;
	pthread_mutex_unlock(&c->mu);
}

/* What became of the stashed plan: "applied", "partial", "failed", "planned", "refused",
 * "no-changes", "stopped"; run is the engine's run id (0: none). */
static void plan_outcome(ctl *c, const char *outcome, int64_t run)
{
	pthread_mutex_lock(&c->mu);
	if (c->last_plan) {
		json_object_set_new(c->last_plan, "outcome", json_string(outcome));
		json_object_set_new(c->last_plan, "run", run ? json_integer(run) : json_null());
	}
	pthread_mutex_unlock(&c->mu);
}

/* One event per resource that starts drifting (and one when it stops): which spec paths
 * changed outside Tapestry, never their values (they may be secrets). */
static void drift_events(ctl *c, tp_state *st, const tp_plan *plan)
{
	tp_strlist now = {0};
	for (size_t i = 0; i < plan->len; i++) {
		const tp_plan_entry *pe = &plan->entries[i];
		tp_buf b;
		if (!pe->ndrift)
			continue;
		tp_strlist_push(&now, pe->address);
		if (tp_strlist_contains(&c->drifted_now, pe->address))
			continue;
		tp_buf_init(&b, 4096);
		tp_buf_printf(&b, "changed outside Tapestry:");
		for (size_t k = 0; k < pe->ndrift; k++)
			tp_buf_printf(&b, "%s %s", k ? "," : "",
				      pe->drift[k].path && pe->drift[k].path[0] ? pe->drift[k].path
										: "(the object)");
		tp_buf_printf(&b, "%s", pe->drift_corrected ? " (self_heal corrects it)" : "");
		tp_state_event_add(st, 0, pe->address, "warn", "drifted", tp_buf_cstr(&b));
		tp_buf_free(&b);
	}
	for (size_t i = 0; i < c->drifted_now.len; i++)
		if (!tp_strlist_contains(&now, c->drifted_now.items[i]))
			tp_state_event_add(st, 0, c->drifted_now.items[i], "info", "in-sync",
					   "no longer drifted");
	tp_strlist_free(&c->drifted_now);
	c->drifted_now = now;
}

/* After every sync: the state database keeps only the history the configuration asks for
 * (one short transaction of indexed deletes). A failure is logged; the next sync tries again. */
static void prune_history(ctl *c, tp_state *st)
{
	tp_state_pruned n;
	if (tp_state_prune(&n, st, &c->cfg->history) < 0) {
		tp_log_warn("state: cannot prune the history: %s", tp_error_last());
		return;
	}
	if (n.runs || n.journal || n.events || n.revisions)
		tp_log_debug("state: pruned %lld runs, %lld journal rows, %lld events and %lld "
			     "revisions",
			     (long long)n.runs, (long long)n.journal, (long long)n.events,
			     (long long)n.revisions);
}

static int sync_once(ctl *c, tp_source *src, tp_state *st, const char *trigger, bool force)
{
	char commit[41];
	tp_commit_info info = {0};
	tp_tree *tree = NULL;
	tp_pipeline *p = NULL;
	tp_diags diags = {0};
	tp_state_resources recorded = {0};
	tp_plan *plan = NULL;
	tp_plan_options popts = {0};
	tp_engine_opts eo = {0};
	tp_engine_summary sum;
	tp_strlist unreadable = {0};
	json_t *hashes = NULL;
	int64_t t0 = tp_clock_mono_ms();
	int rc;
	bool stopped = false;

	if ((rc = tp_source_fetch(src)) < 0) {
		record(c, st, NULL, NULL, "fetch-failed", tp_error_last());
		tp_log_error("fetch failed: %s", tp_error_last());
		goto done;
	}
	if ((rc = tp_source_resolve(commit, src, c->cfg->branch)) < 0 ||
	    (rc = tp_source_commit_info(&info, src, commit)) < 0) {
		record(c, st, NULL, NULL, "fetch-failed", tp_error_last());
		goto done;
	}
	pthread_mutex_lock(&c->mu);
	snprintf(c->fetched, sizeof(c->fetched), "%s", commit);
	set_str(&c->fetched_message, info.message);
	set_str(&c->fetched_author, info.author);
	/* a commit that does not touch the pipeline path changes nothing */
	if (!force && c->applied_tree[0] && strcmp(info.tree, c->applied_tree) == 0) {
		bool new_commit = strcmp(commit, c->applied) != 0;
		pthread_mutex_unlock(&c->mu);
		if (new_commit) {
			tp_state_revision_record(st, commit, info.tree, "skipped",
						 "the pipeline path did not change");
			tp_log_info("%.12s does not touch %s: nothing to do", commit,
				    c->cfg->path[0] ? c->cfg->path : "the pipeline");
		}
		rc = 0;
		goto done;
	}
	pthread_mutex_unlock(&c->mu);

	if (!info.tree[0]) {
		rc = tp_error_set(TP_ENOTFOUND, "%s does not exist at %.12s", c->cfg->path, commit);
		record(c, st, commit, "", "invalid", tp_error_last());
		goto done;
	}
	if ((rc = tp_source_tree(&tree, src, commit)) < 0) {
		record(c, st, commit, info.tree, "invalid", tp_error_last());
		goto done;
	}
	rc = tp_pipeline_load(&p, tree, &diags);
	if (rc < 0) {
		char *m;
		diags_to_problems(c, &diags);
		m = tp_sprintf("%zu error%s in the pipeline at %.12s (first: %s); the last good "
			       "revision stays in force", diags.len, diags.len == 1 ? "" : "s",
			       commit, c->problems.len ? c->problems.items[0] : tp_error_last());
		record(c, st, commit, info.tree, "invalid", m);
		tp_state_event_add(st, 0, NULL, "error", "invalid-revision", m);
		tp_log_error("%s", m);
		free(m);
		goto done;
	}
	pthread_mutex_lock(&c->mu);
	snprintf(c->pipeline, sizeof(c->pipeline), "%s", p->name);
	tp_strlist_free(&c->problems);
	pthread_mutex_unlock(&c->mu);

	eo.pipeline = p;
	eo.tree = tree;
	eo.state = st;
	eo.revision = commit;
	eo.trigger = trigger;
	eo.metrics = c->m;
	eo.stop = c->stop;
	if ((rc = tp_engine_recover(&eo)) < 0 ||
	    (rc = tp_state_resources_list(&recorded, st)) < 0 ||
	    (rc = tp_engine_refresh(&eo, &recorded, true, NULL)) < 0 ||
	    (rc = tp_engine_secret_hashes(&hashes, &eo, &recorded, &unreadable)) < 0) {
		record(c, st, commit, info.tree, "failed", tp_error_last());
		goto done;
	}
	if (unreadable.len) {
		rc = tp_error_set(TP_EINVALID, "%s", unreadable.items[0]);
		record(c, st, commit, info.tree, "failed", tp_error_last());
		tp_state_event_add(st, 0, NULL, "error", "secret", tp_error_last());
		goto done;
	}
	popts.self_heal = p->settings.self_heal;
	popts.max_prune_percent = p->settings.max_prune_percent;
	popts.allow_mass_delete = c->cfg->allow_mass_delete || allows_mass_delete(info.message);
	popts.secret_hashes = hashes;
	if ((rc = tp_plan_build(&plan, p, &recorded, &popts)) < 0) {
		record(c, st, commit, info.tree, "failed", tp_error_last());
		goto done;
	}
	pthread_mutex_lock(&c->mu);
	c->drifted = plan->drifted;
	pthread_mutex_unlock(&c->mu);
	drift_events(c, st, plan);
	stash_plan(c, plan, p, commit, trigger);
	if (c->m)
		tp_metrics_set(c->m, "tapestry_drifted_resources", "", (double)plan->drifted);
	if (plan->errors.len) {
		char *m = tp_strdup(plan->errors.items[0]);
		record(c, st, commit, info.tree, "refused", m);
		plan_outcome(c, "refused", 0);
		tp_state_event_add(st, 0, NULL, "error", "plan-refused", m);
		tp_log_error("%.12s refused: %s", commit, m);
		free(m);
		rc = TP_EINVALID;
		goto done;
	}
	if (tp_plan_has_changes(plan) && (c->cfg->suspend || c->cfg->plan_only)) {
		char *m = tp_sprintf("%s: %zu to add, %zu to change, %zu to destroy (not applied)",
				     c->cfg->suspend ? "suspended" : "plan-only", plan->add,
				     plan->change, plan->destroy);
		record(c, st, commit, info.tree, "planned", m);
		plan_outcome(c, "planned", 0);
		tp_state_event_add(st, 0, NULL, "info", "planned", m);
		free(m);
	} else if (tp_plan_has_changes(plan)) {
		rc = tp_engine_apply(&sum, &eo, plan);
		/* stopped by SIGTERM part-way: not applied (the restart finishes the commit) */
		stopped = strcmp(sum.result, "stopped") == 0;
		record(c, st, commit, info.tree,
		       stopped ? "stopped" : rc == 0 ? "applied" : sum.result,
		       rc == 0 ? NULL : tp_error_last());
		plan_outcome(c, rc == 0 && !stopped ? "applied" : sum.result, sum.run_id);
		if (sum.run_id) {
			json_t *pj = NULL;
			pthread_mutex_lock(&c->mu);
			if (c->last_plan)
				pj = json_incref(json_object_get(c->last_plan, "plan"));
			pthread_mutex_unlock(&c->mu);
			if (pj && tp_state_run_set_plan(st, sum.run_id, pj) < 0)
				tp_log_warn("run %lld: cannot store its plan: %s",
					    (long long)sum.run_id, tp_error_last());
			json_decref(pj);
		}
		tp_log_info("%.12s: %s (%zu created, %zu updated, %zu replaced, %zu deleted, %zu "
			    "failed)", commit, sum.result, sum.created, sum.updated, sum.replaced,
			    sum.deleted, sum.failed);
	} else {
		record(c, st, commit, info.tree, "applied", NULL);
		plan_outcome(c, "no-changes", 0);
	}
	if (rc == 0 && !stopped) {
		pthread_mutex_lock(&c->mu);
		c->ready = true;
		snprintf(c->applied, sizeof(c->applied), "%s", commit);
		snprintf(c->applied_tree, sizeof(c->applied_tree), "%s", info.tree);
		set_str(&c->applied_message, info.message);
		set_str(&c->applied_author, info.author);
		c->last_applied_ms = tp_clock_now_ms();
		pthread_mutex_unlock(&c->mu);
		if (c->m)
			tp_metrics_set(c->m, "tapestry_last_applied_timestamp_seconds", "",
				       (double)tp_clock_now_ms() / 1000.0);
	}
done:
	if (c->m) {
		tp_metrics_observe(c->m, "tapestry_reconcile_duration_seconds", "",
				   (double)(tp_clock_mono_ms() - t0) / 1000.0);
		update_resource_gauges(c, st);
		json_decref(providers_json(c)); /* a sample for the five-minute error rates */
	}
	prune_history(c, st);
	pthread_mutex_lock(&c->mu);
	c->syncs++;
	pthread_mutex_unlock(&c->mu);
	json_decref(hashes);
	tp_strlist_free(&unreadable);
	tp_plan_free(plan);
	tp_state_resources_free(&recorded);
	tp_pipeline_free(p);
	tp_diags_free(&diags);
	tp_tree_free(tree);
	tp_commit_info_clear(&info);
	/* a sync of a large pipeline frees far more than the idle loop keeps (the pipeline, the
	 * recorded state, the plan, the tree just freed): give it back */
	malloc_trim(0);
	return rc;
}

/* ---------------------------------------------------------------- the loop */

static bool is_loopback(const char *listen)
{
	return strncmp(listen, "127.", 4) == 0 || strncmp(listen, "[::1]", 5) == 0 ||
	       strncmp(listen, "localhost:", 10) == 0;
}

static void describe_metrics(tp_metrics *m)
{
	tp_metrics_describe(m, "tapestry_reconcile_duration_seconds", TP_METRIC_HISTOGRAM,
			    "Duration of one sync (fetch, plan, apply).", duration_buckets,
			    sizeof(duration_buckets) / sizeof(*duration_buckets));
	tp_metrics_describe(m, "tapestry_reconcile_total", TP_METRIC_COUNTER,
			    "Syncs by result.", NULL, 0);
	tp_metrics_describe(m, "tapestry_resources", TP_METRIC_GAUGE,
			    "Managed resources by kind and status.", NULL, 0);
	tp_metrics_describe(m, "tapestry_drifted_resources", TP_METRIC_GAUGE,
			    "Resources whose live state differs from what Tapestry applied.", NULL,
			    0);
	tp_metrics_describe(m, "tapestry_api_requests_total", TP_METRIC_COUNTER,
			    "Provider API calls (writes, and each batch of observations) by provider and outcome.", NULL, 0);
	tp_metrics_describe(m, "tapestry_retries_total", TP_METRIC_COUNTER,
			    "Provider calls retried after a transient error or throttling.", NULL,
			    0);
	tp_metrics_describe(m, "tapestry_apply_actions_total", TP_METRIC_COUNTER,
			    "Applied actions by action and result.", NULL, 0);
	tp_metrics_describe(m, "tapestry_last_applied_timestamp_seconds", TP_METRIC_GAUGE,
			    "When the last revision was applied (Unix time).", NULL, 0);
	tp_metrics_set(m, "tapestry_drifted_resources", "", 0);
}

static void reload_config(ctl *c)
{
	tp_controller_config fresh;
	tp_diags d = {0};
	if (!c->config_path) {
		tp_log_info("SIGHUP: no configuration file to reload");
		return;
	}
	if (tp_controller_config_load(&fresh, c->config_path, &d) < 0) {
		tp_log_error("SIGHUP: %s is not valid; keeping the running configuration (%s)",
			     c->config_path, d.len ? d.items[0].msg : tp_error_last());
		tp_diags_free(&d);
		return;
	}
	pthread_mutex_lock(&c->mu);
	c->cfg->poll_ms = fresh.poll_ms;
	c->cfg->drift_ms = fresh.drift_ms;
	c->cfg->plan_only = fresh.plan_only;
	c->cfg->suspend = fresh.suspend;
	c->cfg->allow_mass_delete = fresh.allow_mass_delete;
	c->cfg->history = fresh.history;
	pthread_mutex_unlock(&c->mu);
	if (strcmp(fresh.repo_url ? fresh.repo_url : "", c->cfg->repo_url) != 0 ||
	    strcmp(fresh.listen, c->cfg->listen) != 0 || strcmp(fresh.state_dir, c->cfg->state_dir))
		tp_log_warn("SIGHUP: repository, listen and state_dir changes need a restart");
	tp_log_info("SIGHUP: configuration reloaded (poll %lld ms, %s)", (long long)fresh.poll_ms,
		    fresh.suspend ? "suspended" : fresh.plan_only ? "plan-only" : "applying");
	tp_controller_config_clear(&fresh);
	tp_diags_free(&d);
}

static int64_t jittered(int64_t ms)
{
	/* ±10%, so a fleet of controllers does not fetch in lockstep */
	int64_t spread = ms / 5;
	return ms - ms / 10 + (spread > 0 ? (int64_t)tp_clock_rand_below((uint64_t)spread) : 0);
}

int tp_controller_run(tp_controller_config *cfg, const char *config_path, volatile int *stop,
		      volatile int *reload)
{
	ctl c;
	tp_source_opts so = {0};
	tp_source *src = NULL;
	tp_state *st = NULL;
	tp_http *http = NULL;
	tp_http_opts ho = {0};
	char *mirror = NULL, *owner = NULL;
	int64_t next_poll, next_drift, drift_ms;
	tp_watchdog *wd = NULL;
	bool locked = false, ready_sent = false;
	int rc;

	memset(&c, 0, sizeof(c));
	c.cfg = cfg;
	c.config_path = config_path;
	c.stop = stop;
	pthread_mutex_init(&c.mu, NULL);
	pthread_cond_init(&c.cv, NULL);
	c.m = tp_metrics_new();
	describe_metrics(c.m);
	c.started_ms = tp_clock_now_ms();
	tp_log_keep(2000);

	if (!cfg->repo_url) {
		rc = tp_error_set(TP_EINVALID, "no repository: set repository.url in the "
					       "configuration or pass --repo");
		goto done;
	}
	if (!is_loopback(cfg->listen) && !cfg->api_token) {
		rc = tp_error_set(TP_EINVALID, "listening on %s (beyond loopback) needs api_token "
					       "in the configuration", cfg->listen);
		goto done;
	}
	c.db_path = tp_sprintf("%s/state.db", cfg->state_dir);
	mirror = tp_sprintf("%s/mirror.git", cfg->state_dir);
	if ((rc = tp_state_open(&st, c.db_path, TP_STATE_READWRITE)) < 0)
		goto done;
	{
		/* what was applied before a restart, until this run applies something itself */
		char *rev = NULL;
		if (tp_state_revision_last_applied(&rev, st) == 0)
			snprintf(c.applied, sizeof(c.applied), "%s", rev);
		free(rev);
	}
	owner = tp_lock_owner("tapestry run");
	if ((rc = tp_lock_take(st, owner, 120000)) < 0)
		goto done;
	locked = true;

	so.url = cfg->repo_url;
	so.branch = cfg->branch;
	so.path = cfg->path;
	so.mirror_dir = mirror;
	so.token = cfg->token;
	so.ssh_key = cfg->ssh_key;
	if ((rc = tp_source_open(&src, &so)) < 0)
		goto done;

	ho.bind = cfg->listen;
	ho.github_secret = cfg->github_secret;
	ho.gitlab_token = cfg->gitlab_token;
	ho.generic_secret = cfg->generic_secret;
	ho.api_token = is_loopback(cfg->listen) ? NULL : cfg->api_token;
	ho.on_webhook = on_webhook;
	ho.on_get = on_get;
	ho.ctx = &c;
	if ((rc = tp_http_start(&http, &ho)) < 0)
		goto done;
	tp_log_info("tapestry run: following %s (branch %s, path \"%s\"), HTTP on %s port %d",
		    cfg->repo_url, cfg->branch, cfg->path, cfg->listen, tp_http_port(http));
	/* systemd's watchdog is pinged while the loop makes progress; one action can run for
	 * most of an hour (a CloudFormation stack), so that is the stall bound */
	wd = tp_watchdog_start(3600000);

	next_poll = tp_clock_mono_ms();
	next_drift = INT64_MAX;
	while (!*stop) {
		int64_t now = tp_clock_mono_ms();
		bool woke, drift_due;
		tp_watchdog_beat(wd);
		if (reload && *reload) {
			*reload = 0;
			tp_notifyf("RELOADING=1\nMONOTONIC_USEC=%lld",
				   (long long)tp_clock_mono_ms() * 1000);
			reload_config(&c);
			tp_notify("READY=1");
		}
		pthread_mutex_lock(&c.mu);
		woke = c.wake;
		c.wake = false;
		pthread_mutex_unlock(&c.mu);
		drift_due = now >= next_drift;
		if (woke || now >= next_poll || drift_due) {
			const char *trigger = woke ? "webhook" : drift_due ? "drift" : "poll";
			tp_notifyf("STATUS=syncing (%s)", trigger);
			sync_once(&c, src, st, trigger, drift_due);
			tp_watchdog_beat(wd);
			{
				/* ready after the first sync whatever its result: a broken commit
				 * must not fail the service, it is reported */
				char line[160];
				pthread_mutex_lock(&c.mu);
				snprintf(line, sizeof(line), "STATUS=%.12s: %s",
					 c.fetched[0] ? c.fetched : "-",
					 c.last_result ? c.last_result : "?");
				pthread_mutex_unlock(&c.mu);
				tp_notifyf("%s%s", ready_sent ? "" : "READY=1\n", line);
				ready_sent = true;
			}
			/* renew the lease every pass; lose it and we must stop writing */
			if (tp_lock_take(st, owner, 120000) < 0) {
				rc = tp_error_set(TP_ECONFLICT, "lost the state lock: %s",
						  tp_error_last());
				goto done;
			}
			now = tp_clock_mono_ms();
			next_poll = now + jittered(cfg->poll_ms);
			drift_ms = cfg->drift_ms > 0 ? cfg->drift_ms : 600000;
			if (drift_due || next_drift == INT64_MAX)
				next_drift = now + drift_ms;
			if (cfg->max_syncs > 0 && c.syncs >= (size_t)cfg->max_syncs)
				break;
			continue;
		}
		/* sleep in short slices so signals and webhooks are noticed promptly */
		{
			struct timespec ts;
			int64_t wait = next_poll - now;
			if (next_drift - now < wait)
				wait = next_drift - now;
			if (wait > 200)
				wait = 200;
			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_nsec += (long)(wait % 1000) * 1000000L;
			ts.tv_sec += wait / 1000 + ts.tv_nsec / 1000000000L;
			ts.tv_nsec %= 1000000000L;
			pthread_mutex_lock(&c.mu);
			if (!c.wake)
				pthread_cond_timedwait(&c.cv, &c.mu, &ts);
			pthread_mutex_unlock(&c.mu);
		}
	}
	rc = 0;
	tp_notify("STOPPING=1");
	tp_log_info("tapestry run: stopping");
done:
	tp_watchdog_stop(wd);
	tp_http_stop(http);
	if (locked)
		tp_state_lock_release(st, owner);
	tp_source_free(src);
	tp_state_close(st);
	free(owner);
	free(mirror);
	free(c.db_path);
	free(c.applied_message);
	free(c.applied_author);
	free(c.fetched_message);
	free(c.fetched_author);
	tp_strlist_free(&c.drifted_now);
	json_decref(c.api_window);
	free(c.last_result);
	free(c.last_error);
	tp_strlist_free(&c.problems);
	json_decref(c.last_plan);
	tp_metrics_free(c.m);
	tp_log_keep(0);
	pthread_mutex_destroy(&c.mu);
	pthread_cond_destroy(&c.cv);
	return rc;
}
