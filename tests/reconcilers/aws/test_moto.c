/*
 * The aws provider against a real AWS emulator: moto_server on 127.0.0.1 (a free port), with
 * request signing enforced (INITIAL_NO_AUTH_ACTION_COUNT, then only the IAM user's access
 * key created through moto's IAM Query API). Covers a wrong secret failing with
 * SignatureDoesNotMatch; aws.stack create, observe, update of one parameter, "No updates are
 * to be performed", delete; aws.ssm_parameter put, update, no-op, delete and the ownership
 * tag; ${secret:ssm:...}; the tapestry binary end to end (apply, a plan showing the changed
 * parameter, a no-op with zero write calls counted at a recording proxy, deletion: retain,
 * destroy); and IMDSv2 credentials served by moto's metadata endpoint.
 * moto completes stack operations synchronously and never throttles (NOTES.md): those AWS
 * behaviours are covered by test_cloudformation.c and test_query.c with recorded replies.
 * Needs moto_server on PATH (pip install 'moto[server]'); a missing one fails the suite.
 */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "reconcilers/aws/aws_int.h"
#include "spec/spec.h"
#include "support/moto.h"
#include "support/support.h"

static const char *app_template =
	"AWSTemplateFormatVersion: \"2010-09-09\"\n"
	"Description: Tapestry integration test stack\n"
	"Parameters:\n"
	"  Greeting:\n"
	"    Type: String\n"
	"    Default: hello\n"
	"Resources:\n"
	"  Setting:\n"
	"    Type: AWS::SSM::Parameter\n"
	"    Properties:\n"
	"      Name: !Sub \"/it/${AWS::StackName}/greeting\"\n"
	"      Type: String\n"
	"      Value: !Ref Greeting\n"
	"  Bucket:\n"
	"    Type: AWS::S3::Bucket\n"
	"Outputs:\n"
	"  BucketName:\n"
	"    Value: !Ref Bucket\n"
	"  SettingName:\n"
	"    Value: !Ref Setting\n";

static ts_moto moto;
static char *dir;
static uint8_t key[32];

static void isolate(void)
{
	setenv("AWS_EC2_METADATA_DISABLED", "true", 1);
	setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/credentials", 1);
	setenv("AWS_CONFIG_FILE", "/nonexistent/config", 1);
	unsetenv("AWS_PROFILE");
	unsetenv("AWS_SESSION_TOKEN");
	unsetenv("TAPESTRY_ENDPOINT_AWS");
	unsetenv("TAPESTRY_LOG_LEVEL");
	memset(key, 3, sizeof(key));
}

static void start_auth(void)
{
	isolate();
	ts_moto_start(&moto, true);
	setenv("AWS_ACCESS_KEY_ID", moto.access_key, 1);
	setenv("AWS_SECRET_ACCESS_KEY", moto.secret_key, 1);
	dir = ts_tmpdir();
}

static void stop(void)
{
	ts_moto_stop(&moto);
	if (dir) {
		ts_rmtree(dir);
		free(dir);
		dir = NULL;
	}
}

static tp_aws_session *session_at(const char *url)
{
	tp_aws_session *s = NULL;
	cr_assert_eq(tp_aws_session_new(&s, "us-east-1", url, "it", NULL), 0, "%s",
		     tp_error_last());
	s->wait.poll_ms = 20;
	s->wait.poll_max_ms = 200;
	s->wait.op_max_ms = 30000;
	s->wait.busy_max_ms = 5000;
	return s;
}

static char *file_value(const char *rel, const char *text)
{
	uint8_t d[TP_SHA256_LEN];
	char hex[2 * TP_SHA256_LEN + 1];
	tp_sha256(d, text, strlen(text));
	tp_hex_encode(hex, d, sizeof(d));
	hex[TP_FILE_DIGEST_HEX] = '\0';
	return tp_sprintf("%s" TP_FILE_DIGEST_SEP "%s", rel, hex);
}

/* ---------------------------------------------------------------- signing */

