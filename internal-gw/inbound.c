/*
 * The inbound path (see inbound.h), run on the SMTP worker's threads.
 *
 * SECURITY: the message comes from the Internet through the LAN MTA. Its
 * header may carry forged X-Postern-* result fields: they are dropped
 * from the delivered message, whichever layer (outer or decrypted) they
 * came in. MIME is read only as far as needed: the top-level
 * Content-Type (GMime parses it), a base64 or binary body, and for
 * multipart/signed the two parts split at the boundary with a bounded
 * line reader (a signature part of at most INBOUND_MAX_SIG bytes). At most
 * INBOUND_MAX_LAYERS S/MIME layers are opened. The CMS structures go to
 * smime_in.c. A layer that fails leaves the message as it arrived (or
 * refuses it when inbound-reject-malformed is set); a partial plaintext
 * is never delivered: it lives in an anonymous file that is dropped.
 */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <gmime/gmime.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "certstore.h"
#include "cmsdec.h"
#include "cmsskel.h"
#include "gateway.h"
#include "header.h"
#include "inbound.h"
#include "log.h"
#include "props.h"
#include "smime_in.h"
#include "xmalloc.h"

#define INBOUND_MAX_LAYERS	4
#define INBOUND_MAX_SIG		(1024 * 1024)
#define INBOUND_LINE		8192

enum inbound_kind {
	INBOUND_PLAIN,
	INBOUND_PKCS7,		/* application/pkcs7-mime */
	INBOUND_MSIGNED,	/* multipart/signed */
};

struct inbound {
	struct gateway	*gw;
	struct props	*props;
	const char	*msgid;
	const char	*rcpt;		/* whose properties apply */
	const char	*in;		/* the message as it arrived */
	FILE		*curf;		/* after a layer: an anonymous file */
	off_t		 size;		/* of in: what temporaries may hold */
	int		 seq;
	const char	*enc;		/* X-Postern-Encrypted value */
	char		 enc_reason[256];
	int		 signed_;
	struct smime_in_sig sig;
	char		 from[ADDR_MAX];
	int		 bad;		/* a malformed layer */
	char		 bad_reason[256];
};

static FILE *
inbound_file(struct inbound *ib, const char *tag, char *path, size_t len)
{
	int fd;
	FILE *f;

	snprintf(path, len, "%s/%s.%s.%d", ib->gw->spool_dir, ib->msgid, tag,
	    ib->seq++);
	if ((fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600)) ==
	    -1) {
		log_warn("id=%s create %s", ib->msgid, path);
		return NULL;
	}
	if ((f = fdopen(fd, "w+")) == NULL) {
		log_warn("id=%s fdopen", ib->msgid);
		close(fd);
		unlink(path);
	}
	return smime_in_buffered(f);
}

/* Makes f the current message, dropping the previous one of ours. */
static void
inbound_advance(struct inbound *ib, FILE *f)
{
	if (ib->curf != NULL)
		smime_in_fclose(ib->curf);
	ib->curf = f;
}

/* The current message from its start, for reading; NULL (logged). */
static FILE *
inbound_open(struct inbound *ib)
{
	FILE *f;
	int fd;

	if (ib->curf == NULL) {
		if ((f = fopen(ib->in, "re")) == NULL)
			log_warn("id=%s open %s", ib->msgid, ib->in);
		return smime_in_buffered(f);
	}
	if ((fd = fcntl(fileno(ib->curf), F_DUPFD_CLOEXEC, 0)) == -1 ||
	    lseek(fd, 0, SEEK_SET) == -1 || (f = fdopen(fd, "r")) == NULL) {
		log_warn("id=%s reopen the decrypted message", ib->msgid);
		if (fd != -1)
			close(fd);
		return NULL;
	}
	return smime_in_buffered(f);
}

/* The one From: mailbox, or "". */
static void
inbound_from(const struct header *h, char *out, size_t outlen)
{
	const struct header_field *f = header_get(h, "From");
	InternetAddressList *l;
	InternetAddress *ia;
	const char *a;

	out[0] = '\0';
	if (f == NULL || (l = internet_address_list_parse(NULL, f->value)) ==
	    NULL)
		return;
	if (internet_address_list_length(l) == 1 &&
	    INTERNET_ADDRESS_IS_MAILBOX(ia = internet_address_list_get_address(
	    l, 0)) && (a = internet_address_mailbox_get_addr(
	    INTERNET_ADDRESS_MAILBOX(ia))) != NULL && strlen(a) < outlen)
		snprintf(out, outlen, "%s", a);
	g_object_unref(l);
}

