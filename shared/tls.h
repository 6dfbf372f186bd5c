/*
 * TLS server contexts for STARTTLS and HTTPS: TLS 1.2 minimum, forward-secret
 * AEAD ciphers only, no compression, no renegotiation. A client certificate
 * is requested only when a CA file is given, and any certificate is
 * accepted: the application pins the peer by its SHA-256 fingerprint.
 */
#ifndef POSTERN_TLS_H
#define POSTERN_TLS_H

#include <openssl/ssl.h>

#define TLS_FP_LEN	64	/* hex SHA-256 */

/* NULL with *err set (caller frees) when a file cannot be used. */
SSL_CTX	*tls_server_ctx(const char *cert_file, const char *key_file,
	    const char *client_ca_file, char **err);
/*
 * The same with a private key object instead of a file: one whose private
 * operations happen elsewhere (internal-gw's key holder). The context
 * takes its own reference to pkey.
 */
SSL_CTX	*tls_server_ctx_pkey(const char *cert_file, EVP_PKEY *pkey,
	    const char *client_ca_file, char **err);
/* Hex SHA-256 of the peer certificate's DER, or "" if it sent none. */
void	 tls_peer_fingerprint(SSL *, char out[TLS_FP_LEN + 1]);

#endif
