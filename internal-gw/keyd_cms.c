/*
 * keyd's detached CMS signatures from a per-key template; see keyd_cms.h.
 *
 * CMS_sign, CMS_add1_signer and CMS_SignerInfo_sign rebuild, check and
 * free the whole structure for every message (matching the key to the
 * certificate, copying the certificates, fetching algorithms): for a
 * small message that costs about as much as an ECDSA signature. Here the
 * constant DER is taken once from a SignedData that OpenSSL built, and a
 * signature encodes two attributes, hashes, signs and concatenates:
 *
 *   ContentInfo ::= SEQUENCE { signedData OID, [0] EXPLICIT SignedData }
 *   SignedData  ::= SEQUENCE { version 1, SET { digestAlgorithm },
 *                   SEQUENCE { data OID }, [0] IMPLICIT certificates,
 *                   SET { SignerInfo } }
 *   SignerInfo  ::= SEQUENCE { version 1, IssuerAndSerialNumber,
 *                   digestAlgorithm, [0] IMPLICIT signedAttrs,
 *                   signatureAlgorithm, OCTET STRING signature }
 *
 * DER wants the members of a SET OF in ascending order of their
 * encodings: the certificates and the signed attributes are sorted. The
 * template checks itself once at load (its output must verify with
 * OpenSSL's CMS_verify); a template that fails is not used.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/cms.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "keyd_cms.h"
#include "log.h"
#include "xmalloc.h"

#define KEYD_CMS_MAX_ATTRS	8

struct keyd_cms_piece {
	unsigned char	*p;
	size_t		 len;
};

struct keyd_cms_tmpl {
	EVP_MD			*sha256;
	struct keyd_cms_piece	 certs;		/* sorted, concatenated */
	struct keyd_cms_piece	 sid;		/* IssuerAndSerialNumber */
	struct keyd_cms_piece	 digalg;
	struct keyd_cms_piece	 sigalg;
	struct keyd_cms_piece	 attrs[KEYD_CMS_MAX_ATTRS];	/* constant */
	size_t			 nattrs;
};

/* 1.2.840.113549.1.7.2, 1.2.840.113549.1.7.1, 1.2.840.113549.1.9.5/.4 */
static const unsigned char keyd_cms_oid_signed[] = { 0x06, 0x09, 0x2a, 0x86,
    0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x02 };
static const unsigned char keyd_cms_oid_data[] = { 0x06, 0x09, 0x2a, 0x86,
    0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x01 };
static const unsigned char keyd_cms_oid_time[] = { 0x06, 0x09, 0x2a, 0x86,
    0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x05 };
static const unsigned char keyd_cms_oid_md[] = { 0x06, 0x09, 0x2a, 0x86,
    0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x04 };
static const unsigned char keyd_cms_version1[] = { 0x02, 0x01, 0x01 };

/* ---- DER pieces ---- */

static size_t
keyd_cms_hdrlen(size_t n)
{
	size_t h = 2;

	if (n < 128)
		return h;
	for (; n > 0; n >>= 8)
		h++;
	return h;
}

/* Writes tag and length n at p; returns the byte after them. */
static unsigned char *
keyd_cms_hdr(unsigned char *p, unsigned char tag, size_t n)
{
	size_t k = keyd_cms_hdrlen(n) - 2;

	*p++ = tag;
	if (k == 0) {
		*p++ = (unsigned char)n;
		return p;
	}
	*p++ = (unsigned char)(0x80 | k);
	while (k-- > 0)
		*p++ = (unsigned char)(n >> (8 * k));
	return p;
}

static unsigned char *
keyd_cms_put(unsigned char *p, const void *q, size_t n)
{
	memcpy(p, q, n);
	return p + n;
}

/* X.690 11.6: compared as octet strings, the shorter padded with zeros. */
static int
keyd_cms_cmp(const void *a, const void *b)
{
	const struct keyd_cms_piece *x = a, *y = b;
	size_t n = x->len < y->len ? x->len : y->len, i;
	int c;

	if ((c = memcmp(x->p, y->p, n)) != 0)
		return c;
	for (i = n; i < x->len; i++)
		if (x->p[i] != 0)
			return 1;
	for (i = n; i < y->len; i++)
		if (y->p[i] != 0)
			return -1;
	return 0;
}

