/*
 * The dashboard's assets as served by tp_dashboard_serve(), without a browser: each path
 * answers with its content type, anything else is left to the caller, and the page keeps its
 * promises that need no browser to check (nothing loaded from outside the controller, no
 * markup built from strings, every script and style in its own file for the CSP).
 */
#include <criterion/criterion.h>
#include <string.h>

#include "controller/controller.h"

static tp_http_response serve(const char *path, bool *served)
{
	tp_http_response r = {0};
	tp_buf_init(&r.body, 16 * 1024 * 1024);
	*served = tp_dashboard_serve(path, &r);
	return r;
}

static void expect_asset(const char *path, const char *type, const char *needle)
{
	bool served;
	tp_http_response r = serve(path, &served);
	cr_assert(served, "%s is not served", path);
	cr_assert_eq(r.status, 200, "%s: status %d", path, r.status);
	cr_assert_str_eq(r.content_type, type, "%s", path);
	cr_assert(r.body.len > 100, "%s: %zu bytes", path, r.body.len);
	cr_assert(strstr(tp_buf_cstr(&r.body), needle), "%s has no %s", path, needle);
	cr_assert(tp_dashboard_is_asset(path), "%s", path);
	tp_buf_free(&r.body);
}

Test(dashboard_assets, each_asset_with_its_content_type)
{
	expect_asset("/", "text/html; charset=utf-8", "<script src='/dashboard.js' defer>");
	expect_asset("/index.html", "text/html; charset=utf-8", "/dashboard.css");
	expect_asset("/dashboard.js", "text/javascript; charset=utf-8", "function buildModel");
	expect_asset("/dashboard.css", "text/css; charset=utf-8", "--in-sync");
	expect_asset("/favicon.svg", "image/svg+xml", "<svg");
}

Test(dashboard_assets, other_paths_are_left_alone)
{
	const char *paths[] = {"/api/status", "/metrics", "/healthz", "/index.htm", "/dashboard",
			       "//", "/../dashboard.js", "", NULL};
	for (size_t i = 0; paths[i]; i++) {
		bool served;
		tp_http_response r = serve(paths[i], &served);
		cr_assert_not(served, "%s served", paths[i]);
		cr_assert_eq(r.status, 0);
		cr_assert_eq(r.body.len, 0);
		cr_assert_not(tp_dashboard_is_asset(paths[i]), "%s", paths[i]);
		tp_buf_free(&r.body);
	}
	cr_assert_not(tp_dashboard_is_asset(NULL));
}

/* No request leaves the controller (no CDN, font or analytics URL; the only absolute URL is
 * the SVG namespace, which is a name, not a request), no markup is built from strings, and
 * nothing inline that the Content-Security-Policy would block. */
Test(dashboard_assets, offline_and_safe_by_construction)
{
	const char *paths[] = {"/", "/dashboard.js", "/dashboard.css", "/favicon.svg", NULL};
	for (size_t i = 0; paths[i]; i++) {
		bool served;
		tp_http_response r = serve(paths[i], &served);
		const char *body = tp_buf_cstr(&r.body);
		for (const char *p = strstr(body, "http"); p; p = strstr(p + 1, "http")) {
			bool ns = strncmp(p, "http://www.w3.org/2000/svg", 26) == 0;
			cr_assert(ns || (strncmp(p, "http://", 7) != 0 && strncmp(p, "https://", 8) != 0),
				  "%s refers to %.60s", paths[i], p);
		}
		cr_assert_null(strstr(body, "innerHTML"), "%s", paths[i]);
		cr_assert_null(strstr(body, "outerHTML"), "%s", paths[i]);
		cr_assert_null(strstr(body, "insertAdjacentHTML"), "%s", paths[i]);
		cr_assert_null(strstr(body, "document.write"), "%s", paths[i]);
		cr_assert_null(strstr(body, "eval("), "%s", paths[i]);
		cr_assert_null(strstr(body, "@import"), "%s", paths[i]);
		cr_assert_null(strstr(body, " style='"), "%s: inline style", paths[i]);
		cr_assert_null(strstr(body, " onclick='"), "%s: inline handler", paths[i]);
		tp_buf_free(&r.body);
	}
	{
		bool served;
		tp_http_response r = serve("/", &served);
		/* one script, by URL: no inline script for the CSP to refuse */
		const char *s = strstr(tp_buf_cstr(&r.body), "<script");
		cr_assert(s && strncmp(s, "<script src=", 12) == 0);
		cr_assert_null(strstr(s + 1, "<script"));
		tp_buf_free(&r.body);
	}
}
