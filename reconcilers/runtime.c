/*
 * Runtime helpers shared by every provider's API code: operation results, fingerprints of
 * observed secrets, and the built-in secret resolvers (environment, files on the controller
 * host). Secrets resolved here live only in memory for the duration of a call and are wiped
 * when freed.
 */
#include "reconciler.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "../spec/spec.h"

void tp_op_result_clear(tp_op_result *r)
{
	if (!r)
		return;
	free(r->provider_id);
	json_decref(r->outputs);
	r->provider_id = NULL;
	r->outputs = NULL;
}

json_t *tp_op_fingerprint(const tp_op *op, const char *value, size_t len)
{
	uint8_t mac[TP_SHA256_LEN];
	char hex[2 * TP_SHA256_LEN + 1];
	tp_hmac_sha256(mac, op->fingerprint_key, 32, value, len);
	tp_hex_encode(hex, mac, sizeof(mac));
	return json_pack("{s:s}", "$hmac", hex);
}

void tp_secret_free(char *s)
{
	if (!s)
		return;
	explicit_bzero(s, strlen(s));
	free(s);
}

static pthread_mutex_t resolver_mu = PTHREAD_MUTEX_INITIALIZER;
static tp_secret_resolver_fn resolver_fn;
static void *resolver_ctx;

void tp_secret_set_resolver(tp_secret_resolver_fn fn, void *ctx)
{
	pthread_mutex_lock(&resolver_mu);
	resolver_fn = fn;
	resolver_ctx = ctx;
	pthread_mutex_unlock(&resolver_mu);
}

int tp_secret_resolve(char **out, const char *scheme, const char *location)
{
	tp_secret_resolver_fn fn;
	void *ctx;
	*out = NULL;
	if (strcmp(scheme, "env") == 0) {
		const char *v = getenv(location);
		if (!v)
			return tp_error_set(TP_ENOTFOUND,
					    "secret ${secret:env:%s}: the environment variable is not "
					    "set", location);
		*out = tp_strdup(v);
		return 0;
	}
	if (strcmp(scheme, "file") == 0) {
		tp_buf b;
		int rc;
		tp_buf_init(&b, 1 << 20);
		rc = tp_file_read(&b, location, 1 << 20);
		if (rc < 0) {
			/* keep the reason, not the content */
			char *why = tp_strdup(tp_error_last());
			tp_buf_free(&b);
			rc = tp_error_set(rc, "secret ${secret:file:%s}: %s", location, why);
			free(why);
			return rc;
		}
		/* one trailing newline is how files end, not part of the secret */
		if (b.len && b.ptr[b.len - 1] == '\n')
			b.ptr[--b.len] = '\0';
		*out = tp_buf_detach(&b);
		return 0;
	}
	pthread_mutex_lock(&resolver_mu);
	fn = resolver_fn;
	ctx = resolver_ctx;
	pthread_mutex_unlock(&resolver_mu);
	if (fn) /* schemes served by a provider */
		return fn(ctx, scheme, location, out);
	if (strcmp(scheme, "ssm") == 0)
		return tp_error_set(TP_EINVALID,
				    "secret ${secret:ssm:%s}: SSM Parameter Store secrets are read "
				    "through the AWS provider, which is not available here", location);
	return tp_error_set(TP_EINVALID, "unknown secret scheme \"%s\"", scheme);
}

typedef struct {
	tp_buf out;
	const char *text;
	size_t last;
	int rc;
} secret_interp;

static int on_secret(void *ctx, const tp_ref *ref, size_t start, size_t end)
{
	secret_interp *si = ctx;
	char *value = NULL;
	tp_buf_put(&si->out, si->text + si->last, start - si->last);
	si->last = end;
	if (ref->type != TP_REF_SECRET) {
		/* resource references were resolved before; keep any leftover text as is */
		tp_buf_put(&si->out, si->text + start, end - start);
		return 0;
	}
	if ((si->rc = tp_secret_resolve(&value, ref->scheme, ref->location)) < 0)
		return si->rc;
	tp_buf_puts(&si->out, value);
	tp_secret_free(value);
	return 0;
}

int tp_secret_substitute(char **out, const char *text)
{
	secret_interp si = {{0}, text, 0, 0};
	int rc;
	*out = NULL;
	if (!strstr(text, "${secret:")) {
		*out = tp_strdup(text);
		return 0;
	}
	tp_buf_init(&si.out, TP_BUF_DEFAULT_MAX);
	rc = tp_refs_scan(text, on_secret, &si);
	if (rc == 0)
		rc = tp_buf_puts(&si.out, text + si.last);
	if (rc < 0) {
		if (si.out.ptr)
			explicit_bzero(si.out.ptr, si.out.len);
		tp_buf_free(&si.out);
		return rc;
	}
	*out = tp_buf_detach(&si.out);
	return 0;
}

