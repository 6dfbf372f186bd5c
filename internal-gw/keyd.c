/*
 * The key holder process of internal-gw, after OpenSMTPD's ca.c, on the
 * shared key-holder core (keyholder.h: process setup, framing, size
 * limits, serving threads, the client's channel pool). This file holds
 * what is the gateway's own: its key store, the CMS signatures of named
 * signers, and the signatures of TLS handshakes.
 *
 * SECURITY: it is the only process that maps a private key. Its peer is
 * the SMTP worker, network facing and so not trusted blindly: every
 * request is
 * bounded by the core before it is read and parsed with its size known;
 * a malformed or refused request gets an ERR reply and a log line, and
 * keyd stays up. It never sees a message, only 32-byte digests.
 *
 * Requests (struct keyholder_hdr, then the payload) and replies (OK with
 * the result, or ERR with a reason). Each kind of channel has
 * keyholder_workers(keyd_workers) channels, one thread each.
 *
 * Signing channels, payload at most KEYD_MAX_SIGN_REQ bytes:
 *   SIGN     uint32 purpose, uint32 signer length, uint32 msgid length,
 *            signer, msgid, SHA-256 digest        -> OK CMS DER | ERR text
 *   SIGNERS  (empty)                               -> OK "a\0b\0"
 *   RELOAD   (empty)                               -> OK uint32 count
 * The purpose is user mail or the portal tunnel: the tunnel signer (the
 * configured address) signs for the tunnel only, and no key whose
 * certificate names it signs user mail. Every signature is logged with
 * signer, purpose, the requesting message's log id and the first 8 bytes
 * of the digest.
 *
 * TLS channels, payload at most KEYD_MAX_TLS_REQ bytes (the TLS keys never
 * change):
 *   TLS_KEYS  (empty)            -> OK { uint32 id, uint32 len, SPKI DER }*
 *   TLS_RSA   uint32 id, uint32 padding, input  -> OK signature | ERR text
 *   TLS_ECDSA uint32 id, digest                 -> OK DER signature | ERR
 * TLS_RSA takes only what TLS 1.2 and 1.3 sign (keyd_tls_rsa_allowed): a
 * SHA-2 DigestInfo for PKCS#1 v1.5, or an EMSA-PSS encoded block; TLS_ECDSA
 * only a SHA-2 sized digest. No RSA decryption, no raw RSA on arbitrary
 * blocks. Whoever holds a channel can have handshakes signed, but the key
 * itself never leaves.
 *
 * Decryption channels, payload at most KEYD_MAX_DEC_REQ bytes:
 *   CERTS    address                -> OK { uint32 len, certificate DER }*
 *   UNWRAP   uint32 address length, uint32 msgid length, uint32 DER
 *            length, address, msgid, KEK, DER -> OK CMS DER | ERR text
 * UNWRAP parses (with OpenSSL) a contentless (Auth)EnvelopedData of at
 * most KEYD_MAX_UNWRAP_DER bytes holding exactly one RecipientInfo,
 * decrypts its content key with a key of the named address (never the
 * tunnel key) and returns it wrapped under the caller's KEK; it never
 * sees message content. Each unwrap is logged with the message's log id.
 *
 * A request type is answered on its own kind of channel only.
 * A request type is answered on its own kind of channel only. The
 * OpenPGP requests (PGP_INFO, PGP_SIGN, PGP_DECRYPT) share the signing
 * channels; keyd_pgp.h describes them.
 */
#include <sys/socket.h>
#include <sys/stat.h>

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <openssl/cms.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <openssl/store.h>
#include <openssl/x509.h>

#include "certstore.h"
#include "keyd.h"
#include "keyd_cms.h"
#include "keyd_pgp.h"
#include "keyholder.h"
#include "log.h"
#include "xmalloc.h"

enum keyd_type {
	KEYD_SIGN = 1,
	KEYD_SIGNERS,
	KEYD_RELOAD,
	KEYD_CERTS = 20,
	KEYD_UNWRAP,
	KEYD_TLS_KEYS = 50,
	KEYD_TLS_RSA,
	KEYD_TLS_ECDSA,
};

/* A signature with its chain, or the list of signers. */
#define KEYD_MAX_REPLY	(16 * 1024 * 1024)
#define KEYD_MAX_KEYS	10000

struct keyd_key {
	char		 *file;
	EVP_PKEY	 *pkey;
	X509		 *cert;
	STACK_OF(X509)	 *chain;
	char		**emails;
	size_t		  nemails;
	struct keyd_cms_tmpl *tmpl;	/* NULL: OpenSSL's CMS code signs */
};

struct keyd_client {
	struct keyholder_client	*kh;
	struct keyholder_client	*dec;	/* decryption channels */
	/*
	 * keyd_can_sign's copy of the signer list. keyd's keys change only
	 * through RELOAD, which this client sends: keyd_reload bumps gen
	 * before and after it, and a copy of an older gen is fetched again.
	 */
	pthread_mutex_t		 smtx;
	unsigned int		 gen;		/* atomic */
	unsigned int		 sgen;		/* gen of signers */
	char			**signers;	/* NULL: none fetched */
};

/*
 * The signing keys are shared by the signing threads: OpenSSL 3 allows
 * concurrent signatures with one key object; RELOAD swaps the table under
 * the write lock.
 */
static pthread_rwlock_t	 keyd_lock = PTHREAD_RWLOCK_INITIALIZER;
static struct keyd_key	*keyd_keys;
static size_t		 keyd_nkeys;
static const char	*keyd_dir;
static const char	*keyd_tunnel;
static EVP_PKEY		*keyd_tls_key[KEYD_TLS_MAX_KEYS];
static size_t		 keyd_ntls;

/* ---- the key store ---- */

static void
keyd_key_clear(struct keyd_key *k)
{
	free(k->file);
	EVP_PKEY_free(k->pkey);
	X509_free(k->cert);
	sk_X509_pop_free(k->chain, X509_free);
	keyd_cms_tmpl_free(k->tmpl);
	certstore_emails_free(&k->emails);
	memset(k, 0, sizeof(*k));
}

