/*
 * postern-cli storage encrypt-existing: seals the message files stored
 * before storage_encryption was turned on. It needs the certificates
 * only (no password, the portal may be locked or stopped).
 *
 * One message at a time: the sealed copy goes to a temp file in the store
 * directory ("tmp-seal-..."), is fsynced, given the owner and mode of the
 * plain file, and renamed over it; then the directory is fsynced. rename()
 * replaces the name in one step, so whenever the process dies the name
 * holds either the whole plain file or the whole sealed one, and both
 * read. The row keeps its name; then one transaction brings its size up
 * to the sealed file's (the quota counts file sizes) and drops its part
 * offsets, which hold the attachment names in clear (the web parses the
 * decrypted stream of a message without them, as for every sealed one). Files already sealed are skipped,
 * so a second run resumes where a killed one stopped; it starts by
 * removing the temp files a killed run left (the portal's recovery also
 * removes every tmp- file at start).
 *
 * SECURITY: the files are the store's own (the ingest wrote them); only
 * their first bytes are compared with the sealed header, the rest is
 * copied through the cipher without being parsed.
 */
#include <sys/stat.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libconfig.h>
#include <openssl/rand.h>

#include "cli.h"
#include "db.h"
#include "log.h"
#include "store/store_crypt.h"
#include "xmalloc.h"

#define CLI_SEAL_PREFIX	"tmp-seal-"

struct cli_seal {
	struct store_crypt	*sc;
	int			 dirfd;
	const char		*dir;
	long			 kill_after;	/* test hook, -1: off */
	long			 sealed, skipped, gone;
};

/* Removes the temp files of an earlier, killed run. */
static void
cli_seal_sweep(struct cli_seal *s)
{
	struct dirent *de;
	DIR *d;

	if ((d = fdopendir(dup(s->dirfd))) == NULL)
		return;
	while ((de = readdir(d)) != NULL)
		if (strncmp(de->d_name, CLI_SEAL_PREFIX,
		    strlen(CLI_SEAL_PREFIX)) == 0)
			unlinkat(s->dirfd, de->d_name, 0);
	closedir(d);
}

/*
 * Seals the file name (the row id): 1 sealed, 0 nothing to do (sealed or
 * gone), -1 (reported).
 */
static int
cli_seal_one(struct cli *c, struct cli_seal *s, int64_t id, const char *name)
{
	unsigned char r[12];
	char tmp[64];
	struct stat sb, nb;
	FILE *fp = NULL;
	int in, out = -1, k;

	if (strchr(name, '/') != NULL || name[0] == '.') {
		cli_err("message %lld: bad file name %s", (long long)id, name);
		return -1;
	}
	if ((in = openat(s->dirfd, name, O_RDONLY | O_CLOEXEC)) == -1) {
		if (errno == ENOENT) {
			s->gone++;
			return 0;
		}
		cli_err("%s/%s: %s", s->dir, name, strerror(errno));
		return -1;
	}
	if ((k = store_crypt_is_sealed(in)) != 0 || fstat(in, &sb) == -1) {
		close(in);
		if (k == 1) {
			s->skipped++;
			return 0;
		}
		cli_err("%s/%s: %s", s->dir, name, strerror(errno));
		return -1;
	}
	if (RAND_bytes(r, sizeof(r)) != 1)
		fatalx("RAND_bytes");
	snprintf(tmp, sizeof(tmp), CLI_SEAL_PREFIX "%02x%02x%02x%02x%02x%02x"
	    "%02x%02x%02x%02x%02x%02x", r[0], r[1], r[2], r[3], r[4], r[5],
	    r[6], r[7], r[8], r[9], r[10], r[11]);
	if ((out = openat(s->dirfd, tmp, O_RDWR | O_CREAT | O_EXCL |
	    O_CLOEXEC, 0600)) == -1 || (fp = fdopen(out, "w")) == NULL) {
		cli_err("%s/%s: %s", s->dir, tmp, strerror(errno));
		goto fail;
	}
	if (store_crypt_encrypt(s->sc, in, fp) == -1) {
		cli_err("message %lld: sealing %s failed", (long long)id, name);
		goto fail;
	}
	if (s->kill_after >= 0 && s->sealed >= s->kill_after)
		raise(SIGKILL);	/* test hook: die with the copy unrenamed */
	if (fchown(out, sb.st_uid, sb.st_gid) == -1 ||
	    fchmod(out, sb.st_mode & 0777) == -1 || fsync(out) == -1 ||
	    fstat(out, &nb) == -1 ||
	    renameat(s->dirfd, tmp, s->dirfd, name) == -1 ||
	    fsync(s->dirfd) == -1) {
		cli_err("%s/%s: %s", s->dir, tmp, strerror(errno));
		goto fail;
	}
	fclose(fp);
	close(in);
	if (db_begin(c->db) == -1 || (k = db_run(c->db, "UPDATE "
	    "portal_messages SET size = ? WHERE id = ?", "ii",
	    (int64_t)nb.st_size, id)) == -1 || db_run(c->db, "DELETE FROM "
	    "portal_parts WHERE msg = ?", "i", id) == -1 ||
	    db_commit(c->db) == -1) {
		db_rollback(c->db);
		cli_err("message %lld: database update failed", (long long)id);
		return -1;
	}
	if (k == 0) {	/* deleted meanwhile: no row, so no file either */
		unlinkat(s->dirfd, name, 0);
		s->gone++;
		return 0;
	}
	s->sealed++;
	printf("sealed message %lld\n", (long long)id);
	fflush(stdout);
	return 1;
fail:
	if (fp != NULL)
		fclose(fp);
	else if (out != -1)
		close(out);
	unlinkat(s->dirfd, tmp, 0);
	close(in);
	return -1;
}

