/*
 * The database helpers of db.h: binding each letter, stepping, db_run's
 * change count, transactions, errors as -1, and db_thread's one
 * connection per thread.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>


#include "db.h"
#include "xmalloc.h"

struct dfx {
	char	 dir[64];
	char	*path;
};

static int
dfx_setup(void **state)
{
	struct dfx *f = xcalloc(1, sizeof(*f));

	snprintf(f->dir, sizeof(f->dir), "/tmp/test_db.XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	xasprintf(&f->path, "%s/t.db", f->dir);
	*state = f;
	return 0;
}

static int
dfx_teardown(void **state)
{
	struct dfx *f = *state;
	char *cmd;

	db_thread_close();
	xasprintf(&cmd, "rm -rf '%s'", f->dir);
	assert_int_equal(system(cmd), 0);
	free(cmd);
	free(f->path);
	free(f);
	return 0;
}

static void
test_bind_step(void **state)
{
	struct dfx *f = *state;
	struct db *db;
	struct db_stmt *st;
	char *err = NULL;

	assert_non_null(db = db_open(f->path, &err));
	assert_int_equal(db_exec(db, "CREATE TABLE t (a TEXT, b INTEGER, "
	    "c BLOB, d TEXT)", &err), 0);
	assert_int_equal(db_run(db, "INSERT INTO t VALUES (?, ?, ?, ?)",
	    "tibn", "x'); DROP TABLE t; --", (int64_t)1 << 40, "\0\1", (size_t)2),
	    1);
	assert_int_equal(db_run(db, "INSERT INTO t VALUES (?, ?, NULL, ?)",
	    "tit", NULL, (int64_t)-5, "y"), 1);
	assert_non_null(st = db_prepare(db, "SELECT a, b, length(c), d "
	    "FROM t WHERE b > ? ORDER BY b DESC"));
	assert_int_equal(db_bind(st, "i", (int64_t)-10), 0);
	assert_int_equal(db_step(st), DB_ROW);
	assert_string_equal((const char *)db_col_text(st, 0),
	    "x'); DROP TABLE t; --");
	assert_true(db_col_int(st, 1) == (int64_t)1 << 40);
	assert_int_equal(db_col_int(st, 2), 2);
	assert_int_equal(db_col_null(st, 3), 1);
	assert_int_equal(db_step(st), DB_ROW);
	assert_int_equal(db_col_null(st, 0), 1);
	assert_int_equal(db_step(st), DB_DONE);
	db_finalize(st);
	assert_int_equal(db_run(db, "UPDATE t SET d = 'z'", ""), 2);
	/* Errors are -1 (logged), never a crash. */
	assert_null(db_prepare(db, "SELECT nonsense FROM"));
	assert_int_equal(db_run(db, "INSERT INTO nowhere VALUES (1)", ""), -1);
	db_close(db);
}

static void
test_transactions(void **state)
{
	struct dfx *f = *state;
	struct db *db;
	struct db_stmt *st;
	char *err = NULL;

	assert_non_null(db = db_open(f->path, &err));
	assert_int_equal(db_exec(db, "CREATE TABLE t (a INTEGER)", &err), 0);
	assert_int_equal(db_begin(db), 0);
	assert_int_equal(db_run(db, "INSERT INTO t VALUES (1)", ""), 1);
	db_rollback(db);
	/* A rollback outside a transaction is harmless. */
	db_rollback(db);
	assert_int_equal(db_begin(db), 0);
	assert_int_equal(db_run(db, "INSERT INTO t VALUES (2)", ""), 1);
	assert_int_equal(db_commit(db), 0);
	assert_non_null(st = db_prepare(db, "SELECT group_concat(a) FROM t"));
	assert_int_equal(db_step(st), DB_ROW);
	assert_string_equal((const char *)db_col_text(st, 0), "2");
	db_finalize(st);
	assert_int_equal(db_commit(db), -1);
	db_close(db);
}

static void *
other_thread(void *arg)
{
	return db_thread(arg);
}

static void
test_thread_connection(void **state)
{
	struct dfx *f = *state;
	struct db *a, *b;
	pthread_t t;
	void *other;

	assert_non_null(a = db_thread(f->path));
	assert_ptr_equal(db_thread(f->path), a);
	assert_int_equal(pthread_create(&t, NULL, other_thread, f->path), 0);
	assert_int_equal(pthread_join(t, &other), 0);
	assert_non_null(other);
	assert_ptr_not_equal(other, a);
	db_thread_close();
	assert_non_null(b = db_thread(f->path));
	assert_int_equal(db_run(b, "CREATE TABLE IF NOT EXISTS t (a)", ""), 0);
	assert_null(db_thread("/nonexistent/dir/x.db"));
}

/*
 * db_prepare_cached(): the thread's connection keeps the statement (the
 * same one comes back), db_finalize() gives it back reset with its
 * bindings cleared, a statement in use is never handed out twice, and
 * closing the connection frees them (no leak under ASan).
 */
