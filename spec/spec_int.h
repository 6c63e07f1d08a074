/*
 * Private to spec/: the YAML node tree with positions and the schema converter. Nothing
 * outside this folder includes it; spec.h is the module's contract.
 */
#ifndef TP_SPEC_INT_H
#define TP_SPEC_INT_H

#include "spec.h"

typedef enum { TP_YNODE_SCALAR, TP_YNODE_SEQ, TP_YNODE_MAP } tp_ynode_type;

typedef struct tp_ynode {
	tp_ynode_type type;
	int line, col;          /* 1-based */
	char *text;             /* SCALAR: value (NUL-terminated; may contain NULs before len) */
	size_t len;
	bool plain;             /* SCALAR: unquoted (subject to type resolution) */
	char *tag;              /* explicit tag or NULL */
	struct tp_ynode **kids; /* SEQ: items; MAP: key0, value0, key1, value1, ... */
	size_t nkids;
	size_t cap;
} tp_ynode;

typedef struct {
	tp_ynode **all; /* every node, for freeing (aliases share nodes) */
	size_t nall, capall;
	tp_ynode **docs; /* document roots; NULL for an empty document */
	size_t ndocs, capdocs;
} tp_yfile;

/* Parses YAML text (any number of documents). Syntax errors, tabs in indentation, invalid
 * UTF-8, duplicate keys, undefined aliases, non-scalar keys and excessive depth become
 * diagnostics for `file`; returns TP_EINVALID then. */
int tp_yaml_parse(tp_yfile **out, const char *file, const char *text, size_t len,
		  tp_diags *diags);
void tp_yfile_free(tp_yfile *f);

bool tp_ynode_is_null(const tp_ynode *n);
/* Value of key in a MAP node, or NULL. */
const tp_ynode *tp_ynode_get(const tp_ynode *map, const char *key);
const char *tp_ynode_type_name(const tp_ynode *n);

/* Converter state shared by the schema walk of one document. */
typedef struct {
	const char *file;
	const char *prefix;      /* shown before paths in messages ("spec", "settings") */
	tp_diags *diags;
	tp_tree *tree;           /* for TP_F_FILE checks; NULL skips them */
	size_t budget;           /* remaining node visits (alias expansion bound) */
	bool budget_hit;
	bool allow_resource_refs; /* false in tapestry.yaml */
	/* collected while converting */
	tp_ref *refs;
	size_t nrefs, caprefs;
	tp_strlist sensitive;
	int errors;
} tp_conv;

/* Converts node against the schema of field f (the field's own flags apply). `path` is the
 * dotted spec path ("" for the root). Returns a new reference, or NULL when the node is null
 * or invalid (errors reported; check c->errors). */
json_t *tp_conv_field(tp_conv *c, const tp_ynode *n, const tp_field *f, const char *path);
/* Converts a MAP node against a NULL-terminated field array (an OBJECT's body). */
json_t *tp_conv_object(tp_conv *c, const tp_ynode *n, const tp_field *fields, const char *path);
void tp_conv_free(tp_conv *c);

/* The node at a dotted path under root (for placing errors), or the deepest one found. */
const tp_ynode *tp_ynode_at_path(const tp_ynode *root, const char *path);
/* "streams.0.name" → "streams[0].name" into a fresh string. */
char *tp_path_display(const char *prefix, const char *path);

/* Edit distance suggestion: the closest of candidates to word, or NULL when none is close. */
const char *tp_suggest(const char *word, const char *const *candidates, size_t n);

#endif
