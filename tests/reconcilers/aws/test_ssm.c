/*
 * aws.ssm_parameter's runtime slots and ${secret:ssm:...} (ssm.c) against AWS-shaped JSON 1.1
 * replies from the scripted server on 127.0.0.1: batched observation (GetParameters by 10,
 * DescribeParameters by 50 with NextToken pages), values reported only as fingerprints when
 * sensitive or SecureString, the ownership tag on create and delete, and secret errors that
 * never carry a value.
 */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "reconcilers/aws/aws_int.h"
#include "support/moto.h"
#include "support/support.h"

#define JSON11 "application/x-amz-json-1.1"
#define MARKER "tapestry:rs:aws.ssm_parameter/key"

static ts_aws_server *srv;
static tp_aws_session *sess;
static uint8_t key[32];

static void setup(void)
{
	setenv("AWS_ACCESS_KEY_ID", "AKIDSSM", 1);
	setenv("AWS_SECRET_ACCESS_KEY", "ssm-secret", 1);
	setenv("AWS_EC2_METADATA_DISABLED", "true", 1);
	srv = ts_aws_server_start(NULL);
	cr_assert_eq(tp_aws_session_new(&sess, "us-east-1", ts_aws_server_url(srv), "rs", NULL), 0);
	sess->retry_base_ms = 1;
	sess->retry_cap_ms = 2;
	memset(key, 7, sizeof(key));
}

static void teardown(void)
{
	tp_aws_session_free(sess);
	ts_aws_server_stop(srv);
}

TestSuite(ssm, .init = setup, .fini = teardown);

static char *fixture(const char *name)
{
	char *rel = tp_sprintf("tests/fixtures/aws/responses/%s", name);
	char *path = ts_source_path(rel);
	char *text = ts_read(path);
	cr_assert_not_null(text, "%s", path);
	free(rel);
	free(path);
	return text;
}

static tp_op op_for(const char *name, const json_t *spec, const json_t *applied,
		    const tp_strlist *sensitive)
{
	tp_op op;
	memset(&op, 0, sizeof(op));
	op.address = "aws.ssm_parameter/key";
	op.name = "key";
	op.provider_id = name;
	op.spec = spec;
	op.applied = applied;
	op.sensitive = sensitive;
	op.token = "tok";
	op.marker = MARKER;
	op.fingerprint_key = key;
	return op;
}

Test(ssm, observe_in_batches_with_fingerprints)
{
	char *get = fixture("ssm_get_parameters.json");
	char *d1 = fixture("ssm_describe_parameters_page1.json");
	char *d2 = fixture("ssm_describe_parameters_page2.json");
	tp_strlist sens = {0};
	tp_op ops[3];
	json_t *out[3];
	json_t *fp;
	json_t *reqs;

	tp_strlist_push(&sens, "value");
	ops[0] = op_for("/rainshield/airbyte/staging_bucket", NULL, NULL, NULL);
	ops[1] = op_for("/rainshield/grouparoo/api_key", NULL, NULL, &sens);
	ops[2] = op_for("/rainshield/zoom/account_id", NULL, NULL, &sens);
	ts_aws_server_reply(srv, "AmazonSSM.GetParameters", 200, JSON11, get);
	ts_aws_server_reply(srv, "AmazonSSM.DescribeParameters", 200, JSON11, d1);
	ts_aws_server_reply(srv, "AmazonSSM.DescribeParameters", 200, JSON11, d2);
	cr_assert_eq(tp_aws_ssm_observe(sess, ops, 3, out), 0, "%s", tp_error_last());
	cr_assert_eq(ts_aws_server_count(srv, "AmazonSSM.GetParameters"), 1);
	cr_assert_eq(ts_aws_server_count(srv, "AmazonSSM.DescribeParameters"), 2);

	cr_assert_str_eq(tp_json_get_str(out[0], "value"),
			 "rainshield-airbyte-stagingbucket-1x2y3z4w5v6u");
	cr_assert_str_eq(tp_json_get_str(out[0], "type"), "String");
	cr_assert_str_eq(tp_json_get_str(out[0], "tier"), "Standard");
	cr_assert_str_eq(tp_json_get_str(out[0], "allowed_pattern"), "^[a-z0-9.-]+$");
	cr_assert_str_eq(tp_json_get_str(out[0], "data_type"), "text");
	cr_assert(strstr(tp_json_get_str(out[0], "description"), "stages bulk loads"));

	fp = tp_op_fingerprint(&ops[1], "gr-live-5f0a9c1e", strlen("gr-live-5f0a9c1e"));
	cr_assert(json_equal(json_object_get(out[1], "value"), fp), "the value is a fingerprint");
	cr_assert_str_eq(tp_json_get_str(out[1], "key_id"), "alias/aws/ssm");
	cr_assert_str_eq(tp_json_get_str(out[1], "tier"), "Advanced");
	{
		char *all = json_dumps(out[1], 0);
		cr_assert_null(strstr(all, "gr-live"), "never the plain text: %s", all);
		free(all);
	}
	cr_assert_null(out[2], "InvalidParameters: gone");

	reqs = ts_aws_server_requests(srv);
	cr_assert(strstr(tp_json_get_str(json_array_get(reqs, 0), "body"),
			 "\"WithDecryption\":true"));
	cr_assert(strstr(tp_json_get_str(json_array_get(reqs, 2), "body"),
			 "\"NextToken\":\"AAEAAf7l5eEXAMPLEtoken\""));
	json_decref(reqs);
	json_decref(out[0]);
	json_decref(out[1]);
	json_decref(fp);
	tp_strlist_free(&sens);
	free(get);
	free(d1);
	free(d2);
}

