/*
 * Relay: routes each recipient of a variant through the transport map,
 * sends one SMTP transaction per next hop and keeps the idempotency ledger
 * (table relay_ledger) in the gateway database.
 *
 * The ledger is kept per recipient: (msgkey, variant kind, next hop,
 * recipient), msgkey being a hash of the message as received and its
 * envelope sender. It exists for one case only: the sender's MTA retries
 * a transaction we answered 4xx after some copies had already gone out.
 * The retry then sends only to the recipients still missing. The gateway
 * forgets a message's entries as soon as its answer is final (2xx or 5xx),
 * so a byte-identical message sent again later is a new transaction and
 * goes out again; entries of 4xx answers expire after the retry window
 * (relay.ledger_ttl_hours).
 *
 * Input: recipient addresses and message files from our own SMTP session
 * (already validated), and next-hop replies (through smtp_client).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/rand.h>

#include "addr.h"
#include "db.h"
#include "log.h"
#include "relay.h"
#include "transport.h"
#include "xmalloc.h"

struct relay {
	struct transport_map	*map;
	struct relay_tls_policy	*pol;
	size_t			 npol;
	enum smtp_client_tls	 default_tls;
	char			*ca_file, *cert_file, *key_file, *helo;
	EVP_PKEY		*client_key;
	char			*dbpath;
	int			 timeout;
	long long		 ttl;
	long long		 last_purge;	/* atomic; time of last purge */
};

#define RELAY_PURGE_INTERVAL	60	/* seconds */

static const char relay_schema[] =
    "CREATE TABLE IF NOT EXISTS relay_ledger ("
    " msgkey TEXT NOT NULL,"
    " kind TEXT NOT NULL,"
    " nexthop TEXT NOT NULL,"
    " rcpt TEXT NOT NULL,"
    " created INTEGER NOT NULL,"
    " PRIMARY KEY (msgkey, kind, nexthop, rcpt));"
    "CREATE INDEX IF NOT EXISTS relay_ledger_created"
    " ON relay_ledger (created);";

static const char *const relay_steps[] = { relay_schema };

static char *
relay_strdup(const char *s)
{
	return s != NULL && *s != '\0' ? xstrdup(s) : NULL;
}

struct relay *
relay_new(const struct relay_conf *rc, char **err)
{
	struct transport_nexthop nh;
	struct relay *r;
	struct db *db;
	const char *why;
	char *e = NULL;
	size_t i;

	*err = NULL;
	r = xcalloc(1, sizeof(*r));
	r->default_tls = SMTP_CLIENT_TLS_MAY;
	if (rc->default_tls != NULL &&
	    smtp_client_tls_level(rc->default_tls, &r->default_tls) == -1) {
		xasprintf(err, "relay.default_tls: must be none, may or "
		    "encrypt");
		goto fail;
	}
	if (rc->transport_map == NULL) {
		xasprintf(err, "relay.transport_map: not set");
		goto fail;
	}
	if ((r->map = transport_load(rc->transport_map, err)) == NULL)
		goto fail;
	r->pol = xcalloc(rc->ntls_policy + 1, sizeof(*r->pol));
	for (i = 0; i < rc->ntls_policy; i++) {
		r->pol[i] = rc->tls_policy[i];
		if (transport_parse_nexthop(rc->tls_policy[i].nexthop, &nh,
		    &why) == -1) {
			xasprintf(err, "relay.tls_policy nexthop \"%s\": %s",
			    rc->tls_policy[i].nexthop, why);
			goto fail;
		}
		/* Compared in canonical form, "[host]:port". */
		snprintf(r->pol[i].nexthop, sizeof(r->pol[i].nexthop), "%s",
		    nh.nexthop);
	}
	r->npol = rc->ntls_policy;
	r->ca_file = relay_strdup(rc->ca_file);
	r->cert_file = relay_strdup(rc->cert_file);
	r->key_file = relay_strdup(rc->key_file);
	if ((r->client_key = rc->client_key) != NULL)
		EVP_PKEY_up_ref(r->client_key);
	r->helo = xstrdup(rc->helo ? rc->helo : "localhost");
	r->timeout = rc->timeout > 0 ? rc->timeout : 120;
	r->ttl = rc->ledger_ttl > 0 ? rc->ledger_ttl : RELAY_LEDGER_TTL;
	if (rc->dbpath == NULL) {
		xasprintf(err, "database: not set");
		goto fail;
	}
	r->dbpath = xstrdup(rc->dbpath);
	if ((db = db_open(r->dbpath, &e)) == NULL) {
		xasprintf(err, "%s: %s", db_redact(r->dbpath), e);
		free(e);
		goto fail;
	}
	if (db_migrate(db, "gw-relay-ledger", relay_steps, 1, &e) == -1) {
		xasprintf(err, "%s: relay_ledger: %s", db_redact(r->dbpath),
		    e);
		free(e);
		db_close(db);
		goto fail;
	}
	db_close(db);
	return r;
 fail:
	relay_free(r);
	return NULL;
}

