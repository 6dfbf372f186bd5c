/*
 * PDF Messenger's pages: /pdf/<token>, the one-time password of one PDF
 * (owner only; anyone else gets 404 exactly as for a token that does not
 * exist), and /pdf, the list of the owner's PDF passwords. The password
 * is shown large in monospace, in groups, as text one tap selects
 * (user-select: all) so copying works without JavaScript; a copy button
 * (/static/pdf-copy.js, the only script of the portal, allowed on these
 * pages alone) puts it on the clipboard where scripts run. The pages show
 * the date and the sender, never the content, and a "Reply securely"
 * link to /pdf-reply/<token> (web_compose.c), which also works once the
 * content is gone. All their words are in the web_text table.
 *
 * SECURITY: the token in the path is checked to be hex of its exact
 * length before the store sees it; sender and subject are mail data and
 * go through the escaper. Pages carry no-store.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>

#include "outbox/notify.h"
#include "pdfpass.h"
#include "store/store_pdf.h"
#include "web/web_compose.h"
#include "web/web_pages.h"
#include "web/web_routes.h"
#include "web/web_text.h"
#include "xmalloc.h"

#define WEB_PDF_LIST_MAX	200
#define WEB_PDF_CSP "default-src 'none'; style-src 'self'; " \
    "script-src 'self'; form-action 'self'; frame-ancestors 'none'; " \
    "base-uri 'none'"

static const char web_pdf_js[] =
    "document.addEventListener('DOMContentLoaded',function(){\n"
    "var b=document.getElementById('copy'),p=document.getElementById('pw');\n"
    "if(!b||!p||!navigator.clipboard)return;\n"
    "b.hidden=false;\n"
    "b.addEventListener('click',function(){\n"
    "navigator.clipboard.writeText(p.dataset.pw).then(function(){\n"
    "b.textContent=b.dataset.done;});});});\n";

void
web_pdf_js_file(struct web_req *r)
{
	r->ctype = xstrdup("text/javascript; charset=utf-8");
	web_header(r, "Cache-Control", "public, max-age=3600");
	web_buf_adds(&r->out, web_pdf_js);
}

static void
web_pdf_date(struct web_req *r, int64_t t)
{
	char buf[64];
	time_t tt = (time_t)t;
	struct tm tm;

	gmtime_r(&tt, &tm);
	strftime(buf, sizeof(buf), "%Y-%m-%d %H:%M UTC", &tm);
	web_page_text(r, buf);
}

static void
web_pdf_sender(struct web_req *r, const struct store_pdf *p)
{
	char *s = notify_sender_text(p->hdr_from);

	web_page_text(r, s ? s : (p->mail_from ? p->mail_from : ""));
	free(s);
}

static const char *
web_pdf_state(const struct store_pdf *p)
{
	if (strcmp(p->state, "sent") == 0)
		return web_text_get("pdf.state.sent");
	if (strcmp(p->state, "failed") == 0)
		return web_text_get("pdf.state.failed");
	return web_text_get("pdf.state.pending");
}

/* The token's length when t starts with one, else 0. */
static size_t
web_pdf_token_ok(const char *t)
{
	if (strspn(t, "0123456789abcdef") != STORE_PDF_TOKEN_LEN)
		return 0;
	return STORE_PDF_TOKEN_LEN;
}

