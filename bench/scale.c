/*
 * bench/scale: Tapestry at 100, 1,000 and 10,000 resources against live backends. A pipeline
 * is a fifth each of aws.ssm_parameter (moto_server, SigV4 enforced), snowflake.role and
 * snowflake.database (tests/fakes/snowflake, key-pair JWT), airbyte.source and
 * airbyte.destination (tests/fakes/airbyte, application credentials), all independent of
 * each other; the aws and airbyte providers get providers.<name>.max_concurrency equal to the
 * run's concurrency (8), so every kind may have 8 calls in flight, as the ideal assumes.
 * Above --airbyte-max resources (default: none) Airbyte's share goes to the Snowflake kinds
 * (kept for comparison with the first figures, taken when an Airbyte create listed the whole
 * collection). Every backend sits
 * behind its own fake_proxy (tests/fakes/proxy), which adds the same latency to every call
 * (0 and 20 ms) and logs every call, so each run's calls are counted the same way for every
 * provider.
 *
 * For every size and latency, on fresh backends, it times the real binary's
 *   cold     `tapestry apply` creating everything (ideal: resources / concurrency × latency),
 *   no-op    the `tapestry apply` that follows (observe everything, nothing to write),
 *   refresh  `tapestry plan --refresh` (observe and plan, never writes),
 * with the peak RSS of the process (wait4) and its API calls classified as writes, list
 * calls (a list page, a SHOW, a batched read such as SSM GetParameters/DescribeParameters:
 * counted per kind in the JSON), single-object reads, and other calls (Snowflake result polls,
 * Airbyte token requests). Then, one kind at a time at --per-kind-size resources and
 * --per-kind-latency ms, the same three runs, to show where a mixed cold apply's time goes.
 * The idle daemon: `tapestry run` on a Git repository of a one-file pipeline (the floor), and
 * of each mixed pipeline once it is in sync (at the first latency), read from /proc after its
 * first sync and some idle seconds: VmRSS split into anonymous and file-backed (shared
 * library) pages, PSS, VmHWM, and the API calls it made while idle.
 * Figures, not assertions; prints a table and writes bench/results/scale.json.
 * Targets (issue 10): a no-op reconcile makes zero write calls and at most one list call per
 * kind and scope; cold apply of 1,000 independent resources at 20 ms within 1.5× of the
 * ideal; peak RSS under 32 MB at 1,000 resources; the idle daemon under 10 MB.
 *
 * Usage: bench_scale (BUILD_DIR | TAPESTRY FAKE_SNOWFLAKE FAKE_AIRBYTE FAKE_PROXY)
 *                    [results.json] [--sizes 100,1000,10000] [--latencies 0,20] [--per-kind-size N (0: none)]
 *                    [--per-kind-latency MS] [--per-kind-only KIND,...] [--airbyte-max N]
 *                    [--idle-seconds N]
 *                    [--workdir DIR] [--keep]
 *   moto_server and git must be on PATH. Every server listens on 127.0.0.1 only, dies with
 *   the bench (PR_SET_PDEATHSIG) and is stopped by PID after its row. The work directory is
 *   made in --workdir (default $TMPDIR or /tmp) and removed at the end unless --keep (it
 *   holds the logs of every process and every proxy).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include "bench.h"
#include "util/util.h"

#define CONCURRENCY 8
#define NKINDS 5
#define SF_ACCOUNT "BENCH-ACCOUNT"
#define AB_CLIENT_ID "bench-client"
#define AB_CLIENT_SECRET "bench-client-secret"

static const char *bin_tapestry, *bin_sf, *bin_ab, *bin_proxy, *bin_floor;
static char *root; /* work directory */

/* ---------------------------------------------------------------- small helpers */

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

static char *read_text(const char *path, size_t max)
{
	tp_buf b;
	tp_buf_init(&b, max);
	if (tp_file_read(&b, path, max) < 0) {
		tp_buf_free(&b);
		return NULL;
	}
	return tp_buf_detach(&b);
}

static long file_size(const char *path)
{
	struct stat sb;
	return stat(path, &sb) == 0 ? (long)sb.st_size : 0;
}

static bool can_connect(int port)
{
	struct sockaddr_in a = {.sin_family = AF_INET};
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	bool ok;
	a.sin_port = htons((uint16_t)port);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ok = fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
	if (fd >= 0)
		close(fd);
	return ok;
}

/* ---------------------------------------------------------------- processes */

/* Starts argv with stdout and stderr to log; the child dies with the bench. */
static pid_t spawn(const char *const *argv, const char *log)
{
	pid_t pid = fork();
	if (pid < 0)
		die("fork failed");
	if (pid == 0) {
		int in = open("/dev/null", O_RDONLY);
		int out = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (in >= 0)
			dup2(in, 0);
		if (out >= 0) {
			dup2(out, 1);
			dup2(out, 2);
		}
		execvp(argv[0], (char *const *)(uintptr_t)argv);
		_exit(127);
	}
	return pid;
}

static void stop(pid_t pid)
{
	int64_t deadline;
	if (pid <= 0)
		return;
	kill(pid, SIGTERM);
	deadline = tp_clock_mono_ms() + 10000;
	while (tp_clock_mono_ms() < deadline) {
		if (waitpid(pid, NULL, WNOHANG) == pid)
			return;
		usleep(20000);
	}
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
}

/* Waits (bounded) for "... listening on http://127.0.0.1:<port>" in a fake's log. */
static int wait_listening(const char *log, pid_t pid, const char *name)
{
	int64_t deadline = tp_clock_mono_ms() + 20000;
	while (tp_clock_mono_ms() < deadline) {
		char *text = read_text(log, 1 << 20);
		const char *p = text ? strstr(text, "listening on http://127.0.0.1:") : NULL;
		int port = p ? atoi(p + strlen("listening on http://127.0.0.1:")) : 0;
		free(text);
		if (port > 0)
			return port;
		if (waitpid(pid, NULL, WNOHANG) == pid)
			break;
		usleep(20000);
	}
	fprintf(stderr, "bench: %s did not start (log: %s)\n", name, log);
	exit(1);
}

typedef struct {
	double wall_s;
	long rss_kb;
	int status;
} run_result;

