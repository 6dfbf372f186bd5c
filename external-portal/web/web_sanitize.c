/*
 * The HTML mail sanitiser (see web_sanitize.h). Its input is hostile by
 * definition: any sender on the Internet writes it. Gumbo builds the same
 * tree a browser would; this file walks that tree without recursion (so
 * nesting depth cannot exhaust the stack) and writes only what its tables
 * allow. Text and attribute values are never copied raw.
 *
 * SECURITY: input past WEB_SANITIZE_MAX_INPUT or a parse cost estimate
 * past WEB_SANITIZE_MAX_COST is refused before gumbo sees it; elements
 * deeper than WEB_SANITIZE_MAX_DEPTH are unwrapped; style attributes are
 * bounded (WEB_SANITIZE_MAX_STYLE, WEB_SANITIZE_MAX_DECLS) and filtered
 * by property and value; URLs are kept only for allowed schemes. Elements,
 * attributes and CSS not on an allow-list are dropped, and every text and
 * attribute value goes out through the shared escaper into a bounded
 * buffer.
 */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <gumbo.h>

#include "xmalloc.h"
#include "web/web_text.h"
#include "web/web_sanitize.h"

#define WEB_SANITIZE_MAX_DEPTH	 256	/* deeper elements are unwrapped */
#define WEB_SANITIZE_MAX_STYLE	 8192	/* longer style attributes dropped */
#define WEB_SANITIZE_MAX_DECLS	 64

enum web_sanitize_action {
	WEB_SANITIZE_UNWRAP,	/* drop the tag, keep its children */
	WEB_SANITIZE_KEEP,
	WEB_SANITIZE_DROP,	/* drop the element and everything inside */
};

