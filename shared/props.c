/*
 * Property store: global, domain and user levels in three tables of the
 * node's database, plus the list of domains. Values are checked against
 * props_defs when set and again when read, so a row edited by hand that no
 * longer fits its type fails closed instead of falling back to a weaker
 * default. Keys (emails, domains) are stored lowercased.
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>


#include "addr.h"
#include "db.h"
#include "header.h"
#include "log.h"
#include "props.h"
#include "xmalloc.h"

#define PROPS_VALUE_MAX		1024
#define PROPS_DOMAIN_MAX	253
#define PROPS_LABEL_MAX		63

/* One cached answer of props_get_at (see props_cache_begin). */
struct props_centry {
	unsigned int	 hash;
	enum props_scope scope;
	enum props_scope from;
	char		*key;		/* as asked, NULL for none */
	const char	*name;		/* props_defs' own string */
	char		*val;
};

#define PROPS_CACHE_MAX		256	/* entries; flushed whole when full */

struct props {
	struct db		*db;
	int		 owned;
	int		 node;
	struct db_stmt	*lookup;	/* cached: read on every message */
	int		 cache_on;	/* props_cache_begin succeeded */
	long long	 cache_dv;	/* data_version the cache is of */
	struct props_centry *cache;
	size_t		 ncache;
};

static const char props_schema[] =
    "CREATE TABLE IF NOT EXISTS props_global ("
    " name TEXT PRIMARY KEY, value TEXT NOT NULL);"
    "CREATE TABLE IF NOT EXISTS props_domain ("
    " domain TEXT NOT NULL, name TEXT NOT NULL, value TEXT NOT NULL,"
    " PRIMARY KEY (domain, name));"
    "CREATE TABLE IF NOT EXISTS props_user ("
    " email TEXT NOT NULL, name TEXT NOT NULL, value TEXT NOT NULL,"
    " PRIMARY KEY (email, name));"
    "CREATE TABLE IF NOT EXISTS props_domains ("
    " domain TEXT PRIMARY KEY);";

/* Every level that may hold name, most specific first. */
static const char props_lookup_sql[] =
    "SELECT 0, value FROM props_user WHERE email = ?1 AND name = ?3"
    " UNION ALL "
    "SELECT 1, value FROM props_domain WHERE domain = ?2 AND name = ?3"
    " UNION ALL "
    "SELECT 2, value FROM props_global WHERE name = ?3"
    " ORDER BY 1";

const struct props_def *
props_def_find(const char *name)
{
	const struct props_def *d;

	if (name == NULL)
		return NULL;
	for (d = props_defs; d->name != NULL; d++)
		if (strcmp(d->name, name) == 0)
			return d;
	return NULL;
}

const char *
props_type_name(enum props_type t)
{
	switch (t) {
	case PROPS_BOOL: return "bool";
	case PROPS_INT: return "int";
	case PROPS_STRING: return "string";
	case PROPS_ENUM: return "enum";
	case PROPS_REGEX: return "regex";
	}
	return "?";
}

const char *
props_scope_name(enum props_scope s)
{
	switch (s) {
	case PROPS_SCOPE_USER: return "user";
	case PROPS_SCOPE_DOMAIN: return "domain";
	case PROPS_SCOPE_GLOBAL: return "global";
	case PROPS_SCOPE_DEFAULT: return "default";
	}
	return "?";
}

static int
props_scope_bit(enum props_scope s)
{
	switch (s) {
	case PROPS_SCOPE_USER: return PROPS_IN_USER;
	case PROPS_SCOPE_DOMAIN: return PROPS_IN_DOMAIN;
	case PROPS_SCOPE_GLOBAL: return PROPS_IN_GLOBAL;
	case PROPS_SCOPE_DEFAULT: return 0;
	}
	return 0;
}

static char *
props_lower(const char *s)
{
	char *r = xstrdup(s), *p;

	for (p = r; *p != '\0'; p++)
		*p = tolower((unsigned char)*p);
	return r;
}

