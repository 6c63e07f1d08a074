/*
 * The dashboard end to end: the real `tapestry run` follows a real Git repository (file://)
 * on 127.0.0.1, and Debian's headless Chromium, driven by playwright-core (check.mjs), opens
 * the page it serves at / and checks what an operator sees: every resource of the pipeline
 * with the right status (in sync, failed, pending, retained), the applied revision with its
 * message, the runs with their per-action results, events filtered by a clicked resource,
 * and a resource changed behind Tapestry's back shown as drifted by the next drift check. A
 * screenshot of the page is left in the build directory (artifacts/dashboard.png).
 *
 * The pipeline is a scenario (below): today local.file resources, the provider that needs no
 * network. Moving the test to the kickstart pipeline on the embedded backends means writing a
 * second scenario (copy examples/kickstart into the repository, point TAPESTRY_ENDPOINT_* at
 * the backends in `env`, list every resource as in sync, and drift one object through its
 * backend's API in `drift_command`); the test body does not change.
 *
 * Needs Chromium, Node.js and playwright-core (tests/dashboard/install.sh installs them); when
 * one is missing the test fails and says how to install it: it never skips.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "support/support.h"
#include "util/util.h"

#define INSTALL_HINT                                                                               \
	"install them with:\n  bash tests/dashboard/install.sh\n(Debian's chromium package, "      \
	"Node.js, and `npm ci` of tests/dashboard/package-lock.json into "                         \
	"$TAPESTRY_DASHBOARD_NODE_DIR, default ~/.cache/tapestry/dashboard-test)"

static char *tmp, *origin, *out, *statedir, *logpath, *base_url;
static int port;
static pid_t ctl_pid = -1;

static void setup(void)
{
	ts_git_env();
	tmp = ts_tmpdir();
	origin = tp_sprintf("%s/origin", tmp);
	out = tp_sprintf("%s/out", tmp);
	statedir = tp_sprintf("%s/state", tmp);
	logpath = tp_sprintf("%s/controller.log", tmp);
	mkdir(out, 0755);
	mkdir(statedir, 0700);
	free(ts_git(tmp, "init -q origin"));
	port = ts_free_port();
	base_url = tp_sprintf("http://127.0.0.1:%d", port);
}

static void teardown(void)
{
	ts_stop_pid(ctl_pid);
	ctl_pid = -1;
	ts_rmtree(tmp);
	free(tmp);
	free(origin);
	free(out);
	free(statedir);
	free(logpath);
	free(base_url);
}

TestSuite(dashboard, .init = setup, .fini = teardown, .timeout = 300);

/* ---------------------------------------------------------------- the scenario */

/*
 * What the test runs against. build_first and build_second write the pipeline's two commits
 * (the controller is started after the first is committed and has applied it); expected is
 * {address: status} once the second is applied; drift_command changes drift_address outside
 * Tapestry.
 */
typedef struct {
	const char *name;
	void (*build_first)(void);
	void (*build_second)(void);
	const char *const *env;    /* extra environment for the controller (NULL-terminated) */
	const char *first_message; /* subject of the first commit, shown as the applied one */
	json_t *expected;
	const char *select;        /* a resource to click: its details and events */
	const char *drift_address;
	char **drift_command;      /* argv, NULL-terminated */
	/* events that must exist before the browser starts ({address, type}), so the second
	 * commit's run is complete when the page first loads */
	const char *const (*settled)[2];
} scenario;

static void commit(const char *message)
{
	free(ts_git(origin, "add -A"));
	free(ts_git(origin, "commit -q -m '%s'", message));
}

static void write_resources(const char *text)
{
	char *t = ts_replace(text, "@OUT@", out);
	ts_write(origin, "pipe/resources/files.yaml", t);
	free(t);
}

