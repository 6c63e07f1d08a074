/*
 * fake_snowflake — a strict, stateful stand-in for Snowflake's SQL API v2, for Tapestry's
 * tests and demo (the "embedded Snowflake"). It speaks the wire protocol of
 * shared/reference/snowflake/sqlapi.openapi.yaml and keeps an in-memory catalog that the
 * DDL/GRANT/SHOW statements the reconciler sends act on (exec.c).
 *
 * Usage:
 *   fake_snowflake --port N --account ACME-TEST --user TAPESTRY --public-key key.pub
 *                  [--role TAPESTRY_ADMIN] [--default-warehouse COMPUTE_WH] [--token T]
 *                  [--log FILE] [--latency-ms N] [--exec-ms N] [--sync-wait-ms N]
 *                  [--partition-rows N] [--fail SPEC] [--fail-rate SPEC] [--retry-after S]
 *                  [--seed N]
 *
 *   --port N              listen on 127.0.0.1:N (only loopback); 0 picks a free port. The
 *                         first line on stdout is "fake_snowflake listening on
 *                         http://127.0.0.1:<port>".
 *   --account ID          account identifier the JWT iss/sub must carry (normalised:
 *                         upper-case, e.g. ACME-TEST)
 *   --user NAME           the bootstrap user (a SERVICE user) ...
 *   --public-key FILE     ... and its RSA public key (PEM): JWTs must be signed with the
 *                         matching private key. Users created with RSA_PUBLIC_KEY can log in
 *                         too.
 *   --role NAME           a role created at start, granted to the user, its default role
 *   --default-warehouse W a warehouse created at start (suspended), the user's default: the
 *                         one multi-statement requests run on when the body names none
 *   --token T             also accept "Authorization: Bearer T" with token type OAUTH or
 *                         PROGRAMMATIC_ACCESS_TOKEN (as the bootstrap user)
 *   --log FILE            one JSON object per request (ts, method, path, requestId, retry,
 *                         status, body_sha: SHA-256 of the body, statements with passwords
 *                         blanked, writes, resumed warehouse, injected fault, replay...)
 *   --latency-ms N        delay every response by N ms
 *   --exec-ms N           every statement "runs" N ms (SELECT SYSTEM$WAIT(n) adds n s)
 *   --sync-wait-ms N      how long a request waits for its statements before answering 202
 *                         with a statement handle to poll (Snowflake: 45 s; default 45000)
 *   --partition-rows N    rows per result partition (default 1000)
 *   --fail SPEC           faults for the next POST /api/v2/statements requests, in order:
 *                         comma-separated STATUS (429, 500, 503, 504), `drop` (close the
 *                         connection before running anything), `reset` (the same with a
 *                         TCP reset instead of an orderly close), `lost` (run the statements,
 *                         then close the connection without a reply), `badjson` (a
 *                         truncated 200 body, statement not run),
 *                         `columns` (result columns reordered plus an unknown one),
 *                         `nocolumns` (the `name` column missing), each optionally xN
 *                         ("429x2,503"). POST /fake/faults with the same SPEC as body adds
 *                         faults at run time.
 *   --fail-rate SPEC      random faults: FAULT:P pairs, FAULT any of --fail's names and P
 *                         its probability per POST ("429:0.1,503:0.05,reset:0.05", summing
 *                         to at most 1; one draw per POST against the cumulative
 *                         probabilities)
 *   --retry-after S       Retry-After seconds sent with 429 (default 1; 0: none)
 *   --seed N              seed of the random faults
 *
 * Besides /api/v2/statements[/{handle}[/cancel]] it serves GET /fake/catalog (the catalog as
 * JSON, for assertions) and POST /fake/faults (neither is logged). It stops on SIGTERM or
 * SIGINT.
 *
 * Strictness (what it refuses, with Snowflake's status codes and error shapes): a missing
 * User-Agent (400), a Content-Type other than application/json (415), an Accept that excludes
 * JSON (406), a missing or invalid bearer token (401: bad JWT claims, signature, fingerprint,
 * expired or > 1 hour lifetime), a body that is not a JSON object, has unknown fields or a
 * field of the wrong type (400), unknown query parameters or a requestId that is not a UUID
 * (400), a role not granted to the user, a statement count that differs from
 * MULTI_STATEMENT_COUNT, a multi-statement request without a warehouse, and every SQL error
 * the catalog raises (422 with code, sqlState, message and statementHandle).
 */
#include "fake.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_BODY ((size_t)8 << 20)
#define MAX_HANDLES 20000

typedef struct {
	pthread_mutex_t mu;
	json_t *catalog;
	json_t *handles;  /* handle → stored statement */
	json_t *order;    /* handles in creation order (eviction) */
	json_t *requests; /* requestId → handle */
	json_t *faults;   /* queued fault names */
	json_t *rates;    /* [[fault, probability]...] in the order given */
	char *account;
	char *user;
	char *token;
	FILE *log;
	int64_t latency_ms;
	int64_t exec_ms;
	int64_t sync_wait_ms;
	int64_t partition_rows;
	int retry_after;
	uint64_t rng;
} fake_t;

static fake_t F;

typedef struct {
	tp_buf body;
	bool too_big;
} conn_t;

/* ---------------------------------------------------------------- small helpers */

static int64_t now_ms(void)
{
	return tp_clock_now_ms();
}

static double rnd(void)
{
	/* xorshift64*: reproducible with --seed */
	F.rng ^= F.rng >> 12;
	F.rng ^= F.rng << 25;
	F.rng ^= F.rng >> 27;
	return (double)((F.rng * 2685821657736338717ULL) >> 11) / 9007199254740992.0;
}

static void uuid(char out[37])
{
	uint8_t b[16];
	char hex[33];
	if (tp_random_bytes(b, sizeof(b)) < 0)
		for (size_t i = 0; i < sizeof(b); i++)
			b[i] = (uint8_t)(rnd() * 256);
	b[6] = (uint8_t)((b[6] & 0x0f) | 0x40);
	b[8] = (uint8_t)((b[8] & 0x3f) | 0x80);
	tp_hex_encode(hex, b, sizeof(b));
	snprintf(out, 37, "%.8s-%.4s-%.4s-%.4s-%.12s", hex, hex + 8, hex + 12, hex + 16,
		 hex + 20);
}

