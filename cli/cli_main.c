/*
 * postern-cli: the admin's tool for the node's database, shaped like
 * ciphermail-cli: `postern-cli [-c FILE] <group> <verb> [--options]`.
 * It reads only the config's `node` and `database` (the daemons' --check
 * validates the rest) and dispatches to one group from the table below.
 * Input is the admin's command line: bad input is a message and exit 1
 * (bad value) or 2 (bad usage), never a crash.
 */
#include <libgen.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libconfig.h>

#include "cli.h"
#include "db.h"
#include "log.h"
#include "props.h"
#include "xmalloc.h"

#define CLI_DEFAULT_CONF	"/etc/postern/postern.conf"
#define CLI_GW_CONF		"/etc/postern/internal-gw.conf"
#define CLI_PORTAL_CONF		"/etc/postern/external-portal.conf"

struct cli_group {
	const char	*name;
	int		(*fn)(struct cli *, int, char **);
	int		 lazy;	/* calls cli_open() itself after parsing */
	const char	*help;
};

static const struct cli_group cli_groups[] = {
	{ "property", cli_property, 1,
	    "global|domain|user get|set|unset|list; defaults" },
	{ "domain", cli_domain, 1, "add|remove|list" },
	{ "policy", cli_policy, 1, "explain (internal-gw)" },
	{ "cert", cli_cert, 1, "import|list|remove (internal-gw)" },
	{ "crl", cli_crl, 1, "import|list|distribution-points (internal-gw)" },
	{ "key", cli_key, 1, "import|list|remove OpenPGP keys (internal-gw)" },
	{ "user", cli_user, 1, "list|show|delete|reset-password|reset-2fa|"
	    "resend-invite (external-portal)" },
	{ "mailbox", cli_mailbox, 1, "list (external-portal)" },
	{ "stats", cli_stats, 1, "store statistics (external-portal)" },
	{ "cleanup", cli_cleanup, 1, "retention cleanup [--dry-run] "
	    "(external-portal)" },
	{ "tunnel", cli_tunnel, 1, "keygen --role gateway|portal; "
	    "legacy-clear (add-on tunnel)" },
	{ "storage", cli_storage, 1, "status|unlock [--password-file F|-]|"
	    "encrypt-existing "
	    "(external-portal encrypted storage)" },
	{ NULL, NULL, 0, NULL },
};

static void
cli_main_usage(FILE *f)
{
	const struct cli_group *g;

	fprintf(f, "usage: postern-cli [-c FILE] <group> <verb> [--options]\n"
	    "  -c FILE  node config (default $POSTERN_CONF, else "
	    CLI_DEFAULT_CONF ",\n"
	    "           else the one of " CLI_GW_CONF " and\n"
	    "           " CLI_PORTAL_CONF " that exists)\n"
	    "groups:\n");
	for (g = cli_groups; g->name != NULL; g++)
		fprintf(f, "  %-10s %s\n", g->name, g->help ? g->help : "");
}

