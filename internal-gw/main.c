/*
 * internal-gw: the LAN gateway. The parent reads the configuration, binds
 * the listeners, spawns the key holder (keyd: the only process that loads
 * private keys) and the SMTP worker (faces the LAN MTA, holds no private
 * key), then supervises: if either dies the daemon fails closed and exits
 * so that systemd restarts it. The parent itself reads no peer input.
 */
#include <sys/prctl.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/thread.h>
#include <gmime/gmime.h>
#include <openssl/ssl.h>

#include "certstore.h"
#include "config.h"
#include "daemon.h"
#include "db.h"
#include "gateway.h"
#include "gw_conf.h"
#include "keyd.h"
#include "keyd_tls.h"
#include "log.h"
#include "netaddr.h"
#include "props.h"
#include "relay.h"
#include "smtp_server.h"
#include "tls.h"
#include "transport.h"
#include "tunnel_out.h"
#include "workq.h"
#include "xmalloc.h"

#define GW_MAX_LISTEN	16

struct gw_listeners {
	int	smtp[GW_MAX_LISTEN];
	int	nsmtp;
	int	lmtp[GW_MAX_LISTEN];
	int	nlmtp;
};

static struct relay *
gw_relay_new(const struct conf *c, EVP_PKEY *client_key, char **err)
{
	struct relay_conf rc;
	config_setting_t *pol = conf_setting(c, "relay.tls_policy");
	struct relay *r;
	size_t n = pol ? (size_t)config_setting_length(pol) : 0;

	if (conf_setting(c, "relay.ledger_ttl_days") != NULL) {
		xasprintf(err, "relay.ledger_ttl_days: replaced by "
		    "relay.ledger_ttl_hours (hours; the ledger now covers only "
		    "the upstream MTA's retry window, default 120): remove "
		    "ledger_ttl_days and set ledger_ttl_hours if needed");
		return NULL;
	}
	memset(&rc, 0, sizeof(rc));
	rc.transport_map = conf_str(c, "relay.transport_map");
	rc.default_tls = conf_str(c, "relay.default_tls");
	rc.ca_file = conf_str(c, "relay.ca_file");
	rc.cert_file = conf_str(c, "relay.client_cert");
	rc.key_file = conf_str(c, "relay.client_key");
	rc.client_key = client_key;
	rc.helo = conf_str(c, "hostname");
	rc.timeout = conf_int(c, "relay.timeout");
	rc.dbpath = conf_str(c, "database");
	rc.ledger_ttl = conf_int(c, "relay.ledger_ttl_hours") * 3600;
	rc.tls_policy = xcalloc(n + 1, sizeof(*rc.tls_policy));
	rc.ntls_policy = n;
	for (size_t i = 0; i < n; i++) {
		config_setting_t *e = config_setting_get_elem(pol, i);
		const char *ca = conf_elem_str(c, e, "relay.tls_policy",
		    "ca_file");

		snprintf(rc.tls_policy[i].nexthop,
		    sizeof(rc.tls_policy[i].nexthop), "%s", conf_elem_str(c, e,
		    "relay.tls_policy", "nexthop"));
		if (smtp_client_tls_level(conf_elem_str(c, e, "relay.tls_policy",
		    "level"), &rc.tls_policy[i].level) == -1) {
			xasprintf(err, "%s:%d: relay.tls_policy.[].level: must "
			    "be none, may or encrypt", c->file,
			    config_setting_source_line(e));
			free(rc.tls_policy);
			return NULL;
		}
		snprintf(rc.tls_policy[i].ca_file,
		    sizeof(rc.tls_policy[i].ca_file), "%s", ca ? ca : "");
	}
	r = relay_new(&rc, err);
	free(rc.tls_policy);
	return r;
}

/* Opens what the daemon needs; with report set, names each problem. */
/*
 * The old tunnel signature (portal.tunnel_signer, portal-tunnel-sign) is
 * the add-on tunnel now: either set, it is an error that says what to do.
 */
