/*
 * The fake's SQL lexer: turns a request's text into statements (split at top-level ';') and
 * a statement into tokens. It knows Snowflake's lexical rules that matter to the reconciler:
 * unquoted identifiers (case-insensitive, stored upper-case), "quoted" identifiers ("" is one
 * quote), 'strings' ('' and backslash escapes), $$dollar-quoted$$ strings, and the three
 * comment forms (--, // and slash-star).
 */
#include "fake.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int fk_fail(fk_error *e, const char *code, const char *state, const char *fmt, ...)
{
	va_list ap;
	snprintf(e->code, sizeof(e->code), "%s", code);
	snprintf(e->sql_state, sizeof(e->sql_state), "%s", state);
	va_start(ap, fmt);
	vsnprintf(e->message, sizeof(e->message), fmt, ap);
	va_end(ap);
	return -1;
}

static void push(fk_toks *t, fk_tok_type type, char *text, size_t off)
{
	fk_tok *k;
	if (t->len == t->cap) {
		t->cap = t->cap ? t->cap * 2 : 32;
		t->items = tp_realloc(t->items, t->cap * sizeof(*t->items));
	}
	k = &t->items[t->len++];
	k->type = type;
	k->text = text;
	k->up = NULL;
	k->off = off;
	if (type == FK_WORD) {
		k->up = tp_strdup(text);
		for (char *p = k->up; *p; p++)
			*p = (char)toupper((unsigned char)*p);
	}
}

void fk_toks_free(fk_toks *t)
{
	if (!t)
		return;
	for (size_t i = 0; i < t->len; i++) {
		free(t->items[i].text);
		free(t->items[i].up);
	}
	free(t->items);
	memset(t, 0, sizeof(*t));
}

static bool word_start(char c)
{
	return isalpha((unsigned char)c) || c == '_';
}

static bool word_char(char c)
{
	return isalnum((unsigned char)c) || c == '_' || c == '$';
}

/* Length of a comment starting at s, or 0 when s does not start one. */
static size_t comment_len(const char *s, size_t left)
{
	size_t i = 2;
	if (left >= 2 && ((s[0] == '-' && s[1] == '-') || (s[0] == '/' && s[1] == '/'))) {
		while (i < left && s[i] != '\n')
			i++;
		return i;
	}
	if (left >= 2 && s[0] == '/' && s[1] == '*') {
		while (i + 1 < left && !(s[i] == '*' && s[i + 1] == '/'))
			i++;
		return i + 1 < left ? i + 2 : left;
	}
	return 0;
}

int fk_lex(fk_toks *out, const char *sql, size_t len, fk_error *e)
{
	size_t i = 0;
	memset(out, 0, sizeof(*out));
	while (i < len) {
		char c = sql[i];
		size_t cl, before = out->len;
		if (isspace((unsigned char)c)) {
			i++;
			continue;
		}
		if ((cl = comment_len(sql + i, len - i)) > 0) {
			i += cl;
			continue;
		}
		if (word_start(c) || (unsigned char)c >= 0x80) {
			size_t j = i + 1;
			while (j < len && (word_char(sql[j]) || (unsigned char)sql[j] >= 0x80))
				j++;
			push(out, FK_WORD, tp_strndup(sql + i, j - i), i);
			i = j;
		} else if (isdigit((unsigned char)c)) {
			size_t j = i;
			while (j < len && (isdigit((unsigned char)sql[j]) || sql[j] == '.'))
				j++;
			push(out, FK_NUMBER, tp_strndup(sql + i, j - i), i);
			i = j;
		} else if (c == '"') {
			tp_buf b;
			size_t j = i + 1;
			tp_buf_init(&b, 1 << 20);
			for (;;) {
				if (j >= len) {
					tp_buf_free(&b);
					fk_toks_free(out);
					return fk_fail(e, "001003", "42000", "SQL compilation error:\n"
						       "syntax error line 1 at position %zu unexpected "
						       "'<EOF>'.", i);
				}
				if (sql[j] == '"' && j + 1 < len && sql[j + 1] == '"') {
					tp_buf_putc(&b, '"');
					j += 2;
				} else if (sql[j] == '"') {
					break;
				} else {
					tp_buf_putc(&b, sql[j++]);
				}
			}
			push(out, FK_QIDENT, tp_buf_detach(&b), i);
			i = j + 1;
		} else if (c == '\'') {
			tp_buf b;
			size_t j = i + 1;
			tp_buf_init(&b, 16 << 20);
			tp_buf_put(&b, "", 0);
			for (;;) {
				if (j >= len) {
					tp_buf_free(&b);
					fk_toks_free(out);
					return fk_fail(e, "001003", "42000", "SQL compilation error:\n"
						       "parse error line 1 at position %zu near '<EOF>'.",
						       i);
				}
				if (sql[j] == '\'' && j + 1 < len && sql[j + 1] == '\'') {
					tp_buf_putc(&b, '\'');
					j += 2;
				} else if (sql[j] == '\'') {
					break;
				} else if (sql[j] == '\\' && j + 1 < len) {
					char n = sql[j + 1];
					tp_buf_putc(&b, n == 'n' ? '\n' : n == 't' ? '\t' : n == 'r' ? '\r'
							: n == '0' ? '\0' : n == 'b' ? '\b' : n == 'f' ? '\f'
							: n);
					j += 2;
				} else {
					tp_buf_putc(&b, sql[j++]);
				}
			}
			push(out, FK_STRING, tp_buf_detach(&b), i);
			i = j + 1;
		} else if (c == '$' && i + 1 < len && sql[i + 1] == '$') {
			const char *end = NULL;
			for (size_t j = i + 2; j + 1 < len; j++)
				if (sql[j] == '$' && sql[j + 1] == '$') {
					end = sql + j;
					break;
				}
			if (!end) {
				fk_toks_free(out);
				return fk_fail(e, "001003", "42000", "SQL compilation error:\nparse "
					       "error line 1 at position %zu near '<EOF>'.", i);
			}
			push(out, FK_STRING, tp_strndup(sql + i + 2, (size_t)(end - sql) - i - 2), i);
			i = (size_t)(end - sql) + 2;
		} else {
			char p[2] = {c, 0};
			push(out, FK_PUNCT, tp_strdup(p), i);
			i++;
		}
		if (out->len > before)
			out->items[out->len - 1].end = i;
	}
	push(out, FK_EOF, tp_strdup(""), len);
	out->items[out->len - 1].end = len;
	return 0;
}

