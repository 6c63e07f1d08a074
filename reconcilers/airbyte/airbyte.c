/*
 * The airbyte provider: the ingestion end of the pipeline. `airbyte.source` and
 * `airbyte.destination` are connector instances (Salesforce, Zoom → Snowflake) in a workspace of
 * a self-hosted Airbyte, `airbyte.connection` syncs selected streams from one to the other on a
 * schedule. This file is the declarative half: the spec schemas (mirroring the public API's
 * SourceCreateRequest, DestinationCreateRequest and ConnectionCreateRequest/PatchRequest in
 * reference/airbyte/public-api.openapi.yaml, in snake_case), their semantic checks, and the
 * normalisation that makes what Airbyte returns comparable with what Git says. The runtime
 * half (the public API client, the session and each kind's slots) is in client.c, session.c,
 * wire.c, actors.c and connections.c, behind airbyte_int.h.
 */
#include "airbyte_int.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define CONNECTOR_CHARS "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_"

/* ---------------------------------------------------------------- helpers */

static bool is_uuid(const char *s)
{
	static const int groups[] = {8, 4, 4, 4, 12};
	for (size_t g = 0; g < 5; g++) {
		for (int i = 0; i < groups[g]; i++, s++)
			if (!isxdigit((unsigned char)*s))
				return false;
		if (g < 4 && *s++ != '-')
			return false;
	}
	return *s == '\0';
}

static void lower_in_place(json_t *obj, const char *key, bool only_uuid)
{
	const char *s = tp_json_get_str(obj, key);
	char *low;
	if (!s || tp_kind_has_ref(s) || (only_uuid && !is_uuid(s)))
		return;
	low = tp_strdup(s);
	for (char *p = low; *p; p++)
		*p = (char)tolower((unsigned char)*p);
	if (strcmp(low, s) != 0)
		json_object_set_new(obj, key, json_string(low));
	free(low);
}

static const char *str_or_empty(const json_t *obj, const char *key)
{
	const char *s = tp_json_get_str(obj, key);
	return s ? s : "";
}

/* Streams are identified by (name, namespace). */
static int cmp_stream_qsort(const void *pa, const void *pb)
{
	const json_t *a = *(json_t *const *)pa, *b = *(json_t *const *)pb;
	int r = strcmp(str_or_empty(a, "name"), str_or_empty(b, "name"));
	if (r == 0)
		r = strcmp(str_or_empty(a, "namespace"), str_or_empty(b, "namespace"));
	return r ? r : tp_json_cmp(a, b);
}

/* ---------------------------------------------------------------- sources and destinations */

/*
 * Shared by sources and destinations. `role` is "source" or "destination"; the API names the
 * connector inside the configuration as `sourceType` / `destinationType`.
 */
static void actor_check(const json_t *spec, tp_check *c, const char *role, const char *other,
			const char *type_key)
{
	const char *def = tp_json_get_str(spec, "definition_id");
	const char *conn = tp_json_get_str(spec, "connector");
	json_t *conf = json_object_get(spec, "configuration");
	size_t rlen = strlen(role), olen = strlen(other);

	if (!def == !conn)
		tp_check_error(c, "", "exactly one of `definition_id` (connector definition uuid) "
			       "and `connector` (connector name) must be set");
	if (def && !tp_kind_has_ref(def) && !is_uuid(def))
		tp_check_error(c, "definition_id", "must be a connector definition uuid like "
			       "\"e7778cfc-e97c-4458-9ecb-b4f2bba8946c\", got \"%s\"", def);
	if (conn && !tp_kind_has_ref(conn)) {
		size_t n = strlen(conn);
		if (n == 0 || strspn(conn, CONNECTOR_CHARS) != n)
			tp_check_error(c, "connector", "must be a connector name like "
				       "\"%s-postgres\" or \"postgres\" (letters, digits, - and "
				       "_), got \"%s\"", role, conn);
		else if (strncasecmp(conn, other, olen) == 0 && conn[olen] == '-')
			tp_check_error(c, "connector", "\"%s\" is a %s connector; expected a %s "
				       "connector such as \"%s-%s\"", conn, other, role, role,
				       conn + olen + 1);
		else if (strncasecmp(conn, role, rlen) == 0 && conn[rlen] == '-' &&
			 conn[rlen + 1] == '\0')
			tp_check_error(c, "connector", "\"%s\" names no connector; expected e.g. "
				       "\"%s-postgres\"", conn, role);
	}
	if (json_is_object(conf)) {
		if (json_object_get(conf, type_key)) {
			char *p = tp_sprintf("configuration.%s", type_key);
			tp_check_error(c, p, "the connector is chosen by `connector` or "
				       "`definition_id`, not by configuration.%s; remove it",
				       type_key);
			free(p);
		}
		/* Secrets must be references: a literal credential would live in Git, and the
		 * masked value can only come from copying what Airbyte returned (writing it back
		 * would store ten asterisks as the password: PATCH does not treat it specially). */
		tp_kind_check_literal_secrets(conf, "configuration", c);
	}
}

