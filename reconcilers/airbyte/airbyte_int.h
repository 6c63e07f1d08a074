/*
 * The airbyte provider's private contract, shared by its files and its tests:
 *  - client.c: the public API client (bearer token from /applications/token refreshed before
 *    expiry and once after a 401, or a static token; problem-JSON errors with title and
 *    detail; limit/offset pagination that never follows the server's `next` links);
 *  - session.c: the provider session (open/close, workspace by id or name looked up once,
 *    the discovered-catalog cache behind a small interface, create tokens already sent);
 *  - wire.c: spec ↔ API translation, pure functions (request bodies, observed specs in the
 *    kind's snake_case shape, secret fingerprints, the PATCH-or-PUT choice for updates);
 *  - actors.c, connections.c: the runtime slots of the three kinds.
 * Nothing here logs or stores a secret value: request bodies that carry secrets are wiped
 * after use, and observed secrets are kept only as keyed fingerprints.
 */
#ifndef TP_AIRBYTE_INT_H
#define TP_AIRBYTE_INT_H

#include <pthread.h>

#include "../reconciler.h"

struct tp_state; /* state/state.h */

#define TP_AB_MASK "**********"

static inline const char *tp_ab_or(const char *s, const char *dflt)
{
	return s ? s : dflt;
}

/* ---------------------------------------------------------------- client (client.c) */

typedef struct tp_ab_client tp_ab_client;

typedef struct {
	const char *base_url;  /* API base including /api/public/v1 (trailing '/' ignored) */
	const char *client_id; /* application credentials for /applications/token, or */
	const char *client_secret;
	const char *token;       /* a static bearer token (never refreshed) */
	int64_t timeout_ms;      /* per request (0: 60 s; discovery can be slow) */
	int read_attempts;       /* GET attempts on transient failures (0: 3) */
	int64_t read_backoff_ms; /* base of the jittered backoff between them (0: 200 ms) */
} tp_ab_client_opts;

/* TP_EINVALID when neither a token nor both client credentials are given. Copies opts. */
int tp_ab_client_new(tp_ab_client **out, const tp_ab_client_opts *opts);
void tp_ab_client_free(tp_ab_client *c);

/*
 * One API call: path below the base ("/sources/<id>"), query already encoded or NULL, body
 * serialised as JSON when not NULL (its text is wiped after sending). *out (out may be NULL)
 * receives the parsed reply of a 2xx answer, NULL for an empty one. GET calls are retried on
 * transient failures (5xx, 429 honouring Retry-After, resets) up to read_attempts; writes
 * are not (the engine retries them, with its journal). A 401 refreshes the access token once
 * and repeats the call. Errors: the tp_http_status_error codes, with the message
 * "airbyte: <METHOD> <path>: HTTP <status>: <title>: <detail>" from a problem-JSON answer;
 * TP_EINVALID for a 2xx answer that is not JSON.
 */
int tp_ab_call(tp_ab_client *c, json_t **out, const char *method, const char *path,
	       const char *query, const json_t *body);
/* Every item of a list endpoint ({data, next, previous}), page by page with limit/offset
 * (limit 100) until a short page; `next` is never followed. *out is a new array. */
int tp_ab_list(tp_ab_client *c, json_t **out, const char *path, const char *query);
/* The base URL the client talks to (no trailing '/'). */
const char *tp_ab_client_base(const tp_ab_client *c);

typedef struct {
	uint64_t requests;       /* API requests sent (token requests excluded) */
	uint64_t token_requests; /* POST /applications/token sent */
} tp_ab_client_stats;
void tp_ab_client_get_stats(tp_ab_client *c, tp_ab_client_stats *out);

/* ---------------------------------------------------------------- catalog cache (session.c) */

/*
 * Where discovered catalogs are kept between calls and runs. get: TP_ENOTFOUND when absent
 * or expired, else *out is a new reference. put: ttl_ms > 0. Implementations must be
 * thread-safe (slots run on several engine workers). release frees the context (may be NULL).
 */
