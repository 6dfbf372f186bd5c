/*
 * The MIME part offsets of stored messages (see store.h): written in the
 * delivery transaction, read by the web worker to serve a download from a
 * byte range of the message file.
 *
 * SECURITY: the recorded bytes are mail from any sender. The reader never
 * reads outside the recorded range, holds one chunk in and one out, and
 * decodes as GMime's decoders do (the same a parse would use): base64's
 * whole groups with a table or 16 digits at a time (shared/b64.c), the
 * rest with GMime's own.
 */
#include <errno.h>
#include <pthread.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <gmime/gmime.h>

#include "b64.h"
#include "buf.h"
#include "db.h"
#include "log.h"
#include "store/store_int.h"
#include "xmalloc.h"

int
store_part_put(struct db *db, int64_t id, const struct store_part *p,
    int n)
{
	for (int i = 0; i < n; i++)
		if (db_run(db, "INSERT INTO portal_parts (msg, part, \"offset\", "
		    "length, encoding, ctype, filename, size) VALUES "
		    "(?, ?, ?, ?, ?, ?, ?, ?)", "iiiittti", id,
		    (int64_t)p[i].part, p[i].offset, p[i].length, p[i].encoding,
		    p[i].ctype, p[i].filename, p[i].size) == -1)
			return -1;
	return 0;
}

int
store_part_get(struct store *s, const char *owner, int64_t id, int part,
    struct store_msg *m, struct store_part *p)
{
	char key[STORE_KEY_MAX];
	struct db *db;
	struct db_stmt *st;
	const char *name;
	int rc = -1;

	memset(m, 0, sizeof(*m));
	memset(p, 0, sizeof(*p));
	owner = store_key(owner, key, sizeof(key));
	/*
	 * The owner in the same statement: another's id finds nothing. Only
	 * Webmail messages, as store_msg_get(): a PDF-OTP message's content
	 * is never served by the web.
	 */
	if ((db = store_db(s)) == NULL || (st = db_prepare_cached(db,
	    "SELECT m.path, m.size, p.\"offset\", p.length, p.encoding, p.ctype, "
	    "p.filename, p.size FROM portal_parts p JOIN portal_messages m "
	    "ON m.id = p.msg WHERE p.msg = ? AND p.part = ? AND "
	    "m.owner = ? AND m.state = 'webmail'")) == NULL)
		return -1;
	if (db_bind(st, "iit", id, (int64_t)part, owner) == 0 &&
	    (rc = db_step(st)) == DB_ROW) {
		name = (const char *)db_col_text(st, 0);
		m->id = id;
		snprintf(m->owner, sizeof(m->owner), "%s", owner);
		m->path = store_abspath(s, name ? name : "");
		m->size = db_col_int(st, 1);
		p->part = part;
		p->offset = db_col_int(st, 2);
		p->length = db_col_int(st, 3);
		p->encoding = store_col_dup(st, 4);
		p->ctype = store_col_dup(st, 5);
		p->filename = store_col_dup(st, 6);
		p->size = db_col_int(st, 7);
	}
	db_finalize(st);
	if (rc == DB_ROW && store_blob_fetch(s, strrchr(m->path, '/') + 1) ==
	    -1) {
		free(m->path);
		m->path = NULL;
		store_part_free(p);
		return -1;
	}
	if (rc == DB_ROW)
		return 0;
	return rc == DB_DONE ? STORE_NOTFOUND : -1;
}

void
store_part_free(struct store_part *p)
{
	xfree(&p->encoding);
	xfree(&p->ctype);
	xfree(&p->filename);
}

/* Room for the decoder's output of one chunk (GMime's bound, with slack). */
#define STORE_PART_OUTMAX	(STORE_PART_CHUNK + 64)

/* The end of a range is never split closer than this (base64 padding). */
#define STORE_PART_TAIL		16

struct store_part_reader {
	int		 fd;
	off_t		 pos, end;
	int		 decode;
	GMimeEncoding	 enc;
	char		*path;
	size_t		 outpos, outlen;
	char		 in[STORE_PART_CHUNK + STORE_PART_TAIL];
	char		 out[STORE_PART_OUTMAX + STORE_PART_TAIL];
};

/* Base64 digit values; 0xff for anything else, '=' included. */
static unsigned char store_part_b64[256];
/*
 * The same, shifted to their place in a group's 24 bits, one table per
 * position; STORE_PART_B64_BAD for anything else. A group is the OR of
 * four lookups and one test.
 */
