/*
 * Notification mail (external-portal/outbox/notify.c): values through the
 * shared escaper, the sender shown by default, hostile display names.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <gmime/gmime.h>

#include "outbox/notify.h"

static const struct notify_conf conf = {
	.sender = "no-reply@portal.test",
	.sender_name = "Secure Mail",
	.base_url = "https://portal.test",
	.template_dir = NULL,
	.hostname = "portal.test",
};

static int
setup(void **state)
{
	(void)state;
	g_mime_init();
	return 0;
}

/* Control characters in a value: dropped, never a line break. */
static void
test_put_value_controls(void **state)
{
	struct notify_vars v = { 0 };
	char *s;

	(void)state;
	v.rcpt = "bob@example.org\r\nBcc: evil@x.test";
	v.link = "https://portal.test/login\x1b[2J\x07";
	s = notify_expand("[{{recipient}}]\n[{{link}}]", &conf, &v, 0);
	assert_non_null(s);
	assert_string_equal(s, "[bob@example.orgBcc: evil@x.test]\n"
	    "[https://portal.test/login[2J]");
	free(s);
	/* The same in HTML, with markup escaped. */
	v.rcpt = "<b>bob</b>\r\n\x01\"'&";
	s = notify_expand("{{recipient}}", &conf, &v, 1);
	assert_string_equal(s, "&lt;b&gt;bob&lt;/b&gt;&quot;&#39;&amp;");
	free(s);
	/* NUL cannot occur in a C string; invalid UTF-8 becomes U+FFFD. */
	v.rcpt = "a\xff" "b";
	s = notify_expand("{{recipient}}", &conf, &v, 0);
	assert_string_equal(s, "a\xef\xbf\xbd" "b");
	free(s);
}

static void
test_sections(void **state)
{
	struct notify_vars v = { 0 };
	const char *t = "A{{#sender}}S={{sender}}{{/sender}}"
	    "{{#subject}}T={{subject}}{{/subject}}"
	    "{{#details}}D{{/details}}{{unknown}}Z";
	char *s;

	(void)state;
	v.orig_from = "Alice <alice@example.com>";
	v.orig_subject = "Hi";
	s = notify_expand(t, &conf, &v, 0);
	assert_string_equal(s, "A{{unknown}}Z");
	free(s);
	v.show_sender = 1;
	s = notify_expand(t, &conf, &v, 0);
	assert_string_equal(s, "AS=Alice <alice@example.com>{{unknown}}Z");
	free(s);
	v.show_sender = 0;
	v.show_details = 1;
	s = notify_expand(t, &conf, &v, 0);
	assert_string_equal(s, "AT=HiD{{unknown}}Z");
	free(s);
}

static void
test_expand_bounded(void **state)
{
	struct notify_vars v = { 0 };
	char *big, *s;

	(void)state;
	big = malloc(NOTIFY_BODY_MAX + 2);
	memset(big, 'x', NOTIFY_BODY_MAX + 1);
	big[NOTIFY_BODY_MAX + 1] = '\0';
	v.rcpt = big;
	assert_null(notify_expand("{{recipient}}", &conf, &v, 0));
	big[NOTIFY_BODY_MAX] = '\0';
	s = notify_expand("{{recipient}}", &conf, &v, 0);
	assert_non_null(s);
	assert_int_equal(strlen(s), NOTIFY_BODY_MAX);
	free(s);
	free(big);
}

static void
test_sender_text(void **state)
{
	static const struct { const char *raw, *want; } c[] = {
		{ "Alice Example <alice@example.com>",
		    "Alice Example <alice@example.com>" },
		{ "alice@example.com", "alice@example.com" },
		{ "\"alice@example.com\" <alice@example.com>",
		    "alice@example.com" },
		/* RFC 2047, decoded. */
		{ "=?UTF-8?B?SsO8cmdlbiBNw7xsbGVy?= <j@example.de>",
		    "J\xc3\xbcrgen M\xc3\xbcller <j@example.de>" },
		/* An encoded CR LF cannot break the line or add a field. */
		{ "=?UTF-8?Q?Eve=0D=0ABcc=3A_x=40evil.test?= <eve@evil.test>",
		    "EveBcc: x@evil.test <eve@evil.test>" },
		/* Controls, bidi overrides and zero-width characters go. */
		{ "=?UTF-8?Q?Ev=1B=5B31me=E2=80=AEgnp.exe?= <eve@evil.test>",
		    "Ev[31megnp.exe <eve@evil.test>" },
		{ "=?UTF-8?Q?Ba=E2=80=8Bnk?= <eve@evil.test>",
		    "Bank <eve@evil.test>" },
		/* A name cannot forge an address in angle brackets. */
		{ "\"Bank <support@bank.example>\" <eve@evil.test>",
		    "Bank support@bank.example <eve@evil.test>" },
		/* Markup stays text here; HTML escaping is the template's. */
		{ "\"<script>x</script>\" <eve@evil.test>",
		    "scriptx/script <eve@evil.test>" },
		{ "undisclosed-recipients:;", NULL },
		{ "", NULL },
	};
	char *s;

	(void)state;
	for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		s = notify_sender_text(c[i].raw);
		if (c[i].want == NULL)
			assert_null(s);
		else {
			assert_non_null(s);
			assert_string_equal(s, c[i].want);
		}
		free(s);
	}
}