/* Runs the tapestry binary with nargs args, output to log; wall time and peak RSS (wait4). */
static run_result run_tapestry(const char *const *args, size_t nargs, const char *log)
{
	const char *argv[16];
	size_t n = 0;
	run_result r = {0};
	struct rusage ru;
	int status = 0;
	int64_t t0;
	pid_t pid;
	argv[n++] = bin_tapestry;
	for (size_t i = 0; i < nargs && n < 15; i++)
		argv[n++] = args[i];
	argv[n] = NULL;
	t0 = tp_clock_mono_ms();
	pid = spawn(argv, log);
	wait4(pid, &status, 0, &ru);
	r.wall_s = (double)(tp_clock_mono_ms() - t0) / 1000.0;
	r.rss_kb = ru.ru_maxrss;
	r.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
	return r;
}

/* ---------------------------------------------------------------- HTTP */

/* ---------------------------------------------------------------- backends */

typedef struct {
	pid_t moto, sf, ab, px_aws, px_sf, px_ab;
	int moto_port;
	char aws_url[64], sf_url[64], ab_url[64]; /* the proxies */
	char *px_log[3];                          /* aws, snowflake, airbyte */
	char *sf_log;
	char access_key[64], secret_key[128];
} backends;

enum { B_AWS, B_SF, B_AB };
static const char *const backend_names[] = {"aws", "snowflake", "airbyte"};

static void xml_value(char *out, size_t n, const char *body, const char *name)
{
	char *open = tp_sprintf("<%s>", name);
	const char *p = body ? strstr(body, open) : NULL;
	out[0] = '\0';
	if (p) {
		const char *e;
		p += strlen(open);
		e = strchr(p, '<');
		if (e && (size_t)(e - p) < n) {
			memcpy(out, p, (size_t)(e - p));
			out[e - p] = '\0';
		}
	}
	free(open);
}

/* The calls moto lets through before it enforces SigV4 (INITIAL_NO_AUTH_ACTION_COUNT): an IAM
 * user, an allow-all policy and its access key, which every run then signs with; then one SSM
 * call, so moto's SSM backend (slow to load: about a second) is warm before anything is
 * timed. */
#define MOTO_NO_AUTH_CALLS "4"
static void moto_bootstrap(backends *b)
{
	static const char *const forms[] = {
		"Action=CreateUser&UserName=tapestry&Version=2010-05-08",
		"Action=PutUserPolicy&UserName=tapestry&PolicyName=allow-all&PolicyDocument="
		"%7B%22Version%22%3A%222012-10-17%22%2C%22Statement%22%3A%5B%7B%22Effect%22%3A"
		"%22Allow%22%2C%22Action%22%3A%22%2A%22%2C%22Resource%22%3A%22%2A%22%7D%5D%7D"
		"&Version=2010-05-08",
		"Action=CreateAccessKey&UserName=tapestry&Version=2010-05-08",
	};
	static const char *const iam[] = {
		"Content-Type: application/x-www-form-urlencoded",
		"Authorization: AWS4-HMAC-SHA256 Credential=AKIDBOOTSTRAP/20260101/us-east-1/iam/"
		"aws4_request, SignedHeaders=host, Signature=0",
		NULL};
	static const char *const ssm[] = {
		"Content-Type: application/x-amz-json-1.1",
		"X-Amz-Target: AmazonSSM.DescribeParameters",
		"Authorization: AWS4-HMAC-SHA256 Credential=AKIDBOOTSTRAP/20260101/us-east-1/ssm/"
		"aws4_request, SignedHeaders=host, Signature=0",
		NULL};
	char *url = tp_sprintf("http://127.0.0.1:%d/", b->moto_port);
	for (size_t i = 0; i < 4; i++) {
		char *body = NULL;
		long st = i < 3 ? bench_http("POST", url, iam, forms[i], &body)
				: bench_http("POST", url, ssm, "{\"MaxResults\":1}", &body);
		if (st != 200) {
			fprintf(stderr, "bench: moto bootstrap call %zu: HTTP %ld %s\n", i + 1, st,
				body ? body : "");
			exit(1);
		}
		if (i == 2) {
			xml_value(b->access_key, sizeof(b->access_key), body, "AccessKeyId");
			xml_value(b->secret_key, sizeof(b->secret_key), body, "SecretAccessKey");
		}
		free(body);
	}
	free(url);
	if (!b->access_key[0] || !b->secret_key[0])
		die("moto returned no access key");
}

static pid_t start_proxy(const char *dir, const char *name, int upstream_port, int latency_ms,
			 char *url, size_t urlsz, char **log_out)
{
	char up[64], lat[16];
	char *out = tp_sprintf("%s/proxy-%s.out", dir, name);
	char *log = tp_sprintf("%s/proxy-%s.log", dir, name);
	const char *argv[] = {bin_proxy, "--port", "0", "--upstream", up, "--latency-ms", lat,
			      "--log", log, NULL};
	pid_t pid;
	snprintf(up, sizeof(up), "http://127.0.0.1:%d", upstream_port);
	snprintf(lat, sizeof(lat), "%d", latency_ms);
	pid = spawn(argv, out);
	snprintf(url, urlsz, "http://127.0.0.1:%d", wait_listening(out, pid, "fake_proxy"));
	free(out);
	*log_out = log;
	return pid;
}

