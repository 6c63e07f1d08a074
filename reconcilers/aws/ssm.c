/*
 * aws.ssm_parameter at runtime, and ${secret:ssm:/path}: SSM Parameter Store over AWS JSON
 * 1.1 (query.c). A parameter is created with PutParameter (Overwrite false, tagged
 * tapestry:owner = op->marker) and updated with Overwrite true; it is observed in batches
 * (GetParameters, 10 names a call, WithDecryption; DescribeParameters, 50 names a filter,
 * paginated) and its value is reported as a keyed fingerprint whenever it is sensitive or a
 * SecureString, never as text. Deleting checks the ownership tag first. Every request and
 * reply that carries a value is wiped before it is freed.
 */
#include "aws_int.h"

#include <stdlib.h>
#include <string.h>

#define SSM "ssm"
#define SSM_TARGET "AmazonSSM"
#define GET_BATCH 10
#define DESCRIBE_BATCH 50

/* Overwrites every string of a JSON value (request and reply documents holding values). */
static void wipe(json_t *v)
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
			wipe(c);
	} else if (json_is_array(v)) {
		json_array_foreach(v, i, c)
			wipe(c);
	}
}

static void drop(json_t *v)
{
	wipe(v);
	json_decref(v);
}

static const char *param_name(const tp_op *op)
{
	const char *n = tp_json_get_str(op->spec, "name");
	if (!n)
		n = tp_json_get_str(op->applied, "name");
	if (!n)
		n = op->provider_id;
	return n ? n : op->name;
}

static bool is_sensitive(const tp_op *op, const char *path)
{
	return op->sensitive && tp_strlist_contains(op->sensitive, path);
}

static int call(tp_aws_session *s, const char *address, const char *action, const json_t *body,
		json_t **out, tp_aws_error *err)
{
	tp_aws_call c = {SSM, NULL, action, address};
	return tp_aws_json(s, &c, SSM_TARGET, body, out, err);
}

static bool missing(const tp_aws_error *e)
{
	return strcmp(e->code, "ParameterNotFound") == 0 ||
	       strcmp(e->code, "InvalidResourceId") == 0 ||
	       strcmp(e->code, "ParameterVersionNotFound") == 0;
}

/* The parameter (GetParameters; Value dropped unless keep_value): TP_ENOTFOUND if none. */
static int get_one(tp_aws_session *s, const tp_op *op, const char *name, bool decrypt,
		   json_t **out)
{
	json_t *body = json_pack("{s:[s],s:b}", "Names", name, "WithDecryption", decrypt);
	json_t *reply = NULL;
	json_t *p;
	int rc;

	*out = NULL;
	if ((rc = call(s, op->address, "GetParameters", body, &reply, NULL)) < 0)
		goto done;
	p = json_array_get(json_object_get(reply, "Parameters"), 0);
	if (!json_is_object(p)) {
		rc = tp_error_set(TP_ENOTFOUND, "%s: parameter %s does not exist", op->address,
				  name);
		goto done;
	}
	*out = json_deep_copy(p);
	if (!decrypt)
		json_object_del(*out, "Value");
done:
	json_decref(body);
	drop(reply);
	return rc;
}

/* The parameter's tags as {key: value}; TP_ENOTFOUND when the parameter does not exist. */
static int get_tags(tp_aws_session *s, const tp_op *op, const char *name, json_t **out)
{
	json_t *body = json_pack("{s:s,s:s}", "ResourceType", "Parameter", "ResourceId", name);
	json_t *reply = NULL;
	tp_aws_error err;
	size_t i;
	json_t *t;
	int rc;

	*out = NULL;
	rc = call(s, op->address, "ListTagsForResource", body, &reply, &err);
	if (rc < 0) {
		if (missing(&err))
			rc = tp_error_set(TP_ENOTFOUND, "%s: parameter %s does not exist",
					  op->address, name);
		goto done;
	}
	*out = json_object();
	json_array_foreach(json_object_get(reply, "TagList"), i, t) {
		const char *k = tp_json_get_str(t, "Key");
		const char *v = tp_json_get_str(t, "Value");
		if (k)
			json_object_set_new(*out, k, json_string(v ? v : ""));
	}
done:
	json_decref(body);
	json_decref(reply);
	return rc;
}

static bool owned(const json_t *tags, const tp_op *op)
{
	const char *v = tp_json_get_str(tags, TP_AWS_OWNER_TAG);
	return v && op->marker && strcmp(v, op->marker) == 0;
}