typedef struct {
	int (*get)(void *ctx, json_t **out, const char *key);
	int (*put)(void *ctx, const char *key, const json_t *value, int64_t ttl_ms);
	void (*release)(void *ctx);
	void *ctx;
} tp_ab_cache;

/* In memory, for one session (the default: the engine gives slots no state handle yet). */
void tp_ab_cache_memory(tp_ab_cache *out);
/* Over the state database's cache table (tp_state_cache_get/put), serialised by a mutex of
 * its own: the handle must not be used by anyone else meanwhile. */
void tp_ab_cache_state(tp_ab_cache *out, struct tp_state *st);
void tp_ab_cache_release(tp_ab_cache *c);

#define TP_AB_SCHEMA_TTL_MS ((int64_t)60 * 60 * 1000)

/*
 * The catalog a source discovers (GET /streams?sourceId=…): the StreamProperties array. From
 * the cache (key "airbyte:<base>:catalog:<source id>") unless `fresh`; otherwise, or when
 * absent, discovered (with ignoreCache=true when `fresh`) and cached for ttl_ms.
 */
int tp_ab_catalog_get(json_t **out, tp_ab_client *c, tp_ab_cache *cache, const char *source_id,
		      int64_t ttl_ms, bool fresh);
/* Checks the streams of a connection spec against a catalog: every stream exists (by name,
 * and namespace when given or needed) and its sync_mode is one the stream supports.
 * TP_EINVALID naming the stream and what the catalog offers. */
int tp_ab_streams_check(const json_t *catalog, const json_t *streams, const char *address);

/* ---------------------------------------------------------------- session (session.c) */

typedef struct {
	tp_ab_client *client;
	char *pipeline;
	char *default_workspace; /* providers.airbyte.workspace: id or name */
	pthread_mutex_t mu;
	json_t *workspaces; /* {"as written": id}: each looked up once */
	tp_ab_cache cache;
	int64_t schema_ttl_ms;
	bool refresh_schemas; /* bypass the catalog cache (--refresh-schemas) */
	json_t *fresh;        /* {source id: true}: discovered fresh in this session */
	json_t *attempted;    /* {create token: true}: creates already sent */
	json_t *listed;       /* {"<collection> <workspace>": [{id, name, type, definition}]}:
			       * what the session has seen and made, for the namesake check */
} tp_ab_session;

/* tp_provider.open/close. */
int tp_ab_open(void **out, const tp_provider_env *env);
void tp_ab_close(void *session);

/* The workspace id for an id or a name (NULL: the provider's default). Names are looked up
 * once per session; TP_ENOTFOUND / TP_ECONFLICT (ambiguous) otherwise. *out is new. */
int tp_ab_workspace_id(tp_ab_session *s, char **out, const char *name_or_id);
/* The catalog of a source for validating a connection's streams: cached, discovered fresh
 * with --refresh-schemas, and discovered fresh once more when `stale` (a stream was missing
 * from what the cache held). */
int tp_ab_session_catalog(tp_ab_session *s, json_t **out, const char *source_id, bool stale);
/* Create tokens: whether this create was sent before in this session (an engine retry). */
bool tp_ab_attempted(tp_ab_session *s, const char *token);
void tp_ab_mark_attempted(tp_ab_session *s, const char *token);
/*
 * The objects of a collection in workspace ws, by their identifying fields only (id key,
 * name, type key, definitionId; never configuration): listed from the API the first time in
 * a session, or every time with fresh, then kept with what this session creates
 * (tp_ab_session_note). A run that creates n objects lists once, not n times. *out is new.
 */
int tp_ab_session_listed(tp_ab_session *s, json_t **out, const char *collection, const char *ws,
			 const char *id_key, const char *type_key, bool fresh);
void tp_ab_session_note(tp_ab_session *s, const char *collection, const char *ws,
			const char *id_key, const char *type_key, const json_t *obj);

/* ---------------------------------------------------------------- wire (wire.c) */

typedef enum { TP_AB_SOURCE, TP_AB_DESTINATION } tp_ab_role;

