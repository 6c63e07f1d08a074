/*
 * Installing the controller: deploy/install.sh staged into a directory (--root) from the
 * source tree and from a release archive made by deploy/package.sh — the files, modes and unit
 * it puts in place, a second run that changes nothing (not even a timestamp), updates that
 * replace what changed and remove what is gone, and an installed binary that finds its
 * kickstart example. The unit passes `systemd-analyze verify` and keeps a low exposure score
 * with the hardening the README promises; the example controller.yaml loads with the
 * controller's own loader; the shell scripts pass shellcheck.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "controller/controller.h"
#include "support/support.h"
#include "util/util.h"

static char *tmp;

static void setup(void)
{
	tmp = ts_tmpdir();
}

static void teardown(void)
{
	ts_rmtree(tmp);
	free(tmp);
}

TestSuite(install, .init = setup, .fini = teardown, .timeout = 300);

static int run_cmd(const char *cmd, char **out)
{
	char *full = tp_sprintf("%s 2>&1", cmd);
	FILE *p = popen(full, "r");
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
	free(full);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

static unsigned mode_of(const char *root, const char *rel)
{
	char *p = tp_sprintf("%s%s", root, rel);
	struct stat st;
	cr_assert_eq(stat(p, &st), 0, "%s is missing", p);
	free(p);
	return st.st_mode & 07777;
}

static char *install(const char *root, const char *extra)
{
	char *cmd = tp_sprintf("bash '%s/deploy/install.sh' --root '%s' --binary '%s' %s",
			       TP_SOURCE_DIR, root, TP_BINARY, extra ? extra : "");
	char *out = NULL;
	cr_assert_eq(run_cmd(cmd, &out), 0, "%s\n%s", cmd, out);
	free(cmd);
	return out;
}

Test(install, stages_everything_and_a_second_run_changes_nothing)
{
	char *root = tp_sprintf("%s/root", tmp);
	char *cfg_path = tp_sprintf("%s/my-controller.yaml", tmp);
	char *out, *before, *after, *unit, *want_unit, *bin, *stray, *init_out = NULL, *cmd;
	char *cfg_arg = tp_sprintf("--config '%s'", cfg_path);
	ts_write(tmp, "my-controller.yaml", "repository: {url: https://example.com/p.git}\n");
	out = install(root, cfg_arg);
	cr_assert(strstr(out, "/usr/local/bin/tapestry"), "%s", out);
	free(out);
	cr_assert_eq(mode_of(root, "/usr/local/bin/tapestry"), 0755);
	cr_assert_eq(mode_of(root, "/etc/tapestry"), 0750);
	cr_assert_eq(mode_of(root, "/var/lib/tapestry"), 0700);
	cr_assert_eq(mode_of(root, "/etc/tapestry/controller.yaml"), 0640);
	cr_assert_eq(mode_of(root, "/etc/tapestry/controller.yaml.example"), 0640);
	cr_assert_eq(mode_of(root, "/etc/systemd/system/tapestry.service"), 0644);
	cr_assert_eq(mode_of(root, "/usr/local/share/tapestry/examples/kickstart/tapestry.yaml"),
		     0644);
	cr_assert_eq(mode_of(root, "/usr/local/share/tapestry/deploy/cloudformation/"
				   "controller-host.yaml"),
		     0644);
	unit = ts_read_in(root, "etc/systemd/system/tapestry.service");
	want_unit = ts_read_in(TP_SOURCE_DIR, "deploy/tapestry.service");
	cr_assert_str_eq(unit, want_unit, "the default prefix needs no rewriting");
	free(unit);
	{
		char *cmp = tp_sprintf("cmp '%s' '%s/usr/local/bin/tapestry'", TP_BINARY, root);
		char *cmp_out = NULL;
		cr_assert_eq(run_cmd(cmp, &cmp_out), 0, "the installed binary differs: %s",
			     cmp_out);
		free(cmp_out);
		free(cmp);
	}
	ts_expect_file(root, "etc/tapestry/controller.yaml",
		       "repository: {url: https://example.com/p.git}\n");

	/* again: nothing changes, not even a timestamp */
	before = ts_snapshot(root);
	out = install(root, cfg_arg);
	cr_assert(strstr(out, "nothing changed"), "%s", out);
	free(out);
	after = ts_snapshot(root);
	cr_assert_str_eq(before, after, "a second run changed the installation");
	free(before);
	free(after);

	/* a new config replaces the old one; a file the release no longer has goes away; a
	 * config given no more is kept */
	ts_write(tmp, "my-controller.yaml", "repository: {url: https://example.com/q.git}\n");
	stray = tp_sprintf("%s/usr/local/share/tapestry/examples/kickstart/resources/old.yaml",
			   root);
	ts_write(root, "usr/local/share/tapestry/examples/kickstart/resources/old.yaml", "x\n");
	out = install(root, cfg_arg);
	cr_assert(strstr(out, "/etc/tapestry/controller.yaml\n"), "%s", out);
	cr_assert(strstr(out, "resources/old.yaml (removed)"), "%s", out);
	free(out);
	cr_assert_neq(access(stray, F_OK), 0, "%s survived", stray);
	out = install(root, NULL);
	cr_assert(strstr(out, "nothing changed"), "%s", out);
	free(out);
	ts_expect_file(root, "etc/tapestry/controller.yaml",
		       "repository: {url: https://example.com/q.git}\n");

	/* the installed binary finds the kickstart example installed beside it */
	bin = tp_sprintf("%s/usr/local/bin/tapestry", root);
	cmd = tp_sprintf("cd '%s' && env -u TAPESTRY_EXAMPLES '%s' init --no-git ks --kickstart",
			 tmp, bin);
	cr_assert_eq(run_cmd(cmd, &init_out), 0, "%s", init_out);
	cr_assert(strstr(init_out, "/root/usr/local/share/tapestry/examples/kickstart"), "%s",
		  init_out);
	free(init_out);
	free(cmd);
	free(bin);
	free(stray);
	free(want_unit);
	free(cfg_arg);
	free(cfg_path);
	free(root);
}

