/*
 * The Git source: the first stage of the data flow. It keeps a bare mirror of the pipeline
 * repository in the state directory (refs/remotes/origin/<branch> and tags, fetched with prune so a
 * force-push or a deleted branch is followed), resolves revisions to commits, and hands the
 * pipeline directory at a commit to spec as a tp_tree that reads blobs straight from the
 * object database: nothing is ever checked out, so no working tree can drift, and a symlink in
 * the repository can never make the loader read a file outside it. Commit metadata (message,
 * author, the tree id of the pipeline path) lets the loop see whether a commit touched the
 * pipeline at all.
 *
 * Every fetch that brings objects adds a pack file, which libgit2 keeps open and mapped; past
 * MAX_PACKS the packs are consolidated into a base pack (from the last full rewrite) and one
 * pack of what the refs reach beyond it, and the repository is reopened, so descriptors and
 * memory stay bounded however many commits a long-running controller follows, and the work
 * follows what was fetched, not the whole history (a full rewrite only when the base is gone
 * or outgrown: see consolidate_packs).
 *
 * A tp_source is used by one thread at a time. A tree returned by tp_source_tree holds its own
 * repository handle, so it outlives the source and may be read on another thread.
 */
#include "controller.h"

#include <dirent.h>
#include <errno.h>
#include <git2.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#define REMOTE_NAME "origin"
#define REMOTE_PREFIX "refs/remotes/origin/"
#define HEADS_REFSPEC "+refs/heads/*:refs/remotes/origin/*"
#define TAGS_REFSPEC "+refs/tags/*:refs/tags/*"
#define DEFAULT_BRANCH "main"
#define DEFAULT_TIMEOUT_MS 120000
#define MAX_AUTH_ATTEMPTS 3
#define TOKEN_USER "x-access-token"
#define SHORT_ID_LEN 12
#define MAX_PACKS 16

struct tp_source {
	git_repository *repo;
	char *url;        /* as configured; may carry credentials, so never printed */
	char *display;    /* url without credentials: the only form used in messages */
	char *branch;
	char *path;       /* normalised pipeline directory; "" is the repository root */
	char *token;      /* https token (wiped on free) */
	char *ssh_key;
	int timeout_ms;
	bool local;       /* an existing repository read in place: nothing to fetch */
};

/* ---------------------------------------------------------------- libgit2 and errors */

static pthread_once_t git_once = PTHREAD_ONCE_INIT;
static int git_init_rc;

static void git_init_once(void)
{
	/* Never shut down: libgit2's global state lives as long as the process. */
	git_init_rc = git_libgit2_init();
}

static int libgit2_ready(void)
{
	pthread_once(&git_once, git_init_once);
	if (git_init_rc < 0)
		return tp_error_set(TP_EIO, "libgit2 failed to initialise");
	return 0;
}

static const char *git_msg(void)
{
	const git_error *e = git_error_last();
	return e && e->message && *e->message ? e->message : "unknown libgit2 error";
}

static int map_git_error(int err)
{
	switch (err) {
	case GIT_ENOTFOUND:
		return TP_ENOTFOUND;
	case GIT_EAUTH:
	case GIT_ECERTIFICATE:
		return TP_EAUTH;
	case GIT_EINVALIDSPEC:
	case GIT_EAMBIGUOUS:
		return TP_EINVALID;
	default:
		return TP_EIO;
	}
}

/* Every occurrence of needle in text replaced by with (a new string). */
static char *replace_all(const char *text, const char *needle, const char *with)
{
	tp_buf b;
	size_t n = needle ? strlen(needle) : 0;
	const char *p = text, *hit;

	if (n == 0)
		return tp_strdup(text);
	tp_buf_init(&b, 0);
	while ((hit = strstr(p, needle)) != NULL) {
		tp_buf_put(&b, p, (size_t)(hit - p));
		tp_buf_puts(&b, with);
		p = hit + n;
	}
	tp_buf_puts(&b, p);
	return tp_buf_detach(&b);
}

/*
 * libgit2's own messages may quote the URL it was given or, in theory, echo a credential:
 * they are shown only after the configured URL is replaced by its display form and the token
 * by "***".
 */
static char *scrub(const tp_source *s, const char *msg)
{
	char *a = replace_all(msg, s->url, s->display);
	char *b = replace_all(a, s->token, "***");
	free(a);
	return b;
}

/* ---------------------------------------------------------------- URLs and paths */

static bool has_scheme(const char *url)
{
	const char *sep = strstr(url, "://");
	return sep && sep > url && strcspn(url, "/") > (size_t)(sep - url);
}

/* git@host:org/repo.git: a colon before the first slash, and no scheme. */
static bool is_scp_like(const char *url)
{
	size_t colon = strcspn(url, ":");
	return !has_scheme(url) && url[0] != '/' && url[colon] == ':' && colon < strcspn(url, "/");
}

/*
 * The URL without credentials. https://user:token@host/x → https://host/x (a token may be
 * the user part, as GitHub allows); ssh keeps the user (it names an account, not a secret)
 * but drops any password. scp-like addresses and local paths carry no secrets.
 */
static char *strip_credentials(const char *url)
{
	const char *sep, *host, *at = NULL;
	size_t scheme_len, authority;
	bool keep_user;

	if (!has_scheme(url))
		return tp_strdup(url);
	sep = strstr(url, "://");
	scheme_len = (size_t)(sep - url);
	host = sep + 3;
	authority = strcspn(host, "/?#");
	for (size_t i = 0; i < authority; i++)
		if (host[i] == '@')
			at = host + i;
	if (!at)
		return tp_strdup(url);
	keep_user = (scheme_len == 3 && strncasecmp(url, "ssh", 3) == 0) ||
		    (scheme_len == 7 && (strncasecmp(url, "git+ssh", 7) == 0 ||
					 strncasecmp(url, "ssh+git", 7) == 0));
	if (keep_user) {
		size_t user = strcspn(host, ":@");
		return tp_sprintf("%.*s%.*s%s", (int)(host - url), url, (int)user, host, at);
	}
	return tp_sprintf("%.*s%s", (int)(host - url), url, at + 1);
}

/* A relative local path would be resolved against whatever the working directory is at fetch
 * time: store it absolute. */
static char *normalise_url(const char *url)
{
	char *real;
	if (has_scheme(url) || is_scp_like(url) || url[0] == '/')
		return tp_strdup(url);
	real = realpath(url, NULL);
	return real ? real : tp_strdup(url);
}