#define STORE_PART_B64_BAD	0x01000000u
static uint32_t store_part_b64_at[4][256];

static void
store_part_b64_init(void)
{
	static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	    "abcdefghijklmnopqrstuvwxyz0123456789+/";

	memset(store_part_b64, 0xff, sizeof(store_part_b64));
	for (int k = 0; k < 4; k++)
		for (int c = 0; c < 256; c++)
			store_part_b64_at[k][c] = STORE_PART_B64_BAD;
	for (int i = 0; i < 64; i++) {
		store_part_b64[(unsigned char)a[i]] = i;
		for (int k = 0; k < 4; k++)
			store_part_b64_at[k][(unsigned char)a[i]] =
			    (uint32_t)i << (18 - 6 * k);
	}
}

/*
 * Decodes one chunk of base64. Whole groups of four digits are decoded
 * here and characters outside the alphabet skipped, as GMime does; the
 * rest of the chunk from the first group that holds '=' or is cut short
 * (from *used on) goes to GMime's decoder with its state at a group
 * boundary (store_part_b64_step), so the output is GMime's, padding and
 * all, only faster. Each group is read before its 3 bytes are written,
 * so to may be in itself. The start of the chunk and of each line goes
 * to b64_decode_blocks() first, which takes its run of 16-digit blocks
 * (64 of a 76-digit line) under the same rules.
 */
static size_t
store_part_b64_groups(struct store_part_reader *rd, const char *in, size_t n,
    char *to, size_t *used)
{
	const unsigned char *u = (const unsigned char *)in;
	unsigned char *o = (unsigned char *)to;
	size_t i = 0, out = 0, k;
	int line = 1;		/* at a line's start: blocks of 16 first */

	while (rd->enc.state == 0 && i < n) {
		uint32_t v;

		if (line) {
			out += b64_decode_blocks(u + i, n - i, o + out, &k);
			i += k;
			line = 0;
			continue;
		}
		if (n - i >= 4 && !((v = store_part_b64_at[0][u[i]] |
		    store_part_b64_at[1][u[i + 1]] |
		    store_part_b64_at[2][u[i + 2]] |
		    store_part_b64_at[3][u[i + 3]]) & STORE_PART_B64_BAD)) {
			o[out++] = v >> 16;
			o[out++] = (v >> 8) & 0xff;
			o[out++] = v & 0xff;
			i += 4;
			continue;
		}
		/* Not a whole group here: a line break or other junk is
		 * skipped; '=' or a group cut short ends the fast part. */
		if (store_part_b64[u[i]] == 0xff && u[i] != '=') {
			i++;
			line = 1;
			continue;
		}
		break;
	}
	*used = i;
	return out;
}

static size_t
store_part_b64_step(struct store_part_reader *rd, const char *in, size_t n,
    char *to)
{
	size_t i, out;

	out = store_part_b64_groups(rd, in, n, to, &i);
	if (i < n)
		out += g_mime_encoding_step(&rd->enc, in + i, n - i,
		    to + out);
	return out;
}

static GMimeContentEncoding
store_part_encoding(const char *name)
{
	GMimeContentEncoding e = g_mime_content_encoding_from_string(name);

	return e == GMIME_CONTENT_ENCODING_BASE64 ||
	    e == GMIME_CONTENT_ENCODING_QUOTEDPRINTABLE ? e :
	    GMIME_CONTENT_ENCODING_DEFAULT;
}

int
store_part_encoding_ok(const char *name)
{
	return name == NULL ||
	    store_part_encoding(name) != GMIME_CONTENT_ENCODING_DEFAULT;
}

struct store_part_reader *
store_part_reader_open(const char *path, const struct store_part *p)
{
	struct store_part_reader *rd;

	if (!store_part_encoding_ok(p->encoding) || p->offset < 0 ||
	    p->length < 0) {
		log_warnx("store: part %d of %s: encoding %s not served from "
		    "offsets", p->part, path, p->encoding);
		return NULL;
	}
	rd = xcalloc(1, sizeof(*rd));
	if ((rd->fd = open(path, O_RDONLY | O_CLOEXEC)) == -1) {
		log_warn("store: %s", path);
		free(rd);
		return NULL;
	}
	rd->path = xstrdup(path);
	rd->pos = p->offset;
	rd->end = p->offset + p->length;
	if (p->encoding != NULL) {
		static pthread_once_t once = PTHREAD_ONCE_INIT;

		pthread_once(&once, store_part_b64_init);
		rd->decode = 1;
		g_mime_encoding_init_decode(&rd->enc,
		    store_part_encoding(p->encoding));
	}
	return rd;
}

