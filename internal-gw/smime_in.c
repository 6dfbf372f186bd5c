/*
 * Inbound S/MIME (see smime_in.h): decryption with a content key from the
 * key holder, and signature verification.
 *
 * SECURITY: everything here comes from the Internet. The enveloped
 * structure is split by cmsskel (bounded walker) so that OpenSSL parses
 * only the part without content, of at most CMSSKEL_MAX_SKEL bytes and
 * maxri recipients; the content is decrypted as a stream from the spool.
 * The key holder gets one RecipientInfo at a time and returns the content
 * key wrapped under a fresh random KEK, never a private key. An AEAD tag
 * or padding that does not check out fails the whole decryption: the
 * caller never delivers the partial plaintext. A signature is only ever
 * reported valid after its chain, validity, key usage, revocation and
 * From: address were checked.
 */
#include <sys/mman.h>
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/cms.h>
#include <openssl/err.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include "certstore.h"
#include "cmsdec.h"
#include "cmsskel.h"
#include "crl.h"
#include "keycache.h"
#include "log.h"
#include "smime_in.h"
#include "xmalloc.h"

/*
 * stdio sizes a FILE's buffer by the file's block size: 4 KiB for a memfd,
 * so a 20 KiB message took some 60 read and write calls on its way through
 * the inbound path. Its FILEs get SMIME_IN_BUF bytes instead. glibc's
 * setvbuf takes a size only with a buffer of the caller's, which must
 * outlive the FILE, so each thread keeps a small table of them and
 * smime_in_fclose frees a FILE's buffer after closing it. When the table
 * is full a FILE keeps stdio's own buffer: slower, never wrong.
 */
#define SMIME_IN_BUF	65536
#define SMIME_IN_NBUF	8

static __thread struct {
	FILE	*f;
	char	*buf;
} smime_in_bufs[SMIME_IN_NBUF];

FILE *
smime_in_buffered(FILE *f)
{
	char *b;

	if (f == NULL)
		return NULL;
	for (int i = 0; i < SMIME_IN_NBUF; i++) {
		if (smime_in_bufs[i].f != NULL)
			continue;
		b = xmalloc(SMIME_IN_BUF);
		if (setvbuf(f, b, _IOFBF, SMIME_IN_BUF) != 0) {
			free(b);
			break;
		}
		smime_in_bufs[i].f = f;
		smime_in_bufs[i].buf = b;
		break;
	}
	return f;
}

int
smime_in_fclose(FILE *f)
{
	int r = fclose(f);

	/* Only the pointer's value is compared: f is gone. */
	for (int i = 0; i < SMIME_IN_NBUF; i++)
		if (smime_in_bufs[i].f == f) {
			free(smime_in_bufs[i].buf);
			smime_in_bufs[i].f = NULL;
			smime_in_bufs[i].buf = NULL;
			break;
		}
	return r;
}

/*
 * An anonymous temporary file, gone when closed: in memory (memfd) when
 * it is to hold at most SMIME_IN_MEM_TMP bytes (hint), so a small message
 * costs no file system inode, else in dir so memory stays flat.
 */
FILE *
smime_in_tmp(const char *dir, off_t hint)
{
	char path[4096];
	FILE *f;
	int fd = -1;

	if (hint >= 0 && hint <= SMIME_IN_MEM_TMP)
		fd = memfd_create("postern-inbound", MFD_CLOEXEC);
	if (fd == -1 &&
	    (fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600)) == -1) {
		snprintf(path, sizeof(path), "%s/inbound.XXXXXX", dir);
		if ((fd = mkostemp(path, O_CLOEXEC)) != -1)
			unlink(path);
	}
	if (fd == -1 || (f = fdopen(fd, "w+")) == NULL) {
		log_warn("temporary file in %s", dir);
		if (fd != -1)
			close(fd);
		return NULL;
	}
	return smime_in_buffered(f);
}

/* 1 when RecipientInfo ri is addressed to cert. */
static int
smime_in_ri_for(CMS_RecipientInfo *ri, X509 *cert)
{
	STACK_OF(CMS_RecipientEncryptedKey) *reks;
	int i, hit = 0;

	switch (CMS_RecipientInfo_type(ri)) {
	case CMS_RECIPINFO_TRANS:
		hit = CMS_RecipientInfo_ktri_cert_cmp(ri, cert) == 0;
		break;
	case CMS_RECIPINFO_AGREE:
		reks = CMS_RecipientInfo_kari_get0_reks(ri);
		for (i = 0; i < sk_CMS_RecipientEncryptedKey_num(reks) && !hit;
		    i++)
			hit = CMS_RecipientEncryptedKey_cert_cmp(
			    sk_CMS_RecipientEncryptedKey_value(reks, i),
			    cert) == 0;
		break;
	default:
		break;
	}
	ERR_clear_error();
	return hit;
}

