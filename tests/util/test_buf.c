/* util/buf.c: the bounded buffer, file reads refused by size, string lists. */
#include <criterion/criterion.h>
#include <string.h>

#include "support/support.h"
#include "util/util.h"

Test(buf, grows_and_terminates)
{
	tp_buf b;
	tp_buf_init(&b, 1024);
	cr_assert_str_eq(tp_buf_cstr(&b), "");
	for (int i = 0; i < 100; i++)
		cr_assert_eq(tp_buf_putc(&b, 'x'), 0);
	cr_assert_eq(b.len, 100);
	cr_assert_eq(b.ptr[100], '\0');
	cr_assert_eq(tp_buf_printf(&b, "%d-%s", 42, "y"), 0);
	cr_assert_eq(strcmp(b.ptr + 100, "42-y"), 0);
	tp_buf_free(&b);
}

Test(buf, refuses_growth_past_cap_and_keeps_content)
{
	tp_buf b;
	char big[600];
	memset(big, 'a', sizeof(big));
	tp_buf_init(&b, 1000);
	cr_assert_eq(tp_buf_put(&b, big, sizeof(big)), 0);
	cr_assert_eq(tp_buf_put(&b, big, sizeof(big)), TP_ETOOBIG);
	cr_assert_eq(b.len, 600);
	cr_assert(strstr(tp_error_last(), "1000") != NULL);
	cr_assert_eq(tp_buf_printf(&b, "%500s", "z"), TP_ETOOBIG);
	cr_assert_eq(b.len, 600);
	tp_buf_free(&b);
}

Test(buf, detach_hands_over_and_resets)
{
	tp_buf b;
	char *s;
	tp_buf_init(&b, 0);
	s = tp_buf_detach(&b);
	cr_assert_str_eq(s, "");
	free(s);
	tp_buf_puts(&b, "hello");
	s = tp_buf_detach(&b);
	cr_assert_str_eq(s, "hello");
	cr_assert_eq(b.ptr, NULL);
	cr_assert_eq(b.len, 0);
	free(s);
	tp_buf_free(NULL);
}

Test(buf, file_read_refuses_by_size_before_reading)
{
	char *dir = ts_tmpdir();
	char *path = tp_sprintf("%s/f", dir);
	tp_buf b;
	ts_write(dir, "f", "0123456789");
	tp_buf_init(&b, 0);
	cr_assert_eq(tp_file_read(&b, path, 5), TP_ETOOBIG);
	cr_assert(strstr(tp_error_last(), "over the limit") != NULL);
	cr_assert_eq(tp_file_read(&b, path, 10), 0);
	cr_assert_str_eq(b.ptr, "0123456789");
	free(path);
	path = tp_sprintf("%s/missing", dir);
	cr_assert_eq(tp_file_read(&b, path, 10), TP_ENOTFOUND);
	cr_assert_eq(tp_file_read(&b, dir, 10), TP_EINVALID);
	tp_buf_free(&b);
	free(path);
	ts_rmtree(dir);
	free(dir);
}

Test(strlist, push_sort_contains)
{
	tp_strlist l = {0};
	tp_strlist_push(&l, "b");
	tp_strlist_push(&l, "c");
	tp_strlist_push(&l, "a");
	tp_strlist_sort(&l);
	cr_assert_str_eq(l.items[0], "a");
	cr_assert_str_eq(l.items[2], "c");
	cr_assert(tp_strlist_contains(&l, "b"));
	cr_assert(!tp_strlist_contains(&l, "d"));
	tp_strlist_free(&l);
	tp_strlist_free(NULL);
}

Test(error, codes_have_names)
{
	cr_assert_str_eq(tp_error_name(TP_ENOTFOUND), "not found");
	cr_assert_eq(tp_error_set(TP_EAUTH, "denied %d", 3), TP_EAUTH);
	cr_assert_str_eq(tp_error_last(), "denied 3");
	tp_error_clear();
	cr_assert_str_eq(tp_error_last(), "");
}
