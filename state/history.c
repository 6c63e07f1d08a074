/*
 * state/history.c — what Tapestry did and when: commits seen and their outcome (revisions),
 * reconcile runs, the write-ahead journal of provider calls (a pending row is committed before
 * each write call and resolved by observing after a crash), and the event log behind
 * `tapestry events`, /api/events and the dashboard. All timestamps come from the util clock.
 */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- small helpers */

static json_t *column_int_or_null(sqlite3_stmt *st, int col)
{
	if (sqlite3_column_type(st, col) == SQLITE_NULL)
		return json_null();
	return json_integer((json_int_t)sqlite3_column_int64(st, col));
}

/* Text that is not valid UTF-8 (a provider's raw error message, say) would make jansson
 * refuse the string and the row vanish from the list: such bytes are shown as '?' instead. */
static json_t *column_str_or_null(sqlite3_stmt *st, int col)
{
	const unsigned char *t = sqlite3_column_text(st, col);
	size_t len, bad = 0;
	char *copy;
	json_t *v;

	if (!t)
		return json_null();
	len = (size_t)sqlite3_column_bytes(st, col);
	if (tp_utf8_valid((const char *)t, len, &bad))
		return json_stringn((const char *)t, len);
	copy = tp_strndup((const char *)t, len);
	do
		copy[bad] = '?';
	while (!tp_utf8_valid(copy, len, &bad));
	v = json_stringn(copy, len);
	free(copy);
	return v;
}

static int check_limit(int limit, const char *what)
{
	if (limit <= 0)
		return tp_error_set(TP_EINVALID, "state: %s: limit must be positive (got %d)", what,
				    limit);
	return 0;
}

/* After an UPDATE ... WHERE id = ? AND <state> changed nothing: absent row or wrong state. */
static int explain_no_change(tp_state *s, const char *table_sql, int64_t id, const char *what,
			     const char *state_msg)
{
	sqlite3_stmt *st = NULL;
	int rc, src, brc = SQLITE_OK;

	rc = tp_state_prepare(&st, s, table_sql);
	if (rc < 0)
		goto done;
	tp_state_bind_i64(&brc, st, 1, id);
	if (brc == SQLITE_OK)
		brc = src = sqlite3_step(st);
	else
		src = brc;
	if (src == SQLITE_ROW)
		rc = tp_error_set(TP_EINVALID, "state: %s %lld %s", what, (long long)id, state_msg);
	else if (src == SQLITE_DONE)
		rc = tp_error_set(TP_ENOTFOUND, "state: no %s %lld", what, (long long)id);
	else
		rc = tp_state_fail(s, src, "read %s %lld", what, (long long)id);
done:
	sqlite3_finalize(st);
	return rc;
}

/* ---------------------------------------------------------------- revisions */

int tp_state_revision_record(tp_state *s, const char *commit, const char *tree, const char *result,
			     const char *detail)
{
	sqlite3_stmt *st = NULL;
	int rc, brc = SQLITE_OK;

	if (!commit || !*commit || !result || !*result)
		return tp_error_set(TP_EINVALID, "state: a revision needs a commit and a result");
	rc = tp_state_prepare(
	    &st, s,
	    "INSERT INTO revisions (commit_id, tree, first_seen_ms, updated_ms, seq, result, "
	    "detail) VALUES (?1, ?2, ?3, ?3, "
	    "(SELECT coalesce(max(seq), 0) + 1 FROM revisions), ?4, ?5) "
	    "ON CONFLICT (commit_id) DO UPDATE SET "
	    "tree = coalesce(excluded.tree, revisions.tree), updated_ms = excluded.updated_ms, "
	    "seq = excluded.seq, result = excluded.result, detail = excluded.detail");
	if (rc < 0)
		goto done;
	tp_state_bind_text(&brc, st, 1, commit);
	tp_state_bind_text(&brc, st, 2, tree);
	tp_state_bind_i64(&brc, st, 3, tp_clock_now_ms());
	tp_state_bind_text(&brc, st, 4, result);
	tp_state_bind_text(&brc, st, 5, detail);
	if (brc == SQLITE_OK)
		brc = sqlite3_step(st);
	if (brc != SQLITE_DONE)
		rc = tp_state_fail(s, brc, "record revision %s", commit);
done:
	sqlite3_finalize(st);
	return rc;
}

