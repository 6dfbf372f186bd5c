/*
 * Outbound SMTP client: one blocking transaction per call (MAIL, RCPT...,
 * DATA), the message streamed from its file in fixed chunks and
 * dot-stuffed, never altered otherwise.
 *
 * Connections are cached per thread: after a transaction ends cleanly the
 * session (greeting, EHLO, STARTTLS done) is kept for the next message to
 * the same hop with the same TLS settings, up to an idle timeout. MAIL,
 * RCPT and DATA go out in one write when the server offers PIPELINING
 * (RFC 2920). A cached connection the server has dropped shows up before
 * any reply to MAIL arrives, so nothing was sent: the transaction is
 * retried once on a fresh connection. TLS contexts are kept per hop for
 * the life of the process, with the last session for resumption.
 *
 * SECURITY: the next hop's replies are untrusted input. Reply lines and multi-line
 * replies are bounded; anything malformed ends the session as a temporary
 * failure. Bytes the server sends ahead of the TLS handshake are refused
 * (STARTTLS command injection).
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "log.h"
#include "smtp_client.h"

#define SMTP_CLIENT_LINE_MAX	2048	/* one reply line, CRLF included */
#define SMTP_CLIENT_REPLY_LINES	128	/* lines in one multi-line reply */
#define SMTP_CLIENT_CHUNK	65536	/* message read and write unit */
#define SMTP_CLIENT_ADDR_MAX	1024

#define SMTP_CLIENT_CAP_STARTTLS	0x01
#define SMTP_CLIENT_CAP_8BITMIME	0x02
#define SMTP_CLIENT_CAP_SMTPUTF8	0x04
#define SMTP_CLIENT_CAP_SIZE		0x08
#define SMTP_CLIENT_CAP_PIPELINING	0x10

#define SMTP_CLIENT_KEY_MAX	1024	/* hop + TLS settings, as text */
#define SMTP_CLIENT_CACHE_MAX	8	/* idle connections per thread */

struct smtp_client_conn {
	int		 fd;
	struct smtp_client_tlsctx *tc;	/* shared, never freed here */
	SSL		*ssl;
	char		 key[SMTP_CLIENT_KEY_MAX];
	time_t		 idle_since;
	int		 reused;	/* came from the cache */
	int		 replied;	/* got a reply in this transaction */
	unsigned int	 caps;
	unsigned long long size_max;	/* SIZE limit, 0: none given */
	int		 code;		/* last reply */
	char		 text[512];
	char		 err[256];	/* local failure, for the result */
	size_t		 rpos, rlen;
	char		 rbuf[4096];
	size_t		 wlen;
	char		 wbuf[SMTP_CLIENT_CHUNK];
};

/* One TLS context per hop and TLS settings, kept for the process. */
struct smtp_client_tlsctx {
	char		 key[SMTP_CLIENT_KEY_MAX];
	SSL_CTX		*ctx;
	SSL_SESSION	*sess;		/* last session, for resumption */
};

static pthread_mutex_t smtp_client_ctx_mtx = PTHREAD_MUTEX_INITIALIZER;
static struct smtp_client_tlsctx **smtp_client_ctxv;
static size_t smtp_client_nctx;

/* This thread's idle connections. */
struct smtp_client_cache {
	struct smtp_client_conn	*conn[SMTP_CLIENT_CACHE_MAX];
};

static pthread_key_t	smtp_client_cache_key;
static pthread_once_t	smtp_client_cache_once = PTHREAD_ONCE_INIT;
static int		smtp_client_idle_max = 30;	/* seconds */

static void	smtp_client_close(struct smtp_client_conn *, int);

static void
smtp_client_seterr(struct smtp_client_conn *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void
smtp_client_seterr(struct smtp_client_conn *c, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(c->err, sizeof(c->err), fmt, ap);
	va_end(ap);
}

static int
smtp_client_connect(struct smtp_client_conn *c,
    const struct smtp_client_target *t)
{
	struct addrinfo hints, *res, *ai;
	struct timeval tv;
	struct pollfd pfd;
	char port[16];
	int fd = -1, r, soerr, flags;
	socklen_t sl;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV;
	snprintf(port, sizeof(port), "%d", t->port);
	if ((r = getaddrinfo(t->host, port, &hints, &res)) != 0) {
		smtp_client_seterr(c, "cannot resolve %s: %s", t->host,
		    gai_strerror(r));
		return -1;
	}
	smtp_client_seterr(c, "no address for %s", t->host);
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC |
		    SOCK_NONBLOCK, ai->ai_protocol);
		if (fd == -1) {
			smtp_client_seterr(c, "socket: %s", strerror(errno));
			continue;
		}
		r = connect(fd, ai->ai_addr, ai->ai_addrlen);
		if (r == -1 && errno == EINPROGRESS) {
			pfd.fd = fd;
			pfd.events = POLLOUT;
			do
				r = poll(&pfd, 1, t->timeout * 1000);
			while (r == -1 && errno == EINTR);
			if (r == 0) {
				errno = ETIMEDOUT;
				r = -1;
			} else if (r == 1) {
				sl = sizeof(soerr);
				if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr,
				    &sl) == -1)
					soerr = errno;
				errno = soerr;
				r = soerr ? -1 : 0;
			}
		}
		if (r == 0)
			break;
		smtp_client_seterr(c, "connect to %s port %d: %s", t->host,
		    t->port, strerror(errno));
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd == -1)
		return -1;

	if ((flags = fcntl(fd, F_GETFL)) == -1 ||
	    fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) == -1) {
		smtp_client_seterr(c, "fcntl: %s", strerror(errno));
		close(fd);
		return -1;
	}
	/* A per-step deadline: every read and write gives up after this. */
	tv.tv_sec = t->timeout;
	tv.tv_usec = 0;
	if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) == -1 ||
	    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) == -1) {
		smtp_client_seterr(c, "setsockopt: %s", strerror(errno));
		close(fd);
		return -1;
	}
	/* Commands and replies are small; Nagle would hold each one back. */
	r = 1;
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &r, sizeof(r));
	c->fd = fd;
	return 0;
}

