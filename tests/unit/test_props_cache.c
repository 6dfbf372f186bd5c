/*
 * The property cache (props_cache_begin): repeated lookups are answered
 * from memory, a write by another connection empties the cache at the
 * next props_cache_begin, a write through the same struct props empties
 * it at once, and without props_cache_begin nothing is cached.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "props_fx.h"


#include "db.h"
#include "props.h"

/* Changes the global encrypt-mode behind props' back, on connection db. */
static void
raw_set(struct db *db, const char *value)
{
	char *err = NULL, *sql;

	assert_true(asprintf(&sql, "INSERT INTO props_global (name, value) "
	    "VALUES ('encrypt-mode', '%s') ON CONFLICT (name) DO UPDATE SET "
	    "value = excluded.value", value) > 0);
	if (db_exec(db, sql, &err) == -1)
		fail_msg("%s", err);
	free(sql);
}

static void
expect(struct props *p, const char *email, const char *value)
{
	char *v = props_get(p, email, "encrypt-mode", NULL);

	assert_non_null(v);
	assert_string_equal(v, value);
	free(v);
}

static void
set_ok(struct props *p, const char *value)
{
	char *err = NULL;

	if (props_set(p, PROPS_SCOPE_GLOBAL, NULL, "encrypt-mode", value,
	    &err) != 0)
		fail_msg("props_set: %s", err);
}

static void
test_cache(void **state)
{
	struct fixture *f = *state;
	struct db *db;
	struct props *r;
	char *err = NULL;

	set_ok(f->p, "allow");
	assert_non_null(db = db_open(f->path, &err));
	assert_non_null(r = props_wrap(db));

	/* No props_cache_begin: every lookup reads the database. */
	expect(r, "bob@example.net", "allow");
	raw_set(db, "mandatory");
	expect(r, "bob@example.net", "mandatory");

	/* Cached: a change on the reader's own connection goes unseen ... */
	assert_int_equal(props_cache_begin(r), 0);
	expect(r, "bob@example.net", "mandatory");
	expect(r, NULL, "mandatory");
	raw_set(db, "allow");
	expect(r, "bob@example.net", "mandatory");
	expect(r, NULL, "mandatory");
	/* ... and a new key is looked up, then cached too. */
	expect(r, "carol@example.net", "allow");
	assert_int_equal(props_cache_begin(r), 0);
	expect(r, "bob@example.net", "mandatory");

	/* Another connection's write empties it at the next begin. */
	set_ok(f->p, "no-encryption");
	expect(r, "bob@example.net", "mandatory");
	assert_int_equal(props_cache_begin(r), 0);
	expect(r, "bob@example.net", "no-encryption");
	expect(r, "carol@example.net", "no-encryption");

	/* A write through the caching struct props empties it at once. */
	set_ok(r, "mandatory");
	expect(r, "bob@example.net", "mandatory");

	/* More keys than the cache holds: answers stay right. */
	assert_int_equal(props_cache_begin(r), 0);
	for (int i = 0; i < 600; i++) {
		char email[64];

		snprintf(email, sizeof(email), "user%d@example.net", i % 300);
		expect(r, email, "mandatory");
	}
	props_close(r);
	db_close(db);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_cache, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