/* Loads one key file; returns 0, or -1 (logged) when it holds no usable key. */
static int
keyd_load_file(const char *path, struct keyd_key *k)
{
	OSSL_STORE_CTX *st;
	OSSL_STORE_INFO *info;
	STACK_OF(X509) *certs;
	X509 *x;
	int i, n;

	memset(k, 0, sizeof(*k));
	if ((st = OSSL_STORE_open(path, NULL, NULL, NULL, NULL)) == NULL) {
		log_warnx("keyd: %s: cannot open", path);
		ERR_clear_error();
		return -1;
	}
	certs = sk_X509_new_null();
	while (!OSSL_STORE_eof(st)) {
		if ((info = OSSL_STORE_load(st)) == NULL)
			continue;
		switch (OSSL_STORE_INFO_get_type(info)) {
		case OSSL_STORE_INFO_PKEY:
			if (k->pkey == NULL)
				k->pkey = OSSL_STORE_INFO_get1_PKEY(info);
			break;
		case OSSL_STORE_INFO_CERT:
			sk_X509_push(certs, OSSL_STORE_INFO_get1_CERT(info));
			break;
		default:
			break;
		}
		OSSL_STORE_INFO_free(info);
	}
	OSSL_STORE_close(st);
	ERR_clear_error();

	if (k->pkey == NULL) {
		if (keyholder_locked() > 0 &&
		    CRYPTO_secure_used() + 4096 > keyholder_locked())
			log_warnx("keyd: %s: no room left in the locked key "
			    "memory (%zu bytes)", path, keyholder_locked());
		else
			log_warnx("keyd: %s: no private key", path);
		goto fail;
	}
	n = sk_X509_num(certs);
	for (i = 0; i < n; i++) {
		x = sk_X509_value(certs, i);
		if (X509_check_private_key(x, k->pkey) == 1) {
			k->cert = sk_X509_delete(certs, i);
			break;
		}
	}
	ERR_clear_error();
	if (k->cert == NULL) {
		log_warnx("keyd: %s: no certificate matches the key", path);
		goto fail;
	}
	k->chain = certs;
	k->nemails = certstore_emails(k->cert, &k->emails);
	k->file = xstrdup(path);
	if ((k->tmpl = keyd_cms_tmpl_new(k->cert, k->chain, k->pkey)) == NULL)
		log_info("keyd: %s: signed with OpenSSL's general CMS code "
		    "(no signing template for this key type)", path);
	return 0;
fail:
	sk_X509_pop_free(certs, X509_free);
	keyd_key_clear(k);
	return -1;
}

/* Loads keys_dir into a new table and swaps it in. */
static size_t
keyd_load_all(void)
{
	struct keyd_key *keys = NULL;
	struct dirent *de;
	DIR *d;
	size_t n = 0, len, i;
	char *path;

	if ((d = opendir(keyd_dir)) == NULL) {
		log_warn("keyd: %s", keyd_dir);
	} else {
		while ((de = readdir(d)) != NULL && n < KEYD_MAX_KEYS) {
			len = strlen(de->d_name);
			if (de->d_name[0] == '.' || len < 5 ||
			    strcmp(de->d_name + len - 4, ".pem") != 0)
				continue;
			keys = xreallocarray(keys, n + 1, sizeof(*keys));
			xasprintf(&path, "%s/%s", keyd_dir, de->d_name);
			if (keyd_load_file(path, &keys[n]) == 0)
				n++;
			free(path);
		}
		closedir(d);
	}
	pthread_rwlock_wrlock(&keyd_lock);
	for (i = 0; i < keyd_nkeys; i++)
		keyd_key_clear(&keyd_keys[i]);
	free(keyd_keys);
	keyd_keys = keys;
	keyd_nkeys = n;
	pthread_rwlock_unlock(&keyd_lock);
	log_info("loaded %zu signing key%s from %s", n, n == 1 ? "" : "s",
	    keyd_dir);
	return n + keyd_pgp_load(keyd_dir);
}

static int
keyd_cert_current(X509 *x)
{
	return X509_cmp_current_time(X509_get0_notBefore(x)) < 0 &&
	    X509_cmp_current_time(X509_get0_notAfter(x)) > 0;
}

static int
keyd_key_has(const struct keyd_key *k, const char *addr)
{
	for (size_t j = 0; j < k->nemails; j++)
		if (strcasecmp(k->emails[j], addr) == 0)
			return 1;
	return 0;
}

/*
 * The key for signer: a currently valid one first, then the latest expiry.
 * For user mail a key whose certificate names the tunnel signer is never
 * taken, whatever else it names. Call with keyd_lock held.
 */
static struct keyd_key *
keyd_find(const char *signer, enum keyd_purpose purpose)
{
	struct keyd_key *best = NULL, *k;
	size_t i;
	int cur, bestcur = 0;

	for (i = 0; i < keyd_nkeys; i++) {
		k = &keyd_keys[i];
		if (!keyd_key_has(k, signer))
			continue;
		if (purpose == KEYD_PURPOSE_MAIL && keyd_tunnel != NULL &&
		    keyd_key_has(k, keyd_tunnel))
			continue;
		cur = keyd_cert_current(k->cert);
		if (best == NULL || cur > bestcur || (cur == bestcur &&
		    ASN1_TIME_compare(X509_get0_notAfter(k->cert),
		    X509_get0_notAfter(best->cert)) > 0)) {
			best = k;
			bestcur = cur;
		}
	}
	return best;
}

/* ---- the signing channels ---- */

static const char *
keyd_purpose_name(enum keyd_purpose p)
{
	return p == KEYD_PURPOSE_TUNNEL ? "tunnel" : "mail";
}

/* A log id: printable ASCII without space, so a log line cannot be forged. */
static int
keyd_msgid_ok(const char *s)
{
	for (; *s != '\0'; s++)
		if (*s <= ' ' || *s > '~')
			return 0;
	return 1;
}