static enum inbound_kind
inbound_kind(const struct header *h, char *boundary, size_t blen)
{
	const struct header_field *f = header_get(h, "Content-Type");
	GMimeContentType *ct;
	const char *b, *proto;
	enum inbound_kind k = INBOUND_PLAIN;

	boundary[0] = '\0';
	if (f == NULL || (ct = g_mime_content_type_parse(NULL, f->value)) ==
	    NULL)
		return k;
	if (g_mime_content_type_is_type(ct, "application", "pkcs7-mime") ||
	    g_mime_content_type_is_type(ct, "application", "x-pkcs7-mime"))
		k = INBOUND_PKCS7;
	else if (g_mime_content_type_is_type(ct, "multipart", "signed") &&
	    (b = g_mime_content_type_get_parameter(ct, "boundary")) != NULL &&
	    *b != '\0' && strlen(b) <= 70 && (proto =
	    g_mime_content_type_get_parameter(ct, "protocol")) != NULL &&
	    (strcasecmp(proto, "application/pkcs7-signature") == 0 ||
	    strcasecmp(proto, "application/x-pkcs7-signature") == 0)) {
		k = INBOUND_MSIGNED;
		snprintf(boundary, blen, "%s", b);
	}
	g_object_unref(ct);
	return k;
}

static int
inbound_is_base64(const struct header *h)
{
	const struct header_field *f = header_get(h,
	    "Content-Transfer-Encoding");

	return f != NULL && strcasecmp(f->value, "base64") == 0;
}

/* The decoded body of in (after header h) into an anonymous file. */
static FILE *
inbound_body(struct inbound *ib, FILE *in, const struct header *h, int *bad)
{
	FILE *out;
	int r;

	*bad = 0;
	if (fseeko(in, (off_t)h->len, SEEK_SET) == -1 ||
	    (out = smime_in_tmp(ib->gw->spool_dir, ib->size)) == NULL)
		return NULL;
	r = cmsdec_unbase64(in, inbound_is_base64(h), out);
	if (r != 0 || fseek(out, 0, SEEK_SET) == -1) {
		*bad = r == CMSDEC_BAD;
		smime_in_fclose(out);
		return NULL;
	}
	return out;
}

/*
 * A new current message: the header fields of h except Content-* (the
 * entity brings its own), then the entity (header and body) from ent.
 * Returns 0, -1 on I/O error, or -2 when the new header is malformed or
 * larger than the header limit: then the current message stays.
 */
static int
inbound_rewrap(struct inbound *ib, const struct header *h, FILE *ent)
{
	char chunk[16384];
	struct header nh;
	FILE *out;
	size_t n;
	int r;

	/* The entity's own header first: it must stand on its own. */
	if (fseek(ent, 0, SEEK_SET) == -1 ||
	    (r = header_read(ent, ib->gw->max_header, &nh)) == -1) {
		log_warn("id=%s read the decrypted message", ib->msgid);
		return -1;
	}
	if (r != 0)
		return -2;
	header_free(&nh);
	if ((out = smime_in_tmp(ib->gw->spool_dir, ib->size)) == NULL)
		return -1;
	for (size_t i = 0; i < h->nfields; i++)
		if (strncasecmp(h->fields[i].name, "Content-", 8) != 0)
			fwrite(h->fields[i].raw, 1, h->fields[i].rawlen, out);
	if (fseek(ent, 0, SEEK_SET) == -1)
		goto fail;
	while ((n = fread(chunk, 1, sizeof(chunk), ent)) > 0)
		if (fwrite(chunk, 1, n, out) != n)
			goto fail;
	if (ferror(ent) || fflush(out) == EOF || ferror(out) ||
	    fseek(out, 0, SEEK_SET) == -1)
		goto fail;
	if ((r = header_read(out, ib->gw->max_header, &nh)) == -1)
		goto fail;
	if (r == 0)
		header_free(&nh);
	if (r != 0 || fflush(out) == EOF) {
		smime_in_fclose(out);
		return -2;
	}
	inbound_advance(ib, out);
	return 0;
fail:
	log_warn("id=%s write the decrypted message", ib->msgid);
	smime_in_fclose(out);
	return -1;
}

