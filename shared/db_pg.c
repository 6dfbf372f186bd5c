/*
 * The database on a PostgreSQL server, through libpq; see db.h. Each
 * statement is sent with its parameters apart from its text (the
 * extended protocol, PQexecParams): peer data never becomes SQL. Results
 * come back in text form; bytea columns are decoded on demand.
 *
 * A statement run a second time (one of db_prepare_cached, or one a
 * module keeps and resets) is prepared on the server under a name of its
 * connection and from then on executed by that name, so the server
 * parses and plans it once instead of on every call (half of its time
 * per call on a short query). A PQreset (server restart, failover) loses
 * the server's prepared statements: the connection counts its resets, and
 * a statement prepared under an older count is prepared again.
 *
 * The SQL the modules write uses `?` and `?N` for parameters and SQLite's
 * schema words; both are translated here ($N; BIGINT, BYTEA, identity
 * columns), outside quoted strings and names only.
 */
#include <ctype.h>
#include <limits.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "db_int.h"
#include "log.h"
#include "xmalloc.h"

#define DB_PG_BYTEA	17
#define DB_PG_INT8	20

/* Per connection: quiet notices, bounded lock waits (as SQLite's busy
 * timeout). */
static const char db_pg_session[] =
    "SET client_min_messages = warning; SET lock_timeout = '5s'";

static void
db_pg_notice(void *arg, const char *msg)
{
	(void)arg;
	(void)msg;
}

static void
db_pg_seterr(struct db *db, const char *msg)
{
	size_t n;

	free(db->err);
	db->err = xstrdup(msg && *msg ? msg : "unknown PostgreSQL error");
	n = strlen(db->err);
	while (n > 0 && (db->err[n - 1] == '\n' || db->err[n - 1] == ' '))
		db->err[--n] = '\0';
}

static int
db_pg_setup(struct db *db)
{
	PGresult *r;
	int ok;

	PQsetNoticeProcessor((PGconn *)db->pg, db_pg_notice, NULL);
	r = PQexec((PGconn *)db->pg, db_pg_session);
	ok = PQresultStatus(r) == PGRES_COMMAND_OK;
	if (!ok)
		db_pg_seterr(db, PQresultErrorMessage(r));
	PQclear(r);
	/*
	 * One plan per prepared statement. By default the server plans a
	 * statement anew on every run while that plan's estimate beats the
	 * generic one's, as it does for the listing's key range: planning
	 * was a fifth of an inbox page. The statements are short lookups
	 * written to be indexed whatever the values (the listing as a range
	 * over its index's key). A server older than 12 lacks the setting;
	 * it keeps its own choice.
	 */
	if (ok) {
		r = PQexec((PGconn *)db->pg,
		    "SET plan_cache_mode = force_generic_plan");
		PQclear(r);
	}
	return ok ? 0 : -1;
}

struct db *
db_pg_open(const char *url, char **err)
{
	struct db *db;
	PGconn *c;

	/*
	 * Bounds of our own come first, so the URI's values win: a server
	 * that does not answer costs 10 s at most, and a dead peer of an
	 * open connection is noticed within about a minute (keepalives),
	 * so a failover is followed rather than waited out.
	 */
	static const char *const keys[] = { "connect_timeout", "keepalives",
	    "keepalives_idle", "keepalives_interval", "keepalives_count",
	    "dbname", NULL };
	const char *vals[] = { "10", "1", "30", "10", "3", url, NULL };

	*err = NULL;
	c = PQconnectdbParams(keys, vals, 1);
	if (c == NULL || PQstatus(c) != CONNECTION_OK) {
		struct db tmp = { 0 };

		db_pg_seterr(&tmp, c ? PQerrorMessage(c) : "out of memory");
		xasprintf(err, "PostgreSQL: %s", tmp.err);
		free(tmp.err);
		PQfinish(c);
		return NULL;
	}
	db = xcalloc(1, sizeof(*db));
	db->kind = DB_PG;
	db->pg = (struct pg_conn *)c;
	if (db_pg_setup(db) == -1) {
		xasprintf(err, "PostgreSQL: %s", db->err);
		db_close(db);
		return NULL;
	}
	return db;
}