static void backends_start(backends *b, const char *dir, const char *pubkey, int latency_ms)
{
	char port[16];
	char *log;
	memset(b, 0, sizeof(*b));

	/* moto_server, signing enforced after the bootstrap calls */
	b->moto_port = bench_free_port();
	snprintf(port, sizeof(port), "%d", b->moto_port);
	log = tp_sprintf("%s/moto.log", dir);
	setenv("INITIAL_NO_AUTH_ACTION_COUNT", MOTO_NO_AUTH_CALLS, 1);
	{
		const char *argv[] = {"moto_server", "-H", "127.0.0.1", "-p", port, NULL};
		int64_t deadline = tp_clock_mono_ms() + 30000;
		b->moto = spawn(argv, log);
		while (!can_connect(b->moto_port)) {
			if (tp_clock_mono_ms() > deadline ||
			    waitpid(b->moto, NULL, WNOHANG) == b->moto) {
				fprintf(stderr, "bench: moto_server did not start (is it on PATH? "
						"pip install 'moto[server]'); log: %s\n", log);
				exit(1);
			}
			usleep(50000);
		}
	}
	unsetenv("INITIAL_NO_AUTH_ACTION_COUNT");
	free(log);
	moto_bootstrap(b);

	/* the Snowflake fake: the user's default warehouse lets DDL batch */
	log = tp_sprintf("%s/snowflake.out", dir);
	b->sf_log = tp_sprintf("%s/snowflake-requests.log", dir);
	{
		const char *argv[] = {bin_sf, "--port", "0", "--account", SF_ACCOUNT, "--user",
				      "TAPESTRY", "--public-key", pubkey, "--role", "TAPESTRY_ADMIN",
				      "--default-warehouse", "COMPUTE_WH", "--log", b->sf_log, NULL};
		b->sf = spawn(argv, log);
		snprintf(port, sizeof(port), "%d", wait_listening(log, b->sf, "fake_snowflake"));
	}
	free(log);
	b->px_sf = start_proxy(dir, "snowflake", atoi(port), latency_ms, b->sf_url,
			       sizeof(b->sf_url), &b->px_log[B_SF]);

	/* the Airbyte fake; its `next` links are never followed (limit/offset paging) */
	log = tp_sprintf("%s/airbyte.out", dir);
	{
		char *ablog = tp_sprintf("%s/airbyte-requests.log", dir);
		const char *argv[] = {bin_ab, "--port", "0", "--client-id", AB_CLIENT_ID,
				      "--client-secret", AB_CLIENT_SECRET, "--log", ablog, NULL};
		b->ab = spawn(argv, log);
		snprintf(port, sizeof(port), "%d", wait_listening(log, b->ab, "fake_airbyte"));
		free(ablog);
	}
	free(log);
	b->px_ab = start_proxy(dir, "airbyte", atoi(port), latency_ms, b->ab_url,
			       sizeof(b->ab_url), &b->px_log[B_AB]);
	b->px_aws = start_proxy(dir, "aws", b->moto_port, latency_ms, b->aws_url,
				sizeof(b->aws_url), &b->px_log[B_AWS]);

	/* what every tapestry process of this row sees */
	{
		char *ab = tp_sprintf("%s/api/public/v1", b->ab_url);
		setenv("TAPESTRY_ENDPOINT_AWS", b->aws_url, 1);
		setenv("TAPESTRY_ENDPOINT_SNOWFLAKE", b->sf_url, 1);
		setenv("TAPESTRY_ENDPOINT_AIRBYTE", ab, 1);
		setenv("AWS_ACCESS_KEY_ID", b->access_key, 1);
		setenv("AWS_SECRET_ACCESS_KEY", b->secret_key, 1);
		free(ab);
	}
}

static void backends_stop(backends *b)
{
	stop(b->px_aws);
	stop(b->px_sf);
	stop(b->px_ab);
	stop(b->moto);
	stop(b->sf);
	stop(b->ab);
	for (int i = 0; i < 3; i++)
		free(b->px_log[i]);
	free(b->sf_log);
	memset(b, 0, sizeof(*b));
}

/* ---------------------------------------------------------------- call accounting */

typedef struct {
	long requests, writes, lists, reads, polls, auth, faults;
	json_t *lists_by_kind; /* {"aws.ssm_parameter": n, ...}: list-type requests */
	json_t *by_backend;    /* {"aws": {"requests","writes","lists","reads"}, ...} */
} calls;

typedef struct {
	long px[3];
	long sf;
} log_marks;

static log_marks marks_now(const backends *b)
{
	log_marks m;
	for (int i = 0; i < 3; i++)
		m.px[i] = file_size(b->px_log[i]);
	m.sf = file_size(b->sf_log);
	return m;
}

/* The lines of a log appended since offset `from`, each parsed (new reference). */
static json_t *log_since(const char *path, long from)
{
	json_t *lines = json_array();
	FILE *f = fopen(path, "r");
	char *line = NULL;
	size_t cap = 0;
	if (!f)
		return lines;
	if (fseek(f, from, SEEK_SET) == 0) {
		while (getline(&line, &cap, f) > 0) {
			json_t *o = json_loads(line, 0, NULL);
			if (o)
				json_array_append_new(lines, o);
		}
	}
	free(line);
	fclose(f);
	return lines;
}

static void bump(json_t *obj, const char *key, long by)
{
	json_t *v = json_object_get(obj, key);
	json_object_set_new(obj, key, json_integer((v ? json_integer_value(v) : 0) + by));
}

static bool starts_with(const char *s, const char *prefix)
{
	return s && strncmp(s, prefix, strlen(prefix)) == 0;
}

static void backend_count(calls *c, int b, const char *what)
{
	json_t *o = json_object_get(c->by_backend, backend_names[b]);
	if (!o) {
		o = json_object();
		json_object_set_new(c->by_backend, backend_names[b], o);
	}
	bump(o, what, 1);
}

static bool aws_write(const char *action)
{
	static const char *const verbs[] = {"Put",    "Create", "Update",   "Delete", "Add",
					    "Remove", "Tag",    "Untag",    "Label",  "Unlabel",
					    "Execute", "Set",   "Cancel",   "Continue", "Signal",
					    "Rollback", NULL};
	const char *dot = strrchr(action, '.');
	const char *name = dot ? dot + 1 : action;
	for (size_t i = 0; verbs[i]; i++)
		if (starts_with(name, verbs[i]))
			return true;
	return false;
}

static bool is_uuidish(const char *seg)
{
	size_t n = strlen(seg);
	return n == 36 && seg[8] == '-' && seg[13] == '-';
}

