/*
 * libFuzzer target for what AWS answers the aws provider (reconcilers/aws): the replies of a
 * scripted server on 127.0.0.1 (scripted_http.h) go through the provider's real session —
 * SigV4-signed requests, the SDK-style retry mode, the Query protocol's XML (expat) and
 * JSON 1.1 replies, AWS error documents in all their shapes — into the runtime slots the
 * engine calls. Scenarios (first line of the input):
 *
 *   stacks        aws.stack observe of three stacks: DescribeStacks pages, GetTemplate
 *   stack         aws.stack observe of one stack by id
 *   stack-adopt   aws.stack adopt (DescribeStacks, waiting while a stack is busy)
 *   stack-remove  aws.stack remove (DeleteStack, stack events, ListStackResources after
 *                 DELETE_FAILED, the retry with RetainResources)
 *   ssm           aws.ssm_parameter observe of three parameters (GetParameters,
 *                 DescribeParameters pages; SecureString values as fingerprints)
 *   ssm-adopt     aws.ssm_parameter adopt (ListTagsForResource, GetParameters)
 *   ssm-secret    ${secret:ssm:...} (GetParameter)
 *   sts           the same secret through an assumed role: STS AssumeRole's credentials first
 *   imds          the same secret with the EC2 instance role: IMDSv2 token, role name and the
 *                 role's credentials document first
 *
 * Any crash, sanitizer report or leak is a bug, and so is an observed spec that breaks the
 * observe contract (fz_check_observed) or a secret that comes back other than as a string.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "reconcilers/aws/aws_int.h"
#include "scripted_http.h"

#define MARKER "tapestry:rainshield:aws.stack/airbyte-host"
#define STACK_ID                                                                                   \
	"arn:aws:cloudformation:us-east-1:123456789012:stack/rainshield-airbyte/"                  \
	"6a1bd610-c7a3-11ee-8d4e-0a1b2c3d4e5f"

static const char *const scenarios[] = {"stacks",       "stack", "stack-adopt",
					"stack-remove", "ssm",   "ssm-adopt",
					"ssm-secret",   "sts",   "imds"};

static const uint8_t fp_key[32] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10};

static json_t *stack_applied[3], *ssm_applied[3];
static tp_strlist stack_sens, ssm_sens[3];

static void init_once(void)
{
	/* parenthesised: one literal per element, split over lines */
	static const char *const stacks[3] = {
	    ("{\"stack_name\":\"rainshield-airbyte\",\"template\":\"templates/airbyte.yaml@sha256:"
	     "0123456789abcdef\",\"parameters\":{\"InstanceType\":\"t3.large\",\"DbPassword\":"
	     "\"${secret:ssm:/db}\"},\"capabilities\":[\"CAPABILITY_IAM\"],\"tags\":{\"project\":"
	     "\"rainshield\"},\"termination_protection\":false,\"retain_resources\":"
	     "[\"StagingBucket\"]}"),
	    ("{\"stack_name\":\"rainshield-grouparoo\",\"template\":\"templates/grouparoo.yaml\","
	     "\"timeout_minutes\":30}"),
	    "{\"stack_name\":\"network\",\"template\":\"templates/vpc.yaml\",\"tags\":{}}",
	};
	static const char *const params[3] = {
	    ("{\"name\":\"/rainshield/grouparoo/api_key\",\"type\":\"SecureString\","
	     "\"value\":\"${secret:env:X}\",\"tier\":\"Advanced\",\"data_type\":\"text\"}"),
	    ("{\"name\":\"/rainshield/airbyte/staging_bucket\",\"type\":\"String\",\"value\":"
	     "\"${aws.stack/airbyte-host.outputs.StagingBucketName}\",\"description\":\"where\"}"),
	    ("{\"name\":\"/rainshield/zoom/account_id\",\"type\":\"String\",\"value\":"
	     "\"${secret:env:T}\"}"),
	};
	for (int i = 0; i < 3; i++) {
		stack_applied[i] = json_loads(stacks[i], 0, NULL);
		ssm_applied[i] = json_loads(params[i], 0, NULL);
		if (!stack_applied[i] || !ssm_applied[i])
			abort();
	}
	tp_strlist_push(&stack_sens, "parameters.DbPassword");
	tp_strlist_push(&ssm_sens[0], "value");
	tp_strlist_push(&ssm_sens[2], "value");
	/* credentials come from the environment, or (imds) from the scripted server only */
	setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/tapestry-fuzz/credentials", 1);
	setenv("AWS_CONFIG_FILE", "/nonexistent/tapestry-fuzz/config", 1);
	setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", fz_server_url(), 1);
	unsetenv("AWS_PROFILE");
	unsetenv("AWS_SESSION_TOKEN");
	unsetenv("AWS_SECURITY_TOKEN");
	unsetenv("AWS_EC2_METADATA_DISABLED");
	unsetenv("http_proxy");
	unsetenv("HTTP_PROXY");
	setenv("NO_PROXY", "127.0.0.1", 1);
}

