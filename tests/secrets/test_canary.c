/*
 * Secrets canary: the kickstart pipeline runs live on the embedded stack
 * (scripts/demo/stack.sh: moto_server, the Snowflake and Airbyte fakes, the real Grouparoo 0.9)
 * with every secret it reads replaced by a canary value of its own, "CANARY-<random hex>-<name>",
 * and afterwards no canary may appear anywhere Tapestry writes or answers: the stdout and stderr
 * of every command, the controller's log, every HTTP endpoint of `tapestry run`, the state
 * database (raw bytes of the file and its -wal/-shm, and its `sqlite3 .dump`), everything else
 * under the state directory (the Git mirror, the installation key) and the temporary files
 * Tapestry leaves behind — neither as written nor base64- or URL-encoded.
 *
 * The canaries cover every secret scheme and every provider:
 *  - env: every ${secret:env:NAME} of the repository (GROUPAROO_API_KEY excepted: it must be the
 *    key the running Grouparoo was started with, a random value stack.sh made, which is scanned
 *    for like a canary), flowing env → SSM SecureString → ${secret:ssm:…} → Airbyte source and
 *    destination configuration, the Snowflake user's password and the Grouparoo app's options;
 *  - file: a canary file feeding an SSM SecureString and a local.file's content (plus the two
 *    private keys of the kickstart, scanned for by lines of their PEM bodies);
 *  - ssm: the parameters the pipeline writes and reads back, and the Airbyte application's
 *    credentials stack.sh stored in SSM (the fake Airbyte takes its credentials on its command
 *    line only, so they keep stack.sh's random values and are scanned for as they are);
 *  - a CloudFormation stack with a NoEcho parameter and a plain one, both fed by secrets;
 *  - the controller's own secrets: the GitHub webhook secret, the API token and the commit
 *    status token (posted to a local stand-in for GitHub).
 * Then: validate, plan in every format (with and without state, --refresh, a pull request's
 * plan), a cold apply, a no-op apply, a rotation of secrets (env and file) applied, and one
 * `tapestry run` that applies what the rotation left (the readers of rotated SSM parameters),
 * takes a signed webhook and answers every endpoint; then status, history and events.
 *
 * That the canaries really reached their backends is checked at each backend: SSM values in
 * moto (also those the canary stack itself writes), the Airbyte fake's stored configuration
 * (secrets in clear), the Snowflake statements that set the password (recorded by a forwarding
 * proxy in front of the fake, which keeps only that the user has a password), Grouparoo's own
 * database, the rendered local file and the Authorization header of the commit status.
 *
 * Needs what stack.sh needs (moto_server, Node.js and the npm registry or the Grouparoo cache,
 * python3, openssl, jq, curl, git, sqlite3); without one the test fails and says which.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "support/moto.h"
#include "support/support.h"
#include "util/util.h"

#ifndef TP_BUILD_DIR
#define TP_BUILD_DIR "build"
#endif

#define STACK_UP_MS  (960 * 1000) /* a first Grouparoo install from npm takes minutes */
#define COMMAND_MS   (120 * 1000)
#define SYNC_WAIT_MS (120 * 1000)
#define FILE_MAX     ((size_t)512 << 20)

/* ---------------------------------------------------------------- what is scanned, for what */

typedef struct {
	char *label;
	char *data;
	size_t len;
} source;

typedef struct {
	char *label;
	char *value;
} needle;

static struct {
	char *tmp, *stack, *repo, *state_dir, *db, *secrets, *rendered, *tp_tmp, *ctl_log;
	char *base, *head; /* the stack's first commit, and the one adding the canary resources */
	const char *walk_label; /* prefix of the sources add_tree makes */
	bool stack_up;
	pid_t ctl;
	pid_t reaper;  /* stops the stack if this process dies without its teardown (timeout) */
	int reaper_fd; /* write end of the reaper's pipe: closing it (or dying) wakes it */
	ts_aws_server *sf_proxy, *github;
	source *src;
	size_t nsrc;
	needle *nd;
	size_t nnd;
	char hex[13];
	char *env_extra[4];
} T;

static void add_source(const char *label, const char *data, size_t len)
{
	T.src = realloc(T.src, (T.nsrc + 1) * sizeof(*T.src));
	cr_assert_not_null(T.src);
	T.src[T.nsrc].label = tp_strdup(label);
	T.src[T.nsrc].data = malloc(len + 1);
	cr_assert_not_null(T.src[T.nsrc].data);
	memcpy(T.src[T.nsrc].data, data, len);
	T.src[T.nsrc].data[len] = '\0';
	T.src[T.nsrc].len = len;
	T.nsrc++;
}

static void add_needle(const char *label, const char *value)
{
	cr_assert(strlen(value) >= 16, "needle %s is too short to scan for", label);
	T.nd = realloc(T.nd, (T.nnd + 1) * sizeof(*T.nd));
	cr_assert_not_null(T.nd);
	T.nd[T.nnd].label = tp_strdup(label);
	T.nd[T.nnd].value = tp_strdup(value);
	T.nnd++;
}

static char *canary(const char *name)
{
	return tp_sprintf("CANARY-%s-%s", T.hex, name);
}

/* A secret the pipeline reads from the environment: exported for every process started from
 * here on, and scanned for. */
static void set_env_secret(const char *name, const char *value)
{
	char *label = tp_sprintf("${secret:env:%s}", name);
	cr_assert(setenv(name, value, 1) == 0);
	add_needle(label, value);
	free(label);
}

/* ---------------------------------------------------------------- the encodings scanned for */

typedef struct {
	const char *form;
	char *text;
} pattern;

#define MAX_PATTERNS 12

/* The part of base64(k filler bytes + value) that depends on value's bytes alone: whatever the
 * alignment of the value inside a larger encoded blob, one of k = 0, 1, 2 matches it. */
static char *b64_fragment(const char *value, int k, bool url)
{
	size_t n = strlen(value), first, last;
	tp_buf in, out;
	char *frag;
	tp_buf_init(&in, 0);
	tp_buf_init(&out, 0);
	tp_buf_put(&in, "\0\0", (size_t)k);
	tp_buf_put(&in, value, n);
	if (url)
		tp_base64url_encode(&out, in.ptr, in.len);
	else
		tp_base64_encode(&out, in.ptr, in.len);
	first = ((size_t)k * 8 + 5) / 6;
	last = ((size_t)k + n) * 8 / 6 - 1; /* last char whose 6 bits all lie in value */
	frag = tp_strndup(out.ptr + first, last - first + 1);
	tp_buf_free(&in);
	tp_buf_free(&out);
	return frag;
}

static char *url_encoded(const char *value, bool lower)
{
	tp_buf b;
	tp_buf_init(&b, 0);
	for (const unsigned char *p = (const unsigned char *)value; *p; p++) {
		if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
		    (*p >= '0' && *p <= '9') || *p == '-' || *p == '_' || *p == '.' || *p == '~')
			tp_buf_putc(&b, (char)*p);
		else
			tp_buf_printf(&b, lower ? "%%%02x" : "%%%02X", *p);
	}
	return tp_buf_detach(&b);
}

static void push_pattern(pattern *pats, size_t *n, const char *form, char *text)
{
	for (size_t i = 0; i < *n; i++) {
		if (strcmp(pats[i].text, text) == 0) {
			free(text);
			return;
		}
	}
	cr_assert(*n < MAX_PATTERNS);
	pats[*n].form = form;
	pats[*n].text = text;
	(*n)++;
}

