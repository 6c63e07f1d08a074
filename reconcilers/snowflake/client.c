/*
 * The SQL API v2 client: every statement the snowflake provider runs goes through here.
 *
 * A request is POST /api/v2/statements with the bearer token (key-pair JWT or OAuth/PAT),
 * X-Snowflake-Authorization-Token-Type, Accept/Content-Type application/json and the
 * User-Agent, and a requestId (a UUID) that is kept when the request is sent again, with
 * retry=true, so Snowflake never runs it twice. A 202 is polled at
 * GET /api/v2/statements/{handle} with growing delays; a 200 is read as a result set (columns
 * by name from resultSetMetaData.rowType, every partition fetched and checked). Throttling and
 * transient failures are retried here a few times (Retry-After honoured), then handed to the
 * engine classified; SQL errors keep Snowflake's code, sqlState and message.
 *
 * Write statements are batched: tp_sf_run holds a caller for a short window so that the
 * independent resources the engine applies at the same moment share one multi-statement
 * request (MULTI_STATEMENT_COUNT); a failing statement is located by the line Snowflake
 * reports and charged to the resource it belongs to.
 */
#include "snowflake_int.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MAX_REPLY ((size_t)64 << 20)
#define DEFAULT_WINDOW_MS 40
#define POLL_FIRST_MS 50
#define POLL_CAP_MS 2000

/* ---------------------------------------------------------------- results */

void tp_sf_result_clear(tp_sf_result *r)
{
	if (!r)
		return;
	json_decref(r->columns);
	json_decref(r->rows);
	r->columns = r->rows = NULL;
}

int tp_sf_result_col(const tp_sf_result *r, const char *name)
{
	size_t i;
	json_t *c;
	json_array_foreach(r->columns, i, c)
		if (strcmp(json_string_value(c), name) == 0)
			return (int)i;
	json_array_foreach(r->columns, i, c)
		if (strcasecmp(json_string_value(c), name) == 0)
			return (int)i;
	return -1;
}

int tp_sf_result_cols(const tp_sf_result *r, const char *what, const char *const *names,
		      int *idx)
{
	for (size_t i = 0; names[i]; i++) {
		idx[i] = tp_sf_result_col(r, names[i]);
		if (idx[i] < 0)
			return tp_error_set(TP_EINVALID, "snowflake: %s: the result has no column "
					    "\"%s\" (Snowflake changed its output?)", what,
					    names[i]);
	}
	return 0;
}

const char *tp_sf_cell(const tp_sf_result *r, size_t row, int col)
{
	if (col < 0)
		return NULL;
	return json_string_value(json_array_get(json_array_get(r->rows, row), (size_t)col));
}

size_t tp_sf_result_rows(const tp_sf_result *r)
{
	return json_array_size(r->rows);
}

/* ---------------------------------------------------------------- session */

static char *stored_name(const char *canonical)
{
	tp_strlist parts = {0};
	char *out = NULL;
	if (canonical && *canonical && tp_sf_path_split(&parts, canonical) == 0 && parts.len == 1)
		out = tp_strdup(parts.items[0]);
	tp_strlist_free(&parts);
	return out;
}

static int64_t env_ms(const char *name, int64_t def)
{
	const char *v = getenv(name);
	char *end = NULL;
	long long n;
	if (!v || !*v)
		return def;
	n = strtoll(v, &end, 10);
	return end && !*end && n >= 0 ? (int64_t)n : def;
}