static enum web_sanitize_action
web_sanitize_action(GumboTag tag)
{
	switch (tag) {
	case GUMBO_TAG_A: case GUMBO_TAG_ABBR: case GUMBO_TAG_ACRONYM:
	case GUMBO_TAG_ADDRESS: case GUMBO_TAG_ARTICLE: case GUMBO_TAG_ASIDE:
	case GUMBO_TAG_B: case GUMBO_TAG_BDI: case GUMBO_TAG_BDO:
	case GUMBO_TAG_BIG: case GUMBO_TAG_BLOCKQUOTE: case GUMBO_TAG_BR:
	case GUMBO_TAG_CAPTION: case GUMBO_TAG_CENTER: case GUMBO_TAG_CITE:
	case GUMBO_TAG_CODE: case GUMBO_TAG_COL: case GUMBO_TAG_COLGROUP:
	case GUMBO_TAG_DD: case GUMBO_TAG_DEL: case GUMBO_TAG_DFN:
	case GUMBO_TAG_DIV: case GUMBO_TAG_DL: case GUMBO_TAG_DT:
	case GUMBO_TAG_EM: case GUMBO_TAG_FIGCAPTION: case GUMBO_TAG_FIGURE:
	case GUMBO_TAG_FONT: case GUMBO_TAG_FOOTER: case GUMBO_TAG_H1:
	case GUMBO_TAG_H2: case GUMBO_TAG_H3: case GUMBO_TAG_H4:
	case GUMBO_TAG_H5: case GUMBO_TAG_H6: case GUMBO_TAG_HEADER:
	case GUMBO_TAG_HR: case GUMBO_TAG_I: case GUMBO_TAG_IMG:
	case GUMBO_TAG_INS: case GUMBO_TAG_KBD: case GUMBO_TAG_LI:
	case GUMBO_TAG_MAIN: case GUMBO_TAG_MARK: case GUMBO_TAG_NAV:
	case GUMBO_TAG_OL: case GUMBO_TAG_P: case GUMBO_TAG_PRE:
	case GUMBO_TAG_Q: case GUMBO_TAG_S: case GUMBO_TAG_SAMP:
	case GUMBO_TAG_SECTION: case GUMBO_TAG_SMALL: case GUMBO_TAG_SPAN:
	case GUMBO_TAG_STRIKE: case GUMBO_TAG_STRONG: case GUMBO_TAG_SUB:
	case GUMBO_TAG_SUP: case GUMBO_TAG_TABLE: case GUMBO_TAG_TBODY:
	case GUMBO_TAG_TD: case GUMBO_TAG_TFOOT: case GUMBO_TAG_TH:
	case GUMBO_TAG_THEAD: case GUMBO_TAG_TR: case GUMBO_TAG_TT:
	case GUMBO_TAG_U: case GUMBO_TAG_UL: case GUMBO_TAG_VAR:
	case GUMBO_TAG_WBR:
		return WEB_SANITIZE_KEEP;
	case GUMBO_TAG_SCRIPT: case GUMBO_TAG_STYLE: case GUMBO_TAG_IFRAME:
	case GUMBO_TAG_FRAME: case GUMBO_TAG_FRAMESET: case GUMBO_TAG_NOFRAMES:
	case GUMBO_TAG_OBJECT: case GUMBO_TAG_EMBED: case GUMBO_TAG_APPLET:
	case GUMBO_TAG_PARAM: case GUMBO_TAG_NOSCRIPT: case GUMBO_TAG_NOEMBED:
	case GUMBO_TAG_TEMPLATE: case GUMBO_TAG_SVG: case GUMBO_TAG_MATH:
	case GUMBO_TAG_HEAD: case GUMBO_TAG_TITLE: case GUMBO_TAG_META:
	case GUMBO_TAG_LINK: case GUMBO_TAG_BASE: case GUMBO_TAG_BASEFONT:
	case GUMBO_TAG_BGSOUND: case GUMBO_TAG_INPUT: case GUMBO_TAG_SELECT:
	case GUMBO_TAG_OPTION: case GUMBO_TAG_OPTGROUP:
	case GUMBO_TAG_TEXTAREA: case GUMBO_TAG_DATALIST:
	case GUMBO_TAG_KEYGEN: case GUMBO_TAG_AUDIO: case GUMBO_TAG_VIDEO:
	case GUMBO_TAG_SOURCE: case GUMBO_TAG_TRACK: case GUMBO_TAG_CANVAS:
	case GUMBO_TAG_MAP: case GUMBO_TAG_AREA: case GUMBO_TAG_XMP:
	case GUMBO_TAG_PLAINTEXT: case GUMBO_TAG_LISTING: case GUMBO_TAG_IMAGE:
	case GUMBO_TAG_ISINDEX: case GUMBO_TAG_MENUITEM:
		return WEB_SANITIZE_DROP;
	default:
		/* html, body, form, button, label, unknown tags, ... */
		return WEB_SANITIZE_UNWRAP;
	}
}

static int
web_sanitize_in(const char *name, const char *const *list)
{
	for (; *list != NULL; list++)
		if (strcmp(name, *list) == 0)
			return 1;
	return 0;
}

/* Plain attributes (no URL, no CSS) allowed on tag; values are escaped. */
static int
web_sanitize_attr_ok(GumboTag tag, const char *name)
{
	static const char *const global[] = { "align", "valign", "dir",
	    "lang", "title", "width", "height", "bgcolor", NULL };
	static const char *const img[] = { "alt", "border", "hspace",
	    "vspace", NULL };
	static const char *const font[] = { "face", "size", "color", NULL };
	static const char *const table[] = { "border", "cellpadding",
	    "cellspacing", "summary", "frame", "rules", NULL };
	static const char *const cell[] = { "colspan", "rowspan", "nowrap",
	    "scope", "headers", "abbr", NULL };
	static const char *const col[] = { "span", NULL };
	static const char *const ol[] = { "start", "type", "reversed", NULL };
	static const char *const ul[] = { "type", NULL };
	static const char *const li[] = { "type", "value", NULL };
	static const char *const hr[] = { "size", "noshade", "color", NULL };
	static const char *const edit[] = { "datetime", NULL };

	if (web_sanitize_in(name, global))
		return 1;
	switch (tag) {
	case GUMBO_TAG_IMG:	return web_sanitize_in(name, img);
	case GUMBO_TAG_FONT:	return web_sanitize_in(name, font);
	case GUMBO_TAG_TABLE:	return web_sanitize_in(name, table);
	case GUMBO_TAG_TD:
	case GUMBO_TAG_TH:	return web_sanitize_in(name, cell);
	case GUMBO_TAG_COL:
	case GUMBO_TAG_COLGROUP: return web_sanitize_in(name, col);
	case GUMBO_TAG_OL:	return web_sanitize_in(name, ol);
	case GUMBO_TAG_UL:	return web_sanitize_in(name, ul);
	case GUMBO_TAG_LI:	return web_sanitize_in(name, li);
	case GUMBO_TAG_HR:	return web_sanitize_in(name, hr);
	case GUMBO_TAG_DEL:
	case GUMBO_TAG_INS:	return web_sanitize_in(name, edit);
	default:		return 0;
	}
}

