/*
 * Webmail Messenger's outgoing side: replies, new messages and read
 * receipts, built with GMime and queued in the outbox for the reply relay
 * (the organisation's own mail server), with a copy in the user's Sent
 * folder.
 *
 * SECURITY: input is form fields and uploaded files from the browser
 * (recipients, subject, text, attachments), all bounded by web_form and
 * the reply {} limits, and the stored message being answered. The portal
 * must never relay to the world: every recipient must be in the
 * reply-allowed-domains property, or nothing is sent.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <gmime/gmime.h>

#include "addr.h"
#include "log.h"
#include "store/store.h"
#include "store/store_pdf.h"
#include "web/web_compose.h"
#include "web/web_mail.h"
#include "web/web_pages.h"
#include "web/web_routes.h"
#include "web/web_seal.h"
#include "xmalloc.h"

#define WEB_COMPOSE_MAX_RCPTS	50
#define WEB_COMPOSE_MAX_SUBJECT	500
#define WEB_COMPOSE_MAX_REFS	20	/* References kept from the original */
#define WEB_COMPOSE_MAX_QUOTE	(256 * 1024)

struct web_compose {
	char		*rcpts[WEB_COMPOSE_MAX_RCPTS];
	size_t		 nrcpts;
	InternetAddressList *to, *cc;
};

int
web_compose_allowed(const struct web_req *r, int reply)
{
	return reply ? r->can_reply : r->can_compose;
}

/* 1 when addr's domain is in the comma-separated list allowed. */
static int
web_compose_domain_ok(const char *allowed, const char *addr)
{
	char dom[ADDR_MAX], *list, *tok, *save = NULL;
	int ok = 0;

	if (allowed == NULL || addr_domain_of(addr, dom, sizeof(dom)) == -1)
		return 0;
	list = xstrdup(allowed);
	for (tok = strtok_r(list, ",", &save); tok != NULL && !ok;
	    tok = strtok_r(NULL, ",", &save)) {
		size_t len;

		tok += strspn(tok, " \t");
		len = strcspn(tok, " \t");
		ok = len > 0 && strlen(dom) == len &&
		    strncasecmp(tok, dom, len) == 0;
	}
	free(list);
	return ok;
}

/* Message-IDs from mail go back into headers: no controls, spaces, <>. */
static int
web_compose_id_ok(const char *id)
{
	size_t len = id ? strlen(id) : 0;

	if (len == 0 || len > 250)
		return 0;
	for (; *id; id++)
		if ((unsigned char)*id <= ' ' || *id == '<' || *id == '>' ||
		    (unsigned char)*id >= 0x7f)
			return 0;
	return 1;
}

static void
web_compose_free(struct web_compose *c)
{
	for (size_t i = 0; i < c->nrcpts; i++)
		free(c->rcpts[i]);
	if (c->to)
		g_object_unref(c->to);
	if (c->cc)
		g_object_unref(c->cc);
	memset(c, 0, sizeof(*c));
}

/*
 * 1 when a parsed recipient is a plain mailbox that every relay reads the
 * same way. Refused: '%' and '!' in the local part (old relay routing:
 * "victim%evil.test@corp.example" and "evil.test!victim@corp.example" may
 * go on to evil.test) and a quoted local part holding '@'
 * ("\"victim@evil.test\"@corp.example"), which a careless hop splits at
 * the first '@'.
 */
static int
web_compose_rcpt_ok(const struct addr *pa)
{
	return strpbrk(pa->local, "%!@") == NULL && pa->local[0] != '\0' &&
	    pa->domain[0] != '[';
}

/*
 * A source route ("<@hop.example:victim@corp.example>") anywhere in a
 * field: GMime drops the route silently, we refuse the field instead.
 */
static int
web_compose_has_route(const char *value)
{
	for (const char *p = value; (p = strchr(p, '<')) != NULL; p++) {
		const char *q = p + 1 + strspn(p + 1, " \t\r\n");

		if (*q == '@')
			return 1;
	}
	return 0;
}

/*
 * Adds the addresses of one form field to c. 0, or -1 with *bad set to
 * the offending text (caller frees) and *key to the message.
 */
