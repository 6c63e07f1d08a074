/*
 * bench/bad_input: the controller's memory under a stream of bad input. The real
 * `tapestry run` follows a local Git repository on 127.0.0.1 while, round after round, every
 * refused pipeline of tests/fixtures/spec/bad and every seed of the spec fuzzer
 * (tests/fuzz/corpus/spec, as a pipeline's resource file) is committed into it (each commit
 * announced by a signed webhook, so it is fetched at once), every delivery of
 * tests/fuzz/corpus/webhook is posted to the three webhook endpoints (forged, malformed, replayed,
 * hostile), three bodies over the size limit are sent, and a good commit ends the round. After each
 * round it reads VmRSS, VmHWM and the anonymous and file-backed parts from /proc/<pid>/status,
 * counts open descriptors, sizes the state database (with its WAL) and checks /healthz. Bounded
 * memory means the resident size levels off after the first rounds instead of growing with
 * them: the summary compares the growth per round over the first and the last quarter of the
 * rounds (the history the state keeps fills up within the first hundred rounds at its
 * defaults, so a run needs a few hundred rounds to show the level).
 * tests/controller/test_bad_input.c checks the same input functionally (under ASan, in CI).
 *
 * Usage (from the repository root, which holds the inputs):
 *   bench_bad_input [path/to/tapestry] [results.json] [rounds] [controller.yaml lines]
 * Defaults: build/tapestry, bench/results/bad_input.json, 300 rounds, nothing more (the
 * fourth argument is appended to the controller's configuration, e.g. to try other history
 * limits: "history: {runs: 20, revisions: 100, events: 300}").
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
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

#include "util/util.h"

#define SECRET     "bench-secret"
#define FIXTURES   "tests/fixtures/spec/bad"
#define SPEC_SEEDS "tests/fuzz/corpus/spec"
#define WEBHOOKS   "tests/fuzz/corpus/webhook"
#define WAIT_MS    60000
#define BIG_BODY   (((size_t)1 << 20) + 4096)

static char *root, *origin, *out_dir, *base_url;
static pid_t ctl = -1;

/* ---------------------------------------------------------------- small helpers */

static void die(const char *what)
{
	fprintf(stderr, "bench_bad_input: %s\n", what);
	if (ctl > 0) {
		kill(ctl, SIGKILL);
		waitpid(ctl, NULL, 0);
	}
	exit(1);
}

static void write_file(const char *path, const void *data, size_t len)
{
	FILE *f;
	char *dir = tp_strdup(path);
	for (char *p = dir + 1; *p; p++)
		if (*p == '/') {
			*p = '\0';
			mkdir(dir, 0755);
			*p = '/';
		}
	free(dir);
	f = fopen(path, "wb");
	if (!f || fwrite(data, 1, len, f) != len)
		die(path);
	fclose(f);
}

static void sh(const char *cmd)
{
	int st = system(cmd);
	if (st == -1 || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		char *m = tp_sprintf("command failed: %s", cmd);
		die(m);
	}
}

static void git(const char *args)
{
	char *cmd =
	    tp_sprintf("git -C '%s' -c commit.gpgsign=false %s >/dev/null 2>&1", origin, args);
	sh(cmd);
	free(cmd);
}

static char *head(void)
{
	char *cmd = tp_sprintf("git -C '%s' rev-parse HEAD", origin);
	char line[64] = "";
	FILE *p = popen(cmd, "r");
	if (!p || !fgets(line, sizeof(line), p))
		die("git rev-parse HEAD");
	pclose(p);
	free(cmd);
	line[strcspn(line, "\n")] = '\0';
	return tp_strdup(line);
}

static void commit(const char *message)
{
	char *args = tp_sprintf("commit -q --allow-empty -m '%s'", message);
	git("add -A");
	git(args);
	free(args);
}

/* Sorted names of a directory's entries (no dot entries). */
static void list_dir(tp_strlist *l, const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	if (!d) {
		fprintf(stderr, "bench_bad_input: %s: %s (run from the repository root)\n", dir,
			strerror(errno));
		exit(1);
	}
	while ((e = readdir(d)) != NULL)
		if (e->d_name[0] != '.')
			tp_strlist_push(l, e->d_name);
	closedir(d);
	tp_strlist_sort(l);
}

