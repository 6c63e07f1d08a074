/*
 * reconcilers/aws/sigv4.c against the official SigV4 test suite (aws-c-auth's
 * aws-signing-test-suite, copied with its licence under tests/fixtures/aws/sigv4/v4): every
 * case is signed in header mode and in presigned-query mode, and the canonical request, the
 * string to sign and the signature must match the expected files byte for byte.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "reconcilers/aws/aws_int.h"
#include "support/support.h"

#define VECTORS TP_SOURCE_DIR "/tests/fixtures/aws/sigv4/v4"

typedef struct {
	char *method;
	char *path;
	char *query;
	tp_aws_header *headers;
	size_t nheaders;
	char *body;
	size_t body_len;
} parsed_request;

static char *read_case(const char *dir, const char *file)
{
	char *p = tp_sprintf("%s/%s", dir, file);
	char *s = ts_read(p);
	cr_assert_not_null(s, "missing %s", p);
	free(p);
	return s;
}

/* request.txt: "METHOD target HTTP/1.1", header lines (a line starting with whitespace
 * continues the previous header), an empty line, the body. */
static void parse_request(parsed_request *r, const char *text)
{
	const char *eol = strchr(text, '\n');
	const char *sp = strchr(text, ' ');
	const char *http;
	char *target, *q;
	const char *line;

	memset(r, 0, sizeof(*r));
	cr_assert(eol && sp && sp < eol);
	r->method = tp_strndup(text, (size_t)(sp - text));
	http = sp;
	for (const char *x = sp; x < eol; x++)
		if (strncmp(x, " HTTP/", 6) == 0)
			http = x;
	target = tp_strndup(sp + 1, (size_t)(http - sp - 1));
	q = strchr(target, '?');
	if (q) {
		*q = '\0';
		r->query = tp_strdup(q + 1);
	}
	r->path = target;
	r->headers = tp_calloc(64, sizeof(*r->headers));
	line = eol + 1;
	while (*line && *line != '\n') {
		const char *end = strchr(line, '\n');
		size_t n = end ? (size_t)(end - line) : strlen(line);
		if ((line[0] == ' ' || line[0] == '\t') && r->nheaders > 0) {
			tp_aws_header *h = &r->headers[r->nheaders - 1];
			char *cont = tp_strndup(line, n);
			char *joined = tp_sprintf("%s %s", h->value, cont);
			free((char *)(uintptr_t)h->value);
			h->value = joined;
			free(cont);
		} else {
			const char *colon = memchr(line, ':', n);
			cr_assert_not_null(colon);
			cr_assert(r->nheaders < 64);
			r->headers[r->nheaders].name = tp_strndup(line, (size_t)(colon - line));
			r->headers[r->nheaders].value =
				tp_strndup(colon + 1, n - (size_t)(colon - line) - 1);
			r->nheaders++;
		}
		line = end ? end + 1 : line + n;
	}
	if (*line == '\n') {
		r->body = tp_strdup(line + 1);
		r->body_len = strlen(r->body);
	}
}

static void free_request(parsed_request *r)
{
	free(r->method);
	free(r->path);
	free(r->query);
	for (size_t i = 0; i < r->nheaders; i++) {
		free((char *)(uintptr_t)r->headers[i].name);
		free((char *)(uintptr_t)r->headers[i].value);
	}
	free(r->headers);
	free(r->body);
}

static int64_t parse_time(const char *s)
{
	struct tm tm;
	memset(&tm, 0, sizeof(tm));
	cr_assert_not_null(strptime(s, "%Y-%m-%dT%H:%M:%SZ", &tm), "bad timestamp %s", s);
	return (int64_t)timegm(&tm) * 1000;
}

static char *trim(char *s)
{
	size_t n = strlen(s);
	while (n && (s[n - 1] == '\n' || s[n - 1] == '\r'))
		s[--n] = '\0';
	return s;
}

