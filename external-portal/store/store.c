/*
 * The portal's store: message files plus SQLite metadata; see store.h.
 * All SQL of the portal is here. Inputs are addresses and header values
 * that came from the gateway or a browser: they only ever reach SQLite as
 * bound parameters and the file system as names we generate ourselves.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/rand.h>
#include <sqlite3.h>

#include "log.h"
#include "store/store.h"
#include "xmalloc.h"

struct store {
	sqlite3		*db;
	char		*dir;
	int		 dirfd;
	pthread_mutex_t	 mtx;
	int		 rec_files, rec_rows;
};

static const char *store_schema =
    "CREATE TABLE IF NOT EXISTS portal_users ("
    " email TEXT PRIMARY KEY, domain TEXT NOT NULL, state TEXT NOT NULL,"
    " password_hash TEXT, totp_secret TEXT,"
    " totp_enabled INTEGER NOT NULL DEFAULT 0,"
    " totp_last_step INTEGER NOT NULL DEFAULT 0, created INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS portal_messages ("
    " id INTEGER PRIMARY KEY AUTOINCREMENT, owner TEXT NOT NULL,"
    " domain TEXT NOT NULL, folder TEXT NOT NULL, state TEXT NOT NULL,"
    " mail_from TEXT, hdr_from TEXT, subject TEXT, date INTEGER NOT NULL,"
    " size INTEGER NOT NULL, has_attachments INTEGER NOT NULL DEFAULT 0,"
    " unread INTEGER NOT NULL DEFAULT 1, path TEXT NOT NULL UNIQUE,"
    " created INTEGER NOT NULL);"
    "CREATE INDEX IF NOT EXISTS portal_messages_owner"
    " ON portal_messages(owner, folder, id);"
    "CREATE INDEX IF NOT EXISTS portal_messages_domain"
    " ON portal_messages(domain);"
    "CREATE INDEX IF NOT EXISTS portal_messages_created"
    " ON portal_messages(created);"
    "CREATE TABLE IF NOT EXISTS portal_tokens ("
    " hash TEXT PRIMARY KEY, kind TEXT NOT NULL, email TEXT NOT NULL,"
    " expires INTEGER NOT NULL, used INTEGER NOT NULL DEFAULT 0,"
    " created INTEGER NOT NULL);"
    "CREATE INDEX IF NOT EXISTS portal_tokens_email"
    " ON portal_tokens(email, kind);"
    "CREATE TABLE IF NOT EXISTS portal_outbox ("
    " id INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL,"
    " rcpt TEXT NOT NULL, sender_name TEXT, subject TEXT, path TEXT,"
    " attempts INTEGER NOT NULL DEFAULT 0, next_attempt INTEGER NOT NULL,"
    " created INTEGER NOT NULL, last_error TEXT);"
    "CREATE INDEX IF NOT EXISTS portal_outbox_due"
    " ON portal_outbox(next_attempt);";

static const char *store_folder_names[] = { "inbox", "sent" };
static const char *store_state_names[] = { "webmail", "pdf-pending" };
static const char *store_user_states[] = { "pending", "active" };
static const char *store_token_kinds[] = { "signup", "reset" };
static const char *store_outbox_kinds[] = { "signup", "newmsg", "raw",
    "reply", "receipt" };

static int
store_enum(const char *const *names, size_t n, const char *s)
{
	for (size_t i = 0; s != NULL && i < n; i++)
		if (strcmp(names[i], s) == 0)
			return (int)i;
	return 0;
}
#define STORE_ENUM(tab, s) store_enum(tab, sizeof(tab) / sizeof(tab[0]), s)

static void
store_lock(struct store *s)
{
	if (pthread_mutex_lock(&s->mtx) != 0)
		fatalx("store: mutex lock");
}

static void
store_unlock(struct store *s)
{
	pthread_mutex_unlock(&s->mtx);
}

static sqlite3_stmt *
store_prepare(struct store *s, const char *sql)
{
	sqlite3_stmt *st;

	if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK) {
		log_warnx("store: prepare: %s", sqlite3_errmsg(s->db));
		return NULL;
	}
	return st;
}

static void
store_bind_text(sqlite3_stmt *st, int i, const char *v)
{
	if (v == NULL)
		sqlite3_bind_null(st, i);
	else
		sqlite3_bind_text(st, i, v, -1, SQLITE_TRANSIENT);
}

/* Runs a statement that returns no rows; 0 or -1. */
static int
store_step_done(struct store *s, sqlite3_stmt *st)
{
	int rc = sqlite3_step(st);

	if (rc != SQLITE_DONE) {
		log_warnx("store: %s", sqlite3_errmsg(s->db));
		sqlite3_finalize(st);
		return -1;
	}
	sqlite3_finalize(st);
	return 0;
}

/* Runs a statement with one text parameter that returns no rows. */
static int
store_exec_text(struct store *s, const char *sql, const char *text)
{
	sqlite3_stmt *st;

	if ((st = store_prepare(s, sql)) == NULL)
		return -1;
	store_bind_text(st, 1, text);
	return store_step_done(s, st);
}

