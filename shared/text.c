/*
 * UTF-8 validation and the escaper; see text.h.
 *
 * SECURITY: the input is peer data of any length and content. The decoder
 * looks at most 4 bytes ahead and never past len; the escaper writes only
 * through buf_put(), so its output is bounded by the caller's buffer, and
 * each replacement is appended whole or not at all.
 */
#include <pthread.h>
#include <string.h>

#include "buf.h"
#include "text.h"

#define TEXT_FFFD	"\xef\xbf\xbd"

size_t
text_utf8_next(const char *s, size_t len, unsigned int *cp)
{
	const unsigned char *u = (const unsigned char *)s;
	unsigned int	 c, min;
	size_t		 n, i;

	if (len == 0)
		return 0;
	c = u[0];
	if (c < 0x80) {
		*cp = c;
		return 1;
	} else if ((c & 0xe0) == 0xc0) {
		n = 2; c &= 0x1f; min = 0x80;
	} else if ((c & 0xf0) == 0xe0) {
		n = 3; c &= 0x0f; min = 0x800;
	} else if ((c & 0xf8) == 0xf0) {
		n = 4; c &= 0x07; min = 0x10000;
	} else
		return 0;
	if (len < n)
		return 0;
	for (i = 1; i < n; i++) {
		if ((u[i] & 0xc0) != 0x80)
			return 0;
		c = (c << 6) | (u[i] & 0x3f);
	}
	if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
		return 0;
	*cp = c;
	return n;
}

int
text_utf8_valid(const char *s, size_t len)
{
	unsigned int	 cp;
	size_t		 n;

	while (len > 0) {
		if ((n = text_utf8_next(s, len, &cp)) == 0 || cp == 0)
			return 0;
		s += n;
		len -= n;
	}
	return 1;
}

/*
 * 1 for the bytes text_escape() keeps as they are without decoding:
 * printable ASCII, without the HTML specials in the HTML table.
 */
static unsigned char	text_keep_plain[256], text_keep_html[256];
static pthread_once_t	text_keep_once = PTHREAD_ONCE_INIT;

static void
text_keep_init(void)
{
	for (int c = 0x20; c < 0x7f; c++) {
		text_keep_plain[c] = 1;
		text_keep_html[c] = c != '&' && c != '<' && c != '>' &&
		    c != '"' && c != '\'';
	}
}

/* Format characters that reorder or hide text: bidi controls, zero-width
 * characters and the byte order mark. */
static int
text_is_bidi(unsigned int cp)
{
	return cp == 0x061c || (cp >= 0x200b && cp <= 0x200f) ||
	    (cp >= 0x202a && cp <= 0x202e) || (cp >= 0x2060 && cp <= 0x2064) ||
	    (cp >= 0x2066 && cp <= 0x2069) || cp == 0xfeff;
}

/*
 * What replaces the character cp (n bytes), or NULL to keep it: "" drops
 * it.
 */
static const char *
text_replacement(unsigned int cp, int flags)
{
	if (cp == 0)
		return TEXT_FFFD;
	if (cp == '\t')
		return (flags & TEXT_ESC_LINE) ? " " : NULL;
	if (cp == '\n' || cp == '\r')
		return (flags & TEXT_ESC_LINE) ? "" : NULL;
	if (cp < 0x20 || cp == 0x7f)
		return "";
	if (cp >= 0x80 && cp <= 0x9f && (flags & TEXT_ESC_LINE))
		return "";
	if ((flags & TEXT_ESC_NOBIDI) && text_is_bidi(cp))
		return "";
	if (flags & TEXT_ESC_HTML) {
		switch (cp) {
		case '&': return "&amp;";
		case '<': return "&lt;";
		case '>': return "&gt;";
		case '"': return "&quot;";
		case '\'': return "&#39;";
		}
	}
	return NULL;
}

int
text_escape(struct buf *b, const char *s, size_t len, int flags)
{
	const unsigned char *u = (const unsigned char *)s, *keep;
	unsigned int	 cp;
	size_t		 i = 0, start = 0, n;
	const char	*rep;

	pthread_once(&text_keep_once, text_keep_init);
	keep = (flags & TEXT_ESC_HTML) ? text_keep_html : text_keep_plain;

	while (i < len) {
		/*
		 * Printable ASCII other than the HTML specials is kept under
		 * every flag: skip the decoder for it (most of any text),
		 * four bytes a test where it can.
		 */
		while (len - i >= 4 && (keep[u[i]] & keep[u[i + 1]] &
		    keep[u[i + 2]] & keep[u[i + 3]]))
			i += 4;
		if (i == len)
			break;
		if (keep[u[i]]) {
			i++;
			continue;
		}
		if ((n = text_utf8_next(s + i, len - i, &cp)) == 0) {
			rep = TEXT_FFFD;
			n = 1;
		} else
			rep = text_replacement(cp, flags);
		if (rep != NULL) {
			if (buf_put(b, s + start, i - start) == -1 ||
			    buf_puts(b, rep) == -1)
				return -1;
			start = i + n;
		}
		i += n;
	}
	return buf_put(b, s + start, len - start);
}

void
text_truncate(char *s, size_t max)
{
	static const char ell[] = "\xe2\x80\xa6";	/* U+2026 */
	size_t	 len = strlen(s), i = 0, n, keep = 0;
	unsigned int cp;

	if (len <= max)
		return;
	if (max < sizeof(ell) - 1) {
		s[0] = '\0';
		return;
	}
	/* The longest prefix of whole characters that leaves room. */
	while (i < len && (n = text_utf8_next(s + i, len - i, &cp)) != 0 &&
	    i + n <= max - (sizeof(ell) - 1)) {
		i += n;
		keep = i;
	}
	memcpy(s + keep, ell, sizeof(ell));
}
