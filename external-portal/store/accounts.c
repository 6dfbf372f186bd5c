/*
 * Sign-up and reset tokens; see accounts.h. The token given to redeem
 * comes from a browser: it is length- and charset-checked before it is
 * hashed, and never logged.
 */
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "store/accounts.h"
#include "log.h"

static void
accounts_hex(const unsigned char *b, size_t n, char *out)
{
	static const char hex[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++) {
		out[2 * i] = hex[b[i] >> 4];
		out[2 * i + 1] = hex[b[i] & 0xf];
	}
	out[2 * n] = '\0';
}

void
accounts_token_hash(const char *token, char out[STORE_HASH_HEX])
{
	unsigned char md[32];
	unsigned int mdlen = sizeof(md);

	if (EVP_Digest(token, strlen(token), md, &mdlen, EVP_sha256(), NULL)
	    != 1)
		fatalx("accounts: SHA-256 failed");
	accounts_hex(md, sizeof(md), out);
}

int
accounts_token_issue(struct store *s, enum store_token_kind kind,
    const char *email, int64_t lifetime, char token[ACCOUNTS_TOKEN_LEN + 1])
{
	unsigned char r[ACCOUNTS_TOKEN_BYTES];
	char hash[STORE_HASH_HEX];

	if (RAND_bytes(r, sizeof(r)) != 1)
		fatalx("accounts: RAND_bytes failed");
	accounts_hex(r, sizeof(r), token);
	OPENSSL_cleanse(r, sizeof(r));
	accounts_token_hash(token, hash);
	/*
	 * A reset link replaces the earlier one; sign-up links (the
	 * invitation and its reminders) each stay valid until they expire.
	 */
	if ((kind == STORE_TOKEN_RESET &&
	    store_token_revoke(s, kind, email) == -1) ||
	    store_token_put(s, kind, hash, email, time(NULL) + lifetime)
	    == -1) {
		OPENSSL_cleanse(token, ACCOUNTS_TOKEN_LEN + 1);
		return -1;
	}
	return 0;
}

int
accounts_token_redeem(struct store *s, enum store_token_kind kind,
    const char *token, char *email, size_t emaillen)
{
	char hash[STORE_HASH_HEX];

	if (token == NULL || strlen(token) != ACCOUNTS_TOKEN_LEN ||
	    strspn(token, "0123456789abcdef") != ACCOUNTS_TOKEN_LEN)
		return STORE_NOTFOUND;
	accounts_token_hash(token, hash);
	return store_token_consume(s, kind, hash, time(NULL), email, emaillen);
}

int
accounts_token_peek(struct store *s, enum store_token_kind kind,
    const char *token, char *email, size_t emaillen, int *live)
{
	char hash[STORE_HASH_HEX];

	if (token == NULL || strlen(token) != ACCOUNTS_TOKEN_LEN ||
	    strspn(token, "0123456789abcdef") != ACCOUNTS_TOKEN_LEN)
		return STORE_NOTFOUND;
	accounts_token_hash(token, hash);
	return store_token_peek(s, kind, hash, time(NULL), email, emaillen,
	    live);
}
