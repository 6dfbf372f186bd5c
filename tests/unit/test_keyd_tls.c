/*
 * TLS keys through a real key holder child: the key list, RSA (PKCS#1
 * v1.5 and PSS) and ECDSA signatures made by keyd and verified with the
 * certificate alone, full TLS 1.2 and 1.3 handshakes over a BIO pair with
 * the keyd-backed server key, refusals (unknown certificate, RSA
 * decryption, padding modes TLS does not use, a request on the wrong
 * channel) and a vanished key holder.
 * Runs from the source root; the PKI comes from tests/pki/mkpki.sh in
 * $POSTERN_PKI (default build/pki).
 */
#include <sys/types.h>
#include <sys/wait.h>

#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "unit_util.h"

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "../../internal-gw/keyd.h"
#include "../../internal-gw/keyd_tls.h"

static char pki[512], tmp[512], ecpath[700], rsapath[700];
static const char *tls_keys[2] = { ecpath, rsapath };
static struct keyd_client *kc, *tc;
static pid_t keyd_pid;

static void
pki_path(char *out, size_t len, const char *name)
{
	snprintf(out, len, "%s/%s", pki, name);
}

/* A key holder with the first ntls TLS keys, one channel of each kind. */
static pid_t
spawn_keyd(size_t ntls, struct keyd_client **c, struct keyd_client **t)
{
	struct keyd_conf conf;

	memset(&conf, 0, sizeof(conf));
	conf.keys_dir = tmp;
	conf.tls_keys = tls_keys;
	conf.ntls = ntls;
	conf.workers = 1;
	return keyd_spawn(&conf, c, t);
}

static X509 *
load_cert(const char *name)
{
	char path[700];
	X509 *x;
	FILE *f;

	pki_path(path, sizeof(path), name);
	assert_non_null(f = fopen(path, "r"));
	x = PEM_read_X509(f, NULL, NULL, NULL);
	fclose(f);
	assert_non_null(x);
	return x;
}

static EVP_PKEY *
keyd_key(const char *certname)
{
	X509 *x = load_cert(certname);
	EVP_PKEY *k;
	char *err = NULL;

	k = keyd_tls_pkey(tc, x, &err);
	if (k == NULL)
		fail_msg("%s: %s", certname, err);
	X509_free(x);
	return k;
}

static int
setup(void **state)
{
	const char *p = getenv("POSTERN_PKI");
	(void)state;
	snprintf(pki, sizeof(pki), "%s", p ? p : "build/pki");
	if (run("sh tests/pki/mkpki.sh %s", pki) != 0)
		return -1;
	snprintf(tmp, sizeof(tmp), "/tmp/postern-keyd-tls-XXXXXX");
	if (mkdtemp(tmp) == NULL)
		return -1;
	pki_path(ecpath, sizeof(ecpath), "gw-tls.key");
	pki_path(rsapath, sizeof(rsapath), "gw-tls-rsa.key");
	if ((keyd_pid = spawn_keyd(2, &kc, &tc)) == -1)
		return -1;
	return 0;
}

static int
teardown(void **state)
{
	int st;

	(void)state;
	keyd_client_free(&tc);
	keyd_client_free(&kc);
	waitpid(keyd_pid, &st, 0);
	run("rm -rf %s", tmp);
	return 0;
}

/* keyd lists both keys by index, with the certificates' public keys. */
static void
test_keys_listed(void **state)
{
	struct keyd_tls_pub *v;
	const unsigned char *p;
	const char *certs[2] = { "gw-tls.crt", "gw-tls-rsa.crt" };
	EVP_PKEY *k;
	X509 *x;
	char **signers;
	int n;

	(void)state;
	assert_int_equal(n = keyd_tls_keys(tc, &v), 2);
	for (int i = 0; i < n; i++) {
		assert_int_equal(v[i].id, (uint32_t)i);
		p = v[i].spki;
		assert_non_null(k = d2i_PUBKEY(NULL, &p, (long)v[i].spkilen));
		x = load_cert(certs[i]);
		assert_int_equal(EVP_PKEY_eq(X509_get0_pubkey(x), k), 1);
		X509_free(x);
		EVP_PKEY_free(k);
	}
	keyd_tls_keys_free(&v, n);
	assert_null(v);
	/* The signing channel is still there, beside the TLS one. */
	assert_int_equal(keyd_signers(kc, &signers), 0);
	keyd_signers_free(&signers);
}