/* alpha and beta (beta refers to alpha: an edge in the graph), keep (deletion: retain) */
static void local_first(void)
{
	ts_write(origin, "pipe/tapestry.yaml", "pipeline: dashboard-e2e\n");
	write_resources("kind: local.file\nname: alpha\nspec: {path: @OUT@/alpha.env, content: "
			"\"A=1\"}\n---\n"
			"kind: local.file\nname: beta\nspec: {path: @OUT@/beta.env, content: "
			"\"ALPHA_SHA=${local.file/alpha.sha256}\"}\n---\n"
			"kind: local.file\nname: keep\nspec: {path: @OUT@/keep.env, content: kept}\n"
			"lifecycle: {deletion: retain}\n");
	commit("Add the env files");
}

/* keep leaves Git (retained: forgotten, the file stays); broken cannot be written (its
 * directory does not exist: failed); gamma refers to broken (skipped: pending) */
static void local_second(void)
{
	write_resources("kind: local.file\nname: alpha\nspec: {path: @OUT@/alpha.env, content: "
			"\"A=1\"}\n---\n"
			"kind: local.file\nname: beta\nspec: {path: @OUT@/beta.env, content: "
			"\"ALPHA_SHA=${local.file/alpha.sha256}\"}\n---\n"
			"kind: local.file\nname: broken\nspec: {path: @OUT@/missing-dir/broken.env, "
			"content: \"B=2\"}\n---\n"
			"kind: local.file\nname: gamma\nspec: {path: @OUT@/gamma.env, content: "
			"\"BROKEN=${local.file/broken.path}\"}\n");
	commit("Stop managing keep.env; add broken and gamma");
}

static const char *const local_settled[][2] = {
	{"local.file/keep", "forget"},
	{"local.file/broken", "failed"},
	{"local.file/gamma", "skipped"},
	{NULL, NULL},
};

static scenario local_files_scenario(void)
{
	scenario s = {0};
	char *drifted = tp_sprintf("%s/alpha-by-hand.env", tmp);
	ts_write(tmp, "alpha-by-hand.env", "A=changed by hand");
	s.name = "local.file";
	s.build_first = local_first;
	s.build_second = local_second;
	s.first_message = "Add the env files";
	s.expected = json_pack("{s:s,s:s,s:s,s:s,s:s}", "local.file/alpha", "in-sync",
			       "local.file/beta", "in-sync", "local.file/keep", "retained",
			       "local.file/broken", "failed", "local.file/gamma", "pending");
	s.select = "local.file/broken";
	s.drift_address = "local.file/alpha";
	s.drift_command = tp_calloc(4, sizeof(char *));
	s.drift_command[0] = tp_strdup("/bin/cp");
	s.drift_command[1] = drifted;
	s.drift_command[2] = tp_sprintf("%s/alpha.env", out);
	s.settled = local_settled;
	return s;
}

static void scenario_clear(scenario *s)
{
	json_decref(s->expected);
	for (size_t i = 0; s->drift_command && s->drift_command[i]; i++)
		free(s->drift_command[i]);
	free(s->drift_command);
}

/* ---------------------------------------------------------------- tools */

static char *node_dir(void)
{
	const char *d = getenv("TAPESTRY_DASHBOARD_NODE_DIR");
	const char *home = getenv("HOME");
	if (d && *d)
		return tp_strdup(d);
	return tp_sprintf("%s/.cache/tapestry/dashboard-test", home && *home ? home : "/root");
}

static const char *chromium_path(void)
{
	const char *c = getenv("TAPESTRY_CHROMIUM");
	return c && *c ? c : "/usr/bin/chromium";
}

/* Runs argv (PATH searched) with stdout and stderr into log, within timeout_s; the exit
 * status, 128+signal, or -1 when it could not start or ran out of time (then killed). */
static int run_cmd(char *const *argv, const char *log, int timeout_s)
{
	int64_t deadline = tp_clock_mono_ms() + (int64_t)timeout_s * 1000;
	int status = 0;
	pid_t pid = fork();
	cr_assert_neq(pid, -1, "fork: %s", strerror(errno));
	if (pid == 0) {
		int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
			close(fd);
		}
		setpgid(0, 0); /* its own group: a timeout kills node and the browser */
		execvp(argv[0], argv);
		_exit(127);
	}
	for (;;) {
		pid_t r = waitpid(pid, &status, WNOHANG);
		if (r == pid)
			break;
		if (tp_clock_mono_ms() > deadline) {
			kill(-pid, SIGKILL);
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			return -1;
		}
		usleep(50000);
	}
	if (WIFEXITED(status))
		return WEXITSTATUS(status) == 127 ? -1 : WEXITSTATUS(status);
	return 128 + WTERMSIG(status);
}

