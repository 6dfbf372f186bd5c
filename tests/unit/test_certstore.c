/*
 * Certificate store: import (PEM, PEM with key, PKCS#12 right and wrong
 * password), list, remove, and the recipient policy: one test per reason a
 * certificate is refused. Runs from the source root; PKI from mkpki.sh.
 */
#include <sys/stat.h>
#include <sys/wait.h>

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


#include "../../internal-gw/certstore.h"
#include "db.h"

static char pki[512], tmp[512], keys[600];
static struct db *db;
static X509_STORE *trust;

static int
import(const char *dir, const char *name, const char *password, char **err)
{
	char path[1400];

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	*err = NULL;
	return certstore_import(db, keys, path, password, err);
}

static int
setup(void **state)
{
	const char *p = getenv("POSTERN_PKI");
	char path[700], *err = NULL;
	static const char *const certs[] = { "bob-chain.pem", "expired.crt",
	    "wrongeku.crt", "untrusted.crt", "nosan.crt" };

	(void)state;
	snprintf(pki, sizeof(pki), "%s", p ? p : "build/pki");
	if (run("sh tests/pki/mkpki.sh %s", pki) != 0)
		return -1;
	snprintf(tmp, sizeof(tmp), "/tmp/postern-certstore-XXXXXX");
	if (mkdtemp(tmp) == NULL)
		return -1;
	snprintf(keys, sizeof(keys), "%s/keys", tmp);
	snprintf(path, sizeof(path), "%s/gw.db", tmp);
	if ((db = db_open(path, &err)) == NULL || certstore_init(db, &err))
		return -1;
	/* Only the root is a trust anchor: intermediates come from the table. */
	snprintf(path, sizeof(path), "%s/root-ca.crt", pki);
	if ((trust = certstore_trust_load(path, &err)) == NULL)
		return -1;
	for (size_t i = 0; i < sizeof(certs) / sizeof(certs[0]); i++)
		if (import(pki, certs[i], NULL, &err) < 1) {
			fprintf(stderr, "%s: %s\n", certs[i], err);
			return -1;
		}
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	X509_STORE_free(trust);
	db_close(db);
	run("rm -rf %s", tmp);
	return 0;
}

static int
find(const char *addr)
{
	X509 **v;
	size_t n;
	int rc;

	rc = certstore_find_recipient(db, trust, addr, &v, &n);
	assert_int_equal((size_t)rc, n);
	certstore_certs_free(&v, n);
	return rc;
}

static void
test_valid_recipient(void **state)
{
	(void)state;
	assert_int_equal(find("bob@example.net"), 1);
	assert_int_equal(find("bob@EXAMPLE.Net"), 1);	/* domain any case */
	assert_int_equal(certstore_has_valid(db, trust, "bob@example.net"), 1);
}

static void
test_expired(void **state)
{
	(void)state;
	assert_int_equal(find("expired@example.net"), 0);
	assert_int_equal(certstore_has_valid(db, trust, "expired@example.net"),
	    0);
}

static void
test_wrong_eku(void **state)
{
	(void)state;
	assert_int_equal(find("wrongeku@example.net"), 0);
}

static void
test_untrusted_ca(void **state)
{
	(void)state;
	assert_int_equal(find("untrusted@example.net"), 0);
}

/* The address is in the subject DN but not in subjectAltName. */
static void
test_no_san_email(void **state)
{
	struct certstore_entry *v;
	int n, seen = 0;
	char *err = NULL;

	(void)state;
	n = certstore_list(db, &v, &err);
	for (int i = 0; i < n; i++)
		seen |= strstr(v[i].emails, "nosan@example.net") != NULL;
	certstore_list_free(&v, (size_t)n);
	assert_true(seen);
	assert_int_equal(find("nosan@example.net"), 0);
}

static void
test_wrong_address(void **state)
{
	(void)state;
	assert_int_equal(find("bobby@example.net"), 0);
	assert_int_equal(find("bob@example.com"), 0);
	assert_int_equal(find("Bob@example.net"), 0);	/* local part exact */
}

