/*
 * Plans in pull requests (deploy/ci/github-plan.yml): the workflow's own steps, read out of
 * the workflow file with libyaml, run here as GitHub would run them.
 *  - The "Plan" step's script runs in a real repository with a base branch, a pull-request
 *    branch (tests/fixtures/pr-plan/base → head) and a later commit on the base branch; its
 *    markdown must equal tests/fixtures/pr-plan/expected.md byte for byte (TP_UPDATE_GOLDEN=1
 *    rewrites it for review).
 *  - The comment step's command (deploy/ci/plan-comment.sh) runs against a fake GitHub API
 *    started here: one comment is created, then edited in place on the next push (found past
 *    the first page of comments), failures are shown, long plans are cut at a <details>
 *    boundary, and a bad token fails with GitHub's message.
 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <yaml.h>

#include "support/support.h"
#include "util/util.h"

#define PIPELINE "pipelines/rainshield"
#define REPO_NAME "rainshield/data-pipeline"
#define TOKEN "ghs_test_token"
#define MARKER "<!-- tapestry-plan -->"

static char *tmp, *repo, *head_sha, *base_tip;

/* ---------------------------------------------------------------- the workflow file */

static yaml_node_t *map_get(yaml_document_t *doc, yaml_node_t *map, const char *key)
{
	if (!map || map->type != YAML_MAPPING_NODE)
		return NULL;
	for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
	     p++) {
		yaml_node_t *k = yaml_document_get_node(doc, p->key);
		if (k && k->type == YAML_SCALAR_NODE && strcmp((char *)k->data.scalar.value, key) == 0)
			return yaml_document_get_node(doc, p->value);
	}
	return NULL;
}

static const char *scalar(yaml_node_t *n)
{
	return n && n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
}

typedef struct {
	char *run;               /* the step's script */
	char *working_directory; /* or NULL */
	char *step_if;           /* or NULL */
} wf_step;

/* The step of jobs.plan whose `name` (or `id`) is name, from the workflow file. */
static wf_step workflow_step(const char *name)
{
	char *path = ts_source_path("deploy/ci/github-plan.yml");
	char *text = ts_read(path);
	yaml_parser_t parser;
	yaml_document_t doc;
	yaml_node_t *steps;
	wf_step s = {0};
	cr_assert_not_null(text, "%s is missing", path);
	yaml_parser_initialize(&parser);
	yaml_parser_set_input_string(&parser, (const unsigned char *)text, strlen(text));
	cr_assert(yaml_parser_load(&parser, &doc), "%s is not valid YAML: %s (line %zu)", path,
		  parser.problem, parser.problem_mark.line + 1);
	steps = map_get(&doc, map_get(&doc, map_get(&doc, yaml_document_get_root_node(&doc),
						    "jobs"), "plan"), "steps");
	cr_assert(steps && steps->type == YAML_SEQUENCE_NODE, "jobs.plan.steps is missing");
	for (yaml_node_item_t *i = steps->data.sequence.items.start;
	     i < steps->data.sequence.items.top && !s.run; i++) {
		yaml_node_t *step = yaml_document_get_node(&doc, *i);
		const char *n = scalar(map_get(&doc, step, "name"));
		const char *id = scalar(map_get(&doc, step, "id"));
		if ((n && strcmp(n, name) == 0) || (id && strcmp(id, name) == 0)) {
			const char *run = scalar(map_get(&doc, step, "run"));
			const char *wd = scalar(map_get(&doc, step, "working-directory"));
			const char *cond = scalar(map_get(&doc, step, "if"));
			cr_assert_not_null(run, "step %s has no run:", name);
			s.run = tp_strdup(run);
			s.working_directory = wd ? tp_strdup(wd) : NULL;
			s.step_if = cond ? tp_strdup(cond) : NULL;
		}
	}
	cr_assert_not_null(s.run, "no step \"%s\" in jobs.plan", name);
	yaml_document_delete(&doc);
	yaml_parser_delete(&parser);
	free(text);
	free(path);
	return s;
}

static void wf_step_free(wf_step *s)
{
	free(s->run);
	free(s->working_directory);
	free(s->step_if);
}

/* Runs script with bash -e (GitHub's default shell) in cwd; returns the exit status and the
 * combined output in *out. */
