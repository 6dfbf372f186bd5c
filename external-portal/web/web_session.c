/*
 * Web sessions, throttling, recovery codes and the CSRF key: the web-facing
 * rules (hashing session ids and recovery codes, the throttling delays);
 * their SQL is the store's (store_user.c). See web_session.h.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "log.h"
#include "store/store.h"
#include "web/web_session.h"
#include "web/web_totp.h"
#include "xmalloc.h"

#define WEB_SESSION_MAX_DELAY	900

struct web_sessions {
	struct store	*store;		/* metadata only */
	unsigned char	 csrf_key[WEB_SESSION_CSRF_KEY_LEN];
};

struct web_sessions *
web_session_open(const char *dbpath, char **err)
{
	struct web_sessions *ws = xcalloc(1, sizeof(*ws));
	unsigned char k[WEB_SESSION_CSRF_KEY_LEN];
	int rc;

	if ((ws->store = store_open(dbpath, NULL, 0, err)) == NULL) {
		free(ws);
		return NULL;
	}
	if (RAND_bytes(k, sizeof(k)) != 1)
		fatalx("web_session: RAND_bytes failed");
	rc = store_key_get(ws->store, "csrf", k, ws->csrf_key,
	    sizeof(ws->csrf_key));
	OPENSSL_cleanse(k, sizeof(k));
	if (rc == -1) {
		*err = xstrdup("cannot load the CSRF key");
		web_session_close(ws);
		return NULL;
	}
	return ws;
}

void
web_session_close(struct web_sessions *ws)
{
	if (ws == NULL)
		return;
	store_close(ws->store);
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

	web_session_new(sid);
	web_session_hash(sid, hash);
	return store_session_put(ws->store, hash, email, stage, now);
}

int
web_session_find(struct web_sessions *ws, const char *sid, int64_t now,
    int64_t idle, int64_t absolute, char *email, size_t emaillen,
    int *stage)
{
	char hash[WEB_SESSION_HASH_HEX + 1];
	int rc;

	if (!web_session_valid(sid))
		return 1;
	web_session_hash(sid, hash);
	rc = store_session_get(ws->store, hash, now, idle, absolute, email,
	    emaillen, stage);
	return rc == STORE_NOTFOUND ? 1 : rc;
}

int
web_session_end(struct web_sessions *ws, const char *sid)
{
	char hash[WEB_SESSION_HASH_HEX + 1];

	if (!web_session_valid(sid))
		return 0;
	web_session_hash(sid, hash);
	return store_session_delete(ws->store, hash);
}

int
web_session_end_all(struct web_sessions *ws, const char *email)
{
	return store_session_delete_all(ws->store, email);
}

int64_t
web_session_throttle_wait(struct web_sessions *ws, const char *key,
    int64_t now, int free_attempts, int64_t base)
{
	int64_t failures, last, delay;

	if (store_throttle_get(ws->store, key, &failures, &last) == -1)
		return -1;
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
	return store_throttle_fail(ws->store, key, now);
}

int
web_session_throttle_clear(struct web_sessions *ws, const char *key)
{
	return store_throttle_clear(ws->store, key);
}

int
web_session_recovery_set(struct web_sessions *ws, const char *email,
    char hashes[][65], size_t n)
{
	return store_recovery_set(ws->store, email, hashes, n);
}

int
web_session_recovery_use(struct web_sessions *ws, const char *email,
    const char *code)
{
	char hash[WEB_TOTP_HASH_HEX + 1];

	if (strlen(code) > 64)
		return 0;
	web_totp_recovery_hash(code, hash);
	return store_recovery_use(ws->store, email, hash);
}

int
web_session_recovery_clear(struct web_sessions *ws, const char *email)
{
	return store_recovery_clear(ws->store, email);
}
