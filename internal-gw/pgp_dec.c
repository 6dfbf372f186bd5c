/*
 * Inbound OpenPGP data (see pgp_in.h): session keys through keyd,
 * decryption and signature checks with librnp.
 *
 * SECURITY: every byte here comes from outside. The armour is removed by
 * librnp into a bounded buffer; the top-level packets are walked with
 * pgp_packet_next (lengths checked, at most PGP_IN_MAX_PACKETS); only a
 * PKESK body addressed to a key ID the key holder has (at most
 * KEYD_PGP_MAX_PKESK bytes) is sent to keyd. librnp decrypts and
 * decompresses into memory limited to max_out, so a compression bomb ends
 * in an error, and data without integrity protection (no MDC or AEAD) is
 * refused. On any failure no plaintext leaves this file.
 *
 * librnp 0.16 cannot be given a session key. So the worker replaces the
 * public-key packets with one symmetric-key packet (SKESK v4) that
 * carries the session key keyd unwrapped, encrypted under a random
 * one-time password (iterated and salted S2K, AES-256 CFB), and lets
 * librnp decrypt that: the data is decrypted and checked by the library,
 * and keyd never sees more than one small packet.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <rnp/rnp.h>
#include <rnp/rnp_err.h>

#include "addr.h"
#include "db.h"
#include "keyd_pgp.h"
#include "log.h"
#include "pgp.h"
#include "pgp_in.h"
#include "pgp_packet.h"
#include "xmalloc.h"

#define PGP_DEC_S2K_COUNT	0x60	/* 65536 bytes hashed */

struct pgp_dec_pass {
	char	pw[33];
};

static bool
pgp_dec_pass_cb(rnp_ffi_t ffi, void *arg, rnp_key_handle_t key,
    const char *ctx, char buf[], size_t len)
{
	struct pgp_dec_pass *p = arg;

	(void)ffi;
	(void)key;
	if (p == NULL || strcmp(ctx, "decrypt (symmetric)") != 0 ||
	    len <= strlen(p->pw))
		return false;
	memcpy(buf, p->pw, strlen(p->pw) + 1);
	return true;
}

/* A fresh ffi with the stored keys of ctx->from, then the message's. */
static rnp_ffi_t
pgp_dec_ffi(struct pgp_in_ctx *ctx)
{
	unsigned char **blobs;
	size_t *lens;
	rnp_ffi_t ffi;
	rnp_input_t in;
	int n;

	if (rnp_ffi_create(&ffi, "GPG", "GPG") != RNP_SUCCESS)
		fatalx("pgp: rnp_ffi_create");
	if (ctx->from[0] != '\0' && ctx->db != NULL &&
	    (n = pgp_keys_find(ctx->db, ctx->from, &blobs, &lens)) > 0) {
		for (int i = 0; i < n; i++)
			if (rnp_input_from_memory(&in, blobs[i], lens[i],
			    false) == RNP_SUCCESS) {
				(void)rnp_import_keys(ffi, in,
				    RNP_LOAD_SAVE_PUBLIC_KEYS, NULL);
				rnp_input_destroy(in);
			}
		pgp_keys_blobs_free(&blobs, &lens, n);
	}
	return ffi;
}