static void read_all(tp_buf *b, const char *path)
{
	tp_buf_init(b, 16u << 20);
	if (tp_file_read(b, path, 16u << 20) < 0)
		die(tp_error_last());
}

/* Copies a fixture's files (recursively, expected.txt left out) to dst. */
static void copy_tree(const char *src, const char *dst)
{
	DIR *d = opendir(src);
	struct dirent *e;
	if (!d)
		die(src);
	mkdir(dst, 0755);
	while ((e = readdir(d)) != NULL) {
		char *from, *to;
		struct stat st;
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0 ||
		    strcmp(e->d_name, "expected.txt") == 0)
			continue;
		from = tp_sprintf("%s/%s", src, e->d_name);
		to = tp_sprintf("%s/%s", dst, e->d_name);
		if (lstat(from, &st) != 0)
			die(from);
		if (S_ISDIR(st.st_mode)) {
			copy_tree(from, to);
		} else {
			tp_buf b;
			read_all(&b, from);
			write_file(to, b.ptr ? b.ptr : "", b.len);
			tp_buf_free(&b);
		}
		free(from);
		free(to);
	}
	closedir(d);
}

static void clear_pipeline(void)
{
	char *cmd = tp_sprintf("rm -rf '%s/pipe'", origin);
	sh(cmd);
	free(cmd);
}

static void write_good(int round)
{
	char *path = tp_sprintf("%s/pipe/tapestry.yaml", origin);
	char *text = tp_sprintf("kind: local.file\nname: a\nspec: {path: %s/a.txt, content: "
				"\"round %d\"}\n---\nkind: local.file\nname: b\nspec: {path: "
				"%s/b.txt, content: \"${local.file/a.sha256}\"}\n",
				out_dir, round, out_dir);
	write_file(path, "pipeline: bad-input-bench\n", strlen("pipeline: bad-input-bench\n"));
	free(path);
	path = tp_sprintf("%s/pipe/resources/files.yaml", origin);
	write_file(path, text, strlen(text));
	free(path);
	free(text);
}

/* ---------------------------------------------------------------- HTTP */

static long http(const char *method, const char *path, const char *const *headers, const char *body,
		 size_t len, json_t **json)
{
	char *url = tp_sprintf("%s%s", base_url, path);
	tp_http_client *c = tp_http_client_new();
	tp_http_request req;
	tp_http_reply rep;
	long st = 0;
	memset(&req, 0, sizeof(req));
	req.method = method;
	req.url = url;
	req.headers = headers;
	req.body = body;
	req.body_len = len;
	req.timeout_ms = 10000;
	if (json)
		*json = NULL;
	if (tp_http_client_do(c, &rep, &req) == 0) {
		st = rep.status;
		if (json && st == 200 &&
		    tp_json_parse(json, tp_buf_cstr(&rep.body), rep.body.len) < 0)
			*json = NULL;
	}
	tp_error_clear();
	tp_http_reply_clear(&rep);
	tp_http_client_free(c);
	free(url);
	return st;
}

static char *status_str(const char *path)
{
	json_t *s = NULL;
	const char *v;
	char *copy;
	http("GET", "/api/status", NULL, NULL, 0, &s);
	v = json_string_value(tp_json_path_get(s, path));
	copy = v ? tp_strdup(v) : NULL;
	json_decref(s);
	return copy;
}

/* A signed generic webhook: the controller fetches at once. */
static void nudge(const char *id)
{
	static const char body[] = "{\"ref\":\"refs/heads/main\"}";
	uint8_t mac[TP_SHA256_LEN];
	char sig[8 + 2 * TP_SHA256_LEN];
	char *h1, *h2;
	const char *headers[3];
	tp_hmac_sha256(mac, SECRET, strlen(SECRET), body, strlen(body));
	memcpy(sig, "sha256=", 7);
	tp_hex_encode(sig + 7, mac, sizeof(mac));
	h1 = tp_sprintf("X-Tapestry-Signature-256: %s", sig);
	h2 = tp_sprintf("X-Tapestry-Delivery: %s", id);
	headers[0] = h1;
	headers[1] = h2;
	headers[2] = NULL;
	http("POST", "/hooks/generic", headers, body, strlen(body), NULL);
	free(h1);
	free(h2);
}