/* The DER of an OpenSSL object through its i2d function. */
#define KEYD_CMS_I2D(piece, fn, obj) do {				\
	unsigned char *keyd_cms_q = NULL;				\
	int keyd_cms_n = fn((obj), &keyd_cms_q);			\
	if (keyd_cms_n <= 0)						\
		goto fail;						\
	(piece)->p = keyd_cms_q;					\
	(piece)->len = (size_t)keyd_cms_n;				\
} while (0)

static void
keyd_cms_piece_free(struct keyd_cms_piece *c)
{
	OPENSSL_free(c->p);
	c->p = NULL;
	c->len = 0;
}

/* ---- OpenSSL's encoding: the reference the template is taken from ---- */

static CMS_ContentInfo *
keyd_cms_build(X509 *cert, STACK_OF(X509) *chain, EVP_PKEY *pkey,
    const unsigned char md[KEYD_CMS_DIGEST_LEN], const time_t *now)
{
	unsigned int flags = CMS_DETACHED | CMS_BINARY | CMS_PARTIAL;
	CMS_ContentInfo *cms;
	CMS_SignerInfo *si;
	ASN1_TIME *t = NULL;
	time_t when;
	int i;

	if ((cms = CMS_sign(NULL, NULL, NULL, NULL, flags)) == NULL)
		return NULL;
	if ((si = CMS_add1_signer(cms, cert, pkey, EVP_sha256(),
	    flags)) == NULL)
		goto fail;
	for (i = 0; i < sk_X509_num(chain); i++)
		if (!CMS_add1_cert(cms, sk_X509_value(chain, i)))
			goto fail;
	if (!CMS_signed_add1_attr_by_NID(si, NID_pkcs9_contentType,
	    V_ASN1_OBJECT, OBJ_nid2obj(NID_pkcs7_data), -1) ||
	    !CMS_signed_add1_attr_by_NID(si, NID_pkcs9_messageDigest,
	    V_ASN1_OCTET_STRING, md, KEYD_CMS_DIGEST_LEN))
		goto fail;
	if (now != NULL) {
		when = *now;
		if ((t = X509_time_adj(NULL, 0, &when)) == NULL ||
		    !CMS_signed_add1_attr_by_NID(si, NID_pkcs9_signingTime,
		    t->type, t, -1))
			goto fail;
		ASN1_TIME_free(t);
		t = NULL;
	}
	if (!CMS_SignerInfo_sign(si))
		goto fail;
	return cms;
fail:
	ASN1_TIME_free(t);
	CMS_ContentInfo_free(cms);
	return NULL;
}

int
keyd_cms_openssl(X509 *cert, STACK_OF(X509) *chain, EVP_PKEY *pkey,
    const unsigned char md[KEYD_CMS_DIGEST_LEN], const time_t *now,
    unsigned char **der)
{
	CMS_ContentInfo *cms;
	int n;

	*der = NULL;
	if ((cms = keyd_cms_build(cert, chain, pkey, md, now)) == NULL)
		return -1;
	if ((n = i2d_CMS_ContentInfo(cms, der)) <= 0)
		n = -1;
	CMS_ContentInfo_free(cms);
	return n;
}

/* ---- the template ---- */

void
keyd_cms_tmpl_free(struct keyd_cms_tmpl *t)
{
	if (t == NULL)
		return;
	EVP_MD_free(t->sha256);
	keyd_cms_piece_free(&t->certs);
	keyd_cms_piece_free(&t->sid);
	keyd_cms_piece_free(&t->digalg);
	keyd_cms_piece_free(&t->sigalg);
	for (size_t i = 0; i < t->nattrs; i++)
		keyd_cms_piece_free(&t->attrs[i]);
	free(t);
}

/* The certificates of cms, each encoded, sorted and concatenated. */
static int
keyd_cms_tmpl_certs(struct keyd_cms_tmpl *t, CMS_ContentInfo *cms)
{
	STACK_OF(X509) *sk = CMS_get1_certs(cms);
	struct keyd_cms_piece *c = NULL;
	unsigned char *p;
	int n = 0, i, rv = -1;

	if (sk == NULL || (n = sk_X509_num(sk)) == 0)
		goto out;
	c = xcalloc((size_t)n, sizeof(*c));
	for (i = 0; i < n; i++) {
		KEYD_CMS_I2D(&c[i], i2d_X509, sk_X509_value(sk, i));
		t->certs.len += c[i].len;
	}
	qsort(c, (size_t)n, sizeof(*c), keyd_cms_cmp);
	p = t->certs.p = OPENSSL_malloc(t->certs.len);
	if (p == NULL)
		goto out;
	for (i = 0; i < n; i++)
		p = keyd_cms_put(p, c[i].p, c[i].len);
	rv = 0;
fail:
out:
	for (i = 0; c != NULL && i < n; i++)
		keyd_cms_piece_free(&c[i]);
	free(c);
	sk_X509_pop_free(sk, X509_free);
	return rv;
}