/* The stored form of a domain key: folded, U-labels (addr_fold_domain). */
static char *
props_domain_key(const char *s)
{
	char buf[ADDR_MAX];

	if (addr_fold_domain(s, buf, sizeof(buf)) == 0)
		return xstrdup(buf);
	return props_lower(s);
}

/* ASCII letters, digits, '-' and UTF-8 bytes (IDN), in dot-separated
 * labels; the caller passes it lowercased. */
static int
props_domain_valid(const char *d)
{
	size_t len = strlen(d), label = 0, i;

	if (len == 0 || len > PROPS_DOMAIN_MAX)
		return 0;
	for (i = 0; i <= len; i++) {
		unsigned char c = d[i];

		if (c == '.' || c == '\0') {
			if (label == 0 || label > PROPS_LABEL_MAX ||
			    d[i - 1] == '-' || d[i - label] == '-')
				return 0;
			label = 0;
			continue;
		}
		if (!(c >= 'a' && c <= 'z') && !(c >= '0' && c <= '9') &&
		    c != '-' && c < 0x80)
			return 0;
		label++;
	}
	return 1;
}

static int
props_header_name_valid(const char *n)
{
	if (*n == '\0')
		return 0;
	for (; *n != '\0'; n++)
		if (*n < 33 || *n > 126 || *n == ':')
			return 0;
	return 1;
}

/*
 * PROPS_CHECK_LIST: a comma-separated list of words of def->choices
 * ("a|b|c"), each at most once, at least one; normalised to "a,b".
 */
static int
props_check_list(const struct props_def *def, const char *value,
    char **norm, char **err)
{
	char *copy = xstrdup(value), *out = xcalloc(1, strlen(value) + 3);
	char *tok, *save = NULL, *seen = xcalloc(1, strlen(value) + 3);
	char needle[PROPS_VALUE_MAX + 3];
	size_t outlen = 0, n;

	for (tok = strtok_r(copy, ", \t", &save); tok != NULL;
	    tok = strtok_r(NULL, ", \t", &save)) {
		const char *c = def->choices, *e;
		int ok = 0, again;

		for (; c != NULL && *c != '\0'; c = *e ? e + 1 : e) {
			if ((e = strchr(c, '|')) == NULL)
				e = c + strlen(c);
			n = (size_t)(e - c);
			if (strlen(tok) == n && strncmp(tok, c, n) == 0)
				ok = 1;
		}
		/* ",tok," within ",a,b," */
		snprintf(seen, strlen(value) + 3, ",%s,", out);
		snprintf(needle, sizeof(needle), ",%s,", tok);
		again = strstr(seen, needle) != NULL;
		if (!ok || again) {
			xasprintf(err, "%s: \"%s\" is %s (choose from %s, each "
			    "at most once)", def->name, tok, ok ? "repeated" :
			    "not a choice", def->choices);
			free(copy);
			free(out);
			free(seen);
			return -1;
		}
		if (outlen > 0)
			out[outlen++] = ',';
		memcpy(out + outlen, tok, strlen(tok) + 1);
		outlen += strlen(tok);
	}
	free(copy);
	free(seen);
	if (outlen == 0) {
		xasprintf(err, "%s: empty (choose from %s)", def->name,
		    def->choices);
		free(out);
		return -1;
	}
	*norm = out;
	return 0;
}

