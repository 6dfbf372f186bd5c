/* The portal store: put, get, list (keyset, newest first), delete, quota,
 * ownership, tokens, outbox and crash recovery. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include <sqlite3.h>

#include "db.h"
#include "store_fx.h"
#include "store/store_pdf.h"

static int64_t
put(struct store *s, const char *owner, const char *subject, const char *body,
    int64_t quota, int *rcp)
{
	struct store_tmp t;
	struct store_msg m = { 0 };
	int64_t id = 0;
	int rc;

	m.folder = STORE_FOLDER_INBOX;
	m.state = STORE_MSG_WEBMAIL;
	m.hdr_from = "Alice <alice@example.org>";
	m.subject = (char *)subject;
	assert_int_equal(store_tmp_create(s, &t), 0);
	fprintf(t.fp, "Subject: %s\r\n\r\n%s\r\n", subject, body);
	rc = store_deliver(s, &t, &m, owner, quota, 1, &id);
	store_tmp_discard(&t);
	if (rcp)
		*rcp = rc;
	else
		assert_int_equal(rc, 0);
	return id;
}

static void
test_put_get(void **state)
{
	struct fx *f = *state;
	struct store_msg m;
	struct store_user u;
	int64_t id;
	FILE *fp;
	char buf[128];

	id = put(f->s, "bob@example.com", "hello", "body text", 0, NULL);
	assert_true(id > 0);
	assert_int_equal(store_msg_get(f->s, "bob@example.com", id, &m), 0);
	assert_string_equal(m.subject, "hello");
	assert_int_equal(m.unread, 1);
	assert_int_equal(m.state, STORE_MSG_WEBMAIL);
	assert_non_null(fp = fopen(m.path, "r"));
	assert_non_null(fgets(buf, sizeof(buf), fp));
	assert_string_equal(buf, "Subject: hello\r\n");
	fclose(fp);
	assert_int_equal(m.size, strlen("Subject: hello\r\n\r\nbody text\r\n"));
	store_msg_free(&m);
	/* Another owner never sees it. */
	assert_int_equal(store_msg_get(f->s, "eve@example.com", id, &m),
	    STORE_NOTFOUND);
	assert_int_equal(store_msg_delete(f->s, "eve@example.com", id),
	    STORE_NOTFOUND);
	/* The account was created pending, with an invite queued. */
	assert_int_equal(store_user_get(f->s, "bob@example.com", &u), 0);
	assert_int_equal(u.state, STORE_USER_PENDING);
	store_user_free(&u);
	assert_int_equal(store_msg_set_unread(f->s, "bob@example.com", id, 0),
	    0);
	assert_int_equal(store_msg_get(f->s, "bob@example.com", id, &m), 0);
	assert_int_equal(m.unread, 0);
	store_msg_free(&m);
}

static void
test_list_keyset(void **state)
{
	struct fx *f = *state;
	struct store_msg page[4];
	int64_t ids[10];
	int n, seen = 0;
	int64_t before = 0;

	for (int i = 0; i < 10; i++)
		ids[i] = put(f->s, "bob@example.com", "m", "x", 0, NULL);
	put(f->s, "carol@example.com", "other", "x", 0, NULL);
	while ((n = store_msg_list(f->s, "bob@example.com", STORE_FOLDER_INBOX,
	    before, 4, page)) > 0) {
		for (int i = 0; i < n; i++) {
			assert_int_equal(page[i].id, ids[9 - seen]);
			assert_string_equal(page[i].owner, "bob@example.com");
			seen++;
			before = page[i].id;
			store_msg_free(&page[i]);
		}
	}
	assert_int_equal(n, 0);
	assert_int_equal(seen, 10);
	assert_int_equal(store_msg_count(f->s, "bob@example.com"), 10);
}

static void
test_delete(void **state)
{
	struct fx *f = *state;
	struct store_msg m;
	int64_t id1, id2;
	char *path;

	id1 = put(f->s, "bob@example.com", "a", "x", 0, NULL);
	id2 = put(f->s, "dave@example.com", "a", "x", 0, NULL);
	assert_int_equal(store_msg_get(f->s, "bob@example.com", id1, &m), 0);
	path = xstrdup(m.path);
	store_msg_free(&m);
	assert_int_equal(access(path, F_OK), 0);
	assert_int_equal(store_msg_delete(f->s, "bob@example.com", id1), 0);
	assert_int_equal(access(path, F_OK), -1);
	assert_int_equal(store_msg_get(f->s, "bob@example.com", id1, &m),
	    STORE_NOTFOUND);
	/* Per-recipient: the other copy is untouched. */
	assert_int_equal(store_msg_get(f->s, "dave@example.com", id2, &m), 0);
	assert_int_equal(access(m.path, F_OK), 0);
	store_msg_free(&m);
	free(path);
	assert_int_equal(store_user_delete(f->s, "dave@example.com"), 0);
	assert_int_equal(store_msg_count(f->s, "dave@example.com"), 0);
}

