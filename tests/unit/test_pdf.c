/*
 * The PDF password generator (shared/pdfpass.c) and the PDF builder
 * (shared/pdf*.c), checked with qpdf and poppler's command line tools:
 * encryption (R6, password required, print yes, modify no), the body and
 * each charset fixture's text through pdftotext, the attachments through
 * pdfdetach, nothing without the password.
 */
#include <fcntl.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include <gmime/gmime.h>

#include "buf.h"
#include "pdf.h"
#include "pdfpass.h"
#include "unit_util.h"

#define FIXTURES	"tests/fixtures/pdf"
#define PW		"k7mn-not-the-real-one"

static char tmpdir[] = "/tmp/postern-test-pdf.XXXXXX";

const char *__lsan_default_suppressions(void);

/*
 * fontconfig and cairo keep their font caches for the life of the
 * process (loaded once, on the first PDF): not leaks of the builder.
 */
const char *
__lsan_default_suppressions(void)
{
	return "leak:libfontconfig.so\nleak:libcairo.so\n";
}

/* --- the password generator ----------------------------------------------- */

static void
test_pass_alphabet_length(void **state)
{
	char pw[64];

	(void)state;
	for (int i = 0; i < 200; i++) {
		assert_int_equal(pdfpass_generate(pw, sizeof(pw), PDFPASS_LEN),
		    0);
		assert_int_equal(strlen(pw), PDFPASS_LEN);
		assert_int_equal(strspn(pw, PDFPASS_ALPHABET), PDFPASS_LEN);
	}
	/* No look-alikes in the alphabet itself. */
	assert_null(strpbrk(PDFPASS_ALPHABET, "0O1lIi|o"));
	/* At least 16 characters, and room for the NUL. */
	assert_int_equal(pdfpass_generate(pw, sizeof(pw), 15), -1);
	assert_int_equal(pdfpass_generate(pw, 16, 16), -1);
	assert_int_equal(pdfpass_generate(pw, 17, 16), 0);
	assert_true(PDFPASS_LEN >= 16);
}

static void
test_pass_entropy(void **state)
{
	enum { N = 4000 };
	const size_t k = sizeof(PDFPASS_ALPHABET) - 1;
	int count[256] = { 0 };
	char pw[PDFPASS_LEN + 1], first[PDFPASS_LEN + 1];
	double chi = 0, expect = (double)N * PDFPASS_LEN / k;

	(void)state;
	assert_true(pdfpass_bits(PDFPASS_LEN) >= 96.0);
	assert_int_equal(pdfpass_generate(first, sizeof(first), PDFPASS_LEN),
	    0);
	for (int i = 0; i < N; i++) {
		assert_int_equal(pdfpass_generate(pw, sizeof(pw), PDFPASS_LEN),
		    0);
		assert_string_not_equal(pw, first);
		for (size_t j = 0; j < PDFPASS_LEN; j++)
			count[(unsigned char)pw[j]]++;
	}
	/* Every character is used about equally: chi-squared over 30
	 * degrees of freedom stays far below 80 (p < 1e-5) for a uniform
	 * source, and a bias of one character would blow it up. */
	for (size_t i = 0; i < k; i++) {
		double d = count[(unsigned char)PDFPASS_ALPHABET[i]] - expect;

		chi += d * d / expect;
	}
	assert_true(chi < 80.0);
}

static void
test_pass_group(void **state)
{
	char out[PDFPASS_SHOWN_MAX];

	(void)state;
	pdfpass_group("abcdefghjkmnpqrstuvw", ' ', out, sizeof(out));
	assert_string_equal(out, "abcd efgh jkmn pqrs tuvw");
	pdfpass_group("abcdefghjkmnpqrstuvw", '-', out, 10);
	assert_string_equal(out, "abcd-efgh");
}

/* --- the builder ---------------------------------------------------------- */

static int
setup(void **state)
{
	(void)state;
	g_mime_init();
	assert_non_null(mkdtemp(tmpdir));
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	run("rm -rf %s", tmpdir);
	return 0;
}

