/*
 * The grouparoo provider: the syncing end of the pipeline, reverse ETL from the warehouse out
 * to tools such as Mailchimp. A Grouparoo 0.9 server holds models (what a record is), apps
 * (connections to systems), sources (tables an app imports records from), properties (record
 * fields read from a source), groups (records matching rules) and destinations (where records
 * are exported). This file is the declarative half: the spec schemas in snake_case (the API
 * under /api/v1 speaks camelCase: modelId, isArray, matchType, syncMode, ...), their semantic
 * checks, and the normalisation that makes Grouparoo's answers comparable with Git. The
 * runtime slots it wires in live in client.c, runtime.c, source.c and destination.c.
 */
#include "grouparoo_int.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Grouparoo refuses more rules per group (GROUP_RULE_LIMIT in 0.9). */
#define GROUP_RULE_LIMIT 10

/* ---------------------------------------------------------------- helpers */

static bool str_is(const char *s, const char *const *set)
{
	for (size_t i = 0; s && set[i]; i++)
		if (strcmp(s, set[i]) == 0)
			return true;
	return false;
}

/* Removes the null members of an object (observed objects carry nulls for unset columns). */
static void drop_nulls(json_t *obj)
{
	const char *key;
	json_t *v;
	void *tmp;
	json_object_foreach_safe(obj, tmp, key, v) {
		if (json_is_null(v))
			json_object_del(obj, key);
	}
}

/* Grouparoo stores rule and filter matches as text: 100, 100.0 and "100" are one value. */
static void match_to_string(json_t *obj)
{
	json_t *m = json_object_get(obj, "match");
	char buf[64];

	if (json_is_integer(m)) {
		snprintf(buf, sizeof(buf), "%" JSON_INTEGER_FORMAT, json_integer_value(m));
	} else if (json_is_real(m)) {
		double d = json_real_value(m);
		if (d == floor(d) && fabs(d) < 1e15) {
			snprintf(buf, sizeof(buf), "%.0f", d);
		} else {
			/* the shortest text that reads back as the same double, like JavaScript */
			for (int prec = 15; prec <= 17; prec++) {
				snprintf(buf, sizeof(buf), "%.*g", prec, d);
				if (strtod(buf, NULL) == d)
					break;
			}
		}
	} else if (json_is_boolean(m)) {
		snprintf(buf, sizeof(buf), "%s", json_is_true(m) ? "true" : "false");
	} else {
		return;
	}
	json_object_set_new(obj, "match", json_string(buf));
}

/* Destination group memberships are identified by their group. */
static int cmp_membership_qsort(const void *pa, const void *pb)
{
	const json_t *a = *(json_t *const *)pa, *b = *(json_t *const *)pb;
	const char *ga = tp_json_get_str(a, "group"), *gb = tp_json_get_str(b, "group");
	int r = strcmp(ga ? ga : "", gb ? gb : "");
	return r ? r : tp_json_cmp(a, b);
}

static bool is_scalar(const json_t *v)
{
	return json_is_string(v) || json_is_number(v) || json_is_boolean(v);
}

/* Plugin options are typed scalars in Grouparoo (string, number or boolean). */
static void check_options(const json_t *spec, const char *field, tp_check *c)
{
	json_t *opts = json_object_get(spec, field);
	const char *key;
	json_t *v;

	if (!json_is_object(opts))
		return;
	json_object_foreach(opts, key, v) {
		char *path;
		if (is_scalar(v))
			continue;
		path = tp_sprintf("%s.%s", field, key);
		tp_check_error(c, path, "option values must be a string, a number or a boolean");
		free(path);
	}
}

static const tp_field option_item = {
	.type = TP_TYPE_ANY,
	.doc = "option value: a string, a number or a boolean; secrets as ${secret:...}",
};

static const tp_field key_item = {
	.type = TP_TYPE_STRING,
	.doc = "property key",
};

/* ---------------------------------------------------------------- filters */

/* Filters narrow what a property or a schedule imports (FilterOpsDescriptions in 0.9). The
 * 0.9 Filter also stores relativeMatch* columns, but no 0.9 filter operation or plugin reads
 * them, so they are not offered here. */
static const char *const filter_ops[] = {
	"eq", "ne", "exists", "notExists", "gt", "gte", "lt", "lte", "substring", "notSubstring",
	NULL,
};

