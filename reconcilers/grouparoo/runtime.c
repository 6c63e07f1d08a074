/*
 * The grouparoo provider's runtime slots, part one: what every kind shares (observing through
 * one paged list call per kind, finding namesakes before a create, refusing objects locked by
 * Grouparoo's code config, deleting with or without Grouparoo's force, keeping secrets out of
 * observed specs and messages) and the three kinds whose API is a single call per action:
 * models, apps and groups. Sources and properties (the draft → bootstrap → ready sequence)
 * are in source.c, destinations in destination.c.
 *
 * Ownership: Grouparoo objects have no field to carry Tapestry's marker, so an object is known
 * by its recorded id, and by its name (a property by its key) when an interrupted create is
 * adopted. A create never takes over a namesake Tapestry did not make.
 */
#include "grouparoo_int.h"

#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- small helpers */

bool tp_gr_is_locked(const json_t *obj)
{
	const char *l = tp_json_get_str(obj, "locked");
	return l && *l;
}

bool tp_gr_is_gone(const json_t *obj)
{
	const char *st = tp_json_get_str(obj, "state");
	return st && strcmp(st, "deleted") == 0;
}

/* A string member for a message, or what stands in for it when the answer lacks it. */
static const char *str_or(const json_t *obj, const char *key, const char *missing)
{
	const char *v = tp_json_get_str(obj, key);
	return v ? v : missing;
}

static const char *obj_name(const tp_gr_kind *k, const json_t *obj)
{
	const char *n = tp_json_get_str(obj, k->name_key);
	return n ? n : "";
}

int tp_gr_locked_error(const tp_op *op, const tp_gr_kind *k, const json_t *obj, bool deleting)
{
	return tp_error_set(
		TP_ECONFLICT,
		"%s: the %s \"%s\" (%s) is defined in Grouparoo's code config (locked: %s): "
		"Tapestry never %s objects from the code config; %s",
		op->address, k->what, obj_name(k, obj), str_or(obj, "id", "no id"),
		str_or(obj, "locked", "yes"), deleting ? "deletes" : "modifies",
		deleting ? "remove it from the code config instead (Grouparoo then deletes it at "
			   "its next start, and Tapestry finds it gone)"
			 : "change it in the code config instead, and make the pipeline's spec "
			   "match it");
}

void tp_gr_secrets(tp_strlist *out, const tp_op *op)
{
	for (size_t i = 0; op->sensitive && op->spec && i < op->sensitive->len; i++) {
		json_t *val = tp_json_path_get(op->spec, op->sensitive->items[i]);
		if (json_is_string(val) && json_string_length(val) > 0)
			tp_strlist_push(out, json_string_value(val));
	}
}

/* Clears and frees a list of secret values. */
static void secrets_free(tp_strlist *l)
{
	for (size_t i = 0; i < l->len; i++)
		explicit_bzero(l->items[i], strlen(l->items[i]));
	tp_strlist_free(l);
}

/* Sets root[path] (dotted; list elements by index) to v (stolen). */
static void path_set_new(json_t *root, const char *path, json_t *v)
{
	const char *dot = strrchr(path, '.');
	json_t *parent = root;
	const char *last = path;
	if (dot) {
		char *head = tp_strndup(path, (size_t)(dot - path));
		parent = tp_json_path_get(root, head);
		free(head);
		last = dot + 1;
	}
	if (json_is_object(parent)) {
		json_object_set_new(parent, last, v);
		return;
	}
	if (json_is_array(parent)) {
		char *end = NULL;
		unsigned long idx = strtoul(last, &end, 10);
		if (end && *end == '\0' && idx < json_array_size(parent)) {
			json_array_set_new(parent, idx, v);
			return;
		}
	}
	json_decref(v);
}

void tp_gr_protect_sensitive(json_t *observed, const tp_op *op)
{
	for (size_t i = 0; op->sensitive && i < op->sensitive->len; i++) {
		const char *path = op->sensitive->items[i];
		json_t *v = tp_json_path_get(observed, path);
		if (!v)
			continue;
		if (json_is_string(v) && strcmp(json_string_value(v), TP_GR_OBFUSCATED) == 0) {
			path_set_new(observed, path, json_string(TP_GR_MASK));
		} else if (json_is_string(v)) {
			path_set_new(observed, path,
				     tp_op_fingerprint(op, json_string_value(v), json_string_length(v)));
		} else {
			char *text = tp_json_canonical(v);
			path_set_new(observed, path, tp_op_fingerprint(op, text, strlen(text)));
			free(text);
		}
	}
}