static int
store_exec(struct store *s, const char *sql)
{
	char *msg = NULL;

	if (sqlite3_exec(s->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
		log_warnx("store: %s: %s", sql, msg ? msg : "?");
		sqlite3_free(msg);
		return -1;
	}
	return 0;
}

static int
store_begin(struct store *s)
{
	return store_exec(s, "BEGIN IMMEDIATE");
}

static int
store_commit(struct store *s)
{
	if (store_exec(s, "COMMIT") == -1) {
		store_exec(s, "ROLLBACK");
		return -1;
	}
	return 0;
}

static void
store_rollback(struct store *s)
{
	sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
}

static char *
store_col_dup(sqlite3_stmt *st, int i)
{
	const unsigned char *v = sqlite3_column_text(st, i);

	return v ? xstrdup((const char *)v) : NULL;
}

static void
store_col_copy(sqlite3_stmt *st, int i, char *out, size_t outlen)
{
	const unsigned char *v = sqlite3_column_text(st, i);

	snprintf(out, outlen, "%s", v ? (const char *)v : "");
}

static char *
store_abspath(struct store *s, const char *name)
{
	char *p;

	xasprintf(&p, "%s/%s", s->dir, name);
	return p;
}

static void
store_random_name(const char *prefix, char *out, size_t outlen)
{
	unsigned char r[16];
	char hex[33];

	if (RAND_bytes(r, sizeof(r)) != 1)
		fatalx("store: RAND_bytes failed");
	for (size_t i = 0; i < sizeof(r); i++)
		snprintf(hex + 2 * i, 3, "%02x", r[i]);
	snprintf(out, outlen, "%s%s", prefix, hex);
}

static int
store_fsync_dir(struct store *s)
{
	if (fsync(s->dirfd) == -1) {
		log_warn("store: fsync %s", s->dir);
		return -1;
	}
	return 0;
}

/* --- open and recovery ----------------------------------------------------- */

static int
store_has_row(struct store *s, const char *name)
{
	sqlite3_stmt *st;
	int rc;

	st = store_prepare(s,
	    "SELECT 1 FROM portal_messages WHERE path = ?1 UNION ALL "
	    "SELECT 1 FROM portal_outbox WHERE path = ?1 LIMIT 1");
	if (st == NULL)
		return -1;
	store_bind_text(st, 1, name);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc == SQLITE_ROW)
		return 1;
	return rc == SQLITE_DONE ? 0 : -1;
}

static int
store_recover(struct store *s)
{
	DIR *d;
	struct dirent *de;
	sqlite3_stmt *st, *del;
	int dirty = 0;

	s->rec_files = s->rec_rows = 0;
	if ((d = fdopendir(dup(s->dirfd))) == NULL) {
		log_warn("store: opendir %s", s->dir);
		return -1;
	}
	rewinddir(d);
	while ((de = readdir(d)) != NULL) {
		int r = 0;

		if (de->d_name[0] == '.')
			continue;
		if (strncmp(de->d_name, "tmp-", 4) != 0 &&
		    (r = store_has_row(s, de->d_name)) != 0) {
			if (r == -1) {
				closedir(d);
				return -1;
			}
			continue;
		}
		if (unlinkat(s->dirfd, de->d_name, 0) == -1) {
			log_warn("store: unlink %s/%s", s->dir, de->d_name);
			continue;
		}
		s->rec_files++;
		dirty = 1;
	}
	closedir(d);
	if (dirty && store_fsync_dir(s) == -1)
		return -1;

	if ((st = store_prepare(s, "SELECT id, path FROM portal_messages"))
	    == NULL)
		return -1;
	if (store_begin(s) == -1) {
		sqlite3_finalize(st);
		return -1;
	}
	while (sqlite3_step(st) == SQLITE_ROW) {
		const char *name = (const char *)sqlite3_column_text(st, 1);
		struct stat sb;

		if (name != NULL && fstatat(s->dirfd, name, &sb, 0) == 0)
			continue;
		if ((del = store_prepare(s,
		    "DELETE FROM portal_messages WHERE id = ?")) == NULL)
			break;
		sqlite3_bind_int64(del, 1, sqlite3_column_int64(st, 0));
		if (store_step_done(s, del) == 0)
			s->rec_rows++;
	}
	sqlite3_finalize(st);
	if (store_commit(s) == -1)
		return -1;
	if (s->rec_files || s->rec_rows)
		log_info("store: recovery removed %d orphan files, %d rows "
		    "without a file", s->rec_files, s->rec_rows);
	else
		log_info("store: recovery found nothing to remove");
	return 0;
}

/* Columns added after the first release, to databases that lack them. */
static int
store_migrate(struct store *s)
{
	sqlite3_stmt *st;
	int have = 0;

	if ((st = store_prepare(s, "SELECT 1 FROM pragma_table_info("
	    "'portal_messages') WHERE name = 'receipt_sent'")) == NULL)
		return -1;
	have = sqlite3_step(st) == SQLITE_ROW;
	sqlite3_finalize(st);
	if (have)
		return 0;
	return store_exec(s, "ALTER TABLE portal_messages ADD COLUMN "
	    "receipt_sent INTEGER NOT NULL DEFAULT 0");
}

