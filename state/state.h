/*
 * state — the SQLite store: what Tapestry last applied, what it last observed, and the
 * history of what it did. The only place in the code base that speaks SQL.
 *
 * One database file per pipeline installation, created mode 0600, WAL journal, foreign keys
 * on, a busy timeout, and schema migrations keyed by PRAGMA user_version that run at open (a
 * database written by a newer Tapestry is refused, never downgraded). Tables: resources,
 * revisions, runs, journal, events, cache, lock, meta.
 *
 * Secrets never enter this store: applied specs keep ${secret:...} references as text, and
 * resolved secret values are kept only as HMAC-SHA256 fingerprints keyed with the
 * installation key (a separate 0600 file next to the database, see tp_state_secret_key).
 *
 * History (revisions, runs with their plans and journal rows, events) is kept within limits:
 * tp_state_prune, run after each sync, deletes what is past them (see "retention" below).
 *
 * Ownership: every struct returned through `out` belongs to the caller and is released with
 * its _free (which accepts NULL). json_t members are owned references.
 *
 * Threads: a handle is used by one thread at a time (its transaction depth is per handle).
 * Threads that write concurrently open a handle each; SQLite serialises their writes, waiting
 * up to the busy timeout. Every write fails with TP_ECONFLICT when another process holds the
 * database locked past that timeout.
 */
#ifndef TP_STATE_H
#define TP_STATE_H

#include "../util/util.h"

#define TP_STATE_SCHEMA_VERSION 3
#define TP_STATE_BUSY_TIMEOUT_MS 5000 /* wait this long for another writer, then TP_ECONFLICT */

typedef struct tp_state tp_state;

typedef enum {
	TP_STATE_READWRITE, /* create when missing (parent directory must exist), migrate */
	TP_STATE_READONLY   /* never create or migrate; a missing file is TP_ENOTFOUND */
} tp_state_mode;

/*
 * Opens the state database at path.
 * Errors (message always names the path and says what to do):
 *  - TP_ENOTFOUND: the parent directory does not exist (READWRITE), or the file does not
 *    exist or is still empty (READONLY: callers treat that as "nothing managed yet").
 *  - TP_EINVALID: the file is not an SQLite database, or is one that Tapestry did not create
 *    (foreign tables and no Tapestry meta row), or its schema is newer than this binary; in
 *    READONLY mode also a schema older than this binary (a read-write open migrates it).
 *  - TP_ECONFLICT: another process holds the database locked past the busy timeout (a
 *    READWRITE open takes the write lock briefly, to migrate or to check there is nothing to).
 * A failed open leaves the file byte-for-byte as it was.
 */
int tp_state_open(tp_state **out, const char *path, tp_state_mode mode);
void tp_state_close(tp_state *s);
const char *tp_state_path(const tp_state *s);

/*
 * Transactions (nestable: only the outermost begin/commit touch SQLite). The outermost begin
 * takes the write lock at once (BEGIN IMMEDIATE; TP_ECONFLICT past the busy timeout). A
 * rollback at an inner level cannot undo part of the work: it marks the transaction so that the
 * outermost commit rolls everything back and fails (TP_ERROR). Commit without begin is
 * TP_EINVALID. Do not hold a transaction across a provider call: see the journal below.
 */
int tp_state_begin(tp_state *s);
int tp_state_commit(tp_state *s);
/* Begins a transaction whose commit does not wait for the disk (synchronous NORMAL for it
 * alone): it survives a crash of the process at once, and power loss from the next ordinary
 * commit on (which flushes the log with everything before it). For what recovery can rebuild
 * by observing, such as an action's outcome while its journal entry is durable. Nested in an
 * open transaction it is an ordinary begin. Commit and roll back as usual. */
int tp_state_begin_lazy(tp_state *s);
void tp_state_rollback(tp_state *s);

/*
 * The installation key for secret fingerprints: 32 random bytes in "<path>.key" (mode 0600),
 * created on first use in READWRITE mode. TP_ENOTFOUND in READONLY mode when absent.
 */
