/*
 * The apply engine: plan in, provider calls out, state and journal kept exact. Sits between
 * diff/ (which decides what to do) and the reconcilers (which know how to talk to an API).
 *
 * Scheduling: a pool of worker threads takes plan entries whose dependencies are done,
 * respecting each provider's concurrency limit; an entry whose dependency failed is skipped.
 * A replacement runs in two steps, as its order demands: the old object is deleted once the
 * objects that use it are gone (dependants replaced or deleted in the same plan: their old
 * objects first, in reverse dependency order), the new one is created once its dependencies
 * are done (forward order). So a connection on a replaced source is deleted before the source
 * and created after the new source.
 * Every write call is preceded by a committed journal row and followed by its completion and
 * the resource's new state row, so an interruption at any point leaves either a completed
 * record or a pending row that tp_engine_recover resolves by observing. The state handle is
 * used under the engine mutex (one thread at a time); provider calls run without it.
 */
#include "controller.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define ST_WAITING 0
#define ST_RUNNING 1
#define ST_DONE 2
#define ST_FAILED 3
#define ST_SKIPPED 4
#define ST_HALF 5 /* a replacement whose old object is deleted; the new one comes next */

typedef struct {
	const tp_provider *prov;
	void *session;
	bool opened;
	int open_rc;
	char *open_error;
	int inflight; /* changed under engine.mu with __atomic ops: sessions read it */
	int limit;
	int budget; /* retries left */
} prov_slot;

typedef struct {
	const tp_engine_opts *o;
	const tp_plan *plan;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	unsigned char *status;
	int64_t *started; /* when each entry's first step started (monotonic ms) */
	bool *evented;    /* its success event went into the transaction that recorded it */
	size_t **del_deps; /* replace entries: entries whose old objects must be deleted first */
	size_t *ndel_deps;
	size_t left;
	prov_slot *provs;
	size_t nprov;
	json_t *outputs; /* {address: outputs}: what references resolve to right now */
	uint8_t key[32];
	bool have_key;
	int64_t run_id;
	tp_engine_summary sum;
} engine;

/* ---------------------------------------------------------------- small helpers */

static int max_attempts(const tp_engine_opts *o)
{
	return o->max_attempts > 0 ? o->max_attempts : 5;
}

static void progress(const engine *e, const char *address, const char *action,
		     const char *phase, const char *detail)
{
	if (e->o->progress)
		e->o->progress(e->o->progress_ctx, address, action, phase, detail);
}

static void random_token(char out[33])
{
	uint8_t b[16];
	if (tp_random_bytes(b, sizeof(b)) < 0) {
		uint64_t r1 = tp_clock_rand_u64(), r2 = tp_clock_rand_u64();
		memcpy(b, &r1, 8);
		memcpy(b + 8, &r2, 8);
	}
	tp_hex_encode(out, b, sizeof(b));
}

static char *spec_hash(const json_t *spec)
{
	char *canon = tp_json_canonical(spec);
	uint8_t d[TP_SHA256_LEN];
	char hex[2 * TP_SHA256_LEN + 1];
	tp_sha256(d, canon, strlen(canon));
	tp_hex_encode(hex, d, sizeof(d));
	free(canon);
	return tp_strdup(hex);
}

static char *marker_for(const tp_pipeline *p, const char *address)
{
	return tp_sprintf("tapestry:%s:%s", p->name, address);
}

static const char *kind_of_address(char *buf, size_t n, const char *address)
{
	const char *slash = strchr(address, '/');
	size_t len = slash ? (size_t)(slash - address) : strlen(address);
	if (len >= n)
		len = n - 1;
	memcpy(buf, address, len);
	buf[len] = '\0';
	return buf;
}

/* ---------------------------------------------------------------- secrets */

static int substitute_secrets(char **out, const char *text)
{
	return tp_secret_substitute(out, text);
}

/* A copy of spec with secrets resolved; hashes (when not NULL) gets {path: hmac} for every
 * string that held a secret. The copy holds secret values: wipe_json it after use. */
static int resolve_secrets(json_t **out, const json_t *spec, const char *path,
			   const uint8_t *key, json_t *hashes)
{
	int rc = 0;
	*out = NULL;
	if (json_is_string(spec)) {
		const char *s = json_string_value(spec);
		char *v = NULL;
		if (!strstr(s, "${secret:")) {
			/* a copy: the result is wiped after use, and must not wipe the input */
			*out = json_stringn(s, json_string_length(spec));
			return 0;
		}
		if ((rc = substitute_secrets(&v, s)) < 0)
			return rc;
		if (hashes && key) {
			uint8_t mac[TP_SHA256_LEN];
			char hex[2 * TP_SHA256_LEN + 1];
			tp_hmac_sha256(mac, key, 32, v, strlen(v));
			tp_hex_encode(hex, mac, sizeof(mac));
			json_object_set_new(hashes, path, json_string(hex));
		}
		*out = json_string(v);
		tp_secret_free(v);
		return 0;
	}
	if (json_is_object(spec)) {
		const char *k;
		json_t *v;
		json_t *o = json_object();
		json_object_foreach((json_t *)(uintptr_t)spec, k, v) {
			char *sub = path[0] ? tp_sprintf("%s.%s", path, k) : tp_strdup(k);
			json_t *c = NULL;
			rc = resolve_secrets(&c, v, sub, key, hashes);
			free(sub);
			if (rc < 0) {
				json_decref(o);
				return rc;
			}
			json_object_set_new(o, k, c);
		}
		*out = o;
		return 0;
	}
	if (json_is_array(spec)) {
		size_t i;
		json_t *v;
		json_t *a = json_array();
		json_array_foreach(spec, i, v) {
			char *sub = tp_sprintf("%s%s%zu", path, path[0] ? "." : "", i);
			json_t *c = NULL;
			rc = resolve_secrets(&c, v, sub, key, hashes);
			free(sub);
			if (rc < 0) {
				json_decref(a);
				return rc;
			}
			json_array_append_new(a, c);
		}
		*out = a;
		return 0;
	}
	*out = json_deep_copy(spec);
	return 0;
}

/* Overwrites every string in a JSON value before it is released (secret values). */
static void wipe_json(json_t *v)
{
	const char *k;
	json_t *c;
	size_t i;
	if (!v)
		return;
	if (json_is_string(v) && json_string_length(v) > 0) {
		char *z = tp_calloc(json_string_length(v) + 1, 1);
		memset(z, 'x', json_string_length(v));
		json_string_set(v, z);
		free(z);
	} else if (json_is_object(v)) {
		json_object_foreach(v, k, c)
			wipe_json(c);
	} else if (json_is_array(v)) {
		json_array_foreach(v, i, c)
			wipe_json(c);
	}
}

/* op->interpolate: references with the current outputs, then secrets. */
typedef struct {
	engine *e;
	const tp_resource *r;
} interp_ctx;

static int interpolate(void *ctx, const char *text, char **out)
{
	interp_ctx *ic = ctx;
	tp_resource tmp;
	json_t *resolved;
	int rc;
	*out = NULL;
	/* resolve the text as if it were a spec string of the resource */
	memset(&tmp, 0, sizeof(tmp));
	tmp = *ic->r;
	tmp.spec = json_string(text);
	pthread_mutex_lock(&ic->e->mu);
	resolved = tp_spec_resolve_outputs(&tmp, ic->e->o->pipeline, ic->e->outputs);
	pthread_mutex_unlock(&ic->e->mu);
	json_decref(tmp.spec);
	if (!json_is_string(resolved)) {
		json_decref(resolved);
		return tp_error_set(TP_EINVALID,
				    "%s: the file references an output that is not known yet (only "
				    "references in the spec order the graph; add depends_on)",
				    ic->r->address);
	}
	rc = substitute_secrets(out, json_string_value(resolved));
	json_decref(resolved);
	return rc;
}

