/*
 * libFuzzer target for the spec loader: arbitrary bytes as a resource file go through
 * the same path as a real pipeline (UTF-8 check, YAML parse, schema walk, references, graph).
 * Any crash, sanitizer report, leak or unbounded allocation is a bug.
 */
#include <stddef.h>
#include <stdint.h>

#include "spec/spec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	tp_diags diags = {0};
	tp_spec_check_text("fuzz.yaml", (const char *)data, size, &diags);
	tp_diags_free(&diags);
	return 0;
}
