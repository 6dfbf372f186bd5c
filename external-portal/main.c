/*
 * external-portal: the DMZ node. The parent reads the configuration, binds
 * the listeners, cleans up what a crash left in the store, spawns the
 * ingest worker (SMTP/LMTP from the internal gateway; the web worker comes
 * beside it) and supervises: if a worker dies the daemon fails closed and
 * exits so that systemd restarts it. The parent reads no peer input.
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
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/thread.h>
#include <gmime/gmime.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>

#include "config.h"
#include "daemon.h"
#include "db.h"
#include "ingest/ingest.h"
#include "log.h"
#include "netaddr.h"
#include "outbox/outbox.h"
#include "outbox/pdfotp.h"
#include "pkeyd.h"
#include "portal_conf.h"
#include "portal_storage.h"
#include "props.h"
#include "store/retention.h"
#include "smtp_server.h"
#include "store/store.h"
#include "store/store_crypt.h"
#include "tls.h"
#include "web/web.h"
#include "web/web_crypt.h"
#include "web/web_seal.h"
#include "workq.h"
#include "xmalloc.h"

#define PORTAL_MAX_LISTEN	16

struct portal_listeners {
	int	fd[PORTAL_MAX_LISTEN];
	int	lmtp[PORTAL_MAX_LISTEN];
	int	n;
};

static int
portal_line(const struct conf *c, const char *key)
{
	config_setting_t *s = conf_setting(c, key);

	return s ? config_setting_source_line(s) : 0;
}

/* The gateway certificate pins, normalised; NULL-terminated. */
static char **
portal_pins(const struct conf *c, size_t *n, char **err)
{
	const char **l;
	char **pins;
	size_t cnt = conf_strlist(c, "smtp.gateway_cert_sha256", &l);

	pins = xcalloc(cnt + 1, sizeof(*pins));
	*n = 0;
	for (size_t i = 0; i < cnt; i++) {
		pins[i] = xmalloc(65);
		if (ingest_pin_parse(l[i], pins[i]) == -1) {
			xasprintf(err, "%s:%d: smtp.gateway_cert_sha256: \"%s\" "
			    "is not a SHA-256 fingerprint (64 hex digits)",
			    c->file, portal_line(c, "smtp.gateway_cert_sha256"),
			    l[i]);
			for (size_t j = 0; j <= i; j++)
				free(pins[j]);
			free(pins);
			free(l);
			return NULL;
		}
		(*n)++;
	}
	free(l);
	return pins;
}

static SSL_CTX *
portal_tls_ctx(const struct conf *c, char **err)
{
	const char *cert = conf_str(c, "smtp.tls_cert");
	const char *key = conf_str(c, "smtp.tls_key");
	const char **l;
	size_t npins = conf_strlist(c, "smtp.gateway_cert_sha256", &l);

	free(l);
	*err = NULL;
	if (cert == NULL && key == NULL) {
		if (conf_bool(c, "smtp.tls_required") || npins > 0)
			xasprintf(err, "%s: smtp.tls_cert and smtp.tls_key are "
			    "needed for tls_required and gateway_cert_sha256",
			    c->file);
		return NULL;
	}
	if (cert == NULL || key == NULL) {
		xasprintf(err, "%s: smtp.tls_cert and smtp.tls_key go together",
		    c->file);
		return NULL;
	}
	if (npins > 0 && conf_str(c, "smtp.tls_client_ca") == NULL) {
		xasprintf(err, "%s:%d: smtp.gateway_cert_sha256 needs "
		    "smtp.tls_client_ca (to ask the gateway for its "
		    "certificate)", c->file,
		    portal_line(c, "smtp.gateway_cert_sha256"));
		return NULL;
	}
	return tls_server_ctx(cert, key, conf_str(c, "smtp.tls_client_ca"),
	    err);
}

