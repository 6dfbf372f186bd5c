/*
 * The PDF builder's front: GMime parses the message, the walk picks the
 * body (in multipart/alternative the HTML part, else the text part; every
 * further inline text part follows it) and the attachments (every other
 * leaf, and attached messages), and the pages are drawn: a header block,
 * an optional "Reply securely" link, the body, and on a last page the
 * list of attachments. pdf_crypt.c then embeds the files and encrypts.
 *
 * SECURITY: the message is hostile MIME. GMime parses it (never our own
 * parser); header values and text are escaped into pango markup
 * (pdf_markup_text); body text is bounded by max_text and the embedded
 * files by max_attach; the walk's depth is bounded. A message GMime cannot
 * read at all is drawn as raw text, bounded the same way. Nothing is
 * fetched, nothing from the message becomes an action or a form.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <gmime/gmime.h>

#include "log.h"
#include "pdf.h"
#include "pdf_int.h"
#include "text.h"
#include "xmalloc.h"

#define PDF_DEPTH	32	/* MIME nesting walked */
#define PDF_PARTS	512	/* leaves looked at */
#define PDF_NAME_MAX	200	/* bytes of a file name shown */
#define PDF_TEXT_BLOCK	(16 * 1024)	/* a text body is drawn in pieces */

struct pdf_att {
	GMimeObject	*obj;		/* a GMimePart or GMimeMessagePart */
	char		*name;
	char		*type;
	size_t		 size;
	int		 embed;		/* within max_attach */
};

struct pdf_ctx {
	const struct pdf_opts	*o;
	struct pdf_layout	*l;
	struct pdf_info		*info;
	GMimeObject		*body[16];
	int			 nbody;
	struct pdf_att		*att;
	int			 natt;
	int			 nparts;
	size_t			 text, max_text, attach, max_attach;
	int			 next;		/* attachment handed to qpdf */
};

/* --- the walk ------------------------------------------------------------- */

static int
pdf_is_attachment(GMimeObject *o)
{
	const char *d = g_mime_object_get_disposition(o);

	if (d != NULL && g_ascii_strcasecmp(d, GMIME_DISPOSITION_ATTACHMENT)
	    == 0)
		return 1;
	return GMIME_IS_PART(o) &&
	    g_mime_part_get_filename(GMIME_PART(o)) != NULL;
}

static size_t
pdf_decoded_size(GMimeObject *o)
{
	GMimeStream *null = g_mime_stream_null_new();
	size_t n = 0;

	if (GMIME_IS_PART(o) && g_mime_part_get_content(GMIME_PART(o)) != NULL)
		g_mime_data_wrapper_write_to_stream(g_mime_part_get_content(
		    GMIME_PART(o)), null);
	else if (GMIME_IS_MESSAGE_PART(o) && g_mime_message_part_get_message(
	    GMIME_MESSAGE_PART(o)) != NULL)
		g_mime_object_write_to_stream(GMIME_OBJECT(
		    g_mime_message_part_get_message(GMIME_MESSAGE_PART(o))),
		    NULL, null);
	n = GMIME_STREAM_NULL(null)->written;
	g_object_unref(null);
	return n;
}

static void
pdf_add_att(struct pdf_ctx *c, GMimeObject *o)
{
	struct pdf_att *a;
	const char *name = NULL;
	GMimeContentType *ct = g_mime_object_get_content_type(o);
	char *type;

	if (c->natt >= PDF_PARTS)
		return;
	c->att = xreallocarray(c->att, c->natt + 1, sizeof(*c->att));
	a = &c->att[c->natt++];
	memset(a, 0, sizeof(*a));
	a->obj = o;
	if (GMIME_IS_PART(o))
		name = g_mime_part_get_filename(GMIME_PART(o));
	type = ct ? g_mime_content_type_get_mime_type(ct) : NULL;
	a->type = xstrdup(type && text_utf8_valid(type, strlen(type)) ? type :
	    "application/octet-stream");
	g_free(type);
	if (name != NULL && *name != '\0') {
		struct buf b;

		/* No path, no controls: only the name is shown and kept. */
		if (strrchr(name, '/') != NULL)
			name = strrchr(name, '/') + 1;
		buf_init(&b, PDF_NAME_MAX);
		(void)text_escape(&b, name, strlen(name), TEXT_ESC_LINE |
		    TEXT_ESC_NOBIDI);
		a->name = buf_finish(&b);
	}
	if (a->name == NULL || *a->name == '\0') {
		free(a->name);
		xasprintf(&a->name, GMIME_IS_MESSAGE_PART(o) ?
		    "message-%d.eml" : "attachment-%d", c->natt);
	}
	a->size = pdf_decoded_size(o);
	if (c->attach + a->size <= c->max_attach) {
		a->embed = 1;
		c->attach += a->size;
	}
}