json_t *tp_gr_find_id(const json_t *list, const char *id)
{
	size_t i;
	json_t *o;
	json_array_foreach(list, i, o) {
		const char *oid = tp_json_get_str(o, "id");
		if (id && oid && strcmp(oid, id) == 0)
			return o;
	}
	return NULL;
}

json_t *tp_gr_object_or_empty(const json_t *spec, const char *key)
{
	json_t *v = json_object_get(spec, key);
	return json_is_object(v) ? json_deep_copy(v) : json_object();
}

json_t *tp_gr_outputs(const json_t *obj)
{
	return json_pack("{s:s}", "id", tp_json_get_str(obj, "id") ? tp_json_get_str(obj, "id")
								    : "");
}

/* ---------------------------------------------------------------- reading */

int tp_gr_get(tp_gr_session *s, json_t **reply, json_t **obj, const tp_op *op,
	      const tp_gr_kind *k, const char *id)
{
	char *path = tp_sprintf("/%s/%s", k->what, id);
	int rc = tp_gr_call(s, reply, op->address, "GET", path, NULL, NULL);
	free(path);
	*obj = rc == 0 ? json_object_get(*reply, k->what) : NULL;
	if (rc == 0 && !json_is_object(*obj)) {
		json_decref(*reply);
		*reply = NULL;
		return tp_error_set(TP_ETRANSIENT, "%s: Grouparoo's answer for %s %s has no \"%s\"",
				    op->address, k->what, id, k->what);
	}
	return rc;
}

json_t *tp_gr_live_spec(const tp_gr_kind *k, const json_t *obj)
{
	const tp_kind *kind = tp_registry_kind(k->kind);
	json_t *spec = k->to_spec(obj);
	if (kind && kind->normalise)
		kind->normalise(spec);
	return spec;
}

/* One observed spec: the live object in spec shape, secrets protected, a lock reported. */
static json_t *observed_spec(const tp_gr_kind *k, const json_t *obj, const tp_op *op)
{
	json_t *spec = k->to_spec(obj);
	tp_gr_protect_sensitive(spec, op);
	if (tp_gr_is_locked(obj)) {
		json_object_set_new(spec, TP_GR_LOCKED_KEY,
				    json_string(str_or(obj, "locked", "yes")));
		tp_log(TP_LOG_WARN, op->address, NULL,
		       "the %s \"%s\" (%s) is defined in Grouparoo's code config (locked: %s): "
		       "Tapestry will not modify or delete it",
		       k->what, obj_name(k, obj), str_or(obj, "id", "no id"),
		       str_or(obj, "locked", "yes"));
	}
	return spec;
}

int tp_gr_observe(tp_gr_session *s, const tp_gr_kind *k, const tp_op *ops, size_t n,
		  json_t **out)
{
	json_t *list = NULL;
	int rc = 0;

	for (size_t i = 0; i < n; i++)
		out[i] = NULL;
	if (n == 0)
		return 0;
	if (n <= 2) {
		/* a recovery or a small pipeline: the objects themselves, not the whole list */
		for (size_t i = 0; i < n; i++) {
			json_t *reply = NULL, *obj = NULL;
			if (!ops[i].provider_id)
				continue;
			rc = tp_gr_get(s, &reply, &obj, &ops[i], k, ops[i].provider_id);
			if (rc == TP_ENOTFOUND) {
				rc = 0;
				continue;
			}
			if (rc < 0)
				goto fail;
			if (!tp_gr_is_gone(obj) && !(k->unfinished && k->unfinished(obj)))
				out[i] = observed_spec(k, obj, &ops[i]);
			json_decref(reply);
		}
		return 0;
	}
	if ((rc = tp_gr_list(s, &list, ops[0].address, k->collection)) < 0)
		goto fail;
	for (size_t i = 0; i < n; i++) {
		json_t *obj = tp_gr_find_id(list, ops[i].provider_id);
		if (obj && !tp_gr_is_gone(obj) && !(k->unfinished && k->unfinished(obj)))
			out[i] = observed_spec(k, obj, &ops[i]);
	}
	json_decref(list);
	return 0;
fail:
	for (size_t i = 0; i < n; i++) {
		json_decref(out[i]);
		out[i] = NULL;
	}
	return rc;
}

