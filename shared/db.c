/*
 * The node's database, SQLite or PostgreSQL behind one interface; see
 * db.h. This file holds the common part and SQLite; db_pg.c PostgreSQL.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "db_int.h"
#include "log.h"
#include "xmalloc.h"

#define DB_BUSY_TIMEOUT_MS	5000
#define DB_CACHE_MAX		32	/* compiled statements kept per thread */

static struct db *db_open_flags(const char *, int, char **);

int
db_is_url(const char *s)
{
	return s != NULL && (strncmp(s, "postgresql://", 13) == 0 ||
	    strncmp(s, "postgres://", 11) == 0);
}

struct db *
db_open(const char *path, char **err)
{
	return db_open_flags(path, SQLITE_OPEN_FULLMUTEX, err);
}

/* mutex: SQLITE_OPEN_FULLMUTEX, or NOMUTEX for a thread's own. */
static struct db *
db_open_flags(const char *path, int mutex, char **err)
{
	static const char *const pragmas[] = {
		"PRAGMA journal_mode=WAL",
		"PRAGMA synchronous=FULL",
		"PRAGMA foreign_keys=ON",
	};
	struct db *d;
	sqlite3 *lite = NULL;
	size_t i;
	int fd, rc;

	*err = NULL;
	if (path == NULL || *path == '\0') {
		*err = xstrdup("no database configured");
		return NULL;
	}
	if (db_is_url(path))
		return db_pg_open(path, err);
	/*
	 * Create the file ourselves so it is 0600 whatever the umask; SQLite
	 * gives the -wal and -shm files the mode of the database. Only when
	 * it is missing: closing any descriptor of an existing database drops
	 * the POSIX locks of every other connection in this process (see
	 * "How To Corrupt An SQLite Database File", 2.2).
	 */
	if (access(path, F_OK) == -1) {
		if ((fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC,
		    0600)) == -1 && errno != EEXIST) {
			xasprintf(err, "%s: %s", path, strerror(errno));
			return NULL;
		}
		if (fd != -1)
			close(fd);
	}

	rc = sqlite3_open_v2(path, &lite, SQLITE_OPEN_READWRITE | mutex, NULL);
	if (rc != SQLITE_OK) {
		xasprintf(err, "%s: %s", path, lite ? sqlite3_errmsg(lite) :
		    sqlite3_errstr(rc));
		sqlite3_close(lite);
		return NULL;
	}
	sqlite3_busy_timeout(lite, DB_BUSY_TIMEOUT_MS);
	d = xcalloc(1, sizeof(*d));
	d->kind = DB_SQLITE;
	d->lite = lite;
	for (i = 0; i < sizeof(pragmas) / sizeof(pragmas[0]); i++) {
		char *e = NULL;

		if (db_exec(d, pragmas[i], &e) == -1) {
			xasprintf(err, "%s: %s", path, e);
			free(e);
			db_close(d);
			return NULL;
		}
	}
	return d;
}

int
db_exec(struct db *db, const char *sql, char **err)
{
	char *msg = NULL;

	*err = NULL;
	if (db->kind == DB_PG)
		return db_pg_exec(db, sql, err);
	if (sqlite3_exec(db->lite, sql, NULL, NULL, &msg) != SQLITE_OK) {
		*err = xstrdup(msg ? msg : sqlite3_errmsg(db->lite));
		sqlite3_free(msg);
		return -1;
	}
	return 0;
}

void
db_close(struct db *db)
{
	if (db == NULL)
		return;
	if (db->kind == DB_PG)
		db_pg_close(db);
	else
		sqlite3_close_v2(db->lite);
	free(db->err);
	free(db);
}

enum db_kind
db_kind(struct db *db)
{
	return db->kind;
}

const char *
db_errmsg(struct db *db)
{
	if (db->kind == DB_PG)
		return db->err ? db->err : "no error";
	return sqlite3_errmsg(db->lite);
}

struct sqlite3 *
db_sqlite(struct db *db)
{
	return db->kind == DB_SQLITE ? db->lite : NULL;
}

/*
 * A statement of db_prepare_cached(), kept compiled on the thread's
 * connection. Found by the address of its SQL text and checked against
 * the text itself (a freed string's address may hold other SQL later).
 */
