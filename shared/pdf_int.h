/*
 * Private to the PDF builder (pdf.c: MIME walk; pdf_layout.c: cairo and
 * pango pages; pdf_html.c: HTML to pango markup; pdf_crypt.c: qpdf
 * attachments and encryption). Callers include pdf.h only.
 */
#ifndef POSTERN_PDF_INT_H
#define POSTERN_PDF_INT_H

#include <stddef.h>
#include <stdio.h>

#include "buf.h"

struct pdf_layout;

/* The unencrypted PDF is at most this big (text only; files come later). */
#define PDF_RENDER_MAX	(256 * 1024 * 1024)

/* A4 portrait in points, with its margins. */
#define PDF_PAGE_W	595.0
#define PDF_PAGE_H	842.0
#define PDF_MARGIN	50.0

struct pdf_layout *pdf_layout_new(void);
/*
 * Draws one block of pango markup, flowing its lines over pages. A block
 * whose markup does not parse is drawn as plain text instead. 0 or -1.
 */
int		 pdf_layout_markup(struct pdf_layout *, const char *markup,
		    double space_after);
/* Starts a new page (unless the current one is still empty). */
void		 pdf_layout_break(struct pdf_layout *);
/*
 * Finishes the document: the PDF bytes into *out (caller frees with
 * buf_free), the page count into *pages. Frees the layout. 0 or -1.
 */
int		 pdf_layout_finish(struct pdf_layout *, struct buf *out,
		    int *pages);
void		 pdf_layout_free(struct pdf_layout *);

/*
 * Appends text to b as pango markup: invalid UTF-8 replaced, controls
 * dropped, & < > " ' escaped. 0, or -1 when b is full.
 */
int		 pdf_markup_text(struct buf *b, const char *s, size_t len);

/*
 * Converts an HTML body to pango markup blocks, handing each to emit.
 * Only text formatting survives: scripts, styles, forms, embedded
 * objects and images (shown as "[image: alt]") never do; links become
 * "text (URL)". At most max bytes of text; *truncated set past it.
 * Returns 0, or -1 when emit failed.
 */
int		 pdf_html_blocks(const char *html, size_t len, size_t max,
		    int (*emit)(void *, const char *markup), void *arg,
		    int *truncated);

/* One file to embed. */
struct pdf_file {
	char		*name;		/* UTF-8 */
	char		*type;		/* e.g. "application/pdf" */
	long long	 len;		/* bytes written (set by pdf_crypt) */
};

/*
 * Adds the files to the PDF cairo drew, encrypts with AES-256 R6 and
 * writes outpath. next() hands out the files one at a time: it fills *f
 * (pdf_crypt_write frees name and type), writes the file's bytes to out
 * and returns 1; 0 (having written nothing) at the end, -1 on failure. The bytes go straight into
 * an unlinked intermediate file next to outpath (cairo's PDF plus an
 * incremental update holding one stream object per file), which qpdf
 * then reads: qpdf reads stream data from that file as it writes, so no
 * attachment is ever held in memory by us, and only once by qpdf.
 */
int		 pdf_crypt_write(const struct buf *pdf,
		    int (*next)(void *, struct pdf_file *, FILE *out),
		    void *arg, const char *user_pw, const char *owner_pw,
		    const char *outpath, char *err, size_t errlen);

#endif