static void
pdf_walk(struct pdf_ctx *c, GMimeObject *o, int depth)
{
	GMimeContentType *ct = g_mime_object_get_content_type(o);
	GMimeObject *pick = NULL;
	int n;

	if (depth > PDF_DEPTH || c->nparts++ > PDF_PARTS)
		return;
	if (GMIME_IS_MULTIPART(o)) {
		n = g_mime_multipart_get_count(GMIME_MULTIPART(o));
		if (ct != NULL && g_mime_content_type_is_type(ct, "multipart",
		    "alternative")) {
			/* The HTML part when there is one, else the last. */
			for (int i = 0; i < n; i++) {
				GMimeObject *p = g_mime_multipart_get_part(
				    GMIME_MULTIPART(o), i);
				GMimeContentType *pt =
				    g_mime_object_get_content_type(p);

				if (pt != NULL && g_mime_content_type_is_type(
				    pt, "text", "html"))
					pick = p;
				else if (pick == NULL ||
				    !GMIME_IS_TEXT_PART(pick))
					pick = p;
			}
			if (pick != NULL)
				pdf_walk(c, pick, depth + 1);
			return;
		}
		for (int i = 0; i < n; i++)
			pdf_walk(c, g_mime_multipart_get_part(GMIME_MULTIPART(o),
			    i), depth + 1);
		return;
	}
	if (GMIME_IS_MESSAGE_PART(o)) {
		pdf_add_att(c, o);
		return;
	}
	if (GMIME_IS_TEXT_PART(o) && !pdf_is_attachment(o) && ct != NULL &&
	    (g_mime_content_type_is_type(ct, "text", "plain") ||
	    g_mime_content_type_is_type(ct, "text", "html")) &&
	    c->nbody < (int)(sizeof(c->body) / sizeof(c->body[0]))) {
		c->body[c->nbody++] = o;
		return;
	}
	if (GMIME_IS_PART(o))
		pdf_add_att(c, o);
}

/* --- drawing -------------------------------------------------------------- */

static int
pdf_emit(void *arg, const char *markup)
{
	struct pdf_ctx *c = arg;

	return pdf_layout_markup(c->l, markup, 6);
}

/* Plain text in blocks of about PDF_TEXT_BLOCK, cut at line ends. */
static int
pdf_draw_text(struct pdf_ctx *c, const char *s, size_t len)
{
	struct buf b;
	size_t n;
	int rc = 0;

	if (len > c->max_text - c->text) {
		len = c->max_text - c->text;
		while (len > 0 && ((unsigned char)s[len] & 0xc0) == 0x80)
			len--;
		c->info->truncated = 1;
	}
	c->text += len;
	while (len > 0 && rc == 0) {
		n = len;
		if (n > PDF_TEXT_BLOCK) {
			const char *nl = memrchr(s, '\n', PDF_TEXT_BLOCK);

			n = nl != NULL ? (size_t)(nl - s) + 1 : PDF_TEXT_BLOCK;
			while (n > 1 && ((unsigned char)s[n] & 0xc0) == 0x80)
				n--;
		}
		buf_init(&b, n * 6 + 64);
		if (pdf_markup_text(&b, s, n) == 0)
			rc = pdf_layout_markup(c->l, b.data ? b.data : "", 0);
		buf_free(&b);
		s += n;
		len -= n;
	}
	return rc;
}

static int
pdf_draw_body(struct pdf_ctx *c, GMimeObject *o)
{
	GMimeContentType *ct = g_mime_object_get_content_type(o);
	char *text = g_mime_text_part_get_text(GMIME_TEXT_PART(o));
	int rc;

	if (text == NULL)
		return 0;
	if (ct != NULL && g_mime_content_type_is_type(ct, "text", "html"))
		rc = pdf_html_blocks(text, strlen(text), c->max_text - c->text,
		    pdf_emit, c, &c->info->truncated);
	else
		rc = pdf_draw_text(c, text, strlen(text));
	if (ct != NULL && g_mime_content_type_is_type(ct, "text", "html"))
		c->text += strlen(text) < c->max_text - c->text ?
		    strlen(text) : c->max_text - c->text;
	g_free(text);
	return rc;
}

static void
pdf_field(struct buf *b, const char *label, const char *value)
{
	if (value == NULL || *value == '\0')
		return;
	buf_putf(b, "%s<b>%s</b>  ", b->len ? "\n" : "", label);
	(void)text_escape(b, value, strlen(value), TEXT_ESC_HTML |
	    TEXT_ESC_LINE);
}

