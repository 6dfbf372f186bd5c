/*
 * The portal's end of the add-on tunnel (shared/tunnel.h). Mail for the
 * property webmail-recipient is tunnel mail: decrypted with the portal's
 * tunnel key (the CEK is unwrapped by pkeyd; the content is decrypted
 * here), its manifest signature checked against the gateway's tunnel
 * certificate only (no chain: that certificate's key or nothing), the
 * manifest checked (time window, unseen id, size and digest of the
 * message) and the message stored for every listed recipient through the
 * same store path as split mode. Any failure of the tunnel itself is
 * 550 5.7.x with a log line naming the reason, and nothing is stored.
 *
 * SECURITY: the whole message is peer input (anyone inside mynetworks, or
 * anyone who got a message through the gateway). Nothing in it is trusted
 * before the signature over the manifest verified; the message is trusted
 * only after its size and digest matched the manifest. The decrypted
 * entity is parsed by the bounded fixed-layout reader in shared/tunnel.c.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <pthread.h>

#include <openssl/cms.h>
#include <openssl/crypto.h>
#include <openssl/err.h>

#include "addr.h"
#include "cmsdec.h"
#include "cmsskel.h"
#include "db.h"
#include "header.h"
#include "ingest/ingest.h"
#include "ingest/tunnel_in.h"
#include "log.h"
#include "outbox/outbox.h"
#include "pkeyd.h"
#include "props.h"
#include "store/store.h"
#include "store/store_crypt.h"
#include "tunnel.h"
#include "xmalloc.h"

/* The gateway encrypts to one certificate: a few are plenty. */
#define TUNNEL_IN_MAX_RI	16

/*
 * tunnel_seen: the recipients each tunnel id was stored for (a retry of
 * that id skips them). tunnel_claim: one row per tunnel id, claimed in one
 * statement before anything is stored, so of two copies arriving at once
 * only one goes on; done once its answer was final (a replay then gets
 * 550), removed when it was deferred so that the retry may claim it again.
 * proc is the ingest process that holds an unfinished claim: a claim left
 * by a process that died (kill -9 between claim and answer) is taken over
 * instead of refusing the retry as a replay.
 */
static const char tunnel_in_schema[] =
    "CREATE TABLE IF NOT EXISTS tunnel_seen ("
    " id TEXT NOT NULL, owner TEXT NOT NULL, ts INTEGER NOT NULL,"
    " PRIMARY KEY (id, owner));"
    "CREATE TABLE IF NOT EXISTS tunnel_claim ("
    " id TEXT PRIMARY KEY, ts INTEGER NOT NULL, done INTEGER NOT NULL,"
    " proc TEXT NOT NULL);";

static const char *const tunnel_in_steps[] = { tunnel_in_schema };
/* The thread's connection whose schema is known to be there. */
static __thread struct db *tunnel_in_ready;

static char		tunnel_in_proc[TUNNEL_ID_LEN + 1];
static pthread_once_t	tunnel_in_proc_once = PTHREAD_ONCE_INIT;

static void
tunnel_in_proc_init(void)
{
	tunnel_id_new(tunnel_in_proc);
}

/* The webmail-recipient property; NULL on a database failure. */
static char *
tunnel_in_recipient(struct ingest *in)
{
	char *r;

	r = props_get(ingest_props(in), NULL, "webmail-recipient", NULL);
	return r;
}

static int
tunnel_in_is(const char *recipient, const char *addr)
{
	return recipient != NULL && *recipient != '\0' &&
	    strcasecmp(recipient, addr) == 0;
}

