/* The transport map: Postfix syntax, lookup order, errors with line numbers. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "../../internal-gw/transport.h"

static char *
write_map(const char *text)
{
	char *path = strdup("/tmp/test_transport.XXXXXX");
	int fd;

	assert_non_null(path);
	assert_true((fd = mkstemp(path)) != -1);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	return path;
}

static struct transport_map *
load(const char *text, char **err)
{
	char *path = write_map(text);
	struct transport_map *m = transport_load(path, err);

	unlink(path);
	free(path);
	return m;
}

static const char good_map[] =
    "# routes\n"
    "\n"
    "example.com\tsmtp:[mail.example.com]:2525\n"
    "   # indented comment\n"
    ".example.com   smtp:[10.0.0.5]\n"
    ".sub.example.com smtp:sub-relay.example.com:26  # trailing comment\n"
    "relay-to-webmail.private smtp:[192.0.2.10]:10025\r\n"
    "v6.example  relay:[::1]:25\n"
    "v6b.example smtp:[ipv6:2001:db8::1]\n"
    "UPPER.Example smtp:[Mail.Upper.Example]\n"
    "*  smtp:[127.0.0.1]:10026\n";

struct lookup_case {
	const char *domain;
	const char *host;
	int port;
	const char *nexthop;
};

static const struct lookup_case lookups[] = {
	/* exact */
	{ "example.com", "mail.example.com", 2525, "[mail.example.com]:2525" },
	{ "EXAMPLE.COM", "mail.example.com", 2525, "[mail.example.com]:2525" },
	{ "example.com.", "mail.example.com", 2525, "[mail.example.com]:2525" },
	{ "relay-to-webmail.private", "192.0.2.10", 10025, "[192.0.2.10]:10025" },
	{ "upper.example", "mail.upper.example", 25, "[mail.upper.example]:25" },
	/* subdomains: the nearest parent entry wins */
	{ "a.example.com", "10.0.0.5", 25, "[10.0.0.5]:25" },
	{ "x.y.example.com", "10.0.0.5", 25, "[10.0.0.5]:25" },
	{ "sub.example.com", "10.0.0.5", 25, "[10.0.0.5]:25" },
	{ "a.sub.example.com", "sub-relay.example.com", 26,
	    "[sub-relay.example.com]:26" },
	/* IPv6 literals */
	{ "v6.example", "::1", 25, "[::1]:25" },
	{ "v6b.example", "2001:db8::1", 25, "[2001:db8::1]:25" },
	/* the wildcard */
	{ "other.org", "127.0.0.1", 10026, "[127.0.0.1]:10026" },
	{ "notexample.com", "127.0.0.1", 10026, "[127.0.0.1]:10026" },
	{ "com", "127.0.0.1", 10026, "[127.0.0.1]:10026" },
};

static void
test_lookup(void **state)
{
	struct transport_nexthop nh;
	struct transport_map *m;
	char *err = NULL;
	size_t i;

	(void)state;
	m = load(good_map, &err);
	if (m == NULL)
		fail_msg("load: %s", err);
	for (i = 0; i < sizeof(lookups) / sizeof(lookups[0]); i++) {
		memset(&nh, 0, sizeof(nh));
		if (transport_lookup(m, lookups[i].domain, &nh) != 0)
			fail_msg("no route for %s", lookups[i].domain);
		assert_string_equal(nh.host, lookups[i].host);
		assert_int_equal(nh.port, lookups[i].port);
		assert_string_equal(nh.nexthop, lookups[i].nexthop);
	}
	transport_free(m);
}

static void
test_no_route(void **state)
{
	struct transport_nexthop nh;
	struct transport_map *m;
	char *err = NULL;

	(void)state;
	m = load("example.com smtp:[h1]\n.example.org smtp:[h2]:27\n", &err);
	assert_non_null(m);
	assert_int_equal(transport_lookup(m, "example.net", &nh), -1);
	/* ".example.org" covers subdomains only, not example.org itself. */
	assert_int_equal(transport_lookup(m, "example.org", &nh), -1);
	assert_int_equal(transport_lookup(m, "a.example.org", &nh), 0);
	assert_string_equal(nh.nexthop, "[h2]:27");
	/* A bare host is used as-is (no MX lookup), same as brackets. */
	transport_free(m);

	m = load("", &err);
	assert_non_null(m);
	assert_int_equal(transport_lookup(m, "example.com", &nh), -1);
	assert_int_equal(transport_lookup(m, "", &nh), -1);
	transport_free(m);
}

