/*
 * Streaming decryption of enveloped CMS from files (see cmsdec.h).
 *
 * SECURITY: the input is peer data (Internet mail on the gateway, DMZ
 * mail on the portal). The base64 decoder is OpenSSL's, fed fixed-size
 * chunks; the structure is split by the bounded cmsskel walker before
 * OpenSSL sees it, so OpenSSL parses at most CMSSKEL_MAX_SKEL bytes; the
 * ciphertext is only ever run through the cipher, never parsed. A failed
 * decryption leaves partial plaintext in the output, which the callers
 * drop.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/cms.h>
#include <openssl/err.h>
#include <openssl/evp.h>

#include "cmsdec.h"
#include "log.h"

#define CMSDEC_CHUNK	16384

/* base64 digit values; 64 for white space, 65 for '=', 66 for others. */
static unsigned char cmsdec_b64_val[256];
static pthread_once_t cmsdec_b64_once = PTHREAD_ONCE_INIT;

static void
cmsdec_b64_init(void)
{
	static const char digits[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

	memset(cmsdec_b64_val, 66, sizeof(cmsdec_b64_val));
	for (int i = 0; i < 64; i++)
		cmsdec_b64_val[(unsigned char)digits[i]] = (unsigned char)i;
	cmsdec_b64_val[' '] = cmsdec_b64_val['\t'] = 64;
	cmsdec_b64_val['\r'] = cmsdec_b64_val['\n'] = 64;
	cmsdec_b64_val['='] = 65;
}

/*
 * A streaming base64 decoder: white space anywhere, '=' padding only at
 * the end (then only white space or more '='); anything else is bad.
 */
struct cmsdec_b64 {
	unsigned int	 acc;		/* bits of the pending digits */
	int		 n;		/* pending digits, 0-3 */
	int		 pad;		/* '=' seen */
};

/* Decodes len bytes of in into out (room for len * 3 / 4 + 3); -1: bad. */
static long
cmsdec_b64_update(struct cmsdec_b64 *d, const unsigned char *in, size_t len,
    unsigned char *out)
{
	unsigned char *o = out, v;

	for (size_t i = 0; i < len; i++) {
		if ((v = cmsdec_b64_val[in[i]]) < 64) {
			if (d->pad)
				return -1;
			d->acc = d->acc << 6 | v;
			if (++d->n == 4) {
				*o++ = (unsigned char)(d->acc >> 16);
				*o++ = (unsigned char)(d->acc >> 8);
				*o++ = (unsigned char)d->acc;
				d->acc = 0;
				d->n = 0;
			}
		} else if (v == 65) {
			if (d->n < 2)
				return -1;
			d->pad = 1;
		} else if (v != 64)
			return -1;
	}
	return o - out;
}

/* The last 1 or 2 bytes of a padded group; -1 when a group is cut. */
static long
cmsdec_b64_final(struct cmsdec_b64 *d, unsigned char *out)
{
	switch (d->n) {
	case 0:
		return 0;
	case 2:
		out[0] = (unsigned char)(d->acc >> 4);
		return 1;
	case 3:
		out[0] = (unsigned char)(d->acc >> 10);
		out[1] = (unsigned char)(d->acc >> 2);
		return 2;
	default:
		return -1;
	}
}

/*
 * Table-driven base64 (OpenSSL's EVP decoder costs a fifth of an inbound
 * decryption): the rest of in decoded, or copied when b64 is 0, to out.
 */
int
cmsdec_unbase64(FILE *in, int b64, FILE *out)
{
	unsigned char ib[CMSDEC_CHUNK], ob[CMSDEC_CHUNK];
	struct cmsdec_b64 d;
	size_t n;
	long ol;
	int rc = CMSDEC_OK;

	pthread_once(&cmsdec_b64_once, cmsdec_b64_init);
	memset(&d, 0, sizeof(d));
	while ((n = fread(ib, 1, sizeof(ib), in)) > 0) {
		if (!b64) {
			if (fwrite(ib, 1, n, out) != n)
				rc = CMSDEC_LOCAL;
			continue;
		}
		if ((ol = cmsdec_b64_update(&d, ib, n, ob)) < 0) {
			rc = CMSDEC_BAD;
			break;
		}
		if (fwrite(ob, 1, (size_t)ol, out) != (size_t)ol)
			rc = CMSDEC_LOCAL;
	}
	if (rc == CMSDEC_OK && b64) {
		if ((ol = cmsdec_b64_final(&d, ob)) < 0)
			rc = CMSDEC_BAD;
		else if (fwrite(ob, 1, (size_t)ol, out) != (size_t)ol)
			rc = CMSDEC_LOCAL;
	}
	if (ferror(in) || fflush(out) == EOF || ferror(out))
		rc = CMSDEC_LOCAL;
	return rc;
}

CMS_ContentInfo *
cmsdec_skeleton(const struct cmsskel *sk, long only)
{
	CMS_ContentInfo *cms;
	const unsigned char *q;
	unsigned char *der;
	size_t len;

	cmsskel_der(sk, only, &der, &len);
	q = der;
	cms = d2i_CMS_ContentInfo(NULL, &q, (long)len);
	free(der);
	ERR_clear_error();
	return cms;
}

int
cmsdec_content(CMS_ContentInfo *cms, FILE *content, FILE *out, char *err,
    size_t errlen)
{
	BIO *in = NULL, *ob = NULL;
	const char *r;
	int rc = CMSDEC_BAD;

	if (fflush(content) == EOF || fseek(content, 0, SEEK_SET) == -1) {
		snprintf(err, errlen, "cannot read the encrypted content");
		return CMSDEC_LOCAL;
	}
	if ((in = BIO_new_fp(content, BIO_NOCLOSE)) == NULL ||
	    (ob = BIO_new_fp(out, BIO_NOCLOSE)) == NULL)
		fatalx("cmsdec: BIO_new_fp");
	/* No key given: the one set on cms decrypts the detached content. */
	if (!CMS_decrypt(cms, NULL, NULL, in, ob, CMS_BINARY)) {
		r = ERR_reason_error_string(ERR_peek_last_error());
		snprintf(err, errlen, "decryption failed: %s", r != NULL ? r :
		    "bad content");
		goto out;
	}
	if (BIO_flush(ob) != 1 || fflush(out) == EOF || ferror(out)) {
		snprintf(err, errlen, "cannot write the plaintext");
		rc = CMSDEC_LOCAL;
		goto out;
	}
	rc = CMSDEC_OK;
out:
	ERR_clear_error();
	BIO_free(in);
	BIO_free(ob);
	return rc;
}
