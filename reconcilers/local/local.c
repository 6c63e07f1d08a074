/*
 * The local provider: objects on the controller host itself. `local.file` renders a file (for
 * example the .env a service reads its settings from) from inline content or from a file in
 * the pipeline repository, with ${...} references interpolated at apply time. Needing no
 * network, it is also the engine's own test target.
 */
#include "../reconciler.h"

#include <stdlib.h>
#include <string.h>

static const tp_field file_fields[] = {
	{.name = "path", .type = TP_TYPE_STRING, .flags = TP_F_REQUIRED | TP_F_IMMUTABLE,
	 .doc = "absolute path of the file on the controller host"},
	{.name = "content", .type = TP_TYPE_STRING,
	 .doc = "file content; may contain ${...} references"},
	{.name = "source", .type = TP_TYPE_STRING, .flags = TP_F_FILE,
	 .doc = "file in the pipeline repository whose content (with ${...} interpolated) is "
		"written"},
	{.name = "mode", .type = TP_TYPE_STRING, .def = "\"0644\"",
	 .doc = "octal permission bits, e.g. \"0600\" for a file that holds secrets"},
	{0},
};

static const char *const file_outputs[] = {"path", "~sha256", NULL};

static void file_check(const json_t *spec, tp_check *c)
{
	const char *path = tp_json_get_str(spec, "path");
	const char *mode = tp_json_get_str(spec, "mode");
	bool has_content = json_object_get(spec, "content") != NULL;
	bool has_source = json_object_get(spec, "source") != NULL;

	if (path && path[0] != '/' && strncmp(path, "${", 2) != 0)
		tp_check_error(c, "path", "must be an absolute path, got \"%s\"", path);
	if (has_content == has_source)
		tp_check_error(c, "", "exactly one of `content` and `source` must be set");
	if (mode) {
		size_t n = strlen(mode);
		bool ok = n >= 3 && n <= 4 && strspn(mode, "01234567") == n;
		if (!ok)
			tp_check_error(c, "mode", "must be octal permission bits like \"0644\", got "
				       "\"%s\"", mode);
	}
}

static void file_normalise(json_t *spec)
{
	/* "644" and "0644" are the same mode. */
	const char *mode = tp_json_get_str(spec, "mode");
	if (mode && strlen(mode) == 3) {
		char *m = tp_sprintf("0%s", mode);
		json_object_set_new(spec, "mode", json_string(m));
		free(m);
	}
}

static json_t *file_predict(const json_t *spec)
{
	json_t *out = json_object();
	json_t *path = json_object_get(spec, "path");
	json_t *content = json_object_get(spec, "content");
	if (json_is_string(path))
		json_object_set(out, "path", path);
	/* content from a repository file (source) is known too, but only to the loader; the
	 * hash of inline content is computed here */
	if (json_is_string(content)) {
		uint8_t d[TP_SHA256_LEN];
		char hex[2 * TP_SHA256_LEN + 1];
		tp_sha256(d, json_string_value(content), json_string_length(content));
		tp_hex_encode(hex, d, sizeof(d));
		json_object_set_new(out, "sha256", json_string(hex));
	}
	return out;
}

static const tp_kind kind_file = {
	.name = "local.file",
	.phase = TP_PHASE_HOST,
	.doc = "a file on the controller host",
	.fields = file_fields,
	.outputs = file_outputs,
	.check = file_check,
	.normalise = file_normalise,
	.predict_outputs = file_predict,
};

static const tp_field config_fields[] = {
	{0},
};

static const tp_kind *const kinds[] = {&kind_file, NULL};

const tp_provider tp_provider_local = {
	.name = "local",
	.config = config_fields,
	.needs_config = false,
	.kinds = kinds,
};
