/*
 * The OpenPGP key store (see pgp.h).
 *
 * SECURITY: key files come from the admin, key data from Autocrypt headers
 * and attachments of inbound mail: hostile bytes. They are bounded
 * (PGP_MAX_KEYFILE, PGP_MAX_KEY, PGP_MAX_KEYS) before librnp parses them,
 * and only the public part of a key that librnp accepted is stored. Secret
 * key material never enters the database: it is written, once, to a 0600
 * file in keys_dir/openpgp/ that only the key holder reads.
 */
#include <sys/stat.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <rnp/rnp.h>
#include <rnp/rnp_err.h>

#include "addr.h"
#include "db.h"
#include "log.h"
#include "pgp.h"
#include "xmalloc.h"

static const char pgp_keys_schema[] =
    "CREATE TABLE IF NOT EXISTS pgp_keys ("
    " fingerprint TEXT PRIMARY KEY,"
    " uid TEXT NOT NULL,"
    " emails TEXT NOT NULL,"		/* folded, comma-separated */
    " created INTEGER NOT NULL,"
    " has_secret INTEGER NOT NULL DEFAULT 0,"
    " data BLOB NOT NULL);";

int
pgp_keys_init(struct db *db, char **err)
{
	static const char *const steps[] = { pgp_keys_schema };

	return db_migrate(db, "gw-pgp-keys", steps, 1, err);
}

/* The address in a user ID: "Name <a@b>" or "a@b", folded; -1 when none. */
static int
pgp_keys_uid_email(const char *uid, char *out, size_t outlen)
{
	const char *lt = strrchr(uid, '<'), *gt;
	char tmp[ADDR_MAX];

	if (lt != NULL && (gt = strchr(lt, '>')) != NULL) {
		if ((size_t)(gt - lt - 1) >= sizeof(tmp))
			return -1;
		memcpy(tmp, lt + 1, gt - lt - 1);
		tmp[gt - lt - 1] = '\0';
	} else if (strchr(uid, '@') != NULL && strpbrk(uid, " \t<>") == NULL &&
	    strlen(uid) < sizeof(tmp))
		snprintf(tmp, sizeof(tmp), "%s", uid);
	else
		return -1;
	if (strchr(tmp, '@') == NULL || strchr(tmp, ',') != NULL)
		return -1;
	return addr_fold(tmp, out, outlen);
}

char *
pgp_keys_key_emails(rnp_key_handle_t key)
{
	size_t n = 0, len = 0;
	char *s = xstrdup(""), *uid, e[ADDR_MAX];

	if (rnp_key_get_uid_count(key, &n) != RNP_SUCCESS)
		return s;
	for (size_t i = 0; i < n && i < 64; i++) {
		rnp_uid_handle_t uh = NULL;
		bool valid = false;

		if (rnp_key_get_uid_handle_at(key, i, &uh) != RNP_SUCCESS)
			continue;
		(void)rnp_uid_is_valid(uh, &valid);
		rnp_uid_handle_destroy(uh);
		if (!valid || rnp_key_get_uid_at(key, i, &uid) != RNP_SUCCESS)
			continue;
		if (pgp_keys_uid_email(uid, e, sizeof(e)) == 0) {
			s = xreallocarray(s, len + strlen(e) + 2, 1);
			len += sprintf(s + len, "%s%s", len ? "," : "", e);
		}
		rnp_buffer_destroy(uid);
	}
	return s;
}

/* The key exported with flags into a new buffer; -1 when too large. */
static int
pgp_keys_export(rnp_key_handle_t key, uint32_t flags, unsigned char **out,
    size_t *outlen)
{
	rnp_output_t o = NULL;
	uint8_t *b;
	size_t len;
	int rv = -1;

	if (rnp_output_to_memory(&o, PGP_MAX_KEY) != RNP_SUCCESS)
		return -1;
	if (rnp_key_export(key, o, flags) == RNP_SUCCESS &&
	    rnp_output_memory_get_buf(o, &b, &len, false) == RNP_SUCCESS &&
	    len > 0 && len <= PGP_MAX_KEY) {
		*out = xmalloc(len);
		memcpy(*out, b, len);
		*outlen = len;
		rv = 0;
	}
	if (flags & RNP_KEY_EXPORT_SECRET && rv == 0)
		rnp_buffer_clear(b, len);
	rnp_output_destroy(o);
	return rv;
}

