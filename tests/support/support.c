/*
 * Test helpers: temporary directories, files, process runs with captured output.
 */
#include "support.h"

#include <criterion/criterion.h>
#include <curl/curl.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "util/util.h"

#ifndef TP_SOURCE_DIR
#define TP_SOURCE_DIR "."
#endif
#ifndef TP_BINARY
#define TP_BINARY "tapestry"
#endif

static const char *tmp_base(void)
{
	const char *t = getenv("TMPDIR");
	return t && *t ? t : "/tmp";
}

char *ts_tmpdir(void)
{
	char *tmpl = tp_sprintf("%s/tapestry-test-XXXXXX", tmp_base());
	cr_assert(mkdtemp(tmpl) != NULL, "mkdtemp: %s", strerror(errno));
	return tmpl;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

void ts_rmtree(const char *path)
{
	if (!path || strstr(path, "tapestry-test-") == NULL)
		return;
	nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static void mkparents(const char *full)
{
	char *copy = tp_strdup(full);
	for (char *p = copy + 1; *p; p++) {
		if (*p == '/') {
			*p = '\0';
			mkdir(copy, 0755);
			*p = '/';
		}
	}
	free(copy);
}

void ts_write_bytes(const char *dir, const char *rel, const void *data, size_t len)
{
	char *full = tp_sprintf("%s/%s", dir, rel);
	FILE *f;
	mkparents(full);
	f = fopen(full, "wb");
	cr_assert(f != NULL, "fopen %s: %s", full, strerror(errno));
	cr_assert(fwrite(data, 1, len, f) == len);
	fclose(f);
	free(full);
}

void ts_write(const char *dir, const char *rel, const char *text)
{
	ts_write_bytes(dir, rel, text, strlen(text));
}

char *ts_read(const char *path)
{
	tp_buf b;
	tp_buf_init(&b, 256u << 20);
	if (tp_file_read(&b, path, 256u << 20) < 0) {
		tp_buf_free(&b);
		return NULL;
	}
	return tp_buf_detach(&b);
}

char *ts_read_in(const char *dir, const char *rel)
{
	char *full = tp_sprintf("%s/%s", dir, rel);
	char *text = ts_read(full);
	free(full);
	return text;
}

void ts_expect_file(const char *dir, const char *rel, const char *want)
{
	char *c = ts_read_in(dir, rel);
	if (!want)
		cr_assert_null(c, "%s should not exist", rel);
	else
		cr_assert(c && strcmp(c, want) == 0, "%s: got \"%s\", want \"%s\"", rel,
			  c ? c : "(missing)", want);
	free(c);
}

char *ts_replace(const char *text, const char *token, const char *value)
{
	size_t tlen = strlen(token);
	tp_buf b;
	tp_buf_init(&b, 0);
	for (const char *p = text;;) {
		const char *at = tlen ? strstr(p, token) : NULL;
		if (!at) {
			tp_buf_puts(&b, p);
			break;
		}
		tp_buf_put(&b, p, (size_t)(at - p));
		tp_buf_puts(&b, value);
		p = at + tlen;
	}
	return tp_buf_detach(&b);
}

ts_result ts_run_tapestry(const char *const *args, const char *const *env)
{
	return ts_run_tapestry_for(args, env, 120000);
}

ts_result ts_run_tapestry_for(const char *const *args, const char *const *env, int64_t limit_ms)
{
	ts_result r = {0};
	int out[2], err[2];
	int fds[2];
	pid_t pid;
	tp_buf bufs[2];
	int status = 0;
	int64_t deadline = tp_clock_mono_ms() + limit_ms;

	tp_buf_init(&bufs[0], 64u << 20);
	tp_buf_init(&bufs[1], 64u << 20);
	cr_assert(pipe(out) == 0 && pipe(err) == 0);
	pid = fork();
	cr_assert(pid >= 0);
	if (pid == 0) {
		size_t n = 0;
		const char **argv;
		while (args[n])
			n++;
		argv = calloc(n + 2, sizeof(*argv));
		argv[0] = TP_BINARY;
		for (size_t i = 0; i < n; i++)
			argv[i + 1] = args[i];
		for (size_t i = 0; env && env[i]; i++)
			putenv((char *)(uintptr_t)env[i]);
		dup2(out[1], 1);
		dup2(err[1], 2);
		close(out[0]);
		close(err[0]);
		execv(TP_BINARY, (char *const *)(uintptr_t)argv);
		_exit(127);
	}
	close(out[1]);
	close(err[1]);
	fds[0] = out[0];
	fds[1] = err[0];
	while (fds[0] >= 0 || fds[1] >= 0) {
		struct pollfd p[2] = {{fds[0], POLLIN, 0}, {fds[1], POLLIN, 0}};
		if (tp_clock_mono_ms() > deadline) {
			kill(pid, SIGKILL);
			break;
		}
		if (poll(p, 2, 1000) <= 0)
			continue;
		for (int i = 0; i < 2; i++) {
			char chunk[4096];
			ssize_t n;
			if (fds[i] < 0 || !(p[i].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
			n = read(fds[i], chunk, sizeof(chunk));
			if (n > 0) {
				tp_buf_put(&bufs[i], chunk, (size_t)n);
			} else if (n == 0 || errno != EINTR) {
				close(fds[i]);
				fds[i] = -1;
			}
		}
	}
	for (int i = 0; i < 2; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	waitpid(pid, &status, 0);
	r.status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
	r.out = tp_buf_detach(&bufs[0]);
	r.err = tp_buf_detach(&bufs[1]);
	return r;
}

void ts_result_free(ts_result *r)
{
	if (!r)
		return;
	free(r->out);
	free(r->err);
}

static tp_buf *snap_buf;

static int snap_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)flag;
	(void)ftw;
	tp_buf_printf(snap_buf, "%s %o %lld %lld.%09ld\n", path, st->st_mode,
		      (long long)st->st_size, (long long)st->st_mtim.tv_sec, st->st_mtim.tv_nsec);
	return 0;
}

char *ts_snapshot(const char *dir)
{
	tp_buf b;
	tp_buf_init(&b, 64u << 20);
	snap_buf = &b;
	nftw(dir, snap_entry, 16, FTW_PHYS);
	snap_buf = NULL;
	return tp_buf_detach(&b);
}

char *ts_source_path(const char *rel)
{
	return tp_sprintf("%s/%s", TP_SOURCE_DIR, rel);
}

/* ---------------------------------------------------------------- git */

#define GIT_HINT "install it with `apt-get install git` (scripts/install-deps.sh does)"

void ts_git_env(void)
{
	int st;
	setenv("GIT_AUTHOR_NAME", "Ada Lovelace", 1);
	setenv("GIT_AUTHOR_EMAIL", "ada@example.com", 1);
	setenv("GIT_COMMITTER_NAME", "Ada Lovelace", 1);
	setenv("GIT_COMMITTER_EMAIL", "ada@example.com", 1);
	setenv("GIT_AUTHOR_DATE", "@1700000000 +0000", 1);
	setenv("GIT_COMMITTER_DATE", "@1700000000 +0000", 1);
	setenv("GIT_CONFIG_NOSYSTEM", "1", 1);
	setenv("GIT_CONFIG_GLOBAL", "/dev/null", 1);
	setenv("GIT_TERMINAL_PROMPT", "0", 1);
	st = system("git --version >/dev/null 2>&1");
	cr_assert(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0,
		  "the git command line is needed to build test repositories: " GIT_HINT);
}

char *ts_git(const char *dir, const char *fmt, ...)
{
	va_list ap;
	tp_buf args, out;
	char *cmd, chunk[4096];
	FILE *p;
	size_t n;
	int st;

	tp_buf_init(&args, 0);
	va_start(ap, fmt);
	tp_buf_vprintf(&args, fmt, ap);
	va_end(ap);
	cmd = tp_sprintf("git -C '%s' -c init.defaultBranch=main -c commit.gpgsign=false "
			 "-c tag.gpgsign=false -c core.symlinks=true %s 2>&1", dir, tp_buf_cstr(&args));
	tp_buf_init(&out, 0);
	p = popen(cmd, "r");
	cr_assert(p != NULL, "popen: %s", strerror(errno));
	while ((n = fread(chunk, 1, sizeof(chunk), p)) > 0)
		tp_buf_put(&out, chunk, n);
	st = pclose(p);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "`%s` failed: %s", cmd,
		  tp_buf_cstr(&out));
	while (out.len > 0 && (out.ptr[out.len - 1] == '\n' || out.ptr[out.len - 1] == '\r'))
		out.ptr[--out.len] = '\0';
	tp_buf_free(&args);
	free(cmd);
	return tp_buf_detach(&out);
}

int ts_free_port(void)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0};
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	cr_assert(fd >= 0);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	cr_assert(bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0, "bind: %s", strerror(errno));
	cr_assert(getsockname(fd, (struct sockaddr *)&a, &len) == 0);
	close(fd);
	return ntohs(a.sin_port);
}