static const tp_field filter_fields[] = {
	{.name = "key", .type = TP_TYPE_STRING, .flags = TP_F_REQUIRED,
	 .doc = "column (remote field) the filter applies to"},
	{.name = "op", .type = TP_TYPE_STRING, .flags = TP_F_REQUIRED, .enums = filter_ops,
	 .doc = "comparison: eq, ne, exists, notExists, gt, gte, lt, lte, substring, ..."},
	{.name = "match", .type = TP_TYPE_ANY,
	 .doc = "value compared with (a string, a number or a boolean); not for exists ops"},
	{0},
};

static const tp_field filter_item = {
	.type = TP_TYPE_OBJECT,
	.fields = filter_fields,
	.doc = "one filter; a record is imported when all filters match",
};

static void check_filters(const json_t *filters, const char *prefix, tp_check *c)
{
	static const char *const no_match[] = {"exists", "notExists", NULL};
	size_t i;
	json_t *f;

	json_array_foreach(filters, i, f) {
		const char *op = tp_json_get_str(f, "op");
		json_t *m = json_object_get(f, "match");
		bool known = op && !tp_kind_has_ref(op); /* a reference is known at apply time */
		char *path = tp_sprintf("%s.%zu.match", prefix, i);
		if (known && str_is(op, no_match) && m)
			tp_check_error(c, path, "not used by the %s operation; remove it", op);
		else if (known && !str_is(op, no_match) && !m)
			tp_check_error(c, path, "required by the %s operation", op);
		if (m && !is_scalar(m))
			tp_check_error(c, path, "must be a string, a number or a boolean");
		free(path);
	}
}

static void normalise_filters(json_t *obj)
{
	json_t *filters = json_object_get(obj, "filters");
	size_t i;
	json_t *f;

	json_array_foreach(filters, i, f) {
		if (!json_is_object(f))
			continue;
		drop_nulls(f);
		match_to_string(f);
	}
	tp_json_drop_empty(obj, "filters", TP_JSON_EMPTY_ABSENT);
}

/* ---------------------------------------------------------------- model */

static const char *const model_types[] = {"profile", "account", "event", "custom", NULL};

static const tp_field model_fields[] = {
	{.name = "name", .type = TP_TYPE_STRING, .flags = TP_F_DEFAULT_NAME | TP_F_NOREF,
	 .doc = "model name in Grouparoo (defaults to the resource name)"},
	{.name = "type", .type = TP_TYPE_STRING, .def = "\"profile\"", .enums = model_types,
	 .doc = "what a record of this model is: profile, account, event or custom"},
	{0},
};

static const char *const id_outputs[] = {"id", NULL};

static const tp_kind kind_model = {
	.name = "grouparoo.model",
	.phase = TP_PHASE_SYNCING,
	.doc = "a Grouparoo model: the kind of record (people, accounts, ...) synced out",
	.fields = model_fields,
	.outputs = id_outputs,
	.observe = tp_gr_model_observe,
	.create = tp_gr_model_create,
	.update = tp_gr_model_update,
	.remove = tp_gr_model_remove,
	.adopt = tp_gr_model_adopt,
};

/* ---------------------------------------------------------------- app */

static const tp_field app_fields[] = {
	{.name = "name", .type = TP_TYPE_STRING, .flags = TP_F_DEFAULT_NAME | TP_F_NOREF,
	 .doc = "app name in Grouparoo (defaults to the resource name)"},
	{.name = "type", .type = TP_TYPE_STRING, .flags = TP_F_REQUIRED | TP_F_IMMUTABLE,
	 .doc = "app type of an installed plugin, e.g. \"postgres\", \"sqlite\", \"mailchimp\""},
	{.name = "options", .type = TP_TYPE_MAP, .items = &option_item,
	 .doc = "connection options of the app type (host, apiKey, ...); secrets as "
		"${secret:...}"},
	{0},
};

static void app_check(const json_t *spec, tp_check *c)
{
	json_t *opts = json_object_get(spec, "options");

	check_options(spec, "options", c);
	/* app options named like credentials (password, apiKey, secret, token, ...) must be
	 * ${secret:...} references */
	if (json_is_object(opts))
		tp_kind_check_literal_secrets(opts, "options", c);
}

