/*
 * postern-cli policy explain: what the gateway would do with a message for
 * each recipient, and which properties decided, without sending anything.
 * It runs the gateway's own policy_decide() on the gateway's database and
 * certificate store.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/x509.h>

#include "addr.h"
#include "../internal-gw/certstore.h"
#include "../internal-gw/pgp.h"
#include "cli.h"
#include "header.h"
#include "../internal-gw/policy.h"
#include "props.h"
#include "xmalloc.h"

#define CLI_POLICY_MAX_ARGS	64
#define CLI_POLICY_MAX_HEADER	65536

static const char cli_policy_usage_text[] =
    "usage: postern-cli policy explain --from ADDR --to ADDR [--to ADDR]... "
    "[--subject TEXT] [--header \"Name: value\"]...\n";

struct cli_policy_certs {
	struct db	*db;
	X509_STORE	*trust;
};

static int
cli_policy_has_cert(void *arg, const char *rcpt)
{
	struct cli_policy_certs *pc = arg;

	if (pc->trust == NULL)
		return 0;
	return certstore_has_valid(pc->db, pc->trust, rcpt);
}

static int
cli_policy_has_pgp(void *arg, const char *rcpt)
{
	struct cli_policy_certs *pc = arg;

	return pgp_has_key(pc->db, rcpt);
}

/* The order the methods are tried in for rcpt, and where it is set. */
static void
cli_policy_order(struct cli *c, const char *rcpt)
{
	enum props_scope lvl = PROPS_SCOPE_DEFAULT;
	char *v;

	if ((v = props_get(c->props, rcpt, "encryption-method-order",
	    &lvl)) == NULL)
		return;
	printf("methods: %s (%s)\n", v, props_scope_name(lvl));
	free(v);
}

/* The --header fields as a parsed header section; -1 on a bad field. */
static int
cli_policy_header(const char **fields, size_t n, struct header *h)
{
	char *raw = xstrdup(""), *tmp, name[256], value[1024];
	size_t i;
	int rc;

	for (i = 0; i < n; i++) {
		if (strpbrk(fields[i], "\r\n") != NULL ||
		    header_trigger_parse(fields[i], name, sizeof(name), value,
		    sizeof(value)) == -1) {
			cli_err("--header \"%s\" is not \"Name: value\"",
			    fields[i]);
			free(raw);
			return -1;
		}
		xasprintf(&tmp, "%s%s: %s\r\n", raw, name, value);
		free(raw);
		raw = tmp;
	}
	xasprintf(&tmp, "%s\r\n", raw);
	free(raw);
	rc = header_parse_mem(tmp, strlen(tmp), CLI_POLICY_MAX_HEADER, h);
	free(tmp);
	if (rc != 0)
		return cli_err("--header: malformed header field"), -1;
	return 0;
}

static int
cli_policy_addr(const char *opt, const char *s)
{
	struct addr a;
	const char *why;

	if (*s == '\0' && strcmp(opt, "--from") == 0)
		return 0;	/* the null sender <> */
	if (addr_parse(s, 1, &a, &why) == -1)
		return cli_err("%s \"%s\": %s", opt, s, why), -1;
	return 0;
}

/* The certificates encryption would use, with where each came from. */
static void
cli_policy_certs(struct cli_policy_certs *pc, const char *rcpt)
{
	char fpr[CERTSTORE_FPR_LEN + 1], *src;
	X509 **v;
	size_t n;

	if (pc->trust == NULL || certstore_find_recipient(pc->db, pc->trust,
	    rcpt, &v, &n) <= 0)
		return;
	for (size_t i = 0; i < n; i++) {
		certstore_fingerprint(v[i], fpr);
		src = certstore_origin(pc->db, v[i]);
		printf("certificate: %s (%s)\n", fpr, src ? src :
		    "imported by an admin");
		free(src);
	}
	certstore_certs_free(&v, n);
}

