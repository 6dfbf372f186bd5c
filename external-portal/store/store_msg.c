/*
 * The store's messages: the durable write path (store_deliver), listing,
 * flags, read receipts, deletion and usage; see store.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>


#include "db.h"
#include "log.h"
#include "store/store_int.h"
#include "xmalloc.h"

#define STORE_MSG_COLS "id, owner, folder, state, mail_from, hdr_from, " \
    "subject, date, size, has_attachments, unread, path, created, " \
    "sealed_meta"
/*
 * The listing reads only what a list shows, in the order of the columns
 * of index portal_messages_list (store.c), which holds them all on
 * SQLite: the rows come from the index alone, without a lookup in the
 * table per row. The path is read for sealed rows only (their CEK is
 * cached by file name). Each row also carries the owner's usage counter:
 * one round trip for a page on PostgreSQL instead of two, and one
 * snapshot for the list and the counter.
 */
#define STORE_SQL_LIST "SELECT id, date, size, unread, has_attachments, " \
    "created, mail_from, hdr_from, subject, sealed_meta, path, " \
    "COALESCE((SELECT used_bytes FROM portal_users WHERE email = ?), 0) " \
    "FROM portal_messages WHERE owner = ? AND folder = ? AND " \
    "state = 'webmail' AND id < ? ORDER BY id DESC LIMIT ?"
/*
 * The same on PostgreSQL, whose planner, given owner = ? and ORDER BY id,
 * walks the primary key backwards and filters: cheap by its estimate,
 * but a mailbox whose messages are not the newest reads every newer
 * message of everyone first (measured: 10,000 rows for a 51-row page,
 * 4 ms instead of 0.1). As a range over the whole index key, only
 * portal_messages_list gives the order.
 */
#define STORE_SQL_LIST_PG "SELECT id, date, size, unread, " \
    "has_attachments, created, mail_from, hdr_from, subject, sealed_meta, " \
    "path, COALESCE((SELECT used_bytes FROM portal_users WHERE " \
    "email = ?), 0) FROM portal_messages " \
    "WHERE (owner, folder, state, id) < (?, ?, 'webmail', ?) AND " \
    "(owner, folder, state, id) > (?, ?, 'webmail', 0) " \
    "ORDER BY owner DESC, folder DESC, state DESC, id DESC LIMIT ?"

int
store_tmp_create(struct store *s, struct store_tmp *t)
{
	char name[64];
	int fd;

	if ((fd = store_pool_take(s, name, sizeof(name))) != -1)
		t->path = store_abspath(s, name);
	else {
		store_random_name("tmp-", name, sizeof(name));
		t->path = store_abspath(s, name);
		fd = open(t->path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC,
		    0600);
	}
	if (fd == -1 || (t->fp = fdopen(fd, "w+")) == NULL) {
		log_warn("store: create %s", t->path);
		if (fd != -1)
			close(fd);
		unlink(t->path);
		xfree(&t->path);
		t->fp = NULL;
		return -1;
	}
	return 0;
}

void
store_tmp_discard(struct store_tmp *t)
{
	if (t->fp != NULL)
		fclose(t->fp);
	t->fp = NULL;
	if (t->path != NULL)
		unlink(t->path);
	xfree(&t->path);
}

/*
 * Inside the delivery's transaction: what to tell owner about a new
 * message. An active account gets "new message", unless one was queued
 * less than coalesce seconds ago (it covers this one); a pending one its
 * first invitation, then at most one reminder per remind seconds (each
 * with its own link, none revoking another). 0, or -1.
 */