int
keyd_parse_sign(const unsigned char *p, size_t len, struct keyd_sign_req *r,
    const char **why)
{
	uint32_t v[3];

	memset(r, 0, sizeof(*r));
	if (len < sizeof(v)) {
		*why = "short SIGN request";
		return -1;
	}
	memcpy(v, p, sizeof(v));
	if (v[0] != KEYD_PURPOSE_MAIL && v[0] != KEYD_PURPOSE_TUNNEL) {
		*why = "unknown purpose";
		return -1;
	}
	if (v[1] == 0 || v[1] > KEYD_MAX_SIGNER || v[2] == 0 ||
	    v[2] > KEYD_MAX_MSGID ||
	    len != sizeof(v) + v[1] + v[2] + KEYD_DIGEST_LEN) {
		*why = "bad SIGN request lengths";
		return -1;
	}
	p += sizeof(v);
	memcpy(r->signer, p, v[1]);
	memcpy(r->msgid, p + v[1], v[2]);
	if (strlen(r->signer) != v[1] || strlen(r->msgid) != v[2]) {
		*why = "NUL in SIGN request";
		return -1;
	}
	if (!keyd_msgid_ok(r->signer) || !keyd_msgid_ok(r->msgid)) {
		*why = "control character or space in SIGN request";
		return -1;
	}
	r->purpose = (enum keyd_purpose)v[0];
	r->md = p + v[1] + v[2];
	return 0;
}

/*
 * A detached SignedData whose messageDigest attribute is md: the content
 * itself never reaches keyd. Returns the DER length, or -1. Call with
 * keyd_lock held.
 */
static int
keyd_cms(struct keyd_key *k, const unsigned char *md, unsigned char **der)
{
	if (k->tmpl != NULL)
		return keyd_cms_tmpl_sign(k->tmpl, k->pkey, md, time(NULL), der);
	return keyd_cms_openssl(k->cert, k->chain, k->pkey, md, NULL, der);
}

static void
keyd_do_sign(struct keyholder_chan *ch, const unsigned char *p, size_t len)
{
	struct keyd_sign_req r;
	struct keyd_key *k;
	unsigned char *der;
	const char *why;
	char hex[17];
	int derlen, tunnel;

	if (keyd_parse_sign(p, len, &r, &why) == -1) {
		log_warnx("SIGN refused: %s", why);
		keyholder_reply_err(ch, why);
		return;
	}
	tunnel = keyd_tunnel != NULL && strcasecmp(r.signer, keyd_tunnel) == 0;
	if (r.purpose == KEYD_PURPOSE_TUNNEL && !tunnel) {
		log_warnx("id=%s refused: %s is not the tunnel signer",
		    r.msgid, r.signer);
		keyholder_reply_err(ch, "not the tunnel signer");
		return;
	}
	if (r.purpose == KEYD_PURPOSE_MAIL && tunnel) {
		log_warnx("id=%s refused: the tunnel signer %s signs no "
		    "user mail", r.msgid, r.signer);
		keyholder_reply_err(ch, "the tunnel key signs no user mail");
		return;
	}
	pthread_rwlock_rdlock(&keyd_lock);
	if ((k = keyd_find(r.signer, r.purpose)) == NULL) {
		pthread_rwlock_unlock(&keyd_lock);
		keyholder_reply_err(ch, "no signing key for this sender");
		return;
	}
	derlen = keyd_cms(k, r.md, &der);
	pthread_rwlock_unlock(&keyd_lock);
	if (derlen == -1) {
		log_warnx("id=%s signing as %s failed: %s", r.msgid,
		    r.signer, ERR_reason_error_string(ERR_peek_last_error()));
		ERR_clear_error();
		keyholder_reply_err(ch, "signing failed");
		return;
	}
	for (int i = 0; i < 8; i++)
		snprintf(hex + 2 * i, 3, "%02x", r.md[i]);
	log_info("id=%s signed as %s for %s, digest %s", r.msgid,
	    r.signer, keyd_purpose_name(r.purpose), hex);
	keyholder_reply(ch, der, (size_t)derlen);
	OPENSSL_free(der);
}

static void
keyd_do_signers(struct keyholder_chan *ch)
{
	char *buf = NULL;
	size_t len = 0, l, i, j;

	pthread_rwlock_rdlock(&keyd_lock);
	for (i = 0; i < keyd_nkeys; i++)
		for (j = 0; j < keyd_keys[i].nemails; j++) {
			l = strlen(keyd_keys[i].emails[j]) + 1;
			if (len + l > KEYD_MAX_REPLY)
				break;
			buf = xreallocarray(buf, len + l, 1);
			memcpy(buf + len, keyd_keys[i].emails[j], l);
			len += l;
		}
	pthread_rwlock_unlock(&keyd_lock);
	keyholder_reply(ch, buf, len);
	free(buf);
}

static void
keyd_dispatch_sign(struct keyholder_chan *ch, uint32_t type,
    const unsigned char *p, size_t len)
{
	uint32_t count;

	switch (type) {
	case KEYD_SIGN:
		keyd_do_sign(ch, p, len);
		break;
	case KEYD_SIGNERS:
		keyd_do_signers(ch);
		break;
	case KEYD_RELOAD:
		count = (uint32_t)keyd_load_all();
		keyholder_reply(ch, &count, sizeof(count));
		break;
	case KEYD_PGP_INFO:
	case KEYD_PGP_SIGN:
	case KEYD_PGP_DECRYPT:
		keyd_pgp_dispatch(ch, type, p, len);
		break;
	default:
		log_warnx("request type %u refused on the signing "
		    "channel", type);
		keyholder_reply_err(ch, "request not allowed on this channel");
		break;
	}
}

/* ---- the decryption channels ---- */

