/*
 * Plain-text tables for the read-only commands (status, history, events): columns sized to
 * their content, capped in width, control characters replaced so state contents cannot send
 * escape sequences to a terminal.
 */
#include "controller.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_COL 60

void tp_table_print(FILE *f, const char *const *headers, size_t ncols, const json_t *rows)
{
	size_t width[16] = {0};
	size_t i, c;
	json_t *row;
	if (ncols > 16)
		ncols = 16;
	for (c = 0; c < ncols; c++)
		width[c] = strlen(headers[c]);
	json_array_foreach(rows, i, row) {
		for (c = 0; c < ncols; c++) {
			const char *v = json_string_value(json_array_get(row, c));
			size_t n = v ? strlen(v) : 1;
			if (n > MAX_COL)
				n = MAX_COL;
			if (n > width[c])
				width[c] = n;
		}
	}
	for (c = 0; c < ncols; c++)
		fprintf(f, "%-*s%s", c + 1 < ncols ? (int)width[c] : 0, headers[c],
			c + 1 < ncols ? "  " : "\n");
	json_array_foreach(rows, i, row) {
		for (c = 0; c < ncols; c++) {
			const char *v = json_string_value(json_array_get(row, c));
			char cell[MAX_COL + 1];
			size_t n = 0;
			for (const char *p = v ? v : "-"; *p && n < MAX_COL; p++)
				cell[n++] = (unsigned char)*p < 0x20 ? '?' : *p;
			if (v && strlen(v) > MAX_COL)
				memcpy(cell + MAX_COL - 3, "...", 3);
			cell[n] = '\0';
			fprintf(f, "%-*s%s", c + 1 < ncols ? (int)width[c] : 0, cell,
				c + 1 < ncols ? "  " : "\n");
		}
	}
}

char *tp_format_time(int64_t ms)
{
	char buf[40];
	if (ms <= 0)
		return tp_strdup("-");
	tp_clock_format_rfc3339(buf, sizeof(buf), ms);
	buf[19] = '\0'; /* seconds are enough for people */
	buf[10] = ' ';
	return tp_strdup(buf);
}

int tp_open_state_for_reading(tp_state **out, const char *path)
{
	int rc = tp_state_open(out, path, TP_STATE_READONLY);
	if (rc == TP_ENOTFOUND)
		rc = tp_error_set(rc, "no state at %s: nothing has been applied with it yet", path);
	return rc;
}

void tp_print_json(const json_t *v)
{
	char *text = json_dumps(v, JSON_INDENT(2) | JSON_SORT_KEYS);
	puts(text ? text : "null");
	free(text);
}

int tp_cli_read_args(tp_read_args *a, int argc, char **argv, unsigned allowed)
{
	for (int i = 1; i < argc; i++) {
		const char *arg = argv[i];
		bool has_value = i + 1 < argc;
		if (strcmp(arg, "--state") == 0 && has_value)
			a->state = argv[++i];
		else if ((allowed & TP_READ_RESOURCE) && strcmp(arg, "--resource") == 0 && has_value)
			a->resource = argv[++i];
		else if ((allowed & TP_READ_API) && strcmp(arg, "--api") == 0 && has_value)
			a->api = argv[++i];
		else if ((allowed & TP_READ_LIMIT) && strcmp(arg, "--limit") == 0 && has_value)
			a->limit = atoi(argv[++i]);
		else if (strcmp(arg, "--json") == 0)
			a->json = true;
		else
			return tp_error_set(TP_EUSAGE, "unknown option %s", arg);
	}
	if (!a->state)
		return tp_error_set(TP_EUSAGE, "--state FILE is required");
	if ((allowed & TP_READ_LIMIT) && (a->limit < 1 || a->limit > 10000))
		return tp_error_set(TP_EUSAGE, "--limit takes 1 to 10000");
	return 0;
}