int
store_deliver_notify(struct db *db, const struct store_msg *m,
    const char *owner, int64_t remind, int64_t coalesce, int64_t now)
{
	struct db_stmt *st;
	enum store_user_state state = STORE_USER_PENDING;
	int64_t last = 0, notified = 0;
	int rc;

	if ((st = db_prepare_cached(db, "SELECT state, last_invite, last_notify "
	    "FROM portal_users WHERE email = ?")) == NULL)
		return -1;
	if ((rc = db_bind(st, "t", owner)) == 0 &&
	    (rc = db_step(st)) == DB_ROW) {
		state = STORE_ENUM(store_user_states,
		    (const char *)db_col_text(st, 0));
		last = db_col_int(st, 1);
		notified = db_col_int(st, 2);
	}
	db_finalize(st);
	if (rc == -1)
		return -1;
	if (state == STORE_USER_PENDING) {
		if (last != 0 && now - last < remind)
			return 0;
		if (db_run(db, "UPDATE portal_users SET last_invite = ? WHERE "
		    "email = ?", "it", now, owner) == -1)
			return -1;
	} else if (coalesce > 0) {
		/* A clock set back does not silence the account. */
		if (notified != 0 && now >= notified &&
		    now - notified < coalesce)
			return 0;
		if (db_run(db, "UPDATE portal_users SET last_notify = ? WHERE "
		    "email = ?", "it", now, owner) == -1)
			return -1;
	}
	return db_run(db, "INSERT INTO portal_outbox (kind, rcpt, "
	    "sender_name, subject, next_attempt, created) VALUES "
	    "(?, ?, ?, ?, ?, ?)", "ttttii", store_outbox_kinds[
	    state == STORE_USER_ACTIVE ? STORE_OUTBOX_NEWMSG :
	    STORE_OUTBOX_SIGNUP], owner, m->sealed_meta != NULL ? m->mail_from :
	    m->hdr_from, m->sealed_meta != NULL ? NULL : m->subject, now, now)
	    == -1 ? -1 : 0;
}

int
store_deliver_remind(struct store *s, struct store_tmp *t,
    const struct store_msg *m, const char *owner, int64_t quota, int notify,
    int64_t remind, int64_t *id)
{
	char domain[ADDR_MAX], key[STORE_KEY_MAX], *final;
	struct store_group_item it;
	struct stat sb;

	owner = store_key(owner, key, sizeof(key));
	if (fflush(t->fp) == EOF || fsync(fileno(t->fp)) == -1 ||
	    fstat(fileno(t->fp), &sb) == -1) {
		log_warn("store: write %s", t->path);
		return -1;
	}
	if (addr_domain_of(owner, domain, sizeof(domain)) == -1)
		fatalx("store: owner %s has no domain", owner);
	memset(&it, 0, sizeof(it));
	store_random_name("m-", it.name, sizeof(it.name));
	final = store_abspath(s, it.name);
	if (link(t->path, final) == -1) {
		log_warn("store: link %s", final);
		free(final);
		return -1;
	}
	it.meta = m;
	it.owner = owner;
	it.domain = domain;
	it.size = sb.st_size;
	it.quota = quota;
	it.notify = notify;
	it.remind = remind;
	it.now = time(NULL);
	/* Directory fsync, quota, rows, commit: shared with other threads. */
	store_group_run(s, &it);
	if (it.rc != 0)
		unlink(final);	/* no row: recovery would remove it too */
	else
		*id = it.id;
	free(final);
	return it.rc;
}

int
store_deliver(struct store *s, struct store_tmp *t, const struct store_msg *m,
    const char *owner, int64_t quota, int notify, int64_t *id)
{
	return store_deliver_remind(s, t, m, owner, quota, notify,
	    STORE_REMIND_DEFAULT, id);
}

static void
store_msg_row(struct store *s, struct db_stmt *st, struct store_msg *m)
{
	const char *name = (const char *)db_col_text(st, 11);

	memset(m, 0, sizeof(*m));
	m->id = db_col_int(st, 0);
	store_col_copy(st, 1, m->owner, sizeof(m->owner));
	m->folder = STORE_ENUM(store_folder_names,
	    (const char *)db_col_text(st, 2));
	m->state = STORE_ENUM(store_state_names,
	    (const char *)db_col_text(st, 3));
	m->mail_from = store_col_dup(st, 4);
	m->hdr_from = store_col_dup(st, 5);
	m->subject = store_col_dup(st, 6);
	m->date = db_col_int(st, 7);
	m->size = db_col_int(st, 8);
	m->has_attachments = db_col_int(st, 9);
	m->unread = db_col_int(st, 10);
	m->path = store_abspath(s, name ? name : "");
	m->created = db_col_int(st, 12);
	if (!db_col_null(st, 13) && db_col_bytes(st, 13) > 0) {
		m->sealed_metalen = (size_t)db_col_bytes(st, 13);
		m->sealed_meta = xmalloc(m->sealed_metalen);
		memcpy(m->sealed_meta, db_col_blob(st, 13), m->sealed_metalen);
	}
}

void
store_msg_free(struct store_msg *m)
{
	xfree(&m->mail_from);
	xfree(&m->hdr_from);
	xfree(&m->subject);
	xfree(&m->path);
	free(m->sealed_meta);
	m->sealed_meta = NULL;
	m->sealed_metalen = 0;
}

