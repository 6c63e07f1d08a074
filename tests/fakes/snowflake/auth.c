/*
 * The fake's key-pair authentication: checks a KEYPAIR_JWT the way Snowflake does. The token
 * must be an RS256 JWT whose `iss` is ACCOUNT.USER.SHA256:<fingerprint> and `sub` is
 * ACCOUNT.USER (upper-case, the account in its normalised form), whose fingerprint is that of
 * the public key registered on the user (RSA_PUBLIC_KEY or RSA_PUBLIC_KEY_2), whose signature
 * verifies with that key, and whose iat/exp span at most one hour around now. Written against
 * OpenSSL directly, independently of the client's JWT code.
 */
#include "fake.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

/* The public key of a base64 DER SubjectPublicKeyInfo (RSA only), or NULL. */
static EVP_PKEY *load_pub(const char *b64)
{
	tp_buf der;
	const unsigned char *p;
	EVP_PKEY *k = NULL;
	tp_buf_init(&der, 1 << 16);
	if (tp_base64_decode(&der, b64, strlen(b64)) == 0 && der.len > 0) {
		p = (const unsigned char *)der.ptr;
		k = d2i_PUBKEY(NULL, &p, (long)der.len);
		if (k && (p != (const unsigned char *)der.ptr + der.len ||
			  EVP_PKEY_get_base_id(k) != EVP_PKEY_RSA)) {
			EVP_PKEY_free(k);
			k = NULL;
		}
	}
	tp_buf_free(&der);
	return k;
}

char *fk_key_fingerprint(const char *public_key_b64)
{
	EVP_PKEY *k = load_pub(public_key_b64);
	unsigned char *der = NULL;
	int n;
	uint8_t d[TP_SHA256_LEN];
	tp_buf b;
	char *out;
	if (!k)
		return NULL;
	n = i2d_PUBKEY(k, &der);
	EVP_PKEY_free(k);
	if (n <= 0)
		return NULL;
	tp_sha256(d, der, (size_t)n);
	OPENSSL_free(der);
	tp_buf_init(&b, 256);
	tp_base64_encode(&b, d, sizeof(d));
	out = tp_sprintf("SHA256:%s", tp_buf_cstr(&b));
	tp_buf_free(&b);
	return out;
}

static int invalid(fk_error *e, const char *why)
{
	return fk_fail(e, "390144", "", "JWT token is invalid. [%s]", why);
}

static json_t *decode_part(const char *s, size_t n)
{
	tp_buf b;
	json_t *v = NULL;
	tp_buf_init(&b, 1 << 16);
	if (tp_base64_decode(&b, s, n) == 0 && b.len > 0)
		v = json_loadb(b.ptr, b.len, 0, NULL);
	tp_buf_free(&b);
	return v;
}

static bool verify_sig(const char *b64key, const char *signed_part, size_t signed_len,
		       const char *sig64, size_t sig64_len)
{
	EVP_PKEY *k = load_pub(b64key);
	EVP_MD_CTX *md = NULL;
	tp_buf sig;
	bool ok = false;
	tp_buf_init(&sig, 4096);
	if (!k || tp_base64_decode(&sig, sig64, sig64_len) < 0 || sig.len == 0)
		goto done;
	md = EVP_MD_CTX_new();
	ok = md && EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, k) == 1 &&
	     EVP_DigestVerify(md, (const unsigned char *)sig.ptr, sig.len,
			      (const unsigned char *)signed_part, signed_len) == 1;
done:
	EVP_MD_CTX_free(md);
	EVP_PKEY_free(k);
	tp_buf_free(&sig);
	return ok;
}