/* 1 when the primary key fpr is in the key store for ctx->from. */
static int
pgp_dec_stored(struct pgp_in_ctx *ctx, const char *fpr)
{
	unsigned char **blobs;
	size_t *lens;
	rnp_ffi_t ffi;
	rnp_key_handle_t k = NULL;
	rnp_input_t in;
	int n, hit = 0;

	if (ctx->from[0] == '\0' || ctx->db == NULL ||
	    (n = pgp_keys_find(ctx->db, ctx->from, &blobs, &lens)) <= 0)
		return 0;
	if (rnp_ffi_create(&ffi, "GPG", "GPG") != RNP_SUCCESS)
		fatalx("pgp: rnp_ffi_create");
	for (int i = 0; i < n; i++)
		if (rnp_input_from_memory(&in, blobs[i], lens[i], false) ==
		    RNP_SUCCESS) {
			(void)rnp_import_keys(ffi, in,
			    RNP_LOAD_SAVE_PUBLIC_KEYS, NULL);
			rnp_input_destroy(in);
		}
	pgp_keys_blobs_free(&blobs, &lens, n);
	if (rnp_locate_key(ffi, "fingerprint", fpr, &k) == RNP_SUCCESS &&
	    k != NULL)
		hit = 1;
	rnp_key_handle_destroy(k);
	rnp_ffi_destroy(ffi);
	return hit;
}

/* Adds the message's own keys (attachments, Autocrypt) to ffi. */
static void
pgp_dec_add_msg_keys(struct pgp_in_ctx *ctx, rnp_ffi_t ffi)
{
	rnp_input_t in;

	if (ctx->keyslen == 0 || rnp_input_from_memory(&in, ctx->keys,
	    ctx->keyslen, false) != RNP_SUCCESS)
		return;
	(void)rnp_import_keys(ffi, in, RNP_LOAD_SAVE_PUBLIC_KEYS |
	    RNP_LOAD_SAVE_PERMISSIVE, NULL);
	rnp_input_destroy(in);
}

/* The outcome of the first signature of a finished verify operation. */
static void
pgp_dec_sigs(struct pgp_in_ctx *ctx, rnp_ffi_t ffi, rnp_op_verify_t op,
    struct pgp_sig_result *r)
{
	rnp_op_verify_signature_t s = NULL;
	rnp_key_handle_t key = NULL, primary = NULL;
	rnp_result_t st;
	size_t n = 0;
	char *fpr = NULL, *emails = NULL, list[4096], needle[330], *c;
	bool b = false;

	memset(r, 0, sizeof(*r));
	if (rnp_op_verify_get_signature_count(op, &n) != RNP_SUCCESS ||
	    n == 0 || rnp_op_verify_get_signature_at(op, 0, &s) !=
	    RNP_SUCCESS)
		return;
	st = rnp_op_verify_signature_get_status(s);
	if (rnp_op_verify_signature_get_key(s, &key) != RNP_SUCCESS ||
	    key == NULL) {
		r->status = PGP_SIG_UNTRUSTED;
		snprintf(r->reason, sizeof(r->reason), "no public key for the "
		    "signer");
		return;
	}
	/* The primary key holds the user IDs. */
	if (rnp_key_get_primary_fprint(key, &fpr) != RNP_SUCCESS &&
	    rnp_key_get_fprint(key, &fpr) != RNP_SUCCESS)
		fpr = NULL;
	if (fpr != NULL)
		(void)rnp_locate_key(ffi, "fingerprint", fpr,
		    &primary);
	if (primary == NULL)
		primary = key, key = NULL;
	emails = pgp_keys_key_emails(primary);
	snprintf(list, sizeof(list), ",%s,", emails);
	snprintf(needle, sizeof(needle), ",%s,", ctx->from);
	if (ctx->from[0] != '\0' && strstr(list, needle) != NULL)
		snprintf(r->signer, sizeof(r->signer), "%s", ctx->from);
	else {
		snprintf(r->signer, sizeof(r->signer), "%s", emails);
		if ((c = strchr(r->signer, ',')) != NULL)
			*c = '\0';
	}
	if ((rnp_key_is_revoked(primary, &b) == RNP_SUCCESS && b) ||
	    (key != NULL && rnp_key_is_revoked(key, &b) == RNP_SUCCESS &&
	    b)) {
		/* Whatever librnp says of a signature by a revoked key. */
		r->status = PGP_SIG_INVALID;
		snprintf(r->reason, sizeof(r->reason), "signer key revoked");
	} else if (st == RNP_ERROR_KEY_NOT_FOUND) {
		r->status = PGP_SIG_UNTRUSTED;
		snprintf(r->reason, sizeof(r->reason), "no public key for the "
		    "signer");
	} else if (st != RNP_SUCCESS) {
		r->status = PGP_SIG_INVALID;
		snprintf(r->reason, sizeof(r->reason), "%s",
		    st == RNP_ERROR_SIGNATURE_EXPIRED ? "signature expired" :
		    "bad signature");
	} else if ((rnp_key_is_expired(primary, &b) == RNP_SUCCESS && b) ||
	    (key != NULL && rnp_key_is_expired(key, &b) == RNP_SUCCESS &&
	    b)) {
		r->status = PGP_SIG_INVALID;
		snprintf(r->reason, sizeof(r->reason), "signer key expired");
	} else if (strstr(list, needle) == NULL || ctx->from[0] == '\0') {
		r->status = PGP_SIG_UNTRUSTED;
		snprintf(r->reason, sizeof(r->reason), "the signer key does "
		    "not name the From: address");
	} else if (fpr == NULL || !pgp_dec_stored(ctx, fpr)) {
		r->status = PGP_SIG_UNTRUSTED;
		snprintf(r->reason, sizeof(r->reason), "key first seen in "
		    "this message");
		if (fpr != NULL)
			snprintf(r->import_fpr, sizeof(r->import_fpr), "%s",
			    fpr);
	} else
		r->status = PGP_SIG_VALID;
	free(emails);
	rnp_buffer_destroy(fpr);
	rnp_key_handle_destroy(key);
	rnp_key_handle_destroy(primary);
}

