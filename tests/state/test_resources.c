/* state/resources.c: the last-applied rows the diff reads — every field round trips, NULL
 * and JSON null stay apart, lists are sorted, timestamps come from the clock. */
#include "state_test.h"

static json_t *parse(const char *text)
{
	json_t *v = NULL;
	cr_assert_eq(tp_json_parse(&v, text, strlen(text)), 0, "%s", tp_error_last());
	return v;
}

static void assert_json_eq(const json_t *got, const json_t *want, const char *what)
{
	if (!want) {
		cr_assert_null(got, "%s should be NULL", what);
		return;
	}
	cr_assert_not_null(got, "%s missing", what);
	cr_assert(json_equal(got, want), "%s differs", what);
}

static tp_state_resource full_resource(void)
{
	tp_state_resource r;
	memset(&r, 0, sizeof(r));
	r.address = tp_strdup("airbyte.connection/sf-to-snow");
	r.kind = tp_strdup("airbyte.connection");
	r.name = tp_strdup("sf-to-snow");
	r.provider_id = tp_strdup("b6f3-11ee");
	r.applied = parse("{\"streams\":[{\"name\":\"Contact\"}],\"schedule\":{\"type\":\"cron\"},"
			  "\"ratio\":0.25,\"big\":9007199254740993,\"flag\":true,\"none\":null,"
			  "\"secret\":\"${secret:ssm:/x}\",\"text\":\"caf\\u00e9 \\\"q\\\"\"}");
	r.secret_hashes = parse("{\"spec.password\":\"ab12\"}");
	r.outputs = parse("{\"id\":\"b6f3-11ee\"}");
	r.observed = parse("{\"streams\":[]}");
	r.lifecycle = parse("{\"prevent_destroy\":true,\"deletion\":\"retain\","
			    "\"ignore_changes\":[\"schedule\"]}");
	r.deps = parse("[\"airbyte.source/sf\",\"airbyte.destination/snow\"]");
	r.spec_hash = tp_strdup("0123abcd");
	r.status = tp_strdup("drifted");
	r.revision = tp_strdup("c0ffee");
	r.observed_ms = 1234567;
	return r;
}

static tp_state_resource minimal(const char *kind, const char *name)
{
	tp_state_resource r;
	memset(&r, 0, sizeof(r));
	r.address = tp_sprintf("%s/%s", kind, name);
	r.kind = tp_strdup(kind);
	r.name = tp_strdup(name);
	r.status = tp_strdup("ready");
	return r;
}

static void assert_same_resource(const tp_state_resource *got, const tp_state_resource *want)
{
	cr_assert_str_eq(got->address, want->address);
	cr_assert_str_eq(got->kind, want->kind);
	cr_assert_str_eq(got->name, want->name);
	if (want->provider_id)
		cr_assert_str_eq(got->provider_id, want->provider_id);
	else
		cr_assert_null(got->provider_id);
	assert_json_eq(got->applied, want->applied, "applied");
	assert_json_eq(got->secret_hashes, want->secret_hashes, "secret_hashes");
	assert_json_eq(got->outputs, want->outputs, "outputs");
	assert_json_eq(got->observed, want->observed, "observed");
	assert_json_eq(got->lifecycle, want->lifecycle, "lifecycle");
	assert_json_eq(got->deps, want->deps, "deps");
	if (want->spec_hash)
		cr_assert_str_eq(got->spec_hash, want->spec_hash);
	else
		cr_assert_null(got->spec_hash);
	cr_assert_str_eq(got->status, want->status);
	if (want->revision)
		cr_assert_str_eq(got->revision, want->revision);
	else
		cr_assert_null(got->revision);
	cr_assert_eq(got->observed_ms, want->observed_ms);
}

