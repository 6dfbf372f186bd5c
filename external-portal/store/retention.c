/* Retention cleanup; see retention.h. Reads only our own store. */
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "log.h"
#include "props.h"
#include "store/retention.h"
#include "store/store_int.h"
#include "xmalloc.h"

struct retention_ctx {
	struct store		*store;
	int			 dry_run;
	void			(*each)(void *, const struct store_msg *);
	void			*arg;
	struct retention_result	*res;
};

struct retention_users {
	char	**v;
	size_t	  n;
};

static void
retention_user_cb(void *arg, const struct store_user *u)
{
	struct retention_users *l = arg;

	l->v = xreallocarray(l->v, l->n + 1, sizeof(*l->v));
	l->v[l->n++] = xstrdup(u->email);
}

static int
retention_msg_cb(void *arg, const struct store_msg *m)
{
	struct retention_ctx *c = arg;

	if (c->each != NULL)
		c->each(c->arg, m);
	if (!c->dry_run && store_msg_delete(c->store, m->owner, m->id) == -1) {
		c->res->errors++;
		return 0;
	}
	c->res->messages++;
	c->res->bytes += m->size;
	return 0;
}

int
retention_run(struct store *s, struct props *p, int64_t now, int dry_run,
    void (*each)(void *, const struct store_msg *), void *arg,
    struct retention_result *res)
{
	struct retention_users users = { NULL, 0 };
	struct retention_ctx c = { s, dry_run, each, arg, res };
	struct db *db;
	long long days;
	int rc = 0, locked;

	memset(res, 0, sizeof(*res));
	/*
	 * Several portals on one database: one of them at a time (the
	 * others find the lock taken and leave it to that one).
	 */
	if ((db = store_db(s)) == NULL ||
	    (locked = db_try_lock(db, DB_LOCK_RETENTION)) == -1)
		return -1;
	if (locked == 0) {
		log_info("retention: another portal is running it");
		res->skipped = 1;
		return 0;
	}
	if (store_user_list(s, retention_user_cb, &users) == -1) {
		db_unlock(db, DB_LOCK_RETENTION);
		return -1;
	}
	for (size_t i = 0; i < users.n; i++) {
		days = props_get_int(p, users.v[i], "retention-days");
		if (days > 0 && store_msg_older(s, users.v[i],
		    now - days * 86400, retention_msg_cb, &c) == -1)
			rc = -1;
		free(users.v[i]);
	}
	free(users.v);
	if ((db = store_db(s)) != NULL)
		db_unlock(db, DB_LOCK_RETENTION);
	return rc;
}