struct store *
store_open(const char *dbpath, const char *msgdir, int recover, char **err)
{
	struct store *s = xcalloc(1, sizeof(*s));
	pthread_mutexattr_t ma;

	*err = NULL;
	/* Recursive: list callbacks may call back into the store. */
	pthread_mutexattr_init(&ma);
	pthread_mutexattr_settype(&ma, PTHREAD_MUTEX_RECURSIVE);
	pthread_mutex_init(&s->mtx, &ma);
	pthread_mutexattr_destroy(&ma);
	s->dir = xstrdup(msgdir);
	s->dirfd = -1;
	if (mkdir(msgdir, 0700) == -1 && errno != EEXIST) {
		xasprintf(err, "%s: mkdir: %s", msgdir, strerror(errno));
		goto fail;
	}
	if ((s->dirfd = open(msgdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC))
	    == -1) {
		xasprintf(err, "%s: %s", msgdir, strerror(errno));
		goto fail;
	}
	if (sqlite3_open_v2(dbpath, &s->db, SQLITE_OPEN_READWRITE |
	    SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX, NULL) != SQLITE_OK) {
		xasprintf(err, "%s: %s", dbpath,
		    s->db ? sqlite3_errmsg(s->db) : "cannot open");
		goto fail;
	}
	sqlite3_busy_timeout(s->db, 5000);
	if (store_exec(s, "PRAGMA journal_mode=WAL") == -1 ||
	    store_exec(s, "PRAGMA synchronous=FULL") == -1 ||
	    store_exec(s, store_schema) == -1 || store_migrate(s) == -1) {
		xasprintf(err, "%s: cannot set up the store: %s", dbpath,
		    sqlite3_errmsg(s->db));
		goto fail;
	}
	if (recover && store_recover(s) == -1) {
		xasprintf(err, "%s: recovery failed", msgdir);
		goto fail;
	}
	return s;
fail:
	store_close(s);
	return NULL;
}

void
store_close(struct store *s)
{
	if (s == NULL)
		return;
	if (s->db != NULL)
		sqlite3_close(s->db);
	if (s->dirfd != -1)
		close(s->dirfd);
	pthread_mutex_destroy(&s->mtx);
	free(s->dir);
	free(s);
}

void
store_recovered(struct store *s, int *files, int *rows)
{
	*files = s->rec_files;
	*rows = s->rec_rows;
}

/* --- messages ------------------------------------------------------------- */