/* "" for the root (NULL, "", ".", "./"), else tp_path_normalise's form. */
static int pipeline_path(char **out, const char *path)
{
	const char *p = path;
	bool root = true;
	int rc;

	*out = NULL;
	if (p && p[0] == '/')
		root = false;
	while (root && p && *p) {
		size_t n = strcspn(p, "/");
		if (!(n == 0 || (n == 1 && p[0] == '.')))
			root = false;
		p += n;
		if (*p == '/')
			p++;
	}
	if (root) {
		*out = tp_strdup("");
		return 0;
	}
	rc = tp_path_normalise(out, path);
	if (rc < 0) {
		char *m = tp_strdup(tp_error_last());
		tp_error_set(rc, "pipeline path in the repository: %s", m);
		free(m);
	}
	return rc;
}

/* ---------------------------------------------------------------- open */

/* true when dir is missing or an empty directory: safe to create the mirror there */
static int mirror_state(const char *dir, bool *fresh)
{
	struct stat st;
	DIR *d;
	struct dirent *e;

	*fresh = false;
	if (stat(dir, &st) < 0) {
		if (errno == ENOENT) {
			*fresh = true;
			return 0;
		}
		return tp_error_set(TP_EIO, "mirror %s: %s", dir, strerror(errno));
	}
	if (!S_ISDIR(st.st_mode))
		return tp_error_set(TP_EINVALID, "mirror %s: exists and is not a directory", dir);
	d = opendir(dir);
	if (!d)
		return tp_error_set(TP_EIO, "mirror %s: %s", dir, strerror(errno));
	*fresh = true;
	while ((e = readdir(d)) != NULL) {
		if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) {
			*fresh = false;
			break;
		}
	}
	closedir(d);
	return 0;
}

static int open_mirror(tp_source *s, const char *dir)
{
	bool fresh = false;
	int rc, err;

	if ((rc = mirror_state(dir, &fresh)) < 0)
		return rc;
	if (fresh) {
		err = git_repository_init(&s->repo, dir, 1);
		if (err < 0)
			return tp_error_set(TP_EIO, "mirror %s: cannot create a bare repository: "
					    "%s", dir, git_msg());
		return 0;
	}
	err = git_repository_open_bare(&s->repo, dir);
	if (err == GIT_ENOTFOUND)
		return tp_error_set(TP_EINVALID,
				    "mirror %s: the directory exists and is not a bare Git "
				    "repository; refusing to use it (remove it or choose another "
				    "state directory)", dir);
	if (err < 0)
		return tp_error_set(TP_EIO, "mirror %s: cannot open: %s", dir, git_msg());
	return 0;
}

/*
 * The mirror's own config names the remote (url, fetch refspec, tagopt) so that a person can
 * inspect it with the git command line. It is written and read as plain config values rather
 * than through git_remote_lookup/git_remote_create: in libgit2 1.5 those apply url.insteadOf
 * rules by matching a regular expression against every config entry, and each non-matching
 * entry leaks its PCRE2 match data (about 20 KiB), on every call: a slow, unbounded leak for
 * a controller that fetches every minute. Skipping insteadOf is also what a controller wants:
 * the URL it was given is the URL it fetches.
 */
static int configure_remote(tp_source *s)
{
	git_config *all = NULL, *cfg = NULL;
	git_buf cur = {0};
	int err, rc = 0;

	err = git_repository_config(&all, s->repo);
	if (err == 0)
		err = git_config_open_level(&cfg, all, GIT_CONFIG_LEVEL_LOCAL);
	if (err < 0)
		goto done;
	err = git_config_get_string_buf(&cur, cfg, "remote." REMOTE_NAME ".url");
	if (err == GIT_ENOTFOUND) {
		err = git_config_set_string(cfg, "remote." REMOTE_NAME ".url", s->url);
		if (err == 0)
			err = git_config_set_string(cfg, "remote." REMOTE_NAME ".fetch",
						    HEADS_REFSPEC);
		if (err == 0)
			err = git_config_set_string(cfg, "remote." REMOTE_NAME ".tagopt", "--tags");
	} else if (err == 0 && strcmp(cur.ptr, s->url) != 0) {
		tp_log_info("git source: mirror origin changed to %s", s->display);
		err = git_config_set_string(cfg, "remote." REMOTE_NAME ".url", s->url);
	}
done:
	if (err < 0) {
		char *m = scrub(s, git_msg());
		rc = tp_error_set(TP_EIO, "mirror of %s: cannot configure remote \"%s\": %s",
				  s->display, REMOTE_NAME, m);
		free(m);
	}
	git_buf_dispose(&cur);
	git_config_free(cfg);
	git_config_free(all);
	return rc;
}

int tp_source_open(tp_source **out, const tp_source_opts *opts)
{
	tp_source *s = NULL;
	git_reference *head = NULL;
	char *target = NULL;
	bool follows;
	int valid = 0, err, rc = 0;

	*out = NULL;
	if (!opts || !opts->url || !*opts->url)
		return tp_error_set(TP_EINVALID, "git source: a repository URL is required");
	if (!opts->mirror_dir || !*opts->mirror_dir)
		return tp_error_set(TP_EINVALID, "git source: a mirror directory is required");
	if ((rc = libgit2_ready()) < 0)
		return rc;

	s = tp_calloc(1, sizeof(*s));
	s->url = normalise_url(opts->url);
	s->display = strip_credentials(s->url);
	s->branch = tp_strdup(opts->branch && *opts->branch ? opts->branch : DEFAULT_BRANCH);
	s->token = opts->token && *opts->token ? tp_strdup(opts->token) : NULL;
	s->ssh_key = opts->ssh_key && *opts->ssh_key ? tp_strdup(opts->ssh_key) : NULL;
	s->timeout_ms = opts->timeout_ms > 0 ? opts->timeout_ms : DEFAULT_TIMEOUT_MS;
	if ((rc = pipeline_path(&s->path, opts->path)) < 0)
		goto done;

	target = tp_sprintf(REMOTE_PREFIX "%s", s->branch);
	if (git_reference_name_is_valid(&valid, target) < 0 || !valid ||
	    strcmp(s->branch, "HEAD") == 0) {
		rc = tp_error_set(TP_EINVALID, "git source: \"%s\" is not a valid branch name",
				  s->branch);
		goto done;
	}
	if ((rc = open_mirror(s, opts->mirror_dir)) < 0)
		goto done;
	if ((rc = configure_remote(s)) < 0)
		goto done;
	/* HEAD follows the configured branch, so "HEAD~1" means what a reader expects; written
	 * only when it changes */
	err = git_reference_lookup(&head, s->repo, "HEAD");
	follows = err == 0 && git_reference_type(head) == GIT_REFERENCE_SYMBOLIC &&
		  strcmp(git_reference_symbolic_target(head), target) == 0;
	git_reference_free(head);
	head = NULL;
	if (!follows &&
	    git_reference_symbolic_create(&head, s->repo, "HEAD", target, 1,
					  "tapestry: follow branch") < 0) {
		rc = tp_error_set(TP_EIO, "mirror %s: cannot point HEAD at %s: %s",
				  opts->mirror_dir, target, git_msg());
		goto done;
	}
	*out = s;
	s = NULL;
done:
	git_reference_free(head);
	free(target);
	tp_source_free(s);
	return rc;
}

