/*
 * spec/load.c on valid pipelines (graph, order, defaults, lifecycle, sensitive paths,
 * endpoint overrides) and on bad input that cannot live in a fixture directory: a 100 MB
 * file, symlinks out of the tree, an alias bomb, hostile nesting.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "spec/spec.h"
#include "support/support.h"

static char *dir;

static void setup(void)
{
	dir = ts_tmpdir();
	ts_write(dir, "tapestry.yaml",
		 "pipeline: test\n"
		 "settings: {concurrency: 3, max_prune: 40%, self_heal: true, drift_interval: 90s}\n"
		 "providers:\n"
		 "  aws: {region: eu-west-1, endpoint: \"http://127.0.0.1:1\"}\n"
		 "  airbyte: {url: \"http://airbyte:8000/api/public/v1\", client_id: "
		 "\"${secret:env:ID}\", client_secret: \"${secret:env:SECRET}\"}\n");
}

static void teardown(void)
{
	ts_rmtree(dir);
	free(dir);
	unsetenv("TAPESTRY_ENDPOINT_AWS");
}

static tp_pipeline *load_ok(void)
{
	tp_tree *tree = NULL;
	tp_pipeline *p = NULL;
	tp_diags d = {0};
	int rc;
	cr_assert_eq(tp_tree_fs_open(&tree, dir), 0);
	rc = tp_pipeline_load(&p, tree, &d);
	if (rc != 0)
		tp_diags_print(&d, stderr);
	cr_assert_eq(rc, 0, "load failed: %s", tp_error_last());
	cr_assert_eq(d.len, 0);
	tp_diags_free(&d);
	tp_tree_free(tree);
	return p;
}

static char *load_fail(int *rc_out)
{
	tp_tree *tree = NULL;
	tp_pipeline *p = NULL;
	tp_diags d = {0};
	char *text = NULL;
	size_t len = 0;
	FILE *m = open_memstream(&text, &len);
	cr_assert_eq(tp_tree_fs_open(&tree, dir), 0);
	*rc_out = tp_pipeline_load(&p, tree, &d);
	cr_assert_null(p);
	tp_diags_print(&d, m);
	fclose(m);
	tp_diags_free(&d);
	tp_tree_free(tree);
	return text;
}

static size_t idx(const tp_pipeline *p, const char *address)
{
	const tp_resource *r = tp_pipeline_find(p, address);
	cr_assert_not_null(r, "no %s", address);
	return (size_t)(r - p->resources);
}

static size_t pos_in_order(const tp_pipeline *p, size_t i)
{
	for (size_t k = 0; k < p->nresources; k++)
		if (p->order[k] == i)
			return k;
	cr_assert_fail("resource %zu not in order", i);
	return 0;
}

TestSuite(load, .init = setup, .fini = teardown);

Test(load, settings_providers_and_endpoint_override)
{
	tp_pipeline *p;
	ts_write(dir, "resources/a.yaml",
		 "kind: local.file\nname: a\nspec: {path: /a, content: x}\n");
	setenv("TAPESTRY_ENDPOINT_AWS", "http://127.0.0.1:5000", 1);
	p = load_ok();
	cr_assert_str_eq(p->name, "test");
	cr_assert_eq(p->settings.concurrency, 3);
	cr_assert_float_eq(p->settings.max_prune_percent, 40.0, 1e-9);
	cr_assert(p->settings.self_heal);
	cr_assert_eq(p->settings.drift_interval_ms, 90000);
	cr_assert_str_eq(tp_pipeline_provider(p, "aws")->endpoint, "http://127.0.0.1:5000");
	cr_assert(tp_pipeline_provider(p, "aws")->endpoint_from_env);
	cr_assert_null(tp_pipeline_provider(p, "airbyte")->endpoint);
	cr_assert_null(tp_pipeline_provider(p, "snowflake"));
	tp_pipeline_free(p);
}

Test(load, defaults_when_settings_absent)
{
	tp_pipeline *p;
	ts_write(dir, "tapestry.yaml", "pipeline: bare\n");
	ts_write(dir, "resources/a.yml", "kind: local.file\nname: a\nspec: {path: /a, content: x}\n");
	p = load_ok();
	cr_assert_eq(p->settings.concurrency, 8);
	cr_assert_float_eq(p->settings.max_prune_percent, 25.0, 1e-9);
	cr_assert(!p->settings.self_heal);
	cr_assert_eq(p->settings.drift_interval_ms, 600000);
	cr_assert_str_eq(tp_json_get_str(p->resources[0].spec, "mode"), "0644");
	tp_pipeline_free(p);
}

Test(load, graph_order_references_and_lifecycle)
{
	tp_pipeline *p;
	const tp_resource *env;
	ts_write(dir, "resources/a.yaml",
		 "kind: local.file\n"
		 "name: env\n"
		 "spec:\n"
		 "  path: /srv/grouparoo.env\n"
		 "  content: |\n"
		 "    SOURCE=${airbyte.source/zoom.id}\n"
		 "    TOKEN=${secret:ssm:/rainshield/token}\n"
		 "depends_on: [local.file/base]\n"
		 "lifecycle: {prevent_destroy: true, deletion: retain, ignore_changes: [mode]}\n"
		 "---\n"
		 "kind: local.file\n"
		 "name: base\n"
		 "spec: {path: /srv/base, content: plain, mode: \"0600\"}\n");
	ts_write(dir, "resources/b.yaml",
		 "kind: airbyte.source\n"
		 "name: zoom\n"
		 "spec:\n"
		 "  connector: source-zoom\n"
		 "  configuration: {client_secret: \"${secret:env:ZOOM}\", start: 2024-01-01}\n");
	p = load_ok();
	cr_assert_eq(p->nresources, 3);
	/* sorted by address */
	cr_assert_str_eq(p->resources[0].address, "airbyte.source/zoom");
	cr_assert_str_eq(p->resources[1].address, "local.file/base");
	env = tp_pipeline_find(p, "local.file/env");
	cr_assert_eq(env->ndeps, 2);
	cr_assert(pos_in_order(p, idx(p, "airbyte.source/zoom")) <
		  pos_in_order(p, idx(p, "local.file/env")));
	cr_assert(pos_in_order(p, idx(p, "local.file/base")) <
		  pos_in_order(p, idx(p, "local.file/env")));
	cr_assert(env->prevent_destroy);
	cr_assert_eq(env->deletion, TP_DELETION_RETAIN);
	cr_assert_str_eq(env->ignore_changes.items[0], "mode");
	cr_assert(tp_strlist_contains(&env->sensitive_paths, "content"));
	cr_assert_eq(env->nrefs, 2);
	cr_assert_str_eq(env->file, "resources/a.yaml");
	cr_assert_eq(env->line, 1);
	/* secret flows into the configuration: that path is sensitive, not the whole spec */
	cr_assert(tp_strlist_contains(&p->resources[0].sensitive_paths,
				      "configuration.client_secret"));
	cr_assert(!tp_strlist_contains(&p->resources[0].sensitive_paths, "configuration.start"));
	/* the name defaults to the resource name; free-form values keep YAML core types */
	cr_assert_str_eq(tp_json_get_str(p->resources[0].spec, "name"), "zoom");
	tp_pipeline_free(p);
}

