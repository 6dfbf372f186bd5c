/*
 * EVP_PKEYs whose private operations run in the key holder; see
 * keyd_tls.h. Built on the legacy RSA_METHOD and EC_KEY_METHOD: OpenSSL 3
 * keeps a key with a foreign method on its legacy code path, which pads
 * (PKCS#1 v1.5 DigestInfo or PSS) in this process and calls the method
 * only for the private exponentiation or the ECDSA signature itself.
 *
 * SECURITY: runs in the SMTP worker; what it forwards comes from libssl
 * (digests of handshake transcripts), never straight from a peer. The
 * key holder's replies are bounded by the output buffer libssl gives.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "keyd.h"
#include "keyd_tls.h"
#include "log.h"
#include "tls.h"
#include "xmalloc.h"

/* Which keyd key a public-only RSA or EC_KEY stands for. */
struct keyd_tls_ref {
	struct keyd_client	*c;
	uint32_t		 id;
};

static pthread_once_t	 keyd_tls_once = PTHREAD_ONCE_INIT;
static RSA_METHOD	*keyd_tls_rsa_meth;
static EC_KEY_METHOD	*keyd_tls_ec_meth;
static int		 keyd_tls_rsa_idx = -1;
static int		 keyd_tls_ec_idx = -1;

static void
keyd_tls_ex_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx,
    long argl, void *argp)
{
	(void)parent;
	(void)ad;
	(void)idx;
	(void)argl;
	(void)argp;
	free(ptr);
}

/* A copied key gets its own reference, so each copy frees one. */
static int
keyd_tls_ex_dup(CRYPTO_EX_DATA *to, const CRYPTO_EX_DATA *from,
    void **from_d, int idx, long argl, void *argp)
{
	struct keyd_tls_ref *r;

	(void)to;
	(void)from;
	(void)idx;
	(void)argl;
	(void)argp;
	if (*from_d != NULL) {
		r = xmalloc(sizeof(*r));
		memcpy(r, *from_d, sizeof(*r));
		*from_d = r;
	}
	return 1;
}

static int
keyd_tls_rsa_priv_enc(int flen, const unsigned char *from, unsigned char *to,
    RSA *rsa, int padding)
{
	struct keyd_tls_ref *r = RSA_get_ex_data(rsa, keyd_tls_rsa_idx);

	if (r == NULL || flen < 0)
		return -1;
	return keyd_tls_rsa(r->c, r->id, padding, from, (size_t)flen, to,
	    (size_t)RSA_size(rsa));
}

/* No suite we allow transports a key with RSA: nothing to decrypt. */
static int
keyd_tls_rsa_priv_dec(int flen, const unsigned char *from, unsigned char *to,
    RSA *rsa, int padding)
{
	(void)flen;
	(void)from;
	(void)to;
	(void)rsa;
	(void)padding;
	log_warnx("keyd: RSA decryption with a TLS key is not offered");
	return -1;
}

static int
keyd_tls_ec_sign(int type, const unsigned char *dgst, int dlen,
    unsigned char *sig, unsigned int *siglen, const BIGNUM *kinv,
    const BIGNUM *rp, EC_KEY *ec)
{
	struct keyd_tls_ref *r = EC_KEY_get_ex_data(ec, keyd_tls_ec_idx);
	int n;

	(void)type;
	*siglen = 0;
	if (r == NULL || dlen < 0 || kinv != NULL || rp != NULL)
		return 0;
	if ((n = keyd_tls_ecdsa(r->c, r->id, dgst, (size_t)dlen, sig,
	    (size_t)ECDSA_size(ec))) < 0)
		return 0;
	*siglen = (unsigned int)n;
	return 1;
}

static ECDSA_SIG *
keyd_tls_ec_sign_sig(const unsigned char *dgst, int dlen, const BIGNUM *kinv,
    const BIGNUM *rp, EC_KEY *ec)
{
	unsigned char buf[256];
	const unsigned char *p = buf;
	unsigned int n;

	if ((size_t)ECDSA_size(ec) > sizeof(buf) ||
	    !keyd_tls_ec_sign(0, dgst, dlen, buf, &n, kinv, rp, ec))
		return NULL;
	return d2i_ECDSA_SIG(NULL, &p, (long)n);
}

static void
keyd_tls_init(void)
{
	int (*setup)(EC_KEY *, BN_CTX *, BIGNUM **, BIGNUM **) = NULL;

	keyd_tls_rsa_idx = RSA_get_ex_new_index(0, NULL, NULL,
	    keyd_tls_ex_dup, keyd_tls_ex_free);
	keyd_tls_ec_idx = EC_KEY_get_ex_new_index(0, NULL, NULL,
	    keyd_tls_ex_dup, keyd_tls_ex_free);
	if (keyd_tls_rsa_idx < 0 || keyd_tls_ec_idx < 0)
		fatalx("keyd_tls: no ex_data index");

	if ((keyd_tls_rsa_meth = RSA_meth_dup(RSA_PKCS1_OpenSSL())) == NULL ||
	    !RSA_meth_set1_name(keyd_tls_rsa_meth, "postern keyd") ||
	    !RSA_meth_set_priv_enc(keyd_tls_rsa_meth, keyd_tls_rsa_priv_enc) ||
	    !RSA_meth_set_priv_dec(keyd_tls_rsa_meth, keyd_tls_rsa_priv_dec) ||
	    !RSA_meth_set_flags(keyd_tls_rsa_meth,
	    RSA_meth_get_flags(keyd_tls_rsa_meth) | RSA_METHOD_FLAG_NO_CHECK))
		fatalx("keyd_tls: RSA_METHOD");

	if ((keyd_tls_ec_meth = EC_KEY_METHOD_new(EC_KEY_OpenSSL())) == NULL)
		fatalx("keyd_tls: EC_KEY_METHOD");
	EC_KEY_METHOD_get_sign(keyd_tls_ec_meth, NULL, &setup, NULL);
	EC_KEY_METHOD_set_sign(keyd_tls_ec_meth, keyd_tls_ec_sign, setup,
	    keyd_tls_ec_sign_sig);
}