static void
smtp_client_ioerr(struct smtp_client_conn *c, const char *what, int sslerr)
{
	unsigned long e;

	if (errno == EAGAIN || errno == EWOULDBLOCK)
		smtp_client_seterr(c, "timeout while %s", what);
	else if (sslerr == SSL_ERROR_SSL && (e = ERR_get_error()) != 0)
		smtp_client_seterr(c, "TLS error while %s: %s", what,
		    ERR_reason_error_string(e));
	else if (errno != 0)
		smtp_client_seterr(c, "%s: %s", what, strerror(errno));
	else
		smtp_client_seterr(c, "connection closed while %s", what);
	ERR_clear_error();
}

/* Fills the read buffer: >0 bytes, -1 on error, timeout or EOF. */
static int
smtp_client_fill(struct smtp_client_conn *c)
{
	ssize_t n;
	int e = 0;

	c->rpos = c->rlen = 0;
	errno = 0;
	if (c->ssl != NULL) {
		n = SSL_read(c->ssl, c->rbuf, sizeof(c->rbuf));
		if (n <= 0)
			e = SSL_get_error(c->ssl, (int)n);
	} else {
		do
			n = recv(c->fd, c->rbuf, sizeof(c->rbuf), 0);
		while (n == -1 && errno == EINTR);
	}
	if (n <= 0) {
		if (n == 0 && c->ssl == NULL)
			errno = 0;
		smtp_client_ioerr(c, "reading reply", e);
		return -1;
	}
	c->rlen = (size_t)n;
	return (int)n;
}

static int
smtp_client_flush(struct smtp_client_conn *c)
{
	size_t off = 0;
	ssize_t n;
	int e = 0;

	while (off < c->wlen) {
		errno = 0;
		if (c->ssl != NULL) {
			n = SSL_write(c->ssl, c->wbuf + off,
			    (int)(c->wlen - off));
			if (n <= 0)
				e = SSL_get_error(c->ssl, (int)n);
		} else {
			do
				n = send(c->fd, c->wbuf + off, c->wlen - off,
				    MSG_NOSIGNAL);
			while (n == -1 && errno == EINTR);
		}
		if (n <= 0) {
			smtp_client_ioerr(c, "sending", e);
			return -1;
		}
		off += (size_t)n;
	}
	c->wlen = 0;
	return 0;
}

static int
smtp_client_write(struct smtp_client_conn *c, const char *p, size_t len)
{
	size_t n;

	while (len > 0) {
		if (c->wlen == sizeof(c->wbuf) && smtp_client_flush(c) == -1)
			return -1;
		n = sizeof(c->wbuf) - c->wlen;
		if (n > len)
			n = len;
		memcpy(c->wbuf + c->wlen, p, n);
		c->wlen += n;
		p += n;
		len -= n;
	}
	return 0;
}

/* One reply line without its CRLF; -1 on I/O error or an overlong line. */
static int
smtp_client_getline(struct smtp_client_conn *c, char *line, size_t size)
{
	size_t len = 0;
	char ch;

	for (;;) {
		if (c->rpos == c->rlen && smtp_client_fill(c) == -1)
			return -1;
		ch = c->rbuf[c->rpos++];
		if (ch == '\n')
			break;
		if (len + 1 >= size) {
			smtp_client_seterr(c, "reply line too long");
			return -1;
		}
		line[len++] = ch;
	}
	if (len > 0 && line[len - 1] == '\r')
		len--;
	line[len] = '\0';
	return 0;
}