void
relay_free(struct relay *r)
{
	if (r == NULL)
		return;
	transport_free(r->map);
	free(r->pol);
	free(r->ca_file);
	free(r->cert_file);
	free(r->key_file);
	EVP_PKEY_free(r->client_key);
	free(r->helo);
	free(r->dbpath);
	free(r);
}

int
relay_nexthop(const struct relay *r, const char *rcpt, char *out,
    size_t outlen)
{
	struct transport_nexthop hop;
	char dom[ADDR_MAX];

	if (addr_domain_of(rcpt, dom, sizeof(dom)) == -1 ||
	    transport_lookup(r->map, dom, &hop) == -1) {
		snprintf(out, outlen, "none");
		return -1;
	}
	snprintf(out, outlen, "%s", hop.nexthop);
	return 0;
}

void
relay_msgkey(const char *from, const char *path, char out[65])
{
	unsigned char md[32], *buf;
	EVP_MD_CTX *ctx;
	ssize_t n = -1;
	int fd;
	size_t i;

	if ((ctx = EVP_MD_CTX_new()) == NULL ||
	    EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1)
		fatalx("relay_msgkey: SHA-256 unavailable");
	buf = xmalloc(65536);
	EVP_DigestUpdate(ctx, from, strlen(from) + 1);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) != -1) {
		while ((n = read(fd, buf, 65536)) > 0 ||
		    (n == -1 && errno == EINTR))
			if (n > 0)
				EVP_DigestUpdate(ctx, buf, (size_t)n);
		close(fd);
	}
	EVP_DigestFinal_ex(ctx, md, NULL);
	EVP_MD_CTX_free(ctx);
	free(buf);
	if (fd == -1 || n == -1) {
		log_warn("relay_msgkey: %s", path);
		if (RAND_bytes(md, sizeof(md)) != 1)
			fatalx("relay_msgkey: RAND_bytes failed");
	}
	for (i = 0; i < sizeof(md); i++)
		snprintf(out + 2 * i, 3, "%02x", md[i]);
}

/*
 * The ledger's connection is the calling worker thread's own (db_thread):
 * one per thread for its life, never one per message. synchronous=NORMAL
 * on it: in WAL mode a commit is then durable at the next checkpoint
 * rather than at once, so a power loss can forget the last few entries.
 * That keeps the ledger's promise. An entry only suppresses a retry of a
 * transaction we answered 4xx; a forgotten entry makes that retry send a
 * copy again (a duplicate), it never makes anything be skipped, so no mail
 * is lost. The gateway's other writes on this thread are ledger writes
 * only (properties and certificates are written by postern-cli).
 */
static struct db *
relay_db(struct relay *r)
{
	static __thread struct db *ready;
	struct db *db;
	char *e = NULL;

	if ((db = db_thread(r->dbpath)) == NULL)
		return NULL;
	if (db != ready) {
		if (db_kind(db) == DB_SQLITE &&
		    db_exec(db, "PRAGMA synchronous=NORMAL", &e) == -1) {
			log_warnx("relay ledger: %s: %s",
			    db_redact(r->dbpath), e);
			free(e);
			return NULL;
		}
		ready = db;
	}
	return db;
}

/* 1 when delivered and younger than the TTL, 0 when not, -1 (logged). */
static int
relay_db_delivered(struct relay *r, struct db *db, const char *msgkey,
    const char *kind, const char *nexthop, const char *rcpt, time_t now)
{
	struct db_stmt *st;
	int rv;

	if ((st = db_prepare_cached(db, "SELECT 1 FROM relay_ledger WHERE "
	    "msgkey = ?1 AND kind = ?2 AND nexthop = ?3 AND rcpt = ?4 AND "
	    "created > ?5")) == NULL)
		return -1;
	if (db_bind(st, "tttti", msgkey, kind, nexthop, rcpt,
	    (int64_t)now - r->ttl) == -1)
		rv = -1;
	else
		rv = db_step(st);	/* DB_ROW 1, DB_DONE 0, or -1 */
	db_finalize(st);
	return rv;
}

static int
relay_db_record(struct db *db, const char *msgkey, const char *kind,
    const char *nexthop, const char *rcpt, time_t when)
{
	return db_run(db, "INSERT INTO relay_ledger "
	    "(msgkey, kind, nexthop, rcpt, created) VALUES (?1,?2,?3,?4,?5) "
	    "ON CONFLICT (msgkey, kind, nexthop, rcpt) DO UPDATE SET "
	    "created = excluded.created",
	    "tttti", msgkey, kind, nexthop, rcpt, (int64_t)when) == -1 ?
	    -1 : 0;
}

