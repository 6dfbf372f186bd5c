/*
 * The portal's web worker: an HTTPS server on the Internet.
 *
 * SECURITY: every byte it reads is hostile: the TLS handshake, request line, headers (Cookie,
 * Content-Type, X-Forwarded-For from anyone but a trusted proxy) and
 * bodies. evhttp enforces the header and body size limits and timeouts
 * set here; this file counts connections, finds the client address, loads
 * the session, checks the CSRF token of every POST and routes the request
 * to a handler on the worker pool. The answer gets the baseline security
 * headers (CSP, nosniff, no-referrer, HSTS, no-store) on the loop thread.
 */
#include <sys/socket.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>
#include <event2/thread.h>
#include <openssl/ssl.h>

#include "config.h"
#include "log.h"
#include "props.h"
#include "store/store.h"
#include "tls.h"
#include "web/web.h"
#include "web/web_auth.h"
#include "web/web_cookie.h"
#include "web/web_mail.h"
#include "web/web_pages.h"
#include "web/web_routes.h"
#include "web/web_crypt.h"
#include "web/web_session.h"
#include "workq.h"
#include "xmalloc.h"

#define WEB_CSP_DEFAULT "default-src 'none'; style-src 'self'; " \
    "img-src 'self' data:; form-action 'self'; frame-src 'self'; " \
    "frame-ancestors 'none'; base-uri 'none'"
#define WEB_XFF_MAX	1024
#define WEB_STREAM_CHUNK (64 * 1024)	/* read ahead of the socket, bytes */
#define WEB_TLS_RECORD	16384		/* the most plaintext a record holds */
/*
 * Request bodies: every route takes at most WEB_SMALL_BODY bytes, except
 * a POST to /compose of a signed-in session (attachments), which may send
 * web.max_body_size. evhttp checks the limit of the connection as soon as
 * it has the headers, and answers 413 without reading the body.
 */
#define WEB_SMALL_BODY	(16 * 1024)
#define WEB_LIMIT_LINE	8192		/* request line, beyond the headers */

struct web {
	const struct web_conf	*conf;
	struct event_base	*base;
	struct evhttp		*http;
	struct evconnlistener	*listener;
	struct workq		*wq;
	SSL_CTX			*ssl;
	struct store		*store;
	struct web_sessions	*sessions;
	struct netaddr_list	*proxies;
	int			 active;
	int			 paused;
};

/*
 * What the body-limit watcher knows of a connection: it reads each
 * request head as it arrives, before evhttp parses it, and sets the
 * connection's body limit for that request.
 */
enum web_limit_state { WEB_LIMIT_HEAD, WEB_LIMIT_BODY, WEB_LIMIT_LOST };

struct web_limit {
	struct web		*web;
	struct bufferevent	*bev;		/* the connection's */
	enum web_limit_state	 state;
	char			*head;
	size_t			 headlen, headmax;
	int64_t			 body;		/* body bytes still to pass */
};

/* A request between the loop and the pool. */
struct web_job {
	struct web		*web;
	struct evhttp_request	*ev;
	int			 gone;		/* the connection closed */
	int			 head;		/* HEAD: headers only */
	/* A streamed body (req.stream): */
	int			 streaming;	/* the reply has started */
	int			 busy;		/* a chunk is being read */
	int			 eof, err;
	int64_t			 sent;
	struct evbuffer		*chunk;
	struct sockaddr_storage	 peer;
	char			*xff;
	struct web_req		 req;
};

enum web_route_flags {
	WEB_ANON = 0,
	WEB_AUTH = 0x1,		/* signed in, 2FA done */
	WEB_HALF = 0x2,		/* password done, 2FA due */
};

struct web_route {
	enum web_method	 method;
	const char	*path;
	int		 flags;
	void		(*fn)(struct web_req *);
};