static int
web_compose_parse_rcpts(struct web_req *r, const char *value,
    InternetAddressList **out, struct web_compose *c, const char *allowed,
    char **bad, const char **key)
{
	InternetAddressList *l;
	int n;

	*out = internet_address_list_new();
	if (value == NULL || value[strspn(value, " \t\r\n,")] == '\0')
		return 0;
	if (web_compose_has_route(value) ||
	    (l = internet_address_list_parse(NULL, value)) == NULL) {
		*bad = xstrdup(value);
		*key = "compose.bad_rcpt";
		return -1;
	}
	n = internet_address_list_length(l);
	for (int i = 0; i < n; i++) {
		InternetAddress *ia = internet_address_list_get_address(l, i);
		const char *a, *why;
		struct addr pa;

		if (!INTERNET_ADDRESS_IS_MAILBOX(ia) ||
		    (a = internet_address_mailbox_get_addr(
		    INTERNET_ADDRESS_MAILBOX(ia))) == NULL ||
		    addr_parse(a, 0, &pa, &why) == -1 ||
		    !web_compose_rcpt_ok(&pa)) {
			char *s = internet_address_to_string(ia, NULL, FALSE);

			*bad = xstrdup(s ? s : value);
			g_free(s);
			*key = "compose.bad_rcpt";
			g_object_unref(l);
			return -1;
		}
		if (!web_compose_domain_ok(allowed, a)) {
			*bad = xstrdup(a);
			*key = "compose.not_allowed";
			log_info("web: %s may not write to %s (not in "
			    "reply-allowed-domains)", r->email, a);
			g_object_unref(l);
			return -1;
		}
		if (c->nrcpts == WEB_COMPOSE_MAX_RCPTS) {
			*bad = xstrdup(a);
			*key = "compose.bad_rcpt";
			g_object_unref(l);
			return -1;
		}
		c->rcpts[c->nrcpts++] = xstrdup(a);
		internet_address_list_add(*out, ia);
	}
	g_object_unref(l);
	return 0;
}

/* --- the form ---------------------------------------------------------- */

/* An optional text field (web_page_input makes its fields required). */
static void
web_compose_input(struct web_req *r, const char *name, const char *key,
    const char *value)
{
	web_buf_addf(&r->out, "<p class=\"field\"><label for=\"f-%s\">",
	    name);
	web_page_t(r, key);
	web_buf_addf(&r->out, "</label>\n<input id=\"f-%s\" name=\"%s\" "
	    "type=\"text\" autocomplete=\"off\" value=\"", name, name);
	if (value != NULL)
		web_page_text(r, value);
	web_buf_adds(&r->out, "\"></p>\n");
}

static void
web_compose_page(struct web_req *r, int status, const char *notice,
    const char *detail, int64_t reply, const char *pdf, const char *to,
    const char *cc, const char *subject, const char *body)
{
	r->status = status;
	r->no_store = 1;
	web_page_begin(r, web_text_get(reply || pdf ? "reply.title" :
	    "compose.title"), 1);
	if (notice != NULL) {
		web_buf_adds(&r->out, "<p class=\"error\" role=\"alert\" "
		    "id=\"compose-error\">");
		web_page_text(r, notice);
		if (detail != NULL) {
			web_buf_adds(&r->out, " ");
			web_page_text(r, detail);
		}
		web_buf_adds(&r->out, "</p>\n");
	}
	web_page_form(r, "/compose", "enctype=\"multipart/form-data\"");
	if (reply)
		web_buf_addf(&r->out, "<input type=\"hidden\" name=\"reply\" "
		    "value=\"%lld\">\n", (long long)reply);
	if (pdf != NULL) {
		web_buf_adds(&r->out, "<input type=\"hidden\" name=\"pdf\" "
		    "value=\"");
		web_page_text(r, pdf);
		web_buf_adds(&r->out, "\">\n");
	}
	web_page_input(r, "to", "text", web_text_get("compose.to"), to,
	    "off");
	web_compose_input(r, "cc", "compose.cc", cc);
	web_compose_input(r, "subject", "compose.subject", subject);
	web_buf_adds(&r->out, "<p class=\"field\"><label for=\"f-body\">");
	web_page_t(r, "compose.body");
	web_buf_adds(&r->out, "</label>\n<textarea id=\"f-body\" name=\"body\" "
	    "rows=\"16\">");
	if (body != NULL)
		web_page_text(r, body);
	web_buf_adds(&r->out, "</textarea></p>\n<p class=\"field\"><label "
	    "for=\"f-attachment\">");
	web_page_t(r, "compose.attach");
	web_buf_adds(&r->out, "</label>\n<input type=\"file\" "
	    "id=\"f-attachment\" name=\"attachment\" multiple></p>\n"
	    "<button type=\"submit\" id=\"send\">");
	web_page_t(r, reply || pdf ? "reply.send" : "compose.send");
	web_buf_adds(&r->out, "</button>\n</form>\n");
	web_page_end(r);
}

