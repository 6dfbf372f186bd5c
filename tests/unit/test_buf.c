/*
 * The bounded buffer (shared/buf.c) and the one UTF-8 validator and
 * escaper (shared/text.c).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "buf.h"
#include "text.h"

static void
test_put_within_max(void **state)
{
	struct buf b;
	char *s;

	(void)state;
	buf_init(&b, 8);
	assert_int_equal(buf_puts(&b, "abc"), 0);
	assert_int_equal(buf_put_u8(&b, 'd'), 0);
	assert_int_equal(buf_putf(&b, "%d%s", 12, "34"), 0);
	assert_int_equal(b.len, 8);
	assert_string_equal(b.data, "abcd1234");
	assert_false(buf_full(&b));
	s = buf_finish(&b);
	assert_string_equal(s, "abcd1234");
	free(s);
	/* finish empties the buffer and keeps the maximum. */
	assert_int_equal(b.len, 0);
	assert_null(b.data);
	assert_int_equal(buf_max(&b), 8);
	s = buf_finish(&b);
	assert_string_equal(s, "");
	free(s);
}

/*
 * buf_putf formats into the room there is, and formats again when the
 * output is longer: both give the whole text; buf_reserve makes the room
 * in one step and refuses past the maximum.
 */
static void
test_putf_room_and_growth(void **state)
{
	struct buf b;
	char want[2048];

	(void)state;
	buf_init(&b, 4096);
	assert_int_equal(buf_reserve(&b, 100), 0);
	assert_true(b.cap >= 101);
	assert_int_equal(b.len, 0);
	assert_int_equal(buf_putf(&b, "%s-%d", "ab", 42), 0);
	assert_string_equal(b.data, "ab-42");
	memset(want, 'x', sizeof(want) - 1);
	want[sizeof(want) - 1] = '\0';
	/* Longer than the room left: measured and formatted again. */
	assert_int_equal(buf_putf(&b, "%s", want), 0);
	assert_int_equal(b.len, 5 + sizeof(want) - 1);
	assert_memory_equal(b.data + 5, want, sizeof(want) - 1);
	assert_int_equal(b.data[b.len], '\0');
	/* Past the maximum: refused, the contents and the NUL unchanged. */
	assert_int_equal(buf_putf(&b, "%s", want), -1);
	assert_int_equal(b.len, 5 + sizeof(want) - 1);
	assert_int_equal(b.data[b.len], '\0');
	assert_true(buf_full(&b));
	assert_int_equal(buf_reserve(&b, 4096), -1);
	buf_free(&b);
}

static void
test_put_past_max_leaves_buffer_unchanged(void **state)
{
	struct buf b;

	(void)state;
	buf_init(&b, 10);
	assert_int_equal(buf_puts(&b, "12345678"), 0);
	/* Every kind of put past the maximum fails and changes nothing. */
	assert_int_equal(buf_puts(&b, "abc"), -1);
	assert_int_equal(buf_putf(&b, "%s", "xyz"), -1);
	assert_int_equal(buf_put(&b, "0123456789ab", 12), -1);
	assert_int_equal(b.len, 8);
	assert_string_equal(b.data, "12345678");
	assert_true(buf_full(&b));
	assert_true(b.cap <= 11);
	/* Up to the maximum exactly still fits. */
	assert_int_equal(buf_puts(&b, "90"), 0);
	assert_int_equal(buf_put_u8(&b, 'x'), -1);
	assert_string_equal(b.data, "1234567890");
	buf_free(&b);
	assert_false(buf_full(&b));
	assert_int_equal(buf_max(&b), 10);
	assert_int_equal(buf_put(&b, "0123456789a", 11), -1);
	assert_int_equal(b.len, 0);
	buf_free(&b);
}

static void
test_default_max(void **state)
{
	struct buf b = { 0 };
	char *big;

	(void)state;
	assert_int_equal(buf_max(&b), BUF_MAX_DEFAULT);
	big = malloc(BUF_MAX_DEFAULT + 1);
	assert_non_null(big);
	memset(big, 'a', BUF_MAX_DEFAULT + 1);
	assert_int_equal(buf_put(&b, big, BUF_MAX_DEFAULT + 1), -1);
	assert_int_equal(b.len, 0);
	assert_int_equal(buf_put(&b, big, BUF_MAX_DEFAULT), 0);
	assert_int_equal(b.len, BUF_MAX_DEFAULT);
	free(big);
	buf_free(&b);
}

static void
test_get(void **state)
{
	struct buf b;
	char out[4];
	uint8_t c;

	(void)state;
	buf_init(&b, 0);
	assert_int_equal(buf_puts(&b, "hello"), 0);
	assert_int_equal(buf_get_u8(&b, &c), 0);
	assert_int_equal(c, 'h');
	assert_int_equal(buf_get(&b, out, 3), 0);
	assert_memory_equal(out, "ell", 3);
	assert_string_equal(b.data, "o");
	/* Asking for more than is held fails and changes nothing. */
	assert_int_equal(buf_get(&b, out, 2), -1);
	assert_string_equal(b.data, "o");
	assert_int_equal(buf_get(&b, NULL, 1), 0);
	assert_int_equal(b.len, 0);
	assert_int_equal(buf_get_u8(&b, &c), -1);
	buf_free(&b);
}

