/*
 * The store's PDF-OTP rows; see store_pdf.h. SQL of table portal_pdf
 * only (and the message rows it adopts and finally deletes).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/rand.h>

#include "db.h"
#include "log.h"
#include "store/store_int.h"
#include "store/store_pdf.h"
#include "xmalloc.h"

#define STORE_PDF_COLS "p.id, p.token, p.owner, p.msg_id, p.state, " \
    "p.password, p.mail_from, p.hdr_from, p.subject, m.path, p.pdf_mail, " \
    "p.date, p.created, p.attempts, p.reply_to, p.message_id, p.refs"
#define STORE_PDF_FROM " FROM portal_pdf p LEFT JOIN portal_messages m " \
    "ON m.id = p.msg_id "

/* Columns added after the table's first version (the reply page). */
static int
store_pdf_migrate(struct db *db, char **err)
{
	static const char *const cols[] = { "reply_to", "message_id",
	    "refs" };
	char *sql;
	int have, rc;

	for (size_t i = 0; i < sizeof(cols) / sizeof(cols[0]); i++) {
		if ((have = db_has_column(db, "portal_pdf", cols[i])) == -1)
			return -1;
		if (have == DB_ROW)
			continue;
		/* Fixed names from the table above. */
		xasprintf(&sql, "ALTER TABLE portal_pdf ADD COLUMN %s TEXT",
		    cols[i]);
		rc = db_exec(db, sql, err);
		free(sql);
		if (rc == -1)
			return -1;
	}
	return 0;
}

int
store_pdf_schema(struct db *db, char **err)
{
	return db_exec(db,
	    "CREATE TABLE IF NOT EXISTS portal_pdf ("
	    " id INTEGER PRIMARY KEY AUTOINCREMENT,"
	    " token TEXT NOT NULL UNIQUE, owner TEXT NOT NULL,"
	    " msg_id INTEGER UNIQUE, state TEXT NOT NULL, password TEXT,"
	    " mail_from TEXT, hdr_from TEXT, subject TEXT,"
	    " date INTEGER NOT NULL, created INTEGER NOT NULL,"
	    " attempts INTEGER NOT NULL DEFAULT 0,"
	    " next_attempt INTEGER NOT NULL DEFAULT 0, pdf_mail TEXT);"
	    "CREATE INDEX IF NOT EXISTS portal_pdf_owner"
	    " ON portal_pdf(owner, id);", err) == -1 ? -1 :
	    store_pdf_migrate(db, err);
}

static void
store_pdf_row(struct store *s, struct db_stmt *st, struct store_pdf *p)
{
	memset(p, 0, sizeof(*p));
	p->id = db_col_int(st, 0);
	store_col_copy(st, 1, p->token, sizeof(p->token));
	store_col_copy(st, 2, p->owner, sizeof(p->owner));
	p->msg_id = db_col_int(st, 3);
	p->state = store_col_dup(st, 4);
	p->password = store_col_dup(st, 5);
	p->mail_from = store_col_dup(st, 6);
	p->hdr_from = store_col_dup(st, 7);
	p->subject = store_col_dup(st, 8);
	if (!db_col_null(st, 9) && s->dir != NULL)
		(void)store_blob_fetch(s, db_col_text(st, 9));
	if (!db_col_null(st, 9) && s->dir != NULL)
		p->msg_path = store_abspath(s, (const char *)
		    db_col_text(st, 9));
	p->pdf_mail = store_col_dup(st, 10);
	p->date = db_col_int(st, 11);
	p->created = db_col_int(st, 12);
	p->attempts = (int)db_col_int(st, 13);
	p->reply_to = store_col_dup(st, 14);
	p->message_id = store_col_dup(st, 15);
	p->refs = store_col_dup(st, 16);
}

void
store_pdf_free(struct store_pdf *p)
{
	free(p->state);
	xfree_secret(&p->password);
	free(p->mail_from);
	free(p->hdr_from);
	free(p->subject);
	free(p->msg_path);
	free(p->pdf_mail);
	free(p->reply_to);
	free(p->message_id);
	free(p->refs);
	memset(p, 0, sizeof(*p));
}

