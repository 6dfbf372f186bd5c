/*
 * Encrypted storage: the sealed file format (store_crypt.h).
 *
 * Layout, BER (indefinite lengths where a stream needs them):
 *
 *   30 80                       ContentInfo
 *     06 09 <envelopedData>
 *     A0 80 30 80               [0] EnvelopedData
 *       02 01 00                version 0 (issuerAndSerialNumber only)
 *       31 <len> <KTRI...>      RecipientInfos, one per certificate
 *       30 80                   EncryptedContentInfo
 *         06 09 <data>
 *         30 1D <aes256-CBC> 04 10 <iv>
 *         A0 80                 encryptedContent, constructed
 *           04 82 hi lo <bytes>  chunks of STORE_CRYPT_CHUNK (last shorter)
 *         00 00
 *       00 00 00 00 00 00 00 00  (the four open constructions)
 *
 * Every chunk header is four bytes, also for a short last chunk (a long
 * length form, which BER allows), so the file size alone gives the
 * ciphertext size.
 *
 * SECURITY: the reader parses files of our own store, and the key holder
 * parses RecipientInfos sent by the web worker, which may be compromised:
 * every length is checked against the bytes present before it is used,
 * and only the exact layout written here is accepted.
 */
#include <sys/stat.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>

#include "log.h"
#include "store/store.h"
#include "store/store_crypt.h"
#include "xmalloc.h"

#define SC_IO		(64 * 1024)
#define SC_HDR_MAX	(STORE_CRYPT_MAX_RINFOS + 256)
#define SC_TRAILER	10

static const unsigned char sc_head[] = {
	0x30, 0x80, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01,
	0x07, 0x03, 0xa0, 0x80, 0x30, 0x80, 0x02, 0x01, 0x00,
};
static const unsigned char sc_mid[] = {
	0x30, 0x80, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01,
	0x07, 0x01, 0x30, 0x1d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65,
	0x03, 0x04, 0x01, 0x2a, 0x04, 0x10,
};
static const unsigned char sc_rsa_alg[] = {
	0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01,
	0x01, 0x01, 0x05, 0x00,
};

struct store_crypt {
	X509		**certs;
	int		  ncerts;
};

struct store_crypt_file {
	int			 fd;		/* -1: mem */
	const unsigned char	*mem;
	size_t			 memlen;
	unsigned char		*ris;
	size_t			 rislen;
	unsigned char		 iv[16];
	int64_t			 hdr;		/* offset of the first chunk */
	int64_t			 ct;		/* ciphertext bytes */
	int64_t			 pt;		/* plaintext bytes, -1: no key */
	unsigned char		 key[STORE_CRYPT_KEYLEN];
	EVP_CIPHER_CTX		*ctx;
};

/* ---- DER and BER ---- */

/* Tag and definite length into p (NULL: only counted); the byte count. */
static size_t
sc_der_hdr(unsigned char *p, unsigned char tag, size_t len)
{
	size_t n = 0, i;

	if (len < 0x80) {
		if (p != NULL) {
			p[0] = tag;
			p[1] = (unsigned char)len;
		}
		return 2;
	}
	for (i = len; i > 0; i >>= 8)
		n++;
	if (p != NULL) {
		p[0] = tag;
		p[1] = (unsigned char)(0x80 | n);
		for (i = 0; i < n; i++)
			p[2 + i] = (unsigned char)(len >> (8 * (n - 1 - i)));
	}
	return 2 + n;
}

/*
 * One definite-length element at *p: its tag and content (*c, *clen);
 * *p moves past it. -1 when it does not fit before end.
 */
static int
sc_ber_elem(const unsigned char **p, const unsigned char *end,
    unsigned char *tag, const unsigned char **c, size_t *clen)
{
	const unsigned char *q = *p;
	size_t len = 0, n;

	if (end - q < 2 || (q[0] & 0x1f) == 0x1f)
		return -1;
	*tag = q[0];
	if (q[1] < 0x80) {
		len = q[1];
		q += 2;
	} else {
		n = q[1] & 0x7f;
		if (n == 0 || n > 4 || (size_t)(end - q) < 2 + n)
			return -1;
		for (size_t i = 0; i < n; i++)
			len = len << 8 | q[2 + i];
		q += 2 + n;
	}
	if ((size_t)(end - q) < len)
		return -1;
	*c = q;
	*clen = len;
	*p = q + len;
	return 0;
}

