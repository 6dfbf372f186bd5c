/*
 * postern-cli storage encrypt-existing: seals the message files stored
 * before storage_encryption was turned on. It needs the certificates
 * only (no password, the portal may be locked or stopped).
 *
 * One message at a time: the sealed copy goes to a temp file in the store
 * directory ("tmp-seal-..."), is fsynced and given the owner and mode of
 * the plain file. Then one transaction updates the row: its size becomes
 * the sealed file's (the quota counts file sizes), its From and Subject
 * are sealed with the new file's content key (sealed_meta) and their
 * clear columns emptied, and its part offsets, which hold the attachment
 * names in clear, are dropped (the web parses the decrypted stream, as
 * for every sealed message). Last the temp file is renamed over the
 * plain one and the directory fsynced. rename() replaces the name in one
 * step, so whenever the process dies the name holds either the whole
 * plain file or the whole sealed one. A file still plain is sealed again
 * by the next run, whatever its row says; a row already sealed (killed
 * between commit and rename) then gets From and Subject from the plain
 * file's header, sealed with the new key. Files already sealed are
 * skipped, so a second run resumes where a killed one stopped; it starts
 * by removing the temp files a killed run left (the portal's recovery
 * also removes every tmp- file at start). secure_delete and a checkpoint
 * keep the emptied columns out of the SQLite file and its log.
 *
 * SECURITY: the files are the store's own (the ingest wrote them); only
 * their first bytes are compared with the sealed header, the rest is
 * copied through the cipher without being parsed, except the header of a
 * file whose row a killed run sealed already, which header.h reads with
 * its size limit.
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
#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "cli.h"
#include "db.h"
#include "header.h"
#include "log.h"
#include "store/store_crypt.h"
#include "store/store_int.h"
#include "xmalloc.h"

#define CLI_SEAL_PREFIX	"tmp-seal-"

struct cli_seal {
	struct store_crypt	*sc;
	int			 dirfd;
	const char		*dir;
	long			 kill_after;	/* test hook, -1: off */
	int			 kill_late;	/* after the row's commit */
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
 * From and Subject of message id sealed with key into *blob. They come
 * from the row while it holds them in clear; a row already sealed with a
 * file that is still plain (a run killed between its commit and its
 * rename) gets them again from the plain file's header (a sent copy's
 * recipients from its To:). Leaves in at offset 0.
 */
static int
cli_seal_meta(struct cli *c, struct cli_seal *s, int64_t id, int in,
    const unsigned char *key, unsigned char **blob, size_t *bloblen)
{
	const char *v[STORE_CRYPT_META_N];
	const struct header_field *hf;
	struct db_stmt *st;
	struct header h;
	char *from = NULL, *subj = NULL;
	FILE *f = NULL;
	int rc, sealed = 0, sent = 0, fd;

	memset(&h, 0, sizeof(h));
	if ((st = db_prepare(c->db, "SELECT hdr_from, subject, folder, "
	    "sealed_meta IS NOT NULL FROM portal_messages WHERE id = ?")) ==
	    NULL)
		return -1;
	if ((rc = db_bind(st, "i", id) == 0 ? db_step(st) : -1) == DB_ROW) {
		from = db_col_text(st, 0) ? xstrdup(db_col_text(st, 0)) : NULL;
		subj = db_col_text(st, 1) ? xstrdup(db_col_text(st, 1)) : NULL;
		sent = db_col_text(st, 2) != NULL &&
		    strcmp(db_col_text(st, 2), "sent") == 0;
		sealed = db_col_int(st, 3) != 0;
	}
	db_finalize(st);
	if (rc == -1) {
		cli_err("message %lld: cannot read its row", (long long)id);
		return -1;
	}
	if (sealed) {
		free(from);
		free(subj);
		from = subj = NULL;
		if ((fd = dup(in)) == -1 || lseek(fd, 0, SEEK_SET) == -1 ||
		    (f = fdopen(fd, "r")) == NULL) {
			if (fd != -1)
				close(fd);
			cli_err("%s: %s", s->dir, strerror(errno));
			return -1;
		}
		if (header_read(f, 1024 * 1024, &h) == 0) {
			if ((hf = header_get(&h, sent ? "To" : "From")) != NULL)
				from = xstrdup(hf->value);
			if ((hf = header_get(&h, "Subject")) != NULL)
				subj = xstrdup(hf->value);
		}
		header_free(&h);
		fclose(f);
	}
	v[STORE_CRYPT_META_FROM] = from;
	v[STORE_CRYPT_META_SUBJECT] = subj;
	rc = store_crypt_meta_seal(key, v, STORE_CRYPT_META_N, blob, bloblen);
	free(from);
	free(subj);
	if (rc == -1 || lseek(in, 0, SEEK_SET) == -1) {
		cli_err("message %lld: sealing its From and Subject failed",
		    (long long)id);
		return -1;
	}
	return 0;
}

/*
 * PostgreSQL keeps the message's bytes in the database too: in the row's
 * transaction they become the sealed file's, so no plain copy is left
 * there. 0 or -1.
 */
