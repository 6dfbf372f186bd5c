/*
 * external-portal ingest: the SMTP/LMTP side of the portal. Only the
 * internal gateway may talk to it (mynetworks, optionally a pinned TLS
 * client certificate). It turns local=domain@relay-domain back into
 * local@domain, routes by trigger header, removes the triggers (the rest of
 * the message is stored byte for byte) and stores one copy per recipient;
 * 250 only after the store committed.
 *
 * SECURITY: the envelope and message are peer input: the gateway relays
 * mail written by any Internet sender, and whoever got into mynetworks
 * can write it directly. Addresses go through addr.h, the header through
 * header.h with a size limit, mail for webmail-recipient goes to the
 * add-on tunnel (tunnel_in.c, which require-tunnel makes the only way
 * in), and a bad message gets a 5xx
 * reply, never a crash. From and Subject are stored as raw values and
 * decoded and escaped only where they are shown. Store and database
 * failures answer 451.
 */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <gmime/gmime.h>
#include <openssl/cms.h>
#include <openssl/crypto.h>
#include <openssl/err.h>

#include "addr.h"
#include "ingest/ingest.h"
#include "ingest/ingest_parts.h"
#include "ingest/tunnel_in.h"
#include "outbox/pdfotp.h"
#include "log.h"
#include "netaddr.h"
#include "outbox/outbox.h"
#include "props.h"
#include "splitmode.h"
#include "store/store.h"
#include "store/store_crypt.h"
#include "xmalloc.h"

#define INGEST_SPEC_MAX	1024

/* The split-mode contract decides (splitmode.c); this maps its answer. */
enum ingest_route
ingest_classify(const struct header *h, const struct ingest_triggers *t)
{
	switch (splitmode_classify(h, t->webmail, t->webmail_enabled, t->otp,
	    t->otp_enabled)) {
	case SPLITMODE_PDF:
		return INGEST_ROUTE_PDF;
	case SPLITMODE_WEBMAIL:
		return INGEST_ROUTE_WEBMAIL;
	default:
		return INGEST_ROUTE_NONE;
	}
}

int
ingest_owner(const char *rcpt, const char *relay_domain, int revert, int utf8,
    char *out, size_t outlen, const char **why)
{
	char dom[ADDR_MAX], rdom[ADDR_MAX], buf[2 * ADDR_MAX + 2];
	struct addr a;

	if (addr_domain_of(rcpt, dom, sizeof(dom)) == -1) {
		*why = "no domain";
		return -1;
	}
	if (revert && relay_domain != NULL &&
	    strcasecmp(dom, relay_domain) == 0) {
		if (addr_revert(rcpt, relay_domain, utf8, buf, sizeof(buf),
		    why) == -1)
			return -1;
	} else
		snprintf(buf, sizeof(buf), "%s", rcpt);
	if (addr_parse(buf, utf8, &a, why) == -1)
		return -1;
	/*
	 * No account in the relay domain: an address still in it after the
	 * revert (revert off, or mail to local=domain@relay from the LAN
	 * rewritten twice) is not a mailbox anyone can sign in to.
	 */
	if (relay_domain != NULL && *relay_domain != '\0' &&
	    addr_fold_domain(a.domain, dom, sizeof(dom)) == 0 &&
	    addr_fold_domain(relay_domain, rdom, sizeof(rdom)) == 0 &&
	    strcmp(dom, rdom) == 0) {
		*why = "no mailbox in the relay domain";
		return -1;
	}
	/* The mailbox identity: one spelling per mailbox (addr_fold). */
	if (addr_format(&a, buf, sizeof(buf)) == -1 ||
	    addr_fold(buf, out, outlen) == -1) {
		*why = "address cannot be folded to one spelling";
		return -1;
	}
	return 0;
}

int
ingest_pin_parse(const char *in, char out[65])
{
	size_t n = 0;

	for (; *in != '\0'; in++) {
		if (*in == ':')
			continue;
		if (!isxdigit((unsigned char)*in) || n == 64)
			return -1;
		out[n++] = tolower((unsigned char)*in);
	}
	out[n] = '\0';
	return n == 64 ? 0 : -1;
}

