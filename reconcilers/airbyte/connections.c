/*
 * Runtime slots of airbyte.connection: which streams of a source sync to a destination, and
 * when. A connection belongs to its source's workspace; it is identified by its name together
 * with its source and destination (the API has no other marker), the same way adopt finds a
 * connection an interrupted create left behind.
 *
 * Stream names are validated against the source's discovered catalog before any write, from
 * the session's cache (tp_ab_session_catalog); a stream the cached catalog lacks triggers one
 * fresh discovery before the change is refused, since a catalog can grow after it was cached.
 * Updates PATCH every field the spec sets: the API has no PUT for connections, PATCH with
 * unchanged values changes nothing, and this also corrects drift when the plan asks for it.
 */
#include "airbyte_int.h"

#include <stdlib.h>
#include <string.h>

static int source_workspace(tp_ab_session *s, const char *address, const char *source_id,
			    char **out)
{
	json_t *src = NULL;
	char *path;
	int rc;
	*out = NULL;
	if (!tp_ab_is_uuid(source_id))
		return tp_error_set(TP_EINVALID, "%s: source \"%s\" is not an Airbyte source id",
				    address, tp_ab_or(source_id, ""));
	path = tp_sprintf("/sources/%s", source_id);
	rc = tp_ab_call(s->client, &src, "GET", path, NULL, NULL);
	free(path);
	if (rc == TP_ENOTFOUND) {
		char *m = tp_strdup(tp_error_last());
		rc = tp_error_set(rc, "%s: its source %s does not exist (%s)", address, source_id,
				  m);
		free(m);
	}
	if (rc == 0 && !tp_json_get_str(src, "workspaceId"))
		rc = tp_error_set(TP_EINVALID, "%s: source %s has no workspaceId", address,
				  source_id);
	if (rc == 0)
		*out = tp_strdup(tp_json_get_str(src, "workspaceId"));
	tp_ab_json_wipe(src);
	json_decref(src);
	return rc;
}

/* The streams of the spec exist in the source's catalog with the sync modes asked for. */
static int check_streams(tp_ab_session *s, const tp_op *op)
{
	const json_t *streams = json_object_get(op->spec, "streams");
	const char *source = tp_json_get_str(op->spec, "source");
	json_t *cat = NULL, *fresh = NULL;
	int rc;

	if (json_array_size(streams) == 0 || !source)
		return 0;
	if ((rc = tp_ab_session_catalog(s, &cat, source, false)) < 0)
		return rc;
	rc = tp_ab_streams_check(cat, streams, op->address);
	if (rc == TP_EINVALID) {
		/* the cached catalog may be older than the stream: discover once more */
		char *why = tp_strdup(tp_error_last());
		if (tp_ab_session_catalog(s, &fresh, source, true) == 0)
			rc = tp_ab_streams_check(fresh, streams, op->address);
		else
			rc = tp_error_set(TP_EINVALID, "%s", why);
		free(why);
	}
	json_decref(cat);
	json_decref(fresh);
	return rc;
}

static int fill_result(const json_t *obj, const char *name, tp_op_result *out)
{
	const char *id = tp_json_get_str(obj, "connectionId");
	if (!id || !tp_ab_is_uuid(id))
		return tp_error_set(TP_EINVALID, "airbyte: the connection answered has no "
						 "connectionId");
	out->outputs = tp_ab_outputs(id, name ? name : tp_json_get_str(obj, "name"));
	out->provider_id = tp_strdup(json_string_value(json_object_get(out->outputs, "id")));
	return 0;
}

static int find_matching(tp_ab_session *s, const json_t *spec, const char *ws, json_t **out)
{
	json_t *all = NULL, *hits = json_array();
	char *q = tp_sprintf("workspaceIds=%s", ws);
	size_t i;
	json_t *c;
	int rc = tp_ab_list(s->client, &all, "/connections", q);
	free(q);
	*out = NULL;
	if (rc < 0) {
		json_decref(hits);
		return rc;
	}
	json_array_foreach(all, i, c)
		if (tp_ab_connection_matches(spec, c))
			json_array_append(hits, c);
	json_decref(all);
	*out = hits;
	return 0;
}

int tp_ab_connection_observe(void *session, const tp_op *ops, size_t n, json_t **out)
{
	tp_ab_session *s = session;
	json_t *all = NULL;
	int rc;

	for (size_t i = 0; i < n; i++)
		out[i] = NULL;
	/* one list of every connection the credentials can see; ids missing from it are
	 * fetched one by one (404: deleted) */
	if ((rc = tp_ab_list(s->client, &all, "/connections", NULL)) < 0)
		return rc;
	for (size_t i = 0; i < n; i++) {
		const tp_op *op = &ops[i];
		json_t *obj = NULL, *fetched = NULL;
		size_t k;
		json_t *c;
		if (!op->provider_id)
			continue;
		json_array_foreach(all, k, c)
			if (!obj &&
			    tp_ab_id_equal(tp_json_get_str(c, "connectionId"), op->provider_id))
				obj = c;
		if (!obj) {
			char *path = tp_sprintf("/connections/%s", op->provider_id);
			rc = tp_ab_call(s->client, &fetched, "GET", path, NULL, NULL);
			free(path);
			if (rc == TP_ENOTFOUND) {
				rc = 0;
				tp_error_clear();
				continue;
			}
			if (rc < 0)
				break;
			obj = fetched;
		}
		out[i] = tp_ab_connection_observed(obj, op->applied);
		json_decref(fetched);
	}
	if (rc < 0)
		for (size_t i = 0; i < n; i++) {
			json_decref(out[i]);
			out[i] = NULL;
		}
	json_decref(all);
	return rc;
}

