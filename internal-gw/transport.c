/*
 * The transport map: recipient domain to next hop (see transport.h).
 * Input: an admin-written file, read once at start; every error names
 * file:line so --check can point at it.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "transport.h"
#include "xmalloc.h"

#define TRANSPORT_LINE_MAX	1024

struct transport_entry {
	char			*pattern;	/* lowercase: "a.b", ".a.b", "*" */
	struct transport_nexthop hop;
};

struct transport_map {
	struct transport_entry	*e;
	size_t			 n, cap;
};

static int
transport_valid_host(const char *h, size_t len)
{
	size_t i;

	if (len == 0 || len >= sizeof(((struct transport_nexthop *)0)->host))
		return 0;
	for (i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)h[i];

		if (!(isalnum(ch) || ch == '.' || ch == '-' || ch == '_' ||
		    ch == ':' || ch >= 0x80))
			return 0;
	}
	return 1;
}

int
transport_parse_nexthop(const char *s, struct transport_nexthop *out,
    const char **why)
{
	const char *h, *end, *p;
	size_t hl;
	char *ep;
	long port = 25;

	memset(out, 0, sizeof(*out));
	if (strncasecmp(s, "smtp:", 5) == 0)
		s += 5;
	else if (strncasecmp(s, "relay:", 6) == 0)
		s += 6;
	else if ((p = strchr(s, ':')) != NULL && *s != '[' &&
	    strspn(s, "abcdefghijklmnopqrstuvwxyz"
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZ") == (size_t)(p - s) &&
	    (p[1] == '\0' || strspn(p + 1, "0123456789") != strlen(p + 1))) {
		/* "lmtp:...", "error:..."; "host:25" is a host and port. */
		*why = "unsupported transport (only smtp: and relay:)";
		return -1;
	}
	if (*s == '[') {
		h = s + 1;
		if ((end = strchr(h, ']')) == NULL) {
			*why = "missing ']'";
			return -1;
		}
		if (strncasecmp(h, "ipv6:", 5) == 0)
			h += 5;
		hl = (size_t)(end - h);
		p = end + 1;
	} else {
		h = s;
		end = strchr(s, ':');
		hl = end ? (size_t)(end - s) : strlen(s);
		if (end != NULL && strchr(end + 1, ':') != NULL) {
			*why = "IPv6 address must be in brackets";
			return -1;
		}
		p = s + hl;
	}
	if (!transport_valid_host(h, hl)) {
		*why = hl == 0 ? "empty next-hop host" : "invalid next-hop host";
		return -1;
	}
	if (*p == ':') {
		errno = 0;
		port = strtol(p + 1, &ep, 10);
		if (p[1] == '\0' || *ep != '\0' || errno != 0 || port < 1 ||
		    port > 65535) {
			*why = "invalid port";
			return -1;
		}
	} else if (*p != '\0') {
		*why = "junk after next-hop host";
		return -1;
	}
	memcpy(out->host, h, hl);
	out->host[hl] = '\0';
	for (char *c = out->host; *c; c++)
		*c = (char)tolower((unsigned char)*c);
	out->port = (int)port;
	snprintf(out->nexthop, sizeof(out->nexthop), "[%s]:%d", out->host,
	    out->port);
	return 0;
}

static int
transport_valid_pattern(const char *p)
{
	if (strcmp(p, "*") == 0)
		return 1;
	if (*p == '.')
		p++;
	if (*p == '\0' || *p == '.' || strchr(p, '@') != NULL ||
	    strstr(p, "..") != NULL || p[strlen(p) - 1] == '.')
		return 0;
	for (; *p; p++) {
		unsigned char ch = (unsigned char)*p;

		if (!(isalnum(ch) || ch == '.' || ch == '-' || ch == '_' ||
		    ch >= 0x80))
			return 0;
	}
	return 1;
}

static const struct transport_entry *
transport_find(const struct transport_map *m, const char *pattern)
{
	size_t i;

	for (i = 0; i < m->n; i++)
		if (strcmp(m->e[i].pattern, pattern) == 0)
			return &m->e[i];
	return NULL;
}

static int
transport_line(struct transport_map *m, char *line, const char **why)
{
	char *pat, *hop, *extra, *save = NULL;
	struct transport_nexthop nh;

	pat = strtok_r(line, " \t", &save);
	hop = strtok_r(NULL, " \t", &save);
	extra = strtok_r(NULL, " \t", &save);
	if (hop == NULL) {
		*why = "expected \"domain next-hop\"";
		return -1;
	}
	if (extra != NULL) {
		*why = "junk after next hop";
		return -1;
	}
	for (char *c = pat; *c; c++)
		*c = (char)tolower((unsigned char)*c);
	if (!transport_valid_pattern(pat)) {
		*why = "invalid domain pattern";
		return -1;
	}
	if (transport_parse_nexthop(hop, &nh, why) == -1)
		return -1;
	if (transport_find(m, pat) != NULL) {
		*why = "duplicate entry";
		return -1;
	}
	if (m->n == m->cap) {
		m->cap = m->cap ? m->cap * 2 : 16;
		m->e = xreallocarray(m->e, m->cap, sizeof(*m->e));
	}
	m->e[m->n].pattern = xstrdup(pat);
	m->e[m->n].hop = nh;
	m->n++;
	return 0;
}

struct transport_map *
transport_load(const char *path, char **err)
{
	struct transport_map *m;
	char line[TRANSPORT_LINE_MAX + 2];
	const char *why;
	size_t len, lineno = 0;
	FILE *f;
	char *p;

	*err = NULL;
	if ((f = fopen(path, "r")) == NULL) {
		xasprintf(err, "%s: %s", path, strerror(errno));
		return NULL;
	}
	m = xcalloc(1, sizeof(*m));
	while (fgets(line, sizeof(line), f) != NULL) {
		lineno++;
		len = strlen(line);
		if (len > 0 && line[len - 1] == '\n')
			line[--len] = '\0';
		else if (!feof(f)) {
			xasprintf(err, "%s:%zu: line too long", path, lineno);
			goto fail;
		}
		if (len > 0 && line[len - 1] == '\r')
			line[--len] = '\0';
		if ((p = strchr(line, '#')) != NULL)
			*p = '\0';
		for (p = line; *p == ' ' || *p == '\t'; p++)
			;
		if (*p == '\0')
			continue;
		if (line[0] == ' ' || line[0] == '\t') {
			/* Postfix would join it to the previous line. */
			xasprintf(err, "%s:%zu: continuation lines are not "
			    "supported", path, lineno);
			goto fail;
		}
		if (transport_line(m, p, &why) == -1) {
			xasprintf(err, "%s:%zu: %s", path, lineno, why);
			goto fail;
		}
	}
	if (ferror(f)) {
		xasprintf(err, "%s: %s", path, strerror(errno));
		goto fail;
	}
	fclose(f);
	return m;
 fail:
	fclose(f);
	transport_free(m);
	return NULL;
}

int
transport_lookup(const struct transport_map *m, const char *domain,
    struct transport_nexthop *out)
{
	const struct transport_entry *e;
	char d[256], key[258];
	const char *p;
	size_t i;

	if (strlen(domain) >= sizeof(d))
		return -1;
	for (i = 0; domain[i] != '\0'; i++)
		d[i] = (char)tolower((unsigned char)domain[i]);
	d[i] = '\0';
	if (d[0] != '\0' && d[i - 1] == '.')
		d[i - 1] = '\0';		/* absolute form */
	if (d[0] != '\0') {
		if ((e = transport_find(m, d)) != NULL)
			goto found;
		for (p = strchr(d, '.'); p != NULL; p = strchr(p + 1, '.')) {
			snprintf(key, sizeof(key), "%s", p);
			if ((e = transport_find(m, key)) != NULL)
				goto found;
		}
	}
	if ((e = transport_find(m, "*")) != NULL)
		goto found;
	return -1;
 found:
	*out = e->hop;
	return 0;
}

void
transport_free(struct transport_map *m)
{
	size_t i;

	if (m == NULL)
		return;
	for (i = 0; i < m->n; i++)
		free(m->e[i].pattern);
	free(m->e);
	free(m);
}