Test(moto, signing_is_enforced, .init = start_auth, .fini = stop, .timeout = 60)
{
	tp_aws_session *s = session_at(moto.url);
	tp_aws_call call = {"cloudformation", "2010-05-15", "DescribeStacks", NULL};
	json_t *params = json_object();
	tp_aws_error err;

	cr_assert_eq(tp_aws_query(s, &call, params, NULL, &err), 0, "%s", tp_error_last());
	tp_aws_session_free(s);

	setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret", 1);
	s = session_at(moto.url);
	cr_assert_eq(tp_aws_query(s, &call, params, NULL, &err), TP_EAUTH);
	cr_assert_str_eq(err.code, "SignatureDoesNotMatch");
	cr_assert(strstr(tp_error_last(), "cloudformation DescribeStacks: SignatureDoesNotMatch: The "
					  "request signature we calculated does not match"), "%s",
		  tp_error_last());
	cr_assert_eq(tp_aws_session_count(s, "*"), 1, "auth errors are not retried");
	{
		/* the JSON protocol is signed the same way (moto answers in XML: NOTES.md) */
		tp_aws_call sc = {"ssm", NULL, "GetParameter", NULL};
		json_t *b = json_pack("{s:s}", "Name", "/x"), *out = NULL;
		cr_assert_eq(tp_aws_json(s, &sc, "AmazonSSM", b, &out, &err), TP_EAUTH);
		cr_assert_str_eq(err.code, "SignatureDoesNotMatch");
		json_decref(b);
	}
	tp_aws_session_free(s);

	setenv("AWS_ACCESS_KEY_ID", "AKIANOTAREALKEY00000", 1);
	s = session_at(moto.url);
	cr_assert_eq(tp_aws_query(s, &call, params, NULL, &err), TP_EAUTH);
	cr_assert_str_eq(err.code, "InvalidClientTokenId");
	tp_aws_session_free(s);
	json_decref(params);
}

/* ---------------------------------------------------------------- aws.stack */

static tp_tree *tree_with_template(const char *text)
{
	tp_tree *t = NULL;
	ts_write(dir, "templates/app.yaml", text);
	cr_assert_eq(tp_tree_fs_open(&t, dir), 0);
	return t;
}

static json_t *stack_spec(const char *greeting)
{
	char *t = file_value("templates/app.yaml", app_template);
	json_t *s = json_pack("{s:s,s:s,s:{s:s},s:{s:s},s:b}", "stack_name", "it-app", "template",
			      t, "parameters", "Greeting", greeting, "tags", "project", "it",
			      "termination_protection", 0);
	free(t);
	return s;
}

static tp_op stack_op(tp_tree *t, const json_t *spec, const json_t *applied, const char *id,
		      const char *token)
{
	tp_op op;
	memset(&op, 0, sizeof(op));
	op.address = "aws.stack/app";
	op.name = "app";
	op.provider_id = id;
	op.spec = spec;
	op.applied = applied;
	op.token = token;
	op.marker = "tapestry:it:aws.stack/app";
	op.fingerprint_key = key;
	op.tree = t;
	return op;
}

