/*
 * fake_airbyte: the built-in connector table. Stands in for Airbyte's connector registry and
 * connector specs: the sourceType/destinationType → definition id mapping the server applies
 * when a create names no definitionId, the configuration keys each spec requires, the fields
 * it marks airbyte_secret (masked as "**********" on every read; the others come back in
 * clear, as with a real connector that forgot to mark one), and the streams a source
 * discovers.
 */
#include "fake.h"

#include <string.h>
#include <strings.h>

static const char *const zoom_required[] = {"account_id", "client_id", "client_secret",
					    "authorization_endpoint", NULL};
/* account_id is not marked secret by the connector: it comes back in clear */
static const char *const zoom_secrets[] = {"client_id", "client_secret", NULL};
static const fk_stream zoom_streams[] = {
	{"users", NULL, false, NULL, false, "id", "id,email,first_name,last_name,type,created_at"},
	{"meetings", NULL, false, NULL, false, "id", "id,topic,start_time,duration,host_id"},
	{"webinars", NULL, false, NULL, false, "id", "id,topic,start_time,duration,host_id"},
	{"webinar_registrants", NULL, false, NULL, false, NULL,
	 "id,email,first_name,last_name,create_time,status"},
	{0},
};

static const char *const salesforce_required[] = {"client_id", "client_secret", "refresh_token",
						  NULL};
static const char *const salesforce_secrets[] = {"client_id", "client_secret", "refresh_token",
						 NULL};
static const fk_stream salesforce_streams[] = {
	{"Contact", NULL, true, "SystemModstamp", false, "Id",
	 "Id,Email,FirstName,LastName,IsDeleted,SystemModstamp,AccountId,CreatedDate"},
	{"Account", NULL, true, "SystemModstamp", false, "Id",
	 "Id,Name,Industry,IsDeleted,SystemModstamp"},
	{"Opportunity", NULL, true, "SystemModstamp", false, "Id",
	 "Id,Name,Amount,StageName,AccountId,SystemModstamp"},
	{0},
};

static const char *const postgres_required[] = {"host", "port", "database", "username", NULL};
static const char *const postgres_secrets[] = {"password", "tunnel_method.tunnel_user_password",
					       "tunnel_method.ssh_key", NULL};
static const fk_stream postgres_streams[] = {
	{"accounts", "public", true, "updated_at", false, "id", "id,name,email,updated_at"},
	{"orders", "public", true, "updated_at", false, "id", "id,account_id,total,updated_at"},
	{"accounts", "audit", true, "changed_at", false, "id", "id,name,changed_at"},
	{0},
};

static const char *const none[] = {NULL};
static const fk_stream faker_streams[] = {
	{"users", NULL, true, "updated_at", true, "id", "id,name,email,updated_at"},
	{"products", NULL, true, "updated_at", true, "id", "id,make,model,price,updated_at"},
	{"purchases", NULL, true, "updated_at", true, "id",
	 "id,user_id,product_id,added_to_cart_at,updated_at"},
	{0},
};

static const char *const snowflake_required[] = {"host",     "role",     "warehouse",
						 "database", "username", NULL};
static const char *const snowflake_secrets[] = {"password",
						"credentials.password",
						"credentials.private_key",
						"credentials.private_key_password",
						"loading_method.access_key_id",
						"loading_method.secret_access_key",
						NULL};

static const char *const pg_dest_required[] = {"host",   "port",     "database",
					       "schema", "username", NULL};
static const char *const pg_dest_secrets[] = {"password", NULL};

static const fk_connector connectors[] = {
	{"zoom", true, "cbfd9856-1322-44fb-bcf1-0b39b7a8e92e", zoom_required, zoom_secrets,
	 zoom_streams},
	{"salesforce", true, "b117307c-14b6-41aa-9422-947e34922962", salesforce_required,
	 salesforce_secrets, salesforce_streams},
	{"postgres", true, "decd338e-5647-4c0b-adf4-da0e75f5a750", postgres_required,
	 postgres_secrets, postgres_streams},
	{"faker", true, "dfd88b22-b603-4c3d-aad7-3701784586b1", none, none, faker_streams},
	{"snowflake", false, "424892c4-daac-4491-b35d-c6688ba547ba", snowflake_required,
	 snowflake_secrets, NULL},
	{"postgres", false, "25c5221d-dce2-4163-ade9-739ef790f503", pg_dest_required,
	 pg_dest_secrets, NULL},
	{"dev-null", false, "a7bcc9d8-13b3-4e49-b80d-d020b90045e3", none, none, NULL},
	{0},
};

const fk_connector *fk_connector_by_type(const char *type, bool source)
{
	for (const fk_connector *c = connectors; type && c->type; c++)
		if (c->source == source && strcmp(c->type, type) == 0)
			return c;
	return NULL;
}

const fk_connector *fk_connector_by_definition(const char *definition_id, bool source)
{
	for (const fk_connector *c = connectors; definition_id && c->type; c++)
		if (c->source == source && strcasecmp(c->definition_id, definition_id) == 0)
			return c;
	return NULL;
}
