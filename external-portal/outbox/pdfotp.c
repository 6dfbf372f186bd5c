/*
 * The PDF-OTP thread; see pdfotp.h. It reads stored messages (hostile
 * MIME, handed to the PDF builder, which is written for that) and rows we
 * wrote. The mails it builds are ours: values from the message (sender,
 * subject) go through the shared escaper and RFC 2047 encoding.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <gmime/gmime.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "buf.h"
#include "log.h"
#include "outbox/outbox.h"
#include "outbox/pdfotp.h"
#include "pdf.h"
#include "pdfpass.h"
#include "props.h"
#include "store/accounts.h"
#include "store/store_pdf.h"
#include "text.h"
#include "xmalloc.h"

struct pdfotp {
	struct store		*store;
	struct pdfotp_conf	 conf;
	pthread_t		 thread;
	pthread_mutex_t		 mtx;
	pthread_cond_t		 cond;
	int			 wake, stop;
	int64_t			 last_expire;
	int			 test_fail;	/* POSTERN_TEST_PDF_HOOK */
};

/* --- the mails ------------------------------------------------------------ */

/* The PDF thread's property reader (props_thread()). */
static struct props *
pdfotp_props(struct pdfotp *po)
{
	return props_thread(po->conf.dbpath, PROPS_NODE_PORTAL);
}

static void
pdfotp_head(FILE *f, const struct notify_conf *n, const char *to,
    const char *subject, const char *tag)
{
	char date[64], id[33];
	unsigned char rnd[16];
	char *enc = g_mime_utils_header_encode_text(NULL, subject, "utf-8");
	time_t now = time(NULL);
	struct tm tm;

	gmtime_r(&now, &tm);
	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S +0000", &tm);
	if (RAND_bytes(rnd, sizeof(rnd)) != 1)
		fatalx("pdfotp: no randomness");
	for (size_t i = 0; i < sizeof(rnd); i++)
		snprintf(id + 2 * i, 3, "%02x", rnd[i]);
	if (n->sender_name != NULL && *n->sender_name != '\0') {
		char *sn = g_mime_utils_header_encode_phrase(NULL,
		    n->sender_name, "utf-8");

		fprintf(f, "From: %s <%s>\r\n", sn, n->sender);
		g_free(sn);
	} else
		fprintf(f, "From: <%s>\r\n", n->sender);
	fprintf(f, "To: <%s>\r\nSubject: %s\r\nDate: %s\r\n"
	    "Message-ID: <%s.%s@%s>\r\nAuto-Submitted: auto-generated\r\n"
	    "MIME-Version: 1.0\r\n", to, enc ? enc : "", date, id, tag,
	    n->hostname ? n->hostname : "localhost");
	g_free(enc);
}

/* base64 of the file at path, in 76-column lines. */
static int
pdfotp_base64(FILE *f, const char *path)
{
	unsigned char in[57 * 64], out[77 * 64 + 1];
	size_t n;
	FILE *pf = fopen(path, "re");

	if (pf == NULL)
		return -1;
	while ((n = fread(in, 1, sizeof(in), pf)) > 0)
		for (size_t off = 0; off < n; off += 57) {
			size_t k = n - off < 57 ? n - off : 57;
			int w = EVP_EncodeBlock(out, in + off, (int)k);

			fwrite(out, 1, w, f);
			fputs("\r\n", f);
		}
	n = ferror(pf);
	fclose(pf);
	return n ? -1 : 0;
}

/* One line of text from the message, escaped for text or HTML. */
static char *
pdfotp_value(const char *s, int html)
{
	struct buf b;

	buf_init(&b, 1024);
	if (s != NULL)
		(void)text_escape(&b, s, strlen(s), TEXT_ESC_LINE |
		    TEXT_ESC_NOBIDI | (html ? TEXT_ESC_HTML : 0));
	return buf_finish(&b);
}

/*
 * The PDF mail for row p at path: text and HTML parts (how to get the
 * password, a sign-up link when the account has no password yet), the
 * PDF attached. The original's body never, its subject only with
 * pdf-otp-show-subject.
 */
