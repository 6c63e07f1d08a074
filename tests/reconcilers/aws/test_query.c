/*
 * reconcilers/aws/query.c over real HTTP against the scripted server (tests/support/moto.h)
 * on 127.0.0.1: what a signed Query or JSON 1.1 request looks like on the wire, the SDK
 * "standard" retry mode (3 attempts, throttling codes, transient statuses, the retry quota,
 * Retry-After), errors surfacing with the AWS code and message, and replies that are not
 * AWS documents (a proxy's HTML page, truncated bodies, garbage) giving clear errors
 * without ever quoting a document that may hold secrets.
 */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "reconcilers/aws/aws_int.h"
#include "support/moto.h"
#include "support/support.h"

static ts_aws_server *srv;
static tp_aws_session *sess;

static void isolate_env(void)
{
	setenv("AWS_ACCESS_KEY_ID", "AKIDQUERYTEST", 1);
	setenv("AWS_SECRET_ACCESS_KEY", "query-secret", 1);
	setenv("AWS_SESSION_TOKEN", "query-session-token", 1);
	setenv("AWS_EC2_METADATA_DISABLED", "true", 1);
	setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/credentials", 1);
	setenv("AWS_CONFIG_FILE", "/nonexistent/config", 1);
	unsetenv("AWS_PROFILE");
}

static void setup(void)
{
	isolate_env();
	srv = ts_aws_server_start(NULL);
	cr_assert_eq(tp_aws_session_new(&sess, "eu-west-1", ts_aws_server_url(srv), "query-test",
					NULL), 0, "%s", tp_error_last());
	sess->retry_base_ms = 1;
	sess->throttle_base_ms = 1;
	sess->retry_cap_ms = 5;
}

static void teardown(void)
{
	tp_aws_session_free(sess);
	ts_aws_server_stop(srv);
}

TestSuite(query, .init = setup, .fini = teardown);

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

static const char *ok_describe =
	"<DescribeStacksResponse><DescribeStacksResult><Stacks/></DescribeStacksResult>"
	"</DescribeStacksResponse>";

static int describe(tp_aws_error *err)
{
	tp_aws_call call = {"cloudformation", "2010-05-15", "DescribeStacks", "aws.stack/x"};
	json_t *params = json_pack("{s:s}", "StackName", "a b&c=d");
	tp_aws_xml *doc = NULL;
	int rc = tp_aws_query(sess, &call, params, &doc, err);
	json_decref(params);
	tp_aws_xml_free(doc);
	return rc;
}

Test(query, signed_query_request_on_the_wire)
{
	json_t *reqs, *r, *h;
	const char *auth;
	ts_aws_server_reply(srv, "DescribeStacks", 200, "text/xml", ok_describe);
	cr_assert_eq(describe(NULL), 0, "%s", tp_error_last());
	reqs = ts_aws_server_requests(srv);
	cr_assert_eq(json_array_size(reqs), 1);
	r = json_array_get(reqs, 0);
	h = json_object_get(r, "headers");
	cr_assert_str_eq(tp_json_get_str(r, "method"), "POST");
	cr_assert_str_eq(tp_json_get_str(r, "body"),
			 "Action=DescribeStacks&Version=2010-05-15&StackName=a+b%26c%3Dd");
	cr_assert(strstr(tp_json_get_str(h, "content-type"), "application/x-www-form-urlencoded"));
	auth = tp_json_get_str(h, "authorization");
	cr_assert(strstr(auth, "AWS4-HMAC-SHA256 Credential=AKIDQUERYTEST/"), "%s", auth);
	cr_assert(strstr(auth, "/eu-west-1/cloudformation/aws4_request"), "%s", auth);
	cr_assert(strstr(auth, "SignedHeaders=content-type;host;x-amz-date;x-amz-security-token"),
		  "%s", auth);
	cr_assert_str_eq(tp_json_get_str(h, "x-amz-security-token"), "query-session-token");
	cr_assert_eq(strlen(tp_json_get_str(h, "x-amz-date")), 16);
	{
		char *all = json_dumps(reqs, 0);
		cr_assert_null(strstr(all, "query-secret"), "the secret is never sent");
		free(all);
	}
	cr_assert_eq(tp_aws_session_count(sess, "cloudformation.DescribeStacks"), 1);
	cr_assert_eq(tp_aws_session_write_count(sess), 0);
	json_decref(reqs);
}

