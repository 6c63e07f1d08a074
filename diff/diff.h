/*
 * diff — where desired, last applied and live meet: normalisation, the three-way diff, the
 * plan (ordered actions with field-level changes and lifecycle rules) and its renderers.
 *
 * Data flow: spec (tp_pipeline, desired at commit C) + state (tp_state_resources: last applied
 * and last observed) → tp_plan_build → tp_plan → tp_plan_render (text | markdown | json) for
 * review, or the apply engine for execution. Building a plan never touches the network or the
 * database: everything it needs is passed in.
 *
 * Semantics (DESIGN.md, Semantics):
 *  - Only fields the desired spec sets, or that Tapestry set before, are compared; fields only
 *    the server has (defaults, read-only) never show up.
 *  - desired ≠ applied → update, or replace when an immutable field changed.
 *  - live ≠ applied while desired = applied → drift: corrected with self_heal, else reported.
 *  - Masked live values ("**********") are unknown and never drift; sensitive values are
 *    compared by keyed hash ({"$hmac": "<hex>"} in observed specs, secret_hashes in state).
 *  - ignore_changes paths are never reported or corrected as drift.
 *  - In state but not in Git: delete in reverse dependency order, or forget with
 *    deletion: retain. prevent_destroy and the prune guard refuse the plan.
 *  - References to outputs that will only exist after apply are "(known after apply)".
 */
#ifndef TP_DIFF_H
#define TP_DIFF_H

#include "../spec/spec.h"
#include "../state/state.h"
#include "../util/util.h"

typedef enum {
	TP_ACTION_NOOP,
	TP_ACTION_CREATE,
	TP_ACTION_UPDATE,
	TP_ACTION_REPLACE, /* delete then create */
	TP_ACTION_DELETE,
	TP_ACTION_FORGET   /* removed from Git with deletion: retain: state only, object kept */
} tp_action;

/* "create", "update", "replace", "delete", "forget", "no-op". */
const char *tp_action_name(tp_action a);

/* Marker for a value that depends on an output not known until apply. */
#define TP_UNKNOWN_KEY "$unknown"
json_t *tp_unknown_new(void);
bool tp_is_unknown(const json_t *v);

/* Observed spec of a recorded object that no longer exists live: {"$absent": true}. */
#define TP_ABSENT_KEY "$absent"
bool tp_is_absent(const json_t *observed);

/* Observed specs of objects another owner controls (Grouparoo's code config) carry
 * {"$locked": "<by what>"}: the plan never changes or deletes them, and says so. */
#define TP_LOCKED_KEY "$locked"

/* Marker for a sensitive value in observed specs: {"$hmac": "<hex>"}. */
#define TP_HMAC_KEY "$hmac"

/* One field-level difference. before/after are NULL when the field is absent on that side.
 * Sensitive values are never copied into a change: before/after are NULL for them and the
 * renderers print (sensitive). */
typedef struct {
	char *path;           /* dotted spec path, list indices as numbers: "streams.0.sync_mode" */
	json_t *before;
	json_t *after;
	bool sensitive;
	bool forces_replacement;
	bool unknown;         /* after is "(known after apply)" */
} tp_change;

typedef struct {
	char *address;
	const tp_kind *kind;
	char *name;
	tp_action action;
	char *reason;          /* one line: why this action ("spec changed in Git", ...) */
	tp_change *changes;    /* what the action changes (desired vs applied, or vs live when
				  correcting drift) */
	size_t nchanges;
	tp_change *drift;      /* live vs applied: changes made outside Tapestry */
	size_t ndrift;
	bool drift_corrected;  /* self_heal folded the drift into this action */
	json_t *before;        /* redacted last applied spec (NULL for create, and for a no-op
				  without drift: nothing to show) */
	json_t *after;         /* redacted desired spec, unknowns marked (NULL for delete/forget
				  and for a no-op without drift) */
	tp_strlist sensitive_paths;
	json_t *details;       /* provider details (e.g. change-set resource changes) or NULL */
	size_t *deps;          /* indices of entries that must complete first */
	size_t ndeps;
	const tp_resource *desired;          /* NULL for delete/forget */
	const tp_state_resource *recorded;   /* NULL for create */
} tp_plan_entry;

