/* util/json.c: path lookup, canonical form, parse errors. */
#include <criterion/criterion.h>
#include <string.h>

#include "util/util.h"

Test(json, path_get_walks_objects_and_arrays)
{
	json_t *v = NULL;
	const char *text = "{\"a\":{\"b\":[{\"c\":1},{\"c\":\"two\"}]}}";
	cr_assert_eq(tp_json_parse(&v, text, strlen(text)), 0);
	cr_assert_eq(json_integer_value(tp_json_path_get(v, "a.b.0.c")), 1);
	cr_assert_str_eq(json_string_value(tp_json_path_get(v, "a.b.1.c")), "two");
	cr_assert_null(tp_json_path_get(v, "a.b.2.c"));
	cr_assert_null(tp_json_path_get(v, "a.x"));
	cr_assert_null(tp_json_path_get(v, "a.b.x"));
	cr_assert_str_eq(tp_json_get_str(tp_json_path_get(v, "a.b.1"), "c"), "two");
	cr_assert_null(tp_json_get_str(v, "a"));
	json_decref(v);
}

Test(json, canonical_sorts_keys)
{
	json_t *v = json_pack("{s:i,s:s,s:[i,i]}", "z", 1, "a", "x", "m", 2, 1);
	char *s = tp_json_canonical(v);
	cr_assert_str_eq(s, "{\"a\":\"x\",\"m\":[2,1],\"z\":1}");
	free(s);
	json_decref(v);
}

Test(json, parse_errors_carry_position_and_reject_duplicates)
{
	json_t *v = NULL;
	cr_assert_eq(tp_json_parse(&v, "{\"a\":1,\n\"a\":2}", 14), TP_EINVALID);
	cr_assert_null(v);
	cr_assert(strstr(tp_error_last(), "line 2") != NULL, "%s", tp_error_last());
	cr_assert_eq(tp_json_parse(&v, "{", 1), TP_EINVALID);
}

Test(json, log_string_escaping)
{
	tp_buf b;
	tp_buf_init(&b, 0);
	tp_buf_put_json_string(&b, "a\"b\\c\n\x01");
	cr_assert_str_eq(tp_buf_cstr(&b), "\"a\\\"b\\\\c\\n\\u0001\"");
	tp_buf_free(&b);
}
