/*
 * The airbyte provider's session: what one engine run shares across the slots of its three
 * kinds. Opened from providers.airbyte (secrets already resolved by the engine): the API
 * client, the default workspace, workspaces resolved by name once, the create tokens already
 * sent (so an engine retry of a create whose answer was lost finds its own object instead of
 * making a second one), and the discovered-catalog cache.
 *
 * The catalog cache sits behind tp_ab_cache (get/put with a TTL): in memory for the session
 * by default, or over the state database's cache table, which the engine does not hand to
 * slots yet. Discovery is slow and flaky on real sources (Salesforce takes minutes), so a
 * catalog is reused for validating stream names until it expires; --refresh-schemas
 * (TAPESTRY_AIRBYTE_REFRESH_SCHEMAS=1 until the engine passes the flag) bypasses it.
 */
#include "airbyte_int.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../../state/state.h"

/* ---------------------------------------------------------------- caches */

typedef struct {
	pthread_mutex_t mu;
	json_t *entries; /* {key: {"value": v, "expires": ms}} */
} mem_cache;

static int mem_get(void *ctx, json_t **out, const char *key)
{
	mem_cache *m = ctx;
	json_t *e;
	int rc = 0;
	*out = NULL;
	pthread_mutex_lock(&m->mu);
	e = json_object_get(m->entries, key);
	if (!e || tp_clock_now_ms() >= json_integer_value(json_object_get(e, "expires")))
		rc = tp_error_set(TP_ENOTFOUND, "cache: no entry %s (absent or expired)", key);
	else
		*out = json_deep_copy(json_object_get(e, "value"));
	pthread_mutex_unlock(&m->mu);
	return rc;
}

static int mem_put(void *ctx, const char *key, const json_t *value, int64_t ttl_ms)
{
	mem_cache *m = ctx;
	if (ttl_ms <= 0)
		return tp_error_set(TP_EINVALID, "cache entry %s: ttl must be positive", key);
	pthread_mutex_lock(&m->mu);
	json_object_set_new(m->entries, key,
			    json_pack("{s:o,s:I}", "value", json_deep_copy(value), "expires",
				      (json_int_t)(tp_clock_now_ms() + ttl_ms)));
	pthread_mutex_unlock(&m->mu);
	return 0;
}

static void mem_release(void *ctx)
{
	mem_cache *m = ctx;
	if (!m)
		return;
	json_decref(m->entries);
	pthread_mutex_destroy(&m->mu);
	free(m);
}

void tp_ab_cache_memory(tp_ab_cache *out)
{
	mem_cache *m = tp_calloc(1, sizeof(*m));
	pthread_mutex_init(&m->mu, NULL);
	m->entries = json_object();
	out->get = mem_get;
	out->put = mem_put;
	out->release = mem_release;
	out->ctx = m;
}

typedef struct {
	pthread_mutex_t mu;
	tp_state *st;
} state_cache;

static int st_get(void *ctx, json_t **out, const char *key)
{
	state_cache *s = ctx;
	int rc;
	pthread_mutex_lock(&s->mu);
	rc = tp_state_cache_get(out, s->st, key);
	pthread_mutex_unlock(&s->mu);
	return rc;
}

static int st_put(void *ctx, const char *key, const json_t *value, int64_t ttl_ms)
{
	state_cache *s = ctx;
	int rc;
	pthread_mutex_lock(&s->mu);
	rc = tp_state_cache_put(s->st, key, value, ttl_ms);
	pthread_mutex_unlock(&s->mu);
	return rc;
}

static void st_release(void *ctx)
{
	state_cache *s = ctx;
	if (!s)
		return;
	pthread_mutex_destroy(&s->mu);
	free(s);
}

void tp_ab_cache_state(tp_ab_cache *out, tp_state *st)
{
	state_cache *s = tp_calloc(1, sizeof(*s));
	pthread_mutex_init(&s->mu, NULL);
	s->st = st;
	out->get = st_get;
	out->put = st_put;
	out->release = st_release;
	out->ctx = s;
}

void tp_ab_cache_release(tp_ab_cache *c)
{
	if (c && c->release)
		c->release(c->ctx);
	if (c)
		memset(c, 0, sizeof(*c));
}

/* ---------------------------------------------------------------- catalogs */

