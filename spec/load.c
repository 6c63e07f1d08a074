/*
 * The pipeline loader: tapestry.yaml and resources/<file>.yaml from a tp_tree → a validated
 * tp_pipeline. Steps: read files (bounded, UTF-8 checked) → parse YAML → check each document
 * against its kind's schema → provider settings and endpoint overrides → unique addresses →
 * resolve references and depends_on → detect cycles → topological order. Every error is a
 * diagnostic with file:line:col; nothing is returned unless the whole pipeline is valid.
 */
#include "spec_int.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#define SETTINGS_FILE "tapestry.yaml"
#define RESOURCES_DIR "resources"

/* ---------------------------------------------------------------- tapestry.yaml schema */

static const tp_field settings_fields[] = {
	{.name = "concurrency", .type = TP_TYPE_INT, .def = "8", .min = 1, .max = 256,
	 .doc = "how many independent actions run at once"},
	{.name = "max_prune", .type = TP_TYPE_STRING, .def = "\"25%\"",
	 .doc = "prune guard: refuse plans deleting more than this share of managed resources"},
	{.name = "self_heal", .type = TP_TYPE_BOOL, .def = "false",
	 .doc = "correct drift (live changes made outside Git) instead of only reporting it"},
	{.name = "drift_interval", .type = TP_TYPE_STRING, .def = "\"10m\"",
	 .doc = "how often the controller observes live state for drift"},
	{0},
};

static const tp_field lifecycle_fields[] = {
	{.name = "prevent_destroy", .type = TP_TYPE_BOOL, .def = "false",
	 .doc = "a plan that deletes or replaces this resource fails"},
	{.name = "deletion", .type = TP_TYPE_STRING, .def = "\"delete\"",
	 .enums = (const char *const[]){"delete", "retain", NULL},
	 .doc = "retain: removing the resource from Git forgets it instead of deleting it"},
	{.name = "ignore_changes", .type = TP_TYPE_LIST,
	 .items = &(const tp_field){.type = TP_TYPE_STRING, .flags = TP_F_NOREF},
	 .doc = "spec paths whose live changes are never corrected"},
	{0},
};

static const tp_field string_item = {.type = TP_TYPE_STRING, .flags = TP_F_NOREF};

/* ---------------------------------------------------------------- helpers */

typedef struct {
	tp_tree *tree;
	tp_diags *diags;
	tp_pipeline *p;
	size_t capres;
	/* positions of depends_on entries, parallel to resources while loading */
	struct pending_dep {
		size_t res;
		char *address;
		int line, col;
		char *file;
	} *pdeps;
	size_t npdeps, cappdeps;
	tp_strlist failed; /* addresses of documents that did not load (no cascading errors) */
} loader;

static bool valid_name(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > TP_SPEC_MAX_NAME || !isalnum((unsigned char)s[0]))
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && s[i] != '-' && s[i] != '_')
			return false;
	return true;
}

static int read_file(loader *L, tp_buf *out, const char *rel)
{
	int rc = L->tree->read(L->tree, out, rel, TP_SPEC_MAX_FILE_BYTES);
	if (rc == TP_ETOOBIG || rc == TP_EINVALID || rc == TP_EIO) {
		/* the tree's message starts with the path, which the diagnostic already shows */
		const char *m = tp_error_last();
		size_t n = strlen(rel);
		if (strncmp(m, rel, n) == 0 && m[n] == ':' && m[n + 1] == ' ')
			m += n + 2;
		tp_diags_add(L->diags, rel, 0, 0, "%s", m);
	}
	return rc;
}

static void check_hook_error(tp_check *c, const char *path, const char *fmt, va_list ap)
	__attribute__((format(printf, 3, 0)));

struct tp_check {
	tp_conv *conv;
	const tp_ynode *root;
};

void tp_check_error(tp_check *c, const char *path, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	check_hook_error(c, path, fmt, ap);
	va_end(ap);
}

static void check_hook_error(tp_check *c, const char *path, const char *fmt, va_list ap)
{
	const tp_ynode *n = tp_ynode_at_path(c->root, path ? path : "");
	char *where = tp_path_display(c->conv->prefix, path ? path : "");
	tp_buf msg;
	tp_buf_init(&msg, 8192);
	tp_buf_vprintf(&msg, fmt, ap);
	tp_diags_add(c->conv->diags, c->conv->file, n ? n->line : 0, n ? n->col : 0, "%s: %s",
		     where, tp_buf_cstr(&msg));
	tp_buf_free(&msg);
	free(where);
	c->conv->errors++;
}

static bool valid_url(const char *s)
{
	return (strncmp(s, "http://", 7) == 0 && s[7]) || (strncmp(s, "https://", 8) == 0 && s[8]);
}

/* ---------------------------------------------------------------- tapestry.yaml */

static int parse_percent(double *out, const char *s)
{
	char *end = NULL;
	double v = strtod(s, &end);
	if (end == s || (*end && strcmp(end, "%") != 0) || v < 0 || v > 100)
		return -1;
	*out = v;
	return 0;
}