/*
 * Asks keyd to unwrap recipient i for addr, then decrypts the content
 * file into out. SMIME_IN_DONE, SMIME_IN_NOT_FOR_US (keyd could not open
 * it), SMIME_IN_LOCAL or SMIME_IN_BAD.
 */
static int
smime_in_open(struct keyd_client *kc, const char *msgid, const char *addr,
    const struct cmsskel *sk, long i, FILE *content, FILE *out, char *err,
    size_t errlen)
{
	unsigned char kek[KEYD_KEK_LEN], *der, *reply;
	const unsigned char *q;
	size_t derlen, rlen;
	CMS_ContentInfo *cms = NULL;
	int rc = SMIME_IN_BAD;

	cmsskel_der(sk, i, &der, &derlen);
	if (derlen > KEYD_MAX_UNWRAP_DER) {
		free(der);
		snprintf(err, errlen, "recipient structure too large");
		return SMIME_IN_BAD;
	}
	if (RAND_bytes(kek, sizeof(kek)) != 1)
		fatalx("smime_in: RAND_bytes");
	if (keyd_unwrap(kc, addr, msgid, kek, der, derlen, &reply, &rlen, err,
	    errlen) == -1) {
		free(der);
		OPENSSL_cleanse(kek, sizeof(kek));
		return strcmp(err, "key holder unavailable") == 0 ?
		    SMIME_IN_LOCAL : SMIME_IN_NOT_FOR_US;
	}
	free(der);
	q = reply;
	if ((cms = d2i_CMS_ContentInfo(NULL, &q, (long)rlen)) == NULL)
		fatalx("smime_in: keyd sent an unreadable CMS reply");
	free(reply);
	if (!CMS_decrypt_set1_key(cms, kek, sizeof(kek),
	    (unsigned char *)KEYD_KEK_ID, sizeof(KEYD_KEK_ID) - 1)) {
		snprintf(err, errlen, "content key not usable");
		goto out;
	}
	switch (cmsdec_content(cms, content, out, err, errlen)) {
	case CMSDEC_OK:
		break;
	case CMSDEC_LOCAL:
		rc = SMIME_IN_LOCAL;
		goto out;
	default:
		goto out;
	}
	rc = SMIME_IN_DONE;
out:
	OPENSSL_cleanse(kek, sizeof(kek));
	ERR_clear_error();
	CMS_ContentInfo_free(cms);
	return rc;
}

/* Unwraps with the first of addr's n certificates that some RI names. */
static int
smime_in_try(struct keyd_client *kc, const char *msgid, const char *addr,
    const struct cmsskel *sk, STACK_OF(CMS_RecipientInfo) *ris, X509 **certs,
    int n, FILE *content, FILE *out, int *tried, char *err, size_t errlen)
{
	int rc = SMIME_IN_NOT_FOR_US;

	for (int i = 0; i < sk_CMS_RecipientInfo_num(ris) &&
	    rc == SMIME_IN_NOT_FOR_US; i++)
		for (int c = 0; c < n && rc == SMIME_IN_NOT_FOR_US; c++) {
			if (!smime_in_ri_for(sk_CMS_RecipientInfo_value(ris,
			    i), certs[c]))
				continue;
			(*tried)++;
			rc = smime_in_open(kc, msgid, addr, sk, i, content,
			    out, err, errlen);
		}
	return rc;
}

