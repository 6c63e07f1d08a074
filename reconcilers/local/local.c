/*
 * The local provider: objects on the controller host itself. `local.file` renders a file (for
 * example the .env a service reads its settings from) from inline content or from a file in
 * the pipeline repository, with ${...} references interpolated at apply time. Needing no
 * network, it is also the engine's own test target.
 */
#include "../reconciler.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "../../spec/spec.h"

static const tp_field file_fields[] = {
	{.name = "path", .type = TP_TYPE_STRING, .flags = TP_F_REQUIRED | TP_F_IMMUTABLE,
	 .doc = "absolute path of the file on the controller host"},
	{.name = "content", .type = TP_TYPE_STRING,
	 .doc = "file content; may contain ${...} references"},
	{.name = "source", .type = TP_TYPE_STRING, .flags = TP_F_FILE,
	 .doc = "file in the pipeline repository whose content (with ${...} interpolated) is "
		"written"},
	{.name = "mode", .type = TP_TYPE_STRING, .def = "\"0644\"",
	 .doc = "octal permission bits, e.g. \"0600\" for a file that holds secrets"},
	{0},
};

/* sha256: the hex SHA-256 of the content written, or, when that content holds a secret,
 * "hmac:" + HMAC-SHA256 keyed with the installation key: it still changes with the content
 * (a restart trigger for dependants) but cannot confirm a guessed secret offline. */
static const char *const file_outputs[] = {"path", "~sha256", NULL};

static void file_check(const json_t *spec, tp_check *c)
{
	const char *path = tp_json_get_str(spec, "path");
	const char *mode = tp_json_get_str(spec, "mode");
	bool has_content = json_object_get(spec, "content") != NULL;
	bool has_source = json_object_get(spec, "source") != NULL;

	if (path && path[0] != '/' && strncmp(path, "${", 2) != 0)
		tp_check_error(c, "path", "must be an absolute path, got \"%s\"", path);
	if (has_content == has_source)
		tp_check_error(c, "", "exactly one of `content` and `source` must be set");
	if (mode) {
		size_t n = strlen(mode);
		bool ok = n >= 3 && n <= 4 && strspn(mode, "01234567") == n;
		if (!ok)
			tp_check_error(c, "mode", "must be octal permission bits like \"0644\", got "
				       "\"%s\"", mode);
	}
}

static void file_normalise(json_t *spec)
{
	/* "644" and "0644" are the same mode. */
	const char *mode = tp_json_get_str(spec, "mode");
	if (mode && strlen(mode) == 3) {
		char *m = tp_sprintf("0%s", mode);
		json_object_set_new(spec, "mode", json_string(m));
		free(m);
	}
}

static json_t *file_predict(const json_t *spec)
{
	json_t *out = json_object();
	json_t *path = json_object_get(spec, "path");
	json_t *content = json_object_get(spec, "content");
	if (json_is_string(path))
		json_object_set(out, "path", path);
	/* content from a repository file (source) is known too, but only to the loader; the
	 * hash of inline content is computed here */
	if (json_is_string(content) && !strstr(json_string_value(content), "${secret:")) {
		uint8_t d[TP_SHA256_LEN];
		char hex[2 * TP_SHA256_LEN + 1];
		tp_sha256(d, json_string_value(content), json_string_length(content));
		tp_hex_encode(hex, d, sizeof(d));
		json_object_set_new(out, "sha256", json_string(hex));
	}
	return out;
}

/* ---------------------------------------------------------------- runtime */

#define MARKER_XATTR "user.tapestry.owner"
#define MAX_FILE_BYTES ((size_t)16 * 1024 * 1024)

static bool is_sensitive(const tp_op *op, const char *path)
{
	return op->sensitive && tp_strlist_contains(op->sensitive, path);
}

/* The content a spec asks for: inline, or a repository file with ${...} interpolated. The
 * repository file must be the one that was planned (its digest is in the spec value).
 * *secret: whether the content takes a secret in. */
