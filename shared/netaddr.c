/*
 * Listening sockets and client access lists; see netaddr.h.
 *
 * SECURITY: the specs and lists come from the admin's config; client
 * addresses come from accept(2). Nothing here reads peer bytes.
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "netaddr.h"
#include "xmalloc.h"

struct netaddr_entry {
	int		 family;	/* AF_INET or AF_INET6 */
	unsigned char	 addr[16];
	int		 prefix;
};

struct netaddr_list {
	struct netaddr_entry	*entries;
	size_t			 n;
};

static const unsigned char netaddr_v4mapped[12] = {
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff
};

/* Splits "host:port" / "[v6]:port" into host and port, in place. */
static int
netaddr_split(char *s, char **host, char **port)
{
	char *p;

	if (*s == '[') {
		if ((p = strchr(s, ']')) == NULL || p[1] != ':')
			return -1;
		*p = '\0';
		*host = s + 1;
		*port = p + 2;
	} else {
		if ((p = strrchr(s, ':')) == NULL || strchr(s, ':') != p)
			return -1;
		*p = '\0';
		*host = s;
		*port = p + 1;
	}
	return **port == '\0' || **host == '\0' ? -1 : 0;
}

static int
netaddr_bind(const struct sockaddr *sa, socklen_t salen, int backlog,
    int v6only, char **err)
{
	int fd, on = 1;

	fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
	    0);
	if (fd == -1) {
		xasprintf(err, "socket: %s", strerror(errno));
		return -1;
	}
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)) == -1)
		goto fail;
	/*
	 * Replies (SMTP, LMTP, HTTP) are small and written in pieces; with
	 * Nagle each piece waits for the peer's delayed ACK. Linux hands
	 * TCP_NODELAY down to the sockets accept() returns.
	 */
	if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on)) == -1)
		goto fail;
	if (sa->sa_family == AF_INET6 && setsockopt(fd, IPPROTO_IPV6,
	    IPV6_V6ONLY, &v6only, sizeof(v6only)) == -1)
		goto fail;
	if (bind(fd, sa, salen) == -1 || listen(fd, backlog) == -1)
		goto fail;
	return fd;
fail:
	xasprintf(err, "bind/listen: %s", strerror(errno));
	close(fd);
	return -1;
}

int
netaddr_listen(const char *spec, int backlog, char **err)
{
	struct addrinfo hints, *res;
	char *copy, *host, *port;
	int fd, rc;

	*err = NULL;
	copy = xstrdup(spec);
	if (netaddr_split(copy, &host, &port) == -1) {
		xasprintf(err, "%s: expected host:port, [v6]:port or *:port",
		    spec);
		free(copy);
		return -1;
	}
	if (strcmp(host, "*") == 0) {
		struct sockaddr_in6 s6;
		struct sockaddr_in s4;
		char *e6 = NULL;
		char *end;
		long p;

		errno = 0;
		p = strtol(port, &end, 10);
		if (*end != '\0' || p < 0 || p > 65535) {
			xasprintf(err, "%s: bad port", spec);
			free(copy);
			return -1;
		}
		memset(&s6, 0, sizeof(s6));
		s6.sin6_family = AF_INET6;
		s6.sin6_port = htons((uint16_t)p);
		s6.sin6_addr = in6addr_any;
		if ((fd = netaddr_bind((struct sockaddr *)&s6, sizeof(s6),
		    backlog, 0, &e6)) != -1) {
			free(copy);
			return fd;
		}
		/* No IPv6 on this host: fall back to every IPv4 address. */
		free(e6);
		memset(&s4, 0, sizeof(s4));
		s4.sin_family = AF_INET;
		s4.sin_port = htons((uint16_t)p);
		s4.sin_addr.s_addr = htonl(INADDR_ANY);
		fd = netaddr_bind((struct sockaddr *)&s4, sizeof(s4), backlog,
		    0, err);
		free(copy);
		return fd;
	}
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	if ((rc = getaddrinfo(host, port, &hints, &res)) != 0) {
		xasprintf(err, "%s: %s", spec, gai_strerror(rc));
		free(copy);
		return -1;
	}
	fd = netaddr_bind(res->ai_addr, res->ai_addrlen, backlog, 1, err);
	freeaddrinfo(res);
	free(copy);
	return fd;
}