/* The address a reply goes to: Reply-To, else From. Caller frees. */
static char *
web_compose_reply_addr(GMimeMessage *msg)
{
	InternetAddressList *l = g_mime_message_get_reply_to(msg);

	if (l == NULL || internet_address_list_length(l) == 0)
		l = g_mime_message_get_from(msg);
	for (int i = 0; l != NULL && i < internet_address_list_length(l);
	    i++) {
		InternetAddress *ia = internet_address_list_get_address(l, i);

		if (INTERNET_ADDRESS_IS_MAILBOX(ia))
			return xstrdup(internet_address_mailbox_get_addr(
			    INTERNET_ADDRESS_MAILBOX(ia)));
	}
	return NULL;
}

static char *
web_compose_reply_subject(const char *s)
{
	char *out;

	if (s == NULL)
		s = "";
	if (strncasecmp(s, "re:", 3) == 0)
		return xstrdup(s);
	xasprintf(&out, "Re: %s", s);
	return out;
}

/* "\n\n<who> wrote:\n> line\n> line" from the original's text part. */
static char *
web_compose_quote(struct web_mail *m)
{
	struct web_buf b;
	InternetAddressList *from = g_mime_message_get_from(m->msg);
	char *who = from ? internet_address_list_to_string(from, NULL,
	    FALSE) : NULL;
	char *text = NULL;
	size_t len = 0;

	memset(&b, 0, sizeof(b));
	web_buf_addf(&b, "\n\n%s %s\n", who && *who ? who : "",
	    web_text_get("compose.wrote"));
	g_free(who);
	if (m->plain)
		text = web_mail_part_bytes(m->parts[m->plain - 1], &len, 1,
		    WEB_COMPOSE_MAX_QUOTE);
	if (len > WEB_COMPOSE_MAX_QUOTE)
		len = WEB_COMPOSE_MAX_QUOTE;
	for (size_t i = 0; text != NULL && i < len;) {
		size_t e = i;

		while (e < len && text[e] != '\n')
			e++;
		web_buf_adds(&b, ">");
		if (e > i && text[i] != '>')
			web_buf_adds(&b, " ");
		web_buf_add(&b, text + i, e - i - (e > i &&
		    text[e - 1] == '\r'));
		web_buf_adds(&b, "\n");
		i = e + 1;
	}
	free(text);
	return web_buf_finish(&b);
}

void
web_compose_form(struct web_req *r)
{
	int64_t reply = web_param_id(r, "reply");
	struct web_mail m;
	char *to, *subj, *quote;

	if (web_param(r, "reply") == NULL) {
		if (!web_compose_allowed(r, 0)) {
			web_page_error(r, 404);
			return;
		}
		web_compose_page(r, 200, NULL, NULL, 0, NULL, NULL, NULL, NULL,
		    NULL);
		return;
	}
	if (!web_compose_allowed(r, 1) || reply == -1 ||
	    web_mail_load_id(r, reply, &m) == -1) {
		web_page_error(r, 404);
		return;
	}
	if (m.meta.folder != STORE_FOLDER_INBOX) {
		web_mail_free(&m);
		web_page_error(r, 404);
		return;
	}
	to = web_compose_reply_addr(m.msg);
	subj = web_compose_reply_subject(g_mime_message_get_subject(m.msg));
	quote = web_compose_quote(&m);
	web_compose_page(r, 200, NULL, NULL, reply, NULL, to, NULL, subj,
	    quote);
	free(to);
	free(subj);
	free(quote);
	web_mail_free(&m);
}

/* --- replies to PDF-OTP messages ---------------------------------------- */

