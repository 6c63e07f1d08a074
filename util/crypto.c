/*
 * Hashing, MACs, encodings and randomness over OpenSSL. Used for secret fingerprints in state
 * (HMAC-SHA256 with the installation key), webhook signatures, SigV4 and JWTs.
 */
#include "util.h"

#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

void tp_sha256(uint8_t out[TP_SHA256_LEN], const void *data, size_t len)
{
	unsigned int n = 0;
	EVP_Digest(data, len, out, &n, EVP_sha256(), NULL);
}

void tp_hmac_sha256(uint8_t out[TP_SHA256_LEN], const void *key, size_t keylen, const void *data,
		    size_t len)
{
	unsigned int n = 0;
	HMAC(EVP_sha256(), key, (int)keylen, data, len, out, &n);
}

bool tp_ct_equal(const void *a, const void *b, size_t len)
{
	return CRYPTO_memcmp(a, b, len) == 0;
}

void tp_hex_encode(char *out, const uint8_t *data, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	for (size_t i = 0; i < len; i++) {
		out[2 * i] = hex[data[i] >> 4];
		out[2 * i + 1] = hex[data[i] & 15];
	}
	out[2 * len] = '\0';
}

static int encode(tp_buf *out, const void *data, size_t len, const char *alphabet, bool pad)
{
	const uint8_t *p = data;
	size_t i;
	int rc = 0;
	for (i = 0; rc == 0 && i + 2 < len; i += 3) {
		char q[4] = {alphabet[p[i] >> 2], alphabet[((p[i] & 3) << 4) | (p[i + 1] >> 4)],
			     alphabet[((p[i + 1] & 15) << 2) | (p[i + 2] >> 6)],
			     alphabet[p[i + 2] & 63]};
		rc = tp_buf_put(out, q, 4);
	}
	if (rc == 0 && len - i == 1) {
		char q[4] = {alphabet[p[i] >> 2], alphabet[(p[i] & 3) << 4], '=', '='};
		rc = tp_buf_put(out, q, pad ? 4 : 2);
	} else if (rc == 0 && len - i == 2) {
		char q[4] = {alphabet[p[i] >> 2], alphabet[((p[i] & 3) << 4) | (p[i + 1] >> 4)],
			     alphabet[(p[i + 1] & 15) << 2], '='};
		rc = tp_buf_put(out, q, pad ? 4 : 3);
	}
	if (rc == 0 && len == 0)
		rc = tp_buf_put(out, "", 0);
	return rc;
}

int tp_base64_encode(tp_buf *out, const void *data, size_t len)
{
	return encode(out, data, len,
		      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/", true);
}

int tp_base64url_encode(tp_buf *out, const void *data, size_t len)
{
	return encode(out, data, len,
		      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", false);
}

static int b64val(char c)
{
	if (c >= 'A' && c <= 'Z') return c - 'A';
	if (c >= 'a' && c <= 'z') return c - 'a' + 26;
	if (c >= '0' && c <= '9') return c - '0' + 52;
	if (c == '+' || c == '-') return 62;
	if (c == '/' || c == '_') return 63;
	return -1;
}

int tp_base64_decode(tp_buf *out, const char *text, size_t len)
{
	uint32_t acc = 0;
	int bits = 0, rc = 0;
	size_t i;
	while (len > 0 && text[len - 1] == '=')
		len--;
	for (i = 0; rc == 0 && i < len; i++) {
		int v = b64val(text[i]);
		if (v < 0)
			return tp_error_set(TP_EINVALID, "base64: invalid character at offset %zu", i);
		acc = (acc << 6) | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			rc = tp_buf_putc(out, (char)((acc >> bits) & 0xff));
		}
	}
	if (rc == 0 && (len % 4) == 1)
		rc = tp_error_set(TP_EINVALID, "base64: truncated input");
	if (rc == 0 && !out->ptr)
		rc = tp_buf_put(out, "", 0);
	return rc;
}

int tp_random_bytes(void *out, size_t len)
{
	if (RAND_bytes(out, (int)len) != 1)
		return tp_error_set(TP_ERROR, "random: OpenSSL RAND_bytes failed");
	return 0;
}
