/*
 * The SMTP/LMTP server engine: listeners, connection limits and the
 * lifetime of sessions. The protocol of one connection is smtp_session.c.
 *
 * SECURITY: every connection is from an untrusted peer until ops->connect
 * says otherwise; the connection limits (total and per client address) are
 * enforced before any byte is read from it.
 */
#include <sys/socket.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/listener.h>

#include "config.h"
#include "log.h"
#include "smtp_session.h"
#include "xmalloc.h"

/* Defaults for the limits a daemon leaves at 0. */
#define SMTP_DEF_MAX_LINE	2048
#define SMTP_DEF_MAX_SIZE	(50 * 1024 * 1024)
#define SMTP_DEF_MAX_RCPTS	1000
#define SMTP_DEF_MAX_CONN	200
#define SMTP_DEF_MAX_PER_IP	20
#define SMTP_DEF_CMD_TIMEOUT	300
#define SMTP_DEF_DATA_TIMEOUT	600
#define SMTP_DEF_MAX_ERRORS	10

static int
smtp_server_count_ip(struct smtp_server *srv, const char *addr)
{
	struct smtp_session *s;
	int n = 0;

	TAILQ_FOREACH(s, &srv->sessions, entry)
		if (strcmp(s->addr, addr) == 0)
			n++;
	return n;
}

static void
smtp_server_accept(struct evconnlistener *l, evutil_socket_t fd,
    struct sockaddr *sa, int salen, void *arg)
{
	struct smtp_server *srv = arg;
	char addr[NETADDR_STRLEN];
	const char *refusal = NULL;

	(void)l;
	netaddr_ntop(sa, addr, sizeof(addr));
	if (srv->nsessions >= srv->conf.max_connections) {
		log_warnx("smtp: refusing %s: %d connections", addr,
		    srv->nsessions);
		refusal = "421 4.7.0 Too many connections, try again later";
	} else if (smtp_server_count_ip(srv, addr) >=
	    srv->conf.max_per_ip) {
		log_warnx("smtp: refusing %s: too many connections from it",
		    addr);
		refusal = "421 4.7.0 Too many connections from your address";
	}
	smtp_session_new(srv, fd, sa, (socklen_t)salen, refusal);
}

static void
smtp_server_accept_error(struct evconnlistener *l, void *arg)
{
	(void)l;
	(void)arg;
	log_warn("smtp: accept");
}

struct smtp_server *
smtp_server_new(struct event_base *base, const struct smtp_server_conf *conf,
    const struct smtp_server_ops *ops, void *arg, struct workq *wq)
{
	struct smtp_server *srv;

	if (ops == NULL || ops->message == NULL || wq == NULL ||
	    conf->spool_dir == NULL)
		fatalx("smtp_server_new: missing message handler, workq or "
		    "spool");
	srv = xcalloc(1, sizeof(*srv));
	srv->base = base;
	srv->conf = *conf;
	srv->ops = *ops;
	srv->arg = arg;
	srv->wq = wq;
	TAILQ_INIT(&srv->sessions);
	if (srv->conf.hostname == NULL)
		srv->conf.hostname = "localhost";
	if (srv->conf.max_line == 0)
		srv->conf.max_line = SMTP_DEF_MAX_LINE;
	if (srv->conf.max_line > SMTP_CMD_MAX + 2)
		srv->conf.max_line = SMTP_CMD_MAX + 2;
	if (srv->conf.max_line < 512)	/* RFC 5321 4.5.3.1.4 */
		srv->conf.max_line = 512;
	if (srv->conf.max_message_size == 0)
		srv->conf.max_message_size = SMTP_DEF_MAX_SIZE;
	if (srv->conf.max_recipients == 0)
		srv->conf.max_recipients = SMTP_DEF_MAX_RCPTS;
	if (srv->conf.max_connections <= 0)
		srv->conf.max_connections = SMTP_DEF_MAX_CONN;
	if (srv->conf.max_per_ip <= 0)
		srv->conf.max_per_ip = SMTP_DEF_MAX_PER_IP;
	if (srv->conf.cmd_timeout <= 0)
		srv->conf.cmd_timeout = SMTP_DEF_CMD_TIMEOUT;
	if (srv->conf.data_timeout <= 0)
		srv->conf.data_timeout = SMTP_DEF_DATA_TIMEOUT;
	if (srv->conf.max_errors <= 0)
		srv->conf.max_errors = SMTP_DEF_MAX_ERRORS;
	return srv;
}

int
smtp_server_add_listener(struct smtp_server *srv, int fd)
{
	struct evconnlistener *l;

	if (evutil_make_socket_nonblocking(fd) == -1) {
		log_warn("smtp: listener");
		return -1;
	}
	l = evconnlistener_new(srv->base, smtp_server_accept, srv,
	    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, 0, fd);
	if (l == NULL) {
		log_warn("smtp: evconnlistener_new");
		return -1;
	}
	evconnlistener_set_error_cb(l, smtp_server_accept_error);
	srv->listeners = xreallocarray(srv->listeners, srv->nlisteners + 1,
	    sizeof(*srv->listeners));
	srv->listeners[srv->nlisteners++] = l;
	return 0;
}

void
smtp_server_free(struct smtp_server *srv)
{
	struct smtp_session *s, *next;

	if (srv == NULL)
		return;
	for (size_t i = 0; i < srv->nlisteners; i++)
		evconnlistener_free(srv->listeners[i]);
	free(srv->listeners);
	for (s = TAILQ_FIRST(&srv->sessions); s != NULL; s = next) {
		next = TAILQ_NEXT(s, entry);
		s->reason = "shutdown";
		if (s->state == SMTP_STATE_MESSAGE) {
			/* Its worker finishes it; see smtp_session_done(). */
			TAILQ_REMOVE(&srv->sessions, s, entry);
			s->srv = NULL;
			s->dead = 1;
			continue;
		}
		smtp_session_free(s);
	}
	free(srv);
}

void
smtp_server_conf_load(struct smtp_server_conf *sc, const struct conf *c)
{
	memset(sc, 0, sizeof(*sc));
	sc->hostname = conf_str(c, "hostname");
	sc->spool_dir = conf_str(c, "spool_dir");
	sc->spool_fsync = 1;
	sc->max_line = conf_int(c, "smtp.max_line");
	sc->max_message_size = conf_int(c, "smtp.max_message_size");
	sc->max_recipients = conf_int(c, "smtp.max_recipients");
	sc->max_connections = conf_int(c, "smtp.max_connections");
	sc->max_per_ip = conf_int(c, "smtp.max_per_ip");
	sc->cmd_timeout = conf_int(c, "smtp.cmd_timeout");
	sc->data_timeout = conf_int(c, "smtp.data_timeout");
	sc->max_errors = conf_int(c, "smtp.max_errors");
	sc->tls_required = conf_bool(c, "smtp.tls_required");
}
