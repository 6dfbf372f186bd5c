/*
 * libFuzzer: the 16-digit base64 block decoder (shared/b64.c). The input
 * is mail body bytes. What it consumed, line breaks removed, must be whole
 * groups of digits whose OpenSSL decoding is its output; decoding in
 * place must give the same bytes; buffers are exactly n bytes, so ASan
 * sees any load or store outside them.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "b64.h"

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t n)
{
	unsigned char *in, *out, *digits, *want, *self;
	size_t used, got, used2, got2, nd = 0;

	if (n == 0)
		return 0;
	in = malloc(n);
	out = malloc(n);
	self = malloc(n);
	digits = malloc(n);
	want = malloc(n);
	memcpy(in, data, n);
	got = b64_decode_blocks(in, n, out, &used);
	if (used > n || got > used / 4 * 3)
		abort();
	for (size_t i = 0; i < used; i++) {
		if (in[i] == '\r' || in[i] == '\n')
			continue;
		if (strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
		    "0123456789+/", in[i]) == NULL || in[i] == '\0')
			abort();
		digits[nd++] = in[i];
	}
	if (nd % 4 != 0 || got != nd / 4 * 3)
		abort();
	if (nd > 0 && (EVP_DecodeBlock(want, digits, (int)nd) != (int)got ||
	    memcmp(want, out, got) != 0))
		abort();
	memcpy(self, data, n);
	got2 = b64_decode_blocks(self, n, self, &used2);
	if (used2 != used || got2 != got || memcmp(self, out, got) != 0)
		abort();
	free(in);
	free(out);
	free(self);
	free(digits);
	free(want);
	return 0;
}