/* ---------------------------------------------------------------- creating */

static bool ids_contain(const json_t *ids, const char *id)
{
	size_t i;
	json_t *v;
	json_array_foreach(ids, i, v)
		if (json_is_string(v) && strcmp(json_string_value(v), id) == 0)
			return true;
	return false;
}

int tp_gr_check_collision(tp_gr_session *s, const tp_op *op, const tp_gr_kind *k,
			  const json_t *list, const char *name, json_t **reuse)
{
	json_t *baseline = tp_gr_baseline_get(s, op->address);
	json_t *seen = json_array();
	const json_t *foreign = NULL;
	size_t i;
	json_t *obj;
	int rc = 0;

	*reuse = NULL;
	json_array_foreach(list, i, obj) {
		const char *id = tp_json_get_str(obj, "id");
		if (!id || strcmp(obj_name(k, obj), name) != 0 || tp_gr_is_gone(obj))
			continue;
		if (tp_gr_is_locked(obj)) {
			rc = tp_error_set(
				TP_ECONFLICT,
				"%s: the %s \"%s\" is defined in Grouparoo's code config (%s, locked: "
				"%s): Tapestry does not manage objects from the code config; refer to "
				"it by its id instead of declaring it here, or choose another %s",
				op->address, k->what, name, id, str_or(obj, "locked", "yes"), k->name_key);
			goto done;
		}
		json_array_append_new(seen, json_string(id));
		if (baseline && !ids_contain(baseline, id))
			*reuse = obj; /* made by an earlier attempt of this very create */
		else if (k->same && k->same(obj, op->spec))
			*reuse = obj; /* this resource's own unfinished object */
		else
			foreign = obj;
	}
	if (!baseline)
		tp_gr_baseline_set(s, op->address, seen);
	if (!*reuse && foreign)
		rc = tp_error_set(TP_EEXISTS,
				  "%s: %s %s with %s \"%s\" already exists in Grouparoo (%s) and "
				  "Tapestry did not create it; it never takes over objects it did not "
				  "create: delete or rename that %s, or choose another %s here",
				  op->address, strchr("aeiou", k->what[0]) ? "an" : "a", k->what,
				  k->name_key, name, tp_json_get_str(foreign, "id"), k->what,
				  k->name_key);
done:
	json_decref(baseline);
	json_decref(seen);
	return rc;
}

/* ---------------------------------------------------------------- adopting */

int tp_gr_adopt(tp_gr_session *s, const tp_gr_kind *k, const tp_op *op, tp_op_result *out)
{
	const json_t *spec = op->spec ? op->spec : op->applied;
	const char *name = tp_json_get_str(spec, k->spec_name);
	json_t *list = NULL, *obj;
	json_t *found = NULL, *locked = NULL;
	size_t i;
	int rc;

	if (!name)
		return tp_error_set(TP_ENOTFOUND, "%s: no %s to adopt", op->address, k->spec_name);
	if ((rc = tp_gr_list(s, &list, op->address, k->collection)) < 0)
		return rc;
	json_array_foreach(list, i, obj) {
		const char *id = tp_json_get_str(obj, "id");
		/* an object without an id could never be found again by the engine */
		if (!id || !*id || strcmp(obj_name(k, obj), name) != 0 || tp_gr_is_gone(obj))
			continue;
		if (k->adoptable && !k->adoptable(obj, spec))
			continue;
		if (tp_gr_is_locked(obj)) {
			locked = obj;
			continue;
		}
		found = obj;
		break;
	}
	if (found) {
		out->provider_id = tp_strdup(tp_json_get_str(found, "id"));
		out->outputs = k->outputs ? k->outputs(found) : tp_gr_outputs(found);
	} else if (locked) {
		rc = tp_error_set(TP_ENOTFOUND,
				  "%s: the %s \"%s\" in Grouparoo (%s) is defined in its code config "
				  "(locked: %s); it is not adopted", op->address, k->what, name,
				  str_or(locked, "id", "no id"), str_or(locked, "locked", "yes"));
	} else {
		rc = tp_error_set(TP_ENOTFOUND, "%s: no %s with %s \"%s\" in Grouparoo",
				  op->address, k->what, k->name_key, name);
	}
	json_decref(list);
	return rc;
}

/* ---------------------------------------------------------------- deleting */

