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
} tp_kind;

/* ---------------------------------------------------------------- providers */

typedef struct tp_provider {
	const char *name;                 /* "aws", "snowflake", ... */
	const tp_field *config;           /* schema of providers.<name> in tapestry.yaml */
	bool needs_config;                /* resources of this provider need a providers entry */
	const tp_kind *const *kinds;      /* NULL-terminated */
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

#endif