/* ---- certificates ---- */

struct store_crypt *
store_crypt_new(const char *certfile, char **err)
{
	struct store_crypt *sc;
	X509 *x;
	BIO *b;

	*err = NULL;
	if ((b = BIO_new_file(certfile, "r")) == NULL) {
		xasprintf(err, "%s: %s", certfile, strerror(errno));
		ERR_clear_error();
		return NULL;
	}
	sc = xcalloc(1, sizeof(*sc));
	while ((x = PEM_read_bio_X509(b, NULL, NULL, NULL)) != NULL) {
		EVP_PKEY *k = X509_get0_pubkey(x);

		if (k == NULL || !EVP_PKEY_is_a(k, "RSA")) {
			xasprintf(err, "%s: certificate %d is not RSA (only RSA "
			    "keys can be storage keys)", certfile,
			    sc->ncerts + 1);
			X509_free(x);
			break;
		}
		sc->certs = xreallocarray(sc->certs, sc->ncerts + 1,
		    sizeof(*sc->certs));
		sc->certs[sc->ncerts++] = x;
	}
	ERR_clear_error();
	BIO_free(b);
	if (*err == NULL && sc->ncerts == 0)
		xasprintf(err, "%s: no PEM certificate", certfile);
	if (*err != NULL) {
		store_crypt_free(sc);
		return NULL;
	}
	return sc;
}

void
store_crypt_free(struct store_crypt *sc)
{
	if (sc == NULL)
		return;
	for (int i = 0; i < sc->ncerts; i++)
		X509_free(sc->certs[i]);
	free(sc->certs);
	free(sc);
}

int
store_crypt_certs(const struct store_crypt *sc, X509 ***certs)
{
	*certs = sc->certs;
	return sc->ncerts;
}

/* ---- writing ---- */

/* One KeyTransRecipientInfo of key for x, appended to *b (*blen). */
static int
sc_ktri(X509 *x, const unsigned char *key, unsigned char **b, size_t *blen)
{
	unsigned char ek[1024], *iss = NULL, *ser = NULL, *p;
	size_t eklen = sizeof(ek), ridlen, body, total;
	int isslen, serlen, rc = -1;
	EVP_PKEY_CTX *ctx;

	if ((ctx = EVP_PKEY_CTX_new(X509_get0_pubkey(x), NULL)) == NULL ||
	    EVP_PKEY_encrypt_init(ctx) != 1 ||
	    EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING) != 1 ||
	    EVP_PKEY_encrypt(ctx, ek, &eklen, key, STORE_CRYPT_KEYLEN) != 1)
		goto out;
	if ((isslen = i2d_X509_NAME(X509_get_issuer_name(x), &iss)) <= 0 ||
	    (serlen = i2d_ASN1_INTEGER(X509_get_serialNumber(x), &ser)) <= 0)
		goto out;
	ridlen = (size_t)isslen + (size_t)serlen;
	body = 3 + sc_der_hdr(NULL, 0x30, ridlen) + ridlen +
	    sizeof(sc_rsa_alg) + sc_der_hdr(NULL, 0x04, eklen) + eklen;
	total = sc_der_hdr(NULL, 0x30, body) + body;
	*b = xreallocarray(*b, 1, *blen + total);
	p = *b + *blen;
	p += sc_der_hdr(p, 0x30, body);
	*p++ = 0x02;
	*p++ = 0x01;
	*p++ = 0x00;
	p += sc_der_hdr(p, 0x30, ridlen);
	memcpy(p, iss, (size_t)isslen);
	p += isslen;
	memcpy(p, ser, (size_t)serlen);
	p += serlen;
	memcpy(p, sc_rsa_alg, sizeof(sc_rsa_alg));
	p += sizeof(sc_rsa_alg);
	p += sc_der_hdr(p, 0x04, eklen);
	memcpy(p, ek, eklen);
	*blen += total;
	rc = 0;
out:
	if (rc == -1)
		log_warnx("store: cannot wrap a key for a storage certificate");
	ERR_clear_error();
	EVP_PKEY_CTX_free(ctx);
	OPENSSL_free(iss);
	OPENSSL_free(ser);
	return rc;
}

