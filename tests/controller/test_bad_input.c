/*
 * Bad input at scale, end to end: the real `tapestry run` follows a local Git repository (a
 * local.file pipeline, as in test_run.c) while every refused pipeline of
 * tests/fixtures/spec/bad and every seed of the spec fuzzer (tests/fuzz/corpus/spec, as a
 * pipeline's resource file) is committed into it, one commit each, and every webhook delivery
 * of tests/fuzz/corpus/webhook (forged, malformed, replayed and hostile ones) is posted to its
 * three webhook endpoints, plus a body over the size limit. Throughout, the controller keeps
 * answering /healthz and /api/status, reports each bad commit as invalid with the same
 * file:line:col diagnostics `tapestry validate` gives (expected.txt, or validate's own output
 * for the seeds), keeps the last good
 * revision applied, answers each delivery as its signature deserves (401, or accepted, or a
 * duplicate) and never with a server error. A good commit at the end is applied.
 *
 * Memory over many rounds of the same input is measured by bench/bad_input.c, not asserted
 * here.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "support/support.h"
#include "util/util.h"

/* the secret tests/fuzz/fuzz_webhook.c signs with: the corpus's flag bits mean the same here */
#define SECRET "fuzz-secret"

static char *tmp, *origin, *out, *statedir, *logpath, *base_url;
static int port;
static pid_t ctl_pid = -1;

static void setup(void)
{
	ts_git_env();
	tmp = ts_tmpdir();
	origin = tp_sprintf("%s/origin", tmp);
	out = tp_sprintf("%s/out", tmp);
	statedir = tp_sprintf("%s/state", tmp);
	logpath = tp_sprintf("%s/controller.log", tmp);
	mkdir(out, 0755);
	mkdir(statedir, 0700);
	free(ts_git(tmp, "init -q origin"));
	port = ts_free_port();
	base_url = tp_sprintf("http://127.0.0.1:%d", port);
}

static void teardown(void)
{
	ts_stop_pid(ctl_pid);
	ctl_pid = -1;
	ts_rmtree(tmp);
	free(tmp);
	free(origin);
	free(out);
	free(statedir);
	free(logpath);
	free(base_url);
}

TestSuite(bad_input, .init = setup, .fini = teardown, .timeout = 600);

/* ---------------------------------------------------------------- the repository */

static void commit(const char *message)
{
	free(ts_git(origin, "add -A"));
	free(ts_git(origin, "commit -q --allow-empty -m '%s'", message));
}

static char *head(void)
{
	return ts_git(origin, "rev-parse HEAD");
}

static void write_good(const char *content)
{
	char *text = tp_sprintf("kind: local.file\nname: a\nspec: {path: %s/a.txt, content: %s}\n"
				"---\nkind: local.file\nname: b\nspec: {path: %s/b.txt, content: "
				"\"${local.file/a.sha256}\"}\n",
				out, content, out);
	ts_write(origin, "pipe/tapestry.yaml", "pipeline: bad-input\n");
	ts_write(origin, "pipe/resources/files.yaml", text);
	free(text);
}

/* Copies the files of a fixture directory (recursively, expected.txt left out) to dst. */
static void copy_tree(const char *src, const char *dst)
{
	DIR *d = opendir(src);
	struct dirent *e;
	cr_assert_not_null(d, "%s: %s", src, strerror(errno));
	mkdir(dst, 0755);
	while ((e = readdir(d)) != NULL) {
		char *from, *to;
		struct stat st;
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0 ||
		    strcmp(e->d_name, "expected.txt") == 0)
			continue;
		from = tp_sprintf("%s/%s", src, e->d_name);
		to = tp_sprintf("%s/%s", dst, e->d_name);
		cr_assert_eq(lstat(from, &st), 0, "%s", from);
		if (S_ISDIR(st.st_mode)) {
			copy_tree(from, to);
		} else {
			tp_buf b;
			tp_buf_init(&b, 16u << 20);
			cr_assert_eq(tp_file_read(&b, from, 16u << 20), 0, "%s", tp_error_last());
			ts_write_bytes(dst, e->d_name, b.ptr ? b.ptr : "", b.len);
			tp_buf_free(&b);
		}
		free(from);
		free(to);
	}
	closedir(d);
}

