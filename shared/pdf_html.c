/*
 * HTML bodies for the PDF builder: gumbo parses the HTML5, and a walk
 * keeps only text and its formatting (the kind of HTML Webmail shows:
 * paragraphs, headings, lists, quotes, bold, italic, underline, code),
 * written as pango markup. Links become "text (URL)" in plain text, an
 * image "[image: alt]". Everything else is dropped with its content
 * (script, style, forms, embedded objects, SVG) or unwrapped (unknown
 * elements keep their text).
 *
 * SECURITY: the HTML is hostile. Gumbo bounds nothing itself, so the
 * walk is depth-limited (PDF_HTML_DEPTH), every text
 * and attribute value goes through pdf_markup_text(), the output of each
 * block is bounded by the caller's max and nothing from the document ever
 * becomes markup of ours. Nothing is fetched.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <gumbo.h>

#include "pdf_int.h"
#include "xmalloc.h"

#define PDF_HTML_DEPTH	128	/* deeper elements: their text only */
#define PDF_HTML_BLOCK	(32 * 1024)	/* a block is flushed past this */
#define PDF_HTML_OPEN	64	/* formatting tags kept open at once */

struct pdf_html {
	struct buf	 cur;
	const char	*open[PDF_HTML_OPEN];	/* closing order: reversed */
	const char	*close[PDF_HTML_OPEN];
	int		 nopen;
	int		 pre;		/* inside <pre> */
	int		 space;		/* last output was white space */
	int		 list[16];	/* item counter per list; -1 unordered */
	int		 nlist;
	size_t		 text, max;
	int		 truncated, failed;
	int		(*emit)(void *, const char *);
	void		*arg;
};

/* Pango markup for each kept formatting element. */
static const struct {
	GumboTag	 tag;
	const char	*open, *close;
} pdf_html_inline[] = {
	{ GUMBO_TAG_B, "<b>", "</b>" },
	{ GUMBO_TAG_STRONG, "<b>", "</b>" },
	{ GUMBO_TAG_I, "<i>", "</i>" },
	{ GUMBO_TAG_EM, "<i>", "</i>" },
	{ GUMBO_TAG_CITE, "<i>", "</i>" },
	{ GUMBO_TAG_U, "<u>", "</u>" },
	{ GUMBO_TAG_INS, "<u>", "</u>" },
	{ GUMBO_TAG_S, "<s>", "</s>" },
	{ GUMBO_TAG_STRIKE, "<s>", "</s>" },
	{ GUMBO_TAG_DEL, "<s>", "</s>" },
	{ GUMBO_TAG_CODE, "<tt>", "</tt>" },
	{ GUMBO_TAG_TT, "<tt>", "</tt>" },
	{ GUMBO_TAG_KBD, "<tt>", "</tt>" },
	{ GUMBO_TAG_SAMP, "<tt>", "</tt>" },
	{ GUMBO_TAG_SUB, "<sub>", "</sub>" },
	{ GUMBO_TAG_SUP, "<sup>", "</sup>" },
	{ GUMBO_TAG_SMALL, "<small>", "</small>" },
	{ GUMBO_TAG_BIG, "<big>", "</big>" },
};

static int
pdf_html_dropped(GumboTag t)
{
	switch (t) {
	case GUMBO_TAG_HEAD: case GUMBO_TAG_TITLE: case GUMBO_TAG_SCRIPT:
	case GUMBO_TAG_STYLE: case GUMBO_TAG_TEMPLATE: case GUMBO_TAG_NOSCRIPT:
	case GUMBO_TAG_IFRAME: case GUMBO_TAG_OBJECT: case GUMBO_TAG_EMBED:
	case GUMBO_TAG_APPLET: case GUMBO_TAG_SVG: case GUMBO_TAG_MATH:
	case GUMBO_TAG_SELECT: case GUMBO_TAG_TEXTAREA: case GUMBO_TAG_BUTTON:
	case GUMBO_TAG_INPUT: case GUMBO_TAG_CANVAS: case GUMBO_TAG_AUDIO:
	case GUMBO_TAG_VIDEO: case GUMBO_TAG_FRAMESET: case GUMBO_TAG_FRAME:
	case GUMBO_TAG_META: case GUMBO_TAG_LINK: case GUMBO_TAG_BASE:
		return 1;
	default:
		return 0;
	}
}

