/*
 * Server-rendered pages of the portal: the page frame (head, product name
 * and logo, navigation), forms with their CSRF field and error pages.
 * Every byte of user or mail data goes through web_html_escape_buf();
 * every user-visible string comes from web_text.
 */
#ifndef PORTAL_WEB_PAGES_H
#define PORTAL_WEB_PAGES_H

#include "web/web_req.h"

/* Starts a page; nav adds the signed-in navigation. */
void	 web_page_begin(struct web_req *, const char *title, int nav);
void	 web_page_end(struct web_req *);
/* Appends escaped text. */
void	 web_page_text(struct web_req *, const char *);
/* Appends the text of a web_text key, escaped. */
void	 web_page_t(struct web_req *, const char *key);
/* <form method="post" action="..."> with the CSRF field. */
void	 web_page_form(struct web_req *, const char *action,
	    const char *extra_attrs);
void	 web_page_submit(struct web_req *, const char *textkey);
/* A labelled input. */
void	 web_page_input(struct web_req *, const char *name, const char *type,
	    const char *label, const char *value, const char *autocomplete);
/* <p class="cls" role=...>text</p> */
void	 web_page_notice(struct web_req *, const char *cls, const char *text);
/* A whole error page for status (400, 403, 404, 413, 415, 500, 503). */
void	 web_page_error(struct web_req *, int status);
/* "Something went wrong, try later": 503 page, after a logged failure. */
void	 web_page_tempfail(struct web_req *);
/* A simple page: title, one paragraph, an optional link. */
void	 web_page_simple(struct web_req *, int status, const char *title,
	    const char *text, const char *href, const char *link_text);
/* Human-readable byte size ("12.3 KB"). */
void	 web_page_size(struct web_req *, long long bytes);

#endif
