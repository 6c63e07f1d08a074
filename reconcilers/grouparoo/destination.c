/*
 * The grouparoo provider's runtime slots, part three: destinations, where records leave
 * Grouparoo (Mailchimp, a database table, ...). A destination is created ready in one call
 * (options, mapping, sync mode and the groups exported as lists or tags); which records it
 * exports (`collection` none, a group's members, or the whole model) is Grouparoo's
 * "tracking", set by an edit after the create, and undone with a forced delete if Grouparoo
 * refuses it. Deleting waits for Grouparoo's workers (they finish pending exports first) or,
 * with delete_mode force, removes the destination at once.
 */
#include "grouparoo_int.h"

#include <stdlib.h>
#include <string.h>

static json_t *memberships_to_spec(const json_t *dgm)
{
	json_t *out = json_array();
	size_t i;
	json_t *m;
	json_array_foreach(dgm, i, m) {
		json_t *o = json_object();
		tp_gr_copy(o, "group", m, "groupId");
		tp_gr_copy(o, "remote_key", m, "remoteKey");
		json_array_append_new(out, o);
	}
	return out;
}

/* Grouparoo takes group memberships as {groupId: remoteKey}. */
static json_t *memberships_to_api(const json_t *dgm)
{
	json_t *out = json_object();
	size_t i;
	json_t *m;
	json_array_foreach(dgm, i, m) {
		const char *g = tp_json_get_str(m, "group");
		json_t *key = json_object_get(m, "remote_key");
		if (g && key)
			json_object_set(out, g, key);
	}
	return out;
}

static json_t *destination_to_spec(const json_t *obj)
{
	json_t *spec = json_object();
	json_t *dgm = json_object_get(obj, "destinationGroupMemberships");
	const char *coll = tp_json_get_str(obj, "collection");
	tp_gr_copy(spec, "name", obj, "name");
	tp_gr_copy(spec, "app", json_object_get(obj, "app"), "id");
	tp_gr_copy(spec, "model", obj, "modelId");
	tp_gr_copy(spec, "type", obj, "type");
	tp_gr_copy(spec, "sync_mode", obj, "syncMode");
	tp_gr_copy_object(spec, "options", obj, "options");
	tp_gr_copy_object(spec, "mapping", obj, "mapping");
	tp_gr_copy(spec, "collection", obj, "collection");
	if (coll && strcmp(coll, "group") == 0)
		tp_gr_copy(spec, "group", json_object_get(obj, "group"), "id");
	if (json_array_size(dgm) > 0)
		json_object_set_new(spec, "destination_group_memberships",
				    memberships_to_spec(dgm));
	return spec;
}

static json_t *destination_create_body(const json_t *spec)
{
	json_t *b = json_pack("{s:s?,s:s?,s:s?,s:s?,s:o,s:o,s:o,s:s}", "name",
			      tp_json_get_str(spec, "name"), "type",
			      tp_json_get_str(spec, "type"), "modelId",
			      tp_json_get_str(spec, "model"), "appId", tp_json_get_str(spec, "app"),
			      "options", tp_gr_object_or_empty(spec, "options"), "mapping",
			      tp_gr_object_or_empty(spec, "mapping"), "destinationGroupMemberships",
			      memberships_to_api(json_object_get(spec,
								 "destination_group_memberships")),
			      "state", "ready");
	tp_gr_copy(b, "syncMode", spec, "sync_mode");
	return b;
}

/* {collection, groupId}: what Grouparoo calls tracking. */
static json_t *tracking_body(const json_t *spec)
{
	const char *coll = tp_json_get_str(spec, "collection");
	const char *group = tp_json_get_str(spec, "group");
	return json_pack("{s:s,s:s?}", "collection", coll ? coll : "none", "groupId", group);
}

static bool tracking_changed(const json_t *want, const json_t *live)
{
	return tp_gr_field_changed(want, live, "collection") ||
	       tp_gr_field_changed(want, live, "group");
}

