/*
 * internal-gw message pipeline, run on the SMTP process's worker threads
 * (blocking work is allowed here, never on the event loop).
 *
 * Untrusted input: the message from the LAN MTA. Its header may carry
 * forged trigger fields (removed before anything else) and arbitrary or
 * malformed MIME. This process holds no private key: signatures come from
 * keyd over a socketpair.
 *
 * A message leaves as up to one variant per kind (plain, signed, S/MIME,
 * portal copy for Webmail, portal copy for PDF); each recipient's SMTP
 * reply is that of the variant that carried it, so the engine answers 250
 * only when every variant was accepted by its next hop.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <gmime/gmime.h>
#include <openssl/x509.h>
#include <sqlite3.h>

#include "addr.h"
#include "certstore.h"
#include "db.h"
#include "gateway.h"
#include "header.h"
#include "keyd.h"
#include "log.h"
#include "policy.h"
#include "props.h"
#include "relay.h"
#include "smime.h"
#include "smtp_server.h"
#include "xmalloc.h"

#define GW_DEFAULT_WEBMAIL	"X-Keep-CipherMail-To-Webmail"
#define GW_DEFAULT_PDF		"X-Keep-CipherMail-To-PDF-OTP"

enum gw_kind {
	GW_PLAIN, GW_SIGNED, GW_SMIME, GW_SMIME_SIGNED, GW_PORTAL_WEBMAIL,
	GW_PORTAL_PDF, GW_NKINDS
};

static const char *const gw_kind_names[GW_NKINDS] = {
	"plain", "signed", "smime", "smime-signed", "portal-webmail",
	"portal-pdf",
};

struct gw_variant {
	size_t	*idx;		/* indexes into txn->rcpts */
	char	**rcpts;	/* envelope recipients as relayed */
	size_t	 n;
	char	 path[PATH_MAX];
	int	 owned;		/* path is ours to unlink */
	char	 note[128];	/* added to each recipient's rule */
};

struct gw_msg {
	struct gateway		*gw;
	struct smtp_txn		*txn;
	struct props		*props;
	char			 base[PATH_MAX];	/* triggers stripped */
	struct header		 hdr;
	char			*subject;		/* decoded, UTF-8 */
	struct policy_decision	*dec;
	struct gw_variant	 v[GW_NKINDS];
	int			 tmpseq;
};

static __thread sqlite3		*gw_db;
static __thread struct props	*gw_props;

sqlite3 *
gateway_db(struct gateway *gw)
{
	char *err = NULL;

	if (gw_db == NULL) {
		if ((gw_db = db_open(gw->dbpath, &err)) == NULL) {
			log_warnx("database %s: %s", gw->dbpath, err);
			free(err);
			return NULL;
		}
		if (certstore_init(gw_db, &err) == -1) {
			log_warnx("database %s: %s", gw->dbpath, err);
			free(err);
			db_close(gw_db);
			gw_db = NULL;
			return NULL;
		}
		gw_props = props_wrap(gw_db);
	}
	return gw_db;
}

struct props *
gateway_props(struct gateway *gw)
{
	return gateway_db(gw) ? gw_props : NULL;
}

size_t
gateway_trigger_names(struct props *p, char names[][256], size_t max)
{
	static const char *const specs[] = {
		"trigger-webmail-header", "trigger-otp-encryption-header",
	};
	char value[512];
	size_t n = 0;

	snprintf(names[n++], 256, "%s", GW_DEFAULT_WEBMAIL);
	snprintf(names[n++], 256, "%s", GW_DEFAULT_PDF);
	for (size_t i = 0; i < 2 && n < max; i++) {
		char *spec = props_get(p, NULL, specs[i], NULL);

		if (spec != NULL && header_trigger_parse(spec, names[n], 256,
		    value, sizeof(value)) == 0)
			n++;
		free(spec);
	}
	return n;
}

static void
gw_set_all(struct smtp_txn *txn, int code, const char *fmt, const char *arg)
{
	for (size_t i = 0; i < txn->nrcpts; i++) {
		txn->rcpts[i].code = code;
		snprintf(txn->rcpts[i].reply, sizeof(txn->rcpts[i].reply), fmt,
		    arg);
	}
}