/*
 * The signed-in user's PDF-OTP row with token that a reply can answer
 * (it kept the address to reply to): 0, or -1 (not found, another's, no
 * address, or the store failed: all 404 to the browser).
 */
static int
web_compose_pdf_get(struct web_req *r, const char *token,
    struct store_pdf *p)
{
	if (strlen(token) != STORE_PDF_TOKEN_LEN ||
	    strspn(token, "0123456789abcdef") != STORE_PDF_TOKEN_LEN ||
	    store_pdf_get(r->store, r->email, token, p) != 0)
		return -1;
	if (p->reply_to == NULL) {
		store_pdf_free(p);
		return -1;
	}
	return 0;
}

void
web_compose_pdf_form(struct web_req *r, const char *token)
{
	struct store_pdf p;
	char *subj, *dec;

	if (!web_compose_allowed(r, 1) || web_compose_pdf_get(r, token, &p)
	    == -1) {
		web_page_error(r, 404);
		return;
	}
	dec = web_text_header_decode(p.subject ? p.subject : "");
	subj = web_compose_reply_subject(dec);
	/* The content is gone: nothing to quote. */
	web_compose_page(r, 200, NULL, NULL, 0, p.token, p.reply_to, NULL,
	    subj, NULL);
	free(dec);
	free(subj);
	store_pdf_free(&p);
}

/* --- building and queueing --------------------------------------------- */

/*
 * From, Date, Message-ID; for a reply In-Reply-To and References from
 * the original's Message-ID id and raw References field refs (either may
 * be NULL: a stored message, or what a PDF-OTP row kept of one).
 */
static void
web_compose_headers(struct web_req *r, GMimeMessage *out, int is_reply,
    const char *id, const char *raw)
{
	GDateTime *now = g_date_time_new_now_utc();
	char *mid;

	g_mime_message_add_mailbox(out, GMIME_ADDRESS_TYPE_FROM, NULL,
	    r->email);
	g_mime_message_set_date(out, now);
	g_date_time_unref(now);
	mid = g_mime_utils_generate_message_id(r->conf->hostname ?
	    r->conf->hostname : "localhost");
	g_mime_message_set_message_id(out, mid);
	g_free(mid);
	if (is_reply) {
		GMimeReferences *refs = raw ? g_mime_references_parse(NULL,
		    raw) : NULL;
		struct web_buf b;
		char *v;
		int n = refs ? g_mime_references_length(refs) : 0;

		memset(&b, 0, sizeof(b));
		for (int i = n > WEB_COMPOSE_MAX_REFS ? n -
		    WEB_COMPOSE_MAX_REFS : 0; i < n; i++) {
			const char *x = g_mime_references_get_message_id(refs,
			    i);

			if (web_compose_id_ok(x))
				web_buf_addf(&b, "%s<%s>", b.len ? " " : "", x);
		}
		if (refs)
			g_mime_references_free(refs);
		if (web_compose_id_ok(id)) {
			web_buf_addf(&b, "%s<%s>", b.len ? " " : "", id);
			xasprintf(&v, "<%s>", id);
			g_mime_object_set_header(GMIME_OBJECT(out),
			    "In-Reply-To", v, NULL);
			free(v);
		}
		v = web_buf_finish(&b);
		if (*v != '\0')
			g_mime_object_set_header(GMIME_OBJECT(out),
			    "References", v, NULL);
		free(v);
	}
}

static GMimeObject *
web_compose_text_part(const char *text)
{
	GMimePart *p = g_mime_part_new_with_type("text", "plain");
	GMimeStream *st = g_mime_stream_mem_new();
	GMimeDataWrapper *dw;

	/*
	 * Always UTF-8 (g_mime_text_part_set_text would pick a legacy
	 * charset). Browsers send CRLF; the message is written with CRLF.
	 */
	for (const char *s = text ? text : ""; *s; s++)
		if (*s != '\r')
			g_mime_stream_write(st, s, 1);
	g_mime_stream_reset(st);
	dw = g_mime_data_wrapper_new_with_stream(st,
	    GMIME_CONTENT_ENCODING_DEFAULT);
	g_mime_part_set_content(p, dw);
	g_object_unref(dw);
	g_object_unref(st);
	g_mime_object_set_content_type_parameter(GMIME_OBJECT(p), "charset",
	    "utf-8");
	g_mime_part_set_content_encoding(p,
	    GMIME_CONTENT_ENCODING_QUOTEDPRINTABLE);
	return GMIME_OBJECT(p);
}