static size_t patterns_of(pattern *pats, const char *value)
{
	static const char *const b64_forms[] = {"base64", "base64 (offset 1)", "base64 (offset 2)"};
	static const char *const b64u_forms[] = {"base64url", "base64url (offset 1)",
						 "base64url (offset 2)"};
	size_t n = 0;
	push_pattern(pats, &n, "as is", tp_strdup(value));
	push_pattern(pats, &n, "URL-encoded", url_encoded(value, false));
	push_pattern(pats, &n, "URL-encoded (lower-case hex)", url_encoded(value, true));
	push_pattern(pats, &n, "JSON with escaped slashes", ts_replace(value, "/", "\\/"));
	for (int k = 0; k < 3; k++) {
		push_pattern(pats, &n, b64_forms[k], b64_fragment(value, k, false));
		push_pattern(pats, &n, b64u_forms[k], b64_fragment(value, k, true));
	}
	return n;
}

static void patterns_free(pattern *pats, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(pats[i].text);
}

/* Every place a needle shows up in a source: "  <source>: <needle> <form> (N times) …context…" */
static void scan_one(tp_buf *report, const source *s, const needle *nd)
{
	pattern pats[MAX_PATTERNS];
	size_t np = patterns_of(pats, nd->value);
	for (size_t i = 0; i < np; i++) {
		size_t plen = strlen(pats[i].text), hits = 0, first = 0;
		const char *p = s->data, *end = s->data + s->len;
		while (p < end) {
			const char *h = memmem(p, (size_t)(end - p), pats[i].text, plen);
			if (!h)
				break;
			if (hits++ == 0)
				first = (size_t)(h - s->data);
			p = h + 1;
		}
		if (!hits)
			continue;
		{
			size_t from = first > 40 ? first - 40 : 0;
			size_t to = first + plen + 40 < s->len ? first + plen + 40 : s->len;
			tp_buf_printf(report, "  %s: %s %s (%zu time%s, first at byte %zu): \"",
				      s->label, nd->label, pats[i].form, hits, hits == 1 ? "" : "s",
				      first);
			for (size_t j = from; j < to; j++) {
				unsigned char ch = (unsigned char)s->data[j];
				tp_buf_putc(report, ch >= 0x20 && ch < 0x7f ? (char)ch : '.');
			}
			tp_buf_puts(report, "\"\n");
		}
	}
	patterns_free(pats, np);
}

static char *scan(const source *srcs, size_t nsrc, const needle *nds, size_t nnd)
{
	tp_buf report;
	tp_buf_init(&report, 0);
	for (size_t i = 0; i < nsrc; i++)
		for (size_t j = 0; j < nnd; j++)
			scan_one(&report, &srcs[i], &nds[j]);
	return tp_buf_detach(&report);
}

/* The scanner itself finds what it must: a value inside a larger base64 blob at each
 * alignment, URL-encoded, and as is inside binary data. */
static void check_scanner(void)
{
	needle nd = {"probe", "CANARY-0123456789ab-PROBE+/=value"};
	for (int k = 0; k < 3; k++) {
		tp_buf in, out;
		source s = {"probe source", NULL, 0};
		char *report;
		tp_buf_init(&in, 0);
		tp_buf_init(&out, 0);
		tp_buf_put(&in, "xyz", (size_t)k);
		tp_buf_printf(&in, "{\"password\":\"%s\"}", nd.value);
		tp_base64_encode(&out, in.ptr, in.len);
		s.data = out.ptr;
		s.len = out.len;
		report = scan(&s, 1, &nd, 1);
		cr_assert(strstr(report, "base64") != NULL,
			  "the scanner misses a base64-encoded value at offset %d", k);
		free(report);
		tp_buf_free(&in);
		tp_buf_free(&out);
	}
	{
		char bin[] = "\x01\x02q=CANARY-0123456789ab-PROBE%2B%2F%3Dvalue&\x00tail";
		source s = {"probe source", bin, sizeof(bin) - 1};
		char *report = scan(&s, 1, &nd, 1);
		cr_assert(strstr(report, "URL-encoded") != NULL,
			  "the scanner misses a URL-encoded value");
		free(report);
	}
	{
		char bin[] = "\x00\x00\x13\x01"
			     "CANARY-0123456789ab-PROBE+/=value\x00";
		source s = {"probe source", bin, sizeof(bin) - 1};
		source clean = {"clean source", bin, 4};
		char *report = scan(&s, 1, &nd, 1);
		cr_assert(strstr(report, "as is") != NULL,
			  "the scanner misses a raw value in binary");
		free(report);
		report = scan(&clean, 1, &nd, 1);
		cr_assert_str_empty(report, "the scanner reports what is not there: %s", report);
		free(report);
	}
}

/* ---------------------------------------------------------------- processes */

/* Runs argv (PATH lookup) in its own process group with stdout and stderr captured together,
 * within limit_ms (then the group is killed). Returns the exit status (128+signal). */
static int run_argv(const char *const *argv, int64_t limit_ms, char **out)
{
	int fds[2], status = 0;
	pid_t pid;
	tp_buf b;
	int64_t deadline = tp_clock_mono_ms() + limit_ms;
	bool killed = false;

	tp_buf_init(&b, FILE_MAX);
	cr_assert(pipe(fds) == 0);
	pid = fork();
	cr_assert(pid >= 0);
	if (pid == 0) {
		setpgid(0, 0);
		dup2(fds[1], 1);
		dup2(fds[1], 2);
		close(fds[0]);
		close(fds[1]);
		execvp(argv[0], (char *const *)(uintptr_t)argv);
		_exit(127);
	}
	close(fds[1]);
	/* for the reaper: a `stack.sh up` still running when this process dies is stopped first */
	if (T.tmp) {
		char *pg = tp_sprintf("%d", (int)pid);
		ts_write(T.tmp, "running.pgid", pg);
		free(pg);
	}
	for (;;) {
		struct pollfd p = {fds[0], POLLIN, 0};
		char chunk[8192];
		ssize_t n;
		if (!killed && tp_clock_mono_ms() > deadline) {
			kill(-pid, SIGTERM);
			usleep(500000);
			kill(-pid, SIGKILL);
			killed = true;
		}
		if (poll(&p, 1, 500) <= 0)
			continue;
		n = read(fds[0], chunk, sizeof(chunk));
		if (n > 0)
			tp_buf_put(&b, chunk, (size_t)n);
		else if (n == 0 || errno != EINTR)
			break;
	}
	close(fds[0]);
	waitpid(pid, &status, 0);
	if (T.tmp) {
		char *pg = tp_sprintf("%s/running.pgid", T.tmp);
		unlink(pg);
		free(pg);
	}
	if (out)
		*out = tp_buf_detach(&b);
	tp_buf_free(&b);
	if (killed)
		return 124;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static char *stack_script(void)
{
	return ts_source_path("scripts/demo/stack.sh");
}

/* A variable of DIR/stack.env, as a shell sourcing it sees it. */
static char *stack_var(const char *name)
{
	char *env = tp_sprintf("%s/stack.env", T.stack);
	const char *argv[] = {
	    "bash", "-c", "source \"$1\" >/dev/null && printf '%s' \"${!2-}\"", "stack-var", env,
	    name,   NULL};
	char *out = NULL;
	int st = run_argv(argv, 10000, &out);
	cr_assert(st == 0, "reading %s from %s failed: %s", name, env, out);
	free(env);
	return out;
}

/* Runs tapestry with args; its stdout and stderr become scanned sources. The exit status must
 * be want. Returns stdout (caller frees). */
static char *tap(const char *label, int want, const char *const *args)
{
	ts_result r = ts_run_tapestry_for(args, (const char *const *)T.env_extra, COMMAND_MS);
	char *l_out = tp_sprintf("`tapestry %s` stdout", label);
	char *l_err = tp_sprintf("`tapestry %s` stderr", label);
	char *out;
	add_source(l_out, r.out, strlen(r.out));
	add_source(l_err, r.err, strlen(r.err));
	cr_assert(r.status == want,
		  "`tapestry %s` exited %d, expected %d\nstdout:\n%s\nstderr:\n%s", label, r.status,
		  want, r.out, r.err);
	out = r.out;
	r.out = NULL;
	ts_result_free(&r);
	free(l_out);
	free(l_err);
	return out;
}

static void tap_expect(const char *label, int want, const char *const *args, const char *expect)
{
	char *out = tap(label, want, args);
	cr_assert(strstr(out, expect) != NULL, "`tapestry %s` does not say \"%s\":\n%s", label,
		  expect, out);
	free(out);
}

/* ---------------------------------------------------------------- files */

static int walk_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)ftw;
	if (flag == FTW_F && S_ISREG(st->st_mode)) {
		tp_buf b;
		tp_buf_init(&b, FILE_MAX);
		if (tp_file_read(&b, path, FILE_MAX) == 0) {
			char *label = tp_sprintf("%s %s", T.walk_label, path);
			add_source(label, b.ptr ? b.ptr : "", b.len);
			free(label);
		}
		tp_buf_free(&b);
	}
	return 0;
}

