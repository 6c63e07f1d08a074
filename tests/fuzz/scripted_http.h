/*
 * Shared by the fuzz targets of the API clients (fuzz_aws, fuzz_snowflake, fuzz_airbyte,
 * fuzz_grouparoo, fuzz_http_client): a scripted HTTP/1.1 server on 127.0.0.1 that answers
 * every request the code under test sends with the next response of the fuzz input, and a
 * virtual clock, so that retries, backoff and polling cost no real time. The providers are
 * pointed at the server through their endpoint override, exactly as the tests and the demo
 * point them at local servers, so the bytes go through the same path as a live reply: the
 * HTTP client (libcurl, bounded bodies, Retry-After), the provider's error classification,
 * its JSON or XML parsing and the mapping into observed specs.
 *
 * Input format (human-writable, so seeds are readable files):
 *
 *     <scenario name>\n
 *     <status>\n<Header: value>\n...\n\n<body>
 *     \n%%\n
 *     <status>\n\n<body>
 *     ...
 *
 * A response whose status line is followed by an empty line has no headers; one without any
 * empty line is all body. A status outside 200..599 reads as 200 (interim and out-of-range
 * codes would only test libcurl's framing). The server frames each response itself
 * (Content-Length, keep-alive) and drops Content-Length, Transfer-Encoding and Connection
 * headers from the script: what is fuzzed here is status, headers and body; raw response
 * bytes, framing included, are fuzz_http_client's input (fz_server_load_raw). When the script
 * runs out, every further request gets 400 with an empty body — a permanent failure for every
 * client — so a run always ends. An unknown scenario name picks one by the sum of its bytes.
 *
 * Header-only: every fuzz target is a single source file (CMakeLists.txt builds
 * tests/fuzz/fuzz_*.c one executable each). The server thread lives as long as the fuzzing
 * process, which libFuzzer bounds with -max_total_time; it never allocates, so libFuzzer's
 * per-input leak accounting sees only the code under test.
 */
#ifndef TP_FUZZ_SCRIPTED_HTTP_H
#define TP_FUZZ_SCRIPTED_HTTP_H

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "reconcilers/reconciler.h"
#include "util/util.h"

#define FZ_MAX_RESPONSES 64
#define FZ_MAX_CONNS     8
#define FZ_REQ_MAX       ((size_t)256 * 1024)
#define FZ_HEAD_MAX      8192

typedef struct {
	int status;
	const char *headers; /* "Name: value" lines, '\n'-separated, unsanitised */
	size_t headers_len;
	const char *body;
	size_t body_len;
} fz_response;

typedef struct {
	const char *scenario;
	size_t scenario_len;
	fz_response resp[FZ_MAX_RESPONSES];
	size_t n;
} fz_script;

/* ---------------------------------------------------------------- script */

static inline const char *fz_find(const char *p, const char *end, const char *needle, size_t nlen)
{
	if ((size_t)(end - p) < nlen)
		return NULL;
	return memmem(p, (size_t)(end - p), needle, nlen);
}

static inline void fz_response_parse(fz_response *r, const char *p, const char *end)
{
	const char *nl = memchr(p, '\n', (size_t)(end - p));
	const char *rest, *blank;
	long status = 0;
	int digits = 0;

	memset(r, 0, sizeof(*r));
	for (const char *q = p; q < (nl ? nl : end) && *q >= '0' && *q <= '9' && digits < 3;
	     q++, digits++)
		status = status * 10 + (*q - '0');
	r->status = status >= 200 && status <= 599 ? (int)status : 200;
	if (!nl) /* a status line and nothing else */
		return;
	rest = nl + 1;
	if (rest < end && *rest == '\n') { /* no headers */
		r->body = rest + 1;
		r->body_len = (size_t)(end - rest - 1);
		return;
	}
	blank = fz_find(rest, end, "\n\n", 2);
	if (!blank) { /* all body */
		r->body = rest;
		r->body_len = (size_t)(end - rest);
		return;
	}
	r->headers = rest;
	r->headers_len = (size_t)(blank - rest);
	r->body = blank + 2;
	r->body_len = (size_t)(end - blank - 2);
}

