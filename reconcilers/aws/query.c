/*
 * The aws provider's session and its wire: one place where requests are built, signed
 * (sigv4.c, with credentials.c's chain), sent (util's HTTP client), retried and their
 * replies turned into documents or errors. Two protocols ride on it: the Query protocol
 * (CloudFormation, STS, IAM: form-encoded POST, XML replies parsed by xml.c) and AWS JSON 1.1
 * (SSM: X-Amz-Target, JSON both ways).
 *
 * Retries follow the AWS SDKs' "standard" mode, kept small because the engine retries whole
 * actions on TP_ETRANSIENT/TP_ETHROTTLED: at most 3 attempts per request, full-jitter backoff
 * (tp_backoff_ms; a larger base for throttling), retryable = throttling error codes, transient
 * codes, HTTP 500/502/503/504 and connection failures; a retry quota per session (500 tokens,
 * 5 per retry, 10 after a timeout, refunded on success) stops retry storms when a service is
 * down. Errors surface as "<service> <Action>: <Code>: <Message> (HTTP n, request id r)".
 */
#include "aws_int.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define RETRY_QUOTA 500
#define RETRY_COST 5
#define RETRY_COST_TIMEOUT 10
#define MAX_REPLY ((size_t)16 << 20)

/* ---------------------------------------------------------------- session */

int tp_aws_session_new(tp_aws_session **out, const char *region, const char *endpoint,
		       const char *pipeline, const tp_aws_cred_options *copts)
{
	tp_aws_session *s;
	const char *env_profile = getenv("AWS_PROFILE");
	const char *reg = region && region[0] ? region : getenv("AWS_REGION");

	*out = NULL;
	if (!reg || !reg[0])
		reg = getenv("AWS_DEFAULT_REGION");
	if (!reg || !reg[0])
		return tp_error_set(TP_EINVALID, "aws: no region: set providers.aws.region in "
						 "tapestry.yaml (or AWS_REGION)");
	if (strspn(reg, "abcdefghijklmnopqrstuvwxyz0123456789-") != strlen(reg))
		return tp_error_set(TP_EINVALID, "aws: \"%s\" is not a region name", reg);
	if (endpoint && endpoint[0] && strncmp(endpoint, "http://", 7) != 0 &&
	    strncmp(endpoint, "https://", 8) != 0)
		return tp_error_set(TP_EINVALID, "aws: endpoint \"%s\" must be an http:// or "
						 "https:// URL", endpoint);
	s = tp_calloc(1, sizeof(*s));
	s->http = tp_http_client_new();
	s->region = tp_strdup(reg);
	if (endpoint && endpoint[0]) {
		size_t n = strlen(endpoint);
		s->endpoint = endpoint[n - 1] == '/' ? tp_strdup(endpoint)
						      : tp_sprintf("%s/", endpoint);
	}
	s->pipeline = tp_strdup(pipeline ? pipeline : "tapestry");
	pthread_mutex_init(&s->cred_mu, NULL);
	pthread_mutex_init(&s->identity_mu, NULL);
	pthread_mutex_init(&s->retry_mu, NULL);
	pthread_mutex_init(&s->count_mu, NULL);
	if (copts && copts->profile && copts->profile[0]) {
		s->profile = tp_strdup(copts->profile);
		s->profile_explicit = true;
	} else if (env_profile && env_profile[0]) {
		s->profile = tp_strdup(env_profile);
		s->profile_explicit = true;
	} else {
		s->profile = tp_strdup("default");
	}
	if (copts && copts->role_arn && copts->role_arn[0])
		s->role_arn = tp_strdup(copts->role_arn);
	if (copts && copts->imds_endpoint && copts->imds_endpoint[0])
		s->imds_endpoint = tp_strdup(copts->imds_endpoint);
	s->retry_tokens = RETRY_QUOTA;
	s->max_attempts = 3;
	s->retry_base_ms = 100;
	s->throttle_base_ms = 500;
	s->retry_cap_ms = 20000;
	s->wait.poll_ms = 2000;
	s->wait.poll_max_ms = 15000;
	s->wait.op_max_ms = 2 * 3600 * 1000;
	s->wait.busy_max_ms = 15 * 60 * 1000;
	s->counts = json_object();
	*out = s;
	return 0;
}