int fk_jwt_verify(char **user, json_t *catalog, const char *account, const char *token,
		  int64_t now_s, fk_error *e)
{
	const char *dot1 = strchr(token, '.'), *dot2 = dot1 ? strchr(dot1 + 1, '.') : NULL;
	json_t *hdr = NULL, *claims = NULL;
	const char *iss, *sub, *alg;
	char *prefix = NULL, *want_sub = NULL;
	const char *uname = NULL;
	json_t *u = NULL, *uv;
	const char *k;
	json_t *iat, *exp;
	const char *fp_part;
	bool matched = false;
	int rc = -1;

	*user = NULL;
	if (!dot1 || !dot2 || strchr(dot2 + 1, '.')) {
		invalid(e, "not three dot-separated parts");
		goto done;
	}
	hdr = decode_part(token, (size_t)(dot1 - token));
	claims = decode_part(dot1 + 1, (size_t)(dot2 - dot1 - 1));
	if (!json_is_object(hdr) || !json_is_object(claims)) {
		invalid(e, "header or payload is not base64url JSON");
		goto done;
	}
	alg = tp_json_get_str(hdr, "alg");
	if (!alg || strcmp(alg, "RS256") != 0) {
		invalid(e, "alg must be RS256");
		goto done;
	}
	iss = tp_json_get_str(claims, "iss");
	sub = tp_json_get_str(claims, "sub");
	iat = json_object_get(claims, "iat");
	exp = json_object_get(claims, "exp");
	if (!iss || !sub || !json_is_integer(iat) || !json_is_integer(exp)) {
		invalid(e, "iss, sub, iat and exp are required (iat/exp as integers)");
		goto done;
	}
	/* sub = ACCOUNT.USER, iss = ACCOUNT.USER.SHA256:fp, both upper-case */
	json_object_foreach(json_object_get(catalog, "users"), k, uv) {
		char *up = tp_strdup(k);
		for (char *q = up; *q; q++)
			*q = (char)toupper((unsigned char)*q);
		free(want_sub);
		want_sub = tp_sprintf("%s.%s", account, up);
		free(up);
		if (strcmp(sub, want_sub) == 0) {
			u = uv;
			uname = k;
			break;
		}
	}
	if (!u) {
		char why[512];
		snprintf(why, sizeof(why), "sub \"%.200s\" is not ACCOUNT.USER of a user of "
			 "account %s (upper-case, account identifier without region)", sub,
			 account);
		invalid(e, why);
		goto done;
	}
	prefix = tp_sprintf("%s.SHA256:", want_sub);
	if (strncmp(iss, prefix, strlen(prefix)) != 0) {
		invalid(e, "iss must be ACCOUNT.USER.SHA256:<fingerprint>");
		goto done;
	}
	fp_part = iss + strlen(prefix) - strlen("SHA256:");
	for (int slot = 0; slot < 2 && !matched; slot++) {
		const char *key = tp_json_get_str(u, slot ? "rsa_public_key_2" : "rsa_public_key");
		char *fp = key ? fk_key_fingerprint(key) : NULL;
		if (fp && strcmp(fp, fp_part) == 0) {
			matched = true;
			if (!verify_sig(key, token, (size_t)(dot2 - token), dot2 + 1,
					strlen(dot2 + 1))) {
				free(fp);
				invalid(e, "signature does not verify with the registered key");
				goto done;
			}
		}
		free(fp);
	}
	if (!matched) {
		invalid(e, "public key fingerprint does not match the user's RSA_PUBLIC_KEY");
		goto done;
	}
	if (json_integer_value(exp) <= now_s) {
		invalid(e, "expired");
		goto done;
	}
	if (json_integer_value(iat) > now_s + 60) {
		invalid(e, "issued in the future");
		goto done;
	}
	if (json_integer_value(exp) - json_integer_value(iat) > 3600) {
		invalid(e, "lifetime longer than one hour");
		goto done;
	}
	if (json_is_true(json_object_get(u, "disabled"))) {
		fk_fail(e, "390101", "", "User access disabled. Contact your local system "
			"administrator.");
		goto done;
	}
	*user = tp_strdup(uname);
	rc = 0;
done:
	json_decref(hdr);
	json_decref(claims);
	free(prefix);
	free(want_sub);
	return rc;
}