/*
 * The thread's property reader, its cache checked against the database:
 * each call starts a unit of work (a recipient, a message), so a property
 * changed meanwhile (postern-cli, another node) is read anew. A failed
 * check leaves the reader uncached.
 */
struct props *
ingest_props(struct ingest *in)
{
	struct props *p = props_thread(in->dbpath, PROPS_NODE_PORTAL);

	if (p != NULL)
		(void)props_cache_begin(p);
	return p;
}

static int
ingest_pinned(const struct ingest *in, const struct smtp_txn *txn)
{
	if (in->npins == 0)
		return 1;
	if (!txn->tls || txn->tls_peer_fp[0] == '\0')
		return 0;
	for (size_t i = 0; i < in->npins; i++)
		if (strlen(in->pins[i]) == 64 &&
		    CRYPTO_memcmp(in->pins[i], txn->tls_peer_fp, 64) == 0)
			return 1;
	return 0;
}

static int
ingest_connect(void *arg, const struct sockaddr *sa, socklen_t salen,
    char *reply, size_t replylen)
{
	struct ingest *in = arg;
	char ip[NETADDR_STRLEN];

	(void)salen;
	if (netaddr_list_match(in->mynetworks, sa) == 1)
		return 0;
	netaddr_ntop(sa, ip, sizeof(ip));
	log_warnx("refused connection from %s: not in mynetworks", ip);
	snprintf(reply, replylen, "554 5.7.1 Access denied: this portal "
	    "accepts mail only from its gateway");
	return -1;
}

/*
 * What the properties say about one recipient. 0, 1 when its domain is not
 * served, -1 on a database failure.
 */
int
ingest_lookup(struct ingest *in, const char *rcpt, int utf8, char *owner,
    size_t ownerlen, const char **why)
{
	char dom[ADDR_MAX], *relay;
	struct props *p;
	int exists, revert, rc;

	if (addr_domain_of(rcpt, dom, sizeof(dom)) == -1) {
		*why = "no domain";
		return 1;
	}
	if ((p = ingest_props(in)) == NULL)
		return -1;
	exists = props_domain_exists(p, dom);
	relay = props_get(p, NULL, "portal-relay-domain", NULL);
	revert = props_get_bool(p, rcpt, "revert-rewrite-recipient");
	if (exists == -1 || relay == NULL || revert == -1) {
		free(relay);
		return -1;
	}
	if (exists == 0) {
		*why = "domain not served here";
		free(relay);
		return 1;
	}
	rc = ingest_owner(rcpt, relay, revert == 1, utf8, owner, ownerlen, why);
	free(relay);
	return rc == 0 ? 0 : 1;
}

static int
ingest_rcpt(void *arg, const struct smtp_txn *txn, const char *addr,
    char *reply, size_t replylen)
{
	struct ingest *in = arg;
	char owner[2 * ADDR_MAX + 2];
	const char *why = NULL;
	int rc;

	if (!ingest_pinned(in, txn)) {
		log_warnx("id=%s refused %s: TLS client certificate is not the "
		    "gateway's", txn->id, txn->client_addr);
		snprintf(reply, replylen, "554 5.7.1 Only the gateway may send "
		    "here: client certificate required");
		return -1;
	}
	if ((rc = tunnel_in_rcpt(in, txn, addr, reply, replylen)) != 0)
		return rc == 1 ? 0 : -1;
	rc = ingest_lookup(in, addr, txn->smtputf8, owner, sizeof(owner),
	    &why);
	if (rc == -1) {
		snprintf(reply, replylen, "451 4.3.0 Temporary failure, try "
		    "again later");
		return -1;
	}
	if (rc == 1) {
		log_info("id=%s rcpt <%s> refused: %s", txn->id, addr, why);
		snprintf(reply, replylen, "550 5.1.1 <%s>: %s", addr, why);
		return -1;
	}
	return 0;
}