/* A certificate of the tunnel group; NULL with *err NULL when unset. */
static X509 *
portal_tunnel_x509(const struct conf *c, const char *key, char **err)
{
	const char *path;
	X509 *x;
	FILE *f;

	*err = NULL;
	if (conf_setting(c, "smtp.gateway_tunnel_cert") != NULL) {
		xasprintf(err, "%s:%d: smtp.gateway_tunnel_cert: replaced by the "
		    "add-on tunnel: move the gateway's certificate to "
		    "tunnel.gateway_cert, add the portal's tunnel.key and "
		    "tunnel.cert (postern-cli tunnel keygen --role portal), and "
		    "replace the property portal-require-tunnel-signature by "
		    "require-tunnel (docs/external-portal.md)", c->file,
		    portal_line(c, "smtp.gateway_tunnel_cert"));
		return NULL;
	}
	if (conf_setting(c, "tunnel") == NULL)
		return NULL;
	path = conf_str(c, key);
	if ((f = fopen(path, "r")) == NULL) {
		xasprintf(err, "%s %s: %s", key, path, strerror(errno));
		return NULL;
	}
	x = PEM_read_X509(f, NULL, NULL, NULL);
	fclose(f);
	if (x == NULL)
		xasprintf(err, "%s %s: not a PEM certificate", key, path);
	return x;
}

static X509 *
portal_tunnel_cert(const struct conf *c, char **err)
{
	return portal_tunnel_x509(c, "tunnel.gateway_cert", err);
}

static int
portal_listeners_check(const struct conf *c, char **err)
{
	config_setting_t *ls = conf_setting(c, "smtp.listeners");
	int n = ls ? config_setting_length(ls) : 0;

	if (n == 0 || n > PORTAL_MAX_LISTEN) {
		xasprintf(err, "%s: smtp.listeners: between 1 and %d listeners",
		    c->file, PORTAL_MAX_LISTEN);
		return -1;
	}
	for (int i = 0; i < n; i++) {
		config_setting_t *e = config_setting_get_elem(ls, i);
		const char *p = conf_elem_str(c, e, "smtp.listeners",
		    "protocol");

		if (strcmp(p, "smtp") != 0 && strcmp(p, "lmtp") != 0) {
			xasprintf(err, "%s:%d: smtp.listeners.[].protocol: "
			    "must be \"smtp\" or \"lmtp\"", c->file,
			    config_setting_source_line(e));
			return -1;
		}
	}
	return 0;
}

/*
 * The property of the old tunnel signature: set true it would have
 * refused unsigned mail, so it is an error that says what replaces it.
 */
static int
portal_legacy_props(const struct conf *c, char **err)
{
	struct db *db;
	struct db_stmt *st;
	int rc = 0;

	*err = NULL;
	if ((db = db_open(conf_str(c, "database"), err)) == NULL)
		return -1;
	if ((st = db_prepare(db, "SELECT 1 FROM props_global WHERE name ="
	    " 'portal-require-tunnel-signature' AND value = 'true'")) != NULL) {
		if (db_step(st) == DB_ROW) {
			xasprintf(err, "property portal-require-tunnel-signature "
			    "is replaced by the add-on tunnel: configure the "
			    "tunnel group, set require-tunnel to true, then run "
			    "`postern-cli tunnel legacy-clear`");
			rc = -1;
		}
		db_finalize(st);
	}
	db_close(db);
	return rc;
}