int tp_sf_session_open(void **out, const tp_provider_env *env)
{
	const json_t *c = env->config;
	const char *account = tp_json_get_str(c, "account");
	tp_sf_session *s;
	int rc;

	*out = NULL;
	if (!account || !*account || !tp_json_get_str(c, "user"))
		return tp_error_set(TP_EINVALID, "snowflake: providers.snowflake needs account "
				    "and user");
	s = tp_calloc(1, sizeof(*s));
	pthread_mutex_init(&s->mu, NULL);
	pthread_cond_init(&s->cv, NULL);
	if ((rc = tp_sf_auth_new(&s->auth, c)) < 0) {
		tp_sf_session_close(s);
		return rc;
	}
	if (env->endpoint && *env->endpoint) {
		size_t n;
		s->base_url = tp_strdup(env->endpoint);
		n = strlen(s->base_url);
		while (n > 0 && s->base_url[n - 1] == '/')
			s->base_url[--n] = '\0';
	} else {
		s->base_url = tp_sf_account_url(account);
	}
	s->role = stored_name(tp_json_get_str(c, "role"));
	s->warehouse = stored_name(tp_json_get_str(c, "warehouse"));
	s->pipeline = tp_strdup(env->pipeline ? env->pipeline : "");
	s->metrics = env->metrics;
	s->http = tp_http_client_new();
	s->max_attempts = 4;
	s->backoff_base_ms = 250;
	s->backoff_cap_ms = 5000;
	s->statement_timeout_s = 3600;
	s->window_ms = env_ms("TAPESTRY_SNOWFLAKE_BATCH_MS", DEFAULT_WINDOW_MS);
	s->multi_ok = true;
	s->in_flight = env->calls_in_flight;
	*out = s;
	return 0;
}

void tp_sf_session_close(void *session)
{
	tp_sf_session *s = session;
	if (!s)
		return;
	tp_http_client_free(s->http);
	tp_sf_auth_free(s->auth);
	free(s->base_url);
	free(s->role);
	free(s->warehouse);
	free(s->pipeline);
	pthread_mutex_destroy(&s->mu);
	pthread_cond_destroy(&s->cv);
	free(s);
}

/* ---------------------------------------------------------------- HTTP */

static void uuid4(char out[37])
{
	uint8_t b[16];
	char hex[33];
	if (tp_random_bytes(b, sizeof(b)) < 0) {
		uint64_t r1 = tp_clock_rand_u64(), r2 = tp_clock_rand_u64();
		memcpy(b, &r1, 8);
		memcpy(b + 8, &r2, 8);
	}
	b[6] = (uint8_t)((b[6] & 0x0f) | 0x40);
	b[8] = (uint8_t)((b[8] & 0x3f) | 0x80);
	tp_hex_encode(hex, b, sizeof(b));
	snprintf(out, 37, "%.8s-%.4s-%.4s-%.4s-%.12s", hex, hex + 8, hex + 12, hex + 16,
		 hex + 20);
}

/* One HTTP exchange with the authentication headers. */
static int send_http(tp_sf_session *s, tp_http_reply *rep, const char *method, const char *url,
		     const char *body)
{
	char *token = NULL, *auth = NULL, *type_h = NULL;
	const char *type = NULL;
	const char *headers[6];
	tp_http_request req = {0};
	size_t h = 0;
	int rc;

	memset(rep, 0, sizeof(*rep));
	if ((rc = tp_sf_auth_token(s->auth, &token, &type)) < 0)
		return rc;
	auth = tp_sprintf("Authorization: Bearer %s", token);
	type_h = tp_sprintf("X-Snowflake-Authorization-Token-Type: %s", type);
	headers[h++] = auth;
	headers[h++] = type_h;
	headers[h++] = "Accept: application/json";
	if (body)
		headers[h++] = "Content-Type: application/json";
	headers[h] = NULL;
	req.method = method;
	req.url = url;
	req.headers = headers;
	req.body = body;
	req.body_len = body ? strlen(body) : 0;
	req.timeout_ms = 120000; /* Snowflake answers within ~45 s, then 202 */
	req.max_response = MAX_REPLY;
	rc = tp_http_client_do(s->http, rep, &req);
	tp_secret_free(auth);
	tp_secret_free(token);
	free(type_h);
	return rc;
}

/* Collapses line breaks so a message stays one line. */
static void one_line(char *m)
{
	for (; *m; m++)
		if (*m == '\n' || *m == '\r')
			*m = ' ';
}

/* Classifies an error reply into a code and message with Snowflake's own code, sqlState
 * and message. */
