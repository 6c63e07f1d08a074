/*
 * The aws provider's parsers, without a network: the expat DOM (xml.c) on good and hostile
 * documents, every CloudFormation reply shape the runtime reads (DescribeStacks with
 * pagination and NoEcho values, DescribeStackEvents, DescribeChangeSet with AWS's
 * Replacement and its "no changes" failure, ListStackResources after DELETE_FAILED), STS
 * AssumeRole, error replies in every shape (Query XML, moto's <Errors> wrapper, JSON 1.1, a
 * proxy's HTML page), stack status classes, and template syntax checks. The recorded replies
 * under tests/fixtures/aws/responses follow real AWS where moto differs (NOTES.md).
 */
#include <criterion/criterion.h>
#include <string.h>

#include "reconcilers/aws/aws_int.h"
#include "support/support.h"

static char *fixture(const char *name)
{
	char *rel = tp_sprintf("tests/fixtures/aws/responses/%s", name);
	char *path = ts_source_path(rel);
	char *text = ts_read(path);
	cr_assert_not_null(text, "missing fixture %s", path);
	free(rel);
	free(path);
	return text;
}

static tp_aws_xml *parse_fixture(const char *name)
{
	char *text = fixture(name);
	tp_aws_xml *doc = NULL;
	cr_assert_eq(tp_aws_xml_parse(&doc, text, strlen(text)), 0, "%s: %s", name,
		     tp_error_last());
	free(text);
	return doc;
}

/* ---------------------------------------------------------------- DOM */

Test(xml, namespaces_text_and_paths)
{
	const char *doc_text = "<?xml version=\"1.0\"?><a:Root xmlns:a=\"urn:x\" xmlns=\"urn:y\">"
			       "<Item>one</Item><Item>two &amp; three</Item><Nested><Deep>"
			       "<![CDATA[<raw>]]></Deep></Nested><Empty/></a:Root>";
	tp_aws_xml *doc = NULL;
	const tp_aws_xml *c;
	int n = 0;
	cr_assert_eq(tp_aws_xml_parse(&doc, doc_text, strlen(doc_text)), 0, "%s", tp_error_last());
	cr_assert_str_eq(doc->name, "Root");
	cr_assert_str_eq(tp_aws_xml_text(doc, "Item"), "one");
	for (c = doc->first; c; c = c->next)
		n += strcmp(c->name, "Item") == 0;
	cr_assert_eq(n, 2);
	cr_assert_str_eq(doc->first->next->text, "two & three");
	cr_assert_str_eq(tp_aws_xml_text(doc, "Nested/Deep"), "<raw>");
	cr_assert_str_eq(tp_aws_xml_text(doc, "Empty"), "");
	cr_assert_null(tp_aws_xml_text(doc, "Missing"));
	cr_assert_null(tp_aws_xml_path(doc, "Nested/Missing/Deeper"));
	cr_assert_not_null(tp_aws_xml_find(doc, "Deep"));
	tp_aws_xml_free(doc);
	tp_aws_xml_free(NULL);
}

static void expect_bad(const char *text, const char *why)
{
	tp_aws_xml *doc = NULL;
	int rc = tp_aws_xml_parse(&doc, text, strlen(text));
	cr_expect_eq(rc, TP_EINVALID, "accepted: %s", text);
	cr_expect_null(doc);
	cr_expect(strstr(tp_error_last(), why) != NULL, "message \"%s\" lacks \"%s\"",
		  tp_error_last(), why);
	tp_aws_xml_free(doc);
}

Test(xml, malformed_truncated_and_hostile)
{
	expect_bad("", "no element found");
	expect_bad("   ", "xml:");
	expect_bad("<DescribeStacksResponse><DescribeStacksResult><Stacks><member><StackName>x",
		   "line 1");
	expect_bad("<a><b></a>", "mismatched tag");
	expect_bad("<a></a><b></b>", "junk after document element");
	expect_bad("not xml at all", "syntax error");
	expect_bad("<!DOCTYPE lolz [<!ENTITY lol \"lol\"><!ENTITY lol2 \"&lol;&lol;\">]>"
		   "<lolz>&lol2;</lolz>", "DOCTYPE");
	expect_bad("<html><body><h1>502 Bad Gateway</h1><hr></body></html>", "mismatched tag");
	{
		/* deeper than the bound */
		tp_buf b;
		tp_buf_init(&b, 1 << 20);
		for (int i = 0; i < TP_AWS_XML_MAX_DEPTH + 2; i++)
			tp_buf_puts(&b, "<d>");
		for (int i = 0; i < TP_AWS_XML_MAX_DEPTH + 2; i++)
			tp_buf_puts(&b, "</d>");
		expect_bad(tp_buf_cstr(&b), "nested too deeply");
		tp_buf_free(&b);
	}
}

