/*
 * S/MIME (RFC 8551) signing and encryption of whole messages. The outer
 * header fields (From, To, Subject, ...) stay outside; the Content-* fields
 * and the body become the signed or enveloped entity. Private keys are
 * reached only through the key holder (keyd.h).
 */
#ifndef POSTERN_SMIME_H
#define POSTERN_SMIME_H

#include <stddef.h>
#include <stdio.h>

#include <openssl/x509.h>

#include "keyd.h"

/*
 * Both stream: the message passes through anonymous temporary files in
 * tmpdir (the spool), so memory stays flat whatever its size.
 *
 * Reads a message (CRLF lines) from in and writes it to out as
 * multipart/signed (SHA-256, detached signature made by the key holder as
 * signer from the digest, for purpose: user mail or the portal tunnel;
 * msgid is the message's log id for keyd's log). 8-bit and binary content is transfer-encoded to
 * 7 bit first so the signed bytes survive transport. Returns 0, or -1 with
 * a reason in err (no key for the signer, key holder gone, malformed
 * message, I/O).
 */
int	smime_sign(struct keyd_client *, const char *signer,
	    enum keyd_purpose, const char *msgid, FILE *in, FILE *out,
	    const char *tmpdir, char *err, size_t errlen);

/*
 * Reads a message from in and writes it to out as application/pkcs7-mime
 * enveloped-data (AES-256-CBC), one RecipientInfo per certificate. The
 * entity is copied byte for byte, so a signed message stays verifiable
 * (sign, then encrypt). Returns 0, or -1 with a reason in err.
 */
int	smime_encrypt(X509 *const *certs, size_t ncerts, FILE *in, FILE *out,
	    const char *tmpdir, char *err, size_t errlen);

#endif
