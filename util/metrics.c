/*
 * The Prometheus registry behind /metrics: counters, gauges and histograms keyed by
 * (name, preformatted label set), rendered in the text exposition format 0.0.4. Reconcilers,
 * the apply engine and the HTTP server add to it from many threads; one mutex guards it all
 * (every operation is a hash lookup and an add, so contention is negligible).
 *
 * Rules a caller can rely on:
 *  - Families render in the order they first became known (tp_metrics_describe, or first use
 *    of an undeclared name); the series of a family render sorted by their label string.
 *  - An undeclared name is declared implicitly at first use: add/set make it "untyped" (no
 *    HELP line, "# TYPE name untyped"), observe makes it a histogram with the Prometheus
 *    default buckets. A later tp_metrics_describe gives it HELP and a type.
 *  - Operations that do not fit the type are ignored: add/set on a histogram, observe on a
 *    counter or gauge, and a negative or NaN add on a counter (counters never go down).
 *  - Memory is bounded: at most TP_METRICS_MAX_SERIES series and label sets of at most
 *    TP_METRICS_MAX_LABELS bytes. A series refused for either reason is counted and rendered
 *    as tapestry_metrics_dropped_series_total (only once something was dropped). Label sets
 *    containing a raw newline are refused the same way: they would forge exposition lines.
 *  - Values print as integers when they are integral (3, not 3.0000), otherwise with the
 *    shortest of %.15g / %.17g that reads back to the same double; NaN and ±Inf as
 *    Prometheus spells them.
 */
#include "util.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TP_METRICS_MAX_SERIES 10000
#define TP_METRICS_MAX_LABELS 1024
#define HASH_BUCKETS          4096 /* power of two; ~2.5 entries per chain at the series cap */
#define DROPPED_NAME          "tapestry_metrics_dropped_series_total"

struct family;

typedef struct series {
	struct series *next; /* hash chain */
	struct family *fam;
	char *labels;
	double value;      /* counter, gauge, untyped */
	double sum;        /* histogram */
	uint64_t count;    /* histogram: observations (the +Inf bucket) */
	uint64_t *buckets; /* histogram: per-bucket (non-cumulative) counts, fam->nbounds */
} series;

typedef struct family {
	char *name;
	char *help;
	tp_metric_type type;
	bool declared;  /* false: implicit (first used without tp_metrics_describe) */
	double *bounds; /* histogram upper bounds, ascending, finite */
	size_t nbounds;
	series **series; /* sorted by labels */
	size_t nseries;
	size_t capseries;
} family;

struct tp_metrics {
	pthread_mutex_t mu;
	family **families; /* declaration order */
	size_t nfamilies;
	size_t capfamilies;
	series *hash[HASH_BUCKETS];
	size_t nseries;
	uint64_t dropped;
};

static const double default_buckets[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};

/* ---------------------------------------------------------------- helpers */