static int
props_check_string(const struct props_def *def, const char *value,
    char **norm, char **err)
{
	char name[128], val[PROPS_VALUE_MAX], *out, *copy, *tok, *next;
	size_t outlen;

	switch (def->check) {
	case PROPS_CHECK_NONE:
		*norm = xstrdup(value);
		return 0;
	case PROPS_CHECK_HEADER:
		if (*value == '\0') {
			*norm = xstrdup("");
			return 0;
		}
		if (header_trigger_parse(value, name, sizeof(name), val,
		    sizeof(val)) == -1 || !props_header_name_valid(name)) {
			xasprintf(err, "%s: \"%s\" is not a header "
			    "\"Name: value\"", def->name, value);
			return -1;
		}
		xasprintf(norm, "%s: %s", name, val);
		return 0;
	case PROPS_CHECK_DOMAIN:
		out = props_lower(value);
		if (!props_domain_valid(out)) {
			xasprintf(err, "%s: \"%s\" is not a domain name",
			    def->name, value);
			free(out);
			return -1;
		}
		*norm = out;
		return 0;
	case PROPS_CHECK_DOMAINS:
		if (*value == '\0') {
			*norm = xstrdup("");
			return 0;
		}
		copy = props_lower(value);
		out = xcalloc(1, strlen(value) + 1);
		outlen = 0;
		for (tok = copy; tok != NULL; tok = next) {
			size_t n;

			if ((next = strchr(tok, ',')) != NULL)
				*next++ = '\0';
			while (*tok == ' ' || *tok == '\t')
				tok++;
			n = strlen(tok);
			while (n > 0 && (tok[n - 1] == ' ' || tok[n - 1] == '\t'))
				tok[--n] = '\0';
			if (!props_domain_valid(tok)) {
				xasprintf(err, "%s: \"%s\" is not a domain name",
				    def->name, tok);
				free(copy);
				free(out);
				return -1;
			}
			if (outlen > 0)
				out[outlen++] = ',';
			memcpy(out + outlen, tok, n + 1);
			outlen += n;
		}
		free(copy);
		*norm = out;
		return 0;
	case PROPS_CHECK_LIST:
		return props_check_list(def, value, norm, err);
	}
	fatalx("props: %s: unknown check %d", def->name, def->check);
}

int
props_check_value(const struct props_def *def, const char *value,
    char **norm, char **err)
{
	const unsigned char *p;
	char *tmp = NULL, *end;
	const char *c, *bar;
	long long n;
	regex_t re;
	int rc;

	*err = NULL;
	if (norm == NULL)
		norm = &tmp;
	*norm = NULL;
	if (value == NULL) {
		xasprintf(err, "%s: no value", def->name);
		return -1;
	}
	if (strlen(value) > PROPS_VALUE_MAX) {
		xasprintf(err, "%s: value longer than %d bytes", def->name,
		    PROPS_VALUE_MAX);
		return -1;
	}
	/* Values end up in headers and log lines: no CR, LF or other
	 * control characters. */
	for (p = (const unsigned char *)value; *p != '\0'; p++)
		if (*p < 0x20 || *p == 0x7f) {
			xasprintf(err, "%s: control character in value",
			    def->name);
			return -1;
		}

	switch (def->type) {
	case PROPS_BOOL:
		if (strcasecmp(value, "true") == 0)
			*norm = xstrdup("true");
		else if (strcasecmp(value, "false") == 0)
			*norm = xstrdup("false");
		else {
			xasprintf(err, "%s: \"%s\" is not a boolean (true or "
			    "false)", def->name, value);
			return -1;
		}
		break;
	case PROPS_INT:
		errno = 0;
		n = strtoll(value, &end, 10);
		if (*value == '\0' || *end != '\0' || errno != 0 ||
		    !(isdigit((unsigned char)*value) || *value == '-')) {
			xasprintf(err, "%s: \"%s\" is not an integer",
			    def->name, value);
			return -1;
		}
		if (n < def->min || n > def->max) {
			xasprintf(err, "%s: %lld is out of range %lld..%lld",
			    def->name, n, def->min, def->max);
			return -1;
		}
		xasprintf(norm, "%lld", n);
		break;
	case PROPS_ENUM:
		for (c = def->choices; c != NULL && *c != '\0';
		    c = bar ? bar + 1 : NULL) {
			size_t len;

			bar = strchr(c, '|');
			len = bar ? (size_t)(bar - c) : strlen(c);
			if (strlen(value) == len &&
			    strncasecmp(value, c, len) == 0) {
				*norm = xstrndup(c, len);
				break;
			}
		}
		if (*norm == NULL) {
			xasprintf(err, "%s: \"%s\" is not one of %s",
			    def->name, value, def->choices);
			return -1;
		}
		break;
	case PROPS_REGEX:
		if (*value == '\0') {
			xasprintf(err, "%s: empty regular expression",
			    def->name);
			return -1;
		}
		if ((rc = regcomp(&re, value, REG_EXTENDED | REG_ICASE |
		    REG_NOSUB)) != 0) {
			char why[256];

			regerror(rc, &re, why, sizeof(why));
			xasprintf(err, "%s: bad regular expression \"%s\": %s",
			    def->name, value, why);
			return -1;
		}
		regfree(&re);
		*norm = xstrdup(value);
		break;
	case PROPS_STRING:
		if (props_check_string(def, value, norm, err) == -1)
			return -1;
		break;
	}
	free(tmp);
	return 0;
}

