/*
 * Raw header section handling; see header.h.
 *
 * SECURITY: the bytes are a message header written by any sender on the
 * Internet (internal-gw's SMTP side, the portal's ingest, S/MIME, the
 * spool). Every reader takes the caller's size limit and answers -2 past
 * it, never reading or keeping more; a line is split on CRLF or LF only,
 * a continuation without a field before it is an error, and fields are
 * kept byte for byte (nothing is re-encoded, so nothing can be smuggled by
 * a rewrite). Values are unfolded copies; callers decode and escape them
 * before showing them anywhere.
 */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "header.h"
#include "xmalloc.h"

static void
header_add(struct header *h, const char *raw, size_t rawlen)
{
	struct header_field *f;
	const char *colon = memchr(raw, ':', rawlen);
	char *v;
	size_t i, o;

	h->fields = xreallocarray(h->fields, h->nfields + 1, sizeof(*h->fields));
	f = &h->fields[h->nfields++];
	f->raw = xmemdup(raw, rawlen);
	f->rawlen = rawlen;
	f->name = xmemdup(raw, colon - raw);
	/* Name may be followed by white space before the colon (obsolete
	 * syntax); trim it. */
	for (i = strlen(f->name); i > 0 && (f->name[i - 1] == ' ' ||
	    f->name[i - 1] == '\t'); i--)
		f->name[i - 1] = '\0';
	/* Unfold: drop CR and LF, keep the white space after them. */
	v = xmalloc(rawlen - (colon - raw));
	for (i = colon - raw + 1, o = 0; i < rawlen; i++)
		if (raw[i] != '\r' && raw[i] != '\n')
			v[o++] = raw[i];
	while (o > 0 && (v[o - 1] == ' ' || v[o - 1] == '\t'))
		o--;
	v[o] = '\0';
	for (i = 0; v[i] == ' ' || v[i] == '\t'; i++)
		;
	memmove(v, v + i, o - i + 1);
	f->value = v;
}

static int
header_valid_name(const char *line, size_t len)
{
	size_t i;

	for (i = 0; i < len && line[i] != ':'; i++) {
		unsigned char c = line[i];

		/* ftext is printable US-ASCII except ':'; allow trailing WSP
		 * before the colon (obs-optional). */
		if (c == ' ' || c == '\t') {
			for (size_t j = i; j < len && line[j] != ':'; j++)
				if (line[j] != ' ' && line[j] != '\t')
					return 0;
			continue;
		}
		if (c < 33 || c > 126)
			return 0;
	}
	return i > 0 && i < len && line[0] != ' ' && line[0] != '\t';
}

/* Feeds one physical line (with its line ending) into the parser. */
static int
header_line(struct header *h, char **cur, size_t *curlen, const char *line,
    size_t n, int *done)
{
	int empty = (n == 2 && line[0] == '\r' && line[1] == '\n') ||
	    (n == 1 && line[0] == '\n');
	int cont = n > 0 && (line[0] == ' ' || line[0] == '\t');

	if (!cont && *cur != NULL) {
		header_add(h, *cur, *curlen);
		xfree(cur);
		*curlen = 0;
	}
	if (empty) {
		h->has_body_sep = 1;
		*done = 1;
		return 0;
	}
	if (cont) {
		if (*cur == NULL)
			return -2;	/* continuation without a field */
	} else if (!header_valid_name(line, n)) {
		/* Not a header line: the header ends here without the empty
		 * line (RFC 5322 allows no body separator only at EOF; treat
		 * the rest as body, as MTAs do). */
		*done = 2;
		return 0;
	}
	*cur = xreallocarray(*cur, *curlen + n + 1, 1);
	memcpy(*cur + *curlen, line, n);
	*curlen += n;
	return 0;
}

int
header_parse_mem(const char *buf, size_t len, size_t maxlen, struct header *h)
{
	char *cur = NULL;
	size_t curlen = 0, off = 0;
	int done = 0;

	memset(h, 0, sizeof(*h));
	while (off < len && !done) {
		const char *nl = memchr(buf + off, '\n', len - off);
		size_t n = nl ? (size_t)(nl - (buf + off)) + 1 : len - off;

		if (off + n > maxlen) {
			free(cur);
			header_free(h);
			return -2;
		}
		if (header_line(h, &cur, &curlen, buf + off, n, &done) == -2) {
			free(cur);
			header_free(h);
			return -2;
		}
		if (done != 2)
			off += n;
	}
	if (cur != NULL) {
		header_add(h, cur, curlen);
		free(cur);
	}
	h->len = off;
	return 0;
}

