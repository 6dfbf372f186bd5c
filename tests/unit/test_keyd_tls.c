/*
 * TLS keys through a real key holder child: the key list, RSA (PKCS#1
 * v1.5 and PSS) and ECDSA signatures made by keyd and verified with the
 * certificate alone, full TLS 1.2 and 1.3 handshakes over a BIO pair with
 * the keyd-backed server key, refusals (unknown certificate, RSA
 * decryption, a request on the wrong channel) and a vanished key holder.
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
	int fd, tfd;

	(void)state;
	snprintf(pki, sizeof(pki), "%s", p ? p : "build/pki");
	if (run("sh tests/pki/mkpki.sh %s", pki) != 0)
		return -1;
	snprintf(tmp, sizeof(tmp), "/tmp/postern-keyd-tls-XXXXXX");
	if (mkdtemp(tmp) == NULL)
		return -1;
	pki_path(ecpath, sizeof(ecpath), "gw-tls.key");
	pki_path(rsapath, sizeof(rsapath), "gw-tls-rsa.key");
	if ((keyd_pid = keyd_spawn_tls(tmp, tls_keys, 2, NULL, &fd,
	    &tfd)) == -1)
		return -1;
	kc = keyd_client_new(fd);
	tc = keyd_client_new(tfd);
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

/* Each request type belongs to one channel: SIGN on the TLS one is fatal. */
static void
test_wrong_channel(void **state)
{
	struct keyd_client *c2, *t2;
	unsigned char *der, md[KEYD_DIGEST_LEN] = { 0 };
	size_t derlen;
	char err[128];
	pid_t pid;
	int fd, tfd, st;

	(void)state;
	assert_true((pid = keyd_spawn_tls(tmp, tls_keys, 1, NULL, &fd,
	    &tfd)) > 0);
	c2 = keyd_client_new(fd);
	t2 = keyd_client_new(tfd);
	assert_int_equal(keyd_sign_digest(t2, "alice@example.com", md, &der,
	    &derlen, err, sizeof(err)), -1);
	assert_string_equal(err, "key holder unavailable");
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) != 0);
	keyd_client_free(&t2);
	keyd_client_free(&c2);
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
	int fd, tfd, st;

	(void)state;
	assert_true((pid = keyd_spawn_tls(tmp, tls_keys, 1, NULL, &fd,
	    &tfd)) > 0);
	c2 = keyd_client_new(fd);
	t2 = keyd_client_new(tfd);
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
		cmocka_unit_test(test_keyd_gone),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, setup, teardown);
}
