/*
 * Error reporting and allocation. The message of a failure is recorded where it happens
 * (thread-local, bounded) and read once by whoever reports it: the CLI, a log line, a run
 * record. Allocation failure aborts: see util.h.
 */
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static _Thread_local char last_message[2048];
static _Thread_local int64_t last_retry_after = -1;

void tp_error_set_retry_after(int64_t ms)
{
	last_retry_after = ms;
}

int64_t tp_error_retry_after(void)
{
	return last_retry_after;
}

int tp_error_set(int code, const char *fmt, ...)
{
	va_list ap;
	last_retry_after = -1;
	va_start(ap, fmt);
	vsnprintf(last_message, sizeof(last_message), fmt, ap);
	va_end(ap);
	return code;
}

int tp_error_wrap(int code, const char *fmt, ...)
{
	int64_t after = last_retry_after;
	char msg[sizeof(last_message)];
	va_list ap;
	/* formatted aside first: the arguments usually include the message being replaced */
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	memcpy(last_message, msg, sizeof(last_message));
	last_retry_after = after;
	return code;
}

const char *tp_error_last(void)
{
	return last_message;
}

void tp_error_clear(void)
{
	last_message[0] = '\0';
}

const char *tp_error_name(int code)
{
	switch (code) {
	case TP_OK: return "ok";
	case TP_ENOMEM: return "out of memory";
	case TP_ENOTFOUND: return "not found";
	case TP_EEXISTS: return "already exists";
	case TP_EINVALID: return "invalid";
	case TP_EAUTH: return "authentication failed";
	case TP_ETHROTTLED: return "throttled";
	case TP_ECONFLICT: return "conflict";
	case TP_ETOOBIG: return "too big";
	case TP_EIO: return "i/o error";
	case TP_ETRANSIENT: return "transient failure";
	default: return "error";
	}
}

static void *check(void *p)
{
	if (!p) {
		fputs("tapestry: out of memory\n", stderr);
		abort();
	}
	return p;
}

void *tp_malloc(size_t n)
{
	return check(malloc(n ? n : 1));
}

void *tp_calloc(size_t n, size_t size)
{
	return check(calloc(n ? n : 1, size ? size : 1));
}

void *tp_realloc(void *p, size_t n)
{
	return check(realloc(p, n ? n : 1));
}

char *tp_strdup(const char *s)
{
	return check(strdup(s ? s : ""));
}

char *tp_strndup(const char *s, size_t n)
{
	/* never reads past n: s may be a buffer without a terminator (an OpenSSL BIO, a
	 * network read) */
	const char *nul = memchr(s, '\0', n);
	size_t len = nul ? (size_t)(nul - s) : n;
	char *out = check(malloc(len + 1));
	memcpy(out, s, len);
	out[len] = '\0';
	return out;
}

char *tp_sprintf(const char *fmt, ...)
{
	va_list ap;
	char *out = NULL;
	va_start(ap, fmt);
	if (vasprintf(&out, fmt, ap) < 0)
		out = NULL;
	va_end(ap);
	return check(out);
}
