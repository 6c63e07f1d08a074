/*
 * controller/notify.c against a real AF_UNIX datagram socket standing in for systemd: the
 * message arrives whole on a path socket and on an abstract one, no NOTIFY_SOCKET is a no-op,
 * bad addresses and a missing listener are errors; WATCHDOG_USEC/WATCHDOG_PID decide the
 * watchdog interval; the pinger thread pings while the loop beats and stops when it stalls.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <poll.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "controller/controller.h"
#include "support/support.h"
#include "util/util.h"

static char *tmp;

static void setup(void)
{
	tmp = ts_tmpdir();
	unsetenv("NOTIFY_SOCKET");
	unsetenv("WATCHDOG_USEC");
	unsetenv("WATCHDOG_PID");
}

static void teardown(void)
{
	ts_rmtree(tmp);
	free(tmp);
}

TestSuite(notify, .init = setup, .fini = teardown);

/* A bound datagram socket; name starting with '@' is abstract. */
static int listener(const char *name)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	size_t n = strlen(name);
	socklen_t len;
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	cr_assert(fd >= 0);
	if (name[0] == '@') {
		memcpy(sa.sun_path + 1, name + 1, n - 1);
		len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n);
	} else {
		memcpy(sa.sun_path, name, n);
		len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + 1);
	}
	cr_assert_eq(bind(fd, (struct sockaddr *)&sa, len), 0, "bind %s: %s", name,
		     strerror(errno));
	return fd;
}

/* The next datagram (waits up to ms), or NULL. */
static char *receive(int fd, int ms)
{
	struct pollfd p = {fd, POLLIN, 0};
	char buf[4096];
	ssize_t n;
	if (poll(&p, 1, ms) <= 0)
		return NULL;
	n = recv(fd, buf, sizeof(buf) - 1, 0);
	cr_assert(n >= 0);
	buf[n] = '\0';
	return tp_strdup(buf);
}

Test(notify, sends_one_datagram_to_a_path_socket)
{
	char *path = tp_sprintf("%s/notify.sock", tmp);
	int fd = listener(path);
	char *got;
	setenv("NOTIFY_SOCKET", path, 1);
	cr_assert_eq(tp_notify("READY=1\nSTATUS=synced 3f2a9c1"), 1, "%s", tp_error_last());
	got = receive(fd, 2000);
	cr_assert_str_eq(got, "READY=1\nSTATUS=synced 3f2a9c1");
	free(got);
	cr_assert_eq(tp_notifyf("STATUS=applying %.7s (%d actions)", "0123456789", 3), 1);
	got = receive(fd, 2000);
	cr_assert_str_eq(got, "STATUS=applying 0123456 (3 actions)");
	free(got);
	close(fd);
	free(path);
}

Test(notify, abstract_namespace)
{
	char *name = tp_sprintf("@tapestry-test-notify-%d", (int)getpid());
	int fd = listener(name);
	char *got;
	setenv("NOTIFY_SOCKET", name, 1);
	cr_assert_eq(tp_notify("STOPPING=1"), 1, "%s", tp_error_last());
	got = receive(fd, 2000);
	cr_assert_str_eq(got, "STOPPING=1");
	free(got);
	close(fd);
	free(name);
}

Test(notify, no_socket_is_a_no_op)
{
	cr_assert_eq(tp_notify("READY=1"), 0);
	cr_assert_eq(tp_notifyf("STATUS=%s", "x"), 0);
	setenv("NOTIFY_SOCKET", "", 1);
	cr_assert_eq(tp_notify("READY=1"), 0);
}