void
db_pg_close(struct db *db)
{
	PQfinish((PGconn *)db->pg);
	db->pg = NULL;
}

/*
 * 1 when the connection is usable, resetting a broken one first (same
 * parameters: a multi-host URI finds the new primary). 0, logged, when
 * the server is still unreachable.
 */
int
db_pg_ok(struct db *db)
{
	PGconn *c = (PGconn *)db->pg;
	struct pollfd pfd;

	/*
	 * A server that shut down sent its reason and closed the socket,
	 * but libpq sees that only when it reads again. Bytes waiting on an
	 * idle connection are read now (two reads: the message, then the
	 * end of the stream; the socket is non-blocking), so a caller that
	 * asks before running a statement (the web's 503) learns it now.
	 */
	pfd.fd = PQsocket(c);
	pfd.events = POLLIN;
	pfd.revents = 0;
	if (PQstatus(c) == CONNECTION_OK && !db->intxn &&
	    poll(&pfd, 1, 0) == 1)
		for (int i = 0; i < 2 && PQstatus(c) == CONNECTION_OK; i++)
			(void)PQconsumeInput(c);
	if (PQstatus(c) == CONNECTION_OK)
		return 1;
	PQreset(c);
	db->resets++;		/* the server's prepared statements are gone */
	db->intxn = 0;
	if (PQstatus(c) != CONNECTION_OK) {
		db_pg_seterr(db, PQerrorMessage(c));
		log_warnx("database: PostgreSQL unreachable: %s", db->err);
		return 0;
	}
	if (db_pg_setup(db) == -1) {
		log_warnx("database: PostgreSQL: %s", db->err);
		return 0;
	}
	log_info("database: PostgreSQL connection re-established");
	return 1;
}

int
db_pg_intxn(struct db *db)
{
	return PQtransactionStatus((PGconn *)db->pg) != PQTRANS_IDLE;
}

/* Appends n bytes to a growing string. */
static void
db_pg_put(char **out, size_t *len, size_t *cap, const char *s, size_t n)
{
	if (*len + n + 1 > *cap) {
		*cap = (*len + n + 1) * 2;
		*out = xreallocarray(*out, *cap, 1);
	}
	memcpy(*out + *len, s, n);
	*len += n;
	(*out)[*len] = '\0';
}

static int
db_pg_word(const char *s, size_t i, const char *w)
{
	size_t n = strlen(w);

	return strncmp(s + i, w, n) == 0 &&
	    (i == 0 || !(isalnum((unsigned char)s[i - 1]) || s[i - 1] == '_')) &&
	    !(isalnum((unsigned char)s[i + n]) || s[i + n] == '_');
}

/*
 * The module's SQL for PostgreSQL: parameters numbered ($N; *nparam the
 * highest), SQLite's instr() as strpos() (same result: 1-based position,
 * 0 when absent), and with schema set, SQLite's schema words. Quoted strings
 * ('...'), names ("...") and dollar-quoted bodies ($$...$$) pass as they
 * are.
 */
