/*
 * Outbound OpenPGP (see pgp.h): choosing a recipient's encryption subkey
 * and writing PGP/MIME multipart/encrypted (RFC 3156 section 4).
 *
 * SECURITY: the message comes from the LAN through the SMTP worker: any
 * bytes up to the accepted size. Only its top-level header is split (with
 * header.h, bounded); the body is copied into librnp's stream unparsed.
 * Recipient keys come from the database (stored by pgp_keys.c after
 * librnp accepted them) and are parsed again by librnp here. No secret key
 * is ever loaded in this process.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/rand.h>
#include <rnp/rnp.h>
#include <rnp/rnp_err.h>

#include "addr.h"
#include "buf.h"
#include "header.h"
#include "log.h"
#include "pgp.h"
#include "xmalloc.h"

#define PGP_MAX_HEADER	(4 * 1024 * 1024)
#define PGP_CHUNK	65536

/* The entity fed to librnp: the content fields, then the body from f. */
struct pgp_src {
	const char	*head;
	size_t		 headlen, off;
	FILE		*f;
};

/* The armoured output, written with CRLF line ends. */
struct pgp_sink {
	FILE	*f;
	int	 prev_cr;
	int	 err;
};

/* 1 when k may encrypt now: valid, not revoked, not expired, usage. */
static int
pgp_key_usable(rnp_key_handle_t k)
{
	bool b = false;

	if (rnp_key_is_revoked(k, &b) != RNP_SUCCESS || b)
		return 0;
	if (rnp_key_is_expired(k, &b) != RNP_SUCCESS || b)
		return 0;
	if (rnp_key_is_valid(k, &b) != RNP_SUCCESS || !b)
		return 0;
	if (rnp_key_allows_usage(k, "encrypt", &b) != RNP_SUCCESS || !b)
		return 0;
	return 1;
}

/*
 * The usable encryption key of primary (a subkey, the newest, or the
 * primary itself when it may encrypt), in a new handle; NULL when none.
 */
static rnp_key_handle_t
pgp_key_pick(rnp_ffi_t ffi, rnp_key_handle_t primary)
{
	rnp_key_handle_t best = NULL;
	uint32_t best_t = 0, t;
	size_t n = 0;
	bool b = false;
	char *fpr = NULL;

	if (rnp_key_is_revoked(primary, &b) != RNP_SUCCESS || b)
		return NULL;
	if (rnp_key_is_expired(primary, &b) != RNP_SUCCESS || b)
		return NULL;
	if (rnp_key_get_subkey_count(primary, &n) != RNP_SUCCESS)
		return NULL;
	for (size_t i = 0; i < n && i < 64; i++) {
		rnp_key_handle_t sub = NULL;

		if (rnp_key_get_subkey_at(primary, i, &sub) != RNP_SUCCESS)
			continue;
		if (pgp_key_usable(sub) && rnp_key_get_creation(sub, &t) ==
		    RNP_SUCCESS && (best == NULL || t > best_t)) {
			rnp_key_handle_destroy(best);
			best = sub;
			best_t = t;
		} else
			rnp_key_handle_destroy(sub);
	}
	if (best == NULL && pgp_key_usable(primary) &&
	    rnp_key_get_fprint(primary, &fpr) == RNP_SUCCESS) {
		(void)rnp_locate_key(ffi, "fingerprint", fpr, &best);
		rnp_buffer_destroy(fpr);
	}
	return best;
}

/* 1 when a valid user ID of key names addr (folded). */
static int
pgp_key_names(rnp_key_handle_t key, const char *addr)
{
	char folded[ADDR_MAX], list[8192], needle[ADDR_MAX + 3], *emails;
	int hit;

	if (addr_fold(addr, folded, sizeof(folded)) == -1)
		return 0;
	emails = pgp_keys_key_emails(key);
	snprintf(list, sizeof(list), ",%s,", emails);
	snprintf(needle, sizeof(needle), ",%s,", folded);
	hit = strstr(list, needle) != NULL;
	free(emails);
	return hit;
}

/*
 * The fingerprint of the key to encrypt to addr with among the primary
 * keys in ffi that name addr (caller frees), or NULL.
 */
