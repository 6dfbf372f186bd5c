/*
 * What keyd_pgp.c (key files, signatures, the request dispatch) and
 * keyd_pgp_dec.c (session keys) share inside the key holder. Not for the
 * SMTP worker.
 */
#ifndef POSTERN_KEYD_PGP_INT_H
#define POSTERN_KEYD_PGP_INT_H

#include <stddef.h>

#include <openssl/evp.h>

/* An encryption subkey: X25519 ECDH or RSA. */
struct keyd_pgp_sub {
	EVP_PKEY	*pkey;
	int		 algo;
	unsigned char	 fpr[20];	/* key ID: the last 8 bytes */
	unsigned char	 kdf_hash, kdf_cipher;	/* ECDH */
};

/* A bounded reader over one packet body. */
struct keyd_pgp_rd {
	const unsigned char	*p;
	size_t			 len, off;
};

/* OID of Curve25519 for ECDH (RFC 4880bis). */
extern const unsigned char keyd_pgp_oid_cv25519[10];

/* n bytes from r in *out; -1 when fewer are left. */
int	keyd_pgp_get(struct keyd_pgp_rd *, size_t n, const unsigned char **out);
/* An MPI's magnitude bytes; -1 when it runs past the end. */
int	keyd_pgp_mpi(struct keyd_pgp_rd *, const unsigned char **out,
	    size_t *n);
/*
 * The session key (algorithm byte, key) of the rest of a PKESK body in r
 * for sub, into out (40 bytes); its length, or -1 when it does not
 * decrypt or is malformed.
 */
int	keyd_pgp_ecdh(struct keyd_pgp_sub *, struct keyd_pgp_rd *,
	    unsigned char *out);
int	keyd_pgp_rsa_dec(struct keyd_pgp_sub *, struct keyd_pgp_rd *,
	    unsigned char *out);

#endif
