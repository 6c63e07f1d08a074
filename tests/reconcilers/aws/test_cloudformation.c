/*
 * aws.stack's runtime slots (cloudformation.c) against AWS-shaped replies from the scripted
 * server on 127.0.0.1, for the behaviour moto does not have (NOTES.md): asynchronous stack
 * operations polled until they settle, stack events as progress and as the reason of a
 * failure, UPDATE_ROLLBACK_COMPLETE, stacks stuck IN_PROGRESS (bounded wait), ROLLBACK_COMPLETE
 * tombstones, DELETE_FAILED retried with RetainResources, termination protection, change sets
 * with Replacement, unknown statuses, and bad templates that stop everything before a call.
 */
#include <criterion/criterion.h>
#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/lsan_interface.h>
#endif
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "reconcilers/aws/aws_int.h"
#include "spec/spec.h"
#include "support/moto.h"
#include "support/support.h"

#define ARN "arn:aws:cloudformation:us-east-1:123456789012:stack/rs-app/1111-2222"
#define MARKER "tapestry:rs:aws.stack/app"
#define TOKEN "0f3c2a9b8d7e6f5a4b3c2d1e0f9a8b7c"

static const char *template_text =
	"AWSTemplateFormatVersion: \"2010-09-09\"\nParameters:\n  InstanceType:\n"
	"    Type: String\nResources:\n  Bucket:\n    Type: AWS::S3::Bucket\n"
	"Outputs:\n  BucketName:\n    Value: !Ref Bucket\n";

static ts_aws_server *srv;
static tp_aws_session *sess;
static char *dir;
static tp_tree *tree;
static uint8_t key[32];

static void setup(void)
{
	setenv("AWS_ACCESS_KEY_ID", "AKIDCFN", 1);
	setenv("AWS_SECRET_ACCESS_KEY", "cfn-secret", 1);
	unsetenv("AWS_SESSION_TOKEN");
	setenv("AWS_EC2_METADATA_DISABLED", "true", 1);
	srv = ts_aws_server_start(NULL);
	cr_assert_eq(tp_aws_session_new(&sess, "us-east-1", ts_aws_server_url(srv), "rs", NULL), 0);
	sess->retry_base_ms = 1;
	sess->throttle_base_ms = 1;
	sess->retry_cap_ms = 2;
	sess->wait.poll_ms = 2;
	sess->wait.poll_max_ms = 4;
	sess->wait.busy_max_ms = 60;
	sess->wait.op_max_ms = 3000;
	dir = ts_tmpdir();
	ts_write(dir, "templates/app.yaml", template_text);
	cr_assert_eq(tp_tree_fs_open(&tree, dir), 0);
}

static void teardown(void)
{
	tp_tree_free(tree);
	tp_aws_session_free(sess);
	ts_aws_server_stop(srv);
	ts_rmtree(dir);
	free(dir);
}

/* Whether LeakSanitizer finds unreachable memory now (0 without the sanitizer build). */
static int leaks_now(void)
{
#if defined(__SANITIZE_ADDRESS__)
	return __lsan_do_recoverable_leak_check();
#else
	return 0;
#endif
}

TestSuite(cloudformation, .init = setup, .fini = teardown);

static char *template_value(const char *text)
{
	uint8_t d[TP_SHA256_LEN];
	char hex[2 * TP_SHA256_LEN + 1];
	tp_sha256(d, text, strlen(text));
	tp_hex_encode(hex, d, sizeof(d));
	hex[TP_FILE_DIGEST_HEX] = '\0';
	return tp_sprintf("templates/app.yaml" TP_FILE_DIGEST_SEP "%s", hex);
}

/* {stack_name: rs-app, template, parameters {InstanceType}, capabilities, tags, ...} */
static json_t *spec_with(const char *instance_type, bool tp)
{
	char *t = template_value(template_text);
	json_t *s = json_pack("{s:s,s:s,s:{s:s},s:[s],s:{s:s},s:b,s:i}", "stack_name", "rs-app",
			      "template", t, "parameters", "InstanceType", instance_type,
			      "capabilities", "CAPABILITY_IAM", "tags", "project", "rainshield",
			      "termination_protection", tp, "timeout_minutes", 30);
	free(t);
	return s;
}

static tp_op op_for(const json_t *spec, const json_t *applied)
{
	tp_op op;
	memset(&op, 0, sizeof(op));
	op.address = "aws.stack/app";
	op.name = "app";
	op.spec = spec;
	op.applied = applied;
	op.token = TOKEN;
	op.marker = MARKER;
	op.fingerprint_key = key;
	op.tree = tree;
	return op;
}

