/*
 * Address parsing and the split-mode rewrite codec; see addr.h.
 *
 * SECURITY: addresses come from SMTP peers (MAIL FROM, RCPT TO on both
 * nodes) and from browsers (compose, sign-in). Input of ADDR_MAX bytes or
 * more is refused before it is looked at; 8-bit bytes only with SMTPUTF8
 * and only as well-formed UTF-8 (the shared validator, text.h); domain
 * labels are checked for length and characters; the rewrite and its
 * revert re-parse their own result, so a crafted address cannot come out
 * longer than ADDR_MAX or in another syntax than it went in.
 */
#include <arpa/inet.h>

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <glib.h>

#include "addr.h"
#include "text.h"

/* RFC 5322 atext, plus any non-ASCII byte when UTF-8 is allowed. */
static int
addr_is_atext(unsigned char c, int utf8)
{
	if (c >= 0x80)
		return utf8;
	return isalnum(c) || strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL;
}

int
addr_local_is_dot_atom(const char *local)
{
	const unsigned char *p = (const unsigned char *)local;
	int prevdot = 1;

	if (*p == '\0')
		return 0;
	for (; *p != '\0'; p++) {
		if (*p == '.') {
			if (prevdot)
				return 0;
			prevdot = 1;
		} else if (addr_is_atext(*p, 1))
			prevdot = 0;
		else
			return 0;
	}
	return !prevdot;
}

static int
addr_parse_domain(const char *d, int utf8, const char **why)
{
	size_t n = strlen(d), lablen = 0;

	if (n == 0) {
		*why = "empty domain";
		return -1;
	}
	if (n > 255) {
		*why = "domain too long";
		return -1;
	}
	if (d[0] == '[') {
		/* Address literal: [IPv4] or [IPv6:...] only. RFC 5321's
		 * general literals could hold '=', which the rewrite codec
		 * needs free; nobody uses them. */
		char lit[64];
		unsigned char buf[16];

		if (d[n - 1] != ']' || n < 3 || n - 2 >= sizeof(lit)) {
			*why = "bad address literal";
			return -1;
		}
		memcpy(lit, d + 1, n - 2);
		lit[n - 2] = '\0';
		if (strncasecmp(lit, "IPv6:", 5) == 0 ?
		    inet_pton(AF_INET6, lit + 5, buf) != 1 :
		    inet_pton(AF_INET, lit, buf) != 1) {
			*why = "bad address literal";
			return -1;
		}
		return 0;
	}
	if (!text_utf8_valid(d, n)) {
		*why = "domain is not valid UTF-8";
		return -1;
	}
	for (size_t i = 0; i <= n; i++) {
		unsigned char c = d[i];

		if (c == '.' || c == '\0') {
			if (lablen == 0 || lablen > 63 || d[i - 1] == '-') {
				*why = "bad domain label";
				return -1;
			}
			lablen = 0;
			continue;
		}
		if (lablen == 0 && c == '-') {
			*why = "bad domain label";
			return -1;
		}
		if (!(isalnum(c) || c == '-' || (c >= 0x80 && utf8))) {
			*why = "bad character in domain";
			return -1;
		}
		lablen++;
	}
	return 0;
}

