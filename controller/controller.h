/*
 * controller — the program: main(), one file per CLI subcommand, and (as they arrive) the
 * reconcile loop, the Git source and the HTTP server.
 *
 * Subcommands return 0 on success, TP_EXIT_CHANGES when --detailed-exitcode reports changes,
 * or a negative TP_E* code with the message set; main() alone turns that into an exit status
 * and prints the message, so every command fails the same way.
 */
#ifndef TP_CONTROLLER_H
#define TP_CONTROLLER_H

#include <stdio.h>

#include "../diff/diff.h"
#include "../spec/spec.h"
#include "../state/state.h"
#include "../util/util.h"

#define TP_EXIT_CHANGES 2 /* returned by a command: success, and the plan has changes */
#define TP_EUSAGE (-100)  /* bad command line: message set, usage hint printed */

typedef struct {
	const char *name;
	int (*run)(int argc, char **argv); /* argv[0] is the subcommand name */
	const char *summary;
	const char *usage;
} tp_command;

int tp_cmd_validate(int argc, char **argv);
int tp_cmd_plan(int argc, char **argv);
int tp_cmd_apply(int argc, char **argv);
int tp_cmd_run(int argc, char **argv);
int tp_cmd_status(int argc, char **argv);
int tp_cmd_history(int argc, char **argv);
int tp_cmd_events(int argc, char **argv);
int tp_cmd_init(int argc, char **argv);

/* Output helpers for the read-only commands (table.c). rows: array of arrays of strings. */
void tp_table_print(FILE *f, const char *const *headers, size_t ncols, const json_t *rows);
char *tp_format_time(int64_t ms);
int tp_open_state_for_reading(struct tp_state **out, const char *path);
void tp_print_json(const json_t *v);

/* The options of the read-only commands: --state FILE (required), --json, and as allowed
 * --resource ADDRESS, --api URL, --limit N (1–10000; set a->limit to the default first). */
typedef struct {
	const char *state;
	const char *resource;
	const char *api;
	int limit;
	bool json;
} tp_read_args;
enum { TP_READ_RESOURCE = 1, TP_READ_API = 2, TP_READ_LIMIT = 4 };
int tp_cli_read_args(tp_read_args *a, int argc, char **argv, unsigned allowed);
int tp_cmd_version(int argc, char **argv);
int tp_cmd_kinds(int argc, char **argv);

/* Prints "Error: <message>" (or usage) and returns the process exit status for rc. */
int tp_cli_exit_status(const tp_command *cmd, int rc);

/* ---------------------------------------------------------------- state lock (lock.c) */

/* "<what> pid=<pid> host=<host> boot=<boot id>": new string. */
char *tp_lock_owner(const char *what);
/* Acquires (or renews) the state lock for owner; a holder that is a dead process on this host
 * is taken over at once; anyone else's live lease is a TP_ECONFLICT. */
int tp_lock_take(tp_state *st, const char *owner, int64_t lease_ms);

/* ---------------------------------------------------------------- apply engine (engine.c) */

/*
 * The apply engine: runs a plan against the providers. Actions run in dependency order on a
 * worker pool (`concurrency`), each provider with its own limit; independent branches go on
 * when one fails (its dependants are skipped and the run is partial). Every write is journaled
 * first: a row is committed before the API call and completed after it, so a crash leaves a
 * pending row that tp_engine_recover resolves by observing (adopt or forget), never by
 * repeating the call blindly. Transient errors are retried with capped exponential backoff and
 * full jitter, honouring Retry-After, within a per-provider retry budget.
 */

typedef struct {
	const tp_pipeline *pipeline;
	tp_tree *tree;             /* the pipeline's files at this revision */
	tp_state *state;
	const char *revision;      /* commit being applied, or NULL (a directory) */
	const char *trigger;       /* "cli", "poll", "webhook", "drift", ... */
	int concurrency;           /* 0: settings.concurrency */
	tp_metrics *metrics;       /* may be NULL */
	volatile int *stop;        /* set asynchronously: start no new action */
	int max_attempts;          /* per call, including the first (0: 5) */
	int64_t backoff_base_ms;   /* first retry delay cap (0: 200 ms) */
	int64_t backoff_cap_ms;    /* largest delay (0: 20 s) */
	int retry_budget;          /* retries per provider per run (0: 50) */
	bool refresh_schemas;      /* --refresh-schemas: providers rediscover, ignoring caches */
	/* Progress for people (CLI): phase is "start", "done", "failed", "skipped", "retry". */
	void (*progress)(void *ctx, const char *address, const char *action, const char *phase,
			 const char *detail);
	void *progress_ctx;
} tp_engine_opts;

