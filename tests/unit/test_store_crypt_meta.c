/*
 * The sealed metadata of a message row (store_crypt_meta.c): it opens
 * with the file's own CEK (the one store_crypt_encrypt_key hands out,
 * which also opens the file), keeps absent fields absent, holds none of
 * the plaintext, and refuses another key, a flipped bit, swapped fields
 * and every truncation.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>

#include "store/store_crypt.h"

static const char *const vals[STORE_CRYPT_META_N] = {
	"\"Plumtree Person\" <pp@example.org>",
	"=?utf-8?q?Quarterly_orchidvortex?= report",
};

static void
test_meta_roundtrip(void **state)
{
	unsigned char key[STORE_CRYPT_KEYLEN], *blob;
	const char *absent[STORE_CRYPT_META_N] = { NULL, "" };
	char *v[STORE_CRYPT_META_N];
	size_t len;

	(void)state;
	RAND_bytes(key, sizeof(key));
	assert_int_equal(store_crypt_meta_seal(key, vals, STORE_CRYPT_META_N,
	    &blob, &len), 0);
	assert_null(memmem(blob, len, "Plumtree", 8));
	assert_null(memmem(blob, len, "orchidvortex", 12));
	assert_int_equal(store_crypt_meta_open(key, blob, len, v,
	    STORE_CRYPT_META_N), 0);
	for (int i = 0; i < STORE_CRYPT_META_N; i++) {
		assert_string_equal(v[i], vals[i]);
		free(v[i]);
	}
	free(blob);

	/* Absent stays absent; empty stays empty. */
	assert_int_equal(store_crypt_meta_seal(key, absent,
	    STORE_CRYPT_META_N, &blob, &len), 0);
	assert_int_equal(store_crypt_meta_open(key, blob, len, v,
	    STORE_CRYPT_META_N), 0);
	assert_null(v[0]);
	assert_string_equal(v[1], "");
	free(v[1]);
	free(blob);
}

static void
test_meta_refused(void **state)
{
	unsigned char key[STORE_CRYPT_KEYLEN], other[STORE_CRYPT_KEYLEN];
	unsigned char *blob, *b2;
	char *v[STORE_CRYPT_META_N];
	size_t len, n0;

	(void)state;
	RAND_bytes(key, sizeof(key));
	RAND_bytes(other, sizeof(other));
	assert_int_equal(store_crypt_meta_seal(key, vals, STORE_CRYPT_META_N,
	    &blob, &len), 0);
	assert_int_equal(store_crypt_meta_open(other, blob, len, v,
	    STORE_CRYPT_META_N), -1);
	assert_null(v[0]);
	assert_null(v[1]);
	for (size_t i = 0; i < len; i++) {
		blob[i] ^= 0x01;
		assert_int_equal(store_crypt_meta_open(key, blob, len, v,
		    STORE_CRYPT_META_N), -1);
		blob[i] ^= 0x01;
	}
	for (size_t cut = 0; cut < len; cut++)
		assert_int_equal(store_crypt_meta_open(key, blob, cut, v,
		    STORE_CRYPT_META_N), -1);

	/* Field 0's record moved to slot 1 does not open there. */
	n0 = 1 + 12 + 4 + strlen(vals[0]) + 16;
	b2 = malloc(2 + n0);
	b2[0] = 0x01;
	b2[1] = 0x00;
	memcpy(b2 + 2, blob + 1, n0);
	assert_int_equal(store_crypt_meta_open(key, b2, 2 + n0, v,
	    STORE_CRYPT_META_N), -1);
	free(b2);
	free(blob);
}

/* The CEK handed out with a sealed file opens that file. */
static void
test_meta_key_is_the_files(void **state)
{
	char certfile[] = "/tmp/test_store_crypt_meta_XXXXXX";
	unsigned char key[STORE_CRYPT_KEYLEN], buf[32];
	struct store_crypt_file *f;
	struct store_crypt *sc;
	EVP_PKEY *k = EVP_RSA_gen(2048);
	X509 *x = X509_new();
	FILE *in = tmpfile(), *out = tmpfile(), *cf;
	char *err = NULL;
	int fd;

	(void)state;
	ASN1_INTEGER_set(X509_get_serialNumber(x), 7);
	X509_gmtime_adj(X509_getm_notBefore(x), 0);
	X509_gmtime_adj(X509_getm_notAfter(x), 3600);
	X509_set_pubkey(x, k);
	X509_sign(x, k, EVP_sha256());
	fd = mkstemp(certfile);
	cf = fdopen(fd, "w");
	PEM_write_X509(cf, x);
	fclose(cf);
	assert_non_null(sc = store_crypt_new(certfile, &err));
	fputs("Subject: hello\r\n\r\nbody\r\n", in);
	fflush(in);
	rewind(in);
	assert_int_equal(store_crypt_encrypt_key(sc, fileno(in), out, key), 0);
	fflush(out);
	assert_non_null(f = store_crypt_open(dup(fileno(out))));
	assert_int_equal(store_crypt_set_key(f, key), 0);
	assert_int_equal(store_crypt_pread(f, buf, 14, 0), 14);
	assert_memory_equal(buf, "Subject: hello", 14);
	store_crypt_close(f);
	store_crypt_free(sc);
	fclose(in);
	fclose(out);
	unlink(certfile);
	X509_free(x);
	EVP_PKEY_free(k);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_meta_roundtrip),
		cmocka_unit_test(test_meta_refused),
		cmocka_unit_test(test_meta_key_is_the_files),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