void tp_aws_session_free(tp_aws_session *s)
{
	if (!s)
		return;
	tp_http_client_free(s->http);
	tp_aws_credentials_clear(&s->base);
	tp_aws_credentials_clear(&s->assumed);
	tp_secret_free(s->imds_token);
	free(s->region);
	free(s->endpoint);
	free(s->pipeline);
	free(s->profile);
	free(s->role_arn);
	free(s->imds_endpoint);
	json_decref(s->counts);
	pthread_mutex_destroy(&s->cred_mu);
	pthread_mutex_destroy(&s->identity_mu);
	pthread_mutex_destroy(&s->retry_mu);
	pthread_mutex_destroy(&s->count_mu);
	free(s);
}

static void count(tp_aws_session *s, const char *service, const char *action)
{
	char key[160];
	snprintf(key, sizeof(key), "%s.%s", service, action);
	pthread_mutex_lock(&s->count_mu);
	json_object_set_new(s->counts, key,
			    json_integer(json_integer_value(json_object_get(s->counts, key)) + 1));
	pthread_mutex_unlock(&s->count_mu);
}

int tp_aws_session_count(tp_aws_session *s, const char *what)
{
	const char *k;
	json_t *v;
	int n = 0;
	pthread_mutex_lock(&s->count_mu);
	json_object_foreach(s->counts, k, v)
		if (strcmp(what, "*") == 0 || strcmp(k, what) == 0)
			n += (int)json_integer_value(v);
	pthread_mutex_unlock(&s->count_mu);
	return n;
}

static bool is_write_action(const char *action)
{
	static const char *const prefixes[] = {"Create", "Update", "Delete", "Put", "Execute",
					       "Add", "Remove", "Tag", "Untag", "Continue",
					       "Cancel", "Set", "Label", "Signal", NULL};
	for (size_t i = 0; prefixes[i]; i++)
		if (strncmp(action, prefixes[i], strlen(prefixes[i])) == 0)
			return true;
	return false;
}

int tp_aws_session_write_count(tp_aws_session *s)
{
	const char *k;
	json_t *v;
	int n = 0;
	pthread_mutex_lock(&s->count_mu);
	json_object_foreach(s->counts, k, v) {
		const char *dot = strchr(k, '.');
		if (dot && is_write_action(dot + 1))
			n += (int)json_integer_value(v);
	}
	pthread_mutex_unlock(&s->count_mu);
	return n;
}

char *tp_aws_service_url(const tp_aws_session *s, const char *service)
{
	if (s->endpoint)
		return tp_strdup(s->endpoint);
	if (strncmp(s->region, "cn-", 3) == 0)
		return tp_sprintf("https://%s.%s.amazonaws.com.cn/", service, s->region);
	return tp_sprintf("https://%s.%s.amazonaws.com/", service, s->region);
}

/* host[:port] and path of a URL, as the request line and Host header will carry them. */
static int split_url(const char *url, char **host, char **path)
{
	const char *p = strstr(url, "://");
	const char *slash;
	*host = *path = NULL;
	if (!p)
		return tp_error_set(TP_EINVALID, "aws: bad URL %s", url);
	p += 3;
	slash = strchr(p, '/');
	*host = slash ? tp_strndup(p, (size_t)(slash - p)) : tp_strdup(p);
	*path = tp_strdup(slash ? slash : "/");
	{
		char *q = strchr(*path, '?');
		if (q)
			*q = '\0';
	}
	return 0;
}

/* ---------------------------------------------------------------- encoding */