/*
 * The key IDs (8 bytes each) of the encryption subkeys whose secret part
 * keyd holds, from the public halves in the key store: *ids, count.
 */
static size_t
pgp_dec_our_keyids(struct db *db, unsigned char **ids)
{
	struct db_stmt *st;
	rnp_ffi_t ffi;
	rnp_identifier_iterator_t it = NULL;
	rnp_input_t in;
	const char *id;
	size_t n = 0;

	*ids = NULL;
	if (db == NULL || (st = db_prepare(db, "SELECT data FROM pgp_keys "
	    "WHERE has_secret = 1 LIMIT 1000")) == NULL)
		return 0;
	if (rnp_ffi_create(&ffi, "GPG", "GPG") != RNP_SUCCESS)
		fatalx("pgp: rnp_ffi_create");
	while (db_step(st) == DB_ROW)
		if (rnp_input_from_memory(&in, db_col_blob(st, 0),
		    (size_t)db_col_bytes(st, 0), true) ==
		    RNP_SUCCESS) {
			(void)rnp_import_keys(ffi, in,
			    RNP_LOAD_SAVE_PUBLIC_KEYS, NULL);
			rnp_input_destroy(in);
		}
	db_finalize(st);
	if (rnp_identifier_iterator_create(ffi, &it, "keyid") == RNP_SUCCESS)
		while (rnp_identifier_iterator_next(it, &id) == RNP_SUCCESS &&
		    id != NULL && strlen(id) == 16) {
			*ids = xreallocarray(*ids, n + 1, 8);
			for (int i = 0; i < 8; i++) {
				unsigned v;

				sscanf(id + 2 * i, "%2x", &v);
				(*ids)[n * 8 + i] = (unsigned char)v;
			}
			n++;
		}
	rnp_identifier_iterator_destroy(it);
	rnp_ffi_destroy(ffi);
	return n;
}

