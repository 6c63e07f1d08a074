/*
 * JSON helpers over jansson. The ownership rule for json_t references is in util.h and holds
 * for the whole code base.
 */
#include "util.h"

#include <stdlib.h>
#include <string.h>

const char *tp_json_get_str(const json_t *obj, const char *key)
{
	json_t *v = json_object_get(obj, key);
	return json_is_string(v) ? json_string_value(v) : NULL;
}

json_t *tp_json_path_get(const json_t *root, const char *path)
{
	/* jansson's getters take non-const pointers; the walk never modifies the tree */
	json_t *cur = (json_t *)(uintptr_t)root;
	const char *p = path;
	char seg[256];

	while (cur && *p) {
		const char *dot = strchr(p, '.');
		size_t n = dot ? (size_t)(dot - p) : strlen(p);
		if (n == 0 || n >= sizeof(seg))
			return NULL;
		memcpy(seg, p, n);
		seg[n] = '\0';
		if (json_is_object(cur)) {
			cur = json_object_get(cur, seg);
		} else if (json_is_array(cur)) {
			char *end = NULL;
			unsigned long idx = strtoul(seg, &end, 10);
			if (*end != '\0')
				return NULL;
			cur = json_array_get(cur, idx);
		} else {
			return NULL;
		}
		p += n;
		if (*p == '.')
			p++;
	}
	return cur;
}

char *tp_json_canonical(const json_t *v)
{
	char *s = json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
	if (!s)
		s = tp_strdup("null");
	return s;
}

int tp_json_parse(json_t **out, const char *text, size_t len)
{
	json_error_t err;
	json_t *v = json_loadb(text, len, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &err);
	*out = NULL;
	if (!v)
		return tp_error_set(TP_EINVALID, "json: line %d col %d: %s", err.line, err.column,
				    err.text);
	*out = v;
	return 0;
}