static int reply_error(tp_sf_session *s, const tp_http_reply *rep, tp_sf_status *st)
{
	json_t *b = NULL;
	const char *code = NULL, *state = NULL, *msg = NULL;
	char *m = NULL;
	const char *prefix = "Execution of multiple statements failed on statement";
	int rc;

	(void)s;
	if (tp_json_parse(&b, tp_buf_cstr(&rep->body), rep->body.len) == 0 && json_is_object(b)) {
		code = tp_json_get_str(b, "code");
		state = tp_json_get_str(b, "sqlState");
		msg = tp_json_get_str(b, "message");
	}
	if (st) {
		memset(st, 0, sizeof(*st));
		snprintf(st->code, sizeof(st->code), "%s", code ? code : "");
		snprintf(st->sql_state, sizeof(st->sql_state), "%s", state ? state : "");
		st->http_status = (int)rep->status;
	}
	if (msg && strncmp(msg, prefix, strlen(prefix)) == 0) {
		/* "... (at line L, position P).\n<the statement's own error>" */
		const char *at = strstr(msg, "(at line ");
		const char *rest = at ? strstr(at, ").") : NULL;
		if (at && st) {
			/* a line number the batch can hold; anything else is no line */
			char *end = NULL;
			long line;
			errno = 0;
			line = strtol(at + 9, &end, 10);
			st->line = errno == 0 && end != at + 9 && line > 0 && line <= INT_MAX
					   ? (int)line
					   : 0;
		}
		if (rest) {
			rest += 2;
			while (*rest == '\n' || *rest == ' ')
				rest++;
			msg = rest;
		}
	}
	if (msg) {
		m = tp_strdup(msg);
		one_line(m);
	}
	switch (rep->status) {
	case 422:
		rc = code && strcmp(code, "002003") == 0   ? TP_ENOTFOUND
		     : code && strcmp(code, "002002") == 0 ? TP_EEXISTS
		     : code && strcmp(code, "390189") == 0 ? TP_EAUTH
							   : TP_EINVALID;
		rc = tp_error_set(rc, "snowflake: %s (code %s, SQL state %s)",
				  m ? m : "statement failed", code ? code : "?",
				  state && *state ? state : "?");
		break;
	case 408:
		rc = tp_error_set(TP_ETRANSIENT, "snowflake: statement timed out and was "
				  "cancelled: %s (code %s)", m ? m : "timeout", code ? code : "?");
		break;
	case 401:
	case 403:
		rc = tp_error_set(TP_EAUTH, "snowflake: HTTP %ld: authentication refused: %s "
				  "(code %s)", rep->status, m ? m : "no detail",
				  code ? code : "?");
		break;
	default:
		if (m) {
			char *detail = tp_sprintf("%s (code %s)", m, code ? code : "?");
			rc = tp_http_status_error(rep, "snowflake", detail);
			free(detail);
		} else {
			rc = tp_http_status_error(rep, "snowflake", NULL);
		}
		if (rc == 0)
			rc = tp_error_set(TP_EINVALID, "snowflake: unexpected HTTP %ld",
					  rep->status);
		break;
	}
	free(m);
	json_decref(b);
	return rc;
}

static bool retryable_status(long status)
{
	return status == 429 || status == 500 || status == 502 || status == 503 || status == 504;
}

static void backoff_sleep(tp_sf_session *s, int attempt, int64_t retry_after)
{
	int64_t d = tp_backoff_ms(attempt, s->backoff_base_ms, s->backoff_cap_ms);
	if (retry_after >= 0)
		d = retry_after < s->backoff_cap_ms * 6 ? retry_after : s->backoff_cap_ms * 6;
	tp_clock_sleep_ms(d);
}

/* Rows of a `data` array appended to out after checking their shape. */
static int take_rows(tp_sf_result *out, json_t *data, size_t ncols)
{
	size_t i, j;
	json_t *row, *cell;
	if (data && !json_is_array(data))
		return tp_error_set(TP_EINVALID, "snowflake: malformed result: data is not an "
				    "array");
	json_array_foreach(data, i, row) {
		if (!json_is_array(row) || json_array_size(row) != ncols)
			return tp_error_set(TP_EINVALID, "snowflake: malformed result: row %zu has "
					    "%zu values for %zu columns", i, json_array_size(row),
					    ncols);
		json_array_foreach(row, j, cell)
			if (!json_is_string(cell) && !json_is_null(cell))
				return tp_error_set(TP_EINVALID, "snowflake: malformed result: "
						    "row %zu column %zu is neither text nor null",
						    i, j);
		if (out)
			json_array_append(out->rows, row);
	}
	return 0;
}

