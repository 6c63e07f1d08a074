/*
 * `tapestry kinds [KIND]`: the reference documentation of the resource kinds, printed from
 * the same schemas the loader validates against, so it can never drift from the code.
 */
#include "controller.h"

#include <stdio.h>
#include <string.h>

#include "../reconcilers/reconciler.h"

static const char *type_word(const tp_field *f)
{
	switch (f->type) {
	case TP_TYPE_STRING: return "string";
	case TP_TYPE_INT: return "integer";
	case TP_TYPE_NUMBER: return "number";
	case TP_TYPE_BOOL: return "bool";
	case TP_TYPE_OBJECT: return "object";
	case TP_TYPE_LIST: return "list";
	case TP_TYPE_MAP: return "map";
	case TP_TYPE_ANY: return "any";
	}
	return "?";
}

static void print_fields(const tp_field *fields, int depth)
{
	for (size_t i = 0; fields && fields[i].name; i++) {
		const tp_field *f = &fields[i];
		const tp_field *inner = f;
		printf("%*s%-26s %-8s", depth * 2 + 2, "", f->name, type_word(f));
		if (f->flags & TP_F_REQUIRED)
			fputs(" required", stdout);
		if (f->flags & TP_F_IMMUTABLE)
			fputs(" immutable", stdout);
		if (f->flags & (TP_F_SENSITIVE | TP_F_SECRET_REF))
			fputs(" sensitive", stdout);
		if (f->flags & TP_F_SECRET_REF)
			fputs(" secret-reference", stdout);
		if (f->flags & TP_F_FILE)
			fputs(" file", stdout);
		if (f->def)
			printf(" default=%s", f->def);
		if (f->flags & TP_F_DEFAULT_NAME)
			fputs(" default=<name>", stdout);
		if (f->enums) {
			fputs(" one of:", stdout);
			for (size_t k = 0; f->enums[k]; k++)
				printf("%s%s", k ? "|" : " ", f->enums[k]);
		}
		if (f->doc)
			printf("\n%*s%s", depth * 2 + 4, "", f->doc);
		putchar('\n');
		while ((inner->type == TP_TYPE_LIST || inner->type == TP_TYPE_MAP) && inner->items)
			inner = inner->items;
		if (inner->type == TP_TYPE_OBJECT)
			print_fields(inner->fields, depth + 1);
	}
}

int tp_cmd_kinds(int argc, char **argv)
{
	const tp_provider *const *provs = tp_registry_providers();
	const tp_kind *k;

	if (argc > 2)
		return tp_error_set(TP_EUSAGE, "kinds takes at most one kind name");
	if (argc == 1) {
		for (size_t i = 0; provs[i]; i++)
			for (size_t j = 0; provs[i]->kinds[j]; j++)
				printf("%-24s %-15s %s\n", provs[i]->kinds[j]->name,
				       tp_phase_name(provs[i]->kinds[j]->phase),
				       provs[i]->kinds[j]->doc);
		return 0;
	}
	k = tp_registry_kind(argv[1]);
	if (!k) {
		const tp_provider *p = tp_registry_provider(argv[1]);
		if (!p)
			return tp_error_set(TP_ENOTFOUND, "unknown kind \"%s\" (see `tapestry kinds`)",
					    argv[1]);
		printf("providers.%s (tapestry.yaml):\n", p->name);
		print_fields(p->config, 0);
		return 0;
	}
	printf("%s — %s (phase: %s)\n\nspec:\n", k->name, k->doc, tp_phase_name(k->phase));
	print_fields(k->fields, 0);
	fputs("\noutputs:", stdout);
	for (size_t i = 0; k->outputs && k->outputs[i]; i++)
		printf(" %s", k->outputs[i]);
	putchar('\n');
	return 0;
}