static char *
pgp_pick_in(rnp_ffi_t ffi, const char *addr)
{
	rnp_identifier_iterator_t it = NULL;
	const char *id;
	char *best = NULL, *fpr;
	uint32_t best_t = 0, t;

	if (rnp_identifier_iterator_create(ffi, &it, "fingerprint") !=
	    RNP_SUCCESS)
		return NULL;
	while (rnp_identifier_iterator_next(it, &id) == RNP_SUCCESS &&
	    id != NULL) {
		rnp_key_handle_t k = NULL, use;
		bool primary = false;

		if (rnp_locate_key(ffi, "fingerprint", id, &k) != RNP_SUCCESS ||
		    k == NULL)
			continue;
		if (rnp_key_is_primary(k, &primary) != RNP_SUCCESS ||
		    !primary || !pgp_key_names(k, addr) ||
		    (use = pgp_key_pick(ffi, k)) == NULL) {
			rnp_key_handle_destroy(k);
			continue;
		}
		if (rnp_key_get_creation(use, &t) == RNP_SUCCESS &&
		    (best == NULL || t > best_t) &&
		    rnp_key_get_fprint(use, &fpr) == RNP_SUCCESS) {
			free(best);
			best = xstrdup(fpr);
			best_t = t;
			rnp_buffer_destroy(fpr);
		}
		rnp_key_handle_destroy(use);
		rnp_key_handle_destroy(k);
	}
	rnp_identifier_iterator_destroy(it);
	return best;
}

static void
pgp_import_blobs(rnp_ffi_t ffi, unsigned char **blobs, size_t *lens, int n)
{
	for (int i = 0; i < n; i++) {
		rnp_input_t in = NULL;

		if (rnp_input_from_memory(&in, blobs[i], lens[i], false) !=
		    RNP_SUCCESS)
			continue;
		(void)rnp_import_keys(ffi, in, RNP_LOAD_SAVE_PUBLIC_KEYS, NULL);
		rnp_input_destroy(in);
	}
}

/*
 * The fingerprint of the key to encrypt to addr with (caller frees), or
 * NULL when addr has no usable key (*dberr set when the database failed).
 * Its stored keys are imported into ffi, where the encryption follows.
 */
static char *
pgp_recipient(struct db *db, const char *addr, rnp_ffi_t ffi, int *dberr)
{
	unsigned char **blobs;
	size_t *lens;
	int n;

	*dberr = 0;
	if ((n = pgp_keys_find(db, addr, &blobs, &lens)) == -1) {
		*dberr = 1;
		return NULL;
	}
	pgp_import_blobs(ffi, blobs, lens, n);
	pgp_keys_blobs_free(&blobs, &lens, n);
	return n > 0 ? pgp_pick_in(ffi, addr) : NULL;
}

/*
 * Each thread remembers its last answers to "has addr a usable key?" for
 * the stored key data they were computed from (a SHA-256 of it) and at
 * most PGP_CACHE_TTL seconds, so the policy's lookups at RCPT and after
 * DATA do not parse and check the same keys again: parsing checks every
 * binding signature. Changed key data, and time passing (a key expires),
 * are seen.
 */
#define PGP_CACHE_SLOTS	16
#define PGP_CACHE_TTL	60

struct pgp_cache_ent {
	char		 addr[ADDR_MAX];
	unsigned char	 md[32];
	time_t		 at;
	int		 usable;
};

static __thread struct pgp_cache_ent	pgp_cache[PGP_CACHE_SLOTS];
static __thread unsigned		pgp_cache_next;

int
pgp_has_key(struct db *db, const char *addr)
{
	unsigned char **blobs, md[32];
	size_t *lens;
	char folded[ADDR_MAX], *fpr;
	rnp_ffi_t ffi;
	EVP_MD_CTX *ctx;
	time_t now = time(NULL);
	struct pgp_cache_ent *e;
	int n;

	if (addr_fold(addr, folded, sizeof(folded)) == -1)
		return 0;
	if ((n = pgp_keys_find(db, folded, &blobs, &lens)) <= 0)
		return n;
	if ((ctx = EVP_MD_CTX_new()) == NULL ||
	    !EVP_DigestInit_ex(ctx, EVP_sha256(), NULL))
		fatalx("pgp: SHA-256");
	for (int i = 0; i < n; i++)
		EVP_DigestUpdate(ctx, blobs[i], lens[i]);
	EVP_DigestFinal_ex(ctx, md, NULL);
	EVP_MD_CTX_free(ctx);
	for (int i = 0; i < PGP_CACHE_SLOTS; i++) {
		e = &pgp_cache[i];
		if (e->at != 0 && now - e->at < PGP_CACHE_TTL && now >= e->at &&
		    strcmp(e->addr, folded) == 0 &&
		    memcmp(e->md, md, sizeof(md)) == 0) {
			pgp_keys_blobs_free(&blobs, &lens, n);
			return e->usable;
		}
	}
	if (rnp_ffi_create(&ffi, "GPG", "GPG") != RNP_SUCCESS)
		fatalx("pgp: rnp_ffi_create");
	pgp_import_blobs(ffi, blobs, lens, n);
	pgp_keys_blobs_free(&blobs, &lens, n);
	fpr = pgp_pick_in(ffi, folded);
	rnp_ffi_destroy(ffi);
	e = &pgp_cache[pgp_cache_next++ % PGP_CACHE_SLOTS];
	snprintf(e->addr, sizeof(e->addr), "%s", folded);
	memcpy(e->md, md, sizeof(md));
	e->at = now;
	e->usable = fpr != NULL;
	free(fpr);
	return e->usable;
}