static json_t *destination_update_body(const json_t *want, const json_t *live,
				       const json_t *applied, const json_t *obj)
{
	json_t *body = json_object();
	(void)obj;
	if (tp_gr_field_changed(want, live, "name"))
		json_object_set(body, "name", json_object_get(want, "name"));
	if (json_object_get(want, "sync_mode") && tp_gr_field_changed(want, live, "sync_mode"))
		json_object_set(body, "syncMode", json_object_get(want, "sync_mode"));
	if (tp_gr_map_changed(json_object_get(want, "options"), json_object_get(live, "options"),
			      json_object_get(applied, "options")))
		json_object_set_new(body, "options", tp_gr_object_or_empty(want, "options"));
	if (tp_gr_field_changed(want, live, "mapping"))
		json_object_set_new(body, "mapping", tp_gr_object_or_empty(want, "mapping"));
	if (tp_gr_field_changed(want, live, "destination_group_memberships"))
		json_object_set_new(body, "destinationGroupMemberships",
				    memberships_to_api(json_object_get(
					    want, "destination_group_memberships")));
	if (tracking_changed(want, live)) {
		json_t *t = tracking_body(want);
		json_object_update(body, t);
		json_decref(t);
	}
	return body;
}

static bool destination_adoptable(const json_t *obj, const json_t *spec)
{
	const char *a = tp_json_get_str(json_object_get(obj, "app"), "id");
	const char *m = tp_json_get_str(obj, "modelId"), *t = tp_json_get_str(obj, "type");
	const char *sa = tp_json_get_str(spec, "app"), *sm = tp_json_get_str(spec, "model");
	const char *st = tp_json_get_str(spec, "type");
	return a && m && t && sa && sm && st && strcmp(a, sa) == 0 && strcmp(m, sm) == 0 &&
	       strcmp(t, st) == 0;
}

static const tp_gr_kind gr_destination = {
	.kind = "grouparoo.destination",
	.what = "destination",
	.collection = "destinations",
	.name_key = "name",
	.spec_name = "name",
	.async_delete = true,
	.to_spec = destination_to_spec,
	.create_body = destination_create_body,
	.update_body = destination_update_body,
	.adoptable = destination_adoptable,
};

int tp_gr_destination_create(void *session, const tp_op *op, tp_op_result *out)
{
	tp_gr_session *s = session;
	const char *coll = tp_json_get_str(op->spec, "collection");
	json_t *track = NULL, *reply = NULL, *obj = NULL;
	char *path = NULL;
	int rc;

	/* the create itself: one call, all or nothing in Grouparoo */
	if ((rc = tp_gr_create(s, &gr_destination, op, out)) < 0)
		return rc;
	if (!coll || strcmp(coll, "none") == 0)
		return 0;
	/* then what it exports; an edit of its own in Grouparoo. Already so when the create
	 * took up an earlier attempt's destination (tp_gr_create brought it to the spec). */
	path = tp_sprintf("/destination/%s", out->provider_id);
	if ((rc = tp_gr_call(s, &reply, op->address, "GET", path, NULL, NULL)) < 0)
		goto done;
	obj = json_object_get(reply, "destination");
	{
		json_t *live = tp_gr_live_spec(&gr_destination, obj);
		bool changed = tracking_changed(op->spec, live);
		json_decref(live);
		if (!changed)
			goto done;
	}
	track = tracking_body(op->spec);
	rc = tp_gr_call(s, NULL, op->address, "PUT", path, track, NULL);
	if (rc < 0 && rc != TP_ETRANSIENT && rc != TP_ETHROTTLED) {
		/* refused: remove the destination just made (nothing was exported yet) */
		char *why = tp_strdup(tp_error_last());
		char *del = tp_sprintf("/destination/%s?force=true", out->provider_id);
		int crc = tp_gr_call(s, NULL, op->address, "DELETE", del, NULL, NULL);
		if (crc < 0 && crc != TP_ENOTFOUND) {
			char *cleanup = tp_strdup(tp_error_last());
			tp_error_set(rc, "%s (and removing the destination %s just made failed: %s)",
				     why, out->provider_id, cleanup);
			free(cleanup);
		} else {
			tp_error_set(rc, "%s", why);
		}
		free(del);
		free(why);
	}
done:
	json_decref(track);
	json_decref(reply);
	free(path);
	return rc;
}

int tp_gr_destination_observe(void *s, const tp_op *ops, size_t n, json_t **out)
{
	return tp_gr_observe(s, &gr_destination, ops, n, out);
}

int tp_gr_destination_update(void *s, const tp_op *op, tp_op_result *out)
{
	return tp_gr_update(s, &gr_destination, op, out);
}

int tp_gr_destination_remove(void *s, const tp_op *op)
{
	return tp_gr_remove(s, &gr_destination, op);
}

int tp_gr_destination_adopt(void *s, const tp_op *op, tp_op_result *out)
{
	return tp_gr_adopt(s, &gr_destination, op, out);
}
