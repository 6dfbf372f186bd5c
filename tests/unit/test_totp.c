/*
 * TOTP (RFC 4226 and RFC 6238 vectors, the oathtool CLI as a second implementation,
 * one use per step), recovery codes, and the enrolment QR code as SVG.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include <gumbo.h>

#include "corpora.h"
#include "web/web_qr.h"
#include "web/web_totp.h"

/*
 * RFC 6238 Appendix B, the SHA-1 rows (the portal's only algorithm), seed
 * "12345678901234567890" in base32. The RFC prints 8 digits; the 6-digit
 * code is the same truncated value modulo 10^6, so its last six digits.
 */
#define RFC_SEED	"GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"
static const struct {
	time_t		 t;
	const char	*code8;
} rfc[] = {
	{ 59, "94287082" },
	{ 1111111109, "07081804" },
	{ 1111111111, "14050471" },
	{ 1234567890, "89005924" },
	{ 2000000000, "69279037" },
	{ 20000000000LL, "65353130" },
};

/*
 * RFC 4226 Appendix D: HOTP of the same secret for counters 0 to 9. TOTP
 * is HOTP of the step number, so counter c is the code at time 30 * c.
 */
static const char *const rfc4226[] = { "755224", "287082", "359152",
    "969429", "338314", "254676", "287922", "162583", "399871", "520489" };

static void
test_rfc4226(void **state)
{
	char	 code[WEB_TOTP_DIGITS + 1];

	(void)state;
	for (size_t c = 0; c < sizeof(rfc4226) / sizeof(rfc4226[0]); c++) {
		assert_int_equal(web_totp_code(RFC_SEED,
		    (time_t)(c * WEB_TOTP_STEP), code), 0);
		assert_string_equal(code, rfc4226[c]);
	}
}

static void
test_rfc6238(void **state)
{
	char	 code[WEB_TOTP_DIGITS + 1];
	int64_t	 step;

	(void)state;
	for (size_t i = 0; i < sizeof(rfc) / sizeof(rfc[0]); i++) {
		const char *want = rfc[i].code8 + 2;

		assert_int_equal(web_totp_code(RFC_SEED, rfc[i].t, code), 0);
		assert_string_equal(code, want);
		assert_int_equal(web_totp_verify(RFC_SEED, want, rfc[i].t, -1,
		    &step), 1);
		assert_int_equal(step, rfc[i].t / 30);
	}
}

/* The SHA-1 rows of the third-party corpus file (see corpora.h). */
static void
test_rfc6238_corpus(void **state)
{
	char		 path[512], buf[16384], b32[128], want[16], code[8];
	const char	*p, *q;
	long long	 t;
	size_t		 n;
	int		 rows = 0;
	FILE		*f;

	(void)state;
	snprintf(path, sizeof(path), "%s/totp-hotp/rfc6238-totp-vectors.json",
	    corpora_dir());
	if ((f = fopen(path, "r")) == NULL)
		corpora_missing(path);
	n = fread(buf, 1, sizeof(buf) - 1, f);
	buf[n] = '\0';
	fclose(f);
	for (p = buf; (p = strstr(p, "\"unix_time\":")) != NULL; p++) {
		t = strtoll(p + 12, NULL, 10);
		q = strstr(p, "\"mode\":");
		if (q == NULL || strncmp(q, "\"mode\": \"SHA1\"", 14) != 0)
			continue;
		if ((q = strstr(p, "\"seed_base32\": \"")) == NULL ||
		    sscanf(q + 16, "%127[A-Z2-7]", b32) != 1)
			continue;
		if ((q = strstr(p, "\"totp_6digit_truncation\": \"")) == NULL ||
		    sscanf(q + 27, "%6[0-9]", want) != 1)
			continue;
		assert_int_equal(web_totp_code(b32, (time_t)t, code), 0);
		assert_string_equal(code, want);
		rows++;
	}
	assert_true(rows >= 6);
}