static int
netaddr_entry_parse(const char *s, struct netaddr_entry *e)
{
	char buf[INET6_ADDRSTRLEN + 8], *slash, *end;
	int max;
	long p;

	if (strlen(s) >= sizeof(buf))
		return -1;
	strcpy(buf, s);
	memset(e, 0, sizeof(*e));
	if ((slash = strchr(buf, '/')) != NULL)
		*slash++ = '\0';
	if (inet_pton(AF_INET, buf, e->addr) == 1) {
		e->family = AF_INET;
		max = 32;
	} else if (inet_pton(AF_INET6, buf, e->addr) == 1) {
		e->family = AF_INET6;
		max = 128;
		/* An admin writing ::ffff:a.b.c.d means the IPv4 client. */
		if (memcmp(e->addr, netaddr_v4mapped, 12) == 0) {
			memmove(e->addr, e->addr + 12, 4);
			memset(e->addr + 4, 0, 12);
			e->family = AF_INET;
			max = 32;
			if (slash != NULL) {
				p = strtol(slash, &end, 10);
				if (*slash == '\0' || *end != '\0' || p < 96 ||
				    p > 128)
					return -1;
				e->prefix = (int)p - 96;
				return 0;
			}
		}
	} else
		return -1;
	e->prefix = max;
	if (slash != NULL) {
		errno = 0;
		p = strtol(slash, &end, 10);
		if (*slash == '\0' || *end != '\0' || p < 0 || p > max)
			return -1;
		e->prefix = (int)p;
	}
	return 0;
}

struct netaddr_list *
netaddr_list_parse(const char *const *cidrs, size_t n, char **err)
{
	struct netaddr_list *l;

	*err = NULL;
	l = xcalloc(1, sizeof(*l));
	l->entries = xcalloc(n ? n : 1, sizeof(*l->entries));
	for (size_t i = 0; i < n; i++) {
		if (netaddr_entry_parse(cidrs[i], &l->entries[i]) == -1) {
			xasprintf(err, "%s: not an IPv4 or IPv6 address or "
			    "CIDR prefix", cidrs[i]);
			netaddr_list_free(l);
			return NULL;
		}
	}
	l->n = n;
	return l;
}

static int
netaddr_prefix_eq(const unsigned char *a, const unsigned char *b, int bits)
{
	int bytes = bits / 8, rest = bits % 8;

	if (memcmp(a, b, bytes) != 0)
		return 0;
	if (rest == 0)
		return 1;
	return ((a[bytes] ^ b[bytes]) & (0xff << (8 - rest))) == 0;
}

int
netaddr_list_match(const struct netaddr_list *l, const struct sockaddr *sa)
{
	unsigned char a[16];
	int family;

	if (l == NULL || sa == NULL)
		return 0;
	if (sa->sa_family == AF_INET) {
		memcpy(a, &((const struct sockaddr_in *)sa)->sin_addr, 4);
		family = AF_INET;
	} else if (sa->sa_family == AF_INET6) {
		memcpy(a, &((const struct sockaddr_in6 *)sa)->sin6_addr, 16);
		family = AF_INET6;
		if (memcmp(a, netaddr_v4mapped, 12) == 0) {
			memmove(a, a + 12, 4);
			family = AF_INET;
		}
	} else
		return 0;
	for (size_t i = 0; i < l->n; i++)
		if (l->entries[i].family == family &&
		    netaddr_prefix_eq(l->entries[i].addr, a,
		    l->entries[i].prefix))
			return 1;
	return 0;
}

void
netaddr_list_free(struct netaddr_list *l)
{
	if (l == NULL)
		return;
	free(l->entries);
	free(l);
}

void
netaddr_ntop(const struct sockaddr *sa, char *out, size_t outlen)
{
	const struct sockaddr_in6 *s6;
	const void *a;
	int family;

	if (outlen == 0)
		return;
	out[0] = '\0';
	if (sa == NULL)
		return;
	if (sa->sa_family == AF_INET) {
		family = AF_INET;
		a = &((const struct sockaddr_in *)sa)->sin_addr;
	} else if (sa->sa_family == AF_INET6) {
		s6 = (const struct sockaddr_in6 *)sa;
		family = AF_INET6;
		a = &s6->sin6_addr;
		if (memcmp(a, netaddr_v4mapped, 12) == 0) {
			family = AF_INET;
			a = s6->sin6_addr.s6_addr + 12;
		}
	} else if (sa->sa_family == AF_UNIX) {
		strncpy(out, "unix", outlen - 1);
		out[outlen - 1] = '\0';
		return;
	} else
		return;
	if (inet_ntop(family, a, out, outlen) == NULL)
		out[0] = '\0';
}