/* Opens everything the daemon needs; prints each problem. */
static int
portal_check(const struct conf *c)
{
	struct store *s;
	struct db *db;
	struct netaddr_list *nl;
	enum smtp_client_tls lvl;
	const char **l;
	char *err = NULL, **pins;
	size_t n;
	SSL_CTX *ctx;
	X509 *x;
	int bad = 0;

#define PORTAL_BAD(...) do { fprintf(stderr, __VA_ARGS__); \
    fputc('\n', stderr); xfree(&err); bad = 1; } while (0)
	if ((db = db_open(conf_str(c, "database"), &err)) == NULL)
		PORTAL_BAD("database %s: %s", db_redact(conf_str(c,
		    "database")), err);
	else {
		struct props *p = props_wrap(db);

		if (p == NULL)
			PORTAL_BAD("database %s: cannot create the property "
			    "tables", db_redact(conf_str(c, "database")));
		props_close(p);
		db_close(db);
	}
	if ((s = store_open(conf_str(c, "database"), conf_str(c, "store_dir"),
	    0, &err)) == NULL)
		PORTAL_BAD("store: %s", err);
	store_close(s);
	if (access(conf_str(c, "spool_dir"), W_OK | X_OK) == -1)
		PORTAL_BAD("spool_dir %s: %s", conf_str(c, "spool_dir"),
		    strerror(errno));
	if (portal_listeners_check(c, &err) == -1)
		PORTAL_BAD("%s", err);
	n = conf_strlist(c, "smtp.mynetworks", &l);
	if (n == 0)
		PORTAL_BAD("%s:%d: smtp.mynetworks: must name the gateway",
		    c->file, portal_line(c, "smtp.mynetworks"));
	else if ((nl = netaddr_list_parse(l, n, &err)) == NULL)
		PORTAL_BAD("%s:%d: smtp.mynetworks: %s", c->file,
		    portal_line(c, "smtp.mynetworks"), err);
	else
		netaddr_list_free(nl);
	free(l);
	if ((pins = portal_pins(c, &n, &err)) == NULL)
		PORTAL_BAD("%s", err);
	else {
		for (size_t i = 0; i < n; i++)
			free(pins[i]);
		free(pins);
	}
	if ((ctx = portal_tls_ctx(c, &err)) != NULL)
		SSL_CTX_free(ctx);
	else if (err != NULL)
		PORTAL_BAD("TLS: %s", err);
	if ((x = portal_tunnel_cert(c, &err)) != NULL)
		X509_free(x);
	else if (err != NULL)
		PORTAL_BAD("%s", err);
	if (conf_setting(c, "tunnel") != NULL && pkeyd_check(conf_str(c,
	    "tunnel.key"), conf_str(c, "tunnel.cert"), &err) == -1)
		PORTAL_BAD("tunnel.key: %s", err);
	if (portal_legacy_props(c, &err) == -1)
		PORTAL_BAD("%s", err);
	if (portal_storage_check(c) == -1)
		bad = 1;
	if (smtp_client_tls_level(conf_str(c, "notify.relay_tls"), &lvl) == -1)
		PORTAL_BAD("%s:%d: notify.relay_tls: must be none, may or "
		    "encrypt", c->file, portal_line(c, "notify.relay_tls"));
	if (strncasecmp(conf_str(c, "notify.base_url"), "https://", 8) != 0 &&
	    strncasecmp(conf_str(c, "notify.base_url"), "http://", 7) != 0)
		PORTAL_BAD("%s:%d: notify.base_url: must start with https://",
		    c->file, portal_line(c, "notify.base_url"));
#undef PORTAL_BAD
	return bad ? -1 : 0;
}

static void
portal_listen(const struct conf *c, struct portal_listeners *pl)
{
	config_setting_t *ls = conf_setting(c, "smtp.listeners");
	char *err = NULL;

	if (portal_listeners_check(c, &err) == -1)
		fatalx("%s", err);
	for (int i = 0; i < config_setting_length(ls); i++) {
		config_setting_t *e = config_setting_get_elem(ls, i);
		const char *spec = conf_elem_str(c, e, "smtp.listeners",
		    "listen");
		const char *proto = conf_elem_str(c, e, "smtp.listeners",
		    "protocol");

		if ((pl->fd[pl->n] = netaddr_listen(spec, 128, &err)) == -1)
			fatalx("smtp.listeners %s: %s", spec, err);
		pl->lmtp[pl->n++] = strcmp(proto, "lmtp") == 0;
		log_info("listening on %s (%s)", spec, proto);
	}
}

/* --- the ingest worker ---------------------------------------------------- */

struct portal_worker {
	const struct conf	*conf;
	struct store		*store;
	struct workq		*wq;
	struct event		*ev_retention;
	int			 retention_busy;
};

static void
portal_retention_work(void *arg)
{
	struct portal_worker *w = arg;
	struct retention_result r;
	struct props *p;
	char *err = NULL;

	if ((p = props_open(conf_str(w->conf, "database"), &err)) == NULL) {
		log_warnx("retention: %s", err);
		free(err);
		return;
	}
	if (retention_run(w->store, p, time(NULL), 0, NULL, NULL, &r) == -1)
		log_warnx("retention: cleanup incomplete");
	if (r.messages > 0 || r.errors > 0)
		log_info("retention: removed %lld messages (%lld bytes), %lld "
		    "errors", (long long)r.messages, (long long)r.bytes,
		    (long long)r.errors);
	props_close(p);
}

static void
portal_retention_done(void *arg)
{
	struct portal_worker *w = arg;

	w->retention_busy = 0;
}

static void
portal_retention_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct portal_worker *w = arg;
	struct timeval tv = { conf_int(w->conf, "retention_interval"), 0 };

	(void)fd;
	(void)ev;
	if (!w->retention_busy) {
		w->retention_busy = 1;
		workq_submit(w->wq, portal_retention_work,
		    portal_retention_done, w);
	}
	evtimer_add(w->ev_retention, &tv);
}

