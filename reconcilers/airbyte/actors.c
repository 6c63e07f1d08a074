/*
 * Runtime slots of airbyte.source and airbyte.destination (one implementation, two roles):
 * the engine's observe/create/update/remove/adopt calls turned into public API requests.
 *
 * Ownership: Airbyte has no tags or comments on sources and destinations, so the marker is
 * the name within the workspace (with the connector as part of the identity). A create first
 * looks for an object of that name: one left by an earlier attempt of the same create (an
 * engine retry after its answer was lost) is taken; any other is refused, never taken over.
 * adopt (recovery of a create interrupted by a crash) finds the object the same way and
 * refuses to guess when several match.
 *
 * Deleting a source or destination deletes its connections too (the API soft-deletes them):
 * remove refuses while any connection still uses it, so that nothing disappears that the plan
 * did not show — connections managed by Tapestry are deleted first by the plan's order.
 */
#include "airbyte_int.h"

#include <stdlib.h>
#include <string.h>

/*
 * The secret hashes state recorded at the last apply ({spec path: hex HMAC}), which say
 * which secrets changed. The engine does not pass them to slots yet (tp_op has no field for
 * them): until it does, every secret counts as changed and an update sends them all.
 */
static const json_t *recorded_hashes(const tp_op *op)
{
	return op->secret_hashes;
}

static void release(json_t *v)
{
	tp_ab_json_wipe(v);
	json_decref(v);
}

static char *workspace_query(const char *ws)
{
	return tp_sprintf("workspaceIds=%s", ws);
}

/* The objects in workspace ws that the spec describes (name and connector): from the
 * session's view of the collection (listed once per session), or listed again with fresh (an
 * adoption, or a create sent before whose answer was lost). *out: new array. */
static int find_matching(tp_ab_session *s, const tp_ab_actor *a, const json_t *spec, const char *ws,
			 bool fresh, json_t **out)
{
	json_t *all = NULL, *hits = json_array();
	size_t i;
	json_t *o;
	int rc = tp_ab_session_listed(s, &all, a->collection, ws, a->id_key, a->type_key, fresh);
	*out = NULL;
	if (rc < 0) {
		json_decref(hits);
		return rc;
	}
	json_array_foreach(all, i, o)
		if (tp_ab_actor_matches(a, spec, o))
			json_array_append(hits, o);
	json_decref(all);
	*out = hits;
	return 0;
}

static int fill_result(const tp_ab_actor *a, const json_t *obj, const char *name, tp_op_result *out)
{
	const char *id = tp_json_get_str(obj, a->id_key);
	if (!id || !tp_ab_is_uuid(id))
		return tp_error_set(TP_EINVALID, "airbyte: the %s answered has no %s", a->noun,
				    a->id_key);
	out->outputs = tp_ab_outputs(id, name ? name : tp_json_get_str(obj, "name"));
	out->provider_id = tp_strdup(json_string_value(json_object_get(out->outputs, "id")));
	return 0;
}

/* ---------------------------------------------------------------- observe */

static int actor_observe(const tp_ab_actor *a, void *session, const tp_op *ops, size_t n,
			 json_t **out)
{
	tp_ab_session *s = session;
	char **resolved = tp_calloc(n ? n : 1, sizeof(char *));
	json_t *wsids = json_array(), *all = NULL;
	int rc = 0;

	for (size_t i = 0; i < n; i++)
		out[i] = NULL;
	for (size_t i = 0; i < n; i++) {
		const char *written = tp_json_get_str(ops[i].applied, "workspace");
		/* a workspace that cannot be resolved (renamed, deleted) is not fatal: the
		 * objects are then fetched one by one; failing to ask is */
		rc = tp_ab_workspace_id(s, &resolved[i], written);
		if (rc == TP_ENOTFOUND || rc == TP_ECONFLICT) {
			rc = 0;
			tp_error_clear();
			continue;
		}
		if (rc < 0)
			goto done;
		{
			bool have = false;
			size_t k;
			json_t *w;
			json_array_foreach(wsids, k, w)
				have = have || strcmp(json_string_value(w), resolved[i]) == 0;
			if (!have)
				json_array_append_new(wsids, json_string(resolved[i]));
		}
	}
	if (json_array_size(wsids) > 0) {
		tp_buf q;
		size_t k;
		json_t *w;
		tp_buf_init(&q, 1 << 16);
		tp_buf_puts(&q, "workspaceIds=");
		json_array_foreach(wsids, k, w)
			tp_buf_printf(&q, "%s%s", k ? "," : "", json_string_value(w));
		rc = tp_ab_list(s->client, &all, a->collection, tp_buf_cstr(&q));
		tp_buf_free(&q);
		if (rc < 0)
			goto done;
	}
	for (size_t i = 0; i < n; i++) {
		const tp_op *op = &ops[i];
		const char *written = tp_json_get_str(op->applied, "workspace");
		json_t *obj = NULL, *fetched = NULL;
		size_t k;
		json_t *o;
		if (!op->provider_id)
			continue;
		json_array_foreach(all, k, o)
			if (!obj && tp_ab_id_equal(tp_json_get_str(o, a->id_key), op->provider_id))
				obj = o;
		if (!obj) {
			char *path = tp_sprintf("%s/%s", a->collection, op->provider_id);
			rc = tp_ab_call(s->client, &fetched, "GET", path, NULL, NULL);
			free(path);
			if (rc == TP_ENOTFOUND) {
				rc = 0; /* deleted behind Tapestry's back: the plan creates it */
				tp_error_clear();
				continue;
			}
			if (rc < 0)
				goto done;
			obj = fetched;
		}
		out[i] = tp_ab_actor_observed(
			a, op, obj,
			written && resolved[i] &&
					tp_ab_id_equal(resolved[i],
						       tp_json_get_str(obj, "workspaceId"))
				? written
				: NULL);
		release(fetched);
	}
done:
	if (rc < 0) {
		for (size_t i = 0; i < n; i++) {
			json_decref(out[i]);
			out[i] = NULL;
		}
	}
	for (size_t i = 0; i < n; i++)
		free(resolved[i]);
	free(resolved);
	release(all);
	json_decref(wsids);
	return rc;
}