/* Codes from oathtool, the independent implementation. */
static void
test_oathtool(void **state)
{
	char	*secret, cmd[256], line[32], mine[WEB_TOTP_DIGITS + 1];
	time_t	 times[] = { 30, 1000000007, 1700000000, 1900000123 };
	int64_t	 step;
	FILE	*p;

	(void)state;
	if (access("/usr/bin/oathtool", X_OK) != 0) {
		if (corpora_required())
			fail_msg("/usr/bin/oathtool missing and CI=true");
		print_message("SKIPPED: /usr/bin/oathtool missing (make deps)\n");
		skip();
	}
	secret = web_totp_secret_new();
	for (size_t i = 0; i < sizeof(times) / sizeof(times[0]); i++) {
		snprintf(cmd, sizeof(cmd), "/usr/bin/oathtool --totp -b %s "
		    "-N @%lld", secret, (long long)times[i]);
		assert_non_null(p = popen(cmd, "r"));
		assert_non_null(fgets(line, sizeof(line), p));
		assert_int_equal(pclose(p), 0);
		line[strcspn(line, "\n")] = '\0';
		assert_int_equal(web_totp_code(secret, times[i], mine), 0);
		assert_string_equal(mine, line);
		assert_int_equal(web_totp_verify(secret, line, times[i], -1,
		    &step), 1);
	}
	free(secret);
}

static void
test_verify_window_and_replay(void **state)
{
	char	 prev[8], cur[8], next[8], far[8];
	time_t	 now = 1700000015;	/* step 56666667 */
	int64_t	 step, s0 = now / 30;

	(void)state;
	web_totp_code(RFC_SEED, now - 30, prev);
	web_totp_code(RFC_SEED, now, cur);
	web_totp_code(RFC_SEED, now + 30, next);
	web_totp_code(RFC_SEED, now + 90, far);
	assert_int_equal(web_totp_verify(RFC_SEED, prev, now, -1, &step), 1);
	assert_int_equal(step, s0 - 1);
	assert_int_equal(web_totp_verify(RFC_SEED, next, now, -1, &step), 1);
	assert_int_equal(step, s0 + 1);
	assert_int_equal(web_totp_verify(RFC_SEED, far, now, -1, &step), 0);
	/* Spaces are fine, anything else is not. */
	char spaced[16];
	snprintf(spaced, sizeof(spaced), "%.3s %.3s", cur, cur + 3);
	assert_int_equal(web_totp_verify(RFC_SEED, spaced, now, -1, &step), 1);
	assert_int_equal(web_totp_verify(RFC_SEED, "12345", now, -1, &step), 0);
	assert_int_equal(web_totp_verify(RFC_SEED, "1234567", now, -1, &step),
	    0);
	assert_int_equal(web_totp_verify(RFC_SEED, "12a456", now, -1, &step),
	    0);
	/* Used once at step s0: the same code, or an older one, is refused. */
	assert_int_equal(web_totp_verify(RFC_SEED, cur, now, -1, &step), 1);
	assert_int_equal(web_totp_verify(RFC_SEED, cur, now, step, &step), 0);
	assert_int_equal(web_totp_verify(RFC_SEED, prev, now, s0, &step), 0);
	assert_int_equal(web_totp_verify(RFC_SEED, next, now, s0, &step), 1);
	/* A broken stored secret is an error, not a mismatch. */
	assert_int_equal(web_totp_verify("!!not base32!!", cur, now, -1,
	    &step), -1);
}

static void
test_secret_and_uri(void **state)
{
	char	*a, *b, *uri;

	(void)state;
	a = web_totp_secret_new();
	b = web_totp_secret_new();
	assert_int_equal(strlen(a), WEB_TOTP_SECRET_B32);
	assert_int_equal(strspn(a, "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"),
	    WEB_TOTP_SECRET_B32);
	assert_string_not_equal(a, b);
	uri = web_totp_uri("Example Corp", "bob+x@example.com", a);
	assert_int_equal(strncmp(uri, "otpauth://totp/Example%20Corp:"
	    "bob%2Bx@example.com?secret=", 56), 0);
	assert_non_null(strstr(uri, "&issuer=Example%20Corp&algorithm=SHA1"
	    "&digits=6&period=30"));
	free(uri);
	uri = web_totp_uri("A&B", "x\"<y>@example.com", a);
	assert_null(strpbrk(uri, "\"<> "));
	assert_non_null(strstr(uri, "A%26B:x%22%3Cy%3E@example.com"));
	free(uri);
	free(a);
	free(b);
}

