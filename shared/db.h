/*
 * The node's database (config key `database`): an SQLite file, the
 * embedded default, or a PostgreSQL server when the value is a libpq
 * connection URI ("postgresql://..." or "postgres://..."). One interface
 * for both: callers write SQL that both engines run (bound parameters as
 * `?`, `INSERT ... ON CONFLICT`, `RETURNING`, no engine functions) and
 * ask db_kind() for the few statements that must differ (triggers, row
 * locking). db_exec() translates fixed schema text (INTEGER, BLOB,
 * AUTOINCREMENT, PRAGMA) for PostgreSQL.
 *
 * Connection policy: a connection belongs to one thread. Long-lived
 * threads (SMTP workers, the outbox, the web pool) take theirs with
 * db_thread(), which opens it on first use and keeps it for the life of
 * the thread (never hand it, or a statement of it, to another thread);
 * short-lived tools (postern-cli, start-up checks) use db_open() and
 * db_close(). Nobody opens a connection per message. A PostgreSQL
 * connection that broke (server restarted, failover) is reopened by the
 * next db_thread() call; until then every call fails and callers answer
 * 4xx or 503.
 *
 * Write transactions (db_begin) are serialised: SQLite's BEGIN IMMEDIATE,
 * on PostgreSQL one transaction-scoped advisory lock taken at BEGIN. So
 * a read-check-write inside a transaction (quota, single-use tokens) is
 * correct on both engines and across several nodes sharing one server.
 *
 * Data reaches SQL only as bound parameters, through db_prepare(),
 * db_bind() and db_step(), or db_run() for a statement that returns no
 * rows. db_exec() is for fixed schema and pragma text. Every error is
 * logged here with the database's message; callers only turn -1 into
 * their own failure (4xx, HTTP 500).
 */
#ifndef POSTERN_DB_H
#define POSTERN_DB_H

#include <stddef.h>
#include <stdint.h>

struct db;
struct db_stmt;

enum db_kind { DB_SQLITE, DB_PG };

/*
 * The config value for messages: a password in a PostgreSQL URI is
 * replaced by ****. A buffer of the calling thread, valid until its next
 * call.
 */
const char	*db_redact(const char *path);
/* 1 when the config value names a PostgreSQL server. */
int		 db_is_url(const char *);

/*
 * Opens the database: an SQLite file (created mode 0600 when missing) in
 * WAL mode with synchronous=FULL, a 5 s busy timeout and foreign keys on;
 * or a PostgreSQL connection. NULL with *err set (caller frees).
 */
struct db	*db_open(const char *path, char **err);
/* Runs fixed SQL text (no peer data); -1 with *err set (caller frees). */
int		 db_exec(struct db *, const char *sql, char **err);
void		 db_close(struct db *);
enum db_kind	 db_kind(struct db *);
/* The last error of the connection, for messages. */
const char	*db_errmsg(struct db *);
/* The SQLite handle (SQLite only; NULL on PostgreSQL), for PRAGMAs. */
struct sqlite3	*db_sqlite(struct db *);

/*
 * This thread's connection to path, opened on first use and closed when
 * the thread exits. A call with another path closes the old connection
 * first (unit tests use several databases from one thread). NULL, logged,
 * when the database cannot be opened; the next call tries again.
 */
struct db	*db_thread(const char *path);
/* Closes this thread's connection now, if it has one (before fork()). */
void		 db_thread_close(void);

/* NULL (logged) when the statement does not compile. */
struct db_stmt	*db_prepare(struct db *, const char *sql);
/*
 * As db_prepare(), for fixed SQL text run often on the connection of
 * db_thread(): the statement stays compiled on this thread, and
 * db_finalize() resets it (ending its read) and clears its bindings
 * instead of freeing it. Any other connection gets db_prepare().
 */
struct db_stmt	*db_prepare_cached(struct db *, const char *sql);
/*
 * Binds parameters 1..n in order, one letter of fmt each:
 *   t  const char *        text; NULL binds SQL NULL
 *   i  int64_t             integer
 *   b  const void *, size_t blob
 *   n  (no argument)       SQL NULL
 * 0, or -1 (logged).
 */
int		 db_bind(struct db_stmt *, const char *fmt, ...);
#define DB_ROW	1
#define DB_DONE	0
/* DB_ROW, DB_DONE, or -1 (logged; SQLITE_BUSY past the timeout too). */
int		 db_step(struct db_stmt *);
/* Ends the statement's run so it can be stepped again (bindings kept). */
void		 db_reset(struct db_stmt *);
/* Frees a statement, or gives a db_prepare_cached() one back. */
void		 db_finalize(struct db_stmt *);

/*
 * Columns of the current row, numbered from 0. Text is NULL for SQL NULL
 * and valid until the next step, reset or finalize; so is a blob.
 */
const char	*db_col_text(struct db_stmt *, int);
int64_t		 db_col_int(struct db_stmt *, int);
const void	*db_col_blob(struct db_stmt *, int);
int		 db_col_bytes(struct db_stmt *, int);
int		 db_col_null(struct db_stmt *, int);

/*
 * Prepare, bind (as db_bind), step to completion and finalize a statement
 * that returns no rows; on the connection of db_thread() the statement
 * stays compiled, as with db_prepare_cached(). The number of changed
 * rows, or -1 (logged).
 */
int		 db_run(struct db *, const char *sql, const char *fmt, ...);

/* Serialised write transaction (see above) / COMMIT / ROLLBACK. */
int		 db_begin(struct db *);
int		 db_commit(struct db *);
void		 db_rollback(struct db *);

/*
 * A number that moves whenever the database may have changed since the
 * last call (any writer, any node). SQLite: PRAGMA data_version of this
 * connection; PostgreSQL: the counter of table postern_changes, which
 * triggers on the tables a cache depends on bump. -1 on failure.
 */
int64_t		 db_data_version(struct db *);

/*
 * An advisory lock for work one node at a time does (retention,
 * cleanup), held by the connection until db_unlock (or until the
 * connection ends): 1 when taken, 0 when another node holds it, -1 on
 * failure. SQLite: always 1 (one node).
 */
#define DB_LOCK_RETENTION	1
int		 db_try_lock(struct db *, int64_t key);
void		 db_unlock(struct db *, int64_t key);

/* 1 when table has the column, 0 when not, -1 on failure. */
int		 db_has_column(struct db *, const char *table,
		    const char *column);

/*
 * Versioned schema of one component (a module's tables). steps[i] is the
 * SQL text that takes the schema from version i to i + 1 (fixed text, as
 * db_exec); the versions reached are kept in table postern_schema. Runs
 * what is missing, each step in its own transaction. A database whose
 * version of the component is newer than n is refused: an older build
 * must not write a newer schema. 0, or -1 with *err set.
 */
int		 db_migrate(struct db *, const char *component,
		    const char *const *steps, int n, char **err);

#endif