static void
test_sender_name_bounded(void **state)
{
	char raw[4096], *s, *lt;

	(void)state;
	memset(raw, 'N', 3000);
	snprintf(raw + 3000, sizeof(raw) - 3000, " <eve@evil.test>");
	s = notify_sender_text(raw);
	assert_non_null(s);
	lt = strstr(s, " <eve@evil.test>");
	assert_non_null(lt);
	assert_true((size_t)(lt - s) <= NOTIFY_NAME_MAX);
	/* Cut visibly. */
	assert_memory_equal(lt - 3, "\xe2\x80\xa6", 3);
	free(s);
	/* An address too long to be one is not shown at all. */
	snprintf(raw, sizeof(raw), "Eve <%0300d@evil.test>", 0);
	assert_null(notify_sender_text(raw));
}

/* Builds a notification and returns its bytes (caller frees). */
static char *
build(const struct notify_vars *v)
{
	char *out = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&out, &len);

	assert_non_null(f);
	assert_int_equal(notify_build(&conf, NOTIFY_NEWMSG, v, f), 0);
	fclose(f);
	return out;
}

/* The decoded text/plain part of a built notification. */
static char *
plain_part(const char *raw)
{
	GMimeStream *st = g_mime_stream_mem_new_with_buffer(raw, strlen(raw));
	GMimeParser *p = g_mime_parser_new_with_stream(st);
	GMimeMessage *m = g_mime_parser_construct_message(p, NULL);
	GMimeObject *body;
	char *text;

	assert_non_null(m);
	body = g_mime_message_get_mime_part(m);
	text = g_mime_text_part_get_text(GMIME_TEXT_PART(
	    g_mime_multipart_get_part(GMIME_MULTIPART(body), 0)));
	g_object_unref(m);
	g_object_unref(p);
	g_object_unref(st);
	return text;
}

static void
test_build_sender_property(void **state)
{
	struct notify_vars v = { 0 };
	char *raw, *text;

	(void)state;
	v.rcpt = "bob@example.org";
	v.link = "https://portal.test/login";
	v.orig_from = "=?UTF-8?Q?Alice_=C3=85?= <alice@example.com>";
	v.orig_subject = "Quarterly numbers";
	v.show_sender = 1;
	raw = build(&v);
	text = plain_part(raw);
	assert_non_null(strstr(text, "\nFrom: Alice \xc3\x85 "
	    "<alice@example.com>\r\n"));
	assert_null(strstr(text, "Quarterly"));
	assert_null(strstr(raw, "Quarterly"));
	/* The HTML part escapes the angle brackets. */
	assert_non_null(strstr(raw, "&lt;alice@example.com&gt;"));
	g_free(text);
	free(raw);

	v.show_sender = 0;
	raw = build(&v);
	text = plain_part(raw);
	assert_null(strstr(text, "From:"));
	assert_null(strstr(raw, "alice@example.com"));
	assert_null(strstr(raw, "Alice"));
	g_free(text);
	free(raw);

	/* Subject only with show_details, and never a line break. */
	v.show_details = 1;
	v.orig_subject = "=?UTF-8?Q?Q3=0D=0ABcc=3A_evil=40x.test?=";
	raw = build(&v);
	assert_non_null(strstr(raw, "Subject: Secure message: Q3Bcc: "
	    "evil@x.test\r\n"));
	assert_null(strstr(raw, "\r\nBcc:"));
	free(raw);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_put_value_controls),
		cmocka_unit_test(test_sections),
		cmocka_unit_test(test_expand_bounded),
		cmocka_unit_test(test_sender_text),
		cmocka_unit_test(test_sender_name_bounded),
		cmocka_unit_test(test_build_sender_property),
	};

	return cmocka_run_group_tests(tests, setup, NULL);
}
