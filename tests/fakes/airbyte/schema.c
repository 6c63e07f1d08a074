/*
 * fake_airbyte: the request schemas it enforces. This is the subset of
 * reference/airbyte/public-api.openapi.yaml (components/schemas) that Tapestry's Airbyte
 * reconciler and the demo use, written out as C tables: required properties, types, uuid
 * formats, enums, and — stricter than a lenient server — unknown properties refused, so a
 * client that misspells a field fails here instead of being silently ignored.
 */
#include "fake.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

bool fk_is_uuid(const char *s)
{
	static const int groups[] = {8, 4, 4, 4, 12};
	if (!s)
		return false;
	for (size_t g = 0; g < 5; g++) {
		for (int i = 0; i < groups[g]; i++, s++)
			if (!isxdigit((unsigned char)*s))
				return false;
		if (g < 4 && *s++ != '-')
			return false;
	}
	return *s == '\0';
}

/* ---------------------------------------------------------------- enums */

static const char *const grant_types[] = {"client_credentials", NULL};
static const char *const schedule_types[] = {"manual", "cron", NULL};
static const char *const namespace_definitions[] = {"source", "destination", "custom_format", NULL};
static const char *const schema_update_behaviors[] = {"ignore", "disable_connection",
						      "propagate_columns", "propagate_fully", NULL};
static const char *const connection_statuses[] = {"active", "inactive", "deprecated", "locked",
						  NULL};
static const char *const mapper_types[] = {"hashing",    "field-renaming",  "row-filtering",
					   "encryption", "field-filtering", NULL};
static const char *const resource_job_types[] = {
	"get_spec",         "check_connection",   "discover_schema", "sync",
	"reset_connection", "connection_updater", "replicate",       NULL};

const char *const fk_sync_modes[] = {
	"full_refresh_overwrite",      "full_refresh_overwrite_deduped",
	"full_refresh_append",         "full_refresh_update",
	"full_refresh_soft_delete",    "incremental_append",
	"incremental_deduped_history", "incremental_update",
	"incremental_soft_delete",     NULL,
};
const char *const fk_job_types[] = {"sync", "reset", "refresh", "clear", NULL};
const char *const fk_job_statuses[] = {"pending", "queued",    "running",   "incomplete",
				       "failed",  "succeeded", "cancelled", NULL};

/* ---------------------------------------------------------------- shared pieces */

static const fk_prop string_item = {.type = FK_STR};
static const fk_prop string_list = {.type = FK_ARR, .items = &string_item};

/* ResourceRequirements / JobTypeResourceLimit / ScopedResourceRequirements */
static const fk_prop resource_requirements_props[] = {
	{.name = "cpu_request", .type = FK_STR},
	{.name = "cpu_limit", .type = FK_STR},
	{.name = "memory_request", .type = FK_STR},
	{.name = "memory_limit", .type = FK_STR},
	{.name = "ephemeral_storage_request", .type = FK_STR},
	{.name = "ephemeral_storage_limit", .type = FK_STR},
	{0},
};
static const fk_prop job_type_limit_props[] = {
	{.name = "jobType", .type = FK_STR, .required = true, .enums = resource_job_types},
	{.name = "resourceRequirements",
	 .type = FK_OBJ,
	 .required = true,
	 .props = resource_requirements_props},
	{0},
};
static const fk_prop job_type_limit = {.type = FK_OBJ, .props = job_type_limit_props};
static const fk_prop scoped_requirements_props[] = {
	{.name = "default", .type = FK_OBJ, .props = resource_requirements_props},
	{.name = "jobSpecific", .type = FK_ARR, .items = &job_type_limit},
	{0},
};

/* ---------------------------------------------------------------- token */

/* ApplicationTokenRequestWithGrant: the spec lists `grant-type` among the properties but
 * requires `grant_type` (NOTES.md); both spellings are accepted, grant_type is required. */
static const fk_prop token_props[] = {
	{.name = "client_id", .type = FK_STR, .required = true},
	{.name = "client_secret", .type = FK_STR, .required = true},
	{.name = "grant_type", .type = FK_STR, .required = true, .enums = grant_types},
	{.name = "grant-type", .type = FK_STR, .enums = grant_types},
	{0},
};
const fk_prop fk_token_request = {.type = FK_OBJ, .props = token_props};