static void
portal_sigterm_cb(evutil_socket_t fd, short ev, void *arg)
{
	(void)fd;
	(void)ev;
	event_base_loopexit(arg, NULL);
}

static void
portal_outbox_conf(const struct conf *c, struct outbox_conf *oc)
{
	memset(oc, 0, sizeof(*oc));
	snprintf(oc->target.host, sizeof(oc->target.host), "%s",
	    conf_str(c, "notify.relay_host"));
	oc->target.port = conf_int(c, "notify.relay_port");
	if (smtp_client_tls_level(conf_str(c, "notify.relay_tls"),
	    &oc->target.tls) == -1)
		fatalx("notify.relay_tls: must be none, may or encrypt");
	oc->target.ca_file = conf_str(c, "notify.ca_file");
	oc->target.helo = conf_str(c, "hostname");
	oc->target.timeout = conf_int(c, "notify.timeout");
	oc->notify.sender = conf_str(c, "notify.sender");
	oc->notify.sender_name = conf_str(c, "notify.sender_name");
	oc->notify.base_url = conf_str(c, "notify.base_url");
	oc->notify.template_dir = conf_str(c, "notify.template_dir");
	oc->notify.hostname = conf_str(c, "hostname");
	oc->dbpath = conf_str(c, "database");
	oc->spool_dir = conf_str(c, "spool_dir");
	oc->retry_initial = conf_int(c, "notify.retry_initial");
	oc->retry_max = conf_int(c, "notify.retry_max");
	oc->give_up = conf_int(c, "notify.give_up_after");
	oc->token_lifetime = conf_int(c, "signup_token_lifetime");
	oc->poll = oc->retry_initial < 30 ? (int)oc->retry_initial : 30;
	if (conf_str(c, "reply.relay_host") != NULL) {
		oc->reply_set = 1;
		snprintf(oc->reply_target.host, sizeof(oc->reply_target.host),
		    "%s", conf_str(c, "reply.relay_host"));
		oc->reply_target.port = conf_int(c, "reply.relay_port");
		if (smtp_client_tls_level(conf_str(c, "reply.relay_tls"),
		    &oc->reply_target.tls) == -1)
			fatalx("reply.relay_tls: must be none, may or encrypt");
		oc->reply_target.ca_file = conf_str(c, "reply.ca_file");
		oc->reply_target.helo = conf_str(c, "hostname");
		oc->reply_target.timeout = conf_int(c, "reply.timeout");
	}
}

static struct pdfotp *
portal_pdfotp_start(const struct conf *c, const struct outbox_conf *oc,
    struct store *s, struct outbox *ob)
{
	struct pdfotp_conf pc;

	memset(&pc, 0, sizeof(pc));
	pc.dbpath = conf_str(c, "database");
	pc.spool_dir = conf_str(c, "spool_dir");
	pc.notify = oc->notify;
	pc.retry = oc->retry_initial;
	pc.token_lifetime = oc->token_lifetime;
	pc.poll = oc->poll;
	pc.outbox = ob;
	return pdfotp_start(s, &pc);
}

static void
portal_ingest_worker(const struct conf *c, struct portal_listeners *pl,
    struct pkeyd_client *pk)
{
	struct smtp_server_conf sc;
	struct smtp_server *smtp = NULL, *lmtp = NULL;
	struct ingest in;
	struct portal_worker w;
	struct outbox_conf oc;
	struct event_base *base;
	struct event *ev_term, *ev_int;
	struct timeval now = { 0, 0 };
	const char **l;
	char *err = NULL, **pins;
	size_t n;

	base = daemon_worker_start("ingest");