/* Every regular file under dir becomes a source (labelled by label and its path). */
static void add_tree(const char *label, const char *dir)
{
	T.walk_label = label;
	nftw(dir, walk_entry, 16, FTW_PHYS);
}

static char *read_file_or_fail(const char *path)
{
	char *s = ts_read(path);
	cr_assert_not_null(s, "cannot read %s", path);
	return s;
}

/* ---------------------------------------------------------------- HTTP */

static json_t *http_json(const char *method, const char *url, const char *const *headers,
			 const char *body, long want)
{
	ts_http_result r = ts_http(method, url, headers, body);
	json_t *v = NULL;
	cr_assert(r.status == want, "%s %s: HTTP %ld (expected %ld): %s", method, url, r.status,
		  want, r.body ? r.body : "");
	cr_assert(tp_json_parse(&v, r.body, strlen(r.body)) == 0, "%s %s: not JSON: %s", method,
		  url, r.body);
	ts_http_result_free(&r);
	return v;
}

/* One SSM call to moto (the stack's moto does not enforce signatures). */
static json_t *ssm(const char *target, const char *body)
{
	char *url = stack_var("TAPESTRY_ENDPOINT_AWS");
	char *key = stack_var("AWS_ACCESS_KEY_ID");
	char *h_target = tp_sprintf("X-Amz-Target: AmazonSSM.%s", target);
	char *h_auth =
	    tp_sprintf("Authorization: AWS4-HMAC-SHA256 Credential=%s/20260101/us-east-1/"
		       "ssm/aws4_request, SignedHeaders=host, Signature=0",
		       key);
	const char *headers[] = {h_target, "Content-Type: application/x-amz-json-1.1", h_auth,
				 NULL};
	json_t *v = http_json("POST", url, headers, body, 200);
	free(url);
	free(key);
	free(h_target);
	free(h_auth);
	return v;
}

/* Every parameter under /rainshield, decrypted: {name: value}. */
static json_t *ssm_values(void)
{
	json_t *all = json_object();
	char *next = NULL;
	do {
		json_t *req = json_pack("{s:s,s:b,s:b,s:i}", "Path", "/rainshield", "Recursive", 1,
					"WithDecryption", 1, "MaxResults", 10);
		char *body, *tok;
		json_t *page, *p;
		size_t i;
		if (next)
			json_object_set_new(req, "NextToken", json_string(next));
		body = json_dumps(req, JSON_COMPACT);
		page = ssm("GetParametersByPath", body);
		json_array_foreach(json_object_get(page, "Parameters"), i, p)
		    json_object_set(all, tp_json_get_str(p, "Name"), json_object_get(p, "Value"));
		tok = tp_json_get_str(page, "NextToken")
			  ? tp_strdup(tp_json_get_str(page, "NextToken"))
			  : NULL;
		free(next);
		next = tok;
		json_decref(page);
		json_decref(req);
		free(body);
	} while (next);
	return all;
}

/* ---------------------------------------------------------------- the controller */

/* GET path from the controller (200 expected); the body becomes a scanned source. Returns it
 * parsed when it is JSON, else NULL. */
static json_t *ctl_get(int port, const char *path)
{
	char *url = tp_sprintf("http://127.0.0.1:%d%s", port, path);
	ts_http_result r = ts_http("GET", url, NULL, NULL);
	char *label = tp_sprintf("GET %s", path);
	json_t *v = NULL;
	cr_assert(r.status == 200, "GET %s: HTTP %ld: %s", url, r.status, r.body ? r.body : "");
	add_source(label, r.body, strlen(r.body));
	if (r.body[0] == '{' || r.body[0] == '[')
		tp_json_parse(&v, r.body, strlen(r.body));
	ts_http_result_free(&r);
	free(label);
	free(url);
	return v;
}

/* Waits until the controller has finished `syncs` syncs; the last one must be "applied". */
static void wait_syncs(int port, int syncs)
{
	int64_t deadline = tp_clock_mono_ms() + SYNC_WAIT_MS;
	char *url = tp_sprintf("http://127.0.0.1:%d/api/status", port);
	for (;;) {
		ts_http_result r = ts_http("GET", url, NULL, NULL);
		json_t *s = NULL;
		bool done = false;
		if (r.status == 200 && tp_json_parse(&s, r.body, strlen(r.body)) == 0 &&
		    json_integer_value(json_object_get(s, "syncs")) >= syncs) {
			const char *result =
			    json_string_value(tp_json_path_get(s, "last_sync.result"));
			cr_assert(result && strcmp(result, "applied") == 0,
				  "the controller's sync %d ended \"%s\": %s\ncontroller log:\n%s",
				  syncs, result ? result : "?", r.body, ts_read(T.ctl_log));
			done = true;
		}
		json_decref(s);
		ts_http_result_free(&r);
		if (done)
			break;
		if (waitpid(T.ctl, NULL, WNOHANG) == T.ctl) {
			char *log = ts_read(T.ctl_log);
			T.ctl = -1;
			cr_assert_fail("the controller exited before sync %d\nlog:\n%s", syncs,
				       log ? log : "");
		}
		if (tp_clock_mono_ms() > deadline) {
			char *log = ts_read(T.ctl_log);
			cr_assert_fail(
			    "the controller did not finish sync %d within %d s\nlog:\n%s", syncs,
			    SYNC_WAIT_MS / 1000, log ? log : "");
		}
		usleep(100000);
	}
	free(url);
}

/* SIGTERM, then the exit status (ASan's leak check runs at exit, so it can take a while). */
static int stop_controller(void)
{
	int st = 0;
	pid_t pid = T.ctl;
	T.ctl = -1;
	kill(pid, SIGTERM);
	for (int i = 0; i < 600; i++) {
		if (waitpid(pid, &st, WNOHANG) == pid)
			return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
		usleep(100000);
	}
	kill(pid, SIGKILL);
	waitpid(pid, &st, 0);
	return 128 + SIGKILL;
}

/* ---------------------------------------------------------------- the suite */

/*
 * Criterion kills a test that runs past its timeout, and then no teardown runs; the stack's
 * servers live in their own process groups and would outlive it. The reaper is a shell that
 * waits for end-of-file on a pipe whose only write end this process holds (close-on-exec, so
 * no other child inherits it): when this process exits, however it exits, the reaper kills
 * the process group of a command still running (a `stack.sh up` in progress), stops the stack
 * by the PIDs stack.sh recorded and removes the temporary directory.
 */
