/*
 * bench/plan_scale: how offline `tapestry plan` scales. For 100, 1,000 and 10,000 resources
 * (a mix of local.file, snowflake.role, snowflake.grant and aws.ssm_parameter with references
 * between them) it generates a pipeline directory and a state database, then times the real
 * binary planning against (a) an empty state (everything is created) and (b) a state in sync
 * (no changes), reporting wall time and peak RSS of the child process. It prints a table and
 * writes bench/results/plan_scale.json. Targets (issue): 10,000 resources in under 1 s with a
 * peak RSS under 64 MB. Figures, not assertions: machines are shared and noisy.
 *
 * Usage: bench_plan_scale [path/to/tapestry] [results.json]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <fcntl.h>
#include <unistd.h>

#include "diff/diff.h"
#include "spec/spec.h"
#include "state/state.h"

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	if (!f || fputs(text, f) < 0) {
		fprintf(stderr, "bench: cannot write %s\n", path);
		exit(1);
	}
	fclose(f);
}

/* One "unit" of 4 resources: a role, an SSM parameter, a grant referencing the role, and a
 * file referencing the parameter. */
static void gen_pipeline(const char *dir, int n)
{
	char *p = tp_sprintf("%s/resources", dir);
	tp_buf b;
	mkdir(dir, 0755);
	mkdir(p, 0755);
	free(p);
	p = tp_sprintf("%s/tapestry.yaml", dir);
	write_file(p, "pipeline: scale\n"
		      "settings: {concurrency: 16}\n"
		      "providers:\n"
		      "  aws: {region: us-east-1}\n"
		      "  snowflake: {account: BENCH-ACCOUNT, user: TAPESTRY, private_key: "
		      "\"${secret:env:SNOWFLAKE_KEY}\"}\n");
	free(p);
	tp_buf_init(&b, 0);
	for (int i = 0; i < n / 4; i++) {
		tp_buf_printf(&b,
			      "---\nkind: snowflake.role\nname: role-%d\nspec: {name: ROLE_%d, "
			      "comment: \"bench role %d\"}\n"
			      "---\nkind: aws.ssm_parameter\nname: param-%d\nspec: {name: "
			      "/bench/param/%d, value: \"value-%d\"}\n"
			      "---\nkind: snowflake.grant\nname: grant-%d\nspec:\n  role: "
			      "${snowflake.role/role-%d.name}\n  privileges: [usage, monitor]\n  on: "
			      "{type: warehouse, name: BENCH_WH}\n"
			      "---\nkind: local.file\nname: file-%d\nspec: {path: /srv/bench/%d.env, "
			      "content: \"P=${aws.ssm_parameter/param-%d.name}\\n\"}\n",
			      i, i, i, i, i, i, i, i, i, i, i);
		if ((i + 1) % 250 == 0 || i + 1 == n / 4) {
			char *f = tp_sprintf("%s/resources/part-%05d.yaml", dir, i / 250);
			write_file(f, tp_buf_cstr(&b));
			free(f);
			tp_buf_clear(&b);
		}
	}
	tp_buf_free(&b);
}

/* Records the state a successful apply of the pipeline would leave: applied = resolved,
 * normalised desired spec; outputs predicted by the kinds or named after the object. */
static void gen_state(const char *dir, const char *db)
{
	tp_tree *tree = NULL;
	tp_pipeline *p = NULL;
	tp_diags d = {0};
	tp_state *s = NULL;
	tp_state_resources none = {0}, mem = {0};
	if (tp_tree_fs_open(&tree, dir) < 0 || tp_pipeline_load(&p, tree, &d) < 0) {
		tp_diags_print(&d, stderr);
		fprintf(stderr, "bench: generated pipeline does not load: %s\n", tp_error_last());
		exit(1);
	}
	if (tp_state_open(&s, db, TP_STATE_READWRITE) < 0) {
		fprintf(stderr, "bench: %s\n", tp_error_last());
		exit(1);
	}
	/* outputs first (resources are sorted by address, as state lists are), then each
	 * applied spec resolved against them */
	mem.len = p->nresources;
	mem.items = tp_calloc(p->nresources, sizeof(*mem.items));
	for (size_t k = 0; k < p->nresources; k++) {
		const tp_resource *r = &p->resources[k];
		json_t *spec = tp_spec_resolve(r, p, &none, NULL);
		mem.items[k].address = tp_strdup(r->address);
		mem.items[k].outputs = r->kind->predict_outputs ? r->kind->predict_outputs(spec)
							       : json_object();
		if (json_is_string(json_object_get(spec, "name")))
			json_object_set(mem.items[k].outputs, "name", json_object_get(spec, "name"));
		json_decref(spec);
	}
	tp_state_begin(s);
	for (size_t k = 0; k < p->nresources; k++) {
		const tp_resource *r = &p->resources[k];
		tp_state_resource sr = {0};
		json_t *applied = tp_spec_resolve(r, p, &mem, NULL);
		if (r->kind->normalise)
			r->kind->normalise(applied);
		sr.address = r->address;
		sr.kind = (char *)(uintptr_t)r->kind->name;
		sr.name = r->name;
		sr.applied = applied;
		sr.outputs = mem.items[k].outputs;
		sr.lifecycle = json_pack("{s:b,s:s}", "prevent_destroy", 0, "deletion", "delete");
		sr.deps = json_array();
		for (size_t j = 0; j < r->ndeps; j++)
			json_array_append_new(sr.deps, json_string(p->resources[r->deps[j]].address));
		sr.status = (char *)"ready";
		if (tp_state_resource_put(s, &sr) < 0) {
			fprintf(stderr, "bench: %s\n", tp_error_last());
			exit(1);
		}
		json_decref(sr.applied);
		json_decref(sr.lifecycle);
		json_decref(sr.deps);
	}
	tp_state_commit(s);
	tp_state_close(s);
	tp_state_resources_free(&mem);
	tp_pipeline_free(p);
	tp_diags_free(&d);
	tp_tree_free(tree);
}

