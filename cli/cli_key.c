/*
 * postern-cli key: the gateway's OpenPGP keys. Public keys go into the
 * database; secret keys into keys_dir/openpgp/ for the key holder, which
 * picks them up on restart or RELOAD.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../internal-gw/pgp.h"
#include "cli.h"
#include "xmalloc.h"

static const char cli_key_usage_text[] =
    "usage: postern-cli key import --file FILE [--password P]\n"
    "       postern-cli key list\n"
    "       postern-cli key remove --fingerprint FPR | --email ADDRESS\n";

static int
cli_key_list(struct cli *c)
{
	struct pgp_key_entry *v;
	char *err = NULL, created[11];
	struct tm tm;
	int n;

	if ((n = pgp_keys_list(c->db, &v, &err)) == -1) {
		cli_err("key list: %s", err);
		free(err);
		return CLI_ERR;
	}
	printf("%-40s  %-10s  %-6s  %s  %s\n", "FINGERPRINT", "CREATED",
	    "SECRET", "EMAILS", "USER-ID");
	for (int i = 0; i < n; i++) {
		gmtime_r(&v[i].created, &tm);
		strftime(created, sizeof(created), "%Y-%m-%d", &tm);
		printf("%-40s  %-10s  %-6s  %s  %s\n", v[i].fingerprint,
		    created, v[i].has_secret ? "yes" : "no",
		    v[i].emails[0] ? v[i].emails : "-", v[i].uid);
	}
	pgp_keys_list_free(&v, (size_t)n);
	return CLI_OK;
}

int
cli_key(struct cli *c, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "file", required_argument, NULL, 'f' },
		{ "password", required_argument, NULL, 'p' },
		{ "fingerprint", required_argument, NULL, 'x' },
		{ "email", required_argument, NULL, 'e' },
		{ NULL, 0, NULL, 0 },
	};
	const char *verb, *file = NULL, *fpr = NULL, *email = NULL, *keys_dir;
	char *password = NULL, *err = NULL;
	int ch, n, rv = CLI_ERR;

	if (argc < 2)
		return cli_usage(cli_key_usage_text, NULL);
	verb = argv[1];
	if (!cli_verb_ok(verb, (const char *const[]){ "import", "list",
	    "remove", NULL }))
		return cli_usage(cli_key_usage_text, "unknown verb \"%s\"",
		    verb);
	optind = 0;
	opterr = 0;
	while ((ch = getopt_long(argc - 1, argv + 1, ":", longopts,
	    NULL)) != -1) {
		switch (ch) {
		case 'f':
			file = optarg;
			break;
		case 'p':
			xfree_secret(&password);
			password = xstrdup(optarg);
			break;
		case 'x':
			fpr = optarg;
			break;
		case 'e':
			email = optarg;
			break;
		default:
			xfree_secret(&password);
			return cli_bad_option(cli_key_usage_text, ch,
			    argv[optind]);
		}
	}
	if (optind < argc - 1) {
		xfree_secret(&password);
		return cli_usage(cli_key_usage_text,
		    "unexpected argument \"%s\"", argv[optind + 1]);
	}
	if ((strcmp(verb, "import") == 0 && (file == NULL || fpr || email)) ||
	    (strcmp(verb, "remove") == 0 && ((fpr == NULL) == (email == NULL) ||
	    file || password)) ||
	    (strcmp(verb, "list") == 0 && (file || password || fpr || email))) {
		xfree_secret(&password);
		return cli_usage(cli_key_usage_text, "wrong options for key %s",
		    verb);
	}

	if (cli_open(c) == -1)
		goto out;
	if (c->node != CLI_NODE_GW) {
		cli_err("key: OpenPGP keys live on the internal-gw node (%s is "
		    "%s)", c->conf_path, cli_node_name(c->node));
		goto out;
	}
	if ((keys_dir = cli_conf_str(c, "keys_dir")) == NULL) {
		cli_err("%s: keys_dir: missing", c->conf_path);
		goto out;
	}
	if (pgp_keys_init(c->db, &err) == -1) {
		cli_err("key: %s", err);
		goto out;
	}
	if (strcmp(verb, "list") == 0)
		rv = cli_key_list(c);
	else if (strcmp(verb, "import") == 0) {
		if ((n = pgp_keys_import(c->db, keys_dir, file, password,
		    &err)) == -1) {
			cli_err("key import: %s: %s", file, err);
			goto out;
		}
		printf("imported %d key%s from %s\n", n, n == 1 ? "" : "s",
		    file);
		rv = CLI_OK;
	} else {
		if ((n = pgp_keys_remove(c->db, keys_dir, fpr ? fpr : email,
		    &err)) == -1) {
			cli_err("key remove: %s", err);
			goto out;
		}
		if (n == 0) {
			cli_err("key remove: no key matches %s",
			    fpr ? fpr : email);
			goto out;
		}
		printf("removed %d key%s\n", n, n == 1 ? "" : "s");
		rv = CLI_OK;
	}
out:
	free(err);
	xfree_secret(&password);
	return rv;
}