static void app_normalise(json_t *spec)
{
	tp_json_drop_empty(spec, "options", TP_JSON_EMPTY_ABSENT);
}

static const tp_kind kind_app = {
	.name = "grouparoo.app",
	.phase = TP_PHASE_SYNCING,
	.doc = "a Grouparoo app: a connection to a database or a SaaS tool",
	.fields = app_fields,
	.outputs = id_outputs,
	.check = app_check,
	.normalise = app_normalise,
	.observe = tp_gr_app_observe,
	.create = tp_gr_app_create,
	.update = tp_gr_app_update,
	.remove = tp_gr_app_remove,
	.adopt = tp_gr_app_adopt,
};

/* ---------------------------------------------------------------- source */

static const tp_field schedule_fields[] = {
	{.name = "recurring", .type = TP_TYPE_BOOL, .def = "true",
	 .doc = "run on its own every `frequency`; false runs only when triggered"},
	{.name = "frequency", .type = TP_TYPE_STRING,
	 .doc = "time between runs when recurring, at least one minute, e.g. \"15m\", \"1h\""},
	{.name = "incremental", .type = TP_TYPE_BOOL,
	 .doc = "import only rows changed since the last run (default: the plugin's choice)"},
	{.name = "confirm_records", .type = TP_TYPE_BOOL, .def = "false",
	 .doc = "after a run, re-check records the source no longer returned"},
	{.name = "refresh_enabled", .type = TP_TYPE_BOOL, .def = "true",
	 .doc = "let the app's refresh query trigger runs"},
	{.name = "options", .type = TP_TYPE_MAP, .items = &option_item,
	 .doc = "schedule options of the source type, e.g. {column: updated_at}"},
	{.name = "filters", .type = TP_TYPE_LIST, .items = &filter_item,
	 .doc = "rows to import (all must match)"},
	{0},
};

/* A literal key: a reference to the property would be a cycle, the property needs the source. */
static const tp_field mapped_key_item = {
	.type = TP_TYPE_STRING,
	.flags = TP_F_NOREF,
	.doc = "key of the unique property the column fills, e.g. \"user_id\"",
};

static const tp_field source_fields[] = {
	{.name = "name", .type = TP_TYPE_STRING, .flags = TP_F_DEFAULT_NAME | TP_F_NOREF,
	 .doc = "source name in Grouparoo (defaults to the resource name)"},
	{.name = "app", .type = TP_TYPE_STRING, .flags = TP_F_REQUIRED | TP_F_IMMUTABLE,
	 .doc = "app id the source reads through, usually ${grouparoo.app/<name>.id}"},
	{.name = "model", .type = TP_TYPE_STRING, .flags = TP_F_REQUIRED | TP_F_IMMUTABLE,
	 .doc = "model id of the records imported, usually ${grouparoo.model/<name>.id}"},
	{.name = "type", .type = TP_TYPE_STRING, .flags = TP_F_REQUIRED | TP_F_IMMUTABLE,
	 .doc = "source type of the app's plugin, e.g. \"sqlite-table-import\""},
	{.name = "options", .type = TP_TYPE_MAP, .items = &option_item,
	 .doc = "options of the source type, e.g. {table: users}"},
	{.name = "mapping", .type = TP_TYPE_MAP,
	 .items = &mapped_key_item,
	 .doc = "the one remote column that identifies a record → key of a unique property"},
	{.name = "schedule", .type = TP_TYPE_OBJECT, .fields = schedule_fields,
	 .doc = "when records are imported; absent: no schedule (runs only when triggered)"},
	{0},
};

static void source_check(const json_t *spec, tp_check *c)
{
	json_t *mapping = json_object_get(spec, "mapping");
	json_t *sched = json_object_get(spec, "schedule");

	check_options(spec, "options", c);
	/* Grouparoo identifies a source's rows by exactly one column. */
	if (json_object_size(mapping) > 1)
		tp_check_error(c, "mapping", "maps one remote column to the key of a unique "
			       "property, e.g. {id: user_id}; got %zu entries",
			       json_object_size(mapping));
	if (sched) {
		const char *freq = tp_json_get_str(sched, "frequency");
		bool recurring = json_is_true(json_object_get(sched, "recurring"));
		int64_t ms = 0;
		if (recurring && !freq)
			tp_check_error(c, "schedule.frequency", "required when the schedule is "
				       "recurring, e.g. \"15m\"");
		else if (freq && !tp_kind_has_ref(freq) && tp_duration_parse(&ms, freq) < 0)
			tp_check_error(c, "schedule.frequency", "must be a duration such as "
				       "\"15m\" or \"1h30m\", got \"%s\"", freq);
		else if (freq && !tp_kind_has_ref(freq) && ms < 60000)
			tp_check_error(c, "schedule.frequency", "must be at least one minute, got "
				       "\"%s\"", freq);
		check_options(sched, "options", c);
		check_filters(json_object_get(sched, "filters"), "schedule.filters", c);
	}
}