/* "Source-Salesforce" and "salesforce" name the same connector; the API answers the latter
 * (sourceType). Uuids compare case-insensitively. */
static void actor_normalise(json_t *spec, const char *role)
{
	const char *conn, *p;
	size_t rlen = strlen(role);

	lower_in_place(spec, "connector", false);
	lower_in_place(spec, "definition_id", true);
	lower_in_place(spec, "workspace", true);
	conn = tp_json_get_str(spec, "connector");
	if (!conn || tp_kind_has_ref(conn))
		return;
	/* every prefix at once, so that normalising twice changes nothing */
	for (p = conn; strncmp(p, role, rlen) == 0 && p[rlen] == '-' && p[rlen + 1]; )
		p += rlen + 1;
	if (p != conn)
		json_object_set_new(spec, "connector", json_string(p));
}

static const tp_field setting_item = {
	.type = TP_TYPE_ANY,
	.doc = "one connector setting: any JSON value",
};

static const tp_field source_fields[] = {
	{.name = "name", .type = TP_TYPE_STRING, .flags = TP_F_DEFAULT_NAME | TP_F_NOREF,
	 .doc = "source name in Airbyte (defaults to the resource name)"},
	{.name = "workspace", .type = TP_TYPE_STRING, .flags = TP_F_IMMUTABLE,
	 .doc = "workspace id or name (default: providers.airbyte.workspace); moving replaces"},
	{.name = "definition_id", .type = TP_TYPE_STRING, .flags = TP_F_IMMUTABLE,
	 .doc = "uuid of the source connector definition; alternative to `connector`"},
	{.name = "connector", .type = TP_TYPE_STRING, .flags = TP_F_IMMUTABLE,
	 .doc = "connector name, e.g. \"source-salesforce\" or \"salesforce\"; alternative to "
		"`definition_id`"},
	{.name = "configuration", .type = TP_TYPE_MAP, .def = "{}",
	 .items = &setting_item,
	 .doc = "connector configuration as in the connector's spec; secrets as ${secret:...}"},
	{.name = "secret_id", .type = TP_TYPE_STRING,
	 .doc = "secret id returned by Airbyte's OAuth redirect flow (OAuth connectors only)"},
	{0},
};

static const tp_field destination_fields[] = {
	{.name = "name", .type = TP_TYPE_STRING, .flags = TP_F_DEFAULT_NAME | TP_F_NOREF,
	 .doc = "destination name in Airbyte (defaults to the resource name)"},
	{.name = "workspace", .type = TP_TYPE_STRING, .flags = TP_F_IMMUTABLE,
	 .doc = "workspace id or name (default: providers.airbyte.workspace); moving replaces"},
	{.name = "definition_id", .type = TP_TYPE_STRING, .flags = TP_F_IMMUTABLE,
	 .doc = "uuid of the destination connector definition; alternative to `connector`"},
	{.name = "connector", .type = TP_TYPE_STRING, .flags = TP_F_IMMUTABLE,
	 .doc = "connector name, e.g. \"destination-snowflake\" or \"snowflake\"; alternative "
		"to `definition_id`"},
	{.name = "configuration", .type = TP_TYPE_MAP, .def = "{}",
	 .items = &setting_item,
	 .doc = "connector configuration as in the connector's spec; secrets as ${secret:...}"},
	{0},
};

static const char *const actor_outputs[] = {"id", "name", NULL};

static void source_check(const json_t *spec, tp_check *c)
{
	actor_check(spec, c, "source", "destination", "sourceType");
}

static void source_normalise(json_t *spec)
{
	actor_normalise(spec, "source");
}

static void destination_check(const json_t *spec, tp_check *c)
{
	actor_check(spec, c, "destination", "source", "destinationType");
}

static void destination_normalise(json_t *spec)
{
	actor_normalise(spec, "destination");
}

