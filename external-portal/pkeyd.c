/*
 * The portal's key holder (pkeyd.h), on the shared key-holder core: no
 * network, locked key memory, one thread per channel. It loads the add-on
 * tunnel decryption key and unwraps content-encryption keys with it.
 *
 * SECURITY: requests come from the ingest worker, which is fed by the DMZ
 * and may be compromised. A request is a key id, a padding mode and at
 * most one RSA block; anything else is refused. The worst a compromised
 * worker can do is ask for decryptions with the tunnel key, which it could
 * ask for by sending tunnel mail anyway; it can never read the key, and
 * the key cannot sign (its certificate forbids digitalSignature).
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509v3.h>

#include "keyholder.h"
#include "log.h"
#include "pkeyd.h"
#include "xmalloc.h"

#define PKEYD_MAX_REQ	(8 + PKEYD_MAX_WRAPPED)

struct pkeyd_client {
	struct keyholder_client	*kh;
};

/* The key holder's own state, in the child only. */
static EVP_PKEY	*pkeyd_tunnel;

static X509 *
pkeyd_read_cert(const char *path, char **err)
{
	X509 *x;
	BIO *b;

	if ((b = BIO_new_file(path, "r")) == NULL ||
	    (x = PEM_read_bio_X509(b, NULL, NULL, NULL)) == NULL) {
		xasprintf(err, "%s: not a readable PEM certificate", path);
		BIO_free(b);
		ERR_clear_error();
		return NULL;
	}
	BIO_free(b);
	return x;
}

static EVP_PKEY *
pkeyd_read_key(const char *path, char **err)
{
	EVP_PKEY *k;
	BIO *b;

	if ((b = BIO_new_file(path, "r")) == NULL ||
	    (k = PEM_read_bio_PrivateKey(b, NULL, NULL, NULL)) == NULL) {
		xasprintf(err, "%s: not a readable PEM private key", path);
		BIO_free(b);
		ERR_clear_error();
		return NULL;
	}
	BIO_free(b);
	return k;
}

/* The usage rules of pkeyd_check for a loaded pair. */
static int
pkeyd_fit(X509 *x, EVP_PKEY *k, const char *certfile, char **err)
{
	uint32_t ku = X509_get_key_usage(x);

	if (!EVP_PKEY_is_a(k, "RSA")) {
		xasprintf(err, "%s: the tunnel key must be RSA", certfile);
		return -1;
	}
	if (X509_check_private_key(x, k) != 1) {
		ERR_clear_error();
		xasprintf(err, "%s: the key does not belong to this "
		    "certificate", certfile);
		return -1;
	}
	if (ku == UINT32_MAX || (ku & KU_DIGITAL_SIGNATURE) ||
	    (ku & KU_NON_REPUDIATION) || !(ku & KU_KEY_ENCIPHERMENT)) {
		xasprintf(err, "%s: the tunnel certificate must allow "
		    "keyEncipherment only (a portal key must not sign); make "
		    "one with `postern-cli tunnel keygen --role portal`",
		    certfile);
		return -1;
	}
	return 0;
}

int
pkeyd_check(const char *keyfile, const char *certfile, char **err)
{
	EVP_PKEY *k;
	X509 *x;
	int rv;

	*err = NULL;
	if ((x = pkeyd_read_cert(certfile, err)) == NULL)
		return -1;
	if ((k = pkeyd_read_key(keyfile, err)) == NULL) {
		X509_free(x);
		return -1;
	}
	rv = pkeyd_fit(x, k, certfile, err);
	EVP_PKEY_free(k);
	X509_free(x);
	return rv;
}

static void
pkeyd_load(void *arg)
{
	const struct pkeyd_conf *pc = arg;
	char *err = NULL;
	X509 *x;

	if (pc->storage_certs != NULL)
		pkeyd_storage_load(pc);
	if (pc->tunnel_key == NULL)
		return;
	if ((x = pkeyd_read_cert(pc->tunnel_cert, &err)) == NULL ||
	    (pkeyd_tunnel = pkeyd_read_key(pc->tunnel_key, &err)) == NULL ||
	    pkeyd_fit(x, pkeyd_tunnel, pc->tunnel_cert, &err) == -1)
		fatalx("tunnel key: %s", err);
	X509_free(x);
	log_info("loaded the tunnel decryption key; %zu bytes of locked key "
	    "memory", keyholder_locked());
}

