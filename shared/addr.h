/*
 * Mail addresses (RFC 5321 Mailbox, RFC 6531 with UTF-8) and the split-mode
 * recipient rewrite: local@domain <-> local=domain@relay-to-webmail.private.
 * The revert splits at the last '=' since a domain never contains one.
 */
#ifndef POSTERN_ADDR_H
#define POSTERN_ADDR_H

#include <stddef.h>

#define ADDR_MAX	 512	/* longer than RFC 5321's 256 path limit */

struct addr {
	char	local[ADDR_MAX];	/* unquoted, unescaped */
	char	domain[ADDR_MAX];	/* as written; [literal] kept */
};

/*
 * Parses a Mailbox (no angle brackets). utf8 allows UTF-8 in the local part
 * and domain (SMTPUTF8). Returns 0, or -1 with *why set to a static reason.
 */
int	addr_parse(const char *s, int utf8, struct addr *, const char **why);
/* Writes the canonical form (local part quoted only when needed). */
int	addr_format(const struct addr *, char *out, size_t outlen);
/* 1 when the unquoted local part can be written as a dot-atom. */
int	addr_local_is_dot_atom(const char *local);

/* local@domain -> local=domain@relay_domain (canonical form). */
int	addr_rewrite(const char *addr, const char *relay_domain, int utf8,
	    char *out, size_t outlen, const char **why);
/*
 * local=domain@relay_domain -> local@domain. Returns -1 when addr is not in
 * relay_domain (case-insensitive) or does not decode to a valid address.
 */
int	addr_revert(const char *addr, const char *relay_domain, int utf8,
	    char *out, size_t outlen, const char **why);

/* Domain part of addr, lowercased, into out; -1 if none. */
int	addr_domain_of(const char *addr, char *out, size_t outlen);

/*
 * The mailbox identity: one spelling for every way of writing the same
 * address, so JÜRGEN@BÜCHER.EXAMPLE, jürgen@bücher.example and
 * jürgen@xn--bcher-kva.example are one key. The local part is Unicode
 * case-folded (full folding: "ß" matches "ss") and NFC-normalised; the
 * domain is written with U-labels (A-labels decoded), case-folded and
 * NFC-normalised; an address literal is lowercased. Pure ASCII input is
 * ASCII-lowercased, as before. addr is in canonical form (addr_format).
 * 0, or -1 when it is not valid UTF-8, has no domain or does not fit.
 */
int	addr_fold(const char *addr, char *out, size_t outlen);
/* The domain part of addr_fold() alone. */
int	addr_fold_domain(const char *domain, char *out, size_t outlen);

#endif