/* ---------------------------------------------------------------- CloudFormation */

Test(xml, describe_stacks_pages)
{
	tp_aws_xml *doc = parse_fixture("describe_stacks_page1.xml");
	tp_aws_stack *st = NULL;
	size_t n = 0;
	char *next = NULL;

	cr_assert_eq(tp_aws_stacks_parse(&st, &n, &next, doc), 0, "%s", tp_error_last());
	cr_assert_eq(n, 1);
	cr_assert_str_eq(next, "eyJ2IjoxLCJjIjoiQUFBQUFBIn0=");
	cr_assert_str_eq(st[0].name, "rainshield-airbyte");
	cr_assert(strstr(st[0].id, ":stack/rainshield-airbyte/"));
	cr_assert_str_eq(st[0].status, "UPDATE_COMPLETE");
	cr_assert_str_eq(tp_json_get_str(st[0].parameters, "InstanceType"), "t3.xlarge");
	cr_assert_str_eq(tp_json_get_str(st[0].parameters, "DbPassword"), "****");
	cr_assert_str_eq(tp_json_get_str(st[0].outputs, "StagingBucketName"),
			 "rainshield-airbyte-stagingbucket-1x2y3z4w5v6u");
	cr_assert_str_eq(tp_json_get_str(st[0].tags, TP_AWS_OWNER_TAG),
			 "tapestry:rainshield:aws.stack/airbyte-host");
	cr_assert_eq(json_array_size(st[0].capabilities), 1);
	cr_assert(st[0].termination_protection);
	cr_assert_eq(st[0].timeout_minutes, 30);
	cr_assert_eq(tp_aws_stack_status_class(st[0].status), TP_AWS_STACK_OK);
	tp_aws_stack_clear(&st[0]);
	free(st);
	free(next);
	tp_aws_xml_free(doc);

	doc = parse_fixture("describe_stacks_page2.xml");
	cr_assert_eq(tp_aws_stacks_parse(&st, &n, &next, doc), 0);
	cr_assert_eq(n, 1);
	cr_assert_null(next, "the last page has no NextToken");
	cr_assert_str_eq(st[0].status, "ROLLBACK_COMPLETE");
	cr_assert(strstr(st[0].reason, "failed to create: [Service]"));
	cr_assert_eq(json_object_size(st[0].tags), 0);
	cr_assert_eq(tp_aws_stack_status_class(st[0].status), TP_AWS_STACK_DEAD);
	tp_aws_stack_clear(&st[0]);
	tp_aws_stack_clear(NULL);
	free(st);
	tp_aws_xml_free(doc);
}

Test(xml, describe_stacks_refuses_incomplete_members)
{
	const char *text = "<DescribeStacksResponse><DescribeStacksResult><Stacks><member>"
			   "<StackName>x</StackName></member></Stacks></DescribeStacksResult>"
			   "</DescribeStacksResponse>";
	tp_aws_xml *doc = NULL;
	tp_aws_stack *st = NULL;
	size_t n = 0;
	cr_assert_eq(tp_aws_xml_parse(&doc, text, strlen(text)), 0);
	cr_assert_eq(tp_aws_stacks_parse(&st, &n, NULL, doc), TP_EIO);
	cr_assert(strstr(tp_error_last(), "StackStatus"));
	cr_assert_null(st);
	tp_aws_xml_free(doc);
	text = "<DescribeStacksResponse><Other/></DescribeStacksResponse>";
	cr_assert_eq(tp_aws_xml_parse(&doc, text, strlen(text)), 0);
	cr_assert_eq(tp_aws_stacks_parse(&st, &n, NULL, doc), TP_EIO);
	tp_aws_xml_free(doc);
}

