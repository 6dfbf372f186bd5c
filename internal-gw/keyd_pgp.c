/*
 * OpenPGP signing in the key holder (see keyd_pgp.h).
 *
 * SECURITY: the key files are written by the admin tool from keys librnp
 * accepted, but they are still parsed here with every length checked
 * against what is left (a file is at most KEYD_PGP_MAX_FILE bytes, a
 * packet header that runs past the end or uses partial lengths is refused).
 * Requests come from the SMTP worker: bounded by the core, parsed with
 * their size known; a bad one gets ERR and a log line. keyd signs only a
 * 32-byte digest for a named signer; it never sees the message.
 *
 * Why keyd does not use librnp: librnp 0.16 cannot sign a precomputed
 * digest, only data it hashes itself, which would put the message into
 * the key holder. So keyd takes the primary key's secret material from
 * the unprotected key file and makes the raw signature with OpenSSL
 * (Ed25519, RSA PKCS#1 v1.5 with SHA-256, ECDSA P-256); the worker builds
 * the v4 signature packet around it.
 */
#include <dirent.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/rsa.h>

#include "addr.h"
#include "keyd_pgp.h"
#include "keyd_pgp_int.h"
#include "keyholder.h"
#include "log.h"
#include "pgp_packet.h"
#include "xmalloc.h"

#define KEYD_PGP_MAX_KEYS	10000
#define KEYD_PGP_MAX_UIDS	64

#define KEYD_PGP_MAX_SUBS	16

struct keyd_pgp_key {
	char			**emails;
	EVP_PKEY		 *pkey;
	int			  algo;
	unsigned char		  fpr[20];
	struct keyd_pgp_sub	  subs[KEYD_PGP_MAX_SUBS];
	size_t			  nsubs;
};

static pthread_rwlock_t		 keyd_pgp_lock = PTHREAD_RWLOCK_INITIALIZER;
static struct keyd_pgp_key	*keyd_pgp_keys;
static size_t			 keyd_pgp_nkeys;

static const unsigned char keyd_pgp_oid_ed25519[] = {
	0x2b, 0x06, 0x01, 0x04, 0x01, 0xda, 0x47, 0x0f, 0x01 };
const unsigned char keyd_pgp_oid_cv25519[10] = {
	0x2b, 0x06, 0x01, 0x04, 0x01, 0x97, 0x55, 0x01, 0x05, 0x01 };
static const unsigned char keyd_pgp_oid_p256[] = {
	0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07 };

int
keyd_pgp_get(struct keyd_pgp_rd *r, size_t n, const unsigned char **out)
{
	if (n > r->len - r->off)
		return -1;
	*out = r->p + r->off;
	r->off += n;
	return 0;
}

/* An MPI: its magnitude bytes (leading zeros as encoded) in *out. */
int
keyd_pgp_mpi(struct keyd_pgp_rd *r, const unsigned char **out, size_t *n)
{
	const unsigned char *h;
	size_t bits;

	if (keyd_pgp_get(r, 2, &h) == -1)
		return -1;
	bits = (size_t)h[0] << 8 | h[1];
	*n = (bits + 7) / 8;
	return keyd_pgp_get(r, *n, out);
}

static void
keyd_pgp_fpr(const unsigned char *pub, size_t publen, unsigned char fpr[20])
{
	unsigned char pre[3] = { 0x99, (unsigned char)(publen >> 8),
	    (unsigned char)publen };
	unsigned int mdlen = 0;
	EVP_MD_CTX *ctx;

	if ((ctx = EVP_MD_CTX_new()) == NULL ||
	    !EVP_DigestInit_ex(ctx, EVP_sha1(), NULL) ||
	    !EVP_DigestUpdate(ctx, pre, sizeof(pre)) ||
	    !EVP_DigestUpdate(ctx, pub, publen) ||
	    !EVP_DigestFinal_ex(ctx, fpr, &mdlen) || mdlen != 20)
		fatalx("keyd: SHA-1");
	EVP_MD_CTX_free(ctx);
}