typedef struct {
	size_t created, updated, replaced, deleted, forgotten, failed, skipped, retries;
	int64_t run_id;
	char result[16]; /* "succeeded", "partial", "failed", "no-op", "stopped" */
} tp_engine_summary;

/* Resolves journal rows left pending by an interrupted run: by observing (adopting an object
 * an interrupted create left behind, or forgetting one an interrupted delete removed). */
int tp_engine_recover(const tp_engine_opts *o);
/* Observes the live objects of the recorded resources and stores what it saw in their
 * `observed` fields (in memory; also in the state database when persist is true). Kinds that
 * cannot observe yet are left as recorded, and named in *unobserved when not NULL. */
int tp_engine_refresh(const tp_engine_opts *o, tp_state_resources *recorded, bool persist,
		      tp_strlist *unobserved);
/* Keyed hashes of the desired specs' secret values ({address: {path: hmac}}), for the plan
 * to notice a rotated secret. Secrets that cannot be read are listed in errors (the plan
 * then cannot tell whether they changed). */
int tp_engine_secret_hashes(json_t **out, const tp_engine_opts *o,
			    const tp_state_resources *recorded, tp_strlist *errors);
/* Asks the providers for read-only previews of the plan's updates and replacements (a
 * CloudFormation change set) and stores them as the entries' details. Best effort: a preview
 * that fails is logged, never an error. */
int tp_engine_plan_details(const tp_engine_opts *o, tp_plan *plan,
			   const tp_state_resources *recorded);
/* Applies plan (built from o->pipeline and the recorded state). */
int tp_engine_apply(tp_engine_summary *out, const tp_engine_opts *o, const tp_plan *plan);

/* ---------------------------------------------------------------- the controller (loop.c) */

/* `tapestry run` configuration: /etc/tapestry/controller.yaml, then flags. Secrets (Git token,
 * webhook secrets, API token) are resolved at load and live only in memory. */
typedef struct {
	char *repo_url;       /* required */
	char *branch;         /* default "main" */
	char *path;           /* pipeline directory in the repository, default "" */
	char *token;          /* https token (resolved) or NULL */
	char *ssh_key;        /* ssh key file or NULL */
	char *state_dir;      /* state.db and mirror.git live here (default /var/lib/tapestry) */
	char *listen;         /* default 127.0.0.1:7777 */
	int64_t poll_ms;      /* default 60 s (jittered ±10%) */
	int64_t drift_ms;     /* 0: the pipeline's settings.drift_interval */
	bool plan_only;       /* plan and report, never apply */
	bool suspend;         /* keep observing and reporting, never write */
	bool allow_mass_delete;
	char *github_secret, *gitlab_token, *generic_secret; /* resolved, or NULL */
	char *api_token;      /* resolved; required when listen is not loopback */
	int max_syncs;        /* stop after this many syncs (0: run until signalled) */
	tp_state_retention history; /* what the state database keeps (history: section) */
	/* commit_status: post each sync's result as a commit status on GitHub (optional) */
	char *status_repo;       /* owner/name (default: from repository.url) */
	char *status_token;      /* resolved; NULL: commit statuses are off */
	char *status_api_url;    /* default https://api.github.com */
	char *status_context;    /* default "tapestry" */
	char *status_target_url; /* optional link shown with the status */
} tp_controller_config;

/* Loads a config file (NULL: defaults only). Errors are diagnostics with file:line:col. */
int tp_controller_config_load(tp_controller_config *out, const char *path, tp_diags *diags);
void tp_controller_config_clear(tp_controller_config *c);
/* The reconcile loop: runs until *stop is set (SIGTERM/SIGINT) or max_syncs is reached.
 * *reload (SIGHUP) re-reads config_path and applies what can change while running. */
int tp_controller_run(tp_controller_config *c, const char *config_path, volatile int *stop,
		      volatile int *reload);

/* ---------------------------------------------------------------- Git source (source.c) */

/*
 * The pipeline's Git repository, mirrored bare in the state directory and read straight from
 * the object database: no working tree is ever checked out. Remotes: https (with a token),
 * ssh (with a key file), file:// and local paths.
 */
typedef struct tp_source tp_source;

