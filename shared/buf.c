/* The bounded byte buffer; see buf.h. */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "log.h"
#include "xmalloc.h"

void
buf_init(struct buf *b, size_t max)
{
	memset(b, 0, sizeof(*b));
	b->max = max;
}

size_t
buf_max(const struct buf *b)
{
	return b->max ? b->max : BUF_MAX_DEFAULT;
}

int
buf_full(const struct buf *b)
{
	return b->full;
}

int
buf_reserve(struct buf *b, size_t n)
{
	size_t	 max = buf_max(b), need, cap;

	if (b->len > max)
		fatalx("buf: %zu bytes held past the maximum %zu", b->len,
		    max);
	if (n > max - b->len) {
		b->full = 1;
		return -1;
	}
	need = b->len + n + 1;
	if (need <= b->cap)
		return 0;
	cap = b->cap ? b->cap : 256;
	while (cap < need)
		cap = cap > SIZE_MAX / 2 ? need : cap * 2;
	/* Never allocate much more than the maximum allows. */
	if (cap > max + 1)
		cap = max + 1;
	b->data = xreallocarray(b->data, cap, 1);
	b->cap = cap;
	return 0;
}

int
buf_put(struct buf *b, const void *p, size_t n)
{
	if (buf_reserve(b, n) == -1)
		return -1;
	if (n > 0)
		memcpy(b->data + b->len, p, n);
	b->len += n;
	b->data[b->len] = '\0';
	return 0;
}

int
buf_puts(struct buf *b, const char *s)
{
	return buf_put(b, s, strlen(s));
}

int
buf_put_u8(struct buf *b, uint8_t c)
{
	return buf_put(b, &c, 1);
}

int
buf_putfv(struct buf *b, const char *fmt, va_list ap)
{
	va_list	 ap2;
	size_t	 room = b->cap > b->len ? b->cap - b->len : 0;
	int	 n;

	/*
	 * Formatted straight into the room there is; only longer output is
	 * measured first and formatted again (vsnprintf twice was a tenth
	 * of a page's time).
	 */
	va_copy(ap2, ap);
	n = vsnprintf(room > 0 ? b->data + b->len : NULL, room, fmt, ap2);
	va_end(ap2);
	if (n < 0)
		fatal("buf_putfv");
	if ((size_t)n < room && b->len <= buf_max(b) &&
	    (size_t)n <= buf_max(b) - b->len) {
		b->len += (size_t)n;
		return 0;
	}
	if (room > 0)
		b->data[b->len] = '\0';	/* cut output: not ours yet */
	if (buf_reserve(b, (size_t)n) == -1)
		return -1;
	if (vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap) != n)
		fatalx("buf_putfv: the output changed length");
	b->len += (size_t)n;
	return 0;
}

int
buf_putf(struct buf *b, const char *fmt, ...)
{
	va_list	 ap;
	int	 rv;

	va_start(ap, fmt);
	rv = buf_putfv(b, fmt, ap);
	va_end(ap);
	return rv;
}

int
buf_get(struct buf *b, void *out, size_t n)
{
	if (n > b->len)
		return -1;
	if (n == 0)
		return 0;
	if (out != NULL)
		memcpy(out, b->data, n);
	memmove(b->data, b->data + n, b->len - n);
	b->len -= n;
	b->data[b->len] = '\0';
	return 0;
}

int
buf_get_u8(struct buf *b, uint8_t *c)
{
	return buf_get(b, c, 1);
}

char *
buf_finish(struct buf *b)
{
	size_t	 max = b->max;
	char	*s;

	s = b->data != NULL ? b->data : xstrdup("");
	buf_init(b, max);
	return s;
}

void
buf_free(struct buf *b)
{
	size_t	 max = b->max;

	free(b->data);
	buf_init(b, max);
}