/* ---------------------------------------------------------------- create, update */

static int actor_create(const tp_ab_actor *a, void *session, const tp_op *op, tp_op_result *out)
{
	tp_ab_session *s = session;
	char *ws = NULL;
	json_t *hits = NULL, *body = NULL, *resp = NULL;
	int rc;

	if ((rc = tp_ab_workspace_id(s, &ws, tp_json_get_str(op->spec, "workspace"))) < 0)
		goto done;
	if ((rc = find_matching(s, a, op->spec, ws, tp_ab_attempted(s, op->token), &hits)) < 0)
		goto done;
	if (json_array_size(hits) > 0) {
		json_t *h = json_array_get(hits, 0);
		if (json_array_size(hits) == 1 && tp_ab_attempted(s, op->token)) {
			/* our own earlier attempt made it; its answer was lost */
			rc = fill_result(a, h, tp_json_get_str(op->spec, "name"), out);
			goto done;
		}
		rc = tp_error_set(TP_EEXISTS,
				  "%s: a %s named \"%s\" (%s %s) already exists in workspace %s, "
				  "and Tapestry did not create it; Tapestry does not take over "
				  "objects it did not create: rename or delete it in Airbyte, or "
				  "give the resource another name",
				  op->address, a->noun, tp_json_get_str(op->spec, "name"),
				  a->id_key, tp_ab_or(tp_json_get_str(h, a->id_key), "?"), ws);
		goto done;
	}
	body = tp_ab_actor_create_body(a, op->spec, ws);
	tp_ab_mark_attempted(s, op->token);
	if ((rc = tp_ab_call(s->client, &resp, "POST", a->collection, NULL, body)) < 0)
		goto done;
	rc = fill_result(a, resp, tp_json_get_str(op->spec, "name"), out);
	if (rc == 0)
		tp_ab_session_note(s, a->collection, ws, a->id_key, a->type_key, resp);
done:
	release(body);
	release(resp);
	release(hits);
	free(ws);
	return rc;
}

static int actor_update(const tp_ab_actor *a, void *session, const tp_op *op, tp_op_result *out)
{
	tp_ab_session *s = session;
	const char *method = "PATCH";
	json_t *body = NULL, *resp = NULL;
	char *path = NULL;
	int rc;

	if (!op->provider_id)
		return tp_error_set(TP_EINVALID, "%s: no %s id recorded", op->address, a->noun);
	body = tp_ab_actor_update_body(a, op, recorded_hashes(op), &method);
	path = tp_sprintf("%s/%s", a->collection, op->provider_id);
	rc = tp_ab_call(s->client, &resp, method, path, NULL, body);
	if (rc == TP_ENOTFOUND) {
		char *m = tp_strdup(tp_error_last());
		rc = tp_error_set(rc, "%s: %s (deleted outside Tapestry: plan again to create it)",
				  op->address, m);
		free(m);
	}
	if (rc == 0) {
		out->provider_id = tp_strdup(op->provider_id);
		out->outputs = tp_ab_outputs(op->provider_id, tp_json_get_str(op->spec, "name"));
	}
	release(body);
	release(resp);
	free(path);
	return rc;
}

/* ---------------------------------------------------------------- remove, adopt */

