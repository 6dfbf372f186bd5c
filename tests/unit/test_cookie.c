/* Cookie header parsing, __Host- Set-Cookie, session ids and CSRF tokens. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "web/web_cookie.h"

static const struct {
	const char	*header;
	int		 rc;
	const char	*value;
} get[] = {
	{ "__Host-sid=abc", 1, "abc" },
	{ "a=1; __Host-sid=abc; b=2", 1, "abc" },
	{ "a=1;__Host-sid=\"quoted\"", 1, "quoted" },
	{ "sid=abc", 0, NULL },			/* no prefix: not ours */
	{ "__host-sid=abc", 0, NULL },
	{ "__Host-sidx=abc", 0, NULL },
	{ "", 0, NULL },
	{ "__Host-sid=a; __Host-sid=b", -1, NULL },	/* planted twin */
	{ "__Host-sid=a b", -1, NULL },
	{ "__Host-sid=a,b", -1, NULL },
	{ "__Host-sid=a\\b", -1, NULL },
	{ "__Host-sid=\"a", -1, NULL },
	{ "__Host-sid", -1, NULL },		/* ours, no value */
	{ "__Host-sid =abc", -1, NULL },
	{ "__Host-sid=abc x", -1, NULL },
	{ "__Host-sid=abc\"", -1, NULL },
	/* Pairs that are not ours are skipped, parseable or not. */
	{ "=abc", 0, NULL },
	{ "novalue", 0, NULL },
	{ "_tracker=a b", 0, NULL },
	{ "_tracker=a b; __Host-sid=abc", 1, "abc" },
	{ "__Host-sid=abc; _tracker=a b", 1, "abc" },
	{ "x=\"open; __Host-sid=abc;;", 1, "abc" },
	{ "a b c=\x01\x7f; __Host-pre=a b; __Host-sid=abc", 1, "abc" },
	{ "__Host-sidx=a b", 0, NULL },
	{ " ; ;", 0, NULL },
	{ "__Host-sid=0123456789012345678901234567890123456789", -1, NULL },
};

static void
test_get(void **state)
{
	char	 out[32];
	int	 rc;

	(void)state;
	for (size_t i = 0; i < sizeof(get) / sizeof(get[0]); i++) {
		rc = web_cookie_get(get[i].header, "sid", out, sizeof(out));
		if (rc != get[i].rc)
			print_error("case %zu: %s -> %d\n", i, get[i].header, rc);
		assert_int_equal(rc, get[i].rc);
		if (rc == 1)
			assert_string_equal(out, get[i].value);
	}
}

static void
test_get_too_long(void **state)
{
	char	*h, out[64];

	(void)state;
	h = malloc(WEB_COOKIE_HEADER_MAX + 32);
	memset(h, 'a', WEB_COOKIE_HEADER_MAX + 20);
	memcpy(h, "__Host-sid=x; z=", 16);
	h[WEB_COOKIE_HEADER_MAX + 20] = '\0';
	assert_int_equal(web_cookie_get(h, "sid", out, sizeof(out)), -1);
	free(h);
}

static void
test_set(void **state)
{
	char	*s;

	(void)state;
	s = web_cookie_set("sid", "abc-_", 3600);
	assert_string_equal(s, "__Host-sid=abc-_; Path=/; Secure; HttpOnly; "
	    "SameSite=Strict; Max-Age=3600");
	free(s);
	s = web_cookie_set("sid", "abc", -1);
	assert_string_equal(s, "__Host-sid=abc; Path=/; Secure; HttpOnly; "
	    "SameSite=Strict");
	assert_null(strstr(s, "Domain"));
	free(s);
	s = web_cookie_clear("sid");
	assert_string_equal(s, "__Host-sid=; Path=/; Secure; HttpOnly; "
	    "SameSite=Strict; Max-Age=0");
	free(s);
}

static void
test_session(void **state)
{
	char	 a[WEB_SESSION_ID_LEN + 1], b[WEB_SESSION_ID_LEN + 1];
	char	 h[WEB_SESSION_HASH_HEX + 1], out[64], *cookie;

	(void)state;
	web_session_new(a);
	web_session_new(b);
	assert_int_equal(strlen(a), WEB_SESSION_ID_LEN);
	assert_string_not_equal(a, b);
	assert_int_equal(web_session_valid(a), 1);
	assert_int_equal(web_session_valid("short"), 0);
	b[5] = '+';
	assert_int_equal(web_session_valid(b), 0);
	/* A session id survives the round trip through the cookie. */
	cookie = web_cookie_set("sid", a, -1);
	*strchr(cookie, ';') = '\0';
	assert_int_equal(web_cookie_get(cookie, "sid", out, sizeof(out)), 1);
	assert_string_equal(out, a);
	free(cookie);
	/* SHA-256 of "abc" is a published value (FIPS 180-2). */
	web_session_hash("abc", h);
	assert_string_equal(h, "ba7816bf8f01cfea414140de5dae2223"
	    "b00361a396177a9cb410ff61f20015ad");
	web_session_hash(a, h);
	assert_null(strstr(h, a));
}

static void
test_csrf(void **state)
{
	unsigned char	 key[32], key2[32];
	char		 sid[WEB_SESSION_ID_LEN + 1], sid2[WEB_SESSION_ID_LEN + 1];
	char		 t[WEB_CSRF_TOKEN_LEN + 1], t2[WEB_CSRF_TOKEN_LEN + 1];

	(void)state;
	memset(key, 7, sizeof(key));
	memset(key2, 8, sizeof(key2));
	web_session_new(sid);
	web_session_new(sid2);
	web_csrf_token(key, sizeof(key), sid, t);
	assert_int_equal(strlen(t), WEB_CSRF_TOKEN_LEN);
	web_csrf_token(key, sizeof(key), sid, t2);
	assert_string_equal(t, t2);
	assert_int_equal(web_csrf_check(key, sizeof(key), sid, t), 1);
	/* Bound to the session and to the server key. */
	assert_int_equal(web_csrf_check(key, sizeof(key), sid2, t), 0);
	assert_int_equal(web_csrf_check(key2, sizeof(key2), sid, t), 0);
	t2[0] = t2[0] == 'A' ? 'B' : 'A';
	assert_int_equal(web_csrf_check(key, sizeof(key), sid, t2), 0);
	assert_int_equal(web_csrf_check(key, sizeof(key), sid, ""), 0);
	t[10] = '\0';
	assert_int_equal(web_csrf_check(key, sizeof(key), sid, t), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_get),
		cmocka_unit_test(test_get_too_long),
		cmocka_unit_test(test_set),
		cmocka_unit_test(test_session),
		cmocka_unit_test(test_csrf),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
