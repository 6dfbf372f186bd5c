/*
 * Form body parsers (see web_form.h). Input is whatever a browser, or
 * anyone pretending to be one, POSTs to the portal. The multipart splitter
 * is hand-written because an HTTP form is not a mail message, but it only
 * looks for delimiter lines with memmem() over a bounded body; parameter
 * syntax (quoting, RFC 2231/5987 filename*) is left to GMime.
 *
 * SECURITY: the body is unauthenticated input (a form is parsed before the
 * session is checked). struct web_form_limits bounds the total, the number
 * and size of fields, parts, part headers and files; names and values must
 * be well-formed UTF-8 (the shared validator); file names are reduced to
 * a safe base name; uploads go to private files in the spool. Past a
 * limit the answer is 413, a malformed body 400.
 */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <gmime/gmime.h>
#include <openssl/crypto.h>

#include "log.h"
#include "xmalloc.h"
#include "web/web_text.h"
#include "web/web_form.h"

#define WEB_FORM_FILENAME_MAX	200
#define WEB_FORM_BOUNDARY_MAX	70

static struct web_form_limits
web_form_limits(const struct web_form_limits *l, int multipart)
{
	struct web_form_limits r = { 0 };

	if (l != NULL)
		r = *l;
	if (r.max_total == 0)
		r.max_total = multipart ? 32 * 1024 * 1024 : 1024 * 1024;
	if (r.max_fields == 0)
		r.max_fields = 64;
	if (r.max_name == 0)
		r.max_name = 64;
	if (r.max_value == 0)
		r.max_value = 64 * 1024;
	if (r.max_parts == 0)
		r.max_parts = 64;
	if (r.max_part_header == 0)
		r.max_part_header = 4096;
	if (r.max_files == 0)
		r.max_files = 16;
	if (r.max_file == 0)
		r.max_file = 25 * 1024 * 1024;
	return r;
}

static int
web_form_has(const struct web_form *f, const char *name)
{
	size_t	 i;

	for (i = 0; i < f->nfields; i++)
		if (strcmp(f->fields[i].name, name) == 0)
			return 1;
	for (i = 0; i < f->nfiles; i++)
		if (strcmp(f->files[i].field, name) == 0)
			return 1;
	return 0;
}

/* Checks and stores one field; takes ownership of name and value. */
static int
web_form_add(struct web_form *f, const struct web_form_limits *l,
    char *name, char *value, size_t nlen, size_t vlen)
{
	int	 rc = WEB_FORM_OK;

	if (f->nfields >= l->max_fields || nlen > l->max_name ||
	    vlen > l->max_value)
		rc = WEB_FORM_TOO_LARGE;
	else if (nlen == 0 || !web_utf8_valid(name, nlen) ||
	    !web_utf8_valid(value, vlen))
		rc = WEB_FORM_BAD;
	else if (!l->allow_duplicates && web_form_has(f, name))
		rc = WEB_FORM_BAD;
	if (rc != WEB_FORM_OK) {
		free(name);
		free(value);
		return rc;
	}
	f->fields = xreallocarray(f->fields, f->nfields + 1,
	    sizeof(*f->fields));
	f->fields[f->nfields++] = (struct web_form_field){ name, value, vlen };
	return WEB_FORM_OK;
}

