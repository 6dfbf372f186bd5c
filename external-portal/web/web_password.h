/*
 * Portal account passwords: Argon2id hashing in the PHC encoded form
 * ("$argon2id$v=19$m=...,t=...,p=...$salt$hash"), constant-time
 * verification, and the password policy shown to and enforced on the
 * recipient choosing one. Hashing costs tens of milliseconds and memory by
 * design: call it from the worker pool, never on the event loop.
 */
#ifndef POSTERN_WEB_PASSWORD_H
#define POSTERN_WEB_PASSWORD_H

#include <stddef.h>
#include <stdint.h>

#define WEB_PASSWORD_MAX_BYTES		1024

struct web_password_cost {
	uint32_t	t_cost;		/* iterations */
	uint32_t	m_cost_kib;	/* memory, KiB */
	uint32_t	parallelism;
};

/* t=3, m=64 MiB, p=1: OWASP's Argon2id floor with margin. */
extern const struct web_password_cost web_password_cost_default;

/*
 * Encoded Argon2id hash of pw with a fresh 16-byte salt (caller frees), or
 * NULL after log_warnx when hashing failed (out of memory, bad cost).
 */
char	*web_password_hash(const char *pw, const struct web_password_cost *);

/* 1 when pw matches encoded, 0 when not or when encoded is malformed. */
int	 web_password_verify(const char *encoded, const char *pw);

/* 1 when encoded was made with other costs than cost (rehash on login). */
int	 web_password_needs_rehash(const char *encoded,
	    const struct web_password_cost *);

/*
 * NULL when pw is acceptable for the account email, else the web_text key
 * of the reason ("password.too_short", "password.common", ...). min_len
 * counts characters (code points): the account's password-min-length
 * property, the one place the minimum is set (0 is a programming error).
 */
const char *web_password_check(const char *pw, const char *email,
	    size_t min_len);

/* The rules as one sentence for the page (caller frees). */
char	*web_password_rules_text(size_t min_len);

#endif