static int
web_compose_token_ok(const char *s, size_t len)
{
	if (len == 0 || len > 100)
		return 0;
	for (size_t i = 0; i < len; i++)
		if (!g_ascii_isalnum(s[i]) && strchr("!#$&^_.+-", s[i]) ==
		    NULL)
			return 0;
	return 1;
}

/* An uploaded file as a base64 attachment; NULL if it cannot be read. */
static GMimeObject *
web_compose_file_part(const struct web_form_file *f)
{
	const char *ct = f->content_type ? f->content_type : "";
	const char *slash = strchr(ct, '/');
	GMimeStream *st = g_mime_stream_mem_new();
	GMimeDataWrapper *dw;
	GMimePart *p;
	char type[101] = "application", sub[101] = "octet-stream";

	if (slash != NULL && web_compose_token_ok(ct, slash - ct) &&
	    web_compose_token_ok(slash + 1, strlen(slash + 1))) {
		snprintf(type, sizeof(type), "%.*s", (int)(slash - ct), ct);
		snprintf(sub, sizeof(sub), "%s", slash + 1);
	}
	if (f->data != NULL)
		g_mime_stream_write(st, f->data, f->size);
	else {
		char buf[65536];
		off_t off = 0;
		ssize_t n;

		while ((size_t)off < f->size && (n = pread(f->fd, buf,
		    sizeof(buf), off)) > 0) {
			g_mime_stream_write(st, buf, n);
			off += n;
		}
		if ((size_t)off != f->size) {
			log_warn("web: reading an upload");
			g_object_unref(st);
			return NULL;
		}
	}
	g_mime_stream_reset(st);
	p = g_mime_part_new_with_type(type, sub);
	dw = g_mime_data_wrapper_new_with_stream(st,
	    GMIME_CONTENT_ENCODING_DEFAULT);
	g_mime_part_set_content(p, dw);
	g_object_unref(dw);
	g_object_unref(st);
	g_mime_part_set_filename(p, f->filename);
	g_mime_part_set_content_encoding(p, GMIME_CONTENT_ENCODING_BASE64);
	return GMIME_OBJECT(p);
}

static int
web_compose_write(GMimeMessage *msg, FILE *f)
{
	GMimeFormatOptions *fo = g_mime_format_options_new();
	GMimeStream *st = g_mime_stream_file_new(f);
	int rc = 0;

	g_mime_format_options_set_newline_format(fo, GMIME_NEWLINE_FORMAT_DOS);
	g_mime_stream_file_set_owner(GMIME_STREAM_FILE(st), FALSE);
	if (g_mime_object_write_to_stream(GMIME_OBJECT(msg), fo, st) == -1 ||
	    g_mime_stream_flush(st) == -1)
		rc = -1;
	g_object_unref(st);
	g_mime_format_options_free(fo);
	if (fflush(f) == EOF)
		rc = -1;
	return rc;
}

/* msg as a new spool file for the outbox; its path, or NULL (logged). */
static char *
web_compose_spool(struct web_req *r, GMimeMessage *msg, const char *prefix)
{
	char *path;
	FILE *f;
	int fd;

	xasprintf(&path, "%s/%s.XXXXXX", r->conf->spool_dir, prefix);
	if ((fd = mkstemp(path)) == -1 || (f = fdopen(fd, "w")) == NULL) {
		log_warn("web: %s", path);
		if (fd != -1) {
			close(fd);
			unlink(path);
		}
		free(path);
		return NULL;
	}
	if (web_compose_write(msg, f) == -1 || fsync(fileno(f)) == -1) {
		log_warn("web: writing %s", path);
		fclose(f);
		unlink(path);
		free(path);
		return NULL;
	}
	if (fclose(f) == EOF) {
		log_warn("web: writing %s", path);
		unlink(path);
		free(path);
		return NULL;
	}
	return path;
}

/*
 * Keeps msg in the user's Sent folder and queues it for every recipient.
 * 0, STORE_EQUOTA, or -1 (logged).
 */