static void
test_p12_right_password(void **state)
{
	struct certstore_entry *v;
	char path[800], *err = NULL;
	struct stat sb;
	int n, found = 0;

	(void)state;
	assert_true(import(pki, "alice.p12", "secret", &err) >= 1);
	n = certstore_list(db, &v, &err);
	assert_true(n > 0);
	for (int i = 0; i < n; i++)
		if (strstr(v[i].emails, "alice@example.com")) {
			found = 1;
			assert_int_equal(v[i].has_key, 1);
			snprintf(path, sizeof(path), "%s/%s.pem", keys,
			    v[i].fingerprint);
			assert_int_equal(stat(path, &sb), 0);
			assert_int_equal(sb.st_mode & 0777, 0600);
			assert_int_equal(run("grep -q 'PRIVATE KEY' %s", path),
			    0);
		}
	certstore_list_free(&v, (size_t)n);
	assert_true(found);
}

static void
test_p12_wrong_password(void **state)
{
	char *err = NULL;

	(void)state;
	assert_int_equal(import(pki, "bob.p12", "wrong", &err), -1);
	assert_non_null(err);
	assert_non_null(strstr(err, "password"));
	free(err);
	assert_int_equal(import(pki, "bob.p12", NULL, &err), -1);
	free(err);
	/* Nothing of bob's key reached keys_dir. */
	assert_int_not_equal(run("grep -lq . %s/*.pem 2>/dev/null &&"
	    " openssl x509 -in $(ls %s/*.pem | head -1) -noout -subject |"
	    " grep -q Bob", keys, keys), 0);
}

static void
test_pem_with_key_and_remove(void **state)
{
	struct certstore_entry *v;
	char *err = NULL, fpr[CERTSTORE_FPR_LEN + 1] = "", path[800];
	int n;

	(void)state;
	assert_int_equal(run("cat %s/carol.key %s/carol.crt > %s/carol.pem",
	    pki, pki, tmp), 0);
	assert_int_equal(import(tmp, "carol.pem", NULL, &err), 1);
	n = certstore_list(db, &v, &err);
	for (int i = 0; i < n; i++)
		if (strcmp(v[i].emails, "carol@example.com") == 0) {
			assert_int_equal(v[i].has_key, 1);
			memcpy(fpr, v[i].fingerprint, sizeof(fpr));
		}
	certstore_list_free(&v, (size_t)n);
	assert_int_equal(strlen(fpr), CERTSTORE_FPR_LEN);
	snprintf(path, sizeof(path), "%s/%s.pem", keys, fpr);
	assert_int_equal(access(path, F_OK), 0);

	assert_int_equal(certstore_remove(db, keys, fpr, &err), 1);
	assert_int_equal(access(path, F_OK), -1);
	assert_int_equal(certstore_remove(db, keys, fpr, &err), 0);
	assert_int_equal(certstore_remove(db, keys, "not-a-fingerprint", &err),
	    -1);
	free(err);
}

static void
test_remove_by_email(void **state)
{
	char *err = NULL, path[700];

	(void)state;
	assert_int_equal(certstore_remove(db, keys, "BOB@example.net", &err),
	    1);
	assert_int_equal(find("bob@example.net"), 0);
	snprintf(path, sizeof(path), "bob.crt");
	assert_int_equal(import(pki, path, NULL, &err), 1);
	assert_int_equal(find("bob@example.net"), 1);
}

static void
test_trust_load_errors(void **state)
{
	char *err = NULL;

	(void)state;
	assert_null(certstore_trust_load("/nonexistent/ca.pem", &err));
	assert_non_null(err);
	free(err);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_valid_recipient),
		cmocka_unit_test(test_expired),
		cmocka_unit_test(test_wrong_eku),
		cmocka_unit_test(test_untrusted_ca),
		cmocka_unit_test(test_no_san_email),
		cmocka_unit_test(test_wrong_address),
		cmocka_unit_test(test_p12_right_password),
		cmocka_unit_test(test_p12_wrong_password),
		cmocka_unit_test(test_pem_with_key_and_remove),
		cmocka_unit_test(test_remove_by_email),
		cmocka_unit_test(test_trust_load_errors),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