typedef struct {
	double wall_s;
	long rss_kb;
	int status;
} run_result;

static run_result run_plan(const char *bin, const char *dir, const char *db)
{
	run_result r = {0};
	struct rusage ru;
	int status = 0;
	int64_t t0 = tp_clock_mono_ms();
	pid_t pid = fork();
	if (pid == 0) {
		int fd = open("/dev/null", O_WRONLY);
		dup2(fd, 1);
		execl(bin, bin, "plan", dir, "--state", db, "--detailed-exitcode", (char *)NULL);
		_exit(127);
	}
	wait4(pid, &status, 0, &ru);
	r.wall_s = (double)(tp_clock_mono_ms() - t0) / 1000.0;
	r.rss_kb = ru.ru_maxrss;
	r.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
	return r;
}

int main(int argc, char **argv)
{
	const char *bin = argc > 1 ? argv[1] : "build/tapestry";
	const char *out_path = argc > 2 ? argv[2] : "bench/results/plan_scale.json";
	static const int sizes[] = {100, 1000, 10000};
	char tmpl[] = "/tmp/tapestry-bench-XXXXXX";
	char *root = mkdtemp(tmpl);
	json_t *results = json_array();
	char date[40], *text;

	if (!root || access(bin, X_OK) != 0) {
		fprintf(stderr, "bench: need the tapestry binary (%s) and a temp dir\n", bin);
		return 1;
	}
	printf("%-10s %-8s %10s %12s %8s\n", "resources", "state", "wall (s)", "peak RSS (MB)",
	       "exit");
	for (size_t i = 0; i < sizeof(sizes) / sizeof(*sizes); i++) {
		char *dir = tp_sprintf("%s/p%d", root, sizes[i]);
		char *db = tp_sprintf("%s/s%d.db", root, sizes[i]);
		char *empty = tp_sprintf("%s/empty%d.db", root, sizes[i]);
		run_result cold, warm;
		gen_pipeline(dir, sizes[i]);
		gen_state(dir, db);
		run_plan(bin, dir, db); /* warm the page cache */
		cold = run_plan(bin, dir, empty);
		warm = run_plan(bin, dir, db);
		printf("%-10d %-8s %10.3f %12.1f %8d\n", sizes[i], "empty", cold.wall_s,
		       cold.rss_kb / 1024.0, cold.status);
		printf("%-10d %-8s %10.3f %12.1f %8d\n", sizes[i], "in-sync", warm.wall_s,
		       warm.rss_kb / 1024.0, warm.status);
		json_array_append_new(results,
				      json_pack("{s:i,s:s,s:f,s:f,s:i}", "resources", sizes[i],
						"state", "empty", "wall_s", cold.wall_s, "peak_rss_mb",
						cold.rss_kb / 1024.0, "exit", cold.status));
		json_array_append_new(results,
				      json_pack("{s:i,s:s,s:f,s:f,s:i}", "resources", sizes[i],
						"state", "in-sync", "wall_s", warm.wall_s, "peak_rss_mb",
						warm.rss_kb / 1024.0, "exit", warm.status));
		free(dir);
		free(db);
		free(empty);
	}
	tp_clock_format_rfc3339(date, sizeof(date), tp_clock_now_ms());
	text = json_dumps(json_pack("{s:s,s:s,s:i,s:o}", "benchmark", "plan_scale", "date", date,
				    "cpus", (int)sysconf(_SC_NPROCESSORS_ONLN), "results", results),
			  JSON_INDENT(2) | JSON_SORT_KEYS);
	write_file(out_path, text);
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