enum web_sanitize_url {
	WEB_SANITIZE_URL_BAD,
	WEB_SANITIZE_URL_WEB,		/* http, https */
	WEB_SANITIZE_URL_MAILTO,
	WEB_SANITIZE_URL_CID,
	WEB_SANITIZE_URL_DATA_IMAGE,
};

/*
 * Normalises a URL the way a browser reads it (leading/trailing spaces and
 * controls trimmed, tab/CR/LF removed anywhere) into a new string, and
 * classifies its scheme. Relative URLs are BAD: they would resolve against
 * the portal itself.
 */
static enum web_sanitize_url
web_sanitize_url(const char *in, char **out)
{
	static const char *const images[] = { "data:image/png;base64,",
	    "data:image/gif;base64,", "data:image/jpeg;base64,",
	    "data:image/webp;base64,", NULL };
	size_t	 len, i, j;
	char	*u;

	*out = NULL;
	while (*in != '\0' && (unsigned char)*in <= 0x20)
		in++;
	len = strlen(in);
	while (len > 0 && (unsigned char)in[len - 1] <= 0x20)
		len--;
	u = xmalloc(len + 1);
	for (i = j = 0; i < len; i++) {
		unsigned char c = (unsigned char)in[i];

		if (c == '\t' || c == '\n' || c == '\r')
			continue;
		if (c < 0x20 || c == 0x7f) {
			free(u);
			return WEB_SANITIZE_URL_BAD;
		}
		u[j++] = (char)c;
	}
	u[j] = '\0';
	*out = u;
	if (strncasecmp(u, "http://", 7) == 0 && u[7] != '\0')
		return WEB_SANITIZE_URL_WEB;
	if (strncasecmp(u, "https://", 8) == 0 && u[8] != '\0')
		return WEB_SANITIZE_URL_WEB;
	if (strncasecmp(u, "mailto:", 7) == 0)
		return WEB_SANITIZE_URL_MAILTO;
	if (strncasecmp(u, "cid:", 4) == 0 && u[4] != '\0')
		return WEB_SANITIZE_URL_CID;
	for (i = 0; images[i] != NULL; i++) {
		size_t n = strlen(images[i]);

		if (strncasecmp(u, images[i], n) != 0)
			continue;
		/* Only base64 characters: nothing that could end the URL. */
		for (j = n; u[j] != '\0'; j++)
			if (!isalnum((unsigned char)u[j]) &&
			    strchr("+/= ", u[j]) == NULL)
				break;
		if (u[j] == '\0')
			return WEB_SANITIZE_URL_DATA_IMAGE;
	}
	xfree(out);
	return WEB_SANITIZE_URL_BAD;
}