/* ---------------------------------------------------------------- providers */

static prov_slot *slot_for(engine *e, const tp_kind *kind)
{
	const tp_provider *p = tp_registry_provider_of(kind);
	for (size_t i = 0; i < e->nprov; i++)
		if (e->provs[i].prov == p)
			return &e->provs[i];
	return NULL;
}

/* The providers' persistent cache: the state's cache table, under the engine mutex (the
 * state handle is used by one thread at a time). */
static int env_cache_get(void *ctx, json_t **out, const char *key)
{
	engine *e = ctx;
	int rc;
	*out = NULL;
	if (!e->o->state)
		return tp_error_set(TP_ENOTFOUND, "cache: no state");
	pthread_mutex_lock(&e->mu);
	rc = tp_state_cache_get(out, e->o->state, key);
	pthread_mutex_unlock(&e->mu);
	return rc;
}

static int env_cache_put(void *ctx, const char *key, const json_t *value, int64_t ttl_ms)
{
	engine *e = ctx;
	int rc;
	if (!e->o->state)
		return 0;
	pthread_mutex_lock(&e->mu);
	rc = tp_state_cache_put(e->o->state, key, value, ttl_ms);
	pthread_mutex_unlock(&e->mu);
	if (rc < 0) /* a read-only state (plan) keeps nothing: not an error */
		rc = 0;
	return rc;
}

/* Opens the provider's session on first use (called with e->mu held). */
static int slot_open(engine *e, prov_slot *ps)
{
	const tp_provider_config *pc;
	tp_provider_env env = {0};
	json_t *config = NULL;
	int rc = 0;

	if (ps->opened)
		return ps->open_rc;
	ps->opened = true;
	if (!ps->prov->open)
		return 0;
	pc = tp_pipeline_provider(e->o->pipeline, ps->prov->name);
	if (pc && (rc = resolve_secrets(&config, pc->config, "", NULL, NULL)) < 0)
		goto done;
	env.pipeline = e->o->pipeline->name;
	env.config = config;
	env.endpoint = pc ? pc->endpoint : NULL;
	env.metrics = e->o->metrics;
	if (e->o->state) {
		env.cache_get = env_cache_get;
		env.cache_put = env_cache_put;
		env.cache_ctx = e;
	}
	env.refresh_discovery = e->o->refresh_schemas;
	env.calls_in_flight = &ps->inflight;
	rc = ps->prov->open(&ps->session, &env);
done:
	wipe_json(config);
	json_decref(config);
	if (rc < 0) {
		ps->open_rc = rc;
		ps->open_error = tp_sprintf("provider %s: %s", ps->prov->name, tp_error_last());
	}
	return rc;
}

static bool retryable(int rc)
{
	return rc == TP_ETRANSIENT || rc == TP_ETHROTTLED;
}

/* After a read failed with rc (a kind's observation, a secret): whether to read again, having
 * waited first — the same policy as writes (capped exponential backoff with full jitter, or
 * the server's Retry-After, capped at the backoff cap times 3), within the engine's attempts
 * and the provider's retry budget. The providers' clients retry a few times themselves; this
 * is what keeps one unlucky request from failing a whole run. */
/* tapestry_api_requests_total{provider,code}: one provider call (a write or a batch of
 * observations) by outcome, for /metrics and the dashboard's provider health. */
static void count_request(engine *e, const prov_slot *ps, int rc)
{
	char lbl[128];
	if (!e->o->metrics)
		return;
	snprintf(lbl, sizeof(lbl), "provider=\"%s\",code=\"%s\"", ps->prov->name,
		 rc == 0 ? "ok" : rc == TP_ETHROTTLED ? "throttled"
		 : rc == TP_ETRANSIENT ? "transient" : "error");
	tp_metrics_add(e->o->metrics, "tapestry_api_requests_total", lbl, 1);
}

static bool read_again(engine *e, prov_slot *ps, int attempt, int rc, const char *what)
{
	int64_t base = e->o->backoff_base_ms > 0 ? e->o->backoff_base_ms : 200;
	int64_t cap = e->o->backoff_cap_ms > 0 ? e->o->backoff_cap_ms : 20000;
	int64_t after = tp_error_retry_after(), delay;
	if (!retryable(rc) || attempt >= max_attempts(e->o) || (e->o->stop && *e->o->stop))
		return false;
	pthread_mutex_lock(&e->mu);
	if (ps->budget <= 0) {
		pthread_mutex_unlock(&e->mu);
		return false;
	}
	ps->budget--;
	e->sum.retries++;
	pthread_mutex_unlock(&e->mu);
	if (e->o->metrics) {
		char lbl[128];
		snprintf(lbl, sizeof(lbl), "provider=\"%s\"", ps->prov->name);
		tp_metrics_add(e->o->metrics, "tapestry_retries_total", lbl, 1);
	}
	delay = tp_backoff_ms(attempt, base, cap);
	if (after >= 0)
		delay = after < cap * 3 ? after : cap * 3;
	tp_log(TP_LOG_WARN, NULL, NULL, "%s: attempt %d failed (%s); reading again in %lld ms: %s",
	       what, attempt, tp_error_name(rc), (long long)delay, tp_error_last());
	tp_clock_sleep_ms(delay);
	return true;
}

typedef enum { CALL_CREATE, CALL_UPDATE, CALL_REMOVE, CALL_ADOPT } call_kind;

/* One provider call with the retry policy: capped exponential backoff with full jitter,
 * Retry-After honoured (capped at the backoff cap times 3), bounded attempts, and the
 * provider's retry budget. Called without the mutex. */
static int call(engine *e, prov_slot *ps, const tp_kind *k, call_kind what, const tp_op *op,
		tp_op_result *res, int64_t journal_id)
{
	int64_t base = e->o->backoff_base_ms > 0 ? e->o->backoff_base_ms : 200;
	int64_t cap = e->o->backoff_cap_ms > 0 ? e->o->backoff_cap_ms : 20000;
	int rc = 0;

	for (int attempt = 1;; attempt++) {
		int64_t delay, after;
		char detail[96];
		tp_op_result_clear(res);
		switch (what) {
		case CALL_CREATE: rc = k->create(ps->session, op, res); break;
		case CALL_UPDATE: rc = k->update(ps->session, op, res); break;
		case CALL_REMOVE: rc = k->remove(ps->session, op); break;
		case CALL_ADOPT: rc = k->adopt(ps->session, op, res); break;
		}
		/* an adopt that finds nothing answered fine: there is nothing */
		count_request(e, ps, what == CALL_ADOPT && rc == TP_ENOTFOUND ? 0 : rc);
		if (rc == 0 || !retryable(rc))
			return rc;
		after = tp_error_retry_after();
		if (e->o->stop && *e->o->stop) {
			/* shutting down: in-flight work finishes, it does not keep retrying */
			char *m = tp_strdup(tp_error_last());
			rc = tp_error_set(rc, "%s (not retried: stopping)", m);
			free(m);
			return rc;
		}
		pthread_mutex_lock(&e->mu);
		if (attempt >= max_attempts(e->o) || ps->budget <= 0) {
			bool budget = ps->budget <= 0;
			pthread_mutex_unlock(&e->mu);
			if (budget) {
				char *m = tp_strdup(tp_error_last());
				rc = tp_error_set(rc, "%s (retry budget of provider %s exhausted)", m,
						  ps->prov->name);
				free(m);
			}
			return rc;
		}
		ps->budget--;
		e->sum.retries++;
		tp_state_journal_attempt(e->o->state, journal_id);
		pthread_mutex_unlock(&e->mu);
		if (e->o->metrics) {
			char lbl[128];
			snprintf(lbl, sizeof(lbl), "provider=\"%s\"", ps->prov->name);
			tp_metrics_add(e->o->metrics, "tapestry_retries_total", lbl, 1);
		}
		delay = tp_backoff_ms(attempt, base, cap);
		if (after >= 0)
			delay = after < cap * 3 ? after : cap * 3;
		snprintf(detail, sizeof(detail), "attempt %d failed (%s); retrying in %lld ms",
			 attempt, tp_error_name(rc), (long long)delay);
		progress(e, op->address, what == CALL_REMOVE ? "delete" : "write", "retry", detail);
		tp_log(TP_LOG_WARN, op->address, NULL, "%s: %s", detail, tp_error_last());
		tp_clock_sleep_ms(delay);
	}
}

