/* The node's SQLite database: open with the durability settings; see db.h. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "db.h"
#include "log.h"
#include "xmalloc.h"

#define DB_BUSY_TIMEOUT_MS	5000
#define DB_CACHE_MAX		32	/* compiled statements kept per thread */

static struct sqlite3 *db_open_flags(const char *, int, char **);

struct sqlite3 *
db_open(const char *path, char **err)
{
	return db_open_flags(path, SQLITE_OPEN_FULLMUTEX, err);
}

/* mutex: SQLITE_OPEN_FULLMUTEX, or NOMUTEX for a thread's own. */
static struct sqlite3 *
db_open_flags(const char *path, int mutex, char **err)
{
	static const char *const pragmas[] = {
		"PRAGMA journal_mode=WAL",
		"PRAGMA synchronous=FULL",
		"PRAGMA foreign_keys=ON",
	};
	sqlite3 *db = NULL;
	size_t i;
	int fd, rc;

	*err = NULL;
	if (path == NULL || *path == '\0') {
		*err = xstrdup("no database path configured");
		return NULL;
	}
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

	rc = sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | mutex, NULL);
	if (rc != SQLITE_OK) {
		xasprintf(err, "%s: %s", path, db ? sqlite3_errmsg(db) :
		    sqlite3_errstr(rc));
		sqlite3_close(db);
		return NULL;
	}
	sqlite3_busy_timeout(db, DB_BUSY_TIMEOUT_MS);
	for (i = 0; i < sizeof(pragmas) / sizeof(pragmas[0]); i++) {
		char *e = NULL;

		if (db_exec(db, pragmas[i], &e) == -1) {
			xasprintf(err, "%s: %s", path, e);
			free(e);
			sqlite3_close(db);
			return NULL;
		}
	}
	return db;
}

int
db_exec(struct sqlite3 *db, const char *sql, char **err)
{
	char *msg = NULL;

	*err = NULL;
	if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
		*err = xstrdup(msg ? msg : sqlite3_errmsg(db));
		sqlite3_free(msg);
		return -1;
	}
	return 0;
}

void
db_close(struct sqlite3 *db)
{
	if (db != NULL)
		sqlite3_close_v2(db);
}

/*
 * A statement of db_prepare_cached(), kept compiled on the thread's
 * connection. Found by the address of its SQL text and checked against
 * the text itself (a freed string's address may hold other SQL later).
 */
struct db_cached {
	const char	*sql;
	sqlite3_stmt	*st;
	int		 busy;		/* handed out, not yet finalized */
	uint64_t	 used;		/* for replacing the oldest */
};

struct db_tls {
	char		*path;
	sqlite3		*db;
	struct db_cached cache[DB_CACHE_MAX];
	int		 ncache;
	uint64_t	 tick;
};

static void
db_cache_clear(struct db_tls *t)
{
	for (int i = 0; i < t->ncache; i++)
		sqlite3_finalize(t->cache[i].st);
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

struct sqlite3 *
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
	if (t->db != NULL && strcmp(t->path, path) == 0)
		return t->db;
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

struct sqlite3_stmt *
db_prepare(struct sqlite3 *db, const char *sql)
{
	sqlite3_stmt *st = NULL;

	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
		log_warnx("database: prepare: %s", sqlite3_errmsg(db));
		sqlite3_finalize(st);
		return NULL;
	}
	return st;
}