/* Everything of the reference SignerInfo that stays the same. */
static int
keyd_cms_tmpl_signer(struct keyd_cms_tmpl *t, CMS_SignerInfo *si)
{
	ASN1_OCTET_STRING *keyid = NULL;
	X509_NAME *issuer = NULL;
	ASN1_INTEGER *serial = NULL;
	X509_ALGOR *dig, *sig;
	X509_ATTRIBUTE *a;
	struct keyd_cms_piece in, sn;
	unsigned char *p;
	int i, nid;

	memset(&in, 0, sizeof(in));
	memset(&sn, 0, sizeof(sn));
	if (CMS_SignerInfo_get0_signer_id(si, &keyid, &issuer, &serial) != 1 ||
	    keyid != NULL || issuer == NULL || serial == NULL)
		return -1;
	KEYD_CMS_I2D(&in, i2d_X509_NAME, issuer);
	KEYD_CMS_I2D(&sn, i2d_ASN1_INTEGER, serial);
	t->sid.len = keyd_cms_hdrlen(in.len + sn.len) + in.len + sn.len;
	if ((p = t->sid.p = OPENSSL_malloc(t->sid.len)) == NULL)
		goto fail;
	p = keyd_cms_hdr(p, 0x30, in.len + sn.len);
	p = keyd_cms_put(p, in.p, in.len);
	keyd_cms_put(p, sn.p, sn.len);
	keyd_cms_piece_free(&in);
	keyd_cms_piece_free(&sn);

	CMS_SignerInfo_get0_algs(si, NULL, NULL, &dig, &sig);
	if (dig == NULL || sig == NULL)
		return -1;
	KEYD_CMS_I2D(&t->digalg, i2d_X509_ALGOR, dig);
	KEYD_CMS_I2D(&t->sigalg, i2d_X509_ALGOR, sig);

	for (i = 0; i < CMS_signed_get_attr_count(si); i++) {
		a = CMS_signed_get_attr(si, i);
		nid = OBJ_obj2nid(X509_ATTRIBUTE_get0_object(a));
		if (nid == NID_pkcs9_signingTime ||
		    nid == NID_pkcs9_messageDigest)
			continue;
		if (t->nattrs == KEYD_CMS_MAX_ATTRS)
			return -1;
		KEYD_CMS_I2D(&t->attrs[t->nattrs], i2d_X509_ATTRIBUTE, a);
		t->nattrs++;
	}
	return 0;
fail:
	keyd_cms_piece_free(&in);
	keyd_cms_piece_free(&sn);
	return -1;
}

/* Does der verify as a detached signature on the empty content? */
static int
keyd_cms_tmpl_check(const unsigned char *der, int len, X509 *cert)
{
	const unsigned char *p = der;
	CMS_ContentInfo *cms;
	STACK_OF(X509) *sk;
	BIO *in;
	int ok = 0;

	if ((cms = d2i_CMS_ContentInfo(NULL, &p, len)) == NULL)
		return 0;
	if ((sk = sk_X509_new_null()) != NULL && sk_X509_push(sk, cert) &&
	    (in = BIO_new_mem_buf("", 0)) != NULL) {
		ok = CMS_verify(cms, sk, NULL, in, NULL, CMS_BINARY |
		    CMS_NO_SIGNER_CERT_VERIFY | CMS_NOINTERN) == 1 &&
		    p == der + len;
		BIO_free(in);
	}
	sk_X509_free(sk);
	CMS_ContentInfo_free(cms);
	return ok;
}

