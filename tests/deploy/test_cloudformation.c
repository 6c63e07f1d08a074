/*
 * The controller host's CloudFormation template (deploy/cloudformation/controller-host.yaml):
 * cfn-lint accepts it, and moto_server (started here on 127.0.0.1, stopped by PID) creates
 * the stack from it in both permission modes. The stack is checked through the APIs: its
 * resources, the security group's rules (only the webhook port, only from the configured
 * CIDRs), the IAM policies (scoped to the pipeline's stacks and parameters), and the user data
 * (valid bash; its controller.yaml loads with the controller's own loader).
 *
 * Requests are unsigned: moto checks no signature unless INITIAL_NO_AUTH_ACTION_COUNT is set,
 * and routes a request by the service in its Authorization header's credential scope. Where
 * moto 5.2.1 differs from AWS, the test bridges it and says so: moto resolves an SSM-typed
 * parameter's Default even when a value is given, and refuses to create /aws/service/...
 * parameters (the Debian AMI default is pointed at a parameter this test creates); it leaves
 * a CommaDelimitedList Default unsplit (the list is passed explicitly); and it lists the
 * resources whose Condition is false, without ids (skipped).
 */
#include <criterion/criterion.h>
#include <curl/curl.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "controller/controller.h"
#include "support/support.h"
#include "util/util.h"

#define MOTO_HINT                                                                            \
	"moto_server (the AWS emulator the tests use) is part of the development image; "    \
	"elsewhere install it with `pip install 'moto[server]'`"
#define CFN_LINT_HINT                                                                        \
	"cfn-lint (AWS's CloudFormation linter, a Python package) is part of the development " \
	"image; Debian 12 does not package it (and npm's \"cfn-lint\" is a different, "       \
	"unmaintained tool): install it with `pip install cfn-lint`"
#define DEBIAN_DEFAULT "Default: /aws/service/debian/release/bookworm/latest/amd64"

static char *tmp;
static pid_t moto;
static int port;

/* ---------------------------------------------------------------- helpers */

static int run_cmd(const char *cmd, char **out)
{
	FILE *p = popen(cmd, "r");
	tp_buf b;
	char chunk[4096];
	size_t n;
	int st;
	cr_assert_not_null(p);
	tp_buf_init(&b, 0);
	while ((n = fread(chunk, 1, sizeof(chunk), p)) > 0)
		tp_buf_put(&b, chunk, n);
	st = pclose(p);
	*out = tp_buf_detach(&b);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

static size_t collect(char *data, size_t size, size_t n, void *ctx)
{
	tp_buf_put(ctx, data, size * n);
	return size * n;
}

/* An unsigned AWS request to moto: form-encoded Query (target NULL) or JSON 1.1. */
static char *aws(const char *service, const char *target, const char *body, long *status)
{
	CURL *c = curl_easy_init();
	struct curl_slist *h = NULL;
	char url[64], auth[200], tgt[200];
	tp_buf out;
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/", port);
	snprintf(auth, sizeof(auth),
		 "Authorization: AWS4-HMAC-SHA256 Credential=testing/20240101/us-east-1/%s/"
		 "aws4_request, SignedHeaders=host, Signature=0", service);
	h = curl_slist_append(h, auth);
	if (target) {
		snprintf(tgt, sizeof(tgt), "X-Amz-Target: %s", target);
		h = curl_slist_append(h, tgt);
		h = curl_slist_append(h, "Content-Type: application/x-amz-json-1.1");
	} else {
		h = curl_slist_append(h, "Content-Type: application/x-www-form-urlencoded");
	}
	tp_buf_init(&out, 64u << 20);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &out);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, 60L);
	cr_assert_eq(curl_easy_perform(c), CURLE_OK, "request to moto failed");
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, status);
	curl_slist_free_all(h);
	curl_easy_cleanup(c);
	return tp_buf_detach(&out);
}

static char *query(const char *service, const char *body)
{
	long status = 0;
	char *r = aws(service, NULL, body, &status);
	cr_assert_eq(status, 200, "%s %s: HTTP %ld: %s", service, body, status, r);
	return r;
}

/* The text of the first <tag>…</tag> at or after from (new string), or NULL. */
static char *xml_text(const char *xml, const char *tag, const char **next)
{
	char *open = tp_sprintf("<%s>", tag), *close = tp_sprintf("</%s>", tag), *v = NULL;
	const char *a = xml ? strstr(xml, open) : NULL, *b;
	if (a && (b = strstr(a, close)) != NULL) {
		v = tp_strndup(a + strlen(open), (size_t)(b - a - strlen(open)));
		if (next)
			*next = b + strlen(close);
	}
	free(open);
	free(close);
	return v;
}

