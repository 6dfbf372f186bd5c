/*
 * The portal's store: open, schema, crash recovery, statistics and the
 * helpers of store_int.h; see store.h. Messages are in store_msg.c, users
 * with their tokens, web sessions and recovery codes in store_user.c, the
 * outbox in store_outbox.c. Inputs are addresses and header values that
 * came from the gateway or a browser: they only ever reach SQLite as bound
 * parameters and the file system as names we generate ourselves.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/rand.h>

#include "db.h"
#include "log.h"
#include "store/store_int.h"
#include "xmalloc.h"

static const char store_schema[] =
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
    " ON portal_outbox(next_attempt);"
    "CREATE TABLE IF NOT EXISTS web_sessions ("
    " id_hash TEXT PRIMARY KEY, email TEXT NOT NULL,"
    " stage INTEGER NOT NULL, created INTEGER NOT NULL,"
    " last_seen INTEGER NOT NULL);"
    "CREATE INDEX IF NOT EXISTS web_sessions_email ON web_sessions(email);"
    "CREATE TABLE IF NOT EXISTS web_throttle ("
    " key TEXT PRIMARY KEY, failures INTEGER NOT NULL,"
    " last INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS web_recovery ("
    " email TEXT NOT NULL, hash TEXT NOT NULL, PRIMARY KEY(email, hash));"
    "CREATE TABLE IF NOT EXISTS web_keys ("
    " name TEXT PRIMARY KEY, value BLOB NOT NULL);"
    STORE_PART_SCHEMA;

/* Version i + 1 of the store's schema is reached by step i. */
static const char *const store_steps[] = {
	store_schema,
	STORE_BLOB_SCHEMA,
	/* Encrypted storage: From and Subject sealed (store_crypt.h). */
	"ALTER TABLE portal_messages ADD COLUMN sealed_meta BLOB;",
	/*
	 * The listing's index (store_msg.c): owner, folder and state to
	 * find a page, then every column a list reads, so SQLite answers
	 * from the index alone. It also serves what used the owner index.
	 */
	"CREATE INDEX IF NOT EXISTS portal_messages_list ON portal_messages"
	"(owner, folder, state, id, date, size, unread, has_attachments,"
	" created, mail_from, hdr_from, subject, sealed_meta, path);"
	"DROP INDEX IF EXISTS portal_messages_owner;",
};

/*
 * PostgreSQL, where an index entry has a size limit (about 2.7 KB) that
 * a long Subject would exceed: the same steps, the listing's index on
 * the search columns only.
 */
static const char *const store_steps_pg[] = {
	store_schema,
	STORE_BLOB_SCHEMA,
	"ALTER TABLE portal_messages ADD COLUMN sealed_meta BLOB;",
	"CREATE INDEX IF NOT EXISTS portal_messages_list ON portal_messages"
	"(owner, folder, state, id);"
	"DROP INDEX IF EXISTS portal_messages_owner;",
};
_Static_assert(sizeof(store_steps_pg) == sizeof(store_steps),
    "one schema version on both engines");

/*
 * Columns added after the first release, to databases that lack them.
 * generation: a random stamp per account, copied into each web session;
 * a session whose account was deleted and created again is dead.
 * last_invite: when the last sign-up invitation was queued.
 */
static const struct {
	const char	*table, *column, *decl, *fill;
} store_columns[] = {
	{ "portal_messages", "receipt_sent", "INTEGER NOT NULL DEFAULT 0",
	  NULL },
	{ "portal_users", "generation", "INTEGER NOT NULL DEFAULT 0",
	  "UPDATE portal_users SET generation = random() "
	  "WHERE generation = 0" },
	{ "portal_users", "last_invite", "INTEGER NOT NULL DEFAULT 0", NULL },
	{ "web_sessions", "user_gen", "INTEGER NOT NULL DEFAULT 0", NULL },
	/*
	 * used_bytes: the sum of the sizes of the account's messages, kept
	 * by the triggers below in the transaction that inserts or deletes a
	 * message (quota check, inbox page: no SUM over the mailbox).
	 * Initialised from the rows in the migration's transaction.
	 */
	{ "portal_users", "used_bytes", "INTEGER NOT NULL DEFAULT 0",
	  "UPDATE portal_users SET used_bytes = (SELECT COALESCE(SUM(size), "
	  "0) FROM portal_messages WHERE owner = portal_users.email)" },
	/* last_notify: when the last "new message" mail was queued. */
	{ "portal_users", "last_notify", "INTEGER NOT NULL DEFAULT 0", NULL },
};