static int
pdf_html_block(GumboTag t)
{
	switch (t) {
	case GUMBO_TAG_P: case GUMBO_TAG_DIV: case GUMBO_TAG_H1:
	case GUMBO_TAG_H2: case GUMBO_TAG_H3: case GUMBO_TAG_H4:
	case GUMBO_TAG_H5: case GUMBO_TAG_H6: case GUMBO_TAG_UL:
	case GUMBO_TAG_OL: case GUMBO_TAG_LI: case GUMBO_TAG_BLOCKQUOTE:
	case GUMBO_TAG_PRE: case GUMBO_TAG_TABLE: case GUMBO_TAG_TR:
	case GUMBO_TAG_HR: case GUMBO_TAG_SECTION: case GUMBO_TAG_ARTICLE:
	case GUMBO_TAG_HEADER: case GUMBO_TAG_FOOTER: case GUMBO_TAG_ADDRESS:
	case GUMBO_TAG_DL: case GUMBO_TAG_DT: case GUMBO_TAG_DD:
	case GUMBO_TAG_FORM: case GUMBO_TAG_FIELDSET: case GUMBO_TAG_NAV:
	case GUMBO_TAG_ASIDE: case GUMBO_TAG_MAIN: case GUMBO_TAG_FIGURE:
	case GUMBO_TAG_CENTER: case GUMBO_TAG_CAPTION:
		return 1;
	default:
		return 0;
	}
}

static void
pdf_html_put(struct pdf_html *h, const char *s)
{
	if (buf_puts(&h->cur, s) == -1)
		h->truncated = 1;
}

/* Ends the current block: open formatting closed, emitted, reopened. */
static void
pdf_html_flush(struct pdf_html *h)
{
	char *s;
	size_t i;

	for (i = 0; i < h->cur.len; i++)
		if (h->cur.data[i] != ' ' && h->cur.data[i] != '\n')
			break;
	if (h->cur.len > 0 && i < h->cur.len) {
		for (int k = h->nopen - 1; k >= 0; k--)
			(void)buf_puts(&h->cur, h->close[k]);
		s = buf_finish(&h->cur);
		if (!h->failed && h->emit(h->arg, s) == -1)
			h->failed = 1;
		free(s);
	}
	buf_free(&h->cur);
	for (int k = 0; k < h->nopen; k++)
		pdf_html_put(h, h->open[k]);
	h->space = 1;
}

static void
pdf_html_text(struct pdf_html *h, const char *s)
{
	const char *ws = " \t\r\n\f";
	size_t len = strlen(s), n;

	if (h->text >= h->max) {
		h->truncated = 1;
		return;
	}
	if (len > h->max - h->text) {
		len = h->max - h->text;
		while (len > 0 && ((unsigned char)s[len] & 0xc0) == 0x80)
			len--;
		h->truncated = 1;
	}
	h->text += len;
	/* Word by word (white space collapsed outside <pre>), in pieces. */
	while (len > 0) {
		if (strchr(ws, *s) != NULL) {
			if (h->pre) {
				if (pdf_markup_text(&h->cur, s, 1) == -1)
					h->truncated = 1;
			} else if (!h->space)
				pdf_html_put(h, " ");
			h->space = 1;
			s++;
			len--;
			continue;
		}
		for (n = 0; n < len && n < 4096 && strchr(ws, s[n]) == NULL;
		    n++)
			;
		if (n < len && strchr(ws, s[n]) == NULL)
			while (n > 1 && ((unsigned char)s[n] & 0xc0) == 0x80)
				n--;
		if (pdf_markup_text(&h->cur, s, n) == -1)
			h->truncated = 1;
		h->space = 0;
		s += n;
		len -= n;
		if (h->cur.len > PDF_HTML_BLOCK)
			pdf_html_flush(h);
	}
}

static const char *
pdf_html_attr(GumboElement *e, const char *name)
{
	GumboAttribute *a = gumbo_get_attribute(&e->attributes, name);

	return a != NULL ? a->value : NULL;
}

static void pdf_html_walk(struct pdf_html *, GumboNode *, int);

static void
pdf_html_children(struct pdf_html *h, GumboElement *e, int depth)
{
	for (unsigned int i = 0; i < e->children.length && !h->failed; i++)
		pdf_html_walk(h, e->children.data[i], depth + 1);
}

/* The text of a link, then its target when it says something else. */
static void
pdf_html_link(struct pdf_html *h, GumboNode *n, int depth)
{
	const char *href = pdf_html_attr(&n->v.element, "href");
	size_t before = h->text;

	pdf_html_children(h, &n->v.element, depth);
	if (href == NULL || (strncasecmp(href, "http:", 5) != 0 &&
	    strncasecmp(href, "https:", 6) != 0 &&
	    strncasecmp(href, "mailto:", 7) != 0))
		return;
	if (h->text > before && h->cur.len >= strlen(href) &&
	    strstr(h->cur.data, href) != NULL)
		return;		/* the text already shows it */
	pdf_html_put(h, " (");
	pdf_html_text(h, href);
	pdf_html_put(h, ")");
}

