/*
 * Records where each leaf MIME part of a message lies in the stored file,
 * at delivery, so the web worker serves an attachment from a byte range
 * without parsing the message (store_part.c). The numbering must be the
 * web's (web_mail.c: leaf parts in document order, at most
 * WEB_MAIL_MAX_PARTS); a message holding a winmail.dat, which the web
 * replaces by the files inside it, is not recorded at all. A part the
 * reader cannot reproduce (an attached message, uuencode) gets no row:
 * the web parses for it.
 *
 * SECURITY: the message is mail from any sender. GMime parses it from
 * the file (bodies stay on disk: the parser keeps offsets); the walk is
 * bounded in parts, and GMime bounds the nesting of multiparts.
 */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>

#include <gmime/gmime.h>

#include "ingest/ingest_parts.h"
#include "log.h"
#include "web/web_mail.h"
#include "xmalloc.h"

struct ingest_parts {
	struct store_part	*v;
	int			 n;		/* rows */
	int			 count;		/* parts numbered so far */
	int			 tnef;
};

/* The web's test for a winmail.dat (web_mail.c). */
static int
ingest_parts_is_tnef(GMimeObject *o)
{
	GMimeContentType *ct = g_mime_object_get_content_type(o);
	const char *fn;

	if (!GMIME_IS_PART(o))
		return 0;
	if (g_mime_content_type_is_type(ct, "application", "ms-tnef") ||
	    g_mime_content_type_is_type(ct, "application", "vnd.ms-tnef"))
		return 1;
	fn = g_mime_part_get_filename(GMIME_PART(o));
	return fn != NULL && g_ascii_strcasecmp(fn, "winmail.dat") == 0;
}

/* The decoded size, counted through the reader the web will use. */
static int64_t
ingest_parts_size(const char *path, const struct store_part *p)
{
	struct store_part_reader *rd;
	char buf[STORE_PART_CHUNK];
	int64_t n = 0;
	ssize_t got;

	if ((rd = store_part_reader_open(path, p)) == NULL)
		return -1;
	while ((got = store_part_read(rd, buf, sizeof(buf))) > 0)
		n += got;
	store_part_reader_close(rd);
	return got == 0 ? n : -1;
}

static void
ingest_parts_leaf(struct ingest_parts *ip, const char *path, GMimeObject *o)
{
	GMimeDataWrapper *dw;
	GMimeStream *src;
	GMimeContentEncoding enc;
	struct store_part p;
	const char *fn;

	if (!GMIME_IS_PART(o) || GMIME_IS_MESSAGE_PART(o) ||
	    (dw = g_mime_part_get_content(GMIME_PART(o))) == NULL ||
	    (src = g_mime_data_wrapper_get_stream(dw)) == NULL ||
	    src->bound_end < src->bound_start)
		return;
	memset(&p, 0, sizeof(p));
	p.part = ip->count;
	p.offset = src->bound_start;
	p.length = src->bound_end - src->bound_start;
	enc = g_mime_data_wrapper_get_encoding(dw);
	/* What web_mail_part_open() decodes; anything else passes as is. */
	if (enc == GMIME_CONTENT_ENCODING_BASE64 ||
	    enc == GMIME_CONTENT_ENCODING_QUOTEDPRINTABLE)
		p.encoding = xstrdup(g_mime_content_encoding_to_string(enc));
	else if (enc == GMIME_CONTENT_ENCODING_UUENCODE)
		return;
	if ((p.size = ingest_parts_size(path, &p)) == -1) {
		store_part_free(&p);
		return;
	}
	p.ctype = g_mime_content_type_get_mime_type(
	    g_mime_object_get_content_type(o));
	if (p.ctype != NULL) {
		/* Ours to free with free(), not g_free(). */
		char *t = xstrdup(p.ctype);

		g_free(p.ctype);
		p.ctype = t;
	}
	if ((fn = g_mime_part_get_filename(GMIME_PART(o))) != NULL)
		p.filename = xstrdup(fn);
	ip->v = xreallocarray(ip->v, ip->n + 1, sizeof(*ip->v));
	ip->v[ip->n++] = p;
}

/* web_mail_walk(), without the body choice and without unpacking. */
static void
ingest_parts_walk(struct ingest_parts *ip, const char *path, GMimeObject *o)
{
	if (ip->tnef)
		return;
	if (GMIME_IS_MULTIPART(o)) {
		GMimeMultipart *mp = GMIME_MULTIPART(o);
		int n = g_mime_multipart_get_count(mp);

		for (int i = 0; i < n; i++)
			ingest_parts_walk(ip, path,
			    g_mime_multipart_get_part(mp, i));
		return;
	}
	if (ip->count == WEB_MAIL_MAX_PARTS)
		return;
	if (ingest_parts_is_tnef(o)) {
		ip->tnef = 1;
		return;
	}
	ip->count++;
	ingest_parts_leaf(ip, path, o);
}

int
ingest_parts_scan(const char *path, struct store_part **parts, int *n)
{
	struct ingest_parts ip;
	GMimeStream *st;
	GMimeParser *parser;
	GMimeMessage *msg;
	GMimeObject *top;

	*parts = NULL;
	*n = 0;
	if ((st = g_mime_stream_fs_open(path, O_RDONLY, 0, NULL)) == NULL) {
		log_warnx("ingest: cannot open %s to record its parts", path);
		return 1;
	}
	parser = g_mime_parser_new_with_stream(st);
	msg = g_mime_parser_construct_message(parser, NULL);
	g_object_unref(parser);
	g_object_unref(st);
	if (msg == NULL)
		return 1;
	memset(&ip, 0, sizeof(ip));
	if ((top = g_mime_message_get_mime_part(msg)) != NULL &&
	    GMIME_IS_MULTIPART(top))
		ingest_parts_walk(&ip, path, top);
	g_object_unref(msg);
	if (ip.tnef || ip.n == 0) {
		ingest_parts_free(ip.v, ip.n);
		return 1;
	}
	*parts = ip.v;
	*n = ip.n;
	return 0;
}

void
ingest_parts_free(struct store_part *parts, int n)
{
	for (int i = 0; i < n; i++)
		store_part_free(&parts[i]);
	free(parts);
}
