/*
 * Notification mail; see notify.h. The original From and Subject are
 * peer data from the gateway's side: they are decoded with GMime, escaped
 * for the HTML part, and put in only when the admin enabled it.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <gmime/gmime.h>

#include "log.h"
#include "outbox/notify.h"
#include "xmalloc.h"

#define NOTIFY_TMPL_MAX	(64 * 1024)

static const char *notify_builtin[2][2] = {
	[NOTIFY_SIGNUP] = {
	"Hello,\n\n"
	"you have received a secure message.\n"
	"{{#details}}\nFrom: {{sender}}\nSubject: {{subject}}\n\n{{/details}}"
	"To read it, create your account on the secure mail portal:\n\n"
	"{{link}}\n\n"
	"The link can be used once and expires. If you did not expect a "
	"message, ignore this mail.\n",

	"<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"></head><body>\n"
	"<p>Hello,</p>\n<p>you have received a secure message.</p>\n"
	"{{#details}}<p>From: {{sender}}<br>\nSubject: {{subject}}</p>\n"
	"{{/details}}"
	"<p>To read it, create your account on the secure mail portal:</p>\n"
	"<p><a href=\"{{link}}\">{{link}}</a></p>\n"
	"<p>The link can be used once and expires. If you did not expect a "
	"message, ignore this mail.</p>\n</body></html>\n",
	},
	[NOTIFY_NEWMSG] = {
	"Hello,\n\n"
	"a new secure message is waiting for you.\n"
	"{{#details}}\nFrom: {{sender}}\nSubject: {{subject}}\n\n{{/details}}"
	"Sign in to read it:\n\n{{link}}\n",

	"<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"></head><body>\n"
	"<p>Hello,</p>\n<p>a new secure message is waiting for you.</p>\n"
	"{{#details}}<p>From: {{sender}}<br>\nSubject: {{subject}}</p>\n"
	"{{/details}}"
	"<p>Sign in to read it: <a href=\"{{link}}\">{{link}}</a></p>\n"
	"</body></html>\n",
	},
};

static const char *notify_files[2][2] = {
	[NOTIFY_SIGNUP] = { "signup.txt", "signup.html" },
	[NOTIFY_NEWMSG] = { "newmsg.txt", "newmsg.html" },
};

struct notify_buf {
	char	*s;
	size_t	 len, cap;
};

static void
notify_put(struct notify_buf *b, const char *s, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		b->cap = (b->len + n + 1) * 2;
		b->s = xreallocarray(b->s, b->cap, 1);
	}
	memcpy(b->s + b->len, s, n);
	b->len += n;
	b->s[b->len] = '\0';
}

static void
notify_put_value(struct notify_buf *b, const char *v, int html)
{
	if (v == NULL)
		return;
	for (; *v != '\0'; v++) {
		const char *e = NULL;

		if (html) {
			switch (*v) {
			case '<': e = "&lt;"; break;
			case '>': e = "&gt;"; break;
			case '&': e = "&amp;"; break;
			case '"': e = "&quot;"; break;
			case '\'': e = "&#39;"; break;
			}
		}
		/* A header value never spans lines in the notification. */
		if (*v == '\r' || *v == '\n')
			e = " ";
		if (e != NULL)
			notify_put(b, e, strlen(e));
		else
			notify_put(b, v, 1);
	}
}

char *
notify_expand(const char *t, const struct notify_conf *nc,
    const struct notify_vars *v, int html)
{
	struct notify_buf b = { NULL, 0, 0 };
	const char *p, *end;

	notify_put(&b, "", 0);
	while ((p = strstr(t, "{{")) != NULL) {
		notify_put(&b, t, p - t);
		if ((end = strstr(p, "}}")) == NULL)
			break;
		end += 2;
#define NOTIFY_IS(s) ((size_t)(end - p) == strlen(s) && \
    strncmp(p, s, strlen(s)) == 0)
		if (NOTIFY_IS("{{link}}"))
			notify_put_value(&b, v->link, html);
		else if (NOTIFY_IS("{{base_url}}"))
			notify_put_value(&b, nc->base_url, html);
		else if (NOTIFY_IS("{{recipient}}"))
			notify_put_value(&b, v->rcpt, html);
		else if (NOTIFY_IS("{{sender}}"))
			notify_put_value(&b, v->show_details ? v->orig_from :
			    NULL, html);
		else if (NOTIFY_IS("{{subject}}"))
			notify_put_value(&b, v->show_details ? v->orig_subject :
			    NULL, html);
		else if (NOTIFY_IS("{{#details}}")) {
			if (!v->show_details) {
				const char *close = strstr(end, "{{/details}}");

				end = close ? close + strlen("{{/details}}") :
				    end + strlen(end);
			}
		} else if (!NOTIFY_IS("{{/details}}"))
			notify_put(&b, p, end - p);
#undef NOTIFY_IS
		t = end;
	}
	notify_put(&b, t, strlen(t));
	return b.s;
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

/* Display name (or address) of a raw From value; NULL if none. */
static char *
notify_sender_text(const char *raw)
{
	InternetAddressList *l;
	InternetAddress *ia;
	const char *name;
	char *r = NULL;

	if (raw == NULL || (l = internet_address_list_parse(NULL, raw)) == NULL)
		return NULL;
	if (internet_address_list_length(l) > 0) {
		ia = internet_address_list_get_address(l, 0);
		name = internet_address_get_name(ia);
		if (name != NULL && *name != '\0')
			r = xstrdup(name);
		else if (INTERNET_ADDRESS_IS_MAILBOX(ia))
			r = xstrdup(internet_address_mailbox_get_addr(
			    INTERNET_ADDRESS_MAILBOX(ia)));
	}
	g_object_unref(l);
	return r;
}

static GMimeObject *
notify_part(const char *subtype, const char *text)
{
	GMimeTextPart *t = g_mime_text_part_new_with_subtype(subtype);

	g_mime_text_part_set_text(t, text);
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
	char *tmpl, *body, *from = NULL, *subj = NULL, *s, *mid;
	int rc = 0;

	if (v.show_details) {
		from = notify_sender_text(v.orig_from);
		if (v.orig_subject != NULL)
			subj = g_mime_utils_header_decode_text(NULL,
			    v.orig_subject);
		v.orig_from = from ? from : "";
		v.orig_subject = subj ? subj : "";
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
	for (char *p = s; *p; p++)
		if (*p == '\r' || *p == '\n')
			*p = ' ';
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

	tmpl = notify_template(nc, k, 0);
	body = notify_expand(tmpl, nc, &v, 0);
	txt = notify_part("plain", body);
	free(tmpl);
	free(body);
	tmpl = notify_template(nc, k, 1);
	body = notify_expand(tmpl, nc, &v, 1);
	html = notify_part("html", body);
	free(tmpl);
	free(body);

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
	g_free(subj);
	return rc;
}