/* GET with the same retry policy as statements. */
static int get_json(tp_sf_session *s, json_t **out, long *status, const char *url_base,
		    tp_sf_status *st)
{
	char rid[37];
	tp_http_reply rep = {0};
	int rc = 0;

	*out = NULL;
	uuid4(rid);
	for (int attempt = 1;; attempt++) {
		char *url = tp_sprintf("%s%crequestId=%s%s", url_base,
				       strchr(url_base, '?') ? '&' : '?', rid,
				       attempt > 1 ? "&retry=true" : "");
		tp_http_reply_clear(&rep);
		rc = send_http(s, &rep, "GET", url, NULL);
		free(url);
		if (rc == TP_ETRANSIENT && attempt < s->max_attempts) {
			backoff_sleep(s, attempt, -1);
			continue;
		}
		if (rc < 0)
			goto done;
		if (retryable_status(rep.status) && attempt < s->max_attempts) {
			backoff_sleep(s, attempt, rep.retry_after_ms);
			continue;
		}
		if (rep.status == 200 || rep.status == 202) {
			if (tp_json_parse(out, tp_buf_cstr(&rep.body), rep.body.len) < 0 ||
			    !json_is_object(*out)) {
				json_decref(*out);
				*out = NULL;
				if (attempt < s->max_attempts) {
					backoff_sleep(s, attempt, -1);
					continue;
				}
				rc = tp_error_set(TP_EINVALID, "snowflake: malformed JSON in the "
						  "reply to GET %s", url_base + strlen(s->base_url));
				goto done;
			}
			*status = rep.status;
			goto done;
		}
		rc = reply_error(s, &rep, st);
		goto done;
	}
done:
	tp_http_reply_clear(&rep);
	return rc;
}

/* Reads a ResultSet (partition 0) and fetches the other partitions. */
static int read_result(tp_sf_session *s, tp_sf_result *out, json_t *body, tp_sf_status *st)
{
	json_t *meta = json_object_get(body, "resultSetMetaData");
	json_t *rowtype = json_object_get(meta, "rowType");
	json_t *parts = json_object_get(meta, "partitionInfo");
	json_t *numrows = json_object_get(meta, "numRows");
	const char *handle = tp_json_get_str(body, "statementHandle");
	size_t i, ncols;
	json_t *c;
	int rc = 0;

	if (!json_is_object(meta) || !json_is_array(rowtype))
		return tp_error_set(TP_EINVALID, "snowflake: malformed result: no "
				    "resultSetMetaData.rowType");
	ncols = json_array_size(rowtype);
	if (out) {
		out->columns = json_array();
		out->rows = json_array();
	}
	json_array_foreach(rowtype, i, c) {
		const char *name = tp_json_get_str(c, "name");
		if (!name)
			return tp_error_set(TP_EINVALID, "snowflake: malformed result: column %zu "
					    "of rowType has no name", i);
		if (out)
			json_array_append_new(out->columns, json_string(name));
	}
	if ((rc = take_rows(out, json_object_get(body, "data"), ncols)) < 0)
		return rc;
	for (i = 1; i < json_array_size(parts); i++) {
		char *url;
		json_t *pb = NULL;
		long status = 0;
		if (!handle)
			return tp_error_set(TP_EINVALID, "snowflake: malformed result: partitions "
					    "without a statementHandle");
		url = tp_sprintf("%s/api/v2/statements/%s?partition=%zu", s->base_url, handle, i);
		rc = get_json(s, &pb, &status, url, st);
		free(url);
		if (rc == 0 && status != 200)
			rc = tp_error_set(TP_EINVALID, "snowflake: partition %zu answered HTTP %ld",
					  i, status);
		if (rc == 0)
			rc = take_rows(out, json_object_get(pb, "data"), ncols);
		json_decref(pb);
		if (rc < 0)
			return rc;
	}
	if (out && json_is_integer(numrows) &&
	    (size_t)json_integer_value(numrows) != json_array_size(out->rows))
		return tp_error_set(TP_EINVALID, "snowflake: incomplete result: %zu rows of %lld",
				    json_array_size(out->rows),
				    (long long)json_integer_value(numrows));
	return 0;
}