static const struct web_route web_routes[] = {
	{ WEB_GET, "/", WEB_ANON, web_auth_root },
	{ WEB_GET, "/static/portal.css", WEB_ANON, web_static_css },
	{ WEB_GET, "/login", WEB_ANON, web_auth_login_form },
	{ WEB_POST, "/login", WEB_ANON, web_auth_login },
	{ WEB_GET, "/login/totp", WEB_HALF, web_auth_totp_form },
	{ WEB_POST, "/login/totp", WEB_HALF, web_auth_totp },
	{ WEB_POST, "/logout", WEB_ANON, web_auth_logout },
	{ WEB_GET, "/signup", WEB_ANON, web_auth_signup_form },
	{ WEB_POST, "/signup", WEB_ANON, web_auth_signup },
	{ WEB_GET, "/newlink", WEB_ANON, web_auth_newlink_form },
	{ WEB_POST, "/newlink", WEB_ANON, web_auth_newlink },
	{ WEB_GET, "/forgot", WEB_ANON, web_auth_forgot_form },
	{ WEB_POST, "/forgot", WEB_ANON, web_auth_forgot },
	{ WEB_GET, "/reset", WEB_ANON, web_auth_reset_form },
	{ WEB_POST, "/reset", WEB_ANON, web_auth_reset },
	{ WEB_GET, "/settings", WEB_AUTH, web_auth_settings },
	{ WEB_POST, "/settings/password", WEB_AUTH, web_auth_password },
	{ WEB_POST, "/settings/totp/start", WEB_AUTH, web_auth_totp_start },
	{ WEB_POST, "/settings/totp/enable", WEB_AUTH, web_auth_totp_enable },
	{ WEB_POST, "/settings/totp/disable", WEB_AUTH,
	    web_auth_totp_disable },
	{ WEB_POST, "/settings/recovery", WEB_AUTH, web_auth_recovery },
	{ WEB_POST, "/settings/logout-all", WEB_AUTH, web_auth_logout_all },
	{ WEB_GET, "/inbox", WEB_AUTH, web_mail_inbox },
	{ WEB_POST, "/inbox/delete", WEB_AUTH, web_mail_delete_many },
	{ WEB_GET, "/message", WEB_AUTH, web_mail_read },
	{ WEB_GET, "/message/body", WEB_AUTH, web_mail_body },
	{ WEB_GET, "/message/part", WEB_AUTH, web_mail_part },
	{ WEB_GET, "/message/cid", WEB_AUTH, web_mail_cid },
	{ WEB_GET, "/message/eml", WEB_AUTH, web_mail_eml },
	{ WEB_POST, "/message/delete", WEB_AUTH, web_mail_delete },
	{ WEB_GET, "/compose", WEB_AUTH, web_compose_form },
	{ WEB_POST, "/compose", WEB_AUTH, web_compose_send },
	{ WEB_GET, "/pdf", WEB_AUTH, web_pdf_list },
	{ WEB_GET, "/pdf/", WEB_AUTH, web_pdf_show },	/* /pdf/<token> */
	{ WEB_GET, "/static/pdf-copy.js", WEB_ANON, web_pdf_js_file },
	{ WEB_GET, "/pdf-reply/", WEB_AUTH, web_pdf_reply },	/* <token> */
};


void
web_conf_load(const struct conf *c, struct web_conf *wc)
{
	const char *base = conf_str(c, "web.base_url");

	memset(wc, 0, sizeof(*wc));
	wc->listen = conf_str(c, "web.listen");
	wc->tls_cert = conf_str(c, "web.tls_cert");
	wc->tls_key = conf_str(c, "web.tls_key");
	wc->base_url = base ? base : conf_str(c, "notify.base_url");
	wc->dbpath = conf_str(c, "database");
	wc->spool_dir = conf_str(c, "spool_dir");
	wc->store_dir = conf_str(c, "store_dir");
	wc->nproxies = conf_strlist(c, "web.trusted_proxies", &wc->proxies);
	wc->hostname = conf_str(c, "hostname");
	wc->notify_sender = conf_str(c, "notify.sender");
	wc->max_header_size = conf_int(c, "web.max_header_size");
	wc->max_body_size = conf_int(c, "web.max_body_size");
	/* A download is at most a stored message; a page is bounded below
	 * that (WEB_TEXT_PLAIN_MAX for a text body) plus its frame. */
	wc->max_response = conf_int(c, "smtp.max_message_size") +
	    WEB_RESPONSE_SLACK;
	wc->max_connections = conf_int(c, "web.max_connections");
	wc->timeout = conf_int(c, "web.timeout");
	wc->workers = conf_int(c, "workers");
	wc->argon2.t_cost = conf_int(c, "web.argon2_t_cost");
	wc->argon2.m_cost_kib = conf_int(c, "web.argon2_m_cost_kib");
	wc->argon2.parallelism = conf_int(c, "web.argon2_parallelism");
	wc->session_idle = conf_int(c, "web.session_idle_timeout");
	wc->session_absolute = conf_int(c, "web.session_absolute_timeout");
	wc->token_lifetime = conf_int(c, "signup_token_lifetime");
	wc->throttle_free = conf_int(c, "web.throttle_free_attempts");
	wc->throttle_base = conf_int(c, "web.throttle_delay");
	wc->product_name = conf_str(c, "web.product_name");
	wc->logo_url = conf_str(c, "web.logo_url");
	wc->colour = conf_str(c, "web.colour");
	wc->page_size = conf_int(c, "web.page_size");
	wc->reply_relay = conf_str(c, "reply.relay_host") != NULL;
	if (wc->reply_relay) {
		wc->reply_max_attachments = conf_int(c,
		    "reply.max_attachments");
		wc->reply_max_size = conf_int(c, "reply.max_size");
	}
}

