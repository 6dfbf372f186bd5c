/*
 * Certificate store (see certstore.h).
 *
 * SECURITY: its inputs are files an admin hands
 * to `postern-cli cert import` and certificates from our own database; no
 * network peer reaches it directly, but a certificate is foreign data all
 * the same and is checked before use: validity, chain to a configured trust
 * anchor, key usage and the recipient's address.
 */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/pkcs12.h>
#include <openssl/x509v3.h>

#include "certstore.h"
#include "crl.h"
#include "db.h"
#include "log.h"
#include "xmalloc.h"

#define CERTSTORE_MAX_FILE	(16 * 1024 * 1024)
#define CERTSTORE_MAX_DEPTH	8

static const char certstore_schema[] =
    "CREATE TABLE IF NOT EXISTS certs ("
    " fingerprint TEXT PRIMARY KEY,"
    " subject TEXT NOT NULL,"
    " issuer TEXT NOT NULL,"
    " emails TEXT NOT NULL,"		/* lowercase, comma-separated */
    " not_before INTEGER NOT NULL,"
    " not_after INTEGER NOT NULL,"
    " has_key INTEGER NOT NULL DEFAULT 0,"
    " pem TEXT NOT NULL);"
    "CREATE INDEX IF NOT EXISTS certs_subject ON certs(subject);"
    "CREATE TABLE IF NOT EXISTS cert_origin ("
    " fingerprint TEXT PRIMARY KEY,"
    " source TEXT NOT NULL,"
    " added INTEGER NOT NULL);";

static char *
certstore_ossl_err(const char *what)
{
	unsigned long e = ERR_peek_last_error();
	char *s;

	xasprintf(&s, "%s%s%s", what, e ? ": " : "",
	    e ? ERR_reason_error_string(e) : "");
	ERR_clear_error();
	return s;
}

static char *
certstore_sql_err(struct db *db, const char *what)
{
	char *s;

	xasprintf(&s, "%s: %s", what, db_errmsg(db));
	return s;
}

int
certstore_init(struct db *db, char **err)
{
	static const char *const steps[] = { certstore_schema };

	if (db_migrate(db, "gw-certstore", steps, 1, err) == -1)
		return -1;
	return crl_init(db, err);
}

void
certstore_fingerprint(X509 *x, char out[CERTSTORE_FPR_LEN + 1])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int len = 0, i;

	if (!X509_digest(x, EVP_sha256(), md, &len) || len != 32)
		fatalx("certstore: X509_digest");
	for (i = 0; i < len; i++)
		snprintf(out + 2 * i, 3, "%02x", md[i]);
}

static void
certstore_push(char ***v, size_t *n, const char *s, size_t len)
{
	char *e = xstrndup(s, len);

	for (char *p = e; *p; p++)
		if (*p >= 'A' && *p <= 'Z')
			*p += 'a' - 'A';
	for (size_t i = 0; i < *n; i++)
		if (strcmp((*v)[i], e) == 0) {
			free(e);
			return;
		}
	*v = xreallocarray(*v, *n + 2, sizeof(**v));
	(*v)[(*n)++] = e;
	(*v)[*n] = NULL;
}

/* An address we can store and compare: printable, no comma, one '@'. */
static int
certstore_email_ok(const unsigned char *s, int len)
{
	int at = 0;

	if (len <= 0 || len > 320)
		return 0;
	for (int i = 0; i < len; i++) {
		if (s[i] <= ' ' || s[i] >= 0x7f || s[i] == ',')
			return 0;
		at += s[i] == '@';
	}
	return at == 1;
}

