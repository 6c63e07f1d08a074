/*
 * state/resources.c — the "last applied" side of the three-way diff: one row per managed
 * object with the normalised spec Tapestry last wrote, secret fingerprints, outputs that feed
 * references, and the last observed live spec. The diff reads these rows, the apply engine
 * writes them after each successful provider call. JSON members are stored as canonical text
 * (NULL json_t ↔ SQL NULL, so a stored JSON null stays distinguishable from "absent").
 */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

#define RESOURCE_COLUMNS                                                                           \
	"address, kind, name, provider_id, applied, secret_hashes, outputs, observed, lifecycle, " \
	"deps, spec_hash, status, revision, created_ms, updated_ms, observed_ms"

void tp_state_resource_clear(tp_state_resource *r)
{
	if (!r)
		return;
	free(r->address);
	free(r->kind);
	free(r->name);
	free(r->provider_id);
	json_decref(r->applied);
	json_decref(r->secret_hashes);
	json_decref(r->outputs);
	json_decref(r->observed);
	json_decref(r->lifecycle);
	json_decref(r->deps);
	free(r->spec_hash);
	free(r->status);
	free(r->revision);
	memset(r, 0, sizeof(*r));
}

void tp_state_resources_free(tp_state_resources *l)
{
	if (!l)
		return;
	for (size_t i = 0; i < l->len; i++)
		tp_state_resource_clear(&l->items[i]);
	free(l->items);
	l->items = NULL;
	l->len = 0;
}

/* Decodes the current row of a SELECT RESOURCE_COLUMNS statement. */
static int row_to_resource(tp_state_resource *out, tp_state *s, sqlite3_stmt *st)
{
	char *row = NULL;
	int rc = 0;

	memset(out, 0, sizeof(*out));
	out->address = tp_state_column_strdup(st, 0);
	out->kind = tp_state_column_strdup(st, 1);
	out->name = tp_state_column_strdup(st, 2);
	out->provider_id = tp_state_column_strdup(st, 3);
	out->spec_hash = tp_state_column_strdup(st, 10);
	out->status = tp_state_column_strdup(st, 11);
	out->revision = tp_state_column_strdup(st, 12);
	out->created_ms = (int64_t)sqlite3_column_int64(st, 13);
	out->updated_ms = (int64_t)sqlite3_column_int64(st, 14);
	out->observed_ms = (int64_t)sqlite3_column_int64(st, 15);

	row = tp_sprintf("resource %s", out->address ? out->address : "(null)");
	rc = tp_state_column_json(&out->applied, s, st, 4, row);
	if (rc == 0)
		rc = tp_state_column_json(&out->secret_hashes, s, st, 5, row);
	if (rc == 0)
		rc = tp_state_column_json(&out->outputs, s, st, 6, row);
	if (rc == 0)
		rc = tp_state_column_json(&out->observed, s, st, 7, row);
	if (rc == 0)
		rc = tp_state_column_json(&out->lifecycle, s, st, 8, row);
	if (rc == 0)
		rc = tp_state_column_json(&out->deps, s, st, 9, row);
	if (rc < 0)
		tp_state_resource_clear(out);
	free(row);
	return rc;
}

int tp_state_resources_list(tp_state_resources *out, tp_state *s)
{
	sqlite3_stmt *st = NULL;
	tp_state_resources l = {NULL, 0};
	size_t cap = 0;
	int rc, src;

	out->items = NULL;
	out->len = 0;
	rc =
	    tp_state_prepare(&st, s, "SELECT " RESOURCE_COLUMNS " FROM resources ORDER BY address");
	if (rc < 0)
		goto done;
	while ((src = sqlite3_step(st)) == SQLITE_ROW) {
		if (l.len == cap) {
			cap = cap ? cap * 2 : 16;
			l.items = tp_realloc(l.items, cap * sizeof(*l.items));
		}
		rc = row_to_resource(&l.items[l.len], s, st);
		if (rc < 0)
			goto done;
		l.len++;
	}
	if (src != SQLITE_DONE)
		rc = tp_state_fail(s, src, "list resources");
done:
	sqlite3_finalize(st);
	if (rc < 0)
		tp_state_resources_free(&l);
	else
		*out = l;
	return rc;
}

int tp_state_resource_get(tp_state_resource *out, tp_state *s, const char *address)
{
	sqlite3_stmt *st = NULL;
	int rc, src, brc = SQLITE_OK;

	memset(out, 0, sizeof(*out));
	if (!address)
		return tp_error_set(TP_EINVALID, "state: resource_get needs an address");
	rc = tp_state_prepare(&st, s,
			      "SELECT " RESOURCE_COLUMNS " FROM resources WHERE address = ?1");
	if (rc < 0)
		goto done;
	tp_state_bind_text(&brc, st, 1, address);
	if (brc != SQLITE_OK) {
		rc = tp_state_fail(s, brc, "read resource %s", address);
		goto done;
	}
	src = sqlite3_step(st);
	if (src == SQLITE_ROW)
		rc = row_to_resource(out, s, st);
	else if (src == SQLITE_DONE)
		rc = tp_error_set(TP_ENOTFOUND, "state: no resource %s", address);
	else
		rc = tp_state_fail(s, src, "read resource %s", address);
done:
	sqlite3_finalize(st);
	return rc;
}

