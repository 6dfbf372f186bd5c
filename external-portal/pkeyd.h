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
#define PKEYD_STORAGE_STATUS	2	/* web channel only */
#define PKEYD_STORAGE_UNWRAP	3	/* web channel only */
#define PKEYD_KEY_TUNNEL	1	/* key ids */
#define PKEYD_MAX_WRAPPED	1024	/* an RSA block of 8192 bits */

struct pkeyd_client;

struct pkeyd_conf {
	const char	*tunnel_key;	/* PEM private key file, or NULL */
	const char	*tunnel_cert;	/* its certificate */
	const char	*user;		/* drop to it when root */
	/* Encrypted storage (pkeyd_storage.c); storage_certs NULL: off. */
	const char	*storage_certs;
	const char	**storage_keys;	/* encrypted PKCS#8 PEM files */
	size_t		 nstorage_keys;
	const char	*storage_unlock;	/* "environment" or "ask" */
	const char	*storage_password;	/* the environment's, or NULL */
	const char	*control_socket;	/* postern-cli storage */
	const char	*ask_dir;		/* systemd's ask-password */
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
/*
 * The same with encrypted storage: *c serves the ingest worker (tunnel
 * key only; NULL without a tunnel key) and *web the web worker (the
 * storage keys only; NULL without storage encryption). Key ids and
 * requests are checked per channel: a web channel cannot reach the
 * tunnel key, nor an ingest channel the storage keys.
 */
pid_t	pkeyd_spawn2(const struct pkeyd_conf *, struct pkeyd_client **c,
	    struct pkeyd_client **web);
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

/* ---- encrypted storage (pkeyd_storage.c) ---- */

/* 1 when the storage keys are unlocked, 0 when locked, -1 (logged). */
int	pkeyd_storage_status(struct pkeyd_client *);
/*
 * The content-encryption key of a sealed file from its RecipientInfos
 * (store_crypt_rinfos): 0 with key[32], 1 while locked, -1 when no
 * storage key opens it or the key holder is gone.
 */
int	pkeyd_storage_unwrap(struct pkeyd_client *, const unsigned char *ris,
	    size_t len, unsigned char *key);
/*
 * --check: the certificate file and key files parse; with password (NULL:
 * not checked) every key opens and is named when no certificate matches
 * it, and so is every certificate without a key (an escrow certificate
 * is expected to be one). Prints to stderr; returns -1 on an error.
 */
int	pkeyd_storage_check(const struct pkeyd_conf *, const char *password);
/* In the key holder (pkeyd.c calls them). */
void	pkeyd_storage_load(const struct pkeyd_conf *);
struct keyholder_chan;
void	pkeyd_storage_dispatch(struct keyholder_chan *, uint32_t type,
	    const unsigned char *, size_t);
struct keyholder_client *pkeyd_kh(struct pkeyd_client *);
#define PKEYD_STORAGE_MAX_REQ	(64 * 1024 + 16)

#endif