typedef struct {
	tp_ab_role role;
	const char *noun;       /* "source" */
	const char *collection; /* "/sources" */
	const char *id_key;     /* "sourceId" */
	const char *type_key;   /* "sourceType" */
	const char *kind;       /* "airbyte.source" */
} tp_ab_actor;

extern const tp_ab_actor tp_ab_source;
extern const tp_ab_actor tp_ab_destination;

/* Whether s is a uuid (either case); ids compare case-insensitively. */
bool tp_ab_is_uuid(const char *s);
bool tp_ab_id_equal(const char *a, const char *b);

/* POST /sources body from a resolved spec. */
json_t *tp_ab_actor_create_body(const tp_ab_actor *a, const json_t *spec, const char *workspace_id);
/*
 * The update of a source or destination to op->spec. PATCH (deep merge) with the name,
 * every non-secret configuration value, and the secret values whose keyed hash differs from
 * the recorded one; PUT (whole replacement) when the desired configuration drops a key that
 * was applied, with unchanged secrets sent as the mask (which PUT keeps). recorded_hashes
 * ({spec path: hex HMAC}, as state keeps them) may be NULL: every secret counts as changed.
 * *method is "PATCH" or "PUT".
 */
json_t *tp_ab_actor_update_body(const tp_ab_actor *a, const tp_op *op,
				const json_t *recorded_hashes, const char **method);
/* Whether the secret at path (in op->sensitive) differs from its recorded hash. */
bool tp_ab_secret_changed(const tp_op *op, const char *path, const json_t *recorded_hashes);
/* An API source/destination → observed spec (name, workspace, connector, definition_id,
 * configuration); sensitive paths answered in clear become fingerprints, masked ones stay
 * masked. workspace_echo: what to report as `workspace` (NULL: the live id). */
json_t *tp_ab_actor_observed(const tp_ab_actor *a, const tp_op *op, const json_t *resp,
			     const char *workspace_echo);
/* Whether an API object is the one an applied spec describes (same name and connector). */
bool tp_ab_actor_matches(const tp_ab_actor *a, const json_t *applied, const json_t *obj);

/* POST /connections (create) or PATCH /connections/<id> body from a resolved spec. */
json_t *tp_ab_connection_body(const json_t *spec, bool create);
/* An API connection → observed spec, its streams projected on the fields the applied spec
 * sets for them (source-defined keys, default sync modes and cursors the API fills in are
 * not what Tapestry set, so they are not compared). applied may be NULL. */
json_t *tp_ab_connection_observed(const json_t *resp, const json_t *applied);
bool tp_ab_connection_matches(const json_t *applied, const json_t *obj);

/* Replaces every string in v with 'x's (before releasing JSON that held secrets). */
void tp_ab_json_wipe(json_t *v);
/* {"id": id, "name": name} */
json_t *tp_ab_outputs(const char *id, const char *name);

/* ---------------------------------------------------------------- slots (actors.c, connections.c)
 */

int tp_ab_source_observe(void *session, const tp_op *ops, size_t n, json_t **out);
int tp_ab_source_create(void *session, const tp_op *op, tp_op_result *out);
int tp_ab_source_update(void *session, const tp_op *op, tp_op_result *out);
int tp_ab_source_remove(void *session, const tp_op *op);
int tp_ab_source_adopt(void *session, const tp_op *op, tp_op_result *out);

int tp_ab_destination_observe(void *session, const tp_op *ops, size_t n, json_t **out);
int tp_ab_destination_create(void *session, const tp_op *op, tp_op_result *out);
int tp_ab_destination_update(void *session, const tp_op *op, tp_op_result *out);
int tp_ab_destination_remove(void *session, const tp_op *op);
int tp_ab_destination_adopt(void *session, const tp_op *op, tp_op_result *out);

int tp_ab_connection_observe(void *session, const tp_op *ops, size_t n, json_t **out);
int tp_ab_connection_create(void *session, const tp_op *op, tp_op_result *out);
int tp_ab_connection_update(void *session, const tp_op *op, tp_op_result *out);
int tp_ab_connection_remove(void *session, const tp_op *op);
int tp_ab_connection_adopt(void *session, const tp_op *op, tp_op_result *out);

#endif
