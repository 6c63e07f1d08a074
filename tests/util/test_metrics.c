/* util/metrics.c: exact exposition text, label escaping, concurrency and the series bound. */
#include <criterion/criterion.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "support/support.h"
#include "util/util.h"

static char *render(tp_metrics *m)
{
	tp_buf b;
	tp_buf_init(&b, 0);
	cr_assert_eq(tp_metrics_render(m, &b), 0);
	return tp_buf_detach(&b);
}

Test(metrics, counter_and_gauge_render_exactly)
{
	tp_metrics *m = tp_metrics_new();
	char *text;
	tp_metrics_describe(m, "tapestry_runs_total", TP_METRIC_COUNTER, "Runs by result.", NULL,
			    0);
	tp_metrics_describe(m, "tapestry_resources", TP_METRIC_GAUGE, "Managed resources.", NULL,
			    0);
	tp_metrics_add(m, "tapestry_runs_total", "result=\"ok\"", 1);
	tp_metrics_add(m, "tapestry_runs_total", "result=\"ok\"", 2);
	tp_metrics_add(m, "tapestry_runs_total", "result=\"failed\"", 1);
	tp_metrics_set(m, "tapestry_resources", "", 41);
	tp_metrics_set(m, "tapestry_resources", "", 42);
	text = render(m);
	cr_assert_str_eq(text, "# HELP tapestry_runs_total Runs by result.\n"
			       "# TYPE tapestry_runs_total counter\n"
			       "tapestry_runs_total{result=\"failed\"} 1\n"
			       "tapestry_runs_total{result=\"ok\"} 3\n"
			       "# HELP tapestry_resources Managed resources.\n"
			       "# TYPE tapestry_resources gauge\n"
			       "tapestry_resources 42\n");
	cr_assert_eq(tp_metrics_get(m, "tapestry_runs_total", "result=\"ok\""), 3);
	cr_assert_eq(tp_metrics_get(m, "tapestry_runs_total", "result=\"nope\""), 0);
	cr_assert_eq(tp_metrics_get(m, "tapestry_resources", NULL), 42);
	free(text);
	tp_metrics_free(m);
}

Test(metrics, declared_without_series_renders_metadata_only)
{
	tp_metrics *m = tp_metrics_new();
	char *text;
	tp_metrics_describe(m, "a_total", TP_METRIC_COUNTER, "A.", NULL, 0);
	text = render(m);
	cr_assert_str_eq(text, "# HELP a_total A.\n# TYPE a_total counter\n");
	free(text);
	tp_metrics_free(m);
	text = render(NULL);
	cr_assert_str_eq(text, "");
	free(text);
}

Test(metrics, histogram_renders_cumulative_buckets)
{
	static const double buckets[] = {5, 0.1, 1}; /* unsorted on purpose */
	tp_metrics *m = tp_metrics_new();
	char *text;
	tp_metrics_describe(m, "tapestry_apply_seconds", TP_METRIC_HISTOGRAM, "Apply duration.",
			    buckets, 3);
	tp_metrics_observe(m, "tapestry_apply_seconds", "op=\"apply\"", 0.0625);
	tp_metrics_observe(m, "tapestry_apply_seconds", "op=\"apply\"", 0.5);
	tp_metrics_observe(m, "tapestry_apply_seconds", "op=\"apply\"", 0.5);
	tp_metrics_observe(m, "tapestry_apply_seconds", "op=\"apply\"", 7);
	tp_metrics_observe(m, "tapestry_apply_seconds", "", 1);
	text = render(m);
	cr_assert_str_eq(text, "# HELP tapestry_apply_seconds Apply duration.\n"
			       "# TYPE tapestry_apply_seconds histogram\n"
			       "tapestry_apply_seconds_bucket{le=\"0.1\"} 0\n"
			       "tapestry_apply_seconds_bucket{le=\"1\"} 1\n"
			       "tapestry_apply_seconds_bucket{le=\"5\"} 1\n"
			       "tapestry_apply_seconds_bucket{le=\"+Inf\"} 1\n"
			       "tapestry_apply_seconds_sum 1\n"
			       "tapestry_apply_seconds_count 1\n"
			       "tapestry_apply_seconds_bucket{op=\"apply\",le=\"0.1\"} 1\n"
			       "tapestry_apply_seconds_bucket{op=\"apply\",le=\"1\"} 3\n"
			       "tapestry_apply_seconds_bucket{op=\"apply\",le=\"5\"} 3\n"
			       "tapestry_apply_seconds_bucket{op=\"apply\",le=\"+Inf\"} 4\n"
			       "tapestry_apply_seconds_sum{op=\"apply\"} 8.0625\n"
			       "tapestry_apply_seconds_count{op=\"apply\"} 4\n");
	cr_assert_eq(tp_metrics_get(m, "tapestry_apply_seconds", "op=\"apply\""), 4);
	free(text);
	tp_metrics_free(m);
}