/* A row of STORE_SQL_LIST; owner, folder and state are the query's. */
static void
store_msg_list_row(struct store *s, struct db_stmt *st, const char *owner,
    size_t ownerlen, enum store_folder f, struct store_msg *m)
{
	const char *name;

	m->id = db_col_int(st, 0);
	memcpy(m->owner, owner, ownerlen);
	m->owner[ownerlen] = '\0';
	m->folder = f;
	m->state = STORE_MSG_WEBMAIL;
	m->date = db_col_int(st, 1);
	m->size = db_col_int(st, 2);
	m->unread = db_col_int(st, 3);
	m->has_attachments = db_col_int(st, 4);
	m->created = db_col_int(st, 5);
	m->mail_from = store_col_dup(st, 6);
	m->hdr_from = store_col_dup(st, 7);
	m->subject = store_col_dup(st, 8);
	m->path = NULL;
	m->sealed_meta = NULL;
	m->sealed_metalen = 0;
	m->parts = NULL;
	m->nparts = 0;
	if (!db_col_null(st, 9) && db_col_bytes(st, 9) > 0) {
		m->sealed_metalen = (size_t)db_col_bytes(st, 9);
		m->sealed_meta = xmalloc(m->sealed_metalen);
		memcpy(m->sealed_meta, db_col_blob(st, 9), m->sealed_metalen);
		name = db_col_text(st, 10);
		m->path = store_abspath(s, name ? name : "");
	}
}

int
store_msg_list(struct store *s, const char *owner, enum store_folder f,
    int64_t before, int limit, struct store_msg *out)
{
	return store_msg_page(s, owner, f, before, limit, out, NULL);
}

int
store_msg_page(struct store *s, const char *owner, enum store_folder f,
    int64_t before, int limit, struct store_msg *out, int64_t *used)
{
	char key[STORE_KEY_MAX];
	struct db *db;
	struct db_stmt *st;
	size_t ownerlen;
	int n = 0, rc = -1;

	owner = store_key(owner, key, sizeof(key));
	/* Cut as store_col_copy() cuts. */
	if ((ownerlen = strlen(owner)) >= sizeof(out->owner))
		ownerlen = sizeof(out->owner) - 1;
	if ((db = store_db(s)) == NULL)
		return -1;
	if (db_kind(db) == DB_PG) {
		if ((st = db_prepare_cached(db, STORE_SQL_LIST_PG)) == NULL)
			return -1;
		rc = db_bind(st, "tttitti", owner, owner,
		    store_folder_names[f], before > 0 ? before : INT64_MAX,
		    owner, store_folder_names[f], (int64_t)limit);
	} else {
		if ((st = db_prepare_cached(db, STORE_SQL_LIST)) == NULL)
			return -1;
		rc = db_bind(st, "tttii", owner, owner, store_folder_names[f],
		    before > 0 ? before : INT64_MAX, (int64_t)limit);
	}
	if (rc == 0)
		while (n < limit && (rc = db_step(st)) == DB_ROW) {
			if (used != NULL && n == 0)
				*used = db_col_int(st, 11);
			store_msg_list_row(s, st, owner, ownerlen,
			    f, &out[n++]);
		}
	db_finalize(st);
	/* An empty page has no row to carry the counter. */
	if (rc != -1 && used != NULL && n == 0 &&
	    (*used = store_scalar(s, STORE_SQL_USAGE, owner)) == -1)
		rc = -1;
	if (rc == -1) {
		while (n > 0)
			store_msg_free(&out[--n]);
		return -1;
	}
	return n;
}

int
store_msg_get(struct store *s, const char *owner, int64_t id,
    struct store_msg *m)
{
	struct db *db;
	struct db_stmt *st;
	int rc = -1;

	if ((db = store_db(s)) == NULL || (st = db_prepare_cached(db,
	    "SELECT " STORE_MSG_COLS " FROM portal_messages WHERE owner = ? "
	    "AND id = ? AND state = 'webmail'"))
	    == NULL)
		return -1;
	if (db_bind(st, "ti", owner, id) == 0 &&
	    (rc = db_step(st)) == DB_ROW)
		store_msg_row(s, st, m);
	db_finalize(st);
	/* Another node stored it: into this node's directory first. */
	if (rc == DB_ROW && s->dir != NULL &&
	    store_blob_fetch(s, strrchr(m->path, '/') + 1) == -1) {
		store_msg_free(m);
		return -1;
	}
	if (rc == DB_ROW)
		return 0;
	return rc == DB_DONE ? STORE_NOTFOUND : -1;
}

