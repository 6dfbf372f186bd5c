/*
 * The portal's web worker: HTTPS (evhttp over bufferevent_openssl) for the
 * Webmail Messenger pages. The event loop only reads requests and writes
 * answers; every handler runs on the worker pool (SQLite, Argon2, GMime
 * block), fills a struct web_req's answer, and the loop sends it with the
 * baseline security headers.
 */
#ifndef PORTAL_WEB_H
#define PORTAL_WEB_H

#include <stddef.h>
#include <stdint.h>

#include "netaddr.h"
#include "web/web_form.h"
#include "web/web_password.h"
#include "web/web_text.h"

struct conf;
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

/* One request, owned by one pool thread while its handler runs. */
struct web_req {
	const struct web_conf	*conf;
	struct store		*store;
	struct web_sessions	*sessions;
	struct props		*props;

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
	char			 email[320];
	int			 signed_in;	/* password and 2FA done */
	int			 half_signed;	/* password done, 2FA due */
	char			 csrf[64];

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
};

struct web;

/* Opens the store, TLS files and the listener (before dropping privileges). */
struct web *web_new(const struct web_conf *, int listen_fd);
/* Serves until SIGTERM, then exits. */
void	 web_run(struct web *) __attribute__((noreturn));
/* Fills a web_conf from the boot configuration. */
void	 web_conf_load(const struct conf *, struct web_conf *);

/* For handlers. Properties of the signed-in user (or global). */
int	 web_prop_bool(struct web_req *, const char *name);
long long web_prop_int(struct web_req *, const char *name);
char	*web_prop(struct web_req *, const char *name);
/* An integer property of email (not signed in yet: sign-up, reset). */
long long web_prop_int_user(struct web_req *, const char *email,
	    const char *name);
void	 web_header(struct web_req *, const char *name, const char *value);
void	 web_redirect(struct web_req *, const char *location);
/* Query (GET) or form (POST) value; NULL when absent. */
const char *web_param(const struct web_req *, const char *name);
/* A positive decimal id parameter, or -1. */
int64_t	 web_param_id(const struct web_req *, const char *name);

#endif
