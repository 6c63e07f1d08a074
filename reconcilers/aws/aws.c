/*
 * The aws provider's schemas: `aws.stack` (a CloudFormation stack built from a template in the
 * pipeline repository: the hosts Airbyte and Grouparoo run on, the landing bucket) and
 * `aws.ssm_parameter` (a Parameter Store entry, typically a setting those hosts read at boot).
 * This is the declarative half of the provider and its entry point: the field schemas the
 * spec loader enforces, the semantic checks it runs after them, the normalisation the diff
 * applies before comparing, and the provider vtable that opens a session (query.c) and
 * wires the runtime slots (cloudformation.c, ssm.c) and ${secret:ssm:...}. The API code
 * (sigv4.c, credentials.c, xml.c, query.c) sits beside it; aws_int.h is the map. Limits
 * follow the service models in reference/aws/models.
 */
#include "aws_int.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* CloudFormation (CreateStackInput, Tag, TagKey, TagValue). */
#define STACK_NAME_MAX 128
#define STACK_TAGS_MAX 50
#define STACK_TAGS_RESERVED 1 /* Tapestry's ownership tag takes one of the 50 slots */
#define STACK_TAG_KEY_MAX 128
#define STACK_TAG_VALUE_MAX 256
#define LOGICAL_ID_MAX 255

/* Parameter Store (PutParameterRequest). The model says 2048 for a name, of which 1037 are
 * reserved for SSM's own use: 1011 is the most a name can have, and the ARN prefix
 * ("arn:aws:ssm:<region>:<account>:parameter/") counts towards it too. */
#define SSM_NAME_MAX 1011
#define SSM_NAME_DEPTH_MAX 15
#define SSM_NAME_CHARS                                                                        \
	"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-/"
#define SSM_KEY_ID_CHARS                                                                      \
	"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789:/_-"
#define SSM_KEY_ID_MAX 256
#define SSM_TEXT_MAX 1024 /* Description, AllowedPattern */
#define SSM_STANDARD_VALUE_MAX 4096
#define SSM_ADVANCED_VALUE_MAX 8192

/* ---------------------------------------------------------------- helpers */

/* Length in characters (AWS counts limits such as tag lengths in characters, not bytes);
 * the loader has already rejected invalid UTF-8. */
static size_t utf8_chars(const char *s)
{
	size_t n = 0;
	for (; *s; s++)
		if (((unsigned char)*s & 0xC0) != 0x80)
			n++;
	return n;
}

static bool is_alnum_id(const char *s)
{
	size_t n = strlen(s);
	return n >= 1 && n <= LOGICAL_ID_MAX &&
	       strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789") == n;
}

/* Sorts a list of strings and removes duplicates, in place. A list holding anything but
 * strings is left as it is (the schema has rejected it already on the desired side). */
static void sort_unique(json_t *spec, const char *key)
{
	json_t *list = json_object_get(spec, key);
	size_t n = json_array_size(list);
	const char **items = NULL;
	json_t *out = NULL;

	if (n == 0)
		return;
	items = tp_calloc(n, sizeof(*items));
	for (size_t i = 0; i < n; i++) {
		items[i] = json_string_value(json_array_get(list, i));
		if (!items[i])
			goto done;
	}
	qsort(items, n, sizeof(*items), tp_str_qsort_cmp);
	out = json_array();
	for (size_t i = 0; i < n; i++)
		if (i == 0 || strcmp(items[i], items[i - 1]) != 0)
			json_array_append_new(out, json_string(items[i]));
	/* Built completely before the old list (which owns the strings) is replaced. */
	json_object_set_new(spec, key, out);
done:
	free(items);
}

/* ---------------------------------------------------------------- aws.stack */

static const char *const capability_enums[] = {
	"CAPABILITY_IAM", "CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND", NULL,
};

static const char *const on_failure_enums[] = {"DO_NOTHING", "ROLLBACK", "DELETE", NULL};

static const tp_field capability_item = {
	.type = TP_TYPE_STRING, .enums = capability_enums,
	.doc = "a capability the template needs acknowledged",
};

static const tp_field parameter_item = {
	.type = TP_TYPE_STRING,
	.doc = "parameter value; may contain ${...} references",
};

static const tp_field tag_item = {
	.type = TP_TYPE_STRING,
	.doc = "tag value (1 to 256 characters)",
};

static const tp_field logical_id_item = {
	.type = TP_TYPE_STRING,
	.doc = "logical id of a resource in the template",
};

