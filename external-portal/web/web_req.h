/*
 * One web request as the handlers see it: the portal's web settings, the
 * parsed request, the signed-in user, and the answer being built. Also the
 * accessors every handler uses (parameters, properties, headers,
 * redirects). Handlers include this, never the router (web.h).
 */
#ifndef PORTAL_WEB_REQ_H
#define PORTAL_WEB_REQ_H

#include <sys/types.h>

#include <stddef.h>
#include <stdint.h>

#include "addr.h"
#include "netaddr.h"
#include "web/web_form.h"
#include "web/web_password.h"
#include "web/web_text.h"

struct store;
struct props;
struct web_sessions;

struct web_conf {
	const char		*listen;
	const char		*tls_cert;
	const char		*tls_key;
	const char		*base_url;
	const char		*dbpath;
	const char		*spool_dir;
	const char		*store_dir;
	const char		**proxies;		/* trusted, CIDR */
	size_t			 nproxies;
	const char		*hostname;
	const char		*notify_sender;
	size_t			 max_header_size;
	size_t			 max_body_size;
	size_t			 max_response;	/* bytes of one answer */
	int			 max_connections;
	int			 timeout;		/* seconds */
	int			 workers;
	struct web_password_cost argon2;
	int64_t			 session_idle;		/* seconds */
	int64_t			 session_absolute;
	int64_t			 token_lifetime;
	int			 throttle_free;		/* failures before delays */
	int64_t			 throttle_base;		/* first delay, seconds */
	const char		*product_name;
	const char		*logo_url;
	const char		*colour;
	int			 page_size;		/* inbox rows per page */
	int			 reply_relay;	/* reply {} configured */
	int			 reply_max_attachments;
	size_t			 reply_max_size;	/* attachments, bytes */
};

enum web_method { WEB_GET, WEB_POST, WEB_OTHER };

#define WEB_MAX_RESP_HEADERS	8
/*
 * Longer than any address addr_parse() accepts (local part and domain
 * each below ADDR_MAX, the local part possibly quoted and escaped).
 */
#define WEB_REQ_EMAIL_MAX	(3 * ADDR_MAX + 4)

/*
 * A reply body that is not built in memory: web.c reads it on the worker
 * pool in bounded chunks and sends each chunk before it reads the next,
 * so a download holds about one chunk, whatever its size. read returns
 * the count, 0 at the end or -1 on an error (logged; the connection is
 * then closed short). length is the Content-Length, or -1 (chunked).
 */
struct web_stream {
	ssize_t		(*read)(struct web_stream *, char *, size_t);
	void		(*free)(struct web_stream *);
	int64_t		 length;
};

/* One request, owned by one pool thread while its handler runs. */
struct web_req {
	const struct web_conf	*conf;
	struct store		*store;
	struct web_sessions	*sessions;

	enum web_method		 method;
	char			*path;
	char			*query;		/* raw, may be NULL */
	char			*cookie;	/* Cookie header, may be NULL */
	char			*content_type;
	char			*body;
	size_t			 bodylen;
	char			 client[NETADDR_STRLEN];
	struct web_form		 q;		/* parsed query */
	struct web_form		 form;		/* parsed POST body */

	/* Set by web_session_load() for signed-in requests. */
	char			 sid[64];
	/*
	 * Never truncated: a session whose address does not fit is no
	 * session (web.c fails closed).
	 */
	char			 email[WEB_REQ_EMAIL_MAX];
	int			 signed_in;	/* password and 2FA done */
	int			 half_signed;	/* password done, 2FA due */
	/*
	 * The form token, bound to csrf_base (the session or pre-session
	 * id): computed on first use (web_req_csrf()), as most answers, an
	 * attachment say, have no form.
	 */
	char			 csrf[64];
	char			 csrf_base[64];
	/* Computed once per signed-in request (web_req_caps()). */
	int			 can_reply;
	int			 can_compose;

	/* The answer. */
	int			 status;
	char			*ctype;		/* NULL: text/html */
	struct web_buf		 out;
	char			*hname[WEB_MAX_RESP_HEADERS];
	char			*hval[WEB_MAX_RESP_HEADERS];
	int			 nh;
	int			 no_store;	/* shows mail or secrets */
	int			 frameable;	/* the sandboxed HTML mail view */
	char			*csp;		/* replaces the default CSP */
	/* Set instead of out: the body is streamed in bounded chunks. */
	struct web_stream	*stream;
};

/* Properties of the signed-in user (or global). */
int	 web_prop_bool(struct web_req *, const char *name);
long long web_prop_int(struct web_req *, const char *name);
/* An integer property of email (not signed in yet: sign-up, reset). */
long long web_prop_int_user(struct web_req *, const char *email,
	    const char *name);
char	*web_prop(struct web_req *, const char *name);
void	 web_header(struct web_req *, const char *name, const char *value);
void	 web_redirect(struct web_req *, const char *location);
/* Query (GET) or form (POST) value; NULL when absent. */
const char *web_param(const struct web_req *, const char *name);
/* A positive decimal id parameter, or -1. */
int64_t	 web_param_id(const struct web_req *, const char *name);
/* Sets can_reply and can_compose of a signed-in request. */
/* The form token of the request (web_session_load() set its base). */
const char *web_req_csrf(struct web_req *);
void	 web_req_caps(struct web_req *);

#endif
