/*
 * reconcilers/registry.c and every kind's schema: the tables are data, so this suite checks
 * them as data — unique names, well-formed fields, defaults that parse and satisfy their own
 * enums, nested schemas present, outputs declared, hooks idempotent on the defaults.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "reconcilers/reconciler.h"

static void check_fields(const char *owner, const tp_field *fields, int depth)
{
	cr_assert_lt(depth, 8, "%s: schema nests too deep", owner);
	for (size_t i = 0; fields[i].name; i++) {
		const tp_field *f = &fields[i];
		cr_expect(strlen(f->name) > 0, "%s: empty field name", owner);
		cr_expect(strspn(f->name, "abcdefghijklmnopqrstuvwxyz0123456789_") == strlen(f->name),
			  "%s.%s: field names are snake_case", owner, f->name);
		cr_expect(f->doc && f->doc[0], "%s.%s: no doc line", owner, f->name);
		for (size_t j = 0; j < i; j++)
			cr_expect(strcmp(fields[j].name, f->name) != 0, "%s.%s: declared twice",
				  owner, f->name);
		if (f->def) {
			json_error_t e;
			json_t *d = json_loads(f->def, JSON_DECODE_ANY, &e);
			cr_expect_not_null(d, "%s.%s: default %s is not JSON", owner, f->name,
					   f->def);
			if (d && f->enums) {
				bool ok = false;
				for (size_t k = 0; f->enums[k]; k++)
					ok = ok || (json_is_string(d) &&
						    strcmp(json_string_value(d), f->enums[k]) == 0);
				cr_expect(ok, "%s.%s: default %s is not one of its enums", owner,
					  f->name, f->def);
			}
			cr_expect(!(f->flags & TP_F_REQUIRED), "%s.%s: required with a default",
				  owner, f->name);
			json_decref(d);
		}
		if (f->type == TP_TYPE_OBJECT)
			cr_expect_not_null(f->fields, "%s.%s: object without fields", owner,
					   f->name);
		if (f->type == TP_TYPE_LIST || f->type == TP_TYPE_MAP) {
			cr_assert_not_null(f->items, "%s.%s: list/map without items", owner,
					   f->name);
			if (f->items->type == TP_TYPE_OBJECT)
				check_fields(owner, f->items->fields, depth + 1);
		}
		if (f->type == TP_TYPE_OBJECT && f->fields)
			check_fields(owner, f->fields, depth + 1);
		if (f->flags & (TP_F_FILE | TP_F_SECRET_REF | TP_F_DEFAULT_NAME | TP_F_NOREF))
			cr_expect_eq(f->type, TP_TYPE_STRING, "%s.%s: flag needs a string", owner,
				     f->name);
	}
}

Test(registry, every_kind_is_well_formed_and_findable)
{
	const tp_provider *const *provs = tp_registry_providers();
	size_t nkinds = 0;
	for (size_t i = 0; provs[i]; i++) {
		const tp_provider *p = provs[i];
		cr_assert_eq(tp_registry_provider(p->name), p);
		check_fields(p->name, p->config, 0);
		for (size_t k = 0; p->kinds[k]; k++) {
			const tp_kind *kd = p->kinds[k];
			size_t plen = strlen(p->name);
			nkinds++;
			cr_expect(strncmp(kd->name, p->name, plen) == 0 && kd->name[plen] == '.',
				  "%s: kind not named <provider>.<type>", kd->name);
			cr_expect_eq(tp_registry_kind(kd->name), kd);
			cr_expect_eq(tp_registry_provider_of(kd), p);
			cr_expect(kd->doc && kd->doc[0], "%s: no doc", kd->name);
			cr_expect_not_null(kd->outputs, "%s: outputs must be declared", kd->name);
			check_fields(kd->name, kd->fields, 0);
		}
	}
	/* the kinds DESIGN.md lists */
	static const char *expected[] = {
		"aws.stack", "aws.ssm_parameter", "snowflake.warehouse", "snowflake.database",
		"snowflake.schema", "snowflake.role", "snowflake.user", "snowflake.grant",
		"snowflake.role_grant", "snowflake.view", "airbyte.source", "airbyte.destination",
		"airbyte.connection", "grouparoo.model", "grouparoo.app", "grouparoo.source",
		"grouparoo.property", "grouparoo.group", "grouparoo.destination", "local.file",
	};
	for (size_t i = 0; i < sizeof(expected) / sizeof(*expected); i++)
		cr_expect_not_null(tp_registry_kind(expected[i]), "missing kind %s", expected[i]);
	cr_expect_eq(nkinds, sizeof(expected) / sizeof(*expected));
	cr_expect_null(tp_registry_kind("aws.nothing"));
	cr_expect_null(tp_registry_provider("oracle"));
}

Test(registry, normalise_is_idempotent_on_sample_specs)
{
	static const struct {
		const char *kind, *spec;
	} samples[] = {
		{"snowflake.warehouse", "{\"name\":\"loading\",\"warehouse_size\":\"x-small\"}"},
		{"snowflake.grant", "{\"role\":\"loader\",\"privileges\":[\"usage\",\"select\","
				    "\"USAGE\"],\"on\":{\"type\":\"schema\",\"name\":\"raw.zoom\"}}"},
		{"aws.stack", "{\"stack_name\":\"s\",\"template\":\"t.yaml\",\"capabilities\":"
			      "[\"CAPABILITY_NAMED_IAM\",\"CAPABILITY_IAM\"],\"tags\":{}}"},
		{"local.file", "{\"path\":\"/x\",\"content\":\"a\",\"mode\":\"644\"}"},
		{"airbyte.connection", "{\"name\":\"c\",\"source\":\"s\",\"destination\":\"d\","
				       "\"schedule\":{\"type\":\"cron\",\"cron\":\"0 0 * * * ? UTC\"},"
				       "\"streams\":[{\"name\":\"b\"},{\"name\":\"a\"}]}"},
	};
	for (size_t i = 0; i < sizeof(samples) / sizeof(*samples); i++) {
		const tp_kind *k = tp_registry_kind(samples[i].kind);
		json_error_t e;
		json_t *once, *twice;
		char *a, *b;
		cr_assert_not_null(k, "%s", samples[i].kind);
		if (!k->normalise)
			continue;
		once = json_loads(samples[i].spec, 0, &e);
		cr_assert_not_null(once, "%s", e.text);
		k->normalise(once);
		twice = json_deep_copy(once);
		k->normalise(twice);
		a = json_dumps(once, JSON_SORT_KEYS);
		b = json_dumps(twice, JSON_SORT_KEYS);
		cr_expect_str_eq(a, b, "%s: normalise is not idempotent", samples[i].kind);
		free(a);
		free(b);
		json_decref(once);
		json_decref(twice);
	}
}
