/*
 * The message-to-PDF builder both nodes use: the portal for PDF Messenger
 * with a one-time password, internal-gw for password PDFs. A MIME message
 * becomes a PDF with a header block (From, To, Cc, Date, Subject), the
 * body as styled text (the text part, or the HTML part reduced to text
 * formatting: paragraphs, lists, bold, italic, links shown as text and
 * URL), a list of attachments on the last page with every attachment
 * embedded as a PDF file attachment, and an optional "Reply securely"
 * link. Nothing remote, no JavaScript, no actions, no forms: the PDF holds
 * only text drawn by cairo/pango and embedded files. It is encrypted with
 * AES-256 (security handler revision 6, PDF 2.0) by qpdf: printing
 * allowed, modifying not.
 *
 * Blocking and CPU bound: call it from a worker thread, never from an
 * event loop. Thread safe (each call has its own cairo, pango and qpdf
 * state). g_mime_init() must have run.
 */
#ifndef POSTERN_PDF_H
#define POSTERN_PDF_H

#include <stddef.h>

/* Defaults of the bounds below. */
#define PDF_TEXT_MAX	(2 * 1024 * 1024)	/* body text drawn */
#define PDF_ATTACH_MAX	(64 * 1024 * 1024)	/* embedded, in total */

struct pdf_opts {
	const char	*password;	/* user password, required */
	const char	*owner_password; /* NULL: a random one */
	const char	*reply_url;	/* "Reply securely" link, or NULL */
	const char	*reply_label;	/* NULL: "Reply securely" */
	size_t		 max_text;	/* 0: PDF_TEXT_MAX */
	size_t		 max_attach;	/* 0: PDF_ATTACH_MAX */
};

/* What pdf_build() found, for logs and tests. */
struct pdf_info {
	int	 pages;
	int	 attachments;		/* embedded */
	int	 skipped;		/* attachments past max_attach */
	int	 raw;			/* unreadable MIME drawn as raw text */
	int	 truncated;		/* body text cut at max_text */
};

/*
 * Reads the message from fd (from its current offset; fd stays open) and
 * writes the encrypted PDF to outpath (created or replaced). 0, or -1
 * with a reason in err. A message GMime cannot parse is drawn as raw text,
 * not refused; -1 means the environment failed (memory, disk, fonts).
 */
int	 pdf_build(int fd, const struct pdf_opts *, const char *outpath,
	    struct pdf_info *, char *err, size_t errlen);

#endif
