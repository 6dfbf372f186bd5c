/*
 * Server-rendered pages of the portal: the page frame (head, product name
 * and logo, navigation), forms with their CSRF field, error pages, and the
 * request handlers of web_auth.c, web_mail.c and web_static.c that web.c
 * routes to. Every byte of user or mail data goes through
 * web_html_escape_buf(); every user-visible string comes from web_text.
 */
#ifndef PORTAL_WEB_PAGES_H
#define PORTAL_WEB_PAGES_H

#include "web/web.h"

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

/* web_static.c */
void	 web_static_css(struct web_req *);

/* web_auth.c */
void	 web_auth_root(struct web_req *);
void	 web_auth_login_form(struct web_req *);
void	 web_auth_login(struct web_req *);
void	 web_auth_totp_form(struct web_req *);
void	 web_auth_totp(struct web_req *);
void	 web_auth_logout(struct web_req *);
void	 web_auth_signup_form(struct web_req *);
void	 web_auth_signup(struct web_req *);
void	 web_auth_newlink_form(struct web_req *);
void	 web_auth_newlink(struct web_req *);
void	 web_auth_forgot_form(struct web_req *);
void	 web_auth_forgot(struct web_req *);
void	 web_auth_reset_form(struct web_req *);
void	 web_auth_reset(struct web_req *);
void	 web_auth_settings(struct web_req *);
void	 web_auth_password(struct web_req *);
void	 web_auth_totp_start(struct web_req *);
void	 web_auth_totp_enable(struct web_req *);
void	 web_auth_totp_disable(struct web_req *);
void	 web_auth_recovery(struct web_req *);
void	 web_auth_logout_all(struct web_req *);

/* web_mail.c */
void	 web_mail_init(void);
void	 web_mail_inbox(struct web_req *);
void	 web_mail_delete_many(struct web_req *);
void	 web_mail_read(struct web_req *);
void	 web_mail_body(struct web_req *);
void	 web_mail_part(struct web_req *);
void	 web_mail_cid(struct web_req *);
void	 web_mail_eml(struct web_req *);
void	 web_mail_delete(struct web_req *);

/* web_compose.c */
/* 1 when the user may reply (reply 1) or write new messages (reply 0). */
int	 web_compose_allowed(struct web_req *, int reply);
void	 web_compose_form(struct web_req *);
void	 web_compose_send(struct web_req *);

#endif
