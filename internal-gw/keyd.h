/*
 * The key holder: the one internal-gw process that loads private keys,
 * built on the shared key-holder core (keyholder.h). The parent spawns it
 * before it starts any thread; it serves typed, length-bounded requests
 * (SIGN, SIGNERS, RELOAD) and never touches the network. Everything else,
 * the SMTP worker included, reaches the keys only through a struct
 * keyd_client.
 *
 * The TLS keys (STARTTLS server key, relay client key) live there too, on
 * channels of their own with their own requests (TLS_KEYS, TLS_RSA,
 * TLS_ECDSA): the signatures of TLS handshakes, which keyd_tls.h wraps
 * into EVP_PKEYs for libssl.
 */
#ifndef POSTERN_KEYD_H
#define POSTERN_KEYD_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <openssl/x509.h>

#define KEYD_MAX_SIGNER	512			/* bytes of a signer address */
#define KEYD_MAX_MSGID	64			/* bytes of a log id */
#define KEYD_DIGEST_LEN	32			/* SHA-256 */
#define KEYD_TLS_MAX_KEYS 16			/* TLS key files */
#define KEYD_TLS_MAX_IN	1024	/* an RSA block (8192 bits) or a digest */

/* What a signature is for; keyd refuses a signer of the other kind. */
enum keyd_purpose {
	KEYD_PURPOSE_MAIL = 1,		/* a user's mail: never the tunnel key */
	KEYD_PURPOSE_TUNNEL,		/* the portal tunnel: only its key */
};

struct keyd_client;

struct keyd_conf {
	const char		 *keys_dir;	/* signing keys */
	const char *const	 *tls_keys;	/* TLS key files, or NULL */
	size_t			  ntls;
	const char		 *user;		/* drop to it when root */
	const char		 *tunnel_signer; /* the tunnel's address */
	int			  workers;	/* 0: one per CPU */
};

/*
 * Forks the key holder. It loads every "<fingerprint>.pem" in keys_dir (a
 * private key, its certificate and chain certificates, as `postern-cli cert
 * import` writes them) and the TLS private keys in tls_keys (RSA or EC;
 * other PEM blocks are skipped; a file without a usable key is fatal
 * there), drops privileges and serves requests. Call before starting
 * threads. Returns the child's pid with a client for the signing channels
 * in *sign and one for the TLS channels in *tls (NULL when ntls is 0), or
 * -1 (log_warn) when it cannot fork. Each kind has keyholder_workers(
 * workers) channels, each served by a thread of its own, so signatures and
 * handshakes run on every core and a handshake never waits behind a
 * signature. TLS key ids are the indexes into tls_keys.
 */
pid_t	keyd_spawn(const struct keyd_conf *, struct keyd_client **sign,
	    struct keyd_client **tls);

/* Closes the channels (the key holder then exits) and frees. */
void	keyd_client_free(struct keyd_client **);
/* The channel pool under a client, for raw requests in tests. */
struct keyholder_client	*keyd_client_core(struct keyd_client *);

/*
 * Signs as signer, for purpose, content whose SHA-256 digest is md: a
 * detached CMS SignedData in DER with the signed attributes (content type,
 * message digest, signing time), the signer certificate and its chain, in
 * *der (caller frees). Only the digest crosses to the key holder, so a
 * message of any size costs it the same. msgid (the requesting message's
 * log id: printable ASCII, no space) goes into keyd's log line of the
 * signature. Returns 0, or -1 with a reason in err: no key for the signer,
 * a signer of the other purpose, or the key holder is gone.
 */