static const char *delete_mode(const tp_op *op)
{
	const char *m = tp_json_get_str(op->applied, "delete_mode");
	return m ? m : "wait";
}

int tp_gr_delete(tp_gr_session *s, const tp_op *op, const tp_gr_kind *k, const char *id)
{
	bool force = k->async_delete && strcmp(delete_mode(op), "force") == 0;
	char *path = tp_sprintf("/%s/%s%s", k->what, id, force ? "?force=true" : "");
	int64_t deadline = tp_clock_mono_ms() + tp_gr_delete_wait_ms(s), pause = 500;
	int rc;

	for (;;) {
		rc = tp_gr_call(s, NULL, op->address, "DELETE", path, NULL, NULL);
		/* refused for now, until Grouparoo's workers catch up: try again, bounded */
		if (rc == TP_ECONFLICT && k->delete_retry &&
		    strstr(tp_error_last(), k->delete_retry) && tp_clock_mono_ms() < deadline) {
			tp_clock_sleep_ms(pause);
			if (pause < 4000)
				pause *= 2;
			continue;
		}
		break;
	}
	free(path);
	if (rc == TP_ENOTFOUND)
		return 0;
	if (rc < 0 || !k->async_delete || force)
		return rc;
	/* Grouparoo only marked it deleted: its workers finish exports and memberships first
	 * (half a minute to a minute), then remove it. Wait for that, bounded. */
	pause = 500;
	for (;;) {
		json_t *reply = NULL, *obj = NULL;
		rc = tp_gr_get(s, &reply, &obj, op, k, id);
		json_decref(reply);
		if (rc == TP_ENOTFOUND)
			return 0;
		if (rc < 0 && rc != TP_ETRANSIENT)
			return rc;
		if (tp_clock_mono_ms() >= deadline)
			return tp_error_set(TP_ECONFLICT,
					    "%s: Grouparoo marked the %s %s deleted, but its workers have "
					    "not removed it within %llds (delete_mode: wait); it is gone "
					    "for Tapestry's purposes and the next run checks again "
					    "(delete_mode: force removes it at once)",
					    op->address, k->what, id,
					    (long long)(tp_gr_delete_wait_ms(s) / 1000));
		tp_clock_sleep_ms(pause);
		if (pause < 3000)
			pause *= 2;
	}
}

int tp_gr_remove(tp_gr_session *s, const tp_gr_kind *k, const tp_op *op)
{
	json_t *reply = NULL, *obj = NULL;
	int rc;

	if (!op->provider_id)
		return 0; /* nothing was recorded: nothing to delete */
	rc = tp_gr_get(s, &reply, &obj, op, k, op->provider_id);
	if (rc == TP_ENOTFOUND)
		return 0;
	if (rc < 0)
		return rc;
	if (tp_gr_is_locked(obj))
		rc = tp_gr_locked_error(op, k, obj, true);
	else if (k->before_remove)
		rc = k->before_remove(s, op, obj);
	if (rc == 0)
		rc = tp_gr_delete(s, op, k, op->provider_id);
	else if (rc > 0)
		rc = 0; /* left to Grouparoo (before_remove said why) */
	json_decref(reply);
	return rc;
}

/* ---------------------------------------------------------------- updating */

bool tp_gr_map_changed(const json_t *want, const json_t *live, const json_t *applied)
{
	const char *key;
	json_t *v;
	json_object_foreach((json_t *)(uintptr_t)want, key, v) {
		json_t *l = json_object_get(live, key);
		if (!l || !json_equal(v, l))
			return true;
	}
	/* keys Tapestry set before and the spec no longer has must go */
	json_object_foreach((json_t *)(uintptr_t)applied, key, v)
		if (!json_object_get(want, key) && json_object_get(live, key))
			return true;
	return false;
}

bool tp_gr_field_changed(const json_t *want, const json_t *live, const char *field)
{
	json_t *a = json_object_get(want, field), *b = json_object_get(live, field);
	if (!a && !b)
		return false;
	return !a || !b || !json_equal(a, b);
}