/* Milliseconds as the shortest duration text ("90m" and "5400000ms" become "1h30m"). */
static char *format_duration(int64_t ms)
{
	static const struct {
		const char *unit;
		int64_t ms;
	} units[] = {{"h", 3600000}, {"m", 60000}, {"s", 1000}, {"ms", 1}};
	tp_buf b;

	tp_buf_init(&b, 256);
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (ms >= units[i].ms) {
			tp_buf_printf(&b, "%lld%s", (long long)(ms / units[i].ms), units[i].unit);
			ms %= units[i].ms;
		}
	}
	if (b.len == 0)
		tp_buf_puts(&b, "0s");
	return tp_buf_detach(&b);
}

static void source_normalise(json_t *spec)
{
	json_t *sched = json_object_get(spec, "schedule");

	tp_json_drop_empty(spec, "options", TP_JSON_EMPTY_ABSENT);
	tp_json_drop_empty(spec, "mapping", TP_JSON_EMPTY_ABSENT);
	if (json_is_object(sched)) {
		const char *freq = tp_json_get_str(sched, "frequency");
		int64_t ms;
		drop_nulls(sched);
		if (freq && !tp_kind_has_ref(freq) && tp_duration_parse(&ms, freq) == 0) {
			char *canon = format_duration(ms);
			json_object_set_new(sched, "frequency", json_string(canon));
			free(canon);
		}
		/* the frequency of a schedule that does not recur is never used */
		if (json_is_false(json_object_get(sched, "recurring")))
			json_object_del(sched, "frequency");
		tp_json_drop_empty(sched, "options", TP_JSON_EMPTY_ABSENT);
		normalise_filters(sched);
	}
}

static const tp_kind kind_source = {
	.name = "grouparoo.source",
	.phase = TP_PHASE_SYNCING,
	.doc = "a Grouparoo source: a table or query an app imports records from",
	.fields = source_fields,
	.outputs = id_outputs,
	.check = source_check,
	.normalise = source_normalise,
	.observe = tp_gr_source_observe,
	.create = tp_gr_source_create,
	.update = tp_gr_source_update,
	.remove = tp_gr_source_remove,
	.adopt = tp_gr_source_adopt,
};

/* ---------------------------------------------------------------- property */

static const char *const property_types[] = {
	"boolean", "date", "email", "float", "integer", "phoneNumber", "string", "url", NULL,
};

static const tp_field property_fields[] = {
	{.name = "key", .type = TP_TYPE_STRING, .flags = TP_F_DEFAULT_NAME | TP_F_NOREF,
	 .doc = "property key, e.g. \"email\" (defaults to the resource name)"},
	{.name = "type", .type = TP_TYPE_STRING, .flags = TP_F_REQUIRED, .enums = property_types,
	 .doc = "value type: boolean, date, email, float, integer, phoneNumber, string or url"},
	{.name = "unique", .type = TP_TYPE_BOOL, .def = "false",
	 .doc = "values identify a record (the source's mapped property must be unique)"},
	{.name = "is_array", .type = TP_TYPE_BOOL, .def = "false",
	 .doc = "a record may hold several values"},
	{.name = "source", .type = TP_TYPE_STRING, .flags = TP_F_REQUIRED | TP_F_IMMUTABLE,
	 .doc = "source id the values come from, usually ${grouparoo.source/<name>.id}"},
	{.name = "options", .type = TP_TYPE_MAP, .items = &option_item,
	 .doc = "options of the source type, e.g. {column: email, aggregationMethod: exact}"},
	{.name = "filters", .type = TP_TYPE_LIST, .items = &filter_item,
	 .doc = "rows the value is read from (all must match)"},
	{0},
};

