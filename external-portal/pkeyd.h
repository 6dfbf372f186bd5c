/*
 * The portal's key holder: the one external-portal process that loads
 * private keys, built on the shared key-holder core (keyholder.h). It
 * holds decryption keys only (today the add-on tunnel key; the storage key
 * of encrypted storage belongs here too) and answers one request, UNWRAP:
 * decrypt this wrapped content-encryption key with key N. The ingest and
 * web workers never map a private key: the ingest worker gets the CEK and
 * decrypts the content itself.
 */
#ifndef PORTAL_PKEYD_H
#define PORTAL_PKEYD_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#define PKEYD_UNWRAP		1
#define PKEYD_KEY_TUNNEL	1	/* key ids */
#define PKEYD_MAX_WRAPPED	1024	/* an RSA block of 8192 bits */

struct pkeyd_client;

struct pkeyd_conf {
	const char	*tunnel_key;	/* PEM private key file, or NULL */
	const char	*tunnel_cert;	/* its certificate */
	const char	*user;		/* drop to it when root */
};

/*
 * Checks that the tunnel certificate and key fit the portal: an RSA key
 * matching the certificate, whose key usage allows keyEncipherment and not
 * digitalSignature (the portal must not be able to sign). Returns 0, or -1
 * with *err (caller frees).
 */
int	pkeyd_check(const char *keyfile, const char *certfile, char **err);

/*
 * Forks the key holder (before any thread starts). It loads the keys of
 * conf (fatal there when one fails pkeyd_check), drops privileges and
 * serves. Returns its pid and a client in *c, or -1 (log_warn).
 */
pid_t	pkeyd_spawn(const struct pkeyd_conf *, struct pkeyd_client **c);
void	pkeyd_client_free(struct pkeyd_client **);

/*
 * Unwraps in (RSA, padding as RSA_*_PADDING) with key id into out (at most
 * outmax bytes). Returns the length, or -1 (logged) when the key holder
 * refused or is gone.
 */
int	pkeyd_unwrap(struct pkeyd_client *, uint32_t id, int padding,
	    const unsigned char *in, size_t inlen, unsigned char *out,
	    size_t outmax);

/*
 * The public key of cert as an EVP_PKEY whose private decryption runs in
 * the key holder as key id: what CMS_decrypt needs. NULL unless RSA.
 */
EVP_PKEY *pkeyd_pkey(struct pkeyd_client *, uint32_t id, X509 *cert);

#endif
