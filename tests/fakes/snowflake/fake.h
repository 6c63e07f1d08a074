/*
 * The Snowflake fake's private header: the pieces main.c (HTTP, auth, statement handles,
 * faults, log) shares with lex.c (tokens and statement splitting), exec.c (the DDL/SHOW subset
 * over an in-memory catalog) and auth.c (key-pair JWT verification). The fake uses util/ and
 * OpenSSL/jansson only: it never calls the Snowflake client code it is there to test.
 */
#ifndef FAKE_SNOWFLAKE_H
#define FAKE_SNOWFLAKE_H

#include "util/util.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---------------------------------------------------------------- errors */

/* A Snowflake error as the SQL API reports it (QueryFailureStatus). */
typedef struct {
	char code[16];      /* "002003" */
	char sql_state[8];  /* "02000" */
	char message[1024]; /* "SQL compilation error:\n..." */
} fk_error;

/* Fills e and returns -1. */
int fk_fail(fk_error *e, const char *code, const char *state, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* ---------------------------------------------------------------- tokens */

typedef enum {
	FK_EOF,
	FK_WORD,   /* unquoted identifier or keyword; `up` is its upper-case spelling */
	FK_QIDENT, /* "quoted identifier"; `text` is its value ("" undoubled) */
	FK_STRING, /* 'string' or $$string$$; `text` is its value (escapes applied) */
	FK_NUMBER, /* 123, 1.5 */
	FK_PUNCT   /* one character: . , ( ) = ; * and others */
} fk_tok_type;

typedef struct {
	fk_tok_type type;
	char *text; /* as written (WORD, NUMBER, PUNCT) or the decoded value (QIDENT, STRING) */
	char *up;   /* upper-case text (WORD) */
	size_t off; /* byte offset in the statement */
	size_t end; /* offset just after the token */
} fk_tok;

typedef struct {
	fk_tok *items;
	size_t len;
	size_t cap;
} fk_toks;

/* Tokenises one statement. -1 with e set on an unterminated string or identifier. */
int fk_lex(fk_toks *out, const char *sql, size_t len, fk_error *e);
void fk_toks_free(fk_toks *t);

/* One statement of a request: text (trimmed), and where it starts in the request. */
typedef struct {
	char *text;
	int line; /* 1-based */
	int col;  /* 1-based position within the line */
} fk_stmt;

/* Splits a request's text at top-level ';' (strings, quoted identifiers, $$ bodies and
 * comments respected). Pieces holding only blanks and comments are dropped. */
int fk_split(fk_stmt **out, size_t *n, const char *sql, fk_error *e);
void fk_stmts_free(fk_stmt *s, size_t n);

/* ---------------------------------------------------------------- catalog and execution */

/* Who runs a statement, and where. */
typedef struct {
	const char *user;      /* authenticated user (stored name) */
	const char *role;      /* current role */
	const char *warehouse; /* current warehouse, or NULL */
	const char *database;  /* current database (request body), or NULL */
	const char *schema;    /* current schema, or NULL */
	int64_t now_ms;
} fk_ctx;

/* The outcome of one statement. */
typedef struct {
	json_t *columns;      /* [[name, type], ...] */
	json_t *rows;         /* [[string|null, ...], ...] */
	bool write;           /* a statement that changes the catalog (DDL, GRANT) */
	bool needs_warehouse; /* a query that runs on a warehouse (SELECT) */
	int64_t wait_ms;      /* SYSTEM$WAIT: how long the statement "runs" */
} fk_result;

void fk_result_clear(fk_result *r);

/* A new catalog with the system roles, the bootstrap user (public key body, base64 DER) with
 * its role granted, and optionally a default warehouse for it. */
json_t *fk_catalog_new(const char *user, const char *public_key_b64, const char *role,
		       const char *warehouse, int64_t now_ms);
/* Executes one statement. */
int fk_exec(json_t *catalog, const fk_ctx *ctx, const char *sql, fk_result *out, fk_error *e);
/* The statement with password literals blanked, for the request log. Caller frees. */
char *fk_redact(const char *sql);
/* Whether `role` may be used by `user` (granted directly, or PUBLIC). */
bool fk_role_granted(json_t *catalog, const char *user, const char *role);
/* Resumes a suspended warehouse for a query: 1 resumed, 0 already running, -1 missing (e
 * set). */
int fk_warehouse_use(json_t *catalog, const char *name, int64_t now_ms, fk_error *e);

/* ---------------------------------------------------------------- auth */

/* The SHA256:<base64> fingerprint of a base64 DER public key, or NULL when it is not one. */
char *fk_key_fingerprint(const char *public_key_b64);
/* Verifies a key-pair JWT for `account` against the catalog's users: RS256, iss/sub shape,
 * the signature with the user's RSA_PUBLIC_KEY or RSA_PUBLIC_KEY_2, iat/exp within an hour.
 * On success *user is the user's stored name (new string). */
int fk_jwt_verify(char **user, json_t *catalog, const char *account, const char *token,
		  int64_t now_s, fk_error *e);

#endif
