/*
 * The grouparoo provider's runtime slots, part two: sources and properties, the two kinds
 * tied together by Grouparoo's bootstrap. A new source is a draft until its mapping names a
 * unique property; that property usually reads from the source itself, so it cannot exist
 * first. Tapestry does the sequence the Grouparoo UI walks a user through: create the draft,
 * bootstrap the unique property the mapping names (when no property has that key yet), set
 * the mapping and make the source ready, then add its schedule. The property resource of the
 * same key later takes that bootstrapped property up and brings it to its spec. A failure
 * part-way removes what the sequence made, so a refused source leaves nothing behind.
 */
#include "grouparoo_int.h"

#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- spec shapes */

static json_t *filters_to_spec(const json_t *filters)
{
	json_t *out = json_array();
	size_t i;
	json_t *f;
	json_array_foreach(filters, i, f) {
		json_t *o = json_object();
		tp_gr_copy(o, "key", f, "key");
		tp_gr_copy(o, "op", f, "op");
		tp_gr_copy(o, "match", f, "match");
		json_array_append_new(out, o);
	}
	return out;
}

/* Spec filters are already in Grouparoo's shape ({key, op, match}). */
static json_t *filters_to_api(const json_t *filters)
{
	return json_is_array(filters) ? json_deep_copy(filters) : json_array();
}

static json_t *schedule_to_spec(const json_t *sched)
{
	json_t *o = json_object();
	json_t *filters = json_object_get(sched, "filters");
	json_int_t freq = json_integer_value(json_object_get(sched, "recurringFrequency"));
	tp_gr_copy(o, "recurring", sched, "recurring");
	if (freq > 0) {
		char text[32];
		snprintf(text, sizeof(text), "%lldms", (long long)freq);
		json_object_set_new(o, "frequency", json_string(text));
	}
	tp_gr_copy(o, "incremental", sched, "incremental");
	tp_gr_copy(o, "confirm_records", sched, "confirmRecords");
	tp_gr_copy(o, "refresh_enabled", sched, "refreshEnabled");
	tp_gr_copy_object(o, "options", sched, "options");
	if (json_array_size(filters) > 0)
		json_object_set_new(o, "filters", filters_to_spec(filters));
	return o;
}

static json_t *schedule_body(const json_t *sched, const char *source_id, const char *name)
{
	json_t *b = json_object();
	const char *freq = tp_json_get_str(sched, "frequency");
	int64_t ms = 0;
	bool recurring = !json_is_false(json_object_get(sched, "recurring"));
	if (source_id)
		json_object_set_new(b, "sourceId", json_string(source_id));
	if (name)
		json_object_set_new(b, "name", json_string(name));
	json_object_set_new(b, "recurring", json_boolean(recurring));
	if (recurring && freq && tp_duration_parse(&ms, freq) == 0)
		json_object_set_new(b, "recurringFrequency", json_integer(ms));
	tp_gr_copy(b, "incremental", sched, "incremental");
	tp_gr_copy(b, "confirmRecords", sched, "confirm_records");
	tp_gr_copy(b, "refreshEnabled", sched, "refresh_enabled");
	json_object_set_new(b, "options", tp_gr_object_or_empty(sched, "options"));
	json_object_set_new(b, "filters", filters_to_api(json_object_get(sched, "filters")));
	json_object_set_new(b, "state", json_string("ready"));
	return b;
}

static json_t *source_to_spec(const json_t *obj)
{
	json_t *spec = json_object();
	json_t *sched = json_object_get(obj, "schedule");
	tp_gr_copy(spec, "name", obj, "name");
	tp_gr_copy(spec, "app", obj, "appId");
	tp_gr_copy(spec, "model", obj, "modelId");
	tp_gr_copy(spec, "type", obj, "type");
	tp_gr_copy_object(spec, "options", obj, "options");
	tp_gr_copy_object(spec, "mapping", obj, "mapping");
	if (json_is_object(sched))
		json_object_set_new(spec, "schedule", schedule_to_spec(sched));
	return spec;
}

