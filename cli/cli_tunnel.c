/*
 * postern-cli tunnel: the keys of the add-on tunnel, made on the node that
 * keeps them. `keygen --role gateway` makes the webmail sender key (ECDSA
 * P-256, signs only) and imports it into keyd's keys_dir; `keygen --role portal` makes
 * the portal's tunnel key (keyEncipherment only: it can decrypt, never
 * sign) as the files tunnel.key and tunnel.cert of external-portal.conf.
 * Either writes the public certificate to --cert-out, the one file that is
 * copied to the other node. `legacy-clear` removes the properties of the
 * old tunnel signature.
 */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/x509v3.h>

#include "addr.h"
#include "../internal-gw/certstore.h"
#include "cli.h"
#include "db.h"
#include "xmalloc.h"

static const char cli_tunnel_usage_text[] =
    "usage: postern-cli tunnel keygen --role gateway --address ADDR "
    "--cert-out FILE [--days N]\n"
    "       postern-cli tunnel keygen --role portal --address ADDR "
    "--key-out FILE --cert-out FILE [--days N]\n"
    "       postern-cli tunnel legacy-clear\n";

static int
cli_tunnel_ext(X509 *x, int nid, const char *value)
{
	X509V3_CTX ctx;
	X509_EXTENSION *e;
	int ok;

	X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
	if ((e = X509V3_EXT_conf_nid(NULL, &ctx, nid, value)) == NULL)
		return -1;
	ok = X509_add_ext(x, e, -1);
	X509_EXTENSION_free(e);
	return ok ? 0 : -1;
}

static X509 *
cli_tunnel_cert(EVP_PKEY *k, const char *addr, int portal, int days)
{
	X509 *x;
	X509_NAME *n;
	unsigned char serial[16];
	BIGNUM *bn;
	char *san, cn[300];

	if ((x = X509_new()) == NULL || RAND_bytes(serial, sizeof(serial)) != 1)
		return NULL;
	serial[0] &= 0x7f;
	bn = BN_bin2bn(serial, sizeof(serial), NULL);
	BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x));
	BN_free(bn);
	X509_set_version(x, 2);
	X509_gmtime_adj(X509_getm_notBefore(x), -300);
	X509_gmtime_adj(X509_getm_notAfter(x), (long)days * 86400);
	X509_set_pubkey(x, k);
	n = X509_get_subject_name(x);
	snprintf(cn, sizeof(cn), "Postern tunnel %s %s", portal ? "portal" :
	    "gateway", addr);
	X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_UTF8,
	    (const unsigned char *)cn, -1, -1, 0);
	X509_set_issuer_name(x, n);
	xasprintf(&san, "email:%s", addr);
	if (cli_tunnel_ext(x, NID_basic_constraints, "critical,CA:FALSE") ||
	    cli_tunnel_ext(x, NID_key_usage, portal ?
	    "critical,keyEncipherment" : "critical,digitalSignature") ||
	    cli_tunnel_ext(x, NID_ext_key_usage, "emailProtection") ||
	    cli_tunnel_ext(x, NID_subject_alt_name, san) ||
	    !X509_sign(x, k, EVP_sha256())) {
		free(san);
		X509_free(x);
		return NULL;
	}
	free(san);
	return x;
}

/* Writes PEM blocks to path with mode; -1 (message printed) on failure. */
static int
cli_tunnel_write(const char *path, int mode, EVP_PKEY *k, X509 *x)
{
	FILE *f;
	int fd, ok;

	if ((fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
	    mode)) == -1 || (f = fdopen(fd, "w")) == NULL) {
		cli_err("%s: %s", path, strerror(errno));
		if (fd != -1)
			close(fd);
		return -1;
	}
	ok = (k == NULL || PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL,
	    NULL)) && (x == NULL || PEM_write_X509(f, x));
	if (fclose(f) == EOF || !ok) {
		cli_err("%s: write failed", path);
		unlink(path);
		return -1;
	}
	return 0;
}