/* The pipeline directory becomes exactly the fixture. */
static void write_fixture(const char *fixture_dir)
{
	char *pipe = tp_sprintf("%s/pipe", origin);
	ts_rmtree(pipe);
	copy_tree(fixture_dir, pipe);
	free(pipe);
}

/* Sorted names of the entries of a directory (files and directories, no dot entries). */
static void list_dir(tp_strlist *outl, const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	cr_assert_not_null(d, "%s: %s", dir, strerror(errno));
	while ((e = readdir(d)) != NULL)
		if (e->d_name[0] != '.')
			tp_strlist_push(outl, e->d_name);
	closedir(d);
	tp_strlist_sort(outl);
}

/* ---------------------------------------------------------------- the controller */

static void start(void)
{
	char *cfg = tp_sprintf("%s/controller.yaml", tmp);
	char *text =
	    tp_sprintf("repository: {url: \"file://%s\", branch: main, path: pipe}\n"
		       "state_dir: %s\nlisten: \"127.0.0.1:%d\"\npoll_interval: 200ms\n"
		       "drift_interval: 1h\n"
		       "webhooks: {github_secret: \"${secret:env:HOOK_SECRET}\", gitlab_token: "
		       "\"${secret:env:HOOK_SECRET}\", generic_secret: "
		       "\"${secret:env:HOOK_SECRET}\"}\n",
		       origin, statedir, port);
	const char *args[] = {"run", "--config", cfg, NULL};
	const char *env[] = {"HOOK_SECRET=" SECRET, NULL};
	ts_write(tmp, "controller.yaml", text);
	ctl_pid = ts_spawn_tapestry(args, env, logpath);
	free(text);
	free(cfg);
}

static json_t *get_json(const char *path, long *status)
{
	char *url = tp_sprintf("%s%s", base_url, path);
	ts_http_result r = ts_http("GET", url, NULL, NULL);
	json_t *v = NULL;
	if (status)
		*status = r.status;
	if (r.status == 200)
		tp_json_parse(&v, r.body, strlen(r.body));
	ts_http_result_free(&r);
	free(url);
	return v;
}

static char *status_str(const json_t *s, const char *path)
{
	const char *v = s ? json_string_value(tp_json_path_get(s, path)) : NULL;
	return v ? tp_strdup(v) : NULL;
}

/* Fails the test with why and the controller's log. */
static void fail_with_log(const char *why)
{
	char *log = ts_read(logpath);
	cr_assert_fail("%s\ncontroller log:\n%s", why, log ? log : "(no log)");
}

/* /healthz answers 200 and /api/status a JSON object, now. */
static void expect_serving(const char *after)
{
	long st = 0;
	json_t *s;
	char *url = tp_sprintf("%s/healthz", base_url);
	ts_http_result r = ts_http("GET", url, NULL, NULL);
	if (r.status != 200) {
		char *why = tp_sprintf("/healthz answers %ld after %s", r.status, after);
		fail_with_log(why);
	}
	ts_http_result_free(&r);
	free(url);
	s = get_json("/api/status", &st);
	if (!json_is_object(s)) {
		char *why = tp_sprintf("/api/status answers %ld after %s", st, after);
		fail_with_log(why);
	}
	json_decref(s);
}

static void wait_ready(void)
{
	int64_t deadline = tp_clock_mono_ms() + 60000;
	char *url = tp_sprintf("%s/readyz", base_url);
	for (;;) {
		ts_http_result r = ts_http("GET", url, NULL, NULL);
		long st = r.status;
		ts_http_result_free(&r);
		if (st == 200)
			break;
		if (tp_clock_mono_ms() > deadline)
			fail_with_log("the controller was not ready within 60 s");
		usleep(50000);
	}
	free(url);
}

