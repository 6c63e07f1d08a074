/*
 * state/cache_lock.c — two small tables with a clock in them. The cache keeps JSON that is
 * expensive to fetch (discovered Airbyte catalogs, say) until its time to live runs out; the
 * lock is one row with an owner and a lease, so that only one controller (or CLI apply) works
 * on a database at a time, and a crashed holder's lease simply expires. Expiry is judged with
 * tp_clock_now_ms(), so tests move time instead of sleeping.
 */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

/* now + ms without signed overflow (a huge TTL or lease means "practically forever"). */
static int64_t deadline(int64_t now, int64_t ms)
{
	return ms > INT64_MAX - now ? INT64_MAX : now + ms;
}

/* ---------------------------------------------------------------- cache */

int tp_state_cache_put(tp_state *s, const char *key, const json_t *value, int64_t ttl_ms)
{
	sqlite3_stmt *st = NULL;
	int64_t now = tp_clock_now_ms();
	bool in_tx = false;
	int rc, brc = SQLITE_OK;

	if (!key || !*key || !value)
		return tp_error_set(TP_EINVALID, "state: a cache entry needs a key and a value");
	if (ttl_ms <= 0)
		return tp_error_set(TP_EINVALID, "state: cache entry %s: ttl must be positive",
				    key);
	rc = tp_state_begin(s);
	if (rc < 0)
		goto done;
	in_tx = true;
	/* expired entries are dropped on the way, so the table holds only live ones */
	rc = tp_state_prepare(&st, s, "DELETE FROM cache WHERE expires_ms <= ?1");
	if (rc < 0)
		goto done;
	tp_state_bind_i64(&brc, st, 1, now);
	if (brc == SQLITE_OK)
		brc = sqlite3_step(st);
	if (brc != SQLITE_DONE) {
		rc = tp_state_fail(s, brc, "drop expired cache entries");
		goto done;
	}
	sqlite3_finalize(st);
	st = NULL;
	brc = SQLITE_OK;
	rc = tp_state_prepare(&st, s,
			      "INSERT OR REPLACE INTO cache (key, value, expires_ms) "
			      "VALUES (?1, ?2, ?3)");
	if (rc < 0)
		goto done;
	tp_state_bind_text(&brc, st, 1, key);
	tp_state_bind_json(&brc, st, 2, value);
	tp_state_bind_i64(&brc, st, 3, deadline(now, ttl_ms));
	if (brc == SQLITE_OK)
		brc = sqlite3_step(st);
	if (brc != SQLITE_DONE) {
		rc = tp_state_fail(s, brc, "write cache entry %s", key);
		goto done;
	}
	in_tx = false;
	rc = tp_state_commit(s);
done:
	sqlite3_finalize(st);
	if (in_tx)
		tp_state_rollback(s);
	return rc;
}

int tp_state_cache_get(json_t **out, tp_state *s, const char *key)
{
	sqlite3_stmt *st = NULL;
	char *row = NULL;
	int rc, src, brc = SQLITE_OK;

	*out = NULL;
	if (!key)
		return tp_error_set(TP_EINVALID, "state: cache_get needs a key");
	rc = tp_state_prepare(&st, s, "SELECT value FROM cache WHERE key = ?1 AND expires_ms > ?2");
	if (rc < 0)
		goto done;
	tp_state_bind_text(&brc, st, 1, key);
	tp_state_bind_i64(&brc, st, 2, tp_clock_now_ms());
	if (brc != SQLITE_OK) {
		rc = tp_state_fail(s, brc, "read cache entry %s", key);
		goto done;
	}
	src = sqlite3_step(st);
	if (src == SQLITE_ROW) {
		row = tp_sprintf("cache entry %s", key);
		rc = tp_state_column_json(out, s, st, 0, row);
	} else if (src == SQLITE_DONE) {
		rc =
		    tp_error_set(TP_ENOTFOUND, "state: no cache entry %s (absent or expired)", key);
	} else {
		rc = tp_state_fail(s, src, "read cache entry %s", key);
	}
done:
	sqlite3_finalize(st);
	free(row);
	return rc;
}

/* ---------------------------------------------------------------- lock */

/* TP_ECONFLICT naming the current holder (the caller's attempt changed nothing). */
static int lock_conflict(tp_state *s, const char *owner, const char *doing)
{
	sqlite3_stmt *st = NULL;
	char until[40];
	int rc, src;

	rc = tp_state_prepare(&st, s, "SELECT owner, expires_ms FROM lock WHERE id = 1");
	if (rc < 0)
		goto done;
	src = sqlite3_step(st);
	if (src == SQLITE_ROW) {
		int64_t expires = (int64_t)sqlite3_column_int64(st, 1);
		tp_clock_format_rfc3339(until, sizeof(until), expires);
		rc = tp_error_set(TP_ECONFLICT,
				  "state database %s is locked by %s until %s (lease ends in %lld "
				  "ms); %s cannot %s it: another controller or apply is running",
				  s->path, (const char *)sqlite3_column_text(st, 0), until,
				  (long long)(expires - tp_clock_now_ms()), owner, doing);
	} else if (src == SQLITE_DONE) {
		rc = tp_error_set(TP_ECONFLICT, "state database %s: %s cannot %s the lock", s->path,
				  owner, doing);
	} else {
		rc = tp_state_fail(s, src, "read the lock");
	}
done:
	sqlite3_finalize(st);
	return rc;
}

