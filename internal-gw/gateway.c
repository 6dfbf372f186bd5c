/*
 * internal-gw message pipeline, run on the SMTP process's worker threads
 * (blocking work is allowed here, never on the event loop).
 *
 * SECURITY: the message from the LAN MTA is untrusted input. Its header may carry
 * forged trigger fields (removed before anything else) and arbitrary or
 * malformed MIME. This process holds no private key: signatures come from
 * keyd over a socketpair.
 *
 * A message leaves as up to one variant per kind (plain, signed, S/MIME,
 * portal copy for Webmail, portal copy for PDF); each recipient's SMTP
 * reply is that of the variant that carried it, so the engine answers 250
 * only when every variant was accepted by its next hop.
 */
#include <sys/mman.h>
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <malloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <gmime/gmime.h>
#include <openssl/x509.h>

#include "addr.h"
#include "certstore.h"
#include "db.h"
#include "gateway.h"
#include "header.h"
#include "inbound.h"
#include "keyd.h"
#include "keyd_pgp.h"
#include "log.h"
#include "pdfmode.h"
#include "pgp.h"
#include "pgp_in.h"
#include "policy.h"
#include "props.h"
#include "relay.h"
#include "smime.h"
#include "smtp_server.h"
#include "splitmode.h"
#include "tunnel_out.h"
#include "xmalloc.h"

enum gw_kind {
	GW_INTERNAL, GW_PLAIN, GW_SIGNED, GW_SMIME, GW_SMIME_SIGNED,
	GW_PORTAL_WEBMAIL, GW_PORTAL_PDF, GW_PDF, GW_PGP, GW_PGP_SIGNED,
	GW_NKINDS
};

static const char *const gw_kind_names[GW_NKINDS] = {
	"internal", "plain", "signed", "smime", "smime-signed",
	"portal-webmail", "portal-pdf", "pdf", "pgp", "pgp-signed",
};

/* A signature over an input up to this size is kept in memory. */
#define GW_MEM_TMP	(1024 * 1024)
#define GW_MEM_BUF	(64 * 1024)	/* stdio buffer of such a memfd */

struct gw_variant {
	size_t	*idx;		/* indexes into txn->rcpts */
	char	**rcpts;	/* envelope recipients as relayed */
	size_t	 n;
	char	 path[PATH_MAX];
	int	 owned;		/* path is ours to unlink */
	int	 memfd;		/* path is this memfd + 1; 0: a file */
	char	*head;		/* header lines relayed ahead of path */
	char	 note[128];	/* added to each recipient's rule */
	struct tunnel_out tunnel;	/* sender set: relay as tunnel mail */
};

struct gw_msg {
	struct gateway		*gw;
	struct smtp_txn		*txn;
	struct props		*props;
	struct splitmode	 sm;
	char			 base[PATH_MAX];	/* triggers stripped */
	int			 base_owned;	/* base is a copy, not the spool */
	char			 untagged[PATH_MAX];	/* and subject tag */
	struct header		 hdr;
	const char		*signer;	/* From: mailbox, or NULL */
	int			 signer_known;	/* gw_signer ran */
	char			 signer_buf[ADDR_MAX];
	char			 nosign[160];	/* why signer is NULL */
	char			*subject;		/* decoded, UTF-8 */
	struct policy_decision	*dec;
	struct gw_variant	 v[GW_NKINDS];
	int			 tmpseq;
	struct relay_hold	 hold;		/* ledger entries held back */
	int			 known;		/* ledger knew msgkey (-1: ?) */
	int			 lastk;		/* kind relayed last */
	const char		*msgkey;	/* the ledger key */
};

/*
 * The handle of this thread's db_thread() connection we set up, and its
 * property reader; the key closes the reader when the thread exits (the
 * connection has its own, in db.c).
 */
static __thread struct db		*gw_db;
static __thread struct props	*gw_props;
static pthread_key_t		 gw_props_key;
static pthread_once_t		 gw_props_once = PTHREAD_ONCE_INIT;

static void
gw_props_free(void *p)
{
	props_close(p);
}

static void
gw_props_key_init(void)
{
	if (pthread_key_create(&gw_props_key, gw_props_free) != 0)
		fatalx("gateway: pthread_key_create");
}

struct db *
gateway_db(struct gateway *gw)
{
	struct db *db;
	char *err = NULL;

	if ((db = db_thread(gw->dbpath)) == NULL)
		return NULL;
	if (db != gw_db) {
		if (certstore_init(db, &err) == -1 ||
		    pgp_keys_init(db, &err) == -1) {
			log_warnx("database %s: %s", db_redact(gw->dbpath),
			    err);
			free(err);
			return NULL;
		}
		pthread_once(&gw_props_once, gw_props_key_init);
		props_close(gw_props);
		gw_props = props_wrap(db);
		if (pthread_setspecific(gw_props_key, gw_props) != 0)
			fatalx("gateway: pthread_setspecific");
		gw_db = db;
	}
	return gw_db;
}

/*
 * The thread's property reader, its cache checked against the database
 * (each call starts a unit of work: an RCPT or a message).
 */
/*
 * Fixed allocator thresholds. A message passes through buffers of 64 to
 * 128 KiB that live only while it is worked on. With glibc's defaults the
 * thresholds adapt to those sizes, and freeing them often leaves the top
 * of a thread's heap above the trim threshold: the heap is shrunk
 * (madvise, and a TLB flush on every core) and grown again for the next
 * message, about a quarter of the signing path's CPU in the benchmark.
 * Blocks over 1 MiB still come from mmap and go back at once, and at most
 * 4 MiB of free heap stays mapped per arena, so memory stays flat.
 */
