/* controller/webhook.c: signatures of the three kinds, hostile headers and bodies, ref
 * extraction, and the delivery log (de-duplication, ring eviction, concurrency). */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "controller/controller.h"
#include "support/support.h"

#define SECRET    "It's a Secret to Everybody"
#define LIT(s)    s, sizeof(s) - 1
#define PUSH_BODY "{\"ref\":\"refs/heads/main\",\"after\":\"0123\",\"repository\":{\"id\":1}}"

typedef struct {
	const char *names[8];
	const char *values[8];
	int n;
} headers;

static void hset(headers *h, const char *name, const char *value)
{
	h->names[h->n] = name;
	h->values[h->n] = value;
	h->n++;
}

static const char *hget(void *ctx, const char *name)
{
	const headers *h = ctx;
	for (int i = 0; i < h->n; i++)
		if (strcasecmp(h->names[i], name) == 0)
			return h->values[i];
	return NULL;
}

/* "sha256=" + hex HMAC, computed the way GitHub does. */
static void sign(char out[72], const char *secret, const char *body, size_t len)
{
	uint8_t mac[TP_SHA256_LEN];
	tp_hmac_sha256(mac, secret, strlen(secret), body, len);
	memcpy(out, "sha256=", 7);
	tp_hex_encode(out + 7, mac, sizeof(mac));
}

static int verify_github(tp_webhook_info *info, const char *secret, const char *sig,
			 const char *body)
{
	headers h = {0};
	if (sig)
		hset(&h, "X-Hub-Signature-256", sig);
	hset(&h, "x-github-event", "push");
	hset(&h, "X-GitHub-Delivery", "72d3162e-cc78-11e3-81ab-4c9367dc0958");
	return tp_webhook_verify(info, TP_WEBHOOK_GITHUB, secret, hget, &h, body, strlen(body));
}

Test(webhook, github_valid_signature)
{
	tp_webhook_info info;
	char sig[72];
	sign(sig, SECRET, PUSH_BODY, strlen(PUSH_BODY));
	cr_assert_eq(verify_github(&info, SECRET, sig, PUSH_BODY), 0, "%s", tp_error_last());
	cr_assert_eq(info.kind, TP_WEBHOOK_GITHUB);
	cr_assert_str_eq(info.ref, "refs/heads/main");
	cr_assert_str_eq(info.event, "push");
	cr_assert_str_eq(info.delivery, "72d3162e-cc78-11e3-81ab-4c9367dc0958");
}

Test(webhook, github_known_answer)
{
	/* GitHub's documented example: secret and payload from "Validating webhook deliveries" */
	static const char body[] = "Hello, World!";
	headers h = {0};
	tp_webhook_info info;
	hset(&h, "X-Hub-Signature-256",
	     "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17");
	cr_assert_eq(
	    tp_webhook_verify(&info, TP_WEBHOOK_GITHUB, SECRET, hget, &h, body, strlen(body)), 0);
	cr_assert_str_eq(info.ref, ""); /* not JSON: fine, no ref */
}

Test(webhook, github_wrong_secret_and_message_leaks_nothing)
{
	tp_webhook_info info;
	char sig[72], expected[72];
	sign(sig, "another secret", PUSH_BODY, strlen(PUSH_BODY));
	sign(expected, SECRET, PUSH_BODY, strlen(PUSH_BODY));
	cr_assert_eq(verify_github(&info, SECRET, sig, PUSH_BODY), TP_EAUTH);
	cr_assert_null(strstr(tp_error_last(), SECRET));
	cr_assert_null(strstr(tp_error_last(), expected + 7));
	cr_assert_null(strstr(tp_error_last(), sig + 7));
	cr_assert_str_eq(info.ref, "");
	cr_assert_str_eq(info.delivery, "");
}

Test(webhook, github_tampered_body)
{
	tp_webhook_info info;
	char sig[72];
	sign(sig, SECRET, PUSH_BODY, strlen(PUSH_BODY));
	cr_assert_eq(
	    verify_github(&info, SECRET, sig, "{\"ref\":\"refs/heads/evil\",\"after\":\"0123\"}"),
	    TP_EAUTH);
	/* one extra byte is a different body too */
	cr_assert_eq(verify_github(&info, SECRET, sig, PUSH_BODY " "), TP_EAUTH);
}