static EVP_PKEY *
keyd_pgp_fromdata(const char *type, OSSL_PARAM_BLD *bld)
{
	OSSL_PARAM *params;
	EVP_PKEY_CTX *ctx;
	EVP_PKEY *pkey = NULL;

	if ((params = OSSL_PARAM_BLD_to_param(bld)) == NULL)
		return NULL;
	if ((ctx = EVP_PKEY_CTX_new_from_name(NULL, type, NULL)) != NULL &&
	    EVP_PKEY_fromdata_init(ctx) == 1)
		(void)EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_KEYPAIR, params);
	EVP_PKEY_CTX_free(ctx);
	OSSL_PARAM_free(params);
	return pkey;
}

/* The private key of a v4 secret key packet body; NULL with why. */
static EVP_PKEY *
keyd_pgp_secret(const unsigned char *b, size_t n, int *algo,
    unsigned char fpr[20], const char **why)
{
	struct keyd_pgp_rd r = { b, n, 0 };
	const unsigned char *h, *oid = NULL, *m1, *m2, *d, *s2k;
	size_t oidlen = 0, l1, l2, dl;
	unsigned char seed[32];
	OSSL_PARAM_BLD *bld;
	BIGNUM *bn1 = NULL, *bn2 = NULL, *bnd = NULL;
	EVP_PKEY *pkey = NULL;

	if (keyd_pgp_get(&r, 6, &h) == -1 || h[0] != 4) {
		*why = "not a version 4 key";
		return NULL;
	}
	*algo = h[5];
	switch (*algo) {
	case PGP_ALG_RSA:
		if (keyd_pgp_mpi(&r, &m1, &l1) == -1 ||
		    keyd_pgp_mpi(&r, &m2, &l2) == -1)
			goto bad;
		break;
	case PGP_ALG_ECDSA:
	case PGP_ALG_EDDSA:
		if (keyd_pgp_get(&r, 1, &h) == -1 || h[0] == 0 ||
		    h[0] == 0xff || keyd_pgp_get(&r, h[0], &oid) == -1)
			goto bad;
		oidlen = h[0];
		if (keyd_pgp_mpi(&r, &m1, &l1) == -1)
			goto bad;
		break;
	default:
		*why = "the primary key's algorithm cannot sign here";
		return NULL;
	}
	keyd_pgp_fpr(b, r.off, fpr);
	if (keyd_pgp_get(&r, 1, &s2k) == -1 || s2k[0] != 0) {
		*why = "the secret key is protected or missing";
		return NULL;
	}
	if ((bld = OSSL_PARAM_BLD_new()) == NULL)
		fatalx("keyd: OSSL_PARAM_BLD_new");
	switch (*algo) {
	case PGP_ALG_RSA:
		if (keyd_pgp_mpi(&r, &d, &dl) == -1)
			goto badbld;
		bn1 = BN_bin2bn(m1, (int)l1, NULL);
		bn2 = BN_bin2bn(m2, (int)l2, NULL);
		bnd = BN_secure_new();
		if (bnd == NULL || BN_bin2bn(d, (int)dl, bnd) == NULL ||
		    !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn1) ||
		    !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, bn2) ||
		    !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_D, bnd))
			goto badbld;
		pkey = keyd_pgp_fromdata("RSA", bld);
		break;
	case PGP_ALG_EDDSA:
		if (oidlen != sizeof(keyd_pgp_oid_ed25519) || memcmp(oid,
		    keyd_pgp_oid_ed25519, oidlen) != 0) {
			*why = "an EdDSA curve other than Ed25519";
			goto out;
		}
		if (keyd_pgp_mpi(&r, &d, &dl) == -1 || dl > 32)
			goto badbld;
		memset(seed, 0, sizeof(seed));
		memcpy(seed + 32 - dl, d, dl);
		pkey = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL,
		    seed, sizeof(seed));
		OPENSSL_cleanse(seed, sizeof(seed));
		break;
	case PGP_ALG_ECDSA:
		if (oidlen != sizeof(keyd_pgp_oid_p256) || memcmp(oid,
		    keyd_pgp_oid_p256, oidlen) != 0) {
			*why = "an ECDSA curve other than P-256";
			goto out;
		}
		if (keyd_pgp_mpi(&r, &d, &dl) == -1)
			goto badbld;
		bnd = BN_secure_new();
		if (bnd == NULL || BN_bin2bn(d, (int)dl, bnd) == NULL ||
		    !OSSL_PARAM_BLD_push_utf8_string(bld,
		    OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0) ||
		    !OSSL_PARAM_BLD_push_octet_string(bld,
		    OSSL_PKEY_PARAM_PUB_KEY, m1, l1) ||
		    !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_PRIV_KEY, bnd))
			goto badbld;
		pkey = keyd_pgp_fromdata("EC", bld);
		break;
	}
	if (pkey == NULL)
		*why = "OpenSSL refuses the key material";
	goto out;