/* Signs with the keyd-backed key, verifies with the certificate's key. */
static void
sign_verify(const char *certname, int pad, const EVP_MD *md)
{
	static const unsigned char msg[] = "handshake transcript stand-in";
	unsigned char sig[1024];
	size_t siglen = sizeof(sig);
	EVP_PKEY *k = keyd_key(certname);
	EVP_PKEY_CTX *pctx;
	EVP_MD_CTX *m;
	X509 *x = load_cert(certname);

	assert_non_null(m = EVP_MD_CTX_new());
	assert_int_equal(EVP_DigestSignInit(m, &pctx, md, NULL, k), 1);
	if (pad != 0) {
		assert_true(EVP_PKEY_CTX_set_rsa_padding(pctx, pad) > 0);
		if (pad == RSA_PKCS1_PSS_PADDING)
			assert_true(EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx,
			    RSA_PSS_SALTLEN_DIGEST) > 0);
	}
	assert_int_equal(EVP_DigestSign(m, sig, &siglen, msg, sizeof(msg)), 1);
	EVP_MD_CTX_free(m);

	assert_non_null(m = EVP_MD_CTX_new());
	assert_int_equal(EVP_DigestVerifyInit(m, &pctx, md, NULL,
	    X509_get0_pubkey(x)), 1);
	if (pad != 0) {
		assert_true(EVP_PKEY_CTX_set_rsa_padding(pctx, pad) > 0);
		if (pad == RSA_PKCS1_PSS_PADDING)
			assert_true(EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx,
			    RSA_PSS_SALTLEN_DIGEST) > 0);
	}
	assert_int_equal(EVP_DigestVerify(m, sig, siglen, msg, sizeof(msg)), 1);
	/* ... and the signature is bound to the message. */
	sig[siglen / 2] ^= 1;
	assert_int_not_equal(EVP_DigestVerify(m, sig, siglen, msg,
	    sizeof(msg)), 1);
	ERR_clear_error();
	EVP_MD_CTX_free(m);
	X509_free(x);
	EVP_PKEY_free(k);
}

static void
test_rsa_pkcs1(void **state)
{
	(void)state;
	sign_verify("gw-tls-rsa.crt", RSA_PKCS1_PADDING, EVP_sha256());
}

static void
test_rsa_pss(void **state)
{
	(void)state;
	sign_verify("gw-tls-rsa.crt", RSA_PKCS1_PSS_PADDING, EVP_sha256());
	sign_verify("gw-tls-rsa.crt", RSA_PKCS1_PSS_PADDING, EVP_sha512());
}

static void
test_ecdsa(void **state)
{
	(void)state;
	sign_verify("gw-tls.crt", 0, EVP_sha256());
	sign_verify("gw-tls.crt", 0, EVP_sha384());
}

/* Drives both ends over a BIO pair until the handshake is done. */
static void
handshake(const char *chain, int version, int want_type)
{
	SSL_CTX *sctx, *cctx;
	SSL *s, *c;
	BIO *sb, *cb;
	char path[700], cafile[700], *err = NULL;
	int rs = 0, rc = 0, nid = NID_undef;

	pki_path(path, sizeof(path), chain);
	pki_path(cafile, sizeof(cafile), "ca-bundle.pem");
	sctx = keyd_tls_server_ctx(tc, path, NULL, &err);
	if (sctx == NULL)
		fail_msg("%s", err);
	assert_int_equal(SSL_CTX_set_min_proto_version(sctx, version), 1);
	assert_int_equal(SSL_CTX_set_max_proto_version(sctx, version), 1);
	assert_non_null(cctx = SSL_CTX_new(TLS_client_method()));
	assert_int_equal(SSL_CTX_load_verify_locations(cctx, cafile, NULL), 1);
	SSL_CTX_set_verify(cctx, SSL_VERIFY_PEER, NULL);

	assert_non_null(s = SSL_new(sctx));
	assert_non_null(c = SSL_new(cctx));
	assert_int_equal(BIO_new_bio_pair(&sb, 0, &cb, 0), 1);
	SSL_set_bio(s, sb, sb);
	SSL_set_bio(c, cb, cb);
	SSL_set_accept_state(s);
	SSL_set_connect_state(c);
	assert_int_equal(SSL_set1_host(c, "localhost"), 1);
	for (int i = 0; i < 100 && (rs != 1 || rc != 1); i++) {
		if (rc != 1)
			rc = SSL_do_handshake(c);
		if (rs != 1)
			rs = SSL_do_handshake(s);
	}
	if (rs != 1 || rc != 1)
		fail_msg("handshake with %s failed: %s", chain,
		    ERR_reason_error_string(ERR_peek_last_error()));
	assert_int_equal(SSL_version(c), version);
	assert_int_equal(SSL_get_verify_result(c), X509_V_OK);
	assert_int_equal(SSL_get_peer_signature_type_nid(c, &nid), 1);
	assert_int_equal(nid, want_type);

	SSL_free(c);
	SSL_free(s);
	SSL_CTX_free(cctx);
	SSL_CTX_free(sctx);
}