int
tunnel_in_rcpt(struct ingest *in, const struct smtp_txn *txn,
    const char *addr, char *reply, size_t replylen)
{
	char *wr = tunnel_in_recipient(in);
	int req, tun, first_tun;

	req = props_get_bool(ingest_props(in), NULL, "require-tunnel");
	if (wr == NULL || req == -1) {
		free(wr);
		snprintf(reply, replylen, "451 4.3.0 Temporary failure, try "
		    "again later");
		return -1;
	}
	tun = tunnel_in_is(wr, addr);
	first_tun = txn->nrcpts > 0 && tunnel_in_is(wr, txn->rcpts[0].addr);
	free(wr);
	if (tun && in->tunnel_pkey == NULL) {
		log_warnx("id=%s tunnel mail refused: no tunnel key configured "
		    "(tunnel.key, tunnel.cert)", txn->id);
		snprintf(reply, replylen, "550 5.7.0 <%s>: this portal has no "
		    "tunnel key", addr);
		return -1;
	}
	if ((tun || first_tun) && txn->nrcpts > 0) {
		snprintf(reply, replylen, "550 5.5.3 <%s>: tunnel mail goes "
		    "alone, one recipient per transaction", addr);
		return -1;
	}
	if (tun)
		return 1;
	if (req == 1) {
		log_info("id=%s rcpt <%s> refused: require-tunnel is set",
		    txn->id, addr);
		snprintf(reply, replylen, "550 5.7.1 <%s>: this portal accepts "
		    "only tunnel mail from its gateway", addr);
		return -1;
	}
	return 0;
}

static void
tunnel_in_refuse(struct smtp_txn *txn, const char *why, const char *status)
{
	log_warnx("id=%s tunnel mail refused: %s", txn->id, why);
	for (size_t i = 0; i < txn->nrcpts; i++) {
		txn->rcpts[i].code = 550;
		snprintf(txn->rcpts[i].reply, sizeof(txn->rcpts[i].reply),
		    "%s Tunnel mail refused: %s", status, why);
	}
}

static void
tunnel_in_fail(struct smtp_txn *txn)
{
	for (size_t i = 0; i < txn->nrcpts; i++) {
		txn->rcpts[i].code = 451;
		snprintf(txn->rcpts[i].reply, sizeof(txn->rcpts[i].reply),
		    "4.3.0 Temporary failure, try again later");
	}
}

/* 1 when a key transport recipient of cms is our certificate. */
static int
tunnel_in_for_us(CMS_ContentInfo *cms, X509 *cert)
{
	STACK_OF(CMS_RecipientInfo) *ris = CMS_get0_RecipientInfos(cms);

	for (int i = 0; ris != NULL && i < sk_CMS_RecipientInfo_num(ris); i++) {
		CMS_RecipientInfo *ri = sk_CMS_RecipientInfo_value(ris, i);

		if (CMS_RecipientInfo_type(ri) == CMS_RECIPINFO_TRANS &&
		    CMS_RecipientInfo_ktri_cert_cmp(ri, cert) == 0)
			return 1;
	}
	return 0;
}

/*
 * The ciphertext of the tunnel mail at spool into the store temp file
 * content, and its skeleton (everything but the ciphertext) as an OpenSSL
 * structure in *cms: the base64 body is decoded into a second temp file
 * and split by the bounded walker, so memory stays flat whatever the
 * size. 0, 1 refused (*why), -1 local.
 */
static int
tunnel_in_split(struct ingest *in, const char *spool, FILE *content,
    CMS_ContentInfo **cms, const char **why)
{
	struct store_tmp der = { NULL, NULL };
	const struct header_field *cte;
	struct cmsskel sk;
	struct header h;
	FILE *f;
	int rc = -1;

	*cms = NULL;
	memset(&h, 0, sizeof(h));
	memset(&sk, 0, sizeof(sk));
	if ((f = fopen(spool, "re")) == NULL) {
		log_warn("tunnel_in: %s", spool);
		return -1;
	}
	if ((rc = header_read(f, in->max_header, &h)) != 0) {
		*why = "cannot decrypt: malformed header";
		rc = rc == -2 ? 1 : -1;
		goto out;
	}
	rc = -1;
	cte = header_get(&h, "Content-Transfer-Encoding");
	if (fseeko(f, (off_t)h.len, SEEK_SET) == -1 ||
	    store_tmp_create(in->store, &der) == -1)
		goto out;
	switch (cmsdec_unbase64(f, cte != NULL && strcasecmp(cte->value,
	    "base64") == 0, der.fp)) {
	case CMSDEC_OK:
		break;
	case CMSDEC_BAD:
		*why = "cannot decrypt: bad base64";
		rc = 1;
		goto out;
	default:
		goto out;
	}
	rewind(der.fp);
	if (cmsskel_read(der.fp, content, TUNNEL_IN_MAX_RI, &sk, why) == -1) {
		rc = ferror(der.fp) || ferror(content) ? -1 : 1;
		goto out;
	}
	if (sk.type != CMSSKEL_ENVELOPED) {
		*why = "cannot decrypt: not S/MIME enveloped data";
		rc = 1;
		goto out;
	}
	if ((*cms = cmsdec_skeleton(&sk, -1)) == NULL) {
		*why = "cannot decrypt: malformed enveloped data";
		rc = 1;
		goto out;
	}
	rc = 0;
out:
	cmsskel_free(&sk);
	header_free(&h);
	if (der.path != NULL)
		store_tmp_discard(&der);
	fclose(f);
	return rc;
}

