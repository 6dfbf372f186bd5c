/* Form bodies: urlencoded and multipart/form-data, limits, file names. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "web/web_form.h"

static const struct {
	const char	*body;
	int		 rc;
	const char	*name, *value;	/* one field to look up */
} urlenc[] = {
	{ "a=1&b=2", WEB_FORM_OK, "b", "2" },
	{ "email=a%40b.example&pw=x+y%2Bz", WEB_FORM_OK, "pw", "x y+z" },
	{ "flag&x=", WEB_FORM_OK, "flag", "" },
	{ "&&a=1&&", WEB_FORM_OK, "a", "1" },
	{ "n=%C3%A9t%C3%A9", WEB_FORM_OK, "n", "\xc3\xa9t\xc3\xa9" },
	{ "", WEB_FORM_OK, NULL, NULL },
	{ "a=%zz", WEB_FORM_BAD, NULL, NULL },
	{ "a=%4", WEB_FORM_BAD, NULL, NULL },
	{ "a=%00", WEB_FORM_BAD, NULL, NULL },
	{ "a=%ff%fe", WEB_FORM_BAD, NULL, NULL },
	{ "a=%C0%BC", WEB_FORM_BAD, NULL, NULL },
	{ "=x", WEB_FORM_BAD, NULL, NULL },
	{ "a=1&a=2", WEB_FORM_BAD, NULL, NULL },
};

static void
test_urlencoded(void **state)
{
	struct web_form	 f;
	int		 rc;

	(void)state;
	for (size_t i = 0; i < sizeof(urlenc) / sizeof(urlenc[0]); i++) {
		rc = web_form_parse_urlencoded(urlenc[i].body,
		    strlen(urlenc[i].body), NULL, &f);
		if (rc != urlenc[i].rc)
			print_error("case %zu: %s -> %d\n", i, urlenc[i].body, rc);
		assert_int_equal(rc, urlenc[i].rc);
		if (urlenc[i].name != NULL)
			assert_string_equal(web_form_get(&f, urlenc[i].name),
			    urlenc[i].value);
		if (rc != WEB_FORM_OK)
			assert_int_equal(f.nfields, 0);
		web_form_free(&f);
	}
}

static void
test_urlencoded_limits(void **state)
{
	struct web_form_limits	 l = { .max_fields = 3, .max_name = 4,
	    .max_value = 5, .max_total = 40 };
	struct web_form		 f;

	(void)state;
	assert_int_equal(web_form_parse_urlencoded("a=1&b=2&c=3", 11, &l, &f),
	    WEB_FORM_OK);
	assert_int_equal(f.nfields, 3);
	web_form_free(&f);
	assert_int_equal(web_form_parse_urlencoded("a=1&b=2&c=3&d=4", 15, &l,
	    &f), WEB_FORM_TOO_LARGE);
	assert_int_equal(web_form_parse_urlencoded("abcde=1", 7, &l, &f),
	    WEB_FORM_TOO_LARGE);
	assert_int_equal(web_form_parse_urlencoded("a=123456", 8, &l, &f),
	    WEB_FORM_TOO_LARGE);
	/* Escapes count decoded: five bytes as %xx is still five. */
	assert_int_equal(web_form_parse_urlencoded("a=%41%42%43%44%45", 17, &l,
	    &f), WEB_FORM_OK);
	assert_string_equal(web_form_get(&f, "a"), "ABCDE");
	web_form_free(&f);
	assert_int_equal(web_form_parse_urlencoded("a=1&b=2&c=3&dddd=12345"
	    "&x=1&y=2", 30, &l, &f), WEB_FORM_TOO_LARGE);
	l.allow_duplicates = 1;
	assert_int_equal(web_form_parse_urlencoded("a=1&a=2", 7, &l, &f),
	    WEB_FORM_OK);
	assert_string_equal(web_form_get(&f, "a"), "1");
	web_form_free(&f);
	/* The body is not a C string: a NUL inside is data, and refused. */
	assert_int_equal(web_form_parse_urlencoded("a=1\0b", 5, &l, &f),
	    WEB_FORM_BAD);
}

#define CT	"multipart/form-data; boundary=----WebKitFormBoundaryX7"
#define D	"------WebKitFormBoundaryX7"