static bool is_uuid(const char *s)
{
	static const char pat[] = "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx";
	if (strlen(s) != sizeof(pat) - 1)
		return false;
	for (size_t i = 0; pat[i]; i++) {
		if (pat[i] == '-' ? s[i] != '-' : !strchr("0123456789abcdefABCDEF", s[i]))
			return false;
	}
	return true;
}

static bool known_fault(const char *name)
{
	static const char *const names[] = {"429",  "500",  "503",     "504",     "drop", "reset",
					    "lost", "badjson", "columns", "nocolumns", NULL};
	for (size_t i = 0; names[i]; i++)
		if (strcmp(name, names[i]) == 0)
			return true;
	return false;
}

/* Adds "429x2,badjson" to the fault queue; -1 on a malformed spec. */
static int queue_faults(const char *spec)
{
	char *copy = tp_strdup(spec), *save = NULL, *item;
	int rc = 0;
	for (item = strtok_r(copy, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
		char *x = strchr(item, 'x');
		long times = 1;
		while (*item == ' ')
			item++;
		if (x && x != item && strspn(x + 1, "0123456789") == strlen(x + 1) && x[1]) {
			*x = '\0';
			times = strtol(x + 1, NULL, 10);
		}
		if (!known_fault(item)) {
			rc = -1;
			break;
		}
		for (long i = 0; i < times && i < 1000; i++)
			json_array_append_new(F.faults, json_string(item));
	}
	free(copy);
	return rc;
}

/* The fault for this POST (mutex held): queued first, then random; NULL for none. */
static char *take_fault(void)
{
	size_t i;
	json_t *pair;
	double x, acc = 0;
	if (json_array_size(F.faults) > 0) {
		char *f = tp_strdup(json_string_value(json_array_get(F.faults, 0)));
		json_array_remove(F.faults, 0);
		return f;
	}
	if (json_array_size(F.rates) == 0)
		return NULL;
	x = rnd();
	json_array_foreach(F.rates, i, pair) {
		acc += json_real_value(json_array_get(pair, 1));
		if (x < acc)
			return tp_strdup(json_string_value(json_array_get(pair, 0)));
	}
	return NULL;
}

/* ---------------------------------------------------------------- responses */

typedef struct {
	unsigned status;
	char *body;          /* NULL: drop the connection */
	bool reset;          /* with body NULL: drop it with a TCP reset */
	char retry_after[16];
} reply_t;

static void reply_json(reply_t *r, unsigned status, json_t *body)
{
	r->status = status;
	r->body = json_dumps(body, JSON_COMPACT);
	json_decref(body);
}

static void reply_error(reply_t *r, unsigned status, const char *code, const char *sql_state,
			const char *message, const char *handle)
{
	json_t *b = json_pack("{s:s,s:s}", "code", code, "message", message);
	if (sql_state && sql_state[0])
		json_object_set_new(b, "sqlState", json_string(sql_state));
	if (handle) {
		char *url = tp_sprintf("/api/v2/statements/%s", handle);
		json_object_set_new(b, "statementHandle", json_string(handle));
		json_object_set_new(b, "statementStatusUrl", json_string(url));
		free(url);
	}
	reply_json(r, status, b);
}

static json_t *row_type(json_t *columns)
{
	json_t *rt = json_array(), *c;
	size_t i;
	json_array_foreach(columns, i, c) {
		const char *type = json_string_value(json_array_get(c, 1));
		bool text = strcmp(type, "text") == 0;
		bool fixed = strcmp(type, "fixed") == 0;
		json_array_append_new(
			rt, json_pack("{s:s,s:s,s:s,s:s,s:s,s:b,s:o,s:o,s:o,s:o,s:n}", "name",
				      json_string_value(json_array_get(c, 0)), "database", "",
				      "schema", "", "table", "", "type", type, "nullable", 1,
				      "byteLength",
				      text ? json_integer(16777216) : json_null(), "length",
				      text ? json_integer(16777216) : json_null(), "precision",
				      fixed ? json_integer(38) : json_null(), "scale",
				      fixed ? json_integer(0) : json_integer(3), "collation"));
	}
	return rt;
}

/* Applies a result fault to a stored statement (columns/nocolumns). */
static void mangle(json_t *st, const char *fault)
{
	json_t *cols = json_object_get(st, "columns"), *rows = json_object_get(st, "rows");
	size_t i;
	json_t *row;
	if (!cols)
		return;
	if (strcmp(fault, "columns") == 0) {
		/* reversed order, plus a column this client has never heard of */
		json_t *nc = json_array(), *nr = json_array();
		json_array_append_new(nc, json_pack("[s,s]", "new_in_a_later_release", "text"));
		for (size_t k = json_array_size(cols); k-- > 0;)
			json_array_append(nc, json_array_get(cols, k));
		json_array_foreach(rows, i, row) {
			json_t *r2 = json_pack("[s]", "surprise");
			for (size_t k = json_array_size(row); k-- > 0;)
				json_array_append(r2, json_array_get(row, k));
			json_array_append_new(nr, r2);
		}
		json_object_set_new(st, "columns", nc);
		json_object_set_new(st, "rows", nr);
	} else {
		for (size_t k = 0; k < json_array_size(cols); k++) {
			if (strcmp(json_string_value(json_array_get(json_array_get(cols, k), 0)),
				   "name") != 0)
				continue;
			json_array_remove(cols, k);
			json_array_foreach(rows, i, row)
				json_array_remove(row, k);
			break;
		}
	}
}

/* The ResultSet of a stored statement (mutex held), partition `part`. */
static void reply_stored(reply_t *r, const char *handle, json_t *st, int64_t part,
			 bool nullable)
{
	char *url = tp_sprintf("/api/v2/statements/%s", handle);
	json_t *b, *err = json_object_get(st, "error");
	if (now_ms() < json_integer_value(json_object_get(st, "ready_at"))) {
		reply_json(r, 202,
			   json_pack("{s:s,s:s,s:s,s:s,s:I}", "code", "333334", "message",
				     "Asynchronous execution in progress. Use provided query id "
				     "to perform query monitoring and management.",
				     "statementHandle", handle, "statementStatusUrl", url,
				     "createdOn",
				     json_integer_value(json_object_get(st, "created_on"))));
		free(url);
		return;
	}
	if (err) {
		reply_error(r, (unsigned)json_integer_value(json_object_get(err, "status")),
			    tp_json_get_str(err, "code"), tp_json_get_str(err, "sqlState"),
			    tp_json_get_str(err, "message"), handle);
		free(url);
		return;
	}
	if (json_object_get(st, "children")) {
		b = json_pack("{s:{s:i,s:s,s:[{s:s,s:s,s:b}],s:[{s:i}]},s:[[s]],s:s,s:s,s:s,"
			      "s:s,s:O,s:I}",
			      "resultSetMetaData", "numRows", 1, "format", "jsonv2", "rowType",
			      "name", "multiple statement execution", "type", "text", "nullable",
			      0, "partitionInfo", "rowCount", 1, "data",
			      "Multiple statements executed successfully.", "code", "090001",
			      "sqlState", "00000", "statementHandle", handle, "message",
			      "Statement executed successfully.", "statementHandles",
			      json_object_get(st, "children"), "createdOn",
			      json_integer_value(json_object_get(st, "created_on")));
		json_object_set_new(b, "statementStatusUrl", json_string(url));
		reply_json(r, 200, b);
		free(url);
		return;
	}
	{
		json_t *rows = json_object_get(st, "rows");
		size_t total = json_array_size(rows);
		size_t per = (size_t)(F.partition_rows > 0 ? F.partition_rows : 1000);
		size_t nparts = total == 0 ? 1 : (total + per - 1) / per;
		json_t *data = json_array(), *info = json_array();
		if (part < 0 || (size_t)part >= nparts) {
			reply_error(r, 422, "000709", "", "Partition number out of range.", handle);
			free(url);
			json_decref(data);
			json_decref(info);
			return;
		}
		for (size_t k = 0; k < nparts; k++) {
			size_t cnt = k + 1 < nparts ? per : total - k * per;
			json_array_append_new(info, json_pack("{s:I,s:I}", "rowCount",
							      (json_int_t)cnt, "uncompressedSize",
							      (json_int_t)(cnt * 64)));
		}
		for (size_t k = (size_t)part * per; k < total && k < ((size_t)part + 1) * per;
		     k++) {
			json_t *row = json_deep_copy(json_array_get(rows, k)), *cell;
			size_t c;
			if (!nullable)
				json_array_foreach(row, c, cell)
					if (json_is_null(cell))
						json_array_set_new(row, c, json_string("null"));
			json_array_append_new(data, row);
		}
		if (part == 0) {
			b = json_pack("{s:{s:I,s:s,s:o,s:o},s:o,s:s,s:s,s:s,s:s,s:s,s:I}",
				      "resultSetMetaData", "numRows", (json_int_t)total, "format",
				      "jsonv2", "rowType", row_type(json_object_get(st, "columns")),
				      "partitionInfo", info, "data", data, "code", "090001",
				      "sqlState", "00000", "statementHandle", handle, "message",
				      "Statement executed successfully.", "statementStatusUrl", url,
				      "createdOn",
				      json_integer_value(json_object_get(st, "created_on")));
		} else {
			/* later partitions carry the rows only */
			json_decref(info);
			b = json_pack("{s:o}", "data", data);
		}
		reply_json(r, 200, b);
	}
	free(url);
}

static void store(const char *handle, json_t *st)
{
	json_object_set_new(F.handles, handle, st);
	json_array_append_new(F.order, json_string(handle));
	while (json_array_size(F.order) > MAX_HANDLES) {
		json_object_del(F.handles, json_string_value(json_array_get(F.order, 0)));
		json_array_remove(F.order, 0);
	}
}

/* ---------------------------------------------------------------- auth and checks */

static const char *header(struct MHD_Connection *c, const char *name)
{
	return MHD_lookup_connection_value(c, MHD_HEADER_KIND, name);
}

/* 0 with *user set, or a reply. */
static int authenticate(struct MHD_Connection *c, reply_t *r, char **user)
{
	const char *auth = header(c, MHD_HTTP_HEADER_AUTHORIZATION);
	const char *type = header(c, "X-Snowflake-Authorization-Token-Type");
	fk_error e = {0};
	int rc;
	*user = NULL;
	if (!auth || strncmp(auth, "Bearer ", 7) != 0 || !auth[7]) {
		reply_error(r, 401, "390303", "", "Invalid OAuth access token. [missing bearer "
			    "token]", NULL);
		return -1;
	}
	if (type && strcmp(type, "KEYPAIR_JWT") == 0) {
		pthread_mutex_lock(&F.mu);
		rc = fk_jwt_verify(user, F.catalog, F.account, auth + 7, now_ms() / 1000, &e);
		pthread_mutex_unlock(&F.mu);
		if (rc < 0) {
			reply_error(r, 401, e.code, "", e.message, NULL);
			return -1;
		}
		return 0;
	}
	if (type && strcmp(type, "OAUTH") != 0 && strcmp(type, "PROGRAMMATIC_ACCESS_TOKEN") != 0) {
		reply_error(r, 401, "390303", "", "Invalid OAuth access token. [unknown "
			    "X-Snowflake-Authorization-Token-Type]", NULL);
		return -1;
	}
	if (!F.token || strlen(F.token) != strlen(auth + 7) ||
	    !tp_ct_equal(F.token, auth + 7, strlen(F.token))) {
		reply_error(r, 401, "390303", "", "Invalid OAuth access token. ", NULL);
		return -1;
	}
	*user = tp_strdup(F.user);
	return 0;
}

typedef struct {
	json_t *args;
} argv_t;

static enum MHD_Result collect_arg(void *cls, enum MHD_ValueKind kind, const char *key,
				   const char *value)
{
	argv_t *a = cls;
	(void)kind;
	json_object_set_new(a->args, key, json_string(value ? value : ""));
	return MHD_YES;
}

static bool flag(json_t *args, const char *key, bool *out, reply_t *r)
{
	const char *v = tp_json_get_str(args, key);
	*out = false;
	if (!v)
		return true;
	if (strcmp(v, "true") == 0 || strcmp(v, "false") == 0) {
		*out = strcmp(v, "true") == 0;
		return true;
	}
	reply_error(r, 400, "390400", "", "Invalid query parameter value.", NULL);
	return false;
}

/* Headers every request must carry. */
static bool check_headers(struct MHD_Connection *c, reply_t *r, bool has_body)
{
	const char *ua = header(c, MHD_HTTP_HEADER_USER_AGENT);
	const char *accept = header(c, MHD_HTTP_HEADER_ACCEPT);
	const char *ct = header(c, MHD_HTTP_HEADER_CONTENT_TYPE);
	if (!ua || !ua[0]) {
		reply_error(r, 400, "390400", "", "User-Agent header is required.", NULL);
		return false;
	}
	if (accept && !strstr(accept, "application/json") && !strstr(accept, "*/*")) {
		reply_error(r, 406, "390400", "", "Unsupported Accept header: only "
			    "application/json.", NULL);
		return false;
	}
	if (has_body && (!ct || strncasecmp(ct, "application/json", 16) != 0)) {
		reply_error(r, 415, "390400", "", "Unsupported media type: the API supports "
			    "application/json only.", NULL);
		return false;
	}
	return true;
}

/* ---------------------------------------------------------------- statements */

typedef struct {
	json_t *log; /* log entry being built */
} reqlog_t;

static const char *const param_names[] = {
	"MULTI_STATEMENT_COUNT", "TIMEZONE", "QUERY_TAG", "BINARY_OUTPUT_FORMAT",
	"DATE_OUTPUT_FORMAT", "TIME_OUTPUT_FORMAT", "TIMESTAMP_OUTPUT_FORMAT",
	"TIMESTAMP_LTZ_OUTPUT_FORMAT", "TIMESTAMP_NTZ_OUTPUT_FORMAT",
	"TIMESTAMP_TZ_OUTPUT_FORMAT", "USE_CACHED_RESULT", NULL};

/* Checks the request body's fields and types; NULL after replying. */
static json_t *parse_body(const tp_buf *raw, reply_t *r, long *count)
{
	json_t *b = NULL, *v;
	json_error_t je;
	const char *k;
	*count = 1;
	b = json_loadb(raw->ptr ? raw->ptr : "", raw->len, JSON_REJECT_DUPLICATES, &je);
	if (!json_is_object(b)) {
		char msg[256];
		snprintf(msg, sizeof(msg), "Unable to parse the request body as a JSON object: %s",
			 b ? "not an object" : je.text);
		reply_error(r, 400, "390142", "", msg, NULL);
		json_decref(b);
		return NULL;
	}
	json_object_foreach(b, k, v) {
		bool ok;
		if (strcmp(k, "statement") == 0 || strcmp(k, "database") == 0 ||
		    strcmp(k, "schema") == 0 || strcmp(k, "warehouse") == 0 ||
		    strcmp(k, "role") == 0)
			ok = json_is_string(v);
		else if (strcmp(k, "timeout") == 0)
			ok = json_is_integer(v) && json_integer_value(v) >= 0;
		else if (strcmp(k, "bindings") == 0 || strcmp(k, "parameters") == 0)
			ok = json_is_object(v);
		else if (strcmp(k, "resultSetMetaData") == 0)
			ok = json_is_object(v);
		else {
			char msg[256];
			snprintf(msg, sizeof(msg), "Unknown field in the request body: %s", k);
			reply_error(r, 400, "390142", "", msg, NULL);
			json_decref(b);
			return NULL;
		}
		if (!ok) {
			char msg[256];
			snprintf(msg, sizeof(msg), "Invalid value for the request body field %s",
				 k);
			reply_error(r, 400, "390142", "", msg, NULL);
			json_decref(b);
			return NULL;
		}
	}
	if (!tp_json_get_str(b, "statement")) {
		reply_error(r, 400, "390142", "", "The request body has no statement.", NULL);
		json_decref(b);
		return NULL;
	}
	json_object_foreach(json_object_get(b, "parameters"), k, v) {
		size_t i;
		for (i = 0; param_names[i]; i++)
			if (strcasecmp(k, param_names[i]) == 0)
				break;
		if (!param_names[i]) {
			char msg[256];
			snprintf(msg, sizeof(msg), "invalid parameter '%s'", k);
			reply_error(r, 400, "390142", "", msg, NULL);
			json_decref(b);
			return NULL;
		}
		if (strcasecmp(k, "MULTI_STATEMENT_COUNT") == 0) {
			char *end = NULL;
			if (json_is_integer(v))
				*count = (long)json_integer_value(v);
			else if (json_is_string(v))
				*count = strtol(json_string_value(v), &end, 10);
			if ((!json_is_integer(v) && !(json_is_string(v) && end && !*end &&
						      json_string_length(v) > 0)) ||
			    *count < 0) {
				reply_error(r, 400, "390142", "", "MULTI_STATEMENT_COUNT must be a "
					    "non-negative integer.", NULL);
				json_decref(b);
				return NULL;
			}
		}
	}
	return b;
}

/* Runs the request's statements (mutex held); fills the reply. */
static void run_statements(reply_t *r, json_t *body, long count, const char *user, bool async,
			   bool nullable, const char *fault, reqlog_t *lg, const char *request_id)
{
	const char *sql = tp_json_get_str(body, "statement");
	const char *role = tp_json_get_str(body, "role");
	const char *wh = tp_json_get_str(body, "warehouse");
	int64_t timeout_s = json_integer_value(json_object_get(body, "timeout"));
	json_t *u = json_object_get(json_object_get(F.catalog, "users"), user);
	json_t *stmts_log = json_array();
	fk_stmt *stmts = NULL;
	size_t n = 0;
	fk_error e = {0};
	char handle[37];
	fk_ctx ctx = {0};
	json_t *parent = NULL, *children = NULL;
	int64_t wait = 0, t0 = now_ms();
	int writes = 0;
	bool multi;

	uuid(handle);
	if (!role)
		role = tp_json_get_str(u, "default_role") ? tp_json_get_str(u, "default_role")
							  : "PUBLIC";
	if (!wh)
		wh = tp_json_get_str(u, "default_warehouse");
	json_object_set_new(lg->log, "role", json_string(role));
	if (!fk_role_granted(F.catalog, user, role)) {
		char msg[512];
		snprintf(msg, sizeof(msg), "Role '%s' specified in the request is not granted to "
			 "this user. Contact your local system administrator, or attempt to login "
			 "with another role, e.g. PUBLIC.", role);
		reply_error(r, 422, "390189", "08004", msg, handle);
		goto done;
	}
	if (tp_json_get_str(body, "database") &&
	    !json_object_get(json_object_get(F.catalog, "databases"),
			     tp_json_get_str(body, "database"))) {
		reply_error(r, 422, "390201", "08004", "The requested database does not exist or "
			    "not authorized.", handle);
		goto done;
	}
	if (json_object_size(json_object_get(body, "bindings")) > 0) {
		reply_error(r, 422, "002049", "0A000", "the fake does not support bind "
			    "variables", handle);
		goto done;
	}
	if (fk_split(&stmts, &n, sql, &e) < 0) {
		reply_error(r, 422, e.code, e.sql_state, e.message, handle);
		goto done;
	}
	for (size_t i = 0; i < n; i++) {
		char *red = fk_redact(stmts[i].text);
		json_array_append_new(stmts_log, json_string(red));
		free(red);
	}
	if (n == 0) {
		reply_error(r, 422, "000900", "42601", "SQL compilation error:\nEmpty SQL "
			    "statement.", handle);
		goto done;
	}
	if (count != 0 && (long)n != count) {
		char msg[256];
		snprintf(msg, sizeof(msg), "Actual statement count %zu did not match the desired "
			 "statement count %ld.", n, count);
		reply_error(r, 422, "000008", "0A000", msg, handle);
		goto done;
	}
	multi = count != 1;
	ctx.user = user;
	ctx.role = role;
	ctx.warehouse = wh;
	ctx.database = tp_json_get_str(body, "database");
	ctx.schema = tp_json_get_str(body, "schema");
	ctx.now_ms = now_ms();
	if (multi) {
		int used;
		if (!wh || (used = fk_warehouse_use(F.catalog, wh, ctx.now_ms, &e)) < 0) {
			if (!wh)
				fk_fail(&e, "000606", "57P03", "No active warehouse selected in the "
					"current session.  Select an active warehouse with the 'use "
					"warehouse' command.\n");
			reply_error(r, 422, e.code, e.sql_state, e.message, handle);
			goto done;
		}
		if (used == 1)
			json_object_set_new(lg->log, "resumed", json_string(wh));
		children = json_array();
	}
	for (size_t i = 0; i < n; i++) {
		fk_result res = {0};
		char child[37];
		json_t *st;
		if (fk_exec(F.catalog, &ctx, stmts[i].text, &res, &e) < 0) {
			char msg[1024 + 256];
			json_object_set_new(lg->log, "error_code", json_string(e.code));
			json_object_set_new(lg->log, "failed_statement", json_integer((json_int_t)i));
			if (!multi) {
				reply_error(r, 422, e.code, e.sql_state, e.message, handle);
				store(handle, json_pack("{s:I,s:I,s:{s:i,s:s,s:s,s:s}}", "created_on",
							(json_int_t)t0, "ready_at", (json_int_t)0,
							"error", "status", 422, "code", e.code,
							"sqlState", e.sql_state, "message",
							e.message));
				goto done;
			}
			snprintf(msg, sizeof(msg), "Execution of multiple statements failed on "
				 "statement \"%.30s...\" (at line %d, position %d).\n%s",
				 stmts[i].text, stmts[i].line, stmts[i].col - 1, e.message);
			reply_error(r, 422, e.code, e.sql_state, msg, handle);
			goto done;
		}
		if (res.needs_warehouse && !multi) {
			int used;
			if (!wh || (used = fk_warehouse_use(F.catalog, wh, ctx.now_ms, &e)) < 0) {
				if (!wh)
					fk_fail(&e, "000606", "57P03", "No active warehouse selected "
						"in the current session.  Select an active warehouse "
						"with the 'use warehouse' command.\n");
				fk_result_clear(&res);
				reply_error(r, 422, e.code, e.sql_state, e.message, handle);
				goto done;
			}
			if (used == 1)
				json_object_set_new(lg->log, "resumed", json_string(wh));
		}
		writes += res.write;
		wait += res.wait_ms + F.exec_ms;
		st = json_pack("{s:O,s:O,s:I}", "columns", res.columns, "rows", res.rows,
			       "created_on", (json_int_t)t0);
		fk_result_clear(&res);
		if (fault && (strcmp(fault, "columns") == 0 || strcmp(fault, "nocolumns") == 0))
			mangle(st, fault);
		if (multi) {
			uuid(child);
			json_object_set_new(st, "ready_at", json_integer(t0 + wait));
			store(child, st);
			json_array_append_new(children, json_string(child));
		} else {
			parent = st;
		}
	}
	if (multi)
		parent = json_pack("{s:O,s:I}", "children", children, "created_on",
				   (json_int_t)t0);
	if (timeout_s > 0 && wait > timeout_s * 1000) {
		/* cancelled at the timeout */
		char msg[256];
		snprintf(msg, sizeof(msg), "Statement reached its statement or warehouse timeout "
			 "of %lld second(s) and was canceled.", (long long)timeout_s);
		json_object_set_new(parent, "error",
				    json_pack("{s:i,s:s,s:s,s:s}", "status", 408, "code", "000630",
					      "sqlState", "57014", "message", msg));
		wait = timeout_s * 1000;
	}
	json_object_set_new(parent, "ready_at", json_integer(t0 + wait));
	store(handle, parent);
	if (request_id)
		json_object_set_new(F.requests, request_id, json_string(handle));
	if (async || wait > F.sync_wait_ms) {
		char *url = tp_sprintf("/api/v2/statements/%s", handle);
		reply_json(r, 202,
			   json_pack("{s:s,s:s,s:s,s:s,s:I}", "code", "333334", "message",
				     "Asynchronous execution in progress. Use provided query id "
				     "to perform query monitoring and management.",
				     "statementHandle", handle, "statementStatusUrl", url,
				     "createdOn", (json_int_t)t0));
		free(url);
	} else {
		/* wait for the statement "to run" (without the lock) */
		pthread_mutex_unlock(&F.mu);
		if (wait > 0)
			tp_clock_sleep_ms(wait);
		pthread_mutex_lock(&F.mu);
		parent = json_object_get(F.handles, handle);
		if (parent)
			reply_stored(r, handle, parent, 0, nullable);
		else
			reply_error(r, 500, "000603", "", "statement evicted", handle);
	}
done:
	json_object_set_new(lg->log, "statements", stmts_log);
	json_object_set_new(lg->log, "writes", json_integer(writes));
	json_object_set_new(lg->log, "multi", json_boolean(count != 1));
	json_object_set_new(lg->log, "handle", json_string(handle));
	json_decref(children);
	fk_stmts_free(stmts, n);
}

/* ---------------------------------------------------------------- dispatch */

static void suspend_idle(int64_t now)
{
	const char *k;
	json_t *w;
	json_object_foreach(json_object_get(F.catalog, "warehouses"), k, w) {
		int64_t idle = json_integer_value(json_object_get(w, "auto_suspend"));
		int64_t last = json_integer_value(json_object_get(w, "last_used"));
		if (idle > 0 && strcmp(tp_json_get_str(w, "state"), "STARTED") == 0 && last &&
		    now - last > idle * 1000)
			json_object_set_new(w, "state", json_string("SUSPENDED"));
	}
}

static void handle_request(struct MHD_Connection *c, const char *url, const char *method,
			   conn_t *cn, reply_t *r, reqlog_t *lg)
{
	argv_t a = {json_object()};
	bool retry = false, async = false, nullable = true;
	const char *request_id;
	char *user = NULL, *fault = NULL;
	json_t *body = NULL;
	const char *k;
	json_t *v;

	MHD_get_connection_values(c, MHD_GET_ARGUMENT_KIND, collect_arg, &a);
	json_object_set_new(lg->log, "query", json_incref(a.args));
	if (strcmp(url, "/fake/catalog") == 0 && strcmp(method, "GET") == 0) {
		pthread_mutex_lock(&F.mu);
		reply_json(r, 200, json_deep_copy(F.catalog));
		pthread_mutex_unlock(&F.mu);
		goto done;
	}
	if (strcmp(url, "/fake/faults") == 0 && strcmp(method, "POST") == 0) {
		int rc;
		pthread_mutex_lock(&F.mu);
		rc = queue_faults(tp_buf_cstr(&cn->body));
		pthread_mutex_unlock(&F.mu);
		reply_json(r, rc < 0 ? 400 : 200, json_pack("{s:b}", "ok", rc == 0));
		goto done;
	}
	if (strncmp(url, "/api/v2/statements", 18) != 0) {
		reply_error(r, 404, "390404", "", "Not Found. The request endpoint is not valid.",
			    NULL);
		goto done;
	}
	json_object_foreach(a.args, k, v) {
		if (strcmp(k, "requestId") && strcmp(k, "retry") && strcmp(k, "async") &&
		    strcmp(k, "nullable") && strcmp(k, "partition")) {
			reply_error(r, 400, "390400", "", "Unknown query parameter.", NULL);
			goto done;
		}
	}
	request_id = tp_json_get_str(a.args, "requestId");
	if (request_id && !is_uuid(request_id)) {
		reply_error(r, 400, "390400", "", "requestId must be a UUID.", NULL);
		goto done;
	}
	if (!flag(a.args, "retry", &retry, r) || !flag(a.args, "async", &async, r) ||
	    !flag(a.args, "nullable", &nullable, r))
		goto done;
	if (!tp_json_get_str(a.args, "nullable"))
		nullable = true;
	if (cn->too_big) {
		reply_error(r, 413, "390400", "", "Request body too large.", NULL);
		goto done;
	}
	if (strcmp(url, "/api/v2/statements") == 0 || strcmp(url, "/api/v2/statements/") == 0) {
		long count;
		if (strcmp(method, "POST") != 0) {
			reply_error(r, 405, "390405", "", "Method Not Allowed.", NULL);
			goto done;
		}
		if (!check_headers(c, r, true) || authenticate(c, r, &user) < 0)
			goto done;
		json_object_set_new(lg->log, "user", json_string(user));
		pthread_mutex_lock(&F.mu);
		fault = take_fault();
		pthread_mutex_unlock(&F.mu);
		if (fault) {
			json_object_set_new(lg->log, "fault", json_string(fault));
			if (strcmp(fault, "drop") == 0 || strcmp(fault, "reset") == 0) {
				r->body = NULL;
				r->status = 0;
				r->reset = strcmp(fault, "reset") == 0;
				goto done;
			}
			if (strcmp(fault, "badjson") == 0) {
				r->status = 200;
				r->body = tp_strdup("{\"resultSetMetaData\":{\"numRows\":1,\"rowType\""
						    ":[{\"name\":\"status\",");
				goto done;
			}
			if (strcmp(fault, "429") == 0) {
				reply_error(r, 429, "390505", "", "Too many requests. Please back "
					    "off and retry.", NULL);
				if (F.retry_after > 0)
					snprintf(r->retry_after, sizeof(r->retry_after), "%d",
						 F.retry_after);
				goto done;
			}
			if (fault[0] == '5') {
				reply_error(r, (unsigned)atoi(fault), "000603", "",
					    "Internal error (injected by the fake).", NULL);
				goto done;
			}
		}
		if (!(body = parse_body(&cn->body, r, &count)))
			goto done;
		pthread_mutex_lock(&F.mu);
		suspend_idle(now_ms());
		if (request_id && json_object_get(F.requests, request_id)) {
			const char *h = tp_json_get_str(F.requests, request_id);
			json_t *st = json_object_get(F.handles, h);
			if (retry && st) {
				json_object_set_new(lg->log, "replayed", json_true());
				reply_stored(r, h, st, 0, nullable);
				pthread_mutex_unlock(&F.mu);
				goto done;
			}
			/* Snowflake runs a reused requestId again unless retry=true */
			json_object_set_new(lg->log, "duplicate_request_id", json_true());
		}
		run_statements(r, body, count, user, async, nullable, fault, lg, request_id);
		pthread_mutex_unlock(&F.mu);
		if (fault && strcmp(fault, "lost") == 0) {
			/* ran, but the reply never arrives */
			free(r->body);
			r->body = NULL;
		}
		goto done;
	}
	{
		/* /api/v2/statements/{handle}[/cancel] */
		char handle[64];
		const char *rest = url + strlen("/api/v2/statements/");
		const char *slash = strchr(rest, '/');
		size_t hl = slash ? (size_t)(slash - rest) : strlen(rest);
		bool cancel = slash && strcmp(slash, "/cancel") == 0;
		json_t *st;
		int64_t part = 0;
		if (hl >= sizeof(handle) || (slash && !cancel)) {
			reply_error(r, 404, "390404", "", "Not Found.", NULL);
			goto done;
		}
		memcpy(handle, rest, hl);
		handle[hl] = '\0';
		if (strcmp(method, cancel ? "POST" : "GET") != 0) {
			reply_error(r, 405, "390405", "", "Method Not Allowed.", NULL);
			goto done;
		}
		if (!check_headers(c, r, cancel && cn->body.len > 0) ||
		    authenticate(c, r, &user) < 0)
			goto done;
		if (tp_json_get_str(a.args, "partition")) {
			char *end = NULL;
			part = strtoll(tp_json_get_str(a.args, "partition"), &end, 10);
			if (!end || *end || part < 0) {
				reply_error(r, 400, "390400", "", "Invalid partition.", NULL);
				goto done;
			}
		}
		pthread_mutex_lock(&F.mu);
		st = json_object_get(F.handles, handle);
		if (!st) {
			reply_error(r, 422, "000709", "02000", "Statement not found.", handle);
		} else if (cancel) {
			if (now_ms() < json_integer_value(json_object_get(st, "ready_at")))
				json_object_set_new(st, "error",
						    json_pack("{s:i,s:s,s:s,s:s}", "status", 422,
							      "code", "000604", "sqlState",
							      "57014", "message",
							      "SQL execution canceled"));
			json_object_set_new(st, "ready_at", json_integer(0));
			reply_json(r, 200, json_pack("{s:s,s:s}", "message",
						     "successfully canceled", "statementHandle",
						     handle));
		} else {
			reply_stored(r, handle, st, part, nullable);
		}
		pthread_mutex_unlock(&F.mu);
	}
done:
	json_decref(body);
	json_decref(a.args);
	free(user);
	free(fault);
}

static void write_log(json_t *entry)
{
	char *line;
	if (!F.log)
		return;
	line = json_dumps(entry, JSON_COMPACT);
	pthread_mutex_lock(&F.mu);
	fprintf(F.log, "%s\n", line);
	fflush(F.log);
	pthread_mutex_unlock(&F.mu);
	free(line);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
				  const char *method, const char *version, const char *upload,
				  size_t *upload_size, void **con_cls)
{
	conn_t *cn = *con_cls;
	reply_t r = {0};
	reqlog_t lg;
	struct MHD_Response *resp;
	enum MHD_Result ret;
	int64_t t0;
	(void)cls;
	(void)version;

	if (!cn) {
		cn = tp_calloc(1, sizeof(*cn));
		tp_buf_init(&cn->body, MAX_BODY);
		*con_cls = cn;
		return MHD_YES;
	}
	if (*upload_size) {
		if (tp_buf_put(&cn->body, upload, *upload_size) < 0)
			cn->too_big = true;
		*upload_size = 0;
		return MHD_YES;
	}
	t0 = now_ms();
	lg.log = json_pack("{s:I,s:s,s:s}", "ts", (json_int_t)t0, "method", method, "path", url);
	{
		/* identifies a request sent again, with a new requestId or not (retries) */
		uint8_t d[TP_SHA256_LEN];
		char hex[2 * TP_SHA256_LEN + 1];
		tp_sha256(d, cn->body.ptr ? cn->body.ptr : "", cn->body.len);
		tp_hex_encode(hex, d, sizeof(d));
		json_object_set_new(lg.log, "body_sha", json_string(hex));
	}
	if (F.latency_ms > 0)
		tp_clock_sleep_ms(F.latency_ms);
	handle_request(c, url, method, cn, &r, &lg);
	json_object_set_new(lg.log, "status", json_integer(r.status));
	if (r.status >= 400 && r.body && !json_object_get(lg.log, "error_code")) {
		json_t *eb = json_loads(r.body, 0, NULL);
		if (tp_json_get_str(eb, "code"))
			json_object_set(lg.log, "error_code", json_object_get(eb, "code"));
		json_decref(eb);
	}
	json_object_set_new(lg.log, "ms", json_integer(now_ms() - t0));
	if (json_object_get(json_object_get(lg.log, "query"), "requestId"))
		json_object_set(lg.log, "request_id",
				json_object_get(json_object_get(lg.log, "query"), "requestId"));
	json_object_set_new(lg.log, "retry",
			    json_boolean(strcmp(tp_json_get_str(json_object_get(lg.log, "query"),
								"retry")
							? tp_json_get_str(json_object_get(lg.log,
											  "query"),
									  "retry")
							: "",
						"true") == 0));
	if (strncmp(url, "/fake/", 6) != 0)
		write_log(lg.log);
	json_decref(lg.log);
	if (!r.body) {
		if (r.reset) {
			/* SO_LINGER 0: the close aborts the connection (RST) */
			const union MHD_ConnectionInfo *ci =
				MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
			struct linger lg0 = {1, 0};
			if (ci)
				setsockopt(ci->connect_fd, SOL_SOCKET, SO_LINGER, &lg0,
					   sizeof(lg0));
		}
		return MHD_NO; /* drop the connection */
	}
	resp = MHD_create_response_from_buffer(strlen(r.body), r.body, MHD_RESPMEM_MUST_FREE);
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
	if (r.retry_after[0])
		MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, r.retry_after);
	ret = MHD_queue_response(c, r.status, resp);
	MHD_destroy_response(resp);
	return ret;
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
			 enum MHD_RequestTerminationCode toe)
{
	conn_t *cn = *con_cls;
	(void)cls;
	(void)c;
	(void)toe;
	if (!cn)
		return;
	tp_buf_free(&cn->body);
	free(cn);
	*con_cls = NULL;
}