	memset(&in, 0, sizeof(in));
	if ((in.store = store_open(conf_str(c, "database"),
	    conf_str(c, "store_dir"), 0, &err)) == NULL)
		fatalx("store: %s", err);
	store_set_coalesce(in.store, conf_int(c, "notify.coalesce"));
	in.dbpath = conf_str(c, "database");
	n = conf_strlist(c, "smtp.mynetworks", &l);
	if ((in.mynetworks = netaddr_list_parse(l, n, &err)) == NULL)
		fatalx("smtp.mynetworks: %s", err);
	free(l);
	if ((pins = portal_pins(c, &in.npins, &err)) == NULL)
		fatalx("%s", err);
	in.pins = (const char *const *)pins;
	in.max_header = conf_int(c, "smtp.max_header_size");
	if ((in.tunnel_cert = portal_tunnel_cert(c, &err)) == NULL &&
	    err != NULL)
		fatalx("%s", err);
	in.crypt = portal_storage_crypt(c);
	if (pk != NULL) {
		if ((in.tunnel_own_cert = portal_tunnel_x509(c, "tunnel.cert",
		    &err)) == NULL)
			fatalx("%s", err ? err : "tunnel.cert");
		if ((in.tunnel_pkey = pkeyd_pkey(pk, PKEYD_KEY_TUNNEL,
		    in.tunnel_own_cert)) == NULL)
			fatalx("tunnel.cert: not an RSA certificate");
	}

	smtp_server_conf_load(&sc, c);
	/*
	 * The spool file is only read into the store's own file, which is
	 * fsync'd with its directory and committed before 250: an fsync of
	 * the spool too buys nothing.
	 */
	sc.spool_fsync = 0;
	if ((sc.tls_ctx = portal_tls_ctx(c, &err)) == NULL && err != NULL)
		fatalx("TLS: %s", err);

	daemon_drop_privileges(conf_str(c, "user"));

	memset(&w, 0, sizeof(w));
	w.conf = c;
	w.store = in.store;
	w.wq = workq_new(base, conf_int(c, "workers"));
	portal_outbox_conf(c, &oc);
	in.outbox = outbox_start(in.store, &oc);
	in.pdfotp = portal_pdfotp_start(c, &oc, in.store, in.outbox);
	for (int i = 0; i < pl->n; i++) {
		struct smtp_server **srv = pl->lmtp[i] ? &lmtp : &smtp;

		if (*srv == NULL) {
			sc.lmtp = pl->lmtp[i];
			*srv = smtp_server_new(base, &sc, &ingest_ops, &in,
			    w.wq);
		}
		if (smtp_server_add_listener(*srv, pl->fd[i]) == -1)
			fatalx("cannot add listener");
	}
	ev_term = evsignal_new(base, SIGTERM, portal_sigterm_cb, base);
	ev_int = evsignal_new(base, SIGINT, portal_sigterm_cb, base);
	evsignal_add(ev_term, NULL);
	evsignal_add(ev_int, NULL);
	w.ev_retention = evtimer_new(base, portal_retention_cb, &w);
	evtimer_add(w.ev_retention, &now);

	log_info("ready");
	event_base_dispatch(base);
	log_info("shutting down");
	if (smtp)
		smtp_server_free(smtp);
	if (lmtp)
		smtp_server_free(lmtp);
	workq_free(w.wq);
	pdfotp_stop(in.pdfotp);
	outbox_stop(in.outbox);
	event_free(w.ev_retention);
	event_free(ev_term);
	event_free(ev_int);
	store_close(in.store);
	netaddr_list_free(in.mynetworks);
	for (size_t i = 0; i < in.npins; i++)
		free(pins[i]);
	free(pins);
	if (in.tunnel_cert)
		X509_free(in.tunnel_cert);
	X509_free(in.tunnel_own_cert);
	EVP_PKEY_free(in.tunnel_pkey);
	store_crypt_free(in.crypt);
	pkeyd_client_free(&pk);
	if (sc.tls_ctx)
		SSL_CTX_free(sc.tls_ctx);
	event_base_free(base);
	exit(0);
}

/* --- the web worker ---------------------------------------------------- */

static void
portal_web_worker(const struct conf *c, struct portal_listeners *pl,
    int fd, struct pkeyd_client *pkweb)
{
	static struct web_conf wc;
	struct web *w;

	web_crypt_init(pkweb);
	/* Certificates only: the Sent copies are sealed like ingested mail. */
	web_seal_init(portal_storage_crypt(c));

	log_setproc("web");
	prctl(PR_SET_PDEATHSIG, SIGTERM);
	for (int i = 0; i < pl->n; i++)
		close(pl->fd[i]);
	web_conf_load(c, &wc);
	w = web_new(&wc, fd);
	daemon_drop_privileges(conf_str(c, "user"));
	web_run(w);
}