static const tp_field stack_fields[] = {
	{.name = "stack_name", .type = TP_TYPE_STRING,
	 .flags = TP_F_DEFAULT_NAME | TP_F_IMMUTABLE | TP_F_NOREF,
	 .doc = "CloudFormation stack name (letter first, then letters, digits, '-'; at most 128); "
		"defaults to the resource name"},
	{.name = "template", .type = TP_TYPE_STRING, .flags = TP_F_FILE | TP_F_REQUIRED,
	 .doc = "template file in the pipeline repository, e.g. templates/airbyte.yaml (sent "
		"inline: at most 51,200 bytes)"},
	{.name = "parameters", .type = TP_TYPE_MAP, .items = &parameter_item,
	 .doc = "template parameters by name; omitted ones take the template's defaults"},
	{.name = "capabilities", .type = TP_TYPE_LIST, .flags = TP_F_UNORDERED,
	 .items = &capability_item,
	 .doc = "capabilities acknowledged for the template: CAPABILITY_IAM, CAPABILITY_NAMED_IAM, "
		"CAPABILITY_AUTO_EXPAND"},
	{.name = "tags", .type = TP_TYPE_MAP, .items = &tag_item,
	 .doc = "stack tags (at most 49: Tapestry adds its ownership tag), propagated to the "
		"stack's resources"},
	{.name = "termination_protection", .type = TP_TYPE_BOOL, .def = "false",
	 .doc = "refuse DeleteStack while on; turn it off in a commit before removing the stack"},
	{.name = "timeout_minutes", .type = TP_TYPE_INT, .min = 1, .max = 1440,
	 .doc = "creation only: minutes before a create that has not finished fails"},
	{.name = "on_failure", .type = TP_TYPE_STRING, .enums = on_failure_enums,
	 .doc = "creation only: what a failed create leaves (ROLLBACK, the AWS default, leaves a "
		"stack that can only be deleted; DELETE removes it; DO_NOTHING keeps it to debug)"},
	{.name = "retain_resources", .type = TP_TYPE_LIST, .flags = TP_F_UNORDERED,
	 .items = &logical_id_item,
	 .doc = "logical ids kept when a delete fails on them (e.g. a non-empty bucket); use "
		"DeletionPolicy: Retain in the template to keep a resource always"},
	{0},
};

static const char *const stack_outputs[] = {"id", "name", "~outputs.*", NULL};

static void stack_check_tags(json_t *tags, tp_check *c)
{
	const char *key;
	json_t *value;

	if (json_object_size(tags) > STACK_TAGS_MAX - STACK_TAGS_RESERVED)
		tp_check_error(c, "tags", "at most %d tags are allowed (CloudFormation takes %d "
			       "and Tapestry uses %d for its ownership tag), got %zu",
			       STACK_TAGS_MAX - STACK_TAGS_RESERVED, STACK_TAGS_MAX,
			       STACK_TAGS_RESERVED, json_object_size(tags));
	json_object_foreach (tags, key, value) {
		const char *v = json_string_value(value);
		char *path = tp_sprintf("tags.%s", key);
		size_t klen = utf8_chars(key);

		if (klen == 0 || klen > STACK_TAG_KEY_MAX)
			tp_check_error(c, path, "tag keys must have 1 to %d characters, got %zu",
				       STACK_TAG_KEY_MAX, klen);
		if (strncasecmp(key, "aws:", 4) == 0)
			tp_check_error(c, path, "the tag key prefix \"aws:\" is reserved for AWS");
		if (v && !tp_kind_has_ref(v)) {
			size_t vlen = utf8_chars(v);
			if (vlen == 0 || vlen > STACK_TAG_VALUE_MAX)
				tp_check_error(c, path, "stack tag values must have 1 to %d "
					       "characters, got %zu", STACK_TAG_VALUE_MAX, vlen);
		}
		free(path);
	}
}