static json_t *outputs_for(const char *name, const char *arn, json_int_t version)
{
	json_t *o = json_pack("{s:s}", "name", name);
	char v[32];
	if (arn)
		json_object_set_new(o, "arn", json_string(arn));
	if (version > 0) {
		snprintf(v, sizeof(v), "%lld", (long long)version);
		json_object_set_new(o, "version", json_string(v));
	}
	return o;
}

/* PutParameter from op->spec. *version receives the new version. */
static int put(tp_aws_session *s, const tp_op *op, bool overwrite, json_int_t *version,
	       tp_aws_error *err)
{
	const json_t *spec = op->spec;
	const char *type = tp_json_get_str(spec, "type");
	const char *value = tp_json_get_str(spec, "value");
	json_t *body, *reply = NULL;
	int rc;
	static const char *const optional[][2] = {
		{"description", "Description"}, {"tier", "Tier"},
		{"allowed_pattern", "AllowedPattern"}, {"data_type", "DataType"},
	};

	*version = 0;
	if (!value)
		return tp_error_set(TP_EINVALID, "%s: the spec has no value", op->address);
	body = json_pack("{s:s,s:s,s:s,s:b}", "Name", param_name(op), "Value", value, "Type",
			 type ? type : "String", "Overwrite", overwrite);
	for (size_t i = 0; i < sizeof(optional) / sizeof(optional[0]); i++) {
		const char *v = tp_json_get_str(spec, optional[i][0]);
		if (v && v[0])
			json_object_set_new(body, optional[i][1], json_string(v));
	}
	if (type && strcmp(type, "SecureString") == 0 && tp_json_get_str(spec, "key_id"))
		json_object_set_new(body, "KeyId",
				    json_string(tp_json_get_str(spec, "key_id")));
	if (!overwrite)
		/* tags can only be given when the parameter is created */
		json_object_set_new(body, "Tags",
				    json_pack("[{s:s,s:s}]", "Key", TP_AWS_OWNER_TAG, "Value",
					      op->marker ? op->marker : ""));
	rc = call(s, op->address, "PutParameter", body, &reply, err);
	if (rc == 0)
		*version = json_integer_value(json_object_get(reply, "Version"));
	drop(body);
	json_decref(reply);
	return rc;
}

/* The parameter's ARN as SSM forms it,
 * "arn:<partition>:ssm:<region>:<account>:parameter/<name>" (the name's leading '/' not
 * doubled), from the session's identity. NULL when that is
 * unknown (GetCallerIdentity failed). */
static char *arn_for(tp_aws_session *s, const char *name)
{
	char partition[24], account[16];
	if (tp_aws_session_identity(s, partition, account) < 0) {
		tp_error_clear();
		return NULL;
	}
	return tp_sprintf("arn:%s:ssm:%s:%s:parameter%s%s", partition, s->region, account,
			  name[0] == '/' ? "" : "/", name);
}

/* Outputs after a write: PutParameter returned the version; the ARN is formed from the
 * session's account (one STS call a session), read back with GetParameters only when that
 * is unknown. */
static int finish(tp_aws_session *s, const tp_op *op, json_int_t version, tp_op_result *out)
{
	const char *name = param_name(op);
	const char *arn = tp_json_get_str(op->outputs, "arn");
	char *formed = NULL;
	json_t *p = NULL;
	int rc = 0;
	if (!arn && version > 0)
		arn = formed = arn_for(s, name);
	if (!arn) {
		if ((rc = get_one(s, op, name, false, &p)) < 0)
			goto done;
		arn = tp_json_get_str(p, "ARN");
		if (version <= 0)
			version = json_integer_value(json_object_get(p, "Version"));
	}
	out->provider_id = tp_strdup(name);
	out->outputs = outputs_for(name, arn, version);
done:
	free(formed);
	json_decref(p);
	return rc;
}

int tp_aws_ssm_create(void *session, const tp_op *op, tp_op_result *out)
{
	tp_aws_session *s = session;
	const char *name = param_name(op);
	json_t *tags = NULL;
	json_int_t version = 0;
	tp_aws_error err;
	int rc;

	rc = put(s, op, false, &version, &err);
	if (rc < 0 && strcmp(err.code, "ParameterAlreadyExists") == 0) {
		/* ours from an earlier attempt, or someone else's */
		tp_error_clear();
		if ((rc = get_tags(s, op, name, &tags)) < 0)
			goto done;
		if (!owned(tags, op)) {
			rc = tp_error_set(TP_EEXISTS, "%s: parameter %s already exists and %s; "
						      "Tapestry does not take over parameters it "
						      "did not create", op->address, name,
					  tp_json_get_str(tags, TP_AWS_OWNER_TAG)
						  ? "belongs to another owner"
						  : "has no " TP_AWS_OWNER_TAG " tag");
			goto done;
		}
		rc = put(s, op, true, &version, NULL);
	}
	if (rc < 0)
		goto done;
	rc = finish(s, op, version, out);
done:
	json_decref(tags);
	return rc;
}

