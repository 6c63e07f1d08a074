/*
 * Where the aws provider's credentials come from, in the order the AWS SDKs use:
 *  1. the environment: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN;
 *  2. a profile (providers.aws.profile, else AWS_PROFILE, else "default") in the shared
 *     credentials file (AWS_SHARED_CREDENTIALS_FILE, ~/.aws/credentials) and config file
 *     (AWS_CONFIG_FILE, ~/.aws/config); a profile named explicitly must exist;
 *  3. the EC2 instance role through IMDSv2 (AWS_EC2_METADATA_SERVICE_ENDPOINT, default
 *     http://169.254.169.254; AWS_EC2_METADATA_DISABLED=true skips it): a session token from
 *     PUT /latest/api/token, the role name, then the role's temporary credentials. An IMDS
 *     that refuses the token request with 404/405 is read without one (IMDSv1).
 * With providers.aws.role_arn the credentials found are used only to call STS AssumeRole.
 * Temporary credentials are cached in the session and refreshed 5 minutes before they
 * expire; if a refresh fails while the old ones are still valid, the old ones are kept.
 * Secrets are held only here and in the signer, wiped when dropped, never logged.
 */
#include "aws_int.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define REFRESH_BEFORE_MS (5 * 60 * 1000)
#define IMDS_DEFAULT "http://169.254.169.254"
#define IMDS_TOKEN_TTL_S 21600
#define MAX_FILE ((size_t)1 << 20)

/* ---------------------------------------------------------------- helpers */

/* "2026-11-22T22:23:27Z" (optionally with fractional seconds or +00:00) → ms, 0 if bad. */
static int64_t parse_iso8601(const char *s)
{
	struct tm tm;
	const char *end;
	if (!s)
		return 0;
	memset(&tm, 0, sizeof(tm));
	end = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
	if (!end)
		return 0;
	return (int64_t)timegm(&tm) * 1000;
}

static bool usable(const tp_aws_credentials *c, int64_t now)
{
	return c->access_key_id && c->secret_access_key &&
	       (c->expires_ms == 0 || c->expires_ms - REFRESH_BEFORE_MS > now);
}

static bool still_valid(const tp_aws_credentials *c, int64_t now)
{
	return c->access_key_id && c->secret_access_key &&
	       (c->expires_ms == 0 || c->expires_ms - 10000 > now);
}

static void set_creds(tp_aws_credentials *out, const char *id, const char *secret,
		      const char *token, int64_t expires, const char *source)
{
	memset(out, 0, sizeof(*out));
	out->access_key_id = tp_strdup(id);
	out->secret_access_key = tp_strdup(secret);
	out->session_token = token && token[0] ? tp_strdup(token) : NULL;
	out->expires_ms = expires;
	/* a label for messages: a long profile or role name is cut, never overflows */
	snprintf(out->source, sizeof(out->source), "%.*s", (int)sizeof(out->source) - 1, source);
}

/* ---------------------------------------------------------------- environment */

/* 1 found, 0 not configured, <0 error */
static int from_env(tp_aws_credentials *out)
{
	const char *id = getenv("AWS_ACCESS_KEY_ID");
	const char *secret = getenv("AWS_SECRET_ACCESS_KEY");
	const char *token = getenv("AWS_SESSION_TOKEN");
	if (!token || !token[0])
		token = getenv("AWS_SECURITY_TOKEN");
	if ((!id || !id[0]) && (!secret || !secret[0]))
		return 0;
	if (!id || !id[0] || !secret || !secret[0])
		return tp_error_set(TP_EAUTH, "aws: %s is set but %s is not",
				    id && id[0] ? "AWS_ACCESS_KEY_ID" : "AWS_SECRET_ACCESS_KEY",
				    id && id[0] ? "AWS_SECRET_ACCESS_KEY" : "AWS_ACCESS_KEY_ID");
	set_creds(out, id, secret, token, 0, "environment");
	return 1;
}

/* ---------------------------------------------------------------- shared files */

static char *default_path(const char *env, const char *rel)
{
	const char *v = getenv(env);
	const char *home = getenv("HOME");
	if (v && v[0]) {
		if (v[0] == '~' && v[1] == '/' && home)
			return tp_sprintf("%s%s", home, v + 1);
		return tp_strdup(v);
	}
	if (!home || !home[0])
		return NULL;
	return tp_sprintf("%s/%s", home, rel);
}

