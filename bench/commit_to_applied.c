/*
 * bench/commit_to_applied: how long a pushed commit takes to be live. It runs the real
 * `tapestry run` on a Git repository (file://) holding a pipeline of local.file resources,
 * waits for its first sync, then makes one-line commits (one file's content changes) and, for
 * each, measures the time until the controller's /api/status reports the commit as the
 * applied revision:
 *   webhook  the commit is announced at once with a signed generic webhook
 *            (POST /hooks/generic, X-Tapestry-Signature-256); the poll interval is an hour,
 *            so only the webhook can trigger the sync; timed from sending the webhook;
 *   poll     no webhook, poll_interval 2s (the controller jitters it by ±10%); timed from
 *            the end of `git commit`, each commit made after a random pause so commits
 *            fall at random points of the poll cycle (expect about half an interval plus
 *            the sync).
 * For each commit it also reads the apply's duration from the run the sync recorded
 * (/api/runs: started when the plan is applied, ended when the last action finished), so the
 * figure splits into everything before the apply (waiting for the trigger, fetch, load,
 * observe, plan) and the apply itself. local.file keeps the figure about the
 * controller (webhook, fetch, load, observe, plan, apply, status); with remote providers, add
 * their observe and write times (bench_scale's no-op column and the write itself).
 * Prints mean, median, min and max; writes bench/results/commit_to_applied.json. Figures, not
 * assertions.
 *
 * Usage: bench_commit_to_applied (TAPESTRY | BUILD_DIR) [results.json] [--commits N]
 *                                [--resources N,...] [--poll-interval S] [--workdir DIR]
 *   git must be on PATH. The controller listens on 127.0.0.1 only and is stopped by PID.
 *   The work directory is made in --workdir (default $TMPDIR or /tmp) and removed at the end.
 */
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"
#include "util/util.h"

#define WEBHOOK_SECRET "bench-webhook-secret"

static const char *bin_tapestry;
static char *root;

static void die(const char *what)
{
	fprintf(stderr, "bench: %s\n", what);
	exit(1);
}

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	if (!f || fputs(text, f) < 0 || fclose(f) != 0) {
		fprintf(stderr, "bench: cannot write %s\n", path);
		exit(1);
	}
}

