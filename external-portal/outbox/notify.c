/*
 * Notification mail; see notify.h.
 *
 * SECURITY: the original From and Subject are peer data: whoever sent the
 * message (anyone on the Internet, through the gateway) chooses them, up
 * to the SMTP header limit. They reach the notification only decoded by
 * GMime (RFC 2047), cleaned by the shared escaper as one line (no CR or LF
 * can reach the header or start a line, no controls, no bidi overrides),
 * HTML-escaped in the HTML part, and cut to NOTIFY_NAME_MAX /
 * NOTIFY_SUBJECT_MAX; the subject only when the admin enabled it. Every
 * expansion is built in a buffer bounded by NOTIFY_BODY_MAX: past it the
 * notification is refused rather than grown.
 */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <gmime/gmime.h>

#include "buf.h"
#include "log.h"
#include "outbox/notify.h"
#include "text.h"
#include "xmalloc.h"

#define NOTIFY_TMPL_MAX	(64 * 1024)

static const char *notify_builtin[2][2] = {
	[NOTIFY_SIGNUP] = {
	"Hello,\n\n"
	"you have received a secure message.\n"
	"{{#sender}}From: {{sender}}\n{{/sender}}"
	"{{#subject}}Subject: {{subject}}\n{{/subject}}"
	"\nTo read it, create your account on the secure mail portal:\n\n"
	"{{link}}\n\n"
	"The link can be used once and expires. If you did not expect a "
	"message, ignore this mail.\n",

	"<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"></head><body>\n"
	"<p>Hello,</p>\n<p>you have received a secure message.</p>\n"
	"{{#sender}}<p>From: {{sender}}</p>\n{{/sender}}"
	"{{#subject}}<p>Subject: {{subject}}</p>\n{{/subject}}"
	"<p>To read it, create your account on the secure mail portal:</p>\n"
	"<p><a href=\"{{link}}\">{{link}}</a></p>\n"
	"<p>The link can be used once and expires. If you did not expect a "
	"message, ignore this mail.</p>\n</body></html>\n",
	},
	[NOTIFY_NEWMSG] = {
	"Hello,\n\n"
	"a new secure message is waiting for you.\n"
	"{{#sender}}From: {{sender}}\n{{/sender}}"
	"{{#subject}}Subject: {{subject}}\n{{/subject}}"
	"\nSign in to read it:\n\n{{link}}\n",

	"<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"></head><body>\n"
	"<p>Hello,</p>\n<p>a new secure message is waiting for you.</p>\n"
	"{{#sender}}<p>From: {{sender}}</p>\n{{/sender}}"
	"{{#subject}}<p>Subject: {{subject}}</p>\n{{/subject}}"
	"<p>Sign in to read it: <a href=\"{{link}}\">{{link}}</a></p>\n"
	"</body></html>\n",
	},
};

static const char *notify_files[2][2] = {
	[NOTIFY_SIGNUP] = { "signup.txt", "signup.html" },
	[NOTIFY_NEWMSG] = { "newmsg.txt", "newmsg.html" },
};

/* Appends a value as one line, escaped for HTML when html is set. */
static int
notify_put_value(struct buf *b, const char *v, int html)
{
	if (v == NULL)
		return 0;
	return text_escape(b, v, strlen(v), TEXT_ESC_LINE |
	    (html ? TEXT_ESC_HTML : 0));
}

/* Sections: text shown only when the flag is set. */
static const struct {
	const char	*open, *close;
	size_t		 flag;	/* offset of the int in notify_vars */
} notify_sections[] = {
	{ "{{#sender}}", "{{/sender}}",
	    offsetof(struct notify_vars, show_sender) },
	{ "{{#subject}}", "{{/subject}}",
	    offsetof(struct notify_vars, show_details) },
	{ "{{#details}}", "{{/details}}",
	    offsetof(struct notify_vars, show_details) },
};

