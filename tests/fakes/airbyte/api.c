/*
 * fake_airbyte: the resources behind the API — workspaces, sources, destinations,
 * connections, discovered streams and jobs — with the behaviour of a self-hosted Airbyte as
 * reference/airbyte/NOTES.md describes it: secret fields masked on every read, PATCH
 * deep-merging a configuration (and storing "**********" literally), PUT replacing it (and
 * keeping the stored secret where it gets the mask), soft deletes that take a source's or
 * destination's connections with them, cron schedules answered with " UTC", connections that
 * select every stream when created without a catalog and answer with source-defined keys and
 * cursors filled in, lists paginated by limit/offset with absolute next/previous links.
 *
 * Everything here runs with the store locked by main.c; replies are built as JSON.
 */
#include "fake.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---------------------------------------------------------------- the store */

static json_t *objs;     /* {id: raw object with "_kind" and "_deleted"} */
static json_t *order;    /* {kind: [ids in creation order]} */
static json_t *catalogs; /* {sourceId: [StreamProperties]} set by the test control */
static int64_t next_job = 1;
static int job_seconds = 2;

void fk_uuid(char out[37])
{
	uint8_t b[16];
	char hex[33];
	if (tp_random_bytes(b, sizeof(b)) < 0) {
		for (size_t i = 0; i < sizeof(b); i++)
			b[i] = (uint8_t)tp_clock_rand_below(256);
	}
	b[6] = (uint8_t)((b[6] & 0x0f) | 0x40);
	b[8] = (uint8_t)((b[8] & 0x3f) | 0x80);
	tp_hex_encode(hex, b, sizeof(b));
	snprintf(out, 37, "%.8s-%.4s-%.4s-%.4s-%.12s", hex, hex + 8, hex + 12, hex + 16, hex + 20);
}

static void store_put(const char *kind, const char *id, json_t *raw)
{
	json_t *ids = json_object_get(order, kind);
	if (!ids) {
		ids = json_array();
		json_object_set_new(order, kind, ids);
	}
	json_object_set_new(raw, "_kind", json_string(kind));
	json_object_set_new(raw, "_deleted", json_false());
	json_object_set_new(objs, id, raw);
	json_array_append_new(ids, json_string(id));
}

/* A live object of this kind, or NULL. */
static json_t *store_get(const char *kind, const char *id)
{
	json_t *o = id ? json_object_get(objs, id) : NULL;
	if (!o || strcmp(tp_json_get_str(o, "_kind"), kind) != 0 ||
	    json_is_true(json_object_get(o, "_deleted")))
		return NULL;
	return o;
}

static void iso_time(char *out, size_t n, int64_t ms)
{
	tp_clock_format_rfc3339(out, n, ms);
}

void fk_api_init(const char *workspace_name, int seconds)
{
	char id[37];
	json_t *ws;
	objs = json_object();
	order = json_object();
	catalogs = json_object();
	job_seconds = seconds;
	fk_uuid(id);
	ws = json_pack("{s:s,s:s,s:s,s:{}}", "workspaceId", id, "name", workspace_name,
		       "dataResidency", "auto", "notifications");
	store_put("workspace", id, ws);
}

void fk_api_free(void)
{
	json_decref(objs);
	json_decref(order);
	json_decref(catalogs);
	objs = order = catalogs = NULL;
}

/* ---------------------------------------------------------------- replies */

void fk_problem(fk_reply *r, unsigned status, const char *fmt, ...)
{
	char detail[1024];
	const char *title;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(detail, sizeof(detail), fmt, ap);
	va_end(ap);
	switch (status) {
	case 400: title = "bad-request"; break;
	case 401: title = "unauthorized"; break;
	case 403: title = "forbidden"; break;
	case 404: title = "resource-not-found"; break;
	case 405: title = "method-not-allowed"; break;
	case 409: title = "state-conflict"; break;
	case 413: title = "payload-too-large"; break;
	case 415: title = "unsupported-media-type"; break;
	case 422: title = "unprocessable-entity"; break;
	case 429: title = "rate-limit-exceeded"; break;
	default: title = status >= 500 ? "internal-server-error" : "error"; break;
	}
	json_decref(r->body);
	r->status = status;
	r->content_type = "application/problem+json";
	r->body = json_pack("{s:s,s:s,s:i,s:s}", "type",
			    "https://reference.airbyte.com/reference/errors", "title", title,
			    "status", (int)status, "detail", detail);
}

static void reply_json(fk_reply *r, unsigned status, json_t *body)
{
	json_decref(r->body);
	r->status = status;
	r->content_type = "application/json";
	r->body = body;
}

/* ---------------------------------------------------------------- query parameters */

static bool query_allowed(const fk_request *rq, fk_reply *out, const char *const *allowed)
{
	const char *k;
	json_t *v;
	json_object_foreach(rq->query, k, v) {
		bool ok = false;
		for (size_t i = 0; allowed[i]; i++)
			ok = ok || strcmp(allowed[i], k) == 0;
		if (!ok) {
			fk_problem(out, 400, "unknown query parameter \"%s\"", k);
			return false;
		}
		if (json_array_size(v) > 1 && strcmp(k, "workspaceIds") != 0) {
			fk_problem(out, 400, "query parameter \"%s\" given more than once", k);
			return false;
		}
	}
	return true;
}

static const char *q1(const fk_request *rq, const char *name)
{
	return json_string_value(json_array_get(json_object_get(rq->query, name), 0));
}

static bool q_int(const fk_request *rq, fk_reply *out, const char *name, long def, long min,
		  long max, long *val)
{
	const char *s = q1(rq, name);
	char *end;
	long v;
	*val = def;
	if (!s)
		return true;
	v = strtol(s, &end, 10);
	if (!*s || *end || v < min || v > max) {
		fk_problem(out, 400,
			   "query parameter %s must be an integer from %ld to %ld, got "
			   "\"%.32s\"",
			   name, min, max, s);
		return false;
	}
	*val = v;
	return true;
}

static bool q_bool(const fk_request *rq, fk_reply *out, const char *name, bool *val)
{
	const char *s = q1(rq, name);
	*val = false;
	if (!s)
		return true;
	if (strcmp(s, "true") == 0 || strcmp(s, "false") == 0) {
		*val = strcmp(s, "true") == 0;
		return true;
	}
	fk_problem(out, 400, "query parameter %s must be true or false, got \"%.32s\"", name, s);
	return false;
}

/* workspaceIds: repeated or comma-separated uuids; an empty result means every workspace. */
static bool q_workspaces(const fk_request *rq, fk_reply *out, json_t **ids)
{
	size_t i;
	json_t *v;
	*ids = json_array();
	json_array_foreach(json_object_get(rq->query, "workspaceIds"), i, v) {
		char *copy = tp_strdup(json_string_value(v));
		char *save = NULL;
		for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
			if (!fk_is_uuid(t)) {
				fk_problem(out, 400, "workspaceIds: \"%.64s\" is not a uuid", t);
				free(copy);
				json_decref(*ids);
				*ids = NULL;
				return false;
			}
			json_array_append_new(*ids, json_string(t));
		}
		free(copy);
	}
	return true;
}

