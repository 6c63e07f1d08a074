/*
 * Spec ↔ wire for the airbyte kinds: pure functions, no network. Desired specs (snake_case,
 * as the kinds' schemas in airbyte.c declare them, references and secrets resolved) become
 * the public API's request bodies (camelCase, as reference/airbyte/public-api.openapi.yaml
 * names them), and API answers become observed specs in the kinds' own shape so the generic
 * diff can compare them with what Tapestry applied.
 *
 * What Airbyte answers differently from what it was sent is settled here or in the kinds'
 * normalise hooks: masked secrets stay masked (unknown, never drift) and secrets answered in
 * clear become keyed fingerprints; streams are projected on the fields Tapestry set (the API
 * fills in source-defined keys, cursors and default sync modes); cron comes back with " UTC"
 * and schedules may be "basic"; selected fields come back as [] when selection is off.
 */
#include "airbyte_int.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

const tp_ab_actor tp_ab_source = {TP_AB_SOURCE, "source",     "/sources",
				  "sourceId",   "sourceType", "airbyte.source"};
const tp_ab_actor tp_ab_destination = {TP_AB_DESTINATION, "destination",     "/destinations",
				       "destinationId",   "destinationType", "airbyte.destination"};

/* ---------------------------------------------------------------- small helpers */

bool tp_ab_is_uuid(const char *s)
{
	static const int groups[] = {8, 4, 4, 4, 12};
	if (!s)
		return false;
	for (size_t g = 0; g < 5; g++) {
		for (int i = 0; i < groups[g]; i++, s++)
			if (!isxdigit((unsigned char)*s))
				return false;
		if (g < 4 && *s++ != '-')
			return false;
	}
	return *s == '\0';
}

bool tp_ab_id_equal(const char *a, const char *b)
{
	return a && b && strcasecmp(a, b) == 0;
}

static json_t *lower_id(const char *s)
{
	char *low;
	json_t *v;
	if (!s)
		return NULL;
	low = tp_strdup(s);
	for (char *p = low; *p; p++)
		*p = (char)tolower((unsigned char)*p);
	v = json_string(low);
	free(low);
	return v;
}

void tp_ab_json_wipe(json_t *v)
{
	const char *k;
	json_t *c;
	size_t i;
	if (!v)
		return;
	if (json_is_string(v) && json_string_length(v) > 0) {
		char *z = tp_calloc(json_string_length(v) + 1, 1);
		memset(z, 'x', json_string_length(v));
		json_string_set(v, z);
		free(z);
	} else if (json_is_object(v)) {
		json_object_foreach(v, k, c)
			tp_ab_json_wipe(c);
	} else if (json_is_array(v)) {
		json_array_foreach(v, i, c)
			tp_ab_json_wipe(c);
	}
}

json_t *tp_ab_outputs(const char *id, const char *name)
{
	json_t *o = json_object();
	if (id)
		json_object_set_new(o, "id", lower_id(id));
	if (name)
		json_object_set_new(o, "name", json_string(name));
	return o;
}

/* A deep copy of v, released: the result shares no string with anything else, so it can be
 * wiped after use without touching the specs it was built from. */
static json_t *own(json_t *v)
{
	json_t *c = json_deep_copy(v);
	json_decref(v);
	return c;
}

/* The container holding the last segment of a dotted path, and that segment. */
static json_t *path_parent(json_t *root, const char *path, char *leaf, size_t leaflen)
{
	const char *dot = strrchr(path, '.');
	json_t *parent = root;
	if (dot) {
		char *head = tp_strndup(path, (size_t)(dot - path));
		parent = tp_json_path_get(root, head);
		free(head);
	}
	snprintf(leaf, leaflen, "%s", dot ? dot + 1 : path);
	return parent;
}

static bool is_index(const char *s)
{
	return *s && strspn(s, "0123456789") == strlen(s);
}

/* Sets root[path] = v (stolen) when the parent exists. */
static void path_set(json_t *root, const char *path, json_t *v)
{
	char leaf[256];
	json_t *parent = path_parent(root, path, leaf, sizeof(leaf));
	if (json_is_object(parent))
		json_object_set_new(parent, leaf, v);
	else if (json_is_array(parent) && is_index(leaf) &&
		 (size_t)atol(leaf) < json_array_size(parent))
		json_array_set_new(parent, (size_t)atol(leaf), v);
	else
		json_decref(v);
}