Test(moto, stack_lifecycle, .init = start_auth, .fini = stop, .timeout = 120)
{
	tp_aws_session *s = session_at(moto.url);
	tp_tree *t = tree_with_template(app_template);
	json_t *v1 = stack_spec("hello"), *v2 = stack_spec("bye");
	tp_op_result res = {0};
	tp_op op;
	json_t *seen = NULL;
	char *id;
	int writes;

	/* create */
	op = stack_op(t, v1, NULL, NULL, "11111111111111111111111111111111");
	cr_assert_eq(tp_aws_stack_create(s, &op, &res), 0, "%s", tp_error_last());
	id = tp_strdup(res.provider_id);
	cr_assert(strstr(id, "arn:aws:cloudformation:us-east-1:"), "%s", id);
	cr_assert_str_eq(tp_json_get_str(res.outputs, "name"), "it-app");
	cr_assert_str_eq(tp_json_get_str(res.outputs, "outputs.SettingName"), "/it/it-app/greeting");
	cr_assert(strncmp(tp_json_get_str(res.outputs, "outputs.BucketName"), "it-app-", 7) == 0);
	cr_assert_eq(tp_aws_session_count(s, "cloudformation.CreateStack"), 1);
	tp_op_result_clear(&res);

	/* observe: the spec as applied, the ownership tag left out */
	op = stack_op(t, NULL, v1, id, NULL);
	cr_assert_eq(tp_aws_stack_observe(s, &op, 1, &seen), 0, "%s", tp_error_last());
	{
		json_t *want = json_pack("{s:s,s:O,s:{s:s},s:{s:s},s:b}", "stack_name", "it-app",
					 "template", json_object_get(v1, "template"), "parameters",
					 "Greeting", "hello", "tags", "project", "it",
					 "termination_protection", 0);
		cr_assert(json_equal(seen, want), "observed %s",
			  json_dumps(seen, JSON_SORT_KEYS));
		json_decref(want);
	}
	json_decref(seen);

	/* update one parameter */
	op = stack_op(t, v2, v1, id, "22222222222222222222222222222222");
	cr_assert_eq(tp_aws_stack_update(s, &op, &res), 0, "%s", tp_error_last());
	cr_assert_eq(tp_aws_session_count(s, "cloudformation.UpdateStack"), 1);
	tp_op_result_clear(&res);
	op = stack_op(t, NULL, v2, id, NULL);
	cr_assert_eq(tp_aws_stack_observe(s, &op, 1, &seen), 0);
	cr_assert_str_eq(tp_json_get_str(json_object_get(seen, "parameters"), "Greeting"), "bye");
	json_decref(seen);

	/* no-op: nothing to change is not a write; an UpdateStack CloudFormation finds empty
	 * ("No updates are to be performed.") is success */
	writes = tp_aws_session_write_count(s);
	op = stack_op(t, v2, v2, id, "33333333333333333333333333333333");
	cr_assert_eq(tp_aws_stack_update(s, &op, &res), 0, "%s", tp_error_last());
	cr_assert_eq(tp_aws_session_write_count(s), writes, "zero write calls");
	tp_op_result_clear(&res);
	op = stack_op(t, v2, NULL, id, "44444444444444444444444444444444");
	cr_assert_eq(tp_aws_stack_update(s, &op, &res), 0, "%s", tp_error_last());
	cr_assert_eq(tp_aws_session_count(s, "cloudformation.UpdateStack"), 2);
	cr_assert_str_eq(tp_json_get_str(res.outputs, "id"), id);
	tp_op_result_clear(&res);

	/* change set preview (moto: no Replacement column) */
	{
		json_t *changes = NULL;
		json_t *v3 = stack_spec("hola");
		op = stack_op(t, v3, v2, id, NULL);
		cr_assert_eq(tp_aws_stack_change_set(s, &op, &changes), 0, "%s", tp_error_last());
		cr_assert(json_is_array(changes));
		cr_assert_eq(tp_aws_session_count(s, "cloudformation.DeleteChangeSet"), 1,
			     "the preview is deleted");
		json_decref(changes);
		json_decref(v3);
	}

	/* adopt finds it by its marker */
	op = stack_op(t, NULL, v2, NULL, NULL);
	cr_assert_eq(tp_aws_stack_adopt(s, &op, &res), 0, "%s", tp_error_last());
	cr_assert_str_eq(res.provider_id, id);
	tp_op_result_clear(&res);

	/* delete */
	op = stack_op(t, NULL, v2, id, "55555555555555555555555555555555");
	cr_assert_eq(tp_aws_stack_remove(s, &op), 0, "%s", tp_error_last());
	cr_assert_eq(tp_aws_stack_observe(s, &op, 1, &seen), 0);
	cr_assert_null(seen, "gone after delete");
	cr_assert_eq(tp_aws_stack_remove(s, &op), 0, "deleting again is success");
	cr_assert_eq(tp_aws_stack_adopt(s, &op, &res), TP_ENOTFOUND);

	free(id);
	json_decref(v1);
	json_decref(v2);
	tp_tree_free(t);
	tp_aws_session_free(s);
}

/* ---------------------------------------------------------------- aws.ssm_parameter */

static tp_op ssm_op(const json_t *spec, const json_t *applied, const tp_strlist *sens)
{
	tp_op op;
	memset(&op, 0, sizeof(op));
	op.address = "aws.ssm_parameter/token";
	op.name = "token";
	op.spec = spec;
	op.applied = applied;
	op.sensitive = sens;
	op.token = "t";
	op.marker = "tapestry:it:aws.ssm_parameter/token";
	op.fingerprint_key = key;
	return op;
}

