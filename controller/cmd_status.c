/*
 * `tapestry status --state FILE [--api URL]`: what Tapestry manages and how it stands — one
 * row per resource, the controller holding the lock (if any), the last run — read from the
 * state database without modifying it (safe while the controller runs), and with --api the
 * running controller's own view (readiness, mode, revisions, last sync). --json for scripts.
 */
#include "controller.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The running controller's own view (GET <api>/api/status). */
static int fetch_live(json_t **out, const char *api)
{
	tp_http_client *c = tp_http_client_new();
	tp_http_reply r;
	tp_http_request req = {0};
	char *url = tp_sprintf("%s/api/status", api);
	const char *token = getenv("TAPESTRY_API_TOKEN");
	char *auth = token ? tp_sprintf("Authorization: Bearer %s", token) : NULL;
	const char *headers[] = {auth, NULL};
	int rc;
	*out = NULL;
	req.method = "GET";
	req.url = url;
	req.headers = auth ? headers : NULL;
	req.timeout_ms = 5000;
	rc = tp_http_client_do(c, &r, &req);
	if (rc == 0 && (rc = tp_http_status_error(&r, url, NULL)) == 0)
		rc = tp_json_parse(out, r.body.ptr, r.body.len);
	if (rc < 0) {
		char *m = tp_strdup(tp_error_last());
		rc = tp_error_set(rc, "the controller at %s does not answer: %s", api, m);
		free(m);
	}
	tp_http_reply_clear(&r);
	tp_http_client_free(c);
	if (auth) {
		explicit_bzero(auth, strlen(auth));
		free(auth);
	}
	free(url);
	return rc;
}

static void print_live(const json_t *s, const char *api)
{
	const char *err = json_string_value(tp_json_path_get(s, "last_sync.error"));
	printf("\nController at %s: %s, mode %s\n", api,
	       json_is_true(json_object_get(s, "ready")) ? "ready" : "not ready",
	       tp_json_get_str(s, "mode") ? tp_json_get_str(s, "mode") : "?");
	printf("  following %s (branch %s, path \"%s\")\n",
	       json_string_value(tp_json_path_get(s, "repository.url")),
	       json_string_value(tp_json_path_get(s, "repository.branch")),
	       json_string_value(tp_json_path_get(s, "repository.path")));
	printf("  fetched %.12s, applied %.12s\n",
	       json_string_value(tp_json_path_get(s, "revision.fetched"))
		       ? json_string_value(tp_json_path_get(s, "revision.fetched"))
		       : "-",
	       json_string_value(tp_json_path_get(s, "revision.applied"))
		       ? json_string_value(tp_json_path_get(s, "revision.applied"))
		       : "-");
	printf("  last sync: %s%s%s\n",
	       json_string_value(tp_json_path_get(s, "last_sync.result"))
		       ? json_string_value(tp_json_path_get(s, "last_sync.result"))
		       : "none yet",
	       err ? ": " : "", err ? err : "");
}

int tp_cmd_status(int argc, char **argv)
{
	const char *path = NULL, *api = NULL;
	json_t *live = NULL;
	bool as_json = false;
	tp_state *st = NULL;
	tp_state_resources l = {0};
	json_t *rows = json_array(), *doc = NULL, *runs = NULL;
	char *holder = NULL;
	int64_t expires = 0;
	int rc = 0;

	{
		tp_read_args ra = {0};
		if ((rc = tp_cli_read_args(&ra, argc, argv, TP_READ_API)) < 0)
			goto done;
		path = ra.state;
		api = ra.api;
		as_json = ra.json;
	}
	if ((rc = tp_open_state_for_reading(&st, path)) < 0 ||
	    (rc = tp_state_resources_list(&l, st)) < 0 || (rc = tp_state_runs_list(&runs, st, 1)) < 0)
		goto done;
	if (api && (rc = fetch_live(&live, api)) < 0)
		goto done;
	tp_state_lock_holder(&holder, &expires, st);
	if (expires && expires < tp_clock_now_ms()) {
		free(holder);
		holder = NULL;
	}

	if (as_json) {
		json_t *res = json_array();
		for (size_t i = 0; i < l.len; i++) {
			const tp_state_resource *r = &l.items[i];
			json_array_append_new(
				res, json_pack("{s:s,s:s,s:s,s:s?,s:s?,s:s?,s:O?,s:I,s:I}", "address",
					       r->address, "kind", r->kind, "name", r->name,
					       "provider_id", r->provider_id, "status", r->status,
					       "revision", r->revision, "outputs", r->outputs,
					       "updated_ms", (json_int_t)r->updated_ms, "observed_ms",
					       (json_int_t)r->observed_ms));
		}
		doc = json_pack("{s:o,s:s?,s:O,s:O?}", "resources", res, "locked_by", holder,
				"last_run",
				json_array_size(runs) ? json_array_get(runs, 0) : json_null(),
				"controller", live);
		tp_print_json(doc);
		goto done;
	}
	for (size_t i = 0; i < l.len; i++) {
		const tp_state_resource *r = &l.items[i];
		char *updated = tp_format_time(r->updated_ms);
		char *observed = tp_format_time(r->observed_ms);
		char rev[13] = "-";
		if (r->revision)
			snprintf(rev, sizeof(rev), "%.12s", r->revision);
		json_array_append_new(rows, json_pack("[s,s,s,s,s,s]", r->address,
						      r->status ? r->status : "-",
						      r->provider_id ? r->provider_id : "-", rev,
						      updated, observed));
		free(updated);
		free(observed);
	}
	{
		static const char *const headers[] = {"RESOURCE", "STATUS", "ID", "REVISION",
						      "UPDATED", "OBSERVED"};
		tp_table_print(stdout, headers, 6, rows);
	}
	printf("\n%zu resource%s managed.", l.len, l.len == 1 ? "" : "s");
	if (json_array_size(runs)) {
		json_t *run = json_array_get(runs, 0);
		char *when = tp_format_time(json_integer_value(json_object_get(run, "started_ms")));
		printf(" Last run #%lld (%s) at %s: %s.",
		       (long long)json_integer_value(json_object_get(run, "id")),
		       tp_json_get_str(run, "trigger") ? tp_json_get_str(run, "trigger") : "?", when,
		       tp_json_get_str(run, "result") ? tp_json_get_str(run, "result") : "running");
		free(when);
	}
	printf("\n%s%s\n", holder ? "Locked by " : "No controller holds the state lock.",
	       holder ? holder : "");
	if (live)
		print_live(live, api);
done:
	json_decref(live);
	free(holder);
	json_decref(rows);
	json_decref(doc);
	json_decref(runs);
	tp_state_resources_free(&l);
	tp_state_close(st);
	return rc;
}
