/*
 * The registry of providers and kinds: the one table the engine consults to turn a document's
 * `kind:` into a schema and, later, into API calls. Adding a provider is one line here.
 */
#include "reconciler.h"

#include <string.h>

static const tp_provider *const providers[] = {
	&tp_provider_aws,
	&tp_provider_snowflake,
	&tp_provider_airbyte,
	&tp_provider_grouparoo,
	&tp_provider_local,
	NULL,
};

const tp_provider *const *tp_registry_providers(void)
{
	return providers;
}

const tp_provider *tp_registry_provider(const char *name)
{
	for (size_t i = 0; providers[i]; i++)
		if (strcmp(providers[i]->name, name) == 0)
			return providers[i];
	return NULL;
}

const tp_kind *tp_registry_kind(const char *name)
{
	for (size_t i = 0; providers[i]; i++)
		for (size_t k = 0; providers[i]->kinds[k]; k++)
			if (strcmp(providers[i]->kinds[k]->name, name) == 0)
				return providers[i]->kinds[k];
	return NULL;
}

const tp_provider *tp_registry_provider_of(const tp_kind *kind)
{
	for (size_t i = 0; providers[i]; i++)
		for (size_t k = 0; providers[i]->kinds[k]; k++)
			if (providers[i]->kinds[k] == kind)
				return providers[i];
	return NULL;
}

const char *tp_phase_name(tp_phase p)
{
	switch (p) {
	case TP_PHASE_INFRASTRUCTURE: return "infrastructure";
	case TP_PHASE_INGESTION: return "ingestion";
	case TP_PHASE_WAREHOUSE: return "warehouse";
	case TP_PHASE_TRANSFORMATION: return "transformation";
	case TP_PHASE_SYNCING: return "syncing";
	case TP_PHASE_HOST: return "host";
	}
	return "unknown";
}
