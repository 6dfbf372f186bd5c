/*
 * Inbound OpenPGP for internal recipients: PGP/MIME (RFC 3156) and inline
 * PGP in text/plain are decrypted, signatures are verified, and the
 * result is written into X-Postern-Encrypted and X-Postern-Signature, the
 * fields the gateway alone writes (copies from outside are removed).
 * Signers' keys are imported from Autocrypt headers and from key
 * attachments of signed messages when auto-import-keys is on.
 *
 * The session key of an encrypted message is unwrapped by keyd from the
 * one packet addressed to a key it holds (keyd_pgp.h); the worker never
 * holds a secret key.
 */
#ifndef POSTERN_PGP_IN_H
#define POSTERN_PGP_IN_H

struct db;

#include <stddef.h>
#include <stdio.h>


#define PGP_IN_MAX_DATA		(32 * 1024 * 1024)	/* armoured input */
#define PGP_IN_MAX_OUT		(64 * 1024 * 1024)	/* decrypted output */
#define PGP_IN_MAX_KEYDATA	(64 * 1024)	/* Autocrypt, attachments */
#define PGP_IN_MAX_PACKETS	4096	/* top-level packets */

struct keyd_client;

enum pgp_sig_status {
	PGP_SIG_NONE,
	PGP_SIG_VALID,
	PGP_SIG_INVALID,
	PGP_SIG_UNTRUSTED,
};

struct pgp_sig_result {
	enum pgp_sig_status	 status;
	char			 signer[320];
	char			 reason[128];
	char			 import_fpr[41];  /* a valid key first seen in
						   * the message, or "" */
};

struct pgp_in_ctx {
	struct db			*db;
	struct keyd_client	*keyd;		/* NULL: nothing decrypts */
	const char		*msgid;
	char			 from[320];	/* folded From: address or "" */
	/* public keys the message carries (attachments, Autocrypt), used to
	 * verify; imported only as pgp_in_message decides */
	unsigned char		*keys;
	size_t			 keyslen;
	size_t			 max_out;
	int			 auto_import;	/* auto-import-keys */
};

/*
 * An OpenPGP message (armoured or binary): 1 decrypted (*out, *outlen,
 * caller frees; signatures in *sig), 0 not for us (no session key keyd
 * holds a key for), -2 malformed or failed to decrypt (why; nothing of
 * the plaintext is returned), -1 the key holder is gone.
 */
int	pgp_dec_message(struct pgp_in_ctx *, const unsigned char *msg,
	    size_t len, unsigned char **out, size_t *outlen,
	    struct pgp_sig_result *sig, char *why, size_t whylen);
/* A cleartext-signed block (armour included): the result in *sig. */
void	pgp_dec_verify_inline(struct pgp_in_ctx *, const unsigned char *data,
	    size_t len, struct pgp_sig_result *sig);
/* A detached signature over data: the result in *sig. */
void	pgp_dec_verify_detached(struct pgp_in_ctx *, const unsigned char *data,
	    size_t len, const unsigned char *sigdata, size_t siglen,
	    struct pgp_sig_result *sig);

/*
 * Autocrypt level 1: imports the key of the one Autocrypt field of h when
 * its addr= is ctx->from, one of its user IDs names that address and it
 * has a usable encryption key; attributes other than addr,
 * prefer-encrypt and keydata that do not start with "_" make the field
 * invalid. Logged; never fails the message.
 */
struct header;
void	pgp_autocrypt_import(struct pgp_in_ctx *, const struct header *);

/*
 * Processes the message in for internal recipients. Returns 1 when it was
 * OpenPGP (or carried an Autocrypt header) and the result was written to
 * out, 0 when it was not (out untouched: deliver in as it is), -1 on a
 * local failure (the caller answers 4xx). auto_import: auto-import-keys.
 */
int	pgp_in_message(struct db *, struct keyd_client *, const char *msgid,
	    int auto_import, FILE *in, FILE *out);

#endif