/* Writes the secret key to keys_dir/openpgp/<fpr>.pgp (0600). */
static int
pgp_keys_write_secret(const char *keys_dir, const char *fpr,
    const unsigned char *p, size_t len, char **err)
{
	char dir[4096], path[4200], tmp[4300];
	int fd;

	snprintf(dir, sizeof(dir), "%s/%s", keys_dir, PGP_KEYS_SUBDIR);
	if (mkdir(dir, 0700) == -1 && errno != EEXIST) {
		xasprintf(err, "mkdir %s: %s", dir, strerror(errno));
		return -1;
	}
	snprintf(path, sizeof(path), "%s/%s.pgp", dir, fpr);
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
	    0600)) == -1) {
		xasprintf(err, "%s: %s", tmp, strerror(errno));
		return -1;
	}
	if (write(fd, p, len) != (ssize_t)len || fsync(fd) == -1) {
		xasprintf(err, "%s: %s", tmp, strerror(errno));
		close(fd);
		unlink(tmp);
		return -1;
	}
	close(fd);
	if (rename(tmp, path) == -1) {
		xasprintf(err, "%s: %s", path, strerror(errno));
		unlink(tmp);
		return -1;
	}
	return 0;
}

/* Unprotects key and its subkeys with password; -1 when it cannot. */
static int
pgp_keys_unprotect(rnp_key_handle_t key, const char *password)
{
	size_t n = 0;
	bool prot = false, sec = false;

	if (rnp_key_have_secret(key, &sec) != RNP_SUCCESS || !sec)
		return 0;
	if (rnp_key_is_protected(key, &prot) == RNP_SUCCESS && prot &&
	    (password == NULL || rnp_key_unprotect(key, password) !=
	    RNP_SUCCESS))
		return -1;
	if (rnp_key_get_subkey_count(key, &n) != RNP_SUCCESS)
		return -1;
	for (size_t i = 0; i < n; i++) {
		rnp_key_handle_t sub = NULL;
		int r;

		if (rnp_key_get_subkey_at(key, i, &sub) != RNP_SUCCESS)
			return -1;
		r = pgp_keys_unprotect(sub, password);
		rnp_key_handle_destroy(sub);
		if (r == -1)
			return -1;
	}
	return 0;
}

/* Stores one primary key (and with keys_dir, its secret part). */
static int
pgp_keys_store(struct db *db, const char *keys_dir, rnp_key_handle_t key,
    const char *password, char **err)
{
	unsigned char *pub = NULL, *sec = NULL;
	size_t publen = 0, seclen = 0;
	char *fpr = NULL, *uid = NULL, *emails;
	uint32_t created = 0;
	bool have_sec = false;
	int rv = -1;

	if (rnp_key_get_fprint(key, &fpr) != RNP_SUCCESS ||
	    strlen(fpr) != PGP_FPR_LEN) {
		xasprintf(err, "a key without a v4 fingerprint");
		rnp_buffer_destroy(fpr);
		return -1;
	}
	if (rnp_key_get_primary_uid(key, &uid) != RNP_SUCCESS)
		uid = NULL;
	(void)rnp_key_get_creation(key, &created);
	emails = pgp_keys_key_emails(key);
	if (pgp_keys_export(key, RNP_KEY_EXPORT_PUBLIC |
	    RNP_KEY_EXPORT_SUBKEYS, &pub, &publen) == -1) {
		xasprintf(err, "key %s: cannot export (larger than %d bytes?)",
		    fpr, PGP_MAX_KEY);
		goto out;
	}
	if (keys_dir != NULL && rnp_key_have_secret(key, &have_sec) ==
	    RNP_SUCCESS && have_sec) {
		if (pgp_keys_unprotect(key, password) == -1) {
			xasprintf(err, "key %s: the secret key is protected; "
			    "give its password with --password", fpr);
			goto out;
		}
		if (pgp_keys_export(key, RNP_KEY_EXPORT_SECRET |
		    RNP_KEY_EXPORT_SUBKEYS, &sec, &seclen) == -1) {
			xasprintf(err, "key %s: cannot export the secret key",
			    fpr);
			goto out;
		}
		if (pgp_keys_write_secret(keys_dir, fpr, sec, seclen,
		    err) == -1)
			goto out;
	}
	/* A key imported again keeps a secret part it had. */
	if (db_run(db, "INSERT INTO pgp_keys (fingerprint, uid, emails, "
	    "created, has_secret, data) VALUES (?1, ?2, ?3, ?4, ?5, ?6) "
	    "ON CONFLICT(fingerprint) DO UPDATE SET uid = ?2, emails = ?3, "
	    "created = ?4, has_secret = CASE WHEN excluded.has_secret > "
	    "pgp_keys.has_secret THEN excluded.has_secret ELSE "
	    "pgp_keys.has_secret END, data = ?6",
	    "tttiib", fpr, uid ? uid : "", emails, (int64_t)created,
	    (int64_t)(sec != NULL), pub, publen) == -1) {
		xasprintf(err, "database: cannot store key %s", fpr);
		goto out;
	}
	rv = 0;
out:
	if (sec != NULL) {
		rnp_buffer_clear(sec, seclen);
		free(sec);
	}
	free(pub);
	free(emails);
	rnp_buffer_destroy(uid);
	rnp_buffer_destroy(fpr);
	return rv;
}

