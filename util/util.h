/*
 * util — the contract of the code that knows nothing about pipelines.
 *
 * Everything else in Tapestry stands on this header: error reporting, the bounded growable
 * buffer, JSON helpers over jansson, logging (JSON lines on stderr), hashing and encoding over
 * OpenSSL, and the clock/sleep/randomness seam that lets tests control time.
 *
 * Conventions used across the code base:
 *  - Functions return int: 0 on success, a negative TP_E* code on an expected failure. The
 *    function where the failure happens calls tp_error_set(); callers carry the code up
 *    unchanged and never overwrite the message.
 *  - Output parameters come first and are named `out`.
 *  - Every type has a `_free` that accepts NULL.
 */
#ifndef TP_UTIL_H
#define TP_UTIL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

/* ---------------------------------------------------------------- errors */

enum {
	TP_OK = 0,
	TP_ERROR = -1,      /* generic failure, message set */
	TP_ENOMEM = -2,     /* allocation failed */
	TP_ENOTFOUND = -3,  /* object, file or key does not exist */
	TP_EEXISTS = -4,    /* object already exists */
	TP_EINVALID = -5,   /* input rejected by validation */
	TP_EAUTH = -6,      /* authentication or authorisation refused */
	TP_ETHROTTLED = -7, /* rate limited (retry later) */
	TP_ECONFLICT = -8,  /* concurrent modification, lock held */
	TP_ETOOBIG = -9,    /* a size bound was exceeded */
	TP_EIO = -10,       /* file system or network I/O error */
	TP_ETRANSIENT = -11 /* temporary server-side failure (retryable) */
};

/* Records the message of the failure that is happening now (thread-local) and returns code,
 * so a call site can `return tp_error_set(TP_EINVALID, "...")`. */