static bool id_in(const json_t *ids, const char *id)
{
	size_t i;
	json_t *v;
	if (json_array_size(ids) == 0)
		return true;
	json_array_foreach(ids, i, v)
		if (id && strcasecmp(json_string_value(v), id) == 0)
			return true;
	return false;
}

static void put_query_escaped(tp_buf *b, const char *s)
{
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~' || c == ',')
			tp_buf_putc(b, (char)c);
		else
			tp_buf_printf(b, "%%%02X", c);
	}
}

static char *page_link(const fk_request *rq, const char *path, long limit, long offset)
{
	tp_buf b;
	const char *k;
	json_t *vals;
	tp_buf_init(&b, 1 << 16);
	tp_buf_printf(&b, "%s%s?", rq->public_base, path);
	json_object_foreach(rq->query, k, vals) {
		size_t i;
		json_t *v;
		if (strcmp(k, "limit") == 0 || strcmp(k, "offset") == 0)
			continue;
		json_array_foreach(vals, i, v) {
			tp_buf_printf(&b, "%s=", k);
			put_query_escaped(&b, json_string_value(v));
			tp_buf_putc(&b, '&');
		}
	}
	tp_buf_printf(&b, "limit=%ld&offset=%ld", limit, offset);
	return tp_buf_detach(&b);
}

/* {data, next, previous} for one page of items (stolen). next is always set, as the real
 * server does even after the last page; clients must stop on a short page. */
static void reply_page(const fk_request *rq, fk_reply *out, json_t *items, long limit, long offset)
{
	json_t *data = json_array();
	json_t *page;
	char *next, *prev = NULL;
	for (size_t i = (size_t)offset; i < json_array_size(items) && i < (size_t)(offset + limit);
	     i++)
		json_array_append(data, json_array_get(items, i));
	json_decref(items);
	next = page_link(rq, rq->path, limit, offset + limit);
	page = json_pack("{s:o,s:s}", "data", data, "next", next);
	if (offset > 0) {
		prev = page_link(rq, rq->path, limit, offset > limit ? offset - limit : 0);
		json_object_set_new(page, "previous", json_string(prev));
	}
	free(next);
	free(prev);
	reply_json(out, 200, page);
}

/* ---------------------------------------------------------------- configuration */

/* Borrowed value at a dotted path inside obj (objects only), or NULL. */
static json_t *dotted_get(json_t *obj, const char *path)
{
	char *copy = tp_strdup(path), *save = NULL;
	json_t *cur = obj;
	for (char *t = strtok_r(copy, ".", &save); t && cur; t = strtok_r(NULL, ".", &save))
		cur = json_is_object(cur) ? json_object_get(cur, t) : NULL;
	free(copy);
	return cur;
}

static void dotted_mask(json_t *obj, const char *path)
{
	char *copy = tp_strdup(path);
	char *dot = strrchr(copy, '.');
	json_t *parent = obj;
	const char *leaf = copy;
	if (dot) {
		*dot = '\0';
		parent = dotted_get(obj, copy);
		leaf = dot + 1;
	}
	if (json_is_object(parent) && json_object_get(parent, leaf))
		json_object_set_new(parent, leaf, json_string(FK_MASK));
	free(copy);
}

static json_t *masked_config(const fk_connector *c, const json_t *config)
{
	json_t *m = json_deep_copy(config);
	for (size_t i = 0; c && c->secrets[i]; i++)
		dotted_mask(m, c->secrets[i]);
	return m;
}

/* PATCH: objects merge member by member, anything else is replaced. */
static void deep_merge(json_t *dst, const json_t *src)
{
	const char *k;
	json_t *v;
	json_object_foreach((json_t *)(uintptr_t)src, k, v) {
		json_t *cur = json_object_get(dst, k);
		if (json_is_object(cur) && json_is_object(v))
			deep_merge(cur, v);
		else
			json_object_set_new(dst, k, json_deep_copy(v));
	}
}

/* PUT: the new configuration replaces the stored one, except that a value sent as exactly
 * the mask keeps what was stored at that path. */
static void restore_masked(json_t *fresh, const json_t *stored)
{
	const char *k;
	json_t *v;
	json_object_foreach(fresh, k, v) {
		json_t *old = json_object_get(stored, k);
		if (json_is_string(v) && strcmp(json_string_value(v), FK_MASK) == 0 && old)
			json_object_set_new(fresh, k, json_deep_copy(old));
		else if (json_is_object(v) && json_is_object(old))
			restore_masked(v, old);
	}
}

static bool config_complete(const fk_connector *c, const json_t *config, fk_reply *out)
{
	for (size_t i = 0; c->required[i]; i++) {
		if (!json_object_get(config, c->required[i])) {
			fk_problem(out, 422,
				   "The provided configuration does not fulfill the "
				   "specification. Errors: json schema validation failed when "
				   "comparing the data to the json schema. Errors: $.%s: is "
				   "missing but it is required",
				   c->required[i]);
			return false;
		}
	}
	return true;
}

/* ---------------------------------------------------------------- workspaces */

static json_t *workspace_view(const json_t *raw)
{
	json_t *v = json_deep_copy(raw);
	json_object_del(v, "_kind");
	json_object_del(v, "_deleted");
	return v;
}

static void workspaces(const fk_request *rq, fk_reply *out, const char *id)
{
	static const char *const list_q[] = {"workspaceIds", "includeDeleted", "limit", "offset",
					     NULL};
	static const char *const none[] = {NULL};
	char err[512];
	json_t *ws;
	if (!id && strcmp(rq->method, "GET") == 0) {
		json_t *ids = NULL, *items;
		bool deleted;
		long limit, offset;
		size_t i;
		json_t *wid;
		if (!query_allowed(rq, out, list_q) || !q_workspaces(rq, out, &ids) ||
		    !q_bool(rq, out, "includeDeleted", &deleted) ||
		    !q_int(rq, out, "limit", 20, 1, 100, &limit) ||
		    !q_int(rq, out, "offset", 0, 0, 1L << 30, &offset)) {
			json_decref(ids);
			return;
		}
		items = json_array();
		json_array_foreach(json_object_get(order, "workspace"), i, wid) {
			json_t *raw = json_object_get(objs, json_string_value(wid));
			if (!deleted && json_is_true(json_object_get(raw, "_deleted")))
				continue;
			if (!id_in(ids, json_string_value(wid)))
				continue;
			json_array_append_new(items, workspace_view(raw));
		}
		json_decref(ids);
		reply_page(rq, out, items, limit, offset);
		return;
	}
	if (!query_allowed(rq, out, none))
		return;
	if (!id && strcmp(rq->method, "POST") == 0) {
		char nid[37];
		if (fk_validate(rq->body, &fk_workspace_create, "", err, sizeof(err)) < 0) {
			fk_problem(out, 400, "%s", err);
			return;
		}
		fk_uuid(nid);
		ws = json_pack("{s:s,s:O,s:s,s:O?}", "workspaceId", nid, "name",
			       json_object_get(rq->body, "name"), "dataResidency", "auto",
			       "notifications", json_object_get(rq->body, "notifications"));
		if (!json_object_get(ws, "notifications"))
			json_object_set_new(ws, "notifications", json_object());
		store_put("workspace", nid, ws);
		reply_json(out, 200, workspace_view(ws));
		return;
	}
	if (!id) {
		fk_problem(out, 405, "%s is not allowed on /workspaces", rq->method);
		return;
	}
	if (!(ws = store_get("workspace", id))) {
		fk_problem(out, 404, "workspace %s was not found", id);
		return;
	}
	if (strcmp(rq->method, "GET") == 0) {
		reply_json(out, 200, workspace_view(ws));
	} else if (strcmp(rq->method, "PATCH") == 0) {
		if (fk_validate(rq->body, &fk_workspace_update, "", err, sizeof(err)) < 0) {
			fk_problem(out, 400, "%s", err);
			return;
		}
		if (json_object_get(rq->body, "name"))
			json_object_set(ws, "name", json_object_get(rq->body, "name"));
		if (json_object_get(rq->body, "notifications"))
			json_object_set(ws, "notifications",
					json_object_get(rq->body, "notifications"));
		reply_json(out, 200, workspace_view(ws));
	} else if (strcmp(rq->method, "DELETE") == 0) {
		json_object_set_new(ws, "_deleted", json_true());
		out->status = 204;
	} else {
		fk_problem(out, 405, "%s is not allowed on /workspaces/{workspaceId}", rq->method);
	}
}

