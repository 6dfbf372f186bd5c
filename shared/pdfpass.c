/*
 * Password generator for encrypted PDFs; see pdfpass.h. Characters come
 * from OpenSSL's RNG by rejection sampling, so every character of the
 * alphabet is equally likely.
 */
#include <math.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "pdfpass.h"

int
pdfpass_generate(char *out, size_t outlen, size_t len)
{
	static const char alpha[] = PDFPASS_ALPHABET;
	const unsigned int n = sizeof(alpha) - 1;
	/* The largest multiple of n below 256: bytes past it are skipped. */
	const unsigned int lim = 256 - 256 % n;
	unsigned char rnd[64];
	size_t have = 0, i = 0;

	if (len < 16 || outlen <= len)
		return -1;
	while (have < len) {
		if (i == 0 && RAND_bytes(rnd, sizeof(rnd)) != 1) {
			OPENSSL_cleanse(out, outlen);
			return -1;
		}
		if (rnd[i] < lim)
			out[have++] = alpha[rnd[i] % n];
		i = (i + 1) % sizeof(rnd);
	}
	out[len] = '\0';
	OPENSSL_cleanse(rnd, sizeof(rnd));
	return 0;
}

double
pdfpass_bits(size_t len)
{
	return (double)len * log2((double)(sizeof(PDFPASS_ALPHABET) - 1));
}

void
pdfpass_group(const char *pw, char sep, char *out, size_t outlen)
{
	size_t o = 0;

	if (outlen == 0)
		return;
	for (size_t i = 0; pw[i] != '\0' && o + 1 < outlen; i++) {
		if (i > 0 && i % PDFPASS_GROUP == 0) {
			if (o + 2 >= outlen)
				break;
			out[o++] = sep;
		}
		out[o++] = pw[i];
	}
	out[o] = '\0';
}