Test(moto, ssm_lifecycle, .init = start_auth, .fini = stop, .timeout = 120)
{
	tp_aws_session *s = session_at(moto.url);
	tp_strlist sens = {0};
	json_t *v1 = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s}", "name", "/it/token", "type",
			       "SecureString", "value", "first-secret", "tier", "Standard",
			       "data_type", "text", "description", "integration token");
	json_t *v2 = json_deep_copy(v1);
	json_t *seen = NULL, *fp;
	tp_op_result res = {0};
	tp_op op;
	char *value = NULL;
	int writes;

	tp_strlist_push(&sens, "value");
	json_object_set_new(v2, "value", json_string("second-secret"));

	op = ssm_op(v1, NULL, &sens);
	cr_assert_eq(tp_aws_ssm_create(s, &op, &res), 0, "%s", tp_error_last());
	cr_assert_str_eq(res.provider_id, "/it/token");
	cr_assert(strstr(tp_json_get_str(res.outputs, "arn"), ":parameter/it/token"));
	cr_assert_str_eq(tp_json_get_str(res.outputs, "version"), "1");
	tp_op_result_clear(&res);

	op = ssm_op(NULL, v1, &sens);
	op.provider_id = "/it/token";
	cr_assert_eq(tp_aws_ssm_observe(s, &op, 1, &seen), 0, "%s", tp_error_last());
	fp = tp_op_fingerprint(&op, "first-secret", strlen("first-secret"));
	cr_assert(json_equal(json_object_get(seen, "value"), fp), "%s",
		  json_dumps(seen, JSON_SORT_KEYS));
	cr_assert_str_eq(tp_json_get_str(seen, "type"), "SecureString");
	cr_assert_str_eq(tp_json_get_str(seen, "description"), "integration token");
	cr_assert_str_eq(tp_json_get_str(seen, "tier"), "Standard");
	{
		char *all = json_dumps(seen, 0);
		cr_assert_null(strstr(all, "first-secret"), "%s", all);
		free(all);
	}
	json_decref(seen);
	json_decref(fp);

	/* secrets read through the provider */
	cr_assert_eq(tp_aws_ssm_resolve_secret(s, "/it/token", &value), 0, "%s", tp_error_last());
	cr_assert_str_eq(value, "first-secret");
	tp_secret_free(value);
	cr_assert_eq(tp_aws_ssm_resolve_secret(s, "/it/missing", &value), TP_ENOTFOUND);

	/* update */
	op = ssm_op(v2, v1, &sens);
	op.provider_id = "/it/token";
	cr_assert_eq(tp_aws_ssm_update(s, &op, &res), 0, "%s", tp_error_last());
	cr_assert_str_eq(tp_json_get_str(res.outputs, "version"), "2");
	tp_op_result_clear(&res);
	cr_assert_eq(tp_aws_ssm_resolve_secret(s, "/it/token", &value), 0);
	cr_assert_str_eq(value, "second-secret");
	tp_secret_free(value);

	/* no-op: observing makes no write */
	writes = tp_aws_session_write_count(s);
	op = ssm_op(NULL, v2, &sens);
	op.provider_id = "/it/token";
	cr_assert_eq(tp_aws_ssm_observe(s, &op, 1, &seen), 0);
	fp = tp_op_fingerprint(&op, "second-secret", strlen("second-secret"));
	cr_assert(json_equal(json_object_get(seen, "value"), fp));
	json_decref(fp);
	json_decref(seen);
	cr_assert_eq(tp_aws_session_write_count(s), writes);

	/* a parameter someone else made is neither taken nor deleted */
	{
		tp_aws_call pc = {"ssm", NULL, "PutParameter", NULL};
		json_t *b = json_pack("{s:s,s:s,s:s}", "Name", "/it/foreign", "Value", "theirs",
				      "Type", "String");
		json_t *out = NULL;
		json_t *spec = json_pack("{s:s,s:s,s:s}", "name", "/it/foreign", "type", "String",
					 "value", "mine");
		cr_assert_eq(tp_aws_json(s, &pc, "AmazonSSM", b, &out, NULL), 0, "%s",
			     tp_error_last());
		json_decref(out);
		op = ssm_op(spec, NULL, NULL);
		cr_assert_eq(tp_aws_ssm_create(s, &op, &res), TP_EEXISTS);
		op = ssm_op(NULL, spec, NULL);
		op.provider_id = "/it/foreign";
		cr_assert_eq(tp_aws_ssm_remove(s, &op), TP_ECONFLICT);
		cr_assert_eq(tp_aws_ssm_adopt(s, &op, &res), TP_ENOTFOUND);
		json_decref(b);
		json_decref(spec);
	}

	/* delete */
	op = ssm_op(NULL, v2, &sens);
	op.provider_id = "/it/token";
	cr_assert_eq(tp_aws_ssm_remove(s, &op), 0, "%s", tp_error_last());
	cr_assert_eq(tp_aws_ssm_observe(s, &op, 1, &seen), 0);
	cr_assert_null(seen);
	cr_assert_eq(tp_aws_ssm_remove(s, &op), 0, "deleting again is success");

	tp_strlist_free(&sens);
	json_decref(v1);
	json_decref(v2);
	tp_aws_session_free(s);
}