struct db_cached {
	const char	*sql;
	char		*copy;
	struct db_stmt	*st;
	int		 busy;		/* handed out, not yet finalized */
	uint64_t	 used;		/* for replacing the oldest */
};

struct db_tls {
	char		*path;
	struct db	*db;
	struct db_cached cache[DB_CACHE_MAX];
	int		 ncache;
	uint64_t	 tick;
};

static void	db_stmt_free(struct db_stmt *);

static void
db_cache_clear(struct db_tls *t)
{
	for (int i = 0; i < t->ncache; i++) {
		db_stmt_free(t->cache[i].st);
		free(t->cache[i].copy);
	}
	memset(t->cache, 0, sizeof(t->cache));
	t->ncache = 0;
}

static pthread_key_t	db_tls_key;
static pthread_once_t	db_tls_once = PTHREAD_ONCE_INIT;

static void
db_tls_free(void *arg)
{
	struct db_tls *t = arg;

	db_cache_clear(t);
	db_close(t->db);
	free(t->path);
	free(t);
}

static void
db_tls_init(void)
{
	if (pthread_key_create(&db_tls_key, db_tls_free) != 0)
		fatalx("db: pthread_key_create");
}

struct db *
db_thread(const char *path)
{
	struct db_tls *t;
	char *err = NULL;

	pthread_once(&db_tls_once, db_tls_init);
	if ((t = pthread_getspecific(db_tls_key)) == NULL) {
		t = xcalloc(1, sizeof(*t));
		if (pthread_setspecific(db_tls_key, t) != 0)
			fatalx("db: pthread_setspecific");
	}
	if (t->db != NULL && strcmp(t->path, path) == 0) {
		/*
		 * A PostgreSQL connection that broke is reset in place (the
		 * same struct db, so holders of the pointer keep it): a
		 * restarted server or a failover is survived without a
		 * restart of ours.
		 */
		if (t->db->kind == DB_PG && !db_pg_ok(t->db))
			return NULL;
		return t->db;
	}
	db_cache_clear(t);
	db_close(t->db);
	free(t->path);
	t->db = NULL;
	t->path = NULL;
	/*
	 * Used by this thread alone, its statements too: no lock around
	 * every SQLite call (a page reads hundreds of columns).
	 */
	if ((t->db = db_open_flags(path, SQLITE_OPEN_NOMUTEX, &err)) ==
	    NULL) {
		log_warnx("database: %s", err);
		free(err);
		return NULL;
	}
	t->path = xstrdup(path);
	return t->db;
}

void
db_thread_close(void)
{
	struct db_tls *t;

	pthread_once(&db_tls_once, db_tls_init);
	if ((t = pthread_getspecific(db_tls_key)) == NULL)
		return;
	db_cache_clear(t);
	db_close(t->db);
	free(t->path);
	t->db = NULL;
	t->path = NULL;
}

struct db_stmt *
db_prepare(struct db *db, const char *sql)
{
	struct db_stmt *st;
	sqlite3_stmt *lite = NULL;

	if (db->kind == DB_PG)
		return db_pg_prepare(db, sql);
	if (sqlite3_prepare_v2(db->lite, sql, -1, &lite, NULL) != SQLITE_OK) {
		log_warnx("database: prepare: %s", sqlite3_errmsg(db->lite));
		sqlite3_finalize(lite);
		return NULL;
	}
	st = xcalloc(1, sizeof(*st));
	st->db = db;
	st->kind = DB_SQLITE;
	st->lite = (struct sqlite3_stmt *)lite;
	return st;
}

static void
db_stmt_free(struct db_stmt *st)
{
	if (st == NULL)
		return;
	if (st->kind == DB_PG) {
		db_pg_free(st);
		return;
	}
	sqlite3_finalize((sqlite3_stmt *)st->lite);
	free(st);
}

