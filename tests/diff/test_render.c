/* diff/render.c: text, Markdown and JSON plan output from hand-built plans; secrets never
 * printed in any format. */
#include <criterion/criterion.h>
#include <string.h>

#include "diff/diff.h"

#define CANARY "CANARY-s3cr3t-7f1d"

/* ---------------------------------------------------------------- building plans by hand */

static tp_plan *plan_new(const char *pipeline, size_t n)
{
	tp_plan *p = tp_calloc(1, sizeof(*p));
	p->pipeline = tp_strdup(pipeline);
	p->entries = tp_calloc(n ? n : 1, sizeof(tp_plan_entry));
	p->len = n;
	return p;
}

static tp_plan_entry *entry_set(tp_plan *p, size_t i, const char *kind, const char *name,
				tp_action action, const char *reason)
{
	tp_plan_entry *e = &p->entries[i];
	e->kind = tp_registry_kind(kind);
	cr_assert_not_null(e->kind, "kind %s", kind);
	e->address = tp_sprintf("%s/%s", kind, name);
	e->name = tp_strdup(name);
	e->action = action;
	e->reason = reason ? tp_strdup(reason) : NULL;
	return e;
}

/* Appends a change; steals before and after. */
static tp_change *change_add(tp_change **list, size_t *n, const char *path, json_t *before,
			     json_t *after)
{
	tp_change *c;
	*list = tp_realloc(*list, (*n + 1) * sizeof(tp_change));
	c = &(*list)[(*n)++];
	memset(c, 0, sizeof(*c));
	c->path = tp_strdup(path);
	c->before = before;
	c->after = after;
	return c;
}

static char *render(const tp_plan *p, tp_render_format fmt, bool color)
{
	tp_buf b;
	tp_buf_init(&b, 0);
	cr_assert_eq(tp_plan_render(&b, p, fmt, color), 0, "%s", tp_error_last());
	return tp_buf_detach(&b);
}

/* create, update (with reported drift), replace, delete, forget and a silent no-op. */
static tp_plan *sample_plan(void)
{
	tp_plan *p = plan_new("rainshield", 6);
	tp_plan_entry *e;

	e = entry_set(p, 0, "snowflake.warehouse", "loading", TP_ACTION_UPDATE,
		      "spec changed in Git");
	e->before = json_pack("{s:s,s:i,s:i}", "warehouse_size", "XSMALL", "max_cluster_count", 2,
			      "auto_suspend", 60);
	e->after = json_pack("{s:s,s:s,s:i}", "warehouse_size", "SMALL", "comment", "new",
			     "auto_suspend", 60);
	change_add(&e->changes, &e->nchanges, "warehouse_size", json_string("XSMALL"),
		   json_string("SMALL"));
	change_add(&e->changes, &e->nchanges, "comment", NULL, json_string("new"));
	change_add(&e->changes, &e->nchanges, "max_cluster_count", json_integer(2), NULL);
	change_add(&e->drift, &e->ndrift, "auto_suspend", json_integer(60), json_integer(300));

	e = entry_set(p, 1, "local.file", "env", TP_ACTION_CREATE, NULL);
	e->after = json_pack("{s:s,s:s}", "path", "/srv/app.env", "content", "(sensitive)");
	tp_strlist_push(&e->sensitive_paths, "content");

	e = entry_set(p, 2, "airbyte.source", "zoom", TP_ACTION_REPLACE,
		      "immutable field connector changed");
	e->before = json_pack("{s:s}", "connector", "zoom");
	e->after = json_pack("{s:s}", "connector", "zoom-v2");
	change_add(&e->changes, &e->nchanges, "connector", json_string("zoom"),
		   json_string("zoom-v2"))
		->forces_replacement = true;

	e = entry_set(p, 3, "aws.stack", "old", TP_ACTION_DELETE, "removed from Git");
	e->before = json_pack("{s:s}", "stack_name", "old");
	change_add(&e->changes, &e->nchanges, "stack_name", json_string("old"), NULL);

	e = entry_set(p, 4, "aws.ssm_parameter", "key", TP_ACTION_FORGET,
		      "removed from Git, lifecycle.deletion is retain");
	e->before = json_pack("{s:s}", "name", "/app/key");

	e = entry_set(p, 5, "local.file", "quiet", TP_ACTION_NOOP, "in sync");
	e->before = json_pack("{s:s}", "path", "/srv/quiet");
	e->after = json_pack("{s:s}", "path", "/srv/quiet");

	p->add = 2;
	p->change = 1;
	p->destroy = 2;
	p->forget = 1;
	p->drifted = 1;
	p->unchanged = 1;
	return p;
}

