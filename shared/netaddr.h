/*
 * Network addresses: listening sockets from "host:port" specs and client
 * access lists (CIDR, IPv4 and IPv6). An IPv4-mapped IPv6 client
 * (::ffff:192.0.2.1) matches IPv4 entries, so a dual-stack listener sees the
 * same policy as an IPv4 one.
 */
#ifndef POSTERN_NETADDR_H
#define POSTERN_NETADDR_H

#include <stddef.h>
#include <sys/socket.h>

/* Enough for any numeric IPv6 address without port. */
#define NETADDR_STRLEN	64

struct netaddr_list;

/*
 * "127.0.0.1:2525", "[::1]:25", "*:25" (every address, IPv6 and IPv4 when
 * possible). Returns a non-blocking listening fd with SO_REUSEADDR, or -1
 * with *err set (caller frees).
 */
int	netaddr_listen(const char *spec, int backlog, char **err);

/* Plain addresses or CIDR prefixes. NULL with *err set on a bad entry. */
struct netaddr_list *netaddr_list_parse(const char *const *cidrs, size_t n,
	    char **err);
int	netaddr_list_match(const struct netaddr_list *,
	    const struct sockaddr *);
void	netaddr_list_free(struct netaddr_list *);

/* Numeric address without port; IPv4-mapped IPv6 is shown as IPv4. */
void	netaddr_ntop(const struct sockaddr *, char *out, size_t outlen);

#endif
