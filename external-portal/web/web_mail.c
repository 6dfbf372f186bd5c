/*
 * Webmail Messenger pages: the inbox, reading a message, its HTML body in
 * a sandboxed frame, attachments, the original as .eml, and deleting.
 * Input: ids and form fields from the browser (a message id of another
 * owner is simply "not found"), and the stored mail itself, written by any
 * Internet sender: parsed with GMime, headers decoded and escaped, HTML
 * through the gumbo sanitiser, attachment names reduced to safe base names
 * and sent with RFC 6266 filename*. Runs on the worker pool.
 *
 * SECURITY: the MIME walk takes a hostile structure. It is bounded in
 * parts (WEB_MAIL_MAX_PARTS) and nesting (WEB_MAIL_MAX_DEPTH), winmail.dat
 * unpacks to at most WEB_TNEF_MAX_FILES, a part path from the browser is
 * parsed with the same bounds, and every answer is a bounded buffer (a
 * page past its limit becomes a 500 page, never unbounded growth). Text
 * reaches a page only through the shared escaper; HTML only through the
 * sanitiser, in a sandboxed frame under its own CSP; downloads are
 * application/octet-stream and never rendered on our origin.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <gmime/gmime.h>

#include "log.h"
#include "store/store.h"
#include "web/web_compose.h"
#include "web/web_mail.h"
#include "web/web_mail_cache.h"
#include "web/web_crypt.h"
#include "web/web_pages.h"
#include "web/web_part.h"
#include "web/web_routes.h"
#include "web/web_sanitize.h"
#include "web/web_tnef.h"
#include "xmalloc.h"

#define WEB_MAIL_MAX_DELETE	500
#define WEB_MAIL_MAX_TEXT	(1024 * 1024)	/* of a text/plain body shown */

void
web_mail_init(void)
{
	web_text_gmime_init();
}

int
web_mail_is_attachment(GMimeObject *o)
{
	GMimeContentDisposition *d = g_mime_object_get_content_disposition(o);

	if (GMIME_IS_MESSAGE_PART(o))
		return 1;
	if (d != NULL && g_mime_content_disposition_is_attachment(d))
		return 1;
	return GMIME_IS_PART(o) &&
	    g_mime_part_get_filename(GMIME_PART(o)) != NULL;
}

static int
web_mail_is_tnef(GMimeObject *o)
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

static ssize_t
web_mail_tnef_read(void *arg, char *buf, size_t len)
{
	return g_mime_stream_read(arg, buf, len);
}

/*
 * The files inside a winmail.dat as parts of their own; 0 when it held
 * none (then the winmail.dat itself stays listed).
 */
static int
web_mail_tnef(struct web_mail *m, GMimeObject *o)
{
	struct web_tnef_file f[WEB_TNEF_MAX_FILES];
	GMimeStream *in;
	int n;

	if (m->no_tnef || (in = web_mail_part_open(o, 0, NULL)) == NULL)
		return 0;
	/* Decoded in chunks straight into the sandboxed parser. */
	n = web_tnef_unpack_sandboxed(web_mail_tnef_read, in,
	    WEB_TNEF_MAX_INPUT, f, WEB_TNEF_MAX_FILES);
	g_object_unref(in);
	if (n == -1) {
		m->tnef_failed = 1;
		return 0;
	}
	for (int i = 0; i < n; i++) {
		GMimePart *p;
		GMimeStream *st;
		GMimeDataWrapper *dw;

		if (m->nparts == WEB_MAIL_MAX_PARTS ||
		    m->nowned == WEB_MAIL_MAX_PARTS)
			break;
		p = g_mime_part_new_with_type("application", "octet-stream");
		g_mime_part_set_filename(p, f[i].name && *f[i].name ?
		    f[i].name : "attachment");
		st = g_mime_stream_mem_new();
		g_mime_stream_write(st, (const char *)f[i].data, f[i].len);
		g_mime_stream_reset(st);
		dw = g_mime_data_wrapper_new_with_stream(st,
		    GMIME_CONTENT_ENCODING_DEFAULT);
		g_mime_part_set_content(p, dw);
		g_object_unref(dw);
		g_object_unref(st);
		m->owned[m->nowned++] = GMIME_OBJECT(p);
		m->parts[m->nparts++] = GMIME_OBJECT(p);
	}
	web_tnef_free(f, n);
	return n;
}

static void
web_mail_walk(struct web_mail *m, GMimeObject *o)
{
	GMimeContentType *ct = g_mime_object_get_content_type(o);

	if (GMIME_IS_MULTIPART(o)) {
		GMimeMultipart *mp = GMIME_MULTIPART(o);
		int n = g_mime_multipart_get_count(mp);

		for (int i = 0; i < n; i++)
			web_mail_walk(m, g_mime_multipart_get_part(mp, i));
		return;
	}
	if (m->nparts == WEB_MAIL_MAX_PARTS)
		return;
	if (web_mail_is_tnef(o) && web_mail_tnef(m, o) > 0)
		return;
	m->parts[m->nparts++] = o;
	if (web_mail_is_attachment(o) || !GMIME_IS_TEXT_PART(o))
		return;
	if (m->html == 0 && g_mime_content_type_is_type(ct, "text", "html"))
		m->html = m->nparts;
	else if (m->plain == 0 &&
	    g_mime_content_type_is_type(ct, "text", "plain"))
		m->plain = m->nparts;
}

static void
web_mail_walk_message(struct web_mail *m, GMimeMessage *msg)
{
	m->msg = msg;
	m->nparts = m->html = m->plain = 0;
	if (g_mime_message_get_mime_part(msg) != NULL)
		web_mail_walk(m, g_mime_message_get_mime_part(msg));
}

