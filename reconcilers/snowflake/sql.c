/*
 * SQL text for the snowflake provider: turning the canonical identifiers the specs hold into
 * quoted SQL and back from the stored names SHOW prints, string literals and LIKE patterns
 * that cannot be broken out of, the ownership marker kept at the end of an object's COMMENT,
 * and reading a view's query back out of the CREATE text SHOW VIEWS returns. Everything the
 * statements in objects.c and grants.c interpolate goes through here.
 */
#include "snowflake_int.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MARKER_OPEN "[managed by "

static bool plain_start(char c)
{
	return (c >= 'A' && c <= 'Z') || c == '_';
}

static bool plain_char(char c)
{
	return plain_start(c) || (c >= '0' && c <= '9') || c == '$';
}

int tp_sf_path_split(tp_strlist *out, const char *canonical)
{
	const char *p = canonical;
	if (!canonical || !*canonical)
		return tp_error_set(TP_EINVALID, "snowflake: empty identifier");
	for (;;) {
		tp_buf b;
		tp_buf_init(&b, 1024);
		tp_buf_put(&b, "", 0);
		if (*p == '"') {
			p++;
			for (;;) {
				if (*p == '\0') {
					tp_buf_free(&b);
					return tp_error_set(TP_EINVALID, "snowflake: identifier %s "
							    "has no closing quote", canonical);
				}
				if (*p == '"' && p[1] == '"') {
					tp_buf_putc(&b, '"');
					p += 2;
				} else if (*p == '"') {
					p++;
					break;
				} else if (tp_buf_putc(&b, *p++) < 0) {
					tp_buf_free(&b);
					return tp_error_set(TP_EINVALID, "snowflake: identifier "
							    "too long");
				}
			}
		} else {
			size_t n = strcspn(p, ".");
			if (tp_buf_put(&b, p, n) < 0) {
				tp_buf_free(&b);
				return tp_error_set(TP_EINVALID, "snowflake: identifier too long");
			}
			/* canonical unquoted parts are upper-case already; be lenient anyway */
			for (size_t i = 0; i < b.len; i++)
				b.ptr[i] = (char)toupper((unsigned char)b.ptr[i]);
			p += n;
		}
		if (b.len == 0) {
			tp_buf_free(&b);
			return tp_error_set(TP_EINVALID, "snowflake: empty part in identifier %s",
					    canonical);
		}
		tp_strlist_push_owned(out, tp_buf_detach(&b));
		if (*p == '\0')
			return 0;
		if (*p != '.')
			return tp_error_set(TP_EINVALID, "snowflake: text after a closing quote "
					    "in identifier %s", canonical);
		p++;
	}
}

char *tp_sf_canon(const char *stored)
{
	tp_buf b;
	bool plain = plain_start(stored[0]);
	for (const char *p = stored; plain && *p; p++)
		plain = plain_char(*p);
	if (plain)
		return tp_strdup(stored);
	tp_buf_init(&b, TP_BUF_DEFAULT_MAX);
	tp_buf_putc(&b, '"');
	for (const char *p = stored; *p; p++) {
		if (*p == '"')
			tp_buf_putc(&b, '"');
		tp_buf_putc(&b, *p);
	}
	tp_buf_putc(&b, '"');
	return tp_buf_detach(&b);
}

char *tp_sf_canon_path(const char *const *stored, size_t n)
{
	tp_buf b;
	tp_buf_init(&b, TP_BUF_DEFAULT_MAX);
	tp_buf_put(&b, "", 0);
	for (size_t i = 0; i < n; i++) {
		char *c = tp_sf_canon(stored[i]);
		tp_buf_printf(&b, "%s%s", i ? "." : "", c);
		free(c);
	}
	return tp_buf_detach(&b);
}

void tp_sf_put_ident(tp_buf *b, const char *stored)
{
	tp_buf_putc(b, '"');
	for (const char *p = stored; *p; p++) {
		if (*p == '"')
			tp_buf_putc(b, '"');
		tp_buf_putc(b, *p);
	}
	tp_buf_putc(b, '"');
}

int tp_sf_put_path(tp_buf *b, const char *canonical)
{
	tp_strlist parts = {0};
	int rc = tp_sf_path_split(&parts, canonical);
	for (size_t i = 0; rc == 0 && i < parts.len; i++) {
		if (i)
			tp_buf_putc(b, '.');
		tp_sf_put_ident(b, parts.items[i]);
	}
	tp_strlist_free(&parts);
	return rc;
}

void tp_sf_put_literal(tp_buf *b, const char *s)
{
	tp_buf_putc(b, '\'');
	for (const char *p = s; *p; p++) {
		switch (*p) {
		case '\'': tp_buf_puts(b, "''"); break;
		case '\\': tp_buf_puts(b, "\\\\"); break;
		case '\n': tp_buf_puts(b, "\\n"); break;
		case '\r': tp_buf_puts(b, "\\r"); break;
		case '\t': tp_buf_puts(b, "\\t"); break;
		default: tp_buf_putc(b, *p); break;
		}
	}
	tp_buf_putc(b, '\'');
}

