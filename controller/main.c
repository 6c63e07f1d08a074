/*
 * tapestry — entry point. Dispatches to one subcommand per file (controller/cmd_*.c) and maps
 * their result to an exit status in one place (tp_cli_exit_status).
 */
#include "controller.h"

#include <stdio.h>
#include <string.h>

static const tp_command commands[] = {
	{"init", tp_cmd_init, "start a pipeline repository (a skeleton, or the kickstart example)",
	 "tapestry init DIR [--kickstart] [--name NAME] [--no-git]"},
	{"validate", tp_cmd_validate, "check a pipeline directory and report every error",
	 "tapestry validate [DIR] [--json]"},
	{"plan", tp_cmd_plan, "show what applying the pipeline would change",
	 "tapestry plan [DIR | --repo URL|DIR [--rev REV] [--base REV] [--path SUBDIR]] "
	 "[--state FILE] [--format text|markdown|json] [--detailed-exitcode] "
	 "[--allow-mass-delete] [--refresh] [--refresh-schemas]"},
	{"apply", tp_cmd_apply, "make live match the pipeline: plan, confirm, apply",
	 "tapestry apply [DIR | --repo URL|DIR [--rev REV] [--path SUBDIR]] --state FILE "
	 "[--auto-approve] [--allow-mass-delete] [--no-refresh] [--refresh-schemas] "
	 "[--concurrency=N]"},
	{"run", tp_cmd_run, "run the controller: follow a Git branch and keep live in sync",
	 "tapestry run [--config FILE] [--repo URL] [--branch B] [--path DIR] [--state-dir DIR] "
	 "[--listen ADDR] [--poll-interval 60s] [--drift-interval 10m] [--plan-only] "
	 "[--suspend] [--once | --max-syncs N]"},
	{"status", tp_cmd_status, "what is managed and how it stands (from the state file)",
	 "tapestry status --state FILE [--api http://127.0.0.1:7777] [--json]"},
	{"history", tp_cmd_history, "the runs Tapestry made, newest first",
	 "tapestry history --state FILE [--limit N] [--json]"},
	{"events", tp_cmd_events, "what happened to resources, newest first",
	 "tapestry events --state FILE [--resource ADDRESS] [--limit N] [--json]"},
	{"kinds", tp_cmd_kinds, "list the resource kinds and their fields",
	 "tapestry kinds [KIND]"},
	{"version", tp_cmd_version, "print the version", "tapestry version"},
};

static void usage(FILE *f)
{
	fputs("Tapestry: a GitOps controller for data pipelines.\n\n"
	      "Usage: tapestry <command> [options]\n\nCommands:\n", f);
	for (size_t i = 0; i < sizeof(commands) / sizeof(*commands); i++)
		fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].summary);
	fputs("\nRun `tapestry <command> --help` for a command's options.\n", f);
}

int tp_cli_exit_status(const tp_command *cmd, int rc)
{
	if (rc >= 0)
		return rc;
	if (rc == TP_EUSAGE) {
		fprintf(stderr, "Error: %s\nUsage: %s\n", tp_error_last(), cmd ? cmd->usage : "");
		return 64;
	}
	if (tp_error_last()[0])
		fprintf(stderr, "Error: %s\n", tp_error_last());
	return 1;
}

int main(int argc, char **argv)
{
	tp_log_init_from_env();
	if (argc < 2 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0 ||
	    strcmp(argv[1], "help") == 0) {
		usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? 64 : 0;
	}
	if (strcmp(argv[1], "--version") == 0)
		return tp_cli_exit_status(NULL, tp_cmd_version(1, argv + 1));
	for (size_t i = 0; i < sizeof(commands) / sizeof(*commands); i++) {
		if (strcmp(argv[1], commands[i].name) == 0) {
			for (int a = 2; a < argc; a++) {
				if (strcmp(argv[a], "--help") == 0 || strcmp(argv[a], "-h") == 0) {
					printf("Usage: %s\n\n%s\n", commands[i].usage,
					       commands[i].summary);
					return 0;
				}
			}
			return tp_cli_exit_status(&commands[i],
						  commands[i].run(argc - 1, argv + 1));
		}
	}
	fprintf(stderr, "Error: unknown command \"%s\"\n\n", argv[1]);
	usage(stderr);
	return 64;
}