int
store_pdf_adopt(struct store *s, int64_t now)
{
	unsigned char rnd[STORE_PDF_TOKEN_LEN / 2];
	char token[STORE_PDF_TOKEN_LEN + 1];
	struct db *db;
	struct db_stmt *st;
	int64_t *ids = NULL;
	int n = 0, rc;

	if ((db = store_db(s)) == NULL || (st = db_prepare(db, "SELECT id "
	    "FROM portal_messages m WHERE state = 'pdf-pending' AND NOT "
	    "EXISTS (SELECT 1 FROM portal_pdf p WHERE p.msg_id = m.id) "
	    "LIMIT 100")) == NULL)
		return -1;
	while ((rc = db_step(st)) == DB_ROW) {
		ids = xreallocarray(ids, n + 1, sizeof(*ids));
		ids[n++] = db_col_int(st, 0);
	}
	db_finalize(st);
	for (int i = 0; i < n && rc != -1; i++) {
		if (RAND_bytes(rnd, sizeof(rnd)) != 1)
			fatalx("store: no randomness");
		for (size_t j = 0; j < sizeof(rnd); j++)
			snprintf(token + 2 * j, 3, "%02x", rnd[j]);
		rc = db_run(db, "INSERT INTO portal_pdf (token, "
		    "owner, msg_id, state, mail_from, hdr_from, subject, date, "
		    "created, next_attempt) SELECT ?, owner, id, 'render', "
		    "mail_from, hdr_from, subject, date, ?, ? FROM "
		    "portal_messages WHERE id = ? ON CONFLICT DO NOTHING", "tiii", token, now, now,
		    ids[i]);
	}
	free(ids);
	return rc == -1 ? -1 : n;
}

int
store_pdf_next(struct store *s, int64_t now, struct store_pdf *p)
{
	struct db *db;
	struct db_stmt *st;
	int rc = -1;

	if ((db = store_db(s)) == NULL || (st = db_prepare(db, "SELECT "
	    STORE_PDF_COLS STORE_PDF_FROM "WHERE p.state = 'render' AND "
	    "p.next_attempt <= ? ORDER BY p.next_attempt LIMIT 1")) == NULL)
		return -1;
	if (db_bind(st, "i", now) == 0 && (rc = db_step(st)) == DB_ROW)
		store_pdf_row(s, st, p);
	db_finalize(st);
	return rc == DB_ROW ? 0 : rc == DB_DONE ? STORE_NOTFOUND : -1;
}

int
store_pdf_queue(struct store *s, const struct store_pdf *p,
    const char *password, const char *path)
{
	struct db *db;

	if ((db = store_db(s)) == NULL || db_begin(db) == -1)
		return -1;
	if (db_run(db, "UPDATE portal_pdf SET state = 'queued', password = ?, "
	    "pdf_mail = ?, reply_to = ?, message_id = ?, refs = ? WHERE id = ?",
	    "ttttti", password, path, p->reply_to, p->message_id, p->refs,
	    p->id) == -1 ||
	    store_outbox_add(s, STORE_OUTBOX_RAW, p->owner, NULL, NULL, path)
	    == -1 || db_commit(db) == -1) {
		db_rollback(db);
		return -1;
	}
	return 0;
}

int
store_pdf_retry(struct store *s, int64_t id, int64_t next)
{
	struct db *db;

	if ((db = store_db(s)) == NULL)
		return -1;
	return db_run(db, "UPDATE portal_pdf SET attempts = attempts + 1, "
	    "next_attempt = ? WHERE id = ?", "ii", next, id) == -1 ? -1 : 0;
}

int
store_pdf_fail(struct store *s, int64_t id, const char *dsn,
    const char *rcpt)
{
	struct db *db;

	if ((db = store_db(s)) == NULL || db_begin(db) == -1)
		return -1;
	if (db_run(db, "UPDATE portal_pdf SET state = 'failed', "
	    "password = NULL WHERE id = ?", "i", id) == -1 ||
	    (dsn != NULL && store_outbox_add(s, STORE_OUTBOX_RAW, rcpt, NULL,
	    NULL, dsn) == -1) || db_commit(db) == -1) {
		db_rollback(db);
		return -1;
	}
	return 0;
}

