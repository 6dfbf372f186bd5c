/*
 * The store's users with what hangs off an account: sign-up and reset
 * tokens, web sessions, sign-in throttling counters, TOTP recovery codes
 * and the server's CSRF key; see store.h. Tokens, session ids and
 * recovery codes are stored only as hashes the callers compute.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>


#include "db.h"
#include "log.h"
#include "store/store_int.h"
#include "xmalloc.h"

#define STORE_USER_COLS "email, state, password_hash, totp_secret, " \
    "totp_enabled, totp_last_step, created"

static void
store_user_row(struct db_stmt *st, struct store_user *u)
{
	memset(u, 0, sizeof(*u));
	store_col_copy(st, 0, u->email, sizeof(u->email));
	u->state = STORE_ENUM(store_user_states,
	    (const char *)db_col_text(st, 1));
	u->password_hash = store_col_dup(st, 2);
	u->totp_secret = store_col_dup(st, 3);
	u->totp_enabled = db_col_int(st, 4);
	u->totp_last_step = db_col_int(st, 5);
	u->created = db_col_int(st, 6);
}

void
store_user_free(struct store_user *u)
{
	xfree_secret(&u->password_hash);
	xfree_secret(&u->totp_secret);
}

int
store_user_get(struct store *s, const char *email, struct store_user *u)
{
	char key[STORE_KEY_MAX];
	struct db *db;
	struct db_stmt *st;
	int rc = -1;

	email = store_key(email, key, sizeof(key));
	if ((db = store_db(s)) == NULL || (st = db_prepare(db, "SELECT "
	    STORE_USER_COLS " FROM portal_users WHERE email = ?")) == NULL)
		return -1;
	if (db_bind(st, "t", email) == 0 && (rc = db_step(st)) == DB_ROW)
		store_user_row(st, u);
	db_finalize(st);
	if (rc == DB_ROW)
		return 0;
	return rc == DB_DONE ? STORE_NOTFOUND : -1;
}

int
store_user_list(struct store *s, void (*cb)(void *, const struct store_user *),
    void *arg)
{
	struct db *db;
	struct db_stmt *st;
	struct store_user u;
	int rc;

	if ((db = store_db(s)) == NULL || (st = db_prepare(db, "SELECT "
	    STORE_USER_COLS " FROM portal_users ORDER BY email")) == NULL)
		return -1;
	while ((rc = db_step(st)) == DB_ROW) {
		store_user_row(st, &u);
		cb(arg, &u);
		store_user_free(&u);
	}
	db_finalize(st);
	return rc == DB_DONE ? 0 : -1;
}

/* db_run()'s result for an UPDATE of one account: 0, STORE_NOTFOUND, -1. */
static int
store_user_changed(int rc)
{
	return rc == -1 ? -1 : rc == 0 ? STORE_NOTFOUND : 0;
}

int
store_user_set_password(struct store *s, const char *email, const char *hash)
{
	char key[STORE_KEY_MAX];
	struct db *db;
	int rc;

	email = store_key(email, key, sizeof(key));
	if ((db = store_db(s)) == NULL || db_begin(db) == -1)
		return -1;
	/* An account with a password has no use for sign-up links. */
	if ((rc = store_user_changed(db_run(db, "UPDATE portal_users SET "
	    "password_hash = ?2, state = 'active' WHERE email = ?1", "tt",
	    email, hash))) != 0 || store_token_revoke(s, STORE_TOKEN_SIGNUP,
	    email) == -1 || db_commit(db) == -1) {
		db_rollback(db);
		return rc == 0 ? -1 : rc;
	}
	return 0;
}

int
store_user_reset_password(struct store *s, const char *email)
{
	char key[STORE_KEY_MAX];
	struct db *db;
	int rc;

	email = store_key(email, key, sizeof(key));
	if ((db = store_db(s)) == NULL || db_begin(db) == -1)
		return -1;
	if ((rc = store_user_changed(db_run(db, "UPDATE portal_users SET "
	    "password_hash = NULL, totp_secret = NULL, totp_enabled = 0, "
	    "state = 'pending', last_invite = 0 WHERE email = ?1", "t",
	    email))) != 0 ||
	    store_token_revoke(s, STORE_TOKEN_SIGNUP, email) == -1 ||
	    store_token_revoke(s, STORE_TOKEN_RESET, email) == -1 ||
	    db_commit(db) == -1) {
		db_rollback(db);
		return rc == 0 ? -1 : rc;
	}
	return 0;
}