static int desired_content(char **out, bool *secret, const tp_op *op)
{
	const char *content = tp_json_get_str(op->spec, "content");
	const char *source = tp_json_get_str(op->spec, "source");
	tp_buf b;
	char *path = NULL;
	const char *digest = "";
	int rc = 0;

	*out = NULL;
	*secret = is_sensitive(op, "content");
	tp_buf_init(&b, MAX_FILE_BYTES);
	if (content) {
		*secret = *secret || strstr(content, "${secret:") != NULL;
		*out = tp_strdup(content);
		goto done;
	}
	if (!source || !op->tree) {
		rc = tp_error_set(TP_EINVALID, "%s: no content to write", op->address);
		goto done;
	}
	path = tp_file_field_path(source, &digest);
	if ((rc = op->tree->read(op->tree, &b, path, MAX_FILE_BYTES)) < 0)
		goto done;
	if (digest[0]) {
		uint8_t d[TP_SHA256_LEN];
		char hex[2 * TP_SHA256_LEN + 1];
		tp_sha256(d, b.ptr ? b.ptr : "", b.len);
		tp_hex_encode(hex, d, sizeof(d));
		if (strncmp(hex, digest, strlen(digest)) != 0) {
			rc = tp_error_set(TP_ECONFLICT,
					  "%s: %s changed since the plan was made; plan again",
					  op->address, path);
			goto done;
		}
	}
	*secret = *secret || strstr(tp_buf_cstr(&b), "${secret:") != NULL;
	rc = op->interpolate ? op->interpolate(op->interpolate_ctx, tp_buf_cstr(&b), out)
			     : (*out = tp_strdup(tp_buf_cstr(&b)), 0);
done:
	free(path);
	tp_buf_free(&b);
	return rc;
}

static int parse_mode(const char *mode)
{
	return mode ? (int)strtol(mode, NULL, 8) : 0644;
}

/* The owner marker of an existing file: 1 ours, 0 none (or no xattr support), -1 another. */
static int marker_state(const char *path, const char *marker)
{
	char buf[512];
	ssize_t n = getxattr(path, MARKER_XATTR, buf, sizeof(buf) - 1);
	if (n < 0)
		return 0;
	buf[n] = '\0';
	return strcmp(buf, marker) == 0 ? 1 : -1;
}

/* Removes "<path>.tapestry-XXXXXX" files a killed writer left next to path. */
static void sweep_temps(const char *path)
{
	char *copy = tp_strdup(path);
	char *slash = strrchr(copy, '/');
	const char *dir = "/", *base = copy;
	DIR *d;
	struct dirent *ent;
	size_t blen;
	if (slash) {
		*slash = '\0';
		dir = slash == copy ? "/" : copy;
		base = slash + 1;
	}
	blen = strlen(base);
	d = opendir(dir);
	while (d && (ent = readdir(d)) != NULL) {
		if (strlen(ent->d_name) == blen + 16 && strncmp(ent->d_name, base, blen) == 0 &&
		    strncmp(ent->d_name + blen, ".tapestry-", 10) == 0) {
			char *victim = tp_sprintf("%s/%s", dir, ent->d_name);
			unlink(victim);
			free(victim);
		}
	}
	if (d)
		closedir(d);
	free(copy);
}

/*
 * Writes atomically. The content goes into an unnamed file (O_TMPFILE) in the target's
 * directory, is synced and marked, and only then gets a name and is renamed over the
 * target: a process killed at any point leaves either the old file or the new one, and at
 * worst (killed between link and rename) a named temporary that the next write or delete of
 * the same path sweeps away.
 */