int tp_state_revision_last_applied(char **out, tp_state *s)
{
	sqlite3_stmt *st = NULL;
	int rc, src;

	*out = NULL;
	rc = tp_state_prepare(&st, s,
			      "SELECT commit_id FROM revisions WHERE result = 'applied' "
			      "ORDER BY seq DESC LIMIT 1");
	if (rc < 0)
		goto done;
	src = sqlite3_step(st);
	if (src == SQLITE_ROW)
		*out = tp_state_column_strdup(st, 0);
	else if (src == SQLITE_DONE)
		rc = tp_error_set(TP_ENOTFOUND, "state: no revision has been applied yet");
	else
		rc = tp_state_fail(s, src, "read the last applied revision");
done:
	sqlite3_finalize(st);
	return rc;
}

/* ---------------------------------------------------------------- runs */

int tp_state_run_begin(int64_t *out_id, tp_state *s, const char *revision, const char *trigger)
{
	sqlite3_stmt *st = NULL;
	int rc, brc = SQLITE_OK;

	*out_id = 0;
	if (!trigger || !*trigger)
		return tp_error_set(TP_EINVALID, "state: a run needs a trigger");
	rc = tp_state_prepare(&st, s,
			      "INSERT INTO runs (revision, triggered_by, started_ms) "
			      "VALUES (?1, ?2, ?3)");
	if (rc < 0)
		goto done;
	tp_state_bind_text(&brc, st, 1, revision);
	tp_state_bind_text(&brc, st, 2, trigger);
	tp_state_bind_i64(&brc, st, 3, tp_clock_now_ms());
	if (brc == SQLITE_OK)
		brc = sqlite3_step(st);
	if (brc != SQLITE_DONE)
		rc = tp_state_fail(s, brc, "record the start of a run");
	else
		*out_id = (int64_t)sqlite3_last_insert_rowid(s->db);
done:
	sqlite3_finalize(st);
	return rc;
}

int tp_state_run_end(tp_state *s, int64_t id, const char *result, const json_t *counts)
{
	sqlite3_stmt *st = NULL;
	int rc, brc = SQLITE_OK;

	if (!result || !*result)
		return tp_error_set(TP_EINVALID, "state: run %lld: ending a run needs a result",
				    (long long)id);
	rc = tp_state_prepare(&st, s,
			      "UPDATE runs SET ended_ms = ?2, result = ?3, counts = ?4 "
			      "WHERE id = ?1 AND ended_ms IS NULL");
	if (rc < 0)
		goto done;
	tp_state_bind_i64(&brc, st, 1, id);
	tp_state_bind_i64(&brc, st, 2, tp_clock_now_ms());
	tp_state_bind_text(&brc, st, 3, result);
	tp_state_bind_json(&brc, st, 4, counts);
	if (brc == SQLITE_OK)
		brc = sqlite3_step(st);
	if (brc != SQLITE_DONE)
		rc = tp_state_fail(s, brc, "record the end of run %lld", (long long)id);
	else if (sqlite3_changes(s->db) == 0)
		rc = explain_no_change(s, "SELECT 1 FROM runs WHERE id = ?1", id, "run",
				       "has already ended");
done:
	sqlite3_finalize(st);
	return rc;
}

int tp_state_runs_list(json_t **out, tp_state *s, int limit)
{
	sqlite3_stmt *st = NULL;
	json_t *list = NULL;
	int rc, src, brc = SQLITE_OK;

	*out = NULL;
	rc = check_limit(limit, "list runs");
	if (rc < 0)
		return rc;
	rc = tp_state_prepare(&st, s,
			      "SELECT id, revision, triggered_by, started_ms, ended_ms, result, "
			      "counts FROM runs ORDER BY id DESC LIMIT ?1");
	if (rc < 0)
		goto done;
	tp_state_bind_i64(&brc, st, 1, limit);
	if (brc != SQLITE_OK) {
		rc = tp_state_fail(s, brc, "list runs");
		goto done;
	}
	list = json_array();
	while ((src = sqlite3_step(st)) == SQLITE_ROW) {
		json_t *counts = NULL;
		char *row = tp_sprintf("run %lld", (long long)sqlite3_column_int64(st, 0));
		rc = tp_state_column_json(&counts, s, st, 6, row);
		free(row);
		if (rc < 0)
			goto done;
		json_array_append_new(
		    list,
		    json_pack("{s:I,s:o,s:o,s:I,s:o,s:o,s:o}", "id",
			      (json_int_t)sqlite3_column_int64(st, 0), "revision",
			      column_str_or_null(st, 1), "trigger", column_str_or_null(st, 2),
			      "started_ms", (json_int_t)sqlite3_column_int64(st, 3), "ended_ms",
			      column_int_or_null(st, 4), "result", column_str_or_null(st, 5),
			      "counts", counts ? counts : json_null()));
	}
	if (src != SQLITE_DONE)
		rc = tp_state_fail(s, src, "list runs");
done:
	sqlite3_finalize(st);
	if (rc < 0)
		json_decref(list);
	else
		*out = list;
	return rc;
}