Test(metrics, values_have_no_noise)
{
	tp_metrics *m = tp_metrics_new();
	char *text;
	tp_metrics_describe(m, "g", TP_METRIC_GAUGE, "G.", NULL, 0);
	tp_metrics_set(m, "g", "k=\"a\"", 0.1);
	tp_metrics_set(m, "g", "k=\"b\"", -3);
	tp_metrics_set(m, "g", "k=\"c\"", 1e20);
	tp_metrics_set(m, "g", "k=\"d\"", NAN);
	tp_metrics_set(m, "g", "k=\"e\"", INFINITY);
	tp_metrics_set(m, "g", "k=\"f\"", -INFINITY);
	tp_metrics_set(m, "g", "k=\"g\"", 1.0 / 3.0);
	tp_metrics_set(m, "g", "k=\"h\"", 1234567890123.0);
	text = render(m);
	cr_assert_str_eq(text, "# HELP g G.\n"
			       "# TYPE g gauge\n"
			       "g{k=\"a\"} 0.1\n"
			       "g{k=\"b\"} -3\n"
			       "g{k=\"c\"} 1e+20\n"
			       "g{k=\"d\"} NaN\n"
			       "g{k=\"e\"} +Inf\n"
			       "g{k=\"f\"} -Inf\n"
			       "g{k=\"g\"} 0.33333333333333331\n"
			       "g{k=\"h\"} 1234567890123\n");
	free(text);
	tp_metrics_free(m);
}

Test(metrics, undeclared_names_are_untyped_and_keep_first_use_order)
{
	tp_metrics *m = tp_metrics_new();
	char *text;
	tp_metrics_add(m, "zeta_total", "", 2);
	tp_metrics_describe(m, "alpha", TP_METRIC_GAUGE, "Alpha.", NULL, 0);
	tp_metrics_set(m, "alpha", "", 1);
	tp_metrics_add(m, "zeta_total", "", -1); /* untyped: anything goes */
	text = render(m);
	cr_assert_str_eq(text, "# TYPE zeta_total untyped\n"
			       "zeta_total 1\n"
			       "# HELP alpha Alpha.\n"
			       "# TYPE alpha gauge\n"
			       "alpha 1\n");
	free(text);
	/* a later declaration gives it HELP and a type, in place */
	tp_metrics_describe(m, "zeta_total", TP_METRIC_COUNTER, "Zeta.", NULL, 0);
	text = render(m);
	cr_assert(strstr(text, "# HELP zeta_total Zeta.\n# TYPE zeta_total counter\n") == text,
		  "%s", text);
	free(text);
	tp_metrics_free(m);
}

Test(metrics, mismatched_operations_are_ignored)
{
	static const double buckets[] = {1};
	tp_metrics *m = tp_metrics_new();
	tp_metrics_describe(m, "c_total", TP_METRIC_COUNTER, "C.", NULL, 0);
	tp_metrics_describe(m, "h", TP_METRIC_HISTOGRAM, "H.", buckets, 1);
	tp_metrics_add(m, "c_total", "", 5);
	tp_metrics_add(m, "c_total", "", -2); /* counters never go down */
	tp_metrics_add(m, "c_total", "", NAN);
	tp_metrics_observe(m, "c_total", "", 3); /* not a histogram */
	tp_metrics_add(m, "h", "", 3);           /* not a counter */
	tp_metrics_set(m, "h", "", 3);
	cr_assert_eq(tp_metrics_get(m, "c_total", ""), 5);
	cr_assert_eq(tp_metrics_get(m, "h", ""), 0);
	/* observe on an undeclared name: a histogram with default buckets */
	tp_metrics_observe(m, "implicit_seconds", "", 0.2);
	cr_assert_eq(tp_metrics_get(m, "implicit_seconds", ""), 1);
	tp_metrics_free(m);
}

Test(metrics, help_text_is_escaped)
{
	tp_metrics *m = tp_metrics_new();
	char *text;
	tp_metrics_describe(m, "x", TP_METRIC_GAUGE, "a\\b\nc \"q\"", NULL, 0);
	text = render(m);
	cr_assert_str_eq(text, "# HELP x a\\\\b\\nc \"q\"\n# TYPE x gauge\n");
	free(text);
	tp_metrics_free(m);
}

Test(metrics, label_escape)
{
	char out[64], small[4], tiny[3];
	tp_metrics_label_escape(out, sizeof(out), "a\\b\"c\nd");
	cr_assert_str_eq(out, "a\\\\b\\\"c\\nd");
	tp_metrics_label_escape(out, sizeof(out), "");
	cr_assert_str_eq(out, "");
	tp_metrics_label_escape(out, sizeof(out), NULL);
	cr_assert_str_eq(out, "");
	/* bounded: never splits an escape sequence, always terminated */
	tp_metrics_label_escape(small, sizeof(small), "ab\"");
	cr_assert_str_eq(small, "ab");
	tp_metrics_label_escape(small, sizeof(small), "abcdef");
	cr_assert_str_eq(small, "abc");
	/* never leaves half a UTF-8 character */
	tp_metrics_label_escape(tiny, sizeof(tiny), "a\xc3\xa9");
	cr_assert_str_eq(tiny, "a");
	tp_metrics_label_escape(small, sizeof(small), "\xe2\x82\xac!");
	cr_assert_str_eq(small, "\xe2\x82\xac");
	tp_metrics_label_escape(small, 0, "abc"); /* no room at all: untouched, no crash */
}

