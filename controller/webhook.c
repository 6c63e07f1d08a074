/*
 * Webhook verification and the delivery log: the gate between the HTTP server and a fetch of
 * the pipeline repository. A delivery is authentic when it carries the right signature for
 * its kind; only then is its body looked at (for "ref", nothing else). Independent of the
 * server so it can be unit-tested and fuzzed with arbitrary headers and bodies.
 *
 *  - GitHub: X-Hub-Signature-256 = "sha256=" + 64 lowercase hex digits of HMAC-SHA256(secret,
 *    raw body); event X-GitHub-Event; delivery X-GitHub-Delivery.
 *  - GitLab: X-Gitlab-Token equal to the secret; event X-Gitlab-Event normalised to GitLab's
 *    object_kind spelling ("Push Hook" → "push", "Tag Push Hook" → "tag_push"); delivery
 *    X-Gitlab-Event-UUID, else Idempotency-Key.
 *  - Generic: X-Tapestry-Signature-256 like GitHub's; event X-Tapestry-Event (default
 *    "push"); delivery X-Tapestry-Delivery.
 *
 * Every comparison involving the secret runs in constant time (the GitLab token is compared
 * through SHA-256 digests so its length does not leak either), and no error message carries
 * the secret, the expected signature or the presented one.
 */
#include "controller.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#define SIG_PREFIX  "sha256="
#define SIG_HEX_LEN (2 * TP_SHA256_LEN)

static const char *kind_name(tp_webhook_kind kind)
{
	switch (kind) {
	case TP_WEBHOOK_GITHUB: return "github";
	case TP_WEBHOOK_GITLAB: return "gitlab";
	case TP_WEBHOOK_GENERIC: return "generic";
	}
	return "unknown";
}

static const char *get_header(tp_header_fn header, void *hctx, const char *name)
{
	return header ? header(hctx, name) : NULL;
}

/* Copies a header value into a fixed field: truncated, always terminated, control bytes
 * replaced so an id or event name is safe to log and to use as a key. */
static void copy_field(char *out, size_t outlen, const char *value)
{
	size_t i = 0;
	for (; value && value[i] && i + 1 < outlen; i++) {
		unsigned char c = (unsigned char)value[i];
		out[i] = (c < 0x20 || c == 0x7f) ? '?' : (char)c;
	}
	out[i] = '\0';
}

