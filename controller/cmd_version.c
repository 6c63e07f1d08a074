/*
 * `tapestry version`: the version and the library versions it was built with.
 */
#include "controller.h"

#include <stdio.h>

#include <curl/curl.h>
#include <git2.h>
#include <openssl/opensslv.h>
#include <sqlite3.h>
#include <yaml.h>

int tp_cmd_version(int argc, char **argv)
{
	int major = 0, minor = 0, rev = 0;
	(void)argc;
	(void)argv;
	git_libgit2_version(&major, &minor, &rev);
	printf("tapestry %s\n", TAPESTRY_VERSION);
	printf("  libgit2 %d.%d.%d, %s, jansson %s, libyaml %s, %s, sqlite %s\n", major, minor,
	       rev, curl_version(), JANSSON_VERSION, yaml_get_version_string(),
	       OPENSSL_VERSION_TEXT, sqlite3_libversion());
	return 0;
}