static int
db_vbind(struct db_stmt *st, const char *fmt, va_list ap)
{
	sqlite3_stmt *ls = (sqlite3_stmt *)st->lite;
	const char *s;
	const void *p;
	size_t n;
	int i, rc = SQLITE_OK;

	if (st->kind == DB_PG)
		return db_pg_vbind(st, fmt, ap);
	for (i = 1; fmt != NULL && *fmt != '\0' && rc == SQLITE_OK; fmt++, i++) {
		switch (*fmt) {
		case 't':
			s = va_arg(ap, const char *);
			rc = s == NULL ? sqlite3_bind_null(ls, i) :
			    sqlite3_bind_text(ls, i, s, -1, SQLITE_TRANSIENT);
			break;
		case 'i':
			rc = sqlite3_bind_int64(ls, i, va_arg(ap, int64_t));
			break;
		case 'b':
			p = va_arg(ap, const void *);
			n = va_arg(ap, size_t);
			rc = sqlite3_bind_blob64(ls, i, p, n, SQLITE_TRANSIENT);
			break;
		case 'n':
			rc = sqlite3_bind_null(ls, i);
			break;
		default:
			fatalx("db_bind: bad format letter '%c'", *fmt);
		}
	}
	if (rc != SQLITE_OK) {
		log_warnx("database: bind %d: %s", i - 1,
		    sqlite3_errmsg(st->db->lite));
		return -1;
	}
	return 0;
}

int
db_bind(struct db_stmt *st, const char *fmt, ...)
{
	va_list ap;
	int rc;

	va_start(ap, fmt);
	rc = db_vbind(st, fmt, ap);
	va_end(ap);
	return rc;
}

int
db_step(struct db_stmt *st)
{
	if (st->kind == DB_PG)
		return db_pg_step(st);
	switch (sqlite3_step((sqlite3_stmt *)st->lite)) {
	case SQLITE_ROW:
		return DB_ROW;
	case SQLITE_DONE:
		return DB_DONE;
	default:
		log_warnx("database: %s", sqlite3_errmsg(st->db->lite));
		return -1;
	}
}

void
db_reset(struct db_stmt *st)
{
	if (st == NULL)
		return;
	if (st->kind == DB_PG)
		db_pg_reset(st);
	else
		sqlite3_reset((sqlite3_stmt *)st->lite);
}

const char *
db_col_text(struct db_stmt *st, int i)
{
	if (st->kind == DB_PG)
		return db_pg_text(st, i);
	return (const char *)sqlite3_column_text((sqlite3_stmt *)st->lite, i);
}

int64_t
db_col_int(struct db_stmt *st, int i)
{
	const char *v;

	if (st->kind == DB_SQLITE)
		return sqlite3_column_int64((sqlite3_stmt *)st->lite, i);
	if ((v = db_pg_text(st, i)) == NULL)
		return 0;
	if (*v == 't')		/* a boolean */
		return 1;
	return strtoll(v, NULL, 10);
}

const void *
db_col_blob(struct db_stmt *st, int i)
{
	int n;

	if (st->kind == DB_PG)
		return db_pg_blob(st, i, &n);
	return sqlite3_column_blob((sqlite3_stmt *)st->lite, i);
}

int
db_col_bytes(struct db_stmt *st, int i)
{
	int n = 0;

	if (st->kind == DB_PG) {
		(void)db_pg_blob(st, i, &n);
		return n;
	}
	return sqlite3_column_bytes((sqlite3_stmt *)st->lite, i);
}

int
db_col_null(struct db_stmt *st, int i)
{
	if (st->kind == DB_PG)
		return db_pg_null(st, i);
	return sqlite3_column_type((sqlite3_stmt *)st->lite, i) ==
	    SQLITE_NULL;
}

struct db_stmt *
db_prepare_cached(struct db *db, const char *sql)
{
	struct db_tls *t;
	struct db_cached *c, *old = NULL;
	struct db_stmt *st;

	pthread_once(&db_tls_once, db_tls_init);
	if ((t = pthread_getspecific(db_tls_key)) == NULL || t->db != db)
		return db_prepare(db, sql);
	for (int i = 0; i < t->ncache; i++) {
		c = &t->cache[i];
		if (c->sql == sql && !c->busy && strcmp(c->copy, sql) == 0) {
			c->busy = 1;
			c->used = ++t->tick;
			return c->st;
		}
		if (!c->busy && (old == NULL || c->used < old->used))
			old = c;
	}
	if ((st = db_prepare(db, sql)) == NULL)
		return NULL;
	if (t->ncache < DB_CACHE_MAX)
		c = &t->cache[t->ncache++];
	else if ((c = old) != NULL) {
		if (c->st->kind == DB_PG)
			db_pg_forget(c->st);
		db_stmt_free(c->st);
		free(c->copy);
	} else
		return st;	/* all in use: an ordinary statement */
	c->sql = sql;
	c->copy = xstrdup(sql);
	c->st = st;
	c->busy = 1;
	c->used = ++t->tick;
	return st;
}