/* Polls a running statement until it finishes. */
static int poll_statement(tp_sf_session *s, tp_sf_result *out, const char *handle,
			  tp_sf_status *st)
{
	char *url = tp_sprintf("%s/api/v2/statements/%s", s->base_url, handle);
	int64_t deadline = tp_clock_mono_ms() + (s->statement_timeout_s + 120) * 1000;
	int64_t delay = POLL_FIRST_MS;
	int rc = 0;

	for (;;) {
		json_t *b = NULL;
		long status = 0;
		tp_clock_sleep_ms(delay / 2 + (int64_t)tp_clock_rand_below((uint64_t)delay / 2 + 1));
		delay = delay * 2 < POLL_CAP_MS ? delay * 2 : POLL_CAP_MS;
		if ((rc = get_json(s, &b, &status, url, st)) < 0)
			break;
		if (status == 200) {
			rc = read_result(s, out, b, st);
			json_decref(b);
			break;
		}
		json_decref(b);
		if (tp_clock_mono_ms() > deadline) {
			rc = tp_error_set(TP_ETRANSIENT, "snowflake: statement %s still running "
					  "after %lld s", handle, (long long)s->statement_timeout_s);
			break;
		}
	}
	free(url);
	return rc;
}

int tp_sf_exec(tp_sf_session *s, tp_sf_result *out, const char *sql, size_t n,
	       tp_sf_status *st)
{
	char rid[37];
	json_t *body = NULL;
	char *text = NULL;
	tp_http_reply rep = {0};
	tp_sf_status local;
	bool reauthed = false;
	int rc = 0;

	if (!st)
		st = &local;
	memset(st, 0, sizeof(*st));
	if (out)
		memset(out, 0, sizeof(*out));
	uuid4(rid);
	body = json_pack("{s:s,s:I}", "statement", sql, "timeout",
			 (json_int_t)s->statement_timeout_s);
	if (s->role)
		json_object_set_new(body, "role", json_string(s->role));
	if (n > 1) {
		char cnt[24];
		snprintf(cnt, sizeof(cnt), "%zu", n);
		json_object_set_new(body, "parameters",
				    json_pack("{s:s}", "MULTI_STATEMENT_COUNT", cnt));
		/* only multi-statement requests need a warehouse; SHOW and single DDL run
		 * without one, so observing never resumes a warehouse */
		if (s->warehouse)
			json_object_set_new(body, "warehouse", json_string(s->warehouse));
	}
	text = json_dumps(body, JSON_COMPACT);
	for (int attempt = 1;; attempt++) {
		char *url = tp_sprintf("%s/api/v2/statements?requestId=%s%s", s->base_url, rid,
				       attempt > 1 ? "&retry=true" : "");
		json_t *rb = NULL;
		tp_http_reply_clear(&rep);
		rc = send_http(s, &rep, "POST", url, text);
		free(url);
		if (rc == TP_ETRANSIENT && attempt < s->max_attempts) {
			backoff_sleep(s, attempt, -1);
			continue;
		}
		if (rc < 0)
			goto done;
		if (rep.status == 401 && !reauthed) {
			/* a JWT the server no longer takes (clock skew, key rotation): mint anew */
			reauthed = true;
			tp_sf_auth_reset(s->auth);
			continue;
		}
		if (retryable_status(rep.status) && attempt < s->max_attempts) {
			backoff_sleep(s, attempt, rep.retry_after_ms);
			continue;
		}
		if (rep.status != 200 && rep.status != 202) {
			rc = reply_error(s, &rep, st);
			goto done;
		}
		if (tp_json_parse(&rb, tp_buf_cstr(&rep.body), rep.body.len) < 0 ||
		    !json_is_object(rb)) {
			/* cut off or not JSON: ask again for the same request (retry=true: it is
			 * not run twice) */
			char *why = tp_strdup(tp_error_last());
			json_decref(rb);
			if (attempt < s->max_attempts) {
				free(why);
				backoff_sleep(s, attempt, -1);
				continue;
			}
			rc = tp_error_set(TP_EINVALID, "snowflake: malformed JSON in the reply to "
					  "POST /api/v2/statements (HTTP %ld): %s", rep.status, why);
			free(why);
			goto done;
		}
		if (rep.status == 202) {
			const char *handle = tp_json_get_str(rb, "statementHandle");
			if (!handle)
				rc = tp_error_set(TP_EINVALID, "snowflake: 202 without a "
						  "statementHandle");
			else
				rc = poll_statement(s, out, handle, st);
		} else {
			rc = read_result(s, out, rb, st);
		}
		json_decref(rb);
		goto done;
	}
done:
	if (rc < 0 && out)
		tp_sf_result_clear(out);
	tp_http_reply_clear(&rep);
	/* the statement may hold a password literal (CREATE/ALTER USER): wipe what we own */
	tp_secret_free(text);
	{
		json_t *stmt = json_object_get(body, "statement");
		explicit_bzero((char *)(uintptr_t)json_string_value(stmt), json_string_length(stmt));
	}
	json_decref(body);
	return rc;
}

