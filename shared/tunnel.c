/*
 * The add-on tunnel's manifest and entity layout (tunnel.h), shared by the
 * gateway that writes them and the portal that reads them.
 *
 * SECURITY: on the portal, tunnel_unpack and tunnel_manifest_parse read
 * bytes that were decrypted but not yet authenticated: anyone who has the
 * portal's public tunnel certificate can make them. Every line and part
 * has a hard bound, the layout is fixed (no general MIME parsing), and
 * every number is range-checked. The manifest is only trusted after its
 * signature verified, and the message only after its size and digest
 * matched the manifest.
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>
#include <openssl/rand.h>

#include "addr.h"
#include "log.h"
#include "tunnel.h"
#include "xmalloc.h"

#define TUNNEL_LINE_MAX	1024
#define TUNNEL_CHUNK	65536

const char *
tunnel_route_name(enum tunnel_route r)
{
	return r == TUNNEL_ROUTE_PDF ? "pdf-otp" : "webmail";
}

int
tunnel_route_parse(const char *s, enum tunnel_route *out)
{
	if (strcmp(s, "webmail") == 0)
		*out = TUNNEL_ROUTE_WEBMAIL;
	else if (strcmp(s, "pdf-otp") == 0)
		*out = TUNNEL_ROUTE_PDF;
	else
		return -1;
	return 0;
}

static void
tunnel_hex(const unsigned char *p, size_t n, char *out)
{
	static const char hex[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++) {
		out[2 * i] = hex[p[i] >> 4];
		out[2 * i + 1] = hex[p[i] & 15];
	}
	out[2 * n] = '\0';
}

void
tunnel_id_new(char out[TUNNEL_ID_LEN + 1])
{
	unsigned char r[TUNNEL_ID_LEN / 2];

	if (RAND_bytes(r, sizeof(r)) != 1)
		fatalx("tunnel: RAND_bytes");
	tunnel_hex(r, sizeof(r), out);
}

void
tunnel_id_derive(const char *seed, enum tunnel_route route,
    const char *const *rcpts, size_t nrcpts, char out[TUNNEL_ID_LEN + 1])
{
	static const char label[] = "postern tunnel id 1";
	unsigned char md[32];
	const char *r = tunnel_route_name(route);
	EVP_MD_CTX *ctx;

	/* Every field ends in a NUL: no two inputs hash the same bytes. */
	if ((ctx = EVP_MD_CTX_new()) == NULL ||
	    !EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) ||
	    !EVP_DigestUpdate(ctx, label, sizeof(label)) ||
	    !EVP_DigestUpdate(ctx, seed, strlen(seed) + 1) ||
	    !EVP_DigestUpdate(ctx, r, strlen(r) + 1))
		fatalx("tunnel: SHA-256 unavailable");
	for (size_t i = 0; i < nrcpts; i++)
		if (!EVP_DigestUpdate(ctx, rcpts[i], strlen(rcpts[i]) + 1))
			fatalx("tunnel: EVP_DigestUpdate");
	if (!EVP_DigestFinal_ex(ctx, md, NULL))
		fatalx("tunnel: EVP_DigestFinal_ex");
	EVP_MD_CTX_free(ctx);
	tunnel_hex(md, TUNNEL_ID_LEN / 2, out);
}

void
tunnel_boundary_new(char out[TUNNEL_BOUNDARY_MAX + 1])
{
	unsigned char r[16];

	/* "=_" never occurs in base64 text. */
	if (RAND_bytes(r, sizeof(r)) != 1)
		fatalx("tunnel: RAND_bytes");
	memcpy(out, "=_tunnel_", 9);
	tunnel_hex(r, sizeof(r), out + 9);
}

static int
tunnel_is_hex(const char *s, size_t n)
{
	if (strlen(s) != n)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!isdigit((unsigned char)s[i]) &&
		    (s[i] < 'a' || s[i] > 'f'))
			return 0;
	return 1;
}