typedef struct {
	char *pipeline;
	tp_plan_entry *entries; /* execution order; no-op entries included (renderers skip them
				   unless they carry drift) */
	size_t len;
	/* summary (Terraform's counting: a replace is one add and one destroy) */
	size_t add, change, destroy, forget, drifted, unchanged;
	tp_strlist errors;      /* lifecycle violations: a plan with errors must not be applied */
	tp_strlist notes;       /* things a reviewer must know that are not errors (a change
				   left out because its object is locked by another owner) */
} tp_plan;

typedef struct {
	bool self_heal;            /* from settings */
	double max_prune_percent;  /* from settings */
	bool allow_mass_delete;    /* --allow-mass-delete, or the commit message allows it */
	/* {address: {spec path: hex HMAC of the resolved secret value}} for the desired specs,
	 * when secrets could be read (apply, plan --refresh); NULL offline. A hash that differs
	 * from the recorded one is a change of that (sensitive) field: a rotated secret. */
	const json_t *secret_hashes;
	/* Compare references as written (${kind/name.output}) instead of resolving them: for
	 * planning a pull request against the state its base revision would produce, where no
	 * output is known and only what the change itself alters should show. */
	bool symbolic_refs;
} tp_plan_options;

/* The state a fully applied pipeline would leave, as far as it can be known offline: one
 * row per resource with its normalised spec as written (references unresolved), lifecycle
 * and dependencies, and the outputs recorded in `known` when given. For plan --base. */
int tp_plan_synthetic_state(tp_state_resources *out, const tp_pipeline *p,
			    const tp_state_resources *known);

/*
 * Builds the plan. Resources in state with a kind the registry no longer knows are errors in
 * plan->errors. Returns 0 with a plan (check plan->errors), or a negative code.
 */
int tp_plan_build(tp_plan **out, const tp_pipeline *desired, const tp_state_resources *state,
		  const tp_plan_options *opts);
void tp_plan_free(tp_plan *p);
bool tp_plan_has_changes(const tp_plan *p);

/*
 * Resolves ${kind/name.output} references in a desired spec with the outputs recorded in
 * state. pending (indexed like p->resources, may be NULL) says which resources this plan
 * creates or replaces (every output unknown) or updates (outputs declared '~' unknown);
 * unknown values and outputs with no recorded value become TP_UNKNOWN markers. Secret
 * references stay as text. Returns a new reference.
 */
enum { TP_PENDING_NONE = 0, TP_PENDING_NEW = 1, TP_PENDING_UPDATE = 2 };
json_t *tp_spec_resolve(const tp_resource *r, const tp_pipeline *p,
			const tp_state_resources *state, const unsigned char *pending);

/* The same resolution with the outputs known right now ({"kind/name": {output: value}}), as
 * the apply engine needs it while a run creates objects. Returns a new reference. */
json_t *tp_spec_resolve_outputs(const tp_resource *r, const tp_pipeline *p,
				const json_t *outputs_by_address);
/* Whether a resolved value still holds an unknown marker anywhere. */
bool tp_json_has_unknown(const json_t *v);

/* Whether a dotted spec path is at or under pattern ("a.b" is under "a"); "*" in pattern
 * matches one segment ("streams.*.sync_mode"). An empty pattern matches nothing. */
bool tp_path_under(const char *path, const char *pattern);
/* The schema flags that apply at path: the field's own OR-ed with its ancestors' (an
 * immutable object makes its members immutable; a sensitive map makes its values
 * sensitive). Paths below a free-form field inherit its flags. */
unsigned tp_schema_flags(const tp_field *fields, const char *path);

/* ---------------------------------------------------------------- renderers */

typedef enum { TP_RENDER_TEXT, TP_RENDER_MARKDOWN, TP_RENDER_JSON } tp_render_format;

#define TP_PLAN_FORMAT_VERSION "1.0"

/* color: ANSI colours in text output (callers decide: TTY and NO_COLOR unset). */
int tp_plan_render(tp_buf *out, const tp_plan *p, tp_render_format fmt, bool color);

#endif