static const tp_kind kind_source = {
	.name = "airbyte.source",
	.phase = TP_PHASE_INGESTION,
	.doc = "an Airbyte source: a configured source connector (Salesforce, Zoom, ...)",
	.fields = source_fields,
	.outputs = actor_outputs,
	.check = source_check,
	.normalise = source_normalise,
	.observe = tp_ab_source_observe,
	.create = tp_ab_source_create,
	.update = tp_ab_source_update,
	.remove = tp_ab_source_remove,
	.adopt = tp_ab_source_adopt,
};

static const tp_kind kind_destination = {
	.name = "airbyte.destination",
	.phase = TP_PHASE_INGESTION,
	.doc = "an Airbyte destination: a configured destination connector (Snowflake, ...)",
	.fields = destination_fields,
	.outputs = actor_outputs,
	.check = destination_check,
	.normalise = destination_normalise,
	.observe = tp_ab_destination_observe,
	.create = tp_ab_destination_create,
	.update = tp_ab_destination_update,
	.remove = tp_ab_destination_remove,
	.adopt = tp_ab_destination_adopt,
};

/* ---------------------------------------------------------------- connections */

/* Whitespace-separated fields of a cron expression, without the " UTC" Airbyte appends. */
static void cron_split(tp_strlist *out, const char *cron)
{
	const char *p = cron;
	while (*p) {
		size_t n;
		while (isspace((unsigned char)*p))
			p++;
		n = 0;
		while (p[n] && !isspace((unsigned char)p[n]))
			n++;
		if (n)
			tp_strlist_push_owned(out, tp_strndup(p, n));
		p += n;
	}
	if (out->len > 0 && strcasecmp(out->items[out->len - 1], "UTC") == 0) {
		free(out->items[--out->len]);
		out->items[out->len] = NULL;
	}
}

static void check_cron(const char *cron, tp_check *c)
{
	tp_strlist f = {0};
	cron_split(&f, cron);
	if (f.len < 6 || f.len > 7)
		tp_check_error(c, "schedule.cron", "must be a quartz cron expression with 6 or 7 "
			       "fields (seconds minutes hours day-of-month month day-of-week "
			       "[year]) such as \"0 0 * * * ?\", got %zu fields", f.len);
	else if ((strcmp(f.items[3], "?") == 0) == (strcmp(f.items[5], "?") == 0))
		tp_check_error(c, "schedule.cron", "quartz cron needs \"?\" in exactly one of "
			       "day-of-month and day-of-week, e.g. \"0 0 * * * ?\", got \"%s\"",
			       cron);
	tp_strlist_free(&f);
}

static bool str_in(const json_t *list, const char *s)
{
	size_t i;
	json_t *v;
	json_array_foreach(list, i, v)
		if (json_is_string(v) && strcmp(json_string_value(v), s) == 0)
			return true;
	return false;
}

/* First element of a field path (a list of strings), or NULL. */
static const char *path_head(const json_t *path)
{
	return json_string_value(json_array_get(path, 0));
}

static void check_stream(const json_t *st, size_t i, tp_check *c)
{
	const char *mode = tp_json_get_str(st, "sync_mode");
	json_t *cursor = json_object_get(st, "cursor_field");
	json_t *pk = json_object_get(st, "primary_key");
	json_t *sel = json_object_get(st, "selected_fields");
	bool incremental = mode && strncmp(mode, "incremental_", 12) == 0;
	bool full_refresh = mode && strncmp(mode, "full_refresh_", 13) == 0;
	bool dedup = mode && strstr(mode, "_deduped") != NULL;
	char path[96];
	size_t k;
	json_t *v;

	if (full_refresh && json_array_size(cursor) > 0) {
		snprintf(path, sizeof(path), "streams.%zu.cursor_field", i);
		tp_check_error(c, path, "a cursor is only used by incremental sync modes, not by "
			       "%s", mode);
	}
	json_array_foreach(pk, k, v) {
		if (json_array_size(v) == 0) {
			snprintf(path, sizeof(path), "streams.%zu.primary_key.%zu", i, k);
			tp_check_error(c, path, "each primary key component must be a non-empty "
				       "field path such as [\"Id\"]");
		}
	}
	if (json_array_size(sel) == 0)
		return;
	json_array_foreach(sel, k, v)
		if (json_is_string(v) && tp_kind_has_ref(json_string_value(v)))
			return; /* the selection is only known at apply time */
	/* Airbyte refuses a field selection that leaves out the cursor of an incremental stream
	 * or a primary key column of a deduplicated one. */
	if (incremental && path_head(cursor) && !tp_kind_has_ref(path_head(cursor)) &&
	    !str_in(sel, path_head(cursor))) {
		snprintf(path, sizeof(path), "streams.%zu.selected_fields", i);
		tp_check_error(c, path, "must include the cursor field \"%s\" of an incremental "
			       "stream", path_head(cursor));
	}
	json_array_foreach(pk, k, v) {
		const char *h = path_head(v);
		if (dedup && h && !tp_kind_has_ref(h) && !str_in(sel, h)) {
			snprintf(path, sizeof(path), "streams.%zu.selected_fields", i);
			tp_check_error(c, path, "must include the primary key field \"%s\" of a "
				       "deduplicated stream", h);
		}
	}
}

