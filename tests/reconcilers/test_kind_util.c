/*
 * The helpers the kinds share (reconcilers/kind_util.c) and the JSON helpers their normalise
 * hooks use (util/json.c). The secret check is exercised the way a user meets it: an
 * airbyte.source (and a grouparoo.app) document loaded by the spec loader, whose diagnostics
 * name every refused setting.
 */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "reconcilers/reconciler.h"
#include "spec/spec.h"

/* ---------------------------------------------------------------- tp_kind_has_ref */

Test(kind_util, has_ref_finds_references_anywhere)
{
	cr_assert(tp_kind_has_ref("${secret:env:X}"));
	cr_assert(tp_kind_has_ref("prefix-${aws.stack/a.id}-suffix"));
	cr_assert(tp_kind_has_ref("$${SOURCE_NAMESPACE}")); /* the loader unescapes later */
	cr_assert_not(tp_kind_has_ref(""));
	cr_assert_not(tp_kind_has_ref("plain"));
	cr_assert_not(tp_kind_has_ref("$ {x}"));
	cr_assert_not(tp_kind_has_ref("{x}$"));
}

/* ---------------------------------------------------------------- the secret check */

/* Loads one document and returns every diagnostic as "line: message\n" lines. */
static char *check_doc(const char *yaml, int *rc_out)
{
	tp_diags diags = {0};
	tp_buf b;
	int rc = tp_spec_check_text("input.yaml", yaml, strlen(yaml), &diags);

	tp_buf_init(&b, TP_BUF_DEFAULT_MAX);
	for (size_t i = 0; i < diags.len; i++)
		tp_buf_printf(&b, "%d: %s\n", diags.items[i].line, diags.items[i].msg);
	tp_diags_free(&diags);
	if (rc_out)
		*rc_out = rc;
	return tp_buf_detach(&b);
}

/* An airbyte.source whose configuration holds one setting `key` with a literal value. */
static char *check_source_setting(const char *key, const char *value)
{
	char *yaml = tp_sprintf("kind: airbyte.source\n"
				"name: s\n"
				"spec:\n"
				"  connector: source-postgres\n"
				"  configuration:\n"
				"    %s: %s\n",
				key, value);
	char *out = check_doc(yaml, NULL);
	free(yaml);
	return out;
}

static bool flagged_as_credential(const char *key)
{
	char *out = check_source_setting(key, "hunter2");
	char *want = tp_sprintf("configuration.%s: looks like a credential", key);
	bool found = strstr(out, want) != NULL;
	/* nothing else may be reported for a well-formed source */
	cr_expect(found || out[0] == '\0', "%s: unexpected diagnostics:\n%s", key, out);
	free(want);
	free(out);
	return found;
}

Test(kind_util, credential_keys_are_refused_as_literals)
{
	static const char *const keys[] = {
		"password",          "db_password",   "Password",      "passwd",
		"client_secret",     "clientSecret",  "client-secret", "secret",
		"api_key",           "apiKey",        "API-Key",       "x_api_key",
		"refresh_token",     "access_token",  "token",         "private_key",
		"privateKey",        "passphrase",    "key_passphrase", "secret_key",
		"aws_secret_key",    "secret_access_key", "AWS_SECRET_ACCESS_KEY", "access_key",
		"credentials_json",  "service_account_credentials_json",
		NULL,
	};
	for (size_t i = 0; keys[i]; i++)
		cr_expect(flagged_as_credential(keys[i]), "%s: a literal was accepted", keys[i]);
}

Test(kind_util, other_keys_are_not_credentials)
{
	static const char *const keys[] = {
		"token_expiry_date", "access_key_id",  "aws_access_key_id", "client_id",
		"username",          "password_type",  "secret_id",         "tokens_url",
		"host",              "api_key_header", "keyfile",           "passwords_enabled",
		NULL,
	};
	for (size_t i = 0; keys[i]; i++)
		cr_expect_not(flagged_as_credential(keys[i]), "%s: refused as a credential",
			      keys[i]);
}

Test(kind_util, references_and_empty_values_pass)
{
	char *out = check_source_setting("secret_access_key", "${secret:env:AWS_SECRET}");
	cr_expect_str_empty(out, "%s", out);
	free(out);
	out = check_source_setting("password", "\"\"");
	cr_expect_str_empty(out, "%s", out);
	free(out);
	/* only strings are judged */
	out = check_source_setting("token", "12345");
	cr_expect_str_empty(out, "%s", out);
	free(out);
}

