/*
 * The project's one UTF-8 validator and one escaper for text that came
 * from a peer (mail header values, bodies, form fields) on its way into a
 * page, a notification or a log-safe single line.
 *
 * SECURITY: everything here takes hostile bytes (mail from the Internet,
 * browser input) and must hold for any input: no byte sequence reads past
 * len, grows output past the caller's struct buf maximum, or lets markup,
 * a line break or a control character through where the flags forbid it.
 */
#ifndef POSTERN_TEXT_H
#define POSTERN_TEXT_H

#include <stddef.h>

struct buf;

/*
 * Decodes one UTF-8 sequence at s (len bytes available): returns its
 * length (1..4) and the code point in *cp, or 0 if the bytes are not
 * well-formed UTF-8 (overlong forms, surrogates and values past U+10FFFF
 * are refused).
 */
size_t	 text_utf8_next(const char *s, size_t len, unsigned int *cp);
/* 1 if s[0..len) is well-formed UTF-8 without NUL. */
int	 text_utf8_valid(const char *s, size_t len);

/* What text_escape() does besides its rules for every input. */
#define TEXT_ESC_HTML	0x01	/* & < > " ' become character references */
#define TEXT_ESC_LINE	0x02	/* one line: CR, LF and C1 controls dropped,
				   tab becomes a space */
#define TEXT_ESC_NOBIDI	0x04	/* bidirectional and zero-width format
				   characters dropped (display names) */

/*
 * Appends s[0..len) to b, cleaned: invalid UTF-8 and NUL become U+FFFD,
 * C0 controls other than tab, LF and CR and DEL are dropped, and the flags
 * above add to that. Returns 0, or -1 when b's maximum was reached (b then
 * holds a prefix of the result, never a partial character or reference).
 */
int	 text_escape(struct buf *b, const char *s, size_t len, int flags);

/*
 * Cuts the NUL-terminated UTF-8 string s to at most max bytes at a
 * character boundary, adding "..." when something was cut (within max).
 */
void	 text_truncate(char *s, size_t max);

#endif
