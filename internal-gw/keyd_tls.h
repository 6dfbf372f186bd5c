/*
 * TLS private keys through the key holder, for the SMTP worker: an
 * EVP_PKEY that carries only the public half of a certificate's key and
 * hands every private operation (RSA PKCS#1 v1.5 over a SHA-2 DigestInfo,
 * RSA on a PSS-encoded block, ECDSA over a SHA-2 digest: what TLS 1.2 and
 * 1.3 sign, and all keyd accepts) to keyd over its TLS channels, after
 * OpenSMTPD's ca.c.
 * libssl uses it like any key, TLS 1.2 and 1.3, as server or client, so
 * the network-facing process never maps the private key.
 *
 * A private operation is a blocking round trip to keyd (about a
 * millisecond for RSA-2048): on an event loop it costs what signing with
 * a local key would, plus the IPC.
 */
#ifndef POSTERN_KEYD_TLS_H
#define POSTERN_KEYD_TLS_H

#include <openssl/ssl.h>
#include <openssl/x509.h>

struct keyd_client;

/*
 * An EVP_PKEY for cert's public key whose private half keyd holds. c is
 * a client on keyd's TLS channel and must outlive the key. NULL with *err
 * (caller frees) when keyd holds no key for cert or cannot be reached.
 */
EVP_PKEY	*keyd_tls_pkey(struct keyd_client *c, X509 *cert, char **err);
/* keyd_tls_pkey for the first certificate in a PEM file. */
EVP_PKEY	*keyd_tls_pkey_file(struct keyd_client *c, const char *cert_file,
		    char **err);
/* tls_server_ctx() with the private key in keyd. */
SSL_CTX		*keyd_tls_server_ctx(struct keyd_client *c,
		    const char *cert_file, const char *client_ca_file,
		    char **err);

#endif
