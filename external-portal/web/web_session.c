/*
 * Web sessions, throttling counters, recovery codes and the CSRF key in
 * the portal's SQLite database (see web_session.h). Every value from a
 * browser reaches SQL only as a bound parameter; session ids and recovery
 * codes only as their SHA-256.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <sqlite3.h>

#include "db.h"
#include "log.h"
#include "web/web_session.h"
#include "web/web_totp.h"
#include "xmalloc.h"

#define WEB_SESSION_MAX_DELAY	900

struct web_sessions {
	struct sqlite3	*db;
	pthread_mutex_t	 mtx;
	unsigned char	 csrf_key[WEB_SESSION_CSRF_KEY_LEN];
};

static const char web_session_schema[] =
    "CREATE TABLE IF NOT EXISTS web_sessions ("
    " id_hash TEXT PRIMARY KEY, email TEXT NOT NULL,"
    " stage INTEGER NOT NULL, created INTEGER NOT NULL,"
    " last_seen INTEGER NOT NULL);"
    "CREATE INDEX IF NOT EXISTS web_sessions_email ON web_sessions(email);"
    "CREATE TABLE IF NOT EXISTS web_throttle ("
    " key TEXT PRIMARY KEY, failures INTEGER NOT NULL,"
    " last INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS web_recovery ("
    " email TEXT NOT NULL, hash TEXT NOT NULL, PRIMARY KEY(email, hash));"
    "CREATE TABLE IF NOT EXISTS web_keys ("
    " name TEXT PRIMARY KEY, value BLOB NOT NULL);";

static void
web_session_lock(struct web_sessions *ws)
{
	if (pthread_mutex_lock(&ws->mtx) != 0)
		fatalx("web_session: mutex lock");
}

static void
web_session_unlock(struct web_sessions *ws)
{
	pthread_mutex_unlock(&ws->mtx);
}

static sqlite3_stmt *
web_session_prepare(struct web_sessions *ws, const char *sql)
{
	sqlite3_stmt *st;

	if (sqlite3_prepare_v2(ws->db, sql, -1, &st, NULL) != SQLITE_OK) {
		log_warnx("web_session: %s", sqlite3_errmsg(ws->db));
		return NULL;
	}
	return st;
}

/* Runs a statement without rows; 0 or -1. */
static int
web_session_step_done(struct web_sessions *ws, sqlite3_stmt *st)
{
	int rc = sqlite3_step(st);

	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		log_warnx("web_session: %s", sqlite3_errmsg(ws->db));
		return -1;
	}
	return 0;
}

static int
web_session_exec(struct web_sessions *ws, const char *sql)
{
	char *err = NULL;

	if (db_exec(ws->db, sql, &err) == -1) {
		log_warnx("web_session: %s", err);
		free(err);
		return -1;
	}
	return 0;
}

static int
web_session_key_load(struct web_sessions *ws)
{
	sqlite3_stmt *st;
	unsigned char k[WEB_SESSION_CSRF_KEY_LEN];
	int rc;

	if (RAND_bytes(k, sizeof(k)) != 1)
		fatalx("web_session: RAND_bytes failed");
	/* The first process to start wins; later ones read its key. */
	if ((st = web_session_prepare(ws, "INSERT OR IGNORE INTO web_keys "
	    "(name, value) VALUES ('csrf', ?)")) == NULL)
		return -1;
	sqlite3_bind_blob(st, 1, k, sizeof(k), SQLITE_TRANSIENT);
	OPENSSL_cleanse(k, sizeof(k));
	if (web_session_step_done(ws, st) == -1)
		return -1;
	if ((st = web_session_prepare(ws, "SELECT value FROM web_keys "
	    "WHERE name = 'csrf'")) == NULL)
		return -1;
	rc = sqlite3_step(st);
	if (rc != SQLITE_ROW || sqlite3_column_bytes(st, 0) !=
	    WEB_SESSION_CSRF_KEY_LEN) {
		sqlite3_finalize(st);
		log_warnx("web_session: the CSRF key in the database is bad");
		return -1;
	}
	memcpy(ws->csrf_key, sqlite3_column_blob(st, 0),
	    WEB_SESSION_CSRF_KEY_LEN);
	sqlite3_finalize(st);
	return 0;
}

struct web_sessions *
web_session_open(const char *dbpath, char **err)
{
	struct web_sessions *ws = xcalloc(1, sizeof(*ws));

	if ((ws->db = db_open(dbpath, err)) == NULL) {
		free(ws);
		return NULL;
	}
	pthread_mutex_init(&ws->mtx, NULL);
	if (db_exec(ws->db, web_session_schema, err) == -1)
		goto fail;
	if (web_session_key_load(ws) == -1) {
		*err = xstrdup("cannot load the CSRF key");
		goto fail;
	}
	return ws;
 fail:
	web_session_close(ws);
	return NULL;
}

