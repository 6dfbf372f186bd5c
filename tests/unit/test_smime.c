/*
 * S/MIME through a real key holder child: RSA and ECDSA signing checked by
 * `openssl cms -verify`, encryption checked by `openssl cms -decrypt`,
 * sign-then-encrypt, 7-bit conversion, and the key holder's isolation.
 * Runs from the source root (make check-unit); the PKI comes from
 * tests/pki/mkpki.sh in $POSTERN_PKI (default build/pki).
 */
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <dirent.h>
#include <pwd.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "unit_util.h"

#include <gmime/gmime.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "../../internal-gw/certstore.h"
#include "db.h"
#include "../../internal-gw/keyd.h"
#include "../../internal-gw/smime.h"

static char pki[512], tmp[512], keys[600];
static struct keyd_client *kc;
static pid_t keyd_pid;

static const char plain_msg[] =
    "From: Alice <alice@example.com>\r\n"
    "To: Bob <bob@example.net>\r\n"
    "Subject: hello\r\n"
    "Date: Mon, 1 Jan 2024 10:00:00 +0000\r\n"
    "Message-ID: <1@example.com>\r\n"
    "MIME-Version: 1.0\r\n"
    "Content-Type: text/plain; charset=us-ascii\r\n"
    "\r\n"
    "Hello Bob,\r\nthis is signed.\r\n";

static const char plain_entity[] =
    "Content-Type: text/plain; charset=us-ascii\r\n"
    "\r\n"
    "Hello Bob,\r\nthis is signed.\r\n";

static char *
slurp(const char *path, size_t *lenp)
{
	FILE *f = fopen(path, "rb");
	char *buf;
	long len;

	assert_non_null(f);
	fseek(f, 0, SEEK_END);
	len = ftell(f);
	rewind(f);
	buf = malloc((size_t)len + 1);
	assert_int_equal(fread(buf, 1, (size_t)len, f), (size_t)len);
	buf[len] = '\0';
	fclose(f);
	if (lenp)
		*lenp = (size_t)len;
	return buf;
}

/* A key holder on keys with one channel of each kind, as user. */
static pid_t
spawn_keyd(const char *user, struct keyd_client **c)
{
	struct keyd_client *t;
	struct keyd_conf conf;

	memset(&conf, 0, sizeof(conf));
	conf.keys_dir = keys;
	conf.user = user;
	conf.tunnel_signer = "gateway@relay-to-webmail.private";
	conf.workers = 1;
	return keyd_spawn(&conf, c, &t);
}

/* Runs smime_sign over msg into tmp/name; returns its result. */
static int
sign_to(const char *signer, const char *msg, const char *name, char *err,
    size_t errlen)
{
	char path[700];
	FILE *in, *out;
	int rc;

	snprintf(path, sizeof(path), "%s/%s", tmp, name);
	in = fmemopen((void *)msg, strlen(msg), "r");
	out = fopen(path, "wb");
	assert_non_null(in);
	assert_non_null(out);
	rc = smime_sign(kc, signer, KEYD_PURPOSE_MAIL, "unit-test", in, out,
	    tmp, err, errlen);
	fclose(in);
	fclose(out);
	return rc;
}

static X509 *
load_cert(const char *name)
{
	char path[700];
	X509 *x;
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", pki, name);
	assert_non_null(f = fopen(path, "r"));
	x = PEM_read_X509(f, NULL, NULL, NULL);
	fclose(f);
	assert_non_null(x);
	return x;
}

static int
encrypt_file(const char *inname, const char *outname, const char *certname)
{
	char ip[700], op[700], err[256];
	X509 *x = load_cert(certname);
	FILE *in, *out;
	int rc;

	snprintf(ip, sizeof(ip), "%s/%s", tmp, inname);
	snprintf(op, sizeof(op), "%s/%s", tmp, outname);
	assert_non_null(in = fopen(ip, "rb"));
	assert_non_null(out = fopen(op, "wb"));
	rc = smime_encrypt(&x, 1, in, out, tmp, err, sizeof(err));
	fclose(in);
	fclose(out);
	X509_free(x);
	return rc;
}

