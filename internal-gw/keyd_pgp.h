/*
 * OpenPGP signing keys in the key holder. `postern-cli key import` writes
 * each secret key, unprotected, to keys_dir/openpgp/<FPR>.pgp (mode 0600);
 * keyd reads those files itself with a small bounded packet reader (no
 * OpenPGP library in the key holder) and signs with the primary key
 * through OpenSSL. The SMTP worker builds the OpenPGP signature packet: it
 * hashes the signed data and the packet's hashed trailer and asks keyd to
 * sign that SHA-256 digest as a named signer, as for S/MIME.
 *
 * Requests on the signing channels (payload within KEYD_MAX_SIGN_REQ):
 *   PGP_INFO  signer                -> OK uint8 algorithm, 20-byte v4
 *                                      fingerprint | ERR text
 *   PGP_SIGN  uint32 signer length, uint32 msgid length, signer, msgid,
 *             SHA-256 digest        -> OK the signature's algorithm-
 *                                      specific MPIs | ERR text
 *   PGP_DECRYPT uint32 msgid length, msgid, the body of one public-key
 *             encrypted session key packet (at most KEYD_PGP_MAX_PKESK)
 *                                   -> OK uint8 symmetric algorithm,
 *                                      session key | ERR text
 * Inbound decryption thus sends keyd a packet of at most a few hundred
 * bytes per recipient, never the message: keyd unwraps the session key
 * (X25519 ECDH with the RFC 6637 KDF and AES key wrap, or RSA PKCS#1
 * v1.5) with the encryption subkey the packet names, and the worker
 * decrypts the data with librnp.
 */
#ifndef POSTERN_KEYD_PGP_H
#define POSTERN_KEYD_PGP_H

#include <stddef.h>
#include <stdint.h>

#include "keyd.h"

#define KEYD_PGP_INFO		10
#define KEYD_PGP_SIGN		11
#define KEYD_PGP_DECRYPT	12
#define KEYD_PGP_MAX_PKESK	540	/* an RSA-4096 PKESK body */

#define KEYD_PGP_MAX_FILE	(64 * 1024)	/* one secret key file */
#define KEYD_PGP_MAX_SIG	1100	/* MPIs of an RSA-8192 signature */

/* OpenPGP public-key algorithms keyd signs with. */
#define PGP_ALG_RSA		1
#define PGP_ALG_ECDSA		19
#define PGP_ALG_EDDSA		22

struct keyholder_chan;

/* ---- the key holder's side ---- */

/* (Re)loads keys_dir/openpgp/; returns the number of keys loaded. */
size_t	keyd_pgp_load(const char *keys_dir);
/* Answers a PGP_INFO or PGP_SIGN request. */
void	keyd_pgp_dispatch(struct keyholder_chan *, uint32_t type,
	    const unsigned char *p, size_t len);

/*
 * The key file reader, for tests and the fuzz target: the emails of the
 * user IDs (folded, NULL-terminated array in *emails, free with
 * keyd_pgp_emails_free), the primary key's algorithm and fingerprint and
 * the number of usable encryption subkeys. Returns 0, or -1 with a reason.
 */
int	keyd_pgp_parse(const unsigned char *p, size_t len, char ***emails,
	    int *algo, unsigned char fpr[20], size_t *nsubs, const char **why);
void	keyd_pgp_emails_free(char ***);

/* ---- the client's side ---- */

/* 1 with the signer's key algorithm and fingerprint, 0 none, -1 gone. */
int	keyd_pgp_info(struct keyd_client *, const char *signer, int *algo,
	    unsigned char fpr[20]);
/*
 * The signature MPIs of md (SHA-256) by signer's key, in sig (at most
 * KEYD_PGP_MAX_SIG bytes); returns their length, or -1 with err.
 */
int	keyd_pgp_sign(struct keyd_client *, const char *signer,
	    const char *msgid, const unsigned char md[KEYD_DIGEST_LEN],
	    unsigned char *sig, size_t siglen, char *err, size_t errlen);

/*
 * The session key of one PKESK packet body, unwrapped by keyd: algorithm
 * byte then key in out; returns its length, 0 when keyd holds no key for
 * it or it does not decrypt, -1 when keyd is gone.
 */
int	keyd_pgp_session_key(struct keyd_client *, const char *msgid,
	    const unsigned char *pkesk, size_t len, unsigned char *out,
	    size_t outlen);

#endif