/* Waits until the controller has applied commit. */
static void wait_applied(const char *commit_id)
{
	int64_t deadline = tp_clock_mono_ms() + 60000;
	for (;;) {
		json_t *s = get_json("/api/status", NULL);
		char *applied = status_str(s, "revision.applied");
		bool ok = applied && strcmp(applied, commit_id) == 0;
		free(applied);
		json_decref(s);
		if (ok)
			return;
		if (tp_clock_mono_ms() > deadline) {
			char *why = tp_sprintf("commit %s was not applied within 60 s", commit_id);
			fail_with_log(why);
		}
		usleep(50000);
	}
}

/* Waits until the controller has judged commit invalid; returns its status document. */
static json_t *wait_invalid(const char *commit_id, const char *fixture)
{
	int64_t deadline = tp_clock_mono_ms() + 60000;
	char short_id[13];
	snprintf(short_id, sizeof(short_id), "%.12s", commit_id);
	for (;;) {
		json_t *s = get_json("/api/status", NULL);
		char *result = status_str(s, "last_sync.result");
		char *error = status_str(s, "last_sync.error");
		bool ok =
		    result && strcmp(result, "invalid") == 0 && error && strstr(error, short_id);
		free(result);
		free(error);
		if (ok)
			return s;
		json_decref(s);
		if (tp_clock_mono_ms() > deadline) {
			char *why = tp_sprintf("the commit of fixture %s was not reported invalid "
					       "within 60 s",
					       fixture);
			fail_with_log(why);
		}
		usleep(50000);
	}
}

/* The lines of text, sorted, one per line. */
static char *sorted_lines(const char *text)
{
	tp_strlist l = {0};
	tp_buf b;
	char *copy = tp_strdup(text), *save = NULL;
	for (char *line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
		tp_strlist_push(&l, line);
	tp_strlist_sort(&l);
	tp_buf_init(&b, 1 << 20);
	for (size_t i = 0; i < l.len; i++)
		tp_buf_printf(&b, "%s\n", l.items[i]);
	tp_strlist_free(&l);
	free(copy);
	return tp_buf_detach(&b);
}

/* The problems the controller reports are exactly the diagnostics `tapestry validate` gives
 * for the same pipeline (in the order the loader found them, not validate's). */
static void expect_problems(const json_t *s, const char *want, const char *name)
{
	const json_t *problems = tp_json_path_get(s, "last_sync.problems");
	char *want_sorted, *got_sorted;
	tp_buf got;
	size_t i;
	json_t *p;
	cr_assert(json_array_size(problems) > 0, "%s: no problems reported", name);
	tp_buf_init(&got, 1 << 20);
	json_array_foreach(problems, i, p) tp_buf_printf(&got, "%s\n", json_string_value(p));
	want_sorted = sorted_lines(want);
	got_sorted = sorted_lines(tp_buf_cstr(&got));
	cr_assert_str_eq(got_sorted, want_sorted, "%s: the controller reported\n%s\nexpected\n%s",
			 name, got_sorted, want_sorted);
	free(want_sorted);
	free(got_sorted);
	tp_buf_free(&got);
}

/* Commits the pipeline directory as it is now; the controller must refuse it with want's
 * diagnostics, keep `good` applied and keep serving. */
static void expect_refused(const char *name, const char *want, const char *good)
{
	char *msg = tp_sprintf("bad input: %s", name);
	char *c, *applied;
	json_t *s;
	commit(msg);
	c = head();
	s = wait_invalid(c, name);
	expect_problems(s, want, name);
	applied = status_str(s, "revision.applied");
	cr_assert(applied && strcmp(applied, good) == 0, "%s: the applied revision moved to %s",
		  name, applied ? applied : "(none)");
	expect_serving(name);
	ts_expect_file(out, "a.txt", "first");
	free(applied);
	json_decref(s);
	free(c);
	free(msg);
}

/* ---------------------------------------------------------------- webhooks */

enum { H_SIG, H_TOKEN, H_DELIVERY, H_EVENT, H_COUNT };

/* A delivery in tests/fuzz/fuzz_webhook.c's format: one flag byte (bit 0: sign the body,
 * bit 1: send the right GitLab token), then "\n"-separated header values (signature, token,
 * delivery id, event; empty: absent), then the body. */
typedef struct {
	unsigned flags;
	char *values[H_COUNT];
	const char *body;
	size_t body_len;
} delivery;

static void delivery_parse(delivery *d, const char *data, size_t size)
{
	const char *p = data + 1, *end = data + size;
	memset(d, 0, sizeof(*d));
	cr_assert_gt(size, 0);
	d->flags = (unsigned char)data[0];
	for (int slot = 0; slot < H_COUNT && p < end; slot++) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
		if (n > 0)
			d->values[slot] = tp_strndup(p, n);
		p += n + (nl ? 1 : 0);
	}
	d->body = p;
	d->body_len = (size_t)(end - p);
}