static void
keyd_do_certs(struct keyholder_chan *ch, const unsigned char *p, size_t len)
{
	char addr[KEYD_MAX_SIGNER + 1];
	unsigned char *buf = NULL, *der;
	size_t blen = 0;
	uint32_t l;
	int dlen;

	if (len == 0 || len > KEYD_MAX_SIGNER || memchr(p, '\0', len)) {
		keyholder_reply_err(ch, "bad CERTS request");
		return;
	}
	memcpy(addr, p, len);
	addr[len] = '\0';
	pthread_rwlock_rdlock(&keyd_lock);
	for (size_t i = 0; i < keyd_nkeys; i++) {
		if (!keyd_key_has(&keyd_keys[i], addr) || (keyd_tunnel &&
		    keyd_key_has(&keyd_keys[i], keyd_tunnel)))
			continue;
		der = NULL;
		if ((dlen = i2d_X509(keyd_keys[i].cert, &der)) <= 0)
			fatalx("keyd: i2d_X509");
		l = (uint32_t)dlen;
		buf = xreallocarray(buf, blen + sizeof(l) + l, 1);
		memcpy(buf + blen, &l, sizeof(l));
		memcpy(buf + blen + sizeof(l), der, l);
		blen += sizeof(l) + l;
		OPENSSL_free(der);
	}
	pthread_rwlock_unlock(&keyd_lock);
	keyholder_reply(ch, buf, blen);
	free(buf);
}

/* Decrypts the one RecipientInfo with a key of addr; 1 when done. */
static int
keyd_unwrap_key(CMS_ContentInfo *cms, const char *addr)
{
	int ok = 0;

	pthread_rwlock_rdlock(&keyd_lock);
	for (size_t i = 0; i < keyd_nkeys && !ok; i++) {
		struct keyd_key *k = &keyd_keys[i];

		if (!keyd_key_has(k, addr) || (keyd_tunnel &&
		    keyd_key_has(k, keyd_tunnel)))
			continue;
		ok = CMS_decrypt_set1_pkey_and_peer(cms, k->pkey, k->cert,
		    NULL) == 1;
		ERR_clear_error();
	}
	pthread_rwlock_unlock(&keyd_lock);
	return ok;
}

static void
keyd_do_unwrap(struct keyholder_chan *ch, const unsigned char *p, size_t len)
{
	char addr[KEYD_MAX_SIGNER + 1], msgid[KEYD_MAX_MSGID + 1];
	const unsigned char *q;
	unsigned char *kek = NULL, *kid, *der = NULL;
	CMS_ContentInfo *cms = NULL;
	CMS_RecipientInfo *ri;
	const char *why = "malformed UNWRAP request";
	uint32_t v[3];
	int nid, dlen;

	if (len < sizeof(v))
		goto refuse;
	memcpy(v, p, sizeof(v));
	if (v[0] == 0 || v[0] > KEYD_MAX_SIGNER || v[1] == 0 ||
	    v[1] > KEYD_MAX_MSGID || v[2] == 0 || v[2] > KEYD_MAX_UNWRAP_DER ||
	    len != sizeof(v) + v[0] + v[1] + KEYD_KEK_LEN + v[2])
		goto refuse;
	p += sizeof(v);
	memcpy(addr, p, v[0]);
	addr[v[0]] = '\0';
	memcpy(msgid, p + v[0], v[1]);
	msgid[v[1]] = '\0';
	if (strlen(addr) != v[0] || strlen(msgid) != v[1] ||
	    !keyd_msgid_ok(addr) || !keyd_msgid_ok(msgid))
		goto refuse;
	p += v[0] + v[1];
	q = p + KEYD_KEK_LEN;
	if ((cms = d2i_CMS_ContentInfo(NULL, &q, v[2])) == NULL ||
	    q != p + KEYD_KEK_LEN + v[2])
		goto refuse;
	nid = OBJ_obj2nid(CMS_get0_type(cms));
	if ((nid != NID_pkcs7_enveloped &&
	    nid != NID_id_smime_ct_authEnvelopedData) ||
	    sk_CMS_RecipientInfo_num(CMS_get0_RecipientInfos(cms)) != 1) {
		why = "not one RecipientInfo of an EnvelopedData";
		goto refuse;
	}
	if (!keyd_unwrap_key(cms, addr)) {
		why = "no key of this recipient opens the RecipientInfo";
		goto refuse;
	}
	/* Both key and identifier pass to the new RecipientInfo. */
	if ((kek = OPENSSL_memdup(p, KEYD_KEK_LEN)) == NULL ||
	    (kid = OPENSSL_memdup(KEYD_KEK_ID, sizeof(KEYD_KEK_ID) - 1)) ==
	    NULL)
		fatalx("keyd: OPENSSL_memdup");
	if ((ri = CMS_add0_recipient_key(cms, NID_undef, kek, KEYD_KEK_LEN,
	    kid, sizeof(KEYD_KEK_ID) - 1, NULL, NULL, NULL)) == NULL) {
		OPENSSL_clear_free(kek, KEYD_KEK_LEN);
		OPENSSL_free(kid);
		why = "cannot wrap the content key";
		goto refuse;
	}
	if (!CMS_RecipientInfo_encrypt(cms, ri) ||
	    (dlen = i2d_CMS_ContentInfo(cms, &der)) <= 0) {
		why = "cannot wrap the content key";
		goto refuse;
	}
	log_info("id=%s unwrapped a content key for %s", msgid, addr);
	keyholder_reply(ch, der, (size_t)dlen);
	OPENSSL_free(der);
	CMS_ContentInfo_free(cms);
	return;
refuse:
	ERR_clear_error();
	CMS_ContentInfo_free(cms);
	log_warnx("UNWRAP refused: %s", why);
	keyholder_reply_err(ch, why);
}

static void
keyd_dispatch_dec(struct keyholder_chan *ch, uint32_t type,
    const unsigned char *p, size_t len)
{
	switch (type) {
	case KEYD_CERTS:
		keyd_do_certs(ch, p, len);
		break;
	case KEYD_UNWRAP:
		keyd_do_unwrap(ch, p, len);
		break;
	default:
		log_warnx("request type %u refused on the decryption "
		    "channel", type);
		keyholder_reply_err(ch, "request not allowed on this channel");
		break;
	}
}

/* ---- the TLS channels ---- */