static uint32_t key_hash(const char *name, const char *labels)
{
	uint32_t h = 2166136261u; /* FNV-1a over name, a separator, labels */
	for (const unsigned char *p = (const unsigned char *)name; *p; p++)
		h = (h ^ *p) * 16777619u;
	h = (h ^ 0xffu) * 16777619u;
	for (const unsigned char *p = (const unsigned char *)labels; *p; p++)
		h = (h ^ *p) * 16777619u;
	return h & (HASH_BUCKETS - 1);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

/* Copies histogram bounds sorted, without NaN, +Inf (implicit) or duplicates. */
static void set_bounds(family *f, const double *bounds, size_t n)
{
	size_t k = 0;
	free(f->bounds);
	f->bounds = NULL;
	f->nbounds = 0;
	if (!bounds || n == 0)
		return;
	f->bounds = tp_calloc(n, sizeof(double));
	for (size_t i = 0; i < n; i++)
		if (!isnan(bounds[i]) && !(isinf(bounds[i]) && bounds[i] > 0))
			f->bounds[k++] = bounds[i];
	qsort(f->bounds, k, sizeof(double), cmp_double);
	f->nbounds = 0;
	for (size_t i = 0; i < k; i++)
		if (f->nbounds == 0 || f->bounds[f->nbounds - 1] < f->bounds[i])
			f->bounds[f->nbounds++] = f->bounds[i];
}

static family *family_find(tp_metrics *m, const char *name)
{
	for (size_t i = 0; i < m->nfamilies; i++)
		if (strcmp(m->families[i]->name, name) == 0)
			return m->families[i];
	return NULL;
}

static family *family_add(tp_metrics *m, const char *name, tp_metric_type type, bool declared)
{
	family *f = tp_calloc(1, sizeof(*f));
	f->name = tp_strdup(name);
	f->help = tp_strdup("");
	f->type = type;
	f->declared = declared;
	if (m->nfamilies == m->capfamilies) {
		m->capfamilies = m->capfamilies ? 2 * m->capfamilies : 16;
		m->families = tp_realloc(m->families, m->capfamilies * sizeof(*m->families));
	}
	m->families[m->nfamilies++] = f;
	return f;
}

static void family_free(family *f)
{
	if (!f)
		return;
	free(f->name);
	free(f->help);
	free(f->bounds);
	free(f->series);
	free(f);
}

static series *series_find(tp_metrics *m, const char *name, const char *labels)
{
	for (series *s = m->hash[key_hash(name, labels)]; s; s = s->next)
		if (strcmp(s->fam->name, name) == 0 && strcmp(s->labels, labels) == 0)
			return s;
	return NULL;
}

/* Inserts s into its family's label-sorted array (binary search, then a shift). */
static void family_insert(family *f, series *s)
{
	size_t lo = 0, hi = f->nseries;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (strcmp(f->series[mid]->labels, s->labels) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (f->nseries == f->capseries) {
		f->capseries = f->capseries ? 2 * f->capseries : 8;
		f->series = tp_realloc(f->series, f->capseries * sizeof(*f->series));
	}
	memmove(f->series + lo + 1, f->series + lo, (f->nseries - lo) * sizeof(*f->series));
	f->series[lo] = s;
	f->nseries++;
}

/*
 * The series for (name, labels), created when new. implicit_type is the type an undeclared
 * name gets. NULL when the series is refused (cap, oversized or forged labels): counted.
 * Called with the lock held.
 */
static series *series_get(tp_metrics *m, const char *name, const char *labels,
			  tp_metric_type implicit_type)
{
	series *s = series_find(m, name, labels);
	family *f = NULL;
	uint32_t h;

	if (s)
		return s;
	if (m->nseries >= TP_METRICS_MAX_SERIES || strlen(labels) > TP_METRICS_MAX_LABELS ||
	    strpbrk(labels, "\r\n") || strpbrk(name, "\r\n") || name[0] == '\0') {
		m->dropped++;
		return NULL;
	}
	f = family_find(m, name);
	if (!f) {
		f = family_add(m, name, implicit_type, false);
		if (implicit_type == TP_METRIC_HISTOGRAM)
			set_bounds(f, default_buckets,
				   sizeof(default_buckets) / sizeof(default_buckets[0]));
	}
	s = tp_calloc(1, sizeof(*s));
	s->fam = f;
	s->labels = tp_strdup(labels);
	if (f->type == TP_METRIC_HISTOGRAM && f->nbounds > 0)
		s->buckets = tp_calloc(f->nbounds, sizeof(uint64_t));
	h = key_hash(name, labels);
	s->next = m->hash[h];
	m->hash[h] = s;
	family_insert(f, s);
	m->nseries++;
	return s;
}

/* Prometheus sample value: integral values without decimals, otherwise the shortest
 * round-tripping form; NaN, +Inf, -Inf spelled as the exposition format wants. */
static void format_value(char *out, size_t outlen, double v)
{
	if (isnan(v)) {
		snprintf(out, outlen, "NaN");
	} else if (isinf(v)) {
		snprintf(out, outlen, "%s", v > 0 ? "+Inf" : "-Inf");
	} else if (v == trunc(v) && fabs(v) < 9007199254740992.0) { /* 2^53: exact in int64 */
		snprintf(out, outlen, "%lld", (long long)v);
	} else {
		snprintf(out, outlen, "%.15g", v);
		if (strtod(out, NULL) != v)
			snprintf(out, outlen, "%.17g", v);
	}
}

/* HELP text escaping per the exposition format: backslash and newline. */
static int put_help(tp_buf *out, const char *help)
{
	int rc = 0;
	for (const char *p = help; rc == 0 && *p; p++) {
		if (*p == '\\')
			rc = tp_buf_puts(out, "\\\\");
		else if (*p == '\n')
			rc = tp_buf_puts(out, "\\n");
		else
			rc = tp_buf_putc(out, *p);
	}
	return rc;
}

static const char *type_name(const family *f)
{
	if (f->type == TP_METRIC_HISTOGRAM)
		return "histogram";
	if (!f->declared)
		return "untyped";
	return f->type == TP_METRIC_COUNTER ? "counter" : "gauge";
}

static int render_histogram(tp_buf *out, const family *f, const series *s)
{
	const char *sep = s->labels[0] ? "," : "";
	char num[64];
	uint64_t cum = 0;
	int rc = 0;

	for (size_t i = 0; rc == 0 && i < f->nbounds; i++) {
		cum += s->buckets[i];
		format_value(num, sizeof(num), f->bounds[i]);
		rc = tp_buf_printf(out, "%s_bucket{%s%sle=\"%s\"} %llu\n", f->name, s->labels, sep,
				   num, (unsigned long long)cum);
	}
	if (rc == 0)
		rc = tp_buf_printf(out, "%s_bucket{%s%sle=\"+Inf\"} %llu\n", f->name, s->labels,
				   sep, (unsigned long long)s->count);
	format_value(num, sizeof(num), s->sum);
	if (rc == 0 && s->labels[0])
		rc = tp_buf_printf(out, "%s_sum{%s} %s\n%s_count{%s} %llu\n", f->name, s->labels,
				   num, f->name, s->labels, (unsigned long long)s->count);
	else if (rc == 0)
		rc = tp_buf_printf(out, "%s_sum %s\n%s_count %llu\n", f->name, num, f->name,
				   (unsigned long long)s->count);
	return rc;
}

static int render_family(tp_buf *out, const family *f)
{
	char num[64];
	int rc = 0;

	if (f->declared) {
		rc = tp_buf_printf(out, "# HELP %s ", f->name);
		if (rc == 0)
			rc = put_help(out, f->help);
		if (rc == 0)
			rc = tp_buf_putc(out, '\n');
	}
	if (rc == 0)
		rc = tp_buf_printf(out, "# TYPE %s %s\n", f->name, type_name(f));
	for (size_t i = 0; rc == 0 && i < f->nseries; i++) {
		const series *s = f->series[i];
		if (f->type == TP_METRIC_HISTOGRAM) {
			rc = render_histogram(out, f, s);
			continue;
		}
		format_value(num, sizeof(num), s->value);
		if (s->labels[0])
			rc = tp_buf_printf(out, "%s{%s} %s\n", f->name, s->labels, num);
		else
			rc = tp_buf_printf(out, "%s %s\n", f->name, num);
	}
	return rc;
}

/* ---------------------------------------------------------------- API */

tp_metrics *tp_metrics_new(void)
{
	tp_metrics *m = tp_calloc(1, sizeof(*m));
	pthread_mutex_init(&m->mu, NULL);
	return m;
}

void tp_metrics_free(tp_metrics *m)
{
	if (!m)
		return;
	for (size_t i = 0; i < HASH_BUCKETS; i++) {
		series *s = m->hash[i];
		while (s) {
			series *next = s->next;
			free(s->labels);
			free(s->buckets);
			free(s);
			s = next;
		}
	}
	for (size_t i = 0; i < m->nfamilies; i++)
		family_free(m->families[i]);
	free(m->families);
	pthread_mutex_destroy(&m->mu);
	free(m);
}

void tp_metrics_describe(tp_metrics *m, const char *name, tp_metric_type type, const char *help,
			 const double *buckets, size_t nbuckets)
{
	family *f;
	if (!m || !name || !name[0] || strpbrk(name, "\r\n"))
		return;
	pthread_mutex_lock(&m->mu);
	f = family_find(m, name);
	if (!f)
		f = family_add(m, name, type, true);
	if (f->nseries == 0) {
		/* nothing recorded yet: the declaration wins entirely */
		f->type = type;
		if (type == TP_METRIC_HISTOGRAM)
			set_bounds(f, buckets, nbuckets);
		else
			set_bounds(f, NULL, 0);
	} else if (f->type != TP_METRIC_HISTOGRAM && type != TP_METRIC_HISTOGRAM) {
		f->type = type; /* same storage; an untyped family gets its real type */
	}
	/* else: series of the other shape exist; keep their type and buckets, take the help */
	free(f->help);
	f->help = tp_strdup(help ? help : "");
	f->declared = true;
	pthread_mutex_unlock(&m->mu);
}

void tp_metrics_add(tp_metrics *m, const char *name, const char *labels, double v)
{
	series *s;
	if (!m || !name)
		return;
	pthread_mutex_lock(&m->mu);
	s = series_get(m, name, labels ? labels : "", TP_METRIC_COUNTER);
	if (s && s->fam->type != TP_METRIC_HISTOGRAM &&
	    !(s->fam->declared && s->fam->type == TP_METRIC_COUNTER && !(v >= 0)))
		s->value += v;
	pthread_mutex_unlock(&m->mu);
}

void tp_metrics_set(tp_metrics *m, const char *name, const char *labels, double v)
{
	series *s;
	if (!m || !name)
		return;
	pthread_mutex_lock(&m->mu);
	s = series_get(m, name, labels ? labels : "", TP_METRIC_GAUGE);
	if (s && s->fam->type != TP_METRIC_HISTOGRAM)
		s->value = v;
	pthread_mutex_unlock(&m->mu);
}

void tp_metrics_observe(tp_metrics *m, const char *name, const char *labels, double v)
{
	series *s;
	if (!m || !name)
		return;
	pthread_mutex_lock(&m->mu);
	s = series_get(m, name, labels ? labels : "", TP_METRIC_HISTOGRAM);
	if (s && s->fam->type == TP_METRIC_HISTOGRAM) {
		for (size_t i = 0; i < s->fam->nbounds; i++) {
			if (v <= s->fam->bounds[i]) {
				s->buckets[i]++;
				break;
			}
		}
		s->count++;
		s->sum += v;
	}
	pthread_mutex_unlock(&m->mu);
}

double tp_metrics_get(tp_metrics *m, const char *name, const char *labels)
{
	double v = 0;
	series *s;
	if (!m || !name)
		return 0;
	pthread_mutex_lock(&m->mu);
	s = series_find(m, name, labels ? labels : "");
	if (s)
		v = s->fam->type == TP_METRIC_HISTOGRAM ? (double)s->count : s->value;
	pthread_mutex_unlock(&m->mu);
	return v;
}

int tp_metrics_render(tp_metrics *m, tp_buf *out)
{
	int rc = 0;
	if (!m)
		return tp_buf_put(out, "", 0);
	pthread_mutex_lock(&m->mu);
	for (size_t i = 0; rc == 0 && i < m->nfamilies; i++)
		rc = render_family(out, m->families[i]);
	if (rc == 0 && m->dropped > 0)
		rc = tp_buf_printf(out,
				   "# HELP " DROPPED_NAME " Metric series refused because the "
				   "registry reached its bound.\n"
				   "# TYPE " DROPPED_NAME " counter\n" DROPPED_NAME " %llu\n",
				   (unsigned long long)m->dropped);
	if (rc == 0)
		rc = tp_buf_put(out, "", 0); /* terminated even when empty */
	pthread_mutex_unlock(&m->mu);
	return rc;
}

void tp_metrics_label_escape(char *out, size_t outlen, const char *value)
{
	size_t o = 0;
	bool truncated = false;

	if (!out || outlen == 0)
		return;
	for (const char *p = value ? value : ""; *p; p++) {
		const char *rep = p;
		size_t n = 2;
		switch (*p) {
		case '\\': rep = "\\\\"; break;
		case '"': rep = "\\\""; break;
		case '\n': rep = "\\n"; break;
		default: n = 1;
		}
		if (o + n >= outlen) {
			truncated = true; /* never split an escape sequence */
			break;
		}
		memcpy(out + o, rep, n);
		o += n;
	}
	if (truncated) {
		/* never leave half a UTF-8 character: Prometheus rejects invalid UTF-8 */
		size_t k = 0, need = 1;
		unsigned char lead;
		while (k < o && k < 3 && ((unsigned char)out[o - 1 - k] & 0xC0) == 0x80)
			k++;
		lead = k < o ? (unsigned char)out[o - 1 - k] : 0;
		if (lead >= 0xF0)
			need = 4;
		else if (lead >= 0xE0)
			need = 3;
		else if (lead >= 0xC0)
			need = 2;
		if (lead >= 0xC0 && k + 1 < need)
			o -= k + 1;
	}
	out[o] = '\0';
}