static void
smtp_client_ehlo_line(struct smtp_client_conn *c, const char *kw)
{
	size_t n = strcspn(kw, " ");

	if (n == 8 && strncasecmp(kw, "STARTTLS", n) == 0)
		c->caps |= SMTP_CLIENT_CAP_STARTTLS;
	else if (n == 8 && strncasecmp(kw, "8BITMIME", n) == 0)
		c->caps |= SMTP_CLIENT_CAP_8BITMIME;
	else if (n == 8 && strncasecmp(kw, "SMTPUTF8", n) == 0)
		c->caps |= SMTP_CLIENT_CAP_SMTPUTF8;
	else if (n == 10 && strncasecmp(kw, "PIPELINING", n) == 0)
		c->caps |= SMTP_CLIENT_CAP_PIPELINING;
	else if (n == 4 && strncasecmp(kw, "SIZE", n) == 0) {
		c->caps |= SMTP_CLIENT_CAP_SIZE;
		if (kw[n] == ' ')
			c->size_max = strtoull(kw + n + 1, NULL, 10);
	}
}

/*
 * Reads one (multi-line) reply into c->code and c->text; with ehlo set,
 * notes the extensions. Returns the code, -1 on I/O or syntax error.
 */
static int
smtp_client_reply(struct smtp_client_conn *c, int ehlo)
{
	char line[SMTP_CLIENT_LINE_MAX];
	const char *rest;
	size_t tl = 0;
	int i, w, code = -1, more;

	if (ehlo) {
		c->caps = 0;
		c->size_max = 0;
	}
	c->text[0] = '\0';
	for (i = 0; i < SMTP_CLIENT_REPLY_LINES; i++) {
		if (smtp_client_getline(c, line, sizeof(line)) == -1)
			return -1;
		if (strlen(line) < 3 || line[0] < '2' || line[0] > '5' ||
		    line[1] < '0' || line[1] > '9' ||
		    line[2] < '0' || line[2] > '9' ||
		    (line[3] != '\0' && line[3] != ' ' && line[3] != '-') ||
		    (code != -1 && atoi(line) != code)) {
			smtp_client_seterr(c, "malformed reply from server");
			return -1;
		}
		code = (line[0] - '0') * 100 + (line[1] - '0') * 10 +
		    (line[2] - '0');
		more = line[3] == '-';
		rest = line[3] ? line + 4 : "";
		if (ehlo && i > 0)
			smtp_client_ehlo_line(c, rest);
		if ((!ehlo || i == 0) && tl + 1 < sizeof(c->text)) {
			/* Keep the text, lines joined by a space. */
			w = snprintf(c->text + tl, sizeof(c->text) - tl, "%s%s",
			    tl ? " " : "", rest);
			if (w > 0)
				tl += (size_t)w;
			if (tl >= sizeof(c->text))
				tl = sizeof(c->text) - 1;
		}
		if (!more) {
			c->code = code;
			c->replied = 1;
			return code;
		}
	}
	smtp_client_seterr(c, "reply longer than %d lines",
	    SMTP_CLIENT_REPLY_LINES);
	return -1;
}

/* Queues one command line; smtp_client_flush() sends what is queued. */
static int
smtp_client_put(struct smtp_client_conn *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static int
smtp_client_put(struct smtp_client_conn *c, const char *fmt, ...)
{
	char buf[SMTP_CLIENT_ADDR_MAX + 256];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf) - 2, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(buf) - 2)
		fatalx("smtp_client_put: command too long");
	memcpy(buf + n, "\r\n", 2);
	return smtp_client_write(c, buf, (size_t)n + 2);
}

/* Sends one command and reads its reply. */
static int
smtp_client_cmd(struct smtp_client_conn *c, int ehlo, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int
smtp_client_cmd(struct smtp_client_conn *c, int ehlo, const char *fmt, ...)
{
	char buf[SMTP_CLIENT_ADDR_MAX + 256];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(buf))
		fatalx("smtp_client_cmd: command too long");
	if (smtp_client_put(c, "%s", buf) == -1 ||
	    smtp_client_flush(c) == -1)
		return -1;
	return smtp_client_reply(c, ehlo);
}

static int
smtp_client_is_ip(const char *host)
{
	unsigned char buf[sizeof(struct in6_addr)];

	return inet_pton(AF_INET, host, buf) == 1 ||
	    inet_pton(AF_INET6, host, buf) == 1;
}

/*
 * The hop and every setting that shapes its session, as one string: the
 * key of the connection cache and of the TLS contexts.
 */
static int
smtp_client_key(const struct smtp_client_target *t, char *key, size_t size)
{
	int n;

	n = snprintf(key, size, "%s|%d|%d|%s|%s|%s|%p|%s", t->host, t->port,
	    (int)t->tls, t->ca_file ? t->ca_file : "", t->cert_file ?
	    t->cert_file : "", t->key_file ? t->key_file : "", (void *)t->key,
	    t->helo ? t->helo : "");
	return n < 0 || (size_t)n >= size ? -1 : 0;
}

static int
smtp_client_newsess(SSL *ssl, SSL_SESSION *sess)
{
	struct smtp_client_tlsctx *tc;

	tc = SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl));
	if (tc == NULL)
		return 0;
	pthread_mutex_lock(&smtp_client_ctx_mtx);
	SSL_SESSION_free(tc->sess);
	tc->sess = sess;
	pthread_mutex_unlock(&smtp_client_ctx_mtx);
	return 1;			/* we keep the reference */
}