badbld:
	*why = "malformed secret key packet";
out:
	OSSL_PARAM_BLD_free(bld);
	BN_free(bn1);
	BN_free(bn2);
	BN_clear_free(bnd);
	ERR_clear_error();
	return pkey;
bad:
	*why = "malformed key packet";
	return NULL;
}

/*
 * An encryption subkey packet body (tag 7): X25519 ECDH (algorithm 18,
 * Curve25519, whose secret OpenPGP stores as a big-endian MPI of the
 * little-endian scalar) or RSA. 0, or -1 when unusable here.
 */
static int
keyd_pgp_subkey(const unsigned char *b, size_t n, struct keyd_pgp_sub *sk)
{
	struct keyd_pgp_rd r = { b, n, 0 };
	const unsigned char *h, *oid, *m1, *m2, *d, *kdf;
	size_t l1, l2, dl;
	unsigned char x[32];
	OSSL_PARAM_BLD *bld;
	BIGNUM *bn1, *bn2, *bnd;

	memset(sk, 0, sizeof(*sk));
	if (keyd_pgp_get(&r, 6, &h) == -1 || h[0] != 4)
		return -1;
	sk->algo = h[5];
	if (sk->algo == 18) {
		if (keyd_pgp_get(&r, 1, &h) == -1 ||
		    h[0] != sizeof(keyd_pgp_oid_cv25519) ||
		    keyd_pgp_get(&r, h[0], &oid) == -1 ||
		    memcmp(oid, keyd_pgp_oid_cv25519, h[0]) != 0 ||
		    keyd_pgp_mpi(&r, &m1, &l1) == -1 ||
		    keyd_pgp_get(&r, 4, &kdf) == -1 || kdf[0] != 3 ||
		    kdf[1] != 1)
			return -1;
		sk->kdf_hash = kdf[2];
		sk->kdf_cipher = kdf[3];
		keyd_pgp_fpr(b, r.off, sk->fpr);
		if (keyd_pgp_get(&r, 1, &h) == -1 || h[0] != 0 ||
		    keyd_pgp_mpi(&r, &d, &dl) == -1 || dl > 32)
			return -1;
		memset(x, 0, sizeof(x));
		for (size_t i = 0; i < dl; i++)
			x[i] = d[dl - 1 - i];
		sk->pkey = EVP_PKEY_new_raw_private_key(EVP_PKEY_X25519, NULL,
		    x, sizeof(x));
		OPENSSL_cleanse(x, sizeof(x));
		ERR_clear_error();
		return sk->pkey ? 0 : -1;
	}
	if (sk->algo != PGP_ALG_RSA && sk->algo != 2)
		return -1;
	if (keyd_pgp_mpi(&r, &m1, &l1) == -1 ||
	    keyd_pgp_mpi(&r, &m2, &l2) == -1)
		return -1;
	keyd_pgp_fpr(b, r.off, sk->fpr);
	if (keyd_pgp_get(&r, 1, &h) == -1 || h[0] != 0 ||
	    keyd_pgp_mpi(&r, &d, &dl) == -1)
		return -1;
	if ((bld = OSSL_PARAM_BLD_new()) == NULL)
		fatalx("keyd: OSSL_PARAM_BLD_new");
	bn1 = BN_bin2bn(m1, (int)l1, NULL);
	bn2 = BN_bin2bn(m2, (int)l2, NULL);
	if ((bnd = BN_secure_new()) != NULL && BN_bin2bn(d, (int)dl, bnd) &&
	    OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn1) &&
	    OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, bn2) &&
	    OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_D, bnd))
		sk->pkey = keyd_pgp_fromdata("RSA", bld);
	OSSL_PARAM_BLD_free(bld);
	BN_free(bn1);
	BN_free(bn2);
	BN_clear_free(bnd);
	ERR_clear_error();
	return sk->pkey ? 0 : -1;
}

