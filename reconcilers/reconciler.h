/*
 * reconcilers — the contract between the engine and the providers.
 *
 * A provider (aws, snowflake, airbyte, grouparoo, local) is a vtable: a tp_provider struct
 * with its connection schema and its kinds, implemented in its own folder and registered by
 * one line in registry.c. A kind (e.g. "snowflake.warehouse") declares the schema of its
 * `spec` (fields, types, required, defaults, immutability, sensitivity), the outputs other
 * resources may reference, and hooks the spec loader and the diff call. The slots that talk to
 * the live APIs (observe, create, update, delete) are added to this struct by the apply engine;
 * a kind that has no API code yet leaves them NULL and the engine refuses to apply it.
 */
#ifndef TP_RECONCILER_H
#define TP_RECONCILER_H

#include "../util/util.h"

struct tp_tree;      /* spec/spec.h */
struct tp_op;        /* below */
struct tp_op_result; /* below */

/* ---------------------------------------------------------------- schemas */

typedef enum {
	TP_TYPE_STRING,
	TP_TYPE_INT,
	TP_TYPE_NUMBER,
	TP_TYPE_BOOL,
	TP_TYPE_OBJECT, /* fixed set of fields (tp_field.fields); unknown keys are errors */
	TP_TYPE_LIST,   /* elements described by tp_field.items */
	TP_TYPE_MAP,    /* free string keys; values described by tp_field.items */
	TP_TYPE_ANY     /* free-form JSON (YAML 1.2 core schema), e.g. connector configuration */
} tp_type;

enum {
	TP_F_REQUIRED = 1u << 0,   /* must be present and not null */
	TP_F_IMMUTABLE = 1u << 1,  /* a change replaces the object (delete + create) */
	TP_F_SENSITIVE = 1u << 2,  /* value never printed, stored only as a keyed hash */
	TP_F_SECRET_REF = 1u << 3, /* must be exactly one ${secret:...} reference: no literal
				      secrets in Git. Implies SENSITIVE. */
	TP_F_FILE = 1u << 4,       /* string: path relative to the pipeline directory; the file
				      must exist inside it (no "..", absolute paths or symlinks
				      out) */
	TP_F_UNORDERED = 1u << 5,  /* list: order does not matter (compared as a set) */
	TP_F_NOREF = 1u << 6,      /* string: references ${...} are not allowed (e.g. names) */
	TP_F_DEFAULT_NAME = 1u << 7 /* string: when absent, the loader sets it to the resource's
				       `name` (object names default to the address name) */
};

typedef struct tp_field {
	const char *name;                /* NULL terminates a field array */
	tp_type type;
	unsigned flags;                  /* TP_F_* */
	const char *def;                 /* default as JSON text ("8", "\"cron\"", "[]"), or NULL */
	const char *const *enums;        /* STRING: allowed values, NULL-terminated, or NULL */
	const struct tp_field *fields;   /* OBJECT: NULL-name-terminated array */
	const struct tp_field *items;    /* LIST/MAP: schema of one element (its name unused) */
	int64_t min, max;                /* INT: inclusive bounds, checked when min < max */
	const char *doc;                 /* one line for `tapestry explain`-style help */
} tp_field;

/* providers.<name>.max_concurrency, which every provider declares in its config: how many of
 * its calls run at once. n is the provider's default (tp_provider.max_concurrency). */
#define TP_STRINGIFY_(x) #x
#define TP_STRINGIFY(x) TP_STRINGIFY_(x)
#define TP_FIELD_MAX_CONCURRENCY(n)                                                            \
	{.name = "max_concurrency", .type = TP_TYPE_INT, .min = 1, .max = 64,                     \
	 .doc = "calls to this provider in flight at once, 1 to 64 (default " TP_STRINGIFY(n)     \
		"): raise it to what the API's rate limits allow, lower it to spare a small server"}

/* ---------------------------------------------------------------- kinds */

/* Where a kind sits in the pipeline; the dashboard groups resources by it. */
typedef enum {
	TP_PHASE_INFRASTRUCTURE,
	TP_PHASE_INGESTION,
	TP_PHASE_WAREHOUSE,
	TP_PHASE_TRANSFORMATION,
	TP_PHASE_SYNCING,
	TP_PHASE_HOST
} tp_phase;

const char *tp_phase_name(tp_phase p);

/*
 * Reporter handed to a kind's `check` hook: errors are attached to a path inside the spec
 * ("warehouse_size", "streams.2.sync_mode"; "" for the spec itself) and the loader turns the
 * path into file:line:col.
 */
