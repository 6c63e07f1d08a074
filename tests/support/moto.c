/*
 * AWS test servers (see moto.h): moto_server as a child process bound to 127.0.0.1 with
 * signing enforced, and a small threaded HTTP/1.1 server (one thread per connection,
 * "Connection: close") that plays canned replies or forwards to moto while recording what it
 * saw. The aws suites use the first for real API behaviour and the second for what moto
 * cannot show: AWS-shaped replies where moto differs, throttling, proxies' HTML pages,
 * truncated bodies, and counting the calls a run makes.
 */
#include "moto.h"

#include <criterion/criterion.h>
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "reconcilers/aws/aws_int.h"
#include "support/support.h"
#include "util/util.h"

/* ---------------------------------------------------------------- moto_server */

static bool on_path(const char *prog)
{
	const char *path = getenv("PATH");
	char *copy, *save = NULL;
	bool found = false;
	if (!path)
		return false;
	copy = tp_strdup(path);
	for (char *d = strtok_r(copy, ":", &save); d && !found; d = strtok_r(NULL, ":", &save)) {
		char *p = tp_sprintf("%s/%s", d[0] ? d : ".", prog);
		found = access(p, X_OK) == 0;
		free(p);
	}
	free(copy);
	return found;
}

long ts_moto_iam(const ts_moto *m, const char *key, const char *secret, const char *form,
		 char **body)
{
	char host[64];
	tp_aws_header hs[2];
	tp_aws_sign_input in;
	tp_aws_credentials creds = {0};
	tp_aws_signature sig;
	tp_http_client *c = tp_http_client_new();
	tp_http_request req;
	tp_http_reply r;
	char *h_host, *h_date, *h_auth;
	const char *headers[5];
	long status = 0;

	snprintf(host, sizeof(host), "127.0.0.1:%d", m->port);
	hs[0] = (tp_aws_header){"host", host};
	hs[1] = (tp_aws_header){"content-type", "application/x-www-form-urlencoded"};
	memset(&in, 0, sizeof(in));
	in.method = "POST";
	in.path = "/";
	in.headers = hs;
	in.nheaders = 2;
	in.body = form;
	in.body_len = strlen(form);
	in.region = "us-east-1";
	in.service = "iam";
	in.time_ms = tp_clock_now_ms();
	in.normalize_path = true;
	creds.access_key_id = (char *)(uintptr_t)key;
	creds.secret_access_key = (char *)(uintptr_t)secret;
	cr_assert_eq(tp_aws_sign(&sig, &in, &creds), 0, "%s", tp_error_last());
	h_host = tp_sprintf("Host: %s", host);
	h_date = tp_sprintf("X-Amz-Date: %s", sig.amz_date);
	h_auth = tp_sprintf("Authorization: %s", sig.authorization);
	headers[0] = h_host;
	headers[1] = "Content-Type: application/x-www-form-urlencoded";
	headers[2] = h_date;
	headers[3] = h_auth;
	headers[4] = NULL;
	memset(&req, 0, sizeof(req));
	req.method = "POST";
	req.url = m->url;
	req.headers = headers;
	req.body = form;
	req.body_len = strlen(form);
	req.timeout_ms = 20000;
	if (tp_http_client_do(c, &r, &req) == 0) {
		status = r.status;
		if (body)
			*body = tp_strdup(tp_buf_cstr(&r.body));
	} else if (body) {
		*body = tp_strdup(tp_error_last());
	}
	tp_http_reply_clear(&r);
	tp_aws_signature_clear(&sig);
	tp_http_client_free(c);
	free(h_host);
	free(h_date);
	free(h_auth);
	return status;
}

/* The text of <name>...</name> in body, or "" (test bootstrap only). */
static void xml_value(char *out, size_t n, const char *body, const char *name)
{
	char *open = tp_sprintf("<%s>", name);
	const char *p = body ? strstr(body, open) : NULL;
	out[0] = '\0';
	if (p) {
		const char *e;
		p += strlen(open);
		e = strchr(p, '<');
		if (e && (size_t)(e - p) < n) {
			memcpy(out, p, (size_t)(e - p));
			out[e - p] = '\0';
		}
	}
	free(open);
}

