/* The add-on tunnel's manifest (shared/tunnel.c): format, parse, refusals. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "tunnel.h"

#define ID	"0123456789abcdef0123456789abcdef"
#define SHA	"2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
#define HEAD	"Postern-Tunnel: 1\r\nId: " ID "\r\nTime: 1700000000\r\n" \
		"Route: pdf-otp\r\nSize: 5\r\nSHA256: " SHA "\r\n"

static void
test_round_trip(void **state)
{
	char *rc[] = { "bob@example.org", "\"a b\"@example.net" };
	struct tunnel_manifest m, p;
	const char *why;
	char *s;

	(void)state;
	memset(&m, 0, sizeof(m));
	memcpy(m.id, ID, sizeof(m.id));
	memcpy(m.sha256, SHA, sizeof(m.sha256));
	m.time = 1700000000;
	m.route = TUNNEL_ROUTE_PDF;
	m.size = 5;
	m.rcpts = rc;
	m.nrcpts = 2;
	assert_non_null(s = tunnel_manifest_format(&m));
	assert_string_equal(s, HEAD "Recipient: bob@example.org\r\n"
	    "Recipient: \"a b\"@example.net\r\n");
	assert_int_equal(tunnel_manifest_parse(s, strlen(s), &p, &why), 0);
	assert_int_equal(p.route, TUNNEL_ROUTE_PDF);
	assert_int_equal(p.nrcpts, 2);
	assert_string_equal(p.rcpts[1], "\"a b\"@example.net");
	assert_int_equal(p.size, 5);
	tunnel_manifest_free(&p);
	free(s);
	/* A recipient with a line break never makes a manifest. */
	rc[0] = "bob@example.org\r\nRecipient: eve@example.net";
	assert_null(tunnel_manifest_format(&m));
}

static void
test_refused(void **state)
{
	static const struct {
		const char *in, *why;
	} cases[] = {
		{ "", "manifest incomplete" },
		{ HEAD, "manifest names no recipient" },
		{ "Postern-Tunnel: 2\r\n", "unknown manifest version" },
		{ "Id: " ID "\r\n", "out of order" },
		{ "Postern-Tunnel: 1\r\nId: 0123\r\n", "bad tunnel id" },
		{ "Postern-Tunnel: 1\r\nId: " ID "\r\nTime: -5\r\n",
		    "bad manifest time" },
		{ "Postern-Tunnel: 1\r\nId: " ID "\r\nTime: 1\r\n"
		    "Route: smoke\r\n", "unknown route" },
		{ HEAD "Recipient: bob@example.org\n", "CRLF" },
		{ HEAD "Recipient: not an address\r\n", "" },
		{ HEAD "Recipient: bob@example.org\r\nSize: 6\r\n",
		    "out of order" },
		{ HEAD "Recipient: bob@example.org\r\nX-Extra: 1\r\n",
		    "unknown" },
	};
	struct tunnel_manifest m;
	const char *why;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		why = NULL;
		assert_int_equal(tunnel_manifest_parse(cases[i].in,
		    strlen(cases[i].in), &m, &why), -1);
		assert_non_null(why);
		if (strstr(why, cases[i].why) == NULL)
			fail_msg("case %zu: %s", i, why);
	}
}

static void
test_too_many_recipients(void **state)
{
	struct tunnel_manifest m;
	const char *why;
	size_t n = strlen(HEAD), one = strlen("Recipient: b@example.org\r\n");
	char *s = malloc(n + one * (TUNNEL_MAX_RCPTS + 1) + 1);

	(void)state;
	memcpy(s, HEAD, n);
	for (int i = 0; i <= TUNNEL_MAX_RCPTS; i++, n += one)
		memcpy(s + n, "Recipient: b@example.org\r\n", one);
	assert_int_equal(tunnel_manifest_parse(s, n, &m, &why), -1);
	assert_string_equal(why, "too many recipients");
	assert_int_equal(tunnel_manifest_parse(s, n - one, &m, &why), 0);
	assert_int_equal(m.nrcpts, TUNNEL_MAX_RCPTS);
	tunnel_manifest_free(&m);
	free(s);
}

/* The same message for the same recipients keeps its id; any change
 * of seed, route, recipient or their split gives another. */
static void
test_id_derive(void **state)
{
	const char *ab[] = { "a@example.org", "b@example.org" };
	const char *ba[] = { "b@example.org", "a@example.org" };
	const char *joined[] = { "a@example.orgb@example.org" };
	char x[TUNNEL_ID_LEN + 1], y[TUNNEL_ID_LEN + 1];

	(void)state;
	tunnel_id_derive("k1", TUNNEL_ROUTE_WEBMAIL, ab, 2, x);
	tunnel_id_derive("k1", TUNNEL_ROUTE_WEBMAIL, ab, 2, y);
	assert_int_equal(strlen(x), TUNNEL_ID_LEN);
	assert_string_equal(x, y);
	tunnel_id_derive("k2", TUNNEL_ROUTE_WEBMAIL, ab, 2, y);
	assert_string_not_equal(x, y);
	tunnel_id_derive("k1", TUNNEL_ROUTE_PDF, ab, 2, y);
	assert_string_not_equal(x, y);
	tunnel_id_derive("k1", TUNNEL_ROUTE_WEBMAIL, ab, 1, y);
	assert_string_not_equal(x, y);
	tunnel_id_derive("k1", TUNNEL_ROUTE_WEBMAIL, ba, 2, y);
	assert_string_not_equal(x, y);
	tunnel_id_derive("k1", TUNNEL_ROUTE_WEBMAIL, joined, 1, y);
	assert_string_not_equal(x, y);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_refused),
		cmocka_unit_test(test_too_many_recipients),
		cmocka_unit_test(test_id_derive),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
