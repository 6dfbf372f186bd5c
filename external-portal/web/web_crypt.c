/*
 * Encrypted storage in the web worker (web_crypt.h). A sealed message is
 * read through a GMime stream class of our own whose reads decrypt the
 * bytes asked for (store_crypt_pread: AES-256-CBC decrypts from any block
 * boundary), so the parser, the downloads and the substreams of parts
 * work on the plaintext without a copy in memory or on disk. The key of
 * each file is unwrapped by pkeyd; the web worker never holds a private
 * key.
 *
 * SECURITY: the sealed files are the store's own; their header is parsed
 * by store_crypt_open with every length checked.
 */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "log.h"
#include "pkeyd.h"
#include "store/store.h"
#include "store/store_crypt.h"
#include "web/web_cek.h"
#include "web/web_meta.h"
#include "web/web_crypt.h"
#include "web/web_pages.h"
#include "web/web_req.h"
#include "xmalloc.h"

static struct pkeyd_client	*web_crypt_pk;
static int			 web_crypt_open_seen;	/* unlocked once */

/* A sealed file shared by a stream and its substreams. */
struct web_crypt_file {
	int			 refs;
	struct store_crypt_file	*f;
};

struct web_crypt_stream {
	GMimeStream		 parent;
	struct web_crypt_file	*cf;
};

struct web_crypt_stream_class {
	GMimeStreamClass	 parent_class;
};

static GType	web_crypt_stream_get_type(void);
static GMimeStreamClass *web_crypt_parent;

#define WEB_CRYPT_STREAM(o)	((struct web_crypt_stream *)(o))

static void
web_crypt_file_unref(struct web_crypt_file *cf)
{
	if (cf != NULL && --cf->refs == 0) {
		store_crypt_close(cf->f);
		free(cf);
	}
}

static void
web_crypt_finalize(GObject *o)
{
	web_crypt_file_unref(WEB_CRYPT_STREAM(o)->cf);
	G_OBJECT_CLASS(web_crypt_parent)->finalize(o);
}

static int64_t
web_crypt_end(GMimeStream *s)
{
	return s->bound_end != -1 ? s->bound_end :
	    store_crypt_size(WEB_CRYPT_STREAM(s)->cf->f);
}

static ssize_t
web_crypt_read(GMimeStream *s, char *buf, size_t len)
{
	int64_t end = web_crypt_end(s);
	ssize_t n;

	if (s->position >= end)
		return 0;
	if ((int64_t)len > end - s->position)
		len = (size_t)(end - s->position);
	if ((n = store_crypt_pread(WEB_CRYPT_STREAM(s)->cf->f, buf, len,
	    s->position)) > 0)
		s->position += n;
	return n;
}

static ssize_t
web_crypt_write(GMimeStream *s, const char *buf, size_t len)
{
	(void)s;
	(void)buf;
	(void)len;
	return -1;
}

static int
web_crypt_flush(GMimeStream *s)
{
	(void)s;
	return 0;
}

static int
web_crypt_close(GMimeStream *s)
{
	(void)s;
	return 0;
}

static gboolean
web_crypt_eos(GMimeStream *s)
{
	return s->position >= web_crypt_end(s);
}

static int
web_crypt_reset(GMimeStream *s)
{
	s->position = s->bound_start;
	return 0;
}

static gint64
web_crypt_seek(GMimeStream *s, gint64 off, GMimeSeekWhence whence)
{
	gint64 real;

	switch (whence) {
	case GMIME_STREAM_SEEK_SET:
		real = off;
		break;
	case GMIME_STREAM_SEEK_CUR:
		real = s->position + off;
		break;
	case GMIME_STREAM_SEEK_END:
		real = web_crypt_end(s) + off;
		break;
	default:
		return -1;
	}
	if (real < s->bound_start || real > web_crypt_end(s))
		return -1;
	s->position = real;
	return real;
}

static gint64
web_crypt_tell(GMimeStream *s)
{
	return s->position;
}

static gint64
web_crypt_length(GMimeStream *s)
{
	return web_crypt_end(s) - s->bound_start;
}

static GMimeStream *
web_crypt_stream_new(struct web_crypt_file *cf, gint64 start, gint64 end)
{
	struct web_crypt_stream *cs;

	cs = g_object_new(web_crypt_stream_get_type(), NULL);
	cs->cf = cf;
	cf->refs++;
	g_mime_stream_construct(&cs->parent, start, end);
	return &cs->parent;
}

static GMimeStream *
web_crypt_substream(GMimeStream *s, gint64 start, gint64 end)
{
	return web_crypt_stream_new(WEB_CRYPT_STREAM(s)->cf, start, end);
}

static void
web_crypt_class_init(gpointer klass, gpointer data)
{
	GMimeStreamClass *sc = klass;

	(void)data;
	web_crypt_parent = g_type_class_peek_parent(klass);
	G_OBJECT_CLASS(klass)->finalize = web_crypt_finalize;
	sc->read = web_crypt_read;
	sc->write = web_crypt_write;
	sc->flush = web_crypt_flush;
	sc->close = web_crypt_close;
	sc->eos = web_crypt_eos;
	sc->reset = web_crypt_reset;
	sc->seek = web_crypt_seek;
	sc->tell = web_crypt_tell;
	sc->length = web_crypt_length;
	sc->substream = web_crypt_substream;
}

static GType
web_crypt_stream_get_type(void)
{
	static gsize type;

	if (g_once_init_enter(&type)) {
		GTypeInfo info;
		GType t;

		memset(&info, 0, sizeof(info));
		info.class_size = sizeof(struct web_crypt_stream_class);
		info.class_init = web_crypt_class_init;
		info.instance_size = sizeof(struct web_crypt_stream);
		t = g_type_register_static(GMIME_TYPE_STREAM,
		    "PosternSealedStream", &info, 0);
		g_once_init_leave(&type, t);
	}
	return (GType)type;
}