/* Removes root[path] from its object; false when the path goes through a list (an element
 * cannot be left out of a list without changing the list). */
static bool path_del(json_t *root, const char *path)
{
	char leaf[256];
	json_t *parent = path_parent(root, path, leaf, sizeof(leaf));
	if (strchr(path, '.')) {
		/* any list on the way makes the value part of a list */
		char *copy = tp_strdup(path), *save = NULL;
		bool through_list = false;
		for (char *t = strtok_r(copy, ".", &save); t; t = strtok_r(NULL, ".", &save))
			through_list = through_list || is_index(t);
		free(copy);
		if (through_list)
			return false;
	}
	if (json_is_object(parent))
		json_object_del(parent, leaf);
	return true;
}

/* ---------------------------------------------------------------- sources, destinations */

json_t *tp_ab_actor_create_body(const tp_ab_actor *a, const json_t *spec, const char *workspace_id)
{
	json_t *conf = json_object_get(spec, "configuration");
	json_t *body = json_pack("{s:O?,s:s,s:o}", "name", json_object_get(spec, "name"),
				 "workspaceId", workspace_id, "configuration",
				 json_is_object(conf) ? json_deep_copy(conf) : json_object());
	const char *def = tp_json_get_str(spec, "definition_id");
	const char *conn = tp_json_get_str(spec, "connector");
	if (def)
		json_object_set_new(body, "definitionId", lower_id(def));
	else if (conn) /* the server maps the type to a definition through its own table */
		json_object_set_new(json_object_get(body, "configuration"), a->type_key,
				    json_string(conn));
	if (a->role == TP_AB_SOURCE && tp_json_get_str(spec, "secret_id"))
		json_object_set(body, "secretId", json_object_get(spec, "secret_id"));
	return own(body);
}

bool tp_ab_secret_changed(const tp_op *op, const char *path, const json_t *recorded_hashes)
{
	const char *have = recorded_hashes ? tp_json_get_str(recorded_hashes, path) : NULL;
	json_t *v = op->spec ? tp_json_path_get(op->spec, path) : NULL;
	json_t *fp;
	bool changed;
	if (!have || !json_is_string(v) || !op->fingerprint_key)
		return true;
	fp = tp_op_fingerprint(op, json_string_value(v), json_string_length(v));
	changed = strcmp(tp_json_get_str(fp, "$hmac"), have) != 0;
	json_decref(fp);
	return changed;
}

/* Whether `desired` lacks a key that `applied` has, at any depth of nested objects. */
static bool drops_keys(const json_t *applied, const json_t *desired)
{
	const char *k;
	json_t *v;
	if (!json_is_object(applied))
		return false;
	if (!json_is_object(desired))
		return json_object_size(applied) > 0;
	json_object_foreach((json_t *)(uintptr_t)applied, k, v) {
		json_t *d = json_object_get(desired, k);
		if (!d)
			return true;
		if (json_is_object(v) && json_is_object(d) && drops_keys(v, d))
			return true;
	}
	return false;
}

json_t *tp_ab_actor_update_body(const tp_ab_actor *a, const tp_op *op,
				const json_t *recorded_hashes, const char **method)
{
	json_t *conf = json_object_get(op->spec, "configuration");
	bool put = drops_keys(json_object_get(op->applied, "configuration"), conf);
	json_t *body =
		json_pack("{s:O?,s:o}", "name", json_object_get(op->spec, "name"), "configuration",
			  json_is_object(conf) ? json_deep_copy(conf) : json_object());
	for (size_t i = 0; op->sensitive && i < op->sensitive->len; i++) {
		const char *p = op->sensitive->items[i];
		if (strncmp(p, "configuration.", 14) != 0 ||
		    tp_ab_secret_changed(op, p, recorded_hashes))
			continue;
		/* unchanged: PUT keeps what it gets as the mask; PATCH merges what it gets,
		 * so an unchanged secret is left out of it */
		if (put) {
			if (json_is_string(tp_json_path_get(body, p)))
				path_set(body, p, json_string(TP_AB_MASK));
		} else {
			path_del(body, p);
		}
	}
	if (!put && a->role == TP_AB_SOURCE && tp_json_get_str(op->spec, "secret_id"))
		json_object_set(body, "secretId", json_object_get(op->spec, "secret_id"));
	*method = put ? "PUT" : "PATCH";
	return own(body);
}

