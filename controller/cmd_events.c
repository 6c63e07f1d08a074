/*
 * `tapestry events --state FILE [--resource ADDRESS] [--limit N] [--json]`: what happened to
 * resources (applied, failed, drift, recovered, refused plans), newest first.
 */
#include "controller.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int tp_cmd_events(int argc, char **argv)
{
	const char *path = NULL, *address = NULL;
	bool as_json = false;
	int limit = 50;
	tp_state *st = NULL;
	json_t *events = NULL, *rows = json_array();
	size_t i;
	json_t *ev;
	int rc = 0;

	tp_read_args ra = {.limit = 50};
	if ((rc = tp_cli_read_args(&ra, argc, argv, TP_READ_RESOURCE | TP_READ_LIMIT)) < 0)
		goto done;
	path = ra.state;
	address = ra.resource;
	limit = ra.limit;
	as_json = ra.json;
	if ((rc = tp_open_state_for_reading(&st, path)) < 0 ||
	    (rc = tp_state_events_list(&events, st, address, limit)) < 0)
		goto done;
	if (as_json) {
		tp_print_json(events);
		goto done;
	}
	json_array_foreach(events, i, ev) {
		char *when = tp_format_time(json_integer_value(json_object_get(ev, "ts_ms")));
		const char *addr = tp_json_get_str(ev, "address");
		json_array_append_new(rows, json_pack("[s,s,s,s,s]", when,
						      tp_json_get_str(ev, "level")
							      ? tp_json_get_str(ev, "level")
							      : "-",
						      addr ? addr : "-",
						      tp_json_get_str(ev, "type")
							      ? tp_json_get_str(ev, "type")
							      : "-",
						      tp_json_get_str(ev, "message")
							      ? tp_json_get_str(ev, "message")
							      : ""));
		free(when);
	}
	{
		static const char *const headers[] = {"TIME", "LEVEL", "RESOURCE", "EVENT",
						      "MESSAGE"};
		tp_table_print(stdout, headers, 5, rows);
	}
done:
	json_decref(rows);
	json_decref(events);
	tp_state_close(st);
	return rc;
}