static char *trim(char *s)
{
	char *e;
	while (*s && isspace((unsigned char)*s))
		s++;
	e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1]))
		*--e = '\0';
	return s;
}

/*
 * Reads the keys of one section of an INI-style AWS file into `into` (keys lower-cased;
 * keys already present are not overwritten, so the file read first wins). `names` are the
 * accepted section headers ("default" / "profile default"). 1 when the section exists, 0
 * when it does not (or the file is missing), <0 when the file cannot be read.
 */
static int read_section(json_t *into, const char *path, const char *const *names)
{
	tp_buf b;
	char *save = NULL, *line;
	bool in = false, found = false;
	int rc;

	if (!path)
		return 0;
	tp_buf_init(&b, MAX_FILE);
	rc = tp_file_read(&b, path, MAX_FILE);
	if (rc == TP_ENOTFOUND) {
		tp_error_clear();
		tp_buf_free(&b);
		return 0;
	}
	if (rc < 0) {
		tp_buf_free(&b);
		return rc;
	}
	for (line = strtok_r(b.ptr ? b.ptr : (char *)"", "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		char *t;
		char *eq;
		if (line[0] == ' ' || line[0] == '\t')
			continue; /* nested settings (s3 = ...) */
		t = trim(line);
		if (!t[0] || t[0] == '#' || t[0] == ';')
			continue;
		if (t[0] == '[') {
			char *end = strchr(t, ']');
			char *name;
			in = false;
			if (!end)
				continue;
			*end = '\0';
			name = trim(t + 1);
			for (size_t i = 0; names[i]; i++) {
				/* "profile   x" is "profile x" */
				if (strncmp(name, "profile", 7) == 0 && isspace((unsigned char)name[7]) &&
				    strncmp(names[i], "profile ", 8) == 0) {
					if (strcmp(trim(name + 8), names[i] + 8) == 0)
						in = true;
				} else if (strcmp(name, names[i]) == 0) {
					in = true;
				}
			}
			found = found || in;
			continue;
		}
		if (!in || !(eq = strchr(t, '=')))
			continue;
		*eq = '\0';
		{
			char *k = trim(t), *v = trim(eq + 1);
			for (char *p = k; *p; p++)
				*p = (char)tolower((unsigned char)*p);
			if (!json_object_get(into, k))
				json_object_set_new(into, k, json_string(v));
		}
	}
	if (b.ptr)
		explicit_bzero(b.ptr, b.len);
	tp_buf_free(&b);
	return found ? 1 : 0;
}

static void wipe_obj(json_t *o)
{
	const char *k;
	json_t *v;
	json_object_foreach(o, k, v) {
		if (json_is_string(v) && json_string_length(v)) {
			char *z = tp_calloc(json_string_length(v) + 1, 1);
			memset(z, 'x', json_string_length(v));
			json_string_set(v, z);
			free(z);
		}
	}
}

/* 1 found, 0 not configured (implicit default profile absent), <0 error */
static int from_profile(tp_aws_session *s, tp_aws_credentials *out)
{
	char *cred_path = default_path("AWS_SHARED_CREDENTIALS_FILE", ".aws/credentials");
	char *conf_path = default_path("AWS_CONFIG_FILE", ".aws/config");
	char *conf_name = strcmp(s->profile, "default") == 0 ? tp_strdup("default")
							     : tp_sprintf("profile %s", s->profile);
	const char *cred_names[] = {s->profile, NULL};
	const char *conf_names[] = {conf_name, "profile default", NULL};
	json_t *kv = json_object();
	const char *id, *secret;
	char source[160];
	int rc, found = 0;

	if (strcmp(s->profile, "default") != 0)
		conf_names[1] = NULL;
	if ((rc = read_section(kv, cred_path, cred_names)) < 0)
		goto done;
	found |= rc;
	if ((rc = read_section(kv, conf_path, conf_names)) < 0)
		goto done;
	found |= rc;
	rc = 0;
	if (!found) {
		if (s->profile_explicit)
			rc = tp_error_set(TP_EAUTH, "aws: profile \"%s\" is not in %s or %s",
					  s->profile, cred_path ? cred_path : "~/.aws/credentials",
					  conf_path ? conf_path : "~/.aws/config");
		goto done;
	}
	id = tp_json_get_str(kv, "aws_access_key_id");
	secret = tp_json_get_str(kv, "aws_secret_access_key");
	if (!id || !id[0] || !secret || !secret[0]) {
		const char *feature = json_object_get(kv, "credential_process") ? "credential_process"
				      : json_object_get(kv, "sso_session")	? "sso_session"
				      : json_object_get(kv, "sso_start_url")	? "sso_start_url"
				      : json_object_get(kv, "role_arn")		? "role_arn"
				      : json_object_get(kv, "web_identity_token_file")
					      ? "web_identity_token_file"
					      : NULL;
		if (!s->profile_explicit && !feature && !id && !secret) {
			/* a default profile that only holds settings such as region */
			goto done;
		}
		if (feature)
			rc = tp_error_set(TP_EAUTH, "aws: profile \"%s\" uses %s, which Tapestry "
						    "does not support: give the profile "
						    "aws_access_key_id and aws_secret_access_key, or "
						    "set providers.aws.role_arn", s->profile, feature);
		else
			rc = tp_error_set(TP_EAUTH, "aws: profile \"%s\" has no %s", s->profile,
					  id && id[0] ? "aws_secret_access_key" : "aws_access_key_id");
		goto done;
	}
	snprintf(source, sizeof(source), "profile %s", s->profile);
	set_creds(out, id, secret, tp_json_get_str(kv, "aws_session_token"), 0, source);
	rc = 1;
done:
	wipe_obj(kv);
	json_decref(kv);
	free(cred_path);
	free(conf_path);
	free(conf_name);
	return rc;
}

/* ---------------------------------------------------------------- IMDSv2 */

static char *imds_base(const tp_aws_session *s)
{
	const char *e = s->imds_endpoint ? s->imds_endpoint
					 : getenv("AWS_EC2_METADATA_SERVICE_ENDPOINT");
	size_t n;
	if (!e || !e[0])
		e = IMDS_DEFAULT;
	n = strlen(e);
	return n && e[n - 1] == '/' ? tp_strndup(e, n - 1) : tp_strdup(e);
}

/* One IMDS request, with one retry on transport errors (IMDS answers in milliseconds or not
 * at all; timeouts are short so a host without IMDS fails fast). */
static int imds_request(tp_aws_session *s, tp_http_reply *out, const char *method,
			const char *url, const char *const *headers)
{
	tp_http_request req;
	int rc = 0;
	memset(&req, 0, sizeof(req));
	req.method = method;
	req.url = url;
	req.headers = headers;
	req.body = strcmp(method, "PUT") == 0 ? "" : NULL;
	req.timeout_ms = 2000;
	req.connect_timeout_ms = 1000;
	req.max_response = 64 * 1024;
	for (int attempt = 1; attempt <= 2; attempt++) {
		rc = tp_http_client_do(s->http, out, &req);
		if (rc == 0 && out->status < 500)
			return 0;
		if (attempt < 2) {
			tp_http_reply_clear(out);
			tp_clock_sleep_ms(100);
		}
	}
	return rc;
}

/* A session token for IMDSv2; *token stays NULL when IMDS only speaks v1. */
static int imds_token(tp_aws_session *s, const char *base, char **token)
{
	char *url = tp_sprintf("%s/latest/api/token", base);
	char ttl[64];
	const char *headers[] = {ttl, NULL};
	tp_http_reply r;
	int rc;

	*token = NULL;
	if ((s->imds_token || s->imds_v1) && s->imds_token_expires_ms > tp_clock_now_ms() + 60000) {
		*token = s->imds_token ? tp_strdup(s->imds_token) : NULL;
		free(url);
		return 0;
	}
	snprintf(ttl, sizeof(ttl), "X-aws-ec2-metadata-token-ttl-seconds: %d", IMDS_TOKEN_TTL_S);
	rc = imds_request(s, &r, "PUT", url, headers);
	if (rc < 0) {
		char *m = tp_strdup(tp_error_last());
		rc = tp_error_set(TP_EAUTH, "IMDS token: %s", m);
		free(m);
		goto done;
	}
	if (r.status == 404 || r.status == 405) {
		rc = 0; /* IMDSv1 only: asked again when a token would have expired */
		s->imds_v1 = true;
		s->imds_token_expires_ms = tp_clock_now_ms() + (int64_t)IMDS_TOKEN_TTL_S * 1000;
		goto done;
	}
	if (r.status != 200 || r.body.len == 0) {
		rc = tp_error_set(TP_EAUTH, "IMDS token: PUT %s: HTTP %ld", url, r.status);
		goto done;
	}
	tp_secret_free(s->imds_token);
	s->imds_v1 = false;
	s->imds_token = tp_strdup(trim(r.body.ptr));
	s->imds_token_expires_ms = tp_clock_now_ms() + (int64_t)IMDS_TOKEN_TTL_S * 1000;
	*token = tp_strdup(s->imds_token);
done:
	if (r.body.ptr)
		explicit_bzero(r.body.ptr, r.body.len);
	tp_http_reply_clear(&r);
	free(url);
	return rc;
}

static int imds_get(tp_aws_session *s, const char *base, const char *path, tp_http_reply *r,
		    bool *retry_token)
{
	char *url = tp_sprintf("%s%s", base, path);
	char *token = NULL;
	char *h = NULL;
	const char *headers[2] = {NULL, NULL};
	int rc;

	if ((rc = imds_token(s, base, &token)) < 0)
		goto done;
	if (token) {
		h = tp_sprintf("X-aws-ec2-metadata-token: %s", token);
		headers[0] = h;
	}
	rc = imds_request(s, r, "GET", url, headers);
	if (rc < 0) {
		char *m = tp_strdup(tp_error_last());
		rc = tp_error_set(TP_EAUTH, "IMDS: %s", m);
		free(m);
		goto done;
	}
	if (r->status == 401 && retry_token && !*retry_token) {
		/* the token expired under us: once more with a new one */
		*retry_token = true;
		tp_secret_free(s->imds_token);
		s->imds_token = NULL;
		s->imds_v1 = false;
		s->imds_token_expires_ms = 0;
		tp_http_reply_clear(r);
		rc = imds_get(s, base, path, r, retry_token);
		goto done;
	}
	if (r->status == 404) {
		rc = tp_error_set(TP_EAUTH, "IMDS: GET %s: HTTP 404 (no instance role attached?)",
				  url);
		goto done;
	}
	if (r->status != 200) {
		rc = tp_error_set(TP_EAUTH, "IMDS: GET %s: HTTP %ld", url, r->status);
		goto done;
	}
done:
	tp_secret_free(token);
	tp_secret_free(h);
	free(url);
	return rc;
}

static int from_imds(tp_aws_session *s, tp_aws_credentials *out)
{
	char *base = imds_base(s);
	tp_http_reply r;
	json_t *doc = NULL;
	char *role = NULL, *path = NULL;
	const char *code;
	char source[200];
	bool retried = false;
	int rc;

	memset(&r, 0, sizeof(r));
	rc = imds_get(s, base, "/latest/meta-data/iam/security-credentials/", &r, &retried);
	if (rc < 0)
		goto done;
	{
		char *line = trim(r.body.ptr ? r.body.ptr : (char *)"");
		char *nl = strchr(line, '\n');
		if (nl)
			*nl = '\0';
		line = trim(line);
		if (!line[0] || strchr(line, '/') || strchr(line, '?')) {
			rc = tp_error_set(TP_EAUTH, "IMDS: the instance has no IAM role");
			goto done;
		}
		role = tp_strdup(line);
	}
	tp_http_reply_clear(&r);
	path = tp_sprintf("/latest/meta-data/iam/security-credentials/%s", role);
	if ((rc = imds_get(s, base, path, &r, &retried)) < 0)
		goto done;
	if (tp_json_parse(&doc, tp_buf_cstr(&r.body), r.body.len) < 0 || !json_is_object(doc)) {
		rc = tp_error_set(TP_EAUTH, "IMDS: the credentials of role %s are not JSON", role);
		goto done;
	}
	code = tp_json_get_str(doc, "Code");
	if (code && strcmp(code, "Success") != 0) {
		rc = tp_error_set(TP_EAUTH, "IMDS: role %s: %s: %s", role, code,
				  tp_json_get_str(doc, "Message") ? tp_json_get_str(doc, "Message")
								  : "no credentials");
		goto done;
	}
	if (!tp_json_get_str(doc, "AccessKeyId") || !tp_json_get_str(doc, "SecretAccessKey")) {
		rc = tp_error_set(TP_EAUTH, "IMDS: role %s: the reply has no AccessKeyId or "
					    "SecretAccessKey", role);
		goto done;
	}
	snprintf(source, sizeof(source), "instance role %s", role);
	set_creds(out, tp_json_get_str(doc, "AccessKeyId"), tp_json_get_str(doc, "SecretAccessKey"),
		  tp_json_get_str(doc, "Token"), parse_iso8601(tp_json_get_str(doc, "Expiration")),
		  source);
	rc = 1;
done:
	if (doc) {
		wipe_obj(doc);
		json_decref(doc);
	}
	if (r.body.ptr)
		explicit_bzero(r.body.ptr, r.body.len);
	tp_http_reply_clear(&r);
	free(base);
	free(role);
	free(path);
	return rc;
}

/* ---------------------------------------------------------------- chain */

int tp_aws_credentials_resolve(tp_aws_session *s, tp_aws_credentials *out)
{
	const char *disabled = getenv("AWS_EC2_METADATA_DISABLED");
	char *imds_why = NULL;
	int rc;

	memset(out, 0, sizeof(*out));
	if ((rc = from_env(out)) != 0)
		return rc < 0 ? rc : 0;
	if ((rc = from_profile(s, out)) != 0)
		return rc < 0 ? rc : 0;
	if (disabled && strcasecmp(disabled, "true") == 0) {
		imds_why = tp_strdup("IMDS is disabled (AWS_EC2_METADATA_DISABLED)");
	} else {
		if ((rc = from_imds(s, out)) > 0)
			return 0;
		imds_why = tp_strdup(tp_error_last());
	}
	rc = tp_error_set(TP_EAUTH,
			  "aws: no credentials found: set AWS_ACCESS_KEY_ID and "
			  "AWS_SECRET_ACCESS_KEY, configure a profile (AWS_PROFILE, "
			  "~/.aws/credentials), or run on an EC2 instance with an instance role "
			  "(%s)", imds_why);
	free(imds_why);
	return rc;
}

static char *session_name(const char *pipeline)
{
	char *n = tp_sprintf("tapestry-%s", pipeline);
	for (char *p = n; *p; p++)
		if (!isalnum((unsigned char)*p) && !strchr("_+=,.@-", *p))
			*p = '-';
	if (strlen(n) > 64)
		n[64] = '\0';
	return n;
}

static int assume_role(tp_aws_session *s, const tp_aws_credentials *base,
		       tp_aws_credentials *out)
{
	tp_aws_call call = {"sts", "2011-06-15", "AssumeRole", NULL};
	char *name = session_name(s->pipeline);
	json_t *params = json_pack("{s:s,s:s,s:s}", "RoleArn", s->role_arn, "RoleSessionName",
				   name, "DurationSeconds", "3600");
	tp_aws_xml *doc = NULL;
	const tp_aws_xml *c = NULL;
	char source[320];
	int rc;

	memset(out, 0, sizeof(*out));
	if ((rc = tp_aws_query_creds(s, &call, params, base, &doc, NULL)) < 0)
		goto done;
	c = tp_aws_xml_path(doc, "AssumeRoleResult/Credentials");
	if (!tp_aws_xml_text(c, "AccessKeyId") || !tp_aws_xml_text(c, "SecretAccessKey") ||
	    !tp_aws_xml_text(c, "SessionToken")) {
		rc = tp_error_set(TP_EAUTH, "sts AssumeRole: the reply has no credentials");
		goto done;
	}
	snprintf(source, sizeof(source), "role %s (from %s)", s->role_arn, base->source);
	set_creds(out, tp_aws_xml_text(c, "AccessKeyId"), tp_aws_xml_text(c, "SecretAccessKey"),
		  tp_aws_xml_text(c, "SessionToken"),
		  parse_iso8601(tp_aws_xml_text(c, "Expiration")), source);
	if (out->expires_ms == 0)
		out->expires_ms = tp_clock_now_ms() + 3600 * 1000;
done:
	if (doc) {
		/* the document holds the new secret key and token */
		tp_aws_xml *x = (tp_aws_xml *)(uintptr_t)c;
		for (tp_aws_xml *k = x ? x->first : NULL; k; k = k->next)
			explicit_bzero(k->text, k->text_len);
	}
	tp_aws_xml_free(doc);
	json_decref(params);
	free(name);
	return rc;
}

int tp_aws_session_identity(tp_aws_session *s, char partition[24], char account[16])
{
	tp_aws_call call = {"sts", "2011-06-15", "GetCallerIdentity", NULL};
	json_t *params = json_object();
	tp_aws_xml *doc = NULL;
	const char *acct, *arn, *colon;
	int rc = 0;

	/* held across the call: workers that need it at the same time wait for one answer */
	pthread_mutex_lock(&s->identity_mu);
	if (s->identity_known)
		goto done;
	if ((rc = tp_aws_query(s, &call, params, &doc, NULL)) < 0)
		goto done;
	acct = tp_aws_xml_text(doc, "GetCallerIdentityResult/Account");
	arn = tp_aws_xml_text(doc, "GetCallerIdentityResult/Arn");
	colon = arn && strncmp(arn, "arn:", 4) == 0 ? strchr(arn + 4, ':') : NULL;
	if (!acct || strlen(acct) != 12 || strspn(acct, "0123456789") != 12 || !colon ||
	    colon == arn + 4 || (size_t)(colon - (arn + 4)) >= sizeof(s->partition) ||
	    strspn(arn + 4, "abcdefghijklmnopqrstuvwxyz-") != (size_t)(colon - (arn + 4))) {
		rc = tp_error_set(TP_ETRANSIENT, "sts GetCallerIdentity: the reply has no "
						 "account id and caller ARN");
		goto done;
	}
	memcpy(s->partition, arn + 4, (size_t)(colon - (arn + 4)));
	s->partition[colon - (arn + 4)] = '\0';
	memcpy(s->account, acct, 13);
	s->identity_known = true;
done:
	if (rc == 0) {
		memcpy(partition, s->partition, sizeof(s->partition));
		memcpy(account, s->account, sizeof(s->account));
	}
	pthread_mutex_unlock(&s->identity_mu);
	tp_aws_xml_free(doc);
	json_decref(params);
	return rc;
}

int tp_aws_session_credentials(tp_aws_session *s, tp_aws_credentials *out)
{
	int64_t now = tp_clock_now_ms();
	int rc = 0;

	memset(out, 0, sizeof(*out));
	pthread_mutex_lock(&s->cred_mu);
	if (!usable(&s->base, now)) {
		tp_aws_credentials fresh;
		rc = tp_aws_credentials_resolve(s, &fresh);
		if (rc == 0) {
			tp_aws_credentials_clear(&s->base);
			s->base = fresh;
			tp_log(TP_LOG_DEBUG, NULL, NULL, "aws: credentials from %s", s->base.source);
		} else if (still_valid(&s->base, now)) {
			tp_log(TP_LOG_WARN, NULL, NULL, "aws: refreshing credentials failed (%s); "
			       "using the current ones until they expire", tp_error_last());
			rc = 0;
		} else {
			goto done;
		}
	}
	if (s->role_arn) {
		if (!usable(&s->assumed, now)) {
			tp_aws_credentials fresh;
			rc = assume_role(s, &s->base, &fresh);
			if (rc == 0) {
				tp_aws_credentials_clear(&s->assumed);
				s->assumed = fresh;
			} else if (still_valid(&s->assumed, now)) {
				rc = 0;
			} else {
				char *m = tp_strdup(tp_error_last());
				rc = tp_error_set(rc, "aws: assuming role %s: %s", s->role_arn, m);
				free(m);
				goto done;
			}
		}
		tp_aws_credentials_copy(out, &s->assumed);
	} else {
		tp_aws_credentials_copy(out, &s->base);
	}
done:
	pthread_mutex_unlock(&s->cred_mu);
	return rc;
}

void tp_aws_session_invalidate_credentials(tp_aws_session *s)
{
	pthread_mutex_lock(&s->cred_mu);
	if (s->base.expires_ms != 0)
		tp_aws_credentials_clear(&s->base);
	tp_aws_credentials_clear(&s->assumed);
	pthread_mutex_unlock(&s->cred_mu);
}