/* application/x-www-form-urlencoded as the AWS SDKs write it (Python's urlencode): every
 * byte but A-Za-z0-9 and -._~ as %XX, a space as '+'. Servers that re-encode the parsed
 * form to check the signature (moto) then hash the same bytes that were signed. */
static void form_encode(tp_buf *out, const char *s)
{
	for (const char *p = s; *p; p++) {
		if (*p == ' ') {
			tp_buf_putc(out, '+');
		} else {
			const char *q = p;
			while (*q && *q != ' ')
				q++;
			tp_aws_uri_encode(out, p, (size_t)(q - p), false);
			p = q - 1;
		}
	}
}

int tp_aws_form_encode(tp_buf *out, const char *action, const char *version,
		       const json_t *params)
{
	const char **keys = NULL;
	size_t n = 0;
	const char *k;
	json_t *v;
	int rc = 0;

	tp_buf_puts(out, "Action=");
	form_encode(out, action);
	tp_buf_puts(out, "&Version=");
	form_encode(out, version);
	keys = tp_calloc(json_object_size(params) + 1, sizeof(*keys));
	json_object_foreach((json_t *)(uintptr_t)params, k, v)
		keys[n++] = k;
	qsort(keys, n, sizeof(*keys), tp_str_qsort_cmp);
	for (size_t i = 0; i < n; i++) {
		const json_t *val = json_object_get(params, keys[i]);
		const char *s = json_string_value(val);
		char num[32];
		if (!s && json_is_boolean(val))
			s = json_is_true(val) ? "true" : "false";
		if (!s && json_is_integer(val)) {
			snprintf(num, sizeof(num), "%lld", (long long)json_integer_value(val));
			s = num;
		}
		if (!s) {
			rc = tp_error_set(TP_EINVALID, "aws: parameter %s is not a scalar", keys[i]);
			break;
		}
		tp_buf_putc(out, '&');
		form_encode(out, keys[i]);
		tp_buf_putc(out, '=');
		if ((rc = tp_buf_put(out, "", 0)) < 0)
			break;
		form_encode(out, s);
	}
	free(keys);
	return rc;
}

/* ---------------------------------------------------------------- errors */

static bool in_list(const char *code, const char *const *list)
{
	for (size_t i = 0; list[i]; i++)
		if (strcmp(code, list[i]) == 0)
			return true;
	return false;
}

static const char *const throttling_codes[] = {
	"Throttling", "ThrottlingException", "ThrottledException", "RequestThrottledException",
	"TooManyRequestsException", "ProvisionedThroughputExceededException",
	"TransactionInProgressException", "RequestLimitExceeded", "BandwidthLimitExceeded",
	"RequestThrottled", "SlowDown", "PriorRequestNotComplete", "EC2ThrottledException",
	"TooManyUpdates", NULL,
};

static const char *const transient_codes[] = {
	"RequestTimeout", "RequestTimeoutException", "InternalError", "InternalFailure",
	"InternalServerError", "InternalServiceError", "ServiceUnavailable",
	"ServiceUnavailableException", "IDPCommunicationError", NULL,
};

static const char *const auth_codes[] = {
	"SignatureDoesNotMatch", "InvalidClientTokenId", "UnrecognizedClientException",
	"AccessDenied", "AccessDeniedException", "ExpiredToken", "ExpiredTokenException",
	"IncompleteSignature", "MissingAuthenticationToken", "InvalidSignatureException",
	"AuthFailure", "NotAuthorized", "InvalidAccessKeyId", "RequestExpired", NULL,
};

int tp_aws_error_class(const tp_aws_error *e)
{
	if (e->code[0] && in_list(e->code, throttling_codes))
		return TP_ETHROTTLED;
	if (e->code[0] && in_list(e->code, transient_codes))
		return TP_ETRANSIENT;
	if (e->code[0] && in_list(e->code, auth_codes))
		return TP_EAUTH;
	if (e->status == 429)
		return TP_ETHROTTLED;
	if (e->status == 500 || e->status == 502 || e->status == 503 || e->status == 504 ||
	    e->status == 408)
		return TP_ETRANSIENT;
	if (e->status >= 500)
		return TP_ETRANSIENT;
	if (e->status == 401 || e->status == 403)
		return TP_EAUTH;
	if (e->status == 404)
		return TP_ENOTFOUND;
	if (e->status == 409)
		return TP_ECONFLICT;
	return TP_EINVALID;
}