/* --- on the pool ------------------------------------------------------------ */

/*
 * The client: the peer, or with a trusted proxy the rightmost
 * X-Forwarded-For entry that is not itself a trusted proxy.
 */
static void
web_client_addr(struct web_job *j)
{
	struct netaddr_list *tp = j->web->proxies;
	struct sockaddr_storage ss;
	char buf[WEB_XFF_MAX + 1], *p, *e;

	netaddr_ntop((struct sockaddr *)&j->peer, j->req.client,
	    sizeof(j->req.client));
	if (tp == NULL || j->xff == NULL ||
	    !netaddr_list_match(tp, (struct sockaddr *)&j->peer) ||
	    strlen(j->xff) > WEB_XFF_MAX)
		return;
	snprintf(buf, sizeof(buf), "%s", j->xff);
	for (;;) {
		p = strrchr(buf, ',');
		e = p ? p + 1 : buf;
		e += strspn(e, " \t");
		e[strcspn(e, " \t")] = '\0';
		memset(&ss, 0, sizeof(ss));
		if (inet_pton(AF_INET, e,
		    &((struct sockaddr_in *)&ss)->sin_addr) == 1)
			ss.ss_family = AF_INET;
		else if (inet_pton(AF_INET6, e,
		    &((struct sockaddr_in6 *)&ss)->sin6_addr) == 1)
			ss.ss_family = AF_INET6;
		else
			return;	/* garbage: keep what we know */
		netaddr_ntop((struct sockaddr *)&ss, j->req.client,
		    sizeof(j->req.client));
		if (!netaddr_list_match(tp, (struct sockaddr *)&ss) ||
		    p == NULL)
			return;
		*p = '\0';
	}
}

/* Loads the session and the base of the CSRF token; 0 or an HTTP status. */
static int
web_session_load(struct web_req *r)
{
	const unsigned char *key = web_session_csrf_key(r->sessions);
	char sid[WEB_SESSION_ID_LEN + 1], pre[WEB_SESSION_ID_LEN + 1];
	const char *base = NULL;
	char *c;
	int rc, stage;

	sid[0] = pre[0] = '\0';
	if (r->cookie != NULL) {
		if (web_cookie_get(r->cookie, "sid", sid, sizeof(sid)) == -1 ||
		    web_cookie_get(r->cookie, "pre", pre, sizeof(pre)) == -1)
			return 400;
	}
	if (sid[0] != '\0') {
		rc = web_session_find(r->sessions, sid, time(NULL),
		    r->conf->session_idle, r->conf->session_absolute,
		    r->email, sizeof(r->email), &stage);
		if (rc == -1)
			return 503;
		if (rc == 0 && strlen(r->email) >= sizeof(r->email) - 1) {
			/*
			 * It may have been cut short, and a prefix of one
			 * address can be another user's: no session.
			 */
			log_warnx("web: a session address longer than %zu "
			    "bytes, refused", sizeof(r->email) - 2);
			rc = 1;
		}
		if (rc == 0) {
			snprintf(r->sid, sizeof(r->sid), "%s", sid);
			r->signed_in = stage == WEB_SESSION_FULL;
			r->half_signed = stage == WEB_SESSION_HALF;
			base = r->sid;
		} else {
			r->email[0] = '\0';
			c = web_cookie_clear("sid");
			web_header(r, "Set-Cookie", c);
			free(c);
		}
	}
	if (base == NULL && web_session_valid(pre))
		base = pre;
	if (base == NULL) {
		/* Anonymous forms are bound to a pre-session cookie. */
		web_session_new(pre);
		c = web_cookie_set("pre", pre, -1);
		web_header(r, "Set-Cookie", c);
		free(c);
		base = pre;
	}
	snprintf(r->csrf_base, sizeof(r->csrf_base), "%s", base);
	if (r->method == WEB_POST) {
		const char *t = web_form_get(&r->form, "csrf");

		if (t == NULL || !web_csrf_check(key, WEB_SESSION_CSRF_KEY_LEN,
		    base, t))
			return 403;
	}
	return 0;
}