/* ---------------------------------------------------------------- workspaces */

static const fk_prop toggle_props[] = {
	{.name = "enabled", .type = FK_BOOL},
	{.name = "url", .type = FK_STR},
	{0},
};
static const fk_prop email_props[] = {
	{.name = "enabled", .type = FK_BOOL},
	{0},
};
static const fk_prop notification_props[] = {
	{.name = "email", .type = FK_OBJ, .props = email_props},
	{.name = "webhook", .type = FK_OBJ, .props = toggle_props},
	{0},
};
static const fk_prop notifications_props[] = {
	{.name = "failure", .type = FK_OBJ, .props = notification_props},
	{.name = "success", .type = FK_OBJ, .props = notification_props},
	{.name = "connectionUpdate", .type = FK_OBJ, .props = notification_props},
	{.name = "connectionUpdateActionRequired", .type = FK_OBJ, .props = notification_props},
	{.name = "syncDisabled", .type = FK_OBJ, .props = notification_props},
	{.name = "syncDisabledWarning", .type = FK_OBJ, .props = notification_props},
	{0},
};
static const fk_prop workspace_create_props[] = {
	{.name = "name", .type = FK_STR, .required = true},
	{.name = "organizationId", .type = FK_UUID},
	{.name = "notifications", .type = FK_OBJ, .props = notifications_props},
	{.name = "regionId", .type = FK_UUID},
	{0},
};
static const fk_prop workspace_update_props[] = {
	{.name = "name", .type = FK_STR},
	{.name = "notifications", .type = FK_OBJ, .props = notifications_props},
	{.name = "regionId", .type = FK_UUID},
	{0},
};
const fk_prop fk_workspace_create = {.type = FK_OBJ, .props = workspace_create_props};
const fk_prop fk_workspace_update = {.type = FK_OBJ, .props = workspace_update_props};

/* ---------------------------------------------------------------- sources, destinations */

static const fk_prop source_create_props[] = {
	{.name = "name", .type = FK_STR, .required = true},
	{.name = "definitionId", .type = FK_UUID},
	{.name = "workspaceId", .type = FK_UUID, .required = true},
	{.name = "configuration", .type = FK_ANYOBJ, .required = true},
	{.name = "secretId", .type = FK_STR},
	{.name = "resourceAllocation", .type = FK_OBJ, .props = scoped_requirements_props},
	{0},
};
static const fk_prop source_put_props[] = {
	{.name = "name", .type = FK_STR, .required = true},
	{.name = "configuration", .type = FK_ANYOBJ, .required = true},
	{.name = "resourceAllocation", .type = FK_OBJ, .props = scoped_requirements_props},
	{0},
};
static const fk_prop source_patch_props[] = {
	{.name = "name", .type = FK_STR},
	{.name = "workspaceId", .type = FK_UUID},
	{.name = "configuration", .type = FK_ANYOBJ},
	{.name = "secretId", .type = FK_STR},
	{.name = "resourceAllocation", .type = FK_OBJ, .props = scoped_requirements_props},
	{0},
};
static const fk_prop destination_create_props[] = {
	{.name = "name", .type = FK_STR, .required = true},
	{.name = "definitionId", .type = FK_UUID},
	{.name = "workspaceId", .type = FK_UUID, .required = true},
	{.name = "configuration", .type = FK_ANYOBJ, .required = true},
	{.name = "resourceAllocation", .type = FK_OBJ, .props = scoped_requirements_props},
	{0},
};
static const fk_prop destination_put_props[] = {
	{.name = "name", .type = FK_STR, .required = true},
	{.name = "configuration", .type = FK_ANYOBJ, .required = true},
	{.name = "resourceAllocation", .type = FK_OBJ, .props = scoped_requirements_props},
	{0},
};
static const fk_prop destination_patch_props[] = {
	{.name = "name", .type = FK_STR},
	{.name = "configuration", .type = FK_ANYOBJ},
	{.name = "resourceAllocation", .type = FK_OBJ, .props = scoped_requirements_props},
	{0},
};
const fk_prop fk_source_create = {.type = FK_OBJ, .props = source_create_props};
const fk_prop fk_source_put = {.type = FK_OBJ, .props = source_put_props};
const fk_prop fk_source_patch = {.type = FK_OBJ, .props = source_patch_props};
const fk_prop fk_destination_create = {.type = FK_OBJ, .props = destination_create_props};
const fk_prop fk_destination_put = {.type = FK_OBJ, .props = destination_put_props};
const fk_prop fk_destination_patch = {.type = FK_OBJ, .props = destination_patch_props};