void
db_finalize(struct db_stmt *st)
{
	struct db_tls *t;

	if (st == NULL)
		return;
	pthread_once(&db_tls_once, db_tls_init);
	if ((t = pthread_getspecific(db_tls_key)) != NULL)
		for (int i = 0; i < t->ncache; i++)
			if (t->cache[i].st == st && t->cache[i].busy) {
				/* Ends its read transaction; kept compiled. */
				db_reset(st);
				if (st->kind == DB_SQLITE)
					sqlite3_clear_bindings(
					    (sqlite3_stmt *)st->lite);
				t->cache[i].busy = 0;
				return;
			}
	db_stmt_free(st);
}

int
db_run(struct db *db, const char *sql, const char *fmt, ...)
{
	struct db_stmt *st;
	va_list ap;
	int rc;

	if ((st = db_prepare_cached(db, sql)) == NULL)
		return -1;
	va_start(ap, fmt);
	rc = db_vbind(st, fmt, ap);
	va_end(ap);
	if (rc == 0) {
		while ((rc = db_step(st)) == DB_ROW)
			;
		if (rc == DB_DONE)
			rc = db->kind == DB_PG ? db->changes :
			    sqlite3_changes(db->lite);
	}
	db_finalize(st);
	return rc;
}

static int
db_txn(struct db *db, const char *sql)
{
	char *err = NULL;

	if (db_exec(db, sql, &err) == -1) {
		log_warnx("database: %s: %s", sql, err);
		free(err);
		return -1;
	}
	return 0;
}

/* The advisory lock key of write transactions (two int4: class, key). */
#define DB_LOCK_WRITE	"1, 0"

int
db_begin(struct db *db)
{
	if (db->kind == DB_SQLITE)
		return db_txn(db, "BEGIN IMMEDIATE");
	/* One round trip for both. */
	if (db_txn(db, "BEGIN; SELECT pg_advisory_xact_lock(" DB_LOCK_WRITE
	    ")") == -1) {
		db_rollback(db);
		return -1;
	}
	db->intxn = 1;
	return 0;
}

int
db_commit(struct db *db)
{
	int rc = db_txn(db, "COMMIT");

	if (db->kind == DB_PG && rc == 0)
		db->intxn = 0;
	return rc;
}

void
db_rollback(struct db *db)
{
	if (db->kind == DB_PG) {
		if (db_pg_intxn(db))
			(void)db_txn(db, "ROLLBACK");
		db->intxn = 0;
	} else if (sqlite3_get_autocommit(db->lite) == 0)
		(void)db_txn(db, "ROLLBACK");
}

int64_t
db_data_version(struct db *db)
{
	struct db_stmt *st;
	int64_t v = -1;

	st = db_prepare_cached(db, db->kind == DB_SQLITE ?
	    "PRAGMA data_version" : "SELECT n FROM postern_changes");
	if (st == NULL)
		return -1;
	if (db_step(st) == DB_ROW)
		v = db_col_int(st, 0);
	db_finalize(st);
	return v;
}

int
db_try_lock(struct db *db, int64_t key)
{
	struct db_stmt *st;
	int rc = -1;

	if (db->kind == DB_SQLITE)
		return 1;
	if ((st = db_prepare(db, "SELECT pg_try_advisory_lock(2, "
	    "CAST(? AS integer))")) == NULL)
		return -1;
	if (db_bind(st, "i", key) == 0 && db_step(st) == DB_ROW)
		rc = db_col_int(st, 0) ? 1 : 0;
	db_finalize(st);
	return rc;
}

