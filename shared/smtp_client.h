/*
 * Outbound SMTP. Blocking: call it from a worker thread or a process of its
 * own, never from an event loop. One transaction per call; the connection
 * is kept in a per-thread cache for the next call to the same hop with the
 * same settings (nothing is shared between threads but the TLS contexts),
 * so any number of threads may send at once. The process must ignore
 * SIGPIPE (a peer closing during TLS writes would otherwise kill it).
 *
 * The message file goes out byte for byte (only dot-stuffed): nothing is
 * added, removed or refolded. That is why this is not libesmtp, which
 * inserts Date/From/Message-Id, drops Return-Path and repeated headers,
 * and cannot send the SMTPUTF8 parameter.
 */
#ifndef POSTERN_SMTP_CLIENT_H
#define POSTERN_SMTP_CLIENT_H

#include <stddef.h>

#include <openssl/types.h>

enum smtp_client_tls {
	SMTP_CLIENT_TLS_NONE,		/* never STARTTLS */
	SMTP_CLIENT_TLS_MAY,		/* STARTTLS when offered, unverified */
	SMTP_CLIENT_TLS_ENCRYPT,	/* STARTTLS required, cert verified */
};

struct smtp_client_target {
	char			 host[256];	/* name or literal, no [] */
	int			 port;
	enum smtp_client_tls	 tls;
	const char		*ca_file;	/* trust for ENCRYPT; NULL: system */
	const char		*cert_file;	/* client certificate, or NULL */
	const char		*key_file;
	EVP_PKEY		*key;		/* instead of key_file, or NULL */
	const char		*helo;		/* our name */
	int			 timeout;	/* seconds per step */
};

struct smtp_client_msg {
	const char		*from;		/* "" for <> */
	const char *const	*rcpts;
	size_t			 nrcpts;
	const char		*path;		/* message file, CRLF lines */
	const char		*head;		/* NULL, or complete CRLF header
						 * lines sent ahead of the file */
	int			 smtputf8;
	int			 body_8bit;
};

struct smtp_client_result {
	/*
	 * 2: every recipient accepted and the message taken;
	 * 4: temporary failure (connection, 4xx); 5: permanent (5xx).
	 * With some recipients refused and others accepted the message is
	 * still sent to the accepted ones and status is 4 (any 4xx refusal)
	 * or 5: rcpt_code[] then says who has it.
	 */
	int	 status;
	int	 code;			/* last SMTP reply code, 0 if none */
	char	 reply[512];		/* text for logs and upstream */
	/*
	 * Final answer per recipient, caller-allocated: the RCPT refusal, or
	 * for an accepted recipient the end-of-data reply (2xx: delivered).
	 * 0 when the session failed before the recipient was tried.
	 */
	int	*rcpt_code;
	char	(*rcpt_reply)[512];	/* the same, as text; optional (NULL) */
};

/* Returns res->status. */
/* "none", "may", "encrypt" to a level; -1 for anything else. */
int	smtp_client_tls_level(const char *, enum smtp_client_tls *);

int	smtp_client_send(const struct smtp_client_target *,
	    const struct smtp_client_msg *, struct smtp_client_result *);

/*
 * How long an idle connection stays in a thread's cache (default 30 s);
 * 0 turns caching off. Set it before the sending threads start. A thread
 * keeps at most one idle connection per hop and a few hops; they are
 * closed when the thread exits, when they are too old at the next send,
 * or by smtp_client_cache_flush() (this thread's only).
 */
void	smtp_client_cache_idle(int seconds);
void	smtp_client_cache_flush(void);

/*
 * The reply parser on its own, for the fuzz target and tests: reads the
 * replies on fd (a socket) until EOF or a malformed reply, as a session
 * would (with ehlo set, as answers to EHLO). Returns how many were well
 * formed; out holds the last one.
 */
struct smtp_client_replies {
	int			 count;
	int			 code;
	char			 text[512];
	unsigned int		 caps;		/* extensions seen (bit set) */
	unsigned long long	 size_max;
};
int	smtp_client_read_replies(int, int, struct smtp_client_replies *);

#endif