static const char mp_ok[] =
    D "\r\n"
    "Content-Disposition: form-data; name=\"subject\"\r\n\r\n"
    "Hello \xc3\xa9\r\n"
    D "\r\n"
    "Content-Disposition: form-data; name=\"body\"\r\n\r\n"
    "line1\r\nline2 with " "--" "----WebKitFormBoundaryX8 lookalike\r\n"
    D "\r\n"
    "Content-Disposition: form-data; name=\"file\"; "
    "filename=\"C:\\\\Users\\\\bob\\\\..\\\\report.pdf\"\r\n"
    "Content-Type: Application/PDF\r\n\r\n"
    "%PDF-1.4\r\n\0binary\r\n"
    D "\r\n"
    "Content-Disposition: form-data; name=\"empty\"; filename=\"\"\r\n"
    "Content-Type: application/octet-stream\r\n\r\n"
    "\r\n"
    D "--\r\n";

static void
check_ok_form(const struct web_form *f)
{
	const struct web_form_file *ff;
	char	 buf[64];

	assert_int_equal(f->nfields, 2);
	assert_string_equal(web_form_get(f, "subject"), "Hello \xc3\xa9");
	assert_string_equal(web_form_get(f, "body"), "line1\r\nline2 with "
	    "------WebKitFormBoundaryX8 lookalike");
	assert_int_equal(f->nfiles, 1);
	ff = web_form_get_file(f, "file");
	assert_non_null(ff);
	assert_string_equal(ff->filename, "report.pdf");
	assert_string_equal(ff->content_type, "application/pdf");
	assert_int_equal(ff->size, 17);
	if (ff->data != NULL)
		assert_memory_equal(ff->data, "%PDF-1.4\r\n\0binary", 17);
	else {
		assert_int_equal(read(ff->fd, buf, sizeof(buf)), 17);
		assert_memory_equal(buf, "%PDF-1.4\r\n\0binary", 17);
	}
	assert_null(web_form_get_file(f, "empty"));
}

static void
test_multipart(void **state)
{
	struct web_form_limits	 l = { .tmpdir = "/tmp" };
	struct web_form		 f;

	(void)state;
	assert_int_equal(web_form_parse(CT, mp_ok, sizeof(mp_ok) - 1, NULL,
	    &f), WEB_FORM_OK);
	assert_non_null(f.files[0].data);
	check_ok_form(&f);
	web_form_free(&f);
	/* Same, with the file in an unlinked temp file. */
	assert_int_equal(web_form_parse(CT, mp_ok, sizeof(mp_ok) - 1, &l, &f),
	    WEB_FORM_OK);
	assert_null(f.files[0].data);
	assert_true(f.files[0].fd >= 0);
	check_ok_form(&f);
	web_form_free(&f);
	/* A quoted boundary parameter, RFC 5987 filename*. */
	{
		static const char b[] = "--q\r\nContent-Disposition: form-data;"
		    " name=\"f\"; filename=\"fallback.txt\"; filename*=UTF-8''"
		    "%E2%82%AC%20rate%2Etxt\r\n\r\nx\r\n--q--";

		assert_int_equal(web_form_parse("multipart/form-data; "
		    "boundary=\"q\"", b, sizeof(b) - 1, NULL, &f), WEB_FORM_OK);
		assert_string_equal(f.files[0].filename,
		    "\xe2\x82\xac rate.txt");
		web_form_free(&f);
	}
}

