/*
 * The reliability harnesses of bench/reliability at CI size, against the embedded stack of
 * scripts/demo/stack.sh (moto_server, the Snowflake and Airbyte fakes, the real Grouparoo 0.9,
 * fake_proxy): `crash.sh --smoke` kills `tapestry apply` at eight seeded random points,
 * restarts it and checks the live backends (no duplicate, no orphan, nothing missing,
 * convergence); `faults.sh --smoke` injects 30% of 5xx, 429 and resets on every backend and
 * checks that every phase converges, that every retry of a 429 waited its Retry-After, and
 * that the calls stay within the engine's attempts times the fault-free run's. Each must find
 * nothing. The full runs are benchmarks (bench/README.md), never part of the tests.
 */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "support/support.h"
#include "util/util.h"

#define HARNESS_LIMIT_MS (25 * 60 * 1000)

static char *dir;

static void setup(void)
{
	dir = ts_tmpdir();
}

static void teardown(void)
{
	ts_rmtree(dir);
	free(dir);
}

TestSuite(reliability, .init = setup, .fini = teardown, .timeout = 1800);

/* Runs `bash bench/reliability/<script> TAPESTRY BUILD --smoke --out <dir>/<out>` in its own
 * process group, bounded in time; returns its exit status (128+signal when stopped) and the
 * path of its log in *log. */
static int run_harness(const char *script, const char *out, char **log)
{
	char *path = tp_sprintf("%s/bench/reliability/%s", TP_SOURCE_DIR, script);
	char *result = tp_sprintf("%s/%s", dir, out);
	int64_t deadline = tp_clock_mono_ms() + HARNESS_LIMIT_MS;
	int st = 0;
	pid_t pid;

	*log = tp_sprintf("%s/%s.log", dir, script);
	pid = fork();
	cr_assert(pid >= 0);
	if (pid == 0) {
		int fd = open(*log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		setpgid(0, 0);
		dup2(fd, 1);
		dup2(fd, 2);
		execlp("bash", "bash", path, TP_BINARY, TP_BUILD_DIR, "--smoke", "--out", result,
		       (char *)NULL);
		_exit(127);
	}
	setpgid(pid, pid);
	while (waitpid(pid, &st, WNOHANG) == 0) {
		if (tp_clock_mono_ms() > deadline) {
			/* the harness's trap stops everything it started, by PID */
			kill(-pid, SIGTERM);
			for (int i = 0; i < 300 && waitpid(pid, &st, WNOHANG) == 0; i++)
				tp_clock_sleep_ms(100);
			kill(-pid, SIGKILL);
			waitpid(pid, &st, 0);
			free(path);
			free(result);
			return 128 + SIGTERM;
		}
		tp_clock_sleep_ms(200);
	}
	free(path);
	free(result);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static json_t *load_result(const char *out)
{
	char *path = tp_sprintf("%s/%s", dir, out);
	json_t *v = NULL;
	tp_buf b;
	tp_buf_init(&b, 64u << 20);
	cr_assert_eq(tp_file_read(&b, path, 64u << 20), 0, "%s was not written", path);
	cr_assert_eq(tp_json_parse(&v, b.ptr, b.len), 0, "%s: %s", path, tp_error_last());
	tp_buf_free(&b);
	free(path);
	return v;
}

Test(reliability, eight_random_kills_leave_no_duplicate_no_orphan_and_converge)
{
	char *log = NULL;
	int rc = run_harness("crash.sh", "crash.json", &log);
	json_t *r;
	cr_assert_eq(rc, 0, "crash.sh --smoke exited %d:\n%s", rc, ts_read(log));
	r = load_result("crash.json");
	cr_assert_eq(json_integer_value(json_object_get(r, "trials")), 8);
	cr_assert_eq(json_array_size(json_object_get(r, "violations")), 0, "%s",
		     json_dumps(json_object_get(r, "violations"), 0));
	cr_assert_eq(json_integer_value(json_object_get(r, "converged")), 8);
	json_decref(r);
	free(log);
}

Test(reliability, thirty_percent_faults_converge_wait_retry_after_and_stay_bounded)
{
	char *log = NULL;
	int rc = run_harness("faults.sh", "faults.json", &log);
	json_t *r;
	cr_assert_eq(rc, 0, "faults.sh --smoke exited %d:\n%s", rc, ts_read(log));
	r = load_result("faults.json");
	cr_assert(json_is_true(tp_json_path_get(r, "summary.all_converged")));
	cr_assert(json_is_true(tp_json_path_get(r, "summary.retry_after_honoured")));
	cr_assert(json_is_true(tp_json_path_get(r, "summary.within_budget")));
	json_decref(r);
	free(log);
}
