/*
 * Authentication for the SQL API. Key-pair: the RSA private key from the provider's
 * configuration (PEM, optionally encrypted with private_key_passphrase) signs short-lived
 * RS256 JWTs whose issuer names the key by its fingerprint (SHA-256 of the DER
 * SubjectPublicKeyInfo, as DESC USER's RSA_PUBLIC_KEY_FP shows it), re-minted before they
 * expire. Alternatively an OAuth or programmatic access token is sent as it is. The key and
 * tokens live only in this struct, are wiped when it is freed, and never reach a message.
 */
#include "snowflake_int.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#define JWT_LIFETIME_S 3540 /* under Snowflake's one-hour maximum */
#define JWT_RENEW_S 300     /* mint a new one this long before exp */

struct tp_sf_auth {
	pthread_mutex_t mu;
	EVP_PKEY *key;
	char *account; /* JWT form */
	char *user;    /* upper-case */
	char *token;   /* OAuth / programmatic access token */
	const char *type;
	char *jwt;
	int64_t jwt_exp;
};

char *tp_sf_account_for_jwt(const char *account)
{
	char *a = tp_strdup(account), *cut;
	if (strncasecmp(a, "https://", 8) == 0)
		memmove(a, a + 8, strlen(a + 8) + 1);
	if ((cut = strcasestr(a, ".snowflakecomputing.com")) != NULL)
		*cut = '\0';
	if (strcasestr(a, ".global")) {
		if ((cut = strchr(a, '-')) != NULL)
			*cut = '\0';
	} else if ((cut = strchr(a, '.')) != NULL) {
		*cut = '\0';
	}
	for (char *p = a; *p; p++)
		*p = *p == '.' ? '-' : (char)toupper((unsigned char)*p);
	return a;
}

char *tp_sf_account_url(const char *account)
{
	char *a = tp_strdup(account), *out;
	size_t n;
	if (strncasecmp(a, "https://", 8) == 0 || strncasecmp(a, "http://", 7) == 0) {
		n = strlen(a);
		while (n > 0 && a[n - 1] == '/')
			a[--n] = '\0';
		return a;
	}
	for (char *p = a; *p; p++)
		*p = *p == '_' ? '-' : (char)tolower((unsigned char)*p);
	if (strstr(a, ".snowflakecomputing.com"))
		out = tp_sprintf("https://%s", a);
	else
		out = tp_sprintf("https://%s.snowflakecomputing.com", a);
	free(a);
	return out;
}

typedef struct {
	const char *pass;
	bool asked;
} pass_ctx;

static int pass_cb(char *buf, int size, int rwflag, void *u)
{
	pass_ctx *pc = u;
	size_t n;
	(void)rwflag;
	pc->asked = true;
	if (!pc->pass)
		return 0;
	n = strlen(pc->pass);
	if (n > (size_t)size)
		return 0;
	memcpy(buf, pc->pass, n);
	return (int)n;
}

int tp_sf_key_load(EVP_PKEY **out, const char *pem, const char *passphrase)
{
	BIO *bio = NULL;
	EVP_PKEY *k = NULL;
	pass_ctx pc = {passphrase && *passphrase ? passphrase : NULL, false};
	bool encrypted = pem && strstr(pem, "ENCRYPTED") != NULL;
	int rc = 0;

	*out = NULL;
	if (!pem || !strstr(pem, "-----BEGIN")) {
		rc = tp_error_set(TP_EINVALID, "snowflake: private_key is not a PEM private key "
				  "(expected -----BEGIN PRIVATE KEY----- or -----BEGIN ENCRYPTED "
				  "PRIVATE KEY-----)");
		goto done;
	}
	if (strstr(pem, "PUBLIC KEY-----")) {
		rc = tp_error_set(TP_EINVALID, "snowflake: private_key holds a public key; it "
				  "needs the private half of the key pair");
		goto done;
	}
	bio = BIO_new_mem_buf(pem, -1);
	k = bio ? PEM_read_bio_PrivateKey(bio, NULL, pass_cb, &pc) : NULL;
	ERR_clear_error();
	if (!k) {
		if (encrypted && !pc.pass)
			rc = tp_error_set(TP_EINVALID, "snowflake: private_key is encrypted; set "
					  "private_key_passphrase");
		else if (encrypted)
			rc = tp_error_set(TP_EINVALID, "snowflake: private_key cannot be decrypted "
					  "with private_key_passphrase (wrong passphrase?)");
		else
			rc = tp_error_set(TP_EINVALID, "snowflake: private_key is not a readable "
					  "PEM private key");
		goto done;
	}
	if (!EVP_PKEY_is_a(k, "RSA")) {
		rc = tp_error_set(TP_EINVALID, "snowflake: private_key is not an RSA key "
				  "(Snowflake key-pair authentication takes RSA keys)");
		goto done;
	}
	if (EVP_PKEY_get_bits(k) < 2048) {
		rc = tp_error_set(TP_EINVALID, "snowflake: private_key is a %d-bit RSA key; "
				  "Snowflake needs at least 2048 bits", EVP_PKEY_get_bits(k));
		goto done;
	}
	*out = k;
	k = NULL;
done:
	EVP_PKEY_free(k);
	BIO_free(bio);
	return rc;
}