int
smime_in_decrypt(struct keyd_client *kc, const char *msgid,
    char *const *rcpts, size_t nrcpts, FILE *derf, FILE *out,
    const char *tmpdir, size_t maxri, const char **who, char *err,
    size_t errlen)
{
	struct cmsskel sk;
	STACK_OF(CMS_RecipientInfo) *ris;
	CMS_ContentInfo *all = NULL;
	const char *why;
	X509 **certs;
	FILE *content;
	struct stat st;
	int rc = SMIME_IN_NOT_FOR_US, n, tried = 0, cached;

	*who = NULL;
	snprintf(err, errlen, "no key held for any internal recipient");
	if (fstat(fileno(derf), &st) == -1)
		st.st_size = -1;
	if ((content = smime_in_tmp(tmpdir, st.st_size)) == NULL)
		return SMIME_IN_LOCAL;
	if (cmsskel_read(derf, content, maxri, &sk, &why) == -1) {
		snprintf(err, errlen, "%s", why);
		rc = ferror(content) ? SMIME_IN_LOCAL : SMIME_IN_BAD;
		goto out;
	}
	if (sk.type != CMSSKEL_ENVELOPED && sk.type != CMSSKEL_AUTH_ENVELOPED) {
		snprintf(err, errlen, "not an enveloped CMS structure");
		rc = SMIME_IN_BAD;
		goto out;
	}
	if ((all = cmsdec_skeleton(&sk, -1)) == NULL) {
		snprintf(err, errlen, "malformed CMS recipient information");
		rc = SMIME_IN_BAD;
		goto out;
	}
	ris = CMS_get0_RecipientInfos(all);
	for (size_t r = 0; r < nrcpts && rc == SMIME_IN_NOT_FOR_US; r++) {
		/*
		 * The cached certificates first; when they open nothing,
		 * once more with a fresh list (keys may have changed).
		 */
		for (int fresh = 0; fresh < 2 && rc == SMIME_IN_NOT_FOR_US;
		    fresh++) {
			if ((n = keycache_get(kc, rcpts[r], fresh, &certs,
			    &cached)) == -1) {
				rc = SMIME_IN_LOCAL;
				snprintf(err, errlen, "key holder unavailable");
				break;
			}
			rc = smime_in_try(kc, msgid, rcpts[r], &sk, ris, certs,
			    n, content, out, &tried, err, errlen);
			if (rc == SMIME_IN_DONE)
				*who = rcpts[r];
			keyd_certs_free(&certs);
			if (!cached)
				break;
		}
	}
	if (rc == SMIME_IN_NOT_FOR_US && tried == 0)
		snprintf(err, errlen, "no key held for any internal recipient "
		    "(%zu recipient info%s)", sk.nri, sk.nri == 1 ? "" : "s");
out:
	ERR_clear_error();
	CMS_ContentInfo_free(all);
	cmsskel_free(&sk);
	smime_in_fclose(content);
	return rc;
}

/* ---- signatures ---- */

const char *
smime_in_status_name(enum smime_in_status s)
{
	switch (s) {
	case SMIME_IN_VALID:
		return "valid";
	case SMIME_IN_UNTRUSTED:
		return "untrusted";
	default:
		return "invalid";
	}
}

void
smime_in_sig_free(struct smime_in_sig *r)
{
	sk_X509_pop_free(r->chain, X509_free);
	r->chain = NULL;
}

static int
smime_in_untrusted_error(int e)
{
	switch (e) {
	case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
	case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
	case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
	case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
	case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
	case X509_V_ERR_CERT_UNTRUSTED:
		return 1;
	default:
		return 0;
	}
}

static void
smime_in_set(struct smime_in_sig *res, enum smime_in_status s,
    const char *reason)
{
	res->status = s;
	snprintf(res->reason, sizeof(res->reason), "%s", reason);
}

/* The certificate's address equal to from, else its first one. */
static int
smime_in_signer_addr(X509 *x, const char *from, struct smime_in_sig *res)
{
	char **v;
	size_t n = certstore_emails(x, &v);
	int match = 0;

	for (size_t i = 0; i < n && !match; i++)
		if (from != NULL && strcasecmp(v[i], from) == 0)
			match = 1;
	snprintf(res->signer, sizeof(res->signer), "%s", match ? from :
	    n > 0 ? v[0] : "");
	certstore_emails_free(&v);
	return match;
}

/* Chain, validity, key usage and revocation of the signer x. */
static int
smime_in_chain(X509 *x, STACK_OF(X509) *untrusted, X509_STORE *trust,
    struct db *db, struct smime_in_sig *res)
{
	X509_STORE_CTX *ctx;
	STACK_OF(X509) *chain;
	int ok, e, rv = 0;

