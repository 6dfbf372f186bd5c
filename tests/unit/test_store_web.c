/* The store calls behind Webmail Messenger's outgoing side: read receipts
 * at most once, replies queued all-or-none with a shared spool file, the
 * listing plan, and the receipt column added to an older database. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>
#include <sqlite3.h>

#include "store_fx.h"

static int64_t
put(struct store *s, const char *owner)
{
	struct store_tmp t;
	struct store_msg m = { 0 };
	int64_t id = 0;

	m.folder = STORE_FOLDER_INBOX;
	m.state = STORE_MSG_WEBMAIL;
	m.subject = "s";
	assert_int_equal(store_tmp_create(s, &t), 0);
	fprintf(t.fp, "Subject: s\r\n\r\nbody\r\n");
	assert_int_equal(store_deliver(s, &t, &m, owner, 0, 0, &id), 0);
	store_tmp_discard(&t);
	return id;
}

static int
drain(struct store *s, enum store_outbox_kind kind, const char *path)
{
	struct store_outbox o;
	int n = 0;

	while (store_outbox_next(s, time(NULL), &o) == 0) {
		assert_int_equal(o.kind, kind);
		assert_string_equal(o.path, path);
		assert_int_equal(store_outbox_done(s, o.id), 0);
		store_outbox_free(&o);
		n++;
	}
	return n;
}

static void
test_receipt_once(void **state)
{
	struct fx *f = *state;
	int64_t id = put(f->s, "ext@example.org");

	assert_int_equal(store_msg_receipt_sent(f->s, "ext@example.org", id),
	    0);
	/* Another owner cannot claim it. */
	assert_int_equal(store_msg_receipt_queue(f->s, "two@example.org", id,
	    "a@example.com", "/spool/r1"), STORE_NOTFOUND);
	assert_int_equal(store_msg_receipt_queue(f->s, "ext@example.org", id,
	    "a@example.com", "/spool/r1"), 0);
	assert_int_equal(store_msg_receipt_queue(f->s, "ext@example.org", id,
	    "a@example.com", "/spool/r2"), STORE_NOTFOUND);
	assert_int_equal(store_msg_receipt_sent(f->s, "ext@example.org", id),
	    1);
	assert_int_equal(drain(f->s, STORE_OUTBOX_RECEIPT, "/spool/r1"), 1);
}

static void
test_reply_rows_share_a_file(void **state)
{
	struct fx *f = *state;
	const char *rcpts[] = { "a@example.com", "b@example.com",
	    "c@example.com" };
	struct store_outbox o;

	assert_int_equal(store_outbox_add_many(f->s, STORE_OUTBOX_REPLY,
	    rcpts, 3, "ext@example.org", "Re: x", "/spool/reply.1"), 0);
	assert_int_equal(store_outbox_path_refs(f->s, "/spool/reply.1"), 3);
	assert_int_equal(store_outbox_next(f->s, time(NULL), &o), 0);
	assert_int_equal(o.kind, STORE_OUTBOX_REPLY);
	assert_string_equal(o.sender_name, "ext@example.org");
	assert_int_equal(store_outbox_done(f->s, o.id), 0);
	store_outbox_free(&o);
	assert_int_equal(store_outbox_path_refs(f->s, "/spool/reply.1"), 2);
	assert_int_equal(drain(f->s, STORE_OUTBOX_REPLY, "/spool/reply.1"), 2);
	assert_int_equal(store_outbox_path_refs(f->s, "/spool/reply.1"), 0);
}

static void
test_listing_uses_index(void **state)
{
	struct fx *f = *state;
	char plan[1024];

	assert_int_equal(store_msg_list_plan(f->s, plan, sizeof(plan)), 0);
	assert_non_null(strstr(plan, "USING COVERING INDEX portal_messages_list"));
	assert_null(strstr(plan, "TEMP B-TREE"));
}

static void
test_old_database_gets_receipt_column(void **state)
{
	struct fx *f = *state;
	struct store *s;
	sqlite3 *db;
	char *err = NULL;
	int64_t id = put(f->s, "ext@example.org");

	store_close(f->s);
	f->s = NULL;
	/* A database from before read receipts (SQLite >= 3.35). */
	assert_int_equal(sqlite3_open(f->db, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "ALTER TABLE portal_messages DROP "
	    "COLUMN receipt_sent", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	s = store_open(f->db, f->msgs, 0, &err);
	assert_non_null(s);
	f->s = s;
	assert_int_equal(store_msg_receipt_sent(s, "ext@example.org", id), 0);
	assert_int_equal(store_msg_receipt_queue(s, "ext@example.org", id,
	    "a@example.com", "/spool/r"), 0);
	assert_int_equal(store_msg_receipt_sent(s, "ext@example.org", id), 1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_receipt_once, fx_setup,
		    fx_teardown),
		cmocka_unit_test_setup_teardown(test_reply_rows_share_a_file,
		    fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_listing_uses_index,
		    fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(
		    test_old_database_gets_receipt_column, fx_setup,
		    fx_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