struct keyd_cms_tmpl *
keyd_cms_tmpl_new(X509 *cert, STACK_OF(X509) *chain, EVP_PKEY *pkey)
{
	unsigned char md[KEYD_CMS_DIGEST_LEN], *der = NULL;
	struct keyd_cms_tmpl *t = NULL;
	CMS_ContentInfo *cms = NULL;
	CMS_SignerInfo *si;
	int id = EVP_PKEY_get_base_id(pkey), n;

	/* Keys whose signature is a plain sign-the-hash of the attributes. */
	if (id != EVP_PKEY_RSA && id != EVP_PKEY_EC)
		return NULL;
	t = xcalloc(1, sizeof(*t));
	if ((t->sha256 = EVP_MD_fetch(NULL, "SHA256", NULL)) == NULL ||
	    !EVP_Digest("", 0, md, NULL, t->sha256, NULL) ||
	    (cms = keyd_cms_build(cert, chain, pkey, md, NULL)) == NULL ||
	    (si = sk_CMS_SignerInfo_value(CMS_get0_SignerInfos(cms),
	    0)) == NULL ||
	    keyd_cms_tmpl_certs(t, cms) == -1 ||
	    keyd_cms_tmpl_signer(t, si) == -1 ||
	    (n = keyd_cms_tmpl_sign(t, pkey, md, time(NULL), &der)) == -1 ||
	    !keyd_cms_tmpl_check(der, n, cert)) {
		ERR_clear_error();
		CMS_ContentInfo_free(cms);
		OPENSSL_free(der);
		keyd_cms_tmpl_free(t);
		return NULL;
	}
	CMS_ContentInfo_free(cms);
	OPENSSL_free(der);
	return t;
}

/* ---- a signature ---- */

/* signingTime as CMS_SignerInfo_sign writes it: UTCTime until 2049. */
static size_t
keyd_cms_time_attr(unsigned char out[40], time_t now)
{
	char s[20];
	struct tm tm;
	size_t n;
	unsigned char *p = out;

	if (gmtime_r(&now, &tm) == NULL)
		return 0;
	if (tm.tm_year >= 50 && tm.tm_year < 150)
		n = strftime(s, sizeof(s), "%y%m%d%H%M%SZ", &tm);
	else
		n = strftime(s, sizeof(s), "%Y%m%d%H%M%SZ", &tm);
	if (n == 0)
		return 0;
	p = keyd_cms_hdr(p, 0x30, sizeof(keyd_cms_oid_time) + 4 + n);
	p = keyd_cms_put(p, keyd_cms_oid_time, sizeof(keyd_cms_oid_time));
	p = keyd_cms_hdr(p, 0x31, 2 + n);
	p = keyd_cms_hdr(p, n == 13 ? 0x17 : 0x18, n);
	p = keyd_cms_put(p, s, n);
	return (size_t)(p - out);
}

static size_t
keyd_cms_md_attr(unsigned char out[64],
    const unsigned char md[KEYD_CMS_DIGEST_LEN])
{
	unsigned char *p = out;

	p = keyd_cms_hdr(p, 0x30, sizeof(keyd_cms_oid_md) + 4 +
	    KEYD_CMS_DIGEST_LEN);
	p = keyd_cms_put(p, keyd_cms_oid_md, sizeof(keyd_cms_oid_md));
	p = keyd_cms_hdr(p, 0x31, 2 + KEYD_CMS_DIGEST_LEN);
	p = keyd_cms_hdr(p, 0x04, KEYD_CMS_DIGEST_LEN);
	p = keyd_cms_put(p, md, KEYD_CMS_DIGEST_LEN);
	return (size_t)(p - out);
}

/* The signature over the DER of the attributes as a SET (RFC 5652 5.4). */
static unsigned char *
keyd_cms_signature(const struct keyd_cms_tmpl *t, EVP_PKEY *pkey,
    const unsigned char *set, size_t setlen, size_t *siglen)
{
	unsigned char h[EVP_MAX_MD_SIZE], *sig = NULL;
	EVP_PKEY_CTX *ctx;

	if (!EVP_Digest(set, setlen, h, NULL, t->sha256, NULL) ||
	    (ctx = EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL)) == NULL)
		return NULL;
	if (EVP_PKEY_sign_init(ctx) > 0 &&
	    EVP_PKEY_CTX_set_signature_md(ctx, t->sha256) > 0 &&
	    EVP_PKEY_sign(ctx, NULL, siglen, h, KEYD_CMS_DIGEST_LEN) > 0 &&
	    (sig = OPENSSL_malloc(*siglen)) != NULL &&
	    EVP_PKEY_sign(ctx, sig, siglen, h, KEYD_CMS_DIGEST_LEN) <= 0) {
		OPENSSL_free(sig);
		sig = NULL;
	}
	EVP_PKEY_CTX_free(ctx);
	return sig;
}

