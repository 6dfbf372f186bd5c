/*
 * An attachment download from the offsets recorded at delivery: one
 * query finds the message of the signed-in owner and the part's byte
 * range, and the range is decoded in chunks (store_part_read), so the
 * message is not parsed. A small part is answered from memory with a
 * Content-Length in one reply; a large one is streamed in bounded chunks
 * with its recorded decoded length. The headers are those of the parsed
 * path (web_mail.c): application/octet-stream, a safe file name.
 *
 * SECURITY: the id and part number come from the browser; another
 * owner's message, and a PDF-OTP message, is "not found" (owner and
 * state are in the query). The part's
 * bytes are hostile and only copied; their name passes the same
 * safe-name filter and RFC 6266 encoding as the parsed path.
 */
#include <stdio.h>
#include <stdlib.h>

#include "log.h"
#include "store/store.h"
#include "web/web_pages.h"
#include "web/web_part.h"
#include "xmalloc.h"

struct web_part_stream {
	struct web_stream		 s;
	struct store_part_reader	*rd;
};

static ssize_t
web_part_stream_read(struct web_stream *s, char *buf, size_t len)
{
	return store_part_read(((struct web_part_stream *)s)->rd, buf, len);
}

static void
web_part_stream_free(struct web_stream *s)
{
	struct web_part_stream *ps = (struct web_part_stream *)s;

	store_part_reader_close(ps->rd);
	free(ps);
}

/* The whole part into r->out; 0, or -1 when it did not read back. */
static int
web_part_inline(struct web_req *r, struct store_part_reader *rd,
    int64_t size)
{
	size_t before = r->out.len;
	int64_t got;
	int rc;

	/* One read of the range, decoded into one allocation. */
	rc = store_part_read_all(rd, &r->out);
	got = (int64_t)(r->out.len - before);
	if (rc == -1 || got != size) {
		log_warnx("web: a part of %lld bytes read back as %lld",
		    (long long)size, (long long)got);
		return -1;
	}
	return 0;
}

int
web_part_send_recorded(struct web_req *r, int64_t id, int64_t idx)
{
	struct store_part_reader *rd;
	struct web_part_stream *ps;
	struct store_part p;
	struct store_msg m;
	char *name, *cd, dflt[32];
	int rc;

	if (idx < 1 || idx > INT32_MAX)
		return 1;
	rc = store_part_get(r->store, r->email, id, (int)idx, &m, &p);
	if (rc == STORE_NOTFOUND)
		return 1;
	if (rc == -1) {
		web_page_tempfail(r);
		return 0;
	}
	if ((rd = store_part_reader_open(m.path, &p)) == NULL) {
		store_part_free(&p);
		store_msg_free(&m);
		return 1;
	}
	r->no_store = 1;
	snprintf(dflt, sizeof(dflt), "part-%lld", (long long)idx);
	if (p.size <= WEB_PART_INLINE_MAX && p.length <= STORE_PART_ALL_MAX) {
		if (web_part_inline(r, rd, p.size) == -1) {
			store_part_reader_close(rd);
			store_part_free(&p);
			store_msg_free(&m);
			web_page_tempfail(r);
			return 0;
		}
		store_part_reader_close(rd);
	} else {
		ps = xcalloc(1, sizeof(*ps));
		ps->s.read = web_part_stream_read;
		ps->s.free = web_part_stream_free;
		ps->s.length = p.size;
		ps->rd = rd;
		r->stream = &ps->s;
	}
	/* Never rendered on our origin: the browser saves it. */
	r->ctype = xstrdup("application/octet-stream");
	name = web_form_safe_filename(p.filename ? p.filename : dflt);
	cd = web_text_content_disposition(name);
	web_header(r, "Content-Disposition", cd);
	free(cd);
	free(name);
	store_part_free(&p);
	store_msg_free(&m);
	return 0;
}