/* A DescribeStacks reply for one stack. */
static char *stack_xml(const char *status, const char *owner, bool tp, const char *itype)
{
	return tp_sprintf(
		"<DescribeStacksResponse xmlns=\"http://cloudformation.amazonaws.com/doc/2010-05-15/\">"
		"<DescribeStacksResult><Stacks><member><StackName>rs-app</StackName>"
		"<StackId>" ARN "</StackId><StackStatus>%s</StackStatus>"
		"<Parameters><member><ParameterKey>InstanceType</ParameterKey>"
		"<ParameterValue>%s</ParameterValue></member></Parameters>"
		"<Capabilities><member>CAPABILITY_IAM</member></Capabilities>"
		"<Outputs><member><OutputKey>BucketName</OutputKey><OutputValue>rs-app-bucket-1"
		"</OutputValue></member></Outputs><Tags><member><Key>project</Key>"
		"<Value>rainshield</Value></member>%s%s%s</Tags>"
		"<EnableTerminationProtection>%s</EnableTerminationProtection>"
		"<TimeoutInMinutes>30</TimeoutInMinutes></member></Stacks></DescribeStacksResult>"
		"<ResponseMetadata><RequestId>r</RequestId></ResponseMetadata>"
		"</DescribeStacksResponse>",
		status, itype, owner ? "<member><Key>tapestry:owner</Key><Value>" : "",
		owner ? owner : "", owner ? "</Value></member>" : "", tp ? "true" : "false");
}

static void reply_stack(const char *status, const char *owner, bool tp, const char *itype)
{
	char *x = stack_xml(status, owner, tp, itype);
	ts_aws_server_reply(srv, "DescribeStacks", 200, "text/xml", x);
	free(x);
}

static void default_stack(const char *status, const char *owner, bool tp, const char *itype)
{
	char *x = stack_xml(status, owner, tp, itype);
	ts_aws_server_default(srv, "DescribeStacks", 200, "text/xml", x);
	free(x);
}

static void no_events(void)
{
	ts_aws_server_default(srv, "DescribeStackEvents", 200, "text/xml",
			      "<DescribeStackEventsResponse><DescribeStackEventsResult><StackEvents/>"
			      "</DescribeStackEventsResult></DescribeStackEventsResponse>");
}

static void reply_error(const char *action, int status, const char *code, const char *msg)
{
	char *x = tp_sprintf("<ErrorResponse xmlns=\"http://cloudformation.amazonaws.com/doc/"
			     "2010-05-15/\"><Error><Type>Sender</Type><Code>%s</Code>"
			     "<Message>%s</Message></Error><RequestId>e-1</RequestId>"
			     "</ErrorResponse>", code, msg);
	ts_aws_server_reply(srv, action, status, "text/xml", x);
	free(x);
}

static void reply_ok(const char *action)
{
	char *x = tp_sprintf("<%sResponse><%sResult><StackId>" ARN "</StackId></%sResult>"
			     "<ResponseMetadata><RequestId>r</RequestId></ResponseMetadata>"
			     "</%sResponse>", action, action, action, action);
	ts_aws_server_reply(srv, action, 200, "text/xml", x);
	free(x);
}

static const char *body_of(json_t *reqs, const char *action, int nth)
{
	size_t i;
	json_t *r;
	json_array_foreach(reqs, i, r)
		if (strcmp(tp_json_get_str(r, "action"), action) == 0 && nth-- == 0)
			return tp_json_get_str(r, "body");
	return NULL;
}

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

/* ---------------------------------------------------------------- create */