Test(resources, every_field_round_trips)
{
	char *dir = NULL, *path = st_db_path(&dir);
	tp_clock_ops ops;
	st_fake_clock clk;
	tp_state_resource r = full_resource(), got;
	tp_state *s;

	st_fake_clock_install(&ops, &clk, 1700000000000LL);
	s = st_open_rw(path);
	cr_assert_eq(tp_state_resource_put(s, &r), 0, "%s", tp_error_last());
	cr_assert_eq(tp_state_resource_get(&got, s, r.address), 0, "%s", tp_error_last());
	assert_same_resource(&got, &r);
	cr_assert_eq(got.created_ms, 1700000000000LL);
	cr_assert_eq(got.updated_ms, 1700000000000LL);
	/* a JSON null inside a document survives, and integers beyond 2^53 are exact */
	cr_assert(json_is_null(json_object_get(got.applied, "none")));
	cr_assert_eq(json_integer_value(json_object_get(got.applied, "big")), 9007199254740993LL);
	tp_state_resource_clear(&got);
	tp_state_close(s);

	/* and survives a reopen (stored as canonical text, not in memory) */
	s = st_open_rw(path);
	cr_assert_eq(tp_state_resource_get(&got, s, r.address), 0, "%s", tp_error_last());
	assert_same_resource(&got, &r);
	tp_state_resource_clear(&got);
	tp_state_close(s);
	cr_assert_eq(st_sql_int(path, "SELECT count(*) FROM resources WHERE deps = "
				      "'[\"airbyte.source/sf\",\"airbyte.destination/snow\"]'"),
		     1);
	tp_clock_set(NULL);
	tp_state_resource_clear(&r);
	free(path);
	ts_rmtree(dir);
	free(dir);
}

Test(resources, null_members_and_json_null_stay_apart)
{
	char *dir = NULL, *path = st_db_path(&dir);
	tp_state *s = st_open_rw(path);
	tp_state_resource r = minimal("local.file", "env"), got;

	cr_assert_eq(tp_state_resource_put(s, &r), 0, "%s", tp_error_last());
	cr_assert_eq(tp_state_resource_get(&got, s, "local.file/env"), 0, "%s", tp_error_last());
	assert_same_resource(&got, &r);
	cr_assert_eq(got.observed_ms, 0);
	tp_state_resource_clear(&got);
	cr_assert_eq(st_sql_int(path,
				"SELECT count(*) FROM resources WHERE applied IS NULL AND "
				"secret_hashes IS NULL AND outputs IS NULL AND observed IS NULL "
				"AND lifecycle IS NULL AND deps IS NULL"),
		     1);

	r.observed = json_null();
	cr_assert_eq(tp_state_resource_put(s, &r), 0, "%s", tp_error_last());
	cr_assert_eq(tp_state_resource_get(&got, s, "local.file/env"), 0, "%s", tp_error_last());
	cr_assert(json_is_null(got.observed), "a JSON null reads back as JSON null");
	cr_assert_null(got.applied);
	tp_state_resource_clear(&got);

	tp_state_resource_clear(&r);
	tp_state_close(s);
	free(path);
	ts_rmtree(dir);
	free(dir);
}

Test(resources, put_replaces_and_keeps_created)
{
	char *dir = NULL, *path = st_db_path(&dir);
	tp_clock_ops ops;
	st_fake_clock clk;
	tp_state_resource r = minimal("snowflake.role", "LOADER"), got;
	tp_state *s;

	st_fake_clock_install(&ops, &clk, 1000);
	s = st_open_rw(path);
	r.created_ms = 5; /* ignored: the store stamps times */
	cr_assert_eq(tp_state_resource_put(s, &r), 0, "%s", tp_error_last());
	clk.now = 9000;
	free(r.status);
	r.status = tp_strdup("failed");
	r.provider_id = tp_strdup("LOADER");
	cr_assert_eq(tp_state_resource_put(s, &r), 0, "%s", tp_error_last());
	cr_assert_eq(tp_state_resource_get(&got, s, r.address), 0, "%s", tp_error_last());
	cr_assert_eq(got.created_ms, 1000);
	cr_assert_eq(got.updated_ms, 9000);
	cr_assert_str_eq(got.status, "failed");
	cr_assert_str_eq(got.provider_id, "LOADER");
	tp_state_resource_clear(&got);
	cr_assert_eq(st_sql_int(path, "SELECT count(*) FROM resources"), 1);
	tp_clock_set(NULL);
	tp_state_resource_clear(&r);
	tp_state_close(s);
	free(path);
	ts_rmtree(dir);
	free(dir);
}

