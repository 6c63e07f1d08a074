/*
 * Helpers shared by the snowflake suites: RSA keys generated at test time (never committed),
 * the fake SQL API started as a child process (PR_SET_PDEATHSIG: it never outlives the test,
 * stopped by PID), its request log read back as JSON, a client session on it, and pipelines
 * pointed at it. Header-only: every suite is its own executable.
 */
#ifndef TP_SF_TEST_H
#define TP_SF_TEST_H

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include "reconcilers/snowflake/snowflake_int.h"
#include "support/support.h"

#ifndef TP_BUILD_DIR
#define TP_BUILD_DIR "."
#endif

/* Writes a fresh RSA key pair: <dir>/<name>.pem (PKCS#8, encrypted when pass is set) and
 * <dir>/<name>.pub. Returns the private key (caller frees). */
static inline EVP_PKEY *sf_keygen(const char *dir, const char *name, const char *pass,
				  unsigned bits)
{
	EVP_PKEY *k = EVP_RSA_gen(bits);
	char *priv = tp_sprintf("%s/%s.pem", dir, name), *pub = tp_sprintf("%s/%s.pub", dir, name);
	BIO *b;
	cr_assert(k, "RSA key generation failed");
	b = BIO_new_file(priv, "w");
	cr_assert(b);
	if (pass)
		cr_assert(PEM_write_bio_PKCS8PrivateKey(b, k, EVP_aes_256_cbc(), NULL, 0, NULL,
							(void *)(uintptr_t)pass) == 1);
	else
		cr_assert(PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL) == 1);
	BIO_free(b);
	chmod(priv, 0600);
	b = BIO_new_file(pub, "w");
	cr_assert(b && PEM_write_bio_PUBKEY(b, k) == 1);
	BIO_free(b);
	free(priv);
	free(pub);
	return k;
}

typedef struct {
	pid_t pid;
	int port;
	char *url;
	char *log;
	char *key; /* private key PEM path */
	char *pub;
} sf_fake;

/* Starts the fake (account ACME-TEST unless --account is given, user TAPESTRY with <dir>/key.pub, role TAPESTRY_ADMIN,
 * default warehouse COMPUTE_WH unless "--no-default-warehouse" is among the extra args, log
 * <dir>/fake.log) with extra arguments (NULL-terminated). */
static inline void sf_fake_start(sf_fake *f, const char *dir, ...)
{
	const char *argv[64];
	size_t n = 0;
	bool default_wh = true, account = false;
	int pipefd[2];
	char line[256] = "";
	size_t got = 0;
	int64_t deadline;
	va_list ap;
	char *err = tp_sprintf("%s/fake.err", dir);
	char *bin = tp_strdup(TP_BUILD_DIR "/fake_snowflake");

	memset(f, 0, sizeof(*f));
	f->log = tp_sprintf("%s/fake.log", dir);
	f->key = tp_sprintf("%s/key.pem", dir);
	f->pub = tp_sprintf("%s/key.pub", dir);
	argv[n++] = bin;
	argv[n++] = "--port";
	argv[n++] = "0";
	argv[n++] = "--user";
	argv[n++] = "TAPESTRY";
	argv[n++] = "--public-key";
	argv[n++] = f->pub;
	argv[n++] = "--role";
	argv[n++] = "TAPESTRY_ADMIN";
	argv[n++] = "--log";
	argv[n++] = f->log;
	va_start(ap, dir);
	for (const char *a; (a = va_arg(ap, const char *)) != NULL && n < 60;) {
		if (strcmp(a, "--no-default-warehouse") == 0)
			default_wh = false;
		else
			argv[n++] = a;
		account = account || strcmp(a, "--account") == 0;
	}
	va_end(ap);
	if (!account) {
		argv[n++] = "--account";
		argv[n++] = "ACME-TEST";
	}
	if (default_wh) {
		argv[n++] = "--default-warehouse";
		argv[n++] = "COMPUTE_WH";
	}
	argv[n] = NULL;
	cr_assert(pipe(pipefd) == 0);
	f->pid = fork();
	cr_assert(f->pid >= 0);
	if (f->pid == 0) {
		int efd = open(err, O_WRONLY | O_CREAT | O_APPEND, 0644);
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		dup2(pipefd[1], 1);
		if (efd >= 0)
			dup2(efd, 2);
		close(pipefd[0]);
		execv(bin, (char *const *)(uintptr_t)argv);
		_exit(127);
	}
	close(pipefd[1]);
	deadline = tp_clock_mono_ms() + 15000;
	while (!strchr(line, '\n') && tp_clock_mono_ms() < deadline && got < sizeof(line) - 1) {
		struct pollfd p = {pipefd[0], POLLIN, 0};
		ssize_t r;
		if (poll(&p, 1, 200) <= 0)
			continue;
		r = read(pipefd[0], line + got, sizeof(line) - 1 - got);
		if (r <= 0)
			break;
		got += (size_t)r;
		line[got] = '\0';
	}
	close(pipefd[0]);
	cr_assert(sscanf(line, "fake_snowflake listening on http://127.0.0.1:%d", &f->port) == 1,
		  "the fake did not start: \"%s\" (stderr in %s)", line, err);
	f->url = tp_sprintf("http://127.0.0.1:%d", f->port);
	free(err);
	free(bin);
}

static inline void sf_fake_stop(sf_fake *f)
{
	ts_stop_pid(f->pid);
	free(f->url);
	free(f->log);
	free(f->key);
	free(f->pub);
	memset(f, 0, sizeof(*f));
}