/* "%XX"-escapes s for a form body. */
static char *form_escape(const char *s)
{
	CURL *c = curl_easy_init();
	char *e = curl_easy_escape(c, s, 0);
	char *r = tp_strdup(e);
	curl_free(e);
	curl_easy_cleanup(c);
	return r;
}

/* Decodes the XML entities moto uses. */
static char *xml_unescape(const char *s)
{
	char *a = ts_replace(s, "&quot;", "\""), *b = ts_replace(a, "&lt;", "<");
	char *c = ts_replace(b, "&gt;", ">"), *d = ts_replace(c, "&#39;", "'");
	char *e = ts_replace(d, "&amp;", "&");
	free(a);
	free(b);
	free(c);
	free(d);
	return e;
}

/* ---------------------------------------------------------------- moto */

static void start_moto(void)
{
	int64_t deadline;
	port = ts_free_port();
	moto = fork();
	cr_assert(moto >= 0);
	if (moto == 0) {
		char p[16];
		int null = open("/dev/null", O_RDWR);
		snprintf(p, sizeof(p), "%d", port);
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		dup2(null, 0);
		dup2(null, 1);
		dup2(null, 2);
		execlp("moto_server", "moto_server", "-H", "127.0.0.1", "-p", p, (char *)NULL);
		_exit(127);
	}
	deadline = tp_clock_mono_ms() + 60000;
	while (!ts_can_connect(port)) {
		int st = 0;
		if (waitpid(moto, &st, WNOHANG) == moto) {
			moto = 0;
			cr_assert_fail("moto_server exited at start (status %d): " MOTO_HINT,
				       WIFEXITED(st) ? WEXITSTATUS(st) : -1);
		}
		cr_assert(tp_clock_mono_ms() < deadline, "moto_server did not listen within 60 s");
		usleep(100000);
	}
}

static void setup(void)
{
	tmp = ts_tmpdir();
	moto = 0;
}

static void teardown(void)
{
	if (moto > 0)
		ts_stop_pid(moto);
	ts_rmtree(tmp);
	free(tmp);
}

TestSuite(cloudformation, .init = setup, .fini = teardown, .timeout = 300);

/* ---------------------------------------------------------------- cfn-lint */

Test(cloudformation, cfn_lint_accepts_the_template)
{
	char *tpl = ts_source_path("deploy/cloudformation/controller-host.yaml");
	char *cmd, *out = NULL;
	int rc = run_cmd("cfn-lint --version 2>&1", &out);
	cr_assert_eq(rc, 0, "cfn-lint is not available (%s): " CFN_LINT_HINT, out);
	free(out);
	/* errors, warnings and informational findings alike */
	cmd = tp_sprintf("cfn-lint --include-checks I -- '%s' 2>&1", tpl);
	rc = run_cmd(cmd, &out);
	cr_assert_eq(rc, 0, "cfn-lint found problems (exit %d):\n%s", rc, out);
	free(out);
	free(cmd);
	/* and it does look: a broken copy is refused */
	{
		char *text = ts_read(tpl), *bad, *path;
		bad = ts_replace(text, "Type: AWS::EC2::SecurityGroupIngress",
				 "Type: AWS::EC2::SecurityGroupIngres");
		ts_write(tmp, "broken.yaml", bad);
		path = tp_sprintf("%s/broken.yaml", tmp);
		cmd = tp_sprintf("cfn-lint -- '%s' 2>&1", path);
		cr_assert_neq(run_cmd(cmd, &out), 0, "cfn-lint accepted a broken template");
		cr_assert(strstr(out, "E3006"), "%s", out);
		free(out);
		free(cmd);
		free(path);
		free(bad);
		free(text);
	}
	free(tpl);
}

/* ---------------------------------------------------------------- deploying on moto */

typedef struct {
	const char *key, *value;
} param;