int tp_state_run_set_plan(tp_state *s, int64_t id, const json_t *plan)
{
	sqlite3_stmt *st = NULL;
	int rc, brc = SQLITE_OK;
	rc = tp_state_prepare(&st, s, "UPDATE runs SET plan = ?1 WHERE id = ?2");
	if (rc < 0)
		goto done;
	tp_state_bind_json(&brc, st, 1, plan);
	tp_state_bind_i64(&brc, st, 2, id);
	if (brc == SQLITE_OK)
		brc = sqlite3_step(st);
	if (brc != SQLITE_DONE) {
		rc = tp_state_fail(s, brc, "store the plan of run %lld", (long long)id);
		goto done;
	}
	if (sqlite3_changes(s->db) == 0)
		rc = tp_error_set(TP_ENOTFOUND, "state database %s: no run %lld", s->path,
				  (long long)id);
done:
	sqlite3_finalize(st);
	return rc;
}

int tp_state_run_get(json_t **out, tp_state *s, int64_t id)
{
	sqlite3_stmt *st = NULL;
	json_t *run = NULL, *plan = NULL, *counts = NULL, *journal = NULL;
	int rc, src, brc = SQLITE_OK;

	*out = NULL;
	rc = tp_state_prepare(&st, s,
			      "SELECT id, revision, triggered_by, started_ms, ended_ms, result, "
			      "counts, plan FROM runs WHERE id = ?1");
	if (rc < 0)
		goto done;
	tp_state_bind_i64(&brc, st, 1, id);
	src = brc == SQLITE_OK ? sqlite3_step(st) : brc;
	if (src == SQLITE_DONE) {
		rc = tp_error_set(TP_ENOTFOUND, "state database %s: no run %lld", s->path,
				  (long long)id);
		goto done;
	}
	if (src != SQLITE_ROW) {
		rc = tp_state_fail(s, src, "read run %lld", (long long)id);
		goto done;
	}
	if ((rc = tp_state_column_json(&counts, s, st, 6, "run counts")) < 0 ||
	    (rc = tp_state_column_json(&plan, s, st, 7, "run plan")) < 0)
		goto done;
	run = json_pack("{s:I,s:o,s:o,s:I,s:o,s:o,s:o}", "id",
			(json_int_t)sqlite3_column_int64(st, 0), "revision",
			column_str_or_null(st, 1), "trigger", column_str_or_null(st, 2),
			"started_ms", (json_int_t)sqlite3_column_int64(st, 3), "ended_ms",
			column_int_or_null(st, 4), "result", column_str_or_null(st, 5), "counts",
			counts ? counts : json_null());
	counts = NULL;
	sqlite3_finalize(st);
	st = NULL;
	rc = tp_state_prepare(&st, s,
			      "SELECT id, address, action, status, attempts, error, started_ms, "
			      "ended_ms FROM journal WHERE run_id = ?1 ORDER BY id");
	if (rc < 0)
		goto done;
	brc = SQLITE_OK;
	tp_state_bind_i64(&brc, st, 1, id);
	journal = json_array();
	while (brc == SQLITE_OK && (src = sqlite3_step(st)) == SQLITE_ROW)
		json_array_append_new(
			journal,
			json_pack("{s:I,s:o,s:o,s:o,s:I,s:o,s:I,s:o}", "id",
				  (json_int_t)sqlite3_column_int64(st, 0), "address",
				  column_str_or_null(st, 1), "action", column_str_or_null(st, 2),
				  "status", column_str_or_null(st, 3), "attempts",
				  (json_int_t)sqlite3_column_int64(st, 4), "error",
				  column_str_or_null(st, 5), "started_ms",
				  (json_int_t)sqlite3_column_int64(st, 6), "ended_ms",
				  column_int_or_null(st, 7)));
	if (brc != SQLITE_OK || src != SQLITE_DONE) {
		rc = tp_state_fail(s, brc != SQLITE_OK ? brc : src, "read the journal of run %lld",
				   (long long)id);
		goto done;
	}
	*out = json_pack("{s:o,s:o,s:o}", "run", run, "plan", plan ? plan : json_null(),
			 "journal", journal);
	run = plan = journal = NULL;
done:
	sqlite3_finalize(st);
	json_decref(run);
	json_decref(plan);
	json_decref(counts);
	json_decref(journal);
	return rc;
}

