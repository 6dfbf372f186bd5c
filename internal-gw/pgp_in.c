/*
 * Inbound OpenPGP, the MIME side (see pgp_in.h): which messages are
 * OpenPGP, where their parts are, and the message delivered instead.
 *
 * SECURITY: mail from outside. The top-level header is split by header.h
 * (bounded); the content type is parsed by GMime; a multipart/encrypted
 * or multipart/signed body is split at its boundary in the raw bytes,
 * which must all be in memory, so a message larger than PGP_IN_MAX_DATA
 * is passed on untouched. Key data (Autocrypt, attachments) is bounded by
 * PGP_IN_MAX_KEYDATA. Nothing decrypted is written unless the whole
 * decryption succeeded with integrity protection; otherwise the original
 * message goes on with the reason in X-Postern-Encrypted.
 */
#include <sys/stat.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <gmime/gmime.h>
#include <openssl/evp.h>
#include <rnp/rnp.h>
#include <rnp/rnp_err.h>

#include "addr.h"
#include "buf.h"
#include "header.h"
#include "log.h"
#include "pgp.h"
#include "pgp_in.h"
#include "xmalloc.h"

#define PGP_IN_MAX_HEADER	(4 * 1024 * 1024)

static const char pgp_in_begin_msg[] = "-----BEGIN PGP MESSAGE-----";
static const char pgp_in_end_msg[] = "-----END PGP MESSAGE-----";
static const char pgp_in_begin_signed[] = "-----BEGIN PGP SIGNED MESSAGE-----";
static const char pgp_in_end_sig[] = "-----END PGP SIGNATURE-----";

/* The message being processed. */
struct pgp_in_msg {
	struct header		 hdr;
	unsigned char		*raw;	/* whole message */
	size_t			 len;
	const unsigned char	*body;
	size_t			 bodylen;
	GMimeContentType	*ct;
};

static const unsigned char *
pgp_in_memmem(const unsigned char *h, size_t hl, const char *n)
{
	if (h == NULL || hl == 0)
		return NULL;
	return memmem(h, hl, n, strlen(n));
}

/* "name: value\r\n" fields to drop from what is delivered. */
static int
pgp_in_drop(const char *name, int content)
{
	if (strncasecmp(name, "X-Postern-", 10) == 0)
		return 1;
	return content && (strncasecmp(name, "Content-", 8) == 0 ||
	    strcasecmp(name, "MIME-Version") == 0);
}

static int
pgp_in_put(FILE *out, const void *p, size_t n)
{
	return n == 0 || fwrite(p, 1, n, out) == n ? 0 : -1;
}

/* The outer fields, without X-Postern-* (and Content-* with content). */
static int
pgp_in_outer(FILE *out, const struct pgp_in_msg *m, int content)
{
	for (size_t i = 0; i < m->hdr.nfields; i++) {
		const struct header_field *f = &m->hdr.fields[i];

		if (!pgp_in_drop(f->name, content) &&
		    pgp_in_put(out, f->raw, f->rawlen) == -1)
			return -1;
	}
	return 0;
}

/* A header value: printable ASCII only (reasons, addresses). */
static void
pgp_in_clean(char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s < 0x20 || (unsigned char)*s > 0x7e ||
		    *s == ';')
			*s = '?';
}

static int
pgp_in_sig_field(FILE *out, struct pgp_sig_result *s)
{
	static const char *const names[] = { "none", "valid", "invalid",
	    "untrusted" };

	if (s->status == PGP_SIG_NONE)
		return 0;
	pgp_in_clean(s->signer);
	pgp_in_clean(s->reason);
	if (fprintf(out, "X-Postern-Signature: %s", names[s->status]) < 0 ||
	    (s->signer[0] && fprintf(out, "; signer=<%s>", s->signer) < 0) ||
	    (s->reason[0] && fprintf(out, "; reason=%s", s->reason) < 0) ||
	    fputs("\r\n", out) == EOF)
		return -1;
	return 0;
}

static int
pgp_in_enc_field(FILE *out, const char *value, const char *reason)
{
	char r[160];

	snprintf(r, sizeof(r), "%s", reason ? reason : "");
	pgp_in_clean(r);
	return fprintf(out, "X-Postern-Encrypted: %s%s%s\r\n", value,
	    r[0] ? "; reason=" : "", r) < 0 ? -1 : 0;
}