/* Creates the stack and waits for CREATE_COMPLETE; returns DescribeStacks' XML. */
static char *create_stack(const char *name, const param *params, size_t n)
{
	char *tpl_path = ts_source_path("deploy/cloudformation/controller-host.yaml");
	char *tpl = ts_read(tpl_path), *moto_tpl, *body_tpl, *r, *status = NULL;
	tp_buf body;
	int64_t deadline = tp_clock_mono_ms() + 60000;
	cr_assert(strstr(tpl, DEBIAN_DEFAULT), "the Debian AMI default moved: update this test");
	moto_tpl = ts_replace(tpl, DEBIAN_DEFAULT, "Default: /tapestry-test/debian-12-ami");
	body_tpl = form_escape(moto_tpl);
	tp_buf_init(&body, 0);
	tp_buf_printf(&body, "Action=CreateStack&Version=2010-05-15&StackName=%s"
			     "&Capabilities.member.1=CAPABILITY_IAM&TemplateBody=%s", name, body_tpl);
	for (size_t i = 0; i < n; i++) {
		char *v = form_escape(params[i].value);
		tp_buf_printf(&body, "&Parameters.member.%zu.ParameterKey=%s"
				     "&Parameters.member.%zu.ParameterValue=%s", i + 1, params[i].key,
			      i + 1, v);
		free(v);
	}
	free(query("cloudformation", body.ptr));
	for (;;) {
		char *q = tp_sprintf("Action=DescribeStacks&Version=2010-05-15&StackName=%s", name);
		r = query("cloudformation", q);
		free(q);
		free(status);
		status = xml_text(r, "StackStatus", NULL);
		cr_assert_not_null(status, "%s", r);
		if (strcmp(status, "CREATE_COMPLETE") == 0)
			break;
		cr_assert(strstr(status, "IN_PROGRESS"), "stack %s: %s\n%s", name, status, r);
		cr_assert(tp_clock_mono_ms() < deadline, "stack %s still %s", name, status);
		free(r);
		usleep(200000);
	}
	free(status);
	tp_buf_free(&body);
	free(body_tpl);
	free(moto_tpl);
	free(tpl);
	free(tpl_path);
	return r;
}

/* {logical id: physical id} of the stack's resources, all CREATE_COMPLETE. */
static json_t *stack_resources(const char *name)
{
	char *q = tp_sprintf("Action=DescribeStackResources&Version=2010-05-15&StackName=%s", name);
	char *r = query("cloudformation", q), *m;
	const char *at = r;
	json_t *out = json_object();
	while ((m = xml_text(at, "member", &at)) != NULL) {
		char *logical = xml_text(m, "LogicalResourceId", NULL);
		char *physical = xml_text(m, "PhysicalResourceId", NULL);
		char *st = xml_text(m, "ResourceStatus", NULL);
		if (!logical) {
			/* moto also lists the resources whose Condition is false, without ids */
			free(physical);
			free(st);
			free(m);
			continue;
		}
		cr_assert_str_eq(st, "CREATE_COMPLETE", "%s: %s", logical, st);
		json_object_set_new(out, logical, json_string(physical ? physical : ""));
		free(logical);
		free(physical);
		free(st);
		free(m);
	}
	free(r);
	free(q);
	return out;
}

static char *output(const char *describe, const char *key)
{
	const char *at = describe;
	char *m, *v = NULL;
	while (!v && (m = xml_text(at, "member", &at)) != NULL) {
		char *k = xml_text(m, "OutputKey", NULL);
		if (k && strcmp(k, key) == 0)
			v = xml_text(m, "OutputValue", NULL);
		free(k);
		free(m);
	}
	return v;
}

/* The default VPC and one of its subnets, and an AMI registered in the SSM parameter the
 * (moto copy of the) template defaults to. */
static void prepare_account(char **vpc, char **subnet)
{
	char *r = query("ec2", "Action=DescribeVpcs&Version=2016-11-15");
	char *ami, *body;
	long status = 0;
	*vpc = xml_text(r, "vpcId", NULL);
	cr_assert_not_null(*vpc, "%s", r);
	free(r);
	r = query("ec2", "Action=DescribeSubnets&Version=2016-11-15");
	*subnet = xml_text(r, "subnetId", NULL);
	cr_assert_not_null(*subnet, "%s", r);
	free(r);
	r = query("ec2", "Action=DescribeImages&Version=2016-11-15&Owner.1=amazon");
	ami = xml_text(r, "imageId", NULL);
	cr_assert_not_null(ami, "%s", r);
	free(r);
	body = tp_sprintf("{\"Name\":\"/tapestry-test/debian-12-ami\",\"Value\":\"%s\","
			  "\"Type\":\"String\"}", ami);
	r = aws("ssm", "AmazonSSM.PutParameter", body, &status);
	cr_assert_eq(status, 200, "%s", r);
	free(r);
	free(body);
	free(ami);
}