static void stack_check(const json_t *spec, tp_check *c)
{
	const char *name = tp_json_get_str(spec, "stack_name");
	json_t *params = json_object_get(spec, "parameters");
	json_t *retain = json_object_get(spec, "retain_resources");
	const char *key;
	json_t *value;

	if (name) {
		size_t n = strlen(name);
		bool letter = (name[0] >= 'a' && name[0] <= 'z') ||
			      (name[0] >= 'A' && name[0] <= 'Z');
		bool ok = n >= 1 && n <= STACK_NAME_MAX && letter &&
			  strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
				       "0123456789-") == n;
		if (!ok)
			tp_check_error(c, "stack_name", "must start with a letter and contain "
				       "only letters, digits and '-' (at most %d characters), got "
				       "\"%s\"; set stack_name when the resource name does not fit",
				       STACK_NAME_MAX, name);
	}
	json_object_foreach (params, key, value) {
		if (!is_alnum_id(key)) {
			char *path = tp_sprintf("parameters.%s", key);
			tp_check_error(c, path, "template parameter names are alphanumeric "
				       "(A-Za-z0-9, at most %d characters), got \"%s\"",
				       LOGICAL_ID_MAX, key);
			free(path);
		}
	}
	stack_check_tags(json_object_get(spec, "tags"), c);
	for (size_t i = 0; i < json_array_size(retain); i++) {
		const char *id = json_string_value(json_array_get(retain, i));
		if (id && !tp_kind_has_ref(id) && !is_alnum_id(id)) {
			char *path = tp_sprintf("retain_resources.%zu", i);
			tp_check_error(c, path, "must be a logical resource id from the template "
				       "(A-Za-z0-9), got \"%s\"", id);
			free(path);
		}
	}
}

static void stack_normalise(json_t *spec)
{
	sort_unique(spec, "capabilities");
	sort_unique(spec, "retain_resources");
	/* [] and {} mean the same as an absent field */
	tp_json_drop_empty(spec, "capabilities", TP_JSON_EMPTY_CONTAINER);
	tp_json_drop_empty(spec, "retain_resources", TP_JSON_EMPTY_CONTAINER);
	tp_json_drop_empty(spec, "parameters", TP_JSON_EMPTY_CONTAINER);
	tp_json_drop_empty(spec, "tags", TP_JSON_EMPTY_CONTAINER);
}

/* plan --refresh: the change set CloudFormation would execute, as the entry's details */
static int stack_plan_details(void *session, const tp_op *op, json_t **out)
{
	json_t *changes = NULL;
	int rc = tp_aws_stack_change_set(session, op, &changes);
	*out = NULL;
	if (rc == 0 && changes)
		*out = json_pack("{s:s,s:o}", "source", "cloudformation change set",
				 "resource_changes", changes);
	return rc;
}

static const tp_kind kind_stack = {
	.name = "aws.stack",
	.phase = TP_PHASE_INFRASTRUCTURE,
	.doc = "a CloudFormation stack built from a template in the pipeline repository",
	.fields = stack_fields,
	.outputs = stack_outputs,
	.check = stack_check,
	.normalise = stack_normalise,
	.observe = tp_aws_stack_observe,
	.create = tp_aws_stack_create,
	.update = tp_aws_stack_update,
	.remove = tp_aws_stack_remove,
	.adopt = tp_aws_stack_adopt,
	.plan_details = stack_plan_details,
};

/* ---------------------------------------------------------------- aws.ssm_parameter */

static const char *const ssm_type_enums[] = {"String", "StringList", "SecureString", NULL};
static const char *const ssm_tier_enums[] = {"Standard", "Advanced", "Intelligent-Tiering", NULL};
static const char *const ssm_data_type_enums[] = {"text", "aws:ec2:image", "aws:ssm:integration",
						  NULL};

static const tp_field ssm_fields[] = {
	{.name = "name", .type = TP_TYPE_STRING,
	 .flags = TP_F_DEFAULT_NAME | TP_F_IMMUTABLE | TP_F_NOREF,
	 .doc = "parameter name, e.g. /rainshield/airbyte/host; defaults to the resource name"},
	{.name = "type", .type = TP_TYPE_STRING, .def = "\"String\"", .enums = ssm_type_enums,
	 .doc = "String, StringList (comma-separated) or SecureString (KMS-encrypted)"},
	{.name = "value", .type = TP_TYPE_STRING, .flags = TP_F_REQUIRED,
	 .doc = "the value; for a SecureString exactly one ${secret:...} reference"},
	{.name = "description", .type = TP_TYPE_STRING,
	 .doc = "what the parameter is for (at most 1024 characters)"},
	{.name = "tier", .type = TP_TYPE_STRING, .def = "\"Standard\"", .enums = ssm_tier_enums,
	 .doc = "Standard (4 KB), Advanced (8 KB; cannot go back to Standard) or "
		"Intelligent-Tiering (SSM picks one per write)"},
	{.name = "key_id", .type = TP_TYPE_STRING,
	 .doc = "KMS key (id, ARN or alias) for a SecureString; default alias/aws/ssm"},
	{.name = "allowed_pattern", .type = TP_TYPE_STRING,
	 .doc = "regular expression SSM checks the value against, e.g. ^\\d+$"},
	{.name = "data_type", .type = TP_TYPE_STRING, .def = "\"text\"",
	 .enums = ssm_data_type_enums,
	 .doc = "text, aws:ec2:image (SSM checks the value is an AMI id) or aws:ssm:integration"},
	{0},
};