void
web_session_close(struct web_sessions *ws)
{
	if (ws == NULL)
		return;
	db_close(ws->db);
	pthread_mutex_destroy(&ws->mtx);
	OPENSSL_cleanse(ws->csrf_key, sizeof(ws->csrf_key));
	free(ws);
}

const unsigned char *
web_session_csrf_key(struct web_sessions *ws)
{
	return ws->csrf_key;
}

int
web_session_create(struct web_sessions *ws, const char *email, int stage,
    int64_t now, char sid[WEB_SESSION_ID_LEN + 1])
{
	char hash[WEB_SESSION_HASH_HEX + 1];
	sqlite3_stmt *st;
	int rc;

	web_session_new(sid);
	web_session_hash(sid, hash);
	web_session_lock(ws);
	if ((st = web_session_prepare(ws, "INSERT INTO web_sessions "
	    "(id_hash, email, stage, created, last_seen) "
	    "VALUES (?, ?, ?, ?, ?)")) == NULL) {
		web_session_unlock(ws);
		return -1;
	}
	sqlite3_bind_text(st, 1, hash, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(st, 2, email, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int(st, 3, stage);
	sqlite3_bind_int64(st, 4, now);
	sqlite3_bind_int64(st, 5, now);
	rc = web_session_step_done(ws, st);
	web_session_unlock(ws);
	return rc;
}

static int
web_session_delete_hash(struct web_sessions *ws, const char *hash)
{
	sqlite3_stmt *st;

	if ((st = web_session_prepare(ws, "DELETE FROM web_sessions "
	    "WHERE id_hash = ?")) == NULL)
		return -1;
	sqlite3_bind_text(st, 1, hash, -1, SQLITE_TRANSIENT);
	return web_session_step_done(ws, st);
}

int
web_session_find(struct web_sessions *ws, const char *sid, int64_t now,
    int64_t idle, int64_t absolute, char *email, size_t emaillen,
    int *stage)
{
	char hash[WEB_SESSION_HASH_HEX + 1];
	sqlite3_stmt *st;
	int64_t created, last;
	int rc;

	if (!web_session_valid(sid))
		return 1;
	web_session_hash(sid, hash);
	web_session_lock(ws);
	if ((st = web_session_prepare(ws, "SELECT email, stage, created, "
	    "last_seen FROM web_sessions WHERE id_hash = ?")) == NULL) {
		web_session_unlock(ws);
		return -1;
	}
	sqlite3_bind_text(st, 1, hash, -1, SQLITE_TRANSIENT);
	if ((rc = sqlite3_step(st)) != SQLITE_ROW) {
		sqlite3_finalize(st);
		web_session_unlock(ws);
		return rc == SQLITE_DONE ? 1 : -1;
	}
	snprintf(email, emaillen, "%s", sqlite3_column_text(st, 0));
	*stage = sqlite3_column_int(st, 1);
	created = sqlite3_column_int64(st, 2);
	last = sqlite3_column_int64(st, 3);
	sqlite3_finalize(st);
	if (now - last > idle || now - created > absolute) {
		web_session_delete_hash(ws, hash);
		web_session_unlock(ws);
		return 1;
	}
	if ((st = web_session_prepare(ws, "UPDATE web_sessions SET "
	    "last_seen = ? WHERE id_hash = ?")) != NULL) {
		sqlite3_bind_int64(st, 1, now);
		sqlite3_bind_text(st, 2, hash, -1, SQLITE_TRANSIENT);
		web_session_step_done(ws, st);
	}
	web_session_unlock(ws);
	return 0;
}

int
web_session_end(struct web_sessions *ws, const char *sid)
{
	char hash[WEB_SESSION_HASH_HEX + 1];
	int rc;

	if (!web_session_valid(sid))
		return 0;
	web_session_hash(sid, hash);
	web_session_lock(ws);
	rc = web_session_delete_hash(ws, hash);
	web_session_unlock(ws);
	return rc;
}

int
web_session_end_all(struct web_sessions *ws, const char *email)
{
	sqlite3_stmt *st;
	int rc = -1;

	web_session_lock(ws);
	if ((st = web_session_prepare(ws, "DELETE FROM web_sessions "
	    "WHERE email = ?")) != NULL) {
		sqlite3_bind_text(st, 1, email, -1, SQLITE_TRANSIENT);
		rc = web_session_step_done(ws, st);
	}
	web_session_unlock(ws);
	return rc;
}

int64_t
web_session_throttle_wait(struct web_sessions *ws, const char *key,
    int64_t now, int free_attempts, int64_t base)
{
	sqlite3_stmt *st;
	int64_t failures, last, delay;
	int rc;

	web_session_lock(ws);
	if ((st = web_session_prepare(ws, "SELECT failures, last FROM "
	    "web_throttle WHERE key = ?")) == NULL) {
		web_session_unlock(ws);
		return -1;
	}
	sqlite3_bind_text(st, 1, key, -1, SQLITE_TRANSIENT);
	rc = sqlite3_step(st);
	if (rc != SQLITE_ROW) {
		sqlite3_finalize(st);
		web_session_unlock(ws);
		return rc == SQLITE_DONE ? 0 : -1;
	}
	failures = sqlite3_column_int64(st, 0);
	last = sqlite3_column_int64(st, 1);
	sqlite3_finalize(st);
	web_session_unlock(ws);
	if (failures < free_attempts)
		return 0;
	delay = base;
	for (int64_t i = free_attempts; i < failures &&
	    delay < WEB_SESSION_MAX_DELAY; i++)
		delay *= 2;
	if (delay > WEB_SESSION_MAX_DELAY)
		delay = WEB_SESSION_MAX_DELAY;
	return last + delay > now ? last + delay - now : 0;
}

int
web_session_throttle_fail(struct web_sessions *ws, const char *key,
    int64_t now)
{
	sqlite3_stmt *st;
	int n = -1;

	web_session_lock(ws);
	if ((st = web_session_prepare(ws, "INSERT INTO web_throttle "
	    "(key, failures, last) VALUES (?, 1, ?) ON CONFLICT(key) DO "
	    "UPDATE SET failures = failures + 1, last = excluded.last "
	    "RETURNING failures")) != NULL) {
		sqlite3_bind_text(st, 1, key, -1, SQLITE_TRANSIENT);
		sqlite3_bind_int64(st, 2, now);
		if (sqlite3_step(st) == SQLITE_ROW)
			n = sqlite3_column_int(st, 0);
		else
			log_warnx("web_session: %s", sqlite3_errmsg(ws->db));
		sqlite3_finalize(st);
	}
	web_session_unlock(ws);
	return n;
}

int
web_session_throttle_clear(struct web_sessions *ws, const char *key)
{
	sqlite3_stmt *st;
	int rc = -1;

	web_session_lock(ws);
	if ((st = web_session_prepare(ws, "DELETE FROM web_throttle "
	    "WHERE key = ?")) != NULL) {
		sqlite3_bind_text(st, 1, key, -1, SQLITE_TRANSIENT);
		rc = web_session_step_done(ws, st);
	}
	web_session_unlock(ws);
	return rc;
}

static int
web_session_recovery_delete(struct web_sessions *ws, const char *email)
{
	sqlite3_stmt *st;

	if ((st = web_session_prepare(ws, "DELETE FROM web_recovery "
	    "WHERE email = ?")) == NULL)
		return -1;
	sqlite3_bind_text(st, 1, email, -1, SQLITE_TRANSIENT);
	return web_session_step_done(ws, st);
}

int
web_session_recovery_set(struct web_sessions *ws, const char *email,
    char hashes[][65], size_t n)
{
	sqlite3_stmt *st;
	int rc = 0;

	web_session_lock(ws);
	web_session_exec(ws, "BEGIN IMMEDIATE");
	if (web_session_recovery_delete(ws, email) == -1)
		rc = -1;
	for (size_t i = 0; rc == 0 && i < n; i++) {
		if ((st = web_session_prepare(ws, "INSERT OR IGNORE INTO "
		    "web_recovery (email, hash) VALUES (?, ?)")) == NULL) {
			rc = -1;
			break;
		}
		sqlite3_bind_text(st, 1, email, -1, SQLITE_TRANSIENT);
		sqlite3_bind_text(st, 2, hashes[i], -1, SQLITE_TRANSIENT);
		rc = web_session_step_done(ws, st);
	}
	if (web_session_exec(ws, rc == 0 ? "COMMIT" : "ROLLBACK") == -1)
		rc = -1;
	web_session_unlock(ws);
	return rc;
}

int
web_session_recovery_use(struct web_sessions *ws, const char *email,
    const char *code)
{
	char hash[WEB_TOTP_HASH_HEX + 1];
	sqlite3_stmt *st;
	int rc = -1;

	if (strlen(code) > 64)
		return 0;
	web_totp_recovery_hash(code, hash);
	web_session_lock(ws);
	/* Deleting the row is the single-use check: one caller wins. */
	if ((st = web_session_prepare(ws, "DELETE FROM web_recovery "
	    "WHERE email = ? AND hash = ?")) != NULL) {
		sqlite3_bind_text(st, 1, email, -1, SQLITE_TRANSIENT);
		sqlite3_bind_text(st, 2, hash, -1, SQLITE_TRANSIENT);
		if (web_session_step_done(ws, st) == 0)
			rc = sqlite3_changes(ws->db) == 1;
	}
	web_session_unlock(ws);
	return rc;
}

int
web_session_recovery_clear(struct web_sessions *ws, const char *email)
{
	int rc;

	web_session_lock(ws);
	rc = web_session_recovery_delete(ws, email);
	web_session_unlock(ws);
	return rc;
}