static void op_init(tp_op *op, const char *address, const char *name, const char *id,
		    const json_t *applied, const tp_strlist *sens)
{
	memset(op, 0, sizeof(*op));
	op->address = address;
	op->name = name;
	op->provider_id = id;
	op->applied = applied;
	op->sensitive = sens;
	op->marker = MARKER;
	op->token = "11111111-2222-4333-8444-555555555555";
	op->fingerprint_key = fp_key;
}

static void observe(const char *kind, void *session, const tp_op *ops, size_t n)
{
	const tp_kind *k = tp_registry_kind(kind);
	json_t *out[3] = {NULL, NULL, NULL};
	int rc = k->observe(session, ops, n, out);
	fz_check_observed(k, ops, n, out, rc, "**********");
	for (size_t i = 0; i < n; i++)
		json_decref(out[i]);
}

static void secret(void *session)
{
	char *value = NULL;
	int rc = tp_aws_ssm_resolve_secret(session, "/rainshield/grouparoo/api_key", &value);
	if ((rc == 0) != (value != NULL))
		abort();
	tp_secret_free(value);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static bool ready;
	fz_script script;
	tp_provider_env env;
	json_t *config = NULL;
	void *session = NULL;
	tp_op ops[3];
	tp_op_result res = {0};
	size_t which;

	if (!ready) {
		fz_server_start();
		fz_clock_install();
		tp_log_set_level(TP_LOG_ERROR);
		init_once();
		ready = true;
	}
	fz_clock_reset();
	fz_script_parse(&script, data, size);
	which = fz_pick(&script, scenarios, sizeof(scenarios) / sizeof(scenarios[0]));
	if (strcmp(scenarios[which], "imds") == 0) {
		unsetenv("AWS_ACCESS_KEY_ID");
		unsetenv("AWS_SECRET_ACCESS_KEY");
	} else {
		setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE", 1);
		setenv("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", 1);
	}
	config = strcmp(scenarios[which], "sts") == 0
		     ? json_pack("{s:s,s:s}", "region", "us-east-1", "role_arn",
				 "arn:aws:iam::123456789012:role/tapestry")
		     : json_pack("{s:s}", "region", "us-east-1");
	memset(&env, 0, sizeof(env));
	env.pipeline = "fuzz";
	env.config = config;
	env.endpoint = fz_server_url();
	fz_server_load(&script);
	if (tp_provider_aws.open(&session, &env) < 0)
		abort(); /* the configuration is fixed and valid */

	switch (which) {
	case 0:
		op_init(&ops[0], "aws.stack/airbyte-host", "airbyte-host", STACK_ID,
			stack_applied[0], &stack_sens);
		op_init(&ops[1], "aws.stack/grouparoo-host", "grouparoo-host", NULL,
			stack_applied[1], NULL);
		op_init(&ops[2], "aws.stack/network", "network", NULL, stack_applied[2], NULL);
		observe("aws.stack", session, ops, 3);
		break;
	case 1:
		op_init(&ops[0], "aws.stack/airbyte-host", "airbyte-host", STACK_ID,
			stack_applied[0], &stack_sens);
		observe("aws.stack", session, ops, 1);
		break;
	case 2:
	case 3:
		op_init(&ops[0], "aws.stack/airbyte-host", "airbyte-host",
			which == 3 ? STACK_ID : NULL, stack_applied[0], &stack_sens);
		if (which == 2)
			tp_aws_stack_adopt(session, &ops[0], &res);
		else
			tp_aws_stack_remove(session, &ops[0]);
		break;
	case 4:
		for (int i = 0; i < 3; i++)
			op_init(&ops[i], "aws.ssm_parameter/p", "p",
				tp_json_get_str(ssm_applied[i], "name"), ssm_applied[i],
				&ssm_sens[i]);
		observe("aws.ssm_parameter", session, ops, 3);
		break;
	case 5:
		op_init(&ops[0], "aws.ssm_parameter/p", "p", NULL, ssm_applied[0], &ssm_sens[0]);
		tp_aws_ssm_adopt(session, &ops[0], &res);
		break;
	default: secret(session); break;
	}
	tp_op_result_clear(&res);
	tp_provider_aws.close(session);
	fz_server_unload();
	json_decref(config);
	tp_error_clear();
	return 0;
}