/* Classifies the calls the proxies (and the Snowflake fake, for statement text) logged. */
static void count_calls(calls *c, const backends *b, const log_marks *from)
{
	json_t *lines;
	size_t i;
	json_t *l;
	memset(c, 0, sizeof(*c));
	c->lists_by_kind = json_object();
	c->by_backend = json_object();

	lines = log_since(b->px_log[B_AWS], from->px[B_AWS]);
	json_array_foreach(lines, i, l) {
		const char *a = tp_json_get_str(l, "action");
		const char *kind = "aws";
		c->requests++;
		backend_count(c, B_AWS, "requests");
		c->faults += tp_json_get_str(l, "fault") && tp_json_get_str(l, "fault")[0];
		if (a && aws_write(a)) {
			c->writes++;
			backend_count(c, B_AWS, "writes");
			continue;
		}
		if (starts_with(a, "AmazonSSM."))
			kind = "aws.ssm_parameter";
		else if (a && (strstr(a, "Stack") || strstr(a, "ChangeSet")))
			kind = "aws.stack";
		if (a && !strstr(a, "ForResource") &&
		    (strstr(a, "Describe") || strstr(a, "List") ||
		     strcmp(a, "AmazonSSM.GetParameters") == 0 ||
		     strcmp(a, "AmazonSSM.GetParametersByPath") == 0)) {
			/* lists and batched reads: DescribeParameters (50 names a page on AWS,
			 * 10 on moto), GetParameters (10 names) */
			char *key = tp_sprintf("%s %s", kind, strrchr(a, '.') ? strrchr(a, '.') + 1
									   : a);
			c->lists++;
			backend_count(c, B_AWS, "lists");
			bump(c->lists_by_kind, key, 1);
			free(key);
		} else {
			c->reads++;
			backend_count(c, B_AWS, "reads");
		}
	}
	json_decref(lines);

	lines = log_since(b->px_log[B_AB], from->px[B_AB]);
	json_array_foreach(lines, i, l) {
		const char *m = tp_json_get_str(l, "method");
		const char *p = tp_json_get_str(l, "path");
		const char *below = p && starts_with(p, "/api/public/v1") ? p + 14 : p ? p : "";
		c->requests++;
		backend_count(c, B_AB, "requests");
		c->faults += tp_json_get_str(l, "fault") && tp_json_get_str(l, "fault")[0];
		if (strcmp(below, "/applications/token") == 0) {
			c->auth++;
			backend_count(c, B_AB, "auth");
		} else if (m && strcmp(m, "GET") != 0) {
			c->writes++;
			backend_count(c, B_AB, "writes");
		} else {
			const char *last = strrchr(below, '/');
			if (last && !is_uuidish(last + 1)) {
				char *key = tp_sprintf("airbyte GET %s", below);
				c->lists++;
				backend_count(c, B_AB, "lists");
				bump(c->lists_by_kind, key, 1);
				free(key);
			} else {
				c->reads++;
				backend_count(c, B_AB, "reads");
			}
		}
	}
	json_decref(lines);

	/* Snowflake: HTTP calls from the proxy, statement text from the fake's own log */
	lines = log_since(b->px_log[B_SF], from->px[B_SF]);
	json_array_foreach(lines, i, l) {
		c->requests++;
		backend_count(c, B_SF, "requests");
		c->faults += tp_json_get_str(l, "fault") && tp_json_get_str(l, "fault")[0];
		if (strcmp(tp_json_get_str(l, "method") ? tp_json_get_str(l, "method") : "",
			   "GET") == 0) {
			c->polls++; /* GET /api/v2/statements/{handle}: a result or a partition */
			backend_count(c, B_SF, "polls");
		}
	}
	json_decref(lines);
	lines = log_since(b->sf_log, from->sf);
	json_array_foreach(lines, i, l) {
		json_t *stmts = json_object_get(l, "statements");
		const char *first;
		if (strcmp(tp_json_get_str(l, "method") ? tp_json_get_str(l, "method") : "",
			   "POST") != 0 ||
		    !json_is_array(stmts))
			continue;
		if (json_integer_value(json_object_get(l, "writes")) > 0) {
			c->writes++;
			backend_count(c, B_SF, "writes");
			continue;
		}
		first = json_string_value(json_array_get(stmts, 0));
		if (!first)
			first = tp_json_get_str(json_array_get(stmts, 0), "sql");
		if (first && strncasecmp(first, "SHOW ", 5) == 0) {
			/* "SHOW ROLES LIKE ...", "SHOW DATABASES": the kind's list call */
			char words[64] = "";
			char *key;
			int w = 0;
			size_t k = 0;
			for (const char *s = first; *s && k + 1 < sizeof(words); s++) {
				if (*s == ' ' && ++w == 2)
					break;
				words[k++] = *s;
			}
			words[k] = '\0';
			key = tp_sprintf("snowflake %s", words);
			c->lists++;
			backend_count(c, B_SF, "lists");
			bump(c->lists_by_kind, key, 1);
			free(key);
		} else {
			c->reads++;
			backend_count(c, B_SF, "reads");
		}
	}
	json_decref(lines);
}

static json_t *calls_json(const calls *c)
{
	return json_pack("{s:i,s:i,s:i,s:i,s:i,s:i,s:i,s:O,s:O}", "requests", (int)c->requests,
			 "writes", (int)c->writes, "lists", (int)c->lists, "reads", (int)c->reads,
			 "polls", (int)c->polls, "auth", (int)c->auth, "faults", (int)c->faults,
			 "lists_by_kind", c->lists_by_kind, "by_backend", c->by_backend);
}

static void calls_free(calls *c)
{
	json_decref(c->lists_by_kind);
	json_decref(c->by_backend);
}

/* ---------------------------------------------------------------- pipeline */

static void make_keys(const char *dir, char **priv, char **pub)
{
	EVP_PKEY *k = EVP_RSA_gen(2048);
	FILE *f;
	*priv = tp_sprintf("%s/snowflake_key.p8", dir);
	*pub = tp_sprintf("%s/snowflake_key.pub", dir);
	if (!k)
		die("cannot generate an RSA key");
	f = fopen(*priv, "w");
	if (!f || !PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL))
		die("cannot write the private key");
	fclose(f);
	chmod(*priv, 0600);
	f = fopen(*pub, "w");
	if (!f || !PEM_write_PUBKEY(f, k))
		die("cannot write the public key");
	fclose(f);
	EVP_PKEY_free(k);
}

static const char *const kind_names[NKINDS] = {"aws.ssm_parameter", "snowflake.role",
					       "snowflake.database", "airbyte.source",
					       "airbyte.destination"};