int tp_state_secret_key(tp_state *s, uint8_t out[32]);

/* ---------------------------------------------------------------- resources */

typedef struct {
	char *address;       /* "kind/name" (primary key) */
	char *kind;
	char *name;
	char *provider_id;   /* the object's id at the provider, or NULL */
	json_t *applied;     /* normalised spec last applied; secret references as text */
	json_t *secret_hashes; /* {"<spec path>": "<hex hmac>"} of resolved sensitive values */
	json_t *outputs;     /* {"id": ..., "outputs.BucketName": ...}: feed references */
	json_t *observed;    /* last observed live spec (normalised, masked) or NULL */
	json_t *lifecycle;   /* {"prevent_destroy":b,"deletion":"delete"|"retain",
				 "ignore_changes":[..]} as of last apply */
	json_t *deps;        /* ["kind/name", ...] as of last apply: delete order */
	char *spec_hash;     /* hex sha256 of the canonical applied spec */
	char *status;        /* "ready", "creating" (a create in flight or interrupted: see
				TP_STATUS_CREATING), "adopted", ... */
	char *revision;      /* commit that was applied, or NULL */
	int64_t created_ms;
	int64_t updated_ms;
	int64_t observed_ms; /* 0 when never observed */
} tp_state_resource;

/* A provisional row written before a create call: recovery adopts or drops it. */
#define TP_STATUS_CREATING "creating"

typedef struct {
	tp_state_resource *items;
	size_t len;
} tp_state_resources;

/* Frees the members (not the struct itself, which is usually an array element). */
void tp_state_resource_clear(tp_state_resource *r);
void tp_state_resources_free(tp_state_resources *l);

/* All resources, sorted by address. */
int tp_state_resources_list(tp_state_resources *out, tp_state *s);
/* TP_ENOTFOUND when absent. */
int tp_state_resource_get(tp_state_resource *out, tp_state *s, const char *address);
/* Insert or replace by address. address must be "<kind>/<name>" and status non-empty
 * (TP_EINVALID). The store stamps the times from the util clock: created_ms is now for a new
 * row and kept when the row exists, updated_ms is now; the caller's created_ms/updated_ms are
 * ignored, its observed_ms is stored. NULL json members are stored as NULL (and read back as
 * NULL; a json null reads back as json null). */
int tp_state_resource_put(tp_state *s, const tp_state_resource *r);
/* TP_ENOTFOUND when absent. */
int tp_state_resource_delete(tp_state *s, const char *address);

/* ---------------------------------------------------------------- revisions and runs */

/* Records that a commit was seen (idempotent) and its outcome: result is "applied",
 * "invalid", "failed", "skipped" (pipeline path untouched), ...; detail may be NULL. */
int tp_state_revision_record(tp_state *s, const char *commit, const char *tree,
			     const char *result, const char *detail);
/* The most recently recorded revision with result "applied", or TP_ENOTFOUND. out is a new
 * string. */
int tp_state_revision_last_applied(char **out, tp_state *s);

/* A run is one reconcile: trigger is "poll", "webhook", "drift", "cli", ... */
int tp_state_run_begin(int64_t *out_id, tp_state *s, const char *revision, const char *trigger);
/* result: "succeeded", "partial", "failed", "no-op"; counts e.g. {"created":1,...} or NULL.
 * TP_ENOTFOUND for an unknown id, TP_EINVALID for a run that already ended. */
int tp_state_run_end(tp_state *s, int64_t id, const char *result, const json_t *counts);
/* Newest first, at most limit (> 0, else TP_EINVALID). A new array of objects:
 *   {"id": int, "revision": str|null, "trigger": str, "started_ms": int (ms since the epoch),
 *    "ended_ms": int|null (null while running), "result": str|null, "counts": object|null} */
int tp_state_runs_list(json_t **out, tp_state *s, int limit);