/* Waits until the status at path contains want (bounded). */
static void wait_status(const char *path, const char *want)
{
	int64_t deadline = tp_clock_mono_ms() + WAIT_MS;
	for (;;) {
		char *v = status_str(path);
		bool ok = v && strstr(v, want);
		free(v);
		if (ok)
			return;
		if (tp_clock_mono_ms() > deadline) {
			char *m = tp_sprintf("the controller's %s never showed %s", path, want);
			die(m);
		}
		usleep(20000);
	}
}

/* ---------------------------------------------------------------- webhooks */

/* Posts every corpus delivery (tests/fuzz/fuzz_webhook.c's format: flag byte, then
 * signature, token, delivery and event lines, then the body) to the three endpoints, and the
 * oversized bodies; returns the number of requests. */
static int post_deliveries(const tp_strlist *files, int round)
{
	static const char *const paths[] = {"/hooks/github", "/hooks/gitlab", "/hooks/generic"};
	static const char *const sig_h[] = {"X-Hub-Signature-256", NULL,
					    "X-Tapestry-Signature-256"};
	static const char *const del_h[] = {"X-GitHub-Delivery", "X-Gitlab-Event-UUID",
					    "X-Tapestry-Delivery"};
	static const char *const ev_h[] = {"X-GitHub-Event", "X-Gitlab-Event", "X-Tapestry-Event"};
	int sent = 0;
	for (size_t i = 0; i < files->len; i++) {
		char *path = tp_sprintf("%s/%s", WEBHOOKS, files->items[i]);
		char *values[4] = {NULL, NULL, NULL, NULL};
		const char *p, *end;
		unsigned flags;
		tp_buf b;
		read_all(&b, path);
		free(path);
		if (b.len == 0) {
			tp_buf_free(&b);
			continue;
		}
		flags = (unsigned char)b.ptr[0];
		p = b.ptr + 1;
		end = b.ptr + b.len;
		for (int slot = 0; slot < 4 && p < end; slot++) {
			const char *nl = memchr(p, '\n', (size_t)(end - p));
			size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
			if (n > 0)
				values[slot] = tp_strndup(p, n);
			p += n + (nl ? 1 : 0);
		}
		for (int k = 0; k < 3; k++) {
			const char *headers[6];
			char *owned[3] = {NULL, NULL, NULL};
			char sig[8 + 2 * TP_SHA256_LEN];
			size_t h = 0;
			if (sig_h[k]) {
				const char *s = values[0];
				if (flags & 1) {
					uint8_t mac[TP_SHA256_LEN];
					tp_hmac_sha256(mac, SECRET, strlen(SECRET), p,
						       (size_t)(end - p));
					memcpy(sig, "sha256=", 7);
					tp_hex_encode(sig + 7, mac, sizeof(mac));
					s = sig;
				}
				if (s)
					headers[h++] = owned[0] = tp_sprintf("%s: %s", sig_h[k], s);
			} else {
				const char *t = flags & 2 ? SECRET : values[1];
				if (t)
					headers[h++] = owned[0] =
					    tp_sprintf("X-Gitlab-Token: %s", t);
			}
			/* a delivery id per round: replays within a round, new ones across */
			if (values[2])
				headers[h++] = owned[1] =
				    tp_sprintf("%s: r%d-%s", del_h[k], round, values[2]);
			if (values[3])
				headers[h++] = owned[2] = tp_sprintf("%s: %s", ev_h[k], values[3]);
			headers[h] = NULL;
			if (http("POST", paths[k], headers, p, (size_t)(end - p), NULL) >= 500)
				die("a webhook got a server error");
			sent++;
			for (int o = 0; o < 3; o++)
				free(owned[o]);
		}
		for (int slot = 0; slot < 4; slot++)
			free(values[slot]);
		tp_buf_free(&b);
	}
	{
		char *big = tp_malloc(BIG_BODY);
		memset(big, 'x', BIG_BODY);
		/* refused with 413 as soon as the headers are in; a client still sending the
		 * body may see the connection dropped before it reads the 413 (0 here): a
		 * refusal too. Anything the server accepted or failed on is not. */
		for (int k = 0; k < 3; k++, sent++) {
			long st = http("POST", paths[k], NULL, big, BIG_BODY, NULL);
			if (st != 413 && st != 0)
				die("an oversized webhook body was not refused with 413");
		}
		free(big);
	}
	return sent;
}