size_t
certstore_emails(X509 *x, char ***out)
{
	GENERAL_NAMES *gens;
	GENERAL_NAME *g;
	X509_NAME *subj;
	ASN1_STRING *s;
	char **v = xcalloc(1, sizeof(*v));
	size_t n = 0;
	int i, idx;

	gens = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
	for (i = 0; i < sk_GENERAL_NAME_num(gens); i++) {
		g = sk_GENERAL_NAME_value(gens, i);
		if (g->type != GEN_EMAIL)
			continue;
		s = g->d.rfc822Name;
		if (certstore_email_ok(ASN1_STRING_get0_data(s),
		    ASN1_STRING_length(s)))
			certstore_push(&v, &n,
			    (const char *)ASN1_STRING_get0_data(s),
			    (size_t)ASN1_STRING_length(s));
	}
	GENERAL_NAMES_free(gens);
	subj = X509_get_subject_name(x);
	idx = -1;
	while ((idx = X509_NAME_get_index_by_NID(subj, NID_pkcs9_emailAddress,
	    idx)) >= 0) {
		s = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subj, idx));
		if (certstore_email_ok(ASN1_STRING_get0_data(s),
		    ASN1_STRING_length(s)))
			certstore_push(&v, &n,
			    (const char *)ASN1_STRING_get0_data(s),
			    (size_t)ASN1_STRING_length(s));
	}
	ERR_clear_error();
	*out = v;
	return n;
}

void
certstore_emails_free(char ***vp)
{
	char **v = *vp;

	if (v == NULL)
		return;
	for (size_t i = 0; v[i] != NULL; i++)
		free(v[i]);
	free(v);
	*vp = NULL;
}

char *
certstore_name(X509_NAME *name)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *p, *s;
	long len;

	if (b == NULL)
		fatalx("certstore: BIO_new");
	X509_NAME_print_ex(b, name, 0, XN_FLAG_RFC2253);
	len = BIO_get_mem_data(b, &p);
	s = xstrndup(p, (size_t)len);
	BIO_free(b);
	return s;
}

static time_t
certstore_time(const ASN1_TIME *t)
{
	struct tm tm;

	if (!ASN1_TIME_to_tm(t, &tm))
		return 0;
	return timegm(&tm);
}

static int
certstore_put_cert(struct db *db, X509 *x, int has_key, char **err)
{
	char fpr[CERTSTORE_FPR_LEN + 1], *subject, *issuer, *emails = NULL;
	char **v, *pem, *pemtext = NULL;
	size_t n, i, len = 0;
	BIO *b;
	long pemlen;
	int rv = -1;

	certstore_fingerprint(x, fpr);
	subject = certstore_name(X509_get_subject_name(x));
	issuer = certstore_name(X509_get_issuer_name(x));
	n = certstore_emails(x, &v);
	emails = xstrdup("");
	for (i = 0; i < n; i++) {
		emails = xreallocarray(emails, len + strlen(v[i]) + 2, 1);
		len += (size_t)sprintf(emails + len, "%s%s", i ? "," : "",
		    v[i]);
	}
	certstore_emails_free(&v);
	if ((b = BIO_new(BIO_s_mem())) == NULL || !PEM_write_bio_X509(b, x))
		fatalx("certstore: PEM_write_bio_X509");
	pemlen = BIO_get_mem_data(b, &pem);
	/*
	 * Text, into the TEXT column: PostgreSQL would keep a blob's bytes
	 * there as their \x... spelling. Readers take the column's bytes.
	 */
	pemtext = xstrndup(pem, (size_t)pemlen);

	if (db_run(db, "INSERT INTO certs (fingerprint, subject, issuer,"
	    " emails, not_before, not_after, has_key, pem)"
	    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"
	    " ON CONFLICT(fingerprint) DO UPDATE SET"
	    " has_key = CASE WHEN excluded.has_key > certs.has_key THEN"
	    " excluded.has_key ELSE certs.has_key END", "ttttiiit", fpr,
	    subject, issuer, emails,
	    (int64_t)certstore_time(X509_get0_notBefore(x)),
	    (int64_t)certstore_time(X509_get0_notAfter(x)), (int64_t)has_key,
	    pemtext) == -1) {
		*err = certstore_sql_err(db, "certstore: insert");
		goto out;
	}
	rv = 0;
out:
	BIO_free(b);
	free(pemtext);
	free(subject);
	free(issuer);
	free(emails);
	return rv;
}

