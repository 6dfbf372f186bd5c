/* Config schema checks: every error names file, line and key. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "config.h"

static const struct conf_key schema[] = {
	{ "node", CONF_STRING, 1, 0, 32, NULL },
	{ "size", CONF_INT, 0, 10, 100, "50" },
	{ "flag", CONF_BOOL, 0, 0, 0, "true" },
	{ "smtp", CONF_GROUP, 0, 0, 0, NULL },
	{ "smtp.listen", CONF_STRLIST, 0, 0, 0, NULL },
	{ "smtp.port", CONF_INT, 1, 1, 65535, NULL },
	{ "pol", CONF_GROUPLIST, 0, 0, 0, NULL },
	{ "pol.[].name", CONF_STRING, 1, 0, 64, NULL },
	{ "pol.[].level", CONF_STRING, 0, 0, 64, "may" },
	{ NULL, 0, 0, 0, 0, NULL },
};

static char *
write_conf(const char *text)
{
	char *path = strdup("/tmp/test_config_XXXXXX");
	int fd = mkstemp(path);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	return path;
}

struct err_case {
	const char *text;
	const char *expect;	/* substring of the error: file is checked too */
};

static void
test_errors(void **state)
{
	static const struct err_case cases[] = {
		{ "node = \"x\";\nsmtp = { port = 25; };\nbogus = 1;\n",
		    ":3: bogus: unknown key" },
		{ "node = \"x\";\nsmtp = { port = 25;\n  colour = 1; };\n",
		    ":3: smtp.colour: unknown key" },
		{ "node = \"x\";\nsize = \"big\";\nsmtp = { port = 25; };\n",
		    ":2: size: must be an integer" },
		{ "node = \"x\";\nsize = 5;\nsmtp = { port = 25; };\n",
		    ":2: size: 5 is out of range [10, 100]" },
		{ "node = \"x\";\nsmtp = { port = 70000; };\n",
		    ":2: smtp.port: 70000 is out of range" },
		{ "node = \"x\";\nsmtp = {\n listen = \"a\"; port = 1; };\n",
		    ":3: smtp.listen: must be an array" },
		{ "smtp = { port = 1; };\n", "node: required key is missing" },
		{ "node = \"x\";\nsmtp = { };\n", "smtp.port: required key" },
		{ "node = \"x\";\nflag = 1;\n", ":2: flag: must be a boolean" },
		{ "node = \"x\";\npol = ( { level = \"x\"; } );\n",
		    "pol.[].name: required key is missing" },
		{ "node = \"x\";\npol = ( { name = \"a\";\n  what = 1; } );\n",
		    ":3: pol.[].what: unknown key" },
		{ "node = \"x\";\nsize = = 3;\n", ":2: syntax error" },
	};
	(void)state;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct conf c;
		char *err = NULL, *path = write_conf(cases[i].text);

		assert_int_equal(conf_load(&c, path, schema, &err), -1);
		assert_non_null(err);
		if (strstr(err, cases[i].expect) == NULL ||
		    strncmp(err, path, strlen(path)) != 0)
			fail_msg("case %zu: got \"%s\", want \"%s\"", i, err,
			    cases[i].expect);
		free(err);
		unlink(path);
		free(path);
	}
}

static void
test_values_and_defaults(void **state)
{
	struct conf c;
	char *err = NULL, *path;
	const char **l;
	config_setting_t *pol;
	(void)state;

	path = write_conf("node = \"gw\";\nsize = 99;\n"
	    "smtp = { listen = [\"127.0.0.1:25\", \"[::1]:25\"]; port = 25; };\n"
	    "pol = ( { name = \"a\"; }, { name = \"b\"; level = \"encrypt\"; } );\n");
	assert_int_equal(conf_load(&c, path, schema, &err), 0);
	assert_string_equal(conf_str(&c, "node"), "gw");
	assert_int_equal(conf_int(&c, "size"), 99);
	assert_int_equal(conf_bool(&c, "flag"), 1);	/* default */
	assert_int_equal(conf_strlist(&c, "smtp.listen", &l), 2);
	assert_string_equal(l[1], "[::1]:25");
	free(l);
	pol = conf_setting(&c, "pol");
	assert_non_null(pol);
	assert_string_equal(conf_elem_str(&c, config_setting_get_elem(pol, 0),
	    "pol", "level"), "may");
	assert_string_equal(conf_elem_str(&c, config_setting_get_elem(pol, 1),
	    "pol", "level"), "encrypt");
	conf_free(&c);
	unlink(path);
	free(path);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_values_and_defaults),
	};

	return cmocka_run_group_tests_name("config", tests, NULL, NULL);
}