void tp_source_free(tp_source *s)
{
	if (!s)
		return;
	git_repository_free(s->repo);
	if (s->token) {
		explicit_bzero(s->token, strlen(s->token));
		free(s->token);
	}
	free(s->url);
	free(s->display);
	free(s->branch);
	free(s->path);
	free(s->ssh_key);
	free(s);
}

/* ---------------------------------------------------------------- fetch */

typedef struct {
	const tp_source *s;
	int64_t start_ms;
	int calls;           /* credential callback calls */
	int attempts;        /* credentials handed out */
	bool timed_out;
	bool auth_exhausted;
	bool no_credentials; /* the server asked for a kind of credential we do not have */
	int key_errno;       /* the ssh key file is unreadable */
} fetch_ctx;

/* libgit2 gives no other way to interrupt a transfer than failing a callback; these fire on
 * every sideband message and every chunk of the pack, so the bound holds while data flows. */
static int past_deadline(fetch_ctx *c)
{
	if (tp_clock_mono_ms() - c->start_ms >= c->s->timeout_ms) {
		c->timed_out = true;
		return -1;
	}
	return 0;
}

static int on_sideband(const char *str, int len, void *payload)
{
	(void)str;
	(void)len;
	return past_deadline(payload);
}

static int on_transfer(const git_indexer_progress *stats, void *payload)
{
	(void)stats;
	return past_deadline(payload);
}

static int on_update_tips(const char *refname, const git_oid *a, const git_oid *b, void *payload)
{
	char from[GIT_OID_HEXSZ + 1], to[GIT_OID_HEXSZ + 1];
	(void)payload;
	git_oid_tostr(from, sizeof(from), a);
	git_oid_tostr(to, sizeof(to), b);
	tp_log_debug("git source: %s %s -> %s", refname, from, to);
	return 0;
}

/*
 * Called again each time the server refuses what the previous call returned, so it is
 * bounded: MAX_AUTH_ATTEMPTS credentials, and a hard cap on calls of any kind (a server
 * could keep asking for a user name alone).
 */
static int on_credentials(git_credential **out, const char *url, const char *username_from_url,
			  unsigned int allowed, void *payload)
{
	fetch_ctx *c = payload;
	const char *user = username_from_url && *username_from_url ? username_from_url : "git";
	bool key = allowed & GIT_CREDENTIAL_SSH_KEY;
	bool token = (allowed & GIT_CREDENTIAL_USERPASS_PLAINTEXT) && c->s->token;

	(void)url;
	if (past_deadline(c) < 0)
		return GIT_EUSER;
	if (++c->calls > 2 * MAX_AUTH_ATTEMPTS ||
	    ((key || token) && c->attempts >= MAX_AUTH_ATTEMPTS)) {
		c->auth_exhausted = true;
		return GIT_EUSER;
	}
	if (key) {
		c->attempts++;
		if (!c->s->ssh_key)
			return git_credential_ssh_key_from_agent(out, user);
		if (access(c->s->ssh_key, R_OK) != 0) {
			c->key_errno = errno;
			return GIT_EUSER;
		}
		return git_credential_ssh_key_new(out, user, NULL, c->s->ssh_key, NULL);
	}
	if (token) {
		c->attempts++;
		return git_credential_userpass_plaintext_new(out, TOKEN_USER, c->s->token);
	}
	if (allowed & GIT_CREDENTIAL_USERNAME)
		return git_credential_username_new(out, user);
	c->no_credentials = true;
	return GIT_PASSTHROUGH;
}

static int fetch_error(const tp_source *s, const fetch_ctx *c, int err)
{
	char *detail = scrub(s, git_msg());
	const char *what = s->token ? "token" : s->ssh_key ? "ssh key" : "ssh agent's keys";
	int rc;

	if (c->timed_out)
		rc = tp_error_set(TP_EIO, "fetch %s: timed out after %d ms", s->display,
				  s->timeout_ms);
	else if (c->key_errno)
		rc = tp_error_set(TP_EAUTH, "authentication failed for %s: ssh key %s: %s",
				  s->display, s->ssh_key, strerror(c->key_errno));
	else if (c->auth_exhausted && c->attempts > 0)
		rc = tp_error_set(TP_EAUTH, "authentication failed for %s: the server refused "
				  "the %s %d times", s->display, what, c->attempts);
	else if (c->auth_exhausted)
		rc = tp_error_set(TP_EAUTH,
				  "authentication failed for %s: the server kept asking for "
				  "credentials", s->display);
	else if (c->no_credentials)
		rc = tp_error_set(TP_EAUTH,
				  "authentication failed for %s: the server requires credentials "
				  "and none are configured (%s)", s->display, detail);
	else if (err == GIT_EAUTH)
		rc = tp_error_set(TP_EAUTH, "authentication failed for %s: %s", s->display,
				  detail);
	else
		rc = tp_error_set(map_git_error(err), "fetch %s: %s", s->display, detail);
	free(detail);
	return rc;
}

/* ---------------------------------------------------------------- pack consolidation */

/* The pack files of the mirror ("pack-<id>.pack"), by name. */
static int list_packs(tp_strlist *out, const char *packdir)
{
	DIR *d = opendir(packdir);
	struct dirent *de;
	if (!d)
		return tp_error_set(TP_EIO, "mirror: %s: %s", packdir, strerror(errno));
	while ((de = readdir(d))) {
		size_t n = strlen(de->d_name);
		if (n > 10 && !strncmp(de->d_name, "pack-", 5) && !strcmp(de->d_name + n - 5, ".pack"))
			tp_strlist_push(out, de->d_name);
	}
	closedir(d);
	return 0;
}