char *
tunnel_manifest_format(const struct tunnel_manifest *m)
{
	char *s, *t;

	if (!tunnel_is_hex(m->id, TUNNEL_ID_LEN) ||
	    !tunnel_is_hex(m->sha256, 64) || m->nrcpts == 0 ||
	    m->nrcpts > TUNNEL_MAX_RCPTS || m->size < 0)
		return NULL;
	xasprintf(&s, "Postern-Tunnel: %d\r\nId: %s\r\nTime: %lld\r\n"
	    "Route: %s\r\nSize: %lld\r\nSHA256: %s\r\n", TUNNEL_VERSION, m->id,
	    m->time, tunnel_route_name(m->route), m->size, m->sha256);
	for (size_t i = 0; i < m->nrcpts; i++) {
		if (strpbrk(m->rcpts[i], "\r\n") != NULL) {
			free(s);
			return NULL;
		}
		xasprintf(&t, "%sRecipient: %s\r\n", s, m->rcpts[i]);
		free(s);
		s = t;
	}
	return s;
}

/* A decimal in 0..max, digits only. */
static int
tunnel_number(const char *s, long long max, long long *out)
{
	long long v = 0;

	if (*s == '\0' || strlen(s) > 19)
		return -1;
	for (; *s != '\0'; s++) {
		if (!isdigit((unsigned char)*s))
			return -1;
		if (v > (max - (*s - '0')) / 10)
			return -1;
		v = v * 10 + (*s - '0');
	}
	*out = v;
	return 0;
}

void
tunnel_manifest_free(struct tunnel_manifest *m)
{
	for (size_t i = 0; i < m->nrcpts; i++)
		free(m->rcpts[i]);
	free(m->rcpts);
	memset(m, 0, sizeof(*m));
}

int
tunnel_manifest_parse(const char *buf, size_t len,
    struct tunnel_manifest *m, const char **why)
{
	static const char *const names[] = {
		"Postern-Tunnel", "Id", "Time", "Route", "Size", "SHA256",
		"Recipient",
	};
	char line[TUNNEL_LINE_MAX], *v;
	const char *p = buf, *end = buf + len, *eol;
	size_t field = 0, n;
	long long num;
	struct addr a;

	memset(m, 0, sizeof(*m));
	*why = "malformed manifest";
	if (len > TUNNEL_MAX_MANIFEST) {
		*why = "manifest too large";
		return -1;
	}
	while (p < end) {
		if ((eol = memchr(p, '\n', end - p)) == NULL || eol == p ||
		    eol[-1] != '\r') {
			*why = "manifest line not ended by CRLF";
			goto bad;
		}
		n = eol - 1 - p;
		if (n >= sizeof(line) || memchr(p, '\0', n) != NULL) {
			*why = "manifest line too long or holds NUL";
			goto bad;
		}
		memcpy(line, p, n);
		line[n] = '\0';
		p = eol + 1;
		if ((v = strstr(line, ": ")) == NULL) {
			*why = "manifest line without a field name";
			goto bad;
		}
		*v = '\0';
		v += 2;
		/* Fixed order; only Recipient repeats. */
		if (field < 6 && strcmp(line, names[field]) == 0)
			field++;
		else if (field >= 6 && strcmp(line, "Recipient") == 0)
			field = 7;
		else {
			*why = "manifest field unknown, missing or out of "
			    "order";
			goto bad;
		}
		switch (field) {
		case 1:
			if (strcmp(v, "1") != 0) {
				*why = "unknown manifest version";
				goto bad;
			}
			break;
		case 2:
			if (!tunnel_is_hex(v, TUNNEL_ID_LEN)) {
				*why = "bad tunnel id";
				goto bad;
			}
			memcpy(m->id, v, TUNNEL_ID_LEN + 1);
			break;
		case 3:
			if (tunnel_number(v, LLONG_MAX, &m->time) == -1) {
				*why = "bad manifest time";
				goto bad;
			}
			break;
		case 4:
			if (tunnel_route_parse(v, &m->route) == -1) {
				*why = "unknown route";
				goto bad;
			}
			break;
		case 5:
			if (tunnel_number(v, LLONG_MAX, &num) == -1) {
				*why = "bad manifest size";
				goto bad;
			}
			m->size = num;
			break;
		case 6:
			if (!tunnel_is_hex(v, 64)) {
				*why = "bad manifest digest";
				goto bad;
			}
			memcpy(m->sha256, v, 65);
			break;
		default:
			if (m->nrcpts == TUNNEL_MAX_RCPTS) {
				*why = "too many recipients";
				goto bad;
			}
			if (addr_parse(v, 1, &a, why) == -1 || *v == '\0')
				goto bad;
			m->rcpts = xreallocarray(m->rcpts, m->nrcpts + 1,
			    sizeof(*m->rcpts));
			m->rcpts[m->nrcpts++] = xstrdup(v);
		}
	}
	if (m->nrcpts == 0) {
		*why = field < 6 ? "manifest incomplete" :
		    "manifest names no recipient";
		goto bad;
	}
	return 0;
bad:
	tunnel_manifest_free(m);
	return -1;
}