json_t *tp_ab_actor_observed(const tp_ab_actor *a, const tp_op *op, const json_t *resp,
			     const char *workspace_echo)
{
	json_t *conf = json_object_get(resp, "configuration");
	json_t *obs = json_object();
	if (tp_json_get_str(resp, "name"))
		json_object_set(obs, "name", json_object_get(resp, "name"));
	if (workspace_echo)
		json_object_set_new(obs, "workspace", json_string(workspace_echo));
	else if (tp_json_get_str(resp, "workspaceId"))
		json_object_set_new(obs, "workspace",
				    lower_id(tp_json_get_str(resp, "workspaceId")));
	if (tp_json_get_str(resp, a->type_key))
		json_object_set(obs, "connector", json_object_get(resp, a->type_key));
	if (tp_json_get_str(resp, "definitionId"))
		json_object_set_new(obs, "definition_id",
				    lower_id(tp_json_get_str(resp, "definitionId")));
	if (json_is_object(conf)) {
		json_t *c = json_deep_copy(conf);
		json_object_del(c, a->type_key);
		json_object_set_new(obs, "configuration", c);
	}
	/* secrets: masked ones stay masked (unknown); any answered in clear is kept only as
	 * its keyed fingerprint, compared with the hash state recorded */
	for (size_t i = 0; op && op->sensitive && i < op->sensitive->len; i++) {
		const char *p = op->sensitive->items[i];
		json_t *v = tp_json_path_get(obs, p), *fp;
		if (!json_is_string(v) || strcmp(json_string_value(v), TP_AB_MASK) == 0)
			continue;
		/* without a key to fingerprint with, the value is as good as masked */
		fp = op->fingerprint_key
			     ? tp_op_fingerprint(op, json_string_value(v), json_string_length(v))
			     : json_string(TP_AB_MASK);
		tp_ab_json_wipe(v); /* a copy of the answer's: the clear text goes */
		path_set(obs, p, fp);
	}
	return own(obs);
}

bool tp_ab_actor_matches(const tp_ab_actor *a, const json_t *applied, const json_t *obj)
{
	const char *name = tp_json_get_str(applied, "name");
	const char *conn = tp_json_get_str(applied, "connector");
	const char *def = tp_json_get_str(applied, "definition_id");
	const char *live = tp_json_get_str(obj, "name");
	if (!name || !live || strcmp(name, live) != 0)
		return false;
	if (conn && !tp_ab_id_equal(conn, tp_json_get_str(obj, a->type_key)))
		return false;
	if (def && !tp_ab_id_equal(def, tp_json_get_str(obj, "definitionId")))
		return false;
	return true;
}

/* ---------------------------------------------------------------- connections */

static json_t *stream_body(const json_t *st)
{
	json_t *b = json_pack("{s:O}", "name", json_object_get(st, "name"));
	json_t *sel = json_object_get(st, "selected_fields");
	static const char *const map[][2] = {
		{"namespace", "namespace"},
		{"sync_mode", "syncMode"},
		{"cursor_field", "cursorField"},
		{"primary_key", "primaryKey"},
		{"include_files", "includeFiles"},
		{"destination_object_name", "destinationObjectName"},
	};
	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
		if (json_object_get(st, map[i][0]))
			json_object_set(b, map[i][1], json_object_get(st, map[i][0]));
	if (json_array_size(sel) > 0) {
		json_t *fields = json_array();
		size_t i;
		json_t *f;
		json_array_foreach(sel, i, f)
			json_array_append_new(fields, json_pack("{s:[O]}", "fieldPath", f));
		json_object_set_new(b, "selectedFields", fields);
	}
	return b;
}