static int write_file(const tp_op *op, const char *path, const char *content, int mode)
{
	char *tmp = tp_sprintf("%s.tapestry-XXXXXX", path);
	char *dir = tp_strdup(path);
	char *slash = strrchr(dir, '/');
	char procpath[64];
	int fd = -1, rc = 0;
	bool named = false;
	size_t len = strlen(content), off = 0;

	if (slash)
		*(slash == dir ? slash + 1 : slash) = '\0';
	sweep_temps(path);
	fd = open(slash ? dir : ".", O_TMPFILE | O_WRONLY | O_CLOEXEC, 0600);
	if (fd < 0 && errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL) {
		rc = tp_error_set(errno == ENOENT ? TP_ENOTFOUND : TP_EIO, "%s: cannot write %s: %s",
				  op->address, path, strerror(errno));
		goto done;
	}
	if (fd < 0) {
		/* file systems without O_TMPFILE: a named temporary from the start */
		fd = mkstemp(tmp);
		if (fd < 0) {
			rc = tp_error_set(errno == ENOENT ? TP_ENOTFOUND : TP_EIO,
					  "%s: cannot write %s: %s", op->address, path,
					  strerror(errno));
			goto done;
		}
		named = true;
	}
	while (off < len) {
		ssize_t n = write(fd, content + off, len - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = tp_error_set(TP_EIO, "%s: writing %s: %s", op->address, path,
					  strerror(errno));
			goto done;
		}
		off += (size_t)n;
	}
	if (fchmod(fd, (mode_t)mode) < 0 || fsync(fd) < 0) {
		rc = tp_error_set(TP_EIO, "%s: %s: %s", op->address, path, strerror(errno));
		goto done;
	}
	/* best effort: file systems without user xattrs still work, without the marker */
	(void)fsetxattr(fd, MARKER_XATTR, op->marker, strlen(op->marker), 0);
	if (!named) {
		int tfd;
		snprintf(procpath, sizeof(procpath), "/proc/self/fd/%d", fd);
		/* a unique name to link the finished file under */
		tfd = mkstemp(tmp);
		if (tfd >= 0) {
			close(tfd);
			unlink(tmp);
		}
		if (linkat(AT_FDCWD, procpath, AT_FDCWD, tmp, AT_SYMLINK_FOLLOW) < 0) {
			rc = tp_error_set(TP_EIO, "%s: %s: %s", op->address, path, strerror(errno));
			goto done;
		}
		named = true;
	}
	if (close(fd) < 0) {
		fd = -1;
		rc = tp_error_set(TP_EIO, "%s: %s: %s", op->address, path, strerror(errno));
		goto done;
	}
	fd = -1;
	if (rename(tmp, path) < 0) {
		rc = tp_error_set(TP_EIO, "%s: rename to %s: %s", op->address, path,
				  strerror(errno));
		goto done;
	}
	named = false;
done:
	if (fd >= 0)
		close(fd);
	if (named)
		unlink(tmp);
	free(tmp);
	free(dir);
	return rc;
}

static json_t *outputs_for(const tp_op *op, const char *path, const char *content, bool secret)
{
	uint8_t d[TP_SHA256_LEN];
	char hex[2 * TP_SHA256_LEN + 1], val[sizeof(hex) + 5];
	if (secret)
		tp_hmac_sha256(d, op->fingerprint_key ? op->fingerprint_key : (const uint8_t *)"",
			       op->fingerprint_key ? 32 : 0, content, strlen(content));
	else
		tp_sha256(d, content, strlen(content));
	tp_hex_encode(hex, d, sizeof(d));
	snprintf(val, sizeof(val), "%s%s", secret ? "hmac:" : "", hex);
	explicit_bzero(d, sizeof(d));
	return json_pack("{s:s,s:s}", "path", path, "sha256", val);
}