int
header_read(FILE *f, size_t maxlen, struct header *h)
{
	char *cur = NULL, *line = NULL;
	size_t curlen = 0, cap = 0, total = 0;
	ssize_t n;
	int done = 0;

	memset(h, 0, sizeof(*h));
	while (!done && (n = getline(&line, &cap, f)) > 0) {
		if (total + n > maxlen) {
			free(line);
			free(cur);
			header_free(h);
			return -2;
		}
		if (header_line(h, &cur, &curlen, line, n, &done) == -2) {
			free(line);
			free(cur);
			header_free(h);
			return -2;
		}
		if (done == 2) {
			/* Give the body line back to the stream. */
			if (fseeko(f, -(off_t)n, SEEK_CUR) == -1) {
				free(line);
				header_free(h);
				return -1;
			}
			break;
		}
		total += n;
	}
	free(line);
	if (ferror(f)) {
		free(cur);
		header_free(h);
		return -1;
	}
	if (cur != NULL) {
		header_add(h, cur, curlen);
		free(cur);
	}
	h->len = total;
	return 0;
}

void
header_free(struct header *h)
{
	for (size_t i = 0; i < h->nfields; i++) {
		free(h->fields[i].name);
		free(h->fields[i].raw);
		free(h->fields[i].value);
	}
	free(h->fields);
	memset(h, 0, sizeof(*h));
}

const struct header_field *
header_get(const struct header *h, const char *name)
{
	for (size_t i = 0; i < h->nfields; i++)
		if (strcasecmp(h->fields[i].name, name) == 0)
			return &h->fields[i];
	return NULL;
}

int
header_trigger_parse(const char *spec, char *name, size_t namelen,
    char *value, size_t valuelen)
{
	const char *colon = strchr(spec, ':'), *s, *e;

	if (colon == NULL)
		return -1;
	for (s = spec; *s == ' ' || *s == '\t'; s++)
		;
	for (e = colon; e > s && (e[-1] == ' ' || e[-1] == '\t'); e--)
		;
	if (e == s || (size_t)(e - s) >= namelen)
		return -1;
	memcpy(name, s, e - s);
	name[e - s] = '\0';
	for (s = colon + 1; *s == ' ' || *s == '\t'; s++)
		;
	for (e = s + strlen(s); e > s && isspace((unsigned char)e[-1]); e--)
		;
	if ((size_t)(e - s) >= valuelen)
		return -1;
	memcpy(value, s, e - s);
	value[e - s] = '\0';
	return 0;
}

int
header_trigger_match(const struct header *h, const char *spec)
{
	char name[256], value[1024];

	if (header_trigger_parse(spec, name, sizeof(name), value,
	    sizeof(value)) == -1)
		return 0;
	for (size_t i = 0; i < h->nfields; i++)
		if (strcasecmp(h->fields[i].name, name) == 0 &&
		    strcasecmp(h->fields[i].value, value) == 0)
			return 1;
	return 0;
}

int
header_rewrite(FILE *in, FILE *out, size_t maxlen, const char *const *names,
    size_t nnames, const char *extra, int *removed)
{
	struct header h;
	char buf[65536];
	size_t n;
	int r;

	*removed = 0;
	if ((r = header_read(in, maxlen, &h)) != 0)
		return r;
	if (extra != NULL && fputs(extra, out) == EOF)
		goto ioerr;
	for (size_t i = 0; i < h.nfields; i++) {
		int drop = 0;

		for (size_t j = 0; j < nnames && !drop; j++)
			drop = strcasecmp(h.fields[i].name, names[j]) == 0;
		if (drop) {
			(*removed)++;
			continue;
		}
		if (fwrite(h.fields[i].raw, 1, h.fields[i].rawlen, out) !=
		    h.fields[i].rawlen)
			goto ioerr;
	}
	if (h.has_body_sep && fputs("\r\n", out) == EOF)
		goto ioerr;
	while ((n = fread(buf, 1, sizeof(buf), in)) > 0)
		if (fwrite(buf, 1, n, out) != n)
			goto ioerr;
	if (ferror(in) || fflush(out) == EOF)
		goto ioerr;
	header_free(&h);
	return 0;
ioerr:
	header_free(&h);
	return -1;
}
