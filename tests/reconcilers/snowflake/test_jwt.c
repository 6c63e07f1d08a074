/*
 * Key-pair authentication: the fingerprint is exactly what
 * `openssl pkey -pubout -outform DER | openssl dgst -sha256 -binary | base64` prints, the JWT
 * carries Snowflake's claims (upper-case, normalised account, at most one hour) and verifies
 * with the public key, keys load in every PEM form (and fail clearly on a wrong passphrase,
 * a non-RSA or short key, a public key or garbage, never echoing key material), the token is
 * re-minted before it expires, and an OAuth/programmatic token is sent as it is.
 */
#include "sf_test.h"

#include <openssl/err.h>

static char *dir;

static void setup(void)
{
	dir = ts_tmpdir();
}

static void teardown(void)
{
	ts_rmtree(dir);
	free(dir);
}

TestSuite(sf_jwt, .init = setup, .fini = teardown, .timeout = 60);

static char *run(const char *cmd)
{
	FILE *p = popen(cmd, "r");
	char buf[4096];
	size_t n;
	cr_assert(p, "popen %s", cmd);
	n = fread(buf, 1, sizeof(buf) - 1, p);
	buf[n] = '\0';
	cr_assert(pclose(p) == 0, "%s failed", cmd);
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
		buf[--n] = '\0';
	return tp_strdup(buf);
}

static EVP_PKEY *load(const char *name, const char *pass)
{
	char *path = tp_sprintf("%s/%s.pem", dir, name);
	char *pem = ts_read(path);
	EVP_PKEY *k = NULL;
	cr_assert(tp_sf_key_load(&k, pem, pass) == 0, "%s", tp_error_last());
	free(pem);
	free(path);
	return k;
}

Test(sf_jwt, fingerprint_equals_openssl_cli)
{
	EVP_PKEY *gen = sf_keygen(dir, "k", NULL, 2048), *k = load("k", NULL);
	char fp[128];
	char *cmd = tp_sprintf("openssl pkey -in %s/k.pem -pubout -outform DER | openssl dgst "
			       "-sha256 -binary | base64", dir);
	char *want = run(cmd);
	cr_assert(tp_sf_key_fingerprint(fp, sizeof(fp), k) == 0);
	cr_assert_str_eq(fp + 7, want);
	cr_assert(strncmp(fp, "SHA256:", 7) == 0);
	EVP_PKEY_free(gen);
	EVP_PKEY_free(k);
	free(cmd);
	free(want);
}

static json_t *decode_part(const char *s, size_t n)
{
	tp_buf b;
	json_t *v;
	tp_buf_init(&b, 1 << 16);
	cr_assert(tp_base64_decode(&b, s, n) == 0);
	v = json_loadb(b.ptr, b.len, 0, NULL);
	tp_buf_free(&b);
	cr_assert(v);
	return v;
}

Test(sf_jwt, claims_and_signature)
{
	EVP_PKEY *gen = sf_keygen(dir, "k", NULL, 2048), *k = load("k", NULL);
	char *jwt = NULL, fp[128], *iss;
	const char *d1, *d2;
	json_t *hdr, *claims;
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	tp_buf sig;

	cr_assert(tp_sf_jwt_make(&jwt, k, "myorg-my_account.us-east-1.aws", "tapestry_svc",
				 1700000000, 3600) == 0, "%s", tp_error_last());
	d1 = strchr(jwt, '.');
	d2 = d1 ? strchr(d1 + 1, '.') : NULL;
	cr_assert(d1 && d2 && !strchr(d2 + 1, '.'));
	cr_assert(!strchr(jwt, '=') && !strchr(jwt, '+') && !strchr(jwt, '/'), "base64url");
	hdr = decode_part(jwt, (size_t)(d1 - jwt));
	claims = decode_part(d1 + 1, (size_t)(d2 - d1 - 1));
	cr_assert_str_eq(tp_json_get_str(hdr, "alg"), "RS256");
	cr_assert_str_eq(tp_json_get_str(hdr, "typ"), "JWT");
	tp_sf_key_fingerprint(fp, sizeof(fp), k);
	iss = tp_sprintf("MYORG-MY_ACCOUNT.TAPESTRY_SVC.%s", fp);
	cr_assert_str_eq(tp_json_get_str(claims, "iss"), iss);
	cr_assert_str_eq(tp_json_get_str(claims, "sub"), "MYORG-MY_ACCOUNT.TAPESTRY_SVC");
	cr_assert_eq(json_integer_value(json_object_get(claims, "iat")), 1700000000);
	cr_assert_eq(json_integer_value(json_object_get(claims, "exp")), 1700003600);
	/* the signature verifies with the public key */
	tp_buf_init(&sig, 4096);
	cr_assert(tp_base64_decode(&sig, d2 + 1, strlen(d2 + 1)) == 0);
	cr_assert(EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, gen) == 1);
	cr_assert(EVP_DigestVerify(md, (unsigned char *)sig.ptr, sig.len, (unsigned char *)jwt,
				   (size_t)(d2 - jwt)) == 1);
	/* a lifetime over an hour is never issued */
	free(jwt);
	cr_assert(tp_sf_jwt_make(&jwt, k, "a", "u", 1700000000, 7200) == 0);
	json_decref(claims);
	d1 = strchr(jwt, '.');
	d2 = strchr(d1 + 1, '.');
	claims = decode_part(d1 + 1, (size_t)(d2 - d1 - 1));
	cr_assert_leq(json_integer_value(json_object_get(claims, "exp")) - 1700000000, 3600);
	tp_buf_free(&sig);
	EVP_MD_CTX_free(md);
	json_decref(hdr);
	json_decref(claims);
	free(iss);
	free(jwt);
	EVP_PKEY_free(gen);
	EVP_PKEY_free(k);
}