/* ---------------------------------------------------------------- one entry */

static json_t *lifecycle_json(const tp_resource *r)
{
	json_t *ic = json_array();
	for (size_t i = 0; i < r->ignore_changes.len; i++)
		json_array_append_new(ic, json_string(r->ignore_changes.items[i]));
	return json_pack("{s:b,s:s,s:o}", "prevent_destroy", r->prevent_destroy, "deletion",
			 r->deletion == TP_DELETION_RETAIN ? "retain" : "delete", "ignore_changes",
			 ic);
}

static json_t *deps_json(const tp_pipeline *p, const tp_resource *r)
{
	json_t *a = json_array();
	for (size_t i = 0; i < r->ndeps; i++)
		json_array_append_new(a, json_string(p->resources[r->deps[i]].address));
	return a;
}

/* Ends the transaction that records an entry's outcome (mutex held; rc: its result so far):
 * the success event of the entry's last step goes in with it (one commit instead of two),
 * then commit, or roll back on failure. The transaction is lazy (tp_state_begin_lazy): until
 * the next durable commit (the next action's journal entry, the run's end) a power loss can
 * only undo the outcome, and recovery then finds the journal entry pending and observes the
 * object, as after a crash during the call. A process crash loses nothing. */
static int record_outcome(engine *e, const tp_plan_entry *pe, int rc, bool last_step)
{
	bool *evented = &e->evented[pe - e->plan->entries];
	if (rc == 0 && last_step)
		rc = tp_state_event_add(e->o->state, e->run_id, pe->address, "info",
					tp_action_name(pe->action), pe->reason);
	if (rc == 0)
		rc = tp_state_commit(e->o->state);
	else
		tp_state_rollback(e->o->state);
	*evented = rc == 0 && last_step;
	return rc;
}

/* Deletes the recorded object: journal, call, state row removed. */
static int do_delete(engine *e, prov_slot *ps, const tp_plan_entry *pe)
{
	const tp_state_resource *sr = pe->recorded;
	tp_op op = {0};
	tp_op_result res = {0};
	char token[33];
	char *marker = marker_for(e->o->pipeline, pe->address);
	tp_strlist sens = {0};
	int64_t jid = 0;
	int rc;

	random_token(token);
	if (json_is_object(sr->secret_hashes)) {
		const char *k;
		json_t *v;
		json_object_foreach(sr->secret_hashes, k, v)
			tp_strlist_push(&sens, k);
	}
	op.address = pe->address;
	op.name = pe->name;
	op.provider_id = sr->provider_id;
	op.applied = sr->applied;
	op.outputs = sr->outputs;
	op.sensitive = &sens;
	op.token = token;
	op.marker = marker;
	op.fingerprint_key = e->key;
	op.tree = e->o->tree;

	pthread_mutex_lock(&e->mu);
	rc = tp_state_journal_begin(&jid, e->o->state, e->run_id, pe->address, "delete", token,
				    sr->spec_hash);
	pthread_mutex_unlock(&e->mu);
	if (rc < 0)
		goto done;
	rc = call(e, ps, pe->kind, CALL_REMOVE, &op, &res, jid);
	pthread_mutex_lock(&e->mu);
	if (rc < 0) {
		char *m = tp_strdup(tp_error_last());
		tp_state_journal_complete(e->o->state, jid, "failed", m);
		tp_error_set(rc, "%s", m);
		free(m);
	} else {
		/* journal completion, the row's removal and the event: one transaction */
		rc = tp_state_begin_lazy(e->o->state);
		if (rc == 0)
			rc = tp_state_journal_complete(e->o->state, jid, "done", NULL);
		if (rc == 0)
			rc = tp_state_resource_delete(e->o->state, pe->address);
		if (rc == TP_ENOTFOUND) {
			tp_error_clear();
			rc = 0;
		}
		rc = record_outcome(e, pe, rc, pe->action == TP_ACTION_DELETE);
		json_object_del(e->outputs, pe->address);
	}
	pthread_mutex_unlock(&e->mu);
done:
	tp_op_result_clear(&res);
	tp_strlist_free(&sens);
	free(marker);
	return rc;
}

/* An update planned only because referenced values were "(known after apply)": no drift
 * to correct, no change of its own. */
static bool only_unknown_changes(const tp_plan_entry *pe)
{
	if (pe->drift_corrected || pe->nchanges == 0)
		return false;
	for (size_t i = 0; i < pe->nchanges; i++)
		if (!pe->changes[i].unknown)
			return false;
	return true;
}