/* A printable one-line excerpt of a body that is not an AWS error document (an HTML page
 * from a proxy, a truncated reply): tags dropped, whitespace collapsed, at most n bytes. */
static void excerpt(char *out, size_t n, const char *body, size_t len)
{
	size_t i = 0, j = 0;
	bool in_tag = false, space = false;
	/* each step writes at most a separator and a character; "..." and the terminator
	 * must still fit after the last one */
	for (; i < len && j + 6 <= n; i++) {
		unsigned char c = (unsigned char)body[i];
		if (c == '<') {
			in_tag = true;
			space = true;
			continue;
		}
		if (c == '>' && in_tag) {
			in_tag = false;
			continue;
		}
		if (in_tag)
			continue;
		if (isspace(c) || c < 0x20) {
			space = true;
			continue;
		}
		if (space && j > 0)
			out[j++] = ' ';
		space = false;
		out[j++] = (char)c;
	}
	if (i < len && j + 4 <= n) { /* cut short */
		out[j++] = '.';
		out[j++] = '.';
		out[j++] = '.';
	}
	if (n > 0)
		out[j] = '\0';
}

/* What a reply that could not be parsed looked like, for the error message. Only pages
 * that are not AWS documents (HTML from a proxy, plain text) are quoted: a truncated XML or
 * JSON reply may carry secrets (STS keys, SecureString values) and is never echoed. */
static void bad_body(char *out, size_t n, const char *body, size_t len)
{
	const char *p = body;
	while ((size_t)(p - body) < len && isspace((unsigned char)*p))
		p++;
	if (len == 0) {
		snprintf(out, n, "(empty)");
		return;
	}
	if (*p == '{' || *p == '[' ||
	    (*p == '<' && !strcasestr(body, "<html") && !strcasestr(body, "<!doctype html"))) {
		snprintf(out, n, "(a malformed or truncated %s document, not shown)",
			 *p == '<' ? "XML" : "JSON");
		return;
	}
	excerpt(out, n, body, len);
}

static void copy_str(char *dst, size_t n, const char *src)
{
	size_t j = 0;
	if (!src)
		src = "";
	/* one line, printable */
	for (; *src && j + 1 < n; src++)
		dst[j++] = (unsigned char)*src < 0x20 ? ' ' : *src;
	dst[j] = '\0';
}