int tp_ab_connection_create(void *session, const tp_op *op, tp_op_result *out)
{
	tp_ab_session *s = session;
	char *ws = NULL;
	json_t *hits = NULL, *body = NULL, *resp = NULL;
	int rc;

	if ((rc = source_workspace(s, op->address, tp_json_get_str(op->spec, "source"), &ws)) < 0)
		goto done;
	if ((rc = check_streams(s, op)) < 0)
		goto done;
	if ((rc = find_matching(s, op->spec, ws, &hits)) < 0)
		goto done;
	if (json_array_size(hits) > 0) {
		json_t *h = json_array_get(hits, 0);
		if (json_array_size(hits) == 1 && tp_ab_attempted(s, op->token)) {
			rc = fill_result(h, tp_json_get_str(op->spec, "name"), out);
			goto done;
		}
		rc = tp_error_set(
			TP_EEXISTS,
			"%s: a connection named \"%s\" (connectionId %s) between the same "
			"source and destination already exists, and Tapestry did not "
			"create it; Tapestry does not take over objects it did not create: "
			"rename or delete it in Airbyte, or give the resource another name",
			op->address, tp_json_get_str(op->spec, "name"),
			tp_ab_or(tp_json_get_str(h, "connectionId"), "?"));
		goto done;
	}
	body = tp_ab_connection_body(op->spec, true);
	tp_ab_mark_attempted(s, op->token);
	if ((rc = tp_ab_call(s->client, &resp, "POST", "/connections", NULL, body)) < 0)
		goto done;
	rc = fill_result(resp, tp_json_get_str(op->spec, "name"), out);
done:
	json_decref(body);
	json_decref(resp);
	json_decref(hits);
	free(ws);
	return rc;
}

int tp_ab_connection_update(void *session, const tp_op *op, tp_op_result *out)
{
	tp_ab_session *s = session;
	json_t *body = NULL, *resp = NULL;
	char *path = NULL;
	int rc;

	if (!op->provider_id)
		return tp_error_set(TP_EINVALID, "%s: no connection id recorded", op->address);
	if ((rc = check_streams(s, op)) < 0)
		return rc;
	body = tp_ab_connection_body(op->spec, false);
	path = tp_sprintf("/connections/%s", op->provider_id);
	rc = tp_ab_call(s->client, &resp, "PATCH", path, NULL, body);
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
	json_decref(body);
	json_decref(resp);
	free(path);
	return rc;
}

int tp_ab_connection_remove(void *session, const tp_op *op)
{
	tp_ab_session *s = session;
	char *path;
	int rc;
	if (!op->provider_id)
		return 0;
	path = tp_sprintf("/connections/%s", op->provider_id);
	rc = tp_ab_call(s->client, NULL, "DELETE", path, NULL, NULL);
	free(path);
	if (rc == TP_ENOTFOUND) {
		rc = 0; /* already gone (deleting its source took it along) */
		tp_error_clear();
	}
	return rc;
}

int tp_ab_connection_adopt(void *session, const tp_op *op, tp_op_result *out)
{
	tp_ab_session *s = session;
	const json_t *spec = op->spec ? op->spec : op->applied;
	json_t *hits = NULL;
	char *ws = NULL;
	int rc;

	if (!spec || !tp_json_get_str(spec, "name"))
		return tp_error_set(TP_ENOTFOUND, "%s: nothing to adopt (no name recorded)",
				    op->address);
	if ((rc = source_workspace(s, op->address, tp_json_get_str(spec, "source"), &ws)) < 0)
		goto done;
	if ((rc = find_matching(s, spec, ws, &hits)) < 0)
		goto done;
	if (json_array_size(hits) == 0)
		rc = tp_error_set(TP_ENOTFOUND,
				  "%s: no connection named \"%s\" between its "
				  "source and destination",
				  op->address, tp_json_get_str(spec, "name"));
	else if (json_array_size(hits) > 1)
		rc = tp_error_set(TP_ECONFLICT,
				  "%s: %zu connections are named \"%s\" between its "
				  "source and destination; cannot tell which one "
				  "Tapestry created",
				  op->address, json_array_size(hits),
				  tp_json_get_str(spec, "name"));
	else
		rc = fill_result(json_array_get(hits, 0), tp_json_get_str(spec, "name"), out);
done:
	json_decref(hits);
	free(ws);
	return rc;
}
