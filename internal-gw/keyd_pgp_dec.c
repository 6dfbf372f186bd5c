/*
 * OpenPGP session keys in the key holder, and the SMTP worker's client
 * calls for keyd's OpenPGP requests (see keyd_pgp.h).
 *
 * SECURITY: a PGP_DECRYPT request carries a PKESK body from mail from
 * outside, forwarded by the SMTP worker: at most KEYD_PGP_MAX_PKESK bytes,
 * read with every length checked (keyd_pgp_get, keyd_pgp_mpi). The
 * ephemeral point, the wrapped key and the RSA block are checked for
 * size; the unwrapped session key must carry a known algorithm, its
 * length and a matching checksum, else the request fails. Nothing but the
 * session key is returned.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>

#include "keyd_pgp.h"
#include "keyd_pgp_int.h"
#include "keyholder.h"
#include "log.h"
#include "xmalloc.h"

/* Key length of a symmetric algorithm we take (AES), or 0. */
static size_t
keyd_pgp_symlen(int algo)
{
	return algo == 7 ? 16 : algo == 8 ? 24 : algo == 9 ? 32 : 0;
}

/*
 * m = algorithm, session key, two-byte checksum: the session key into
 * out (algorithm first). Length, or -1 when m is not well formed.
 */
static int
keyd_pgp_sesskey(const unsigned char *m, size_t n, unsigned char *out)
{
	size_t kl;
	unsigned sum = 0;

	if (n < 3 || (kl = keyd_pgp_symlen(m[0])) == 0 || n != kl + 3)
		return -1;
	for (size_t i = 1; i <= kl; i++)
		sum += m[i];
	if ((sum & 0xffff) != ((unsigned)m[kl + 1] << 8 | m[kl + 2]))
		return -1;
	memcpy(out, m, kl + 1);
	return (int)kl + 1;
}

/* X25519 ECDH (RFC 6637): the session key of a PKESK for sub. */
int
keyd_pgp_ecdh(struct keyd_pgp_sub *sub, struct keyd_pgp_rd *r,
    unsigned char *out)
{
	static const char anon[] = "Anonymous Sender    ";
	const unsigned char *eph, *h, *c;
	unsigned char shared[32], param[64], kek[64], m[64];
	size_t el, sl = sizeof(shared), pl = 0, kl, ml;
	const EVP_MD *md;
	const EVP_CIPHER *wrap;
	EVP_PKEY *peer = NULL;
	EVP_PKEY_CTX *ctx = NULL;
	EVP_CIPHER_CTX *cctx = NULL;
	EVP_MD_CTX *mctx = NULL;
	unsigned int hl;
	int n1 = 0, n2 = 0, rv = -1;

	if (keyd_pgp_mpi(r, &eph, &el) == -1 || el != 33 || eph[0] != 0x40 ||
	    keyd_pgp_get(r, 1, &h) == -1 || h[0] < 24 || h[0] > 56 ||
	    h[0] % 8 != 0 || keyd_pgp_get(r, h[0], &c) == -1)
		return -1;
	md = sub->kdf_hash == 8 ? EVP_sha256() : sub->kdf_hash == 9 ?
	    EVP_sha384() : sub->kdf_hash == 10 ? EVP_sha512() : NULL;
	kl = keyd_pgp_symlen(sub->kdf_cipher);
	wrap = kl == 16 ? EVP_aes_128_wrap() : kl == 24 ? EVP_aes_192_wrap() :
	    kl == 32 ? EVP_aes_256_wrap() : NULL;
	if (md == NULL || wrap == NULL)
		return -1;
	if ((peer = EVP_PKEY_new_raw_public_key(EVP_PKEY_X25519, NULL,
	    eph + 1, 32)) == NULL ||
	    (ctx = EVP_PKEY_CTX_new(sub->pkey, NULL)) == NULL ||
	    EVP_PKEY_derive_init(ctx) != 1 ||
	    EVP_PKEY_derive_set_peer(ctx, peer) != 1 ||
	    EVP_PKEY_derive(ctx, shared, &sl) != 1 || sl != 32)
		goto out;
	param[pl++] = sizeof(keyd_pgp_oid_cv25519);
	memcpy(param + pl, keyd_pgp_oid_cv25519, sizeof(keyd_pgp_oid_cv25519));
	pl += sizeof(keyd_pgp_oid_cv25519);
	param[pl++] = 18;
	param[pl++] = 3;
	param[pl++] = 1;
	param[pl++] = sub->kdf_hash;
	param[pl++] = sub->kdf_cipher;
	memcpy(param + pl, anon, 20);
	pl += 20;
	memcpy(param + pl, sub->fpr, 20);
	pl += 20;
	if ((mctx = EVP_MD_CTX_new()) == NULL ||
	    !EVP_DigestInit_ex(mctx, md, NULL) ||
	    !EVP_DigestUpdate(mctx, "\0\0\0\1", 4) ||
	    !EVP_DigestUpdate(mctx, shared, sizeof(shared)) ||
	    !EVP_DigestUpdate(mctx, param, pl) ||
	    !EVP_DigestFinal_ex(mctx, kek, &hl))
		goto out;
	if ((cctx = EVP_CIPHER_CTX_new()) == NULL)
		goto out;
	EVP_CIPHER_CTX_set_flags(cctx, EVP_CIPHER_CTX_FLAG_WRAP_ALLOW);
	if (EVP_DecryptInit_ex(cctx, wrap, NULL, kek, NULL) != 1 ||
	    EVP_DecryptUpdate(cctx, m, &n1, c, h[0]) != 1 ||
	    EVP_DecryptFinal_ex(cctx, m + n1, &n2) != 1)
		goto out;
	ml = (size_t)(n1 + n2);
	/* PKCS#5 padding to a multiple of 8. */
	if (ml == 0 || m[ml - 1] == 0 || m[ml - 1] > 8 || m[ml - 1] > ml)
		goto out;
	for (size_t i = ml - m[ml - 1]; i < ml; i++)
		if (m[i] != m[ml - 1])
			goto out;
	rv = keyd_pgp_sesskey(m, ml - m[ml - 1], out);
out:
	OPENSSL_cleanse(shared, sizeof(shared));
	OPENSSL_cleanse(kek, sizeof(kek));
	OPENSSL_cleanse(m, sizeof(m));
	EVP_MD_CTX_free(mctx);
	EVP_CIPHER_CTX_free(cctx);
	EVP_PKEY_CTX_free(ctx);
	EVP_PKEY_free(peer);
	ERR_clear_error();
	return rv;
}