static int
cli_policy_explain(struct cli *c, const char *from, const char **to,
    size_t nto, const char *subject, const char **hdrs, size_t nhdrs)
{
	struct cli_policy_certs pc = { NULL, NULL };
	struct policy_msg pm;
	struct policy_decision d;
	struct header h;
	const char *anchors;
	char *err = NULL, *ns;
	size_t i;
	int rc = CLI_OK;

	if (cli_policy_addr("--from", from) == -1)
		return CLI_ERR;
	for (i = 0; i < nto; i++)
		if (cli_policy_addr("--to", to[i]) == -1)
			return CLI_ERR;
	if (cli_open(c) == -1)
		return CLI_ERR;
	if (c->node != CLI_NODE_GW)
		return cli_err("policy explain runs on internal-gw, this is %s",
		    cli_node_name(c->node));
	if (cli_policy_header(hdrs, nhdrs, &h) == -1)
		return CLI_ERR;

	pc.db = c->db;
	if (certstore_init(c->db, &err) == -1 ||
	    pgp_keys_init(c->db, &err) == -1) {
		rc = cli_err("certificate store: %s", err);
		goto done;
	}
	if ((anchors = cli_conf_str(c, "trust_anchors")) != NULL &&
	    (pc.trust = certstore_trust_load(anchors, &err)) == NULL) {
		rc = cli_err("trust_anchors: %s", err);
		goto done;
	}
	if (pc.trust == NULL)
		fprintf(stderr, "postern-cli: no trust_anchors configured: no "
		    "certificate counts as valid\n");

	memset(&pm, 0, sizeof(pm));
	pm.from = from;
	pm.subject = subject;
	pm.hdr = &h;
	pm.has_pgp = cli_policy_has_pgp;
	pm.pgp_arg = &pc;
	if ((ns = policy_subject_strip(c->props, from, subject)) != NULL) {
		printf("subject: %s\n\n", ns);
		free(ns);
	}
	for (i = 0; i < nto; i++) {
		if (policy_decide(c->props, &pm, to[i], cli_policy_has_cert,
		    &pc, &d) == -1) {
			rc = cli_err("%s: property or certificate lookup "
			    "failed", to[i]);
			continue;
		}
		printf("%srecipient: %s\ndecision: %s\n", i > 0 ? "\n" : "",
		    to[i], policy_action_name(d.action));
		if (d.action != POLICY_PASS)
			cli_policy_order(c, to[i]);
		if (d.action == POLICY_ENCRYPT || d.action == POLICY_PGP)
			printf("sign: %s\n", d.sign ? "yes" : "no");
		if (d.action == POLICY_ENCRYPT)
			cli_policy_certs(&pc, to[i]);
		printf("because: %s\n", d.rule);
		if (d.action == POLICY_REFUSE)
			printf("reason: %s\n", d.reason);
	}
done:
	free(err);
	X509_STORE_free(pc.trust);
	header_free(&h);
	return rc;
}

int
cli_policy(struct cli *c, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "from", required_argument, NULL, 'f' },
		{ "to", required_argument, NULL, 't' },
		{ "subject", required_argument, NULL, 's' },
		{ "header", required_argument, NULL, 'H' },
		{ NULL, 0, NULL, 0 },
	};
	const char *from = NULL, *subject = NULL;
	const char *to[CLI_POLICY_MAX_ARGS], *hdrs[CLI_POLICY_MAX_ARGS];
	size_t nto = 0, nhdrs = 0;
	int ch;

	if (argc < 2)
		return cli_usage(cli_policy_usage_text, NULL);
	if (strcmp(argv[1], "explain") != 0)
		return cli_usage(cli_policy_usage_text, "unknown verb \"%s\"",
		    argv[1]);
	optind = 0;
	opterr = 0;
	while ((ch = getopt_long(argc - 1, argv + 1, ":", longopts,
	    NULL)) != -1) {
		switch (ch) {
		case 'f':
			from = optarg;
			break;
		case 't':
			if (nto == CLI_POLICY_MAX_ARGS)
				return cli_usage(cli_policy_usage_text,
				    "more than %d --to", CLI_POLICY_MAX_ARGS);
			to[nto++] = optarg;
			break;
		case 's':
			subject = optarg;
			break;
		case 'H':
			if (nhdrs == CLI_POLICY_MAX_ARGS)
				return cli_usage(cli_policy_usage_text,
				    "more than %d --header",
				    CLI_POLICY_MAX_ARGS);
			hdrs[nhdrs++] = optarg;
			break;
		default:
			return cli_bad_option(cli_policy_usage_text, ch,
			    argv[optind]);
		}
	}
	if (optind < argc - 1)
		return cli_usage(cli_policy_usage_text,
		    "unexpected argument \"%s\"", argv[optind + 1]);
	if (from == NULL)
		return cli_usage(cli_policy_usage_text, "--from is missing");
	if (nto == 0)
		return cli_usage(cli_policy_usage_text, "--to is missing");
	return cli_policy_explain(c, from, to, nto, subject, hdrs, nhdrs);
}