/* The policy document of an inline role policy or a managed policy's default version. */
static char *role_policy(const char *role, const char *policy)
{
	char *q = tp_sprintf("Action=GetRolePolicy&Version=2010-05-08&RoleName=%s&PolicyName=%s",
			     role, policy);
	char *r = query("iam", q), *doc = xml_text(r, "PolicyDocument", NULL), *text;
	cr_assert_not_null(doc, "%s", r);
	text = xml_unescape(doc);
	free(doc);
	free(r);
	free(q);
	return text;
}

static char *managed_policy(const char *arn)
{
	char *e = form_escape(arn);
	char *q = tp_sprintf("Action=GetPolicy&Version=2010-05-08&PolicyArn=%s", e);
	char *r = query("iam", q), *ver = xml_text(r, "DefaultVersionId", NULL), *doc, *text;
	free(q);
	free(r);
	q = tp_sprintf("Action=GetPolicyVersion&Version=2010-05-08&PolicyArn=%s&VersionId=%s", e,
		       ver);
	r = query("iam", q);
	doc = xml_text(r, "Document", NULL);
	cr_assert_not_null(doc, "%s", r);
	text = xml_unescape(doc);
	{
		/* the document comes URL-encoded from IAM */
		CURL *c = curl_easy_init();
		int len = 0;
		char *u = curl_easy_unescape(c, text, 0, &len);
		free(text);
		text = tp_strndup(u, (size_t)len);
		curl_free(u);
		curl_easy_cleanup(c);
	}
	free(doc);
	free(r);
	free(q);
	free(ver);
	free(e);
	return text;
}

static bool attached(const char *role, const char *policy_arn)
{
	char *q = tp_sprintf("Action=ListAttachedRolePolicies&Version=2010-05-08&RoleName=%s", role);
	char *r = query("iam", q);
	bool yes = strstr(r, policy_arn) != NULL;
	free(r);
	free(q);
	return yes;
}