void
web_mail_free(struct web_mail *m)
{
	for (int i = 0; i < m->nowned; i++)
		g_object_unref(m->owned[i]);
	m->nowned = 0;
	if (m->root)
		g_object_unref(m->root);
	m->root = m->msg = NULL;
	store_msg_free(&m->meta);
}

/*
 * Narrows m to the message/rfc822 part that sub ("3" or "3.1") names;
 * -1 for anything else.
 */
static int
web_mail_narrow(struct web_mail *m, const char *sub)
{
	const char *p = sub;
	int depth = 0;

	if (strlen(sub) >= sizeof(m->sub))
		return -1;
	while (*p != '\0') {
		long idx = 0;
		GMimeMessage *em;

		if (*p < '1' || *p > '9' || ++depth > WEB_MAIL_MAX_DEPTH)
			return -1;
		while (*p >= '0' && *p <= '9' && idx <= WEB_MAIL_MAX_PARTS)
			idx = idx * 10 + (*p++ - '0');
		if (*p == '.' && p[1] != '\0')
			p++;
		else if (*p != '\0')
			return -1;
		if (idx < 1 || idx > m->nparts ||
		    !GMIME_IS_MESSAGE_PART(m->parts[idx - 1]) ||
		    (em = g_mime_message_part_get_message(
		    GMIME_MESSAGE_PART(m->parts[idx - 1]))) == NULL)
			return -1;
		web_mail_walk_message(m, em);
	}
	snprintf(m->sub, sizeof(m->sub), "%s", sub);
	return 0;
}

int
web_mail_parse_stream(struct web_mail *m, GMimeStream *st)
{
	GMimeParser *p;

	p = g_mime_parser_new_with_stream(st);
	m->root = g_mime_parser_construct_message(p, NULL);
	g_object_unref(p);
	if (m->root == NULL)
		return 1;
	web_mail_walk_message(m, m->root);
	return 0;
}

int
web_mail_narrow_sub(struct web_mail *m, const char *sub)
{
	return web_mail_narrow(m, sub);
}

static int
web_mail_parse(struct web_mail *m)
{
	GMimeStream *st;
	int64_t size;
	int rc;

	/* Sealed files decrypt as they are read (web_crypt.h). */
	if ((st = web_crypt_open(m->meta.path, &size)) == NULL) {
		log_warnx("web: cannot open message %lld of %s",
		    (long long)m->meta.id, m->meta.owner);
		return -1;
	}
	rc = web_mail_parse_stream(m, st);
	g_object_unref(st);
	return rc;
}

int
web_mail_load_id(struct web_req *r, int64_t id, struct web_mail *m)
{
	memset(m, 0, sizeof(*m));
	if (store_msg_get(r->store, r->email, id, &m->meta) != 0)
		return -1;
	if (web_mail_parse(m) != 0) {
		web_mail_free(m);
		return -1;
	}
	return 0;
}

int
web_mail_load(struct web_req *r, struct web_mail *m, int parse)
{
	int64_t id = web_param_id(r, "id");
	const char *sub = web_param(r, "sub");
	int rc;

	memset(m, 0, sizeof(*m));
	if (id == -1) {
		web_page_error(r, 404);
		return -1;
	}
	if ((rc = store_msg_get(r->store, r->email, id, &m->meta)) != 0) {
		web_page_error(r, rc == STORE_NOTFOUND ? 404 : 503);
		return -1;
	}
	if (!parse)
		return 0;
	if ((rc = web_mail_parse(m)) != 0 || (sub != NULL && *sub != '\0' &&
	    web_mail_narrow(m, sub) == -1)) {
		web_mail_free(m);
		web_page_error(r, rc == -1 ? 503 : 404);
		return -1;
	}
	return 0;
}

/* A file in dir that is gone when closed; -1 (logged) on failure. */
static int
web_mail_tmpfd(const char *dir)
{
	char *path;
	int fd;

	if ((fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600)) != -1)
		return fd;
	xasprintf(&path, "%s/part.XXXXXX", dir);
	if ((fd = mkostemp(path, O_CLOEXEC)) == -1)
		log_warn("web: %s", path);
	else
		unlink(path);
	free(path);
	return fd;
}

GMimeStream *
web_mail_part_open(GMimeObject *o, int text, const char *tmpdir)
{
	GMimeDataWrapper *dw;
	GMimeStream *src, *sub, *f;
	GMimeContentEncoding enc;
	GMimeFilter *flt;
	const char *charset;

	if (GMIME_IS_MESSAGE_PART(o)) {
		GMimeMessage *em = g_mime_message_part_get_message(
		    GMIME_MESSAGE_PART(o));
		int fd;

		/* Written out to a file, not to memory: it may be large. */
		if (em == NULL || tmpdir == NULL ||
		    (fd = web_mail_tmpfd(tmpdir)) == -1)
			return NULL;
		f = g_mime_stream_fs_new(fd);
		if (g_mime_object_write_to_stream(GMIME_OBJECT(em), NULL, f) ==
		    -1 || g_mime_stream_flush(f) == -1 ||
		    g_mime_stream_reset(f) == -1) {
			log_warnx("web: cannot write an attached message out");
			g_object_unref(f);
			return NULL;
		}
		return f;
	}
	if (!GMIME_IS_PART(o) ||
	    (dw = g_mime_part_get_content(GMIME_PART(o))) == NULL ||
	    (src = g_mime_data_wrapper_get_stream(dw)) == NULL)
		return NULL;
	/* Its own position over the stored bytes (the parser keeps them). */
	sub = g_mime_stream_substream(src, src->bound_start, src->bound_end);
	f = g_mime_stream_filter_new(sub);
	g_object_unref(sub);
	enc = g_mime_data_wrapper_get_encoding(dw);
	if (enc == GMIME_CONTENT_ENCODING_BASE64 ||
	    enc == GMIME_CONTENT_ENCODING_QUOTEDPRINTABLE ||
	    enc == GMIME_CONTENT_ENCODING_UUENCODE) {
		flt = g_mime_filter_basic_new(enc, FALSE);
		g_mime_stream_filter_add(GMIME_STREAM_FILTER(f), flt);
		g_object_unref(flt);
	}
	if (text && (charset = g_mime_object_get_content_type_parameter(o,
	    "charset")) != NULL && g_ascii_strcasecmp(charset, "utf-8") != 0 &&
	    (flt = g_mime_filter_charset_new(charset, "utf-8")) != NULL) {
		g_mime_stream_filter_add(GMIME_STREAM_FILTER(f), flt);
		g_object_unref(flt);
	}
	return f;
}

