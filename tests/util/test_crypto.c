/* util/crypto.c and util/utf8.c: known-answer tests (RFC 4231, RFC 4648, FIPS 180-2). */
#include <criterion/criterion.h>
#include <string.h>

#include "util/util.h"

static char *hex(const uint8_t *d, size_t n)
{
	char *out = tp_malloc(2 * n + 1);
	tp_hex_encode(out, d, n);
	return out;
}

Test(crypto, sha256_known_answers)
{
	uint8_t d[TP_SHA256_LEN];
	char *h;
	tp_sha256(d, "abc", 3);
	h = hex(d, sizeof(d));
	cr_assert_str_eq(h, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	free(h);
	tp_sha256(d, "", 0);
	h = hex(d, sizeof(d));
	cr_assert_str_eq(h, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	free(h);
}

Test(crypto, hmac_sha256_rfc4231_case2)
{
	uint8_t d[TP_SHA256_LEN];
	char *h;
	const char *data = "what do ya want for nothing?";
	tp_hmac_sha256(d, "Jefe", 4, data, strlen(data));
	h = hex(d, sizeof(d));
	cr_assert_str_eq(h, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
	free(h);
}

Test(crypto, constant_time_equal)
{
	cr_assert(tp_ct_equal("abcd", "abcd", 4));
	cr_assert(!tp_ct_equal("abcd", "abce", 4));
}

Test(crypto, base64_rfc4648_vectors)
{
	static const char *in[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
	static const char *std[] = {"", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=",
				    "Zm9vYmFy"};
	static const char *url[] = {"", "Zg", "Zm8", "Zm9v", "Zm9vYg", "Zm9vYmE", "Zm9vYmFy"};
	for (size_t i = 0; i < 7; i++) {
		tp_buf a, b, c;
		tp_buf_init(&a, 0);
		tp_buf_init(&b, 0);
		tp_buf_init(&c, 0);
		cr_assert_eq(tp_base64_encode(&a, in[i], strlen(in[i])), 0);
		cr_assert_str_eq(tp_buf_cstr(&a), std[i]);
		cr_assert_eq(tp_base64url_encode(&b, in[i], strlen(in[i])), 0);
		cr_assert_str_eq(tp_buf_cstr(&b), url[i]);
		cr_assert_eq(tp_base64_decode(&c, std[i], strlen(std[i])), 0);
		cr_assert_eq(c.len, strlen(in[i]));
		cr_assert_eq(memcmp(tp_buf_cstr(&c), in[i], c.len), 0);
		tp_buf_free(&a);
		tp_buf_free(&b);
		tp_buf_free(&c);
	}
}

Test(crypto, base64_url_alphabet_and_bad_input)
{
	tp_buf b;
	const uint8_t bytes[] = {0xfb, 0xff};
	tp_buf_init(&b, 0);
	tp_base64url_encode(&b, bytes, 2);
	cr_assert_str_eq(tp_buf_cstr(&b), "-_8");
	tp_buf_clear(&b);
	cr_assert_eq(tp_base64_decode(&b, "Zm9v!", 5), TP_EINVALID);
	tp_buf_free(&b);
}

Test(crypto, random_bytes_differ)
{
	uint8_t a[16], b[16];
	cr_assert_eq(tp_random_bytes(a, sizeof(a)), 0);
	cr_assert_eq(tp_random_bytes(b, sizeof(b)), 0);
	cr_assert(memcmp(a, b, sizeof(a)) != 0);
}

Test(utf8, accepts_valid_rejects_invalid)
{
	size_t bad = 99;
	cr_assert(tp_utf8_valid("plain ascii", 11, NULL));
	cr_assert(tp_utf8_valid("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", 14, NULL));
	cr_assert(!tp_utf8_valid("caf\xe9", 4, &bad));
	cr_assert_eq(bad, 3);
	cr_assert(!tp_utf8_valid("\xc0\xaf", 2, &bad)); /* overlong "/" */
	cr_assert(!tp_utf8_valid("\xed\xa0\x80", 3, &bad)); /* surrogate */
	cr_assert(!tp_utf8_valid("ab\xe2\x82", 4, &bad)); /* truncated */
	cr_assert_eq(bad, 2);
	cr_assert(!tp_utf8_valid("\xf4\x90\x80\x80", 4, &bad)); /* above U+10FFFF */
}
