/* Schema-checked libconfig files; see config.h. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "log.h"
#include "xmalloc.h"

struct conf_errbuf {
	char	*s;
	size_t	 len;
};

static void conf_err(struct conf_errbuf *, const char *, int, const char *,
    const char *, ...) __attribute__((format(printf, 5, 6)));

static void
conf_err(struct conf_errbuf *eb, const char *file, int line, const char *key,
    const char *fmt, ...)
{
	char msg[512], *s;
	va_list ap;
	int n;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	n = xasprintf(&s, "%s:%d: %s: %s\n", file, line, key, msg);
	eb->s = xreallocarray(eb->s, eb->len + n + 1, 1);
	memcpy(eb->s + eb->len, s, n + 1);
	eb->len += n;
	free(s);
}

static const struct conf_key *
conf_schema_find(const struct conf_key *schema, const char *path)
{
	for (; schema->path != NULL; schema++)
		if (strcmp(schema->path, path) == 0)
			return schema;
	return NULL;
}

static const char *
conf_type_name(enum conf_type t)
{
	switch (t) {
	case CONF_BOOL: return "a boolean (true or false)";
	case CONF_INT: return "an integer";
	case CONF_STRING: return "a string";
	case CONF_STRLIST: return "an array of strings [\"...\", ...]";
	case CONF_GROUP: return "a group { ... }";
	case CONF_GROUPLIST: return "a list of groups ( { ... }, ... )";
	}
	return "?";
}

static void conf_check_group(struct conf *, config_setting_t *, const char *,
    struct conf_errbuf *);

static void
conf_check_setting(struct conf *c, config_setting_t *s, const char *path,
    struct conf_errbuf *eb)
{
	const struct conf_key *k;
	int type = config_setting_type(s), line = config_setting_source_line(s);
	long long v;

	if ((k = conf_schema_find(c->schema, path)) == NULL) {
		conf_err(eb, c->file, line, path, "unknown key");
		return;
	}
	switch (k->type) {
	case CONF_BOOL:
		if (type != CONFIG_TYPE_BOOL)
			goto badtype;
		break;
	case CONF_INT:
		if (type != CONFIG_TYPE_INT && type != CONFIG_TYPE_INT64)
			goto badtype;
		v = config_setting_get_int64(s);
		if (type == CONFIG_TYPE_INT)
			v = config_setting_get_int(s);
		if (v < k->min || v > k->max)
			conf_err(eb, c->file, line, path,
			    "%lld is out of range [%lld, %lld]", v, k->min,
			    k->max);
		break;
	case CONF_STRING:
		if (type != CONFIG_TYPE_STRING)
			goto badtype;
		if (k->max > 0 &&
		    strlen(config_setting_get_string(s)) > (size_t)k->max)
			conf_err(eb, c->file, line, path,
			    "longer than %lld characters", k->max);
		if (k->required && *config_setting_get_string(s) == '\0')
			conf_err(eb, c->file, line, path, "must not be empty");
		break;
	case CONF_STRLIST:
		if (type != CONFIG_TYPE_ARRAY)
			goto badtype;
		for (int i = 0; i < config_setting_length(s); i++)
			if (config_setting_type(config_setting_get_elem(s, i))
			    != CONFIG_TYPE_STRING)
				goto badtype;
		break;
	case CONF_GROUP:
		if (type != CONFIG_TYPE_GROUP)
			goto badtype;
		conf_check_group(c, s, path, eb);
		break;
	case CONF_GROUPLIST: {
		char *sub;

		if (type != CONFIG_TYPE_LIST)
			goto badtype;
		xasprintf(&sub, "%s.[]", path);
		for (int i = 0; i < config_setting_length(s); i++) {
			config_setting_t *e = config_setting_get_elem(s, i);

			if (config_setting_type(e) != CONFIG_TYPE_GROUP) {
				conf_err(eb, c->file,
				    config_setting_source_line(e), path,
				    "element %d must be a group { ... }", i);
				continue;
			}
			conf_check_group(c, e, sub, eb);
		}
		free(sub);
		break;
	}
	}
	return;
badtype:
	conf_err(eb, c->file, line, path, "must be %s", conf_type_name(k->type));
}

/* Checks every member of group g (at path prefix) and required members. */
static void
conf_check_group(struct conf *c, config_setting_t *g, const char *prefix,
    struct conf_errbuf *eb)
{
	size_t plen = prefix ? strlen(prefix) : 0;
	char *path;

	for (int i = 0; i < config_setting_length(g); i++) {
		config_setting_t *s = config_setting_get_elem(g, i);

		if (prefix)
			xasprintf(&path, "%s.%s", prefix, config_setting_name(s));
		else
			path = xstrdup(config_setting_name(s));
		conf_check_setting(c, s, path, eb);
		free(path);
	}
	/* Required direct members of this group. */
	for (const struct conf_key *k = c->schema; k->path != NULL; k++) {
		const char *rest;

		if (!k->required)
			continue;
		if (plen) {
			if (strncmp(k->path, prefix, plen) != 0 ||
			    k->path[plen] != '.')
				continue;
			rest = k->path + plen + 1;
		} else
			rest = k->path;
		if (strchr(rest, '.') != NULL)
			continue;
		if (config_setting_get_member(g, rest) == NULL)
			conf_err(eb, c->file, config_setting_source_line(g) ?
			    config_setting_source_line(g) : 1, k->path,
			    "required key is missing");
	}
}