static int
web_sanitize_css_prop_ok(const char *p)
{
	static const char *const props[] = { "color", "background",
	    "background-color", "border", "margin", "padding", "font",
	    "font-family", "font-size", "font-style", "font-weight",
	    "font-variant", "text-align", "text-decoration", "text-indent",
	    "text-transform", "line-height", "letter-spacing", "word-spacing",
	    "white-space", "vertical-align", "width", "height", "max-width",
	    "min-width", "max-height", "min-height", "display", "visibility",
	    "list-style-type", "list-style-position", "border-collapse",
	    "border-spacing", "table-layout", "direction", "float", "clear",
	    "overflow", "word-wrap", "word-break", "overflow-wrap",
	    "text-overflow", "caption-side", "empty-cells", "opacity",
	    "outline", "box-sizing", NULL };
	static const char *const prefixes[] = { "border-", "margin-",
	    "padding-", NULL };
	size_t	 i;

	for (i = 0; p[i] != '\0'; i++)
		if (!((p[i] >= 'a' && p[i] <= 'z') || p[i] == '-'))
			return 0;
	if (i == 0)
		return 0;
	if (web_sanitize_in(p, props))
		return 1;
	for (i = 0; prefixes[i] != NULL; i++)
		if (strncmp(p, prefixes[i], strlen(prefixes[i])) == 0 &&
		    strstr(p, "image") == NULL)
			return 1;
	return 0;
}

/* A declaration value without anything that could load or run. */
static int
web_sanitize_css_value_ok(const char *v)
{
	static const char *const bad[] = { "url", "expression", "script",
	    "behavior", "binding", "import", "image", "/*", "*/", "attr",
	    "var(", "env(", "element", NULL };
	static const char *const funcs[] = { "rgb", "rgba", "hsl", "hsla",
	    NULL };
	char	 lower[WEB_SANITIZE_MAX_STYLE + 1], quote = 0;
	size_t	 i, n = strlen(v);
	int	 depth = 0;

	if (n == 0 || n > WEB_SANITIZE_MAX_STYLE)
		return 0;
	for (i = 0; i <= n; i++)
		lower[i] = (char)tolower((unsigned char)v[i]);
	for (i = 0; bad[i] != NULL; i++)
		if (strstr(lower, bad[i]) != NULL)
			return 0;
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)lower[i];

		if (c < 0x20 || c == 0x7f || strchr("\\<>{}@:;`=&[]", c))
			return 0;
		if (quote) {
			if (c == (unsigned char)quote)
				quote = 0;
			else if (c == '(' || c == ')')
				return 0;
			continue;
		}
		if (c == '"' || c == '\'') {
			quote = (char)c;
		} else if (c == '(') {
			size_t k = i, f;

			while (k > 0 && islower((unsigned char)lower[k - 1]))
				k--;
			for (f = 0; funcs[f] != NULL; f++)
				if (i - k == strlen(funcs[f]) &&
				    strncmp(lower + k, funcs[f], i - k) == 0)
					break;
			if (funcs[f] == NULL || depth++ > 0)
				return 0;
		} else if (c == ')') {
			if (depth-- <= 0)
				return 0;
		}
	}
	return quote == 0 && depth == 0;
}

static char *
web_sanitize_trim(char *s)
{
	size_t	 n;

	while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r' ||
	    *s == '\f')
		s++;
	n = strlen(s);
	while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t' ||
	    s[n - 1] == '\n' || s[n - 1] == '\r' || s[n - 1] == '\f'))
		s[--n] = '\0';
	return s;
}

/* Strips a trailing "!important" from value in place; 1 if it was there. */
static int
web_sanitize_css_important(char *value)
{
	size_t	 n = strlen(value);

	if (n < 10 || strcasecmp(value + n - 9, "important") != 0)
		return 0;
	n -= 9;
	while (n > 0 && (value[n - 1] == ' ' || value[n - 1] == '\t'))
		n--;
	if (n == 0 || value[n - 1] != '!')
		return 0;
	n--;
	while (n > 0 && (value[n - 1] == ' ' || value[n - 1] == '\t'))
		n--;
	value[n] = '\0';
	return 1;
}