/* Writes key, certificate and chain to keys_dir/<fpr>.pem, mode 0600. */
static int
certstore_write_key(const char *keys_dir, EVP_PKEY *pkey, X509 *cert,
    STACK_OF(X509) *chain, char **err)
{
	char fpr[CERTSTORE_FPR_LEN + 1], *path, *tmp;
	FILE *f;
	struct stat st;
	int fd, ok, i;

	if (mkdir(keys_dir, 0700) == -1 && errno != EEXIST) {
		xasprintf(err, "%s: %s", keys_dir, strerror(errno));
		return -1;
	}
	certstore_fingerprint(cert, fpr);
	xasprintf(&path, "%s/%s.pem", keys_dir, fpr);
	xasprintf(&tmp, "%s/.%s.tmp", keys_dir, fpr);
	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
	    0600)) == -1 || (f = fdopen(fd, "w")) == NULL) {
		xasprintf(err, "%s: %s", tmp, strerror(errno));
		if (fd != -1)
			close(fd);
		free(path);
		free(tmp);
		return -1;
	}
	/* The key belongs to whoever owns keys_dir (keyd's user), so keyd
	 * can re-read it after dropping privileges. */
	if (geteuid() == 0 && stat(keys_dir, &st) == 0 &&
	    fchown(fd, st.st_uid, st.st_gid) == -1) {
		xasprintf(err, "%s: chown: %s", tmp, strerror(errno));
		fclose(f);
		unlink(tmp);
		free(path);
		free(tmp);
		return -1;
	}
	ok = PEM_write_PrivateKey(f, pkey, NULL, NULL, 0, NULL, NULL) &&
	    PEM_write_X509(f, cert);
	for (i = 0; ok && i < sk_X509_num(chain); i++)
		if (X509_cmp(sk_X509_value(chain, i), cert) != 0)
			ok = PEM_write_X509(f, sk_X509_value(chain, i));
	ok = ok && fflush(f) == 0 && fsync(fileno(f)) == 0;
	if (fclose(f) != 0)
		ok = 0;
	if (!ok || rename(tmp, path) == -1) {
		xasprintf(err, "%s: cannot write key file: %s", path,
		    strerror(errno));
		unlink(tmp);
		free(path);
		free(tmp);
		return -1;
	}
	free(path);
	free(tmp);
	return 0;
}

static int
certstore_pem_cb(char *buf, int size, int rwflag, void *u)
{
	const char *pw = u;
	size_t len;

	(void)rwflag;
	if (pw == NULL)
		return -1;
	len = strlen(pw);
	if (len >= (size_t)size)
		return -1;
	memcpy(buf, pw, len);
	return (int)len;
}

static unsigned char *
certstore_slurp(const char *path, size_t *len, char **err)
{
	unsigned char *buf;
	struct stat sb;
	ssize_t n;
	size_t off = 0;
	int fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1 ||
	    fstat(fd, &sb) == -1) {
		xasprintf(err, "%s: %s", path, strerror(errno));
		if (fd != -1)
			close(fd);
		return NULL;
	}
	if (sb.st_size <= 0 || sb.st_size > CERTSTORE_MAX_FILE) {
		xasprintf(err, "%s: empty or too large", path);
		close(fd);
		return NULL;
	}
	buf = xmalloc((size_t)sb.st_size);
	while (off < (size_t)sb.st_size) {
		n = read(fd, buf + off, (size_t)sb.st_size - off);
		if (n <= 0) {
			xasprintf(err, "%s: read: %s", path,
			    n == 0 ? "short file" : strerror(errno));
			close(fd);
			OPENSSL_cleanse(buf, off);
			free(buf);
			return NULL;
		}
		off += (size_t)n;
	}
	close(fd);
	*len = off;
	return buf;
}