int
store_tmp_create(struct store *s, struct store_tmp *t)
{
	char name[64];
	int fd;

	store_random_name("tmp-", name, sizeof(name));
	t->path = store_abspath(s, name);
	if ((fd = open(t->path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600))
	    == -1 || (t->fp = fdopen(fd, "w+")) == NULL) {
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

static int64_t
store_usage_q(struct store *s, const char *sql, const char *key)
{
	sqlite3_stmt *st;
	int64_t v = -1;

	if ((st = store_prepare(s, sql)) == NULL)
		return -1;
	if (key != NULL)
		store_bind_text(st, 1, key);
	if (sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	else
		log_warnx("store: %s", sqlite3_errmsg(s->db));
	sqlite3_finalize(st);
	return v;
}

/* store_usage_q() for callers that do not hold the lock. */
static int64_t
store_scalar(struct store *s, const char *sql, const char *key)
{
	int64_t v;

	store_lock(s);
	v = store_usage_q(s, sql, key);
	store_unlock(s);
	return v;
}

#define STORE_SQL_USAGE \
    "SELECT COALESCE(SUM(size), 0) FROM portal_messages WHERE owner = ?"

int
store_deliver(struct store *s, struct store_tmp *t, const struct store_msg *m,
    const char *owner, int64_t quota, int notify, int64_t *id)
{
	char name[64], domain[ADDR_MAX], *final = NULL;
	sqlite3_stmt *st;
	struct stat sb;
	int64_t now = time(NULL), used;
	int state = STORE_USER_PENDING;

	if (fflush(t->fp) == EOF || fsync(fileno(t->fp)) == -1 ||
	    fstat(fileno(t->fp), &sb) == -1) {
		log_warn("store: write %s", t->path);
		return -1;
	}
	if (addr_domain_of(owner, domain, sizeof(domain)) == -1)
		fatalx("store: owner %s has no domain", owner);

	store_lock(s);
	if (quota > 0) {
		if ((used = store_usage_q(s, STORE_SQL_USAGE, owner)) == -1)
			goto fail;
		if (used + sb.st_size > quota) {
			store_unlock(s);
			return STORE_EQUOTA;
		}
	}
	store_random_name("m-", name, sizeof(name));
	final = store_abspath(s, name);
	if (link(t->path, final) == -1) {
		log_warn("store: link %s", final);
		goto fail;
	}
	if (store_fsync_dir(s) == -1)
		goto fail_unlink;
	if (store_begin(s) == -1)
		goto fail_unlink;

	if ((st = store_prepare(s, "INSERT OR IGNORE INTO portal_users "
	    "(email, domain, state, created) VALUES (?, ?, 'pending', ?)"))
	    == NULL)
		goto fail_rollback;
	store_bind_text(st, 1, owner);
	store_bind_text(st, 2, domain);
	sqlite3_bind_int64(st, 3, now);
	if (store_step_done(s, st) == -1)
		goto fail_rollback;

	if ((st = store_prepare(s, "INSERT INTO portal_messages (owner, "
	    "domain, folder, state, mail_from, hdr_from, subject, date, size, "
	    "has_attachments, unread, path, created) VALUES "
	    "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1, ?, ?)")) == NULL)
		goto fail_rollback;
	store_bind_text(st, 1, owner);
	store_bind_text(st, 2, domain);
	store_bind_text(st, 3, store_folder_names[m->folder]);
	store_bind_text(st, 4, store_state_names[m->state]);
	store_bind_text(st, 5, m->mail_from);
	store_bind_text(st, 6, m->hdr_from);
	store_bind_text(st, 7, m->subject);
	sqlite3_bind_int64(st, 8, m->date ? m->date : now);
	sqlite3_bind_int64(st, 9, sb.st_size);
	sqlite3_bind_int(st, 10, m->has_attachments);
	store_bind_text(st, 11, name);
	sqlite3_bind_int64(st, 12, now);
	if (store_step_done(s, st) == -1)
		goto fail_rollback;
	*id = sqlite3_last_insert_rowid(s->db);

	if (notify) {
		if ((st = store_prepare(s, "SELECT state FROM portal_users "
		    "WHERE email = ?")) == NULL)
			goto fail_rollback;
		store_bind_text(st, 1, owner);
		if (sqlite3_step(st) == SQLITE_ROW)
			state = STORE_ENUM(store_user_states,
			    (const char *)sqlite3_column_text(st, 0));
		sqlite3_finalize(st);
		if ((st = store_prepare(s, "INSERT INTO portal_outbox (kind, "
		    "rcpt, sender_name, subject, next_attempt, created) "
		    "VALUES (?, ?, ?, ?, ?, ?)")) == NULL)
			goto fail_rollback;
		store_bind_text(st, 1, store_outbox_kinds[
		    state == STORE_USER_ACTIVE ? STORE_OUTBOX_NEWMSG :
		    STORE_OUTBOX_SIGNUP]);
		store_bind_text(st, 2, owner);
		store_bind_text(st, 3, m->hdr_from);
		store_bind_text(st, 4, m->subject);
		sqlite3_bind_int64(st, 5, now);
		sqlite3_bind_int64(st, 6, now);
		if (store_step_done(s, st) == -1)
			goto fail_rollback;
	}
	if (store_commit(s) == -1)
		goto fail_unlink;
	store_unlock(s);
	free(final);
	return 0;

fail_rollback:
	store_rollback(s);
fail_unlink:
	unlink(final);
fail:
	store_unlock(s);
	free(final);
	return -1;
}

#define STORE_MSG_COLS "id, owner, folder, state, mail_from, hdr_from, " \
    "subject, date, size, has_attachments, unread, path, created"
#define STORE_SQL_LIST "SELECT " STORE_MSG_COLS " FROM portal_messages " \
    "WHERE owner = ? AND folder = ? AND id < ? ORDER BY id DESC LIMIT ?"

static void
store_msg_row(struct store *s, sqlite3_stmt *st, struct store_msg *m)
{
	const char *name = (const char *)sqlite3_column_text(st, 11);

	memset(m, 0, sizeof(*m));
	m->id = sqlite3_column_int64(st, 0);
	store_col_copy(st, 1, m->owner, sizeof(m->owner));
	m->folder = STORE_ENUM(store_folder_names,
	    (const char *)sqlite3_column_text(st, 2));
	m->state = STORE_ENUM(store_state_names,
	    (const char *)sqlite3_column_text(st, 3));
	m->mail_from = store_col_dup(st, 4);
	m->hdr_from = store_col_dup(st, 5);
	m->subject = store_col_dup(st, 6);
	m->date = sqlite3_column_int64(st, 7);
	m->size = sqlite3_column_int64(st, 8);
	m->has_attachments = sqlite3_column_int(st, 9);
	m->unread = sqlite3_column_int(st, 10);
	m->path = store_abspath(s, name ? name : "");
	m->created = sqlite3_column_int64(st, 12);
}

void
store_msg_free(struct store_msg *m)
{
	xfree(&m->mail_from);
	xfree(&m->hdr_from);
	xfree(&m->subject);
	xfree(&m->path);
}

int
store_msg_list(struct store *s, const char *owner, enum store_folder f,
    int64_t before, int limit, struct store_msg *out)
{
	sqlite3_stmt *st;
	int n = 0, rc;

	store_lock(s);
	if ((st = store_prepare(s, STORE_SQL_LIST)) == NULL) {
		store_unlock(s);
		return -1;
	}
	store_bind_text(st, 1, owner);
	store_bind_text(st, 2, store_folder_names[f]);
	sqlite3_bind_int64(st, 3, before > 0 ? before : INT64_MAX);
	sqlite3_bind_int(st, 4, limit);
	while (n < limit && (rc = sqlite3_step(st)) == SQLITE_ROW)
		store_msg_row(s, st, &out[n++]);
	sqlite3_finalize(st);
	store_unlock(s);
	return n;
}

int
store_msg_get(struct store *s, const char *owner, int64_t id,
    struct store_msg *m)
{
	sqlite3_stmt *st;
	int rc;

	store_lock(s);
	if ((st = store_prepare(s, "SELECT " STORE_MSG_COLS
	    " FROM portal_messages WHERE owner = ? AND id = ?")) == NULL) {
		store_unlock(s);
		return -1;
	}
	store_bind_text(st, 1, owner);
	sqlite3_bind_int64(st, 2, id);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		store_msg_row(s, st, m);
	sqlite3_finalize(st);
	store_unlock(s);
	if (rc == SQLITE_ROW)
		return 0;
	return rc == SQLITE_DONE ? STORE_NOTFOUND : -1;
}

static int
store_msg_update(struct store *s, const char *sql, const char *owner,
    int64_t id, const char *text, int ival)
{
	sqlite3_stmt *st;
	int rc;

	store_lock(s);
	if ((st = store_prepare(s, sql)) == NULL) {
		store_unlock(s);
		return -1;
	}
	if (text != NULL)
		store_bind_text(st, 1, text);
	else
		sqlite3_bind_int(st, 1, ival);
	store_bind_text(st, 2, owner);
	sqlite3_bind_int64(st, 3, id);
	rc = store_step_done(s, st);
	if (rc == 0 && sqlite3_changes(s->db) == 0)
		rc = STORE_NOTFOUND;
	store_unlock(s);
	return rc;
}

int
store_msg_set_unread(struct store *s, const char *owner, int64_t id,
    int unread)
{
	return store_msg_update(s, "UPDATE portal_messages SET unread = ? "
	    "WHERE owner = ? AND id = ?", owner, id, NULL, unread != 0);
}

int
store_msg_set_state(struct store *s, const char *owner, int64_t id,
    enum store_msg_state state)
{
	return store_msg_update(s, "UPDATE portal_messages SET state = ? "
	    "WHERE owner = ? AND id = ?", owner, id, store_state_names[state],
	    0);
}

/* Deletes the rows matching (where, owner[, id]) and then their files. */
static int
store_delete_where(struct store *s, const char *where, const char *owner,
    int64_t id)
{
	sqlite3_stmt *st;
	char *sql, **names = NULL;
	size_t n = 0;
	int rc = -1;

	if (store_begin(s) == -1)
		return -1;
	xasprintf(&sql, "SELECT path FROM portal_messages WHERE %s", where);
	st = store_prepare(s, sql);
	free(sql);
	if (st == NULL)
		goto out;
	store_bind_text(st, 1, owner);
	if (id)
		sqlite3_bind_int64(st, 2, id);
	while (sqlite3_step(st) == SQLITE_ROW) {
		names = xreallocarray(names, n + 1, sizeof(*names));
		names[n++] = store_col_dup(st, 0);
	}
	sqlite3_finalize(st);
	xasprintf(&sql, "DELETE FROM portal_messages WHERE %s", where);
	st = store_prepare(s, sql);
	free(sql);
	if (st == NULL)
		goto out;
	store_bind_text(st, 1, owner);
	if (id)
		sqlite3_bind_int64(st, 2, id);
	if (store_step_done(s, st) == -1)
		goto out;
	rc = 0;
out:
	if (rc == 0 && store_commit(s) == 0) {
		/* A crash before these unlinks leaves orphans: recovery. */
		for (size_t i = 0; i < n; i++)
			if (names[i] != NULL &&
			    unlinkat(s->dirfd, names[i], 0) == -1 &&
			    errno != ENOENT)
				log_warn("store: unlink %s/%s", s->dir,
				    names[i]);
		if (n > 0)
			store_fsync_dir(s);
		if (n == 0 && id)
			rc = STORE_NOTFOUND;
	} else {
		store_rollback(s);
		rc = -1;
	}
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	return rc;
}

int
store_msg_delete(struct store *s, const char *owner, int64_t id)
{
	int rc;

	store_lock(s);
	rc = store_delete_where(s, "owner = ?1 AND id = ?2", owner, id);
	store_unlock(s);
	return rc;
}

int64_t
store_usage(struct store *s, const char *owner)
{
	return store_scalar(s, STORE_SQL_USAGE, owner);
}

int64_t
store_usage_domain(struct store *s, const char *domain)
{
	return store_scalar(s, "SELECT COALESCE(SUM(size), 0) FROM "
	    "portal_messages WHERE domain = lower(?)", domain);
}

int64_t
store_usage_total(struct store *s)
{
	return store_scalar(s, "SELECT COALESCE(SUM(size), 0) FROM "
	    "portal_messages", NULL);
}

int64_t
store_msg_count(struct store *s, const char *owner)
{
	return store_scalar(s, "SELECT COUNT(*) FROM portal_messages "
	    "WHERE owner = ?", owner);
}

int
store_msg_older(struct store *s, const char *owner, int64_t cutoff,
    int (*cb)(void *, const struct store_msg *), void *arg)
{
	sqlite3_stmt *st;
	struct store_msg *v = NULL;
	size_t n = 0;
	int rc;

	/* Collect first: cb may delete, which needs the lock. */
	store_lock(s);
	st = store_prepare(s, owner ? "SELECT " STORE_MSG_COLS " FROM "
	    "portal_messages WHERE created < ?1 AND owner = ?2 ORDER BY id" :
	    "SELECT " STORE_MSG_COLS " FROM portal_messages WHERE "
	    "created < ?1 ORDER BY id");
	if (st == NULL) {
		store_unlock(s);
		return -1;
	}
	sqlite3_bind_int64(st, 1, cutoff);
	if (owner)
		store_bind_text(st, 2, owner);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		v = xreallocarray(v, n + 1, sizeof(*v));
		store_msg_row(s, st, &v[n++]);
	}
	sqlite3_finalize(st);
	store_unlock(s);
	rc = rc == SQLITE_DONE ? 0 : -1;
	for (size_t i = 0; i < n; i++) {
		if (rc == 0 && cb(arg, &v[i]) != 0)
			rc = 1;
		store_msg_free(&v[i]);
	}
	free(v);
	return rc == 1 ? 0 : rc;
}

/* --- users ---------------------------------------------------------------- */

#define STORE_USER_COLS "email, state, password_hash, totp_secret, " \
    "totp_enabled, totp_last_step, created"

static void
store_user_row(sqlite3_stmt *st, struct store_user *u)
{
	memset(u, 0, sizeof(*u));
	store_col_copy(st, 0, u->email, sizeof(u->email));
	u->state = STORE_ENUM(store_user_states,
	    (const char *)sqlite3_column_text(st, 1));
	u->password_hash = store_col_dup(st, 2);
	u->totp_secret = store_col_dup(st, 3);
	u->totp_enabled = sqlite3_column_int(st, 4);
	u->totp_last_step = sqlite3_column_int64(st, 5);
	u->created = sqlite3_column_int64(st, 6);
}

void
store_user_free(struct store_user *u)
{
	xfree_secret(&u->password_hash);
	xfree_secret(&u->totp_secret);
}

int
store_user_get(struct store *s, const char *email, struct store_user *u)
{
	sqlite3_stmt *st;
	int rc;

	store_lock(s);
	if ((st = store_prepare(s, "SELECT " STORE_USER_COLS
	    " FROM portal_users WHERE email = ?")) == NULL) {
		store_unlock(s);
		return -1;
	}
	store_bind_text(st, 1, email);
	if ((rc = sqlite3_step(st)) == SQLITE_ROW)
		store_user_row(st, u);
	sqlite3_finalize(st);
	store_unlock(s);
	if (rc == SQLITE_ROW)
		return 0;
	return rc == SQLITE_DONE ? STORE_NOTFOUND : -1;
}

int
store_user_list(struct store *s, void (*cb)(void *, const struct store_user *),
    void *arg)
{
	sqlite3_stmt *st;
	struct store_user u;
	int rc;

	store_lock(s);
	if ((st = store_prepare(s, "SELECT " STORE_USER_COLS
	    " FROM portal_users ORDER BY email")) == NULL) {
		store_unlock(s);
		return -1;
	}
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		store_user_row(st, &u);
		cb(arg, &u);
		store_user_free(&u);
	}
	sqlite3_finalize(st);
	store_unlock(s);
	return rc == SQLITE_DONE ? 0 : -1;
}

static int
store_user_update(struct store *s, const char *sql, const char *email,
    const char *text, int64_t ival)
{
	sqlite3_stmt *st;
	int rc;

	store_lock(s);
	if ((st = store_prepare(s, sql)) == NULL) {
		store_unlock(s);
		return -1;
	}
	store_bind_text(st, 1, email);
	store_bind_text(st, 2, text);
	sqlite3_bind_int64(st, 3, ival);
	rc = store_step_done(s, st);
	if (rc == 0 && sqlite3_changes(s->db) == 0)
		rc = STORE_NOTFOUND;
	store_unlock(s);
	return rc;
}

int
store_user_set_password(struct store *s, const char *email, const char *hash)
{
	return store_user_update(s, "UPDATE portal_users SET password_hash = "
	    "?2, state = 'active' WHERE email = ?1 AND ?3 = 0", email, hash, 0);
}

int
store_user_reset_password(struct store *s, const char *email)
{
	int rc;

	rc = store_user_update(s, "UPDATE portal_users SET password_hash = "
	    "NULL, totp_secret = NULL, totp_enabled = 0, state = 'pending' "
	    "WHERE email = ?1 AND ?2 IS NULL AND ?3 = 0", email, NULL, 0);
	if (rc == 0)
		rc = store_token_revoke(s, STORE_TOKEN_SIGNUP, email);
	if (rc == 0)
		rc = store_token_revoke(s, STORE_TOKEN_RESET, email);
	return rc;
}

int
store_user_set_totp(struct store *s, const char *email, const char *secret,
    int enabled)
{
	return store_user_update(s, "UPDATE portal_users SET totp_secret = ?2, "
	    "totp_enabled = ?3, totp_last_step = 0 WHERE email = ?1", email,
	    secret, enabled != 0);
}

int
store_user_totp_step(struct store *s, const char *email, int64_t step)
{
	int rc;

	rc = store_user_update(s, "UPDATE portal_users SET totp_last_step = "
	    "?3 WHERE email = ?1 AND totp_last_step < ?3 AND ?2 IS NULL",
	    email, NULL, step);
	return rc == STORE_NOTFOUND ? 1 : rc;
}

int
store_user_delete(struct store *s, const char *email)
{
	int rc;

	store_lock(s);
	if ((rc = store_delete_where(s, "owner = ?1", email, 0)) == -1)
		goto out;
	rc = -1;
	if (store_begin(s) == -1)
		goto out;
	if (store_exec_text(s, "DELETE FROM portal_tokens WHERE email = ?",
	    email) == -1)
		goto rollback;
	if (store_exec_text(s, "DELETE FROM portal_outbox WHERE rcpt = ? AND "
	    "kind != 'raw'", email) == -1)
		goto rollback;
	if (store_exec_text(s, "DELETE FROM portal_users WHERE email = ?",
	    email) == -1)
		goto rollback;
	rc = sqlite3_changes(s->db) ? 0 : STORE_NOTFOUND;
	if (store_commit(s) == -1)
		rc = -1;
	goto out;
rollback:
	store_rollback(s);
out:
	store_unlock(s);
	return rc;
}

/* --- tokens ---------------------------------------------------------------- */

int
store_token_put(struct store *s, enum store_token_kind kind,
    const char *hash, const char *email, int64_t expires)
{
	sqlite3_stmt *st;
	int rc;

	store_lock(s);
	if ((st = store_prepare(s, "INSERT INTO portal_tokens (hash, kind, "
	    "email, expires, created) VALUES (?, ?, ?, ?, ?)")) == NULL) {
		store_unlock(s);
		return -1;
	}
	store_bind_text(st, 1, hash);
	store_bind_text(st, 2, store_token_kinds[kind]);
	store_bind_text(st, 3, email);
	sqlite3_bind_int64(st, 4, expires);
	sqlite3_bind_int64(st, 5, time(NULL));
	rc = store_step_done(s, st);
	store_unlock(s);
	return rc;
}

int
store_token_consume(struct store *s, enum store_token_kind kind,
    const char *hash, int64_t now, char *email, size_t emaillen)
{
	sqlite3_stmt *st;
	int rc = -1;

	store_lock(s);
	if (store_begin(s) == -1)
		goto out;
	if ((st = store_prepare(s, "SELECT email FROM portal_tokens WHERE "
	    "hash = ? AND kind = ? AND used = 0 AND expires > ?")) == NULL)
		goto rollback;
	store_bind_text(st, 1, hash);
	store_bind_text(st, 2, store_token_kinds[kind]);
	sqlite3_bind_int64(st, 3, now);
	if (sqlite3_step(st) != SQLITE_ROW) {
		sqlite3_finalize(st);
		rc = STORE_NOTFOUND;
		goto rollback;
	}
	store_col_copy(st, 0, email, emaillen);
	sqlite3_finalize(st);
	if (store_exec_text(s, "UPDATE portal_tokens SET used = 1 WHERE "
	    "hash = ?", hash) == -1)
		goto rollback;
	rc = store_commit(s);
	goto out;
rollback:
	store_rollback(s);
out:
	store_unlock(s);
	return rc;
}

int
store_token_peek(struct store *s, enum store_token_kind kind,
    const char *hash, int64_t now, char *email, size_t emaillen, int *live)
{
	sqlite3_stmt *st;
	int rc;

	store_lock(s);
	if ((st = store_prepare(s, "SELECT email, used = 0 AND expires > ? "
	    "FROM portal_tokens WHERE hash = ? AND kind = ?")) == NULL) {
		store_unlock(s);
		return -1;
	}
	sqlite3_bind_int64(st, 1, now);
	store_bind_text(st, 2, hash);
	store_bind_text(st, 3, store_token_kinds[kind]);
	if ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		store_col_copy(st, 0, email, emaillen);
		*live = sqlite3_column_int(st, 1);
		rc = 0;
	} else if (rc == SQLITE_DONE)
		rc = STORE_NOTFOUND;
	else {
		log_warnx("store: %s", sqlite3_errmsg(s->db));
		rc = -1;
	}
	sqlite3_finalize(st);
	store_unlock(s);
	return rc;
}