static void
test_quota(void **state)
{
	struct fx *f = *state;
	int rc;
	int64_t used;

	put(f->s, "bob@example.com", "a", "0123456789", 0, NULL);
	used = store_usage(f->s, "bob@example.com");
	assert_true(used > 10);
	put(f->s, "bob@example.com", "a", "0123456789", used * 2 + 1, &rc);
	assert_int_equal(rc, 0);
	put(f->s, "bob@example.com", "a", "0123456789", used * 2 + 1, &rc);
	assert_int_equal(rc, STORE_EQUOTA);
	assert_int_equal(store_usage(f->s, "bob@example.com"), used * 2);
	assert_int_equal(store_usage_domain(f->s, "EXAMPLE.com"), used * 2);
	assert_int_equal(store_usage_total(f->s), used * 2);
}

static void
test_tokens(void **state)
{
	struct fx *f = *state;
	char email[256];
	int64_t now = time(NULL);

	assert_int_equal(store_token_put(f->s, STORE_TOKEN_SIGNUP, "aa",
	    "bob@example.com", now + 100), 0);
	assert_int_equal(store_token_put(f->s, STORE_TOKEN_SIGNUP, "bb",
	    "bob@example.com", now - 1), 0);
	assert_int_equal(store_token_consume(f->s, STORE_TOKEN_RESET, "aa",
	    now, email, sizeof(email)), STORE_NOTFOUND);
	assert_int_equal(store_token_consume(f->s, STORE_TOKEN_SIGNUP, "bb",
	    now, email, sizeof(email)), STORE_NOTFOUND);
	assert_int_equal(store_token_consume(f->s, STORE_TOKEN_SIGNUP, "aa",
	    now, email, sizeof(email)), 0);
	assert_string_equal(email, "bob@example.com");
	assert_int_equal(store_token_consume(f->s, STORE_TOKEN_SIGNUP, "aa",
	    now, email, sizeof(email)), STORE_NOTFOUND);
}

static void
test_outbox_and_activation(void **state)
{
	struct fx *f = *state;
	struct store_outbox o;
	int64_t now;

	put(f->s, "bob@example.com", "first", "x", 0, NULL);
	/* After the delivery: its row is due at the second it was stored. */
	now = time(NULL);
	assert_int_equal(store_outbox_next(f->s, now, &o), 0);
	assert_int_equal(o.kind, STORE_OUTBOX_SIGNUP);
	assert_string_equal(o.rcpt, "bob@example.com");
	assert_int_equal(store_outbox_retry(f->s, o.id, now + 60, "down"), 0);
	store_outbox_free(&o);
	assert_int_equal(store_outbox_next(f->s, now, &o), STORE_NOTFOUND);
	assert_int_equal(store_outbox_wake_time(f->s), now + 60);
	assert_int_equal(store_outbox_next(f->s, now + 60, &o), 0);
	assert_int_equal(o.attempts, 1);
	assert_int_equal(store_outbox_done(f->s, o.id), 0);
	store_outbox_free(&o);

	assert_int_equal(store_user_set_password(f->s, "bob@example.com",
	    "$argon2id$x"), 0);
	put(f->s, "bob@example.com", "second", "x", 0, NULL);
	assert_int_equal(store_outbox_next(f->s, now + 60, &o), 0);
	assert_int_equal(o.kind, STORE_OUTBOX_NEWMSG);
	store_outbox_free(&o);
}