/* ---------------------------------------------------------------- sources, destinations */

typedef struct {
	const char *kind;       /* "source" | "destination" */
	const char *collection; /* "/sources" */
	const char *id_key;     /* "sourceId" */
	const char *type_key;   /* "sourceType" */
	bool source;
	const fk_prop *create, *put, *patch;
} actor_role;

static const actor_role source_role = {
	.kind = "source",
	.collection = "/sources",
	.id_key = "sourceId",
	.type_key = "sourceType",
	.source = true,
	.create = &fk_source_create,
	.put = &fk_source_put,
	.patch = &fk_source_patch,
};
static const actor_role destination_role = {
	.kind = "destination",
	.collection = "/destinations",
	.id_key = "destinationId",
	.type_key = "destinationType",
	.source = false,
	.create = &fk_destination_create,
	.put = &fk_destination_put,
	.patch = &fk_destination_patch,
};

static const fk_connector *actor_connector(const actor_role *role, const json_t *raw)
{
	return fk_connector_by_type(tp_json_get_str(raw, role->type_key), role->source);
}

static json_t *actor_view(const actor_role *role, const json_t *raw)
{
	const fk_connector *c = actor_connector(role, raw);
	json_t *v =
		json_pack("{s:O,s:O,s:O,s:O,s:O,s:o,s:O}", role->id_key,
			  json_object_get(raw, role->id_key), "name", json_object_get(raw, "name"),
			  role->type_key, json_object_get(raw, role->type_key), "definitionId",
			  json_object_get(raw, "definitionId"), "workspaceId",
			  json_object_get(raw, "workspaceId"), "configuration",
			  masked_config(c, json_object_get(raw, "configuration")), "createdAt",
			  json_object_get(raw, "createdAt"));
	if (json_object_get(raw, "resourceAllocation"))
		json_object_set(v, "resourceAllocation",
				json_object_get(raw, "resourceAllocation"));
	return v;
}

/* The connector a create names: definitionId, or configuration.<type_key> through the
 * built-in table. NULL with a problem set when neither works. */
static const fk_connector *create_connector(const actor_role *role, const json_t *body,
					    fk_reply *out)
{
	const char *def = tp_json_get_str(body, "definitionId");
	json_t *conf = json_object_get(body, "configuration");
	json_t *typev = json_object_get(conf, role->type_key);
	const fk_connector *c = NULL;
	if (typev && !json_is_string(typev)) {
		fk_problem(out, 400, "configuration.%s must be a string", role->type_key);
		return NULL;
	}
	if (def) {
		c = fk_connector_by_definition(def, role->source);
		if (!c) {
			fk_problem(out, 400, "no %s connector definition with id %s", role->kind,
				   def);
			return NULL;
		}
		if (typev && strcmp(json_string_value(typev), c->type) != 0) {
			fk_problem(out, 400,
				   "configuration.%s \"%s\" does not match definitionId "
				   "%s (%s)",
				   role->type_key, json_string_value(typev), def, c->type);
			return NULL;
		}
		return c;
	}
	if (!typev) {
		fk_problem(out, 400, "One of configuration.%s or definitionId must be provided",
			   role->type_key);
		return NULL;
	}
	c = fk_connector_by_type(json_string_value(typev), role->source);
	if (!c)
		fk_problem(out, 400, "configuration.%s \"%s\" names no known %s connector",
			   role->type_key, json_string_value(typev), role->kind);
	return c;
}

/* Cascade of a source or destination delete: its connections are soft-deleted too. */
static void delete_connections_of(const char *key, const char *id)
{
	size_t i;
	json_t *cid;
	json_array_foreach(json_object_get(order, "connection"), i, cid) {
		json_t *c = store_get("connection", json_string_value(cid));
		const char *ref = c ? tp_json_get_str(c, key) : NULL;
		if (ref && strcasecmp(ref, id) == 0)
			json_object_set_new(c, "_deleted", json_true());
	}
}