/* The header up to the first chunk, for a fresh key and iv, into *hdr. */
static int
sc_header(struct store_crypt *sc, const unsigned char *key,
    const unsigned char *iv, unsigned char **hdr, size_t *hlen)
{
	unsigned char *kt = NULL, *p;
	size_t ktlen = 0;

	for (int i = 0; i < sc->ncerts; i++)
		if (sc_ktri(sc->certs[i], key, &kt, &ktlen) == -1) {
			free(kt);
			return -1;
		}
	*hlen = sizeof(sc_head) + sc_der_hdr(NULL, 0x31, ktlen) + ktlen +
	    sizeof(sc_mid) + 16 + 2;
	*hdr = p = xmalloc(*hlen);
	memcpy(p, sc_head, sizeof(sc_head));
	p += sizeof(sc_head);
	p += sc_der_hdr(p, 0x31, ktlen);
	memcpy(p, kt, ktlen);
	p += ktlen;
	memcpy(p, sc_mid, sizeof(sc_mid));
	p += sizeof(sc_mid);
	memcpy(p, iv, 16);
	p += 16;
	*p++ = 0xa0;
	*p++ = 0x80;
	free(kt);
	return 0;
}

/* A buffered sink writing chunks of ciphertext to a FILE or memory. */
struct sc_sink {
	FILE		*fp;
	unsigned char	*mem;
	size_t		 memlen;
	unsigned char	 chunk[STORE_CRYPT_CHUNK];
	size_t		 fill;
	int		 err;
};

static void
sc_put(struct sc_sink *s, const void *p, size_t n)
{
	if (s->fp != NULL) {
		if (fwrite(p, 1, n, s->fp) != n)
			s->err = 1;
		return;
	}
	s->mem = xreallocarray(s->mem, 1, s->memlen + n);
	memcpy(s->mem + s->memlen, p, n);
	s->memlen += n;
}

static void
sc_flush_chunk(struct sc_sink *s)
{
	unsigned char h[4] = { 0x04, 0x82, (unsigned char)(s->fill >> 8),
	    (unsigned char)s->fill };

	if (s->fill == 0)
		return;
	sc_put(s, h, sizeof(h));
	sc_put(s, s->chunk, s->fill);
	s->fill = 0;
}

static void
sc_cipher_out(struct sc_sink *s, const unsigned char *p, size_t n)
{
	while (n > 0) {
		size_t k = sizeof(s->chunk) - s->fill;

		if (k > n)
			k = n;
		memcpy(s->chunk + s->fill, p, k);
		s->fill += k;
		p += k;
		n -= k;
		if (s->fill == sizeof(s->chunk))
			sc_flush_chunk(s);
	}
}

/*
 * The whole sealed object: plaintext from fd in (when in != -1) or from
 * buf, into s.
 */
static int
sc_encrypt(struct store_crypt *sc, int in, const void *buf, size_t buflen,
    struct sc_sink *s, unsigned char *keyout)
{
	static const unsigned char trailer[SC_TRAILER];
	unsigned char key[STORE_CRYPT_KEYLEN], iv[16], *hdr = NULL;
	unsigned char *ib = NULL, *ob = NULL;
	size_t hlen;
	EVP_CIPHER_CTX *ctx = NULL;
	ssize_t n;
	int outl, rc = -1;

	if (RAND_bytes(key, sizeof(key)) != 1 || RAND_bytes(iv, sizeof(iv))
	    != 1)
		fatalx("store: no random bytes");
	if (keyout != NULL)
		memcpy(keyout, key, sizeof(key));
	if (sc_header(sc, key, iv, &hdr, &hlen) == -1)
		goto out;
	sc_put(s, hdr, hlen);
	if ((ctx = EVP_CIPHER_CTX_new()) == NULL ||
	    EVP_EncryptInit_ex(ctx, EVP_aes_256_cbc(), NULL, key, iv) != 1)
		fatalx("store: AES-256-CBC");
	ib = xmalloc(SC_IO);
	ob = xmalloc(SC_IO + 32);
	if (in == -1) {
		if (EVP_EncryptUpdate(ctx, ob, &outl, buf, (int)buflen) != 1)
			goto out;
		sc_cipher_out(s, ob, (size_t)outl);
	} else
		for (;;) {
			if ((n = read(in, ib, SC_IO)) == -1) {
				if (errno == EINTR)
					continue;
				log_warn("store: read the message to seal");
				goto out;
			}
			if (n == 0)
				break;
			if (EVP_EncryptUpdate(ctx, ob, &outl, ib, (int)n) != 1)
				goto out;
			sc_cipher_out(s, ob, (size_t)outl);
		}
	if (EVP_EncryptFinal_ex(ctx, ob, &outl) != 1)
		goto out;
	sc_cipher_out(s, ob, (size_t)outl);
	sc_flush_chunk(s);
	sc_put(s, trailer, sizeof(trailer));
	rc = s->err ? -1 : 0;
out:
	OPENSSL_cleanse(key, sizeof(key));
	EVP_CIPHER_CTX_free(ctx);
	free(hdr);
	free(ib);
	free(ob);
	ERR_clear_error();
	return rc;
}