static void delivery_free(delivery *d)
{
	for (int i = 0; i < H_COUNT; i++)
		free(d->values[i]);
}

/* Bytes a header line cannot carry as they are: a server may refuse such a request. */
static bool odd_header(const delivery *d)
{
	for (int i = 0; i < H_COUNT; i++)
		for (const char *c = d->values[i]; c && *c; c++)
			if ((unsigned char)*c < 0x20 || *c == 0x7f)
				return true;
	return false;
}

/* POSTs a raw body with headers ("Name: value", NULL-terminated); the status, 0 when the
 * request could not be made. */
static long post_raw(const char *path, const char *const *headers, const char *body, size_t len)
{
	char *url = tp_sprintf("%s%s", base_url, path);
	tp_http_client *c = tp_http_client_new();
	tp_http_request req;
	tp_http_reply rep;
	long st;
	memset(&req, 0, sizeof(req));
	req.method = "POST";
	req.url = url;
	req.headers = headers;
	req.body = body;
	req.body_len = len;
	req.timeout_ms = 10000;
	st = tp_http_client_do(c, &rep, &req) == 0 ? rep.status : 0;
	tp_http_reply_clear(&rep);
	tp_http_client_free(c);
	free(url);
	return st;
}

/* What the deliveries got, for the log: 202, 200 (duplicate), 401, refused by the server's
 * HTTP layer for a control byte in a header line. */
static struct {
	int accepted, duplicate, unauthorized, malformed;
} answers;

static const struct {
	const char *path;
	const char *sig_header; /* NULL: authenticated by token */
	const char *delivery_header;
	const char *event_header;
} hook_kinds[] = {
    {"/hooks/github", "X-Hub-Signature-256", "X-GitHub-Delivery", "X-GitHub-Event"},
    {"/hooks/gitlab", NULL, "X-Gitlab-Event-UUID", "X-Gitlab-Event"},
    {"/hooks/generic", "X-Tapestry-Signature-256", "X-Tapestry-Delivery", "X-Tapestry-Event"},
};