Test(cloudformation, deploys_on_moto_with_the_instance_role)
{
	char *vpc, *subnet, *describe, *sg_xml, *q, *ud_xml, *ud64, *policy, *mp;
	const char *sg, *role, *policy_arn, *instance;
	json_t *res;
	tp_buf ud;
	start_moto();
	prepare_account(&vpc, &subnet);
	{
		const param p[] = {{"VpcId", vpc},
				   {"SubnetId", subnet},
				   {"ArtifactUrl", "https://releases.example.com/tapestry-0.1.0.tar.gz"},
				   {"ArtifactSha256", "0123456789abcdef0123456789abcdef0123456789abcdef"
						      "0123456789abcdef"},
				   {"RepositoryUrl", "https://github.com/rainshield/data-pipeline.git"},
				   {"PipelinePath", "pipelines/rainshield"},
				   {"WebhookCidr3", ""},
				   {"WebhookCidr4", ""},
				   /* given, not defaulted: moto leaves a CommaDelimitedList default
				    * unsplit (AWS splits it) */
				   {"ManagedPolicyArns",
				    "arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore,"
				    "arn:aws:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy"}};
		describe = create_stack("tapestry-controller", p, sizeof(p) / sizeof(*p));
	}
	/* the resources, all created */
	res = stack_resources("tapestry-controller");
	for (const char *const *want = (const char *const[]){"SecurityGroup", "WebhookIngress2",
							    "InstanceRole", "InstanceProfile",
							    "StackResourcesPolicy", "LaunchTemplate",
							    "Instance", NULL};
	     *want; want++)
		cr_assert_not_null(json_object_get(res, *want), "no %s in the stack", *want);
	cr_assert_null(json_object_get(res, "WebhookIngress3"), "an empty CIDR makes no rule");
	cr_assert_null(json_object_get(res, "SshIngress"), "no SSH unless asked for");
	cr_assert_null(json_object_get(res, "StackServiceRole"));
	sg = json_string_value(json_object_get(res, "SecurityGroup"));
	role = json_string_value(json_object_get(res, "InstanceRole"));
	policy_arn = json_string_value(json_object_get(res, "StackResourcesPolicy"));
	instance = json_string_value(json_object_get(res, "Instance"));
	{
		char *url = output(describe, "WebhookUrl");
		cr_assert(url && strncmp(url, "http://", 7) == 0 &&
				  strstr(url, ":7777/hooks/github"),
			  "%s", url ? url : describe);
		free(url);
	}

	/* inbound: the webhook port, from the two CIDRs given, nothing else */
	q = tp_sprintf("Action=DescribeSecurityGroups&Version=2016-11-15&GroupId.1=%s", sg);
	sg_xml = query("ec2", q);
	free(q);
	{
		char *in = xml_text(sg_xml, "ipPermissions", NULL);
		const char *at = in;
		char *from;
		int rules = 0;
		cr_assert_not_null(in, "%s", sg_xml);
		while ((from = xml_text(at, "fromPort", &at)) != NULL) {
			cr_assert_str_eq(from, "7777", "inbound rule on port %s", from);
			rules++;
			free(from);
		}
		cr_assert_geq(rules, 1);
		cr_assert(strstr(in, "192.30.252.0/22") && strstr(in, "185.199.108.0/22"), "%s", in);
		cr_assert_null(strstr(in, "140.82.112.0/20"), "%s", in);
		cr_assert_null(strstr(in, "0.0.0.0/0"), "open to the world: %s", in);
		free(in);
	}
	free(sg_xml);

	/* IAM: the controller's own policy is scoped to the pipeline's stacks and parameters */
	policy = role_policy(role, "tapestry-controller");
	cr_assert(strstr(policy, "arn:aws:cloudformation:us-east-1:123456789012:stack/rainshield-*/*"),
		  "%s", policy);
	cr_assert(strstr(policy, "arn:aws:ssm:us-east-1:123456789012:parameter/rainshield/*"), "%s",
		  policy);
	cr_assert_null(strstr(policy, "iam:PassRole"), "no PassRole in instance-role mode: %s",
		       policy);
	cr_assert_null(strstr(policy, "kms:"), "no KMS grant without a key: %s", policy);
	cr_assert_null(strstr(policy, "\"Action\": \"*\""), "%s", policy);
	free(policy);
	/* ... and, in this mode, it holds what the stacks contain */
	cr_assert(attached(role, policy_arn), "%s is not attached to %s", policy_arn, role);
	mp = managed_policy(policy_arn);
	cr_assert(strstr(mp, "aws:ResourceTag/aws:cloudformation:stack-name"), "%s", mp);
	cr_assert(strstr(mp, "arn:aws:iam::123456789012:role/rainshield-*"), "%s", mp);
	cr_assert(strstr(mp, "\"arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore\""), "%s",
		  mp);
	cr_assert(strstr(mp, "\"arn:aws:iam::aws:policy/service-role/"
			     "AmazonECSTaskExecutionRolePolicy\""),
		  "%s", mp);
	free(mp);

	/* the user data: bash that installs the release and writes a config the controller
	 * loads (secret references kept as references) */
	q = tp_sprintf("Action=DescribeInstanceAttribute&Version=2016-11-15&InstanceId=%s"
		       "&Attribute=userData", instance);
	ud_xml = query("ec2", q);
	free(q);
	{
		char *attr = xml_text(ud_xml, "userData", NULL);
		ud64 = xml_text(attr, "value", NULL);
		free(attr);
	}
	cr_assert_not_null(ud64, "%s", ud_xml);
	tp_buf_init(&ud, 0);
	cr_assert_eq(tp_base64_decode(&ud, ud64, strlen(ud64)), 0);
	cr_assert(strncmp(ud.ptr, "#!/bin/bash\n", 12) == 0, "%s", ud.ptr);
	cr_assert(strstr(ud.ptr, "'https://releases.example.com/tapestry-0.1.0.tar.gz'"), "%s",
		  ud.ptr);
	cr_assert(strstr(ud.ptr, "sha256sum -c"), "%s", ud.ptr);
	cr_assert_null(strstr(ud.ptr, "${!"), "an unrendered Fn::Sub escape: %s", ud.ptr);
	ts_write(tmp, "userdata.sh", ud.ptr);
	{
		char *cmd = tp_sprintf("bash -n '%s/userdata.sh' 2>&1", tmp), *out = NULL;
		cr_assert_eq(run_cmd(cmd, &out), 0, "the user data is not valid bash:\n%s", out);
		free(out);
		free(cmd);
	}
	{
		const char *a = strstr(ud.ptr, "<<'EOF'\n"), *b;
		char *yaml, *local, *path, *tok, *hook;
		tp_controller_config cfg;
		tp_diags d = {0};
		cr_assert_not_null(a, "no controller.yaml in the user data");
		a += 8;
		b = strstr(a, "\nEOF\n");
		cr_assert_not_null(b);
		yaml = tp_strndup(a, (size_t)(b - a + 1));
		/* the secrets live in /etc/tapestry on the host: here, in the temp dir */
		tok = tp_sprintf("%s/api_token", tmp);
		hook = tp_sprintf("%s/webhook_secret", tmp);
		ts_write(tmp, "api_token", "t0ken\n");
		ts_write(tmp, "webhook_secret", "s3cret\n");
		local = ts_replace(yaml, "/etc/tapestry/", "TMPDIR/");
		free(yaml);
		yaml = ts_replace(local, "TMPDIR", tmp);
		ts_write(tmp, "controller.yaml", yaml);
		path = tp_sprintf("%s/controller.yaml", tmp);
		cr_assert_eq(tp_controller_config_load(&cfg, path, &d), 0, "%s: %s\n%s",
			     d.len ? d.items[0].msg : tp_error_last(), path, yaml);
		cr_assert_str_eq(cfg.repo_url, "https://github.com/rainshield/data-pipeline.git");
		cr_assert_str_eq(cfg.branch, "main");
		cr_assert_str_eq(cfg.path, "pipelines/rainshield");
		cr_assert_str_eq(cfg.listen, "0.0.0.0:7777");
		cr_assert_not_null(cfg.api_token, "beyond loopback the API needs a token");
		cr_assert_not_null(cfg.github_secret);
		tp_controller_config_clear(&cfg);
		tp_diags_free(&d);
		free(path);
		free(yaml);
		free(local);
		free(tok);
		free(hook);
	}
	tp_buf_free(&ud);
	free(ud64);
	free(ud_xml);
	json_decref(res);
	free(describe);
	free(vpc);
	free(subnet);
}