/* ---------------------------------------------------------------- end to end */

static const char *pipeline_yaml = "pipeline: it\n"
				   "settings: {max_prune: 100%}\n"
				   "providers:\n"
				   "  aws:\n"
				   "    region: us-east-1\n";

static void write_resources(const char *greeting, bool with_kept, bool with_stack)
{
	tp_buf b;
	tp_buf_init(&b, 1 << 16);
	if (with_stack)
		tp_buf_printf(&b,
			      "kind: aws.stack\nname: app\nspec:\n  stack_name: it-e2e\n"
			      "  template: templates/app.yaml\n  parameters:\n"
			      "    Greeting: %s\n  tags:\n    project: it\n---\n"
			      "kind: aws.ssm_parameter\nname: bucket\nspec:\n"
			      "  name: /it/e2e/bucket\n"
			      "  value: ${aws.stack/app.outputs.BucketName}\n---\n",
			      greeting);
	tp_buf_puts(&b, "kind: aws.ssm_parameter\nname: token\nspec:\n  name: /it/e2e/token\n"
			"  type: SecureString\n  value: ${secret:env:IT_E2E_TOKEN}\n");
	if (with_kept)
		tp_buf_puts(&b, "---\nkind: aws.ssm_parameter\nname: kept\nspec:\n"
				"  name: /it/e2e/kept\n  value: keep me\n"
				"lifecycle: {deletion: retain}\n");
	ts_write(dir, "pipeline/resources/infra.yaml", tp_buf_cstr(&b));
	tp_buf_free(&b);
}

static ts_result run(const char *const *args)
{
	ts_result r = ts_run_tapestry(args, NULL);
	return r;
}

static bool stack_exists(tp_aws_session *s, const char *name)
{
	tp_aws_call call = {"cloudformation", "2010-05-15", "DescribeStacks", NULL};
	json_t *p = json_pack("{s:s}", "StackName", name);
	int rc = tp_aws_query(s, &call, p, NULL, NULL);
	json_decref(p);
	return rc == 0;
}

static bool parameter_exists(tp_aws_session *s, const char *name)
{
	char *v = NULL;
	int rc = tp_aws_ssm_resolve_secret(s, name, &v);
	tp_secret_free(v);
	return rc == 0;
}

