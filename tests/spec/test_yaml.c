/* spec/yaml.c: positions, documents, anchors, and the errors the parser itself reports. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "spec/spec_int.h"

static tp_yfile *parse_ok(const char *text)
{
	tp_yfile *f = NULL;
	tp_diags d = {0};
	int rc = tp_yaml_parse(&f, "t.yaml", text, strlen(text), &d);
	if (rc)
		tp_diags_print(&d, stderr);
	cr_assert_eq(rc, 0);
	cr_assert_eq(d.len, 0);
	tp_diags_free(&d);
	return f;
}

Test(yaml, positions_are_one_based_line_and_column)
{
	tp_yfile *f = parse_ok("a: 1\nb:\n  c: \"x\"\n  d: [p, q]\n");
	const tp_ynode *root = f->docs[0];
	const tp_ynode *c = tp_ynode_at_path(root, "b.c");
	const tp_ynode *q = tp_ynode_at_path(root, "b.d.1");
	cr_assert_eq(f->ndocs, 1);
	cr_assert_eq(c->line, 3);
	cr_assert_eq(c->col, 6);
	cr_assert(!c->plain);
	cr_assert_str_eq(q->text, "q");
	cr_assert_eq(q->line, 4);
	cr_assert_eq(q->col, 10);
	tp_yfile_free(f);
}

Test(yaml, multiple_documents_and_empty_ones)
{
	tp_yfile *f = parse_ok("---\na: 1\n---\n---\nb: 2\n");
	cr_assert_eq(f->ndocs, 3);
	cr_assert(tp_ynode_is_null(f->docs[1]));
	cr_assert_str_eq(tp_ynode_get(f->docs[2], "b")->text, "2");
	tp_yfile_free(f);
}

Test(yaml, aliases_share_nodes)
{
	tp_yfile *f = parse_ok("base: &b {x: 1}\nuse: *b\n");
	cr_assert_eq(tp_ynode_get(f->docs[0], "base"), tp_ynode_get(f->docs[0], "use"));
	tp_yfile_free(f);
}

Test(yaml, nulls)
{
	tp_yfile *f = parse_ok("a: ~\nb: null\nc:\nd: \"null\"\n");
	cr_assert(tp_ynode_is_null(tp_ynode_get(f->docs[0], "a")));
	cr_assert(tp_ynode_is_null(tp_ynode_get(f->docs[0], "b")));
	cr_assert(tp_ynode_is_null(tp_ynode_get(f->docs[0], "c")));
	cr_assert(!tp_ynode_is_null(tp_ynode_get(f->docs[0], "d")));
	tp_yfile_free(f);
}

static char *errors_of(const char *text)
{
	tp_yfile *f = NULL;
	tp_diags d = {0};
	char *out = NULL;
	size_t len = 0;
	FILE *m = open_memstream(&out, &len);
	tp_yaml_parse(&f, "t.yaml", text, strlen(text), &d);
	tp_diags_print(&d, m);
	fclose(m);
	tp_diags_free(&d);
	tp_yfile_free(f);
	return out;
}

Test(yaml, parser_errors)
{
	static const struct {
		const char *text, *expected;
	} cases[] = {
		{"a: [1, 2\n", "t.yaml:2:1: YAML syntax error: did not find expected ',' or ']'"},
		{"a:\n\t- x\n", "t.yaml:2:1: tab character in indentation"},
		{"a: 1\na: 2\n", "t.yaml:2:1: duplicate key \"a\" (first at line 1, column 1)"},
		{"? [a]\n: 1\n", "t.yaml:1:3: mapping keys must be scalars, found a list"},
		{"a: *nope\n", "t.yaml:1:4: alias *nope names no complete anchor"},
		/* found by fuzz_spec: several non-scalar keys in one mapping */
		{"? [a]\n: 1\n? {b: 1}\n: 2\nc: 3\n",
		 "t.yaml:1:3: mapping keys must be scalars, found a list\n"
		 "t.yaml:3:3: mapping keys must be scalars, found a mapping\n"},
		{"a: \"\\0\"\n", ""},
		{"a: 1\n\x80\n", "t.yaml:2:1: file is not valid UTF-8 (byte 0x80)"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
		char *got = errors_of(cases[i].text);
		cr_expect(strncmp(got, cases[i].expected, strlen(cases[i].expected)) == 0,
			  "case %zu: got \"%s\", want \"%s\"", i, got, cases[i].expected);
		free(got);
	}
}

Test(yaml, nul_byte_in_file)
{
	tp_yfile *f = NULL;
	tp_diags d = {0};
	cr_assert_eq(tp_yaml_parse(&f, "t.yaml", "a: 1\n\0b", 7, &d), TP_EINVALID);
	cr_assert_str_eq(d.items[0].msg, "file contains a NUL byte");
	cr_assert_eq(d.items[0].line, 2);
	tp_diags_free(&d);
}
