/*
 * Boot configuration: one libconfig file per node, checked against a schema
 * table. An unknown key, a wrong type, a missing required key or an
 * out-of-range value is an error naming file, line and key.
 */
#ifndef POSTERN_CONFIG_H
#define POSTERN_CONFIG_H

#include <limits.h>
#include <stddef.h>
#include <libconfig.h>

enum conf_type {
	CONF_BOOL,
	CONF_INT,		/* 64-bit; min/max apply */
	CONF_STRING,		/* max = longest length when non-zero */
	CONF_STRLIST,		/* array of strings */
	CONF_GROUP,		/* { ... } */
	CONF_GROUPLIST,		/* ( { ... }, ... ); members use "path.[].key" */
};

struct conf_key {
	const char	*path;		/* "smtp.max_message_size" */
	enum conf_type	 type;
	int		 required;
	long long	 min, max;
	const char	*def;		/* default, as text; NULL: none */
};

struct conf {
	config_t		 cfg;
	const struct conf_key	*schema;
	char			*file;
};

/*
 * Schema rows both daemons share: the log group and the SMTP/LMTP engine's
 * limits and TLS files (inside the required "smtp" group), so both nodes
 * take the same keys with the same ranges. The connection limit's and the
 * message size's defaults differ: the portal takes the gateway's largest
 * message plus what the gateway adds to its portal copy (see
 * CONF_PORTAL_MAX_MESSAGE).
 */
#define CONF_MB		(1024LL * 1024)
/*
 * The gateway's SIZE, and the portal's: 1.4 times as much, room for the
 * trigger field, the tunnel signature and a re-encoding to 7 bit (base64:
 * 4/3 plus line ends) of a message the gateway accepted at its limit.
 */
#define CONF_GW_MAX_MESSAGE	"52428800"	/* 50 MiB */
#define CONF_PORTAL_MAX_MESSAGE	"73400320"	/* 70 MiB */
#define CONF_KEYS_LOG \
	{ "log", CONF_GROUP, 0, 0, 0, NULL }, \
	{ "log.syslog", CONF_BOOL, 0, 0, 0, "false" }, \
	{ "log.debug", CONF_BOOL, 0, 0, 0, "false" }
#define CONF_KEYS_SMTP_LIMITS(max_connections, max_message_size) \
	{ "smtp.max_line", CONF_INT, 0, 512, 65536, "2048" }, \
	{ "smtp.max_message_size", CONF_INT, 0, 1024, 4096 * CONF_MB, \
	    max_message_size }, \
	{ "smtp.max_header_size", CONF_INT, 0, 1024, 64 * CONF_MB, \
	    "1048576" }, \
	{ "smtp.max_recipients", CONF_INT, 0, 1, 100000, "1000" }, \
	{ "smtp.max_connections", CONF_INT, 0, 1, 100000, max_connections }, \
	{ "smtp.max_per_ip", CONF_INT, 0, 1, 100000, "50" }, \
	{ "smtp.cmd_timeout", CONF_INT, 0, 1, 3600, "300" }, \
	{ "smtp.data_timeout", CONF_INT, 0, 1, 3600, "600" }, \
	{ "smtp.max_errors", CONF_INT, 0, 1, 1000, "10" }, \
	{ "smtp.tls_cert", CONF_STRING, 0, 0, PATH_MAX, NULL }, \
	{ "smtp.tls_key", CONF_STRING, 0, 0, PATH_MAX, NULL }, \
	{ "smtp.tls_required", CONF_BOOL, 0, 0, 0, "false" }

/*
 * Loads and checks file against schema (terminated by a NULL path). On error
 * returns -1 and sets *errstr to one or more "file:line: key: reason" lines
 * (caller frees).
 */
int		 conf_load(struct conf *, const char *file,
		    const struct conf_key *schema, char **errstr);
void		 conf_free(struct conf *);

/* Typed accessors; an unset key gives the schema default. Paths must be in
 * the schema (asking for another is a programming error: fatalx). */
long long	 conf_int(const struct conf *, const char *path);
int		 conf_bool(const struct conf *, const char *path);
const char	*conf_str(const struct conf *, const char *path); /* NULL: unset */
/* Array of strings; returns the count, *out points to a NULL-terminated
 * array the caller frees with free() (not the strings). */
size_t		 conf_strlist(const struct conf *, const char *path,
		    const char ***out);
/* Direct libconfig access for group lists; NULL if unset. */
config_setting_t *conf_setting(const struct conf *, const char *path);

/* The same accessors on one member of a group list. */
long long	 conf_elem_int(const struct conf *, config_setting_t *elem,
		    const char *listpath, const char *key);
int		 conf_elem_bool(const struct conf *, config_setting_t *elem,
		    const char *listpath, const char *key);
const char	*conf_elem_str(const struct conf *, config_setting_t *elem,
		    const char *listpath, const char *key);

#endif