/* Removes ASCII armour into a new buffer; binary input is copied. */
static int
pgp_dec_binary(const unsigned char *msg, size_t len, unsigned char **out,
    size_t *outlen)
{
	rnp_input_t in = NULL;
	rnp_output_t o = NULL;
	uint8_t *b;
	size_t i = 0, bl;
	int rv = -1;

	while (i < len && (msg[i] == ' ' || msg[i] == '\t' || msg[i] == '\r' ||
	    msg[i] == '\n'))
		i++;
	if (len - i < 5 || memcmp(msg + i, "-----", 5) != 0) {
		*out = xmalloc(len ? len : 1);
		memcpy(*out, msg, len);
		*outlen = len;
		return 0;
	}
	if (rnp_input_from_memory(&in, msg + i, len - i, false) !=
	    RNP_SUCCESS || rnp_output_to_memory(&o, len) != RNP_SUCCESS)
		goto out;
	if (rnp_dearmor(in, o) != RNP_SUCCESS ||
	    rnp_output_memory_get_buf(o, &b, &bl, false) != RNP_SUCCESS)
		goto out;
	*out = xmalloc(bl ? bl : 1);
	memcpy(*out, b, bl);
	*outlen = bl;
	rv = 0;
out:
	rnp_input_destroy(in);
	rnp_output_destroy(o);
	return rv;
}

/* One SKESK v4 packet carrying sk (algorithm byte, key) under pw. */
static size_t
pgp_dec_skesk(const unsigned char *sk, size_t sklen, const char *pw,
    unsigned char *pkt)
{
	unsigned char salt[8], key[32], iv[16], esk[40];
	size_t count = (size_t)(16 + (PGP_DEC_S2K_COUNT & 15)) <<
	    ((PGP_DEC_S2K_COUNT >> 4) + 6), done = 0, pwl = strlen(pw), n;
	EVP_MD_CTX *md;
	EVP_CIPHER_CTX *c;
	unsigned int kl;
	int ol = 0, fl = 0;
	size_t o = 0;

	if (RAND_bytes(salt, sizeof(salt)) != 1)
		fatalx("pgp: RAND_bytes");
	if ((md = EVP_MD_CTX_new()) == NULL ||
	    !EVP_DigestInit_ex(md, EVP_sha256(), NULL))
		fatalx("pgp: SHA-256");
	while (done < count) {
		n = count - done < sizeof(salt) ? count - done : sizeof(salt);
		EVP_DigestUpdate(md, salt, n);
		done += n;
		n = count - done < pwl ? count - done : pwl;
		EVP_DigestUpdate(md, pw, n);
		done += n;
	}
	if (!EVP_DigestFinal_ex(md, key, &kl) || kl != 32)
		fatalx("pgp: SHA-256");
	EVP_MD_CTX_free(md);
	memset(iv, 0, sizeof(iv));
	if ((c = EVP_CIPHER_CTX_new()) == NULL ||
	    EVP_EncryptInit_ex(c, EVP_aes_256_cfb128(), NULL, key, iv) != 1 ||
	    EVP_EncryptUpdate(c, esk, &ol, sk, (int)sklen) != 1 ||
	    EVP_EncryptFinal_ex(c, esk + ol, &fl) != 1)
		fatalx("pgp: AES-256-CFB");
	EVP_CIPHER_CTX_free(c);
	OPENSSL_cleanse(key, sizeof(key));
	pkt[o++] = 0xc3;			/* new format, tag 3 */
	pkt[o++] = (unsigned char)(13 + ol + fl);
	pkt[o++] = 4;
	pkt[o++] = 9;				/* AES-256 */
	pkt[o++] = 3;				/* iterated and salted */
	pkt[o++] = 8;				/* SHA-256 */
	memcpy(pkt + o, salt, sizeof(salt));
	o += sizeof(salt);
	pkt[o++] = PGP_DEC_S2K_COUNT;
	memcpy(pkt + o, esk, (size_t)(ol + fl));
	o += (size_t)(ol + fl);
	OPENSSL_cleanse(esk, sizeof(esk));
	return o;
}