/* The TLS context for this hop, made on first use; NULL with c->err set. */
static struct smtp_client_tlsctx *
smtp_client_tlsctx(struct smtp_client_conn *c,
    const struct smtp_client_target *t)
{
	struct smtp_client_tlsctx *tc = NULL;
	SSL_CTX *ctx = NULL;
	size_t i;
	int r;

	pthread_mutex_lock(&smtp_client_ctx_mtx);
	for (i = 0; i < smtp_client_nctx; i++)
		if (strcmp(smtp_client_ctxv[i]->key, c->key) == 0) {
			tc = smtp_client_ctxv[i];
			goto done;
		}
	if ((ctx = SSL_CTX_new(TLS_client_method())) == NULL)
		goto sslerr;
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION |
	    SSL_OP_NO_RENEGOTIATION);
	if (t->tls == SMTP_CLIENT_TLS_ENCRYPT) {
		SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
		r = t->ca_file != NULL ?
		    SSL_CTX_load_verify_locations(ctx, t->ca_file, NULL) :
		    SSL_CTX_set_default_verify_paths(ctx);
		if (r != 1) {
			smtp_client_seterr(c, "cannot load CA file %s",
			    t->ca_file ? t->ca_file : "(system)");
			goto fail;
		}
	} else
		SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	if (t->cert_file != NULL) {
		if (SSL_CTX_use_certificate_chain_file(ctx,
		    t->cert_file) != 1 ||
		    (t->key != NULL ? SSL_CTX_use_PrivateKey(ctx, t->key) :
		    SSL_CTX_use_PrivateKey_file(ctx, t->key_file ?
		    t->key_file : t->cert_file, SSL_FILETYPE_PEM)) != 1 ||
		    SSL_CTX_check_private_key(ctx) != 1) {
			smtp_client_seterr(c, "cannot use client certificate "
			    "%s", t->cert_file);
			goto fail;
		}
	}
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT |
	    SSL_SESS_CACHE_NO_INTERNAL_STORE);
	SSL_CTX_sess_set_new_cb(ctx, smtp_client_newsess);
	tc = calloc(1, sizeof(*tc));
	smtp_client_ctxv = reallocarray(smtp_client_ctxv,
	    smtp_client_nctx + 1, sizeof(*smtp_client_ctxv));
	if (tc == NULL || smtp_client_ctxv == NULL)
		fatal("smtp_client_tlsctx");
	/* Hops come from the configuration, so this list stays small. */
	smtp_client_ctxv[smtp_client_nctx++] = tc;
	snprintf(tc->key, sizeof(tc->key), "%s", c->key);
	tc->ctx = ctx;
	SSL_CTX_set_app_data(ctx, tc);
	goto done;

 sslerr:
	smtp_client_seterr(c, "TLS setup failed: %s",
	    ERR_reason_error_string(ERR_get_error()));
	ERR_clear_error();
 fail:
	SSL_CTX_free(ctx);
	tc = NULL;
 done:
	pthread_mutex_unlock(&smtp_client_ctx_mtx);
	return tc;
}

static int
smtp_client_starttls(struct smtp_client_conn *c,
    const struct smtp_client_target *t)
{
	int r, e, verify = t->tls == SMTP_CLIENT_TLS_ENCRYPT;
	long vr;

	if (c->rpos != c->rlen) {
		smtp_client_seterr(c, "server sent data ahead of TLS");
		return -1;
	}
	if ((c->tc = smtp_client_tlsctx(c, t)) == NULL)
		return -1;
	if ((c->ssl = SSL_new(c->tc->ctx)) == NULL ||
	    SSL_set_fd(c->ssl, c->fd) != 1)
		goto sslerr;
	if (smtp_client_is_ip(t->host)) {
		if (verify && X509_VERIFY_PARAM_set1_ip_asc(
		    SSL_get0_param(c->ssl), t->host) != 1)
			goto sslerr;
	} else {
		if (SSL_set_tlsext_host_name(c->ssl, t->host) != 1)
			goto sslerr;
		if (verify && SSL_set1_host(c->ssl, t->host) != 1)
			goto sslerr;
	}
	pthread_mutex_lock(&smtp_client_ctx_mtx);
	if (c->tc->sess != NULL)
		(void)SSL_set_session(c->ssl, c->tc->sess);
	pthread_mutex_unlock(&smtp_client_ctx_mtx);
	errno = 0;
	if ((r = SSL_connect(c->ssl)) != 1) {
		e = SSL_get_error(c->ssl, r);
		if (verify && (vr = SSL_get_verify_result(c->ssl)) !=
		    X509_V_OK) {
			smtp_client_seterr(c, "certificate of %s not "
			    "trusted: %s", t->host,
			    X509_verify_cert_error_string(vr));
			ERR_clear_error();
		} else
			smtp_client_ioerr(c, "TLS handshake", e);
		SSL_free(c->ssl);
		c->ssl = NULL;
		return -1;
	}
	return 0;

 sslerr:
	smtp_client_seterr(c, "TLS setup failed: %s",
	    ERR_reason_error_string(ERR_get_error()));
	ERR_clear_error();
	return -1;
}