int
store_crypt_encrypt(struct store_crypt *sc, int in, FILE *out)
{
	return store_crypt_encrypt_key(sc, in, out, NULL);
}

int
store_crypt_encrypt_key(struct store_crypt *sc, int in, FILE *out,
    unsigned char *key)
{
	struct sc_sink *s = xcalloc(1, sizeof(*s));
	int rc;

	s->fp = out;
	rc = sc_encrypt(sc, in, NULL, 0, s, key);
	if (rc == 0 && fflush(out) == EOF)
		rc = -1;
	if (rc == -1)
		log_warnx("store: sealing a message failed");
	free(s);
	return rc;
}

int
store_crypt_seal_mem(struct store_crypt *sc, const void *p, size_t len,
    unsigned char **out, size_t *outlen)
{
	struct sc_sink *s = xcalloc(1, sizeof(*s));
	int rc;

	rc = sc_encrypt(sc, -1, p, len, s, NULL);
	*out = s->mem;
	*outlen = s->memlen;
	if (rc == -1) {
		free(s->mem);
		*out = NULL;
	}
	free(s);
	return rc;
}

int
store_crypt_seal_copy(struct store_crypt *sc, struct store *st,
    struct store_tmp *t, struct store_tmp *sealed, unsigned char *key)
{
	if (fflush(t->fp) == EOF || lseek(fileno(t->fp), 0, SEEK_SET) == -1) {
		log_warn("store: %s", t->path);
		return -1;
	}
	if (store_tmp_create(st, sealed) == -1)
		return -1;
	if (store_crypt_encrypt_key(sc, fileno(t->fp), sealed->fp, key) ==
	    -1) {
		if (key != NULL)
			OPENSSL_cleanse(key, STORE_CRYPT_KEYLEN);
		store_tmp_discard(sealed);
		return -1;
	}
	return 0;
}

int
store_crypt_seal(struct store_crypt *sc, struct store *st,
    struct store_tmp *t, unsigned char *key)
{
	struct store_tmp sealed = { NULL, NULL };

	if (store_crypt_seal_copy(sc, st, t, &sealed, key) == -1)
		return -1;
	store_tmp_discard(t);
	*t = sealed;
	return 0;
}

/* ---- reading ---- */

int
store_crypt_is_sealed(int fd)
{
	unsigned char b[sizeof(sc_head)];
	ssize_t n;

	if ((n = pread(fd, b, sizeof(b), 0)) == -1)
		return -1;
	return n == (ssize_t)sizeof(b) && memcmp(b, sc_head, sizeof(b)) == 0;
}