/* ---------------------------------------------------------------- main */

static char *read_public_key(const char *path)
{
	tp_buf b, out;
	const char *p;
	tp_buf_init(&b, 1 << 20);
	if (tp_file_read(&b, path, 1 << 20) < 0) {
		fprintf(stderr, "fake_snowflake: %s\n", tp_error_last());
		tp_buf_free(&b);
		return NULL;
	}
	tp_buf_init(&out, 1 << 20);
	tp_buf_put(&out, "", 0);
	p = tp_buf_cstr(&b);
	while (*p) {
		size_t n = strcspn(p, "\n");
		if (strncmp(p, "-----", 5) != 0)
			for (size_t i = 0; i < n; i++)
				if (p[i] != '\r' && p[i] != ' ' && p[i] != '\t')
					tp_buf_putc(&out, p[i]);
		p += n;
		if (*p)
			p++;
	}
	tp_buf_free(&b);
	return tp_buf_detach(&out);
}

static void usage(void)
{
	fprintf(stderr, "usage: fake_snowflake --port N --account ID --user NAME --public-key "
		"FILE [--role R] [--default-warehouse W] [--token T] [--log FILE] "
		"[--latency-ms N] [--exec-ms N] [--sync-wait-ms N] [--partition-rows N] "
		"[--fail SPEC] [--fail-rate SPEC] [--retry-after S] [--seed N]\n");
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"port", required_argument, NULL, 'p'},
		{"account", required_argument, NULL, 'a'},
		{"user", required_argument, NULL, 'u'},
		{"public-key", required_argument, NULL, 'k'},
		{"role", required_argument, NULL, 'r'},
		{"default-warehouse", required_argument, NULL, 'w'},
		{"token", required_argument, NULL, 't'},
		{"log", required_argument, NULL, 'l'},
		{"latency-ms", required_argument, NULL, 'L'},
		{"exec-ms", required_argument, NULL, 'E'},
		{"sync-wait-ms", required_argument, NULL, 'S'},
		{"partition-rows", required_argument, NULL, 'P'},
		{"fail", required_argument, NULL, 'f'},
		{"fail-rate", required_argument, NULL, 'F'},
		{"retry-after", required_argument, NULL, 'R'},
		{"seed", required_argument, NULL, 's'},
		{NULL, 0, NULL, 0},
	};
	const char *keyfile = NULL, *role = NULL, *warehouse = NULL, *logfile = NULL;
	const char *fail = NULL, *fail_rate = NULL;
	char *pub = NULL;
	long port = -1;
	struct sockaddr_in addr = {0};
	struct MHD_Daemon *d;
	const union MHD_DaemonInfo *info;
	sigset_t set;
	int sig, opt;

	memset(&F, 0, sizeof(F));
	pthread_mutex_init(&F.mu, NULL);
	F.sync_wait_ms = 45000;
	F.partition_rows = 1000;
	F.retry_after = 1;
	F.rng = 0x9e3779b97f4a7c15ULL;
	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (opt) {
		case 'p': port = strtol(optarg, NULL, 10); break;
		case 'a': F.account = tp_strdup(optarg); break;
		case 'u': F.user = tp_strdup(optarg); break;
		case 'k': keyfile = optarg; break;
		case 'r': role = optarg; break;
		case 'w': warehouse = optarg; break;
		case 't': F.token = tp_strdup(optarg); break;
		case 'l': logfile = optarg; break;
		case 'L': F.latency_ms = strtoll(optarg, NULL, 10); break;
		case 'E': F.exec_ms = strtoll(optarg, NULL, 10); break;
		case 'S': F.sync_wait_ms = strtoll(optarg, NULL, 10); break;
		case 'P': F.partition_rows = strtoll(optarg, NULL, 10); break;
		case 'f': fail = optarg; break;
		case 'F': fail_rate = optarg; break;
		case 'R': F.retry_after = (int)strtol(optarg, NULL, 10); break;
		case 's': F.rng = strtoull(optarg, NULL, 10) | 1; break;
		default: usage(); return 64;
		}
	}
	if (port < 0 || port > 65535 || !F.account || !F.user || !keyfile) {
		usage();
		return 64;
	}
	for (char *q = F.account; *q; q++)
		*q = (char)toupper((unsigned char)*q);
	if (!(pub = read_public_key(keyfile)))
		return 1;
	{
		char *fp = fk_key_fingerprint(pub);
		if (!fp) {
			fprintf(stderr, "fake_snowflake: %s is not an RSA public key (PEM)\n",
				keyfile);
			return 1;
		}
		free(fp);
	}
	F.catalog = fk_catalog_new(F.user, pub, role, warehouse, now_ms());
	free(pub);
	F.handles = json_object();
	F.order = json_array();
	F.requests = json_object();
	F.faults = json_array();
	F.rates = json_array();
	if (fail && queue_faults(fail) < 0) {
		fprintf(stderr, "fake_snowflake: bad --fail \"%s\"\n", fail);
		return 64;
	}
	if (fail_rate) {
		char *copy = tp_strdup(fail_rate), *save = NULL, *item;
		double sum = 0;
		for (item = strtok_r(copy, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
			char *colon = strchr(item, ':'), *end = NULL;
			double p = 0;
			while (*item == ' ')
				item++;
			if (colon) {
				*colon = '\0';
				p = strtod(colon + 1, &end);
			}
			if (!colon || !known_fault(item) || end == colon + 1 || *end ||
			    !(p >= 0 && p <= 1) || (sum += p) > 1.0 + 1e-9) {
				fprintf(stderr, "fake_snowflake: bad --fail-rate \"%s\" (FAULT:P "
						"pairs, FAULT one of --fail's names, probabilities "
						"summing to at most 1)\n", fail_rate);
				free(copy);
				return 64;
			}
			json_array_append_new(F.rates, json_pack("[s,f]", item, p));
		}
		free(copy);
	}
	if (logfile && !(F.log = fopen(logfile, "a"))) {
		fprintf(stderr, "fake_snowflake: %s: %s\n", logfile, strerror(errno));
		return 1;
	}
	/* the server threads inherit this mask: the signals are taken by sigwait below */
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);

	addr.sin_family = AF_INET;
	addr.sin_port = htons((uint16_t)port);
	addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION |
				     MHD_USE_ERROR_LOG,
			     (uint16_t)port, NULL, NULL, on_request, NULL, MHD_OPTION_SOCK_ADDR,
			     (struct sockaddr *)&addr, MHD_OPTION_NOTIFY_COMPLETED, on_completed,
			     NULL, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)120, MHD_OPTION_END);
	if (!d) {
		fprintf(stderr, "fake_snowflake: cannot listen on 127.0.0.1:%ld\n", port);
		return 1;
	}
	info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
	printf("fake_snowflake listening on http://127.0.0.1:%u\n",
	       info ? (unsigned)info->port : (unsigned)port);
	fflush(stdout);
	while (sigwait(&set, &sig) == 0 && sig != SIGTERM && sig != SIGINT)
		;
	MHD_stop_daemon(d);
	if (F.log)
		fclose(F.log);
	json_decref(F.catalog);
	json_decref(F.handles);
	json_decref(F.order);
	json_decref(F.requests);
	json_decref(F.faults);
	json_decref(F.rates);
	free(F.account);
	free(F.user);
	free(F.token);
	pthread_mutex_destroy(&F.mu);
	return 0;
}
