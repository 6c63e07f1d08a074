/*
 * The controller's configuration file (tp_controller_config_load): the history: section that
 * bounds the state database, its defaults, and values refused with file:line:col — by the
 * schema (counts out of range, unknown keys) and after it (durations that do not parse).
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "controller/controller.h"
#include "support/support.h"

typedef struct {
	char *dir;
	char *path;
	tp_controller_config cfg;
	tp_diags d;
	int rc;
} loaded;

static void load(loaded *l, const char *rest)
{
	char *text = tp_sprintf("repository:\n  url: file:///srv/pipeline.git\n%s", rest);
	memset(l, 0, sizeof(*l));
	l->dir = ts_tmpdir();
	l->path = tp_sprintf("%s/controller.yaml", l->dir);
	ts_write(l->dir, "controller.yaml", text);
	l->rc = tp_controller_config_load(&l->cfg, l->path, &l->d);
	free(text);
}

static void unload(loaded *l)
{
	tp_controller_config_clear(&l->cfg);
	tp_diags_free(&l->d);
	ts_rmtree(l->dir);
	free(l->dir);
	free(l->path);
}

/* Exactly one diagnostic, for the config file, at line:col, whose message has needle. */
static void assert_one_diag(const loaded *l, int line, int col, const char *needle)
{
	cr_assert_eq(l->rc, TP_EINVALID);
	cr_assert_eq(l->d.len, 1, "%zu diagnostics (first: %s)", l->d.len,
		     l->d.len ? l->d.items[0].msg : "-");
	cr_assert_str_eq(l->d.items[0].file, l->path);
	cr_assert(strstr(l->d.items[0].msg, needle), "\"%s\" lacks \"%s\"", l->d.items[0].msg,
		  needle);
	cr_assert_eq(l->d.items[0].line, line, "line %d, want %d (%s)", l->d.items[0].line, line,
		     l->d.items[0].msg);
	cr_assert_eq(l->d.items[0].col, col, "col %d, want %d (%s)", l->d.items[0].col, col,
		     l->d.items[0].msg);
}

Test(config, history_defaults)
{
	loaded l;
	tp_controller_config none;
	tp_diags d = {0};
	load(&l, "");
	cr_assert_eq(l.rc, 0, "%s", l.d.len ? l.d.items[0].msg : tp_error_last());
	cr_assert_eq(l.cfg.history.runs, TP_STATE_KEEP_RUNS);
	cr_assert_eq(l.cfg.history.revisions, TP_STATE_KEEP_REVISIONS);
	cr_assert_eq(l.cfg.history.events, TP_STATE_KEEP_EVENTS);
	cr_assert_eq(l.cfg.history.event_age_ms, TP_STATE_KEEP_EVENT_AGE_MS);
	unload(&l);
	/* no file at all: the same */
	cr_assert_eq(tp_controller_config_load(&none, NULL, &d), 0);
	cr_assert_eq(none.history.runs, TP_STATE_KEEP_RUNS);
	cr_assert_eq(none.history.event_age_ms, TP_STATE_KEEP_EVENT_AGE_MS);
	tp_controller_config_clear(&none);
}

Test(config, history_values)
{
	loaded l;
	load(&l, "history:\n  runs: 50\n  revisions: 20\n  events: 500\n  event_max_age: 7d\n");
	cr_assert_eq(l.rc, 0, "%s", l.d.len ? l.d.items[0].msg : tp_error_last());
	cr_assert_eq(l.cfg.history.runs, 50);
	cr_assert_eq(l.cfg.history.revisions, 20);
	cr_assert_eq(l.cfg.history.events, 500);
	cr_assert_eq(l.cfg.history.event_age_ms, 7LL * 86400000);
	unload(&l);
	/* some keys only, flow style; 0s turns the age limit off */
	load(&l, "history: {events: 100, event_max_age: 0s}\n");
	cr_assert_eq(l.rc, 0, "%s", l.d.len ? l.d.items[0].msg : tp_error_last());
	cr_assert_eq(l.cfg.history.runs, TP_STATE_KEEP_RUNS);
	cr_assert_eq(l.cfg.history.events, 100);
	cr_assert_eq(l.cfg.history.event_age_ms, 0);
	unload(&l);
}

Test(config, history_count_out_of_range)
{
	loaded l;
	load(&l, "history:\n  runs: 0\n");
	assert_one_diag(&l, 4, 9, "history.runs: 0 is out of range (1 to 100000000)");
	unload(&l);
	load(&l, "history:\n  events: -3\n");
	assert_one_diag(&l, 4, 11, "history.events: -3 is out of range");
	unload(&l);
	load(&l, "history: {revisions: lots}\n");
	assert_one_diag(&l, 3, 22, "history.revisions: expected an integer");
	unload(&l);
}

Test(config, history_age_that_does_not_parse)
{
	loaded l;
	load(&l, "poll_interval: 60s\nhistory:\n  runs: 10\n  event_max_age: a month\n");
	assert_one_diag(&l, 6, 18, "history.event_max_age: ");
	cr_assert(strstr(l.d.items[0].msg, "a month"), "%s", l.d.items[0].msg);
	unload(&l);
	/* flow style, quoted */
	load(&l, "history: {runs: 10, event_max_age: \"30\"}\n");
	assert_one_diag(&l, 3, 36, "history.event_max_age: ");
	unload(&l);
}

Test(config, history_unknown_key)
{
	loaded l;
	load(&l, "history:\n  run: 10\n");
	assert_one_diag(&l, 4, 3, "did you mean \"runs\"");
	unload(&l);
}

/* The intervals are durations too: placed the same way. */
Test(config, intervals_that_do_not_parse)
{
	loaded l;
	load(&l, "poll_interval: often\n");
	assert_one_diag(&l, 3, 16, "poll_interval: ");
	unload(&l);
	load(&l, "state_dir: /tmp\ndrift_interval: 10 minutes\n");
	assert_one_diag(&l, 4, 17, "drift_interval: ");
	unload(&l);
}

Test(config, credentials_in_the_url_are_placed)
{
	loaded l;
	memset(&l, 0, sizeof(l));
	l.dir = ts_tmpdir();
	l.path = tp_sprintf("%s/controller.yaml", l.dir);
	ts_write(l.dir, "controller.yaml",
		 "listen: 127.0.0.1:7777\nrepository:\n  branch: main\n"
		 "  url: https://user:pw@example.com/r.git\n");
	l.rc = tp_controller_config_load(&l.cfg, l.path, &l.d);
	assert_one_diag(&l, 4, 8, "repository.url: credentials in the URL are refused");
	unload(&l);
}