int tp_gr_update(tp_gr_session *s, const tp_gr_kind *k, const tp_op *op, tp_op_result *out)
{
	json_t *reply = NULL, *obj = NULL, *live = NULL, *body = NULL, *done = NULL;
	tp_strlist secrets = {0};
	int rc;

	if (!op->provider_id)
		return tp_error_set(TP_ENOTFOUND, "%s: no recorded Grouparoo id to update",
				    op->address);
	if ((rc = tp_gr_get(s, &reply, &obj, op, k, op->provider_id)) < 0)
		goto done;
	if (tp_gr_is_gone(obj)) {
		rc = tp_error_set(TP_ENOTFOUND, "%s: Grouparoo is deleting the %s %s", op->address,
				  k->what, op->provider_id);
		goto done;
	}
	if (tp_gr_is_locked(obj)) {
		rc = tp_gr_locked_error(op, k, obj, false);
		goto done;
	}
	live = tp_gr_live_spec(k, obj);
	body = k->update_body(op->spec, live, op->applied, obj);
	tp_gr_secrets(&secrets, op);
	if (json_object_size(body) > 0) {
		char *path = tp_sprintf("/%s/%s", k->what, op->provider_id);
		rc = tp_gr_call(s, &done, op->address, "PUT", path, body, &secrets);
		free(path);
		if (rc < 0)
			goto done;
	}
	if (k->after_update && (rc = k->after_update(s, op, obj)) < 0)
		goto done;
	out->outputs = k->outputs ? k->outputs(obj) : tp_gr_outputs(obj);
done:
	secrets_free(&secrets);
	json_decref(reply);
	json_decref(done);
	json_decref(live);
	json_decref(body);
	return rc;
}

/* POST /<what> with body; *obj (borrowed from *reply) is the new object. */
int tp_gr_post(tp_gr_session *s, json_t **reply, json_t **obj, const tp_op *op,
	       const tp_gr_kind *k, const char *path, const json_t *body)
{
	tp_strlist secrets = {0};
	int rc;
	tp_gr_secrets(&secrets, op);
	rc = tp_gr_call(s, reply, op->address, "POST", path, body, &secrets);
	secrets_free(&secrets);
	*obj = rc == 0 ? json_object_get(*reply, k->what) : NULL;
	if (rc == 0 && !tp_json_get_str(*obj, "id")) {
		json_decref(*reply);
		*reply = NULL;
		return tp_error_set(TP_ETRANSIENT, "%s: Grouparoo's answer to the create has no %s "
						   "id", op->address, k->what);
	}
	return rc;
}

/* The generic create: collision check, then POST /<what> with the kind's body (one call). */
int tp_gr_create(tp_gr_session *s, const tp_gr_kind *k, const tp_op *op, tp_op_result *out)
{
	const char *name = tp_json_get_str(op->spec, k->spec_name);
	json_t *list = NULL, *reply = NULL, *obj = NULL, *body = NULL, *reuse = NULL;
	int rc;

	if ((rc = tp_gr_list(s, &list, op->address, k->collection)) < 0)
		goto done;
	if ((rc = tp_gr_check_collision(s, op, k, list, name ? name : "", &reuse)) < 0)
		goto done;
	if (reuse) {
		/* an earlier attempt of this create made it: bring it to the spec */
		tp_op again = *op;
		again.provider_id = tp_json_get_str(reuse, "id");
		rc = tp_gr_update(s, k, &again, out);
		if (rc == 0)
			out->provider_id = tp_strdup(again.provider_id);
		goto done;
	}
	body = k->create_body(op->spec);
	{
		char *path = tp_sprintf("/%s", k->what);
		rc = tp_gr_post(s, &reply, &obj, op, k, path, body);
		free(path);
	}
	if (rc < 0)
		goto done;
	out->provider_id = tp_strdup(tp_json_get_str(obj, "id"));
	out->outputs = k->outputs ? k->outputs(obj) : tp_gr_outputs(obj);
done:
	json_decref(list);
	json_decref(reply);
	json_decref(body);
	return rc;
}

/* ---------------------------------------------------------------- shared spec bits */

/* Copies obj[from] to spec[to] when it is a string, number or boolean (not null). */
void tp_gr_copy(json_t *spec, const char *to, const json_t *obj, const char *from)
{
	json_t *v = json_object_get(obj, from);
	if (json_is_string(v) || json_is_number(v) || json_is_boolean(v))
		json_object_set(spec, to, v);
}

/* Copies a non-empty object member (options, mapping). */
void tp_gr_copy_object(json_t *spec, const char *to, const json_t *obj, const char *from)
{
	json_t *v = json_object_get(obj, from);
	if (json_is_object(v) && json_object_size(v) > 0)
		json_object_set_new(spec, to, json_deep_copy(v));
}

