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

struct db;

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
	int		 check;		/* PROPS_CHECK_*: extra value syntax */
};

/* Extra checks on PROPS_STRING values (all refuse control characters). */
#define PROPS_CHECK_NONE	0
#define PROPS_CHECK_HEADER	1	/* "Name: value" or empty */
#define PROPS_CHECK_DOMAINS	2	/* "a.example, b.example" or empty */
#define PROPS_CHECK_DOMAIN	3	/* one domain name */
#define PROPS_CHECK_LIST	4	/* "a,b": words of choices, each once */

extern const struct props_def props_defs[];	/* NULL name ends it */
const struct props_def *props_def_find(const char *name);
const char	*props_type_name(enum props_type);	/* "bool", ... */
const char	*props_scope_name(enum props_scope);	/* "user", ... */
/*
 * Checks value against def's type, range, choices or syntax. 0 with the
 * canonical form in *norm (caller frees; NULL allowed), or -1 with *err.
 */
int		 props_check_value(const struct props_def *, const char *value,
		    char **norm, char **err);

struct props;

/* Opens (creating the tables) the store at dbpath; NULL with *err set. */
struct props	*props_open(const char *dbpath, char **err);
/* Uses an already open handle (the caller keeps ownership). */
struct props	*props_wrap(struct db *);
void		 props_close(struct props *);
/*
 * This thread's property reader on its db_thread() connection to dbpath,
 * for node (PROPS_NODE_*); made on first use, freed when the thread exits.
 * NULL (logged) when the database cannot be opened. How long-lived threads
 * read properties: no shared handle, no mutex.
 */
struct props	*props_thread(const char *dbpath, int node);

/*
 * The effective value for email (NULL: global and default only). Returns a
 * string the caller frees; *from (may be NULL) tells which level gave it.
 * A struct props (like its connection) belongs to one thread.
 * Asking for a name not in props_defs is a programming error (fatalx). On
 * a database failure (logged) props_get returns NULL, props_get_bool and
 * props_get_int -1 (every PROPS_INT has min >= 0): the caller must treat it
 * as a temporary failure, never fall back to a default. A NULL struct
 * props (props_thread() could not open the database) reads as such a
 * failure.
 */
char		*props_get(struct props *, const char *email, const char *name,
		    enum props_scope *from);
int		 props_get_bool(struct props *, const char *email,
		    const char *name);
long long	 props_get_int(struct props *, const char *email,
		    const char *name);
/*
 * The effective value seen from one level: key is the email (user), the
 * domain (domain) or NULL (global, default). props_get(p, email, ...) is
 * props_get_at(p, PROPS_SCOPE_USER, email, ...).
 */
char		*props_get_at(struct props *, enum props_scope, const char *key,
		    const char *name, enum props_scope *from);
/*
 * Turns on (for this struct props) the cache of props_get_at answers and
 * empties it when another connection wrote the database since the last
 * call; see props.c. Call it at the start of each message. -1 when the
 * database cannot be read (the cache is then off until the next call).
 */
int		 props_cache_begin(struct props *);
/*
 * Restricts props_set to properties used by node (PROPS_NODE_*); 0, the
 * default, allows all.
 */
void		 props_set_node(struct props *, int node);

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

/*
 * Domains this node serves (portal) or knows (gateway). props_domain_add:
 * 0 when added, 1 when it was already there, -1 with *err set.
 */
int		 props_domain_add(struct props *, const char *domain, char **err);
int		 props_domain_remove(struct props *, const char *domain,
		    char **err);
int		 props_domain_exists(struct props *, const char *domain);
int		 props_domain_list(struct props *,
		    void (*cb)(void *, const char *domain), void *arg);

#endif