static char *
db_pg_translate(const char *sql, int schema, int *nparam)
{
	static const struct {
		const char *from, *to;
	} words[] = {
		{ "INTEGER PRIMARY KEY AUTOINCREMENT",
		  "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY" },
		{ "INTEGER", "BIGINT" },
		{ "BLOB", "BYTEA" },
		{ "WITHOUT ROWID", "" },
	};
	char *out = NULL, num[16];
	size_t len = 0, cap = 0, i = 0, j;
	int seq = 0, hi = 0, k;
	char q;

	db_pg_put(&out, &len, &cap, "", 0);
	while (sql[i] != '\0') {
		if (sql[i] == '\'' || sql[i] == '"') {
			q = sql[i];
			for (j = i + 1; sql[j] != '\0' && sql[j] != q; j++)
				;
			if (sql[j] == q)
				j++;
			db_pg_put(&out, &len, &cap, sql + i, j - i);
			i = j;
			continue;
		}
		if (sql[i] == '$' && sql[i + 1] == '$') {
			const char *end = strstr(sql + i + 2, "$$");

			j = end ? (size_t)(end - sql) + 2 : strlen(sql);
			db_pg_put(&out, &len, &cap, sql + i, j - i);
			i = j;
			continue;
		}
		if (sql[i] == '?') {
			for (j = i + 1; isdigit((unsigned char)sql[j]); j++)
				;
			k = j > i + 1 ? atoi(sql + i + 1) : ++seq;
			if (k > hi)
				hi = k;
			snprintf(num, sizeof(num), "$%d", k);
			db_pg_put(&out, &len, &cap, num, strlen(num));
			i = j;
			continue;
		}
		if (schema && db_pg_word(sql, i, "PRAGMA")) {
			/* SQLite's settings: nothing to say here. */
			while (sql[i] != '\0' && sql[i] != ';')
				i++;
			if (sql[i] == ';')
				i++;
			continue;
		}
		if (db_pg_word(sql, i, "instr") && sql[i + 5] == '(') {
			db_pg_put(&out, &len, &cap, "strpos", 6);
			i += 5;
			continue;
		}
		if (schema) {
			for (k = 0; k < (int)(sizeof(words) / sizeof(words[0]));
			    k++)
				if (db_pg_word(sql, i, words[k].from))
					break;
			if (k < (int)(sizeof(words) / sizeof(words[0]))) {
				db_pg_put(&out, &len, &cap, words[k].to,
				    strlen(words[k].to));
				i += strlen(words[k].from);
				continue;
			}
		}
		db_pg_put(&out, &len, &cap, sql + i, 1);
		i++;
	}
	if (nparam != NULL)
		*nparam = hi;
	return out;
}

int
db_pg_exec(struct db *db, const char *sql, char **err)
{
	PGresult *r;
	char *t = db_pg_translate(sql, 1, NULL);
	int try, rc = -1;

	*err = NULL;
	for (try = 0; try < 2; try++) {
		r = PQexec((PGconn *)db->pg, t);
		if (PQresultStatus(r) == PGRES_COMMAND_OK ||
		    PQresultStatus(r) == PGRES_TUPLES_OK) {
			rc = 0;
			PQclear(r);
			break;
		}
		db_pg_seterr(db, PQresultErrorMessage(r));
		PQclear(r);
		/*
		 * A connection lost outside a transaction: reconnect and
		 * say it again, once. Inside one (or a COMMIT) the outcome
		 * is the caller's to handle.
		 */
		if (try > 0 || db->intxn ||
		    PQstatus((PGconn *)db->pg) == CONNECTION_OK ||
		    strncmp(sql, "COMMIT", 6) == 0 || !db_pg_ok(db))
			break;
	}
	if (rc == -1)
		*err = xstrdup(db->err);
	free(t);
	return rc;
}

struct db_stmt *
db_pg_prepare(struct db *db, const char *sql)
{
	struct db_stmt *st = xcalloc(1, sizeof(*st));

	st->db = db;
	st->kind = DB_PG;
	st->sql = db_pg_translate(sql, 0, &st->nparam);
	if (st->nparam > 0) {
		st->val = xcalloc(st->nparam, sizeof(*st->val));
		st->len = xcalloc(st->nparam, sizeof(*st->len));
		st->fmt = xcalloc(st->nparam, sizeof(*st->fmt));
		st->type = xcalloc(st->nparam, sizeof(*st->type));
	}
	return st;
}

static void
db_pg_clear(struct db_stmt *st)
{
	for (int i = 0; i < st->ndec; i++)
		free(st->dec[i]);
	free(st->dec);
	free(st->declen);
	st->dec = NULL;
	st->declen = NULL;
	st->ndec = 0;
}