/*
 * PostgreSQL has no data_version: every write to a property table bumps
 * postern_changes (statement triggers, whoever writes), which
 * db_data_version() reads.
 */
static const char props_changes_pg[] =
    "CREATE TABLE IF NOT EXISTS postern_changes (n BIGINT NOT NULL);"
    "INSERT INTO postern_changes (n) SELECT 0 WHERE NOT EXISTS"
    " (SELECT 1 FROM postern_changes);"
    "CREATE OR REPLACE FUNCTION postern_bump() RETURNS trigger"
    " LANGUAGE plpgsql AS $$ BEGIN UPDATE postern_changes SET n = n + 1;"
    " RETURN NULL; END $$;"
    "CREATE OR REPLACE TRIGGER props_global_bump AFTER INSERT OR UPDATE"
    " OR DELETE ON props_global FOR EACH STATEMENT"
    " EXECUTE FUNCTION postern_bump();"
    "CREATE OR REPLACE TRIGGER props_domain_bump AFTER INSERT OR UPDATE"
    " OR DELETE ON props_domain FOR EACH STATEMENT"
    " EXECUTE FUNCTION postern_bump();"
    "CREATE OR REPLACE TRIGGER props_user_bump AFTER INSERT OR UPDATE"
    " OR DELETE ON props_user FOR EACH STATEMENT"
    " EXECUTE FUNCTION postern_bump();"
    "CREATE OR REPLACE TRIGGER props_domains_bump AFTER INSERT OR UPDATE"
    " OR DELETE ON props_domains FOR EACH STATEMENT"
    " EXECUTE FUNCTION postern_bump();";

static int
props_init(struct props *p)
{
	char *err = NULL;

	/* Step 2: the change counter, PostgreSQL only. */
	const char *const steps[] = { props_schema,
	    db_kind(p->db) == DB_PG ? props_changes_pg : "" };

	if (db_migrate(p->db, "props", steps, 2, &err) == -1) {
		log_warnx("props: creating tables: %s", err);
		free(err);
		return -1;
	}
	return 0;
}

struct props *
props_wrap(struct db *db)
{
	struct props *p = xcalloc(1, sizeof(*p));

	p->db = db;
	if (props_init(p) == -1) {
		free(p);
		return NULL;
	}
	return p;
}

struct props *
props_open(const char *dbpath, char **err)
{
	struct db *db;
	struct props *p;

	if ((db = db_open(dbpath, err)) == NULL)
		return NULL;
	if ((p = props_wrap(db)) == NULL) {
		xasprintf(err, "%s: cannot create the property tables: %s",
		    db_redact(dbpath), db_errmsg(db));
		db_close(db);
		return NULL;
	}
	p->owned = 1;
	return p;
}

static void
props_cache_flush(struct props *p)
{
	for (size_t i = 0; i < p->ncache; i++) {
		free(p->cache[i].key);
		free(p->cache[i].val);
	}
	p->ncache = 0;
}

/*
 * The cache of effective values: a caller that reads the same properties
 * for every message (the gateway) calls props_cache_begin at the start of
 * each unit of work. The cache then answers repeated lookups without a
 * query, for as long as no other connection has written the database:
 * SQLite's data_version moves on each commit by another connection
 * (postern-cli setting a property, another thread's ledger write; on
 * PostgreSQL the change counter that property writes bump), and a
 * moved version empties the cache. Writes through this struct props empty
 * it too. Without props_cache_begin nothing is cached.
 */