Test(cloudformation, create_waits_and_logs_events)
{
	json_t *spec = spec_with("t3.xlarge", false);
	tp_op op = op_for(spec, NULL);
	tp_op_result res = {0};
	json_t *reqs;
	const char *body;
	char *log_path = tp_sprintf("%s/stderr.log", dir);
	char *logged;
	int saved = dup(2), fd = open(log_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	reply_ok("CreateStack");
	reply_stack("CREATE_IN_PROGRESS", MARKER, false, "t3.xlarge");
	reply_stack("CREATE_IN_PROGRESS", MARKER, false, "t3.xlarge");
	reply_stack("CREATE_COMPLETE", MARKER, false, "t3.xlarge");
	ts_aws_server_reply(srv, "DescribeStackEvents", 200, "text/xml",
			    "<DescribeStackEventsResponse><DescribeStackEventsResult><StackEvents>"
			    "<member><EventId>c2</EventId><LogicalResourceId>Bucket</LogicalResourceId>"
			    "<ResourceType>AWS::S3::Bucket</ResourceType><ResourceStatus>"
			    "CREATE_IN_PROGRESS</ResourceStatus></member><member><EventId>c1</EventId>"
			    "<LogicalResourceId>rs-app</LogicalResourceId><ResourceType>"
			    "AWS::CloudFormation::Stack</ResourceType><ResourceStatus>"
			    "CREATE_IN_PROGRESS</ResourceStatus><ResourceStatusReason>User Initiated"
			    "</ResourceStatusReason></member></StackEvents>"
			    "</DescribeStackEventsResult></DescribeStackEventsResponse>");
	no_events();

	fflush(stderr);
	dup2(fd, 2);
	cr_assert_eq(tp_aws_stack_create(sess, &op, &res), 0, "%s", tp_error_last());
	fflush(stderr);
	dup2(saved, 2);
	close(fd);
	close(saved);

	cr_assert_str_eq(res.provider_id, ARN);
	cr_assert_str_eq(tp_json_get_str(res.outputs, "id"), ARN);
	cr_assert_str_eq(tp_json_get_str(res.outputs, "name"), "rs-app");
	cr_assert_str_eq(tp_json_get_str(res.outputs, "outputs.BucketName"), "rs-app-bucket-1");
	cr_assert_eq(ts_aws_server_count(srv, "DescribeStacks"), 3);
	cr_assert_eq(ts_aws_server_write_count(srv), 1);

	reqs = ts_aws_server_requests(srv);
	body = body_of(reqs, "CreateStack", 0);
	cr_assert_not_null(body);
	cr_assert(strstr(body, "StackName=rs-app&"), "%s", body);
	cr_assert(strstr(body, "ClientRequestToken=" TOKEN), "%s", body);
	cr_assert(strstr(body, "Capabilities.member.1=CAPABILITY_IAM"), "%s", body);
	cr_assert(strstr(body, "Parameters.member.1.ParameterKey=InstanceType&"
			       "Parameters.member.1.ParameterValue=t3.xlarge"), "%s", body);
	cr_assert(strstr(body, "Tags.member.2.Key=tapestry%3Aowner&Tags.member.2.Value=tapestry%3Ars"
			       "%3Aaws.stack%2Fapp"), "%s", body);
	cr_assert(strstr(body, "Tags.member.1.Key=project"), "%s", body);
	cr_assert(strstr(body, "EnableTerminationProtection=false"), "%s", body);
	cr_assert(strstr(body, "TimeoutInMinutes=30"), "%s", body);
	cr_assert(strstr(body, "TemplateBody=AWSTemplateFormatVersion%3A+%222010-09-09%22%0A"),
		  "%s", body);
	json_decref(reqs);

	logged = ts_read(log_path);
	cr_assert(strstr(logged, "creating stack rs-app"), "%s", logged);
	cr_assert(strstr(logged, "\"msg\":\"rs-app (AWS::CloudFormation::Stack): CREATE_IN_PROGRESS:"
				 " User Initiated\",\"resource\":\"aws.stack/app\""), "%s", logged);
	cr_assert(strstr(logged, "Bucket (AWS::S3::Bucket): CREATE_IN_PROGRESS"), "%s", logged);
	cr_assert(strstr(logged, "User Initiated") < strstr(logged, "Bucket (AWS::S3::Bucket)"),
		  "events are logged oldest first");
	free(logged);
	free(log_path);
	tp_op_result_clear(&res);
	json_decref(spec);
}

Test(cloudformation, bad_templates_apply_nothing)
{
	json_t *spec = spec_with("t3.xlarge", false);
	tp_op op = op_for(spec, NULL);
	tp_op_result res = {0};
	char *v;

	/* not YAML (the digest matches, so only the syntax is wrong) */
	ts_write(dir, "templates/app.yaml", "Resources:\n  Bucket: [\n    Type: x\n");
	v = template_value("Resources:\n  Bucket: [\n    Type: x\n");
	json_object_set_new(spec, "template", json_string(v));
	free(v);
	cr_assert_eq(tp_aws_stack_create(sess, &op, &res), TP_EINVALID);
	cr_assert(strstr(tp_error_last(), "aws.stack/app: templates/app.yaml is not a valid YAML "
					  "template: line"), "%s", tp_error_last());
	cr_assert_eq(tp_aws_stack_update(sess, &op, &res), TP_EINVALID);

	/* not JSON */
	ts_write(dir, "templates/app.yaml", "{\"Resources\": {\"B\": }");
	v = template_value("{\"Resources\": {\"B\": }");
	json_object_set_new(spec, "template", json_string(v));
	free(v);
	cr_assert_eq(tp_aws_stack_create(sess, &op, &res), TP_EINVALID);
	cr_assert(strstr(tp_error_last(), "is not a valid JSON template"), "%s", tp_error_last());

	/* changed since the plan */
	ts_write(dir, "templates/app.yaml", template_text);
	json_object_set_new(spec, "template",
			    json_string("templates/app.yaml@sha256:0000000000000000"));
	cr_assert_eq(tp_aws_stack_create(sess, &op, &res), TP_ECONFLICT);
	cr_assert(strstr(tp_error_last(), "changed since the plan was made"), "%s",
		  tp_error_last());

	/* too large to send inline */
	{
		tp_buf b;
		tp_buf_init(&b, 1 << 20);
		tp_buf_puts(&b, "Resources:\n  B:\n    Type: AWS::S3::Bucket\n");
		while (b.len <= 51200)
			tp_buf_puts(&b, "# padding padding padding padding padding padding\n");
		ts_write(dir, "templates/app.yaml", tp_buf_cstr(&b));
		v = template_value(tp_buf_cstr(&b));
		json_object_set_new(spec, "template", json_string(v));
		free(v);
		tp_buf_free(&b);
	}
	cr_assert_eq(tp_aws_stack_create(sess, &op, &res), TP_EINVALID);
	cr_assert(strstr(tp_error_last(), "at most 51,200 bytes"), "%s", tp_error_last());

	/* missing */
	json_object_set_new(spec, "template", json_string("templates/gone.yaml"));
	cr_assert_eq(tp_aws_stack_create(sess, &op, &res), TP_ENOTFOUND);

	cr_assert_eq(ts_aws_server_count(srv, NULL), 0, "nothing was sent");
	json_decref(spec);
}

Test(cloudformation, dead_stack_of_ours_is_deleted_and_created_again)
{
	json_t *spec = spec_with("t3.xlarge", false);
	tp_op op = op_for(spec, NULL);
	tp_op_result res = {0};

	reply_error("CreateStack", 400, "AlreadyExistsException", "Stack [rs-app] already exists");
	reply_stack("ROLLBACK_COMPLETE", MARKER, false, "t3.xlarge");
	reply_ok("DeleteStack");
	reply_stack("DELETE_COMPLETE", MARKER, false, "t3.xlarge");
	reply_ok("CreateStack");
	reply_stack("CREATE_COMPLETE", MARKER, false, "t3.xlarge");
	no_events();
	cr_assert_eq(tp_aws_stack_create(sess, &op, &res), 0, "%s", tp_error_last());
	cr_assert_eq(ts_aws_server_count(srv, "CreateStack"), 2);
	cr_assert_eq(ts_aws_server_count(srv, "DeleteStack"), 1);
	{
		json_t *reqs = ts_aws_server_requests(srv);
		cr_assert(strstr(body_of(reqs, "DeleteStack", 0),
				 "ClientRequestToken=" TOKEN "-delete"));
		json_decref(reqs);
	}
	tp_op_result_clear(&res);

	/* an update never deletes it: it says what to do */
	ts_aws_server_reset(srv);
	default_stack("ROLLBACK_COMPLETE", MARKER, false, "t3.xlarge");
	op.provider_id = ARN;
	cr_assert_eq(tp_aws_stack_update(sess, &op, &res), TP_ECONFLICT);
	cr_assert(strstr(tp_error_last(), "ROLLBACK_COMPLETE: its creation failed"), "%s",
		  tp_error_last());
	cr_assert_eq(ts_aws_server_write_count(srv), 0);
	json_decref(spec);
}

Test(cloudformation, existing_stack_of_someone_else_is_not_taken)
{
	json_t *spec = spec_with("t3.xlarge", false);
	tp_op op = op_for(spec, NULL);
	tp_op_result res = {0};
	reply_error("CreateStack", 400, "AlreadyExistsException", "Stack [rs-app] already exists");
	default_stack("CREATE_COMPLETE", NULL, false, "t3.xlarge");
	cr_assert_eq(tp_aws_stack_create(sess, &op, &res), TP_EEXISTS);
	cr_assert(strstr(tp_error_last(), "has no tapestry:owner tag"), "%s", tp_error_last());
	cr_assert_eq(ts_aws_server_write_count(srv), 1);
	op.provider_id = ARN;
	cr_assert_eq(tp_aws_stack_update(sess, &op, &res), TP_ECONFLICT);
	cr_assert_eq(tp_aws_stack_remove(sess, &op), TP_ECONFLICT);
	default_stack("CREATE_COMPLETE", "tapestry:other:aws.stack/app", false, "t3.xlarge");
	cr_assert_eq(tp_aws_stack_remove(sess, &op), TP_ECONFLICT);
	cr_assert(strstr(tp_error_last(), "belongs to tapestry:other:aws.stack/app"), "%s",
		  tp_error_last());
	cr_assert_eq(ts_aws_server_write_count(srv), 1, "no update or delete was sent");
	json_decref(spec);
}

/* ---------------------------------------------------------------- update */

Test(cloudformation, no_updates_to_perform_is_success)
{
	json_t *spec = spec_with("t3.xlarge", false);
	tp_op op = op_for(spec, NULL); /* no applied spec: the update is attempted */
	tp_op_result res = {0};
	op.provider_id = ARN;
	default_stack("UPDATE_COMPLETE", MARKER, false, "t3.xlarge");
	no_events();
	reply_error("UpdateStack", 400, "ValidationError", "No updates are to be performed.");
	cr_assert_eq(tp_aws_stack_update(sess, &op, &res), 0, "%s", tp_error_last());
	cr_assert_str_eq(tp_json_get_str(res.outputs, "outputs.BucketName"), "rs-app-bucket-1");
	cr_assert_eq(ts_aws_server_count(srv, "UpdateStack"), 1);
	tp_op_result_clear(&res);

	/* applied == desired and live matches: no UpdateStack at all (e.g. only
	 * retain_resources changed, which CloudFormation does not store) */
	ts_aws_server_reset(srv);
	op.applied = spec;
	cr_assert_eq(tp_aws_stack_update(sess, &op, &res), 0, "%s", tp_error_last());
	cr_assert_eq(ts_aws_server_write_count(srv), 0);
	tp_op_result_clear(&res);
	json_decref(spec);
}

Test(cloudformation, update_rollback_reports_the_failed_resource)
{
	json_t *applied = spec_with("t3.xlarge", false);
	json_t *spec = spec_with("t3.2xlarge", false);
	tp_op op = op_for(spec, applied);
	tp_op_result res = {0};
	char *events = fixture("describe_stack_events.xml");
	op.provider_id = ARN;
	reply_stack("UPDATE_COMPLETE", MARKER, false, "t3.xlarge");
	ts_aws_server_reply(srv, "DescribeStackEvents", 200, "text/xml",
			    "<DescribeStackEventsResponse><DescribeStackEventsResult><StackEvents>"
			    "<member><EventId>e1</EventId><LogicalResourceId>rs-app</LogicalResourceId>"
			    "<ResourceStatus>CREATE_COMPLETE</ResourceStatus></member></StackEvents>"
			    "</DescribeStackEventsResult></DescribeStackEventsResponse>");
	reply_ok("UpdateStack");
	reply_stack("UPDATE_ROLLBACK_COMPLETE", MARKER, false, "t3.xlarge");
	ts_aws_server_reply(srv, "DescribeStackEvents", 200, "text/xml", events);
	ts_aws_server_reply(srv, "DescribeStackEvents", 200, "text/xml",
			    "<DescribeStackEventsResponse><DescribeStackEventsResult><StackEvents>"
			    "<member><EventId>e1</EventId><LogicalResourceId>rs-app</LogicalResourceId>"
			    "<ResourceStatus>CREATE_COMPLETE</ResourceStatus></member></StackEvents>"
			    "</DescribeStackEventsResult></DescribeStackEventsResponse>");
	cr_assert_eq(tp_aws_stack_update(sess, &op, &res), TP_EINVALID);
	cr_assert(strstr(tp_error_last(), "aws.stack/app: the update of stack rs-app failed "
					  "(UPDATE_ROLLBACK_COMPLETE): Instance (AWS::EC2::Instance): "
					  "Resource handler returned message: \"Insufficient capacity"),
		  "%s", tp_error_last());
	{
		json_t *reqs = ts_aws_server_requests(srv);
		const char *b = body_of(reqs, "UpdateStack", 0);
		cr_assert(strstr(b, "Parameters.member.1.ParameterValue=t3.2xlarge"), "%s", b);
		cr_assert(strstr(b, "ClientRequestToken=" TOKEN), "%s", b);
		cr_assert(strstr(b, "StackName=arn%3Aaws%3Acloudformation"), "%s", b);
		json_decref(reqs);
	}
	free(events);
	json_decref(spec);
	json_decref(applied);
}

Test(cloudformation, busy_and_unknown_stacks_are_not_touched)
{
	json_t *applied = spec_with("t3.xlarge", false);
	json_t *spec = spec_with("t3.2xlarge", false);
	tp_op op = op_for(spec, applied);
	tp_op_result res = {0};
	char *unknown = fixture("unknown_status.xml");
	op.provider_id = ARN;

	default_stack("UPDATE_IN_PROGRESS", MARKER, false, "t3.xlarge");
	cr_assert_eq(tp_aws_stack_update(sess, &op, &res), TP_ECONFLICT);
	cr_assert(strstr(tp_error_last(), "is still UPDATE_IN_PROGRESS after"), "%s",
		  tp_error_last());
	cr_assert_gt(ts_aws_server_count(srv, "DescribeStacks"), 2, "it waited");
	cr_assert_eq(tp_aws_stack_remove(sess, &op), TP_ECONFLICT);
	cr_assert_eq(ts_aws_server_write_count(srv), 0);

	/* a stack that settles while we wait is then updated */
	ts_aws_server_reset(srv);
	reply_stack("UPDATE_ROLLBACK_COMPLETE_CLEANUP_IN_PROGRESS", MARKER, false, "t3.xlarge");
	reply_stack("UPDATE_ROLLBACK_COMPLETE_CLEANUP_IN_PROGRESS", MARKER, false, "t3.xlarge");
	reply_stack("UPDATE_ROLLBACK_COMPLETE", MARKER, false, "t3.xlarge");
	reply_ok("UpdateStack");
	default_stack("UPDATE_COMPLETE", MARKER, false, "t3.2xlarge");
	no_events();
	cr_assert_eq(tp_aws_stack_update(sess, &op, &res), 0, "%s", tp_error_last());
	cr_assert_eq(ts_aws_server_count(srv, "UpdateStack"), 1);
	tp_op_result_clear(&res);

	ts_aws_server_reset(srv);
	ts_aws_server_default(srv, "DescribeStacks", 200, "text/xml", unknown);
	op.marker = "tapestry:rainshield:aws.stack/airbyte-host";
	cr_assert_eq(tp_aws_stack_update(sess, &op, &res), TP_EINVALID);
	cr_assert(strstr(tp_error_last(), "status UPDATE_SUSPENDED_FOR_REVIEW, which this version of "
					  "Tapestry does not know"), "%s", tp_error_last());
	cr_assert_eq(tp_aws_stack_remove(sess, &op), TP_EINVALID);
	cr_assert_eq(ts_aws_server_write_count(srv), 0);
	free(unknown);
	json_decref(spec);
	json_decref(applied);
}

Test(cloudformation, termination_protection_follows_the_spec)
{
	json_t *applied = spec_with("t3.xlarge", false);
	json_t *spec = spec_with("t3.xlarge", true);
	tp_op op = op_for(spec, applied);
	tp_op_result res = {0};
	op.provider_id = ARN;
	default_stack("UPDATE_COMPLETE", MARKER, false, "t3.xlarge");
	ts_aws_server_reply(srv, "UpdateTerminationProtection", 200, "text/xml",
			    "<UpdateTerminationProtectionResponse><UpdateTerminationProtectionResult>"
			    "<StackId>" ARN "</StackId></UpdateTerminationProtectionResult>"
			    "</UpdateTerminationProtectionResponse>");
	cr_assert_eq(tp_aws_stack_update(sess, &op, &res), 0, "%s", tp_error_last());
	cr_assert_eq(ts_aws_server_count(srv, "UpdateTerminationProtection"), 1);
	cr_assert_eq(ts_aws_server_count(srv, "UpdateStack"), 0);
	{
		json_t *reqs = ts_aws_server_requests(srv);
		cr_assert(strstr(body_of(reqs, "UpdateTerminationProtection", 0),
				 "EnableTerminationProtection=true"));
		json_decref(reqs);
	}
	tp_op_result_clear(&res);

	/* deleting a protected stack is refused with what to do */
	ts_aws_server_reset(srv);
	default_stack("UPDATE_COMPLETE", MARKER, true, "t3.xlarge");
	op.applied = spec;
	cr_assert_eq(tp_aws_stack_remove(sess, &op), TP_ECONFLICT);
	cr_assert(strstr(tp_error_last(), "termination protection on; set termination_protection: "
					  "false"), "%s", tp_error_last());
	cr_assert_eq(ts_aws_server_write_count(srv), 0);
	json_decref(spec);
	json_decref(applied);
}

/* ---------------------------------------------------------------- delete */

Test(cloudformation, delete_failed_is_retried_retaining_resources)
{
	json_t *applied = spec_with("t3.xlarge", false);
	tp_op op = op_for(NULL, applied);
	char *resources = fixture("list_stack_resources_delete_failed.xml");
	json_t *reqs;
	op.provider_id = ARN;
	json_object_set_new(applied, "retain_resources", json_pack("[s]", "StagingBucket"));

	reply_stack("UPDATE_COMPLETE", MARKER, false, "t3.xlarge");
	reply_ok("DeleteStack");
	reply_stack("DELETE_IN_PROGRESS", MARKER, false, "t3.xlarge");
	reply_stack("DELETE_FAILED", MARKER, false, "t3.xlarge");
	ts_aws_server_reply(srv, "ListStackResources", 200, "text/xml",
			    "<ListStackResourcesResponse><ListStackResourcesResult>"
			    "<StackResourceSummaries><member><LogicalResourceId>Queue"
			    "</LogicalResourceId><ResourceType>AWS::SQS::Queue</ResourceType>"
			    "<ResourceStatus>DELETE_COMPLETE</ResourceStatus></member>"
			    "</StackResourceSummaries><NextToken>page-2</NextToken>"
			    "</ListStackResourcesResult></ListStackResourcesResponse>");
	ts_aws_server_reply(srv, "ListStackResources", 200, "text/xml", resources);
	reply_ok("DeleteStack");
	reply_stack("DELETE_COMPLETE", MARKER, false, "t3.xlarge");
	no_events();
	cr_assert_eq(tp_aws_stack_remove(sess, &op), 0, "%s", tp_error_last());
	cr_assert_eq(ts_aws_server_count(srv, "ListStackResources"), 2, "every page is read");
	cr_assert_eq(ts_aws_server_count(srv, "DeleteStack"), 2);
	reqs = ts_aws_server_requests(srv);
	cr_assert_null(strstr(body_of(reqs, "DeleteStack", 0), "RetainResources"),
		       "CloudFormation takes RetainResources only after DELETE_FAILED");
	cr_assert(strstr(body_of(reqs, "DeleteStack", 1), "RetainResources.member.1=StagingBucket"),
		  "%s", body_of(reqs, "DeleteStack", 1));
	cr_assert(strstr(body_of(reqs, "DeleteStack", 1), "ClientRequestToken=" TOKEN "-retain"));
	json_decref(reqs);

	/* without retain_resources the failure says which resource and how to go on */
	ts_aws_server_reset(srv);
	json_object_del(applied, "retain_resources");
	reply_stack("UPDATE_COMPLETE", MARKER, false, "t3.xlarge");
	reply_ok("DeleteStack");
	reply_stack("DELETE_FAILED", MARKER, false, "t3.xlarge");
	ts_aws_server_reply(srv, "ListStackResources", 200, "text/xml", resources);
	cr_assert_eq(tp_aws_stack_remove(sess, &op), TP_EINVALID);
	cr_assert(strstr(tp_error_last(), "deletion of stack rs-app failed (DELETE_FAILED): "
					  "StagingBucket: The bucket you tried to delete is not empty"),
		  "%s", tp_error_last());
	cr_assert(strstr(tp_error_last(), "retain_resources"), "%s", tp_error_last());
	cr_assert_eq(ts_aws_server_count(srv, "DeleteStack"), 1);

	/* already gone: success without a call that writes */
	ts_aws_server_reset(srv);
	reply_error("DescribeStacks", 400, "ValidationError", "Stack with id " ARN " does not exist");
	cr_assert_eq(tp_aws_stack_remove(sess, &op), 0, "%s", tp_error_last());
	default_stack("DELETE_COMPLETE", MARKER, false, "t3.xlarge");
	cr_assert_eq(tp_aws_stack_remove(sess, &op), 0, "%s", tp_error_last());
	cr_assert_eq(ts_aws_server_write_count(srv), 0);
	free(resources);
	json_decref(applied);
}

/* ---------------------------------------------------------------- observe */

Test(cloudformation, observe_lists_every_page)
{
	char *p1 = fixture("describe_stacks_page1.xml"), *p2 = fixture("describe_stacks_page2.xml");
	char *tv = template_value(template_text);
	char *gt = tp_sprintf("<GetTemplateResponse><GetTemplateResult><TemplateBody>%s"
			      "</TemplateBody></GetTemplateResult></GetTemplateResponse>",
			      "AWSTemplateFormatVersion: &quot;2010-09-09&quot;\nParameters:\n"
			      "  InstanceType:\n    Type: String\nResources:\n  Bucket:\n"
			      "    Type: AWS::S3::Bucket\nOutputs:\n  BucketName:\n"
			      "    Value: !Ref Bucket\n");
	json_t *a0 = json_pack("{s:s,s:s,s:{s:s,s:s},s:{s:s}}", "stack_name", "rainshield-airbyte",
			       "template", tv, "parameters", "InstanceType", "t3.xlarge",
			       "DbPassword", "x", "tags", "project", "rainshield");
	json_t *a1 = json_pack("{s:s,s:s}", "stack_name", "rainshield-grouparoo", "template", tv);
	tp_op ops[2] = {op_for(NULL, a0), op_for(NULL, a1)};
	json_t *out[2] = {NULL, NULL};
	json_t *want;

	ts_aws_server_reply(srv, "DescribeStacks", 200, "text/xml", p1);
	ts_aws_server_reply(srv, "DescribeStacks", 200, "text/xml", p2);
	ts_aws_server_reply(srv, "GetTemplate", 200, "text/xml", gt);
	cr_assert_eq(tp_aws_stack_observe(sess, ops, 2, out), 0, "%s", tp_error_last());
	cr_assert_eq(ts_aws_server_count(srv, "DescribeStacks"), 2, "both pages, one list");
	want = json_pack("{s:s,s:s,s:{s:s,s:s},s:[s],s:{s:s},s:b,s:i}", "stack_name",
			 "rainshield-airbyte", "template", tv, "parameters", "InstanceType",
			 "t3.xlarge", "DbPassword", "**********", "capabilities", "CAPABILITY_IAM",
			 "tags", "project", "rainshield", "termination_protection", 1,
			 "timeout_minutes", 30);
	cr_assert(json_equal(out[0], want), "observed %s", json_dumps(out[0], JSON_SORT_KEYS));
	cr_assert_null(out[1], "a ROLLBACK_COMPLETE tombstone is not the stack");
	{
		json_t *reqs = ts_aws_server_requests(srv);
		cr_assert(strstr(body_of(reqs, "DescribeStacks", 1),
				 "NextToken=eyJ2IjoxLCJjIjoiQUFBQUFBIn0%3D"));
		json_decref(reqs);
	}
	json_decref(out[0]);
	json_decref(want);
	json_decref(a0);
	json_decref(a1);
	free(p1);
	free(p2);
	free(tv);
	free(gt);
}

/* found by fuzz_aws: a failure on a later page of DescribeStacks leaked the stacks of the
 * earlier pages (checked with LeakSanitizer in the sanitizer build) */
Test(cloudformation, observe_fails_cleanly_when_a_later_page_fails)
{
	char *p1 = fixture("describe_stacks_page1.xml");
	char *bad = fixture("error_validation.xml");
	json_t *a0 = json_pack("{s:s}", "stack_name", "rainshield-airbyte");
	json_t *a1 = json_pack("{s:s}", "stack_name", "rainshield-grouparoo");
	tp_op ops[2] = {op_for(NULL, a0), op_for(NULL, a1)};
	json_t *out[2] = {NULL, NULL};

	ts_aws_server_reply(srv, "DescribeStacks", 200, "text/xml", p1);
	ts_aws_server_reply(srv, "DescribeStacks", 400, "text/xml", bad);
	cr_assert_eq(tp_aws_stack_observe(sess, ops, 2, out), TP_EINVALID);
	cr_assert(strstr(tp_error_last(), "ValidationError"), "%s", tp_error_last());
	cr_assert_null(out[0]);
	cr_assert_null(out[1]);
	cr_assert_eq(leaks_now(), 0, "observe leaked what the first page held");
	json_decref(a0);
	json_decref(a1);
	free(p1);
	free(bad);
}

Test(cloudformation, change_set_preview_is_deleted)
{
	json_t *applied = spec_with("t3.xlarge", false);
	json_t *spec = spec_with("t3.2xlarge", false);
	tp_op op = op_for(spec, applied);
	json_t *changes = NULL;
	char *cs = fixture("describe_change_set.xml");
	char *none = fixture("describe_change_set_no_changes.xml");
	const char *created = "<CreateChangeSetResponse><CreateChangeSetResult><Id>arn:aws:"
			      "cloudformation:us-east-1:123456789012:changeSet/tapestry-plan-x/1"
			      "</Id><StackId>" ARN "</StackId></CreateChangeSetResult>"
			      "</CreateChangeSetResponse>";
	const char *deleted = "<DeleteChangeSetResponse><DeleteChangeSetResult/>"
			      "</DeleteChangeSetResponse>";
	op.provider_id = ARN;
	default_stack("UPDATE_COMPLETE", MARKER, false, "t3.xlarge");

	ts_aws_server_reply(srv, "CreateChangeSet", 200, "text/xml", created);
	ts_aws_server_reply(srv, "DescribeChangeSet", 200, "text/xml",
			    "<DescribeChangeSetResponse><DescribeChangeSetResult><Status>"
			    "CREATE_PENDING</Status><Changes/></DescribeChangeSetResult>"
			    "</DescribeChangeSetResponse>");
	ts_aws_server_reply(srv, "DescribeChangeSet", 200, "text/xml", cs);
	ts_aws_server_reply(srv, "DeleteChangeSet", 200, "text/xml", deleted);
	cr_assert_eq(tp_aws_stack_change_set(sess, &op, &changes), 0, "%s", tp_error_last());
	cr_assert_eq(json_array_size(changes), 3);
	cr_assert_str_eq(tp_json_get_str(json_array_get(changes, 1), "Replacement"), "Conditional");
	cr_assert_eq(ts_aws_server_count(srv, "DeleteChangeSet"), 1);
	cr_assert_eq(ts_aws_server_count(srv, "UpdateStack"), 0);
	cr_assert_eq(ts_aws_server_count(srv, "ExecuteChangeSet"), 0);
	json_decref(changes);

	/* AWS: no changes is a FAILED change set; moto refuses to create it */
	ts_aws_server_reply(srv, "CreateChangeSet", 200, "text/xml", created);
	ts_aws_server_reply(srv, "DescribeChangeSet", 200, "text/xml", none);
	ts_aws_server_reply(srv, "DeleteChangeSet", 200, "text/xml", deleted);
	cr_assert_eq(tp_aws_stack_change_set(sess, &op, &changes), 0, "%s", tp_error_last());
	cr_assert_eq(json_array_size(changes), 0);
	cr_assert_eq(ts_aws_server_count(srv, "DeleteChangeSet"), 2);
	json_decref(changes);
	reply_error("CreateChangeSet", 400, "ValidationError", "No updates are to be performed.");
	cr_assert_eq(tp_aws_stack_change_set(sess, &op, &changes), 0, "%s", tp_error_last());
	cr_assert_eq(json_array_size(changes), 0);
	cr_assert_eq(ts_aws_server_count(srv, "DeleteChangeSet"), 2);
	json_decref(changes);

	/* a failure while describing still deletes the change set */
	ts_aws_server_reply(srv, "CreateChangeSet", 200, "text/xml", created);
	reply_error("DescribeChangeSet", 403, "AccessDenied", "not allowed");
	ts_aws_server_reply(srv, "DeleteChangeSet", 200, "text/xml", deleted);
	cr_assert_eq(tp_aws_stack_change_set(sess, &op, &changes), TP_EAUTH);
	cr_assert(strstr(tp_error_last(), "AccessDenied"), "%s", tp_error_last());
	cr_assert_eq(ts_aws_server_count(srv, "DeleteChangeSet"), 3);
	free(cs);
	free(none);
	json_decref(spec);
	json_decref(applied);
}