int
pgp_keys_usable_in(rnp_ffi_t ffi, const char *addr)
{
	rnp_identifier_iterator_t it = NULL;
	const char *id;
	int found = 0;

	if (rnp_identifier_iterator_create(ffi, &it, "fingerprint") !=
	    RNP_SUCCESS)
		return -1;
	while (!found && rnp_identifier_iterator_next(it, &id) ==
	    RNP_SUCCESS && id != NULL) {
		rnp_key_handle_t k = NULL, use = NULL;
		bool primary = false;

		if (rnp_locate_key(ffi, "fingerprint", id, &k) != RNP_SUCCESS ||
		    k == NULL)
			continue;
		if (rnp_key_is_primary(k, &primary) == RNP_SUCCESS &&
		    primary && pgp_key_names(k, addr) &&
		    (use = pgp_key_pick(ffi, k)) != NULL)
			found = 1;
		rnp_key_handle_destroy(use);
		rnp_key_handle_destroy(k);
	}
	rnp_identifier_iterator_destroy(it);
	return found;
}

static bool
pgp_src_read(void *arg, void *buf, size_t len, size_t *got)
{
	struct pgp_src *s = arg;
	size_t n;

	if (s->off < s->headlen) {
		n = s->headlen - s->off < len ? s->headlen - s->off : len;
		memcpy(buf, s->head + s->off, n);
		s->off += n;
		*got = n;
		return true;
	}
	n = fread(buf, 1, len, s->f);
	*got = n;
	return !ferror(s->f);
}

static bool
pgp_sink_write(void *arg, const void *buf, size_t len)
{
	struct pgp_sink *s = arg;
	const char *p = buf;
	char out[8192];
	size_t o = 0;

	for (size_t i = 0; i < len; i++) {
		if (o + 2 > sizeof(out)) {
			if (fwrite(out, 1, o, s->f) != o)
				s->err = 1;
			o = 0;
		}
		if (p[i] == '\n' && !s->prev_cr)
			out[o++] = '\r';
		out[o++] = p[i];
		s->prev_cr = p[i] == '\r';
	}
	if (o > 0 && fwrite(out, 1, o, s->f) != o)
		s->err = 1;
	return !s->err;
}

static int
pgp_is_content_field(const char *name)
{
	return strncasecmp(name, "Content-", 8) == 0 ||
	    strcasecmp(name, "MIME-Version") == 0;
}