static int
setup(void **state)
{
	const char *p = getenv("POSTERN_PKI");
	char *err = NULL;
	struct db *db;

	(void)state;
	snprintf(pki, sizeof(pki), "%s", p ? p : "build/pki");
	if (run("sh tests/pki/mkpki.sh %s", pki) != 0)
		return -1;
	snprintf(tmp, sizeof(tmp), "/tmp/postern-smime-XXXXXX");
	if (mkdtemp(tmp) == NULL)
		return -1;
	snprintf(keys, sizeof(keys), "%s/keys", tmp);

	/* Keys arrive the way the CLI imports them: PKCS#12 and PEM. */
	if (run("cat %s/carol.key %s/carol-chain.pem > %s/carol-import.pem",
	    pki, pki, tmp) != 0)
		return -1;
	{
		char dbp[700], src[700];

		snprintf(dbp, sizeof(dbp), "%s/gw.db", tmp);
		if ((db = db_open(dbp, &err)) == NULL ||
		    certstore_init(db, &err) == -1)
			return -1;
		snprintf(src, sizeof(src), "%s/alice.p12", pki);
		if (certstore_import(db, keys, src, "secret", &err) < 1)
			return -1;
		snprintf(src, sizeof(src), "%s/carol-import.pem", tmp);
		if (certstore_import(db, keys, src, NULL, &err) < 1)
			return -1;
		db_close(db);
	}
	if ((keyd_pid = spawn_keyd(NULL, &kc)) == -1)
		return -1;
	g_mime_init();
	return 0;
}

static int
teardown(void **state)
{
	int st;

	(void)state;
	keyd_client_free(&kc);
	waitpid(keyd_pid, &st, 0);
	if (getenv("KEEP_TMP") == NULL)
		run("rm -rf %s", tmp);
	return 0;
}

/* The output is multipart/signed with the documented parameters. */
static void
check_multipart_signed(const char *path)
{
	GMimeStream *s;
	GMimeParser *p;
	GMimeMessage *m;
	GMimeObject *part;
	GMimeContentType *ct;
	FILE *f;

	assert_non_null(f = fopen(path, "rb"));
	s = g_mime_stream_file_new(f);
	p = g_mime_parser_new_with_stream(s);
	m = g_mime_parser_construct_message(p, NULL);
	assert_non_null(m);
	part = g_mime_message_get_mime_part(m);
	assert_true(GMIME_IS_MULTIPART_SIGNED(part));
	ct = g_mime_object_get_content_type(part);
	assert_string_equal(g_mime_content_type_get_parameter(ct, "protocol"),
	    "application/pkcs7-signature");
	assert_string_equal(g_mime_content_type_get_parameter(ct, "micalg"),
	    "sha-256");
	assert_int_equal(g_mime_multipart_get_count(GMIME_MULTIPART(part)), 2);
	assert_string_equal(g_mime_message_get_subject(m), "hello");
	g_object_unref(m);
	g_object_unref(p);
	g_object_unref(s);
}

static void
check_verifies(const char *name, const char *signer_crt,
    const char *expect_entity)
{
	char path[700], content[700], *got;
	size_t len;

	snprintf(path, sizeof(path), "%s/%s", tmp, name);
	snprintf(content, sizeof(content), "%s/%s.content", tmp, name);
	assert_int_equal(run("openssl cms -verify -in %s -CAfile %s/ca-bundle.pem"
	    " -out %s -signer %s/%s.signer 2>/dev/null", path, pki, content,
	    tmp, name), 0);
	/* The signature was made by the expected certificate. */
	assert_int_equal(run("cmp -s %s/%s.signer %s/%s", tmp, name, pki,
	    signer_crt), 0);
	if (expect_entity != NULL) {
		got = slurp(content, &len);
		assert_int_equal(len, strlen(expect_entity));
		assert_memory_equal(got, expect_entity, len);
		free(got);
	}
}

