/*
 * Pages of the PDF builder: cairo's PDF surface written into a bounded
 * buffer, pango laying out each block of markup and the lines flowed over
 * A4 pages. Pango picks each paragraph's direction from its first strong
 * character (Hebrew and Arabic paragraphs run right to left) and falls
 * back through fontconfig to a font that has the glyphs (DejaVu, Noto,
 * Noto CJK).
 *
 * SECURITY: the markup comes from pdf.c and pdf_html.c, which escape
 * every byte of the message; a block that still does not parse is drawn
 * as plain text. Sizes are bounded: the output buffer by PDF_RENDER_MAX,
 * the text by the caller's max_text.
 */
#include <stdlib.h>
#include <string.h>

#include <cairo.h>
#include <cairo-pdf.h>
#include <pango/pangocairo.h>

#include "log.h"
#include "pdf_int.h"
#include "text.h"
#include "xmalloc.h"

#define PDF_FONT	"DejaVu Sans, Noto Sans, Noto Sans CJK SC 10"

struct pdf_layout {
	cairo_surface_t		*surf;
	cairo_t			*cr;
	PangoFontDescription	*font;
	struct buf		 out;
	double			 y;	/* next free line top on this page */
	int			 pages;
	int			 failed;
};

static cairo_status_t
pdf_layout_write(void *arg, const unsigned char *data, unsigned int len)
{
	struct pdf_layout *l = arg;

	if (buf_put(&l->out, data, len) == -1) {
		l->failed = 1;
		return CAIRO_STATUS_WRITE_ERROR;
	}
	return CAIRO_STATUS_SUCCESS;
}

struct pdf_layout *
pdf_layout_new(void)
{
	struct pdf_layout *l = xcalloc(1, sizeof(*l));

	buf_init(&l->out, PDF_RENDER_MAX);
	l->surf = cairo_pdf_surface_create_for_stream(pdf_layout_write, l,
	    PDF_PAGE_W, PDF_PAGE_H);
	if (cairo_surface_status(l->surf) != CAIRO_STATUS_SUCCESS) {
		cairo_surface_destroy(l->surf);
		buf_free(&l->out);
		free(l);
		return NULL;
	}
	cairo_pdf_surface_set_metadata(l->surf, CAIRO_PDF_METADATA_CREATOR,
	    "Postern");
	l->cr = cairo_create(l->surf);
	l->font = pango_font_description_from_string(PDF_FONT);
	l->y = PDF_MARGIN;
	l->pages = 1;
	return l;
}

void
pdf_layout_break(struct pdf_layout *l)
{
	if (l->y <= PDF_MARGIN)
		return;
	cairo_show_page(l->cr);
	l->pages++;
	l->y = PDF_MARGIN;
}

static PangoLayout *
pdf_layout_make(struct pdf_layout *l, const char *markup)
{
	PangoLayout *pl = pango_cairo_create_layout(l->cr);
	struct buf plain;
	char *text = NULL;

	pango_layout_set_font_description(pl, l->font);
	pango_layout_set_width(pl, (int)((PDF_PAGE_W - 2 * PDF_MARGIN) *
	    PANGO_SCALE));
	pango_layout_set_wrap(pl, PANGO_WRAP_WORD_CHAR);
	pango_layout_set_auto_dir(pl, TRUE);
	if (pango_parse_markup(markup, -1, 0, NULL, &text, NULL, NULL)) {
		g_free(text);
		pango_layout_set_markup(pl, markup, -1);
		return pl;
	}
	/* Not markup after all: show it as it is, cleaned. */
	buf_init(&plain, strlen(markup) * 3 + 16);
	(void)text_escape(&plain, markup, strlen(markup), 0);
	pango_layout_set_text(pl, plain.data ? plain.data : "", -1);
	buf_free(&plain);
	return pl;
}

int
pdf_layout_markup(struct pdf_layout *l, const char *markup, double space)
{
	const double bottom = PDF_PAGE_H - PDF_MARGIN;
	PangoLayout *pl;
	PangoLayoutIter *it;
	PangoRectangle r;
	double base, top, h, end = 0;

	if (l->failed)
		return -1;
	pl = pdf_layout_make(l, markup);
	it = pango_layout_get_iter(pl);
	base = l->y;	/* page y of the layout's y = 0 */
	do {
		PangoLayoutLine *line = pango_layout_iter_get_line_readonly(it);

		pango_layout_iter_get_line_extents(it, NULL, &r);
		top = (double)r.y / PANGO_SCALE;
		h = (double)r.height / PANGO_SCALE;
		if (base + top + h > bottom && base + top > PDF_MARGIN) {
			cairo_show_page(l->cr);
			l->pages++;
			base = PDF_MARGIN - top;
		}
		cairo_move_to(l->cr, PDF_MARGIN + (double)r.x / PANGO_SCALE,
		    base + (double)pango_layout_iter_get_baseline(it) /
		    PANGO_SCALE);
		pango_cairo_show_layout_line(l->cr, line);
		end = base + top + h;
	} while (pango_layout_iter_next_line(it));
	pango_layout_iter_free(it);
	g_object_unref(pl);
	l->y = end + space;
	if (cairo_status(l->cr) != CAIRO_STATUS_SUCCESS)
		l->failed = 1;
	return l->failed ? -1 : 0;
}

int
pdf_layout_finish(struct pdf_layout *l, struct buf *out, int *pages)
{
	int rc;

	cairo_destroy(l->cr);
	l->cr = NULL;
	cairo_surface_finish(l->surf);
	rc = l->failed || cairo_surface_status(l->surf) !=
	    CAIRO_STATUS_SUCCESS ? -1 : 0;
	cairo_surface_destroy(l->surf);
	l->surf = NULL;
	*pages = l->pages;
	*out = l->out;
	memset(&l->out, 0, sizeof(l->out));
	pango_font_description_free(l->font);
	free(l);
	if (rc == -1)
		buf_free(out);
	return rc;
}

void
pdf_layout_free(struct pdf_layout *l)
{
	if (l == NULL)
		return;
	if (l->cr != NULL)
		cairo_destroy(l->cr);
	if (l->surf != NULL) {
		cairo_surface_finish(l->surf);
		cairo_surface_destroy(l->surf);
	}
	pango_font_description_free(l->font);
	buf_free(&l->out);
	free(l);
}

int
pdf_markup_text(struct buf *b, const char *s, size_t len)
{
	return text_escape(b, s, len, TEXT_ESC_HTML);
}
