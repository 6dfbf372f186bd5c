/*
 * Notification mail to a portal recipient: a multipart/alternative UTF-8
 * text + HTML message built with GMime from templates. It carries the
 * portal link (sign-up or sign-in) and, only when the admin allows it
 * (notification-show-subject), the original sender and subject: never the
 * message body.
 */
#ifndef PORTAL_NOTIFY_H
#define PORTAL_NOTIFY_H

#include <stdio.h>

enum notify_kind { NOTIFY_SIGNUP, NOTIFY_NEWMSG };

struct notify_conf {
	const char	*sender;	/* address */
	const char	*sender_name;
	const char	*base_url;	/* https://portal.example.com */
	const char	*template_dir;	/* NULL: built-in templates */
	const char	*hostname;	/* Message-ID domain */
};

struct notify_vars {
	const char	*rcpt;
	const char	*link;
	const char	*orig_from;	/* raw header values, may be NULL */
	const char	*orig_subject;
	int		 show_details;	/* notification-show-subject */
};

/* Writes the complete message (CRLF) to out. 0, or -1 (logged). */
int	 notify_build(const struct notify_conf *, enum notify_kind,
	    const struct notify_vars *, FILE *out);
/*
 * Expands a template: {{link}}, {{base_url}}, {{recipient}}, {{sender}},
 * {{subject}}; text between {{#details}} and {{/details}} only with
 * show_details. html escapes the values. Returns an allocated string.
 */
char	*notify_expand(const char *tmpl, const struct notify_conf *,
	    const struct notify_vars *, int html);

#endif