Test(webhook, github_missing_header_and_secret)
{
	tp_webhook_info info;
	char sig[72];
	cr_assert_eq(verify_github(&info, SECRET, NULL, PUSH_BODY), TP_EAUTH);
	cr_assert(strstr(tp_error_last(), "missing"));
	sign(sig, "", PUSH_BODY, strlen(PUSH_BODY));
	cr_assert_eq(verify_github(&info, NULL, sig, PUSH_BODY), TP_EAUTH);
	cr_assert_eq(verify_github(&info, "", sig, PUSH_BODY), TP_EAUTH);
	cr_assert(strstr(tp_error_last(), "no secret"));
	/* no header function at all */
	cr_assert_eq(tp_webhook_verify(&info, TP_WEBHOOK_GITHUB, SECRET, NULL, NULL, "{}", 2),
		     TP_EAUTH);
}

Test(webhook, github_malformed_headers)
{
	tp_webhook_info info;
	char good[72], upper[72], buf[160];
	const char *bad[] = {
	    "",
	    "sha256=",
	    "sha256",
	    "sha1=2fd4e1c67a2d28fced849ee1bb76e7391b93eb12",
	    "sha256=zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz",
	    "SHA256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17",
	    " sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17",
	};
	sign(good, SECRET, PUSH_BODY, strlen(PUSH_BODY));
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_assert_eq(verify_github(&info, SECRET, bad[i], PUSH_BODY), TP_EAUTH, "%s",
			     bad[i]);
	/* wrong lengths: one digit short, one digit long, trailing garbage */
	snprintf(buf, sizeof(buf), "%.70s", good);
	cr_assert_eq(verify_github(&info, SECRET, buf, PUSH_BODY), TP_EAUTH);
	snprintf(buf, sizeof(buf), "%s0", good);
	cr_assert_eq(verify_github(&info, SECRET, buf, PUSH_BODY), TP_EAUTH);
	snprintf(buf, sizeof(buf), "%s,sha256=%s", good, good + 7);
	cr_assert_eq(verify_github(&info, SECRET, buf, PUSH_BODY), TP_EAUTH);
	/* the contract is lowercase hex */
	memcpy(upper, good, sizeof(upper));
	for (char *p = upper + 7; *p; p++)
		if (*p >= 'a' && *p <= 'f')
			*p = (char)(*p - 'a' + 'A');
	cr_assert_eq(verify_github(&info, SECRET, upper, PUSH_BODY), TP_EAUTH);
	/* a non-hex character in the middle of an otherwise valid signature */
	memcpy(buf, good, sizeof(good));
	buf[40] = 'g';
	cr_assert_eq(verify_github(&info, SECRET, buf, PUSH_BODY), TP_EAUTH);
	cr_assert(strstr(tp_error_last(), "malformed"));
}

static int verify_gitlab(tp_webhook_info *info, const char *token, const char *body)
{
	headers h = {0};
	if (token)
		hset(&h, "X-Gitlab-Token", token);
	hset(&h, "X-Gitlab-Event", "Push Hook");
	hset(&h, "X-Gitlab-Event-UUID", "13792a34-cac6-4fda-95a8-c58e00a3954e");
	return tp_webhook_verify(info, TP_WEBHOOK_GITLAB, SECRET, hget, &h, body, strlen(body));
}

Test(webhook, gitlab_token)
{
	tp_webhook_info info;
	cr_assert_eq(verify_gitlab(&info, SECRET, PUSH_BODY), 0, "%s", tp_error_last());
	cr_assert_eq(info.kind, TP_WEBHOOK_GITLAB);
	cr_assert_str_eq(info.event, "push");
	cr_assert_str_eq(info.delivery, "13792a34-cac6-4fda-95a8-c58e00a3954e");
	cr_assert_str_eq(info.ref, "refs/heads/main");

	cr_assert_eq(verify_gitlab(&info, "wrong", PUSH_BODY), TP_EAUTH);
	cr_assert_eq(verify_gitlab(&info, SECRET "x", PUSH_BODY), TP_EAUTH);
	cr_assert_eq(verify_gitlab(&info, "It's a Secret", PUSH_BODY), TP_EAUTH);
	cr_assert_eq(verify_gitlab(&info, "", PUSH_BODY), TP_EAUTH);
	cr_assert_eq(verify_gitlab(&info, NULL, PUSH_BODY), TP_EAUTH);
	cr_assert(strstr(tp_error_last(), "missing"));
	cr_assert_null(strstr(tp_error_last(), SECRET));
}

Test(webhook, gitlab_event_names_and_idempotency_key)
{
	headers h = {0};
	tp_webhook_info info;
	hset(&h, "X-Gitlab-Token", SECRET);
	hset(&h, "X-Gitlab-Event", "Tag Push Hook");
	hset(&h, "Idempotency-Key", "key-1");
	cr_assert_eq(tp_webhook_verify(&info, TP_WEBHOOK_GITLAB, SECRET, hget, &h, "{}", 2), 0);
	cr_assert_str_eq(info.event, "tag_push");
	cr_assert_str_eq(info.delivery, "key-1");
}

