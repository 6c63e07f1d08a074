/*
 * Test helpers: temporary directories, files, process runs with captured output.
 */
#include "support.h"

#include <criterion/criterion.h>
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

ts_result ts_run_tapestry(const char *const *args, const char *const *env)
{
	ts_result r = {0};
	int out[2], err[2];
	int fds[2];
	pid_t pid;
	tp_buf bufs[2];
	int status = 0;
	int64_t deadline = tp_clock_mono_ms() + 120000;

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
