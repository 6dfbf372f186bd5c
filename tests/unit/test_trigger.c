/* Portal trigger routing (ingest_classify on header_trigger_match), the
 * revert codec on portal inputs (ingest_owner) and pin parsing. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "addr.h"
#include "ingest/ingest.h"

#define WM "X-Keep-CipherMail-To-Webmail: True"
#define OTP "X-Keep-CipherMail-To-PDF-OTP: True"

static enum ingest_route
route(const char *hdr, int wm_on, int otp_on)
{
	struct header h;
	struct ingest_triggers t = { WM, wm_on, OTP, otp_on };
	enum ingest_route r;

	assert_int_equal(header_parse_mem(hdr, strlen(hdr), 65536, &h), 0);
	r = ingest_classify(&h, &t);
	header_free(&h);
	return r;
}

static void
test_classify(void **state)
{
	static const struct {
		const char		*hdr;
		int			 wm, otp;
		enum ingest_route	 want;
	} tab[] = {
	{ "Subject: x\r\nX-Keep-CipherMail-To-Webmail: True\r\n\r\n", 1, 1,
	  INGEST_ROUTE_WEBMAIL },
	{ "x-keep-ciphermail-to-webmail: true\r\n\r\n", 1, 1,
	  INGEST_ROUTE_WEBMAIL },				/* case */
	{ "X-Keep-CipherMail-To-Webmail:    True   \r\n\r\n", 1, 1,
	  INGEST_ROUTE_WEBMAIL },				/* spacing */
	{ "X-Keep-CipherMail-To-Webmail:\r\n\tTrue\r\n\r\n", 1, 1,
	  INGEST_ROUTE_WEBMAIL },				/* folded */
	{ "X-Keep-CipherMail-To-Webmail: True\r\n\r\n", 0, 1,
	  INGEST_ROUTE_NONE },					/* disabled */
	{ "X-Keep-CipherMail-To-Webmail: False\r\n\r\n", 1, 1,
	  INGEST_ROUTE_NONE },					/* value */
	{ "X-Keep-CipherMail-To-Webmail: Truex\r\n\r\n", 1, 1,
	  INGEST_ROUTE_NONE },
	{ "X-Keep-CipherMail-To-Webmailx: True\r\n\r\n", 1, 1,
	  INGEST_ROUTE_NONE },					/* name */
	{ "Subject: X-Keep-CipherMail-To-Webmail: True\r\n\r\n", 1, 1,
	  INGEST_ROUTE_NONE },					/* in a value */
	{ "X-Keep-CipherMail-To-PDF-OTP: TRUE\r\n\r\n", 1, 1,
	  INGEST_ROUTE_PDF },
	{ "X-Keep-CipherMail-To-PDF-OTP: True\r\n\r\n", 1, 0,
	  INGEST_ROUTE_NONE },
	{ "X-Keep-CipherMail-To-Webmail: True\r\n"
	  "X-Keep-CipherMail-To-PDF-OTP: True\r\n\r\n", 1, 1,
	  INGEST_ROUTE_PDF },					/* PDF wins */
	{ "Subject: nothing\r\n\r\n", 1, 1, INGEST_ROUTE_NONE },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(tab) / sizeof(tab[0]); i++) {
		enum ingest_route r = route(tab[i].hdr, tab[i].wm, tab[i].otp);

		if (r != tab[i].want)
			fail_msg("case %zu: got %d want %d", i, r, tab[i].want);
	}
}

static void
test_owner(void **state)
{
	static const struct {
		const char	*rcpt;
		int		 revert;
		const char	*want;	/* NULL: refused */
	} tab[] = {
	{ "bob=example.org@relay-to-webmail.private", 1, "bob@example.org" },
	{ "Bob=Example.ORG@RELAY-to-webmail.private", 1, "bob@example.org" },
	{ "a=b=example.org@relay-to-webmail.private", 1, "a=b@example.org" },
	{ "\"john doe=example.org\"@relay-to-webmail.private", 1,
	  "\"john doe\"@example.org" },
	{ "bob@example.org", 1, "bob@example.org" },	/* direct */
	/* No mailbox in the relay domain, reverted or not. */
	{ "bob=example.org@relay-to-webmail.private", 0, NULL },
	{ "v=relay-to-webmail.private@relay-to-webmail.private", 1, NULL },
	{ "v=RELAY-to-webmail.private@relay-to-webmail.private", 1, NULL },
	{ "nodomain@relay-to-webmail.private", 1, NULL },
	{ "bob=@relay-to-webmail.private", 1, NULL },
	{ "=example.org@relay-to-webmail.private", 1, NULL },
	{ "bob=exa mple.org@relay-to-webmail.private", 1, NULL },
	{ "no-at-sign", 1, NULL },
	};
	char out[2 * ADDR_MAX + 2];
	const char *why;

	(void)state;
	for (size_t i = 0; i < sizeof(tab) / sizeof(tab[0]); i++) {
		int rc = ingest_owner(tab[i].rcpt, "relay-to-webmail.private",
		    tab[i].revert, 0, out, sizeof(out), &why);

		if (tab[i].want == NULL) {
			if (rc != -1)
				fail_msg("case %zu: %s accepted as %s", i,
				    tab[i].rcpt, out);
		} else if (rc != 0 || strcmp(out, tab[i].want) != 0)
			fail_msg("case %zu: %s -> %s (rc %d) want %s", i,
			    tab[i].rcpt, rc == 0 ? out : why, rc, tab[i].want);
	}
}

static void
test_pin_parse(void **state)
{
	char out[65];

	(void)state;
	assert_int_equal(ingest_pin_parse("AB:cd:" "0123456789abcdef"
	    "0123456789abcdef0123456789abcdef0123456789ab", out), 0);
	assert_string_equal(out, "abcd0123456789abcdef0123456789abcdef"
	    "0123456789abcdef0123456789ab");
	assert_int_equal(ingest_pin_parse("abcd", out), -1);
	assert_int_equal(ingest_pin_parse("zz" "0123456789abcdef0123456789abcdef"
	    "0123456789abcdef0123456789ab", out), -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_classify),
		cmocka_unit_test(test_owner),
		cmocka_unit_test(test_pin_parse),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