static int
pdfotp_mail(struct pdfotp *po, const struct store_pdf *p, const char *pdf,
    const char *signup, int show_subject, const char *path)
{
	const struct notify_conf *n = &po->conf.notify;
	char *sender = notify_sender_text(p->hdr_from), *subj = NULL;
	char *ts, *hs, *tsub, *hsub, *tsup = NULL, *hsup = NULL;
	char bnd[64], *link;
	FILE *f;
	int rc;

	xasprintf(&link, "%s/pdf/%s", n->base_url, p->token);
	if (show_subject && p->subject != NULL) {
		char *d = g_mime_utils_header_decode_text(NULL, p->subject);

		subj = xstrdup(d ? d : "");
		g_free(d);
		text_truncate(subj, NOTIFY_SUBJECT_MAX);
	}
	ts = pdfotp_value(sender ? sender : "a sender", 0);
	hs = pdfotp_value(sender ? sender : "a sender", 1);
	tsub = pdfotp_value(subj, 0);
	hsub = pdfotp_value(subj, 1);
	if (signup != NULL) {
		tsup = pdfotp_value(signup, 0);
		hsup = pdfotp_value(signup, 1);
	}
	snprintf(bnd, sizeof(bnd), "=_pdf_%s", p->token);
	if ((f = fopen(path, "wex")) == NULL) {
		log_warn("pdfotp: %s", path);
		rc = -1;
		goto done;
	}
	{
		char *s;

		if (subj != NULL && *subj != '\0')
			xasprintf(&s, "Secure message: %s", subj);
		else
			xasprintf(&s, "Secure message from %s", sender ?
			    sender : "a sender");
		pdfotp_head(f, n, p->owner, s, "pdf");
		free(s);
	}
	fprintf(f, "Content-Type: multipart/mixed; boundary=\"%s\"\r\n\r\n"
	    "--%s\r\nContent-Type: multipart/alternative; "
	    "boundary=\"%s.a\"\r\n\r\n"
	    "--%s.a\r\nContent-Type: text/plain; charset=utf-8\r\n"
	    "Content-Transfer-Encoding: 8bit\r\n\r\n"
	    "You have received a secure message from %s%s%s%s.\r\n\r\n"
	    "It is attached as an encrypted PDF. To open it you need its "
	    "password:\r\nsign in at\r\n\r\n  %s\r\n\r\n"
	    "and the page shows the password.\r\n", bnd, bnd, bnd, bnd, ts,
	    *tsub ? " (\"" : "", tsub, *tsub ? "\")" : "", link);
	if (tsup != NULL)
		fprintf(f, "\r\nFirst visit: choose your portal password "
		    "here first:\r\n\r\n  %s\r\n", tsup);
	fprintf(f, "\r\n--%s.a\r\nContent-Type: text/html; charset=utf-8\r\n"
	    "Content-Transfer-Encoding: 8bit\r\n\r\n"
	    "<!DOCTYPE html><html><body style=\"font-family:sans-serif\">"
	    "<p>You have received a secure message from <b>%s</b>%s%s%s.</p>"
	    "<p>It is attached as an encrypted PDF. To open it you need its "
	    "password: sign in at <a href=\"%s\">%s</a> and the page shows "
	    "the password.</p>", bnd, hs, *hsub ? " (&ldquo;" : "", hsub,
	    *hsub ? "&rdquo;)" : "", link, link);
	if (hsup != NULL)
		fprintf(f, "<p>First visit: <a href=\"%s\">choose your portal "
		    "password</a> first.</p>", hsup);
	fprintf(f, "</body></html>\r\n--%s.a--\r\n\r\n--%s\r\n"
	    "Content-Type: application/pdf; name=\"message.pdf\"\r\n"
	    "Content-Disposition: attachment; filename=\"message.pdf\"\r\n"
	    "Content-Transfer-Encoding: base64\r\n\r\n", bnd, bnd);
	rc = pdfotp_base64(f, pdf);
	fprintf(f, "--%s--\r\n", bnd);
	if (fflush(f) == EOF || ferror(f) || fsync(fileno(f)) == -1)
		rc = -1;
	if (fclose(f) == EOF)
		rc = -1;
	if (rc == -1) {
		log_warn("pdfotp: write %s", path);
		unlink(path);
	}
done:
	free(link);
	free(sender);
	free(subj);
	free(ts);
	free(hs);
	free(tsub);
	free(hsub);
	xfree_secret(&tsup);
	xfree_secret(&hsup);
	return rc;
}