/* Bytes with bare LF made CRLF. */
static int
pgp_in_put_crlf(FILE *out, const unsigned char *p, size_t n)
{
	int prev_cr = 0;

	for (size_t i = 0; i < n; i++) {
		if (p[i] == '\n' && !prev_cr && putc('\r', out) == EOF)
			return -1;
		if (putc(p[i], out) == EOF)
			return -1;
		prev_cr = p[i] == '\r';
	}
	return 0;
}

/* Quoted-printable (RFC 2045 6.7) of text, CRLF line ends kept. */
static int
pgp_in_put_qp(FILE *out, const unsigned char *p, size_t n)
{
	size_t col = 0;

	for (size_t i = 0; i < n; i++) {
		unsigned char c = p[i];
		int hard = c == '\r' && i + 1 < n && p[i + 1] == '\n';
		int lf = c == '\n';
		int ws_end = (c == ' ' || c == '\t') && (i + 1 == n ||
		    p[i + 1] == '\r' || p[i + 1] == '\n');

		if (hard || lf) {
			if (fputs("\r\n", out) == EOF)
				return -1;
			if (hard)
				i++;
			col = 0;
			continue;
		}
		if (col >= 72) {
			if (fputs("=\r\n", out) == EOF)
				return -1;
			col = 0;
		}
		if (c == '=' || c < 0x20 || c > 0x7e || ws_end) {
			if (c == '\t' && !ws_end) {
				if (putc(c, out) == EOF)
					return -1;
				col++;
				continue;
			}
			if (fprintf(out, "=%02X", c) < 0)
				return -1;
			col += 3;
		} else {
			if (putc(c, out) == EOF)
				return -1;
			col++;
		}
	}
	return 0;
}

/*
 * The parts of a multipart body with boundary b: the bytes of part i
 * (0-based), between its delimiter line and the CRLF before the next.
 */
static int
pgp_in_part(const unsigned char *body, size_t len, const char *b, int idx,
    const unsigned char **part, size_t *plen)
{
	char delim[128];
	const unsigned char *p = body, *end = body + len, *q, *start = NULL;
	size_t dl;
	int i = -1;

	if (strlen(b) > 70)
		return -1;
	dl = (size_t)snprintf(delim, sizeof(delim), "--%s", b);
	while (p < end) {
		q = memchr(p, '\n', (size_t)(end - p));
		q = q ? q + 1 : end;
		if ((size_t)(q - p) >= dl && memcmp(p, delim, dl) == 0) {
			if (start != NULL) {
				const unsigned char *e = p;

				if (e > start && e[-1] == '\n')
					e--;
				if (e > start && e[-1] == '\r')
					e--;
				*part = start;
				*plen = (size_t)(e - start);
				return 0;
			}
			if ((size_t)(q - p) >= dl + 2 && p[dl] == '-' &&
			    p[dl + 1] == '-')
				return -1;
			if (++i == idx)
				start = q;
		}
		p = q;
	}
	return -1;
}

/* The body of a part (after its header's empty line). */
static int
pgp_in_part_body(const unsigned char *part, size_t len,
    const unsigned char **body, size_t *blen)
{
	const unsigned char *e;

	if (len >= 2 && part[0] == '\r' && part[1] == '\n') {
		*body = part + 2;
		*blen = len - 2;
		return 0;
	}
	if (len >= 1 && part[0] == '\n') {
		*body = part + 1;
		*blen = len - 1;
		return 0;
	}
	if ((e = pgp_in_memmem(part, len, "\r\n\r\n")) != NULL) {
		*body = e + 4;
		*blen = len - (size_t)(e + 4 - part);
		return 0;
	}
	if ((e = pgp_in_memmem(part, len, "\n\n")) != NULL) {
		*body = e + 2;
		*blen = len - (size_t)(e + 2 - part);
		return 0;
	}
	return -1;
}

/* Collects application/pgp-keys parts of an entity into ctx->keys. */
static void
pgp_in_keys_cb(GMimeObject *parent, GMimeObject *part, gpointer arg)
{
	struct pgp_in_ctx *ctx = arg;
	GMimeContentType *ct = g_mime_object_get_content_type(part);
	GMimeDataWrapper *w;
	GMimeStream *mem;
	GByteArray *ba;

	(void)parent;
	if (!GMIME_IS_PART(part) || ct == NULL ||
	    !g_mime_content_type_is_type(ct, "application", "pgp-keys") ||
	    (w = g_mime_part_get_content(GMIME_PART(part))) == NULL)
		return;
	mem = g_mime_stream_mem_new();
	g_mime_data_wrapper_write_to_stream(w, mem);
	ba = g_mime_stream_mem_get_byte_array(GMIME_STREAM_MEM(mem));
	if (ba->len > 0 && ctx->keyslen + ba->len <= PGP_IN_MAX_KEYDATA) {
		ctx->keys = xreallocarray(ctx->keys, ctx->keyslen + ba->len, 1);
		memcpy(ctx->keys + ctx->keyslen, ba->data, ba->len);
		ctx->keyslen += ba->len;
	}
	g_object_unref(mem);
}