static bool same_identity(const json_t *obj, const json_t *spec)
{
	const char *a = tp_json_get_str(obj, "appId"), *m = tp_json_get_str(obj, "modelId");
	const char *t = tp_json_get_str(obj, "type");
	const char *sa = tp_json_get_str(spec, "app"), *sm = tp_json_get_str(spec, "model");
	const char *st = tp_json_get_str(spec, "type");
	return a && m && t && sa && sm && st && strcmp(a, sa) == 0 && strcmp(m, sm) == 0 &&
	       strcmp(t, st) == 0;
}

static bool source_draft(const json_t *obj)
{
	const char *st = tp_json_get_str(obj, "state");
	return st && strcmp(st, "draft") == 0;
}

/* A draft source of the same app, model and type is an interrupted create of this one. */
static bool source_same(const json_t *obj, const json_t *spec)
{
	return source_draft(obj) && same_identity(obj, spec);
}

static json_t *source_update_body(const json_t *want, const json_t *live, const json_t *applied,
				  const json_t *obj)
{
	json_t *body = json_object();
	(void)obj;
	if (tp_gr_field_changed(want, live, "name"))
		json_object_set(body, "name", json_object_get(want, "name"));
	if (tp_gr_map_changed(json_object_get(want, "options"), json_object_get(live, "options"),
			      json_object_get(applied, "options")))
		json_object_set_new(body, "options", tp_gr_object_or_empty(want, "options"));
	if (tp_gr_field_changed(want, live, "mapping"))
		json_object_set_new(body, "mapping", tp_gr_object_or_empty(want, "mapping"));
	return body;
}

/* ---------------------------------------------------------------- schedules */

/* Brings the source's schedule (its own object in Grouparoo) to the spec. */
static int sync_schedule(tp_gr_session *s, const tp_op *op, const char *source_id,
			 const json_t *live_sched)
{
	const tp_kind *kind = tp_registry_kind("grouparoo.source");
	json_t *want = json_object_get(op->spec, "schedule");
	const char *sched_id = tp_json_get_str(live_sched, "id");
	json_t *body = NULL;
	char *path = NULL;
	int rc = 0;

	if (!want && !sched_id)
		return 0;
	if (!want) {
		path = tp_sprintf("/schedule/%s", sched_id);
		rc = tp_gr_call(s, NULL, op->address, "DELETE", path, NULL, NULL);
		if (rc == TP_ENOTFOUND)
			rc = 0;
		goto done;
	}
	if (sched_id) {
		/* compare the fields the spec sets, both normalised the way the plan compares
		 * them (Grouparoo answers more: incremental, ids, timestamps) */
		json_t *a = json_pack("{s:o}", "schedule", json_deep_copy(want));
		json_t *b = json_pack("{s:o}", "schedule", schedule_to_spec(live_sched));
		json_t *wa, *lb;
		const char *key;
		json_t *v;
		bool same = true;
		if (kind && kind->normalise) {
			kind->normalise(a);
			kind->normalise(b);
		}
		wa = json_object_get(a, "schedule");
		lb = json_object_get(b, "schedule");
		json_object_foreach(wa, key, v)
			if (!json_equal(v, json_object_get(lb, key)))
				same = false;
		json_decref(a);
		json_decref(b);
		if (same)
			goto done;
		body = schedule_body(want, NULL, NULL);
		json_object_del(body, "state");
		path = tp_sprintf("/schedule/%s", sched_id);
		rc = tp_gr_call(s, NULL, op->address, "PUT", path, body, NULL);
		goto done;
	}
	body = schedule_body(want, source_id, tp_json_get_str(op->spec, "name"));
	rc = tp_gr_call(s, NULL, op->address, "POST", "/schedule", body, NULL);
done:
	json_decref(body);
	free(path);
	return rc;
}

static int source_after_update(tp_gr_session *s, const tp_op *op, const json_t *obj)
{
	return sync_schedule(s, op, tp_json_get_str(obj, "id"), json_object_get(obj, "schedule"));
}

/* Grouparoo refuses to delete a source that has a schedule: the schedule goes first. */
static int source_before_remove(tp_gr_session *s, const tp_op *op, const json_t *obj)
{
	const char *sched_id = tp_json_get_str(json_object_get(obj, "schedule"), "id");
	char *path;
	int rc;
	if (!sched_id)
		return 0;
	path = tp_sprintf("/schedule/%s", sched_id);
	rc = tp_gr_call(s, NULL, op->address, "DELETE", path, NULL, NULL);
	free(path);
	return rc == TP_ENOTFOUND ? 0 : rc;
}