int
store_user_set_totp(struct store *s, const char *email, const char *secret,
    int enabled)
{
	char key[STORE_KEY_MAX];
	struct db *db;

	email = store_key(email, key, sizeof(key));
	if ((db = store_db(s)) == NULL)
		return -1;
	return store_user_changed(db_run(db, "UPDATE portal_users SET "
	    "totp_secret = ?2, totp_enabled = ?3, totp_last_step = 0 WHERE "
	    "email = ?1", "tti", email, secret, (int64_t)(enabled != 0)));
}

int
store_user_totp_step(struct store *s, const char *email, int64_t step)
{
	char key[STORE_KEY_MAX];
	struct db *db;
	int rc;

	email = store_key(email, key, sizeof(key));
	if ((db = store_db(s)) == NULL)
		return -1;
	rc = store_user_changed(db_run(db, "UPDATE portal_users SET "
	    "totp_last_step = ?2 WHERE email = ?1 AND totp_last_step < ?2",
	    "ti", email, step));
	return rc == STORE_NOTFOUND ? 1 : rc;
}

int
store_user_delete(struct store *s, const char *email)
{
	char key[STORE_KEY_MAX];
	static const char *const sql[] = {
		"DELETE FROM portal_tokens WHERE email = ?",
		"DELETE FROM portal_outbox WHERE rcpt = ? AND kind != 'raw'",
		"DELETE FROM web_sessions WHERE email = ?",
		"DELETE FROM web_recovery WHERE email = ?",
	};
	struct db *db;
	char **names = NULL;
	size_t n = 0;
	int rc;

	email = store_key(email, key, sizeof(key));
	/* One transaction: nothing of the account outlives its row. */
	if ((db = store_db(s)) == NULL || db_begin(db) == -1)
		return -1;
	if (s->dir != NULL && store_msg_delete_rows(s, "owner = ?1", email, 0,
	    &names, &n) == -1)
		goto fail;
	for (size_t i = 0; i < sizeof(sql) / sizeof(sql[0]); i++)
		if (db_run(db, sql[i], "t", email) == -1)
			goto fail;
	if ((rc = db_run(db, "DELETE FROM portal_users WHERE email = ?", "t",
	    email)) == -1 || db_commit(db) == -1)
		goto fail;
	store_names_unlink(s, names, n);
	return rc > 0 ? 0 : STORE_NOTFOUND;
fail:
	db_rollback(db);
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	return -1;
}

/* --- tokens (only hashes are stored) -------------------------------------- */

int
store_token_put(struct store *s, enum store_token_kind kind,
    const char *hash, const char *email, int64_t expires)
{
	char key[STORE_KEY_MAX];
	struct db *db;

	email = store_key(email, key, sizeof(key));
	if ((db = store_db(s)) == NULL)
		return -1;
	return db_run(db, "INSERT INTO portal_tokens (hash, kind, email, "
	    "expires, created) VALUES (?, ?, ?, ?, ?)", "tttii", hash,
	    store_token_kinds[kind], email, expires, (int64_t)time(NULL))
	    == -1 ? -1 : 0;
}

int
store_token_consume(struct store *s, enum store_token_kind kind,
    const char *hash, int64_t now, char *email, size_t emaillen)
{
	struct db *db;
	struct db_stmt *st;
	int rc = -1;

	if ((db = store_db(s)) == NULL || (st = db_prepare(db, "UPDATE "
	    "portal_tokens SET used = 1 WHERE hash = ? AND kind = ? AND "
	    "used = 0 AND expires > ? RETURNING email")) == NULL)
		return -1;
	/* One statement: of concurrent callers exactly one gets the row. */
	if (db_bind(st, "tti", hash, store_token_kinds[kind], now) == 0 &&
	    (rc = db_step(st)) == DB_ROW)
		store_col_copy(st, 0, email, emaillen);
	if (rc == DB_ROW && db_step(st) == -1)
		rc = -1;
	db_finalize(st);
	if (rc == DB_ROW)
		return 0;
	return rc == DB_DONE ? STORE_NOTFOUND : -1;
}