static int
gw_legacy_tunnel(const struct conf *c, char **err)
{
	struct db *db;
	struct db_stmt *st;
	int rc = 0;

	*err = NULL;
	if (conf_setting(c, "portal.tunnel_signer") != NULL) {
		xasprintf(err, "%s:%d: portal.tunnel_signer: replaced by the "
		    "add-on tunnel: remove it and set the global properties "
		    "webmail-sender (the same address), webmail-recipient and "
		    "webmail-tunnel-enabled (docs/internal-gw.md)", c->file,
		    config_setting_source_line(conf_setting(c,
		    "portal.tunnel_signer")));
		return -1;
	}
	if ((db = db_open(conf_str(c, "database"), err)) == NULL)
		return -1;
	if ((st = db_prepare(db, "SELECT 1 FROM props_global WHERE name ="
	    " 'portal-tunnel-sign' AND value = 'true'")) != NULL) {
		if (db_step(st) == DB_ROW) {
			xasprintf(err, "property portal-tunnel-sign is replaced "
			    "by the add-on tunnel: set webmail-tunnel-enabled, "
			    "webmail-sender and webmail-recipient, then run "
			    "`postern-cli tunnel legacy-clear`");
			rc = -1;
		}
		db_finalize(st);
	}
	db_close(db);
	return rc;
}

static int
gw_check(const struct conf *c)
{
	const char *s;
	char *err = NULL;
	int bad = 0;
	struct db *db;
	X509_STORE *trust;
	SSL_CTX *ctx;
	struct relay *r;
	const char **l;
	size_t n;

	if ((db = db_open(conf_str(c, "database"), &err)) == NULL) {
		fprintf(stderr, "database %s: %s\n",
		    db_redact(conf_str(c, "database")),
		    err);
		xfree(&err);
		bad = 1;
	} else {
		struct props *p = props_wrap(db);

		props_close(p);
		db_close(db);
	}
	if (gw_legacy_tunnel(c, &err) == -1) {
		fprintf(stderr, "%s\n", err);
		xfree(&err);
		bad = 1;
	}
	if (access(conf_str(c, "spool_dir"), W_OK | X_OK) == -1) {
		fprintf(stderr, "spool_dir %s: %s\n", conf_str(c, "spool_dir"),
		    strerror(errno));
		bad = 1;
	}
	if (access(conf_str(c, "keys_dir"), R_OK | X_OK) == -1) {
		fprintf(stderr, "keys_dir %s: %s\n", conf_str(c, "keys_dir"),
		    strerror(errno));
		bad = 1;
	}
	if ((s = conf_str(c, "trust_anchors")) != NULL) {
		if ((trust = certstore_trust_load(s, &err)) == NULL) {
			fprintf(stderr, "trust_anchors %s: %s\n", s, err);
			xfree(&err);
			bad = 1;
		} else
			X509_STORE_free(trust);
	}
	if (conf_str(c, "smtp.tls_cert") != NULL ||
	    conf_str(c, "smtp.tls_key") != NULL) {
		if ((ctx = tls_server_ctx(conf_str(c, "smtp.tls_cert"),
		    conf_str(c, "smtp.tls_key"), NULL, &err)) == NULL) {
			fprintf(stderr, "smtp.tls_cert/tls_key: %s\n", err);
			xfree(&err);
			bad = 1;
		} else
			SSL_CTX_free(ctx);
	}
	if ((r = gw_relay_new(c, NULL, &err)) == NULL) {
		fprintf(stderr, "relay: %s\n", err);
		xfree(&err);
		bad = 1;
	} else
		relay_free(r);
	n = conf_strlist(c, "smtp.xforward_from", &l);
	if (n > 0) {
		struct netaddr_list *nl = netaddr_list_parse(l, n, &err);

		if (nl == NULL) {
			fprintf(stderr, "%s: smtp.xforward_from: %s\n", c->file,
			    err);
			xfree(&err);
			bad = 1;
		} else
			netaddr_list_free(nl);
	}
	free(l);
	if (conf_strlist(c, "smtp.listen", &l) == 0 &&
	    conf_strlist(c, "smtp.lmtp_listen", &l) == 0) {
		fprintf(stderr, "%s: smtp: neither listen nor lmtp_listen set\n",
		    c->file);
		bad = 1;
	}
	free(l);
	return bad ? -1 : 0;
}

static void
gw_listen(const struct conf *c, const char *key, int *fds, int *n)
{
	const char **l;
	char *err = NULL;
	size_t cnt = conf_strlist(c, key, &l);

	if (cnt > GW_MAX_LISTEN)
		fatalx("%s: more than %d listeners", key, GW_MAX_LISTEN);
	for (size_t i = 0; i < cnt; i++) {
		if ((fds[(*n)++] = netaddr_listen(l[i], 128, &err)) == -1)
			fatalx("%s %s: %s", key, l[i], err);
		log_info("listening on %s (%s)", l[i],
		    strcmp(key, "smtp.listen") == 0 ? "smtp" : "lmtp");
	}
	free(l);
}

