/*
 * PDF Messenger with a one-time password, in the store: one row per
 * PDF-OTP message and recipient (table portal_pdf). While the message's
 * content exists (msg_id set) the row is "render" (waiting for its PDF),
 * "queued" (the PDF mail is in the outbox) or "failed"; once the relay
 * accepted the PDF mail it is "sent", the message row and file are gone
 * and the row keeps only what the password page and the reply page need:
 * the password, the sender, the subject, the dates, and the address a
 * reply goes to with the original's Message-ID and References. Rows go
 * after pdf-otp-keep-days.
 */
#ifndef PORTAL_STORE_PDF_H
#define PORTAL_STORE_PDF_H

#include <stdint.h>

#include "addr.h"
#include "store/store.h"

#define STORE_PDF_TOKEN_LEN	24	/* hex: 96 random bits */

struct store_pdf {
	int64_t		 id;
	char		 token[STORE_PDF_TOKEN_LEN + 1];
	char		 owner[2 * ADDR_MAX + 2];
	int64_t		 msg_id;	/* 0 once the content is gone */
	char		*state;
	char		*password;	/* NULL until rendered */
	char		*mail_from;
	char		*hdr_from;
	char		*subject;
	char		*msg_path;	/* the message file while it exists */
	char		*pdf_mail;	/* the outbox file */
	char		*reply_to;	/* Reply-To, else From; NULL: none */
	char		*message_id;	/* the original's, without <> */
	char		*refs;		/* its References field, raw */
	int64_t		 date;
	int64_t		 created;
	int		 attempts;
};

/* Rows for PDF-OTP messages that have none yet; the count or -1. */
int	 store_pdf_adopt(struct store *, int64_t now);
/* The render job due first: 0, STORE_NOTFOUND or -1. */
int	 store_pdf_next(struct store *, int64_t now, struct store_pdf *);
/*
 * In one transaction: the row becomes "queued" with its password, the
 * PDF mail at path and what a reply needs (p's reply_to, message_id,
 * refs; each may be NULL), and the mail is queued in the outbox for
 * p's owner.
 */
int	 store_pdf_queue(struct store *, const struct store_pdf *p,
	    const char *password, const char *path);
/* Rendering failed: try again at next_attempt. */
int	 store_pdf_retry(struct store *, int64_t id, int64_t next_attempt);
/*
 * Given up: the row becomes "failed" and the report at dsn (may be NULL:
 * null sender) is queued for rcpt in the same transaction.
 */
int	 store_pdf_fail(struct store *, int64_t id, const char *dsn,
	    const char *rcpt);
/* The row whose PDF mail is the outbox file path: 0, STORE_NOTFOUND. */
int	 store_pdf_by_mail(struct store *, const char *path,
	    struct store_pdf *);
/*
 * The PDF mail was accepted: "sent"; the message row and its file are
 * deleted and only what the password page needs stays.
 */
int	 store_pdf_sent(struct store *, int64_t id);
/* The owner's row with token: 0, STORE_NOTFOUND (also another's), -1. */
int	 store_pdf_get(struct store *, const char *owner, const char *token,
	    struct store_pdf *);
/* The owner's rows, newest first, at most limit; count or -1. */
int	 store_pdf_list(struct store *, const char *owner,
	    struct store_pdf *out, int limit);
/* Removes the rows created before cutoff that hold no content. */
int	 store_pdf_expire(struct store *, int64_t cutoff);
void	 store_pdf_free(struct store_pdf *);

#endif