int
store_token_peek(struct store *s, enum store_token_kind kind,
    const char *hash, int64_t now, char *email, size_t emaillen, int *live)
{
	struct db *db;
	struct db_stmt *st;
	int rc = -1;

	if ((db = store_db(s)) == NULL || (st = db_prepare(db, "SELECT email, "
	    "used = 0 AND expires > ? FROM portal_tokens WHERE hash = ? AND "
	    "kind = ?")) == NULL)
		return -1;
	if (db_bind(st, "itt", now, hash, store_token_kinds[kind]) == 0 &&
	    (rc = db_step(st)) == DB_ROW) {
		store_col_copy(st, 0, email, emaillen);
		*live = db_col_int(st, 1);
	}
	db_finalize(st);
	if (rc == DB_ROW)
		return 0;
	return rc == DB_DONE ? STORE_NOTFOUND : -1;
}

int
store_token_revoke(struct store *s, enum store_token_kind kind,
    const char *email)
{
	char key[STORE_KEY_MAX];
	struct db *db;

	email = store_key(email, key, sizeof(key));
	if ((db = store_db(s)) == NULL)
		return -1;
	return db_run(db, "UPDATE portal_tokens SET used = 1 WHERE email = ? "
	    "AND kind = ? AND used = 0", "tt", email, store_token_kinds[kind])
	    == -1 ? -1 : 0;
}

/* --- web sessions ---------------------------------------------------------- */

int
store_session_put(struct store *s, const char *hash, const char *email,
    int stage, int64_t now)
{
	char key[STORE_KEY_MAX];
	struct db *db;

	email = store_key(email, key, sizeof(key));
	if ((db = store_db(s)) == NULL)
		return -1;
	/* The account's generation: a re-created account is another one. */
	return db_run(db, "INSERT INTO web_sessions (id_hash, email, stage, "
	    "created, last_seen, user_gen) SELECT ?1, ?2, ?3, ?4, ?4, "
	    "generation FROM portal_users WHERE email = ?2", "ttii", hash,
	    email, (int64_t)stage, now) == 1 ? 0 : -1;
}

int
store_session_get(struct store *s, const char *hash, int64_t now,
    int64_t idle, int64_t absolute, char *email, size_t emaillen, int *stage)
{
	struct db *db;
	struct db_stmt *st;
	int64_t created, last;
	int rc = -1, live;

	if ((db = store_db(s)) == NULL || (st = db_prepare_cached(db,
	    "SELECT s.email, s.stage, s.created, s.last_seen, u.email IS NOT NULL "
	    "FROM web_sessions s LEFT JOIN portal_users u ON u.email = "
	    "s.email AND u.generation = s.user_gen WHERE s.id_hash = ?"))
	    == NULL)
		return -1;
	if (db_bind(st, "t", hash) == 0)
		rc = db_step(st);
	if (rc != DB_ROW) {
		db_finalize(st);
		return rc == DB_DONE ? STORE_NOTFOUND : -1;
	}
	store_col_copy(st, 0, email, emaillen);
	*stage = db_col_int(st, 1);
	created = db_col_int(st, 2);
	last = db_col_int(st, 3);
	live = db_col_int(st, 4);
	db_finalize(st);
	if (!live || now - last > idle || now - created > absolute) {
		/* Expired, or its account is gone or was created anew. */
		email[0] = '\0';
		(void)store_session_delete(s, hash);
		return STORE_NOTFOUND;
	}
	/*
	 * last_seen is written at most every idle/8 seconds (at most a
	 * minute), not on every request: each write is a commit with an
	 * fsync, and serialises the web workers. The session may so end up
	 * to that much earlier than idle after its last request, never
	 * later.
	 */
	if (now - last >= (idle / 8 < 60 ? idle / 8 : 60))
		(void)db_run(db, "UPDATE web_sessions SET last_seen = ? "
		    "WHERE id_hash = ?", "it", now, hash);
	return 0;
}

int
store_session_delete(struct store *s, const char *hash)
{
	struct db *db;

	if ((db = store_db(s)) == NULL)
		return -1;
	return db_run(db, "DELETE FROM web_sessions WHERE id_hash = ?", "t",
	    hash) == -1 ? -1 : 0;
}

int
store_session_delete_all(struct store *s, const char *email)
{
	char key[STORE_KEY_MAX];
	struct db *db;

	email = store_key(email, key, sizeof(key));
	if ((db = store_db(s)) == NULL)
		return -1;
	return db_run(db, "DELETE FROM web_sessions WHERE email = ?", "t",
	    email) == -1 ? -1 : 0;
}

