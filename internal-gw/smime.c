/*
 * S/MIME signing and encryption (see smime.h). Input is mail that came
 * from outside through the SMTP worker: any bytes, bounded by the size the
 * caller accepted. The header is split with header.h, the body is walked
 * with GMime only when it must be re-encoded; bad input becomes an error
 * string for the caller to turn into an SMTP answer, never a crash.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <gmime/gmime.h>
#include <openssl/cms.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "header.h"
#include "keyd.h"
#include "log.h"
#include "smime.h"
#include "xmalloc.h"

#define SMIME_MAX_HEADER	(4 * 1024 * 1024)
#define SMIME_MAX_LINE		998	/* RFC 5322 2.1.1, without CRLF */

struct smime_buf {
	char	*p;
	size_t	 len;
	size_t	 cap;
};

/* A message split into the fields that stay outside and the entity. */
struct smime_msg {
	struct smime_buf	 raw;		/* the input, CRLF canonical */
	struct header		 hdr;
	struct smime_buf	 outer;		/* non-content fields, raw */
	struct smime_buf	 entity;	/* content fields, CRLF, body */
};

static pthread_once_t smime_once = PTHREAD_ONCE_INIT;

static void
smime_gmime_init(void)
{
	g_mime_init();
}

static void
smime_buf_add(struct smime_buf *b, const void *p, size_t len)
{
	if (b->len + len + 1 > b->cap) {
		b->cap = (b->len + len + 1) * 2;
		b->p = xreallocarray(b->p, b->cap, 1);
	}
	memcpy(b->p + b->len, p, len);
	b->len += len;
	b->p[b->len] = '\0';
}

static void
smime_buf_str(struct smime_buf *b, const char *s)
{
	smime_buf_add(b, s, strlen(s));
}

/* Reads in whole, turning bare LF into CRLF (the canonical form). */
static int
smime_read(FILE *in, struct smime_buf *b, char *err, size_t errlen)
{
	char chunk[65536];
	size_t n, i, start;
	int prev_cr = 0;

	while ((n = fread(chunk, 1, sizeof(chunk), in)) > 0) {
		start = 0;
		for (i = 0; i < n; i++) {
			if (chunk[i] == '\n' && !prev_cr) {
				smime_buf_add(b, chunk + start, i - start);
				smime_buf_add(b, "\r\n", 2);
				start = i + 1;
			}
			prev_cr = chunk[i] == '\r';
		}
		smime_buf_add(b, chunk + start, n - start);
		if (b->len > KEYD_MAX_DATA) {
			snprintf(err, errlen, "message too large");
			return -1;
		}
	}
	if (ferror(in)) {
		snprintf(err, errlen, "read: %s", strerror(errno));
		return -1;
	}
	return 0;
}

static int
smime_is_content_field(const char *name)
{
	return strncasecmp(name, "Content-", 8) == 0 ||
	    strcasecmp(name, "MIME-Version") == 0;
}

static void
smime_msg_free(struct smime_msg *m)
{
	free(m->raw.p);
	free(m->outer.p);
	free(m->entity.p);
	header_free(&m->hdr);
	memset(m, 0, sizeof(*m));
}

/*
 * Reads and splits the message: outer fields byte for byte, the entity as
 * the Content-* fields, the empty line and the body, also byte for byte.
 */
static int
smime_msg_read(FILE *in, struct smime_msg *m, char *err, size_t errlen)
{
	const struct header_field *f;
	size_t i;
	int rc;

	memset(m, 0, sizeof(*m));
	if (smime_read(in, &m->raw, err, errlen) == -1)
		return -1;
	if (m->raw.len == 0) {
		snprintf(err, errlen, "empty message");
		return -1;
	}
	rc = header_parse_mem(m->raw.p, m->raw.len, SMIME_MAX_HEADER, &m->hdr);
	if (rc != 0) {
		snprintf(err, errlen, "malformed or oversized message header");
		return -1;
	}
	for (i = 0; i < m->hdr.nfields; i++) {
		f = &m->hdr.fields[i];
		if (strcasecmp(f->name, "MIME-Version") == 0)
			continue;
		smime_buf_add(smime_is_content_field(f->name) ? &m->entity :
		    &m->outer, f->raw, f->rawlen);
		/* A trigger (only the gateway's own portal copies carry one)
		 * is signed too, so a portal that requires the tunnel
		 * signature can trust it; it stays outside for routing. */
		if (strncasecmp(f->name, "X-Keep-", 7) == 0)
			smime_buf_add(&m->entity, f->raw, f->rawlen);
	}
	smime_buf_add(&m->entity, "\r\n", 2);
	if (m->hdr.len < m->raw.len)
		smime_buf_add(&m->entity, m->raw.p + m->hdr.len,
		    m->raw.len - m->hdr.len);
	return 0;
}