/* Settings present in tapestry.yaml (the schema has filled in defaults for the rest). */
static void apply_settings(loader *L, const tp_ynode *root, const json_t *settings)
{
	const char *prune = tp_json_get_str(settings, "max_prune");
	const char *drift = tp_json_get_str(settings, "drift_interval");
	if (json_object_get(settings, "concurrency"))
		L->p->settings.concurrency = (int)json_integer_value(
			json_object_get(settings, "concurrency"));
	L->p->settings.self_heal = json_is_true(json_object_get(settings, "self_heal"));
	if (prune && parse_percent(&L->p->settings.max_prune_percent, prune) < 0) {
		const tp_ynode *n = tp_ynode_at_path(root, "settings.max_prune");
		tp_diags_add(L->diags, SETTINGS_FILE, n->line, n->col,
			     "settings.max_prune: expected a percentage from 0%% to 100%%, got "
			     "\"%s\"", prune);
	}
	if (drift && tp_duration_parse(&L->p->settings.drift_interval_ms, drift) < 0) {
		const tp_ynode *n = tp_ynode_at_path(root, "settings.drift_interval");
		tp_diags_add(L->diags, SETTINGS_FILE, n->line, n->col,
			     "settings.drift_interval: %s", tp_error_last());
	}
}

static void load_settings(loader *L, const tp_ynode *root)
{
	const tp_provider *const *provs = tp_registry_providers();
	size_t nprov = 0;
	tp_field *prov_fields = NULL, top[6];
	tp_conv c = {0};
	json_t *doc = NULL, *settings, *providers;
	const char *key;
	json_t *val;

	while (provs[nprov])
		nprov++;
	prov_fields = tp_calloc(nprov + 1, sizeof(*prov_fields));
	for (size_t i = 0; i < nprov; i++) {
		prov_fields[i].name = provs[i]->name;
		prov_fields[i].type = TP_TYPE_OBJECT;
		prov_fields[i].fields = provs[i]->config;
	}
	memset(top, 0, sizeof(top));
	top[0] = (tp_field){.name = "pipeline", .type = TP_TYPE_STRING,
			    .flags = TP_F_REQUIRED | TP_F_NOREF};
	top[1] = (tp_field){.name = "description", .type = TP_TYPE_STRING, .flags = TP_F_NOREF};
	top[2] = (tp_field){.name = "settings", .type = TP_TYPE_OBJECT, .fields = settings_fields,
			    .def = "{}"};
	top[3] = (tp_field){.name = "providers", .type = TP_TYPE_OBJECT, .fields = prov_fields,
			    .def = "{}"};

	c.file = SETTINGS_FILE;
	c.prefix = "";
	c.diags = L->diags;
	c.tree = L->tree;
	c.budget = TP_SPEC_MAX_NODES;
	c.allow_resource_refs = false;

	doc = tp_conv_object(&c, root, top, "");
	if (!doc)
		goto done;
	if (!json_object_get(doc, "pipeline"))
		goto done; /* reported as missing or invalid */

	key = tp_json_get_str(doc, "pipeline");
	if (!valid_name(key)) {
		const tp_ynode *n = tp_ynode_get(root, "pipeline");
		tp_diags_add(L->diags, SETTINGS_FILE, n->line, n->col,
			     "pipeline: \"%s\" is not a valid name (letters, digits, '-' and '_', "
			     "starting with a letter or digit, at most %d characters)",
			     key, TP_SPEC_MAX_NAME);
	}
	L->p->name = tp_strdup(key);

	settings = json_object_get(doc, "settings");
	if (json_object_size(settings) > 0)
		apply_settings(L, root, settings);

	providers = json_object_get(doc, "providers");
	L->p->providers = tp_calloc(nprov, sizeof(*L->p->providers));
	json_object_foreach(providers, key, val) {
		tp_provider_config *pc;
		if (!tp_registry_provider(key))
			continue; /* reported by the schema */
		pc = &L->p->providers[L->p->nproviders++];
		char envname[64], *upper;
		const char *ep, *file_ep = tp_json_get_str(val, "endpoint");
		pc->provider = tp_registry_provider(key);
		pc->config = json_incref(val);
		upper = tp_strdup(key);
		for (char *q = upper; *q; q++)
			*q = (char)toupper((unsigned char)*q);
		snprintf(envname, sizeof(envname), "TAPESTRY_ENDPOINT_%s", upper);
		free(upper);
		ep = getenv(envname);
		if (ep && *ep) {
			if (!valid_url(ep))
				tp_diags_add(L->diags, SETTINGS_FILE, 0, 0,
					     "environment variable %s: \"%s\" is not an http(s) "
					     "URL", envname, ep);
			pc->endpoint = tp_strdup(ep);
			pc->endpoint_from_env = true;
		} else if (file_ep) {
			if (!valid_url(file_ep)) {
				char *path = tp_sprintf("providers.%s.endpoint", key);
				const tp_ynode *n = tp_ynode_at_path(root, path);
				tp_diags_add(L->diags, SETTINGS_FILE, n->line, n->col,
					     "%s: \"%s\" is not an http(s) URL", path, file_ep);
				free(path);
			}
			pc->endpoint = tp_strdup(file_ep);
		}
	}
	json_decref(doc);
	doc = NULL;
done:
	if (doc)
		json_decref(doc);
	tp_conv_free(&c);
	free(prov_fields);
}