static void
test_recovery(void **state)
{
	char		 codes[WEB_TOTP_RECOVERY_COUNT][WEB_TOTP_RECOVERY_LEN + 1];
	char		 hashes[WEB_TOTP_RECOVERY_COUNT][WEB_TOTP_HASH_HEX + 1];
	const char	*stored[WEB_TOTP_RECOVERY_COUNT];
	char		 typed[32];

	(void)state;
	web_totp_recovery_new(codes, hashes, WEB_TOTP_RECOVERY_COUNT);
	for (int i = 0; i < WEB_TOTP_RECOVERY_COUNT; i++) {
		assert_int_equal(strlen(codes[i]), WEB_TOTP_RECOVERY_LEN);
		assert_int_equal(strspn(codes[i], "23456789ABCDEFGHJKMNPQRSTUV"
		    "WXYZ"), WEB_TOTP_RECOVERY_LEN);
		assert_int_equal(strlen(hashes[i]), WEB_TOTP_HASH_HEX);
		/* Only the hash is stored, never the code. */
		assert_null(strstr(hashes[i], codes[i]));
		stored[i] = hashes[i];
		for (int k = 0; k < i; k++)
			assert_string_not_equal(codes[i], codes[k]);
	}
	/* Typed in lower case with a dash and a space: still matches. */
	snprintf(typed, sizeof(typed), "%.5s- %.5s", codes[3], codes[3] + 5);
	for (char *p = typed; *p; p++)
		*p = (char)(*p >= 'A' && *p <= 'Z' ? *p + 32 : *p);
	assert_int_equal(web_totp_recovery_match(typed, stored,
	    WEB_TOTP_RECOVERY_COUNT), 3);
	/* Used up: the caller clears the entry. */
	stored[3] = NULL;
	assert_int_equal(web_totp_recovery_match(codes[3], stored,
	    WEB_TOTP_RECOVERY_COUNT), -1);
	assert_int_equal(web_totp_recovery_match("", stored,
	    WEB_TOTP_RECOVERY_COUNT), -1);
	/* The SHA-256 of "ABCDE23456", as sha256sum prints it. */
	web_totp_recovery_hash("abcde-23456", hashes[0]);
	assert_string_equal(hashes[0], "82a15347a056ccbf451fbd1c865eed21"
	    "ec190069eedd32b0c9dc6452887811cc");
}

static void
test_qr_svg(void **state)
{
	const char	*uri = "otpauth://totp/Example:bob@example.com?secret="
	    "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=Example";
	GumboOutput	*g;
	const GumboNode	*body, *svg;
	char		*s, vb[64];
	int		 version, dim;

	(void)state;
	s = web_qr_svg(uri, 200, &version);
	assert_non_null(s);
	assert_true(version >= 1 && version <= 40);
	dim = 17 + 4 * version + 8;
	snprintf(vb, sizeof(vb), "viewBox=\"0 0 %d %d\"", dim, dim);
	assert_non_null(strstr(s, vb));
	/* Well-formed and nothing but svg, rect and path. */
	g = gumbo_parse(s);
	body = g->root->v.element.children.data[1];
	assert_int_equal(body->v.element.children.length, 1);
	svg = body->v.element.children.data[0];
	assert_int_equal(svg->v.element.tag_namespace, GUMBO_NAMESPACE_SVG);
	assert_int_equal(svg->v.element.children.length, 2);
	gumbo_destroy_output(&kGumboDefaultOptions, g);
	assert_null(strstr(s, "script"));
	assert_null(strstr(s, "bob"));
	/* The three finder patterns: their corners are dark modules. */
	assert_non_null(strstr(s, "M4 4h1v1h-1z"));
	snprintf(vb, sizeof(vb), "M%d 4h1v1h-1z", dim - 5);
	assert_non_null(strstr(s, vb));
	snprintf(vb, sizeof(vb), "M4 %dh1v1h-1z", dim - 5);
	assert_non_null(strstr(s, vb));
	free(s);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rfc4226),
		cmocka_unit_test(test_rfc6238),
		cmocka_unit_test(test_rfc6238_corpus),
		cmocka_unit_test(test_oathtool),
		cmocka_unit_test(test_verify_window_and_replay),
		cmocka_unit_test(test_secret_and_uri),
		cmocka_unit_test(test_recovery),
		cmocka_unit_test(test_qr_svg),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
