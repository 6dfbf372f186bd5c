/*
 * Text for the portal's pages: the one HTML escaping helper every byte of
 * mail or user input goes through on its way into a page, text/plain bodies
 * as HTML, RFC 2047 header decoding, a header-injection-safe
 * Content-Disposition builder, and the table of user-visible strings.
 */
#ifndef POSTERN_WEB_TEXT_H
#define POSTERN_WEB_TEXT_H

#include <stddef.h>

#include "buf.h"

/*
 * The web layer's buffer is the shared bounded buffer (buf.h): struct
 * web_buf names struct buf. The web_buf_* calls below never fail; a put
 * past the maximum is dropped and marks the buffer full, and the request
 * loop answers 500 for a response that filled up (see web.c).
 */
#define web_buf	buf

void	 web_buf_add(struct web_buf *, const void *, size_t);
void	 web_buf_adds(struct web_buf *, const char *);
/* A decimal number, as "%lld" without printf. */
void	 web_buf_addll(struct web_buf *, long long);
void	 web_buf_addf(struct web_buf *, const char *, ...)
	    __attribute__((format(printf, 2, 3)));
/* Returns the NUL-terminated contents (caller frees); the buffer is reset. */
char	*web_buf_finish(struct web_buf *);
void	 web_buf_free(struct web_buf *);

/* The shared UTF-8 decoder and validator (text.h) under their web names. */
size_t	 web_utf8_next(const char *s, size_t len, unsigned int *cp);
int	 web_utf8_valid(const char *s, size_t len);

/*
 * Appends s escaped for HTML text and for double- or single-quoted
 * attribute values with the shared escaper (text_escape() with
 * TEXT_ESC_HTML): & < > " ' become references, NUL and invalid UTF-8
 * become U+FFFD, other C0 controls except tab/LF/CR are dropped.
 */
void	 web_html_escape_buf(struct web_buf *, const char *s, size_t len);
/* The same into a new string (caller frees). */
char	*web_html_escape(const char *s);

/* Most HTML made from one text/plain body; past it, a notice instead. */
#define WEB_TEXT_PLAIN_MAX	(16 * 1024 * 1024)
/* A web answer holds at most the largest stored message plus this. */
#define WEB_RESPONSE_SLACK	(WEB_TEXT_PLAIN_MAX + 16 * 1024 * 1024)

/*
 * text/plain body -> "<pre class="text-plain">...</pre>" with http, https
 * and mailto URLs turned into links (rel="noopener noreferrer",
 * target="_blank"). Never fails; a body whose HTML would exceed
 * WEB_TEXT_PLAIN_MAX becomes the "html.too_large" notice. Caller frees.
 */
char	*web_text_plain_to_html(const char *text, size_t len);

/* Initialises GMime once per process; safe from any thread. */
void	 web_text_gmime_init(void);

/*
 * Decodes an RFC 2047 header value (encoded-words, any charset GMime
 * knows) to UTF-8. Never fails; caller frees.
 */
char	*web_text_header_decode(const char *raw);

/*
 * Content-Disposition value for a download:
 *   attachment; filename="ascii fallback"; filename*=UTF-8''pct-encoded
 * Safe for any input: CR, LF, controls, quotes and backslashes can never
 * reach the header. Caller frees.
 */
char	*web_text_content_disposition(const char *filename_utf8);

/*
 * User-visible text by key ("login.title", ...). An unknown key is a
 * programming error (fatalx). All strings live in one table in web_text.c
 * so a translation is one more column.
 */
const char *web_text_get(const char *key);

#endif
