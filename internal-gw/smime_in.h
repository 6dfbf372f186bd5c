/*
 * Inbound S/MIME: decrypting (Auth)EnvelopedData with a content key that
 * the key holder unwraps, and verifying signatures (detached or opaque)
 * against the trust anchors, the validity period, the key usage, the
 * imported CRLs and the From: address.
 */
#ifndef POSTERN_SMIME_IN_H
#define POSTERN_SMIME_IN_H

struct db;

#include <stddef.h>
#include <stdio.h>
#include <sys/types.h>

#include <openssl/x509.h>

#include "addr.h"
#include "keyd.h"

#define SMIME_IN_DONE		0	/* decrypted */
#define SMIME_IN_NOT_FOR_US	1	/* no held key opens it */
#define SMIME_IN_LOCAL		(-1)	/* local failure: try again later */
#define SMIME_IN_BAD		(-2)	/* malformed or hostile input */

/*
 * Decrypts the DER ContentInfo in der (a spool file) for one of rcpts
 * (internal addresses whose keys keyd may hold) into out, the plaintext
 * entity. The ciphertext is split off into a temporary file in tmpdir and
 * decrypted from there, so memory does not grow with the message. At most
 * maxri RecipientInfos are looked at. On SMIME_IN_DONE *who is the
 * recipient whose key opened it; otherwise err says why. out holds
 * partial plaintext after a failure: the caller discards it.
 */
int	smime_in_decrypt(struct keyd_client *, const char *msgid,
	    char *const *rcpts, size_t nrcpts, FILE *der, FILE *out,
	    const char *tmpdir, size_t maxri, const char **who, char *err,
	    size_t errlen);

enum smime_in_status {
	SMIME_IN_VALID = 0,
	SMIME_IN_INVALID,
	SMIME_IN_UNTRUSTED,
};

struct smime_in_sig {
	enum smime_in_status status;
	char		 signer[ADDR_MAX];	/* certificate address, or "" */
	char		 reason[200];
	STACK_OF(X509)	*chain;		/* valid: signer first, anchor last */
};

/*
 * Verifies a detached signature (sig, siglen: DER SignedData) over the
 * bytes of content, or (content NULL) an opaque SignedData read from der
 * whose content is written to out. from is the From: mailbox. Returns 0
 * with the result in *res (free with smime_in_sig_free), or -1 when the
 * database failed.
 */
int	smime_in_verify(const unsigned char *sig, size_t siglen, FILE *content,
	    FILE *der, FILE *out, X509_STORE *trust, struct db *db,
	    const char *from, struct smime_in_sig *res);
void	smime_in_sig_free(struct smime_in_sig *);
/*
 * An anonymous temporary file (gone when closed) for about hint bytes
 * (-1: unknown): in memory up to SMIME_IN_MEM_TMP, else in dir. NULL
 * (logged) on failure.
 */
#define SMIME_IN_MEM_TMP	(1024 * 1024)
FILE	*smime_in_tmp(const char *dir, off_t hint);
/*
 * Gives f (before its first read or write) a 64 KiB buffer; returns f.
 * A FILE so treated, or made by smime_in_tmp, is closed with
 * smime_in_fclose, which also takes any other FILE.
 */
FILE	*smime_in_buffered(FILE *f);
int	 smime_in_fclose(FILE *f);
const char *smime_in_status_name(enum smime_in_status);

#endif