static int
web_compose_queue(struct web_req *r, GMimeMessage *msg, struct web_compose *c,
    const char *subject, int has_attachments)
{
	struct store_tmp t;
	struct store_msg meta;
	char *to, *spool;
	int64_t id;
	int rc;

	if (store_tmp_create(r->store, &t) == -1)
		return -1;
	if (web_compose_write(msg, t.fp) == -1) {
		log_warn("web: writing the sent copy");
		store_tmp_discard(&t);
		return -1;
	}
	memset(&meta, 0, sizeof(meta));
	meta.folder = STORE_FOLDER_SENT;
	meta.state = STORE_MSG_WEBMAIL;
	meta.mail_from = r->email;
	/* The Sent view lists recipients where the inbox lists senders. */
	to = internet_address_list_to_string(c->to, NULL, TRUE);
	meta.hdr_from = to;
	meta.subject = (char *)g_mime_object_get_header(GMIME_OBJECT(msg),
	    "Subject");
	meta.date = time(NULL);
	meta.has_attachments = has_attachments;
	/* Encrypted storage: sealed as the ingest seals a message. */
	if ((rc = web_seal_msg(r->store, &t, &meta)) == 0)
		rc = store_deliver(r->store, &t, &meta, r->email,
		    web_prop_int(r, "quota"), 0, &id);
	store_tmp_discard(&t);
	g_free(to);
	free(meta.sealed_meta);
	if (rc != 0)
		return rc;
	/* The user wrote it: the Sent copy is never "unread". */
	store_msg_set_unread(r->store, r->email, id, 0);
	if ((spool = web_compose_spool(r, msg, "reply")) == NULL ||
	    store_outbox_add_many(r->store, STORE_OUTBOX_REPLY,
	    (const char *const *)c->rcpts, c->nrcpts, r->email,
	    web_seal_on() ? NULL : subject, spool) == -1) {
		if (spool != NULL)
			unlink(spool);
		free(spool);
		store_msg_delete(r->store, r->email, id);
		return -1;
	}
	free(spool);
	return 0;
}