static void
keyd_tls_load(const char *path)
{
	OSSL_STORE_CTX *st;
	OSSL_STORE_INFO *info;
	EVP_PKEY *pkey = NULL;

	if ((st = OSSL_STORE_open(path, NULL, NULL, NULL, NULL)) == NULL)
		fatalx("keyd: TLS key %s: cannot open", path);
	while (pkey == NULL && !OSSL_STORE_eof(st)) {
		if ((info = OSSL_STORE_load(st)) == NULL)
			continue;
		if (OSSL_STORE_INFO_get_type(info) == OSSL_STORE_INFO_PKEY)
			pkey = OSSL_STORE_INFO_get1_PKEY(info);
		OSSL_STORE_INFO_free(info);
	}
	OSSL_STORE_close(st);
	ERR_clear_error();
	if (pkey == NULL)
		fatalx("keyd: TLS key %s: no private key", path);
	if (!EVP_PKEY_is_a(pkey, "RSA") && !EVP_PKEY_is_a(pkey, "EC"))
		fatalx("keyd: TLS key %s: only RSA and EC keys are supported",
		    path);
	keyd_tls_key[keyd_ntls++] = pkey;
}


static void
keyd_tls_do_keys(struct keyholder_chan *ch)
{
	unsigned char *buf = NULL, *der;
	size_t len = 0;
	uint32_t v[2];
	int dlen;

	for (size_t i = 0; i < keyd_ntls; i++) {
		der = NULL;
		if ((dlen = i2d_PUBKEY(keyd_tls_key[i], &der)) <= 0)
			fatalx("keyd: cannot encode TLS public key %zu", i);
		v[0] = (uint32_t)i;
		v[1] = (uint32_t)dlen;
		buf = xreallocarray(buf, len + sizeof(v) + (size_t)dlen, 1);
		memcpy(buf + len, v, sizeof(v));
		memcpy(buf + len + sizeof(v), der, (size_t)dlen);
		len += sizeof(v) + (size_t)dlen;
		OPENSSL_free(der);
	}
	keyholder_reply(ch, buf, len);
	free(buf);
}

/* The hashes TLS 1.2 and 1.3 sign with under our security level. */
static const EVP_MD *
keyd_tls_md(size_t i)
{
	switch (i) {
	case 0:
		return EVP_sha256();
	case 1:
		return EVP_sha384();
	case 2:
		return EVP_sha512();
	default:
		return NULL;
	}
}

/* MGF1 (RFC 8017, B.2.1) of seed with md, XORed into out. */
static void
keyd_tls_mgf1_xor(unsigned char *out, size_t len, const unsigned char *seed,
    size_t seedlen, const EVP_MD *md)
{
	unsigned char t[EVP_MAX_MD_SIZE], c[4];
	EVP_MD_CTX *ctx;
	unsigned int tlen;
	uint32_t i;
	size_t off = 0, n;

	if ((ctx = EVP_MD_CTX_new()) == NULL)
		fatalx("keyd: EVP_MD_CTX_new");
	for (i = 0; off < len; i++) {
		c[0] = (unsigned char)(i >> 24);
		c[1] = (unsigned char)(i >> 16);
		c[2] = (unsigned char)(i >> 8);
		c[3] = (unsigned char)i;
		if (!EVP_DigestInit_ex(ctx, md, NULL) ||
		    !EVP_DigestUpdate(ctx, seed, seedlen) ||
		    !EVP_DigestUpdate(ctx, c, sizeof(c)) ||
		    !EVP_DigestFinal_ex(ctx, t, &tlen))
			fatalx("keyd: MGF1");
		n = len - off < tlen ? len - off : tlen;
		for (size_t j = 0; j < n; j++)
			out[off + j] ^= t[j];
		off += n;
	}
	EVP_MD_CTX_free(ctx);
}

/*
 * 1 when em (the modulus size) is an EMSA-PSS encoding (RFC 8017, 9.1.1)
 * with SHA-256, -384 or -512, MGF1 with the same hash and a salt as long
 * as the digest, as TLS uses them. Only the structure can be checked, not
 * the digest; it is enough that keyd never exponentiates a block of any
 * other shape.
 */
static int
keyd_tls_pss_ok(const unsigned char *em, size_t emlen, int modbits)
{
	unsigned char db[KEYD_TLS_MAX_IN];
	const EVP_MD *md;
	size_t embits, hlen, dblen, i, top;

	if (modbits < 1024 || emlen != ((size_t)modbits + 7) / 8 ||
	    emlen > sizeof(db))
		return 0;
	embits = (size_t)modbits - 1;
	if (embits % 8 == 0) {
		if (em[0] != 0)
			return 0;
		em++;
		emlen--;
	}
	if (em[emlen - 1] != 0xbc)
		return 0;
	top = 8 * emlen - embits;
	if (top > 0 && (em[0] & (0xff << (8 - top)) & 0xff) != 0)
		return 0;
	for (size_t m = 0; (md = keyd_tls_md(m)) != NULL; m++) {
		hlen = (size_t)EVP_MD_get_size(md);
		if (emlen < 2 * hlen + 2)
			continue;
		dblen = emlen - hlen - 1;
		memcpy(db, em, dblen);
		keyd_tls_mgf1_xor(db, dblen, em + dblen, hlen, md);
		db[0] &= 0xff >> top;
		for (i = 0; i < dblen - hlen - 1 && db[i] == 0; i++)
			;
		if (i == dblen - hlen - 1 && db[i] == 0x01)
			return 1;
	}
	return 0;
}

/* 1 when di is a DigestInfo (DER, NULL parameters) of a SHA-2 digest. */
static int
keyd_tls_digestinfo_ok(const unsigned char *di, size_t len)
{
	/* The DER up to the digest, for id-sha256, id-sha384, id-sha512. */
	static const unsigned char pre[3][19] = {
		{ 0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01,
		  0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20 },
		{ 0x30, 0x41, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01,
		  0x65, 0x03, 0x04, 0x02, 0x02, 0x05, 0x00, 0x04, 0x30 },
		{ 0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01,
		  0x65, 0x03, 0x04, 0x02, 0x03, 0x05, 0x00, 0x04, 0x40 },
	};

	for (size_t i = 0; i < 3; i++)
		if (len == sizeof(pre[i]) + pre[i][18] &&
		    memcmp(di, pre[i], sizeof(pre[i])) == 0)
			return 1;
	return 0;
}