static void
pgp_in_collect_keys(struct pgp_in_ctx *ctx, const unsigned char *p,
    size_t len)
{
	GMimeStream *s;
	GMimeParser *parser;
	GMimeObject *obj;

	s = g_mime_stream_mem_new_with_buffer((const char *)p, len);
	parser = g_mime_parser_new_with_stream(s);
	obj = g_mime_parser_construct_part(parser, NULL);
	g_object_unref(parser);
	g_object_unref(s);
	if (obj == NULL)
		return;
	if (GMIME_IS_MULTIPART(obj))
		g_mime_multipart_foreach(GMIME_MULTIPART(obj), pgp_in_keys_cb,
		    ctx);
	g_object_unref(obj);
}

/* Imports the key with fingerprint fpr from the message's key data. */
static void
pgp_in_import_signer(struct pgp_in_ctx *ctx, const char *fpr)
{
	rnp_ffi_t ffi;
	rnp_input_t in = NULL;
	rnp_output_t o = NULL;
	rnp_key_handle_t k = NULL;
	uint8_t *b;
	size_t bl;
	char *err = NULL;

	if (rnp_ffi_create(&ffi, "GPG", "GPG") != RNP_SUCCESS)
		fatalx("pgp: rnp_ffi_create");
	if (rnp_input_from_memory(&in, ctx->keys, ctx->keyslen, false) ==
	    RNP_SUCCESS && rnp_import_keys(ffi, in, RNP_LOAD_SAVE_PUBLIC_KEYS |
	    RNP_LOAD_SAVE_PERMISSIVE, NULL) == RNP_SUCCESS &&
	    rnp_locate_key(ffi, "fingerprint", fpr, &k) == RNP_SUCCESS &&
	    k != NULL && rnp_output_to_memory(&o, PGP_MAX_KEY) ==
	    RNP_SUCCESS && rnp_key_export(k, o, RNP_KEY_EXPORT_PUBLIC |
	    RNP_KEY_EXPORT_SUBKEYS) == RNP_SUCCESS &&
	    rnp_output_memory_get_buf(o, &b, &bl, false) == RNP_SUCCESS) {
		if (pgp_keys_import_public(ctx->db, b, bl, &err) == -1) {
			log_warnx("id=%s OpenPGP key %s not imported: %s",
			    ctx->msgid, fpr, err);
			free(err);
		} else
			log_info("id=%s imported the OpenPGP key %s of %s from "
			    "the message", ctx->msgid, fpr, ctx->from);
	}
	rnp_key_handle_destroy(k);
	rnp_output_destroy(o);
	rnp_input_destroy(in);
	rnp_ffi_destroy(ffi);
}