static void actors(const actor_role *role, const fk_request *rq, fk_reply *out, const char *id)
{
	static const char *const list_q[] = {"workspaceIds", "includeDeleted", "limit", "offset",
					     NULL};
	static const char *const get_q[] = {"includeSecretCoordinates", NULL};
	static const char *const none[] = {NULL};
	char err[512];
	json_t *raw;

	if (!id && strcmp(rq->method, "GET") == 0) {
		json_t *ids = NULL, *items;
		bool deleted;
		long limit, offset;
		size_t i;
		json_t *aid;
		char kinds[32];
		if (!query_allowed(rq, out, list_q) || !q_workspaces(rq, out, &ids) ||
		    !q_bool(rq, out, "includeDeleted", &deleted) ||
		    !q_int(rq, out, "limit", 20, 1, 100, &limit) ||
		    !q_int(rq, out, "offset", 0, 0, 1L << 30, &offset)) {
			json_decref(ids);
			return;
		}
		snprintf(kinds, sizeof(kinds), "%s", role->kind);
		items = json_array();
		json_array_foreach(json_object_get(order, kinds), i, aid) {
			raw = json_object_get(objs, json_string_value(aid));
			if (!deleted && json_is_true(json_object_get(raw, "_deleted")))
				continue;
			if (!id_in(ids, tp_json_get_str(raw, "workspaceId")))
				continue;
			json_array_append_new(items, actor_view(role, raw));
		}
		json_decref(ids);
		reply_page(rq, out, items, limit, offset);
		return;
	}
	if (!id && strcmp(rq->method, "POST") == 0) {
		const fk_connector *c;
		json_t *conf;
		char nid[37];
		if (!query_allowed(rq, out, none))
			return;
		if (fk_validate(rq->body, role->create, "", err, sizeof(err)) < 0) {
			fk_problem(out, 400, "%s", err);
			return;
		}
		if (!store_get("workspace", tp_json_get_str(rq->body, "workspaceId"))) {
			fk_problem(out, 404, "workspace %s was not found",
				   tp_json_get_str(rq->body, "workspaceId"));
			return;
		}
		if (!(c = create_connector(role, rq->body, out)))
			return;
		conf = json_deep_copy(json_object_get(rq->body, "configuration"));
		json_object_del(conf, role->type_key);
		if (!config_complete(c, conf, out)) {
			json_decref(conf);
			return;
		}
		fk_uuid(nid);
		raw = json_pack("{s:s,s:O,s:s,s:s,s:O,s:o,s:I}", role->id_key, nid, "name",
				json_object_get(rq->body, "name"), role->type_key, c->type,
				"definitionId", c->definition_id, "workspaceId",
				json_object_get(rq->body, "workspaceId"), "configuration", conf,
				"createdAt", (json_int_t)(tp_clock_now_ms() / 1000));
		if (json_object_get(rq->body, "resourceAllocation"))
			json_object_set(raw, "resourceAllocation",
					json_object_get(rq->body, "resourceAllocation"));
		if (json_object_get(rq->body, "secretId"))
			json_object_set(raw, "secretId", json_object_get(rq->body, "secretId"));
		store_put(role->kind, nid, raw);
		reply_json(out, 200, actor_view(role, raw));
		return;
	}
	if (!id) {
		fk_problem(out, 405, "%s is not allowed on %s", rq->method, role->collection);
		return;
	}
	if (!query_allowed(rq, out, strcmp(rq->method, "GET") == 0 ? get_q : none))
		return;
	if (!(raw = store_get(role->kind, id))) {
		fk_problem(out, 404, "%s %s was not found", role->kind, id);
		return;
	}
	if (strcmp(rq->method, "GET") == 0) {
		reply_json(out, 200, actor_view(role, raw));
	} else if (strcmp(rq->method, "PATCH") == 0 || strcmp(rq->method, "PUT") == 0) {
		bool put = strcmp(rq->method, "PUT") == 0;
		const fk_connector *c = actor_connector(role, raw);
		json_t *conf = json_object_get(rq->body, "configuration");
		json_t *merged;
		const char *ws = tp_json_get_str(rq->body, "workspaceId");
		if (fk_validate(rq->body, put ? role->put : role->patch, "", err, sizeof(err)) <
		    0) {
			fk_problem(out, 400, "%s", err);
			return;
		}
		if (conf && json_object_get(conf, role->type_key) &&
		    !json_equal(json_object_get(conf, role->type_key),
				json_object_get(raw, role->type_key))) {
			fk_problem(out, 400, "configuration.%s cannot be changed (create a new %s)",
				   role->type_key, role->kind);
			return;
		}
		if (ws && !store_get("workspace", ws)) {
			fk_problem(out, 404, "workspace %s was not found", ws);
			return;
		}
		if (put) {
			merged = json_deep_copy(conf);
			restore_masked(merged, json_object_get(raw, "configuration"));
		} else {
			merged = json_deep_copy(json_object_get(raw, "configuration"));
			if (conf)
				deep_merge(merged, conf);
		}
		json_object_del(merged, role->type_key);
		if (!config_complete(c, merged, out)) {
			json_decref(merged);
			return;
		}
		json_object_set_new(raw, "configuration", merged);
		if (json_object_get(rq->body, "name"))
			json_object_set(raw, "name", json_object_get(rq->body, "name"));
		if (ws)
			json_object_set_new(raw, "workspaceId", json_string(ws));
		if (json_object_get(rq->body, "resourceAllocation") || put) {
			json_t *ra = json_object_get(rq->body, "resourceAllocation");
			if (ra)
				json_object_set(raw, "resourceAllocation", ra);
			else
				json_object_del(raw, "resourceAllocation");
		}
		reply_json(out, 200, actor_view(role, raw));
	} else if (strcmp(rq->method, "DELETE") == 0) {
		json_object_set_new(raw, "_deleted", json_true());
		delete_connections_of(role->id_key, id);
		out->status = 204;
	} else {
		fk_problem(out, 405, "%s is not allowed on %s/{%s}", rq->method, role->collection,
			   role->id_key);
	}
}

/* ---------------------------------------------------------------- catalogs */

static json_t *csv_paths(const char *csv)
{
	json_t *a = json_array();
	char *copy = tp_strdup(csv ? csv : ""), *save = NULL;
	for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save))
		json_array_append_new(a, json_pack("[s]", t));
	free(copy);
	return a;
}

/* The StreamProperties a source discovers: the test's override, or the connector's. */
static json_t *catalog_of(const json_t *source)
{
	const fk_connector *c = fk_connector_by_type(tp_json_get_str(source, "sourceType"), true);
	json_t *over = json_object_get(catalogs, tp_json_get_str(source, "sourceId"));
	json_t *a;
	if (over)
		return json_deep_copy(over);
	a = json_array();
	for (const fk_stream *s = c ? c->streams : NULL; s && s->name; s++) {
		json_t *modes = json_array();
		json_t *sp;
		for (size_t i = 0; fk_sync_modes[i]; i++)
			if (s->incremental || strncmp(fk_sync_modes[i], "full_refresh", 12) == 0)
				json_array_append_new(modes, json_string(fk_sync_modes[i]));
		sp = json_pack("{s:s,s:o,s:o,s:b,s:o,s:o}", "streamName", s->name, "syncModes",
			       modes, "defaultCursorField",
			       s->cursor ? json_pack("[s]", s->cursor) : json_array(),
			       "sourceDefinedCursorField", s->source_cursor,
			       "sourceDefinedPrimaryKey",
			       s->pk ? json_pack("[[s]]", s->pk) : json_array(), "propertyFields",
			       csv_paths(s->fields));
		if (s->ns)
			json_object_set_new(sp, "streamnamespace", json_string(s->ns));
		json_array_append_new(a, sp);
	}
	return a;
}

int fk_api_set_catalog(const char *source_id, const json_t *streams)
{
	if (!store_get("source", source_id) || !json_is_array(streams))
		return -1;
	json_object_set(catalogs, source_id, (json_t *)(uintptr_t)streams);
	return 0;
}

static void streams_endpoint(const fk_request *rq, fk_reply *out)
{
	static const char *const q[] = {"sourceId", "destinationId", "ignoreCache", NULL};
	const char *sid = q1(rq, "sourceId"), *did = q1(rq, "destinationId");
	bool ignore;
	json_t *src;
	if (strcmp(rq->method, "GET") != 0) {
		fk_problem(out, 405, "%s is not allowed on /streams", rq->method);
		return;
	}
	if (!query_allowed(rq, out, q) || !q_bool(rq, out, "ignoreCache", &ignore))
		return;
	if (!sid) {
		fk_problem(out, 400, "Required parameters are missing: sourceId");
		return;
	}
	if (!fk_is_uuid(sid) || (did && !fk_is_uuid(did))) {
		fk_problem(out, 400, "sourceId and destinationId must be uuids");
		return;
	}
	if (!(src = store_get("source", sid))) {
		fk_problem(out, 404, "source %s was not found", sid);
		return;
	}
	if (did && !store_get("destination", did)) {
		fk_problem(out, 404, "destination %s was not found", did);
		return;
	}
	reply_json(out, 200, catalog_of(src));
}

/* ---------------------------------------------------------------- connections */

