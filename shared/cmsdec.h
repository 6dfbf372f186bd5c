/*
 * Decrypting S/MIME enveloped data from files with flat memory, for both
 * nodes (internal-gw's inbound S/MIME, the portal's add-on tunnel). The
 * three steps: the base64 body of the application/pkcs7-mime entity is
 * decoded into a DER file; cmsskel splits that into a small skeleton and
 * the ciphertext (a second file); OpenSSL parses only the skeleton, the
 * caller sets the content key on it (a key holder unwrapped it), and the
 * ciphertext is decrypted as detached content from its file, a chunk at a
 * time, into the output file.
 */
#ifndef POSTERN_CMSDEC_H
#define POSTERN_CMSDEC_H

#include <stddef.h>
#include <stdio.h>

#include <openssl/cms.h>

#include "cmsskel.h"

#define CMSDEC_OK	0
#define CMSDEC_LOCAL	(-1)	/* I/O failure: try again later */
#define CMSDEC_BAD	(-2)	/* malformed input, or it does not decrypt */

/*
 * Decodes the rest of in (base64 when b64, else copied as it is) into out.
 * CMSDEC_OK, CMSDEC_LOCAL or CMSDEC_BAD (bad base64).
 */
int	cmsdec_unbase64(FILE *in, int b64, FILE *out);

/*
 * The skeleton as an OpenSSL ContentInfo without content, with every
 * RecipientInfo (only < 0) or only number only. NULL when OpenSSL
 * does not accept it.
 */
CMS_ContentInfo *cmsdec_skeleton(const struct cmsskel *, long only);

/*
 * Decrypts the ciphertext in content (from the start) with the content
 * key already set on cms (CMS_decrypt_set1_key, CMS_decrypt_set1_pkey)
 * into out, streaming. A padding or tag that does not check out is
 * CMSDEC_BAD; out then holds partial plaintext the caller discards. err
 * says why on failure.
 */
int	cmsdec_content(CMS_ContentInfo *, FILE *content, FILE *out, char *err,
	    size_t errlen);

#endif
