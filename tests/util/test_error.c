/*
 * util/error.c: the failure recorded where it happens — its message, and the delay a server
 * asked for (Retry-After) that the engine's retry must honour.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "util/util.h"

Test(error, a_new_failure_drops_the_old_delay)
{
	tp_error_set(TP_ETHROTTLED, "GetParameter: HTTP 429");
	tp_error_set_retry_after(2000);
	cr_assert_eq(tp_error_retry_after(), 2000);
	cr_assert_eq(tp_error_set(TP_ETRANSIENT, "connection reset"), TP_ETRANSIENT);
	cr_assert_eq(tp_error_retry_after(), -1);
	cr_assert_str_eq(tp_error_last(), "connection reset");
}

/* Found by bench/reliability/faults.sh: re-wording a throttled failure with tp_error_set
 * (adding the secret's or the resource's name) dropped its Retry-After, and the engine then
 * retried after its own, shorter backoff. */
Test(error, a_wrapped_failure_keeps_its_delay_and_may_quote_itself)
{
	char *m;
	tp_error_set(TP_ETHROTTLED, "ssm GetParameter: ThrottlingException: Rate exceeded");
	tp_error_set_retry_after(2000);
	m = tp_strdup(tp_error_last());
	cr_assert_eq(tp_error_wrap(TP_ETHROTTLED, "secret ${secret:ssm:%s}: %s", "/rs/key", m),
		     TP_ETHROTTLED);
	free(m);
	cr_assert_str_eq(tp_error_last(), "secret ${secret:ssm:/rs/key}: ssm GetParameter: "
					  "ThrottlingException: Rate exceeded");
	cr_assert_eq(tp_error_retry_after(), 2000);
	/* the message being replaced may be an argument as is */
	tp_error_wrap(TP_ETHROTTLED, "%s (again)", tp_error_last());
	cr_assert_str_eq(tp_error_last(), "secret ${secret:ssm:/rs/key}: ssm GetParameter: "
					  "ThrottlingException: Rate exceeded (again)");
	cr_assert_eq(tp_error_retry_after(), 2000);
	tp_error_clear();
}