int
props_cache_begin(struct props *p)
{
	int64_t dv;

	p->cache_on = 0;
	if ((dv = db_data_version(p->db)) == -1) {
		props_cache_flush(p);
		return -1;
	}
	if (p->cache == NULL)
		p->cache = xcalloc(PROPS_CACHE_MAX, sizeof(*p->cache));
	if (dv != p->cache_dv)
		props_cache_flush(p);
	p->cache_dv = dv;
	p->cache_on = 1;
	return 0;
}

static unsigned int
props_cache_hash(enum props_scope scope, const char *key, const char *name)
{
	unsigned int h = 2166136261u ^ (unsigned int)scope;
	const char *s;

	for (s = key ? key : ""; *s != '\0'; s++)
		h = (h ^ (unsigned char)*s) * 16777619u;
	h = (h ^ 0xff) * 16777619u;
	for (s = name; *s != '\0'; s++)
		h = (h ^ (unsigned char)*s) * 16777619u;
	return h;
}

static struct props_centry *
props_cache_find(struct props *p, unsigned int h, enum props_scope scope,
    const char *key, const char *name)
{
	for (size_t i = 0; i < p->ncache; i++) {
		struct props_centry *e = &p->cache[i];

		if (e->hash == h && e->scope == scope &&
		    strcmp(e->name, name) == 0 &&
		    ((e->key == NULL && key == NULL) || (e->key != NULL &&
		    key != NULL && strcmp(e->key, key) == 0)))
			return e;
	}
	return NULL;
}

static void
props_cache_put(struct props *p, unsigned int h, enum props_scope scope,
    const char *key, const char *name, const char *val,
    enum props_scope from)
{
	struct props_centry *e;

	if (p->ncache == PROPS_CACHE_MAX)
		props_cache_flush(p);
	e = &p->cache[p->ncache++];
	e->hash = h;
	e->scope = scope;
	e->key = key ? xstrdup(key) : NULL;
	e->name = name;
	e->val = xstrdup(val);
	e->from = from;
}

void
props_close(struct props *p)
{
	if (p == NULL)
		return;
	props_cache_flush(p);
	free(p->cache);
	db_finalize(p->lookup);
	if (p->owned)
		db_close(p->db);
	free(p);
}

struct props_tls {
	struct db	*db;
	struct props	*p;
};

static pthread_key_t	props_tls_key;
static pthread_once_t	props_tls_once = PTHREAD_ONCE_INIT;

static void
props_tls_free(void *arg)
{
	struct props_tls *t = arg;

	props_close(t->p);
	free(t);
}

static void
props_tls_init(void)
{
	if (pthread_key_create(&props_tls_key, props_tls_free) != 0)
		fatalx("props: pthread_key_create");
}

struct props *
props_thread(const char *dbpath, int node)
{
	struct props_tls *t;
	struct db *db;

	pthread_once(&props_tls_once, props_tls_init);
	if ((db = db_thread(dbpath)) == NULL)
		return NULL;
	if ((t = pthread_getspecific(props_tls_key)) == NULL) {
		t = xcalloc(1, sizeof(*t));
		if (pthread_setspecific(props_tls_key, t) != 0)
			fatalx("props: pthread_setspecific");
	}
	if (t->p == NULL || t->db != db) {
		/* First use, or db_thread() moved to another database. */
		props_close(t->p);
		t->db = NULL;
		if ((t->p = props_wrap(db)) == NULL) {
			log_warnx("props: %s: cannot create the property "
			    "tables: %s", db_redact(dbpath), db_errmsg(db));
			return NULL;
		}
		t->db = db;
	}
	props_set_node(t->p, node);
	return t->p;
}

void
props_set_node(struct props *p, int node)
{
	p->node = node;
}

/* The stored form of an email key: canonical address, folded (addr.h). */
static char *
props_email_key(const char *email)
{
	struct addr a;
	char buf[2 * ADDR_MAX + 2], folded[2 * ADDR_MAX + 2];
	const char *why;

	if (addr_parse(email, 1, &a, &why) == 0 &&
	    addr_format(&a, buf, sizeof(buf)) == 0 &&
	    addr_fold(buf, folded, sizeof(folded)) == 0)
		return xstrdup(folded);
	return props_lower(email);
}