int
store_token_revoke(struct store *s, enum store_token_kind kind,
    const char *email)
{
	sqlite3_stmt *st;
	int rc;

	store_lock(s);
	if ((st = store_prepare(s, "UPDATE portal_tokens SET used = 1 "
	    "WHERE email = ? AND kind = ? AND used = 0")) == NULL) {
		store_unlock(s);
		return -1;
	}
	store_bind_text(st, 1, email);
	store_bind_text(st, 2, store_token_kinds[kind]);
	rc = store_step_done(s, st);
	store_unlock(s);
	return rc;
}

int
store_msg_receipt_queue(struct store *s, const char *owner, int64_t id,
    const char *rcpt, const char *path)
{
	sqlite3_stmt *st;

	store_lock(s);
	if (store_begin(s) == -1)
		goto fail;
	if ((st = store_prepare(s, "UPDATE portal_messages SET receipt_sent "
	    "= 1 WHERE id = ? AND owner = ? AND receipt_sent = 0")) == NULL)
		goto fail_rollback;
	sqlite3_bind_int64(st, 1, id);
	store_bind_text(st, 2, owner);
	if (store_step_done(s, st) == -1)
		goto fail_rollback;
	if (sqlite3_changes(s->db) == 0) {
		store_rollback(s);
		store_unlock(s);
		return STORE_NOTFOUND;
	}
	if (store_outbox_add(s, STORE_OUTBOX_RECEIPT, rcpt, NULL, NULL,
	    path) == -1 || store_commit(s) == -1)
		goto fail_rollback;
	store_unlock(s);
	return 0;
fail_rollback:
	store_rollback(s);
fail:
	store_unlock(s);
	return -1;
}

