/*
 * aws.stack at runtime: CloudFormation over the Query protocol (query.c). A stack is created
 * or updated from a template in the pipeline repository (read through op->tree, checked
 * against the digest the plan saw, syntax-checked before any call), with its parameters,
 * capabilities, tags plus Tapestry's ownership tag (tapestry:owner = op->marker), termination
 * protection, and the engine's idempotency token as ClientRequestToken. Stack operations are
 * asynchronous in AWS: every write is followed by polling DescribeStacks with growing,
 * jittered delays (bounded), and the stack events of the operation are logged as progress.
 *
 * The states that need care:
 *  - "No updates are to be performed." is success without change;
 *  - a stack whose creation failed (ROLLBACK_COMPLETE, ROLLBACK_FAILED, CREATE_FAILED) is a
 *    tombstone: observe reports it missing, and only a create (re-creating it) deletes it
 *    first — never an update;
 *  - UPDATE_ROLLBACK_COMPLETE is a healthy stack whose last update failed: the failure is
 *    reported with the first failed event's reason;
 *  - a stack in *_IN_PROGRESS that someone else is changing is waited for, within a bound;
 *  - DeleteStack that ends in DELETE_FAILED is retried with RetainResources (the logical ids
 *    listed in retain_resources that failed), which CloudFormation accepts only then;
 *  - statuses this code does not know are refused before writing anything.
 * The parsers of every reply used are exposed in aws_int.h for the unit tests.
 */
#include "aws_int.h"

#include <stdlib.h>
#include <string.h>

#include <yaml.h>

#include "../../spec/spec.h"

#define CFN_VERSION "2010-05-15"
#define TEMPLATE_BODY_MAX 51200
#define MASKED "**********"

/* ---------------------------------------------------------------- statuses */

tp_aws_stack_class tp_aws_stack_status_class(const char *status)
{
	static const char *const ok[] = {"CREATE_COMPLETE", "UPDATE_COMPLETE", "IMPORT_COMPLETE",
					 "UPDATE_ROLLBACK_COMPLETE", "IMPORT_ROLLBACK_COMPLETE",
					 NULL};
	static const char *const dead[] = {"ROLLBACK_COMPLETE", "ROLLBACK_FAILED",
					   "CREATE_FAILED", NULL};
	static const char *const broken[] = {"UPDATE_ROLLBACK_FAILED", "UPDATE_FAILED",
					     "IMPORT_ROLLBACK_FAILED", NULL};
	static const char *const busy[] = {
		"CREATE_IN_PROGRESS", "ROLLBACK_IN_PROGRESS", "DELETE_IN_PROGRESS",
		"UPDATE_IN_PROGRESS", "UPDATE_COMPLETE_CLEANUP_IN_PROGRESS",
		"UPDATE_ROLLBACK_IN_PROGRESS", "UPDATE_ROLLBACK_COMPLETE_CLEANUP_IN_PROGRESS",
		"IMPORT_IN_PROGRESS", "IMPORT_ROLLBACK_IN_PROGRESS", NULL};
	if (!status)
		return TP_AWS_STACK_UNKNOWN;
	for (size_t i = 0; ok[i]; i++)
		if (strcmp(status, ok[i]) == 0)
			return TP_AWS_STACK_OK;
	for (size_t i = 0; dead[i]; i++)
		if (strcmp(status, dead[i]) == 0)
			return TP_AWS_STACK_DEAD;
	for (size_t i = 0; broken[i]; i++)
		if (strcmp(status, broken[i]) == 0)
			return TP_AWS_STACK_BROKEN;
	for (size_t i = 0; busy[i]; i++)
		if (strcmp(status, busy[i]) == 0)
			return TP_AWS_STACK_BUSY;
	if (strcmp(status, "DELETE_COMPLETE") == 0)
		return TP_AWS_STACK_GONE;
	if (strcmp(status, "DELETE_FAILED") == 0)
		return TP_AWS_STACK_DELETE_FAILED;
	if (strcmp(status, "REVIEW_IN_PROGRESS") == 0)
		return TP_AWS_STACK_REVIEW;
	return TP_AWS_STACK_UNKNOWN;
}

/* ---------------------------------------------------------------- parsers */

void tp_aws_stack_clear(tp_aws_stack *s)
{
	if (!s)
		return;
	free(s->id);
	free(s->name);
	free(s->status);
	free(s->reason);
	json_decref(s->parameters);
	json_decref(s->outputs);
	json_decref(s->tags);
	json_decref(s->capabilities);
	memset(s, 0, sizeof(*s));
}

static char *dup_text(const tp_aws_xml *n, const char *path)
{
	const char *t = tp_aws_xml_text(n, path);
	return t ? tp_strdup(t) : NULL;
}

/* <Name><member><K>k</K><V>v</V></member>...</Name> → {k: v} */
static json_t *member_map(const tp_aws_xml *parent, const char *list, const char *kname,
			  const char *vname)
{
	json_t *o = json_object();
	const tp_aws_xml *l = tp_aws_xml_child(parent, list);
	for (const tp_aws_xml *m = l ? l->first : NULL; m; m = m->next) {
		const char *k = tp_aws_xml_text(m, kname);
		const char *v = tp_aws_xml_text(m, vname);
		if (strcmp(m->name, "member") != 0 || !k)
			continue;
		json_object_set_new(o, k, json_string(v ? v : ""));
	}
	return o;
}

int tp_aws_stack_parse(tp_aws_stack *out, const tp_aws_xml *m)
{
	const char *tp, *to;
	const tp_aws_xml *caps;
	memset(out, 0, sizeof(*out));
	out->id = dup_text(m, "StackId");
	out->name = dup_text(m, "StackName");
	out->status = dup_text(m, "StackStatus");
	out->reason = dup_text(m, "StackStatusReason");
	if (!out->id || !out->name || !out->status) {
		tp_aws_stack_clear(out);
		return tp_error_set(TP_EIO, "cloudformation: a stack in the reply has no StackId, "
					    "StackName or StackStatus");
	}
	out->parameters = member_map(m, "Parameters", "ParameterKey", "ParameterValue");
	out->outputs = member_map(m, "Outputs", "OutputKey", "OutputValue");
	out->tags = member_map(m, "Tags", "Key", "Value");
	out->capabilities = json_array();
	caps = tp_aws_xml_child(m, "Capabilities");
	for (const tp_aws_xml *c = caps ? caps->first : NULL; c; c = c->next)
		if (strcmp(c->name, "member") == 0)
			json_array_append_new(out->capabilities, json_string(c->text));
	tp = tp_aws_xml_text(m, "EnableTerminationProtection");
	out->termination_protection = tp && strcmp(tp, "true") == 0;
	to = tp_aws_xml_text(m, "TimeoutInMinutes");
	out->timeout_minutes = to ? atoi(to) : 0;
	return 0;
}

int tp_aws_stacks_parse(tp_aws_stack **out, size_t *n, char **next_token,
			const tp_aws_xml *doc)
{
	const tp_aws_xml *r = tp_aws_xml_child(doc, "DescribeStacksResult");
	const tp_aws_xml *list = tp_aws_xml_child(r, "Stacks");
	size_t cap = 0;
	int rc = 0;
	*out = NULL;
	*n = 0;
	if (next_token) {
		const char *t = tp_aws_xml_text(r, "NextToken");
		*next_token = t && t[0] ? tp_strdup(t) : NULL;
	}
	if (!r)
		return tp_error_set(TP_EIO, "cloudformation DescribeStacks: the reply has no "
					    "DescribeStacksResult");
	for (const tp_aws_xml *m = list ? list->first : NULL; m; m = m->next) {
		if (strcmp(m->name, "member") != 0)
			continue;
		if (*n == cap) {
			cap = cap ? 2 * cap : 8;
			*out = tp_realloc(*out, cap * sizeof(**out));
		}
		if ((rc = tp_aws_stack_parse(&(*out)[*n], m)) < 0)
			break;
		(*n)++;
	}
	if (rc < 0) {
		for (size_t i = 0; i < *n; i++)
			tp_aws_stack_clear(&(*out)[i]);
		free(*out);
		*out = NULL;
		*n = 0;
		if (next_token) {
			free(*next_token);
			*next_token = NULL;
		}
	}
	return rc;
}

