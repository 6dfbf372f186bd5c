/*
 * Portal accounts: single-use tokens for sign-up and password reset. A
 * token is 256 random bits in hex; only its SHA-256 is stored, with an
 * expiry, so a copy of the database cannot be turned into a login.
 */
#ifndef PORTAL_ACCOUNTS_H
#define PORTAL_ACCOUNTS_H

#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

#define ACCOUNTS_TOKEN_BYTES	32
#define ACCOUNTS_TOKEN_LEN	(2 * ACCOUNTS_TOKEN_BYTES)

/*
 * Issues a fresh token of kind for email, valid lifetime seconds. A reset
 * token revokes the earlier live reset tokens of email; sign-up tokens
 * stay valid side by side until each expires. token receives the
 * plain token (wipe it after use). 0 or -1.
 */
int	accounts_token_issue(struct store *, enum store_token_kind,
	    const char *email, int64_t lifetime,
	    char token[ACCOUNTS_TOKEN_LEN + 1]);
/*
 * Redeems a token from a browser (any string): 0 with email set, or
 * STORE_NOTFOUND for a malformed, unknown, used or expired token, or -1.
 */
int	accounts_token_redeem(struct store *, enum store_token_kind,
	    const char *token, char *email, size_t emaillen);
/*
 * Looks a token from a browser up without using it (opening a link must
 * not spend it: mail scanners follow links): 0 with email and *live set,
 * STORE_NOTFOUND for a malformed or unknown token, or -1.
 */
int	accounts_token_peek(struct store *, enum store_token_kind,
	    const char *token, char *email, size_t emaillen, int *live);
/* SHA-256 of token as hex. */
void	accounts_token_hash(const char *token, char out[STORE_HASH_HEX]);

#endif