bool ts_can_connect(int port)
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

void ts_stop_pid(pid_t pid)
{
	int st;
	if (pid <= 0)
		return;
	kill(pid, SIGTERM);
	for (int i = 0; i < 250; i++) {
		if (waitpid(pid, &st, WNOHANG) == pid)
			return;
		usleep(20000);
	}
	kill(pid, SIGKILL);
	waitpid(pid, &st, 0);
}

pid_t ts_git_daemon_start(const char *base, int port)
{
	return ts_git_daemon_start_logged(base, port, NULL);
}

/*
 * `git daemon` is started as its own binary (git --exec-path)/git-daemon rather than through
 * the `git` wrapper, which would run it as a grandchild: the PID returned (and stopped) is the
 * daemon itself, and PR_SET_PDEATHSIG ends it even if the test process crashes.
 */
pid_t ts_git_daemon_start_logged(const char *base, int port, const char *log_path)
{
	char *exec_path = ts_git(base, "--exec-path");
	char *daemon = tp_sprintf("%s/git-daemon", exec_path);
	char *basearg = tp_sprintf("--base-path=%s", base);
	char *portarg = tp_sprintf("--port=%d", port);
	int64_t deadline;
	pid_t pid;

	cr_assert_eq(access(daemon, X_OK), 0, "git daemon is missing (%s): " GIT_HINT, daemon);
	pid = fork();
	cr_assert(pid >= 0);
	if (pid == 0) {
		int null = open("/dev/null", O_RDWR);
		int out = log_path ? open(log_path, O_WRONLY | O_CREAT | O_TRUNC, 0644) : null;
		char *path = tp_sprintf("%s:%s", exec_path, getenv("PATH") ? getenv("PATH") : "");
		const char *argv[] = {"git-daemon", "--reuseaddr", basearg, "--export-all",
				      "--listen=127.0.0.1", portarg,
				      log_path ? "--verbose" : base, log_path ? base : NULL, NULL};
		/* git-daemon runs a copy of itself per connection, found through PATH */
		setenv("PATH", path, 1);
		prctl(PR_SET_PDEATHSIG, SIGKILL); /* never outlives the test */
		dup2(null, 0);
		dup2(out, 1);
		dup2(out, 2);
		execv(daemon, (char *const *)(uintptr_t)argv);
		_exit(127);
	}
	deadline = tp_clock_mono_ms() + 5000;
	while (!ts_can_connect(port)) {
		int st = 0;
		cr_assert(waitpid(pid, &st, WNOHANG) == 0,
			  "git daemon exited at start (status %d): " GIT_HINT, st);
		cr_assert(tp_clock_mono_ms() < deadline, "git daemon did not listen within 5 s");
		usleep(20000);
	}
	free(exec_path);
	free(daemon);
	free(basearg);
	free(portarg);
	return pid;
}

