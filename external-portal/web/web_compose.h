/*
 * Webmail Messenger's outgoing side (web_compose.c): what other modules
 * use of it besides its routes (web_routes.h).
 */
#ifndef PORTAL_WEB_COMPOSE_H
#define PORTAL_WEB_COMPOSE_H

#include "web/web_req.h"

struct web_mail;

/*
 * 1 when the user may reply (reply 1) or write new messages (reply 0);
 * from the request's can_reply and can_compose.
 */
int	 web_compose_allowed(const struct web_req *, int reply);
/*
 * The reply page of the signed-in user's PDF-OTP message with token
 * (/pdf-reply/<token>); 404 for anyone else's. It works after the
 * message's content is gone, from what the row kept.
 */
void	 web_compose_pdf_form(struct web_req *, const char *token);
/* A read receipt for the message just opened, if due. */
void	 web_compose_receipt(struct web_req *, struct web_mail *);
/* 1 when reading m now would send a read receipt (m not parsed). */
int	 web_compose_receipt_due(struct web_req *, struct web_mail *);

#endif
