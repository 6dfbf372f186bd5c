/*
 * OpenPGP on the gateway, on librnp: the key store (public keys in the
 * database, table pgp_keys; secret keys as "<FINGERPRINT>.pgp" files in
 * keys_dir/openpgp/, read only by the key holder) and outbound PGP/MIME
 * (RFC 3156) encryption of whole messages.
 *
 * A recipient's key is found by the e-mail addresses of its user IDs
 * (folded like every address here); of its subkeys only one that is valid
 * now, neither expired nor revoked, and allowed to encrypt is used.
 */
#ifndef POSTERN_PGP_H
#define POSTERN_PGP_H

struct db;

#include <stddef.h>
#include <stdio.h>
#include <time.h>


#define PGP_FPR_LEN		40	/* v4 fingerprint, uppercase hex */
#define PGP_MAX_KEYFILE		(1024 * 1024)	/* an imported file */
#define PGP_MAX_KEY		(256 * 1024)	/* one exported key */
#define PGP_MAX_KEYS		64	/* keys in one imported file */
#define PGP_KEYS_SUBDIR		"openpgp"

struct pgp_key_entry {
	char	 fingerprint[PGP_FPR_LEN + 1];
	char	*emails;	/* comma-separated, folded */
	char	*uid;		/* primary user ID */
	time_t	 created;
	int	 has_secret;
};

/* Creates the pgp_keys table when missing. 0, or -1 with *err. */
int	pgp_keys_init(struct db *, char **err);

/*
 * Imports the keys in path (binary or ASCII armour, at most
 * PGP_MAX_KEYFILE bytes and PGP_MAX_KEYS primary keys). The public part of
 * each goes into the table; a secret key (unprotected with password when
 * it is protected) is written to keys_dir/openpgp/<FPR>.pgp, mode 0600,
 * for the key holder. Returns the number of keys imported, or -1 with
 * *err (caller frees).
 */
int	pgp_keys_import(struct db *, const char *keys_dir, const char *path,
	    const char *password, char **err);
/*
 * Imports public key material from memory (an Autocrypt keydata or a key
 * attachment); never secret keys. Returns the number imported, or -1.
 */
int	pgp_keys_import_public(struct db *, const unsigned char *data,
	    size_t len, char **err);
/* All keys, ordered by primary user ID; the count, or -1 with *err. */
int	pgp_keys_list(struct db *, struct pgp_key_entry **out, char **err);
void	pgp_keys_list_free(struct pgp_key_entry **, size_t n);
/*
 * Removes the key with this fingerprint, or every key naming this address
 * when the argument contains '@', and their secret key files. Returns the
 * number removed, or -1 with *err.
 */
int	pgp_keys_remove(struct db *, const char *keys_dir,
	    const char *fingerprint_or_email, char **err);

/*
 * The stored public keys naming addr: *blobs (binary transferable public
 * keys) and *lens, count returned; 0 for none, -1 (logged) when the
 * database failed. Free with pgp_keys_blobs_free.
 */
int	pgp_keys_find(struct db *, const char *addr, unsigned char ***blobs,
	    size_t **lens);
void	pgp_keys_blobs_free(unsigned char ***, size_t **, int n);

/* The addresses of key's valid user IDs, folded, comma-separated (caller
 * frees); key is a librnp rnp_key_handle_t. */
struct rnp_key_handle_st;
char	*pgp_keys_key_emails(struct rnp_key_handle_st *key);

/* 1 when a primary key in ffi (an rnp_ffi_t) names addr and has a usable
 * encryption key, 0 when none does, -1 on failure. */
struct rnp_ffi_st;
int	pgp_keys_usable_in(struct rnp_ffi_st *ffi, const char *addr);

/* 1 when addr has a key with a usable encryption subkey, 0, or -1. */
int	pgp_has_key(struct db *, const char *addr);

/*
 * Reads a message from in and writes it to out as PGP/MIME
 * multipart/encrypted to the usable key of every recipient (AES-256,
 * ASCII armour). The outer fields stay outside; the Content-* fields and
 * the body become the encrypted entity, byte for byte, so a signed entity
 * stays verifiable. Returns 0, or -1 with a reason in err.
 */
int	pgp_encrypt(struct db *, const char *const *rcpts, size_t nrcpts,
	    FILE *in, FILE *out, char *err, size_t errlen);

/*
 * Reads a message from in and writes it to out as PGP/MIME
 * multipart/signed (SHA-256): the entity (Content-* fields and body,
 * normalised to CRLF) signed with signer's OpenPGP key in the key holder,
 * which is given only the digest; msgid is the message's log id for
 * keyd's log. Returns 0, or -1 with a reason in err.
 */
struct keyd_client;
int	pgp_sign(struct keyd_client *, const char *signer, const char *msgid,
	    FILE *in, FILE *out, char *err, size_t errlen);

#endif