int
store_key_get(struct store *s, const char *name, const unsigned char *fresh,
    unsigned char *out, size_t len)
{
	struct db *db;
	struct db_stmt *st;
	int rc = -1;

	if ((db = store_db(s)) == NULL)
		return -1;
	/* The first process to start wins; later ones read its key. */
	if (db_run(db, "INSERT INTO web_keys (name, value) "
	    "VALUES (?, ?) ON CONFLICT DO NOTHING", "tb", name, fresh, len) == -1 ||
	    (st = db_prepare(db, "SELECT value FROM web_keys WHERE name = ?"))
	    == NULL)
		return -1;
	if (db_bind(st, "t", name) == 0 && db_step(st) == DB_ROW &&
	    (size_t)db_col_bytes(st, 0) == len) {
		memcpy(out, db_col_blob(st, 0), len);
		rc = 0;
	}
	db_finalize(st);
	return rc;
}

/* --- sign-in throttling ------------------------------------------------------ */

int
store_throttle_get(struct store *s, const char *key, int64_t *failures,
    int64_t *last)
{
	struct db *db;
	struct db_stmt *st;
	int rc = -1;

	*failures = *last = 0;
	if ((db = store_db(s)) == NULL || (st = db_prepare(db, "SELECT "
	    "failures, last FROM web_throttle WHERE key = ?")) == NULL)
		return -1;
	if (db_bind(st, "t", key) == 0 && (rc = db_step(st)) == DB_ROW) {
		*failures = db_col_int(st, 0);
		*last = db_col_int(st, 1);
	}
	db_finalize(st);
	return rc == -1 ? -1 : 0;
}

int
store_throttle_fail(struct store *s, const char *key, int64_t now)
{
	struct db *db;
	struct db_stmt *st;
	int n = -1;

	/* The old count named by its table: PostgreSQL refuses it bare. */
	if ((db = store_db(s)) == NULL || (st = db_prepare(db, "INSERT INTO "
	    "web_throttle (key, failures, last) VALUES (?, 1, ?) ON "
	    "CONFLICT(key) DO UPDATE SET failures = web_throttle.failures + "
	    "1, last = excluded.last RETURNING failures")) == NULL)
		return -1;
	if (db_bind(st, "ti", key, now) == 0 && db_step(st) == DB_ROW) {
		n = db_col_int(st, 0);
		if (db_step(st) == -1)
			n = -1;
	}
	db_finalize(st);
	return n;
}

int
store_throttle_clear(struct store *s, const char *key)
{
	struct db *db;

	if ((db = store_db(s)) == NULL)
		return -1;
	return db_run(db, "DELETE FROM web_throttle WHERE key = ?", "t", key)
	    == -1 ? -1 : 0;
}

/* --- TOTP recovery codes (hashes) ---------------------------------------------- */

int
store_recovery_set(struct store *s, const char *email, char hashes[][65],
    size_t n)
{
	char key[STORE_KEY_MAX];
	struct db *db;

	email = store_key(email, key, sizeof(key));
	if ((db = store_db(s)) == NULL || db_begin(db) == -1)
		return -1;
	if (db_run(db, "DELETE FROM web_recovery WHERE email = ?", "t",
	    email) == -1)
		goto fail;
	for (size_t i = 0; i < n; i++)
		if (db_run(db, "INSERT INTO web_recovery (email, "
		    "hash) VALUES (?, ?) ON CONFLICT DO NOTHING", "tt", email, hashes[i]) == -1)
			goto fail;
	if (db_commit(db) == -1)
		goto fail;
	return 0;
fail:
	db_rollback(db);
	return -1;
}

int
store_recovery_use(struct store *s, const char *email, const char *hash)
{
	char key[STORE_KEY_MAX];
	struct db *db;
	int rc;

	email = store_key(email, key, sizeof(key));
	if ((db = store_db(s)) == NULL)
		return -1;
	/* Deleting the row is the single-use check: one caller wins. */
	rc = db_run(db, "DELETE FROM web_recovery WHERE email = ? AND "
	    "hash = ?", "tt", email, hash);
	return rc == -1 ? -1 : rc == 1;
}

int
store_recovery_clear(struct store *s, const char *email)
{
	char key[STORE_KEY_MAX];
	struct db *db;

	email = store_key(email, key, sizeof(key));
	if ((db = store_db(s)) == NULL)
		return -1;
	return db_run(db, "DELETE FROM web_recovery WHERE email = ?", "t",
	    email) == -1 ? -1 : 0;
}