int tp_state_lock_acquire(tp_state *s, const char *owner, int64_t lease_ms)
{
	sqlite3_stmt *st = NULL;
	int64_t now = tp_clock_now_ms();
	bool in_tx = false;
	int rc, brc = SQLITE_OK;

	if (!owner || !*owner)
		return tp_error_set(TP_EINVALID, "state: the lock needs an owner");
	if (lease_ms <= 0)
		return tp_error_set(TP_EINVALID, "state: lock lease for %s must be positive",
				    owner);
	rc = tp_state_begin(s);
	if (rc < 0)
		goto done;
	in_tx = true;
	/* takes a free or expired row, renews our own, and leaves anyone else's untouched */
	rc = tp_state_prepare(&st, s,
			      "INSERT INTO lock (id, owner, acquired_ms, expires_ms) "
			      "VALUES (1, ?1, ?2, ?3) "
			      "ON CONFLICT (id) DO UPDATE SET "
			      "acquired_ms = CASE WHEN lock.owner = excluded.owner "
			      "THEN lock.acquired_ms ELSE excluded.acquired_ms END, "
			      "owner = excluded.owner, expires_ms = excluded.expires_ms "
			      "WHERE lock.owner = excluded.owner OR lock.expires_ms <= ?2");
	if (rc < 0)
		goto done;
	tp_state_bind_text(&brc, st, 1, owner);
	tp_state_bind_i64(&brc, st, 2, now);
	tp_state_bind_i64(&brc, st, 3, deadline(now, lease_ms));
	if (brc == SQLITE_OK)
		brc = sqlite3_step(st);
	if (brc != SQLITE_DONE) {
		rc = tp_state_fail(s, brc, "acquire the lock for %s", owner);
		goto done;
	}
	if (sqlite3_changes(s->db) == 0) {
		rc = lock_conflict(s, owner, "acquire");
		goto done;
	}
	in_tx = false;
	rc = tp_state_commit(s);
done:
	sqlite3_finalize(st);
	if (in_tx)
		tp_state_rollback(s);
	return rc;
}

int tp_state_lock_release(tp_state *s, const char *owner)
{
	sqlite3_stmt *st = NULL;
	bool in_tx = false;
	int rc, src, brc = SQLITE_OK;

	if (!owner || !*owner)
		return tp_error_set(TP_EINVALID, "state: releasing the lock needs an owner");
	rc = tp_state_begin(s);
	if (rc < 0)
		goto done;
	in_tx = true;
	rc = tp_state_prepare(&st, s, "DELETE FROM lock WHERE id = 1 AND owner = ?1");
	if (rc < 0)
		goto done;
	tp_state_bind_text(&brc, st, 1, owner);
	if (brc == SQLITE_OK)
		brc = sqlite3_step(st);
	if (brc != SQLITE_DONE) {
		rc = tp_state_fail(s, brc, "release the lock for %s", owner);
		goto done;
	}
	if (sqlite3_changes(s->db) == 0) {
		/* not ours: free already (fine, releasing is idempotent) or somebody else's */
		sqlite3_finalize(st);
		st = NULL;
		rc = tp_state_prepare(&st, s, "SELECT 1 FROM lock WHERE id = 1");
		if (rc < 0)
			goto done;
		src = sqlite3_step(st);
		if (src == SQLITE_ROW)
			rc = lock_conflict(s, owner, "release");
		else if (src != SQLITE_DONE)
			rc = tp_state_fail(s, src, "read the lock");
		if (rc < 0)
			goto done;
	}
	in_tx = false;
	rc = tp_state_commit(s);
done:
	sqlite3_finalize(st);
	if (in_tx)
		tp_state_rollback(s);
	return rc;
}

int tp_state_lock_holder(char **owner, int64_t *expires_ms, tp_state *s)
{
	sqlite3_stmt *st = NULL;
	int rc, src;

	*owner = NULL;
	*expires_ms = 0;
	rc = tp_state_prepare(&st, s, "SELECT owner, expires_ms FROM lock WHERE id = 1");
	if (rc < 0)
		goto done;
	src = sqlite3_step(st);
	if (src == SQLITE_ROW) {
		*owner = tp_strdup((const char *)sqlite3_column_text(st, 0));
		*expires_ms = (int64_t)sqlite3_column_int64(st, 1);
	} else if (src == SQLITE_DONE) {
		rc = tp_error_set(TP_ENOTFOUND, "state database %s is not locked", s->path);
	} else {
		rc = tp_state_fail(s, src, "read the lock");
	}
done:
	sqlite3_finalize(st);
	return rc;
}

int tp_state_lock_takeover(tp_state *s, const char *stale_owner, const char *owner,
			   int64_t lease_ms)
{
	sqlite3_stmt *st = NULL;
	int64_t now = tp_clock_now_ms();
	int rc, brc = SQLITE_OK;

	if (!owner || !*owner || !stale_owner || lease_ms <= 0)
		return tp_error_set(TP_EINVALID, "state: lock takeover needs both owners and a lease");
	/* conditional on the holder still being the stale one: two takers cannot both win */
	rc = tp_state_prepare(&st, s,
			      "UPDATE lock SET owner = ?1, acquired_ms = ?2, expires_ms = ?3 "
			      "WHERE id = 1 AND owner = ?4");
	if (rc < 0)
		goto done;
	tp_state_bind_text(&brc, st, 1, owner);
	tp_state_bind_i64(&brc, st, 2, now);
	tp_state_bind_i64(&brc, st, 3, deadline(now, lease_ms));
	tp_state_bind_text(&brc, st, 4, stale_owner);
	if (brc == SQLITE_OK)
		brc = sqlite3_step(st);
	if (brc != SQLITE_DONE) {
		rc = tp_state_fail(s, brc, "take over the lock for %s", owner);
		goto done;
	}
	if (sqlite3_changes(s->db) == 0)
		rc = lock_conflict(s, owner, "take over");
done:
	sqlite3_finalize(st);
	return rc;
}