Test(query, json_protocol_request_on_the_wire)
{
	tp_aws_call call = {"ssm", NULL, "GetParameter", NULL};
	json_t *body = json_pack("{s:s}", "Name", "/x");
	json_t *out = NULL, *reqs, *h;
	ts_aws_server_reply(srv, "AmazonSSM.GetParameter", 200, "application/x-amz-json-1.1",
			    "{\"Parameter\":{\"Name\":\"/x\",\"Value\":\"v\"}}");
	cr_assert_eq(tp_aws_json(sess, &call, "AmazonSSM", body, &out, NULL), 0, "%s",
		     tp_error_last());
	cr_assert_str_eq(tp_json_get_str(json_object_get(out, "Parameter"), "Value"), "v");
	reqs = ts_aws_server_requests(srv);
	h = json_object_get(json_array_get(reqs, 0), "headers");
	cr_assert_str_eq(tp_json_get_str(h, "x-amz-target"), "AmazonSSM.GetParameter");
	cr_assert_str_eq(tp_json_get_str(h, "content-type"), "application/x-amz-json-1.1");
	cr_assert(strstr(tp_json_get_str(h, "authorization"), "x-amz-target"));
	cr_assert(strstr(tp_json_get_str(h, "authorization"), "/eu-west-1/ssm/aws4_request"));
	cr_assert_str_eq(tp_json_get_str(json_array_get(reqs, 0), "body"), "{\"Name\":\"/x\"}");
	json_decref(reqs);
	json_decref(out);
	json_decref(body);
}

Test(query, throttling_is_retried_then_succeeds)
{
	char *thr = fixture("error_throttling.xml");
	ts_aws_server_reply(srv, "DescribeStacks", 400, "text/xml", thr);
	ts_aws_server_reply(srv, "DescribeStacks", 503, "text/html", "<html>busy</html>");
	ts_aws_server_reply(srv, "DescribeStacks", 200, "text/xml", ok_describe);
	cr_assert_eq(describe(NULL), 0, "%s", tp_error_last());
	cr_assert_eq(ts_aws_server_count(srv, "DescribeStacks"), 3);
	cr_assert_eq(sess->retry_tokens, 500, "a success after retries refunds the quota");
	free(thr);
}

Test(query, three_attempts_then_the_aws_error)
{
	char *thr = fixture("error_throttling.xml");
	tp_aws_error err;
	for (int i = 0; i < 5; i++)
		ts_aws_server_reply(srv, "DescribeStacks", 400, "text/xml", thr);
	cr_assert_eq(describe(&err), TP_ETHROTTLED);
	cr_assert_eq(ts_aws_server_count(srv, "DescribeStacks"), 3, "standard mode: 3 attempts");
	cr_assert_str_eq(err.code, "Throttling");
	cr_assert(strstr(tp_error_last(), "cloudformation DescribeStacks: Throttling: Rate exceeded "
					  "(HTTP 400, request id 6ddd7dcd"),
		  "%s", tp_error_last());
	free(thr);
}

Test(query, validation_errors_are_not_retried)
{
	char *val = fixture("error_validation.xml");
	tp_aws_error err;
	ts_aws_server_reply(srv, "DescribeStacks", 400, "text/xml", val);
	cr_assert_eq(describe(&err), TP_EINVALID);
	cr_assert_eq(ts_aws_server_count(srv, NULL), 1);
	cr_assert_str_eq(err.code, "ValidationError");
	cr_assert(strstr(tp_error_last(), "ValidationError: Template format error"), "%s",
		  tp_error_last());
	free(val);
}

Test(query, retry_quota_stops_retry_storms)
{
	ts_aws_server_default(srv, "DescribeStacks", 500, "text/plain", "oops");
	sess->retry_tokens = 5; /* room for one retry */
	cr_assert_eq(describe(NULL), TP_ETRANSIENT);
	cr_assert_eq(ts_aws_server_count(srv, "DescribeStacks"), 2);
	cr_assert_eq(describe(NULL), TP_ETRANSIENT);
	cr_assert_eq(ts_aws_server_count(srv, "DescribeStacks"), 3, "quota empty: no retry");
	cr_assert(strstr(tp_error_last(), "HTTP 500"), "%s", tp_error_last());
}