json_t *tp_ab_connection_body(const json_t *spec, bool create)
{
	json_t *b = json_object();
	json_t *sched = json_object_get(spec, "schedule");
	json_t *streams = json_object_get(spec, "streams");
	const char *nsdef = tp_json_get_str(spec, "namespace_definition");
	static const char *const plain[][2] = {
		{"name", "name"},
		{"namespace_definition", "namespaceDefinition"},
		{"prefix", "prefix"},
		{"status", "status"},
		{"non_breaking_schema_updates_behavior", "nonBreakingSchemaUpdatesBehavior"},
	};
	if (create) {
		json_object_set(b, "sourceId", json_object_get(spec, "source"));
		json_object_set(b, "destinationId", json_object_get(spec, "destination"));
	}
	for (size_t i = 0; i < sizeof(plain) / sizeof(plain[0]); i++)
		if (json_object_get(spec, plain[i][0]))
			json_object_set(b, plain[i][1], json_object_get(spec, plain[i][0]));
	if (nsdef && strcmp(nsdef, "custom_format") == 0 &&
	    json_object_get(spec, "namespace_format"))
		json_object_set(b, "namespaceFormat", json_object_get(spec, "namespace_format"));
	if (json_is_object(sched)) {
		const char *type = tp_json_get_str(sched, "type");
		json_t *s = json_pack("{s:s}", "scheduleType", type ? type : "manual");
		if (type && strcmp(type, "cron") == 0 && tp_json_get_str(sched, "cron"))
			json_object_set(s, "cronExpression", json_object_get(sched, "cron"));
		json_object_set_new(b, "schedule", s);
	}
	if (json_is_array(streams)) {
		json_t *list = json_array();
		size_t i;
		json_t *st;
		json_array_foreach(streams, i, st)
			json_array_append_new(list, stream_body(st));
		json_object_set_new(b, "configurations", json_pack("{s:o}", "streams", list));
	}
	return own(b);
}

/* One API stream → the spec's stream shape. */
static json_t *stream_observed(const json_t *s)
{
	json_t *o = json_pack("{s:O}", "name", json_object_get(s, "name"));
	json_t *sel = json_object_get(s, "selectedFields");
	static const char *const map[][2] = {
		{"namespace", "namespace"},
		{"syncMode", "sync_mode"},
		{"cursorField", "cursor_field"},
		{"primaryKey", "primary_key"},
		{"includeFiles", "include_files"},
		{"destinationObjectName", "destination_object_name"},
	};
	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
		if (json_object_get(s, map[i][0]) && !json_is_null(json_object_get(s, map[i][0])))
			json_object_set(o, map[i][1], json_object_get(s, map[i][0]));
	if (json_is_array(sel)) {
		json_t *fields = json_array();
		size_t i;
		json_t *f;
		json_array_foreach(sel, i, f) {
			json_t *path = json_object_get(f, "fieldPath");
			if (json_array_size(path) == 1) {
				json_array_append(fields, json_array_get(path, 0));
			} else if (json_array_size(path) > 1) {
				/* a nested field: shown as its dotted path */
				tp_buf b;
				size_t k;
				json_t *seg;
				tp_buf_init(&b, 4096);
				json_array_foreach(path, k, seg)
					tp_buf_printf(&b, "%s%s", k ? "." : "",
						      tp_ab_or(json_string_value(seg), ""));
				json_array_append_new(fields, json_string(tp_buf_cstr(&b)));
				tp_buf_free(&b);
			}
		}
		json_object_set_new(o, "selected_fields", fields);
	}
	return o;
}

static bool same_stream(const json_t *applied_stream, const json_t *live)
{
	const char *an = tp_json_get_str(applied_stream, "name");
	const char *ans = tp_json_get_str(applied_stream, "namespace");
	const char *ln = tp_json_get_str(live, "name");
	const char *lns = tp_json_get_str(live, "namespace");
	if (!an || !ln || strcmp(an, ln) != 0)
		return false;
	return !ans || (lns && strcmp(ans, lns) == 0);
}

/* Live streams reduced to what Tapestry set: for a stream the applied spec lists, the fields
 * it sets; for a stream it does not (added by hand), its name, namespace and sync mode. */