char *
web_sanitize_css(const char *style)
{
	struct web_buf	 b = { 0 };
	char		*copy, *p, *decl, *colon, *name, *value;
	char		 quote = 0;
	size_t		 ndecl = 0;
	int		 depth = 0, important;

	if (strlen(style) > WEB_SANITIZE_MAX_STYLE)
		return xstrdup("");
	copy = xstrdup(style);
	for (p = decl = copy; ndecl < WEB_SANITIZE_MAX_DECLS; p++) {
		if (*p != '\0') {
			if (quote) {
				if (*p == quote)
					quote = 0;
				continue;
			}
			if (*p == '"' || *p == '\'')
				quote = *p;
			else if (*p == '(')
				depth++;
			else if (*p == ')')
				depth--;
			if (*p != ';' || depth != 0)
				continue;
		}
		/* A declaration ends here. */
		{
			int end = *p == '\0';

			*p = '\0';
			if ((colon = strchr(decl, ':')) != NULL) {
				*colon = '\0';
				name = web_sanitize_trim(decl);
				value = web_sanitize_trim(colon + 1);
				for (char *q = name; *q; q++)
					*q = (char)tolower((unsigned char)*q);
				important = web_sanitize_css_important(value);
				if (web_sanitize_css_prop_ok(name) &&
				    web_sanitize_css_value_ok(value)) {
					if (b.len > 0)
						web_buf_adds(&b, "; ");
					web_buf_addf(&b, "%s: %s%s", name, value,
					    important ? " !important" : "");
					ndecl++;
				}
			}
			if (end)
				break;
			decl = p + 1;
			quote = 0;
			depth = 0;
		}
	}
	free(copy);
	return web_buf_finish(&b);
}

/*
 * Gumbo's tree builder checks element scopes by scanning the stack of open
 * elements, so its run time grows with (number of tags) x (nesting depth):
 * 50,000 unclosed <div>s take seconds. Before parsing, a rough scan of the
 * tags (not used for any sanitising decision) adds up the depth at every
 * start tag, over-estimating where it is unsure, and refuses the input when
 * the sum passes the budget. Ordinary mail, even large newsletters, stays
 * far below it.
 */
#define WEB_SANITIZE_TAGNAME	16

static int
web_sanitize_tag_noop(const char *name)
{
	static const char *const noop[] = { "area", "base", "br", "col",
	    "embed", "hr", "img", "input", "link", "meta", "param", "source",
	    "track", "wbr", "p", "li", "dt", "dd", "tr", "td", "th", "option",
	    "optgroup", "rb", "rt", "rp", "thead", "tbody", "tfoot",
	    "colgroup", "html", "head", "body", "frame", "keygen", "image",
	    NULL };

	return web_sanitize_in(name, noop);
}

static int
web_sanitize_tag_raw(const char *name)
{
	static const char *const raw[] = { "script", "style", "textarea",
	    "title", "xmp", "iframe", "noembed", "noframes", "noscript",
	    NULL };

	return web_sanitize_in(name, raw);
}

static int
web_sanitize_too_complex(const char *h, size_t len, unsigned long budget)
{
	char		(*stack)[WEB_SANITIZE_TAGNAME + 1] = NULL;
	char		 name[WEB_SANITIZE_TAGNAME + 1];
	size_t		 i = 0, depth = 0, cap = 0, n, k;
	unsigned long	 cost = 0;
	int		 end;
	const char	*p;

	while (i < len && cost <= budget) {
		if (h[i] != '<' || i + 2 >= len) {
			i++;
			continue;
		}
		if (h[i + 1] == '!') {
			p = len - i >= 4 && memcmp(h + i, "<!--", 4) == 0 ?
			    memmem(h + i + 4, len - i - 4, "-->", 3) :
			    memchr(h + i, '>', len - i);
			i = p == NULL ? len : (size_t)(p - h) + 1;
			continue;
		}
		end = h[i + 1] == '/';
		i += end ? 2 : 1;
		if (i >= len || !isalpha((unsigned char)h[i]))
			continue;
		for (n = 0; i < len && (isalnum((unsigned char)h[i]) ||
		    h[i] == '-'); i++)
			if (n < WEB_SANITIZE_TAGNAME)
				name[n++] = (char)tolower((unsigned char)h[i]);
		name[n] = '\0';
		p = memchr(h + i, '>', len - i);
		i = p == NULL ? len : (size_t)(p - h) + 1;
		if (end) {
			/* Pop to the matching open element, if any. */
			for (k = depth; k > 0; k--, cost++)
				if (strcmp(stack[k - 1], name) == 0) {
					depth = k - 1;
					break;
				}
			continue;
		}
		if (p != NULL && p > h && p[-1] == '/')
			continue;
		if (web_sanitize_tag_raw(name)) {
			/* Skip to "</name": the content is not markup. */
			while (i < len && (p = memmem(h + i, len - i, "</", 2))
			    != NULL) {
				i = (size_t)(p - h) + 2;
				if (len - i >= n && strncasecmp(h + i, name, n)
				    == 0)
					break;
			}
			if (p == NULL)
				i = len;
			continue;
		}
		if (web_sanitize_tag_noop(name))
			continue;
		if (depth == cap) {
			cap = cap ? cap * 2 : 64;
			stack = xreallocarray(stack, cap, sizeof(*stack));
		}
		memcpy(stack[depth++], name, n + 1);
		cost += depth;
	}
	free(stack);
	return cost > budget;
}

