/*
 * Boot configuration: one libconfig file per node, checked against a schema
 * table. An unknown key, a wrong type, a missing required key or an
 * out-of-range value is an error naming file, line and key.
 */
#ifndef POSTERN_CONFIG_H
#define POSTERN_CONFIG_H

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
