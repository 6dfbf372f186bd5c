/*
 * Exchange's winmail.dat (application/ms-tnef): the attachments inside it,
 * unpacked with libytnef so a recipient outside Outlook gets the files.
 * The bytes come from any Internet sender: counts and sizes are bounded
 * and a malformed stream is simply "no attachments".
 */
#ifndef PORTAL_WEB_TNEF_H
#define PORTAL_WEB_TNEF_H

#include <sys/types.h>

#include <stddef.h>

#define WEB_TNEF_MAX_FILES	64
#define WEB_TNEF_MAX_INPUT	(16 * 1024 * 1024)

struct web_tnef_file {
	char		*name;		/* as in the stream, may be NULL */
	unsigned char	*data;
	size_t		 len;
};

/*
 * Unpacks up to max attachments of the TNEF stream data[0..len) into out
 * (caller-allocated, max long). Returns the count (0 when the stream holds
 * none or cannot be parsed).
 */
int	 web_tnef_unpack(const unsigned char *data, size_t len,
	    struct web_tnef_file *out, int max);
void	 web_tnef_free(struct web_tnef_file *, int n);

/*
 * The same in a sandboxed child process (see web_tnef.c): rd is called
 * for the stream's bytes until it returns 0 (-1: error). A stream of
 * maxin bytes or more is not unpacked (0). Returns the count, or -1 when
 * the child failed: crashed, broke its sandbox, or answered garbage.
 */
int	 web_tnef_unpack_sandboxed(ssize_t (*rd)(void *, char *, size_t),
	    void *arg, size_t maxin, struct web_tnef_file *out, int max);

#endif