/* ---------------------------------------------------------------- resources */

static tp_resource *resource_new(loader *L)
{
	tp_pipeline *p = L->p;
	if (p->nresources == L->capres) {
		L->capres = L->capres ? L->capres * 2 : 64;
		p->resources = tp_realloc(p->resources, L->capres * sizeof(*p->resources));
	}
	memset(&p->resources[p->nresources], 0, sizeof(tp_resource));
	return &p->resources[p->nresources++];
}

static void resource_clear(tp_resource *r)
{
	free(r->address);
	free(r->name);
	json_decref(r->spec);
	free(r->file);
	for (size_t i = 0; i < r->nrefs; i++)
		tp_ref_clear(&r->refs[i]);
	free(r->refs);
	free(r->deps);
	tp_strlist_free(&r->sensitive_paths);
	tp_strlist_free(&r->ignore_changes);
}

static const char *const doc_keys[] = {"kind", "name", "spec", "depends_on", "lifecycle",
				       "description"};

static const char *kind_suggestion(const char *name)
{
	const tp_provider *const *provs = tp_registry_providers();
	const char *names[256];
	size_t n = 0;
	for (size_t i = 0; provs[i]; i++)
		for (size_t k = 0; provs[i]->kinds[k] && n < 256; k++)
			names[n++] = provs[i]->kinds[k]->name;
	return tp_suggest(name, names, n);
}

/* True when path names a field of the schema (maps and free-form values admit any suffix). */
static bool schema_has_path(const tp_field *fields, const char *path)
{
	const char *dot = strchr(path, '.');
	size_t n = dot ? (size_t)(dot - path) : strlen(path);
	for (size_t i = 0; fields[i].name; i++) {
		const tp_field *f = &fields[i];
		if (strlen(f->name) != n || strncmp(f->name, path, n) != 0)
			continue;
		if (!dot)
			return true;
		while (f->type == TP_TYPE_LIST) {
			/* skip an index or "*" after a list */
			const char *next = strchr(dot + 1, '.');
			const char *seg = dot + 1;
			size_t sl = next ? (size_t)(next - seg) : strlen(seg);
			if (!(sl == 1 && seg[0] == '*') && strspn(seg, "0123456789") != sl)
				return false;
			if (!next)
				return true;
			dot = next;
			f = f->items;
		}
		if (f->type == TP_TYPE_MAP || f->type == TP_TYPE_ANY)
			return true;
		if (f->type == TP_TYPE_OBJECT)
			return schema_has_path(f->fields, dot + 1);
		return false;
	}
	return false;
}

