/*
 * Notification mail to a portal recipient: a multipart/alternative UTF-8
 * text + HTML message built with GMime from templates. It carries the
 * portal link (sign-up or sign-in), the original sender's display name and
 * address unless the admin turns that off (notification-show-sender) and
 * the subject only when the admin allows it (notification-show-subject):
 * never the message body.
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
	int		 show_sender;	/* notification-show-sender */
	int		 show_details;	/* notification-show-subject */
};

/* Bounds of what the notification shows of the original message. */
#define NOTIFY_NAME_MAX		64	/* display name, bytes of UTF-8 */
#define NOTIFY_ADDR_MAX		254	/* RFC 5321 4.5.3.1.3; longer: none */
#define NOTIFY_SUBJECT_MAX	200
/* Most bytes of one expanded template; past it the mail is not built. */
#define NOTIFY_BODY_MAX		(1024 * 1024)

/* Writes the complete message (CRLF) to out. 0, or -1 (logged). */
int	 notify_build(const struct notify_conf *, enum notify_kind,
	    const struct notify_vars *, FILE *out);
/*
 * Expands a template: {{link}}, {{base_url}}, {{recipient}}, {{sender}},
 * {{subject}}; text between {{#sender}} and {{/sender}} only with
 * show_sender, between {{#subject}} and {{/subject}} (or the older
 * {{#details}} and {{/details}}) only with show_details. Every value goes
 * through the shared escaper as one line (controls, CR and LF dropped);
 * html also escapes markup. Returns an allocated string, or NULL when the
 * result would exceed NOTIFY_BODY_MAX.
 */
char	*notify_expand(const char *tmpl, const struct notify_conf *,
	    const struct notify_vars *, int html);
/*
 * The sender as shown: "Display Name <address>", or "address" without a
 * name, from a raw From value. The name is RFC 2047-decoded, stripped of
 * controls, bidi and zero-width characters and of < > ", and cut to
 * NOTIFY_NAME_MAX bytes. NULL when there is no usable mailbox. Caller
 * frees.
 */
char	*notify_sender_text(const char *raw_from);

#endif