/* Parses buf as PEM or PKCS#12 (or a DER certificate). */
static int
certstore_parse(const unsigned char *buf, size_t len, const char *password,
    EVP_PKEY **pkey, STACK_OF(X509) **certs, char **err)
{
	PKCS12 *p12;
	X509 *x, *leaf = NULL;
	STACK_OF(X509) *ca = NULL;
	const unsigned char *p = buf;
	BIO *b;

	*pkey = NULL;
	*certs = sk_X509_new_null();
	if (memmem(buf, len, "-----BEGIN ", 11) != NULL) {
		if ((b = BIO_new_mem_buf(buf, (int)len)) == NULL)
			fatalx("certstore: BIO_new_mem_buf");
		while ((x = PEM_read_bio_X509(b, NULL, NULL, NULL)) != NULL)
			sk_X509_push(*certs, x);
		ERR_clear_error();
		BIO_free(b);
		if ((b = BIO_new_mem_buf(buf, (int)len)) == NULL)
			fatalx("certstore: BIO_new_mem_buf");
		*pkey = PEM_read_bio_PrivateKey(b, NULL, certstore_pem_cb,
		    (void *)password);
		BIO_free(b);
		if (*pkey == NULL &&
		    memmem(buf, len, "PRIVATE KEY-----", 16) != NULL) {
			*err = certstore_ossl_err("cannot read the private key"
			    " (wrong or missing password?)");
			return -1;
		}
		ERR_clear_error();
	} else if ((p12 = d2i_PKCS12(NULL, &p, (long)len)) != NULL) {
		if (!PKCS12_verify_mac(p12, password, -1) &&
		    !(password == NULL && PKCS12_verify_mac(p12, "", 0))) {
			PKCS12_free(p12);
			ERR_clear_error();
			xasprintf(err, "wrong PKCS#12 password");
			return -1;
		}
		if (!PKCS12_parse(p12, password ? password : "", pkey, &leaf,
		    &ca)) {
			PKCS12_free(p12);
			*err = certstore_ossl_err("cannot parse PKCS#12");
			return -1;
		}
		PKCS12_free(p12);
		if (leaf != NULL)
			sk_X509_push(*certs, leaf);
		while (sk_X509_num(ca) > 0)
			sk_X509_push(*certs, sk_X509_shift(ca));
		sk_X509_free(ca);
	} else {
		p = buf;
		if ((x = d2i_X509(NULL, &p, (long)len)) != NULL)
			sk_X509_push(*certs, x);
		ERR_clear_error();
	}
	if (sk_X509_num(*certs) == 0) {
		xasprintf(err, "no certificate found (expected PEM or"
		    " PKCS#12)");
		return -1;
	}
	return 0;
}

int
certstore_import(struct db *db, const char *keys_dir, const char *path,
    const char *password, char **err)
{
	STACK_OF(X509) *certs = NULL;
	EVP_PKEY *pkey = NULL;
	unsigned char *buf;
	X509 *leaf = NULL;
	size_t len;
	int i, n = -1;

	*err = NULL;
	if ((buf = certstore_slurp(path, &len, err)) == NULL)
		return -1;
	if (certstore_parse(buf, len, password, &pkey, &certs, err) == -1)
		goto out;
	if (pkey != NULL) {
		for (i = 0; i < sk_X509_num(certs) && leaf == NULL; i++)
			if (X509_check_private_key(sk_X509_value(certs, i),
			    pkey) == 1)
				leaf = sk_X509_value(certs, i);
		ERR_clear_error();
		if (leaf == NULL) {
			xasprintf(err, "%s: no certificate matches the private"
			    " key", path);
			goto out;
		}
		if (certstore_write_key(keys_dir, pkey, leaf, certs, err) == -1)
			goto out;
	}
	if (db_begin(db) == -1) {
		*err = certstore_sql_err(db, "certstore: begin");
		goto out;
	}
	for (i = 0; i < sk_X509_num(certs); i++)
		if (certstore_put_cert(db, sk_X509_value(certs, i),
		    sk_X509_value(certs, i) == leaf, err) == -1) {
			db_rollback(db);
			goto out;
		}
	if (db_commit(db) == -1) {
		*err = certstore_sql_err(db, "certstore: commit");
		db_rollback(db);
		goto out;
	}
	n = sk_X509_num(certs);
out:
	OPENSSL_cleanse(buf, len);
	free(buf);
	EVP_PKEY_free(pkey);
	sk_X509_pop_free(certs, X509_free);
	return n;
}