static bool str_in_array(const json_t *a, const char *s)
{
	size_t i;
	json_t *v;
	json_array_foreach(a, i, v)
		if (json_is_string(v) && strcmp(json_string_value(v), s) == 0)
			return true;
	return false;
}

/* Whether a top-level field exists in the stream's propertyFields. */
static bool has_field(const json_t *sp, const char *f)
{
	size_t i;
	json_t *p;
	json_array_foreach(json_object_get(sp, "propertyFields"), i, p)
		if (strcmp(json_string_value(json_array_get(p, 0)), f) == 0)
			return true;
	return false;
}

static bool selected_has(const json_t *sel, const char *f)
{
	size_t i;
	json_t *v;
	json_array_foreach(sel, i, v) {
		const char *h =
			json_string_value(json_array_get(json_object_get(v, "fieldPath"), 0));
		if (h && strcmp(h, f) == 0)
			return true;
	}
	return false;
}

/* One requested stream against its catalog entry → the stream as stored and answered. */
static json_t *expand_stream(const json_t *sp, const json_t *in, fk_reply *out)
{
	const char *name = tp_json_get_str(sp, "streamName");
	const char *ns = tp_json_get_str(sp, "streamnamespace");
	const char *mode = in ? tp_json_get_str(in, "syncMode") : NULL;
	json_t *modes = json_object_get(sp, "syncModes");
	json_t *src_pk = json_object_get(sp, "sourceDefinedPrimaryKey");
	json_t *def_cursor = json_object_get(sp, "defaultCursorField");
	json_t *cursor = in ? json_object_get(in, "cursorField") : NULL;
	json_t *pk = in ? json_object_get(in, "primaryKey") : NULL;
	json_t *sel = in ? json_object_get(in, "selectedFields") : NULL;
	bool incremental, dedup;
	json_t *st;
	size_t i;
	json_t *v;

	if (!mode)
		mode = str_in_array(modes, "full_refresh_overwrite")
			       ? "full_refresh_overwrite"
			       : json_string_value(json_array_get(modes, 0));
	if (!mode || !str_in_array(modes, mode)) {
		fk_problem(out, 422,
			   "stream %s: sync mode %s is not supported by the source "
			   "(supported: %zu modes)",
			   name, mode ? mode : "(none)", json_array_size(modes));
		return NULL;
	}
	incremental = strncmp(mode, "incremental", 11) == 0;
	dedup = strstr(mode, "dedup") != NULL;
	st = json_pack("{s:s,s:s}", "name", name, "syncMode", mode);
	if (ns)
		json_object_set_new(st, "namespace", json_string(ns));

	if (incremental) {
		if (json_is_true(json_object_get(sp, "sourceDefinedCursorField"))) {
			if (json_array_size(cursor) && !json_equal(cursor, def_cursor)) {
				fk_problem(out, 422,
					   "stream %s: the cursor is defined by the source "
					   "and cannot be changed",
					   name);
				goto fail;
			}
			cursor = def_cursor;
		} else if (!json_array_size(cursor)) {
			cursor = def_cursor;
		}
		if (!json_array_size(cursor)) {
			fk_problem(out, 422,
				   "stream %s: incremental sync mode %s needs a cursor "
				   "field",
				   name, mode);
			goto fail;
		}
		if (!has_field(sp, json_string_value(json_array_get(cursor, 0)))) {
			fk_problem(out, 422, "stream %s: cursor field %s does not exist", name,
				   json_string_value(json_array_get(cursor, 0)));
			goto fail;
		}
		json_object_set(st, "cursorField", cursor);
	}
	if (json_array_size(src_pk)) {
		if (json_array_size(pk) && !json_equal(pk, src_pk)) {
			fk_problem(out, 422,
				   "stream %s: the primary key must equal the one the "
				   "source defines",
				   name);
			goto fail;
		}
		pk = src_pk;
	}
	if (dedup && !json_array_size(pk)) {
		fk_problem(out, 422, "stream %s: sync mode %s needs a primary key", name, mode);
		goto fail;
	}
	json_array_foreach(pk, i, v) {
		if (!json_array_size(v) ||
		    !has_field(sp, json_string_value(json_array_get(v, 0)))) {
			fk_problem(out, 422, "stream %s: primary key field %zu does not exist",
				   name, i);
			goto fail;
		}
	}
	if (json_array_size(pk))
		json_object_set(st, "primaryKey", pk);
	if (json_array_size(sel)) {
		json_array_foreach(sel, i, v) {
			const char *h = json_string_value(
				json_array_get(json_object_get(v, "fieldPath"), 0));
			if (!h || !has_field(sp, h)) {
				fk_problem(out, 422, "stream %s: selected field %s does not exist",
					   name, h ? h : "(empty path)");
				goto fail;
			}
		}
		if (incremental &&
		    !selected_has(sel, json_string_value(json_array_get(cursor, 0)))) {
			fk_problem(out, 422,
				   "stream %s: the selected fields must include the "
				   "cursor field",
				   name);
			goto fail;
		}
		json_array_foreach(pk, i, v) {
			if (dedup && !selected_has(sel, json_string_value(json_array_get(v, 0)))) {
				fk_problem(out, 422,
					   "stream %s: the selected fields must include "
					   "the primary key",
					   name);
				goto fail;
			}
		}
		json_object_set(st, "selectedFields", sel);
	} else {
		json_object_set_new(st, "selectedFields", json_array());
	}
	if (in && json_object_get(in, "includeFiles"))
		json_object_set(st, "includeFiles", json_object_get(in, "includeFiles"));
	if (in && json_object_get(in, "destinationObjectName"))
		json_object_set(st, "destinationObjectName",
				json_object_get(in, "destinationObjectName"));
	if (in && json_object_get(in, "mappers"))
		json_object_set(st, "mappers", json_object_get(in, "mappers"));
	return st;
fail:
	json_decref(st);
	return NULL;
}

/* The stored selection: every requested stream checked against the catalog, answered in
 * catalog order (not request order); no request selects every stream with defaults. */
static json_t *expand_streams(const json_t *source, const json_t *requested, fk_reply *out)
{
	json_t *cat = catalog_of(source);
	json_t *res = json_array();
	json_t *want = requested ? json_array() : NULL;
	size_t i, j;
	json_t *in, *sp;

	/* match each requested stream to one catalog entry */
	json_array_foreach(requested, i, in) {
		const char *name = tp_json_get_str(in, "name");
		const char *ns = tp_json_get_str(in, "namespace");
		ssize_t found = -1;
		size_t matches = 0;
		json_array_foreach(cat, j, sp) {
			const char *sns = tp_json_get_str(sp, "streamnamespace");
			if (strcmp(tp_json_get_str(sp, "streamName"), name) != 0)
				continue;
			if (ns && (!sns || strcmp(sns, ns) != 0))
				continue;
			found = (ssize_t)j;
			matches++;
		}
		if (matches == 0) {
			fk_problem(out, 422, "stream \"%s\"%s%s is not in the source's catalog",
				   name, ns ? " in namespace " : "", ns ? ns : "");
			goto fail;
		}
		if (matches > 1) {
			fk_problem(out, 422,
				   "stream \"%s\" exists in several namespaces: set "
				   "its namespace",
				   name);
			goto fail;
		}
		for (size_t k = 0; k < i; k++) {
			if (json_integer_value(json_array_get(want, k)) == (json_int_t)found) {
				fk_problem(out, 400, "stream \"%s\" is configured twice", name);
				goto fail;
			}
		}
		json_array_append_new(want, json_integer(found));
	}
	json_array_foreach(cat, j, sp) {
		json_t *req = NULL, *st;
		if (want) {
			json_array_foreach(want, i, in)
				if (json_integer_value(in) == (json_int_t)j)
					req = json_array_get(requested, i);
			if (!req)
				continue;
		}
		if (!(st = expand_stream(sp, req, out)))
			goto fail;
		json_array_append_new(res, st);
	}
	json_decref(cat);
	json_decref(want);
	return res;
fail:
	json_decref(cat);
	json_decref(want);
	json_decref(res);
	return NULL;
}

