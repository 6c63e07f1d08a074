/*
 * controller — the program: main(), one file per CLI subcommand, and (as they arrive) the
 * reconcile loop, the Git source and the HTTP server.
 *
 * Subcommands return 0 on success, TP_EXIT_CHANGES when --detailed-exitcode reports changes,
 * or a negative TP_E* code with the message set; main() alone turns that into an exit status
 * and prints the message, so every command fails the same way.
 */
#ifndef TP_CONTROLLER_H
#define TP_CONTROLLER_H

#include "../util/util.h"

#define TP_EXIT_CHANGES 2 /* returned by a command: success, and the plan has changes */
#define TP_EUSAGE (-100)  /* bad command line: message set, usage hint printed */

typedef struct {
	const char *name;
	int (*run)(int argc, char **argv); /* argv[0] is the subcommand name */
	const char *summary;
	const char *usage;
} tp_command;

int tp_cmd_validate(int argc, char **argv);
int tp_cmd_plan(int argc, char **argv);
int tp_cmd_version(int argc, char **argv);
int tp_cmd_kinds(int argc, char **argv);

/* Prints "Error: <message>" (or usage) and returns the process exit status for rc. */
int tp_cli_exit_status(const tp_command *cmd, int rc);

#endif