Test(ssm, many_parameters_are_batched_by_ten)
{
	tp_op ops[23];
	json_t *out[23];
	char *names[23];
	for (int i = 0; i < 23; i++) {
		names[i] = tp_sprintf("/p/%02d", i);
		ops[i] = op_for(names[i], NULL, NULL, NULL);
	}
	ts_aws_server_default(srv, "AmazonSSM.GetParameters", 200, JSON11,
			      "{\"Parameters\":[],\"InvalidParameters\":[]}");
	ts_aws_server_default(srv, "AmazonSSM.DescribeParameters", 200, JSON11,
			      "{\"Parameters\":[]}");
	cr_assert_eq(tp_aws_ssm_observe(sess, ops, 23, out), 0, "%s", tp_error_last());
	cr_assert_eq(ts_aws_server_count(srv, "AmazonSSM.GetParameters"), 3);
	cr_assert_eq(ts_aws_server_count(srv, "AmazonSSM.DescribeParameters"), 1);
	for (int i = 0; i < 23; i++) {
		cr_assert_null(out[i]);
		free(names[i]);
	}
}

Test(ssm, create_respects_ownership)
{
	json_t *spec = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s}", "name", "/rs/key", "type",
				 "SecureString", "value", "s3cr3t-value", "tier", "Standard",
				 "data_type", "text", "description", "the key");
	tp_op op = op_for(NULL, spec, NULL, NULL);
	tp_op_result res = {0};
	json_t *reqs;
	const char *body;

	char *identity = fixture("get_caller_identity.xml");

	ts_aws_server_reply(srv, "AmazonSSM.PutParameter", 200, JSON11,
			    "{\"Version\":1,\"Tier\":\"Standard\"}");
	ts_aws_server_reply(srv, "GetCallerIdentity", 200, "text/xml", identity);
	cr_assert_eq(tp_aws_ssm_create(sess, &op, &res), 0, "%s", tp_error_last());
	cr_assert_str_eq(res.provider_id, "/rs/key");
	cr_assert_str_eq(tp_json_get_str(res.outputs, "arn"),
			 "arn:aws:ssm:us-east-1:123456789012:parameter/rs/key");
	cr_assert_str_eq(tp_json_get_str(res.outputs, "version"), "1");
	cr_assert_str_eq(tp_json_get_str(res.outputs, "name"), "/rs/key");
	reqs = ts_aws_server_requests(srv);
	body = tp_json_get_str(json_array_get(reqs, 0), "body");
	cr_assert(strstr(body, "\"Overwrite\":false"), "%s", body);
	cr_assert(strstr(body, "\"Tags\":[{\"Key\":\"tapestry:owner\",\"Value\":\"" MARKER "\"}]"),
		  "%s", body);
	cr_assert(strstr(body, "\"Description\":\"the key\""), "%s", body);
	/* the ARN is formed from the account (one STS call a session), not read back */
	cr_assert_eq(json_array_size(reqs), 2);
	cr_assert_str_eq(tp_json_get_str(json_array_get(reqs, 1), "action"), "GetCallerIdentity");
	json_decref(reqs);
	tp_op_result_clear(&res);

	/* taken by someone else */
	ts_aws_server_reset(srv);
	ts_aws_server_reply(srv, "AmazonSSM.PutParameter", 400, JSON11,
			    "{\"__type\":\"ParameterAlreadyExists\",\"message\":\"The parameter "
			    "already exists.\"}");
	ts_aws_server_reply(srv, "AmazonSSM.ListTagsForResource", 200, JSON11,
			    "{\"TagList\":[{\"Key\":\"team\",\"Value\":\"data\"}]}");
	cr_assert_eq(tp_aws_ssm_create(sess, &op, &res), TP_EEXISTS);
	cr_assert(strstr(tp_error_last(), "already exists and has no tapestry:owner tag"), "%s",
		  tp_error_last());
	cr_assert_null(strstr(tp_error_last(), "s3cr3t"));
	cr_assert_eq(ts_aws_server_count(srv, "AmazonSSM.PutParameter"), 1);

	/* ours from an interrupted attempt: overwritten (tags cannot go with Overwrite) */
	ts_aws_server_reset(srv);
	ts_aws_server_reply(srv, "AmazonSSM.PutParameter", 400, JSON11,
			    "{\"__type\":\"ParameterAlreadyExists\",\"message\":\"exists\"}");
	ts_aws_server_reply(srv, "AmazonSSM.ListTagsForResource", 200, JSON11,
			    "{\"TagList\":[{\"Key\":\"tapestry:owner\",\"Value\":\"" MARKER
			    "\"}]}");
	ts_aws_server_reply(srv, "AmazonSSM.PutParameter", 200, JSON11, "{\"Version\":2}");
	cr_assert_eq(tp_aws_ssm_create(sess, &op, &res), 0, "%s", tp_error_last());
	reqs = ts_aws_server_requests(srv);
	cr_assert_eq(json_array_size(reqs), 3, "the account is known: no STS call, no read-back");
	body = tp_json_get_str(json_array_get(reqs, 2), "body");
	cr_assert(strstr(body, "\"Overwrite\":true"), "%s", body);
	cr_assert_null(strstr(body, "Tags"), "%s", body);
	cr_assert_str_eq(tp_json_get_str(res.outputs, "arn"),
			 "arn:aws:ssm:us-east-1:123456789012:parameter/rs/key");
	cr_assert_str_eq(tp_json_get_str(res.outputs, "version"), "2");
	json_decref(reqs);
	tp_op_result_clear(&res);
	json_decref(spec);
	free(identity);
}