static void
web_work(void *arg)
{
	struct web_job *j = arg;
	struct web_req *r = &j->req;
	const struct web_route *rt = NULL;
	struct web_form_limits lim;
	int st;

	web_client_addr(j);
	for (size_t i = 0; i < sizeof(web_routes) / sizeof(web_routes[0]);
	    i++) {
		size_t n = strlen(web_routes[i].path);

		/* A path ending in '/' also takes one more segment. */
		if ((strcmp(web_routes[i].path, r->path) == 0 || (n > 1 &&
		    web_routes[i].path[n - 1] == '/' &&
		    strncmp(web_routes[i].path, r->path, n) == 0 &&
		    r->path[n] != '\0' && strchr(r->path + n, '/') == NULL)) &&
		    web_routes[i].method == r->method) {
			rt = &web_routes[i];
			break;
		}
	}
	if (rt == NULL) {
		web_page_error(r, r->method == WEB_OTHER ? 405 : 404);
		return;
	}
	/* Encrypted storage still locked: every page but the style sheet. */
	if (strncmp(rt->path, "/static/", 8) != 0 && web_crypt_locked()) {
		web_crypt_page_locked(r);
		return;
	}
	/* The database is unreachable (PostgreSQL down, failing over). */
	if (strncmp(rt->path, "/static/", 8) != 0 &&
	    !store_available(r->store)) {
		web_page_error(r, 503);
		return;
	}
	memset(&lim, 0, sizeof(lim));
	lim.max_total = r->conf->max_body_size;
	lim.allow_duplicates = 1;
	lim.tmpdir = r->conf->spool_dir;
	if (r->query != NULL && (st = web_form_parse_urlencoded(r->query,
	    strlen(r->query), &lim, &r->q)) != WEB_FORM_OK) {
		web_page_error(r, st);
		return;
	}
	if (r->method == WEB_POST) {
		if (r->content_type == NULL) {
			web_page_error(r, 415);
			return;
		}
		if ((st = web_form_parse(r->content_type, r->body, r->bodylen,
		    &lim, &r->form)) != WEB_FORM_OK) {
			web_page_error(r, st);
			return;
		}
	}
	if ((st = web_session_load(r)) != 0) {
		web_page_error(r, st);
		return;
	}
	if ((rt->flags & WEB_AUTH) && !r->signed_in) {
		if (r->method == WEB_GET)
			web_redirect(r, "/login");
		else
			web_page_error(r, 403);
		return;
	}
	if ((rt->flags & WEB_HALF) && !r->half_signed) {
		web_redirect(r, "/login");
		return;
	}
	web_req_caps(r);
	rt->fn(r);
	if (buf_full(&r->out)) {
		log_warnx("web: the answer to %s exceeds %zu bytes", r->path,
		    buf_max(&r->out));
		/* The error page is HTML whatever the handler meant to send. */
		xfree(&r->ctype);
		xfree(&r->csp);
		web_page_error(r, 500);
	}
}

/* --- on the loop ------------------------------------------------------------ */

static void
web_req_free(struct web_req *r)
{
	free(r->path);
	free(r->query);
	free(r->cookie);
	free(r->content_type);
	if (r->body)
		OPENSSL_cleanse(r->body, r->bodylen);
	free(r->body);
	web_form_free(&r->q);
	web_form_free(&r->form);
	free(r->ctype);
	free(r->csp);
	web_buf_free(&r->out);
	for (int i = 0; i < r->nh; i++) {
		free(r->hname[i]);
		free(r->hval[i]);
	}
	OPENSSL_cleanse(r->sid, sizeof(r->sid));
	OPENSSL_cleanse(r->csrf, sizeof(r->csrf));
	OPENSSL_cleanse(r->csrf_base, sizeof(r->csrf_base));
	if (r->stream != NULL)
		r->stream->free(r->stream);
	r->stream = NULL;
}

static void
web_job_free(struct web_job *j)
{
	/*
	 * A request whose connection failed before we answered is detached
	 * from it by evhttp and left to us (web_closed() kept it in ev).
	 */
	if (j->gone && j->ev != NULL)
		evhttp_request_free(j->ev);
	if (j->chunk != NULL)
		evbuffer_free(j->chunk);
	web_req_free(&j->req);
	free(j->xff);
	free(j);
}

static void web_stream_next(struct web_job *);

static void
web_closed(struct evhttp_connection *evcon, void *arg)
{
	struct web_job *j = arg;

	(void)evcon;
	j->gone = 1;
	/* Still attached: evhttp frees it with the connection. */
	if (evhttp_request_get_connection(j->ev) != NULL)
		j->ev = NULL;
	/* Waiting for a chunk to be written: nothing else will call us. */
	if (j->streaming && !j->busy)
		web_job_free(j);
}

/* Ends a streamed reply: complete (ok) or cut short, then frees j. */
static void
web_stream_finish(struct web_job *j, int ok)
{
	struct evhttp_connection *evcon;

	if (!j->gone) {
		evcon = evhttp_request_get_connection(j->ev);
		evhttp_connection_set_closecb(evcon, NULL, NULL);
		if (ok)
			evhttp_send_reply_end(j->ev);
		else {
			/* The client must see an incomplete body. */
			evhttp_connection_free(evcon);
		}
		j->ev = NULL;
	}
	web_job_free(j);
}