static char *
pdf_addresses(GMimeMessage *m, GMimeAddressType t)
{
	InternetAddressList *l = g_mime_message_get_addresses(m, t);

	if (l == NULL || internet_address_list_length(l) == 0)
		return NULL;
	return internet_address_list_to_string(l, NULL, FALSE);
}

static int
pdf_draw_header(struct pdf_ctx *c, GMimeMessage *m)
{
	struct buf b;
	GDateTime *d = g_mime_message_get_date(m);
	const char *subject = g_mime_message_get_subject(m);
	char *from, *to, *cc, *date = NULL;
	int rc;

	buf_init(&b, 64 * 1024);
	buf_puts(&b, "<span size=\"x-large\" weight=\"bold\">");
	if (subject != NULL && *subject != '\0')
		(void)text_escape(&b, subject, strlen(subject), TEXT_ESC_HTML |
		    TEXT_ESC_LINE);
	else
		buf_puts(&b, "(no subject)");
	buf_puts(&b, "</span>");
	rc = pdf_layout_markup(c->l, b.data, 8);
	buf_free(&b);

	from = pdf_addresses(m, GMIME_ADDRESS_TYPE_FROM);
	to = pdf_addresses(m, GMIME_ADDRESS_TYPE_TO);
	cc = pdf_addresses(m, GMIME_ADDRESS_TYPE_CC);
	if (d != NULL)
		date = g_date_time_format(d, "%a, %d %b %Y %H:%M %z");
	pdf_field(&b, "From", from);
	pdf_field(&b, "To", to);
	pdf_field(&b, "Cc", cc);
	pdf_field(&b, "Date", date);
	if (rc == 0 && b.len > 0)
		rc = pdf_layout_markup(c->l, b.data, 6);
	buf_free(&b);
	g_free(from);
	g_free(to);
	g_free(cc);
	g_free(date);
	return rc;
}

static int
pdf_draw_reply(struct pdf_ctx *c)
{
	struct buf b;
	const char *label = c->o->reply_label ? c->o->reply_label :
	    "Reply securely";
	int rc;

	if (c->o->reply_url == NULL)
		return 0;
	buf_init(&b, 8192);
	buf_puts(&b, "<b>");
	(void)pdf_markup_text(&b, label, strlen(label));
	buf_puts(&b, ":</b> <span foreground=\"#1a5fb4\">");
	(void)pdf_markup_text(&b, c->o->reply_url, strlen(c->o->reply_url));
	buf_puts(&b, "</span>");
	rc = pdf_layout_markup(c->l, b.data, 10);
	buf_free(&b);
	return rc;
}

static int
pdf_draw_attachments(struct pdf_ctx *c)
{
	struct buf b;
	int rc;

	if (c->natt == 0)
		return 0;
	pdf_layout_break(c->l);
	rc = pdf_layout_markup(c->l, "<span size=\"large\" weight=\"bold\">"
	    "Attachments</span>\nEach file is embedded in this PDF: open the "
	    "attachments panel of your PDF reader.", 8);
	for (int i = 0; i < c->natt && rc == 0; i++) {
		struct pdf_att *a = &c->att[i];

		buf_init(&b, 4096);
		buf_puts(&b, "<b>");
		(void)pdf_markup_text(&b, a->name, strlen(a->name));
		buf_puts(&b, "</b>  ");
		(void)pdf_markup_text(&b, a->type, strlen(a->type));
		if (a->size >= 1024 * 1024)
			buf_putf(&b, ", %.1f MiB", a->size / 1048576.0);
		else if (a->size >= 1024)
			buf_putf(&b, ", %.1f KiB", a->size / 1024.0);
		else
			buf_putf(&b, ", %zu bytes", a->size);
		if (!a->embed)
			buf_puts(&b, " (too large, not embedded)");
		rc = pdf_layout_markup(c->l, b.data, 4);
		buf_free(&b);
	}
	return rc;
}

/* --- files for qpdf ------------------------------------------------------- */

static int
pdf_next_file(void *arg, struct pdf_file *f, FILE *out)
{
	struct pdf_ctx *c = arg;
	GMimeStream *st;
	struct pdf_att *a;
	int rc = 0;

	while (c->next < c->natt && !c->att[c->next].embed)
		c->next++;
	if (c->next >= c->natt)
		return 0;
	a = &c->att[c->next++];
	/* Decoded straight into qpdf's input file, never into memory. */
	st = g_mime_stream_file_new(out);
	g_mime_stream_file_set_owner(GMIME_STREAM_FILE(st), FALSE);
	if (GMIME_IS_PART(a->obj) && g_mime_part_get_content(
	    GMIME_PART(a->obj)) != NULL)
		rc = g_mime_data_wrapper_write_to_stream(
		    g_mime_part_get_content(GMIME_PART(a->obj)), st) == -1;
	else if (GMIME_IS_MESSAGE_PART(a->obj) &&
	    g_mime_message_part_get_message(GMIME_MESSAGE_PART(a->obj)))
		rc = g_mime_object_write_to_stream(GMIME_OBJECT(
		    g_mime_message_part_get_message(GMIME_MESSAGE_PART(a->obj))),
		    NULL, st) == -1;
	if (g_mime_stream_flush(st) == -1)
		rc = 1;
	g_object_unref(st);
	if (rc != 0)
		return -1;
	f->name = xstrdup(a->name);
	f->type = xstrdup(a->type);
	c->info->attachments++;
	return 1;
}