/* ---------------------------------------------------------------- text */

static const char sample_text[] =
	"Tapestry will perform the following actions:\n"
	"\n"
	"  # snowflake.warehouse/loading will be updated in-place\n"
	"  # (spec changed in Git)\n"
	"  ~ snowflake.warehouse \"loading\" {\n"
	"      ~ warehouse_size    = \"XSMALL\" -> \"SMALL\"\n"
	"      + comment           = \"new\"\n"
	"      - max_cluster_count = 2 -> null\n"
	"    }\n"
	"\n"
	"  # local.file/env will be created\n"
	"  + local.file \"env\" {\n"
	"      + content = (sensitive)\n"
	"      + path    = \"/srv/app.env\"\n"
	"    }\n"
	"\n"
	"  # airbyte.source/zoom must be replaced\n"
	"  # (immutable field connector changed)\n"
	"-/+ airbyte.source \"zoom\" {\n"
	"      ~ connector = \"zoom\" -> \"zoom-v2\" # forces replacement\n"
	"    }\n"
	"\n"
	"  # aws.stack/old will be destroyed\n"
	"  # (removed from Git)\n"
	"  - aws.stack \"old\" {\n"
	"      - stack_name = \"old\" -> null\n"
	"    }\n"
	"\n"
	"  # aws.ssm_parameter/key will be forgotten: removed from Git, lifecycle.deletion is "
	"retain; the object is kept\n"
	"  . aws.ssm_parameter \"key\"\n"
	"\n"
	"Drift: objects changed outside Tapestry\n"
	"\n"
	"  # snowflake.warehouse/loading: 1 field differs from what Tapestry applied (reported, "
	"not corrected: self_heal is off)\n"
	"  ~ auto_suspend = 60 -> 300\n"
	"\n"
	"Plan: 2 to add, 1 to change, 2 to destroy, 1 to forget.\n";

Test(render_text, full_plan_exact)
{
	tp_plan *p = sample_plan();
	char *out = render(p, TP_RENDER_TEXT, false);
	cr_assert_str_eq(out, sample_text);
	free(out);
	tp_plan_free(p);
}

Test(render_text, appends_to_the_buffer)
{
	tp_plan *p = plan_new("rainshield", 0);
	tp_buf b;
	tp_buf_init(&b, 0);
	tp_buf_puts(&b, "before\n");
	cr_assert_eq(tp_plan_render(&b, p, TP_RENDER_TEXT, false), 0);
	cr_assert_str_eq(tp_buf_cstr(&b),
			 "before\nNo changes. Live state matches the pipeline in Git.\n");
	tp_buf_free(&b);
	tp_plan_free(p);
}

Test(render_text, no_changes_with_and_without_drift)
{
	tp_plan *p = plan_new("rainshield", 2);
	tp_plan_entry *e;
	char *out;

	entry_set(p, 0, "local.file", "a", TP_ACTION_NOOP, "in sync");
	e = entry_set(p, 1, "snowflake.warehouse", "wh", TP_ACTION_NOOP, "drift");
	p->unchanged = 2;
	out = render(p, TP_RENDER_TEXT, false);
	cr_assert_str_eq(out, "No changes. Live state matches the pipeline in Git.\n");
	free(out);

	change_add(&e->drift, &e->ndrift, "auto_suspend", json_integer(60), json_integer(300));
	change_add(&e->drift, &e->ndrift, "comment", json_string("ours"), NULL);
	p->drifted = 1;
	out = render(p, TP_RENDER_TEXT, false);
	cr_assert_str_eq(out, "No changes. Live state matches the pipeline in Git.\n"
			      "\n"
			      "Drift: objects changed outside Tapestry\n"
			      "\n"
			      "  # snowflake.warehouse/wh: 2 fields differ from what Tapestry "
			      "applied (reported, not corrected: self_heal is off)\n"
			      "  ~ auto_suspend = 60 -> 300\n"
			      "  - comment      = \"ours\" -> null\n");
	free(out);
	tp_plan_free(p);
}