/* Writes n bytes of message content, dot-stuffed; *bol: at a line start. */
static int
smtp_client_stuff(struct smtp_client_conn *c, const char *buf, size_t n,
    int *bol)
{
	const char *nl;
	size_t i = 0, start = 0;

	while (i < n) {
		if (*bol && buf[i] == '.') {
			if (smtp_client_write(c, buf + start, i - start) == -1 ||
			    smtp_client_write(c, ".", 1) == -1)
				return -1;
			start = i;
		}
		/* On to the byte after the next LF: a line start. */
		if ((nl = memchr(buf + i, '\n', n - i)) == NULL) {
			*bol = 0;
			break;
		}
		i = (size_t)(nl - buf) + 1;
		*bol = 1;
	}
	return smtp_client_write(c, buf + start, n - start);
}

/* Streams head and the file as DATA content, dot-stuffed, then ".". */
static int
smtp_client_data(struct smtp_client_conn *c, const char *head,
    const char *path)
{
	char *buf;
	size_t n;
	int fd, bol = 1, last = '\n', rv = -1;
	ssize_t r;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1) {
		log_warn("smtp_client: %s", path);
		smtp_client_seterr(c, "cannot open message: %s",
		    strerror(errno));
		return -1;
	}
	buf = malloc(SMTP_CLIENT_CHUNK);
	if (buf == NULL)
		fatal("smtp_client_data");
	if (head != NULL && smtp_client_stuff(c, head, strlen(head),
	    &bol) == -1)
		goto done;
	for (;;) {
		do
			r = read(fd, buf, SMTP_CLIENT_CHUNK);
		while (r == -1 && errno == EINTR);
		if (r == -1) {
			log_warn("smtp_client: read %s", path);
			smtp_client_seterr(c, "cannot read message: %s",
			    strerror(errno));
			goto done;
		}
		if (r == 0)
			break;
		n = (size_t)r;
		if (smtp_client_stuff(c, buf, n, &bol) == -1)
			goto done;
		last = (unsigned char)buf[n - 1];
	}
	/* A last line without its CRLF still needs one before the dot. */
	if (last != '\n' && smtp_client_write(c, "\r\n", 2) == -1)
		goto done;
	if (smtp_client_write(c, ".\r\n", 3) == -1 ||
	    smtp_client_flush(c) == -1)
		goto done;
	rv = 0;
 done:
	free(buf);
	close(fd);
	return rv;
}

static int
smtp_client_addr_ok(const char *a)
{
	size_t n = strlen(a);

	if (n > SMTP_CLIENT_ADDR_MAX)
		return 0;
	for (; *a != '\0'; a++)
		if ((unsigned char)*a < 0x20 || *a == 0x7f || *a == '<' ||
		    *a == '>')
			return 0;
	return 1;
}

static int
smtp_client_status_of(int code)
{
	return code / 100 == 5 ? 5 : code / 100 == 2 ? 2 : 4;
}

static void
smtp_client_settext(struct smtp_client_result *res, size_t i, int code,
    const char *text)
{
	res->rcpt_code[i] = code;
	if (res->rcpt_reply != NULL)
		snprintf(res->rcpt_reply[i], sizeof(res->rcpt_reply[i]), "%s",
		    text);
}

/*
 * Greeting, EHLO, STARTTLS as the target asks. 0 when the session is
 * ready for MAIL; -1 with c->err, or with *code set to a refusal.
 */
static int
smtp_client_open(struct smtp_client_conn *c,
    const struct smtp_client_target *t, int *code)
{
	const char *helo = t->helo ? t->helo : "localhost";
	int tried_tls = 0;

	*code = 0;
	if (smtp_client_connect(c, t) == -1)
		return -1;
	if ((*code = smtp_client_reply(c, 0)) == -1)
		return -1;
	if (*code != 220)
		return -1;
 ehlo:
	if ((*code = smtp_client_cmd(c, 1, "EHLO %s", helo)) == -1)
		return -1;
	if (*code / 100 == 5 && !tried_tls) {
		c->caps = 0;
		if ((*code = smtp_client_cmd(c, 0, "HELO %s", helo)) == -1)
			return -1;
	}
	if (*code / 100 != 2)
		return -1;
	if (!tried_tls && t->tls != SMTP_CLIENT_TLS_NONE &&
	    (c->caps & SMTP_CLIENT_CAP_STARTTLS)) {
		tried_tls = 1;
		if ((*code = smtp_client_cmd(c, 0, "STARTTLS")) == -1)
			return -1;
		if (*code == 220) {
			if (smtp_client_starttls(c, t) == -1) {
				*code = -1;
				return -1;
			}
			goto ehlo;
		}
		if (t->tls == SMTP_CLIENT_TLS_ENCRYPT)
			return -1;
	} else if (!tried_tls && t->tls == SMTP_CLIENT_TLS_ENCRYPT) {
		smtp_client_seterr(c, "TLS required but %s does not offer "
		    "STARTTLS", t->host);
		*code = 0;
		return -1;
	}
	*code = 0;
	return 0;
}