static FILE *
gw_tmpfile(struct gw_msg *m, const char *tag, char *path, size_t len)
{
	int fd;
	FILE *f;

	snprintf(path, len, "%s/%s.%s.%d", m->gw->spool_dir, m->txn->id, tag,
	    m->tmpseq++);
	if ((fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600)) == -1) {
		log_warn("id=%s create %s", m->txn->id, path);
		return NULL;
	}
	if ((f = fdopen(fd, "w+")) == NULL) {
		log_warn("id=%s fdopen", m->txn->id);
		close(fd);
		unlink(path);
	}
	return f;
}

static int
gw_close(FILE *f, const char *path, const char *id)
{
	if (fflush(f) == EOF || ferror(f)) {
		log_warn("id=%s write %s", id, path);
		fclose(f);
		return -1;
	}
	fclose(f);
	return 0;
}

/*
 * Rewrites in -> a new temp file without the trigger fields (and with
 * extra at the head). Returns -2 for a malformed header, -1 on I/O error.
 */
static int
gw_rewrite(struct gw_msg *m, const char *in, const char *tag,
    const char *const *names, size_t nnames, const char *extra, char *out,
    size_t outlen)
{
	FILE *fi, *fo;
	int r, removed;

	if ((fi = fopen(in, "re")) == NULL) {
		log_warn("id=%s open %s", m->txn->id, in);
		return -1;
	}
	if ((fo = gw_tmpfile(m, tag, out, outlen)) == NULL) {
		fclose(fi);
		return -1;
	}
	r = header_rewrite(fi, fo, m->gw->max_header, names, nnames, extra,
	    &removed);
	fclose(fi);
	if (gw_close(fo, out, m->txn->id) == -1 && r == 0)
		r = -1;
	if (r != 0)
		unlink(out);
	else if (removed > 0 && extra == NULL && strcmp(tag, "base") == 0)
		log_info("id=%s removed %d forged trigger header(s)", m->txn->id,
		    removed);
	return r;
}

/* Step 1: strip forged triggers into m->base and read its header. */
static int
gw_strip(struct gw_msg *m)
{
	char names[8][256];
	const char *np[8];
	size_t n = gateway_trigger_names(m->props, names, 8);
	FILE *f;
	int r;

	for (size_t i = 0; i < n; i++)
		np[i] = names[i];
	if ((r = gw_rewrite(m, m->txn->spool_path, "base", np, n, NULL,
	    m->base, sizeof(m->base))) != 0)
		return r;
	if ((f = fopen(m->base, "re")) == NULL)
		return -1;
	r = header_read(f, m->gw->max_header, &m->hdr);
	fclose(f);
	if (r == 0) {
		const struct header_field *s = header_get(&m->hdr, "Subject");

		m->subject = xstrdup("");
		if (s != NULL) {
			char *d = g_mime_utils_header_decode_text(NULL, s->value);

			if (d != NULL) {
				free(m->subject);
				m->subject = xstrdup(d);
				g_free(d);
			}
		}
	}
	return r;
}

/* Removes the subject trigger tag from the base copy when asked to. */
static int
gw_subject(struct gw_msg *m)
{
	static const char *const subj[] = { "Subject" };
	char *ns, *enc, *extra, path[PATH_MAX];
	int r;

	if ((ns = policy_subject_strip(m->props, m->txn->mail_from,
	    m->subject)) == NULL)
		return 0;
	enc = g_mime_utils_header_encode_text(NULL, ns, NULL);
	xasprintf(&extra, "Subject: %s\r\n", enc ? enc : "");
	g_free(enc);
	free(ns);
	r = gw_rewrite(m, m->base, "subj", subj, 1, extra, path, sizeof(path));
	free(extra);
	if (r == 0) {
		unlink(m->base);
		snprintf(m->base, sizeof(m->base), "%s", path);
	}
	return r;
}

static int
gw_has_cert(void *arg, const char *rcpt)
{
	struct gw_msg *m = arg;
	sqlite3 *db = gateway_db(m->gw);

	if (db == NULL)
		return -1;
	if (m->gw->trust == NULL)
		return 0;
	return certstore_has_valid(db, m->gw->trust, rcpt);
}

static enum gw_kind
gw_kind_of(const struct policy_decision *d)
{
	switch (d->action) {
	case POLICY_SIGN:
		return GW_SIGNED;
	case POLICY_ENCRYPT:
		return d->sign ? GW_SMIME_SIGNED : GW_SMIME;
	case POLICY_PORTAL_WEBMAIL:
		return GW_PORTAL_WEBMAIL;
	case POLICY_PORTAL_PDF:
		return GW_PORTAL_PDF;
	default:
		return GW_PLAIN;
	}
}