static const struct {
	const char	*ct;
	const char	*body;
	int		 rc;
} mp_bad[] = {
	{ "text/plain", "x", WEB_FORM_UNSUPPORTED },
	{ "multipart/form-data", "--x\r\n", WEB_FORM_BAD },	/* no boundary */
	{ "multipart/form-data; boundary=x", "no delimiter", WEB_FORM_BAD },
	{ "multipart/form-data; boundary=x",		/* no close delimiter */
	    "--x\r\nContent-Disposition: form-data; name=a\r\n\r\n1",
	    WEB_FORM_BAD },
	{ "multipart/form-data; boundary=x",		/* no disposition */
	    "--x\r\nContent-Type: text/plain\r\n\r\n1\r\n--x--", WEB_FORM_BAD },
	{ "multipart/form-data; boundary=x",		/* not form-data */
	    "--x\r\nContent-Disposition: attachment; name=a\r\n\r\n1\r\n--x--",
	    WEB_FORM_BAD },
	{ "multipart/form-data; boundary=x",		/* no name */
	    "--x\r\nContent-Disposition: form-data\r\n\r\n1\r\n--x--",
	    WEB_FORM_BAD },
	{ "multipart/form-data; boundary=x",		/* folded header */
	    "--x\r\nContent-Disposition: form-data;\r\n name=a\r\n\r\n1\r\n"
	    "--x--", WEB_FORM_BAD },
	{ "multipart/form-data; boundary=x",		/* bare LF */
	    "--x\nContent-Disposition: form-data; name=a\n\n1\n--x--",
	    WEB_FORM_BAD },
	{ "multipart/form-data; boundary=x",		/* value not UTF-8 */
	    "--x\r\nContent-Disposition: form-data; name=a\r\n\r\n\xff\r\n"
	    "--x--", WEB_FORM_BAD },
	{ "multipart/form-data; boundary=x",		/* duplicate */
	    "--x\r\nContent-Disposition: form-data; name=a\r\n\r\n1\r\n"
	    "--x\r\nContent-Disposition: form-data; name=a\r\n\r\n2\r\n--x--",
	    WEB_FORM_BAD },
	{ "multipart/form-data; boundary=x",		/* header too big */
	    "--x\r\nContent-Disposition: form-data; name=a\r\nX-Pad: "
	    "0123456789012345678901234567890123456789\r\n\r\n1\r\n--x--",
	    WEB_FORM_TOO_LARGE },
	{ "multipart/form-data; boundary=x",		/* too many parts */
	    "--x\r\nContent-Disposition: form-data; name=a\r\n\r\n1\r\n"
	    "--x\r\nContent-Disposition: form-data; name=b\r\n\r\n2\r\n"
	    "--x\r\nContent-Disposition: form-data; name=c\r\n\r\n3\r\n--x--",
	    WEB_FORM_TOO_LARGE },
	{ "multipart/form-data; boundary=x",		/* file too big */
	    "--x\r\nContent-Disposition: form-data; name=f; filename=a\r\n\r\n"
	    "0123456789abcdef\r\n--x--", WEB_FORM_TOO_LARGE },
};

static void
test_multipart_bad(void **state)
{
	struct web_form_limits	 l = { .max_parts = 2, .max_part_header = 64,
	    .max_file = 10 };
	struct web_form		 f;
	int			 rc;

	(void)state;
	for (size_t i = 0; i < sizeof(mp_bad) / sizeof(mp_bad[0]); i++) {
		rc = web_form_parse(mp_bad[i].ct, mp_bad[i].body,
		    strlen(mp_bad[i].body), &l, &f);
		if (rc != mp_bad[i].rc)
			print_error("case %zu -> %d\n", i, rc);
		assert_int_equal(rc, mp_bad[i].rc);
		assert_int_equal(f.nfields + f.nfiles, 0);
	}
	l.max_total = 10;
	assert_int_equal(web_form_parse(CT, mp_ok, sizeof(mp_ok) - 1, &l, &f),
	    WEB_FORM_TOO_LARGE);
}

static const struct {
	const char *in, *want;
} names[] = {
	{ "report.pdf", "report.pdf" },
	{ "../../etc/passwd", "passwd" },
	{ "C:\\Windows\\system32\\evil.dll", "evil.dll" },
	{ "..", "attachment" },
	{ ".htaccess", "htaccess" },
	{ "", "attachment" },
	{ "a\r\nb\tc\x01.txt", "abc.txt" },
	{ "bad\xff.txt", "bad.txt" },
	{ "invoice\xe2\x80\xae" "fdp.exe", "invoicefdp.exe" },	/* RLO */
	{ "what?<>:|\"*.txt", "what_______.txt" },
	{ "trailing. . ", "trailing" },
	{ "\xc3\xa9t\xc3\xa9.txt", "\xc3\xa9t\xc3\xa9.txt" },
};

static void
test_safe_filename(void **state)
{
	char	*s, longname[600];

	(void)state;
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		s = web_form_safe_filename(names[i].in);
		assert_string_equal(s, names[i].want);
		free(s);
	}
	/* Cut to 200 bytes, never inside a UTF-8 sequence. */
	for (int i = 0; i < 299; i++)
		memcpy(longname + 2 * i, "\xc3\xa9", 2);
	longname[598] = '\0';
	s = web_form_safe_filename(longname);
	assert_int_equal(strlen(s), 200);
	free(s);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_urlencoded),
		cmocka_unit_test(test_urlencoded_limits),
		cmocka_unit_test(test_multipart),
		cmocka_unit_test(test_multipart_bad),
		cmocka_unit_test(test_safe_filename),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