static void load_document(loader *L, const char *file, const tp_ynode *doc)
{
	const tp_ynode *kn, *nn, *sn, *dn, *ln;
	const tp_kind *kind = NULL;
	tp_resource *r = NULL;
	tp_conv c = {0};
	tp_check chk;
	json_t *spec = NULL, *lc = NULL;
	bool bad = false;
	int before;

	if (doc->type != TP_YNODE_MAP) {
		tp_diags_add(L->diags, file, doc->line, doc->col,
			     "a resource document must be a mapping with kind, name and spec; "
			     "found a %s", tp_ynode_type_name(doc));
		return;
	}
	for (size_t i = 0; i + 1 < doc->nkids; i += 2) {
		const tp_ynode *k = doc->kids[i];
		bool known = false;
		if (k->type != TP_YNODE_SCALAR)
			continue;
		for (size_t j = 0; j < sizeof(doc_keys) / sizeof(*doc_keys); j++)
			known = known || strcmp(doc_keys[j], k->text) == 0;
		if (!known) {
			const char *near = tp_suggest(k->text, doc_keys,
						      sizeof(doc_keys) / sizeof(*doc_keys));
			tp_diags_add(L->diags, file, k->line, k->col,
				     "unknown key \"%s\"%s%s%s (a resource document has kind, name, "
				     "spec, depends_on, lifecycle, description)", k->text,
				     near ? " (did you mean \"" : "", near ? near : "",
				     near ? "\"?)" : "");
			bad = true;
		}
	}
	kn = tp_ynode_get(doc, "kind");
	nn = tp_ynode_get(doc, "name");
	sn = tp_ynode_get(doc, "spec");
	if (!kn || tp_ynode_is_null(kn) || kn->type != TP_YNODE_SCALAR) {
		tp_diags_add(L->diags, file, kn ? kn->line : doc->line, kn ? kn->col : doc->col,
			     kn ? "kind must be a string like \"snowflake.warehouse\""
				: "missing required key \"kind\"");
		bad = true;
	} else if (!(kind = tp_registry_kind(kn->text))) {
		const char *near = kind_suggestion(kn->text);
		tp_diags_add(L->diags, file, kn->line, kn->col, "unknown kind \"%s\"%s%s%s",
			     kn->text, near ? " (did you mean \"" : "", near ? near : "",
			     near ? "\"?)" : "");
		bad = true;
	}
	if (!nn || tp_ynode_is_null(nn) || nn->type != TP_YNODE_SCALAR) {
		tp_diags_add(L->diags, file, nn ? nn->line : doc->line, nn ? nn->col : doc->col,
			     nn ? "name must be a string" : "missing required key \"name\"");
		bad = true;
	} else if (!valid_name(nn->text)) {
		tp_diags_add(L->diags, file, nn->line, nn->col,
			     "name \"%s\" is not valid (letters, digits, '-' and '_', starting "
			     "with a letter or digit, at most %d characters)", nn->text,
			     TP_SPEC_MAX_NAME);
		bad = true;
	}
	if (!sn) {
		tp_diags_add(L->diags, file, doc->line, doc->col,
			     "missing required key \"spec\" (use \"spec: {}\" for none)");
		bad = true;
	}
	if (!kind)
		return;

	c.file = file;
	c.prefix = "spec";
	c.diags = L->diags;
	c.tree = L->tree;
	c.budget = TP_SPEC_MAX_NODES;
	c.allow_resource_refs = true;
	before = 0;

	if (sn) {
		if (tp_ynode_is_null(sn)) {
			tp_diags_add(L->diags, file, sn->line, sn->col,
				     "spec: expected a mapping, got null (use \"spec: {}\" for none)");
			bad = true;
		} else {
			spec = tp_conv_object(&c, sn, kind->fields, "");
			if (spec && nn && nn->type == TP_YNODE_SCALAR) {
				for (size_t i = 0; kind->fields[i].name; i++)
					if ((kind->fields[i].flags & TP_F_DEFAULT_NAME) &&
					    !json_object_get(spec, kind->fields[i].name))
						json_object_set_new(spec, kind->fields[i].name,
								    json_string(nn->text));
			}
			/* hooks may assume a schema-valid spec */
			if (spec && c.errors == 0 && kind->check) {
				before = c.errors;
				chk.conv = &c;
				chk.root = sn;
				kind->check(spec, &chk);
				if (c.errors > before)
					bad = true;
			}
			if (!spec || c.errors)
				bad = true;
		}
	}

	ln = tp_ynode_get(doc, "lifecycle");
	if (ln && !tp_ynode_is_null(ln)) {
		c.prefix = "lifecycle";
		lc = tp_conv_object(&c, ln, lifecycle_fields, "");
		if (!lc)
			bad = true;
		c.prefix = "spec";
	}
	if (lc) {
		json_t *ic = json_object_get(lc, "ignore_changes");
		size_t i;
		json_t *v;
		json_array_foreach(ic, i, v) {
			const char *path = json_string_value(v);
			if (!schema_has_path(kind->fields, path)) {
				char ipath[64];
				const tp_ynode *n;
				snprintf(ipath, sizeof(ipath), "ignore_changes.%zu", i);
				n = tp_ynode_at_path(ln, ipath);
				tp_diags_add(L->diags, file, n->line, n->col,
					     "lifecycle.ignore_changes: \"%s\" is not a field of %s",
					     path, kind->name);
				bad = true;
			}
		}
	}

	dn = tp_ynode_get(doc, "depends_on");
	if (dn && !tp_ynode_is_null(dn)) {
		tp_field df = {.type = TP_TYPE_LIST, .items = &string_item};
		json_t *deps;
		c.prefix = "depends_on";
		deps = tp_conv_field(&c, dn, &df, "");
		if (!deps) {
			bad = true;
		} else {
			size_t i;
			json_t *v;
			json_array_foreach(deps, i, v) {
				struct pending_dep *pd;
				if (L->npdeps == L->cappdeps) {
					L->cappdeps = L->cappdeps ? L->cappdeps * 2 : 16;
					L->pdeps = tp_realloc(L->pdeps,
							      L->cappdeps * sizeof(*L->pdeps));
				}
				pd = &L->pdeps[L->npdeps++];
				pd->res = L->p->nresources; /* the resource about to be added */
				pd->address = tp_strdup(json_string_value(v));
				pd->line = dn->kids[i]->line;
				pd->col = dn->kids[i]->col;
				pd->file = tp_strdup(file);
			}
			json_decref(deps);
		}
	}

	if (bad || c.errors) {
		if (nn && nn->type == TP_YNODE_SCALAR && !tp_ynode_is_null(nn)) {
			char *a = tp_sprintf("%s/%s", kind->name, nn->text);
			tp_strlist_push_owned(&L->failed, a);
		}
		/* drop depends_on entries recorded for a resource that is not added */
		while (L->npdeps && L->pdeps[L->npdeps - 1].res == L->p->nresources) {
			L->npdeps--;
			free(L->pdeps[L->npdeps].address);
			free(L->pdeps[L->npdeps].file);
		}
		goto done;
	}

	r = resource_new(L);
	r->kind = kind;
	r->name = tp_strdup(nn->text);
	r->address = tp_sprintf("%s/%s", kind->name, nn->text);
	r->spec = spec;
	spec = NULL;
	r->file = tp_strdup(file);
	r->line = doc->line;
	r->col = doc->col;
	r->refs = c.refs;
	r->nrefs = c.nrefs;
	c.refs = NULL;
	c.nrefs = c.caprefs = 0;
	r->sensitive_paths = c.sensitive;
	memset(&c.sensitive, 0, sizeof(c.sensitive));
	tp_strlist_sort(&r->sensitive_paths);
	r->deletion = TP_DELETION_DELETE;
	if (lc) {
		json_t *ic = json_object_get(lc, "ignore_changes");
		size_t i;
		json_t *v;
		r->prevent_destroy = json_is_true(json_object_get(lc, "prevent_destroy"));
		if (strcmp(tp_json_get_str(lc, "deletion"), "retain") == 0)
			r->deletion = TP_DELETION_RETAIN;
		json_array_foreach(ic, i, v)
			tp_strlist_push(&r->ignore_changes, json_string_value(v));
	}
done:
	json_decref(spec);
	json_decref(lc);
	tp_conv_free(&c);
}