void ts_moto_start(ts_moto *m, bool auth)
{
	char port[16];
	int64_t deadline;
	const char *tmp = getenv("TMPDIR") && getenv("TMPDIR")[0] ? getenv("TMPDIR") : "/tmp";

	memset(m, 0, sizeof(*m));
	cr_assert(on_path("moto_server"), "moto_server is not on PATH: " TS_MOTO_HINT);
	m->port = ts_free_port();
	snprintf(m->url, sizeof(m->url), "http://127.0.0.1:%d/", m->port);
	snprintf(m->log_path, sizeof(m->log_path), "%s/tapestry-moto-%d.log", tmp, m->port);
	snprintf(port, sizeof(port), "%d", m->port);
	m->pid = fork();
	cr_assert(m->pid >= 0, "fork: %s", strerror(errno));
	if (m->pid == 0) {
		int null = open("/dev/null", O_RDONLY);
		int log = open(m->log_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		const char *argv[] = {"moto_server", "-H", "127.0.0.1", "-p", port, NULL};
		prctl(PR_SET_PDEATHSIG, SIGKILL); /* never outlives the test */
		if (auth)
			setenv("INITIAL_NO_AUTH_ACTION_COUNT", "3", 1);
		else
			unsetenv("INITIAL_NO_AUTH_ACTION_COUNT");
		/* moto must not pick up credentials or endpoints meant for the code under test */
		unsetenv("AWS_ENDPOINT_URL");
		dup2(null, 0);
		if (log >= 0) {
			dup2(log, 1);
			dup2(log, 2);
		}
		execvp("moto_server", (char *const *)(uintptr_t)argv);
		_exit(127);
	}
	deadline = tp_clock_mono_ms() + 30000;
	while (!ts_can_connect(m->port)) {
		int st = 0;
		if (waitpid(m->pid, &st, WNOHANG) == m->pid) {
			char *log = ts_read(m->log_path);
			m->pid = 0;
			cr_assert_fail("moto_server exited at start (status %d): %s\n%s", st,
				       TS_MOTO_HINT, log ? log : "");
		}
		if (tp_clock_mono_ms() > deadline) {
			ts_stop_pid(m->pid);
			m->pid = 0;
			cr_assert_fail("moto_server did not listen on 127.0.0.1:%d within 30 s",
				       m->port);
		}
		usleep(50000);
	}
	if (auth) {
		/* the three unauthenticated calls: user, allow-all inline policy, access key */
		char *body = NULL;
		long st;
		st = ts_moto_iam(m, "AKIDBOOTSTRAP", "bootstrap",
				 "Action=CreateUser&UserName=tapestry&Version=2010-05-08", &body);
		cr_assert_eq(st, 200, "moto CreateUser: %ld %s", st, body);
		free(body);
		st = ts_moto_iam(m, "AKIDBOOTSTRAP", "bootstrap",
				 "Action=PutUserPolicy&UserName=tapestry&PolicyName=allow-all"
				 "&PolicyDocument=%7B%22Version%22%3A%222012-10-17%22%2C%22Statement"
				 "%22%3A%5B%7B%22Effect%22%3A%22Allow%22%2C%22Action%22%3A%22%2A%22"
				 "%2C%22Resource%22%3A%22%2A%22%7D%5D%7D&Version=2010-05-08",
				 &body);
		cr_assert_eq(st, 200, "moto PutUserPolicy: %ld %s", st, body);
		free(body);
		st = ts_moto_iam(m, "AKIDBOOTSTRAP", "bootstrap",
				 "Action=CreateAccessKey&UserName=tapestry&Version=2010-05-08",
				 &body);
		cr_assert_eq(st, 200, "moto CreateAccessKey: %ld %s", st, body);
		xml_value(m->access_key, sizeof(m->access_key), body, "AccessKeyId");
		xml_value(m->secret_key, sizeof(m->secret_key), body, "SecretAccessKey");
		free(body);
		cr_assert(m->access_key[0] && m->secret_key[0], "moto returned no access key");
	}
}

void ts_moto_stop(ts_moto *m)
{
	if (m->pid > 0)
		ts_stop_pid(m->pid);
	m->pid = 0;
	if (m->log_path[0])
		unlink(m->log_path);
}

/* ---------------------------------------------------------------- scripted server */

typedef struct canned {
	char *action; /* NULL: any */
	char *raw;    /* the complete reply bytes */
	struct canned *next;
} canned;

struct ts_aws_server {
	int fd;
	int port;
	char url[64];
	char *upstream;
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int active;
	bool stopping;
	canned *queue;
	json_t *defaults; /* {action: raw} */
	json_t *log;
	tp_http_client *http;
};

static const char *reason(int status)
{
	switch (status) {
	case 200: return "OK";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 429: return "Too Many Requests";
	case 500: return "Internal Server Error";
	case 502: return "Bad Gateway";
	case 503: return "Service Unavailable";
	case 504: return "Gateway Timeout";
	default: return "Status";
	}
}

static char *format_reply(int status, const char *ct, const char *body)
{
	return tp_sprintf("HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
			  "x-amzn-RequestId: scripted-%d\r\nConnection: close\r\n\r\n%s",
			  status, reason(status), ct ? ct : "text/xml", strlen(body), status,
			  body);
}

static void enqueue(ts_aws_server *s, const char *action, char *raw)
{
	canned *c = tp_calloc(1, sizeof(*c)), **pp;
	c->action = action ? tp_strdup(action) : NULL;
	c->raw = raw;
	pthread_mutex_lock(&s->mu);
	for (pp = &s->queue; *pp; pp = &(*pp)->next)
		;
	*pp = c;
	pthread_mutex_unlock(&s->mu);
}

void ts_aws_server_reply(ts_aws_server *s, const char *action, int status,
			 const char *content_type, const char *body)
{
	enqueue(s, action, format_reply(status, content_type, body));
}

void ts_aws_server_reply_raw(ts_aws_server *s, const char *action, const char *raw)
{
	enqueue(s, action, tp_strdup(raw));
}

void ts_aws_server_default(ts_aws_server *s, const char *action, int status,
			   const char *content_type, const char *body)
{
	pthread_mutex_lock(&s->mu);
	if (body) {
		char *raw = format_reply(status, content_type, body);
		json_object_set_new(s->defaults, action, json_string(raw));
		free(raw);
	} else {
		json_object_del(s->defaults, action);
	}
	pthread_mutex_unlock(&s->mu);
}

static int write_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Reads one request: head (until the blank line) and a Content-Length body. */
static int read_request(int fd, tp_buf *head, tp_buf *body)
{
	char buf[8192];
	char *end = NULL;
	size_t want = 0;
	while (!(end = strstr(tp_buf_cstr(head), "\r\n\r\n"))) {
		struct pollfd p = {fd, POLLIN, 0};
		ssize_t n;
		if (poll(&p, 1, 10000) <= 0)
			return -1;
		n = recv(fd, buf, sizeof(buf), 0);
		if (n <= 0 || tp_buf_put(head, buf, (size_t)n) < 0)
			return -1;
	}
	{
		size_t head_len = (size_t)(end - head->ptr) + 4;
		const char *cl = strcasestr(head->ptr, "\r\ncontent-length:");
		if (cl && cl < end)
			want = (size_t)strtoul(cl + 17, NULL, 10);
		tp_buf_put(body, head->ptr + head_len, head->len - head_len);
		head->ptr[head_len] = '\0';
		head->len = head_len;
	}
	while (body->len < want) {
		struct pollfd p = {fd, POLLIN, 0};
		ssize_t n;
		if (poll(&p, 1, 10000) <= 0)
			return -1;
		n = recv(fd, buf, sizeof(buf), 0);
		if (n <= 0 || tp_buf_put(body, buf, (size_t)n) < 0)
			return -1;
	}
	return 0;
}

static char *form_value(const char *body, const char *key)
{
	size_t n = strlen(key);
	const char *p = body;
	while (p && *p) {
		if (strncmp(p, key, n) == 0 && p[n] == '=') {
			const char *e = strchr(p + n + 1, '&');
			return e ? tp_strndup(p + n + 1, (size_t)(e - p - n - 1))
				 : tp_strdup(p + n + 1);
		}
		p = strchr(p, '&');
		if (p)
			p++;
	}
	return NULL;
}

static bool writes(const char *action)
{
	static const char *const prefixes[] = {"Create", "Update", "Delete", "Put", "Execute",
					       "Add", "Remove", "Tag", "Untag", "Continue",
					       "Cancel", "Set", "Label", "Signal", NULL};
	const char *dot = strrchr(action, '.');
	const char *a = dot ? dot + 1 : action;
	if (strchr(action, ' '))
		return false; /* IMDS and other plain HTTP */
	for (size_t i = 0; prefixes[i]; i++)
		if (strncmp(a, prefixes[i], strlen(prefixes[i])) == 0)
			return true;
	return false;
}

static char *forward(ts_aws_server *s, const char *method, const char *path, json_t *headers,
		     const char *body, size_t body_len)
{
	tp_http_request req;
	tp_http_reply r;
	const char **hl = tp_calloc(json_object_size(headers) + 2, sizeof(char *));
	size_t n = 0;
	const char *k;
	json_t *v;
	char *url = tp_sprintf("%s%s", s->upstream, path[0] == '/' ? path + 1 : path);
	char *out;
	tp_buf b;

	json_object_foreach(headers, k, v) {
		if (!strcmp(k, "content-length") || !strcmp(k, "connection") ||
		    !strcmp(k, "expect") || !strcmp(k, "transfer-encoding") ||
		    !strcmp(k, "accept-encoding") || !strcmp(k, "user-agent"))
			continue;
		/* Host as the client sent it: the signature covers it */
		hl[n++] = tp_sprintf("%s: %s", k, json_string_value(v));
	}
	memset(&req, 0, sizeof(req));
	req.method = method;
	req.url = url;
	req.headers = hl;
	req.body = body_len || strcmp(method, "GET") != 0 ? body : NULL;
	req.body_len = body_len;
	req.timeout_ms = 60000;
	tp_buf_init(&b, TP_BUF_DEFAULT_MAX);
	if (tp_http_client_do(s->http, &r, &req) < 0) {
		char *msg = tp_sprintf("proxy: %s", tp_error_last());
		out = format_reply(502, "text/plain", msg);
		free(msg);
	} else {
		tp_buf_printf(&b, "HTTP/1.1 %ld %s\r\n", r.status, reason((int)r.status));
		json_object_foreach(r.headers, k, v) {
			if (!strcmp(k, "content-length") || !strcmp(k, "connection") ||
			    !strcmp(k, "transfer-encoding") || !strcmp(k, "status"))
				continue;
			tp_buf_printf(&b, "%s: %s\r\n", k, json_string_value(v));
		}
		tp_buf_printf(&b, "Content-Length: %zu\r\nConnection: close\r\n\r\n", r.body.len);
		tp_buf_put(&b, tp_buf_cstr(&r.body), r.body.len);
		out = tp_buf_detach(&b);
	}
	tp_http_reply_clear(&r);
	tp_buf_free(&b);
	for (size_t i = 0; i < n; i++)
		free((char *)(uintptr_t)hl[i]);
	free(hl);
	free(url);
	return out;
}

typedef struct {
	ts_aws_server *s;
	int fd;
} conn_arg;

static void *serve_conn(void *arg)
{
	conn_arg *ca = arg;
	ts_aws_server *s = ca->s;
	int fd = ca->fd;
	tp_buf head, body;
	json_t *headers = json_object();
	char method[16] = "", *path = NULL, *action = NULL, *reply = NULL;

	free(ca);
	tp_buf_init(&head, 1 << 20);
	tp_buf_init(&body, 64u << 20);
	if (read_request(fd, &head, &body) == 0) {
		char *save = NULL;
		char *line = strtok_r(head.ptr, "\r\n", &save);
		char target[4096] = "";
		if (line)
			sscanf(line, "%15s %4095s", method, target);
		path = tp_strdup(target);
		while ((line = strtok_r(NULL, "\r\n", &save)) != NULL) {
			char *colon = strchr(line, ':');
			char *v;
			if (!colon)
				continue;
			*colon = '\0';
			v = colon + 1;
			while (*v == ' ')
				v++;
			for (char *p = line; *p; p++)
				*p = (char)(*p >= 'A' && *p <= 'Z' ? *p + 32 : *p);
			json_object_set_new(headers, line, json_string(v));
		}
		if (tp_json_get_str(headers, "x-amz-target"))
			action = tp_strdup(tp_json_get_str(headers, "x-amz-target"));
		else if ((action = form_value(tp_buf_cstr(&body), "Action")) == NULL) {
			char *q = strchr(path, '?');
			action = q ? tp_sprintf("%s %.*s", method, (int)(q - path), path)
				   : tp_sprintf("%s %s", method, path);
		}
		pthread_mutex_lock(&s->mu);
		json_array_append_new(s->log,
				      json_pack("{s:s,s:s,s:s,s:O,s:s%}", "method", method, "path",
						path, "action", action, "headers", headers, "body",
						tp_buf_cstr(&body), body.len));
		for (canned **pp = &s->queue; *pp; pp = &(*pp)->next) {
			canned *c = *pp;
			if (!c->action || strcmp(c->action, action) == 0) {
				*pp = c->next;
				reply = c->raw;
				free(c->action);
				free(c);
				break;
			}
		}
		if (!reply && tp_json_get_str(s->defaults, action))
			reply = tp_strdup(tp_json_get_str(s->defaults, action));
		pthread_mutex_unlock(&s->mu);
		if (!reply && s->upstream)
			reply = forward(s, method, path, headers, tp_buf_cstr(&body), body.len);
		if (!reply) {
			char *msg = tp_sprintf("no scripted reply for %s", action);
			reply = format_reply(500, "text/plain", msg);
			free(msg);
		}
		write_all(fd, reply, strlen(reply));
	}
	shutdown(fd, SHUT_WR);
	close(fd);
	free(reply);
	free(path);
	free(action);
	json_decref(headers);
	tp_buf_free(&head);
	tp_buf_free(&body);
	pthread_mutex_lock(&s->mu);
	s->active--;
	pthread_cond_broadcast(&s->cv);
	pthread_mutex_unlock(&s->mu);
	return NULL;
}

static void *accept_loop(void *arg)
{
	ts_aws_server *s = arg;
	for (;;) {
		int fd = accept(s->fd, NULL, NULL);
		conn_arg *ca;
		pthread_t t;
		if (fd < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		pthread_mutex_lock(&s->mu);
		if (s->stopping) {
			pthread_mutex_unlock(&s->mu);
			close(fd);
			break;
		}
		s->active++;
		pthread_mutex_unlock(&s->mu);
		ca = tp_calloc(1, sizeof(*ca));
		ca->s = s;
		ca->fd = fd;
		if (pthread_create(&t, NULL, serve_conn, ca) != 0) {
			close(fd);
			free(ca);
			pthread_mutex_lock(&s->mu);
			s->active--;
			pthread_mutex_unlock(&s->mu);
			continue;
		}
		pthread_detach(t);
	}
	return NULL;
}

ts_aws_server *ts_aws_server_start(const char *upstream)
{
	ts_aws_server *s = tp_calloc(1, sizeof(*s));
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0};
	socklen_t len = sizeof(a);
	int one = 1;

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	s->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	cr_assert(s->fd >= 0);
	setsockopt(s->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	cr_assert(bind(s->fd, (struct sockaddr *)&a, sizeof(a)) == 0, "bind: %s", strerror(errno));
	cr_assert(listen(s->fd, 64) == 0);
	cr_assert(getsockname(s->fd, (struct sockaddr *)&a, &len) == 0);
	s->port = ntohs(a.sin_port);
	snprintf(s->url, sizeof(s->url), "http://127.0.0.1:%d/", s->port);
	if (upstream) {
		size_t n = strlen(upstream);
		s->upstream = n && upstream[n - 1] == '/' ? tp_strdup(upstream)
							 : tp_sprintf("%s/", upstream);
	}
	pthread_mutex_init(&s->mu, NULL);
	pthread_cond_init(&s->cv, NULL);
	s->defaults = json_object();
	s->log = json_array();
	s->http = tp_http_client_new();
	cr_assert(pthread_create(&s->thread, NULL, accept_loop, s) == 0);
	return s;
}

void ts_aws_server_stop(ts_aws_server *s)
{
	if (!s)
		return;
	pthread_mutex_lock(&s->mu);
	s->stopping = true;
	pthread_mutex_unlock(&s->mu);
	shutdown(s->fd, SHUT_RDWR);
	close(s->fd);
	pthread_join(s->thread, NULL);
	pthread_mutex_lock(&s->mu);
	while (s->active > 0)
		pthread_cond_wait(&s->cv, &s->mu);
	pthread_mutex_unlock(&s->mu);
	while (s->queue) {
		canned *c = s->queue;
		s->queue = c->next;
		free(c->action);
		free(c->raw);
		free(c);
	}
	json_decref(s->defaults);
	json_decref(s->log);
	tp_http_client_free(s->http);
	free(s->upstream);
	pthread_mutex_destroy(&s->mu);
	pthread_cond_destroy(&s->cv);
	free(s);
}

const char *ts_aws_server_url(const ts_aws_server *s)
{
	return s->url;
}

int ts_aws_server_count(ts_aws_server *s, const char *action)
{
	size_t i;
	json_t *e;
	int n = 0;
	pthread_mutex_lock(&s->mu);
	json_array_foreach(s->log, i, e)
		if (!action || strcmp(tp_json_get_str(e, "action"), action) == 0)
			n++;
	pthread_mutex_unlock(&s->mu);
	return n;
}

int ts_aws_server_write_count(ts_aws_server *s)
{
	size_t i;
	json_t *e;
	int n = 0;
	pthread_mutex_lock(&s->mu);
	json_array_foreach(s->log, i, e)
		if (writes(tp_json_get_str(e, "action")))
			n++;
	pthread_mutex_unlock(&s->mu);
	return n;
}

json_t *ts_aws_server_requests(ts_aws_server *s)
{
	json_t *copy;
	pthread_mutex_lock(&s->mu);
	copy = json_deep_copy(s->log);
	pthread_mutex_unlock(&s->mu);
	return copy;
}

void ts_aws_server_reset(ts_aws_server *s)
{
	pthread_mutex_lock(&s->mu);
	json_array_clear(s->log);
	pthread_mutex_unlock(&s->mu);
}