static void
pdf_html_element(struct pdf_html *h, GumboNode *n, int depth)
{
	GumboElement *e = &n->v.element;
	GumboTag t = e->tag;
	const char *alt, *open = NULL, *close = NULL;
	char item[32];
	int block = pdf_html_block(t), pushed = 0;

	if (pdf_html_dropped(t))
		return;
	if (t == GUMBO_TAG_BR) {
		pdf_html_put(h, "\n");
		h->space = 1;
		return;
	}
	if (t == GUMBO_TAG_IMG) {
		if ((alt = pdf_html_attr(e, "alt")) != NULL && *alt != '\0') {
			pdf_html_put(h, "[image: ");
			pdf_html_text(h, alt);
			pdf_html_put(h, "]");
		}
		return;
	}
	if (t == GUMBO_TAG_A) {
		pdf_html_link(h, n, depth);
		return;
	}
	if (block)
		pdf_html_flush(h);
	for (size_t j = 0; j < sizeof(pdf_html_inline) /
	    sizeof(pdf_html_inline[0]); j++)
		if (pdf_html_inline[j].tag == t) {
			open = pdf_html_inline[j].open;
			close = pdf_html_inline[j].close;
		}
	if (t >= GUMBO_TAG_H1 && t <= GUMBO_TAG_H6) {
		open = t <= GUMBO_TAG_H2 ? "<span size=\"x-large\" "
		    "weight=\"bold\">" : "<span weight=\"bold\">";
		close = "</span>";
	}
	if (open != NULL && h->nopen < PDF_HTML_OPEN) {
		h->open[h->nopen] = open;
		h->close[h->nopen++] = close;
		pdf_html_put(h, open);
		pushed = 1;
	}
	switch (t) {
	case GUMBO_TAG_UL:
	case GUMBO_TAG_OL:
		if (h->nlist < (int)(sizeof(h->list) / sizeof(h->list[0])))
			h->list[h->nlist] = t == GUMBO_TAG_OL ? 1 : -1;
		h->nlist++;
		break;
	case GUMBO_TAG_LI:
		for (int k = 1; k < h->nlist && k < 8; k++)
			pdf_html_put(h, "    ");
		if (h->nlist > 0 && h->nlist <= (int)(sizeof(h->list) /
		    sizeof(h->list[0])) && h->list[h->nlist - 1] > 0)
			snprintf(item, sizeof(item), "%d. ",
			    h->list[h->nlist - 1]++);
		else
			snprintf(item, sizeof(item), "\xe2\x80\xa2 ");
		pdf_html_put(h, item);
		break;
	case GUMBO_TAG_BLOCKQUOTE:
		pdf_html_put(h, "\xe2\x94\x82 ");
		break;
	case GUMBO_TAG_PRE:
		h->pre++;
		break;
	case GUMBO_TAG_HR:
		pdf_html_put(h, "\xe2\x94\x80\xe2\x94\x80\xe2\x94\x80");
		break;
	case GUMBO_TAG_TD:
	case GUMBO_TAG_TH:
		if (!h->space)
			pdf_html_put(h, "  ");
		break;
	default:
		break;
	}
	if (depth < PDF_HTML_DEPTH)
		pdf_html_children(h, e, depth);
	if (t == GUMBO_TAG_PRE)
		h->pre--;
	if (t == GUMBO_TAG_UL || t == GUMBO_TAG_OL)
		h->nlist--;
	if (pushed) {
		pdf_html_put(h, close);
		h->nopen--;
	}
	if (block)
		pdf_html_flush(h);
}

static void
pdf_html_walk(struct pdf_html *h, GumboNode *n, int depth)
{
	switch (n->type) {
	case GUMBO_NODE_DOCUMENT:
		for (unsigned int i = 0; i < n->v.document.children.length;
		    i++)
			pdf_html_walk(h, n->v.document.children.data[i],
			    depth + 1);
		break;
	case GUMBO_NODE_ELEMENT:
	case GUMBO_NODE_TEMPLATE:
		pdf_html_element(h, n, depth);
		break;
	case GUMBO_NODE_TEXT:
	case GUMBO_NODE_CDATA:
	case GUMBO_NODE_WHITESPACE:
		pdf_html_text(h, n->v.text.text);
		break;
	default:
		break;	/* comments */
	}
}

int
pdf_html_blocks(const char *html, size_t len, size_t max,
    int (*emit)(void *, const char *), void *arg, int *truncated)
{
	GumboOutput *g;
	struct pdf_html h;

	memset(&h, 0, sizeof(h));
	buf_init(&h.cur, PDF_HTML_BLOCK * 2);
	h.max = max;
	h.emit = emit;
	h.arg = arg;
	h.space = 1;
	g = gumbo_parse_with_options(&kGumboDefaultOptions, html, len);
	if (g == NULL)
		return -1;
	pdf_html_walk(&h, g->document, 0);
	h.nopen = 0;
	pdf_html_flush(&h);
	gumbo_destroy_output(&kGumboDefaultOptions, g);
	buf_free(&h.cur);
	if (h.truncated)
		*truncated = 1;
	return h.failed ? -1 : 0;
}