/* Creates or updates the desired object: resolve, journal, call, record. */
static int do_write(engine *e, prov_slot *ps, const tp_plan_entry *pe, bool create)
{
	const tp_resource *r = pe->desired;
	const tp_state_resource *sr = pe->recorded;
	json_t *applied = NULL, *sent = NULL, *hashes = json_object();
	tp_op op = {0};
	tp_op_result res = {0};
	tp_state_resource row = {0};
	interp_ctx ic = {e, r};
	char token[33];
	char *marker = marker_for(e->o->pipeline, pe->address);
	char *hash = NULL, *adopted_id = NULL;
	json_t *adopted_outputs = NULL;
	tp_strlist sens = {0};
	int64_t jid = 0;
	bool resumed = create && sr && sr->status && strcmp(sr->status, TP_STATUS_CREATING) == 0 &&
		       r->kind->adopt;
	int rc;

	pthread_mutex_lock(&e->mu);
	applied = tp_spec_resolve_outputs(r, e->o->pipeline, e->outputs);
	pthread_mutex_unlock(&e->mu);
	if (tp_json_has_unknown(applied)) {
		rc = tp_error_set(TP_EINVALID,
				  "%s: a referenced output has no value (the resource it comes from "
				  "did not record it)", pe->address);
		goto done;
	}
	if (r->kind->normalise)
		r->kind->normalise(applied);
	if ((rc = resolve_secrets(&sent, applied, "", e->key, hashes)) < 0)
		goto done;
	for (size_t i = 0; i < r->sensitive_paths.len; i++)
		tp_strlist_push(&sens, r->sensitive_paths.items[i]);
	hash = spec_hash(applied);
	random_token(token);
	if (!create && sr && sr->applied && only_unknown_changes(pe) &&
	    json_equal(applied, sr->applied) &&
	    (json_object_size(hashes) == 0 ||
	     (sr->secret_hashes && json_equal(hashes, sr->secret_hashes)))) {
		/* planned as "known after apply": now known, and nothing actually changed */
		progress(e, pe->address, "update", "unchanged", NULL);
		rc = 0;
		goto done;
	}

	op.address = pe->address;
	op.name = pe->name;
	op.provider_id = sr && !create ? sr->provider_id : NULL;
	op.spec = sent;
	op.applied = sr ? sr->applied : NULL;
	op.outputs = sr ? sr->outputs : NULL;
	op.secret_hashes = sr ? sr->secret_hashes : NULL;
	op.sensitive = &sens;
	op.token = token;
	op.marker = marker;
	op.fingerprint_key = e->key;
	op.interpolate = interpolate;
	op.interpolate_ctx = &ic;
	op.tree = e->o->tree;

	pthread_mutex_lock(&e->mu);
	if (create) {
		/* A provisional row first: if the process dies during the call, recovery knows
		 * exactly what was being created (and where) and adopts or drops it. */
		tp_state_resource prov = {0};
		prov.address = r->address;
		prov.kind = (char *)(uintptr_t)r->kind->name;
		prov.name = r->name;
		prov.applied = applied;
		prov.outputs = NULL;
		prov.lifecycle = lifecycle_json(r);
		prov.deps = deps_json(e->o->pipeline, r);
		prov.spec_hash = hash;
		prov.status = (char *)TP_STATUS_CREATING;
		prov.revision = (char *)(uintptr_t)e->o->revision;
		/* with its journal entry: one durable commit before the call */
		rc = tp_state_journal_begin_create(&jid, e->o->state, e->run_id, &prov, token,
						   hash);
		json_decref(prov.lifecycle);
		json_decref(prov.deps);
	} else {
		rc = tp_state_journal_begin(&jid, e->o->state, e->run_id, pe->address, "update",
					    token, hash);
	}
	pthread_mutex_unlock(&e->mu);
	if (rc < 0)
		goto done;
	if (resumed) {
		/* An earlier run's create of this address was interrupted, and its object was not
		 * found (or could not be looked for) when that was recovered. The API may have
		 * finished the request since: a server goes on with a request whose client died.
		 * Look again right before creating, so that object is taken up and brought to
		 * the spec instead of being refused as a stranger's namesake or made twice. */
		rc = call(e, ps, r->kind, CALL_ADOPT, &op, &res, jid);
		if (rc == 0) {
			json_t *seen = NULL;
			adopted_id = res.provider_id;
			res.provider_id = NULL;
			adopted_outputs = res.outputs;
			res.outputs = NULL;
			op.provider_id = adopted_id;
			/* What the kind makes of it: an object it observes as not there (one it
			 * reports unfinished, such as a Grouparoo source still a draft) is left to
			 * its create, which takes up its own unfinished objects; anything else is
			 * brought to the spec by an update. */
			for (int attempt = 1; r->kind->observe; attempt++) {
				rc = r->kind->observe(ps->session, &op, 1, &seen);
				if (rc == 0 || !read_again(e, ps, attempt, rc, pe->address))
					break;
			}
			if (rc == 0 && r->kind->observe && !seen) {
				tp_log(TP_LOG_WARN, pe->address, NULL,
				       "an interrupted create's object turned up unfinished (%s): its "
				       "create takes it up", adopted_id);
				op.provider_id = NULL;
				free(adopted_id);
				adopted_id = NULL;
				json_decref(adopted_outputs);
				adopted_outputs = NULL;
				rc = call(e, ps, r->kind, CALL_CREATE, &op, &res, jid);
			} else if (rc == 0) {
				tp_log(TP_LOG_WARN, pe->address, NULL,
				       "an interrupted create's object turned up (%s): adopted and "
				       "brought to the spec instead of created again", adopted_id);
				rc = call(e, ps, r->kind, CALL_UPDATE, &op, &res, jid);
			}
			json_decref(seen);
		} else if (rc == TP_ENOTFOUND) {
			rc = call(e, ps, r->kind, CALL_CREATE, &op, &res, jid);
		}
	} else {
		rc = call(e, ps, r->kind, create ? CALL_CREATE : CALL_UPDATE, &op, &res, jid);
	}

	pthread_mutex_lock(&e->mu);
	if (rc < 0) {
		char *m = tp_strdup(tp_error_last());
		tp_state_journal_complete(e->o->state, jid, "failed", m);
		/* a refused create made nothing: drop its provisional row. After transient
		 * failures the object may exist: the row stays for recovery to check. So does
		 * the row of an adopted object whose update failed. */
		if (create && !retryable(rc) && !adopted_id)
			tp_state_resource_delete(e->o->state, pe->address);
		tp_error_set(rc, "%s", m);
		free(m);
		pthread_mutex_unlock(&e->mu);
		goto done;
	}
	row.address = r->address;
	row.kind = (char *)(uintptr_t)r->kind->name;
	row.name = r->name;
	row.provider_id = res.provider_id ? res.provider_id
			  : adopted_id	  ? adopted_id
					  : (sr ? sr->provider_id : NULL);
	row.applied = applied;
	row.secret_hashes = hashes;
	if (res.outputs)
		row.outputs = json_incref(res.outputs);
	else if (adopted_outputs)
		row.outputs = json_incref(adopted_outputs);
	else if (sr && sr->outputs)
		row.outputs = json_incref(sr->outputs);
	else
		row.outputs = json_object();
	row.observed = NULL; /* what was observed before no longer holds */
	row.lifecycle = lifecycle_json(r);
	row.deps = deps_json(e->o->pipeline, r);
	row.spec_hash = hash;
	row.status = (char *)"ready";
	row.revision = (char *)(uintptr_t)e->o->revision;
	/* journal completion, the state row and the event in one transaction: all or none */
	rc = tp_state_begin_lazy(e->o->state);
	if (rc == 0)
		rc = tp_state_journal_complete(e->o->state, jid, "done", NULL);
	if (rc == 0)
		rc = tp_state_resource_put(e->o->state, &row);
	rc = record_outcome(e, pe, rc, true);
	if (rc == 0)
		json_object_set(e->outputs, r->address, row.outputs);
	pthread_mutex_unlock(&e->mu);
	json_decref(row.outputs);
	json_decref(row.lifecycle);
	json_decref(row.deps);
done:
	wipe_json(sent);
	json_decref(sent);
	json_decref(applied);
	json_decref(hashes);
	tp_op_result_clear(&res);
	tp_strlist_free(&sens);
	json_decref(adopted_outputs);
	free(adopted_id);
	free(hash);
	free(marker);
	return rc;
}

static int do_forget(engine *e, const tp_plan_entry *pe)
{
	int rc;
	pthread_mutex_lock(&e->mu);
	rc = tp_state_resource_delete(e->o->state, pe->address);
	if (rc == TP_ENOTFOUND)
		rc = 0;
	json_object_del(e->outputs, pe->address);
	pthread_mutex_unlock(&e->mu);
	return rc;
}

/* half: for a replacement, which step (false: delete the old object, true: create). */
static int run_entry(engine *e, const tp_plan_entry *pe, bool half)
{
	prov_slot *ps = slot_for(e, pe->kind);
	int rc = 0;

	if (pe->action == TP_ACTION_NOOP)
		return 0;
	if (pe->action == TP_ACTION_FORGET)
		return do_forget(e, pe);
	if (!pe->kind->create || !pe->kind->update || !pe->kind->remove)
		return tp_error_set(TP_EINVALID,
				    "%s: the %s provider cannot apply changes yet in this version "
				    "of Tapestry (plan only)", pe->address, ps->prov->name);
	pthread_mutex_lock(&e->mu);
	rc = slot_open(e, ps);
	pthread_mutex_unlock(&e->mu);
	if (rc < 0)
		return tp_error_set(rc, "%s", ps->open_error);
	switch (pe->action) {
	case TP_ACTION_CREATE: rc = do_write(e, ps, pe, true); break;
	case TP_ACTION_UPDATE: rc = do_write(e, ps, pe, false); break;
	case TP_ACTION_REPLACE: rc = half ? do_write(e, ps, pe, true) : do_delete(e, ps, pe); break;
	case TP_ACTION_DELETE: rc = do_delete(e, ps, pe); break;
	default: break;
	}
	return rc;
}

/* ---------------------------------------------------------------- scheduler */

/* Marks entry i skipped (mutex held). */
static void skip_entry(engine *e, size_t i, const char *why, const char *event)
{
	const tp_plan_entry *pe = &e->plan->entries[i];
	e->status[i] = ST_SKIPPED;
	e->left--;
	if (pe->action == TP_ACTION_NOOP)
		return;
	e->sum.skipped++;
	progress(e, pe->address, tp_action_name(pe->action), "skipped", why);
	if (event)
		tp_state_event_add(e->o->state, e->run_id, pe->address, "warn", "skipped", event);
}

