/*
 * The grouparoo provider's private contract, shared by its files and its tests: the REST
 * client for Grouparoo 0.9 (client.c: session, one call, paged lists, error mapping) and the
 * runtime slots of the six kinds (runtime.c: model, app, group; source.c: source and
 * property; destination.c). grouparoo.c wires the slots into the kinds.
 *
 * Grouparoo answers nearly every failure with HTTP 500 and {"error": {"message", "code"}}; the
 * client turns the known messages into Tapestry's error kinds (not found, locked, in use,
 * validation, authentication) and keeps Grouparoo's own words in the message.
 */
#ifndef TP_GROUPAROO_INT_H
#define TP_GROUPAROO_INT_H

#include "../reconciler.h"

/* What an object defined in Grouparoo's code config carries in `locked`. */
#define TP_GR_LOCKED_CODE "config:code"
/* What Grouparoo answers instead of an app option of type password or oauth-token. */
#define TP_GR_OBFUSCATED "__ObfuscatedOption"
/* The mask Tapestry's diff treats as unknown (never drift). */
#define TP_GR_MASK "**********"
/* The key an observed spec carries (besides the kind's fields) for a locked object. */
#define TP_GR_LOCKED_KEY "$locked"

typedef struct tp_gr_session tp_gr_session;

/* ---------------------------------------------------------------- client.c */

/* provider.open / provider.close. The session keeps the API key only in its Authorization
 * header, wiped on close. */
int tp_gr_open(void **out, const tp_provider_env *env);
void tp_gr_close(void *session);

/* The base URL the session talks to ("http://host:port/api/v1"). */
const char *tp_gr_base_url(const tp_gr_session *s);
/* How long a delete in delete_mode "wait" waits for Grouparoo's workers (ms). */
int64_t tp_gr_delete_wait_ms(const tp_gr_session *s);

/*
 * One API call: method, path under /api/v1 ("/app/app_1", "/apps?limit=100"), an optional
 * JSON body (borrowed). On success *out is the parsed reply (new reference; may be NULL when
 * out is NULL). On failure the message is "<who>: Grouparoo: <its message> (<METHOD> <path>)"
 * with every string of `scrub` (resolved secret values) replaced by "(sensitive)".
 */
int tp_gr_call(tp_gr_session *s, json_t **out, const char *who, const char *method,
	       const char *path, const json_t *body, const tp_strlist *scrub);

/* Every object of a collection ("apps", "sources", ...), page by page: *out is a new array. */
int tp_gr_list(tp_gr_session *s, json_t **out, const char *who, const char *collection);

/* Maps a failed reply (HTTP status, Grouparoo's error message and code, both may be NULL) to
 * a TP_E* code. Exposed for the tests. */
int tp_gr_error_code(long status, const char *message, const char *code);

/* Idempotent creates within one session: the ids of same-named objects that existed before
 * the first create attempt for an address, so that a retried create recognises the object
 * its own timed-out attempt made. tp_gr_baseline_get returns a new reference or NULL. */
void tp_gr_baseline_set(tp_gr_session *s, const char *address, const json_t *ids);
json_t *tp_gr_baseline_get(tp_gr_session *s, const char *address);

/* ---------------------------------------------------------------- runtime.c: shared */

typedef struct tp_gr_kind tp_gr_kind;