void tp_aws_error_parse(tp_aws_error *e, const tp_http_reply *r)
{
	const char *body = tp_buf_cstr(&r->body);
	const char *p = body;
	const char *hdr;

	memset(e, 0, sizeof(*e));
	e->status = r->status;
	while (*p && isspace((unsigned char)*p))
		p++;
	if ((hdr = tp_http_reply_header(r, "x-amzn-requestid")) != NULL ||
	    (hdr = tp_http_reply_header(r, "x-amz-request-id")) != NULL)
		copy_str(e->request_id, sizeof(e->request_id), hdr);
	if (*p == '<') {
		tp_aws_xml *doc = NULL;
		if (tp_aws_xml_parse(&doc, body, r->body.len) == 0) {
			const tp_aws_xml *err = tp_aws_xml_find(doc, "Error");
			const char *rid = tp_aws_xml_text(doc, "RequestId");
			if (!rid) {
				const tp_aws_xml *x = tp_aws_xml_find(doc, "RequestId");
				if (!x)
					x = tp_aws_xml_find(doc, "RequestID");
				rid = x ? x->text : NULL;
			}
			if (err) {
				const char *code = tp_aws_xml_text(err, "Code");
				const char *msg = tp_aws_xml_text(err, "Message");
				if (!msg)
					msg = tp_aws_xml_text(err, "message");
				copy_str(e->code, sizeof(e->code), code);
				copy_str(e->message, sizeof(e->message), msg);
			}
			if (rid && rid[0])
				copy_str(e->request_id, sizeof(e->request_id), rid);
		}
		tp_aws_xml_free(doc);
		tp_error_clear();
	} else if (*p == '{') {
		json_t *j = NULL;
		if (tp_json_parse(&j, body, r->body.len) == 0 && json_is_object(j)) {
			const char *type = tp_json_get_str(j, "__type");
			const char *msg = tp_json_get_str(j, "message");
			if (!type)
				type = tp_json_get_str(j, "code");
			if (!msg)
				msg = tp_json_get_str(j, "Message");
			if (type) {
				const char *hash = strrchr(type, '#');
				copy_str(e->code, sizeof(e->code), hash ? hash + 1 : type);
			}
			copy_str(e->message, sizeof(e->message), msg);
		}
		json_decref(j);
		tp_error_clear();
	}
	if (!e->code[0] && (hdr = tp_http_reply_header(r, "x-amzn-errortype")) != NULL) {
		const char *colon = strchr(hdr, ':');
		size_t n = colon ? (size_t)(colon - hdr) : strlen(hdr);
		if (n >= sizeof(e->code))
			n = sizeof(e->code) - 1;
		memcpy(e->code, hdr, n);
		e->code[n] = '\0';
	}
	if (!e->code[0] && !e->message[0]) {
		const char *ct = tp_http_reply_header(r, "content-type");
		char ex[240];
		excerpt(ex, sizeof(ex), body, r->body.len);
		snprintf(e->message, sizeof(e->message), "unexpected reply%s%s%s: %s",
			 ct ? " (" : "", ct ? ct : "", ct ? ")" : "", ex[0] ? ex : "(empty body)");
	}
}

/* Sets the message of a failed call and returns its code. */
static int report(const tp_aws_call *call, const tp_aws_error *e, int code)
{
	char rid[160] = "";
	if (e->request_id[0])
		snprintf(rid, sizeof(rid), ", request id %s", e->request_id);
	if (e->code[0])
		return tp_error_set(code, "%s %s: %s: %s (HTTP %ld%s)", call->service, call->action,
				    e->code, e->message[0] ? e->message : "(no message)", e->status,
				    rid);
	return tp_error_set(code, "%s %s: HTTP %ld: %s%s%s", call->service, call->action,
			    e->status, e->message, rid[0] ? " (" : "", rid[0] ? rid + 2 : "");
}

/* ---------------------------------------------------------------- retry quota */

static bool quota_take(tp_aws_session *s, int cost)
{
	bool ok;
	pthread_mutex_lock(&s->retry_mu);
	ok = s->retry_tokens >= cost;
	if (ok)
		s->retry_tokens -= cost;
	pthread_mutex_unlock(&s->retry_mu);
	return ok;
}

static void quota_refund(tp_aws_session *s, int amount)
{
	pthread_mutex_lock(&s->retry_mu);
	s->retry_tokens += amount;
	if (s->retry_tokens > RETRY_QUOTA)
		s->retry_tokens = RETRY_QUOTA;
	pthread_mutex_unlock(&s->retry_mu);
}

/* ---------------------------------------------------------------- sending */

typedef struct {
	const char *content_type;
	const char *target; /* X-Amz-Target, or NULL */
	const char *body;
	size_t body_len;
} wire;

