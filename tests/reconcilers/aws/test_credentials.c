/*
 * reconcilers/aws/credentials.c: the chain in order (environment, shared credentials/config
 * files with profiles, IMDSv2), with IMDS played by the scripted server on 127.0.0.1 in AWS's
 * shape (token required, Code/Type/LastUpdated in the reply; NOTES.md: moto leaves those
 * out), the token and credential refresh before expiry under a controlled clock, the IMDSv1
 * fallback, clear failures, and STS AssumeRole on top (role_arn). No test reaches the real
 * link-local address: every session points IMDS at 127.0.0.1 or disables it.
 */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "reconcilers/aws/aws_int.h"
#include "support/moto.h"
#include "support/support.h"

static ts_aws_server *srv;
static char *dir;

static void setup(void)
{
	unsetenv("AWS_ACCESS_KEY_ID");
	unsetenv("AWS_SECRET_ACCESS_KEY");
	unsetenv("AWS_SESSION_TOKEN");
	unsetenv("AWS_SECURITY_TOKEN");
	unsetenv("AWS_PROFILE");
	unsetenv("AWS_EC2_METADATA_DISABLED");
	dir = ts_tmpdir();
	{
		char *c = tp_sprintf("%s/credentials", dir), *f = tp_sprintf("%s/config", dir);
		setenv("AWS_SHARED_CREDENTIALS_FILE", c, 1);
		setenv("AWS_CONFIG_FILE", f, 1);
		free(c);
		free(f);
	}
	srv = ts_aws_server_start(NULL);
	setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", ts_aws_server_url(srv), 1);
}

static void teardown(void)
{
	tp_clock_set(NULL);
	ts_aws_server_stop(srv);
	ts_rmtree(dir);
	free(dir);
}

TestSuite(credentials, .init = setup, .fini = teardown);

static tp_aws_session *session(const char *profile, const char *role_arn)
{
	tp_aws_session *s = NULL;
	tp_aws_cred_options co = {profile, role_arn, NULL};
	cr_assert_eq(tp_aws_session_new(&s, "us-east-1", ts_aws_server_url(srv), "rainshield", &co),
		     0, "%s", tp_error_last());
	return s;
}