static void connection_check(const json_t *spec, tp_check *c)
{
	json_t *sched = json_object_get(spec, "schedule");
	json_t *streams = json_object_get(spec, "streams");
	const char *nsdef = tp_json_get_str(spec, "namespace_definition");
	const char *nsfmt = tp_json_get_str(spec, "namespace_format");
	size_t i, j;
	json_t *st;

	if (sched) {
		const char *type = tp_json_get_str(sched, "type");
		const char *cron = tp_json_get_str(sched, "cron");
		bool is_cron = type && strcmp(type, "cron") == 0;
		/* a reference is known at apply time */
		bool known = type && !tp_kind_has_ref(type);
		if (known && is_cron && !cron)
			tp_check_error(c, "schedule.cron", "required when schedule.type is cron");
		else if (known && !is_cron && cron)
			tp_check_error(c, "schedule.cron", "only used when schedule.type is cron; "
				       "remove it or set type: cron");
		else if (cron && !tp_kind_has_ref(cron))
			check_cron(cron, c);
	}

	if (nsdef && !tp_kind_has_ref(nsdef)) {
		bool custom = strcmp(nsdef, "custom_format") == 0;
		if (custom && (!nsfmt || !*nsfmt))
			tp_check_error(c, "namespace_format", "required when namespace_definition "
				       "is custom_format, e.g. \"$${SOURCE_NAMESPACE}_raw\"");
		else if (!custom && nsfmt)
			tp_check_error(c, "namespace_format", "only used when namespace_definition "
				       "is custom_format (it is %s)", nsdef);
	}

	json_array_foreach(streams, i, st) {
		const char *name = tp_json_get_str(st, "name");
		const char *ns = str_or_empty(st, "namespace");
		for (j = 0; name && j < i; j++) {
			const json_t *prev = json_array_get(streams, j);
			const char *pname = tp_json_get_str(prev, "name");
			if (pname && strcmp(pname, name) == 0 &&
			    strcmp(str_or_empty(prev, "namespace"), ns) == 0) {
				char path[64];
				snprintf(path, sizeof(path), "streams.%zu.name", i);
				tp_check_error(c, path, "stream \"%s\" is listed twice (also "
					       "streams.%zu); each stream is configured once", name,
					       j);
				break;
			}
		}
		check_stream(st, i, c);
	}
}

static void connection_normalise(json_t *spec)
{
	json_t *sched = json_object_get(spec, "schedule");
	json_t *streams = json_object_get(spec, "streams");
	const char *nsdef = tp_json_get_str(spec, "namespace_definition");
	size_t i;
	json_t *st;

	lower_in_place(spec, "source", true);
	lower_in_place(spec, "destination", true);

	/* Airbyte answers "0 0 * * * ? UTC" for the "0 0 * * * ?" it was sent. */
	if (json_is_object(sched)) {
		const char *type = tp_json_get_str(sched, "type");
		const char *cron = tp_json_get_str(sched, "cron");
		if (type && strcmp(type, "manual") == 0) {
			json_object_del(sched, "cron");
		} else if (cron && !tp_kind_has_ref(cron)) {
			tp_strlist f = {0};
			tp_buf b;
			tp_buf_init(&b, strlen(cron) + 1);
			cron_split(&f, cron);
			for (size_t k = 0; k < f.len; k++)
				tp_buf_printf(&b, "%s%s", k ? " " : "", f.items[k]);
			if (strcmp(tp_buf_cstr(&b), cron) != 0)
				json_object_set_new(sched, "cron", json_string(tp_buf_cstr(&b)));
			tp_buf_free(&b);
			tp_strlist_free(&f);
		}
		tp_json_drop_empty(sched, "cron", TP_JSON_EMPTY_ABSENT);
	}

	/* namespace_format means nothing unless the definition is custom_format (and Airbyte
	 * reports "${SOURCE_NAMESPACE}" there regardless). */
	if (nsdef && !tp_kind_has_ref(nsdef) && strcmp(nsdef, "custom_format") != 0)
		json_object_del(spec, "namespace_format");
	tp_json_drop_empty(spec, "namespace_format", TP_JSON_EMPTY_ABSENT);

	json_array_foreach(streams, i, st) {
		json_t *sel;
		if (!json_is_object(st))
			continue;
		tp_json_drop_empty(st, "namespace", TP_JSON_EMPTY_ABSENT);
		tp_json_drop_empty(st, "sync_mode", TP_JSON_EMPTY_ABSENT);
		tp_json_drop_empty(st, "cursor_field", TP_JSON_EMPTY_ABSENT);
		tp_json_drop_empty(st, "primary_key", TP_JSON_EMPTY_ABSENT);
		tp_json_drop_empty(st, "destination_object_name", TP_JSON_EMPTY_ABSENT);
		tp_json_drop_empty(st, "include_files", TP_JSON_EMPTY_ABSENT);
		sel = json_object_get(st, "selected_fields");
		if (json_is_array(sel))
			tp_json_array_sort(sel, tp_json_qsort_cmp, true);
		tp_json_drop_empty(st, "selected_fields", TP_JSON_EMPTY_ABSENT);
	}
	if (json_is_array(streams))
		tp_json_array_sort(streams, cmp_stream_qsort, false);
	tp_json_drop_empty(spec, "streams", TP_JSON_EMPTY_ABSENT);
}