/* One signed attempt. 0 with a reply (any status) or a negative code (transport). */
static int send_once(tp_aws_session *s, const tp_aws_call *call, const char *url,
		     const wire *w, const tp_aws_credentials *fixed, tp_http_reply *reply)
{
	tp_aws_credentials creds = {0};
	tp_aws_signature sig = {0};
	tp_aws_header hs[4];
	size_t nh = 0;
	char *host = NULL, *path = NULL;
	char *h_host = NULL, *h_ct = NULL, *h_date = NULL, *h_token = NULL, *h_auth = NULL;
	char *h_target = NULL;
	const char *headers[8];
	size_t nheaders = 0;
	tp_aws_sign_input in;
	tp_http_request req;
	int rc;

	memset(reply, 0, sizeof(*reply));
	if (fixed)
		tp_aws_credentials_copy(&creds, fixed);
	else if ((rc = tp_aws_session_credentials(s, &creds)) < 0)
		goto done;
	if ((rc = split_url(url, &host, &path)) < 0)
		goto done;
	hs[nh++] = (tp_aws_header){"host", host};
	hs[nh++] = (tp_aws_header){"content-type", w->content_type};
	if (w->target)
		hs[nh++] = (tp_aws_header){"x-amz-target", w->target};
	memset(&in, 0, sizeof(in));
	in.method = "POST";
	in.path = path;
	in.headers = hs;
	in.nheaders = nh;
	in.body = w->body;
	in.body_len = w->body_len;
	in.region = s->region;
	in.service = call->service;
	in.time_ms = tp_clock_now_ms();
	in.normalize_path = true;
	if ((rc = tp_aws_sign(&sig, &in, &creds)) < 0)
		goto done;
	h_host = tp_sprintf("Host: %s", host);
	h_ct = tp_sprintf("Content-Type: %s", w->content_type);
	h_date = tp_sprintf("X-Amz-Date: %s", sig.amz_date);
	h_auth = tp_sprintf("Authorization: %s", sig.authorization);
	headers[nheaders++] = h_host;
	headers[nheaders++] = h_ct;
	headers[nheaders++] = h_date;
	if (creds.session_token && creds.session_token[0]) {
		h_token = tp_sprintf("X-Amz-Security-Token: %s", creds.session_token);
		headers[nheaders++] = h_token;
	}
	if (w->target) {
		h_target = tp_sprintf("X-Amz-Target: %s", w->target);
		headers[nheaders++] = h_target;
	}
	headers[nheaders++] = h_auth;
	headers[nheaders++] = "Accept: */*";
	headers[nheaders] = NULL;
	memset(&req, 0, sizeof(req));
	req.method = "POST";
	req.url = url;
	req.headers = headers;
	req.body = w->body;
	req.body_len = w->body_len;
	req.timeout_ms = 60000;
	req.connect_timeout_ms = 10000;
	req.max_response = MAX_REPLY;
	count(s, call->service, call->action);
	rc = tp_http_client_do(s->http, reply, &req);
done:
	tp_aws_credentials_clear(&creds);
	tp_aws_signature_clear(&sig);
	free(host);
	free(path);
	free(h_host);
	free(h_ct);
	free(h_date);
	tp_secret_free(h_token);
	free(h_auth);
	free(h_target);
	return rc;
}

/* Sends with the standard retry mode. 0: a 2xx reply in *reply. Otherwise the error is
 * reported (message set, err filled) and its code returned. */