static void
test_sign_rsa(void **state)
{
	char err[256], path[700], *out;

	(void)state;
	assert_int_equal(sign_to("alice@example.com", plain_msg, "rsa.eml",
	    err, sizeof(err)), 0);
	snprintf(path, sizeof(path), "%s/rsa.eml", tmp);
	check_multipart_signed(path);
	check_verifies("rsa.eml", "alice.crt", plain_entity);
	/* Outer fields stay, content fields move inside. */
	out = slurp(path, NULL);
	assert_non_null(strstr(out, "\r\nMessage-ID: <1@example.com>\r\n"));
	assert_memory_equal(out, "From: Alice <alice@example.com>\r\n", 33);
	assert_non_null(strstr(out, "smime.p7s"));
	free(out);
	/* A tampered entity no longer verifies. */
	assert_int_equal(run("sed -i 's/this is signed/this is forged/' %s",
	    path), 0);
	assert_int_not_equal(run("openssl cms -verify -in %s -CAfile "
	    "%s/ca-bundle.pem -out /dev/null 2>/dev/null", path, pki), 0);
}

static void
test_sign_ecdsa(void **state)
{
	char err[256], path[700];

	(void)state;
	assert_int_equal(sign_to("Carol@Example.com", plain_msg, "ec.eml",
	    err, sizeof(err)), 0);
	snprintf(path, sizeof(path), "%s/ec.eml", tmp);
	check_multipart_signed(path);
	check_verifies("ec.eml", "carol.crt", plain_entity);
	/* SHA-256 and an ECDSA signature. */
	assert_int_equal(run("openssl cms -cmsout -print -in %s 2>/dev/null |"
	    " grep -q 'ecdsa-with-SHA256'", path), 0);
	assert_int_equal(run("openssl cms -cmsout -print -in %s 2>/dev/null |"
	    " grep -q 'algorithm: sha256'", path), 0);
}

static void
test_sign_unknown_signer(void **state)
{
	char err[256] = "";

	(void)state;
	assert_int_equal(sign_to("mallory@example.com", plain_msg, "no.eml",
	    err, sizeof(err)), -1);
	assert_non_null(strstr(err, "no signing key"));
}

static void
test_sign_8bit(void **state)
{
	static const char msg[] =
	    "From: alice@example.com\r\nTo: bob@example.net\r\n"
	    "Subject: hello\r\nMIME-Version: 1.0\r\n"
	    "Content-Type: text/plain; charset=utf-8\r\n"
	    "Content-Transfer-Encoding: 8bit\r\n\r\n"
	    "Gr\xc3\xbc\xc3\x9f" "e aus K\xc3\xb6ln, a line of mostly ASCII text\r\n"
	    "and a second line.\r\n";
	char err[256], path[700], *out, *content;
	size_t len, i;

	(void)state;
	assert_int_equal(sign_to("alice@example.com", msg, "8bit.eml", err,
	    sizeof(err)), 0);
	snprintf(path, sizeof(path), "%s/8bit.eml", tmp);
	out = slurp(path, &len);
	for (i = 0; i < len; i++)
		assert_true((unsigned char)out[i] < 0x80);
	free(out);
	check_multipart_signed(path);
	check_verifies("8bit.eml", "alice.crt", NULL);
	snprintf(path, sizeof(path), "%s/8bit.eml.content", tmp);
	content = slurp(path, NULL);
	assert_non_null(strstr(content, "Content-Transfer-Encoding: "
	    "quoted-printable\r\n"));
	assert_non_null(strstr(content, "Gr=C3=BC=C3=9Fe aus K=C3=B6ln"));
	free(content);
}