static int sh(const char *cmd)
{
	int rc = system(cmd);
	return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

/* The first line a shell command prints (40 hex digits for rev-parse), or "". */
static void sh_line(char *out, size_t n, const char *cmd)
{
	FILE *p = popen(cmd, "r");
	out[0] = '\0';
	if (p) {
		if (fgets(out, (int)n, p))
			out[strcspn(out, "\r\n")] = '\0';
		pclose(p);
	}
}

static json_t *get_json(const char *url)
{
	char *body = NULL;
	json_t *v = NULL;
	if (bench_http("GET", url, NULL, NULL, &body) == 200)
		v = json_loads(body, 0, NULL);
	free(body);
	return v;
}

/* ---------------------------------------------------------------- the repository */

/* The pipeline: n local.file resources; resource 0's content carries the revision. */
static void write_pipeline(const char *repo, const char *outdir, int n, int rev)
{
	tp_buf b;
	char *p;
	tp_buf_init(&b, 0);
	for (int i = 0; i < n; i++)
		tp_buf_printf(&b, "---\nkind: local.file\nname: f%d\nspec:\n  path: %s/f%d\n"
				  "  content: \"file %d revision %d\\n\"\n",
			      i, outdir, i, i, i == 0 ? rev : 0);
	p = tp_sprintf("%s/resources/files.yaml", repo);
	write_file(p, tp_buf_cstr(&b));
	free(p);
	tp_buf_free(&b);
}

static void commit(char *sha, size_t n, const char *repo, const char *message)
{
	char *cmd = tp_sprintf("git -C '%s' -c user.name=bench -c user.email=bench@localhost "
			       "commit -q -am '%s' && git -C '%s' rev-parse HEAD",
			       repo, message, repo);
	sh_line(sha, n, cmd);
	free(cmd);
	if (strlen(sha) != 40)
		die("git commit failed");
}

/* ---------------------------------------------------------------- the controller */

typedef struct {
	pid_t pid;
	char api[64];
	char *log;
} controller;

static void controller_start(controller *c, const char *dir, const char *repo,
			     const char *state_dir, const char *poll, bool webhook)
{
	int port = bench_free_port();
	char *cfg = tp_sprintf("%s/controller.yaml", dir);
	char *text = tp_sprintf("repository: {url: \"file://%s\", branch: main, path: \".\"}\n"
				"state_dir: %s\nlisten: 127.0.0.1:%d\npoll_interval: %s\n"
				"drift_interval: 1h\n%s",
				repo, state_dir, port, poll,
				webhook ? "webhooks: {generic_secret: "
					  "\"${secret:env:BENCH_WEBHOOK_SECRET}\"}\n"
					: "");
	const char *argv[] = {bin_tapestry, "run", "--config", cfg, NULL};
	write_file(cfg, text);
	free(text);
	snprintf(c->api, sizeof(c->api), "http://127.0.0.1:%d", port);
	c->log = tp_sprintf("%s/run.log", dir);
	c->pid = fork();
	if (c->pid < 0)
		die("fork failed");
	if (c->pid == 0) {
		int in = open("/dev/null", O_RDONLY);
		int out = open(c->log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (in >= 0)
			dup2(in, 0);
		if (out >= 0) {
			dup2(out, 1);
			dup2(out, 2);
		}
		execv(bin_tapestry, (char *const *)(uintptr_t)argv);
		_exit(127);
	}
	free(cfg);
}

static void controller_stop(controller *c)
{
	int64_t deadline = tp_clock_mono_ms() + 10000;
	kill(c->pid, SIGTERM);
	while (tp_clock_mono_ms() < deadline && waitpid(c->pid, NULL, WNOHANG) != c->pid)
		usleep(20000);
	if (tp_clock_mono_ms() >= deadline) {
		kill(c->pid, SIGKILL);
		waitpid(c->pid, NULL, 0);
	}
	free(c->log);
}

/* Waits until /api/status names sha as applied; the mono time it was seen, or -1. */
static int64_t wait_applied(const controller *c, const char *sha, int64_t timeout_ms)
{
	char *url = tp_sprintf("%s/api/status", c->api);
	int64_t deadline = tp_clock_mono_ms() + timeout_ms, seen = -1;
	while (tp_clock_mono_ms() < deadline) {
		json_t *st = get_json(url);
		const char *applied = tp_json_get_str(json_object_get(st, "revision"), "applied");
		bool done = applied && strcmp(applied, sha) == 0;
		json_decref(st);
		if (done) {
			seen = tp_clock_mono_ms();
			break;
		}
		if (waitpid(c->pid, NULL, WNOHANG) == c->pid)
			die("tapestry run exited");
		usleep(5000);
	}
	free(url);
	return seen;
}

/* The duration (ms) of the newest run (the apply of a sync) for revision sha, or -1. */
static int64_t run_duration(const controller *c, const char *sha)
{
	char *url = tp_sprintf("%s/api/runs?limit=5", c->api);
	json_t *runs = get_json(url), *r;
	json_t *list = json_is_array(runs) ? runs : json_object_get(runs, "runs");
	int64_t ms = -1;
	size_t i;
	json_array_foreach(list, i, r) {
		const char *rev = tp_json_get_str(r, "revision");
		if (ms < 0 && rev && strcmp(rev, sha) == 0)
			ms = json_integer_value(json_object_get(r, "ended_ms")) -
			     json_integer_value(json_object_get(r, "started_ms"));
	}
	json_decref(runs);
	free(url);
	return ms;
}

static void send_webhook(const controller *c, const char *sha, int seq)
{
	char *url = tp_sprintf("%s/hooks/generic", c->api);
	char *body = tp_sprintf("{\"ref\":\"refs/heads/main\",\"after\":\"%s\"}", sha);
	uint8_t mac[TP_SHA256_LEN];
	char hex[2 * TP_SHA256_LEN + 1];
	char *sig, *delivery;
	const char *headers[5];
	long st;
	tp_hmac_sha256(mac, WEBHOOK_SECRET, strlen(WEBHOOK_SECRET), body, strlen(body));
	tp_hex_encode(hex, mac, sizeof(mac));
	sig = tp_sprintf("X-Tapestry-Signature-256: sha256=%s", hex);
	delivery = tp_sprintf("X-Tapestry-Delivery: bench-%d-%d", (int)getpid(), seq);
	headers[0] = "Content-Type: application/json";
	headers[1] = sig;
	headers[2] = delivery;
	headers[3] = "X-Tapestry-Event: push";
	headers[4] = NULL;
	st = bench_http("POST", url, headers, body, NULL);
	if (st < 200 || st > 299) {
		fprintf(stderr, "bench: the webhook was answered HTTP %ld\n", st);
		exit(1);
	}
	free(url);
	free(body);
	free(sig);
	free(delivery);
}

/* ---------------------------------------------------------------- statistics */

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

typedef struct {
	double mean, median, min, max;
} summary;

static summary summarise(const double *v, int n)
{
	summary s = {0, 0, 0, 0};
	double *sorted;
	if (n <= 0)
		return s;
	sorted = tp_calloc((size_t)n, sizeof(*sorted));
	memcpy(sorted, v, (size_t)n * sizeof(*v));
	qsort(sorted, (size_t)n, sizeof(*sorted), cmp_double);
	for (int i = 0; i < n; i++)
		s.mean += sorted[i] / n;
	s.median = n % 2 ? sorted[n / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2;
	s.min = sorted[0];
	s.max = sorted[n - 1];
	free(sorted);
	return s;
}

static json_t *summary_json(const summary *s)
{
	return json_pack("{s:f,s:f,s:f,s:f}", "mean_s", s->mean, "median_s", s->median, "min_s",
			 s->min, "max_s", s->max);
}

/* ---------------------------------------------------------------- one mode */

static json_t *measure(int n, bool webhook, int commits, int poll_s)
{
	const char *mode = webhook ? "webhook" : "poll";
	char *dir = tp_sprintf("%s/%s-%d", root, mode, n);
	char *repo = tp_sprintf("%s/repo", dir);
	char *state_dir = tp_sprintf("%s/state", dir);
	char *outdir = tp_sprintf("%s/out", dir);
	char *poll = webhook ? tp_strdup("1h") : tp_sprintf("%ds", poll_s);
	double *lat = tp_calloc((size_t)commits, sizeof(double));
	double *apply = tp_calloc((size_t)commits, sizeof(double));
	json_t *samples = json_array(), *res;
	char sha[64], *cmd, *p;
	controller c;
	summary sl, ss;
	int ok = 0;

	mkdir(dir, 0755);
	mkdir(repo, 0755);
	mkdir(state_dir, 0700);
	mkdir(outdir, 0755);
	p = tp_sprintf("%s/resources", repo);
	mkdir(p, 0755);
	free(p);
	p = tp_sprintf("%s/tapestry.yaml", repo);
	write_file(p, "pipeline: commit-to-applied\nsettings: {concurrency: 8}\n");
	free(p);
	write_pipeline(repo, outdir, n, 0);
	cmd = tp_sprintf("git -C '%s' init -q -b main && git -C '%s' add -A", repo, repo);
	if (sh(cmd) != 0)
		die("git init failed");
	free(cmd);
	commit(sha, sizeof(sha), repo, "the pipeline");

	controller_start(&c, dir, repo, state_dir, poll, webhook);
	if (wait_applied(&c, sha, 300000) < 0)
		die("the first sync did not apply the first commit within 300 s");

	for (int i = 0; i < commits; i++) {
		int64_t t0, t1;
		char msg[64];
		if (webhook)
			tp_clock_sleep_ms(300);
		else /* a random point of the poll cycle */
			tp_clock_sleep_ms((int64_t)tp_clock_rand_below((uint64_t)poll_s * 1000));
		write_pipeline(repo, outdir, n, i + 1);
		snprintf(msg, sizeof(msg), "f0: revision %d", i + 1);
		commit(sha, sizeof(sha), repo, msg);
		t0 = tp_clock_mono_ms();
		if (webhook)
			send_webhook(&c, sha, i);
		t1 = wait_applied(&c, sha, 120000);
		if (t1 < 0) {
			fprintf(stderr, "bench: %s: commit %d not applied within 120 s (log %s)\n",
				mode, i + 1, c.log);
			continue;
		}
		lat[ok] = (double)(t1 - t0) / 1000.0;
		apply[ok] = (double)run_duration(&c, sha) / 1000.0;
		json_array_append_new(samples, json_pack("{s:f,s:f}", "commit_to_applied_s",
							 lat[ok], "apply_s", apply[ok]));
		ok++;
	}
	controller_stop(&c);
	sl = summarise(lat, ok);
	ss = summarise(apply, ok);
	printf("%-8s %9d %6s %7d %8.3f %8.3f %8.3f %8.3f %10.3f\n", mode, n,
	       webhook ? "-" : poll, ok, sl.mean, sl.median, sl.min, sl.max, ss.mean);
	fflush(stdout);
	res = json_pack("{s:s,s:i,s:s,s:i,s:o,s:o,s:o}", "trigger", mode, "resources", n,
			"poll_interval", webhook ? "1h (webhook only)" : poll, "commits", ok,
			"commit_to_applied", summary_json(&sl), "apply", summary_json(&ss),
			"samples", samples);
	free(lat);
	free(apply);
	free(dir);
	free(repo);
	free(state_dir);
	free(outdir);
	free(poll);
	return res;
}

/* ---------------------------------------------------------------- main */

#define USAGE                                                                                  \
	"usage: bench_commit_to_applied (TAPESTRY | BUILD_DIR) [results.json] [--commits N] "  \
	"[--resources N,...] [--poll-interval S] [--workdir DIR]"

int main(int argc, char **argv)
{
	const char *out_path = "bench/results/commit_to_applied.json";
	const char *positional[2] = {NULL, NULL};
	int sizes[8] = {100, 1000}, nsizes = 2, commits = 10, poll_s = 2, pos = 0;
	const char *workdir = NULL;
	char *tmpl;
	json_t *results = json_array(), *doc;
	char date[40], *text;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--commits") == 0 && i + 1 < argc) {
			commits = atoi(argv[++i]);
		} else if (strcmp(argv[i], "--poll-interval") == 0 && i + 1 < argc) {
			poll_s = atoi(argv[++i]);
		} else if (strcmp(argv[i], "--resources") == 0 && i + 1 < argc) {
			char *copy = tp_strdup(argv[++i]), *save = NULL;
			nsizes = 0;
			for (char *t = strtok_r(copy, ",", &save); t && nsizes < 8;
			     t = strtok_r(NULL, ",", &save))
				sizes[nsizes++] = atoi(t);
			free(copy);
		} else if (strcmp(argv[i], "--workdir") == 0 && i + 1 < argc) {
			workdir = argv[++i];
		} else if (pos < 2 && argv[i][0] != '-') {
			positional[pos++] = argv[i];
		} else {
			die(USAGE);
		}
	}
	bin_tapestry = positional[0];
	if (bin_tapestry) {
		/* a build directory, or the binary itself */
		struct stat sb;
		char *p = stat(bin_tapestry, &sb) == 0 && S_ISDIR(sb.st_mode)
				  ? tp_sprintf("%s/tapestry", bin_tapestry)
				  : tp_strdup(bin_tapestry);
		char *abs = realpath(p, NULL);
		bin_tapestry = abs ? abs : bin_tapestry;
		free(p);
	}
	if (positional[1])
		out_path = positional[1];
	if (!bin_tapestry || access(bin_tapestry, X_OK) != 0 || commits < 1 || poll_s < 1)
		die(USAGE);
	if (workdir)
		mkdir(workdir, 0755);
	tmpl = tp_sprintf("%s/tapestry-bench-c2a-XXXXXX",
			  workdir ? workdir
				  : getenv("TMPDIR") && getenv("TMPDIR")[0] ? getenv("TMPDIR") : "/tmp");
	if (!(root = mkdtemp(tmpl)))
		die("cannot make a work directory");
	signal(SIGPIPE, SIG_IGN);
	setenv("BENCH_WEBHOOK_SECRET", WEBHOOK_SECRET, 1);

	printf("local.file pipelines; one-line commits; %d commits per row\n", commits);
	printf("%-8s %9s %6s %7s %8s %8s %8s %8s %10s\n", "trigger", "resources", "poll", "commits",
	       "mean (s)", "median", "min", "max", "apply mean");
	for (int i = 0; i < nsizes; i++) {
		json_array_append_new(results, measure(sizes[i], true, commits, poll_s));
		json_array_append_new(results, measure(sizes[i], false, commits, poll_s));
	}
	tp_clock_format_rfc3339(date, sizeof(date), tp_clock_now_ms());
	doc = json_pack("{s:s,s:s,s:i,s:o}", "benchmark", "commit_to_applied", "date", date, "cpus",
			(int)sysconf(_SC_NPROCESSORS_ONLN), "results", results);
	text = json_dumps(doc, JSON_INDENT(2) | JSON_SORT_KEYS);
	json_decref(doc);
	write_file(out_path, text);
	printf("results written to %s\n", out_path);
	free(text);
	{
		char *cmd = tp_sprintf("rm -rf '%s'", root);
		if (sh(cmd) != 0)
			fprintf(stderr, "bench: could not remove %s\n", root);
		free(cmd);
	}
	free(tmpl);
	return 0;
}