/* How a kind maps onto Grouparoo's API: the generic slots below are driven by it. */
struct tp_gr_kind {
	const char *kind;       /* "grouparoo.app" */
	const char *what;       /* "app": GET /app/:id answers {"app": {...}} */
	const char *collection; /* "apps": GET /apps answers {"apps": [...], "total": n} */
	const char *name_key;   /* the API field a namesake is found by ("name"; "key") */
	const char *spec_name;  /* the spec field holding it */
	bool async_delete;      /* groups, destinations: delete_mode wait or force */
	/* a refused delete that Grouparoo's workers resolve by themselves (models: "records
	 * rely on it" until the records of deleted sources are swept): retried until the
	 * delete_timeout, NULL for none */
	const char *delete_retry;
	/* the API object in this kind's spec shape (not normalised) */
	json_t *(*to_spec)(const json_t *obj);
	/* POST body from the desired spec (secrets resolved) */
	json_t *(*create_body)(const json_t *spec);
	/* PUT body with the fields where `want` (desired) differs from `live` (normalised
	 * live spec); `applied` is what Tapestry set before; obj the live API object. An
	 * empty object means nothing to send. */
	json_t *(*update_body)(const json_t *want, const json_t *live, const json_t *applied,
			       const json_t *obj);
	/* outputs after a call (NULL: {id}) */
	json_t *(*outputs)(const json_t *obj);
	/* a namesake a create may take up: this resource's own unfinished object */
	bool (*same)(const json_t *obj, const json_t *spec);
	/* namesakes adopt considers (NULL: all) */
	bool (*adoptable)(const json_t *obj, const json_t *spec);
	/* objects observe reports as absent (an interrupted create's draft) */
	bool (*unfinished)(const json_t *obj);
	/* called by remove after the lock check, before the delete: < 0 refuses, 1 leaves the
	 * object to Grouparoo (nothing to delete), 0 goes on */
	int (*before_remove)(tp_gr_session *s, const tp_op *op, const json_t *obj);
	/* called by update after the PUT (parts with their own endpoints) */
	int (*after_update)(tp_gr_session *s, const tp_op *op, const json_t *obj);
};

bool tp_gr_is_locked(const json_t *obj);
/* Objects Grouparoo is deleting (state "deleted"). */
bool tp_gr_is_gone(const json_t *obj);
/* The refusal for a locked object: TP_ECONFLICT with a message saying what to do instead. */
int tp_gr_locked_error(const tp_op *op, const tp_gr_kind *k, const json_t *obj, bool deleting);

/* Strings to keep out of messages: the resolved values at op->sensitive paths of op->spec. */
void tp_gr_secrets(tp_strlist *out, const tp_op *op);
/* Replaces the values at op->sensitive paths of an observed spec: Grouparoo's obfuscation
 * becomes the mask, a plain value its keyed fingerprint. */
void tp_gr_protect_sensitive(json_t *observed, const tp_op *op);
/* The object with id in a list (borrowed), or NULL. */
json_t *tp_gr_find_id(const json_t *list, const char *id);
/* A copy of a spec's object member (options, mapping), or an empty object. */
json_t *tp_gr_object_or_empty(const json_t *spec, const char *key);
/* {"id": obj.id} */
json_t *tp_gr_outputs(const json_t *obj);
/* spec[to] = obj[from] when a scalar; the object variant when a non-empty object. */
void tp_gr_copy(json_t *spec, const char *to, const json_t *obj, const char *from);
void tp_gr_copy_object(json_t *spec, const char *to, const json_t *obj, const char *from);
/* The live object in spec shape, normalised by the kind. New reference. */
json_t *tp_gr_live_spec(const tp_gr_kind *k, const json_t *obj);
/* Whether a top-level field differs; whether an options/mapping object must be sent again
 * (a desired key differs live, or a key Tapestry set before is still there). */
bool tp_gr_field_changed(const json_t *want, const json_t *live, const char *field);
bool tp_gr_map_changed(const json_t *want, const json_t *live, const json_t *applied);

/* GET /<what>/<id>: *obj is borrowed from *reply (free *reply). TP_ENOTFOUND when gone. */
int tp_gr_get(tp_gr_session *s, json_t **reply, json_t **obj, const tp_op *op,
	      const tp_gr_kind *k, const char *id);
/* POST path with body (secrets scrubbed from errors): *obj borrowed from *reply. */
int tp_gr_post(tp_gr_session *s, json_t **reply, json_t **obj, const tp_op *op,
	       const tp_gr_kind *k, const char *path, const json_t *body);