void fk_stmts_free(fk_stmt *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(s[i].text);
	free(s);
}

/* Whether s[0..n) holds anything but blanks and comments. */
static bool has_content(const char *s, size_t n)
{
	size_t i = 0;
	while (i < n) {
		size_t cl = comment_len(s + i, n - i);
		if (cl) {
			i += cl;
			continue;
		}
		if (!isspace((unsigned char)s[i]))
			return true;
		i++;
	}
	return false;
}

static void add_stmt(fk_stmt **out, size_t *n, const char *sql, size_t from, size_t to)
{
	int line = 1, col = 1;
	size_t start = from;
	/* position of the first character that is not a blank (comments count as text: the
	 * statement starts where its text starts) */
	while (start < to && isspace((unsigned char)sql[start]))
		start++;
	for (size_t i = 0; i < start; i++) {
		if (sql[i] == '\n') {
			line++;
			col = 1;
		} else {
			col++;
		}
	}
	while (to > start && isspace((unsigned char)sql[to - 1]))
		to--;
	*out = tp_realloc(*out, (*n + 1) * sizeof(**out));
	(*out)[*n].text = tp_strndup(sql + start, to - start);
	(*out)[*n].line = line;
	(*out)[*n].col = col;
	(*n)++;
}

int fk_split(fk_stmt **out, size_t *n, const char *sql, fk_error *e)
{
	size_t len = strlen(sql), i = 0, from = 0;
	*out = NULL;
	*n = 0;
	while (i < len) {
		char c = sql[i];
		size_t cl = comment_len(sql + i, len - i);
		if (cl) {
			i += cl;
		} else if (c == '\'' || c == '"') {
			size_t j = i + 1;
			while (j < len) {
				if (c == '\'' && sql[j] == '\\' && j + 1 < len) {
					j += 2;
					continue;
				}
				if (sql[j] == c) {
					if (j + 1 < len && sql[j + 1] == c) {
						j += 2;
						continue;
					}
					break;
				}
				j++;
			}
			if (j >= len) {
				fk_stmts_free(*out, *n);
				*out = NULL;
				*n = 0;
				return fk_fail(e, "001003", "42000", "SQL compilation error:\nparse "
					       "error line 1 at position %zu near '<EOF>'.", i);
			}
			i = j + 1;
		} else if (c == '$' && i + 1 < len && sql[i + 1] == '$') {
			const char *end = strstr(sql + i + 2, "$$");
			i = end ? (size_t)(end - sql) + 2 : len;
		} else if (c == ';') {
			if (has_content(sql + from, i - from))
				add_stmt(out, n, sql, from, i);
			from = ++i;
		} else {
			i++;
		}
	}
	if (has_content(sql + from, len - from))
		add_stmt(out, n, sql, from, len);
	return 0;
}