/* On the pool: the next chunk of the body. */
static void
web_stream_work(void *arg)
{
	struct web_job *j = arg;
	struct web_stream *s = j->req.stream;
	char buf[16384];
	ssize_t n;

	j->chunk = evbuffer_new();
	while (evbuffer_get_length(j->chunk) < WEB_STREAM_CHUNK) {
		if ((n = s->read(s, buf, sizeof(buf))) == -1) {
			j->err = 1;
			break;
		}
		if (n == 0) {
			j->eof = 1;
			break;
		}
		evbuffer_add(j->chunk, buf, n);
		j->sent += n;
		if (s->length >= 0 && j->sent > s->length) {
			log_warnx("web: a streamed body is longer than its "
			    "%lld bytes", (long long)s->length);
			j->err = 1;
			break;
		}
	}
	if (j->eof && s->length >= 0 && j->sent != s->length) {
		log_warnx("web: a streamed body ended after %lld of %lld "
		    "bytes", (long long)j->sent, (long long)s->length);
		j->err = 1;
	}
}

static void
web_stream_sent(struct evhttp_connection *evcon, void *arg)
{
	struct web_job *j = arg;

	(void)evcon;
	if (j->eof)
		web_stream_finish(j, 1);
	else
		web_stream_next(j);
}

/* On the loop: one chunk read; send it and read on when it is out. */
static void
web_stream_done(void *arg)
{
	struct web_job *j = arg;
	struct evbuffer *b = j->chunk;

	j->busy = 0;
	j->chunk = NULL;
	if (j->gone || j->err) {
		if (b != NULL)
			evbuffer_free(b);
		web_stream_finish(j, 0);
		return;
	}
	if (evbuffer_get_length(b) == 0) {
		evbuffer_free(b);
		web_stream_finish(j, 1);
		return;
	}
	evhttp_send_reply_chunk_with_cb(j->ev, b, web_stream_sent, j);
	evbuffer_free(b);
}

static void
web_stream_next(struct web_job *j)
{
	j->busy = 1;
	workq_submit(j->web->wq, web_stream_work, web_stream_done, j);
}

static void
web_out_free(const void *data, size_t len, void *arg)
{
	(void)len;
	(void)arg;
	free((void *)data);
}

/*
 * The TLS bufferevent writes each chain of its output with an SSL_write
 * of its own: the header evhttp formatted, then the body, so every answer
 * would start with a small record and a write of its own. The first full
 * record's worth is made one chain (a copy of at most 16 KiB).
 */
static void
web_out_coalesce(struct evhttp_connection *evcon)
{
	struct evbuffer *out;
	size_t n;

	out = bufferevent_get_output(evhttp_connection_get_bufferevent(evcon));
	if ((n = evbuffer_get_length(out)) > WEB_TLS_RECORD)
		n = WEB_TLS_RECORD;
	(void)evbuffer_pullup(out, n);
}

static void
web_done(void *arg)
{
	struct web_job *j = arg;
	struct web_req *r = &j->req;
	struct evhttp_connection *evcon;
	struct evkeyvalq *h;
	struct evbuffer *b;
	char len[32];
	int cache = 0;

	if (j->gone) {
		web_job_free(j);
		return;
	}
	h = evhttp_request_get_output_headers(j->ev);
	for (int i = 0; i < r->nh; i++) {
		evhttp_add_header(h, r->hname[i], r->hval[i]);
		if (strcasecmp(r->hname[i], "Cache-Control") == 0)
			cache = 1;
	}
	evhttp_add_header(h, "Content-Type", r->ctype ? r->ctype :
	    "text/html; charset=utf-8");
	evhttp_add_header(h, "Content-Security-Policy",
	    r->csp ? r->csp : WEB_CSP_DEFAULT);
	evhttp_add_header(h, "X-Content-Type-Options", "nosniff");
	evhttp_add_header(h, "Referrer-Policy", "no-referrer");
	evhttp_add_header(h, "Strict-Transport-Security",
	    "max-age=31536000; includeSubDomains");
	evhttp_add_header(h, "X-Frame-Options", r->frameable ? "SAMEORIGIN" :
	    "DENY");
	evhttp_add_header(h, "Cross-Origin-Opener-Policy", "same-origin");
	evhttp_add_header(h, "Cross-Origin-Resource-Policy", "same-origin");
	if (!cache || r->no_store)
		evhttp_add_header(h, "Cache-Control", "no-store");
	if (r->stream != NULL && r->stream->length >= 0) {
		snprintf(len, sizeof(len), "%lld",
		    (long long)r->stream->length);
		evhttp_add_header(h, "Content-Length", len);
	}
	if (r->stream != NULL && !j->head) {
		/* The close callback stays: it ends the stream early. */
		j->streaming = 1;
		evhttp_send_reply_start(j->ev, r->status ? r->status : 200,
		    NULL);
		web_stream_next(j);
		return;
	}
	evhttp_connection_set_closecb(evhttp_request_get_connection(j->ev),
	    NULL, NULL);
	b = evbuffer_new();
	if (r->out.len > 0) {
		/* Handed over, not copied: freed once written out. */
		size_t n = r->out.len;
		char *data = web_buf_finish(&r->out);

		if (evbuffer_add_reference(b, data, n, web_out_free,
		    NULL) == -1)
			fatalx("web: evbuffer_add_reference");
	}
	evcon = evhttp_request_get_connection(j->ev);
	evhttp_send_reply(j->ev, r->status ? r->status : 200, NULL, b);
	evbuffer_free(b);
	web_out_coalesce(evcon);
	j->ev = NULL;
	web_job_free(j);
}