char *
notify_expand(const char *t, const struct notify_conf *nc,
    const struct notify_vars *v, int html)
{
	struct buf b;
	const char *p, *end, *close;
	size_t i, n;
	int rv = 0;

	buf_init(&b, NOTIFY_BODY_MAX);
	while (rv == 0 && (p = strstr(t, "{{")) != NULL) {
		if ((rv = buf_put(&b, t, p - t)) == -1)
			break;
		if ((end = strstr(p, "}}")) == NULL)
			break;
		end += 2;
		n = (size_t)(end - p);
#define NOTIFY_IS(s) (n == strlen(s) && strncmp(p, s, n) == 0)
		if (NOTIFY_IS("{{link}}"))
			rv = notify_put_value(&b, v->link, html);
		else if (NOTIFY_IS("{{base_url}}"))
			rv = notify_put_value(&b, nc->base_url, html);
		else if (NOTIFY_IS("{{recipient}}"))
			rv = notify_put_value(&b, v->rcpt, html);
		else if (NOTIFY_IS("{{sender}}"))
			rv = notify_put_value(&b, v->show_sender ? v->orig_from :
			    NULL, html);
		else if (NOTIFY_IS("{{subject}}"))
			rv = notify_put_value(&b, v->show_details ?
			    v->orig_subject : NULL, html);
		else {
			for (i = 0; i < sizeof(notify_sections) /
			    sizeof(notify_sections[0]); i++) {
				if (NOTIFY_IS(notify_sections[i].open)) {
					if (*(const int *)((const char *)v +
					    notify_sections[i].flag))
						break;
					close = strstr(end,
					    notify_sections[i].close);
					end = close ? close +
					    strlen(notify_sections[i].close) :
					    end + strlen(end);
					break;
				}
				if (NOTIFY_IS(notify_sections[i].close))
					break;
			}
			/* Not a placeholder: kept as written. */
			if (i == sizeof(notify_sections) /
			    sizeof(notify_sections[0]))
				rv = buf_put(&b, p, n);
		}
#undef NOTIFY_IS
		t = end;
	}
	if (rv == 0)
		rv = buf_puts(&b, t);
	if (rv == -1) {
		buf_free(&b);
		return NULL;
	}
	return buf_finish(&b);
}

static char *
notify_template(const struct notify_conf *nc, enum notify_kind k, int html)
{
	char *path, *buf;
	FILE *f;
	size_t n;

	if (nc->template_dir == NULL)
		return xstrdup(notify_builtin[k][html]);
	xasprintf(&path, "%s/%s", nc->template_dir, notify_files[k][html]);
	if ((f = fopen(path, "r")) == NULL) {
		if (errno != ENOENT)
			log_warn("notify: %s, using the built-in template",
			    path);
		free(path);
		return xstrdup(notify_builtin[k][html]);
	}
	buf = xmalloc(NOTIFY_TMPL_MAX + 1);
	n = fread(buf, 1, NOTIFY_TMPL_MAX, f);
	buf[n] = '\0';
	fclose(f);
	free(path);
	return buf;
}

/*
 * s cleaned for display as one line: no controls, bidi or zero-width
 * characters, none of drop, runs of spaces made one, trimmed, and cut to
 * max bytes. Caller frees.
 */
static char *
notify_clean(const char *s, const char *drop, size_t max)
{
	struct buf b, o;
	char *r;
	size_t i, len = strlen(s);

	/*
	 * Only the start matters: a little more than max, so that a cut is
	 * seen (and marked) below. Cleaning can triple a byte (U+FFFD).
	 */
	if (len > 4 * max)
		len = 4 * max;
	buf_init(&b, 3 * len + 16);
	buf_init(&o, 3 * len + 16);
	(void)text_escape(&b, s, len, TEXT_ESC_LINE | TEXT_ESC_NOBIDI);
	for (i = 0; i < b.len; i++) {
		char c = b.data[i];

		if (strchr(drop, c) != NULL && c != '\0')
			continue;
		if (c == ' ' && (o.len == 0 || o.data[o.len - 1] == ' '))
			continue;
		(void)buf_put(&o, &c, 1);
	}
	while (o.len > 0 && o.data[o.len - 1] == ' ')
		o.data[--o.len] = '\0';
	buf_free(&b);
	r = buf_finish(&o);
	text_truncate(r, max);
	return r;
}

char *
notify_sender_text(const char *raw)
{
	InternetAddressList *l;
	InternetAddress *ia;
	const char *name, *addr;
	char *n = NULL, *a = NULL, *r = NULL;

	if (raw == NULL || (l = internet_address_list_parse(NULL, raw)) == NULL)
		return NULL;
	if (internet_address_list_length(l) > 0 &&
	    INTERNET_ADDRESS_IS_MAILBOX(ia = internet_address_list_get_address(
	    l, 0)) && (addr = internet_address_mailbox_get_addr(
	    INTERNET_ADDRESS_MAILBOX(ia))) != NULL) {
		/* A name can be cut; an address only shown whole. */
		a = notify_clean(addr, "<>\" ", NOTIFY_ADDR_MAX + 1);
		if (*a == '\0' || strlen(a) > NOTIFY_ADDR_MAX)
			goto done;
		if ((name = internet_address_get_name(ia)) != NULL)
			n = notify_clean(name, "<>\"", NOTIFY_NAME_MAX);
		if (n != NULL && *n != '\0' && strcmp(n, a) != 0)
			xasprintf(&r, "%s <%s>", n, a);
		else
			r = xstrdup(a);
	}
done:
	free(n);
	free(a);
	g_object_unref(l);
	return r;
}