static void start_reaper(void)
{
	int fds[2];
	char *script = stack_script();
	pid_t pid;
	cr_assert(pipe2(fds, O_CLOEXEC) == 0);
	pid = fork();
	cr_assert(pid >= 0);
	if (pid == 0) {
		int null = open("/dev/null", O_RDWR);
		dup2(fds[0], 0);
		dup2(null, 1);
		dup2(null, 2);
		for (int fd = 3; fd < 1024; fd++)
			close(fd);
		setsid();
		execlp(
		    "bash", "bash", "-c",
		    "cat >/dev/null; "
		    "if p=$(cat \"$2/running.pgid\" 2>/dev/null); then kill -KILL -- \"-$p\"; fi; "
		    "bash \"$0\" down \"$1\"; "
		    "case \"$2\" in */tapestry-test-*) rm -rf -- \"$2\";; esac",
		    script, T.stack, T.tmp, (char *)NULL);
		_exit(127);
	}
	close(fds[0]);
	T.reaper = pid;
	T.reaper_fd = fds[1];
	free(script);
}

static void setup(void)
{
	uint8_t rnd[6];
	memset(&T, 0, sizeof(T));
	T.ctl = -1;
	ts_git_env();
	T.tmp = ts_tmpdir();
	T.stack = tp_sprintf("%s/stack", T.tmp);
	T.state_dir = tp_sprintf("%s/state", T.tmp);
	T.db = tp_sprintf("%s/state.db", T.state_dir);
	T.secrets = tp_sprintf("%s/secrets", T.tmp);
	T.rendered = tp_sprintf("%s/rendered", T.tmp);
	T.tp_tmp = tp_sprintf("%s/tapestry-tmp", T.tmp);
	T.ctl_log = tp_sprintf("%s/controller.log", T.tmp);
	cr_assert(mkdir(T.state_dir, 0700) == 0 && mkdir(T.secrets, 0700) == 0 &&
		  mkdir(T.rendered, 0700) == 0 && mkdir(T.tp_tmp, 0700) == 0);
	cr_assert(tp_random_bytes(rnd, sizeof(rnd)) == 0);
	tp_hex_encode(T.hex, rnd, sizeof(rnd));
	/* every tapestry process: its temporary files where they are scanned, every log level */
	T.env_extra[0] = tp_sprintf("TMPDIR=%s", T.tp_tmp);
	T.env_extra[1] = tp_strdup("TAPESTRY_LOG_LEVEL=debug");
	T.env_extra[2] = tp_strdup("NO_COLOR=1");
	T.env_extra[3] = NULL;
	start_reaper();
}

static void teardown(void)
{
	if (T.ctl > 0)
		ts_stop_pid(T.ctl);
	if (T.stack_up) {
		char *script = stack_script();
		const char *argv[] = {"bash", script, "down", T.stack, NULL};
		char *out = NULL;
		run_argv(argv, 60000, &out);
		free(out);
		free(script);
	}
	if (T.reaper > 0) {
		/* nothing left for it to stop: it runs `down` again and exits */
		bool reaped = false;
		close(T.reaper_fd);
		for (int i = 0; i < 600 && !reaped; i++) {
			reaped = waitpid(T.reaper, NULL, WNOHANG) == T.reaper;
			if (!reaped)
				usleep(100000);
		}
		if (!reaped) {
			kill(T.reaper, SIGKILL);
			waitpid(T.reaper, NULL, 0);
		}
	}
	if (T.sf_proxy)
		ts_aws_server_stop(T.sf_proxy);
	if (T.github)
		ts_aws_server_stop(T.github);
	ts_rmtree(T.tmp);
	for (size_t i = 0; i < T.nsrc; i++) {
		free(T.src[i].label);
		free(T.src[i].data);
	}
	for (size_t i = 0; i < T.nnd; i++) {
		free(T.nd[i].label);
		free(T.nd[i].value);
	}
	for (size_t i = 0; i < 3; i++)
		free(T.env_extra[i]);
	free(T.src);
	free(T.nd);
	free(T.tmp);
	free(T.stack);
	free(T.repo);
	free(T.base);
	free(T.head);
	free(T.state_dir);
	free(T.db);
	free(T.secrets);
	free(T.rendered);
	free(T.tp_tmp);
	free(T.ctl_log);
}

TestSuite(secrets, .init = setup, .fini = teardown, .timeout = 1200);

/* ---------------------------------------------------------------- the pipeline's secrets */

/* Added to the kickstart: a stack with a NoEcho and a plain parameter fed by secrets (the
 * template writes them to SSM, so their arrival is checked there), an SSM SecureString from a
 * file, and a local.file rendering a file secret and an SSM secret the pipeline wrote. */
static const char canary_template[] =
    "AWSTemplateFormatVersion: \"2010-09-09\"\n"
    "Description: Secrets canary - template parameters fed by secrets\n"
    "Parameters:\n"
    "  HiddenSecret:\n"
    "    Type: String\n"
    "    NoEcho: true\n"
    "  PlainSecret:\n"
    "    Type: String\n"
    "Resources:\n"
    "  HiddenCopy:\n"
    "    Type: AWS::SSM::Parameter\n"
    "    Properties:\n"
    "      Name: /rainshield/canary/stack_noecho\n"
    "      Type: String\n"
    "      Value: !Ref HiddenSecret\n"
    "  PlainCopy:\n"
    "    Type: AWS::SSM::Parameter\n"
    "    Properties:\n"
    "      Name: /rainshield/canary/stack_plain\n"
    "      Type: String\n"
    "      Value: !Ref PlainSecret\n";

static const char canary_resources[] = "kind: aws.stack\n"
				       "name: canary\n"
				       "spec:\n"
				       "  stack_name: rainshield-canary\n"
				       "  template: templates/canary.yaml\n"
				       "  parameters:\n"
				       "    HiddenSecret: ${secret:env:CANARY_STACK_NOECHO}\n"
				       "    PlainSecret: ${secret:env:CANARY_STACK_PLAIN}\n"
				       "  tags: {project: rainshield}\n"
				       "---\n"
				       "kind: aws.ssm_parameter\n"
				       "name: canary-file\n"
				       "spec:\n"
				       "  name: /rainshield/canary/file\n"
				       "  type: SecureString\n"
				       "  value: ${secret:file:@SECRETS@/ssm-value}\n"
				       "  description: a file secret stored in SSM\n"
				       "---\n"
				       "kind: local.file\n"
				       "name: canary-env\n"
				       "spec:\n"
				       "  path: @RENDERED@/canary.env\n"
				       "  mode: \"0600\"\n"
				       "  content: |\n"
				       "    FILE_SECRET=${secret:file:@SECRETS@/local-value}\n"
				       "    SSM_SECRET=${secret:ssm:/rainshield/canary/file}\n"
				       "depends_on: [aws.ssm_parameter/canary-file]\n";

typedef struct {
	tp_strlist env, file, ssm;
} secret_refs;