char *
web_mail_part_bytes(GMimeObject *o, size_t *len, int text, size_t max)
{
	GMimeStream *st;
	char *out;
	size_t cap = 0, n = 0;
	ssize_t got;

	*len = 0;
	if ((st = web_mail_part_open(o, text, NULL)) == NULL)
		return NULL;
	out = NULL;
	while (n < max) {
		if (cap - n < 2) {
			cap = cap ? cap * 2 : 16384;
			if (cap > max + 1)
				cap = max + 1;
			out = xreallocarray(out, cap, 1);
		}
		if ((got = g_mime_stream_read(st, out + n, cap - 1 - n)) <= 0)
			break;
		n += got;
	}
	if (out == NULL)
		out = xmalloc(1);
	g_object_unref(st);
	out[n] = '\0';
	*len = n;
	return out;
}

int64_t
web_mail_part_size(GMimeObject *o)
{
	GMimeStream *st;
	char buf[16384];
	int64_t n = 0;
	ssize_t got;

	if (GMIME_IS_MESSAGE_PART(o)) {
		GMimeMessage *em = g_mime_message_part_get_message(
		    GMIME_MESSAGE_PART(o));

		if (em == NULL)
			return 0;
		st = g_mime_stream_null_new();
		g_mime_object_write_to_stream(GMIME_OBJECT(em), NULL, st);
		n = GMIME_STREAM_NULL(st)->written;
		g_object_unref(st);
		return n;
	}
	if ((st = web_mail_part_open(o, 0, NULL)) == NULL)
		return 0;
	while ((got = g_mime_stream_read(st, buf, sizeof(buf))) > 0)
		n += got;
	g_object_unref(st);
	return n;
}

static char *
web_mail_part_name(GMimeObject *o, int idx)
{
	const char *n = NULL;
	char *raw = NULL, *safe;

	if (GMIME_IS_PART(o))
		n = g_mime_part_get_filename(GMIME_PART(o));
	if (n == NULL && GMIME_IS_MESSAGE_PART(o)) {
		GMimeMessage *em = g_mime_message_part_get_message(
		    GMIME_MESSAGE_PART(o));
		const char *s = em ? g_mime_message_get_subject(em) : NULL;

		xasprintf(&raw, "%s.eml", s && *s ? s : "message");
		n = raw;
	}
	if (n == NULL) {
		xasprintf(&raw, "part-%d", idx);
		n = raw;
	}
	safe = web_form_safe_filename(n);
	free(raw);
	return safe;
}

/* --- inbox ------------------------------------------------------------------ */

/* n as two digits into p. */
static char *
web_mail_2d(char *p, int n)
{
	*p++ = '0' + n / 10 % 10;
	*p++ = '0' + n % 10;
	return p;
}

/*
 * The <time> of a UTC date. The civil date is computed here rather than
 * by gmtime_r() and strftime(), which take the time zone's lock and
 * format slowly: the inbox shows one per row.
 */
static void
web_mail_date(struct web_req *r, int64_t t)
{
	int64_t days, era, doe, yoe, doy, mp, y, mon, d, sec;
	char iso[32], *p;

	if (t < -30610224000LL || t > 253402300799LL) {
		/* Outside years 1000..9999: as strftime writes them. */
		char buf[64];
		time_t tt = t;
		struct tm tm;

		if (gmtime_r(&tt, &tm) == NULL)
			memset(&tm, 0, sizeof(tm));
		web_buf_adds(&r->out, "<time datetime=\"");
		strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
		web_buf_adds(&r->out, buf);
		web_buf_adds(&r->out, "\">");
		strftime(buf, sizeof(buf), "%Y-%m-%d %H:%M", &tm);
		web_buf_adds(&r->out, buf);
		web_buf_adds(&r->out, " UTC</time>");
		return;
	}
	days = t >= 0 ? t / 86400 : (t - 86399) / 86400;
	sec = t - days * 86400;
	/* Days since 1970-01-01 to year, month, day (proleptic Gregorian). */
	days += 719468;
	era = (days >= 0 ? days : days - 146096) / 146097;
	doe = days - era * 146097;
	yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	mp = (5 * doy + 2) / 153;
	d = doy - (153 * mp + 2) / 5 + 1;
	mon = mp < 10 ? mp + 3 : mp - 9;
	y = yoe + era * 400 + (mon <= 2);
	p = iso;
	p = web_mail_2d(p, (int)(y / 100));
	p = web_mail_2d(p, (int)(y % 100));
	*p++ = '-';
	p = web_mail_2d(p, (int)mon);
	*p++ = '-';
	p = web_mail_2d(p, (int)d);
	*p++ = 'T';
	p = web_mail_2d(p, (int)(sec / 3600));
	*p++ = ':';
	p = web_mail_2d(p, (int)(sec / 60 % 60));
	*p++ = ':';
	p = web_mail_2d(p, (int)(sec % 60));
	*p++ = 'Z';
	*p = '\0';
	web_buf_adds(&r->out, "<time datetime=\"");
	web_buf_adds(&r->out, iso);
	web_buf_adds(&r->out, "\">");
	iso[10] = ' ';
	web_buf_add(&r->out, iso, 16);
	web_buf_adds(&r->out, " UTC</time>");
}