Test(render_text, corrected_drift_and_summary_without_forget)
{
	tp_plan *p = plan_new("rainshield", 1);
	tp_plan_entry *e = entry_set(p, 0, "snowflake.warehouse", "wh", TP_ACTION_UPDATE,
				     "drift: live differs from Git, corrected (self_heal)");
	char *out;

	change_add(&e->changes, &e->nchanges, "auto_suspend", json_integer(300), json_integer(60));
	change_add(&e->drift, &e->ndrift, "auto_suspend", json_integer(60), json_integer(300));
	e->drift_corrected = true;
	p->change = 1;
	p->drifted = 1;
	out = render(p, TP_RENDER_TEXT, false);
	cr_assert(strstr(out, "(corrected by this plan: self_heal)\n"), "%s", out);
	cr_assert(strstr(out, "\nPlan: 0 to add, 1 to change, 0 to destroy.\n"), "%s", out);
	cr_assert_null(strstr(out, "forget"), "%s", out);
	free(out);
	tp_plan_free(p);
}

Test(render_text, errors_after_summary)
{
	tp_plan *p = sample_plan();
	char *out;
	tp_strlist_push(&p->errors, "aws.stack/old has lifecycle.prevent_destroy set");
	tp_strlist_push(&p->errors, "prune guard: too many");
	out = render(p, TP_RENDER_TEXT, false);
	cr_assert(strstr(out, "1 to forget.\n"
			      "\n"
			      "Error: aws.stack/old has lifecycle.prevent_destroy set\n"
			      "Error: prune guard: too many\n"
			      "\n"
			      "This plan cannot be applied.\n"),
		  "%s", out);
	free(out);
	tp_plan_free(p);
}

Test(render_text, colour_only_when_asked)
{
	tp_plan *p = sample_plan();
	char *plain = render(p, TP_RENDER_TEXT, false);
	char *colour = render(p, TP_RENDER_TEXT, true);
	char *md = render(p, TP_RENDER_MARKDOWN, true);
	char *json = render(p, TP_RENDER_JSON, true);

	cr_assert_null(strchr(plain, '\033'));
	cr_assert_null(strchr(md, '\033'));
	cr_assert_null(strchr(json, '\033'));
	cr_assert(strstr(colour, "\033[32m+\033[0m local.file"), "%s", colour);
	cr_assert(strstr(colour, "\033[33m~\033[0m warehouse_size"), "%s", colour);
	cr_assert(strstr(colour, "\033[31m-\033[0m max_cluster_count"), "%s", colour);
	cr_assert(strstr(colour, "\033[31m-\033[0m/\033[32m+\033[0m airbyte.source"), "%s",
		  colour);
	cr_assert(strstr(colour, "\033[1m# aws.stack/old will be destroyed\033[0m"), "%s", colour);
	free(plain);
	free(colour);
	free(md);
	free(json);
	tp_plan_free(p);
}

Test(render_text, control_characters_in_free_text_are_neutralised)
{
	tp_plan *p = plan_new("rainshield", 1);
	tp_plan_entry *e = entry_set(p, 0, "local.file", "x", TP_ACTION_UPDATE,
				     "evil \033[2J reason");
	char *out;
	change_add(&e->changes, &e->nchanges, "path", json_string("a\033b"), json_string("c"));
	tp_strlist_push(&p->errors, "bad\rthing");
	p->change = 1;
	out = render(p, TP_RENDER_TEXT, false);
	cr_assert_null(strchr(out, '\033'), "%s", out);
	cr_assert_null(strchr(out, '\r'), "%s", out);
	cr_assert(strstr(out, "# (evil ?[2J reason)"), "%s", out);
	cr_assert(strstr(out, "~ path = \"a\\u001Bb\" -> \"c\""), "%s", out);
	free(out);
	tp_plan_free(p);
}

/* ---------------------------------------------------------------- unknown values */

