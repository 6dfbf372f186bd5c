/*
 * Encrypted storage: the sealed metadata of a message row (store_crypt.h).
 * The list needs a message's From and Subject without opening its file;
 * with encrypted storage they lie in the row sealed with the message's own
 * content-encryption key (CEK), so whoever can read the file can read
 * them, and the ingest, which holds only certificates, can write them.
 *
 * Blob layout (all lengths big-endian):
 *
 *   01                          version
 *   then per field, in order:
 *   00                          absent, or
 *   01 <nonce 12> <len 4> <ciphertext len> <tag 16>
 *
 * AES-256-GCM, a fresh random nonce per field, the field's number and the
 * version as additional data (fields cannot be swapped inside a row; a
 * row's blob does not open with another message's key).
 *
 * SECURITY: the blob comes from our own database, which a compromised
 * ingest worker could write: every length is checked against the bytes
 * present, the tag is checked before any plaintext is returned, and a
 * value with a NUL byte is refused.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "log.h"
#include "store/store_crypt.h"
#include "xmalloc.h"

#define SCM_VERSION	0x01
#define SCM_NONCE	12
#define SCM_TAG		16
#define SCM_MAX		(1024 * 1024)	/* one value, bytes */

/*
 * The cipher, fetched once: an implicit fetch per call (what passing
 * EVP_aes_256_gcm() costs in OpenSSL 3) is most of the price of opening
 * the short values of an inbox page.
 */
static EVP_CIPHER	*scm_gcm;
static pthread_once_t	 scm_once = PTHREAD_ONCE_INIT;

static void
scm_fetch(void)
{
	if ((scm_gcm = EVP_CIPHER_fetch(NULL, "AES-256-GCM", NULL)) == NULL)
		fatalx("store: no AES-256-GCM");
}

static const EVP_CIPHER *
scm_cipher(void)
{
	pthread_once(&scm_once, scm_fetch);
	return scm_gcm;
}

static void
scm_aad(unsigned char aad[2], int field)
{
	aad[0] = SCM_VERSION;
	aad[1] = (unsigned char)field;
}

int
store_crypt_meta_seal(const unsigned char key[STORE_CRYPT_KEYLEN],
    const char *const *fields, int n, unsigned char **out, size_t *outlen)
{
	unsigned char *b, *p, aad[2];
	size_t total = 1, len;
	EVP_CIPHER_CTX *ctx;
	int outl, rc = -1;

	for (int i = 0; i < n; i++) {
		total++;
		if (fields[i] != NULL) {
			if ((len = strlen(fields[i])) > SCM_MAX)
				return -1;
			total += SCM_NONCE + 4 + len + SCM_TAG;
		}
	}
	if ((ctx = EVP_CIPHER_CTX_new()) == NULL)
		fatalx("store: EVP_CIPHER_CTX_new");
	/* The key schedule once; each field sets its own nonce. */
	if (EVP_EncryptInit_ex(ctx, scm_cipher(), NULL, key, NULL) != 1 ||
	    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, SCM_NONCE, NULL)
	    != 1)
		fatalx("store: AES-256-GCM");
	p = b = xmalloc(total);
	*p++ = SCM_VERSION;
	for (int i = 0; i < n; i++) {
		if (fields[i] == NULL) {
			*p++ = 0;
			continue;
		}
		len = strlen(fields[i]);
		*p++ = 1;
		if (RAND_bytes(p, SCM_NONCE) != 1)
			fatalx("store: no random bytes");
		scm_aad(aad, i);
		if (EVP_EncryptInit_ex(ctx, NULL, NULL, NULL, p) != 1 ||
		    EVP_EncryptUpdate(ctx, NULL, &outl, aad, sizeof(aad)) != 1)
			goto out;
		p += SCM_NONCE;
		p[0] = (unsigned char)(len >> 24);
		p[1] = (unsigned char)(len >> 16);
		p[2] = (unsigned char)(len >> 8);
		p[3] = (unsigned char)len;
		p += 4;
		if ((len > 0 && (EVP_EncryptUpdate(ctx, p, &outl,
		    (const unsigned char *)fields[i], (int)len) != 1 ||
		    (size_t)outl != len)) ||
		    EVP_EncryptFinal_ex(ctx, p + len, &outl) != 1 ||
		    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, SCM_TAG,
		    p + len) != 1)
			goto out;
		p += len + SCM_TAG;
	}
	if ((size_t)(p - b) != total)
		fatalx("store: sealed metadata size");
	rc = 0;
out:
	EVP_CIPHER_CTX_free(ctx);
	ERR_clear_error();
	if (rc == -1) {
		log_warnx("store: sealing the metadata failed");
		free(b);
		return -1;
	}
	*out = b;
	*outlen = total;
	return 0;
}

int
store_crypt_meta_open(const unsigned char key[STORE_CRYPT_KEYLEN],
    const unsigned char *blob, size_t blen, char **fields, int n)
{
	const unsigned char *p = blob, *end = blob + blen;
	unsigned char aad[2];
	EVP_CIPHER_CTX *ctx;
	size_t len;
	int outl, i;

	for (i = 0; i < n; i++)
		fields[i] = NULL;
	if (blen < 1 || *p++ != SCM_VERSION)
		return -1;
	if ((ctx = EVP_CIPHER_CTX_new()) == NULL)
		fatalx("store: EVP_CIPHER_CTX_new");
	if (EVP_DecryptInit_ex(ctx, scm_cipher(), NULL, key, NULL) != 1 ||
	    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, SCM_NONCE, NULL)
	    != 1)
		fatalx("store: AES-256-GCM");
	for (i = 0; i < n; i++) {
		const unsigned char *nonce;

		if (p >= end)
			goto bad;
		if (*p++ == 0)
			continue;
		if (p[-1] != 1 || (size_t)(end - p) < SCM_NONCE + 4)
			goto bad;
		nonce = p;
		p += SCM_NONCE;
		len = (size_t)p[0] << 24 | (size_t)p[1] << 16 |
		    (size_t)p[2] << 8 | p[3];
		p += 4;
		if (len > SCM_MAX || (size_t)(end - p) < len + SCM_TAG)
			goto bad;
		fields[i] = xcalloc(1, len + 1);
		scm_aad(aad, i);
		if (EVP_DecryptInit_ex(ctx, NULL, NULL, NULL, nonce) != 1 ||
		    EVP_DecryptUpdate(ctx, NULL, &outl, aad, sizeof(aad)) != 1 ||
		    (len > 0 && EVP_DecryptUpdate(ctx,
		    (unsigned char *)fields[i], &outl, p, (int)len) != 1) ||
		    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, SCM_TAG,
		    (void *)(p + len)) != 1 ||
		    EVP_DecryptFinal_ex(ctx, (unsigned char *)fields[i] + len,
		    &outl) != 1)
			goto bad;
		fields[i][len] = '\0';
		if (memchr(fields[i], '\0', len) != NULL)
			goto bad;
		p += len + SCM_TAG;
	}
	if (p != end)
		goto bad;
	EVP_CIPHER_CTX_free(ctx);
	return 0;
bad:
	EVP_CIPHER_CTX_free(ctx);
	ERR_clear_error();
	for (i = 0; i < n; i++)
		if (fields[i] != NULL) {
			OPENSSL_cleanse(fields[i], strlen(fields[i]));
			free(fields[i]);
			fields[i] = NULL;
		}
	return -1;
}