/* Picks a runnable entry (mutex held): dependencies done, provider below its limit. The first
 * step of a replacement needs only the old objects of its dependants gone (del_deps). Entries
 * whose dependencies failed are marked skipped on the way. -1 when none is runnable now. */
static ssize_t pick(engine *e)
{
	const tp_plan *p = e->plan;
	bool stopping = e->o->stop && *e->o->stop;
	for (size_t i = 0; i < p->len; i++) {
		const tp_plan_entry *pe = &p->entries[i];
		unsigned char st = e->status[i];
		bool ready = true, blocked = false;
		bool first_step = st == ST_WAITING && pe->action == TP_ACTION_REPLACE;
		prov_slot *ps;
		if (st != ST_WAITING && st != ST_HALF)
			continue;
		if (stopping && st == ST_WAITING) {
			/* not started: left for the next run (a half-done replacement finishes) */
			skip_entry(e, i, "stopping: not started", NULL);
			continue;
		}
		for (size_t k = 0; k < pe->ndeps; k++) {
			unsigned char s = e->status[pe->deps[k]];
			if (s == ST_FAILED || s == ST_SKIPPED)
				blocked = true;
			else if (s != ST_DONE)
				ready = false;
		}
		if (first_step) {
			ready = true;
			for (size_t k = 0; k < e->ndel_deps[i]; k++) {
				unsigned char s = e->status[e->del_deps[i][k]];
				if (s == ST_FAILED || s == ST_SKIPPED)
					blocked = true;
				else if (s != ST_DONE && s != ST_HALF)
					ready = false;
			}
		}
		if (blocked) {
			if (st == ST_HALF)
				skip_entry(e, i, "a resource it depends on failed; the old object is "
						 "already deleted, the next run creates the new one",
					   "skipped: a dependency failed after the old object was "
					   "deleted (replace)");
			else
				skip_entry(e, i, "a resource it depends on failed",
					   "skipped: a dependency failed");
			i = (size_t)-1; /* a skip can unblock (skip) earlier entries: rescan */
			continue;
		}
		if (!ready)
			continue;
		ps = slot_for(e, pe->kind);
		if (pe->action != TP_ACTION_NOOP && pe->action != TP_ACTION_FORGET && ps &&
		    ps->inflight >= ps->limit)
			continue;
		return (ssize_t)i;
	}
	return -1;
}

/* For each replacement i: the entries whose old objects must be deleted before i's old object
 * is: replacements that depend on i, and deletions whose recorded dependencies name i. */
static void order_replacements(engine *e)
{
	const tp_plan *p = e->plan;
	e->del_deps = tp_calloc(p->len ? p->len : 1, sizeof(*e->del_deps));
	e->ndel_deps = tp_calloc(p->len ? p->len : 1, sizeof(*e->ndel_deps));
	for (size_t i = 0; i < p->len; i++) {
		if (p->entries[i].action != TP_ACTION_REPLACE)
			continue;
		for (size_t j = 0; j < p->len; j++) {
			const tp_plan_entry *pj = &p->entries[j];
			bool before = false;
			if (pj->action == TP_ACTION_REPLACE) {
				for (size_t k = 0; k < pj->ndeps && !before; k++)
					before = pj->deps[k] == i;
			} else if (pj->action == TP_ACTION_DELETE && pj->recorded) {
				size_t k;
				json_t *v;
				json_array_foreach(pj->recorded->deps, k, v)
					if (json_is_string(v) &&
					    !strcmp(json_string_value(v), p->entries[i].address))
						before = true;
			}
			if (!before)
				continue;
			e->del_deps[i] = tp_realloc(e->del_deps[i],
						    (e->ndel_deps[i] + 1) * sizeof(size_t));
			e->del_deps[i][e->ndel_deps[i]++] = j;
		}
	}
}

static void count_done(engine *e, const tp_plan_entry *pe)
{
	switch (pe->action) {
	case TP_ACTION_CREATE: e->sum.created++; break;
	case TP_ACTION_UPDATE: e->sum.updated++; break;
	case TP_ACTION_REPLACE: e->sum.replaced++; break;
	case TP_ACTION_DELETE: e->sum.deleted++; break;
	case TP_ACTION_FORGET: e->sum.forgotten++; break;
	case TP_ACTION_NOOP: break;
	}
}

static void *worker(void *arg)
{
	engine *e = arg;
	pthread_mutex_lock(&e->mu);
	while (e->left > 0) {
		ssize_t i = pick(e);
		const tp_plan_entry *pe;
		prov_slot *ps;
		bool uses_provider, half, first_step;
		int rc;
		if (i < 0) {
			if (e->left == 0)
				break;
			pthread_cond_wait(&e->cv, &e->mu);
			continue;
		}
		pe = &e->plan->entries[i];
		ps = slot_for(e, pe->kind);
		uses_provider = pe->action != TP_ACTION_NOOP && pe->action != TP_ACTION_FORGET;
		half = e->status[i] == ST_HALF;
		first_step = pe->action == TP_ACTION_REPLACE && !half;
		e->status[i] = ST_RUNNING;
		if (uses_provider && ps)
			__atomic_add_fetch(&ps->inflight, 1, __ATOMIC_RELAXED);
		pthread_mutex_unlock(&e->mu);

		if (pe->action != TP_ACTION_NOOP && !half) {
			progress(e, pe->address, tp_action_name(pe->action), "start", NULL);
			e->started[i] = tp_clock_mono_ms();
		}
		rc = run_entry(e, pe, half);

		pthread_mutex_lock(&e->mu);
		if (uses_provider && ps)
			__atomic_sub_fetch(&ps->inflight, 1, __ATOMIC_RELAXED);
		if (rc == 0 && first_step) {
			/* the old object is gone: the new one waits for its dependencies */
			e->status[i] = ST_HALF;
			pthread_cond_broadcast(&e->cv);
			continue;
		}
		e->left--;
		if (rc == 0) {
			char detail[64];
			e->status[i] = ST_DONE;
			count_done(e, pe);
			if (pe->action != TP_ACTION_NOOP) {
				snprintf(detail, sizeof(detail), "after %.1fs",
					 (double)(tp_clock_mono_ms() - e->started[i]) / 1000.0);
				progress(e, pe->address, tp_action_name(pe->action), "done", detail);
				if (!e->evented[i])
					tp_state_event_add(e->o->state, e->run_id, pe->address,
							   "info", tp_action_name(pe->action),
							   pe->reason);
			}
		} else {
			char *m = tp_strdup(tp_error_last());
			e->status[i] = ST_FAILED;
			e->sum.failed++;
			progress(e, pe->address, tp_action_name(pe->action), "failed", m);
			tp_state_event_add(e->o->state, e->run_id, pe->address, "error", "failed", m);
			tp_log(TP_LOG_ERROR, pe->address, NULL, "%s failed: %s",
			       tp_action_name(pe->action), m);
			free(m);
		}
		if (e->o->metrics && pe->action != TP_ACTION_NOOP) {
			char lbl[96];
			snprintf(lbl, sizeof(lbl), "action=\"%s\",result=\"%s\"",
				 tp_action_name(pe->action), rc == 0 ? "ok" : "failed");
			tp_metrics_add(e->o->metrics, "tapestry_apply_actions_total", lbl, 1);
		}
		pthread_cond_broadcast(&e->cv);
	}
	pthread_cond_broadcast(&e->cv);
	pthread_mutex_unlock(&e->mu);
	return NULL;
}