/* Mostly 8-bit text goes base64 and decodes back to the CRLF original. */
static void
test_sign_8bit_base64(void **state)
{
	static const char msg[] =
	    "From: alice@example.com\r\nTo: bob@example.net\r\n"
	    "Subject: hello\r\nMIME-Version: 1.0\r\n"
	    "Content-Type: text/plain; charset=utf-8\r\n"
	    "Content-Transfer-Encoding: 8bit\r\n\r\n"
	    "\xc3\xa4\xc3\xb6\xc3\xbc\xc3\x9f\r\n\xc3\xa4\r\n";
	static const char text[] =
	    "\xc3\xa4\xc3\xb6\xc3\xbc\xc3\x9f\r\n\xc3\xa4\r\n";
	char err[256], path[700], *content, *b64;
	unsigned char dec[256];
	int n;

	(void)state;
	assert_int_equal(sign_to("alice@example.com", msg, "b64.eml", err,
	    sizeof(err)), 0);
	snprintf(path, sizeof(path), "%s/b64.eml", tmp);
	check_multipart_signed(path);
	check_verifies("b64.eml", "alice.crt", NULL);
	snprintf(path, sizeof(path), "%s/b64.eml.content", tmp);
	content = slurp(path, NULL);
	assert_non_null(strstr(content, "Content-Transfer-Encoding: base64"
	    "\r\n"));
	assert_non_null(b64 = strstr(content, "\r\n\r\n"));
	b64 += 4;
	b64[strcspn(b64, "\r\n")] = '\0';
	n = EVP_DecodeBlock(dec, (unsigned char *)b64, (int)strlen(b64));
	assert_true(n >= (int)strlen(text));
	assert_memory_equal(dec, text, strlen(text));
	free(content);
}

/*
 * The 7-bit scan and the CRLF reading, line by line: a line of 998
 * characters stays as it is, one of 999 makes the entity re-encoded, and
 * bare LF line ends are signed as CRLF.
 */
static void
sign_line(size_t linelen, const char *eol, int reencoded)
{
	char err[256], path[700], *msg, *line, *content;

	line = malloc(linelen + 1);
	assert_non_null(line);
	memset(line, 'x', linelen);
	line[linelen] = '\0';
	assert_true(asprintf(&msg, "From: alice@example.com%sTo: "
	    "bob@example.net%sSubject: hello%s%sfirst%s%s%slast%s", eol, eol,
	    eol, eol, eol, line, eol, eol) > 0);
	assert_int_equal(sign_to("alice@example.com", msg, "line.eml", err,
	    sizeof(err)), 0);
	snprintf(path, sizeof(path), "%s/line.eml", tmp);
	check_multipart_signed(path);
	check_verifies("line.eml", "alice.crt", NULL);
	snprintf(path, sizeof(path), "%s/line.eml.content", tmp);
	content = slurp(path, NULL);
	assert_true((strstr(content, "Content-Transfer-Encoding:") != NULL) ==
	    reencoded);
	if (!reencoded) {
		assert_non_null(strstr(content, line));
		assert_non_null(strstr(content, "\r\nfirst\r\n"));
		for (char *p = strchr(content, '\n'); p != NULL;
		    p = strchr(p + 1, '\n'))
			assert_true(p > content && p[-1] == '\r');
	}
	free(content);
	free(msg);
	free(line);
}

static void
test_sign_line_lengths_and_bare_lf(void **state)
{
	(void)state;
	sign_line(998, "\r\n", 0);
	sign_line(999, "\r\n", 1);
	sign_line(70000, "\r\n", 1);	/* longer than a read chunk */
	sign_line(998, "\n", 0);
	sign_line(999, "\n", 1);
}