/*
 * Consolidation is geometric, as `git repack --geometric` and git's auto-gc are, so its cost
 * follows what was fetched rather than the whole history.
 *
 * A full rewrite writes one pack of everything the refs reach: the base. BASE_FILE, in the
 * mirror's git directory, records the base pack's name and the commits it was written from
 * (its tips). The file is replaced by a rename, so name and tips always go together, and a
 * pack's name is the hash of its content: while a pack of that name exists, it holds
 * everything those tips reach. Later consolidations write one pack of only what the refs reach
 * beyond the base tips (the walk hides them) and remove every other pack but the base.
 *
 * A full rewrite happens instead when there is no usable base (no file, an unreadable one, its
 * pack gone, or a tip no longer reachable from any ref after a force-push or a deleted branch:
 * then the base holds objects only a rewrite drops), and when the pack beyond the base has
 * grown past half the base's size: the bases grow geometrically, so the total work stays
 * proportional to what was fetched. Nothing is removed before the new pack is written.
 */
#define BASE_FILE "tapestry-base"
#define BASE_MAGIC "tapestry base pack 1"
#define BASE_FILE_MAX ((size_t)16 * 1024 * 1024)

typedef struct {
	git_oid *ids;
	size_t len;
	size_t cap;
} oid_list;

static void oids_push(oid_list *l, const git_oid *id)
{
	if (l->len == l->cap) {
		l->cap = l->cap ? 2 * l->cap : 16;
		l->ids = tp_realloc(l->ids, l->cap * sizeof(*l->ids));
	}
	git_oid_cpy(&l->ids[l->len++], id);
}

static int oid_order(const void *a, const void *b)
{
	return git_oid_cmp(a, b);
}

/* sorted, without duplicates (for oids_contain) */
static void oids_sort(oid_list *l)
{
	size_t n = 0;
	if (l->len == 0)
		return;
	qsort(l->ids, l->len, sizeof(*l->ids), oid_order);
	for (size_t i = 1; i < l->len; i++)
		if (git_oid_cmp(&l->ids[i], &l->ids[n]) != 0)
			git_oid_cpy(&l->ids[++n], &l->ids[i]);
	l->len = n + 1;
}

static bool oids_contain(const oid_list *l, const git_oid *id)
{
	return l->len && bsearch(id, l->ids, l->len, sizeof(*l->ids), oid_order);
}

static void oids_free(oid_list *l)
{
	free(l->ids);
	memset(l, 0, sizeof(*l));
}

/* What the references name: commits, walked; annotated tags of commits, packed alone (the
 * walk brings their commits); anything else (a tag of a tree, a ref to a blob), packed with
 * everything it reaches. */
typedef struct {
	oid_list commits; /* sorted */
	oid_list tags;
	oid_list others;
} ref_targets;

static void ref_targets_free(ref_targets *t)
{
	oids_free(&t->commits);
	oids_free(&t->tags);
	oids_free(&t->others);
}

static int read_refs(ref_targets *t, git_repository *repo)
{
	git_reference_iterator *it = NULL;
	git_reference *ref = NULL;
	int err = git_reference_iterator_new(&it, repo);
	while (err == 0 && (err = git_reference_next(&ref, it)) == 0) {
		const git_oid *id = git_reference_target(ref);
		git_object *o = NULL, *peeled = NULL;
		if (id && git_object_lookup(&o, repo, id, GIT_OBJECT_ANY) == 0) {
			if (git_object_type(o) == GIT_OBJECT_COMMIT) {
				oids_push(&t->commits, id);
			} else if (git_object_type(o) == GIT_OBJECT_TAG &&
				   git_object_peel(&peeled, o, GIT_OBJECT_COMMIT) == 0) {
				oids_push(&t->tags, id);
				oids_push(&t->commits, git_object_id(peeled));
			} else {
				oids_push(&t->others, id);
			}
		}
		git_object_free(peeled);
		git_object_free(o);
		git_reference_free(ref);
		ref = NULL;
	}
	git_reference_iterator_free(it);
	oids_sort(&t->commits);
	return err == GIT_ITEROVER ? 0 : err;
}

/* The size of pack-<name>.pack, or -1 when it (or its index) is missing. */
static int64_t pack_size(const char *packdir, const char *name)
{
	char *pack = tp_sprintf("%s/pack-%s.pack", packdir, name);
	char *idx = tp_sprintf("%s/pack-%s.idx", packdir, name);
	struct stat st;
	int64_t size = -1;
	if (stat(idx, &st) == 0 && S_ISREG(st.st_mode) && stat(pack, &st) == 0 &&
	    S_ISREG(st.st_mode))
		size = (int64_t)st.st_size;
	free(pack);
	free(idx);
	return size;
}

/* Writes one pack of everything the refs reach except what the commits in hide reach;
 * *name is NULL when that is nothing. */
static int write_pack(char **name, git_repository *repo, const char *packdir,
		      const ref_targets *t, const oid_list *hide)
{
	git_packbuilder *pb = NULL;
	git_revwalk *walk = NULL;
	int err;

	*name = NULL;
	if ((err = git_packbuilder_new(&pb, repo)) < 0 || (err = git_revwalk_new(&walk, repo)) < 0)
		goto done;
	/* pushed before hidden: a tip both pushed and hidden stays hidden */
	for (size_t i = 0; err == 0 && i < t->commits.len; i++)
		err = git_revwalk_push(walk, &t->commits.ids[i]);
	for (size_t i = 0; err == 0 && hide && i < hide->len; i++)
		err = git_revwalk_hide(walk, &hide->ids[i]);
	for (size_t i = 0; err == 0 && i < t->tags.len; i++)
		err = git_packbuilder_insert(pb, &t->tags.ids[i], NULL);
	for (size_t i = 0; err == 0 && i < t->others.len; i++)
		err = git_packbuilder_insert_recur(pb, &t->others.ids[i], NULL);
	if (err == 0)
		err = git_packbuilder_insert_walk(pb, walk);
	if (err < 0 || git_packbuilder_object_count(pb) == 0)
		goto done;
	if ((err = git_packbuilder_write(pb, packdir, 0, NULL, NULL)) < 0)
		goto done;
	if (git_packbuilder_name(pb))
		*name = tp_strdup(git_packbuilder_name(pb));
	else {
		git_error_set_str(GIT_ERROR_INTERNAL, "the new pack has no name");
		err = -1;
	}
done:
	git_revwalk_free(walk);
	git_packbuilder_free(pb);
	return err;
}