/* Fails, with how to install them, unless Chromium, node and playwright-core are there. */
static void require_browser_tools(void)
{
	char *dir = node_dir();
	char *pkg = tp_sprintf("%s/node_modules/playwright-core/package.json", dir);
	char *log = tp_sprintf("%s/node-version.log", tmp);
	char *argv[] = {(char *)"node", (char *)"--version", NULL};
	struct stat sb;

	if (access(chromium_path(), X_OK) != 0)
		cr_assert_fail("Chromium is not installed (%s: %s): the dashboard test needs "
			       "Debian's chromium, Node.js and playwright-core; " INSTALL_HINT,
			       chromium_path(), strerror(errno));
	if (run_cmd(argv, log, 30) != 0)
		cr_assert_fail("Node.js (`node`) is not installed or does not run: the dashboard "
			       "test needs Debian's chromium, Node.js and playwright-core; "
			       INSTALL_HINT);
	if (stat(pkg, &sb) != 0)
		cr_assert_fail("playwright-core is not installed in %s: the dashboard test needs "
			       "Debian's chromium, Node.js and playwright-core; " INSTALL_HINT,
			       dir);
	free(log);
	free(pkg);
	free(dir);
}

/* ---------------------------------------------------------------- the controller */

static void start_controller(const char *const *env)
{
	char *repo = tp_sprintf("file://%s", origin);
	char *listen = tp_sprintf("127.0.0.1:%d", port);
	/* drift checked every second, so a change by hand shows up within the page's polls */
	const char *args[] = {"run",          "--repo",           repo,     "--branch",
			      "main",         "--path",           "pipe",   "--state-dir",
			      statedir,       "--listen",         listen,   "--poll-interval",
			      "500ms",        "--drift-interval", "1s",     NULL};
	ctl_pid = ts_spawn_tapestry(args, env, logpath);
	free(listen);
	free(repo);
}

static json_t *get_json(const char *path)
{
	char *url = tp_sprintf("%s%s", base_url, path);
	ts_http_result r = ts_http("GET", url, NULL, NULL);
	json_t *v = NULL;
	if (r.status == 200 && r.body)
		tp_json_parse(&v, r.body, strlen(r.body));
	ts_http_result_free(&r);
	free(url);
	return v;
}

static void fail_with_log(const char *what)
{
	char *log = ts_read(logpath);
	cr_assert_fail("%s\ncontroller log:\n%s", what, log ? log : "(none)");
}

/* Waits until the controller reports commit as applied. */
static void wait_applied(const char *commit)
{
	int64_t deadline = tp_clock_mono_ms() + 60000;
	for (;;) {
		json_t *s = get_json("/api/status");
		const char *applied = json_string_value(tp_json_path_get(s, "revision.applied"));
		bool ok = applied && strcmp(applied, commit) == 0;
		json_decref(s);
		if (ok)
			return;
		if (tp_clock_mono_ms() > deadline)
			fail_with_log("timed out waiting for the first commit to be applied");
		usleep(100000);
	}
}

/* Waits until an event of type exists for address. */
static void wait_event(const char *address, const char *type)
{
	int64_t deadline = tp_clock_mono_ms() + 60000;
	char *path = tp_sprintf("/api/events?limit=1000&address=%s", address);
	for (;;) {
		json_t *events = get_json(path);
		bool found = false;
		size_t i;
		json_t *e;
		json_array_foreach(events, i, e) {
			const char *t = json_string_value(json_object_get(e, "type"));
			if (t && strcmp(t, type) == 0)
				found = true;
		}
		json_decref(events);
		if (found)
			break;
		if (tp_clock_mono_ms() > deadline) {
			char *m = tp_sprintf("timed out waiting for a %s event for %s", type, address);
			fail_with_log(m);
		}
		usleep(100000);
	}
	free(path);
}

