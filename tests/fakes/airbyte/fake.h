/*
 * fake_airbyte — shared declarations of the strict Airbyte public API fake (main.c: server,
 * authentication, faults, log; schema.c: the subset of the reference OpenAPI spec that
 * requests are validated against; connectors.c: the built-in connector table with secret
 * fields and discoverable streams; api.c: the resources and their behaviour).
 *
 * The fake speaks the wire format of reference/airbyte/public-api.openapi.yaml and the
 * behaviour of reference/airbyte/NOTES.md, with the spec subset encoded in C tables: it never
 * reads the reference files at run time, and it shares no code with the reconciler it tests.
 */
#ifndef FK_FAKE_H
#define FK_FAKE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "util/util.h"

#define FK_MASK   "**********"
#define FK_PREFIX "/api/public/v1"

/* ---------------------------------------------------------------- schemas (schema.c) */

typedef enum { FK_STR, FK_UUID, FK_INT, FK_BOOL, FK_OBJ, FK_ARR, FK_ANYOBJ } fk_type;

typedef struct fk_prop {
	const char *name; /* NULL terminates a property list */
	fk_type type;
	bool required;
	const char *const *enums;    /* FK_STR: allowed values */
	const struct fk_prop *props; /* FK_OBJ: properties (unknown ones are refused) */
	const struct fk_prop *items; /* FK_ARR: one element */
} fk_prop;

/* Request bodies (components/schemas of the reference spec). */
extern const fk_prop fk_token_request;
extern const fk_prop fk_workspace_create;
extern const fk_prop fk_workspace_update;
extern const fk_prop fk_source_create;
extern const fk_prop fk_source_put;
extern const fk_prop fk_source_patch;
extern const fk_prop fk_destination_create;
extern const fk_prop fk_destination_put;
extern const fk_prop fk_destination_patch;
extern const fk_prop fk_connection_create;
extern const fk_prop fk_connection_patch;
extern const fk_prop fk_job_create;

extern const char *const fk_sync_modes[];
extern const char *const fk_job_types[];
extern const char *const fk_job_statuses[];

/* 0 when v matches schema; otherwise -1 with a message naming the path ("configurations.
 * streams.0.syncMode: must be one of ..."). */
int fk_validate(const json_t *v, const fk_prop *schema, const char *path, char *err, size_t errlen);
bool fk_is_uuid(const char *s);

/* ---------------------------------------------------------------- connectors (connectors.c) */

typedef struct {
	const char *name;
	const char *ns;     /* namespace, or NULL */
	bool incremental;   /* supports incremental sync modes */
	const char *cursor; /* default cursor field, or NULL */
	bool source_cursor; /* the cursor is defined by the source */
	const char *pk;     /* source-defined primary key field, or NULL */
	const char *fields; /* comma-separated top-level fields */
} fk_stream;

typedef struct {
	const char *type; /* sourceType / destinationType, e.g. "zoom" */
	bool source;
	const char *definition_id;
	const char *const *required; /* configuration keys the connector spec requires */
	const char *const *secrets;  /* dotted configuration paths marked airbyte_secret */
	const fk_stream *streams;    /* sources: the discoverable catalog */
} fk_connector;

const fk_connector *fk_connector_by_type(const char *type, bool source);
const fk_connector *fk_connector_by_definition(const char *definition_id, bool source);

/* ---------------------------------------------------------------- requests (main.c, api.c) */

typedef struct {
	const char *method;
	const char *path;        /* below /api/public/v1, e.g. "/sources/<id>" */
	json_t *query;           /* {name: [values]} (decoded) */
	json_t *body;            /* parsed JSON body (or form fields), or NULL */
	const char *public_base; /* base URL for next/previous links */
} fk_request;

typedef struct {
	unsigned status;
	json_t *body; /* JSON reply (owned), or NULL */
	const char *content_type;
	int retry_after; /* seconds, or -1 */
} fk_reply;

/* Sets a problem+json reply ({type, title, status, detail}). */
void fk_problem(fk_reply *r, unsigned status, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* ---------------------------------------------------------------- the API (api.c) */

/* Creates the initial workspace. */
void fk_api_init(const char *workspace_name, int job_seconds);
/* Handles an authenticated API request (the store is locked by the caller). */
void fk_api_handle(const fk_request *req, fk_reply *out);
/* Test control: the stored object with this id, secrets unmasked (NULL when unknown). */
json_t *fk_api_raw(const char *id);
/* Test control: merges fields into a stored object (drift the API would refuse). */
int fk_api_raw_patch(const char *id, const json_t *fields);
/* Test control: replaces the catalog a source discovers (streams in StreamProperties form). */
int fk_api_set_catalog(const char *source_id, const json_t *streams);
/* Replaces every secret value in a source/destination request body by "(secret)" (the mask
 * "**********" is kept as it is) so that the request log can show what was sent. */
json_t *fk_api_redact_body(const char *path, const json_t *body);
void fk_api_free(void);

/* Random v4 uuid. */
void fk_uuid(char out[37]);

#endif
