/*
 * The snowflake provider's private contract: what its files share and nothing outside this
 * folder sees. snowflake.c holds the schemas and wires the runtime slots; jwt.c makes key-pair
 * JWTs (or hands out an OAuth/programmatic token); client.c speaks the SQL API v2 (requests,
 * 202 polling, partitions, retries, multi-statement batching); sql.c writes identifiers,
 * literals and ownership markers; objects.c and grants.c are the kinds' runtime slots, built
 * on one SHOW per kind and scope.
 */
#ifndef TP_SNOWFLAKE_INT_H
#define TP_SNOWFLAKE_INT_H

#include "../reconciler.h"

#include <pthread.h>

#include <openssl/evp.h>

/* ---------------------------------------------------------------- identifiers and SQL text */

/* Identifiers appear in two spellings here. A *canonical* identifier is how specs hold names
 * (snowflake.c's normalisation): RAW for a plain upper-case name, "My db" (quoted, "" for a
 * quote) otherwise; a path joins parts with '.'. A *stored* name is the name itself as
 * Snowflake keeps it and SHOW prints it: RAW, My db. SQL written here quotes every part. */

/* Splits a canonical identifier path into stored names. TP_EINVALID when malformed. */
int tp_sf_path_split(tp_strlist *out, const char *canonical);
/* The canonical spelling of a stored name (new string). */
char *tp_sf_canon(const char *stored);
/* The canonical path of stored names (new string). */
char *tp_sf_canon_path(const char *const *stored, size_t n);
/* Appends "stored" with quotes doubled. */
void tp_sf_put_ident(tp_buf *b, const char *stored);
/* Appends a canonical path quoted part by part ("RAW"."ZOOM"). TP_EINVALID when malformed. */
int tp_sf_put_path(tp_buf *b, const char *canonical);
/* Appends a single-quoted string literal (quotes and backslashes escaped). */
void tp_sf_put_literal(tp_buf *b, const char *s);
/* Appends LIKE '<pattern>' matching exactly `stored` (%, _ and \ escaped); LIKE ignores case,
 * so callers still compare names exactly. */
void tp_sf_put_like(tp_buf *b, const char *stored);

/* Ownership markers live at the end of an object's COMMENT: "<comment> [managed by <marker>]"
 * ("[managed by <marker> <extra>]" when the kind keeps more, e.g. a view's SQL digest). */
char *tp_sf_comment_compose(const char *comment, const char *marker, const char *extra);
/* Splits a live comment into what the user wrote and the marker/extra (NULL when absent). All
 * outputs are new strings. */
void tp_sf_comment_split(const char *live, char **user, char **marker, char **extra);

/* The query of a CREATE VIEW text (what follows the top-level AS), trimmed; new string or
 * NULL when the text has no AS. */
char *tp_sf_view_body(const char *create_text);
/* First 16 hex digits of the SHA-256 of text. */
void tp_sf_digest16(char out[17], const char *text);

/* ---------------------------------------------------------------- authentication (jwt.c) */

/* The account as key-pair JWTs name it: upper-case, region and cloud cut off (at the first
 * '.', or for a ".global" name at the first '-'), any remaining '.' as '-'. New string. */
char *tp_sf_account_for_jwt(const char *account);
/* The base URL for an account: https://<account, lower-case, '_' as '-'>.snowflakecomputing.com
 * (a full host name or URL is accepted as given). New string. */
char *tp_sf_account_url(const char *account);
/* Loads an RSA private key from PEM text (PKCS#8, encrypted PKCS#8 or PKCS#1), with an
 * optional passphrase. Errors never contain key material. */
int tp_sf_key_load(EVP_PKEY **out, const char *pem, const char *passphrase);
/* "SHA256:<base64 of the SHA-256 of the DER SubjectPublicKeyInfo>" of a key. */
int tp_sf_key_fingerprint(char *out, size_t outlen, EVP_PKEY *key);
/* A signed RS256 JWT: iss ACCOUNT.USER.SHA256:fp, sub ACCOUNT.USER (account as
 * tp_sf_account_for_jwt, user upper-case), iat now, exp now + lifetime (at most 3600). */
int tp_sf_jwt_make(char **out, EVP_PKEY *key, const char *account, const char *user,
		   int64_t now_s, int64_t lifetime_s);

typedef struct tp_sf_auth tp_sf_auth;
/* From the provider configuration (secrets resolved): private_key (+ passphrase) for
 * KEYPAIR_JWT, else token for OAUTH (or PROGRAMMATIC_ACCESS_TOKEN when it looks like one). */
int tp_sf_auth_new(tp_sf_auth **out, const json_t *config);
void tp_sf_auth_free(tp_sf_auth *a);
/* The bearer token to send now (a JWT is re-minted before it expires) and its type for
 * X-Snowflake-Authorization-Token-Type. *out is a new string: free it with tp_secret_free. */
int tp_sf_auth_token(tp_sf_auth *a, char **out, const char **type);
/* Forgets the current JWT (after a 401) so the next call mints a new one. */
void tp_sf_auth_reset(tp_sf_auth *a);

/* ---------------------------------------------------------------- the SQL API client */

/* A statement failure as Snowflake reported it. */
typedef struct {
	char code[16];      /* "002003" */
	char sql_state[8];  /* "02000" */
	int http_status;
	int line;           /* multi-statement failures: the line the failed statement starts
			       on (1-based), else 0 */
} tp_sf_status;