/* --- the whole ------------------------------------------------------------ */

/* A message GMime could not read: its bytes as text. */
static int
pdf_draw_raw(struct pdf_ctx *c, int fd)
{
	struct buf raw;
	char chunk[8192];
	ssize_t n;
	int rc;

	c->info->raw = 1;
	buf_init(&raw, c->max_text);
	while ((n = read(fd, chunk, sizeof(chunk))) > 0)
		if (buf_put(&raw, chunk, n) == -1) {
			c->info->truncated = 1;
			break;
		}
	rc = pdf_layout_markup(c->l, "<b>This message could not be read as "
	    "MIME; its text follows as received.</b>", 8);
	if (rc == 0 && raw.len > 0)
		rc = pdf_draw_text(c, raw.data, raw.len);
	buf_free(&raw);
	return n == -1 ? -1 : rc;
}

int
pdf_build(int fd, const struct pdf_opts *o, const char *outpath,
    struct pdf_info *info, char *err, size_t errlen)
{
	struct pdf_ctx c;
	struct pdf_info dummy;
	struct buf pdf;
	GMimeStream *st;
	GMimeParser *p;
	GMimeMessage *m = NULL;
	off_t start;
	int rc = -1, dfd;

	if (info == NULL)
		info = &dummy;
	memset(info, 0, sizeof(*info));
	memset(&c, 0, sizeof(c));
	memset(&pdf, 0, sizeof(pdf));
	c.o = o;
	c.info = info;
	c.max_text = o->max_text ? o->max_text : PDF_TEXT_MAX;
	c.max_attach = o->max_attach ? o->max_attach : PDF_ATTACH_MAX;
	if (o->password == NULL || *o->password == '\0') {
		snprintf(err, errlen, "no password");
		return -1;
	}
	if ((start = lseek(fd, 0, SEEK_CUR)) == -1 ||
	    (dfd = dup(fd)) == -1) {
		snprintf(err, errlen, "message file: %s", strerror(errno));
		return -1;
	}
	st = g_mime_stream_fs_new_with_bounds(dfd, start, -1);
	p = g_mime_parser_new_with_stream(st);
	m = g_mime_parser_construct_message(p, NULL);
	g_object_unref(p);

	if ((c.l = pdf_layout_new()) == NULL) {
		snprintf(err, errlen, "cairo cannot create a PDF surface");
		goto done;
	}
	if (m == NULL || g_mime_message_get_mime_part(m) == NULL) {
		if (lseek(fd, start, SEEK_SET) == -1 ||
		    pdf_draw_raw(&c, fd) == -1)
			goto draw;
	} else {
		pdf_walk(&c, g_mime_message_get_mime_part(m), 0);
		if (pdf_draw_header(&c, m) == -1 || pdf_draw_reply(&c) == -1)
			goto draw;
		for (int i = 0; i < c.nbody; i++)
			if (pdf_draw_body(&c, c.body[i]) == -1)
				goto draw;
		if (info->truncated && pdf_layout_markup(c.l, "<i>[The rest "
		    "of the text is too long for this PDF.]</i>", 0) == -1)
			goto draw;
		if (pdf_draw_attachments(&c) == -1)
			goto draw;
	}
	for (int i = 0; i < c.natt; i++)
		if (!c.att[i].embed)
			info->skipped++;
	if (pdf_layout_finish(c.l, &pdf, &info->pages) == -1) {
		c.l = NULL;
		snprintf(err, errlen, "drawing the pages failed");
		goto done;
	}
	c.l = NULL;
	rc = pdf_crypt_write(&pdf, pdf_next_file, &c, o->password,
	    o->owner_password, outpath, err, errlen);
	goto done;
draw:
	snprintf(err, errlen, "drawing the pages failed");
done:
	pdf_layout_free(c.l);
	buf_free(&pdf);
	for (int i = 0; i < c.natt; i++) {
		free(c.att[i].name);
		free(c.att[i].type);
	}
	free(c.att);
	if (m != NULL)
		g_object_unref(m);
	g_object_unref(st);
	return rc;
}
