/*
 * The fixture the store unit tests share: a fresh portal store in a
 * temporary directory per test, removed afterwards. Included by
 * test_store*.c after cmocka.h.
 */
#ifndef POSTERN_TEST_STORE_FX_H
#define POSTERN_TEST_STORE_FX_H

#include "store/store.h"
#include "xmalloc.h"

struct fx {
	char		 dir[64];
	char		*db, *msgs;
	struct store	*s;
};

static int
fx_setup(void **state)
{
	struct fx *f = xcalloc(1, sizeof(*f));
	char *err;

	snprintf(f->dir, sizeof(f->dir), "/tmp/test_store.XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	xasprintf(&f->db, "%s/portal.db", f->dir);
	xasprintf(&f->msgs, "%s/messages", f->dir);
	f->s = store_open(f->db, f->msgs, 1, &err);
	assert_non_null(f->s);
	*state = f;
	return 0;
}

static int
fx_teardown(void **state)
{
	struct fx *f = *state;
	char *cmd;

	store_close(f->s);
	xasprintf(&cmd, "rm -rf '%s'", f->dir);
	assert_int_equal(system(cmd), 0);
	free(cmd);
	free(f->db);
	free(f->msgs);
	free(f);
	return 0;
}

#endif