Test(moto, tapestry_apply_plan_and_destroy, .init = start_auth, .fini = stop, .timeout = 180)
{
	ts_aws_server *proxy = ts_aws_server_start(moto.url);
	tp_aws_session *check = session_at(moto.url);
	char *pdir = tp_sprintf("%s/pipeline", dir);
	char *state = tp_sprintf("%s/state.db", dir);
	const char *apply[] = {"apply", pdir, "--state", state, "--auto-approve", "--no-refresh",
			       NULL};
	const char *plan[] = {"plan", pdir, "--state", state, NULL};
	const char *plan_refresh[] = {"plan", pdir, "--state", state, "--refresh",
				      "--detailed-exitcode", NULL};
	const char *destroy[] = {"apply", pdir, "--state", state, "--auto-approve",
				 "--no-refresh", "--allow-mass-delete", NULL};
	ts_result r;

	setenv("TAPESTRY_ENDPOINT_AWS", ts_aws_server_url(proxy), 1);
	setenv("IT_E2E_TOKEN", "e2e-token-value", 1);
	ts_write(dir, "pipeline/tapestry.yaml", pipeline_yaml);
	ts_write(dir, "pipeline/templates/app.yaml", app_template);
	write_resources("hello", true, true);

	/* create */
	r = run(apply);
	cr_assert_eq(r.status, 0, "apply: %s\n%s", r.out, r.err);
	cr_assert(strstr(r.out, "Apply complete! Resources: 4 added"), "%s", r.out);
	cr_assert(strstr(r.err, "creating stack it-e2e"), "%s", r.err);
	cr_assert_null(strstr(r.out, "e2e-token-value"));
	cr_assert_null(strstr(r.err, "e2e-token-value"));
	cr_assert_null(strstr(r.err, moto.secret_key), "the secret key is never logged");
	ts_result_free(&r);
	cr_assert_eq(ts_aws_server_count(proxy, "CreateStack"), 1);
	cr_assert_eq(ts_aws_server_count(proxy, "AmazonSSM.PutParameter"), 3);
	cr_assert(stack_exists(check, "it-e2e"));
	{
		char *v = NULL;
		cr_assert_eq(tp_aws_ssm_resolve_secret(check, "/it/e2e/bucket", &v), 0);
		cr_assert(strncmp(v, "it-e2e-", 7) == 0, "the stack output went through: %s", v);
		tp_secret_free(v);
	}

	/* live matches: a refreshed plan shows nothing and writes nothing */
	ts_aws_server_reset(proxy);
	r = run(plan_refresh);
	cr_assert_eq(r.status, 0, "plan --refresh: %s\n%s", r.out, r.err);
	cr_assert(strstr(r.out, "No changes."), "%s", r.out);
	ts_result_free(&r);
	cr_assert_gt(ts_aws_server_count(proxy, NULL), 0, "it observed live state");
	cr_assert_eq(ts_aws_server_write_count(proxy), 0, "a plan never writes");

	/* no-op apply: zero calls that write */
	ts_aws_server_reset(proxy);
	r = run(apply);
	cr_assert_eq(r.status, 0, "%s\n%s", r.out, r.err);
	cr_assert(strstr(r.out, "No changes"), "%s", r.out);
	ts_result_free(&r);
	cr_assert_eq(ts_aws_server_write_count(proxy), 0);

	/* one parameter changes: the plan shows it, apply updates the stack once */
	write_resources("bye", true, true);
	r = run(plan);
	cr_assert_eq(r.status, 0, "%s\n%s", r.out, r.err);
	cr_assert(strstr(r.out, "~ aws.stack \"app\""), "%s", r.out);
	cr_assert(strstr(r.out, "parameters.Greeting = \"hello\" -> \"bye\""), "%s", r.out);
	ts_result_free(&r);
	/* with --refresh, CloudFormation's own change set is shown, then deleted: no write */
	ts_aws_server_reset(proxy);
	r = run(plan_refresh);
	cr_assert_eq(r.status, 2, "%s\n%s", r.out, r.err); /* --detailed-exitcode: changes */
	cr_assert(strstr(r.out, "# change set: Modify AWS::"), "%s", r.out);
	ts_result_free(&r);
	cr_assert_eq(ts_aws_server_count(proxy, "CreateChangeSet"), 1);
	cr_assert_eq(ts_aws_server_count(proxy, "DeleteChangeSet"), 1);
	cr_assert_eq(ts_aws_server_count(proxy, "UpdateStack"), 0);
	cr_assert_eq(ts_aws_server_count(proxy, "ExecuteChangeSet"), 0);
	ts_aws_server_reset(proxy);
	r = run(apply);
	cr_assert_eq(r.status, 0, "%s\n%s", r.out, r.err);
	ts_result_free(&r);
	cr_assert_eq(ts_aws_server_count(proxy, "UpdateStack"), 1);
	cr_assert_eq(ts_aws_server_count(proxy, "CreateStack"), 0);

	/* deletion: retain — removed from Git, forgotten, still in SSM */
	write_resources("bye", false, true);
	ts_aws_server_reset(proxy);
	r = run(apply);
	cr_assert_eq(r.status, 0, "%s\n%s", r.out, r.err);
	ts_result_free(&r);
	cr_assert_eq(ts_aws_server_count(proxy, "AmazonSSM.DeleteParameter"), 0);
	cr_assert(parameter_exists(check, "/it/e2e/kept"), "a retained parameter stays");

	/* destroy: the stack and its output's parameter go */
	write_resources("bye", false, false);
	ts_aws_server_reset(proxy);
	r = run(destroy);
	cr_assert_eq(r.status, 0, "%s\n%s", r.out, r.err);
	cr_assert(strstr(r.out, "2 destroyed"), "%s", r.out);
	ts_result_free(&r);
	cr_assert_eq(ts_aws_server_count(proxy, "DeleteStack"), 1);
	cr_assert_eq(ts_aws_server_count(proxy, "AmazonSSM.DeleteParameter"), 1);
	cr_assert_not(stack_exists(check, "it-e2e"));
	cr_assert_not(parameter_exists(check, "/it/e2e/bucket"));
	cr_assert(parameter_exists(check, "/it/e2e/token"));

	unsetenv("TAPESTRY_ENDPOINT_AWS");
	tp_aws_session_free(check);
	ts_aws_server_stop(proxy);
	free(pdir);
	free(state);
}

