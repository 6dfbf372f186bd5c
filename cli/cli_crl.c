/*
 * postern-cli crl: certificate revocation lists on internal-gw. `import`
 * loads a CRL file (checked against its issuer); `list` shows the imported
 * ones; `distribution-points` prints the CRL addresses named by the
 * certificates in the store, one a line, for the admin's fetch job.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../internal-gw/certstore.h"
#include "../internal-gw/crl.h"
#include "cli.h"

static const char cli_crl_usage_text[] =
    "usage: postern-cli crl import --file FILE\n"
    "       postern-cli crl list\n"
    "       postern-cli crl distribution-points\n";

static int
cli_crl_open(struct cli *c)
{
	char *err = NULL;

	if (cli_open(c) == -1)
		return -1;
	if (c->node != CLI_NODE_GW) {
		cli_err("crl runs on internal-gw, this is %s",
		    cli_node_name(c->node));
		return -1;
	}
	if (certstore_init(c->db, &err) == -1) {
		cli_err("certificate store: %s", err);
		free(err);
		return -1;
	}
	return 0;
}

static int
cli_crl_import(struct cli *c, const char *file)
{
	X509_STORE *trust = NULL;
	const char *anchors;
	char *err = NULL;
	int n, rc = CLI_OK;

	if (cli_crl_open(c) == -1)
		return CLI_ERR;
	if ((anchors = cli_conf_str(c, "trust_anchors")) != NULL &&
	    (trust = certstore_trust_load(anchors, &err)) == NULL) {
		rc = cli_err("trust_anchors: %s", err);
		goto out;
	}
	if ((n = crl_import(c->db, trust, file, &err)) == -1) {
		rc = cli_err("%s", err);
		goto out;
	}
	printf("imported a CRL with %d revoked certificate%s\n", n,
	    n == 1 ? "" : "s");
out:
	free(err);
	X509_STORE_free(trust);
	return rc;
}

static void
cli_crl_date(time_t t, char out[21])
{
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(out, 21, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static int
cli_crl_list(struct cli *c)
{
	struct crl_entry *v;
	char tu[21], nu[21];
	int n;

	if (cli_crl_open(c) == -1)
		return CLI_ERR;
	if ((n = crl_list(c->db, &v)) == -1)
		return cli_err("cannot read the CRLs");
	for (int i = 0; i < n; i++) {
		cli_crl_date(v[i].this_update, tu);
		if (v[i].next_update)
			cli_crl_date(v[i].next_update, nu);
		printf("%s\tthis-update=%s\tnext-update=%s\trevoked=%ld\n",
		    v[i].issuer, tu, v[i].next_update ? nu : "none",
		    v[i].nrevoked);
	}
	crl_list_free(&v, (size_t)n);
	return CLI_OK;
}

static int
cli_crl_points(struct cli *c)
{
	char **v;
	int n;

	if (cli_crl_open(c) == -1)
		return CLI_ERR;
	if ((n = crl_distribution_points(c->db, &v)) == -1)
		return cli_err("cannot read the certificate store");
	for (int i = 0; i < n; i++)
		printf("%s\n", v[i]);
	certstore_emails_free(&v);
	return CLI_OK;
}

int
cli_crl(struct cli *c, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "file", required_argument, NULL, 'f' },
		{ NULL, 0, NULL, 0 },
	};
	const char *file = NULL;
	int ch;

	if (argc < 2)
		return cli_usage(cli_crl_usage_text, NULL);
	if (strcmp(argv[1], "list") == 0 && argc == 2)
		return cli_crl_list(c);
	if (strcmp(argv[1], "distribution-points") == 0 && argc == 2)
		return cli_crl_points(c);
	if (strcmp(argv[1], "import") != 0)
		return cli_usage(cli_crl_usage_text, "unknown verb \"%s\"",
		    argv[1]);
	optind = 0;
	while ((ch = getopt_long(argc - 1, argv + 1, ":", longopts, NULL)) !=
	    -1) {
		switch (ch) {
		case 'f':
			file = optarg;
			break;
		default:
			return cli_bad_option(cli_crl_usage_text, ch,
			    argv[optind]);
		}
	}
	if (file == NULL || optind < argc - 1)
		return cli_usage(cli_crl_usage_text, "--file is missing");
	return cli_crl_import(c, file);
}