/*
 * Reads up to cap - 1 bytes through the next LF. Returns the length (0 at
 * EOF); *eol tells whether the chunk ends a line.
 */
static size_t
inbound_line(FILE *f, char *buf, size_t cap, int *eol)
{
	size_t n = 0;
	int c;

	*eol = 0;
	while (n < cap - 1 && (c = getc(f)) != EOF) {
		buf[n++] = (char)c;
		if (c == '\n') {
			*eol = 1;
			break;
		}
	}
	buf[n] = '\0';
	return n;
}

/* 1: "--b" delimiter, 2: "--b--" close delimiter, 0: neither. */
static int
inbound_delim(const char *line, size_t len, const char *b)
{
	size_t bl = strlen(b), i;
	int close = 0;

	if (len < bl + 2 || line[0] != '-' || line[1] != '-' ||
	    memcmp(line + 2, b, bl) != 0)
		return 0;
	i = bl + 2;
	if (len >= i + 2 && line[i] == '-' && line[i + 1] == '-') {
		close = 1;
		i += 2;
	}
	for (; i < len; i++)
		if (line[i] != ' ' && line[i] != '\t' && line[i] != '\r' &&
		    line[i] != '\n')
			return 0;
	return close ? 2 : 1;
}

/*
 * Splits a multipart/signed body: the first part's bytes (without the
 * CRLF before the delimiter) go to part, the second part's decoded
 * signature to *sig. Returns 0, -2 when malformed, -1 on I/O error.
 */
static int
inbound_split(FILE *in, const char *b, FILE *part, unsigned char **sig,
    size_t *siglen)
{
	char line[INBOUND_LINE];
	struct buf sp;
	struct header h;
	FILE *mf, *df;
	size_t n, pend = 0;
	int eol, bol = 1, state = 0, d, rc = -2;

	*sig = NULL;
	*siglen = 0;
	buf_init(&sp, INBOUND_MAX_SIG);
	while ((n = inbound_line(in, line, sizeof(line), &eol)) > 0) {
		d = bol ? inbound_delim(line, n, b) : 0;
		bol = eol;
		if (state == 0) {
			if (d == 1)
				state = 1;
			continue;
		}
		if (state == 1) {
			if (d == 1) {
				state = 2;
				continue;
			}
			if (d == 2)
				goto out;
			if (pend > 0 && fwrite("\r\n", 1, pend, part) != pend)
				goto io;
			pend = 0;
			if (eol) {
				pend = n >= 2 && line[n - 2] == '\r' ? 2 : 1;
				n -= pend;
			}
			if (fwrite(line, 1, n, part) != n)
				goto io;
			continue;
		}
		if (d != 0) {
			state = 3;
			break;
		}
		if (buf_put(&sp, line, n) == -1)
			goto out;
	}
	if (state != 3 || fflush(part) == EOF || ferror(part))
		goto out;
	/* The signature part: its header, then the (base64) DER. */
	if (sp.len == 0 || header_parse_mem(sp.data, sp.len, sp.len, &h) != 0)
		goto out;
	if ((mf = fmemopen(sp.data + h.len, sp.len - h.len, "r")) == NULL)
		fatal("inbound: fmemopen");
	if ((df = open_memstream((char **)sig, siglen)) == NULL)
		fatal("inbound: open_memstream");
	rc = cmsdec_unbase64(mf, inbound_is_base64(&h), df);
	smime_in_fclose(mf);
	smime_in_fclose(df);
	header_free(&h);
	if (rc != 0) {
		free(*sig);
		*sig = NULL;
		rc = -2;
	}
	goto out;
io:
	rc = -1;
out:
	buf_free(&sp);
	return rc;
}

static void
inbound_bad(struct inbound *ib, const char *why)
{
	ib->bad = 1;
	snprintf(ib->bad_reason, sizeof(ib->bad_reason), "%s", why);
	log_info("id=%s inbound S/MIME not processed: %s", ib->msgid, why);
}

static int
inbound_verify_done(struct inbound *ib, int rv)
{
	if (rv == -1)
		return -1;
	ib->signed_ = 1;
	log_info("id=%s signature %s signer=<%s> reason=\"%s\"", ib->msgid,
	    smime_in_status_name(ib->sig.status), ib->sig.signer,
	    ib->sig.reason);
	return 0;
}

/*
 * remove-signature: the signed content becomes the message, unless its
 * header is malformed or too large; then the signature stays.
 */