/* ---------------------------------------------------------------- connections */

static const fk_prop field_path_props[] = {
	{.name = "fieldPath", .type = FK_ARR, .items = &string_item},
	{0},
};
static const fk_prop selected_field = {.type = FK_OBJ, .props = field_path_props};
static const fk_prop mapper_props[] = {
	{.name = "id", .type = FK_UUID},
	{.name = "type", .type = FK_STR, .required = true, .enums = mapper_types},
	{.name = "mapperConfiguration", .type = FK_ANYOBJ, .required = true},
	{0},
};
static const fk_prop mapper = {.type = FK_OBJ, .props = mapper_props};
static const fk_prop stream_props[] = {
	{.name = "name", .type = FK_STR, .required = true},
	{.name = "namespace", .type = FK_STR},
	{.name = "syncMode", .type = FK_STR, .enums = fk_sync_modes},
	{.name = "cursorField", .type = FK_ARR, .items = &string_item},
	{.name = "primaryKey", .type = FK_ARR, .items = &string_list},
	{.name = "includeFiles", .type = FK_BOOL},
	{.name = "destinationObjectName", .type = FK_STR},
	{.name = "selectedFields", .type = FK_ARR, .items = &selected_field},
	{.name = "mappers", .type = FK_ARR, .items = &mapper},
	{0},
};
static const fk_prop stream = {.type = FK_OBJ, .props = stream_props};
static const fk_prop stream_configurations_props[] = {
	{.name = "streams", .type = FK_ARR, .items = &stream},
	{0},
};
static const fk_prop schedule_props[] = {
	{.name = "scheduleType", .type = FK_STR, .required = true, .enums = schedule_types},
	{.name = "cronExpression", .type = FK_STR},
	{0},
};
static const fk_prop tag_props[] = {
	{.name = "tagId", .type = FK_UUID, .required = true},
	{.name = "workspaceId", .type = FK_UUID, .required = true},
	{.name = "name", .type = FK_STR, .required = true},
	{.name = "color", .type = FK_STR, .required = true},
	{0},
};
static const fk_prop tag = {.type = FK_OBJ, .props = tag_props};

/* ConnectionCreateRequest; ConnectionPatchRequest is the same without the two ids */
static const fk_prop connection_create_props[] = {
	{.name = "sourceId", .type = FK_UUID, .required = true},
	{.name = "destinationId", .type = FK_UUID, .required = true},
	{.name = "name", .type = FK_STR},
	{.name = "configurations", .type = FK_OBJ, .props = stream_configurations_props},
	{.name = "schedule", .type = FK_OBJ, .props = schedule_props},
	{.name = "dataResidency", .type = FK_STR},
	{.name = "namespaceDefinition", .type = FK_STR, .enums = namespace_definitions},
	{.name = "namespaceFormat", .type = FK_STR},
	{.name = "prefix", .type = FK_STR},
	{.name = "nonBreakingSchemaUpdatesBehavior",
	 .type = FK_STR,
	 .enums = schema_update_behaviors},
	{.name = "status", .type = FK_STR, .enums = connection_statuses},
	{.name = "tags", .type = FK_ARR, .items = &tag},
	{0},
};
static const fk_prop connection_patch_props[] = {
	{.name = "name", .type = FK_STR},
	{.name = "configurations", .type = FK_OBJ, .props = stream_configurations_props},
	{.name = "schedule", .type = FK_OBJ, .props = schedule_props},
	{.name = "dataResidency", .type = FK_STR},
	{.name = "namespaceDefinition", .type = FK_STR, .enums = namespace_definitions},
	{.name = "namespaceFormat", .type = FK_STR},
	{.name = "prefix", .type = FK_STR},
	{.name = "nonBreakingSchemaUpdatesBehavior",
	 .type = FK_STR,
	 .enums = schema_update_behaviors},
	{.name = "status", .type = FK_STR, .enums = connection_statuses},
	{.name = "tags", .type = FK_ARR, .items = &tag},
	{0},
};
const fk_prop fk_connection_create = {.type = FK_OBJ, .props = connection_create_props};
const fk_prop fk_connection_patch = {.type = FK_OBJ, .props = connection_patch_props};