int tp_ab_catalog_get(json_t **out, tp_ab_client *c, tp_ab_cache *cache, const char *source_id,
		      int64_t ttl_ms, bool fresh)
{
	char *key = tp_sprintf("airbyte:%s:catalog:%s", tp_ab_client_base(c), source_id);
	char *query = NULL;
	json_t *cat = NULL;
	int rc = 0;

	*out = NULL;
	if (!fresh && cache->get && cache->get(cache->ctx, &cat, key) == 0 && json_is_array(cat))
		goto done;
	json_decref(cat);
	cat = NULL;
	tp_error_clear();
	if (!tp_ab_is_uuid(source_id)) {
		rc = tp_error_set(TP_EINVALID, "airbyte: \"%s\" is not a source id", source_id);
		goto done;
	}
	query = tp_sprintf("sourceId=%s%s", source_id, fresh ? "&ignoreCache=true" : "");
	if ((rc = tp_ab_call(c, &cat, "GET", "/streams", query, NULL)) < 0)
		goto done;
	if (!json_is_array(cat)) {
		rc = tp_error_set(TP_EINVALID, "airbyte: GET /streams: the answer is not a list of "
					       "stream properties");
		goto done;
	}
	if (cache->put &&
	    cache->put(cache->ctx, key, cat, ttl_ms > 0 ? ttl_ms : TP_AB_SCHEMA_TTL_MS) < 0)
		tp_log_warn("airbyte: cannot cache the catalog of source %s: %s", source_id,
			    tp_error_last());
done:
	if (rc < 0) {
		json_decref(cat);
		cat = NULL;
	}
	*out = cat;
	free(query);
	free(key);
	return rc;
}

static const char *stream_ns(const json_t *sp)
{
	return tp_json_get_str(sp, "streamnamespace");
}

int tp_ab_streams_check(const json_t *catalog, const json_t *streams, const char *address)
{
	size_t i, j;
	json_t *st, *sp;
	json_array_foreach(streams, i, st) {
		const char *name = tp_json_get_str(st, "name");
		const char *ns = tp_json_get_str(st, "namespace");
		const char *mode = tp_json_get_str(st, "sync_mode");
		const json_t *match = NULL;
		size_t matches = 0;
		if (!name)
			continue;
		json_array_foreach(catalog, j, sp) {
			const char *sn = tp_json_get_str(sp, "streamName");
			if (!sn || strcmp(sn, name) != 0)
				continue;
			if (ns && (!stream_ns(sp) || strcmp(stream_ns(sp), ns) != 0))
				continue;
			match = sp;
			matches++;
		}
		if (matches == 0) {
			tp_buf b;
			int rc;
			tp_buf_init(&b, 4096);
			json_array_foreach(catalog, j, sp) {
				if (b.len > 3000) {
					tp_buf_puts(&b, ", ...");
					break;
				}
				tp_buf_printf(&b, "%s%s%s%s", j ? ", " : "",
					      stream_ns(sp) ? stream_ns(sp) : "",
					      stream_ns(sp) ? "." : "",
					      tp_ab_or(tp_json_get_str(sp, "streamName"), "?"));
			}
			rc = tp_error_set(TP_EINVALID,
					  "%s: stream \"%s\"%s%s is not in the source's "
					  "catalog (it offers: %s)",
					  address, name, ns ? " in namespace " : "", ns ? ns : "",
					  b.len ? tp_buf_cstr(&b) : "no streams");
			tp_buf_free(&b);
			return rc;
		}
		if (matches > 1)
			return tp_error_set(TP_EINVALID,
					    "%s: stream \"%s\" exists in several "
					    "namespaces of the source: set its namespace",
					    address, name);
		if (mode) {
			json_t *modes = json_object_get(match, "syncModes");
			bool ok = !json_is_array(modes) || json_array_size(modes) == 0;
			json_t *m;
			json_array_foreach(modes, j, m)
				ok = ok ||
				     (json_is_string(m) && strcmp(json_string_value(m), mode) == 0);
			if (!ok) {
				tp_buf b;
				int rc;
				tp_buf_init(&b, 4096);
				json_array_foreach(modes, j, m)
					tp_buf_printf(&b, "%s%s", j ? ", " : "",
						      tp_ab_or(json_string_value(m), "?"));
				rc = tp_error_set(TP_EINVALID,
						  "%s: stream \"%s\" does not support "
						  "sync mode %s (it supports: %s)",
						  address, name, mode, tp_buf_cstr(&b));
				tp_buf_free(&b);
				return rc;
			}
		}
	}
	return 0;
}

