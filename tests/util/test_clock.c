/* util/clock.c: the test-controlled clock seam, durations, timestamps. */
#include <criterion/criterion.h>
#include <string.h>

#include "util/util.h"

typedef struct {
	int64_t now;
	int64_t slept;
} fake;

static int64_t f_now(void *ctx)
{
	return ((fake *)ctx)->now;
}

static void f_sleep(void *ctx, int64_t ms)
{
	((fake *)ctx)->now += ms;
	((fake *)ctx)->slept += ms;
}

static uint64_t f_rand(void *ctx)
{
	(void)ctx;
	return 7;
}

Test(clock, tests_can_control_time)
{
	fake f = {1000, 0};
	tp_clock_ops ops = {f_now, f_now, f_sleep, f_rand, &f};
	tp_clock_set(&ops);
	cr_assert_eq(tp_clock_now_ms(), 1000);
	tp_clock_sleep_ms(250);
	cr_assert_eq(tp_clock_mono_ms(), 1250);
	cr_assert_eq(f.slept, 250);
	cr_assert_eq(tp_clock_rand_below(5), 2);
	tp_clock_set(NULL);
	cr_assert(tp_clock_now_ms() > 1600000000000LL);
}

Test(clock, rfc3339)
{
	char out[40];
	tp_clock_format_rfc3339(out, sizeof(out), 1700000000123LL);
	cr_assert_str_eq(out, "2023-11-14T22:13:20.123Z");
}

Test(clock, durations)
{
	int64_t ms = 0;
	cr_assert_eq(tp_duration_parse(&ms, "10m"), 0);
	cr_assert_eq(ms, 600000);
	cr_assert_eq(tp_duration_parse(&ms, "1h30m"), 0);
	cr_assert_eq(ms, 5400000);
	cr_assert_eq(tp_duration_parse(&ms, "500ms"), 0);
	cr_assert_eq(ms, 500);
	cr_assert_eq(tp_duration_parse(&ms, "2d"), 0);
	cr_assert_eq(ms, 172800000);
	cr_assert_eq(tp_duration_parse(&ms, ""), TP_EINVALID);
	cr_assert_eq(tp_duration_parse(&ms, "10"), TP_EINVALID);
	cr_assert_eq(tp_duration_parse(&ms, "m"), TP_EINVALID);
	cr_assert_eq(tp_duration_parse(&ms, "5 m"), TP_EINVALID);
	cr_assert_eq(tp_duration_parse(&ms, "99999999999999999999h"), TP_EINVALID);
}