static void
test_handshakes(void **state)
{
	(void)state;
	handshake("gw-tls-chain.pem", TLS1_2_VERSION, EVP_PKEY_EC);
	handshake("gw-tls-chain.pem", TLS1_3_VERSION, EVP_PKEY_EC);
	handshake("gw-tls-rsa-chain.pem", TLS1_2_VERSION, EVP_PKEY_RSA_PSS);
	handshake("gw-tls-rsa-chain.pem", TLS1_3_VERSION, EVP_PKEY_RSA_PSS);
}

static void
test_unknown_certificate(void **state)
{
	X509 *x = load_cert("portal-tls.crt");
	char *err = NULL;

	(void)state;
	assert_null(keyd_tls_pkey(tc, x, &err));
	assert_non_null(err);
	assert_non_null(strstr(err, "no private key"));
	free(err);
	X509_free(x);
}

/* keyd signs, but is no decryption oracle. */
static void
test_rsa_decrypt_refused(void **state)
{
	unsigned char ct[512], pt[512];
	size_t ctlen = sizeof(ct), ptlen = sizeof(pt);
	EVP_PKEY *k = keyd_key("gw-tls-rsa.crt");
	X509 *x = load_cert("gw-tls-rsa.crt");
	EVP_PKEY_CTX *ctx;

	(void)state;
	assert_non_null(ctx = EVP_PKEY_CTX_new(X509_get0_pubkey(x), NULL));
	assert_int_equal(EVP_PKEY_encrypt_init(ctx), 1);
	assert_int_equal(EVP_PKEY_encrypt(ctx, ct, &ctlen,
	    (const unsigned char *)"secret", 6), 1);
	EVP_PKEY_CTX_free(ctx);
	assert_non_null(ctx = EVP_PKEY_CTX_new(k, NULL));
	assert_int_equal(EVP_PKEY_decrypt_init(ctx), 1);
	assert_true(EVP_PKEY_decrypt(ctx, pt, &ptlen, ct, ctlen) <= 0);
	ERR_clear_error();
	EVP_PKEY_CTX_free(ctx);
	X509_free(x);
	EVP_PKEY_free(k);
}

/*
 * Each request type belongs to one kind of channel: SIGN on a TLS channel
 * is refused, and keyd stays up.
 */
static void
test_wrong_channel(void **state)
{
	struct keyd_tls_pub *v;
	unsigned char *der, md[KEYD_DIGEST_LEN] = { 0 };
	size_t derlen;
	char err[128];
	int n;

	(void)state;
	assert_int_equal(keyd_sign_digest(tc, "alice@example.com",
	    KEYD_PURPOSE_MAIL, "unit-test", md, &der, &derlen, err,
	    sizeof(err)), -1);
	assert_string_equal(err, "request not allowed on this channel");
	assert_int_equal(n = keyd_tls_keys(tc, &v), 2);
	keyd_tls_keys_free(&v, n);
}

/*
 * The TLS channel signs only what TLS 1.2 and 1.3 sign: no raw RSA on a
 * block that is not PSS-encoded, no PKCS#1 v1.5 on what is not a SHA-2
 * DigestInfo, no other padding mode, no ECDSA on a digest of another
 * size. Each refusal leaves keyd serving.
 */
static void
test_tls_padding_refused(void **state)
{
	unsigned char in[512], out[1024], di[51];
	X509 *x = load_cert("gw-tls-rsa.crt");
	size_t k = (size_t)EVP_PKEY_get_size(X509_get0_pubkey(x));
	static const unsigned char sha256_di[19] = {
		0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01,
		0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20,
	};

	(void)state;
	X509_free(x);
	/* A raw block: what a decryption or a forged signature needs. */
	memset(in, 0x5a, sizeof(in));
	in[0] = 0;
	assert_int_equal(keyd_tls_rsa(tc, 1, RSA_NO_PADDING, in, k, out,
	    sizeof(out)), -1);
	in[k - 1] = 0xbc;	/* the PSS trailer alone is not enough */
	assert_int_equal(keyd_tls_rsa(tc, 1, RSA_NO_PADDING, in, k, out,
	    sizeof(out)), -1);
	/* PKCS#1 v1.5 over bytes that are no DigestInfo, e.g. MD5+SHA-1. */
	assert_int_equal(keyd_tls_rsa(tc, 1, RSA_PKCS1_PADDING, in, 36, out,
	    sizeof(out)), -1);
	/* Other padding modes, whatever the input. */
	assert_int_equal(keyd_tls_rsa(tc, 1, RSA_PKCS1_OAEP_PADDING, in, 32,
	    out, sizeof(out)), -1);
	assert_int_equal(keyd_tls_rsa(tc, 1, RSA_X931_PADDING, in, 32, out,
	    sizeof(out)), -1);
	/* ECDSA over a SHA-1 sized digest. */
	assert_int_equal(keyd_tls_ecdsa(tc, 0, in, 20, out, sizeof(out)), -1);
	/* An RSA operation with the EC key. */
	memcpy(di, sha256_di, sizeof(sha256_di));
	memset(di + sizeof(sha256_di), 7, 32);
	assert_int_equal(keyd_tls_rsa(tc, 0, RSA_PKCS1_PADDING, di,
	    sizeof(di), out, sizeof(out)), -1);
	/* keyd is still there, and signs a SHA-256 DigestInfo. */
	assert_int_equal(keyd_tls_rsa(tc, 1, RSA_PKCS1_PADDING, di,
	    sizeof(di), out, sizeof(out)), (int)k);
	assert_int_equal(keyd_tls_ecdsa(tc, 0, in, 32, out, sizeof(out)) > 0,
	    1);
}