static int
inbound_unsign(struct inbound *ib, const struct header *h, FILE *content)
{
	int r;

	if ((r = inbound_rewrap(ib, h, content)) == -2) {
		log_info("id=%s signature kept: the signed content has a "
		    "malformed or oversized header", ib->msgid);
		r = 0;
	}
	return r;
}

/* remove-signature for the recipient: 1, 0, or -1 (database failure). */
static int
inbound_rmsig(struct inbound *ib)
{
	return props_get_bool(ib->props, ib->rcpt, "remove-signature");
}

/* One S/MIME layer; 1 when another may follow, 0 when done, -1 error. */
static int
inbound_layer(struct inbound *ib, char *const *rcpts, size_t nrcpts)
{
	struct header h;
	char boundary[80], err[256];
	unsigned char *sig = NULL;
	size_t siglen;
	const char *who;
	FILE *f, *der = NULL, *plain = NULL;
	struct db *db = gateway_db(ib->gw);
	enum inbound_kind k;
	int r, bad, more = 0;
	long long maxri;

	if (db == NULL || (f = inbound_open(ib)) == NULL)
		return -1;
	r = header_read(f, ib->gw->max_header, &h);
	if (r != 0) {
		smime_in_fclose(f);
		return r == -1 ? -1 : 0;
	}
	if (ib->from[0] == '\0')
		inbound_from(&h, ib->from, sizeof(ib->from));
	k = inbound_kind(&h, boundary, sizeof(boundary));
	if (k == INBOUND_PLAIN || ib->signed_) {
		r = 0;
		goto out;
	}
	if ((plain = smime_in_tmp(ib->gw->spool_dir, ib->size)) == NULL) {
		r = -1;
		goto out;
	}
	if (k == INBOUND_MSIGNED) {
		if (fseeko(f, (off_t)h.len, SEEK_SET) == -1) {
			r = -1;
			goto out;
		}
		if ((r = inbound_split(f, boundary, plain, &sig, &siglen)) !=
		    0) {
			if (r == -2)
				inbound_bad(ib, "malformed multipart/signed");
			r = r == -2 ? 0 : -1;
			goto out;
		}
		if ((r = inbound_verify_done(ib, smime_in_verify(sig, siglen,
		    plain, NULL, NULL, ib->gw->trust, db, ib->from,
		    &ib->sig))) == 0 && ib->sig.status == SMIME_IN_VALID &&
		    (r = inbound_rmsig(ib)) == 1)
			r = inbound_unsign(ib, &h, plain);
		goto out;
	}
	if ((der = inbound_body(ib, f, &h, &bad)) == NULL) {
		if (bad)
			inbound_bad(ib, "bad base64 in application/pkcs7-mime");
		r = bad ? 0 : -1;
		goto out;
	}
	switch (cmsskel_peek(der)) {
	case CMSSKEL_ENVELOPED:
	case CMSSKEL_AUTH_ENVELOPED:
		break;
	case CMSSKEL_SIGNED:
		rewind(der);
		if ((r = inbound_verify_done(ib, smime_in_verify(NULL, 0, NULL,
		    der, plain, ib->gw->trust, db, ib->from, &ib->sig))) == 0 &&
		    ib->sig.status == SMIME_IN_VALID && (r = inbound_rmsig(ib)) ==
		    1)
			r = inbound_unsign(ib, &h, plain);
		goto out;
	default:
		inbound_bad(ib, "application/pkcs7-mime holds no known CMS "
		    "type");
		r = 0;
		goto out;
	}
	rewind(der);
	if ((maxri = props_get_int(ib->props, ib->rcpt,
	    "inbound-max-recipient-infos")) == -1) {
		r = -1;
		goto out;
	}
	r = smime_in_decrypt(ib->gw->keyd, ib->msgid, rcpts, nrcpts, der,
	    plain, ib->gw->spool_dir, (size_t)maxri, &who, err, sizeof(err));
	switch (r) {
	case SMIME_IN_DONE:
		log_info("id=%s decrypted with the key of <%s>", ib->msgid,
		    who);
		if ((r = inbound_rewrap(ib, &h, plain)) == -2) {
			/* Never a partial result: the message as it came. */
			snprintf(err, sizeof(err), "the decrypted message has a "
			    "malformed or oversized header");
			inbound_bad(ib, err);
			ib->enc = "not-for-us";
			snprintf(ib->enc_reason, sizeof(ib->enc_reason), "%s",
			    err);
			r = 0;
			break;
		}
		ib->enc = "decrypted";
		ib->enc_reason[0] = '\0';
		more = r == 0;
		break;
	case SMIME_IN_NOT_FOR_US:
		log_info("id=%s not decrypted, passed unchanged: %s",
		    ib->msgid, err);
		ib->enc = "not-for-us";
		snprintf(ib->enc_reason, sizeof(ib->enc_reason), "%s", err);
		r = 0;
		break;
	case SMIME_IN_BAD:
		inbound_bad(ib, err);
		ib->enc = "not-for-us";
		snprintf(ib->enc_reason, sizeof(ib->enc_reason), "%s", err);
		r = 0;
		break;
	default:
		log_warnx("id=%s decryption: %s", ib->msgid, err);
		r = -1;
		break;
	}
out:
	free(sig);
	if (der != NULL)
		smime_in_fclose(der);
	if (plain != NULL)
		smime_in_fclose(plain);
	smime_in_fclose(f);
	header_free(&h);
	return r == -1 ? -1 : more;
}