static int hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* "sha256=" + exactly 64 lowercase hex digits into raw bytes; false when malformed. */
static bool parse_signature(uint8_t out[TP_SHA256_LEN], const char *value)
{
	size_t plen = strlen(SIG_PREFIX);
	if (strncmp(value, SIG_PREFIX, plen) != 0 || strlen(value + plen) != SIG_HEX_LEN)
		return false;
	value += plen;
	for (size_t i = 0; i < TP_SHA256_LEN; i++) {
		int hi = hex_digit(value[2 * i]), lo = hex_digit(value[2 * i + 1]);
		if (hi < 0 || lo < 0)
			return false;
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	return true;
}

static int verify_hmac(const char *kind, const char *header_name, const char *value,
		       const char *secret, const char *body, size_t len)
{
	uint8_t given[TP_SHA256_LEN], expected[TP_SHA256_LEN];
	int rc = 0;

	if (!value || !value[0]) {
		rc = tp_error_set(TP_EAUTH, "webhook %s: missing %s header", kind, header_name);
		goto done;
	}
	if (!parse_signature(given, value)) {
		rc = tp_error_set(TP_EAUTH,
				  "webhook %s: malformed %s header (want sha256=<64 hex digits>)",
				  kind, header_name);
		goto done;
	}
	tp_hmac_sha256(expected, secret, strlen(secret), body, len);
	if (!tp_ct_equal(given, expected, TP_SHA256_LEN))
		rc = tp_error_set(TP_EAUTH, "webhook %s: signature mismatch", kind);
done:
	OPENSSL_cleanse(expected, sizeof(expected));
	return rc;
}

/* Token equality without leaking the secret's length or content through timing: both sides
 * are hashed first, then the digests compared in constant time. */
static int verify_token(const char *value, const char *secret)
{
	uint8_t a[TP_SHA256_LEN], b[TP_SHA256_LEN];
	int rc = 0;

	if (!value || !value[0]) {
		rc = tp_error_set(TP_EAUTH, "webhook gitlab: missing X-Gitlab-Token header");
		goto done;
	}
	tp_sha256(a, value, strlen(value));
	tp_sha256(b, secret, strlen(secret));
	if (!tp_ct_equal(a, b, TP_SHA256_LEN))
		rc = tp_error_set(TP_EAUTH, "webhook gitlab: token mismatch");
done:
	OPENSSL_cleanse(b, sizeof(b));
	return rc;
}

/* "Push Hook" → "push", "Merge Request Hook" → "merge_request": GitLab's object_kind. */
static void gitlab_event(char *out, size_t outlen, const char *value)
{
	size_t n, o = 0;
	if (!value) {
		out[0] = '\0';
		return;
	}
	n = strlen(value);
	if (n >= 5 && strcmp(value + n - 5, " Hook") == 0)
		n -= 5;
	for (size_t i = 0; i < n && o + 1 < outlen; i++) {
		unsigned char c = (unsigned char)value[i];
		if (c == ' ')
			c = '_';
		else if (c >= 'A' && c <= 'Z')
			c = (unsigned char)(c - 'A' + 'a');
		else if (c < 0x20 || c == 0x7f)
			c = '?';
		out[o++] = (char)c;
	}
	out[o] = '\0';
}

/* "ref" from a JSON object body; left empty when the body is not JSON, has no string ref,
 * or the ref does not fit (a truncated ref would name a different branch). */
static void extract_ref(char *out, size_t outlen, const char *body, size_t len)
{
	json_t *root = NULL;
	const char *ref;

	out[0] = '\0';
	if (!body || len == 0)
		goto done;
	root = json_loadb(body, len, JSON_REJECT_DUPLICATES, NULL);
	ref = root ? tp_json_get_str(root, "ref") : NULL;
	if (ref && strlen(ref) < outlen)
		copy_field(out, outlen, ref);
done:
	json_decref(root);
}

int tp_webhook_verify(tp_webhook_info *out, tp_webhook_kind kind, const char *secret,
		      tp_header_fn header, void *hctx, const char *body, size_t len)
{
	const char *name = kind_name(kind), *sig;
	int rc = 0;

	if (!out)
		return tp_error_set(TP_EINVALID, "webhook: no output");
	memset(out, 0, sizeof(*out));
	out->kind = kind;
	if (kind != TP_WEBHOOK_GITHUB && kind != TP_WEBHOOK_GITLAB && kind != TP_WEBHOOK_GENERIC) {
		rc = tp_error_set(TP_EINVALID, "webhook: unknown kind %d", (int)kind);
		goto done;
	}
	if (!body && len > 0) {
		rc = tp_error_set(TP_EINVALID, "webhook %s: body missing", name);
		goto done;
	}
	if (!body)
		body = "";
	if (!secret || !secret[0]) {
		rc = tp_error_set(TP_EAUTH, "webhook %s: no secret configured", name);
		goto done;
	}

	switch (kind) {
	case TP_WEBHOOK_GITHUB:
		sig = get_header(header, hctx, "X-Hub-Signature-256");
		rc = verify_hmac(name, "X-Hub-Signature-256", sig, secret, body, len);
		copy_field(out->event, sizeof(out->event),
			   get_header(header, hctx, "X-GitHub-Event"));
		copy_field(out->delivery, sizeof(out->delivery),
			   get_header(header, hctx, "X-GitHub-Delivery"));
		break;
	case TP_WEBHOOK_GITLAB: {
		const char *id = get_header(header, hctx, "X-Gitlab-Event-UUID");
		if (!id || !id[0])
			id = get_header(header, hctx, "Idempotency-Key");
		rc = verify_token(get_header(header, hctx, "X-Gitlab-Token"), secret);
		gitlab_event(out->event, sizeof(out->event),
			     get_header(header, hctx, "X-Gitlab-Event"));
		copy_field(out->delivery, sizeof(out->delivery), id);
		break;
	}
	case TP_WEBHOOK_GENERIC: {
		const char *event = get_header(header, hctx, "X-Tapestry-Event");
		sig = get_header(header, hctx, "X-Tapestry-Signature-256");
		rc = verify_hmac(name, "X-Tapestry-Signature-256", sig, secret, body, len);
		copy_field(out->event, sizeof(out->event), event && event[0] ? event : "push");
		copy_field(out->delivery, sizeof(out->delivery),
			   get_header(header, hctx, "X-Tapestry-Delivery"));
		break;
	}
	}
	if (rc < 0)
		goto done;
	/* authentic: only now is the body parsed */
	extract_ref(out->ref, sizeof(out->ref), body, len);
done:
	if (rc < 0) {
		/* nothing from a refused request leaks out through the struct */
		memset(out, 0, sizeof(*out));
		out->kind = kind;
	}
	return rc;
}

/* ---------------------------------------------------------------- delivery log */

/*
 * A ring of the last `capacity` delivery ids with a chained hash index over it. Ids are
 * stored as SHA-256 digests: fixed size whatever the caller passes, so memory is exactly
 * bounded by the capacity (0 means 1024; at most 2^20).
 */
typedef struct {
	uint8_t digest[TP_SHA256_LEN];
	int64_t next; /* next slot in the same hash chain, -1 at the end */
	bool used;
} slot;

struct tp_delivery_log {
	pthread_mutex_t mu;
	slot *slots;
	size_t capacity;
	size_t head;      /* next slot to (over)write */
	int64_t *buckets; /* chain heads, -1 when empty */
	size_t nbuckets;  /* power of two */
};

#define DELIVERY_LOG_DEFAULT 1024
#define DELIVERY_LOG_MAX     ((size_t)1 << 20)

static size_t bucket_of(const tp_delivery_log *l, const uint8_t *digest)
{
	uint64_t h;
	memcpy(&h, digest, sizeof(h));
	return (size_t)(h & (l->nbuckets - 1));
}

static void unlink_slot(tp_delivery_log *l, size_t idx)
{
	int64_t *link = &l->buckets[bucket_of(l, l->slots[idx].digest)];
	while (*link >= 0) {
		if ((size_t)*link == idx) {
			*link = l->slots[idx].next;
			break;
		}
		link = &l->slots[*link].next;
	}
	l->slots[idx].used = false;
}

tp_delivery_log *tp_delivery_log_new(size_t capacity)
{
	tp_delivery_log *l = tp_calloc(1, sizeof(*l));
	l->capacity = capacity ? capacity : DELIVERY_LOG_DEFAULT;
	if (l->capacity > DELIVERY_LOG_MAX)
		l->capacity = DELIVERY_LOG_MAX;
	l->slots = tp_calloc(l->capacity, sizeof(*l->slots));
	l->nbuckets = 1;
	while (l->nbuckets < 2 * l->capacity)
		l->nbuckets *= 2;
	l->buckets = tp_malloc(l->nbuckets * sizeof(*l->buckets));
	for (size_t i = 0; i < l->nbuckets; i++)
		l->buckets[i] = -1;
	pthread_mutex_init(&l->mu, NULL);
	return l;
}

bool tp_delivery_log_seen(tp_delivery_log *l, const char *id)
{
	uint8_t digest[TP_SHA256_LEN];
	bool seen = false;
	size_t b;

	if (!l || !id || !id[0])
		return false; /* no id: cannot de-duplicate, the caller decides */
	tp_sha256(digest, id, strlen(id));
	pthread_mutex_lock(&l->mu);
	b = bucket_of(l, digest);
	for (int64_t i = l->buckets[b]; i >= 0; i = l->slots[i].next) {
		if (memcmp(l->slots[i].digest, digest, sizeof(digest)) == 0) {
			seen = true;
			goto done;
		}
	}
	if (l->slots[l->head].used)
		unlink_slot(l, l->head); /* evict the oldest */
	memcpy(l->slots[l->head].digest, digest, sizeof(digest));
	l->slots[l->head].used = true;
	l->slots[l->head].next = l->buckets[b];
	l->buckets[b] = (int64_t)l->head;
	l->head = (l->head + 1) % l->capacity;
done:
	pthread_mutex_unlock(&l->mu);
	return seen;
}

void tp_delivery_log_free(tp_delivery_log *l)
{
	if (!l)
		return;
	pthread_mutex_destroy(&l->mu);
	free(l->slots);
	free(l->buckets);
	free(l);
}
