/*
 * libFuzzer target for the inbound S/MIME parser: the CMS skeleton walker
 * (cmsskel.c) on arbitrary bytes, then OpenSSL on the skeleton it
 * rebuilds, as the SMTP worker does before asking keyd for a key.
 * Invariants: no read past the input, no crash, a skeleton within its
 * limits, and every rebuilt skeleton (all recipients, or one) is DER
 * that OpenSSL either parses or refuses cleanly.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <openssl/cms.h>
#include <openssl/err.h>

#include "cmsskel.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cmsskel sk;
	const char *why;
	unsigned char *der;
	const unsigned char *q;
	size_t len;
	CMS_ContentInfo *cms;

	if (cmsskel_read_mem(data, size, 64, &sk, &why) == 0 &&
	    (sk.type == CMSSKEL_ENVELOPED ||
	    sk.type == CMSSKEL_AUTH_ENVELOPED)) {
		if (sk.nri > 64 || sk.pre.len + sk.ris.len + sk.post.len >
		    CMSSKEL_MAX_SKEL)
			abort();
		for (long i = -1; i < (long)sk.nri && i < 2; i++) {
			cmsskel_der(&sk, i, &der, &len);
			q = der;
			cms = d2i_CMS_ContentInfo(NULL, &q, (long)len);
			CMS_ContentInfo_free(cms);
			free(der);
		}
	}
	cmsskel_free(&sk);
	ERR_clear_error();
	return 0;
}