int	keyd_sign_digest(struct keyd_client *, const char *signer,
	    enum keyd_purpose, const char *msgid,
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
 * The RSA private operation of key id on in, for a TLS signature:
 * RSA_PKCS1_PADDING on a DigestInfo of a SHA-2 digest (TLS 1.2's
 * rsa_pkcs1_sha*), or RSA_NO_PADDING on a block of the modulus size that
 * is an EMSA-PSS encoding with SHA-2, MGF1 with the same hash and a salt as
 * long as the digest (rsa_pss_rsae_sha*, TLS 1.2 and 1.3). keyd refuses
 * anything else (logged): no raw RSA on arbitrary blocks, no decryption.
 * Writes at most outlen bytes to out; returns their number, or -1 (logged)
 * on failure.
 */
int	keyd_tls_rsa(struct keyd_client *, uint32_t id, int padding,
	    const unsigned char *in, size_t inlen, unsigned char *out,
	    size_t outlen);
/* An ECDSA signature (DER) of the digest with key id; as keyd_tls_rsa. */
int	keyd_tls_ecdsa(struct keyd_client *, uint32_t id,
	    const unsigned char *dgst, size_t dlen, unsigned char *out,
	    size_t outlen);

/*
 * Inbound decryption, on channels of their own (the signing client holds
 * them). The certificates of the keys keyd holds for addr (DER, NULL-
 * terminated array in *out, freed with keyd_certs_free); returns the
 * count, or -1 when the key holder is gone.
 */
int	keyd_certs(struct keyd_client *, const char *addr, X509 ***out);
void	keyd_certs_free(X509 ***);
/*
 * Unwraps the content-encryption key of der, a contentless CMS
 * (Auth)EnvelopedData with exactly one RecipientInfo (RSA key transport
 * or ECDH key agreement) for addr's key. keyd answers with the same
 * structure plus a KEK RecipientInfo that wraps the content key under
 * kek (AES-256 key wrap, key identifier KEYD_KEK_ID), so the caller gets
 * the key with CMS_decrypt_set1_key() and decrypts the content itself.
 * keyd never sees the content. Returns 0 with the DER in *out (caller
 * frees), or -1 with a reason in err.
 */
#define KEYD_KEK_LEN		32
#define KEYD_KEK_ID		"postern-inbound"
#define KEYD_MAX_UNWRAP_DER	(64 * 1024)
int	keyd_unwrap(struct keyd_client *, const char *addr, const char *msgid,
	    const unsigned char kek[KEYD_KEK_LEN], const unsigned char *der,
	    size_t derlen, unsigned char **out, size_t *outlen, char *err,
	    size_t errlen);

/*
 * The request parsers, for tests and the fuzz target. A SIGN payload:
 * uint32 purpose, uint32 signer length, uint32 msgid length, the signer,
 * the msgid, the digest. Returns 0 with the fields (pointing into p, the
 * strings NUL-free and copied into signer and msgid), or -1 with a reason.
 */
struct keyd_sign_req {
	enum keyd_purpose	 purpose;
	char			 signer[KEYD_MAX_SIGNER + 1];
	char			 msgid[KEYD_MAX_MSGID + 1];
	const unsigned char	*md;
};
int	keyd_parse_sign(const unsigned char *p, size_t len,
	    struct keyd_sign_req *, const char **why);
/*
 * 1 when in (inlen bytes) is an input keyd accepts for an RSA TLS
 * signature with padding (RSA_PKCS1_PADDING or RSA_NO_PADDING, see
 * keyd_tls_rsa) under a key of modbits bits, 0 when not.
 */
int	keyd_tls_rsa_allowed(int padding, const unsigned char *in,
	    size_t inlen, int modbits);
/* The longest request payload on the signing and the TLS channels. */
#define KEYD_MAX_SIGN_REQ (3 * 4 + KEYD_MAX_SIGNER + KEYD_MAX_MSGID + \
	    KEYD_DIGEST_LEN)
#define KEYD_MAX_TLS_REQ (2 * 4 + KEYD_TLS_MAX_IN)
#define KEYD_MAX_DEC_REQ (3 * 4 + KEYD_MAX_SIGNER + KEYD_MAX_MSGID + \
	    KEYD_KEK_LEN + KEYD_MAX_UNWRAP_DER)

#endif