int
pgp_encrypt(struct db *db, const char *const *rcpts, size_t nrcpts, FILE *in,
    FILE *out, char *err, size_t errlen)
{
	struct header hdr;
	struct buf head;
	struct pgp_src src;
	struct pgp_sink sink = { out, 0, 0 };
	rnp_ffi_t ffi = NULL;
	rnp_input_t rin = NULL;
	rnp_output_t rout = NULL;
	rnp_op_encrypt_t op = NULL;
	unsigned char rnd[16];
	char boundary[48], **fprs = NULL;
	int dberr, rv = -1, r;

	memset(&hdr, 0, sizeof(hdr));
	buf_init(&head, PGP_MAX_HEADER);
	if ((r = header_read(in, PGP_MAX_HEADER, &hdr)) != 0) {
		snprintf(err, errlen, "%s", r == -2 ? "malformed or oversized "
		    "message header" : "cannot read the message");
		goto out;
	}
	if (rnp_ffi_create(&ffi, "GPG", "GPG") != RNP_SUCCESS)
		fatalx("pgp: rnp_ffi_create");
	/* Every recipient's key, before anything is written. */
	fprs = xcalloc(nrcpts, sizeof(*fprs));
	for (size_t i = 0; i < nrcpts; i++)
		if ((fprs[i] = pgp_recipient(db, rcpts[i], ffi,
		    &dberr)) == NULL) {
			snprintf(err, errlen, "no usable OpenPGP key for %s%s",
			    rcpts[i], dberr ? " (database failed)" : "");
			goto out;
		}
	for (size_t i = 0; i < hdr.nfields; i++) {
		const struct header_field *f = &hdr.fields[i];

		if (strcasecmp(f->name, "MIME-Version") == 0)
			continue;
		if (pgp_is_content_field(f->name) && buf_put(&head, f->raw,
		    f->rawlen) == -1) {
			snprintf(err, errlen, "oversized message header");
			goto out;
		}
	}
	if (buf_put(&head, "\r\n", 2) == -1) {
		snprintf(err, errlen, "oversized message header");
		goto out;
	}
	memset(&src, 0, sizeof(src));
	src.head = head.data;
	src.headlen = head.len;
	src.f = in;

	if (RAND_bytes(rnd, sizeof(rnd)) != 1)
		fatalx("pgp: RAND_bytes");
	snprintf(boundary, sizeof(boundary), "=-pgp-");
	for (size_t i = 0; i < 12; i++)
		snprintf(boundary + strlen(boundary), 3, "%02x", rnd[i]);

	for (size_t i = 0; i < hdr.nfields; i++) {
		const struct header_field *f = &hdr.fields[i];

		if (!pgp_is_content_field(f->name) &&
		    fwrite(f->raw, 1, f->rawlen, out) != f->rawlen)
			goto ioerr;
	}
	if (fprintf(out, "MIME-Version: 1.0\r\n"
	    "Content-Type: multipart/encrypted;\r\n"
	    "\tprotocol=\"application/pgp-encrypted\";\r\n"
	    "\tboundary=\"%s\"\r\n\r\n"
	    "This is an OpenPGP/MIME encrypted message (RFC 4880 and "
	    "3156).\r\n"
	    "--%s\r\n"
	    "Content-Type: application/pgp-encrypted\r\n"
	    "Content-Description: PGP/MIME version identification\r\n\r\n"
	    "Version: 1\r\n\r\n"
	    "--%s\r\n"
	    "Content-Type: application/octet-stream; name=\"encrypted.asc\""
	    "\r\n"
	    "Content-Description: OpenPGP encrypted message\r\n"
	    "Content-Disposition: inline; filename=\"encrypted.asc\"\r\n\r\n",
	    boundary, boundary, boundary) < 0)
		goto ioerr;

	if (rnp_input_from_callback(&rin, pgp_src_read, NULL, &src) !=
	    RNP_SUCCESS || rnp_output_to_callback(&rout, pgp_sink_write, NULL,
	    &sink) != RNP_SUCCESS)
		fatalx("pgp: rnp input/output");
	if (rnp_op_encrypt_create(&op, ffi, rin, rout) != RNP_SUCCESS)
		fatalx("pgp: rnp_op_encrypt_create");
	for (size_t i = 0; i < nrcpts; i++) {
		rnp_key_handle_t k = NULL;

		if (rnp_locate_key(ffi, "fingerprint", fprs[i], &k) !=
		    RNP_SUCCESS || k == NULL ||
		    rnp_op_encrypt_add_recipient(op, k) != RNP_SUCCESS) {
			snprintf(err, errlen, "librnp refuses the key of %s",
			    rcpts[i]);
			rnp_key_handle_destroy(k);
			goto out;
		}
		rnp_key_handle_destroy(k);
	}
	if (rnp_op_encrypt_set_armor(op, true) != RNP_SUCCESS ||
	    rnp_op_encrypt_set_cipher(op, "AES256") != RNP_SUCCESS ||
	    rnp_op_encrypt_set_file_name(op, "") != RNP_SUCCESS)
		fatalx("pgp: encryption parameters");
	if ((r = rnp_op_encrypt_execute(op)) != RNP_SUCCESS) {
		snprintf(err, errlen, "%s", sink.err ? strerror(errno) :
		    rnp_result_to_string(r));
		goto out;
	}
	if (rnp_output_finish(rout) != RNP_SUCCESS || sink.err)
		goto ioerr;
	if (fprintf(out, "\r\n--%s--\r\n", boundary) < 0)
		goto ioerr;
	rv = 0;
	goto out;
ioerr:
	snprintf(err, errlen, "write: %s", strerror(errno));
out:
	rnp_op_encrypt_destroy(op);
	rnp_input_destroy(rin);
	rnp_output_destroy(rout);
	rnp_ffi_destroy(ffi);
	for (size_t i = 0; fprs != NULL && i < nrcpts; i++)
		free(fprs[i]);
	free(fprs);
	buf_free(&head);
	header_free(&hdr);
	return rv;
}