/* text/plain with an armoured message or a cleartext signature. */
static int
pgp_in_inline(struct pgp_in_ctx *ctx, struct pgp_in_msg *m, FILE *out)
{
	GMimeStream *s = NULL, *mem = NULL;
	GMimeParser *parser = NULL;
	GMimeObject *obj = NULL;
	GMimeDataWrapper *w;
	GByteArray *ba;
	const unsigned char *b, *e, *text;
	unsigned char *plain = NULL;
	size_t tl, pl = 0;
	struct pgp_sig_result sig;
	char why[256];
	int r, rv = 0;

	memset(&sig, 0, sizeof(sig));
	/* The body decoded from its transfer encoding. */
	s = g_mime_stream_mem_new_with_buffer((const char *)m->raw, m->len);
	parser = g_mime_parser_new_with_stream(s);
	obj = g_mime_parser_construct_part(parser, NULL);
	if (obj == NULL || !GMIME_IS_PART(obj) ||
	    (w = g_mime_part_get_content(GMIME_PART(obj))) == NULL)
		goto out;
	mem = g_mime_stream_mem_new();
	g_mime_data_wrapper_write_to_stream(w, mem);
	ba = g_mime_stream_mem_get_byte_array(GMIME_STREAM_MEM(mem));
	text = ba->data;
	tl = ba->len;

	if ((b = pgp_in_memmem(text, tl, pgp_in_begin_msg)) != NULL &&
	    (e = pgp_in_memmem(b, tl - (size_t)(b - text),
	    pgp_in_end_msg)) != NULL) {
		e += strlen(pgp_in_end_msg);
		r = pgp_dec_message(ctx, b, (size_t)(e - b), &plain, &pl, &sig,
		    why, sizeof(why));
		if (r == -1) {
			rv = -1;
			goto out;
		}
		if (r != 1) {
			if (pgp_in_outer(out, m, 0) == -1 ||
			    pgp_in_enc_field(out, "not-for-us", r == 0 ? NULL :
			    why) == -1 || pgp_in_put(out, "\r\n", 2) == -1 ||
			    pgp_in_put(out, m->body, m->bodylen) == -1)
				rv = -1;
			else
				rv = 1;
			goto out;
		}
		/* The text around the armour stays; the charset too. */
		for (size_t i = 0; i < m->hdr.nfields; i++) {
			const struct header_field *f = &m->hdr.fields[i];

			if (pgp_in_drop(f->name, 0) || strcasecmp(f->name,
			    "Content-Transfer-Encoding") == 0)
				continue;
			if (pgp_in_put(out, f->raw, f->rawlen) == -1)
				goto ioerr;
		}
		if (pgp_in_enc_field(out, "decrypted", NULL) == -1 ||
		    pgp_in_sig_field(out, &sig) == -1 ||
		    fputs("Content-Transfer-Encoding: quoted-printable\r\n\r\n",
		    out) == EOF ||
		    pgp_in_put_qp(out, text, (size_t)(b - text)) == -1 ||
		    pgp_in_put_qp(out, plain, pl) == -1 ||
		    pgp_in_put_qp(out, e, tl - (size_t)(e - text)) == -1)
			goto ioerr;
		rv = 1;
		goto out;
	}
	if ((b = pgp_in_memmem(text, tl, pgp_in_begin_signed)) != NULL &&
	    (e = pgp_in_memmem(b, tl - (size_t)(b - text),
	    pgp_in_end_sig)) != NULL) {
		e += strlen(pgp_in_end_sig);
		pgp_dec_verify_inline(ctx, b, (size_t)(e - b), &sig);
		if (pgp_in_outer(out, m, 0) == -1 ||
		    pgp_in_enc_field(out, "none", NULL) == -1 ||
		    pgp_in_sig_field(out, &sig) == -1 ||
		    pgp_in_put(out, "\r\n", 2) == -1 ||
		    pgp_in_put(out, m->body, m->bodylen) == -1)
			goto ioerr;
		rv = 1;
	}
	goto out;
ioerr:
	rv = -1;
out:
	free(plain);
	if (mem != NULL)
		g_object_unref(mem);
	if (obj != NULL)
		g_object_unref(obj);
	if (parser != NULL)
		g_object_unref(parser);
	if (s != NULL)
		g_object_unref(s);
	return rv;
}