int
store_msg_receipt_sent(struct store *s, const char *owner, int64_t id)
{
	sqlite3_stmt *st;
	int rc, v = -1;

	store_lock(s);
	if ((st = store_prepare(s, "SELECT receipt_sent FROM portal_messages "
	    "WHERE id = ? AND owner = ?")) != NULL) {
		sqlite3_bind_int64(st, 1, id);
		store_bind_text(st, 2, owner);
		if ((rc = sqlite3_step(st)) == SQLITE_ROW)
			v = sqlite3_column_int(st, 0) != 0;
		else if (rc == SQLITE_DONE)
			v = 0;
		sqlite3_finalize(st);
	}
	store_unlock(s);
	return v;
}

int
store_msg_list_plan(struct store *s, char *out, size_t outlen)
{
	sqlite3_stmt *st;
	size_t off = 0;

	if (outlen == 0)
		return -1;
	out[0] = '\0';
	store_lock(s);
	if ((st = store_prepare(s, "EXPLAIN QUERY PLAN " STORE_SQL_LIST))
	    == NULL) {
		store_unlock(s);
		return -1;
	}
	while (sqlite3_step(st) == SQLITE_ROW) {
		const unsigned char *d = sqlite3_column_text(st, 3);
		int n = snprintf(out + off, outlen - off, "%s\n",
		    d ? (const char *)d : "");

		if (n < 0 || (size_t)n >= outlen - off)
			break;
		off += n;
	}
	sqlite3_finalize(st);
	store_unlock(s);
	return 0;
}