Test(kind_util, masked_value_is_refused_under_any_key)
{
	char *out = check_source_setting("host", "\"**********\"");
	cr_expect(strstr(out, "configuration.host: the masked value \"**********\" cannot be "
			      "written back") != NULL, "%s", out);
	cr_expect(strstr(out, "looks like a credential") == NULL, "%s", out);
	free(out);
	/* a masked credential is reported once, as masked */
	out = check_source_setting("password", "\"**********\"");
	cr_expect(strstr(out, "the masked value") != NULL, "%s", out);
	cr_expect(strstr(out, "looks like a credential") == NULL, "%s", out);
	free(out);
}

Test(kind_util, nested_objects_and_arrays_are_walked)
{
	const char *yaml = "kind: airbyte.source\n"
			   "name: s\n"
			   "spec:\n"
			   "  connector: source-s3\n"
			   "  configuration:\n"
			   "    provider:\n"
			   "      aws_access_key_id: AKIAEXAMPLE\n"
			   "      aws_secret_access_key: wJalrXUtnFEMI\n"
			   "    tokens: [one, ok]\n"
			   "    streams:\n"
			   "      - name: a\n"
			   "        api_key: abc\n"
			   "        backup: \"**********\"\n";
	int rc = 0;
	char *out = check_doc(yaml, &rc);

	cr_expect_eq(rc, TP_EINVALID);
	cr_expect(strstr(out, "8: spec.configuration.provider.aws_secret_access_key: looks like "
			      "a credential"), "%s", out);
	cr_expect(strstr(out, "aws_access_key_id") == NULL, "%s", out);
	/* array elements are judged by the array's key: "tokens" is not a credential suffix */
	cr_expect(strstr(out, "configuration.tokens") == NULL, "%s", out);
	cr_expect(strstr(out, "12: spec.configuration.streams[0].api_key: looks like a "
			      "credential"), "%s", out);
	cr_expect(strstr(out, "13: spec.configuration.streams[0].backup: the masked value"), "%s",
		  out);
	free(out);
}

Test(kind_util, array_elements_take_the_key_of_their_array)
{
	char *out = check_source_setting("api_tokens", "[a, \"${secret:env:B}\"]");
	cr_expect_str_empty(out, "%s", out); /* "apitokens" does not end in "token" */
	free(out);
	out = check_source_setting("refresh_token", "[a, \"${secret:env:B}\"]");
	cr_expect(strstr(out, "configuration.refresh_token[0]: looks like a credential"), "%s",
		  out);
	cr_expect(strstr(out, "refresh_token[1]") == NULL, "%s", out);
	free(out);
}

Test(kind_util, grouparoo_app_options_use_the_same_check)
{
	const char *yaml = "kind: grouparoo.app\n"
			   "name: mailchimp\n"
			   "spec:\n"
			   "  type: mailchimp\n"
			   "  options:\n"
			   "    apiKey: literal-key\n"
			   "    secretAccessKey: literal\n"
			   "    accessKeyId: AKIAEXAMPLE\n"
			   "    password: ${secret:env:PW}\n";
	char *out = check_doc(yaml, NULL);

	cr_expect(strstr(out, "options.apiKey: looks like a credential"), "%s", out);
	cr_expect(strstr(out, "options.secretAccessKey: looks like a credential"), "%s", out);
	cr_expect(strstr(out, "accessKeyId") == NULL, "%s", out);
	cr_expect(strstr(out, "options.password") == NULL, "%s", out);
	free(out);
}

/* ---------------------------------------------------------------- util JSON helpers */

static json_t *parse(const char *text)
{
	json_t *v = NULL;
	cr_assert_eq(tp_json_parse(&v, text, strlen(text)), 0, "%s", tp_error_last());
	return v;
}

static void assert_json(const json_t *v, const char *want)
{
	char *got = tp_json_canonical(v);
	cr_assert_str_eq(got, want);
	free(got);
}

Test(kind_util, json_cmp_orders_strings_by_content_then_the_rest_canonically)
{
	json_t *a = json_string("a"), *a_space = json_string("a b"), *b = json_string("b");
	json_t *one = json_integer(1), *two = json_integer(2), *obj = json_pack("{s:i}", "k", 1);

	cr_expect_eq(tp_json_cmp(a, a), 0);
	cr_expect_lt(tp_json_cmp(a, b), 0);
	cr_expect_gt(tp_json_cmp(b, a), 0);
	/* by content: "a" < "a b" (the canonical texts "a" and "a b" would sort the other way) */
	cr_expect_lt(tp_json_cmp(a, a_space), 0);
	/* strings before any other value */
	cr_expect_lt(tp_json_cmp(b, one), 0);
	cr_expect_gt(tp_json_cmp(obj, b), 0);
	cr_expect_lt(tp_json_cmp(one, two), 0);
	cr_expect_lt(tp_json_cmp(one, obj), 0); /* "1" < "{..." */
	json_decref(a);
	json_decref(a_space);
	json_decref(b);
	json_decref(one);
	json_decref(two);
	json_decref(obj);
}

