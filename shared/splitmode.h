/*
 * The split-mode contract between the two nodes, in one place: which
 * header fields are triggers, how the gateway tags a portal copy (adds the
 * trigger field, rewrites each recipient into the relay domain) and how
 * the portal classifies what arrives (Webmail Messenger or PDF OTP). The
 * names, values and relay domain are properties; their defaults live only
 * in the property registry (propdefs.c).
 */
#ifndef POSTERN_SPLITMODE_H
#define POSTERN_SPLITMODE_H

#include <stddef.h>

#include "addr.h"

struct header;
struct props;

#define SPLITMODE_NAME_MAX	256
#define SPLITMODE_VALUE_MAX	512
/* Configured names plus the registry's defaults, which are always removed. */
#define SPLITMODE_MAX_NAMES	4

enum splitmode_route {
	SPLITMODE_NONE,
	SPLITMODE_WEBMAIL,
	SPLITMODE_PDF,
};

struct splitmode {
	char	webmail_name[SPLITMODE_NAME_MAX];
	char	webmail_value[SPLITMODE_VALUE_MAX];
	char	pdf_name[SPLITMODE_NAME_MAX];
	char	pdf_value[SPLITMODE_VALUE_MAX];
	char	relay_domain[ADDR_MAX];
	/* every field name that counts as a trigger, for stripping */
	char	names[SPLITMODE_MAX_NAMES][SPLITMODE_NAME_MAX];
	size_t	nnames;
};

/*
 * Reads trigger-webmail-header, trigger-otp-encryption-header and
 * portal-relay-domain. A stored spec that does not parse falls back to
 * the registry's default. -1 (logged) when a lookup failed.
 */
int	splitmode_load(struct props *, struct splitmode *);
/* The trigger names as a pointer array for header_rewrite(). */
size_t	splitmode_names(const struct splitmode *, const char **out,
	    size_t max);

/* Tagging (gateway): the "Name: value\r\n" line a portal copy carries. */
void	splitmode_tag_field(const struct splitmode *, enum splitmode_route,
	    char *out, size_t outlen);
/* local@domain -> local=domain@relay-domain; -1 with *why. */
int	splitmode_rewrite_rcpt(const struct splitmode *, const char *rcpt,
	    int utf8, char *out, size_t outlen, const char **why);
/* 1 when rcpt's domain is the relay domain (case-insensitive). */
int	splitmode_in_relay_domain(const struct splitmode *, const char *rcpt);

/*
 * Classifying (portal): which trigger the header carries, given the specs
 * ("Name: Value") and whether each is enabled; PDF OTP wins when both do.
 */
enum splitmode_route splitmode_classify(const struct header *,
	    const char *webmail_spec, int webmail_enabled,
	    const char *pdf_spec, int pdf_enabled);

#endif