typedef struct {
	const char *url;        /* https://host/org/repo.git, ssh://git@host/org/repo.git,
				   git@host:org/repo.git, git://host/repo, file:///path, /path */
	const char *branch;     /* branch to follow (default "main") */
	const char *path;       /* pipeline directory inside the repository ("" or NULL: root) */
	const char *mirror_dir; /* the bare mirror lives here (created when missing) */
	const char *token;      /* https: resolved token (sent as basic auth password, user
				   "x-access-token"), or NULL. Never logged. */
	const char *ssh_key;    /* ssh: private key file, or NULL (agent) */
	int timeout_ms;         /* bound on one fetch (0: 120 s) */
} tp_source_opts;

typedef struct {
	char commit[41];   /* hex id */
	char tree[41];     /* hex id of the pipeline path's tree at that commit ("" if absent) */
	char *message;     /* full commit message */
	char *author;      /* "Name <email>" */
	int64_t time_ms;   /* author time */
} tp_commit_info;

/* Opens or creates the bare mirror for opts->url in opts->mirror_dir. Does not fetch. */
int tp_source_open(tp_source **out, const tp_source_opts *opts);
/* Reads an existing repository (a working clone or a bare one, e.g. the checkout a CI job
 * has) in place, without a mirror: every commit in it resolves, detached ones included, and
 * fetching is a no-op. */
int tp_source_open_local(tp_source **out, const char *repo_path, const char *path);
/* Fetches the remote's branches and tags into the mirror (bounded by timeout_ms). */
int tp_source_fetch(tp_source *s);
/* Resolves a revision (branch name — the remote's, after fetch —, tag, full or short commit
 * id, or any git rev-parse expression) to a commit id. TP_ENOTFOUND when unknown. */
int tp_source_resolve(char out[41], tp_source *s, const char *rev);
/* The pipeline directory at commit as a tp_tree (files read from the object database).
 * TP_ENOTFOUND when the path does not exist at that commit. Symlinks inside the tree are
 * refused (TP_EINVALID on read) — a Git tree cannot point outside itself safely. */
int tp_source_tree(tp_tree **out, tp_source *s, const char *commit);
int tp_source_commit_info(tp_commit_info *out, tp_source *s, const char *commit);
void tp_commit_info_clear(tp_commit_info *c);
void tp_source_free(tp_source *s);

/* ---------------------------------------------------------------- --repo (repo_cli.c) */

/* Opens repo for a one-shot command: a local directory in place, a URL through a temporary
 * mirror (*mirror is its path, removed by tp_cli_repo_close). */
int tp_cli_repo_open(tp_source **out, char **mirror, const char *repo, const char *path);
/* The pipeline tree at rev (NULL: the default branch), its commit id (when commit_out is
 * given, 41 bytes) and, when diags is given, the loaded pipeline. */
int tp_cli_repo_load(tp_tree **tree, tp_pipeline **p, char *commit_out, tp_source *src,
		     const char *rev, const char *what, tp_diags *diags);
void tp_cli_repo_close(tp_source *src, char *mirror);
/* Loads the pipeline in tree for a command; an invalid one has its diagnostics printed on
 * stderr and the message "<root> is not valid: N errors; nothing was <what>". */
int tp_cli_pipeline_load(tp_pipeline **out, tp_tree *tree, tp_diags *diags, const char *what);

/* ---------------------------------------------------------------- webhooks (webhook.c) */

/*
 * Verification of webhook deliveries, independent of the HTTP server so it can be tested and
 * fuzzed on its own. A delivery is accepted only when it carries a valid signature (GitHub:
 * X-Hub-Signature-256 = "sha256=" + hex HMAC-SHA256 of the raw body, compared in constant
 * time; GitLab: X-Gitlab-Token equal to the secret, constant time; generic: X-Tapestry-
 * Signature-256 like GitHub's) and its delivery id was not seen before.
 */
typedef enum {
	TP_WEBHOOK_GITHUB,
	TP_WEBHOOK_GITLAB,
	TP_WEBHOOK_GENERIC
} tp_webhook_kind;

typedef struct {
	tp_webhook_kind kind;
	char delivery[128]; /* delivery id (GitHub X-GitHub-Delivery, GitLab X-Gitlab-Event-UUID,
			       generic X-Tapestry-Delivery); "" when absent */
	char ref[256];      /* "refs/heads/main" from the JSON body when present, else "" */
	char event[64];     /* "push", "ping", ... */
} tp_webhook_info;

/* Header lookup callback (case-insensitive name); NULL when absent. */
typedef const char *(*tp_header_fn)(void *ctx, const char *name);

/* Returns 0 and fills out when the delivery is authentic; TP_EAUTH (missing or bad
 * signature); TP_EINVALID (malformed). secret is the configured secret for that kind. */
int tp_webhook_verify(tp_webhook_info *out, tp_webhook_kind kind, const char *secret,
		      tp_header_fn header, void *hctx, const char *body, size_t len);