Test(kind_util, json_array_sort_with_and_without_unique)
{
	json_t *arr = parse("[\"b\", 3, \"a\", {\"k\": 1}, \"b\", [1], 3, \"a b\"]");
	json_t *set = json_deep_copy(arr);

	tp_json_array_sort(arr, tp_json_qsort_cmp, false);
	assert_json(arr, "[\"a\",\"a b\",\"b\",\"b\",3,3,[1],{\"k\":1}]");
	tp_json_array_sort(set, tp_json_qsort_cmp, true);
	assert_json(set, "[\"a\",\"a b\",\"b\",3,[1],{\"k\":1}]");
	/* idempotent */
	tp_json_array_sort(set, tp_json_qsort_cmp, true);
	assert_json(set, "[\"a\",\"a b\",\"b\",3,[1],{\"k\":1}]");
	json_decref(arr);
	json_decref(set);

	/* short arrays and non-arrays are left alone */
	arr = parse("[\"z\"]");
	tp_json_array_sort(arr, tp_json_qsort_cmp, true);
	assert_json(arr, "[\"z\"]");
	json_decref(arr);
	arr = parse("{\"b\": 1, \"a\": 2}");
	tp_json_array_sort(arr, tp_json_qsort_cmp, true);
	assert_json(arr, "{\"a\":2,\"b\":1}");
	json_decref(arr);
	tp_json_array_sort(NULL, tp_json_qsort_cmp, true);
}

Test(kind_util, str_qsort_cmp_sorts_c_strings)
{
	const char *items[] = {"pear", "apple", "Zebra", "apple pie", "apple"};
	qsort(items, 5, sizeof(*items), tp_str_qsort_cmp);
	cr_assert_str_eq(items[0], "Zebra");
	cr_assert_str_eq(items[1], "apple");
	cr_assert_str_eq(items[2], "apple");
	cr_assert_str_eq(items[3], "apple pie");
	cr_assert_str_eq(items[4], "pear");
}

/* Applies tp_json_drop_empty(what) to every key of one object holding each kind of value;
 * returns the canonical result. */
static char *drop_each(unsigned what)
{
	static const char *const keys[] = {"n",      "s",      "a",    "o",  "full_s",
					   "full_a", "full_o", "zero", "no", "missing"};
	json_t *v = parse("{\"n\": null, \"s\": \"\", \"a\": [], \"o\": {}, "
			  "\"full_s\": \"x\", \"full_a\": [0], \"full_o\": {\"k\": null}, "
			  "\"zero\": 0, \"no\": false}");
	char *out;

	for (size_t i = 0; i < sizeof(keys) / sizeof(*keys); i++)
		tp_json_drop_empty(v, keys[i], what);
	out = tp_json_canonical(v);
	json_decref(v);
	return out;
}

static void expect_drop(unsigned what, const char *want)
{
	char *got = drop_each(what);
	cr_expect_str_eq(got, want, "what=%u", what);
	free(got);
}

Test(kind_util, json_drop_empty_honours_what)
{
	json_t *v;

	expect_drop(TP_JSON_EMPTY_ABSENT, "{\"full_a\":[0],\"full_o\":{\"k\":null},"
					  "\"full_s\":\"x\",\"no\":false,\"s\":\"\",\"zero\":0}");
	expect_drop(TP_JSON_EMPTY_CONTAINER, "{\"full_a\":[0],\"full_o\":{\"k\":null},"
					     "\"full_s\":\"x\",\"n\":null,\"no\":false,\"s\":\"\","
					     "\"zero\":0}");
	expect_drop(TP_JSON_EMPTY_STRING, "{\"a\":[],\"full_a\":[0],\"full_o\":{\"k\":null},"
					  "\"full_s\":\"x\",\"n\":null,\"no\":false,\"o\":{},"
					  "\"zero\":0}");
	expect_drop(TP_JSON_EMPTY_ALL, "{\"full_a\":[0],\"full_o\":{\"k\":null},\"full_s\":\"x\","
				       "\"no\":false,\"zero\":0}");
	expect_drop(0, "{\"a\":[],\"full_a\":[0],\"full_o\":{\"k\":null},\"full_s\":\"x\","
		       "\"n\":null,\"no\":false,\"o\":{},\"s\":\"\",\"zero\":0}");

	/* not an object: nothing happens */
	v = parse("[null]");
	tp_json_drop_empty(v, "0", TP_JSON_EMPTY_ALL);
	assert_json(v, "[null]");
	json_decref(v);
	tp_json_drop_empty(NULL, "k", TP_JSON_EMPTY_ALL);
}