static void property_check(const json_t *spec, tp_check *c)
{
	/* "_meta" and the top-level group rule keys are reserved in 0.9. */
	static const char *const reserved[] = {"_meta", "grouparooId", "grouparooCreatedAt", NULL};
	const char *key = tp_json_get_str(spec, "key");

	if (str_is(key, reserved))
		tp_check_error(c, "key", "\"%s\" is reserved by Grouparoo; choose another key",
			       key);
	if (json_is_true(json_object_get(spec, "unique")) &&
	    json_is_true(json_object_get(spec, "is_array")))
		tp_check_error(c, "is_array", "a unique property cannot be an array");
	check_options(spec, "options", c);
	check_filters(json_object_get(spec, "filters"), "filters", c);
}

static void property_normalise(json_t *spec)
{
	tp_json_drop_empty(spec, "options", TP_JSON_EMPTY_ABSENT);
	normalise_filters(spec);
}

static const char *const property_outputs[] = {"id", "key", NULL};

static const tp_kind kind_property = {
	.name = "grouparoo.property",
	.phase = TP_PHASE_SYNCING,
	.doc = "a Grouparoo property: a record field read from a source",
	.fields = property_fields,
	.outputs = property_outputs,
	.check = property_check,
	.normalise = property_normalise,
	.observe = tp_gr_property_observe,
	.create = tp_gr_property_create,
	.update = tp_gr_property_update,
	.remove = tp_gr_property_remove,
	.adopt = tp_gr_property_adopt,
};

/* ---------------------------------------------------------------- group */

/* Every operation of ruleOpsDictionary in 0.9 (which ones apply depends on the property type;
 * iLike and notILike only on a PostgreSQL-backed server). */
static const char *const rule_ops[] = {
	"exists", "notExists", "eq", "ne", "gt", "lt", "gte", "lte", "like", "notLike",
	"startsWith", "endsWith", "substring", "iLike", "notILike", "relative_gt", "relative_lt",
	NULL,
};
static const char *const relative_units[] = {"days", "weeks", "months", "quarters", "years",
					     NULL};
static const char *const relative_directions[] = {"add", "subtract", NULL};
static const char *const match_types[] = {"all", "any", NULL};
static const char *const delete_modes[] = {"wait", "force", NULL};

/* Grouparoo deletes groups and destinations in the background; how Tapestry deletes one is
 * part of its spec, so a plan that destroys it shows which. */
#define DELETE_MODE_FIELD(what)                                                                \
	{.name = "delete_mode", .type = TP_TYPE_STRING, .def = "\"wait\"",                    \
	 .enums = delete_modes,                                                                 \
	 .doc = "how Tapestry deletes the " what ": wait (Grouparoo's workers finish pending "  \
		"work, then remove it; Tapestry waits up to providers.grouparoo.delete_timeout) " \
		"or force (removed at once with Grouparoo's force option, pending work dropped)"}

static const tp_field rule_fields[] = {
	{.name = "key", .type = TP_TYPE_STRING, .flags = TP_F_REQUIRED,
	 .doc = "property key (or grouparooId, grouparooCreatedAt), e.g. "
		"${grouparoo.property/email.key}"},
	{.name = "op", .type = TP_TYPE_STRING, .flags = TP_F_REQUIRED, .enums = rule_ops,
	 .doc = "operation: eq, ne, like, gt, exists, relative_gt (in the past), ..."},
	{.name = "match", .type = TP_TYPE_ANY,
	 .doc = "value compared with (a string, a number or a boolean)"},
	{.name = "relative_match_number", .type = TP_TYPE_INT, .min = 1, .max = INT32_MAX,
	 .doc = "relative date rules: how many units, e.g. 30 for \"within 30 days\""},
	{.name = "relative_match_unit", .type = TP_TYPE_STRING, .enums = relative_units,
	 .doc = "relative date rules: days, weeks, months, quarters or years"},
	{.name = "relative_match_direction", .type = TP_TYPE_STRING, .enums = relative_directions,
	 .doc = "relative gt/lt/gte/lte rules: subtract (in the past) or add (in the future)"},
	{0},
};

static const tp_field rule_item = {
	.type = TP_TYPE_OBJECT,
	.fields = rule_fields,
	.doc = "one membership rule",
};