static int file_write_op(const tp_op *op, tp_op_result *out, bool creating)
{
	const char *path = tp_json_get_str(op->spec, "path");
	char *content = NULL;
	bool secret = false;
	int rc;

	if ((rc = desired_content(&content, &secret, op)) < 0)
		goto done;
	if (creating && access(path, F_OK) == 0 && marker_state(path, op->marker) < 0) {
		rc = tp_error_set(TP_EEXISTS,
				  "%s: %s exists and belongs to another owner (xattr %s); "
				  "Tapestry does not take over objects it did not create",
				  op->address, path, MARKER_XATTR);
		goto done;
	}
	if ((rc = write_file(op, path, content,
			     parse_mode(tp_json_get_str(op->spec, "mode")))) < 0)
		goto done;
	out->provider_id = tp_strdup(path);
	out->outputs = outputs_for(op, path, content, secret);
done:
	tp_secret_free(content);
	return rc;
}

/*
 * Fault injection, because local.file is the engine's network-free test target:
 * TAPESTRY_LOCAL_FAULTS="throttle:N,transient:M,latency:L,observe:O" makes the first N write
 * calls of every address fail as throttled (Retry-After 50 ms) and the next M as transient
 * server errors, before they succeed, every write call take L ms, and the first O
 * observations of the process fail as transient errors. Unset (always, in production) it
 * costs one getenv per call.
 */
static pthread_mutex_t fault_mu = PTHREAD_MUTEX_INITIALIZER;
static json_t *fault_counts; /* {address: calls so far} */

static int injected_fault(const tp_op *op)
{
	const char *spec = getenv("TAPESTRY_LOCAL_FAULTS");
	int throttle = 0, transient = 0, latency = 0, n;
	const char *t, *r, *l;
	if (!spec || !*spec)
		return 0;
	/* latency:N makes every write call take N ms, like a remote API would (benchmarks) */
	if ((l = strstr(spec, "latency:")) && (latency = atoi(l + 8)) > 0)
		tp_clock_sleep_ms(latency);
	if ((t = strstr(spec, "throttle:")))
		throttle = atoi(t + 9);
	if ((r = strstr(spec, "transient:")))
		transient = atoi(r + 10);
	pthread_mutex_lock(&fault_mu);
	if (!fault_counts)
		fault_counts = json_object();
	n = (int)json_integer_value(json_object_get(fault_counts, op->address));
	json_object_set_new(fault_counts, op->address, json_integer(n + 1));
	pthread_mutex_unlock(&fault_mu);
	if (n < throttle) {
		int rc = tp_error_set(TP_ETHROTTLED, "%s: injected throttling (429)", op->address);
		tp_error_set_retry_after(50);
		return rc;
	}
	if (n < throttle + transient)
		return tp_error_set(TP_ETRANSIENT, "%s: injected server error (503)", op->address);
	return 0;
}

static int observe_calls; /* under fault_mu */

static int injected_observe_fault(void)
{
	const char *spec = getenv("TAPESTRY_LOCAL_FAULTS");
	const char *o;
	int n;
	if (!spec || !(o = strstr(spec, "observe:")))
		return 0;
	pthread_mutex_lock(&fault_mu);
	n = observe_calls++;
	pthread_mutex_unlock(&fault_mu);
	if (n < atoi(o + 8))
		return tp_error_set(TP_ETRANSIENT, "local.file: injected failure of an observation");
	return 0;
}

static int file_create(void *session, const tp_op *op, tp_op_result *out)
{
	int rc = injected_fault(op);
	(void)session;
	return rc < 0 ? rc : file_write_op(op, out, true);
}

static int file_update(void *session, const tp_op *op, tp_op_result *out)
{
	int rc = injected_fault(op);
	(void)session;
	return rc < 0 ? rc : file_write_op(op, out, false);
}

static const char *recorded_path(const tp_op *op)
{
	const char *p = op->provider_id;
	if (!p)
		p = tp_json_get_str(op->applied, "path");
	return p;
}

static int file_remove(void *session, const tp_op *op)
{
	const char *path = recorded_path(op);
	(void)session;
	if (!path)
		return 0;
	sweep_temps(path);
	if (access(path, F_OK) != 0)
		return 0; /* already gone */
	if (marker_state(path, op->marker) < 0)
		return tp_error_set(TP_ECONFLICT,
				    "%s: %s now belongs to another owner (xattr %s); not deleting it",
				    op->address, path, MARKER_XATTR);
	if (unlink(path) < 0 && errno != ENOENT)
		return tp_error_set(TP_EIO, "%s: deleting %s: %s", op->address, path,
				    strerror(errno));
	return 0;
}