/* Every ${secret:SCHEME:LOCATION} in the YAML text outside comments. */
static void collect_refs(secret_refs *refs, const char *text)
{
	const char *line = text;
	while (*line) {
		size_t len = strcspn(line, "\n");
		char *l = tp_strndup(line, len), *p, *hash;
		/* a comment starts at '#' at the start of a line or after a blank */
		for (hash = strchr(l, '#'); hash; hash = strchr(hash + 1, '#')) {
			if (hash == l || hash[-1] == ' ' || hash[-1] == '\t') {
				*hash = '\0';
				break;
			}
		}
		for (p = strstr(l, "${secret:"); p; p = strstr(p + 1, "${secret:")) {
			const char *scheme = p + 9;
			size_t slen = strspn(scheme, "abcdefghijklmnopqrstuvwxyz");
			const char *loc = scheme + slen + 1;
			size_t llen = strcspn(loc, "} \t");
			tp_strlist *list = NULL;
			char *location;
			if (scheme[slen] != ':' || loc[llen] != '}' || llen == 0)
				continue;
			if (slen == 3 && strncmp(scheme, "env", 3) == 0)
				list = &refs->env;
			else if (slen == 4 && strncmp(scheme, "file", 4) == 0)
				list = &refs->file;
			else if (slen == 3 && strncmp(scheme, "ssm", 3) == 0)
				list = &refs->ssm;
			cr_assert_not_null(list, "unknown secret scheme in: %s", l);
			location = tp_strndup(loc, llen);
			if (!tp_strlist_contains(list, location))
				tp_strlist_push(list, location);
			free(location);
		}
		free(l);
		line += len + (line[len] == '\n');
	}
}

/* The secret references of tapestry.yaml and of every YAML file under resources/. */
static void collect_repo_refs(secret_refs *refs)
{
	char *dir = tp_sprintf("%s/resources", T.repo);
	char *text = ts_read_in(T.repo, "tapestry.yaml");
	DIR *d = opendir(dir);
	struct dirent *e;
	size_t files = 0;
	cr_assert_not_null(text, "%s/tapestry.yaml is missing", T.repo);
	cr_assert_not_null(d, "%s: %s", dir, strerror(errno));
	collect_refs(refs, text);
	free(text);
	while ((e = readdir(d)) != NULL) {
		size_t n = strlen(e->d_name);
		if (n < 6 || strcmp(e->d_name + n - 5, ".yaml") != 0)
			continue;
		text = ts_read_in(dir, e->d_name);
		cr_assert_not_null(text, "%s/%s", dir, e->d_name);
		collect_refs(refs, text);
		free(text);
		files++;
	}
	closedir(d);
	cr_assert(files >= 2, "%s holds %zu resource files", dir, files);
	free(dir);
}

/* A file secret as needles: a canary file as a whole; a PEM key by two lines of its body (a
 * leaked key shows them however it is wrapped). */
static void add_file_needles(const char *path)
{
	char *text = read_file_or_fail(path);
	char *label = tp_sprintf("${secret:file:%s}", path);
	if (strncmp(text, "-----BEGIN", 10) == 0) {
		char *save = NULL, *line;
		int n = 0;
		for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
			n++;
			if (n == 3 || n == 12) {
				char *l = tp_sprintf("%s (PEM line %d)", label, n);
				add_needle(l, line);
				free(l);
			}
		}
		cr_assert(n > 12, "%s is not the PEM key expected", path);
	} else {
		size_t len = strlen(text);
		if (len && text[len - 1] == '\n')
			text[len - 1] = '\0';
		add_needle(label, text);
	}
	free(label);
	free(text);
}

/* ---------------------------------------------------------------- backend checks */

static json_t *resource_ids(void)
{
	const char *args[] = {"status", "--state", T.db, "--json", NULL};
	char *out = tap("status --json", 0, args);
	json_t *st = NULL, *r, *ids = json_object();
	size_t i;
	cr_assert(tp_json_parse(&st, out, strlen(out)) == 0, "status --json: %s", out);
	json_array_foreach(json_object_get(st, "resources"), i,
			   r) if (tp_json_get_str(r, "provider_id"))
	    json_object_set_new(ids, tp_json_get_str(r, "address"),
				json_string(tp_json_get_str(r, "provider_id")));
	json_decref(st);
	free(out);
	return ids;
}

static void expect_str(const json_t *root, const char *path, const char *want, const char *what)
{
	const char *got = json_string_value(tp_json_path_get(root, path));
	cr_expect(got && strcmp(got, want) == 0, "%s: %s is \"%s\", not the canary \"%s\"", what,
		  path, got ? got : "(absent)", want);
}

static json_t *airbyte_object(const json_t *ids, const char *address)
{
	char *port = stack_var("AB_PORT");
	const char *id = tp_json_get_str(ids, address);
	char *url;
	json_t *v;
	cr_assert_not_null(id, "%s has no provider id in the state", address);
	url = tp_sprintf("http://127.0.0.1:%s/_fake/object?id=%s", port, id);
	v = http_json("GET", url, NULL, NULL, 200);
	free(url);
	free(port);
	return v;
}

static char *grouparoo_option(const char *app_id, const char *key)
{
	char *data = stack_var("GR_DATA");
	char *uri = tp_sprintf("file:%s/grouparoo.sqlite?mode=ro", data);
	sqlite3 *db = NULL;
	sqlite3_stmt *q = NULL;
	char *value = NULL;
	int rc = sqlite3_open_v2(uri, &db, SQLITE_OPEN_READONLY | SQLITE_OPEN_URI, NULL);
	cr_assert(rc == SQLITE_OK, "cannot open Grouparoo's database %s", uri);
	sqlite3_busy_timeout(db, 5000);
	rc = sqlite3_prepare_v2(db, "SELECT value FROM options WHERE ownerId = ?1 AND key = ?2", -1,
				&q, NULL);
	cr_assert(rc == SQLITE_OK, "Grouparoo's options table: %s", sqlite3_errmsg(db));
	sqlite3_bind_text(q, 1, app_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 2, key, -1, SQLITE_STATIC);
	if (sqlite3_step(q) == SQLITE_ROW && sqlite3_column_text(q, 0))
		value = tp_strdup((const char *)sqlite3_column_text(q, 0));
	sqlite3_finalize(q);
	sqlite3_close(db);
	free(uri);
	free(data);
	return value;
}

/* Whether some request the proxy forwarded to the Snowflake fake carried text. */
static bool snowflake_saw(const char *text)
{
	json_t *reqs = ts_aws_server_requests(T.sf_proxy);
	json_t *r;
	size_t i;
	bool seen = false;
	json_array_foreach(reqs, i, r)
	{
		const char *body = tp_json_get_str(r, "body");
		seen = seen || (body && strstr(body, text));
	}
	json_decref(reqs);
	return seen;
}

/* ---------------------------------------------------------------- the steps */

/* The stack, the canary resources committed on top of the kickstart, every secret of the
 * repository replaced by a canary (and registered as a needle). */