Test(render, unknown_values_print_known_after_apply)
{
	tp_plan *p = plan_new("rainshield", 2);
	tp_plan_entry *e;
	tp_change *c;
	char *text, *json;
	json_t *v = NULL, *ch;

	e = entry_set(p, 0, "airbyte.connection", "sf", TP_ACTION_CREATE, "new in Git");
	e->after = json_pack("{s:o,s:s}", "source", tp_unknown_new(), "status", "active");
	e = entry_set(p, 1, "airbyte.connection", "zoom", TP_ACTION_REPLACE,
		      "immutable field source changed");
	c = change_add(&e->changes, &e->nchanges, "source", json_string("abc"), tp_unknown_new());
	c->unknown = true;
	c->forces_replacement = true;
	p->add = 2;
	p->destroy = 1;

	text = render(p, TP_RENDER_TEXT, false);
	cr_assert(strstr(text, "      + source = (known after apply)\n"), "%s", text);
	cr_assert(strstr(text, "      ~ source = \"abc\" -> (known after apply) # forces "
			       "replacement\n"),
		  "%s", text);
	cr_assert_null(strstr(text, TP_UNKNOWN_KEY), "%s", text);

	json = render(p, TP_RENDER_JSON, false);
	cr_assert_null(strstr(json, TP_UNKNOWN_KEY), "%s", json);
	cr_assert_eq(tp_json_parse(&v, json, strlen(json)), 0);
	cr_assert_str_eq(json_string_value(tp_json_path_get(v, "resource_changes.0.after.source")),
			 "(known after apply)");
	ch = tp_json_path_get(v, "resource_changes.1.changes.0");
	cr_assert_str_eq(json_string_value(json_object_get(ch, "after")), "(known after apply)");
	cr_assert(json_is_true(json_object_get(ch, "unknown")));
	cr_assert(json_is_true(json_object_get(ch, "forces_replacement")));
	json_decref(v);
	free(text);
	free(json);
	tp_plan_free(p);
}

/* ---------------------------------------------------------------- sensitive values */

/* Every way a secret could reach a renderer when the plan builder forgot to redact. */
static tp_plan *leaky_plan(void)
{
	tp_plan *p = plan_new("rainshield", 4);
	tp_plan_entry *e;
	tp_change *c;

	/* create: a value at a sensitive path, not redacted */
	e = entry_set(p, 0, "local.file", "env", TP_ACTION_CREATE, "new in Git");
	e->after = json_pack("{s:s,s:s}", "path", "/srv/app.env", "content", "KEY=" CANARY);
	tp_strlist_push(&e->sensitive_paths, "content");

	/* update: a sensitive change carrying values, a change under a sensitive path, a change
	 * whose value holds a sensitive sub-path, a fingerprint, and a schema-sensitive field */
	e = entry_set(p, 1, "snowflake.user", "loader", TP_ACTION_UPDATE, "spec changed in Git");
	e->before = json_pack("{s:s,s:{s:s,s:s},s:s}", "password", CANARY, "nested", "secret",
			      CANARY, "plain", "x", "comment", "old");
	e->after = json_pack("{s:s,s:{s:s,s:s},s:s}", "password", CANARY "2", "nested", "secret",
			     CANARY "3", "plain", "y", "comment", "new");
	tp_strlist_push(&e->sensitive_paths, "nested.secret");
	tp_strlist_push(&e->sensitive_paths, "tokens.*.value");
	c = change_add(&e->changes, &e->nchanges, "password", json_string(CANARY),
		       json_string(CANARY "2"));
	c->sensitive = true;
	change_add(&e->changes, &e->nchanges, "nested.secret", json_string(CANARY),
		   json_string(CANARY "3"));
	change_add(&e->changes, &e->nchanges, "nested", json_pack("{s:s,s:s}", "secret", CANARY,
								  "plain", "x"),
		   json_pack("{s:s,s:s}", "secret", CANARY "3", "plain", "y"));
	change_add(&e->changes, &e->nchanges, "tokens",
		   json_pack("[{s:s}]", "value", CANARY), json_pack("[]"));
	change_add(&e->changes, &e->nchanges, "comment", json_string("old"),
		   json_pack("{s:s}", TP_HMAC_KEY, CANARY));
	c = change_add(&e->drift, &e->ndrift, "password", json_string(CANARY),
		       json_string(CANARY "live"));
	c->sensitive = true;
	change_add(&e->drift, &e->ndrift, "nested.secret", json_string(CANARY),
		   json_pack("{s:s}", TP_HMAC_KEY, "ffff" CANARY));
	e->details = json_pack("{s:o}", "fingerprint", json_pack("{s:s}", TP_HMAC_KEY, CANARY));

	/* delete: sensitive values in the recorded spec */
	e = entry_set(p, 2, "local.file", "old", TP_ACTION_DELETE, "removed from Git");
	e->before = json_pack("{s:s,s:s}", "path", "/srv/old", "content", CANARY);
	tp_strlist_push(&e->sensitive_paths, "content");
	c = change_add(&e->changes, &e->nchanges, "content", json_string(CANARY), NULL);

	/* no-op with sensitive drift only */
	e = entry_set(p, 3, "local.file", "quiet", TP_ACTION_NOOP, "drift");
	e->before = json_pack("{s:s}", "content", CANARY);
	tp_strlist_push(&e->sensitive_paths, "content");
	change_add(&e->drift, &e->ndrift, "content", json_string(CANARY), json_string("x"));

	p->add = 1;
	p->change = 1;
	p->destroy = 1;
	p->drifted = 2;
	p->unchanged = 1;
	return p;
}

