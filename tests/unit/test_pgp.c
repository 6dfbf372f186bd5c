/*
 * OpenPGP pieces that need no daemon: the packet framing, the key holder's
 * key file reader (on a throw-away key in tests/fixtures/pgp) and the key
 * store (import, find by a folded address, remove). Runs from the source
 * root.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "unit_util.h"


#include "../../internal-gw/keyd_pgp.h"
#include "../../internal-gw/pgp.h"
#include "../../internal-gw/pgp_packet.h"
#include "db.h"

static unsigned char *
slurp(const char *path, size_t *len)
{
	unsigned char *p = malloc(1 << 16);
	FILE *f = fopen(path, "rb");

	assert_non_null(f);
	*len = fread(p, 1, 1 << 16, f);
	fclose(f);
	return p;
}

static void
test_packet_framing(void **state)
{
	static const struct {
		const char	*what;
		unsigned char	 in[8];
		size_t		 len;
		int		 rv, tag;
		size_t		 blen;
	} c[] = {
		{ "new format, 1-byte length", { 0xc2, 2, 'a', 'b' }, 4, 0,
		  2, 2 },
		{ "new format, 2-byte length, truncated", { 0xc2, 192, 5 },
		  3, -1, 0, 0 },
		{ "old format, 1-byte length", { 0x88, 1, 'x' }, 3, 0, 2, 1 },
		{ "old format, length past the end", { 0x88, 9, 'x' }, 3, -1,
		  0, 0 },
		{ "not a packet", { 0x42 }, 1, -1, 0, 0 },
		{ "partial length refused", { 0xd2, 0xe1, 1, 2 }, 4, -1, 0,
		  0 },
		{ "old indeterminate refused", { 0x8b, 1 }, 2, -1, 0, 0 },
		{ "empty input: the end", { 0 }, 0, 1, 0, 0 },
	};
	const unsigned char *body;
	size_t off, blen;
	int tag, r;

	(void)state;
	for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		off = 0;
		r = pgp_packet_next(c[i].in, c[i].len, &off, &tag, &body, &blen,
		    0);
		if (r != c[i].rv || (r == 0 && (tag != c[i].tag ||
		    blen != c[i].blen)))
			fail_msg("%s: got %d tag %d len %zu", c[i].what, r, tag,
			    blen);
	}
	/* Partial lengths are allowed for message data when asked. */
	off = 0;
	assert_int_equal(pgp_packet_next((const unsigned char *)"\xd2\xe1xy",
	    4, &off, &tag, &body, &blen, 1), 0);
	assert_int_equal(tag, 18);
	assert_true(blen == (size_t)-1);
}

static void
test_keyfile(void **state)
{
	unsigned char *p, fpr[20];
	char **emails, hex[41], want[64];
	const char *why;
	size_t len, nsubs;
	int algo;
	FILE *f;

	(void)state;
	p = slurp("tests/fixtures/pgp/unit.sec", &len);
	assert_int_equal(keyd_pgp_parse(p, len, &emails, &algo, fpr, &nsubs,
	    &why), 0);
	assert_string_equal(emails[0], "unit@example.org");
	assert_null(emails[1]);
	assert_int_equal(algo, PGP_ALG_EDDSA);
	assert_int_equal(nsubs, 1);
	for (int i = 0; i < 20; i++)
		snprintf(hex + 2 * i, 3, "%02X", fpr[i]);
	assert_non_null(f = fopen("tests/fixtures/pgp/unit.fpr", "r"));
	assert_non_null(fgets(want, sizeof(want), f));
	fclose(f);
	want[strcspn(want, "\n")] = '\0';
	assert_string_equal(hex, want);
	keyd_pgp_emails_free(&emails);

	/* Every truncation is refused or reads less, never overruns. */
	for (size_t n = 0; n < len; n++)
		if (keyd_pgp_parse(p, n, &emails, &algo, fpr, &nsubs,
		    &why) == 0)
			keyd_pgp_emails_free(&emails);
	/* A public key is no key file. */
	free(p);
	p = slurp("tests/fixtures/pgp/unit.pub", &len);
	assert_int_equal(keyd_pgp_parse(p, len, &emails, &algo, fpr, &nsubs,
	    &why), -1);
	assert_string_equal(why, "no secret key packet");
	free(p);
}

static void
test_store(void **state)
{
	unsigned char *p, **blobs;
	size_t len, *lens;
	char *err = NULL, tmp[] = "/tmp/test_pgp.XXXXXX", path[64];
	struct db *db;
	int n;

	(void)state;
	assert_non_null(mkdtemp(tmp));
	snprintf(path, sizeof(path), "%s/gw.db", tmp);
	assert_non_null(db = db_open(path, &err));
	assert_int_equal(pgp_keys_init(db, &err), 0);
	p = slurp("tests/fixtures/pgp/unit.pub", &len);
	assert_int_equal(pgp_keys_import_public(db, p, len, &err), 1);
	free(p);
	/* Found by the folded address, whatever its case. */
	assert_int_equal(n = pgp_keys_find(db, "UNIT@example.ORG", &blobs,
	    &lens), 1);
	pgp_keys_blobs_free(&blobs, &lens, n);
	assert_int_equal(pgp_has_key(db, "unit@example.org"), 1);
	assert_int_equal(pgp_has_key(db, "other@example.org"), 0);
	assert_int_equal(pgp_keys_remove(db, tmp, "Unit@Example.org", &err),
	    1);
	assert_int_equal(pgp_has_key(db, "unit@example.org"), 0);
	/* Public import never takes secret key material. */
	p = slurp("tests/fixtures/pgp/unit.sec", &len);
	assert_int_equal(pgp_keys_import_public(db, p, len, &err), 1);
	free(p);
	{
		struct pgp_key_entry *v;

		assert_int_equal(n = pgp_keys_list(db, &v, &err), 1);
		assert_int_equal(v[0].has_secret, 0);
		pgp_keys_list_free(&v, n);
	}
	db_close(db);
	assert_int_equal(run("rm -rf %s", tmp), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_packet_framing),
		cmocka_unit_test(test_keyfile),
		cmocka_unit_test(test_store),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
