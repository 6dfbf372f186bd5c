/*
 * Password PDFs on internal-gw; see pdfmode.h. The message is the LAN
 * MTA's (hostile MIME: the PDF builder is written for it); the mails
 * built here are ours, with header values copied from the original as
 * raw, already-parsed fields.
 *
 * A random password must survive a retried transaction: the ledger keeps
 * a PDF mail that was accepted from being sent again, so the password of
 * a retry must be the one that PDF has. It is therefore derived, not
 * drawn: HMAC-SHA256 under a secret kept in the gateway's database, over
 * the message key and the recipient, mapped onto the password alphabet.
 */
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "db.h"
#include "gateway.h"
#include "header.h"
#include "log.h"
#include "pdf.h"
#include "pdfmode.h"
#include "pdfpass.h"
#include "props.h"
#include "relay.h"
#include "xmalloc.h"

#define PDFMODE_KEY_LEN	32

static const char *const pdfmode_steps[] = {
	"CREATE TABLE IF NOT EXISTS gw_pdf_key (id INTEGER PRIMARY KEY "
	"CHECK (id = 1), k BLOB NOT NULL)",
};

/* The derivation secret: stored once, fresh on first use. 0 or -1. */
static int
pdfmode_secret(struct gateway *gw, unsigned char key[PDFMODE_KEY_LEN])
{
	unsigned char fresh[PDFMODE_KEY_LEN];
	struct db *db = gateway_db(gw);
	struct db_stmt *st;
	char *err = NULL;
	int rc = -1;

	if (db == NULL)
		return -1;
	if (db_migrate(db, "gw-pdf-key", pdfmode_steps, 1, &err) == -1) {
		log_warnx("pdfmode: %s", err ? err : "database error");
		free(err);
		return -1;
	}
	if (RAND_bytes(fresh, sizeof(fresh)) != 1)
		return -1;
	if (db_run(db, "INSERT INTO gw_pdf_key (id, k) VALUES (1, ?) "
	    "ON CONFLICT DO NOTHING",
	    "b", fresh, (size_t)sizeof(fresh)) == -1)
		return -1;
	OPENSSL_cleanse(fresh, sizeof(fresh));
	if ((st = db_prepare(db, "SELECT k FROM gw_pdf_key WHERE id = 1")) ==
	    NULL)
		return -1;
	if (db_step(st) == DB_ROW && db_col_bytes(st, 0) ==
	    PDFMODE_KEY_LEN) {
		memcpy(key, db_col_blob(st, 0), PDFMODE_KEY_LEN);
		rc = 0;
	}
	db_finalize(st);
	return rc;
}

/* The password of (msgkey, rcpt); 0 or -1. */
static int
pdfmode_derive(struct gateway *gw, const char *msgkey, const char *rcpt,
    char out[PDFPASS_LEN + 1])
{
	static const char alpha[] = PDFPASS_ALPHABET;
	const unsigned int n = sizeof(alpha) - 1, lim = 256 - 256 % n;
	unsigned char key[PDFMODE_KEY_LEN], mac[EVP_MAX_MD_SIZE], ctr = 0;
	unsigned int maclen, have = 0;
	char *data;

	if (pdfmode_secret(gw, key) == -1)
		return -1;
	while (have < PDFPASS_LEN) {
		xasprintf(&data, "%s\n%s\n%u", msgkey, rcpt, ctr++);
		HMAC(EVP_sha256(), key, sizeof(key), (unsigned char *)data,
		    strlen(data), mac, &maclen);
		free(data);
		for (unsigned int i = 0; i < maclen && have < PDFPASS_LEN; i++)
			if (mac[i] < lim)
				out[have++] = alpha[mac[i] % n];
	}
	out[PDFPASS_LEN] = '\0';
	OPENSSL_cleanse(key, sizeof(key));
	OPENSSL_cleanse(mac, sizeof(mac));
	return 0;
}

static FILE *
pdfmode_tmp(struct gateway *gw, const char *id, const char *tag, char *path,
    size_t len)
{
	int fd;
	FILE *f;

	snprintf(path, len, "%s/%s.%s.XXXXXX", gw->spool_dir, id, tag);
	if ((fd = mkstemp(path)) == -1) {
		log_warn("id=%s create %s", id, path);
		return NULL;
	}
	if ((f = fdopen(fd, "w+")) == NULL) {
		close(fd);
		unlink(path);
	}
	return f;
}