/* The next chunk of the range, into in; its length, 0 at the end, -1. */
static ssize_t
store_part_fill(struct store_part_reader *rd, char *to, size_t len)
{
	size_t want = rd->end - rd->pos < (off_t)len ?
	    (size_t)(rd->end - rd->pos) : len;
	ssize_t n;

	if (want == 0)
		return 0;
	/* The last bytes (base64 padding) come with the chunk before them. */
	if (len == sizeof(rd->in) - STORE_PART_TAIL &&
	    rd->end - rd->pos - want <= STORE_PART_TAIL)
		want = rd->end - rd->pos;
	while ((n = pread(rd->fd, to, want, rd->pos)) == -1 && errno == EINTR)
		;
	if (n == -1) {
		log_warn("store: reading %s", rd->path);
		return -1;
	}
	if (n == 0) {
		log_warnx("store: %s is shorter than its recorded parts",
		    rd->path);
		return -1;
	}
	rd->pos += n;
	return n;
}

/* n bytes of the range decoded into to (room for n bytes). */
static size_t
store_part_decode(struct store_part_reader *rd, const char *in, size_t n,
    char *to)
{
	/* Decoding only shrinks: base64 to 3/4, QP to at most n. */
	return rd->enc.encoding == GMIME_CONTENT_ENCODING_BASE64 ?
	    store_part_b64_step(rd, in, n, to) :
	    g_mime_encoding_step(&rd->enc, in, n, to);
}

/*
 * Decodes the n bytes at p over themselves: base64's whole groups write
 * 3 bytes behind the 4 they read; what is left for GMime's decoder (all
 * of quoted-printable, the padded end of base64) is first copied out, so
 * its output never overtakes its input whatever it does inside.
 */
static size_t
store_part_decode_in_place(struct store_part_reader *rd, char *p, size_t n)
{
	size_t i = 0, out = 0;
	char *rest;

	if (rd->enc.encoding == GMIME_CONTENT_ENCODING_BASE64)
		out = store_part_b64_groups(rd, p, n, p, &i);
	if (i < n) {
		rest = xmalloc(n - i);
		memcpy(rest, p + i, n - i);
		out += g_mime_encoding_step(&rd->enc, rest, n - i, p + out);
		free(rest);
	}
	return out;
}

int
store_part_read_all(struct store_part_reader *rd, struct buf *b)
{
	size_t len = rd->end - rd->pos, got = 0;
	char *in;
	ssize_t n;

	if (len > STORE_PART_ALL_MAX || buf_reserve(b, len) == -1)
		return -1;
	/* Read into the answer's room, and decoded there (see below). */
	in = b->data + b->len;
	while (got < len) {
		n = pread(rd->fd, in + got, len - got, rd->pos + got);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0) {
			if (n == -1)
				log_warn("store: reading %s", rd->path);
			else
				log_warnx("store: %s is shorter than its "
				    "recorded parts", rd->path);
			return -1;
		}
		got += n;
	}
	rd->pos += len;
	if (rd->decode)
		len = store_part_decode_in_place(rd, in, len);
	b->len += len;
	b->data[b->len] = '\0';
	return 0;
}

ssize_t
store_part_read(struct store_part_reader *rd, char *buf, size_t len)
{
	ssize_t n;

	if (!rd->decode)
		return store_part_fill(rd, buf, len);
	while (rd->outpos == rd->outlen) {
		if ((n = store_part_fill(rd, rd->in, sizeof(rd->in) -
		    STORE_PART_TAIL)) <= 0)
			return n;
		rd->outlen = store_part_decode(rd, rd->in, n, rd->out);
		rd->outpos = 0;
	}
	n = rd->outlen - rd->outpos < len ? rd->outlen - rd->outpos : len;
	memcpy(buf, rd->out + rd->outpos, n);
	rd->outpos += n;
	return n;
}

void
store_part_reader_close(struct store_part_reader *rd)
{
	if (rd == NULL)
		return;
	close(rd->fd);
	free(rd->path);
	free(rd);
}