static int
relay_db_purge(struct relay *r, struct db *db, time_t now)
{
	return db_run(db, "DELETE FROM relay_ledger WHERE created <= ?1", "i",
	    (int64_t)now - r->ttl) == -1 ? -1 : 0;
}

/* Expired rows go at most once a minute, by whichever thread is first. */
static void
relay_purge_due(struct relay *r, struct db *db, time_t now)
{
	long long last = __atomic_load_n(&r->last_purge, __ATOMIC_RELAXED);

	if (now - last < RELAY_PURGE_INTERVAL ||
	    !__atomic_compare_exchange_n(&r->last_purge, &last, (long long)now,
	    0, __ATOMIC_RELAXED, __ATOMIC_RELAXED))
		return;
	(void)relay_db_purge(r, db, now);
}

int
relay_ledger_delivered(struct relay *r, const char *msgkey, const char *kind,
    const char *nexthop, const char *rcpt, time_t now)
{
	struct db *db;

	if ((db = relay_db(r)) == NULL)
		return -1;
	return relay_db_delivered(r, db, msgkey, kind, nexthop, rcpt, now);
}

int
relay_ledger_record(struct relay *r, const char *msgkey, const char *kind,
    const char *nexthop, const char *rcpt, time_t when)
{
	struct db *db;

	if ((db = relay_db(r)) == NULL)
		return -1;
	return relay_db_record(db, msgkey, kind, nexthop, rcpt, when);
}

int
relay_ledger_purge(struct relay *r, time_t now)
{
	struct db *db;

	if ((db = relay_db(r)) == NULL)
		return -1;
	return relay_db_purge(r, db, now);
}

int
relay_ledger_known(struct relay *r, const char *msgkey)
{
	struct db *db;
	struct db_stmt *st;
	int rv;

	if ((db = relay_db(r)) == NULL)
		return -1;
	if ((st = db_prepare_cached(db, "SELECT 1 FROM relay_ledger WHERE "
	    "msgkey = ?1 LIMIT 1")) == NULL)
		return -1;
	if (db_bind(st, "t", msgkey) == -1)
		rv = -1;
	else
		rv = db_step(st);	/* DB_ROW 1, DB_DONE 0, or -1 */
	db_finalize(st);
	return rv;
}

void
relay_hold_clear(struct relay_hold *h)
{
	free(h->held);
	h->held = NULL;
	h->nheld = 0;
}

int
relay_ledger_forget(struct relay *r, const char *msgkey, const char *rcpt)
{
	struct db *db;

	if ((db = relay_db(r)) == NULL)
		return -1;
	if (rcpt == NULL)
		return db_run(db, "DELETE FROM relay_ledger WHERE msgkey = ?1",
		    "t", msgkey) == -1 ? -1 : 0;
	return db_run(db, "DELETE FROM relay_ledger WHERE msgkey = ?1 AND "
	    "rcpt = ?2", "tt", msgkey, rcpt) == -1 ? -1 : 0;
}

static void
relay_target(struct relay *r, const struct transport_nexthop *nh,
    struct smtp_client_target *t)
{
	size_t i;

	memset(t, 0, sizeof(*t));
	snprintf(t->host, sizeof(t->host), "%s", nh->host);
	t->port = nh->port;
	t->tls = r->default_tls;
	t->ca_file = r->ca_file;
	for (i = 0; i < r->npol; i++)
		if (strcmp(r->pol[i].nexthop, nh->nexthop) == 0) {
			t->tls = r->pol[i].level;
			if (r->pol[i].ca_file[0] != '\0')
				t->ca_file = r->pol[i].ca_file;
			break;
		}
	t->cert_file = r->cert_file;
	t->key_file = r->key_file;
	t->key = r->client_key;
	t->helo = r->helo;
	t->timeout = r->timeout;
}