char *
props_get_at(struct props *p, enum props_scope scope, const char *key,
    const char *name, enum props_scope *from)
{
	const struct props_def *def;
	struct props_centry *ce = NULL;
	char *email = NULL, *domain = NULL, *val = NULL, *err = NULL;
	char dom[PROPS_DOMAIN_MAX + 2];
	enum props_scope lvl0 = PROPS_SCOPE_DEFAULT;
	unsigned int h = 0;
	int rc;

	if ((def = props_def_find(name)) == NULL)
		fatalx("props: unknown property %s", name ? name : "(null)");
	if (p == NULL)		/* props_thread() could not open the database */
		return NULL;
	if (key != NULL && *key == '\0')
		key = NULL;
	if (p->cache_on) {
		h = props_cache_hash(scope, key, def->name);
		if ((ce = props_cache_find(p, h, scope, key, def->name)) !=
		    NULL) {
			if (from != NULL)
				*from = ce->from;
			return xstrdup(ce->val);
		}
		if (from == NULL)
			from = &lvl0;
	}
	if (key != NULL && scope == PROPS_SCOPE_USER) {
		email = props_email_key(key);
		if (addr_domain_of(email, dom, sizeof(dom)) == 0)
			domain = xstrdup(dom);
	} else if (key != NULL && scope == PROPS_SCOPE_DOMAIN)
		domain = props_domain_key(key);

	if (scope != PROPS_SCOPE_DEFAULT) {
		if (p->lookup == NULL &&
		    (p->lookup = db_prepare(p->db, props_lookup_sql)) == NULL)
			goto fail;
		db_reset(p->lookup);
		if (db_bind(p->lookup, "ttt", email, domain, name) == -1)
			goto fail;
		while ((rc = db_step(p->lookup)) == DB_ROW) {
			enum props_scope lvl = db_col_int(p->lookup, 0);
			const char *v = (const char *)
			    db_col_text(p->lookup, 1);

			/* A level the property may not live at is not
			 * consulted, whatever the table holds. */
			if ((def->scopes & props_scope_bit(lvl)) == 0 ||
			    lvl < scope)
				continue;
			if (props_check_value(def, v ? v : "", &val,
			    &err) == -1) {
				log_warnx("props: stored %s value refused: %s",
				    props_scope_name(lvl), err);
				free(err);
				db_reset(p->lookup);
				goto fail;
			}
			if (from != NULL)
				*from = lvl;
			break;
		}
		db_reset(p->lookup);
		if (rc == -1)
			goto fail;
	}
	if (val == NULL) {
		val = xstrdup(def->def);
		if (from != NULL)
			*from = PROPS_SCOPE_DEFAULT;
	}
	if (p->cache_on)
		props_cache_put(p, h, scope, key, def->name, val, *from);
	free(email);
	free(domain);
	return val;
fail:
	free(email);
	free(domain);
	return NULL;
}

char *
props_get(struct props *p, const char *email, const char *name,
    enum props_scope *from)
{
	return props_get_at(p, PROPS_SCOPE_USER, email, name, from);
}

int
props_get_bool(struct props *p, const char *email, const char *name)
{
	char *v;
	int r;

	if (props_def_find(name) == NULL ||
	    props_def_find(name)->type != PROPS_BOOL)
		fatalx("props: %s is not a boolean property", name);
	if ((v = props_get(p, email, name, NULL)) == NULL)
		return -1;
	r = strcmp(v, "true") == 0;
	free(v);
	return r;
}

long long
props_get_int(struct props *p, const char *email, const char *name)
{
	char *v;
	long long r;

	if (props_def_find(name) == NULL ||
	    props_def_find(name)->type != PROPS_INT)
		fatalx("props: %s is not an integer property", name);
	if ((v = props_get(p, email, name, NULL)) == NULL)
		return -1;
	r = strtoll(v, NULL, 10);
	free(v);
	return r;
}

/*
 * The table, key column and normalised key for a level; -1 with *err when
 * the key does not fit the level.
 */
