/*
 * Structured logging: one JSON object per line on stderr, which journald and log shippers
 * read without configuration. Lines are written with a single write(2) so concurrent workers
 * never interleave within a line.
 */
#include "util.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

static tp_log_level min_level = TP_LOG_INFO;

/* The in-memory tail (tp_log_keep): a ring of copies, guarded by a mutex. */
typedef struct {
	int64_t ts_ms;
	tp_log_level level;
	char *msg, *resource, *run;
} kept_line;

static pthread_mutex_t ring_mu = PTHREAD_MUTEX_INITIALIZER;
static kept_line *ring;
static size_t ring_cap, ring_next, ring_len;

static const char *level_names[] = {"debug", "info", "warn", "error"};

static void kept_clear(kept_line *k)
{
	free(k->msg);
	free(k->resource);
	free(k->run);
	memset(k, 0, sizeof(*k));
}

void tp_log_keep(size_t capacity)
{
	pthread_mutex_lock(&ring_mu);
	for (size_t i = 0; i < ring_cap; i++)
		kept_clear(&ring[i]);
	free(ring);
	ring = capacity ? tp_calloc(capacity, sizeof(*ring)) : NULL;
	ring_cap = capacity;
	ring_next = ring_len = 0;
	pthread_mutex_unlock(&ring_mu);
}

static void keep(int64_t ts, tp_log_level level, const char *msg, const char *resource,
		 const char *run)
{
	kept_line *k;
	pthread_mutex_lock(&ring_mu);
	if (ring_cap) {
		k = &ring[ring_next];
		kept_clear(k);
		k->ts_ms = ts;
		k->level = level;
		k->msg = tp_strdup(msg);
		k->resource = resource ? tp_strdup(resource) : NULL;
		k->run = run ? tp_strdup(run) : NULL;
		ring_next = (ring_next + 1) % ring_cap;
		if (ring_len < ring_cap)
			ring_len++;
	}
	pthread_mutex_unlock(&ring_mu);
}

json_t *tp_log_recent(const char *resource, const char *run, tp_log_level min, int limit)
{
	json_t *out = json_array();
	pthread_mutex_lock(&ring_mu);
	for (size_t i = 0; i < ring_len && (limit <= 0 || json_array_size(out) < (size_t)limit);
	     i++) {
		const kept_line *k = &ring[(ring_next + ring_cap - 1 - i) % ring_cap];
		char ts[40];
		if (k->level < min || (resource && (!k->resource || strcmp(k->resource, resource))) ||
		    (run && (!k->run || strcmp(k->run, run))))
			continue;
		tp_clock_format_rfc3339(ts, sizeof(ts), k->ts_ms);
		json_array_append_new(out, json_pack("{s:I,s:s,s:s,s:s,s:s?,s:s?}", "ts_ms",
						     (json_int_t)k->ts_ms, "ts", ts, "level",
						     level_names[k->level], "msg", k->msg, "resource",
						     k->resource, "run", k->run));
	}
	pthread_mutex_unlock(&ring_mu);
	return out;
}

void tp_log_set_level(tp_log_level level)
{
	min_level = level;
}

void tp_log_init_from_env(void)
{
	const char *v = getenv("TAPESTRY_LOG_LEVEL");
	if (!v)
		return;
	if (strcasecmp(v, "debug") == 0)
		min_level = TP_LOG_DEBUG;
	else if (strcasecmp(v, "info") == 0)
		min_level = TP_LOG_INFO;
	else if (strcasecmp(v, "warn") == 0 || strcasecmp(v, "warning") == 0)
		min_level = TP_LOG_WARN;
	else if (strcasecmp(v, "error") == 0)
		min_level = TP_LOG_ERROR;
}

int tp_buf_put_json_string(tp_buf *b, const char *s)
{
	static const char hex[] = "0123456789abcdef";
	int rc = tp_buf_putc(b, '"');
	for (const unsigned char *p = (const unsigned char *)s; rc == 0 && *p; p++) {
		switch (*p) {
		case '"': rc = tp_buf_puts(b, "\\\""); break;
		case '\\': rc = tp_buf_puts(b, "\\\\"); break;
		case '\n': rc = tp_buf_puts(b, "\\n"); break;
		case '\r': rc = tp_buf_puts(b, "\\r"); break;
		case '\t': rc = tp_buf_puts(b, "\\t"); break;
		default:
			if (*p < 0x20) {
				char esc[7] = {'\\', 'u', '0', '0', hex[*p >> 4], hex[*p & 15], 0};
				rc = tp_buf_puts(b, esc);
			} else {
				rc = tp_buf_putc(b, (char)*p);
			}
		}
	}
	if (rc == 0)
		rc = tp_buf_putc(b, '"');
	return rc;
}

void tp_log(tp_log_level level, const char *resource, const char *run, const char *fmt, ...)
{
	const char *const *names = level_names;
	char ts[40], msg[4096];
	int64_t now;
	tp_buf line;
	va_list ap;

	if (level < min_level)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	now = tp_clock_now_ms();
	tp_clock_format_rfc3339(ts, sizeof(ts), now);
	keep(now, level, msg, resource, run);

	tp_buf_init(&line, 16384);
	tp_buf_printf(&line, "{\"ts\":\"%s\",\"level\":\"%s\",\"msg\":", ts, names[level]);
	tp_buf_put_json_string(&line, msg);
	if (resource) {
		tp_buf_puts(&line, ",\"resource\":");
		tp_buf_put_json_string(&line, resource);
	}
	if (run) {
		tp_buf_puts(&line, ",\"run\":");
		tp_buf_put_json_string(&line, run);
	}
	tp_buf_puts(&line, "}\n");
	if (line.len && write(STDERR_FILENO, line.ptr, line.len) < 0) {
		/* nowhere left to report a failing stderr */
	}
	tp_buf_free(&line);
}
