/* spec/refs.c: the reference grammar. */
#include <criterion/criterion.h>
#include <string.h>

#include "spec/spec.h"

typedef struct {
	int n;
	tp_ref last;
	size_t start, end;
} seen;

static int collect(void *ctx, const tp_ref *r, size_t start, size_t end)
{
	seen *s = ctx;
	tp_ref_clear(&s->last);
	s->n++;
	s->last.type = r->type;
	s->last.kind = r->kind ? tp_strdup(r->kind) : NULL;
	s->last.name = r->name ? tp_strdup(r->name) : NULL;
	s->last.output = r->output ? tp_strdup(r->output) : NULL;
	s->last.scheme = r->scheme ? tp_strdup(r->scheme) : NULL;
	s->last.location = r->location ? tp_strdup(r->location) : NULL;
	s->start = start;
	s->end = end;
	return 0;
}

Test(refs, resource_reference_with_dotted_output)
{
	seen s = {0};
	const char *text = "bucket=${aws.stack/ingestion.outputs.BucketName};";
	cr_assert_eq(tp_refs_scan(text, collect, &s), 0, "%s", tp_error_last());
	cr_assert_eq(s.n, 1);
	cr_assert_eq(s.last.type, TP_REF_RESOURCE);
	cr_assert_str_eq(s.last.kind, "aws.stack");
	cr_assert_str_eq(s.last.name, "ingestion");
	cr_assert_str_eq(s.last.output, "outputs.BucketName");
	cr_assert_eq(s.start, 7);
	cr_assert_eq(text[s.end - 1], '}');
	tp_ref_clear(&s.last);
}

Test(refs, secret_references)
{
	seen s = {0};
	cr_assert_eq(tp_refs_scan("${secret:ssm:/tapestry/airbyte/client_id}", collect, &s), 0);
	cr_assert_eq(s.last.type, TP_REF_SECRET);
	cr_assert_str_eq(s.last.scheme, "ssm");
	cr_assert_str_eq(s.last.location, "/tapestry/airbyte/client_id");
	cr_assert_eq(tp_refs_scan("${secret:env:AIRBYTE_TOKEN} ${secret:file:/etc/k.p8}", collect,
				  &s), 0);
	cr_assert_eq(s.n, 3);
	cr_assert_str_eq(s.last.scheme, "file");
	tp_ref_clear(&s.last);
	cr_assert(tp_ref_is_whole_secret("${secret:env:X}"));
	cr_assert(!tp_ref_is_whole_secret("pre ${secret:env:X}"));
	cr_assert(!tp_ref_is_whole_secret("${secret:env:X}${secret:env:Y}"));
	cr_assert(!tp_ref_is_whole_secret("${secret:vault:X}"));
}

Test(refs, escapes_and_plain_text)
{
	seen s = {0};
	cr_assert_eq(tp_refs_scan("cost: $5, literal $${x} and $ alone", collect, &s), 0);
	cr_assert_eq(s.n, 0);
}

Test(refs, malformed_references_are_errors)
{
	static const char *bad[] = {
		"${}", "${unterminated", "${aws.stack}", "${aws.stack/x}", "${aws.stack/x.}",
		"${stack/x.id}", "${aws.stack/.id}", "${aws.stack/a b.id}", "${secret:}",
		"${secret:ssm}", "${secret:ssm:}", "${secret:vault:x}", "${secret:env:1X}",
		"${secret:file:rel}", "${a.b/c.${d}}", "${secret:ssm:bad path}",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++)
		cr_expect_eq(tp_refs_scan(bad[i], NULL, NULL), TP_EINVALID, "accepted %s", bad[i]);
}
