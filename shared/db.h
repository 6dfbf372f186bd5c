/*
 * The node's one SQLite database file (config key `database`).
 *
 * Connection policy: a connection belongs to one thread. Long-lived
 * threads (SMTP workers, the outbox, the web pool) take theirs with
 * db_thread(), which opens it on first use and keeps it for the life of
 * the thread (without SQLite's per-connection lock: never hand it, or a
 * statement of it, to another thread); short-lived tools (postern-cli, start-up checks) use
 * db_open()/db_close(). Nobody opens a connection per message. Modules
 * create their own tables with CREATE TABLE IF NOT EXISTS on the handle
 * they are given.
 *
 * A module object that stands for the database (the portal's store and
 * its web sessions) keeps the path, not a connection, and asks db_thread()
 * on every call: there is no module-wide mutex, concurrent writers are
 * ordered by SQLite (BEGIN IMMEDIATE, the busy timeout), and everything one
 * thread does, across modules, shares that thread's connection and so can
 * run in one transaction. A process closes its thread connections with
 * db_thread_close() before it forks and when it shuts down.
 *
 * Data reaches SQL only as bound parameters, through db_prepare(),
 * db_bind() and db_step(), or db_run() for a statement that returns no
 * rows. db_exec() is for fixed schema and pragma text. Every error is
 * logged here with the statement's database message; callers only turn
 * -1 into their own failure (4xx, HTTP 500).
 */
#ifndef POSTERN_DB_H
#define POSTERN_DB_H

#include <stddef.h>
#include <stdint.h>

struct sqlite3;
struct sqlite3_stmt;

/*
 * Opens (creating it mode 0600 when missing) the database at path in WAL
 * mode with synchronous=FULL, a 5 s busy timeout and foreign keys on.
 * NULL with *err set (caller frees) on failure.
 */
struct sqlite3	*db_open(const char *path, char **err);
/* Runs fixed SQL text (no peer data); -1 with *err set (caller frees). */
int		 db_exec(struct sqlite3 *, const char *sql, char **err);
void		 db_close(struct sqlite3 *);

/*
 * This thread's connection to path, opened on first use and closed when
 * the thread exits. A call with another path closes the old connection
 * first (unit tests use several databases from one thread). NULL, logged,
 * when the database cannot be opened; the next call tries again.
 */
struct sqlite3	*db_thread(const char *path);
/* Closes this thread's connection now, if it has one (before fork()). */
void		 db_thread_close(void);

/* NULL (logged) when the statement does not compile. */
struct sqlite3_stmt *db_prepare(struct sqlite3 *, const char *sql);
/*
 * As db_prepare(), for fixed SQL text run often on the connection of
 * db_thread(): the statement stays compiled on this thread, and
 * db_finalize() resets it (ending its read) and clears its bindings
 * instead of freeing it. Any other connection gets db_prepare().
 */
struct sqlite3_stmt *db_prepare_cached(struct sqlite3 *, const char *sql);
/*
 * Binds parameters 1..n in order, one letter of fmt each:
 *   t  const char *        text; NULL binds SQL NULL
 *   i  int64_t             integer
 *   b  const void *, size_t blob
 *   n  (no argument)       SQL NULL
 * 0, or -1 (logged).
 */
int		 db_bind(struct sqlite3_stmt *, const char *fmt, ...);
#define DB_ROW	1
#define DB_DONE	0
/* DB_ROW, DB_DONE, or -1 (logged; SQLITE_BUSY past the timeout too). */
int		 db_step(struct sqlite3_stmt *);
/* Frees a statement, or gives a db_prepare_cached() one back. */
void		 db_finalize(struct sqlite3_stmt *);
/*
 * Prepare, bind (as db_bind), step to completion and finalize a statement
 * that returns no rows. The number of changed rows, or -1 (logged).
 */
int		 db_run(struct sqlite3 *, const char *sql, const char *fmt, ...);

/* BEGIN IMMEDIATE / COMMIT / ROLLBACK; 0 or -1 (logged). */
int		 db_begin(struct sqlite3 *);
int		 db_commit(struct sqlite3 *);
void		 db_rollback(struct sqlite3 *);

#endif