/* Signs in -> out as signer, for purpose, through keyd. */
static int
gw_sign(struct gw_msg *m, const char *signer, enum keyd_purpose purpose,
    const char *in, char *out, size_t outlen)
{
	char err[256];
	FILE *fi, *fo;
	int r;

	if ((fi = fopen(in, "re")) == NULL)
		return -1;
	if ((fo = gw_tmpfile(m, "sig", out, outlen)) == NULL) {
		fclose(fi);
		return -1;
	}
	r = smime_sign(m->gw->keyd, signer, purpose, m->txn->id, fi, fo,
	    m->gw->spool_dir, err, sizeof(err));
	fclose(fi);
	if (gw_close(fo, out, m->txn->id) == -1)
		r = -1;
	if (r != 0) {
		log_warnx("id=%s signing as %s failed: %s", m->txn->id, signer,
		    err);
		unlink(out);
		return -1;
	}
	return 0;
}

static int
gw_encrypt(struct gw_msg *m, struct gw_variant *v, const char *in, char *out,
    size_t outlen)
{
	X509 **all = NULL, **certs;
	size_t nall = 0, n;
	char err[256];
	FILE *fi, *fo;
	int r = -1;
	sqlite3 *db = gateway_db(m->gw);

	if (db == NULL)
		return -1;
	for (size_t i = 0; i < v->n; i++) {
		if (certstore_find_recipient(db, m->gw->trust, v->rcpts[i],
		    &certs, &n) <= 0) {
			log_warnx("id=%s no usable certificate for %s at "
			    "encryption time", m->txn->id, v->rcpts[i]);
			goto done;
		}
		all = xreallocarray(all, nall + n, sizeof(*all));
		memcpy(all + nall, certs, n * sizeof(*certs));
		nall += n;
		free(certs);
	}
	if ((fi = fopen(in, "re")) == NULL)
		goto done;
	if ((fo = gw_tmpfile(m, "enc", out, outlen)) == NULL) {
		fclose(fi);
		goto done;
	}
	r = smime_encrypt(all, nall, fi, fo, m->gw->spool_dir, err,
	    sizeof(err));
	fclose(fi);
	if (gw_close(fo, out, m->txn->id) == -1)
		r = -1;
	if (r != 0) {
		log_warnx("id=%s encryption failed: %s", m->txn->id, err);
		unlink(out);
	}
done:
	for (size_t i = 0; i < nall; i++)
		X509_free(all[i]);
	free(all);
	return r;
}

/* The portal copy: trigger header added, recipients rewritten, and signed
 * with the tunnel key when portal-tunnel-sign is on. */
static int
gw_portal(struct gw_msg *m, struct gw_variant *v, int pdf)
{
	char names[8][256], tname[256], tvalue[512], *spec, *extra, *relay_dom;
	char path[PATH_MAX], signedp[PATH_MAX];
	const char *np[8];
	size_t nn = gateway_trigger_names(m->props, names, 8);
	int r;

	for (size_t i = 0; i < nn; i++)
		np[i] = names[i];
	spec = props_get(m->props, NULL, pdf ? "trigger-otp-encryption-header" :
	    "trigger-webmail-header", NULL);
	if (spec == NULL || header_trigger_parse(spec, tname, sizeof(tname),
	    tvalue, sizeof(tvalue)) == -1) {
		snprintf(tname, sizeof(tname), "%s", pdf ? GW_DEFAULT_PDF :
		    GW_DEFAULT_WEBMAIL);
		snprintf(tvalue, sizeof(tvalue), "True");
	}
	free(spec);
	xasprintf(&extra, "%s: %s\r\n", tname, tvalue);
	r = gw_rewrite(m, m->base, "portal", np, nn, extra, path, sizeof(path));
	free(extra);
	if (r != 0)
		return -1;

	relay_dom = props_get(m->props, NULL, "portal-relay-domain", NULL);
	for (size_t i = 0; i < v->n; i++) {
		char out[ADDR_MAX * 2];
		const char *why;

		if (addr_rewrite(v->rcpts[i], relay_dom ? relay_dom :
		    "relay-to-webmail.private", m->txn->smtputf8, out,
		    sizeof(out), &why) == -1) {
			/* The engine parsed it; failing here is a bug. */
			fatalx("id=%s rewrite %s: %s", m->txn->id, v->rcpts[i],
			    why);
		}
		free(v->rcpts[i]);
		v->rcpts[i] = xstrdup(out);
	}
	free(relay_dom);

	if (m->gw->tunnel_signer != NULL &&
	    props_get_bool(m->props, NULL, "portal-tunnel-sign")) {
		if (gw_sign(m, m->gw->tunnel_signer, KEYD_PURPOSE_TUNNEL, path,
		    signedp, sizeof(signedp)) == -1) {
			unlink(path);
			return -1;
		}
		unlink(path);
		snprintf(path, sizeof(path), "%s", signedp);
	}
	snprintf(v->path, sizeof(v->path), "%s", path);
	v->owned = 1;
	return 0;
}