static const char *const ssm_outputs[] = {"name", "arn", "~version", NULL};

static void ssm_check_name(const char *name, tp_check *c)
{
	size_t n = strlen(name);
	const char *first = name[0] == '/' ? name + 1 : name;
	size_t depth = 0;

	if (n == 0) {
		tp_check_error(c, "name", "must not be empty");
		return;
	}
	if (n > SSM_NAME_MAX) {
		tp_check_error(c, "name", "must have at most %d characters, got %zu", SSM_NAME_MAX,
			       n);
		return;
	}
	if (strspn(name, SSM_NAME_CHARS) != n) {
		tp_check_error(c, "name", "may contain only letters, digits and '_', '.', '-', "
			       "'/', got \"%s\"", name);
		return;
	}
	for (const char *p = name; *p; p++)
		depth += *p == '/';
	if (depth > 0 && name[0] != '/')
		tp_check_error(c, "name", "a hierarchical name must start with '/', got \"%s\"",
			       name);
	else if (strstr(name, "//") || name[n - 1] == '/')
		tp_check_error(c, "name", "must not contain empty path segments (\"//\" or a "
			       "trailing '/'), got \"%s\"", name);
	if (depth > SSM_NAME_DEPTH_MAX)
		tp_check_error(c, "name", "hierarchies are limited to %d levels, got %zu",
			       SSM_NAME_DEPTH_MAX, depth);
	if (strncasecmp(first, "aws", 3) == 0 || strncasecmp(first, "ssm", 3) == 0)
		tp_check_error(c, "name", "names beginning with \"aws\" or \"ssm\" (any case) are "
			       "reserved, got \"%s\"", name);
}

/* True when s is exactly one ${secret:...} reference and nothing else. */
static bool is_one_secret_ref(const char *s)
{
	size_t n = strlen(s);
	return n > strlen("${secret:}") && strncmp(s, "${secret:", 9) == 0 &&
	       strchr(s, '}') == s + n - 1;
}

static void ssm_check_value(const char *type, const char *tier, const char *value,
			    tp_check *c)
{
	size_t n = strlen(value);

	if (strcmp(type, "SecureString") == 0) {
		if (!is_one_secret_ref(value))
			tp_check_error(c, "value", "a SecureString value must be exactly one "
				       "${secret:...} reference (secrets never live in Git)");
		return;
	}
	if (strstr(value, "${secret:")) {
		tp_check_error(c, "value", "a secret reference would be stored in plain text in a "
			       "%s parameter; use type SecureString", type);
		return;
	}
	if (tp_kind_has_ref(value))
		return;
	if (n == 0)
		tp_check_error(c, "value", "must not be empty");
	if (n >= 4 && strncmp(value, "{{", 2) == 0 && strcmp(value + n - 2, "}}") == 0)
		tp_check_error(c, "value", "SSM does not accept values wrapped in {{...}}");
	if (strcmp(tier, "Standard") == 0 && n > SSM_STANDARD_VALUE_MAX)
		tp_check_error(c, "value", "is %zu bytes, more than the %d a Standard parameter "
			       "holds; use tier Advanced", n, SSM_STANDARD_VALUE_MAX);
	else if (n > SSM_ADVANCED_VALUE_MAX)
		tp_check_error(c, "value", "is %zu bytes, more than the %d a parameter can hold",
			       n, SSM_ADVANCED_VALUE_MAX);
}