int
cli_err(const char *fmt, ...)
{
	va_list ap;

	fputs("postern-cli: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return CLI_ERR;
}

int
cli_usage(const char *usage, const char *fmt, ...)
{
	va_list ap;

	if (fmt != NULL) {
		fputs("postern-cli: ", stderr);
		va_start(ap, fmt);
		vfprintf(stderr, fmt, ap);
		va_end(ap);
		fputc('\n', stderr);
	}
	fputs(usage, stderr);
	return CLI_USAGE;
}

int
cli_verb_ok(const char *verb, const char *const *verbs)
{
	for (; *verbs != NULL; verbs++)
		if (strcmp(verb, *verbs) == 0)
			return 1;
	return 0;
}

int
cli_bad_option(const char *usage, int ch, const char *opt)
{
	return cli_usage(usage, ch == ':' ? "%s needs a value" :
	    "unknown option %s", opt);
}

const char *
cli_node_name(int node)
{
	switch (node) {
	case CLI_NODE_GW: return "internal-gw";
	case CLI_NODE_PORTAL: return "external-portal";
	}
	return "?";
}

const char *
cli_conf_str(struct cli *c, const char *path)
{
	const char *s = NULL;

	if (c->cfg == NULL || config_lookup_string(c->cfg, path, &s) !=
	    CONFIG_TRUE)
		return NULL;
	return s;
}

static int
cli_load_conf(struct cli *c)
{
	const char *node, *db;
	char *dir;

	c->cfg = xcalloc(1, sizeof(*c->cfg));
	config_init(c->cfg);
	dir = xstrdup(c->conf_path);
	config_set_include_dir(c->cfg, dirname(dir));
	free(dir);
	if (config_read_file(c->cfg, c->conf_path) != CONFIG_TRUE) {
		if (config_error_type(c->cfg) == CONFIG_ERR_FILE_IO)
			cli_err("%s: cannot read the file", c->conf_path);
		else
			cli_err("%s:%d: %s", config_error_file(c->cfg) ?
			    config_error_file(c->cfg) : c->conf_path,
			    config_error_line(c->cfg),
			    config_error_text(c->cfg));
		return -1;
	}
	if ((node = cli_conf_str(c, "node")) == NULL)
		return cli_err("%s: node: missing (\"internal-gw\" or "
		    "\"external-portal\")", c->conf_path), -1;
	if (strcmp(node, "internal-gw") == 0)
		c->node = CLI_NODE_GW;
	else if (strcmp(node, "external-portal") == 0)
		c->node = CLI_NODE_PORTAL;
	else
		return cli_err("%s: node: \"%s\" is neither \"internal-gw\" "
		    "nor \"external-portal\"", c->conf_path, node), -1;
	if ((db = cli_conf_str(c, "database")) == NULL || *db == '\0')
		return cli_err("%s: database: missing", c->conf_path), -1;
	c->dbpath = xstrdup(db);
	return 0;
}

int
cli_open(struct cli *c)
{
	char *err = NULL;

	if (c->props != NULL)
		return 0;
	if (c->cfg == NULL && cli_load_conf(c) == -1)
		return -1;
	if (c->cfg != NULL && c->dbpath == NULL)
		return -1;	/* an earlier load failed */
	if ((c->db = db_open(c->dbpath, &err)) == NULL) {
		cli_err("database %s", err);
		free(err);
		return -1;
	}
	if ((c->props = props_wrap(c->db)) == NULL) {
		cli_err("database %s: cannot create the property tables",
		    c->dbpath);
		return -1;
	}
	props_set_node(c->props, c->node);
	return 0;
}

/*
 * Without -c and $POSTERN_CONF: postern.conf when the admin made one, else
 * the config of the one node installed here (the packages install
 * internal-gw.conf or external-portal.conf). With both or neither present
 * the name stays postern.conf and loading it says what is missing.
 */
static const char *
cli_default_conf(void)
{
	int gw, portal;

	if (access(CLI_DEFAULT_CONF, F_OK) == 0)
		return CLI_DEFAULT_CONF;
	gw = access(CLI_GW_CONF, F_OK) == 0;
	portal = access(CLI_PORTAL_CONF, F_OK) == 0;
	if (gw && !portal)
		return CLI_GW_CONF;
	if (portal && !gw)
		return CLI_PORTAL_CONF;
	return CLI_DEFAULT_CONF;
}

static void
cli_close(struct cli *c)
{
	props_close(c->props);
	db_close(c->db);
	if (c->cfg != NULL) {
		config_destroy(c->cfg);
		free(c->cfg);
	}
	free(c->dbpath);
}

int
main(int argc, char *argv[])
{
	const struct cli_group *g;
	struct cli c;
	const char *env;
	int ch, rc;

	memset(&c, 0, sizeof(c));
	log_init("postern-cli", LOG_TO_STDERR, 0);
	c.conf_path = (env = getenv("POSTERN_CONF")) != NULL && *env != '\0' ?
	    env : cli_default_conf();

	/* '+': options end at the group name; the group parses the rest. */
	opterr = 0;
	while ((ch = getopt(argc, argv, "+c:h")) != -1) {
		switch (ch) {
		case 'c':
			c.conf_path = optarg;
			break;
		case 'h':
			cli_main_usage(stdout);
			return CLI_OK;
		default:
			fprintf(stderr, "postern-cli: unknown option -%c\n",
			    optopt);
			cli_main_usage(stderr);
			return CLI_USAGE;
		}
	}
	if (optind >= argc) {
		cli_main_usage(stderr);
		return CLI_USAGE;
	}
	for (g = cli_groups; g->name != NULL; g++)
		if (strcmp(g->name, argv[optind]) == 0)
			break;
	if (g->name == NULL) {
		fprintf(stderr, "postern-cli: unknown command group \"%s\"\n",
		    argv[optind]);
		cli_main_usage(stderr);
		return CLI_USAGE;
	}
	if (!g->lazy && cli_open(&c) == -1) {
		cli_close(&c);
		return CLI_ERR;
	}
	rc = g->fn(&c, argc - optind, argv + optind);
	cli_close(&c);
	return rc;
}
