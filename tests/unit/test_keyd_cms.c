/*
 * keyd's signing template against OpenSSL's own CMS encoding: for an RSA
 * key (PKCS#1 v1.5 signatures are deterministic) the template's output is
 * byte for byte what CMS_sign makes with the same signing time; for an EC
 * key it verifies with CMS_verify against the certificate chain and the
 * content whose digest was signed, and carries the signing time asked
 * for. The PKI comes from tests/pki/mkpki.sh in $POSTERN_PKI (default
 * build/pki).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#include <openssl/cms.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "unit_util.h"

#include "../../internal-gw/keyd_cms.h"

static char pki[512];

struct id {
	EVP_PKEY	*pkey;
	X509		*cert;
	STACK_OF(X509)	*chain;
};

static const char *
pki_path(const char *name)
{
	static char path[700];

	snprintf(path, sizeof(path), "%s/%s", pki, name);
	return path;
}

static int
setup(void **state)
{
	const char *p = getenv("POSTERN_PKI");

	(void)state;
	snprintf(pki, sizeof(pki), "%s", p ? p : "build/pki");
	return run("sh tests/pki/mkpki.sh %s", pki) == 0 ? 0 : -1;
}

/* name.key, name.crt and the intermediate from name-chain.pem. */
static void
id_load(const char *name, struct id *id)
{
	char path[700];
	FILE *f;
	X509 *x;

	snprintf(path, sizeof(path), "%s/%s.key", pki, name);
	assert_non_null(f = fopen(path, "r"));
	assert_non_null(id->pkey = PEM_read_PrivateKey(f, NULL, NULL, NULL));
	fclose(f);
	snprintf(path, sizeof(path), "%s/%s.crt", pki, name);
	assert_non_null(f = fopen(path, "r"));
	assert_non_null(id->cert = PEM_read_X509(f, NULL, NULL, NULL));
	fclose(f);
	assert_non_null(id->chain = sk_X509_new_null());
	assert_non_null(f = fopen(pki_path("intermediate-ca.crt"), "r"));
	assert_non_null(x = PEM_read_X509(f, NULL, NULL, NULL));
	fclose(f);
	assert_true(sk_X509_push(id->chain, x) > 0);
}

static void
id_free(struct id *id)
{
	EVP_PKEY_free(id->pkey);
	X509_free(id->cert);
	sk_X509_pop_free(id->chain, X509_free);
}

/* Verifies der as a detached signature on content, chain to the CA. */
static int
verify(const unsigned char *der, int len, const char *content)
{
	const unsigned char *p = der;
	CMS_ContentInfo *cms;
	X509_STORE *st;
	BIO *in;
	int ok;

	assert_non_null(cms = d2i_CMS_ContentInfo(NULL, &p, len));
	assert_ptr_equal(p, der + len);
	assert_non_null(st = X509_STORE_new());
	assert_int_equal(X509_STORE_load_file(st, pki_path("root-ca.crt")),
	    1);
	assert_non_null(in = BIO_new_mem_buf(content, (int)strlen(content)));
	/* The certificates come from the SignedData itself. */
	ok = CMS_verify(cms, NULL, st, in, NULL, CMS_BINARY |
	    CMS_DETACHED) == 1;
	ERR_clear_error();
	BIO_free(in);
	X509_STORE_free(st);
	CMS_ContentInfo_free(cms);
	return ok;
}

static void
test_rsa_identical(void **state)
{
	unsigned char md[KEYD_CMS_DIGEST_LEN], *a, *b;
	struct keyd_cms_tmpl *t;
	struct id id;
	time_t when[] = { 1700000000, 2524608000 /* 2050: GeneralizedTime */ };
	int na, nb;

	(void)state;
	id_load("alice", &id);
	assert_int_equal(EVP_PKEY_get_base_id(id.pkey), EVP_PKEY_RSA);
	assert_non_null(t = keyd_cms_tmpl_new(id.cert, id.chain, id.pkey));
	EVP_Digest("hello\r\n", 7, md, NULL, EVP_sha256(), NULL);
	for (size_t i = 0; i < sizeof(when) / sizeof(when[0]); i++) {
		na = keyd_cms_tmpl_sign(t, id.pkey, md, when[i], &a);
		nb = keyd_cms_openssl(id.cert, id.chain, id.pkey, md, &when[i],
		    &b);
		assert_true(na > 0);
		assert_int_equal(na, nb);
		assert_memory_equal(a, b, (size_t)na);
		assert_true(verify(a, na, "hello\r\n"));
		OPENSSL_free(a);
		OPENSSL_free(b);
	}
	keyd_cms_tmpl_free(t);
	id_free(&id);
}

static void
test_ec_verifies(void **state)
{
	unsigned char md[KEYD_CMS_DIGEST_LEN], *a;
	const unsigned char *p;
	struct keyd_cms_tmpl *t;
	CMS_ContentInfo *cms;
	CMS_SignerInfo *si;
	X509_ATTRIBUTE *attr;
	ASN1_TYPE *v;
	struct id id;
	time_t now = 1764547200;	/* 2025-12-01 00:00:00 UTC */
	int n;

	(void)state;
	id_load("carol", &id);
	assert_int_equal(EVP_PKEY_get_base_id(id.pkey), EVP_PKEY_EC);
	assert_non_null(t = keyd_cms_tmpl_new(id.cert, id.chain, id.pkey));
	EVP_Digest("tunnel manifest", 15, md, NULL, EVP_sha256(), NULL);
	for (int i = 0; i < 20; i++) {	/* ECDSA lengths vary: 70-72 */
		assert_true((n = keyd_cms_tmpl_sign(t, id.pkey, md, now,
		    &a)) > 0);
		assert_true(verify(a, n, "tunnel manifest"));
		assert_false(verify(a, n, "tunnel manifesT"));
		p = a;
		assert_non_null(cms = d2i_CMS_ContentInfo(NULL, &p, n));
		si = sk_CMS_SignerInfo_value(CMS_get0_SignerInfos(cms), 0);
		assert_non_null(attr = CMS_signed_get_attr(si,
		    CMS_signed_get_attr_by_NID(si, NID_pkcs9_signingTime, -1)));
		v = X509_ATTRIBUTE_get0_type(attr, 0);
		assert_int_equal(v->type, V_ASN1_UTCTIME);
		assert_int_equal(ASN1_TIME_cmp_time_t(v->value.utctime, now),
		    0);
		assert_non_null(CMS_signed_get_attr(si,
		    CMS_signed_get_attr_by_NID(si, NID_SMIMECapabilities, -1)));
		CMS_ContentInfo_free(cms);
		OPENSSL_free(a);
	}
	keyd_cms_tmpl_free(t);
	id_free(&id);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rsa_identical),
		cmocka_unit_test(test_ec_verifies),
	};

	return cmocka_run_group_tests(tests, setup, NULL);
}