Test(render_sensitive, canary_appears_in_no_format)
{
	tp_plan *p = leaky_plan();
	const tp_render_format fmts[] = {TP_RENDER_TEXT, TP_RENDER_MARKDOWN, TP_RENDER_JSON};
	for (size_t i = 0; i < 3; i++) {
		for (int colour = 0; colour < 2; colour++) {
			char *out = render(p, fmts[i], colour != 0);
			cr_assert_null(strstr(out, "CANARY"), "format %zu leaks:\n%s", i, out);
			cr_assert_null(strstr(out, TP_HMAC_KEY), "format %zu leaks:\n%s", i, out);
			cr_assert(strstr(out, "(sensitive)"), "format %zu:\n%s", i, out);
			free(out);
		}
	}
	tp_plan_free(p);
}

Test(render_sensitive, text_shows_sensitive_on_both_sides)
{
	tp_plan *p = leaky_plan();
	char *out = render(p, TP_RENDER_TEXT, false);
	cr_assert(strstr(out, "      + content = (sensitive)\n"), "%s", out);
	cr_assert(strstr(out, "      ~ password      = (sensitive) -> (sensitive)\n"), "%s", out);
	cr_assert(strstr(out, "      ~ nested.secret = (sensitive) -> (sensitive)\n"), "%s", out);
	cr_assert(strstr(out, "      ~ nested        = {\"plain\":\"x\",\"secret\":\"(sensitive)\"}"
			      " -> {\"plain\":\"y\",\"secret\":\"(sensitive)\"}\n"),
		  "%s", out);
	cr_assert(strstr(out, "      ~ tokens        = [{\"value\":\"(sensitive)\"}] -> []\n"), "%s",
		  out);
	cr_assert(strstr(out, "      - content = (sensitive) -> null\n"), "%s", out);
	cr_assert(strstr(out, "  ~ password      = (sensitive) -> (sensitive)\n"), "%s", out);
	free(out);
	tp_plan_free(p);
}

Test(render_sensitive, sensitive_change_without_values_uses_entry_specs)
{
	tp_plan *p = plan_new("rainshield", 1);
	tp_plan_entry *e = entry_set(p, 0, "local.file", "env", TP_ACTION_UPDATE, "changed");
	char *out;
	/* the builder's contract: no values in a sensitive change; redacted specs say which side
	 * has the field */
	e->before = json_pack("{s:s}", "path", "/a");
	e->after = json_pack("{s:s,s:s}", "path", "/a", "content", "(sensitive)");
	tp_strlist_push(&e->sensitive_paths, "content");
	change_add(&e->changes, &e->nchanges, "content", NULL, NULL)->sensitive = true;
	p->change = 1;
	out = render(p, TP_RENDER_TEXT, false);
	cr_assert(strstr(out, "      + content = (sensitive)\n"), "%s", out);
	free(out);
	tp_plan_free(p);
}