/* ---------------------------------------------------------------- journal */

void tp_journal_entry_clear(tp_journal_entry *e)
{
	if (!e)
		return;
	free(e->address);
	free(e->action);
	free(e->token);
	free(e->spec_hash);
	free(e->status);
	free(e->error);
	memset(e, 0, sizeof(*e));
}

/* The INSERT of a pending journal row (no transaction check: the callers' business). */
static int journal_insert(int64_t *out_id, tp_state *s, int64_t run_id, const char *address,
			  const char *action, const char *token, const char *spec_hash)
{
	sqlite3_stmt *st = NULL;
	int rc, brc = SQLITE_OK;

	*out_id = 0;
	if (!address || !*address || !action || !*action || !token || !*token)
		return tp_error_set(
		    TP_EINVALID, "state: a journal entry needs an address, an action and a token");
	rc = tp_state_prepare(&st, s,
			      "INSERT INTO journal (run_id, address, action, token, spec_hash, "
			      "status, attempts, started_ms) "
			      "VALUES (?1, ?2, ?3, ?4, ?5, 'pending', 1, ?6)");
	if (rc < 0)
		goto done;
	tp_state_bind_i64(&brc, st, 1, run_id);
	tp_state_bind_text(&brc, st, 2, address);
	tp_state_bind_text(&brc, st, 3, action);
	tp_state_bind_text(&brc, st, 4, token);
	tp_state_bind_text(&brc, st, 5, spec_hash);
	tp_state_bind_i64(&brc, st, 6, tp_clock_now_ms());
	if (brc == SQLITE_OK)
		brc = sqlite3_step(st);
	if (brc == SQLITE_CONSTRAINT_FOREIGNKEY)
		rc = tp_error_set(TP_ENOTFOUND, "state: journal entry for %s: no run %lld", address,
				  (long long)run_id);
	else if (brc != SQLITE_DONE)
		rc = tp_state_fail(s, brc, "journal %s of %s", action, address);
	else
		*out_id = (int64_t)sqlite3_last_insert_rowid(s->db);
done:
	sqlite3_finalize(st);
	return rc;
}

int tp_state_journal_begin(int64_t *out_id, tp_state *s, int64_t run_id, const char *address,
			   const char *action, const char *token, const char *spec_hash)
{
	*out_id = 0;
	/* the row must be durable before the provider call; inside a caller's transaction it
	 * would only become durable at that transaction's commit, maybe after the call */
	if (s->depth > 0)
		return tp_error_set(TP_EINVALID,
				    "state: journal_begin for %s inside an open transaction "
				    "(programming error: the journal row must be committed before "
				    "the provider call)",
				    address ? address : "(null)");
	return journal_insert(out_id, s, run_id, address, action, token, spec_hash);
}

int tp_state_journal_begin_create(int64_t *out_id, tp_state *s, int64_t run_id,
				  const tp_state_resource *provisional, const char *token,
				  const char *spec_hash)
{
	int rc;

	*out_id = 0;
	if (s->depth > 0)
		return tp_error_set(TP_EINVALID,
				    "state: journal_begin_create for %s inside an open transaction "
				    "(programming error: both rows must be committed before the "
				    "provider call)",
				    provisional->address ? provisional->address : "(null)");
	if ((rc = tp_state_begin(s)) < 0)
		return rc;
	rc = tp_state_resource_put(s, provisional);
	if (rc == 0)
		rc = journal_insert(out_id, s, run_id, provisional->address, "create", token,
				    spec_hash);
	if (rc == 0)
		rc = tp_state_commit(s);
	else
		tp_state_rollback(s);
	if (rc < 0)
		*out_id = 0;
	return rc;
}