typedef struct {
	char *pack;    /* the base pack's name (hex) */
	oid_list tips; /* the commits it was written from */
} base_pack;

static void base_pack_free(base_pack *b)
{
	free(b->pack);
	oids_free(&b->tips);
	memset(b, 0, sizeof(*b));
}

static bool is_hex(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return n > 0;
}

/*
 * Reads BASE_FILE ("tapestry base pack 1", "pack <name>", then "tip <commit id>" lines) and
 * checks that the base can be built on: its pack is there and every tip is still reachable
 * from the refs. NULL when it can, else why not.
 */
static const char *load_base(base_pack *b, int64_t *size, git_repository *repo,
			     const char *packdir, const ref_targets *refs)
{
	char *path = tp_sprintf("%s" BASE_FILE, git_repository_path(repo));
	const char *why = NULL;
	tp_buf text;
	char *line, *save = NULL;
	git_oid id;

	tp_buf_init(&text, BASE_FILE_MAX);
	if (access(path, F_OK) != 0) {
		why = "no base pack recorded";
		goto done;
	}
	if (tp_file_read(&text, path, BASE_FILE_MAX) < 0) {
		why = "the base pack record is unreadable";
		goto done;
	}
	line = text.len ? strtok_r(text.ptr, "\n", &save) : NULL;
	if (!line || strcmp(line, BASE_MAGIC) != 0)
		why = "the base pack record is damaged";
	line = why ? NULL : strtok_r(NULL, "\n", &save);
	if (!why && (!line || strncmp(line, "pack ", 5) != 0 || !is_hex(line + 5, strlen(line + 5))))
		why = "the base pack record is damaged";
	else if (!why)
		b->pack = tp_strdup(line + 5);
	while (!why && (line = strtok_r(NULL, "\n", &save)) != NULL) {
		if (strncmp(line, "tip ", 4) != 0 || strlen(line + 4) != GIT_OID_HEXSZ ||
		    !is_hex(line + 4, GIT_OID_HEXSZ) || git_oid_fromstr(&id, line + 4) < 0)
			why = "the base pack record is damaged";
		else
			oids_push(&b->tips, &id);
	}
	if (!why && b->tips.len == 0)
		why = "the base pack record is damaged";
	if (why)
		goto done;
	if ((*size = pack_size(packdir, b->pack)) < 0) {
		why = "the base pack is gone";
		goto done;
	}
	/* a tip still named by a ref is cheap to check; one a branch moved past is reachable
	 * from its new target through a walk over what came since */
	for (size_t i = 0; !why && i < b->tips.len; i++)
		if (!oids_contain(&refs->commits, &b->tips.ids[i]) &&
		    git_graph_reachable_from_any(repo, &b->tips.ids[i], refs->commits.ids,
						 refs->commits.len) != 1)
			why = "a commit of the base is no longer reachable from the refs";
done:
	if (why)
		base_pack_free(b);
	tp_buf_free(&text);
	free(path);
	return why;
}

/* Replaces BASE_FILE by a rename, so a reader sees the old record or the new one. */
static int save_base(git_repository *repo, const char *pack, const oid_list *tips)
{
	char *path = tp_sprintf("%s" BASE_FILE, git_repository_path(repo));
	char *tmp = tp_sprintf("%s.tmp", path);
	char hex[GIT_OID_HEXSZ + 1];
	FILE *f = fopen(tmp, "w");
	int rc = f ? 0 : -1;

	if (f) {
		fprintf(f, BASE_MAGIC "\npack %s\n", pack);
		for (size_t i = 0; i < tips->len; i++)
			fprintf(f, "tip %s\n", git_oid_tostr(hex, sizeof(hex), &tips->ids[i]));
		if (fflush(f) != 0 || ferror(f) || fsync(fileno(f)) != 0)
			rc = -1;
		if (fclose(f) != 0)
			rc = -1;
		if (rc == 0 && rename(tmp, path) != 0)
			rc = -1;
	}
	if (rc < 0) {
		/* harmless: the old record is checked against its pack, which goes */
		tp_log_warn("git source: cannot record the mirror's base pack in %s: %s", path,
			    strerror(errno));
		unlink(tmp);
	}
	free(tmp);
	free(path);
	return rc;
}

/* Removes the pack files (with their index and companions) named in packs, but keep_a's and
 * keep_b's (either may be NULL). */
static void remove_packs(const char *packdir, const tp_strlist *packs, const char *keep_a,
			 const char *keep_b)
{
	static const char *const exts[] = {".pack", ".idx", ".rev", ".keep"};
	for (size_t i = 0; i < packs->len; i++) {
		const char *id = packs->items[i] + 5; /* after "pack-" */
		size_t n = strlen(id) - 5;            /* before ".pack" */
		if ((keep_a && strlen(keep_a) == n && !strncmp(id, keep_a, n)) ||
		    (keep_b && strlen(keep_b) == n && !strncmp(id, keep_b, n)))
			continue;
		for (size_t k = 0; k < 4; k++) {
			char *f = tp_sprintf("%s/pack-%.*s%s", packdir, (int)n, id, exts[k]);
			if (unlink(f) < 0 && errno != ENOENT)
				tp_log_warn("git source: cannot remove %s: %s", f, strerror(errno));
			free(f);
		}
	}
}

/* When fetches have left more than MAX_PACKS packs, writes one pack (of what came since the
 * base, or of everything: see above), removes the others but the base and reopens the
 * repository (dropping their descriptors and maps). A failure leaves the mirror as it was: it
 * is only tidying, logged and retried next time. */
