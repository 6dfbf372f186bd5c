/*
 * The SMTP/LMTP server engine both daemons use (RFC 5321, 2033, 3207, 1870,
 * 6152, 2034, 6531, 3030, 2920; Postfix XFORWARD). It owns the protocol:
 * command parsing, state, limits, STARTTLS, DATA/BDAT streaming into a spool
 * file, and the replies. A daemon plugs in through struct smtp_server_ops.
 *
 * SECURITY: everything here is peer input. Every buffer is bounded; bare CR
 * or LF in a command or in DATA is refused (SMTP smuggling), never
 * normalised; nothing is acknowledged before ops->message has decided.
 */
#ifndef POSTERN_SMTP_SERVER_H
#define POSTERN_SMTP_SERVER_H

#include <stddef.h>
#include <sys/types.h>
#include <sys/socket.h>

#include <event2/event.h>
#include <openssl/ssl.h>

#include "log.h"

struct workq;
struct netaddr_list;

/* Limits left at 0 get the engine's defaults (see smtp_server.c). */
struct smtp_server_conf {
	int		 lmtp;		/* LHLO; one reply per recipient */
	const char	*hostname;	/* greeting, EHLO reply */
	const char	*spool_dir;	/* DATA is streamed to a file here */
	/*
	 * fsync the spool file before ops->message. A node that stores the
	 * message needs it; one that answers only after the next hop took
	 * the message (the gateway) does not: until then the client still
	 * holds it. smtp_server_conf_load() sets it.
	 */
	int		 spool_fsync;
	size_t		 max_line;	/* command line incl. CRLF: 500 5.5.2 */
	size_t		 max_message_size; /* SIZE; 552 5.3.4 */
	size_t		 max_recipients;	/* 452 4.5.3 */
	int		 max_connections;	/* 421 at greeting */
	int		 max_per_ip;		/* 421 at greeting */
	int		 cmd_timeout;		/* seconds; 421 */
	int		 data_timeout;		/* seconds; 421 */
	int		 max_errors;		/* 421 and close */
	SSL_CTX		*tls_ctx;	/* NULL: no STARTTLS offered */
	int		 tls_required;	/* MAIL before STARTTLS: 530 5.7.0 */
	const struct netaddr_list *xforward_from; /* may send XFORWARD */
};

struct conf;
/*
 * Fills hostname, spool_dir and the limits from the keys both daemons'
 * schemas share (CONF_KEYS_SMTP_LIMITS); zeroes the rest.
 */
void	smtp_server_conf_load(struct smtp_server_conf *, const struct conf *);

struct smtp_rcpt {
	char	*addr;		/* as given in RCPT TO, without <> */
	/* Set by ops->message for each recipient: */
	int	 code;		/* 250, 4xx, 5xx */
	char	 reply[512];	/* full reply text after the code,
				 * e.g. "2.0.0 Ok: queued" */
};

struct smtp_txn {
	char		 id[LOG_ID_LEN + 1];	/* per-message log id */
	char		*mail_from;	/* "" for the null reverse-path */
	int		 smtputf8;
	int		 body_8bit;	/* BODY=8BITMIME or BINARYMIME */
	struct smtp_rcpt *rcpts;
	size_t		 nrcpts;
	char		*spool_path;	/* complete message, CRLF (fsync'd
					 * with conf.spool_fsync) */
	off_t		 size;

	/* The session, as seen (XFORWARD applied when trusted). */
	char		 client_addr[64];	/* numeric, no port */
	char		 client_name[256];
	char		 helo[256];
	int		 tls;			/* STARTTLS done */
	char		 tls_peer_fp[65];	/* SHA-256 of client cert, hex,
						 * or "" */
	int		 lmtp;
};

struct smtp_server_ops {
	/*
	 * A client connected (on the event loop; be quick). Return 0 to greet
	 * or -1 after writing the full refusal into reply, e.g.
	 * "554 5.7.1 Access denied"; the engine sends it and closes.
	 */
	int	(*connect)(void *arg, const struct sockaddr *, socklen_t,
		    char *reply, size_t replylen);
	/*
	 * RCPT TO for addr passed syntax checks (on the event loop; be quick).
	 * Return 0 to accept, or -1 with a full reply such as
	 * "550 5.1.1 <x@y>: unknown domain".
	 */
	int	(*rcpt)(void *arg, const struct smtp_txn *, const char *addr,
		    char *reply, size_t replylen);
	/*
	 * The message is complete in txn->spool_path. Runs on a worker
	 * thread: blocking work is allowed. Must set code and reply of every
	 * recipient. For SMTP the engine answers 250 only when all are 2xx,
	 * else the first 4xx, else the first 5xx; for LMTP one reply each.
	 */
	void	(*message)(void *arg, struct smtp_txn *);
};

struct smtp_server;

struct smtp_server *smtp_server_new(struct event_base *,
		    const struct smtp_server_conf *,
		    const struct smtp_server_ops *, void *arg, struct workq *);
/* Accepts connections on an already bound and listening socket. */
int		 smtp_server_add_listener(struct smtp_server *, int fd);
void		 smtp_server_free(struct smtp_server *);

/* The command parser, exposed for unit tests and fuzzing. */
enum smtp_verb {
	SMTP_VERB_NONE, SMTP_VERB_HELO, SMTP_VERB_EHLO, SMTP_VERB_LHLO,
	SMTP_VERB_MAIL, SMTP_VERB_RCPT, SMTP_VERB_DATA, SMTP_VERB_BDAT,
	SMTP_VERB_RSET, SMTP_VERB_NOOP, SMTP_VERB_QUIT, SMTP_VERB_VRFY,
	SMTP_VERB_HELP, SMTP_VERB_STARTTLS, SMTP_VERB_XFORWARD,
};

struct smtp_cmd {
	enum smtp_verb	 verb;
	char		 path[512];	/* MAIL/RCPT path without <> */
	int		 smtputf8;	/* SMTPUTF8 parameter */
	int		 body_8bit;
	long long	 size;		/* SIZE=, -1 if absent */
	long long	 chunk_size;	/* BDAT */
	int		 last;		/* BDAT LAST */
	char		 arg[512];	/* HELO/EHLO domain, XFORWARD attrs */
};

/* The longest address MAIL and RCPT take (RFC 5321: 256 with <>). */
#define SMTP_CMD_ADDR_MAX	254

/* The longest command line the parser takes; conf.max_line is capped to it. */
#define SMTP_CMD_MAX	4096

/*
 * Parses one command line (without CRLF; it need not be NUL-terminated). Returns 0, or -1 with a full
 * reply in reply ("500 5.5.2 ...", "501 5.5.4 ...").
 */
int	smtp_cmd_parse(const char *line, size_t len, struct smtp_cmd *,
	    char *reply, size_t replylen);

#endif