/*
 * One transaction on an open session. Fills res; returns 1 when the
 * session is still clean for another transaction, 0 when it must be
 * closed, and -1 when it broke off before the server answered anything
 * (a dropped cached connection: nothing was sent).
 */
static int
smtp_client_txn(struct smtp_client_conn *c, const struct smtp_client_msg *m,
    off_t msgsize, struct smtp_client_result *res, int *rc)
{
	char size[40] = "";
	size_t i, nok = 0;
	int code, any4 = 0, pipe = (c->caps & SMTP_CLIENT_CAP_PIPELINING) != 0;

	if (m->smtputf8 && !(c->caps & SMTP_CLIENT_CAP_SMTPUTF8)) {
		res->status = 5;
		for (i = 0; i < m->nrcpts; i++)
			smtp_client_settext(res, i, 550,
			    "5.6.7 next hop does not support SMTPUTF8");
		snprintf(res->reply, sizeof(res->reply), "5.6.7 next hop "
		    "does not support SMTPUTF8");
		return 1;
	}
	if ((c->caps & SMTP_CLIENT_CAP_SIZE)) {
		if (c->size_max > 0 &&
		    (unsigned long long)msgsize > c->size_max) {
			res->status = 5;
			snprintf(res->reply, sizeof(res->reply), "5.3.4 message "
			    "larger than the next hop's limit of %llu bytes",
			    c->size_max);
			for (i = 0; i < m->nrcpts; i++)
				smtp_client_settext(res, i, 552, res->reply);
			return 1;
		}
		snprintf(size, sizeof(size), " SIZE=%lld",
		    (long long)msgsize);
	}

	/*
	 * With PIPELINING, MAIL, every RCPT and DATA go out in one write
	 * and the replies are read in order; without it, one at a time.
	 */
	c->replied = 0;
	if (smtp_client_put(c, "MAIL FROM:<%s>%s%s%s", m->from, size,
	    m->body_8bit && (c->caps & SMTP_CLIENT_CAP_8BITMIME) ?
	    " BODY=8BITMIME" : "", m->smtputf8 ? " SMTPUTF8" : "") == -1)
		return c->replied ? 0 : -1;
	if (pipe) {
		for (i = 0; i < m->nrcpts; i++)
			if (smtp_client_addr_ok(m->rcpts[i]) &&
			    smtp_client_put(c, "RCPT TO:<%s>",
			    m->rcpts[i]) == -1)
				return -1;
		if (smtp_client_put(c, "DATA") == -1)
			return -1;
	}
	if (smtp_client_flush(c) == -1 ||
	    (code = smtp_client_reply(c, 0)) == -1)
		return c->replied ? 0 : -1;
	if (code / 100 != 2) {
		for (i = 0; i < m->nrcpts; i++)
			smtp_client_settext(res, i, code, c->text);
		res->status = smtp_client_status_of(code);
		if (res->status == 2)
			res->status = 4;
		res->code = code;
		snprintf(res->reply, sizeof(res->reply), "%s", c->text);
		/* The RCPTs and DATA that followed are refused too. */
		return pipe ? 0 : smtp_client_cmd(c, 0, "RSET") / 100 == 2;
	}
	for (i = 0; i < m->nrcpts; i++) {
		if (!smtp_client_addr_ok(m->rcpts[i])) {
			rc[i] = 501;
			smtp_client_settext(res, i, 501,
			    "5.1.3 invalid recipient address");
			continue;
		}
		code = pipe ? smtp_client_reply(c, 0) :
		    smtp_client_cmd(c, 0, "RCPT TO:<%s>", m->rcpts[i]);
		if (code == -1)
			return 0;
		rc[i] = code;
		if (code / 100 == 2)
			nok++;
		else {
			smtp_client_settext(res, i, code, c->text);
			any4 |= code / 100 != 5;
			res->code = code;
			snprintf(res->reply, sizeof(res->reply), "%s",
			    c->text);
		}
	}
	if (pipe)
		code = smtp_client_reply(c, 0);		/* to DATA */
	else if (nok > 0)
		code = smtp_client_cmd(c, 0, "DATA");
	else
		code = 0;
	if (code == -1)
		return 0;
	if (nok == 0) {
		res->status = any4 ? 4 : 5;
		/* A server that says 354 anyway gets an empty message. */
		if (code == 354 && (smtp_client_write(c, ".\r\n", 3) == -1 ||
		    smtp_client_flush(c) == -1 ||
		    smtp_client_reply(c, 0) == -1))
			return 0;
		return smtp_client_cmd(c, 0, "RSET") / 100 == 2;
	}
	if (code != 354)
		goto accepted_fail;
	if (smtp_client_data(c, m->head, m->path) == -1)
		return 0;
	if ((code = smtp_client_reply(c, 0)) == -1)
		return 0;
	if (code / 100 != 2)
		goto accepted_fail;
	for (i = 0; i < m->nrcpts; i++)
		if (rc[i] / 100 == 2)
			smtp_client_settext(res, i, code, c->text);
	res->status = nok == m->nrcpts ? 2 : any4 ? 4 : 5;
	if (nok == m->nrcpts) {
		res->code = code;
		snprintf(res->reply, sizeof(res->reply), "%s", c->text);
	}
	return 1;

 accepted_fail:
	for (i = 0; i < m->nrcpts; i++)
		if (rc[i] / 100 == 2)
			smtp_client_settext(res, i, code, c->text);
	res->status = smtp_client_status_of(code);
	if (res->status == 2)		/* e.g. 250 where 354 was due */
		res->status = 4;
	res->code = code;
	snprintf(res->reply, sizeof(res->reply), "%s", c->text);
	return code == 354 ? 0 : smtp_client_cmd(c, 0, "RSET") / 100 == 2;
}