/* Splits the input into the scenario name and at most FZ_MAX_RESPONSES responses; the script
 * points into data, which must outlive it. */
static inline void fz_script_parse(fz_script *s, const uint8_t *data, size_t size)
{
	const char *p = (const char *)data, *end = p + size;
	const char *nl = memchr(p, '\n', size);

	memset(s, 0, sizeof(*s));
	s->scenario = p;
	s->scenario_len = nl ? (size_t)(nl - p) : size;
	if (!nl)
		return;
	p = nl + 1;
	while (p < end && s->n < FZ_MAX_RESPONSES) {
		const char *sep = fz_find(p, end, "\n%%\n", 4);
		const char *stop = sep ? sep : end;
		fz_response_parse(&s->resp[s->n++], p, stop);
		if (!sep)
			break;
		p = sep + 4;
	}
}

/* The index of the scenario named by the script among names[0..n): its exact name, or the sum
 * of its bytes modulo n, so that mutated names still reach every scenario. */
static inline size_t fz_pick(const fz_script *s, const char *const *names, size_t n)
{
	unsigned sum = 0;
	for (size_t i = 0; i < n; i++)
		if (strlen(names[i]) == s->scenario_len &&
		    memcmp(names[i], s->scenario, s->scenario_len) == 0)
			return i;
	for (size_t i = 0; i < s->scenario_len; i++)
		sum += (unsigned char)s->scenario[i];
	return sum % n;
}

/* ---------------------------------------------------------------- server */

static struct {
	pthread_mutex_t mu;
	pthread_cond_t idle_cv;
	int lfd;
	char url[64];
	const fz_script *script; /* responses being served, or NULL */
	size_t next;
	const uint8_t *raw; /* raw mode: these bytes, then the connection is closed */
	size_t raw_len;
	bool busy;              /* a response is being written from the script's memory */
	unsigned long requests; /* requests answered since the last load */
	char conn_buf[FZ_MAX_CONNS][FZ_REQ_MAX];
	char head[FZ_HEAD_MAX];
} fz_srv = {.mu = PTHREAD_MUTEX_INITIALIZER, .idle_cv = PTHREAD_COND_INITIALIZER, .lfd = -1};

static inline bool fz_token_char(char c)
{
	return c > 0x20 && c < 0x7f && !strchr("()<>@,;:\\\"/[]?={}", c);
}

/* Appends one scripted header line to the response head, or nothing when it is not a header
 * or one of the framing headers the server owns. */
static inline size_t fz_put_header(char *out, size_t at, size_t cap, const char *line, size_t len)
{
	static const char *const framing[] = {"content-length",  "transfer-encoding", "connection",
					      "keep-alive",      "trailer",           "upgrade",
					      "proxy-connection"};
	const char *colon = memchr(line, ':', len);
	size_t nlen = colon ? (size_t)(colon - line) : 0;
	if (nlen == 0 || nlen > 64)
		return at;
	for (size_t i = 0; i < nlen; i++)
		if (!fz_token_char(line[i]))
			return at;
	for (size_t i = 0; i < sizeof(framing) / sizeof(framing[0]); i++)
		if (strlen(framing[i]) == nlen && strncasecmp(framing[i], line, nlen) == 0)
			return at;
	if (at + len + 2 >= cap)
		return at;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)line[i];
		out[at++] = (c < 0x20 && c != '\t') || c == 0x7f ? ' ' : (char)c;
	}
	out[at++] = '\r';
	out[at++] = '\n';
	return at;
}