/*
 * Decrypts the spool file into out: the content key through pkeyd, the
 * content here, a chunk at a time. 0, 1 refused (*why), -1 local.
 */
static int
tunnel_in_decrypt(struct ingest *in, const char *path, FILE *out,
    const char **why)
{
	char err[200];
	struct store_tmp content = { NULL, NULL };
	CMS_ContentInfo *cms = NULL;
	int rc;

	if (store_tmp_create(in->store, &content) == -1)
		return -1;
	if ((rc = tunnel_in_split(in, path, content.fp, &cms, why)) != 0)
		goto out;
	rc = 1;
	if (!tunnel_in_for_us(cms, in->tunnel_own_cert)) {
		*why = "cannot decrypt: not encrypted to this portal's tunnel "
		    "certificate";
		goto out;
	}
	if (!CMS_decrypt_set1_pkey(cms, in->tunnel_pkey, in->tunnel_own_cert)) {
		*why = "cannot decrypt with the tunnel key";
		goto out;
	}
	switch (cmsdec_content(cms, content.fp, out, err, sizeof(err))) {
	case CMSDEC_OK:
		rc = 0;
		break;
	case CMSDEC_LOCAL:
		log_warnx("tunnel_in: %s", err);
		rc = -1;
		break;
	default:
		*why = "cannot decrypt with the tunnel key";
		break;
	}
	if (rc == 0 && (fflush(out) == EOF || fseek(out, 0, SEEK_SET) == -1))
		rc = -1;
out:
	ERR_clear_error();
	CMS_ContentInfo_free(cms);
	store_tmp_discard(&content);
	return rc;
}

/* 1 when the signature over the manifest is the gateway's. */
static int
tunnel_in_verify(struct ingest *in, const struct tunnel_parts *p)
{
	STACK_OF(X509) *certs;
	CMS_ContentInfo *cms;
	const unsigned char *d = p->sig;
	BIO *data;
	int ok;

	if ((cms = d2i_CMS_ContentInfo(NULL, &d, (long)p->sig_len)) == NULL) {
		ERR_clear_error();
		return 0;
	}
	if ((data = BIO_new_mem_buf(p->manifest, (int)p->manifest_len)) ==
	    NULL || (certs = sk_X509_new_null()) == NULL ||
	    !sk_X509_push(certs, in->tunnel_cert))
		fatalx("tunnel_in: out of memory");
	/* Only the configured certificate may be the signer: no chain. */
	ok = CMS_verify(cms, certs, NULL, data, NULL, CMS_BINARY |
	    CMS_NOINTERN | CMS_NO_SIGNER_CERT_VERIFY | CMS_DETACHED) == 1;
	ERR_clear_error();
	sk_X509_free(certs);
	BIO_free(data);
	CMS_ContentInfo_free(cms);
	return ok;
}

