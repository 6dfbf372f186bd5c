/*
 * Base64 decoding, 16 digits at a time with SSSE3 (see b64.h).
 *
 * SECURITY: the input is mail from any sender. Every byte of a block is
 * checked to be a base64 digit (two nibble table lookups, as the classic
 * SIMD decoders do); only the whole groups of four before the first
 * other byte are kept. A line break between groups is skipped, any other
 * byte ends the run and is left to the caller's scalar decoder. Loads
 * and stores stay inside the n bytes the caller gave (see b64.h).
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "b64.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>

__attribute__((target("ssse3")))
static size_t
b64_decode_ssse3(const unsigned char *in, size_t n, unsigned char *out,
    size_t *used)
{
	/*
	 * A byte is a digit when the flags of its low nibble and of its
	 * high nibble share no bit; bytes of 0x80 and above have a high
	 * nibble whose flag (0x10) every low nibble has.
	 */
	const __m128i lut_lo = _mm_setr_epi8(0x15, 0x11, 0x11, 0x11, 0x11,
	    0x11, 0x11, 0x11, 0x11, 0x11, 0x13, 0x1a, 0x1b, 0x1b, 0x1b, 0x1a);
	const __m128i lut_hi = _mm_setr_epi8(0x10, 0x10, 0x01, 0x02, 0x04,
	    0x08, 0x04, 0x08, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10);
	/* What to add to a digit to get its value, by high nibble ('/': 1). */
	const __m128i lut_roll = _mm_setr_epi8(0, 16, 19, 4, -65, -65, -71,
	    -71, 0, 0, 0, 0, 0, 0, 0, 0);
	const __m128i nib = _mm_set1_epi8(0x0f);
	const __m128i slash = _mm_set1_epi8(0x2f);
	const __m128i pack1 = _mm_set1_epi32(0x01400140);
	const __m128i pack2 = _mm_set1_epi32(0x00011000);
	const __m128i order = _mm_setr_epi8(2, 1, 0, 6, 5, 4, 10, 9, 8, 14,
	    13, 12, -1, -1, -1, -1);
	unsigned char tmp[16];
	size_t i = 0, o = 0;
	int bad, first;

	while (n - i >= 16) {
		__m128i s, hi, lo, v;

		s = _mm_loadu_si128((const __m128i *)(in + i));
		hi = _mm_and_si128(_mm_srli_epi32(s, 4), nib);
		lo = _mm_and_si128(s, nib);
		bad = _mm_movemask_epi8(_mm_cmpgt_epi8(_mm_and_si128(
		    _mm_shuffle_epi8(lut_lo, lo), _mm_shuffle_epi8(lut_hi, hi)),
		    _mm_setzero_si128()));
		v = _mm_add_epi8(s, _mm_shuffle_epi8(lut_roll,
		    _mm_add_epi8(_mm_cmpeq_epi8(s, slash), hi)));
		/* Four 6-bit values to one 24-bit group, then bytes in order. */
		v = _mm_madd_epi16(_mm_maddubs_epi16(v, pack1), pack2);
		v = _mm_shuffle_epi8(v, order);
		if (bad == 0) {
			_mm_storeu_si128((__m128i *)(out + o), v);
			i += 16;
			o += 12;
			continue;
		}
		/*
		 * The groups before the first other byte are good (a lane's
		 * garbage stays in its group); only their bytes are stored,
		 * so nothing lands on digits not yet read.
		 */
		first = __builtin_ctz((unsigned)bad);
		if (first >= 4) {
			_mm_storeu_si128((__m128i *)tmp, v);
			memcpy(out + o, tmp, first / 4 * 3);
			i += first / 4 * 4;
			o += first / 4 * 3;
		}
		/* A line break between groups is skipped; anything else ends. */
		if (first % 4 != 0 || (in[i] != '\r' && in[i] != '\n'))
			break;
		while (i < n && (in[i] == '\r' || in[i] == '\n'))
			i++;
	}
	*used = i;
	return o;
}
#endif

size_t
b64_decode_blocks(const unsigned char *in, size_t n, unsigned char *out,
    size_t *used)
{
#if defined(__x86_64__) || defined(__i386__)
	if (__builtin_cpu_supports("ssse3"))
		return b64_decode_ssse3(in, n, out, used);
#endif
	(void)in;
	(void)n;
	(void)out;
	*used = 0;
	return 0;
}