int
addr_parse(const char *s, int utf8, struct addr *a, const char **why)
{
	const char *at, *p;
	size_t n = 0;

	*why = NULL;
	memset(a, 0, sizeof(*a));
	if (strlen(s) >= ADDR_MAX) {
		*why = "address too long";
		return -1;
	}
	if (!utf8) {
		for (p = s; *p != '\0'; p++)
			if ((unsigned char)*p >= 0x80) {
				*why = "8-bit address without SMTPUTF8";
				return -1;
			}
	} else if (!text_utf8_valid(s, strlen(s))) {
		*why = "address is not valid UTF-8";
		return -1;
	}
	if (*s == '"') {
		/* quoted-string local part */
		for (p = s + 1; *p != '"'; p++) {
			unsigned char c = *p;

			if (c == '\0') {
				*why = "unterminated quoted local part";
				return -1;
			}
			if (c == '\\') {
				c = *++p;
				if (c < 32 || c == 127) {
					*why = "bad quoted pair";
					return -1;
				}
			} else if ((c < 32 && c != '\t') || c == 127) {
				*why = "control character in local part";
				return -1;
			}
			if (n + 1 >= sizeof(a->local)) {
				*why = "local part too long";
				return -1;
			}
			a->local[n++] = c;
		}
		a->local[n] = '\0';
		if (p[1] != '@') {
			*why = "missing @ after quoted local part";
			return -1;
		}
		at = p + 1;
	} else {
		if ((at = strrchr(s, '@')) == NULL) {
			*why = "missing @";
			return -1;
		}
		n = at - s;
		memcpy(a->local, s, n);
		a->local[n] = '\0';
		if (!addr_local_is_dot_atom(a->local)) {
			*why = "bad local part";
			return -1;
		}
	}
	if (n == 0) {
		*why = "empty local part";
		return -1;
	}
	/* No 64-octet local-part limit (RFC 5321 4.5.3.1.1): a rewritten
	 * local part holds a whole domain, and Postfix does not enforce it
	 * either. ADDR_MAX bounds the whole address. */
	snprintf(a->domain, sizeof(a->domain), "%s", at + 1);
	return addr_parse_domain(a->domain, utf8, why);
}

static int
addr_format_local(const char *local, char *out, size_t outlen)
{
	size_t o = 0;

	if (addr_local_is_dot_atom(local))
		return snprintf(out, outlen, "%s", local) < (int)outlen ? 0 : -1;
	if (o < outlen)
		out[o++] = '"';
	for (const char *p = local; *p != '\0'; p++) {
		if (*p == '"' || *p == '\\') {
			if (o + 1 >= outlen)
				return -1;
			out[o++] = '\\';
		}
		if (o + 1 >= outlen)
			return -1;
		out[o++] = *p;
	}
	if (o + 2 > outlen)
		return -1;
	out[o++] = '"';
	out[o] = '\0';
	return 0;
}

int
addr_format(const struct addr *a, char *out, size_t outlen)
{
	char local[ADDR_MAX * 2 + 3];

	if (addr_format_local(a->local, local, sizeof(local)) == -1)
		return -1;
	if ((size_t)snprintf(out, outlen, "%s@%s", local, a->domain) >= outlen)
		return -1;
	return 0;
}

int
addr_rewrite(const char *addr, const char *relay_domain, int utf8, char *out,
    size_t outlen, const char **why)
{
	struct addr a, r;

	if (addr_parse(addr, utf8, &a, why) == -1)
		return -1;
	memset(&r, 0, sizeof(r));
	if ((size_t)snprintf(r.local, sizeof(r.local), "%s=%s", a.local,
	    a.domain) >= sizeof(r.local)) {
		*why = "rewritten address too long";
		return -1;
	}
	snprintf(r.domain, sizeof(r.domain), "%s", relay_domain);
	/* Refuse what the revert side could not parse back. */
	if (addr_format(&r, out, outlen) == -1 || strlen(out) >= ADDR_MAX ||
	    addr_parse(out, utf8, &r, why) == -1) {
		*why = "rewritten address too long";
		return -1;
	}
	return 0;
}

int
addr_revert(const char *addr, const char *relay_domain, int utf8, char *out,
    size_t outlen, const char **why)
{
	struct addr a, r;
	char *eq;

	if (addr_parse(addr, utf8, &a, why) == -1)
		return -1;
	if (strcasecmp(a.domain, relay_domain) != 0) {
		*why = "not in the relay domain";
		return -1;
	}
	if ((eq = strrchr(a.local, '=')) == NULL) {
		*why = "no '=' in rewritten local part";
		return -1;
	}
	memset(&r, 0, sizeof(r));
	memcpy(r.local, a.local, eq - a.local);
	snprintf(r.domain, sizeof(r.domain), "%s", eq + 1);
	if (r.local[0] == '\0') {
		*why = "empty original local part";
		return -1;
	}
	if (addr_parse_domain(r.domain, utf8, why) == -1)
		return -1;
	if (addr_format(&r, out, outlen) == -1) {
		*why = "address too long";
		return -1;
	}
	return 0;
}