static void consolidate_packs(tp_source *s)
{
	char *packdir = tp_sprintf("%sobjects/pack", git_repository_path(s->repo));
	tp_strlist packs = {0}, dropped = {0};
	ref_targets refs = {0};
	base_pack base = {0};
	git_repository *fresh = NULL;
	const char *full = NULL; /* why everything is rewritten; NULL: only what is new */
	char *name = NULL;
	int64_t base_size = 0, size = 0;
	int err = 0;

	if (list_packs(&packs, packdir) < 0 || packs.len <= MAX_PACKS)
		goto done;
	if ((err = read_refs(&refs, s->repo)) < 0)
		goto done;
	full = load_base(&base, &base_size, s->repo, packdir, &refs);
	if (!full) {
		if ((err = write_pack(&name, s->repo, packdir, &refs, &base.tips)) < 0)
			goto done;
		size = name ? pack_size(packdir, name) : 0;
		if (size < 0 || size > base_size / 2) {
			full = "what came since the base outgrew half of it";
			tp_strlist_push_owned(&dropped, tp_sprintf("pack-%s.pack", name));
			free(name);
			name = NULL;
		}
	}
	if (full) {
		if ((err = write_pack(&name, s->repo, packdir, &refs, NULL)) < 0)
			goto done;
		if (!name) {
			err = -1;
			git_error_set_str(GIT_ERROR_INTERNAL, "the refs reach no object");
			goto done;
		}
		save_base(s->repo, name, &refs.commits);
	}
	/* reopen first: the old handle's maps and descriptors go with it */
	if ((err = git_repository_open_bare(&fresh, git_repository_path(s->repo))) < 0)
		goto done;
	git_repository_free(s->repo);
	s->repo = fresh;
	fresh = NULL;
	remove_packs(packdir, &packs, name, full ? NULL : base.pack);
	remove_packs(packdir, &dropped, name, NULL);
	if (full)
		tp_log_info("git source: %zu packs of the mirror rewritten into one (%s)", packs.len,
			    full);
	else
		tp_log_info("git source: %zu packs of the mirror consolidated: the base pack kept, "
			    "what came since it in one pack", packs.len);
done:
	if (err < 0)
		tp_log_warn("git source: could not consolidate the mirror's %zu packs: %s",
			    packs.len, git_msg());
	git_repository_free(fresh);
	base_pack_free(&base);
	ref_targets_free(&refs);
	tp_strlist_free(&dropped);
	tp_strlist_free(&packs);
	free(name);
	free(packdir);
}

static int fetch_remote(tp_source *s);

int tp_source_open_local(tp_source **out, const char *repo_path, const char *path)
{
	tp_source *s = NULL;
	int rc;

	*out = NULL;
	if ((rc = libgit2_ready()) < 0)
		return rc;
	s = tp_calloc(1, sizeof(*s));
	s->url = tp_strdup(repo_path);
	s->display = tp_strdup(repo_path);
	s->branch = tp_strdup("HEAD");
	s->local = true;
	if ((rc = pipeline_path(&s->path, path)) < 0)
		goto done;
	if (git_repository_open_ext(&s->repo, repo_path, 0, NULL) < 0) {
		rc = tp_error_set(TP_ENOTFOUND, "%s is not a Git repository: %s", repo_path,
				  git_msg());
		goto done;
	}
	*out = s;
	s = NULL;
done:
	tp_source_free(s);
	return rc;
}

int tp_source_fetch(tp_source *s)
{
	if (s->local)
		return 0; /* read in place */
	return fetch_remote(s);
}

static int fetch_remote(tp_source *s)
{
	git_remote *remote = NULL;
	git_reference *ref = NULL;
	char *target = NULL;
	static char heads[] = HEADS_REFSPEC, tags[] = TAGS_REFSPEC;
	char *specs[] = {heads, tags};
	git_strarray refspecs = {specs, 2};
	git_remote_create_options ro;
	git_fetch_options fo;
	fetch_ctx ctx = {0};
	int err, rc = 0;

	/* libgit2 calls a missing local path an "unsupported URL protocol": say what it is */
	if (!has_scheme(s->url) && !is_scp_like(s->url) && access(s->url, F_OK) != 0) {
		rc = tp_error_set(errno == ENOENT ? TP_ENOTFOUND : TP_EIO, "fetch %s: %s",
				  s->display, strerror(errno));
		goto done;
	}
	/* an in-memory remote with explicit refspecs: see configure_remote for why */
	git_remote_create_options_init(&ro, GIT_REMOTE_CREATE_OPTIONS_VERSION);
	ro.repository = s->repo;
	ro.flags = GIT_REMOTE_CREATE_SKIP_INSTEADOF | GIT_REMOTE_CREATE_SKIP_DEFAULT_FETCHSPEC;
	err = git_remote_create_with_opts(&remote, s->url, &ro);
	if (err < 0) {
		char *m = scrub(s, git_msg());
		rc = tp_error_set(TP_EINVALID, "fetch %s: %s", s->display, m);
		free(m);
		goto done;
	}
#if LIBGIT2_VER_MAJOR > 1 || (LIBGIT2_VER_MAJOR == 1 && LIBGIT2_VER_MINOR >= 7)
	/* also bound a silent server, which no callback sees (process-wide settings) */
	git_libgit2_opts(GIT_OPT_SET_SERVER_CONNECT_TIMEOUT, s->timeout_ms);
	git_libgit2_opts(GIT_OPT_SET_SERVER_TIMEOUT, s->timeout_ms);
#endif
	git_fetch_options_init(&fo, GIT_FETCH_OPTIONS_VERSION);
	ctx.s = s;
	ctx.start_ms = tp_clock_mono_ms();
	fo.callbacks.credentials = on_credentials;
	fo.callbacks.sideband_progress = on_sideband;
	fo.callbacks.transfer_progress = on_transfer;
	fo.callbacks.update_tips = on_update_tips;
	fo.callbacks.payload = &ctx;
	fo.prune = GIT_FETCH_PRUNE;
	/* tags come through the explicit refspec, forced, so a moved tag is followed too */
	fo.download_tags = GIT_REMOTE_DOWNLOAD_TAGS_NONE;
	fo.update_fetchhead = 0;
	fo.proxy_opts.type = GIT_PROXY_AUTO;

	err = git_remote_fetch(remote, &refspecs, &fo, "tapestry: fetch");
	if (err < 0) {
		rc = fetch_error(s, &ctx, err);
		goto done;
	}
	/* a misspelt branch is reported here, where it can be explained, not as an unknown
	 * revision later */
	target = tp_sprintf(REMOTE_PREFIX "%s", s->branch);
	if (git_reference_lookup(&ref, s->repo, target) < 0) {
		rc = tp_error_set(TP_ENOTFOUND, "fetch %s: the remote has no branch \"%s\"",
				  s->display, s->branch);
		goto done;
	}
	tp_log_debug("git source: fetched %s in %lld ms", s->display,
		     (long long)(tp_clock_mono_ms() - ctx.start_ms));
	consolidate_packs(s);
done:
	git_reference_free(ref);
	free(target);
	git_remote_free(remote);
	return rc;
}

/* ---------------------------------------------------------------- resolve */

/*
 * A revision whose leading name ("main" in "main~2") is a fetched branch, rewritten to the
 * full remote ref, or NULL. Branches win over tags of the same name, as documented.
 */