static void
web_mail_decoded(struct web_req *r, const char *raw, const char *empty_key)
{
	char *d = raw ? web_text_header_decode(raw) : NULL;

	if (d == NULL || *d == '\0')
		web_page_t(r, empty_key);
	else
		web_page_text(r, d);
	free(d);
}

void
web_mail_inbox(struct web_req *r)
{
	const char *f = web_param(r, "folder");
	enum store_folder folder = f && strcmp(f, "sent") == 0 ?
	    STORE_FOLDER_SENT : STORE_FOLDER_INBOX;
	const char *fname = folder == STORE_FOLDER_SENT ? "sent" : "inbox";
	int64_t before = web_param_id(r, "before");
	int limit = r->conf->page_size, n;
	struct store_msg *list;
	int64_t used, quota;

	if (before == -1)
		before = 0;
	quota = web_prop_int(r, "quota");
	list = xcalloc(limit + 1, sizeof(*list));
	if ((n = store_msg_page(r->store, r->email, folder, before, limit + 1,
	    list, &used)) == -1) {
		free(list);
		web_page_tempfail(r);
		return;
	}
	/* Encrypted storage: From and Subject open with the file's CEK. */
	for (int i = 0; i < n && i < limit; i++)
		(void)web_crypt_meta(r->store, &list[i]);
	r->no_store = 1;
	web_page_begin(r, web_text_get(folder == STORE_FOLDER_SENT ?
	    "messages.sent" : "messages.title"), 1);
	if (web_param(r, "deleted") != NULL)
		web_page_notice(r, "ok", web_text_get("messages.deleted"));
	if (web_param(r, "sent") != NULL)
		web_page_notice(r, "ok", web_text_get("reply.sent"));
	if (n == 0)
		web_page_notice(r, "muted", web_text_get("messages.empty"));
	else {
		web_page_form(r, "/inbox/delete", NULL);
		web_buf_addf(&r->out, "<input type=\"hidden\" name=\"folder\" "
		    "value=\"%s\">\n<table class=\"msglist\">\n<caption "
		    "class=\"skip\">", fname);
		web_page_t(r, "messages.title");
		web_buf_adds(&r->out, "</caption>\n<thead><tr><th scope=\"col\">"
		    "<span class=\"skip\">");
		web_page_t(r, "messages.select");
		web_buf_adds(&r->out, "</span></th><th scope=\"col\">");
		/* Sent copies keep their recipients in hdr_from. */
		web_page_t(r, folder == STORE_FOLDER_SENT ? "message.to" :
		    "message.from");
		web_buf_adds(&r->out, "</th><th scope=\"col\">");
		web_page_t(r, "message.subject");
		web_buf_adds(&r->out, "</th><th scope=\"col\">");
		web_page_t(r, "message.date");
		web_buf_adds(&r->out, "</th><th scope=\"col\">");
		web_page_t(r, "message.size");
		web_buf_adds(&r->out, "</th></tr></thead>\n<tbody>\n");
		for (int i = 0; i < n && i < limit; i++) {
			struct store_msg *m = &list[i];

			web_buf_adds(&r->out, m->unread ? "<tr class=\"unread\">"
			    : "<tr>");
			web_buf_adds(&r->out, "<td class=\"sel\"><input "
			    "type=\"checkbox\" name=\"id\" value=\"");
			web_buf_addll(&r->out, m->id);
			web_buf_adds(&r->out, "\" id=\"sel-");
			web_buf_addll(&r->out, m->id);
			web_buf_adds(&r->out, "\" aria-label=\"");
			web_page_t(r, "messages.select");
			web_buf_adds(&r->out, "\"></td><td class=\"from\">");
			web_mail_decoded(r, m->hdr_from ? m->hdr_from :
			    m->mail_from, "message.no_sender");
			web_buf_adds(&r->out, "</td><td class=\"subj\"><a "
			    "href=\"/message?id=");
			web_buf_addll(&r->out, m->id);
			web_buf_adds(&r->out, "\">");
			if (m->unread) {
				web_buf_adds(&r->out, "<span class=\"skip\">");
				web_page_t(r, "messages.unread");
				web_buf_adds(&r->out, " </span>");
			}
			web_mail_decoded(r, m->subject, "message.no_subject");
			web_buf_adds(&r->out, "</a>");
			if (m->has_attachments) {
				web_buf_adds(&r->out, " <span class=\"clip\" "
				    "title=\"");
				web_page_t(r, "message.has_attachments");
				/*
				 * A drawn paperclip, not the emoji: many
				 * systems have no emoji font. The text
				 * beside it is what screen readers say.
				 */
				web_buf_adds(&r->out, "\"><svg class=\"icon\" "
				    "aria-hidden=\"true\" focusable=\"false\" "
				    "viewBox=\"0 0 16 16\" width=\"16\" "
				    "height=\"16\"><path d=\"M10.5 4v7a2.5 "
				    "2.5 0 0 1-5 0V3.5a1.5 1.5 0 0 1 3 0V10a.5"
				    " .5 0 0 1-1 0V4\" fill=\"none\" "
				    "stroke=\"currentColor\" stroke-width="
				    "\"1.3\" stroke-linecap=\"round\"/></svg>"
				    "<span class=\"skip\">");
				web_page_t(r, "message.has_attachments");
				web_buf_adds(&r->out, "</span></span>");
			}
			web_buf_adds(&r->out, "</td><td class=\"date\">");
			web_mail_date(r, m->date);
			web_buf_adds(&r->out, "</td><td class=\"size\">");
			web_page_size(r, m->size);
			web_buf_adds(&r->out, "</td></tr>\n");
		}
		web_buf_adds(&r->out, "</tbody></table>\n<div class=\"actions\">"
		    "<button type=\"submit\" class=\"danger\">");
		web_page_t(r, "messages.delete_selected");
		web_buf_adds(&r->out, "</button>");
		if (n > limit)
			web_buf_addf(&r->out, "<a class=\"button\" "
			    "href=\"/inbox?folder=%s&amp;before=%lld\" "
			    "rel=\"next\">%s</a>", fname,
			    (long long)list[limit - 1].id,
			    web_text_get("messages.older"));
		web_buf_adds(&r->out, "</div>\n</form>\n");
	}
	for (int i = 0; i < n; i++)
		store_msg_free(&list[i]);
	free(list);

	web_buf_adds(&r->out, "<p class=\"quota\" id=\"quota\">");
	web_page_t(r, "messages.quota");
	web_buf_adds(&r->out, " ");
	web_page_size(r, used < 0 ? 0 : used);
	if (quota > 0) {
		web_buf_adds(&r->out, " / ");
		web_page_size(r, quota);
		web_buf_addf(&r->out, " (%d%%)", (int)((used < 0 ? 0 : used) *
		    100 / quota));
	}
	web_buf_adds(&r->out, "</p>\n");
	web_page_end(r);
}