/* ---------------------------------------------------------------- session */

static char *config_value(const tp_provider_env *env, const char *key)
{
	const char *v = tp_json_get_str(env->config, key);
	return v ? tp_strdup(v) : NULL;
}

int tp_ab_open(void **out, const tp_provider_env *env)
{
	tp_ab_session *s = NULL;
	tp_ab_client_opts o = {0};
	const char *refresh = getenv("TAPESTRY_AIRBYTE_REFRESH_SCHEMAS");
	char *url = config_value(env, "url");
	char *workspace = config_value(env, "workspace");
	int rc;

	*out = NULL;
	o.base_url = env->endpoint ? env->endpoint : url;
	o.client_id = tp_json_get_str(env->config, "client_id");
	o.client_secret = tp_json_get_str(env->config, "client_secret");
	o.token = tp_json_get_str(env->config, "token");
	s = tp_calloc(1, sizeof(*s));
	if ((rc = tp_ab_client_new(&s->client, &o)) < 0) {
		free(s);
		free(url);
		free(workspace);
		return rc;
	}
	free(url);
	s->pipeline = tp_strdup(env->pipeline ? env->pipeline : "");
	s->default_workspace = workspace ? workspace : tp_strdup("default");
	pthread_mutex_init(&s->mu, NULL);
	s->workspaces = json_object();
	s->fresh = json_object();
	s->attempted = json_object();
	s->listed = json_object();
	s->schema_ttl_ms = TP_AB_SCHEMA_TTL_MS;
	s->refresh_schemas = env->refresh_discovery ||
			     (refresh && *refresh && strcmp(refresh, "0") != 0);
	if (env->cache_get && env->cache_put) {
		/* the state's cache table: discovered catalogs outlive the run */
		s->cache.get = env->cache_get;
		s->cache.put = env->cache_put;
		s->cache.release = NULL;
		s->cache.ctx = env->cache_ctx;
	} else {
		tp_ab_cache_memory(&s->cache);
	}
	*out = s;
	return 0;
}

void tp_ab_close(void *session)
{
	tp_ab_session *s = session;
	if (!s)
		return;
	tp_ab_client_free(s->client);
	tp_ab_cache_release(&s->cache);
	json_decref(s->workspaces);
	json_decref(s->fresh);
	json_decref(s->attempted);
	json_decref(s->listed);
	pthread_mutex_destroy(&s->mu);
	free(s->pipeline);
	free(s->default_workspace);
	free(s);
}

int tp_ab_workspace_id(tp_ab_session *s, char **out, const char *name_or_id)
{
	const char *want = name_or_id && *name_or_id ? name_or_id : s->default_workspace;
	json_t *all = NULL;
	const char *found = NULL;
	size_t i, matches = 0;
	json_t *w;
	int rc = 0;

	*out = NULL;
	if (tp_ab_is_uuid(want)) {
		char *low = tp_strdup(want);
		for (char *p = low; *p; p++)
			*p = (char)(*p >= 'A' && *p <= 'Z' ? *p - 'A' + 'a' : *p);
		*out = low;
		return 0;
	}
	/* held across the lookup, so that a name is looked up once however many workers ask */
	pthread_mutex_lock(&s->mu);
	if (tp_json_get_str(s->workspaces, want)) {
		*out = tp_strdup(tp_json_get_str(s->workspaces, want));
		goto done;
	}
	if ((rc = tp_ab_list(s->client, &all, "/workspaces", NULL)) < 0)
		goto done;
	json_array_foreach(all, i, w) {
		const char *name = tp_json_get_str(w, "name");
		if (name && strcmp(name, want) == 0 && tp_json_get_str(w, "workspaceId")) {
			found = tp_json_get_str(w, "workspaceId");
			matches++;
		}
	}
	if (matches > 1) {
		rc = tp_error_set(TP_ECONFLICT,
				  "airbyte: %zu workspaces are named \"%s\"; name "
				  "the workspace by id instead",
				  matches, want);
	} else if (!found) {
		tp_buf b;
		tp_buf_init(&b, 4096);
		json_array_foreach(all, i, w)
			if (b.len < 3000)
				tp_buf_printf(&b, "%s\"%s\"", i ? ", " : "",
					      tp_ab_or(tp_json_get_str(w, "name"), "?"));
		rc = tp_error_set(TP_ENOTFOUND,
				  "airbyte: no workspace is named \"%s\" (there are: "
				  "%s)",
				  want, b.len ? tp_buf_cstr(&b) : "none");
		tp_buf_free(&b);
	} else {
		json_object_set_new(s->workspaces, want, json_string(found));
		*out = tp_strdup(found);
	}
done:
	pthread_mutex_unlock(&s->mu);
	json_decref(all);
	return rc;
}