Test(query, retry_after_is_passed_on)
{
	ts_aws_server_reply_raw(srv, "DescribeStacks",
				"HTTP/1.1 429 Too Many Requests\r\nRetry-After: 1\r\n"
				"Content-Length: 0\r\nConnection: close\r\n\r\n");
	ts_aws_server_reply(srv, "DescribeStacks", 200, "text/xml", ok_describe);
	cr_assert_eq(describe(NULL), 0, "%s", tp_error_last());
	cr_assert_eq(ts_aws_server_count(srv, NULL), 2);
}

Test(query, proxy_html_pages)
{
	char *html = fixture("proxy_502.html");
	for (int i = 0; i < 3; i++)
		ts_aws_server_reply(srv, "DescribeStacks", 502, "text/html", html);
	cr_assert_eq(describe(NULL), TP_ETRANSIENT);
	cr_assert(strstr(tp_error_last(), "cloudformation DescribeStacks: HTTP 502: unexpected reply "
					  "(text/html): 502 Bad Gateway"),
		  "%s", tp_error_last());
	/* a 200 that is an HTML page (captive portal, misconfigured endpoint): not retried */
	ts_aws_server_reply(srv, "DescribeStacks", 200, "text/html", html);
	cr_assert_eq(describe(NULL), TP_EIO);
	cr_assert(strstr(tp_error_last(), "not the XML AWS sends"), "%s", tp_error_last());
	cr_assert(strstr(tp_error_last(), "502 Bad Gateway nginx"), "%s", tp_error_last());
	free(html);
}

/* found by fuzz_aws_xml: a page whose text reached the end of the excerpt with a word break
 * wrote the terminator one byte past the excerpt's buffer */
Test(query, a_long_unexpected_page_is_cut_to_a_bounded_excerpt)
{
	tp_buf page;
	const char *msg;
	tp_buf_init(&page, 0);
	tp_buf_puts(&page, "<html><body>");
	for (int i = 0; i < 235; i++)
		tp_buf_putc(&page, 'x');
	tp_buf_puts(&page, " y and then some more text the excerpt has no room for</body></html>");
	for (int i = 0; i < 3; i++)
		ts_aws_server_reply(srv, "DescribeStacks", 502, "text/html", tp_buf_cstr(&page));
	cr_assert_eq(describe(NULL), TP_ETRANSIENT);
	msg = tp_error_last();
	cr_assert(strstr(msg, "HTTP 502: unexpected reply (text/html): xxxxxxxx"), "%s", msg);
	cr_assert(strstr(msg, "x...") && !strstr(msg, "more text"), "%s", msg);
	tp_buf_free(&page);
}

Test(query, truncated_and_malformed_replies)
{
	/* cut off by the connection: a transport error (retried, then reported) */
	for (int i = 0; i < 3; i++)
		ts_aws_server_reply_raw(srv, "DescribeStacks",
					"HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\n"
					"Content-Length: 500\r\nConnection: close\r\n\r\n"
					"<DescribeStacksResponse><DescribeStacksResult>");
	cr_assert_eq(describe(NULL), TP_ETRANSIENT);
	cr_assert_eq(ts_aws_server_count(srv, NULL), 3);
	/* a complete reply holding a truncated document: never echoed (it could hold keys) */
	ts_aws_server_reply(srv, "DescribeStacks", 200, "text/xml",
			    "<DescribeStacksResponse><SecretAccessKey>abc123");
	cr_assert_eq(describe(NULL), TP_EIO);
	cr_assert(strstr(tp_error_last(), "not shown"), "%s", tp_error_last());
	cr_assert_null(strstr(tp_error_last(), "abc123"), "%s", tp_error_last());
	/* the wrong document */
	ts_aws_server_reply(srv, "DescribeStacks", 200, "text/xml",
			    "<ListUsersResponse></ListUsersResponse>");
	cr_assert_eq(describe(NULL), TP_EIO);
	cr_assert(strstr(tp_error_last(), "<ListUsersResponse> where <DescribeStacksResponse>"),
		  "%s", tp_error_last());
	/* JSON protocol: a truncated JSON reply is not quoted either */
	{
		tp_aws_call call = {"ssm", NULL, "GetParameter", NULL};
		json_t *body = json_pack("{s:s}", "Name", "/x");
		json_t *out = NULL;
		ts_aws_server_reply(srv, "AmazonSSM.GetParameter", 200,
				    "application/x-amz-json-1.1",
				    "{\"Parameter\":{\"Value\":\"hunter2-secret");
		cr_assert_eq(tp_aws_json(sess, &call, "AmazonSSM", body, &out, NULL), TP_EIO);
		cr_assert_null(strstr(tp_error_last(), "hunter2"), "%s", tp_error_last());
		cr_assert(strstr(tp_error_last(), "not the JSON AWS sends"), "%s", tp_error_last());
		json_decref(body);
	}
}