static void
ingest_set(struct smtp_rcpt *r, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
ingest_set(struct smtp_rcpt *r, int code, const char *fmt, ...)
{
	va_list ap;

	r->code = code;
	va_start(ap, fmt);
	vsnprintf(r->reply, sizeof(r->reply), fmt, ap);
	va_end(ap);
}

static void
ingest_set_all(struct smtp_txn *txn, int code, const char *text)
{
	for (size_t i = 0; i < txn->nrcpts; i++)
		ingest_set(&txn->rcpts[i], code, "%s", text);
}

/* Metadata the web portal lists, from the stored header. */
void
ingest_meta(const struct header *h, struct store_msg *m)
{
	const struct header_field *f;
	GDateTime *dt;

	if ((f = header_get(h, "From")) != NULL)
		m->hdr_from = f->value;
	if ((f = header_get(h, "Subject")) != NULL)
		m->subject = f->value;
	if ((f = header_get(h, "Date")) != NULL &&
	    (dt = g_mime_utils_header_decode_date(f->value)) != NULL) {
		m->date = g_date_time_to_unix(dt);
		g_date_time_unref(dt);
	}
	if ((f = header_get(h, "Content-Type")) != NULL &&
	    strncasecmp(f->value, "multipart/mixed", 15) == 0)
		m->has_attachments = 1;
}

/*
 * A sealed copy's row: From and Subject only in meta->sealed_meta (set
 * by the caller, sealed with the file's CEK), never in clear.
 */
static void
ingest_meta_sealed(struct store_msg *m)
{
	m->hdr_from = NULL;
	m->subject = NULL;
}

/* Seals From and Subject of meta with key into meta->sealed_meta. */
int
ingest_meta_seal(struct store_msg *m, const unsigned char *key)
{
	const char *v[STORE_CRYPT_META_N];

	v[STORE_CRYPT_META_FROM] = m->hdr_from;
	v[STORE_CRYPT_META_SUBJECT] = m->subject;
	return store_crypt_meta_seal(key, v, STORE_CRYPT_META_N,
	    &m->sealed_meta, &m->sealed_metalen);
}

/* A multipart message: one whose parts are worth recording. */
static int
ingest_multipart(const struct header *h)
{
	const struct header_field *f = header_get(h, "Content-Type");
	const char *v;

	if (f == NULL)
		return 0;
	v = f->value + strspn(f->value, " \t\r\n");
	return strncasecmp(v, "multipart/", 10) == 0;
}

static const char *
ingest_route_name(enum ingest_route r)
{
	switch (r) {
	case INGEST_ROUTE_WEBMAIL: return "webmail";
	case INGEST_ROUTE_PDF: return "pdf-otp";
	default: return "none";
	}
}

/* One recipient of a message already written to tmp. */
static void
ingest_deliver(struct ingest *in, struct smtp_txn *txn, struct smtp_rcpt *r,
    const struct header *h, struct store_tmp *tmp, struct store_tmp *sealed,
    struct store_msg *meta, const char *webmail, const char *otp,
    int standalone, int *woke)
{
	struct ingest_triggers t;
	struct props *p;
	char owner[2 * ADDR_MAX + 2];
	const char *why = NULL;
	enum ingest_route route;
	struct store_msg sm;
	long long quota, remind;
	int64_t id;
	int rc;

	memset(&sm, 0, sizeof(sm));
	if ((rc = ingest_lookup(in, r->addr, txn->smtputf8, owner,
	    sizeof(owner), &why)) != 0) {
		if (rc == -1)
			ingest_set(r, 451, "4.3.0 Temporary failure, try again "
			    "later");
		else
			ingest_set(r, 550, "5.1.1 <%s>: %s", r->addr, why);
		return;
	}
	if ((p = ingest_props(in)) == NULL) {
		ingest_set(r, 451, "4.3.0 Temporary failure, try again later");
		return;
	}
	t.webmail = webmail;
	t.otp = otp;
	t.webmail_enabled = props_get_bool(p, owner,
	    "trigger-webmail-header-enabled");
	t.otp_enabled = props_get_bool(p, owner,
	    "trigger-otp-encryption-header-enabled");
	quota = props_get_int(p, owner, "quota");
	remind = props_get_int(p, owner, "signup-reminder-interval");
	/*
	 * A property that could not be read (the database went away) is a
	 * temporary failure, never "trigger off" and a 550 that bounces.
	 */
	if (t.webmail_enabled == -1 || t.otp_enabled == -1 || quota == -1 ||
	    remind == -1) {
		ingest_set(r, 451, "4.3.0 Temporary failure, try again later");
		return;
	}

	route = ingest_classify(h, &t);
	if (route == INGEST_ROUTE_NONE && standalone)
		route = INGEST_ROUTE_WEBMAIL;
	if (route == INGEST_ROUTE_NONE) {
		log_info("id=%s to=<%s> refused: no portal trigger header",
		    txn->id, owner);
		ingest_set(r, 550, "5.7.0 <%s>: no portal trigger header; "
		    "this portal accepts only mail routed by its gateway",
		    r->addr);
		return;
	}
	meta->state = route == INGEST_ROUTE_PDF ? STORE_MSG_PDF_PENDING :
	    STORE_MSG_WEBMAIL;
	/* A pending account: one invitation, then reminders spaced out. */
	/*
	 * PDF-OTP copies stay plain until rendered (ingest has no key), and
	 * so do their From and Subject; a sealed copy gets them sealed.
	 */
	if (route == INGEST_ROUTE_WEBMAIL && sealed->path != NULL) {
		sm = *meta;
		ingest_meta_sealed(&sm);
	}
	rc = store_deliver_remind(in->store, route == INGEST_ROUTE_WEBMAIL &&
	    sealed->path != NULL ? sealed : tmp, sm.sealed_meta != NULL ?
	    &sm : meta, owner,
	    quota > 0 ? quota : 0, route == INGEST_ROUTE_WEBMAIL,
	    remind >= 0 ? remind * 3600 : STORE_REMIND_DEFAULT, &id);
	if (rc == STORE_EQUOTA) {
		log_warnx("id=%s to=<%s> deferred: mailbox over quota (%lld "
		    "bytes)", txn->id, owner, quota);
		ingest_set(r, 452, "4.2.2 <%s>: mailbox full", r->addr);
		return;
	}
	if (rc != 0) {
		log_warnx("id=%s to=<%s> deferred: store failure", txn->id,
		    owner);
		ingest_set(r, 451, "4.3.0 Temporary failure, try again later");
		return;
	}
	log_info("id=%s from=<%s> to=<%s> owner=%s route=%s size=%lld "
	    "stored msg=%lld", txn->id, txn->mail_from, r->addr, owner,
	    ingest_route_name(route), (long long)txn->size, (long long)id);
	ingest_set(r, 250, "2.0.0 Ok: stored as %lld (%s)", (long long)id,
	    ingest_route_name(route));
	if (route == INGEST_ROUTE_WEBMAIL)
		*woke |= 1;
	else
		*woke |= 2;	/* the PDF-OTP thread */
}

static void
ingest_message(void *arg, struct smtp_txn *txn)
{
	struct ingest *in = arg;
	struct props *p;
	struct header h;
	struct store_tmp tmp = { NULL, NULL }, sealed = { NULL, NULL };
	struct store_msg meta;
	char wname[INGEST_SPEC_MAX], oname[INGEST_SPEC_MAX];
	char val[INGEST_SPEC_MAX];
	const char *names[2];
	size_t nnames = 0;
	char *webmail = NULL, *otp = NULL;
	int standalone, removed = 0, woke = 0, rc;
	struct store_part *parts = NULL;
	int nparts = 0;
	unsigned char cek[STORE_CRYPT_KEYLEN];
	FILE *f;

	ingest_set_all(txn, 451, "4.3.0 Temporary failure, try again later");
	memset(&h, 0, sizeof(h));
	memset(&meta, 0, sizeof(meta));
	if (!ingest_pinned(in, txn)) {
		ingest_set_all(txn, 554, "5.7.1 Only the gateway may send here");
		return;
	}
	if (tunnel_in_message(in, txn))
		return;
	if ((f = fopen(txn->spool_path, "r")) == NULL) {
		log_warn("id=%s %s", txn->id, txn->spool_path);
		return;
	}
	if ((rc = header_read(f, in->max_header, &h)) != 0) {
		if (rc == -2) {
			log_info("id=%s refused: malformed or oversized header",
			    txn->id);
			ingest_set_all(txn, 550, "5.6.0 Malformed or oversized "
			    "message header");
		} else
			log_warn("id=%s reading %s", txn->id, txn->spool_path);
		goto out;
	}

	if ((p = ingest_props(in)) == NULL)
		goto out;
	webmail = props_get(p, NULL, "trigger-webmail-header", NULL);
	otp = props_get(p, NULL, "trigger-otp-encryption-header", NULL);
	standalone = props_get_bool(p, NULL, "webmail-standalone");
	if (webmail == NULL || otp == NULL || standalone == -1)
		goto out;
	if (header_trigger_parse(webmail, wname, sizeof(wname), val,
	    sizeof(val)) == 0)
		names[nnames++] = wname;
	if (header_trigger_parse(otp, oname, sizeof(oname), val,
	    sizeof(val)) == 0)
		names[nnames++] = oname;

	if (store_tmp_create(in->store, &tmp) == -1)
		goto out;
	rewind(f);
	rc = header_rewrite(f, tmp.fp, in->max_header, names, nnames, NULL,
	    &removed);
	if (rc != 0) {
		if (rc == -2)
			ingest_set_all(txn, 550, "5.6.0 Malformed or oversized "
			    "message header");
		else
			log_warn("id=%s writing the stored copy", txn->id);
		goto out;
	}
	memset(&meta, 0, sizeof(meta));
	meta.folder = STORE_FOLDER_INBOX;
	meta.mail_from = txn->mail_from;
	ingest_meta(&h, &meta);
	/* Sealed: the web parses the decrypted stream (store_crypt.h). */
	if (in->crypt != NULL && (store_crypt_seal_copy(in->crypt, in->store,
	    &tmp, &sealed, cek) == -1 || ingest_meta_seal(&meta, cek) == -1))
		goto out;
	/* Where each attachment lies: the web serves it without a parse. */
	if (in->crypt == NULL && ingest_multipart(&h) && fflush(tmp.fp) == 0 &&
	    ingest_parts_scan(tmp.path, &parts, &nparts) == 0) {
		meta.parts = parts;
		meta.nparts = nparts;
	}
	for (size_t i = 0; i < txn->nrcpts; i++)
		ingest_deliver(in, txn, &txn->rcpts[i], &h, &tmp, &sealed,
		    &meta, webmail, otp, standalone == 1, &woke);
	if ((woke & 1) && in->outbox != NULL)
		outbox_wake(in->outbox);
	if (woke & 2)
		pdfotp_wake(in->pdfotp);
out:
	OPENSSL_cleanse(cek, sizeof(cek));
	free(meta.sealed_meta);
	ingest_parts_free(parts, nparts);
	/*
	 * Sealed, the plain copy is a second temp file per message: emptied,
	 * it joins the pool too (see store_tmp_recycle), so the ingest frees
	 * no inode per message here either.
	 */
	if (tmp.path != NULL && in->crypt != NULL &&
	    ftruncate(fileno(tmp.fp), 0) == 0) {
		fclose(tmp.fp);
		tmp.fp = NULL;
		if (store_tmp_recycle(in->store, tmp.path) == 0)
			xfree(&tmp.path);
	}
	if (tmp.path != NULL)
		store_tmp_discard(&tmp);
	if (sealed.path != NULL)
		store_tmp_discard(&sealed);
	header_free(&h);
	fclose(f);
	/* The spool's inode becomes a later message's file (store.h). */
	if (in->crypt != NULL && truncate(txn->spool_path, 0) == -1)
		log_debug("id=%s truncate the spool file", txn->id);
	(void)store_tmp_recycle(in->store, txn->spool_path);
	free(webmail);
	free(otp);
}

const struct smtp_server_ops ingest_ops = {
	.connect = ingest_connect,
	.rcpt = ingest_rcpt,
	.message = ingest_message,
};