static int
gw_build(struct gw_msg *m, enum gw_kind k)
{
	struct gw_variant *v = &m->v[k];
	const char *signer = m->txn->mail_from;
	char tmp[PATH_MAX];
	int r;

	switch (k) {
	case GW_PLAIN:
		snprintf(v->path, sizeof(v->path), "%s", m->base);
		return 0;
	case GW_SIGNED:
		if (*signer == '\0' || !keyd_can_sign(m->gw->keyd, signer)) {
			/* Signing is never mandatory: say so and go plain. */
			snprintf(v->note, sizeof(v->note),
			    "; no signing key for <%s>, sent unsigned", signer);
			snprintf(v->path, sizeof(v->path), "%s", m->base);
			return 0;
		}
		v->owned = 1;
		return gw_sign(m, signer, KEYD_PURPOSE_MAIL, m->base, v->path,
		    sizeof(v->path));
	case GW_SMIME:
		v->owned = 1;
		return gw_encrypt(m, v, m->base, v->path, sizeof(v->path));
	case GW_SMIME_SIGNED:
		if (*signer == '\0' || !keyd_can_sign(m->gw->keyd, signer)) {
			snprintf(v->note, sizeof(v->note),
			    "; no signing key for <%s>, encrypted unsigned",
			    signer);
			v->owned = 1;
			return gw_encrypt(m, v, m->base, v->path,
			    sizeof(v->path));
		}
		if (gw_sign(m, signer, KEYD_PURPOSE_MAIL, m->base, tmp,
		    sizeof(tmp)) == -1)
			return -1;
		v->owned = 1;
		r = gw_encrypt(m, v, tmp, v->path, sizeof(v->path));
		unlink(tmp);
		return r;
	case GW_PORTAL_WEBMAIL:
	case GW_PORTAL_PDF:
		return gw_portal(m, v, k == GW_PORTAL_PDF);
	default:
		fatalx("gw_build: kind %d", k);
	}
}

static void
gw_relay(struct gw_msg *m, enum gw_kind k, const char *msgkey)
{
	struct gw_variant *v = &m->v[k];
	struct relay_variant rv;
	int *codes = xcalloc(v->n, sizeof(*codes));
	char (*replies)[512] = xcalloc(v->n, sizeof(*replies));

	memset(&rv, 0, sizeof(rv));
	rv.kind = gw_kind_names[k];
	rv.path = v->path;
	rv.from = m->txn->mail_from;
	rv.rcpts = (const char *const *)v->rcpts;
	rv.nrcpts = v->n;
	rv.smtputf8 = m->txn->smtputf8;
	rv.body_8bit = m->txn->body_8bit;
	if (relay_send(m->gw->relay, msgkey, &rv, codes, replies) == -1) {
		for (size_t i = 0; i < v->n; i++)
			if (codes[i] == 0 || codes[i] / 100 == 2) {
				codes[i] = 451;
				snprintf(replies[i], sizeof(replies[i]),
				    "relay failed");
			}
	}
	for (size_t i = 0; i < v->n; i++) {
		struct smtp_rcpt *r = &m->txn->rcpts[v->idx[i]];

		r->code = codes[i] ? codes[i] : 451;
		if (r->code / 100 == 2)
			snprintf(r->reply, sizeof(r->reply),
			    "2.0.0 Ok: relayed as %s (id=%s)", rv.kind,
			    m->txn->id);
		else
			snprintf(r->reply, sizeof(r->reply),
			    "%d.0.0 next hop for %s: %s", r->code / 100,
			    v->rcpts[i], replies[i]);
	}
	free(codes);
	free(replies);
}