/*
 * Before a create: namesakes in `list` (live objects with the same name_key value). Returns 0
 * with *reuse (borrowed, may be NULL) when the create may go on, reusing *reuse (made by an
 * earlier attempt of this create in this session, or k->same); TP_ECONFLICT for a locked
 * namesake; TP_EEXISTS for one Tapestry did not create.
 */
int tp_gr_check_collision(tp_gr_session *s, const tp_op *op, const tp_gr_kind *k,
			  const json_t *list, const char *name, json_t **reuse);
/* DELETE, with ?force=true for async kinds in delete_mode force; in delete_mode wait, polls
 * until Grouparoo's workers removed it (bounded by tp_gr_delete_wait_ms). Gone is success. */
int tp_gr_delete(tp_gr_session *s, const tp_op *op, const tp_gr_kind *k, const char *id);

/* The generic slots. */
int tp_gr_observe(tp_gr_session *s, const tp_gr_kind *k, const tp_op *ops, size_t n,
		  json_t **out);
int tp_gr_create(tp_gr_session *s, const tp_gr_kind *k, const tp_op *op, tp_op_result *out);
int tp_gr_update(tp_gr_session *s, const tp_gr_kind *k, const tp_op *op, tp_op_result *out);
int tp_gr_remove(tp_gr_session *s, const tp_gr_kind *k, const tp_op *op);
int tp_gr_adopt(tp_gr_session *s, const tp_gr_kind *k, const tp_op *op, tp_op_result *out);

/* kinds: model, app, group */
int tp_gr_model_observe(void *s, const tp_op *ops, size_t n, json_t **out);
int tp_gr_model_create(void *s, const tp_op *op, tp_op_result *out);
int tp_gr_model_update(void *s, const tp_op *op, tp_op_result *out);
int tp_gr_model_remove(void *s, const tp_op *op);
int tp_gr_model_adopt(void *s, const tp_op *op, tp_op_result *out);

int tp_gr_app_observe(void *s, const tp_op *ops, size_t n, json_t **out);
int tp_gr_app_create(void *s, const tp_op *op, tp_op_result *out);
int tp_gr_app_update(void *s, const tp_op *op, tp_op_result *out);
int tp_gr_app_remove(void *s, const tp_op *op);
int tp_gr_app_adopt(void *s, const tp_op *op, tp_op_result *out);

int tp_gr_group_observe(void *s, const tp_op *ops, size_t n, json_t **out);
int tp_gr_group_create(void *s, const tp_op *op, tp_op_result *out);
int tp_gr_group_update(void *s, const tp_op *op, tp_op_result *out);
int tp_gr_group_remove(void *s, const tp_op *op);
int tp_gr_group_adopt(void *s, const tp_op *op, tp_op_result *out);

/* ---------------------------------------------------------------- source.c */

int tp_gr_source_observe(void *s, const tp_op *ops, size_t n, json_t **out);
int tp_gr_source_create(void *s, const tp_op *op, tp_op_result *out);
int tp_gr_source_update(void *s, const tp_op *op, tp_op_result *out);
int tp_gr_source_remove(void *s, const tp_op *op);
int tp_gr_source_adopt(void *s, const tp_op *op, tp_op_result *out);

int tp_gr_property_observe(void *s, const tp_op *ops, size_t n, json_t **out);
int tp_gr_property_create(void *s, const tp_op *op, tp_op_result *out);
int tp_gr_property_update(void *s, const tp_op *op, tp_op_result *out);
int tp_gr_property_remove(void *s, const tp_op *op);
int tp_gr_property_adopt(void *s, const tp_op *op, tp_op_result *out);

/* ---------------------------------------------------------------- destination.c */

int tp_gr_destination_observe(void *s, const tp_op *ops, size_t n, json_t **out);
int tp_gr_destination_create(void *s, const tp_op *op, tp_op_result *out);
int tp_gr_destination_update(void *s, const tp_op *op, tp_op_result *out);
int tp_gr_destination_remove(void *s, const tp_op *op);
int tp_gr_destination_adopt(void *s, const tp_op *op, tp_op_result *out);

#endif