void tp_aws_event_clear(tp_aws_event *e)
{
	if (!e)
		return;
	free(e->id);
	free(e->logical_id);
	free(e->type);
	free(e->status);
	free(e->reason);
	free(e->token);
	free(e->timestamp);
	memset(e, 0, sizeof(*e));
}

int tp_aws_events_parse(tp_aws_event **out, size_t *n, char **next_token,
			const tp_aws_xml *doc)
{
	const tp_aws_xml *r = tp_aws_xml_child(doc, "DescribeStackEventsResult");
	const tp_aws_xml *list = tp_aws_xml_child(r, "StackEvents");
	size_t cap = 0;
	*out = NULL;
	*n = 0;
	if (next_token) {
		const char *t = tp_aws_xml_text(r, "NextToken");
		*next_token = t && t[0] ? tp_strdup(t) : NULL;
	}
	if (!r)
		return tp_error_set(TP_EIO, "cloudformation DescribeStackEvents: the reply has no "
					    "DescribeStackEventsResult");
	for (const tp_aws_xml *m = list ? list->first : NULL; m; m = m->next) {
		tp_aws_event *e;
		if (strcmp(m->name, "member") != 0 || !tp_aws_xml_text(m, "EventId"))
			continue;
		if (*n == cap) {
			cap = cap ? 2 * cap : 16;
			*out = tp_realloc(*out, cap * sizeof(**out));
		}
		e = &(*out)[(*n)++];
		memset(e, 0, sizeof(*e));
		e->id = dup_text(m, "EventId");
		e->logical_id = dup_text(m, "LogicalResourceId");
		e->type = dup_text(m, "ResourceType");
		e->status = dup_text(m, "ResourceStatus");
		e->reason = dup_text(m, "ResourceStatusReason");
		e->token = dup_text(m, "ClientRequestToken");
		e->timestamp = dup_text(m, "Timestamp");
	}
	return 0;
}

int tp_aws_change_set_parse(json_t **changes, char **status, char **reason,
			    const tp_aws_xml *doc)
{
	const tp_aws_xml *r = tp_aws_xml_child(doc, "DescribeChangeSetResult");
	const tp_aws_xml *list = tp_aws_xml_child(r, "Changes");
	json_t *a;
	*changes = NULL;
	if (status)
		*status = NULL;
	if (reason)
		*reason = NULL;
	if (!r)
		return tp_error_set(TP_EIO, "cloudformation DescribeChangeSet: the reply has no "
					    "DescribeChangeSetResult");
	a = json_array();
	for (const tp_aws_xml *m = list ? list->first : NULL; m; m = m->next) {
		const tp_aws_xml *rc = tp_aws_xml_child(m, "ResourceChange");
		json_t *o;
		const char *v;
		if (strcmp(m->name, "member") != 0 || !rc)
			continue;
		o = json_object();
		if ((v = tp_aws_xml_text(rc, "Action")))
			json_object_set_new(o, "Action", json_string(v));
		if ((v = tp_aws_xml_text(rc, "LogicalResourceId")))
			json_object_set_new(o, "LogicalResourceId", json_string(v));
		if ((v = tp_aws_xml_text(rc, "PhysicalResourceId")))
			json_object_set_new(o, "PhysicalResourceId", json_string(v));
		if ((v = tp_aws_xml_text(rc, "ResourceType")))
			json_object_set_new(o, "ResourceType", json_string(v));
		/* moto leaves Replacement out; AWS says True, False or Conditional */
		if ((v = tp_aws_xml_text(rc, "Replacement")))
			json_object_set_new(o, "Replacement", json_string(v));
		json_array_append_new(a, o);
	}
	*changes = a;
	if (status)
		*status = dup_text(r, "Status");
	if (reason)
		*reason = dup_text(r, "StatusReason");
	return 0;
}

/* ListStackResources → [{"LogicalResourceId","ResourceType","ResourceStatus",
 * "ResourceStatusReason"}] */
int tp_aws_resources_parse(json_t **out, char **next_token, const tp_aws_xml *doc)
{
	const tp_aws_xml *r = tp_aws_xml_child(doc, "ListStackResourcesResult");
	const tp_aws_xml *list = tp_aws_xml_child(r, "StackResourceSummaries");
	*out = NULL;
	if (next_token) {
		const char *t = tp_aws_xml_text(r, "NextToken");
		*next_token = t && t[0] ? tp_strdup(t) : NULL;
	}
	if (!r)
		return tp_error_set(TP_EIO, "cloudformation ListStackResources: the reply has no "
					    "ListStackResourcesResult");
	*out = json_array();
	for (const tp_aws_xml *m = list ? list->first : NULL; m; m = m->next) {
		json_t *o = json_object();
		static const char *const keys[] = {"LogicalResourceId", "PhysicalResourceId",
						   "ResourceType", "ResourceStatus",
						   "ResourceStatusReason", NULL};
		if (strcmp(m->name, "member") != 0) {
			json_decref(o);
			continue;
		}
		for (size_t i = 0; keys[i]; i++) {
			const char *v = tp_aws_xml_text(m, keys[i]);
			if (v)
				json_object_set_new(o, keys[i], json_string(v));
		}
		json_array_append_new(*out, o);
	}
	return 0;
}

/* ---------------------------------------------------------------- templates */

