/*
 * The one growable byte buffer of the project, with a hard maximum size.
 * A put that would take the contents past the maximum fails, leaves the
 * buffer exactly as it was, and marks it full; nothing ever grows without
 * a limit. Memory exhaustion below the maximum stays fatal (xmalloc).
 *
 * The contents are NUL-terminated after every successful put (the NUL is
 * not counted in len and not in max). A zeroed struct buf is an empty
 * buffer with the default maximum, so "struct buf b = { 0 };" is valid.
 */
#ifndef POSTERN_BUF_H
#define POSTERN_BUF_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* The maximum of a buffer whose user set none. */
#define BUF_MAX_DEFAULT	(16 * 1024 * 1024)

struct buf {
	char	*data;		/* NULL until the first put */
	size_t	 len;
	size_t	 cap;		/* allocated, NUL included */
	size_t	 max;		/* most bytes it may hold; 0: BUF_MAX_DEFAULT */
	int	 full;		/* a put was refused for the maximum */
};

/* An empty buffer holding at most max bytes (0: BUF_MAX_DEFAULT). */
void	 buf_init(struct buf *, size_t max);
/* The maximum in force. */
size_t	 buf_max(const struct buf *);
/* 1 once a put has been refused for the maximum (until buf_free). */
int	 buf_full(const struct buf *);

/*
 * Appends; 0, or -1 when the result would exceed the maximum (the buffer is
 * then unchanged and marked full).
 */
int	 buf_put(struct buf *, const void *, size_t);
/*
 * Makes room for n more bytes (and the NUL) in one allocation, ahead of
 * the puts that fill it; 0, or -1 past the maximum (then marked full).
 */
int	 buf_reserve(struct buf *, size_t);
int	 buf_puts(struct buf *, const char *);
int	 buf_put_u8(struct buf *, uint8_t);
int	 buf_putf(struct buf *, const char *, ...)
	    __attribute__((format(printf, 2, 3)));
int	 buf_putfv(struct buf *, const char *, va_list)
	    __attribute__((format(printf, 2, 0)));

/*
 * Removes the first n bytes into out (may be NULL to drop them); 0, or -1
 * when fewer than n bytes are held (the buffer is then unchanged).
 */
int	 buf_get(struct buf *, void *out, size_t n);
int	 buf_get_u8(struct buf *, uint8_t *);

/*
 * Hands over the NUL-terminated contents (caller frees; "" when empty) and
 * empties the buffer, keeping its maximum.
 */
char	*buf_finish(struct buf *);
/* Frees the contents; the buffer is empty again, its maximum kept. */
void	 buf_free(struct buf *);

#endif