static void
smtp_client_close(struct smtp_client_conn *c, int quit)
{
	if (c == NULL)
		return;
	/* The transaction is settled; QUIT is a courtesy. */
	if (quit && c->fd != -1)
		(void)smtp_client_cmd(c, 0, "QUIT");
	if (c->ssl != NULL) {
		SSL_shutdown(c->ssl);
		SSL_free(c->ssl);
	}
	if (c->fd != -1)
		close(c->fd);
	free(c);
}

static void
smtp_client_cache_free(void *arg)
{
	struct smtp_client_cache *cc = arg;

	for (size_t i = 0; i < SMTP_CLIENT_CACHE_MAX; i++)
		smtp_client_close(cc->conn[i], 1);
	free(cc);
}

static void
smtp_client_cache_init(void)
{
	if (pthread_key_create(&smtp_client_cache_key,
	    smtp_client_cache_free) != 0)
		fatalx("smtp_client: pthread_key_create");
}

static struct smtp_client_cache *
smtp_client_cache(void)
{
	struct smtp_client_cache *cc;

	pthread_once(&smtp_client_cache_once, smtp_client_cache_init);
	if ((cc = pthread_getspecific(smtp_client_cache_key)) == NULL) {
		if ((cc = calloc(1, sizeof(*cc))) == NULL)
			fatal("smtp_client_cache");
		if (pthread_setspecific(smtp_client_cache_key, cc) != 0)
			fatalx("smtp_client: pthread_setspecific");
	}
	return cc;
}

/*
 * A server has nothing to say to an idle client: anything readable (a
 * 421 before it hangs up, or the close itself) means the session is over.
 */
static int
smtp_client_idle_ok(struct smtp_client_conn *c)
{
	struct pollfd pfd;

	if (c->rpos != c->rlen || (c->ssl != NULL && SSL_pending(c->ssl)))
		return 0;
	pfd.fd = c->fd;
	pfd.events = POLLIN;
	return poll(&pfd, 1, 0) == 0;
}

/*
 * Takes this thread's idle connection for key out of the cache, closing
 * the ones idle for too long or closed by the server on the way.
 */
static struct smtp_client_conn *
smtp_client_cache_take(const char *key)
{
	struct smtp_client_cache *cc = smtp_client_cache();
	struct smtp_client_conn *c, *found = NULL;
	time_t now = time(NULL);

	for (size_t i = 0; i < SMTP_CLIENT_CACHE_MAX; i++) {
		if ((c = cc->conn[i]) == NULL)
			continue;
		if (now - c->idle_since >= smtp_client_idle_max ||
		    now < c->idle_since || !smtp_client_idle_ok(c)) {
			cc->conn[i] = NULL;
			smtp_client_close(c, smtp_client_idle_ok(c));
		} else if (found == NULL && strcmp(c->key, key) == 0) {
			cc->conn[i] = NULL;
			found = c;
		}
	}
	return found;
}

static void
smtp_client_cache_put(struct smtp_client_conn *c)
{
	struct smtp_client_cache *cc = smtp_client_cache();
	size_t i, oldest = 0;

	if (smtp_client_idle_max <= 0) {
		smtp_client_close(c, 1);
		return;
	}
	c->idle_since = time(NULL);
	c->code = 0;
	c->err[0] = '\0';
	for (i = 0; i < SMTP_CLIENT_CACHE_MAX; i++) {
		if (cc->conn[i] == NULL) {
			cc->conn[i] = c;
			return;
		}
		if (cc->conn[i]->idle_since < cc->conn[oldest]->idle_since)
			oldest = i;
	}
	smtp_client_close(cc->conn[oldest], 1);
	cc->conn[oldest] = c;
}

