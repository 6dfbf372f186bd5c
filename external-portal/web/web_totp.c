/*
 * TOTP and recovery codes (see web_totp.h). The code a browser sends is
 * peer input: it is reduced to at most six digits before anything else and
 * compared with CRYPTO_memcmp. Secrets are wiped after use.
 */
#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <liboath/oath.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "log.h"
#include "xmalloc.h"
#include "web/web_text.h"
#include "web/web_totp.h"

/* No 0/O, 1/I/L: codes are read off paper and typed by hand. */
static const char web_totp_alphabet[] = "23456789ABCDEFGHJKMNPQRSTUVWXYZ";

static pthread_once_t web_totp_once = PTHREAD_ONCE_INIT;

static void
web_totp_init(void)
{
	if (oath_init() != OATH_OK)
		fatalx("oath_init failed");
}

char *
web_totp_secret_new(void)
{
	unsigned char	 raw[WEB_TOTP_SECRET_BYTES];
	char		*b32 = NULL, *out;
	size_t		 len;

	pthread_once(&web_totp_once, web_totp_init);
	if (RAND_bytes(raw, sizeof(raw)) != 1)
		fatalx("web_totp_secret_new: RAND_bytes failed");
	if (oath_base32_encode((char *)raw, sizeof(raw), &b32, &len) !=
	    OATH_OK || len != WEB_TOTP_SECRET_B32)
		fatalx("web_totp_secret_new: base32 encoding failed");
	OPENSSL_cleanse(raw, sizeof(raw));
	out = xstrndup(b32, len);
	OPENSSL_cleanse(b32, len);
	free(b32);
	return out;
}

static void
web_totp_pct(struct web_buf *b, const char *s)
{
	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;

		if (isalnum(c) || strchr("-._~@", c) != NULL)
			web_buf_add(b, &c, 1);
		else
			web_buf_addf(b, "%%%02X", c);
	}
}

char *
web_totp_uri(const char *issuer, const char *email, const char *secret_b32)
{
	struct web_buf	 b = { 0 };

	web_buf_adds(&b, "otpauth://totp/");
	web_totp_pct(&b, issuer);
	web_buf_adds(&b, ":");
	web_totp_pct(&b, email);
	web_buf_adds(&b, "?secret=");
	web_totp_pct(&b, secret_b32);
	web_buf_adds(&b, "&issuer=");
	web_totp_pct(&b, issuer);
	web_buf_adds(&b, "&algorithm=SHA1&digits=6&period=30");
	return web_buf_finish(&b);
}

/* Decoded secret into *raw (caller cleanses and frees), or -1. */
static int
web_totp_secret_decode(const char *b32, char **raw, size_t *len)
{
	pthread_once(&web_totp_once, web_totp_init);
	*raw = NULL;
	if (oath_base32_decode(b32, strlen(b32), raw, len) != OATH_OK ||
	    *len == 0) {
		free(*raw);
		*raw = NULL;
		return -1;
	}
	return 0;
}

int
web_totp_code(const char *secret_b32, time_t t, char out[WEB_TOTP_DIGITS + 1])
{
	char	*raw;
	size_t	 len;
	int	 rc;

	if (web_totp_secret_decode(secret_b32, &raw, &len) == -1)
		return -1;
	rc = oath_totp_generate(raw, len, t, WEB_TOTP_STEP, 0,
	    WEB_TOTP_DIGITS, out);
	OPENSSL_cleanse(raw, len);
	free(raw);
	return rc == OATH_OK ? 0 : -1;
}

int
web_totp_verify(const char *secret_b32, const char *code, time_t now,
    int64_t last_step, int64_t *matched_step)
{
	char	 digits[WEB_TOTP_DIGITS + 1], want[WEB_TOTP_DIGITS + 1];
	char	*raw;
	size_t	 len, n = 0;
	int64_t	 step, s, found = -1;

	for (; *code != '\0'; code++) {
		if (*code == ' ')
			continue;
		if (!isdigit((unsigned char)*code) || n == WEB_TOTP_DIGITS)
			return 0;
		digits[n++] = *code;
	}
	if (n != WEB_TOTP_DIGITS || now < 0)
		return 0;
	digits[n] = '\0';
	if (web_totp_secret_decode(secret_b32, &raw, &len) == -1)
		return -1;
	step = (int64_t)now / WEB_TOTP_STEP;
	for (s = step - 1; s <= step + 1; s++) {
		if (s < 0)
			continue;
		if (oath_totp_generate(raw, len, (time_t)(s * WEB_TOTP_STEP),
		    WEB_TOTP_STEP, 0, WEB_TOTP_DIGITS, want) != OATH_OK)
			continue;
		if (CRYPTO_memcmp(want, digits, WEB_TOTP_DIGITS) == 0 &&
		    s > last_step && found == -1)
			found = s;
	}
	OPENSSL_cleanse(raw, len);
	free(raw);
	OPENSSL_cleanse(want, sizeof(want));
	if (found == -1)
		return 0;
	*matched_step = found;
	return 1;
}

void
web_totp_recovery_hash(const char *code, char out[WEB_TOTP_HASH_HEX + 1])
{
	unsigned char	 md[32];
	char		 norm[64];
	size_t		 n = 0;
	unsigned int	 mdlen;

	/* Longer input cannot be a code; it still hashes to something. */
	for (; *code != '\0' && n < sizeof(norm); code++) {
		if (*code == ' ' || *code == '-')
			continue;
		norm[n++] = (char)toupper((unsigned char)*code);
	}
	if (EVP_Digest(norm, n, md, &mdlen, EVP_sha256(), NULL) != 1)
		fatalx("web_totp_recovery_hash: SHA-256 failed");
	for (unsigned int i = 0; i < mdlen; i++)
		snprintf(out + 2 * i, 3, "%02x", md[i]);
	OPENSSL_cleanse(norm, sizeof(norm));
}

void
web_totp_recovery_new(char codes[][WEB_TOTP_RECOVERY_LEN + 1],
    char hashes[][WEB_TOTP_HASH_HEX + 1], size_t n)
{
	const size_t	 alen = sizeof(web_totp_alphabet) - 1;
	unsigned char	 r;
	size_t		 i, k;

	for (i = 0; i < n; i++) {
		for (k = 0; k < WEB_TOTP_RECOVERY_LEN; ) {
			if (RAND_bytes(&r, 1) != 1)
				fatalx("web_totp_recovery_new: RAND_bytes");
			/* Reject to stay uniform over the alphabet. */
			if (r >= 256 - 256 % alen)
				continue;
			codes[i][k++] = web_totp_alphabet[r % alen];
		}
		codes[i][k] = '\0';
		web_totp_recovery_hash(codes[i], hashes[i]);
	}
}

int
web_totp_recovery_match(const char *code, const char *const *hashes,
    size_t n)
{
	char	 h[WEB_TOTP_HASH_HEX + 1];
	size_t	 i;
	int	 found = -1;

	web_totp_recovery_hash(code, h);
	for (i = 0; i < n; i++) {
		if (hashes[i] == NULL || strlen(hashes[i]) != WEB_TOTP_HASH_HEX)
			continue;
		if (CRYPTO_memcmp(h, hashes[i], WEB_TOTP_HASH_HEX) == 0 &&
		    found == -1)
			found = (int)i;
	}
	return found;
}