static const tp_gr_kind gr_source = {
	.kind = "grouparoo.source",
	.what = "source",
	.collection = "sources",
	.name_key = "name",
	.spec_name = "name",
	.to_spec = source_to_spec,
	.update_body = source_update_body,
	.same = source_same,
	.adoptable = same_identity,
	.unfinished = source_draft,
	.before_remove = source_before_remove,
	.after_update = source_after_update,
};

/* ---------------------------------------------------------------- source create */

/* Removes what a failed create made (the bootstrapped property, then the draft source) and
 * keeps the error being reported (rc); says so when the clean-up itself failed. */
static int roll_back(tp_gr_session *s, const tp_op *op, int rc, const char *source_id,
		     const char *property_id)
{
	char *why = tp_strdup(tp_error_last());
	char *path;
	int crc = 0;

	if (property_id) {
		path = tp_sprintf("/property/%s", property_id);
		crc = tp_gr_call(s, NULL, op->address, "DELETE", path, NULL, NULL);
		free(path);
	}
	if (crc == 0 || crc == TP_ENOTFOUND) {
		path = tp_sprintf("/source/%s", source_id);
		crc = tp_gr_call(s, NULL, op->address, "DELETE", path, NULL, NULL);
		free(path);
	}
	if (crc < 0 && crc != TP_ENOTFOUND) {
		/* the draft stays; the next create of this resource takes it up (same name, app,
		 * model and type), so it is not lost */
		char *cleanup = tp_strdup(tp_error_last());
		tp_error_set(rc, "%s (and removing the draft source %s failed: %s; the next apply "
				 "takes the draft up)", why, source_id, cleanup);
		free(cleanup);
	} else {
		tp_error_set(rc, "%s", why);
	}
	free(why);
	return rc;
}

static bool retryable(int rc)
{
	return rc == TP_ETRANSIENT || rc == TP_ETHROTTLED;
}