int tp_ab_session_catalog(tp_ab_session *s, json_t **out, const char *source_id, bool stale)
{
	bool fresh_already, fresh;
	int rc;
	pthread_mutex_lock(&s->mu);
	fresh_already = json_object_get(s->fresh, source_id) != NULL;
	pthread_mutex_unlock(&s->mu);
	/* discovered fresh at most once per source and session */
	fresh = !fresh_already && (s->refresh_schemas || stale);
	if (stale && fresh_already)
		return tp_error_set(TP_ENOTFOUND,
				    "airbyte: the catalog of source %s was just "
				    "discovered",
				    source_id);
	rc = tp_ab_catalog_get(out, s->client, &s->cache, source_id, s->schema_ttl_ms, fresh);
	if (rc == 0 && fresh) {
		pthread_mutex_lock(&s->mu);
		json_object_set_new(s->fresh, source_id, json_true());
		pthread_mutex_unlock(&s->mu);
	}
	return rc;
}

bool tp_ab_attempted(tp_ab_session *s, const char *token)
{
	bool seen;
	if (!token)
		return false;
	pthread_mutex_lock(&s->mu);
	seen = json_object_get(s->attempted, token) != NULL;
	pthread_mutex_unlock(&s->mu);
	return seen;
}

void tp_ab_mark_attempted(tp_ab_session *s, const char *token)
{
	if (!token)
		return;
	pthread_mutex_lock(&s->mu);
	json_object_set_new(s->attempted, token, json_true());
	pthread_mutex_unlock(&s->mu);
}

/* ---------------------------------------------------------------- what exists */

static json_t *identity(const json_t *obj, const char *id_key, const char *type_key)
{
	json_t *o = json_object();
	const char *const keys[] = {id_key, "name", type_key, "definitionId"};
	for (size_t i = 0; i < 4; i++) {
		json_t *v = json_object_get(obj, keys[i]);
		if (json_is_string(v)) /* a copy: the listing is wiped after */
			json_object_set_new(o, keys[i], json_string(json_string_value(v)));
	}
	return o;
}

int tp_ab_session_listed(tp_ab_session *s, json_t **out, const char *collection, const char *ws,
			 const char *id_key, const char *type_key, bool fresh)
{
	char *key = tp_sprintf("%s %s", collection, ws);
	char *q = tp_sprintf("workspaceIds=%s", ws);
	json_t *all = NULL, *ids, *have, *o;
	size_t i;
	int rc = 0;

	*out = NULL;
	pthread_mutex_lock(&s->mu);
	have = fresh ? NULL : json_object_get(s->listed, key);
	if (have)
		*out = json_deep_copy(have);
	pthread_mutex_unlock(&s->mu);
	if (*out)
		goto done;
	if ((rc = tp_ab_list(s->client, &all, collection, q)) < 0)
		goto done;
	ids = json_array();
	json_array_foreach(all, i, o)
		json_array_append_new(ids, identity(o, id_key, type_key));
	tp_ab_json_wipe(all);
	*out = json_deep_copy(ids);
	pthread_mutex_lock(&s->mu);
	/* a listing of the API replaces the session's view; creates noted meanwhile by other
	 * workers are in it or come after it */
	json_object_set_new(s->listed, key, ids);
	pthread_mutex_unlock(&s->mu);
done:
	json_decref(all);
	free(key);
	free(q);
	return rc;
}

void tp_ab_session_note(tp_ab_session *s, const char *collection, const char *ws,
			const char *id_key, const char *type_key, const json_t *obj)
{
	char *key = tp_sprintf("%s %s", collection, ws);
	json_t *list;
	pthread_mutex_lock(&s->mu);
	if ((list = json_object_get(s->listed, key)))
		json_array_append_new(list, identity(obj, id_key, type_key));
	pthread_mutex_unlock(&s->mu);
	free(key);
}
