/*
 * A small DOM over expat for the XML the Query protocol returns (CloudFormation, STS, IAM):
 * elements with their local names, their direct character data and their children, nothing
 * else (attributes and namespaces play no part in those replies). Hostile input is bounded:
 * a DOCTYPE or entity declaration stops the parse (no entity expansion), depth and node count
 * are capped, and a reply is already capped in size by the HTTP client. Sits under query.c,
 * which turns replies into documents and errors.
 */
#include "aws_int.h"

#include <expat.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
	XML_Parser p;
	tp_aws_xml *root;
	tp_aws_xml *cur;
	tp_buf text; /* character data of cur, attached at its end tag */
	int depth;
	size_t nodes;
	char why[160];
} builder;

static void node_free(tp_aws_xml *n)
{
	while (n) {
		tp_aws_xml *next = n->next;
		node_free(n->first);
		free(n->name);
		free(n->text);
		free(n);
		n = next;
	}
}

void tp_aws_xml_free(tp_aws_xml *root)
{
	node_free(root);
}

static void fail(builder *b, const char *why)
{
	if (!b->why[0])
		snprintf(b->why, sizeof(b->why), "%s", why);
	XML_StopParser(b->p, XML_FALSE);
}

static void on_start(void *ctx, const XML_Char *name, const XML_Char **attrs)
{
	builder *b = ctx;
	tp_aws_xml *n;
	const char *local = strrchr(name, '\x1f'); /* namespace separator, see parser_create */
	(void)attrs;
	if (b->why[0])
		return;
	if (++b->depth > TP_AWS_XML_MAX_DEPTH) {
		fail(b, "nested too deeply");
		return;
	}
	if (++b->nodes > TP_AWS_XML_MAX_NODES) {
		fail(b, "too many elements");
		return;
	}
	if (b->cur && b->text.len) {
		/* mixed content: keep the text written before the child */
		size_t old = b->cur->text_len;
		b->cur->text = tp_realloc(b->cur->text, old + b->text.len + 1);
		memcpy(b->cur->text + old, b->text.ptr, b->text.len);
		b->cur->text_len = old + b->text.len;
		b->cur->text[b->cur->text_len] = '\0';
		tp_buf_clear(&b->text);
	}
	tp_buf_clear(&b->text);
	n = tp_calloc(1, sizeof(*n));
	n->name = tp_strdup(local ? local + 1 : name);
	n->text = tp_strdup("");
	n->parent = b->cur;
	if (!b->cur) {
		if (b->root) {
			free(n->name);
			free(n->text);
			free(n);
			fail(b, "more than one root element");
			return;
		}
		b->root = n;
	} else if (b->cur->last) {
		b->cur->last->next = n;
		b->cur->last = n;
	} else {
		b->cur->first = b->cur->last = n;
	}
	b->cur = n;
}

static void on_end(void *ctx, const XML_Char *name)
{
	builder *b = ctx;
	tp_aws_xml *n = b->cur;
	(void)name;
	if (b->why[0] || !n)
		return;
	if (b->text.len) {
		size_t old = n->text_len;
		n->text = tp_realloc(n->text, old + b->text.len + 1);
		memcpy(n->text + old, b->text.ptr, b->text.len);
		n->text_len = old + b->text.len;
		n->text[n->text_len] = '\0';
	}
	tp_buf_clear(&b->text);
	b->cur = n->parent;
	b->depth--;
}

static void on_text(void *ctx, const XML_Char *s, int len)
{
	builder *b = ctx;
	if (b->why[0] || !b->cur || len <= 0)
		return;
	if (tp_buf_put(&b->text, s, (size_t)len) < 0)
		fail(b, "text too long");
}

static void on_doctype(void *ctx, const XML_Char *name, const XML_Char *sysid,
		       const XML_Char *pubid, int has_internal)
{
	(void)name;
	(void)sysid;
	(void)pubid;
	(void)has_internal;
	fail(ctx, "DOCTYPE declarations are not accepted");
}