static void check_rule(const json_t *r, size_t i, tp_check *c)
{
	static const char *const no_match[] = {"exists", "notExists", NULL};
	static const char *const convenient_relative[] = {"relative_gt", "relative_lt", NULL};
	static const char *const comparisons[] = {"gt", "lt", "gte", "lte", NULL};
	const char *op = tp_json_get_str(r, "op");
	json_t *m = json_object_get(r, "match");
	bool num = json_object_get(r, "relative_match_number") != NULL;
	bool unit = json_object_get(r, "relative_match_unit") != NULL;
	bool dir = json_object_get(r, "relative_match_direction") != NULL;
	char path[96];

	snprintf(path, sizeof(path), "rules.%zu", i);
	if (m && !is_scalar(m)) {
		snprintf(path, sizeof(path), "rules.%zu.match", i);
		tp_check_error(c, path, "must be a string, a number or a boolean");
	}
	if (!op || tp_kind_has_ref(op))
		return;
	if (str_is(op, no_match)) {
		if (m || num || unit || dir)
			tp_check_error(c, path, "the %s operation takes no match and no "
				       "relative_match_* fields", op);
	} else if (str_is(op, convenient_relative)) {
		if (!num || !unit)
			tp_check_error(c, path, "the %s operation needs relative_match_number and "
				       "relative_match_unit, e.g. 30 and days", op);
		if (m || dir)
			tp_check_error(c, path, "the %s operation takes no match and no "
				       "relative_match_direction (%s implies it)", op,
				       strcmp(op, "relative_gt") == 0 ? "subtract" : "add");
	} else if (num || unit || dir) {
		if (!str_is(op, comparisons))
			tp_check_error(c, path, "relative_match_* fields only apply to the gt, lt, "
				       "gte, lte, relative_gt and relative_lt operations");
		else if (!num || !unit || !dir)
			tp_check_error(c, path, "a relative %s rule needs relative_match_number, "
				       "relative_match_unit and relative_match_direction", op);
		else if (m)
			tp_check_error(c, path, "a relative rule takes no match");
	} else if (!m) {
		snprintf(path, sizeof(path), "rules.%zu.match", i);
		tp_check_error(c, path, "required by the %s operation", op);
	}
}

static const tp_field group_fields[] = {
	{.name = "name", .type = TP_TYPE_STRING, .flags = TP_F_DEFAULT_NAME | TP_F_NOREF,
	 .doc = "group name in Grouparoo (defaults to the resource name)"},
	{.name = "model", .type = TP_TYPE_STRING, .flags = TP_F_REQUIRED | TP_F_IMMUTABLE,
	 .doc = "model id of the member records, usually ${grouparoo.model/<name>.id}"},
	{.name = "match_type", .type = TP_TYPE_STRING, .def = "\"all\"", .enums = match_types,
	 .doc = "a record is a member when all rules match, or when any does"},
	{.name = "rules", .type = TP_TYPE_LIST, .items = &rule_item,
	 .doc = "membership rules, at most 10"},
	DELETE_MODE_FIELD("group"),
	{0},
};

static void group_check(const json_t *spec, tp_check *c)
{
	json_t *rules = json_object_get(spec, "rules");
	size_t i;
	json_t *r;

	if (json_array_size(rules) > GROUP_RULE_LIMIT)
		tp_check_error(c, "rules", "a group has at most %d rules, got %zu",
			       GROUP_RULE_LIMIT, json_array_size(rules));
	json_array_foreach(rules, i, r)
		check_rule(r, i, c);
}

/*
 * Grouparoo answers a rule in one of two spellings: {op: exists} may come back as
 * {op: ne, match: "null"}, and {op: relative_gt, ...} as {op: gt, relative_match_direction:
 * subtract, ...}. The short spelling (what the UI and the config files use) is canonical.
 */
static void normalise_rule(json_t *r)
{
	const char *op, *match, *dir;
	bool num;

	drop_nulls(r);
	match_to_string(r);
	op = tp_json_get_str(r, "op");
	match = tp_json_get_str(r, "match");
	dir = tp_json_get_str(r, "relative_match_direction");
	num = json_object_get(r, "relative_match_number") != NULL;
	if (!op)
		return;
	if (!num && match && strcmp(match, "null") == 0 &&
	    (strcmp(op, "ne") == 0 || strcmp(op, "eq") == 0)) {
		json_object_set_new(r, "op", json_string(op[0] == 'n' ? "exists" : "notExists"));
		json_object_del(r, "match");
	} else if (num && dir && ((strcmp(op, "gt") == 0 && strcmp(dir, "subtract") == 0) ||
				  (strcmp(op, "lt") == 0 && strcmp(dir, "add") == 0))) {
		json_object_set_new(r, "op", json_string(op[0] == 'g' ? "relative_gt"
								       : "relative_lt"));
		json_object_del(r, "relative_match_direction");
	}
}

