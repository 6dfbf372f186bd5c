/*
 * The gateway's certificate store: certificates in the node's SQLite
 * database (table certs), private keys as "<fingerprint>.pem" files (key,
 * certificate, chain; mode 0600) in keys_dir, read only by the key holder.
 * Recipient certificates are chosen by policy: valid now, chained to a
 * configured trust anchor, fit for e-mail protection, naming the address.
 */
#ifndef POSTERN_CERTSTORE_H
#define POSTERN_CERTSTORE_H

struct db;

#include <stddef.h>
#include <time.h>

#include <openssl/x509.h>

#define CERTSTORE_FPR_LEN	64	/* SHA-256, lowercase hex */

struct certstore_entry {
	char	 fingerprint[CERTSTORE_FPR_LEN + 1];
	char	*subject;
	char	*issuer;
	char	*emails;	/* comma-separated */
	time_t	 not_before;
	time_t	 not_after;
	int	 has_key;
};

/* Creates the certs table when missing. Returns 0, or -1 with *err. */
int	certstore_init(struct db *, char **err);

/*
 * Imports path: PEM (certificates, optionally with one private key) or
 * PKCS#12 (password may be NULL for none). Every certificate goes into the
 * table; a private key goes with its certificate and the rest as chain into
 * keys_dir. Returns the number of certificates imported, or -1 with *err
 * (caller frees) naming the reason, e.g. a wrong PKCS#12 password.
 */
int	certstore_import(struct db *, const char *keys_dir, const char *path,
	    const char *password, char **err);
/* All entries ordered by subject; returns the count or -1 with *err. */
int	certstore_list(struct db *, struct certstore_entry **out, char **err);
void	certstore_list_free(struct certstore_entry **, size_t n);
/*
 * Removes the certificate with this fingerprint, or every certificate
 * naming this address when the argument contains '@', and their key files.
 * Returns the number removed (0: none matched), or -1 with *err.
 */
int	certstore_remove(struct db *, const char *keys_dir,
	    const char *fingerprint_or_email, char **err);

/* Trust anchors from a PEM file or a hashed directory; NULL with *err. */
X509_STORE *certstore_trust_load(const char *ca_file_or_dir, char **err);

/*
 * The certificates usable to encrypt to addr (see the header comment), in
 * *certs (free with certstore_certs_free). Returns the count (0: none), or
 * -1 when the database failed (logged).
 */
int	certstore_find_recipient(struct db *, X509_STORE *trust,
	    const char *addr, X509 ***certs, size_t *n);
void	certstore_certs_free(X509 ***, size_t n);
/* 1 when addr has a usable certificate, 0 when not, -1 on error. */
int	certstore_has_valid(struct db *, X509_STORE *, const char *addr);

/*
 * Adds the public certificate x (harvested from a signature) with where it
 * came from; an existing entry keeps its first origin. 0, or -1 with *err.
 */
int	certstore_add(struct db *, X509 *x, const char *source, char **err);
/* Where x came from (caller frees), or NULL: imported by an admin. */
char	*certstore_origin(struct db *, X509 *x);
/* x's name in RFC 2253 form, as the table stores it (caller frees). */
char	*certstore_name(X509_NAME *);
/* Pushes the table's certificates whose subject is name; 0 or -1. */
int	certstore_by_subject(struct db *, const char *name, STACK_OF(X509) *);

/* Helpers shared with the key holder. */
/* rfc822Name entries of subjectAltName plus the subject emailAddress, lower-
 * cased; NULL-terminated array in *out; returns the count. */
size_t	certstore_emails(X509 *, char ***out);
void	certstore_emails_free(char ***);
/* SHA-256 fingerprint of the DER certificate in lowercase hex. */
void	certstore_fingerprint(X509 *, char out[CERTSTORE_FPR_LEN + 1]);

#endif