void
web_mail_delete_many(struct web_req *r)
{
	const char *f = web_param(r, "folder");
	int count = 0;

	for (size_t i = 0; i < r->form.nfields && count <
	    WEB_MAIL_MAX_DELETE; i++) {
		struct web_form_field *ff = &r->form.fields[i];
		char *end;
		long long id;

		if (strcmp(ff->name, "id") != 0)
			continue;
		id = strtoll(ff->value, &end, 10);
		if (*ff->value == '\0' || *end != '\0' || id <= 0)
			continue;
		if (store_msg_delete_webmail(r->store, r->email, id) == -1) {
			web_page_tempfail(r);
			return;
		}
		web_mail_cache_drop(id);
		count++;
	}
	log_info("web: %s deleted %d messages", r->email, count);
	web_redirect(r, f && strcmp(f, "sent") == 0 ?
	    "/inbox?folder=sent&deleted=1" : "/inbox?deleted=1");
}

void
web_mail_delete(struct web_req *r)
{
	int64_t id = web_param_id(r, "id");
	int rc;

	if (id == -1) {
		web_page_error(r, 404);
		return;
	}
	rc = store_msg_delete_webmail(r->store, r->email, id);
	if (rc == 0)
		web_mail_cache_drop(id);
	if (rc == STORE_NOTFOUND) {
		web_page_error(r, 404);
		return;
	}
	if (rc == -1) {
		web_page_tempfail(r);
		return;
	}
	log_info("web: %s deleted message %lld", r->email, (long long)id);
	web_redirect(r, "/inbox?deleted=1");
}

/* --- reading ---------------------------------------------------------------- */

static void
web_mail_addr_row(struct web_req *r, GMimeMessage *msg,
    GMimeAddressType type, const char *key)
{
	InternetAddressList *l = g_mime_message_get_addresses(msg, type);
	char *s;

	if (l == NULL || internet_address_list_length(l) == 0)
		return;
	s = internet_address_list_to_string(l, NULL, FALSE);
	web_buf_adds(&r->out, "<dt>");
	web_page_t(r, key);
	web_buf_adds(&r->out, "</dt><dd>");
	web_page_text(r, s ? s : "");
	web_buf_adds(&r->out, "</dd>\n");
	g_free(s);
}

/* The date of an embedded message, or of the stored one. */
static int64_t
web_mail_msg_date(struct web_mail *m)
{
	GDateTime *d;

	if (m->msg == m->root || (d = g_mime_message_get_date(m->msg)) ==
	    NULL)
		return m->meta.date;
	return g_date_time_to_unix(d);
}

static void
web_mail_actions(struct web_req *r, struct web_mail *m, const char *sfx)
{
	web_buf_adds(&r->out, "<div class=\"actions\">");
	if (m->sub[0] != '\0') {
		/* An attached message: back to the one that carries it. */
		web_buf_addf(&r->out, "<a class=\"button\" href=\"/message?"
		    "id=%lld\">", (long long)m->meta.id);
		web_page_t(r, "message.back");
		web_buf_adds(&r->out, "</a></div>\n");
		return;
	}
	web_page_form(r, "/message/delete", "class=\"inline\"");
	web_buf_addf(&r->out, "<input type=\"hidden\" name=\"id\" "
	    "value=\"%lld\"><button type=\"submit\" class=\"danger\">",
	    (long long)m->meta.id);
	web_page_t(r, "message.delete");
	web_buf_addf(&r->out, "</button></form><a class=\"button\" "
	    "href=\"/message/eml?id=%lld%s\" download>", (long long)m->meta.id,
	    sfx);
	web_page_t(r, "message.original");
	web_buf_adds(&r->out, "</a>");
	if (m->meta.folder == STORE_FOLDER_INBOX && web_compose_allowed(r, 1)) {
		web_buf_addf(&r->out, "<a class=\"button\" id=\"reply\" "
		    "href=\"/compose?reply=%lld\">", (long long)m->meta.id);
		web_page_t(r, "reply.title");
		web_buf_adds(&r->out, "</a>");
	}
	web_buf_adds(&r->out, "</div>\n");
}

