/*
 * The web worker's CEK cache (web_cek.h): a set-associative table in
 * locked memory (not swapped, not in a core dump), one lock for all pool
 * threads (a lookup is a hash and a few compares). An evicted key is
 * wiped. The keys are those the worker is given anyway to read a file;
 * the cache only keeps them for the life of the worker, bounded.
 */
#include <sys/mman.h>

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>

#include "log.h"
#include "web/web_cek.h"

#define WEB_CEK_NAME	48	/* "m-" + 32 hex + NUL, with room */

struct web_cek_entry {
	char		name[WEB_CEK_NAME];
	unsigned char	key[STORE_CRYPT_KEYLEN];
	uint64_t	used;		/* 0: empty */
};

static struct web_cek_entry	*web_cek_tab;
static uint64_t			 web_cek_clock;
static size_t			 web_cek_n;
static pthread_mutex_t		 web_cek_mtx = PTHREAD_MUTEX_INITIALIZER;

/* FNV-1a of the name: the names are random already. */
static struct web_cek_entry *
web_cek_set(const char *name)
{
	uint64_t h = 1469598103934665603ULL;

	for (; *name != '\0'; name++)
		h = (h ^ (unsigned char)*name) * 1099511628211ULL;
	return web_cek_tab + (h % WEB_CEK_SETS) * WEB_CEK_WAYS;
}

/* Under the lock. */
static int
web_cek_table(void)
{
	size_t len = sizeof(*web_cek_tab) * WEB_CEK_SETS * WEB_CEK_WAYS;
	void *p;

	if (web_cek_tab != NULL)
		return 0;
	p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE |
	    MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED) {
		log_warn("web: CEK cache");
		return -1;
	}
	if (mlock(p, len) == -1)
		log_debug("web: CEK cache not locked in memory");
	(void)madvise(p, len, MADV_DONTDUMP);
	web_cek_tab = p;
	return 0;
}

int
web_cek_get(const char *name, unsigned char key[STORE_CRYPT_KEYLEN])
{
	struct web_cek_entry *e;
	int rc = -1;

	if (strlen(name) >= WEB_CEK_NAME)
		return -1;
	pthread_mutex_lock(&web_cek_mtx);
	if (web_cek_tab != NULL) {
		e = web_cek_set(name);
		for (int i = 0; i < WEB_CEK_WAYS; i++)
			if (e[i].used != 0 && strcmp(e[i].name, name) == 0) {
				memcpy(key, e[i].key, STORE_CRYPT_KEYLEN);
				e[i].used = ++web_cek_clock;
				rc = 0;
				break;
			}
	}
	pthread_mutex_unlock(&web_cek_mtx);
	return rc;
}

void
web_cek_put(const char *name, const unsigned char key[STORE_CRYPT_KEYLEN])
{
	struct web_cek_entry *e, *v;

	if (strlen(name) >= WEB_CEK_NAME)
		return;
	pthread_mutex_lock(&web_cek_mtx);
	if (web_cek_table() == -1) {
		pthread_mutex_unlock(&web_cek_mtx);
		return;
	}
	v = e = web_cek_set(name);
	for (int i = 0; i < WEB_CEK_WAYS; i++) {
		if (e[i].used != 0 && strcmp(e[i].name, name) == 0) {
			v = &e[i];
			break;
		}
		if (e[i].used < v->used)
			v = &e[i];
	}
	if (v->used == 0)
		web_cek_n++;
	OPENSSL_cleanse(v->key, sizeof(v->key));
	snprintf(v->name, sizeof(v->name), "%s", name);
	memcpy(v->key, key, STORE_CRYPT_KEYLEN);
	v->used = ++web_cek_clock;
	pthread_mutex_unlock(&web_cek_mtx);
}

size_t
web_cek_count(void)
{
	size_t n;

	pthread_mutex_lock(&web_cek_mtx);
	n = web_cek_n;
	pthread_mutex_unlock(&web_cek_mtx);
	return n;
}
