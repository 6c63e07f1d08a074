/*
 * The sd_notify protocol, spoken directly: one AF_UNIX datagram per message to the socket in
 * $NOTIFY_SOCKET, and a watchdog pinger thread that only pings while the reconcile loop shows
 * signs of life. Used by the loop (controller/loop.c) for READY/STATUS/STOPPING/WATCHDOG.
 */

#include "controller.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "../util/util.h"

int tp_notify(const char *state)
{
	const char *addr = getenv("NOTIFY_SOCKET");
	struct sockaddr_un sa;
	socklen_t salen;
	size_t n;
	ssize_t sent;
	int fd, err;

	if (!addr || !*addr)
		return 0;
	if (!state || !*state)
		return tp_error_set(TP_EINVALID, "notify: empty message");
	n = strlen(addr);
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	if (addr[0] == '@') {
		/* abstract namespace: a leading NUL, then the name; the length is exact */
		if (n > sizeof(sa.sun_path))
			return tp_error_set(TP_EINVALID, "NOTIFY_SOCKET: name too long (%zu bytes)",
					    n);
		memcpy(sa.sun_path + 1, addr + 1, n - 1);
		salen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n);
	} else if (addr[0] == '/') {
		if (n >= sizeof(sa.sun_path))
			return tp_error_set(TP_EINVALID, "NOTIFY_SOCKET: path too long (%zu bytes)",
					    n);
		memcpy(sa.sun_path, addr, n);
		salen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + 1);
	} else {
		/* systemd also knows vsock: addresses (VMs); a controller host has no use for them */
		return tp_error_set(TP_EINVALID, "NOTIFY_SOCKET: unsupported address \"%s\" (want "
						 "an absolute path or @name)", addr);
	}
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return tp_error_set(TP_EIO, "notify: socket: %s", strerror(errno));
	do {
		sent = sendto(fd, state, strlen(state), MSG_NOSIGNAL, (struct sockaddr *)&sa, salen);
	} while (sent < 0 && errno == EINTR);
	err = errno;
	close(fd);
	if (sent < 0)
		return tp_error_set(TP_EIO, "notify: sending to %s: %s", addr, strerror(err));
	if ((size_t)sent != strlen(state))
		return tp_error_set(TP_EIO, "notify: short datagram to %s", addr);
	return 1;
}

int tp_notifyf(const char *fmt, ...)
{
	va_list ap;
	tp_buf b;
	int rc;
	if (!getenv("NOTIFY_SOCKET"))
		return 0; /* do not even format */
	tp_buf_init(&b, 4096);
	va_start(ap, fmt);
	rc = tp_buf_vprintf(&b, fmt, ap);
	va_end(ap);
	if (rc == 0)
		rc = tp_notify(tp_buf_cstr(&b));
	tp_buf_free(&b);
	return rc;
}

static bool parse_u64(const char *s, unsigned long long *out)
{
	char *end;
	if (!s || *s < '0' || *s > '9')
		return false;
	errno = 0;
	*out = strtoull(s, &end, 10);
	return errno == 0 && *end == '\0';
}

int64_t tp_notify_watchdog_usec(void)
{
	unsigned long long usec, pid;
	const char *p = getenv("WATCHDOG_PID");
	if (p && *p && (!parse_u64(p, &pid) || pid != (unsigned long long)getpid()))
		return 0; /* meant for another process (e.g. the shell that exec'd us) */
	if (!parse_u64(getenv("WATCHDOG_USEC"), &usec) || usec == 0 || usec > (uint64_t)INT64_MAX)
		return 0;
	return (int64_t)usec;
}

/* ---------------------------------------------------------------- watchdog thread */

struct tp_watchdog {
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool stopping;
	_Atomic int64_t last_beat_ms;
	int64_t interval_ms; /* half the watchdog interval */
	int64_t stall_ms;
};

static void *pinger(void *arg)
{
	tp_watchdog *w = arg;
	bool warned = false;
	pthread_mutex_lock(&w->mu);
	while (!w->stopping) {
		struct timespec ts;
		int64_t idle = tp_clock_mono_ms() - atomic_load(&w->last_beat_ms);
		if (idle <= w->stall_ms) {
			tp_notify("WATCHDOG=1");
			warned = false;
		} else if (!warned) {
			tp_log_error("watchdog: the reconcile loop has not progressed for %.1f s; no "
				     "longer telling systemd it is alive", (double)idle / 1000.0);
			warned = true;
		}
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += w->interval_ms / 1000;
		ts.tv_nsec += (long)(w->interval_ms % 1000) * 1000000L;
		ts.tv_sec += ts.tv_nsec / 1000000000L;
		ts.tv_nsec %= 1000000000L;
		if (!w->stopping)
			pthread_cond_timedwait(&w->cv, &w->mu, &ts);
	}
	pthread_mutex_unlock(&w->mu);
	return NULL;
}

tp_watchdog *tp_watchdog_start(int64_t stall_ms)
{
	int64_t usec = tp_notify_watchdog_usec();
	tp_watchdog *w;
	if (usec <= 0)
		return NULL;
	w = tp_calloc(1, sizeof(*w));
	pthread_mutex_init(&w->mu, NULL);
	pthread_cond_init(&w->cv, NULL);
	w->interval_ms = usec / 2000 > 0 ? usec / 2000 : 1;
	w->stall_ms = stall_ms > 0 ? stall_ms : INT64_MAX / 2;
	atomic_store(&w->last_beat_ms, tp_clock_mono_ms());
	if (pthread_create(&w->thread, NULL, pinger, w) != 0) {
		tp_log_error("watchdog: cannot start the pinger thread");
		pthread_mutex_destroy(&w->mu);
		pthread_cond_destroy(&w->cv);
		free(w);
		return NULL;
	}
	return w;
}

void tp_watchdog_beat(tp_watchdog *w)
{
	if (w)
		atomic_store(&w->last_beat_ms, tp_clock_mono_ms());
}

void tp_watchdog_stop(tp_watchdog *w)
{
	if (!w)
		return;
	pthread_mutex_lock(&w->mu);
	w->stopping = true;
	pthread_cond_broadcast(&w->cv);
	pthread_mutex_unlock(&w->mu);
	pthread_join(w->thread, NULL);
	pthread_mutex_destroy(&w->mu);
	pthread_cond_destroy(&w->cv);
	free(w);
}
