/* Trigger stripping and matching on raw header fields. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "header.h"

static const char *const triggers[] = {
	"X-Keep-CipherMail-To-Webmail", "X-Keep-CipherMail-To-PDF-OTP",
};

static char *
rewrite(const char *msg, const char *extra, int *removed, int *rc)
{
	FILE *in = fmemopen((void *)msg, strlen(msg), "r");
	char *buf = NULL;
	size_t len = 0;
	FILE *out = open_memstream(&buf, &len);

	*rc = header_rewrite(in, out, 65536, triggers, 2, extra, removed);
	fclose(in);
	fclose(out);
	return buf;
}

struct strip_case {
	const char *in;
	const char *out;
	int removed;
};

static const struct strip_case strip_cases[] = {
	{ "From: a@b\r\nX-Keep-CipherMail-To-Webmail: True\r\nSubject: s\r\n"
	  "\r\nbody\r\n", "From: a@b\r\nSubject: s\r\n\r\nbody\r\n", 1 },
	/* case variants */
	{ "x-keep-ciphermail-to-webmail: True\r\nX-KEEP-CIPHERMAIL-TO-PDF-OTP:"
	  " True\r\nTo: c@d\r\n\r\nb\r\n", "To: c@d\r\n\r\nb\r\n", 2 },
	/* folded value, whitespace before colon */
	{ "X-Keep-CipherMail-To-Webmail:\r\n True\r\nX-Keep-CipherMail-To-"
	  "PDF-OTP :\r\n\t True\r\n more\r\nTo: c@d\r\n\r\nb\r\n",
	  "To: c@d\r\n\r\nb\r\n", 2 },
	/* a trigger-looking line in the body stays */
	{ "To: c@d\r\n\r\nX-Keep-CipherMail-To-Webmail: True\r\n",
	  "To: c@d\r\n\r\nX-Keep-CipherMail-To-Webmail: True\r\n", 0 },
	/* a folded other header keeps its folding byte for byte */
	{ "Subject: a\r\n  b\r\nX-Keep-CipherMail-To-Webmail: True\r\n\r\n",
	  "Subject: a\r\n  b\r\n\r\n", 1 },
	/* similar names are not triggers */
	{ "X-Keep-CipherMail-To-Webmail-Not: x\r\n\r\n",
	  "X-Keep-CipherMail-To-Webmail-Not: x\r\n\r\n", 0 },
};

static void
test_strip(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(strip_cases) / sizeof(*strip_cases); i++) {
		int removed, rc;
		char *out = rewrite(strip_cases[i].in, NULL, &removed, &rc);

		assert_int_equal(rc, 0);
		if (strcmp(out, strip_cases[i].out) != 0)
			fail_msg("case %zu: got [%s]", i, out);
		assert_int_equal(removed, strip_cases[i].removed);
		free(out);
	}
}

static void
test_extra_and_limits(void **state)
{
	int removed, rc;
	char *out, big[70000];
	(void)state;

	out = rewrite("X-Keep-CipherMail-To-Webmail: forged\r\nTo: c@d\r\n\r\nb",
	    "X-Keep-CipherMail-To-Webmail: True\r\n", &removed, &rc);
	assert_int_equal(rc, 0);
	assert_string_equal(out,
	    "X-Keep-CipherMail-To-Webmail: True\r\nTo: c@d\r\n\r\nb");
	free(out);

	/* a header over the limit is refused, not truncated */
	memset(big, 0, sizeof(big));
	strcpy(big, "Subject: ");
	memset(big + 9, 'a', sizeof(big) - 20);
	strcat(big, "\r\n\r\n");
	out = rewrite(big, NULL, &removed, &rc);
	assert_int_equal(rc, -2);
	free(out);
	/* a continuation line before any field is malformed */
	out = rewrite(" leading\r\nTo: a\r\n\r\n", NULL, &removed, &rc);
	assert_int_equal(rc, -2);
	free(out);
}

static void
test_match(void **state)
{
	struct header h;
	const char *msg = "Subject: hi\r\nX-Keep-CipherMail-To-Webmail:\r\n"
	    "   true  \r\nX-Secure: Yes\r\n\r\nbody";
	char name[64], value[64];
	(void)state;

	assert_int_equal(header_parse_mem(msg, strlen(msg), 65536, &h), 0);
	assert_int_equal(h.nfields, 3);
	assert_int_equal(header_trigger_match(&h,
	    "X-Keep-CipherMail-To-Webmail: True"), 1);
	assert_int_equal(header_trigger_match(&h,
	    "x-keep-ciphermail-to-webmail:True"), 1);
	assert_int_equal(header_trigger_match(&h, "X-Secure: yes"), 1);
	assert_int_equal(header_trigger_match(&h, "X-Secure: no"), 0);
	assert_int_equal(header_trigger_match(&h,
	    "X-Keep-CipherMail-To-PDF-OTP: True"), 0);
	assert_int_equal(header_trigger_match(&h, "no colon"), 0);
	assert_string_equal(header_get(&h, "subject")->value, "hi");
	header_free(&h);

	assert_int_equal(header_trigger_parse("  X-A :  b c  ", name,
	    sizeof(name), value, sizeof(value)), 0);
	assert_string_equal(name, "X-A");
	assert_string_equal(value, "b c");
	assert_int_equal(header_trigger_parse(": v", name, sizeof(name), value,
	    sizeof(value)), -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_strip),
		cmocka_unit_test(test_extra_and_limits),
		cmocka_unit_test(test_match),
	};

	return cmocka_run_group_tests_name("header", tests, NULL, NULL);
}