/*
 * The ids and names of the Webmail Messenger messages, oldest first. A
 * PDF-OTP message waiting for its PDF stays plain: the PDF is made from
 * it without a key, and its content goes once the PDF is.
 */
static int
cli_seal_list(struct cli *c, int64_t **ids, char ***names, size_t *n)
{
	struct db_stmt *st;
	size_t cap = 0;
	int rc;

	*ids = NULL;
	*names = NULL;
	*n = 0;
	if ((st = db_prepare(c->db, "SELECT id, path FROM portal_messages "
	    "WHERE state = 'webmail' ORDER BY id")) == NULL)
		return -1;
	while ((rc = db_step(st)) == DB_ROW) {
		if (*n == cap) {
			cap = cap ? cap * 2 : 256;
			*ids = xreallocarray(*ids, cap, sizeof(**ids));
			*names = xreallocarray(*names, cap, sizeof(**names));
		}
		(*ids)[*n] = db_col_int(st, 0);
		(*names)[*n] = xstrdup((const char *)
		    db_col_text(st, 1));
		(*n)++;
	}
	db_finalize(st);
	return rc == DB_DONE ? 0 : -1;
}

int
cli_storage_encrypt_existing(struct cli *c)
{
	struct cli_seal s;
	const char *certs, *hook;
	int64_t *ids;
	char **names, *err = NULL;
	size_t i, n;
	int on = 0, rc = CLI_OK;

	memset(&s, 0, sizeof(s));
	s.kill_after = -1;
	if (cli_open(c) == -1)
		return CLI_ERR;
	if (c->node != CLI_NODE_PORTAL)
		return cli_err("storage encrypt-existing is for external-portal");
	if (config_lookup_bool(c->cfg, "storage_encryption.enabled", &on) !=
	    CONFIG_TRUE || !on)
		return cli_err("storage_encryption is not enabled in %s: "
		    "turn it on first (the web could not read sealed files)",
		    c->conf_path);
	if ((certs = cli_conf_str(c, "storage_encryption.certificates")) ==
	    NULL || (s.dir = cli_conf_str(c, "store_dir")) == NULL)
		return cli_err("%s: storage_encryption.certificates and "
		    "store_dir are needed", c->conf_path);
	if ((s.sc = store_crypt_new(certs, &err)) == NULL) {
		rc = cli_err("%s", err);
		free(err);
		return rc;
	}
	if ((hook = getenv("POSTERN_TEST_SEAL_KILL_AFTER")) != NULL)
		s.kill_after = strtol(hook, NULL, 10);
	if ((s.dirfd = open(s.dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) ==
	    -1) {
		rc = cli_err("%s: %s", s.dir, strerror(errno));
		store_crypt_free(s.sc);
		return rc;
	}
	cli_seal_sweep(&s);
	if (cli_seal_list(c, &ids, &names, &n) == -1)
		rc = cli_err("%s: cannot list the messages", c->dbpath);
	for (i = 0; rc == CLI_OK && i < n; i++)
		if (cli_seal_one(c, &s, ids[i], names[i]) == -1)
			rc = CLI_ERR;
	for (i = 0; i < n; i++)
		free(names[i]);
	free(names);
	free(ids);
	close(s.dirfd);
	store_crypt_free(s.sc);
	printf("%ld sealed, %ld already sealed, %ld deleted meanwhile\n",
	    s.sealed, s.skipped, s.gone);
	return rc;
}