static int run_case(const char *name, bool presign)
{
	char *dir = tp_sprintf("%s/%s", VECTORS, name);
	char *ctx_text = read_case(dir, "context.json");
	char *req_text = read_case(dir, "request.txt");
	const char *prefix = presign ? "query" : "header";
	char *f_creq = tp_sprintf("%s-canonical-request.txt", prefix);
	char *f_sts = tp_sprintf("%s-string-to-sign.txt", prefix);
	char *f_sig = tp_sprintf("%s-signature.txt", prefix);
	char *f_signed = tp_sprintf("%s-signed-request.txt", prefix);
	char *want_creq = read_case(dir, f_creq);
	char *want_sts = read_case(dir, f_sts);
	char *want_sig = trim(read_case(dir, f_sig));
	char *want_signed = read_case(dir, f_signed);
	json_t *ctx = NULL;
	json_t *c;
	parsed_request r;
	tp_aws_sign_input in;
	tp_aws_credentials creds;
	tp_aws_signature sig;
	int rc;

	cr_assert_eq(tp_json_parse(&ctx, ctx_text, strlen(ctx_text)), 0, "%s", name);
	c = json_object_get(ctx, "credentials");
	memset(&creds, 0, sizeof(creds));
	creds.access_key_id = (char *)(uintptr_t)tp_json_get_str(c, "access_key_id");
	creds.secret_access_key = (char *)(uintptr_t)tp_json_get_str(c, "secret_access_key");
	creds.session_token = (char *)(uintptr_t)tp_json_get_str(c, "token");
	parse_request(&r, req_text);

	memset(&in, 0, sizeof(in));
	in.method = r.method;
	in.path = r.path;
	in.query = r.query;
	in.headers = r.headers;
	in.nheaders = r.nheaders;
	in.body = r.body;
	in.body_len = r.body_len;
	in.region = tp_json_get_str(ctx, "region");
	in.service = tp_json_get_str(ctx, "service");
	in.time_ms = parse_time(tp_json_get_str(ctx, "timestamp"));
	in.normalize_path = json_is_true(json_object_get(ctx, "normalize"));
	in.sign_body = json_is_true(json_object_get(ctx, "sign_body"));
	in.omit_session_token = json_is_true(json_object_get(ctx, "omit_session_token"));
	in.presign = presign;
	in.expires_s = json_integer_value(json_object_get(ctx, "expiration_in_seconds"));

	rc = tp_aws_sign(&sig, &in, &creds);
	cr_assert_eq(rc, 0, "%s: %s", name, tp_error_last());
	cr_expect_str_eq(sig.canonical_request, want_creq, "%s (%s): canonical request", name,
			 prefix);
	cr_expect_str_eq(sig.string_to_sign, want_sts, "%s (%s): string to sign", name, prefix);
	cr_expect_str_eq(sig.signature, want_sig, "%s (%s): signature", name, prefix);
	if (presign) {
		/* every X-Amz-* parameter we send appears in the expected request line (the
		 * request's own parameters are written there unencoded) */
		char *q = tp_strdup(sig.query);
		char *save = NULL;
		for (char *p = strtok_r(q, "&", &save); p; p = strtok_r(NULL, "&", &save))
			if (strncmp(p, "X-Amz-", 6) == 0)
				cr_expect_not_null(strstr(want_signed, p), "%s: query param %s",
						   name, p);
		free(q);
	} else {
		char *line = tp_sprintf("Authorization:%s", sig.authorization);
		cr_expect_not_null(strstr(want_signed, line), "%s: %s", name, line);
		free(line);
	}
	tp_aws_signature_clear(&sig);
	free_request(&r);
	json_decref(ctx);
	free(dir);
	free(ctx_text);
	free(req_text);
	free(f_creq);
	free(f_sts);
	free(f_sig);
	free(f_signed);
	free(want_creq);
	free(want_sts);
	free(want_sig);
	free(want_signed);
	return 0;
}

static int list_cases(char ***out)
{
	DIR *d = opendir(VECTORS);
	struct dirent *e;
	size_t n = 0;
	char **names = tp_calloc(256, sizeof(char *));
	cr_assert_not_null(d, "cannot open %s", VECTORS);
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		cr_assert(n < 255);
		names[n++] = tp_strdup(e->d_name);
	}
	closedir(d);
	qsort(names, n, sizeof(char *), tp_str_qsort_cmp);
	*out = names;
	return (int)n;
}

Test(sigv4, every_vector_header_mode)
{
	char **names = NULL;
	int n = list_cases(&names);
	cr_assert_geq(n, 30, "expected the whole suite, found %d cases", n);
	for (int i = 0; i < n; i++) {
		run_case(names[i], false);
		free(names[i]);
	}
	free(names);
}

Test(sigv4, every_vector_presigned_query)
{
	char **names = NULL;
	int n = list_cases(&names);
	for (int i = 0; i < n; i++) {
		run_case(names[i], true);
		free(names[i]);
	}
	free(names);
}

Test(sigv4, refuses_missing_credentials_and_host)
{
	tp_aws_header h[] = {{"Host", "example.amazonaws.com"}};
	tp_aws_sign_input in = {.method = "GET", .path = "/", .headers = h, .nheaders = 1,
				.region = "us-east-1", .service = "ssm", .time_ms = 0};
	tp_aws_credentials none = {0};
	tp_aws_credentials ok = {.access_key_id = (char *)"AKID", .secret_access_key = (char *)"s"};
	tp_aws_signature sig;
	cr_assert_eq(tp_aws_sign(&sig, &in, &none), TP_EINVALID);
	in.nheaders = 0;
	cr_assert_eq(tp_aws_sign(&sig, &in, &ok), TP_EINVALID);
	cr_assert(strstr(tp_error_last(), "host"));
}

Test(sigv4, uri_encoding)
{
	tp_buf b;
	tp_buf_init(&b, 1024);
	tp_aws_uri_encode(&b, "a b/c~d+e=f&\xe1\x88\xb4", strlen("a b/c~d+e=f&\xe1\x88\xb4"),
			  false);
	cr_assert_str_eq(tp_buf_cstr(&b), "a%20b%2Fc~d%2Be%3Df%26%E1%88%B4");
	tp_buf_clear(&b);
	tp_aws_uri_encode(&b, "/x y/", 5, true);
	cr_assert_str_eq(tp_buf_cstr(&b), "/x%20y/");
	tp_buf_free(&b);
}
