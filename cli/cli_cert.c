/*
 * postern-cli cert: the gateway's certificates and keys. Certificates go
 * into the database, private keys into keys_dir (config key) for the key
 * holder, which picks them up on restart or RELOAD.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>

#include "../internal-gw/certstore.h"
#include "cli.h"
#include "xmalloc.h"

static const char cli_cert_usage_text[] =
    "usage: postern-cli cert import --file FILE"
    " [--password P | --password-file F]\n"
    "       postern-cli cert list\n"
    "       postern-cli cert remove --fingerprint SHA256 | --email ADDRESS\n";

#define CLI_CERT_MAX_PASSWORD	1024

/* The first line of path; the caller wipes and frees it. */
static char *
cli_cert_read_password(const char *path)
{
	char buf[CLI_CERT_MAX_PASSWORD + 2], *p;
	FILE *f;

	if ((f = fopen(path, "r")) == NULL)
		return NULL;
	if (fgets(buf, sizeof(buf), f) == NULL)
		buf[0] = '\0';
	fclose(f);
	buf[strcspn(buf, "\r\n")] = '\0';
	p = xstrdup(buf);
	OPENSSL_cleanse(buf, sizeof(buf));
	return p;
}

static void
cli_cert_date(time_t t, char out[11])
{
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(out, 11, "%Y-%m-%d", &tm);
}

static int
cli_cert_list(struct cli *c)
{
	struct certstore_entry *v;
	char *err = NULL, nb[11], na[11];
	int n;

	if ((n = certstore_list(c->db, &v, &err)) == -1) {
		cli_err("cert list: %s", err);
		free(err);
		return CLI_ERR;
	}
	printf("%-64s  %-10s  %-10s  %-3s  %s  %s\n", "FINGERPRINT",
	    "NOT-BEFORE", "NOT-AFTER", "KEY", "EMAILS", "SUBJECT");
	for (int i = 0; i < n; i++) {
		cli_cert_date(v[i].not_before, nb);
		cli_cert_date(v[i].not_after, na);
		printf("%-64s  %-10s  %-10s  %-3s  %s  %s\n", v[i].fingerprint,
		    nb, na, v[i].has_key ? "yes" : "no",
		    v[i].emails[0] ? v[i].emails : "-", v[i].subject);
	}
	certstore_list_free(&v, (size_t)n);
	return CLI_OK;
}

int
cli_cert(struct cli *c, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "file", required_argument, NULL, 'f' },
		{ "password", required_argument, NULL, 'p' },
		{ "password-file", required_argument, NULL, 'P' },
		{ "fingerprint", required_argument, NULL, 'x' },
		{ "email", required_argument, NULL, 'e' },
		{ NULL, 0, NULL, 0 },
	};
	const char *verb, *file = NULL, *pwfile = NULL, *fpr = NULL;
	const char *email = NULL, *keys_dir;
	char *password = NULL, *err = NULL;
	int ch, n, rv = CLI_ERR;

	if (argc < 2)
		return cli_usage(cli_cert_usage_text, NULL);
	verb = argv[1];
	if (!cli_verb_ok(verb, (const char *const[]){ "import", "list",
	    "remove", NULL }))
		return cli_usage(cli_cert_usage_text, "unknown verb \"%s\"",
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
		case 'P':
			pwfile = optarg;
			break;
		case 'x':
			fpr = optarg;
			break;
		case 'e':
			email = optarg;
			break;
		default:
			xfree_secret(&password);
			return cli_bad_option(cli_cert_usage_text, ch,
			    argv[optind]);
		}
	}
	if (optind < argc - 1) {
		xfree_secret(&password);
		return cli_usage(cli_cert_usage_text,
		    "unexpected argument \"%s\"", argv[optind + 1]);
	}
	if (strcmp(verb, "import") == 0) {
		if (file == NULL || fpr || email)
			goto usage;
		if (password != NULL && pwfile != NULL)
			goto usage;
	} else if (strcmp(verb, "remove") == 0) {
		if ((fpr == NULL) == (email == NULL) || file || password ||
		    pwfile)
			goto usage;
	} else if (file || password || pwfile || fpr || email)
		goto usage;

	if (cli_open(c) == -1)
		goto out;
	if (c->node != CLI_NODE_GW) {
		cli_err("cert: certificates and keys live on the internal-gw"
		    " node (%s is %s)", c->conf_path, cli_node_name(c->node));
		goto out;
	}
	if ((keys_dir = cli_conf_str(c, "keys_dir")) == NULL) {
		cli_err("%s: keys_dir: missing", c->conf_path);
		goto out;
	}
	if (certstore_init(c->db, &err) == -1) {
		cli_err("cert: %s", err);
		goto out;
	}

	if (strcmp(verb, "list") == 0) {
		rv = cli_cert_list(c);
	} else if (strcmp(verb, "import") == 0) {
		if (pwfile != NULL &&
		    (password = cli_cert_read_password(pwfile)) == NULL) {
			cli_err("%s: cannot read the password file", pwfile);
			goto out;
		}
		if ((n = certstore_import(c->db, keys_dir, file, password,
		    &err)) == -1) {
			cli_err("cert import: %s: %s", file, err);
			goto out;
		}
		printf("imported %d certificate%s from %s\n", n,
		    n == 1 ? "" : "s", file);
		rv = CLI_OK;
	} else {
		if ((n = certstore_remove(c->db, keys_dir, fpr ? fpr : email,
		    &err)) == -1) {
			cli_err("cert remove: %s", err);
			goto out;
		}
		if (n == 0) {
			cli_err("cert remove: no certificate matches %s",
			    fpr ? fpr : email);
			goto out;
		}
		printf("removed %d certificate%s\n", n, n == 1 ? "" : "s");
		rv = CLI_OK;
	}
out:
	free(err);
	xfree_secret(&password);
	return rv;
usage:
	xfree_secret(&password);
	return cli_usage(cli_cert_usage_text, "wrong options for cert %s",
	    verb);
}