int tp_aws_ssm_update(void *session, const tp_op *op, tp_op_result *out)
{
	tp_aws_session *s = session;
	json_int_t version = 0;
	int rc = put(s, op, true, &version, NULL);
	if (rc < 0)
		return rc;
	return finish(s, op, version, out);
}

int tp_aws_ssm_remove(void *session, const tp_op *op)
{
	tp_aws_session *s = session;
	const char *name = op->provider_id ? op->provider_id : param_name(op);
	json_t *tags = NULL, *body = NULL, *reply = NULL;
	tp_aws_error err;
	int rc;

	rc = get_tags(s, op, name, &tags);
	if (rc == TP_ENOTFOUND) {
		tp_error_clear();
		rc = 0; /* already gone */
		goto done;
	}
	if (rc < 0)
		goto done;
	if (!owned(tags, op)) {
		const char *v = tp_json_get_str(tags, TP_AWS_OWNER_TAG);
		rc = tp_error_set(TP_ECONFLICT, "%s: parameter %s %s%s; not deleting it",
				  op->address, name, v ? "belongs to " : "has no " TP_AWS_OWNER_TAG
									  " tag",
				  v ? v : "");
		goto done;
	}
	body = json_pack("{s:s}", "Name", name);
	rc = call(s, op->address, "DeleteParameter", body, &reply, &err);
	if (rc < 0 && missing(&err)) {
		tp_error_clear();
		rc = 0;
	}
done:
	json_decref(tags);
	json_decref(body);
	json_decref(reply);
	return rc;
}

int tp_aws_ssm_adopt(void *session, const tp_op *op, tp_op_result *out)
{
	tp_aws_session *s = session;
	const char *name = param_name(op);
	json_t *tags = NULL, *p = NULL;
	int rc;

	if ((rc = get_tags(s, op, name, &tags)) < 0)
		goto done;
	if (!owned(tags, op)) {
		rc = tp_error_set(TP_ENOTFOUND, "%s: parameter %s is not ours", op->address, name);
		goto done;
	}
	if ((rc = get_one(s, op, name, false, &p)) < 0)
		goto done;
	out->provider_id = tp_strdup(name);
	out->outputs = outputs_for(name, tp_json_get_str(p, "ARN"),
				   json_integer_value(json_object_get(p, "Version")));
done:
	json_decref(tags);
	json_decref(p);
	return rc;
}

/* ---------------------------------------------------------------- observe */

/* DescribeParameters for up to 50 names (all pages) into meta {name: metadata}. */
static int describe_batch(tp_aws_session *s, const char *const *names, size_t n, json_t *meta)
{
	json_t *values = json_array();
	char *token = NULL;
	int rc = 0;
	for (size_t i = 0; i < n; i++)
		json_array_append_new(values, json_string(names[i]));
	for (int page = 0; page < 1000; page++) {
		json_t *body = json_pack("{s:[{s:s,s:s,s:O}],s:i}", "ParameterFilters", "Key",
					 "Name", "Option", "Equals", "Values", values, "MaxResults",
					 DESCRIBE_BATCH);
		json_t *reply = NULL;
		size_t i;
		json_t *p;
		const char *next;
		if (token)
			json_object_set_new(body, "NextToken", json_string(token));
		rc = call(s, NULL, "DescribeParameters", body, &reply, NULL);
		json_decref(body);
		if (rc < 0) {
			json_decref(reply);
			break;
		}
		json_array_foreach(json_object_get(reply, "Parameters"), i, p) {
			const char *name = tp_json_get_str(p, "Name");
			if (name)
				json_object_set(meta, name, p);
		}
		next = tp_json_get_str(reply, "NextToken");
		free(token);
		token = next && next[0] ? tp_strdup(next) : NULL;
		json_decref(reply);
		if (!token)
			break;
	}
	free(token);
	json_decref(values);
	return rc;
}

