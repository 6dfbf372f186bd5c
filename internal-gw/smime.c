/*
 * S/MIME signing and encryption (see smime.h).
 *
 * SECURITY: input is mail that came from outside through the SMTP worker:
 * any bytes, bounded by the size the caller accepted. The header is split
 * with header.h, the body is walked with GMime only when it must be
 * re-encoded; bad input becomes an error string for the caller to turn
 * into an SMTP answer, never a crash.
 */
#include <sys/mman.h>
#include <sys/stat.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <gmime/gmime.h>
#include <openssl/cms.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "buf.h"
#include "header.h"
#include "keyd.h"
#include "log.h"
#include "smime.h"
#include "xmalloc.h"

#define SMIME_MAX_HEADER	(4 * 1024 * 1024)
#define SMIME_MAX_LINE		998	/* RFC 5322 2.1.1, without CRLF */
#define SMIME_CHUNK		65536
#define SMIME_B64_CHUNK		(57 * 1024)	/* whole 76-character lines */
/* Temporaries for an input up to this size are kept in memory. */
#define SMIME_MEM_TMP		(1024 * 1024)
/* "=_postern_", 24 hex digits of seed, 16 of counter. */
#define SMIME_BOUNDARY_LEN	(10 + 24 + 16)

/* The input, read in CRLF canonical form (a bare LF becomes CRLF). */
struct smime_in {
	FILE	*f;
	int	 prev_cr;
};

/* Whether the entity needs re-encoding to 7 bit, decided as it streams. */
struct smime_scan {
	size_t	 linelen;
	int	 needs_7bit;
};

/*
 * A message split into the fields that stay outside and the entity:
 * content fields, the empty line, the body. For an input up to
 * SMIME_MEM_TMP bytes the entity is collected in mem and read back through
 * a memory stream (no descriptor: about ten system calls fewer per
 * message than a memfd); a larger one streams into a temporary file.
 */
struct smime_msg {
	struct buf	 outer;		/* non-content fields, raw */
	struct buf	 mem;		/* the entity, when inmem */
	int		 inmem;
	FILE		*entity;	/* for reading, once read */
	int		 needs_7bit;
};

static pthread_once_t smime_once = PTHREAD_ONCE_INIT;

static void
smime_gmime_init(void)
{
	g_mime_init();
}

/*
 * Reads up to SMIME_CHUNK bytes into out (which holds 2 * SMIME_CHUNK),
 * turning bare LF into CRLF. Returns the bytes written, 0 at the end, -1
 * on a read error.
 */
static ssize_t
smime_in_read(struct smime_in *in, char *out, char *err, size_t errlen)
{
	char chunk[SMIME_CHUNK];
	const char *nl;
	size_t n, i, end, o = 0;

	if ((n = fread(chunk, 1, sizeof(chunk), in->f)) == 0) {
		if (ferror(in->f)) {
			snprintf(err, errlen, "read: %s", strerror(errno));
			return -1;
		}
		return 0;
	}
	/* Line by line: the text up to each LF is copied as it is. */
	for (i = 0; i < n; i = end + 1) {
		nl = memchr(chunk + i, '\n', n - i);
		end = nl != NULL ? (size_t)(nl - chunk) : n;
		if (end > i) {
			memcpy(out + o, chunk + i, end - i);
			o += end - i;
			in->prev_cr = chunk[end - 1] == '\r';
		}
		if (nl == NULL)
			break;
		if (!in->prev_cr)
			out[o++] = '\r';
		out[o++] = '\n';
		in->prev_cr = 0;
	}
	return (ssize_t)o;
}