static void
keyd_pgp_key_clear(struct keyd_pgp_key *k)
{
	EVP_PKEY_free(k->pkey);
	for (size_t i = 0; i < k->nsubs; i++)
		EVP_PKEY_free(k->subs[i].pkey);
	keyd_pgp_emails_free(&k->emails);
	memset(k, 0, sizeof(*k));
}

void
keyd_pgp_emails_free(char ***v)
{
	if (*v == NULL)
		return;
	for (size_t i = 0; (*v)[i] != NULL; i++)
		free((*v)[i]);
	free(*v);
	*v = NULL;
}

/* The folded address of a user ID packet body, or -1. */
static int
keyd_pgp_uid(const unsigned char *b, size_t n, char *out, size_t outlen)
{
	char uid[ADDR_MAX + 256], *lt, *gt;

	if (n >= sizeof(uid) || memchr(b, '\0', n) != NULL)
		return -1;
	memcpy(uid, b, n);
	uid[n] = '\0';
	if ((lt = strrchr(uid, '<')) != NULL && (gt = strchr(lt, '>')) !=
	    NULL) {
		*gt = '\0';
		memmove(uid, lt + 1, strlen(lt + 1) + 1);
	} else if (strpbrk(uid, " \t<>") != NULL)
		return -1;
	if (strchr(uid, '@') == NULL)
		return -1;
	return addr_fold(uid, out, outlen);
}

/* One key file into k (emails, primary key, encryption subkeys). */
static int
keyd_pgp_parse_key(const unsigned char *p, size_t len,
    struct keyd_pgp_key *k, const char **why)
{
	const unsigned char *body;
	size_t off = 0, blen, n = 0;
	char e[ADDR_MAX];
	int tag, r, seen_key = 0;

	memset(k, 0, sizeof(*k));
	k->emails = xcalloc(1, sizeof(*k->emails));
	if (len > KEYD_PGP_MAX_FILE) {
		*why = "key file too large";
		goto fail;
	}
	while ((r = pgp_packet_next(p, len, &off, &tag, &body, &blen,
	    0)) == 0) {
		if (tag == PGP_TAG_SECKEY && !seen_key) {
			seen_key = 1;
			if ((k->pkey = keyd_pgp_secret(body, blen, &k->algo,
			    k->fpr, why)) == NULL)
				goto fail;
		} else if (tag == PGP_TAG_SECKEY || tag == PGP_TAG_PUBKEY) {
			break;		/* the next key: one per file */
		} else if (tag == PGP_TAG_UID && seen_key &&
		    n < KEYD_PGP_MAX_UIDS &&
		    keyd_pgp_uid(body, blen, e, sizeof(e)) == 0) {
			k->emails = xreallocarray(k->emails, n + 2,
			    sizeof(*k->emails));
			k->emails[n++] = xstrdup(e);
			k->emails[n] = NULL;
		} else if (tag == PGP_TAG_SECSUB && seen_key &&
		    k->nsubs < KEYD_PGP_MAX_SUBS &&
		    keyd_pgp_subkey(body, blen, &k->subs[k->nsubs]) == 0)
			k->nsubs++;
	}
	if (r == -1) {
		*why = "malformed packet";
		goto fail;
	}
	if (!seen_key) {
		*why = "no secret key packet";
		goto fail;
	}
	return 0;
fail:
	keyd_pgp_key_clear(k);
	return -1;
}