/*
 * The usage counter. Every path that adds or removes a message row
 * (delivery, web and CLI delete, retention, account delete, recovery)
 * goes through these, inside its own transaction, so the counter and the
 * rows commit or roll back together. An account created after its
 * messages (not done today) starts from their sum.
 */
static const char store_triggers[] =
    "CREATE TRIGGER IF NOT EXISTS portal_usage_ins AFTER INSERT ON"
    " portal_messages BEGIN UPDATE portal_users SET used_bytes ="
    " used_bytes + NEW.size WHERE email = NEW.owner; END;"
    "CREATE TRIGGER IF NOT EXISTS portal_usage_del AFTER DELETE ON"
    " portal_messages BEGIN UPDATE portal_users SET used_bytes ="
    " used_bytes - OLD.size WHERE email = OLD.owner; END;"
    "CREATE TRIGGER IF NOT EXISTS portal_usage_upd AFTER UPDATE OF"
    " owner, size ON portal_messages BEGIN"
    " UPDATE portal_users SET used_bytes = used_bytes - OLD.size"
    " WHERE email = OLD.owner;"
    " UPDATE portal_users SET used_bytes = used_bytes + NEW.size"
    " WHERE email = NEW.owner; END;"
    "CREATE TRIGGER IF NOT EXISTS portal_usage_user AFTER INSERT ON"
    " portal_users BEGIN UPDATE portal_users SET used_bytes ="
    " (SELECT COALESCE(SUM(size), 0) FROM portal_messages WHERE"
    " owner = NEW.email) WHERE email = NEW.email; END;";

/* The same counter on PostgreSQL. */
static const char store_triggers_pg[] =
    "CREATE OR REPLACE FUNCTION portal_usage() RETURNS trigger"
    " LANGUAGE plpgsql AS $$ BEGIN"
    " IF TG_OP IN ('UPDATE', 'DELETE') THEN UPDATE portal_users SET"
    " used_bytes = used_bytes - OLD.size WHERE email = OLD.owner; END IF;"
    " IF TG_OP IN ('UPDATE', 'INSERT') THEN UPDATE portal_users SET"
    " used_bytes = used_bytes + NEW.size WHERE email = NEW.owner; END IF;"
    " RETURN NULL; END $$;"
    "CREATE OR REPLACE TRIGGER portal_usage AFTER INSERT OR DELETE OR"
    " UPDATE OF owner, size ON portal_messages FOR EACH ROW"
    " EXECUTE FUNCTION portal_usage();"
    "CREATE OR REPLACE FUNCTION portal_usage_user() RETURNS trigger"
    " LANGUAGE plpgsql AS $$ BEGIN UPDATE portal_users SET used_bytes ="
    " (SELECT COALESCE(SUM(size), 0) FROM portal_messages WHERE"
    " owner = NEW.email) WHERE email = NEW.email; RETURN NULL; END $$;"
    "CREATE OR REPLACE TRIGGER portal_usage_user AFTER INSERT ON"
    " portal_users FOR EACH ROW EXECUTE FUNCTION portal_usage_user();";

const char *const store_folder_names[2] = { "inbox", "sent" };
const char *const store_state_names[2] = { "webmail", "pdf-pending" };
const char *const store_user_states[2] = { "pending", "active" };
const char *const store_token_kinds[2] = { "signup", "reset" };
const char *const store_outbox_kinds[5] = { "signup", "newmsg", "raw",
    "reply", "receipt" };

int
store_enum(const char *const *names, size_t n, const char *s)
{
	for (size_t i = 0; s != NULL && i < n; i++)
		if (strcmp(names[i], s) == 0)
			return (int)i;
	return 0;
}

