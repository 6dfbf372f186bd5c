/*
 * The 16-digit block decoder of base64 (shared/b64.c) against OpenSSL's
 * decoder: what it decodes, where it stops, and decoding in place.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <openssl/evp.h>

#include "b64.h"

static const char test_b64_digits[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* Without SSSE3 the decoder takes nothing and the callers do it all. */
static int
test_b64_have_simd(void)
{
#if defined(__x86_64__) || defined(__i386__)
	return __builtin_cpu_supports("ssse3");
#else
	return 0;
#endif
}

/* Every digit in every position of many blocks: OpenSSL's bytes. */
static void
test_b64_blocks_match_openssl(void **state)
{
	unsigned char in[64 * 16], out[sizeof(in)], want[sizeof(in)];
	size_t used, n;

	(void)state;
	if (!test_b64_have_simd())
		skip();
	srandom(7);
	for (int round = 0; round < 200; round++) {
		for (size_t i = 0; i < sizeof(in); i++)
			in[i] = test_b64_digits[(i * 7 + round +
			    (random() & 1 ? 0 : random())) % 64];
		n = b64_decode_blocks(in, sizeof(in), out, &used);
		assert_int_equal(used, sizeof(in));
		assert_int_equal(n, sizeof(in) / 4 * 3);
		assert_int_equal(EVP_DecodeBlock(want, in, sizeof(in)),
		    (int)n);
		assert_memory_equal(out, want, n);
	}
}

/* Any other byte ends the run before its group; a short tail too. */
static void
test_b64_stops_before_other_bytes(void **state)
{
	unsigned char in[48 + 15], out[sizeof(in)];
	size_t used, n;

	(void)state;
	if (!test_b64_have_simd())
		skip();
	for (int c = 0; c < 256; c++) {
		if ((c != 0 && strchr(test_b64_digits, c) != NULL) ||
		    c == '\r' || c == '\n')
			continue;
		for (size_t pos = 0; pos < 48; pos++) {
			memset(in, 'Q', sizeof(in));
			in[pos] = (unsigned char)c;
			n = b64_decode_blocks(in, sizeof(in), out, &used);
			assert_int_equal(used, pos / 4 * 4);
			assert_int_equal(n, pos / 4 * 3);
		}
	}
	/* 15 digits are not a block. */
	memset(in, 'Q', sizeof(in));
	assert_int_equal(b64_decode_blocks(in, 15, out, &used), 0);
	assert_int_equal(used, 0);
	assert_int_equal(b64_decode_blocks(in, sizeof(in), out, &used), 36);
	assert_int_equal(used, 48);
}

/*
 * Lines of 76 digits and CRLF (or LF) decode as the digits alone; the
 * run ends within the last 15 bytes. A line break inside a group ends it.
 */
static void
test_b64_lines(void **state)
{
	unsigned char in[20 * 78], digits[20 * 76], out[sizeof(in)];
	unsigned char want[sizeof(digits)];
	size_t used, n, len, nd;

	(void)state;
	if (!test_b64_have_simd())
		skip();
	for (int crlf = 0; crlf < 2; crlf++) {
		len = nd = 0;
		for (int line = 0; line < 20; line++) {
			for (int k = 0; k < 76; k++)
				in[len++] = digits[nd++] =
				    test_b64_digits[(line * 31 + k * 5) % 64];
			if (crlf)
				in[len++] = '\r';
			in[len++] = '\n';
		}
		EVP_DecodeBlock(want, digits, nd);
		n = b64_decode_blocks(in, len, out, &used);
		/* The last line's 64 digits are in, its 12 and the break not. */
		assert_int_equal(used, len - 12 - 1 - crlf);
		assert_int_equal(n, (nd - 12) / 4 * 3);
		assert_memory_equal(out, want, n);
	}
	/* A break after 74 digits: the run ends with the group it cuts. */
	memset(in, 'Q', sizeof(in));
	in[74] = '\n';
	n = b64_decode_blocks(in, sizeof(in), out, &used);
	assert_int_equal(used, 72);
	assert_int_equal(n, 54);
}

/* Decoding over the input itself gives the same bytes. */
static void
test_b64_in_place(void **state)
{
	unsigned char in[32 * 16 + 5], want[sizeof(in)];
	size_t used, n;

	(void)state;
	if (!test_b64_have_simd())
		skip();
	for (size_t i = 0; i < sizeof(in); i++)
		in[i] = test_b64_digits[(i * 13 + 5) % 64];
	in[sizeof(in) - 5] = '\r';
	EVP_DecodeBlock(want, in, 32 * 16);
	n = b64_decode_blocks(in, sizeof(in), in, &used);
	assert_int_equal(used, 32 * 16);
	assert_memory_equal(in, want, n);
	/* What was not consumed is untouched. */
	assert_int_equal(in[sizeof(in) - 5], '\r');
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_b64_blocks_match_openssl),
		cmocka_unit_test(test_b64_stops_before_other_bytes),
		cmocka_unit_test(test_b64_lines),
		cmocka_unit_test(test_b64_in_place),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