int
certstore_list(struct db *db, struct certstore_entry **out, char **err)
{
	struct certstore_entry *v = NULL, *e;
	struct db_stmt *st;
	size_t n = 0;
	int rc;

	*out = NULL;
	if ((st = db_prepare(db, "SELECT fingerprint, subject, issuer,"
	    " emails, not_before, not_after, has_key FROM certs"
	    " ORDER BY subject, fingerprint")) == NULL) {
		*err = certstore_sql_err(db, "certstore: list");
		return -1;
	}
	while ((rc = db_step(st)) == DB_ROW) {
		v = xreallocarray(v, n + 1, sizeof(*v));
		e = &v[n++];
		snprintf(e->fingerprint, sizeof(e->fingerprint), "%s",
		    (const char *)db_col_text(st, 0));
		e->subject = xstrdup((const char *)db_col_text(st, 1));
		e->issuer = xstrdup((const char *)db_col_text(st, 2));
		e->emails = xstrdup((const char *)db_col_text(st, 3));
		e->not_before = (time_t)db_col_int(st, 4);
		e->not_after = (time_t)db_col_int(st, 5);
		e->has_key = db_col_int(st, 6);
	}
	if (rc != DB_DONE) {
		*err = certstore_sql_err(db, "certstore: list");
		db_finalize(st);
		certstore_list_free(&v, n);
		return -1;
	}
	db_finalize(st);
	*out = v;
	return (int)n;
}

void
certstore_list_free(struct certstore_entry **vp, size_t n)
{
	struct certstore_entry *v = *vp;

	if (v == NULL)
		return;
	for (size_t i = 0; i < n; i++) {
		free(v[i].subject);
		free(v[i].issuer);
		free(v[i].emails);
	}
	free(v);
	*vp = NULL;
}

int
certstore_remove(struct db *db, const char *keys_dir, const char *what,
    char **err)
{
	struct db_stmt *st = NULL;
	char key[CERTSTORE_FPR_LEN + 1], *path, **fprs = NULL;
	const char *sel;
	size_t nf = 0, i, k = 0;
	int rc, rv = -1;

	*err = NULL;
	if (strchr(what, '@') != NULL) {
		sel = "SELECT fingerprint FROM certs WHERE"
		    " instr(',' || emails || ',', ',' || lower(?1) || ',') > 0";
	} else {
		/* Accept "AB:CD:..." as printed by openssl x509 -fingerprint. */
		for (const char *p = what; *p != '\0'; p++) {
			if (*p == ':')
				continue;
			if (k == CERTSTORE_FPR_LEN || !((*p >= '0' &&
			    *p <= '9') || (*p >= 'a' && *p <= 'f') ||
			    (*p >= 'A' && *p <= 'F'))) {
				xasprintf(err, "not a SHA-256 fingerprint: %s",
				    what);
				return -1;
			}
			key[k++] = (*p >= 'A' && *p <= 'F') ? *p + 32 : *p;
		}
		key[k] = '\0';
		if (k != CERTSTORE_FPR_LEN) {
			xasprintf(err, "not a SHA-256 fingerprint: %s", what);
			return -1;
		}
		sel = "SELECT fingerprint FROM certs WHERE fingerprint = ?1";
	}
	if ((st = db_prepare(db, sel)) == NULL ||
	    db_bind(st, "t", strchr(what, '@') != NULL ? what : key) == -1) {
		*err = certstore_sql_err(db, "certstore: remove");
		db_finalize(st);
		return -1;
	}
	while ((rc = db_step(st)) == DB_ROW) {
		fprs = xreallocarray(fprs, nf + 1, sizeof(*fprs));
		fprs[nf++] = xstrdup((const char *)db_col_text(st, 0));
	}
	if (rc != DB_DONE) {
		*err = certstore_sql_err(db, "certstore: remove");
		goto out;
	}
	for (i = 0; i < nf; i++) {
		/* The key file goes first: a row without key is harmless. */
		xasprintf(&path, "%s/%s.pem", keys_dir, fprs[i]);
		if (unlink(path) == -1 && errno != ENOENT) {
			xasprintf(err, "%s: %s", path, strerror(errno));
			free(path);
			goto out;
		}
		free(path);
		if (db_run(db, "DELETE FROM certs WHERE fingerprint = ?1", "t",
		    fprs[i]) == -1) {
			*err = certstore_sql_err(db, "certstore: remove");
			goto out;
		}
	}
	rv = (int)nf;
out:
	db_finalize(st);
	for (i = 0; i < nf; i++)
		free(fprs[i]);
	free(fprs);
	return rv;
}