int
keyd_tls_rsa_allowed(int padding, const unsigned char *in, size_t inlen,
    int modbits)
{
	switch (padding) {
	case RSA_PKCS1_PADDING:
		return keyd_tls_digestinfo_ok(in, inlen);
	case RSA_NO_PADDING:
		return keyd_tls_pss_ok(in, inlen, modbits);
	default:
		return 0;
	}
}

static int
keyd_tls_ecdsa_allowed(size_t dlen)
{
	return dlen == 32 || dlen == 48 || dlen == 64;
}

static void
keyd_tls_refuse(struct keyholder_chan *ch, uint32_t id, const char *what)
{
	log_warnx("TLS key %u: %s refused", id, what);
	keyholder_reply_err(ch, what);
}

/*
 * One private-key operation on in: with no digest set, OpenSSL's RSA
 * signature applies only the padding asked for (none: the exponentiation
 * of a block checked to be PSS-encoded) and ECDSA signs in as the digest.
 */
static void
keyd_tls_do_op(struct keyholder_chan *ch, uint32_t type,
    const unsigned char *p, size_t len)
{
	EVP_PKEY_CTX *ctx = NULL;
	EVP_PKEY *pkey;
	unsigned char out[KEYD_TLS_MAX_IN + 256];
	size_t outlen = sizeof(out), hlen;
	uint32_t id, pad = 0;
	int rsa = type == KEYD_TLS_RSA;

	hlen = rsa ? 2 * sizeof(uint32_t) : sizeof(uint32_t);
	if (len < hlen || len - hlen > KEYD_TLS_MAX_IN) {
		log_warnx("TLS request of %zu bytes refused", len);
		keyholder_reply_err(ch, "bad TLS request length");
		return;
	}
	memcpy(&id, p, sizeof(id));
	if (rsa)
		memcpy(&pad, p + sizeof(id), sizeof(pad));
	p += hlen;
	len -= hlen;
	if (id >= keyd_ntls) {
		keyd_tls_refuse(ch, id, "unknown TLS key");
		return;
	}
	pkey = keyd_tls_key[id];
	if (rsa != EVP_PKEY_is_a(pkey, "RSA")) {
		keyd_tls_refuse(ch, id, "operation for another key type");
		return;
	}
	if (rsa && !keyd_tls_rsa_allowed((int)pad, p, len,
	    EVP_PKEY_get_bits(pkey))) {
		keyd_tls_refuse(ch, id, pad == RSA_PKCS1_PADDING ?
		    "PKCS#1 v1.5 input that is no SHA-2 DigestInfo" :
		    pad == RSA_NO_PADDING ? "raw RSA block that is not "
		    "PSS-encoded" : "RSA padding mode");
		return;
	}
	if (!rsa && !keyd_tls_ecdsa_allowed(len)) {
		keyd_tls_refuse(ch, id, "ECDSA input that is no SHA-2 digest");
		return;
	}
	if ((ctx = EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL)) == NULL ||
	    EVP_PKEY_sign_init(ctx) <= 0 ||
	    (rsa && EVP_PKEY_CTX_set_rsa_padding(ctx, (int)pad) <= 0) ||
	    EVP_PKEY_sign(ctx, out, &outlen, p, len) <= 0) {
		log_warnx("keyd: TLS key %u: private-key operation failed: %s",
		    id, ERR_reason_error_string(ERR_peek_last_error()));
		ERR_clear_error();
		EVP_PKEY_CTX_free(ctx);
		keyholder_reply_err(ch, "private-key operation failed");
		return;
	}
	EVP_PKEY_CTX_free(ctx);
	keyholder_reply(ch, out, outlen);
	OPENSSL_cleanse(out, sizeof(out));
}

static void
keyd_dispatch_tls(struct keyholder_chan *ch, uint32_t type,
    const unsigned char *p, size_t len)
{
	switch (type) {
	case KEYD_TLS_KEYS:
		keyd_tls_do_keys(ch);
		break;
	case KEYD_TLS_RSA:
	case KEYD_TLS_ECDSA:
		keyd_tls_do_op(ch, type, p, len);
		break;
	default:
		log_warnx("request type %u refused on the TLS channel",
		    type);
		keyholder_reply_err(ch, "request not allowed on this channel");
		break;
	}
}

/* ---- start ---- */

static void
keyd_load(void *arg)
{
	const struct keyd_conf *kc = arg;

	keyd_dir = kc->keys_dir;
	keyd_tunnel = kc->tunnel_signer;
	keyd_load_all();
	for (size_t i = 0; i < kc->ntls; i++)
		keyd_tls_load(kc->tls_keys[i]);
	if (kc->ntls > 0)
		log_info("loaded %zu TLS key%s", kc->ntls,
		    kc->ntls == 1 ? "" : "s");
	log_info("%zu bytes of locked key memory", keyholder_locked());
}

pid_t
keyd_spawn(const struct keyd_conf *kc, struct keyd_client **sign,
    struct keyd_client **tls)
{
	struct keyholder_chan ch[3 * KEYHOLDER_MAX_WORKERS];
	int fds[3 * KEYHOLDER_MAX_WORKERS], nw, n, i;
	pid_t pid;

	if (kc->ntls > KEYD_TLS_MAX_KEYS)
		fatalx("keyd: more than %d TLS keys", KEYD_TLS_MAX_KEYS);
	nw = keyholder_workers(kc->workers);
	n = kc->ntls > 0 ? 3 * nw : 2 * nw;
	for (i = 0; i < n; i++) {
		ch[i].fd = -1;
		if (i < nw) {
			ch[i].name = "signing";
			ch[i].max_req = KEYD_MAX_SIGN_REQ;
			ch[i].dispatch = keyd_dispatch_sign;
		} else if (i < 2 * nw) {
			ch[i].name = "decryption";
			ch[i].max_req = KEYD_MAX_DEC_REQ;
			ch[i].dispatch = keyd_dispatch_dec;
		} else {
			ch[i].name = "TLS";
			ch[i].max_req = KEYD_MAX_TLS_REQ;
			ch[i].dispatch = keyd_dispatch_tls;
		}
	}
	/* keyd_load runs in the child, on its copy of kc. */
	if ((pid = keyholder_spawn("keyd", ch, (size_t)n, kc->user, keyd_load,
	    (void *)kc, fds)) == -1)
		return -1;
	*sign = xcalloc(1, sizeof(**sign));
	(*sign)->kh = keyholder_client_new(fds, (size_t)nw);
	(*sign)->dec = keyholder_client_new(fds + nw, (size_t)nw);
	pthread_mutex_init(&(*sign)->smtx, NULL);
	*tls = NULL;
	if (kc->ntls > 0) {
		*tls = xcalloc(1, sizeof(**tls));
		(*tls)->kh = keyholder_client_new(fds + 2 * nw, (size_t)nw);
		pthread_mutex_init(&(*tls)->smtx, NULL);
	}
	return pid;
}