static void
test_encrypt(void **state)
{
	char src[700], dec[700], *got;
	size_t len;
	FILE *f;

	(void)state;
	snprintf(src, sizeof(src), "%s/plain.eml", tmp);
	assert_non_null(f = fopen(src, "wb"));
	fputs(plain_msg, f);
	fclose(f);
	assert_int_equal(encrypt_file("plain.eml", "enc.eml", "bob.crt"), 0);
	got = slurp(strcat(strcpy(dec, tmp), "/enc.eml"), NULL);
	assert_non_null(strstr(got, "Content-Type: application/pkcs7-mime;"
	    " smime-type=enveloped-data;"));
	assert_null(strstr(got, "Hello Bob"));
	assert_non_null(strstr(got, "Subject: hello\r\n"));
	free(got);
	assert_int_equal(run("openssl cms -cmsout -print -in %s/enc.eml |"
	    " grep -q aes-256-cbc", tmp), 0);
	snprintf(dec, sizeof(dec), "%s/enc.dec", tmp);
	assert_int_equal(run("openssl cms -decrypt -in %s/enc.eml -inkey "
	    "%s/bob.key -recip %s/bob.crt -out %s 2>/dev/null", tmp, pki, pki,
	    dec), 0);
	got = slurp(dec, &len);
	assert_int_equal(len, strlen(plain_entity));
	assert_memory_equal(got, plain_entity, len);
	free(got);
	/* Another recipient's key does not open it. */
	assert_int_not_equal(run("openssl cms -decrypt -in %s/enc.eml -inkey "
	    "%s/carol.key -out /dev/null 2>/dev/null", tmp, pki), 0);
}

static void
test_sign_then_encrypt(void **state)
{
	char err[256];

	(void)state;
	assert_int_equal(sign_to("alice@example.com", plain_msg, "s.eml", err,
	    sizeof(err)), 0);
	assert_int_equal(encrypt_file("s.eml", "se.eml", "bob.crt"), 0);
	assert_int_equal(run("openssl cms -decrypt -in %s/se.eml -inkey "
	    "%s/bob.key -recip %s/bob.crt -out %s/se.dec 2>/dev/null", tmp, pki,
	    pki, tmp), 0);
	/* The decrypted entity is the multipart/signed, still valid. */
	assert_int_equal(run("openssl cms -verify -in %s/se.dec -CAfile "
	    "%s/ca-bundle.pem -out %s/se.content 2>/dev/null", tmp, pki, tmp),
	    0);
	assert_int_equal(run("grep -q 'this is signed' %s/se.content", tmp), 0);
}

static int
proc_field(pid_t pid, const char *field, char *out, size_t outlen)
{
	char path[64], line[256];
	FILE *f;
	int found = 0;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	if ((f = fopen(path, "r")) == NULL)
		return -1;
	while (fgets(line, sizeof(line), f) != NULL)
		if (strncmp(line, field, strlen(field)) == 0) {
			snprintf(out, outlen, "%s", line + strlen(field));
			found = 1;
			break;
		}
	fclose(f);
	return found ? 0 : -1;
}

/*
 * The keys live in another process which holds nothing but its sockets
 * (one signing and one decryption channel).
 */
static void
test_keyd_is_separate(void **state)
{
	char path[64], val[128];
	struct dirent *de;
	DIR *d;
	int nfd = 0, n;
	char **signers;

	(void)state;
	assert_true(keyd_pid > 0);
	assert_int_not_equal(keyd_pid, getpid());
	/* An answer means the key holder finished loading (and closing). */
	n = keyd_signers(kc, &signers);
	assert_int_equal(n, 2);
	assert_int_equal(keyd_can_sign(kc, "alice@example.com"), 1);
	assert_int_equal(keyd_can_sign(kc, "carol@example.com"), 1);
	assert_int_equal(keyd_can_sign(kc, "bob@example.net"), 0);
	keyd_signers_free(&signers);
	snprintf(path, sizeof(path), "/proc/%d/fd", (int)keyd_pid);
	assert_non_null(d = opendir(path));
	while ((de = readdir(d)) != NULL)
		if (de->d_name[0] != '.') {
			assert_true(atoi(de->d_name) <= 4);
			nfd++;
		}
	closedir(d);
	assert_int_equal(nfd, 5);
	assert_int_equal(proc_field(keyd_pid, "NoNewPrivs:", val,
	    sizeof(val)), 0);
	assert_int_equal(atoi(val), 1);

}

/*
 * Signing happens only in the key holder: this process never loaded a key,
 * so once the key holder is gone nothing here can sign.
 */
