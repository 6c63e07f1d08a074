/* state/cache_lock.c: cache time to live and the controller lock lease, with a fake clock so
 * that expiry is tested by moving time, never by sleeping. */
#include "state_test.h"

/* ---------------------------------------------------------------- cache */

Test(cache, entries_live_until_their_ttl)
{
	fixture f;
	json_t *v = json_pack("{s:[s,s]}", "streams", "Contact", "Account"), *got = NULL;
	fx_open(&f);

	cr_assert_eq(tp_state_cache_get(&got, f.s, "catalog/sf"), TP_ENOTFOUND);
	cr_assert_null(got);
	cr_assert_eq(tp_state_cache_put(f.s, "catalog/sf", v, 60000), 0, "%s", tp_error_last());
	cr_assert_eq(tp_state_cache_get(&got, f.s, "catalog/sf"), 0, "%s", tp_error_last());
	cr_assert(json_equal(got, v));
	json_decref(got);

	f.clk.now += 59999;
	cr_assert_eq(tp_state_cache_get(&got, f.s, "catalog/sf"), 0);
	json_decref(got);
	f.clk.now += 1;
	cr_assert_eq(tp_state_cache_get(&got, f.s, "catalog/sf"), TP_ENOTFOUND);
	st_assert_msg("absent or expired");
	cr_assert_null(got);

	/* a put refreshes; expired rows of other keys are dropped on the way */
	cr_assert_eq(tp_state_cache_put(f.s, "catalog/zoom", v, 10), 0);
	cr_assert_eq(st_sql_int(f.path, "SELECT count(*) FROM cache"), 1);
	cr_assert_eq(tp_state_cache_put(f.s, "catalog/sf", json_null(), 1000), 0);
	cr_assert_eq(tp_state_cache_get(&got, f.s, "catalog/sf"), 0);
	cr_assert(json_is_null(got));
	json_decref(got);
	cr_assert_eq(tp_state_cache_put(f.s, "catalog/sf", v, INT64_MAX), 0, "%s", tp_error_last());
	f.clk.now += 1000000000;
	cr_assert_eq(tp_state_cache_get(&got, f.s, "catalog/sf"), 0);
	json_decref(got);

	cr_assert_eq(tp_state_cache_put(f.s, "k", v, 0), TP_EINVALID);
	cr_assert_eq(tp_state_cache_put(f.s, "k", NULL, 10), TP_EINVALID);
	cr_assert_eq(tp_state_cache_put(f.s, "", v, 10), TP_EINVALID);
	json_decref(v);
	fx_close(&f);
}

Test(cache, survives_reopen)
{
	fixture f;
	json_t *v = json_integer(42), *got = NULL;
	fx_open(&f);
	cr_assert_eq(tp_state_cache_put(f.s, "k", v, 1000), 0);
	tp_state_close(f.s);
	f.s = st_open_rw(f.path);
	cr_assert_eq(tp_state_cache_get(&got, f.s, "k"), 0);
	cr_assert_eq(json_integer_value(got), 42);
	json_decref(got);
	json_decref(v);
	fx_close(&f);
}

/* ---------------------------------------------------------------- lock */

Test(lock, acquire_renew_conflict_expire_release)
{
	fixture f;
	tp_state *other;
	fx_open(&f);
	other = st_open_rw(f.path); /* a second controller on the same database */

	cr_assert_eq(tp_state_lock_acquire(f.s, "host-a:100", 30000), 0, "%s", tp_error_last());
	cr_assert_eq(tp_state_lock_acquire(other, "host-b:200", 30000), TP_ECONFLICT);
	st_assert_msg("locked by host-a:100 until 2023-11-14T22:13:50.000Z");

	/* renewing extends the lease from now */
	f.clk.now += 20000;
	cr_assert_eq(tp_state_lock_acquire(f.s, "host-a:100", 30000), 0, "%s", tp_error_last());
	cr_assert_eq(st_sql_int(f.path, "SELECT expires_ms FROM lock"), 1700000050000LL);
	cr_assert_eq(st_sql_int(f.path, "SELECT acquired_ms FROM lock"), 1700000000000LL);
	f.clk.now += 20000; /* past the first lease, inside the renewed one */
	cr_assert_eq(tp_state_lock_acquire(other, "host-b:200", 30000), TP_ECONFLICT);

	/* the holder crashed: once its lease runs out another owner takes over */
	f.clk.now += 10000;
	cr_assert_eq(tp_state_lock_acquire(other, "host-b:200", 30000), 0, "%s", tp_error_last());
	cr_assert_eq(st_sql_int(f.path, "SELECT acquired_ms FROM lock"), 1700000050000LL);
	cr_assert_eq(tp_state_lock_acquire(f.s, "host-a:100", 30000), TP_ECONFLICT);

	/* release: only by the holder; nobody holding it is fine */
	cr_assert_eq(tp_state_lock_release(f.s, "host-a:100"), TP_ECONFLICT);
	st_assert_msg("host-b:200");
	cr_assert_eq(st_sql_int(f.path, "SELECT count(*) FROM lock"), 1);
	cr_assert_eq(tp_state_lock_release(other, "host-b:200"), 0, "%s", tp_error_last());
	cr_assert_eq(st_sql_int(f.path, "SELECT count(*) FROM lock"), 0);
	cr_assert_eq(tp_state_lock_release(other, "host-b:200"), 0);
	cr_assert_eq(tp_state_lock_acquire(f.s, "host-a:100", 30000), 0, "%s", tp_error_last());

	cr_assert_eq(tp_state_lock_acquire(f.s, "host-a:100", 0), TP_EINVALID);
	cr_assert_eq(tp_state_lock_acquire(f.s, "", 100), TP_EINVALID);
	cr_assert_eq(tp_state_lock_release(f.s, NULL), TP_EINVALID);
	tp_state_close(other);
	fx_close(&f);
}

Test(lock, works_inside_a_caller_transaction)
{
	fixture f;
	fx_open(&f);
	cr_assert_eq(tp_state_begin(f.s), 0);
	cr_assert_eq(tp_state_lock_acquire(f.s, "me", 1000), 0, "%s", tp_error_last());
	cr_assert_eq(tp_state_commit(f.s), 0, "%s", tp_error_last());
	cr_assert_eq(st_sql_int(f.path, "SELECT count(*) FROM lock WHERE owner = 'me'"), 1);
	fx_close(&f);
}