int tp_error_set(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A delay the server asked for (HTTP Retry-After, throttling hints) for the failure being
 * recorded; call after tp_error_set, which resets it to -1 (none). */
void tp_error_set_retry_after(int64_t ms);
int64_t tp_error_retry_after(void);
/* Re-states the failure being recorded with a new message — the old one with context added —
 * keeping the delay the server asked for, which tp_error_set would drop: a wrapped 429 must
 * still be retried no sooner than its Retry-After. Returns code. */
int tp_error_wrap(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The last message recorded on this thread ("" if none). */
const char *tp_error_last(void);
void tp_error_clear(void);
/* A short stable name for a code ("invalid", "not found", ...). */
const char *tp_error_name(int code);

/* Allocation that aborts on exhaustion: out-of-memory is not an expected failure in a
 * controller process, and pretending otherwise doubles every cleanup path. */
void *tp_malloc(size_t n);
void *tp_calloc(size_t n, size_t size);
void *tp_realloc(void *p, size_t n);
char *tp_strdup(const char *s);
char *tp_strndup(const char *s, size_t n);
char *tp_sprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* ---------------------------------------------------------------- buffer */

/*
 * The one growable byte buffer. Every buffer has a cap (`max`): growing past it fails with
 * TP_ETOOBIG and leaves the content as it was, so hostile input cannot make memory grow
 * without bound. The content is always NUL-terminated (ptr[len] == 0) once anything was put.
 */
typedef struct {
	char *ptr;
	size_t len;
	size_t cap;
	size_t max;
} tp_buf;

#define TP_BUF_DEFAULT_MAX ((size_t)64 * 1024 * 1024)

void tp_buf_init(tp_buf *b, size_t max);
int tp_buf_put(tp_buf *b, const void *data, size_t len);
int tp_buf_puts(tp_buf *b, const char *s);
int tp_buf_putc(tp_buf *b, char c);
int tp_buf_printf(tp_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int tp_buf_vprintf(tp_buf *b, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));
void tp_buf_clear(tp_buf *b);
/* Hands the content to the caller (who frees it) and resets the buffer. Never NULL. */
char *tp_buf_detach(tp_buf *b);
/* "" when nothing was put. */
const char *tp_buf_cstr(const tp_buf *b);
void tp_buf_free(tp_buf *b);

/* Reads a whole regular file, refusing by size (stat) before reading anything. */
int tp_file_read(tp_buf *out, const char *path, size_t max);

/* ---------------------------------------------------------------- string list */

typedef struct {
	char **items;
	size_t len;
	size_t cap;
} tp_strlist;

void tp_strlist_push(tp_strlist *l, const char *s);
void tp_strlist_push_owned(tp_strlist *l, char *s);
void tp_strlist_sort(tp_strlist *l);
bool tp_strlist_contains(const tp_strlist *l, const char *s);
void tp_strlist_free(tp_strlist *l);

/* ---------------------------------------------------------------- JSON */

/*
 * Ownership rule (stated once, for the whole code base):
 *  - Functions named *_get / *_path_get return BORROWED references: valid while the parent
 *    lives; never json_decref them.
 *  - Every other function returning json_t * returns a NEW reference the caller owns.
 *  - Functions taking json_t * arguments borrow them, except those whose name ends in _new
 *    (they steal, as jansson's json_object_set_new does).
 */

/* Borrowed string member, or NULL when absent or not a string. */
const char *tp_json_get_str(const json_t *obj, const char *key);
/* Dotted path lookup ("a.b.c"; list elements by index "streams.0.name"). Borrowed. */
json_t *tp_json_path_get(const json_t *root, const char *path);
/* Compact serialisation with sorted keys: the canonical form used for hashing and storage.
 * Caller frees. */
char *tp_json_canonical(const json_t *v);
/* Parses JSON text with a clear error ("json: line L col C: message"). */
int tp_json_parse(json_t **out, const char *text, size_t len);

/* Total order on JSON values, for sorting: strings compare by content (strcmp) and come before
 * every other value; other values compare by their canonical text (tp_json_canonical). The
 * same values always sort the same way, whatever an observed spec contains. */
int tp_json_cmp(const json_t *a, const json_t *b);
/* qsort comparator for an array of json_t * (tp_json_cmp on the pointed-to values). */
int tp_json_qsort_cmp(const void *a, const void *b);
/* qsort comparator for an array of char * (strcmp on the pointed-to strings). */
int tp_str_qsort_cmp(const void *a, const void *b);
/* Sorts a JSON array in place with a qsort comparator over json_t * elements (such as
 * tp_json_qsort_cmp); with `unique`, elements json_equal to their predecessor are dropped
 * (the array becomes a set). Not an array, or fewer than two elements: nothing changes. */
void tp_json_array_sort(json_t *arr, int (*cmp)(const void *, const void *), bool unique);

/* What tp_json_drop_empty counts as empty (flags, combined with |). */
enum {
	TP_JSON_EMPTY_NULL = 1u << 0,      /* null */
	TP_JSON_EMPTY_STRING = 1u << 1,    /* "" */
	TP_JSON_EMPTY_CONTAINER = 1u << 2, /* [] and {} */
	/* null, [] and {}: the values that usually mean the same as absent ("" is kept) */
	TP_JSON_EMPTY_ABSENT = TP_JSON_EMPTY_NULL | TP_JSON_EMPTY_CONTAINER,
	TP_JSON_EMPTY_ALL = TP_JSON_EMPTY_ABSENT | TP_JSON_EMPTY_STRING
};
/* Removes obj[key] when its value is empty in one of the ways `what` (TP_JSON_EMPTY_*) names.
 * A missing key, or obj not an object, changes nothing. */
void tp_json_drop_empty(json_t *obj, const char *key, unsigned what);

/* ---------------------------------------------------------------- logging */

typedef enum { TP_LOG_DEBUG, TP_LOG_INFO, TP_LOG_WARN, TP_LOG_ERROR } tp_log_level;

/* Minimum level printed; also set from TAPESTRY_LOG_LEVEL (debug|info|warn|error). */
void tp_log_set_level(tp_log_level level);
void tp_log_init_from_env(void);
/* One JSON object per line on stderr: {"ts":..,"level":..,"msg":..,"resource":..,"run":..}.
 * `resource` and `run` may be NULL. Never pass secret values: logs are not redacted. */
void tp_log(tp_log_level level, const char *resource, const char *run, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
#define tp_log_debug(...) tp_log(TP_LOG_DEBUG, NULL, NULL, __VA_ARGS__)
#define tp_log_info(...) tp_log(TP_LOG_INFO, NULL, NULL, __VA_ARGS__)
#define tp_log_warn(...) tp_log(TP_LOG_WARN, NULL, NULL, __VA_ARGS__)
#define tp_log_error(...) tp_log(TP_LOG_ERROR, NULL, NULL, __VA_ARGS__)

/* Keeps the last `capacity` log lines in memory as well (0 turns it off), for the status API
 * and the dashboard. */
void tp_log_keep(size_t capacity);
/* The kept lines, newest first, filtered by resource and run (NULL: any) and minimum level:
 * [{"ts_ms","ts","level","msg","resource","run"}]. */
json_t *tp_log_recent(const char *resource, const char *run, tp_log_level min, int limit);

/* Appends s to b as a JSON string literal (with quotes and escapes). */
int tp_buf_put_json_string(tp_buf *b, const char *s);

/* ---------------------------------------------------------------- HTTP client */

/*
 * The HTTP client every provider uses (libcurl): bounded responses, timeouts, connection reuse
 * across the requests of one client (thread-safe: requests may run concurrently), and
 * failures classified the way the engine's retry policy needs them.
 */
typedef struct tp_http_client tp_http_client;

typedef struct {
	const char *method;          /* "GET", "POST", "PUT", "PATCH", "DELETE", "HEAD" */
	const char *url;
	const char *const *headers;  /* "Name: value", NULL-terminated; may be NULL */
	const char *body;            /* may be NULL */
	size_t body_len;
	int64_t timeout_ms;          /* whole request (0: 30 s) */
	int64_t connect_timeout_ms;  /* (0: 10 s) */
	size_t max_response;         /* body cap (0: 16 MiB); larger replies fail TP_ETOOBIG */
	const char *user_agent;      /* (NULL: "tapestry/<version>") */
} tp_http_request;

typedef struct {
	long status;                 /* HTTP status */
	tp_buf body;
	json_t *headers;             /* {"lower-case-name": "value"} (last one wins) */
	int64_t retry_after_ms;      /* Retry-After (seconds or HTTP date), or -1 */
} tp_http_reply;

tp_http_client *tp_http_client_new(void);
void tp_http_client_free(tp_http_client *c);
/* Sends the request. 0 when any HTTP response arrived (check out->status); TP_ETRANSIENT for
 * connection failures, resets and timeouts; TP_ETOOBIG when the body exceeds the cap;
 * TP_EINVALID for a malformed URL. The message names method and URL (never headers). On
 * failure *out holds nothing (clearing it again is harmless). */
int tp_http_client_do(tp_http_client *c, tp_http_reply *out, const tp_http_request *req);
void tp_http_reply_clear(tp_http_reply *r);
/* Header value from a reply (name case-insensitive), or NULL. */
const char *tp_http_reply_header(const tp_http_reply *r, const char *name);
/* Maps an error status to a code with the message "<what>: HTTP <status>: <detail>": 429 →
 * TP_ETHROTTLED (Retry-After recorded), 5xx/408 → TP_ETRANSIENT, 401/403 → TP_EAUTH,
 * 404 → TP_ENOTFOUND, 409 → TP_ECONFLICT, other 4xx → TP_EINVALID. detail may be NULL (a
 * short, printable excerpt of the body is used then). Returns 0 for 1xx–3xx. */
int tp_http_status_error(const tp_http_reply *r, const char *what, const char *detail);

/* Full-jitter exponential backoff: a random delay in [0, min(cap, base * 2^(attempt-1))]. */
int64_t tp_backoff_ms(int attempt, int64_t base_ms, int64_t cap_ms);

/* ---------------------------------------------------------------- metrics */

/*
 * A small Prometheus registry: counters, gauges and histograms with label sets, rendered in
 * the text exposition format (version 0.0.4). Thread-safe. Label sets are passed preformatted
 * ('provider="aws",code="200"', "" for none); label values must be escaped by the caller with
 * tp_metrics_label_escape.
 */
typedef struct tp_metrics tp_metrics;
typedef enum { TP_METRIC_COUNTER, TP_METRIC_GAUGE, TP_METRIC_HISTOGRAM } tp_metric_type;

tp_metrics *tp_metrics_new(void);
void tp_metrics_free(tp_metrics *m);
/* Declares a metric (HELP and TYPE lines); buckets (ascending, n) for histograms. */
void tp_metrics_describe(tp_metrics *m, const char *name, tp_metric_type type, const char *help,
			 const double *buckets, size_t nbuckets);
void tp_metrics_add(tp_metrics *m, const char *name, const char *labels, double v);
void tp_metrics_set(tp_metrics *m, const char *name, const char *labels, double v);
void tp_metrics_observe(tp_metrics *m, const char *name, const char *labels, double v);
/* Current value of a counter or gauge series (0 when absent): for tests and status pages. */
double tp_metrics_get(tp_metrics *m, const char *name, const char *labels);
int tp_metrics_render(tp_metrics *m, tp_buf *out);
/* Escapes \, " and newlines for a label value into out (bounded, always terminated). */
void tp_metrics_label_escape(char *out, size_t outlen, const char *value);

/* ---------------------------------------------------------------- crypto and encodings */

#define TP_SHA256_LEN 32

void tp_sha256(uint8_t out[TP_SHA256_LEN], const void *data, size_t len);
void tp_hmac_sha256(uint8_t out[TP_SHA256_LEN], const void *key, size_t keylen, const void *data,
		    size_t len);
/* Constant-time comparison; true when equal. */
bool tp_ct_equal(const void *a, const void *b, size_t len);
/* Lowercase hex; out must hold 2*len+1 bytes. */
void tp_hex_encode(char *out, const uint8_t *data, size_t len);
/* Standard base64 with padding, or base64url without padding (JWT). */
int tp_base64_encode(tp_buf *out, const void *data, size_t len);
int tp_base64url_encode(tp_buf *out, const void *data, size_t len);
/* Accepts standard and url alphabets, with or without padding. */
int tp_base64_decode(tp_buf *out, const char *text, size_t len);
/* Fills out with cryptographically strong random bytes. */
int tp_random_bytes(void *out, size_t len);

/* ---------------------------------------------------------------- UTF-8 */

/* Validates UTF-8 (no overlongs, no surrogates). On failure *bad_offset is the byte offset of
 * the first invalid sequence. */
bool tp_utf8_valid(const char *s, size_t len, size_t *bad_offset);

/* ---------------------------------------------------------------- clock */

/*
 * All time, sleeping and jitter go through here so tests can control them (the SQLite VFS
 * xCurrentTime/xSleep idea). The default implementation uses the real clocks.
 */
typedef struct {
	int64_t (*now_ms)(void *ctx);   /* wall clock, milliseconds since the epoch */
	int64_t (*mono_ms)(void *ctx);  /* monotonic clock for durations */
	void (*sleep_ms)(void *ctx, int64_t ms);
	uint64_t (*rand_u64)(void *ctx); /* jitter; not for secrets */
	void *ctx;
} tp_clock_ops;

int64_t tp_clock_now_ms(void);
int64_t tp_clock_mono_ms(void);
void tp_clock_sleep_ms(int64_t ms);
uint64_t tp_clock_rand_u64(void);
/* A random value in [0, bound) (bound > 0). */
uint64_t tp_clock_rand_below(uint64_t bound);
/* Installs ops (NULL restores the real clock). Not thread-safe: call before starting threads. */
void tp_clock_set(const tp_clock_ops *ops);
/* RFC 3339 UTC with milliseconds into out (at least 32 bytes). */
void tp_clock_format_rfc3339(char *out, size_t outlen, int64_t ms);

/* Parses a duration such as "90s", "10m", "1h30m", "500ms" into milliseconds. */
int tp_duration_parse(int64_t *out, const char *text);

#endif