int
keyd_pgp_parse(const unsigned char *p, size_t len, char ***emails,
    int *algo, unsigned char fpr[20], size_t *nsubs, const char **why)
{
	struct keyd_pgp_key k;

	*emails = NULL;
	if (keyd_pgp_parse_key(p, len, &k, why) == -1)
		return -1;
	*emails = k.emails;
	k.emails = NULL;
	*algo = k.algo;
	memcpy(fpr, k.fpr, 20);
	*nsubs = k.nsubs;
	keyd_pgp_key_clear(&k);
	return 0;
}

size_t
keyd_pgp_load(const char *keys_dir)
{
	struct keyd_pgp_key *keys = NULL;
	struct dirent *de;
	unsigned char *buf = xmalloc(KEYD_PGP_MAX_FILE + 1);
	char dir[4096], path[4400];
	const char *why;
	size_t n = 0, len;
	FILE *f;
	DIR *d;

	snprintf(dir, sizeof(dir), "%s/openpgp", keys_dir);
	if ((d = opendir(dir)) != NULL) {
		while ((de = readdir(d)) != NULL && n < KEYD_PGP_MAX_KEYS) {
			len = strlen(de->d_name);
			if (de->d_name[0] == '.' || len < 5 ||
			    strcmp(de->d_name + len - 4, ".pgp") != 0)
				continue;
			snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
			if ((f = fopen(path, "re")) == NULL) {
				log_warn("keyd: %s", path);
				continue;
			}
			len = fread(buf, 1, KEYD_PGP_MAX_FILE + 1, f);
			fclose(f);
			keys = xreallocarray(keys, n + 1, sizeof(*keys));
			if (keyd_pgp_parse_key(buf, len, &keys[n], &why) ==
			    -1) {
				log_warnx("keyd: %s: %s", path, why);
				continue;
			}
			n++;
		}
		closedir(d);
	}
	OPENSSL_cleanse(buf, KEYD_PGP_MAX_FILE + 1);
	free(buf);
	pthread_rwlock_wrlock(&keyd_pgp_lock);
	for (size_t i = 0; i < keyd_pgp_nkeys; i++)
		keyd_pgp_key_clear(&keyd_pgp_keys[i]);
	free(keyd_pgp_keys);
	keyd_pgp_keys = keys;
	keyd_pgp_nkeys = n;
	pthread_rwlock_unlock(&keyd_pgp_lock);
	log_info("loaded %zu OpenPGP signing key%s from %s", n,
	    n == 1 ? "" : "s", dir);
	return n;
}

/* The key for signer (folded match); call with the lock held. */
static struct keyd_pgp_key *
keyd_pgp_find(const char *signer)
{
	char folded[ADDR_MAX];

	if (addr_fold(signer, folded, sizeof(folded)) == -1)
		return NULL;
	for (size_t i = keyd_pgp_nkeys; i-- > 0; )
		for (size_t j = 0; keyd_pgp_keys[i].emails[j] != NULL; j++)
			if (strcmp(keyd_pgp_keys[i].emails[j], folded) == 0)
				return &keyd_pgp_keys[i];
	return NULL;
}

/* Appends the MPI of the big-endian magnitude b to out at *o. */
static void
keyd_pgp_put_mpi(unsigned char *out, size_t *o, const unsigned char *b,
    size_t n)
{
	size_t bits;

	while (n > 0 && *b == 0) {
		b++;
		n--;
	}
	bits = n ? (n - 1) * 8 : 0;
	for (unsigned c = n ? b[0] : 0; c; c >>= 1)
		bits++;
	out[(*o)++] = (unsigned char)(bits >> 8);
	out[(*o)++] = (unsigned char)bits;
	memcpy(out + *o, b, n);
	*o += n;
}