/* The address is the primary key and the diff splits it back into kind and name: keep them
 * consistent here rather than discover a mismatch later. */
static int validate_resource(const tp_state_resource *r)
{
	size_t klen;

	if (!r->address || !r->kind || !r->name || !*r->kind || !*r->name)
		return tp_error_set(TP_EINVALID,
				    "state: a resource needs an address, a kind and a name");
	klen = strlen(r->kind);
	if (strncmp(r->address, r->kind, klen) != 0 || r->address[klen] != '/' ||
	    strcmp(r->address + klen + 1, r->name) != 0)
		return tp_error_set(TP_EINVALID,
				    "state: resource address \"%s\" is not kind/name (\"%s/%s\")",
				    r->address, r->kind, r->name);
	if (!r->status || !*r->status)
		return tp_error_set(TP_EINVALID, "state: resource %s has no status", r->address);
	if (r->observed_ms < 0)
		return tp_error_set(TP_EINVALID, "state: resource %s has a negative observed_ms",
				    r->address);
	return 0;
}

int tp_state_resource_put(tp_state *s, const tp_state_resource *r)
{
	sqlite3_stmt *st = NULL;
	int64_t now = tp_clock_now_ms();
	int rc, brc = SQLITE_OK;

	rc = validate_resource(r);
	if (rc < 0)
		return rc;
	/* one statement, so the created_ms of an existing row is kept atomically */
	rc = tp_state_prepare(
	    &st, s,
	    "INSERT INTO resources (" RESOURCE_COLUMNS ") "
	    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, "
	    "?14, ?15) "
	    "ON CONFLICT (address) DO UPDATE SET "
	    "kind = excluded.kind, name = excluded.name, "
	    "provider_id = excluded.provider_id, applied = excluded.applied, "
	    "secret_hashes = excluded.secret_hashes, outputs = excluded.outputs, "
	    "observed = excluded.observed, lifecycle = excluded.lifecycle, "
	    "deps = excluded.deps, spec_hash = excluded.spec_hash, "
	    "status = excluded.status, revision = excluded.revision, "
	    "updated_ms = excluded.updated_ms, observed_ms = excluded.observed_ms");
	if (rc < 0)
		goto done;
	tp_state_bind_text(&brc, st, 1, r->address);
	tp_state_bind_text(&brc, st, 2, r->kind);
	tp_state_bind_text(&brc, st, 3, r->name);
	tp_state_bind_text(&brc, st, 4, r->provider_id);
	tp_state_bind_json(&brc, st, 5, r->applied);
	tp_state_bind_json(&brc, st, 6, r->secret_hashes);
	tp_state_bind_json(&brc, st, 7, r->outputs);
	tp_state_bind_json(&brc, st, 8, r->observed);
	tp_state_bind_json(&brc, st, 9, r->lifecycle);
	tp_state_bind_json(&brc, st, 10, r->deps);
	tp_state_bind_text(&brc, st, 11, r->spec_hash);
	tp_state_bind_text(&brc, st, 12, r->status);
	tp_state_bind_text(&brc, st, 13, r->revision);
	tp_state_bind_i64(&brc, st, 14, now);
	tp_state_bind_i64(&brc, st, 15, r->observed_ms);
	if (brc == SQLITE_OK)
		brc = sqlite3_step(st);
	if (brc != SQLITE_DONE)
		rc = tp_state_fail(s, brc, "write resource %s", r->address);
done:
	sqlite3_finalize(st);
	return rc;
}

int tp_state_resource_delete(tp_state *s, const char *address)
{
	sqlite3_stmt *st = NULL;
	int rc, brc = SQLITE_OK;

	if (!address)
		return tp_error_set(TP_EINVALID, "state: resource_delete needs an address");
	rc = tp_state_prepare(&st, s, "DELETE FROM resources WHERE address = ?1");
	if (rc < 0)
		goto done;
	tp_state_bind_text(&brc, st, 1, address);
	if (brc == SQLITE_OK)
		brc = sqlite3_step(st);
	if (brc != SQLITE_DONE)
		rc = tp_state_fail(s, brc, "delete resource %s", address);
	else if (sqlite3_changes(s->db) == 0)
		rc = tp_error_set(TP_ENOTFOUND, "state: no resource %s to delete", address);
done:
	sqlite3_finalize(st);
	return rc;
}
