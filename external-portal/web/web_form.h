/*
 * HTML form bodies from browsers: application/x-www-form-urlencoded and
 * multipart/form-data (RFC 7578). Both are hostile input: every count and
 * size has a limit, names and values must be UTF-8 without NUL, and upload
 * file names are reduced to a safe base name. Errors are HTTP statuses the
 * server sends as they are.
 */
#ifndef POSTERN_WEB_FORM_H
#define POSTERN_WEB_FORM_H

#include <stddef.h>

enum web_form_status {
	WEB_FORM_OK = 0,
	WEB_FORM_BAD = 400,		/* malformed */
	WEB_FORM_TOO_LARGE = 413,	/* a limit was hit */
	WEB_FORM_UNSUPPORTED = 415,	/* not a form content type */
	WEB_FORM_ERROR = 500,		/* temp file could not be written */
};

/* Zero members take the defaults in brackets. */
struct web_form_limits {
	size_t		 max_total;	/* body bytes [1 MiB; multipart 32 MiB] */
	size_t		 max_fields;	/* non-file fields [64] */
	size_t		 max_name;	/* field name bytes [64] */
	size_t		 max_value;	/* field value bytes [64 KiB] */
	size_t		 max_parts;	/* multipart parts [64] */
	size_t		 max_part_header; /* header bytes of one part [4 KiB] */
	size_t		 max_files;	/* file parts [16] */
	size_t		 max_file;	/* bytes of one file [25 MiB] */
	int		 allow_duplicates; /* else a repeated name is 400 */
	/* Files go to unlinked temp files here; NULL keeps them in memory. */
	const char	*tmpdir;
};

struct web_form_field {
	char		*name;
	char		*value;		/* NUL-terminated UTF-8 */
	size_t		 len;
};

struct web_form_file {
	char		*field;
	char		*filename;	/* safe base name, never empty */
	char		*content_type;	/* "type/subtype", lower case */
	size_t		 size;
	char		*data;		/* in memory, or NULL ... */
	int		 fd;		/* ... in this unlinked file at offset 0 */
};

struct web_form {
	struct web_form_field	*fields;
	size_t			 nfields;
	struct web_form_file	*files;
	size_t			 nfiles;
};

/*
 * Parses body by its Content-Type (urlencoded or multipart/form-data).
 * On any status but WEB_FORM_OK the form is left empty.
 */
int	 web_form_parse(const char *content_type, const char *body, size_t len,
	    const struct web_form_limits *, struct web_form *);
int	 web_form_parse_urlencoded(const char *body, size_t len,
	    const struct web_form_limits *, struct web_form *);
int	 web_form_parse_multipart(const char *content_type, const char *body,
	    size_t len, const struct web_form_limits *, struct web_form *);

/* The value of the first field named name, or NULL. */
const char *web_form_get(const struct web_form *, const char *name);
const struct web_form_file *web_form_get_file(const struct web_form *,
	    const char *name);
void	 web_form_free(struct web_form *);

/*
 * A file name from a browser or a mail as a safe base name: directory
 * parts, controls, bidi overrides, characters Windows refuses and leading
 * dots removed, at most 200 bytes of valid UTF-8; "attachment" when
 * nothing is left. Caller frees.
 */
char	*web_form_safe_filename(const char *name);

#endif
