/*
 * postern-cli property: get, set, unset and list properties at the global,
 * domain and user levels, and print the built-in table (`defaults`).
 * stdout carries only the data asked for (a value, `name = value` lines),
 * so scripts can use it; everything else goes to stderr.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "addr.h"
#include "cli.h"
#include "props.h"

static const char cli_property_usage_text[] =
    "usage: postern-cli property global get|set|unset|list [--name NAME] "
    "[--value VALUE] [--explain]\n"
    "       postern-cli property domain get|set|unset|list --domain DOMAIN "
    "[--name NAME] [--value VALUE] [--explain]\n"
    "       postern-cli property user get|set|unset|list --email EMAIL "
    "[--name NAME] [--value VALUE] [--explain]\n"
    "       postern-cli property defaults\n"
    "  get prints the effective value (with --explain, the level it comes\n"
    "  from on stderr); list prints the properties set at that level.\n";

struct cli_property_opts {
	const char	*name;
	const char	*value;
	const char	*domain;
	const char	*email;
	int		 explain;
};

static void
cli_property_print(void *arg, const char *name, const char *value)
{
	(void)arg;
	printf("%s = %s\n", name, value);
}

static void
cli_property_scopes(int scopes, char *buf, size_t len)
{
	snprintf(buf, len, "%s%s%s",
	    scopes & PROPS_IN_USER ? "user," : "",
	    scopes & PROPS_IN_DOMAIN ? "domain," : "",
	    scopes & PROPS_IN_GLOBAL ? "global," : "");
	if (*buf != '\0')
		buf[strlen(buf) - 1] = '\0';
}

/* One tab-separated line per property: name, type, default, scopes, nodes,
 * description. */
static int
cli_property_defaults(void)
{
	const struct props_def *d;
	char type[256], scopes[32];

	for (d = props_defs; d->name != NULL; d++) {
		if (d->type == PROPS_ENUM)
			snprintf(type, sizeof(type), "enum(%s)", d->choices);
		else if (d->type == PROPS_INT)
			snprintf(type, sizeof(type), "int(%lld..%lld)",
			    d->min, d->max);
		else
			snprintf(type, sizeof(type), "%s",
			    props_type_name(d->type));
		cli_property_scopes(d->scopes, scopes, sizeof(scopes));
		printf("%s\t%s\t%s\t%s\t%s\t%s\n", d->name, type, d->def,
		    scopes, d->nodes == (PROPS_NODE_GW | PROPS_NODE_PORTAL) ?
		    "both" : cli_node_name(d->nodes), d->doc);
	}
	return CLI_OK;
}

static int
cli_property_parse(int argc, char **argv, struct cli_property_opts *o)
{
	static const struct option longopts[] = {
		{ "name", required_argument, NULL, 'n' },
		{ "value", required_argument, NULL, 'v' },
		{ "domain", required_argument, NULL, 'd' },
		{ "email", required_argument, NULL, 'e' },
		{ "explain", no_argument, NULL, 'x' },
		{ NULL, 0, NULL, 0 },
	};
	int ch;

	memset(o, 0, sizeof(*o));
	optind = 0;	/* GNU getopt: start over on this argv */
	opterr = 0;
	while ((ch = getopt_long(argc, argv, ":", longopts, NULL)) != -1) {
		switch (ch) {
		case 'n': o->name = optarg; break;
		case 'v': o->value = optarg; break;
		case 'd': o->domain = optarg; break;
		case 'e': o->email = optarg; break;
		case 'x': o->explain = 1; break;
		default:
			return cli_bad_option(cli_property_usage_text, ch,
			    argv[optind - 1]);
		}
	}
	if (optind < argc)
		return cli_usage(cli_property_usage_text,
		    "unexpected argument \"%s\"", argv[optind]);
	return CLI_OK;
}