static void group_normalise(json_t *spec)
{
	json_t *rules = json_object_get(spec, "rules");
	size_t i;
	json_t *r;

	/* rule order is kept: Grouparoo stores positions and answers in that order */
	json_array_foreach(rules, i, r)
		if (json_is_object(r))
			normalise_rule(r);
	tp_json_drop_empty(spec, "rules", TP_JSON_EMPTY_ABSENT);
}

static const tp_kind kind_group = {
	.name = "grouparoo.group",
	.phase = TP_PHASE_SYNCING,
	.doc = "a Grouparoo group: the records of a model that match a set of rules",
	.fields = group_fields,
	.outputs = id_outputs,
	.check = group_check,
	.normalise = group_normalise,
	.observe = tp_gr_group_observe,
	.create = tp_gr_group_create,
	.update = tp_gr_group_update,
	.remove = tp_gr_group_remove,
	.adopt = tp_gr_group_adopt,
};

/* ---------------------------------------------------------------- destination */

static const char *const sync_modes[] = {"sync", "additive", "enrich", NULL};
static const char *const collections[] = {"none", "group", "model", NULL};

static const tp_field membership_fields[] = {
	{.name = "group", .type = TP_TYPE_STRING, .flags = TP_F_REQUIRED,
	 .doc = "group id, usually ${grouparoo.group/<name>.id}"},
	{.name = "remote_key", .type = TP_TYPE_STRING, .flags = TP_F_REQUIRED,
	 .doc = "name of the list or tag the group's members get in the destination"},
	{0},
};

static const tp_field membership_item = {
	.type = TP_TYPE_OBJECT,
	.fields = membership_fields,
	.doc = "one group whose membership is exported",
};

static const tp_field destination_fields[] = {
	{.name = "name", .type = TP_TYPE_STRING, .flags = TP_F_DEFAULT_NAME | TP_F_NOREF,
	 .doc = "destination name in Grouparoo (defaults to the resource name)"},
	{.name = "app", .type = TP_TYPE_STRING, .flags = TP_F_REQUIRED | TP_F_IMMUTABLE,
	 .doc = "app id records are exported through, usually ${grouparoo.app/<name>.id}"},
	{.name = "model", .type = TP_TYPE_STRING, .flags = TP_F_REQUIRED | TP_F_IMMUTABLE,
	 .doc = "model id of the exported records, usually ${grouparoo.model/<name>.id}"},
	{.name = "type", .type = TP_TYPE_STRING, .flags = TP_F_REQUIRED | TP_F_IMMUTABLE,
	 .doc = "destination type of the app's plugin, e.g. \"mailchimp-export\""},
	{.name = "sync_mode", .type = TP_TYPE_STRING, .enums = sync_modes,
	 .doc = "sync (create, update, delete), additive (no deletes) or enrich (update only)"},
	{.name = "options", .type = TP_TYPE_MAP, .items = &option_item,
	 .doc = "options of the destination type, e.g. {listId: \"...\"}"},
	{.name = "mapping", .type = TP_TYPE_MAP, .items = &key_item,
	 .doc = "destination field → property key, e.g. {email_address: "
		"${grouparoo.property/email.key}}"},
	{.name = "collection", .type = TP_TYPE_STRING, .enums = collections,
	 .doc = "records exported: none, a group's members (see `group`) or the whole model"},
	{.name = "group", .type = TP_TYPE_STRING,
	 .doc = "group id whose members are exported (collection: group); absent: none"},
	{.name = "destination_group_memberships", .type = TP_TYPE_LIST, .flags = TP_F_UNORDERED,
	 .items = &membership_item,
	 .doc = "groups exported as lists or tags: [{group: ${...}, remote_key: \"VIPs\"}]"},
	DELETE_MODE_FIELD("destination"),
	{0},
};

