/*
 * Inside the database layer: the connection and statement of both
 * engines. db.c holds what is common and SQLite, db_pg.c PostgreSQL.
 */
#ifndef POSTERN_DB_INT_H
#define POSTERN_DB_INT_H

#include <stdarg.h>

#include "db.h"

struct sqlite3;
struct sqlite3_stmt;
struct pg_conn;
struct pg_result;

struct db {
	enum db_kind		 kind;
	struct sqlite3		*lite;
	struct pg_conn		*pg;
	char			*err;		/* PostgreSQL: last message */
	int			 changes;	/* PostgreSQL: last count */
	int			 intxn;		/* PostgreSQL: in db_begin */
	unsigned int		 resets;	/* PostgreSQL: PQreset calls */
	unsigned int		 nnamed;	/* PostgreSQL: names given */
};

struct db_stmt {
	struct db		*db;
	enum db_kind		 kind;		/* kept: may outlive db */
	struct sqlite3_stmt	*lite;
	/* PostgreSQL */
	char			*sql;		/* with $n parameters */
	int			 nparam;
	char			**val;
	int			*len;
	int			*fmt;
	unsigned int		*type;
	struct pg_result	*res;
	int			 ran, row, nrows;
	char			**dec;		/* decoded bytea per column */
	size_t			*declen;
	int			 ndec;
	/* Prepared on the server once run twice (db_pg.c). */
	unsigned int		 runs;
	char			*name;		/* NULL until prepared */
	unsigned int		 gen;		/* db->resets when prepared */
	unsigned int		*ptype;		/* types it was prepared with */
};

struct db	*db_pg_open(const char *url, char **err);
void		 db_pg_close(struct db *);
int		 db_pg_exec(struct db *, const char *sql, char **err);
int		 db_pg_ok(struct db *);
struct db_stmt	*db_pg_prepare(struct db *, const char *sql);
int		 db_pg_vbind(struct db_stmt *, const char *fmt, va_list);
int		 db_pg_step(struct db_stmt *);
void		 db_pg_reset(struct db_stmt *);
void		 db_pg_free(struct db_stmt *);
void		 db_pg_forget(struct db_stmt *);
const char	*db_pg_text(struct db_stmt *, int);
const void	*db_pg_blob(struct db_stmt *, int, int *);
int		 db_pg_null(struct db_stmt *, int);
int		 db_pg_intxn(struct db *);

#endif