static int
props_level(enum props_scope scope, const char *key, const char **table,
    const char **col, char **nkey, char **err)
{
	struct addr a;
	const char *why;

	*nkey = NULL;
	switch (scope) {
	case PROPS_SCOPE_USER:
		if (key == NULL || addr_parse(key, 1, &a, &why) == -1) {
			xasprintf(err, "\"%s\" is not an email address%s%s",
			    key ? key : "", key ? ": " : "", key ? why : "");
			return -1;
		}
		*table = "props_user";
		*col = "email";
		*nkey = props_email_key(key);
		return 0;
	case PROPS_SCOPE_DOMAIN:
		*nkey = props_domain_key(key ? key : "");
		if (!props_domain_valid(*nkey)) {
			xasprintf(err, "\"%s\" is not a domain name",
			    key ? key : "");
			xfree(nkey);
			return -1;
		}
		*table = "props_domain";
		*col = "domain";
		return 0;
	case PROPS_SCOPE_GLOBAL:
		*table = "props_global";
		*col = NULL;
		return 0;
	case PROPS_SCOPE_DEFAULT:
		break;
	}
	xasprintf(err, "the built-in defaults cannot be changed");
	return -1;
}

static int
props_scopes_text(int scopes, char *buf, size_t len)
{
	snprintf(buf, len, "%s%s%s%s%s",
	    scopes & PROPS_IN_USER ? "user" : "",
	    (scopes & PROPS_IN_USER) && (scopes & ~PROPS_IN_USER) ? ", " : "",
	    scopes & PROPS_IN_DOMAIN ? "domain" : "",
	    (scopes & PROPS_IN_DOMAIN) && (scopes & PROPS_IN_GLOBAL) ?
	    ", " : "",
	    scopes & PROPS_IN_GLOBAL ? "global" : "");
	return 0;
}

int
props_set(struct props *p, enum props_scope scope, const char *key,
    const char *name, const char *value, char **err)
{
	const struct props_def *def;
	const char *table, *col;
	char *nkey = NULL, *norm = NULL, *sql = NULL, scopes[64];
	int rc;

	*err = NULL;
	if ((def = props_def_find(name)) == NULL) {
		xasprintf(err, "unknown property \"%s\"", name ? name : "");
		return -1;
	}
	if (p->node != 0 && (def->nodes & p->node) == 0) {
		xasprintf(err, "property %s is not used on %s", name,
		    p->node == PROPS_NODE_GW ? "internal-gw" :
		    "external-portal");
		return -1;
	}
	if (scope != PROPS_SCOPE_DEFAULT &&
	    (def->scopes & props_scope_bit(scope)) == 0) {
		props_scopes_text(def->scopes, scopes, sizeof(scopes));
		xasprintf(err, "property %s cannot be set at %s level "
		    "(allowed: %s)", name, props_scope_name(scope), scopes);
		return -1;
	}
	if (props_level(scope, key, &table, &col, &nkey, err) == -1)
		return -1;
	props_cache_flush(p);
	if (value != NULL && props_check_value(def, value, &norm, err) == -1) {
		free(nkey);
		return -1;
	}

	if (value == NULL)
		xasprintf(&sql, "DELETE FROM %s WHERE name = ?%s%s%s", table,
		    col ? " AND " : "", col ? col : "", col ? " = ?" : "");
	else
		xasprintf(&sql, "INSERT INTO %s (name, value%s%s) VALUES "
		    "(?, ?%s) ON CONFLICT (%s%sname) DO UPDATE SET value = "
		    "excluded.value", table, col ? ", " : "", col ? col : "",
		    col ? ", ?" : "", col ? col : "", col ? ", " : "");
	/* Bind in order: name, [value], [key]; the letters follow. */
	if (norm != NULL && col != NULL)
		rc = db_run(p->db, sql, "ttt", name, norm, nkey);
	else if (norm != NULL)
		rc = db_run(p->db, sql, "tt", name, norm);
	else if (col != NULL)
		rc = db_run(p->db, sql, "tt", name, nkey);
	else
		rc = db_run(p->db, sql, "t", name);
	if (rc == -1)
		xasprintf(err, "database: %s", db_errmsg(p->db));
	free(sql);
	free(nkey);
	free(norm);
	return rc == -1 ? -1 : 0;
}