static void
pdfmode_copy_field(FILE *f, const struct header *h, const char *name)
{
	for (size_t i = 0; i < h->nfields; i++)
		if (strcasecmp(h->fields[i].name, name) == 0)
			fwrite(h->fields[i].raw, 1, h->fields[i].rawlen, f);
}

/* The PDF mail: the original's addressing fields, a note, the PDF. */
static int
pdfmode_mail(struct gateway *gw, const struct pdfmode_msg *m,
    const char *pdf, int to_sender, const char *path_tag, char *path,
    size_t len)
{
	unsigned char in[57], out[80];
	size_t n;
	FILE *f, *pf;
	int w, rc = 0;

	if ((f = pdfmode_tmp(gw, m->id, path_tag, path, len)) == NULL)
		return -1;
	pdfmode_copy_field(f, m->hdr, "From");
	pdfmode_copy_field(f, m->hdr, "To");
	pdfmode_copy_field(f, m->hdr, "Cc");
	pdfmode_copy_field(f, m->hdr, "Date");
	pdfmode_copy_field(f, m->hdr, "Subject");
	pdfmode_copy_field(f, m->hdr, "Message-ID");
	pdfmode_copy_field(f, m->hdr, "In-Reply-To");
	pdfmode_copy_field(f, m->hdr, "References");
	fprintf(f, "MIME-Version: 1.0\r\n"
	    "Content-Type: multipart/mixed; boundary=\"=_pdf_%s\"\r\n\r\n"
	    "--=_pdf_%s\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
	    "This message is encrypted in the attached PDF.\r\n\r\n"
	    "%s\r\n\r\n--=_pdf_%s\r\n"
	    "Content-Type: application/pdf; name=\"message.pdf\"\r\n"
	    "Content-Disposition: attachment; filename=\"message.pdf\"\r\n"
	    "Content-Transfer-Encoding: base64\r\n\r\n", m->id, m->id,
	    to_sender ? "The sender gives you its password separately." :
	    "Open it with the password agreed with the sender.", m->id);
	if ((pf = fopen(pdf, "re")) == NULL)
		rc = -1;
	while (rc == 0 && (n = fread(in, 1, sizeof(in), pf)) > 0) {
		w = EVP_EncodeBlock(out, in, (int)n);
		fwrite(out, 1, w, f);
		fputs("\r\n", f);
	}
	if (pf != NULL)
		fclose(pf);
	fprintf(f, "--=_pdf_%s--\r\n", m->id);
	if (fflush(f) == EOF || ferror(f))
		rc = -1;
	fclose(f);
	if (rc == -1)
		unlink(path);
	return rc;
}

static int
pdfmode_password_mail(struct gateway *gw, const struct pdfmode_msg *m,
    const char *rcpt, const char *pw, char *path, size_t len)
{
	const char *host = gw->hostname ? gw->hostname : "localhost";
	char shown[PDFPASS_SHOWN_MAX], date[64];
	time_t now = time(NULL);
	struct tm tm;
	FILE *f;
	int rc = 0;

	gmtime_r(&now, &tm);
	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S +0000", &tm);
	if ((f = pdfmode_tmp(gw, m->id, "pdfpw", path, len)) == NULL)
		return -1;
	pdfpass_group(pw, ' ', shown, sizeof(shown));
	fprintf(f, "From: Mail Gateway <postmaster@%s>\r\nTo: <%s>\r\n"
	    "Subject: Password of the PDF sent to %s\r\nDate: %s\r\n"
	    "Message-ID: <%s.pdfpw.%08x@%s>\r\nAuto-Submitted: auto-generated\r\n"
	    "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
	    "Content-Transfer-Encoding: 8bit\r\n\r\n"
	    "Your message to <%s> was sent to it as an encrypted PDF.\r\n"
	    "Give the recipient this password another way (phone, text "
	    "message), never by mail:\r\n\r\n    %s\r\n\r\n"
	    "(Type it without the spaces.)\r\n", host, m->mail_from, rcpt,
	    date, m->id, (unsigned)(now ^ (time_t)strlen(rcpt)), host, rcpt,
	    shown);
	OPENSSL_cleanse(shown, sizeof(shown));
	if (fflush(f) == EOF || ferror(f))
		rc = -1;
	fclose(f);
	if (rc == -1)
		unlink(path);
	return rc;
}

