/*
 * spec — the desired state: a pipeline directory (tapestry.yaml, resources/<file>.yaml and the
 * templates/ and models/ files they name) turned into a validated resource graph.
 *
 * Data flow: a tp_tree (a directory on disk, or a Git tree read straight from the object
 * database) → YAML documents with positions → per-kind schema validation (schemas come from
 * the reconcilers' registry) → resources with references, dependencies and lifecycle →
 * a dependency graph in topological order. Every problem found becomes a diagnostic with
 * file:line:col; loading reports all of them, not just the first, and a pipeline with any
 * error is never handed to the diff.
 */
#ifndef TP_SPEC_H
#define TP_SPEC_H

#include <stdio.h>

#include "../reconcilers/reconciler.h"
#include "../util/util.h"

/* ---------------------------------------------------------------- limits */

#define TP_SPEC_MAX_FILE_BYTES ((size_t)16 * 1024 * 1024) /* refused by size before parsing */
#define TP_SPEC_MAX_FILES 10000                            /* resource files per pipeline */
#define TP_SPEC_MAX_NODES 100000   /* YAML nodes one document may expand to (aliases included) */
#define TP_SPEC_MAX_DEPTH 64       /* nesting depth of a YAML document */
#define TP_SPEC_MAX_NAME 128       /* resource name length */

/* A field naming a repository file (TP_F_FILE) holds "<path>@sha256:<first 16 hex digits of
 * the SHA-256 of its content>" once loaded: the plan sees content changes as spec changes. */
#define TP_FILE_DIGEST_SEP "@sha256:"
#define TP_FILE_DIGEST_HEX 16

/* Splits a loaded file field value into its path (new string) and digest (borrowed from
 * value, "" when absent). */
char *tp_file_field_path(const char *value, const char **digest);

/* ---------------------------------------------------------------- diagnostics */

typedef struct {
	char *file; /* relative to the pipeline directory */
	int line;   /* 1-based; 0 when the problem has no position (e.g. an empty directory) */
	int col;    /* 1-based */
	char *msg;
} tp_diag;

typedef struct {
	tp_diag *items;
	size_t len, cap;
	size_t max; /* further diagnostics are counted, not stored (0 = 1000) */
	size_t dropped;
} tp_diags;

void tp_diags_add(tp_diags *d, const char *file, int line, int col, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));
/* Sorts by file, line, col and prints "file:line:col: message" lines. */
void tp_diags_print(tp_diags *d, FILE *f);
void tp_diags_free(tp_diags *d);

/* ---------------------------------------------------------------- trees */

/*
 * Where pipeline files come from. Paths handed to a tree are already normalised by
 * tp_path_normalise (relative, no "." or ".." components, no empty components).
 */
typedef struct tp_tree tp_tree;
struct tp_tree {
	/* Reads a regular file. TP_ENOTFOUND when missing; TP_ETOOBIG when larger than max
	 * (checked before reading); TP_EINVALID when it is not a regular file or a symlink
	 * leads outside the tree. */
	int (*read)(tp_tree *t, tp_buf *out, const char *relpath, size_t max);
	/* Lists the names of the regular files directly inside reldir ("" is the root), sorted.
	 * TP_ENOTFOUND when reldir does not exist. */
	int (*list)(tp_tree *t, tp_strlist *out, const char *reldir);
	void (*free)(tp_tree *t);
	const char *root; /* shown in messages */
};

int tp_tree_fs_open(tp_tree **out, const char *dir);
void tp_tree_free(tp_tree *t);

/* Normalises a repository-relative path lexically. Refuses absolute paths, paths that climb
 * above the root with "..", empty paths and NUL bytes, with a message saying why. */
int tp_path_normalise(char **out, const char *path);

/* ---------------------------------------------------------------- references */

typedef enum { TP_REF_RESOURCE, TP_REF_SECRET } tp_ref_type;