/* multipart/encrypted (RFC 3156 section 4). */
static int
pgp_in_encrypted(struct pgp_in_ctx *ctx, struct pgp_in_msg *m, FILE *out)
{
	const char *bnd = g_mime_content_type_get_parameter(m->ct, "boundary");
	const unsigned char *part, *data, *pb;
	unsigned char *plain = NULL;
	size_t plen, dlen, pl = 0, pbl;
	struct pgp_sig_result sig, inner;
	char why[256];
	int r;

	memset(&inner, 0, sizeof(inner));
	if (bnd == NULL || pgp_in_part(m->body, m->bodylen, bnd, 1, &part,
	    &plen) == -1 || pgp_in_part_body(part, plen, &data, &dlen) == -1) {
		snprintf(why, sizeof(why), "malformed PGP/MIME structure");
		r = -2;
	} else
		r = pgp_dec_message(ctx, data, dlen, &plain, &pl, &sig, why,
		    sizeof(why));
	if (r == -1)
		return -1;
	if (r != 1) {
		if (pgp_in_outer(out, m, 0) == -1 ||
		    pgp_in_enc_field(out, "not-for-us", r == 0 ? NULL : why) ==
		    -1 || pgp_in_put(out, "\r\n", 2) == -1 ||
		    pgp_in_put(out, m->body, m->bodylen) == -1)
			return -1;
		return 1;
	}
	/* Signed, then encrypted (RFC 3156 6.1): the inner signature. */
	if (sig.status == PGP_SIG_NONE) {
		struct pgp_in_msg im;

		memset(&im, 0, sizeof(im));
		if (header_parse_mem((const char *)plain, pl, PGP_IN_MAX_HEADER,
		    &im.hdr) == 0) {
			const struct header_field *f = header_get(&im.hdr,
			    "Content-Type");
			GMimeContentType *ct = f ? g_mime_content_type_parse(
			    NULL, f->value) : NULL;
			const char *proto = ct ?
			    g_mime_content_type_get_parameter(ct, "protocol") :
			    NULL, *ib = ct ?
			    g_mime_content_type_get_parameter(ct, "boundary") :
			    NULL;
			const unsigned char *sd, *sp, *sb;
			size_t sdl, spl, sbl;

			if (ct != NULL && g_mime_content_type_is_type(ct,
			    "multipart", "signed") && proto != NULL &&
			    strcasecmp(proto, "application/pgp-signature") ==
			    0 && ib != NULL && im.hdr.len <= pl &&
			    pgp_in_part(plain + im.hdr.len, pl - im.hdr.len, ib,
			    0, &sd, &sdl) == 0 && pgp_in_part(plain +
			    im.hdr.len, pl - im.hdr.len, ib, 1, &sp, &spl) ==
			    0 && pgp_in_part_body(sp, spl, &sb, &sbl) == 0) {
				pgp_in_collect_keys(ctx, sd, sdl);
				pgp_dec_verify_detached(ctx, sd, sdl, sb, sbl,
				    &inner);
				sig = inner;
			}
			if (ct != NULL)
				g_object_unref(ct);
		}
		header_free(&im.hdr);
	}
	pb = plain;
	pbl = pl;
	if (pgp_in_outer(out, m, 1) == -1 ||
	    pgp_in_enc_field(out, "decrypted", NULL) == -1 ||
	    pgp_in_sig_field(out, &sig) == -1 ||
	    fputs("MIME-Version: 1.0\r\n", out) == EOF ||
	    pgp_in_put_crlf(out, pb, pbl) == -1) {
		free(plain);
		return -1;
	}
	if (sig.import_fpr[0] != '\0' && ctx->auto_import)
		pgp_in_import_signer(ctx, sig.import_fpr);
	free(plain);
	return 1;
}

/* multipart/signed (RFC 3156 section 5). */
static int
pgp_in_signed(struct pgp_in_ctx *ctx, struct pgp_in_msg *m, FILE *out)
{
	const char *bnd = g_mime_content_type_get_parameter(m->ct, "boundary");
	const unsigned char *sd, *sp, *sb;
	size_t sdl, spl, sbl;
	struct pgp_sig_result sig;

	memset(&sig, 0, sizeof(sig));
	if (bnd == NULL || pgp_in_part(m->body, m->bodylen, bnd, 0, &sd,
	    &sdl) == -1 || pgp_in_part(m->body, m->bodylen, bnd, 1, &sp,
	    &spl) == -1 || pgp_in_part_body(sp, spl, &sb, &sbl) == -1) {
		sig.status = PGP_SIG_INVALID;
		snprintf(sig.reason, sizeof(sig.reason), "malformed PGP/MIME "
		    "structure");
	} else {
		pgp_in_collect_keys(ctx, sd, sdl);
		pgp_dec_verify_detached(ctx, sd, sdl, sb, sbl, &sig);
	}
	if (pgp_in_outer(out, m, 0) == -1 ||
	    pgp_in_enc_field(out, "none", NULL) == -1 ||
	    pgp_in_sig_field(out, &sig) == -1 ||
	    pgp_in_put(out, "\r\n", 2) == -1 ||
	    pgp_in_put(out, m->body, m->bodylen) == -1)
		return -1;
	if (sig.import_fpr[0] != '\0' && ctx->auto_import)
		pgp_in_import_signer(ctx, sig.import_fpr);
	return 1;
}

/* The folded address of the one mailbox in the one From: field. */
static void
pgp_in_from(const struct header *h, char *out, size_t outlen)
{
	const struct header_field *f = NULL;
	InternetAddressList *l;
	InternetAddress *ia;
	const char *a;
	size_t n = 0;

	out[0] = '\0';
	for (size_t i = 0; i < h->nfields; i++)
		if (strcasecmp(h->fields[i].name, "From") == 0) {
			f = &h->fields[i];
			n++;
		}
	if (n != 1 || (l = internet_address_list_parse(NULL, f->value)) ==
	    NULL)
		return;
	if (internet_address_list_length(l) == 1 &&
	    INTERNET_ADDRESS_IS_MAILBOX(ia = internet_address_list_get_address(
	    l, 0)) && (a = internet_address_mailbox_get_addr(
	    INTERNET_ADDRESS_MAILBOX(ia))) != NULL &&
	    addr_fold(a, out, outlen) == -1)
		out[0] = '\0';
	g_object_unref(l);
}