/* Quartz cron; nothing more often than hourly. NULL when fine, else the reason. */
static const char *cron_problem(const char *expr, unsigned *status)
{
	char *copy = tp_strdup(expr), *save = NULL;
	char *f[8];
	size_t n = 0;
	const char *why = NULL;
	for (char *t = strtok_r(copy, " \t", &save); t; t = strtok_r(NULL, " \t", &save)) {
		if (n < 8)
			f[n] = t;
		n++;
	}
	if (n > 0 && n <= 8 && strcasecmp(f[n - 1], "UTC") == 0)
		n--;
	*status = 400;
	if (n < 6 || n > 7)
		why = "a quartz cron expression has 6 or 7 fields";
	else if ((strcmp(f[3], "?") == 0) == (strcmp(f[5], "?") == 0))
		why = "quartz cron needs ? in exactly one of day-of-month and day-of-week";
	else if (strspn(f[0], "0123456789") != strlen(f[0]) ||
		 strspn(f[1], "0123456789") != strlen(f[1])) {
		why = "syncs cannot run more often than once an hour";
		*status = 422;
	}
	free(copy);
	return why;
}

/* schedule request → stored response form; false with a problem set. */
static bool set_schedule(json_t *conn, const json_t *sched, fk_reply *out)
{
	const char *type = tp_json_get_str(sched, "scheduleType");
	const char *cron = tp_json_get_str(sched, "cronExpression");
	unsigned status;
	const char *why;
	char *expr;
	size_t n;
	if (strcmp(type, "manual") == 0) {
		if (cron) {
			fk_problem(out, 400,
				   "schedule: cronExpression is only allowed with "
				   "scheduleType cron");
			return false;
		}
		json_object_set_new(conn, "schedule", json_pack("{s:s}", "scheduleType", "manual"));
		return true;
	}
	if (!cron) {
		fk_problem(out, 400, "schedule: scheduleType cron needs a cronExpression");
		return false;
	}
	if ((why = cron_problem(cron, &status))) {
		fk_problem(out, status, "schedule: invalid cron expression \"%.80s\": %s", cron,
			   why);
		return false;
	}
	/* answered with the time zone appended (always UTC) */
	expr = tp_strdup(cron);
	n = strlen(expr);
	while (n && isspace((unsigned char)expr[n - 1]))
		expr[--n] = '\0';
	if (!(n >= 4 && strcasecmp(expr + n - 4, " UTC") == 0)) {
		char *with = tp_sprintf("%s UTC", expr);
		free(expr);
		expr = with;
	}
	json_object_set_new(conn, "schedule",
			    json_pack("{s:s,s:s}", "scheduleType", "cron", "cronExpression", expr));
	free(expr);
	return true;
}

static json_t *connection_view(const json_t *raw)
{
	json_t *v = json_deep_copy(raw);
	json_object_del(v, "_kind");
	json_object_del(v, "_deleted");
	return v;
}

/* Fields shared by create and PATCH, applied to the stored connection. */
static bool connection_apply(json_t *conn, const json_t *body, const json_t *source, fk_reply *out)
{
	static const char *const plain[] = {"name",   "namespaceDefinition",
					    "prefix", "nonBreakingSchemaUpdatesBehavior",
					    "status", "tags",
					    NULL};
	json_t *cfg = json_object_get(body, "configurations");
	json_t *sched = json_object_get(body, "schedule");
	if (sched && !set_schedule(conn, sched, out))
		return false;
	if (cfg) {
		json_t *streams = expand_streams(source, json_object_get(cfg, "streams"), out);
		if (!streams)
			return false;
		json_object_set_new(conn, "configurations", json_pack("{s:o}", "streams", streams));
	}
	for (size_t i = 0; plain[i]; i++)
		if (json_object_get(body, plain[i]))
			json_object_set(conn, plain[i], json_object_get(body, plain[i]));
	if (json_object_get(body, "namespaceFormat"))
		json_object_set(conn, "namespaceFormat", json_object_get(body, "namespaceFormat"));
	return true;
}