int tp_state_journal_complete(tp_state *s, int64_t id, const char *status, const char *error)
{
	sqlite3_stmt *st = NULL;
	int rc, brc = SQLITE_OK;

	if (!status || (strcmp(status, "done") != 0 && strcmp(status, "failed") != 0))
		return tp_error_set(TP_EINVALID,
				    "state: journal entry %lld: status must be \"done\" or "
				    "\"failed\" (got \"%s\")",
				    (long long)id, status ? status : "(null)");
	rc = tp_state_prepare(&st, s,
			      "UPDATE journal SET status = ?2, error = ?3, ended_ms = ?4 "
			      "WHERE id = ?1 AND status = 'pending'");
	if (rc < 0)
		goto done;
	tp_state_bind_i64(&brc, st, 1, id);
	tp_state_bind_text(&brc, st, 2, status);
	tp_state_bind_text(&brc, st, 3, error);
	tp_state_bind_i64(&brc, st, 4, tp_clock_now_ms());
	if (brc == SQLITE_OK)
		brc = sqlite3_step(st);
	if (brc != SQLITE_DONE)
		rc = tp_state_fail(s, brc, "complete journal entry %lld", (long long)id);
	else if (sqlite3_changes(s->db) == 0)
		rc = explain_no_change(s, "SELECT 1 FROM journal WHERE id = ?1", id,
				       "journal entry", "is already completed");
done:
	sqlite3_finalize(st);
	return rc;
}

int tp_state_journal_attempt(tp_state *s, int64_t id)
{
	sqlite3_stmt *st = NULL;
	int rc, brc = SQLITE_OK;

	rc = tp_state_prepare(&st, s,
			      "UPDATE journal SET attempts = attempts + 1 "
			      "WHERE id = ?1 AND status = 'pending'");
	if (rc < 0)
		goto done;
	tp_state_bind_i64(&brc, st, 1, id);
	if (brc == SQLITE_OK)
		brc = sqlite3_step(st);
	if (brc != SQLITE_DONE)
		rc = tp_state_fail(s, brc, "count an attempt of journal entry %lld", (long long)id);
	else if (sqlite3_changes(s->db) == 0)
		rc = explain_no_change(s, "SELECT 1 FROM journal WHERE id = ?1", id,
				       "journal entry", "is already completed");
done:
	sqlite3_finalize(st);
	return rc;
}

int tp_state_journal_pending(tp_journal_entry **out, size_t *n, tp_state *s)
{
	sqlite3_stmt *st = NULL;
	tp_journal_entry *items = NULL;
	size_t len = 0, cap = 0;
	int rc, src;

	*out = NULL;
	*n = 0;
	rc = tp_state_prepare(&st, s,
			      "SELECT id, run_id, address, action, token, spec_hash, status, "
			      "attempts, error, started_ms, ended_ms FROM journal "
			      "WHERE status = 'pending' ORDER BY id");
	if (rc < 0)
		goto done;
	while ((src = sqlite3_step(st)) == SQLITE_ROW) {
		tp_journal_entry *e;
		if (len == cap) {
			cap = cap ? cap * 2 : 8;
			items = tp_realloc(items, cap * sizeof(*items));
		}
		e = &items[len++];
		e->id = (int64_t)sqlite3_column_int64(st, 0);
		e->run_id = (int64_t)sqlite3_column_int64(st, 1);
		e->address = tp_state_column_strdup(st, 2);
		e->action = tp_state_column_strdup(st, 3);
		e->token = tp_state_column_strdup(st, 4);
		e->spec_hash = tp_state_column_strdup(st, 5);
		e->status = tp_state_column_strdup(st, 6);
		e->attempts = sqlite3_column_int(st, 7);
		e->error = tp_state_column_strdup(st, 8);
		e->started_ms = (int64_t)sqlite3_column_int64(st, 9);
		e->ended_ms = (int64_t)sqlite3_column_int64(st, 10);
	}
	if (src != SQLITE_DONE)
		rc = tp_state_fail(s, src, "list pending journal entries");
done:
	sqlite3_finalize(st);
	if (rc < 0) {
		for (size_t i = 0; i < len; i++)
			tp_journal_entry_clear(&items[i]);
		free(items);
	} else {
		*out = items;
		*n = len;
	}
	return rc;
}

/* ---------------------------------------------------------------- events */