static void
smime_scan(struct smime_scan *sc, const char *p, size_t len)
{
	const char *nl;
	size_t i, run;
	unsigned char high, nul;

	/* A line (or the rest of one) at a time; CR counts in its length. */
	while (len > 0 && !sc->needs_7bit) {
		nl = memchr(p, '\n', len);
		run = nl != NULL ? (size_t)(nl - p) : len;
		high = 0;
		nul = 0;
		for (i = 0; i < run; i++) {
			high |= (unsigned char)p[i];
			nul |= p[i] == '\0';
		}
		sc->linelen += run;
		if ((high & 0x80) || nul || sc->linelen > SMIME_MAX_LINE + 1)
			sc->needs_7bit = 1;
		if (nl == NULL)
			break;
		sc->linelen = 0;
		p += run + 1;
		len -= run + 1;
	}
}

/*
 * An anonymous temporary file, gone when closed, for about hint bytes
 * (-1: unknown): in memory (memfd) up to SMIME_MEM_TMP, so an ordinary
 * message costs no file system inode, else in dir so memory stays flat.
 */
static FILE *
smime_tmp(const char *dir, off_t hint, char *err, size_t errlen)
{
	char path[4096];
	FILE *f;
	int fd = -1;

	if (hint >= 0 && hint <= SMIME_MEM_TMP)
		fd = memfd_create("postern-smime", MFD_CLOEXEC);
	if (fd == -1 &&
	    (fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600)) == -1) {
		/* Not every file system has O_TMPFILE. */
		snprintf(path, sizeof(path), "%s/smime.XXXXXX", dir);
		if ((fd = mkostemp(path, O_CLOEXEC)) != -1)
			unlink(path);
	}
	if (fd == -1 || (f = fdopen(fd, "w+")) == NULL) {
		snprintf(err, errlen, "temporary file in %s: %s", dir,
		    strerror(errno));
		if (fd != -1)
			close(fd);
		return NULL;
	}
	return f;
}

/* The size of the file behind f, or -1 when it has none (a pipe). */
static off_t
smime_size(FILE *f)
{
	struct stat st;

	if (fstat(fileno(f), &st) == -1 || !S_ISREG(st.st_mode))
		return -1;
	return st.st_size;
}

static int
smime_put(FILE *out, const void *p, size_t len, char *err, size_t errlen)
{
	if (len > 0 && fwrite(p, 1, len, out) != len) {
		snprintf(err, errlen, "write: %s", strerror(errno));
		return -1;
	}
	return 0;
}

static int
smime_puts(FILE *out, const char *s, char *err, size_t errlen)
{
	return smime_put(out, s, strlen(s), err, errlen);
}