/* A header parameter value: printable ASCII without ';' or quotes. */
static void
inbound_param(const char *in, char *out, size_t outlen)
{
	size_t n = 0;

	for (; *in != '\0' && n + 1 < outlen; in++)
		out[n++] = (*in < ' ' || *in > '~' || *in == ';' ||
		    *in == '"') ? '_' : *in;
	out[n] = '\0';
}

/* "tag subject" when the -enabled property is on; NULL when off. */
static int
inbound_tag(struct inbound *ib, const char *name, char **subject)
{
	char en[80], *tag, *ns;
	int on;

	snprintf(en, sizeof(en), "%s-enabled", name);
	if ((on = props_get_bool(ib->props, ib->rcpt, en)) != 1)
		return on;
	if ((tag = props_get(ib->props, ib->rcpt, name, NULL)) == NULL)
		return -1;
	xasprintf(&ns, "%s %s", tag, *subject);
	free(tag);
	free(*subject);
	*subject = ns;
	return 1;
}

/* The delivered file: our result fields, the subject tags, no forgeries. */
static int
inbound_finish(struct inbound *ib, char *out, size_t outlen)
{
	static const char *const names[] = { "X-Postern-Signature",
	    "X-Postern-Encrypted", "Subject" };
	char sig[1024], enc[300], a[ADDR_MAX], r[256], *subject = NULL;
	char *extra, *enc_subj;
	const struct header_field *s;
	struct header h;
	FILE *fi, *fo;
	int rc, removed, tagged = 0, t;

	if ((fi = inbound_open(ib)) == NULL)
		return -1;
	if ((rc = header_read(fi, ib->gw->max_header, &h)) != 0) {
		smime_in_fclose(fi);
		return rc;
	}
	s = header_get(&h, "Subject");
	subject = NULL;
	if (s != NULL && (subject = g_mime_utils_header_decode_text(NULL,
	    s->value)) != NULL) {
		char *c = xstrdup(subject);

		g_free(subject);
		subject = c;
	}
	if (subject == NULL)
		subject = xstrdup(s != NULL ? s->value : "");
	header_free(&h);
	if (ib->signed_) {
		t = inbound_tag(ib, ib->sig.status == SMIME_IN_VALID ?
		    "subject-tag-signed-valid" : "subject-tag-signed-invalid",
		    &subject);
		tagged |= t == 1;
		if (t == -1)
			goto fail;
	}
	if (strcmp(ib->enc, "decrypted") == 0) {
		if ((t = inbound_tag(ib, "subject-tag-decrypted",
		    &subject)) == -1)
			goto fail;
		tagged |= t == 1;
	}
	sig[0] = '\0';
	if (ib->signed_) {
		inbound_param(ib->sig.signer, a, sizeof(a));
		inbound_param(ib->sig.reason, r, sizeof(r));
		snprintf(sig, sizeof(sig), "X-Postern-Signature: %s; "
		    "signer=%s; reason=%s\r\n",
		    smime_in_status_name(ib->sig.status), a, r);
	}
	inbound_param(ib->enc_reason, r, sizeof(r));
	snprintf(enc, sizeof(enc), "X-Postern-Encrypted: %s%s%s\r\n", ib->enc,
	    r[0] ? "; reason=" : "", r);
	enc_subj = NULL;
	if (tagged)
		enc_subj = g_mime_utils_header_encode_text(NULL, subject, NULL);
	xasprintf(&extra, "%s%s%s%s%s", sig, enc, tagged ? "Subject: " : "",
	    tagged ? (enc_subj ? enc_subj : "") : "", tagged ? "\r\n" : "");
	g_free(enc_subj);
	rewind(fi);
	if ((fo = inbound_file(ib, "out", out, outlen)) == NULL) {
		free(extra);
		goto fail;
	}
	rc = header_rewrite(fi, fo, ib->gw->max_header, names, tagged ? 3 : 2,
	    extra, &removed);
	free(extra);
	if (fflush(fo) == EOF || ferror(fo))
		rc = -1;
	smime_in_fclose(fo);
	smime_in_fclose(fi);
	free(subject);
	if (rc != 0) {
		unlink(out);
		out[0] = '\0';
	} else if (removed > (tagged ? 1 : 0))
		log_info("id=%s removed X-Postern-* fields from outside",
		    ib->msgid);
	return rc;
fail:
	smime_in_fclose(fi);
	free(subject);
	return -1;
}