int
main(int argc, char **argv)
{
	struct portal_listeners pl;
	struct conf c;
	struct daemon_child children[3];
	struct pkeyd_client *pk = NULL, *pkweb = NULL;
	char *storage_pw = NULL;
	pid_t pkeyd_pid = -1;
	size_t n = 0;
	struct store *s;
	char *err = NULL;
	int check, status, storage_keys;
	pid_t ingest_pid, web_pid;
	int web_fd = -1;

	daemon_start(argc, argv, "external-portal",
	    "/etc/postern/external-portal.conf", portal_conf_schema, &c, &check);
	g_mime_init();
	if (check) {
		int bad = portal_check(&c) == -1;

		if (!bad)
			printf("%s: configuration OK\n", c.file);
		conf_free(&c);
		return bad;
	}

	/* Whatever a crash left behind goes before the first new message. */
	if ((s = store_open(conf_str(&c, "database"),
	    conf_str(&c, "store_dir"), 1, &err)) == NULL)
		fatalx("store: %s", err);
	store_close(s);
	/* No worker runs yet: every spool file is a dead transaction. */
	(void)portal_storage_sweep_spool(conf_str(&c, "spool_dir"));

	memset(&pl, 0, sizeof(pl));
	portal_listen(&c, &pl);
	if (conf_setting(&c, "web") != NULL) {
		if ((web_fd = netaddr_listen(conf_str(&c, "web.listen"), 128,
		    &err)) == -1)
			fatalx("web.listen %s: %s", conf_str(&c, "web.listen"),
			    err);
		log_info("listening on %s (https)", conf_str(&c, "web.listen"));
	}

	/* The key holder starts first, before anything has threads. */
	storage_pw = portal_storage_password();
	/*
	 * The storage keys serve the web worker alone: a portal without a
	 * web group seals with the certificates and holds no storage key
	 * (pkeyd would see its only storage channel closed and exit).
	 */
	storage_keys = portal_storage_on(&c) &&
	    conf_setting(&c, "web") != NULL;
	if (portal_storage_on(&c) && !storage_keys)
		log_info("storage: no web group, so no key holder for the "
		    "storage keys; ingest seals with the certificates");
	if (conf_setting(&c, "tunnel") != NULL || storage_keys) {
		struct pkeyd_conf pc;

		memset(&pc, 0, sizeof(pc));
		if (conf_setting(&c, "tunnel") != NULL) {
			if (pkeyd_check(conf_str(&c, "tunnel.key"),
			    conf_str(&c, "tunnel.cert"), &err) == -1)
				fatalx("tunnel.key: %s", err);
			pc.tunnel_key = conf_str(&c, "tunnel.key");
			pc.tunnel_cert = conf_str(&c, "tunnel.cert");
		}
		if (storage_keys)
			portal_storage_pkeyd_conf(&c, &pc, storage_pw);
		pc.user = conf_str(&c, "user");
		if ((pkeyd_pid = pkeyd_spawn2(&pc, &pk, &pkweb)) == -1)
			fatalx("cannot start the key holder");
		free(pc.storage_keys);
	}
	if (storage_pw != NULL) {
		OPENSSL_cleanse(storage_pw, strlen(storage_pw));
		xfree(&storage_pw);
	}
	if (portal_legacy_props(&c, &err) == -1)
		fatalx("%s", err);

	daemon_supervise_prepare();
	if ((ingest_pid = daemon_fork()) == 0) {
		if (web_fd != -1)
			close(web_fd);
		pkeyd_client_free(&pkweb);	/* the storage keys: web only */
		portal_ingest_worker(&c, &pl, pk);
	}
	children[n].pid = ingest_pid;
	children[n++].name = "ingest";
	if (pkeyd_pid != -1) {
		children[n].pid = pkeyd_pid;
		children[n++].name = "pkeyd";
	}
	if (web_fd != -1) {
		if ((web_pid = daemon_fork()) == 0) {
			/* The web worker reaches the storage keys only. */
			pkeyd_client_free(&pk);
			portal_web_worker(&c, &pl, web_fd, pkweb);
		}
		close(web_fd);
		children[n].pid = web_pid;
		children[n++].name = "web";
	}
	for (int i = 0; i < pl.n; i++)
		close(pl.fd[i]);
	pkeyd_client_free(&pk);
	pkeyd_client_free(&pkweb);
	log_setproc("parent");

	/* Any worker's death is fatal (fail closed). */
	status = daemon_supervise(children, n, -1);
	conf_free(&c);
	return status;
}