Test(cloudformation, deploys_on_moto_with_a_cloudformation_service_role)
{
	char *vpc, *subnet, *describe, *policy, *arn_out;
	const char *role, *svc, *policy_arn;
	json_t *res;
	start_moto();
	prepare_account(&vpc, &subnet);
	{
		const param p[] = {{"VpcId", vpc},
				   {"SubnetId", subnet},
				   {"AssociatePublicIp", "false"},
				   {"ArtifactUrl", "https://releases.example.com/tapestry.tar.gz"},
				   {"RepositoryUrl", "https://github.com/rainshield/data-pipeline.git"},
				   {"StackPermissions", "service-role"},
				   {"StackNamePrefix", "acme"},
				   {"ParameterPath", "acme"},
				   {"SshCidr", "203.0.113.0/24"},
				   {"ParameterKmsKeyArn",
				    "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-"
				    "1234567890ab"}};
		describe = create_stack("tapestry-controller-svc", p, sizeof(p) / sizeof(*p));
	}
	res = stack_resources("tapestry-controller-svc");
	cr_assert_not_null(json_object_get(res, "StackServiceRole"));
	cr_assert_not_null(json_object_get(res, "SshIngress"));
	role = json_string_value(json_object_get(res, "InstanceRole"));
	svc = json_string_value(json_object_get(res, "StackServiceRole"));
	policy_arn = json_string_value(json_object_get(res, "StackResourcesPolicy"));
	/* what the stacks contain belongs to CloudFormation's role, not to the host */
	cr_assert(attached(svc, policy_arn), "%s is not attached to the service role", policy_arn);
	cr_assert(!attached(role, policy_arn), "%s is attached to the instance role", policy_arn);
	policy = role_policy(role, "tapestry-controller");
	cr_assert(strstr(policy, "iam:PassRole") && strstr(policy, "cloudformation.amazonaws.com"),
		  "%s", policy);
	cr_assert(strstr(policy, "stack/acme-*/*") && strstr(policy, "parameter/acme/*"), "%s",
		  policy);
	cr_assert(strstr(policy, "kms:Decrypt") && strstr(policy, "ssm.us-east-1.amazonaws.com"),
		  "%s", policy);
	arn_out = output(describe, "StackServiceRoleArn");
	cr_assert(arn_out && strstr(arn_out, svc), "%s", describe);
	cr_assert_null(output(describe, "PublicIp"), "no public address was asked for");
	free(arn_out);
	free(policy);
	json_decref(res);
	free(describe);
	free(vpc);
	free(subnet);
}