int
db_pg_vbind(struct db_stmt *st, const char *fmt, va_list ap)
{
	const char *s;
	const void *p;
	size_t n;
	int i;

	db_pg_reset(st);
	for (i = 0; fmt != NULL && fmt[i] != '\0'; i++) {
		if (i >= st->nparam) {
			log_warnx("database: bind %d: the statement has %d "
			    "parameters", i + 1, st->nparam);
			return -1;
		}
		free(st->val[i]);
		st->val[i] = NULL;
		st->len[i] = 0;
		st->fmt[i] = 0;
		st->type[i] = 0;
		switch (fmt[i]) {
		case 't':
			if ((s = va_arg(ap, const char *)) != NULL)
				st->val[i] = xstrdup(s);
			break;
		case 'i':
			xasprintf(&st->val[i], "%lld",
			    (long long)va_arg(ap, int64_t));
			st->type[i] = DB_PG_INT8;
			break;
		case 'b':
			p = va_arg(ap, const void *);
			n = va_arg(ap, size_t);
			st->val[i] = xmalloc(n ? n : 1);
			if (n > 0)
				memcpy(st->val[i], p, n);
			st->len[i] = (int)n;
			st->fmt[i] = 1;
			st->type[i] = DB_PG_BYTEA;
			break;
		case 'n':
			break;
		default:
			fatalx("db_bind: bad format letter '%c'", fmt[i]);
		}
	}
	return 0;
}

/*
 * 1 when st is to run by its server-side name: prepared now (its second
 * run) or before on this session, with the parameter types of this
 * binding. 0 runs it unnamed: its first run, a binding of other types,
 * or a failed prepare (whose cause the unnamed run then reports).
 */
static int
db_pg_named(struct db_stmt *st)
{
	struct db *db = st->db;
	PGresult *r;
	int i, ok;

	if (st->runs < UINT_MAX)
		st->runs++;
	if (st->runs < 2)
		return 0;
	if (st->name != NULL && st->gen == db->resets) {
		for (i = 0; i < st->nparam; i++)
			if (st->val[i] != NULL && st->type[i] != st->ptype[i])
				return 0;
		return 1;
	}
	if (st->name == NULL)
		xasprintf(&st->name, "postern_%u", ++db->nnamed);
	r = PQprepare((PGconn *)db->pg, st->name, st->sql, st->nparam,
	    (const Oid *)st->type);
	ok = PQresultStatus(r) == PGRES_COMMAND_OK;
	PQclear(r);
	if (!ok) {
		free(st->name);
		st->name = NULL;
		return 0;
	}
	st->gen = db->resets;
	if (st->nparam > 0) {
		if (st->ptype == NULL)
			st->ptype = xcalloc(st->nparam, sizeof(*st->ptype));
		memcpy(st->ptype, st->type, st->nparam * sizeof(*st->ptype));
	}
	return 1;
}

static int
db_pg_run(struct db_stmt *st)
{
	struct db *db = st->db;
	PGresult *r;
	int try;

	for (try = 0; try < 2; try++) {
		if (db_pg_named(st))
			r = PQexecPrepared((PGconn *)db->pg, st->name,
			    st->nparam, (const char *const *)st->val, st->len,
			    st->fmt, 0);
		else
			r = PQexecParams((PGconn *)db->pg, st->sql,
			    st->nparam, (const Oid *)st->type,
			    (const char *const *)st->val, st->len, st->fmt, 0);
		switch (PQresultStatus(r)) {
		case PGRES_TUPLES_OK:
		case PGRES_COMMAND_OK:
			st->res = (struct pg_result *)r;
			st->nrows = PQntuples(r);
			st->row = -1;
			db->changes = atoi(PQcmdTuples(r));
			return 0;
		default:
			db_pg_seterr(db, PQresultErrorMessage(r));
			PQclear(r);
			break;
		}
		if (try > 0 || db->intxn ||
		    PQstatus((PGconn *)db->pg) == CONNECTION_OK ||
		    !db_pg_ok(db))
			break;
	}
	log_warnx("database: %s", db->err);
	return -1;
}

int
db_pg_step(struct db_stmt *st)
{
	if (!st->ran) {
		st->ran = 1;
		if (db_pg_run(st) == -1)
			return -1;
	}
	if (st->res == NULL)
		return -1;
	db_pg_clear(st);
	if (st->row < st->nrows)
		st->row++;
	return st->row < st->nrows ? DB_ROW : DB_DONE;
}