Test(xml, stack_events_newest_first)
{
	tp_aws_xml *doc = parse_fixture("describe_stack_events.xml");
	tp_aws_event *ev = NULL;
	size_t n = 0;
	char *next = NULL;
	cr_assert_eq(tp_aws_events_parse(&ev, &n, &next, doc), 0);
	cr_assert_eq(n, 4);
	cr_assert_str_eq(ev[0].id, "e5");
	cr_assert_str_eq(ev[0].status, "UPDATE_ROLLBACK_COMPLETE");
	cr_assert_str_eq(ev[2].logical_id, "Instance");
	cr_assert_str_eq(ev[2].type, "AWS::EC2::Instance");
	cr_assert(strstr(ev[2].reason, "Insufficient capacity"));
	cr_assert_str_eq(ev[2].token, "0f3c2a9b8d7e6f5a4b3c2d1e0f9a8b7c");
	cr_assert_str_eq(next, "bmV4dC1ldmVudHM=");
	for (size_t i = 0; i < n; i++)
		tp_aws_event_clear(&ev[i]);
	free(ev);
	free(next);
	tp_aws_xml_free(doc);
}

Test(xml, change_set_with_replacement)
{
	tp_aws_xml *doc = parse_fixture("describe_change_set.xml");
	json_t *changes = NULL;
	char *status = NULL, *reason = NULL;
	cr_assert_eq(tp_aws_change_set_parse(&changes, &status, &reason, doc), 0);
	cr_assert_str_eq(status, "CREATE_COMPLETE");
	cr_assert_null(reason);
	cr_assert_eq(json_array_size(changes), 3);
	cr_assert_str_eq(tp_json_get_str(json_array_get(changes, 0), "Action"), "Modify");
	cr_assert_str_eq(tp_json_get_str(json_array_get(changes, 0), "LogicalResourceId"),
			 "Instance");
	cr_assert_str_eq(tp_json_get_str(json_array_get(changes, 0), "ResourceType"),
			 "AWS::EC2::Instance");
	cr_assert_str_eq(tp_json_get_str(json_array_get(changes, 0), "Replacement"), "False");
	cr_assert_str_eq(tp_json_get_str(json_array_get(changes, 1), "Replacement"),
			 "Conditional");
	cr_assert_null(json_object_get(json_array_get(changes, 2), "Replacement"));
	json_decref(changes);
	free(status);
	tp_aws_xml_free(doc);

	doc = parse_fixture("describe_change_set_no_changes.xml");
	cr_assert_eq(tp_aws_change_set_parse(&changes, &status, &reason, doc), 0);
	cr_assert_str_eq(status, "FAILED");
	cr_assert(strstr(reason, "didn't contain changes"));
	cr_assert_eq(json_array_size(changes), 0);
	json_decref(changes);
	free(status);
	free(reason);
	tp_aws_xml_free(doc);
}

Test(xml, stack_resources_after_delete_failed)
{
	tp_aws_xml *doc = parse_fixture("list_stack_resources_delete_failed.xml");
	json_t *res = NULL;
	char *next = NULL;
	cr_assert_eq(tp_aws_resources_parse(&res, &next, doc), 0);
	cr_assert_null(next);
	cr_assert_eq(json_array_size(res), 2);
	cr_assert_str_eq(tp_json_get_str(json_array_get(res, 0), "ResourceStatus"),
			 "DELETE_FAILED");
	cr_assert(strstr(tp_json_get_str(json_array_get(res, 0), "ResourceStatusReason"),
			 "not empty"));
	json_decref(res);
	tp_aws_xml_free(doc);
}

Test(xml, assume_role_credentials)
{
	tp_aws_xml *doc = parse_fixture("assume_role.xml");
	const tp_aws_xml *c = tp_aws_xml_path(doc, "AssumeRoleResult/Credentials");
	cr_assert_str_eq(doc->name, "AssumeRoleResponse");
	cr_assert_str_eq(tp_aws_xml_text(c, "AccessKeyId"), "ASIAIOSFODNN7EXAMPLE");
	cr_assert_str_eq(tp_aws_xml_text(c, "Expiration"), "2030-07-15T23:28:33.359Z");
	cr_assert(strlen(tp_aws_xml_text(c, "SessionToken")) > 100);
	tp_aws_xml_free(doc);
}

