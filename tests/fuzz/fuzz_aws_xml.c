/*
 * libFuzzer target for the aws provider's XML layer without the network (fuzz_aws covers the
 * same code behind the HTTP client, at a fraction of the speed): arbitrary bytes as a Query
 * protocol reply go through the expat DOM (reconcilers/aws/xml.c: DOCTYPE and entities
 * refused, depth and node count bounded), every CloudFormation reply parser the provider
 * uses (DescribeStacks, DescribeStackEvents, DescribeChangeSet, ListStackResources), and the
 * error parser for a failed call (XML, JSON 1.1 or anything else such as a proxy's page),
 * whose fields must stay terminated, printable and within their bounds.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "reconcilers/aws/aws_int.h"

static void check_field(const char *f, size_t cap)
{
	size_t n = strnlen(f, cap);
	if (n >= cap)
		abort(); /* unterminated */
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)f[i] < 0x20)
			abort(); /* error fields are single printable lines */
}

static void parse_error(const uint8_t *data, size_t size, long status, const char *errortype)
{
	tp_http_reply r;
	tp_aws_error e;
	memset(&r, 0, sizeof(r));
	tp_buf_init(&r.body, (size_t)16 << 20);
	tp_buf_put(&r.body, data, size);
	r.status = status;
	r.headers = json_object();
	r.retry_after_ms = -1;
	if (errortype)
		json_object_set_new(r.headers, "x-amzn-errortype", json_string(errortype));
	json_object_set_new(r.headers, "content-type", json_string("text/xml"));
	tp_aws_error_parse(&e, &r);
	check_field(e.code, sizeof(e.code));
	check_field(e.message, sizeof(e.message));
	check_field(e.request_id, sizeof(e.request_id));
	if (e.status != status)
		abort();
	(void)tp_aws_error_class(&e);
	tp_http_reply_clear(&r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	tp_aws_xml *doc = NULL;
	tp_aws_stack *stacks = NULL;
	tp_aws_event *events = NULL;
	size_t nstacks = 0, nevents = 0;
	char *next = NULL, *status = NULL, *reason = NULL;
	json_t *changes = NULL, *resources = NULL;

	tp_log_set_level(TP_LOG_ERROR);
	parse_error(data, size, 400, NULL);
	parse_error(data, size, 503, "ThrottlingException:http://internal.amazon.com/");
	if (tp_aws_xml_parse(&doc, (const char *)data, size) < 0) {
		tp_error_clear();
		return 0;
	}
	if (tp_aws_stacks_parse(&stacks, &nstacks, &next, doc) == 0) {
		for (size_t i = 0; i < nstacks; i++) {
			if (!stacks[i].id || !stacks[i].name || !stacks[i].status)
				abort(); /* documented as always set */
			(void)tp_aws_stack_status_class(stacks[i].status);
			tp_aws_stack_clear(&stacks[i]);
		}
	}
	free(stacks);
	free(next);
	next = NULL;
	if (tp_aws_events_parse(&events, &nevents, &next, doc) == 0 || events) {
		for (size_t i = 0; i < nevents; i++)
			tp_aws_event_clear(&events[i]);
	}
	free(events);
	free(next);
	next = NULL;
	tp_aws_change_set_parse(&changes, &status, &reason, doc);
	json_decref(changes);
	free(status);
	free(reason);
	tp_aws_resources_parse(&resources, &next, doc);
	json_decref(resources);
	free(next);
	(void)tp_aws_xml_text(doc, "AssumeRoleResult/Credentials/SessionToken");
	(void)tp_aws_xml_find(doc, "RequestId");
	tp_aws_xml_free(doc);
	tp_error_clear();
	return 0;
}