static void
web_mail_attachments(struct web_req *r, struct web_mail *m, int shown,
    const char *sfx)
{
	int any = 0;

	web_buf_adds(&r->out, "<section aria-labelledby=\"h-att\"><h2 "
	    "id=\"h-att\">");
	web_page_t(r, "message.attachments");
	web_buf_adds(&r->out, "</h2>\n");
	if (m->tnef_failed) {
		/* The winmail.dat stays listed for download as it is. */
		web_buf_adds(&r->out, "<p class=\"error\" role=\"alert\" "
		    "id=\"tnef-error\">");
		web_page_t(r, "error.internal");
		web_buf_adds(&r->out, "</p>\n");
	}
	web_buf_adds(&r->out, "<ul class=\"attachments\">\n");
	for (int i = 0; i < m->nparts; i++) {
		GMimeObject *o = m->parts[i];
		char *name, *type;

		if (i + 1 == shown || i + 1 == m->plain ||
		    (!web_mail_is_attachment(o) &&
		    g_mime_object_get_content_id(o) != NULL))
			continue;
		any = 1;
		type = g_mime_content_type_get_mime_type(
		    g_mime_object_get_content_type(o));
		name = web_mail_part_name(o, i + 1);
		web_buf_addf(&r->out, "<li><a href=\"/message/part?id=%lld&amp;"
		    "part=%d%s\" download>", (long long)m->meta.id, i + 1, sfx);
		web_page_text(r, name);
		web_buf_adds(&r->out, "</a> <span class=\"muted\">(");
		web_page_text(r, type);
		web_buf_adds(&r->out, ", ");
		web_page_size(r, web_mail_part_size(o));
		web_buf_adds(&r->out, ")</span>");
		if (GMIME_IS_MESSAGE_PART(o) && strlen(m->sub) + 8 <
		    WEB_MAIL_SUB_MAX) {
			web_buf_addf(&r->out, " <a class=\"open-message\" "
			    "href=\"/message?id=%lld&amp;sub=%s%s%d\">",
			    (long long)m->meta.id, m->sub, m->sub[0] ? "." : "",
			    i + 1);
			web_page_t(r, "message.open");
			web_buf_adds(&r->out, "</a>");
		}
		web_buf_adds(&r->out, "</li>\n");
		free(name);
		g_free(type);
	}
	if (!any) {
		web_buf_adds(&r->out, "<li class=\"muted\">");
		web_page_t(r, "attachment.none");
		web_buf_adds(&r->out, "</li>\n");
	}
	web_buf_adds(&r->out, "</ul></section>\n");
}

/* The HTML body: a sandboxed frame, and the images notice. */
static void
web_mail_frame(struct web_req *r, int64_t id, const char *sfx, int images)
{
	if (!images) {
		web_buf_addf(&r->out, "<p class=\"muted\">%s "
		    "<a href=\"/message?id=%lld%s&amp;images=1\">%s</a>"
		    "</p>\n", web_text_get("html.images_blocked"),
		    (long long)id, sfx, web_text_get("html.show_images"));
	}
	web_buf_addf(&r->out, "<iframe class=\"html-body\" sandbox "
	    "src=\"/message/body?id=%lld%s%s\" title=\"", (long long)id, sfx,
	    images ? "&amp;images=1" : "");
	web_page_t(r, "message.body");
	web_buf_adds(&r->out, "\"></iframe>\n");
}

/* A copy of bytes from..to of the page so far. */
static char *
web_mail_piece(struct web_req *r, size_t from, size_t to)
{
	char *p = xmalloc(to - from + 1);

	memcpy(p, r->out.data + from, to - from);
	p[to - from] = '\0';
	return p;
}

/*
 * The page of a stored message from its cached rendering; 0 when
 * answered (also with 404/503), 1 when it must be rendered.
 */
static int
web_mail_read_cached(struct web_req *r)
{
	struct web_mail_render rd;
	struct web_mail m;
	const char *title;

	if (web_mail_load(r, &m, 0) == -1)
		return 0;
	/* A read receipt to send needs the parsed message. */
	if ((m.meta.folder == STORE_FOLDER_INBOX &&
	    web_compose_receipt_due(r, &m)) ||
	    web_mail_cache_get(m.meta.id, r->email, m.meta.path, &rd) == -1) {
		web_mail_free(&m);
		return 1;
	}
	r->no_store = 1;
	if (m.meta.unread)
		store_msg_set_unread(r->store, r->email, m.meta.id, 0);
	title = rd.title != NULL && *rd.title != '\0' ? rd.title :
	    web_text_get("message.no_subject");
	web_page_begin(r, title, 1);
	web_buf_adds(&r->out, rd.head);
	web_mail_actions(r, &m, "");
	if (rd.html)
		web_mail_frame(r, m.meta.id, "", web_param(r, "images") != NULL);
	else
		web_buf_adds(&r->out, rd.body);
	web_buf_adds(&r->out, rd.att);
	web_page_end(r);
	web_mail_render_free(&rd);
	web_mail_free(&m);
	return 0;
}