/* GetParameters WithDecryption for up to 10 names into found {name: parameter}. */
static int get_batch(tp_aws_session *s, const char *const *names, size_t n, json_t *found)
{
	json_t *list = json_array();
	json_t *body, *reply = NULL;
	size_t i;
	json_t *p;
	int rc;
	for (i = 0; i < n; i++)
		json_array_append_new(list, json_string(names[i]));
	body = json_pack("{s:o,s:b}", "Names", list, "WithDecryption", 1);
	rc = call(s, NULL, "GetParameters", body, &reply, NULL);
	if (rc == 0) {
		json_array_foreach(json_object_get(reply, "Parameters"), i, p) {
			const char *name = tp_json_get_str(p, "Name");
			if (name)
				json_object_set_new(found, name, json_deep_copy(p));
		}
	}
	json_decref(body);
	drop(reply);
	return rc;
}

static json_t *observed_spec(const tp_op *op, const json_t *p, const json_t *meta)
{
	const char *type = tp_json_get_str(p, "Type");
	const char *value = tp_json_get_str(p, "Value");
	json_t *o = json_pack("{s:s}", "name", tp_json_get_str(p, "Name"));
	static const char *const optional[][2] = {
		{"Description", "description"}, {"Tier", "tier"},
		{"AllowedPattern", "allowed_pattern"},
	};
	if (type)
		json_object_set_new(o, "type", json_string(type));
	if (value) {
		if (is_sensitive(op, "value") || (type && strcmp(type, "SecureString") == 0))
			json_object_set_new(o, "value", tp_op_fingerprint(op, value, strlen(value)));
		else
			json_object_set_new(o, "value", json_string(value));
	}
	if (tp_json_get_str(p, "DataType"))
		json_object_set_new(o, "data_type", json_string(tp_json_get_str(p, "DataType")));
	for (size_t i = 0; i < sizeof(optional) / sizeof(optional[0]); i++) {
		const char *v = tp_json_get_str(meta, optional[i][0]);
		if (v && v[0])
			json_object_set_new(o, optional[i][1], json_string(v));
	}
	if (type && strcmp(type, "SecureString") == 0 && tp_json_get_str(meta, "KeyId"))
		json_object_set_new(o, "key_id", json_string(tp_json_get_str(meta, "KeyId")));
	return o;
}

int tp_aws_ssm_observe(void *session, const tp_op *ops, size_t n, json_t **out)
{
	tp_aws_session *s = session;
	const char **names = tp_calloc(n + 1, sizeof(*names));
	json_t *found = json_object(), *meta = json_object();
	int rc = 0;

	for (size_t i = 0; i < n; i++) {
		out[i] = NULL;
		names[i] = ops[i].provider_id ? ops[i].provider_id : param_name(&ops[i]);
	}
	for (size_t i = 0; i < n && rc == 0; i += GET_BATCH)
		rc = get_batch(s, names + i, n - i < GET_BATCH ? n - i : GET_BATCH, found);
	for (size_t i = 0; i < n && rc == 0; i += DESCRIBE_BATCH)
		rc = describe_batch(s, names + i, n - i < DESCRIBE_BATCH ? n - i : DESCRIBE_BATCH,
				    meta);
	if (rc == 0) {
		for (size_t i = 0; i < n; i++) {
			const json_t *p = json_object_get(found, names[i]);
			if (p)
				out[i] = observed_spec(&ops[i], p, json_object_get(meta, names[i]));
		}
	}
	drop(found);
	json_decref(meta);
	free(names);
	return rc;
}

/* ---------------------------------------------------------------- secrets */

int tp_aws_ssm_resolve_secret(void *session, const char *location, char **out)
{
	tp_aws_session *s = session;
	json_t *body = json_pack("{s:s,s:b}", "Name", location, "WithDecryption", 1);
	json_t *reply = NULL;
	tp_aws_error err;
	const char *value;
	int rc;

	*out = NULL;
	if (!s) {
		rc = tp_error_set(TP_EINVALID, "secret ${secret:ssm:%s}: no AWS session", location);
		goto done;
	}
	rc = call(s, NULL, "GetParameter", body, &reply, &err);
	if (rc < 0) {
		char *m = tp_strdup(tp_error_last());
		rc = tp_error_wrap(missing(&err) ? TP_ENOTFOUND : rc, "secret ${secret:ssm:%s}: %s",
				   location, missing(&err) ? "the parameter does not exist" : m);
		free(m);
		goto done;
	}
	value = tp_json_get_str(json_object_get(reply, "Parameter"), "Value");
	if (!value) {
		rc = tp_error_set(TP_EIO, "secret ${secret:ssm:%s}: the reply has no value",
				  location);
		goto done;
	}
	*out = tp_strdup(value);
done:
	json_decref(body);
	drop(reply);
	return rc;
}
