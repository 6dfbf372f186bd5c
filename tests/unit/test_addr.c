/* The split-mode rewrite codec: every valid address round-trips. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "addr.h"

#define RELAY "relay-to-webmail.private"

struct rw_case {
	const char *in;
	int utf8;
	const char *rewritten;
	const char *reverted;	/* canonical form of in */
};

static const struct rw_case rw_cases[] = {
	{ "bob@example.net", 0, "bob=example.net@" RELAY, "bob@example.net" },
	{ "first.last@sub.example.org", 0,
	    "first.last=sub.example.org@" RELAY, "first.last@sub.example.org" },
	{ "a=b@example.com", 0, "a=b=example.com@" RELAY, "a=b@example.com" },
	{ "x==y=@example.com", 0, "x==y==example.com@" RELAY,
	    "x==y=@example.com" },
	{ "\"john smith\"@example.com", 0,
	    "\"john smith=example.com\"@" RELAY, "\"john smith\"@example.com" },
	{ "\"a\\\"b\"@example.com", 0, "\"a\\\"b=example.com\"@" RELAY,
	    "\"a\\\"b\"@example.com" },
	{ "\"we@ird\"@example.com", 0, "\"we@ird=example.com\"@" RELAY,
	    "\"we@ird\"@example.com" },
	{ "\"plain\"@example.com", 0, "plain=example.com@" RELAY,
	    "plain@example.com" },
	{ "user@[192.0.2.1]", 0, "\"user=[192.0.2.1]\"@" RELAY,
	    "user@[192.0.2.1]" },
	{ "用户@例子.广告", 1, "用户=例子.广告@" RELAY, "用户@例子.广告" },
	{ "jörg@bücher.example", 1, "jörg=bücher.example@" RELAY,
	    "jörg@bücher.example" },
	{ "x@[IPv6:2001:db8::1]", 0, "\"x=[IPv6:2001:db8::1]\"@" RELAY,
	    "x@[IPv6:2001:db8::1]" },
	{ "o'brien+tag@example.ie", 0, "o'brien+tag=example.ie@" RELAY,
	    "o'brien+tag@example.ie" },
};

static void
test_round_trip(void **state)
{
	char out[ADDR_MAX * 2], back[ADDR_MAX * 2];
	const char *why;
	(void)state;

	for (size_t i = 0; i < sizeof(rw_cases) / sizeof(rw_cases[0]); i++) {
		const struct rw_case *c = &rw_cases[i];

		if (addr_rewrite(c->in, RELAY, c->utf8, out, sizeof(out),
		    &why) != 0)
			fail_msg("rewrite %s: %s", c->in, why);
		if (strcmp(out, c->rewritten) != 0)
			fail_msg("rewrite %s: got %s want %s", c->in, out,
			    c->rewritten);
		if (addr_revert(out, RELAY, c->utf8, back, sizeof(back),
		    &why) != 0)
			fail_msg("revert %s: %s", out, why);
		if (strcmp(back, c->reverted) != 0)
			fail_msg("revert %s: got %s want %s", out, back,
			    c->reverted);
	}
}

static void
test_bad(void **state)
{
	static const char *bad_parse[] = {
		"", "noat", "@example.com", "a@", "a..b@example.com",
		".a@example.com", "a.@example.com", "a b@example.com",
		"\"unterminated@example.com", "a@-bad.example", "a@bad-.example",
		"a@exa_mple.com", "a@[1.2.3.4", "r@[=]", "a@[1.2.3.999]",
		"a@[tag:x=y]", "jörg@example.com" /* no utf8 */,
	};
	static const char *bad_revert[] = {
		"bob@example.net",			/* not in relay domain */
		"bob@" RELAY,				/* no '=' */
		"=example.net@" RELAY,			/* empty local part */
		"bob=@" RELAY,				/* empty domain */
		"bob=ex ample@" RELAY,			/* bad syntax */
		"\"bob=bad..domain\"@" RELAY,
	};
	struct addr a;
	char out[ADDR_MAX];
	const char *why;
	(void)state;

	for (size_t i = 0; i < sizeof(bad_parse) / sizeof(*bad_parse); i++)
		if (addr_parse(bad_parse[i], 0, &a, &why) != -1)
			fail_msg("accepted %s", bad_parse[i]);
	for (size_t i = 0; i < sizeof(bad_revert) / sizeof(*bad_revert); i++)
		if (addr_revert(bad_revert[i], RELAY, 0, out, sizeof(out),
		    &why) != -1)
			fail_msg("reverted %s to %s", bad_revert[i], out);
	/* Relay domain matches case-insensitively. */
	assert_int_equal(addr_revert("bob=example.net@Relay-To-Webmail.Private",
	    RELAY, 0, out, sizeof(out), &why), 0);
	assert_string_equal(out, "bob@example.net");
	/* Invalid UTF-8 is refused even with SMTPUTF8. */
	assert_int_equal(addr_parse("a\xc3\x28@example.com", 1, &a, &why), -1);
}

static void
test_fold(void **state)
{
	static const struct {
		const char	*in, *want;
	} tab[] = {
	{ "Bob@Example.ORG", "bob@example.org" },
	{ "JÜRGEN@BÜCHER.EXAMPLE",
	  "jürgen@bücher.example" },
	{ "jürgen@bücher.example",
	  "jürgen@bücher.example" },
	/* A-label and U-label are one domain; the store keeps U-labels. */
	{ "jürgen@xn--bcher-kva.example",
	  "jürgen@bücher.example" },
	{ "JURGEN@XN--BCHER-KVA.EXAMPLE", "jurgen@bücher.example" },
	/* NFD (u + combining diaeresis) folds to the NFC spelling. */
	{ "jürgen@example.org", "jürgen@example.org" },
	{ "ΣΑ@example.org", "σα@example.org" },
	{ "bob@[192.0.2.1]", "bob@[192.0.2.1]" },
	/* Its Unicode form would end in a hyphen: the A-label stays. */
	{ "Or@EY.xn------top.ad", "or@ey.xn------top.ad" },
	/* Its folded Unicode label would pass 63 octets: the A-label stays. */
	{ "mp@xn--rePP-PPPPPPPPPPPPPPePPPP", "mp@xn--repp-ppppppppppppppepppp" },
	};
	char out[ADDR_MAX];

	(void)state;
	for (size_t i = 0; i < sizeof(tab) / sizeof(tab[0]); i++) {
		assert_int_equal(addr_fold(tab[i].in, out, sizeof(out)), 0);
		assert_string_equal(out, tab[i].want);
	}
	assert_int_equal(addr_fold("no-at-sign", out, sizeof(out)), -1);
	assert_int_equal(addr_fold("bad\xff@example.org", out, sizeof(out)),
	    -1);
	assert_int_equal(addr_fold("bob@example.org", out, 8), -1);
	/* NFC maps U+037E onto ';': no valid folded spelling exists. */
	assert_int_equal(addr_fold("tx\xcd\xben-@p", out, sizeof(out)), -1);
	assert_int_equal(addr_fold_domain("XN--BCHER-KVA.example", out,
	    sizeof(out)), 0);
	assert_string_equal(out, "bücher.example");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_bad),
		cmocka_unit_test(test_fold),
	};

	return cmocka_run_group_tests_name("addr", tests, NULL, NULL);
}