Test(load, long_dependency_chain_does_not_recurse)
{
	tp_buf b;
	tp_pipeline *p;
	tp_buf_init(&b, 0);
	for (int i = 0; i < 5000; i++) {
		tp_buf_printf(&b, "---\nkind: local.file\nname: f%d\nspec: {path: /f%d, content: x}\n",
			      i, i);
		if (i > 0)
			tp_buf_printf(&b, "depends_on: [local.file/f%d]\n", i - 1);
	}
	ts_write(dir, "resources/chain.yaml", tp_buf_cstr(&b));
	tp_buf_free(&b);
	p = load_ok();
	cr_assert_eq(p->nresources, 5000);
	cr_assert(pos_in_order(p, idx(p, "local.file/f0")) <
		  pos_in_order(p, idx(p, "local.file/f4999")));
	tp_pipeline_free(p);
}

Test(load, file_of_100_megabytes_is_refused_by_size)
{
	char *path = tp_sprintf("%s/resources/huge.yaml", dir);
	FILE *f;
	int rc;
	char *out;
	ts_write(dir, "resources/a.yaml", "kind: local.file\nname: a\nspec: {path: /a, content: x}\n");
	f = fopen(path, "w");
	cr_assert_not_null(f);
	cr_assert_eq(ftruncate(fileno(f), 100L * 1024 * 1024), 0); /* sparse: no disk used */
	fclose(f);
	out = load_fail(&rc);
	cr_assert_eq(rc, TP_EINVALID);
	cr_assert_str_eq(out, "resources/huge.yaml: file is 104857600 bytes, over the limit of "
			      "16777216 bytes\n");
	free(out);
	free(path);
}

Test(load, symlinks_out_of_the_directory_are_refused)
{
	char *link = tp_sprintf("%s/resources/evil.yaml", dir);
	char *link2 = tp_sprintf("%s/templates", dir);
	char *out;
	int rc;
	ts_write(dir, "resources/a.yaml",
		 "kind: local.file\nname: a\nspec: {path: /a, source: templates/passwd}\n");
	cr_assert_eq(symlink("/etc/passwd", link), 0);
	cr_assert_eq(symlink("/etc", link2), 0);
	out = load_fail(&rc);
	cr_assert_eq(rc, TP_EINVALID);
	cr_assert(strstr(out, "resources/evil.yaml: resolves outside the pipeline directory"),
		  "%s", out);
	cr_assert(strstr(out, "resources/a.yaml:3:26: spec.source: templates/passwd: resolves "
			      "outside the pipeline directory"), "%s", out);
	free(out);
	free(link);
	free(link2);
}