Test(notify, bad_addresses_and_missing_listener_are_errors)
{
	char *path = tp_sprintf("%s/nobody-listens.sock", tmp);
	char longname[200];
	setenv("NOTIFY_SOCKET", "relative/notify.sock", 1);
	cr_assert_eq(tp_notify("READY=1"), TP_EINVALID);
	cr_assert(strstr(tp_error_last(), "unsupported address"), "%s", tp_error_last());
	setenv("NOTIFY_SOCKET", "vsock:2:1234", 1);
	cr_assert_eq(tp_notify("READY=1"), TP_EINVALID);
	memset(longname, 'a', sizeof(longname) - 1);
	longname[0] = '/';
	longname[sizeof(longname) - 1] = '\0';
	setenv("NOTIFY_SOCKET", longname, 1);
	cr_assert_eq(tp_notify("READY=1"), TP_EINVALID);
	cr_assert(strstr(tp_error_last(), "too long"), "%s", tp_error_last());
	longname[0] = '@';
	setenv("NOTIFY_SOCKET", longname, 1);
	cr_assert_eq(tp_notify("READY=1"), TP_EINVALID);
	setenv("NOTIFY_SOCKET", path, 1);
	cr_assert_eq(tp_notify("READY=1"), TP_EIO);
	cr_assert(strstr(tp_error_last(), path), "%s", tp_error_last());
	cr_assert_eq(tp_notify(""), TP_EINVALID);
	free(path);
}

Test(notify, watchdog_interval_from_the_environment)
{
	char pid[32];
	cr_assert_eq(tp_notify_watchdog_usec(), 0);
	setenv("WATCHDOG_USEC", "30000000", 1);
	cr_assert_eq(tp_notify_watchdog_usec(), 30000000);
	snprintf(pid, sizeof(pid), "%d", (int)getpid());
	setenv("WATCHDOG_PID", pid, 1);
	cr_assert_eq(tp_notify_watchdog_usec(), 30000000);
	snprintf(pid, sizeof(pid), "%d", (int)getpid() + 1);
	setenv("WATCHDOG_PID", pid, 1);
	cr_assert_eq(tp_notify_watchdog_usec(), 0, "meant for another process");
	unsetenv("WATCHDOG_PID");
	setenv("WATCHDOG_USEC", "12abc", 1);
	cr_assert_eq(tp_notify_watchdog_usec(), 0);
	setenv("WATCHDOG_USEC", "-5", 1);
	cr_assert_eq(tp_notify_watchdog_usec(), 0);
	setenv("WATCHDOG_USEC", "0", 1);
	cr_assert_eq(tp_notify_watchdog_usec(), 0);
	/* off: no thread at all, and the calls are harmless */
	cr_assert_null(tp_watchdog_start(1000));
	tp_watchdog_beat(NULL);
	tp_watchdog_stop(NULL);
}

Test(notify, pinger_pings_while_the_loop_beats_and_stops_when_it_stalls)
{
	char *path = tp_sprintf("%s/wd.sock", tmp);
	int fd = listener(path);
	tp_watchdog *w;
	char *got;
	int pings = 0;
	setenv("NOTIFY_SOCKET", path, 1);
	setenv("WATCHDOG_USEC", "100000", 1); /* 100 ms: a ping every 50 ms */
	w = tp_watchdog_start(400);
	cr_assert_not_null(w);
	/* beating: pings keep coming */
	for (int i = 0; i < 8; i++) {
		tp_watchdog_beat(w);
		got = receive(fd, 500);
		cr_assert_not_null(got, "no WATCHDOG=1 while the loop beats");
		cr_assert_str_eq(got, "WATCHDOG=1");
		free(got);
		pings++;
	}
	cr_assert_eq(pings, 8);
	/* stalled: once 400 ms pass without a beat, the pings stop */
	usleep(600000);
	while ((got = receive(fd, 0)) != NULL) /* drain what was sent before the stall */
		free(got);
	got = receive(fd, 300);
	cr_assert_null(got, "pinged for a stalled loop: %s", got);
	/* a beat revives it */
	tp_watchdog_beat(w);
	got = receive(fd, 500);
	cr_assert_not_null(got);
	free(got);
	tp_watchdog_stop(w);
	close(fd);
	free(path);
}
