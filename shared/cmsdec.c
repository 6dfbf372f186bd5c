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
#include <stdio.h>
#include <stdlib.h>

#include <openssl/bio.h>
#include <openssl/cms.h>
#include <openssl/err.h>
#include <openssl/evp.h>

#include "cmsdec.h"
#include "log.h"

#define CMSDEC_CHUNK	16384

int
cmsdec_unbase64(FILE *in, int b64, FILE *out)
{
	/* 4 base64 bytes make 3: a full input chunk fits the output one. */
	unsigned char ib[CMSDEC_CHUNK], ob[CMSDEC_CHUNK];
	EVP_ENCODE_CTX *ctx = NULL;
	size_t n;
	int ol, rc = CMSDEC_OK;

	if (b64) {
		if ((ctx = EVP_ENCODE_CTX_new()) == NULL)
			fatalx("cmsdec: EVP_ENCODE_CTX_new");
		EVP_DecodeInit(ctx);
	}
	while (rc == CMSDEC_OK && (n = fread(ib, 1, sizeof(ib), in)) > 0) {
		if (ctx == NULL) {
			if (fwrite(ib, 1, n, out) != n)
				rc = CMSDEC_LOCAL;
			continue;
		}
		if (EVP_DecodeUpdate(ctx, ob, &ol, ib, (int)n) < 0)
			rc = CMSDEC_BAD;
		else if (fwrite(ob, 1, (size_t)ol, out) != (size_t)ol)
			rc = CMSDEC_LOCAL;
	}
	if (rc == CMSDEC_OK && ctx != NULL) {
		if (EVP_DecodeFinal(ctx, ob, &ol) < 0)
			rc = CMSDEC_BAD;
		else if (fwrite(ob, 1, (size_t)ol, out) != (size_t)ol)
			rc = CMSDEC_LOCAL;
	}
	EVP_ENCODE_CTX_free(ctx);
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