/* ---------------------------------------------------------------- the controller */

static int free_port(void)
{
	struct sockaddr_in a;
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0), port;
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0 ||
	    getsockname(fd, (struct sockaddr *)&a, &len) != 0)
		die("no free port on 127.0.0.1");
	port = ntohs(a.sin_port);
	close(fd);
	return port;
}

static void start(const char *bin, int port, const char *extra)
{
	char *cfg = tp_sprintf("%s/controller.yaml", root);
	char *log = tp_sprintf("%s/controller.log", root);
	char *text =
	    tp_sprintf("repository: {url: \"file://%s\", branch: main, path: pipe}\n"
		       "state_dir: %s/state\nlisten: \"127.0.0.1:%d\"\npoll_interval: 1s\n"
		       "drift_interval: 1h\n"
		       "webhooks: {github_secret: \"${secret:env:HOOK_SECRET}\", gitlab_token: "
		       "\"${secret:env:HOOK_SECRET}\", generic_secret: "
		       "\"${secret:env:HOOK_SECRET}\"}\n%s\n",
		       origin, root, port, extra);
	write_file(cfg, text, strlen(text));
	ctl = fork();
	if (ctl < 0)
		die("fork");
	if (ctl == 0) {
		int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		prctl(PR_SET_PDEATHSIG, SIGKILL); /* never outlives the bench */
		setenv("HOOK_SECRET", SECRET, 1);
		dup2(fd, 1);
		dup2(fd, 2);
		execl(bin, bin, "run", "--config", cfg, (char *)NULL);
		_exit(127);
	}
	free(text);
	free(cfg);
	free(log);
}

/* Memory of the controller from /proc/<pid>/status, in KiB: resident (VmRSS), its peak
 * (VmHWM), and the resident part that is anonymous (heap, stacks) or file-backed (mapped
 * files: the binary, libraries, the Git mirror's pack files, the state database); its open
 * file descriptors (/proc/<pid>/fd); and the size on disk of its state database and of the
 * database's write-ahead log (which SQLite checkpoints at 1,000 pages and then reuses, so it
 * stays about 4 MiB), in KiB. */
typedef struct {
	long rss, hwm, anon, file;
	long fds; /* open file descriptors */
	long state, wal;
} mem_kib;

static long file_kib(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 ? (long)(st.st_size / 1024) : 0;
}

static mem_kib memory(void)
{
	char *path = tp_sprintf("/proc/%d/status", (int)ctl);
	char line[256];
	FILE *f = fopen(path, "r");
	mem_kib m = {-1, -1, -1, -1, 0, 0, 0};
	DIR *d;
	if (!f)
		die("the controller is gone");
	while (fgets(line, sizeof(line), f)) {
		if (strncmp(line, "VmRSS:", 6) == 0)
			m.rss = strtol(line + 6, NULL, 10);
		else if (strncmp(line, "VmHWM:", 6) == 0)
			m.hwm = strtol(line + 6, NULL, 10);
		else if (strncmp(line, "RssAnon:", 8) == 0)
			m.anon = strtol(line + 8, NULL, 10);
		else if (strncmp(line, "RssFile:", 8) == 0)
			m.file = strtol(line + 8, NULL, 10);
	}
	fclose(f);
	free(path);
	path = tp_sprintf("/proc/%d/fd", (int)ctl);
	if ((d = opendir(path)) != NULL) {
		struct dirent *e;
		while ((e = readdir(d)) != NULL)
			m.fds += e->d_name[0] != '.';
		closedir(d);
	}
	free(path);
	path = tp_sprintf("%s/state/state.db", root);
	m.state = file_kib(path);
	free(path);
	path = tp_sprintf("%s/state/state.db-wal", root);
	m.wal = file_kib(path);
	free(path);
	return m;
}