/* ---------------------------------------------------------------- jobs */

static const fk_prop job_create_props[] = {
	{.name = "connectionId", .type = FK_UUID, .required = true},
	{.name = "jobType", .type = FK_STR, .required = true, .enums = fk_job_types},
	{0},
};
const fk_prop fk_job_create = {.type = FK_OBJ, .props = job_create_props};

/* ---------------------------------------------------------------- validator */

static const char *type_name(const json_t *v)
{
	switch (json_typeof(v)) {
	case JSON_OBJECT: return "an object";
	case JSON_ARRAY: return "an array";
	case JSON_STRING: return "a string";
	case JSON_INTEGER: return "an integer";
	case JSON_REAL: return "a number";
	case JSON_TRUE:
	case JSON_FALSE: return "a boolean";
	default: return "null";
	}
}

static int fail(char *err, size_t errlen, const char *path, const char *what, const json_t *v)
{
	snprintf(err, errlen, "%s%s%s%s%s", path[0] ? path : "body", ": ", what, v ? ", got " : "",
		 v ? type_name(v) : "");
	return -1;
}

int fk_validate(const json_t *v, const fk_prop *schema, const char *path, char *err, size_t errlen)
{
	char sub[512];
	switch (schema->type) {
	case FK_STR:
	case FK_UUID:
		if (!json_is_string(v))
			return fail(err, errlen, path, "must be a string", v);
		if (schema->type == FK_UUID && !fk_is_uuid(json_string_value(v))) {
			snprintf(err, errlen, "%s: must be a uuid, got \"%.64s\"", path,
				 json_string_value(v));
			return -1;
		}
		if (schema->enums) {
			tp_buf b;
			for (size_t i = 0; schema->enums[i]; i++)
				if (strcmp(schema->enums[i], json_string_value(v)) == 0)
					return 0;
			tp_buf_init(&b, 4096);
			for (size_t i = 0; schema->enums[i]; i++)
				tp_buf_printf(&b, "%s%s", i ? ", " : "", schema->enums[i]);
			snprintf(err, errlen, "%s: must be one of %s, got \"%.64s\"", path,
				 tp_buf_cstr(&b), json_string_value(v));
			tp_buf_free(&b);
			return -1;
		}
		return 0;
	case FK_INT:
		return json_is_integer(v) ? 0 : fail(err, errlen, path, "must be an integer", v);
	case FK_BOOL:
		return json_is_boolean(v) ? 0 : fail(err, errlen, path, "must be a boolean", v);
	case FK_ANYOBJ:
		return json_is_object(v) ? 0 : fail(err, errlen, path, "must be an object", v);
	case FK_ARR: {
		size_t i;
		json_t *item;
		if (!json_is_array(v))
			return fail(err, errlen, path, "must be an array", v);
		json_array_foreach(v, i, item) {
			snprintf(sub, sizeof(sub), "%s.%zu", path, i);
			if (fk_validate(item, schema->items, sub, err, errlen) < 0)
				return -1;
		}
		return 0;
	}
	case FK_OBJ: {
		const char *k;
		json_t *item;
		if (!json_is_object(v))
			return fail(err, errlen, path, "must be an object", v);
		json_object_foreach((json_t *)(uintptr_t)v, k, item) {
			const fk_prop *p = schema->props;
			while (p->name && strcmp(p->name, k) != 0)
				p++;
			snprintf(sub, sizeof(sub), "%s%s%s", path, path[0] ? "." : "", k);
			if (!p->name) {
				snprintf(err, errlen, "%s: unknown field (not in the API schema)",
					 sub);
				return -1;
			}
			if (fk_validate(item, p, sub, err, errlen) < 0)
				return -1;
		}
		for (const fk_prop *p = schema->props; p->name; p++) {
			if (p->required && !json_object_get(v, p->name)) {
				snprintf(err, errlen, "%s%s%s: required field is missing", path,
					 path[0] ? "." : "", p->name);
				return -1;
			}
		}
		return 0;
	}
	}
	return 0;
}