static const char *const schedule_types[] = {"manual", "cron", NULL};

static const tp_field schedule_fields[] = {
	{.name = "type", .type = TP_TYPE_STRING, .flags = TP_F_REQUIRED, .enums = schedule_types,
	 .doc = "manual (sync only when triggered) or cron"},
	{.name = "cron", .type = TP_TYPE_STRING,
	 .doc = "quartz cron expression in UTC, seconds first, e.g. \"0 0 * * * ?\" (hourly)"},
	{0},
};

static const char *const sync_modes[] = {
	"full_refresh_overwrite",      "full_refresh_overwrite_deduped",
	"full_refresh_append",         "full_refresh_update",
	"full_refresh_soft_delete",    "incremental_append",
	"incremental_deduped_history", "incremental_update",
	"incremental_soft_delete",     NULL,
};

static const tp_field field_name_item = {
	.type = TP_TYPE_STRING,
	.doc = "field (column) name",
};

static const tp_field field_path_item = {
	.type = TP_TYPE_LIST,
	.items = &field_name_item,
	.doc = "path to a field: one name per nesting level, e.g. [\"Id\"]",
};

static const tp_field stream_fields[] = {
	{.name = "name", .type = TP_TYPE_STRING, .flags = TP_F_REQUIRED,
	 .doc = "stream name as discovered from the source, e.g. \"Contact\""},
	{.name = "namespace", .type = TP_TYPE_STRING,
	 .doc = "stream namespace (schema) when the source has several with the same name"},
	{.name = "sync_mode", .type = TP_TYPE_STRING, .enums = sync_modes,
	 .doc = "how the stream is read and written, e.g. incremental_deduped_history"},
	{.name = "cursor_field", .type = TP_TYPE_LIST, .items = &field_name_item,
	 .doc = "path to the cursor of an incremental stream (unless the source defines one)"},
	{.name = "primary_key", .type = TP_TYPE_LIST, .items = &field_path_item,
	 .doc = "primary key as a list of field paths, e.g. [[\"Id\"]] (unless source-defined)"},
	{.name = "selected_fields", .type = TP_TYPE_LIST, .flags = TP_F_UNORDERED,
	 .items = &field_name_item,
	 .doc = "top-level fields to sync; absent or empty syncs every field"},
	{.name = "include_files", .type = TP_TYPE_BOOL,
	 .doc = "also move the raw files of file-based sources to the destination"},
	{.name = "destination_object_name", .type = TP_TYPE_STRING,
	 .doc = "object written in a data-activation destination"},
	{0},
};

static const tp_field stream_item = {
	.type = TP_TYPE_OBJECT,
	.fields = stream_fields,
	.doc = "one selected stream",
};

static const char *const namespace_definitions[] = {"source", "destination", "custom_format",
						    NULL};
static const char *const connection_statuses[] = {"active", "inactive", NULL};
static const char *const schema_update_behaviors[] = {
	"ignore", "disable_connection", "propagate_columns", "propagate_fully", NULL,
};

