/*
 * libFuzzer target for webhook verification (controller/webhook.c): arbitrary header values
 * and bodies through all three kinds with a fixed secret, and the delivery ids through the
 * delivery log. A forged signature cannot be found by fuzzing, so a flag byte lets the
 * harness sign the body itself: the JSON parse that follows authentication is fuzzed too.
 *
 * Input: one flag byte (bit 0: sign the body correctly, bit 1: send the right GitLab token),
 * then "\n"-separated header values — signature, token, delivery id, event — then the body.
 * An empty value means the header is absent. Any crash, sanitizer report or leak is a bug.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "controller/controller.h"

#define SECRET "fuzz-secret"

enum { H_SIG, H_TOKEN, H_DELIVERY, H_EVENT, H_COUNT };

typedef struct {
	char *values[H_COUNT]; /* NULL: header absent */
} fuzz_headers;

static const struct {
	const char *name;
	int slot;
} header_map[] = {
	{"X-Hub-Signature-256", H_SIG},      {"X-Tapestry-Signature-256", H_SIG},
	{"X-Gitlab-Token", H_TOKEN},         {"X-GitHub-Delivery", H_DELIVERY},
	{"X-Gitlab-Event-UUID", H_DELIVERY}, {"Idempotency-Key", H_DELIVERY},
	{"X-Tapestry-Delivery", H_DELIVERY}, {"X-GitHub-Event", H_EVENT},
	{"X-Gitlab-Event", H_EVENT},         {"X-Tapestry-Event", H_EVENT},
};

static const char *lookup(void *ctx, const char *name)
{
	fuzz_headers *h = ctx;
	for (size_t i = 0; i < sizeof(header_map) / sizeof(header_map[0]); i++)
		if (strcasecmp(header_map[i].name, name) == 0)
			return h->values[header_map[i].slot];
	return NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static tp_delivery_log *log;
	fuzz_headers h = {{NULL}};
	const char *p, *end, *body;
	char *signed_sig = NULL;
	tp_webhook_info info;
	uint8_t flags;
	int slot;

	if (size == 0)
		return 0;
	if (!log)
		log = tp_delivery_log_new(64); /* small: eviction is exercised quickly */
	flags = data[0];
	p = (const char *)data + 1;
	end = (const char *)data + size;
	for (slot = 0; slot < H_COUNT && p < end; slot++) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
		if (n > 0)
			h.values[slot] =
			    tp_strndup(p, n); /* stops at an embedded NUL, like a header */
		p += n + (nl ? 1 : 0);
	}
	body = p;

	if (flags & 1) {
		uint8_t mac[TP_SHA256_LEN];
		signed_sig = tp_malloc(8 + 2 * TP_SHA256_LEN);
		tp_hmac_sha256(mac, SECRET, strlen(SECRET), body, (size_t)(end - body));
		memcpy(signed_sig, "sha256=", 7);
		tp_hex_encode(signed_sig + 7, mac, sizeof(mac));
		free(h.values[H_SIG]);
		h.values[H_SIG] = signed_sig;
	}
	if (flags & 2) {
		free(h.values[H_TOKEN]);
		h.values[H_TOKEN] = tp_strdup(SECRET);
	}

	for (int kind = TP_WEBHOOK_GITHUB; kind <= TP_WEBHOOK_GENERIC; kind++) {
		if (tp_webhook_verify(&info, (tp_webhook_kind)kind, SECRET, lookup, &h, body,
				      (size_t)(end - body)) == 0) {
			/* fields are always terminated */
			if (strlen(info.delivery) >= sizeof(info.delivery) ||
			    strlen(info.ref) >= sizeof(info.ref) ||
			    strlen(info.event) >= sizeof(info.event))
				abort();
			tp_delivery_log_seen(log, info.delivery);
		}
	}
	/* a wrong or missing secret never authenticates */
	if (tp_webhook_verify(&info, TP_WEBHOOK_GITHUB, NULL, lookup, &h, body,
			      (size_t)(end - body)) == 0)
		abort();

	for (slot = 0; slot < H_COUNT; slot++)
		free(h.values[slot]);
	return 0;
}