/* ---------------------------------------------------------------- model */

static json_t *model_to_spec(const json_t *obj)
{
	json_t *spec = json_object();
	tp_gr_copy(spec, "name", obj, "name");
	tp_gr_copy(spec, "type", obj, "type");
	return spec;
}

static json_t *model_create_body(const json_t *spec)
{
	return json_pack("{s:s?,s:s?}", "name", tp_json_get_str(spec, "name"), "type",
			 tp_json_get_str(spec, "type"));
}

static json_t *model_update_body(const json_t *want, const json_t *live, const json_t *applied,
				 const json_t *obj)
{
	json_t *body = json_object();
	(void)applied;
	(void)obj;
	if (tp_gr_field_changed(want, live, "name"))
		json_object_set(body, "name", json_object_get(want, "name"));
	if (tp_gr_field_changed(want, live, "type"))
		json_object_set(body, "type", json_object_get(want, "type"));
	return body;
}

static const tp_gr_kind gr_model = {
	.kind = "grouparoo.model",
	.what = "model",
	.collection = "models",
	.name_key = "name",
	.spec_name = "name",
	.delete_retry = "records rely on it",
	.to_spec = model_to_spec,
	.create_body = model_create_body,
	.update_body = model_update_body,
};

int tp_gr_model_observe(void *s, const tp_op *ops, size_t n, json_t **out)
{
	return tp_gr_observe(s, &gr_model, ops, n, out);
}

int tp_gr_model_create(void *s, const tp_op *op, tp_op_result *out)
{
	return tp_gr_create(s, &gr_model, op, out);
}

int tp_gr_model_update(void *s, const tp_op *op, tp_op_result *out)
{
	return tp_gr_update(s, &gr_model, op, out);
}

int tp_gr_model_remove(void *s, const tp_op *op)
{
	return tp_gr_remove(s, &gr_model, op);
}

int tp_gr_model_adopt(void *s, const tp_op *op, tp_op_result *out)
{
	return tp_gr_adopt(s, &gr_model, op, out);
}

/* ---------------------------------------------------------------- app */

static json_t *app_to_spec(const json_t *obj)
{
	json_t *spec = json_object();
	tp_gr_copy(spec, "name", obj, "name");
	tp_gr_copy(spec, "type", obj, "type");
	tp_gr_copy_object(spec, "options", obj, "options");
	return spec;
}

static json_t *app_create_body(const json_t *spec)
{
	return json_pack("{s:s?,s:s?,s:o,s:s}", "name", tp_json_get_str(spec, "name"), "type",
			 tp_json_get_str(spec, "type"), "options",
			 tp_gr_object_or_empty(spec, "options"), "state", "ready");
}

static json_t *app_update_body(const json_t *want, const json_t *live, const json_t *applied,
			       const json_t *obj)
{
	json_t *body = json_object();
	(void)obj;
	if (tp_gr_field_changed(want, live, "name"))
		json_object_set(body, "name", json_object_get(want, "name"));
	if (tp_gr_map_changed(json_object_get(want, "options"), json_object_get(live, "options"),
			      json_object_get(applied, "options")))
		json_object_set_new(body, "options", tp_gr_object_or_empty(want, "options"));
	return body;
}

static const tp_gr_kind gr_app = {
	.kind = "grouparoo.app",
	.what = "app",
	.collection = "apps",
	.name_key = "name",
	.spec_name = "name",
	.to_spec = app_to_spec,
	.create_body = app_create_body,
	.update_body = app_update_body,
};

int tp_gr_app_observe(void *s, const tp_op *ops, size_t n, json_t **out)
{
	return tp_gr_observe(s, &gr_app, ops, n, out);
}

int tp_gr_app_create(void *s, const tp_op *op, tp_op_result *out)
{
	return tp_gr_create(s, &gr_app, op, out);
}

int tp_gr_app_update(void *s, const tp_op *op, tp_op_result *out)
{
	return tp_gr_update(s, &gr_app, op, out);
}

int tp_gr_app_remove(void *s, const tp_op *op)
{
	return tp_gr_remove(s, &gr_app, op);
}

int tp_gr_app_adopt(void *s, const tp_op *op, tp_op_result *out)
{
	return tp_gr_adopt(s, &gr_app, op, out);
}

/* ---------------------------------------------------------------- group */

