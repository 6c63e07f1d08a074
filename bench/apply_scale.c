/*
 * bench/apply_scale: the apply engine's throughput and overhead. For 100 and 1,000
 * independent local.file resources, with 0 and 20 ms of injected latency per write call
 * (TAPESTRY_LOCAL_FAULTS=latency:N, standing in for a remote API), it times the real binary's
 * cold apply and the following no-op apply, and reports the ideal (resources ÷ concurrency ×
 * latency) next to it with the peak RSS. Target (issue): cold apply of 1,000 independent
 * resources at 20 ms within 1.5× of the ideal; a no-op makes no write call.
 *
 * Usage: bench_apply_scale [path/to/tapestry] [results.json]
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "util/util.h"

typedef struct {
	double wall_s;
	long rss_kb;
	int status;
} run_result;

static run_result run(const char *bin, const char *dir, const char *db, const char *faults)
{
	run_result r = {0};
	struct rusage ru;
	int status = 0;
	int64_t t0 = tp_clock_mono_ms();
	pid_t pid = fork();
	if (pid == 0) {
		int fd = open("/dev/null", O_WRONLY);
		dup2(fd, 1);
		dup2(fd, 2);
		if (faults)
			setenv("TAPESTRY_LOCAL_FAULTS", faults, 1);
		execl(bin, bin, "apply", dir, "--state", db, "--auto-approve", "--concurrency=8",
		      (char *)NULL);
		_exit(127);
	}
	wait4(pid, &status, 0, &ru);
	r.wall_s = (double)(tp_clock_mono_ms() - t0) / 1000.0;
	r.rss_kb = ru.ru_maxrss;
	r.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
	return r;
}

static void gen(const char *dir, int n)
{
	char *p = tp_sprintf("%s/resources", dir);
	char *f;
	FILE *out;
	char *o = tp_sprintf("%s/out", dir);
	mkdir(dir, 0755);
	mkdir(p, 0755);
	mkdir(o, 0755);
	free(o);
	f = tp_sprintf("%s/tapestry.yaml", dir);
	out = fopen(f, "w");
	fputs("pipeline: apply-scale\nsettings: {concurrency: 8}\n", out);
	fclose(out);
	free(f);
	f = tp_sprintf("%s/resources/files.yaml", dir);
	out = fopen(f, "w");
	for (int i = 0; i < n; i++)
		fprintf(out, "---\nkind: local.file\nname: f%d\nspec: {path: %s/out/f%d, content: "
			     "\"file %d\"}\n", i, dir, i, i);
	fclose(out);
	free(f);
	free(p);
}

int main(int argc, char **argv)
{
	const char *bin = argc > 1 ? argv[1] : "build/tapestry";
	const char *out_path = argc > 2 ? argv[2] : "bench/results/apply_scale.json";
	static const int sizes[] = {100, 1000};
	static const int latencies[] = {0, 20};
	char tmpl[] = "/tmp/tapestry-bench-XXXXXX";
	char *root = mkdtemp(tmpl);
	json_t *results = json_array();
	char date[40], *text;
	FILE *f;

	if (!root || access(bin, X_OK) != 0) {
		fprintf(stderr, "bench: need the tapestry binary (%s)\n", bin);
		return 1;
	}
	printf("%-10s %-8s %-8s %10s %10s %8s %12s\n", "resources", "latency", "run", "wall (s)",
	       "ideal (s)", "ratio", "peak RSS MB");
	for (size_t i = 0; i < 2; i++) {
		for (size_t j = 0; j < 2; j++) {
			char *dir = tp_sprintf("%s/p%d-%d", root, sizes[i], latencies[j]);
			char *db = tp_sprintf("%s/s%d-%d.db", root, sizes[i], latencies[j]);
			char *faults = latencies[j] ? tp_sprintf("latency:%d", latencies[j]) : NULL;
			double ideal = (double)sizes[i] / 8.0 * latencies[j] / 1000.0;
			run_result cold, noop;
			gen(dir, sizes[i]);
			cold = run(bin, dir, db, faults);
			noop = run(bin, dir, db, faults);
			printf("%-10d %-8d %-8s %10.3f %10.3f %8s %12.1f\n", sizes[i], latencies[j],
			       "cold", cold.wall_s, ideal, "", cold.rss_kb / 1024.0);
			if (ideal > 0)
				printf("%-10s %-8s %-8s %10s %10s %8.2f\n", "", "", "", "", "",
				       cold.wall_s / ideal);
			printf("%-10d %-8d %-8s %10.3f %10s %8s %12.1f\n", sizes[i], latencies[j],
			       "no-op", noop.wall_s, "-", "", noop.rss_kb / 1024.0);
			json_array_append_new(results,
					      json_pack("{s:i,s:i,s:f,s:f,s:f,s:f,s:f,s:i,s:i}",
							"resources", sizes[i], "latency_ms",
							latencies[j], "cold_wall_s", cold.wall_s,
							"ideal_s", ideal, "noop_wall_s", noop.wall_s,
							"cold_peak_rss_mb", cold.rss_kb / 1024.0,
							"noop_peak_rss_mb", noop.rss_kb / 1024.0,
							"cold_exit", cold.status, "noop_exit",
							noop.status));
			free(dir);
			free(db);
			free(faults);
		}
	}
	tp_clock_format_rfc3339(date, sizeof(date), tp_clock_now_ms());
	text = json_dumps(json_pack("{s:s,s:s,s:i,s:o}", "benchmark", "apply_scale", "date",
				    date, "cpus", (int)sysconf(_SC_NPROCESSORS_ONLN), "results",
				    results),
			  JSON_INDENT(2) | JSON_SORT_KEYS);
	f = fopen(out_path, "w");
	if (f) {
		fputs(text, f);
		fclose(f);
	}
	printf("results written to %s\n", out_path);
	free(text);
	{
		char *cmd = tp_sprintf("rm -rf '%s'", root);
		if (system(cmd) != 0)
			fprintf(stderr, "bench: could not remove %s\n", root);
		free(cmd);
	}
	return 0;
}
