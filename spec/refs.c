/*
 * References inside spec strings: ${kind/name.output} (another resource's output, resolved
 * at apply time; it also orders the graph) and ${secret:scheme:location} (a secret resolved at
 * apply time and never stored). `$${` writes a literal "${".
 */
#include "spec.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

static bool all_chars(const char *s, size_t n, const char *extra, bool alnum)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)s[i];
		if (alnum && isalnum(ch))
			continue;
		if (strchr(extra, ch) && ch)
			continue;
		return false;
	}
	return true;
}

static int parse_secret(tp_ref *r, const char *body, size_t n)
{
	const char *colon = memchr(body, ':', n);
	size_t slen, llen;
	const char *loc;

	if (!colon)
		return tp_error_set(TP_EINVALID,
				    "secret reference \"${%.*s}\" needs a scheme and a location, "
				    "like ${secret:ssm:/path}, ${secret:env:NAME} or "
				    "${secret:file:/path}", (int)n, body);
	slen = (size_t)(colon - body);
	loc = colon + 1;
	llen = n - slen - 1;
	if (!((slen == 3 && memcmp(body, "ssm", 3) == 0) ||
	      (slen == 3 && memcmp(body, "env", 3) == 0) ||
	      (slen == 4 && memcmp(body, "file", 4) == 0)))
		return tp_error_set(TP_EINVALID,
				    "unknown secret scheme \"%.*s\" (expected ssm, env or file)",
				    (int)slen, body);
	if (llen == 0)
		return tp_error_set(TP_EINVALID, "secret reference with an empty %.*s location",
				    (int)slen, body);
	if (body[0] == 'e') {
		if (!(isalpha((unsigned char)loc[0]) || loc[0] == '_') ||
		    !all_chars(loc, llen, "_", true))
			return tp_error_set(TP_EINVALID,
					    "invalid environment variable name \"%.*s\"",
					    (int)llen, loc);
	} else if (body[0] == 's') {
		if (!all_chars(loc, llen, "_.-/", true) || llen > 2048)
			return tp_error_set(TP_EINVALID,
					    "invalid SSM parameter name \"%.*s\" (letters, digits "
					    "and _.-/ only)", (int)llen, loc);
	} else if (loc[0] != '/') {
		return tp_error_set(TP_EINVALID,
				    "secret file \"%.*s\" must be an absolute path on the "
				    "controller host", (int)llen, loc);
	}
	r->type = TP_REF_SECRET;
	r->scheme = tp_strndup(body, slen);
	r->location = tp_strndup(loc, llen);
	return 0;
}

static int parse_resource(tp_ref *r, const char *body, size_t n)
{
	const char *slash = memchr(body, '/', n);
	const char *dot, *name, *end = body + n;
	size_t klen;

	if (!slash)
		goto bad;
	klen = (size_t)(slash - body);
	if (klen == 0 || !all_chars(body, klen, "._", true) || !memchr(body, '.', klen))
		goto bad;
	name = slash + 1;
	dot = memchr(name, '.', (size_t)(end - name));
	if (!dot || dot == name || dot + 1 >= end)
		goto bad;
	if (!all_chars(name, (size_t)(dot - name), "_-", true))
		goto bad;
	if (!all_chars(dot + 1, (size_t)(end - dot - 1), "_.-", true) || end[-1] == '.')
		goto bad;
	r->type = TP_REF_RESOURCE;
	r->kind = tp_strndup(body, klen);
	r->name = tp_strndup(name, (size_t)(dot - name));
	r->output = tp_strndup(dot + 1, (size_t)(end - dot - 1));
	return 0;
bad:
	return tp_error_set(TP_EINVALID,
			    "malformed reference \"${%.*s}\" (expected ${<kind>/<name>.<output>} "
			    "or ${secret:<scheme>:<location>})", (int)n, body);
}

void tp_ref_clear(tp_ref *r)
{
	if (!r)
		return;
	free(r->kind);
	free(r->name);
	free(r->output);
	free(r->scheme);
	free(r->location);
	free(r->path);
	memset(r, 0, sizeof(*r));
}

int tp_refs_scan(const char *s, tp_ref_fn fn, void *ctx)
{
	size_t i = 0, len = strlen(s);
	while (i < len) {
		const char *close;
		tp_ref r;
		size_t start, n;
		int rc;

		if (s[i] == '$' && s[i + 1] == '$' && s[i + 2] == '{') {
			i += 3; /* escaped: literal "${" */
			continue;
		}
		if (!(s[i] == '$' && s[i + 1] == '{')) {
			i++;
			continue;
		}
		start = i;
		close = strchr(s + i + 2, '}');
		if (!close)
			return tp_error_set(TP_EINVALID, "unterminated reference \"%.40s\"", s + i);
		n = (size_t)(close - (s + i + 2));
		if (memchr(s + i + 2, '$', n) && strstr(s + i + 2, "${") < close)
			return tp_error_set(TP_EINVALID, "nested reference in \"%.*s\"",
					    (int)(n + 3), s + i);
		memset(&r, 0, sizeof(r));
		if (n > 7 && memcmp(s + i + 2, "secret:", 7) == 0)
			rc = parse_secret(&r, s + i + 9, n - 7);
		else
			rc = parse_resource(&r, s + i + 2, n);
		if (rc == 0 && fn)
			rc = fn(ctx, &r, start, (size_t)(close - s) + 1);
		tp_ref_clear(&r);
		if (rc < 0)
			return rc;
		i = (size_t)(close - s) + 1;
	}
	return 0;
}

bool tp_ref_is_whole_secret(const char *s)
{
	size_t n = strlen(s);
	return n > 10 && strncmp(s, "${secret:", 9) == 0 && s[n - 1] == '}' &&
	       strchr(s, '}') == s + n - 1 && tp_refs_scan(s, NULL, NULL) == 0;
}

char *tp_file_field_path(const char *value, const char **digest)
{
	const char *at = strstr(value, TP_FILE_DIGEST_SEP);
	if (!at) {
		if (digest)
			*digest = "";
		return tp_strdup(value);
	}
	if (digest)
		*digest = at + strlen(TP_FILE_DIGEST_SEP);
	return tp_strndup(value, (size_t)(at - value));
}