static json_t *round_json(int round, mem_kib m, double wall_s, long healthz)
{
	return json_pack("{s:i,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:f,s:i}", "round", round, "vmrss_kib",
			 (json_int_t)m.rss, "vmhwm_kib", (json_int_t)m.hwm, "rss_anon_kib",
			 (json_int_t)m.anon, "rss_file_kib", (json_int_t)m.file, "fds",
			 (json_int_t)m.fds, "state_db_kib", (json_int_t)m.state, "state_wal_kib",
			 (json_int_t)m.wal, "wall_s", wall_s, "healthz", (int)healthz);
}

/* KiB per round of field between rounds a and b of per_round (b > a). */
static double growth(const json_t *per_round, const char *field, int a, int b)
{
	json_int_t va =
	    json_integer_value(json_object_get(json_array_get(per_round, (size_t)a), field));
	json_int_t vb =
	    json_integer_value(json_object_get(json_array_get(per_round, (size_t)b), field));
	return b > a ? (double)(vb - va) / (double)(b - a) : 0.0;
}

static int stop(void)
{
	int st = 0;
	kill(ctl, SIGTERM);
	for (int i = 0; i < 500; i++) {
		if (waitpid(ctl, &st, WNOHANG) == ctl) {
			ctl = -1;
			return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
		}
		usleep(20000);
	}
	kill(ctl, SIGKILL);
	waitpid(ctl, &st, 0);
	ctl = -1;
	return 128 + SIGKILL;
}

/* Each spec fuzzer seed as a pipeline directory under root/seeds/<name>, every one refused by
 * `tapestry validate` first (an input the loader took would be applied). Adds the
 * directories to dirs. */
static void prepare_seeds(tp_strlist *dirs, const char *bin)
{
	tp_strlist names = {0};
	list_dir(&names, SPEC_SEEDS);
	for (size_t i = 0; i < names.len; i++) {
		char *from = tp_sprintf("%s/%s", SPEC_SEEDS, names.items[i]);
		char *dir = tp_sprintf("%s/seeds/%s", root, names.items[i]);
		char *path = tp_sprintf("%s/resources/fuzz.yaml", dir);
		tp_buf b;
		int st = 0;
		pid_t pid;
		read_all(&b, from);
		write_file(path, b.ptr ? b.ptr : "", b.len);
		free(path);
		path = tp_sprintf("%s/tapestry.yaml", dir);
		write_file(path, "pipeline: bad-input-bench\n",
			   strlen("pipeline: bad-input-bench\n"));
		pid = fork();
		if (pid == 0) {
			int fd = open("/dev/null", O_WRONLY);
			dup2(fd, 1);
			dup2(fd, 2);
			execl(bin, bin, "validate", dir, (char *)NULL);
			_exit(127);
		}
		if (pid < 0 || waitpid(pid, &st, 0) != pid || !WIFEXITED(st) ||
		    WEXITSTATUS(st) != 1) {
			char *m = tp_sprintf("%s: tapestry validate does not refuse it", from);
			die(m);
		}
		tp_strlist_push(dirs, dir);
		tp_buf_free(&b);
		free(path);
		free(dir);
		free(from);
	}
	tp_strlist_free(&names);
}

/* ---------------------------------------------------------------- main */