int
store_pdf_by_mail(struct store *s, const char *path, struct store_pdf *p)
{
	struct db *db;
	struct db_stmt *st;
	int rc = -1;

	if ((db = store_db(s)) == NULL || (st = db_prepare(db, "SELECT "
	    STORE_PDF_COLS STORE_PDF_FROM "WHERE p.pdf_mail = ?")) == NULL)
		return -1;
	if (db_bind(st, "t", path) == 0 && (rc = db_step(st)) == DB_ROW)
		store_pdf_row(s, st, p);
	db_finalize(st);
	return rc == DB_ROW ? 0 : rc == DB_DONE ? STORE_NOTFOUND : -1;
}

int
store_pdf_sent(struct store *s, int64_t id)
{
	struct store_pdf p;
	struct db *db;
	struct db_stmt *st;
	int rc = -1;

	if ((db = store_db(s)) == NULL || (st = db_prepare(db, "SELECT "
	    STORE_PDF_COLS STORE_PDF_FROM "WHERE p.id = ?")) == NULL)
		return -1;
	if (db_bind(st, "i", id) == 0 && (rc = db_step(st)) == DB_ROW)
		store_pdf_row(s, st, &p);
	db_finalize(st);
	if (rc != DB_ROW)
		return rc == DB_DONE ? STORE_NOTFOUND : -1;
	/*
	 * The content goes first (row, then file: store_msg_delete's
	 * order), then the link to it. The other way round, a message row
	 * still "pdf-pending" but no longer linked looked like one that
	 * never had a PDF row to store_pdf_adopt (another thread, or another
	 * portal), which made it a second one: a second rendering failed on
	 * the deleted file and told the sender the PDF never went out.
	 */
	rc = 0;
	if (p.msg_id != 0 && store_msg_delete(s, p.owner, p.msg_id) == -1)
		rc = -1;
	if (rc == 0 && db_run(db, "UPDATE portal_pdf SET state = 'sent', "
	    "msg_id = NULL, pdf_mail = NULL WHERE id = ?", "i", id) == -1)
		rc = -1;
	store_pdf_free(&p);
	return rc;
}

int
store_pdf_get(struct store *s, const char *owner, const char *token,
    struct store_pdf *p)
{
	char key[STORE_KEY_MAX];
	struct db *db;
	struct db_stmt *st;
	int rc = -1;

	owner = store_key(owner, key, sizeof(key));
	if ((db = store_db(s)) == NULL || (st = db_prepare(db, "SELECT "
	    STORE_PDF_COLS STORE_PDF_FROM "WHERE p.owner = ? AND p.token = ?"))
	    == NULL)
		return -1;
	if (db_bind(st, "tt", owner, token) == 0 &&
	    (rc = db_step(st)) == DB_ROW)
		store_pdf_row(s, st, p);
	db_finalize(st);
	return rc == DB_ROW ? 0 : rc == DB_DONE ? STORE_NOTFOUND : -1;
}

int
store_pdf_list(struct store *s, const char *owner, struct store_pdf *out,
    int limit)
{
	char key[STORE_KEY_MAX];
	struct db *db;
	struct db_stmt *st;
	int n = 0, rc = -1;

	owner = store_key(owner, key, sizeof(key));
	if ((db = store_db(s)) == NULL || (st = db_prepare(db, "SELECT "
	    STORE_PDF_COLS STORE_PDF_FROM "WHERE p.owner = ? ORDER BY p.id "
	    "DESC LIMIT ?")) == NULL)
		return -1;
	if (db_bind(st, "ti", owner, (int64_t)limit) == 0)
		while (n < limit && (rc = db_step(st)) == DB_ROW)
			store_pdf_row(s, st, &out[n++]);
	db_finalize(st);
	if (rc == -1) {
		while (n > 0)
			store_pdf_free(&out[--n]);
		return -1;
	}
	return n;
}

int
store_pdf_expire(struct store *s, int64_t cutoff)
{
	struct db *db;

	if ((db = store_db(s)) == NULL)
		return -1;
	/* Rows still holding content go with their message (retention). */
	return db_run(db, "DELETE FROM portal_pdf WHERE created < ? AND "
	    "(msg_id IS NULL OR msg_id NOT IN (SELECT id FROM "
	    "portal_messages))", "i", cutoff) == -1 ? -1 : 0;
}