static void
build(const char *msg, const char *out, const char *reply,
    struct pdf_info *info)
{
	struct pdf_opts o;
	char err[256];
	int fd;

	memset(&o, 0, sizeof(o));
	o.password = PW;
	o.reply_url = reply;
	assert_int_not_equal(fd = open(msg, O_RDONLY), -1);
	if (pdf_build(fd, &o, out, info, err, sizeof(err)) != 0)
		fail_msg("pdf_build %s: %s", msg, err);
	close(fd);
}

static char *
slurp(const char *path)
{
	struct buf b;
	char chunk[4096];
	size_t n;
	FILE *f = fopen(path, "r");

	assert_non_null(f);
	buf_init(&b, 0);
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		assert_int_equal(buf_put(&b, chunk, n), 0);
	fclose(f);
	return buf_finish(&b);
}

/*
 * Text without spaces and bidi controls: pdftotext splits right-to-left
 * runs into visual segments with embedding marks, so words are compared
 * without them.
 */
static void
squash(char *s)
{
	static const char *const drop[] = {
		"\xe2\x80\x8e", "\xe2\x80\x8f", "\xe2\x80\xaa", "\xe2\x80\xab",
		"\xe2\x80\xac", "\xe2\x80\xad", "\xe2\x80\xae", "\xe2\x81\xa6",
		"\xe2\x81\xa7", "\xe2\x81\xa8", "\xe2\x81\xa9",
	};
	char *o = s;

	while (*s != '\0') {
		size_t skip = 0;

		if (*s == ' ' || *s == '\n' || *s == '\t' || *s == '\f')
			skip = 1;
		for (size_t i = 0; i < sizeof(drop) / sizeof(drop[0]); i++)
			if (strncmp(s, drop[i], 3) == 0)
				skip = 3;
		if (skip) {
			s += skip;
			continue;
		}
		*o++ = *s++;
	}
	*o = '\0';
}

/* Each word of want is in the squashed text of pdf. */
static void
assert_words(const char *pdf, const char *want)
{
	char *text, *w, *copy = strdup(want), *save = NULL, path[512];

	/* The Arabic comma separates words too (its place moves in RTL). */
	while ((w = strstr(copy, "\xd8\x8c")) != NULL)
		memcpy(w, "  ", 2);
	snprintf(path, sizeof(path), "%s/out.txt", tmpdir);
	assert_int_equal(run("pdftotext -q -upw '%s' %s %s", PW, pdf, path), 0);
	text = slurp(path);
	squash(text);
	for (w = strtok_r(copy, " \n,.、。", &save); w != NULL;
	    w = strtok_r(NULL, " \n,.、。", &save)) {
		char alt[256], *p;

		squash(w);
		if (*w == '\0' || strstr(text, w) != NULL)
			continue;
		/* poppler reads the lam-alef ligature in visual order. */
		snprintf(alt, sizeof(alt), "%s", w);
		while ((p = strstr(alt, "\xd9\x84\xd8\xa7")) != NULL)
			memcpy(p, "\xd8\xa7\xd9\x84", 4);
		if (strstr(text, alt) == NULL)
			fail_msg("\"%s\" not in the text of %s:\n%s", w, pdf,
			    text);
	}
	free(copy);
	free(text);
}