int
store_msg_set_unread(struct store *s, const char *owner, int64_t id,
    int unread)
{
	struct db *db;
	int rc;

	if ((db = store_db(s)) == NULL)
		return -1;
	rc = db_run(db, "UPDATE portal_messages SET unread = ? WHERE "
	    "owner = ? AND id = ?", "iti", (int64_t)(unread != 0), owner, id);
	return rc == -1 ? -1 : rc == 0 ? STORE_NOTFOUND : 0;
}

int
store_msg_set_state(struct store *s, const char *owner, int64_t id,
    enum store_msg_state state)
{
	struct db *db;
	int rc;

	if ((db = store_db(s)) == NULL)
		return -1;
	rc = db_run(db, "UPDATE portal_messages SET state = ? WHERE "
	    "owner = ? AND id = ?", "tti", store_state_names[state], owner,
	    id);
	return rc == -1 ? -1 : rc == 0 ? STORE_NOTFOUND : 0;
}

int
store_msg_delete_rows(struct store *s, const char *where, const char *owner,
    int64_t id, char ***names, size_t *n)
{
	struct db *db;
	struct db_stmt *st;
	char *sql;
	int rc = -1;

	*names = NULL;
	*n = 0;
	if ((db = store_db(s)) == NULL)
		return -1;
	/* where is one of our fixed clauses, never peer data. */
	xasprintf(&sql, "DELETE FROM portal_messages WHERE %s RETURNING path",
	    where);
	st = db_prepare(db, sql);
	free(sql);
	if (st == NULL)
		return -1;
	if ((id ? db_bind(st, "ti", owner, id) : db_bind(st, "t", owner)) == 0)
		while ((rc = db_step(st)) == DB_ROW) {
			*names = xreallocarray(*names, *n + 1,
			    sizeof(**names));
			(*names)[(*n)++] = store_col_dup(st, 0);
		}
	db_finalize(st);
	for (size_t i = 0; rc == DB_DONE && i < *n; i++)
		if (store_blob_delete(db, (*names)[i]) == -1)
			rc = -1;
	return rc == DB_DONE ? 0 : -1;
}

void
store_names_unlink(struct store *s, char **names, size_t n)
{
	/* A crash before these unlinks leaves orphans: recovery. */
	for (size_t i = 0; i < n; i++)
		if (names[i] != NULL && unlinkat(s->dirfd, names[i], 0) == -1 &&
		    errno != ENOENT)
			log_warn("store: unlink %s/%s", s->dir, names[i]);
	if (n > 0)
		store_fsync_dir(s);
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
}

static int
store_msg_delete_where(struct store *s, const char *where, const char *owner,
    int64_t id)
{
	struct db *db;
	char **names = NULL;
	size_t n = 0;

	if ((db = store_db(s)) == NULL || db_begin(db) == -1)
		return -1;
	if (store_msg_delete_rows(s, where, owner, id, &names, &n) == -1 ||
	    db_commit(db) == -1) {
		db_rollback(db);
		for (size_t i = 0; i < n; i++)
			free(names[i]);
		free(names);
		return -1;
	}
	store_names_unlink(s, names, n);
	return n == 0 ? STORE_NOTFOUND : 0;
}

int
store_msg_delete(struct store *s, const char *owner, int64_t id)
{
	return store_msg_delete_where(s, "owner = ?1 AND id = ?2", owner, id);
}

int
store_msg_delete_webmail(struct store *s, const char *owner, int64_t id)
{
	return store_msg_delete_where(s, "owner = ?1 AND id = ?2 AND "
	    "state = 'webmail'", owner, id);
}

int64_t
store_usage(struct store *s, const char *owner)
{
	char key[STORE_KEY_MAX];

	return store_scalar(s, STORE_SQL_USAGE, store_key(owner, key,
	    sizeof(key)));
}

int64_t
store_usage_domain(struct store *s, const char *domain)
{
	return store_scalar(s, "SELECT COALESCE(SUM(used_bytes), 0) FROM "
	    "portal_users WHERE domain = lower(?)", domain);
}

int64_t
store_usage_total(struct store *s)
{
	return store_scalar(s, "SELECT COALESCE(SUM(used_bytes), 0) FROM "
	    "portal_users", NULL);
}

