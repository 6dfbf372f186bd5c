/*
 * DATA/BDAT body reader; see smtp_data.h.
 *
 * SECURITY: every byte is peer input, from whichever SMTP client the
 * listener admits. Only CR LF "." CR LF ends DATA; a CR
 * not followed by LF, or an LF not preceded by CR, is never treated as a
 * line end and marks the body bad (SMTP smuggling). The engine then refuses
 * the whole transaction once the real end of data arrives, so text hidden
 * behind a bare line ending can never become a second message. Bytes kept
 * are bounded by max; past it the reader only counts. A NUL byte marks
 * the body bad too: MTAs downstream treat NUL inconsistently (truncate,
 * drop or pass it), which is another way to smuggle.
 */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "smtp_data.h"

void
smtp_data_init(struct smtp_data *d, int fd, size_t max, int dot)
{
	d->state = SMTP_DATA_BOL;
	d->dot = dot;
	d->fd = fd;
	d->max = max;
	d->size = 0;
	d->bare = 0;
	d->nul = 0;
	d->too_big = 0;
	d->werrno = 0;
	d->blen = 0;
}

static void
smtp_data_flush(struct smtp_data *d)
{
	size_t off = 0;
	ssize_t n;

	if (d->fd == -1 || d->werrno != 0) {
		d->blen = 0;
		return;
	}
	while (off < d->blen) {
		n = write(d->fd, d->buf + off, d->blen - off);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0) {
			d->werrno = n == -1 ? errno : EIO;
			break;
		}
		off += n;
	}
	d->blen = 0;
}

static void
smtp_data_put(struct smtp_data *d, const char *p, size_t n)
{
	/* A refused body is not worth keeping; only its end matters. */
	if (d->bare || d->nul || d->too_big)
		return;
	if (d->max != 0 && (size_t)d->size + n > d->max) {
		d->too_big = 1;
		return;
	}
	d->size += n;
	while (n > 0) {
		size_t k = sizeof(d->buf) - d->blen;

		if (k > n)
			k = n;
		memcpy(d->buf + d->blen, p, k);
		d->blen += k;
		p += k;
		n -= k;
		if (d->blen == sizeof(d->buf))
			smtp_data_flush(d);
	}
}

/* Byte c inside a line: CR waits for its LF, a lone LF is bare. */
static void
smtp_data_text(struct smtp_data *d, unsigned char c)
{
	char ch = (char)c;

	if (c == '\r') {
		d->state = SMTP_DATA_CR;
		return;
	}
	if (c == '\n') {
		d->bare = 1;
		d->state = SMTP_DATA_TEXT;
		return;
	}
	if (c == '\0') {
		d->nul = 1;
		d->state = SMTP_DATA_TEXT;
		return;
	}
	smtp_data_put(d, &ch, 1);
	d->state = SMTP_DATA_TEXT;
}

int
smtp_data_feed(struct smtp_data *d, const unsigned char *p, size_t len,
    size_t *used)
{
	size_t i, run;

	for (i = 0; i < len; i++) {
		unsigned char c = p[i];

		switch (d->state) {
		case SMTP_DATA_BOL:
			if (d->dot && c == '.') {
				d->state = SMTP_DATA_DOT;
				break;
			}
			/* FALLTHROUGH */
		case SMTP_DATA_TEXT:
			/* Copy a run of plain text at once. */
			for (run = i; run < len && p[run] != '\r' &&
			    p[run] != '\n' && p[run] != '\0'; run++)
				;
			if (run > i) {
				smtp_data_put(d, (const char *)p + i, run - i);
				d->state = SMTP_DATA_TEXT;
				i = run - 1;
				break;
			}
			smtp_data_text(d, c);
			break;
		case SMTP_DATA_CR:
			if (c == '\n') {
				smtp_data_put(d, "\r\n", 2);
				d->state = SMTP_DATA_BOL;
				break;
			}
			d->bare = 1;
			smtp_data_text(d, c);
			break;
		case SMTP_DATA_DOT:
			/* The leading dot is dropped (RFC 5321 4.5.2). */
			if (c == '\r') {
				d->state = SMTP_DATA_DOT_CR;
				break;
			}
			smtp_data_text(d, c);
			break;
		case SMTP_DATA_DOT_CR:
			if (c == '\n') {
				*used = i + 1;
				return 1;
			}
			d->bare = 1;
			smtp_data_text(d, c);
			break;
		}
	}
	*used = len;
	return 0;
}

int
smtp_data_finish(struct smtp_data *d)
{
	if (!d->dot) {
		if (d->state == SMTP_DATA_CR)
			d->bare = 1;
		else if (d->state == SMTP_DATA_TEXT)
			smtp_data_put(d, "\r\n", 2);
	}
	smtp_data_flush(d);
	return d->werrno ? -1 : 0;
}
