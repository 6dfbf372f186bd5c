/*
 * Certificate revocation lists (see crl.h). A CRL is stored as its
 * issuer's name, its dates and one row per revoked serial number, so the
 * check of a certificate is one indexed lookup.
 *
 * SECURITY: a CRL file comes from the admin (fetched from the Internet by
 * a cron job) and is foreign data: it is read with a size limit, parsed
 * by OpenSSL and stored only when its signature verifies with a key of
 * its issuer from the trust anchors or the certificate store. An older
 * CRL never replaces a newer one (no rollback).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "certstore.h"
#include "crl.h"
#include "db.h"
#include "log.h"
#include "xmalloc.h"

#define CRL_MAX_FILE	(64 * 1024 * 1024)

static const char crl_schema[] =
    "CREATE TABLE IF NOT EXISTS crls ("
    " issuer TEXT PRIMARY KEY,"
    " this_update INTEGER NOT NULL,"
    " next_update INTEGER NOT NULL,"
    " nrevoked INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS crl_revoked ("
    " issuer TEXT NOT NULL,"
    " serial TEXT NOT NULL,"
    " PRIMARY KEY (issuer, serial));";

int
crl_init(struct db *db, char **err)
{
	static const char *const steps[] = { crl_schema };

	return db_migrate(db, "gw-crl", steps, 1, err);
}

static time_t
crl_time(const ASN1_TIME *t)
{
	struct tm tm;

	if (t == NULL || !ASN1_TIME_to_tm(t, &tm))
		return 0;
	return timegm(&tm);
}

static char *
crl_serial(const ASN1_INTEGER *s)
{
	BIGNUM *bn = ASN1_INTEGER_to_BN(s, NULL);
	char *hex, *out;

	if (bn == NULL || (hex = BN_bn2hex(bn)) == NULL)
		fatalx("crl: serial");
	out = xstrdup(hex);
	OPENSSL_free(hex);
	BN_free(bn);
	return out;
}

static X509_CRL *
crl_read(const char *path, char **err)
{
	X509_CRL *crl = NULL;
	BIO *b;

	if ((b = BIO_new_file(path, "rb")) == NULL) {
		xasprintf(err, "%s: cannot open", path);
		return NULL;
	}
	crl = PEM_read_bio_X509_CRL(b, NULL, NULL, NULL);
	if (crl == NULL) {
		ERR_clear_error();
		(void)BIO_reset(b);
		crl = d2i_X509_CRL_bio(b, NULL);
	}
	BIO_free(b);
	ERR_clear_error();
	if (crl == NULL)
		xasprintf(err, "%s: not a CRL (PEM or DER)", path);
	return crl;
}

/* 1 when some certificate named like the CRL's issuer signed it. */
static int
crl_signed(struct db *db, X509_STORE *trust, X509_CRL *crl, const char *issuer)
{
	STACK_OF(X509) *cands = sk_X509_new_null();
	STACK_OF(X509_OBJECT) *objs;
	X509 *x;
	int ok = 0, i;

	if (trust != NULL) {
		objs = X509_STORE_get0_objects(trust);
		for (i = 0; i < sk_X509_OBJECT_num(objs); i++) {
			x = X509_OBJECT_get0_X509(sk_X509_OBJECT_value(objs,
			    i));
			if (x != NULL && X509_NAME_cmp(X509_get_subject_name(x),
			    X509_CRL_get_issuer(crl)) == 0 && X509_up_ref(x))
				sk_X509_push(cands, x);
		}
	}
	(void)certstore_by_subject(db, issuer, cands);
	for (i = 0; i < sk_X509_num(cands) && !ok; i++) {
		EVP_PKEY *pk = X509_get0_pubkey(sk_X509_value(cands, i));

		ok = pk != NULL && X509_CRL_verify(crl, pk) == 1;
	}
	sk_X509_pop_free(cands, X509_free);
	ERR_clear_error();
	return ok;
}

int
crl_import(struct db *db, X509_STORE *trust, const char *path, char **err)
{
	STACK_OF(X509_REVOKED) *rev;
	X509_CRL *crl;
	struct db_stmt *st;
	char *issuer = NULL, *serial;
	time_t this_update, next_update, have = 0;
	int n = -1, i;

	*err = NULL;
	if ((crl = crl_read(path, err)) == NULL)
		return -1;
	issuer = certstore_name(X509_CRL_get_issuer(crl));
	if (!crl_signed(db, trust, crl, issuer)) {
		xasprintf(err, "%s: no known issuer \"%s\" whose key signed "
		    "this CRL", path, issuer);
		goto out;
	}
	this_update = crl_time(X509_CRL_get0_lastUpdate(crl));
	next_update = crl_time(X509_CRL_get0_nextUpdate(crl));
	if ((st = db_prepare(db, "SELECT this_update FROM crls WHERE"
	    " issuer = ?1")) == NULL || db_bind(st, "t", issuer) == -1) {
		db_finalize(st);
		xasprintf(err, "database: %s", db_errmsg(db));
		goto out;
	}
	if (db_step(st) == DB_ROW)
		have = (time_t)db_col_int(st, 0);
	db_finalize(st);
	if (have > this_update) {
		xasprintf(err, "%s: older than the CRL already imported for "
		    "\"%s\"", path, issuer);
		goto out;
	}
	rev = X509_CRL_get_REVOKED(crl);
	if (db_begin(db) == -1)
		goto dberr;
	if (db_run(db, "DELETE FROM crl_revoked WHERE issuer = ?1", "t",
	    issuer) == -1)
		goto rollback;
	for (i = 0; i < sk_X509_REVOKED_num(rev); i++) {
		serial = crl_serial(X509_REVOKED_get0_serialNumber(
		    sk_X509_REVOKED_value(rev, i)));
		if (db_run(db, "INSERT INTO crl_revoked (issuer,"
		    " serial) VALUES (?1, ?2) ON CONFLICT DO NOTHING", "tt", issuer, serial) == -1) {
			free(serial);
			goto rollback;
		}
		free(serial);
	}
	if (db_run(db, "INSERT INTO crls (issuer, this_update, next_update,"
	    " nrevoked) VALUES (?1, ?2, ?3, ?4) ON CONFLICT(issuer) DO UPDATE"
	    " SET this_update = excluded.this_update, next_update ="
	    " excluded.next_update, nrevoked = excluded.nrevoked", "tiii",
	    issuer, (int64_t)this_update, (int64_t)next_update,
	    (int64_t)sk_X509_REVOKED_num(rev)) == -1 || db_commit(db) == -1)
		goto rollback;
	n = sk_X509_REVOKED_num(rev);
	goto out;
rollback:
	db_rollback(db);
dberr:
	xasprintf(err, "database: %s", db_errmsg(db));
out:
	free(issuer);
	X509_CRL_free(crl);
	return n;
}