void
db_unlock(struct db *db, int64_t key)
{
	if (db->kind == DB_PG)
		(void)db_run(db, "SELECT pg_advisory_unlock(2, CAST(? AS "
		    "integer))", "i", key);
}

static int64_t
db_schema_version(struct db *db, const char *component)
{
	struct db_stmt *st;
	int64_t v = -1;
	int rc;

	if ((st = db_prepare(db, "SELECT version FROM postern_schema WHERE "
	    "component = ?")) == NULL)
		return -1;
	if (db_bind(st, "t", component) == 0) {
		if ((rc = db_step(st)) == DB_ROW)
			v = db_col_int(st, 0);
		else if (rc == DB_DONE)
			v = 0;
	}
	db_finalize(st);
	return v;
}

int
db_migrate(struct db *db, const char *component, const char *const *steps,
    int n, char **err)
{
	int64_t v;
	char *e = NULL;

	*err = NULL;
	for (;;) {
		/*
		 * Under the write lock, table creation included (two nodes
		 * starting on a fresh PostgreSQL database would otherwise
		 * race in CREATE TABLE IF NOT EXISTS), and read again in the
		 * transaction: another node may migrate.
		 */
		if (db_begin(db) == -1 || db_exec(db, "CREATE TABLE IF NOT "
		    "EXISTS postern_schema (component TEXT PRIMARY KEY, "
		    "version INTEGER NOT NULL)", &e) == -1 ||
		    (v = db_schema_version(db, component)) == -1) {
			free(e);
			e = NULL;
			db_rollback(db);
			xasprintf(err, "%s schema version: %s", component,
			    db_errmsg(db));
			return -1;
		}
		if (v > n) {
			db_rollback(db);
			xasprintf(err, "the database holds version %lld of the "
			    "%s schema; this build knows up to %d: refusing to "
			    "run on it (install the newer release)",
			    (long long)v, component, n);
			return -1;
		}
		if (v == n) {
			db_rollback(db);
			return 0;
		}
		if (db_exec(db, steps[v], &e) == -1 ||
		    db_run(db, "INSERT INTO postern_schema (component, version)"
		    " VALUES (?, ?) ON CONFLICT (component) DO UPDATE SET "
		    "version = excluded.version", "ti", component, v + 1) ==
		    -1 || db_commit(db) == -1) {
			xasprintf(err, "%s schema, step to version %lld: %s",
			    component, (long long)v + 1, e ? e :
			    db_errmsg(db));
			free(e);
			db_rollback(db);
			return -1;
		}
	}
}

int
db_has_column(struct db *db, const char *table, const char *column)
{
	struct db_stmt *st;
	int rc = -1;

	if ((st = db_prepare(db, db->kind == DB_SQLITE ?
	    "SELECT 1 FROM pragma_table_info(?) WHERE name = ?" :
	    "SELECT 1 FROM information_schema.columns WHERE table_schema = "
	    "current_schema() AND table_name = ? AND column_name = ?")) ==
	    NULL)
		return -1;
	if (db_bind(st, "tt", table, column) == 0)
		rc = db_step(st);
	db_finalize(st);
	return rc;
}

const char *
db_redact(const char *path)
{
	static __thread char buf[1024];
	const char *p, *at, *colon, *q;
	size_t n;

	snprintf(buf, sizeof(buf), "%s", path ? path : "");
	if (!db_is_url(buf))
		return buf;
	/* scheme://user:password@host... */
	p = strstr(buf, "://") + 3;
	at = strchr(p, '@');
	colon = strchr(p, ':');
	if (at != NULL && colon != NULL && colon < at) {
		n = (size_t)(colon - buf) + 1;
		snprintf(buf + n, sizeof(buf) - n, "****%s",
		    path + (at - buf));
	}
	/* ...?password=secret&... */
	if ((q = strstr(buf, "password=")) != NULL) {
		char rest[1024];
		const char *amp = strchr(q, '&');

		snprintf(rest, sizeof(rest), "%s", amp ? amp : "");
		n = (size_t)(q - buf) + 9;
		snprintf(buf + n, sizeof(buf) - n, "****%s", rest);
	}
	return buf;
}