int main(int argc, char **argv)
{
	const char *bin = argc > 1 ? argv[1] : "build/tapestry";
	const char *out_path = argc > 2 ? argv[2] : "bench/results/bad_input.json";
	int rounds = argc > 3 ? atoi(argv[3]) : 300;
	const char *extra = argc > 4 ? argv[4] : "";
	char tmpl[] = "/tmp/tapestry-bench-XXXXXX";
	tp_strlist fixtures = {0}, hooks = {0}, inputs = {0}; /* inputs: pipeline dirs */
	json_t *per_round = json_array();
	int64_t t_start;
	mem_kib m0;
	int deliveries = 0, exit_status;
	char date[40], *text, *c;
	FILE *f;

	if (rounds < 1 || access(bin, X_OK) != 0) {
		fprintf(stderr, "usage: bench_bad_input [path/to/tapestry] [results.json] [rounds] "
				"[controller.yaml lines]\n");
		return 1;
	}
	list_dir(&fixtures, FIXTURES);
	list_dir(&hooks, WEBHOOKS);
	if (!(root = mkdtemp(tmpl)))
		die("mkdtemp");
	for (size_t i = 0; i < fixtures.len; i++) {
		char *dir = tp_sprintf("%s/%s", FIXTURES, fixtures.items[i]);
		tp_strlist_push(&inputs, dir);
		free(dir);
	}
	prepare_seeds(&inputs, bin);
	origin = tp_sprintf("%s/origin", root);
	out_dir = tp_sprintf("%s/out", root);
	mkdir(out_dir, 0755);
	{
		char *state = tp_sprintf("%s/state", root);
		mkdir(state, 0700);
		free(state);
	}
	setenv("GIT_AUTHOR_NAME", "Bench", 1);
	setenv("GIT_AUTHOR_EMAIL", "bench@example.com", 1);
	setenv("GIT_COMMITTER_NAME", "Bench", 1);
	setenv("GIT_COMMITTER_EMAIL", "bench@example.com", 1);
	setenv("GIT_CONFIG_NOSYSTEM", "1", 1);
	setenv("GIT_CONFIG_GLOBAL", "/dev/null", 1);
	{
		char *cmd = tp_sprintf("git -c init.defaultBranch=main init -q '%s'", origin);
		sh(cmd);
		free(cmd);
	}
	write_good(0);
	commit("a good pipeline");
	{
		int port = free_port();
		base_url = tp_sprintf("http://127.0.0.1:%d", port);
		start(bin, port, extra);
	}
	c = head();
	wait_status("revision.applied", c);
	free(c);
	m0 = memory();
	printf("%d bad commits and %zu webhook deliveries x 3 endpoints (+3 oversized) per round, "
	       "then a good commit\n",
	       (int)inputs.len, hooks.len);
	if (extra[0])
		printf("controller configuration also has: %s\n", extra);
	printf("%6s %10s %10s %10s %10s %6s %9s %9s %9s %8s\n", "round", "VmRSS KiB", "VmHWM KiB",
	       "anon KiB", "file KiB", "fds", "db KiB", "WAL KiB", "wall (s)", "healthz");
	printf("%6d %10ld %10ld %10ld %10ld %6ld %9ld %9ld %9s %8s\n", 0, m0.rss, m0.hwm, m0.anon,
	       m0.file, m0.fds, m0.state, m0.wal, "-", "200");
	json_array_append_new(per_round, round_json(0, m0, 0.0, 200));
	t_start = tp_clock_mono_ms();
	for (int r = 1; r <= rounds; r++) {
		int64_t t0 = tp_clock_mono_ms();
		char *pipe = tp_sprintf("%s/pipe", origin);
		long health;
		mem_kib m;
		double wall;
		for (size_t i = 0; i < inputs.len; i++) {
			char *msg =
			    tp_sprintf("round %d: %s", r, strrchr(inputs.items[i], '/') + 1);
			char *id, short_id[13];
			clear_pipeline();
			copy_tree(inputs.items[i], pipe);
			commit(msg);
			c = head();
			snprintf(short_id, sizeof(short_id), "%.12s", c);
			id = tp_sprintf("nudge-%d-%zu", r, i);
			nudge(id);
			/* refused, with its diagnostics; the good revision stays applied */
			wait_status("last_sync.error", short_id);
			free(id);
			free(c);
			free(msg);
		}
		deliveries = post_deliveries(&hooks, r);
		clear_pipeline();
		write_good(r);
		commit("good again");
		c = head();
		{
			char *id = tp_sprintf("nudge-%d-good", r);
			nudge(id);
			free(id);
		}
		wait_status("revision.applied", c);
		free(c);
		free(pipe);
		health = http("GET", "/healthz", NULL, NULL, 0, NULL);
		if (health != 200)
			die("/healthz stopped answering 200");
		wall = (double)(tp_clock_mono_ms() - t0) / 1000.0;
		/* the sync that applied the good commit prunes the history and gives memory back
		 * to the system after it reports the revision: let it finish */
		usleep(100000);
		m = memory();
		printf("%6d %10ld %10ld %10ld %10ld %6ld %9ld %9ld %9.2f %8ld\n", r, m.rss, m.hwm,
		       m.anon, m.file, m.fds, m.state, m.wal, wall, health);
		fflush(stdout);
		json_array_append_new(per_round, round_json(r, m, wall, health));
	}
	exit_status = stop();
	tp_clock_format_rfc3339(date, sizeof(date), tp_clock_now_ms());
	{
		json_t *first = json_array_get(per_round, 1),
		       *last = json_array_get(per_round, (size_t)rounds);
		json_int_t rss1 = json_integer_value(json_object_get(first, "vmrss_kib"));
		json_int_t rssn = json_integer_value(json_object_get(last, "vmrss_kib"));
		/* growth per round over the first and the last quarter (round 1 is the base of the
		 * first: round 0 is before any bad input) */
		int q = rounds / 4 > 0 ? rounds / 4 : 1;
		int early_end = 1 + q <= rounds ? 1 + q : rounds;
		double anon_early = growth(per_round, "rss_anon_kib", 1, early_end);
		double anon_late = growth(per_round, "rss_anon_kib", rounds - q, rounds);
		double rss_early = growth(per_round, "vmrss_kib", 1, early_end);
		double rss_late = growth(per_round, "vmrss_kib", rounds - q, rounds);
		double hwm_late = growth(per_round, "vmhwm_kib", rounds - q, rounds);
		double state_late = growth(per_round, "state_db_kib", rounds - q, rounds);
		json_t *doc = json_pack(
		    "{s:s,s:s,s:i,s:i,s:i,s:i,s:f,s:I,s:I,s:I,s:i,s:s}", "benchmark", "bad_input",
		    "date", date, "cpus", (int)sysconf(_SC_NPROCESSORS_ONLN), "rounds", rounds,
		    "bad_commits_per_round", (int)inputs.len, "webhook_requests_per_round",
		    deliveries, "wall_s", (double)(tp_clock_mono_ms() - t_start) / 1000.0,
		    "vmrss_after_first_round_kib", rss1, "vmrss_after_last_round_kib", rssn,
		    "vmrss_growth_after_first_round_kib", rssn - rss1, "exit_status", exit_status,
		    "controller_config_extra", extra);
		json_object_set_new(doc, "growth_kib_per_round",
				    json_pack("{s:{s:i,s:i,s:f,s:f},s:{s:i,s:i,s:f,s:f,s:f,s:f}}",
					      "first_quarter", "from_round", 1, "to_round",
					      early_end, "rss_anon", anon_early, "vmrss", rss_early,
					      "last_quarter", "from_round", rounds - q, "to_round",
					      rounds, "rss_anon", anon_late, "vmrss", rss_late,
					      "vmhwm", hwm_late, "state_db", state_late));
		json_object_set(doc, "per_round", per_round);
		text = json_dumps(doc, JSON_INDENT(2) | JSON_SORT_KEYS);
		json_decref(doc);
		printf("VmRSS after round 1: %lld KiB, after round %d: %lld KiB (%+lld KiB); exit "
		       "status after SIGTERM: %d\n",
		       (long long)rss1, rounds, (long long)rssn, (long long)(rssn - rss1),
		       exit_status);
		printf("growth per round, rounds 1-%d: anon %+.1f KiB, VmRSS %+.1f KiB; rounds "
		       "%d-%d: anon %+.1f KiB, VmRSS %+.1f KiB, VmHWM %+.1f KiB, state database "
		       "%+.1f KiB\n",
		       early_end, anon_early, rss_early, rounds - q, rounds, anon_late, rss_late,
		       hwm_late, state_late);
	}
	f = fopen(out_path, "w");
	if (f) {
		fputs(text, f);
		fputc('\n', f);
		fclose(f);
		printf("results written to %s\n", out_path);
	}
	free(text);
	{
		char *cmd = tp_sprintf("rm -rf '%s'", root);
		if (system(cmd) != 0)
			fprintf(stderr, "bench_bad_input: could not remove %s\n", root);
		free(cmd);
	}
	json_decref(per_round);
	tp_strlist_free(&fixtures);
	tp_strlist_free(&hooks);
	tp_strlist_free(&inputs);
	free(origin);
	free(out_dir);
	free(base_url);
	return exit_status == 0 ? 0 : 1;
}