/* Claims (id, owner); 1 when already there, -1 on a database failure. */
static int
tunnel_in_seen(struct db *db, const char *id, const char *owner, time_t now)
{
	struct db_stmt *st;
	int rc;

	if ((st = db_prepare(db, "SELECT 1 FROM tunnel_seen WHERE id = ?1 AND"
	    " owner = ?2")) == NULL || db_bind(st, "tt", id, owner) == -1) {
		if (st != NULL)
			db_finalize(st);
		return -1;
	}
	rc = db_step(st);
	db_finalize(st);
	if (rc == DB_ROW)
		return 1;
	if (rc != DB_DONE)
		return -1;
	(void)now;
	return 0;
}

/*
 * Claims tunnel id for this delivery: 1 when claimed (new, or left
 * unfinished by a process that is gone), 0 when another delivery holds or
 * finished it (a replay), -1 on a database failure. One statement, so two
 * threads or processes can never both claim it.
 */
static int
tunnel_in_claim(struct db *db, const char *id, time_t now)
{
	struct db_stmt *st;
	int rc;

	pthread_once(&tunnel_in_proc_once, tunnel_in_proc_init);
	if ((st = db_prepare(db, "INSERT INTO tunnel_claim (id, ts, done, proc)"
	    " VALUES (?1, ?2, 0, ?3) ON CONFLICT (id) DO UPDATE SET"
	    " ts = excluded.ts, proc = excluded.proc"
	    " WHERE tunnel_claim.done = 0 AND tunnel_claim.proc <> excluded.proc"
	    " RETURNING id")) == NULL ||
	    db_bind(st, "tit", id, (int64_t)now, tunnel_in_proc) == -1) {
		if (st != NULL)
			db_finalize(st);
		return -1;
	}
	rc = db_step(st);
	db_finalize(st);
	return rc == DB_ROW ? 1 : rc == DB_DONE ? 0 : -1;
}

/* Ends our claim: final (done) or given back for a retry. */
static int
tunnel_in_unclaim(struct db *db, const char *id, int done)
{
	if (done)
		return db_run(db, "UPDATE tunnel_claim SET done = 1 WHERE"
		    " id = ?1 AND proc = ?2", "tt", id, tunnel_in_proc);
	return db_run(db, "DELETE FROM tunnel_claim WHERE id = ?1 AND"
	    " proc = ?2 AND done = 0", "tt", id, tunnel_in_proc);
}

static int
tunnel_in_mark(struct db *db, const char *id, const char *owner, time_t now)
{
	return db_run(db, "INSERT INTO tunnel_seen (id, owner, ts)"
	    " VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING", "tti", id, owner, (int64_t)now);
}

/* Stores the message for one listed recipient. 250, 4xx or 5xx. */
static int
tunnel_in_store(struct ingest *in, struct smtp_txn *txn, const char *rcpt,
    enum tunnel_route route, struct store_tmp *tmp, struct store_msg *meta,
    char *owner, size_t ownerlen, int *woke)
{
	const char *why = NULL;
	long long quota, remind;
	char *relay;
	int64_t id;
	int rc, webmail = route == TUNNEL_ROUTE_WEBMAIL;

	/*
	 * The signed manifest names the mailboxes as they are (the gateway
	 * chose them); only the relay domain holds none.
	 */
	relay = props_get(ingest_props(in), NULL, "portal-relay-domain", NULL);
	if (relay == NULL)
		return 451;
	rc = ingest_owner(rcpt, relay, 0, 1, owner, ownerlen, &why);
	free(relay);
	if (rc != 0) {
		log_info("id=%s tunnel to=<%s> refused: %s", txn->id, rcpt,
		    why);
		return 550;
	}
	quota = props_get_int(ingest_props(in), owner, "quota");
	remind = props_get_int(ingest_props(in), owner, "signup-reminder-interval");
	if (quota == -1 || remind == -1)
		return 451;	/* properties unreadable: the database */
	meta->state = webmail ? STORE_MSG_WEBMAIL : STORE_MSG_PDF_PENDING;
	rc = store_deliver_remind(in->store, tmp, meta, owner,
	    quota > 0 ? quota : 0, webmail,
	    remind >= 0 ? remind * 3600 : STORE_REMIND_DEFAULT, &id);
	if (rc != 0) {
		log_warnx("id=%s tunnel to=<%s> deferred: %s", txn->id, owner,
		    rc == STORE_EQUOTA ? "mailbox over quota" :
		    "store failure");
		return 451;
	}
	log_info("id=%s tunnel to=<%s> owner=%s route=%s stored msg=%lld",
	    txn->id, rcpt, owner, tunnel_route_name(route), (long long)id);
	if (webmail)
		*woke = 1;
	return 250;
}