/* Remembers recent delivery ids (bounded ring); true when id was already seen. Thread-safe. */
typedef struct tp_delivery_log tp_delivery_log;
tp_delivery_log *tp_delivery_log_new(size_t capacity);
bool tp_delivery_log_seen(tp_delivery_log *l, const char *id);
void tp_delivery_log_free(tp_delivery_log *l);

/* ---------------------------------------------------------------- HTTP server (http.c) */

typedef struct tp_http tp_http;

typedef struct {
	int status;           /* HTTP status */
	const char *content_type;
	const char *csp;      /* Content-Security-Policy to send, or NULL */
	tp_buf body;
} tp_http_response;

typedef struct {
	const char *bind;          /* "127.0.0.1:7777" ("[::1]:7777" for IPv6) */
	size_t max_body;           /* webhook bodies over this get 413 (default 1 MiB) */
	const char *github_secret; /* NULL: that webhook path answers 404 */
	const char *gitlab_token;
	const char *generic_secret;
	const char *api_token;     /* required as "Authorization: Bearer" on every path except
				      /healthz, /readyz and the webhooks when the bind address is
				      not loopback; NULL on loopback */
	/* An authentic, new delivery: called on the server thread; must return quickly. */
	void (*on_webhook)(void *ctx, const tp_webhook_info *info);
	/* Any GET: fill resp (status, content type, body) for path ("/metrics", "/api/status",
	 * ...) and query string (may be ""). Called on server threads, concurrently. */
	void (*on_get)(void *ctx, const char *path, const char *query, tp_http_response *resp);
	void *ctx;
} tp_http_opts;

/* Starts the server (libmicrohttpd, its own threads). Webhook paths: POST /hooks/github,
 * /hooks/gitlab, /hooks/generic. Bad or missing signature: 401, nothing triggered; replayed
 * delivery: 200 {"status":"duplicate"}, nothing triggered; body over max_body: 413. */
int tp_http_start(tp_http **out, const tp_http_opts *opts);
/* The port actually bound (useful with port 0 in tests). */
int tp_http_port(const tp_http *h);
void tp_http_stop(tp_http *h);

/* ---------------------------------------------------------------- dashboard (dashboard.c) */

/*
 * The dashboard: the operator's page that `tapestry run` serves at / on its HTTP address.
 *
 * A static page (HTML, CSS and JavaScript written by hand, compiled into the binary as C
 * string literals in dashboard.c: no build step, no framework, no request leaves the
 * controller) that polls the JSON API (/api/status, /api/resources, /api/runs, /api/events,
 * /metrics, and /api/plan, /api/logs, /api/providers, /api/runs/<id> when the controller
 * serves them) and draws the pipeline by phase with each resource's status, the revisions,
 * the runs with their plans and per-action results, events and logs per resource, provider
 * health and the controller's own health. Every string from the API is inserted as text,
 * never as markup. The assets hold no data, so they may be served without the API token; the
 * page asks for the token (or reads it from the URL fragment, #token=...) and sends it as
 * "Authorization: Bearer" with every API request.
 */

/* The Content-Security-Policy the assets are written for (no inline script or style, no
 * request beyond the controller itself), for the HTTP server to send with them. */
#define TP_DASHBOARD_CSP                                                                       \
	"default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "          \
	"connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

/* Whether path is one of the dashboard's static assets ("/", "/index.html",
 * "/dashboard.js", "/dashboard.css", "/favicon.svg"). They carry no data: the HTTP server may
 * serve them without the API token, so that a browser can load the page and then ask for it. */
bool tp_dashboard_is_asset(const char *path);

/* Answers a GET for one of the dashboard's assets: fills resp (status 200, content type,
 * body) and returns true. Returns false, leaving resp untouched, for any other path. Safe to
 * call from several server threads at once. */
bool tp_dashboard_serve(const char *path, tp_http_response *resp);



/* ---------------------------------------------------------------- systemd (notify.c) */

/*
 * notify — telling the service manager how the controller stands, without libsystemd.
 *
 * systemd's notification protocol is one datagram per message on the AF_UNIX socket named by
 * $NOTIFY_SOCKET (a path, or '@' for the abstract namespace): newline-separated assignments
 * such as "READY=1", "STATUS=applying 3f2a9c1", "STOPPING=1", "WATCHDOG=1". With Type=notify
 * the unit is "started" when READY=1 arrives; with WatchdogSec= set the manager passes
 * $WATCHDOG_USEC (and $WATCHDOG_PID) and restarts the service when WATCHDOG=1 stops coming.
 * Outside systemd (no NOTIFY_SOCKET) every call is a cheap no-op, so the loop can call these
 * unconditionally.
 */
