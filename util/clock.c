/*
 * The clock seam: wall time, monotonic time, sleeping and jitter. Production code calls only
 * these; tests install their own tp_clock_ops to make time deterministic.
 */
#include "util.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static int64_t real_now_ms(void *ctx)
{
	struct timespec ts;
	(void)ctx;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t real_mono_ms(void *ctx)
{
	struct timespec ts;
	(void)ctx;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void real_sleep_ms(void *ctx, int64_t ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000};
	(void)ctx;
	if (ms <= 0)
		return;
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static uint64_t real_rand_u64(void *ctx)
{
	uint64_t v = 0;
	(void)ctx;
	if (tp_random_bytes(&v, sizeof(v)) < 0)
		v = (uint64_t)real_mono_ms(NULL) * 6364136223846793005ULL;
	return v;
}

static const tp_clock_ops real_ops = {real_now_ms, real_mono_ms, real_sleep_ms, real_rand_u64,
				      NULL};
static const tp_clock_ops *ops = &real_ops;

void tp_clock_set(const tp_clock_ops *o)
{
	ops = o ? o : &real_ops;
}

int64_t tp_clock_now_ms(void)
{
	return ops->now_ms(ops->ctx);
}

int64_t tp_clock_mono_ms(void)
{
	return ops->mono_ms(ops->ctx);
}

void tp_clock_sleep_ms(int64_t ms)
{
	ops->sleep_ms(ops->ctx, ms);
}

uint64_t tp_clock_rand_u64(void)
{
	return ops->rand_u64(ops->ctx);
}

uint64_t tp_clock_rand_below(uint64_t bound)
{
	return bound ? tp_clock_rand_u64() % bound : 0;
}

void tp_clock_format_rfc3339(char *out, size_t outlen, int64_t ms)
{
	time_t secs = (time_t)(ms / 1000);
	struct tm tm;
	gmtime_r(&secs, &tm);
	snprintf(out, outlen, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
		 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ms % 1000));
}

int tp_duration_parse(int64_t *out, const char *text)
{
	const char *p = text;
	int64_t total = 0;
	bool any = false;

	*out = 0;
	while (*p) {
		int64_t n = 0, unit;
		const char *start = p;
		while (isdigit((unsigned char)*p)) {
			if (n > INT64_MAX / 10 - 10)
				return tp_error_set(TP_EINVALID, "duration '%s' is too large", text);
			n = n * 10 + (*p++ - '0');
		}
		if (p == start)
			goto bad;
		if (strncmp(p, "ms", 2) == 0) {
			unit = 1;
			p += 2;
		} else if (*p == 's') {
			unit = 1000;
			p++;
		} else if (*p == 'm') {
			unit = 60000;
			p++;
		} else if (*p == 'h') {
			unit = 3600000;
			p++;
		} else if (*p == 'd') {
			unit = 86400000;
			p++;
		} else {
			goto bad;
		}
		if (n > (INT64_MAX - total) / unit)
			return tp_error_set(TP_EINVALID, "duration '%s' is too large", text);
		total += n * unit;
		any = true;
	}
	if (!any)
		goto bad;
	*out = total;
	return 0;
bad:
	return tp_error_set(TP_EINVALID,
			    "invalid duration '%s' (expected e.g. 500ms, 30s, 10m, 1h30m, 1d)", text);
}