void
web_mail_read(struct web_req *r)
{
	struct web_mail m;
	struct web_mail_render rd;
	const char *subj, *sub = web_param(r, "sub");
	char sfx[WEB_MAIL_SUB_MAX + 16];
	int images = web_param(r, "images") != NULL;
	int shown = 0;
	size_t h0, h1, b0, b1, a0;

	if ((sub == NULL || *sub == '\0') && web_mail_read_cached(r) == 0)
		return;
	if (web_mail_load(r, &m, 1) == -1)
		return;
	r->no_store = 1;
	if (m.sub[0] == '\0') {
		if (m.meta.unread)
			store_msg_set_unread(r->store, r->email, m.meta.id, 0);
		if (m.meta.folder == STORE_FOLDER_INBOX)
			web_compose_receipt(r, &m);
	}
	snprintf(sfx, sizeof(sfx), "%s%s", m.sub[0] ? "&amp;sub=" : "", m.sub);
	subj = g_mime_message_get_subject(m.msg);
	web_page_begin(r, subj && *subj ? subj :
	    web_text_get("message.no_subject"), 1);
	h0 = r->out.len;
	web_buf_adds(&r->out, "<dl class=\"headers\">\n");
	web_mail_addr_row(r, m.msg, GMIME_ADDRESS_TYPE_FROM, "message.from");
	web_mail_addr_row(r, m.msg, GMIME_ADDRESS_TYPE_TO, "message.to");
	web_mail_addr_row(r, m.msg, GMIME_ADDRESS_TYPE_CC, "message.cc");
	web_buf_adds(&r->out, "<dt>");
	web_page_t(r, "message.date");
	web_buf_adds(&r->out, "</dt><dd>");
	web_mail_date(r, web_mail_msg_date(&m));
	web_buf_adds(&r->out, "</dd>\n</dl>\n");
	h1 = r->out.len;
	web_mail_actions(r, &m, sfx);
	b0 = r->out.len;

	if (m.html) {
		web_mail_frame(r, m.meta.id, sfx, images);
		shown = m.html;
	} else if (m.plain) {
		size_t len;
		char *t = web_mail_part_bytes(m.parts[m.plain - 1], &len, 1,
		    WEB_MAIL_MAX_TEXT);
		char *h = web_text_plain_to_html(t ? t : "", t ? len : 0);

		web_buf_adds(&r->out, h);
		free(h);
		free(t);
		shown = m.plain;
	}
	b1 = r->out.len;
	web_mail_attachments(r, &m, shown, sfx);
	/* What came from the message alone, for the next reading. */
	if (m.sub[0] == '\0' && !m.tnef_failed && !buf_full(&r->out)) {
		rd.title = subj != NULL ? xstrdup(subj) : NULL;
		rd.head = web_mail_piece(r, h0, h1);
		rd.html = m.html != 0;
		rd.body = rd.html ? xstrdup("") : web_mail_piece(r, b0, b1);
		a0 = b1;
		rd.att = web_mail_piece(r, a0, r->out.len);
		web_mail_cache_put(m.meta.id, r->email, m.meta.path, &rd);
		web_mail_render_free(&rd);
	}
	web_page_end(r);
	web_mail_free(&m);
}

static char *
web_mail_cid_url(void *arg, const char *cid)
{
	struct web_mail *m = arg;
	char *u, *enc;

	enc = g_uri_escape_string(cid, NULL, FALSE);
	xasprintf(&u, "/message/cid?id=%lld%s%s&cid=%s", (long long)m->meta.id,
	    m->sub[0] ? "&sub=" : "", m->sub, enc);
	g_free(enc);
	return u;
}

void
web_mail_body(struct web_req *r)
{
	struct web_sanitize_opts o;
	struct web_mail m;
	int images = web_param(r, "images") != NULL;
	char *html, *clean;
	size_t len;

	if (web_mail_load(r, &m, 1) == -1)
		return;
	if (m.html == 0) {
		web_mail_free(&m);
		web_page_error(r, 404);
		return;
	}
	/* One byte more than the sanitiser takes: it says "too large". */
	html = web_mail_part_bytes(m.parts[m.html - 1], &len, 1,
	    WEB_SANITIZE_MAX_INPUT + 1);
	memset(&o, 0, sizeof(o));
	o.show_remote_images = images;
	o.cid_url = web_mail_cid_url;
	o.cid_arg = &m;
	clean = html ? web_sanitize_html(html, len, &o, NULL) : NULL;
	free(html);
	r->no_store = 1;
	r->frameable = 1;
	/* Second line behind the sanitiser: no script, forms or loads. */
	xasprintf(&r->csp, "default-src 'none'; style-src 'unsafe-inline'; "
	    "img-src 'self' data:%s; frame-ancestors 'self'; form-action "
	    "'none'; base-uri 'none'; sandbox", images ? " https: http:" : "");
	web_buf_adds(&r->out, "<!DOCTYPE html>\n<html><head><meta "
	    "charset=\"utf-8\"><base target=\"_blank\"></head><body>\n");
	if (clean != NULL)
		web_buf_adds(&r->out, clean);
	else
		web_page_t(r, "html.too_large");
	web_buf_adds(&r->out, "\n</body></html>\n");
	free(clean);
	web_mail_free(&m);
}

