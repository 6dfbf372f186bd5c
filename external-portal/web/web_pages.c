/*
 * The page frame and form helpers of the portal's HTML (see web_pages.h).
 * Pages work without JavaScript and carry no inline style or script: the
 * CSP forbids both. Text reaches the page only through the escaper.
 */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "web/web_pages.h"
#include "xmalloc.h"

void
web_page_text(struct web_req *r, const char *s)
{
	web_html_escape_buf(&r->out, s, strlen(s));
}

void
web_page_t(struct web_req *r, const char *key)
{
	web_page_text(r, web_text_get(key));
}

void
web_page_begin(struct web_req *r, const char *title, int nav)
{
	const char *product = r->conf->product_name ? r->conf->product_name :
	    web_text_get("app.title");

	web_buf_adds(&r->out, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n"
	    "<meta charset=\"utf-8\">\n<meta name=\"viewport\" "
	    "content=\"width=device-width, initial-scale=1\">\n<title>");
	web_page_text(r, title);
	web_buf_adds(&r->out, " - ");
	web_page_text(r, product);
	web_buf_adds(&r->out, "</title>\n<link rel=\"stylesheet\" "
	    "href=\"/static/portal.css\">\n</head>\n<body>\n"
	    "<a class=\"skip\" href=\"#main\">");
	web_page_t(r, "nav.skip");
	web_buf_adds(&r->out, "</a>\n<header class=\"top\"><a class=\"brand\" "
	    "href=\"/\">");
	if (r->conf->logo_url != NULL) {
		web_buf_adds(&r->out, "<img src=\"");
		web_page_text(r, r->conf->logo_url);
		web_buf_adds(&r->out, "\" alt=\"\" height=\"32\">");
	}
	web_buf_adds(&r->out, "<span>");
	web_page_text(r, product);
	web_buf_adds(&r->out, "</span></a>\n");
	if (nav && r->signed_in) {
		web_buf_adds(&r->out, "<nav aria-label=\"");
		web_page_t(r, "nav.label");
		web_buf_adds(&r->out, "\"><ul><li><a href=\"/inbox\">");
		web_page_t(r, "nav.inbox");
		web_buf_adds(&r->out, "</a></li><li><a href=\"/inbox?folder="
		    "sent\">");
		web_page_t(r, "nav.sent");
		web_buf_adds(&r->out, "</a></li>");
		if (r->can_compose) {
			web_buf_adds(&r->out, "<li><a href=\"/compose\">");
			web_page_t(r, "nav.compose");
			web_buf_adds(&r->out, "</a></li>");
		}
		web_buf_adds(&r->out, "<li><a href=\"/pdf\">");
		web_page_t(r, "nav.pdf");
		web_buf_adds(&r->out, "</a></li>");
		web_buf_adds(&r->out, "<li><a href=\"/settings\">");
		web_page_t(r, "nav.settings");
		web_buf_adds(&r->out, "</a></li><li>");
		web_page_form(r, "/logout", "class=\"inline\"");
		web_buf_adds(&r->out, "<button type=\"submit\" class=\"link\">");
		web_page_t(r, "logout.submit");
		web_buf_adds(&r->out, "</button></form></li></ul></nav>\n");
	}
	web_buf_adds(&r->out, "</header>\n<main id=\"main\">\n<h1>");
	web_page_text(r, title);
	web_buf_adds(&r->out, "</h1>\n");
}

void
web_page_end(struct web_req *r)
{
	web_buf_adds(&r->out, "</main>\n</body>\n</html>\n");
}

void
web_page_form(struct web_req *r, const char *action, const char *extra)
{
	web_buf_adds(&r->out, "<form method=\"post\" action=\"");
	web_page_text(r, action);
	web_buf_adds(&r->out, "\"");
	if (extra != NULL) {
		web_buf_adds(&r->out, " ");
		web_buf_adds(&r->out, extra);
	}
	web_buf_adds(&r->out, "><input type=\"hidden\" name=\"csrf\" "
	    "value=\"");
	web_page_text(r, web_req_csrf(r));
	web_buf_adds(&r->out, "\">\n");
}

