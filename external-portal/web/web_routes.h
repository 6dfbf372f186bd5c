/*
 * The request handlers web.c routes to. Only the router calls them; the
 * files that define them include this header too, so the compiler checks
 * each definition against its prototype. Nothing here includes the router.
 */
#ifndef PORTAL_WEB_ROUTES_H
#define PORTAL_WEB_ROUTES_H

#include "web/web_req.h"

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
void	 web_mail_inbox(struct web_req *);
void	 web_mail_delete_many(struct web_req *);
void	 web_mail_read(struct web_req *);
void	 web_mail_body(struct web_req *);
void	 web_mail_part(struct web_req *);
void	 web_mail_cid(struct web_req *);
void	 web_mail_eml(struct web_req *);
void	 web_mail_delete(struct web_req *);

/* web_compose.c */
void	 web_compose_form(struct web_req *);
void	 web_compose_send(struct web_req *);

/* web_pdf.c */
void	 web_pdf_show(struct web_req *);
void	 web_pdf_list(struct web_req *);
void	 web_pdf_js_file(struct web_req *);
void	 web_pdf_reply(struct web_req *);

#endif