int
keyd_cms_tmpl_sign(const struct keyd_cms_tmpl *t, EVP_PKEY *pkey,
    const unsigned char md[KEYD_CMS_DIGEST_LEN], time_t now,
    unsigned char **der)
{
	struct keyd_cms_piece a[KEYD_CMS_MAX_ATTRS + 2];
	unsigned char tattr[40], mattr[64], *set, *sig, *p;
	size_t na = 0, alen = 0, setlen, siglen, silen, sislen, sdlen, sdenc;
	size_t cilen;
	size_t i, total;

	*der = NULL;
	a[na].p = tattr;
	if ((a[na++].len = keyd_cms_time_attr(tattr, now)) == 0)
		return -1;
	a[na].p = mattr;
	a[na++].len = keyd_cms_md_attr(mattr, md);
	for (i = 0; i < t->nattrs; i++)
		a[na++] = t->attrs[i];
	qsort(a, na, sizeof(a[0]), keyd_cms_cmp);
	for (i = 0; i < na; i++)
		alen += a[i].len;

	/* The attributes as the SET that is signed. */
	setlen = keyd_cms_hdrlen(alen) + alen;
	p = set = xmalloc(setlen);
	p = keyd_cms_hdr(p, 0x31, alen);
	for (i = 0; i < na; i++)
		p = keyd_cms_put(p, a[i].p, a[i].len);
	if ((sig = keyd_cms_signature(t, pkey, set, setlen, &siglen)) == NULL) {
		free(set);
		return -1;
	}

	silen = sizeof(keyd_cms_version1) + t->sid.len + t->digalg.len +
	    setlen + t->sigalg.len + keyd_cms_hdrlen(siglen) + siglen;
	sislen = keyd_cms_hdrlen(silen) + silen;
	sdlen = sizeof(keyd_cms_version1) +
	    keyd_cms_hdrlen(t->digalg.len) + t->digalg.len +
	    2 + sizeof(keyd_cms_oid_data) +
	    keyd_cms_hdrlen(t->certs.len) + t->certs.len +
	    keyd_cms_hdrlen(sislen) + sislen;
	sdenc = keyd_cms_hdrlen(sdlen) + sdlen;
	cilen = sizeof(keyd_cms_oid_signed) + keyd_cms_hdrlen(sdenc) + sdenc;
	total = keyd_cms_hdrlen(cilen) + cilen;
	if (total > INT32_MAX || (p = *der = OPENSSL_malloc(total)) == NULL) {
		free(set);
		OPENSSL_free(sig);
		return -1;
	}

	p = keyd_cms_hdr(p, 0x30, cilen);
	p = keyd_cms_put(p, keyd_cms_oid_signed, sizeof(keyd_cms_oid_signed));
	p = keyd_cms_hdr(p, 0xa0, sdenc);
	p = keyd_cms_hdr(p, 0x30, sdlen);
	p = keyd_cms_put(p, keyd_cms_version1, sizeof(keyd_cms_version1));
	p = keyd_cms_hdr(p, 0x31, t->digalg.len);
	p = keyd_cms_put(p, t->digalg.p, t->digalg.len);
	p = keyd_cms_hdr(p, 0x30, sizeof(keyd_cms_oid_data));
	p = keyd_cms_put(p, keyd_cms_oid_data, sizeof(keyd_cms_oid_data));
	p = keyd_cms_hdr(p, 0xa0, t->certs.len);
	p = keyd_cms_put(p, t->certs.p, t->certs.len);
	p = keyd_cms_hdr(p, 0x31, sislen);
	p = keyd_cms_hdr(p, 0x30, silen);
	p = keyd_cms_put(p, keyd_cms_version1, sizeof(keyd_cms_version1));
	p = keyd_cms_put(p, t->sid.p, t->sid.len);
	p = keyd_cms_put(p, t->digalg.p, t->digalg.len);
	*set = 0xa0;		/* [0] IMPLICIT in place of the SET tag */
	p = keyd_cms_put(p, set, setlen);
	p = keyd_cms_put(p, t->sigalg.p, t->sigalg.len);
	p = keyd_cms_hdr(p, 0x04, siglen);
	p = keyd_cms_put(p, sig, siglen);
	free(set);
	OPENSSL_free(sig);
	if ((size_t)(p - *der) != total)
		fatalx("keyd_cms: encoded %zu bytes of %zu",
		    (size_t)(p - *der), total);
	return (int)total;
}
