/*
 * `tapestry history --state FILE [--limit N] [--json]`: the runs Tapestry made, newest first:
 * when, why (trigger), which revision, the result and what changed.
 */
#include "controller.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int tp_cmd_history(int argc, char **argv)
{
	const char *path = NULL;
	bool as_json = false;
	int limit = 20;
	tp_state *st = NULL;
	json_t *runs = NULL, *rows = json_array();
	size_t i;
	json_t *run;
	int rc = 0;

	tp_read_args ra = {.limit = 20};
	if ((rc = tp_cli_read_args(&ra, argc, argv, TP_READ_LIMIT)) < 0)
		goto done;
	path = ra.state;
	limit = ra.limit;
	as_json = ra.json;
	if ((rc = tp_open_state_for_reading(&st, path)) < 0 ||
	    (rc = tp_state_runs_list(&runs, st, limit)) < 0)
		goto done;
	if (as_json) {
		tp_print_json(runs);
		goto done;
	}
	json_array_foreach(runs, i, run) {
		int64_t start = json_integer_value(json_object_get(run, "started_ms"));
		int64_t end = json_integer_value(json_object_get(run, "ended_ms"));
		const json_t *c = json_object_get(run, "counts");
		char id[24], dur[24], rev[13] = "-", changes[160] = "-";
		char *when = tp_format_time(start);
		const char *r = tp_json_get_str(run, "revision");
		snprintf(id, sizeof(id), "%lld", (long long)json_integer_value(json_object_get(run,
											      "id")));
		if (end > 0)
			snprintf(dur, sizeof(dur), "%.1fs", (double)(end - start) / 1000.0);
		else
			snprintf(dur, sizeof(dur), "running");
		if (r)
			snprintf(rev, sizeof(rev), "%.12s", r);
		if (json_is_object(c))
			snprintf(changes, sizeof(changes),
				 "+%lld ~%lld -/+%lld -%lld failed %lld",
				 (long long)json_integer_value(json_object_get(c, "created")),
				 (long long)json_integer_value(json_object_get(c, "updated")),
				 (long long)json_integer_value(json_object_get(c, "replaced")),
				 (long long)json_integer_value(json_object_get(c, "deleted")),
				 (long long)json_integer_value(json_object_get(c, "failed")));
		json_array_append_new(rows, json_pack("[s,s,s,s,s,s,s]", id, when, dur,
						      tp_json_get_str(run, "trigger")
							      ? tp_json_get_str(run, "trigger")
							      : "-",
						      rev,
						      tp_json_get_str(run, "result")
							      ? tp_json_get_str(run, "result")
							      : "-",
						      changes));
		free(when);
	}
	{
		static const char *const headers[] = {"RUN", "STARTED", "TOOK", "TRIGGER",
						      "REVISION", "RESULT", "CHANGES"};
		tp_table_print(stdout, headers, 7, rows);
	}
done:
	json_decref(rows);
	json_decref(runs);
	tp_state_close(st);
	return rc;
}
