/*
 * Sealed message files (store_crypt.c): OpenSSL's CMS opens them with
 * either recipient's key, the seekable reader returns the same bytes at
 * any offset, and RecipientInfos lookups find each recipient.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/cms.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "store/store_crypt.h"

static EVP_PKEY *key[2];
static X509 *cert[2];
static char certfile[] = "/tmp/test_store_crypt_XXXXXX";

static X509 *
mkcert(EVP_PKEY *k, long serial, const char *cn)
{
	X509 *x = X509_new();
	X509_NAME *n = X509_NAME_new();

	X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC,
	    (const unsigned char *)cn, -1, -1, 0);
	ASN1_INTEGER_set(X509_get_serialNumber(x), serial);
	X509_set_issuer_name(x, n);
	X509_set_subject_name(x, n);
	X509_gmtime_adj(X509_getm_notBefore(x), 0);
	X509_gmtime_adj(X509_getm_notAfter(x), 3600);
	X509_set_pubkey(x, k);
	X509_sign(x, k, EVP_sha256());
	X509_NAME_free(n);
	return x;
}

static int
setup(void **state)
{
	FILE *f;
	int fd;

	(void)state;
	for (int i = 0; i < 2; i++) {
		key[i] = EVP_RSA_gen(2048);
		cert[i] = mkcert(key[i], 10 + i, i ? "escrow" : "portal");
	}
	fd = mkstemp(certfile);
	f = fdopen(fd, "w");
	PEM_write_X509(f, cert[0]);
	PEM_write_X509(f, cert[1]);
	fclose(f);
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	unlink(certfile);
	for (int i = 0; i < 2; i++) {
		EVP_PKEY_free(key[i]);
		X509_free(cert[i]);
	}
	return 0;
}

/* A sealed temp file of n pattern bytes; the plaintext in *plain. */
static FILE *
seal(struct store_crypt *sc, size_t n, unsigned char **plain)
{
	FILE *in = tmpfile(), *out = tmpfile();

	*plain = malloc(n + 1);
	for (size_t i = 0; i < n; i++)
		(*plain)[i] = (unsigned char)(i * 7 + i / 251);
	fwrite(*plain, 1, n, in);
	fflush(in);
	rewind(in);
	assert_int_equal(store_crypt_encrypt(sc, fileno(in), out), 0);
	fclose(in);
	rewind(out);
	return out;
}

static void
test_roundtrip(void **state)
{
	size_t sizes[] = { 0, 1, 15, 16, 17, STORE_CRYPT_CHUNK - 16,
	    STORE_CRYPT_CHUNK, STORE_CRYPT_CHUNK + 1, 3 * STORE_CRYPT_CHUNK,
	    100000 };
	struct store_crypt *sc;
	char *err = NULL;

	(void)state;
	assert_non_null(sc = store_crypt_new(certfile, &err));
	for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
		unsigned char *plain, cek[512], buf[5000];
		const unsigned char *ris, *ek;
		size_t rislen, eklen, ceklen;
		struct store_crypt_file *f;
		EVP_PKEY_CTX *ctx;
		FILE *out = seal(sc, sizes[s], &plain);

		assert_int_equal(store_crypt_is_sealed(fileno(out)), 1);
		assert_non_null(f = store_crypt_open(dup(fileno(out))));
		ris = store_crypt_rinfos(f, &rislen);
		for (int i = 1; i >= 0; i--) {
			assert_int_equal(store_crypt_rinfo_find(ris, rislen,
			    cert[i], &ek, &eklen), 0);
			ctx = EVP_PKEY_CTX_new(key[i], NULL);
			ceklen = sizeof(cek);
			assert_int_equal(EVP_PKEY_decrypt_init(ctx), 1);
			assert_int_equal(EVP_PKEY_CTX_set_rsa_padding(ctx,
			    RSA_PKCS1_PADDING), 1);
			assert_int_equal(EVP_PKEY_decrypt(ctx, cek, &ceklen, ek,
			    eklen), 1);
			EVP_PKEY_CTX_free(ctx);
			assert_int_equal(ceklen, STORE_CRYPT_KEYLEN);
		}
		assert_int_equal(store_crypt_set_key(f, cek), 0);
		assert_int_equal(store_crypt_size(f), (int64_t)sizes[s]);
		/* Reads at assorted offsets and lengths. */
		for (size_t off = 0; off <= sizes[s]; off += 997) {
			size_t want = (off * 13) % sizeof(buf) + 1;
			size_t exp = sizes[s] - off < want ? sizes[s] - off : want;
			ssize_t n = store_crypt_pread(f, buf, want, (int64_t)off);

			assert_int_equal(n, (ssize_t)exp);
			assert_memory_equal(buf, plain + off, exp);
		}
		store_crypt_close(f);

		/* OpenSSL's CMS opens it with the escrow key alone. */
		{
			BIO *in = BIO_new_fp(out, BIO_NOCLOSE), *mem;
			CMS_ContentInfo *cms;
			char *p;
			long len;

			rewind(out);
			assert_non_null(cms = d2i_CMS_bio(in, NULL));
			mem = BIO_new(BIO_s_mem());
			assert_int_equal(CMS_decrypt(cms, key[1], NULL, NULL,
			    mem, CMS_BINARY), 1);
			len = BIO_get_mem_data(mem, &p);
			assert_int_equal(len, (long)sizes[s]);
			assert_memory_equal(p, plain, sizes[s]);
			BIO_free(mem);
			BIO_free(in);
			CMS_ContentInfo_free(cms);
		}
		fclose(out);
		free(plain);
	}
	store_crypt_free(sc);
}

static void
test_foreign(void **state)
{
	static const unsigned char junk[] = "From: a@b\r\n\r\nhello\r\n";
	unsigned char *blob;
	size_t len;
	const unsigned char *ek;
	size_t eklen;
	struct store_crypt *sc;
	struct store_crypt_file *f;
	char *err = NULL;
	X509 *other;
	EVP_PKEY *k;

	(void)state;
	assert_null(store_crypt_open_mem(junk, sizeof(junk)));
	assert_non_null(sc = store_crypt_new(certfile, &err));
	assert_int_equal(store_crypt_seal_mem(sc, "secret", 6, &blob, &len),
	    0);
	assert_non_null(f = store_crypt_open_mem(blob, len));
	k = EVP_RSA_gen(2048);
	other = mkcert(k, 99, "stranger");
	{
		size_t rl;
		const unsigned char *ris = store_crypt_rinfos(f, &rl);

		assert_int_equal(store_crypt_rinfo_find(ris, rl, other, &ek,
		    &eklen), -1);
		/* Truncated SETs never read past their end. */
		for (size_t cut = 0; cut < rl; cut += 7)
			(void)store_crypt_rinfo_find(ris, cut, cert[0], &ek,
			    &eklen);
	}
	/* Truncated blobs do not parse. */
	assert_null(store_crypt_open_mem(blob, 40));
	X509_free(other);
	EVP_PKEY_free(k);
	store_crypt_close(f);
	free(blob);
	store_crypt_free(sc);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_roundtrip),
		cmocka_unit_test(test_foreign),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