/* Imports data into a fresh ffi and stores every primary key in it. */
static int
pgp_keys_import_mem(struct db *db, const char *keys_dir,
    const unsigned char *data, size_t len, const char *password, char **err)
{
	rnp_ffi_t ffi = NULL;
	rnp_input_t in = NULL;
	rnp_identifier_iterator_t it = NULL;
	const char *id;
	uint32_t flags = RNP_LOAD_SAVE_PUBLIC_KEYS;
	int n = 0, rv = -1;

	if (len > PGP_MAX_KEYFILE) {
		xasprintf(err, "key data larger than %d bytes", PGP_MAX_KEYFILE);
		return -1;
	}
	if (keys_dir != NULL)
		flags |= RNP_LOAD_SAVE_SECRET_KEYS;
	if (rnp_ffi_create(&ffi, "GPG", "GPG") != RNP_SUCCESS)
		fatalx("pgp: rnp_ffi_create");
	if (rnp_input_from_memory(&in, data, len, false) != RNP_SUCCESS ||
	    rnp_import_keys(ffi, in, flags, NULL) != RNP_SUCCESS) {
		xasprintf(err, "no OpenPGP key could be read");
		goto out;
	}
	if (rnp_identifier_iterator_create(ffi, &it, "fingerprint") !=
	    RNP_SUCCESS)
		goto out;
	if (db_begin(db) == -1) {
		xasprintf(err, "database: cannot begin");
		goto out;
	}
	while (rnp_identifier_iterator_next(it, &id) == RNP_SUCCESS &&
	    id != NULL) {
		rnp_key_handle_t key = NULL;
		bool primary = false;
		int r;

		if (rnp_locate_key(ffi, "fingerprint", id, &key) !=
		    RNP_SUCCESS || key == NULL)
			continue;
		if (rnp_key_is_primary(key, &primary) != RNP_SUCCESS ||
		    !primary) {
			rnp_key_handle_destroy(key);
			continue;
		}
		if (++n > PGP_MAX_KEYS) {
			rnp_key_handle_destroy(key);
			xasprintf(err, "more than %d keys", PGP_MAX_KEYS);
			db_rollback(db);
			goto out;
		}
		r = pgp_keys_store(db, keys_dir, key, password, err);
		rnp_key_handle_destroy(key);
		if (r == -1) {
			db_rollback(db);
			goto out;
		}
	}
	if (n == 0) {
		xasprintf(err, "no OpenPGP primary key found");
		db_rollback(db);
		goto out;
	}
	if (db_commit(db) == -1) {
		xasprintf(err, "database: cannot commit");
		goto out;
	}
	rv = n;
out:
	rnp_identifier_iterator_destroy(it);
	rnp_input_destroy(in);
	rnp_ffi_destroy(ffi);
	return rv;
}

int
pgp_keys_import(struct db *db, const char *keys_dir, const char *path,
    const char *password, char **err)
{
	unsigned char *data;
	struct stat st;
	FILE *f;
	size_t len;
	int rv;

	if ((f = fopen(path, "re")) == NULL) {
		xasprintf(err, "%s", strerror(errno));
		return -1;
	}
	if (fstat(fileno(f), &st) == -1 || st.st_size > PGP_MAX_KEYFILE) {
		xasprintf(err, "larger than %d bytes", PGP_MAX_KEYFILE);
		fclose(f);
		return -1;
	}
	data = xmalloc(PGP_MAX_KEYFILE + 1);
	len = fread(data, 1, PGP_MAX_KEYFILE + 1, f);
	fclose(f);
	if (len > PGP_MAX_KEYFILE) {
		xasprintf(err, "larger than %d bytes", PGP_MAX_KEYFILE);
		free(data);
		return -1;
	}
	rv = pgp_keys_import_mem(db, keys_dir, data, len, password, err);
	explicit_bzero(data, len);
	free(data);
	return rv;
}

int
pgp_keys_import_public(struct db *db, const unsigned char *data, size_t len,
    char **err)
{
	return pgp_keys_import_mem(db, NULL, data, len, NULL, err);
}