int
conf_load(struct conf *c, const char *file, const struct conf_key *schema,
    char **errstr)
{
	struct conf_errbuf eb = { NULL, 0 };

	memset(c, 0, sizeof(*c));
	c->schema = schema;
	c->file = xstrdup(file);
	config_init(&c->cfg);
	if (config_read_file(&c->cfg, file) != CONFIG_TRUE) {
		if (config_error_type(&c->cfg) == CONFIG_ERR_FILE_IO)
			xasprintf(errstr, "%s: cannot read: %s\n", file,
			    strerror(errno));
		else
			xasprintf(errstr, "%s:%d: syntax error: %s\n", file,
			    config_error_line(&c->cfg),
			    config_error_text(&c->cfg));
		conf_free(c);
		return -1;
	}
	conf_check_group(c, config_root_setting(&c->cfg), NULL, &eb);
	if (eb.s != NULL) {
		*errstr = eb.s;
		conf_free(c);
		return -1;
	}
	return 0;
}

void
conf_free(struct conf *c)
{
	if (c->file != NULL) {
		config_destroy(&c->cfg);
		xfree(&c->file);
	}
}

static const struct conf_key *
conf_key_must(const struct conf *c, const char *path, enum conf_type t)
{
	const struct conf_key *k;

	if ((k = conf_schema_find(c->schema, path)) == NULL)
		fatalx("config: %s is not in the schema", path);
	if (k->type != t)
		fatalx("config: %s asked as the wrong type", path);
	return k;
}

config_setting_t *
conf_setting(const struct conf *c, const char *path)
{
	return config_lookup(&c->cfg, path);
}

static long long
conf_setting_int(config_setting_t *s)
{
	if (config_setting_type(s) == CONFIG_TYPE_INT64)
		return config_setting_get_int64(s);
	return config_setting_get_int(s);
}

long long
conf_int(const struct conf *c, const char *path)
{
	const struct conf_key *k = conf_key_must(c, path, CONF_INT);
	config_setting_t *s = conf_setting(c, path);

	if (s != NULL)
		return conf_setting_int(s);
	return k->def ? strtoll(k->def, NULL, 0) : 0;
}

int
conf_bool(const struct conf *c, const char *path)
{
	const struct conf_key *k = conf_key_must(c, path, CONF_BOOL);
	config_setting_t *s = conf_setting(c, path);

	if (s != NULL)
		return config_setting_get_bool(s);
	return k->def != NULL && strcmp(k->def, "true") == 0;
}

const char *
conf_str(const struct conf *c, const char *path)
{
	const struct conf_key *k = conf_key_must(c, path, CONF_STRING);
	config_setting_t *s = conf_setting(c, path);

	if (s != NULL)
		return config_setting_get_string(s);
	return k->def;
}

size_t
conf_strlist(const struct conf *c, const char *path, const char ***out)
{
	const struct conf_key *k = conf_key_must(c, path, CONF_STRLIST);
	config_setting_t *s = conf_setting(c, path);
	size_t n = 0;

	if (s == NULL) {
		/* A default list is written as comma-separated text. */
		const char **v = xcalloc(16, sizeof(*v));
		static __thread char buf[1024];
		char *p, *tok, *save;

		if (k->def != NULL) {
			snprintf(buf, sizeof(buf), "%s", k->def);
			for (p = buf; n < 15 &&
			    (tok = strtok_r(p, ",", &save)) != NULL; p = NULL)
				v[n++] = tok;
		}
		*out = v;
		return n;
	}
	n = config_setting_length(s);
	*out = xcalloc(n + 1, sizeof(**out));
	for (size_t i = 0; i < n; i++)
		(*out)[i] = config_setting_get_string_elem(s, i);
	return n;
}

static const struct conf_key *
conf_elem_key(const struct conf *c, const char *listpath, const char *key,
    enum conf_type t)
{
	char *path;
	const struct conf_key *k;

	xasprintf(&path, "%s.[].%s", listpath, key);
	k = conf_key_must(c, path, t);
	free(path);
	return k;
}

long long
conf_elem_int(const struct conf *c, config_setting_t *e, const char *listpath,
    const char *key)
{
	const struct conf_key *k = conf_elem_key(c, listpath, key, CONF_INT);
	config_setting_t *s = config_setting_get_member(e, key);

	if (s != NULL)
		return conf_setting_int(s);
	return k->def ? strtoll(k->def, NULL, 0) : 0;
}

int
conf_elem_bool(const struct conf *c, config_setting_t *e, const char *listpath,
    const char *key)
{
	const struct conf_key *k = conf_elem_key(c, listpath, key, CONF_BOOL);
	config_setting_t *s = config_setting_get_member(e, key);

	if (s != NULL)
		return config_setting_get_bool(s);
	return k->def != NULL && strcmp(k->def, "true") == 0;
}

const char *
conf_elem_str(const struct conf *c, config_setting_t *e, const char *listpath,
    const char *key)
{
	const struct conf_key *k = conf_elem_key(c, listpath, key, CONF_STRING);
	config_setting_t *s = config_setting_get_member(e, key);

	if (s != NULL)
		return config_setting_get_string(s);
	return k->def;
}