static int
cli_seal_blob(struct cli *c, struct cli_seal *s, const char *name,
    const char *tmp)
{
	int fd, rc;

	if (!store_blob_on(c->db))
		return 0;
	if (store_blob_delete(c->db, name) == -1 ||
	    (fd = openat(s->dirfd, tmp, O_RDONLY | O_CLOEXEC)) == -1)
		return -1;
	rc = store_blob_upload(c->db, name, fd, tmp);
	close(fd);
	return rc;
}

/*
 * Seals the file name (the row id): 1 sealed, 0 nothing to do (sealed or
 * gone), -1 (reported).
 */
static int
cli_seal_one(struct cli *c, struct cli_seal *s, int64_t id, const char *name)
{
	unsigned char r[12], key[STORE_CRYPT_KEYLEN], *blob = NULL;
	size_t bloblen = 0;
	char tmp[64];
	struct stat sb, nb;
	FILE *fp = NULL;
	int in, out = -1, k;

	if (strchr(name, '/') != NULL || name[0] == '.') {
		cli_err("message %lld: bad file name %s", (long long)id, name);
		return -1;
	}
	/* PostgreSQL: a message another portal stored comes from there. */
	if (store_blob_on(c->db) && faccessat(s->dirfd, name, F_OK, 0) == -1 &&
	    (k = store_blob_download(c->db, name, s->dirfd, s->dir, name)) !=
	    0 && k != STORE_NOTFOUND) {
		cli_err("message %lld: cannot fetch it from the database",
		    (long long)id);
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
	if (store_crypt_encrypt_key(s->sc, in, fp, key) == -1) {
		cli_err("message %lld: sealing %s failed", (long long)id, name);
		goto fail;
	}
	if (s->kill_after >= 0 && s->sealed >= s->kill_after &&
	    !s->kill_late)
		raise(SIGKILL);	/* test hook: die with the copy unrenamed */
	if (fchown(out, sb.st_uid, sb.st_gid) == -1 ||
	    fchmod(out, sb.st_mode & 0777) == -1 || fsync(out) == -1 ||
	    fstat(out, &nb) == -1) {
		cli_err("%s/%s: %s", s->dir, tmp, strerror(errno));
		goto fail;
	}
	if (cli_seal_meta(c, s, id, in, key, &blob, &bloblen) == -1)
		goto fail;
	/*
	 * The row first: its From and Subject sealed with the new file's
	 * key, its size the sealed file's. Killed before the rename, the
	 * file is still plain and a second run seals it again, taking From
	 * and Subject from its header (cli_seal_meta).
	 */
	if (db_begin(c->db) == -1 || (k = db_run(c->db, "UPDATE "
	    "portal_messages SET size = ?, sealed_meta = ?, hdr_from = NULL, "
	    "subject = NULL WHERE id = ?", "ibi", (int64_t)nb.st_size, blob,
	    bloblen, id)) == -1 || db_run(c->db, "DELETE FROM "
	    "portal_parts WHERE msg = ?", "i", id) == -1 ||
	    cli_seal_blob(c, s, name, tmp) == -1 ||
	    db_commit(c->db) == -1) {
		db_rollback(c->db);
		cli_err("message %lld: database update failed", (long long)id);
		goto fail;
	}
	free(blob);
	blob = NULL;
	if (k == 0) {	/* deleted meanwhile: no row, so no file either */
		unlinkat(s->dirfd, tmp, 0);
		unlinkat(s->dirfd, name, 0);
		fclose(fp);
		close(in);
		OPENSSL_cleanse(key, sizeof(key));
		s->gone++;
		return 0;
	}
	if (s->kill_late && s->kill_after >= 0 && s->sealed >= s->kill_after)
		raise(SIGKILL);	/* test hook: row sealed, file still plain */
	if (renameat(s->dirfd, tmp, s->dirfd, name) == -1 ||
	    fsync(s->dirfd) == -1) {
		cli_err("%s/%s: %s", s->dir, tmp, strerror(errno));
		goto fail;
	}
	fclose(fp);
	close(in);
	OPENSSL_cleanse(key, sizeof(key));
	s->sealed++;
	printf("sealed message %lld\n", (long long)id);
	fflush(stdout);
	return 1;
fail:
	OPENSSL_cleanse(key, sizeof(key));
	free(blob);
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
	s.kill_late = getenv("POSTERN_TEST_SEAL_KILL_LATE") != NULL;
	/*
	 * The clear From and Subject a row loses must not stay behind in
	 * the database file's free space (SQLite zeroes it with this on).
	 */
	if (db_kind(c->db) == DB_SQLITE && db_exec(c->db, "PRAGMA "
	    "secure_delete = ON", &err) == -1) {
		rc = cli_err("%s: %s", c->dbpath, err);
		free(err);
		store_crypt_free(s.sc);
		return rc;
	}
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
	/* Old page images in the write-ahead log go too (SQLite). */
	if (db_kind(c->db) == DB_SQLITE && db_exec(c->db, "PRAGMA "
	    "wal_checkpoint(TRUNCATE)", &err) == -1) {
		log_debug("%s: checkpoint: %s", c->dbpath, err);
		free(err);
	}
	close(s.dirfd);
	store_crypt_free(s.sc);
	printf("%ld sealed, %ld already sealed, %ld deleted meanwhile\n",
	    s.sealed, s.skipped, s.gone);
	return rc;
}