static void
test_pdf_encrypted(void **state)
{
	char msg[512], out[512];
	struct pdf_info info;

	(void)state;
	snprintf(msg, sizeof(msg), FIXTURES "/latin.eml");
	snprintf(out, sizeof(out), "%s/latin.pdf", tmpdir);
	build(msg, out, NULL, &info);
	assert_int_equal(info.pages, 1);
	/* qpdf: exit 0 when a password is needed. */
	assert_int_equal(run("qpdf --requires-password %s", out), 0);
	assert_int_equal(run("qpdf --password='%s' --show-encryption %s | "
	    "grep -qx 'R = 6'", PW, out), 0);
	assert_int_equal(run("qpdf --password='%s' --show-encryption %s | "
	    "grep -q 'print high resolution: allowed'", PW, out), 0);
	assert_int_equal(run("qpdf --password='%s' --show-encryption %s | "
	    "grep -q 'modify other: not allowed'", PW, out), 0);
	assert_int_equal(run("qpdf --password='%s' --show-encryption %s | "
	    "grep -q 'stream encryption method: AESv3'", PW, out), 0);
	assert_int_equal(run("head -c 8 %s | grep -q 'PDF-2.0'", out), 0);
	/* Without the password or with another one nothing opens. */
	assert_int_not_equal(run("pdftotext -q %s /dev/null", out), 0);
	assert_int_not_equal(run("pdftotext -q -upw wrong %s /dev/null", out),
	    0);
	assert_int_not_equal(run("pdfdetach -list %s >/dev/null 2>&1", out),
	    0);
	assert_int_not_equal(run("qpdf --check %s >/dev/null 2>&1", out), 0);
	/* The text is not in the file in clear. */
	assert_int_not_equal(run("grep -qa 'Zürich' %s", out), 0);
	assert_int_not_equal(run("grep -qa 'latin fixture' %s", out), 0);
}

static void
test_pdf_charsets(void **state)
{
	static const char *const names[] = {
		"latin", "greek", "cyrillic", "hebrew", "arabic", "cjk",
	};
	char msg[512], out[512], txt[512], *want;

	(void)state;
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		snprintf(msg, sizeof(msg), FIXTURES "/%s.eml", names[i]);
		snprintf(txt, sizeof(txt), FIXTURES "/%s.txt", names[i]);
		snprintf(out, sizeof(out), "%s/%s.pdf", tmpdir, names[i]);
		build(msg, out, NULL, NULL);
		want = slurp(txt);
		assert_words(out, want);
		free(want);
		/* The header block too. */
		assert_words(out, "From Sender sender@example.com fixture");
	}
}

/* A message written for the test: HTML with scripts and links, a text
 * alternative, two attachments, one of them a whole message. */
static void
write_mixed(const char *path)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	fprintf(f, "From: Alice <alice@example.com>\r\n"
	    "To: Bob <bob@outside.example>\r\nCc: carol@outside.example\r\n"
	    "Subject: =?utf-8?q?Figures_=E2=82=AC?=\r\n"
	    "Date: Wed, 03 Jan 2024 12:00:00 +0000\r\n"
	    "MIME-Version: 1.0\r\n"
	    "Content-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n"
	    "--b1\r\nContent-Type: multipart/alternative; boundary=\"b2\"\r\n"
	    "\r\n--b2\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
	    "The plain alternative\r\n"
	    "--b2\r\nContent-Type: text/html; charset=utf-8\r\n\r\n"
	    "<html><head><script>var leaked='scriptbody';</script>"
	    "<style>.x{color:red}</style></head><body>"
	    "<p>Dear <b>Bob</b>, the <i>figures</i> are attached.</p>"
	    "<ul><li>first item</li><li>second item</li></ul>"
	    "<p>See <a href=\"https://example.org/report\">our report</a>"
	    "<img src=\"https://tracker.example/pixel.gif\" alt=\"logo\">"
	    "</p><form><input value=\"formvalue\"></form></body></html>\r\n"
	    "--b2--\r\n"
	    "--b1\r\nContent-Type: text/csv; name=\"figures.csv\"\r\n"
	    "Content-Disposition: attachment; filename=\"figures.csv\"\r\n\r\n"
	    "a,b\r\n1,2\r\n"
	    "--b1\r\nContent-Type: message/rfc822\r\n\r\n"
	    "From: x@example.com\r\nSubject: inner\r\n\r\ninner body\r\n"
	    "--b1--\r\n");
	fclose(f);
}