/* Resource i of kind k (an index into kind_names) as a YAML document. */
static void put_resource(tp_buf *b, int k, int i)
{
	switch (k) {
	case 0:
		tp_buf_printf(b, "---\nkind: aws.ssm_parameter\nname: param-%d\n"
				 "spec: {name: /bench/param-%05d, value: \"value %d\"}\n",
			      i, i, i);
		break;
	case 1:
		tp_buf_printf(b, "---\nkind: snowflake.role\nname: role-%d\n"
				 "spec: {name: BENCH_ROLE_%05d, comment: \"bench role %d\"}\n",
			      i, i, i);
		break;
	case 2:
		tp_buf_printf(b, "---\nkind: snowflake.database\nname: db-%d\n"
				 "spec: {name: BENCH_DB_%05d, comment: \"bench database %d\"}\n",
			      i, i, i);
		break;
	case 3:
		tp_buf_printf(b, "---\nkind: airbyte.source\nname: source-%d\n"
				 "spec: {name: bench-source-%05d, connector: source-faker,\n"
				 "       configuration: {count: %d}}\n",
			      i, i, i + 1);
		break;
	default:
		tp_buf_printf(b, "---\nkind: airbyte.destination\nname: dest-%d\n"
				 "spec: {name: bench-destination-%05d, connector: "
				 "destination-dev-null}\n",
			      i, i);
		break;
	}
}

/* The kinds of a pipeline, cycled: resource i is of kind pattern[i % len]. */
typedef struct {
	const char *label;
	int len;
	int kinds[NKINDS];
} mix_pattern;

static const mix_pattern full_mix = {"mix", 5, {0, 1, 2, 3, 4}};
/* Above --airbyte-max resources: the same mix without Airbyte's share. */
static const mix_pattern mix_no_airbyte = {"mix-no-airbyte", 5, {0, 1, 2, 1, 2}};

/* n independent resources following the pattern. */
static void gen_pipeline(const char *dir, int n, const char *keypath, const mix_pattern *mp)
{
	char *p = tp_sprintf("%s/resources", dir);
	tp_buf b;
	int file = 0, in_file = 0, next[NKINDS] = {0, 0, 0, 0, 0};
	mkdir(dir, 0755);
	mkdir(p, 0755);
	free(p);
	tp_buf_init(&b, 0);
	/* endpoints: 127.0.0.1:1 unless TAPESTRY_ENDPOINT_* say otherwise (they always do) */
	tp_buf_printf(&b,
		      "pipeline: scale\n"
		      "settings: {concurrency: %d, max_prune: 100%%}\n"
		      "providers:\n"
		      "  aws: {region: us-east-1, endpoint: \"http://127.0.0.1:1\",\n"
		      "        max_concurrency: %d}\n"
		      "  snowflake: {account: %s, user: TAPESTRY, role: TAPESTRY_ADMIN,\n"
		      "              endpoint: \"http://127.0.0.1:1\",\n"
		      "              private_key: \"${secret:file:%s}\"}\n"
		      "  airbyte: {url: \"http://127.0.0.1:1/api/public/v1\", workspace: default,\n"
		      "            client_id: \"${secret:env:BENCH_AIRBYTE_CLIENT_ID}\",\n"
		      "            client_secret: \"${secret:env:BENCH_AIRBYTE_CLIENT_SECRET}\",\n"
		      "            max_concurrency: %d}\n",
		      CONCURRENCY, CONCURRENCY, SF_ACCOUNT, keypath, CONCURRENCY);
	p = tp_sprintf("%s/tapestry.yaml", dir);
	write_file(p, tp_buf_cstr(&b));
	free(p);
	tp_buf_clear(&b);
	for (int i = 0; i < n; i++) {
		int k = mp->kinds[i % mp->len];
		put_resource(&b, k, next[k]++);
		if (++in_file >= 500 || i + 1 == n) {
			char *f = tp_sprintf("%s/resources/part-%04d.yaml", dir, file++);
			write_file(f, tp_buf_cstr(&b));
			free(f);
			tp_buf_clear(&b);
			in_file = 0;
		}
	}
	tp_buf_free(&b);
}

/* ---------------------------------------------------------------- the idle daemon */

typedef struct {
	double rss_mb, hwm_mb, anon_mb, file_mb, pss_mb, first_sync_s;
	long idle_calls;
	bool ok;
} idle_result;

/* A "Field:   123 kB" value of a /proc file, or -1. */
static long proc_kb(pid_t pid, const char *file, const char *field)
{
	char path[64];
	char *text, *p;
	long v = -1;
	snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, file);
	text = read_text(path, 1 << 16);
	if (text && (p = strstr(text, field)))
		v = strtol(p + strlen(field), NULL, 10);
	free(text);
	return v;
}