/* Sends state (e.g. "READY=1\nSTATUS=synced 3f2a9c1") to $NOTIFY_SOCKET. Returns 1 when it was
 * sent, 0 when there is no NOTIFY_SOCKET (not run by systemd), or a negative TP_E* code with
 * the message set (TP_EINVALID for an unusable address, TP_EIO when sending failed). */
int tp_notify(const char *state);
/* tp_notify with a printf format: tp_notifyf("STATUS=applying %.12s", commit). */
int tp_notifyf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* The watchdog interval the service manager expects WATCHDOG=1 within, in microseconds: the
 * value of $WATCHDOG_USEC when it is set for this process ($WATCHDOG_PID absent or equal to
 * getpid()); 0 when the watchdog is off, meant for another process, or malformed. Send
 * WATCHDOG=1 every half of it. */
int64_t tp_notify_watchdog_usec(void);

/*
 * A watchdog pinger on its own thread, for a loop whose single iterations can run long (a
 * CloudFormation stack takes many minutes to apply): it sends WATCHDOG=1 every half watchdog
 * interval as long as the loop called tp_watchdog_beat within the last stall_ms, and stops
 * sending when the loop has not beaten for longer — so the service manager restarts a loop
 * that is stuck, and leaves a busy one alone.
 */
typedef struct tp_watchdog tp_watchdog;

/* Starts the pinger when the watchdog is on (tp_notify_watchdog_usec() > 0); NULL otherwise
 * (and then beat and stop are no-ops). The first beat is implied at start. */
tp_watchdog *tp_watchdog_start(int64_t stall_ms);
/* The loop is alive (cheap: one atomic store). */
void tp_watchdog_beat(tp_watchdog *w);
/* Stops and frees the pinger (NULL: nothing). */
void tp_watchdog_stop(tp_watchdog *w);

/* ---------------------------------------------------------------- commit status (status_post.c) */

/*
 * status_post — reporting a sync's result on the commit it synced, as a GitHub commit status
 * (POST {api}/repos/{owner}/{repo}/statuses/{sha}), so the result shows next to the commit and
 * on pull requests. Optional: the controller posts only when commit_status is configured.
 * Works with github.com (api https://api.github.com) and GitHub Enterprise Server
 * (https://HOST/api/v3).
 */
#define TP_GITHUB_API_DEFAULT "https://api.github.com"

/*
 * Posts one status. api_base: NULL for TP_GITHUB_API_DEFAULT (a trailing '/' is fine); token:
 * a token allowed to write commit statuses ("Authorization: Bearer"), never logged nor put in
 * messages; repo: "owner/name"; sha: the full commit id (40 or 64 hex digits); state:
 * "success", "failure", "pending" or "error"; description: shortened to GitHub's 140
 * characters ("…" marks the cut), may be NULL; context: NULL for "tapestry"; target_url: link
 * shown with the status, may be NULL.
 *
 * Returns 0 once GitHub accepted it. Transient failures (connection errors, 5xx, throttling,
 * including GitHub's rate-limit 403) are retried twice with backoff (honouring Retry-After up
 * to 10 s); then the error carries the code the HTTP client's classification gives
 * (TP_ETRANSIENT, TP_ETHROTTLED) and GitHub's message: TP_EAUTH ("HTTP 401: Bad
 * credentials"), TP_ENOTFOUND (unknown repository or commit, or a token that cannot see it),
 * TP_EINVALID (422 "Validation Failed (…)", or arguments refused before any request).
 */
int tp_commit_status_post(const char *api_base, const char *token, const char *repo,
			  const char *sha, const char *state, const char *description,
			  const char *context, const char *target_url);

/* The commit status for a sync result as the loop records it: "applied", "no-op", "planned"
 * (and the engine's "succeeded") → "success"; "invalid", "refused", "failed", "partial" →
 * "failure"; "stopped" → "error"; anything else (e.g. "skipped", "fetch-failed": nothing to
 * report on a commit) → NULL, post nothing. */
const char *tp_commit_status_state_for(const char *result);

/* "owner/name" from a GitHub repository URL (https://github.com/owner/name(.git),
 * ssh://git@github.com/owner/name.git, git@github.com:owner/name.git) into out; TP_EINVALID
 * for anything else (other hosts need commit_status.repository spelled out). */
int tp_github_repo_from_url(char *out, size_t outlen, const char *url);

#endif