static int file_adopt(void *session, const tp_op *op, tp_op_result *out)
{
	const char *path = tp_json_get_str(op->spec ? op->spec : op->applied, "path");
	tp_buf b;
	int rc;
	(void)session;
	if (!path || access(path, F_OK) != 0 || marker_state(path, op->marker) != 1)
		return tp_error_set(TP_ENOTFOUND, "%s: nothing to adopt", op->address);
	tp_buf_init(&b, MAX_FILE_BYTES);
	rc = tp_file_read(&b, path, MAX_FILE_BYTES);
	if (rc == 0) {
		/* whether the content takes a secret in: from the spec when there is one (when
		 * it cannot be told, the digest is keyed) */
		char *want = NULL;
		bool secret = true;
		if (!op->spec || desired_content(&want, &secret, op) < 0)
			secret = true;
		tp_secret_free(want);
		out->provider_id = tp_strdup(path);
		out->outputs = outputs_for(op, path, tp_buf_cstr(&b), secret);
	}
	tp_buf_free(&b);
	return rc;
}

static int file_observe(void *session, const tp_op *ops, size_t n, json_t **out)
{
	int rc = injected_observe_fault();
	(void)session;
	for (size_t i = 0; i < n; i++)
		out[i] = NULL;
	if (rc < 0)
		return rc;
	for (size_t i = 0; i < n; i++) {
		const tp_op *op = &ops[i];
		const char *path = recorded_path(op);
		struct stat st;
		tp_buf b;
		json_t *o;
		char mode[8];
		out[i] = NULL;
		if (!path || lstat(path, &st) != 0)
			continue; /* gone */
		if (!S_ISREG(st.st_mode)) {
			/* something else took its place: report it as different content */
			out[i] = json_pack("{s:s,s:s}", "path", path, "content",
					   "(not a regular file)");
			continue;
		}
		tp_buf_init(&b, MAX_FILE_BYTES);
		snprintf(mode, sizeof(mode), "%04o", (unsigned)(st.st_mode & 07777));
		o = json_pack("{s:s,s:s}", "path", path, "mode", mode);
		if (tp_file_read(&b, path, MAX_FILE_BYTES) == 0 && json_object_get(op->applied,
										   "content")) {
			size_t bad;
			if (is_sensitive(op, "content") || !tp_utf8_valid(b.ptr ? b.ptr : "", b.len,
									  &bad))
				json_object_set_new(o, "content",
						    tp_op_fingerprint(op, tp_buf_cstr(&b), b.len));
			else
				json_object_set_new(o, "content", json_string(tp_buf_cstr(&b)));
		}
		/* a file rendered from `source` is compared through its outputs' hash */
		tp_buf_free(&b);
		out[i] = o;
	}
	return 0;
}

static const tp_kind kind_file = {
	.name = "local.file",
	.phase = TP_PHASE_HOST,
	.doc = "a file on the controller host",
	.fields = file_fields,
	.outputs = file_outputs,
	.check = file_check,
	.normalise = file_normalise,
	.predict_outputs = file_predict,
	.observe = file_observe,
	.create = file_create,
	.update = file_update,
	.remove = file_remove,
	.adopt = file_adopt,
};

#define LOCAL_MAX_CONCURRENCY 8

static const tp_field config_fields[] = {
	TP_FIELD_MAX_CONCURRENCY(LOCAL_MAX_CONCURRENCY),
	{0},
};

static const tp_kind *const kinds[] = {&kind_file, NULL};

const tp_provider tp_provider_local = {
	.name = "local",
	.config = config_fields,
	.needs_config = false,
	.kinds = kinds,
	.max_concurrency = LOCAL_MAX_CONCURRENCY,
};
