/*
 * One SMTP/LMTP connection: the state machine of RFC 5321/2033 with
 * PIPELINING, STARTTLS, SIZE, 8BITMIME, SMTPUTF8, CHUNKING and XFORWARD.
 *
 * SECURITY: every byte read here comes from the peer (the upstream MTA,
 * the gateway, or anyone who reaches the listener); connections, errors,
 * recipients and message size are capped by the listener's limits. Command lines are
 * bounded by conf.max_line and must end in CRLF; input buffered behind
 * STARTTLS is discarded before the handshake (CVE-2011-0411); message
 * bodies go through smtp_data.c, which refuses bare CR/LF instead of
 * normalising it; the spool file is private (O_EXCL, 0600). Replies that
 * carry daemon text are stripped of CR/LF so they cannot split.
 */
#include <sys/stat.h>

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>

#include "addr.h"
#include "log.h"
#include "smtp_session.h"
#include "workq.h"
#include "xmalloc.h"

/* Input held while a command or ops->message is pending. */
#define SMTP_SESSION_INBUF	(256 * 1024)

static void	smtp_session_read(struct bufferevent *, void *);
static void	smtp_session_write(struct bufferevent *, void *);
static void	smtp_session_event(struct bufferevent *, short, void *);
static void	smtp_session_process(struct smtp_session *);