static inline bool fz_send_all(int fd, struct iovec *iov, int n)
{
	while (n > 0) {
		/* MSG_NOSIGNAL: a client that hung up (a reply over its size cap) is no SIGPIPE */
		struct msghdr m;
		ssize_t w;
		memset(&m, 0, sizeof(m));
		m.msg_iov = iov;
		m.msg_iovlen = (size_t)n;
		w = sendmsg(fd, &m, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return false;
		while (n > 0 && (size_t)w >= iov->iov_len) {
			w -= (ssize_t)iov->iov_len;
			iov++;
			n--;
		}
		if (n > 0) {
			iov->iov_base = (char *)iov->iov_base + w;
			iov->iov_len -= (size_t)w;
		}
	}
	return true;
}

/* Answers one complete request on fd. False: close the connection. */
static inline bool fz_respond(int fd, bool head_only)
{
	const fz_response *r = NULL;
	const uint8_t *raw = NULL;
	size_t raw_len = 0, at;
	struct iovec iov[2];
	bool keep = true, no_body;
	int status;

	pthread_mutex_lock(&fz_srv.mu);
	fz_srv.requests++;
	if (fz_srv.raw) {
		raw = fz_srv.raw;
		raw_len = fz_srv.raw_len;
	} else if (fz_srv.script && fz_srv.next < fz_srv.script->n) {
		r = &fz_srv.script->resp[fz_srv.next++];
	}
	fz_srv.busy = true;
	pthread_mutex_unlock(&fz_srv.mu);

	if (raw) {
		iov[0].iov_base = (void *)(uintptr_t)raw;
		iov[0].iov_len = raw_len;
		fz_send_all(fd, iov, 1);
		shutdown(fd, SHUT_WR);
		keep = false;
		goto done;
	}
	status = r ? r->status : 400;
	no_body = head_only || status == 204 || status == 304;
	at = (size_t)snprintf(fz_srv.head, FZ_HEAD_MAX, "HTTP/1.1 %d Scripted\r\n", status);
	for (const char *p = r ? r->headers : NULL, *end = p ? p + r->headers_len : NULL;
	     p && p < end;) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t len = nl ? (size_t)(nl - p) : (size_t)(end - p);
		if (len && p[len - 1] == '\r')
			len--;
		at = fz_put_header(fz_srv.head, at, FZ_HEAD_MAX - 64, p, len);
		p = nl ? nl + 1 : end;
	}
	if (!no_body)
		at += (size_t)snprintf(fz_srv.head + at, FZ_HEAD_MAX - at,
				       "Content-Length: %zu\r\n", r ? r->body_len : 0);
	at += (size_t)snprintf(fz_srv.head + at, FZ_HEAD_MAX - at, "\r\n");
	iov[0].iov_base = fz_srv.head;
	iov[0].iov_len = at;
	iov[1].iov_base = (void *)(uintptr_t)(r && !no_body ? r->body : "");
	iov[1].iov_len = r && !no_body ? r->body_len : 0;
	keep = fz_send_all(fd, iov, 2);
done:
	pthread_mutex_lock(&fz_srv.mu);
	fz_srv.busy = false;
	pthread_cond_broadcast(&fz_srv.idle_cv);
	pthread_mutex_unlock(&fz_srv.mu);
	return keep;
}

/* Length of the complete request at the start of buf, 0 while it is incomplete, (size_t)-1
 * when it can never fit. */
static inline size_t fz_request_len(const char *buf, size_t len, bool *head_only)
{
	const char *end = fz_find(buf, buf + len, "\r\n\r\n", 4);
	const char *p = buf, *hend;
	size_t body = 0;
	if (!end)
		return 0;
	hend = end + 4;
	while (p < hend) {
		const char *nl = memchr(p, '\n', (size_t)(hend - p));
		size_t llen = nl ? (size_t)(nl - p) : (size_t)(hend - p);
		if (llen > 15 && strncasecmp(p, "content-length:", 15) == 0) {
			body = 0;
			for (size_t i = 15; i < llen && body <= FZ_REQ_MAX; i++)
				if (p[i] >= '0' && p[i] <= '9')
					body = body * 10 + (size_t)(p[i] - '0');
		}
		p = nl ? nl + 1 : hend;
	}
	*head_only = len >= 5 && memcmp(buf, "HEAD ", 5) == 0;
	if (body > FZ_REQ_MAX)
		return (size_t)-1;
	if ((size_t)(hend - buf) + body > len)
		return 0;
	return (size_t)(hend - buf) + body;
}

