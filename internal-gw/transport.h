/*
 * Next-hop routing by recipient domain, in Postfix transport(5) syntax:
 *
 *   # comment
 *   example.com        smtp:[mail.example.com]:25
 *   .example.com       smtp:[10.0.0.5]          (subdomains of example.com)
 *   relay-to-webmail.private  smtp:[192.0.2.10]:10025
 *   *                  smtp:[127.0.0.1]:10026
 *
 * "smtp:" and "relay:" are accepted. We never look up MX records: a host
 * without brackets is connected to as-is, exactly like "[host]"; the
 * brackets are kept only so existing Postfix maps read the same. IPv6
 * literals go in brackets: smtp:[::1]:25 (or [ipv6:::1]). Port default 25.
 */
#ifndef POSTERN_TRANSPORT_H
#define POSTERN_TRANSPORT_H

#define TRANSPORT_NEXTHOP_MAX	300

struct transport_nexthop {
	char	host[256];	/* name or address literal, no brackets */
	int	port;
	/* Canonical form used for TLS policy and the ledger: "[host]:port". */
	char	nexthop[TRANSPORT_NEXTHOP_MAX];
};

struct transport_map;

/* NULL with *err ("file:line: why", caller frees) on any error. */
struct transport_map	*transport_load(const char *path, char **err);
/* Exact domain, then ".parent" entries nearest first, then "*". -1: none. */
int	transport_lookup(const struct transport_map *, const char *domain,
	    struct transport_nexthop *out);
void	transport_free(struct transport_map *);

/*
 * Parses a next hop: "smtp:[host]:port", "smtp:host", "[host]:port",
 * "host:port", "host". -1 with *why set on a syntax error.
 */
int	transport_parse_nexthop(const char *s, struct transport_nexthop *out,
	    const char **why);

#endif
