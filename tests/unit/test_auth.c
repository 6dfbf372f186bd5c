/* The client part of the portal's sign-in throttling keys. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "web/web_auth.h"

static const struct {
	const char	*client;
	const char	*key;
} keys[] = {
	{ "192.0.2.7", "192.0.2.7" },
	{ "192.0.2.8", "192.0.2.8" },
	{ "::ffff:192.0.2.7", "192.0.2.7" },
	/* One /64, one key, however the interface part is chosen. */
	{ "2001:db8:1:2::1", "2001:db8:1:2::/64" },
	{ "2001:db8:1:2:a:b:c:d", "2001:db8:1:2::/64" },
	{ "2001:db8:1:2:ffff:ffff:ffff:ffff", "2001:db8:1:2::/64" },
	{ "2001:db8:1:3::1", "2001:db8:1:3::/64" },
	{ "::1", "::/64" },
	{ "unix", "unix" },
};

static void
test_client_key(void **state)
{
	char	 out[64];

	(void)state;
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		web_auth_client_key(keys[i].client, out, sizeof(out));
		if (strcmp(out, keys[i].key) != 0)
			print_error("case %zu: %s -> %s\n", i, keys[i].client,
			    out);
		assert_string_equal(out, keys[i].key);
	}
}

static void
test_client_key_same_prefix(void **state)
{
	char	 a[64], b[64];

	(void)state;
	web_auth_client_key("2001:db8:aa:bb:1111:2222:3333:4444", a,
	    sizeof(a));
	web_auth_client_key("2001:db8:aa:bb::dead:beef", b, sizeof(b));
	assert_string_equal(a, b);
	web_auth_client_key("2001:db8:aa:bc::dead:beef", b, sizeof(b));
	assert_string_not_equal(a, b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_client_key),
		cmocka_unit_test(test_client_key_same_prefix),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