const char *
store_key(const char *email, char *buf, size_t len)
{
	if (email == NULL || addr_fold(email, buf, len) == -1)
		return email;
	return buf;
}

struct db *
store_db(struct store *s)
{
	return db_thread(s->dbpath);
}

char *
store_col_dup(struct db_stmt *st, int i)
{
	const char *v = db_col_text(st, i);

	return v ? xstrdup((const char *)v) : NULL;
}

void
store_col_copy(struct db_stmt *st, int i, char *out, size_t outlen)
{
	const char *v = db_col_text(st, i);

	snprintf(out, outlen, "%s", v ? (const char *)v : "");
}

void
store_set_coalesce(struct store *s, int64_t seconds)
{
	s->coalesce = seconds > 0 ? seconds : 0;
}

int64_t
store_scalar(struct store *s, const char *sql, const char *key)
{
	struct db *db;
	struct db_stmt *st;
	int64_t v = -1;

	if ((db = store_db(s)) == NULL ||
	    (st = db_prepare_cached(db, sql)) == NULL)
		return -1;
	if ((key == NULL || db_bind(st, "t", key) == 0) &&
	    db_step(st) == DB_ROW)
		v = db_col_int(st, 0);
	db_finalize(st);
	return v;
}

char *
store_abspath(struct store *s, const char *name)
{
	char *p;

	if (s->dir == NULL)
		fatalx("store: message call on a metadata-only store");
	xasprintf(&p, "%s/%s", s->dir, name);
	return p;
}

void
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

int
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
store_has_row(struct db *db, const char *name)
{
	struct db_stmt *st;
	int rc;

	if ((st = db_prepare(db, "SELECT 1 FROM portal_messages WHERE "
	    "path = ?1 UNION ALL SELECT 1 FROM portal_outbox WHERE path = ?1 "
	    "LIMIT 1")) == NULL)
		return -1;
	rc = db_bind(st, "t", name) == 0 ? db_step(st) : -1;
	db_finalize(st);
	return rc;
}

static int
store_recover(struct store *s, struct db *db)
{
	DIR *d;
	struct dirent *de;
	struct db_stmt *st;
	int dirty = 0, rc;

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
		    (r = store_has_row(db, de->d_name)) != 0) {
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
	/*
	 * With the bytes in the database the directory is a cache: a row
	 * without a file here is another node's message, not a loss.
	 */
	if (store_blob_on(db)) {
		log_info("store: recovery removed %d cached files without a "
		    "row", s->rec_files);
		return 0;
	}

	if (db_begin(db) == -1)
		return -1;
	if ((st = db_prepare(db, "SELECT id, path FROM portal_messages"))
	    == NULL) {
		db_rollback(db);
		return -1;
	}
	while ((rc = db_step(st)) == DB_ROW) {
		const char *name = (const char *)db_col_text(st, 1);
		struct stat sb;

		if (name != NULL && fstatat(s->dirfd, name, &sb, 0) == 0)
			continue;
		if (db_run(db, "DELETE FROM portal_messages WHERE id = ?", "i",
		    (int64_t)db_col_int(st, 0)) == -1) {
			rc = -1;
			break;
		}
		s->rec_rows++;
	}
	db_finalize(st);
	if (rc == -1 || db_commit(db) == -1) {
		db_rollback(db);
		return -1;
	}
	if (s->rec_files || s->rec_rows)
		log_info("store: recovery removed %d orphan files, %d rows "
		    "without a file", s->rec_files, s->rec_rows);
	else
		log_info("store: recovery found nothing to remove");
	return 0;
}

static int
store_migrate(struct db *db, char **err)
{
	char *sql;
	int have, rc;

	for (size_t i = 0; i < sizeof(store_columns) /
	    sizeof(store_columns[0]); i++) {
		have = db_has_column(db, store_columns[i].table,
		    store_columns[i].column);
		if (have == -1)
			return -1;
		if (have == DB_ROW)
			continue;
		/* Fixed names from the table above, no peer data. */
		xasprintf(&sql, "ALTER TABLE %s ADD COLUMN %s %s",
		    store_columns[i].table, store_columns[i].column,
		    store_columns[i].decl);
		rc = db_exec(db, sql, err);
		free(sql);
		/* A fill is for rows older than the column: SQLite only. */
		if (rc == -1 || (store_columns[i].fill != NULL &&
		    db_kind(db) == DB_SQLITE &&
		    db_exec(db, store_columns[i].fill, err) == -1))
			return -1;
	}
	return 0;
}