int tp_gr_source_create(void *session, const tp_op *op, tp_op_result *out)
{
	tp_gr_session *s = session;
	const char *name = tp_json_get_str(op->spec, "name");
	json_t *mapping = json_object_get(op->spec, "mapping");
	json_t *list = NULL, *props = NULL, *reply = NULL, *obj = NULL, *reuse = NULL;
	json_t *body = NULL, *ready = NULL;
	char *source_id = NULL, *property_id = NULL, *path = NULL;
	bool made = false;
	int rc;

	if ((rc = tp_gr_list(s, &list, op->address, "sources")) < 0)
		goto done;
	if ((rc = tp_gr_check_collision(s, op, &gr_source, list, name ? name : "", &reuse)) < 0)
		goto done;
	if (reuse && !source_draft(reuse)) {
		/* a ready source an earlier attempt of this create made: bring it to the spec */
		tp_op again = *op;
		again.provider_id = tp_json_get_str(reuse, "id");
		rc = tp_gr_update(s, &gr_source, &again, out);
		if (rc == 0)
			out->provider_id = tp_strdup(again.provider_id);
		goto done;
	}
	if (reuse) {
		source_id = tp_strdup(tp_json_get_str(reuse, "id"));
	} else {
		/* 1. the draft */
		body = json_pack("{s:s?,s:s?,s:s?,s:s?,s:o}", "name", name, "appId",
				 tp_json_get_str(op->spec, "app"), "modelId",
				 tp_json_get_str(op->spec, "model"), "type",
				 tp_json_get_str(op->spec, "type"), "options",
				 tp_gr_object_or_empty(op->spec, "options"));
		if ((rc = tp_gr_post(s, &reply, &obj, op, &gr_source, "/source", body)) < 0)
			goto done;
		source_id = tp_strdup(tp_json_get_str(obj, "id"));
		json_decref(reply);
		reply = NULL;
	}
	made = true;
	if (json_object_size(mapping) == 1) {
		const char *column = json_object_iter_key(json_object_iter(mapping));
		const char *key = json_string_value(json_object_iter_value(json_object_iter(mapping)));
		size_t i;
		json_t *p;
		bool exists = false;
		/* 2. the unique property the mapping names, unless a property has that key */
		if ((rc = tp_gr_list(s, &props, op->address, "properties")) < 0)
			goto done;
		json_array_foreach(props, i, p) {
			const char *k = tp_json_get_str(p, "key");
			const char *sid = tp_json_get_str(p, "sourceId");
			if (!k || !key || strcmp(k, key) != 0)
				continue;
			exists = true;
			/* bootstrapped by an earlier attempt: undone with the draft if this fails */
			if (sid && strcmp(sid, source_id) == 0 &&
			    !json_is_true(json_object_get(p, "isPrimaryKey")))
				property_id = tp_strdup(tp_json_get_str(p, "id"));
		}
		if (!exists) {
			json_t *b = json_pack("{s:s?,s:s}", "key", key, "mappedColumn", column);
			json_t *prop;
			path = tp_sprintf("/source/%s/bootstrapUniqueProperty", source_id);
			rc = tp_gr_call(s, &reply, op->address, "POST", path, b, NULL);
			json_decref(b);
			free(path);
			path = NULL;
			if (rc < 0)
				goto done;
			prop = json_object_get(reply, "property");
			if (tp_json_get_str(prop, "id"))
				property_id = tp_strdup(tp_json_get_str(prop, "id"));
			json_decref(reply);
			reply = NULL;
		}
	}
	/* 3. the mapping, and ready */
	ready = json_pack("{s:o,s:s}", "mapping", tp_gr_object_or_empty(op->spec, "mapping"),
			  "state", "ready");
	path = tp_sprintf("/source/%s", source_id);
	{
		tp_strlist secrets = {0};
		tp_gr_secrets(&secrets, op);
		rc = tp_gr_call(s, &reply, op->address, "PUT", path, ready, &secrets);
		for (size_t i = 0; i < secrets.len; i++)
			explicit_bzero(secrets.items[i], strlen(secrets.items[i]));
		tp_strlist_free(&secrets);
	}
	if (rc < 0)
		goto done;
	/* 4. the schedule */
	if ((rc = sync_schedule(s, op, source_id, NULL)) < 0)
		goto done;
	out->provider_id = source_id;
	out->outputs = json_pack("{s:s}", "id", source_id);
	source_id = NULL;
done:
	/* a refused step: undo the steps before it. After a transient failure the draft stays
	 * for the engine's retry of this create, which takes it up. */
	if (rc < 0 && made && source_id && !retryable(rc))
		roll_back(s, op, rc, source_id, property_id);
	json_decref(list);
	json_decref(props);
	json_decref(reply);
	json_decref(body);
	json_decref(ready);
	free(source_id);
	free(property_id);
	free(path);
	return rc;
}

int tp_gr_source_observe(void *s, const tp_op *ops, size_t n, json_t **out)
{
	return tp_gr_observe(s, &gr_source, ops, n, out);
}

int tp_gr_source_update(void *s, const tp_op *op, tp_op_result *out)
{
	return tp_gr_update(s, &gr_source, op, out);
}

int tp_gr_source_remove(void *s, const tp_op *op)
{
	return tp_gr_remove(s, &gr_source, op);
}

int tp_gr_source_adopt(void *s, const tp_op *op, tp_op_result *out)
{
	return tp_gr_adopt(s, &gr_source, op, out);
}

/* ---------------------------------------------------------------- property */

static json_t *property_to_spec(const json_t *obj)
{
	json_t *spec = json_object();
	json_t *filters = json_object_get(obj, "filters");
	tp_gr_copy(spec, "key", obj, "key");
	tp_gr_copy(spec, "type", obj, "type");
	tp_gr_copy(spec, "unique", obj, "unique");
	tp_gr_copy(spec, "is_array", obj, "isArray");
	tp_gr_copy(spec, "source", obj, "sourceId");
	tp_gr_copy_object(spec, "options", obj, "options");
	if (json_array_size(filters) > 0)
		json_object_set_new(spec, "filters", filters_to_spec(filters));
	return spec;
}