static void
test_pdf_body_and_attachments(void **state)
{
	char msg[512], out[512], txt[512], *text;
	struct pdf_info info;

	(void)state;
	snprintf(msg, sizeof(msg), "%s/mixed.eml", tmpdir);
	snprintf(out, sizeof(out), "%s/mixed.pdf", tmpdir);
	snprintf(txt, sizeof(txt), "%s/mixed.txt", tmpdir);
	write_mixed(msg);
	build(msg, out, "https://portal.example/compose?reply=7", &info);
	assert_int_equal(info.attachments, 2);
	assert_words(out, "Figures € Alice alice@example.com Bob "
	    "bob@outside.example carol@outside.example 2024 "
	    "Dear Bob the figures are attached first item second item "
	    "our report (https://example.org/report) [image: logo] "
	    "Reply securely https://portal.example/compose?reply=7 "
	    "Attachments figures.csv text/csv message-2.eml");
	assert_int_equal(run("pdftotext -q -upw '%s' %s %s", PW, out, txt), 0);
	text = slurp(txt);
	/* Nothing of the script, the style or the form; the HTML won. */
	assert_null(strstr(text, "scriptbody"));
	assert_null(strstr(text, "color:red"));
	assert_null(strstr(text, "formvalue"));
	assert_null(strstr(text, "plain alternative"));
	free(text);
	assert_int_equal(run("pdfdetach -upw '%s' -list %s | grep -q "
	    "'figures.csv'", PW, out), 0);
	assert_int_equal(run("pdfdetach -upw '%s' -list %s | grep -q "
	    "'message-2.eml'", PW, out), 0);
	assert_int_equal(run("cd %s && pdfdetach -upw '%s' -save 1 -o got.csv "
	    "%s && printf 'a,b\\r\\n1,2' | cmp -s - got.csv", tmpdir, PW, out),
	    0);
	/* No JavaScript, actions, forms or links in the document. */
	assert_int_equal(run("qpdf --password='%s' --qdf --object-streams="
	    "disable %s %s/plain.pdf", PW, out, tmpdir), 0);
	assert_int_not_equal(run("grep -aqE '/JavaScript|/JS|/AcroForm|"
	    "/OpenAction|/URI|/Launch|/AA' %s/plain.pdf", tmpdir), 0);
}

static void
test_pdf_malformed(void **state)
{
	char msg[512], out[512];
	struct pdf_info info;
	FILE *f;

	(void)state;
	/* Not MIME at all: drawn as raw text. */
	snprintf(msg, sizeof(msg), "%s/raw.eml", tmpdir);
	snprintf(out, sizeof(out), "%s/raw.pdf", tmpdir);
	assert_non_null(f = fopen(msg, "w"));
	fprintf(f, "\x01\x02 no header at all, rawtextmarker \xff\xfe\n");
	fclose(f);
	build(msg, out, NULL, &info);
	assert_words(out, "rawtextmarker");
	/* A broken multipart: what can be read is drawn. */
	snprintf(msg, sizeof(msg), "%s/broken.eml", tmpdir);
	assert_non_null(f = fopen(msg, "w"));
	fprintf(f, "From: a@example.com\r\nSubject: broken\r\n"
	    "Content-Type: multipart/mixed; boundary=\"zz\"\r\n\r\n"
	    "--zz\r\nContent-Type: text/plain; charset=bogus-charset\r\n"
	    "Content-Transfer-Encoding: base64\r\n\r\n"
	    "bm90IHJlYWxseSBiYXNlNjQ=!!!%%%%\r\n"
	    "--zz\r\nContent-Type: text/plain\r\n\r\nsecondpartmarker\r\n");
	fclose(f);
	build(msg, out, NULL, &info);
	assert_words(out, "broken secondpartmarker");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pass_alphabet_length),
		cmocka_unit_test(test_pass_entropy),
		cmocka_unit_test(test_pass_group),
		cmocka_unit_test(test_pdf_encrypted),
		cmocka_unit_test(test_pdf_charsets),
		cmocka_unit_test(test_pdf_body_and_attachments),
		cmocka_unit_test(test_pdf_malformed),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
