/*
 * internal-gw's password PDFs (pdf-encryption-enabled): for a recipient
 * without a certificate, the message becomes a PDF encrypted with
 * pdf-password, or with a password made for this message and recipient
 * and mailed to the sender (pdf-password-send-to-originator), and only the
 * mail carrying that PDF reaches the recipient. Built on the SMTP
 * worker's thread by the shared PDF builder.
 */
#ifndef POSTERN_PDFMODE_H
#define POSTERN_PDFMODE_H

#include <stddef.h>

struct gateway;
struct header;
struct props;

struct pdfmode_msg {
	const char		*id;		/* log id */
	const char		*mail_from;
	const char		*path;		/* the message as it may leave */
	const struct header	*hdr;		/* its header */
	const char		*subject;	/* decoded, may be NULL */
	const char		*msgkey;	/* the relay ledger's key */
	int			 smtputf8;
};

/*
 * Builds and relays the PDF mail for rcpt (after the password mail to
 * the sender, when that mode applies). *code and reply get the answer
 * for rcpt: 2xx when the PDF mail (and the password mail) were
 * accepted, 4xx/5xx otherwise. Never sends the message in clear.
 */
void	 pdfmode_send(struct gateway *, struct props *,
	    const struct pdfmode_msg *, const char *rcpt, int *code,
	    char *reply, size_t replylen);

#endif