static void bring_up(secret_refs *refs)
{
	char *script = stack_script(), *out = NULL, *text, *endpoint, *url;
	const char *argv[] = {"bash",       script,        "up",       T.stack, "--build",
			      TP_BUILD_DIR, "--grouparoo", "required", NULL};
	static const char *const copied[] = {"AWS_ACCESS_KEY_ID",
					     "AWS_SECRET_ACCESS_KEY",
					     "AWS_REGION",
					     "TAPESTRY_ENDPOINT_AWS",
					     "TAPESTRY_ENDPOINT_AIRBYTE",
					     "TAPESTRY_ENDPOINT_GROUPAROO",
					     NULL};
	char *gr_key, *ab_id, *ab_secret;
	int st;

	T.stack_up = true;
	st = run_argv(argv, STACK_UP_MS, &out);
	cr_assert(st == 0, "stack.sh up failed (%d):\n%s", st, out);
	free(out);
	T.repo = stack_var("STACK_REPO");
	T.base = ts_git(T.repo, "rev-parse HEAD");
	for (size_t i = 0; copied[i]; i++) {
		char *val = stack_var(copied[i]);
		cr_assert(val[0], "stack.env has no %s", copied[i]);
		setenv(copied[i], val, 1);
		free(val);
	}
	unsetenv("AWS_SESSION_TOKEN");
	unsetenv("AWS_PROFILE");
	unsetenv("AWS_ENDPOINT_URL");
	/* Snowflake through a recording proxy: the fake keeps only that a password is set */
	endpoint = stack_var("TAPESTRY_ENDPOINT_SNOWFLAKE");
	T.sf_proxy = ts_aws_server_start(endpoint);
	url = tp_strdup(ts_aws_server_url(T.sf_proxy));
	url[strlen(url) - 1] = '\0'; /* the provider appends /api/v2/... */
	setenv("TAPESTRY_ENDPOINT_SNOWFLAKE", url, 1);
	free(url);
	free(endpoint);

	ts_write(T.repo, "templates/canary.yaml", canary_template);
	text = ts_replace(canary_resources, "@SECRETS@", T.secrets);
	{
		char *t2 = ts_replace(text, "@RENDERED@", T.rendered);
		ts_write(T.repo, "resources/canary.yaml", t2);
		free(t2);
	}
	free(text);
	free(ts_git(T.repo, "add -A"));
	free(ts_git(T.repo, "commit -q -m 'Secrets canary: a stack, an SSM parameter and a file'"));
	T.head = ts_git(T.repo, "rev-parse HEAD");
	{
		char *v1 = canary("FILE_SSM"), *v2 = canary("FILE_LOCAL");
		ts_write(T.secrets, "ssm-value", v1);
		ts_write(T.secrets, "local-value", v2);
		free(v1);
		free(v2);
	}

	collect_repo_refs(refs);
	cr_assert(refs->env.len > 0 && refs->file.len > 0 && refs->ssm.len > 0,
		  "the pipeline must read secrets of every scheme (env %zu, file %zu, ssm %zu)",
		  refs->env.len, refs->file.len, refs->ssm.len);
	gr_key = stack_var("GR_KEY");
	for (size_t i = 0; i < refs->env.len; i++) {
		const char *name = refs->env.items[i];
		/* Grouparoo runs with this API key: it stays stack.sh's random one */
		char *value =
		    strcmp(name, "GROUPAROO_API_KEY") == 0 ? tp_strdup(gr_key) : canary(name);
		set_env_secret(name, value);
		free(value);
	}
	for (size_t i = 0; i < refs->file.len; i++)
		add_file_needles(refs->file.items[i]);
	/* the Airbyte application's credentials, which stack.sh stored in SSM */
	ab_id = stack_var("AB_ID");
	ab_secret = stack_var("AB_SECRET");
	add_needle("${secret:ssm:/rainshield/airbyte/client_id}", ab_id);
	add_needle("${secret:ssm:/rainshield/airbyte/client_secret}", ab_secret);
	free(ab_id);
	free(ab_secret);
	free(gr_key);
	free(script);
}

static void cli_sequence(void)
{
	const char *v1[] = {"validate", T.repo, NULL};
	const char *v2[] = {"validate", T.repo, "--json", NULL};
	const char *a[] = {"apply", T.repo, "--state", T.db, "--auto-approve", NULL};
	const char *p1[] = {"plan", T.repo, "--state", T.db, NULL};
	const char *p2[] = {"plan", T.repo, "--state", T.db, "--format", "markdown", NULL};
	const char *p3[] = {"plan", T.repo, "--state", T.db, "--format", "json", NULL};
	const char *p4[] = {"plan", T.repo, "--state", T.db, "--refresh", NULL};
	const char *p5[] = {"plan",     T.repo, "--state", T.db, "--refresh", "--refresh-schemas",
			    "--format", "json", NULL};
	const char *pr1[] = {"plan", "--repo", T.repo, "--rev", T.head, "--base", T.base, NULL};
	const char *pr2[] = {"plan",   "--repo", T.repo,     "--rev",    T.head,
			     "--base", T.base,   "--format", "markdown", NULL};
	const char *pr3[] = {"plan",   "--repo", T.repo,     "--rev", T.head,
			     "--base", T.base,   "--format", "json",  NULL};
	const char *pr4[] = {"plan", "--repo", T.repo, "--rev", T.head, "--state", T.db, NULL};
	char *url = tp_sprintf("file://%s", T.repo);
	const char *pr5[] = {"plan",   "--repo", url,        "--rev", T.head,
			     "--base", T.base,   "--format", "json",  NULL};

	tap_expect("validate", 0, v1, "is valid: 70 resources");
	tap_expect("validate --json", 0, v2, "\"valid\"");
	/* no state yet: everything is created */
	tap_expect("plan (no state)", 0, p1, "Plan: 70 to add, 0 to change, 0 to destroy.");
	tap_expect("plan --format markdown (no state)", 0, p2, "(sensitive)");
	tap_expect("plan --format json (no state)", 0, p3, "format_version");
	tap_expect("apply (cold)", 0, a, "Resources: 70 added, 0 changed, 0 destroyed.");
	tap_expect("plan", 0, p1, "No changes.");
	tap_expect("plan --format markdown", 0, p2, "No changes");
	tap_expect("plan --format json", 0, p3, "format_version");
	tap_expect("plan --refresh", 0, p4, "No changes.");
	tap_expect("plan --refresh --refresh-schemas --format json", 0, p5, "format_version");
	/* the pull request that added the canary resources, against its base's state */
	tap_expect("plan --repo --rev --base", 0, pr1,
		   "Plan: 3 to add, 0 to change, 0 to destroy.");
	tap_expect("plan --repo --rev --base --format markdown", 0, pr2, "(sensitive)");
	tap_expect("plan --repo --rev --base --format json", 0, pr3, "format_version");
	tap_expect("plan --repo --rev --state", 0, pr4, "No changes.");
	tap_expect("plan --repo file:// --rev --base --format json", 0, pr5, "format_version");
	tap_expect("apply (no-op)", 0, a, "No changes.");
	free(url);
}

/* New values for two env secrets the pipeline stores in SSM and reads back elsewhere, for the
 * NoEcho stack parameter and for a file secret; the apply updates what reads them directly
 * (the readers of the SSM parameters follow in the controller's sync). */
static void rotate(void)
{
	static const char *const rotated[] = {"ZOOM_CLIENT_SECRET", "SNOWFLAKE_GROUPAROO_PASSWORD",
					      "CANARY_STACK_NOECHO", NULL};
	const char *a[] = {"apply", T.repo, "--state", T.db, "--auto-approve", NULL};
	const char *p1[] = {"plan", T.repo, "--state", T.db, "--refresh", NULL};
	const char *p2[] = {"plan", T.repo, "--state", T.db, "--refresh", "--format", "json", NULL};
	const char *p3[] = {"plan",      T.repo,     "--state",  T.db,
			    "--refresh", "--format", "markdown", NULL};
	char *value = canary("ROTATED_FILE_LOCAL");
	char *path = tp_sprintf("%s/local-value", T.secrets);

	/* "ROTATED_<name>": the first value is not a prefix of the new one */
	for (size_t i = 0; rotated[i]; i++) {
		char *name = tp_sprintf("ROTATED_%s", rotated[i]);
		char *v = canary(name);
		char *label = tp_sprintf("${secret:env:%s} (rotated)", rotated[i]);
		cr_assert(setenv(rotated[i], v, 1) == 0);
		add_needle(label, v);
		free(label);
		free(v);
		free(name);
	}
	ts_write(T.secrets, "local-value", value);
	add_file_needles(path);
	tap_expect("plan --refresh (rotated)", 0, p1, "Plan: 0 to add, 4 to change, 0 to destroy.");
	tap_expect("plan --refresh --format json (rotated)", 0, p2, "resource_changes");
	tap_expect("plan --refresh --format markdown (rotated)", 0, p3, "(sensitive)");
	tap_expect("apply (rotated)", 0, a, "Resources: 0 added, 4 changed, 0 destroyed.");
	free(path);
	free(value);
}