static void
smtp_session_reply(struct smtp_session *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
smtp_session_reply(struct smtp_session *s, const char *fmt, ...)
{
	char buf[1024];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (n < 0)
		fatalx("smtp_session_reply: format");
	for (char *p = buf; *p != '\0'; p++)
		if (*p == '\r' || *p == '\n')
			*p = ' ';
	log_debug("smtp: %s > %s", s->addr, buf);
	evbuffer_add_printf(bufferevent_get_output(s->bev), "%s\r\n", buf);
}

static void
smtp_session_timeouts(struct smtp_session *s)
{
	const struct smtp_server_conf *c = &s->srv->conf;
	struct timeval tv = { 0, 0 };

	tv.tv_sec = (s->state == SMTP_STATE_DATA ||
	    s->state == SMTP_STATE_BDAT) ? c->data_timeout : c->cmd_timeout;
	bufferevent_set_timeouts(s->bev, &tv, &tv);
}

static void
smtp_session_close_cb(evutil_socket_t fd, short ev, void *arg)
{
	(void)fd;
	(void)ev;
	smtp_session_free(arg);
}

/*
 * Ends the session once the output is flushed. Never frees at once, so
 * callers up the stack may still look at s.
 */
static void
smtp_session_close(struct smtp_session *s, const char *reason)
{
	if (s->state == SMTP_STATE_CLOSING)
		return;
	if (s->reason == NULL)
		s->reason = reason;
	s->state = SMTP_STATE_CLOSING;
	bufferevent_disable(s->bev, EV_READ);
	if (evbuffer_get_length(bufferevent_get_output(s->bev)) == 0)
		event_active(s->ev_close, EV_TIMEOUT, 1);
}

/* A refused command. Returns -1 when it was one error too many. */
static int
smtp_session_error(struct smtp_session *s, const char *reply)
{
	smtp_session_reply(s, "%s", reply);
	if (++s->nerrors >= s->srv->conf.max_errors) {
		smtp_session_reply(s, "421 4.7.0 %s Error: too many errors",
		    s->srv->conf.hostname);
		smtp_session_close(s, "too many errors");
		return -1;
	}
	return 0;
}

static void
smtp_session_xforward_reset(struct smtp_session *s)
{
	s->xf_addr[0] = s->xf_name[0] = s->xf_helo[0] = '\0';
}

static void
smtp_session_txn_reset(struct smtp_session *s)
{
	struct smtp_txn *t = &s->txn;

	if (s->spool_fd != -1) {
		close(s->spool_fd);
		s->spool_fd = -1;
	}
	if (t->spool_path != NULL) {
		if (unlink(t->spool_path) == -1 && errno != ENOENT)
			log_warn("smtp: unlink %s", t->spool_path);
		xfree(&t->spool_path);
	}
	for (size_t i = 0; i < t->nrcpts; i++)
		free(t->rcpts[i].addr);
	free(t->rcpts);
	free(t->mail_from);
	xfree(&s->data);
	memset(t, 0, sizeof(*t));
	s->in_txn = 0;
	s->used_bdat = 0;
	s->bdat_failed = 0;
	s->bdat_left = 0;
	s->bdat_last = 0;
	s->bdat_reply[0] = '\0';
}

static void
smtp_session_log_txn(struct smtp_session *s, const char *result)
{
	struct smtp_txn *t = &s->txn;

	log_info("smtp: id=%s client=%s helo=%s from=<%s> nrcpts=%zu "
	    "size=%lld tls=%s result=%s", t->id, t->client_addr, t->helo,
	    t->mail_from ? t->mail_from : "", t->nrcpts, (long long)t->size,
	    s->tls ? "yes" : "no", result);
}

/* Ends a transaction with one reply (and one log line). */
static void
smtp_session_txn_refuse(struct smtp_session *s, const char *reply)
{
	char code[4];

	snprintf(code, sizeof(code), "%s", reply);
	smtp_session_log_txn(s, code);
	smtp_session_reply(s, "%s", reply);
	smtp_session_txn_reset(s);
	smtp_session_xforward_reset(s);
}

/* --- end of a message ---------------------------------------------------- */

static void
smtp_session_work(void *arg)
{
	struct smtp_session *s = arg;
	struct smtp_txn *t = &s->txn;
	int rc;

	rc = s->srv->conf.spool_fsync ? fsync(s->spool_fd) : 0;
	if (rc == -1)
		log_warn("smtp: id=%s fsync %s", t->id, t->spool_path);
	if (close(s->spool_fd) == -1 && rc == 0) {
		log_warn("smtp: id=%s close %s", t->id, t->spool_path);
		rc = -1;
	}
	s->spool_fd = -1;
	if (rc == -1) {
		for (size_t i = 0; i < t->nrcpts; i++) {
			t->rcpts[i].code = 451;
			snprintf(t->rcpts[i].reply, sizeof(t->rcpts[i].reply),
			    "4.3.0 Local error storing the message");
		}
		return;
	}
	s->msg_fn(s->msg_arg, t);
}

static void
smtp_session_done(void *arg)
{
	struct smtp_session *s = arg;
	struct smtp_txn *t = &s->txn;
	char result[256];
	size_t first4 = t->nrcpts, first5 = t->nrcpts, rlen = 0;

	for (size_t i = 0; i < t->nrcpts; i++) {
		struct smtp_rcpt *r = &t->rcpts[i];

		if (r->code < 200 || r->code > 599 ||
		    (r->code >= 300 && r->code < 400)) {
			log_warnx("smtp: id=%s no valid answer for <%s>",
			    t->id, r->addr);
			r->code = 451;
			snprintf(r->reply, sizeof(r->reply),
			    "4.3.0 Local error in the message handler");
		}
		if (r->code >= 400 && r->code < 500 && first4 == t->nrcpts)
			first4 = i;
		if (r->code >= 500 && first5 == t->nrcpts)
			first5 = i;
		if (rlen < sizeof(result))
			rlen += snprintf(result + rlen, sizeof(result) - rlen,
			    "%s%d", i ? "," : "", r->code);
	}
	if (s->dead) {
		s->reason = s->reason ? s->reason : "lost connection";
		smtp_session_log_txn(s, "lost connection");
		smtp_session_free(s);
		return;
	}
	if (t->lmtp) {
		for (size_t i = 0; i < t->nrcpts; i++)
			smtp_session_reply(s, "%d %s", t->rcpts[i].code,
			    t->rcpts[i].reply);
	} else {
		size_t pick = first4 != t->nrcpts ? first4 :
		    first5 != t->nrcpts ? first5 : 0;

		snprintf(result, sizeof(result), "%d",
		    t->rcpts[pick].code);
		smtp_session_reply(s, "%d %s", t->rcpts[pick].code,
		    t->rcpts[pick].reply);
	}
	smtp_session_log_txn(s, result);
	s->nmsgs++;
	smtp_session_txn_reset(s);
	smtp_session_xforward_reset(s);
	s->state = SMTP_STATE_CMD;
	smtp_session_timeouts(s);
	bufferevent_enable(s->bev, EV_READ);
	/* Commands pipelined behind the message are waiting. */
	smtp_session_process(s);
}

static int
smtp_session_spool_open(struct smtp_session *s)
{
	struct smtp_txn *t = &s->txn;

	xasprintf(&t->spool_path, "%s/%s.spool", s->srv->conf.spool_dir,
	    t->id);
	s->spool_fd = open(t->spool_path, O_WRONLY | O_CREAT | O_EXCL |
	    O_CLOEXEC | O_NOFOLLOW, 0600);
	if (s->spool_fd == -1) {
		log_warn("smtp: id=%s open %s", t->id, t->spool_path);
		xfree(&t->spool_path);
		return -1;
	}
	s->data = xmalloc(sizeof(*s->data));
	return 0;
}

/* The body is complete (DATA end or BDAT LAST): refuse or hand it over. */
static void
smtp_session_message(struct smtp_session *s)
{
	struct smtp_data *d = s->data;

	if (smtp_data_finish(d) == -1) {
		errno = d->werrno;
		log_warn("smtp: id=%s write %s", s->txn.id,
		    s->txn.spool_path);
	}
	s->txn.size = d->size;
	s->state = SMTP_STATE_CMD;
	smtp_session_timeouts(s);
	if (d->bare) {
		/*
		 * SMTP smuggling: refuse the whole transaction at the real
		 * end of data and keep the session, so nothing hidden
		 * behind the bare line ending is ever taken as commands or
		 * as a second message.
		 */
		smtp_session_txn_refuse(s, "550 5.5.2 Message refused: bare "
		    "<CR> or <LF> in message data");
		return;
	}
	if (d->nul) {
		smtp_session_txn_refuse(s, "550 5.6.0 Message refused: NUL "
		    "byte in message data");
		return;
	}
	if (d->too_big) {
		smtp_session_txn_refuse(s, "552 5.3.4 Message size exceeds "
		    "fixed limit");
		return;
	}
	if (d->werrno != 0) {
		smtp_session_txn_refuse(s, "451 4.3.0 Local error writing "
		    "the message");
		return;
	}
	s->state = SMTP_STATE_MESSAGE;
	bufferevent_disable(s->bev, EV_READ);
	s->msg_fn = s->srv->ops.message;
	s->msg_arg = s->srv->arg;
	workq_submit(s->srv->wq, smtp_session_work, smtp_session_done, s);
}

static void
smtp_session_bdat_end(struct smtp_session *s)
{
	struct smtp_data *d = s->data;

	s->state = SMTP_STATE_CMD;
	smtp_session_timeouts(s);
	if (s->bdat_reply[0] != '\0') {
		char reply[sizeof(s->bdat_reply)];

		strcpy(reply, s->bdat_reply);
		s->bdat_reply[0] = '\0';
		if (s->in_txn) {
			s->bdat_failed = !s->bdat_last;
			if (s->bdat_last)
				smtp_session_txn_refuse(s, reply);
			else
				smtp_session_reply(s, "%s", reply);
		} else
			smtp_session_error(s, reply);
		return;
	}
	if (s->bdat_last) {
		smtp_session_message(s);
		return;
	}
	/* Refuse as soon as a chunk shows it, as RFC 3030 4.2 asks. */
	if (d->bare || d->nul || d->too_big) {
		s->bdat_failed = 1;
		smtp_session_reply(s, "%s", d->bare ?
		    "550 5.5.2 Message refused: bare <CR> or <LF> in message "
		    "data" : d->nul ? "550 5.6.0 Message refused: NUL byte in "
		    "message data" : "552 5.3.4 Message size exceeds fixed "
		    "limit");
		return;
	}
	smtp_session_reply(s, "250 2.0.0 %lld octets received",
	    (long long)d->size);
}

/* --- commands ------------------------------------------------------------ */

static int
smtp_session_hello(struct smtp_session *s, const struct smtp_cmd *cmd)
{
	const struct smtp_server_conf *c = &s->srv->conf;
	const char *ext[12];
	char size[32];
	size_t n = 0;

	if (c->lmtp != (cmd->verb == SMTP_VERB_LHLO))
		return smtp_session_error(s, c->lmtp ?
		    "500 5.5.1 This is LMTP: use LHLO" :
		    "500 5.5.1 Command unrecognized");
	smtp_session_txn_reset(s);
	smtp_session_xforward_reset(s);
	snprintf(s->helo, sizeof(s->helo), "%.255s", cmd->arg);
	s->greeted = 1;
	if (cmd->verb == SMTP_VERB_HELO) {
		smtp_session_reply(s, "250 %s", c->hostname);
		return 0;
	}
	snprintf(size, sizeof(size), "SIZE %zu", c->max_message_size);
	ext[n++] = "PIPELINING";
	ext[n++] = size;
	ext[n++] = "8BITMIME";
	ext[n++] = "ENHANCEDSTATUSCODES";
	if (c->tls_ctx != NULL && !s->tls)
		ext[n++] = "STARTTLS";
	ext[n++] = "SMTPUTF8";
	ext[n++] = "CHUNKING";
	if (netaddr_list_match(c->xforward_from,
	    (const struct sockaddr *)&s->ss))
		ext[n++] = "XFORWARD NAME ADDR PORT PROTO HELO IDENT SOURCE";
	smtp_session_reply(s, "250-%s", c->hostname);
	for (size_t i = 0; i < n; i++)
		smtp_session_reply(s, "250%c%s", i + 1 == n ? ' ' : '-',
		    ext[i]);
	return 0;
}

static int
smtp_session_mail(struct smtp_session *s, const struct smtp_cmd *cmd)
{
	const struct smtp_server_conf *c = &s->srv->conf;
	struct smtp_txn *t = &s->txn;

	if (!s->greeted)
		return smtp_session_error(s, c->lmtp ?
		    "503 5.5.1 Error: send LHLO first" :
		    "503 5.5.1 Error: send HELO/EHLO first");
	if (c->tls_required && !s->tls)
		return smtp_session_error(s, "530 5.7.0 Must issue a "
		    "STARTTLS command first");
	if (s->in_txn)
		return smtp_session_error(s, "503 5.5.1 Error: nested MAIL "
		    "command");
	if (cmd->size >= 0 && (unsigned long long)cmd->size >
	    c->max_message_size)
		return smtp_session_error(s, "552 5.3.4 Message size exceeds "
		    "fixed limit");
	memset(t, 0, sizeof(*t));
	log_new_id(t->id);
	t->mail_from = xstrdup(cmd->path);
	t->smtputf8 = cmd->smtputf8;
	t->body_8bit = cmd->body_8bit;
	t->lmtp = c->lmtp;
	t->tls = s->tls;
	memcpy(t->tls_peer_fp, s->tls_fp, sizeof(t->tls_peer_fp));
	snprintf(t->client_addr, sizeof(t->client_addr), "%s",
	    s->xf_addr[0] ? s->xf_addr : s->addr);
	snprintf(t->client_name, sizeof(t->client_name), "%s",
	    s->xf_name[0] ? s->xf_name : "unknown");
	snprintf(t->helo, sizeof(t->helo), "%s",
	    s->xf_helo[0] ? s->xf_helo : s->helo);
	s->in_txn = 1;
	smtp_session_reply(s, "250 2.1.0 Ok");
	return 0;
}

static int
smtp_session_rcpt(struct smtp_session *s, const struct smtp_cmd *cmd)
{
	const struct smtp_server_conf *c = &s->srv->conf;
	struct smtp_txn *t = &s->txn;
	char reply[512];
	const char *why;
	struct addr a;

	if (!s->in_txn)
		return smtp_session_error(s, "503 5.5.1 Error: need MAIL "
		    "command");
	if (s->used_bdat)
		return smtp_session_error(s, "503 5.5.1 Error: RCPT after "
		    "BDAT");
	if (!t->smtputf8 && strcasecmp(cmd->path, "postmaster") != 0 &&
	    addr_parse(cmd->path, 0, &a, &why) == -1)
		return smtp_session_error(s, "501 5.1.3 Bad recipient address "
		    "syntax: UTF-8 needs MAIL FROM with SMTPUTF8");
	if (t->nrcpts >= c->max_recipients) {
		smtp_session_reply(s, "452 4.5.3 Error: too many recipients");
		return 0;
	}
	reply[0] = '\0';
	if (s->srv->ops.rcpt != NULL &&
	    s->srv->ops.rcpt(s->srv->arg, t, cmd->path, reply,
	    sizeof(reply)) == -1) {
		if (reply[0] == '\0')
			snprintf(reply, sizeof(reply), "550 5.1.1 <%.400s>: "
			    "Recipient address rejected", cmd->path);
		return smtp_session_error(s, reply);
	}
	t->rcpts = xreallocarray(t->rcpts, t->nrcpts + 1, sizeof(*t->rcpts));
	memset(&t->rcpts[t->nrcpts], 0, sizeof(*t->rcpts));
	t->rcpts[t->nrcpts++].addr = xstrdup(cmd->path);
	smtp_session_reply(s, "250 2.1.5 Ok");
	return 0;
}

static int
smtp_session_data(struct smtp_session *s)
{
	if (!s->in_txn)
		return smtp_session_error(s, "503 5.5.1 Error: need MAIL "
		    "command");
	if (s->used_bdat)
		return smtp_session_error(s, "503 5.5.1 Error: DATA and BDAT "
		    "in one transaction");
	if (s->txn.nrcpts == 0)
		return smtp_session_error(s, "554 5.5.1 Error: no valid "
		    "recipients");
	if (smtp_session_spool_open(s) == -1) {
		smtp_session_txn_refuse(s, "451 4.3.0 Local error, try again "
		    "later");
		return 0;
	}
	smtp_data_init(s->data, s->spool_fd, s->srv->conf.max_message_size,
	    1);
	s->state = SMTP_STATE_DATA;
	smtp_session_timeouts(s);
	smtp_session_reply(s, "354 End data with <CR><LF>.<CR><LF>");
	return 0;
}

static int
smtp_session_bdat(struct smtp_session *s, const struct smtp_cmd *cmd)
{
	const char *refuse = NULL;

	/* The chunk follows regardless; it is read, then answered. */
	if (!s->in_txn)
		refuse = "503 5.5.1 Error: need MAIL command";
	else if (s->txn.nrcpts == 0)
		refuse = "554 5.5.1 Error: no valid recipients";
	else if (s->bdat_failed)
		refuse = "503 5.5.1 Error: transaction failed, send RSET";
	else if (!s->used_bdat) {
		if (smtp_session_spool_open(s) == -1)
			refuse = "451 4.3.0 Local error, try again later";
		else {
			smtp_data_init(s->data, s->spool_fd,
			    s->srv->conf.max_message_size, 0);
			s->used_bdat = 1;
		}
	}
	snprintf(s->bdat_reply, sizeof(s->bdat_reply), "%s",
	    refuse ? refuse : "");
	s->bdat_left = cmd->chunk_size;
	s->bdat_last = cmd->last;
	s->state = SMTP_STATE_BDAT;
	smtp_session_timeouts(s);
	if (s->bdat_left == 0)
		smtp_session_bdat_end(s);
	return 0;
}

static unsigned int
smtp_session_hex(char c)
{
	return isdigit((unsigned char)c) ? (unsigned int)(c - '0') :
	    (unsigned int)(tolower((unsigned char)c) - 'a' + 10);
}

/* Postfix xtext-style values: "+XX" is one byte. */
static int
smtp_session_xtext(const char *v, size_t n, char *out, size_t outlen)
{
	size_t o = 0;

	for (size_t i = 0; i < n; i++) {
		unsigned int c = (unsigned char)v[i];

		if (c == '+') {
			if (i + 2 >= n || !isxdigit((unsigned char)v[i + 1]) ||
			    !isxdigit((unsigned char)v[i + 2]))
				return -1;
			c = smtp_session_hex(v[i + 1]) << 4 |
			    smtp_session_hex(v[i + 2]);
			i += 2;
		}
		if (c < 0x21 || c > 0x7e || o + 1 >= outlen)
			return -1;
		out[o++] = (char)c;
	}
	out[o] = '\0';
	return 0;
}

static int
smtp_session_xf_is(const char *kw, const char *eq, const char *name)
{
	return (size_t)(eq - kw) == strlen(name) &&
	    strncasecmp(kw, name, eq - kw) == 0;
}

static int
smtp_session_xforward(struct smtp_session *s, const struct smtp_cmd *cmd)
{
	const char *p = cmd->arg;

	if (!netaddr_list_match(s->srv->conf.xforward_from,
	    (const struct sockaddr *)&s->ss))
		return smtp_session_error(s, "550 5.7.0 Error: XFORWARD not "
		    "permitted");
	if (s->in_txn)
		return smtp_session_error(s, "503 5.5.1 Error: XFORWARD in a "
		    "mail transaction");
	while (*p != '\0') {
		const char *kw = p, *eq, *end;
		char val[256], *dst = NULL;
		size_t dstlen = 0;

		while (*p != '\0' && *p != ' ')
			p++;
		end = p;
		while (*p == ' ')
			p++;
		if ((eq = memchr(kw, '=', end - kw)) == NULL)
			return smtp_session_error(s, "501 5.5.4 Syntax: "
			    "XFORWARD attribute=value");
		if (smtp_session_xf_is(kw, eq, "NAME")) {
			dst = s->xf_name;
			dstlen = sizeof(s->xf_name);
		} else if (smtp_session_xf_is(kw, eq, "ADDR")) {
			dst = s->xf_addr;
			dstlen = sizeof(s->xf_addr);
		} else if (smtp_session_xf_is(kw, eq, "HELO")) {
			dst = s->xf_helo;
			dstlen = sizeof(s->xf_helo);
		} else if (!smtp_session_xf_is(kw, eq, "PORT") &&
		    !smtp_session_xf_is(kw, eq, "PROTO") &&
		    !smtp_session_xf_is(kw, eq, "IDENT") &&
		    !smtp_session_xf_is(kw, eq, "SOURCE"))
			return smtp_session_error(s, "501 5.5.4 Bad XFORWARD "
			    "attribute name");
		if (smtp_session_xtext(eq + 1, end - eq - 1, val,
		    sizeof(val)) == -1)
			return smtp_session_error(s, "501 5.5.4 Bad XFORWARD "
			    "attribute value");
		if (dst == NULL)
			continue;
		if (strcmp(val, "[UNAVAILABLE]") == 0 ||
		    strcmp(val, "[TEMPUNAVAIL]") == 0)
			val[0] = '\0';
		if (dst == s->xf_addr && strncasecmp(val, "IPV6:", 5) == 0)
			memmove(val, val + 5, strlen(val + 5) + 1);
		if (strlen(val) >= dstlen)
			return smtp_session_error(s, "501 5.5.4 XFORWARD "
			    "attribute value too long");
		strcpy(dst, val);
	}
	smtp_session_reply(s, "250 2.0.0 Ok");
	return 0;
}

static int
smtp_session_starttls(struct smtp_session *s)
{
	struct evbuffer *in = bufferevent_get_input(s->bev);
	size_t n;

	if (s->srv->conf.tls_ctx == NULL)
		return smtp_session_error(s, "502 5.5.1 Error: STARTTLS not "
		    "available");
	if (s->tls)
		return smtp_session_error(s, "503 5.5.1 Error: TLS already "
		    "active");
	smtp_session_reply(s, "220 2.0.0 Ready to start TLS");
	/* Plaintext sent behind STARTTLS must not count as TLS input. */
	if ((n = evbuffer_get_length(in)) > 0) {
		log_info("smtp: %s discarded %zu bytes pipelined after "
		    "STARTTLS", s->addr, n);
		evbuffer_drain(in, n);
	}
	bufferevent_disable(s->bev, EV_READ);
	s->state = SMTP_STATE_STARTTLS;
	return 0;
}

static void
smtp_session_command(struct smtp_session *s, const char *line, size_t len)
{
	struct smtp_cmd cmd;
	char reply[512];

	log_debug("smtp: %s < %.*s", s->addr, (int)len, line);
	if (smtp_cmd_parse(line, len, &cmd, reply, sizeof(reply)) == -1) {
		smtp_session_error(s, reply);
		return;
	}
	switch (cmd.verb) {
	case SMTP_VERB_HELO:
	case SMTP_VERB_EHLO:
	case SMTP_VERB_LHLO:
		smtp_session_hello(s, &cmd);
		break;
	case SMTP_VERB_MAIL:
		smtp_session_mail(s, &cmd);
		break;
	case SMTP_VERB_RCPT:
		smtp_session_rcpt(s, &cmd);
		break;
	case SMTP_VERB_DATA:
		smtp_session_data(s);
		break;
	case SMTP_VERB_BDAT:
		smtp_session_bdat(s, &cmd);
		break;
	case SMTP_VERB_RSET:
		smtp_session_txn_reset(s);
		smtp_session_xforward_reset(s);
		smtp_session_reply(s, "250 2.0.0 Ok");
		break;
	case SMTP_VERB_NOOP:
		smtp_session_reply(s, "250 2.0.0 Ok");
		break;
	case SMTP_VERB_QUIT:
		smtp_session_reply(s, "221 2.0.0 Bye");
		smtp_session_close(s, "quit");
		break;
	case SMTP_VERB_VRFY:
		smtp_session_reply(s, "252 2.0.0 Cannot VRFY user, but will "
		    "accept message and attempt delivery");
		break;
	case SMTP_VERB_HELP:
		smtp_session_reply(s, "214 2.0.0 See RFC 5321");
		break;
	case SMTP_VERB_STARTTLS:
		smtp_session_starttls(s);
		break;
	case SMTP_VERB_XFORWARD:
		smtp_session_xforward(s, &cmd);
		break;
	case SMTP_VERB_NONE:
		fatalx("smtp_session_command: parser returned no verb");
	}
}

/* --- input --------------------------------------------------------------- */

/* Handles one command line if a whole one is buffered; 0 if not. */
static int
smtp_session_line(struct smtp_session *s)
{
	struct evbuffer *in = bufferevent_get_input(s->bev);
	size_t max = s->srv->conf.max_line, len;
	struct evbuffer_ptr pos;
	char *line;

	pos = evbuffer_search(in, "\n", 1, NULL);
	if (pos.pos == -1) {
		len = evbuffer_get_length(in);
		if (len <= max)
			return 0;
		evbuffer_drain(in, len);
		if (!s->skip_line) {
			s->skip_line = 1;
			smtp_session_error(s, "500 5.5.2 Error: line too long");
		}
		return 1;
	}
	len = (size_t)pos.pos + 1;
	if (s->skip_line || len > max) {
		evbuffer_drain(in, len);
		if (!s->skip_line)
			smtp_session_error(s, "500 5.5.2 Error: line too long");
		s->skip_line = 0;
		return 1;
	}
	line = xmalloc(len + 1);
	evbuffer_remove(in, line, len);
	line[len] = '\0';
	if (len < 2 || line[len - 2] != '\r')
		smtp_session_error(s, "500 5.5.2 Error: bare <LF> received");
	else
		smtp_session_command(s, line, len - 2);
	free(line);
	return 1;
}

static void
smtp_session_body(struct smtp_session *s)
{
	struct evbuffer *in = bufferevent_get_input(s->bev);
	const unsigned char *p;
	size_t n, used;
	int end;

	n = evbuffer_get_contiguous_space(in);
	if (s->state == SMTP_STATE_BDAT && (long long)n > s->bdat_left)
		n = (size_t)s->bdat_left;
	p = evbuffer_pullup(in, n);
	if (s->state == SMTP_STATE_DATA) {
		end = smtp_data_feed(s->data, p, n, &used);
		evbuffer_drain(in, used);
		if (end)
			smtp_session_message(s);
		return;
	}
	if (s->bdat_reply[0] == '\0')
		smtp_data_feed(s->data, p, n, &used);
	evbuffer_drain(in, n);
	s->bdat_left -= n;
	if (s->bdat_left == 0)
		smtp_session_bdat_end(s);
}

static void
smtp_session_process(struct smtp_session *s)
{
	struct evbuffer *in = bufferevent_get_input(s->bev);

	while (evbuffer_get_length(in) > 0) {
		switch (s->state) {
		case SMTP_STATE_CMD:
			if (!smtp_session_line(s))
				return;
			break;
		case SMTP_STATE_DATA:
		case SMTP_STATE_BDAT:
			smtp_session_body(s);
			break;
		default:
			return;
		}
	}
}

static void
smtp_session_read(struct bufferevent *bev, void *arg)
{
	(void)bev;
	smtp_session_process(arg);
}

/* --- TLS and connection events ------------------------------------------- */

static void
smtp_session_tls_start(struct smtp_session *s)
{
	SSL *ssl;

	if ((ssl = SSL_new(s->srv->conf.tls_ctx)) == NULL) {
		log_warnx("smtp: %s SSL_new failed", s->addr);
		smtp_session_free(s);
		return;
	}
	/* The plaintext bufferevent goes with whatever it still buffers. */
	bufferevent_free(s->bev);
	s->bev = bufferevent_openssl_socket_new(s->srv->base, s->fd, ssl,
	    BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
	if (s->bev == NULL) {
		log_warnx("smtp: %s TLS bufferevent failed", s->addr);
		SSL_free(ssl);
		close(s->fd);
		s->fd = -1;
		smtp_session_free(s);
		return;
	}
	s->tls = 1;
	bufferevent_openssl_set_allow_dirty_shutdown(s->bev, 1);
	s->state = SMTP_STATE_HANDSHAKE;
	bufferevent_setcb(s->bev, smtp_session_read, smtp_session_write,
	    smtp_session_event, s);
	bufferevent_setwatermark(s->bev, EV_READ, 0, SMTP_SESSION_INBUF);
	smtp_session_timeouts(s);
	bufferevent_enable(s->bev, EV_READ | EV_WRITE);
}

static void
smtp_session_tls_done(struct smtp_session *s)
{
	SSL *ssl = bufferevent_openssl_get_ssl(s->bev);

	tls_peer_fingerprint(ssl, s->tls_fp);
	snprintf(s->tls_info, sizeof(s->tls_info), "%s:%s",
	    SSL_get_version(ssl), SSL_get_cipher_name(ssl));
	/* RFC 3207 4.2: forget everything learnt before TLS. */
	smtp_session_txn_reset(s);
	smtp_session_xforward_reset(s);
	s->greeted = 0;
	s->helo[0] = '\0';
	s->state = SMTP_STATE_CMD;
	smtp_session_timeouts(s);
	smtp_session_process(s);
}

static void
smtp_session_write(struct bufferevent *bev, void *arg)
{
	struct smtp_session *s = arg;

	if (evbuffer_get_length(bufferevent_get_output(bev)) != 0)
		return;
	if (s->state == SMTP_STATE_CLOSING)
		smtp_session_free(s);
	else if (s->state == SMTP_STATE_STARTTLS)
		smtp_session_tls_start(s);
}

static void
smtp_session_event(struct bufferevent *bev, short what, void *arg)
{
	struct smtp_session *s = arg;

	(void)bev;
	if (what & BEV_EVENT_CONNECTED) {
		smtp_session_tls_done(s);
		return;
	}
	if ((what & BEV_EVENT_TIMEOUT) && s->state != SMTP_STATE_CLOSING &&
	    s->state != SMTP_STATE_HANDSHAKE && (what & BEV_EVENT_READING)) {
		smtp_session_reply(s, "421 4.4.2 %s Error: timeout exceeded",
		    s->srv->conf.hostname);
		smtp_session_close(s, "timeout");
		return;
	}
	if (what & BEV_EVENT_TIMEOUT)
		s->reason = s->reason ? s->reason : "write timeout";
	else if (what & BEV_EVENT_EOF)
		s->reason = s->reason ? s->reason : "lost connection";
	else {
		s->reason = s->reason ? s->reason :
		    s->state == SMTP_STATE_HANDSHAKE ? "TLS handshake failed" :
		    "connection error";
	}
	if (s->state == SMTP_STATE_MESSAGE) {
		/* The worker still has the transaction; it frees s. */
		s->dead = 1;
		return;
	}
	/* A client that only shut down its side still gets its replies. */
	if ((what & BEV_EVENT_EOF) && !(what & BEV_EVENT_ERROR) &&
	    s->state != SMTP_STATE_HANDSHAKE && s->state != SMTP_STATE_CLOSING) {
		smtp_session_close(s, "lost connection");
		return;
	}
	smtp_session_free(s);
}

/* --- lifetime ------------------------------------------------------------ */

void
smtp_session_new(struct smtp_server *srv, int fd, const struct sockaddr *sa,
    socklen_t salen, const char *refusal)
{
	struct smtp_session *s;
	char reply[512];

	s = xcalloc(1, sizeof(*s));
	s->srv = srv;
	s->fd = fd;
	s->spool_fd = -1;
	if (salen > sizeof(s->ss))
		salen = sizeof(s->ss);
	memcpy(&s->ss, sa, salen);
	s->sslen = salen;
	netaddr_ntop(sa, s->addr, sizeof(s->addr));
	s->state = SMTP_STATE_CMD;
	s->ev_close = evtimer_new(srv->base, smtp_session_close_cb, s);
	s->bev = bufferevent_socket_new(srv->base, fd, 0);
	if (s->bev == NULL || s->ev_close == NULL)
		fatalx("smtp: out of memory for a session");
	bufferevent_setcb(s->bev, smtp_session_read, smtp_session_write,
	    smtp_session_event, s);
	bufferevent_setwatermark(s->bev, EV_READ, 0, SMTP_SESSION_INBUF);
	TAILQ_INSERT_TAIL(&srv->sessions, s, entry);
	srv->nsessions++;
	smtp_session_timeouts(s);
	bufferevent_enable(s->bev, EV_READ | EV_WRITE);
	if (refusal != NULL) {
		smtp_session_reply(s, "%s", refusal);
		smtp_session_close(s, "connection limit");
		return;
	}
	reply[0] = '\0';
	if (srv->ops.connect != NULL && srv->ops.connect(srv->arg, sa, salen,
	    reply, sizeof(reply)) == -1) {
		smtp_session_reply(s, "%s", reply[0] ? reply :
		    "554 5.7.1 Access denied");
		smtp_session_close(s, "refused at connect");
		return;
	}
	smtp_session_reply(s, "220 %s %s Postern", srv->conf.hostname,
	    srv->conf.lmtp ? "LMTP" : "ESMTP");
}

void
smtp_session_free(struct smtp_session *s)
{
	if (s->srv != NULL) {
		TAILQ_REMOVE(&s->srv->sessions, s, entry);
		s->srv->nsessions--;
	}
	log_info("smtp: disconnect client=%s helo=%s tls=%s%s%s msgs=%d "
	    "errors=%d reason=%s", s->addr, s->helo[0] ? s->helo : "-",
	    s->tls ? (s->tls_info[0] ? s->tls_info : "handshake") : "no",
	    s->tls_fp[0] ? " client_fp=" : "", s->tls_fp, s->nmsgs,
	    s->nerrors, s->reason ? s->reason : "closed");
	smtp_session_txn_reset(s);
	if (s->bev != NULL)
		bufferevent_free(s->bev);
	if (!s->tls && s->fd != -1)
		close(s->fd);
	event_free(s->ev_close);
	free(s);
}