void
web_compose_send(struct web_req *r)
{
	const char *to = web_param(r, "to"), *cc = web_param(r, "cc");
	const char *subject = web_param(r, "subject");
	const char *body = web_param(r, "body");
	int64_t reply = web_param_id(r, "reply");
	const char *pdf = web_param(r, "pdf");
	int is_reply = web_param(r, "reply") != NULL || pdf != NULL;
	struct web_compose c;
	struct web_mail m;
	struct store_pdf pr;
	GMimeMessage *msg;
	GMimeObject *text;
	char *allowed, *bad = NULL, *subj;
	const char *key = NULL;
	size_t total = 0;
	int nfiles = 0, rc;

	memset(&m, 0, sizeof(m));
	memset(&pr, 0, sizeof(pr));
	if (pdf != NULL) {
		/* A PDF-OTP message: what its row kept, owner's rows only. */
		if (!web_compose_allowed(r, 1) || web_compose_pdf_get(r, pdf,
		    &pr) == -1) {
			web_page_error(r, 404);
			return;
		}
		reply = 0;
	} else if (!web_compose_allowed(r, is_reply) || (is_reply &&
	    (reply == -1 || web_mail_load_id(r, reply, &m) == -1))) {
		web_page_error(r, 404);
		return;
	}
	if (is_reply && pdf == NULL && m.meta.folder != STORE_FOLDER_INBOX) {
		web_mail_free(&m);
		web_page_error(r, 404);
		return;
	}
	for (size_t i = 0; i < r->form.nfiles; i++) {
		if (strcmp(r->form.files[i].field, "attachment") != 0 ||
		    r->form.files[i].size == 0)
			continue;
		nfiles++;
		total += r->form.files[i].size;
	}
	if (nfiles > r->conf->reply_max_attachments ||
	    total > r->conf->reply_max_size) {
		log_info("web: %s: %d attachments, %zu bytes: too large",
		    r->email, nfiles, total);
		web_mail_free(&m);
		store_pdf_free(&pr);
		web_page_error(r, 413);
		return;
	}

	memset(&c, 0, sizeof(c));
	allowed = web_prop(r, "reply-allowed-domains");
	if (web_compose_parse_rcpts(r, to, &c.to, &c, allowed, &bad,
	    &key) == -1 || web_compose_parse_rcpts(r, cc, &c.cc, &c, allowed,
	    &bad, &key) == -1 || c.nrcpts == 0) {
		const char *detail = bad;

		if (key == NULL)
			key = "compose.no_rcpt";
		else if (strcmp(key, "compose.not_allowed") == 0)
			detail = allowed && *allowed ? allowed : NULL;
		if (strcmp(key, "compose.not_allowed") == 0 && (allowed ==
		    NULL || *allowed == '\0'))
			key = "compose.nobody_allowed";
		web_compose_page(r, 400, web_text_get(key), detail,
		    is_reply ? reply : 0, pdf, to, cc, subject, body);
		free(bad);
		free(allowed);
		web_compose_free(&c);
		web_mail_free(&m);
		store_pdf_free(&pr);
		return;
	}
	free(allowed);

	subj = xstrndup(subject ? subject : "", WEB_COMPOSE_MAX_SUBJECT);
	for (char *p = subj; *p; p++)
		if ((unsigned char)*p < ' ')
			*p = ' ';
	msg = g_mime_message_new(TRUE);
	if (pdf != NULL)
		web_compose_headers(r, msg, 1, pr.message_id, pr.refs);
	else
		web_compose_headers(r, msg, is_reply, is_reply ?
		    g_mime_message_get_message_id(m.msg) : NULL, is_reply ?
		    g_mime_object_get_header(GMIME_OBJECT(m.msg),
		    "References") : NULL);
	g_mime_message_set_subject(msg, subj, "utf-8");
	internet_address_list_append(g_mime_message_get_to(msg), c.to);
	internet_address_list_append(g_mime_message_get_cc(msg), c.cc);
	text = web_compose_text_part(body);
	if (nfiles == 0)
		g_mime_message_set_mime_part(msg, text);
	else {
		GMimeMultipart *mp = g_mime_multipart_new_with_subtype("mixed");

		g_mime_multipart_add(mp, text);
		for (size_t i = 0; i < r->form.nfiles; i++) {
			GMimeObject *p;

			if (strcmp(r->form.files[i].field, "attachment") != 0 ||
			    r->form.files[i].size == 0)
				continue;
			if ((p = web_compose_file_part(&r->form.files[i])) ==
			    NULL) {
				g_object_unref(mp);
				g_object_unref(text);
				goto tempfail;
			}
			g_mime_multipart_add(mp, p);
			g_object_unref(p);
		}
		g_mime_message_set_mime_part(msg, GMIME_OBJECT(mp));
		g_object_unref(mp);
	}
	g_object_unref(text);

	rc = web_compose_queue(r, msg, &c, subj, nfiles > 0);
	if (rc == STORE_EQUOTA) {
		web_compose_page(r, 413, web_text_get("compose.quota"), NULL,
		    is_reply ? reply : 0, pdf, to, cc, subject, body);
		goto out;
	}
	if (rc == -1)
		goto tempfail;
	log_info("web: %s sent a %s to %zu recipients", r->email,
	    is_reply ? "reply" : "message", c.nrcpts);
	web_redirect(r, "/inbox?folder=sent&sent=1");
	goto out;
tempfail:
	web_page_tempfail(r);
out:
	g_object_unref(msg);
	free(subj);
	web_compose_free(&c);
	web_mail_free(&m);
	store_pdf_free(&pr);
}

/* --- read receipts ------------------------------------------------------- */