/* The id of the keyd key whose public half is pub, or -1 (*err set). */
static long
keyd_tls_find(struct keyd_client *c, EVP_PKEY *pub, char **err)
{
	struct keyd_tls_pub *v;
	const unsigned char *p;
	EVP_PKEY *k;
	long id = -1;
	int n;

	if ((n = keyd_tls_keys(c, &v)) == -1) {
		xasprintf(err, "key holder unavailable");
		return -1;
	}
	for (int i = 0; i < n && id == -1; i++) {
		p = v[i].spki;
		if ((k = d2i_PUBKEY(NULL, &p, (long)v[i].spkilen)) == NULL)
			fatalx("keyd_tls: key holder sent a bad public key");
		if (EVP_PKEY_eq(pub, k) == 1)
			id = v[i].id;
		EVP_PKEY_free(k);
	}
	ERR_clear_error();
	keyd_tls_keys_free(&v, n);
	if (id == -1)
		xasprintf(err, "the key holder has no private key for this "
		    "certificate");
	return id;
}

EVP_PKEY *
keyd_tls_pkey(struct keyd_client *c, X509 *cert, char **err)
{
	struct keyd_tls_ref *ref;
	EVP_PKEY *pub, *pkey;
	const RSA *pubrsa;
	const EC_KEY *pubec;
	RSA *rsa;
	EC_KEY *ec;
	long id;

	*err = NULL;
	pthread_once(&keyd_tls_once, keyd_tls_init);
	if ((pub = X509_get0_pubkey(cert)) == NULL) {
		xasprintf(err, "certificate without a usable public key");
		ERR_clear_error();
		return NULL;
	}
	if ((id = keyd_tls_find(c, pub, err)) == -1)
		return NULL;
	ref = xmalloc(sizeof(*ref));
	ref->c = c;
	ref->id = (uint32_t)id;
	if ((pkey = EVP_PKEY_new()) == NULL)
		fatalx("keyd_tls: EVP_PKEY_new");

	/* Fresh copies: the certificate's own key object stays untouched. */
	if (EVP_PKEY_is_a(pub, "RSA")) {
		if ((pubrsa = EVP_PKEY_get0_RSA(pub)) == NULL ||
		    (rsa = RSAPublicKey_dup(pubrsa)) == NULL)
			fatalx("keyd_tls: cannot copy an RSA public key");
		if (!RSA_set_method(rsa, keyd_tls_rsa_meth) ||
		    !RSA_set_ex_data(rsa, keyd_tls_rsa_idx, ref) ||
		    !EVP_PKEY_assign_RSA(pkey, rsa))
			fatalx("keyd_tls: cannot build the RSA key");
	} else {
		if ((pubec = EVP_PKEY_get0_EC_KEY(pub)) == NULL ||
		    (ec = EC_KEY_dup(pubec)) == NULL)
			fatalx("keyd_tls: cannot copy an EC public key");
		if (!EC_KEY_set_method(ec, keyd_tls_ec_meth) ||
		    !EC_KEY_set_ex_data(ec, keyd_tls_ec_idx, ref) ||
		    !EVP_PKEY_assign_EC_KEY(pkey, ec))
			fatalx("keyd_tls: cannot build the EC key");
	}
	return pkey;
}

EVP_PKEY *
keyd_tls_pkey_file(struct keyd_client *c, const char *cert_file, char **err)
{
	EVP_PKEY *pkey;
	X509 *cert;
	BIO *b;
	char *e;

	*err = NULL;
	if ((b = BIO_new_file(cert_file, "r")) == NULL ||
	    (cert = PEM_read_bio_X509(b, NULL, NULL, NULL)) == NULL) {
		xasprintf(err, "certificate %s: %s", cert_file,
		    ERR_reason_error_string(ERR_peek_last_error()));
		ERR_clear_error();
		BIO_free(b);
		return NULL;
	}
	BIO_free(b);
	if ((pkey = keyd_tls_pkey(c, cert, &e)) == NULL) {
		xasprintf(err, "%s: %s", cert_file, e);
		free(e);
	}
	X509_free(cert);
	return pkey;
}

SSL_CTX *
keyd_tls_server_ctx(struct keyd_client *c, const char *cert_file,
    const char *client_ca_file, char **err)
{
	EVP_PKEY *pkey;
	SSL_CTX *ctx;

	if ((pkey = keyd_tls_pkey_file(c, cert_file, err)) == NULL)
		return NULL;
	ctx = tls_server_ctx_pkey(cert_file, pkey, client_ca_file, err);
	EVP_PKEY_free(pkey);
	return ctx;
}
