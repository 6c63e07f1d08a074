/*
 * AWS Signature Version 4: the bottom of the aws provider. Turns a request (method, path,
 * query, headers, body) and a set of credentials into the canonical request, the string to
 * sign and the signature, either as an Authorization header or as a presigned query string.
 * Pure functions over memory: no clock (the caller passes the time), no I/O, so the official
 * test vectors (tests/fixtures/aws/sigv4) check it byte for byte. The secret key only ever
 * enters the HMAC chain and the derived keys are wiped after use.
 */
#include "aws_int.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define ALGORITHM "AWS4-HMAC-SHA256"

void tp_aws_credentials_clear(tp_aws_credentials *c)
{
	if (!c)
		return;
	tp_secret_free(c->access_key_id);
	tp_secret_free(c->secret_access_key);
	tp_secret_free(c->session_token);
	memset(c, 0, sizeof(*c));
}

void tp_aws_credentials_copy(tp_aws_credentials *out, const tp_aws_credentials *in)
{
	memset(out, 0, sizeof(*out));
	out->access_key_id = in->access_key_id ? tp_strdup(in->access_key_id) : NULL;
	out->secret_access_key = in->secret_access_key ? tp_strdup(in->secret_access_key) : NULL;
	out->session_token = in->session_token ? tp_strdup(in->session_token) : NULL;
	out->expires_ms = in->expires_ms;
	memcpy(out->source, in->source, sizeof(out->source));
}

void tp_aws_signature_clear(tp_aws_signature *s)
{
	if (!s)
		return;
	free(s->canonical_request);
	free(s->string_to_sign);
	free(s->signed_headers);
	free(s->authorization);
	free(s->query);
	memset(s, 0, sizeof(*s));
}

static bool unreserved(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       c == '-' || c == '.' || c == '_' || c == '~';
}

void tp_aws_uri_encode(tp_buf *out, const char *s, size_t len, bool keep_slash)
{
	static const char hex[] = "0123456789ABCDEF";
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (unreserved(c) || (keep_slash && c == '/')) {
			tp_buf_putc(out, (char)c);
		} else {
			char e[3] = {'%', hex[c >> 4], hex[c & 15]};
			tp_buf_put(out, e, 3);
		}
	}
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Percent-decodes s[0..len) into a new string ('+' stays '+'; bad escapes stay as text). */
static char *uri_decode(const char *s, size_t len)
{
	char *out = tp_malloc(len + 1);
	size_t j = 0;
	for (size_t i = 0; i < len; i++) {
		int h, l;
		if (s[i] == '%' && i + 2 < len &&
		    (h = hexval(s[i + 1])) >= 0 && (l = hexval(s[i + 2])) >= 0) {
			out[j++] = (char)(h * 16 + l);
			i += 2;
		} else {
			out[j++] = s[i];
		}
	}
	out[j] = '\0';
	return out;
}

/* ---------------------------------------------------------------- path */

/* The canonical URI: dot segments and empty segments removed when normalising (RFC 3986
 * remove_dot_segments plus "//" collapsing), then every byte but unreserved ones and '/'
 * percent-encoded. */
static void canonical_path(tp_buf *out, const char *path, bool normalize)
{
	const char *p = path && path[0] ? path : "/";
	size_t n = strlen(p);
	if (!normalize) {
		tp_aws_uri_encode(out, p, n, true);
		return;
	}
	{
		const char **seg = tp_calloc(n + 1, sizeof(*seg));
		size_t *seglen = tp_calloc(n + 1, sizeof(*seglen));
		size_t nseg = 0;
		bool trailing = false;
		const char *s = p;
		while (*s) {
			const char *e;
			size_t l;
			while (*s == '/')
				s++;
			if (!*s) {
				trailing = true;
				break;
			}
			e = strchr(s, '/');
			l = e ? (size_t)(e - s) : strlen(s);
			trailing = false;
			if (l == 1 && s[0] == '.') {
				trailing = true;
			} else if (l == 2 && s[0] == '.' && s[1] == '.') {
				if (nseg > 0)
					nseg--;
				trailing = true;
			} else {
				seg[nseg] = s;
				seglen[nseg++] = l;
			}
			s += l;
		}
		tp_buf_putc(out, '/');
		for (size_t i = 0; i < nseg; i++) {
			if (i > 0)
				tp_buf_putc(out, '/');
			tp_aws_uri_encode(out, seg[i], seglen[i], false);
		}
		if (trailing && nseg > 0)
			tp_buf_putc(out, '/');
		free(seg);
		free(seglen);
	}
}