static void
test_recovery(void **state)
{
	struct fx *f = *state;
	struct store_msg m;
	struct store_tmp t;
	char *err, *orphan;
	int64_t id1, id2;
	int files, rows;
	FILE *fp;

	id1 = put(f->s, "bob@example.com", "keep", "x", 0, NULL);
	id2 = put(f->s, "bob@example.com", "lose file", "x", 0, NULL);
	assert_int_equal(store_msg_get(f->s, "bob@example.com", id2, &m), 0);
	assert_int_equal(unlink(m.path), 0);
	store_msg_free(&m);
	/* A crash between link and commit, and one during writing. */
	xasprintf(&orphan, "%s/m-0123456789abcdef0123456789abcdef", f->msgs);
	assert_non_null(fp = fopen(orphan, "w"));
	fclose(fp);
	assert_int_equal(store_tmp_create(f->s, &t), 0);
	fclose(t.fp);
	store_close(f->s);

	f->s = store_open(f->db, f->msgs, 1, &err);
	assert_non_null(f->s);
	store_recovered(f->s, &files, &rows);
	assert_int_equal(files, 2);
	assert_int_equal(rows, 1);
	assert_int_equal(access(orphan, F_OK), -1);
	assert_int_equal(access(t.path, F_OK), -1);
	assert_int_equal(store_msg_get(f->s, "bob@example.com", id1, &m), 0);
	store_msg_free(&m);
	assert_int_equal(store_msg_get(f->s, "bob@example.com", id2, &m),
	    STORE_NOTFOUND);
	free(t.path);
	free(orphan);
}


/* Deleting an account takes its sessions, recovery codes and tokens. */
static void
test_user_delete_all(void **state)
{
	struct fx *f = *state;
	char email[256], h[1][65] = { "r1" };
	int64_t now = time(NULL);
	int stage;

	put(f->s, "dave@example.com", "x", "x", 0, NULL);
	assert_int_equal(store_session_put(f->s, "s1", "dave@example.com", 1,
	    now), 0);
	assert_int_equal(store_recovery_set(f->s, "dave@example.com", h, 1),
	    0);
	assert_int_equal(store_token_put(f->s, STORE_TOKEN_RESET, "t1",
	    "dave@example.com", now + 100), 0);
	assert_int_equal(store_session_get(f->s, "s1", now, 60, 60, email,
	    sizeof(email), &stage), 0);
	assert_string_equal(email, "dave@example.com");
	assert_int_equal(store_user_delete(f->s, "dave@example.com"), 0);
	assert_int_equal(store_session_get(f->s, "s1", now, 60, 60, email,
	    sizeof(email), &stage), STORE_NOTFOUND);
	assert_int_equal(store_recovery_use(f->s, "dave@example.com", "r1"),
	    0);
	assert_int_equal(store_token_consume(f->s, STORE_TOKEN_RESET, "t1",
	    now, email, sizeof(email)), STORE_NOTFOUND);
	assert_int_equal(store_user_delete(f->s, "dave@example.com"),
	    STORE_NOTFOUND);
}

/* A session of an account deleted and created again is dead. */
static void
test_session_generation(void **state)
{
	struct fx *f = *state;
	struct db *db;
	char email[256];
	int64_t now = time(NULL);
	int stage;

	put(f->s, "erin@example.com", "x", "x", 0, NULL);
	assert_int_equal(store_session_put(f->s, "s1", "erin@example.com", 1,
	    now), 0);
	assert_int_equal(store_session_put(f->s, "s2", "nobody@example.com",
	    1, now), -1);
	/* Only the account row goes: the session must still die. */
	assert_non_null(db = db_thread(f->db));
	assert_int_equal(db_run(db, "DELETE FROM portal_users", ""), 1);
	put(f->s, "erin@example.com", "y", "y", 0, NULL);
	assert_int_equal(store_session_get(f->s, "s1", now, 60, 60, email,
	    sizeof(email), &stage), STORE_NOTFOUND);
	assert_int_equal(store_session_put(f->s, "s3", "erin@example.com", 0,
	    now), 0);
	assert_int_equal(store_session_get(f->s, "s3", now, 60, 60, email,
	    sizeof(email), &stage), 0);
	assert_int_equal(stage, 0);
	assert_int_equal(store_session_get(f->s, "s3", now + 61, 60, 600,
	    email, sizeof(email), &stage), STORE_NOTFOUND);
}

static int
count_signups(struct store *s, int64_t now)
{
	struct store_outbox o;
	int n = 0;

	while (store_outbox_next(s, now, &o) == 0) {
		if (o.kind == STORE_OUTBOX_SIGNUP)
			n++;
		assert_int_equal(store_outbox_done(s, o.id), 0);
		store_outbox_free(&o);
	}
	return n;
}

static void
put_remind(struct store *s, const char *owner, int64_t remind)
{
	struct store_tmp t;
	struct store_msg m = { 0 };
	int64_t id;

	m.hdr_from = "a@example.org";
	assert_int_equal(store_tmp_create(s, &t), 0);
	fprintf(t.fp, "Subject: x\r\n\r\nx\r\n");
	assert_int_equal(store_deliver_remind(s, &t, &m, owner, 0, 1, remind,
	    &id), 0);
	store_tmp_discard(&t);
}