static void
pkeyd_dispatch(struct keyholder_chan *ch, uint32_t type,
    const unsigned char *p, size_t len)
{
	unsigned char out[PKEYD_MAX_WRAPPED];
	uint32_t v[2];
	EVP_PKEY_CTX *ctx;
	size_t outlen = sizeof(out);
	int ok;

	if (type != PKEYD_UNWRAP || len < sizeof(v) ||
	    len - sizeof(v) > PKEYD_MAX_WRAPPED) {
		keyholder_reply_err(ch, "bad request");
		return;
	}
	memcpy(v, p, sizeof(v));
	if (v[0] != PKEYD_KEY_TUNNEL || pkeyd_tunnel == NULL) {
		keyholder_reply_err(ch, "no such key");
		return;
	}
	if (v[1] != RSA_PKCS1_PADDING && v[1] != RSA_NO_PADDING) {
		keyholder_reply_err(ch, "padding not offered");
		return;
	}
	if ((ctx = EVP_PKEY_CTX_new(pkeyd_tunnel, NULL)) == NULL)
		fatalx("pkeyd: EVP_PKEY_CTX_new");
	ok = EVP_PKEY_decrypt_init(ctx) == 1 &&
	    EVP_PKEY_CTX_set_rsa_padding(ctx, (int)v[1]) == 1 &&
	    EVP_PKEY_decrypt(ctx, out, &outlen, p + sizeof(v),
	    len - sizeof(v)) == 1;
	EVP_PKEY_CTX_free(ctx);
	ERR_clear_error();
	if (!ok)
		keyholder_reply_err(ch, "cannot unwrap");
	else
		keyholder_reply(ch, out, outlen);
	OPENSSL_cleanse(out, sizeof(out));
}

pid_t
pkeyd_spawn(const struct pkeyd_conf *pc, struct pkeyd_client **c)
{
	return pkeyd_spawn2(pc, c, NULL);
}

pid_t
pkeyd_spawn2(const struct pkeyd_conf *pc, struct pkeyd_client **c,
    struct pkeyd_client **web)
{
	static struct keyholder_chan ch[2 * KEYHOLDER_MAX_WORKERS];
	int fds[2 * KEYHOLDER_MAX_WORKERS], n, i, nin = 0, nweb = 0;
	pid_t pid;

	n = keyholder_workers(0);
	if (pc->tunnel_key != NULL)
		for (i = 0; i < n; i++, nin++) {
			ch[nin].fd = -1;
			ch[nin].name = "unwrap";
			ch[nin].max_req = PKEYD_MAX_REQ;
			ch[nin].dispatch = pkeyd_dispatch;
		}
	if (pc->storage_certs != NULL && web != NULL)
		for (i = 0; i < n; i++, nweb++) {
			ch[nin + nweb].fd = -1;
			ch[nin + nweb].name = "storage";
			ch[nin + nweb].max_req = PKEYD_STORAGE_MAX_REQ;
			ch[nin + nweb].dispatch = pkeyd_storage_dispatch;
		}
	if (nin + nweb == 0)
		fatalx("pkeyd: no keys to hold");
	if ((pid = keyholder_spawn("pkeyd", ch, (size_t)(nin + nweb),
	    pc->user, pkeyd_load, (void *)pc, fds)) == -1)
		return -1;
	*c = NULL;
	if (nin > 0) {
		*c = xcalloc(1, sizeof(**c));
		(*c)->kh = keyholder_client_new(fds, (size_t)nin);
	}
	if (web != NULL) {
		*web = NULL;
		if (nweb > 0) {
			*web = xcalloc(1, sizeof(**web));
			(*web)->kh = keyholder_client_new(fds + nin,
			    (size_t)nweb);
		}
	}
	return pid;
}

struct keyholder_client *
pkeyd_kh(struct pkeyd_client *c)
{
	return c->kh;
}