int tp_sf_query(tp_sf_session *s, tp_sf_result *out, const char *sql)
{
	return tp_sf_exec(s, out, sql, 1, NULL);
}

/* ---------------------------------------------------------------- batching */

struct tp_sf_job {
	const tp_strlist *stmts;
	int rc;
	char *msg;
	int64_t retry_after; /* the server's Retry-After for a throttled failure, or -1 */
	tp_sf_status st;
	bool done;
	tp_sf_job *next;
};

static void job_fail(tp_sf_job *j, int rc, const tp_sf_status *st)
{
	j->rc = rc;
	free(j->msg);
	j->msg = tp_strdup(tp_error_last());
	/* the failure travels to the worker that queued the job, Retry-After included */
	j->retry_after = tp_error_retry_after();
	if (st)
		j->st = *st;
}

/* One request per statement (no warehouse for multi-statement requests). */
static void run_one_by_one(tp_sf_session *s, tp_sf_job **jobs, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		for (size_t k = 0; k < jobs[i]->stmts->len; k++) {
			tp_sf_status st;
			int rc = tp_sf_exec(s, NULL, jobs[i]->stmts->items[k], 1, &st);
			if (rc < 0) {
				job_fail(jobs[i], rc, &st);
				break;
			}
		}
	}
}

static void run_jobs(tp_sf_session *s, tp_sf_job **jobs, size_t n)
{
	size_t first = 0;
	while (first < n) {
		tp_buf sql;
		size_t total = 0, *owner = NULL, *start = NULL, k = 0;
		int line = 1, rc;
		bool multi_ok;
		tp_sf_status st;

		pthread_mutex_lock(&s->mu);
		multi_ok = s->multi_ok;
		pthread_mutex_unlock(&s->mu);
		for (size_t i = first; i < n; i++)
			total += jobs[i]->stmts->len;
		if (!multi_ok && total > 1) {
			run_one_by_one(s, jobs + first, n - first);
			return;
		}
		owner = tp_calloc(total, sizeof(*owner));
		start = tp_calloc(total, sizeof(*start));
		tp_buf_init(&sql, TP_BUF_DEFAULT_MAX);
		for (size_t i = first; i < n; i++) {
			for (size_t j = 0; j < jobs[i]->stmts->len; j++, k++) {
				const char *t = jobs[i]->stmts->items[j];
				owner[k] = i;
				start[k] = (size_t)line;
				if (k)
					tp_buf_puts(&sql, ";\n");
				tp_buf_puts(&sql, t);
				for (const char *p = t; *p; p++)
					line += *p == '\n';
				line++;
			}
		}
		rc = tp_sf_exec(s, NULL, tp_buf_cstr(&sql), total, &st);
		if (sql.ptr)
			explicit_bzero(sql.ptr, sql.len);
		tp_buf_free(&sql);
		if (rc == 0) {
			first = n;
		} else if (total > 1 && strcmp(st.code, "000606") == 0) {
			/* no warehouse for multi-statement requests: one statement each */
			pthread_mutex_lock(&s->mu);
			s->multi_ok = false;
			pthread_mutex_unlock(&s->mu);
			tp_log_warn("snowflake: multi-statement requests need a warehouse (set "
				    "providers.snowflake.warehouse or the user's default "
				    "warehouse); sending one statement per request");
		} else if (total > 1 && st.line > 0) {
			/* the failed statement: the last one starting at or before the line */
			size_t f = 0;
			for (size_t x = 0; x < total; x++)
				if (start[x] <= (size_t)st.line)
					f = x;
			job_fail(jobs[owner[f]], rc, &st);
			first = owner[f] + 1; /* earlier jobs ran; later ones go again */
		} else {
			for (size_t i = first; i < n; i++)
				job_fail(jobs[i], rc, &st);
			first = n;
		}
		free(owner);
		free(start);
	}
}