static int send_with_retries(tp_aws_session *s, const tp_aws_call *call, const wire *w,
			     const tp_aws_credentials *fixed, tp_http_reply *reply,
			     tp_aws_error *err)
{
	char *url = tp_aws_service_url(s, call->service);
	int used_quota = 0;
	bool refreshed_creds = false;
	int rc = 0;
	tp_aws_error e;

	for (int attempt = 1;; attempt++) {
		int64_t t0 = tp_clock_mono_ms(), delay;
		int cls, cost;
		rc = send_once(s, call, url, w, fixed, reply);
		if (rc == 0)
			tp_log(TP_LOG_DEBUG, call->address, NULL, "aws %s %s: HTTP %ld (%lld ms)",
			       call->service, call->action, reply->status,
			       (long long)(tp_clock_mono_ms() - t0));
		if (rc == 0 && reply->status >= 200 && reply->status < 300) {
			quota_refund(s, used_quota ? used_quota : 1);
			goto done;
		}
		memset(&e, 0, sizeof(e));
		if (rc < 0) {
			if (rc != TP_ETRANSIENT)
				goto fail_now; /* credentials, bad URL, oversized reply */
			cls = TP_ETRANSIENT;
			cost = RETRY_COST_TIMEOUT;
			snprintf(e.message, sizeof(e.message), "%s", tp_error_last());
		} else {
			tp_aws_error_parse(&e, reply);
			cls = tp_aws_error_class(&e);
			cost = RETRY_COST;
			if (!refreshed_creds && !fixed &&
			    (strcmp(e.code, "ExpiredToken") == 0 ||
			     strcmp(e.code, "ExpiredTokenException") == 0 ||
			     strcmp(e.code, "RequestExpired") == 0)) {
				/* temporary credentials ran out early: fetch new ones, once */
				refreshed_creds = true;
				tp_aws_session_invalidate_credentials(s);
				tp_http_reply_clear(reply);
				attempt--;
				continue;
			}
		}
		if ((cls != TP_ETRANSIENT && cls != TP_ETHROTTLED) || attempt >= s->max_attempts ||
		    !quota_take(s, cost)) {
			if (err)
				*err = e;
			if (rc < 0) {
				char *m = tp_strdup(tp_error_last());
				rc = tp_error_set(rc, "%s %s: %s", call->service, call->action, m);
				free(m);
			} else {
				rc = report(call, &e, cls);
				if (reply->retry_after_ms >= 0)
					tp_error_set_retry_after(reply->retry_after_ms);
			}
			goto done;
		}
		used_quota += cost;
		delay = tp_backoff_ms(attempt, cls == TP_ETHROTTLED ? s->throttle_base_ms
								 : s->retry_base_ms,
				      s->retry_cap_ms);
		if (rc == 0 && reply->retry_after_ms >= 0)
			delay = reply->retry_after_ms < s->retry_cap_ms ? reply->retry_after_ms
									 : s->retry_cap_ms;
		tp_log(TP_LOG_DEBUG, call->address, NULL,
		       "aws %s %s: attempt %d failed (%s%s%s), retrying in %lld ms", call->service,
		       call->action, attempt, e.code[0] ? e.code : "", e.code[0] ? ": " : "",
		       e.code[0] ? e.message : e.message, (long long)delay);
		tp_http_reply_clear(reply);
		tp_clock_sleep_ms(delay);
	}
fail_now:
	if (err) {
		memset(err, 0, sizeof(*err));
		snprintf(err->message, sizeof(err->message), "%s", tp_error_last());
	}
	{
		char *m = tp_strdup(tp_error_last());
		rc = tp_error_set(rc, "%s %s: %s", call->service, call->action, m);
		free(m);
	}
done:
	if (rc < 0)
		tp_http_reply_clear(reply);
	free(url);
	return rc;
}

int tp_aws_query(tp_aws_session *s, const tp_aws_call *call, const json_t *params,
		 tp_aws_xml **out, tp_aws_error *err)
{
	return tp_aws_query_creds(s, call, params, NULL, out, err);
}