void
db_pg_reset(struct db_stmt *st)
{
	db_pg_clear(st);
	PQclear((PGresult *)st->res);
	st->res = NULL;
	st->ran = 0;
	st->row = st->nrows = 0;
}

void
db_pg_free(struct db_stmt *st)
{
	db_pg_reset(st);
	for (int i = 0; i < st->nparam; i++)
		free(st->val[i]);
	free(st->val);
	free(st->len);
	free(st->fmt);
	free(st->type);
	free(st->ptype);
	free(st->name);
	free(st->sql);
	free(st);
}

/*
 * Drops st's server-side statement, for a statement given up while its
 * connection lives on (the per-thread cache replacing its oldest). Best
 * effort: in a failed transaction the server refuses, and the name stays
 * unused until the session ends.
 */
void
db_pg_forget(struct db_stmt *st)
{
	struct db *db = st->db;
	PGresult *r;
	char *sql;

	if (st->name == NULL || st->gen != db->resets ||
	    PQstatus((PGconn *)db->pg) != CONNECTION_OK ||
	    PQtransactionStatus((PGconn *)db->pg) == PQTRANS_INERROR)
		return;
	xasprintf(&sql, "DEALLOCATE %s", st->name);
	r = PQexec((PGconn *)db->pg, sql);
	PQclear(r);
	free(sql);
}

static int
db_pg_valid(struct db_stmt *st, int i)
{
	PGresult *r = (PGresult *)st->res;

	return r != NULL && st->row >= 0 && st->row < st->nrows && i >= 0 &&
	    i < PQnfields(r);
}

int
db_pg_null(struct db_stmt *st, int i)
{
	return !db_pg_valid(st, i) ||
	    PQgetisnull((PGresult *)st->res, st->row, i);
}

static int
db_pg_hex(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* A bytea column's bytes (hex output form), decoded once per row. */
static const char *
db_pg_bytea(struct db_stmt *st, int i, int *n)
{
	PGresult *r = (PGresult *)st->res;
	const char *v;
	size_t len, k;
	char *d;
	int hi, lo;

	if (st->dec == NULL) {
		st->ndec = PQnfields(r);
		st->dec = xcalloc(st->ndec, sizeof(*st->dec));
		st->declen = xcalloc(st->ndec, sizeof(*st->declen));
	}
	if (st->dec[i] == NULL) {
		v = PQgetvalue(r, st->row, i);
		len = (size_t)PQgetlength(r, st->row, i);
		if (len < 2 || v[0] != '\\' || v[1] != 'x') {
			/* bytea_output = escape: let libpq decode it. */
			unsigned char *u = PQunescapeBytea(
			    (const unsigned char *)v, &len);

			d = xmalloc(len + 1);
			if (u != NULL)
				memcpy(d, u, len);
			else
				len = 0;
			PQfreemem(u);
		} else {
			d = xmalloc((len - 2) / 2 + 1);
			for (k = 0; 2 + 2 * k + 1 < len; k++) {
				hi = db_pg_hex((unsigned char)v[2 + 2 * k]);
				lo = db_pg_hex((unsigned char)v[3 + 2 * k]);
				if (hi < 0 || lo < 0)
					break;
				d[k] = (char)(hi << 4 | lo);
			}
			len = k;
		}
		d[len] = '\0';
		st->dec[i] = d;
		st->declen[i] = len;
	}
	*n = (int)st->declen[i];
	return st->dec[i];
}

const char *
db_pg_text(struct db_stmt *st, int i)
{
	PGresult *r = (PGresult *)st->res;
	int n;

	if (db_pg_null(st, i))
		return NULL;
	if (PQftype(r, i) == DB_PG_BYTEA)
		return db_pg_bytea(st, i, &n);
	return PQgetvalue(r, st->row, i);
}

const void *
db_pg_blob(struct db_stmt *st, int i, int *n)
{
	PGresult *r = (PGresult *)st->res;

	*n = 0;
	if (db_pg_null(st, i))
		return NULL;
	if (PQftype(r, i) == DB_PG_BYTEA)
		return db_pg_bytea(st, i, n);
	*n = PQgetlength(r, st->row, i);
	return PQgetvalue(r, st->row, i);
}