X509_STORE *
certstore_trust_load(const char *path, char **err)
{
	X509_STORE *store;
	struct stat sb;
	int ok;

	*err = NULL;
	if (stat(path, &sb) == -1) {
		xasprintf(err, "%s: %s", path, strerror(errno));
		return NULL;
	}
	if ((store = X509_STORE_new()) == NULL)
		fatalx("certstore: X509_STORE_new");
	if (S_ISDIR(sb.st_mode))
		ok = X509_STORE_load_path(store, path);
	else
		ok = X509_STORE_load_file(store, path);
	if (!ok) {
		*err = certstore_ossl_err(path);
		X509_STORE_free(store);
		return NULL;
	}
	return store;
}

/* Certificates from the table whose subject is name (chain candidates). */
int
certstore_by_subject(struct db *db, const char *name, STACK_OF(X509) *out)
{
	struct db_stmt *st;
	const void *pem;
	X509 *x;
	BIO *b;
	int rc;

	if ((st = db_prepare(db, "SELECT pem FROM certs WHERE subject = ?1"))
	    == NULL)
		return -1;
	if (db_bind(st, "t", name) == -1) {
		db_finalize(st);
		return -1;
	}
	while ((rc = db_step(st)) == DB_ROW) {
		pem = db_col_blob(st, 0);
		if ((b = BIO_new_mem_buf(pem, db_col_bytes(st, 0))) ==
		    NULL)
			fatalx("certstore: BIO_new_mem_buf");
		if ((x = PEM_read_bio_X509(b, NULL, NULL, NULL)) != NULL)
			sk_X509_push(out, x);
		BIO_free(b);
	}
	db_finalize(st);
	ERR_clear_error();
	return rc == DB_DONE ? 0 : -1;
}

/* SAN rfc822Name equal to addr: exact local part, any-case domain. */
static int
certstore_san_names(X509 *x, const char *addr)
{
	GENERAL_NAMES *gens;
	GENERAL_NAME *g;
	const char *at = strrchr(addr, '@'), *s, *sat;
	size_t llen, len;
	int i, found = 0;

	if (at == NULL)
		return 0;
	llen = (size_t)(at - addr);
	gens = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
	for (i = 0; i < sk_GENERAL_NAME_num(gens) && !found; i++) {
		g = sk_GENERAL_NAME_value(gens, i);
		if (g->type != GEN_EMAIL)
			continue;
		s = (const char *)ASN1_STRING_get0_data(g->d.rfc822Name);
		len = (size_t)ASN1_STRING_length(g->d.rfc822Name);
		if (len != strlen(addr) || memchr(s, '\0', len) != NULL)
			continue;
		sat = s + llen;
		found = *sat == '@' && memcmp(s, addr, llen) == 0 &&
		    strncasecmp(sat + 1, at + 1, len - llen - 1) == 0;
	}
	GENERAL_NAMES_free(gens);
	ERR_clear_error();
	return found;
}

/* The policy of certstore.h for one candidate recipient certificate. */
static int
certstore_usable(struct db *db, X509_STORE *trust, X509 *x, const char *addr)
{
	STACK_OF(X509) *untrusted;
	X509_STORE_CTX *ctx;
	X509 *cur = x;
	uint32_t eku, ku;
	char *issuer;
	int ok, depth;

	if (!certstore_san_names(x, addr))
		return 0;
	if (X509_cmp_current_time(X509_get0_notBefore(x)) >= 0 ||
	    X509_cmp_current_time(X509_get0_notAfter(x)) <= 0)
		return 0;
	eku = X509_get_extended_key_usage(x);
	if (eku != UINT32_MAX && !(eku & (XKU_SMIME | XKU_ANYEKU)))
		return 0;
	ku = X509_get_key_usage(x);
	if (ku != UINT32_MAX && !(ku & (KU_KEY_ENCIPHERMENT | KU_KEY_AGREEMENT)))
		return 0;

	/* Intermediates imported into the table help build the chain. */
	untrusted = sk_X509_new_null();
	for (depth = 0; depth < CERTSTORE_MAX_DEPTH; depth++) {
		if (X509_check_issued(cur, cur) == X509_V_OK)
			break;
		issuer = certstore_name(X509_get_issuer_name(cur));
		ok = certstore_by_subject(db, issuer, untrusted);
		free(issuer);
		if (ok == -1 || sk_X509_num(untrusted) <= depth)
			break;
		cur = sk_X509_value(untrusted, sk_X509_num(untrusted) - 1);
	}
	if ((ctx = X509_STORE_CTX_new()) == NULL ||
	    !X509_STORE_CTX_init(ctx, trust, x, untrusted))
		fatalx("certstore: X509_STORE_CTX_init");
	ok = X509_verify_cert(ctx) == 1;
	if (!ok)
		log_debug("certstore: %s: certificate rejected: %s", addr,
		    X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx)));
	for (depth = 0; ok && depth < X509_STORE_CTX_get_num_untrusted(ctx) &&
	    depth < sk_X509_num(X509_STORE_CTX_get0_chain(ctx)); depth++)
		if (crl_is_revoked(db, sk_X509_value(
		    X509_STORE_CTX_get0_chain(ctx), depth)) != 0) {
			log_debug("certstore: %s: certificate revoked or "
			    "revocation unknown", addr);
			ok = 0;
		}
	X509_STORE_CTX_free(ctx);
	sk_X509_pop_free(untrusted, X509_free);
	ERR_clear_error();
	return ok;
}