/* ---------------------------------------------------------------- query */

typedef struct {
	char *key; /* encoded */
	char *value;
} qparam;

typedef struct {
	qparam *items;
	size_t len, cap;
} qlist;

static void qlist_add_encoded(qlist *l, const char *k, size_t klen, const char *v, size_t vlen)
{
	tp_buf kb, vb;
	char *kd = uri_decode(k, klen), *vd = uri_decode(v, vlen);
	tp_buf_init(&kb, TP_BUF_DEFAULT_MAX);
	tp_buf_init(&vb, TP_BUF_DEFAULT_MAX);
	tp_aws_uri_encode(&kb, kd, strlen(kd), false);
	tp_aws_uri_encode(&vb, vd, strlen(vd), false);
	if (l->len == l->cap) {
		l->cap = l->cap ? 2 * l->cap : 16;
		l->items = tp_realloc(l->items, l->cap * sizeof(*l->items));
	}
	l->items[l->len].key = tp_buf_detach(&kb);
	l->items[l->len].value = tp_buf_detach(&vb);
	l->len++;
	free(kd);
	free(vd);
	tp_buf_free(&kb);
	tp_buf_free(&vb);
}

/* Adds a parameter given in plain (decoded) form. */
static void qlist_add(qlist *l, const char *k, const char *v)
{
	tp_buf kb, vb;
	tp_buf_init(&kb, TP_BUF_DEFAULT_MAX);
	tp_buf_init(&vb, TP_BUF_DEFAULT_MAX);
	tp_aws_uri_encode(&kb, k, strlen(k), false);
	tp_aws_uri_encode(&vb, v, strlen(v), false);
	if (l->len == l->cap) {
		l->cap = l->cap ? 2 * l->cap : 16;
		l->items = tp_realloc(l->items, l->cap * sizeof(*l->items));
	}
	l->items[l->len].key = tp_buf_detach(&kb);
	l->items[l->len].value = tp_buf_detach(&vb);
	l->len++;
	tp_buf_free(&kb);
	tp_buf_free(&vb);
}

static void qlist_parse(qlist *l, const char *query)
{
	const char *s = query;
	while (s && *s) {
		const char *amp = strchr(s, '&');
		size_t n = amp ? (size_t)(amp - s) : strlen(s);
		if (n > 0) {
			const char *eq = memchr(s, '=', n);
			if (eq)
				qlist_add_encoded(l, s, (size_t)(eq - s), eq + 1,
						  n - (size_t)(eq - s) - 1);
			else
				qlist_add_encoded(l, s, n, "", 0);
		}
		s = amp ? amp + 1 : NULL;
	}
}

static int qparam_cmp(const void *a, const void *b)
{
	const qparam *x = a, *y = b;
	int c = strcmp(x->key, y->key);
	return c ? c : strcmp(x->value, y->value);
}

static void qlist_render(tp_buf *out, qlist *l)
{
	if (l->len == 0)
		return;
	qsort(l->items, l->len, sizeof(*l->items), qparam_cmp);
	for (size_t i = 0; i < l->len; i++) {
		if (i > 0)
			tp_buf_putc(out, '&');
		tp_buf_printf(out, "%s=%s", l->items[i].key, l->items[i].value);
	}
}

static void qlist_free(qlist *l)
{
	for (size_t i = 0; i < l->len; i++) {
		free(l->items[i].key);
		free(l->items[i].value);
	}
	free(l->items);
	memset(l, 0, sizeof(*l));
}

/* ---------------------------------------------------------------- headers */

typedef struct {
	char *name;  /* lower case */
	char *value; /* trimmed, runs of whitespace collapsed */
	size_t order;
} hdr;

static char *canonical_value(const char *v)
{
	tp_buf b;
	bool space = false;
	tp_buf_init(&b, TP_BUF_DEFAULT_MAX);
	while (*v && isspace((unsigned char)*v))
		v++;
	for (; *v; v++) {
		if (isspace((unsigned char)*v)) {
			space = true;
			continue;
		}
		if (space && b.len > 0)
			tp_buf_putc(&b, ' ');
		space = false;
		tp_buf_putc(&b, *v);
	}
	tp_buf_put(&b, "", 0);
	return tp_buf_detach(&b);
}