static void iso8601(char *out, size_t n, int64_t ms)
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(out, n, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* The instance role as real IMDS serves it (token required). */
static void script_imds(const char *key, int64_t expires_ms)
{
	char exp[32], *creds;
	iso8601(exp, sizeof(exp), expires_ms);
	creds = tp_sprintf("{\n  \"Code\" : \"Success\",\n  \"LastUpdated\" : "
			   "\"2024-03-01T08:00:00Z\",\n  \"Type\" : \"AWS-HMAC\",\n  "
			   "\"AccessKeyId\" : \"%s\",\n  \"SecretAccessKey\" : \"imds-secret\",\n"
			   "  \"Token\" : \"imds-session-token\",\n  \"Expiration\" : \"%s\"\n}",
			   key, exp);
	ts_aws_server_reply(srv, "PUT /latest/api/token", 200, "text/plain", "imds-token-1");
	ts_aws_server_reply(srv, "GET /latest/meta-data/iam/security-credentials/", 200,
			    "text/plain", "tapestry-controller");
	ts_aws_server_reply(srv, "GET /latest/meta-data/iam/security-credentials/tapestry-controller",
			    200, "text/plain", creds);
	free(creds);
}

Test(credentials, environment_first)
{
	tp_aws_session *s = session(NULL, NULL);
	tp_aws_credentials c;
	setenv("AWS_ACCESS_KEY_ID", "AKIDENV", 1);
	setenv("AWS_SECRET_ACCESS_KEY", "env-secret", 1);
	setenv("AWS_SESSION_TOKEN", "env-token", 1);
	ts_write(dir, "credentials", "[default]\naws_access_key_id = AKIDFILE\n"
				     "aws_secret_access_key = file-secret\n");
	cr_assert_eq(tp_aws_session_credentials(s, &c), 0, "%s", tp_error_last());
	cr_assert_str_eq(c.access_key_id, "AKIDENV");
	cr_assert_str_eq(c.session_token, "env-token");
	cr_assert_str_eq(c.source, "environment");
	cr_assert_eq(c.expires_ms, 0);
	tp_aws_credentials_clear(&c);
	cr_assert_eq(ts_aws_server_count(srv, NULL), 0, "IMDS is not asked");
	tp_aws_session_free(s);

	unsetenv("AWS_SECRET_ACCESS_KEY");
	s = session(NULL, NULL);
	cr_assert_eq(tp_aws_session_credentials(s, &c), TP_EAUTH);
	cr_assert(strstr(tp_error_last(), "AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is "
					  "not"), "%s", tp_error_last());
	tp_aws_session_free(s);
}

Test(credentials, profiles_from_shared_files)
{
	tp_aws_session *s;
	tp_aws_credentials c;
	ts_write(dir, "credentials",
		 "# comment\n[default]\naws_access_key_id = AKIDDEFAULT\n"
		 "aws_secret_access_key = default-secret\n\n[dev]\n"
		 "aws_access_key_id=AKIDDEV\naws_secret_access_key=dev-secret\n"
		 "aws_session_token = dev-token\n");
	ts_write(dir, "config",
		 "[default]\nregion = us-east-1\n[profile ops]\nregion = eu-west-1\n"
		 "s3 =\n  max_concurrent_requests = 20\naws_access_key_id = AKIDOPS\n"
		 "aws_secret_access_key = ops-secret\n[profile sso]\nsso_session = corp\n"
		 "[profile dev]\naws_access_key_id = AKIDIGNORED\n");

	s = session(NULL, NULL);
	cr_assert_eq(tp_aws_session_credentials(s, &c), 0, "%s", tp_error_last());
	cr_assert_str_eq(c.access_key_id, "AKIDDEFAULT");
	cr_assert_str_eq(c.source, "profile default");
	tp_aws_credentials_clear(&c);
	tp_aws_session_free(s);

	setenv("AWS_PROFILE", "dev", 1);
	s = session(NULL, NULL);
	cr_assert_eq(tp_aws_session_credentials(s, &c), 0, "%s", tp_error_last());
	cr_assert_str_eq(c.access_key_id, "AKIDDEV", "the credentials file wins over config");
	cr_assert_str_eq(c.session_token, "dev-token");
	tp_aws_credentials_clear(&c);
	tp_aws_session_free(s);

	/* tapestry.yaml's profile wins over AWS_PROFILE; keys may live in config */
	s = session("ops", NULL);
	cr_assert_eq(tp_aws_session_credentials(s, &c), 0, "%s", tp_error_last());
	cr_assert_str_eq(c.access_key_id, "AKIDOPS");
	cr_assert_str_eq(c.source, "profile ops");
	tp_aws_credentials_clear(&c);
	tp_aws_session_free(s);

	s = session("missing", NULL);
	cr_assert_eq(tp_aws_session_credentials(s, &c), TP_EAUTH);
	cr_assert(strstr(tp_error_last(), "profile \"missing\" is not in"), "%s", tp_error_last());
	tp_aws_session_free(s);

	s = session("sso", NULL);
	cr_assert_eq(tp_aws_session_credentials(s, &c), TP_EAUTH);
	cr_assert(strstr(tp_error_last(), "uses sso_session, which Tapestry does not support"),
		  "%s", tp_error_last());
	tp_aws_session_free(s);
	cr_assert_eq(ts_aws_server_count(srv, NULL), 0, "a named profile never falls to IMDS");
}

Test(credentials, imdsv2_instance_role)
{
	tp_aws_session *s = session(NULL, NULL);
	tp_aws_credentials c;
	json_t *reqs;
	script_imds("ASIAIMDS1", tp_clock_now_ms() + 6 * 3600 * 1000);
	cr_assert_eq(tp_aws_session_credentials(s, &c), 0, "%s", tp_error_last());
	cr_assert_str_eq(c.access_key_id, "ASIAIMDS1");
	cr_assert_str_eq(c.secret_access_key, "imds-secret");
	cr_assert_str_eq(c.session_token, "imds-session-token");
	cr_assert_str_eq(c.source, "instance role tapestry-controller");
	cr_assert_gt(c.expires_ms, tp_clock_now_ms() + 5 * 3600 * 1000);
	tp_aws_credentials_clear(&c);

	reqs = ts_aws_server_requests(srv);
	cr_assert_eq(json_array_size(reqs), 3);
	cr_assert_str_eq(tp_json_get_str(json_object_get(json_array_get(reqs, 0), "headers"),
					 "x-aws-ec2-metadata-token-ttl-seconds"), "21600");
	for (size_t i = 1; i < 3; i++)
		cr_assert_str_eq(tp_json_get_str(json_object_get(json_array_get(reqs, i), "headers"),
						 "x-aws-ec2-metadata-token"), "imds-token-1");
	json_decref(reqs);

	/* cached: no new request while the credentials are fresh */
	cr_assert_eq(tp_aws_session_credentials(s, &c), 0);
	tp_aws_credentials_clear(&c);
	cr_assert_eq(ts_aws_server_count(srv, NULL), 3);
	tp_aws_session_free(s);
}

static int64_t fake_now;
static int64_t now_fn(void *ctx)
{
	(void)ctx;
	return fake_now;
}
static int64_t mono_fn(void *ctx)
{
	struct timespec ts;
	(void)ctx;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
static void sleep_fn(void *ctx, int64_t ms)
{
	(void)ctx;
	(void)ms;
}
static uint64_t rand_fn(void *ctx)
{
	(void)ctx;
	return 4;
}

Test(credentials, refreshed_before_expiry)
{
	tp_clock_ops ops = {now_fn, mono_fn, sleep_fn, rand_fn, NULL};
	tp_aws_session *s;
	tp_aws_credentials c;
	fake_now = (int64_t)time(NULL) * 1000;
	tp_clock_set(&ops);
	s = session(NULL, NULL);

	script_imds("ASIAFIRST", fake_now + 3600 * 1000);
	cr_assert_eq(tp_aws_session_credentials(s, &c), 0, "%s", tp_error_last());
	cr_assert_str_eq(c.access_key_id, "ASIAFIRST");
	tp_aws_credentials_clear(&c);

	fake_now += 50 * 60 * 1000; /* 10 minutes left: still used */
	cr_assert_eq(tp_aws_session_credentials(s, &c), 0);
	cr_assert_str_eq(c.access_key_id, "ASIAFIRST");
	tp_aws_credentials_clear(&c);
	cr_assert_eq(ts_aws_server_count(srv, NULL), 3);

	fake_now += 6 * 60 * 1000; /* 4 minutes left: refreshed (the IMDS token is reused) */
	ts_aws_server_reply(srv, "GET /latest/meta-data/iam/security-credentials/", 200,
			    "text/plain", "tapestry-controller\n");
	{
		char exp[32], *creds;
		iso8601(exp, sizeof(exp), fake_now + 3600 * 1000);
		creds = tp_sprintf("{\"Code\":\"Success\",\"AccessKeyId\":\"ASIASECOND\","
				   "\"SecretAccessKey\":\"s2\",\"Token\":\"t2\",\"Expiration\":\"%s\"}",
				   exp);
		ts_aws_server_reply(srv, "GET /latest/meta-data/iam/security-credentials/"
					 "tapestry-controller", 200, "text/plain", creds);
		free(creds);
	}
	cr_assert_eq(tp_aws_session_credentials(s, &c), 0, "%s", tp_error_last());
	cr_assert_str_eq(c.access_key_id, "ASIASECOND");
	tp_aws_credentials_clear(&c);
	cr_assert_eq(ts_aws_server_count(srv, "PUT /latest/api/token"), 1);

	/* a failed refresh keeps credentials that are still valid */
	fake_now += 57 * 60 * 1000; /* 3 minutes left */
	ts_aws_server_default(srv, "GET /latest/meta-data/iam/security-credentials/", 500,
			      "text/plain", "down");
	cr_assert_eq(tp_aws_session_credentials(s, &c), 0, "%s", tp_error_last());
	cr_assert_str_eq(c.access_key_id, "ASIASECOND");
	tp_aws_credentials_clear(&c);
	fake_now += 4 * 60 * 1000; /* expired: now it fails */
	cr_assert_eq(tp_aws_session_credentials(s, &c), TP_EAUTH);
	cr_assert(strstr(tp_error_last(), "no credentials found"), "%s", tp_error_last());
	cr_assert(strstr(tp_error_last(), "HTTP 500"), "%s", tp_error_last());
	tp_aws_session_free(s);
}

Test(credentials, imds_token_expiry_and_v1_fallback)
{
	tp_aws_session *s = session(NULL, NULL);
	tp_aws_credentials c;
	json_t *reqs;

	/* 401: the token expired; a new one is fetched and the request repeated */
	ts_aws_server_reply(srv, "PUT /latest/api/token", 200, "text/plain", "old-token");
	ts_aws_server_reply(srv, "GET /latest/meta-data/iam/security-credentials/", 401,
			    "text/plain", "");
	script_imds("ASIAAFTER401", tp_clock_now_ms() + 3600 * 1000);
	cr_assert_eq(tp_aws_session_credentials(s, &c), 0, "%s", tp_error_last());
	cr_assert_str_eq(c.access_key_id, "ASIAAFTER401");
	tp_aws_credentials_clear(&c);
	cr_assert_eq(ts_aws_server_count(srv, "PUT /latest/api/token"), 2);
	tp_aws_session_free(s);

	/* an IMDS that only speaks v1 answers the token request with 405 */
	ts_aws_server_reset(srv);
	s = session(NULL, NULL);
	ts_aws_server_reply(srv, "PUT /latest/api/token", 405, "text/plain", "");
	ts_aws_server_reply(srv, "GET /latest/meta-data/iam/security-credentials/", 200,
			    "text/plain", "r");
	ts_aws_server_reply(srv, "GET /latest/meta-data/iam/security-credentials/r", 200,
			    "text/plain",
			    "{\"AccessKeyId\":\"ASIAV1\",\"SecretAccessKey\":\"x\",\"Token\":\"y\","
			    "\"Expiration\":\"2099-01-01T00:00:00Z\"}");
	cr_assert_eq(tp_aws_session_credentials(s, &c), 0, "%s", tp_error_last());
	cr_assert_str_eq(c.access_key_id, "ASIAV1");
	cr_assert_eq(ts_aws_server_count(srv, "PUT /latest/api/token"), 1);
	tp_aws_credentials_clear(&c);
	reqs = ts_aws_server_requests(srv);
	cr_assert_null(tp_json_get_str(json_object_get(json_array_get(reqs, 1), "headers"),
				       "x-aws-ec2-metadata-token"));
	json_decref(reqs);
	tp_aws_session_free(s);
}

Test(credentials, clear_failures)
{
	tp_aws_session *s = session(NULL, NULL);
	tp_aws_credentials c;

	ts_aws_server_reply(srv, "PUT /latest/api/token", 200, "text/plain", "t");
	ts_aws_server_reply(srv, "GET /latest/meta-data/iam/security-credentials/", 404,
			    "text/plain", "");
	cr_assert_eq(tp_aws_session_credentials(s, &c), TP_EAUTH);
	cr_assert(strstr(tp_error_last(), "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, "
					  "configure a profile"), "%s", tp_error_last());
	cr_assert(strstr(tp_error_last(), "no instance role"), "%s", tp_error_last());

	ts_aws_server_reply(srv, "GET /latest/meta-data/iam/security-credentials/", 200,
			    "text/plain", "r");
	ts_aws_server_reply(srv, "GET /latest/meta-data/iam/security-credentials/r", 200,
			    "text/plain",
			    "{\"Code\":\"AssumeRoleUnauthorizedAccess\",\"Message\":\"EC2 cannot "
			    "assume the role r\"}");
	cr_assert_eq(tp_aws_session_credentials(s, &c), TP_EAUTH);
	cr_assert(strstr(tp_error_last(), "AssumeRoleUnauthorizedAccess: EC2 cannot assume"), "%s",
		  tp_error_last());
	tp_aws_session_free(s);

	setenv("AWS_EC2_METADATA_DISABLED", "true", 1);
	ts_aws_server_reset(srv);
	s = session(NULL, NULL);
	cr_assert_eq(tp_aws_session_credentials(s, &c), TP_EAUTH);
	cr_assert(strstr(tp_error_last(), "IMDS is disabled"), "%s", tp_error_last());
	cr_assert_eq(ts_aws_server_count(srv, NULL), 0);
	tp_aws_session_free(s);
}

Test(credentials, assume_role_on_top)
{
	tp_aws_session *s;
	char *xml;
	char *path = ts_source_path("tests/fixtures/aws/responses/assume_role.xml");
	tp_aws_call call = {"cloudformation", "2010-05-15", "DescribeStacks", NULL};
	json_t *params = json_object(), *reqs;
	const char *auth;

	setenv("AWS_ACCESS_KEY_ID", "AKIDBASE", 1);
	setenv("AWS_SECRET_ACCESS_KEY", "base-secret", 1);
	xml = ts_read(path);
	s = session(NULL, "arn:aws:iam::123456789012:role/tapestry-deployer");
	ts_aws_server_reply(srv, "AssumeRole", 200, "text/xml", xml);
	ts_aws_server_default(srv, "DescribeStacks", 200, "text/xml",
			      "<DescribeStacksResponse><DescribeStacksResult><Stacks/>"
			      "</DescribeStacksResult></DescribeStacksResponse>");
	cr_assert_eq(tp_aws_query(s, &call, params, NULL, NULL), 0, "%s", tp_error_last());
	cr_assert_eq(tp_aws_query(s, &call, params, NULL, NULL), 0, "%s", tp_error_last());
	cr_assert_eq(ts_aws_server_count(srv, "AssumeRole"), 1, "assumed once, then cached");
	reqs = ts_aws_server_requests(srv);
	auth = tp_json_get_str(json_object_get(json_array_get(reqs, 0), "headers"),
			       "authorization");
	cr_assert(strstr(auth, "Credential=AKIDBASE/"), "%s", auth);
	cr_assert(strstr(auth, "/sts/aws4_request"), "%s", auth);
	cr_assert(strstr(tp_json_get_str(json_array_get(reqs, 0), "body"),
			 "RoleArn=arn%3Aaws%3Aiam%3A%3A123456789012%3Arole%2Ftapestry-deployer"));
	cr_assert(strstr(tp_json_get_str(json_array_get(reqs, 0), "body"),
			 "RoleSessionName=tapestry-rainshield"));
	auth = tp_json_get_str(json_object_get(json_array_get(reqs, 1), "headers"),
			       "authorization");
	cr_assert(strstr(auth, "Credential=ASIAIOSFODNN7EXAMPLE/"), "%s", auth);
	cr_assert(strstr(tp_json_get_str(json_object_get(json_array_get(reqs, 1), "headers"),
					 "x-amz-security-token"), "IQoJb3JpZ2luX2VjEOz"));
	json_decref(reqs);
	tp_aws_session_free(s);

	/* a refused AssumeRole says so */
	s = session(NULL, "arn:aws:iam::123456789012:role/nope");
	ts_aws_server_reply(srv, "AssumeRole", 403, "text/xml",
			    "<ErrorResponse><Error><Type>Sender</Type><Code>AccessDenied</Code>"
			    "<Message>User is not authorized to perform: sts:AssumeRole</Message>"
			    "</Error><RequestId>r1</RequestId></ErrorResponse>");
	cr_assert_eq(tp_aws_query(s, &call, params, NULL, NULL), TP_EAUTH);
	cr_assert(strstr(tp_error_last(), "assuming role arn:aws:iam::123456789012:role/nope: sts "
					  "AssumeRole: AccessDenied"), "%s", tp_error_last());
	tp_aws_session_free(s);
	json_decref(params);
	free(xml);
	free(path);
}

Test(credentials, expired_token_fetches_new_credentials_once)
{
	tp_aws_session *s = session(NULL, NULL);
	tp_aws_call call = {"cloudformation", "2010-05-15", "DescribeStacks", NULL};
	json_t *params = json_object(), *reqs;
	const char *expired = "<ErrorResponse><Error><Type>Sender</Type><Code>ExpiredToken</Code>"
			      "<Message>The security token included in the request is expired"
			      "</Message></Error><RequestId>x</RequestId></ErrorResponse>";
	script_imds("ASIAOLD", tp_clock_now_ms() + 3600 * 1000);
	script_imds("ASIANEW", tp_clock_now_ms() + 3600 * 1000);
	ts_aws_server_reply(srv, "DescribeStacks", 400, "text/xml", expired);
	ts_aws_server_default(srv, "DescribeStacks", 200, "text/xml",
			      "<DescribeStacksResponse><DescribeStacksResult><Stacks/>"
			      "</DescribeStacksResult></DescribeStacksResponse>");
	cr_assert_eq(tp_aws_query(s, &call, params, NULL, NULL), 0, "%s", tp_error_last());
	reqs = ts_aws_server_requests(srv);
	cr_assert_eq(ts_aws_server_count(srv, "DescribeStacks"), 2);
	cr_assert_eq(ts_aws_server_count(srv, "GET /latest/meta-data/iam/security-credentials/"),
		     2);
	{
		size_t i;
		json_t *r;
		int n = 0;
		json_array_foreach(reqs, i, r) {
			const char *a;
			if (strcmp(tp_json_get_str(r, "action"), "DescribeStacks") != 0)
				continue;
			a = tp_json_get_str(json_object_get(r, "headers"), "authorization");
			cr_assert(strstr(a, n++ == 0 ? "Credential=ASIAOLD/" : "Credential=ASIANEW/"),
				  "%s", a);
		}
	}
	json_decref(reqs);

	/* a second ExpiredToken in the same call is reported, not looped on */
	ts_aws_server_reply(srv, "DescribeStacks", 400, "text/xml", expired);
	ts_aws_server_reply(srv, "DescribeStacks", 400, "text/xml", expired);
	script_imds("ASIATHIRD", tp_clock_now_ms() + 3600 * 1000);
	cr_assert_eq(tp_aws_query(s, &call, params, NULL, NULL), TP_EAUTH);
	cr_assert(strstr(tp_error_last(), "ExpiredToken"), "%s", tp_error_last());
	json_decref(params);
	tp_aws_session_free(s);
}