static char *webhook_signature(const char *secret, const char *body)
{
	uint8_t mac[TP_SHA256_LEN];
	char hex[2 * TP_SHA256_LEN + 1];
	tp_hmac_sha256(mac, secret, strlen(secret), body, strlen(body));
	tp_hex_encode(hex, mac, sizeof(mac));
	return tp_sprintf("X-Hub-Signature-256: sha256=%s", hex);
}

/* One `tapestry run`: its first sync applies what the rotation left, a signed webhook
 * triggers a second, and every endpoint is read. */
static void controller_sequence(void)
{
	int port = ts_free_port();
	char *api_token = canary("CONTROLLER_API_TOKEN");
	char *hook = canary("GITHUB_WEBHOOK_SECRET");
	char *status_token = canary("COMMIT_STATUS_TOKEN");
	char *action = tp_sprintf("POST /repos/rainshield/data-pipeline/statuses/%s", T.head);
	char *gh, *config, *config_path, *api, *hook_url, *sig, *body, *delivery;
	const char *args[] = {"run", "--config", NULL, NULL};
	json_t *runs, *run, *v;
	size_t i;
	int st;
	bool poll_run = false;

	T.github = ts_aws_server_start(NULL);
	ts_aws_server_default(T.github, action, 201, "application/json", "{\"state\":\"success\"}");
	gh = tp_strdup(ts_aws_server_url(T.github));
	ts_write(T.secrets, "api-token", api_token);
	{
		char *label = tp_sprintf("${secret:file:%s/api-token}", T.secrets);
		add_needle(label, api_token);
		free(label);
	}
	set_env_secret("CANARY_GITHUB_WEBHOOK_SECRET", hook);
	set_env_secret("CANARY_COMMIT_STATUS_TOKEN", status_token);
	/* the status CLI sends it as the bearer token */
	setenv("TAPESTRY_API_TOKEN", api_token, 1);
	config = tp_sprintf("repository:\n"
			    "  url: file://%s\n"
			    "  branch: main\n"
			    "state_dir: %s\n"
			    "listen: 127.0.0.1:%d\n"
			    "poll_interval: 1h\n"
			    "drift_interval: 1h\n"
			    "webhooks:\n"
			    "  github_secret: ${secret:env:CANARY_GITHUB_WEBHOOK_SECRET}\n"
			    "api_token: ${secret:file:%s/api-token}\n"
			    "commit_status:\n"
			    "  repository: rainshield/data-pipeline\n"
			    "  token: ${secret:env:CANARY_COMMIT_STATUS_TOKEN}\n"
			    "  api_url: %s\n",
			    T.repo, T.state_dir, port, T.secrets, gh);
	ts_write(T.tmp, "controller.yaml", config);
	config_path = tp_sprintf("%s/controller.yaml", T.tmp);
	args[2] = config_path;
	T.ctl = ts_spawn_tapestry(args, (const char *const *)T.env_extra, T.ctl_log);
	wait_syncs(port, 1);

	/* poll_interval is an hour: only the webhook can start the second sync */
	body = tp_sprintf("{\"ref\":\"refs/heads/main\",\"after\":\"%s\"}", T.head);
	sig = webhook_signature(hook, body);
	delivery = tp_sprintf("X-GitHub-Delivery: canary-%s", T.hex);
	hook_url = tp_sprintf("http://127.0.0.1:%d/hooks/github", port);
	{
		const char *headers[] = {"Content-Type: application/json", "X-GitHub-Event: push",
					 delivery, sig, NULL};
		ts_http_result r = ts_http("POST", hook_url, headers, body);
		cr_assert(r.status == 202, "the signed webhook got HTTP %ld: %s", r.status,
			  r.body ? r.body : "");
		add_source("POST /hooks/github reply", r.body, strlen(r.body));
		ts_http_result_free(&r);
	}
	wait_syncs(port, 2);

	/* every endpoint */
	json_decref(ctl_get(port, "/"));
	json_decref(ctl_get(port, "/healthz"));
	json_decref(ctl_get(port, "/readyz"));
	json_decref(ctl_get(port, "/metrics"));
	json_decref(ctl_get(port, "/api/status"));
	json_decref(ctl_get(port, "/api/resources"));
	json_decref(ctl_get(port, "/api/events?limit=1000"));
	json_decref(ctl_get(port, "/api/events?address=aws.stack%2Fcanary"));
	json_decref(ctl_get(port, "/api/logs?limit=2000"));
	json_decref(ctl_get(port, "/api/providers"));
	json_decref(ctl_get(port, "/api/plan"));
	runs = ctl_get(port, "/api/runs?limit=1000");
	cr_assert(json_array_size(runs) >= 3,
		  "expected two runs of the CLI and one of the controller");
	json_array_foreach(runs, i, run)
	{
		json_int_t id = json_integer_value(json_object_get(run, "id"));
		char *path = tp_sprintf("/api/runs/%lld", (long long)id);
		const char *trigger = tp_json_get_str(run, "trigger");
		if (trigger && strcmp(trigger, "poll") == 0) {
			/* the readers of the rotated SSM parameters: Airbyte's Zoom source and
			 * Snowflake's GROUPAROO_USER */
			cr_expect(json_integer_value(tp_json_path_get(run, "counts.updated")) == 2,
				  "the controller's sync should update 2 resources: %s",
				  json_dumps(run, JSON_COMPACT));
			poll_run = true;
		}
		json_decref(ctl_get(port, path));
		free(path);
	}
	cr_assert(poll_run, "the controller's first sync applied nothing");
	json_decref(runs);
	api = tp_sprintf("http://127.0.0.1:%d", port);
	{
		const char *s1[] = {"status", "--state", T.db, "--api", api, NULL};
		const char *s2[] = {"status", "--state", T.db, "--api", api, "--json", NULL};
		tap_expect("status --api", 0, s1, "rainshield");
		tap_expect("status --api --json", 0, s2, "\"controller\"");
	}
	/* the state directory while the controller holds it (WAL and shared memory included) */
	add_tree("state dir (controller running):", T.state_dir);
	st = stop_controller();
	{
		char *log = read_file_or_fail(T.ctl_log);
		add_source("controller log", log, strlen(log));
		cr_assert(st == 0, "the controller exited %d on SIGTERM\nlog:\n%s", st, log);
		cr_assert(strstr(log, "syncing now") != NULL,
			  "the webhook did not trigger a sync:\n%s", log);
		free(log);
	}
	/* the commit status carried the token */
	v = ts_aws_server_requests(T.github);
	{
		char *want = tp_sprintf("Bearer %s", status_token);
		bool seen = false;
		json_t *r;
		json_array_foreach(v, i, r) seen =
		    seen || (tp_json_path_get(r, "headers.authorization") &&
			     strcmp(json_string_value(tp_json_path_get(r, "headers.authorization")),
				    want) == 0);
		cr_expect(seen, "no commit status was posted with the canary token");
		free(want);
	}
	json_decref(v);
	free(api);
	free(hook_url);
	free(delivery);
	free(sig);
	free(body);
	free(config_path);
	free(config);
	free(gh);
	free(action);
	free(status_token);
	free(hook);
	free(api_token);
}

