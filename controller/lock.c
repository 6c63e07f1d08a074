/*
 * The one-controller-per-database lock, as processes take it: the owner string names the
 * process (pid, host, boot id), so a holder that was killed (kill -9, power loss) on this
 * host is recognised as dead and its lock taken over at once instead of waiting for the
 * lease to run out. A holder on another host, or a live one, is respected.
 */
#include "controller.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void boot_id(char *out, size_t n)
{
	tp_buf b;
	tp_buf_init(&b, 256);
	snprintf(out, n, "unknown");
	if (tp_file_read(&b, "/proc/sys/kernel/random/boot_id", 256) == 0 && b.len >= 8)
		snprintf(out, n, "%.8s", b.ptr);
	tp_buf_free(&b);
}

char *tp_lock_owner(const char *what)
{
	char host[128] = "localhost", boot[16];
	gethostname(host, sizeof(host) - 1);
	boot_id(boot, sizeof(boot));
	return tp_sprintf("%s pid=%ld host=%s boot=%s", what, (long)getpid(), host, boot);
}

static bool field(const char *owner, const char *key, char *out, size_t n)
{
	const char *p = strstr(owner, key);
	size_t len;
	if (!p)
		return false;
	p += strlen(key);
	len = strcspn(p, " ");
	if (len == 0 || len >= n)
		return false;
	memcpy(out, p, len);
	out[len] = '\0';
	return true;
}

/* A holder is dead when it ran on this host since this boot and its pid is gone. */
static bool holder_is_dead(const char *holder)
{
	char pid[32], host[128], boot[16], my_host[128] = "localhost", my_boot[16];
	long p;
	gethostname(my_host, sizeof(my_host) - 1);
	boot_id(my_boot, sizeof(my_boot));
	if (!field(holder, " pid=", pid, sizeof(pid)) || !field(holder, " host=", host, sizeof(host)) ||
	    !field(holder, " boot=", boot, sizeof(boot)))
		return false;
	if (strcmp(host, my_host) != 0 || strcmp(boot, my_boot) != 0)
		return false;
	p = strtol(pid, NULL, 10);
	if (p <= 0 || p == (long)getpid())
		return false;
	return kill((pid_t)p, 0) < 0 && errno == ESRCH;
}

int tp_lock_take(tp_state *st, const char *owner, int64_t lease_ms)
{
	char *holder = NULL;
	int64_t expires = 0;
	int rc = tp_state_lock_acquire(st, owner, lease_ms);
	if (rc != TP_ECONFLICT)
		return rc;
	if (tp_state_lock_holder(&holder, &expires, st) == 0 && holder_is_dead(holder)) {
		tp_log_warn("state lock held by %s, which is no longer running: taking it over",
			    holder);
		rc = tp_state_lock_takeover(st, holder, owner, lease_ms);
	} else {
		/* restore the conflict message */
		rc = tp_state_lock_acquire(st, owner, lease_ms);
	}
	free(holder);
	return rc;
}