static GMimeObject *
notify_part(const char *subtype, const char *text)
{
	GMimeTextPart *t = g_mime_text_part_new_with_subtype(subtype);
	GMimeStream *st;
	GMimeDataWrapper *dw;

	/*
	 * The bytes as they are: g_mime_text_part_set_text() would convert
	 * text that fits Latin-1 to it, and the part says UTF-8 (so does the
	 * HTML's meta).
	 */
	st = g_mime_stream_mem_new_with_buffer(text, strlen(text));
	dw = g_mime_data_wrapper_new_with_stream(st,
	    GMIME_CONTENT_ENCODING_DEFAULT);
	g_mime_part_set_content(GMIME_PART(t), dw);
	g_object_unref(dw);
	g_object_unref(st);
	g_mime_text_part_set_charset(t, "utf-8");
	g_mime_part_set_content_encoding(GMIME_PART(t),
	    GMIME_CONTENT_ENCODING_QUOTEDPRINTABLE);
	return GMIME_OBJECT(t);
}

int
notify_build(const struct notify_conf *nc, enum notify_kind k,
    const struct notify_vars *in, FILE *out)
{
	struct notify_vars v = *in;
	GMimeMessage *m;
	GMimeMultipart *alt;
	GMimeObject *txt, *html;
	GMimeStream *st;
	GMimeFormatOptions *fo;
	GDateTime *now;
	char *tmpl, *tbody, *hbody, *from = NULL, *subj = NULL, *s, *mid;
	int rc = 0;

	if (v.show_sender) {
		from = notify_sender_text(v.orig_from);
		/* No usable From: the section goes, not just its value. */
		v.show_sender = from != NULL;
		v.orig_from = from;
	}
	if (v.show_details) {
		if (v.orig_subject != NULL) {
			char *dec = g_mime_utils_header_decode_text(NULL,
			    v.orig_subject);

			subj = notify_clean(dec ? dec : "", "",
			    NOTIFY_SUBJECT_MAX);
			g_free(dec);
		}
		v.orig_subject = subj ? subj : "";
	}
	tmpl = notify_template(nc, k, 0);
	tbody = notify_expand(tmpl, nc, &v, 0);
	free(tmpl);
	tmpl = notify_template(nc, k, 1);
	hbody = notify_expand(tmpl, nc, &v, 1);
	free(tmpl);
	if (tbody == NULL || hbody == NULL) {
		log_warnx("notify: the notification to %s would exceed %d "
		    "bytes, not built", v.rcpt, NOTIFY_BODY_MAX);
		free(tbody);
		free(hbody);
		free(from);
		free(subj);
		return -1;
	}

	m = g_mime_message_new(TRUE);
	g_mime_message_add_mailbox(m, GMIME_ADDRESS_TYPE_FROM, nc->sender_name,
	    nc->sender);
	g_mime_message_add_mailbox(m, GMIME_ADDRESS_TYPE_TO, NULL, v.rcpt);
	if (v.show_details && subj != NULL && *subj != '\0')
		xasprintf(&s, "Secure message: %s", subj);
	else
		s = xstrdup(k == NOTIFY_SIGNUP ? "You have received a secure "
		    "message" : "New secure message");
	g_mime_message_set_subject(m, s, "utf-8");
	free(s);
	now = g_date_time_new_now_local();
	g_mime_message_set_date(m, now);
	g_date_time_unref(now);
	mid = g_mime_utils_generate_message_id(nc->hostname);
	g_mime_message_set_message_id(m, mid);
	g_free(mid);
	g_mime_object_set_header(GMIME_OBJECT(m), "Auto-Submitted",
	    "auto-generated", NULL);

	txt = notify_part("plain", tbody);
	html = notify_part("html", hbody);
	free(tbody);
	free(hbody);

	alt = g_mime_multipart_new_with_subtype("alternative");
	g_mime_multipart_add(alt, txt);
	g_mime_multipart_add(alt, html);
	g_object_unref(txt);
	g_object_unref(html);
	g_mime_message_set_mime_part(m, GMIME_OBJECT(alt));
	g_object_unref(alt);

	fo = g_mime_format_options_new();
	g_mime_format_options_set_newline_format(fo, GMIME_NEWLINE_FORMAT_DOS);
	st = g_mime_stream_file_new(out);
	g_mime_stream_file_set_owner(GMIME_STREAM_FILE(st), FALSE);
	if (g_mime_object_write_to_stream(GMIME_OBJECT(m), fo, st) == -1 ||
	    g_mime_stream_flush(st) == -1 || fflush(out) == EOF) {
		log_warn("notify: writing the notification");
		rc = -1;
	}
	g_object_unref(st);
	g_mime_format_options_free(fo);
	g_object_unref(m);
	free(from);
	free(subj);
	return rc;
}