/* ---------------------------------------------------------------- IMDSv2 */

/*
 * moto serves the instance metadata endpoint (/latest/api/token, /latest/meta-data/...) with
 * fixed role credentials ("test-key") that its IAM does not know, so this test runs a moto
 * without signature enforcement; the recording proxy in front shows the IMDSv2 exchange and
 * that every AWS call is signed with the instance role's key and session token.
 */
static void start_open(void)
{
	isolate();
	unsetenv("AWS_ACCESS_KEY_ID");
	unsetenv("AWS_SECRET_ACCESS_KEY");
	unsetenv("AWS_EC2_METADATA_DISABLED");
	ts_moto_start(&moto, false);
	dir = ts_tmpdir();
}

Test(moto, instance_role_credentials_from_imds, .init = start_open, .fini = stop,
     .timeout = 60)
{
	ts_aws_server *proxy = ts_aws_server_start(moto.url);
	tp_aws_session *s;
	json_t *spec = json_pack("{s:s,s:s,s:s}", "name", "/it/imds", "type", "String", "value",
				 "from-the-instance-role");
	tp_op op = ssm_op(spec, NULL, NULL);
	tp_op_result res = {0};
	tp_aws_credentials c;
	json_t *reqs;
	size_t i;
	json_t *r;
	char *v = NULL;
	int signed_calls = 0;

	setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", ts_aws_server_url(proxy), 1);
	s = session_at(ts_aws_server_url(proxy));
	cr_assert_eq(tp_aws_ssm_create(s, &op, &res), 0, "%s", tp_error_last());
	tp_op_result_clear(&res);
	cr_assert_eq(tp_aws_ssm_resolve_secret(s, "/it/imds", &v), 0, "%s", tp_error_last());
	cr_assert_str_eq(v, "from-the-instance-role");
	tp_secret_free(v);
	cr_assert_eq(tp_aws_session_credentials(s, &c), 0);
	cr_assert_str_eq(c.access_key_id, "test-key");
	cr_assert_str_eq(c.source, "instance role default-role");
	cr_assert_gt(c.expires_ms, tp_clock_now_ms(), "moto's credentials carry an expiry");
	tp_aws_credentials_clear(&c);

	cr_assert_eq(ts_aws_server_count(proxy, "PUT /latest/api/token"), 1);
	cr_assert_eq(ts_aws_server_count(proxy, "GET /latest/meta-data/iam/security-credentials/"),
		     1, "credentials are cached");
	reqs = ts_aws_server_requests(proxy);
	json_array_foreach(reqs, i, r) {
		json_t *h = json_object_get(r, "headers");
		const char *action = tp_json_get_str(r, "action");
		if (strncmp(action, "GET /latest/", 12) == 0) {
			cr_assert_str_eq(tp_json_get_str(h, "x-aws-ec2-metadata-token"),
					 "fake-imdsv2-token");
		} else if (strncmp(action, "AmazonSSM.", 10) == 0 ||
			   strcmp(action, "GetCallerIdentity") == 0) {
			cr_assert(strstr(tp_json_get_str(h, "authorization"), "Credential=test-key/"));
			cr_assert_str_eq(tp_json_get_str(h, "x-amz-security-token"),
					 "test-session-token");
			signed_calls++;
		}
	}
	cr_assert_geq(signed_calls, 3);
	json_decref(reqs);
	json_decref(spec);
	tp_aws_session_free(s);
	ts_aws_server_stop(proxy);
}