void tp_sf_put_like(tp_buf *b, const char *stored)
{
	tp_buf pat;
	tp_buf_init(&pat, TP_BUF_DEFAULT_MAX);
	tp_buf_put(&pat, "", 0);
	for (const char *p = stored; *p; p++) {
		if (*p == '%' || *p == '_' || *p == '\\')
			tp_buf_putc(&pat, '\\');
		tp_buf_putc(&pat, *p);
	}
	tp_buf_puts(b, " LIKE ");
	tp_sf_put_literal(b, tp_buf_cstr(&pat));
	tp_buf_free(&pat);
}

char *tp_sf_comment_compose(const char *comment, const char *marker, const char *extra)
{
	return tp_sprintf("%s%s" MARKER_OPEN "%s%s%s]", comment && *comment ? comment : "",
			  comment && *comment ? " " : "", marker, extra ? " " : "",
			  extra ? extra : "");
}

void tp_sf_comment_split(const char *live, char **user, char **marker, char **extra)
{
	const char *open = NULL, *p, *end;
	size_t n;

	*user = *marker = *extra = NULL;
	if (!live)
		live = "";
	n = strlen(live);
	/* the last "[managed by tapestry:" that runs to the closing ']' at the very end */
	for (p = strstr(live, MARKER_OPEN "tapestry:"); p;
	     p = strstr(p + 1, MARKER_OPEN "tapestry:"))
		open = p;
	if (!open || n == 0 || live[n - 1] != ']' ||
	    memchr(open, ']', (size_t)(live + n - 1 - open))) {
		*user = tp_strdup(live);
		return;
	}
	end = live + n - 1;
	p = open + strlen(MARKER_OPEN);
	{
		const char *sp = memchr(p, ' ', (size_t)(end - p));
		const char *mend = sp ? sp : end;
		*marker = tp_strndup(p, (size_t)(mend - p));
		if (sp)
			*extra = tp_strndup(sp + 1, (size_t)(end - sp - 1));
	}
	while (open > live && open[-1] == ' ')
		open--;
	*user = tp_strndup(live, (size_t)(open - live));
}

/* Length of a comment, string or quoted identifier starting at s (0: none of them). */
static size_t skip_len(const char *s)
{
	size_t i = 1;
	if ((s[0] == '-' && s[1] == '-') || (s[0] == '/' && s[1] == '/')) {
		while (s[i] && s[i] != '\n')
			i++;
		return i;
	}
	if (s[0] == '/' && s[1] == '*') {
		const char *e = strstr(s + 2, "*/");
		return e ? (size_t)(e - s) + 2 : strlen(s);
	}
	if (s[0] == '$' && s[1] == '$') {
		const char *e = strstr(s + 2, "$$");
		return e ? (size_t)(e - s) + 2 : strlen(s);
	}
	if (s[0] == '\'' || s[0] == '"') {
		while (s[i]) {
			if (s[0] == '\'' && s[i] == '\\' && s[i + 1]) {
				i += 2;
				continue;
			}
			if (s[i] == s[0]) {
				if (s[i + 1] == s[0]) {
					i += 2;
					continue;
				}
				return i + 1;
			}
			i++;
		}
		return i;
	}
	return 0;
}

static bool word_char(char c)
{
	return isalnum((unsigned char)c) || c == '_' || c == '$';
}

char *tp_sf_view_body(const char *text)
{
	const char *p = text;
	bool after_view = false;
	while (*p) {
		size_t n = skip_len(p);
		if (n) {
			p += n;
			continue;
		}
		if (word_char(*p) && (p == text || !word_char(p[-1]))) {
			size_t w = 0;
			while (word_char(p[w]))
				w++;
			if (w == 4 && strncasecmp(p, "VIEW", 4) == 0)
				after_view = true;
			else if (after_view && w == 2 && strncasecmp(p, "AS", 2) == 0) {
				const char *b = p + 2, *e;
				while (isspace((unsigned char)*b))
					b++;
				e = b + strlen(b);
				while (e > b && isspace((unsigned char)e[-1]))
					e--;
				return tp_strndup(b, (size_t)(e - b));
			}
			p += w;
			continue;
		}
		p++;
	}
	return NULL;
}

void tp_sf_digest16(char out[17], const char *text)
{
	uint8_t d[TP_SHA256_LEN];
	char hex[2 * TP_SHA256_LEN + 1];
	tp_sha256(d, text, strlen(text));
	tp_hex_encode(hex, d, sizeof(d));
	memcpy(out, hex, 16);
	out[16] = '\0';
}