int tp_sf_run(tp_sf_session *s, const tp_strlist *stmts, tp_sf_status *st)
{
	tp_sf_job job = {0};
	int rc;

	if (stmts->len == 0)
		return 0;
	job.stmts = stmts;
	if (s->window_ms <= 0) {
		tp_sf_job *one = &job;
		run_jobs(s, &one, 1);
		goto finish;
	}
	pthread_mutex_lock(&s->mu);
	{
		tp_sf_job **tail = &s->queue;
		while (*tail)
			tail = &(*tail)->next;
		*tail = &job;
		s->last_queued_ms = tp_clock_mono_ms();
		s->nqueued++;
	}
	if (!s->leader) {
		tp_sf_job *list, **arr;
		size_t n = 0, i = 0;
		int64_t started = tp_clock_mono_ms();
		int64_t quiet = s->window_ms / 6 > 0 ? s->window_ms / 6 : 1;
		int64_t nap = s->in_flight ? 1 : (quiet / 2 > 0 ? quiet / 2 : 1);
		s->leader = true;
		/* collect until every call the engine has in progress waits on a request (nobody
		 * else can come), the callers stop coming (a sixth of the window without a new
		 * job), or the window ends */
		for (int64_t naps = 0; naps <= s->window_ms; naps++) { /* bounded: any clock */
			int64_t now = tp_clock_mono_ms();
			if (now - started >= s->window_ms || now - s->last_queued_ms >= quiet ||
			    (s->in_flight &&
			     s->nqueued + s->nsending >=
				 (size_t)__atomic_load_n(s->in_flight, __ATOMIC_RELAXED)))
				break;
			pthread_mutex_unlock(&s->mu);
			tp_clock_sleep_ms(nap);
			pthread_mutex_lock(&s->mu);
		}
		list = s->queue;
		s->queue = NULL;
		s->leader = false;
		s->nsending += s->nqueued;
		n = s->nqueued;
		s->nqueued = 0;
		pthread_mutex_unlock(&s->mu);
		arr = tp_calloc(n, sizeof(*arr));
		for (tp_sf_job *j = list; j; j = j->next)
			arr[i++] = j;
		run_jobs(s, arr, n);
		pthread_mutex_lock(&s->mu);
		s->nsending -= n;
		for (i = 0; i < n; i++)
			arr[i]->done = true;
		pthread_cond_broadcast(&s->cv);
		pthread_mutex_unlock(&s->mu);
		free(arr);
	} else {
		while (!job.done)
			pthread_cond_wait(&s->cv, &s->mu);
		pthread_mutex_unlock(&s->mu);
	}
finish:
	rc = job.rc;
	if (rc < 0) {
		tp_error_set(rc, "%s", job.msg ? job.msg : "snowflake: statement failed");
		tp_error_set_retry_after(job.retry_after);
	}
	if (st)
		*st = job.st;
	free(job.msg);
	return rc;
}