Test(webhook, generic_signature)
{
	static const char body[] = "{\"ref\":\"refs/heads/release\"}";
	headers h = {0};
	tp_webhook_info info;
	char sig[72];
	sign(sig, SECRET, body, strlen(body));
	hset(&h, "X-Tapestry-Signature-256", sig);
	hset(&h, "X-Tapestry-Delivery", "d-1");
	cr_assert_eq(
	    tp_webhook_verify(&info, TP_WEBHOOK_GENERIC, SECRET, hget, &h, body, strlen(body)), 0);
	cr_assert_eq(info.kind, TP_WEBHOOK_GENERIC);
	cr_assert_str_eq(info.event, "push"); /* the default */
	cr_assert_str_eq(info.delivery, "d-1");
	cr_assert_str_eq(info.ref, "refs/heads/release");

	hset(&h, "X-Tapestry-Event", "sync");
	cr_assert_eq(
	    tp_webhook_verify(&info, TP_WEBHOOK_GENERIC, SECRET, hget, &h, body, strlen(body)), 0);
	cr_assert_str_eq(info.event, "sync");
	/* GitHub's header does not count for the generic kind */
	h.n = 0;
	hset(&h, "X-Hub-Signature-256", sig);
	cr_assert_eq(
	    tp_webhook_verify(&info, TP_WEBHOOK_GENERIC, SECRET, hget, &h, body, strlen(body)),
	    TP_EAUTH);
}

static int verify_body(tp_webhook_info *info, const char *body, size_t len, const char *delivery)
{
	headers h = {0};
	char sig[72];
	sign(sig, SECRET, body, len);
	hset(&h, "X-Hub-Signature-256", sig);
	hset(&h, "X-GitHub-Event", "ping");
	if (delivery)
		hset(&h, "X-GitHub-Delivery", delivery);
	return tp_webhook_verify(info, TP_WEBHOOK_GITHUB, SECRET, hget, &h, body, len);
}

Test(webhook, ref_extraction_and_odd_bodies)
{
	tp_webhook_info info;
	char longref[400], body[512];
	cr_assert_eq(verify_body(&info, LIT(""), NULL), 0);
	cr_assert_str_eq(info.ref, "");
	cr_assert_str_eq(info.event, "ping");
	cr_assert_eq(verify_body(&info, LIT("zen=Keep it logically awesome"), NULL), 0);
	cr_assert_str_eq(info.ref, "");
	cr_assert_eq(verify_body(&info, LIT("{\"ref\":42}"), NULL), 0);
	cr_assert_str_eq(info.ref, "");
	cr_assert_eq(verify_body(&info, LIT("[\"ref\"]"), NULL), 0);
	cr_assert_str_eq(info.ref, "");
	cr_assert_eq(verify_body(&info, LIT("{\"ref\":\"refs/tags/v1\""), NULL), 0); /* truncated */
	cr_assert_str_eq(info.ref, "");
	/* duplicate keys: refused rather than guessing which one a sender meant */
	cr_assert_eq(verify_body(&info, LIT("{\"ref\":\"a\",\"ref\":\"b\"}"), NULL), 0);
	cr_assert_str_eq(info.ref, "");
	/* embedded NUL bytes and invalid UTF-8 do not crash */
	cr_assert_eq(verify_body(&info, LIT("{\"ref\":\"a\0b\"}"), NULL), 0);
	cr_assert_eq(verify_body(&info, LIT("{\"ref\":\"\xff\"}"), NULL), 0);
	cr_assert_str_eq(info.ref, "");
	/* a ref that does not fit is dropped, not truncated into another branch name */
	memset(longref, 'x', sizeof(longref) - 1);
	longref[sizeof(longref) - 1] = '\0';
	snprintf(body, sizeof(body), "{\"ref\":\"refs/heads/%s\"}", longref);
	cr_assert_eq(verify_body(&info, body, strlen(body), NULL), 0);
	cr_assert_str_eq(info.ref, "");
	/* nested ref does not count */
	cr_assert_eq(verify_body(&info, LIT("{\"x\":{\"ref\":\"refs/heads/main\"}}"), NULL), 0);
	cr_assert_str_eq(info.ref, "");
}