void
web_pdf_show(struct web_req *r)
{
	const char *token = r->path + strlen("/pdf/");
	struct store_pdf p;
	char group[PDFPASS_LEN + 1];
	size_t len;
	int rc;

	if ((len = web_pdf_token_ok(token)) == 0) {
		web_page_error(r, 404);
		return;
	}
	if (token[len] != '\0') {
		web_page_error(r, 404);
		return;
	}
	if ((rc = store_pdf_get(r->store, r->email, token, &p)) != 0) {
		web_page_error(r, rc == STORE_NOTFOUND ? 404 : 503);
		return;
	}
	r->no_store = 1;
	r->csp = xstrdup(WEB_PDF_CSP);
	web_page_begin(r, web_text_get("pdf.title"), 1);
	web_buf_adds(&r->out, "<dl class=\"pdfmeta\"><dt>");
	web_page_t(r, "pdf.from");
	web_buf_adds(&r->out, "</dt><dd>");
	web_pdf_sender(r, &p);
	web_buf_adds(&r->out, "</dd><dt>");
	web_page_t(r, "pdf.date");
	web_buf_adds(&r->out, "</dt><dd>");
	web_pdf_date(r, p.date);
	web_buf_adds(&r->out, "</dd><dt>");
	web_page_t(r, "pdf.status");
	web_buf_adds(&r->out, "</dt><dd>");
	web_page_text(r, web_pdf_state(&p));
	web_buf_adds(&r->out, "</dd></dl>\n");
	if (p.password == NULL) {
		web_page_notice(r, "notice", web_text_get(strcmp(p.state,
		    "failed") == 0 ? "pdf.failed" : "pdf.pending"));
	} else {
		web_buf_adds(&r->out, "<p>");
		web_page_t(r, "pdf.open");
		web_buf_adds(&r->out, "</p>\n<p class=\"pdfpw\" id=\"pw\" "
		    "translate=\"no\" data-pw=\"");
		web_page_text(r, p.password);
		web_buf_adds(&r->out, "\">");
		for (size_t i = 0; p.password[i] != '\0'; i += PDFPASS_GROUP) {
			snprintf(group, sizeof(group), "%.*s", PDFPASS_GROUP,
			    p.password + i);
			web_buf_adds(&r->out, "<span>");
			web_page_text(r, group);
			web_buf_adds(&r->out, "</span>");
		}
		web_buf_adds(&r->out, "</p>\n<p class=\"hint\">");
		web_page_t(r, "pdf.hint");
		web_buf_adds(&r->out, "</p>\n<p><button type=\"button\" "
		    "id=\"copy\" hidden data-done=\"");
		web_page_t(r, "pdf.copied");
		web_buf_adds(&r->out, "\">");
		web_page_t(r, "pdf.copy");
		web_buf_adds(&r->out, "</button></p>\n"
		    "<script src=\"/static/pdf-copy.js\"></script>\n");
		OPENSSL_cleanse(group, sizeof(group));
	}
	web_buf_adds(&r->out, "<p class=\"pdfactions\">");
	if (p.reply_to != NULL && web_compose_allowed(r, 1)) {
		web_buf_adds(&r->out, "<a class=\"button\" id=\"reply\" "
		    "href=\"/pdf-reply/");
		web_page_text(r, p.token);
		web_buf_adds(&r->out, "\">");
		web_page_t(r, "pdf.reply");
		web_buf_adds(&r->out, "</a> ");
	}
	web_buf_adds(&r->out, "<a href=\"/pdf\">");
	web_page_t(r, "pdf.all");
	web_buf_adds(&r->out, "</a></p>\n");
	web_page_end(r);
	store_pdf_free(&p);
}

/* /pdf-reply/<token>: the reply page (web_compose.c checks the owner). */
void
web_pdf_reply(struct web_req *r)
{
	web_compose_pdf_form(r, r->path + strlen("/pdf-reply/"));
}

void
web_pdf_list(struct web_req *r)
{
	struct store_pdf *list = xcalloc(WEB_PDF_LIST_MAX, sizeof(*list));
	int n;

	if ((n = store_pdf_list(r->store, r->email, list, WEB_PDF_LIST_MAX))
	    == -1) {
		free(list);
		web_page_tempfail(r);
		return;
	}
	r->no_store = 1;
	web_page_begin(r, web_text_get("pdf.list.title"), 1);
	if (n == 0)
		web_page_notice(r, "notice", web_text_get("pdf.list.none"));
	else {
		web_buf_adds(&r->out, "<p>");
		web_page_t(r, "pdf.list.intro");
		web_buf_adds(&r->out, "</p>\n<ul class=\"pdflist\">\n");
		for (int i = 0; i < n; i++) {
			web_buf_adds(&r->out, "<li><a href=\"/pdf/");
			web_page_text(r, list[i].token);
			web_buf_adds(&r->out, "\"><span class=\"from\">");
			web_pdf_sender(r, &list[i]);
			web_buf_adds(&r->out, "</span> <span class=\"date\">");
			web_pdf_date(r, list[i].date);
			web_buf_adds(&r->out, "</span> <span class=\"state\">");
			web_page_text(r, web_pdf_state(&list[i]));
			web_buf_adds(&r->out, "</span></a></li>\n");
		}
		web_buf_adds(&r->out, "</ul>\n");
	}
	web_page_end(r);
	for (int i = 0; i < n; i++)
		store_pdf_free(&list[i]);
	free(list);
}