/* A plain report to the original sender; its path or NULL. */
static char *
pdfotp_dsn(const char *spool_dir, const struct notify_conf *n,
    const struct store_pdf *p, const char *why)
{
	char *path, *subj = pdfotp_value(p->subject, 0);
	char *owner = pdfotp_value(p->owner, 0);
	FILE *f;
	int fd;

	if (p->mail_from == NULL || *p->mail_from == '\0') {
		free(subj);
		free(owner);
		return NULL;
	}
	xasprintf(&path, "%s/pdfdsn.XXXXXX", spool_dir);
	if ((fd = mkstemp(path)) == -1 || (f = fdopen(fd, "w")) == NULL) {
		log_warn("pdfotp: %s", path);
		if (fd != -1)
			close(fd);
		free(path);
		free(subj);
		free(owner);
		return NULL;
	}
	pdfotp_head(f, n, p->mail_from, "Undelivered: secure message",
	    "dsn");
	fprintf(f, "Content-Type: text/plain; charset=utf-8\r\n"
	    "Content-Transfer-Encoding: 8bit\r\n\r\n"
	    "This is the secure mail portal at %s.\r\n\r\n"
	    "Your message to <%s> could not be delivered as a PDF with a "
	    "one-time password:\r\n  %s\r\n\r\nSubject of your message: %s\r\n"
	    "\r\nThe message is kept on the portal until its retention ends;"
	    "\r\nyour mail administrator can see it in the portal's log.\r\n",
	    n->hostname ? n->hostname : "localhost", owner, why, subj);
	free(subj);
	free(owner);
	if (fflush(f) == EOF || fsync(fileno(f)) == -1 || fclose(f) == EOF) {
		log_warn("pdfotp: write %s", path);
		unlink(path);
		free(path);
		return NULL;
	}
	return path;
}

/* Given up on row p: the sender hears of it, the row says "failed". */
static void
pdfotp_give_up(struct store *s, const char *spool_dir,
    const struct notify_conf *n, const struct store_pdf *p, const char *why)
{
	char *dsn = pdfotp_dsn(spool_dir, n, p, why);

	log_warnx("pdfotp: message %lld to <%s> from <%s> not delivered as a "
	    "PDF: %s; %s", (long long)p->msg_id, p->owner,
	    p->mail_from ? p->mail_from : "", why, dsn ? "sender notified" :
	    "no sender to notify");
	if (store_pdf_fail(s, p->id, dsn, p->mail_from) == -1 && dsn != NULL)
		unlink(dsn);
	free(dsn);
}

void
pdfotp_outbox_done(struct store *s, const char *spool_dir,
    const struct notify_conf *n, const struct store_outbox *o, int ok)
{
	struct store_pdf p;

	if (o->kind != STORE_OUTBOX_RAW || o->path == NULL ||
	    store_pdf_by_mail(s, o->path, &p) != 0)
		return;
	if (ok) {
		if (store_pdf_sent(s, p.id) == 0)
			log_info("pdfotp: PDF of message %lld accepted for "
			    "<%s>; content deleted, password kept",
			    (long long)p.msg_id, p.owner);
	} else
		pdfotp_give_up(s, spool_dir, n, &p, "the PDF mail was not "
		    "accepted by the recipient's mail server");
	store_pdf_free(&p);
}

/* --- rendering ------------------------------------------------------------ */

#define PDFOTP_REFS_MAX	8192	/* bytes of References kept for a reply */

/*
 * What a reply to the message needs once its content is gone, into p:
 * the address it goes to (Reply-To, else From), the Message-ID and the
 * raw References field. The reply page checks the IDs again before any
 * goes into a header. Absent fields stay NULL.
 */