/* The form's submit button, labelled by a text key, and the form's end. */
void
web_page_submit(struct web_req *r, const char *textkey)
{
	web_buf_adds(&r->out, "<button type=\"submit\">");
	web_page_t(r, textkey);
	web_buf_adds(&r->out, "</button>\n</form>\n");
}

void
web_page_input(struct web_req *r, const char *name, const char *type,
    const char *label, const char *value, const char *autocomplete)
{
	web_buf_addf(&r->out, "<p class=\"field\"><label for=\"f-%s\">", name);
	web_page_text(r, label);
	web_buf_addf(&r->out, "</label>\n<input id=\"f-%s\" name=\"%s\" "
	    "type=\"%s\"", name, name, type);
	if (value != NULL) {
		web_buf_adds(&r->out, " value=\"");
		web_page_text(r, value);
		web_buf_adds(&r->out, "\"");
	}
	if (autocomplete != NULL)
		web_buf_addf(&r->out, " autocomplete=\"%s\"", autocomplete);
	if (strcmp(type, "checkbox") != 0 && strcmp(type, "file") != 0)
		web_buf_adds(&r->out, " required");
	web_buf_adds(&r->out, "></p>\n");
}

void
web_page_notice(struct web_req *r, const char *cls, const char *text)
{
	web_buf_addf(&r->out, "<p class=\"%s\" role=\"%s\">", cls,
	    strcmp(cls, "error") == 0 ? "alert" : "status");
	web_page_text(r, text);
	web_buf_adds(&r->out, "</p>\n");
}

void
web_page_simple(struct web_req *r, int status, const char *title,
    const char *text, const char *href, const char *link_text)
{
	r->status = status;
	web_page_begin(r, title, 1);
	web_buf_adds(&r->out, "<p>");
	web_page_text(r, text);
	web_buf_adds(&r->out, "</p>\n");
	if (href != NULL) {
		web_buf_adds(&r->out, "<p><a class=\"button\" href=\"");
		web_page_text(r, href);
		web_buf_adds(&r->out, "\">");
		web_page_text(r, link_text);
		web_buf_adds(&r->out, "</a></p>\n");
	}
	web_page_end(r);
}

void
web_page_error(struct web_req *r, int status)
{
	const char *key;

	switch (status) {
	case 400: key = "error.bad_request"; break;
	case 403: key = "error.forbidden"; break;
	case 404: key = "error.not_found"; break;
	case 405: key = "error.bad_request"; break;
	case 413: key = "error.too_large"; break;
	case 415: key = "error.bad_request"; break;
	case 503: key = "error.unavailable"; break;
	default:
		status = 500;
		key = "error.internal";
	}
	/* A handler may have started a page: the error replaces it. */
	web_buf_free(&r->out);
	if (status == 403 && r->method == WEB_POST)
		key = "csrf.invalid";
	web_page_simple(r, status, web_text_get("error.title"),
	    web_text_get(key), "/", web_text_get("common.home"));
}

void
web_page_tempfail(struct web_req *r)
{
	web_page_error(r, 503);
}

void
web_page_size(struct web_req *r, long long n)
{
	static const char *const unit[] = { " KB", " MB", " GB" };
	long long div = 1024, q, rem;
	int u = 0;

	if (n < 1024) {
		web_buf_addll(&r->out, n);
		web_buf_adds(&r->out, " B");
		return;
	}
	while (u < 2 && n >= div * 1024) {
		div *= 1024;
		u++;
	}
	if (n > LLONG_MAX / 10) {
		web_buf_addf(&r->out, "%.1f%s", (double)n / div, unit[u]);
		return;
	}
	/* Tenths, rounded as printf's "%.1f" rounds: half to even. */
	q = n * 10 / div;
	rem = n * 10 % div;
	if (rem * 2 > div || (rem * 2 == div && (q & 1)))
		q++;
	web_buf_addll(&r->out, q / 10);
	web_buf_adds(&r->out, ".");
	web_buf_addll(&r->out, q % 10);
	web_buf_adds(&r->out, unit[u]);
}
