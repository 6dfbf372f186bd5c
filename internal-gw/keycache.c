/*
 * The worker's cache of held decryption certificates (see keycache.h): a
 * fixed table of KEYCACHE_SLOTS addresses, a slot chosen by a hash of the
 * address and overwritten on collision, so its size is bounded whatever
 * the number of internal users. One mutex guards it; entries hand out
 * X509 references, never the table's own array.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "keycache.h"
#include "keyd.h"
#include "log.h"
#include "xmalloc.h"

#define KEYCACHE_SLOTS	1024

struct keycache_entry {
	char	*addr;
	X509	**certs;		/* NULL-terminated */
	int	 n;
};

static pthread_mutex_t		keycache_mtx = PTHREAD_MUTEX_INITIALIZER;
static struct keycache_entry	keycache_tab[KEYCACHE_SLOTS];

/* FNV-1a over the address folded to lower case. */
static size_t
keycache_slot(const char *addr)
{
	uint32_t h = 2166136261u;

	for (; *addr != '\0'; addr++) {
		h ^= (unsigned char)(*addr >= 'A' && *addr <= 'Z' ?
		    *addr + 32 : *addr);
		h *= 16777619u;
	}
	return h % KEYCACHE_SLOTS;
}

/* A new array with a reference to each of n certificates. */
static X509 **
keycache_copy(X509 **v, int n)
{
	X509 **c = xcalloc((size_t)n + 1, sizeof(*c));

	for (int i = 0; i < n; i++) {
		if (!X509_up_ref(v[i]))
			fatalx("keycache: X509_up_ref");
		c[i] = v[i];
	}
	return c;
}

int
keycache_get(struct keyd_client *kc, const char *addr, int refresh,
    X509 ***out, int *cached)
{
	struct keycache_entry *e = &keycache_tab[keycache_slot(addr)];
	X509 **v, **old;
	int n;

	*out = NULL;
	*cached = 0;
	pthread_mutex_lock(&keycache_mtx);
	if (!refresh && e->addr != NULL && strcasecmp(e->addr, addr) == 0) {
		*out = keycache_copy(e->certs, e->n);
		*cached = 1;
		n = e->n;
		pthread_mutex_unlock(&keycache_mtx);
		return n;
	}
	pthread_mutex_unlock(&keycache_mtx);

	if ((n = keyd_certs(kc, addr, &v)) == -1)
		return -1;
	*out = keycache_copy(v, n);
	pthread_mutex_lock(&keycache_mtx);
	free(e->addr);
	old = e->certs;
	e->addr = xstrdup(addr);
	e->certs = v;
	e->n = n;
	pthread_mutex_unlock(&keycache_mtx);
	keyd_certs_free(&old);
	return n;
}