int tp_sf_key_fingerprint(char *out, size_t outlen, EVP_PKEY *key)
{
	unsigned char *der = NULL;
	uint8_t d[TP_SHA256_LEN];
	tp_buf b;
	int n = i2d_PUBKEY(key, &der);
	int rc = 0;
	if (n <= 0) {
		ERR_clear_error();
		return tp_error_set(TP_EINVALID, "snowflake: cannot encode the public key");
	}
	tp_sha256(d, der, (size_t)n);
	OPENSSL_free(der);
	tp_buf_init(&b, 256);
	tp_base64_encode(&b, d, sizeof(d));
	if ((size_t)snprintf(out, outlen, "SHA256:%s", tp_buf_cstr(&b)) >= outlen)
		rc = tp_error_set(TP_ETOOBIG, "snowflake: fingerprint buffer too small");
	tp_buf_free(&b);
	return rc;
}

int tp_sf_jwt_make(char **out, EVP_PKEY *key, const char *account, const char *user,
		   int64_t now_s, int64_t lifetime_s)
{
	char fp[128];
	char *acct = tp_sf_account_for_jwt(account), *usr = tp_strdup(user);
	char *iss = NULL, *sub = NULL, *payload = NULL;
	json_t *claims = NULL;
	EVP_MD_CTX *md = NULL;
	unsigned char *sig = NULL;
	size_t siglen = 0;
	tp_buf b;
	int rc;

	*out = NULL;
	tp_buf_init(&b, 1 << 16);
	for (char *p = usr; *p; p++)
		*p = (char)toupper((unsigned char)*p);
	if (lifetime_s <= 0 || lifetime_s > 3600)
		lifetime_s = JWT_LIFETIME_S;
	if ((rc = tp_sf_key_fingerprint(fp, sizeof(fp), key)) < 0)
		goto done;
	iss = tp_sprintf("%s.%s.%s", acct, usr, fp);
	sub = tp_sprintf("%s.%s", acct, usr);
	claims = json_pack("{s:s,s:s,s:I,s:I}", "iss", iss, "sub", sub, "iat", (json_int_t)now_s,
			   "exp", (json_int_t)(now_s + lifetime_s));
	payload = json_dumps(claims, JSON_COMPACT | JSON_SORT_KEYS);
	tp_base64url_encode(&b, "{\"alg\":\"RS256\",\"typ\":\"JWT\"}", 27);
	tp_buf_putc(&b, '.');
	tp_base64url_encode(&b, payload, strlen(payload));
	md = EVP_MD_CTX_new();
	if (!md || EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, key) != 1 ||
	    EVP_DigestSign(md, NULL, &siglen, (const unsigned char *)b.ptr, b.len) != 1) {
		ERR_clear_error();
		rc = tp_error_set(TP_ERROR, "snowflake: cannot sign the JWT");
		goto done;
	}
	sig = tp_malloc(siglen);
	if (EVP_DigestSign(md, sig, &siglen, (const unsigned char *)b.ptr, b.len) != 1) {
		ERR_clear_error();
		rc = tp_error_set(TP_ERROR, "snowflake: cannot sign the JWT");
		goto done;
	}
	tp_buf_putc(&b, '.');
	tp_base64url_encode(&b, sig, siglen);
	*out = tp_buf_detach(&b);