Test(webhook, header_fields_are_bounded_and_sanitised)
{
	tp_webhook_info info;
	char longid[300];
	memset(longid, 'd', sizeof(longid) - 1);
	longid[sizeof(longid) - 1] = '\0';
	cr_assert_eq(verify_body(&info, LIT("{}"), longid), 0);
	cr_assert_eq(strlen(info.delivery), sizeof(info.delivery) - 1);
	cr_assert_eq(verify_body(&info, LIT("{}"), "a\nb\x01"), 0);
	cr_assert_str_eq(info.delivery, "a?b?");
}

Test(webhook, invalid_arguments)
{
	tp_webhook_info info;
	headers h = {0};
	cr_assert_eq(tp_webhook_verify(NULL, TP_WEBHOOK_GITHUB, SECRET, hget, &h, "", 0),
		     TP_EINVALID);
	cr_assert_eq(tp_webhook_verify(&info, (tp_webhook_kind)7, SECRET, hget, &h, "", 0),
		     TP_EINVALID);
	cr_assert_eq(tp_webhook_verify(&info, TP_WEBHOOK_GITHUB, SECRET, hget, &h, NULL, 5),
		     TP_EINVALID);
}

/* ---------------------------------------------------------------- delivery log */

Test(delivery_log, deduplicates)
{
	tp_delivery_log *l = tp_delivery_log_new(16);
	cr_assert_not(tp_delivery_log_seen(l, "a"));
	cr_assert(tp_delivery_log_seen(l, "a"));
	cr_assert(tp_delivery_log_seen(l, "a"));
	cr_assert_not(tp_delivery_log_seen(l, "b"));
	cr_assert(tp_delivery_log_seen(l, "b"));
	/* no id: never "seen", never recorded */
	cr_assert_not(tp_delivery_log_seen(l, ""));
	cr_assert_not(tp_delivery_log_seen(l, ""));
	cr_assert_not(tp_delivery_log_seen(l, NULL));
	cr_assert_not(tp_delivery_log_seen(NULL, "a"));
	tp_delivery_log_free(l);
	tp_delivery_log_free(NULL);
}

Test(delivery_log, ring_evicts_oldest)
{
	tp_delivery_log *l = tp_delivery_log_new(3);
	cr_assert_not(tp_delivery_log_seen(l, "a"));
	cr_assert_not(tp_delivery_log_seen(l, "b"));
	cr_assert_not(tp_delivery_log_seen(l, "c"));
	cr_assert_not(tp_delivery_log_seen(l, "d")); /* evicts a */
	cr_assert(tp_delivery_log_seen(l, "b"));
	cr_assert(tp_delivery_log_seen(l, "c"));
	cr_assert(tp_delivery_log_seen(l, "d"));
	cr_assert_not(tp_delivery_log_seen(l, "a")); /* forgotten; recorded again, evicts b */
	cr_assert_not(tp_delivery_log_seen(l, "b"));
	tp_delivery_log_free(l);
}

Test(delivery_log, many_ids_through_a_small_ring)
{
	tp_delivery_log *l = tp_delivery_log_new(100);
	char id[32];
	for (int i = 0; i < 5000; i++) {
		snprintf(id, sizeof(id), "delivery-%d", i);
		cr_assert_not(tp_delivery_log_seen(l, id), "%s", id);
	}
	for (int i = 4900; i < 5000; i++) {
		snprintf(id, sizeof(id), "delivery-%d", i);
		cr_assert(tp_delivery_log_seen(l, id), "%s", id);
	}
	cr_assert_not(tp_delivery_log_seen(l, "delivery-4899"));
	tp_delivery_log_free(l);
}

#define THREADS 6
#define IDS     2000

static tp_delivery_log *shared_log;
static int first_sightings[IDS];
static pthread_mutex_t sight_mu = PTHREAD_MUTEX_INITIALIZER;

static void *racer(void *arg)
{
	char id[32];
	for (int i = 0; i < IDS; i++) {
		snprintf(id, sizeof(id), "race-%d", i);
		if (!tp_delivery_log_seen(shared_log, id)) {
			pthread_mutex_lock(&sight_mu);
			first_sightings[i]++;
			pthread_mutex_unlock(&sight_mu);
		}
	}
	return arg;
}

Test(delivery_log, concurrent_callers_see_each_id_once)
{
	pthread_t t[THREADS];
	shared_log = tp_delivery_log_new(IDS);
	for (int i = 0; i < THREADS; i++)
		cr_assert_eq(pthread_create(&t[i], NULL, racer, NULL), 0);
	for (int i = 0; i < THREADS; i++)
		pthread_join(t[i], NULL);
	for (int i = 0; i < IDS; i++)
		cr_assert_eq(first_sightings[i], 1, "id %d", i);
	tp_delivery_log_free(shared_log);
}