int
pgp_dec_message(struct pgp_in_ctx *ctx, const unsigned char *msg,
    size_t len, unsigned char **out, size_t *outlen,
    struct pgp_sig_result *sig, char *why, size_t whylen)
{
	unsigned char *bin = NULL, *ids = NULL, *stream = NULL;
	unsigned char sk[40], skesk[64];
	const unsigned char *body;
	size_t binlen, off = 0, prev, blen, nids, data_off = 0, sklen = 0;
	struct pgp_dec_pass pass;
	rnp_ffi_t ffi = NULL;
	rnp_input_t in = NULL;
	rnp_output_t o = NULL;
	rnp_op_verify_t op = NULL;
	rnp_result_t res;
	uint8_t *b;
	size_t bl, npk = 0, sl;
	bool valid = false;
	int tag, r, rv = -2, tried = 0;

	*out = NULL;
	*outlen = 0;
	memset(sig, 0, sizeof(*sig));
	snprintf(why, whylen, "malformed OpenPGP data");
	if (len > PGP_IN_MAX_DATA) {
		snprintf(why, whylen, "OpenPGP data too large");
		return -2;
	}
	if (pgp_dec_binary(msg, len, &bin, &binlen) == -1)
		return -2;
	nids = pgp_dec_our_keyids(ctx->db, &ids);
	/* The session key packets, up to the encrypted data. */
	for (;;) {
		prev = off;
		if ((r = pgp_packet_next(bin, binlen, &off, &tag, &body, &blen,
		    1)) != 0 || ++npk > PGP_IN_MAX_PACKETS)
			goto out;
		if (tag == PGP_TAG_SEIPD || tag == PGP_TAG_AEAD ||
		    tag == PGP_TAG_SED) {
			data_off = prev;
			break;
		}
		if (tag != PGP_TAG_PKESK || blen == (size_t)-1) {
			if (tag == PGP_TAG_SKESK || tag == 10)
				continue;	/* a password; a marker */
			goto out;		/* not an encrypted message */
		}
		if (sklen > 0 || blen < 10 || blen > KEYD_PGP_MAX_PKESK ||
		    body[0] != 3)
			continue;
		for (size_t i = 0; i < nids && sklen == 0; i++) {
			if (memcmp(ids + 8 * i, body + 1, 8) != 0)
				continue;
			tried = 1;
			if (ctx->keyd == NULL)
				break;
			if ((r = keyd_pgp_session_key(ctx->keyd, ctx->msgid,
			    body, blen, sk, sizeof(sk))) == -1) {
				rv = -1;
				snprintf(why, whylen, "key holder unavailable");
				goto out;
			}
			sklen = r > 0 ? (size_t)r : 0;
		}
	}
	if (sklen == 0) {
		rv = 0;
		snprintf(why, whylen, tried ? "the session key does not "
		    "decrypt" : "not encrypted to a key of this gateway");
		goto out;
	}

	/* SKESK (the session key under a one-time password) + the data. */
	for (int i = 0; i < 16; i++) {
		unsigned char rb;

		if (RAND_bytes(&rb, 1) != 1)
			fatalx("pgp: RAND_bytes");
		snprintf(pass.pw + 2 * i, 3, "%02x", rb);
	}
	sl = pgp_dec_skesk(sk, sklen, pass.pw, skesk);
	OPENSSL_cleanse(sk, sizeof(sk));
	stream = xmalloc(sl + binlen - data_off);
	memcpy(stream, skesk, sl);
	memcpy(stream + sl, bin + data_off, binlen - data_off);