static void
gw_cleanup(struct gw_msg *m)
{
	for (int k = 0; k < GW_NKINDS; k++) {
		struct gw_variant *v = &m->v[k];

		if (v->owned && v->path[0] != '\0')
			unlink(v->path);
		for (size_t i = 0; i < v->n; i++)
			free(v->rcpts[i]);
		free(v->rcpts);
		free(v->idx);
	}
	if (m->base[0] != '\0')
		unlink(m->base);
	header_free(&m->hdr);
	free(m->subject);
	free(m->dec);
}

void
gateway_message(void *arg, struct smtp_txn *txn)
{
	struct gw_msg m;
	struct policy_msg pm;
	char msgkey[65];
	int r;

	memset(&m, 0, sizeof(m));
	m.gw = arg;
	m.txn = txn;
	if ((m.props = gateway_props(m.gw)) == NULL) {
		gw_set_all(txn, 451, "4.3.0 %s", "database unavailable");
		return;
	}
	if ((r = gw_strip(&m)) != 0 || (r = gw_subject(&m)) != 0) {
		if (r == -2)
			gw_set_all(txn, 554, "5.6.0 %s",
			    "malformed or oversized message header");
		else
			gw_set_all(txn, 451, "4.3.0 %s",
			    "local error while processing");
		gw_cleanup(&m);
		return;
	}

	/* Decide per recipient, grouping them by variant. */
	memset(&pm, 0, sizeof(pm));
	pm.from = txn->mail_from;
	pm.subject = m.subject;
	pm.hdr = &m.hdr;
	m.dec = xcalloc(txn->nrcpts, sizeof(*m.dec));
	for (size_t i = 0; i < txn->nrcpts; i++) {
		struct policy_decision *d = &m.dec[i];
		struct gw_variant *v;

		if (policy_decide(m.props, &pm, txn->rcpts[i].addr, gw_has_cert,
		    &m, d) == -1) {
			txn->rcpts[i].code = 451;
			snprintf(txn->rcpts[i].reply, sizeof(txn->rcpts[i].reply),
			    "4.3.0 policy lookup failed");
			continue;
		}
		if (d->action == POLICY_REFUSE) {
			txn->rcpts[i].code = 550;
			snprintf(txn->rcpts[i].reply, sizeof(txn->rcpts[i].reply),
			    "5.7.1 <%s>: %s", txn->rcpts[i].addr, d->reason);
			continue;
		}
		v = &m.v[gw_kind_of(d)];
		v->idx = xreallocarray(v->idx, v->n + 1, sizeof(*v->idx));
		v->rcpts = xreallocarray(v->rcpts, v->n + 1, sizeof(*v->rcpts));
		v->idx[v->n] = i;
		v->rcpts[v->n++] = xstrdup(txn->rcpts[i].addr);
	}

	relay_msgkey(txn->mail_from, m.base, msgkey);
	for (int k = 0; k < GW_NKINDS; k++) {
		struct gw_variant *v = &m.v[k];

		if (v->n == 0)
			continue;
		if (gw_build(&m, k) == -1) {
			for (size_t i = 0; i < v->n; i++) {
				struct smtp_rcpt *rc = &txn->rcpts[v->idx[i]];

				rc->code = 451;
				snprintf(rc->reply, sizeof(rc->reply),
				    "4.3.0 could not build the %s copy",
				    gw_kind_names[k]);
			}
			continue;
		}
		gw_relay(&m, k, msgkey);
	}

	/* One log line per recipient decision. */
	for (size_t i = 0; i < txn->nrcpts; i++) {
		struct policy_decision *d = &m.dec[i];
		const char *note = "", *via = txn->rcpts[i].addr;
		char hop[300] = "none";

		if (d->action != POLICY_REFUSE) {
			struct gw_variant *v = &m.v[gw_kind_of(d)];

			note = v->note;
			for (size_t j = 0; j < v->n; j++)
				if (v->idx[j] == i)
					via = v->rcpts[j];
			relay_nexthop(m.gw->relay, via, hop, sizeof(hop));
		}
		log_info("id=%s from=<%s> to=<%s> decision=%s rule=\"%s%s\" "
		    "nexthop=%s status=%d %s", txn->id, txn->mail_from,
		    txn->rcpts[i].addr, policy_action_name(d->action), d->rule,
		    note, hop, txn->rcpts[i].code, txn->rcpts[i].reply);
	}
	gw_cleanup(&m);
}