Test(install, from_a_release_archive_with_another_prefix)
{
	char *out = NULL, *cmd, *archive, *unit, *dist;
	char *root = tp_sprintf("%s/root", tmp);
	cmd = tp_sprintf("bash '%s/deploy/package.sh' --binary '%s' --out '%s/dist'", TP_SOURCE_DIR,
			 TP_BINARY, tmp);
	cr_assert_eq(run_cmd(cmd, &out), 0, "%s", out);
	free(cmd);
	archive = tp_strndup(out, strcspn(out, "\n"));
	cr_assert(strstr(archive, "/dist/tapestry-") && strstr(archive, ".tar.gz"), "%s", out);
	free(out);
	/* the checksum file the template's ArtifactSha256 takes, in sha256sum -c form */
	cmd = tp_sprintf("cd '%s/dist' && sha256sum -c ./*.sha256", tmp);
	cr_assert_eq(run_cmd(cmd, &out), 0, "%s", out);
	free(out);
	free(cmd);
	/* what the host's user data does: unpack, then the archive's own install.sh */
	cmd = tp_sprintf("mkdir -p '%s/unpacked' && tar -xzf '%s' -C '%s/unpacked'", tmp, archive,
			 tmp);
	cr_assert_eq(run_cmd(cmd, &out), 0, "%s", out);
	free(out);
	free(cmd);
	cmd = tp_sprintf("ls -d '%s'/unpacked/tapestry-*", tmp);
	cr_assert_eq(run_cmd(cmd, &out), 0, "%s", out);
	dist = tp_strndup(out, strcspn(out, "\n"));
	free(out);
	free(cmd);
	cmd = tp_sprintf("bash '%s/install.sh' --root '%s' --prefix /opt/tapestry", dist, root);
	cr_assert_eq(run_cmd(cmd, &out), 0, "%s\n%s", cmd, out);
	free(out);
	free(cmd);
	cr_assert_eq(mode_of(root, "/opt/tapestry/bin/tapestry"), 0755);
	cr_assert_eq(mode_of(root, "/opt/tapestry/share/tapestry/examples/kickstart/tapestry.yaml"),
		     0644);
	unit = ts_read_in(root, "etc/systemd/system/tapestry.service");
	cr_assert(strstr(unit, "\nExecStart=/opt/tapestry/bin/tapestry run --config "
			       "/etc/tapestry/controller.yaml\n"),
		  "%s", unit);
	cr_assert_null(strstr(unit, "/usr/local/"), "%s", unit);
	free(unit);
	free(dist);
	free(archive);
	free(root);
}