static void connections(const fk_request *rq, fk_reply *out, const char *id)
{
	static const char *const list_q[] = {"workspaceIds", "tagIds", "includeDeleted",
					     "limit",        "offset", NULL};
	static const char *const none[] = {NULL};
	char err[512];
	json_t *raw;

	if (!id && strcmp(rq->method, "GET") == 0) {
		json_t *ids = NULL, *items;
		bool deleted;
		long limit, offset;
		size_t i;
		json_t *cid;
		if (!query_allowed(rq, out, list_q) || !q_workspaces(rq, out, &ids) ||
		    !q_bool(rq, out, "includeDeleted", &deleted) ||
		    !q_int(rq, out, "limit", 20, 1, 100, &limit) ||
		    !q_int(rq, out, "offset", 0, 0, 1L << 30, &offset)) {
			json_decref(ids);
			return;
		}
		items = json_array();
		json_array_foreach(json_object_get(order, "connection"), i, cid) {
			raw = json_object_get(objs, json_string_value(cid));
			if (!deleted && json_is_true(json_object_get(raw, "_deleted")))
				continue;
			if (!id_in(ids, tp_json_get_str(raw, "workspaceId")))
				continue;
			json_array_append_new(items, connection_view(raw));
		}
		json_decref(ids);
		reply_page(rq, out, items, limit, offset);
		return;
	}
	if (!query_allowed(rq, out, none))
		return;
	if (!id && strcmp(rq->method, "POST") == 0) {
		json_t *src, *dst;
		char nid[37];
		if (fk_validate(rq->body, &fk_connection_create, "", err, sizeof(err)) < 0) {
			fk_problem(out, 400, "%s", err);
			return;
		}
		src = store_get("source", tp_json_get_str(rq->body, "sourceId"));
		dst = store_get("destination", tp_json_get_str(rq->body, "destinationId"));
		if (!src || !dst) {
			fk_problem(out, 404, "%s %s was not found", src ? "destination" : "source",
				   tp_json_get_str(rq->body, src ? "destinationId" : "sourceId"));
			return;
		}
		if (!json_equal(json_object_get(src, "workspaceId"),
				json_object_get(dst, "workspaceId"))) {
			fk_problem(out, 400,
				   "the source and the destination are in different "
				   "workspaces");
			return;
		}
		fk_uuid(nid);
		raw = json_pack("{s:s,s:O,s:O,s:O,s:s,s:{s:s},s:s,s:s,s:s,s:s,s:I,s:[]}",
				"connectionId", nid, "sourceId", json_object_get(src, "sourceId"),
				"destinationId", json_object_get(dst, "destinationId"),
				"workspaceId", json_object_get(src, "workspaceId"), "status",
				"active", "schedule", "scheduleType", "manual",
				"nonBreakingSchemaUpdatesBehavior", "ignore", "namespaceDefinition",
				"destination", "namespaceFormat", "${SOURCE_NAMESPACE}", "prefix",
				"", "createdAt", (json_int_t)(tp_clock_now_ms() / 1000), "tags");
		{
			char *dflt = tp_sprintf("%s → %s", tp_json_get_str(src, "name"),
						tp_json_get_str(dst, "name"));
			json_object_set_new(raw, "name", json_string(dflt));
			free(dflt);
		}
		if (!json_object_get(rq->body, "configurations")) {
			json_t *all = expand_streams(src, NULL, out);
			if (!all) {
				json_decref(raw);
				return;
			}
			json_object_set_new(raw, "configurations",
					    json_pack("{s:o}", "streams", all));
		}
		if (!connection_apply(raw, rq->body, src, out)) {
			json_decref(raw);
			return;
		}
		store_put("connection", nid, raw);
		reply_json(out, 200, connection_view(raw));
		return;
	}
	if (!id) {
		fk_problem(out, 405, "%s is not allowed on /connections", rq->method);
		return;
	}
	if (!(raw = store_get("connection", id))) {
		fk_problem(out, 404, "connection %s was not found", id);
		return;
	}
	if (strcmp(rq->method, "GET") == 0) {
		reply_json(out, 200, connection_view(raw));
	} else if (strcmp(rq->method, "PATCH") == 0) {
		json_t *copy;
		if (fk_validate(rq->body, &fk_connection_patch, "", err, sizeof(err)) < 0) {
			fk_problem(out, 400, "%s", err);
			return;
		}
		if (strcmp(tp_json_get_str(raw, "status"), "locked") == 0) {
			fk_problem(out, 409, "connection %s is locked and cannot be updated", id);
			return;
		}
		/* all or nothing: apply to a copy */
		copy = json_deep_copy(raw);
		if (!connection_apply(copy, rq->body,
				      store_get("source", tp_json_get_str(raw, "sourceId")), out)) {
			json_decref(copy);
			return;
		}
		json_object_update(raw, copy);
		json_decref(copy);
		reply_json(out, 200, connection_view(raw));
	} else if (strcmp(rq->method, "DELETE") == 0) {
		json_object_set_new(raw, "_deleted", json_true());
		out->status = 204;
	} else {
		fk_problem(out, 405, "%s is not allowed on /connections/{connectionId}",
			   rq->method);
	}
}

/* ---------------------------------------------------------------- jobs */

static bool in_list(const char *const *list, const char *s)
{
	for (size_t i = 0; list[i]; i++)
		if (strcmp(list[i], s) == 0)
			return true;
	return false;
}

static json_t *job_view(json_t *raw)
{
	char start[40], upd[40];
	int64_t started = json_integer_value(json_object_get(raw, "_started_ms"));
	const char *status = tp_json_get_str(raw, "status");
	json_t *v;
	if (strcmp(status, "running") == 0 && tp_clock_now_ms() >= started + job_seconds * 1000) {
		json_object_set_new(raw, "status", json_string("succeeded"));
		json_object_set_new(raw, "_updated_ms", json_integer(started + job_seconds * 1000));
		json_object_set_new(raw, "rowsSynced", json_integer(42));
		json_object_set_new(raw, "bytesSynced", json_integer(4096));
	}
	iso_time(start, sizeof(start), started);
	iso_time(upd, sizeof(upd), json_integer_value(json_object_get(raw, "_updated_ms")));
	v = json_pack("{s:O,s:O,s:O,s:s,s:O,s:s}", "jobId", json_object_get(raw, "jobId"), "status",
		      json_object_get(raw, "status"), "jobType", json_object_get(raw, "jobType"),
		      "startTime", start, "connectionId", json_object_get(raw, "connectionId"),
		      "lastUpdatedAt", upd);
	if (json_object_get(raw, "rowsSynced")) {
		json_object_set(v, "rowsSynced", json_object_get(raw, "rowsSynced"));
		json_object_set(v, "bytesSynced", json_object_get(raw, "bytesSynced"));
	}
	return v;
}

static void jobs(const fk_request *rq, fk_reply *out, const char *id)
{
	static const char *const list_q[] = {"connectionId",   "limit",        "offset",
					     "jobType",        "workspaceIds", "status",
					     "createdAtStart", "createdAtEnd", "updatedAtStart",
					     "updatedAtEnd",   "orderBy",      NULL};
	static const char *const none[] = {NULL};
	char err[512], key[32];
	json_t *raw;

	if (!id && strcmp(rq->method, "GET") == 0) {
		json_t *ids = NULL, *items;
		long limit, offset;
		const char *conn = q1(rq, "connectionId"), *type = q1(rq, "jobType");
		const char *status = q1(rq, "status");
		size_t i;
		json_t *jid;
		if (!query_allowed(rq, out, list_q) || !q_workspaces(rq, out, &ids) ||
		    !q_int(rq, out, "limit", 20, 1, 100, &limit) ||
		    !q_int(rq, out, "offset", 0, 0, 1L << 30, &offset)) {
			json_decref(ids);
			return;
		}
		if ((type && !in_list(fk_job_types, type)) ||
		    (status && !in_list(fk_job_statuses, status))) {
			fk_problem(out, 400, "query parameter %s has an unknown value",
				   type && !in_list(fk_job_types, type) ? "jobType" : "status");
			json_decref(ids);
			return;
		}
		items = json_array();
		json_array_foreach(json_object_get(order, "job"), i, jid) {
			json_t *c;
			raw = json_object_get(objs, json_string_value(jid));
			c = json_object_get(objs, tp_json_get_str(raw, "connectionId"));
			if (conn && strcasecmp(conn, tp_json_get_str(raw, "connectionId")) != 0)
				continue;
			if (type && strcmp(type, tp_json_get_str(raw, "jobType")) != 0)
				continue;
			if (!id_in(ids, tp_json_get_str(c, "workspaceId")))
				continue;
			{
				json_t *view = job_view(raw);
				if (status && strcmp(status, tp_json_get_str(view, "status")) != 0)
					json_decref(view);
				else
					json_array_append_new(items, view);
			}
		}
		json_decref(ids);
		reply_page(rq, out, items, limit, offset);
		return;
	}
	if (!query_allowed(rq, out, none))
		return;
	if (!id && strcmp(rq->method, "POST") == 0) {
		json_t *conn;
		size_t i;
		json_t *jid;
		if (fk_validate(rq->body, &fk_job_create, "", err, sizeof(err)) < 0) {
			fk_problem(out, 400, "%s", err);
			return;
		}
		conn = store_get("connection", tp_json_get_str(rq->body, "connectionId"));
		if (!conn) {
			fk_problem(out, 404, "connection %s was not found",
				   tp_json_get_str(rq->body, "connectionId"));
			return;
		}
		json_array_foreach(json_object_get(order, "job"), i, jid) {
			json_t *j = json_object_get(objs, json_string_value(jid));
			json_t *view;
			if (strcmp(tp_json_get_str(j, "connectionId"),
				   tp_json_get_str(conn, "connectionId")) != 0)
				continue;
			view = job_view(j);
			if (strcmp(tp_json_get_str(view, "status"), "running") == 0) {
				json_decref(view);
				fk_problem(out, 409, "A sync is already running for connection %s",
					   tp_json_get_str(conn, "connectionId"));
				return;
			}
			json_decref(view);
		}
		snprintf(key, sizeof(key), "%lld", (long long)next_job);
		raw = json_pack("{s:I,s:s,s:O,s:O,s:I,s:I}", "jobId", (json_int_t)next_job++,
				"status", "running", "jobType",
				json_object_get(rq->body, "jobType"), "connectionId",
				json_object_get(conn, "connectionId"), "_started_ms",
				(json_int_t)tp_clock_now_ms(), "_updated_ms",
				(json_int_t)tp_clock_now_ms());
		store_put("job", key, raw);
		reply_json(out, 200, job_view(raw));
		return;
	}
	if (!id) {
		fk_problem(out, 405, "%s is not allowed on /jobs", rq->method);
		return;
	}
	if (strspn(id, "0123456789") != strlen(id) || !(raw = store_get("job", id))) {
		fk_problem(out, 404, "job %s was not found", id);
		return;
	}
	if (strcmp(rq->method, "GET") == 0) {
		reply_json(out, 200, job_view(raw));
	} else if (strcmp(rq->method, "DELETE") == 0) {
		json_t *view = job_view(raw);
		if (strcmp(tp_json_get_str(view, "status"), "running") != 0) {
			fk_problem(out, 409, "job %s is %s and cannot be cancelled", id,
				   tp_json_get_str(view, "status"));
			json_decref(view);
			return;
		}
		json_decref(view);
		json_object_set_new(raw, "status", json_string("cancelled"));
		json_object_set_new(raw, "_updated_ms", json_integer(tp_clock_now_ms()));
		reply_json(out, 200, job_view(raw));
	} else {
		fk_problem(out, 405, "%s is not allowed on /jobs/{jobId}", rq->method);
	}
}

