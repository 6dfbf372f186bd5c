/*
 * Session cookies and CSRF tokens for the portal's web side. Session ids
 * are 256-bit random values in base64url; only their SHA-256 is stored, so
 * a copy of the database does not hold live sessions. CSRF tokens are
 * HMAC-SHA256(server key, session id): bound to the session, nothing to
 * store. Cookies are "__Host-" cookies: Secure, HttpOnly, SameSite=Strict,
 * Path=/, no Domain.
 */
#ifndef POSTERN_WEB_COOKIE_H
#define POSTERN_WEB_COOKIE_H

#include <stddef.h>

#define WEB_COOKIE_HEADER_MAX	8192	/* longer Cookie headers: 400 */
#define WEB_SESSION_ID_LEN	43	/* base64url of 32 bytes, unpadded */
#define WEB_SESSION_HASH_HEX	64
#define WEB_CSRF_TOKEN_LEN	43
#define WEB_CSRF_KEY_MIN	32

/*
 * Finds cookie "__Host-<name>" in a Cookie request header and copies its
 * value to out. Pairs with any other name are skipped unparsed, whatever
 * they hold (a tracker cookie of a sibling site must not lock us out).
 * Returns 1 when found, 0 when absent, -1 when the header is too long,
 * our pair is malformed, its value does not fit outlen, or the name
 * appears twice (an attacker-planted duplicate must not win by order).
 */
int	 web_cookie_get(const char *header, const char *name, char *out,
	    size_t outlen);

/*
 * Set-Cookie value "__Host-<name>=<value>; Path=/; Secure; HttpOnly;
 * SameSite=Strict" (plus Max-Age when max_age >= 0). name is given without
 * the prefix. Invalid name or value characters are a programming error.
 */
char	*web_cookie_set(const char *name, const char *value, long max_age);
/* Set-Cookie value that deletes the cookie. */
char	*web_cookie_clear(const char *name);

/* A fresh random session id. */
void	 web_session_new(char out[WEB_SESSION_ID_LEN + 1]);
/* 1 if s looks like a session id we issue (length, alphabet). */
int	 web_session_valid(const char *s);
/* SHA-256 hex of a session id, the form stored in the database. */
void	 web_session_hash(const char *sid, char out[WEB_SESSION_HASH_HEX + 1]);

/* The CSRF token for a session. key is at least WEB_CSRF_KEY_MIN bytes. */
void	 web_csrf_token(const unsigned char *key, size_t keylen,
	    const char *sid, char out[WEB_CSRF_TOKEN_LEN + 1]);
/* 1 when token is the session's token (constant-time compare), else 0. */
int	 web_csrf_check(const unsigned char *key, size_t keylen,
	    const char *sid, const char *token);

#endif
