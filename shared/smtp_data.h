/*
 * The message body reader of the SMTP engine: DATA (dot-unstuffing, end at
 * CRLF.CRLF only) and BDAT chunks, written to a spool file as they arrive.
 * Separate from the session so it can be unit-tested and fuzzed alone.
 */
#ifndef POSTERN_SMTP_DATA_H
#define POSTERN_SMTP_DATA_H

#include <stddef.h>
#include <sys/types.h>

#define SMTP_DATA_BUFSZ	65536

enum smtp_data_state {
	SMTP_DATA_BOL,		/* just after CRLF (or the DATA command) */
	SMTP_DATA_TEXT,		/* inside a line */
	SMTP_DATA_CR,		/* CR seen, LF expected */
	SMTP_DATA_DOT,		/* "." at the start of a line */
	SMTP_DATA_DOT_CR,	/* "." CR at the start of a line */
};

struct smtp_data {
	enum smtp_data_state	 state;
	int			 dot;	/* DATA; 0 for BDAT */
	int			 fd;	/* spool file, -1: count only */
	size_t			 max;	/* bytes kept; 0: unlimited */
	off_t			 size;	/* bytes kept so far */
	int			 bare;	/* bare CR or LF seen */
	int			 nul;	/* a NUL byte seen */
	int			 too_big;
	int			 werrno;	/* first write error, 0 if none */
	size_t			 blen;
	char			 buf[SMTP_DATA_BUFSZ];
};

void	smtp_data_init(struct smtp_data *, int fd, size_t max, int dot);
/*
 * Reads up to len bytes. Returns 1 when DATA's terminating CRLF.CRLF was
 * consumed (nothing after it is), 0 when more is needed; *used is set to
 * the bytes consumed.
 */
int	smtp_data_feed(struct smtp_data *, const unsigned char *, size_t len,
	    size_t *used);
/*
 * End of the body (after DATA's end or BDAT LAST): a BDAT body ending in a
 * bare CR is refused, one without final CRLF gets it. Flushes to the file;
 * -1 (errno in werrno) on a write error.
 */
int	smtp_data_finish(struct smtp_data *);

#endif