/* ---------------------------------------------------------------- dispatch */

void fk_api_handle(const fk_request *rq, fk_reply *out)
{
	char top[32] = "", id[128] = "";
	const char *p = rq->path + 1, *slash = strchr(p, '/');
	size_t n = slash ? (size_t)(slash - p) : strlen(p);
	if (n >= sizeof(top) ||
	    (slash && (strlen(slash + 1) >= sizeof(id) || strchr(slash + 1, '/')))) {
		fk_problem(out, 404, "no such resource: %.200s", rq->path);
		return;
	}
	memcpy(top, p, n);
	top[n] = '\0';
	if (slash)
		snprintf(id, sizeof(id), "%s", slash + 1);
	if (slash && !id[0]) {
		fk_problem(out, 404, "no such resource: %.200s", rq->path);
		return;
	}
	if (id[0] && strcmp(top, "jobs") != 0 && !fk_is_uuid(id)) {
		fk_problem(out, 400, "%s: \"%.64s\" is not a uuid", top, id);
		return;
	}
	if (strcmp(top, "workspaces") == 0)
		workspaces(rq, out, id[0] ? id : NULL);
	else if (strcmp(top, "sources") == 0)
		actors(&source_role, rq, out, id[0] ? id : NULL);
	else if (strcmp(top, "destinations") == 0)
		actors(&destination_role, rq, out, id[0] ? id : NULL);
	else if (strcmp(top, "connections") == 0)
		connections(rq, out, id[0] ? id : NULL);
	else if (strcmp(top, "streams") == 0 && !id[0])
		streams_endpoint(rq, out);
	else if (strcmp(top, "jobs") == 0)
		jobs(rq, out, id[0] ? id : NULL);
	else
		fk_problem(out, 404, "no such resource: %.200s", rq->path);
}

/* ---------------------------------------------------------------- test control */

json_t *fk_api_raw(const char *id)
{
	json_t *o = id ? json_object_get(objs, id) : NULL;
	return o ? json_deep_copy(o) : NULL;
}

int fk_api_raw_patch(const char *id, const json_t *fields)
{
	json_t *o = id ? json_object_get(objs, id) : NULL;
	if (!o || !json_is_object(fields))
		return -1;
	deep_merge(o, fields);
	return 0;
}

static void redact_all(json_t *v)
{
	const char *k;
	json_t *c;
	size_t i;
	if (json_is_object(v)) {
		json_object_foreach(v, k, c) {
			if (json_is_string(c) && strcmp(json_string_value(c), FK_MASK) != 0)
				json_object_set_new(v, k, json_string("(secret)"));
			else
				redact_all(c);
		}
	} else if (json_is_array(v)) {
		json_array_foreach(v, i, c)
			redact_all(c);
	}
}

json_t *fk_api_redact_body(const char *path, const json_t *body)
{
	json_t *copy;
	json_t *conf;
	const fk_connector *c = NULL;
	bool source = strncmp(path, "/sources", 8) == 0;
	if (!body)
		return NULL;
	copy = json_deep_copy(body);
	if (strcmp(path, "/applications/token") == 0) {
		if (json_object_get(copy, "client_id"))
			json_object_set_new(copy, "client_id", json_string("(secret)"));
		if (json_object_get(copy, "client_secret"))
			json_object_set_new(copy, "client_secret", json_string("(secret)"));
		return copy;
	}
	if (!source && strncmp(path, "/destinations", 13) != 0)
		return copy;
	conf = json_object_get(copy, "configuration");
	if (!json_is_object(conf))
		return copy;
	{
		const char *slash = strchr(path + 1, '/');
		json_t *raw = slash ? json_object_get(objs, slash + 1) : NULL;
		const char *type =
			raw ? tp_json_get_str(raw, source ? "sourceType" : "destinationType")
			    : tp_json_get_str(conf, source ? "sourceType" : "destinationType");
		c = raw || type ? fk_connector_by_type(type, source) : NULL;
		if (!c && tp_json_get_str(copy, "definitionId"))
			c = fk_connector_by_definition(tp_json_get_str(copy, "definitionId"),
						       source);
	}
	if (!c) {
		/* unknown connector: nothing is known to be harmless */
		redact_all(conf);
		return copy;
	}
	/* every secret path sent with a real value reads "(secret)"; the mask sent as such
	 * stays "**********" (so a client that writes the mask back shows up) */
	for (size_t i = 0; c->secrets[i]; i++) {
		json_t *orig = dotted_get(
			json_object_get((json_t *)(uintptr_t)body, "configuration"), c->secrets[i]);
		if (json_is_string(orig) && strcmp(json_string_value(orig), FK_MASK) != 0) {
			char *p = tp_strdup(c->secrets[i]);
			char *dot = strrchr(p, '.');
			json_t *parent = conf;
			const char *leaf = p;
			if (dot) {
				*dot = '\0';
				parent = dotted_get(conf, p);
				leaf = dot + 1;
			}
			if (json_is_object(parent))
				json_object_set_new(parent, leaf, json_string("(secret)"));
			free(p);
		}
	}
	return copy;
}