static void
web_request_cb(struct evhttp_request *ev, void *arg)
{
	struct web *w = arg;
	struct evhttp_connection *evcon = evhttp_request_get_connection(ev);
	struct evkeyvalq *h = evhttp_request_get_input_headers(ev);
	struct evbuffer *in = evhttp_request_get_input_buffer(ev);
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(ev);
	const struct sockaddr *sa;
	const char *v, *path;
	struct web_job *j;
	size_t len;

	j = xcalloc(1, sizeof(*j));
	j->web = w;
	j->ev = ev;
	j->req.conf = w->conf;
	j->req.store = w->store;
	j->req.sessions = w->sessions;
	buf_init(&j->req.out, w->conf->max_response);
	switch (evhttp_request_get_command(ev)) {
	case EVHTTP_REQ_HEAD:
		j->head = 1;
		/* FALLTHROUGH */
	case EVHTTP_REQ_GET:
		j->req.method = WEB_GET;
		break;
	case EVHTTP_REQ_POST:
		j->req.method = WEB_POST;
		break;
	default:
		j->req.method = WEB_OTHER;
	}
	if ((sa = evhttp_connection_get_addr(evcon)) != NULL)
		memcpy(&j->peer, sa, sa->sa_family == AF_INET6 ?
		    sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in));
	path = uri ? evhttp_uri_get_path(uri) : NULL;
	j->req.path = xstrdup(path && *path ? path : "/");
	if (uri && (v = evhttp_uri_get_query(uri)) != NULL)
		j->req.query = xstrdup(v);
	if ((v = evhttp_find_header(h, "Cookie")) != NULL)
		j->req.cookie = xstrdup(v);
	if ((v = evhttp_find_header(h, "Content-Type")) != NULL)
		j->req.content_type = xstrdup(v);
	if ((v = evhttp_find_header(h, "X-Forwarded-For")) != NULL)
		j->xff = xstrdup(v);
	if ((len = evbuffer_get_length(in)) > 0) {
		j->req.body = xmalloc(len + 1);
		evbuffer_remove(in, j->req.body, len);
		j->req.body[len] = '\0';
		j->req.bodylen = len;
	}
	evhttp_connection_set_closecb(evcon, web_closed, j);
	workq_submit(w->wq, web_work, web_done, j);
}

/* SSL ex_data: freeing the SSL of a connection gives back its slot. */
static int web_ssl_idx = -1;

static void
web_ssl_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx,
    long argl, void *argp)
{
	struct web *w = ptr;

	(void)parent;
	(void)ad;
	(void)idx;
	(void)argl;
	(void)argp;
	if (w == NULL)
		return;
	w->active--;
	if (w->paused && w->active < w->conf->max_connections) {
		w->paused = 0;
		evconnlistener_enable(w->listener);
	}
}

/* The body limit for a request head (NUL-terminated); on the loop. */
static size_t
web_limit_for(struct web *w, const char *head)
{
	char sid[WEB_SESSION_ID_LEN + 1], email[WEB_REQ_EMAIL_MAX];
	const char *line, *cookie = NULL;
	char *copy, *save = NULL;
	size_t limit = WEB_SMALL_BODY;
	int stage, compose;

	compose = strncmp(head, "POST /compose ", 14) == 0 ||
	    strncmp(head, "POST /compose?", 14) == 0;
	if (!compose)
		return limit;
	copy = xstrdup(head);
	for (line = strtok_r(copy, "\r\n", &save); line != NULL;
	    line = strtok_r(NULL, "\r\n", &save))
		if (strncasecmp(line, "Cookie:", 7) == 0)
			cookie = line + 7 + strspn(line + 7, " \t");
	/* Only a full session of a user whose address fits. */
	sid[0] = '\0';
	if (cookie != NULL && web_cookie_get(cookie, "sid", sid,
	    sizeof(sid)) == 1 &&
	    web_session_find(w->sessions, sid, time(NULL),
	    w->conf->session_idle, w->conf->session_absolute, email,
	    sizeof(email), &stage) == 0 && stage == WEB_SESSION_FULL &&
	    strlen(email) < sizeof(email) - 1)
		limit = w->conf->max_body_size;
	OPENSSL_cleanse(sid, sizeof(sid));
	free(copy);
	return limit;
}