Test(render_sensitive, json_marks_and_redacts)
{
	tp_plan *p = leaky_plan();
	char *out = render(p, TP_RENDER_JSON, false);
	json_t *v = NULL, *ch;
	cr_assert_eq(tp_json_parse(&v, out, strlen(out)), 0);
	cr_assert_str_eq(json_string_value(tp_json_path_get(v, "resource_changes.0.after.content")),
			 "(sensitive)");
	cr_assert_str_eq(json_string_value(tp_json_path_get(v, "resource_changes.1.before.password")),
			 "(sensitive)");
	cr_assert_str_eq(json_string_value(tp_json_path_get(v, "resource_changes.1.after."
								 "nested.secret")),
			 "(sensitive)");
	cr_assert_str_eq(json_string_value(tp_json_path_get(v, "resource_changes.1.after."
								 "nested.plain")),
			 "y");
	ch = tp_json_path_get(v, "resource_changes.1.changes.1");
	cr_assert_str_eq(json_string_value(json_object_get(ch, "path")), "nested.secret");
	cr_assert(json_is_true(json_object_get(ch, "sensitive")));
	cr_assert_str_eq(json_string_value(json_object_get(ch, "before")), "(sensitive)");
	cr_assert_str_eq(json_string_value(json_object_get(ch, "after")), "(sensitive)");
	cr_assert(json_is_false(tp_json_path_get(v, "resource_changes.1.changes.2.sensitive")));
	cr_assert_str_eq(json_string_value(tp_json_path_get(v, "resource_changes.1.details."
								 "fingerprint")),
			 "(sensitive)");
	json_decref(v);
	free(out);
	tp_plan_free(p);
}

/* ---------------------------------------------------------------- markdown */

static const char sample_markdown[] =
	"### Tapestry plan for rainshield\n"
	"\n"
	"**Plan: 2 to add, 1 to change, 2 to destroy, 1 to forget.**\n"
	"\n"
	"| Action | Resource | Reason |\n"
	"|---|---|---|\n"
	"| update | snowflake.warehouse/loading | spec changed in Git |\n"
	"| create | local.file/env |  |\n"
	"| replace | airbyte.source/zoom | immutable field connector changed |\n"
	"| delete | aws.stack/old | removed from Git |\n"
	"| forget | aws.ssm\\_parameter/key | removed from Git, lifecycle.deletion is retain |\n"
	"\n"
	"<details><summary><code>snowflake.warehouse/loading</code> — update</summary>\n"
	"\n"
	"```diff\n"
	"# snowflake.warehouse/loading will be updated in-place\n"
	"# (spec changed in Git)\n"
	"~   snowflake.warehouse \"loading\" {\n"
	"~       warehouse_size    = \"XSMALL\" -> \"SMALL\"\n"
	"+       comment           = \"new\"\n"
	"-       max_cluster_count = 2 -> null\n"
	"    }\n"
	"```\n"
	"\n"
	"</details>\n"
	"\n"
	"<details><summary><code>local.file/env</code> — create</summary>\n"
	"\n"
	"```diff\n"
	"# local.file/env will be created\n"
	"+   local.file \"env\" {\n"
	"+       content = (sensitive)\n"
	"+       path    = \"/srv/app.env\"\n"
	"    }\n"
	"```\n"
	"\n"
	"</details>\n"
	"\n"
	"<details><summary><code>airbyte.source/zoom</code> — replace</summary>\n"
	"\n"
	"```diff\n"
	"# airbyte.source/zoom must be replaced\n"
	"# (immutable field connector changed)\n"
	"-/+ airbyte.source \"zoom\" {\n"
	"~       connector = \"zoom\" -> \"zoom-v2\" # forces replacement\n"
	"    }\n"
	"```\n"
	"\n"
	"</details>\n"
	"\n"
	"<details><summary><code>aws.stack/old</code> — delete</summary>\n"
	"\n"
	"```diff\n"
	"# aws.stack/old will be destroyed\n"
	"# (removed from Git)\n"
	"-   aws.stack \"old\" {\n"
	"-       stack_name = \"old\" -> null\n"
	"    }\n"
	"```\n"
	"\n"
	"</details>\n"
	"\n"
	"<details><summary><code>aws.ssm_parameter/key</code> — forget</summary>\n"
	"\n"
	"```diff\n"
	"# aws.ssm_parameter/key will be forgotten: removed from Git, lifecycle.deletion is "
	"retain; the object is kept\n"
	".   aws.ssm_parameter \"key\"\n"
	"```\n"
	"\n"
	"</details>\n"
	"\n"
	"#### Drift: objects changed outside Tapestry\n"
	"\n"
	"```diff\n"
	"# snowflake.warehouse/loading: 1 field differs from what Tapestry applied (reported, "
	"not corrected: self_heal is off)\n"
	"~   auto_suspend = 60 -> 300\n"
	"```\n";