static int
db_vbind(sqlite3_stmt *st, const char *fmt, va_list ap)
{
	const char *s;
	const void *p;
	size_t n;
	int i, rc = SQLITE_OK;

	for (i = 1; fmt != NULL && *fmt != '\0' && rc == SQLITE_OK; fmt++, i++) {
		switch (*fmt) {
		case 't':
			s = va_arg(ap, const char *);
			rc = s == NULL ? sqlite3_bind_null(st, i) :
			    sqlite3_bind_text(st, i, s, -1, SQLITE_TRANSIENT);
			break;
		case 'i':
			rc = sqlite3_bind_int64(st, i, va_arg(ap, int64_t));
			break;
		case 'b':
			p = va_arg(ap, const void *);
			n = va_arg(ap, size_t);
			rc = sqlite3_bind_blob64(st, i, p, n, SQLITE_TRANSIENT);
			break;
		case 'n':
			rc = sqlite3_bind_null(st, i);
			break;
		default:
			fatalx("db_bind: bad format letter '%c'", *fmt);
		}
	}
	if (rc != SQLITE_OK) {
		log_warnx("database: bind %d: %s", i - 1,
		    sqlite3_errmsg(sqlite3_db_handle(st)));
		return -1;
	}
	return 0;
}

int
db_bind(struct sqlite3_stmt *st, const char *fmt, ...)
{
	va_list ap;
	int rc;

	va_start(ap, fmt);
	rc = db_vbind(st, fmt, ap);
	va_end(ap);
	return rc;
}

int
db_step(struct sqlite3_stmt *st)
{
	switch (sqlite3_step(st)) {
	case SQLITE_ROW:
		return DB_ROW;
	case SQLITE_DONE:
		return DB_DONE;
	default:
		log_warnx("database: %s", sqlite3_errmsg(sqlite3_db_handle(st)));
		return -1;
	}
}

struct sqlite3_stmt *
db_prepare_cached(struct sqlite3 *db, const char *sql)
{
	struct db_tls *t;
	struct db_cached *c, *old = NULL;
	sqlite3_stmt *st;

	pthread_once(&db_tls_once, db_tls_init);
	if ((t = pthread_getspecific(db_tls_key)) == NULL || t->db != db)
		return db_prepare(db, sql);
	for (int i = 0; i < t->ncache; i++) {
		c = &t->cache[i];
		if (c->sql == sql && !c->busy &&
		    strcmp(sqlite3_sql(c->st), sql) == 0) {
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
	else if ((c = old) != NULL)
		sqlite3_finalize(c->st);
	else
		return st;	/* all in use: an ordinary statement */
	c->sql = sql;
	c->st = st;
	c->busy = 1;
	c->used = ++t->tick;
	return st;
}

void
db_finalize(struct sqlite3_stmt *st)
{
	struct db_tls *t;

	if (st == NULL)
		return;
	pthread_once(&db_tls_once, db_tls_init);
	if ((t = pthread_getspecific(db_tls_key)) != NULL)
		for (int i = 0; i < t->ncache; i++)
			if (t->cache[i].st == st && t->cache[i].busy) {
				/* Ends its read transaction; kept compiled. */
				sqlite3_reset(st);
				sqlite3_clear_bindings(st);
				t->cache[i].busy = 0;
				return;
			}
	sqlite3_finalize(st);
}

int
db_run(struct sqlite3 *db, const char *sql, const char *fmt, ...)
{
	sqlite3_stmt *st;
	va_list ap;
	int rc;

	if ((st = db_prepare(db, sql)) == NULL)
		return -1;
	va_start(ap, fmt);
	rc = db_vbind(st, fmt, ap);
	va_end(ap);
	if (rc == 0) {
		while ((rc = db_step(st)) == DB_ROW)
			;
		if (rc == DB_DONE)
			rc = sqlite3_changes(db);
	}
	sqlite3_finalize(st);
	return rc;
}

static int
db_txn(struct sqlite3 *db, const char *sql)
{
	char *err = NULL;

	if (db_exec(db, sql, &err) == -1) {
		log_warnx("database: %s: %s", sql, err);
		free(err);
		return -1;
	}
	return 0;
}

int
db_begin(struct sqlite3 *db)
{
	return db_txn(db, "BEGIN IMMEDIATE");
}

int
db_commit(struct sqlite3 *db)
{
	return db_txn(db, "COMMIT");
}

void
db_rollback(struct sqlite3 *db)
{
	if (sqlite3_get_autocommit(db) == 0)
		(void)db_txn(db, "ROLLBACK");
}