static void load_resource_file(loader *L, const char *rel)
{
	tp_buf text;
	tp_yfile *yf = NULL;
	tp_buf_init(&text, TP_SPEC_MAX_FILE_BYTES);
	if (read_file(L, &text, rel) < 0)
		goto done;
	if (tp_yaml_parse(&yf, rel, tp_buf_cstr(&text), text.len, L->diags) < 0)
		goto done;
	for (size_t i = 0; i < yf->ndocs; i++) {
		if (yf->docs[i] && !tp_ynode_is_null(yf->docs[i]))
			load_document(L, rel, yf->docs[i]);
	}
	/* the node tree is not needed past this point: resources keep the positions they need,
	 * so a large pipeline never holds every file's tree at once */
done:
	tp_yfile_free(yf);
	tp_buf_free(&text);
}

/* ---------------------------------------------------------------- graph */

static int cmp_resource(const void *a, const void *b)
{
	return strcmp(((const tp_resource *)a)->address, ((const tp_resource *)b)->address);
}

static ssize_t find_index(const tp_pipeline *p, const char *address)
{
	size_t lo = 0, hi = p->nresources;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(p->resources[mid].address, address);
		if (c == 0)
			return (ssize_t)mid;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -1;
}

static bool output_declared(const tp_kind *k, const char *output)
{
	for (size_t i = 0; k->outputs && k->outputs[i]; i++) {
		const char *o = k->outputs[i] + (k->outputs[i][0] == '~');
		size_t n = strlen(o);
		if (strcmp(o, output) == 0)
			return true;
		if (n >= 2 && strcmp(o + n - 2, ".*") == 0 && strncmp(o, output, n - 1) == 0 &&
		    output[n - 1] && !strchr(output + n - 1, '.'))
			return true;
	}
	return false;
}

static void add_dep(tp_resource *r, size_t target)
{
	for (size_t i = 0; i < r->ndeps; i++)
		if (r->deps[i] == target)
			return;
	r->deps = tp_realloc(r->deps, (r->ndeps + 1) * sizeof(*r->deps));
	r->deps[r->ndeps++] = target;
}

static int cmp_size(const void *a, const void *b)
{
	size_t x = *(const size_t *)a, y = *(const size_t *)b;
	return x < y ? -1 : x > y;
}