Test(install, unit_is_valid_and_hardened)
{
	char *unit = ts_read_in(TP_SOURCE_DIR, "deploy/tapestry.service");
	char *local, *path, *cmd, *out = NULL;
	static const char *const required[] = {
		"\nType=notify\n", "\nWatchdogSec=", "\nRestart=on-failure\n",
		"\nExecReload=/bin/kill -HUP $MAINPID\n", "\nUser=tapestry\n",
		"\nStateDirectory=tapestry\n", "\nProtectSystem=strict\n", "\nProtectHome=yes\n",
		"\nPrivateTmp=yes\n", "\nNoNewPrivileges=yes\n", "\nCapabilityBoundingSet=\n",
		"\nRestrictAddressFamilies=", "\nSystemCallFilter=@system-service\n",
		"\nMemoryDenyWriteExecute=yes\n", NULL};
	for (const char *const *r = required; *r; r++)
		cr_assert(strstr(unit, *r), "deploy/tapestry.service lacks %s", *r + 1);
	cr_assert_eq(run_cmd("systemd-analyze --version", &out), 0,
		     "systemd-analyze is missing (%s): install it with `apt-get install systemd`",
		     out);
	free(out);
	/* verify checks that ExecStart exists: point it at the binary just built */
	local = ts_replace(unit, "/usr/local/bin/tapestry", TP_BINARY);
	ts_write(tmp, "tapestry.service", local);
	path = tp_sprintf("%s/tapestry.service", tmp);
	cmd = tp_sprintf("systemd-analyze verify '%s'", path);
	cr_assert_eq(run_cmd(cmd, &out), 0, "%s", out);
	cr_assert_str_eq(out, "", "systemd-analyze verify complained:\n%s", out);
	free(out);
	free(cmd);
	/* exposure 0 (locked down) .. 10 (none): stay at or under 2.0 */
	cmd = tp_sprintf("systemd-analyze security --offline=yes --threshold=20 '%s'", path);
	cr_assert_eq(run_cmd(cmd, &out), 0, "exposure above 2.0:\n%s", out);
	cr_assert(strstr(out, "Overall exposure level for tapestry.service: "), "%s", out);
	free(out);
	free(cmd);
	free(path);
	free(local);
	free(unit);
}

Test(install, example_controller_config_loads)
{
	char *text = ts_read_in(TP_SOURCE_DIR, "deploy/controller.yaml");
	char *local = ts_replace(text, "/etc/tapestry/", "TMP/");
	char *mine = ts_replace(local, "TMP", tmp);
	char *path = tp_sprintf("%s/controller.yaml", tmp);
	tp_controller_config cfg;
	tp_diags d = {0};
	ts_write(tmp, "controller.yaml", mine);
	ts_write(tmp, "github_token", "ghp_x\n");
	ts_write(tmp, "api_token", "api\n");
	ts_write(tmp, "webhook_secret", "hook\n");
	cr_assert_eq(tp_controller_config_load(&cfg, path, &d), 0, "%s",
		     d.len ? d.items[0].msg : tp_error_last());
	cr_assert_str_eq(cfg.repo_url, "https://github.com/rainshield/data-pipeline.git");
	cr_assert_str_eq(cfg.path, "pipelines/rainshield");
	cr_assert_str_eq(cfg.state_dir, "/var/lib/tapestry");
	cr_assert_str_eq(cfg.listen, "0.0.0.0:7777");
	cr_assert_not_null(cfg.api_token);
	cr_assert_not_null(cfg.token);
	cr_assert_not_null(cfg.github_secret);
	cr_assert_eq(cfg.poll_ms, 60000);
	cr_assert_eq(cfg.drift_ms, 600000);
	tp_controller_config_clear(&cfg);
	tp_diags_free(&d);
	free(path);
	free(mine);
	free(local);
	free(text);
}

Test(install, scripts_pass_shellcheck)
{
	char *out = NULL, *cmd;
	cr_assert_eq(run_cmd("shellcheck --version", &out), 0,
		     "shellcheck is missing (%s): install it with `apt-get install shellcheck`",
		     out);
	free(out);
	cmd = tp_sprintf("cd '%s' && shellcheck deploy/install.sh deploy/package.sh "
			 "deploy/ci/plan-comment.sh", TP_SOURCE_DIR);
	cr_assert_eq(run_cmd(cmd, &out), 0, "%s", out);
	free(out);
	free(cmd);
}