/* ---- the client side ---- */

void
keyd_client_free(struct keyd_client **cp)
{
	if (*cp == NULL)
		return;
	keyholder_client_free(&(*cp)->kh);
	if ((*cp)->dec != NULL)
		keyholder_client_free(&(*cp)->dec);
	keyd_signers_free(&(*cp)->signers);
	pthread_mutex_destroy(&(*cp)->smtx);
	free(*cp);
	*cp = NULL;
}

struct keyholder_client *
keyd_client_core(struct keyd_client *c)
{
	return c->kh;
}

static int
keyd_request(struct keyd_client *c, uint32_t type, const void *a,
    size_t alen, const void *b, size_t blen, unsigned char **reply,
    size_t *replylen)
{
	return keyholder_request(c->kh, type, a, alen, b, blen,
	    KEYD_MAX_REPLY, reply, replylen);
}

int
keyd_sign_digest(struct keyd_client *c, const char *signer,
    enum keyd_purpose purpose, const char *msgid,
    const unsigned char md[KEYD_DIGEST_LEN], unsigned char **der,
    size_t *derlen, char *err, size_t errlen)
{
	unsigned char *pre, *reply;
	size_t slen = strlen(signer), ilen = strlen(msgid), rlen;
	uint32_t v[3];
	int t;

	*der = NULL;
	*derlen = 0;
	if (slen == 0 || slen > KEYD_MAX_SIGNER) {
		snprintf(err, errlen, "bad signer address");
		return -1;
	}
	if (ilen == 0 || ilen > KEYD_MAX_MSGID) {
		snprintf(err, errlen, "bad message log id");
		return -1;
	}
	v[0] = (uint32_t)purpose;
	v[1] = (uint32_t)slen;
	v[2] = (uint32_t)ilen;
	pre = xmalloc(sizeof(v) + slen + ilen);
	memcpy(pre, v, sizeof(v));
	memcpy(pre + sizeof(v), signer, slen);
	memcpy(pre + sizeof(v) + slen, msgid, ilen);
	t = keyd_request(c, KEYD_SIGN, pre, sizeof(v) + slen + ilen, md,
	    KEYD_DIGEST_LEN, &reply, &rlen);
	free(pre);
	if (t == -1) {
		snprintf(err, errlen, "key holder unavailable");
		return -1;
	}
	if (t == KEYHOLDER_ERR) {
		snprintf(err, errlen, "%s", (char *)reply);
		free(reply);
		return -1;
	}
	*der = reply;
	*derlen = rlen;
	return 0;
}

int
keyd_signers(struct keyd_client *c, char ***out)
{
	unsigned char *reply;
	size_t rlen, off, n = 0;
	char **v;

	*out = NULL;
	if (keyd_request(c, KEYD_SIGNERS, NULL, 0, NULL, 0, &reply, &rlen) !=
	    KEYHOLDER_OK) {
		free(reply);
		return -1;
	}
	v = xcalloc(1, sizeof(*v));
	for (off = 0; off < rlen; off += strlen((char *)reply + off) + 1) {
		v = xreallocarray(v, n + 2, sizeof(*v));
		v[n++] = xstrdup((char *)reply + off);
		v[n] = NULL;
	}
	free(reply);
	*out = v;
	return (int)n;
}

void
keyd_signers_free(char ***vp)
{
	char **v = *vp;

	if (v == NULL)
		return;
	for (size_t i = 0; v[i] != NULL; i++)
		free(v[i]);
	free(v);
	*vp = NULL;
}

/* The signer list is asked of keyd once per key generation, not per call. */
int
keyd_can_sign(struct keyd_client *c, const char *signer)
{
	unsigned int gen = __atomic_load_n(&c->gen, __ATOMIC_ACQUIRE);
	char **v;
	int found = 0;

	pthread_mutex_lock(&c->smtx);
	if (c->signers == NULL || c->sgen != gen) {
		if (keyd_signers(c, &v) == -1) {
			pthread_mutex_unlock(&c->smtx);
			return -1;
		}
		keyd_signers_free(&c->signers);
		c->signers = v;
		c->sgen = gen;
	}
	for (size_t i = 0; c->signers[i] != NULL && !found; i++)
		found = strcasecmp(c->signers[i], signer) == 0;
	pthread_mutex_unlock(&c->smtx);
	return found;
}

int
keyd_reload(struct keyd_client *c)
{
	unsigned char *reply;
	size_t rlen;
	uint32_t count;
	int t;

	__atomic_add_fetch(&c->gen, 1, __ATOMIC_ACQ_REL);
	t = keyd_request(c, KEYD_RELOAD, NULL, 0, NULL, 0, &reply, &rlen);
	__atomic_add_fetch(&c->gen, 1, __ATOMIC_ACQ_REL);
	if (t != KEYHOLDER_OK || rlen != sizeof(count)) {
		free(reply);
		return -1;
	}
	memcpy(&count, reply, sizeof(count));
	free(reply);
	return (int)count;
}