/* The header in b (n bytes); fills f. */
static int
sc_parse(struct store_crypt_file *f, const unsigned char *b, size_t n,
    int64_t total)
{
	const unsigned char *p = b + sizeof(sc_head), *end = b + n, *c;
	unsigned char tag;
	size_t clen;
	int64_t x, chunks;

	if (n < sizeof(sc_head) || memcmp(b, sc_head, sizeof(sc_head)) != 0)
		return -1;
	if (sc_ber_elem(&p, end, &tag, &c, &clen) == -1 || tag != 0x31 ||
	    (size_t)(p - c) + clen > STORE_CRYPT_MAX_RINFOS)
		return -1;
	f->rislen = (size_t)(p - (b + sizeof(sc_head)));
	f->ris = xmalloc(f->rislen);
	memcpy(f->ris, b + sizeof(sc_head), f->rislen);
	if ((size_t)(end - p) < sizeof(sc_mid) + 18 ||
	    memcmp(p, sc_mid, sizeof(sc_mid)) != 0)
		return -1;
	p += sizeof(sc_mid);
	memcpy(f->iv, p, 16);
	p += 16;
	if (p[0] != 0xa0 || p[1] != 0x80)
		return -1;
	p += 2;
	f->hdr = p - b;
	/* total = hdr + ct + 4 * chunks + trailer */
	x = total - f->hdr - SC_TRAILER;
	if (x <= 0)
		return -1;
	chunks = (x + STORE_CRYPT_CHUNK + 3) / (STORE_CRYPT_CHUNK + 4);
	f->ct = x - 4 * chunks;
	if (f->ct < 16 || f->ct % 16 != 0)
		return -1;
	return 0;
}

static struct store_crypt_file *
sc_file_new(void)
{
	struct store_crypt_file *f = xcalloc(1, sizeof(*f));

	f->fd = -1;
	f->pt = -1;
	if ((f->ctx = EVP_CIPHER_CTX_new()) == NULL)
		fatalx("store: EVP_CIPHER_CTX_new");
	return f;
}

struct store_crypt_file *
store_crypt_open(int fd)
{
	struct store_crypt_file *f = sc_file_new();
	unsigned char *b = xmalloc(SC_HDR_MAX);
	struct stat sb;
	ssize_t n;

	f->fd = fd;
	if (fstat(fd, &sb) == -1 || (n = pread(fd, b, SC_HDR_MAX, 0)) == -1 ||
	    sc_parse(f, b, (size_t)n, sb.st_size) == -1) {
		log_warnx("store: a sealed message file that does not parse");
		free(b);
		store_crypt_close(f);
		return NULL;
	}
	free(b);
	return f;
}

struct store_crypt_file *
store_crypt_open_mem(const unsigned char *p, size_t len)
{
	struct store_crypt_file *f = sc_file_new();

	f->mem = p;
	f->memlen = len;
	if (sc_parse(f, p, len, (int64_t)len) == -1) {
		store_crypt_close(f);
		return NULL;
	}
	return f;
}

const unsigned char *
store_crypt_rinfos(const struct store_crypt_file *f, size_t *len)
{
	*len = f->rislen;
	return f->ris;
}

/* Ciphertext [off, off + len) into buf; -1 when short. */
static int
sc_ct_read(struct store_crypt_file *f, unsigned char *buf, size_t len,
    int64_t off)
{
	while (len > 0) {
		int64_t ci = off / STORE_CRYPT_CHUNK, co = off % STORE_CRYPT_CHUNK;
		int64_t fo = f->hdr + ci * (STORE_CRYPT_CHUNK + 4) + 4 + co;
		size_t k = (size_t)(STORE_CRYPT_CHUNK - co);
		ssize_t n;

		if (k > len)
			k = len;
		if (f->fd == -1) {
			if (fo + (int64_t)k > (int64_t)f->memlen)
				return -1;
			memcpy(buf, f->mem + fo, k);
		} else {
			if ((n = pread(f->fd, buf, k, fo)) != (ssize_t)k) {
				if (n == -1)
					log_warn("store: read a sealed file");
				return -1;
			}
		}
		buf += k;
		off += (int64_t)k;
		len -= k;
	}
	return 0;
}

/* Decrypts ciphertext blocks [off, off + len) into out (len % 16 == 0). */
static int
sc_decrypt(struct store_crypt_file *f, unsigned char *out, size_t len,
    int64_t off)
{
	unsigned char iv[16];
	int outl;

	if (off == 0)
		memcpy(iv, f->iv, 16);
	else if (sc_ct_read(f, iv, 16, off - 16) == -1)
		return -1;
	if (sc_ct_read(f, out, len, off) == -1)
		return -1;
	if (EVP_DecryptInit_ex(f->ctx, EVP_aes_256_cbc(), NULL, f->key, iv)
	    != 1 || EVP_CIPHER_CTX_set_padding(f->ctx, 0) != 1 ||
	    EVP_DecryptUpdate(f->ctx, out, &outl, out, (int)len) != 1 ||
	    (size_t)outl != len)
		fatalx("store: AES-256-CBC decryption");
	return 0;
}

