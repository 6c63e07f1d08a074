/*
 * bench/lib_floor: the memory floor of the libraries Tapestry links, with no Tapestry code
 * running. It is linked exactly like `tapestry` (CMake links every bench program against
 * tapestry_core: libgit2, libcurl, OpenSSL, SQLite, libmicrohttpd, jansson, libyaml, expat
 * and what they pull in), and initialises them the way `tapestry run` does before its first
 * sync: curl_global_init and one easy handle, git_libgit2_init, a SQLite database in WAL mode
 * with one committed row, one HMAC-SHA256, and a libmicrohttpd server with the controller's
 * flags and thread pool on 127.0.0.1. Then it prints "ready <port>" and sleeps until
 * killed; bench_scale reads its memory from /proc beside the idle daemon's, so the daemon's
 * own share is the difference.
 *
 * Usage: bench_lib_floor DIR   (DIR: where the SQLite file goes)
 */
#include <curl/curl.h>
#include <git2.h>
#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "util/util.h"

static enum MHD_Result refuse(void *cls, struct MHD_Connection *c, const char *url,
			      const char *method, const char *version, const char *data,
			      size_t *size, void **state)
{
	(void)cls, (void)c, (void)url, (void)method, (void)version, (void)data, (void)size,
	    (void)state;
	return MHD_NO;
}

int main(int argc, char **argv)
{
	sqlite3 *db = NULL;
	struct MHD_Daemon *d = NULL;
	const union MHD_DaemonInfo *info;
	CURL *easy;
	unsigned char mac[EVP_MAX_MD_SIZE];
	unsigned int maclen = 0;
	char *path;
	int rc = 1;

	if (argc != 2) {
		fprintf(stderr, "usage: bench_lib_floor DIR\n");
		return 64;
	}
	curl_global_init(CURL_GLOBAL_DEFAULT);
	easy = curl_easy_init();
	if (git_libgit2_init() < 0)
		goto done;
	path = tp_sprintf("%s/floor.db", argv[1]);
	if (sqlite3_open(path, &db) != SQLITE_OK ||
	    sqlite3_exec(db,
			 "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;"
			 "CREATE TABLE IF NOT EXISTS t (k TEXT PRIMARY KEY, v TEXT);"
			 "INSERT OR REPLACE INTO t VALUES ('k', 'v'); SELECT * FROM t;",
			 NULL, NULL, NULL) != SQLITE_OK) {
		free(path);
		goto done;
	}
	free(path);
	if (!HMAC(EVP_sha256(), "key", 3, (const unsigned char *)"data", 4, mac, &maclen))
		goto done;
	{
		struct sockaddr_in a = {.sin_family = AF_INET};
		a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		/* clang-format off */
		d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO |
				     MHD_USE_ERROR_LOG, 0, NULL, NULL, refuse, NULL,
				     MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&a,
				     MHD_OPTION_THREAD_POOL_SIZE, 4u,
				     MHD_OPTION_END);
		/* clang-format on */
	}
	if (!d || !(info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT)))
		goto done;
	printf("ready %u\n", (unsigned)info->port);
	fflush(stdout);
	for (;;)
		pause();
done:
	fprintf(stderr, "bench_lib_floor: a library failed to initialise\n");
	if (d)
		MHD_stop_daemon(d);
	sqlite3_close(db);
	git_libgit2_shutdown();
	curl_easy_cleanup(easy);
	curl_global_cleanup();
	return rc;
}