int tp_aws_template_check(const char *what, const char *text, size_t len)
{
	const char *p = text;
	size_t bad;
	yaml_parser_t parser;
	yaml_event_t ev;
	int rc = 0, events = 0;
	bool done = false;

	while ((size_t)(p - text) < len && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
		p++;
	if ((size_t)(p - text) == len)
		return tp_error_set(TP_EINVALID, "%s is empty: a CloudFormation template is a "
						 "YAML or JSON document", what);
	if (!tp_utf8_valid(text, len, &bad))
		return tp_error_set(TP_EINVALID, "%s is not valid UTF-8 (at byte %zu)", what, bad);
	if (*p == '{') {
		json_t *doc = NULL;
		if (tp_json_parse(&doc, text, len) < 0) {
			char *m = tp_strdup(tp_error_last());
			rc = tp_error_set(TP_EINVALID, "%s is not a valid JSON template: %s", what, m);
			free(m);
			return rc;
		}
		json_decref(doc);
		return 0;
	}
	/* YAML: CloudFormation's short forms (!Ref, !Sub, ...) are tags, which the parser
	 * reports and we accept; only the syntax and a mapping at the top are checked */
	if (!yaml_parser_initialize(&parser))
		return tp_error_set(TP_ENOMEM, "%s: cannot start the YAML parser", what);
	yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
	while (!done) {
		if (!yaml_parser_parse(&parser, &ev)) {
			rc = tp_error_set(TP_EINVALID, "%s is not a valid YAML template: line %zu "
						       "col %zu: %s%s%s", what,
					  parser.problem_mark.line + 1, parser.problem_mark.column + 1,
					  parser.problem ? parser.problem : "syntax error",
					  parser.context ? " " : "",
					  parser.context ? parser.context : "");
			break;
		}
		events++;
		if (ev.type == YAML_DOCUMENT_START_EVENT && events > 2) {
			rc = tp_error_set(TP_EINVALID, "%s holds more than one YAML document; a "
						       "template is one", what);
			done = true;
		} else if (events == 3 && ev.type != YAML_MAPPING_START_EVENT) {
			rc = tp_error_set(TP_EINVALID, "%s is not a template: the top level must be "
						       "a mapping (AWSTemplateFormatVersion, "
						       "Resources, ...), line %zu", what,
					  ev.start_mark.line + 1);
			done = true;
		} else if (ev.type == YAML_STREAM_END_EVENT) {
			done = true;
		}
		yaml_event_delete(&ev);
	}
	yaml_parser_delete(&parser);
	return rc;
}

/* The template the spec names, read from the pipeline's tree at this revision: the same
 * content the plan saw (digest), no larger than CloudFormation takes inline, and parseable. */
static int read_template(const tp_op *op, char **out, size_t *len)
{
	const char *value = tp_json_get_str(op->spec, "template");
	const char *digest = "";
	char *path = NULL;
	tp_buf b;
	int rc = 0;

	*out = NULL;
	*len = 0;
	tp_buf_init(&b, TP_SPEC_MAX_FILE_BYTES);
	if (!value) {
		rc = tp_error_set(TP_EINVALID, "%s: the spec has no template", op->address);
		goto done;
	}
	if (!op->tree) {
		rc = tp_error_set(TP_EINVALID, "%s: the pipeline files are not available to read "
					       "the template", op->address);
		goto done;
	}
	path = tp_file_field_path(value, &digest);
	if ((rc = op->tree->read(op->tree, &b, path, TP_SPEC_MAX_FILE_BYTES)) < 0) {
		char *m = tp_strdup(tp_error_last());
		rc = tp_error_set(rc, "%s: reading the template %s: %s", op->address, path, m);
		free(m);
		goto done;
	}
	if (digest[0]) {
		uint8_t d[TP_SHA256_LEN];
		char hex[2 * TP_SHA256_LEN + 1];
		tp_sha256(d, b.ptr ? b.ptr : "", b.len);
		tp_hex_encode(hex, d, sizeof(d));
		if (strncmp(hex, digest, strlen(digest)) != 0) {
			rc = tp_error_set(TP_ECONFLICT, "%s: %s changed since the plan was made; "
							"plan again", op->address, path);
			goto done;
		}
	}
	if (b.len > TEMPLATE_BODY_MAX) {
		rc = tp_error_set(TP_EINVALID, "%s: %s is %zu bytes; CloudFormation takes at most "
					       "51,200 bytes inline (split the stack, or shorten "
					       "descriptions)", op->address, path, b.len);
		goto done;
	}
	{
		char *what = tp_sprintf("%s: %s", op->address, path);
		rc = tp_aws_template_check(what, tp_buf_cstr(&b), b.len);
		free(what);
		if (rc < 0)
			goto done;
	}
	*len = b.len;
	*out = tp_buf_detach(&b);
done:
	free(path);
	tp_buf_free(&b);
	return rc;
}

/* ---------------------------------------------------------------- calls */

static bool is_not_found(const tp_aws_error *e)
{
	return strcmp(e->code, "ValidationError") == 0 && strstr(e->message, "does not exist");
}

/* The stack by name or id; TP_ENOTFOUND when CloudFormation does not know it. */
static int describe(tp_aws_session *s, const char *address, const char *name_or_id,
		    tp_aws_stack *out)
{
	tp_aws_call call = {"cloudformation", CFN_VERSION, "DescribeStacks", address};
	json_t *params = json_pack("{s:s}", "StackName", name_or_id);
	tp_aws_xml *doc = NULL;
	tp_aws_stack *list = NULL;
	tp_aws_error err;
	size_t n = 0;
	int rc;

	memset(out, 0, sizeof(*out));
	rc = tp_aws_query(s, &call, params, &doc, &err);
	if (rc < 0) {
		if (is_not_found(&err))
			rc = tp_error_set(TP_ENOTFOUND, "stack %s does not exist", name_or_id);
		goto done;
	}
	if ((rc = tp_aws_stacks_parse(&list, &n, NULL, doc)) < 0)
		goto done;
	if (n == 0) {
		rc = tp_error_set(TP_ENOTFOUND, "stack %s does not exist", name_or_id);
		goto done;
	}
	*out = list[0];
	for (size_t i = 1; i < n; i++)
		tp_aws_stack_clear(&list[i]);
done:
	free(list);
	tp_aws_xml_free(doc);
	json_decref(params);
	return rc;
}

static const char *stack_name_of(const tp_op *op)
{
	const char *n = tp_json_get_str(op->spec, "stack_name");
	if (!n)
		n = tp_json_get_str(op->applied, "stack_name");
	return n ? n : op->name;
}

static json_t *outputs_of(const tp_aws_stack *st)
{
	json_t *o = json_pack("{s:s,s:s}", "id", st->id, "name", st->name);
	const char *k;
	json_t *v;
	json_object_foreach(st->outputs, k, v) {
		char *key = tp_sprintf("outputs.%s", k);
		json_object_set(o, key, v);
		free(key);
	}
	return o;
}

static bool owned(const tp_aws_stack *st, const tp_op *op)
{
	const char *tag = tp_json_get_str(st->tags, TP_AWS_OWNER_TAG);
	return tag && op->marker && strcmp(tag, op->marker) == 0;
}

static int not_owned(const tp_aws_stack *st, const tp_op *op, const char *doing)
{
	const char *tag = tp_json_get_str(st->tags, TP_AWS_OWNER_TAG);
	if (tag)
		return tp_error_set(TP_ECONFLICT, "%s: stack %s belongs to %s (tag %s), not to this "
						  "pipeline; not %s it", op->address, st->name, tag,
				    TP_AWS_OWNER_TAG, doing);
	return tp_error_set(TP_ECONFLICT, "%s: stack %s has no %s tag: Tapestry did not create "
					  "it and does not take over stacks it did not create; not "
					  "%s it", op->address, st->name, TP_AWS_OWNER_TAG, doing);
}

/* ---------------------------------------------------------------- progress */

typedef struct {
	char *seen;          /* newest event id already reported (or the baseline) */
	char *first_failure; /* "Logical (Type): reason" of the oldest failed event */
	bool baseline;
} cursor;

static void cursor_clear(cursor *c)
{
	free(c->seen);
	free(c->first_failure);
	memset(c, 0, sizeof(*c));
}

static bool failed_status(const char *st)
{
	size_t n = st ? strlen(st) : 0;
	return n > 7 && strcmp(st + n - 7, "_FAILED") == 0;
}

/* Reports the stack events that happened since the cursor, oldest first (DescribeStackEvents
 * returns newest first; at most a few pages are read per poll). With log false it only moves
 * the cursor to the newest event (the baseline before an operation). */
static void report_events(tp_aws_session *s, const tp_op *op, const char *id, cursor *c,
			  bool log)
{
	tp_aws_call call = {"cloudformation", CFN_VERSION, "DescribeStackEvents", op->address};
	json_t *fresh = json_array(); /* newest first */
	char *token = NULL;
	char *newest = NULL;
	bool reached = false;

	for (int page = 0; page < 5 && !reached; page++) {
		json_t *params = json_pack("{s:s}", "StackName", id);
		tp_aws_xml *doc = NULL;
		tp_aws_event *ev = NULL;
		size_t n = 0;
		char *next = NULL;
		if (token)
			json_object_set_new(params, "NextToken", json_string(token));
		if (tp_aws_query(s, &call, params, &doc, NULL) < 0 ||
		    tp_aws_events_parse(&ev, &n, &next, doc) < 0) {
			/* progress is best effort: the stack status decides */
			tp_error_clear();
			json_decref(params);
			tp_aws_xml_free(doc);
			break;
		}
		for (size_t i = 0; i < n; i++) {
			if (!newest)
				newest = tp_strdup(ev[i].id);
			if (c->seen && strcmp(ev[i].id, c->seen) == 0)
				reached = true;
			if (!reached && log)
				json_array_append_new(
					fresh, json_pack("{s:s?,s:s?,s:s?,s:s?}", "logical",
							 ev[i].logical_id, "type", ev[i].type,
							 "status", ev[i].status, "reason",
							 ev[i].reason));
		}
		for (size_t i = 0; i < n; i++)
			tp_aws_event_clear(&ev[i]);
		free(ev);
		tp_aws_xml_free(doc);
		json_decref(params);
		free(token);
		token = next;
		if (!token || !log)
			break;
	}
	for (size_t i = json_array_size(fresh); i-- > 0;) {
		json_t *e = json_array_get(fresh, i);
		const char *status = tp_json_get_str(e, "status");
		const char *reason = tp_json_get_str(e, "reason");
		tp_log(TP_LOG_INFO, op->address, NULL, "%s (%s): %s%s%s",
		       tp_json_get_str(e, "logical") ? tp_json_get_str(e, "logical") : "?",
		       tp_json_get_str(e, "type") ? tp_json_get_str(e, "type") : "?",
		       status ? status : "?", reason && reason[0] ? ": " : "",
		       reason ? reason : "");
		if (!c->first_failure && failed_status(status) && reason && reason[0] &&
		    strcmp(reason, "Resource creation cancelled") != 0)
			c->first_failure = tp_sprintf("%s (%s): %s",
						      tp_json_get_str(e, "logical") ? tp_json_get_str(e, "logical") : "?",
						      tp_json_get_str(e, "type") ? tp_json_get_str(e, "type") : "?",
						      reason);
	}
	if (newest) {
		free(c->seen);
		c->seen = newest;
	}
	c->baseline = true;
	json_decref(fresh);
	free(token);
}

/*
 * Polls the stack until it leaves *_IN_PROGRESS (REVIEW_IN_PROGRESS counts as settled: it
 * never moves by itself), reporting events as it goes. TP_ENOTFOUND when the stack vanished
 * (a delete by name); TP_ECONFLICT when max_ms passed first.
 */
static int wait_settled(tp_aws_session *s, const tp_op *op, const char *id, int64_t max_ms,
			cursor *c, bool log, tp_aws_stack *out)
{
	int64_t start = tp_clock_mono_ms();
	int64_t delay = s->wait.poll_ms;
	int rc;

	memset(out, 0, sizeof(*out));
	for (;;) {
		if ((rc = describe(s, op->address, id, out)) < 0)
			return rc;
		if (log)
			report_events(s, op, out->id, c, true);
		if (tp_aws_stack_status_class(out->status) != TP_AWS_STACK_BUSY)
			return 0;
		if (tp_clock_mono_ms() - start >= max_ms) {
			rc = tp_error_set(TP_ECONFLICT,
					  "%s: stack %s is still %s after %lld s; stopped waiting (the "
					  "operation goes on in CloudFormation; the next run looks "
					  "again)", op->address, out->name, out->status,
					  (long long)((tp_clock_mono_ms() - start) / 1000));
			tp_aws_stack_clear(out);
			return rc;
		}
		tp_aws_stack_clear(out);
		{
			/* jittered: between half and all of the current delay */
			int64_t d = delay / 2 + (int64_t)tp_clock_rand_below((uint64_t)(delay / 2 + 1));
			int64_t left = max_ms - (tp_clock_mono_ms() - start);
			tp_clock_sleep_ms(d < left ? d : (left > 0 ? left : 0));
		}
		delay = delay * 2 < s->wait.poll_max_ms ? delay * 2 : s->wait.poll_max_ms;
	}
}

static int failure(const tp_op *op, const tp_aws_stack *st, const cursor *c, const char *what)
{
	const char *why = c->first_failure ? c->first_failure
					   : (st->reason && st->reason[0] ? st->reason : NULL);
	return tp_error_set(TP_EINVALID, "%s: %s of stack %s failed (%s)%s%s", op->address, what,
			    st->name, st->status, why ? ": " : "", why ? why : "");
}

/* ---------------------------------------------------------------- requests */

static void add_list(json_t *params, const char *prefix, const json_t *list)
{
	size_t i;
	json_t *v;
	json_array_foreach(list, i, v) {
		char *k = tp_sprintf("%s.member.%zu", prefix, i + 1);
		if (json_is_string(v))
			json_object_set(params, k, v);
		free(k);
	}
}

static void add_map(json_t *params, const char *prefix, const char *kname, const char *vname,
		    const json_t *map, size_t *n)
{
	const char **keys = tp_calloc(json_object_size(map) + 1, sizeof(*keys));
	size_t count = 0;
	const char *k;
	json_t *v;
	json_object_foreach((json_t *)(uintptr_t)map, k, v)
		keys[count++] = k;
	qsort(keys, count, sizeof(*keys), tp_str_qsort_cmp);
	for (size_t i = 0; i < count; i++) {
		const json_t *val = json_object_get(map, keys[i]);
		char *kk, *vk;
		if (!json_is_string(val))
			continue;
		(*n)++;
		kk = tp_sprintf("%s.member.%zu.%s", prefix, *n, kname);
		vk = tp_sprintf("%s.member.%zu.%s", prefix, *n, vname);
		json_object_set_new(params, kk, json_string(keys[i]));
		json_object_set_new(params, vk, json_string(json_string_value(val)));
		free(kk);
		free(vk);
	}
	free(keys);
}

/* The form fields shared by CreateStack and UpdateStack. */
static json_t *write_params(const tp_op *op, const char *name, const char *body)
{
	json_t *p = json_pack("{s:s,s:s}", "StackName", name, "TemplateBody", body);
	json_t *tags = json_deep_copy(json_object_get(op->spec, "tags"));
	size_t n = 0;
	if (!tags)
		tags = json_object();
	json_object_set_new(tags, TP_AWS_OWNER_TAG, json_string(op->marker ? op->marker : ""));
	add_map(p, "Parameters", "ParameterKey", "ParameterValue",
		json_object_get(op->spec, "parameters"), &n);
	n = 0;
	add_map(p, "Tags", "Key", "Value", tags, &n);
	add_list(p, "Capabilities", json_object_get(op->spec, "capabilities"));
	if (op->token)
		json_object_set_new(p, "ClientRequestToken", json_string(op->token));
	json_decref(tags);
	return p;
}

static char *derived_token(const tp_op *op, const char *suffix)
{
	return op->token ? tp_sprintf("%.100s-%s", op->token, suffix) : NULL;
}

/* Every resource of a stack (ListStackResources, all pages). */
static int list_resources(tp_aws_session *s, const tp_op *op, const char *id, json_t **out)
{
	tp_aws_call call = {"cloudformation", CFN_VERSION, "ListStackResources", op->address};
	char *token = NULL;
	int rc = 0;

	*out = json_array();
	for (int page = 0; page < 100; page++) {
		json_t *params = json_pack("{s:s}", "StackName", id);
		tp_aws_xml *doc = NULL;
		json_t *res = NULL;
		char *next = NULL;
		if (token)
			json_object_set_new(params, "NextToken", json_string(token));
		rc = tp_aws_query(s, &call, params, &doc, NULL);
		if (rc == 0)
			rc = tp_aws_resources_parse(&res, &next, doc);
		if (rc == 0)
			json_array_extend(*out, res);
		json_decref(res);
		json_decref(params);
		tp_aws_xml_free(doc);
		free(token);
		token = next;
		if (rc < 0 || !token)
			break;
	}
	free(token);
	return rc;
}

/* DeleteStack and wait; DELETE_FAILED is retried once with RetainResources = the failed
 * resources listed in retain_resources. */
static int delete_stack(tp_aws_session *s, const tp_op *op, const tp_aws_stack *st,
			const json_t *retain)
{
	tp_aws_call call = {"cloudformation", CFN_VERSION, "DeleteStack", op->address};
	tp_aws_stack now;
	cursor c = {0};
	json_t *params = NULL, *failed = NULL;
	char *token = derived_token(op, "delete");
	int rc;

	memset(&now, 0, sizeof(now));
	report_events(s, op, st->id, &c, false);
	if (tp_aws_stack_status_class(st->status) != TP_AWS_STACK_DELETE_FAILED) {
		params = json_pack("{s:s}", "StackName", st->id);
		if (token)
			json_object_set_new(params, "ClientRequestToken", json_string(token));
		tp_log(TP_LOG_INFO, op->address, NULL, "deleting stack %s", st->name);
		if ((rc = tp_aws_query(s, &call, params, NULL, NULL)) < 0)
			goto done;
		if ((rc = wait_settled(s, op, st->id, s->wait.op_max_ms, &c, true, &now)) < 0)
			goto done;
	} else {
		now.id = tp_strdup(st->id);
		now.name = tp_strdup(st->name);
		now.status = tp_strdup(st->status);
	}
	if (tp_aws_stack_status_class(now.status) == TP_AWS_STACK_GONE) {
		rc = 0;
		goto done;
	}
	if (tp_aws_stack_status_class(now.status) != TP_AWS_STACK_DELETE_FAILED) {
		rc = failure(op, &now, &c, "deletion");
		goto done;
	}
	/* DELETE_FAILED: which resources failed, and may they be retained? */
	{
		json_t *res = NULL;
		tp_buf missing;
		size_t i, k = 0;
		json_t *r;
		tp_buf_init(&missing, 64 * 1024);
		failed = json_array();
		rc = list_resources(s, op, st->id, &res);
		json_array_foreach(res, i, r) {
			const char *lid = tp_json_get_str(r, "LogicalResourceId");
			bool keep = false;
			size_t j;
			json_t *x;
			if (!lid || strcmp(tp_json_get_str(r, "ResourceStatus")
						   ? tp_json_get_str(r, "ResourceStatus")
						   : "", "DELETE_FAILED") != 0)
				continue;
			json_array_foreach(retain, j, x)
				keep = keep || (json_is_string(x) &&
						strcmp(json_string_value(x), lid) == 0);
			if (keep) {
				json_array_append_new(failed, json_string(lid));
			} else {
				const char *why = tp_json_get_str(r, "ResourceStatusReason");
				tp_buf_printf(&missing, "%s%s%s%s", k++ ? "; " : "", lid,
					      why ? ": " : "", why ? why : "");
			}
		}
		json_decref(res);
		if (rc == 0 && (missing.len || json_array_size(failed) == 0)) {
			rc = tp_error_set(TP_EINVALID,
					  "%s: deletion of stack %s failed (DELETE_FAILED)%s%s%s; list "
					  "the resources to keep in retain_resources to delete the "
					  "stack without them", op->address, st->name,
					  missing.len ? ": " : "", tp_buf_cstr(&missing),
					  c.first_failure && !missing.len ? c.first_failure : "");
		}
		tp_buf_free(&missing);
		if (rc < 0)
			goto done;
	}
	json_decref(params);
	free(token);
	token = derived_token(op, "retain");
	params = json_pack("{s:s}", "StackName", st->id);
	if (token)
		json_object_set_new(params, "ClientRequestToken", json_string(token));
	add_list(params, "RetainResources", failed);
	{
		char *list = tp_json_canonical(failed);
		tp_log(TP_LOG_INFO, op->address, NULL,
		       "deleting stack %s again, retaining %s (retain_resources)", st->name, list);
		free(list);
	}
	tp_aws_stack_clear(&now);
	if ((rc = tp_aws_query(s, &call, params, NULL, NULL)) < 0)
		goto done;
	if ((rc = wait_settled(s, op, st->id, s->wait.op_max_ms, &c, true, &now)) < 0)
		goto done;
	if (tp_aws_stack_status_class(now.status) != TP_AWS_STACK_GONE)
		rc = failure(op, &now, &c, "deletion");
done:
	tp_aws_stack_clear(&now);
	cursor_clear(&c);
	json_decref(params);
	json_decref(failed);
	free(token);
	return rc;
}

/* Waits for a stack someone (or an earlier attempt) is changing; refuses unknown states. */
static int settle_before_write(tp_aws_session *s, const tp_op *op, tp_aws_stack *st)
{
	tp_aws_stack_class k = tp_aws_stack_status_class(st->status);
	if (k == TP_AWS_STACK_UNKNOWN)
		return tp_error_set(TP_EINVALID, "%s: stack %s is in status %s, which this version "
						 "of Tapestry does not know; not changing it",
				    op->address, st->name, st->status ? st->status : "(none)");
	if (k == TP_AWS_STACK_BUSY) {
		cursor c = {0};
		char *id = tp_strdup(st->id);
		int rc;
		tp_log(TP_LOG_INFO, op->address, NULL, "stack %s is %s; waiting for it to settle",
		       st->name, st->status);
		tp_aws_stack_clear(st);
		rc = wait_settled(s, op, id, s->wait.busy_max_ms, &c, false, st);
		cursor_clear(&c);
		free(id);
		if (rc < 0)
			return rc;
		if (tp_aws_stack_status_class(st->status) == TP_AWS_STACK_UNKNOWN)
			return settle_before_write(s, op, st);
	}
	return 0;
}

/* ---------------------------------------------------------------- update */

/* Whether UpdateStack has anything to do: parameters, capabilities and tags against live,
 * and the template against what was applied last (live templates are not fetched here). */
static bool needs_update(const tp_op *op, const tp_aws_stack *st)
{
	const json_t *want = json_object_get(op->spec, "parameters");
	const json_t *was = json_object_get(op->applied, "parameters");
	const char *k;
	json_t *v;
	json_t *tags;
	json_t *caps;
	bool same;

	if (!op->applied || !json_equal(json_object_get(op->spec, "template"),
					 json_object_get(op->applied, "template")))
		return true;
	json_object_foreach((json_t *)(uintptr_t)want, k, v) {
		const char *live = tp_json_get_str(st->parameters, k);
		if (!live || !json_is_string(v) || strcmp(live, json_string_value(v)) != 0)
			return true; /* includes NoEcho values, which come back masked */
	}
	json_object_foreach((json_t *)(uintptr_t)was, k, v)
		if (!json_object_get(want, k))
			return true; /* dropped: goes back to the template default */
	tags = json_deep_copy(json_object_get(op->spec, "tags"));
	if (!tags)
		tags = json_object();
	json_object_set_new(tags, TP_AWS_OWNER_TAG, json_string(op->marker ? op->marker : ""));
	same = json_equal(tags, st->tags);
	json_decref(tags);
	if (!same)
		return true;
	caps = json_deep_copy(json_object_get(op->spec, "capabilities"));
	if (!caps)
		caps = json_array();
	tp_json_array_sort(caps, tp_json_qsort_cmp, true);
	{
		json_t *live = json_deep_copy(st->capabilities);
		tp_json_array_sort(live, tp_json_qsort_cmp, true);
		same = json_equal(caps, live);
		json_decref(live);
	}
	json_decref(caps);
	return !same;
}

static int set_termination_protection(tp_aws_session *s, const tp_op *op,
				      const tp_aws_stack *st, bool on)
{
	tp_aws_call call = {"cloudformation", CFN_VERSION, "UpdateTerminationProtection",
			    op->address};
	json_t *params = json_pack("{s:s,s:s}", "StackName", st->id,
				   "EnableTerminationProtection", on ? "true" : "false");
	int rc = tp_aws_query(s, &call, params, NULL, NULL);
	json_decref(params);
	return rc;
}

/* Updates an existing, settled stack that carries our marker. */
static int update_existing(tp_aws_session *s, const tp_op *op, tp_aws_stack *st,
			   const char *body, tp_op_result *out)
{
	tp_aws_call call = {"cloudformation", CFN_VERSION, "UpdateStack", op->address};
	json_t *params = NULL;
	tp_aws_error err;
	cursor c = {0};
	tp_aws_stack after;
	bool want_tp = json_is_true(json_object_get(op->spec, "termination_protection"));
	tp_aws_stack_class k;
	int rc = 0;

	memset(&after, 0, sizeof(after));
	memset(&err, 0, sizeof(err));
	k = tp_aws_stack_status_class(st->status);
	if (k == TP_AWS_STACK_DEAD) {
		rc = tp_error_set(TP_ECONFLICT, "%s: stack %s is %s: its creation failed and it can "
						"only be deleted; plan with --refresh (it shows as "
						"missing) and apply to re-create it", op->address,
				  st->name, st->status);
		goto done;
	}
	if (k == TP_AWS_STACK_BROKEN || k == TP_AWS_STACK_DELETE_FAILED) {
		rc = tp_error_set(TP_ECONFLICT, "%s: stack %s is %s%s%s and cannot be updated until "
						"it is repaired in CloudFormation (%s)", op->address,
				  st->name, st->status, st->reason ? ": " : "",
				  st->reason ? st->reason : "",
				  k == TP_AWS_STACK_BROKEN ? "ContinueUpdateRollback"
							   : "delete it again");
		goto done;
	}
	if (k == TP_AWS_STACK_REVIEW) {
		rc = tp_error_set(TP_ECONFLICT, "%s: stack %s is REVIEW_IN_PROGRESS (an unexecuted "
						"change set); execute or delete it first", op->address,
				  st->name);
		goto done;
	}
	if (st->termination_protection != want_tp && want_tp) {
		if ((rc = set_termination_protection(s, op, st, true)) < 0)
			goto done;
	}
	if (needs_update(op, st)) {
		report_events(s, op, st->id, &c, false);
		params = write_params(op, st->id, body);
		rc = tp_aws_query(s, &call, params, NULL, &err);
		if (rc < 0 && strcmp(err.code, "ValidationError") == 0 &&
		    strstr(err.message, "No updates are to be performed")) {
			tp_log(TP_LOG_INFO, op->address, NULL, "stack %s: no updates to perform",
			       st->name);
			tp_error_clear();
			rc = 0;
		} else if (rc < 0) {
			goto done;
		} else {
			tp_log(TP_LOG_INFO, op->address, NULL, "updating stack %s", st->name);
			if ((rc = wait_settled(s, op, st->id, s->wait.op_max_ms, &c, true, &after)) < 0)
				goto done;
			if (strcmp(after.status, "UPDATE_COMPLETE") != 0 &&
			    strcmp(after.status, "IMPORT_COMPLETE") != 0) {
				rc = failure(op, &after, &c, "the update");
				goto done;
			}
			tp_aws_stack_clear(st);
			*st = after;
			memset(&after, 0, sizeof(after));
		}
	}
	if (st->termination_protection != want_tp && !want_tp) {
		if ((rc = set_termination_protection(s, op, st, false)) < 0)
			goto done;
	}
	out->provider_id = tp_strdup(st->id);
	out->outputs = outputs_of(st);
done:
	tp_aws_stack_clear(&after);
	cursor_clear(&c);
	json_decref(params);
	return rc;
}

/* ---------------------------------------------------------------- slots */

static int create_new(tp_aws_session *s, const tp_op *op, const char *name, const char *body,
		      tp_op_result *out, tp_aws_error *err)
{
	tp_aws_call call = {"cloudformation", CFN_VERSION, "CreateStack", op->address};
	json_t *params = write_params(op, name, body);
	json_t *timeout = json_object_get(op->spec, "timeout_minutes");
	const char *on_failure = tp_json_get_str(op->spec, "on_failure");
	tp_aws_xml *doc = NULL;
	tp_aws_stack st;
	cursor c = {0};
	char *id = NULL;
	int64_t max = s->wait.op_max_ms;
	int rc;

	memset(&st, 0, sizeof(st));
	json_object_set_new(params, "EnableTerminationProtection",
			    json_string(json_is_true(json_object_get(op->spec,
								     "termination_protection"))
					? "true" : "false"));
	if (json_is_integer(timeout)) {
		char t[24];
		snprintf(t, sizeof(t), "%lld", (long long)json_integer_value(timeout));
		json_object_set_new(params, "TimeoutInMinutes", json_string(t));
		if ((int64_t)json_integer_value(timeout) * 60000 + 10 * 60000 < max)
			max = (int64_t)json_integer_value(timeout) * 60000 + 10 * 60000;
	}
	if (on_failure)
		json_object_set_new(params, "OnFailure", json_string(on_failure));
	c.baseline = true; /* a new stack: every event is ours */
	if ((rc = tp_aws_query(s, &call, params, &doc, err)) < 0)
		goto done;
	id = tp_aws_xml_text(doc, "CreateStackResult/StackId")
		     ? tp_strdup(tp_aws_xml_text(doc, "CreateStackResult/StackId"))
		     : tp_strdup(name);
	tp_log(TP_LOG_INFO, op->address, NULL, "creating stack %s", name);
	if ((rc = wait_settled(s, op, id, max, &c, true, &st)) < 0)
		goto done;
	if (strcmp(st.status, "CREATE_COMPLETE") != 0) {
		rc = failure(op, &st, &c, "creation");
		goto done;
	}
	out->provider_id = tp_strdup(st.id);
	out->outputs = outputs_of(&st);
done:
	tp_aws_stack_clear(&st);
	cursor_clear(&c);
	tp_aws_xml_free(doc);
	json_decref(params);
	free(id);
	return rc;
}

int tp_aws_stack_create(void *session, const tp_op *op, tp_op_result *out)
{
	tp_aws_session *s = session;
	const char *name = stack_name_of(op);
	char *body = NULL;
	size_t len = 0;
	tp_aws_error err;
	tp_aws_stack st;
	int rc;

	memset(&st, 0, sizeof(st));
	memset(&err, 0, sizeof(err));
	if ((rc = read_template(op, &body, &len)) < 0)
		goto done;
	rc = create_new(s, op, name, body, out, &err);
	if (rc >= 0 || strcmp(err.code, "AlreadyExistsException") != 0)
		goto done;
	/* the name is taken: ours from an earlier attempt, a dead stack of ours, or not ours */
	tp_error_clear();
	if ((rc = describe(s, op->address, name, &st)) < 0)
		goto done;
	if (!owned(&st, op)) {
		rc = tp_error_set(TP_EEXISTS, "%s: stack %s already exists and %s; Tapestry does "
					      "not take over stacks it did not create",
				  op->address, name,
				  tp_json_get_str(st.tags, TP_AWS_OWNER_TAG)
					  ? "belongs to another owner"
					  : "has no " TP_AWS_OWNER_TAG " tag");
		goto done;
	}
	if ((rc = settle_before_write(s, op, &st)) < 0)
		goto done;
	if (tp_aws_stack_status_class(st.status) == TP_AWS_STACK_DEAD ||
	    tp_aws_stack_status_class(st.status) == TP_AWS_STACK_REVIEW) {
		/* a failed create of ours: delete the tombstone, create again */
		tp_log(TP_LOG_INFO, op->address, NULL, "stack %s is %s from a failed creation; "
		       "deleting it before creating it again", name, st.status);
		if ((rc = delete_stack(s, op, &st, NULL)) < 0)
			goto done;
		rc = create_new(s, op, name, body, out, &err);
		goto done;
	}
	/* ours and alive (a retry whose first attempt went through): bring it to the spec */
	rc = update_existing(s, op, &st, body, out);
done:
	tp_aws_stack_clear(&st);
	if (body) {
		explicit_bzero(body, len);
		free(body);
	}
	return rc;
}

int tp_aws_stack_update(void *session, const tp_op *op, tp_op_result *out)
{
	tp_aws_session *s = session;
	const char *id = op->provider_id ? op->provider_id : stack_name_of(op);
	char *body = NULL;
	size_t len = 0;
	tp_aws_stack st;
	int rc;

	memset(&st, 0, sizeof(st));
	if ((rc = read_template(op, &body, &len)) < 0)
		goto done;
	if ((rc = describe(s, op->address, id, &st)) < 0) {
		if (rc == TP_ENOTFOUND)
			rc = tp_error_set(TP_ENOTFOUND, "%s: stack %s no longer exists; plan with "
							"--refresh to create it again", op->address,
					  stack_name_of(op));
		goto done;
	}
	if (tp_aws_stack_status_class(st.status) == TP_AWS_STACK_GONE) {
		rc = tp_error_set(TP_ENOTFOUND, "%s: stack %s was deleted; plan with --refresh to "
						"create it again", op->address, st.name);
		goto done;
	}
	if (!owned(&st, op)) {
		rc = not_owned(&st, op, "updating");
		goto done;
	}
	if ((rc = settle_before_write(s, op, &st)) < 0)
		goto done;
	rc = update_existing(s, op, &st, body, out);
done:
	tp_aws_stack_clear(&st);
	if (body) {
		explicit_bzero(body, len);
		free(body);
	}
	return rc;
}

int tp_aws_stack_remove(void *session, const tp_op *op)
{
	tp_aws_session *s = session;
	const char *id = op->provider_id ? op->provider_id : stack_name_of(op);
	tp_aws_stack st;
	int rc;

	memset(&st, 0, sizeof(st));
	rc = describe(s, op->address, id, &st);
	if (rc == TP_ENOTFOUND) {
		tp_error_clear();
		rc = 0; /* already gone */
		goto done;
	}
	if (rc < 0)
		goto done;
	if (tp_aws_stack_status_class(st.status) == TP_AWS_STACK_GONE)
		goto done;
	if (!owned(&st, op)) {
		rc = not_owned(&st, op, "deleting");
		goto done;
	}
	if ((rc = settle_before_write(s, op, &st)) < 0)
		goto done;
	if (tp_aws_stack_status_class(st.status) == TP_AWS_STACK_GONE)
		goto done;
	if (st.termination_protection) {
		rc = tp_error_set(TP_ECONFLICT, "%s: stack %s has termination protection on; set "
						"termination_protection: false in a commit (and apply "
						"it) before removing the stack", op->address, st.name);
		goto done;
	}
	rc = delete_stack(s, op, &st, json_object_get(op->applied, "retain_resources"));
done:
	tp_aws_stack_clear(&st);
	return rc;
}

int tp_aws_stack_adopt(void *session, const tp_op *op, tp_op_result *out)
{
	tp_aws_session *s = session;
	tp_aws_stack st;
	int rc;

	memset(&st, 0, sizeof(st));
	rc = describe(s, op->address, stack_name_of(op), &st);
	if (rc < 0)
		goto done;
	if (!owned(&st, op)) {
		rc = tp_error_set(TP_ENOTFOUND, "%s: stack %s is not ours", op->address, st.name);
		goto done;
	}
	if ((rc = settle_before_write(s, op, &st)) < 0)
		goto done;
	if (tp_aws_stack_status_class(st.status) != TP_AWS_STACK_OK) {
		/* a failed create leaves a tombstone: nothing to adopt, create deals with it */
		rc = tp_error_set(TP_ENOTFOUND, "%s: stack %s is %s", op->address, st.name,
				  st.status);
		goto done;
	}
	out->provider_id = tp_strdup(st.id);
	out->outputs = outputs_of(&st);
done:
	tp_aws_stack_clear(&st);
	return rc;
}

/* ---------------------------------------------------------------- observe */

/* "path@sha256:<16 hex>" for the live template, keeping the applied path. */
static json_t *observed_template(tp_aws_session *s, const tp_op *op, const tp_aws_stack *st)
{
	tp_aws_call call = {"cloudformation", CFN_VERSION, "GetTemplate", op->address};
	json_t *params = json_pack("{s:s,s:s}", "StackName", st->id, "TemplateStage", "Original");
	const char *applied = tp_json_get_str(op->applied, "template");
	tp_aws_xml *doc = NULL;
	json_t *out = NULL;
	const char *body;

	if (!applied || tp_aws_query(s, &call, params, &doc, NULL) < 0) {
		tp_error_clear();
		goto done;
	}
	body = tp_aws_xml_text(doc, "GetTemplateResult/TemplateBody");
	if (body) {
		uint8_t d[TP_SHA256_LEN];
		char hex[2 * TP_SHA256_LEN + 1];
		const char *digest = "";
		char *path = tp_file_field_path(applied, &digest);
		char *v;
		tp_sha256(d, body, strlen(body));
		tp_hex_encode(hex, d, sizeof(d));
		hex[TP_FILE_DIGEST_HEX] = '\0';
		v = tp_sprintf("%s" TP_FILE_DIGEST_SEP "%s", path, hex);
		out = json_string(v);
		free(v);
		free(path);
	}
done:
	tp_aws_xml_free(doc);
	json_decref(params);
	return out;
}

/* Whether parameter k was set from a secret: a sensitive path, or a secret reference in what
 * was applied. DescribeStacks answers such a value in clear unless the template declares the
 * parameter NoEcho (and some emulators answer NoEcho ones in clear too). */
static bool secret_parameter(const tp_op *op, const char *k, const json_t *applied_params)
{
	const char *was = tp_json_get_str(applied_params, k);
	char *path;
	bool sensitive;
	if (was && strstr(was, "${secret:"))
		return true;
	if (!op->sensitive)
		return false;
	path = tp_sprintf("parameters.%s", k);
	sensitive = tp_strlist_contains(op->sensitive, path);
	free(path);
	return sensitive;
}

/* The observed spec of a live stack, in aws.stack's shape. Parameters set from secrets are
 * kept only as keyed fingerprints (compared with the hashes the state recorded), never in
 * clear. */
static json_t *observed_spec(tp_aws_session *s, const tp_op *op, const tp_aws_stack *st)
{
	json_t *o = json_pack("{s:s,s:b}", "stack_name", st->name, "termination_protection",
			      st->termination_protection);
	json_t *applied_params = json_object_get(op->applied, "parameters");
	json_t *params = json_object();
	json_t *tags = json_object();
	json_t *caps = json_deep_copy(st->capabilities);
	json_t *tmpl = observed_template(s, op, st);
	const char *k;
	json_t *v;

	if (tmpl)
		json_object_set_new(o, "template", tmpl);
	/* only the parameters Tapestry sets: the others are template defaults */
	json_object_foreach(st->parameters, k, v) {
		if (!json_object_get(applied_params, k))
			continue;
		if (json_is_string(v) && strcmp(json_string_value(v), "****") == 0)
			json_object_set_new(params, k, json_string(MASKED)); /* NoEcho */
		else if (secret_parameter(op, k, applied_params))
			/* without a key to fingerprint with, the value is as good as masked */
			json_object_set_new(params, k,
					    json_is_string(v) && op->fingerprint_key
						    ? tp_op_fingerprint(op, json_string_value(v),
									json_string_length(v))
						    : json_string(MASKED));
		else
			json_object_set(params, k, v);
	}
	json_object_foreach(st->tags, k, v)
		if (strcmp(k, TP_AWS_OWNER_TAG) != 0 && strncmp(k, "aws:", 4) != 0)
			json_object_set(tags, k, v);
	tp_json_array_sort(caps, tp_json_qsort_cmp, true);
	json_object_set_new(o, "parameters", params);
	json_object_set_new(o, "tags", tags);
	json_object_set_new(o, "capabilities", caps);
	if (st->timeout_minutes > 0)
		json_object_set_new(o, "timeout_minutes", json_integer(st->timeout_minutes));
	/* [] and {} are absent, like the normalised desired spec */
	tp_json_drop_empty(o, "parameters", TP_JSON_EMPTY_CONTAINER);
	tp_json_drop_empty(o, "tags", TP_JSON_EMPTY_CONTAINER);
	tp_json_drop_empty(o, "capabilities", TP_JSON_EMPTY_CONTAINER);
	return o;
}

static bool live_exists(const tp_aws_stack *st)
{
	tp_aws_stack_class k = tp_aws_stack_status_class(st->status);
	/* a failed create's tombstone and a deleted stack are not the object */
	return k != TP_AWS_STACK_DEAD && k != TP_AWS_STACK_GONE;
}

/* Every stack of the account, page by page (DescribeStacks without a name). */
static int list_stacks(tp_aws_session *s, tp_aws_stack **out, size_t *n)
{
	tp_aws_call call = {"cloudformation", CFN_VERSION, "DescribeStacks", NULL};
	char *token = NULL;
	size_t cap = 0;
	int rc = 0;

	*out = NULL;
	*n = 0;
	for (int page = 0; page < 1000; page++) {
		json_t *params = json_object();
		tp_aws_xml *doc = NULL;
		tp_aws_stack *list = NULL;
		size_t m = 0;
		char *next = NULL;
		if (token)
			json_object_set_new(params, "NextToken", json_string(token));
		rc = tp_aws_query(s, &call, params, &doc, NULL);
		if (rc == 0)
			rc = tp_aws_stacks_parse(&list, &m, &next, doc);
		json_decref(params);
		tp_aws_xml_free(doc);
		if (rc < 0)
			break;
		for (size_t i = 0; i < m; i++) {
			if (*n == cap) {
				cap = cap ? 2 * cap : 16;
				*out = tp_realloc(*out, cap * sizeof(**out));
			}
			(*out)[(*n)++] = list[i];
		}
		free(list);
		free(token);
		token = next;
		if (!token)
			break;
	}
	free(token);
	if (rc < 0) {
		/* a later page failed: the stacks of the earlier ones go too */
		for (size_t i = 0; i < *n; i++)
			tp_aws_stack_clear(&(*out)[i]);
		free(*out);
		*out = NULL;
		*n = 0;
	}
	return rc;
}

int tp_aws_stack_observe(void *session, const tp_op *ops, size_t n, json_t **out)
{
	tp_aws_session *s = session;
	tp_aws_stack *all = NULL;
	size_t nall = 0;
	int rc = 0;

	for (size_t i = 0; i < n; i++)
		out[i] = NULL;
	if (n == 1) {
		/* one stack: ask for it by id (deleted stacks are found by id too) */
		tp_aws_stack st;
		const char *id = ops[0].provider_id ? ops[0].provider_id : stack_name_of(&ops[0]);
		rc = describe(s, ops[0].address, id, &st);
		if (rc == TP_ENOTFOUND) {
			tp_error_clear();
			return 0;
		}
		if (rc < 0)
			return rc;
		if (live_exists(&st))
			out[0] = observed_spec(s, &ops[0], &st);
		tp_aws_stack_clear(&st);
		return 0;
	}
	if ((rc = list_stacks(s, &all, &nall)) < 0)
		return rc;
	for (size_t i = 0; i < n; i++) {
		const tp_op *op = &ops[i];
		const char *name = stack_name_of(op);
		const tp_aws_stack *found = NULL;
		for (size_t j = 0; j < nall && !found; j++) {
			if (op->provider_id ? strcmp(all[j].id, op->provider_id) == 0
					    : strcmp(all[j].name, name) == 0)
				found = &all[j];
		}
		if (found && live_exists(found))
			out[i] = observed_spec(s, op, found);
	}
	for (size_t j = 0; j < nall; j++)
		tp_aws_stack_clear(&all[j]);
	free(all);
	return 0;
}

/* ---------------------------------------------------------------- change sets */

int tp_aws_stack_change_set(void *session, const tp_op *op, json_t **out)
{
	tp_aws_session *s = session;
	tp_aws_call create = {"cloudformation", CFN_VERSION, "CreateChangeSet", op->address};
	tp_aws_call describe_cs = {"cloudformation", CFN_VERSION, "DescribeChangeSet",
				   op->address};
	tp_aws_call del = {"cloudformation", CFN_VERSION, "DeleteChangeSet", op->address};
	const char *id = op->provider_id ? op->provider_id : stack_name_of(op);
	char *body = NULL, *cs_name = NULL, *status = NULL, *reason = NULL, *cs_id = NULL;
	size_t len = 0;
	json_t *params = NULL, *changes = NULL;
	tp_aws_xml *doc = NULL;
	tp_aws_error err;
	tp_aws_stack st;
	bool created = false;
	int64_t start = tp_clock_mono_ms(), delay = 500;
	int rc;

	*out = NULL;
	memset(&st, 0, sizeof(st));
	if ((rc = read_template(op, &body, &len)) < 0)
		goto done;
	rc = describe(s, op->address, id, &st);
	if (rc == TP_ENOTFOUND || (rc == 0 && !live_exists(&st))) {
		tp_error_clear();
		rc = 0; /* nothing to compare with: the plan creates it */
		goto done;
	}
	if (rc < 0)
		goto done;
	{
		uint8_t r[8];
		char hex[17];
		if (tp_random_bytes(r, sizeof(r)) < 0)
			memset(r, 7, sizeof(r));
		tp_hex_encode(hex, r, sizeof(r));
		cs_name = tp_sprintf("tapestry-plan-%s", hex);
	}
	/* by name: AWS takes a name or an id, moto only a name */
	params = write_params(op, st.name, body);
	json_object_del(params, "ClientRequestToken");
	json_object_set_new(params, "ChangeSetName", json_string(cs_name));
	json_object_set_new(params, "ChangeSetType", json_string("UPDATE"));
	json_object_set_new(params, "Description",
			    json_string("Tapestry plan preview; deleted right after it is read"));
	rc = tp_aws_query(s, &create, params, &doc, &err);
	if (rc < 0 && strcmp(err.code, "ValidationError") == 0 &&
	    (strstr(err.message, "No updates are to be performed") ||
	     strstr(err.message, "didn't contain changes"))) {
		/* moto refuses the change set itself when nothing changes */
		tp_error_clear();
		*out = json_array();
		rc = 0;
		goto done;
	}
	if (rc < 0)
		goto done;
	created = true;
	cs_id = tp_aws_xml_text(doc, "CreateChangeSetResult/Id")
			? tp_strdup(tp_aws_xml_text(doc, "CreateChangeSetResult/Id"))
			: tp_strdup(cs_name);
	tp_aws_xml_free(doc);
	doc = NULL;
	json_decref(params);
	params = json_pack("{s:s,s:s}", "StackName", st.name, "ChangeSetName", cs_id);
	for (;;) {
		if ((rc = tp_aws_query(s, &describe_cs, params, &doc, NULL)) < 0)
			goto done;
		free(status);
		free(reason);
		json_decref(changes);
		if ((rc = tp_aws_change_set_parse(&changes, &status, &reason, doc)) < 0)
			goto done;
		tp_aws_xml_free(doc);
		doc = NULL;
		if (!status || (strcmp(status, "CREATE_PENDING") != 0 &&
				strcmp(status, "CREATE_IN_PROGRESS") != 0))
			break;
		if (tp_clock_mono_ms() - start > 120000) {
			rc = tp_error_set(TP_ETRANSIENT, "%s: change set %s still %s after 2 min",
					  op->address, cs_name, status);
			goto done;
		}
		tp_clock_sleep_ms(delay);
		delay = delay * 2 < 5000 ? delay * 2 : 5000;
	}
	if (status && strcmp(status, "FAILED") == 0) {
		if (reason && (strstr(reason, "didn't contain changes") ||
			       strstr(reason, "No updates are to be performed"))) {
			json_decref(changes);
			changes = json_array();
		} else {
			rc = tp_error_set(TP_EINVALID, "%s: CloudFormation cannot compute the change "
						       "set: %s", op->address,
					  reason ? reason : "FAILED");
			goto done;
		}
	}
	*out = changes;
	changes = NULL;
done:
	if (created) {
		/* read-only for the stack: the change set never outlives the plan */
		json_t *dp = json_pack("{s:s,s:s}", "StackName", st.name, "ChangeSetName",
				       cs_id ? cs_id : cs_name);
		char *keep = rc < 0 ? tp_strdup(tp_error_last()) : NULL;
		int drc = tp_aws_query(s, &del, dp, NULL, NULL);
		if (drc < 0)
			tp_log(TP_LOG_WARN, op->address, NULL, "deleting change set %s: %s",
			       cs_name, tp_error_last());
		if (keep) {
			tp_error_set(rc, "%s", keep);
			free(keep);
		}
		json_decref(dp);
	}
	tp_aws_stack_clear(&st);
	tp_aws_xml_free(doc);
	json_decref(params);
	json_decref(changes);
	free(status);
	free(reason);
	free(cs_name);
	free(cs_id);
	if (body) {
		explicit_bzero(body, len);
		free(body);
	}
	return rc;
}