static void on_entity(void *ctx, const XML_Char *name, int is_param, const XML_Char *value,
		      int value_len, const XML_Char *base, const XML_Char *sysid,
		      const XML_Char *pubid, const XML_Char *notation)
{
	(void)name;
	(void)is_param;
	(void)value;
	(void)value_len;
	(void)base;
	(void)sysid;
	(void)pubid;
	(void)notation;
	fail(ctx, "entity declarations are not accepted");
}

int tp_aws_xml_parse(tp_aws_xml **out, const char *data, size_t len)
{
	builder b;
	int rc = 0;
	enum XML_Status st;

	*out = NULL;
	memset(&b, 0, sizeof(b));
	tp_buf_init(&b.text, 16u << 20);
	if (len > (size_t)INT32_MAX) {
		rc = tp_error_set(TP_ETOOBIG, "xml: document too large");
		goto done;
	}
	/* namespace processing on, so "ns:Name" and xmlns-qualified names come out local */
	b.p = XML_ParserCreateNS(NULL, '\x1f');
	if (!b.p) {
		rc = tp_error_set(TP_ENOMEM, "xml: cannot create a parser");
		goto done;
	}
	XML_SetUserData(b.p, &b);
	XML_SetElementHandler(b.p, on_start, on_end);
	XML_SetCharacterDataHandler(b.p, on_text);
	XML_SetStartDoctypeDeclHandler(b.p, on_doctype);
	XML_SetEntityDeclHandler(b.p, on_entity);
	XML_SetParamEntityParsing(b.p, XML_PARAM_ENTITY_PARSING_NEVER);
	st = XML_Parse(b.p, data ? data : "", (int)len, XML_TRUE);
	if (b.why[0] || st != XML_STATUS_OK) {
		rc = tp_error_set(TP_EINVALID, "xml: line %lu col %lu: %s",
				  (unsigned long)XML_GetCurrentLineNumber(b.p),
				  (unsigned long)XML_GetCurrentColumnNumber(b.p) + 1,
				  b.why[0] ? b.why : XML_ErrorString(XML_GetErrorCode(b.p)));
		goto done;
	}
	if (!b.root) {
		rc = tp_error_set(TP_EINVALID, "xml: the document is empty");
		goto done;
	}
	*out = b.root;
	b.root = NULL;
done:
	if (b.p)
		XML_ParserFree(b.p);
	node_free(b.root);
	tp_buf_free(&b.text);
	return rc;
}

const tp_aws_xml *tp_aws_xml_child(const tp_aws_xml *n, const char *name)
{
	if (!n)
		return NULL;
	for (const tp_aws_xml *c = n->first; c; c = c->next)
		if (strcmp(c->name, name) == 0)
			return c;
	return NULL;
}

const tp_aws_xml *tp_aws_xml_path(const tp_aws_xml *n, const char *path)
{
	char seg[256];
	const char *p = path;
	while (n && *p) {
		const char *slash = strchr(p, '/');
		size_t len = slash ? (size_t)(slash - p) : strlen(p);
		if (len >= sizeof(seg))
			return NULL;
		memcpy(seg, p, len);
		seg[len] = '\0';
		n = tp_aws_xml_child(n, seg);
		p += len + (slash ? 1 : 0);
	}
	return n;
}

const char *tp_aws_xml_text(const tp_aws_xml *n, const char *path)
{
	const tp_aws_xml *x = tp_aws_xml_path(n, path);
	return x ? x->text : NULL;
}

const tp_aws_xml *tp_aws_xml_find(const tp_aws_xml *n, const char *name)
{
	if (!n)
		return NULL;
	if (strcmp(n->name, name) == 0)
		return n;
	for (const tp_aws_xml *c = n->first; c; c = c->next) {
		const tp_aws_xml *f = tp_aws_xml_find(c, name);
		if (f)
			return f;
	}
	return NULL;
}
