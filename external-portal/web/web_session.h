/*
 * Web-side state in the portal database: sessions (only the SHA-256 of a
 * session id is stored), sign-in throttling counters per account and per
 * client address, TOTP recovery code hashes, and the server's CSRF key.
 * The tables and their SQL are the store's (store.h); this module keeps
 * the web's rules on top. Safe from several threads.
 */
#ifndef PORTAL_WEB_SESSION_H
#define PORTAL_WEB_SESSION_H

#include <stddef.h>
#include <stdint.h>

#include "web/web_cookie.h"

struct web_sessions;

/* Session stages: the password was right; 2FA too (or not enabled). */
#define WEB_SESSION_HALF	0
#define WEB_SESSION_FULL	1

#define WEB_SESSION_CSRF_KEY_LEN 32

struct web_sessions *web_session_open(const char *dbpath, char **err);
void	 web_session_close(struct web_sessions *);
const unsigned char *web_session_csrf_key(struct web_sessions *);

/* A new session for email; sid receives the id for the cookie. 0 or -1. */
int	 web_session_create(struct web_sessions *, const char *email,
	    int stage, int64_t now, char sid[WEB_SESSION_ID_LEN + 1]);
/*
 * Looks sid up; a session idle longer than idle or older than absolute
 * seconds, or whose account was deleted (or deleted and created again),
 * is deleted and not found. 0 with email and *stage set,
 * 1 when not found, -1 on a database error. Touches last_seen.
 */
int	 web_session_find(struct web_sessions *, const char *sid,
	    int64_t now, int64_t idle, int64_t absolute, char *email,
	    size_t emaillen, int *stage);
int	 web_session_end(struct web_sessions *, const char *sid);
/* Ends every session of email. */
int	 web_session_end_all(struct web_sessions *, const char *email);

/*
 * Throttling by key ("acct:<email>", "addr:<ip>"). After free_attempts
 * failures each further failure doubles the wait (base seconds first,
 * 15 minutes at most). Returns the seconds still to wait, 0 when an
 * attempt is allowed, -1 on a database error.
 */
int64_t	 web_session_throttle_wait(struct web_sessions *, const char *key,
	    int64_t now, int free_attempts, int64_t base);
/* Counts a failure; returns the failure count (or -1). */
int	 web_session_throttle_fail(struct web_sessions *, const char *key,
	    int64_t now);
int	 web_session_throttle_clear(struct web_sessions *, const char *key);

/* Replaces the recovery code hashes of email. */
int	 web_session_recovery_set(struct web_sessions *, const char *email,
	    char hashes[][65], size_t n);
/* 1 when code was an unused recovery code of email (now used), 0, -1. */
int	 web_session_recovery_use(struct web_sessions *, const char *email,
	    const char *code);
int	 web_session_recovery_clear(struct web_sessions *, const char *email);

#endif