/* Flushes f and rewinds it for reading. */
static int
smime_rewind(FILE *f, char *err, size_t errlen)
{
	if (fflush(f) == EOF || fseek(f, 0, SEEK_SET) == -1) {
		snprintf(err, errlen, "temporary file: %s", strerror(errno));
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
	buf_free(&m->outer);
	if (m->entity != NULL)
		fclose(m->entity);
	buf_free(&m->mem);
	memset(m, 0, sizeof(*m));
}

static int
smime_entity_put(struct smime_msg *m, struct smime_scan *sc, const char *p,
    size_t len, char *err, size_t errlen)
{
	smime_scan(sc, p, len);
	if (!m->inmem)
		return smime_put(m->entity, p, len, err, errlen);
	if (buf_put(&m->mem, p, len) == -1) {
		snprintf(err, errlen, "the message grew while it was read");
		return -1;
	}
	return 0;
}

/* The entity's size in bytes, or -1 when unknown. */
static off_t
smime_entity_size(struct smime_msg *m)
{
	return m->inmem ? (off_t)m->mem.len : smime_size(m->entity);
}

/*
 * Reads and splits the message: the header into memory (bounded), outer
 * fields kept byte for byte; the entity, also byte for byte, streams into
 * a temporary file: in memory for an input up to SMIME_MEM_TMP, else in
 * tmpdir, so memory stays flat whatever the size.
 */
static int
smime_msg_read(FILE *f, const char *tmpdir, struct smime_msg *m, char *err,
    size_t errlen)
{
	off_t hint = smime_size(f);
	const struct header_field *fl;
	struct smime_in in = { f, 0 };
	struct smime_scan sc = { 0, 0 };
	struct buf head;
	struct header hdr;
	char *buf = xmalloc(2 * SMIME_CHUNK);
	char *end;
	size_t i, from, hlen = 0;
	ssize_t n;
	int rv = -1;

	memset(m, 0, sizeof(*m));
	memset(&hdr, 0, sizeof(hdr));
	/* CRLF canonical form at most doubles a line end. */
	m->inmem = hint >= 0 && hint <= SMIME_MEM_TMP;
	buf_init(&m->mem, m->inmem ? 2 * (size_t)hint + 2 : 0);
	if (m->inmem && buf_reserve(&m->mem, (size_t)hint + 2) == -1)
		fatalx("smime: out of memory");
	/* A header at its limit, and the chunk that ends it. */
	buf_init(&head, SMIME_MAX_HEADER + 2 * SMIME_CHUNK);
	buf_init(&m->outer, SMIME_MAX_HEADER);
	/* The header ends at the first empty line (or the input does). */
	for (;;) {
		if ((n = smime_in_read(&in, buf, err, errlen)) == -1)
			goto out;
		if (n == 0) {
			hlen = head.len;
			break;
		}
		/* Search only what is new, and the 3 bytes before it. */
		from = head.len > 3 ? head.len - 3 : 0;
		if (buf_put(&head, buf, (size_t)n) == -1)
			break;
		if (head.len >= 2 && memcmp(head.data, "\r\n", 2) == 0) {
			hlen = 2;
			break;
		}
		if ((end = memmem(head.data + from, head.len - from,
		    "\r\n\r\n", 4)) != NULL) {
			hlen = (size_t)(end - head.data) + 4;
			break;
		}
		if (head.len > SMIME_MAX_HEADER)
			break;
	}
	if (head.len == 0) {
		snprintf(err, errlen, "empty message");
		goto out;
	}
	if (hlen == 0 || header_parse_mem(head.data, hlen, SMIME_MAX_HEADER,
	    &hdr) != 0) {
		snprintf(err, errlen, "malformed or oversized message header");
		goto out;
	}
	if (!m->inmem && (m->entity = smime_tmp(tmpdir, hint, err,
	    errlen)) == NULL)
		goto out;
	for (i = 0; i < hdr.nfields; i++) {
		fl = &hdr.fields[i];
		if (strcasecmp(fl->name, "MIME-Version") == 0)
			continue;
		/* A trigger (only the gateway's own portal copies carry one)
		 * is signed too, so a portal that requires the tunnel
		 * signature can trust it; it stays outside for routing. */
		if (smime_is_content_field(fl->name) ||
		    strncasecmp(fl->name, "X-Keep-", 7) == 0) {
			if (smime_entity_put(m, &sc, fl->raw, fl->rawlen, err,
			    errlen) == -1)
				goto out;
		}
		if (!smime_is_content_field(fl->name) &&
		    buf_put(&m->outer, fl->raw, fl->rawlen) == -1) {
			snprintf(err, errlen, "oversized message header");
			goto out;
		}
	}
	if (smime_entity_put(m, &sc, "\r\n", 2, err, errlen) == -1)
		goto out;
	/* The body: what was read past the header, then the rest. */
	if (hdr.len < head.len && smime_entity_put(m, &sc, head.data + hdr.len,
	    head.len - hdr.len, err, errlen) == -1)
		goto out;
	while ((n = smime_in_read(&in, buf, err, errlen)) > 0)
		if (smime_entity_put(m, &sc, buf, (size_t)n, err, errlen) == -1)
			goto out;
	if (n == -1)
		goto out;
	if (m->inmem) {
		/* Never empty: at least the line that ends the header. */
		if ((m->entity = fmemopen(m->mem.data, m->mem.len, "r")) ==
		    NULL) {
			snprintf(err, errlen, "fmemopen: %s", strerror(errno));
			goto out;
		}
	} else if (smime_rewind(m->entity, err, errlen) == -1)
		goto out;
	m->needs_7bit = sc.needs_7bit;
	rv = 0;
out:
	header_free(&hdr);
	buf_free(&head);
	free(buf);
	return rv;
}

/*
 * Replaces the entity with a 7-bit form: GMime parses it (its parts stay
 * in the file, not in memory), picks quoted-printable or base64 for every
 * part that needs it, and writes it with CRLF line ends to a new file.
 */
static int
smime_to_7bit(struct smime_msg *m, const char *tmpdir, char *err,
    size_t errlen)
{
	GMimeStream *src = NULL, *dst = NULL;
	GMimeParser *parser;
	GMimeObject *obj;
	GMimeFormatOptions *opts = NULL;
	FILE *out;
	int fd, rv = -1;

	pthread_once(&smime_once, smime_gmime_init);
	if ((out = smime_tmp(tmpdir, smime_entity_size(m), err,
	    errlen)) == NULL)
		return -1;
	/* The streams own duplicates; the FILEs keep theirs. */
	if (m->inmem)
		src = g_mime_stream_mem_new_with_buffer(m->mem.data,
		    m->mem.len);
	else if ((fd = dup(fileno(m->entity))) == -1) {
		snprintf(err, errlen, "dup: %s", strerror(errno));
		fclose(out);
		return -1;
	} else
		src = g_mime_stream_fs_new(fd);
	parser = g_mime_parser_new_with_stream(src);
	g_mime_parser_set_persist_stream(parser, TRUE);
	obj = g_mime_parser_construct_part(parser, NULL);
	g_object_unref(parser);
	if (obj == NULL) {
		snprintf(err, errlen, "cannot parse the MIME structure");
		goto out;
	}
	g_mime_object_encode(obj, GMIME_ENCODING_CONSTRAINT_7BIT);

	opts = g_mime_format_options_new();
	g_mime_format_options_set_newline_format(opts, GMIME_NEWLINE_FORMAT_DOS);
	if ((fd = dup(fileno(out))) == -1) {
		snprintf(err, errlen, "dup: %s", strerror(errno));
		goto out;
	}
	dst = g_mime_stream_fs_new(fd);
	/* An fs stream writes through at once; its flush would fsync. */
	if (g_mime_object_write_to_stream(obj, opts, dst) == -1) {
		snprintf(err, errlen, "cannot re-encode the message");
		goto out;
	}
	/* The stream wrote through its own descriptor, at the shared offset. */
	if (smime_rewind(out, err, errlen) == -1)
		goto out;
	fclose(m->entity);
	m->entity = out;
	m->inmem = 0;
	out = NULL;
	rv = 0;
out:
	if (out != NULL)
		fclose(out);
	if (obj != NULL)
		g_object_unref(obj);
	if (dst != NULL)
		g_object_unref(dst);
	g_object_unref(src);
	if (opts != NULL)
		g_mime_format_options_free(opts);
	return rv;
}

/* Base64 in lines of 76 characters, CRLF after each. */
static int
smime_base64(FILE *out, const unsigned char *p, size_t len, char *err,
    size_t errlen)
{
	unsigned char line[80];
	size_t n;
	int w;

	while (len > 0) {
		n = len < 57 ? len : 57;
		w = EVP_EncodeBlock(line, p, (int)n);
		line[w++] = '\r';
		line[w++] = '\n';
		if (smime_put(out, line, (size_t)w, err, errlen) == -1)
			return -1;
		p += n;
		len -= n;
	}
	return 0;
}

static int
smime_finish(FILE *out, char *err, size_t errlen)
{
	if (fflush(out) == EOF || ferror(out)) {
		snprintf(err, errlen, "write: %s", strerror(errno));
		return -1;
	}
	return 0;
}

/*
 * A boundary no body can hold: "=_" never occurs in base64 or
 * quoted-printable text, and the rest is 96 random bits drawn once per
 * thread, then a counter, so no one can write a line that ends a part
 * early even in a 7-bit body that is signed as it is. Saves a call into
 * the random generator per message.
 */
static void
smime_boundary(char out[SMIME_BOUNDARY_LEN + 1])
{
	static __thread unsigned char seed[12];
	static __thread uint64_t count;
	static const char hex[] = "0123456789abcdef";
	char *p = out;

	if (count == 0 && RAND_bytes(seed, sizeof(seed)) != 1)
		fatalx("smime: RAND_bytes");
	count++;
	memcpy(p, "=_postern_", 10);
	p += 10;
	for (size_t i = 0; i < sizeof(seed); i++) {
		*p++ = hex[seed[i] >> 4];
		*p++ = hex[seed[i] & 15];
	}
	for (int sh = 60; sh >= 0; sh -= 4)
		*p++ = hex[(count >> sh) & 15];
	*p = '\0';
}

int
smime_sign(struct keyd_client *kc, const char *signer,
    enum keyd_purpose purpose, const char *msgid, FILE *in, FILE *out,
    const char *tmpdir, char *err, size_t errlen)
{
	struct smime_msg m;
	unsigned char md[KEYD_DIGEST_LEN], *der = NULL;
	char boundary[SMIME_BOUNDARY_LEN + 1], *buf = xmalloc(SMIME_CHUNK);
	EVP_MD_CTX *ctx = NULL;
	size_t derlen, n;
	int rv = -1;

	if (smime_msg_read(in, tmpdir, &m, err, errlen) == -1)
		goto out;
	if (m.needs_7bit && smime_to_7bit(&m, tmpdir, err, errlen) == -1)
		goto out;

	smime_boundary(boundary);

	if (smime_put(out, m.outer.data, m.outer.len, err, errlen) == -1 ||
	    smime_puts(out, "MIME-Version: 1.0\r\n"
	    "Content-Type: multipart/signed;"
	    " protocol=\"application/pkcs7-signature\";\r\n"
	    "\tmicalg=sha-256; boundary=\"", err, errlen) == -1 ||
	    smime_puts(out, boundary, err, errlen) == -1 ||
	    smime_puts(out, "\"\r\n\r\nThis is an S/MIME signed message."
	    "\r\n\r\n--", err, errlen) == -1 ||
	    smime_puts(out, boundary, err, errlen) == -1 ||
	    smime_puts(out, "\r\n", err, errlen) == -1)
		goto out;
	/* The entity goes out as it is hashed. */
	if ((ctx = EVP_MD_CTX_new()) == NULL ||
	    !EVP_DigestInit_ex(ctx, EVP_sha256(), NULL))
		fatalx("smime: EVP_DigestInit_ex");
	while ((n = fread(buf, 1, SMIME_CHUNK, m.entity)) > 0) {
		if (!EVP_DigestUpdate(ctx, buf, n))
			fatalx("smime: EVP_DigestUpdate");
		if (smime_put(out, buf, n, err, errlen) == -1)
			goto out;
	}
	if (ferror(m.entity)) {
		snprintf(err, errlen, "temporary file: %s", strerror(errno));
		goto out;
	}
	if (!EVP_DigestFinal_ex(ctx, md, NULL))
		fatalx("smime: EVP_DigestFinal_ex");
	if (keyd_sign_digest(kc, signer, purpose, msgid, md, &der, &derlen,
	    err, errlen) == -1)
		goto out;
	if (smime_puts(out, "\r\n--", err, errlen) == -1 ||
	    smime_puts(out, boundary, err, errlen) == -1 ||
	    smime_puts(out, "\r\n"
	    "Content-Type: application/pkcs7-signature; name=smime.p7s\r\n"
	    "Content-Transfer-Encoding: base64\r\n"
	    "Content-Disposition: attachment; filename=smime.p7s\r\n\r\n",
	    err, errlen) == -1 ||
	    smime_base64(out, der, derlen, err, errlen) == -1 ||
	    smime_puts(out, "\r\n--", err, errlen) == -1 ||
	    smime_puts(out, boundary, err, errlen) == -1 ||
	    smime_puts(out, "--\r\n", err, errlen) == -1)
		goto out;
	rv = smime_finish(out, err, errlen);
out:
	EVP_MD_CTX_free(ctx);
	free(der);
	free(buf);
	smime_msg_free(&m);
	return rv;
}

int
smime_encrypt(X509 *const *certs, size_t ncerts, FILE *in, FILE *out,
    const char *tmpdir, char *err, size_t errlen)
{
	struct smime_msg m;
	STACK_OF(X509) *sk = NULL;
	CMS_ContentInfo *cms = NULL;
	unsigned int flags = CMS_BINARY | CMS_STREAM;
	unsigned char *buf = NULL;
	BIO *bin = NULL, *bout = NULL;
	FILE *ber = NULL;
	size_t i, n;
	int rv = -1;

	memset(&m, 0, sizeof(m));
	if (ncerts == 0) {
		snprintf(err, errlen, "no recipient certificate");
		return -1;
	}
	if (smime_msg_read(in, tmpdir, &m, err, errlen) == -1)
		goto out;
	if ((sk = sk_X509_new_null()) == NULL)
		fatalx("smime: sk_X509_new_null");
	for (i = 0; i < ncerts; i++)
		if (!sk_X509_push(sk, certs[i]))
			fatalx("smime: sk_X509_push");
	/* Streamed: the entity is read and encrypted into a temporary file
	 * as BER, which is then written out in base64. */
	if ((ber = smime_tmp(tmpdir, smime_entity_size(&m), err,
	    errlen)) == NULL)
		goto out;
	if ((bin = BIO_new_fp(m.entity, BIO_NOCLOSE)) == NULL ||
	    (bout = BIO_new_fp(ber, BIO_NOCLOSE)) == NULL)
		fatalx("smime: BIO_new_fp");
	if ((cms = CMS_encrypt(sk, bin, EVP_aes_256_cbc(), flags)) == NULL ||
	    !i2d_CMS_bio_stream(bout, cms, bin, (int)flags) ||
	    BIO_flush(bout) != 1) {
		snprintf(err, errlen, "encryption failed: %s",
		    ERR_reason_error_string(ERR_peek_last_error()));
		ERR_clear_error();
		goto out;
	}
	if (smime_rewind(ber, err, errlen) == -1)
		goto out;

	if (smime_put(out, m.outer.data, m.outer.len, err, errlen) == -1 ||
	    smime_puts(out, "MIME-Version: 1.0\r\n"
	    "Content-Type: application/pkcs7-mime; smime-type=enveloped-data;"
	    "\r\n\tname=smime.p7m\r\n"
	    "Content-Transfer-Encoding: base64\r\n"
	    "Content-Disposition: attachment; filename=smime.p7m\r\n\r\n",
	    err, errlen) == -1)
		goto out;
	buf = xmalloc(SMIME_B64_CHUNK);
	while ((n = fread(buf, 1, SMIME_B64_CHUNK, ber)) > 0)
		if (smime_base64(out, buf, n, err, errlen) == -1)
			goto out;
	if (ferror(ber)) {
		snprintf(err, errlen, "temporary file: %s", strerror(errno));
		goto out;
	}
	rv = smime_finish(out, err, errlen);
out:
	free(buf);
	CMS_ContentInfo_free(cms);
	BIO_free(bin);
	BIO_free(bout);
	if (ber != NULL)
		fclose(ber);
	sk_X509_free(sk);
	smime_msg_free(&m);
	return rv;
}