done:
	EVP_MD_CTX_free(md);
	free(sig);
	free(payload);
	json_decref(claims);
	free(iss);
	free(sub);
	free(acct);
	free(usr);
	tp_buf_free(&b);
	return rc;
}

/* ---------------------------------------------------------------- auth object */

static const char *token_type(const char *token)
{
	const char *forced = getenv("TAPESTRY_SNOWFLAKE_TOKEN_TYPE");
	const char *dot;
	if (forced && (strcmp(forced, "OAUTH") == 0 ||
		       strcmp(forced, "PROGRAMMATIC_ACCESS_TOKEN") == 0))
		return strcmp(forced, "OAUTH") == 0 ? "OAUTH" : "PROGRAMMATIC_ACCESS_TOKEN";
	/* Snowflake OAuth tokens start with "ver:"; External OAuth tokens are JWTs */
	dot = strchr(token, '.');
	if (strncmp(token, "ver:", 4) == 0 || (dot && strchr(dot + 1, '.')))
		return "OAUTH";
	return "PROGRAMMATIC_ACCESS_TOKEN";
}

int tp_sf_auth_new(tp_sf_auth **out, const json_t *config)
{
	const char *account = tp_json_get_str(config, "account");
	const char *user = tp_json_get_str(config, "user");
	const char *key = tp_json_get_str(config, "private_key");
	const char *pass = tp_json_get_str(config, "private_key_passphrase");
	const char *token = tp_json_get_str(config, "token");
	tp_sf_auth *a;
	int rc = 0;

	*out = NULL;
	if (!account || !*account || !user || !*user)
		return tp_error_set(TP_EINVALID, "snowflake: account and user are required");
	if ((!key || !*key) && (!token || !*token))
		return tp_error_set(TP_EINVALID, "snowflake: set private_key (key-pair "
				    "authentication) or token (OAuth or programmatic access "
				    "token)");
	a = tp_calloc(1, sizeof(*a));
	pthread_mutex_init(&a->mu, NULL);
	a->account = tp_sf_account_for_jwt(account);
	a->user = tp_strdup(user);
	for (char *p = a->user; *p; p++)
		*p = (char)toupper((unsigned char)*p);
	if (key && *key) {
		rc = tp_sf_key_load(&a->key, key, pass);
		a->type = "KEYPAIR_JWT";
	} else {
		a->token = tp_strdup(token);
		a->type = token_type(token);
	}
	if (rc < 0) {
		tp_sf_auth_free(a);
		return rc;
	}
	*out = a;
	return 0;
}

void tp_sf_auth_free(tp_sf_auth *a)
{
	if (!a)
		return;
	EVP_PKEY_free(a->key);
	tp_secret_free(a->token);
	tp_secret_free(a->jwt);
	free(a->account);
	free(a->user);
	pthread_mutex_destroy(&a->mu);
	free(a);
}

int tp_sf_auth_token(tp_sf_auth *a, char **out, const char **type)
{
	int64_t now = tp_clock_now_ms() / 1000;
	int rc = 0;
	*out = NULL;
	*type = a->type;
	pthread_mutex_lock(&a->mu);
	if (a->token) {
		*out = tp_strdup(a->token);
		goto done;
	}
	if (!a->jwt || now >= a->jwt_exp - JWT_RENEW_S) {
		char *jwt = NULL;
		if ((rc = tp_sf_jwt_make(&jwt, a->key, a->account, a->user, now,
					 JWT_LIFETIME_S)) < 0)
			goto done;
		tp_secret_free(a->jwt);
		a->jwt = jwt;
		a->jwt_exp = now + JWT_LIFETIME_S;
	}
	*out = tp_strdup(a->jwt);
done:
	pthread_mutex_unlock(&a->mu);
	return rc;
}

void tp_sf_auth_reset(tp_sf_auth *a)
{
	pthread_mutex_lock(&a->mu);
	tp_secret_free(a->jwt);
	a->jwt = NULL;
	pthread_mutex_unlock(&a->mu);
}