int
store_crypt_set_key(struct store_crypt_file *f,
    const unsigned char key[STORE_CRYPT_KEYLEN])
{
	unsigned char last[16];
	int pad;

	memcpy(f->key, key, STORE_CRYPT_KEYLEN);
	if (sc_decrypt(f, last, 16, f->ct - 16) == -1)
		return -1;
	pad = last[15];
	if (pad < 1 || pad > 16)
		return -1;
	for (int i = 16 - pad; i < 16; i++)
		if (last[i] != pad)
			return -1;
	f->pt = f->ct - pad;
	OPENSSL_cleanse(last, sizeof(last));
	return 0;
}

int64_t
store_crypt_size(const struct store_crypt_file *f)
{
	return f->pt;
}

ssize_t
store_crypt_pread(struct store_crypt_file *f, void *buf, size_t len,
    int64_t off)
{
	unsigned char tmp[STORE_CRYPT_CHUNK];
	unsigned char *out = buf;
	size_t done = 0;

	if (f->pt < 0)
		fatalx("store: a sealed file read without its key");
	if (off >= f->pt)
		return 0;
	if ((int64_t)len > f->pt - off)
		len = (size_t)(f->pt - off);
	while (done < len) {
		int64_t bs = (off / 16) * 16, skip = off - bs;
		size_t want = len - done, blen;

		blen = (size_t)((skip + (int64_t)want + 15) / 16 * 16);
		if (blen > sizeof(tmp))
			blen = sizeof(tmp);
		if (sc_decrypt(f, tmp, blen, bs) == -1) {
			log_warnx("store: a sealed message file is short");
			return -1;
		}
		if (want > blen - (size_t)skip)
			want = blen - (size_t)skip;
		memcpy(out + done, tmp + skip, want);
		done += want;
		off += (int64_t)want;
	}
	OPENSSL_cleanse(tmp, sizeof(tmp));
	return (ssize_t)done;
}

void
store_crypt_close(struct store_crypt_file *f)
{
	if (f == NULL)
		return;
	if (f->fd != -1)
		close(f->fd);
	OPENSSL_cleanse(f->key, sizeof(f->key));
	EVP_CIPHER_CTX_free(f->ctx);
	free(f->ris);
	free(f);
}

int
store_crypt_rinfo_find(const unsigned char *ris, size_t len, X509 *cert,
    const unsigned char **ek, size_t *eklen)
{
	const unsigned char *p = ris, *end = ris + len, *set, *c, *q, *qe;
	const unsigned char *rid, *alg;
	unsigned char *iss = NULL, *ser = NULL, tag;
	size_t setlen, clen, ridlen, alglen;
	int isslen, serlen, rc = -1;

	if ((isslen = i2d_X509_NAME(X509_get_issuer_name(cert), &iss)) <= 0 ||
	    (serlen = i2d_ASN1_INTEGER(X509_get_serialNumber(cert), &ser)) <=
	    0)
		goto out;
	if (sc_ber_elem(&p, end, &tag, &set, &setlen) == -1 || tag != 0x31)
		goto out;
	p = set;
	end = set + setlen;
	while (p < end) {
		if (sc_ber_elem(&p, end, &tag, &c, &clen) == -1 || tag != 0x30)
			goto out;
		q = c;
		qe = c + clen;
		if (qe - q < 3 || q[0] != 0x02 || q[1] != 0x01 || q[2] != 0x00)
			continue;
		q += 3;
		if (sc_ber_elem(&q, qe, &tag, &rid, &ridlen) == -1 ||
		    tag != 0x30 || sc_ber_elem(&q, qe, &tag, &alg, &alglen) ==
		    -1 || tag != 0x30 || sc_ber_elem(&q, qe, &tag, ek, eklen) ==
		    -1 || tag != 0x04)
			continue;
		if (ridlen == (size_t)isslen + (size_t)serlen &&
		    memcmp(rid, iss, (size_t)isslen) == 0 &&
		    memcmp(rid + isslen, ser, (size_t)serlen) == 0) {
			rc = 0;
			break;
		}
	}
out:
	OPENSSL_free(iss);
	OPENSSL_free(ser);
	ERR_clear_error();
	return rc;
}