/*
 * One line without its CRLF into line (NUL-terminated). 0, 1 at end of
 * file, -1 when longer than max or not ended by CRLF.
 */
static int
tunnel_getline(FILE *in, char *line, size_t max, size_t *len)
{
	size_t n = 0;
	int c;

	while ((c = getc(in)) != EOF) {
		if (c == '\n') {
			if (n == 0 || line[n - 1] != '\r')
				return -1;
			line[--n] = '\0';
			*len = n;
			return 0;
		}
		if (n + 1 >= max || c == '\0')
			return -1;
		line[n++] = (char)c;
	}
	return n == 0 ? 1 : -1;
}

static int
tunnel_expect(FILE *in, const char *want)
{
	char line[TUNNEL_LINE_MAX];
	size_t n;

	return tunnel_getline(in, line, sizeof(line), &n) == 0 &&
	    strcmp(line, want) == 0 ? 0 : -1;
}

/* The boundary parameter of the entity's Content-Type line. */
static int
tunnel_boundary_of(const char *line, char *out)
{
	static const char pre[] = "Content-Type: multipart/mixed; boundary=\"";
	const char *b;
	size_t n;

	if (strncasecmp(line, pre, sizeof(pre) - 1) != 0)
		return -1;
	b = line + sizeof(pre) - 1;
	n = strcspn(b, "\"");
	if (n == 0 || n > TUNNEL_BOUNDARY_MAX || strcmp(b + n, "\"") != 0)
		return -1;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)b[i]) && strchr("=_.-", b[i]) ==
		    NULL)
			return -1;
	memcpy(out, b, n);
	out[n] = '\0';
	return 0;
}

/*
 * The lines of a part up to the delimiter "--B" into a buffer of at most
 * max bytes, CRLFs kept, the CRLF before the delimiter dropped. The
 * delimiter must be followed by another part ("--B" alone).
 */
static char *
tunnel_part(FILE *in, const char *delim, size_t max, size_t *outlen)
{
	char line[TUNNEL_LINE_MAX], *buf = NULL;
	size_t n, len = 0;

	for (;;) {
		if (tunnel_getline(in, line, sizeof(line), &n) != 0)
			break;
		if (strcmp(line, delim) == 0) {
			if (len < 2)
				break;
			len -= 2;	/* the CRLF belongs to the delimiter */
			buf[len] = '\0';
			*outlen = len;
			return buf;
		}
		if (len + n + 3 > max)
			break;
		buf = xreallocarray(buf, len + n + 3, 1);
		memcpy(buf + len, line, n);
		memcpy(buf + len + n, "\r\n", 3);
		len += n + 2;
	}
	free(buf);
	return NULL;
}

void
tunnel_parts_free(struct tunnel_parts *p)
{
	free(p->manifest);
	free(p->sig);
	memset(p, 0, sizeof(*p));
}

