/*
 * The store's outbox: notifications, invitations, replies and receipts
 * waiting to be sent, with their retry schedule; see store.h.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>


#include "db.h"
#include "log.h"
#include "store/store_int.h"
#include "xmalloc.h"

/* How long a claimed row stays hidden from the other senders. */
#define STORE_OUTBOX_LEASE	600

static int
store_outbox_row(struct db *db, enum store_outbox_kind kind,
    const char *rcpt, const char *sender_name, const char *subject,
    const char *path)
{
	int64_t now = time(NULL);

	return db_run(db, "INSERT INTO portal_outbox (kind, rcpt, sender_name, "
	    "subject, path, next_attempt, created) VALUES (?, ?, ?, ?, ?, ?, "
	    "?)", "tttttii", store_outbox_kinds[kind], rcpt, sender_name,
	    subject, path, now, now) == -1 ? -1 : 0;
}

/*
 * Also inside a caller's transaction (a read receipt, a PDF mail): the
 * file's copy for the node that will send it (store_blob.c), then the
 * row.
 */
int
store_outbox_add(struct store *s, enum store_outbox_kind kind,
    const char *rcpt, const char *sender_name, const char *subject,
    const char *path)
{
	struct db *db;

	if ((db = store_db(s)) == NULL)
		return -1;
	if (path != NULL && *path != '\0' &&
	    store_blob_put_path(db, path) == -1)
		return -1;
	return store_outbox_row(db, kind, rcpt, sender_name, subject, path);
}

int
store_outbox_add_many(struct store *s, enum store_outbox_kind kind,
    const char *const *rcpts, size_t n, const char *sender_name,
    const char *subject, const char *path)
{
	struct db *db;

	if ((db = store_db(s)) == NULL || db_begin(db) == -1)
		return -1;
	/* The file too, for the node that will send it (store_blob.c). */
	if (path != NULL && *path != '\0' &&
	    store_blob_put_path(db, path) == -1) {
		db_rollback(db);
		return -1;
	}
	for (size_t i = 0; i < n; i++)
		if (store_outbox_row(db, kind, rcpts[i], sender_name, subject,
		    path) == -1) {
			db_rollback(db);
			return -1;
		}
	if (db_commit(db) == -1) {
		db_rollback(db);
		return -1;
	}
	return 0;
}

int64_t
store_outbox_path_refs(struct store *s, const char *path)
{
	return store_scalar(s, "SELECT COUNT(*) FROM portal_outbox "
	    "WHERE path = ?", path);
}

int
store_outbox_next(struct store *s, int64_t now, struct store_outbox *o)
{
	struct db *db;
	struct db_stmt *st;
	int rc = -1;

	/*
	 * Claimed, not just read: the row's next attempt moves a lease
	 * ahead in the same statement, so of several portals on one
	 * database exactly one sends it (PostgreSQL: rows another node is
	 * claiming are skipped, not waited for). A sender that dies
	 * mid-send leaves the row due again when the lease ends.
	 */
	if ((db = store_db(s)) == NULL || (st = db_prepare(db,
	    db_kind(db) == DB_PG ?
	    "UPDATE portal_outbox SET next_attempt = ? WHERE id = (SELECT id "
	    "FROM portal_outbox WHERE next_attempt <= ? ORDER BY "
	    "next_attempt, id LIMIT 1 FOR UPDATE SKIP LOCKED) RETURNING id, "
	    "kind, rcpt, sender_name, subject, path, attempts, next_attempt, "
	    "created" :
	    "UPDATE portal_outbox SET next_attempt = ? WHERE id = (SELECT id "
	    "FROM portal_outbox WHERE next_attempt <= ? ORDER BY "
	    "next_attempt, id LIMIT 1) RETURNING id, "
	    "kind, rcpt, sender_name, subject, path, attempts, next_attempt, "
	    "created")) == NULL)
		return -1;
	if (db_bind(st, "ii", now + STORE_OUTBOX_LEASE, now) == 0 &&
	    (rc = db_step(st)) == DB_ROW) {
		memset(o, 0, sizeof(*o));
		o->id = db_col_int(st, 0);
		o->kind = STORE_ENUM(store_outbox_kinds,
		    (const char *)db_col_text(st, 1));
		store_col_copy(st, 2, o->rcpt, sizeof(o->rcpt));
		o->sender_name = store_col_dup(st, 3);
		o->subject = store_col_dup(st, 4);
		o->path = store_col_dup(st, 5);
		o->attempts = db_col_int(st, 6);
		o->next_attempt = db_col_int(st, 7);
		o->created = db_col_int(st, 8);
	}
	db_finalize(st);
	if (rc == DB_ROW)
		return 0;
	return rc == DB_DONE ? STORE_NOTFOUND : -1;
}

int64_t
store_outbox_wake_time(struct store *s)
{
	return store_scalar(s, "SELECT COALESCE(MIN(next_attempt), -1) "
	    "FROM portal_outbox", NULL);
}

int
store_outbox_done(struct store *s, int64_t id)
{
	struct db *db;

	if ((db = store_db(s)) == NULL)
		return -1;
	return db_run(db, "DELETE FROM portal_outbox WHERE id = ?", "i", id)
	    == -1 ? -1 : 0;
}

int
store_outbox_file_done(struct store *s, const char *path)
{
	struct db *db;

	if ((db = store_db(s)) == NULL)
		return -1;
	return store_blob_delete(db, store_blob_spool_key(path));
}

int
store_outbox_retry(struct store *s, int64_t id, int64_t next,
    const char *error)
{
	struct db *db;

	if ((db = store_db(s)) == NULL)
		return -1;
	return db_run(db, "UPDATE portal_outbox SET attempts = attempts + 1, "
	    "next_attempt = ?, last_error = ? WHERE id = ?", "iti", next,
	    error, id) == -1 ? -1 : 0;
}

void
store_outbox_free(struct store_outbox *o)
{
	xfree(&o->sender_name);
	xfree(&o->subject);
	xfree(&o->path);
}

char *
store_outbox_fetch(struct store *s, const char *path, const char *spool_dir)
{
	char *local;

	if (access(path, F_OK) == 0)
		return xstrdup(path);
	/* Another node queued it: its bytes come from the database. */
	xasprintf(&local, "%s/%s", spool_dir, store_blob_spool_key(path));
	if (store_blob_fetch_path(s, store_blob_spool_key(path), local) != 0) {
		free(local);
		return NULL;
	}
	return local;
}