/* A result set: columns by name, rows of strings (JSON null for SQL NULL). */
typedef struct {
	json_t *columns; /* ["name", ...] */
	json_t *rows;    /* [[string|null, ...], ...] */
} tp_sf_result;

void tp_sf_result_clear(tp_sf_result *r);
/* Index of a column by name (exact, then case-insensitive), or -1. */
int tp_sf_result_col(const tp_sf_result *r, const char *name);
/* Looks up every name in `names` (NULL-terminated) into idx; TP_EINVALID naming the first
 * column the result lacks ("<what>: the result has no column \"x\""). */
int tp_sf_result_cols(const tp_sf_result *r, const char *what, const char *const *names,
		      int *idx);
/* Cell text, or NULL for SQL NULL (or a column index < 0). */
const char *tp_sf_cell(const tp_sf_result *r, size_t row, int col);
size_t tp_sf_result_rows(const tp_sf_result *r);

typedef struct tp_sf_job tp_sf_job;

typedef struct tp_sf_session {
	tp_http_client *http;
	char *base_url;    /* no trailing '/' */
	char *role;        /* stored name for the request body, or NULL */
	char *warehouse;   /* stored name, or NULL: the user's default */
	char *pipeline;
	tp_sf_auth *auth;
	tp_metrics *metrics;
	int max_attempts;        /* tries per request for throttling and transient failures */
	int64_t backoff_base_ms;
	int64_t backoff_cap_ms;
	int64_t statement_timeout_s;
	/* batching of write statements (tp_sf_run) */
	pthread_mutex_t mu;
	pthread_cond_t cv;
	tp_sf_job *queue;        /* jobs waiting for the next request */
	bool leader;             /* a caller is collecting the next request */
	int64_t window_ms;       /* how long a leader collects at most (0: no batching) */
	int64_t last_queued_ms;  /* when the newest job joined the queue (monotonic) */
	size_t nqueued;          /* jobs in the queue */
	size_t nsending;         /* jobs in requests on their way */
	const int *in_flight;    /* the engine's calls in progress (env.calls_in_flight) */
	bool multi_ok;           /* multi-statement requests work (a warehouse is there) */
} tp_sf_session;

int tp_sf_session_open(void **out, const tp_provider_env *env);
void tp_sf_session_close(void *session);

/*
 * One SQL API request: POST /api/v2/statements with the statement text (n statements joined
 * by ";\n"; n > 1 sets MULTI_STATEMENT_COUNT), 202 polling, every partition fetched. Throttling
 * (429) and transient failures (5xx, 408 on polls, resets, malformed replies) are retried here
 * with the same requestId and retry=true, honouring Retry-After, up to max_attempts; then the
 * classified error is returned for the engine's own retry policy. SQL errors (422) carry
 * Snowflake's code, sqlState and message: TP_ENOTFOUND for "does not exist" (002003),
 * TP_EEXISTS for "already exists" (002002), TP_EINVALID otherwise. out may be NULL, st may be
 * NULL.
 */
int tp_sf_exec(tp_sf_session *s, tp_sf_result *out, const char *sql, size_t n,
	       tp_sf_status *st);
/* A single read statement (SHOW ...): never sends a warehouse. */
int tp_sf_query(tp_sf_session *s, tp_sf_result *out, const char *sql);
/*
 * Runs the write statements of one resource, in order. Calls that arrive within the batching
 * window (from other engine workers, i.e. independent resources) share one multi-statement
 * request; a failure is attributed to the statement Snowflake names, the resources before it
 * succeed, the ones after it are sent again. Without a usable warehouse it falls back to one
 * request per statement. st (may be NULL) receives the failure.
 */
int tp_sf_run(tp_sf_session *s, const tp_strlist *stmts, tp_sf_status *st);

/* ---------------------------------------------------------------- runtime slots */

int tp_sf_warehouse_observe(void *s, const tp_op *ops, size_t n, json_t **out);
int tp_sf_database_observe(void *s, const tp_op *ops, size_t n, json_t **out);
int tp_sf_schema_observe(void *s, const tp_op *ops, size_t n, json_t **out);
int tp_sf_role_observe(void *s, const tp_op *ops, size_t n, json_t **out);
int tp_sf_user_observe(void *s, const tp_op *ops, size_t n, json_t **out);
int tp_sf_view_observe(void *s, const tp_op *ops, size_t n, json_t **out);
int tp_sf_object_create(void *s, const tp_op *op, tp_op_result *out);
int tp_sf_object_update(void *s, const tp_op *op, tp_op_result *out);
int tp_sf_object_remove(void *s, const tp_op *op);
int tp_sf_object_adopt(void *s, const tp_op *op, tp_op_result *out);

int tp_sf_grant_observe(void *s, const tp_op *ops, size_t n, json_t **out);
int tp_sf_grant_create(void *s, const tp_op *op, tp_op_result *out);
int tp_sf_grant_update(void *s, const tp_op *op, tp_op_result *out);
int tp_sf_grant_remove(void *s, const tp_op *op);
int tp_sf_grant_adopt(void *s, const tp_op *op, tp_op_result *out);

int tp_sf_role_grant_observe(void *s, const tp_op *ops, size_t n, json_t **out);
int tp_sf_role_grant_create(void *s, const tp_op *op, tp_op_result *out);
int tp_sf_role_grant_update(void *s, const tp_op *op, tp_op_result *out);
int tp_sf_role_grant_remove(void *s, const tp_op *op);
int tp_sf_role_grant_adopt(void *s, const tp_op *op, tp_op_result *out);

#endif