/* Secrets a provider serves (ssm → aws) are read with that provider's session. */
static int provider_secret(void *ctx, const char *scheme, const char *location, char **out)
{
	engine *e = ctx;
	for (size_t i = 0; i < e->nprov; i++) {
		prov_slot *ps = &e->provs[i];
		int rc;
		if (!ps->prov->secret_scheme || strcmp(ps->prov->secret_scheme, scheme) != 0 ||
		    !ps->prov->resolve_secret)
			continue;
		pthread_mutex_lock(&e->mu);
		rc = slot_open(e, ps);
		pthread_mutex_unlock(&e->mu);
		if (rc < 0)
			return tp_error_set(rc, "secret ${secret:%s:%s}: %s", scheme, location,
					    ps->open_error);
		for (int attempt = 1;; attempt++) {
			char what[160];
			rc = ps->prov->resolve_secret(ps->session, location, out);
			snprintf(what, sizeof(what), "secret ${secret:%s:%s}", scheme, location);
			if (rc == 0 || !read_again(e, ps, attempt, rc, what))
				return rc;
		}
	}
	return tp_error_set(TP_EINVALID, "secret ${secret:%s:%s}: no provider serves \"%s\" "
					 "secrets", scheme, location, scheme);
}

static void engine_init(engine *e, const tp_engine_opts *o)
{
	const tp_provider *const *provs = tp_registry_providers();
	memset(e, 0, sizeof(*e));
	e->o = o;
	{
		/* recursive: opening a provider's session may read a secret that another
		 * provider serves, which opens that provider's session in turn */
		pthread_mutexattr_t ma;
		pthread_mutexattr_init(&ma);
		pthread_mutexattr_settype(&ma, PTHREAD_MUTEX_RECURSIVE);
		pthread_mutex_init(&e->mu, &ma);
		pthread_mutexattr_destroy(&ma);
	}
	pthread_cond_init(&e->cv, NULL);
	while (provs[e->nprov])
		e->nprov++;
	e->provs = tp_calloc(e->nprov, sizeof(*e->provs));
	for (size_t i = 0; i < e->nprov; i++) {
		e->provs[i].prov = provs[i];
		const tp_provider_config *pc =
			o->pipeline ? tp_pipeline_provider(o->pipeline, provs[i]->name) : NULL;
		const json_t *mc = pc ? json_object_get(pc->config, "max_concurrency") : NULL;
		/* the pipeline's providers.<name>.max_concurrency, else the provider's own */
		e->provs[i].limit = json_is_integer(mc) ? (int)json_integer_value(mc)
				    : provs[i]->max_concurrency > 0 ? provs[i]->max_concurrency
								    : 4;
		e->provs[i].budget = o->retry_budget > 0 ? o->retry_budget : 50;
	}
	e->outputs = json_object();
	e->have_key = o->state && tp_state_secret_key(o->state, e->key) == 0;
	tp_secret_set_resolver(provider_secret, e);
}

static void engine_free(engine *e)
{
	tp_secret_set_resolver(NULL, NULL);
	for (size_t i = 0; i < e->nprov; i++) {
		if (e->provs[i].session && e->provs[i].prov->close)
			e->provs[i].prov->close(e->provs[i].session);
		free(e->provs[i].open_error);
	}
	free(e->provs);
	free(e->status);
	free(e->started);
	free(e->evented);
	for (size_t i = 0; e->del_deps && i < e->plan->len; i++)
		free(e->del_deps[i]);
	free(e->del_deps);
	free(e->ndel_deps);
	json_decref(e->outputs);
	explicit_bzero(e->key, sizeof(e->key));
	pthread_mutex_destroy(&e->mu);
	pthread_cond_destroy(&e->cv);
}

int tp_engine_apply(tp_engine_summary *out, const tp_engine_opts *o, const tp_plan *plan)
{
	engine e;
	tp_state_resources recorded = {0};
	pthread_t *threads = NULL;
	int nthreads, rc = 0;
	json_t *counts = NULL;
	size_t actions = 0;

	memset(out, 0, sizeof(*out));
	engine_init(&e, o);
	e.plan = plan;
	if (!e.have_key) {
		rc = tp_error_set(TP_EIO, "cannot read the installation key next to the state "
					  "database: %s", tp_error_last());
		goto done;
	}
	if (plan->errors.len) {
		rc = tp_error_set(TP_EINVALID, "the plan violates %zu lifecycle rule%s: %s",
				  plan->errors.len, plan->errors.len == 1 ? "" : "s",
				  plan->errors.items[0]);
		goto done;
	}
	/* references resolve to what the state recorded, then to what this run produces */
	if ((rc = tp_state_resources_list(&recorded, o->state)) < 0)
		goto done;
	for (size_t i = 0; i < recorded.len; i++)
		if (recorded.items[i].outputs)
			json_object_set(e.outputs, recorded.items[i].address,
					recorded.items[i].outputs);
	for (size_t i = 0; i < plan->len; i++)
		actions += plan->entries[i].action != TP_ACTION_NOOP;
	if ((rc = tp_state_run_begin(&e.run_id, o->state, o->revision, o->trigger)) < 0)
		goto done;
	e.status = tp_calloc(plan->len ? plan->len : 1, 1);
	e.started = tp_calloc(plan->len ? plan->len : 1, sizeof(*e.started));
	e.evented = tp_calloc(plan->len ? plan->len : 1, sizeof(*e.evented));
	order_replacements(&e);
	e.left = plan->len;
	nthreads = o->concurrency > 0 ? o->concurrency : o->pipeline->settings.concurrency;
	if (nthreads < 1)
		nthreads = 1;
	if ((size_t)nthreads > actions)
		nthreads = actions ? (int)actions : 1;
	threads = tp_calloc((size_t)nthreads, sizeof(*threads));
	for (int i = 0; i < nthreads; i++)
		if (pthread_create(&threads[i], NULL, worker, &e) != 0) {
			nthreads = i;
			break;
		}
	if (nthreads == 0)
		worker(&e);
	for (int i = 0; i < nthreads; i++)
		pthread_join(threads[i], NULL);

	if (o->stop && *o->stop && e.sum.skipped)
		snprintf(e.sum.result, sizeof(e.sum.result), "stopped");
	else if (actions == 0)
		snprintf(e.sum.result, sizeof(e.sum.result), "no-op");
	else if (e.sum.failed == 0 && e.sum.skipped == 0)
		snprintf(e.sum.result, sizeof(e.sum.result), "succeeded");
	else if (e.sum.failed + e.sum.skipped >= actions)
		snprintf(e.sum.result, sizeof(e.sum.result), "failed");
	else
		snprintf(e.sum.result, sizeof(e.sum.result), "partial");
	counts = json_pack("{s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I}", "created",
			   (json_int_t)e.sum.created, "updated", (json_int_t)e.sum.updated,
			   "replaced", (json_int_t)e.sum.replaced, "deleted",
			   (json_int_t)e.sum.deleted, "forgotten", (json_int_t)e.sum.forgotten,
			   "failed", (json_int_t)e.sum.failed, "skipped", (json_int_t)e.sum.skipped,
			   "retries", (json_int_t)e.sum.retries);
	tp_state_run_end(o->state, e.run_id, e.sum.result, counts);
	e.sum.run_id = e.run_id;
	*out = e.sum;
	if (e.sum.failed || (e.sum.skipped && strcmp(e.sum.result, "stopped") != 0))
		rc = tp_error_set(TP_ERROR, "%zu action%s failed, %zu skipped", e.sum.failed,
				  e.sum.failed == 1 ? "" : "s", e.sum.skipped);
done:
	json_decref(counts);
	free(threads);
	tp_state_resources_free(&recorded);
	engine_free(&e);
	return rc;
}

/* ---------------------------------------------------------------- refresh */

