/*
 * The store's outbox: notifications, invitations, replies and receipts
 * waiting to be sent, with their retry schedule; see store.h.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sqlite3.h>

#include "db.h"
#include "log.h"
#include "store/store_int.h"
#include "xmalloc.h"

int
store_outbox_add(struct store *s, enum store_outbox_kind kind,
    const char *rcpt, const char *sender_name, const char *subject,
    const char *path)
{
	sqlite3 *db;
	int64_t now = time(NULL);

	if ((db = store_db(s)) == NULL)
		return -1;
	return db_run(db, "INSERT INTO portal_outbox (kind, rcpt, sender_name, "
	    "subject, path, next_attempt, created) VALUES (?, ?, ?, ?, ?, ?, "
	    "?)", "tttttii", store_outbox_kinds[kind], rcpt, sender_name,
	    subject, path, now, now) == -1 ? -1 : 0;
}

int
store_outbox_add_many(struct store *s, enum store_outbox_kind kind,
    const char *const *rcpts, size_t n, const char *sender_name,
    const char *subject, const char *path)
{
	sqlite3 *db;

	if ((db = store_db(s)) == NULL || db_begin(db) == -1)
		return -1;
	for (size_t i = 0; i < n; i++)
		if (store_outbox_add(s, kind, rcpts[i], sender_name, subject,
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
	sqlite3 *db;
	sqlite3_stmt *st;
	int rc = -1;

	if ((db = store_db(s)) == NULL || (st = db_prepare(db, "SELECT id, "
	    "kind, rcpt, sender_name, subject, path, attempts, next_attempt, "
	    "created FROM portal_outbox WHERE next_attempt <= ? ORDER BY "
	    "next_attempt, id LIMIT 1")) == NULL)
		return -1;
	if (db_bind(st, "i", now) == 0 && (rc = db_step(st)) == DB_ROW) {
		memset(o, 0, sizeof(*o));
		o->id = sqlite3_column_int64(st, 0);
		o->kind = STORE_ENUM(store_outbox_kinds,
		    (const char *)sqlite3_column_text(st, 1));
		store_col_copy(st, 2, o->rcpt, sizeof(o->rcpt));
		o->sender_name = store_col_dup(st, 3);
		o->subject = store_col_dup(st, 4);
		o->path = store_col_dup(st, 5);
		o->attempts = sqlite3_column_int(st, 6);
		o->next_attempt = sqlite3_column_int64(st, 7);
		o->created = sqlite3_column_int64(st, 8);
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
	sqlite3 *db;

	if ((db = store_db(s)) == NULL)
		return -1;
	return db_run(db, "DELETE FROM portal_outbox WHERE id = ?", "i", id)
	    == -1 ? -1 : 0;
}

int
store_outbox_retry(struct store *s, int64_t id, int64_t next,
    const char *error)
{
	sqlite3 *db;

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
