/*
 * aws.stack's observe never keeps a secret template parameter in clear. DescribeStacks answers
 * every parameter value unless the template declares it NoEcho (and moto answers NoEcho ones
 * too); what observe returns is stored in the state database as the resource's observed spec,
 * so a parameter set from a ${secret:...} must come back as its keyed fingerprint (or masked
 * when there is no key), compared with the hash the state recorded, like every other provider's
 * sensitive values. Runs against AWS-shaped replies from the scripted server on 127.0.0.1.
 */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "reconcilers/aws/aws_int.h"
#include "support/moto.h"
#include "support/support.h"

#define ARN         "arn:aws:cloudformation:us-east-1:123456789012:stack/rs-app/1111-2222"
#define SECRET_REF  "CANARY-stack-parameter-from-a-secret-reference"
#define SECRET_PATH "CANARY-stack-parameter-on-a-sensitive-path"

static ts_aws_server *srv;
static tp_aws_session *sess;
static uint8_t key[32] = {1, 2, 3, 4, 5, 6, 7, 8};

static void setup(void)
{
	setenv("AWS_ACCESS_KEY_ID", "AKIDSTACKPARAMS", 1);
	setenv("AWS_SECRET_ACCESS_KEY", "stack-params-secret", 1);
	unsetenv("AWS_SESSION_TOKEN");
	setenv("AWS_EC2_METADATA_DISABLED", "true", 1);
	srv = ts_aws_server_start(NULL);
	cr_assert_eq(tp_aws_session_new(&sess, "us-east-1", ts_aws_server_url(srv), "rs", NULL), 0);
	sess->retry_base_ms = 1;
	sess->throttle_base_ms = 1;
	sess->retry_cap_ms = 2;
}

static void teardown(void)
{
	tp_aws_session_free(sess);
	ts_aws_server_stop(srv);
}

TestSuite(stack_parameters, .init = setup, .fini = teardown);

static char *param_xml(const char *k, const char *v)
{
	return tp_sprintf("<member><ParameterKey>%s</ParameterKey><ParameterValue>%s"
			  "</ParameterValue></member>",
			  k, v);
}

/* One live stack whose parameters came back as AWS (or moto) answers them. */
static void script_stack(void)
{
	char *p1 = param_xml("InstanceType", "t3.xlarge");
	char *p2 = param_xml("ApiKey", SECRET_REF);
	char *p3 = param_xml("Token", SECRET_PATH);
	char *p4 = param_xml("DbPassword", "****");
	char *xml = tp_sprintf(
	    "<DescribeStacksResponse xmlns=\"http://cloudformation.amazonaws.com/doc/2010-05-15/\">"
	    "<DescribeStacksResult><Stacks><member><StackName>rs-app</StackName>"
	    "<StackId>" ARN "</StackId><StackStatus>CREATE_COMPLETE</StackStatus>"
	    "<Parameters>%s%s%s%s</Parameters><Tags><member><Key>tapestry:owner</Key>"
	    "<Value>tapestry:rs:aws.stack/app</Value></member></Tags>"
	    "<EnableTerminationProtection>false</EnableTerminationProtection>"
	    "</member></Stacks></DescribeStacksResult>"
	    "<ResponseMetadata><RequestId>r</RequestId></ResponseMetadata>"
	    "</DescribeStacksResponse>",
	    p1, p2, p3, p4);
	ts_aws_server_reply(srv, "DescribeStacks", 200, "text/xml", xml);
	ts_aws_server_reply(srv, "GetTemplate", 200, "text/xml",
			    "<GetTemplateResponse><GetTemplateResult><TemplateBody>Resources: {}"
			    "</TemplateBody></GetTemplateResult></GetTemplateResponse>");
	free(xml);
	free(p1);
	free(p2);
	free(p3);
	free(p4);
}

static json_t *observe(const uint8_t *fingerprint_key)
{
	/* applied: what the state recorded (secret references as text); sensitive: the paths
	 * of the recorded secret hashes */
	json_t *applied =
	    json_pack("{s:s,s:s,s:{s:s,s:s,s:s,s:s}}", "stack_name", "rs-app", "template",
		      "templates/app.yaml", "parameters", "InstanceType", "t3.xlarge", "ApiKey",
		      "${secret:env:API_KEY}", "Token", "set before references were recorded",
		      "DbPassword", "${secret:ssm:/rs/db_password}");
	tp_strlist sensitive = {0};
	tp_op op;
	json_t *out = NULL;
	memset(&op, 0, sizeof(op));
	tp_strlist_push(&sensitive, "parameters.Token");
	op.address = "aws.stack/app";
	op.name = "app";
	op.provider_id = ARN;
	op.applied = applied;
	op.sensitive = &sensitive;
	op.marker = "tapestry:rs:aws.stack/app";
	op.fingerprint_key = fingerprint_key;
	script_stack();
	cr_assert_eq(tp_aws_stack_observe(sess, &op, 1, &out), 0, "%s", tp_error_last());
	cr_assert_not_null(out);
	tp_strlist_free(&sensitive);
	json_decref(applied);
	return out;
}

static void expect_no_secret(const json_t *observed)
{
	char *text = json_dumps(observed, JSON_SORT_KEYS);
	cr_assert(!strstr(text, SECRET_REF) && !strstr(text, SECRET_PATH),
		  "a secret parameter is kept in clear: %s", text);
	free(text);
}

static void expect_fingerprint(const json_t *observed, const char *k, const char *value)
{
	uint8_t mac[TP_SHA256_LEN];
	char hex[2 * TP_SHA256_LEN + 1];
	json_t *params = json_object_get(observed, "parameters");
	tp_hmac_sha256(mac, key, sizeof(key), value, strlen(value));
	tp_hex_encode(hex, mac, sizeof(mac));
	cr_assert_str_eq(json_string_value(tp_json_path_get(json_object_get(params, k), "$hmac")),
			 hex, "parameters.%s should be the keyed fingerprint of the live value", k);
}

Test(stack_parameters, secret_parameters_are_kept_as_fingerprints)
{
	json_t *o = observe(key);
	json_t *params = json_object_get(o, "parameters");
	expect_no_secret(o);
	/* the hash the engine records for a secret is HMAC(key, value): a rotation behind
	 * Tapestry's back shows as drift, an unchanged secret does not */
	expect_fingerprint(o, "ApiKey", SECRET_REF);
	expect_fingerprint(o, "Token", SECRET_PATH);
	cr_assert_str_eq(json_string_value(json_object_get(params, "DbPassword")), "**********",
			 "NoEcho values stay masked");
	cr_assert_str_eq(json_string_value(json_object_get(params, "InstanceType")), "t3.xlarge",
			 "other parameters are compared as they are");
	json_decref(o);
}

Test(stack_parameters, secret_parameters_are_masked_without_a_key)
{
	json_t *o = observe(NULL);
	json_t *params = json_object_get(o, "parameters");
	expect_no_secret(o);
	cr_assert_str_eq(json_string_value(json_object_get(params, "ApiKey")), "**********");
	cr_assert_str_eq(json_string_value(json_object_get(params, "Token")), "**********");
	cr_assert_str_eq(json_string_value(json_object_get(params, "InstanceType")), "t3.xlarge");
	json_decref(o);
}