int tp_engine_refresh(const tp_engine_opts *o, tp_state_resources *recorded, bool persist,
		      tp_strlist *unobserved)
{
	engine e;
	int rc = 0;
	const tp_provider *const *provs = tp_registry_providers();

	engine_init(&e, o);
	if (!e.have_key) {
		/* read-only refresh before the first apply: nothing can hold a fingerprint yet */
		memset(e.key, 0, sizeof(e.key));
	}
	for (size_t pi = 0; provs[pi] && rc == 0; pi++) {
		for (size_t ki = 0; provs[pi]->kinds[ki] && rc == 0; ki++) {
			const tp_kind *k = provs[pi]->kinds[ki];
			size_t n = 0, j = 0;
			tp_op *ops;
			tp_strlist *sens;
			char **markers;
			json_t **out;
			size_t *idx;
			bool began;
			for (size_t i = 0; i < recorded->len; i++)
				n += strcmp(recorded->items[i].kind, k->name) == 0;
			if (n == 0)
				continue;
			if (!k->observe) {
				if (unobserved && !tp_strlist_contains(unobserved, k->name))
					tp_strlist_push(unobserved, k->name);
				continue;
			}
			if ((rc = slot_open(&e, &e.provs[pi])) < 0) {
				rc = tp_error_set(rc, "%s", e.provs[pi].open_error);
				break;
			}
			ops = tp_calloc(n, sizeof(*ops));
			sens = tp_calloc(n, sizeof(*sens));
			markers = tp_calloc(n, sizeof(*markers));
			out = tp_calloc(n, sizeof(*out));
			idx = tp_calloc(n, sizeof(*idx));
			for (size_t i = 0; i < recorded->len; i++) {
				tp_state_resource *sr = &recorded->items[i];
				if (strcmp(sr->kind, k->name) != 0)
					continue;
				if (json_is_object(sr->secret_hashes)) {
					const char *key;
					json_t *v;
					json_object_foreach(sr->secret_hashes, key, v)
						tp_strlist_push(&sens[j], key);
				}
				markers[j] = marker_for(o->pipeline, sr->address);
				ops[j].address = sr->address;
				ops[j].name = sr->name;
				ops[j].provider_id = sr->provider_id;
				ops[j].applied = sr->applied;
				ops[j].outputs = sr->outputs;
				ops[j].sensitive = &sens[j];
				ops[j].marker = markers[j];
				ops[j].fingerprint_key = e.key;
				ops[j].tree = o->tree;
				idx[j++] = i;
			}
			for (int attempt = 1;; attempt++) {
				char what[160];
				rc = k->observe(e.provs[pi].session, ops, n, out);
				count_request(&e, &e.provs[pi], rc);
				snprintf(what, sizeof(what), "observing %s", k->name);
				if (rc == 0 || !read_again(&e, &e.provs[pi], attempt, rc, what))
					break;
				for (j = 0; j < n; j++) {
					json_decref(out[j]);
					out[j] = NULL;
				}
			}
			/* one transaction for the batch's rows: one sync to disk, not one per
			 * resource (taken after the provider call, never across it) */
			began = persist && rc == 0;
			if (began && tp_state_begin(o->state) < 0) {
				began = false;
				rc = TP_EIO;
			}
			for (j = 0; j < n; j++) {
				tp_state_resource *sr = &recorded->items[idx[j]];
				if (rc == 0) {
					json_decref(sr->observed);
					sr->observed = out[j] ? out[j]
							      : json_pack("{s:b}", TP_ABSENT_KEY, 1);
					out[j] = NULL;
					sr->observed_ms = tp_clock_now_ms();
					if (persist && tp_state_resource_put(o->state, sr) < 0)
						rc = rc ? rc : TP_EIO;
				}
				json_decref(out[j]);
				tp_strlist_free(&sens[j]);
				free(markers[j]);
			}
			if (began && tp_state_commit(o->state) < 0)
				rc = rc ? rc : TP_EIO;
			free(ops);
			free(sens);
			free(markers);
			free(out);
			free(idx);
		}
	}
	engine_free(&e);
	return rc;
}

/* ---------------------------------------------------------------- secret hashes */

/* Whether ref is an ${secret:ssm:NAME} whose parameter is an aws.ssm_parameter of this
 * pipeline that has not been applied yet. */
static bool secret_made_by_plan(const tp_pipeline *p, const tp_state_resources *recorded,
				const tp_ref *ref)
{
	if (ref->type != TP_REF_SECRET || strcmp(ref->scheme, "ssm") != 0)
		return false;
	for (size_t i = 0; i < p->nresources; i++) {
		const tp_resource *r = &p->resources[i];
		const char *name = tp_json_get_str(r->spec, "name");
		bool applied = false;
		if (strcmp(r->kind->name, "aws.ssm_parameter") != 0 || !name ||
		    strcmp(name, ref->location) != 0)
			continue;
		for (size_t k = 0; recorded && k < recorded->len; k++)
			if (strcmp(recorded->items[k].address, r->address) == 0 &&
			    (!recorded->items[k].status ||
			     strcmp(recorded->items[k].status, TP_STATUS_CREATING) != 0))
				applied = true;
		return !applied;
	}
	return false;
}

int tp_engine_secret_hashes(json_t **out, const tp_engine_opts *o,
			    const tp_state_resources *recorded, tp_strlist *errors)
{
	engine e;
	const tp_pipeline *p = o->pipeline;
	json_t *all = json_object();
	int rc = 0;

	*out = NULL;
	engine_init(&e, o);
	if (!e.have_key) {
		/* nothing was ever applied with this state: no recorded hash to compare with */
		engine_free(&e);
		*out = all;
		return 0;
	}
	for (size_t i = 0; i < p->nresources; i++) {
		const tp_resource *r = &p->resources[i];
		json_t *resolved, *sent = NULL, *hashes;
		bool has_secret = false, produced_here = false;
		for (size_t k = 0; k < r->nrefs; k++) {
			has_secret = has_secret || r->refs[k].type == TP_REF_SECRET;
			produced_here = produced_here || secret_made_by_plan(p, recorded, &r->refs[k]);
		}
		/* a secret this very pipeline is about to store (an SSM parameter it creates)
		 * cannot be read yet: the dependency orders it first, the apply reads it then */
		if (!has_secret || produced_here)
			continue;
		resolved = tp_spec_resolve(r, p, recorded, NULL);
		if (r->kind->normalise)
			r->kind->normalise(resolved);
		hashes = json_object();
		if (resolve_secrets(&sent, resolved, "", e.key, hashes) < 0) {
			if (errors)
				tp_strlist_push_owned(errors, tp_sprintf("%s: %s", r->address,
									 tp_error_last()));
			json_decref(hashes);
		} else {
			json_object_set_new(all, r->address, hashes);
		}
		wipe_json(sent);
		json_decref(sent);
		json_decref(resolved);
	}
	engine_free(&e);
	*out = all;
	return rc;
}

/* ---------------------------------------------------------------- plan details */