static void
gw_reload_work(void *arg)
{
	struct gateway *gw = arg;

	if (keyd_reload(gw->keyd) == -1)
		log_warnx("keyd: reload failed");
	else
		log_info("keyd: keys reloaded");
}

static void
gw_reload_done(void *arg)
{
	(void)arg;
}

struct gw_sighup {
	struct workq	*wq;
	struct gateway	*gw;
};

/* SIGHUP (forwarded by the parent): keyd re-reads keys_dir. */
static void
gw_sighup_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct gw_sighup *h = arg;

	(void)fd;
	(void)ev;
	workq_submit(h->wq, gw_reload_work, gw_reload_done, h->gw);
}

static void
gw_sigterm_cb(evutil_socket_t fd, short ev, void *arg)
{
	(void)fd;
	(void)ev;
	event_base_loopexit(arg, NULL);
}

/*
 * The TLS key files keyd loads: the STARTTLS key, then the relay's client
 * key; without a key file the certificate file must hold the key too.
 */
static size_t
gw_tls_keys(const struct conf *c, const char *keys[2])
{
	size_t n = 0;

	if (conf_str(c, "smtp.tls_cert") != NULL)
		keys[n++] = conf_str(c, "smtp.tls_key") != NULL ?
		    conf_str(c, "smtp.tls_key") : conf_str(c, "smtp.tls_cert");
	if (conf_str(c, "relay.client_cert") != NULL)
		keys[n++] = conf_str(c, "relay.client_key") != NULL ?
		    conf_str(c, "relay.client_key") :
		    conf_str(c, "relay.client_cert");
	return n;
}

/*
 * The SMTP worker: network-facing, no private key; its TLS keys are
 * EVP_PKEYs whose private operations keyd performs. Never returns.
 */
static void
gw_worker(const struct conf *c, struct gw_listeners *ls,
    struct keyd_client *signk, struct keyd_client *tlsk)
{
	EVP_PKEY *client_key = NULL;
	struct smtp_server_conf sc;
	struct smtp_server_ops ops;
	struct smtp_server *smtp = NULL, *lmtp = NULL;
	struct gateway gw;
	struct event_base *base;
	struct event *ev_term, *ev_int, *ev_hup;
	struct gw_sighup hup;
	struct workq *wq;
	struct netaddr_list *xf = NULL;
	const char **l;
	char *err = NULL;
	size_t n;

	base = daemon_worker_start("smtp");

	memset(&gw, 0, sizeof(gw));
	gw.hostname = conf_str(c, "hostname");
	gw.dbpath = conf_str(c, "database");
	gw.spool_dir = conf_str(c, "spool_dir");
	gw.max_header = conf_int(c, "smtp.max_header_size");
	gw.tunnel_signer = tunnel_out_signer(gw.dbpath);
	gw.keyd = signk;
	if (conf_str(c, "relay.client_cert") != NULL &&
	    (client_key = keyd_tls_pkey_file(tlsk,
	    conf_str(c, "relay.client_cert"), &err)) == NULL)
		fatalx("relay.client_cert: %s", err);
	if (conf_str(c, "trust_anchors") != NULL &&
	    (gw.trust = certstore_trust_load(conf_str(c, "trust_anchors"),
	    &err)) == NULL)
		fatalx("trust_anchors: %s", err);
	if ((gw.relay = gw_relay_new(c, client_key, &err)) == NULL)
		fatalx("relay: %s", err);
	EVP_PKEY_free(client_key);

	smtp_server_conf_load(&sc, c);
	/* 250 only after the next hop took the message: no fsync needed. */
	sc.spool_fsync = 0;
	if (conf_str(c, "smtp.tls_cert") != NULL &&
	    (sc.tls_ctx = keyd_tls_server_ctx(tlsk,
	    conf_str(c, "smtp.tls_cert"), NULL, &err)) == NULL)
		fatalx("smtp.tls_cert: %s", err);
	if ((n = conf_strlist(c, "smtp.xforward_from", &l)) > 0 &&
	    (xf = netaddr_list_parse(l, n, &err)) == NULL)
		fatalx("smtp.xforward_from: %s", err);
	free(l);
	sc.xforward_from = xf;

	daemon_drop_privileges(conf_str(c, "user"));

