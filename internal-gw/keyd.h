/*
 * The key holder: the one internal-gw process that loads private keys.
 * The parent spawns it over a socketpair before it starts any thread; the
 * child serves typed, length-bounded requests (SIGN, SIGNERS, RELOAD) and
 * never touches the network. Everything else, the SMTP worker included,
 * reaches the keys only through a struct keyd_client.
 *
 * The TLS keys (STARTTLS server key, relay client key) live there too, on
 * a second channel with its own requests (TLS_KEYS, TLS_RSA, TLS_ECDSA):
 * raw private-key operations for the handshakes, which keyd_tls.h wraps
 * into EVP_PKEYs for libssl.
 */
#ifndef POSTERN_KEYD_H
#define POSTERN_KEYD_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define KEYD_MAX_SIGNER	512			/* bytes of a signer address */
#define KEYD_DIGEST_LEN	32			/* SHA-256 */
#define KEYD_TLS_MAX_KEYS 16			/* TLS key files */
#define KEYD_TLS_MAX_IN	1024	/* an RSA block (8192 bits) or a digest */

/*
 * Forks the key holder. It loads every "<fingerprint>.pem" in keys_dir (a
 * private key, its certificate and chain certificates, as `postern-cli cert
 * import` writes them), drops to user when run as root (NULL: stays), and
 * serves requests on the other end of *client_fd. Call before starting
 * threads. Returns the child's pid, or -1 (log_warn) when it cannot fork.
 */
pid_t	keyd_spawn(const char *keys_dir, const char *user, int *client_fd);
/*
 * keyd_spawn, and the key holder also loads the TLS private keys in the
 * PEM files tls_keys[0..ntls-1] (RSA or EC; other PEM blocks are skipped)
 * before it drops privileges; a file without a usable key is fatal there.
 * It serves them on a second socket, *tls_fd (-1 when ntls is 0), from a
 * thread of its own, so a handshake never waits behind a large S/MIME
 * signature. Key ids are the indexes into tls_keys.
 */
pid_t	keyd_spawn_tls(const char *keys_dir, const char *const *tls_keys,
	    size_t ntls, const char *user, int *client_fd, int *tls_fd);

struct keyd_client;

/* Wraps the parent's end of the socketpair; safe to share among threads. */
struct keyd_client	*keyd_client_new(int fd);
/* Closes the socket (the key holder then exits) and frees. */
void			 keyd_client_free(struct keyd_client **);

/*
 * Signs as signer content whose SHA-256 digest is md: a detached CMS
 * SignedData in DER with the signed attributes (content type, message
 * digest, signing time, S/MIME capabilities), the signer certificate and
 * its chain, in *der (caller frees). Only the digest crosses to the key
 * holder, so a message of any size costs it the same. Returns 0, or -1
 * with a reason in err: no key for the signer, or the key holder is gone.
 */
int	keyd_sign_digest(struct keyd_client *, const char *signer,
	    const unsigned char md[KEYD_DIGEST_LEN], unsigned char **der,
	    size_t *derlen, char *err, size_t errlen);
/* 1 when the key holder has a key for signer, 0 when not, -1 when gone. */
int	keyd_can_sign(struct keyd_client *, const char *signer);
/*
 * The addresses the key holder can sign for: a NULL-terminated array of
 * strings, freed with keyd_signers_free(). Returns the count, or -1.
 */
int	keyd_signers(struct keyd_client *, char ***out);
void	keyd_signers_free(char ***);
/* Re-reads keys_dir; returns the number of keys now loaded, or -1. */
int	keyd_reload(struct keyd_client *);

/* The rest is for a client on the TLS channel (*tls_fd). */
struct keyd_tls_pub {
	uint32_t	 id;
	unsigned char	*spki;		/* DER SubjectPublicKeyInfo */
	size_t		 spkilen;
};

/* The TLS keys keyd holds; returns the count (*out to free), or -1. */
int	keyd_tls_keys(struct keyd_client *, struct keyd_tls_pub **out);
void	keyd_tls_keys_free(struct keyd_tls_pub **, int n);
/*
 * The RSA private operation of key id on in (RSA_PKCS1_PADDING: a
 * DigestInfo to pad; RSA_NO_PADDING: a block of the modulus size, already
 * padded, e.g. PSS). Writes at most outlen bytes to out; returns their
 * number, or -1 (logged) on failure.
 */
int	keyd_tls_rsa(struct keyd_client *, uint32_t id, int padding,
	    const unsigned char *in, size_t inlen, unsigned char *out,
	    size_t outlen);
/* An ECDSA signature (DER) of the digest with key id; as keyd_tls_rsa. */
int	keyd_tls_ecdsa(struct keyd_client *, uint32_t id,
	    const unsigned char *dgst, size_t dlen, unsigned char *out,
	    size_t outlen);

#endif
