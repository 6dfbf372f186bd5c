/*
 * Certificate revocation lists in the gateway's database: `postern-cli crl
 * import` loads one (its signature checked against its issuer from the
 * trust anchors or the certificate store); a certificate listed by the
 * current CRL of its issuer is revoked, and revoked certificates are
 * neither used to encrypt nor reported as valid signers. The gateway
 * fetches nothing itself: crl_distribution_points() lists where the
 * certificates in the store say their CRLs are, for the admin's cron job.
 */
#ifndef POSTERN_CRL_H
#define POSTERN_CRL_H

struct db;

#include <stddef.h>

#include <openssl/x509.h>

/* Creates the tables when missing. Returns 0, or -1 with *err. */
int	crl_init(struct db *, char **err);
/*
 * Imports the CRL in path (PEM or DER). Refused (-1 with *err) when its
 * issuer is unknown, its signature does not verify or it is older than
 * the one stored. Returns the number of revoked serials it lists.
 */
int	crl_import(struct db *, X509_STORE *trust, const char *path, char **err);
/* 1 when x is revoked by an imported CRL, 0 when not, -1 on error. */
int	crl_is_revoked(struct db *, X509 *x);

struct crl_entry {
	char	*issuer;
	time_t	 this_update;
	time_t	 next_update;	/* 0: none */
	long	 nrevoked;
};
/* The imported CRLs; returns the count (*out to free) or -1. */
int	crl_list(struct db *, struct crl_entry **out);
void	crl_list_free(struct crl_entry **, size_t);
/*
 * The distinct distribution point URIs of the certificates in the store,
 * NULL-terminated in *out (free with certstore_emails_free); the count or
 * -1.
 */
int	crl_distribution_points(struct db *, char ***out);

#endif