int
keyd_tls_keys(struct keyd_client *c, struct keyd_tls_pub **out)
{
	struct keyd_tls_pub *v = NULL;
	unsigned char *reply;
	size_t rlen, off = 0;
	uint32_t hv[2];
	int n = 0;

	*out = NULL;
	if (keyd_request(c, KEYD_TLS_KEYS, NULL, 0, NULL, 0, &reply, &rlen) !=
	    KEYHOLDER_OK) {
		free(reply);
		return -1;
	}
	while (off < rlen) {
		if (rlen - off < sizeof(hv))
			fatalx("keyd: truncated TLS key list");
		memcpy(hv, reply + off, sizeof(hv));
		off += sizeof(hv);
		if (hv[1] > rlen - off || n >= KEYD_TLS_MAX_KEYS)
			fatalx("keyd: bad TLS key list");
		v = xreallocarray(v, (size_t)n + 1, sizeof(*v));
		v[n].id = hv[0];
		v[n].spkilen = hv[1];
		v[n].spki = xmalloc(hv[1]);
		memcpy(v[n].spki, reply + off, hv[1]);
		off += hv[1];
		n++;
	}
	free(reply);
	*out = v;
	return n;
}

void
keyd_tls_keys_free(struct keyd_tls_pub **vp, int n)
{
	struct keyd_tls_pub *v = *vp;

	if (v == NULL)
		return;
	for (int i = 0; i < n; i++)
		free(v[i].spki);
	free(v);
	*vp = NULL;
}


static int
keyd_tls_call(struct keyd_client *c, uint32_t type, const uint32_t *hv,
    size_t nhv, const unsigned char *in, size_t inlen, unsigned char *out,
    size_t outlen)
{
	unsigned char *reply;
	size_t rlen;
	int t;

	if (inlen > KEYD_TLS_MAX_IN) {
		log_warnx("keyd: TLS operation on %zu bytes refused", inlen);
		return -1;
	}
	t = keyd_request(c, type, hv, nhv * sizeof(*hv), in, inlen, &reply,
	    &rlen);
	if (t == -1)
		return -1;
	if (t == KEYHOLDER_ERR || rlen > outlen) {
		log_warnx("keyd: TLS key %u: %s", hv[0], t == KEYHOLDER_ERR ?
		    (char *)reply : "reply too long");
		free(reply);
		return -1;
	}
	memcpy(out, reply, rlen);
	free(reply);
	return (int)rlen;
}

int
keyd_tls_rsa(struct keyd_client *c, uint32_t id, int padding,
    const unsigned char *in, size_t inlen, unsigned char *out,
    size_t outlen)
{
	uint32_t hv[2] = { id, (uint32_t)padding };

	return keyd_tls_call(c, KEYD_TLS_RSA, hv, 2, in, inlen, out, outlen);
}

int
keyd_tls_ecdsa(struct keyd_client *c, uint32_t id,
    const unsigned char *dgst, size_t dlen, unsigned char *out,
    size_t outlen)
{
	uint32_t hv[1] = { id };

	return keyd_tls_call(c, KEYD_TLS_ECDSA, hv, 1, dgst, dlen, out,
	    outlen);
}

int
keyd_certs(struct keyd_client *c, const char *addr, X509 ***out)
{
	unsigned char *reply;
	const unsigned char *q;
	size_t rlen, off = 0, n = 0, alen = strlen(addr);
	uint32_t l;
	X509 **v, *x;

	*out = NULL;
	if (c->dec == NULL || alen == 0 || alen > KEYD_MAX_SIGNER)
		return -1;
	if (keyholder_request(c->dec, KEYD_CERTS, addr, alen, NULL, 0,
	    KEYD_MAX_REPLY, &reply, &rlen) != KEYHOLDER_OK) {
		free(reply);
		return -1;
	}
	v = xcalloc(1, sizeof(*v));
	while (off < rlen) {
		if (rlen - off < sizeof(l))
			fatalx("keyd: truncated certificate list");
		memcpy(&l, reply + off, sizeof(l));
		off += sizeof(l);
		if (l > rlen - off)
			fatalx("keyd: bad certificate list");
		q = reply + off;
		if ((x = d2i_X509(NULL, &q, l)) == NULL)
			fatalx("keyd: bad certificate in list");
		v = xreallocarray(v, n + 2, sizeof(*v));
		v[n++] = x;
		v[n] = NULL;
		off += l;
	}
	free(reply);
	*out = v;
	return (int)n;
}

void
keyd_certs_free(X509 ***vp)
{
	X509 **v = *vp;

	if (v == NULL)
		return;
	for (size_t i = 0; v[i] != NULL; i++)
		X509_free(v[i]);
	free(v);
	*vp = NULL;
}

int
keyd_unwrap(struct keyd_client *c, const char *addr, const char *msgid,
    const unsigned char kek[KEYD_KEK_LEN], const unsigned char *der,
    size_t derlen, unsigned char **out, size_t *outlen, char *err,
    size_t errlen)
{
	unsigned char *pre, *reply;
	size_t alen = strlen(addr), ilen = strlen(msgid), plen, rlen;
	uint32_t v[3];
	int t;

	*out = NULL;
	*outlen = 0;
	if (c->dec == NULL || alen == 0 || alen > KEYD_MAX_SIGNER ||
	    ilen == 0 || ilen > KEYD_MAX_MSGID ||
	    derlen == 0 || derlen > KEYD_MAX_UNWRAP_DER) {
		snprintf(err, errlen, "request out of bounds");
		return -1;
	}
	v[0] = (uint32_t)alen;
	v[1] = (uint32_t)ilen;
	v[2] = (uint32_t)derlen;
	plen = sizeof(v) + alen + ilen + KEYD_KEK_LEN;
	pre = xmalloc(plen);
	memcpy(pre, v, sizeof(v));
	memcpy(pre + sizeof(v), addr, alen);
	memcpy(pre + sizeof(v) + alen, msgid, ilen);
	memcpy(pre + sizeof(v) + alen + ilen, kek, KEYD_KEK_LEN);
	t = keyholder_request(c->dec, KEYD_UNWRAP, pre, plen, der, derlen,
	    KEYD_MAX_REPLY, &reply, &rlen);
	OPENSSL_cleanse(pre, plen);
	free(pre);
	if (t == -1) {
		snprintf(err, errlen, "key holder unavailable");
		return -1;
	}
	if (t == KEYHOLDER_ERR) {
		snprintf(err, errlen, "%s", (char *)reply);
		free(reply);
		return -1;
	}
	*out = reply;
	*outlen = rlen;
	return 0;
}