/* ---------------------------------------------------------------- kickstart */

Test(moto, kickstart_plans_offline, .timeout = 60)
{
	char *tmp = ts_tmpdir();
	char *state = tp_sprintf("%s/x.db", tmp);
	char *example = ts_source_path("examples/kickstart");
	const char *args[] = {"plan", example, "--state", state, NULL};
	ts_result r = ts_run_tapestry(args, NULL);
	cr_assert_eq(r.status, 0, "%s\n%s", r.out, r.err);
	cr_assert(strstr(r.out, "+ aws.stack \"airbyte-host\""), "%s", r.out);
	ts_result_free(&r);
	ts_rmtree(tmp);
	free(tmp);
	free(state);
	free(example);
}

/*
 * What a user's pipeline does on every run: apply with the default refresh, and a provider
 * connection or file reading ${secret:ssm:...} — several sessions opened in one process
 * (refresh, the secret-hash pass, apply), each from the pipeline's unaltered configuration.
 */
Test(moto, apply_with_refresh_and_ssm_secrets, .init = start_auth, .fini = stop,
     .timeout = 120)
{
	tp_aws_session *check = session_at(moto.url);
	char *pdir = tp_sprintf("%s/pipeline", dir);
	char *state = tp_sprintf("%s/state.db", dir);
	char *out = tp_sprintf("%s/out.env", dir);
	char *resources;
	const char *apply[] = {"apply", pdir, "--state", state, "--auto-approve", NULL};
	ts_result r;
	tp_aws_call pc = {"ssm", NULL, "PutParameter", NULL};
	json_t *b = json_pack("{s:s,s:s,s:s}", "Name", "/it/pre/api_key", "Value",
			      "pre-existing-key", "Type", "SecureString");
	json_t *o = NULL;

	cr_assert_eq(tp_aws_json(check, &pc, "AmazonSSM", b, &o, NULL), 0, "%s", tp_error_last());
	json_decref(o);
	json_decref(b);
	setenv("TAPESTRY_ENDPOINT_AWS", moto.url, 1);
	setenv("IT_E2E_TOKEN", "e2e-token-value", 1);
	ts_write(dir, "pipeline/tapestry.yaml", pipeline_yaml);
	ts_write(dir, "pipeline/templates/app.yaml", app_template);
	write_resources("hello", false, true);
	resources = tp_sprintf("kind: local.file\nname: env\nspec:\n  path: %s\n  mode: \"0600\"\n"
			       "  content: \"API_KEY=${secret:ssm:/it/pre/api_key}\\n\"\n", out);
	ts_write(dir, "pipeline/resources/host.yaml", resources);
	for (int i = 0; i < 2; i++) {
		r = run(apply);
		cr_assert_eq(r.status, 0, "apply %d: %s\n%s", i + 1, r.out, r.err);
		cr_assert_null(strstr(r.out, "pre-existing-key"));
		cr_assert_null(strstr(r.err, "pre-existing-key"));
		ts_result_free(&r);
	}
	ts_expect_file(dir, "out.env", "API_KEY=pre-existing-key\n");
	cr_assert(stack_exists(check, "it-e2e"));
	unsetenv("TAPESTRY_ENDPOINT_AWS");
	tp_aws_session_free(check);
	free(resources);
	free(pdir);
	free(state);
	free(out);
}