static int sh(const char *cmd)
{
	int rc = system(cmd);
	return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

/* The steady memory of an idle process: the largest of several samples a second long. */
static void sample_memory(pid_t pid, idle_result *res)
{
	long rss = 0, anon = 0, file = 0, pss = 0;
	for (int i = 0; i < 5; i++) {
		long v = proc_kb(pid, "status", "VmRSS:");
		if (v > rss) {
			rss = v;
			anon = proc_kb(pid, "status", "RssAnon:");
			file = proc_kb(pid, "status", "RssFile:");
			pss = proc_kb(pid, "smaps_rollup", "\nPss:");
		}
		usleep(200000);
	}
	res->rss_mb = rss / 1024.0;
	res->anon_mb = anon / 1024.0;
	res->file_mb = file / 1024.0;
	res->pss_mb = pss / 1024.0;
	res->hwm_mb = proc_kb(pid, "status", "VmHWM:") / 1024.0;
}

/* bench_lib_floor (bench/lib_floor.c): the libraries alone, initialised as `tapestry run`
 * initialises them, idle. ok is false when it could not be run. */
static idle_result lib_floor(const char *dir, int idle_seconds)
{
	idle_result res = {0};
	char *log = tp_sprintf("%s/lib_floor.log", dir);
	const char *argv[] = {bin_floor, dir, NULL};
	int64_t deadline = tp_clock_mono_ms() + 30000;
	pid_t pid;

	if (!bin_floor)
		goto done;
	pid = spawn(argv, log);
	while (tp_clock_mono_ms() < deadline) {
		char *text = read_text(log, 1 << 16);
		bool ready = text && strncmp(text, "ready ", 6) == 0;
		free(text);
		if (ready) {
			tp_clock_sleep_ms((int64_t)idle_seconds * 1000);
			sample_memory(pid, &res);
			res.ok = true;
			break;
		}
		if (waitpid(pid, NULL, WNOHANG) == pid) {
			fprintf(stderr, "bench: bench_lib_floor exited (log %s)\n", log);
			pid = 0;
			break;
		}
		usleep(50000);
	}
	stop(pid);
done:
	free(log);
	return res;
}

/*
 * `tapestry run` on a Git repository of the pipeline in `pipeline`, with the state in
 * state_dir (in sync when the pipeline was applied there): waits for the first sync, lets it
 * idle, then samples its memory. b (may be NULL) counts the API calls made while idle.
 */
static idle_result idle_daemon(const char *dir, const char *pipeline, const char *state_dir,
			       const backends *b, int idle_seconds)
{
	idle_result res = {0};
	int port = bench_free_port();
	char *cfg = tp_sprintf("%s/controller.yaml", dir);
	char *log = tp_sprintf("%s/run.log", dir);
	char *url = tp_sprintf("http://127.0.0.1:%d/api/status", port);
	char *text, *cmd;
	const char *argv[] = {bin_tapestry, "run", "--config", cfg, NULL};
	int64_t t0, deadline;
	log_marks m = {{0, 0, 0}, 0};
	pid_t pid;

	cmd = tp_sprintf("cd '%s' && git init -q -b main && git add -A && git -c user.name=bench "
			 "-c user.email=bench@localhost commit -q -m 'scale pipeline'",
			 pipeline);
	if (sh(cmd) != 0)
		die("git commit of the pipeline failed");
	free(cmd);
	text = tp_sprintf("repository: {url: \"file://%s\", branch: main, path: \".\"}\n"
			  "state_dir: %s\nlisten: 127.0.0.1:%d\npoll_interval: 60s\n"
			  "drift_interval: 1h\n",
			  pipeline, state_dir, port);
	write_file(cfg, text);
	free(text);

	t0 = tp_clock_mono_ms();
	pid = spawn(argv, log);
	deadline = t0 + 600000;
	while (tp_clock_mono_ms() < deadline) {
		char *body = NULL;
		json_t *st = NULL;
		if (bench_http("GET", url, NULL, NULL, &body) == 200)
			st = json_loads(body, 0, NULL);
		free(body);
		if (st && json_integer_value(json_object_get(st, "syncs")) >= 1) {
			const char *r = tp_json_get_str(json_object_get(st, "last_sync"), "result");
			res.ok = r && (strcmp(r, "in-sync") == 0 || strcmp(r, "applied") == 0);
			if (!res.ok)
				fprintf(stderr, "bench: the daemon's first sync: %s (log %s)\n",
					r ? r : "?", log);
			json_decref(st);
			break;
		}
		json_decref(st);
		if (waitpid(pid, NULL, WNOHANG) == pid) {
			fprintf(stderr, "bench: tapestry run exited (log %s)\n", log);
			pid = 0;
			break;
		}
		usleep(50000);
	}
	res.first_sync_s = (double)(tp_clock_mono_ms() - t0) / 1000.0;
	if (pid > 0) {
		if (b)
			m = marks_now(b);
		tp_clock_sleep_ms((int64_t)idle_seconds * 1000);
		sample_memory(pid, &res);
		if (b) {
			calls c;
			count_calls(&c, b, &m);
			res.idle_calls = c.requests;
			calls_free(&c);
		}
		stop(pid);
	}
	free(cfg);
	free(log);
	free(url);
	return res;
}

static void print_idle(const char *what, int n, int idle_seconds, const idle_result *ir,
		       json_t *idle)
{
	if (n == 0)
		printf("floor, %s: RSS %.1f MB (anonymous %.1f, shared-library and file pages "
		       "%.1f), PSS %.1f MB\n",
		       what, ir->rss_mb, ir->anon_mb, ir->file_mb, ir->pss_mb);
	else
		printf("idle daemon, %s (%d resources): first sync %.2f s, then %d s idle: RSS "
		       "%.1f MB (anonymous %.1f, shared-library and file pages %.1f), PSS %.1f MB, "
		       "peak %.1f MB, %ld API calls while idle%s\n",
		       what, n, ir->first_sync_s, idle_seconds, ir->rss_mb, ir->anon_mb,
		       ir->file_mb, ir->pss_mb, ir->hwm_mb, ir->idle_calls,
		       ir->ok ? "" : " (SYNC FAILED)");
	fflush(stdout);
	json_array_append_new(idle, json_pack("{s:s,s:i,s:f,s:i,s:f,s:f,s:f,s:f,s:f,s:i,s:b}",
					      "pipeline", what, "resources", n, "first_sync_s",
					      ir->first_sync_s, "idle_seconds", idle_seconds,
					      "rss_mb", ir->rss_mb, "rss_anon_mb", ir->anon_mb,
					      "rss_file_mb", ir->file_mb, "pss_mb", ir->pss_mb,
					      "peak_rss_mb", ir->hwm_mb, "idle_api_calls",
					      (int)ir->idle_calls, "ok", ir->ok));
}

/* The floor: a pipeline of one local.file, no backends. */
static void idle_minimal(int idle_seconds, json_t *idle)
{
	char *dir = tp_sprintf("%s/minimal", root);
	char *pipe = tp_sprintf("%s/pipeline", dir);
	char *state_dir = tp_sprintf("%s/state", dir);
	char *p, *text;
	idle_result ir;
	mkdir(dir, 0755);
	mkdir(pipe, 0755);
	mkdir(state_dir, 0700);
	p = tp_sprintf("%s/tapestry.yaml", pipe);
	write_file(p, "pipeline: minimal\n");
	free(p);
	p = tp_sprintf("%s/resources", pipe);
	mkdir(p, 0755);
	free(p);
	p = tp_sprintf("%s/resources/file.yaml", pipe);
	text = tp_sprintf("kind: local.file\nname: env\nspec: {path: %s/env, content: \"A=1\\n\"}\n",
			  dir);
	write_file(p, text);
	free(text);
	free(p);
	ir = idle_daemon(dir, pipe, state_dir, NULL, idle_seconds);
	print_idle("one local.file", 1, idle_seconds, &ir, idle);
	ir = lib_floor(dir, idle_seconds);
	if (ir.ok)
		print_idle("the linked libraries initialised, no Tapestry code (bench_lib_floor)",
			   0, idle_seconds, &ir, idle);
	free(dir);
	free(pipe);
	free(state_dir);
}

/* ---------------------------------------------------------------- rows */

static void print_header(void)
{
	printf("%-20s %6s %4s  %-7s %9s %9s %6s %7s %4s %7s %7s %6s %6s %6s\n", "pipeline",
	       "size", "lat", "run", "wall (s)", "ideal (s)", "ratio", "RSS MB", "exit", "calls",
	       "writes", "lists", "reads", "other");
}

static void print_row(const char *pipeline, int size, int latency, const char *what,
		      const run_result *r, double ideal, const calls *c)
{
	char ideal_s[16] = "-", ratio[16] = "-";
	if (ideal > 0) {
		snprintf(ideal_s, sizeof(ideal_s), "%.3f", ideal);
		snprintf(ratio, sizeof(ratio), "%.2f", r->wall_s / ideal);
	}
	printf("%-20s %6d %4d  %-7s %9.3f %9s %6s %7.1f %4d %7ld %7ld %6ld %6ld %6ld\n", pipeline,
	       size, latency, what, r->wall_s, ideal_s, ratio, r->rss_kb / 1024.0, r->status,
	       c->requests, c->writes, c->lists, c->reads, c->polls + c->auth);
	fflush(stdout);
}

/* One pipeline at one latency on fresh backends: cold, no-op and refresh; optionally the idle
 * daemon on top of the in-sync state. */
static void run_rows(int n, int lat, const mix_pattern *mp, const char *keypriv,
		     const char *keypub, bool idle_too, int idle_seconds, json_t *results,
		     json_t *idle)
{
	const char *label = mp->label;
	char *dir = tp_sprintf("%s/%s-n%d-l%d", root, label, n, lat);
	char *pipe = tp_sprintf("%s/pipeline", dir);
	char *state_dir = tp_sprintf("%s/state", dir);
	char *db = tp_sprintf("%s/state.db", state_dir);
	char *conc = tp_sprintf("--concurrency=%d", CONCURRENCY);
	static const char *const what[3] = {"cold", "no-op", "refresh"};
	double ideal = (double)n / CONCURRENCY * lat / 1000.0;
	backends b;

	mkdir(dir, 0755);
	mkdir(state_dir, 0700);
	gen_pipeline(pipe, n, keypriv, mp);
	backends_start(&b, dir, keypub, lat);
	for (int k = 0; k < 3; k++) {
		const char *apply[] = {"apply", pipe, "--state", db, "--auto-approve", conc};
		const char *plan[] = {"plan", pipe, "--state", db, "--refresh",
				      "--detailed-exitcode"};
		char *log = tp_sprintf("%s/tapestry-%s.log", dir, what[k]);
		log_marks m = marks_now(&b);
		double id = k == 0 ? ideal : 0;
		run_result r = k < 2 ? run_tapestry(apply, 6, log) : run_tapestry(plan, 6, log);
		calls c;
		json_t *row;
		count_calls(&c, &b, &m);
		print_row(label, n, lat, what[k], &r, id, &c);
		if (r.status != 0)
			fprintf(stderr, "bench: %s exited %d: see %s (--keep keeps it)\n", what[k],
				r.status, log);
		row = json_pack("{s:s,s:i,s:i,s:s,s:f,s:f,s:i,s:o}", "pipeline", label,
				"resources", n, "latency_ms", lat, "run", what[k], "wall_s",
				r.wall_s, "peak_rss_mb", r.rss_kb / 1024.0, "exit", r.status,
				"calls", calls_json(&c));
		if (id > 0) {
			json_object_set_new(row, "ideal_s", json_real(id));
			json_object_set_new(row, "ratio", json_real(r.wall_s / id));
		}
		json_array_append_new(results, row);
		calls_free(&c);
		free(log);
	}
	if (idle_too) {
		idle_result ir = idle_daemon(dir, pipe, state_dir, &b, idle_seconds);
		char *name = tp_sprintf("%s, in sync", label);
		print_idle(name, n, idle_seconds, &ir, idle);
		free(name);
	}
	backends_stop(&b);
	free(dir);
	free(pipe);
	free(state_dir);
	free(db);
	free(conc);
}

/* ---------------------------------------------------------------- main */

static int parse_list(int *out, int max, const char *text)
{
	int n = 0;
	char *copy = tp_strdup(text), *save = NULL;
	for (char *t = strtok_r(copy, ",", &save); t && n < max; t = strtok_r(NULL, ",", &save))
		out[n++] = atoi(t);
	free(copy);
	return n;
}

static bool is_dir(const char *path)
{
	struct stat sb;
	return stat(path, &sb) == 0 && S_ISDIR(sb.st_mode);
}

/* dir/name as an absolute path (children are started from other directories too). */
static const char *in_dir(const char *dir, const char *name)
{
	char *p = tp_sprintf("%s/%s", dir, name);
	char *abs = realpath(p, NULL);
	free(p);
	return abs ? abs : "(missing)";
}

#define USAGE                                                                                  \
	"usage: bench_scale (BUILD_DIR | TAPESTRY FAKE_SNOWFLAKE FAKE_AIRBYTE FAKE_PROXY) "     \
	"[results.json] "                                                                      \
	"[--sizes 100,1000,10000] [--latencies 0,20] [--per-kind-size N] "                     \
	"[--per-kind-latency MS] [--per-kind-only KIND,...] [--airbyte-max N] [--idle-seconds N] [--workdir DIR] [--keep]"

int main(int argc, char **argv)
{
	const char *out_path = "bench/results/scale.json";
	int sizes[8] = {100, 1000, 10000}, nsizes = 3;
	int lats[8] = {0, 20}, nlats = 2;
	int per_kind_size = 1000, per_kind_lat = 20, airbyte_max = 1000000;
	const char *only_kinds = NULL; /* --per-kind-only KIND[,KIND...] */
	int idle_seconds = 5;
	bool keep = false;
	const char *workdir = NULL;
	char *tmpl;
	char *keypriv = NULL, *keypub = NULL;
	json_t *results = json_array(), *per_kind = json_array(), *idle = json_array(), *doc;
	const char *positional[5] = {NULL, NULL, NULL, NULL, NULL};
	char date[40], *text;
	int pos = 0;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--sizes") == 0 && i + 1 < argc)
			nsizes = parse_list(sizes, 8, argv[++i]);
		else if (strcmp(argv[i], "--latencies") == 0 && i + 1 < argc)
			nlats = parse_list(lats, 8, argv[++i]);
		else if (strcmp(argv[i], "--per-kind-size") == 0 && i + 1 < argc)
			per_kind_size = atoi(argv[++i]);
		else if (strcmp(argv[i], "--per-kind-only") == 0 && i + 1 < argc)
			only_kinds = argv[++i];
		else if (strcmp(argv[i], "--per-kind-latency") == 0 && i + 1 < argc)
			per_kind_lat = atoi(argv[++i]);
		else if (strcmp(argv[i], "--airbyte-max") == 0 && i + 1 < argc)
			airbyte_max = atoi(argv[++i]);
		else if (strcmp(argv[i], "--idle-seconds") == 0 && i + 1 < argc)
			idle_seconds = atoi(argv[++i]);
		else if (strcmp(argv[i], "--keep") == 0)
			keep = true;
		else if (strcmp(argv[i], "--workdir") == 0 && i + 1 < argc)
			workdir = argv[++i];
		else if (pos < 5 && argv[i][0] != '-')
			positional[pos++] = argv[i];
		else
			die(USAGE);
	}
	if (pos >= 1 && is_dir(positional[0])) {
		/* a build directory: the binaries are its targets */
		bin_tapestry = in_dir(positional[0], "tapestry");
		bin_sf = in_dir(positional[0], "fake_snowflake");
		bin_ab = in_dir(positional[0], "fake_airbyte");
		bin_proxy = in_dir(positional[0], "fake_proxy");
		bin_floor = in_dir(positional[0], "bench_lib_floor");
		if (access(bin_floor, X_OK) != 0)
			bin_floor = NULL;
		if (positional[1])
			out_path = positional[1];
		pos = 4;
	} else {
		bin_tapestry = positional[0];
		bin_sf = positional[1];
		bin_ab = positional[2];
		bin_proxy = positional[3];
		if (positional[4])
			out_path = positional[4];
	}
	if (pos < 4 || access(bin_tapestry, X_OK) || access(bin_sf, X_OK) ||
	    access(bin_ab, X_OK) || access(bin_proxy, X_OK))
		die(USAGE " (the fakes are built with TAPESTRY_TESTS=ON)");
	if (workdir)
		mkdir(workdir, 0755);
	tmpl = tp_sprintf("%s/tapestry-bench-scale-XXXXXX",
			  workdir ? workdir
				  : getenv("TMPDIR") && getenv("TMPDIR")[0] ? getenv("TMPDIR") : "/tmp");
	if (!(root = mkdtemp(tmpl)))
		die("cannot make a work directory");
	signal(SIGPIPE, SIG_IGN);
	make_keys(root, &keypriv, &keypub);
	setenv("BENCH_AIRBYTE_CLIENT_ID", AB_CLIENT_ID, 1);
	setenv("BENCH_AIRBYTE_CLIENT_SECRET", AB_CLIENT_SECRET, 1);
	setenv("AWS_REGION", "us-east-1", 1);
	unsetenv("AWS_SESSION_TOKEN");
	unsetenv("AWS_PROFILE");
	unsetenv("AWS_ENDPOINT_URL");
	unsetenv("TAPESTRY_LOCAL_FAULTS");
	unsetenv("TAPESTRY_ENDPOINT_GROUPAROO");

	idle_minimal(idle_seconds, idle);
	printf("\nmix: a fifth each of aws.ssm_parameter (moto_server), snowflake.role and "
	       "snowflake.database (fake_snowflake), airbyte.source and airbyte.destination "
	       "(fake_airbyte), all independent; --concurrency=%d; each backend behind "
	       "fake_proxy --latency-ms <lat>; aws and airbyte max_concurrency %d\n",
	       CONCURRENCY, CONCURRENCY);
	print_header();
	for (int si = 0; si < nsizes; si++)
		for (int li = 0; li < nlats; li++)
			run_rows(sizes[si] - sizes[si] % NKINDS, lats[li],
				 sizes[si] > airbyte_max ? &mix_no_airbyte : &full_mix, keypriv,
				 keypub, li == 0, idle_seconds, results, idle);
	if (per_kind_size > 0) {
		printf("\none kind at a time (where the cold apply's time goes)\n");
		print_header();
		for (int k = 0; k < NKINDS; k++) {
			mix_pattern one = {kind_names[k], 1, {k, 0, 0, 0, 0}};
			if (only_kinds && !strstr(only_kinds, kind_names[k]))
				continue;
			run_rows(per_kind_size, per_kind_lat, &one, keypriv, keypub, false,
				 idle_seconds, per_kind, idle);
		}
	}
	tp_clock_format_rfc3339(date, sizeof(date), tp_clock_now_ms());
	doc = json_pack("{s:s,s:s,s:i,s:i,s:s,s:o,s:o,s:o}", "benchmark", "scale", "date", date,
			"cpus", (int)sysconf(_SC_NPROCESSORS_ONLN), "concurrency", CONCURRENCY, "mix",
			"a fifth each of aws.ssm_parameter (moto_server), snowflake.role, "
			"snowflake.database (fake_snowflake), airbyte.source, airbyte.destination "
			"(fake_airbyte); independent; every backend behind fake_proxy; aws and "
			"airbyte max_concurrency = concurrency; above airbyte_max resources "
			"Airbyte's share goes to the Snowflake kinds",
			"results", results, "per_kind", per_kind, "idle", idle);
	text = json_dumps(doc, JSON_INDENT(2) | JSON_SORT_KEYS);
	json_decref(doc);
	write_file(out_path, text);
	printf("results written to %s\n", out_path);
	free(text);
	free(keypriv);
	free(keypub);
	if (keep) {
		printf("work directory kept: %s\n", root);
	} else {
		char *cmd = tp_sprintf("rm -rf '%s'", root);
		if (sh(cmd) != 0)
			fprintf(stderr, "bench: could not remove %s\n", root);
		free(cmd);
	}
	free(tmpl);
	return 0;
}
