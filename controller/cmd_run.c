/*
 * `tapestry run`: the controller as a service. Reads /etc/tapestry/controller.yaml (or
 * --config), lets flags override it, installs the signal handlers (SIGTERM/SIGINT: finish the
 * actions in flight, start no new ones, exit 0; SIGHUP: reload the configuration) and runs
 * the reconcile loop.
 */
#include "controller.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define DEFAULT_CONFIG "/etc/tapestry/controller.yaml"

static volatile int stop_flag;
static volatile int reload_flag;

static void on_stop(int sig)
{
	(void)sig;
	stop_flag = 1;
}

static void on_hup(int sig)
{
	(void)sig;
	reload_flag = 1;
}

static int take_value(char **dst, int *i, int argc, char **argv, const char *flag)
{
	const char *arg = argv[*i];
	size_t n = strlen(flag);
	if (strncmp(arg, flag, n) == 0 && arg[n] == '=') {
		free(*dst);
		*dst = tp_strdup(arg + n + 1);
		return 1;
	}
	if (strcmp(arg, flag) == 0) {
		if (*i + 1 >= argc)
			return tp_error_set(TP_EUSAGE, "%s needs a value", flag);
		free(*dst);
		*dst = tp_strdup(argv[++*i]);
		return 1;
	}
	return 0;
}

int tp_cmd_run(int argc, char **argv)
{
	tp_controller_config cfg;
	tp_diags diags = {0};
	const char *config_path = NULL;
	char *poll = NULL, *drift = NULL, *once = NULL;
	struct sigaction sa;
	int rc = 0;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--config") == 0 && i + 1 < argc)
			config_path = argv[++i];
		else if (strncmp(argv[i], "--config=", 9) == 0)
			config_path = argv[i] + 9;
	}
	if (!config_path && access(DEFAULT_CONFIG, F_OK) == 0)
		config_path = DEFAULT_CONFIG;
	rc = tp_controller_config_load(&cfg, config_path, &diags);
	if (rc < 0) {
		tp_diags_print(&diags, stderr);
		goto done;
	}
	for (int i = 1; i < argc; i++) {
		int r = 0;
		if (strcmp(argv[i], "--config") == 0) {
			i++;
			continue;
		}
		if (strncmp(argv[i], "--config=", 9) == 0)
			continue;
		if ((r = take_value(&cfg.repo_url, &i, argc, argv, "--repo")) ||
		    (r = take_value(&cfg.branch, &i, argc, argv, "--branch")) ||
		    (r = take_value(&cfg.path, &i, argc, argv, "--path")) ||
		    (r = take_value(&cfg.state_dir, &i, argc, argv, "--state-dir")) ||
		    (r = take_value(&cfg.listen, &i, argc, argv, "--listen")) ||
		    (r = take_value(&poll, &i, argc, argv, "--poll-interval")) ||
		    (r = take_value(&drift, &i, argc, argv, "--drift-interval")) ||
		    (r = take_value(&once, &i, argc, argv, "--max-syncs"))) {
			if (r < 0) {
				rc = r;
				goto done;
			}
			continue;
		}
		if (strcmp(argv[i], "--plan-only") == 0)
			cfg.plan_only = true;
		else if (strcmp(argv[i], "--suspend") == 0)
			cfg.suspend = true;
		else if (strcmp(argv[i], "--once") == 0)
			cfg.max_syncs = 1;
		else if (strcmp(argv[i], "--allow-mass-delete") == 0)
			cfg.allow_mass_delete = true;
		else {
			rc = tp_error_set(TP_EUSAGE, "unknown option %s", argv[i]);
			goto done;
		}
	}
	if (poll && (rc = tp_duration_parse(&cfg.poll_ms, poll)) < 0)
		goto done;
	if (drift && (rc = tp_duration_parse(&cfg.drift_ms, drift)) < 0)
		goto done;
	if (once) {
		cfg.max_syncs = atoi(once);
		if (cfg.max_syncs < 1) {
			rc = tp_error_set(TP_EUSAGE, "--max-syncs takes a positive number");
			goto done;
		}
	}

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_stop;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sa.sa_handler = on_hup;
	sigaction(SIGHUP, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	rc = tp_controller_run(&cfg, config_path, &stop_flag, &reload_flag);
done:
	free(poll);
	free(drift);
	free(once);
	tp_controller_config_clear(&cfg);
	tp_diags_free(&diags);
	return rc;
}