static inline void *fz_serve(void *arg)
{
	int fds[FZ_MAX_CONNS];
	size_t lens[FZ_MAX_CONNS];
	(void)arg;
	for (int i = 0; i < FZ_MAX_CONNS; i++)
		fds[i] = -1;
	for (;;) {
		struct pollfd p[1 + FZ_MAX_CONNS];
		int slot[1 + FZ_MAX_CONNS];
		nfds_t n = 0;
		p[n].fd = fz_srv.lfd;
		p[n].events = POLLIN;
		slot[n++] = -1;
		for (int i = 0; i < FZ_MAX_CONNS; i++)
			if (fds[i] >= 0) {
				p[n].fd = fds[i];
				p[n].events = POLLIN;
				slot[n++] = i;
			}
		if (poll(p, n, -1) < 0)
			continue;
		if (p[0].revents & POLLIN) {
			int c = accept(fz_srv.lfd, NULL, NULL), placed = 0;
			for (int i = 0; c >= 0 && i < FZ_MAX_CONNS && !placed; i++)
				if (fds[i] < 0) {
					fds[i] = c;
					lens[i] = 0;
					placed = 1;
				}
			if (c >= 0 && !placed)
				close(c);
		}
		for (nfds_t k = 1; k < n; k++) {
			int i = slot[k];
			ssize_t got;
			bool open = true;
			if (!(p[k].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
			got = recv(fds[i], fz_srv.conn_buf[i] + lens[i], FZ_REQ_MAX - lens[i], 0);
			if (got <= 0) {
				open = false;
			} else {
				lens[i] += (size_t)got;
				for (;;) {
					bool head_only = false;
					size_t req =
					    fz_request_len(fz_srv.conn_buf[i], lens[i], &head_only);
					if (req == (size_t)-1 ||
					    (req == 0 && lens[i] == FZ_REQ_MAX)) {
						open = false;
						break;
					}
					if (req == 0)
						break;
					open = fz_respond(fds[i], head_only);
					memmove(fz_srv.conn_buf[i], fz_srv.conn_buf[i] + req,
						lens[i] - req);
					lens[i] -= req;
					if (!open)
						break;
				}
			}
			if (!open) {
				close(fds[i]);
				fds[i] = -1;
			}
		}
	}
	return NULL;
}

/* Starts the server once per process (127.0.0.1, a free port). */
static inline void fz_server_start(void)
{
	struct sockaddr_in a;
	socklen_t alen = sizeof(a);
	pthread_t th;
	int one = 1;

	if (fz_srv.lfd >= 0)
		return;
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	fz_srv.lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fz_srv.lfd < 0 ||
	    setsockopt(fz_srv.lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    bind(fz_srv.lfd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(fz_srv.lfd, 64) < 0 ||
	    getsockname(fz_srv.lfd, (struct sockaddr *)&a, &alen) < 0) {
		perror("fuzz: scripted server");
		abort();
	}
	snprintf(fz_srv.url, sizeof(fz_srv.url), "http://127.0.0.1:%d", ntohs(a.sin_port));
	if (pthread_create(&th, NULL, fz_serve, NULL) != 0)
		abort();
	pthread_detach(th);
}

static inline const char *fz_server_url(void)
{
	return fz_srv.url;
}

/* Serves s (which must stay alive until fz_server_unload) from the next request on. */
static inline void fz_server_load(const fz_script *s)
{
	pthread_mutex_lock(&fz_srv.mu);
	fz_srv.script = s;
	fz_srv.next = 0;
	fz_srv.raw = NULL;
	fz_srv.raw_len = 0;
	fz_srv.requests = 0;
	pthread_mutex_unlock(&fz_srv.mu);
}

/* Answers every request with exactly these bytes and closes the connection. */
static inline void fz_server_load_raw(const uint8_t *data, size_t len)
{
	pthread_mutex_lock(&fz_srv.mu);
	fz_srv.script = NULL;
	fz_srv.raw = data;
	fz_srv.raw_len = len;
	fz_srv.requests = 0;
	pthread_mutex_unlock(&fz_srv.mu);
}

/* Stops serving the script (waits for a response being written from it); returns how many
 * requests were answered since the load. */
static inline unsigned long fz_server_unload(void)
{
	unsigned long n;
	pthread_mutex_lock(&fz_srv.mu);
	while (fz_srv.busy)
		pthread_cond_wait(&fz_srv.idle_cv, &fz_srv.mu);
	fz_srv.script = NULL;
	fz_srv.raw = NULL;
	fz_srv.raw_len = 0;
	n = fz_srv.requests;
	pthread_mutex_unlock(&fz_srv.mu);
	return n;
}

/* ---------------------------------------------------------------- virtual clock */

/* Sleeping advances an offset instead of waiting; randomness is a fixed sequence per input, so
 * a crashing input replays the same backoff and jitter. */
static struct {
	int64_t offset_ms;
	uint64_t rand_state;
} fz_clock;

static inline int64_t fz_real_ms(clockid_t id)
{
	struct timespec ts;
	clock_gettime(id, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static inline int64_t fz_now_ms(void *ctx)
{
	(void)ctx;
	return fz_real_ms(CLOCK_REALTIME) + fz_clock.offset_ms;
}

static inline int64_t fz_mono_ms(void *ctx)
{
	(void)ctx;
	return fz_real_ms(CLOCK_MONOTONIC) + fz_clock.offset_ms;
}

static inline void fz_sleep_ms(void *ctx, int64_t ms)
{
	(void)ctx;
	if (ms > 0)
		fz_clock.offset_ms += ms;
}

static inline uint64_t fz_rand_u64(void *ctx)
{
	uint64_t x = fz_clock.rand_state;
	(void)ctx;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	fz_clock.rand_state = x;
	return x * 0x2545F4914F6CDD1DULL;
}

static inline void fz_clock_install(void)
{
	static const tp_clock_ops ops = {fz_now_ms, fz_mono_ms, fz_sleep_ms, fz_rand_u64, NULL};
	tp_clock_set(&ops);
}

static inline void fz_clock_reset(void)
{
	fz_clock.offset_ms = 0;
	fz_clock.rand_state = 0x9E3779B97F4A7C15ULL;
}

/* ---------------------------------------------------------------- checks on observed specs */

/* The engine's contract for observe (reconcilers/reconciler.h), checked on every answer:
 * out[i] is an object or NULL, all NULL after a failure; a sensitive value is never there in
 * clear (the mask or a keyed fingerprint only); the kind's normalise hook is idempotent on
 * what observe produced. Any violation aborts: libFuzzer keeps the input. */
static inline void fz_check_observed(const tp_kind *k, const tp_op *ops, size_t n, json_t **out,
				     int rc, const char *mask)
{
	for (size_t i = 0; i < n; i++) {
		json_t *once, *twice;
		char *text;
		if (!out[i])
			continue;
		if (rc < 0 || !json_is_object(out[i])) {
			fprintf(stderr, "fuzz: %s observe: out[%zu] is %s after rc %d\n", k->name,
				i, json_is_object(out[i]) ? "an object" : "not an object", rc);
			abort();
		}
		for (size_t s = 0; ops[i].sensitive && s < ops[i].sensitive->len; s++) {
			json_t *v = tp_json_path_get(out[i], ops[i].sensitive->items[s]);
			if (json_is_string(v) &&
			    (!mask || strcmp(json_string_value(v), mask) != 0)) {
				fprintf(stderr, "fuzz: %s observe: %s is in clear\n", k->name,
					ops[i].sensitive->items[s]);
				abort();
			}
		}
		once = json_deep_copy(out[i]);
		if (k->normalise)
			k->normalise(once);
		twice = json_deep_copy(once);
		if (k->normalise)
			k->normalise(twice);
		if (!json_equal(once, twice)) {
			fprintf(stderr,
				"fuzz: %s normalise is not idempotent on an observed spec\n",
				k->name);
			abort();
		}
		/* what the state stores */
		text = tp_json_canonical(once);
		if (!text) {
			fprintf(stderr, "fuzz: %s observed spec cannot be serialised\n", k->name);
			abort();
		}
		free(text);
		json_decref(once);
		json_decref(twice);
	}
}

#endif