static char *remote_branch_rev(tp_source *s, const char *rev)
{
	size_t n = strcspn(rev, "~^:");
	const char *brace = strstr(rev, "@{");
	char *name, *refname, *out = NULL;
	git_reference *ref = NULL;
	int valid = 0;

	if (brace && (size_t)(brace - rev) < n)
		n = (size_t)(brace - rev);
	if (n == 0)
		return NULL;
	name = tp_strndup(rev, n);
	refname = tp_sprintf(REMOTE_PREFIX "%s", name);
	if (git_reference_name_is_valid(&valid, refname) == 0 && valid &&
	    git_reference_lookup(&ref, s->repo, refname) == 0)
		out = tp_sprintf(REMOTE_PREFIX "%s", rev);
	git_reference_free(ref);
	free(refname);
	free(name);
	return out;
}

int tp_source_resolve(char out[41], tp_source *s, const char *rev)
{
	git_object *obj = NULL, *commit = NULL;
	char *spec = NULL;
	int err, rc = 0;

	out[0] = '\0';
	if (!rev || !*rev)
		rev = s->branch;
	spec = remote_branch_rev(s, rev);
	err = git_revparse_single(&obj, s->repo, spec ? spec : rev);
	if (err == GIT_ENOTFOUND) {
		rc = tp_error_set(TP_ENOTFOUND,
				  "revision \"%s\" not found in the mirror of %s (a branch of the "
				  "remote, a tag or a commit id; fetch first?)", rev, s->display);
		goto done;
	}
	if (err == GIT_EAMBIGUOUS) {
		rc = tp_error_set(TP_EINVALID, "revision \"%s\" is ambiguous: use more digits",
				  rev);
		goto done;
	}
	if (err < 0) {
		rc = tp_error_set(map_git_error(err), "revision \"%s\": %s", rev, git_msg());
		goto done;
	}
	err = git_object_peel(&commit, obj, GIT_OBJECT_COMMIT);
	if (err < 0) {
		rc = tp_error_set(TP_EINVALID, "revision \"%s\" names a %s, not a commit", rev,
				  git_object_type2string(git_object_type(obj)));
		goto done;
	}
	git_oid_tostr(out, 41, git_object_id(commit));
done:
	git_object_free(commit);
	git_object_free(obj);
	free(spec);
	return rc;
}

/* ---------------------------------------------------------------- commits */

static int lookup_commit(git_commit **out, git_repository *repo, const char *display,
			 const char *hex)
{
	git_object *obj = NULL;
	git_oid oid;
	int err, rc = 0;

	*out = NULL;
	if (!hex || strlen(hex) != GIT_OID_HEXSZ || git_oid_fromstr(&oid, hex) < 0)
		return tp_error_set(TP_EINVALID,
				    "\"%s\" is not a full commit id (tp_source_resolve gives one)",
				    hex ? hex : "(null)");
	err = git_object_lookup(&obj, repo, &oid, GIT_OBJECT_ANY);
	if (err == GIT_ENOTFOUND)
		rc = tp_error_set(TP_ENOTFOUND, "commit %s is not in the mirror of %s", hex,
				  display);
	else if (err < 0)
		rc = tp_error_set(TP_EIO, "commit %s: %s", hex, git_msg());
	else if (git_object_type(obj) != GIT_OBJECT_COMMIT)
		rc = tp_error_set(TP_EINVALID, "%s is a %s, not a commit", hex,
				  git_object_type2string(git_object_type(obj)));
	else {
		*out = (git_commit *)obj;
		obj = NULL;
	}
	git_object_free(obj);
	return rc;
}

/* The tree at path inside root ("" is root itself). */
static int subtree(git_tree **out, git_tree *root, const char *path, const char *what)
{
	git_tree_entry *e = NULL;
	int err, rc = 0;

	*out = NULL;
	if (!*path) {
		err = git_object_dup((git_object **)out, (git_object *)root);
		if (err < 0)
			rc = tp_error_set(TP_EIO, "%s: %s", what, git_msg());
		goto done;
	}
	err = git_tree_entry_bypath(&e, root, path);
	if (err == GIT_ENOTFOUND) {
		rc = tp_error_set(TP_ENOTFOUND, "%s: no such directory", what);
		goto done;
	}
	if (err < 0) {
		rc = tp_error_set(TP_EIO, "%s: %s", what, git_msg());
		goto done;
	}
	if (git_tree_entry_type(e) != GIT_OBJECT_TREE) {
		rc = tp_error_set(TP_EINVALID, "%s: not a directory", what);
		goto done;
	}
	err = git_tree_lookup(out, git_tree_owner(root), git_tree_entry_id(e));
	if (err < 0)
		rc = tp_error_set(TP_EIO, "%s: %s", what, git_msg());
done:
	git_tree_entry_free(e);
	return rc;
}

int tp_source_commit_info(tp_commit_info *out, tp_source *s, const char *commit)
{
	git_commit *c = NULL;
	git_tree *root = NULL;
	git_tree_entry *e = NULL;
	const git_signature *author;
	const char *message;
	int err, rc = 0;

	memset(out, 0, sizeof(*out));
	if ((rc = lookup_commit(&c, s->repo, s->display, commit)) < 0)
		goto done;
	git_oid_tostr(out->commit, sizeof(out->commit), git_commit_id(c));
	author = git_commit_author(c);
	out->author = tp_sprintf("%s <%s>", author->name ? author->name : "",
				 author->email ? author->email : "");
	out->time_ms = (int64_t)author->when.time * 1000;
	message = git_commit_message(c);
	out->message = tp_strdup(message ? message : "");

	err = git_commit_tree(&root, c);
	if (err < 0) {
		rc = tp_error_set(TP_EIO, "commit %s: tree: %s", commit, git_msg());
		goto done;
	}
	if (!*s->path) {
		git_oid_tostr(out->tree, sizeof(out->tree), git_tree_id(root));
		goto done;
	}
	err = git_tree_entry_bypath(&e, root, s->path);
	if (err == 0 && git_tree_entry_type(e) == GIT_OBJECT_TREE)
		git_oid_tostr(out->tree, sizeof(out->tree), git_tree_entry_id(e));
	else if (err < 0 && err != GIT_ENOTFOUND)
		rc = tp_error_set(TP_EIO, "commit %s: %s: %s", commit, s->path, git_msg());
done:
	if (rc < 0)
		tp_commit_info_clear(out);
	git_tree_entry_free(e);
	git_tree_free(root);
	git_commit_free(c);
	return rc;
}