/* Relays one file to one recipient; its code and reply. */
static void
pdfmode_relay(struct gateway *gw, const struct pdfmode_msg *m,
    const char *kind, const char *path, const char *from, const char *rcpt,
    int *code, char *reply, size_t replylen)
{
	struct relay_variant rv;
	const char *rcpts[1] = { rcpt };
	int codes[1] = { 0 };
	char replies[1][512];

	memset(&rv, 0, sizeof(rv));
	replies[0][0] = '\0';
	rv.kind = kind;
	rv.path = path;
	rv.from = from;
	rv.rcpts = rcpts;
	rv.nrcpts = 1;
	rv.smtputf8 = m->smtputf8;
	rv.body_8bit = 1;
	if (relay_send(gw->relay, m->msgkey, &rv, codes, replies) == -1 ||
	    codes[0] == 0)
		codes[0] = 451;
	*code = codes[0];
	snprintf(reply, replylen, "%s", replies[0][0] ? replies[0] :
	    "relay failed");
}

void
pdfmode_send(struct gateway *gw, struct props *p, const struct pdfmode_msg *m,
    const char *rcpt, int *code, char *reply, size_t replylen)
{
	struct pdf_opts o;
	struct pdf_info info;
	char pw[256], pdf[PATH_MAX], mail[PATH_MAX], pwmail[PATH_MAX];
	char err[256], *fixed, *kind = NULL;
	int fd = -1, to_sender = 0, c;

	*code = 451;
	snprintf(reply, replylen, "4.3.0 could not build the PDF");
	pdf[0] = mail[0] = pwmail[0] = '\0';
	if ((fixed = props_get(p, rcpt, "pdf-password", NULL)) == NULL)
		return;
	if (*fixed != '\0')
		snprintf(pw, sizeof(pw), "%s", fixed);
	else {
		to_sender = 1;
		if (*m->mail_from == '\0') {
			*code = 550;
			snprintf(reply, replylen, "5.7.1 <%s>: the PDF password "
			    "goes to the sender, and there is none", rcpt);
			goto done;
		}
		if (pdfmode_derive(gw, m->msgkey, rcpt, pw) == -1)
			goto done;
	}
	xfree_secret(&fixed);

	snprintf(pdf, sizeof(pdf), "%s/%s.pdf.XXXXXX", gw->spool_dir, m->id);
	if ((fd = mkstemp(pdf)) == -1) {
		log_warn("id=%s create %s", m->id, pdf);
		pdf[0] = '\0';
		goto done;
	}
	close(fd);
	if ((fd = open(m->path, O_RDONLY | O_CLOEXEC)) == -1) {
		log_warn("id=%s open %s", m->id, m->path);
		goto done;
	}
	memset(&o, 0, sizeof(o));
	o.password = pw;
	if (pdf_build(fd, &o, pdf, &info, err, sizeof(err)) == -1) {
		log_warnx("id=%s PDF for <%s> failed: %s", m->id, rcpt, err);
		goto done;
	}
	if (pdfmode_mail(gw, m, pdf, to_sender, "pdfmail", mail,
	    sizeof(mail)) == -1) {
		mail[0] = '\0';
		goto done;
	}
	if (to_sender) {
		if (pdfmode_password_mail(gw, m, rcpt, pw, pwmail,
		    sizeof(pwmail)) == -1) {
			pwmail[0] = '\0';
			goto done;
		}
		/* One ledger entry per recipient's password mail. */
		xasprintf(&kind, "pdf-password:%s", rcpt);
		pdfmode_relay(gw, m, kind, pwmail, "", m->mail_from, &c,
		    reply, replylen);
		if (c / 100 != 2) {
			*code = c / 100 == 5 ? 451 : c;
			snprintf(reply, replylen, "4.3.0 the PDF password could "
			    "not be sent to the sender");
			goto done;
		}
		log_info("id=%s PDF password for <%s> sent to <%s>", m->id,
		    rcpt, m->mail_from);
	}
	pdfmode_relay(gw, m, "pdf", mail, m->mail_from, rcpt, code, reply,
	    replylen);
	log_info("id=%s PDF for <%s>: %d pages, %d attachments, status %d",
	    m->id, rcpt, info.pages, info.attachments, *code);
done:
	OPENSSL_cleanse(pw, sizeof(pw));
	xfree_secret(&fixed);
	free(kind);
	if (fd != -1)
		close(fd);
	if (pdf[0] != '\0')
		unlink(pdf);
	if (mail[0] != '\0')
		unlink(mail);
	if (pwmail[0] != '\0')
		unlink(pwmail);
}
