/*
 * Message bytes in the database, when the database is PostgreSQL: table
 * portal_blobs holds each stored file (a message, a PDF mail, an outbox
 * file) in chunks of STORE_BLOB_CHUNK bytes under its file name, written
 * in the transaction that commits its row. So any portal node serves any
 * message and sends any outbox mail, and the directories of a node are a
 * cache: a file missing there is fetched chunk by chunk into a temp file
 * and renamed into place. Memory stays one chunk whatever the message's
 * size. With SQLite (one node) every call here is a no-op: the
 * directory is the store.
 *
 * Names reach SQL only as bound parameters and the file system only as
 * names the store generated (store_random_name, mkstemp).
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "db.h"
#include "log.h"
#include "store/store_int.h"
#include "xmalloc.h"

#define STORE_BLOB_CHUNK	(1024 * 1024)

int
store_blob_on(struct db *db)
{
	return db != NULL && db_kind(db) == DB_PG;
}

const char *
store_blob_spool_key(const char *path)
{
	const char *b = strrchr(path, '/');

	return b != NULL ? b + 1 : path;
}

/* The bytes of fd as the chunks of key; 0 or -1 (logged). */
int
store_blob_upload(struct db *db, const char *key, int fd, const char *what)
{
	char *buf = xmalloc(STORE_BLOB_CHUNK);
	ssize_t n = 0;
	int64_t seq = 0;
	int rc = 0;

	for (;;) {
		size_t got = 0;

		/* Whole chunks but the last. */
		while (got < STORE_BLOB_CHUNK && (n = read(fd, buf + got,
		    STORE_BLOB_CHUNK - got)) > 0)
			got += (size_t)n;
		if (n == -1) {
			log_warn("store: read %s", what);
			rc = -1;
			break;
		}
		if (got == 0 && seq > 0)
			break;
		/* An outbox file shared by several rows goes in once. */
		if (db_run(db, "INSERT INTO portal_blobs (name, seq, data) "
		    "VALUES (?, ?, ?) ON CONFLICT DO NOTHING", "tib", key, seq,
		    buf, got) == -1) {
			rc = -1;
			break;
		}
		seq++;
		if (got < STORE_BLOB_CHUNK)
			break;
	}
	free(buf);
	return rc;
}

int
store_blob_put(struct store *s, struct db *db, const char *name)
{
	int fd, rc;

	if (!store_blob_on(db))
		return 0;
	if ((fd = openat(s->dirfd, name, O_RDONLY | O_CLOEXEC)) == -1) {
		log_warn("store: open %s/%s", s->dir, name);
		return -1;
	}
	rc = store_blob_upload(db, name, fd, name);
	close(fd);
	return rc;
}

int
store_blob_put_path(struct db *db, const char *path)
{
	int fd, rc;

	if (!store_blob_on(db))
		return 0;
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1) {
		log_warn("store: open %s", path);
		return -1;
	}
	rc = store_blob_upload(db, store_blob_spool_key(path), fd, path);
	close(fd);
	return rc;
}

int
store_blob_delete(struct db *db, const char *name)
{
	if (!store_blob_on(db) || name == NULL)
		return 0;
	return db_run(db, "DELETE FROM portal_blobs WHERE name = ?", "t",
	    name) == -1 ? -1 : 0;
}

/*
 * The chunks of key into dir/name (dirfd open on dir), through a temp
 * file renamed into place: 0, STORE_NOTFOUND (no such blob) or -1.
 */
int
store_blob_download(struct db *db, const char *key, int dirfd,
    const char *dir, const char *name)
{
	struct db_stmt *st;
	char tmp[64];
	const void *p;
	int64_t seq;
	int fd, rc = 0, n;

	store_random_name("tmp-", tmp, sizeof(tmp));
	if ((fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
	    0600)) == -1) {
		log_warn("store: create %s/%s", dir, tmp);
		return -1;
	}
	/* One chunk per query: a 100 MB message never sits in memory. */
	for (seq = 0; rc == 0; seq++) {
		if ((st = db_prepare_cached(db, "SELECT data FROM portal_blobs "
		    "WHERE name = ? AND seq = ?")) == NULL) {
			rc = -1;
			break;
		}
		if (db_bind(st, "ti", key, seq) == -1)
			rc = -1;
		else if ((rc = db_step(st)) == DB_ROW) {
			p = db_col_blob(st, 0);
			n = db_col_bytes(st, 0);
			if (n > 0 && write(fd, p, (size_t)n) != n) {
				log_warn("store: write %s/%s", dir, tmp);
				rc = -1;
			} else
				rc = 0;
		} else if (rc == DB_DONE)
			rc = seq == 0 ? STORE_NOTFOUND : 1;
		db_finalize(st);
	}
	if (close(fd) == -1 && rc == 1) {
		log_warn("store: close %s/%s", dir, tmp);
		rc = -1;
	}
	if (rc == 1 && renameat(dirfd, tmp, dirfd, name) == 0)
		return 0;
	if (rc == 1)
		log_warn("store: rename %s/%s", dir, name);
	unlinkat(dirfd, tmp, 0);
	return rc == STORE_NOTFOUND ? STORE_NOTFOUND : -1;
}

int
store_blob_fetch(struct store *s, const char *name)
{
	struct db *db;
	struct stat sb;

	if (s->dir == NULL || name == NULL || *name == '\0' ||
	    strchr(name, '/') != NULL)
		return -1;
	if (fstatat(s->dirfd, name, &sb, 0) == 0)
		return 0;
	if ((db = store_db(s)) == NULL)
		return -1;
	if (!store_blob_on(db))
		return STORE_NOTFOUND;
	return store_blob_download(db, name, s->dirfd, s->dir, name);
}

int
store_blob_fetch_path(struct store *s, const char *key, const char *path)
{
	struct db *db;
	char *copy, *dir;
	int dirfd, rc;

	if (access(path, F_OK) == 0)
		return 0;
	if ((db = store_db(s)) == NULL)
		return -1;
	if (!store_blob_on(db))
		return STORE_NOTFOUND;
	copy = xstrdup(path);
	dir = dirname(copy);
	if ((dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1) {
		log_warn("store: %s", dir);
		free(copy);
		return -1;
	}
	rc = store_blob_download(db, key, dirfd, dir,
	    store_blob_spool_key(path));
	close(dirfd);
	free(copy);
	return rc;
}

int
store_msg_fetch(struct store *s, const struct store_msg *m)
{
	const char *b = m->path != NULL ? strrchr(m->path, '/') : NULL;

	return b == NULL || store_blob_fetch(s, b + 1) == -1 ? -1 : 0;
}