static int run_script(const char *script, const char *cwd, char **out)
{
	char *file = tp_sprintf("%s/step-%d.sh", tmp, rand());
	char *cmd, chunk[4096];
	FILE *p;
	tp_buf b;
	size_t n;
	int st;
	ts_write(tmp, strrchr(file, '/') + 1, script);
	cmd = tp_sprintf("cd '%s' && bash -e '%s' 2>&1", cwd, file);
	p = popen(cmd, "r");
	cr_assert_not_null(p);
	tp_buf_init(&b, 0);
	while ((n = fread(chunk, 1, sizeof(chunk), p)) > 0)
		tp_buf_put(&b, chunk, n);
	st = pclose(p);
	*out = tp_buf_detach(&b);
	free(cmd);
	free(file);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

/* KEY=value from a GITHUB_OUTPUT file (new string, NULL when absent). */
static char *output_value(const char *file, const char *key)
{
	char *text = ts_read(file), *want = tp_sprintf("%s=", key), *v = NULL;
	for (char *line = text ? strtok(text, "\n") : NULL; line; line = strtok(NULL, "\n"))
		if (strncmp(line, want, strlen(want)) == 0)
			v = tp_strdup(line + strlen(want));
	free(text);
	free(want);
	return v;
}

/* ---------------------------------------------------------------- the repository */

static void copy_fixture(const char *which)
{
	char *cmd = tp_sprintf("rm -rf '%s/" PIPELINE "' && mkdir -p '%s/pipelines' && "
			       "cp -R '%s/tests/fixtures/pr-plan/%s' '%s/" PIPELINE "'",
			       repo, repo, TP_SOURCE_DIR, which, repo);
	cr_assert_eq(system(cmd), 0, "%s", cmd);
	free(cmd);
}

static void setup(void)
{
	ts_git_env();
	tmp = ts_tmpdir();
	repo = tp_sprintf("%s/pipeline", tmp);
	free(ts_git(tmp, "init -q pipeline"));
	ts_write(repo, "README.md", "# Rainshield data pipeline\n");
	copy_fixture("base");
	free(ts_git(repo, "add -A"));
	free(ts_git(repo, "commit -q -m base"));
	/* the pull request */
	free(ts_git(repo, "checkout -q -b add-salesforce"));
	copy_fixture("head");
	free(ts_git(repo, "add -A"));
	free(ts_git(repo, "commit -q -m 'Add Salesforce, resize, retire REPORTING'"));
	head_sha = ts_git(repo, "rev-parse HEAD");
	/* meanwhile the base branch moved on: its change must not show up (reversed) here */
	free(ts_git(repo, "checkout -q main"));
	ts_write(repo, PIPELINE "/resources/late.yaml",
		 "kind: snowflake.database\nname: archive\nspec: {name: ARCHIVE}\n");
	free(ts_git(repo, "add -A"));
	free(ts_git(repo, "commit -q -m 'Add ARCHIVE on main'"));
	base_tip = ts_git(repo, "rev-parse HEAD");
	/* a CI checkout: the merge commit, detached */
	free(ts_git(repo, "checkout -q --detach %s", head_sha));
}

static void teardown(void)
{
	ts_rmtree(tmp);
	free(tmp);
	free(repo);
	free(head_sha);
	free(base_tip);
}

TestSuite(pr_plan, .init = setup, .fini = teardown, .timeout = 300);

/* Runs the workflow's Plan step; returns its status output and leaves plan.md in tmp. */
static char *run_plan_step(void)
{
	wf_step s = workflow_step("plan");
	char *runner_temp = tmp;
	char *gh_out = tp_sprintf("%s/github_output", tmp);
	char *gitconfig = tp_sprintf("%s/gitconfig", tmp);
	char *out = NULL, *status;
	int rc;
	cr_assert_str_eq(s.working_directory, "pipeline");
	cr_assert(strstr(s.run, "# tapestry-plan-command"), "the plan line lost its marker");
	cr_assert(strstr(s.run, "--format markdown"), "%s", s.run);
	setenv("TAPESTRY", TP_BINARY, 1);
	setenv("HEAD_SHA", head_sha, 1);
	setenv("PR_BASE_SHA", base_tip, 1);
	setenv("PIPELINE_PATH", PIPELINE, 1);
	setenv("RUNNER_TEMP", runner_temp, 1);
	setenv("GITHUB_OUTPUT", gh_out, 1);
	setenv("GIT_CONFIG_GLOBAL", gitconfig, 1); /* the step adds a safe.directory */
	ts_write(tmp, "github_output", "");
	rc = run_script(s.run, repo, &out);
	cr_assert_eq(rc, 0, "the Plan step failed:\n%s", out);
	status = output_value(gh_out, "status");
	cr_assert_not_null(status, "no status output:\n%s", out);
	free(out);
	free(gh_out);
	free(gitconfig);
	wf_step_free(&s);
	return status;
}

Test(pr_plan, the_workflow_plan_matches_the_expected_markdown)
{
	char *status = run_plan_step();
	char *got = ts_read_in(tmp, "plan.md");
	char *err = ts_read_in(tmp, "plan.err");
	char *expected_path = ts_source_path("tests/fixtures/pr-plan/expected.md");
	char *want;
	char *note = tp_sprintf("%s/github_output", tmp);
	char *note_value = output_value(note, "note");
	cr_assert_str_eq(status, "0", "tapestry plan failed: %s", err);
	cr_assert_not_null(got);
	if (getenv("TP_UPDATE_GOLDEN")) {
		FILE *f = fopen(expected_path, "w");
		cr_assert_not_null(f);
		fputs(got, f);
		fclose(f);
	}
	want = ts_read(expected_path);
	cr_assert_not_null(want, "%s is missing (TP_UPDATE_GOLDEN=1 writes it)", expected_path);
	cr_assert_str_eq(got, want, "the plan differs from %s (TP_UPDATE_GOLDEN=1 rewrites it):\n%s",
			 expected_path, got);
	/* planned against the merge base: ARCHIVE, added on main later, is not in it */
	cr_assert_null(strstr(got, "archive"), "%s", got);
	cr_assert_not_null(note_value);
	cr_assert(strstr(note_value, "Planned ") && strstr(note_value, " with Tapestry "), "%s",
		  note_value);
	free(note);
	free(note_value);
	free(status);
	free(got);
	free(err);
	free(want);
	free(expected_path);
}

/* ---------------------------------------------------------------- a fake GitHub */

typedef struct {
	long id;
	char *body;
} comment;

static struct {
	pthread_mutex_t mu;
	comment items[256];
	size_t n;
	long next_id;
	int posts, patches, gets;
} gh = {.mu = PTHREAD_MUTEX_INITIALIZER};

typedef struct {
	tp_buf body;
} conn_state;

static void add_comment(const char *body)
{
	gh.items[gh.n].id = gh.next_id++;
	gh.items[gh.n].body = tp_strdup(body);
	gh.n++;
}

static json_t *comment_json(const comment *c)
{
	char url[128];
	snprintf(url, sizeof(url), "https://github.com/" REPO_NAME "/pull/7#issuecomment-%ld",
		 c->id);
	return json_pack("{s:I, s:s, s:s, s:{s:s}}", "id", (json_int_t)c->id, "body", c->body,
			 "html_url", url, "user", "login", "github-actions[bot]");
}

static enum MHD_Result reply(struct MHD_Connection *conn, int status, json_t *v)
{
	char *text = json_dumps(v, JSON_COMPACT);
	struct MHD_Response *r = MHD_create_response_from_buffer(strlen(text), text,
								 MHD_RESPMEM_MUST_FREE);
	enum MHD_Result ret;
	json_decref(v);
	MHD_add_response_header(r, "Content-Type", "application/json; charset=utf-8");
	ret = MHD_queue_response(conn, (unsigned)status, r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result answer(void *cls, struct MHD_Connection *conn, const char *url,
			      const char *method, const char *version, const char *upload,
			      size_t *upload_size, void **state)
{
	conn_state *cs = *state;
	const char *auth;
	const char *list = "/repos/" REPO_NAME "/issues/7/comments";
	const char *edit = "/repos/" REPO_NAME "/issues/comments/";
	json_t *in = NULL, *out;
	int status = 404;
	(void)cls;
	(void)version;
	if (!cs) {
		cs = calloc(1, sizeof(*cs));
		tp_buf_init(&cs->body, 1u << 20);
		*state = cs;
		return MHD_YES;
	}
	if (*upload_size) {
		tp_buf_put(&cs->body, upload, *upload_size);
		*upload_size = 0;
		return MHD_YES;
	}
	auth = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Authorization");
	if (!auth || strcmp(auth, "Bearer " TOKEN) != 0)
		return reply(conn, 401, json_pack("{s:s}", "message", "Bad credentials"));
	if (cs->body.len && tp_json_parse(&in, cs->body.ptr, cs->body.len) < 0)
		return reply(conn, 400, json_pack("{s:s}", "message", "Problems parsing JSON"));
	pthread_mutex_lock(&gh.mu);
	out = json_pack("{s:s}", "message", "Not Found");
	if (strcmp(url, list) == 0 && strcmp(method, "GET") == 0) {
		const char *pp = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "per_page");
		const char *pg = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "page");
		size_t per = pp ? (size_t)atoi(pp) : 30, page = pg ? (size_t)atoi(pg) : 1;
		json_decref(out);
		out = json_array();
		for (size_t i = (page - 1) * per; i < gh.n && i < page * per; i++)
			json_array_append_new(out, comment_json(&gh.items[i]));
		gh.gets++;
		status = 200;
	} else if (strcmp(url, list) == 0 && strcmp(method, "POST") == 0 &&
		   tp_json_get_str(in, "body")) {
		add_comment(tp_json_get_str(in, "body"));
		json_decref(out);
		out = comment_json(&gh.items[gh.n - 1]);
		gh.posts++;
		status = 201;
	} else if (strncmp(url, edit, strlen(edit)) == 0 && strcmp(method, "PATCH") == 0 &&
		   tp_json_get_str(in, "body")) {
		long id = atol(url + strlen(edit));
		for (size_t i = 0; i < gh.n; i++) {
			if (gh.items[i].id != id)
				continue;
			free(gh.items[i].body);
			gh.items[i].body = tp_strdup(tp_json_get_str(in, "body"));
			json_decref(out);
			out = comment_json(&gh.items[i]);
			gh.patches++;
			status = 200;
		}
	}
	pthread_mutex_unlock(&gh.mu);
	json_decref(in);
	return reply(conn, status, out);
}

static void completed(void *cls, struct MHD_Connection *conn, void **state,
		      enum MHD_RequestTerminationCode toe)
{
	conn_state *cs = *state;
	(void)cls;
	(void)conn;
	(void)toe;
	if (cs) {
		tp_buf_free(&cs->body);
		free(cs);
		*state = NULL;
	}
}

/* The comment step's command, with the expressions GitHub would have filled in. */
static int run_comment_step(const char *status, char **out)
{
	wf_step s = workflow_step("Post or update the plan comment");
	char *cmd = ts_replace(s.run, "${{ steps.plan.outputs.status }}", status);
	int rc;
	cr_assert(s.step_if && strstr(s.step_if, "head.repo.full_name == github.repository"),
		  "forks must skip the comment: %s", s.step_if ? s.step_if : "(no if)");
	cr_assert_null(strstr(cmd, "${{"), "unfilled expression in %s", cmd);
	rc = run_script(cmd, tmp, out);
	free(cmd);
	wf_step_free(&s);
	return rc;
}

static const comment *ours(void)
{
	const comment *found = NULL;
	for (size_t i = 0; i < gh.n; i++) {
		if (strncmp(gh.items[i].body, MARKER, strlen(MARKER)) == 0) {
			cr_assert_null(found, "two plan comments");
			found = &gh.items[i];
		}
	}
	return found;
}

Test(pr_plan, one_comment_created_then_updated)
{
	struct sockaddr_in sa = {.sin_family = AF_INET};
	int port = ts_free_port();
	struct MHD_Daemon *daemon;
	char *api = tp_sprintf("http://127.0.0.1:%d", port);
	char *src = tp_sprintf("%s/.tapestry", tmp);
	char *status, *plan, *out = NULL;
	const comment *c;
	long first_id;
	tp_buf big;

	sa.sin_port = htons((uint16_t)port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	daemon = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION,
				  (uint16_t)port, NULL, NULL, answer, NULL, MHD_OPTION_SOCK_ADDR,
				  &sa, MHD_OPTION_NOTIFY_COMPLETED, completed, NULL, MHD_OPTION_END);
	cr_assert_not_null(daemon);
	/* a busy pull request: 100 comments on the first page, including one quoting ours */
	gh.next_id = 1000;
	for (int i = 0; i < 99; i++)
		add_comment("Looks good to me");
	add_comment("> " MARKER "\n> quoting the bot");
	/* the workspace: Tapestry's source checked out at .tapestry, as the workflow does */
	cr_assert_eq(symlink(TP_SOURCE_DIR, src), 0);
	status = run_plan_step();
	plan = ts_read_in(tmp, "plan.md");
	setenv("GITHUB_API_URL", api, 1);
	setenv("GITHUB_REPOSITORY", REPO_NAME, 1);
	setenv("GITHUB_TOKEN", TOKEN, 1);
	setenv("PR_NUMBER", "7", 1);
	setenv("COMMENT_MARKER", MARKER, 1);
	setenv("PLAN_TITLE_NOTE", "Planned abc against def", 1);

	/* first push: created */
	cr_assert_eq(run_comment_step(status, &out), 0, "%s", out);
	cr_assert(strstr(out, "created comment"), "%s", out);
	free(out);
	cr_assert_eq(gh.posts, 1);
	cr_assert_eq(gh.n, 101);
	c = ours();
	cr_assert_not_null(c);
	first_id = c->id;
	cr_assert(strncmp(c->body, MARKER "\n", strlen(MARKER) + 1) == 0, "%s", c->body);
	cr_assert(strstr(c->body, plan) == c->body + strlen(MARKER) + 1, "the plan, verbatim: %s",
		  c->body);
	cr_assert(strstr(c->body, "\n<sub>Planned abc against def</sub>\n"), "%s", c->body);

	/* next push: the same comment edited (found on the second page), nothing new */
	ts_write(tmp, "plan.md", "### Tapestry plan for rainshield\n\nNo changes.\n");
	cr_assert_eq(run_comment_step(status, &out), 0, "%s", out);
	cr_assert(strstr(out, "updated comment"), "%s", out);
	free(out);
	cr_assert_eq(gh.posts, 1);
	cr_assert_eq(gh.patches, 1);
	cr_assert_eq(gh.n, 101);
	c = ours();
	cr_assert_eq(c->id, first_id);
	cr_assert(strstr(c->body, "No changes."), "%s", c->body);
	cr_assert_str_eq(gh.items[99].body, "> " MARKER "\n> quoting the bot");

	/* a refused plan: the reason is shown above what was printed */
	ts_write(tmp, "plan.err", "Error: snowflake.database/raw has prevent_destroy\n");
	cr_assert_eq(run_comment_step("1", &out), 0, "%s", out);
	free(out);
	c = ours();
	cr_assert(strstr(c->body, "### :x: Tapestry plan failed (exit status 1)\n\n```\nError: "
				  "snowflake.database/raw has prevent_destroy\n"),
		  "%s", c->body);

	/* a plan longer than a comment may be: cut after a whole <details> block */
	tp_buf_init(&big, 0);
	tp_buf_puts(&big, "### Tapestry plan for rainshield\n\n");
	for (int i = 0; i < 400; i++) {
		tp_buf_printf(&big, "<details><summary>r%d</summary>\n\n```diff\n", i);
		for (int j = 0; j < 4; j++)
			tp_buf_puts(&big, "+ a line of a long plan, long enough to add up quickly\n");
		tp_buf_puts(&big, "```\n\n</details>\n\n");
	}
	ts_write(tmp, "plan.md", big.ptr);
	tp_buf_free(&big);
	cr_assert_eq(run_comment_step("0", &out), 0, "%s", out);
	free(out);
	c = ours();
	cr_assert_lt(strlen(c->body), 65536);
	cr_assert(strstr(c->body, "</details>\n\n**The plan is too long for a comment; the rest is "
				  "in the workflow run's log.**\n"),
		  "%s", c->body + strlen(c->body) - 200);
	cr_assert_eq(gh.posts, 1);

	/* a token GitHub refuses: the step fails and says why */
	setenv("GITHUB_TOKEN", "wrong", 1);
	cr_assert_neq(run_comment_step("0", &out), 0);
	cr_assert(strstr(out, "HTTP 401: Bad credentials"), "%s", out);
	free(out);

	MHD_stop_daemon(daemon);
	for (size_t i = 0; i < gh.n; i++)
		free(gh.items[i].body);
	free(api);
	free(src);
	free(status);
	free(plan);
}
