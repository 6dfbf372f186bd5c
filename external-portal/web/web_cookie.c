/*
 * Cookies, session ids and CSRF tokens (see web_cookie.h). The Cookie
 * header is browser input: it is length-bounded, parsed in place without
 * copies beyond the caller's buffer. Pairs that are not ours are skipped
 * without parsing; any oddity in ours is an error the caller answers with
 * 400 or treats as "no session".
 *
 * SECURITY: the Cookie header comes from any client, and other sites on
 * the parent domain can set cookies in it. It is bounded by
 * WEB_COOKIE_HEADER_MAX; only our own prefixed names are looked at; a
 * session id is only a key to look up, never trusted for its content, and
 * the CSRF token is compared in constant time.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "log.h"
#include "xmalloc.h"
#include "web/web_cookie.h"

#define WEB_COOKIE_PREFIX	"__Host-"

static const char web_cookie_b64url[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* RFC 6265 cookie-octet. */
static int
web_cookie_octet(unsigned char c)
{
	return c == 0x21 || (c >= 0x23 && c <= 0x2b) ||
	    (c >= 0x2d && c <= 0x3a) || (c >= 0x3c && c <= 0x5b) ||
	    (c >= 0x5d && c <= 0x7e);
}

/* RFC 7230 tchar, the cookie-name alphabet. */
static int
web_cookie_tchar(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9') || (c != 0 && strchr("!#$%&'*+-.^_`|~",
	    c) != NULL);
}

/*
 * Parses the value of our own cookie strictly: cookie-octets, optionally
 * in double quotes, then only white space up to the end of the pair.
 * Returns the end of the pair, or NULL when it does not parse.
 */
static const char *
web_cookie_value(const char *p, const char **v, const char **ve)
{
	*v = p;
	if (*p == '"') {
		*v = ++p;
		while (web_cookie_octet((unsigned char)*p))
			p++;
		if (*p != '"')
			return NULL;
		*ve = p++;
	} else {
		while (web_cookie_octet((unsigned char)*p))
			p++;
		*ve = p;
	}
	while (*p == ' ' || *p == '\t')
		p++;
	return *p == ';' || *p == '\0' ? p : NULL;
}

int
web_cookie_get(const char *header, const char *name, char *out,
    size_t outlen)
{
	const char	*p = header, *n, *v, *ve;
	size_t		 nlen, vlen, plen = strlen(WEB_COOKIE_PREFIX);
	size_t		 want = plen + strlen(name);
	int		 found = 0;

	if (strlen(header) > WEB_COOKIE_HEADER_MAX)
		return -1;
	for (; *p != '\0'; p += *p == ';') {
		while (*p == ' ' || *p == '\t')
			p++;
		for (n = p; web_cookie_tchar((unsigned char)*p); p++)
			;
		nlen = (size_t)(p - n);
		if (nlen != want || memcmp(n, WEB_COOKIE_PREFIX, plen) != 0 ||
		    memcmp(n + plen, name, nlen - plen) != 0) {
			/*
			 * Not ours: other sites on the parent domain may set
			 * cookies we cannot parse. Skip to the next pair; a
			 * ';' never occurs inside a valid cookie value.
			 */
			p += strcspn(p, ";");
			continue;
		}
		if (*p != '=' || (p = web_cookie_value(p + 1, &v, &ve)) ==
		    NULL)
			return -1;
		if (found)
			return -1;
		vlen = (size_t)(ve - v);
		if (vlen >= outlen)
			return -1;
		memcpy(out, v, vlen);
		out[vlen] = '\0';
		found = 1;
	}
	return found;
}

static char *
web_cookie_build(const char *name, const char *value, const char *extra)
{
	const char	*p;
	char		*s;

	if (*name == '\0')
		fatalx("web_cookie_set: empty cookie name");
	for (p = name; *p != '\0'; p++)
		if (!web_cookie_tchar((unsigned char)*p))
			fatalx("web_cookie_set: bad cookie name");
	for (p = value; *p != '\0'; p++)
		if (!web_cookie_octet((unsigned char)*p))
			fatalx("web_cookie_set: bad cookie value");
	xasprintf(&s, WEB_COOKIE_PREFIX "%s=%s; Path=/; Secure; HttpOnly; "
	    "SameSite=Strict%s", name, value, extra);
	return s;
}

char *
web_cookie_set(const char *name, const char *value, long max_age)
{
	char	 extra[40] = "";

	if (max_age >= 0)
		snprintf(extra, sizeof(extra), "; Max-Age=%ld", max_age);
	return web_cookie_build(name, value, extra);
}

char *
web_cookie_clear(const char *name)
{
	return web_cookie_build(name, "", "; Max-Age=0");
}

/* base64url without padding of 32 bytes: exactly 43 characters. */
static void
web_cookie_b64(const unsigned char in[32], char out[44])
{
	size_t		 i, o = 0;
	unsigned int	 acc = 0, bits = 0;

	for (i = 0; i < 32; i++) {
		acc = (acc << 8) | in[i];
		bits += 8;
		while (bits >= 6) {
			bits -= 6;
			out[o++] = web_cookie_b64url[(acc >> bits) & 0x3f];
		}
	}
	if (bits > 0)
		out[o++] = web_cookie_b64url[(acc << (6 - bits)) & 0x3f];
	out[o] = '\0';
}

void
web_session_new(char out[WEB_SESSION_ID_LEN + 1])
{
	unsigned char	 raw[32];

	if (RAND_bytes(raw, sizeof(raw)) != 1)
		fatalx("web_session_new: RAND_bytes failed");
	web_cookie_b64(raw, out);
	OPENSSL_cleanse(raw, sizeof(raw));
}

int
web_session_valid(const char *s)
{
	size_t	 i;

	for (i = 0; s[i] != '\0'; i++)
		if (i >= WEB_SESSION_ID_LEN ||
		    strchr(web_cookie_b64url, s[i]) == NULL)
			return 0;
	return i == WEB_SESSION_ID_LEN;
}

void
web_session_hash(const char *sid, char out[WEB_SESSION_HASH_HEX + 1])
{
	unsigned char	 md[32];
	unsigned int	 mdlen, i;

	if (EVP_Digest(sid, strlen(sid), md, &mdlen, EVP_sha256(), NULL) != 1)
		fatalx("web_session_hash: SHA-256 failed");
	for (i = 0; i < mdlen; i++)
		snprintf(out + 2 * i, 3, "%02x", md[i]);
}

void
web_csrf_token(const unsigned char *key, size_t keylen, const char *sid,
    char out[WEB_CSRF_TOKEN_LEN + 1])
{
	unsigned char	 mac[32];
	unsigned int	 maclen = sizeof(mac);

	if (keylen < WEB_CSRF_KEY_MIN)
		fatalx("web_csrf_token: key shorter than %d bytes",
		    WEB_CSRF_KEY_MIN);
	if (HMAC(EVP_sha256(), key, (int)keylen, (const unsigned char *)sid,
	    strlen(sid), mac, &maclen) == NULL || maclen != sizeof(mac))
		fatalx("web_csrf_token: HMAC-SHA256 failed");
	web_cookie_b64(mac, out);
	OPENSSL_cleanse(mac, sizeof(mac));
}

int
web_csrf_check(const unsigned char *key, size_t keylen, const char *sid,
    const char *token)
{
	char	 want[WEB_CSRF_TOKEN_LEN + 1];
	int	 ok;

	if (strlen(token) != WEB_CSRF_TOKEN_LEN || !web_session_valid(sid))
		return 0;
	web_csrf_token(key, keylen, sid, want);
	ok = CRYPTO_memcmp(want, token, WEB_CSRF_TOKEN_LEN) == 0;
	OPENSSL_cleanse(want, sizeof(want));
	return ok;
}