static void destination_check(const json_t *spec, tp_check *c)
{
	const char *coll = tp_json_get_str(spec, "collection");
	bool has_group = json_object_get(spec, "group") != NULL;
	json_t *dgm = json_object_get(spec, "destination_group_memberships");
	size_t i, j;
	json_t *m;

	check_options(spec, "options", c);
	if (coll && !tp_kind_has_ref(coll)) {
		if (strcmp(coll, "group") == 0 && !has_group)
			tp_check_error(c, "group", "required when collection is group");
		else if (strcmp(coll, "group") != 0 && has_group)
			tp_check_error(c, "group", "only used when collection is group (it is %s); "
				       "remove it or set collection: group", coll);
	}
	json_array_foreach(dgm, i, m) {
		const char *g = tp_json_get_str(m, "group");
		for (j = 0; g && j < i; j++) {
			const char *pg = tp_json_get_str(json_array_get(dgm, j), "group");
			if (pg && strcmp(pg, g) == 0) {
				char path[96];
				snprintf(path, sizeof(path),
					 "destination_group_memberships.%zu.group", i);
				tp_check_error(c, path, "group \"%s\" is listed twice (also entry "
					       "%zu); each group has one remote key", g, j);
				break;
			}
		}
	}
}

static void destination_normalise(json_t *spec)
{
	json_t *dgm = json_object_get(spec, "destination_group_memberships");

	/* `group` alone means collection: group; neither means none (Grouparoo's default). */
	tp_json_drop_empty(spec, "group", TP_JSON_EMPTY_ABSENT);
	if (!json_object_get(spec, "collection"))
		json_object_set_new(spec, "collection",
				    json_string(json_object_get(spec, "group") ? "group" : "none"));
	tp_json_drop_empty(spec, "options", TP_JSON_EMPTY_ABSENT);
	tp_json_drop_empty(spec, "mapping", TP_JSON_EMPTY_ABSENT);
	if (json_is_array(dgm))
		tp_json_array_sort(dgm, cmp_membership_qsort, false);
	tp_json_drop_empty(spec, "destination_group_memberships", TP_JSON_EMPTY_ABSENT);
}

static const tp_kind kind_destination = {
	.name = "grouparoo.destination",
	.phase = TP_PHASE_SYNCING,
	.doc = "a Grouparoo destination: records of a model exported through an app (Mailchimp)",
	.fields = destination_fields,
	.outputs = id_outputs,
	.check = destination_check,
	.normalise = destination_normalise,
	.observe = tp_gr_destination_observe,
	.create = tp_gr_destination_create,
	.update = tp_gr_destination_update,
	.remove = tp_gr_destination_remove,
	.adopt = tp_gr_destination_adopt,
};

/* ---------------------------------------------------------------- provider */

#define GROUPAROO_MAX_CONCURRENCY 2

static const tp_field config_fields[] = {
	{.name = "url", .type = TP_TYPE_STRING, .flags = TP_F_REQUIRED,
	 .doc = "server base URL without /api/v1, e.g. http://grouparoo.internal:3000"},
	{.name = "api_key", .type = TP_TYPE_STRING, .flags = TP_F_REQUIRED | TP_F_SECRET_REF,
	 .doc = "API key with read and write permission on every topic"},
	{.name = "endpoint", .type = TP_TYPE_STRING,
	 .doc = "overrides url (TAPESTRY_ENDPOINT_GROUPAROO overrides both)"},
	{.name = "delete_timeout", .type = TP_TYPE_STRING,
	 .doc = "how long a delete in delete_mode wait waits for Grouparoo's workers "
		"(default \"10m\")"},
	TP_FIELD_MAX_CONCURRENCY(GROUPAROO_MAX_CONCURRENCY),
	{0},
};

static const tp_kind *const kinds[] = {
	&kind_model, &kind_app, &kind_source, &kind_property, &kind_group, &kind_destination, NULL,
};

const tp_provider tp_provider_grouparoo = {
	.name = "grouparoo",
	.config = config_fields,
	.needs_config = true,
	.kinds = kinds,
	.open = tp_gr_open,
	.close = tp_gr_close,
	/* Grouparoo on SQLite serialises writes; two in flight keep it busy without piling up
	 * SQLITE_BUSY retries */
	.max_concurrency = GROUPAROO_MAX_CONCURRENCY,
};