/* The signature MPIs of md in out (KEYD_PGP_MAX_SIG); length or -1. */
static int
keyd_pgp_do(struct keyd_pgp_key *k, const unsigned char *md,
    unsigned char *out)
{
	unsigned char sig[1024], rb[66], sb[66];
	size_t slen = sizeof(sig), o = 0;
	EVP_MD_CTX *mctx;
	EVP_PKEY_CTX *ctx;
	ECDSA_SIG *es;
	const unsigned char *q;
	int ok = 0;

	if (k->algo == PGP_ALG_EDDSA) {
		if ((mctx = EVP_MD_CTX_new()) == NULL)
			fatalx("keyd: EVP_MD_CTX_new");
		ok = EVP_DigestSignInit(mctx, NULL, NULL, NULL, k->pkey) == 1 &&
		    EVP_DigestSign(mctx, sig, &slen, md, KEYD_DIGEST_LEN) ==
		    1 && slen == 64;
		EVP_MD_CTX_free(mctx);
		if (!ok)
			return -1;
		keyd_pgp_put_mpi(out, &o, sig, 32);
		keyd_pgp_put_mpi(out, &o, sig + 32, 32);
		return (int)o;
	}
	if ((ctx = EVP_PKEY_CTX_new(k->pkey, NULL)) == NULL)
		return -1;
	ok = EVP_PKEY_sign_init(ctx) == 1 &&
	    EVP_PKEY_CTX_set_signature_md(ctx, EVP_sha256()) == 1 &&
	    (k->algo != PGP_ALG_RSA || EVP_PKEY_CTX_set_rsa_padding(ctx,
	    RSA_PKCS1_PADDING) == 1) &&
	    EVP_PKEY_sign(ctx, sig, &slen, md, KEYD_DIGEST_LEN) == 1;
	EVP_PKEY_CTX_free(ctx);
	if (!ok)
		return -1;
	if (k->algo == PGP_ALG_RSA) {
		keyd_pgp_put_mpi(out, &o, sig, slen);
		return (int)o;
	}
	q = sig;
	if ((es = d2i_ECDSA_SIG(NULL, &q, (long)slen)) == NULL)
		return -1;
	if (BN_bn2binpad(ECDSA_SIG_get0_r(es), rb, 32) != 32 ||
	    BN_bn2binpad(ECDSA_SIG_get0_s(es), sb, 32) != 32) {
		ECDSA_SIG_free(es);
		return -1;
	}
	ECDSA_SIG_free(es);
	keyd_pgp_put_mpi(out, &o, rb, 32);
	keyd_pgp_put_mpi(out, &o, sb, 32);
	return (int)o;
}

/* PGP_DECRYPT: uint32 msgid length, msgid, PKESK body. */
static void
keyd_pgp_decrypt(struct keyholder_chan *ch, const unsigned char *p,
    size_t len)
{
	char msgid[KEYD_MAX_MSGID + 1], kid[17];
	unsigned char out[40];
	struct keyd_pgp_rd r;
	struct keyd_pgp_sub *sub = NULL;
	const unsigned char *h;
	uint32_t il;
	int n = -1;

	if (len < 4 || (memcpy(&il, p, 4), il == 0) || il > KEYD_MAX_MSGID ||
	    len - 4 < il || len - 4 - il > KEYD_PGP_MAX_PKESK ||
	    memchr(p + 4, '\0', il) != NULL) {
		log_warnx("keyd: malformed OpenPGP decryption request");
		keyholder_reply_err(ch, "malformed request");
		return;
	}
	memcpy(msgid, p + 4, il);
	msgid[il] = '\0';
	for (size_t i = 0; msgid[i] != '\0'; i++)
		if (msgid[i] <= ' ' || msgid[i] > '~')
			msgid[i] = '?';
	r.p = p + 4 + il;
	r.len = len - 4 - il;
	r.off = 0;
	if (keyd_pgp_get(&r, 10, &h) == -1 || h[0] != 3) {
		keyholder_reply_err(ch, "not a version 3 PKESK");
		return;
	}
	for (int i = 0; i < 8; i++)
		snprintf(kid + 2 * i, 3, "%02X", h[1 + i]);
	pthread_rwlock_rdlock(&keyd_pgp_lock);
	for (size_t i = 0; i < keyd_pgp_nkeys && sub == NULL; i++)
		for (size_t j = 0; j < keyd_pgp_keys[i].nsubs; j++)
			if (memcmp(keyd_pgp_keys[i].subs[j].fpr + 12, h + 1,
			    8) == 0 && keyd_pgp_keys[i].subs[j].algo == h[9]) {
				sub = &keyd_pgp_keys[i].subs[j];
				break;
			}
	if (sub != NULL)
		n = sub->algo == 18 ? keyd_pgp_ecdh(sub, &r, out) :
		    keyd_pgp_rsa_dec(sub, &r, out);
	pthread_rwlock_unlock(&keyd_pgp_lock);
	if (sub == NULL) {
		keyholder_reply_err(ch, "no key for this recipient");
		return;
	}
	if (n < 0) {
		log_warnx("id=%s OpenPGP session key for key %s: cannot "
		    "decrypt", msgid, kid);
		keyholder_reply_err(ch, "cannot decrypt the session key");
		return;
	}
	log_info("id=%s OpenPGP session key decrypted with key %s", msgid,
	    kid);
	keyholder_reply(ch, out, (size_t)n);
	OPENSSL_cleanse(out, sizeof(out));
}