static void resolve_graph(loader *L, size_t *old_to_new)
{
	tp_pipeline *p = L->p;
	for (size_t i = 0; i < p->nresources; i++) {
		tp_resource *r = &p->resources[i];
		for (size_t k = 0; k < r->nrefs; k++) {
			tp_ref *ref = &r->refs[k];
			const tp_kind *tk;
			ssize_t t;
			char *addr;
			if (ref->type != TP_REF_RESOURCE)
				continue;
			tk = tp_registry_kind(ref->kind);
			if (!tk) {
				const char *near = kind_suggestion(ref->kind);
				tp_diags_add(L->diags, r->file, ref->line, ref->col,
					     "reference to unknown kind \"%s\"%s%s%s", ref->kind,
					     near ? " (did you mean \"" : "", near ? near : "",
					     near ? "\"?)" : "");
				continue;
			}
			addr = tp_sprintf("%s/%s", ref->kind, ref->name);
			t = find_index(p, addr);
			if (t < 0) {
				if (!tp_strlist_contains(&L->failed, addr))
					tp_diags_add(L->diags, r->file, ref->line, ref->col,
						     "reference to missing resource %s", addr);
			} else if (!output_declared(tk, ref->output)) {
				tp_buf outs;
				tp_buf_init(&outs, 4096);
				for (size_t o = 0; tk->outputs && tk->outputs[o]; o++)
					tp_buf_printf(&outs, "%s%s", o ? ", " : "",
						      tk->outputs[o] + (tk->outputs[o][0] == '~'));
				tp_diags_add(L->diags, r->file, ref->line, ref->col,
					     "%s has no output \"%s\" (%s declares: %s)", addr,
					     ref->output, tk->name,
					     outs.len ? tp_buf_cstr(&outs) : "no outputs");
				tp_buf_free(&outs);
			} else {
				ref->target = (size_t)t;
				add_dep(r, (size_t)t);
			}
			free(addr);
		}
	}
	/* A secret read from an SSM parameter that this pipeline itself manages depends on
	 * that parameter: it must exist before anything reads it. */
	for (size_t i = 0; i < p->nresources; i++) {
		tp_resource *r = &p->resources[i];
		for (size_t k = 0; k < r->nrefs; k++) {
			const tp_ref *ref = &r->refs[k];
			if (ref->type != TP_REF_SECRET || strcmp(ref->scheme, "ssm") != 0)
				continue;
			for (size_t j = 0; j < p->nresources; j++) {
				const char *pname;
				if (j == i || strcmp(p->resources[j].kind->name,
						     "aws.ssm_parameter") != 0)
					continue;
				pname = tp_json_get_str(p->resources[j].spec, "name");
				if (pname && strcmp(pname, ref->location) == 0)
					add_dep(r, j);
			}
		}
	}
	for (size_t i = 0; i < L->npdeps; i++) {
		struct pending_dep *pd = &L->pdeps[i];
		tp_resource *r = &p->resources[old_to_new[pd->res]];
		ssize_t t = find_index(p, pd->address);
		if (t < 0 && !tp_strlist_contains(&L->failed, pd->address))
			tp_diags_add(L->diags, pd->file, pd->line, pd->col,
				     "depends_on: no resource %s", pd->address);
		else if (t >= 0)
			add_dep(r, (size_t)t);
	}
	for (size_t i = 0; i < p->nresources; i++)
		if (p->resources[i].ndeps > 1)
			qsort(p->resources[i].deps, p->resources[i].ndeps, sizeof(size_t),
			      cmp_size);
}

/* Iterative DFS (no recursion: 10,000-deep chains must not blow the stack). Produces the
 * topological order and reports each cycle once, naming its members. */
static void order_graph(loader *L)
{
	tp_pipeline *p = L->p;
	size_t n = p->nresources, norder = 0;
	unsigned char *color = tp_calloc(n ? n : 1, 1); /* 0 new, 1 on stack, 2 done */
	size_t *stack = tp_malloc((n ? n : 1) * sizeof(size_t));
	size_t *next = tp_calloc(n ? n : 1, sizeof(size_t));
	p->order = tp_malloc((n ? n : 1) * sizeof(size_t));

	for (size_t s = 0; s < n; s++) {
		size_t sp = 0;
		if (color[s])
			continue;
		stack[sp++] = s;
		color[s] = 1;
		while (sp) {
			size_t v = stack[sp - 1];
			tp_resource *r = &p->resources[v];
			if (next[v] < r->ndeps) {
				size_t w = r->deps[next[v]++];
				if (color[w] == 0) {
					color[w] = 1;
					stack[sp++] = w;
				} else if (color[w] == 1) {
					/* cycle: w ... v on the stack, back to w */
					tp_buf cyc;
					size_t from = sp;
					while (from > 0 && stack[from - 1] != w)
						from--;
					tp_buf_init(&cyc, 1 << 20);
					for (size_t k = from - 1; k < sp; k++)
						tp_buf_printf(&cyc, "%s -> ",
							      p->resources[stack[k]].address);
					tp_buf_puts(&cyc, p->resources[w].address);
					tp_diags_add(L->diags, p->resources[w].file,
						     p->resources[w].line, p->resources[w].col,
						     "dependency cycle: %s", tp_buf_cstr(&cyc));
					tp_buf_free(&cyc);
				}
			} else {
				color[v] = 2;
				p->order[norder++] = v;
				sp--;
			}
		}
	}
	free(color);
	free(stack);
	free(next);
}

static void check_providers(loader *L)
{
	tp_pipeline *p = L->p;
	for (size_t i = 0; i < p->nresources; i++) {
		const tp_resource *r = &p->resources[i];
		const tp_provider *prov = tp_registry_provider_of(r->kind);
		if (prov && prov->needs_config && !tp_pipeline_provider(p, prov->name)) {
			bool seen = false;
			for (size_t j = 0; j < i; j++)
				seen = seen || tp_registry_provider_of(p->resources[j].kind) == prov;
			if (!seen)
				tp_diags_add(L->diags, r->file, r->line, r->col,
					     "%s uses provider \"%s\", which has no entry under "
					     "providers: in tapestry.yaml", r->address, prov->name);
		}
	}
}