/* The ARN takes the partition of the caller's ARN and no doubled '/' for a name without
 * one; when the account cannot be learnt the ARN is read back instead, never guessed. */
Test(ssm, create_forms_or_reads_back_the_arn)
{
	json_t *spec = json_pack("{s:s,s:s,s:s}", "name", "plain", "type", "String", "value", "v");
	tp_op op = op_for(NULL, spec, NULL, NULL);
	tp_op_result res = {0};
	tp_aws_session *cn = NULL;
	json_t *reqs;

	ts_aws_server_reply(srv, "AmazonSSM.PutParameter", 200, JSON11, "{\"Version\":1}");
	ts_aws_server_reply(srv, "GetCallerIdentity", 403, "text/xml",
			    "<ErrorResponse><Error><Type>Sender</Type><Code>AccessDenied</Code>"
			    "<Message>not allowed</Message></Error></ErrorResponse>");
	ts_aws_server_reply(
	    srv, "AmazonSSM.GetParameters", 200, JSON11,
	    "{\"Parameters\":[{\"Name\":\"plain\",\"Version\":1,\"ARN\":\"arn:aws:"
	    "ssm:us-east-1:210987654321:parameter/plain\"}],\"InvalidParameters\":[]}");
	cr_assert_eq(tp_aws_ssm_create(sess, &op, &res), 0, "%s", tp_error_last());
	cr_assert_str_eq(tp_json_get_str(res.outputs, "arn"),
			 "arn:aws:ssm:us-east-1:210987654321:parameter/plain");
	reqs = ts_aws_server_requests(srv);
	cr_assert_eq(json_array_size(reqs), 3);
	cr_assert(
	    strstr(tp_json_get_str(json_array_get(reqs, 2), "body"), "\"WithDecryption\":false"));
	json_decref(reqs);
	tp_op_result_clear(&res);

	ts_aws_server_reset(srv);
	cr_assert_eq(tp_aws_session_new(&cn, "cn-north-1", ts_aws_server_url(srv), "rs", NULL), 0);
	ts_aws_server_reply(srv, "AmazonSSM.PutParameter", 200, JSON11, "{\"Version\":1}");
	ts_aws_server_reply(srv, "GetCallerIdentity", 200, "text/xml",
			    "<GetCallerIdentityResponse><GetCallerIdentityResult><Arn>arn:aws-cn:"
			    "iam::123456789012:user/t</Arn><Account>123456789012</Account>"
			    "</GetCallerIdentityResult></GetCallerIdentityResponse>");
	cr_assert_eq(tp_aws_ssm_create(cn, &op, &res), 0, "%s", tp_error_last());
	cr_assert_str_eq(tp_json_get_str(res.outputs, "arn"),
			 "arn:aws-cn:ssm:cn-north-1:123456789012:parameter/plain");
	cr_assert_eq(ts_aws_server_count(srv, "AmazonSSM.GetParameters"), 0);
	tp_op_result_clear(&res);
	tp_aws_session_free(cn);
	json_decref(spec);
}