static int actor_remove(const tp_ab_actor *a, void *session, const tp_op *op)
{
	tp_ab_session *s = session;
	json_t *obj = NULL, *conns = NULL;
	char *path = NULL, *q = NULL;
	const char *ref_key = a->role == TP_AB_SOURCE ? "sourceId" : "destinationId";
	tp_buf names;
	size_t i, users = 0;
	json_t *c;
	int rc;

	if (!op->provider_id)
		return 0;
	tp_buf_init(&names, 4096);
	path = tp_sprintf("%s/%s", a->collection, op->provider_id);
	rc = tp_ab_call(s->client, &obj, "GET", path, NULL, NULL);
	if (rc == TP_ENOTFOUND) {
		rc = 0; /* already gone */
		tp_error_clear();
		goto done;
	}
	if (rc < 0)
		goto done;
	q = workspace_query(tp_ab_or(tp_json_get_str(obj, "workspaceId"), ""));
	if ((rc = tp_ab_list(s->client, &conns, "/connections", q)) < 0)
		goto done;
	json_array_foreach(conns, i, c) {
		if (!tp_ab_id_equal(tp_json_get_str(c, ref_key), op->provider_id))
			continue;
		if (users++ < 5)
			tp_buf_printf(&names, "%s\"%s\" (%s)", users > 1 ? ", " : "",
				      tp_ab_or(tp_json_get_str(c, "name"), "?"),
				      tp_ab_or(tp_json_get_str(c, "connectionId"), "?"));
	}
	if (users > 0) {
		rc = tp_error_set(TP_ECONFLICT,
				  "%s: %zu connection%s still use%s this %s: %s%s; deleting the %s "
				  "would delete them too. Remove them from Git in the same change "
				  "(the plan then deletes them first), or delete them in Airbyte",
				  op->address, users, users == 1 ? "" : "s", users == 1 ? "s" : "",
				  a->noun, tp_buf_cstr(&names), users > 5 ? ", ..." : "", a->noun);
		goto done;
	}
	rc = tp_ab_call(s->client, NULL, "DELETE", path, NULL, NULL);
	if (rc == TP_ENOTFOUND) {
		rc = 0;
		tp_error_clear();
	}
done:
	tp_buf_free(&names);
	release(obj);
	json_decref(conns);
	free(path);
	free(q);
	return rc;
}

static int actor_adopt(const tp_ab_actor *a, void *session, const tp_op *op, tp_op_result *out)
{
	tp_ab_session *s = session;
	const json_t *spec = op->spec ? op->spec : op->applied;
	json_t *hits = NULL;
	char *ws = NULL;
	int rc;

	if (!spec || !tp_json_get_str(spec, "name"))
		return tp_error_set(TP_ENOTFOUND, "%s: nothing to adopt (no name recorded)",
				    op->address);
	if ((rc = tp_ab_workspace_id(s, &ws, tp_json_get_str(spec, "workspace"))) < 0)
		goto done;
	if ((rc = find_matching(s, a, spec, ws, true, &hits)) < 0)
		goto done;
	if (json_array_size(hits) == 0)
		rc = tp_error_set(TP_ENOTFOUND, "%s: no %s named \"%s\" in workspace %s",
				  op->address, a->noun, tp_json_get_str(spec, "name"), ws);
	else if (json_array_size(hits) > 1)
		rc = tp_error_set(TP_ECONFLICT,
				  "%s: %zu %ss are named \"%s\" in workspace %s; "
				  "cannot tell which one Tapestry created",
				  op->address, json_array_size(hits), a->noun,
				  tp_json_get_str(spec, "name"), ws);
	else
		rc = fill_result(a, json_array_get(hits, 0), tp_json_get_str(spec, "name"), out);
done:
	release(hits);
	free(ws);
	return rc;
}

/* ---------------------------------------------------------------- the slots */

int tp_ab_source_observe(void *session, const tp_op *ops, size_t n, json_t **out)
{
	return actor_observe(&tp_ab_source, session, ops, n, out);
}

int tp_ab_source_create(void *session, const tp_op *op, tp_op_result *out)
{
	return actor_create(&tp_ab_source, session, op, out);
}

int tp_ab_source_update(void *session, const tp_op *op, tp_op_result *out)
{
	return actor_update(&tp_ab_source, session, op, out);
}

int tp_ab_source_remove(void *session, const tp_op *op)
{
	return actor_remove(&tp_ab_source, session, op);
}

int tp_ab_source_adopt(void *session, const tp_op *op, tp_op_result *out)
{
	return actor_adopt(&tp_ab_source, session, op, out);
}

int tp_ab_destination_observe(void *session, const tp_op *ops, size_t n, json_t **out)
{
	return actor_observe(&tp_ab_destination, session, ops, n, out);
}

int tp_ab_destination_create(void *session, const tp_op *op, tp_op_result *out)
{
	return actor_create(&tp_ab_destination, session, op, out);
}

int tp_ab_destination_update(void *session, const tp_op *op, tp_op_result *out)
{
	return actor_update(&tp_ab_destination, session, op, out);
}

int tp_ab_destination_remove(void *session, const tp_op *op)
{
	return actor_remove(&tp_ab_destination, session, op);
}

int tp_ab_destination_adopt(void *session, const tp_op *op, tp_op_result *out)
{
	return actor_adopt(&tp_ab_destination, session, op, out);
}