/* 1 when the entity holds 8-bit bytes, NULs or over-long lines. */
static int
smime_needs_7bit(const struct smime_buf *b)
{
	size_t i, linelen = 0;

	for (i = 0; i < b->len; i++) {
		unsigned char c = (unsigned char)b->p[i];

		if (c >= 0x80 || c == '\0')
			return 1;
		if (c == '\n')
			linelen = 0;
		else if (++linelen > SMIME_MAX_LINE + 1)
			return 1;
	}
	return 0;
}

/*
 * Replaces the entity with a 7-bit form: GMime parses it, picks quoted-
 * printable or base64 for every part that needs it, and writes it with
 * CRLF line ends.
 */
static int
smime_to_7bit(struct smime_buf *entity, char *err, size_t errlen)
{
	GMimeStream *src, *dst;
	GMimeParser *parser;
	GMimeObject *obj;
	GMimeFormatOptions *opts;
	GByteArray *ba;
	int rv = -1;

	pthread_once(&smime_once, smime_gmime_init);
	/* CRLF stays in the content: binary parts must keep their bytes. */
	src = g_mime_stream_mem_new_with_buffer(entity->p, entity->len);
	parser = g_mime_parser_new_with_stream(src);
	obj = g_mime_parser_construct_part(parser, NULL);
	g_object_unref(parser);
	g_object_unref(src);
	if (obj == NULL) {
		snprintf(err, errlen, "cannot parse the MIME structure");
		return -1;
	}
	g_mime_object_encode(obj, GMIME_ENCODING_CONSTRAINT_7BIT);

	opts = g_mime_format_options_new();
	g_mime_format_options_set_newline_format(opts, GMIME_NEWLINE_FORMAT_DOS);
	dst = g_mime_stream_mem_new();
	if (g_mime_object_write_to_stream(obj, opts, dst) == -1) {
		snprintf(err, errlen, "cannot re-encode the message");
		goto out;
	}
	ba = g_mime_stream_mem_get_byte_array(GMIME_STREAM_MEM(dst));
	entity->len = 0;
	smime_buf_add(entity, ba->data, ba->len);
	rv = 0;
out:
	g_object_unref(dst);
	g_mime_format_options_free(opts);
	g_object_unref(obj);
	return rv;
}

/* Base64 in lines of 76 characters, CRLF after each. */
static void
smime_base64(struct smime_buf *b, const unsigned char *p, size_t len)
{
	unsigned char line[80];
	size_t n;
	int w;

	while (len > 0) {
		n = len < 57 ? len : 57;
		w = EVP_EncodeBlock(line, p, (int)n);
		smime_buf_add(b, line, (size_t)w);
		smime_buf_add(b, "\r\n", 2);
		p += n;
		len -= n;
	}
}

static int
smime_write(FILE *out, const struct smime_buf *b, char *err, size_t errlen)
{
	if (fwrite(b->p, 1, b->len, out) != b->len || fflush(out) != 0) {
		snprintf(err, errlen, "write: %s", strerror(errno));
		return -1;
	}
	return 0;
}

