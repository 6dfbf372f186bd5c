/*
 * The rendered pieces of a message page (see web_mail_cache.c): what the
 * page shows of the stored message itself, without anything of the
 * request (session, CSRF token, properties, unread state).
 */
#ifndef PORTAL_WEB_MAIL_CACHE_H
#define PORTAL_WEB_MAIL_CACHE_H

#include <stddef.h>
#include <stdint.h>

/* Bytes the cache holds at most, and the largest entry it takes. */
#define WEB_MAIL_CACHE_MAX	(8 * 1024 * 1024)
#define WEB_MAIL_CACHE_ENTRY	(512 * 1024)

struct web_mail_render {
	char	*title;		/* the raw subject, NULL: none */
	char	*head;		/* <dl> of From, To, Cc, Date */
	char	*body;		/* text/plain body block, or "" */
	char	*att;		/* the attachments section */
	int	 html;		/* the body is an HTML part (a frame) */
};

/*
 * A copy of the entry of message id in the file name of owner into *out
 * (freed with web_mail_render_free); 0, or -1 when there is none. The
 * caller has already found the message as this owner's in the store.
 */
int	 web_mail_cache_get(int64_t id, const char *owner, const char *name,
	    struct web_mail_render *out);
/* Keeps a copy of *in for message id (too large: not kept). */
void	 web_mail_cache_put(int64_t id, const char *owner, const char *name,
	    const struct web_mail_render *in);
/* Forgets message id (deleted). */
void	 web_mail_cache_drop(int64_t id);
/* Bytes and entries held now (for tests and logs). */
void	 web_mail_cache_stats(size_t *bytes, size_t *entries);
void	 web_mail_render_free(struct web_mail_render *);

#endif