static void read_only_commands(void)
{
	const char *s1[] = {"status", "--state", T.db, NULL};
	const char *h1[] = {"history", "--state", T.db, NULL};
	const char *h2[] = {"history", "--state", T.db, "--json", NULL};
	const char *e1[] = {"events", "--state", T.db, "--limit", "1000", NULL};
	const char *e2[] = {"events", "--state", T.db, "--limit", "1000", "--json", NULL};
	const char *e3[] = {"events", "--state", T.db, "--resource", "aws.stack/canary", NULL};
	tap_expect("status", 0, s1, "aws.stack/canary");
	tap_expect("history", 0, h1, "cli");
	tap_expect("history --json", 0, h2, "\"trigger\"");
	tap_expect("events", 0, e1, "aws.stack/canary");
	tap_expect("events --json", 0, e2, "aws.stack/canary");
	tap_expect("events --resource", 0, e3, "aws.stack/canary");
}

/* ---------------------------------------------------------------- the backends got them */

static const char *ssm_holding(const json_t *params, const char *value)
{
	const char *k;
	json_t *v;
	json_object_foreach((json_t *)(uintptr_t)params, k,
			    v) if (json_is_string(v) &&
				   strcmp(json_string_value(v), value) == 0) return k;
	return NULL;
}

static void check_backends(const secret_refs *refs)
{
	json_t *params = ssm_values(), *ids = resource_ids(), *o;
	char *v, *want;
	const char *app;

	/* AWS: every env secret of the pipeline in SSM (the rotated ones with their new value),
	 * the file secret, and what the canary stack wrote from its parameters */
	for (size_t i = 0; i < refs->env.len; i++) {
		const char *name = refs->env.items[i], *value = getenv(name);
		if (strncmp(name, "CANARY_STACK_", 13) == 0)
			continue;
		cr_expect(value && ssm_holding(params, value),
			  "no SSM parameter holds ${secret:env:%s}", name);
	}
	v = canary("FILE_SSM");
	expect_str(params, "/rainshield/canary/file", v, "SSM");
	free(v);
	expect_str(params, "/rainshield/canary/stack_noecho", getenv("CANARY_STACK_NOECHO"),
		   "SSM (written by the canary stack)");
	expect_str(params, "/rainshield/canary/stack_plain", getenv("CANARY_STACK_PLAIN"),
		   "SSM (written by the canary stack)");

	/* Airbyte: the fake returns the stored configuration with secrets in clear */
	o = airbyte_object(ids, "airbyte.source/zoom");
	expect_str(o, "configuration.account_id", getenv("ZOOM_ACCOUNT_ID"), "airbyte.source/zoom");
	expect_str(o, "configuration.client_id", getenv("ZOOM_CLIENT_ID"), "airbyte.source/zoom");
	expect_str(o, "configuration.client_secret", getenv("ZOOM_CLIENT_SECRET"),
		   "airbyte.source/zoom (rotated, applied by the controller)");
	json_decref(o);
	o = airbyte_object(ids, "airbyte.source/salesforce");
	expect_str(o, "configuration.client_id", getenv("SALESFORCE_CLIENT_ID"),
		   "airbyte.source/salesforce");
	expect_str(o, "configuration.client_secret", getenv("SALESFORCE_CLIENT_SECRET"),
		   "airbyte.source/salesforce");
	expect_str(o, "configuration.refresh_token", getenv("SALESFORCE_REFRESH_TOKEN"),
		   "airbyte.source/salesforce");
	json_decref(o);
	o = airbyte_object(ids, "airbyte.destination/snowflake");
	expect_str(o, "configuration.loading_method.access_key_id",
		   getenv("RAINSHIELD_STAGING_ACCESS_KEY_ID"), "airbyte.destination/snowflake");
	expect_str(o, "configuration.loading_method.secret_access_key",
		   getenv("RAINSHIELD_STAGING_SECRET_ACCESS_KEY"), "airbyte.destination/snowflake");
	{
		const char *key =
		    tp_json_get_str(params, "/rainshield/snowflake/loader_private_key");
		cr_expect(key && strstr(key, "-----BEGIN PRIVATE KEY-----"),
			  "the loader's key file did not reach SSM");
		if (key)
			expect_str(o, "configuration.credentials.private_key", key,
				   "airbyte.destination/snowflake (file → SSM → Airbyte)");
	}
	json_decref(o);

	/* Snowflake: the password statements (create, then the rotation) and the user has one */
	want = canary("SNOWFLAKE_GROUPAROO_PASSWORD");
	cr_expect(snowflake_saw(want), "the first GROUPAROO_USER password never reached Snowflake");
	cr_expect(snowflake_saw(getenv("SNOWFLAKE_GROUPAROO_PASSWORD")),
		  "the rotated GROUPAROO_USER password never reached Snowflake");
	free(want);
	{
		char *port = stack_var("SF_PORT");
		char *url = tp_sprintf("http://127.0.0.1:%s/fake/catalog", port);
		json_t *cat = http_json("GET", url, NULL, NULL, 200);
		cr_expect(json_is_true(tp_json_path_get(cat, "users.GROUPAROO_USER.has_password")),
			  "Snowflake's GROUPAROO_USER has no password");
		json_decref(cat);
		free(url);
		free(port);
	}

	/* Grouparoo: its own database holds the app option (its API obfuscates it) */
	app = tp_json_get_str(ids, "grouparoo.app/mailchimp");
	cr_assert_not_null(app, "grouparoo.app/mailchimp has no id in the state");
	v = grouparoo_option(app, "apiKey");
	cr_expect(v && strcmp(v, getenv("MAILCHIMP_API_KEY")) == 0,
		  "Grouparoo's Mailchimp app has apiKey \"%s\", not the canary", v ? v : "(none)");
	free(v);

	/* local.file: the rendered file holds the rotated file secret and the SSM one */
	{
		char *path = tp_sprintf("%s/canary.env", T.rendered);
		char *fs = canary("ROTATED_FILE_LOCAL"), *ss = canary("FILE_SSM");
		char *expect = tp_sprintf("FILE_SECRET=%s\nSSM_SECRET=%s\n", fs, ss);
		char *got = read_file_or_fail(path);
		cr_expect_str_eq(got, expect, "local.file/canary-env");
		free(got);
		free(expect);
		free(fs);
		free(ss);
		free(path);
	}
	json_decref(ids);
	json_decref(params);
}

/* ---------------------------------------------------------------- the test */

Test(secrets, canary_values_never_leave_their_backends)
{
	secret_refs refs = {{0}, {0}, {0}};
	char *dump = NULL, *report;
	int st;

	check_scanner();
	bring_up(&refs);
	cli_sequence();
	rotate();
	controller_sequence();
	read_only_commands();
	check_backends(&refs);

	/* what Tapestry left on disk */
	add_tree("state dir:", T.state_dir);
	add_tree("temporary file:", T.tp_tmp);
	{
		const char *argv[] = {"sqlite3", "-readonly", T.db, ".dump", NULL};
		st = run_argv(argv, 60000, &dump);
		cr_assert(st == 0, "sqlite3 .dump failed: %s", dump);
		cr_assert(strstr(dump, "CREATE TABLE") != NULL, "sqlite3 .dump: %s", dump);
		add_source("sqlite3 .dump of the state", dump, strlen(dump));
		free(dump);
	}

	report = scan(T.src, T.nsrc, T.nd, T.nnd);
	cr_expect(report[0] == '\0',
		  "secret values leaked (%zu sources scanned for %zu secrets):\n%s", T.nsrc, T.nnd,
		  report);
	free(report);
	tp_strlist_free(&refs.env);
	tp_strlist_free(&refs.file);
	tp_strlist_free(&refs.ssm);
}