int
tunnel_in_message(struct ingest *in, struct smtp_txn *txn)
{
	struct store_tmp plain = { NULL, NULL }, msg = { NULL, NULL };
	struct tunnel_parts parts;
	struct tunnel_manifest m;
	struct store_msg meta;
	struct header h;
	unsigned char cek[STORE_CRYPT_KEYLEN];
	char *wr, *dberr = NULL, sha[65], owner[2 * ADDR_MAX + 2];
	const char *why = NULL;
	long long window;
	time_t now = time(NULL);
	struct db *db;
	int rc, woke = 0, claimed = 0, codes[3] = { 0, 0, 0 };

	if (txn->nrcpts != 1)
		return 0;
	wr = tunnel_in_recipient(in);
	rc = tunnel_in_is(wr, txn->rcpts[0].addr);
	free(wr);
	if (!rc)
		return 0;
	memset(&parts, 0, sizeof(parts));
	memset(&m, 0, sizeof(m));
	memset(&h, 0, sizeof(h));
	memset(&meta, 0, sizeof(meta));
	tunnel_in_fail(txn);
	window = props_get_int(ingest_props(in), NULL, "tunnel-max-age");
	if (window < 0 || (db = db_thread(in->dbpath)) == NULL)
		return 1;
	if (db != tunnel_in_ready && db_migrate(db, "portal-tunnel",
	    tunnel_in_steps, 1, &dberr) == -1) {
		log_warnx("id=%s tunnel_seen: %s", txn->id, dberr);
		free(dberr);
		return 1;
	}
	tunnel_in_ready = db;
	if (in->tunnel_cert == NULL) {
		log_warnx("id=%s tunnel mail: tunnel.gateway_cert is not set",
		    txn->id);
		return 1;
	}
	if (store_tmp_create(in->store, &plain) == -1)
		return 1;
	if ((rc = tunnel_in_decrypt(in, txn->spool_path, plain.fp,
	    &why)) != 0) {
		if (rc == 1)
			tunnel_in_refuse(txn, why, "5.7.5");
		goto out;
	}
	if (tunnel_unpack(plain.fp, &parts, &why) == -1) {
		tunnel_in_refuse(txn, why, "5.7.0");
		goto out;
	}
	if (parts.sig == NULL) {
		tunnel_in_refuse(txn, "unsigned", "5.7.7");
		goto out;
	}
	if (!tunnel_in_verify(in, &parts)) {
		tunnel_in_refuse(txn, "manifest not signed by the gateway's "
		    "tunnel certificate", "5.7.7");
		goto out;
	}
	if (tunnel_manifest_parse(parts.manifest, parts.manifest_len, &m,
	    &why) == -1) {
		char r[160];

		snprintf(r, sizeof(r), "manifest does not parse: %s", why);
		tunnel_in_refuse(txn, r, "5.7.0");
		goto out;
	}
	if (m.time < (long long)now - window ||
	    m.time > (long long)now + window) {
		tunnel_in_refuse(txn, "timestamp outside the tunnel-max-age "
		    "window", "5.7.0");
		goto out;
	}
	if ((rc = tunnel_in_claim(db, m.id, now)) != 1) {
		if (rc == 0)
			tunnel_in_refuse(txn, "replayed tunnel id", "5.7.0");
		goto out;
	}
	claimed = 1;
	if (store_tmp_create(in->store, &msg) == -1)
		goto out;
	if ((rc = tunnel_copy_message(plain.fp, parts.boundary, m.size,
	    msg.fp, sha, &why)) != 0) {
		if (rc == -1)
			tunnel_in_refuse(txn, why, "5.7.0");
		goto out;
	}
	if (strcmp(sha, m.sha256) != 0) {
		tunnel_in_refuse(txn, "message digest differs from the "
		    "manifest", "5.7.0");
		goto out;
	}
	if (fflush(msg.fp) == EOF)
		goto out;
	rewind(msg.fp);
	if ((rc = header_read(msg.fp, in->max_header, &h)) != 0) {
		if (rc == -2)
			tunnel_in_refuse(txn, "malformed message header",
			    "5.6.0");
		goto out;
	}
	memset(&meta, 0, sizeof(meta));
	meta.folder = STORE_FOLDER_INBOX;
	meta.mail_from = txn->mail_from;
	ingest_meta(&h, &meta);
	/*
	 * PDF-OTP copies stay plain until rendered (ingest has no key); a
	 * sealed copy's From and Subject are sealed with its CEK.
	 */
	if (in->crypt != NULL && m.route == TUNNEL_ROUTE_WEBMAIL) {
		rc = store_crypt_seal(in->crypt, in->store, &msg, cek) == -1 ||
		    ingest_meta_seal(&meta, cek) == -1;
		OPENSSL_cleanse(cek, sizeof(cek));
		if (rc)
			goto out;
		meta.hdr_from = NULL;
		meta.subject = NULL;
	}

	/* Recipients stored by an earlier try of this id are skipped. */
	for (size_t i = 0; i < m.nrcpts; i++) {
		int c;

		if ((rc = tunnel_in_seen(db, m.id, m.rcpts[i], now)) == -1) {
			codes[1]++;
			continue;
		}
		if (rc == 1) {
			codes[0]++;
			continue;
		}
		c = tunnel_in_store(in, txn, m.rcpts[i], m.route, &msg, &meta,
		    owner, sizeof(owner), &woke);
		if (c == 250 && tunnel_in_mark(db, m.id, m.rcpts[i], now) == -1)
			log_warnx("id=%s tunnel id %s: cannot record delivery "
			    "to %s", txn->id, m.id, m.rcpts[i]);
		codes[c == 250 ? 0 : c / 100 == 4 ? 1 : 2]++;
	}
	if (codes[1] == 0 && codes[0] == 0) {
		tunnel_in_refuse(txn, "no listed recipient has a mailbox here",
		    "5.1.1");
		goto out;
	}
	if (codes[1] > 0) {
		log_warnx("id=%s tunnel id %s: %d recipient(s) deferred",
		    txn->id, m.id, codes[1]);
		goto out;
	}
	if (tunnel_in_unclaim(db, m.id, 1) == -1)
		goto out;
	claimed = 0;
	(void)db_run(db, "DELETE FROM tunnel_seen WHERE ts < ?1", "i",
	    (int64_t)(now - 2 * window));
	(void)db_run(db, "DELETE FROM tunnel_claim WHERE ts < ?1", "i",
	    (int64_t)(now - 2 * window));
	txn->rcpts[0].code = 250;
	snprintf(txn->rcpts[0].reply, sizeof(txn->rcpts[0].reply),
	    "2.0.0 Ok: tunnel %s stored for %zu recipient(s), %d refused",
	    m.id, m.nrcpts - codes[2], codes[2]);
	log_info("id=%s tunnel id=%s route=%s from=<%s> recipients=%zu "
	    "refused=%d", txn->id, m.id, tunnel_route_name(m.route),
	    txn->mail_from, m.nrcpts, codes[2]);
	if (woke && in->outbox != NULL)
		outbox_wake(in->outbox);
out:
	free(meta.sealed_meta);
	if (claimed && tunnel_in_unclaim(db, m.id, 0) == -1)
		log_warnx("id=%s tunnel id %s: cannot release its claim; a "
		    "retry is refused as a replay", txn->id, m.id);
	header_free(&h);
	tunnel_manifest_free(&m);
	tunnel_parts_free(&parts);
	if (msg.path != NULL)
		store_tmp_discard(&msg);
	if (plain.path != NULL)
		store_tmp_discard(&plain);
	return 1;
}