/* Harvests the chain of a valid signature (the anchor stays out). */
static void
inbound_harvest(struct inbound *ib)
{
	char fpr[CERTSTORE_FPR_LEN + 1], *src, *err = NULL;
	struct db *db;
	int on;

	if (!ib->signed_ || ib->sig.status != SMIME_IN_VALID ||
	    ib->sig.chain == NULL)
		return;
	if ((on = props_get_bool(ib->props, ib->rcpt,
	    "auto-import-certificates")) != 1 || (db = gateway_db(ib->gw)) ==
	    NULL)
		return;
	xasprintf(&src, "harvested from a valid signature of <%s> "
	    "(message id=%s)", ib->sig.signer, ib->msgid);
	for (int i = 0; i < sk_X509_num(ib->sig.chain); i++) {
		X509 *x = sk_X509_value(ib->sig.chain, i);

		if (X509_check_issued(x, x) == X509_V_OK)
			continue;
		if (certstore_add(db, x, src, &err) == -1) {
			log_warnx("id=%s harvest: %s", ib->msgid, err);
			free(err);
			break;
		}
		if (i == 0) {
			certstore_fingerprint(x, fpr);
			log_info("id=%s imported the certificate %s of <%s>",
			    ib->msgid, fpr, ib->sig.signer);
		}
	}
	free(src);
}

int
inbound_process(struct gateway *gw, struct props *p, const char *msgid,
    const char *in, char *const *rcpts, size_t nrcpts, char *out,
    size_t outlen, char *note, size_t notelen)
{
	struct inbound ib;
	struct stat st;
	int r = 0, rej;

	memset(&ib, 0, sizeof(ib));
	ib.gw = gw;
	ib.props = p;
	ib.msgid = msgid;
	ib.rcpt = rcpts[0];
	ib.enc = "none";
	ib.in = in;
	ib.size = stat(in, &st) == 0 ? st.st_size : -1;
	out[0] = '\0';
	note[0] = '\0';
	for (int i = 0; i < INBOUND_MAX_LAYERS && (r = inbound_layer(&ib,
	    rcpts, nrcpts)) == 1; i++)
		;
	if (r == -1)
		goto local;
	if (ib.bad) {
		if ((rej = props_get_bool(p, ib.rcpt,
		    "inbound-reject-malformed")) == -1)
			goto local;
		if (rej) {
			snprintf(note, notelen, "%s", ib.bad_reason);
			r = INBOUND_REJECT;
			goto done;
		}
	}
	if ((r = inbound_finish(&ib, out, outlen)) == -2) {
		/* Bad input is never a 4xx: it would fail the same again. */
		snprintf(note, notelen, "malformed or oversized header");
		r = INBOUND_REJECT;
		goto done;
	}
	if (r != 0)
		goto local;
	inbound_harvest(&ib);
	snprintf(note, notelen, "; inbound: encrypted=%s%s%s", ib.enc,
	    ib.signed_ ? " signature=" : "", ib.signed_ ?
	    smime_in_status_name(ib.sig.status) : "");
	r = INBOUND_OK;
	goto done;
local:
	r = INBOUND_LOCAL;
done:
	if (ib.curf != NULL)
		smime_in_fclose(ib.curf);
	smime_in_sig_free(&ib.sig);
	return r;
}
