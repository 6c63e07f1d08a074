/*
 * What the benchmark programs share (a header: CMake makes a program of each C file in bench/):
 * a free port on 127.0.0.1 and one HTTP request through Tapestry's own client.
 */
#ifndef TP_BENCH_H
#define TP_BENCH_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "util/util.h"

/* A port of 127.0.0.1 free right now, or -1. */
static inline int bench_free_port(void)
{
	struct sockaddr_in a = {.sin_family = AF_INET};
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0), port = -1;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
	    getsockname(fd, (struct sockaddr *)&a, &len) == 0)
		port = ntohs(a.sin_port);
	if (fd >= 0)
		close(fd);
	return port;
}

/* One request (body: NUL-terminated text or NULL). The status, or 0 when no answer came;
 * *out (when out is given): the body as a new string, NULL without an answer. */
static inline long bench_http(const char *method, const char *url, const char *const *headers,
			      const char *body, char **out)
{
	tp_http_client *c = tp_http_client_new();
	tp_http_request req;
	tp_http_reply r = {0};
	long status = 0;
	memset(&req, 0, sizeof(req));
	req.method = method;
	req.url = url;
	req.headers = headers;
	req.body = body;
	req.body_len = body ? strlen(body) : 0;
	req.timeout_ms = 30000;
	if (out)
		*out = NULL;
	if (tp_http_client_do(c, &r, &req) == 0) {
		status = r.status;
		if (out)
			*out = tp_strdup(tp_buf_cstr(&r.body));
	}
	tp_http_reply_clear(&r);
	tp_http_client_free(c);
	return status;
}

#endif