Test(render_markdown, full_plan_exact)
{
	tp_plan *p = sample_plan();
	char *out = render(p, TP_RENDER_MARKDOWN, false);
	cr_assert_str_eq(out, sample_markdown);
	free(out);
	tp_plan_free(p);
}

Test(render_markdown, escapes_table_cells_and_html)
{
	tp_plan *p = plan_new("rain<shield>", 1);
	tp_plan_entry *e = entry_set(p, 0, "local.file", "a", TP_ACTION_UPDATE,
				     "uses `x` | <b>y</b> & z");
	char *out;
	change_add(&e->changes, &e->nchanges, "path", json_string("a"), json_string("b"));
	tp_strlist_push(&p->errors, "broken | <here>");
	p->change = 1;
	out = render(p, TP_RENDER_MARKDOWN, false);
	cr_assert(strstr(out, "### Tapestry plan for rain&lt;shield&gt;\n"), "%s", out);
	cr_assert(strstr(out, "| update | local.file/a | uses \\`x\\` \\| &lt;b&gt;y&lt;/b&gt; "
			      "&amp; z |\n"),
		  "%s", out);
	/* inside the ```diff fence the text is literal: GitHub shows it, never renders it */
	cr_assert(strstr(out, "```diff\n# local.file/a will be updated in-place\n"
			      "# (uses `x` | <b>y</b> & z)\n"),
		  "%s", out);
	cr_assert(strstr(out, "\n> **Error:** broken \\| &lt;here&gt;\n>\n"
			      "> This plan cannot be applied.\n"),
		  "%s", out);
	free(out);
	tp_plan_free(p);
}

Test(render_markdown, no_changes)
{
	tp_plan *p = plan_new("rainshield", 1);
	char *out;
	entry_set(p, 0, "local.file", "a", TP_ACTION_NOOP, "in sync");
	p->unchanged = 1;
	out = render(p, TP_RENDER_MARKDOWN, false);
	cr_assert_str_eq(out, "### Tapestry plan for rainshield\n\n"
			      "**No changes. Live state matches the pipeline in Git.**\n");
	free(out);
	tp_plan_free(p);
}

/* ---------------------------------------------------------------- json */

static void assert_keys(const json_t *obj, const char *const *keys)
{
	size_t n = 0;
	cr_assert(json_is_object(obj));
	for (; keys[n]; n++)
		cr_assert_not_null(json_object_get(obj, keys[n]), "missing key %s", keys[n]);
	cr_assert_eq(json_object_size(obj), n, "unexpected keys");
}

