/*
 * Encrypted storage (store_crypt.c): a message file sealed as CMS
 * EnvelopedData, AES-256-CBC, its content-encryption key (CEK) wrapped
 * with RSA to every certificate of the storage_encryption certificate file
 * (the portal's own and any escrow certificates). `openssl cms -decrypt`
 * opens it with any of the matching keys.
 *
 * The file is BER with indefinite lengths, written as a stream (memory
 * stays flat whatever the size). The encrypted content is cut in chunks
 * of STORE_CRYPT_CHUNK bytes, each an OCTET STRING with a four-byte
 * header (the last one shorter), so a ciphertext offset maps to a file
 * offset by arithmetic; with CBC any block decrypts from the block before
 * it, so a reader can seek: the web reads an encrypted message as it
 * reads a plain one, without a copy.
 *
 * Writing needs only the certificates (the ingest runs while the portal
 * is locked); reading needs the CEK, which only the key holder (pkeyd)
 * can unwrap.
 */
#ifndef PORTAL_STORE_CRYPT_H
#define PORTAL_STORE_CRYPT_H

#include <sys/types.h>

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <openssl/x509.h>

#define STORE_CRYPT_CHUNK	16384
#define STORE_CRYPT_KEYLEN	32
#define STORE_CRYPT_MAX_RINFOS	(64 * 1024)	/* recipient infos, bytes */

struct store;
struct store_tmp;

/* ---- writing ---- */

struct store_crypt;

/*
 * The certificates of file (PEM, one or more; RSA only). NULL with *err
 * (caller frees).
 */
struct store_crypt	*store_crypt_new(const char *certfile, char **err);
void			 store_crypt_free(struct store_crypt *);
/* The certificates, for checks (owned by the store_crypt). */
int			 store_crypt_certs(const struct store_crypt *,
			    X509 ***certs);

/*
 * Encrypts everything readable from in (from its current position to its
 * end) to out. 0, or -1 (logged).
 */
int	store_crypt_encrypt(struct store_crypt *, int in, FILE *out);
/*
 * The same, with the CEK it chose copied to key (STORE_CRYPT_KEYLEN
 * bytes; the caller wipes it) for sealing the row's metadata with.
 */
int	store_crypt_encrypt_key(struct store_crypt *, int in, FILE *out,
	    unsigned char *key);
/*
 * Replaces the plain temp file t by a sealed one in the same directory:
 * the plain one is removed. 0, or -1 (logged; t unchanged). key, when
 * not NULL, gets the CEK as above.
 */
int	store_crypt_seal(struct store_crypt *, struct store *,
	    struct store_tmp *t, unsigned char *key);
/* The same, leaving t and filling *sealed (a new temp file). */
int	store_crypt_seal_copy(struct store_crypt *, struct store *,
	    struct store_tmp *t, struct store_tmp *sealed,
	    unsigned char *key);
/* Seals a small buffer into a malloc'd DER blob (*outlen bytes). */
int	store_crypt_seal_mem(struct store_crypt *, const void *, size_t,
	    unsigned char **out, size_t *outlen);

/* ---- reading ---- */

/* 1 when the file open on fd (at offset 0) is sealed, 0 when not, -1. */
int	store_crypt_is_sealed(int fd);

struct store_crypt_file;

/*
 * Parses the header of the sealed file on fd (which it takes over).
 * NULL (logged) when it is not one of ours.
 */
struct store_crypt_file	*store_crypt_open(int fd);
/* Same, over a sealed blob in memory (store_crypt_seal_mem). */
struct store_crypt_file	*store_crypt_open_mem(const unsigned char *,
			    size_t);
/* The RecipientInfos SET, DER: what the key holder is asked to unwrap. */
const unsigned char	*store_crypt_rinfos(const struct store_crypt_file *,
			    size_t *len);
/*
 * Sets the unwrapped CEK and checks the padding of the last block: 0 with
 * the plaintext size known, -1 when the key does not fit the file.
 */
int	store_crypt_set_key(struct store_crypt_file *,
	    const unsigned char key[STORE_CRYPT_KEYLEN]);
int64_t	store_crypt_size(const struct store_crypt_file *);
/* Plaintext at off: up to len bytes, 0 at the end, -1 (logged). */
ssize_t	store_crypt_pread(struct store_crypt_file *, void *, size_t len,
	    int64_t off);
void	store_crypt_close(struct store_crypt_file *);

/*
 * In a RecipientInfos SET (ris, len): the encrypted key of the recipient
 * identified by cert's issuer and serial number. 0 with *ek pointing into
 * ris, or -1 when none matches or the SET does not parse.
 */
int	store_crypt_rinfo_find(const unsigned char *ris, size_t len,
	    X509 *cert, const unsigned char **ek, size_t *eklen);

/* ---- the row's metadata (store_crypt_meta.c) ---- */

/* The fields of portal_messages.sealed_meta, in this order. */
enum store_crypt_meta_field {
	STORE_CRYPT_META_FROM,		/* the raw From: (sent: recipients) */
	STORE_CRYPT_META_SUBJECT,	/* the raw Subject: */
	STORE_CRYPT_META_N
};

/*
 * Seals n values (NULL: absent) with the message's CEK, AES-256-GCM, a
 * fresh nonce each, into one malloc'd blob. 0, or -1 (logged).
 */
int	store_crypt_meta_seal(const unsigned char key[STORE_CRYPT_KEYLEN],
	    const char *const *fields, int n, unsigned char **out,
	    size_t *outlen);
/*
 * Opens such a blob: fields[0..n) malloc'd strings or NULL (absent). 0,
 * or -1 with every field NULL when the key does not fit or the blob does
 * not parse.
 */
int	store_crypt_meta_open(const unsigned char key[STORE_CRYPT_KEYLEN],
	    const unsigned char *blob, size_t len, char **fields, int n);

#endif