struct web_sanitize {
	struct web_buf			 out;
	const struct web_sanitize_opts	*opts;
	int				 remote;
};

static void
web_sanitize_attr(struct web_sanitize *s, const char *name, const char *value)
{
	web_buf_addf(&s->out, " %s=\"", name);
	web_html_escape_buf(&s->out, value, strlen(value));
	web_buf_adds(&s->out, "\"");
}

static void
web_sanitize_img_src(struct web_sanitize *s, const char *src)
{
	char	*url, *mapped;

	switch (web_sanitize_url(src, &url)) {
	case WEB_SANITIZE_URL_CID:
		if (s->opts->cid_url != NULL &&
		    (mapped = s->opts->cid_url(s->opts->cid_arg, url + 4)) !=
		    NULL) {
			web_sanitize_attr(s, "src", mapped);
			free(mapped);
		}
		break;
	case WEB_SANITIZE_URL_WEB:
		s->remote = 1;
		if (s->opts->show_remote_images)
			web_sanitize_attr(s, "src", url);
		else {
			web_sanitize_attr(s, "data-postern-blocked", "remote");
			if (s->opts->keep_blocked_src)
				web_sanitize_attr(s, "data-postern-src", url);
		}
		break;
	case WEB_SANITIZE_URL_DATA_IMAGE:
		web_sanitize_attr(s, "src", url);
		break;
	default:
		break;
	}
	free(url);
}

static void
web_sanitize_open(struct web_sanitize *s, const GumboElement *e)
{
	const char	*tagname = gumbo_normalized_tagname(e->tag);
	char		*url, *css;
	unsigned int	 i;

	web_buf_addf(&s->out, "<%s", tagname);
	for (i = 0; i < e->attributes.length; i++) {
		const GumboAttribute *a = e->attributes.data[i];

		if (a->attr_namespace != GUMBO_ATTR_NAMESPACE_NONE)
			continue;
		if (strcmp(a->name, "style") == 0) {
			css = web_sanitize_css(a->value);
			if (*css != '\0')
				web_sanitize_attr(s, "style", css);
			free(css);
		} else if (e->tag == GUMBO_TAG_A && strcmp(a->name, "href") ==
		    0) {
			switch (web_sanitize_url(a->value, &url)) {
			case WEB_SANITIZE_URL_WEB:
			case WEB_SANITIZE_URL_MAILTO:
				web_sanitize_attr(s, "href", url);
				break;
			default:
				break;
			}
			free(url);
		} else if (e->tag == GUMBO_TAG_IMG && strcmp(a->name, "src") ==
		    0)
			web_sanitize_img_src(s, a->value);
		else if (web_sanitize_attr_ok(e->tag, a->name))
			web_sanitize_attr(s, a->name, a->value);
	}
	if (e->tag == GUMBO_TAG_A)
		web_buf_adds(&s->out,
		    " rel=\"noopener noreferrer\" target=\"_blank\"");
	web_buf_adds(&s->out, ">");
	/* The parser eats one newline right after <pre>; give it one. */
	if (e->tag == GUMBO_TAG_PRE && e->children.length > 0) {
		const GumboNode *c = e->children.data[0];

		if ((c->type == GUMBO_NODE_TEXT ||
		    c->type == GUMBO_NODE_WHITESPACE) &&
		    c->v.text.text[0] == '\n')
			web_buf_adds(&s->out, "\n");
	}
}