static const tp_field connection_fields[] = {
	{.name = "name", .type = TP_TYPE_STRING, .flags = TP_F_DEFAULT_NAME | TP_F_NOREF,
	 .doc = "connection name in Airbyte (defaults to the resource name)"},
	{.name = "source", .type = TP_TYPE_STRING, .flags = TP_F_REQUIRED | TP_F_IMMUTABLE,
	 .doc = "source id, usually ${airbyte.source/<name>.id}"},
	{.name = "destination", .type = TP_TYPE_STRING, .flags = TP_F_REQUIRED | TP_F_IMMUTABLE,
	 .doc = "destination id, usually ${airbyte.destination/<name>.id}"},
	{.name = "schedule", .type = TP_TYPE_OBJECT, .fields = schedule_fields,
	 .def = "{\"type\":\"manual\"}",
	 .doc = "when syncs run: {type: manual} or {type: cron, cron: \"0 0 * * * ?\"}"},
	{.name = "streams", .type = TP_TYPE_LIST, .flags = TP_F_UNORDERED, .items = &stream_item,
	 .doc = "the streams to sync (the whole selection); absent selects every stream"},
	{.name = "namespace_definition", .type = TP_TYPE_STRING, .def = "\"destination\"",
	 .enums = namespace_definitions,
	 .doc = "where data lands: the destination's default schema, the source's, or custom"},
	{.name = "namespace_format", .type = TP_TYPE_STRING,
	 .doc = "schema name for custom_format; write $${SOURCE_NAMESPACE} for Airbyte's own "
		"${SOURCE_NAMESPACE}"},
	{.name = "prefix", .type = TP_TYPE_STRING, .def = "\"\"",
	 .doc = "prefix prepended to every stream's table name, e.g. \"salesforce_\""},
	{.name = "status", .type = TP_TYPE_STRING, .def = "\"active\"",
	 .enums = connection_statuses, .doc = "active (syncs run) or inactive (paused)"},
	{.name = "non_breaking_schema_updates_behavior", .type = TP_TYPE_STRING,
	 .def = "\"ignore\"", .enums = schema_update_behaviors,
	 .doc = "what Airbyte does when the source schema changes in a non-breaking way"},
	{0},
};

static const char *const connection_outputs[] = {"id", "name", NULL};

static const tp_kind kind_connection = {
	.name = "airbyte.connection",
	.phase = TP_PHASE_INGESTION,
	.doc = "an Airbyte connection: which streams sync from a source to a destination, when",
	.fields = connection_fields,
	.outputs = connection_outputs,
	.check = connection_check,
	.normalise = connection_normalise,
	.observe = tp_ab_connection_observe,
	.create = tp_ab_connection_create,
	.update = tp_ab_connection_update,
	.remove = tp_ab_connection_remove,
	.adopt = tp_ab_connection_adopt,
};

/* ---------------------------------------------------------------- provider */

#define AIRBYTE_MAX_CONCURRENCY 4

static const tp_field config_fields[] = {
	{.name = "url", .type = TP_TYPE_STRING, .flags = TP_F_REQUIRED,
	 .doc = "API base URL including /api/public/v1, e.g. http://airbyte:8000/api/public/v1"},
	{.name = "workspace", .type = TP_TYPE_STRING, .def = "\"default\"",
	 .doc = "workspace id or name used by sources and destinations that name none"},
	{.name = "client_id", .type = TP_TYPE_STRING, .flags = TP_F_SECRET_REF,
	 .doc = "application client id for /applications/token"},
	{.name = "client_secret", .type = TP_TYPE_STRING, .flags = TP_F_SECRET_REF,
	 .doc = "application client secret for /applications/token"},
	{.name = "token", .type = TP_TYPE_STRING, .flags = TP_F_SECRET_REF,
	 .doc = "static bearer token, instead of client_id and client_secret"},
	{.name = "endpoint", .type = TP_TYPE_STRING,
	 .doc = "overrides url (TAPESTRY_ENDPOINT_AIRBYTE overrides both)"},
	TP_FIELD_MAX_CONCURRENCY(AIRBYTE_MAX_CONCURRENCY),
	{0},
};

static const tp_kind *const kinds[] = {&kind_source, &kind_destination, &kind_connection, NULL};

const tp_provider tp_provider_airbyte = {
	.name = "airbyte",
	.config = config_fields,
	.needs_config = true,
	.kinds = kinds,
	.open = tp_ab_open,
	.close = tp_ab_close,
	.max_concurrency = AIRBYTE_MAX_CONCURRENCY,
};