int
pgp_keys_list(struct db *db, struct pgp_key_entry **out, char **err)
{
	struct db_stmt *st;
	struct pgp_key_entry *v = NULL;
	int n = 0, rc;

	*out = NULL;
	if ((st = db_prepare(db, "SELECT fingerprint, uid, emails, created, "
	    "has_secret FROM pgp_keys ORDER BY uid, fingerprint")) == NULL) {
		xasprintf(err, "database: cannot list keys");
		return -1;
	}
	while ((rc = db_step(st)) == DB_ROW) {
		struct pgp_key_entry *e;

		v = xreallocarray(v, n + 1, sizeof(*v));
		e = &v[n++];
		snprintf(e->fingerprint, sizeof(e->fingerprint), "%s",
		    (const char *)db_col_text(st, 0));
		e->uid = xstrdup((const char *)db_col_text(st, 1));
		e->emails = xstrdup((const char *)db_col_text(st, 2));
		e->created = (time_t)db_col_int(st, 3);
		e->has_secret = db_col_int(st, 4);
	}
	db_finalize(st);
	if (rc == -1) {
		pgp_keys_list_free(&v, n);
		xasprintf(err, "database: cannot list keys");
		return -1;
	}
	*out = v;
	return n;
}

void
pgp_keys_list_free(struct pgp_key_entry **v, size_t n)
{
	if (*v == NULL)
		return;
	for (size_t i = 0; i < n; i++) {
		free((*v)[i].uid);
		free((*v)[i].emails);
	}
	free(*v);
	*v = NULL;
}

int
pgp_keys_remove(struct db *db, const char *keys_dir, const char *what,
    char **err)
{
	struct pgp_key_entry *v;
	char folded[ADDR_MAX], path[4200];
	int n, removed = 0;

	if (strchr(what, '@') != NULL && addr_fold(what, folded,
	    sizeof(folded)) == -1) {
		xasprintf(err, "%s: not an address", what);
		return -1;
	}
	if ((n = pgp_keys_list(db, &v, err)) == -1)
		return -1;
	for (int i = 0; i < n; i++) {
		char list[4096], needle[ADDR_MAX + 3];
		int hit;

		if (strchr(what, '@') != NULL) {
			snprintf(list, sizeof(list), ",%s,", v[i].emails);
			snprintf(needle, sizeof(needle), ",%s,", folded);
			hit = strstr(list, needle) != NULL;
		} else
			hit = strcasecmp(v[i].fingerprint, what) == 0;
		if (!hit)
			continue;
		if (db_run(db, "DELETE FROM pgp_keys WHERE fingerprint = ?1",
		    "t", v[i].fingerprint) == -1) {
			xasprintf(err, "database: cannot remove %s",
			    v[i].fingerprint);
			pgp_keys_list_free(&v, n);
			return -1;
		}
		snprintf(path, sizeof(path), "%s/%s/%s.pgp", keys_dir,
		    PGP_KEYS_SUBDIR, v[i].fingerprint);
		if (unlink(path) == -1 && errno != ENOENT)
			log_warn("unlink %s", path);
		removed++;
	}
	pgp_keys_list_free(&v, n);
	return removed;
}

int
pgp_keys_find(struct db *db, const char *addr, unsigned char ***blobs,
    size_t **lens)
{
	struct db_stmt *st;
	char folded[ADDR_MAX];
	int n = 0, rc;

	*blobs = NULL;
	*lens = NULL;
	if (addr_fold(addr, folded, sizeof(folded)) == -1)
		return 0;
	if ((st = db_prepare(db, "SELECT data FROM pgp_keys WHERE"
	    " instr(',' || emails || ',', ',' || ?1 || ',') > 0"
	    " ORDER BY created DESC LIMIT 8")) == NULL)
		return -1;
	if (db_bind(st, "t", folded) == -1) {
		db_finalize(st);
		return -1;
	}
	while ((rc = db_step(st)) == DB_ROW) {
		size_t len = (size_t)db_col_bytes(st, 0);

		*blobs = xreallocarray(*blobs, n + 1, sizeof(**blobs));
		*lens = xreallocarray(*lens, n + 1, sizeof(**lens));
		(*blobs)[n] = xmalloc(len ? len : 1);
		memcpy((*blobs)[n], db_col_blob(st, 0), len);
		(*lens)[n++] = len;
	}
	db_finalize(st);
	if (rc == -1) {
		pgp_keys_blobs_free(blobs, lens, n);
		return -1;
	}
	return n;
}

void
pgp_keys_blobs_free(unsigned char ***blobs, size_t **lens, int n)
{
	for (int i = 0; i < n && *blobs != NULL; i++)
		free((*blobs)[i]);
	free(*blobs);
	free(*lens);
	*blobs = NULL;
	*lens = NULL;
}