void tp_commit_info_clear(tp_commit_info *c)
{
	if (!c)
		return;
	free(c->message);
	free(c->author);
	memset(c, 0, sizeof(*c));
}

/* ---------------------------------------------------------------- the tree */

typedef struct {
	tp_tree base;
	git_repository *repo; /* its own handle: the tree outlives the source */
	git_tree *dir;        /* the pipeline directory */
	char *root;           /* "<url>@<short commit>:<path>" */
} src_tree;

static int tree_read(tp_tree *tt, tp_buf *out, const char *relpath, size_t max)
{
	src_tree *t = (src_tree *)tt;
	char *rel = NULL;
	git_tree_entry *e = NULL;
	git_odb *odb = NULL;
	git_blob *blob = NULL;
	git_object_t type;
	size_t size = 0;
	int err, rc;

	if ((rc = tp_path_normalise(&rel, relpath)) < 0)
		goto done;
	err = git_tree_entry_bypath(&e, t->dir, rel);
	if (err == GIT_ENOTFOUND) {
		rc = tp_error_set(TP_ENOTFOUND, "%s: no such file", rel);
		goto done;
	}
	if (err < 0) {
		rc = tp_error_set(TP_EIO, "%s: %s", rel, git_msg());
		goto done;
	}
	switch (git_tree_entry_filemode(e)) {
	case GIT_FILEMODE_BLOB:
	case GIT_FILEMODE_BLOB_EXECUTABLE:
		break;
	case GIT_FILEMODE_LINK:
		rc = tp_error_set(TP_EINVALID,
				  "%s: is a symlink; symlinks are not followed in Git trees", rel);
		goto done;
	case GIT_FILEMODE_TREE:
		rc = tp_error_set(TP_EINVALID, "%s: is a directory, not a regular file", rel);
		goto done;
	case GIT_FILEMODE_COMMIT:
		rc = tp_error_set(TP_EINVALID, "%s: is a submodule, not a regular file", rel);
		goto done;
	default:
		rc = tp_error_set(TP_EINVALID, "%s: not a regular file (mode %06o)", rel,
				  (unsigned)git_tree_entry_filemode(e));
		goto done;
	}
	/* the header alone gives the size: an oversized blob is refused before it is inflated */
	err = git_repository_odb(&odb, t->repo);
	if (err == 0)
		err = git_odb_read_header(&size, &type, odb, git_tree_entry_id(e));
	if (err < 0) {
		rc = tp_error_set(TP_EIO, "%s: %s", rel, git_msg());
		goto done;
	}
	if (size > max) {
		rc = tp_error_set(TP_ETOOBIG, "%s: file is %zu bytes, over the limit of %zu bytes",
				  rel, size, max);
		goto done;
	}
	err = git_blob_lookup(&blob, t->repo, git_tree_entry_id(e));
	if (err < 0) {
		rc = tp_error_set(TP_EIO, "%s: %s", rel, git_msg());
		goto done;
	}
	tp_buf_clear(out);
	rc = tp_buf_put(out, git_blob_rawcontent(blob), (size_t)git_blob_rawsize(blob));
	if (rc < 0) {
		char *m = tp_strdup(tp_error_last());
		tp_error_set(rc, "%s: %s", rel, m);
		free(m);
	}
done:
	git_blob_free(blob);
	git_odb_free(odb);
	git_tree_entry_free(e);
	free(rel);
	return rc;
}

static int tree_list(tp_tree *tt, tp_strlist *out, const char *reldir)
{
	src_tree *t = (src_tree *)tt;
	char *rel = NULL;
	git_tree *dir = NULL;
	size_t n;
	int rc = 0;

	if (reldir && *reldir && (rc = tp_path_normalise(&rel, reldir)) < 0)
		goto done;
	if ((rc = subtree(&dir, t->dir, rel ? rel : "", rel ? rel : ".")) < 0)
		goto done;
	n = git_tree_entrycount(dir);
	for (size_t i = 0; i < n; i++) {
		const git_tree_entry *e = git_tree_entry_byindex(dir, i);
		git_filemode_t mode = git_tree_entry_filemode(e);
		if (mode == GIT_FILEMODE_BLOB || mode == GIT_FILEMODE_BLOB_EXECUTABLE)
			tp_strlist_push(out, git_tree_entry_name(e));
		if (out->len > TP_SPEC_MAX_FILES) {
			rc = tp_error_set(TP_ETOOBIG, "%s: more than %d files", rel ? rel : ".",
					  TP_SPEC_MAX_FILES);
			goto done;
		}
	}
	tp_strlist_sort(out);
done:
	git_tree_free(dir);
	free(rel);
	return rc;
}

static void tree_free(tp_tree *tt)
{
	src_tree *t = (src_tree *)tt;
	git_tree_free(t->dir);
	git_repository_free(t->repo);
	free(t->root);
	free(t);
}

int tp_source_tree(tp_tree **out, tp_source *s, const char *commit)
{
	src_tree *t = NULL;
	git_commit *c = NULL;
	git_tree *root = NULL;
	char *what = NULL;
	char shortid[SHORT_ID_LEN + 1];
	int err, rc = 0;

	*out = NULL;
	t = tp_calloc(1, sizeof(*t));
	err = git_repository_open_bare(&t->repo, git_repository_path(s->repo));
	if (err < 0) {
		rc = tp_error_set(TP_EIO, "mirror of %s: %s", s->display, git_msg());
		goto done;
	}
	if ((rc = lookup_commit(&c, t->repo, s->display, commit)) < 0)
		goto done;
	err = git_commit_tree(&root, c);
	if (err < 0) {
		rc = tp_error_set(TP_EIO, "commit %s: tree: %s", commit, git_msg());
		goto done;
	}
	git_oid_tostr(shortid, sizeof(shortid), git_commit_id(c));
	what = tp_sprintf("%s at %s", *s->path ? s->path : "the repository root", shortid);
	if ((rc = subtree(&t->dir, root, s->path, what)) < 0)
		goto done;
	t->root = tp_sprintf("%s@%s:%s", s->display, shortid, *s->path ? s->path : ".");
	t->base.read = tree_read;
	t->base.list = tree_list;
	t->base.free = tree_free;
	t->base.root = t->root;
	*out = &t->base;
	t = NULL;
done:
	if (t)
		tree_free(&t->base);
	free(what);
	git_tree_free(root);
	git_commit_free(c);
	return rc;
}