static int
cli_tunnel_keygen(struct cli *c, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "role", required_argument, NULL, 'r' },
		{ "address", required_argument, NULL, 'a' },
		{ "cert-out", required_argument, NULL, 'c' },
		{ "key-out", required_argument, NULL, 'k' },
		{ "days", required_argument, NULL, 'd' },
		{ NULL, 0, NULL, 0 },
	};
	const char *role = NULL, *addr = NULL, *certout = NULL, *keyout = NULL;
	const char *keys_dir, *why;
	char tmp[4096], *err = NULL;
	struct addr a;
	EVP_PKEY *k = NULL;
	X509 *x = NULL;
	int ch, days = 3650, portal, rv = CLI_ERR;

	optind = 1;
	while ((ch = getopt_long(argc, argv, ":", opts, NULL)) != -1) {
		switch (ch) {
		case 'r': role = optarg; break;
		case 'a': addr = optarg; break;
		case 'c': certout = optarg; break;
		case 'k': keyout = optarg; break;
		case 'd': days = atoi(optarg); break;
		default:
			return cli_bad_option(cli_tunnel_usage_text, ch,
			    argv[optind - 1]);
		}
	}
	if (role == NULL || (strcmp(role, "gateway") != 0 &&
	    strcmp(role, "portal") != 0))
		return cli_usage(cli_tunnel_usage_text, "--role gateway or "
		    "--role portal");
	portal = strcmp(role, "portal") == 0;
	if (addr == NULL || certout == NULL || (portal && keyout == NULL) ||
	    days < 1 || days > 36500)
		return cli_usage(cli_tunnel_usage_text, "missing or bad option");
	if (addr_parse(addr, 0, &a, &why) == -1)
		return cli_err("--address %s: %s", addr, why);
	if (cli_open(c) == -1)
		return CLI_ERR;
	if (c->node != (portal ? CLI_NODE_PORTAL : CLI_NODE_GW))
		return cli_err("the %s key is made on the %s (this is %s)",
		    role, portal ? "external-portal" : "internal-gw",
		    cli_node_name(c->node));
	/* The portal's key transports keys (RSA); the gateway's only signs,
	 * and ECDSA P-256 signs many times faster than RSA. */
	if ((k = portal ? EVP_RSA_gen(3072) : EVP_EC_gen("P-256")) == NULL ||
	    (x = cli_tunnel_cert(k, addr, portal, days)) == NULL) {
		cli_err("key generation failed: %s",
		    ERR_reason_error_string(ERR_get_error()));
		goto out;
	}
	if (portal) {
		if (cli_tunnel_write(keyout, 0600, k, NULL) == -1)
			goto out;
	} else {
		if ((keys_dir = cli_conf_str(c, "keys_dir")) == NULL) {
			cli_err("%s: keys_dir: missing", c->conf_path);
			goto out;
		}
		snprintf(tmp, sizeof(tmp), "%s/.tunnel-keygen.%d.pem", keys_dir,
		    (int)getpid());
		if (cli_tunnel_write(tmp, 0600, k, x) == -1)
			goto out;
		if (certstore_init(c->db, &err) == -1 ||
		    certstore_import(c->db, keys_dir, tmp, NULL, &err) < 1) {
			cli_err("import: %s", err ? err : "failed");
			free(err);
			unlink(tmp);
			goto out;
		}
		unlink(tmp);
	}
	if (cli_tunnel_write(certout, 0644, NULL, x) == -1)
		goto out;
	printf("tunnel %s key for <%s> made; copy %s to the %s\n", role, addr,
	    certout, portal ? "gateway (postern-cli cert import --file)" :
	    "portal (tunnel.gateway_cert)");
	rv = CLI_OK;
out:
	EVP_PKEY_free(k);
	X509_free(x);
	return rv;
}

int
cli_tunnel(struct cli *c, int argc, char **argv)
{
	int n;

	if (argc < 2)
		return cli_usage(cli_tunnel_usage_text, NULL);
	if (strcmp(argv[1], "keygen") == 0)
		return cli_tunnel_keygen(c, argc - 1, argv + 1);
	if (strcmp(argv[1], "legacy-clear") != 0)
		return cli_usage(cli_tunnel_usage_text, "unknown verb %s",
		    argv[1]);
	if (cli_open(c) == -1)
		return CLI_ERR;
	n = 0;
	for (int i = 0; i < 3; i++) {
		static const char *const sql[] = {
			"DELETE FROM props_global WHERE name IN"
			" ('portal-tunnel-sign', 'portal-require-tunnel-signature')",
			"DELETE FROM props_domain WHERE name IN"
			" ('portal-tunnel-sign', 'portal-require-tunnel-signature')",
			"DELETE FROM props_user WHERE name IN"
			" ('portal-tunnel-sign', 'portal-require-tunnel-signature')",
		};
		int r = db_run(c->db, sql[i], "");

		if (r == -1)
			return cli_err("database failure");
		n += r;
	}
	printf("removed %d setting(s) of the old tunnel signature\n", n);
	return CLI_OK;
}
