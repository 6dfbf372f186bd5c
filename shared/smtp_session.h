/*
 * Internals of the SMTP engine shared by smtp_server.c (listeners, limits)
 * and smtp_session.c (the protocol of one connection). Not for daemons:
 * they use smtp_server.h.
 */
#ifndef POSTERN_SMTP_SESSION_H
#define POSTERN_SMTP_SESSION_H

#include <sys/queue.h>
#include <sys/socket.h>

#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>

#include "netaddr.h"
#include "smtp_data.h"
#include "smtp_server.h"
#include "tls.h"

enum smtp_state {
	SMTP_STATE_CMD,		/* reading command lines */
	SMTP_STATE_DATA,	/* reading a DATA body */
	SMTP_STATE_BDAT,	/* reading a BDAT chunk */
	SMTP_STATE_MESSAGE,	/* ops->message runs; input stays buffered */
	SMTP_STATE_STARTTLS,	/* flushing "220 Ready to start TLS" */
	SMTP_STATE_HANDSHAKE,	/* TLS handshake */
	SMTP_STATE_CLOSING,	/* flushing the last reply */
};

struct smtp_session {
	TAILQ_ENTRY(smtp_session) entry;
	struct smtp_server	*srv;
	struct bufferevent	*bev;
	struct event		*ev_close;
	int			 fd;
	int			 tls;		/* bev is a TLS bufferevent */
	enum smtp_state		 state;
	int			 dead;	/* peer gone while ops->message ran */
	struct sockaddr_storage	 ss;
	socklen_t		 sslen;
	char			 addr[NETADDR_STRLEN];
	char			 helo[256];
	int			 greeted;	/* HELO/EHLO/LHLO seen */
	int			 skip_line;	/* inside an overlong line */
	int			 nerrors;
	int			 nmsgs;
	char			 tls_info[96];
	char			 tls_fp[TLS_FP_LEN + 1];
	const char		*reason;	/* why the session ended */

	/* XFORWARD attributes for the next transaction ("" = unset). */
	char			 xf_addr[64];
	char			 xf_name[256];
	char			 xf_helo[256];

	/* The transaction. */
	int			 in_txn;	/* MAIL accepted */
	int			 used_bdat;
	int			 bdat_failed;
	long long		 bdat_left;
	int			 bdat_last;
	char			 bdat_reply[128]; /* refusal once chunk read */
	struct smtp_data	*data;
	int			 spool_fd;
	struct smtp_txn		 txn;
	/* What the worker calls, kept here in case the server goes first. */
	void			(*msg_fn)(void *, struct smtp_txn *);
	void			*msg_arg;
};

TAILQ_HEAD(smtp_session_list, smtp_session);

struct smtp_server {
	struct event_base	*base;
	struct smtp_server_conf	 conf;
	struct smtp_server_ops	 ops;
	void			*arg;
	struct workq		*wq;
	struct evconnlistener	**listeners;
	size_t			 nlisteners;
	struct smtp_session_list sessions;
	int			 nsessions;
};

/* Takes over fd; refusal: NULL to greet, else the reply to close with. */
void	smtp_session_new(struct smtp_server *, int fd,
	    const struct sockaddr *, socklen_t, const char *refusal);
void	smtp_session_free(struct smtp_session *);

#endif