static json_t *rules_to_spec(const json_t *rules)
{
	json_t *out = json_array();
	size_t i;
	json_t *r;
	json_array_foreach(rules, i, r) {
		json_t *o = json_object();
		tp_gr_copy(o, "key", r, "key");
		tp_gr_copy(o, "op", json_object_get(r, "operation"), "op");
		tp_gr_copy(o, "match", r, "match");
		tp_gr_copy(o, "relative_match_number", r, "relativeMatchNumber");
		tp_gr_copy(o, "relative_match_unit", r, "relativeMatchUnit");
		tp_gr_copy(o, "relative_match_direction", r, "relativeMatchDirection");
		json_array_append_new(out, o);
	}
	return out;
}

static json_t *rules_to_api(const json_t *rules)
{
	json_t *out = json_array();
	size_t i;
	json_t *r;
	json_array_foreach(rules, i, r) {
		json_t *o = json_object();
		tp_gr_copy(o, "key", r, "key");
		json_object_set_new(o, "operation", json_pack("{s:s?}", "op",
							      tp_json_get_str(r, "op")));
		tp_gr_copy(o, "match", r, "match");
		tp_gr_copy(o, "relativeMatchNumber", r, "relative_match_number");
		tp_gr_copy(o, "relativeMatchUnit", r, "relative_match_unit");
		tp_gr_copy(o, "relativeMatchDirection", r, "relative_match_direction");
		json_array_append_new(out, o);
	}
	return out;
}

static json_t *group_to_spec(const json_t *obj)
{
	json_t *spec = json_object();
	json_t *rules = json_object_get(obj, "rules");
	tp_gr_copy(spec, "name", obj, "name");
	tp_gr_copy(spec, "model", obj, "modelId");
	tp_gr_copy(spec, "match_type", obj, "matchType");
	if (json_array_size(rules) > 0)
		json_object_set_new(spec, "rules", rules_to_spec(rules));
	return spec;
}

static json_t *group_create_body(const json_t *spec)
{
	json_t *rules = json_object_get(spec, "rules");
	return json_pack("{s:s?,s:s?,s:s?,s:o,s:s}", "name", tp_json_get_str(spec, "name"),
			 "modelId", tp_json_get_str(spec, "model"), "matchType",
			 tp_json_get_str(spec, "match_type"), "rules",
			 rules ? rules_to_api(rules) : json_array(), "state", "ready");
}

static json_t *group_update_body(const json_t *want, const json_t *live, const json_t *applied,
				 const json_t *obj)
{
	json_t *body = json_object();
	(void)applied;
	(void)obj;
	if (tp_gr_field_changed(want, live, "name"))
		json_object_set(body, "name", json_object_get(want, "name"));
	if (tp_gr_field_changed(want, live, "match_type"))
		json_object_set(body, "matchType", json_object_get(want, "match_type"));
	if (tp_gr_field_changed(want, live, "rules")) {
		json_t *rules = json_object_get(want, "rules");
		json_object_set_new(body, "rules", rules ? rules_to_api(rules) : json_array());
	}
	return body;
}

/* groups are found by name within their model */
static bool group_adoptable(const json_t *obj, const json_t *spec)
{
	const char *a = tp_json_get_str(obj, "modelId"), *b = tp_json_get_str(spec, "model");
	return a && b && strcmp(a, b) == 0;
}

static const tp_gr_kind gr_group = {
	.kind = "grouparoo.group",
	.what = "group",
	.collection = "groups",
	.name_key = "name",
	.spec_name = "name",
	.async_delete = true,
	.to_spec = group_to_spec,
	.adoptable = group_adoptable,
	.create_body = group_create_body,
	.update_body = group_update_body,
};

int tp_gr_group_observe(void *s, const tp_op *ops, size_t n, json_t **out)
{
	return tp_gr_observe(s, &gr_group, ops, n, out);
}

int tp_gr_group_create(void *s, const tp_op *op, tp_op_result *out)
{
	return tp_gr_create(s, &gr_group, op, out);
}

int tp_gr_group_update(void *s, const tp_op *op, tp_op_result *out)
{
	return tp_gr_update(s, &gr_group, op, out);
}

int tp_gr_group_remove(void *s, const tp_op *op)
{
	return tp_gr_remove(s, &gr_group, op);
}

int tp_gr_group_adopt(void *s, const tp_op *op, tp_op_result *out)
{
	return tp_gr_adopt(s, &gr_group, op, out);
}