int
tunnel_unpack(FILE *in, struct tunnel_parts *p, const char **why)
{
	char line[TUNNEL_LINE_MAX], delim[TUNNEL_BOUNDARY_MAX + 3];
	char *b64 = NULL, *q, *w;
	size_t n, b64len;
	int got = 0, dec;

	memset(p, 0, sizeof(*p));
	*why = "not a tunnel entity";
	/* The entity's header: Content-* fields, one of them the type. */
	for (;;) {
		if (tunnel_getline(in, line, sizeof(line), &n) != 0)
			goto bad;
		if (n == 0)
			break;
		if (tunnel_boundary_of(line, p->boundary) == 0)
			got = 1;
		else if (strncasecmp(line, "Content-", 8) != 0 &&
		    strncasecmp(line, "MIME-Version:", 13) != 0)
			goto bad;
	}
	if (!got)
		goto bad;
	snprintf(delim, sizeof(delim), "--%s", p->boundary);
	if (tunnel_expect(in, delim) == -1 ||
	    tunnel_expect(in, "Content-Type: " TUNNEL_MANIFEST_TYPE) == -1 ||
	    tunnel_expect(in, "") == -1) {
		*why = "no manifest part";
		goto bad;
	}
	if ((p->manifest = tunnel_part(in, delim, TUNNEL_MAX_MANIFEST + 2,
	    &p->manifest_len)) == NULL) {
		*why = "manifest part malformed or too large";
		goto bad;
	}
	if (tunnel_getline(in, line, sizeof(line), &n) != 0)
		goto bad;
	if (strcmp(line, "Content-Type: message/rfc822") == 0) {
		/* Unsigned: the caller refuses it, naming the reason. */
		if (tunnel_expect(in, "") == -1)
			goto bad;
		return 0;
	}
	if (strcmp(line, "Content-Type: application/pkcs7-signature; "
	    "name=manifest.p7s") != 0 ||
	    tunnel_expect(in, "Content-Transfer-Encoding: base64") == -1 ||
	    tunnel_expect(in, "") == -1) {
		*why = "no signature part";
		goto bad;
	}
	if ((b64 = tunnel_part(in, delim, TUNNEL_MAX_SIG * 2, &b64len)) ==
	    NULL) {
		*why = "signature part malformed or too large";
		goto bad;
	}
	for (q = w = b64; *q != '\0'; q++)
		if (*q != '\r' && *q != '\n')
			*w++ = *q;
	*w = '\0';
	b64len = w - b64;
	p->sig = xmalloc(b64len / 4 * 3 + 3);
	if (b64len % 4 != 0 || (dec = EVP_DecodeBlock(p->sig,
	    (unsigned char *)b64, (int)b64len)) < 0) {
		*why = "signature is not base64";
		goto bad;
	}
	p->sig_len = (size_t)dec;
	if (b64len >= 1 && b64[b64len - 1] == '=')
		p->sig_len--;
	if (b64len >= 2 && b64[b64len - 2] == '=')
		p->sig_len--;
	free(b64);
	b64 = NULL;
	if (tunnel_expect(in, "Content-Type: message/rfc822") == -1 ||
	    tunnel_expect(in, "") == -1) {
		*why = "no message part";
		goto bad;
	}
	return 0;
bad:
	free(b64);
	tunnel_parts_free(p);
	return -1;
}

int
tunnel_copy_message(FILE *in, const char *boundary, long long size,
    FILE *out, char sha256[65], const char **why)
{
	unsigned char md[32], *buf = xmalloc(TUNNEL_CHUNK);
	char tail[TUNNEL_BOUNDARY_MAX + 10], want[TUNNEL_BOUNDARY_MAX + 10];
	EVP_MD_CTX *ctx;
	size_t n, tl;
	int rv = -1;

	if ((ctx = EVP_MD_CTX_new()) == NULL ||
	    !EVP_DigestInit_ex(ctx, EVP_sha256(), NULL))
		fatalx("tunnel: EVP_DigestInit_ex");
	*why = "message part shorter than the manifest says";
	while (size > 0) {
		n = size < TUNNEL_CHUNK ? (size_t)size : TUNNEL_CHUNK;
		if (fread(buf, 1, n, in) != n)
			goto out;
		if (!EVP_DigestUpdate(ctx, buf, n))
			fatalx("tunnel: EVP_DigestUpdate");
		if (fwrite(buf, 1, n, out) != n) {
			rv = -2;
			goto out;
		}
		size -= n;
	}
	if (!EVP_DigestFinal_ex(ctx, md, NULL))
		fatalx("tunnel: EVP_DigestFinal_ex");
	tunnel_hex(md, sizeof(md), sha256);
	/* Nothing but the closing delimiter may follow. */
	tl = snprintf(want, sizeof(want), "\r\n--%s--\r\n", boundary);
	n = fread(tail, 1, sizeof(tail), in);
	if (n != tl || memcmp(tail, want, tl) != 0) {
		*why = "message part longer than the manifest says";
		goto out;
	}
	rv = 0;
out:
	EVP_MD_CTX_free(ctx);
	free(buf);
	return rv;
}