static void
pdfotp_reply_info(int fd, struct store_pdf *p)
{
	GMimeStream *st;
	GMimeParser *ps;
	GMimeMessage *m;
	InternetAddressList *l;
	const char *v;
	int dfd;

	if ((dfd = dup(fd)) == -1)
		return;
	st = g_mime_stream_fs_new_with_bounds(dfd, 0, -1);
	ps = g_mime_parser_new_with_stream(st);
	m = g_mime_parser_construct_message(ps, NULL);
	g_object_unref(ps);
	g_object_unref(st);
	if (m == NULL)
		return;
	l = g_mime_message_get_reply_to(m);
	if (l == NULL || internet_address_list_length(l) == 0)
		l = g_mime_message_get_from(m);
	for (int i = 0; l != NULL && i < internet_address_list_length(l);
	    i++) {
		InternetAddress *ia = internet_address_list_get_address(l, i);

		if (INTERNET_ADDRESS_IS_MAILBOX(ia) && (v =
		    internet_address_mailbox_get_addr(
		    INTERNET_ADDRESS_MAILBOX(ia))) != NULL && *v != '\0' &&
		    strlen(v) < 2 * ADDR_MAX + 2) {
			p->reply_to = xstrdup(v);
			break;
		}
	}
	if ((v = g_mime_message_get_message_id(m)) != NULL && *v != '\0' &&
	    strlen(v) < 1000)
		p->message_id = xstrdup(v);
	if ((v = g_mime_object_get_header(GMIME_OBJECT(m), "References")) !=
	    NULL && *v != '\0')
		p->refs = xstrndup(v, PDFOTP_REFS_MAX);
	g_object_unref(m);
}

/*
 * Where pdf_build() writes. For the tests, POSTERN_TEST_PDF_HOOK=render-fail
 * (read by this thread alone) names a directory that does not exist, so
 * the builder fails as on a broken spool and the retries, the report to
 * the sender and the log line can be seen for real.
 */
static const char *
pdfotp_outpath(struct pdfotp *po, const char *pdf)
{
	return po->test_fail ? "/nonexistent/postern-test-hook/message.pdf" :
	    pdf;
}

static void
pdfotp_render(struct pdfotp *po, struct store_pdf *p, int64_t now)
{
	struct pdf_opts o;
	struct pdf_info info;
	struct store_user u;
	char pw[PDFPASS_LEN + 1], err[256], *pdf = NULL, *mail = NULL;
	char *reply = NULL, *signup = NULL, token[ACCOUNTS_TOKEN_LEN + 1];
	int fd = -1, show, rc = -1;

	if (p->msg_path == NULL) {
		pdfotp_give_up(po->store, po->conf.spool_dir, &po->conf.notify,
		    p, "the message was deleted before its PDF was built");
		return;
	}
	xasprintf(&pdf, "%s/pdf-%s.pdf", po->conf.spool_dir, p->token);
	xasprintf(&mail, "%s/pdfmail-%s.eml", po->conf.spool_dir, p->token);
	xasprintf(&reply, "%s/pdf-reply/%s", po->conf.notify.base_url,
	    p->token);
	unlink(mail);	/* a crash between writing and queueing */
	if (pdfpass_generate(pw, sizeof(pw), PDFPASS_LEN) == -1) {
		snprintf(err, sizeof(err), "no randomness");
		goto fail;
	}
	if ((fd = open(p->msg_path, O_RDONLY | O_CLOEXEC)) == -1) {
		snprintf(err, sizeof(err), "%s: %s", p->msg_path,
		    strerror(errno));
		goto fail;
	}
	memset(&o, 0, sizeof(o));
	o.password = pw;
	o.reply_url = reply;
	o.reply_label = "Reply securely (sign in)";
	pdfotp_reply_info(fd, p);
	if (lseek(fd, 0, SEEK_SET) == -1) {
		snprintf(err, sizeof(err), "%s: %s", p->msg_path,
		    strerror(errno));
		goto fail;
	}
	if (pdf_build(fd, &o, pdfotp_outpath(po, pdf), &info, err,
	    sizeof(err)) == -1)
		goto fail;
	show = pdfotp_props(po) != NULL && props_get_bool(pdfotp_props(po),
	    p->owner, "pdf-otp-show-subject") == 1;
	if (store_user_get(po->store, p->owner, &u) == 0) {
		if (u.state == STORE_USER_PENDING && accounts_token_issue(
		    po->store, STORE_TOKEN_SIGNUP, p->owner,
		    po->conf.token_lifetime, token) == 0) {
			xasprintf(&signup, "%s/signup?token=%s",
			    po->conf.notify.base_url, token);
			OPENSSL_cleanse(token, sizeof(token));
		}
		store_user_free(&u);
	}
	if (pdfotp_mail(po, p, pdf, signup, show, mail) == -1) {
		snprintf(err, sizeof(err), "writing the PDF mail failed");
		goto fail;
	}
	if (store_pdf_queue(po->store, p, pw, mail) == -1) {
		unlink(mail);
		snprintf(err, sizeof(err), "database failure");
		goto fail;
	}
	log_info("pdfotp: message %lld for <%s> rendered (%d pages, %d "
	    "attachments%s), PDF mail queued", (long long)p->msg_id, p->owner,
	    info.pages, info.attachments, info.raw ? ", raw text" : "");
	if (po->conf.outbox != NULL)
		outbox_wake(po->conf.outbox);
	rc = 0;
fail:
	if (rc == -1) {
		log_warnx("pdfotp: message %lld for <%s>: attempt %d failed: %s",
		    (long long)p->msg_id, p->owner, p->attempts + 1, err);
		if (p->attempts + 1 >= po->conf.attempts)
			pdfotp_give_up(po->store, po->conf.spool_dir,
			    &po->conf.notify, p, "the message could not be "
			    "made into a PDF");
		else
			store_pdf_retry(po->store, p->id, now +
			    po->conf.retry * (1 << p->attempts));
	}
	if (fd != -1)
		close(fd);
	unlink(pdf);
	OPENSSL_cleanse(pw, sizeof(pw));
	xfree_secret(&signup);
	free(pdf);
	free(mail);
	free(reply);
}