Test(query, connection_refused_is_transient)
{
	tp_aws_session *other = NULL;
	int port = ts_free_port();
	char *url = tp_sprintf("http://127.0.0.1:%d", port);
	tp_aws_call call = {"cloudformation", "2010-05-15", "DescribeStacks", NULL};
	json_t *params = json_object();
	cr_assert_eq(tp_aws_session_new(&other, "us-east-1", url, "t", NULL), 0);
	other->retry_base_ms = 1;
	other->retry_cap_ms = 2;
	cr_assert_eq(tp_aws_query(other, &call, params, NULL, NULL), TP_ETRANSIENT);
	cr_assert(strstr(tp_error_last(), "cloudformation DescribeStacks:"), "%s", tp_error_last());
	cr_assert_eq(tp_aws_session_count(other, "*"), 3);
	tp_aws_session_free(other);
	json_decref(params);
	free(url);
}

Test(query, session_settings)
{
	tp_aws_session *s = NULL;
	char *url;
	unsetenv("AWS_REGION");
	unsetenv("AWS_DEFAULT_REGION");
	cr_assert_eq(tp_aws_session_new(&s, NULL, NULL, "t", NULL), TP_EINVALID);
	cr_assert(strstr(tp_error_last(), "no region"));
	setenv("AWS_REGION", "ap-southeast-2", 1);
	cr_assert_eq(tp_aws_session_new(&s, NULL, NULL, "t", NULL), 0);
	url = tp_aws_service_url(s, "cloudformation");
	cr_assert_str_eq(url, "https://cloudformation.ap-southeast-2.amazonaws.com/");
	free(url);
	tp_aws_session_free(s);
	cr_assert_eq(tp_aws_session_new(&s, "cn-north-1", NULL, "t", NULL), 0);
	url = tp_aws_service_url(s, "ssm");
	cr_assert_str_eq(url, "https://ssm.cn-north-1.amazonaws.com.cn/");
	free(url);
	tp_aws_session_free(s);
	cr_assert_eq(tp_aws_session_new(&s, "us-east-1", "ftp://x", "t", NULL), TP_EINVALID);
	cr_assert_eq(tp_aws_session_new(&s, "us east 1", NULL, "t", NULL), TP_EINVALID);
	cr_assert_eq(tp_aws_session_new(&s, "us-east-1", "http://127.0.0.1:1", "t", NULL), 0);
	url = tp_aws_service_url(s, "sts");
	cr_assert_str_eq(url, "http://127.0.0.1:1/");
	free(url);
	tp_aws_session_free(s);
	tp_aws_session_free(NULL);
}

Test(query, form_encoding)
{
	tp_buf b;
	json_t *p = json_pack("{s:s,s:s,s:b,s:i}", "Z", "last", "Parameters.member.1.ParameterValue",
			      "a+b c/é", "Flag", 1, "N", 30);
	tp_buf_init(&b, 4096);
	cr_assert_eq(tp_aws_form_encode(&b, "CreateStack", "2010-05-15", p), 0);
	cr_assert_str_eq(tp_buf_cstr(&b), "Action=CreateStack&Version=2010-05-15&Flag=true&N=30&"
					  "Parameters.member.1.ParameterValue=a%2Bb+c%2F%C3%A9&"
					  "Z=last");
	tp_buf_free(&b);
	json_decref(p);
}