Test(load, symlink_inside_the_directory_is_fine)
{
	char *link = tp_sprintf("%s/templates/alias.env", dir);
	tp_pipeline *p;
	ts_write(dir, "templates/real.env", "A=1\n");
	cr_assert_eq(symlink("real.env", link), 0);
	ts_write(dir, "resources/a.yaml",
		 "kind: local.file\nname: a\nspec: {path: /a, source: ./templates//alias.env}\n");
	p = load_ok();
	/* the value carries the first 16 hex digits of sha256("A=1\n") */
	cr_assert_str_eq(tp_json_get_str(p->resources[0].spec, "source"),
			 "templates/alias.env@sha256:91d6a3d55e9fea79");
	tp_pipeline_free(p);
	free(link);
}

Test(load, alias_bomb_is_refused_without_blowing_up_memory)
{
	struct rusage before, after;
	char *out;
	int rc;
	ts_write(dir, "resources/bomb.yaml",
		 "kind: airbyte.source\nname: bomb\nspec:\n  connector: source-zoom\n"
		 "  configuration:\n"
		 "    a: &a [x, x, x, x, x, x, x, x, x]\n"
		 "    b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
		 "    c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\n"
		 "    d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
		 "    e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]\n"
		 "    f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]\n"
		 "    g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f]\n"
		 "    h: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g]\n"
		 "    i: &i [*h, *h, *h, *h, *h, *h, *h, *h, *h]\n");
	getrusage(RUSAGE_SELF, &before);
	out = load_fail(&rc);
	getrusage(RUSAGE_SELF, &after);
	cr_assert_eq(rc, TP_EINVALID);
	cr_assert(strstr(out, "expands to more than 100000 YAML nodes"), "%s", out);
	/* 9^9 nodes would need gigabytes; the bound keeps growth to tens of megabytes */
	cr_assert_lt(after.ru_maxrss - before.ru_maxrss, 256 * 1024, "grew %ld KiB",
		     after.ru_maxrss - before.ru_maxrss);
	free(out);
}

Test(load, recursive_alias_and_deep_nesting_are_refused)
{
	tp_buf b;
	char *out;
	int rc;
	ts_write(dir, "resources/a.yaml",
		 "kind: airbyte.source\nname: rec\nspec:\n  connector: zoom\n"
		 "  configuration: &r {self: *r}\n");
	out = load_fail(&rc);
	cr_assert(strstr(out, "alias *r names no complete anchor"), "%s", out);
	free(out);
	tp_buf_init(&b, 0);
	tp_buf_puts(&b, "kind: airbyte.source\nname: deep\nspec:\n  connector: zoom\n"
			"  configuration: ");
	for (int i = 0; i < 1000; i++)
		tp_buf_putc(&b, '[');
	for (int i = 0; i < 1000; i++)
		tp_buf_putc(&b, ']');
	tp_buf_putc(&b, '\n');
	ts_write(dir, "resources/a.yaml", tp_buf_cstr(&b));
	tp_buf_free(&b);
	out = load_fail(&rc);
	cr_assert(strstr(out, "nesting deeper than 64 levels"), "%s", out);
	free(out);
}

Test(load, provider_must_be_configured_for_its_kinds)
{
	char *out;
	int rc;
	ts_write(dir, "resources/a.yaml",
		 "kind: snowflake.role\nname: loader\nspec: {name: LOADER}\n---\n"
		 "kind: snowflake.role\nname: reader\nspec: {name: READER}\n");
	out = load_fail(&rc);
	cr_assert_str_eq(out, "resources/a.yaml:1:1: snowflake.role/loader uses provider "
			      "\"snowflake\", which has no entry under providers: in "
			      "tapestry.yaml\n");
	free(out);
}

Test(load, every_error_of_a_file_is_reported_in_one_pass)
{
	char *out;
	int rc;
	size_t lines = 0;
	ts_write(dir, "resources/a.yaml",
		 "kind: local.file\nname: a\nspec: {path: /a, content: x, bogus: 1}\n---\n"
		 "kind: local.fil\nname: b\nspec: {}\n---\n"
		 "kind: local.file\nname: c\nspec: {path: /c, content: \"${local.file/nope.path}\"}\n");
	ts_write(dir, "resources/b.yaml", "kind: [\n");
	out = load_fail(&rc);
	for (const char *q = out; *q; q++)
		lines += *q == '\n';
	cr_assert_eq(lines, 4, "%s", out);
	free(out);
}