/* ---------------------------------------------------------------- entry points */

static void loader_free(loader *L)
{
	for (size_t i = 0; i < L->npdeps; i++) {
		free(L->pdeps[i].address);
		free(L->pdeps[i].file);
	}
	free(L->pdeps);
	tp_strlist_free(&L->failed);
}

/* Sorts resources by address, reports duplicates, and remaps pending depends_on indices. */
static void sort_resources(loader *L, size_t **old_to_new_out)
{
	tp_pipeline *p = L->p;
	size_t n = p->nresources;
	size_t *map = tp_malloc((n ? n : 1) * sizeof(size_t));
	/* remember the original index in `order` temporarily via a side array */
	struct tagged {
		tp_resource r;
		size_t old;
	} *t = tp_malloc((n ? n : 1) * sizeof(*t));
	for (size_t i = 0; i < n; i++) {
		t[i].r = p->resources[i];
		t[i].old = i;
	}
	qsort(t, n, sizeof(*t), cmp_resource); /* address is the first-compared field */
	for (size_t i = 0; i < n; i++) {
		p->resources[i] = t[i].r;
		map[t[i].old] = i;
	}
	free(t);
	*old_to_new_out = map;
}

static void report_duplicates(loader *L)
{
	tp_pipeline *p = L->p;
	for (size_t i = 1; i < p->nresources; i++) {
		const tp_resource *a = &p->resources[i - 1], *b = &p->resources[i];
		if (strcmp(a->address, b->address) == 0)
			tp_diags_add(L->diags, b->file, b->line, b->col,
				     "duplicate address %s (first defined at %s:%d:%d)", b->address,
				     a->file, a->line, a->col);
	}
}

static int load(tp_pipeline **out, tp_tree *tree, tp_diags *diags, bool settings_required)
{
	loader L = {0};
	tp_buf text;
	tp_yfile *yf = NULL;
	tp_strlist files = {0};
	size_t *old_to_new = NULL;
	size_t nyaml = 0;
	int rc = 0;

	*out = NULL;
	tp_buf_init(&text, TP_SPEC_MAX_FILE_BYTES);
	L.tree = tree;
	L.diags = diags;
	L.p = tp_calloc(1, sizeof(*L.p));
	L.p->settings.concurrency = 8;
	L.p->settings.max_prune_percent = 25;
	L.p->settings.drift_interval_ms = 600000;

	if (settings_required) {
		rc = read_file(&L, &text, SETTINGS_FILE);
		if (rc == TP_ENOTFOUND) {
			tp_diags_add(diags, SETTINGS_FILE, 0, 0,
				     "missing: is this a pipeline directory? (`tapestry init` "
				     "creates one)");
			rc = 0;
		} else if (rc == 0 &&
			   tp_yaml_parse(&yf, SETTINGS_FILE, tp_buf_cstr(&text), text.len, diags) ==
				   0) {
			if (yf->ndocs != 1 || !yf->docs[0] || tp_ynode_is_null(yf->docs[0]))
				tp_diags_add(diags, SETTINGS_FILE, 1, 1,
					     "tapestry.yaml must hold exactly one mapping document "
					     "(pipeline:, settings:, providers:)");
			else
				load_settings(&L, yf->docs[0]);
		}
		rc = 0;
	}

	rc = tree->list(tree, &files, RESOURCES_DIR);
	if (rc == TP_ENOTFOUND) {
		rc = 0;
	} else if (rc < 0) {
		tp_diags_add(diags, RESOURCES_DIR, 0, 0, "%s", tp_error_last());
		rc = 0;
	}
	for (size_t i = 0; i < files.len; i++) {
		const char *name = files.items[i];
		size_t n = strlen(name);
		char *rel;
		if (!((n > 5 && strcmp(name + n - 5, ".yaml") == 0) ||
		      (n > 4 && strcmp(name + n - 4, ".yml") == 0)))
			continue;
		nyaml++;
		rel = tp_sprintf("%s/%s", RESOURCES_DIR, name);
		load_resource_file(&L, rel);
		free(rel);
	}
	if (settings_required && nyaml == 0 && diags->len == 0)
		tp_diags_add(diags, RESOURCES_DIR, 0, 0,
			     "no resource files (resources/<file>.yaml): the pipeline is empty");

	sort_resources(&L, &old_to_new);
	report_duplicates(&L);
	/* graph checks run even when some documents failed, on the resources that loaded, so
	 * one pass reports as much as possible */
	resolve_graph(&L, old_to_new);
	if (settings_required)
		check_providers(&L);
	order_graph(&L);

	if (diags->len > 0 || diags->dropped > 0) {
		rc = tp_error_set(TP_EINVALID, "%zu errors in %s", diags->len + diags->dropped,
				  tree->root);
		goto done;
	}
	*out = L.p;
	L.p = NULL;
done:
	tp_pipeline_free(L.p);
	free(old_to_new);
	loader_free(&L);
	tp_strlist_free(&files);
	tp_yfile_free(yf);
	tp_buf_free(&text);
	return rc;
}