static json_t *project_streams(const json_t *live, const json_t *applied)
{
	json_t *out = json_array();
	size_t i, j;
	json_t *l, *a;
	json_array_foreach(live, i, l) {
		const json_t *match = NULL;
		json_t *p;
		json_array_foreach(applied, j, a)
			if (!match && same_stream(a, l))
				match = a;
		if (match) {
			const char *k;
			json_t *v;
			p = json_pack("{s:O}", "name", json_object_get(l, "name"));
			json_object_foreach((json_t *)(uintptr_t)match, k, v) {
				if (strcmp(k, "name") != 0 && json_object_get(l, k))
					json_object_set(p, k, json_object_get(l, k));
			}
		} else {
			p = json_pack("{s:O}", "name", json_object_get(l, "name"));
			if (json_object_get(l, "namespace"))
				json_object_set(p, "namespace", json_object_get(l, "namespace"));
			if (json_object_get(l, "sync_mode"))
				json_object_set(p, "sync_mode", json_object_get(l, "sync_mode"));
		}
		json_array_append_new(out, p);
	}
	return out;
}

json_t *tp_ab_connection_observed(const json_t *resp, const json_t *applied)
{
	json_t *o = json_object();
	json_t *sched = json_object_get(resp, "schedule");
	json_t *streams = json_object_get(json_object_get(resp, "configurations"), "streams");
	const char *nsdef = tp_json_get_str(resp, "namespaceDefinition");
	static const char *const plain[][2] = {
		{"name", "name"},
		{"namespaceDefinition", "namespace_definition"},
		{"prefix", "prefix"},
		{"status", "status"},
		{"nonBreakingSchemaUpdatesBehavior", "non_breaking_schema_updates_behavior"},
	};
	if (tp_json_get_str(resp, "sourceId"))
		json_object_set_new(o, "source", lower_id(tp_json_get_str(resp, "sourceId")));
	if (tp_json_get_str(resp, "destinationId"))
		json_object_set_new(o, "destination",
				    lower_id(tp_json_get_str(resp, "destinationId")));
	for (size_t i = 0; i < sizeof(plain) / sizeof(plain[0]); i++)
		if (json_is_string(json_object_get(resp, plain[i][0])))
			json_object_set(o, plain[i][1], json_object_get(resp, plain[i][0]));
	if (nsdef && strcmp(nsdef, "custom_format") == 0 &&
	    json_is_string(json_object_get(resp, "namespaceFormat")))
		json_object_set(o, "namespace_format", json_object_get(resp, "namespaceFormat"));
	if (json_is_object(sched)) {
		const char *type = tp_json_get_str(sched, "scheduleType");
		json_t *s = json_object();
		if (type)
			json_object_set_new(s, "type", json_string(type));
		if (type && strcmp(type, "cron") == 0 && tp_json_get_str(sched, "cronExpression"))
			json_object_set(s, "cron", json_object_get(sched, "cronExpression"));
		/* "basic" (every N hours, set in the UI) has no spelling in the spec: it is shown
		 * as it is, and differs from any cron or manual schedule Tapestry applied */
		if (type && strcmp(type, "basic") == 0 && tp_json_get_str(sched, "basicTiming"))
			json_object_set(s, "basic_timing", json_object_get(sched, "basicTiming"));
		json_object_set_new(o, "schedule", s);
	}
	if (json_is_array(streams) && (!applied || json_object_get(applied, "streams"))) {
		json_t *shaped = json_array();
		size_t i;
		json_t *st;
		json_array_foreach(streams, i, st)
			json_array_append_new(shaped, stream_observed(st));
		if (applied) {
			json_t *p = project_streams(shaped, json_object_get(applied, "streams"));
			json_decref(shaped);
			shaped = p;
		}
		json_object_set_new(o, "streams", shaped);
	}
	return own(o);
}

bool tp_ab_connection_matches(const json_t *applied, const json_t *obj)
{
	const char *name = tp_json_get_str(applied, "name");
	const char *live = tp_json_get_str(obj, "name");
	return name && live && strcmp(name, live) == 0 &&
	       tp_ab_id_equal(tp_json_get_str(applied, "source"),
			      tp_json_get_str(obj, "sourceId")) &&
	       tp_ab_id_equal(tp_json_get_str(applied, "destination"),
			      tp_json_get_str(obj, "destinationId"));
}