/* A download read from the store file in chunks (see web_stream). */
struct web_mail_stream {
	struct web_stream	 s;
	struct web_mail		 m;	/* keeps the parsed parts alive */
	GMimeStream		*src;	/* a part, decoded */
	int			 fd;	/* or the stored message itself */
};

static ssize_t
web_mail_stream_read(struct web_stream *s, char *buf, size_t len)
{
	struct web_mail_stream *ms = (struct web_mail_stream *)s;
	ssize_t n;

	if (ms->fd != -1) {
		if ((n = read(ms->fd, buf, len)) == -1)
			log_warn("web: reading %s", ms->m.meta.path);
		return n;
	}
	if ((n = g_mime_stream_read(ms->src, buf, len)) < 0) {
		log_warnx("web: cannot decode a part of message %lld of %s",
		    (long long)ms->m.meta.id, ms->m.meta.owner);
		return -1;
	}
	return n;
}

static void
web_mail_stream_free(struct web_stream *s)
{
	struct web_mail_stream *ms = (struct web_mail_stream *)s;

	if (ms->fd != -1)
		close(ms->fd);
	if (ms->src != NULL)
		g_object_unref(ms->src);
	web_mail_free(&ms->m);
	free(ms);
}

/* A stream that owns *m from here on (m is left empty). */
static struct web_mail_stream *
web_mail_stream_new(struct web_mail *m)
{
	struct web_mail_stream *ms = xcalloc(1, sizeof(*ms));

	ms->s.read = web_mail_stream_read;
	ms->s.free = web_mail_stream_free;
	ms->s.length = -1;
	ms->fd = -1;
	ms->m = *m;
	memset(m, 0, sizeof(*m));
	return ms;
}

/* Sends part idx of m, decoded in chunks; takes m over. */
static void
web_mail_send_part(struct web_req *r, struct web_mail *m, int idx,
    int inline_image)
{
	GMimeObject *o = m->parts[idx - 1];
	struct web_mail_stream *ms;
	GMimeStream *src;
	char *name, *cd, *type;

	if ((src = web_mail_part_open(o, 0, r->conf->spool_dir)) == NULL) {
		web_mail_free(m);
		web_page_error(r, 404);
		return;
	}
	r->no_store = 1;
	name = web_mail_part_name(o, idx);
	type = g_mime_content_type_get_mime_type(
	    g_mime_object_get_content_type(o));
	if (inline_image) {
		r->ctype = xstrdup(type);
		r->csp = xstrdup("default-src 'none'; sandbox");
	} else {
		/* Never rendered on our origin: the browser saves it. */
		r->ctype = xstrdup("application/octet-stream");
		cd = web_text_content_disposition(name);
		web_header(r, "Content-Disposition", cd);
		free(cd);
	}
	free(name);
	g_free(type);
	ms = web_mail_stream_new(m);
	ms->src = src;
	r->stream = &ms->s;
}

void
web_mail_part(struct web_req *r)
{
	struct web_mail m;
	int64_t idx = web_param_id(r, "part");
	int64_t id = web_param_id(r, "id");
	const char *sub = web_param(r, "sub");

	/* A part of the stored message recorded at delivery: no parse. */
	if (id != -1 && (sub == NULL || *sub == '\0') &&
	    web_part_send_recorded(r, id, idx) == 0)
		return;
	if (web_mail_load(r, &m, 1) == -1)
		return;
	if (idx < 1 || idx > m.nparts) {
		web_page_error(r, 404);
		web_mail_free(&m);
	} else
		web_mail_send_part(r, &m, idx, 0);
}

void
web_mail_cid(struct web_req *r)
{
	static const char *const raster[] = { "image/png", "image/gif",
	    "image/jpeg", "image/webp" };
	const char *cid = web_param(r, "cid");
	struct web_mail m;

	if (cid == NULL || web_mail_load(r, &m, 1) == -1) {
		if (cid == NULL)
			web_page_error(r, 404);
		return;
	}
	for (int i = 0; i < m.nparts; i++) {
		const char *c = g_mime_object_get_content_id(m.parts[i]);
		GMimeContentType *ct =
		    g_mime_object_get_content_type(m.parts[i]);
		char *type;
		int ok = 0;

		if (c == NULL || strcmp(c, cid) != 0)
			continue;
		type = g_mime_content_type_get_mime_type(ct);
		for (size_t k = 0; k < sizeof(raster) / sizeof(raster[0]); k++)
			if (g_ascii_strcasecmp(type, raster[k]) == 0)
				ok = 1;
		g_free(type);
		/* Only raster images inline: an SVG could carry script. */
		web_mail_send_part(r, &m, i + 1, ok);
		return;
	}
	web_page_error(r, 404);
	web_mail_free(&m);
}

void
web_mail_eml(struct web_req *r)
{
	struct web_mail_stream *ms;
	struct web_mail m;
	GMimeStream *src;
	int64_t size;
	char *name, *cd;

	if (web_mail_load(r, &m, 0) == -1)
		return;
	if ((src = web_crypt_open(m.meta.path, &size)) == NULL) {
		web_mail_free(&m);
		web_page_tempfail(r);
		return;
	}
	r->no_store = 1;
	r->ctype = xstrdup("application/octet-stream");
	xasprintf(&name, "message-%lld.eml", (long long)m.meta.id);
	cd = web_text_content_disposition(name);
	web_header(r, "Content-Disposition", cd);
	free(cd);
	free(name);
	ms = web_mail_stream_new(&m);
	ms->src = src;
	/* The plaintext size (the store records the file's). */
	ms->s.length = size;
	r->stream = &ms->s;
}