int
addr_domain_of(const char *addr, char *out, size_t outlen)
{
	const char *at = strrchr(addr, '@');
	size_t i;

	if (at == NULL || at[1] == '\0')
		return -1;
	for (i = 0; at[1 + i] != '\0' && i + 1 < outlen; i++)
		out[i] = tolower((unsigned char)at[1 + i]);
	out[i] = '\0';
	return at[1 + i] == '\0' ? 0 : -1;
}

/* Case-folded, NFC-normalised UTF-8 of s (n bytes) into out; 0 or -1. */
static int
addr_fold_utf8(const char *s, size_t n, char *out, size_t outlen)
{
	gchar *f, *nfc;
	size_t i;
	int rc = -1;

	for (i = 0; i < n && (unsigned char)s[i] < 0x80; i++)
		;
	if (i == n) {
		if (n >= outlen)
			return -1;
		for (i = 0; i < n; i++)
			out[i] = tolower((unsigned char)s[i]);
		out[n] = '\0';
		return 0;
	}
	if (!g_utf8_validate(s, n, NULL))
		return -1;
	f = g_utf8_casefold(s, n);
	nfc = g_utf8_normalize(f, -1, G_NORMALIZE_NFC);
	if (nfc != NULL && strlen(nfc) < outlen) {
		memcpy(out, nfc, strlen(nfc) + 1);
		rc = 0;
	}
	g_free(nfc);
	g_free(f);
	return rc;
}

/* The domain folded; with decode, A-labels decoded to U-labels first. */
static int
addr_fold_domain_as(const char *domain, int decode, char *out, size_t outlen)
{
	gchar *u;
	int rc;

	if (*domain == '\0')
		return -1;
	if (*domain == '[' || !decode || strcasestr(domain, "xn--") == NULL ||
	    (u = g_hostname_to_unicode(domain)) == NULL)
		return addr_fold_utf8(domain, strlen(domain), out, outlen);
	rc = addr_fold_utf8(u, strlen(u), out, outlen);
	g_free(u);
	return rc;
}

int
addr_fold_domain(const char *domain, char *out, size_t outlen)
{
	const char *why;

	/*
	 * A-labels (xn--) decode to U-labels. A decoding whose folded form
	 * is not a valid domain (a Unicode label ending in a hyphen, or one
	 * grown past 63 octets) keeps the A-label.
	 */
	if (addr_fold_domain_as(domain, 1, out, outlen) == 0 &&
	    addr_parse_domain(out, 1, &why) == 0)
		return 0;
	return addr_fold_domain_as(domain, 0, out, outlen);
}

int
addr_fold(const char *addr, char *out, size_t outlen)
{
	const char *at = strrchr(addr, '@'), *why;
	struct addr a;
	size_t n;

	if (at == NULL || at == addr)
		return -1;
	n = at - addr;
	if (n + 1 >= outlen || addr_fold_utf8(addr, n, out, outlen) == -1)
		return -1;
	n = strlen(out);
	if (n + 1 >= outlen)
		return -1;
	out[n++] = '@';
	/*
	 * Folding must never turn a valid address into an invalid one: when
	 * the U-label form makes the address too long, the A-label stays.
	 * A valid address whose local part NFC maps onto specials (U+037E
	 * GREEK QUESTION MARK becomes ';') has no valid folded form and is
	 * refused.
	 */
	if (addr_fold_domain(at + 1, out + n, outlen - n) == 0 &&
	    addr_parse(out, 1, &a, &why) == 0)
		return 0;
	if (addr_fold_domain_as(at + 1, 0, out + n, outlen - n) == -1)
		return -1;
	if (addr_parse(out, 1, &a, &why) == -1 &&
	    addr_parse(addr, 1, &a, &why) == 0)
		return -1;
	return 0;
}