struct bad_case {
	const char *text;
	const char *msg;	/* expected ":LINE: why" suffix part */
};

static const struct bad_case bad[] = {
	{ "example.com\n", ":1: expected" },
	{ "# c\n\nexample.com smtp:[h]:0\n", ":3: invalid port" },
	{ "a.example smtp:[h]\nb.example smtp:[h]:70000\n", ":2: invalid port" },
	{ "a.example smtp:[h]:25x\n", ":1: invalid port" },
	{ "a.example smtp:[h\n", ":1: missing ']'" },
	{ "a.example smtp:[]\n", ":1: empty next-hop host" },
	{ "a.example smtp:\n", ":1: empty next-hop host" },
	{ "a.example smtp:::1\n", ":1: IPv6 address must be in brackets" },
	{ "a.example lmtp:[h]:24\n", ":1: unsupported transport" },
	{ "a.example error:no\n", ":1: unsupported transport" },
	{ "a.example smtp:[h] extra\n", ":1: junk after next hop" },
	{ "a.example smtp:[h]x\n", ":1: junk after next-hop host" },
	{ "a.example smtp:[h]\nA.Example smtp:[i]\n", ":2: duplicate entry" },
	{ "user@a.example smtp:[h]\n", ":1: invalid domain pattern" },
	{ "a..example smtp:[h]\n", ":1: invalid domain pattern" },
	{ ". smtp:[h]\n", ":1: invalid domain pattern" },
	{ "a.example smtp:[h/x]\n", ":1: invalid next-hop host" },
	{ "a.example smtp:[h]\n  smtp:[i]\n", ":2: continuation lines" },
};

static void
test_syntax_errors(void **state)
{
	struct transport_map *m;
	char *err, *path;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err = NULL;
		path = write_map(bad[i].text);
		m = transport_load(path, &err);
		if (m != NULL)
			fail_msg("accepted: %s", bad[i].text);
		assert_non_null(err);
		/* The message names the file, then the line. */
		if (strncmp(err, path, strlen(path)) != 0 ||
		    strstr(err, bad[i].msg) != err + strlen(path))
			fail_msg("case %zu: got \"%s\", want \"%s%s...\"", i,
			    err, path, bad[i].msg);
		free(err);
		unlink(path);
		free(path);
	}
	err = NULL;
	assert_null(transport_load("/nonexistent/transport", &err));
	assert_non_null(strstr(err, "/nonexistent/transport: "));
	free(err);

	/* An overlong line is an error, not a silent split. */
	char *longline = malloc(3000);
	assert_non_null(longline);
	memset(longline, 'a', 2998);
	memcpy(longline, "a.example smtp:[", 16);
	longline[2998] = '\n';
	longline[2999] = '\0';
	err = NULL;
	m = load(longline, &err);
	assert_null(m);
	assert_non_null(strstr(err, ":1: line too long"));
	free(err);
	free(longline);
}

static void
test_parse_nexthop(void **state)
{
	struct transport_nexthop nh;
	const char *why;

	(void)state;
	assert_int_equal(transport_parse_nexthop("[192.0.2.1]:10025", &nh,
	    &why), 0);
	assert_string_equal(nh.nexthop, "[192.0.2.1]:10025");
	assert_int_equal(transport_parse_nexthop("portal.example:2525", &nh,
	    &why), 0);
	assert_string_equal(nh.host, "portal.example");
	assert_int_equal(nh.port, 2525);
	assert_int_equal(transport_parse_nexthop("smtp:Portal.Example", &nh,
	    &why), 0);
	assert_string_equal(nh.nexthop, "[portal.example]:25");
	assert_int_equal(transport_parse_nexthop("[::1]", &nh, &why), 0);
	assert_string_equal(nh.nexthop, "[::1]:25");
	assert_int_equal(transport_parse_nexthop("[h]:-1", &nh, &why), -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_lookup),
		cmocka_unit_test(test_no_route),
		cmocka_unit_test(test_syntax_errors),
		cmocka_unit_test(test_parse_nexthop),
	};

	return cmocka_run_group_tests_name("transport", tests, NULL, NULL);
}
