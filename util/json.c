/*
 * JSON helpers over jansson: lookup, canonical form, parsing, and the ordering, sorting and
 * emptiness helpers the kinds' normalise hooks share. The ownership rule for json_t references
 * is in util.h and holds for the whole code base.
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

int tp_json_cmp(const json_t *a, const json_t *b)
{
	char *ca, *cb;
	int r;
	if (json_is_string(a) && json_is_string(b))
		return strcmp(json_string_value(a), json_string_value(b));
	/* a string's canonical text starts with '"', below that of any other value */
	ca = tp_json_canonical(a);
	cb = tp_json_canonical(b);
	r = strcmp(ca, cb);
	free(ca);
	free(cb);
	return r;
}

int tp_json_qsort_cmp(const void *a, const void *b)
{
	return tp_json_cmp(*(json_t *const *)a, *(json_t *const *)b);
}

int tp_str_qsort_cmp(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

void tp_json_array_sort(json_t *arr, int (*cmp)(const void *, const void *), bool unique)
{
	size_t n = json_array_size(arr);
	json_t **items;
	if (n < 2)
		return;
	items = tp_malloc(n * sizeof(*items));
	for (size_t i = 0; i < n; i++)
		items[i] = json_incref(json_array_get(arr, i));
	qsort(items, n, sizeof(*items), cmp);
	json_array_clear(arr);
	for (size_t i = 0; i < n; i++) {
		if (unique && i > 0 && json_equal(items[i], items[i - 1]))
			json_decref(items[i]);
		else
			json_array_append_new(arr, items[i]);
	}
	free(items);
}

void tp_json_drop_empty(json_t *obj, const char *key, unsigned what)
{
	json_t *v = json_object_get(obj, key);
	bool empty;
	if (!v)
		return;
	if (json_is_null(v))
		empty = what & TP_JSON_EMPTY_NULL;
	else if (json_is_string(v))
		empty = (what & TP_JSON_EMPTY_STRING) && json_string_value(v)[0] == '\0';
	else if (json_is_array(v))
		empty = (what & TP_JSON_EMPTY_CONTAINER) && json_array_size(v) == 0;
	else if (json_is_object(v))
		empty = (what & TP_JSON_EMPTY_CONTAINER) && json_object_size(v) == 0;
	else
		empty = false;
	if (empty)
		json_object_del(obj, key);
}
