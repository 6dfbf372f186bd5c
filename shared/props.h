/*
 * Policy properties in the node's SQLite database, resolved with
 * inheritance user -> domain -> global -> built-in default, read on every
 * use so a change applies without a restart. Property names follow
 * CipherMail's; the built-in table (propdefs.c) gives each its type,
 * default and the scopes where it may be set.
 */
#ifndef POSTERN_PROPS_H
#define POSTERN_PROPS_H

#include <stddef.h>

struct sqlite3;

enum props_type { PROPS_BOOL, PROPS_INT, PROPS_STRING, PROPS_ENUM,
    PROPS_REGEX };

enum props_scope {
	PROPS_SCOPE_USER = 0,
	PROPS_SCOPE_DOMAIN = 1,
	PROPS_SCOPE_GLOBAL = 2,
	PROPS_SCOPE_DEFAULT = 3,
};

#define PROPS_NODE_GW		0x1
#define PROPS_NODE_PORTAL	0x2

#define PROPS_IN_USER		0x1
#define PROPS_IN_DOMAIN		0x2
#define PROPS_IN_GLOBAL		0x4

struct props_def {
	const char	*name;
	enum props_type	 type;
	const char	*def;		/* built-in default, as text */
	int		 scopes;	/* PROPS_IN_* */
	int		 nodes;		/* PROPS_NODE_* */
	const char	*choices;	/* PROPS_ENUM: "a|b|c" */
	long long	 min, max;	/* PROPS_INT */
	const char	*doc;		/* one line for docs and `list` */
};

extern const struct props_def props_defs[];	/* NULL name ends it */
const struct props_def *props_def_find(const char *name);

struct props;

/* Opens (creating the tables) the store at dbpath; NULL with *err set. */
struct props	*props_open(const char *dbpath, char **err);
/* Uses an already open handle (the caller keeps ownership). */
struct props	*props_wrap(struct sqlite3 *);
void		 props_close(struct props *);

/*
 * The effective value for email (NULL: global and default only). Returns a
 * string the caller frees; *from (may be NULL) tells which level gave it.
 */
char		*props_get(struct props *, const char *email, const char *name,
		    enum props_scope *from);
int		 props_get_bool(struct props *, const char *email,
		    const char *name);
long long	 props_get_int(struct props *, const char *email,
		    const char *name);

/*
 * Sets or (value NULL) removes a property at one level. key is the email
 * (user), domain (domain) or NULL (global). Checks the name, the scope and
 * the value's type; -1 with *err on refusal.
 */
int		 props_set(struct props *, enum props_scope, const char *key,
		    const char *name, const char *value, char **err);

/* Calls cb for each property set at one level (key as for props_set). */
int		 props_list(struct props *, enum props_scope, const char *key,
		    void (*cb)(void *, const char *name, const char *value),
		    void *arg);

/* Domains this node serves (portal) or knows (gateway). */
int		 props_domain_add(struct props *, const char *domain, char **err);
int		 props_domain_remove(struct props *, const char *domain,
		    char **err);
int		 props_domain_exists(struct props *, const char *domain);
int		 props_domain_list(struct props *,
		    void (*cb)(void *, const char *domain), void *arg);

#endif