static void
test_utf8(void **state)
{
	static const struct { const char *s; size_t len; int ok; } c[] = {
		{ "plain", 5, 1 },
		{ "caf\xc3\xa9", 5, 1 },
		{ "\xf0\x9f\x93\x8e", 4, 1 },		/* U+1F4CE */
		{ "\xf4\x8f\xbf\xbf", 4, 1 },		/* U+10FFFF */
		{ "\xf4\x90\x80\x80", 4, 0 },		/* past U+10FFFF */
		{ "\xc0\xbc", 2, 0 },			/* overlong '<' */
		{ "\xe0\x80\xbc", 3, 0 },		/* overlong '<' */
		{ "\xed\xa0\x80", 3, 0 },		/* surrogate */
		{ "\xc3", 1, 0 },			/* cut short */
		{ "\x80", 1, 0 },			/* lone continuation */
		{ "\xff", 1, 0 },
		{ "a\0b", 3, 0 },			/* NUL */
	};
	unsigned int cp;

	(void)state;
	for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++)
		assert_int_equal(text_utf8_valid(c[i].s, c[i].len), c[i].ok);
	assert_int_equal(text_utf8_next("\xe2\x82\xac", 3, &cp), 3);
	assert_int_equal(cp, 0x20ac);
	/* Never looks past len. */
	assert_int_equal(text_utf8_next("\xe2\x82\xac", 2, &cp), 0);
	assert_int_equal(text_utf8_next("", 0, &cp), 0);
}

static void
test_escape(void **state)
{
	static const struct {
		const char *in;
		int flags;
		const char *want;
	} c[] = {
		{ "<b a='1'>\"&\"</b>", TEXT_ESC_HTML,
		    "&lt;b a=&#39;1&#39;&gt;&quot;&amp;&quot;&lt;/b&gt;" },
		{ "<b>", 0, "<b>" },
		{ "a\tb\r\nc", 0, "a\tb\r\nc" },
		{ "a\tb\r\nc", TEXT_ESC_LINE, "a bc" },
		{ "ctl\x01\x1b[31m\x7f", 0, "ctl[31m" },
		{ "c1\xc2\x85\xc2\x9b", 0, "c1\xc2\x85\xc2\x9b" },
		{ "c1\xc2\x85\xc2\x9b", TEXT_ESC_LINE, "c1" },
		{ "bad\xff", 0, "bad\xef\xbf\xbd" },
		{ "rlo\xe2\x80\xae" "fdp.exe", TEXT_ESC_NOBIDI, "rlofdp.exe" },
		{ "zw\xe2\x80\x8b" "j\xef\xbb\xbf", TEXT_ESC_NOBIDI, "zwj" },
		{ "rlo\xe2\x80\xae", 0, "rlo\xe2\x80\xae" },
		/* Specials and controls at every place of a 4-byte stride. */
		{ "abcdefg<hijklm&nopqr\"stuv'", TEXT_ESC_HTML,
		    "abcdefg&lt;hijklm&amp;nopqr&quot;stuv&#39;" },
		{ "abcdefg<hijklm&nopqr\"stuv'", 0,
		    "abcdefg<hijklm&nopqr\"stuv'" },
		{ "abcd\x7f" "efgh\x01ij\xc3\xa9klmno~", TEXT_ESC_HTML,
		    "abcdefghij\xc3\xa9klmno~" },
	};
	struct buf b;

	(void)state;
	for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		buf_init(&b, 0);
		assert_int_equal(text_escape(&b, c[i].in, strlen(c[i].in),
		    c[i].flags), 0);
		assert_string_equal(b.data ? b.data : "", c[i].want);
		buf_free(&b);
	}
	/* NUL inside the input becomes U+FFFD. */
	buf_init(&b, 0);
	assert_int_equal(text_escape(&b, "a\0b", 3, 0), 0);
	assert_string_equal(b.data, "a\xef\xbf\xbd" "b");
	buf_free(&b);
}

static void
test_escape_bounded(void **state)
{
	struct buf b;

	(void)state;
	/* The output stops at the maximum, at a whole reference. */
	buf_init(&b, 7);
	assert_int_equal(text_escape(&b, "a<b<c", 5, TEXT_ESC_HTML), -1);
	assert_string_equal(b.data, "a&lt;b");
	assert_true(buf_full(&b));
	buf_free(&b);
	/* And at a whole character. */
	buf_init(&b, 4);
	assert_int_equal(text_escape(&b, "ab\xc3\xa9\xc3\xa9", 6, 0), -1);
	assert_true(b.len <= 4);
	assert_true(text_utf8_valid(b.data, b.len));
	buf_free(&b);
}

static void
test_truncate(void **state)
{
	char s[64];

	(void)state;
	strcpy(s, "short");
	text_truncate(s, 5);
	assert_string_equal(s, "short");
	strcpy(s, "abcdefgh");
	text_truncate(s, 6);
	assert_string_equal(s, "abc\xe2\x80\xa6");
	/* Never cuts a character in two. */
	strcpy(s, "a\xc3\xa9\xc3\xa9\xc3\xa9");
	text_truncate(s, 6);
	assert_string_equal(s, "a\xc3\xa9\xe2\x80\xa6");
	assert_true(strlen(s) <= 6);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_put_within_max),
		cmocka_unit_test(test_putf_room_and_growth),
		cmocka_unit_test(test_put_past_max_leaves_buffer_unchanged),
		cmocka_unit_test(test_default_max),
		cmocka_unit_test(test_get),
		cmocka_unit_test(test_utf8),
		cmocka_unit_test(test_escape),
		cmocka_unit_test(test_escape_bounded),
		cmocka_unit_test(test_truncate),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