	memset(&ops, 0, sizeof(ops));
	ops.rcpt = gateway_rcpt;
	ops.message = gateway_message;
	wq = workq_new(base, conf_int(c, "workers"));
	if (ls->nsmtp > 0) {
		smtp = smtp_server_new(base, &sc, &ops, &gw, wq);
		for (int i = 0; i < ls->nsmtp; i++)
			smtp_server_add_listener(smtp, ls->smtp[i]);
	}
	if (ls->nlmtp > 0) {
		sc.lmtp = 1;
		lmtp = smtp_server_new(base, &sc, &ops, &gw, wq);
		for (int i = 0; i < ls->nlmtp; i++)
			smtp_server_add_listener(lmtp, ls->lmtp[i]);
	}
	ev_term = evsignal_new(base, SIGTERM, gw_sigterm_cb, base);
	ev_int = evsignal_new(base, SIGINT, gw_sigterm_cb, base);
	hup.wq = wq;
	hup.gw = &gw;
	ev_hup = evsignal_new(base, SIGHUP, gw_sighup_cb, &hup);
	evsignal_add(ev_term, NULL);
	evsignal_add(ev_int, NULL);
	evsignal_add(ev_hup, NULL);

	log_info("ready");
	event_base_dispatch(base);
	log_info("shutting down");
	if (smtp)
		smtp_server_free(smtp);
	if (lmtp)
		smtp_server_free(lmtp);
	workq_free(wq);
	event_free(ev_term);
	event_free(ev_int);
	event_free(ev_hup);
	relay_free(gw.relay);
	free((char *)gw.tunnel_signer);
	event_base_free(base);
	exit(0);
}

int
main(int argc, char **argv)
{
	struct gw_listeners ls;
	struct conf c;
	struct daemon_child children[2];
	const char *tls_keys[2];
	struct keyd_conf kconf;
	struct keyd_client *signk, *tlsk;
	char *tunnel_signer;
	int check, status;
	pid_t keyd_pid, smtp_pid;

	daemon_start(argc, argv, "internal-gw", "/etc/postern/internal-gw.conf",
	    gw_conf_schema, &c, &check);
	gateway_malloc_init();
	g_mime_init();
	if (check) {
		int bad = gw_check(&c) == -1;

		if (!bad)
			printf("%s: configuration OK\n", c.file);
		conf_free(&c);
		g_mime_shutdown();
		return bad;
	}

	{
		char *err;

		if (gw_legacy_tunnel(&c, &err) == -1)
			fatalx("%s", err);
	}
	memset(&ls, 0, sizeof(ls));
	gw_listen(&c, "smtp.listen", ls.smtp, &ls.nsmtp);
	gw_listen(&c, "smtp.lmtp_listen", ls.lmtp, &ls.nlmtp);
	if (ls.nsmtp + ls.nlmtp == 0)
		fatalx("%s: smtp: neither listen nor lmtp_listen set", c.file);

	/* keyd starts with default signal handling and mask. */
	memset(&kconf, 0, sizeof(kconf));
	kconf.keys_dir = conf_str(&c, "keys_dir");
	kconf.tls_keys = tls_keys;
	kconf.ntls = gw_tls_keys(&c, tls_keys);
	kconf.user = conf_str(&c, "keyd_user");
	kconf.tunnel_signer = tunnel_signer = tunnel_out_signer(conf_str(&c,
	    "database"));
	kconf.workers = conf_int(&c, "keyd_workers");
	if ((keyd_pid = keyd_spawn(&kconf, &signk, &tlsk)) == -1)
		fatalx("cannot start keyd");

	daemon_supervise_prepare();
	if (waitpid(keyd_pid, &status, WNOHANG) == keyd_pid)
		fatalx("keyd exited at start (status %d)", status);
	if ((smtp_pid = daemon_fork()) == 0)
		gw_worker(&c, &ls, signk, tlsk);
	keyd_client_free(&signk);
	keyd_client_free(&tlsk);
	for (int i = 0; i < ls.nsmtp; i++)
		close(ls.smtp[i]);
	for (int i = 0; i < ls.nlmtp; i++)
		close(ls.lmtp[i]);
	log_setproc("parent");

	/* Any child's death is fatal (fail closed); SIGHUP reloads keys
	 * through the SMTP worker, which holds the keyd connection. */
	children[0].pid = smtp_pid;
	children[0].name = "smtp";
	children[1].pid = keyd_pid;
	children[1].name = "keyd";
	status = daemon_supervise(children, 2, smtp_pid);
	free(tunnel_signer);
	conf_free(&c);
	return status;
}