static void *
pdfotp_main(void *arg)
{
	struct pdfotp *po = arg;
	struct store_pdf p;
	struct timespec ts;
	const char *hook = getenv("POSTERN_TEST_PDF_HOOK");
	int64_t now, keep;

	po->test_fail = hook != NULL && strcmp(hook, "render-fail") == 0;
	if (po->test_fail)
		log_warnx("pdfotp: POSTERN_TEST_PDF_HOOK: every PDF fails "
		    "(tests only)");
	pthread_mutex_lock(&po->mtx);
	while (!po->stop) {
		po->wake = 0;
		pthread_mutex_unlock(&po->mtx);
		now = time(NULL);
		if (store_pdf_adopt(po->store, now) == -1)
			log_warnx("pdfotp: cannot read the store");
		while (!po->stop && store_pdf_next(po->store, now, &p) == 0) {
			pdfotp_render(po, &p, now);
			store_pdf_free(&p);
			now = time(NULL);
		}
		if (now - po->last_expire >= 3600) {
			keep = pdfotp_props(po) == NULL ? -1 :
			    props_get_int(pdfotp_props(po), NULL,
			    "pdf-otp-keep-days");
			if (keep > 0 && store_pdf_expire(po->store,
			    now - keep * 86400) == 0)
				po->last_expire = now;
		}
		pthread_mutex_lock(&po->mtx);
		if (po->wake || po->stop)
			continue;
		memset(&ts, 0, sizeof(ts));
		ts.tv_sec = now + po->conf.poll;
		while (!po->wake && !po->stop &&
		    pthread_cond_timedwait(&po->cond, &po->mtx, &ts) == 0)
			;
	}
	pthread_mutex_unlock(&po->mtx);
	return NULL;
}

struct pdfotp *
pdfotp_start(struct store *s, const struct pdfotp_conf *c)
{
	struct pdfotp *po = xcalloc(1, sizeof(*po));

	po->store = s;
	po->conf = *c;
	if (po->conf.poll <= 0)
		po->conf.poll = 5;
	if (po->conf.attempts <= 0)
		po->conf.attempts = 3;
	if (po->conf.retry <= 0)
		po->conf.retry = 60;
	pthread_mutex_init(&po->mtx, NULL);
	pthread_cond_init(&po->cond, NULL);
	if (pthread_create(&po->thread, NULL, pdfotp_main, po) != 0)
		fatalx("pdfotp: cannot start the PDF thread");
	return po;
}

void
pdfotp_wake(struct pdfotp *po)
{
	if (po == NULL)
		return;
	pthread_mutex_lock(&po->mtx);
	po->wake = 1;
	pthread_cond_signal(&po->cond);
	pthread_mutex_unlock(&po->mtx);
}

void
pdfotp_stop(struct pdfotp *po)
{
	if (po == NULL)
		return;
	pthread_mutex_lock(&po->mtx);
	po->stop = 1;
	pthread_cond_signal(&po->cond);
	pthread_mutex_unlock(&po->mtx);
	pthread_join(po->thread, NULL);
	pthread_mutex_destroy(&po->mtx);
	pthread_cond_destroy(&po->cond);
	free(po);
}