/* Stores the plan a run carried out (plan JSON format 1.0, already redacted). */
int tp_state_run_set_plan(tp_state *s, int64_t id, const json_t *plan);
/* One run with its plan and journal: {"run": {as in tp_state_runs_list}, "plan": obj|null,
 * "journal": [{"id","address","action","status","attempts","error","started_ms",
 * "ended_ms"}]}. TP_ENOTFOUND when there is no such run. */
int tp_state_run_get(json_t **out, tp_state *s, int64_t id);

/* ---------------------------------------------------------------- journal */

/*
 * Write-ahead journal of provider calls: a row is committed (durably, outside any open
 * transaction) BEFORE the write call and completed after it, so a crash leaves a "pending" row
 * that start-up resolves by observing.
 */
typedef struct {
	int64_t id;
	int64_t run_id;
	char *address;
	char *action;   /* "create", "update", "delete", ... */
	char *token;    /* idempotency token sent to the provider */
	char *spec_hash;
	char *status;   /* "pending", "done", "failed" */
	int attempts;
	char *error;
	int64_t started_ms, ended_ms;
} tp_journal_entry;

void tp_journal_entry_clear(tp_journal_entry *e);

/* Commits a "pending" row with attempts = 1 in its own transaction. Calling it while a
 * transaction is open on s is a programming error: TP_EINVALID. TP_ENOTFOUND for an unknown
 * run_id. */
int tp_state_journal_begin(int64_t *out_id, tp_state *s, int64_t run_id, const char *address,
			   const char *action, const char *token, const char *spec_hash);
/* A create's provisional row (status "creating") and its pending journal entry in one
 * transaction, committed (durable) when this returns 0: one commit instead of two before the
 * provider call. Refused inside an open transaction, like journal_begin. */
int tp_state_journal_begin_create(int64_t *out_id, tp_state *s, int64_t run_id,
				  const tp_state_resource *provisional, const char *token,
				  const char *spec_hash);
/* status "done" or "failed"; error may be NULL. Increments nothing. TP_ENOTFOUND for an
 * unknown id, TP_EINVALID for an entry that is no longer pending (also for _attempt). */
int tp_state_journal_complete(tp_state *s, int64_t id, const char *status, const char *error);
/* Adds one to attempts (a retry of the same call with the same token). */
int tp_state_journal_attempt(tp_state *s, int64_t id);
/* Pending rows, oldest first. *out is an array of *n entries; free each with
 * tp_journal_entry_clear and the array with free(). */
int tp_state_journal_pending(tp_journal_entry **out, size_t *n, tp_state *s);

/* ---------------------------------------------------------------- events */

/* level: "info" | "warn" | "error"; type e.g. "drift", "applied", "invalid-revision". Never
 * pass secret values. address and run_id (0) are optional. */
int tp_state_event_add(tp_state *s, int64_t run_id, const char *address, const char *level,
		       const char *type, const char *message);
/* Newest first, at most limit (> 0); address filter optional (NULL: all). A new array of:
 *   {"id": int, "ts_ms": int (ms since the epoch), "run": int|null, "address": str|null,
 *    "level": str, "type": str, "message": str} */
int tp_state_events_list(json_t **out, tp_state *s, const char *address, int limit);

/* ---------------------------------------------------------------- retention */

/*
 * How much history the store keeps. Without limits a controller running for months grows its
 * state file (and the page cache reading it) with every commit seen, every run and every event.
 * Defaults: the newest 1,000 runs (a run exists only when a sync changed something, so this is
 * months of changes for a busy pipeline; each run carries its plan), the newest 1,000
 * revisions (every commit seen, refused and skipped ones included), and the newest 10,000
 * events no older than 30 days (as Kubernetes and Flux expire events: they explain the recent
 * past; the runs are the long record).
 */