/* Posts one corpus delivery to the three endpoints and checks each answer. */
static void post_delivery(const char *name, const delivery *d)
{
	for (size_t k = 0; k < sizeof(hook_kinds) / sizeof(hook_kinds[0]); k++) {
		const char *headers[8];
		char *owned[4] = {NULL, NULL, NULL, NULL};
		size_t h = 0;
		bool authentic;
		long st;
		headers[h++] = "Content-Type: application/json";
		if (hook_kinds[k].sig_header) {
			const char *sig = d->values[H_SIG];
			char signed_sig[8 + 2 * TP_SHA256_LEN];
			authentic = d->flags & 1;
			if (authentic) {
				uint8_t mac[TP_SHA256_LEN];
				tp_hmac_sha256(mac, SECRET, strlen(SECRET), d->body, d->body_len);
				memcpy(signed_sig, "sha256=", 7);
				tp_hex_encode(signed_sig + 7, mac, sizeof(mac));
				sig = signed_sig;
			}
			if (sig)
				headers[h++] = owned[0] =
				    tp_sprintf("%s: %s", hook_kinds[k].sig_header, sig);
		} else {
			const char *token = d->flags & 2 ? SECRET : d->values[H_TOKEN];
			authentic = token && strcmp(token, SECRET) == 0;
			if (token)
				headers[h++] = owned[0] = tp_sprintf("X-Gitlab-Token: %s", token);
		}
		if (d->values[H_DELIVERY])
			headers[h++] = owned[1] = tp_sprintf(
			    "%s: %s", hook_kinds[k].delivery_header, d->values[H_DELIVERY]);
		if (d->values[H_EVENT])
			headers[h++] = owned[2] =
			    tp_sprintf("%s: %s", hook_kinds[k].event_header, d->values[H_EVENT]);
		headers[h] = NULL;
		st = post_raw(hook_kinds[k].path, headers, d->body, d->body_len);
		answers.accepted += st == 202;
		answers.duplicate += st == 200;
		answers.unauthorized += st == 401;
		if (odd_header(d) && (st == 0 || st == 400)) {
			/* control bytes in a header line: refused before it reaches Tapestry */
			answers.malformed++;
		} else if (authentic) {
			cr_assert(st == 202 || st == 200,
				  "%s to %s: HTTP %ld for an authentic delivery", name,
				  hook_kinds[k].path, st);
		} else {
			cr_assert_eq(st, 401, "%s to %s: HTTP %ld for a forged delivery", name,
				     hook_kinds[k].path, st);
		}
		for (int i = 0; i < 4; i++)
			free(owned[i]);
	}
}

/* Every delivery of the corpus, then a body over the limit and requests for no endpoint. */
static void post_corpus(void)
{
	char *dir = ts_source_path("tests/fuzz/corpus/webhook");
	tp_strlist files = {0};
	list_dir(&files, dir);
	cr_assert_gt(files.len, 10, "the webhook corpus is missing (%s)", dir);
	for (size_t i = 0; i < files.len; i++) {
		tp_buf b;
		char *path = tp_sprintf("%s/%s", dir, files.items[i]);
		delivery d;
		tp_buf_init(&b, 1 << 20);
		cr_assert_eq(tp_file_read(&b, path, 1 << 20), 0, "%s", tp_error_last());
		if (b.len > 0) {
			delivery_parse(&d, b.ptr, b.len);
			post_delivery(files.items[i], &d);
			delivery_free(&d);
		}
		tp_buf_free(&b);
		free(path);
	}
	{
		/* over the 1 MiB limit: 413 whether or not it is signed */
		size_t n = ((size_t)1 << 20) + 4096;
		char *big = tp_malloc(n);
		const char *headers[] = {"X-GitHub-Event: push", "X-GitHub-Delivery: big-1", NULL};
		memset(big, 'x', n);
		for (size_t k = 0; k < sizeof(hook_kinds) / sizeof(hook_kinds[0]); k++)
			cr_assert_eq(post_raw(hook_kinds[k].path, headers, big, n), 413, "%s",
				     hook_kinds[k].path);
		free(big);
	}
	{
		const char *headers[] = {NULL};
		cr_assert_eq(post_raw("/hooks/bitbucket", headers, "{}", 2), 404);
	}
	cr_log_info("%zu deliveries x 3 endpoints: %d accepted, %d duplicates, %d unauthorized, "
		    "%d refused as malformed HTTP",
		    files.len, answers.accepted, answers.duplicate, answers.unauthorized,
		    answers.malformed);
	tp_strlist_free(&files);
	free(dir);
	expect_serving("the webhook corpus");
}

/* ---------------------------------------------------------------- the test */