int tp_state_event_add(tp_state *s, int64_t run_id, const char *address, const char *level,
		       const char *type, const char *message)
{
	sqlite3_stmt *st = NULL;
	int rc, brc = SQLITE_OK;

	if (!level || (strcmp(level, "info") != 0 && strcmp(level, "warn") != 0 &&
		       strcmp(level, "error") != 0))
		return tp_error_set(TP_EINVALID,
				    "state: event level must be info, warn or error (got \"%s\")",
				    level ? level : "(null)");
	if (!type || !*type || !message)
		return tp_error_set(TP_EINVALID, "state: an event needs a type and a message");
	if (run_id < 0)
		return tp_error_set(TP_EINVALID, "state: event run id %lld is negative",
				    (long long)run_id);
	rc = tp_state_prepare(&st, s,
			      "INSERT INTO events (ts_ms, run_id, address, level, type, message) "
			      "VALUES (?1, ?2, ?3, ?4, ?5, ?6)");
	if (rc < 0)
		goto done;
	tp_state_bind_i64(&brc, st, 1, tp_clock_now_ms());
	if (run_id > 0)
		tp_state_bind_i64(&brc, st, 2, run_id);
	else
		tp_state_bind_text(&brc, st, 2, NULL);
	tp_state_bind_text(&brc, st, 3, address);
	tp_state_bind_text(&brc, st, 4, level);
	tp_state_bind_text(&brc, st, 5, type);
	tp_state_bind_text(&brc, st, 6, message);
	if (brc == SQLITE_OK)
		brc = sqlite3_step(st);
	if (brc == SQLITE_CONSTRAINT_FOREIGNKEY)
		rc = tp_error_set(TP_ENOTFOUND, "state: event %s: no run %lld", type,
				  (long long)run_id);
	else if (brc != SQLITE_DONE)
		rc = tp_state_fail(s, brc, "record event %s", type);
done:
	sqlite3_finalize(st);
	return rc;
}

int tp_state_events_list(json_t **out, tp_state *s, const char *address, int limit)
{
	sqlite3_stmt *st = NULL;
	json_t *list = NULL;
	int rc, src, brc = SQLITE_OK;

	*out = NULL;
	rc = check_limit(limit, "list events");
	if (rc < 0)
		return rc;
	/* two statements rather than "?2 IS NULL OR address = ?2", which cannot use the index */
	rc = tp_state_prepare(&st, s,
			      address ? "SELECT id, ts_ms, run_id, address, level, type, message "
					"FROM events WHERE address = ?2 ORDER BY id DESC LIMIT ?1"
				      : "SELECT id, ts_ms, run_id, address, level, type, message "
					"FROM events ORDER BY id DESC LIMIT ?1");
	if (rc < 0)
		goto done;
	tp_state_bind_i64(&brc, st, 1, limit);
	if (address)
		tp_state_bind_text(&brc, st, 2, address);
	if (brc != SQLITE_OK) {
		rc = tp_state_fail(s, brc, "list events");
		goto done;
	}
	list = json_array();
	while ((src = sqlite3_step(st)) == SQLITE_ROW)
		json_array_append_new(
		    list,
		    json_pack("{s:I,s:I,s:o,s:o,s:o,s:o,s:o}", "id",
			      (json_int_t)sqlite3_column_int64(st, 0), "ts_ms",
			      (json_int_t)sqlite3_column_int64(st, 1), "run",
			      column_int_or_null(st, 2), "address", column_str_or_null(st, 3),
			      "level", column_str_or_null(st, 4), "type", column_str_or_null(st, 5),
			      "message", column_str_or_null(st, 6)));
	if (src != SQLITE_DONE)
		rc = tp_state_fail(s, src, "list events");
done:
	sqlite3_finalize(st);
	if (rc < 0)
		json_decref(list);
	else
		*out = list;
	return rc;
}

/* ---------------------------------------------------------------- retention */

/*
 * The runs a prune deletes (?1: how many to keep, ?2: the commit last applied or NULL): past
 * the newest ?1 by id, and none that recovery or the status still needs — a run with a pending
 * journal row, the newest run of the applied commit, a run not ended and newer than every ended
 * one (in progress). Each subquery is a probe of an index or of the rowid's end.
 */
#define DOOMED_RUNS                                                                                \
	"SELECT id FROM runs WHERE id <= (SELECT max(id) FROM runs) - ?1 "                         \
	"AND id NOT IN (SELECT run_id FROM journal WHERE status = 'pending') "                     \
	"AND id IS NOT (SELECT max(id) FROM runs WHERE revision = ?2) "                            \
	"AND (ended_ms IS NOT NULL OR id < coalesce((SELECT id FROM runs WHERE ended_ms IS NOT "   \
	"NULL ORDER BY id DESC LIMIT 1), 0))"