static int
web_sanitize_void(GumboTag tag)
{
	return tag == GUMBO_TAG_BR || tag == GUMBO_TAG_HR ||
	    tag == GUMBO_TAG_IMG || tag == GUMBO_TAG_WBR ||
	    tag == GUMBO_TAG_COL;
}

struct web_sanitize_frame {
	const GumboNode	*node;
	unsigned int	 next;		/* next child to visit */
	int		 open;		/* a start tag was written */
};

static void
web_sanitize_walk(struct web_sanitize *s, const GumboNode *body)
{
	struct web_sanitize_frame	*stack;
	size_t				 depth = 1, cap = 64;

	stack = xreallocarray(NULL, cap, sizeof(*stack));
	stack[0] = (struct web_sanitize_frame){ body, 0, 0 };
	while (depth > 0) {
		struct web_sanitize_frame *f = &stack[depth - 1];
		const GumboVector *kids = &f->node->v.element.children;
		const GumboNode *c;
		enum web_sanitize_action act;

		if (f->next >= kids->length) {
			if (f->open)
				web_buf_addf(&s->out, "</%s>",
				    gumbo_normalized_tagname(
				    f->node->v.element.tag));
			depth--;
			continue;
		}
		c = kids->data[f->next++];
		switch (c->type) {
		case GUMBO_NODE_TEXT:
		case GUMBO_NODE_WHITESPACE:
		case GUMBO_NODE_CDATA:
			web_html_escape_buf(&s->out, c->v.text.text,
			    strlen(c->v.text.text));
			continue;
		case GUMBO_NODE_ELEMENT:
			break;
		default:	/* comments, templates */
			continue;
		}
		if (c->v.element.tag_namespace != GUMBO_NAMESPACE_HTML)
			continue;
		act = web_sanitize_action(c->v.element.tag);
		if (act == WEB_SANITIZE_DROP)
			continue;
		if (act == WEB_SANITIZE_KEEP && depth < WEB_SANITIZE_MAX_DEPTH) {
			web_sanitize_open(s, &c->v.element);
			if (web_sanitize_void(c->v.element.tag))
				continue;
		} else
			act = WEB_SANITIZE_UNWRAP;
		if (depth == cap) {
			cap *= 2;
			stack = xreallocarray(stack, cap, sizeof(*stack));
		}
		stack[depth++] = (struct web_sanitize_frame){ c, 0,
		    act == WEB_SANITIZE_KEEP };
	}
	free(stack);
}

char *
web_sanitize_html(const char *html, size_t len,
    const struct web_sanitize_opts *opts, int *had_remote_images)
{
	static const struct web_sanitize_opts defaults = { 0 };
	struct web_sanitize	 s = { 0 };
	GumboOptions		 go = kGumboDefaultOptions;
	GumboOutput		*out;
	const GumboNode		*root, *body = NULL;
	unsigned int		 i;

	s.opts = opts != NULL ? opts : &defaults;
	if (len > (s.opts->max_input ? s.opts->max_input :
	    WEB_SANITIZE_MAX_INPUT)) {
		errno = EFBIG;
		return NULL;
	}
	if (web_sanitize_too_complex(html, len, s.opts->max_cost ?
	    s.opts->max_cost : WEB_SANITIZE_MAX_COST)) {
		errno = E2BIG;
		return NULL;
	}
	go.max_errors = 0;
	if ((out = gumbo_parse_with_options(&go, html, len)) == NULL) {
		errno = ENOMEM;
		return NULL;
	}
	root = out->root;
	for (i = 0; root->type == GUMBO_NODE_ELEMENT &&
	    i < root->v.element.children.length; i++) {
		const GumboNode *c = root->v.element.children.data[i];

		if (c->type == GUMBO_NODE_ELEMENT &&
		    c->v.element.tag == GUMBO_TAG_BODY)
			body = c;
	}
	if (body != NULL)
		web_sanitize_walk(&s, body);
	gumbo_destroy_output(&go, out);
	if (had_remote_images != NULL)
		*had_remote_images = s.remote;
	return web_buf_finish(&s.out);
}