static int
web_form_hex(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Percent- and '+'-decodes s[0..n) into a new string; -1 on a bad escape. */
static int
web_form_unescape(const char *s, size_t n, char **out, size_t *outlen)
{
	char	*d = xmalloc(n + 1);
	size_t	 i, o = 0;
	int	 hi, lo;

	for (i = 0; i < n; i++) {
		if (s[i] == '+')
			d[o++] = ' ';
		else if (s[i] != '%')
			d[o++] = s[i];
		else {
			if (n - i < 3 ||
			    (hi = web_form_hex((unsigned char)s[i + 1])) < 0 ||
			    (lo = web_form_hex((unsigned char)s[i + 2])) < 0) {
				free(d);
				return -1;
			}
			d[o++] = (char)(hi << 4 | lo);
			i += 2;
		}
	}
	d[o] = '\0';
	*out = d;
	*outlen = o;
	return 0;
}

int
web_form_parse_urlencoded(const char *body, size_t len,
    const struct web_form_limits *lim, struct web_form *f)
{
	struct web_form_limits	 l = web_form_limits(lim, 0);
	const char		*p = body, *end = body + len, *amp, *eq;
	char			*name, *value;
	size_t			 nlen, vlen;
	int			 rc;

	memset(f, 0, sizeof(*f));
	if (len > l.max_total)
		return WEB_FORM_TOO_LARGE;
	for (; p < end; p = amp + 1) {
		if ((amp = memchr(p, '&', (size_t)(end - p))) == NULL)
			amp = end;
		if (amp == p)
			continue;
		if ((eq = memchr(p, '=', (size_t)(amp - p))) == NULL)
			eq = amp;
		/* Escapes only shrink: bound before decoding. */
		if ((size_t)(eq - p) > 3 * l.max_name ||
		    (size_t)(amp - eq) > 3 * l.max_value + 1) {
			web_form_free(f);
			return WEB_FORM_TOO_LARGE;
		}
		if (web_form_unescape(p, (size_t)(eq - p), &name, &nlen) == -1) {
			web_form_free(f);
			return WEB_FORM_BAD;
		}
		if (web_form_unescape(eq == amp ? eq : eq + 1,
		    (size_t)(amp - (eq == amp ? eq : eq + 1)), &value, &vlen) ==
		    -1) {
			free(name);
			web_form_free(f);
			return WEB_FORM_BAD;
		}
		if ((rc = web_form_add(f, &l, name, value, nlen, vlen)) !=
		    WEB_FORM_OK) {
			web_form_free(f);
			return rc;
		}
	}
	return WEB_FORM_OK;
}

char *
web_form_safe_filename(const char *name)
{
	struct web_buf	 b = { 0 };
	const char	*base = name, *p;
	size_t		 len, i, n;
	unsigned int	 cp;
	char		*s;

	for (p = name; *p != '\0'; p++)
		if (*p == '/' || *p == '\\')
			base = p + 1;
	len = strlen(base);
	for (i = 0; i < len; i += n) {
		if ((n = web_utf8_next(base + i, len - i, &cp)) == 0) {
			n = 1;
			continue;
		}
		if (cp < 0x20 || cp == 0x7f || (cp >= 0x80 && cp < 0xa0) ||
		    cp == 0x200e || cp == 0x200f || cp == 0x061c ||
		    (cp >= 0x202a && cp <= 0x202e) ||
		    (cp >= 0x2066 && cp <= 0x2069) || cp == 0xfeff)
			continue;
		if (b.len == 0 && (cp == '.' || cp == ' '))
			continue;
		if (b.len + n > WEB_FORM_FILENAME_MAX)
			break;
		if (cp < 0x80 && strchr("<>:\"|?*", (int)cp) != NULL)
			web_buf_add(&b, "_", 1);
		else
			web_buf_add(&b, base + i, n);
	}
	/* Windows drops trailing dots and spaces; do it first. */
	while (b.len > 0 && (b.data[b.len - 1] == '.' ||
	    b.data[b.len - 1] == ' '))
		b.data[--b.len] = '\0';
	if (b.len == 0)
		web_buf_adds(&b, "attachment");
	s = web_buf_finish(&b);
	return s;
}

/* Type/subtype made of token characters, lower-cased; NULL otherwise. */
static char *
web_form_mime_type(const char *ct)
{
	GMimeContentType	*t;
	char			*mt, *r = NULL;
	size_t			 i, slash = 0;

	if ((t = g_mime_content_type_parse(NULL, ct)) == NULL)
		return NULL;
	mt = g_mime_content_type_get_mime_type(t);
	g_object_unref(t);
	if (mt == NULL)
		return NULL;
	for (i = 0; mt[i] != '\0'; i++) {
		if (mt[i] == '/')
			slash++;
		else if (!isalnum((unsigned char)mt[i]) &&
		    strchr("!#$&-^_.+", mt[i]) == NULL)
			break;
	}
	if (mt[i] == '\0' && slash == 1 && mt[0] != '/' && mt[i - 1] != '/') {
		r = xstrdup(mt);
		for (i = 0; r[i] != '\0'; i++)
			r[i] = (char)tolower((unsigned char)r[i]);
	}
	g_free(mt);
	return r;
}

static int
web_form_store_file(struct web_form_file *ff, const struct web_form_limits *l,
    const char *data, size_t size)
{
	char	*path;
	size_t	 off = 0;
	ssize_t	 w;

	ff->fd = -1;
	ff->size = size;
	if (l->tmpdir == NULL) {
		ff->data = xmemdup(data, size);
		return WEB_FORM_OK;
	}
	xasprintf(&path, "%s/upload.XXXXXX", l->tmpdir);
	if ((ff->fd = mkstemp(path)) == -1) {
		log_warn("web_form: mkstemp %s", path);
		free(path);
		return WEB_FORM_ERROR;
	}
	unlink(path);
	free(path);
	while (off < size) {
		if ((w = write(ff->fd, data + off, size - off)) == -1) {
			if (errno == EINTR)
				continue;
			log_warn("web_form: writing upload");
			return WEB_FORM_ERROR;
		}
		off += (size_t)w;
	}
	if (lseek(ff->fd, 0, SEEK_SET) == -1) {
		log_warn("web_form: lseek");
		return WEB_FORM_ERROR;
	}
	return WEB_FORM_OK;
}

/*
 * The filename parameter; an RFC 5987 filename* (which GMime decodes to
 * "filename" too) wins over the plain fallback, as RFC 6266 says.
 */
static const char *
web_form_filename(GMimeContentDisposition *cd)
{
	GMimeParamList	*pl = g_mime_content_disposition_get_parameters(cd);
	GMimeParam	*p;
	const char	*plain = NULL;
	int		 i, n = pl ? g_mime_param_list_length(pl) : 0;

	for (i = 0; i < n; i++) {
		p = g_mime_param_list_get_parameter_at(pl, i);
		if (g_ascii_strcasecmp(g_mime_param_get_name(p), "filename"))
			continue;
		if (g_mime_param_get_encoding_method(p) ==
		    GMIME_PARAM_ENCODING_METHOD_RFC2231)
			return g_mime_param_get_value(p);
		if (plain == NULL)
			plain = g_mime_param_get_value(p);
	}
	return plain;
}

/* Handles one part: its header block hdr[0..hlen) and body data[0..dlen). */
static int
web_form_part(struct web_form *f, const struct web_form_limits *l,
    const char *hdr, size_t hlen, const char *data, size_t dlen)
{
	GMimeContentDisposition	*cd = NULL;
	struct web_form_file	 ff;
	const char		*p = hdr, *end = hdr + hlen, *eol, *colon;
	const char		*name, *fname;
	char			*disp = NULL, *ctype = NULL, *line;
	int			 rc = WEB_FORM_BAD;

	for (; p < end; p = eol + 2) {
		if ((eol = memmem(p, (size_t)(end - p), "\r\n", 2)) == NULL)
			eol = end;
		if (eol == p || memchr(p, '\0', (size_t)(eol - p)) != NULL ||
		    memchr(p, '\n', (size_t)(eol - p)) != NULL ||
		    memchr(p, '\r', (size_t)(eol - p)) != NULL ||
		    *p == ' ' || *p == '\t' ||
		    (colon = memchr(p, ':', (size_t)(eol - p))) == NULL)
			goto out;
		line = xstrndup(colon + 1, (size_t)(eol - colon - 1));
		if ((size_t)(colon - p) == 19 &&
		    strncasecmp(p, "Content-Disposition", 19) == 0 &&
		    disp == NULL)
			disp = line;
		else if ((size_t)(colon - p) == 12 &&
		    strncasecmp(p, "Content-Type", 12) == 0 && ctype == NULL)
			ctype = line;
		else
			free(line);
		if (eol == end)
			break;
	}
	if (disp == NULL || (cd = g_mime_content_disposition_parse(NULL,
	    disp)) == NULL)
		goto out;
	if (g_mime_content_disposition_get_disposition(cd) == NULL ||
	    strcasecmp(g_mime_content_disposition_get_disposition(cd),
	    "form-data") != 0 ||
	    (name = g_mime_content_disposition_get_parameter(cd, "name")) ==
	    NULL)
		goto out;
	fname = web_form_filename(cd);
	if (fname == NULL) {
		if (dlen > l->max_value) {
			rc = WEB_FORM_TOO_LARGE;
			goto out;
		}
		line = xmalloc(dlen + 1);
		memcpy(line, data, dlen);
		line[dlen] = '\0';
		rc = web_form_add(f, l, xstrdup(name), line, strlen(name),
		    dlen);
		goto out;
	}
	/* A file input left empty. */
	if (*fname == '\0' && dlen == 0) {
		rc = WEB_FORM_OK;
		goto out;
	}
	if (f->nfiles >= l->max_files || dlen > l->max_file ||
	    strlen(name) > l->max_name) {
		rc = WEB_FORM_TOO_LARGE;
		goto out;
	}
	if (*name == '\0' || !web_utf8_valid(name, strlen(name)) ||
	    (!l->allow_duplicates && web_form_has(f, name)))
		goto out;
	memset(&ff, 0, sizeof(ff));
	ff.field = xstrdup(name);
	ff.filename = web_form_safe_filename(fname);
	ff.content_type = ctype ? web_form_mime_type(ctype) : NULL;
	if (ff.content_type == NULL)
		ff.content_type = xstrdup("application/octet-stream");
	f->files = xreallocarray(f->files, f->nfiles + 1, sizeof(*f->files));
	f->files[f->nfiles] = ff;
	rc = web_form_store_file(&f->files[f->nfiles++], l, data, dlen);
 out:
	if (cd != NULL)
		g_object_unref(cd);
	free(disp);
	free(ctype);
	return rc;
}

/* The boundary parameter if valid per RFC 2046, else NULL. */
static char *
web_form_boundary(const char *content_type)
{
	GMimeContentType	*t;
	const char		*b;
	char			*r = NULL;
	size_t			 i, n;

	web_text_gmime_init();
	if ((t = g_mime_content_type_parse(NULL, content_type)) == NULL)
		return NULL;
	if (g_mime_content_type_is_type(t, "multipart", "form-data") &&
	    (b = g_mime_content_type_get_parameter(t, "boundary")) != NULL) {
		n = strlen(b);
		for (i = 0; i < n; i++)
			if (!isalnum((unsigned char)b[i]) &&
			    strchr("'()+_,-./:=? ", b[i]) == NULL)
				break;
		if (n > 0 && n <= WEB_FORM_BOUNDARY_MAX && i == n &&
		    b[n - 1] != ' ')
			r = xstrdup(b);
	}
	g_object_unref(t);
	return r;
}

int
web_form_parse_multipart(const char *content_type, const char *body,
    size_t len, const struct web_form_limits *lim, struct web_form *f)
{
	struct web_form_limits	 l = web_form_limits(lim, 1);
	const char		*end = body + len, *p, *q, *hend;
	char			*boundary, delim[WEB_FORM_BOUNDARY_MAX + 5];
	size_t			 dlen, nparts = 0;
	int			 rc = WEB_FORM_BAD;

	memset(f, 0, sizeof(*f));
	if (len > l.max_total)
		return WEB_FORM_TOO_LARGE;
	if ((boundary = web_form_boundary(content_type)) == NULL)
		return WEB_FORM_BAD;
	/* delim is CRLF "--" boundary; the first one may lack the CRLF. */
	dlen = (size_t)snprintf(delim, sizeof(delim), "\r\n--%s", boundary);
	free(boundary);
	if (len >= dlen - 2 && memcmp(body, delim + 2, dlen - 2) == 0)
		p = body + dlen - 2;
	else if ((q = memmem(body, len, delim, dlen)) != NULL)
		p = q + dlen;
	else
		goto fail;
	for (;;) {
		if (end - p >= 2 && memcmp(p, "--", 2) == 0)
			break;		/* close delimiter; epilogue ignored */
		while (p < end && (*p == ' ' || *p == '\t'))
			p++;
		if (end - p < 2 || memcmp(p, "\r\n", 2) != 0)
			goto fail;
		p += 2;
		if (++nparts > l.max_parts) {
			rc = WEB_FORM_TOO_LARGE;
			goto fail;
		}
		if ((q = memmem(p, (size_t)(end - p), delim, dlen)) == NULL)
			goto fail;
		/* Headers end at the first empty line inside the part. */
		if ((size_t)(q - p) >= 2 && memcmp(p, "\r\n", 2) == 0)
			goto fail;
		if ((hend = memmem(p, (size_t)(q - p), "\r\n\r\n", 4)) == NULL) {
			if ((size_t)(q - p) > l.max_part_header)
				rc = WEB_FORM_TOO_LARGE;
			goto fail;
		}
		if ((size_t)(hend - p) > l.max_part_header) {
			rc = WEB_FORM_TOO_LARGE;
			goto fail;
		}
		if ((rc = web_form_part(f, &l, p, (size_t)(hend - p), hend + 4,
		    (size_t)(q - hend - 4))) != WEB_FORM_OK)
			goto fail;
		rc = WEB_FORM_BAD;
		p = q + dlen;
	}
	return WEB_FORM_OK;
 fail:
	web_form_free(f);
	return rc;
}

int
web_form_parse(const char *content_type, const char *body, size_t len,
    const struct web_form_limits *l, struct web_form *f)
{
	size_t	 n = strlen("application/x-www-form-urlencoded");

	memset(f, 0, sizeof(*f));
	if (content_type == NULL)
		return WEB_FORM_UNSUPPORTED;
	while (*content_type == ' ' || *content_type == '\t')
		content_type++;
	if (strncasecmp(content_type, "application/x-www-form-urlencoded",
	    n) == 0 && (content_type[n] == '\0' || content_type[n] == ';' ||
	    content_type[n] == ' '))
		return web_form_parse_urlencoded(body, len, l, f);
	if (strncasecmp(content_type, "multipart/form-data", 19) == 0)
		return web_form_parse_multipart(content_type, body, len, l, f);
	return WEB_FORM_UNSUPPORTED;
}

const char *
web_form_get(const struct web_form *f, const char *name)
{
	size_t	 i;

	for (i = 0; i < f->nfields; i++)
		if (strcmp(f->fields[i].name, name) == 0)
			return f->fields[i].value;
	return NULL;
}

const struct web_form_file *
web_form_get_file(const struct web_form *f, const char *name)
{
	size_t	 i;

	for (i = 0; i < f->nfiles; i++)
		if (strcmp(f->files[i].field, name) == 0)
			return &f->files[i];
	return NULL;
}

void
web_form_free(struct web_form *f)
{
	size_t	 i;

	for (i = 0; i < f->nfields; i++) {
		free(f->fields[i].name);
		/* Form values carry passwords. */
		OPENSSL_cleanse(f->fields[i].value, f->fields[i].len);
		free(f->fields[i].value);
	}
	for (i = 0; i < f->nfiles; i++) {
		free(f->files[i].field);
		free(f->files[i].filename);
		free(f->files[i].content_type);
		free(f->files[i].data);
		if (f->files[i].fd != -1)
			close(f->files[i].fd);
	}
	free(f->fields);
	free(f->files);
	memset(f, 0, sizeof(*f));
}