int tp_engine_plan_details(const tp_engine_opts *o, tp_plan *plan,
			   const tp_state_resources *recorded)
{
	engine e;
	engine_init(&e, o);
	for (size_t i = 0; i < recorded->len; i++)
		if (recorded->items[i].outputs)
			json_object_set(e.outputs, recorded->items[i].address,
					recorded->items[i].outputs);
	for (size_t i = 0; i < plan->len; i++) {
		tp_plan_entry *pe = &plan->entries[i];
		const tp_resource *r = pe->desired;
		prov_slot *ps;
		json_t *applied = NULL, *sent = NULL, *details = NULL;
		char *marker = NULL;
		tp_op op = {0};
		if ((pe->action != TP_ACTION_UPDATE && pe->action != TP_ACTION_REPLACE) || !r ||
		    !pe->kind->plan_details || !pe->recorded)
			continue;
		ps = slot_for(&e, pe->kind);
		if (!ps || slot_open(&e, ps) < 0) {
			tp_log_warn("%s: no preview: %s", pe->address,
				    ps && ps->open_error ? ps->open_error : tp_error_last());
			continue;
		}
		applied = tp_spec_resolve_outputs(r, o->pipeline, e.outputs);
		if (tp_json_has_unknown(applied)) {
			json_decref(applied);
			continue; /* depends on values this plan creates: nothing to preview yet */
		}
		if (r->kind->normalise)
			r->kind->normalise(applied);
		if (resolve_secrets(&sent, applied, "", NULL, NULL) < 0) {
			tp_log_warn("%s: no preview: %s", pe->address, tp_error_last());
			json_decref(applied);
			continue;
		}
		marker = marker_for(o->pipeline, pe->address);
		op.address = pe->address;
		op.name = pe->name;
		op.provider_id = pe->recorded->provider_id;
		op.spec = sent;
		op.applied = pe->recorded->applied;
		op.outputs = pe->recorded->outputs;
		op.secret_hashes = pe->recorded->secret_hashes;
		op.marker = marker;
		op.fingerprint_key = e.key;
		op.tree = o->tree;
		if (pe->kind->plan_details(ps->session, &op, &details) == 0 && details) {
			json_decref(pe->details);
			pe->details = details;
		} else if (!details) {
			tp_log_warn("%s: no preview: %s", pe->address, tp_error_last());
		}
		wipe_json(sent);
		json_decref(sent);
		json_decref(applied);
		free(marker);
	}
	engine_free(&e);
	return 0;
}

/* ---------------------------------------------------------------- recovery */

/* Provisional rows of creates that did not finish: the object is adopted when it exists
 * (found by its marker), otherwise the row is dropped and the next plan creates it. */
static int recover_creating(engine *e, const tp_engine_opts *o)
{
	tp_state_resources all = {0};
	int rc = tp_state_resources_list(&all, o->state);
	for (size_t i = 0; rc == 0 && i < all.len; i++) {
		tp_state_resource *sr = &all.items[i];
		const tp_kind *k = tp_registry_kind(sr->kind);
		prov_slot *ps = k ? slot_for(e, k) : NULL;
		char *marker, *why = NULL;
		tp_op op = {0};
		tp_op_result res = {0};
		int arc;
		if (!sr->status || strcmp(sr->status, TP_STATUS_CREATING) != 0)
			continue;
		marker = marker_for(o->pipeline, sr->address);
		op.address = sr->address;
		op.name = sr->name;
		op.applied = sr->applied;
		op.marker = marker;
		op.fingerprint_key = e->key;
		op.tree = o->tree;
		if (!k || !ps || !k->adopt || slot_open(e, ps) < 0) {
			why = tp_sprintf("unfinished create of %s cannot be checked now; left for the "
					 "next run", sr->address);
		} else if ((arc = k->adopt(ps->session, &op, &res)) == 0) {
			/* Found. The create may have stopped half-way (an object made but not yet
			 * configured), so while the pipeline still has the resource the row stays
			 * unfinished: the plan's create takes the object up and brings it to the
			 * spec, never making another. Otherwise the object is recorded as is, for
			 * the plan to delete. */
			bool wanted = tp_pipeline_find(o->pipeline, sr->address) != NULL;
			free(sr->provider_id);
			sr->provider_id = res.provider_id;
			res.provider_id = NULL;
			json_decref(sr->outputs);
			sr->outputs = res.outputs ? json_incref(res.outputs) : json_object();
			if (!wanted) {
				free(sr->status);
				sr->status = tp_strdup("ready");
			}
			rc = tp_state_resource_put(o->state, sr);
			why = wanted ? tp_sprintf("unfinished create of %s: the object exists (%s); "
						  "the create takes it up and brings it to the spec",
						  sr->address, sr->provider_id)
				     : tp_sprintf("unfinished create of %s: the object exists and was "
						  "adopted", sr->address);
		} else if (arc == TP_ENOTFOUND && tp_pipeline_find(o->pipeline, sr->address)) {
			/* Nothing there now, but the request may still be finishing on the
			 * server: the row stays, and the create looks again before it creates. */
			why = tp_sprintf("unfinished create of %s: no object found yet; the next "
					 "create looks for it again before creating it", sr->address);
		} else if (arc == TP_ENOTFOUND) {
			rc = tp_state_resource_delete(o->state, sr->address);
			why = tp_sprintf("unfinished create of %s: no object was created, and the "
					 "pipeline no longer has it; forgotten", sr->address);
		} else {
			/* the provider could not tell (outage): keep the row and ask again later */
			why = tp_sprintf("unfinished create of %s cannot be checked now (%s); left for "
					 "the next run", sr->address, tp_error_last());
		}
		tp_state_event_add(o->state, 0, sr->address, "warn", "recovered", why);
		tp_log(TP_LOG_WARN, sr->address, NULL, "%s", why);
		tp_op_result_clear(&res);
		free(why);
		free(marker);
	}
	tp_state_resources_free(&all);
	return rc;
}

int tp_engine_recover(const tp_engine_opts *o)
{
	engine e;
	tp_journal_entry *rows = NULL;
	size_t n = 0;
	int rc;

	engine_init(&e, o);
	{
		tp_state_resources all = {0};
		if (tp_state_resources_list(&all, o->state) == 0)
			for (size_t i = 0; i < all.len; i++)
				if (all.items[i].outputs)
					json_object_set(e.outputs, all.items[i].address,
							all.items[i].outputs);
		tp_state_resources_free(&all);
	}
	rc = tp_state_journal_pending(&rows, &n, o->state);
	for (size_t i = 0; rc == 0 && i < n; i++) {
		tp_journal_entry *j = &rows[i];
		char kbuf[128];
		const tp_kind *k = tp_registry_kind(kind_of_address(kbuf, sizeof(kbuf), j->address));
		const tp_resource *r = tp_pipeline_find(o->pipeline, j->address);
		tp_state_resource sr = {0};
		bool have_sr = tp_state_resource_get(&sr, o->state, j->address) == 0;
		char *marker = marker_for(o->pipeline, j->address);
		prov_slot *ps = k ? slot_for(&e, k) : NULL;
		const char *verdict = "failed";
		char *why = NULL;
		tp_op op = {0};
		op.address = j->address;
		op.name = r ? r->name : (have_sr ? sr.name : "");
		op.provider_id = have_sr ? sr.provider_id : NULL;
		op.applied = have_sr ? sr.applied : NULL;
		op.outputs = have_sr ? sr.outputs : NULL;
		op.marker = marker;
		op.token = j->token;
		op.fingerprint_key = e.key;
		op.tree = o->tree;

		if (!k || !ps || slot_open(&e, ps) < 0) {
			why = tp_sprintf("interrupted; cannot observe %s now: left for the next plan",
					 j->address);
		} else if (strcmp(j->action, "create") == 0) {
			/* resolved below from the provisional state row */
			verdict = "done";
			why = tp_strdup("interrupted create: resolved from its provisional state row");
		} else if (strcmp(j->action, "delete") == 0) {
			json_t *seen = NULL;
			if (k->observe && k->observe(ps->session, &op, 1, &seen) == 0 && !seen) {
				tp_state_resource_delete(o->state, j->address);
				verdict = "done";
				why = tp_strdup("interrupted delete: the object is gone; forgotten");
			} else {
				why = tp_strdup("interrupted delete: the object still exists; the next "
						"plan deletes it");
			}
			json_decref(seen);
		} else {
			why = tp_sprintf("interrupted %s: the next plan compares again", j->action);
		}
		tp_state_journal_complete(o->state, j->id, verdict, why);
		tp_state_event_add(o->state, j->run_id, j->address, "warn", "recovered", why);
		tp_log(TP_LOG_WARN, j->address, NULL, "%s", why);
		free(why);
		free(marker);
		if (have_sr)
			tp_state_resource_clear(&sr);
	}
	for (size_t i = 0; i < n; i++)
		tp_journal_entry_clear(&rows[i]);
	free(rows);
	if (rc == 0)
		rc = recover_creating(&e, o);
	engine_free(&e);
	return rc;
}
