/*
 * TLS server contexts; see tls.h.
 *
 * SECURITY: the files are the admin's; the peer's certificate is untrusted
 * and only ever hashed here, never interpreted.
 */
#include <stdio.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "tls.h"
#include "xmalloc.h"

/* TLS 1.2 suites; TLS 1.3 suites are all AEAD and keep their defaults. */
#define TLS_CIPHERS_12	"ECDHE+AESGCM:ECDHE+CHACHA20:!aNULL:!SHA1"

static void
tls_error(char **err, const char *what, const char *file)
{
	unsigned long e = ERR_get_error();
	char buf[256];

	ERR_error_string_n(e, buf, sizeof(buf));
	xasprintf(err, "%s%s%s: %s", what, file ? " " : "", file ? file : "",
	    e ? buf : "failed");
	ERR_clear_error();
}

/* Any client certificate is fine: the fingerprint is pinned later. */
static int
tls_verify_any(int ok, X509_STORE_CTX *ctx)
{
	(void)ok;
	(void)ctx;
	return 1;
}

static SSL_CTX *
tls_server_ctx_new(const char *cert_file, const char *key_file,
    EVP_PKEY *pkey, const char *client_ca_file, char **err)
{
	static const unsigned char sid[] = "postern";
	STACK_OF(X509_NAME) *names;
	SSL_CTX *ctx;

	*err = NULL;
	if ((ctx = SSL_CTX_new(TLS_server_method())) == NULL) {
		tls_error(err, "SSL_CTX_new", NULL);
		return NULL;
	}
	if (!SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION)) {
		tls_error(err, "TLS minimum version", NULL);
		goto fail;
	}
	SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION |
	    SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
	if (!SSL_CTX_set_cipher_list(ctx, TLS_CIPHERS_12)) {
		tls_error(err, "cipher list", NULL);
		goto fail;
	}
	if (SSL_CTX_use_certificate_chain_file(ctx, cert_file) != 1) {
		tls_error(err, "certificate", cert_file);
		goto fail;
	}
	if (pkey != NULL ? SSL_CTX_use_PrivateKey(ctx, pkey) != 1 :
	    SSL_CTX_use_PrivateKey_file(ctx, key_file, SSL_FILETYPE_PEM) != 1) {
		tls_error(err, "private key", key_file);
		goto fail;
	}
	if (SSL_CTX_check_private_key(ctx) != 1) {
		tls_error(err, "key does not match certificate", key_file);
		goto fail;
	}
	SSL_CTX_set_session_id_context(ctx, sid, sizeof(sid) - 1);
	if (client_ca_file != NULL) {
		if ((names = SSL_load_client_CA_file(client_ca_file)) == NULL) {
			tls_error(err, "client CA file", client_ca_file);
			goto fail;
		}
		SSL_CTX_set_client_CA_list(ctx, names);
		SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, tls_verify_any);
	} else
		SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	return ctx;
fail:
	SSL_CTX_free(ctx);
	return NULL;
}

SSL_CTX *
tls_server_ctx(const char *cert_file, const char *key_file,
    const char *client_ca_file, char **err)
{
	return tls_server_ctx_new(cert_file, key_file, NULL, client_ca_file,
	    err);
}

SSL_CTX *
tls_server_ctx_pkey(const char *cert_file, EVP_PKEY *pkey,
    const char *client_ca_file, char **err)
{
	return tls_server_ctx_new(cert_file, NULL, pkey, client_ca_file, err);
}

void
tls_peer_fingerprint(SSL *ssl, char out[TLS_FP_LEN + 1])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	X509 *cert;

	out[0] = '\0';
	if (ssl == NULL || (cert = SSL_get1_peer_certificate(ssl)) == NULL)
		return;
	if (X509_digest(cert, EVP_sha256(), md, &mdlen) == 1 && mdlen == 32) {
		for (unsigned int i = 0; i < mdlen; i++)
			snprintf(out + 2 * i, 3, "%02x", md[i]);
	}
	X509_free(cert);
}