pid_t ts_spawn_tapestry(const char *const *args, const char *const *env, const char *log_path)
{
	pid_t pid = fork();
	cr_assert(pid >= 0);
	if (pid == 0) {
		size_t n = 0;
		const char **argv;
		int fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND, 0644);
		while (args[n])
			n++;
		argv = calloc(n + 2, sizeof(*argv));
		argv[0] = TP_BINARY;
		for (size_t i = 0; i < n; i++)
			argv[i + 1] = args[i];
		for (size_t i = 0; env && env[i]; i++)
			putenv((char *)(uintptr_t)env[i]);
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		dup2(fd, 1);
		dup2(fd, 2);
		execv(TP_BINARY, (char *const *)(uintptr_t)argv);
		_exit(127);
	}
	return pid;
}

/* ---------------------------------------------------------------- HTTP */

static size_t on_body(char *data, size_t size, size_t n, void *ctx)
{
	tp_buf_put(ctx, data, size * n);
	return size * n;
}

ts_http_result ts_http(const char *method, const char *url, const char *const *headers,
		       const char *body)
{
	ts_http_result r = {0};
	CURL *h = curl_easy_init();
	struct curl_slist *hl = NULL;
	tp_buf b;
	tp_buf_init(&b, 64u << 20);
	cr_assert_not_null(h);
	for (size_t i = 0; headers && headers[i]; i++)
		hl = curl_slist_append(hl, headers[i]);
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hl);
	curl_easy_setopt(h, CURLOPT_TIMEOUT, 10L);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &b);
	curl_easy_setopt(h, CURLOPT_NOPROXY, "*");
	if (strcmp(method, "POST") == 0) {
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, body ? body : "");
		curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)(body ? strlen(body) : 0));
	}
	if (curl_easy_perform(h) == CURLE_OK)
		curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r.status);
	curl_slist_free_all(hl);
	curl_easy_cleanup(h);
	r.body = tp_buf_detach(&b);
	return r;
}

void ts_http_result_free(ts_http_result *r)
{
	if (r)
		free(r->body);
}