int tp_pipeline_load(tp_pipeline **out, tp_tree *tree, tp_diags *diags)
{
	return load(out, tree, diags, true);
}

/* A tree holding one in-memory file at resources/input.yaml (fuzzing and tests). */
typedef struct {
	tp_tree base;
	const char *name;
	const char *text;
	size_t len;
} mem_tree;

static int mem_read(tp_tree *t, tp_buf *out, const char *rel, size_t max)
{
	mem_tree *m = (mem_tree *)t;
	char *want = tp_sprintf("%s/%s", RESOURCES_DIR, m->name);
	int rc;
	if (strcmp(rel, want) != 0)
		rc = tp_error_set(TP_ENOTFOUND, "%s: no such file", rel);
	else if (m->len > max)
		rc = tp_error_set(TP_ETOOBIG, "%s: over the limit of %zu bytes", rel, max);
	else
		rc = tp_buf_put(out, m->text, m->len);
	free(want);
	return rc;
}

static int mem_list(tp_tree *t, tp_strlist *out, const char *reldir)
{
	mem_tree *m = (mem_tree *)t;
	if (strcmp(reldir, RESOURCES_DIR) != 0)
		return tp_error_set(TP_ENOTFOUND, "%s: no such directory", reldir);
	tp_strlist_push(out, m->name);
	return 0;
}

static void mem_free(tp_tree *t)
{
	(void)t;
}

int tp_spec_check_text(const char *file, const char *text, size_t len, tp_diags *diags)
{
	mem_tree m = {{mem_read, mem_list, mem_free, "(input)"}, file, text, len};
	tp_pipeline *p = NULL;
	int rc = load(&p, &m.base, diags, false);
	tp_pipeline_free(p);
	return rc;
}

void tp_pipeline_free(tp_pipeline *p)
{
	if (!p)
		return;
	free(p->name);
	for (size_t i = 0; i < p->nproviders; i++) {
		json_decref(p->providers[i].config);
		free(p->providers[i].endpoint);
	}
	free(p->providers);
	for (size_t i = 0; i < p->nresources; i++)
		resource_clear(&p->resources[i]);
	free(p->resources);
	free(p->order);
	free(p);
}

const tp_resource *tp_pipeline_find(const tp_pipeline *p, const char *address)
{
	ssize_t i = find_index(p, address);
	return i < 0 ? NULL : &p->resources[i];
}

const tp_provider_config *tp_pipeline_provider(const tp_pipeline *p, const char *name)
{
	for (size_t i = 0; i < p->nproviders; i++)
		if (strcmp(p->providers[i].provider->name, name) == 0)
			return &p->providers[i];
	return NULL;
}

/* ---------------------------------------------------------------- other YAML files */

int tp_spec_load_file(json_t **out, const char *path, const tp_field *schema, bool allow_secrets,
		      tp_diags *diags)
{
	tp_buf text;
	tp_yfile *yf = NULL;
	tp_conv c = {0};
	json_t *doc = NULL;
	int rc;

	*out = NULL;
	tp_buf_init(&text, TP_SPEC_MAX_FILE_BYTES);
	rc = tp_file_read(&text, path, TP_SPEC_MAX_FILE_BYTES);
	if (rc < 0) {
		tp_diags_add(diags, path, 0, 0, "%s", tp_error_last());
		goto done;
	}
	if ((rc = tp_yaml_parse(&yf, path, tp_buf_cstr(&text), text.len, diags)) < 0)
		goto done;
	if (yf->ndocs != 1 || !yf->docs[0] || yf->docs[0]->type != TP_YNODE_MAP) {
		tp_diags_add(diags, path, 1, 1, "expected exactly one YAML mapping");
		rc = TP_EINVALID;
		goto done;
	}
	c.file = path;
	c.prefix = "";
	c.diags = diags;
	c.budget = TP_SPEC_MAX_NODES;
	c.allow_resource_refs = false;
	doc = tp_conv_object(&c, yf->docs[0], schema, "");
	if (!allow_secrets) {
		for (size_t i = 0; i < c.nrefs; i++)
			if (c.refs[i].type == TP_REF_SECRET) {
				tp_diags_add(diags, path, c.refs[i].line, c.refs[i].col,
					     "%s: secret references are not allowed here",
					     c.refs[i].path);
				c.errors++;
			}
	}
	if (c.errors || diags->len) {
		rc = TP_EINVALID;
		goto done;
	}
	*out = doc;
	doc = NULL;
done:
	json_decref(doc);
	tp_conv_free(&c);
	tp_yfile_free(yf);
	tp_buf_free(&text);
	if (rc == TP_EINVALID)
		tp_error_set(rc, "%s is not valid: %zu error%s", path, diags->len,
			     diags->len == 1 ? "" : "s");
	return rc;
}
