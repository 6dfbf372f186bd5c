/*
 * The fixture the property-store unit tests share: a fresh SQLite
 * property store in a temporary directory per test, removed afterwards.
 * Included by test_props.c and test_policy.c after cmocka.h.
 */
#ifndef POSTERN_TEST_PROPS_FX_H
#define POSTERN_TEST_PROPS_FX_H

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "props.h"

struct fixture {
	char		 dir[64];
	char		 path[128];
	struct props	*p;
};

static int
setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	char *err = NULL;

	assert_non_null(f);
	snprintf(f->dir, sizeof(f->dir), "/tmp/test_props.XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->path, sizeof(f->path), "%s/node.db", f->dir);
	f->p = props_open(f->path, &err);
	assert_null(err);
	assert_non_null(f->p);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;
	char p[160];

	props_close(f->p);
	unlink(f->path);
	snprintf(p, sizeof(p), "%s-wal", f->path);
	unlink(p);
	snprintf(p, sizeof(p), "%s-shm", f->path);
	unlink(p);
	rmdir(f->dir);
	free(f);
	return 0;
}

#endif