int
cli_property(struct cli *c, int argc, char **argv)
{
	const struct props_def *def;
	struct cli_property_opts o;
	enum props_scope scope, from;
	const char *level, *verb, *key, *why;
	struct addr a;
	char *err = NULL, *v;
	int rc;

	if (argc == 2 && (strcmp(argv[1], "defaults") == 0 ||
	    strcmp(argv[1], "list-all") == 0))
		return cli_property_defaults();
	if (argc < 3)
		return cli_usage(cli_property_usage_text, NULL);
	level = argv[1];
	verb = argv[2];
	/* `property domain add|remove` is `domain add|remove`. */
	if (strcmp(level, "domain") == 0 && (strcmp(verb, "add") == 0 ||
	    strcmp(verb, "remove") == 0))
		return cli_domain(c, argc - 1, argv + 1);
	if (strcmp(level, "global") == 0)
		scope = PROPS_SCOPE_GLOBAL;
	else if (strcmp(level, "domain") == 0)
		scope = PROPS_SCOPE_DOMAIN;
	else if (strcmp(level, "user") == 0)
		scope = PROPS_SCOPE_USER;
	else
		return cli_usage(cli_property_usage_text,
		    "unknown level \"%s\" (global, domain or user)", level);
	if (!cli_verb_ok(verb, (const char *const[]){ "get", "set", "unset",
	    "list", NULL }))
		return cli_usage(cli_property_usage_text,
		    "unknown verb \"%s\"", verb);
	if ((rc = cli_property_parse(argc - 2, argv + 2, &o)) != CLI_OK)
		return rc;

	/* Which options each level and verb takes. */
	key = scope == PROPS_SCOPE_USER ? o.email :
	    scope == PROPS_SCOPE_DOMAIN ? o.domain : NULL;
	if (scope == PROPS_SCOPE_DOMAIN && o.domain == NULL)
		return cli_usage(cli_property_usage_text, "--domain is missing");
	if (scope == PROPS_SCOPE_USER && o.email == NULL)
		return cli_usage(cli_property_usage_text, "--email is missing");
	if (scope != PROPS_SCOPE_DOMAIN && o.domain != NULL)
		return cli_usage(cli_property_usage_text,
		    "--domain is only for the domain level");
	if (scope != PROPS_SCOPE_USER && o.email != NULL)
		return cli_usage(cli_property_usage_text,
		    "--email is only for the user level");
	if (strcmp(verb, "list") == 0 && o.name != NULL)
		return cli_usage(cli_property_usage_text,
		    "list takes no --name");
	if (strcmp(verb, "list") != 0 && o.name == NULL)
		return cli_usage(cli_property_usage_text, "--name is missing");
	if (strcmp(verb, "set") == 0 && o.value == NULL)
		return cli_usage(cli_property_usage_text, "--value is missing");
	if (strcmp(verb, "set") != 0 && o.value != NULL)
		return cli_usage(cli_property_usage_text,
		    "--value is only for set");

	if (o.email != NULL && addr_parse(o.email, 1, &a, &why) == -1)
		return cli_err("\"%s\" is not an email address: %s", o.email,
		    why);
	if (o.name != NULL && (def = props_def_find(o.name)) == NULL)
		return cli_err("unknown property \"%s\" (see `postern-cli "
		    "property defaults`)", o.name);
	if (cli_open(c) == -1)
		return CLI_ERR;

	if (strcmp(verb, "list") == 0) {
		if (props_list(c->props, scope, key, cli_property_print,
		    NULL) == -1)
			return cli_err("cannot list the %s properties%s%s",
			    level, key ? " of " : "", key ? key : "");
		return CLI_OK;
	}
	def = props_def_find(o.name);
	if ((def->nodes & c->node) == 0)
		return cli_err("property %s is not used on %s", o.name,
		    cli_node_name(c->node));
	if (strcmp(verb, "get") == 0) {
		if ((v = props_get_at(c->props, scope, key, o.name,
		    &from)) == NULL)
			return cli_err("cannot read %s from the database",
			    o.name);
		printf("%s\n", v);
		if (o.explain)
			fprintf(stderr, "%s = %s (from %s)\n", o.name, v,
			    props_scope_name(from));
		free(v);
		return CLI_OK;
	}
	if (props_set(c->props, scope, key, o.name,
	    strcmp(verb, "set") == 0 ? o.value : NULL, &err) == -1) {
		cli_err("%s", err);
		free(err);
		return CLI_ERR;
	}
	return CLI_OK;
}