/* One next hop: skips recipients the ledger knows, sends to the rest. */
static void
relay_group(struct relay *r, struct db *db, const char *msgkey,
    const struct relay_variant *v, const struct transport_nexthop *nh,
    const size_t *idx, size_t n, int *codes, char (*replies)[512], int hold)
{
	struct smtp_client_target t;
	struct smtp_client_msg m;
	struct smtp_client_result res;
	const char **rcpts = xcalloc(n, sizeof(*rcpts));
	size_t *sidx = xcalloc(n, sizeof(*sidx));
	size_t i, ns = 0, k;
	time_t now = time(NULL);
	int d;

	for (i = 0; i < n; i++) {
		k = idx[i];
		d = v->hold != NULL && v->hold->fresh ? 0 :
		    relay_db_delivered(r, db, msgkey, v->kind, nh->nexthop,
		    v->rcpts[k], now);
		if (d == 1) {
			codes[k] = 250;
			snprintf(replies[k], sizeof(replies[k]), "2.0.0 "
			    "already delivered to %s in an earlier attempt",
			    nh->nexthop);
		} else if (d == -1) {
			codes[k] = 451;
			snprintf(replies[k], sizeof(replies[k]), "4.3.0 "
			    "relay ledger unavailable");
		} else {
			sidx[ns] = k;
			rcpts[ns++] = v->rcpts[k];
		}
	}
	if (ns < n)
		log_info("relay: kind=%s nexthop=%s: %zu of %zu recipients not "
		    "sent (relayed in an earlier attempt, or ledger error: 451)",
		    v->kind, nh->nexthop, n - ns, n);
	if (ns == 0)
		goto done;

	relay_target(r, nh, &t);
	memset(&m, 0, sizeof(m));
	m.from = v->from;
	m.rcpts = rcpts;
	m.nrcpts = ns;
	m.path = v->path;
	m.head = v->head;
	m.smtputf8 = v->smtputf8;
	m.body_8bit = v->body_8bit;
	memset(&res, 0, sizeof(res));
	res.rcpt_code = xcalloc(ns, sizeof(*res.rcpt_code));
	res.rcpt_reply = xcalloc(ns, sizeof(*res.rcpt_reply));
	smtp_client_send(&t, &m, &res);
	log_info("relay: kind=%s nexthop=%s rcpts=%zu status=%d: %s",
	    v->kind, nh->nexthop, ns, res.status, res.reply);

	for (i = 0; i < ns; i++) {
		k = sidx[i];
		codes[k] = res.rcpt_code[i];
		snprintf(replies[k], sizeof(replies[k]), "%s",
		    res.rcpt_reply[i][0] ? res.rcpt_reply[i] : res.reply);
		if (codes[k] == 0)
			codes[k] = 451;
		else if (codes[k] / 100 != 2)
			continue;
		else if (hold) {
			struct relay_hold *h = v->hold;
			struct relay_held *e;

			h->held = xreallocarray(h->held, h->nheld + 1,
			    sizeof(*h->held));
			e = &h->held[h->nheld++];
			e->kind = v->kind;
			snprintf(e->nexthop, sizeof(e->nexthop), "%s",
			    nh->nexthop);
			e->vidx = k;
			e->when = time(NULL);
		} else if (relay_db_record(db, msgkey, v->kind, nh->nexthop,
		    rcpts[i], time(NULL)) == -1)
			/* Delivered all the same: say so, a retry may dup. */
			log_warnx("relay: kind=%s nexthop=%s: delivered but "
			    "not recorded", v->kind, nh->nexthop);
		else if (v->hold != NULL)
			v->hold->recorded++;
	}
	free(res.rcpt_code);
	free(res.rcpt_reply);
 done:
	free(rcpts);
	free(sidx);
}

int
relay_send(struct relay *r, const char *msgkey,
    const struct relay_variant *v, int *codes, char (*replies)[512])
{
	struct transport_nexthop *hops;
	struct db *db;
	char dom[256];
	size_t i, j, n, *idx;
	char *routed;
	int last;

	for (i = 0; i < v->nrcpts; i++) {
		codes[i] = 0;
		replies[i][0] = '\0';
	}
	if (v->nrcpts == 0)
		return 0;
	if ((db = relay_db(r)) == NULL)
		return -1;
	relay_purge_due(r, db, time(NULL));

	hops = xcalloc(v->nrcpts, sizeof(*hops));
	routed = xcalloc(v->nrcpts, 1);
	idx = xcalloc(v->nrcpts, sizeof(*idx));
	for (i = 0; i < v->nrcpts; i++) {
		if (addr_domain_of(v->rcpts[i], dom, sizeof(dom)) == -1)
			dom[0] = '\0';
		if (transport_lookup(r->map, dom, &hops[i]) == 0)
			routed[i] = 1;
		else {
			/* A gap in the map: the admin must fix it, keep it. */
			codes[i] = 451;
			snprintf(replies[i], sizeof(replies[i]), "4.3.5 no "
			    "transport route for domain \"%s\"", dom);
			log_warnx("relay: no transport route for domain "
			    "\"%s\"", dom);
		}
	}
	for (i = 0; i < v->nrcpts; i++) {
		if (!routed[i])
			continue;
		for (n = 0, j = i; j < v->nrcpts; j++)
			if (routed[j] && strcmp(hops[j].nexthop,
			    hops[i].nexthop) == 0) {
				idx[n++] = j;
				routed[j] = 0;
			}
		/* Held: the last transaction of the message's last call. */
		for (last = 1, j = i + 1; j < v->nrcpts; j++)
			if (routed[j])
				last = 0;
		relay_group(r, db, msgkey, v, &hops[i], idx, n, codes,
		    replies, v->hold != NULL && v->hold->last && last);
	}
	free(hops);
	free(routed);
	free(idx);
	return 0;
}