static json_t *property_create_body(const json_t *spec)
{
	return json_pack("{s:s?,s:s?,s:b,s:b,s:s?,s:o,s:o,s:s}", "key",
			 tp_json_get_str(spec, "key"), "type", tp_json_get_str(spec, "type"),
			 "unique", json_is_true(json_object_get(spec, "unique")), "isArray",
			 json_is_true(json_object_get(spec, "is_array")), "sourceId",
			 tp_json_get_str(spec, "source"), "options",
			 tp_gr_object_or_empty(spec, "options"), "filters",
			 filters_to_api(json_object_get(spec, "filters")), "state", "ready");
}

static json_t *property_update_body(const json_t *want, const json_t *live,
				    const json_t *applied, const json_t *obj)
{
	json_t *body = json_object();
	(void)obj;
	if (tp_gr_field_changed(want, live, "key"))
		json_object_set(body, "key", json_object_get(want, "key"));
	if (tp_gr_field_changed(want, live, "type"))
		json_object_set(body, "type", json_object_get(want, "type"));
	if (tp_gr_field_changed(want, live, "unique"))
		json_object_set_new(body, "unique",
				    json_boolean(json_is_true(json_object_get(want, "unique"))));
	if (tp_gr_field_changed(want, live, "is_array"))
		json_object_set_new(body, "isArray",
				    json_boolean(json_is_true(json_object_get(want, "is_array"))));
	if (tp_gr_map_changed(json_object_get(want, "options"), json_object_get(live, "options"),
			      json_object_get(applied, "options")))
		json_object_set_new(body, "options", tp_gr_object_or_empty(want, "options"));
	if (tp_gr_field_changed(want, live, "filters"))
		json_object_set_new(body, "filters",
				    filters_to_api(json_object_get(want, "filters")));
	return body;
}

static json_t *property_outputs(const json_t *obj)
{
	return json_pack("{s:s,s:s}", "id", tp_json_get_str(obj, "id") ? tp_json_get_str(obj, "id")
								     : "",
			 "key", tp_json_get_str(obj, "key") ? tp_json_get_str(obj, "key") : "");
}

/* The property a source of this resource's source bootstrapped (or an earlier attempt of this
 * create made): the same key on the same source. */
static bool property_same(const json_t *obj, const json_t *spec)
{
	const char *a = tp_json_get_str(obj, "sourceId"), *b = tp_json_get_str(spec, "source");
	return a && b && strcmp(a, b) == 0;
}

/* The property a source maps its key column to belongs to that source: Grouparoo refuses to
 * delete it while the source maps it, and deletes it with the source. */
static int property_before_remove(tp_gr_session *s, const tp_op *op, const json_t *obj)
{
	(void)s;
	if (!json_is_true(json_object_get(obj, "isPrimaryKey")))
		return 0;
	tp_log(TP_LOG_WARN, op->address, NULL,
	       "the property \"%s\" (%s) is the key its source %s maps records by: Grouparoo "
	       "deletes it together with that source, so it is left to it",
	       tp_json_get_str(obj, "key"), tp_json_get_str(obj, "id"),
	       tp_json_get_str(obj, "sourceId"));
	return 1;
}

static const tp_gr_kind gr_property = {
	.kind = "grouparoo.property",
	.what = "property",
	.collection = "properties",
	.name_key = "key",
	.spec_name = "key",
	.to_spec = property_to_spec,
	.create_body = property_create_body,
	.update_body = property_update_body,
	.outputs = property_outputs,
	.same = property_same,
	.adoptable = property_same,
	.before_remove = property_before_remove,
};

int tp_gr_property_observe(void *s, const tp_op *ops, size_t n, json_t **out)
{
	return tp_gr_observe(s, &gr_property, ops, n, out);
}

int tp_gr_property_create(void *s, const tp_op *op, tp_op_result *out)
{
	return tp_gr_create(s, &gr_property, op, out);
}

int tp_gr_property_update(void *s, const tp_op *op, tp_op_result *out)
{
	return tp_gr_update(s, &gr_property, op, out);
}

int tp_gr_property_remove(void *s, const tp_op *op)
{
	return tp_gr_remove(s, &gr_property, op);
}

int tp_gr_property_adopt(void *s, const tp_op *op, tp_op_result *out)
{
	return tp_gr_adopt(s, &gr_property, op, out);
}