static int hdr_cmp(const void *a, const void *b)
{
	const hdr *x = a, *y = b;
	int c = strcmp(x->name, y->name);
	if (c)
		return c;
	return x->order < y->order ? -1 : x->order > y->order;
}

/* ---------------------------------------------------------------- signing */

static void sha256_hex(char out[65], const void *data, size_t len)
{
	uint8_t d[TP_SHA256_LEN];
	tp_sha256(d, data, len);
	tp_hex_encode(out, d, sizeof(d));
}

int tp_aws_sign(tp_aws_signature *out, const tp_aws_sign_input *in,
		const tp_aws_credentials *creds)
{
	tp_buf creq, sts, sh, chdrs, cquery, scope, tmp;
	hdr *hs = NULL;
	size_t nh = 0, cap;
	qlist q = {0};
	struct tm tm;
	time_t t;
	char date[9];
	uint8_t k[TP_SHA256_LEN], k2[TP_SHA256_LEN];
	char *secret_key = NULL;
	bool have_host = false;
	bool token_signed;
	int rc = 0;

	memset(out, 0, sizeof(*out));
	tp_buf_init(&creq, TP_BUF_DEFAULT_MAX);
	tp_buf_init(&sts, TP_BUF_DEFAULT_MAX);
	tp_buf_init(&sh, TP_BUF_DEFAULT_MAX);
	tp_buf_init(&chdrs, TP_BUF_DEFAULT_MAX);
	tp_buf_init(&cquery, TP_BUF_DEFAULT_MAX);
	tp_buf_init(&scope, 1024);
	tp_buf_init(&tmp, TP_BUF_DEFAULT_MAX);
	if (!creds || !creds->access_key_id || !creds->access_key_id[0] ||
	    !creds->secret_access_key || !creds->secret_access_key[0]) {
		rc = tp_error_set(TP_EINVALID, "sigv4: no credentials to sign with");
		goto done;
	}
	if (!in->region || !in->region[0] || !in->service || !in->service[0]) {
		rc = tp_error_set(TP_EINVALID, "sigv4: region and service are required");
		goto done;
	}
	token_signed = creds->session_token && creds->session_token[0] &&
		       !in->omit_session_token;

	t = (time_t)(in->time_ms / 1000);
	gmtime_r(&t, &tm);
	strftime(out->amz_date, sizeof(out->amz_date), "%Y%m%dT%H%M%SZ", &tm);
	memcpy(date, out->amz_date, 8);
	date[8] = '\0';
	tp_buf_printf(&scope, "%s/%s/%s/aws4_request", date, in->region, in->service);
	sha256_hex(out->payload_hash, in->body ? in->body : "", in->body ? in->body_len : 0);

	/* headers: the request's, plus the ones signing adds */
	cap = in->nheaders + 4;
	hs = tp_calloc(cap, sizeof(*hs));
	for (size_t i = 0; i < in->nheaders; i++) {
		char *name = tp_strdup(in->headers[i].name);
		for (char *p = name; *p; p++)
			*p = (char)tolower((unsigned char)*p);
		if (strcmp(name, "host") == 0)
			have_host = true;
		hs[nh].name = name;
		hs[nh].value = canonical_value(in->headers[i].value ? in->headers[i].value : "");
		hs[nh].order = nh;
		nh++;
	}
	if (!have_host) {
		rc = tp_error_set(TP_EINVALID, "sigv4: the request has no host header");
		goto done;
	}
	if (!in->presign) {
		hs[nh].name = tp_strdup("x-amz-date");
		hs[nh].value = tp_strdup(out->amz_date);
		hs[nh].order = nh;
		nh++;
		if (token_signed) {
			hs[nh].name = tp_strdup("x-amz-security-token");
			hs[nh].value = canonical_value(creds->session_token);
			hs[nh].order = nh;
			nh++;
		}
		if (in->sign_body) {
			hs[nh].name = tp_strdup("x-amz-content-sha256");
			hs[nh].value = tp_strdup(out->payload_hash);
			hs[nh].order = nh;
			nh++;
		}
	}
	qsort(hs, nh, sizeof(*hs), hdr_cmp);
	for (size_t i = 0; i < nh; i++) {
		if (i > 0 && strcmp(hs[i].name, hs[i - 1].name) == 0) {
			/* repeated header: values joined with ',' in the order given */
			tp_buf_printf(&chdrs, ",%s", hs[i].value);
			continue;
		}
		if (i > 0)
			tp_buf_putc(&chdrs, '\n');
		tp_buf_printf(&chdrs, "%s:%s", hs[i].name, hs[i].value);
		if (sh.len)
			tp_buf_putc(&sh, ';');
		tp_buf_puts(&sh, hs[i].name);
	}
	tp_buf_putc(&chdrs, '\n');

	/* query */
	qlist_parse(&q, in->query);
	if (in->presign) {
		char expires[24];
		snprintf(expires, sizeof(expires), "%lld",
			 (long long)(in->expires_s > 0 ? in->expires_s : 900));
		tp_buf_printf(&tmp, "%s/%s", creds->access_key_id, tp_buf_cstr(&scope));
		qlist_add(&q, "X-Amz-Algorithm", ALGORITHM);
		qlist_add(&q, "X-Amz-Credential", tp_buf_cstr(&tmp));
		qlist_add(&q, "X-Amz-Date", out->amz_date);
		qlist_add(&q, "X-Amz-Expires", expires);
		qlist_add(&q, "X-Amz-SignedHeaders", tp_buf_cstr(&sh));
		if (token_signed)
			qlist_add(&q, "X-Amz-Security-Token", creds->session_token);
		tp_buf_clear(&tmp);
	}
	qlist_render(&cquery, &q);
	tp_buf_put(&cquery, "", 0);

	/* canonical request */
	tp_buf_printf(&creq, "%s\n", in->method);
	canonical_path(&creq, in->path, in->normalize_path);
	tp_buf_printf(&creq, "\n%s\n%s\n%s\n%s", tp_buf_cstr(&cquery), tp_buf_cstr(&chdrs),
		      tp_buf_cstr(&sh), out->payload_hash);

	/* string to sign */
	{
		char h[65];
		sha256_hex(h, creq.ptr, creq.len);
		tp_buf_printf(&sts, "%s\n%s\n%s\n%s", ALGORITHM, out->amz_date,
			      tp_buf_cstr(&scope), h);
	}

	/* signing key: HMAC chain from "AWS4" + secret */
	secret_key = tp_sprintf("AWS4%s", creds->secret_access_key);
	tp_hmac_sha256(k, secret_key, strlen(secret_key), date, strlen(date));
	tp_hmac_sha256(k2, k, sizeof(k), in->region, strlen(in->region));
	tp_hmac_sha256(k, k2, sizeof(k2), in->service, strlen(in->service));
	tp_hmac_sha256(k2, k, sizeof(k), "aws4_request", strlen("aws4_request"));
	tp_hmac_sha256(k, k2, sizeof(k2), sts.ptr, sts.len);
	tp_hex_encode(out->signature, k, sizeof(k));

	out->canonical_request = tp_buf_detach(&creq);
	out->string_to_sign = tp_buf_detach(&sts);
	out->signed_headers = tp_strdup(tp_buf_cstr(&sh));
	if (in->presign) {
		tp_buf_printf(&tmp, "%s&X-Amz-Signature=%s", tp_buf_cstr(&cquery),
			      out->signature);
		if (creds->session_token && creds->session_token[0] && !token_signed) {
			tp_buf_puts(&tmp, "&X-Amz-Security-Token=");
			tp_aws_uri_encode(&tmp, creds->session_token,
					  strlen(creds->session_token), false);
		}
		out->query = tp_buf_detach(&tmp);
	} else {
		out->authorization = tp_sprintf("%s Credential=%s/%s, SignedHeaders=%s, "
						"Signature=%s", ALGORITHM, creds->access_key_id,
						tp_buf_cstr(&scope), out->signed_headers,
						out->signature);
	}
done:
	explicit_bzero(k, sizeof(k));
	explicit_bzero(k2, sizeof(k2));
	tp_secret_free(secret_key);
	for (size_t i = 0; i < nh; i++) {
		free(hs[i].name);
		tp_secret_free(hs[i].value);
	}
	free(hs);
	qlist_free(&q);
	tp_buf_free(&creq);
	tp_buf_free(&sts);
	tp_buf_free(&sh);
	tp_buf_free(&chdrs);
	tp_buf_free(&cquery);
	tp_buf_free(&scope);
	tp_buf_free(&tmp);
	if (rc < 0)
		tp_aws_signature_clear(out);
	return rc;
}