	if (trust == NULL) {
		smime_in_set(res, SMIME_IN_UNTRUSTED, "no trust anchors "
		    "configured");
		return 0;
	}
	if ((ctx = X509_STORE_CTX_new()) == NULL ||
	    !X509_STORE_CTX_init(ctx, trust, x, untrusted))
		fatalx("smime_in: X509_STORE_CTX_init");
	X509_STORE_CTX_set_purpose(ctx, X509_PURPOSE_SMIME_SIGN);
	ok = X509_verify_cert(ctx) == 1;
	if (!ok) {
		e = X509_STORE_CTX_get_error(ctx);
		smime_in_set(res, smime_in_untrusted_error(e) ?
		    SMIME_IN_UNTRUSTED : SMIME_IN_INVALID,
		    X509_verify_cert_error_string(e));
		goto out;
	}
	chain = X509_STORE_CTX_get1_chain(ctx);
	for (int i = 0; i < sk_X509_num(chain); i++) {
		int r = crl_is_revoked(db, sk_X509_value(chain, i));

		if (r == -1) {
			rv = -1;
			break;
		}
		if (r == 1) {
			smime_in_set(res, SMIME_IN_INVALID, i == 0 ?
			    "certificate revoked" : "issuer certificate "
			    "revoked");
			break;
		}
	}
	if (rv == 0 && res->reason[0] == '\0')
		res->chain = chain;
	else
		sk_X509_pop_free(chain, X509_free);
out:
	X509_STORE_CTX_free(ctx);
	ERR_clear_error();
	return rv;
}

int
smime_in_verify(const unsigned char *sig, size_t siglen, FILE *content,
    FILE *derf, FILE *out, X509_STORE *trust, struct db *db, const char *from,
    struct smime_in_sig *res)
{
	CMS_ContentInfo *cms = NULL;
	STACK_OF(X509) *signers = NULL, *certs = NULL;
	const unsigned char *q = sig;
	BIO *in = NULL, *ob = NULL;
	unsigned int flags = CMS_NO_SIGNER_CERT_VERIFY | CMS_BINARY;
	int rv = 0;

	memset(res, 0, sizeof(*res));
	if (content != NULL)
		cms = d2i_CMS_ContentInfo(NULL, &q, (long)siglen);
	else {
		if ((in = BIO_new_fp(derf, BIO_NOCLOSE)) == NULL)
			fatalx("smime_in: BIO_new_fp");
		cms = d2i_CMS_bio(in, NULL);
		BIO_free(in);
		in = NULL;
	}
	if (cms == NULL || OBJ_obj2nid(CMS_get0_type(cms)) !=
	    NID_pkcs7_signed) {
		smime_in_set(res, SMIME_IN_INVALID, "malformed signature");
		goto out;
	}
	if (content != NULL) {
		if (fflush(content) == EOF || fseek(content, 0, SEEK_SET) == -1)
			fatal("smime_in: rewind");
		if ((in = BIO_new_fp(content, BIO_NOCLOSE)) == NULL)
			fatalx("smime_in: BIO_new_fp");
	}
	if (out != NULL && (ob = BIO_new_fp(out, BIO_NOCLOSE)) == NULL)
		fatalx("smime_in: BIO_new_fp");
	if (CMS_verify(cms, NULL, NULL, in, ob, flags) != 1) {
		smime_in_set(res, SMIME_IN_INVALID, "signature does not match "
		    "the content");
		goto out;
	}
	if (ob != NULL)
		(void)BIO_flush(ob);
	signers = CMS_get0_signers(cms);
	if (sk_X509_num(signers) < 1) {
		smime_in_set(res, SMIME_IN_INVALID, "no signer certificate");
		goto out;
	}
	certs = CMS_get1_certs(cms);
	for (int i = 0; i < sk_X509_num(signers) && rv == 0 &&
	    res->reason[0] == '\0'; i++) {
		struct smime_in_sig more;
		X509 *x = sk_X509_value(signers, i);

		if (i == 0 && !smime_in_signer_addr(x, from, res)) {
			snprintf(res->reason, sizeof(res->reason), "signer "
			    "<%.100s> is not the From: address", res->signer);
			res->status = SMIME_IN_INVALID;
			break;
		}
		if (i == 0) {
			rv = smime_in_chain(x, certs, trust, db, res);
			continue;
		}
		/* Every further signer must hold up as well. */
		memset(&more, 0, sizeof(more));
		rv = smime_in_chain(x, certs, trust, db, &more);
		if (more.reason[0] != '\0')
			smime_in_set(res, more.status, more.reason);
		smime_in_sig_free(&more);
	}
	if (rv == 0 && res->reason[0] == '\0')
		smime_in_set(res, SMIME_IN_VALID, "ok");
out:
	if (res->status != SMIME_IN_VALID && res->chain != NULL)
		smime_in_sig_free(res);
	ERR_clear_error();
	sk_X509_free(signers);
	sk_X509_pop_free(certs, X509_free);
	BIO_free(in);
	BIO_free(ob);
	CMS_ContentInfo_free(cms);
	return rv;
}