void
smtp_client_cache_idle(int seconds)
{
	smtp_client_idle_max = seconds;
}

void
smtp_client_cache_flush(void)
{
	struct smtp_client_cache *cc = smtp_client_cache();

	for (size_t i = 0; i < SMTP_CLIENT_CACHE_MAX; i++) {
		smtp_client_close(cc->conn[i], 1);
		cc->conn[i] = NULL;
	}
}

static struct smtp_client_conn *
smtp_client_conn_new(const char *key)
{
	struct smtp_client_conn *c;

	if ((c = calloc(1, sizeof(*c))) == NULL)
		fatal("smtp_client_conn_new");
	c->fd = -1;
	snprintf(c->key, sizeof(c->key), "%s", key);
	return c;
}

int
smtp_client_send(const struct smtp_client_target *t,
    const struct smtp_client_msg *m, struct smtp_client_result *res)
{
	struct smtp_client_conn *c = NULL;
	char key[SMTP_CLIENT_KEY_MAX];
	struct stat st;
	off_t msgsize;
	int *rc, code, clean = 0, cacheable;
	size_t i;

	if ((rc = calloc(m->nrcpts ? m->nrcpts : 1, sizeof(*rc))) == NULL)
		fatal("smtp_client_send");
	res->status = 0;
	res->code = 0;
	res->reply[0] = '\0';
	for (i = 0; i < m->nrcpts; i++)
		smtp_client_settext(res, i, 0, "");

	if (stat(m->path, &st) == -1) {
		log_warn("smtp_client: %s", m->path);
		res->status = 4;
		snprintf(res->reply, sizeof(res->reply), "cannot open "
		    "message: %s", strerror(errno));
		goto done;
	}
	msgsize = st.st_size + (m->head ? (off_t)strlen(m->head) : 0);
	if (!smtp_client_addr_ok(m->from)) {
		res->status = 5;
		snprintf(res->reply, sizeof(res->reply), "5.1.7 invalid "
		    "sender address");
		for (i = 0; i < m->nrcpts; i++)
			smtp_client_settext(res, i, 553, res->reply);
		goto done;
	}
	cacheable = smtp_client_key(t, key, sizeof(key)) == 0;
	if (cacheable && (c = smtp_client_cache_take(key)) != NULL) {
		clean = smtp_client_txn(c, m, msgsize, res, rc);
		if (clean != -1)
			goto settled;
		/* The server dropped it while idle: start afresh, once. */
		smtp_client_close(c, 0);
		memset(rc, 0, (m->nrcpts ? m->nrcpts : 1) * sizeof(*rc));
		res->status = 0;
	}
	c = smtp_client_conn_new(cacheable ? key : "");
	if (smtp_client_open(c, t, &code) == -1) {
		if (code > 0) {
			res->status = smtp_client_status_of(code);
			if (res->status == 2)
				res->status = 4;
			res->code = code;
			snprintf(res->reply, sizeof(res->reply), "%s",
			    c->text);
		}
		clean = 0;
		goto settled;
	}
	clean = smtp_client_txn(c, m, msgsize, res, rc);

 settled:
	if (res->status == 0) {
		/* Broke off: I/O, TLS or protocol error, or a local one. */
		res->status = 4;
		res->code = c->code;
		snprintf(res->reply, sizeof(res->reply), "%s", c->err[0] ?
		    c->err : c->text);
		for (i = 0; i < m->nrcpts; i++)
			if (res->rcpt_code[i] == 0 || rc[i] / 100 == 2)
				smtp_client_settext(res, i, 0, c->err);
	}
	if (res->reply[0] == '\0')
		snprintf(res->reply, sizeof(res->reply), "%s", c->err[0] ?
		    c->err : c->text);
	if (clean == 1 && cacheable)
		smtp_client_cache_put(c);
	else
		smtp_client_close(c, clean == 1);
 done:
	free(rc);
	return res->status;
}

int
smtp_client_tls_level(const char *s, enum smtp_client_tls *out)
{
	if (s == NULL)
		return -1;
	if (strcmp(s, "none") == 0)
		*out = SMTP_CLIENT_TLS_NONE;
	else if (strcmp(s, "may") == 0)
		*out = SMTP_CLIENT_TLS_MAY;
	else if (strcmp(s, "encrypt") == 0)
		*out = SMTP_CLIENT_TLS_ENCRYPT;
	else
		return -1;
	return 0;
}

int
smtp_client_read_replies(int fd, int ehlo, struct smtp_client_replies *out)
{
	struct smtp_client_conn *c;
	int code;

	if ((c = calloc(1, sizeof(*c))) == NULL)
		fatal("smtp_client_read_replies");
	c->fd = fd;
	memset(out, 0, sizeof(*out));
	while ((code = smtp_client_reply(c, ehlo)) != -1) {
		out->count++;
		out->code = code;
		snprintf(out->text, sizeof(out->text), "%s", c->text);
		out->caps = c->caps;
		out->size_max = c->size_max;
	}
	free(c);
	return out->count;
}