int tp_aws_query_creds(tp_aws_session *s, const tp_aws_call *call, const json_t *params,
		       const tp_aws_credentials *creds, tp_aws_xml **out, tp_aws_error *err)
{
	tp_buf body;
	tp_http_reply reply;
	wire w = {"application/x-www-form-urlencoded; charset=utf-8", NULL, NULL, 0};
	tp_aws_xml *doc = NULL;
	char root[160];
	int rc;

	if (out)
		*out = NULL;
	if (err)
		memset(err, 0, sizeof(*err));
	memset(&reply, 0, sizeof(reply));
	tp_buf_init(&body, TP_BUF_DEFAULT_MAX);
	if ((rc = tp_aws_form_encode(&body, call->action, call->version, params)) < 0)
		goto done;
	w.body = tp_buf_cstr(&body);
	w.body_len = body.len;
	if ((rc = send_with_retries(s, call, &w, creds, &reply, err)) < 0)
		goto done;
	if ((rc = tp_aws_xml_parse(&doc, tp_buf_cstr(&reply.body), reply.body.len)) < 0) {
		char *why = tp_strdup(tp_error_last());
		char ex[200];
		const char *ct = tp_http_reply_header(&reply, "content-type");
		bad_body(ex, sizeof(ex), tp_buf_cstr(&reply.body), reply.body.len);
		rc = tp_error_set(TP_EIO, "%s %s: the reply is not the XML AWS sends (HTTP %ld, %s): "
				  "%s; it reads: %s", call->service, call->action, reply.status,
				  ct ? ct : "no content type", why, ex);
		free(why);
		goto done;
	}
	snprintf(root, sizeof(root), "%sResponse", call->action);
	if (strcmp(doc->name, root) != 0) {
		rc = tp_error_set(TP_EIO, "%s %s: unexpected reply: <%s> where <%s> was expected",
				  call->service, call->action, doc->name, root);
		goto done;
	}
	if (out) {
		*out = doc;
		doc = NULL;
	}
done:
	/* bodies may hold secrets (SecureString values, templates): wipe before freeing */
	if (body.ptr)
		explicit_bzero(body.ptr, body.len);
	if (reply.body.ptr)
		explicit_bzero(reply.body.ptr, reply.body.len);
	tp_buf_free(&body);
	tp_http_reply_clear(&reply);
	tp_aws_xml_free(doc);
	return rc;
}

int tp_aws_json(tp_aws_session *s, const tp_aws_call *call, const char *target_prefix,
		const json_t *body, json_t **out, tp_aws_error *err)
{
	char *text = NULL;
	char *target = tp_sprintf("%s.%s", target_prefix, call->action);
	tp_http_reply reply;
	wire w = {"application/x-amz-json-1.1", target, NULL, 0};
	json_t *doc = NULL;
	int rc;

	*out = NULL;
	if (err)
		memset(err, 0, sizeof(*err));
	memset(&reply, 0, sizeof(reply));
	text = json_dumps(body, JSON_COMPACT | JSON_SORT_KEYS);
	if (!text) {
		rc = tp_error_set(TP_EINVALID, "%s %s: cannot encode the request", call->service,
				  call->action);
		goto done;
	}
	w.body = text;
	w.body_len = strlen(text);
	if ((rc = send_with_retries(s, call, &w, NULL, &reply, err)) < 0)
		goto done;
	if (reply.body.len == 0) {
		doc = json_object();
	} else if ((rc = tp_json_parse(&doc, tp_buf_cstr(&reply.body), reply.body.len)) < 0 ||
		   !json_is_object(doc)) {
		char *why = tp_strdup(rc < 0 ? tp_error_last() : "not a JSON object");
		/* the parser quotes the text near the error: it may be part of a secret */
		char *near = strstr(why, " near ");
		if (near)
			*near = '\0';
		char ex[200];
		const char *ct = tp_http_reply_header(&reply, "content-type");
		bad_body(ex, sizeof(ex), tp_buf_cstr(&reply.body), reply.body.len);
		rc = tp_error_set(TP_EIO, "%s %s: the reply is not the JSON AWS sends (HTTP %ld, %s): "
				  "%s; it reads: %s", call->service, call->action, reply.status,
				  ct ? ct : "no content type", why, ex);
		free(why);
		json_decref(doc);
		doc = NULL;
		goto done;
	}
	*out = doc;
done:
	if (text) {
		explicit_bzero(text, strlen(text));
		free(text);
	}
	if (reply.body.ptr)
		explicit_bzero(reply.body.ptr, reply.body.len);
	tp_http_reply_clear(&reply);
	free(target);
	return rc;
}
