/*
 * Group commit of deliveries; see store_int.h. The threads of one process
 * that deliver at the same time share one fsync of the store directory
 * and one SQLite transaction (one WAL fsync): the first to arrive while
 * no commit runs becomes the leader, takes every delivery queued so far,
 * commits them and wakes their threads; the others wait, and one of them
 * leads the next group. Every delivery still returns only after the
 * transaction holding its row committed, so no 250 comes earlier than
 * before; a batch that fails fails all its deliveries (each 451).
 *
 * Inputs are the metadata store_deliver_remind() got (addresses and
 * header values from the gateway); they reach SQLite as bound parameters.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>


#include "db.h"
#include "log.h"
#include "store/store_int.h"

void
store_group_init(struct store *s)
{
	pthread_mutex_init(&s->gmtx, NULL);
	pthread_cond_init(&s->gcond, NULL);
	s->ghead = NULL;
	s->gtail = &s->ghead;
	s->gbusy = 0;
}

void
store_group_destroy(struct store *s)
{
	if (s->ghead != NULL || s->gbusy)
		fatalx("store: closed with deliveries in flight");
	pthread_mutex_destroy(&s->gmtx);
	pthread_cond_destroy(&s->gcond);
}

/* One delivery inside the group's transaction: 0, STORE_EQUOTA, -1. */
static int
store_group_one(struct store *s, struct db *db, struct store_group_item *it)
{
	const struct store_msg *m = it->meta;
	struct db_stmt *st;
	int64_t used;
	int rc;

	/* In the write transaction: earlier members of the group count. */
	if (it->quota > 0) {
		if ((used = store_scalar(s, STORE_SQL_USAGE, it->owner)) == -1)
			return -1;
		if (used + it->size > it->quota)
			return STORE_EQUOTA;
	}
	if (db_run(db, "INSERT INTO portal_users (email, domain, state, "
	    "created, generation) VALUES (?, ?, 'pending', ?, ?) "
	    "ON CONFLICT DO NOTHING", "ttii", it->owner, it->domain, it->now,
	    store_generation()) == -1)
		return -1;
	if ((st = db_prepare_cached(db, "INSERT INTO portal_messages (owner, "
	    "domain, folder, state, mail_from, hdr_from, subject, date, size, "
	    "has_attachments, unread, path, created, sealed_meta) VALUES "
	    "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1, ?, ?, ?) RETURNING id")) ==
	    NULL)
		return -1;
	rc = db_bind(st, m->sealed_meta != NULL ? "tttttttiiitib" :
	    "tttttttiiitin",
	    it->owner, it->domain, store_folder_names[m->folder],
	    store_state_names[m->state], m->mail_from, m->hdr_from,
	    m->subject, m->date ? m->date : it->now, it->size,
	    (int64_t)m->has_attachments, it->name, it->now, m->sealed_meta,
	    m->sealed_metalen) == 0 ? db_step(st) : -1;
	if (rc == DB_ROW)
		it->id = db_col_int(st, 0);
	db_finalize(st);
	if (rc != DB_ROW || store_blob_put(s, db, it->name) == -1)
		return -1;
	if (m->parts != NULL && store_part_put(db, it->id, m->parts,
	    m->nparts) == -1)
		return -1;
	if (it->notify && store_deliver_notify(db, m, it->owner, it->remind,
	    s->coalesce, it->now) == -1)
		return -1;
	return 0;
}

static void
store_group_fail(struct store_group_item *batch)
{
	for (struct store_group_item *it = batch; it != NULL; it = it->next)
		it->rc = -1;
}

/* The leader's work: one directory fsync, one transaction. */
static void
store_group_commit(struct store *s, struct store_group_item *batch)
{
	struct store_group_item *it;
	struct db *db;

	/* Every file of the batch was linked before it was queued. */
	if (store_fsync_dir(s) == -1 || (db = store_db(s)) == NULL ||
	    db_begin(db) == -1) {
		store_group_fail(batch);
		return;
	}
	for (it = batch; it != NULL; it = it->next)
		if ((it->rc = store_group_one(s, db, it)) == -1) {
			db_rollback(db);
			store_group_fail(batch);
			return;
		}
	if (db_commit(db) == -1) {
		db_rollback(db);
		store_group_fail(batch);
	}
}

void
store_group_run(struct store *s, struct store_group_item *it)
{
	struct store_group_item *batch, *next;

	it->next = NULL;
	it->done = 0;
	pthread_mutex_lock(&s->gmtx);
	*s->gtail = it;
	s->gtail = &it->next;
	while (!it->done) {
		if (s->gbusy) {
			pthread_cond_wait(&s->gcond, &s->gmtx);
			continue;
		}
		batch = s->ghead;
		s->ghead = NULL;
		s->gtail = &s->ghead;
		s->gbusy = 1;
		pthread_mutex_unlock(&s->gmtx);
		store_group_commit(s, batch);
		pthread_mutex_lock(&s->gmtx);
		/* Under the mutex: an owner sees done only after this. */
		for (; batch != NULL; batch = next) {
			next = batch->next;
			batch->done = 1;
		}
		s->gbusy = 0;
		pthread_cond_broadcast(&s->gcond);
	}
	pthread_mutex_unlock(&s->gmtx);
}