/* The checks themselves, against encodings OpenSSL makes. */
static void
test_tls_rsa_allowed(void **state)
{
	X509 *x = load_cert("gw-tls-rsa.crt");
	EVP_PKEY *pub = X509_get0_pubkey(x);
	const RSA *rsa = EVP_PKEY_get0_RSA(pub);
	unsigned char em[512], mh[64];
	int bits = EVP_PKEY_get_bits(pub);
	size_t k = (size_t)EVP_PKEY_get_size(pub);
	const EVP_MD *mds[3] = { EVP_sha256(), EVP_sha384(), EVP_sha512() };

	(void)state;
	memset(mh, 3, sizeof(mh));
	for (int i = 0; i < 3; i++) {
		assert_int_equal(RSA_padding_add_PKCS1_PSS_mgf1((RSA *)rsa, em,
		    mh, mds[i], NULL, RSA_PSS_SALTLEN_DIGEST), 1);
		assert_int_equal(keyd_tls_rsa_allowed(RSA_NO_PADDING, em, k,
		    bits), 1);
		/* A salt of another length is not what TLS sends. */
		assert_int_equal(RSA_padding_add_PKCS1_PSS_mgf1((RSA *)rsa, em,
		    mh, mds[i], NULL, 20), 1);
		assert_int_equal(keyd_tls_rsa_allowed(RSA_NO_PADDING, em, k,
		    bits), 0);
	}
	assert_int_equal(RSA_padding_add_PKCS1_PSS_mgf1((RSA *)rsa, em, mh,
	    EVP_sha256(), NULL, RSA_PSS_SALTLEN_DIGEST), 1);
	em[k / 2] ^= 1;
	assert_int_equal(keyd_tls_rsa_allowed(RSA_NO_PADDING, em, k, bits), 0);
	assert_int_equal(keyd_tls_rsa_allowed(RSA_NO_PADDING, em, k - 1,
	    bits), 0);
	assert_int_equal(keyd_tls_rsa_allowed(RSA_PKCS1_OAEP_PADDING, em, 32,
	    bits), 0);
	X509_free(x);
}

/* The private half is only in keyd: without it nothing gets signed. */
static void
test_keyd_gone(void **state)
{
	struct keyd_client *c2, *t2;
	unsigned char sig[256];
	size_t siglen = sizeof(sig);
	EVP_MD_CTX *m;
	EVP_PKEY *k;
	X509 *x = load_cert("gw-tls.crt");
	char *err = NULL;
	pid_t pid;
	int st;

	(void)state;
	assert_true((pid = spawn_keyd(1, &c2, &t2)) > 0);
	assert_non_null(k = keyd_tls_pkey(t2, x, &err));
	kill(pid, SIGKILL);
	waitpid(pid, &st, 0);
	assert_non_null(m = EVP_MD_CTX_new());
	assert_int_equal(EVP_DigestSignInit(m, NULL, EVP_sha256(), NULL, k), 1);
	assert_int_not_equal(EVP_DigestSign(m, sig, &siglen,
	    (const unsigned char *)"x", 1), 1);
	ERR_clear_error();
	EVP_MD_CTX_free(m);
	EVP_PKEY_free(k);
	X509_free(x);
	keyd_client_free(&t2);
	keyd_client_free(&c2);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_keys_listed),
		cmocka_unit_test(test_rsa_pkcs1),
		cmocka_unit_test(test_rsa_pss),
		cmocka_unit_test(test_ecdsa),
		cmocka_unit_test(test_handshakes),
		cmocka_unit_test(test_unknown_certificate),
		cmocka_unit_test(test_rsa_decrypt_refused),
		cmocka_unit_test(test_wrong_channel),
		cmocka_unit_test(test_tls_padding_refused),
		cmocka_unit_test(test_tls_rsa_allowed),
		cmocka_unit_test(test_keyd_gone),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, setup, teardown);
}