static GMimeMessage *
web_compose_mdn(struct web_req *r, struct web_mail *m, const char *rcpt)
{
	GMimeMessage *msg = g_mime_message_new(TRUE);
	GMimeMultipart *mp = g_mime_multipart_new_with_subtype("report");
	GMimePart *dn = g_mime_part_new_with_type("message",
	    "disposition-notification");
	const char *osubj = g_mime_message_get_subject(m->msg);
	const char *oid = g_mime_message_get_message_id(m->msg);
	GMimeStream *st = g_mime_stream_mem_new();
	GMimeDataWrapper *dw;
	GMimeObject *text;
	struct web_buf b;
	char *s;

	web_compose_headers(r, msg, 1, oid, g_mime_object_get_header(
	    GMIME_OBJECT(m->msg), "References"));
	g_mime_message_add_mailbox(msg, GMIME_ADDRESS_TYPE_TO, NULL, rcpt);
	xasprintf(&s, "%s %s", web_text_get("receipt.subject"),
	    osubj ? osubj : "");
	g_mime_message_set_subject(msg, s, "utf-8");
	free(s);
	g_mime_object_set_header(GMIME_OBJECT(msg), "Auto-Submitted",
	    "auto-replied", NULL);

	memset(&b, 0, sizeof(b));
	web_buf_addf(&b, "%s\n\n%s %s\n", web_text_get("receipt.text"),
	    web_text_get("compose.subject"), osubj ? osubj : "");
	s = web_buf_finish(&b);
	text = web_compose_text_part(s);
	free(s);
	g_mime_multipart_add(mp, text);
	g_object_unref(text);

	/* RFC 8098: opened by the user, reported without asking them. */
	web_buf_addf(&b, "Reporting-UA: %s; Postern Webmail Messenger\r\n"
	    "Final-Recipient: rfc822;%s\r\n", r->conf->hostname ?
	    r->conf->hostname : "localhost", r->email);
	if (web_compose_id_ok(oid))
		web_buf_addf(&b, "Original-Message-ID: <%s>\r\n", oid);
	web_buf_adds(&b, "Disposition: manual-action/MDN-sent-automatically;"
	    " displayed\r\n");
	s = web_buf_finish(&b);
	g_mime_stream_write_string(st, s);
	g_mime_stream_reset(st);
	free(s);
	dw = g_mime_data_wrapper_new_with_stream(st,
	    GMIME_CONTENT_ENCODING_DEFAULT);
	g_mime_part_set_content(dn, dw);
	g_object_unref(dw);
	g_object_unref(st);
	g_mime_part_set_content_encoding(dn, GMIME_CONTENT_ENCODING_7BIT);
	g_mime_multipart_add(mp, GMIME_OBJECT(dn));
	g_object_unref(dn);
	g_mime_object_set_content_type_parameter(GMIME_OBJECT(mp),
	    "report-type", "disposition-notification");
	g_mime_message_set_mime_part(msg, GMIME_OBJECT(mp));
	g_object_unref(mp);
	return msg;
}

int
web_compose_receipt_due(struct web_req *r, struct web_mail *m)
{
	return web_prop_bool(r, "webmail-read-receipt") == 1 &&
	    store_msg_receipt_sent(r->store, r->email, m->meta.id) == 0;
}

void
web_compose_receipt(struct web_req *r, struct web_mail *m)
{
	GMimeMessage *mdn;
	struct addr pa;
	const char *why;
	char *rcpt = NULL, *allowed, *path;
	int rc;

	if (web_prop_bool(r, "webmail-read-receipt") != 1 ||
	    store_msg_receipt_sent(r->store, r->email, m->meta.id) != 0)
		return;
	if (m->meta.mail_from != NULL && *m->meta.mail_from != '\0')
		rcpt = xstrdup(m->meta.mail_from);
	else if ((rcpt = web_compose_reply_addr(m->root)) == NULL)
		return;
	allowed = web_prop(r, "reply-allowed-domains");
	if (addr_parse(rcpt, 0, &pa, &why) == -1 || !web_compose_rcpt_ok(&pa) ||
	    !web_compose_domain_ok(allowed, rcpt)) {
		log_info("web: no read receipt for message %lld of %s: %s is "
		    "not in reply-allowed-domains", (long long)m->meta.id,
		    r->email, rcpt);
		free(allowed);
		free(rcpt);
		return;
	}
	free(allowed);
	mdn = web_compose_mdn(r, m, rcpt);
	path = web_compose_spool(r, mdn, "receipt");
	g_object_unref(mdn);
	if (path == NULL) {
		free(rcpt);
		return;
	}
	rc = store_msg_receipt_queue(r->store, r->email, m->meta.id, rcpt,
	    path);
	if (rc != 0)
		unlink(path);
	else
		log_info("web: read receipt for message %lld of %s queued "
		    "for %s", (long long)m->meta.id, r->email, rcpt);
	free(path);
	free(rcpt);
}