#define TP_STATE_KEEP_RUNS         1000
#define TP_STATE_KEEP_REVISIONS    1000
#define TP_STATE_KEEP_EVENTS       10000
#define TP_STATE_KEEP_EVENT_AGE_MS ((int64_t)30 * 24 * 60 * 60 * 1000)
#define TP_STATE_KEEP_MAX          100000000 /* the largest count limit accepted */

typedef struct {
	int64_t runs;         /* newest runs kept, 1..TP_STATE_KEEP_MAX */
	int64_t revisions;    /* newest revisions kept, 1..TP_STATE_KEEP_MAX */
	int64_t events;       /* newest events kept, 1..TP_STATE_KEEP_MAX */
	int64_t event_age_ms; /* events older than this are deleted; 0: no age limit */
} tp_state_retention;

/* Designated initialiser with the defaults above. */
#define TP_STATE_RETENTION_DEFAULT                                                                 \
	{                                                                                          \
		.runs = TP_STATE_KEEP_RUNS, .revisions = TP_STATE_KEEP_REVISIONS,                  \
		.events = TP_STATE_KEEP_EVENTS, .event_age_ms = TP_STATE_KEEP_EVENT_AGE_MS         \
	}

/* Rows one prune deleted, per table. */
typedef struct {
	int64_t runs, journal, events, revisions;
} tp_state_pruned;

/*
 * Deletes the history past keep, in one transaction (nested in the caller's when one is open).
 *  - runs older than the newest keep->runs, each with its journal rows and events; never a run
 *    with a pending journal row (recovery resolves it), the newest run of the revision last
 *    applied, or a run that has not ended and is newer than every ended one (in progress; an
 *    older unended run was interrupted and is history like the rest).
 *  - events older than the newest keep->events or than keep->event_age_ms (util clock).
 *  - revisions older than the newest keep->revisions ("newest": most recently recorded),
 *    never the one tp_state_revision_last_applied returns.
 * Runs and events are counted by id, which is assigned in order: at most keep->runs and
 * keep->events stay (fewer when rows among the newest were deleted as part of an older run).
 * Resources, meta, cache and the lock are never touched. Every delete is a range over the
 * rowid or an index, so a prune with nothing to do costs a few index probes (and a walk over
 * the newest revisions' seq index). out (may be NULL) receives the counts. TP_EINVALID for a
 * limit out of range.
 */
int tp_state_prune(tp_state_pruned *out, tp_state *s, const tp_state_retention *keep);

/* ---------------------------------------------------------------- cache */

/* Cached JSON with a time to live (> 0) (e.g. discovered Airbyte catalogs). Time from util
 * clock; an entry is expired once now >= put time + ttl. */
int tp_state_cache_put(tp_state *s, const char *key, const json_t *value, int64_t ttl_ms);
/* TP_ENOTFOUND when absent or expired. */
int tp_state_cache_get(json_t **out, tp_state *s, const char *key);

/* ---------------------------------------------------------------- lock */

/*
 * One controller per database: a single lock row with an owner string and a lease. acquire
 * succeeds when the row is free, expired, or already ours (renewing it); otherwise
 * TP_ECONFLICT with the holder and expiry in the message. Leases are judged with the util clock
 * (expired once now >= acquire time + lease_ms). release deletes the row when owner holds it
 * (even with an expired lease), succeeds when nobody holds it, and is TP_ECONFLICT when
 * another owner does.
 */
int tp_state_lock_acquire(tp_state *s, const char *owner, int64_t lease_ms);
int tp_state_lock_release(tp_state *s, const char *owner);
/* The current holder (new string) and lease end; TP_ENOTFOUND when the lock is free. */
int tp_state_lock_holder(char **owner, int64_t *expires_ms, tp_state *s);
/* Takes the lock from stale_owner (a holder known to be dead, e.g. a killed process on this
 * host) whatever its lease; TP_ECONFLICT when the holder is no longer stale_owner. */
int tp_state_lock_takeover(tp_state *s, const char *stale_owner, const char *owner,
			   int64_t lease_ms);

#endif