int64_t
store_msg_count(struct store *s, const char *owner)
{
	char key[STORE_KEY_MAX];

	return store_scalar(s, "SELECT COUNT(*) FROM portal_messages "
	    "WHERE owner = ?", store_key(owner, key, sizeof(key)));
}

int
store_msg_older(struct store *s, const char *owner, int64_t cutoff,
    int (*cb)(void *, const struct store_msg *), void *arg)
{
	struct db *db;
	struct db_stmt *st;
	struct store_msg *v = NULL;
	size_t n = 0;
	int rc = -1;

	/* Collect first: cb may delete. */
	if ((db = store_db(s)) == NULL || (st = db_prepare(db, owner ?
	    "SELECT " STORE_MSG_COLS " FROM portal_messages WHERE "
	    "created < ?1 AND owner = ?2 ORDER BY id" :
	    "SELECT " STORE_MSG_COLS " FROM portal_messages WHERE "
	    "created < ?1 ORDER BY id")) == NULL)
		return -1;
	if ((owner ? db_bind(st, "it", cutoff, owner) :
	    db_bind(st, "i", cutoff)) == 0)
		while ((rc = db_step(st)) == DB_ROW) {
			v = xreallocarray(v, n + 1, sizeof(*v));
			store_msg_row(s, st, &v[n++]);
		}
	db_finalize(st);
	rc = rc == DB_DONE ? 0 : -1;
	for (size_t i = 0; i < n; i++) {
		if (rc == 0 && cb(arg, &v[i]) != 0)
			rc = 1;
		store_msg_free(&v[i]);
	}
	free(v);
	return rc == 1 ? 0 : rc;
}

int
store_msg_receipt_queue(struct store *s, const char *owner, int64_t id,
    const char *rcpt, const char *path)
{
	struct db *db;
	int rc;

	if ((db = store_db(s)) == NULL || db_begin(db) == -1)
		return -1;
	if ((rc = db_run(db, "UPDATE portal_messages SET receipt_sent = 1 "
	    "WHERE id = ? AND owner = ? AND receipt_sent = 0", "it", id,
	    owner)) == -1)
		goto fail;
	if (rc == 0) {
		db_rollback(db);
		return STORE_NOTFOUND;
	}
	if (store_outbox_add(s, STORE_OUTBOX_RECEIPT, rcpt, NULL, NULL,
	    path) == -1 || db_commit(db) == -1)
		goto fail;
	return 0;
fail:
	db_rollback(db);
	return -1;
}

int
store_msg_receipt_sent(struct store *s, const char *owner, int64_t id)
{
	struct db *db;
	struct db_stmt *st;
	int rc = -1, v = -1;

	if ((db = store_db(s)) == NULL || (st = db_prepare(db, "SELECT "
	    "receipt_sent FROM portal_messages WHERE id = ? AND owner = ?"))
	    == NULL)
		return -1;
	if (db_bind(st, "it", id, owner) == 0)
		rc = db_step(st);
	if (rc == DB_ROW)
		v = db_col_int(st, 0) != 0;
	else if (rc == DB_DONE)
		v = 0;
	db_finalize(st);
	return v;
}

int
store_msg_list_plan(struct store *s, char *out, size_t outlen)
{
	struct db *db;
	struct db_stmt *st;
	size_t off = 0;

	if (outlen == 0)
		return -1;
	out[0] = '\0';
	if ((db = store_db(s)) == NULL)
		return -1;
	if (db_kind(db) == DB_PG) {
		/* PostgreSQL plans with values: a mailbox's first page. */
		if ((st = db_prepare(db, "EXPLAIN " STORE_SQL_LIST_PG)) == NULL)
			return -1;
		if (db_bind(st, "tttitti", "", "", store_folder_names[
		    STORE_FOLDER_INBOX], INT64_MAX, "", store_folder_names[
		    STORE_FOLDER_INBOX], (int64_t)51) == -1) {
			db_finalize(st);
			return -1;
		}
	} else if ((st = db_prepare(db, "EXPLAIN QUERY PLAN "
	    STORE_SQL_LIST)) == NULL)
		return -1;
	while (db_step(st) == DB_ROW) {
		const char *d = db_col_text(st, db_kind(db) == DB_PG ? 0 : 3);
		int n = snprintf(out + off, outlen - off, "%s\n",
		    d ? (const char *)d : "");

		if (n < 0 || (size_t)n >= outlen - off)
			break;
		off += n;
	}
	db_finalize(st);
	return 0;
}
