/*
 * The node's one SQLite database file (config key `database`). Every
 * module creates its own tables with CREATE TABLE IF NOT EXISTS on the
 * handle it is given; every thread opens its own connection. Statements
 * that carry data go through sqlite3_prepare_v2 and bound parameters only:
 * db_exec is for fixed schema and pragma text.
 */
#ifndef POSTERN_DB_H
#define POSTERN_DB_H

struct sqlite3;

/*
 * Opens (creating it mode 0600 when missing) the database at path in WAL
 * mode with synchronous=FULL, a 5 s busy timeout and foreign keys on.
 * NULL with *err set (caller frees) on failure.
 */
struct sqlite3	*db_open(const char *path, char **err);
/* Runs fixed SQL text (no peer data); -1 with *err set (caller frees). */
int		 db_exec(struct sqlite3 *, const char *sql, char **err);
void		 db_close(struct sqlite3 *);

#endif