void
keyd_pgp_dispatch(struct keyholder_chan *ch, uint32_t type,
    const unsigned char *p, size_t len)
{
	char signer[KEYD_MAX_SIGNER + 1], msgid[KEYD_MAX_MSGID + 1], hex[17];
	unsigned char out[KEYD_PGP_MAX_SIG], info[21];
	struct keyd_pgp_key *k;
	uint32_t v[2];
	int n;

	if (type == KEYD_PGP_DECRYPT) {
		keyd_pgp_decrypt(ch, p, len);
		return;
	}
	if (type == KEYD_PGP_INFO) {
		if (len == 0 || len > KEYD_MAX_SIGNER ||
		    memchr(p, '\0', len) != NULL) {
			keyholder_reply_err(ch, "bad signer");
			return;
		}
		memcpy(signer, p, len);
		signer[len] = '\0';
		pthread_rwlock_rdlock(&keyd_pgp_lock);
		if ((k = keyd_pgp_find(signer)) != NULL) {
			info[0] = (unsigned char)k->algo;
			memcpy(info + 1, k->fpr, 20);
		}
		pthread_rwlock_unlock(&keyd_pgp_lock);
		if (k == NULL)
			keyholder_reply_err(ch, "no OpenPGP key for the signer");
		else
			keyholder_reply(ch, info, sizeof(info));
		return;
	}
	/* PGP_SIGN */
	if (len < sizeof(v)) {
		keyholder_reply_err(ch, "short request");
		return;
	}
	memcpy(v, p, sizeof(v));
	if (v[0] == 0 || v[0] > KEYD_MAX_SIGNER || v[1] == 0 ||
	    v[1] > KEYD_MAX_MSGID || len != sizeof(v) + v[0] + v[1] +
	    KEYD_DIGEST_LEN || memchr(p + sizeof(v), '\0', v[0] + v[1]) !=
	    NULL) {
		log_warnx("keyd: malformed OpenPGP signing request");
		keyholder_reply_err(ch, "malformed request");
		return;
	}
	memcpy(signer, p + sizeof(v), v[0]);
	signer[v[0]] = '\0';
	memcpy(msgid, p + sizeof(v) + v[0], v[1]);
	msgid[v[1]] = '\0';
	for (size_t i = 0; msgid[i] != '\0'; i++)
		if (msgid[i] <= ' ' || msgid[i] > '~')
			msgid[i] = '?';
	p += sizeof(v) + v[0] + v[1];
	pthread_rwlock_rdlock(&keyd_pgp_lock);
	n = (k = keyd_pgp_find(signer)) == NULL ? -2 : keyd_pgp_do(k, p, out);
	pthread_rwlock_unlock(&keyd_pgp_lock);
	ERR_clear_error();
	if (n < 0) {
		log_warnx("id=%s OpenPGP signing as %s failed: %s", msgid,
		    signer, n == -2 ? "no key" : "signature error");
		keyholder_reply_err(ch, n == -2 ? "no OpenPGP key for the "
		    "signer" : "signing failed");
		return;
	}
	for (int i = 0; i < 8; i++)
		snprintf(hex + 2 * i, 3, "%02x", p[i]);
	log_info("id=%s signed (OpenPGP) as %s, digest %s", msgid, signer,
	    hex);
	keyholder_reply(ch, out, (size_t)n);
}