/* A GetCallerIdentity reply without a 12-digit account or a caller ARN is not used to form
 * an ARN: the ARN is read back, and the next create asks STS again. */
Test(ssm, a_malformed_identity_is_not_used_for_the_arn)
{
	json_t *spec = json_pack("{s:s,s:s,s:s}", "name", "/p/x", "type", "String", "value", "v");
	tp_op op = op_for(NULL, spec, NULL, NULL);
	tp_op_result res = {0};
	static const char *const bad[] = {
	    "<GetCallerIdentityResponse><GetCallerIdentityResult><Arn>arn:aws:iam::1:user/t</Arn>"
	    "<Account>1</Account></GetCallerIdentityResult></GetCallerIdentityResponse>",
	    "<GetCallerIdentityResponse><GetCallerIdentityResult><Account>123456789012</Account>"
	    "</GetCallerIdentityResult></GetCallerIdentityResponse>",
	    "<GetCallerIdentityResponse><GetCallerIdentityResult><Arn>not-an-arn</Arn>"
	    "<Account>123456789012</Account></GetCallerIdentityResult></GetCallerIdentityResponse>",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ts_aws_server_reset(srv);
		ts_aws_server_reply(srv, "AmazonSSM.PutParameter", 200, JSON11, "{\"Version\":1}");
		ts_aws_server_reply(srv, "GetCallerIdentity", 200, "text/xml", bad[i]);
		ts_aws_server_reply(srv, "AmazonSSM.GetParameters", 200, JSON11,
				    "{\"Parameters\":[{\"Name\":\"/p/x\",\"Version\":1,\"ARN\":"
				    "\"arn:aws:ssm:us-east-1:111122223333:parameter/p/x\"}],"
				    "\"InvalidParameters\":[]}");
		cr_assert_eq(tp_aws_ssm_create(sess, &op, &res), 0, "%s", tp_error_last());
		cr_assert_str_eq(tp_json_get_str(res.outputs, "arn"),
				 "arn:aws:ssm:us-east-1:111122223333:parameter/p/x", "reply %zu", i);
		cr_assert_eq(ts_aws_server_count(srv, "GetCallerIdentity"), 1, "reply %zu", i);
		cr_assert_eq(ts_aws_server_count(srv, "AmazonSSM.GetParameters"), 1);
		tp_op_result_clear(&res);
	}
	json_decref(spec);
}

