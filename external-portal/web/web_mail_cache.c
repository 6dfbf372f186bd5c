/*
 * A bounded cache of the rendered pieces of message pages: the header
 * list, the text body and the attachment list of a stored message. A
 * message's file never changes once stored, so its rendering does not
 * either; reading a page again then skips the MIME parse, the
 * quoted-printable or base64 decoding and the escaping.
 *
 * Safety: an entry holds only what comes from the message, never a part
 * of a request (no CSRF token, session, property or unread state). It is
 * found by the message id together with its owner and its store file
 * name (random, never reused), and the page looks it up only after the
 * store has found the message as the signed-in user's in this request:
 * access is checked per request as without the cache, and an entry is
 * never handed to another user. A deleted message is dropped here
 * (web_mail_delete); a message deleted by another process (retention, an
 * account deletion) is no longer found by the store, so its entry is
 * never read again and ages out. The whole cache holds at most
 * WEB_MAIL_CACHE_MAX bytes, least recently used first out.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "store/store.h"
#include "web/web_mail_cache.h"
#include "xmalloc.h"

#define WEB_MAIL_CACHE_BUCKETS	1024

struct web_mail_cache_entry {
	int64_t				 id;
	char				*owner, *name;
	struct web_mail_render		 r;
	size_t				 size;
	struct web_mail_cache_entry	*hnext;		/* in its bucket */
	struct web_mail_cache_entry	*prev, *next;	/* most recent first */
};

static pthread_mutex_t web_mail_cache_mtx = PTHREAD_MUTEX_INITIALIZER;
static struct web_mail_cache_entry *web_mail_cache_tab[WEB_MAIL_CACHE_BUCKETS];
static struct web_mail_cache_entry *web_mail_cache_head, *web_mail_cache_tail;
static size_t web_mail_cache_bytes, web_mail_cache_count;

static char *
web_mail_cache_dup(const char *s)
{
	return s != NULL ? xstrdup(s) : NULL;
}

static size_t
web_mail_cache_len(const char *s)
{
	return s != NULL ? strlen(s) + 1 : 0;
}

static void
web_mail_render_copy(struct web_mail_render *to,
    const struct web_mail_render *from)
{
	to->title = web_mail_cache_dup(from->title);
	to->head = web_mail_cache_dup(from->head);
	to->body = web_mail_cache_dup(from->body);
	to->att = web_mail_cache_dup(from->att);
	to->html = from->html;
}

void
web_mail_render_free(struct web_mail_render *r)
{
	xfree(&r->title);
	xfree(&r->head);
	xfree(&r->body);
	xfree(&r->att);
}

static struct web_mail_cache_entry **
web_mail_cache_bucket(int64_t id)
{
	return &web_mail_cache_tab[(uint64_t)id % WEB_MAIL_CACHE_BUCKETS];
}

/* Takes e out of its bucket and the recency list, and frees it. */
static void
web_mail_cache_unlink(struct web_mail_cache_entry *e)
{
	struct web_mail_cache_entry **pp = web_mail_cache_bucket(e->id);

	while (*pp != e)
		pp = &(*pp)->hnext;
	*pp = e->hnext;
	if (e->prev != NULL)
		e->prev->next = e->next;
	else
		web_mail_cache_head = e->next;
	if (e->next != NULL)
		e->next->prev = e->prev;
	else
		web_mail_cache_tail = e->prev;
	web_mail_cache_bytes -= e->size;
	web_mail_cache_count--;
	web_mail_render_free(&e->r);
	free(e->owner);
	free(e->name);
	free(e);
}

static void
web_mail_cache_front(struct web_mail_cache_entry *e)
{
	if (web_mail_cache_head == e)
		return;
	/* Out of the list, if in it... */
	if (e->prev != NULL)
		e->prev->next = e->next;
	if (e->next != NULL)
		e->next->prev = e->prev;
	else if (web_mail_cache_tail == e)
		web_mail_cache_tail = e->prev;
	/* ...and in at the front. */
	e->prev = NULL;
	e->next = web_mail_cache_head;
	if (web_mail_cache_head != NULL)
		web_mail_cache_head->prev = e;
	web_mail_cache_head = e;
	if (web_mail_cache_tail == NULL)
		web_mail_cache_tail = e;
}

static struct web_mail_cache_entry *
web_mail_cache_find(int64_t id)
{
	struct web_mail_cache_entry *e;

	for (e = *web_mail_cache_bucket(id); e != NULL; e = e->hnext)
		if (e->id == id)
			return e;
	return NULL;
}

int
web_mail_cache_get(int64_t id, const char *owner, const char *name,
    struct web_mail_render *out)
{
	struct web_mail_cache_entry *e;
	int rc = -1;

	memset(out, 0, sizeof(*out));
	pthread_mutex_lock(&web_mail_cache_mtx);
	if ((e = web_mail_cache_find(id)) != NULL) {
		if (strcmp(e->owner, owner) == 0 &&
		    strcmp(e->name, name) == 0) {
			web_mail_render_copy(out, &e->r);
			web_mail_cache_front(e);
			rc = 0;
		} else {
			/* Not this message any more: never served. */
			web_mail_cache_unlink(e);
		}
	}
	pthread_mutex_unlock(&web_mail_cache_mtx);
	return rc;
}

void
web_mail_cache_put(int64_t id, const char *owner, const char *name,
    const struct web_mail_render *in)
{
	struct web_mail_cache_entry *e;
	size_t size;

	size = sizeof(*e) + strlen(owner) + strlen(name) + 2 +
	    web_mail_cache_len(in->title) + web_mail_cache_len(in->head) +
	    web_mail_cache_len(in->body) + web_mail_cache_len(in->att);
	if (size > WEB_MAIL_CACHE_ENTRY)
		return;
	e = xcalloc(1, sizeof(*e));
	e->id = id;
	e->owner = xstrdup(owner);
	e->name = xstrdup(name);
	e->size = size;
	web_mail_render_copy(&e->r, in);
	pthread_mutex_lock(&web_mail_cache_mtx);
	if ((e->hnext = web_mail_cache_find(id)) != NULL) {
		/* Rendered twice at once: keep the first. */
		pthread_mutex_unlock(&web_mail_cache_mtx);
		e->hnext = NULL;
		web_mail_render_free(&e->r);
		free(e->owner);
		free(e->name);
		free(e);
		return;
	}
	e->hnext = *web_mail_cache_bucket(id);
	*web_mail_cache_bucket(id) = e;
	web_mail_cache_front(e);
	web_mail_cache_bytes += size;
	web_mail_cache_count++;
	while (web_mail_cache_bytes > WEB_MAIL_CACHE_MAX &&
	    web_mail_cache_tail != NULL && web_mail_cache_tail != e)
		web_mail_cache_unlink(web_mail_cache_tail);
	pthread_mutex_unlock(&web_mail_cache_mtx);
}

void
web_mail_cache_drop(int64_t id)
{
	struct web_mail_cache_entry *e;

	pthread_mutex_lock(&web_mail_cache_mtx);
	if ((e = web_mail_cache_find(id)) != NULL)
		web_mail_cache_unlink(e);
	pthread_mutex_unlock(&web_mail_cache_mtx);
}

void
web_mail_cache_stats(size_t *bytes, size_t *entries)
{
	pthread_mutex_lock(&web_mail_cache_mtx);
	*bytes = web_mail_cache_bytes;
	*entries = web_mail_cache_count;
	pthread_mutex_unlock(&web_mail_cache_mtx);
}