/* --- outbox ---------------------------------------------------------------- */

int
store_outbox_add(struct store *s, enum store_outbox_kind kind,
    const char *rcpt, const char *sender_name, const char *subject,
    const char *path)
{
	sqlite3_stmt *st;
	int64_t now = time(NULL);
	int rc;

	store_lock(s);
	if ((st = store_prepare(s, "INSERT INTO portal_outbox (kind, rcpt, "
	    "sender_name, subject, path, next_attempt, created) VALUES "
	    "(?, ?, ?, ?, ?, ?, ?)")) == NULL) {
		store_unlock(s);
		return -1;
	}
	store_bind_text(st, 1, store_outbox_kinds[kind]);
	store_bind_text(st, 2, rcpt);
	store_bind_text(st, 3, sender_name);
	store_bind_text(st, 4, subject);
	store_bind_text(st, 5, path);
	sqlite3_bind_int64(st, 6, now);
	sqlite3_bind_int64(st, 7, now);
	rc = store_step_done(s, st);
	store_unlock(s);
	return rc;
}

int
store_outbox_add_many(struct store *s, enum store_outbox_kind kind,
    const char *const *rcpts, size_t n, const char *sender_name,
    const char *subject, const char *path)
{
	store_lock(s);
	if (store_begin(s) == -1) {
		store_unlock(s);
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		if (store_outbox_add(s, kind, rcpts[i], sender_name, subject,
		    path) == -1) {
			store_rollback(s);
			store_unlock(s);
			return -1;
		}
	}
	if (store_commit(s) == -1) {
		store_unlock(s);
		return -1;
	}
	store_unlock(s);
	return 0;
}