/* The revisions a prune deletes (?1: how many to keep): older than the newest ?1 by seq, but
 * never the last applied one. */
#define OLD_REVISIONS                                                                              \
	"DELETE FROM revisions WHERE seq < (SELECT seq FROM revisions ORDER BY seq DESC LIMIT 1 "  \
	"OFFSET ?1 - 1) AND seq IS NOT (SELECT max(seq) FROM revisions WHERE result = 'applied')"

/* Runs one DELETE with ?1 bound to an integer and ?2 (when the statement has it) to text, and
 * adds the rows it deleted to *count. */
static int prune_step(int64_t *count, tp_state *s, const char *sql, int64_t arg, const char *text,
		      const char *what)
{
	sqlite3_stmt *st = NULL;
	int rc, brc = SQLITE_OK;

	rc = tp_state_prepare(&st, s, sql);
	if (rc < 0)
		goto done;
	tp_state_bind_i64(&brc, st, 1, arg);
	if (sqlite3_bind_parameter_count(st) >= 2)
		tp_state_bind_text(&brc, st, 2, text);
	if (brc == SQLITE_OK)
		brc = sqlite3_step(st);
	if (brc != SQLITE_DONE) {
		rc = tp_state_fail(s, brc, "prune %s", what);
		goto done;
	}
	*count += (int64_t)sqlite3_changes(s->db);
done:
	sqlite3_finalize(st);
	return rc;
}

static int check_keep(int64_t v, const char *what)
{
	if (v < 1 || v > TP_STATE_KEEP_MAX)
		return tp_error_set(TP_EINVALID, "state: keep %s: expected 1 to %d, got %lld", what,
				    TP_STATE_KEEP_MAX, (long long)v);
	return 0;
}

int tp_state_prune(tp_state_pruned *out, tp_state *s, const tp_state_retention *keep)
{
	tp_state_pruned n = {0};
	char *applied = NULL;
	bool in_tx = false;
	int rc;

	if (out)
		memset(out, 0, sizeof(*out));
	if ((rc = check_keep(keep->runs, "runs")) < 0 ||
	    (rc = check_keep(keep->revisions, "revisions")) < 0 ||
	    (rc = check_keep(keep->events, "events")) < 0)
		return rc;
	if (keep->event_age_ms < 0)
		return tp_error_set(TP_EINVALID, "state: keep events: a negative age (%lld ms)",
				    (long long)keep->event_age_ms);
	if ((rc = tp_state_begin(s)) < 0)
		goto done;
	in_tx = true;
	rc = tp_state_revision_last_applied(&applied, s);
	if (rc == TP_ENOTFOUND) {
		tp_error_clear();
		rc = 0;
	}
	/* a run's events and journal rows first: they refer to it */
	if (rc < 0 ||
	    (rc = prune_step(&n.events, s, "DELETE FROM events WHERE run_id IN (" DOOMED_RUNS ")",
			     keep->runs, applied, "the events of old runs")) < 0 ||
	    (rc = prune_step(&n.journal, s,
			     "DELETE FROM journal WHERE status <> 'pending' AND run_id IN "
			     "(" DOOMED_RUNS ")",
			     keep->runs, applied, "the journal of old runs")) < 0 ||
	    (rc = prune_step(&n.runs, s, "DELETE FROM runs WHERE id IN (" DOOMED_RUNS ")",
			     keep->runs, applied, "old runs")) < 0 ||
	    (rc = prune_step(&n.events, s,
			     "DELETE FROM events WHERE id <= (SELECT max(id) FROM events) - ?1",
			     keep->events, NULL, "old events")) < 0)
		goto done;
	if (keep->event_age_ms > 0 &&
	    (rc = prune_step(&n.events, s, "DELETE FROM events WHERE ts_ms < ?1",
			     tp_clock_now_ms() - keep->event_age_ms, NULL, "expired events")) < 0)
		goto done;
	/* seq is renumbered when a commit is recorded again, so it has gaps: the cut is the seq
	 * of the keep-th newest row, found by walking its index */
	if ((rc = prune_step(&n.revisions, s, OLD_REVISIONS, keep->revisions, NULL,
			     "old revisions")) < 0)
		goto done;
	in_tx = false;
	rc = tp_state_commit(s);
done:
	if (in_tx)
		tp_state_rollback(s);
	if (rc == 0 && out)
		*out = n;
	free(applied);
	return rc;
}