/* ---- the worker's side ---- */

void
web_crypt_init(struct pkeyd_client *pk)
{
	web_crypt_pk = pk;
}

int
web_crypt_locked(void)
{
	int st;

	if (web_crypt_pk == NULL ||
	    __atomic_load_n(&web_crypt_open_seen, __ATOMIC_RELAXED))
		return 0;
	if ((st = pkeyd_storage_status(web_crypt_pk)) == 1) {
		__atomic_store_n(&web_crypt_open_seen, 1, __ATOMIC_RELAXED);
		return 0;
	}
	return 1;
}

void
web_crypt_page_locked(struct web_req *r)
{
	web_header(r, "Retry-After", "300");
	web_page_simple(r, 503, "Temporarily unavailable", "The mail portal "
	    "is temporarily unavailable. Please try again later.", NULL,
	    NULL);
}

static const char *
web_crypt_name(const char *path)
{
	const char *b = strrchr(path, '/');

	return b != NULL ? b + 1 : path;
}

/*
 * The CEK of the sealed file f at path, set on f: from the cache, else
 * unwrapped by pkeyd (and then cached). 0, 1 while locked, -1 when no
 * storage key opens it. key is wiped on failure.
 */
static int
web_crypt_key(const char *path, struct store_crypt_file *f,
    unsigned char key[STORE_CRYPT_KEYLEN])
{
	const unsigned char *ris;
	size_t rislen;
	int rc;

	if (web_cek_get(web_crypt_name(path), key) == 0 &&
	    store_crypt_set_key(f, key) == 0)
		return 0;
	ris = store_crypt_rinfos(f, &rislen);
	if ((rc = pkeyd_storage_unwrap(web_crypt_pk, ris, rislen, key)) != 0 ||
	    store_crypt_set_key(f, key) == -1) {
		OPENSSL_cleanse(key, STORE_CRYPT_KEYLEN);
		return rc == 1 ? 1 : -1;
	}
	web_cek_put(web_crypt_name(path), key);
	return 0;
}

int
web_crypt_meta(struct store *s, struct store_msg *m)
{
	unsigned char key[STORE_CRYPT_KEYLEN];
	char *v[STORE_CRYPT_META_N];
	struct store_crypt_file *f;
	int fd, rc = -1;

	if (m->sealed_meta == NULL)
		return 0;
	if (web_crypt_pk == NULL)
		return -1;
	if (web_meta_get(web_crypt_name(m->path), &v[STORE_CRYPT_META_FROM],
	    &v[STORE_CRYPT_META_SUBJECT]) == 0) {
		free(m->hdr_from);
		free(m->subject);
		m->hdr_from = v[STORE_CRYPT_META_FROM];
		m->subject = v[STORE_CRYPT_META_SUBJECT];
		return 0;
	}
	if (web_cek_get(web_crypt_name(m->path), key) == -1) {
		/*
		 * Not cached: the file's recipient infos go to pkeyd (the
		 * file from the database first when another portal stored
		 * it).
		 */
		if (store_msg_fetch(s, m) == -1 ||
		    (fd = open(m->path, O_RDONLY | O_CLOEXEC)) == -1) {
			log_warn("web: %s", m->path);
			return -1;
		}
		if ((f = store_crypt_open(fd)) == NULL)
			return -1;
		rc = web_crypt_key(m->path, f, key);
		store_crypt_close(f);
		if (rc != 0) {
			log_warnx("web: %s: %s", m->path, rc == 1 ?
			    "storage locked" : "no storage key opens it");
			return -1;
		}
	}
	rc = store_crypt_meta_open(key, m->sealed_meta, m->sealed_metalen, v,
	    STORE_CRYPT_META_N);
	OPENSSL_cleanse(key, sizeof(key));
	if (rc == -1) {
		log_warnx("web: message %lld: its sealed From and Subject do "
		    "not open with its file's key", (long long)m->id);
		return -1;
	}
	free(m->hdr_from);
	free(m->subject);
	m->hdr_from = v[STORE_CRYPT_META_FROM];
	m->subject = v[STORE_CRYPT_META_SUBJECT];
	web_meta_put(web_crypt_name(m->path), m->hdr_from, m->subject);
	return 0;
}

GMimeStream *
web_crypt_open(const char *path, int64_t *size)
{
	struct web_crypt_file *cf;
	struct store_crypt_file *f;
	unsigned char key[STORE_CRYPT_KEYLEN];
	GMimeStream *st;
	int fd, rc;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1) {
		log_warn("web: %s", path);
		return NULL;
	}
	if (web_crypt_pk == NULL || store_crypt_is_sealed(fd) != 1) {
		/* Plain: stored before encryption was turned on. */
		st = g_mime_stream_fs_new(fd);
		*size = g_mime_stream_length(st);
		return st;
	}
	if ((f = store_crypt_open(fd)) == NULL)
		return NULL;
	if ((rc = web_crypt_key(path, f, key)) != 0) {
		log_warnx("web: %s: %s", path, rc == 1 ? "storage locked" :
		    "no storage key opens it");
		store_crypt_close(f);
		return NULL;
	}
	OPENSSL_cleanse(key, sizeof(key));
	cf = xcalloc(1, sizeof(*cf));
	cf->f = f;
	st = web_crypt_stream_new(cf, 0, -1);
	*size = store_crypt_size(f);
	return st;
}