int64_t
store_outbox_path_refs(struct store *s, const char *path)
{
	sqlite3_stmt *st;
	int64_t v = -1;

	store_lock(s);
	if ((st = store_prepare(s, "SELECT COUNT(*) FROM portal_outbox "
	    "WHERE path = ?")) != NULL) {
		store_bind_text(st, 1, path);
		if (sqlite3_step(st) == SQLITE_ROW)
			v = sqlite3_column_int64(st, 0);
		else
			log_warnx("store: %s", sqlite3_errmsg(s->db));
		sqlite3_finalize(st);
	}
	store_unlock(s);
	return v;
}

int
store_outbox_next(struct store *s, int64_t now, struct store_outbox *o)
{
	sqlite3_stmt *st;
	int rc;

	store_lock(s);
	if ((st = store_prepare(s, "SELECT id, kind, rcpt, sender_name, "
	    "subject, path, attempts, next_attempt, created FROM portal_outbox "
	    "WHERE next_attempt <= ? ORDER BY next_attempt, id LIMIT 1"))
	    == NULL) {
		store_unlock(s);
		return -1;
	}
	sqlite3_bind_int64(st, 1, now);
	if ((rc = sqlite3_step(st)) == SQLITE_ROW) {
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
	sqlite3_finalize(st);
	store_unlock(s);
	if (rc == SQLITE_ROW)
		return 0;
	return rc == SQLITE_DONE ? STORE_NOTFOUND : -1;
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
	sqlite3_stmt *st;
	int rc;

	store_lock(s);
	if ((st = store_prepare(s, "DELETE FROM portal_outbox WHERE id = ?"))
	    == NULL) {
		store_unlock(s);
		return -1;
	}
	sqlite3_bind_int64(st, 1, id);
	rc = store_step_done(s, st);
	store_unlock(s);
	return rc;
}

int
store_outbox_retry(struct store *s, int64_t id, int64_t next,
    const char *error)
{
	sqlite3_stmt *st;
	int rc;

	store_lock(s);
	if ((st = store_prepare(s, "UPDATE portal_outbox SET attempts = "
	    "attempts + 1, next_attempt = ?, last_error = ? WHERE id = ?"))
	    == NULL) {
		store_unlock(s);
		return -1;
	}
	sqlite3_bind_int64(st, 1, next);
	store_bind_text(st, 2, error);
	sqlite3_bind_int64(st, 3, id);
	rc = store_step_done(s, st);
	store_unlock(s);
	return rc;
}

void
store_outbox_free(struct store_outbox *o)
{
	xfree(&o->sender_name);
	xfree(&o->subject);
	xfree(&o->path);
}

int
store_stats(struct store *s, struct store_stats *t)
{
	static const struct {
		const char	*sql;
		size_t		 off;
	} q[] = {
	    { "SELECT COUNT(*) FROM portal_users",
	      offsetof(struct store_stats, users) },
	    { "SELECT COUNT(*) FROM portal_users WHERE state = 'pending'",
	      offsetof(struct store_stats, users_pending) },
	    { "SELECT COUNT(*) FROM portal_users WHERE state = 'active'",
	      offsetof(struct store_stats, users_active) },
	    { "SELECT COUNT(*) FROM portal_messages",
	      offsetof(struct store_stats, messages) },
	    { "SELECT COUNT(*) FROM portal_messages WHERE state = "
	      "'pdf-pending'", offsetof(struct store_stats,
	      messages_pdf_pending) },
	    { "SELECT COALESCE(SUM(size), 0) FROM portal_messages",
	      offsetof(struct store_stats, bytes) },
	    { "SELECT COUNT(*) FROM portal_outbox",
	      offsetof(struct store_stats, outbox) },
	    { "SELECT COUNT(*) FROM portal_tokens WHERE used = 0 AND "
	      "expires > strftime('%s', 'now')",
	      offsetof(struct store_stats, tokens_live) },
	};
	int64_t v;

	memset(t, 0, sizeof(*t));
	store_lock(s);
	for (size_t i = 0; i < sizeof(q) / sizeof(q[0]); i++) {
		if ((v = store_usage_q(s, q[i].sql, NULL)) == -1) {
			store_unlock(s);
			return -1;
		}
		*(int64_t *)((char *)t + q[i].off) = v;
	}
	store_unlock(s);
	return 0;
}
