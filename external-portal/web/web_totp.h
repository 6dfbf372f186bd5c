/*
 * Two-step verification for portal accounts: RFC 6238 TOTP (HMAC-SHA-1,
 * 30-second steps, 6 digits, liboath) with a one-use-per-step rule, the
 * otpauth:// enrolment URI, and single-use recovery codes stored as
 * SHA-256 hashes. Codes come from browsers; they are bounded and compared
 * in constant time.
 */
#ifndef POSTERN_WEB_TOTP_H
#define POSTERN_WEB_TOTP_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define WEB_TOTP_STEP		30
#define WEB_TOTP_DIGITS		6
#define WEB_TOTP_SECRET_BYTES	20	/* 160 bits, RFC 4226's advice */
#define WEB_TOTP_SECRET_B32	32	/* base32 characters for 20 bytes */

#define WEB_TOTP_RECOVERY_COUNT	10
#define WEB_TOTP_RECOVERY_LEN	10	/* characters; ~49 bits each */
#define WEB_TOTP_HASH_HEX	64

/* A fresh random secret, base32 without padding (caller frees). */
char	*web_totp_secret_new(void);

/*
 * otpauth://totp/<issuer>:<email>?secret=...&issuer=...&algorithm=SHA1
 * &digits=6&period=30, every part percent-encoded (caller frees).
 */
char	*web_totp_uri(const char *issuer, const char *email,
	    const char *secret_b32);

/* The code for time t into out (6 digits + NUL); -1 on a bad secret. */
int	 web_totp_code(const char *secret_b32, time_t t,
	    char out[WEB_TOTP_DIGITS + 1]);

/*
 * Checks code (digits, spaces allowed) against the steps now-1, now and
 * now+1. A match on a step <= last_step is refused (each code works once;
 * use -1 when none was used yet). Returns 1 and sets *matched_step, which
 * the caller must store as the new last_step; 0 on no match; -1 when the
 * stored secret is not valid base32.
 */
int	 web_totp_verify(const char *secret_b32, const char *code, time_t now,
	    int64_t last_step, int64_t *matched_step);

/*
 * Fills codes[] with n fresh recovery codes (unambiguous alphabet, no 0/O,
 * 1/I/L) and hashes[] with their SHA-256 hex for storage.
 */
void	 web_totp_recovery_new(char codes[][WEB_TOTP_RECOVERY_LEN + 1],
	    char hashes[][WEB_TOTP_HASH_HEX + 1], size_t n);
/* SHA-256 hex of a code as typed (case, spaces and dashes ignored). */
void	 web_totp_recovery_hash(const char *code,
	    char out[WEB_TOTP_HASH_HEX + 1]);
/*
 * Index of the stored hash code matches (NULL entries are used-up codes),
 * or -1. Every entry is compared, in constant time.
 */
int	 web_totp_recovery_match(const char *code, const char *const *hashes,
	    size_t n);

#endif
