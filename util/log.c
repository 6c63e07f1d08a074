/*
 * Structured logging: one JSON object per line on stderr, which journald and log shippers
 * read without configuration. Lines are written with a single write(2) so concurrent workers
 * never interleave within a line.
 */
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

static tp_log_level min_level = TP_LOG_INFO;

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
	static const char *names[] = {"debug", "info", "warn", "error"};
	char ts[40], msg[4096];
	tp_buf line;
	va_list ap;

	if (level < min_level)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	tp_clock_format_rfc3339(ts, sizeof(ts), tp_clock_now_ms());

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