Test(render_json, documented_shape)
{
	static const char *const top[] = {"format_version", "pipeline", "resource_changes",
					  "summary", "errors", "notes", "applyable", NULL};
	static const char *const entry[] = {"address", "kind", "name", "actions", "reason",
					    "before", "after", "sensitive_paths", "changes",
					    "drift", "drift_corrected", "details", NULL};
	static const char *const change[] = {"path", "before", "after", "sensitive",
					     "forces_replacement", "unknown", NULL};
	static const char *const drift[] = {"path", "applied", "live", "sensitive", NULL};
	static const char *const summary[] = {"add", "change", "destroy", "forget", "drifted",
					      "unchanged", NULL};
	static const char *const actions[] = {"[\"update\"]", "[\"create\"]",
					      "[\"delete\",\"create\"]", "[\"delete\"]",
					      "[\"forget\"]", "[\"no-op\"]"};
	tp_plan *p = sample_plan();
	char *out = render(p, TP_RENDER_JSON, false);
	json_t *v = NULL, *rc;

	cr_assert_eq(tp_json_parse(&v, out, strlen(out)), 0, "%s", tp_error_last());
	cr_assert(strncmp(out, "{\n  \"applyable\": true,\n", 22) == 0, "%s", out);
	cr_assert_eq(out[strlen(out) - 1], '\n');
	assert_keys(v, top);
	cr_assert_str_eq(tp_json_get_str(v, "format_version"), TP_PLAN_FORMAT_VERSION);
	cr_assert_str_eq(tp_json_get_str(v, "format_version"), "1.0");
	cr_assert_str_eq(tp_json_get_str(v, "pipeline"), "rainshield");
	cr_assert(json_is_true(json_object_get(v, "applyable")));
	cr_assert_eq(json_array_size(json_object_get(v, "errors")), 0);
	assert_keys(json_object_get(v, "summary"), summary);
	cr_assert_eq(json_integer_value(tp_json_path_get(v, "summary.add")), 2);
	cr_assert_eq(json_integer_value(tp_json_path_get(v, "summary.destroy")), 2);
	cr_assert_eq(json_integer_value(tp_json_path_get(v, "summary.forget")), 1);
	cr_assert_eq(json_integer_value(tp_json_path_get(v, "summary.unchanged")), 1);

	rc = json_object_get(v, "resource_changes");
	cr_assert_eq(json_array_size(rc), 6, "no-ops are included");
	for (size_t i = 0; i < 6; i++) {
		json_t *e = json_array_get(rc, i);
		char *a = tp_json_canonical(json_object_get(e, "actions"));
		assert_keys(e, entry);
		cr_assert_str_eq(a, actions[i]);
		free(a);
		for (size_t k = 0; k < json_array_size(json_object_get(e, "changes")); k++)
			assert_keys(json_array_get(json_object_get(e, "changes"), k), change);
		for (size_t k = 0; k < json_array_size(json_object_get(e, "drift")); k++)
			assert_keys(json_array_get(json_object_get(e, "drift"), k), drift);
	}
	cr_assert_str_eq(json_string_value(tp_json_path_get(rc, "0.kind")),
			 "snowflake.warehouse");
	cr_assert_str_eq(json_string_value(tp_json_path_get(rc, "0.name")), "loading");
	cr_assert_eq(json_integer_value(tp_json_path_get(rc, "0.drift.0.live")), 300);
	cr_assert_eq(json_integer_value(tp_json_path_get(rc, "0.drift.0.applied")), 60);
	cr_assert(json_is_null(tp_json_path_get(rc, "0.changes.1.before")));
	cr_assert(json_is_null(tp_json_path_get(rc, "0.changes.2.after")));
	cr_assert(json_is_null(tp_json_path_get(rc, "1.before")));
	cr_assert(json_is_null(tp_json_path_get(rc, "1.reason")));
	cr_assert(json_is_null(tp_json_path_get(rc, "1.details")));
	cr_assert_str_eq(json_string_value(tp_json_path_get(rc, "1.sensitive_paths.0")), "content");
	cr_assert(json_is_true(tp_json_path_get(rc, "2.changes.0.forces_replacement")));
	cr_assert(json_is_null(tp_json_path_get(rc, "3.after")));
	cr_assert(json_is_false(tp_json_path_get(rc, "0.drift_corrected")));
	json_decref(v);
	free(out);
	tp_plan_free(p);
}

Test(render_json, errors_make_it_not_applyable)
{
	tp_plan *p = plan_new("rainshield", 0);
	char *out;
	json_t *v = NULL;
	tp_strlist_push(&p->errors, "prune guard: no");
	out = render(p, TP_RENDER_JSON, false);
	cr_assert_eq(tp_json_parse(&v, out, strlen(out)), 0);
	cr_assert(json_is_false(json_object_get(v, "applyable")));
	cr_assert_str_eq(json_string_value(tp_json_path_get(v, "errors.0")), "prune guard: no");
	cr_assert_eq(json_array_size(json_object_get(v, "resource_changes")), 0);
	json_decref(v);
	free(out);
	tp_plan_free(p);
}

Test(render, rejects_bad_arguments_and_respects_the_buffer_cap)
{
	tp_plan *p = sample_plan();
	tp_buf b;
	tp_buf_init(&b, 64);
	cr_assert_eq(tp_plan_render(&b, p, TP_RENDER_TEXT, false), TP_ETOOBIG);
	cr_assert_leq(b.len, 64);
	tp_buf_free(&b);
	tp_buf_init(&b, 64);
	cr_assert_eq(tp_plan_render(&b, p, TP_RENDER_JSON, false), TP_ETOOBIG);
	tp_buf_free(&b);
	tp_buf_init(&b, 0);
	cr_assert_eq(tp_plan_render(&b, p, (tp_render_format)42, false), TP_EINVALID);
	cr_assert_eq(tp_plan_render(&b, NULL, TP_RENDER_TEXT, false), TP_EINVALID);
	tp_buf_free(&b);
	tp_plan_free(p);
}