int
certstore_find_recipient(struct db *db, X509_STORE *trust, const char *addr,
    X509 ***certs, size_t *n)
{
	struct db_stmt *st;
	X509 **v = NULL, *x;
	BIO *b;
	size_t cnt = 0;
	int rc;

	*certs = NULL;
	*n = 0;
	if ((st = db_prepare_cached(db, "SELECT pem FROM certs WHERE"
	    " instr(',' || emails || ',', ',' || lower(?1) || ',') > 0"
	    " ORDER BY not_after DESC")) == NULL)
		return -1;
	if (db_bind(st, "t", addr) == -1) {
		db_finalize(st);
		return -1;
	}
	while ((rc = db_step(st)) == DB_ROW) {
		if ((b = BIO_new_mem_buf(db_col_blob(st, 0),
		    db_col_bytes(st, 0))) == NULL)
			fatalx("certstore: BIO_new_mem_buf");
		x = PEM_read_bio_X509(b, NULL, NULL, NULL);
		BIO_free(b);
		if (x == NULL)
			continue;
		if (certstore_usable(db, trust, x, addr)) {
			v = xreallocarray(v, cnt + 1, sizeof(*v));
			v[cnt++] = x;
		} else
			X509_free(x);
	}
	db_finalize(st);
	ERR_clear_error();
	if (rc != DB_DONE) {
		certstore_certs_free(&v, cnt);
		return -1;
	}
	*certs = v;
	*n = cnt;
	return (int)cnt;
}

void
certstore_certs_free(X509 ***vp, size_t n)
{
	X509 **v = *vp;

	if (v == NULL)
		return;
	for (size_t i = 0; i < n; i++)
		X509_free(v[i]);
	free(v);
	*vp = NULL;
}

int
certstore_has_valid(struct db *db, X509_STORE *trust, const char *addr)
{
	X509 **v;
	size_t n;
	int rv;

	if ((rv = certstore_find_recipient(db, trust, addr, &v, &n)) == -1)
		return -1;
	certstore_certs_free(&v, n);
	return rv > 0;
}

int
certstore_add(struct db *db, X509 *x, const char *source, char **err)
{
	char fpr[CERTSTORE_FPR_LEN + 1];

	*err = NULL;
	if (certstore_put_cert(db, x, 0, err) == -1)
		return -1;
	certstore_fingerprint(x, fpr);
	if (db_run(db, "INSERT INTO cert_origin (fingerprint, source, added)"
	    " VALUES (?1, ?2, ?3)"
	    " ON CONFLICT(fingerprint) DO NOTHING", "tti", fpr, source,
	    (int64_t)time(NULL)) == -1) {
		*err = certstore_sql_err(db, "certstore: origin");
		return -1;
	}
	return 0;
}

char *
certstore_origin(struct db *db, X509 *x)
{
	char fpr[CERTSTORE_FPR_LEN + 1], *s = NULL;
	struct db_stmt *st;

	certstore_fingerprint(x, fpr);
	if ((st = db_prepare(db, "SELECT source FROM cert_origin"
	    " WHERE fingerprint = ?1")) == NULL)
		return NULL;
	if (db_bind(st, "t", fpr) == 0 && db_step(st) == DB_ROW)
		s = xstrdup((const char *)db_col_text(st, 0));
	db_finalize(st);
	return s;
}