/* Fails early, saying what is missing, when the controller does not serve the page or does
 * not say which resources drifted (both are wired in loop.c, not here). */
static void require_dashboard_api(void)
{
	char *url = tp_sprintf("%s/", base_url);
	ts_http_result r = ts_http("GET", url, NULL, NULL);
	json_t *resources, *plan;
	bool drift_field;
	if (r.status != 200 || !r.body || !strstr(r.body, "/dashboard.js"))
		fail_with_log("the controller does not serve the dashboard at / (loop.c's on_get "
			      "must answer through tp_dashboard_serve() first, see "
			      "controller/controller.h)");
	ts_http_result_free(&r);
	free(url);
	resources = get_json("/api/resources");
	plan = get_json("/api/plan");
	drift_field = json_object_get(json_array_get(resources, 0), "drift") != NULL;
	if (!plan && !drift_field)
		fail_with_log("the controller does not say which resources drifted: the dashboard "
			      "needs GET /api/plan (the last plan, with drift per resource) or a "
			      "\"drift\" list on each resource of /api/resources");
	json_decref(resources);
	json_decref(plan);
}

/* ---------------------------------------------------------------- the test */

Test(dashboard, shows_every_resource_status_and_drift_in_chromium)
{
	scenario s;
	char *first, *scen_path, *shot, *browser_log, *page_log, *check, *url;
	json_t *scen, *drift_cmd = json_array();
	int rc;

	require_browser_tools();
	s = local_files_scenario();

	/* the first commit, applied; then the second, whose run fails in part */
	s.build_first();
	first = ts_git(origin, "rev-parse HEAD");
	start_controller(s.env);
	wait_applied(first);
	require_dashboard_api();
	s.build_second();
	for (size_t i = 0; s.settled[i][0]; i++)
		wait_event(s.settled[i][0], s.settled[i][1]);

	/* the browser's half */
	for (size_t i = 0; s.drift_command[i]; i++)
		json_array_append_new(drift_cmd, json_string(s.drift_command[i]));
	scen = json_pack("{s:O,s:{s:s,s:s},s:s,s:{s:s,s:o},s:i}", "resources", s.expected,
			 "revision", "applied", first, "message", s.first_message, "select",
			 s.select, "drift", "address", s.drift_address, "command", drift_cmd,
			 "timeout_ms", 30000);
	scen_path = tp_sprintf("%s/scenario.json", tmp);
	cr_assert_eq(json_dump_file(scen, scen_path, JSON_INDENT(2)), 0);
	mkdir(TP_BUILD_DIR "/artifacts", 0755);
	shot = tp_strdup(TP_BUILD_DIR "/artifacts/dashboard.png");
	unlink(shot);
	check = tp_strdup(TP_SOURCE_DIR "/tests/dashboard/check.mjs");
	url = tp_sprintf("%s/", base_url);
	browser_log = tp_sprintf("%s/check.log", tmp);
	{
		char *argv[] = {(char *)"node", check, url, shot, scen_path, NULL};
		rc = run_cmd(argv, browser_log, 240);
	}
	page_log = ts_read(browser_log);
	if (rc != 0) {
		char *log = ts_read(logpath);
		cr_assert_fail("the dashboard check failed (exit %d, scenario %s):\n%s\n"
			       "screenshot: %s\ncontroller log (last part):\n%s",
			       rc, s.name, page_log ? page_log : "(no output)", shot,
			       log && strlen(log) > 6000 ? log + strlen(log) - 6000 : log);
	}
	cr_log_info("%s", page_log ? page_log : "");

	/* the screenshot is a PNG */
	{
		char *png = ts_read(shot);
		struct stat sb;
		cr_assert(stat(shot, &sb) == 0 && sb.st_size > 10000, "no screenshot at %s", shot);
		cr_assert(png && memcmp(png, "\x89PNG", 4) == 0, "%s is not a PNG", shot);
		free(png);
	}

	free(page_log);
	free(browser_log);
	free(url);
	free(check);
	free(shot);
	free(scen_path);
	json_decref(scen);
	free(first);
	scenario_clear(&s);
}