Test(resources, list_is_sorted_by_address)
{
	char *dir = NULL, *path = st_db_path(&dir);
	tp_state *s = st_open_rw(path);
	const char *names[][2] = {{"snowflake.schema", "RAW"},  {"aws.stack", "net"},
				  {"airbyte.source", "zoom"},   {"aws.stack", "host"},
				  {"snowflake.role", "LOADER"}, {"airbyte.source", "sf"}};
	const char *want[] = {"airbyte.source/sf", "airbyte.source/zoom",   "aws.stack/host",
			      "aws.stack/net",     "snowflake.role/LOADER", "snowflake.schema/RAW"};
	tp_state_resources l = {0};

	cr_assert_eq(tp_state_resources_list(&l, s), 0);
	cr_assert_eq(l.len, 0);
	cr_assert_null(l.items);
	for (size_t i = 0; i < 6; i++) {
		tp_state_resource r = minimal(names[i][0], names[i][1]);
		cr_assert_eq(tp_state_resource_put(s, &r), 0, "%s", tp_error_last());
		tp_state_resource_clear(&r);
	}
	cr_assert_eq(tp_state_resources_list(&l, s), 0, "%s", tp_error_last());
	cr_assert_eq(l.len, 6);
	for (size_t i = 0; i < 6; i++)
		cr_assert_str_eq(l.items[i].address, want[i]);
	tp_state_resources_free(&l);
	tp_state_resources_free(NULL);
	tp_state_resource_clear(NULL);
	tp_state_close(s);
	free(path);
	ts_rmtree(dir);
	free(dir);
}

Test(resources, delete_and_not_found)
{
	char *dir = NULL, *path = st_db_path(&dir);
	tp_state *s = st_open_rw(path);
	tp_state_resource r = minimal("local.file", "gone"), got;

	cr_assert_eq(tp_state_resource_get(&got, s, "local.file/gone"), TP_ENOTFOUND);
	st_assert_msg("local.file/gone");
	cr_assert_null(got.address);
	cr_assert_eq(tp_state_resource_put(s, &r), 0);
	cr_assert_eq(tp_state_resource_delete(s, "local.file/gone"), 0, "%s", tp_error_last());
	cr_assert_eq(tp_state_resource_get(&got, s, "local.file/gone"), TP_ENOTFOUND);
	cr_assert_eq(tp_state_resource_delete(s, "local.file/gone"), TP_ENOTFOUND);
	st_assert_msg("no resource local.file/gone");
	tp_state_resource_clear(&r);
	tp_state_close(s);
	free(path);
	ts_rmtree(dir);
	free(dir);
}

Test(resources, put_validates_the_row)
{
	char *dir = NULL, *path = st_db_path(&dir);
	tp_state *s = st_open_rw(path);
	tp_state_resource r = minimal("local.file", "a");

	free(r.address);
	r.address = tp_strdup("local.file/b");
	cr_assert_eq(tp_state_resource_put(s, &r), TP_EINVALID);
	st_assert_msg("is not kind/name");
	free(r.address);
	r.address = tp_strdup("local.file/a");
	free(r.status);
	r.status = NULL;
	cr_assert_eq(tp_state_resource_put(s, &r), TP_EINVALID);
	st_assert_msg("has no status");
	free(r.kind);
	r.kind = NULL;
	cr_assert_eq(tp_state_resource_put(s, &r), TP_EINVALID);
	cr_assert_eq(st_sql_int(path, "SELECT count(*) FROM resources"), 0);
	tp_state_resource_clear(&r);
	tp_state_close(s);
	free(path);
	ts_rmtree(dir);
	free(dir);
}

Test(resources, a_damaged_json_column_is_reported)
{
	char *dir = NULL, *path = st_db_path(&dir);
	tp_state *s = st_open_rw(path);
	tp_state_resource r = minimal("local.file", "a"), got;
	tp_state_resources l = {0};
	sqlite3 *db = NULL;

	cr_assert_eq(tp_state_resource_put(s, &r), 0);
	cr_assert_eq(sqlite3_open(path, &db), SQLITE_OK);
	cr_assert_eq(sqlite3_exec(db, "UPDATE resources SET outputs = '{broken'", NULL, NULL, NULL),
		     SQLITE_OK);
	sqlite3_close(db);
	cr_assert_eq(tp_state_resource_get(&got, s, "local.file/a"), TP_EINVALID);
	st_assert_msg("column outputs does not hold valid JSON");
	cr_assert_null(got.address);
	cr_assert_eq(tp_state_resources_list(&l, s), TP_EINVALID);
	cr_assert_eq(l.len, 0);
	tp_state_resource_clear(&r);
	tp_state_close(s);
	free(path);
	ts_rmtree(dir);
	free(dir);
}