static void ssm_check(const json_t *spec, tp_check *c)
{
	const char *name = tp_json_get_str(spec, "name");
	const char *type = tp_json_get_str(spec, "type");
	const char *value = tp_json_get_str(spec, "value");
	const char *tier = tp_json_get_str(spec, "tier");
	const char *key_id = tp_json_get_str(spec, "key_id");
	const char *description = tp_json_get_str(spec, "description");
	const char *pattern = tp_json_get_str(spec, "allowed_pattern");
	const char *data_type = tp_json_get_str(spec, "data_type");

	if (!type)
		type = "String";
	if (!tier)
		tier = "Standard";
	if (name)
		ssm_check_name(name, c);
	if (value)
		ssm_check_value(type, tier, value, c);
	if (key_id) {
		size_t n = strlen(key_id);
		if (strcmp(type, "SecureString") != 0)
			tp_check_error(c, "key_id", "only a SecureString is encrypted: set type "
				       "SecureString or remove key_id");
		else if (!tp_kind_has_ref(key_id) &&
			 (n == 0 || n > SSM_KEY_ID_MAX || strspn(key_id, SSM_KEY_ID_CHARS) != n))
			tp_check_error(c, "key_id", "must be a KMS key id, ARN or alias (1 to %d "
				       "of A-Za-z0-9 ':' '/' '_' '-'), got \"%s\"",
				       SSM_KEY_ID_MAX, key_id);
	}
	if (description && !tp_kind_has_ref(description) && utf8_chars(description) > SSM_TEXT_MAX)
		tp_check_error(c, "description", "must have at most %d characters", SSM_TEXT_MAX);
	if (pattern && !tp_kind_has_ref(pattern) && utf8_chars(pattern) > SSM_TEXT_MAX)
		tp_check_error(c, "allowed_pattern", "must have at most %d characters",
			       SSM_TEXT_MAX);
	if (data_type && strcmp(data_type, "aws:ec2:image") == 0 && strcmp(type, "String") != 0)
		tp_check_error(c, "data_type", "aws:ec2:image applies only to type String, got "
			       "%s", type);
}

static void ssm_normalise(json_t *spec)
{
	/* "" means the same as an absent description or pattern */
	tp_json_drop_empty(spec, "description", TP_JSON_EMPTY_STRING);
	tp_json_drop_empty(spec, "allowed_pattern", TP_JSON_EMPTY_STRING);
}

static const tp_kind kind_ssm_parameter = {
	.name = "aws.ssm_parameter",
	.phase = TP_PHASE_INFRASTRUCTURE,
	.doc = "an SSM Parameter Store parameter (String, StringList or SecureString)",
	.fields = ssm_fields,
	.outputs = ssm_outputs,
	.check = ssm_check,
	.normalise = ssm_normalise,
	.observe = tp_aws_ssm_observe,
	.create = tp_aws_ssm_create,
	.update = tp_aws_ssm_update,
	.remove = tp_aws_ssm_remove,
	.adopt = tp_aws_ssm_adopt,
};

/* ---------------------------------------------------------------- provider */

#define AWS_MAX_CONCURRENCY 4

/* Credentials are not configured here: they come from the environment, the shared
 * credentials/config files (`profile`), then IMDSv2 on the controller host. */
static const tp_field config_fields[] = {
	{.name = "region", .type = TP_TYPE_STRING, .flags = TP_F_REQUIRED,
	 .doc = "AWS region every resource of the pipeline lives in, e.g. us-east-1"},
	{.name = "endpoint", .type = TP_TYPE_STRING,
	 .doc = "URL used instead of the AWS endpoints (e.g. moto_server); TAPESTRY_ENDPOINT_AWS "
		"wins over it"},
	{.name = "profile", .type = TP_TYPE_STRING,
	 .doc = "profile in the shared credentials/config files to take credentials from"},
	{.name = "role_arn", .type = TP_TYPE_STRING,
	 .doc = "IAM role to assume (STS AssumeRole) with those credentials before every call"},
	TP_FIELD_MAX_CONCURRENCY(AWS_MAX_CONCURRENCY),
	{0},
};

static const tp_kind *const kinds[] = {&kind_stack, &kind_ssm_parameter, NULL};

/* One session per engine run: region, endpoint override, credentials chain, retry quota. */
static int aws_open(void **out, const tp_provider_env *env)
{
	tp_aws_cred_options co = {0};
	tp_aws_session *s = NULL;
	int rc;

	*out = NULL;
	co.profile = tp_json_get_str(env->config, "profile");
	co.role_arn = tp_json_get_str(env->config, "role_arn");
	rc = tp_aws_session_new(&s, tp_json_get_str(env->config, "region"), env->endpoint,
				env->pipeline, &co);
	if (rc < 0)
		return rc;
	s->metrics = env->metrics;
	*out = s;
	return 0;
}

static void aws_close(void *session)
{
	tp_aws_session_free(session);
}

const tp_provider tp_provider_aws = {
	.name = "aws",
	.config = config_fields,
	.needs_config = true,
	.kinds = kinds,
	.open = aws_open,
	.close = aws_close,
	.max_concurrency = AWS_MAX_CONCURRENCY,
	.secret_scheme = "ssm",
	.resolve_secret = tp_aws_ssm_resolve_secret,
};