	ffi = pgp_dec_ffi(ctx);
	pgp_dec_add_msg_keys(ctx, ffi);
	rnp_ffi_set_pass_provider(ffi, pgp_dec_pass_cb, &pass);
	if (rnp_input_from_memory(&in, stream, sl + binlen - data_off,
	    false) != RNP_SUCCESS || rnp_output_to_memory(&o,
	    ctx->max_out ? ctx->max_out : PGP_IN_MAX_OUT) != RNP_SUCCESS ||
	    rnp_op_verify_create(&op, ffi, in, o) != RNP_SUCCESS)
		goto out;
	(void)rnp_op_verify_set_flags(op, RNP_VERIFY_IGNORE_SIGS_ON_DECRYPT);
	res = rnp_op_verify_execute(op);
	if (rnp_op_verify_get_protection_info(op, NULL, NULL, &valid) !=
	    RNP_SUCCESS)
		valid = false;
	if (res != RNP_SUCCESS || !valid) {
		snprintf(why, whylen, "decryption failed: %s", res !=
		    RNP_SUCCESS ? rnp_result_to_string(res) :
		    "no integrity protection");
		goto out;
	}
	if (rnp_output_memory_get_buf(o, &b, &bl, false) != RNP_SUCCESS)
		goto out;
	pgp_dec_sigs(ctx, ffi, op, sig);
	*out = xmalloc(bl ? bl : 1);
	memcpy(*out, b, bl);
	*outlen = bl;
	rv = 1;
out:
	OPENSSL_cleanse(&pass, sizeof(pass));
	rnp_op_verify_destroy(op);
	rnp_input_destroy(in);
	rnp_output_destroy(o);
	rnp_ffi_destroy(ffi);
	free(stream);
	free(ids);
	free(bin);
	return rv;
}

void
pgp_dec_verify_detached(struct pgp_in_ctx *ctx, const unsigned char *data,
    size_t len, const unsigned char *sigdata, size_t siglen,
    struct pgp_sig_result *sig)
{
	rnp_ffi_t ffi;
	rnp_input_t din = NULL, sin = NULL;
	rnp_op_verify_t op = NULL;

	memset(sig, 0, sizeof(*sig));
	ffi = pgp_dec_ffi(ctx);
	pgp_dec_add_msg_keys(ctx, ffi);
	/* librnp refuses empty or unreadable input already here. */
	if (rnp_input_from_memory(&din, data, len, false) == RNP_SUCCESS &&
	    rnp_input_from_memory(&sin, sigdata, siglen, false) ==
	    RNP_SUCCESS &&
	    rnp_op_verify_detached_create(&op, ffi, din, sin) == RNP_SUCCESS) {
		(void)rnp_op_verify_execute(op);
		pgp_dec_sigs(ctx, ffi, op, sig);
	}
	if (sig->status == PGP_SIG_NONE) {
		sig->status = PGP_SIG_INVALID;
		snprintf(sig->reason, sizeof(sig->reason), "no readable "
		    "signature");
	}
	rnp_op_verify_destroy(op);
	rnp_input_destroy(din);
	rnp_input_destroy(sin);
	rnp_ffi_destroy(ffi);
}

void
pgp_dec_verify_inline(struct pgp_in_ctx *ctx, const unsigned char *data,
    size_t len, struct pgp_sig_result *sig)
{
	rnp_ffi_t ffi;
	rnp_input_t in = NULL;
	rnp_output_t o = NULL;
	rnp_op_verify_t op = NULL;

	memset(sig, 0, sizeof(*sig));
	ffi = pgp_dec_ffi(ctx);
	pgp_dec_add_msg_keys(ctx, ffi);
	if (rnp_input_from_memory(&in, data, len, false) == RNP_SUCCESS &&
	    rnp_output_to_null(&o) == RNP_SUCCESS &&
	    rnp_op_verify_create(&op, ffi, in, o) == RNP_SUCCESS) {
		(void)rnp_op_verify_execute(op);
		pgp_dec_sigs(ctx, ffi, op, sig);
	}
	if (sig->status == PGP_SIG_NONE) {
		sig->status = PGP_SIG_INVALID;
		snprintf(sig->reason, sizeof(sig->reason), "no readable "
		    "signature");
	}
	rnp_op_verify_destroy(op);
	rnp_input_destroy(in);
	rnp_output_destroy(o);
	rnp_ffi_destroy(ffi);
}