typedef struct tp_check tp_check;
void tp_check_error(tp_check *c, const char *path, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

typedef struct tp_kind {
	const char *name;            /* "<provider>.<type>", e.g. "snowflake.warehouse" */
	tp_phase phase;
	const char *doc;             /* one sentence: what object this manages */
	const tp_field *fields;      /* schema of `spec` (NULL-name-terminated) */
	/* Outputs other resources may reference as ${kind/name.<output>}. An entry ending in ".*"
	 * ("outputs.*") admits any single sub-key. An entry starting with '~' ("~sha256") may
	 * change when the object is updated in place, so a plan that updates the object shows
	 * references to it as "(known after apply)"; the others (ids, names) are stable.
	 * NULL-terminated. */
	const char *const *outputs;

	/* Called by the spec loader after the schema checks passed, with defaults applied.
	 * Reports semantic errors the schema cannot express (mutually exclusive fields, value
	 * formats). May be NULL. Must not keep `spec`. */
	void (*check)(const json_t *spec, tp_check *c);

	/* Rewrites a spec (desired or observed) into canonical form in place before any
	 * comparison: identifier case, size spellings, cron suffixes, ordering of unordered
	 * lists, [] vs absent. Must be idempotent. May be NULL. */
	void (*normalise)(json_t *spec);

	/* Outputs that can be known before apply from the resolved desired spec (a file's path
	 * and content hash, an SSM parameter's name). Lets a plan show real values instead of
	 * "(known after apply)" for resources that are created or updated in the same plan.
	 * Returns a new object (possibly empty); values it cannot know are left out. The spec
	 * may contain unknown markers ({"$unknown": true}): leave outputs derived from them
	 * out. May be NULL. */
	json_t *(*predict_outputs)(const json_t *spec);

	/* ---- runtime slots: the apply engine's calls into the provider's API. A kind whose
	 * slots are NULL can be validated and planned but not applied or observed (the engine
	 * says so). Every slot runs on an engine worker thread with its provider's session;
	 * calls for one provider run concurrently up to tp_provider.max_concurrency. Errors:
	 * return TP_ETRANSIENT (5xx, timeouts, resets) or TP_ETHROTTLED (429; set the delay with
	 * tp_error_set_retry_after) for the engine to retry with backoff; any other code is
	 * permanent and its message (the API's own) is reported as is. */

	/* Observes the live objects for n recorded resources in one batch (one list call per
	 * kind and scope where the API allows). out[i] receives the observed spec in this
	 * kind's spec shape, or NULL when the object no longer exists. Fields the API does not
	 * return are left out (never drift); masked values stay masked; a sensitive value the
	 * API does return is replaced by tp_op_fingerprint (never kept in plain text). */
	int (*observe)(void *session, const struct tp_op *ops, size_t n, json_t **out);
	/* Creates the object from op->spec. Must tag it with op->marker where the API allows,
	 * and pass op->token where the API takes an idempotency token. */
	int (*create)(void *session, const struct tp_op *op, struct tp_op_result *out);
	/* Updates the object in place to op->spec (op->applied is what was there before). */
	int (*update)(void *session, const struct tp_op *op, struct tp_op_result *out);
	/* Deletes the object. An object that is already gone is success. Must refuse to delete
	 * an object that does not carry op->marker where the API has markers. */
	int (*remove)(void *session, const struct tp_op *op);
	/* Finds an object that an interrupted create left behind, by op->marker (or name where
	 * names are unique): 0 with out filled, TP_ENOTFOUND when there is none. */
	int (*adopt)(void *session, const struct tp_op *op, struct tp_op_result *out);
	/* Read-only preview of an update for `plan --refresh` (e.g. a CloudFormation change
	 * set, created, described and deleted): *out is a new JSON value stored as the plan
	 * entry's details, with a "resource_changes" list of {"Action", "LogicalResourceId",
	 * "ResourceType", "Replacement"} where the provider has one. May be NULL. */
	int (*plan_details)(void *session, const struct tp_op *op, json_t **out);
} tp_kind;

/* ---------------------------------------------------------------- runtime */

/* What a provider session is opened with (one session per provider per engine run). */
typedef struct {
	const char *pipeline;   /* pipeline name, part of ownership markers */
	const json_t *config;   /* providers.<name> with secret references resolved: never log */
	const char *endpoint;   /* endpoint override (environment or config), or NULL */
	tp_metrics *metrics;    /* tapestry_api_requests_total etc.; may be NULL */
	/* A cache that outlives the run (the state database's cache table), for what is slow to
	 * discover (Airbyte stream catalogs). cache_get: TP_ENOTFOUND when absent or expired,
	 * else *out is a new reference. Thread-safe. NULL when there is no state (e.g. plan
	 * without one). */
	int (*cache_get)(void *ctx, json_t **out, const char *key);
	int (*cache_put)(void *ctx, const char *key, const json_t *value, int64_t ttl_ms);
	void *cache_ctx;
	bool refresh_discovery; /* --refresh-schemas: ignore cached discoveries this run */
	/* How many of this provider's runtime calls the engine has in progress (read it with
	 * __atomic_load_n), or NULL. A provider that batches writes sends a batch as soon as
	 * every call in progress has joined one, instead of waiting for more. */
	const int *calls_in_flight;
} tp_provider_env;

/* One object operation handed to a kind's runtime slot. Everything is borrowed for the
 * duration of the call. */
typedef struct tp_op {
	const char *address;      /* "kind/name" */
	const char *name;
	const char *provider_id;  /* recorded id, or NULL */
	const json_t *spec;       /* create/update: desired spec, references AND secrets
				     resolved (never log, store or echo it); NULL otherwise */
	const json_t *applied;    /* last applied spec (secret references as text), or NULL */
	const json_t *outputs;    /* recorded outputs, or NULL */
	const tp_strlist *sensitive; /* spec paths holding secrets */
	const json_t *secret_hashes; /* recorded {path: keyed hash} of the secrets last applied, or
					NULL: an update can send only the secrets that changed */
	const char *token;        /* idempotency token of this journaled call */
	const char *marker;       /* ownership marker, "tapestry:<pipeline>:<address>" */
	const uint8_t *fingerprint_key; /* 32-byte installation key for tp_op_fingerprint */
	/* Resolves ${...} references and secrets in text (e.g. a template file's content) with
	 * the engine's current outputs: *out is a new string. */
	int (*interpolate)(void *ctx, const char *text, char **out);
	void *interpolate_ctx;
	/* The pipeline's files at this revision (for kinds that read repository files). */
	struct tp_tree *tree;
} tp_op;

typedef struct tp_op_result {
	char *provider_id; /* create/adopt: the object's id (owned) */
	json_t *outputs;   /* outputs after the call (owned), or NULL to keep the recorded ones */
} tp_op_result;

void tp_op_result_clear(tp_op_result *r);
/* {"$hmac": "<hex HMAC-SHA256(key, value)>"}: how observed sensitive values are compared. */
json_t *tp_op_fingerprint(const tp_op *op, const char *value, size_t len);

/* Resolves one secret reference (scheme "env", "file" or "ssm"). *out is a new string: free
 * it with tp_secret_free, which wipes it. The message never contains the value. Schemes
 * served by a provider (ssm) go through the resolver installed with tp_secret_set_resolver
 * (the engine installs one that uses the provider's session). */
typedef int (*tp_secret_resolver_fn)(void *ctx, const char *scheme, const char *location,
				     char **out);
void tp_secret_set_resolver(tp_secret_resolver_fn fn, void *ctx);
int tp_secret_resolve(char **out, const char *scheme, const char *location);
void tp_secret_free(char *s);
/* text with every ${secret:...} replaced by its value: *out must be freed with
 * tp_secret_free. Text without secret references is copied as is. */
int tp_secret_substitute(char **out, const char *text);

/* ---------------------------------------------------------------- providers */

typedef struct tp_provider {
	const char *name;                 /* "aws", "snowflake", ... */
	const tp_field *config;           /* schema of providers.<name> in tapestry.yaml */
	bool needs_config;                /* resources of this provider need a providers entry */
	const tp_kind *const *kinds;      /* NULL-terminated */
	/* Opens a session for one engine run (API clients, tokens, rate budget). NULL: the
	 * provider needs no session (slots get NULL). */
	int (*open)(void **out, const tp_provider_env *env);
	void (*close)(void *session);
	int max_concurrency;              /* calls in flight at once (0: 4); the config's
					   * max_concurrency overrides it */
	/* Secrets this provider serves: ${secret:<secret_scheme>:<location>} (e.g. "ssm" for
	 * aws). resolve_secret reads one with the provider's session; *out is a new string the
	 * caller wipes (tp_secret_free). NULL: none. */
	const char *secret_scheme;
	int (*resolve_secret)(void *session, const char *location, char **out);
} tp_provider;

/* ---------------------------------------------------------------- registry */

/* All providers, NULL-terminated, in a stable order. */
const tp_provider *const *tp_registry_providers(void);
const tp_provider *tp_registry_provider(const char *name);
/* Kind by full name ("aws.stack"), or NULL. */
const tp_kind *tp_registry_kind(const char *name);
/* The provider a kind belongs to. */
const tp_provider *tp_registry_provider_of(const tp_kind *kind);

/* Providers (defined in their folders). */
extern const tp_provider tp_provider_aws;
extern const tp_provider tp_provider_snowflake;
extern const tp_provider tp_provider_airbyte;
extern const tp_provider tp_provider_grouparoo;
extern const tp_provider tp_provider_local;

/* ---------------------------------------------------------------- helpers shared by kinds */

/* Checks and normalisation steps more than one kind needs (reconcilers/kind_util.c). */

/* True when s holds a ${...} reference: its value is only known at apply time, so format
 * checks and rewrites leave it alone. */
bool tp_kind_has_ref(const char *s);

/*
 * Refuses secrets written into free-form settings (connector configuration, app options).
 * Walks `value` (objects and arrays, at any depth; `path` is its spec path, e.g.
 * "configuration") and reports, for each string:
 *  - the masked value "**********": it can only come from copying what an API returned, and
 *    writing it back would store the mask as the secret;
 *  - a non-empty literal (no ${...}) under a key that looks like a credential: compared by
 *    suffix with case, '_' and '-' ignored — password, passwd, secret, apikey, token,
 *    privatekey, passphrase, secretkey, accesskey (secret_access_key), credentialsjson,
 *    clientsecret — so "token_expiry_date" and "access_key_id" are not credentials.
 * Array elements are judged by the key of the array.
 */
void tp_kind_check_literal_secrets(const json_t *value, const char *path, tp_check *c);

#endif