/*
 * A pending account gets one invitation, then at most one reminder per
 * interval; activation ends the sign-up links.
 */
static void
test_invitation_reminder(void **state)
{
	struct fx *f = *state;
	char email[256];
	int64_t now = time(NULL);

	for (int i = 0; i < 3; i++)
		put_remind(f->s, "fay@example.com", 3600);
	assert_int_equal(count_signups(f->s, now + 1), 1);
	put_remind(f->s, "fay@example.com", 0);
	assert_int_equal(count_signups(f->s, now + 1), 1);

	assert_int_equal(store_token_put(f->s, STORE_TOKEN_SIGNUP, "l1",
	    "fay@example.com", now + 100), 0);
	assert_int_equal(store_token_put(f->s, STORE_TOKEN_SIGNUP, "l2",
	    "fay@example.com", now + 100), 0);
	assert_int_equal(store_token_consume(f->s, STORE_TOKEN_SIGNUP, "l1",
	    now, email, sizeof(email)), 0);
	assert_int_equal(store_user_set_password(f->s, "fay@example.com",
	    "$argon2id$x"), 0);
	assert_int_equal(store_token_consume(f->s, STORE_TOKEN_SIGNUP, "l2",
	    now, email, sizeof(email)), STORE_NOTFOUND);
}

/*
 * A PDF mail accepted: the message goes before its PDF row lets go of
 * it. Otherwise, in between, the message (still "pdf-pending", no longer
 * linked) is one that store_pdf_adopt takes for new and renders a second
 * time. A trigger notes whether the message row still existed when the
 * PDF row became "sent".
 */
static void
test_pdf_sent_removes_content_first(void **state)
{
	struct fx *f = *state;
	struct store_tmp t;
	struct store_msg m = { 0 };
	struct store_pdf p;
	sqlite3 *db;
	sqlite3_stmt *st;
	int64_t id, now = time(NULL);

	m.folder = STORE_FOLDER_INBOX;
	m.state = STORE_MSG_PDF_PENDING;
	m.subject = "figures";
	assert_int_equal(store_tmp_create(f->s, &t), 0);
	fprintf(t.fp, "Subject: figures\r\n\r\nbody\r\n");
	assert_int_equal(store_deliver(f->s, &t, &m, "bob@example.com", 0, 0,
	    &id), 0);
	store_tmp_discard(&t);
	assert_int_equal(store_pdf_adopt(f->s, now), 1);
	assert_int_equal(store_pdf_next(f->s, now, &p), 0);
	assert_int_equal(p.msg_id, id);
	assert_int_equal(store_pdf_queue(f->s, &p, "pw", "/nonexistent"), 0);

	assert_int_equal(sqlite3_open(f->db, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "CREATE TABLE probe (n INTEGER);"
	    "CREATE TRIGGER probe_sent AFTER UPDATE OF state ON portal_pdf "
	    "WHEN NEW.state = 'sent' BEGIN INSERT INTO probe SELECT COUNT(*) "
	    "FROM portal_messages WHERE id = OLD.msg_id; END;", NULL, NULL,
	    NULL), SQLITE_OK);
	assert_int_equal(store_pdf_sent(f->s, p.id), 0);
	assert_int_equal(sqlite3_prepare_v2(db, "SELECT n FROM probe", -1,
	    &st, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	assert_int_equal(sqlite3_column_int(st, 0), 0);
	sqlite3_finalize(st);
	sqlite3_close(db);
	assert_int_equal(store_pdf_adopt(f->s, now), 0);
	store_pdf_free(&p);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_put_get, fx_setup,
		    fx_teardown),
		cmocka_unit_test_setup_teardown(test_list_keyset, fx_setup,
		    fx_teardown),
		cmocka_unit_test_setup_teardown(test_delete, fx_setup,
		    fx_teardown),
		cmocka_unit_test_setup_teardown(test_quota, fx_setup,
		    fx_teardown),
		cmocka_unit_test_setup_teardown(test_tokens, fx_setup,
		    fx_teardown),
		cmocka_unit_test_setup_teardown(test_pdf_sent_removes_content_first,
		    fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_outbox_and_activation,
		    fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_recovery, fx_setup,
		    fx_teardown),
		cmocka_unit_test_setup_teardown(test_user_delete_all,
		    fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_session_generation,
		    fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_invitation_reminder,
		    fx_setup, fx_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
