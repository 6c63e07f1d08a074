/*
 * Helpers shared by the kinds' hooks: the ${...} test that every format check starts with, and
 * the refusal of literal or masked secrets in free-form settings (Airbyte connector
 * configuration, Grouparoo app options). They live here once so that every provider judges a
 * reference, a credential-like key and a masked value the same way.
 */
#include "reconciler.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

/* The mask APIs (Airbyte) answer for secret fields; never a value anyone meant to write. */
#define MASK "**********"

bool tp_kind_has_ref(const char *s)
{
	return strstr(s, "${") != NULL;
}

/* Settings named like credentials ("password", "client_secret", "apiKey", "refresh_token",
 * "private_key", "secret_access_key", ...): compared with case, '_' and '-' ignored, by
 * suffix, so that "token_expiry_date" and "access_key_id" are not ones. */
static bool secret_like_key(const char *key)
{
	static const char *const suffixes[] = {
		"password", "passwd", "secret", "apikey", "token", "privatekey", "passphrase",
		"secretkey", "accesskey", "credentialsjson", "clientsecret", NULL,
	};
	char flat[128];
	size_t n = 0;

	for (const char *p = key; *p && n + 1 < sizeof(flat); p++)
		if (*p != '_' && *p != '-')
			flat[n++] = (char)tolower((unsigned char)*p);
	flat[n] = '\0';
	for (size_t i = 0; suffixes[i]; i++) {
		size_t sl = strlen(suffixes[i]);
		if (n >= sl && strcmp(flat + n - sl, suffixes[i]) == 0)
			return true;
	}
	return false;
}

/* `key` is the member name the value sits under (NULL at the top). */
static void check_secrets(const json_t *v, const char *key, const char *path, tp_check *c)
{
	/* jansson's iterators take non-const pointers; the walk never modifies the tree */
	json_t *cur = (json_t *)(uintptr_t)v;
	const char *k;
	json_t *item;
	size_t i;

	if (json_is_string(cur)) {
		const char *s = json_string_value(cur);
		if (strcmp(s, MASK) == 0)
			tp_check_error(c, path, "the masked value \"%s\" cannot be written back; "
				       "use a ${secret:...} reference for secret fields", MASK);
		else if (key && *s && !tp_kind_has_ref(s) && secret_like_key(key))
			tp_check_error(c, path, "looks like a credential: use a ${secret:ssm:...}, "
				       "${secret:env:...} or ${secret:file:...} reference; secret "
				       "values never live in Git");
	} else if (json_is_object(cur)) {
		json_object_foreach(cur, k, item) {
			char *sub = tp_sprintf("%s.%s", path, k);
			check_secrets(item, k, sub, c);
			free(sub);
		}
	} else if (json_is_array(cur)) {
		json_array_foreach(cur, i, item) {
			char *sub = tp_sprintf("%s.%zu", path, i);
			check_secrets(item, key, sub, c);
			free(sub);
		}
	}
}

void tp_kind_check_literal_secrets(const json_t *value, const char *path, tp_check *c)
{
	check_secrets(value, NULL, path, c);
}
