/*
 * The daemon's side of encrypted storage (portal_storage.h): the
 * storage_encryption group read into the key holder's configuration, the
 * password taken from the environment (and wiped from it before any
 * worker is forked), and the checks of --check.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "log.h"
#include "pkeyd.h"
#include "portal_storage.h"
#include "store/store_crypt.h"
#include "xmalloc.h"

#define PORTAL_STORAGE_ENV	"POSTERN_STORAGE_PASSWORD"

int
portal_storage_on(const struct conf *c)
{
	return conf_setting(c, "storage_encryption") != NULL &&
	    conf_bool(c, "storage_encryption.enabled");
}

static int
portal_storage_unlock_ok(const struct conf *c)
{
	const char *u = conf_str(c, "storage_encryption.unlock");

	return strcmp(u, "environment") == 0 || strcmp(u, "ask") == 0;
}

char *
portal_storage_password(void)
{
	char *v = getenv(PORTAL_STORAGE_ENV), *p;

	if (v == NULL)
		return NULL;
	p = xstrdup(v);
	/* The environment block is inherited by every worker: wipe it. */
	OPENSSL_cleanse(v, strlen(v));
	unsetenv(PORTAL_STORAGE_ENV);
	return p;
}

void
portal_storage_pkeyd_conf(const struct conf *c, struct pkeyd_conf *pc,
    const char *password)
{
	const char **l;

	if (!portal_storage_unlock_ok(c))
		fatalx("storage_encryption.unlock: must be \"environment\" or "
		    "\"ask\"");
	pc->storage_certs = conf_str(c, "storage_encryption.certificates");
	pc->nstorage_keys = conf_strlist(c, "storage_encryption.private_key",
	    &l);
	pc->storage_keys = l;
	if (pc->nstorage_keys == 0)
		fatalx("storage_encryption.private_key: at least one key");
	pc->storage_unlock = conf_str(c, "storage_encryption.unlock");
	pc->storage_password = password;
	pc->control_socket = conf_str(c, "storage_encryption.control_socket");
	pc->ask_dir = conf_str(c, "storage_encryption.ask_dir");
}

struct store_crypt *
portal_storage_crypt(const struct conf *c)
{
	struct store_crypt *sc;
	char *err = NULL;

	if (!portal_storage_on(c))
		return NULL;
	if ((sc = store_crypt_new(conf_str(c,
	    "storage_encryption.certificates"), &err)) == NULL)
		fatalx("storage_encryption.certificates: %s", err);
	return sc;
}

int
portal_storage_check(const struct conf *c)
{
	struct pkeyd_conf pc;
	char *pw;
	int rc;

	if (!portal_storage_on(c))
		return 0;
	if (!portal_storage_unlock_ok(c)) {
		fprintf(stderr, "storage_encryption.unlock: must be "
		    "\"environment\" or \"ask\"\n");
		return -1;
	}
	memset(&pc, 0, sizeof(pc));
	pw = portal_storage_password();
	portal_storage_pkeyd_conf(c, &pc, pw);
	rc = pkeyd_storage_check(&pc, pw);
	if (pw == NULL && strcmp(pc.storage_unlock, "environment") == 0)
		fprintf(stderr, "storage_encryption: %s is not set here, so "
		    "the keys were not opened (set it to check them)\n",
		    PORTAL_STORAGE_ENV);
	if (pw != NULL) {
		OPENSSL_cleanse(pw, strlen(pw));
		free(pw);
	}
	free(pc.storage_keys);
	return rc;
}

/* An SMTP transaction's spool file: hex digits, then ".spool". */
static int
portal_storage_is_spool(const char *name)
{
	size_t n = strlen(name), i;

	if (n <= 6 || strcmp(name + n - 6, ".spool") != 0)
		return 0;
	for (i = 0; i < n - 6; i++)
		if (strchr("0123456789abcdef", name[i]) == NULL)
			return 0;
	return 1;
}

int
portal_storage_sweep_spool(const char *spool_dir)
{
	struct dirent *de;
	DIR *d;
	char *path;
	int n = 0;

	if ((d = opendir(spool_dir)) == NULL) {
		log_warn("spool: %s", spool_dir);
		return 0;
	}
	while ((de = readdir(d)) != NULL) {
		if (!portal_storage_is_spool(de->d_name))
			continue;
		xasprintf(&path, "%s/%s", spool_dir, de->d_name);
		if (unlink(path) == 0)
			n++;
		else if (errno != ENOENT)
			log_warn("spool: unlink %s", path);
		free(path);
	}
	closedir(d);
	if (n > 0)
		log_info("spool: removed %d unacknowledged transaction files "
		    "a crash left", n);
	return n;
}