/*
 * 1 when the body of in (from its current offset) holds "BEGIN PGP",
 * read in chunks so a large plain message is not loaded for nothing.
 */
static int
pgp_in_scan(FILE *in)
{
	static const char needle[] = "BEGIN PGP";
	const size_t keep = sizeof(needle) - 2;	/* a needle cut in two */
	char buf[65536];
	size_t have = 0, n;

	while ((n = fread(buf + have, 1, sizeof(buf) - have, in)) > 0) {
		have += n;
		if (memmem(buf, have, needle, sizeof(needle) - 1) != NULL)
			return 1;
		if (have > keep) {
			memmove(buf, buf + have - keep, keep);
			have = keep;
		}
	}
	return 0;
}

int
pgp_in_message(struct db *db, struct keyd_client *keyd, const char *msgid,
    int auto_import, FILE *in, FILE *out)
{
	struct pgp_in_ctx ctx;
	struct pgp_in_msg m;
	const struct header_field *f;
	const char *proto;
	struct stat st;
	int rv = 0, r;

	memset(&ctx, 0, sizeof(ctx));
	memset(&m, 0, sizeof(m));
	ctx.db = db;
	ctx.keyd = keyd;
	ctx.msgid = msgid;
	ctx.auto_import = auto_import;
	ctx.max_out = PGP_IN_MAX_OUT;
	if (fstat(fileno(in), &st) == -1)
		return -1;
	if ((r = header_read(in, PGP_IN_MAX_HEADER, &m.hdr)) != 0)
		return r == -1 ? -1 : 0;	/* malformed: not ours */
	pgp_in_from(&m.hdr, ctx.from, sizeof(ctx.from));
	if (auto_import && header_get(&m.hdr, "Autocrypt") != NULL)
		pgp_autocrypt_import(&ctx, &m.hdr);
	if ((f = header_get(&m.hdr, "Content-Type")) == NULL ||
	    (m.ct = g_mime_content_type_parse(NULL, f->value)) == NULL)
		goto out;
	proto = g_mime_content_type_get_parameter(m.ct, "protocol");
	if (g_mime_content_type_is_type(m.ct, "text", "plain") &&
	    ((f = header_get(&m.hdr, "Content-Transfer-Encoding")) == NULL ||
	    strcasecmp(f->value, "base64") != 0) && !pgp_in_scan(in))
		goto out;
	if (st.st_size > PGP_IN_MAX_DATA ||
	    !((g_mime_content_type_is_type(m.ct, "multipart", "encrypted") &&
	    proto != NULL && strcasecmp(proto, "application/pgp-encrypted") ==
	    0) || (g_mime_content_type_is_type(m.ct, "multipart", "signed") &&
	    proto != NULL && strcasecmp(proto, "application/pgp-signature") ==
	    0) || g_mime_content_type_is_type(m.ct, "text", "plain")))
		goto out;
	/* The whole message, in memory (bounded above). */
	m.raw = xmalloc((size_t)st.st_size + 1);
	if (fseeko(in, 0, SEEK_SET) == -1 ||
	    (m.len = fread(m.raw, 1, (size_t)st.st_size, in)) !=
	    (size_t)st.st_size || m.hdr.len > m.len) {
		rv = -1;
		goto out;
	}
	m.body = m.raw + m.hdr.len;
	m.bodylen = m.len - m.hdr.len;
	if (g_mime_content_type_is_type(m.ct, "multipart", "encrypted"))
		rv = pgp_in_encrypted(&ctx, &m, out);
	else if (g_mime_content_type_is_type(m.ct, "multipart", "signed"))
		rv = pgp_in_signed(&ctx, &m, out);
	else if (pgp_in_memmem(m.body, m.bodylen, "BEGIN PGP") != NULL ||
	    ((f = header_get(&m.hdr, "Content-Transfer-Encoding")) != NULL &&
	    strcasecmp(f->value, "base64") == 0))
		rv = pgp_in_inline(&ctx, &m, out);
out:
	if (m.ct != NULL)
		g_object_unref(m.ct);
	header_free(&m.hdr);
	free(m.raw);
	free(ctx.keys);
	return rv;
}