Test(metrics, escaped_label_renders_safely)
{
	tp_metrics *m = tp_metrics_new();
	char val[128], labels[160], *text;
	tp_metrics_label_escape(val, sizeof(val), "evil\"} 1\nforged 2");
	snprintf(labels, sizeof(labels), "path=\"%s\"", val);
	tp_metrics_add(m, "req_total", labels, 1);
	/* a raw newline in a label set would forge a line: refused and counted */
	tp_metrics_add(m, "req_total", "path=\"a\nforged 1\"", 1);
	text = render(m);
	cr_assert_str_eq(text, "# TYPE req_total untyped\n"
			       "req_total{path=\"evil\\\"} 1\\nforged 2\"} 1\n"
			       "# HELP tapestry_metrics_dropped_series_total Metric series refused "
			       "because the registry reached its bound.\n"
			       "# TYPE tapestry_metrics_dropped_series_total counter\n"
			       "tapestry_metrics_dropped_series_total 1\n");
	free(text);
	tp_metrics_free(m);
}

#define THREADS 8
#define ADDS    20000

static void *adder(void *arg)
{
	tp_metrics *m = arg;
	for (int i = 0; i < ADDS; i++) {
		tp_metrics_add(m, "hits_total", "", 1);
		tp_metrics_observe(m, "lat_seconds", "", 0.5);
		if (i % 1000 == 0) {
			tp_buf b;
			tp_buf_init(&b, 0);
			tp_metrics_render(m, &b);
			tp_buf_free(&b);
		}
	}
	return NULL;
}

Test(metrics, concurrent_adds_are_exact)
{
	static const double buckets[] = {1};
	tp_metrics *m = tp_metrics_new();
	pthread_t t[THREADS];
	char *text;
	tp_metrics_describe(m, "hits_total", TP_METRIC_COUNTER, "Hits.", NULL, 0);
	tp_metrics_describe(m, "lat_seconds", TP_METRIC_HISTOGRAM, "Latency.", buckets, 1);
	for (int i = 0; i < THREADS; i++)
		cr_assert_eq(pthread_create(&t[i], NULL, adder, m), 0);
	for (int i = 0; i < THREADS; i++)
		pthread_join(t[i], NULL);
	cr_assert_eq(tp_metrics_get(m, "hits_total", ""), THREADS * ADDS);
	text = render(m);
	cr_assert(strstr(text, "hits_total 160000\n"), "%s", text);
	cr_assert(strstr(text, "lat_seconds_bucket{le=\"1\"} 160000\n"), "%s", text);
	cr_assert(strstr(text, "lat_seconds_sum 80000\n"), "%s", text);
	free(text);
	tp_metrics_free(m);
}

Test(metrics, series_are_bounded)
{
	tp_metrics *m = tp_metrics_new();
	char labels[64], *text;
	tp_metrics_describe(m, "per_id_total", TP_METRIC_COUNTER, "Per id.", NULL, 0);
	for (int i = 0; i < 10000 + 5; i++) {
		snprintf(labels, sizeof(labels), "id=\"%05d\"", i);
		tp_metrics_add(m, "per_id_total", labels, 1);
	}
	cr_assert_eq(tp_metrics_get(m, "per_id_total", "id=\"09999\""), 1);
	cr_assert_eq(tp_metrics_get(m, "per_id_total", "id=\"10000\""), 0);
	/* existing series keep working at the cap; new names are refused too */
	tp_metrics_add(m, "per_id_total", "id=\"00000\"", 1);
	cr_assert_eq(tp_metrics_get(m, "per_id_total", "id=\"00000\""), 2);
	tp_metrics_set(m, "other", "", 1);
	cr_assert_eq(tp_metrics_get(m, "other", ""), 0);
	text = render(m);
	cr_assert(strstr(text, "per_id_total{id=\"00000\"} 2\n"));
	cr_assert(strstr(text, "per_id_total{id=\"09999\"} 1\n"));
	cr_assert_null(strstr(text, "id=\"10000\""));
	cr_assert_null(strstr(text, "other"));
	cr_assert(strstr(text, "\ntapestry_metrics_dropped_series_total 6\n"));
	free(text);
	tp_metrics_free(m);
}

Test(metrics, oversized_label_sets_are_refused)
{
	tp_metrics *m = tp_metrics_new();
	char big[2048];
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	tp_metrics_add(m, "x_total", big, 1);
	cr_assert_eq(tp_metrics_get(m, "x_total", big), 0);
	tp_metrics_free(m);
}

Test(metrics, render_respects_the_buffer_cap)
{
	tp_metrics *m = tp_metrics_new();
	tp_buf b;
	tp_metrics_describe(m, "a_total", TP_METRIC_COUNTER, "A long enough help text.", NULL, 0);
	tp_metrics_add(m, "a_total", "", 1);
	tp_buf_init(&b, 16);
	cr_assert_eq(tp_metrics_render(m, &b), TP_ETOOBIG);
	tp_buf_free(&b);
	tp_metrics_free(m);
}