Test(ssm, remove_checks_the_owner)
{
	json_t *applied = json_pack("{s:s}", "name", "/rs/key");
	tp_op op = op_for("/rs/key", NULL, applied, NULL);

	ts_aws_server_reply(srv, "AmazonSSM.ListTagsForResource", 200, JSON11,
			    "{\"TagList\":[{\"Key\":\"tapestry:owner\",\"Value\":\"tapestry:x:y\"}]}");
	cr_assert_eq(tp_aws_ssm_remove(sess, &op), TP_ECONFLICT);
	cr_assert(strstr(tp_error_last(), "belongs to tapestry:x:y; not deleting it"), "%s",
		  tp_error_last());
	cr_assert_eq(ts_aws_server_write_count(srv), 0);

	ts_aws_server_reply(srv, "AmazonSSM.ListTagsForResource", 400, JSON11,
			    "{\"__type\":\"InvalidResourceId\",\"message\":\"Invalid Resource Id\"}");
	cr_assert_eq(tp_aws_ssm_remove(sess, &op), 0, "already gone: %s", tp_error_last());
	cr_assert_eq(ts_aws_server_write_count(srv), 0);

	ts_aws_server_reply(srv, "AmazonSSM.ListTagsForResource", 200, JSON11,
			    "{\"TagList\":[{\"Key\":\"tapestry:owner\",\"Value\":\"" MARKER "\"}]}");
	ts_aws_server_reply(srv, "AmazonSSM.DeleteParameter", 400, JSON11,
			    "{\"__type\":\"ParameterNotFound\",\"message\":\"gone meanwhile\"}");
	cr_assert_eq(tp_aws_ssm_remove(sess, &op), 0, "%s", tp_error_last());
	json_decref(applied);
}

/* Found by bench/reliability/faults.sh: a secret read throttled beyond the client's attempts
 * was re-worded with the secret's name, which dropped the server's Retry-After: the engine
 * then read it again after 70 ms instead of the 2 s asked for. */
Test(ssm, a_throttled_secret_read_keeps_its_retry_after)
{
	char *v = NULL;
	const char *raw = "HTTP/1.1 400 Bad Request\r\nContent-Type: " JSON11 "\r\n"
			  "Retry-After: 3\r\nContent-Length: 59\r\nConnection: close\r\n\r\n"
			  "{\"__type\":\"ThrottlingException\",\"message\":\"Rate exceeded.\"}";
	for (int i = 0; i < 3; i++)
		ts_aws_server_reply_raw(srv, "AmazonSSM.GetParameter", raw);
	cr_assert_eq(tp_aws_ssm_resolve_secret(sess, "/rs/busy", &v), TP_ETHROTTLED, "%s",
		     tp_error_last());
	cr_assert_null(v);
	cr_assert(strstr(tp_error_last(), "secret ${secret:ssm:/rs/busy}"), "%s", tp_error_last());
	cr_assert_eq(tp_error_retry_after(), 3000);
	cr_assert_eq(ts_aws_server_count(srv, "AmazonSSM.GetParameter"), 3);
}

Test(ssm, secrets)
{
	char *v = NULL;
	ts_aws_server_reply(srv, "AmazonSSM.GetParameter", 200, JSON11,
			    "{\"Parameter\":{\"Name\":\"/rs/api_key\",\"Type\":\"SecureString\","
			    "\"Value\":\"live-api-key\",\"Version\":4}}");
	cr_assert_eq(tp_aws_ssm_resolve_secret(sess, "/rs/api_key", &v), 0, "%s", tp_error_last());
	cr_assert_str_eq(v, "live-api-key");
	tp_secret_free(v);
	{
		json_t *reqs = ts_aws_server_requests(srv);
		cr_assert_str_eq(tp_json_get_str(json_array_get(reqs, 0), "body"),
				 "{\"Name\":\"/rs/api_key\",\"WithDecryption\":true}");
		json_decref(reqs);
	}
	ts_aws_server_reply(srv, "AmazonSSM.GetParameter", 400, JSON11,
			    "{\"__type\":\"ParameterNotFound\",\"message\":\"Parameter /rs/nope not "
			    "found.\"}");
	cr_assert_eq(tp_aws_ssm_resolve_secret(sess, "/rs/nope", &v), TP_ENOTFOUND);
	cr_assert_str_eq(tp_error_last(),
			 "secret ${secret:ssm:/rs/nope}: the parameter does not exist");
	cr_assert_null(v);
	ts_aws_server_reply(srv, "AmazonSSM.GetParameter", 400, JSON11,
			    "{\"__type\":\"AccessDeniedException\",\"message\":\"no kms:Decrypt\"}");
	cr_assert_eq(tp_aws_ssm_resolve_secret(sess, "/rs/denied", &v), TP_EAUTH);
	cr_assert(strstr(tp_error_last(), "AccessDeniedException: no kms:Decrypt"), "%s",
		  tp_error_last());
}