/* The head is complete: set the limit, and find how much body follows. */
static void
web_limit_head(struct web_limit *l)
{
	struct evhttp_connection *evcon = NULL;
	const char *p;
	size_t limit;
	int64_t len = 0;
	void *arg = NULL;

	l->head[l->headlen] = '\0';
	limit = web_limit_for(l->web, l->head);
	l->state = WEB_LIMIT_HEAD;
	for (p = l->head; (p = strchr(p, '\n')) != NULL; ) {
		p++;
		if (strncasecmp(p, "Transfer-Encoding:", 18) == 0) {
			/* We do not follow chunks: small from here on. */
			l->state = WEB_LIMIT_LOST;
			limit = WEB_SMALL_BODY;
		} else if (strncasecmp(p, "Content-Length:", 15) == 0) {
			char *end;
			long long v = strtoll(p + 15, &end, 10);

			if (v < 0 || end == p + 15) {
				l->state = WEB_LIMIT_LOST;
				limit = WEB_SMALL_BODY;
			} else
				len = v;
		}
	}
	if (l->state == WEB_LIMIT_HEAD && len > 0) {
		l->state = WEB_LIMIT_BODY;
		l->body = len;
	}
	/* evhttp passes its connection to the callbacks of our filter. */
	bufferevent_getcb(l->bev, NULL, NULL, NULL, &arg);
	if ((evcon = arg) != NULL)
		evhttp_connection_set_max_body_size(evcon, limit);
	l->headlen = 0;
}

/* One byte of the request stream, in order. */
static void
web_limit_byte(struct web_limit *l, char c)
{
	if (l->state == WEB_LIMIT_LOST)
		return;
	if (l->state == WEB_LIMIT_BODY) {
		if (--l->body == 0)
			l->state = WEB_LIMIT_HEAD;
		return;
	}
	if (l->headlen == l->headmax) {
		/* evhttp refuses such a head itself. */
		l->state = WEB_LIMIT_LOST;
		return;
	}
	l->head[l->headlen++] = c;
	if (c != '\n')
		return;
	if (l->headlen <= 2 && (l->headlen == 1 || l->head[0] == '\r')) {
		/* A blank line between requests. */
		l->headlen = 0;
		return;
	}
	if ((l->headlen >= 2 && l->head[l->headlen - 2] == '\n') ||
	    (l->headlen >= 3 && l->head[l->headlen - 2] == '\r' &&
	    l->head[l->headlen - 3] == '\n'))
		web_limit_head(l);
}

/*
 * Called as bytes arrive in the connection's input buffer, before evhttp
 * reads them: follows the request heads and bodies as they pass.
 */
static void
web_limit_cb(struct evbuffer *in, const struct evbuffer_cb_info *info,
    void *arg)
{
	struct web_limit *l = arg;
	struct evbuffer_ptr pos;
	char buf[4096];
	size_t off = info->orig_size - info->n_deleted, left = info->n_added;
	ev_ssize_t n;

	if (left == 0 || l->state == WEB_LIMIT_LOST)
		return;
	if (evbuffer_ptr_set(in, &pos, off, EVBUFFER_PTR_SET) == -1) {
		l->state = WEB_LIMIT_LOST;
		return;
	}
	while (left > 0) {
		if (l->state == WEB_LIMIT_BODY && (int64_t)left <= l->body) {
			if ((l->body -= left) == 0)
				l->state = WEB_LIMIT_HEAD;
			return;
		}
		if ((n = evbuffer_copyout_from(in, &pos, buf, left < sizeof(buf) ?
		    left : sizeof(buf))) <= 0) {
			l->state = WEB_LIMIT_LOST;
			return;
		}
		for (ev_ssize_t i = 0; i < n; i++)
			web_limit_byte(l, buf[i]);
		left -= n;
		if (evbuffer_ptr_set(in, &pos, n, EVBUFFER_PTR_ADD) == -1 &&
		    left > 0) {
			l->state = WEB_LIMIT_LOST;
			return;
		}
	}
}

/* SSL ex_data: the limit state goes with the connection's SSL. */
static int web_limit_idx = -1;

static void
web_limit_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx,
    long argl, void *argp)
{
	struct web_limit *l = ptr;

	(void)parent;
	(void)ad;
	(void)idx;
	(void)argl;
	(void)argp;
	if (l == NULL)
		return;
	free(l->head);
	free(l);
}