typedef struct {
	tp_ref_type type;
	char *kind;     /* RESOURCE: "aws.stack" */
	char *name;     /* RESOURCE: "ingestion" */
	char *output;   /* RESOURCE: "outputs.BucketName" */
	char *scheme;   /* SECRET: "ssm" | "env" | "file" */
	char *location; /* SECRET: "/tapestry/airbyte/client_id" */
	size_t target;  /* RESOURCE: index of the referenced resource once resolved */
	char *path;     /* spec path where it appears ("parameters.BucketName") */
	int line, col;  /* where it appears */
} tp_ref;

/*
 * Scans a string for ${...} references. `$${` is a literal "${". Calls fn for each reference
 * found (fn may be NULL to only validate). Returns TP_EINVALID with a message for an
 * unterminated or malformed reference.
 */
typedef int (*tp_ref_fn)(void *ctx, const tp_ref *ref, size_t start, size_t end);
int tp_refs_scan(const char *s, tp_ref_fn fn, void *ctx);
/* True when the whole string is exactly one ${secret:...} reference. */
bool tp_ref_is_whole_secret(const char *s);
void tp_ref_clear(tp_ref *r);

/* ---------------------------------------------------------------- the pipeline */

typedef enum { TP_DELETION_DELETE, TP_DELETION_RETAIN } tp_deletion;

typedef struct {
	char *address; /* "kind/name" */
	const tp_kind *kind;
	char *name;
	json_t *spec;  /* validated, defaults applied; strings may still hold ${...} */
	char *file;    /* where the document is, relative to the pipeline directory */
	int line, col;

	tp_ref *refs;  /* every reference in the spec (resource and secret) */
	size_t nrefs;
	size_t *deps;  /* indices of resources this one depends on (unique, sorted) */
	size_t ndeps;
	tp_strlist sensitive_paths; /* spec paths never printed (sensitive or secret-derived) */

	bool prevent_destroy;
	tp_deletion deletion;
	tp_strlist ignore_changes;  /* spec paths whose live changes are never corrected */
} tp_resource;

typedef struct {
	const tp_provider *provider;
	json_t *config;  /* validated providers.<name>; secrets still as references */
	char *endpoint;  /* TAPESTRY_ENDPOINT_<PROVIDER>, else config `endpoint`, else NULL */
	bool endpoint_from_env;
} tp_provider_config;

typedef struct {
	int concurrency;           /* parallel actions (default 8) */
	double max_prune_percent;  /* prune guard (default 25) */
	bool self_heal;            /* correct drift (default false) */
	int64_t drift_interval_ms; /* default 10 min */
} tp_settings;

typedef struct {
	char *name;     /* `pipeline:` */
	tp_settings settings;
	tp_provider_config *providers;
	size_t nproviders;
	tp_resource *resources; /* sorted by address */
	size_t nresources;
	size_t *order;          /* topological order: dependencies first */
} tp_pipeline;

/*
 * Loads and validates the pipeline in tree. On success *out is the pipeline and diags is
 * empty. On failure returns TP_EINVALID with every problem in diags (or another code for an
 * I/O failure, with the message set), and *out is NULL.
 */
int tp_pipeline_load(tp_pipeline **out, tp_tree *tree, tp_diags *diags);
void tp_pipeline_free(tp_pipeline *p);

const tp_resource *tp_pipeline_find(const tp_pipeline *p, const char *address);
const tp_provider_config *tp_pipeline_provider(const tp_pipeline *p, const char *name);

/* Loads a single-document YAML file (the controller's own configuration) against a schema,
 * with the same checks and file:line:col diagnostics as the pipeline. Secret references stay
 * as text (resolve them with tp_secret_resolve); allow_secrets false refuses them. */
int tp_spec_load_file(json_t **out, const char *path, const tp_field *schema, bool allow_secrets,
		      tp_diags *diags);

/* Validates one YAML text as a single resource document set (used by the fuzz target and by
 * tests): the same code path as resources/<file>.yaml, without tapestry.yaml. */
int tp_spec_check_text(const char *file, const char *text, size_t len, tp_diags *diags);

#endif
