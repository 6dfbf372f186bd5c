/* Argon2id password hashes and the password policy. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "web/web_password.h"

/* Cheap costs keep the test fast; the format is the same. */
static const struct web_password_cost cheap = { 1, 1024, 1 };

static void
test_hash_verify(void **state)
{
	char	*h1, *h2;

	(void)state;
	h1 = web_password_hash("correct horse battery", &cheap);
	h2 = web_password_hash("correct horse battery", &cheap);
	assert_non_null(h1);
	assert_non_null(h2);
	assert_int_equal(strncmp(h1, "$argon2id$v=19$m=1024,t=1,p=1$", 30), 0);
	/* Fresh salt each time. */
	assert_string_not_equal(h1, h2);
	assert_int_equal(web_password_verify(h1, "correct horse battery"), 1);
	assert_int_equal(web_password_verify(h2, "correct horse battery"), 1);
	assert_int_equal(web_password_verify(h1, "correct horse batterY"), 0);
	assert_int_equal(web_password_verify(h1, ""), 0);
	/* Not argon2id, or mangled: never a match. */
	assert_int_equal(web_password_verify("$argon2i$v=19$m=1024,t=1,p=1$"
	    "c2FsdHNhbHQ$aGFzaA", "x"), 0);
	assert_int_equal(web_password_verify("garbage", "x"), 0);
	assert_int_equal(web_password_verify("", ""), 0);
	assert_int_equal(web_password_needs_rehash(h1, &cheap), 0);
	assert_int_equal(web_password_needs_rehash(h1, NULL), 1);
	assert_int_equal(web_password_needs_rehash("junk", &cheap), 1);
	free(h1);
	free(h2);
}

static void
test_default_cost(void **state)
{
	char	*h;

	(void)state;
	h = web_password_hash("another long passphrase", NULL);
	assert_non_null(h);
	assert_int_equal(strncmp(h, "$argon2id$v=19$m=65536,t=3,p=1$", 31), 0);
	assert_int_equal(web_password_verify(h, "another long passphrase"), 1);
	free(h);
}

static void
test_long_password_refused(void **state)
{
	char	 pw[WEB_PASSWORD_MAX_BYTES + 2];

	(void)state;
	memset(pw, 'a', sizeof(pw) - 1);
	pw[sizeof(pw) - 1] = '\0';
	assert_null(web_password_hash(pw, &cheap));
	assert_string_equal(web_password_check(pw, NULL, 12),
	    "password.too_long");
}

static const struct {
	const char	*pw;
	const char	*email;
	size_t		 min;
	const char	*want;
} policy[] = {
	{ "blue harbour kettle", "ann@example.com", 12, NULL },
	{ "short", NULL, 12, "password.too_short" },
	{ "elevenchars", NULL, 12, "password.too_short" },
	{ "elevenchars", NULL, 11, NULL },
	/* Characters, not bytes: 12 two-byte letters are 12. */
	{ "\xc3\xa4\xc3\xb6\xc3\xbc\xc3\x9f\xc3\xa4\xc3\xb6\xc3\xbc\xc3\x9f"
	    "\xc3\xa4\xc3\xb6\xc3\xbc\xc3\x9f", NULL, 12, NULL },
	{ "\xc3\xa4\xc3\xb6\xc3\xbc\xc3\x9f" "abcd" "\xc3\xa4\xc3\xb6\xc3\xbc",
	    NULL, 11, NULL },
	{ "\xc3\xa4\xc3\xb6\xc3\xbc", NULL, 4, "password.too_short" },
	{ "aaaaaaaaaaaaaaaa", NULL, 12, "password.repeated" },
	{ "abababababababab", NULL, 12, "password.repeated" },
	{ "password123456", NULL, 12, "password.common" },
	{ "PassWord123456!", NULL, 12, "password.common" },
	{ "qwertyuiopas", NULL, 12, "password.common" },
	{ "QWERTYUIOPAS", NULL, 12, "password.common" },
	{ "iloveyou2024!!", NULL, 12, "password.common" },
	{ "123456789012", NULL, 12, "password.common" },
	{ "2024-01-31 19:45", NULL, 12, "password.common" },
	{ "correcthorsebatterystaple", NULL, 12, "password.common" },
	{ "ann.smith@example.com", "Ann.Smith@Example.com", 12,
	    "password.email" },
	{ "ann.smith.long", "ann.smith.long@example.com", 12,
	    "password.email" },
	{ "bad\xff utf8 here", NULL, 12, "password.invalid" },
	{ "control\x01 chars!", NULL, 12, "password.invalid" },
};

static void
test_policy(void **state)
{
	const char *got;

	(void)state;
	for (size_t i = 0; i < sizeof(policy) / sizeof(policy[0]); i++) {
		got = web_password_check(policy[i].pw, policy[i].email,
		    policy[i].min);
		if (policy[i].want == NULL) {
			if (got != NULL)
				print_error("case %zu: %s\n", i, got);
			assert_null(got);
		} else {
			if (got == NULL || strcmp(got, policy[i].want))
				print_error("case %zu: got %s\n", i,
				    got ? got : "NULL");
			assert_non_null(got);
			assert_string_equal(got, policy[i].want);
		}
	}
}

static void
test_rules_text(void **state)
{
	char	*s;

	(void)state;
	s = web_password_rules_text(12);
	assert_non_null(strstr(s, "at least 12 characters"));
	free(s);
	s = web_password_rules_text(16);
	assert_non_null(strstr(s, "at least 16 characters"));
	free(s);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hash_verify),
		cmocka_unit_test(test_default_cost),
		cmocka_unit_test(test_long_password_refused),
		cmocka_unit_test(test_policy),
		cmocka_unit_test(test_rules_text),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