static struct bufferevent *
web_bev_cb(struct event_base *base, void *arg)
{
	struct web *w = arg;
	struct bufferevent *tls;
	struct web_limit *l;
	SSL *ssl;

	if ((ssl = SSL_new(w->ssl)) == NULL)
		fatalx("web: SSL_new");
	SSL_set_ex_data(ssl, web_ssl_idx, w);
	if (++w->active >= w->conf->max_connections && !w->paused) {
		w->paused = 1;
		evconnlistener_disable(w->listener);
		log_warnx("web: %d connections, not accepting more for now",
		    w->active);
	}
	tls = bufferevent_openssl_socket_new(base, -1, ssl,
	    BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
	l = xcalloc(1, sizeof(*l));
	l->web = w;
	l->bev = tls;
	l->headmax = w->conf->max_header_size + WEB_LIMIT_LINE;
	l->head = xmalloc(l->headmax + 1);
	SSL_set_ex_data(ssl, web_limit_idx, l);
	if (evbuffer_add_cb(bufferevent_get_input(tls), web_limit_cb, l) ==
	    NULL)
		fatalx("web: evbuffer_add_cb");
	return tls;
}

static void
web_sigterm_cb(evutil_socket_t fd, short ev, void *arg)
{
	(void)fd;
	(void)ev;
	event_base_loopexit(arg, NULL);
}

struct web *
web_new(const struct web_conf *wc, int fd)
{
	struct evhttp_bound_socket *bound;
	struct web *w = xcalloc(1, sizeof(*w));
	char *err = NULL;

	w->conf = wc;
	/*
	 * Answers up to 1 MiB (pages, attachments held in memory) come from
	 * the heap and its freed memory is reused, rather than a fresh
	 * mapping, page faults and zeroing for every answer; above 4 MiB
	 * free the heap's top is given back.
	 */
	mallopt(M_MMAP_THRESHOLD, 1024 * 1024);
	mallopt(M_TRIM_THRESHOLD, 4 * 1024 * 1024);
	signal(SIGPIPE, SIG_IGN);
	if (evthread_use_pthreads() == -1)
		fatalx("evthread_use_pthreads");
	if ((w->base = event_base_new()) == NULL)
		fatalx("event_base_new");
	web_ssl_idx = SSL_get_ex_new_index(0, NULL, NULL, NULL, web_ssl_free);
	web_limit_idx = SSL_get_ex_new_index(0, NULL, NULL, NULL,
	    web_limit_free);
	if ((w->ssl = tls_server_ctx(wc->tls_cert, wc->tls_key, NULL, &err)) ==
	    NULL)
		fatalx("web TLS: %s", err);
	if (wc->nproxies > 0 && (w->proxies = netaddr_list_parse(wc->proxies,
	    wc->nproxies, &err)) == NULL)
		fatalx("web.trusted_proxies: %s", err);
	if ((w->store = store_open(wc->dbpath, wc->store_dir, 0, &err)) ==
	    NULL)
		fatalx("store: %s", err);
	if ((w->sessions = web_session_open(wc->dbpath, &err)) == NULL)
		fatalx("web sessions: %s", err);
	web_mail_init();

	w->http = evhttp_new(w->base);
	evhttp_set_max_headers_size(w->http, wc->max_header_size);
	evhttp_set_max_body_size(w->http, WEB_SMALL_BODY);
	evhttp_set_timeout(w->http, wc->timeout);
	evhttp_set_allowed_methods(w->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST |
	    EVHTTP_REQ_HEAD);
	evhttp_set_default_content_type(w->http, "text/html; charset=utf-8");
	evhttp_set_bevcb(w->http, web_bev_cb, w);
	evhttp_set_gencb(w->http, web_request_cb, w);
	if ((bound = evhttp_accept_socket_with_handle(w->http, fd)) == NULL)
		fatalx("web: cannot listen");
	w->listener = evhttp_bound_socket_get_listener(bound);
	return w;
}

void
web_run(struct web *w)
{
	struct event *ev_term, *ev_int;

	w->wq = workq_new(w->base, w->conf->workers);
	ev_term = evsignal_new(w->base, SIGTERM, web_sigterm_cb, w->base);
	ev_int = evsignal_new(w->base, SIGINT, web_sigterm_cb, w->base);
	evsignal_add(ev_term, NULL);
	evsignal_add(ev_int, NULL);
	log_info("ready");
	event_base_dispatch(w->base);
	log_info("shutting down");
	workq_free(w->wq);
	web_auth_shutdown();
	evhttp_free(w->http);
	event_free(ev_term);
	event_free(ev_int);
	web_session_close(w->sessions);
	store_close(w->store);
	netaddr_list_free(w->proxies);
	SSL_CTX_free(w->ssl);
	event_base_free(w->base);
	free(w);
	exit(0);
}