Test(bad_input, every_bad_commit_and_delivery_is_refused_and_the_next_good_commit_applies)
{
	char *bad_dir = ts_source_path("tests/fixtures/spec/bad");
	char *seed_dir = ts_source_path("tests/fuzz/corpus/spec");
	tp_strlist fixtures = {0}, seeds = {0};
	size_t refused;
	char *good, *c;

	write_good("first");
	commit("a good pipeline");
	good = head();
	start();
	wait_ready();
	wait_applied(good);
	ts_expect_file(out, "a.txt", "first");

	list_dir(&fixtures, bad_dir);
	cr_assert_geq(fixtures.len, 20, "bad fixtures missing in %s", bad_dir);
	for (size_t i = 0; i < fixtures.len; i++) {
		char *fdir = tp_sprintf("%s/%s", bad_dir, fixtures.items[i]);
		char *want = ts_read_in(fdir, "expected.txt");
		cr_assert_not_null(want, "%s has no expected.txt", fixtures.items[i]);
		write_fixture(fdir);
		expect_refused(fixtures.items[i], want, good);
		free(want);
		free(fdir);
	}
	refused = fixtures.len;

	/* the spec fuzzer's seeds, each as the one resource file of a pipeline: checked offline
	 * first (an input the loader took would be applied), then committed */
	list_dir(&seeds, seed_dir);
	cr_assert_gt(seeds.len, 0, "no seeds in %s", seed_dir);
	for (size_t i = 0; i < seeds.len; i++) {
		char *from = tp_sprintf("%s/%s", seed_dir, seeds.items[i]);
		char *pipe = tp_sprintf("%s/pipe", origin);
		const char *args[] = {"validate", pipe, NULL};
		ts_result v;
		tp_buf b;
		ts_rmtree(pipe);
		tp_buf_init(&b, 16u << 20);
		cr_assert_eq(tp_file_read(&b, from, 16u << 20), 0, "%s", tp_error_last());
		ts_write(origin, "pipe/tapestry.yaml", "pipeline: bad-input\n");
		ts_write_bytes(origin, "pipe/resources/fuzz.yaml", b.ptr ? b.ptr : "", b.len);
		v = ts_run_tapestry(args, NULL);
		cr_assert_eq(v.status, 1,
			     "%s: tapestry validate exits %d, not 1: a seed of the spec "
			     "corpus that loads is not bad input\n%s",
			     seeds.items[i], v.status, v.err);
		{
			/* validate's diagnostics, without its closing "Error: ... is not valid" */
			char *want = tp_strdup(""), *save = NULL, *copy = tp_strdup(v.err);
			for (char *l = strtok_r(copy, "\n", &save); l;
			     l = strtok_r(NULL, "\n", &save)) {
				char *more;
				if (strncmp(l, "Error: ", 7) == 0)
					continue;
				more = tp_sprintf("%s%s\n", want, l);
				free(want);
				want = more;
			}
			expect_refused(seeds.items[i], want, good);
			free(want);
			free(copy);
		}
		ts_result_free(&v);
		tp_buf_free(&b);
		free(pipe);
		free(from);
	}
	refused += seeds.len;

	cr_log_info("%zu bad commits refused, %.12s still applied", refused, good);

	/* deliveries while the head is still a bad commit: authentic ones trigger a sync that
	 * refuses it again, the others nothing */
	post_corpus();
	ts_expect_file(out, "a.txt", "first");

	/* and the pipeline recovers with the next good commit */
	{
		char *pipe = tp_sprintf("%s/pipe", origin);
		ts_rmtree(pipe);
		free(pipe);
	}
	write_good("second");
	commit("good again");
	c = head();
	wait_applied(c);
	ts_expect_file(out, "a.txt", "second");
	expect_serving("the good commit");
	free(c);
	free(good);
	tp_strlist_free(&fixtures);
	tp_strlist_free(&seeds);
	free(bad_dir);
	free(seed_dir);
}