static void
test_prepare_cached(void **state)
{
	static const char sql[] = "SELECT ?1, (SELECT count(*) FROM t)";
	struct dfx *f = *state;
	struct db *db, *other;
	struct db_stmt *a, *b, *c;
	char *err = NULL;

	assert_non_null(db = db_thread(f->path));
	assert_int_equal(db_run(db, "CREATE TABLE t (a)", ""), 0);
	assert_non_null(a = db_prepare_cached(db, sql));
	assert_int_equal(db_bind(a, "i", (int64_t)7), 0);
	assert_int_equal(db_step(a), DB_ROW);
	assert_int_equal(db_col_int(a, 0), 7);
	/* In use: a second, separate statement. */
	assert_non_null(b = db_prepare_cached(db, sql));
	assert_ptr_not_equal(a, b);
	db_finalize(b);
	db_finalize(a);
	/* Back: the same statement, reset, no bindings left. */
	assert_int_equal(db_run(db, "INSERT INTO t VALUES (1)", ""), 1);
	assert_non_null(c = db_prepare_cached(db, sql));
	assert_true(c == a || c == b);
	assert_int_equal(db_step(c), DB_ROW);
	assert_int_equal(db_col_null(c, 0), 1);
	assert_int_equal(db_col_int(c, 1), 1);
	db_finalize(c);
	/* Another connection compiles its own and frees it. */
	assert_non_null(other = db_open(f->path, &err));
	assert_non_null(a = db_prepare_cached(other, sql));
	assert_int_equal(db_step(a), DB_ROW);
	db_finalize(a);
	db_close(other);
	/* The same address with other text is not taken for the old one. */
	{
		char buf[64];

		snprintf(buf, sizeof(buf), "SELECT 1");
		assert_non_null(a = db_prepare_cached(db, buf));
		db_finalize(a);
		snprintf(buf, sizeof(buf), "SELECT 2");
		assert_non_null(a = db_prepare_cached(db, buf));
		assert_int_equal(db_step(a), DB_ROW);
		assert_int_equal(db_col_int(a, 0), 2);
		db_finalize(a);
	}
	db_thread_close();
}

/* Steps run once, in order; a newer schema is refused; redaction. */
static void
test_migrate(void **state)
{
	struct dfx *f = *state;
	struct db *db;
	struct db_stmt *st;
	char *err = NULL;
	static const char *const steps[] = {
		"CREATE TABLE m (a INTEGER)",
		"ALTER TABLE m ADD COLUMN b TEXT",
	};

	assert_non_null(db = db_open(f->path, &err));
	assert_int_equal(db_migrate(db, "comp", steps, 1, &err), 0);
	assert_int_equal(db_has_column(db, "m", "a"), DB_ROW);
	assert_int_equal(db_has_column(db, "m", "b"), DB_DONE);
	/* Version 1 is there: only step 2 runs (step 1 again would fail). */
	assert_int_equal(db_migrate(db, "comp", steps, 2, &err), 0);
	assert_int_equal(db_has_column(db, "m", "b"), DB_ROW);
	assert_int_equal(db_migrate(db, "comp", steps, 2, &err), 0);
	assert_non_null(st = db_prepare(db, "SELECT version FROM "
	    "postern_schema WHERE component = 'comp'"));
	assert_int_equal(db_step(st), DB_ROW);
	assert_int_equal(db_col_int(st, 0), 2);
	db_finalize(st);
	/* A build that knows only version 1 refuses the database. */
	assert_int_equal(db_migrate(db, "comp", steps, 1, &err), -1);
	assert_non_null(strstr(err, "version 2"));
	free(err);
	err = NULL;
	/* A failing step leaves the version where it was. */
	{
		static const char *const bad[] = { "CREATE TABLE n (a INTEGER)",
		    "CREATE TABLE n (a INTEGER)" };

		assert_int_equal(db_migrate(db, "other", bad, 2, &err), -1);
		free(err);
		err = NULL;
		assert_non_null(st = db_prepare(db, "SELECT version FROM "
		    "postern_schema WHERE component = 'other'"));
		assert_int_equal(db_step(st), DB_ROW);
		assert_int_equal(db_col_int(st, 0), 1);
		db_finalize(st);
	}
	db_close(db);

	assert_string_equal(db_redact("/var/lib/x.db"), "/var/lib/x.db");
	assert_string_equal(db_redact("postgresql://u:s3cret@h/db"),
	    "postgresql://u:****@h/db");
	assert_string_equal(db_redact("postgres://h/db?password=s3cret&x=1"),
	    "postgres://h/db?password=****&x=1");
	assert_true(db_is_url("postgresql:///db?host=/run/x"));
	assert_false(db_is_url("/tmp/postgresql://x"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_migrate, dfx_setup,
		    dfx_teardown),
		cmocka_unit_test_setup_teardown(test_bind_step, dfx_setup,
		    dfx_teardown),
		cmocka_unit_test_setup_teardown(test_transactions, dfx_setup,
		    dfx_teardown),
		cmocka_unit_test_setup_teardown(test_thread_connection,
		    dfx_setup, dfx_teardown),
		cmocka_unit_test_setup_teardown(test_prepare_cached,
		    dfx_setup, dfx_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
