/*
 * The top-level header section of a message as raw bytes: split into fields
 * (folded continuation lines kept with their field), looked up by name, and
 * selected fields dropped while everything else is copied byte for byte.
 * This is not a MIME parser (GMime is, see mime.h): it only finds field
 * boundaries, which trigger handling must do without re-encoding anything.
 */
#ifndef POSTERN_HEADER_H
#define POSTERN_HEADER_H

#include <stdio.h>
#include <stddef.h>

struct header_field {
	char	*name;		/* as written */
	char	*raw;		/* the whole field, folding and CRLF included */
	size_t	 rawlen;
	char	*value;		/* unfolded, trimmed */
};

struct header {
	struct header_field	*fields;
	size_t			 nfields;
	size_t			 len;	/* bytes of header incl. the empty line */
	int			 has_body_sep;
};

/*
 * Reads the header section from f (positioned at the start) up to and
 * including the empty line. Returns 0, -1 on I/O error, -2 when the header
 * is larger than maxlen or a line has no valid field name.
 */
int	header_read(FILE *f, size_t maxlen, struct header *);
int	header_parse_mem(const char *buf, size_t len, size_t maxlen,
	    struct header *);
void	header_free(struct header *);

/* First field named name (case-insensitive), or NULL. */
const struct header_field *header_get(const struct header *, const char *name);

/*
 * Parses a trigger spec "Name: Value" into its name and value (trimmed).
 * Returns -1 on a spec without a colon or with an empty name.
 */
int	header_trigger_parse(const char *spec, char *name, size_t namelen,
	    char *value, size_t valuelen);
/* 1 when some field matches the spec: name case-insensitive, value trimmed,
 * case-insensitive. */
int	header_trigger_match(const struct header *, const char *spec);

/*
 * Copies the message in -> out, leaving out every top-level header field
 * whose name is one of names (case-insensitive) and, when extra is not
 * NULL, writing extra (complete "Name: value\r\n" lines) at the head.
 * The body is copied verbatim. *removed counts dropped fields. Returns 0,
 * -1 on I/O error, -2 on a malformed or oversized header (see header_read).
 */
int	header_rewrite(FILE *in, FILE *out, size_t maxlen,
	    const char *const *names, size_t nnames, const char *extra,
	    int *removed);

#endif
