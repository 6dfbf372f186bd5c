/*
 * postern-cli domain: the domains this node knows (gateway) or serves
 * (portal). Removing a domain removes its domain-level properties too.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "props.h"

static const char cli_domain_usage_text[] =
    "usage: postern-cli domain add|remove --domain DOMAIN\n"
    "       postern-cli domain list\n";

static void
cli_domain_print(void *arg, const char *domain)
{
	(void)arg;
	printf("%s\n", domain);
}

int
cli_domain(struct cli *c, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "domain", required_argument, NULL, 'd' },
		{ NULL, 0, NULL, 0 },
	};
	const char *verb, *domain = NULL;
	char *err = NULL;
	int ch, rc;

	if (argc < 2)
		return cli_usage(cli_domain_usage_text, NULL);
	verb = argv[1];
	if (!cli_verb_ok(verb, (const char *const[]){ "add", "remove", "list",
	    NULL }))
		return cli_usage(cli_domain_usage_text, "unknown verb \"%s\"",
		    verb);
	optind = 0;
	opterr = 0;
	while ((ch = getopt_long(argc - 1, argv + 1, ":", longopts,
	    NULL)) != -1) {
		switch (ch) {
		case 'd':
			domain = optarg;
			break;
		default:
			return cli_bad_option(cli_domain_usage_text, ch,
			    argv[optind]);
		}
	}
	if (optind < argc - 1)
		return cli_usage(cli_domain_usage_text,
		    "unexpected argument \"%s\"", argv[optind + 1]);
	if (strcmp(verb, "list") == 0 && domain != NULL)
		return cli_usage(cli_domain_usage_text, "list takes no --domain");
	if (strcmp(verb, "list") != 0 && domain == NULL)
		return cli_usage(cli_domain_usage_text, "--domain is missing");
	if (cli_open(c) == -1)
		return CLI_ERR;

	if (strcmp(verb, "list") == 0) {
		if (props_domain_list(c->props, cli_domain_print, NULL) == -1)
			return cli_err("cannot list the domains");
		return CLI_OK;
	}
	if (strcmp(verb, "add") == 0)
		rc = props_domain_add(c->props, domain, &err);
	else
		rc = props_domain_remove(c->props, domain, &err);
	if (rc == -1) {
		cli_err("domain %s: %s", verb, err);
		free(err);
		return CLI_ERR;
	}
	/* Re-running a seed's commands is not an error. */
	if (rc == 1)
		printf("domain %s: already present\n", domain);
	return CLI_OK;
}
