/*
 * `tapestry validate [DIR]`: load a pipeline directory with the same loader the controller
 * uses, print a one-line summary when it is valid, or every error as path:line:col: message
 * (paths relative to DIR) on stderr. Touches nothing: no state, no network.
 */
#include "controller.h"

#include <stdio.h>
#include <string.h>

#include "../spec/spec.h"

static void print_json(const tp_diags *d, const tp_pipeline *p)
{
	json_t *out = json_object(), *errs = json_array();
	char *text;
	for (size_t i = 0; i < d->len; i++) {
		json_t *e = json_object();
		json_object_set_new(e, "file", json_string(d->items[i].file));
		json_object_set_new(e, "line", json_integer(d->items[i].line));
		json_object_set_new(e, "column", json_integer(d->items[i].col));
		json_object_set_new(e, "message", json_string(d->items[i].msg));
		json_array_append_new(errs, e);
	}
	json_object_set_new(out, "valid", json_boolean(p != NULL));
	if (p) {
		json_object_set_new(out, "pipeline", json_string(p->name));
		json_object_set_new(out, "resources", json_integer((json_int_t)p->nresources));
	}
	json_object_set_new(out, "errors", errs);
	text = json_dumps(out, JSON_INDENT(2) | JSON_SORT_KEYS);
	puts(text);
	free(text);
	json_decref(out);
}

int tp_cmd_validate(int argc, char **argv)
{
	const char *dir = NULL;
	bool as_json = false;
	tp_tree *tree = NULL;
	tp_pipeline *p = NULL;
	tp_diags diags = {0};
	int rc = 0;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--json") == 0)
			as_json = true;
		else if (argv[i][0] == '-')
			return tp_error_set(TP_EUSAGE, "unknown option %s", argv[i]);
		else if (!dir)
			dir = argv[i];
		else
			return tp_error_set(TP_EUSAGE, "validate takes one directory");
	}
	if (!dir)
		dir = ".";

	if ((rc = tp_tree_fs_open(&tree, dir)) < 0)
		goto done;
	rc = tp_pipeline_load(&p, tree, &diags);
	if (as_json) {
		tp_diags_print(&diags, stderr);
		print_json(&diags, p);
	} else if (rc == TP_EINVALID) {
		tp_diags_print(&diags, stderr);
	}
	if (rc == TP_EINVALID) {
		size_t n = diags.len + diags.dropped;
		tp_error_set(TP_EINVALID, "%s is not valid: %zu error%s", dir, n, n == 1 ? "" : "s");
		goto done;
	}
	if (rc < 0)
		goto done;
	if (!as_json) {
		size_t counts[8] = {0};
		const tp_provider *const *provs = tp_registry_providers();
		printf("%s: pipeline \"%s\" is valid: %zu resource%s", dir, p->name, p->nresources,
		       p->nresources == 1 ? "" : "s");
		for (size_t i = 0; i < p->nresources; i++)
			for (size_t k = 0; provs[k] && k < 8; k++)
				if (tp_registry_provider_of(p->resources[i].kind) == provs[k])
					counts[k]++;
		for (size_t k = 0, first = 1; provs[k] && k < 8; k++) {
			if (!counts[k])
				continue;
			printf("%s%s %zu", first ? " (" : ", ", provs[k]->name, counts[k]);
			first = 0;
		}
		puts(p->nresources ? ")" : "");
	}
done:
	tp_pipeline_free(p);
	tp_diags_free(&diags);
	tp_tree_free(tree);
	return rc;
}