static void
test_sign_needs_keyd(void **state)
{
	struct keyd_client *c;
	unsigned char *der, md[KEYD_DIGEST_LEN] = { 0 };
	size_t derlen;
	char err[256];
	pid_t pid;
	int st;

	(void)state;
	assert_true((pid = spawn_keyd(NULL, &c)) > 0);
	assert_int_equal(keyd_sign_digest(c, "alice@example.com",
	    KEYD_PURPOSE_MAIL, "unit-test", md, &der, &derlen, err,
	    sizeof(err)), 0);
	assert_true(derlen > 100);
	free(der);
	assert_int_equal(kill(pid, SIGKILL), 0);
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_int_equal(keyd_sign_digest(c, "alice@example.com",
	    KEYD_PURPOSE_MAIL, "unit-test", md, &der, &derlen, err,
	    sizeof(err)), -1);
	assert_string_equal(err, "key holder unavailable");
	assert_int_equal(keyd_can_sign(c, "alice@example.com"), -1);
	keyd_client_free(&c);
}

/* As root the key holder drops to the given user after loading keys. */
static void
test_keyd_drops_privileges(void **state)
{
	struct keyd_client *c;
	struct passwd *pw;
	char val[128], uid[32];
	pid_t pid;
	int st;

	(void)state;
	if (geteuid() != 0 || (pw = getpwnam("nobody")) == NULL)
		skip();
	assert_true((pid = spawn_keyd("nobody", &c)) > 0);
	/* The first answer means setup, the drop included, is over. */
	assert_int_equal(keyd_can_sign(c, "alice@example.com"), 1);
	assert_int_equal(proc_field(pid, "Uid:", val, sizeof(val)), 0);
	snprintf(uid, sizeof(uid), "%u", (unsigned)pw->pw_uid);
	assert_int_equal(strtoul(val, NULL, 10), pw->pw_uid);
	assert_int_equal(proc_field(pid, "Groups:", val, sizeof(val)), 0);
	assert_int_equal(strtoul(val, NULL, 10), pw->pw_gid);
	keyd_client_free(&c);
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

/* RELOAD picks up keys added after start and drops removed ones. */
static void
test_keyd_reload(void **state)
{
	struct keyd_client *c;
	char src[700], *err = NULL, dbp[700];
	struct db *db;
	pid_t pid;
	int st;

	(void)state;
	assert_true((pid = spawn_keyd(NULL, &c)) > 0);
	assert_int_equal(keyd_can_sign(c, "gateway@relay-to-webmail.private"),
	    0);
	assert_int_equal(run("cat %s/gateway.key %s/gateway-chain.pem >"
	    " %s/gw-import.pem", pki, pki, tmp), 0);
	snprintf(dbp, sizeof(dbp), "%s/gw.db", tmp);
	assert_non_null(db = db_open(dbp, &err));
	snprintf(src, sizeof(src), "%s/gw-import.pem", tmp);
	assert_true(certstore_import(db, keys, src, NULL, &err) >= 1);
	assert_int_equal(keyd_reload(c), 3);
	assert_int_equal(keyd_can_sign(c, "gateway@relay-to-webmail.private"),
	    1);
	assert_int_equal(certstore_remove(db, keys,
	    "gateway@relay-to-webmail.private", &err), 1);
	assert_int_equal(keyd_reload(c), 2);
	assert_int_equal(keyd_can_sign(c, "gateway@relay-to-webmail.private"),
	    0);
	db_close(db);
	keyd_client_free(&c);
	waitpid(pid, &st, 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_keyd_is_separate),
		cmocka_unit_test(test_sign_rsa),
		cmocka_unit_test(test_sign_ecdsa),
		cmocka_unit_test(test_sign_unknown_signer),
		cmocka_unit_test(test_sign_8bit),
		cmocka_unit_test(test_sign_8bit_base64),
		cmocka_unit_test(test_sign_line_lengths_and_bare_lf),
		cmocka_unit_test(test_encrypt),
		cmocka_unit_test(test_sign_then_encrypt),
		cmocka_unit_test(test_sign_needs_keyd),
		cmocka_unit_test(test_keyd_drops_privileges),
		cmocka_unit_test(test_keyd_reload),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