struct store *
store_open(const char *dbpath, const char *msgdir, int recover, char **err)
{
	struct store *s = xcalloc(1, sizeof(*s));
	struct db *db;
	char *e = NULL;

	*err = NULL;
	s->dbpath = xstrdup(dbpath);
	s->dirfd = -1;
	store_group_init(s);
	store_pool_init(s);
	if (msgdir != NULL) {
		s->dir = xstrdup(msgdir);
		if (mkdir(msgdir, 0700) == -1 && errno != EEXIST) {
			xasprintf(err, "%s: mkdir: %s", msgdir,
			    strerror(errno));
			goto fail;
		}
		if ((s->dirfd = open(msgdir, O_RDONLY | O_DIRECTORY |
		    O_CLOEXEC)) == -1) {
			xasprintf(err, "%s: %s", msgdir, strerror(errno));
			goto fail;
		}
	}
	if ((db = store_db(s)) == NULL) {
		xasprintf(err, "%s: cannot open the database",
		    db_redact(dbpath));
		goto fail;
	}
	/*
	 * The versioned schema, then (for databases made before versions
	 * were kept) the columns added since, their first values and the
	 * triggers: all or nothing.
	 */
	if (db_migrate(db, "portal-store", db_kind(db) == DB_PG ?
	    store_steps_pg : store_steps, sizeof(store_steps) /
	    sizeof(store_steps[0]), &e) == -1 || db_begin(db) == -1 ||
	    store_migrate(db, &e) == -1 || store_pdf_schema(db, &e) == -1 ||
	    db_exec(db, db_kind(db) == DB_PG ? store_triggers_pg :
	    store_triggers, &e) == -1 || db_commit(db) == -1) {
		db_rollback(db);
		xasprintf(err, "%s: cannot set up the store: %s",
		    db_redact(dbpath),
		    e ? e : "database error");
		free(e);
		goto fail;
	}
	if (recover && s->dir != NULL && store_recover(s, db) == -1) {
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
	/* This thread's connection; other threads close theirs on exit. */
	db_thread_close();
	store_pool_destroy(s);
	if (s->dirfd != -1)
		close(s->dirfd);
	store_group_destroy(s);
	free(s->dbpath);
	free(s->dir);
	free(s);
}

void
store_recovered(struct store *s, int *files, int *rows)
{
	*files = s->rec_files;
	*rows = s->rec_rows;
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
	};
	struct db *db;
	struct db_stmt *st;
	int64_t v;

	memset(t, 0, sizeof(*t));
	for (size_t i = 0; i < sizeof(q) / sizeof(q[0]); i++) {
		if ((v = store_scalar(s, q[i].sql, NULL)) == -1)
			return -1;
		*(int64_t *)((char *)t + q[i].off) = v;
	}
	if ((db = store_db(s)) == NULL || (st = db_prepare(db, "SELECT "
	    "COUNT(*) FROM portal_tokens WHERE used = 0 AND expires > ?")) ==
	    NULL)
		return -1;
	v = db_bind(st, "i", (int64_t)time(NULL)) == 0 ? db_step(st) : -1;
	t->tokens_live = v == DB_ROW ? db_col_int(st, 0) : 0;
	db_finalize(st);
	return v == DB_ROW ? 0 : -1;
}

int64_t
store_generation(void)
{
	uint64_t g;

	if (RAND_bytes((unsigned char *)&g, sizeof(g)) != 1)
		fatalx("store: RAND_bytes failed");
	/* Positive and never 0 (the column's "not set"). */
	return (int64_t)(g >> 1) | 1;
}

int
store_available(struct store *s)
{
	return store_db(s) != NULL;
}