Test(xml, every_status_of_the_model_is_known)
{
	/* StackStatus in reference/aws/models/cloudformation-2010-05-15.json */
	static const char *const all[] = {
		"CREATE_IN_PROGRESS", "CREATE_FAILED", "CREATE_COMPLETE", "ROLLBACK_IN_PROGRESS",
		"ROLLBACK_FAILED", "ROLLBACK_COMPLETE", "DELETE_IN_PROGRESS", "DELETE_FAILED",
		"DELETE_COMPLETE", "UPDATE_IN_PROGRESS", "UPDATE_COMPLETE_CLEANUP_IN_PROGRESS",
		"UPDATE_COMPLETE", "UPDATE_FAILED", "UPDATE_ROLLBACK_IN_PROGRESS",
		"UPDATE_ROLLBACK_FAILED", "UPDATE_ROLLBACK_COMPLETE_CLEANUP_IN_PROGRESS",
		"UPDATE_ROLLBACK_COMPLETE", "REVIEW_IN_PROGRESS", "IMPORT_IN_PROGRESS",
		"IMPORT_COMPLETE", "IMPORT_ROLLBACK_IN_PROGRESS", "IMPORT_ROLLBACK_FAILED",
		"IMPORT_ROLLBACK_COMPLETE", NULL};
	for (size_t i = 0; all[i]; i++)
		cr_expect_neq(tp_aws_stack_status_class(all[i]), TP_AWS_STACK_UNKNOWN, "%s",
			      all[i]);
	cr_assert_eq(tp_aws_stack_status_class("UPDATE_ROLLBACK_COMPLETE"), TP_AWS_STACK_OK);
	cr_assert_eq(tp_aws_stack_status_class("UPDATE_IN_PROGRESS"), TP_AWS_STACK_BUSY);
	cr_assert_eq(tp_aws_stack_status_class("REVIEW_IN_PROGRESS"), TP_AWS_STACK_REVIEW);
	cr_assert_eq(tp_aws_stack_status_class("DELETE_FAILED"), TP_AWS_STACK_DELETE_FAILED);
	cr_assert_eq(tp_aws_stack_status_class("UPDATE_ROLLBACK_FAILED"), TP_AWS_STACK_BROKEN);
	cr_assert_eq(tp_aws_stack_status_class("UPDATE_SUSPENDED_FOR_REVIEW"),
		     TP_AWS_STACK_UNKNOWN);
	cr_assert_eq(tp_aws_stack_status_class(NULL), TP_AWS_STACK_UNKNOWN);
	cr_assert_eq(tp_aws_stack_status_class(""), TP_AWS_STACK_UNKNOWN);
}

/* ---------------------------------------------------------------- errors */

static tp_http_reply reply_of(long status, const char *content_type, const char *body)
{
	tp_http_reply r;
	memset(&r, 0, sizeof(r));
	r.status = status;
	tp_buf_init(&r.body, 1 << 20);
	tp_buf_puts(&r.body, body);
	r.headers = json_object();
	if (content_type)
		json_object_set_new(r.headers, "content-type", json_string(content_type));
	r.retry_after_ms = -1;
	return r;
}

Test(xml, error_replies)
{
	tp_aws_error e;
	char *text;
	tp_http_reply r;

	text = fixture("error_validation.xml");
	r = reply_of(400, "text/xml", text);
	tp_aws_error_parse(&e, &r);
	cr_assert_str_eq(e.code, "ValidationError");
	cr_assert(strstr(e.message, "Template format error"));
	cr_assert_str_eq(e.request_id, "5ccc7dcd-744c-11e5-be70-example");
	cr_assert_eq(tp_aws_error_class(&e), TP_EINVALID);
	tp_http_reply_clear(&r);
	free(text);

	text = fixture("error_throttling.xml");
	r = reply_of(400, "text/xml", text);
	tp_aws_error_parse(&e, &r);
	cr_assert_str_eq(e.code, "Throttling");
	cr_assert_eq(tp_aws_error_class(&e), TP_ETHROTTLED, "throttling is a 400 in the Query "
							    "protocol, classified by its code");
	tp_http_reply_clear(&r);
	free(text);

	text = fixture("error_signature_moto.xml");
	r = reply_of(403, "text/html; charset=utf-8", text);
	tp_aws_error_parse(&e, &r);
	cr_assert_str_eq(e.code, "SignatureDoesNotMatch");
	cr_assert_eq(tp_aws_error_class(&e), TP_EAUTH);
	tp_http_reply_clear(&r);
	free(text);

	text = fixture("ssm_error.json");
	r = reply_of(400, "application/x-amz-json-1.1", text);
	json_object_set_new(r.headers, "x-amzn-requestid", json_string("req-1"));
	tp_aws_error_parse(&e, &r);
	cr_assert_str_eq(e.code, "ParameterNotFound", "the #-qualified __type is shortened");
	cr_assert(strstr(e.message, "/rainshield/missing"));
	cr_assert_str_eq(e.request_id, "req-1");
	tp_http_reply_clear(&r);
	free(text);

	r = reply_of(400, "application/x-amz-json-1.1", "{}");
	json_object_set_new(r.headers, "x-amzn-errortype",
			   json_string("ThrottlingException:http://internal.amazon.com/coral/"));
	tp_aws_error_parse(&e, &r);
	cr_assert_str_eq(e.code, "ThrottlingException");
	cr_assert_eq(tp_aws_error_class(&e), TP_ETHROTTLED);
	tp_http_reply_clear(&r);

	text = fixture("proxy_502.html");
	r = reply_of(502, "text/html", text);
	tp_aws_error_parse(&e, &r);
	cr_assert_str_eq(e.code, "");
	cr_assert(strstr(e.message, "502 Bad Gateway"), "%s", e.message);
	cr_assert(strstr(e.message, "text/html"), "%s", e.message);
	cr_assert_null(strstr(e.message, "<"), "tags are dropped: %s", e.message);
	cr_assert_eq(tp_aws_error_class(&e), TP_ETRANSIENT);
	tp_http_reply_clear(&r);
	free(text);

	r = reply_of(503, NULL, "");
	tp_aws_error_parse(&e, &r);
	cr_assert(strstr(e.message, "empty body"));
	cr_assert_eq(tp_aws_error_class(&e), TP_ETRANSIENT);
	tp_http_reply_clear(&r);

	r = reply_of(400, "text/xml", "<ErrorResponse><Error><Code>Val");
	tp_aws_error_parse(&e, &r);
	cr_assert_eq(tp_aws_error_class(&e), TP_EINVALID, "a truncated error is still an error");
	tp_http_reply_clear(&r);
}