int
smime_sign(struct keyd_client *kc, const char *signer, FILE *in, FILE *out,
    char *err, size_t errlen)
{
	struct smime_msg m;
	struct smime_buf o = { 0 };
	unsigned char rnd[18], *der = NULL;
	char boundary[64];
	size_t derlen, i;
	int rv = -1;

	if (smime_msg_read(in, &m, err, errlen) == -1)
		goto out;
	if (smime_needs_7bit(&m.entity) &&
	    smime_to_7bit(&m.entity, err, errlen) == -1)
		goto out;
	if (keyd_sign(kc, signer, m.entity.p, m.entity.len, &der, &derlen,
	    err, errlen) == -1)
		goto out;

	/* "=_" never occurs in base64 or quoted-printable text. */
	if (RAND_bytes(rnd, sizeof(rnd)) != 1)
		fatalx("smime: RAND_bytes");
	memcpy(boundary, "=_postern_", 10);
	for (i = 0; i < sizeof(rnd); i++)
		snprintf(boundary + 10 + 2 * i, 3, "%02x", rnd[i]);

	smime_buf_add(&o, m.outer.p, m.outer.len);
	smime_buf_str(&o, "MIME-Version: 1.0\r\n"
	    "Content-Type: multipart/signed;"
	    " protocol=\"application/pkcs7-signature\";\r\n"
	    "\tmicalg=sha-256; boundary=\"");
	smime_buf_str(&o, boundary);
	smime_buf_str(&o, "\"\r\n\r\n"
	    "This is an S/MIME signed message.\r\n\r\n--");
	smime_buf_str(&o, boundary);
	smime_buf_str(&o, "\r\n");
	smime_buf_add(&o, m.entity.p, m.entity.len);
	smime_buf_str(&o, "\r\n--");
	smime_buf_str(&o, boundary);
	smime_buf_str(&o, "\r\n"
	    "Content-Type: application/pkcs7-signature; name=smime.p7s\r\n"
	    "Content-Transfer-Encoding: base64\r\n"
	    "Content-Disposition: attachment; filename=smime.p7s\r\n\r\n");
	smime_base64(&o, der, derlen);
	smime_buf_str(&o, "\r\n--");
	smime_buf_str(&o, boundary);
	smime_buf_str(&o, "--\r\n");
	rv = smime_write(out, &o, err, errlen);
out:
	free(der);
	free(o.p);
	smime_msg_free(&m);
	return rv;
}

int
smime_encrypt(X509 *const *certs, size_t ncerts, FILE *in, FILE *out,
    char *err, size_t errlen)
{
	struct smime_msg m;
	struct smime_buf o = { 0 };
	STACK_OF(X509) *sk = NULL;
	CMS_ContentInfo *cms = NULL;
	unsigned char *der = NULL;
	BIO *bio = NULL;
	int derlen, rv = -1;
	size_t i;

	if (ncerts == 0) {
		snprintf(err, errlen, "no recipient certificate");
		return -1;
	}
	if (smime_msg_read(in, &m, err, errlen) == -1)
		goto out;
	if ((sk = sk_X509_new_null()) == NULL)
		fatalx("smime: sk_X509_new_null");
	for (i = 0; i < ncerts; i++)
		if (!sk_X509_push(sk, certs[i]))
			fatalx("smime: sk_X509_push");
	if ((bio = BIO_new_mem_buf(m.entity.p, (int)m.entity.len)) == NULL)
		fatalx("smime: BIO_new_mem_buf");
	if ((cms = CMS_encrypt(sk, bio, EVP_aes_256_cbc(), CMS_BINARY)) ==
	    NULL || (derlen = i2d_CMS_ContentInfo(cms, &der)) <= 0) {
		snprintf(err, errlen, "encryption failed: %s",
		    ERR_reason_error_string(ERR_peek_last_error()));
		ERR_clear_error();
		goto out;
	}

	smime_buf_add(&o, m.outer.p, m.outer.len);
	smime_buf_str(&o, "MIME-Version: 1.0\r\n"
	    "Content-Type: application/pkcs7-mime; smime-type=enveloped-data;"
	    "\r\n\tname=smime.p7m\r\n"
	    "Content-Transfer-Encoding: base64\r\n"
	    "Content-Disposition: attachment; filename=smime.p7m\r\n\r\n");
	smime_base64(&o, der, (size_t)derlen);
	rv = smime_write(out, &o, err, errlen);
out:
	OPENSSL_free(der);
	CMS_ContentInfo_free(cms);
	BIO_free(bio);
	sk_X509_free(sk);
	free(o.p);
	smime_msg_free(&m);
	return rv;
}