void
pkeyd_client_free(struct pkeyd_client **cp)
{
	if (*cp == NULL)
		return;
	keyholder_client_free(&(*cp)->kh);
	free(*cp);
	*cp = NULL;
}

int
pkeyd_unwrap(struct pkeyd_client *c, uint32_t id, int padding,
    const unsigned char *in, size_t inlen, unsigned char *out, size_t outmax)
{
	uint32_t v[2] = { id, (uint32_t)padding };
	unsigned char *reply = NULL;
	size_t rlen = 0;
	int t;

	if (inlen > PKEYD_MAX_WRAPPED)
		return -1;
	t = keyholder_request(c->kh, PKEYD_UNWRAP, v, sizeof(v), in, inlen,
	    PKEYD_MAX_WRAPPED, &reply, &rlen);
	if (t != KEYHOLDER_OK || rlen > outmax) {
		if (t == KEYHOLDER_ERR)
			log_debug("pkeyd: %s", reply);
		if (reply != NULL)
			OPENSSL_cleanse(reply, rlen);
		free(reply);
		return -1;
	}
	memcpy(out, reply, rlen);
	OPENSSL_cleanse(reply, rlen);
	free(reply);
	return (int)rlen;
}

/* --- an RSA public key whose private decryption is pkeyd's ------------- */

struct pkeyd_ref {
	struct pkeyd_client	*c;
	uint32_t		 id;
};

static pthread_once_t	 pkeyd_once = PTHREAD_ONCE_INIT;
static RSA_METHOD	*pkeyd_meth;
static int		 pkeyd_idx = -1;

static void
pkeyd_ex_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx,
    long argl, void *argp)
{
	(void)parent;
	(void)ad;
	(void)idx;
	(void)argl;
	(void)argp;
	free(ptr);
}

static int
pkeyd_priv_dec(int flen, const unsigned char *from, unsigned char *to,
    RSA *rsa, int padding)
{
	struct pkeyd_ref *r = RSA_get_ex_data(rsa, pkeyd_idx);

	if (r == NULL || flen < 0)
		return -1;
	return pkeyd_unwrap(r->c, r->id, padding, from, (size_t)flen, to,
	    (size_t)RSA_size(rsa));
}

static void
pkeyd_meth_init(void)
{
	pkeyd_idx = RSA_get_ex_new_index(0, NULL, NULL, NULL, pkeyd_ex_free);
	if (pkeyd_idx < 0 ||
	    (pkeyd_meth = RSA_meth_dup(RSA_PKCS1_OpenSSL())) == NULL ||
	    !RSA_meth_set1_name(pkeyd_meth, "postern pkeyd") ||
	    !RSA_meth_set_priv_dec(pkeyd_meth, pkeyd_priv_dec) ||
	    !RSA_meth_set_flags(pkeyd_meth,
	    RSA_meth_get_flags(pkeyd_meth) | RSA_METHOD_FLAG_NO_CHECK))
		fatalx("pkeyd: RSA_METHOD");
}

EVP_PKEY *
pkeyd_pkey(struct pkeyd_client *c, uint32_t id, X509 *cert)
{
	struct pkeyd_ref *ref;
	EVP_PKEY *pub, *pkey;
	const RSA *pubrsa;
	RSA *rsa;

	pthread_once(&pkeyd_once, pkeyd_meth_init);
	if ((pub = X509_get0_pubkey(cert)) == NULL || !EVP_PKEY_is_a(pub,
	    "RSA") || (pubrsa = EVP_PKEY_get0_RSA(pub)) == NULL) {
		ERR_clear_error();
		return NULL;
	}
	if ((rsa = RSAPublicKey_dup(pubrsa)) == NULL ||
	    (pkey = EVP_PKEY_new()) == NULL)
		fatalx("pkeyd: cannot copy an RSA public key");
	ref = xmalloc(sizeof(*ref));
	ref->c = c;
	ref->id = id;
	if (!RSA_set_method(rsa, pkeyd_meth) ||
	    !RSA_set_ex_data(rsa, pkeyd_idx, ref) ||
	    !EVP_PKEY_assign_RSA(pkey, rsa))
		fatalx("pkeyd: cannot build the RSA key");
	return pkey;
}