/* ---------------------------------------------------------------- templates */

Test(xml, template_syntax)
{
	const char *yaml_ok = "AWSTemplateFormatVersion: \"2010-09-09\"\nResources:\n  B:\n"
			      "    Type: AWS::S3::Bucket\nOutputs:\n  N:\n    Value: !Ref B\n"
			      "  A:\n    Value: !GetAtt B.Arn\n  S:\n    Value: !Sub \"${B}-x\"\n";
	const char *json_ok = "{\"Resources\": {\"B\": {\"Type\": \"AWS::S3::Bucket\"}}}";
	cr_assert_eq(tp_aws_template_check("t.yaml", yaml_ok, strlen(yaml_ok)), 0, "%s",
		     tp_error_last());
	cr_assert_eq(tp_aws_template_check("t.json", json_ok, strlen(json_ok)), 0, "%s",
		     tp_error_last());

	{
		const char *bad = "Resources:\n  B:\n Type: x\n  C: [\n";
		cr_assert_eq(tp_aws_template_check("t.yaml", bad, strlen(bad)), TP_EINVALID);
	}
	cr_assert(strstr(tp_error_last(), "t.yaml is not a valid YAML template: line"), "%s",
		  tp_error_last());
	cr_assert_eq(tp_aws_template_check("t.json", "{\"Resources\": {", 15), TP_EINVALID);
	cr_assert(strstr(tp_error_last(), "not a valid JSON template"), "%s", tp_error_last());
	cr_assert_eq(tp_aws_template_check("t.yaml", "\n  \n", 4), TP_EINVALID);
	cr_assert(strstr(tp_error_last(), "empty"));
	cr_assert_eq(tp_aws_template_check("t.yaml", "- a\n- b\n", 8), TP_EINVALID);
	cr_assert(strstr(tp_error_last(), "must be a mapping"), "%s", tp_error_last());
	cr_assert_eq(tp_aws_template_check("t.yaml", "a: 1\n---\nb: 2\n", 14), TP_EINVALID);
	cr_assert(strstr(tp_error_last(), "more than one"), "%s", tp_error_last());
	cr_assert_eq(tp_aws_template_check("t.yaml", "a: \xff\n", 5), TP_EINVALID);
	cr_assert(strstr(tp_error_last(), "UTF-8"));
}

Test(xml, kickstart_templates_are_accepted)
{
	static const char *const names[] = {"airbyte.yaml", "grouparoo.yaml", NULL};
	for (size_t i = 0; names[i]; i++) {
		char *rel = tp_sprintf("examples/kickstart/templates/%s", names[i]);
		char *path = ts_source_path(rel);
		char *text = ts_read(path);
		cr_assert_not_null(text, "%s", path);
		cr_expect_eq(tp_aws_template_check(rel, text, strlen(text)), 0, "%s",
			     tp_error_last());
		cr_expect_leq(strlen(text), 51200, "%s is sent inline", rel);
		free(rel);
		free(path);
		free(text);
	}
}