int
crl_is_revoked(struct db *db, X509 *x)
{
	struct db_stmt *st;
	char *issuer = certstore_name(X509_get_issuer_name(x));
	char *serial = crl_serial(X509_get0_serialNumber(x));
	int rc = -1;

	if ((st = db_prepare(db, "SELECT 1 FROM crl_revoked WHERE issuer = ?1"
	    " AND serial = ?2")) != NULL && db_bind(st, "tt", issuer,
	    serial) == 0) {
		switch (db_step(st)) {
		case DB_ROW:
			rc = 1;
			break;
		case DB_DONE:
			rc = 0;
			break;
		default:
			break;
		}
	}
	db_finalize(st);
	free(issuer);
	free(serial);
	return rc;
}

int
crl_list(struct db *db, struct crl_entry **out)
{
	struct crl_entry *v = NULL;
	struct db_stmt *st;
	size_t n = 0;
	int rc;

	*out = NULL;
	if ((st = db_prepare(db, "SELECT issuer, this_update, next_update,"
	    " nrevoked FROM crls ORDER BY issuer")) == NULL)
		return -1;
	while ((rc = db_step(st)) == DB_ROW) {
		v = xreallocarray(v, n + 1, sizeof(*v));
		v[n].issuer = xstrdup((const char *)db_col_text(st, 0));
		v[n].this_update = (time_t)db_col_int(st, 1);
		v[n].next_update = (time_t)db_col_int(st, 2);
		v[n].nrevoked = (long)db_col_int(st, 3);
		n++;
	}
	db_finalize(st);
	if (rc != DB_DONE) {
		crl_list_free(&v, n);
		return -1;
	}
	*out = v;
	return (int)n;
}

void
crl_list_free(struct crl_entry **vp, size_t n)
{
	struct crl_entry *v = *vp;

	if (v == NULL)
		return;
	for (size_t i = 0; i < n; i++)
		free(v[i].issuer);
	free(v);
	*vp = NULL;
}

static void
crl_push_uri(char ***v, size_t *n, const char *s, size_t len)
{
	for (size_t i = 0; i < *n; i++)
		if (strlen((*v)[i]) == len && memcmp((*v)[i], s, len) == 0)
			return;
	*v = xreallocarray(*v, *n + 2, sizeof(**v));
	(*v)[(*n)++] = xstrndup(s, len);
	(*v)[*n] = NULL;
}

int
crl_distribution_points(struct db *db, char ***out)
{
	STACK_OF(DIST_POINT) *dps;
	struct db_stmt *st;
	char **v = xcalloc(1, sizeof(*v));
	size_t n = 0;
	X509 *x;
	BIO *b;
	int rc, i, j;

	*out = NULL;
	if ((st = db_prepare(db, "SELECT pem FROM certs ORDER BY subject")) ==
	    NULL) {
		free(v);
		return -1;
	}
	while ((rc = db_step(st)) == DB_ROW) {
		if ((b = BIO_new_mem_buf(db_col_blob(st, 0),
		    db_col_bytes(st, 0))) == NULL)
			fatalx("crl: BIO_new_mem_buf");
		x = PEM_read_bio_X509(b, NULL, NULL, NULL);
		BIO_free(b);
		if (x == NULL)
			continue;
		dps = X509_get_ext_d2i(x, NID_crl_distribution_points, NULL,
		    NULL);
		for (i = 0; i < sk_DIST_POINT_num(dps); i++) {
			DIST_POINT *dp = sk_DIST_POINT_value(dps, i);

			if (dp->distpoint == NULL || dp->distpoint->type != 0)
				continue;
			for (j = 0; j < sk_GENERAL_NAME_num(
			    dp->distpoint->name.fullname); j++) {
				GENERAL_NAME *g = sk_GENERAL_NAME_value(
				    dp->distpoint->name.fullname, j);

				if (g->type != GEN_URI)
					continue;
				crl_push_uri(&v, &n, (const char *)
				    ASN1_STRING_get0_data(g->d.uniformResourceIdentifier),
				    (size_t)ASN1_STRING_length(
				    g->d.uniformResourceIdentifier));
			}
		}
		sk_DIST_POINT_pop_free(dps, DIST_POINT_free);
		X509_free(x);
	}
	db_finalize(st);
	ERR_clear_error();
	if (rc != DB_DONE) {
		certstore_emails_free(&v);
		return -1;
	}
	*out = v;
	return (int)n;
}