/* RSA: the session key of a PKESK for sub. */
int
keyd_pgp_rsa_dec(struct keyd_pgp_sub *sub, struct keyd_pgp_rd *r,
    unsigned char *out)
{
	const unsigned char *c;
	unsigned char m[1024];
	size_t cl, ml = sizeof(m);
	EVP_PKEY_CTX *ctx;
	int rv = -1;

	if (keyd_pgp_mpi(r, &c, &cl) == -1 ||
	    (ctx = EVP_PKEY_CTX_new(sub->pkey, NULL)) == NULL)
		return -1;
	if (EVP_PKEY_decrypt_init(ctx) == 1 &&
	    EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING) == 1 &&
	    EVP_PKEY_decrypt(ctx, m, &ml, c, cl) == 1)
		rv = keyd_pgp_sesskey(m, ml, out);
	OPENSSL_cleanse(m, sizeof(m));
	EVP_PKEY_CTX_free(ctx);
	ERR_clear_error();
	return rv;
}

/* ---- the client's side ---- */

int
keyd_pgp_info(struct keyd_client *c, const char *signer, int *algo,
    unsigned char fpr[20])
{
	unsigned char *reply;
	size_t rlen, slen = strlen(signer);
	int t;

	if (slen == 0 || slen > KEYD_MAX_SIGNER)
		return 0;
	t = keyholder_request(keyd_client_core(c), KEYD_PGP_INFO, signer,
	    slen, NULL, 0, 64, &reply, &rlen);
	if (t == -1)
		return -1;
	if (t == KEYHOLDER_ERR || rlen != 21) {
		free(reply);
		return 0;
	}
	*algo = reply[0];
	memcpy(fpr, reply + 1, 20);
	free(reply);
	return 1;
}

int
keyd_pgp_sign(struct keyd_client *c, const char *signer, const char *msgid,
    const unsigned char md[KEYD_DIGEST_LEN], unsigned char *sig,
    size_t siglen, char *err, size_t errlen)
{
	unsigned char *pre, *reply;
	size_t slen = strlen(signer), ilen = strlen(msgid), rlen;
	uint32_t v[2];
	int t;

	if (slen == 0 || slen > KEYD_MAX_SIGNER || ilen == 0 ||
	    ilen > KEYD_MAX_MSGID) {
		snprintf(err, errlen, "bad signer or log id");
		return -1;
	}
	v[0] = (uint32_t)slen;
	v[1] = (uint32_t)ilen;
	pre = xmalloc(sizeof(v) + slen + ilen);
	memcpy(pre, v, sizeof(v));
	memcpy(pre + sizeof(v), signer, slen);
	memcpy(pre + sizeof(v) + slen, msgid, ilen);
	t = keyholder_request(keyd_client_core(c), KEYD_PGP_SIGN, pre,
	    sizeof(v) + slen + ilen, md, KEYD_DIGEST_LEN, KEYD_PGP_MAX_SIG,
	    &reply, &rlen);
	free(pre);
	if (t == -1) {
		snprintf(err, errlen, "key holder unavailable");
		return -1;
	}
	if (t == KEYHOLDER_ERR || rlen > siglen) {
		snprintf(err, errlen, "%s", t == KEYHOLDER_ERR ?
		    (char *)reply : "signature too long");
		free(reply);
		return -1;
	}
	memcpy(sig, reply, rlen);
	free(reply);
	return (int)rlen;
}

int
keyd_pgp_session_key(struct keyd_client *c, const char *msgid,
    const unsigned char *pkesk, size_t len, unsigned char *out,
    size_t outlen)
{
	unsigned char *pre, *reply;
	size_t ilen = strlen(msgid), rlen;
	uint32_t il = (uint32_t)ilen;
	int t;

	if (ilen == 0 || ilen > KEYD_MAX_MSGID || len > KEYD_PGP_MAX_PKESK)
		return 0;
	pre = xmalloc(4 + ilen);
	memcpy(pre, &il, 4);
	memcpy(pre + 4, msgid, ilen);
	t = keyholder_request(keyd_client_core(c), KEYD_PGP_DECRYPT, pre,
	    4 + ilen, pkesk, len, 64, &reply, &rlen);
	free(pre);
	if (t == -1)
		return -1;
	if (t == KEYHOLDER_ERR || rlen > outlen || rlen < 2) {
		free(reply);
		return 0;
	}
	memcpy(out, reply, rlen);
	OPENSSL_cleanse(reply, rlen);
	free(reply);
	return (int)rlen;
}
