/*
 * The portal's web worker: HTTPS (evhttp over bufferevent_openssl) for the
 * Webmail Messenger pages. The event loop only reads requests and writes
 * answers; every handler runs on the worker pool (SQLite, Argon2, GMime
 * block), fills a struct web_req's answer, and the loop sends it with the
 * baseline security headers. This is the router's interface, for main.c;
 * handlers include web_req.h.
 */
#ifndef PORTAL_WEB_H
#define PORTAL_WEB_H

#include "web/web_req.h"

struct conf;

struct web;

/* Opens the store, TLS files and the listener (before dropping privileges). */
struct web *web_new(const struct web_conf *, int listen_fd);
/* Serves until SIGTERM, then exits. */
void	 web_run(struct web *) __attribute__((noreturn));
/* Fills a web_conf from the boot configuration. */
void	 web_conf_load(const struct conf *, struct web_conf *);

#endif
