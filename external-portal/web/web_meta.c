/* The cache of opened sealed From and Subject values; see web_meta.h. */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "web/web_meta.h"
#include "xmalloc.h"

#define WEB_META_NAME	48

struct web_meta_entry {
	char		name[WEB_META_NAME];
	char		from[WEB_META_LEN];
	char		subject[WEB_META_LEN];
	unsigned char	has_from, has_subject;
	uint64_t	used;		/* 0: empty */
};

static struct web_meta_entry	*web_meta_tab;
static uint64_t			 web_meta_clock;
static pthread_mutex_t		 web_meta_mtx = PTHREAD_MUTEX_INITIALIZER;

static struct web_meta_entry *
web_meta_set(const char *name)
{
	uint64_t h = 1469598103934665603ULL;

	for (; *name != '\0'; name++)
		h = (h ^ (unsigned char)*name) * 1099511628211ULL;
	return web_meta_tab + (h % WEB_META_SETS) * WEB_META_WAYS;
}

int
web_meta_get(const char *name, char **from, char **subject)
{
	struct web_meta_entry *e;
	int rc = -1;

	*from = *subject = NULL;
	pthread_mutex_lock(&web_meta_mtx);
	if (web_meta_tab != NULL && strlen(name) < WEB_META_NAME) {
		e = web_meta_set(name);
		for (int i = 0; i < WEB_META_WAYS; i++)
			if (e[i].used != 0 && strcmp(e[i].name, name) == 0) {
				if (e[i].has_from)
					*from = xstrdup(e[i].from);
				if (e[i].has_subject)
					*subject = xstrdup(e[i].subject);
				e[i].used = ++web_meta_clock;
				rc = 0;
				break;
			}
	}
	pthread_mutex_unlock(&web_meta_mtx);
	return rc;
}

void
web_meta_put(const char *name, const char *from, const char *subject)
{
	struct web_meta_entry *e, *v;

	if (strlen(name) >= WEB_META_NAME ||
	    (from != NULL && strlen(from) >= WEB_META_LEN) ||
	    (subject != NULL && strlen(subject) >= WEB_META_LEN))
		return;
	pthread_mutex_lock(&web_meta_mtx);
	if (web_meta_tab == NULL)
		web_meta_tab = xcalloc(WEB_META_SETS * WEB_META_WAYS,
		    sizeof(*web_meta_tab));
	v = e = web_meta_set(name);
	for (int i = 0; i < WEB_META_WAYS; i++) {
		if (e[i].used != 0 && strcmp(e[i].name, name) == 0) {
			v = &e[i];
			break;
		}
		if (e[i].used < v->used)
			v = &e[i];
	}
	OPENSSL_cleanse(v, sizeof(*v));
	snprintf(v->name, sizeof(v->name), "%s", name);
	if ((v->has_from = from != NULL))
		snprintf(v->from, sizeof(v->from), "%s", from);
	if ((v->has_subject = subject != NULL))
		snprintf(v->subject, sizeof(v->subject), "%s", subject);
	v->used = ++web_meta_clock;
	pthread_mutex_unlock(&web_meta_mtx);
}
