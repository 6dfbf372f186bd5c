/*
 * Outbound SMTP/LMTP (libesmtp for SMTP). Blocking: call it from a worker
 * thread or a process of its own, never from an event loop.
 */
#ifndef POSTERN_SMTP_CLIENT_H
#define POSTERN_SMTP_CLIENT_H

#include <stddef.h>

enum smtp_client_tls {
	SMTP_CLIENT_TLS_NONE,		/* never STARTTLS */
	SMTP_CLIENT_TLS_MAY,		/* STARTTLS when offered */
	SMTP_CLIENT_TLS_ENCRYPT,	/* STARTTLS required, cert verified */
};

struct smtp_client_target {
	char			 host[256];	/* name or literal, no [] */
	int			 port;
	enum smtp_client_tls	 tls;
	const char		*ca_file;	/* trust for ENCRYPT; NULL: system */
	const char		*cert_file;	/* client certificate, or NULL */
	const char		*key_file;
	const char		*helo;		/* our name */
	int			 timeout;	/* seconds per step */
};

struct smtp_client_msg {
	const char		*from;		/* "" for <> */
	const char *const	*rcpts;
	size_t			 nrcpts;
	const char		*path;		/* message file, CRLF lines */
	int			 smtputf8;
	int			 body_8bit;
};

struct smtp_client_result {
	/*
	 * 2: every recipient accepted and the message taken;
	 * 4: temporary failure (connection, 4xx); 5: permanent (5xx).
	 */
	int	 status;
	int	 code;			/* last SMTP reply code, 0 if none */
	char	 reply[512];		/* text for logs and upstream */
	int	*rcpt_code;		/* per recipient, caller-allocated */
};

int	smtp_client_send(const struct smtp_client_target *,
	    const struct smtp_client_msg *, struct smtp_client_result *);

#endif