/* The fake's request log so far: a JSON array of entries. */
static inline json_t *sf_log(const sf_fake *f)
{
	json_t *arr = json_array();
	char *text = ts_read(f->log);
	char *save = NULL;
	for (char *l = text ? strtok_r(text, "\n", &save) : NULL; l;
	     l = strtok_r(NULL, "\n", &save)) {
		json_t *e = json_loads(l, 0, NULL);
		cr_assert(e, "bad log line: %s", l);
		json_array_append_new(arr, e);
	}
	free(text);
	return arr;
}

/* Empties the log (between phases of a test). */
static inline void sf_log_reset(const sf_fake *f)
{
	FILE *fp = fopen(f->log, "w");
	if (fp)
		fclose(fp);
}

static inline bool sf_is_post(const json_t *e)
{
	return strcmp(tp_json_get_str(e, "method"), "POST") == 0 &&
	       strcmp(tp_json_get_str(e, "path"), "/api/v2/statements") == 0;
}

/* POST /api/v2/statements requests (round trips that submit SQL). */
static inline size_t sf_posts(const json_t *log)
{
	size_t i, n = 0;
	json_t *e;
	json_array_foreach(log, i, e)
		n += sf_is_post(e);
	return n;
}

/* Requests that changed the catalog, and the statements that did. */
static inline size_t sf_write_requests(const json_t *log)
{
	size_t i, n = 0;
	json_t *e;
	json_array_foreach(log, i, e)
		n += json_integer_value(json_object_get(e, "writes")) > 0;
	return n;
}

static inline size_t sf_write_statements(const json_t *log)
{
	size_t i, n = 0;
	json_t *e;
	json_array_foreach(log, i, e)
		n += (size_t)json_integer_value(json_object_get(e, "writes"));
	return n;
}

/* Every statement sent (in order), one string per statement. */
static inline json_t *sf_statements(const json_t *log)
{
	json_t *out = json_array(), *e, *s;
	size_t i, j;
	json_array_foreach(log, i, e)
		if (json_integer_value(json_object_get(e, "status")) == 200 ||
		    json_integer_value(json_object_get(e, "status")) == 202)
			json_array_foreach(json_object_get(e, "statements"), j, s)
				json_array_append(out, s);
	return out;
}

/* Index of the first statement starting with prefix, or -1. */
static inline ssize_t sf_find(const json_t *stmts, const char *prefix)
{
	size_t i;
	json_t *s;
	json_array_foreach(stmts, i, s)
		if (strncmp(json_string_value(s), prefix, strlen(prefix)) == 0)
			return (ssize_t)i;
	return -1;
}

static inline size_t sf_count_prefix(const json_t *stmts, const char *prefix)
{
	size_t i, n = 0;
	json_t *s;
	json_array_foreach(stmts, i, s)
		n += strncmp(json_string_value(s), prefix, strlen(prefix)) == 0;
	return n;
}

/* A client session on the fake as TAPESTRY (batching off unless window_ms > 0). */
static inline tp_sf_session *sf_session(const sf_fake *f, int64_t window_ms)
{
	char *pem = ts_read(f->key);
	json_t *cfg = json_pack("{s:s,s:s,s:s,s:s}", "account", "acme-test", "user", "tapestry",
				"role", "TAPESTRY_ADMIN", "private_key", pem);
	tp_provider_env env = {.pipeline = "t", .config = cfg, .endpoint = f->url};
	void *s = NULL;
	cr_assert(tp_sf_session_open(&s, &env) == 0, "%s", tp_error_last());
	((tp_sf_session *)s)->window_ms = window_ms;
	json_decref(cfg);
	free(pem);
	return s;
}

/* Runs SQL on the fake (behind Tapestry's back) and fails the test on an error. */
static inline void sf_sql(const sf_fake *f, const char *sql)
{
	tp_sf_session *s = sf_session(f, 0);
	int rc = tp_sf_exec(s, NULL, sql, 1, NULL);
	cr_assert(rc == 0, "%s: %s", sql, tp_error_last());
	tp_sf_session_close(s);
}

/* The fake's catalog (GET /fake/catalog). */
static inline json_t *sf_catalog(const sf_fake *f)
{
	char *url = tp_sprintf("%s/fake/catalog", f->url);
	ts_http_result r = ts_http("GET", url, NULL, NULL);
	json_t *c;
	cr_assert(r.status == 200);
	c = json_loads(r.body, 0, NULL);
	cr_assert(c);
	ts_http_result_free(&r);
	free(url);
	return c;
}

/* tapestry.yaml for a pipeline on the fake (key-pair authentication with dir/key.pem). */
static inline void sf_pipeline(const char *pdir, const sf_fake *f, const char *settings)
{
	char *text = tp_sprintf("pipeline: sftest\nsettings: {%s}\nproviders:\n  snowflake:\n"
				"    account: acme-test\n    user: TAPESTRY\n    role: TAPESTRY_ADMIN\n"
				"    private_key: \"${secret:file:%s}\"\n",
				settings, f->key);
	ts_write(pdir, "tapestry.yaml", text);
	free(text);
}

/* Runs `tapestry <cmd> <pdir> --state <db> [args]` with the endpoint pointed at the fake. */
static inline ts_result sf_tapestry(const sf_fake *f, const char *cmd, const char *pdir,
				    const char *db, const char *a1, const char *a2)
{
	char *ep = tp_sprintf("TAPESTRY_ENDPOINT_SNOWFLAKE=%s", f->url);
	const char *env[] = {ep, "TAPESTRY_SNOWFLAKE_BATCH_MS=60", NULL};
	const char *args[8] = {cmd, pdir, "--state", db};
	size_t n = 4;
	ts_result r;
	if (a1)
		args[n++] = a1;
	if (a2)
		args[n++] = a2;
	args[n] = NULL;
	r = ts_run_tapestry(args, env);
	free(ep);
	return r;
}

#endif