Test(sf_jwt, account_normalisation)
{
	static const char *const cases[][2] = {
		{"myorg-myaccount", "MYORG-MYACCOUNT"},
		{"xy12345", "XY12345"},
		{"xy12345.us-east-2.aws", "XY12345"},
		{"xy12345.eu-central-1", "XY12345"},
		{"MyOrg-Acct.privatelink", "MYORG-ACCT"},
		{"xy12345-ab.global", "XY12345"},
		{"https://myorg-acct.snowflakecomputing.com", "MYORG-ACCT"},
		{"myorg-acct.snowflakecomputing.com", "MYORG-ACCT"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *a = tp_sf_account_for_jwt(cases[i][0]);
		cr_assert_str_eq(a, cases[i][1], "%s", cases[i][0]);
		free(a);
	}
	{
		char *u = tp_sf_account_url("MyOrg-My_Account");
		cr_assert_str_eq(u, "https://myorg-my-account.snowflakecomputing.com");
		free(u);
		u = tp_sf_account_url("xy12345.us-east-2.aws");
		cr_assert_str_eq(u, "https://xy12345.us-east-2.aws.snowflakecomputing.com");
		free(u);
	}
}

Test(sf_jwt, encrypted_key_and_bad_keys)
{
	EVP_PKEY *gen = sf_keygen(dir, "enc", "correct horse", 2048), *k = NULL;
	char *path = tp_sprintf("%s/enc.pem", dir);
	char *pem = ts_read(path);
	char fp1[128], fp2[128];

	cr_assert(strstr(pem, "BEGIN ENCRYPTED PRIVATE KEY"));
	cr_assert(tp_sf_key_load(&k, pem, "correct horse") == 0, "%s", tp_error_last());
	tp_sf_key_fingerprint(fp1, sizeof(fp1), k);
	tp_sf_key_fingerprint(fp2, sizeof(fp2), gen);
	cr_assert_str_eq(fp1, fp2);
	EVP_PKEY_free(k);
	k = NULL;

	cr_assert_eq(tp_sf_key_load(&k, pem, "wrong"), TP_EINVALID);
	cr_assert(!k);
	cr_assert(strstr(tp_error_last(), "wrong passphrase"), "%s", tp_error_last());
	cr_assert(!strstr(tp_error_last(), "wrong\""), "the passphrase is never echoed");
	cr_assert(!strstr(tp_error_last(), "MII"), "no key material in messages");

	cr_assert_eq(tp_sf_key_load(&k, pem, NULL), TP_EINVALID);
	cr_assert(strstr(tp_error_last(), "set private_key_passphrase"), "%s", tp_error_last());

	cr_assert_eq(tp_sf_key_load(&k, "not a key", NULL), TP_EINVALID);
	cr_assert(strstr(tp_error_last(), "not a PEM private key"));
	cr_assert_eq(tp_sf_key_load(&k, "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE "
					"KEY-----\n", NULL),
		     TP_EINVALID);
	{
		char *pubpath = tp_sprintf("%s/enc.pub", dir);
		char *pub = ts_read(pubpath);
		cr_assert_eq(tp_sf_key_load(&k, pub, NULL), TP_EINVALID);
		cr_assert(strstr(tp_error_last(), "public key"));
		free(pub);
		free(pubpath);
	}
	free(pem);
	free(path);
	EVP_PKEY_free(gen);
}

Test(sf_jwt, non_rsa_and_short_keys_refused)
{
	EVP_PKEY *ec = EVP_EC_gen("P-256"), *k = NULL;
	EVP_PKEY *small = EVP_RSA_gen(1024);
	BIO *b = BIO_new(BIO_s_mem());
	char *mem;
	long n;
	cr_assert(ec && small);
	PEM_write_bio_PrivateKey(b, ec, NULL, NULL, 0, NULL, NULL);
	n = BIO_get_mem_data(b, &mem);
	mem = tp_strndup(mem, (size_t)n);
	cr_assert_eq(tp_sf_key_load(&k, mem, NULL), TP_EINVALID);
	cr_assert(strstr(tp_error_last(), "not an RSA key"), "%s", tp_error_last());
	free(mem);
	BIO_free(b);
	b = BIO_new(BIO_s_mem());
	PEM_write_bio_PrivateKey(b, small, NULL, NULL, 0, NULL, NULL);
	n = BIO_get_mem_data(b, &mem);
	mem = tp_strndup(mem, (size_t)n);
	cr_assert_eq(tp_sf_key_load(&k, mem, NULL), TP_EINVALID);
	cr_assert(strstr(tp_error_last(), "1024-bit"), "%s", tp_error_last());
	free(mem);
	BIO_free(b);
	EVP_PKEY_free(ec);
	EVP_PKEY_free(small);
}

/* A clock the test moves. */
static int64_t fake_now = 1700000000000;
static int64_t now_ms(void *ctx)
{
	(void)ctx;
	return fake_now;
}
static int64_t mono_ms(void *ctx)
{
	(void)ctx;
	return fake_now;
}
static void sleep_ms(void *ctx, int64_t ms)
{
	(void)ctx;
	fake_now += ms;
}
static uint64_t rand_u64(void *ctx)
{
	(void)ctx;
	return 42;
}

Test(sf_jwt, token_reused_then_reminted_before_expiry)
{
	EVP_PKEY *gen = sf_keygen(dir, "k", NULL, 2048);
	char *path = tp_sprintf("%s/k.pem", dir), *pem = ts_read(path);
	json_t *cfg = json_pack("{s:s,s:s,s:s}", "account", "acme", "user", "t", "private_key",
				pem);
	tp_clock_ops ops = {now_ms, mono_ms, sleep_ms, rand_u64, NULL};
	tp_sf_auth *a = NULL;
	char *t1 = NULL, *t2 = NULL, *t3 = NULL;
	const char *type;

	tp_clock_set(&ops);
	cr_assert(tp_sf_auth_new(&a, cfg) == 0, "%s", tp_error_last());
	cr_assert(tp_sf_auth_token(a, &t1, &type) == 0);
	cr_assert_str_eq(type, "KEYPAIR_JWT");
	fake_now += 30 * 60 * 1000; /* half an hour later: still valid */
	cr_assert(tp_sf_auth_token(a, &t2, &type) == 0);
	cr_assert_str_eq(t1, t2);
	fake_now += 26 * 60 * 1000; /* 56 minutes after minting: renewed before exp */
	cr_assert(tp_sf_auth_token(a, &t3, &type) == 0);
	cr_assert_str_neq(t1, t3);
	tp_clock_set(NULL);
	tp_secret_free(t1);
	tp_secret_free(t2);
	tp_secret_free(t3);
	tp_sf_auth_free(a);
	json_decref(cfg);
	free(pem);
	free(path);
	EVP_PKEY_free(gen);
}

Test(sf_jwt, oauth_and_programmatic_tokens)
{
	json_t *cfg = json_pack("{s:s,s:s,s:s}", "account", "acme", "user", "t", "token",
				"ver:1-hint:123-ETMsDgAAAY");
	tp_sf_auth *a = NULL;
	char *t = NULL;
	const char *type;
	cr_assert(tp_sf_auth_new(&a, cfg) == 0);
	cr_assert(tp_sf_auth_token(a, &t, &type) == 0);
	cr_assert_str_eq(type, "OAUTH");
	cr_assert_str_eq(t, "ver:1-hint:123-ETMsDgAAAY");
	tp_secret_free(t);
	tp_sf_auth_free(a);
	json_object_set_new(cfg, "token", json_string("pat-abcdef0123456789"));
	cr_assert(tp_sf_auth_new(&a, cfg) == 0);
	cr_assert(tp_sf_auth_token(a, &t, &type) == 0);
	cr_assert_str_eq(type, "PROGRAMMATIC_ACCESS_TOKEN");
	tp_secret_free(t);
	tp_sf_auth_free(a);
	/* neither key nor token: a clear refusal */
	json_object_del(cfg, "token");
	cr_assert_eq(tp_sf_auth_new(&a, cfg), TP_EINVALID);
	cr_assert(strstr(tp_error_last(), "private_key"));
	json_decref(cfg);
}