int
props_list(struct props *p, enum props_scope scope, const char *key,
    void (*cb)(void *, const char *, const char *), void *arg)
{
	const char *table, *col;
	char *nkey = NULL, *sql = NULL, *err = NULL;
	struct db_stmt *st = NULL;
	int rc;

	if (props_level(scope, key, &table, &col, &nkey, &err) == -1) {
		log_warnx("props: %s", err);
		free(err);
		return -1;
	}
	xasprintf(&sql, "SELECT name, value FROM %s%s%s%s ORDER BY name",
	    table, col ? " WHERE " : "", col ? col : "", col ? " = ?" : "");
	st = db_prepare(p->db, sql);
	free(sql);
	if (st == NULL) {
		free(nkey);
		return -1;
	}
	rc = col != NULL ? db_bind(st, "t", nkey) : 0;
	while (rc == 0 && (rc = db_step(st)) == DB_ROW) {
		cb(arg, (const char *)db_col_text(st, 0),
		    (const char *)db_col_text(st, 1));
		rc = 0;
	}
	db_finalize(st);
	free(nkey);
	return rc == DB_DONE ? 0 : -1;
}

int
props_domain_add(struct props *p, const char *domain, char **err)
{
	char *d = props_domain_key(domain ? domain : "");
	int rc;

	*err = NULL;
	if (!props_domain_valid(d)) {
		xasprintf(err, "\"%s\" is not a domain name",
		    domain ? domain : "");
		free(d);
		return -1;
	}
	rc = db_run(p->db, "INSERT INTO props_domains (domain) "
	    "VALUES (?) ON CONFLICT DO NOTHING", "t", d);
	if (rc == -1)
		xasprintf(err, "database: %s", db_errmsg(p->db));
	free(d);
	return rc == -1 ? -1 : rc == 0 ? 1 : 0;
}

/* Removing a domain removes its domain-level properties too. */
int
props_domain_remove(struct props *p, const char *domain, char **err)
{
	char *d = props_domain_key(domain ? domain : "");
	int n;

	*err = NULL;
	if (db_begin(p->db) == -1) {
		xasprintf(err, "database: %s", db_errmsg(p->db));
		free(d);
		return -1;
	}
	if ((n = db_run(p->db, "DELETE FROM props_domains WHERE domain = ?",
	    "t", d)) == 0)
		xasprintf(err, "no such domain \"%s\"", d);
	else if (n > 0 && db_run(p->db, "DELETE FROM props_domain WHERE "
	    "domain = ?", "t", d) == -1)
		n = -1;
	if (n == -1)
		xasprintf(err, "database: %s", db_errmsg(p->db));
	if (n <= 0 || db_commit(p->db) == -1) {
		if (n > 0)
			xasprintf(err, "database: %s", db_errmsg(p->db));
		db_rollback(p->db);
		n = -1;
	}
	free(d);
	return n > 0 ? 0 : -1;
}

int
props_domain_exists(struct props *p, const char *domain)
{
	struct db_stmt *st;
	char *d;
	int rc = -1;

	if (p == NULL)
		return -1;
	if ((st = db_prepare_cached(p->db, "SELECT 1 FROM props_domains WHERE "
	    "domain = ?")) == NULL)
		return -1;
	d = props_domain_key(domain ? domain : "");
	if (db_bind(st, "t", d) == 0)
		rc = db_step(st);
	db_finalize(st);
	free(d);
	return rc == DB_ROW ? 1 : rc;
}

int
props_domain_list(struct props *p, void (*cb)(void *, const char *),
    void *arg)
{
	struct db_stmt *st;
	int rc;

	if ((st = db_prepare(p->db, "SELECT domain FROM props_domains "
	    "ORDER BY domain")) == NULL)
		return -1;
	while ((rc = db_step(st)) == DB_ROW)
		cb(arg, (const char *)db_col_text(st, 0));
	db_finalize(st);
	return rc == DB_DONE ? 0 : -1;
}