void
gateway_malloc_init(void)
{
	if (mallopt(M_MMAP_THRESHOLD, 1024 * 1024) != 1 ||
	    mallopt(M_TRIM_THRESHOLD, 4 * 1024 * 1024) != 1)
		log_warnx("mallopt: the allocator keeps its defaults");
}

struct props *
gateway_props(struct gateway *gw)
{
	if (gateway_db(gw) == NULL || props_cache_begin(gw_props) == -1)
		return NULL;
	return gw_props;
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

/* 1 when the header holds one of the n trigger field names. */
static int
gw_has_trigger(const struct header *h, const char *const *np, size_t n)
{
	for (size_t i = 0; i < h->nfields; i++)
		for (size_t j = 0; j < n; j++)
			if (strcasecmp(h->fields[i].name, np[j]) == 0)
				return 1;
	return 0;
}

/*
 * Step 1: strip forged triggers into m->base and read its header. A
 * message without any (nearly all) is its own base: the spool file is
 * used as it is, no copy.
 */
static int
gw_strip(struct gw_msg *m)
{
	const char *np[SPLITMODE_MAX_NAMES];
	size_t n = splitmode_names(&m->sm, np, SPLITMODE_MAX_NAMES);
	FILE *f;
	int r;

	if ((f = fopen(m->txn->spool_path, "re")) == NULL) {
		log_warn("id=%s open %s", m->txn->id, m->txn->spool_path);
		return -1;
	}
	r = header_read(f, m->gw->max_header, &m->hdr);
	fclose(f);
	if (r == 0 && !gw_has_trigger(&m->hdr, np, n)) {
		snprintf(m->base, sizeof(m->base), "%s", m->txn->spool_path);
		goto subject;
	}
	header_free(&m->hdr);
	if (r != 0)
		return r;
	if ((r = gw_rewrite(m, m->txn->spool_path, "base", np, n, NULL,
	    m->base, sizeof(m->base))) != 0)
		return r;
	m->base_owned = 1;
	if ((f = fopen(m->base, "re")) == NULL)
		return -1;
	r = header_read(f, m->gw->max_header, &m->hdr);
	fclose(f);
 subject:
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

/*
 * The copy for external recipients, m->untagged: the base without the
 * subject trigger tag when the sender's properties ask for that. Internal
 * recipients get the base itself (their mail passes untouched).
 */
static int
gw_subject(struct gw_msg *m)
{
	static const char *const subj[] = { "Subject" };
	char *ns, *enc, *extra, path[PATH_MAX];
	int r;

	snprintf(m->untagged, sizeof(m->untagged), "%s", m->base);
	if ((ns = policy_subject_strip(m->props, m->txn->mail_from,
	    m->subject)) == NULL)
		return 0;
	enc = g_mime_utils_header_encode_text(NULL, ns, NULL);
	xasprintf(&extra, "Subject: %s\r\n", enc ? enc : "");
	g_free(enc);
	free(ns);
	r = gw_rewrite(m, m->base, "subj", subj, 1, extra, path, sizeof(path));
	free(extra);
	if (r == 0)
		snprintf(m->untagged, sizeof(m->untagged), "%s", path);
	return r;
}

/* policy_decide()'s certificate lookup; arg is the struct gateway. */
static int
gw_has_cert(void *arg, const char *rcpt)
{
	struct gateway *gw = arg;
	struct db *db = gateway_db(gw);

	if (db == NULL)
		return -1;
	if (gw->trust == NULL)
		return 0;
	return certstore_has_valid(db, gw->trust, rcpt);
}

/* policy_decide()'s OpenPGP key lookup; arg is the struct gateway. */
static int
gw_has_pgp(void *arg, const char *rcpt)
{
	struct db *db = gateway_db(arg);

	return db == NULL ? -1 : pgp_has_key(db, rcpt);
}

static enum gw_kind
gw_kind_of(const struct policy_decision *d)
{
	switch (d->action) {
	case POLICY_PASS:
		return GW_INTERNAL;
	case POLICY_SIGN:
		return GW_SIGNED;
	case POLICY_ENCRYPT:
		return d->sign ? GW_SMIME_SIGNED : GW_SMIME;
	case POLICY_PORTAL_WEBMAIL:
		return GW_PORTAL_WEBMAIL;
	case POLICY_PORTAL_PDF:
		return GW_PORTAL_PDF;
	case POLICY_PDF:
		return GW_PDF;
	case POLICY_PGP:
		return d->sign ? GW_PGP_SIGNED : GW_PGP;
	default:
		return GW_PLAIN;
	}
}

/*
 * The output of a signature over the input file in: for an input up to
 * GW_MEM_TMP bytes a memfd, named for the relay as /proc/self/fd/N with N
 * in *memfd (closed when done, not unlinked), so an ordinary message costs
 * no spool inode; else a spool file, *memfd -1. The memfd's FILE gets a
 * buffer of GW_MEM_BUF bytes in *vbuf (the caller frees it after closing
 * the FILE), so a small message is written in one system call, not one
 * per page.
 */
static FILE *
gw_memfile(struct gw_msg *m, FILE *in, const char *tag, char *path,
    size_t len, int *memfd, char **vbuf)
{
	static int proc_known = -1;	/* whether /proc/self/fd names work */
	struct stat st;
	FILE *f;
	int fd, wfd, proc_ok = __atomic_load_n(&proc_known, __ATOMIC_RELAXED);

	*memfd = -1;
	*vbuf = NULL;
	if (proc_ok == 0 || fstat(fileno(in), &st) == -1 ||
	    st.st_size > GW_MEM_TMP ||
	    (fd = memfd_create("postern-sig", MFD_CLOEXEC)) == -1)
		return gw_tmpfile(m, tag, path, len);
	snprintf(path, len, "/proc/self/fd/%d", fd);
	if (proc_ok == -1) {
		proc_ok = access(path, R_OK) == 0;
		__atomic_store_n(&proc_known, proc_ok, __ATOMIC_RELAXED);
	}
	if (proc_ok == 0) {
		/* No /proc: a spool file after all. */
		close(fd);
		return gw_tmpfile(m, tag, path, len);
	}
	if ((wfd = dup(fd)) == -1 || (f = fdopen(wfd, "w+")) == NULL) {
		log_warn("id=%s memfd", m->txn->id);
		if (wfd != -1)
			close(wfd);
		close(fd);
		return NULL;
	}
	*vbuf = xmalloc(GW_MEM_BUF);
	if (setvbuf(f, *vbuf, _IOFBF, GW_MEM_BUF) != 0)
		xfree(vbuf);
	*memfd = fd;
	return f;
}

/* Drops a temporary made by gw_memfile or gw_tmpfile. */
static void
gw_drop(const char *path, int memfd)
{
	if (memfd != -1)
		close(memfd);
	else
		unlink(path);
}

/* Signs in -> out as signer, for purpose, through keyd (see gw_memfile). */
static int
gw_sign(struct gw_msg *m, const char *signer, enum keyd_purpose purpose,
    const char *in, char *out, size_t outlen, int *memfd)
{
	char err[256], *vbuf;
	FILE *fi, *fo;
	int r;

	*memfd = -1;
	if ((fi = fopen(in, "re")) == NULL)
		return -1;
	if ((fo = gw_memfile(m, fi, "sig", out, outlen, memfd, &vbuf)) ==
	    NULL) {
		fclose(fi);
		return -1;
	}
	r = smime_sign(m->gw->keyd, signer, purpose, m->txn->id, fi, fo,
	    m->gw->spool_dir, err, sizeof(err));
	fclose(fi);
	if (gw_close(fo, out, m->txn->id) == -1)
		r = -1;
	free(vbuf);
	if (r != 0) {
		log_warnx("id=%s signing as %s failed: %s", m->txn->id, signer,
		    err);
		gw_drop(out, *memfd);
		*memfd = -1;
		out[0] = '\0';
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
	struct db *db = gateway_db(m->gw);

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

/*
 * Add-on mode: the portal copy as one tunnel message (tunnel_out.h) from
 * webmail-sender to webmail-recipient; the recipients stay as they are,
 * in the signed manifest.
 */
static int
gw_portal_tunnel(struct gw_msg *m, struct gw_variant *v, int pdf)
{
	char err[256], id[TUNNEL_ID_LEN + 1], *vbuf;
	struct db *db = gateway_db(m->gw);
	X509 *cert;
	FILE *fi, *fo;
	int r, tfd;

	if (db == NULL)
		return -1;
	if ((cert = tunnel_out_cert(db, v->tunnel.recipient, err,
	    sizeof(err))) == NULL) {
		log_warnx("id=%s tunnel: %s", m->txn->id, err);
		return -1;
	}
	if ((fi = fopen(m->untagged, "re")) == NULL) {
		X509_free(cert);
		return -1;
	}
	/* In memory up to GW_MEM_TMP of input, as a signature is. */
	if ((fo = gw_memfile(m, fi, "tunnel", v->path, sizeof(v->path),
	    &tfd, &vbuf)) == NULL) {
		fclose(fi);
		X509_free(cert);
		return -1;
	}
	v->owned = 1;
	v->memfd = tfd + 1;
	/* The id follows the ledger key: a retry gets the same one. */
	r = tunnel_out_build(m->gw->keyd, &v->tunnel, cert, pdf ?
	    TUNNEL_ROUTE_PDF : TUNNEL_ROUTE_WEBMAIL,
	    (const char *const *)v->rcpts, v->n, m->msgkey, m->txn->id, fi, fo,
	    id, err, sizeof(err));
	fclose(fi);
	X509_free(cert);
	if (gw_close(fo, v->path, m->txn->id) == -1)
		r = -1;
	free(vbuf);
	if (r != 0) {
		log_warnx("id=%s tunnel: %s", m->txn->id, err);
		return -1;
	}
	snprintf(v->note, sizeof(v->note), "; tunnel id %s", id);
	return 0;
}

static int gw_can_sign_pgp(struct gw_msg *, struct gw_variant *);

/*
 * The copy for internal recipients: OpenPGP decrypted and verified (with
 * X-Postern-* fields) when it is OpenPGP, else the base itself.
 */
static int
gw_pgp_in(struct gw_msg *m, struct gw_variant *v)
{
	struct db *db = gateway_db(m->gw);
	FILE *fi, *fo;
	int r;

	snprintf(v->path, sizeof(v->path), "%s", m->base);
	if (db == NULL || (fi = fopen(m->base, "re")) == NULL)
		return -1;
	if ((fo = gw_tmpfile(m, "pin", v->path, sizeof(v->path))) == NULL) {
		fclose(fi);
		return -1;
	}
	r = pgp_in_message(db, m->gw->keyd, m->txn->id,
	    props_get_bool(m->props, NULL, "auto-import-keys") == 1, fi, fo);
	fclose(fi);
	if (gw_close(fo, v->path, m->txn->id) == -1)
		r = -1;
	if (r != 1) {
		unlink(v->path);
		snprintf(v->path, sizeof(v->path), "%s", m->base);
		return r == -1 ? -1 : 0;
	}
	v->owned = 1;
	return 0;
}

/*
 * The PGP/MIME copy; with sign, signed first (multipart/signed, the
 * signature made by keyd from a digest) when the sender may sign.
 */
static int
gw_pgp(struct gw_msg *m, struct gw_variant *v, int sign)
{
	char err[256], tmp[PATH_MAX];
	const char *in = m->untagged;
	struct db *db = gateway_db(m->gw);
	FILE *fi, *fo;
	int r;

	if (db == NULL)
		return -1;
	tmp[0] = '\0';
	if (sign && gw_can_sign_pgp(m, v)) {
		if ((fi = fopen(m->untagged, "re")) == NULL)
			return -1;
		if ((fo = gw_tmpfile(m, "psig", tmp, sizeof(tmp))) == NULL) {
			fclose(fi);
			return -1;
		}
		r = pgp_sign(m->gw->keyd, m->signer, m->txn->id, fi, fo, err,
		    sizeof(err));
		fclose(fi);
		if (gw_close(fo, tmp, m->txn->id) == -1)
			r = -1;
		if (r != 0) {
			log_warnx("id=%s OpenPGP signing as %s failed: %s",
			    m->txn->id, m->signer, err);
			unlink(tmp);
			return -1;
		}
		in = tmp;
	}
	if ((fi = fopen(in, "re")) == NULL)
		return -1;
	if ((fo = gw_tmpfile(m, "penc", v->path, sizeof(v->path))) == NULL) {
		fclose(fi);
		r = -1;
		goto out;
	}
	r = pgp_encrypt(db, (const char *const *)v->rcpts, v->n, fi, fo, err,
	    sizeof(err));
	fclose(fi);
	if (gw_close(fo, v->path, m->txn->id) == -1)
		r = -1;
	if (r != 0) {
		log_warnx("id=%s OpenPGP encryption failed: %s", m->txn->id,
		    err);
		unlink(v->path);
	}
out:
	if (tmp[0] != '\0')
		unlink(tmp);
	return r;
}

/*
 * The portal copy: in add-on mode the tunnel message; in split mode the
 * trigger header added and the recipients rewritten. The base holds no
 * trigger field (gw_strip removed them), so when the copy is not given a
 * new subject it is the trigger field relayed ahead of the base file as it
 * is: nothing is written.
 */
static int
gw_portal(struct gw_msg *m, struct gw_variant *v, int pdf)
{
	char extra[SPLITMODE_NAME_MAX + SPLITMODE_VALUE_MAX + 8];
	char path[PATH_MAX];
	const char *np[SPLITMODE_MAX_NAMES];
	size_t nn = splitmode_names(&m->sm, np, SPLITMODE_MAX_NAMES);
	int r, copy;

	if ((r = tunnel_out_settings(m->props, &v->tunnel)) != 0)
		return r == 1 ? gw_portal_tunnel(m, v, pdf) : -1;

	splitmode_tag_field(&m->sm, pdf ? SPLITMODE_PDF : SPLITMODE_WEBMAIL,
	    extra, sizeof(extra));
	copy = strcmp(m->untagged, m->base) != 0;
	if (!copy) {
		snprintf(path, sizeof(path), "%s", m->base);
		v->head = xstrdup(extra);
	} else if ((r = gw_rewrite(m, m->untagged, "portal", np, nn, extra,
	    path, sizeof(path))) != 0)
		return -1;

	for (size_t i = 0; i < v->n; i++) {
		char out[ADDR_MAX * 2];
		const char *why;

		if (splitmode_rewrite_rcpt(&m->sm, v->rcpts[i],
		    m->txn->smtputf8, out, sizeof(out), &why) == -1) {
			/* The engine parsed it; failing here is a bug. */
			fatalx("id=%s rewrite %s: %s", m->txn->id, v->rcpts[i],
			    why);
		}
		free(v->rcpts[i]);
		v->rcpts[i] = xstrdup(out);
	}
	snprintf(v->path, sizeof(v->path), "%s", path);
	v->owned = copy;
	return 0;
}

/*
 * Who the message may be signed as: the one mailbox of its one From:
 * field. Not signed (m->signer NULL, the reason in m->nosign) when From:
 * is missing, repeated or holds several mailboxes, when it differs from
 * MAIL FROM while the sender has sign-require-aligned-from, and whenever
 * MAIL FROM or From: names the tunnel signer, whose key never signs user
 * mail.
 */
static void
gw_signer(struct gw_msg *m)
{
	const struct header_field *from = NULL;
	InternetAddressList *l;
	InternetAddress *ia;
	const char *addr, *env = m->txn->mail_from, *tun = m->gw->tunnel_signer;
	size_t nfrom = 0;
	int aligned;

	m->signer = NULL;
	for (size_t i = 0; i < m->hdr.nfields; i++)
		if (strcasecmp(m->hdr.fields[i].name, "From") == 0) {
			from = &m->hdr.fields[i];
			nfrom++;
		}
	if (nfrom != 1) {
		snprintf(m->nosign, sizeof(m->nosign), "%s From: field",
		    nfrom ? "more than one" : "no");
		return;
	}
	if ((l = internet_address_list_parse(NULL, from->value)) == NULL ||
	    internet_address_list_length(l) != 1 ||
	    !INTERNET_ADDRESS_IS_MAILBOX(ia = internet_address_list_get_address(l,
	    0)) || (addr = internet_address_mailbox_get_addr(
	    INTERNET_ADDRESS_MAILBOX(ia))) == NULL || *addr == '\0' ||
	    strlen(addr) >= sizeof(m->signer_buf)) {
		snprintf(m->nosign, sizeof(m->nosign), "From: does not hold "
		    "exactly one mailbox");
		if (l != NULL)
			g_object_unref(l);
		return;
	}
	snprintf(m->signer_buf, sizeof(m->signer_buf), "%s", addr);
	g_object_unref(l);
	if (tun != NULL && (strcasecmp(env, tun) == 0 ||
	    strcasecmp(m->signer_buf, tun) == 0)) {
		snprintf(m->nosign, sizeof(m->nosign), "the tunnel key never "
		    "signs user mail");
		return;
	}
	aligned = props_get_bool(m->props, m->signer_buf,
	    "sign-require-aligned-from");
	if (aligned != 0 && strcasecmp(env, m->signer_buf) != 0) {
		/* A failed lookup (-1) counts as set: no signature. */
		snprintf(m->nosign, sizeof(m->nosign), "From: <%.60s> is not "
		    "MAIL FROM", m->signer_buf);
		return;
	}
	m->signer = m->signer_buf;
}

/*
 * 1 when the message is signed as m->signer; else the note says why not.
 * The From: field is parsed here, for the messages that may be signed.
 */
static int
gw_can_sign(struct gw_msg *m, struct gw_variant *v, const char *then)
{
	if (!m->signer_known) {
		gw_signer(m);
		m->signer_known = 1;
	}
	if (m->signer == NULL) {
		snprintf(v->note, sizeof(v->note), "; not signed: %.80s, %s",
		    m->nosign, then);
		return 0;
	}
	if (!keyd_can_sign(m->gw->keyd, m->signer)) {
		snprintf(v->note, sizeof(v->note), "; no signing key for "
		    "<%.60s>, %s", m->signer, then);
		return 0;
	}
	return 1;
}

/* As gw_can_sign, for the sender's OpenPGP key in keyd. */
static int
gw_can_sign_pgp(struct gw_msg *m, struct gw_variant *v)
{
	unsigned char fpr[20];
	int algo;

	if (!m->signer_known) {	/* the From: field is parsed on demand */
		gw_signer(m);
		m->signer_known = 1;
	}
	if (m->signer == NULL) {
		snprintf(v->note, sizeof(v->note), "; not signed: %.80s, "
		    "encrypted unsigned", m->nosign);
		return 0;
	}
	if (keyd_pgp_info(m->gw->keyd, m->signer, &algo, fpr) != 1) {
		snprintf(v->note, sizeof(v->note), "; no OpenPGP signing key "
		    "for <%.60s>, encrypted unsigned", m->signer);
		return 0;
	}
	return 1;
}

/*
 * Builds one variant. Signing is never mandatory: a message that may not
 * or cannot be signed goes out unsigned (or encrypted unsigned), and the
 * log line's rule says why.
 */
static int
gw_build(struct gw_msg *m, enum gw_kind k)
{
	struct gw_variant *v = &m->v[k];
	char tmp[PATH_MAX];
	int r, tfd;

	switch (k) {
	case GW_INTERNAL:
		/* OpenPGP (pgp_in.c) when it is OpenPGP ... */
		if (gw_pgp_in(m, v) == -1)
			return -1;
		if (v->owned)
			return 0;
		/* ... else inbound S/MIME: decrypt, verify, harvest. */
		v->owned = 1;
		return inbound_process(m->gw, m->props, m->txn->id, m->base,
		    v->rcpts, v->n, v->path, sizeof(v->path), v->note,
		    sizeof(v->note));
	case GW_PLAIN:
		snprintf(v->path, sizeof(v->path), "%s", m->untagged);
		return 0;
	case GW_SIGNED:
		if (!gw_can_sign(m, v, "sent unsigned")) {
			snprintf(v->path, sizeof(v->path), "%s", m->untagged);
			return 0;
		}
		v->owned = 1;
		r = gw_sign(m, m->signer, KEYD_PURPOSE_MAIL, m->untagged,
		    v->path, sizeof(v->path), &tfd);
		v->memfd = tfd + 1;
		return r;
	case GW_SMIME:
		v->owned = 1;
		return gw_encrypt(m, v, m->untagged, v->path, sizeof(v->path));
	case GW_SMIME_SIGNED:
		v->owned = 1;
		if (!gw_can_sign(m, v, "encrypted unsigned"))
			return gw_encrypt(m, v, m->untagged, v->path,
			    sizeof(v->path));
		if (gw_sign(m, m->signer, KEYD_PURPOSE_MAIL, m->untagged, tmp,
		    sizeof(tmp), &tfd) == -1)
			return -1;
		r = gw_encrypt(m, v, tmp, v->path, sizeof(v->path));
		gw_drop(tmp, tfd);
		return r;
	case GW_PORTAL_WEBMAIL:
	case GW_PORTAL_PDF:
		return gw_portal(m, v, k == GW_PORTAL_PDF);
	case GW_PDF:
		return 0;	/* one PDF per recipient, in gw_pdf() */
	case GW_PGP:
	case GW_PGP_SIGNED:
		v->owned = 1;
		return gw_pgp(m, v, k == GW_PGP_SIGNED);
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
	rv.head = v->head;
	rv.from = m->txn->mail_from;
	rv.rcpts = (const char *const *)v->rcpts;
	rv.nrcpts = v->n;
	rv.smtputf8 = m->txn->smtputf8;
	rv.body_8bit = m->txn->body_8bit;
	rv.hold = &m->hold;
	m->hold.last = (int)k == m->lastk;
	if (v->tunnel.sender != NULL) {
		/* One tunnel message answers for all its recipients. */
		rv.from = v->tunnel.sender;
		rv.rcpts = (const char *const *)&v->tunnel.recipient;
		rv.nrcpts = 1;
		rv.smtputf8 = rv.body_8bit = 0;
	}
	if (relay_send(m->gw->relay, msgkey, &rv, codes, replies) == -1) {
		for (size_t i = 0; i < v->n; i++)
			if (codes[i] == 0 || codes[i] / 100 == 2) {
				codes[i] = 451;
				snprintf(replies[i], sizeof(replies[i]),
				    "relay failed");
			}
	}
	for (size_t i = 1; i < v->n && rv.nrcpts == 1 && v->n > 1; i++) {
		codes[i] = codes[0];
		memcpy(replies[i], replies[0], sizeof(replies[i]));
	}
	for (size_t i = 0; i < v->n; i++) {
		struct smtp_rcpt *r = &m->txn->rcpts[v->idx[i]];

		r->code = codes[i] ? codes[i] : 451;
		if (r->code / 100 == 2)
			snprintf(r->reply, sizeof(r->reply),
			    "2.0.0 Ok: relayed as %s (id=%s)", rv.kind,
			    m->txn->id);
		else {
			/* Keep the next hop's enhanced code when it has one. */
			char st[16];
			size_t n = strspn(replies[i], "0123456789.");

			if (n >= 5 && n < sizeof(st) && replies[i][0] ==
			    '0' + r->code / 100 && replies[i][1] == '.' &&
			    replies[i][n] == ' ')
				snprintf(st, sizeof(st), "%.*s", (int)n,
				    replies[i]);
			else
				snprintf(st, sizeof(st), "%d.0.0",
				    r->code / 100);
			snprintf(r->reply, sizeof(r->reply),
			    "%s next hop for %s: %s", st, v->rcpts[i],
			    replies[i]);
		}
	}
	free(codes);
	free(replies);
}

/* Password PDFs: built and relayed per recipient (pdfmode.c). */
static void
gw_pdf(struct gw_msg *m, const char *msgkey)
{
	struct gw_variant *v = &m->v[GW_PDF];
	struct pdfmode_msg pm;

	memset(&pm, 0, sizeof(pm));
	pm.id = m->txn->id;
	pm.mail_from = m->txn->mail_from;
	pm.path = m->untagged;
	pm.hdr = &m->hdr;
	pm.subject = m->subject;
	pm.msgkey = msgkey;
	pm.smtputf8 = m->txn->smtputf8;
	for (size_t i = 0; i < v->n; i++) {
		struct smtp_rcpt *r = &m->txn->rcpts[v->idx[i]];

		pdfmode_send(m->gw, m->props, &pm, v->rcpts[i], &r->code,
		    r->reply, sizeof(r->reply));
	}
}

static void
gw_cleanup(struct gw_msg *m)
{
	for (int k = 0; k < GW_NKINDS; k++) {
		struct gw_variant *v = &m->v[k];

		if (v->owned && v->path[0] != '\0')
			gw_drop(v->path, v->memfd - 1);
		for (size_t i = 0; i < v->n; i++)
			free(v->rcpts[i]);
		free(v->rcpts);
		free(v->idx);
		free(v->head);
		tunnel_out_free(&v->tunnel);
	}
	if (m->untagged[0] != '\0' && strcmp(m->untagged, m->base) != 0)
		unlink(m->untagged);
	if (m->base_owned)
		unlink(m->base);
	header_free(&m->hdr);
	free(m->subject);
	free(m->dec);
	relay_hold_clear(&m->hold);
}

/* "5.7.1 text" -> "5.7.1"; anything else -> "5.0.0". */
static void
gw_dsn_status(const char *reply, char *out, size_t outlen)
{
	size_t n = strspn(reply, "0123456789.");

	if (n >= 5 && n < 12 && reply[0] == '5' && reply[1] == '.' &&
	    (reply[n] == ' ' || reply[n] == '\0'))
		snprintf(out, outlen, "%.*s", (int)n, reply);
	else
		snprintf(out, outlen, "5.0.0");
}

/*
 * The RFC 3464 report for the recipients refused after DATA, written into
 * a spool file: a human part, the message/delivery-status part and the
 * original header (text/rfc822-headers).
 */
static int
gw_dsn_write(struct gw_msg *m, char *path, size_t pathlen)
{
	struct smtp_txn *t = m->txn;
	const char *host = m->gw->hostname ? m->gw->hostname : "localhost";
	char date[64], status[16], boundary[64];
	time_t now = time(NULL);
	struct tm tm;
	FILE *f;

	gmtime_r(&now, &tm);
	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S +0000", &tm);
	snprintf(boundary, sizeof(boundary), "%s.dsn/%s", t->id, host);
	if ((f = gw_tmpfile(m, "dsn", path, pathlen)) == NULL)
		return -1;
	fprintf(f, "From: Mail Delivery System <MAILER-DAEMON@%s>\r\n"
	    "To: <%s>\r\n"
	    "Subject: Undelivered Mail Returned to Sender\r\n"
	    "Date: %s\r\n"
	    "Message-ID: <%s.dsn@%s>\r\n"
	    "Auto-Submitted: auto-replied\r\n"
	    "MIME-Version: 1.0\r\n"
	    "Content-Type: multipart/report; report-type=delivery-status;\r\n"
	    "\tboundary=\"%s\"\r\n\r\n"
	    "This is a MIME-encapsulated message.\r\n\r\n"
	    "--%s\r\n"
	    "Content-Type: text/plain; charset=utf-8\r\n\r\n"
	    "This is the mail gateway at %s.\r\n\r\n"
	    "Your message could not be delivered to the recipients below.\r\n"
	    "It was delivered to the other recipients.\r\n\r\n",
	    host, t->mail_from, date, t->id, host, boundary, boundary, host);
	for (size_t i = 0; i < t->nrcpts; i++)
		if (t->rcpts[i].code / 100 == 5)
			fprintf(f, "<%s>: %d %s\r\n", t->rcpts[i].addr,
			    t->rcpts[i].code, t->rcpts[i].reply);
	fprintf(f, "\r\n--%s\r\n"
	    "Content-Type: message/delivery-status\r\n\r\n"
	    "Reporting-MTA: dns; %s\r\n"
	    "Arrival-Date: %s\r\n", boundary, host, date);
	for (size_t i = 0; i < t->nrcpts; i++) {
		if (t->rcpts[i].code / 100 != 5)
			continue;
		gw_dsn_status(t->rcpts[i].reply, status, sizeof(status));
		fprintf(f, "\r\nFinal-Recipient: rfc822; %s\r\n"
		    "Action: failed\r\n"
		    "Status: %s\r\n"
		    "Diagnostic-Code: smtp; %d %s\r\n", t->rcpts[i].addr,
		    status, t->rcpts[i].code, t->rcpts[i].reply);
	}
	fprintf(f, "\r\n--%s\r\n"
	    "Content-Type: text/rfc822-headers\r\n\r\n", boundary);
	for (size_t i = 0; i < m->hdr.nfields; i++)
		fwrite(m->hdr.fields[i].raw, 1, m->hdr.fields[i].rawlen, f);
	fprintf(f, "\r\n--%s--\r\n", boundary);
	if (gw_close(f, path, t->id) == -1) {
		unlink(path);
		return -1;
	}
	return 0;
}

/*
 * SMTP mode, no recipient deferred, some refused after DATA and others
 * delivered: a 5xx for the whole message would make the sender's MTA
 * bounce mail that went out. Instead the message is accepted and the
 * refused recipients are reported to the sender in a DSN sent through the
 * relay (null reverse-path). The null sender gets no DSN. When the DSN
 * cannot be sent, the refused recipients answer 451 so the whole
 * transaction is retried (the ledger keeps the delivered copies from
 * going out twice).
 */
static void
gw_dsn(struct gw_msg *m, const char *msgkey)
{
	struct smtp_txn *t = m->txn;
	struct relay_variant rv;
	const char *rcpt[1];
	char path[PATH_MAX], reply[1][512];
	int code[1] = { 0 }, n5 = 0, n2 = 0;

	for (size_t i = 0; i < t->nrcpts; i++) {
		if (t->rcpts[i].code / 100 == 4)
			return;
		if (t->rcpts[i].code / 100 == 5)
			n5++;
		else if (t->rcpts[i].code / 100 == 2)
			n2++;
	}
	if (n5 == 0 || n2 == 0)
		return;
	if (*t->mail_from != '\0') {
		if (gw_dsn_write(m, path, sizeof(path)) == 0) {
			memset(&rv, 0, sizeof(rv));
			rcpt[0] = t->mail_from;
			rv.kind = "dsn";
			rv.path = path;
			rv.from = "";
			rv.rcpts = rcpt;
			rv.nrcpts = 1;
			rv.smtputf8 = t->smtputf8;
			rv.body_8bit = 1;
			rv.hold = &m->hold;
			m->hold.last = 0;
			if (relay_send(m->gw->relay, msgkey, &rv, code,
			    reply) == -1)
				code[0] = 451;
			unlink(path);
		} else
			code[0] = 451;
		log_info("id=%s dsn to=<%s> for %d refused recipient(s) "
		    "status=%d %s", t->id, t->mail_from, n5, code[0],
		    code[0] / 100 == 2 ? "sent" : reply[0]);
	} else {
		code[0] = 250;
		log_info("id=%s %d recipient(s) refused after DATA; null "
		    "sender: no DSN", t->id, n5);
	}
	for (size_t i = 0; i < t->nrcpts; i++) {
		struct smtp_rcpt *r = &t->rcpts[i];

		if (r->code / 100 != 5)
			continue;
		if (code[0] / 100 == 2) {
			r->code = 250;
			snprintf(r->reply, sizeof(r->reply), "2.0.0 Ok: "
			    "accepted; refused recipients reported to the "
			    "sender (id=%s)", t->id);
		} else {
			r->code = 451;
			snprintf(r->reply, sizeof(r->reply), "4.3.0 could not "
			    "report a refused recipient, try again later");
		}
	}
}

/*
 * The entries relay_send held back (the message's last transaction) are
 * needed only for a recipient whose answer is not final: written now for
 * those, dropped for the others.
 */
static void
gw_hold_settle(struct gw_msg *m, const char *msgkey)
{
	struct smtp_txn *t = m->txn;
	struct gw_variant *v = &m->v[m->lastk];
	int any4 = 0;

	for (size_t i = 0; i < t->nrcpts; i++)
		if (t->rcpts[i].code / 100 == 4)
			any4 = 1;
	for (size_t i = 0; any4 && i < m->hold.nheld; i++) {
		struct relay_held *e = &m->hold.held[i];

		if (t->lmtp && t->rcpts[v->idx[e->vidx]].code / 100 != 4)
			continue;
		if (relay_ledger_record(m->gw->relay, msgkey, e->kind,
		    e->nexthop, v->rcpts[e->vidx], e->when) == -1)
			log_warnx("relay: kind=%s nexthop=%s: delivered but "
			    "not recorded", e->kind, e->nexthop);
		else
			m->hold.recorded++;
	}
	relay_hold_clear(&m->hold);
}

/*
 * The answer is final for every recipient whose reply is not 4xx (for
 * SMTP: for all, unless one is 4xx, since one reply covers them all): the
 * sender's MTA will not retry those, so their ledger entries go now.
 */
static void
gw_forget(struct gw_msg *m, const char *msgkey)
{
	struct smtp_txn *t = m->txn;

	gw_hold_settle(m, msgkey);
	/* Nothing to drop when the ledger had nothing and got nothing. */
	if (m->known == 0 && m->hold.recorded == 0)
		return;
	if (!t->lmtp) {
		for (size_t i = 0; i < t->nrcpts; i++)
			if (t->rcpts[i].code / 100 == 4)
				return;
		(void)relay_ledger_forget(m->gw->relay, msgkey, NULL);
		return;
	}
	for (size_t i = 0; i < t->nrcpts; i++) {
		struct gw_variant *v;

		if (t->rcpts[i].code / 100 == 4 ||
		    m->dec[i].action == POLICY_REFUSE)
			continue;
		v = &m->v[gw_kind_of(&m->dec[i])];
		for (size_t j = 0; j < v->n; j++)
			if (v->idx[j] == i)
				(void)relay_ledger_forget(m->gw->relay,
				    msgkey, v->rcpts[j]);
	}
}

int
gateway_rcpt(void *arg, const struct smtp_txn *txn, const char *addr,
    char *reply, size_t replylen)
{
	struct gateway *gw = arg;
	struct policy_decision d;
	struct policy_msg pm;
	struct splitmode sm;
	struct props *p;

	if ((p = gateway_props(gw)) == NULL || splitmode_load(p, &sm) == -1) {
		snprintf(reply, replylen, "451 4.3.0 <%.400s>: temporary "
		    "failure, try again later", addr);
		return -1;
	}
	/* Only the gateway itself rewrites into the relay domain. */
	if (splitmode_in_relay_domain(&sm, addr)) {
		snprintf(reply, replylen, "550 5.1.1 <%.400s>: the portal "
		    "relay domain is not a destination", addr);
		return -1;
	}
	/*
	 * A refusal without content is a refusal with any content (triggers
	 * only make encryption mandatory), so it is known here already. A
	 * failed lookup is decided again after DATA.
	 */
	memset(&pm, 0, sizeof(pm));
	pm.from = txn->mail_from;
	pm.has_pgp = gw_has_pgp;
	pm.pgp_arg = gw;
	if (policy_decide(p, &pm, addr, gw_has_cert, gw, &d) == 0 &&
	    d.action == POLICY_REFUSE) {
		log_info("id=%s from=<%s> to=<%s> decision=refuse rule=\"%s\" "
		    "at RCPT", txn->id, txn->mail_from, addr, d.rule);
		snprintf(reply, replylen, "550 5.7.1 <%.300s>: %s", addr,
		    d.reason);
		return -1;
	}
	return 0;
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
	if ((m.props = gateway_props(m.gw)) == NULL ||
	    splitmode_load(m.props, &m.sm) == -1) {
		gw_set_all(txn, 451, "4.3.0 %s", "database unavailable");
		return;
	}
	/* The message as received, before anything is stripped. */
	relay_msgkey(txn->mail_from, txn->spool_path, msgkey);
	m.msgkey = msgkey;
	m.known = relay_ledger_known(m.gw->relay, msgkey);
	m.hold.fresh = m.known == 0;
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
	pm.has_pgp = gw_has_pgp;
	pm.pgp_arg = m.gw;
	m.dec = xcalloc(txn->nrcpts, sizeof(*m.dec));
	for (size_t i = 0; i < txn->nrcpts; i++) {
		struct policy_decision *d = &m.dec[i];
		struct gw_variant *v;

		if (policy_decide(m.props, &pm, txn->rcpts[i].addr, gw_has_cert,
		    m.gw, d) == -1) {
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
	for (int k = 0; k < GW_NKINDS; k++)
		if (m.v[k].n > 0)
			m.lastk = k;

	for (int k = 0; k < GW_NKINDS; k++) {
		struct gw_variant *v = &m.v[k];

		if (v->n == 0)
			continue;
		if ((r = gw_build(&m, k)) < 0) {
			for (size_t i = 0; i < v->n; i++) {
				struct smtp_rcpt *rc = &txn->rcpts[v->idx[i]];

				rc->code = r == INBOUND_REJECT ? 554 : 451;
				if (r == INBOUND_REJECT)
					snprintf(rc->reply, sizeof(rc->reply),
					    "5.6.0 %s", v->note);
				else
					snprintf(rc->reply, sizeof(rc->reply),
					    "4.3.0 could not build the %s copy",
					    gw_kind_names[k]);
			}
			continue;
		}
		if (k == GW_PDF)
			gw_pdf(&m, msgkey);
		else
			gw_relay(&m, k, msgkey);
	}

	/* One log line per recipient decision, with its own answer. */
	for (size_t i = 0; i < txn->nrcpts; i++) {
		struct policy_decision *d = &m.dec[i];
		const char *note = "", *via = txn->rcpts[i].addr;
		char hop[300] = "none";

		if (d->action != POLICY_REFUSE) {
			struct gw_variant *v = &m.v[gw_kind_of(d)];

			note = v->note;
			for (size_t j = 0; j < v->n; j++)
				if (v->idx[j] == i)
					via = v->tunnel.recipient != NULL ?
					    v->tunnel.recipient : v->rcpts[j];
			relay_nexthop(m.gw->relay, via, hop, sizeof(hop));
		}
		log_info("id=%s from=<%s> to=<%s> decision=%s rule=\"%s%s\" "
		    "nexthop=%s status=%d %s", txn->id, txn->mail_from,
		    txn->rcpts[i].addr, policy_action_name(d->action), d->rule,
		    note, hop, txn->rcpts[i].code, txn->rcpts[i].reply);
	}
	if (!txn->lmtp)
		gw_dsn(&m, msgkey);
	gw_forget(&m, msgkey);
	gw_cleanup(&m);
}
