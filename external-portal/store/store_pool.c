/*
 * Spent spool files kept for reuse as the store's temp files; see
 * store_tmp_recycle() in store.h. A message file is created for every
 * delivery anyway; taking the ingest's finished spool file (same file
 * system) as the next temp file means the ingest frees no inode per
 * message, and file systems that scan past recently freed inodes on
 * every create (ext4 without a journal does) stay fast. The pool is a
 * few names in the store directory, all "tmp-": a crash leaves them to
 * store_open()'s recovery.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "store/store_int.h"
#include "xmalloc.h"

void
store_pool_init(struct store *s)
{
	pthread_mutex_init(&s->pmtx, NULL);
	s->npool = 0;
}

void
store_pool_destroy(struct store *s)
{
	for (int i = 0; i < s->npool; i++)
		if (s->dirfd != -1 && unlinkat(s->dirfd, s->pool[i], 0) == -1 &&
		    errno != ENOENT)
			log_warn("store: unlink %s/%s", s->dir, s->pool[i]);
	s->npool = 0;
	pthread_mutex_destroy(&s->pmtx);
}

int
store_tmp_recycle(struct store *s, const char *path)
{
	char name[STORE_POOL_NAME];
	int rc = -1;

	if (s->dir == NULL || path == NULL)
		return -1;
	store_random_name("tmp-", name, sizeof(name));
	pthread_mutex_lock(&s->pmtx);
	if (s->npool < STORE_POOL_MAX &&
	    renameat(AT_FDCWD, path, s->dirfd, name) == 0) {
		memcpy(s->pool[s->npool++], name, sizeof(name));
		rc = 0;
	}
	pthread_mutex_unlock(&s->pmtx);
	return rc;
}

int
store_pool_take(struct store *s, char *name, size_t len)
{
	int fd = -1;

	for (;;) {
		pthread_mutex_lock(&s->pmtx);
		if (s->npool == 0) {
			pthread_mutex_unlock(&s->pmtx);
			return -1;
		}
		snprintf(name, len, "%s", s->pool[--s->npool]);
		pthread_mutex_unlock(&s->pmtx);
		/* Ours since the rename; emptied before it is written. */
		if ((fd = openat(s->dirfd, name, O_RDWR | O_TRUNC | O_NOFOLLOW |
		    O_CLOEXEC)) != -1)
			return fd;
		log_warn("store: reuse %s/%s", s->dir, name);
		unlinkat(s->dirfd, name, 0);
	}
}
