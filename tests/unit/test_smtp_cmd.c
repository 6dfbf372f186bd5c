/* smtp_cmd_parse() and the DATA/BDAT body reader, table-driven. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "smtp_data.h"
#include "smtp_server.h"

struct cmd_case {
	const char	*line;
	int		 rc;
	const char	*reply;		/* prefix of the reply when rc == -1 */
	enum smtp_verb	 verb;
	const char	*path;		/* expected path or arg, NULL: skip */
	long long	 size;
	int		 utf8;
	int		 body8;
};

static const struct cmd_case cmd_cases[] = {
	{ "EHLO client.example", 0, NULL, SMTP_VERB_EHLO, "client.example",
	    -1, 0, 0 },
	{ "ehlo [192.0.2.1]", 0, NULL, SMTP_VERB_EHLO, "[192.0.2.1]", -1, 0,
	    0 },
	{ "HeLo x", 0, NULL, SMTP_VERB_HELO, "x", -1, 0, 0 },
	{ "LHLO x", 0, NULL, SMTP_VERB_LHLO, "x", -1, 0, 0 },
	{ "EHLO", -1, "501 5.5.4", SMTP_VERB_EHLO, NULL, -1, 0, 0 },
	{ "MAIL FROM:<a@b.example>", 0, NULL, SMTP_VERB_MAIL, "a@b.example",
	    -1, 0, 0 },
	{ "mail from:<a@b.example>", 0, NULL, SMTP_VERB_MAIL, "a@b.example",
	    -1, 0, 0 },
	{ "MAIL FROM:a@b.example", 0, NULL, SMTP_VERB_MAIL, "a@b.example", -1,
	    0, 0 },
	{ "MAIL FROM: <a@b.example>", 0, NULL, SMTP_VERB_MAIL, "a@b.example",
	    -1, 0, 0 },
	{ "MAIL FROM:<>", 0, NULL, SMTP_VERB_MAIL, "", -1, 0, 0 },
	{ "MAIL FROM:<@relay.example:a@b.example>", 0, NULL, SMTP_VERB_MAIL,
	    "a@b.example", -1, 0, 0 },
	{ "MAIL FROM:<\"x y>\"@b.example>", 0, NULL, SMTP_VERB_MAIL,
	    "\"x y>\"@b.example", -1, 0, 0 },
	{ "MAIL FROM:<a@b.example> SIZE=1234 BODY=8BITMIME", 0, NULL,
	    SMTP_VERB_MAIL, "a@b.example", 1234, 0, 1 },
	{ "MAIL FROM:<a@b.example> body=7bit size=0", 0, NULL,
	    SMTP_VERB_MAIL, "a@b.example", 0, 0, 0 },
	{ "MAIL FROM:<j\xc3\xb6rg@b.example> SMTPUTF8", 0, NULL,
	    SMTP_VERB_MAIL, "j\xc3\xb6rg@b.example", -1, 1, 0 },
	{ "MAIL FROM:<j\xc3\xb6rg@b.example>", -1, "501 5.1.7",
	    SMTP_VERB_MAIL, NULL, -1, 0, 0 },
	{ "MAIL FROM:<a@b.example> SIZE=12x", -1, "501 5.5.4",
	    SMTP_VERB_MAIL, NULL, -1, 0, 0 },
	{ "MAIL FROM:<a@b.example> SIZE=1 SIZE=2", -1, "501 5.5.4",
	    SMTP_VERB_MAIL, NULL, -1, 0, 0 },
	{ "MAIL FROM:<a@b.example> BODY=BINARYMIME", -1, "501 5.5.4",
	    SMTP_VERB_MAIL, NULL, -1, 0, 0 },
	{ "MAIL FROM:<a@b.example> RET=FULL", -1, "555 5.5.4",
	    SMTP_VERB_MAIL, NULL, -1, 0, 0 },
	{ "MAIL FROM:<a@b.example> SMTPUTF8=yes", -1, "555 5.5.4",
	    SMTP_VERB_MAIL, NULL, -1, 0, 0 },
	{ "MAIL FROM:<a b@example>", -1, "501 5.1.7", SMTP_VERB_MAIL, NULL,
	    -1, 0, 0 },
	{ "MAIL FROM:<a@b.example", -1, "501 5.1.7", SMTP_VERB_MAIL, NULL,
	    -1, 0, 0 },
	{ "MAIL FROM:<no-domain>", -1, "501 5.1.7", SMTP_VERB_MAIL, NULL, -1,
	    0, 0 },
	{ "MAIL TO:<a@b.example>", -1, "501 5.5.4", SMTP_VERB_MAIL, NULL, -1,
	    0, 0 },
	{ "MAIL", -1, "501 5.5.4", SMTP_VERB_MAIL, NULL, -1, 0, 0 },
	{ "RCPT TO:<c@d.example>", 0, NULL, SMTP_VERB_RCPT, "c@d.example",
	    -1, 0, 0 },
	{ "rcpt to:c@d.example", 0, NULL, SMTP_VERB_RCPT, "c@d.example", -1,
	    0, 0 },
	{ "RCPT TO:<Postmaster>", 0, NULL, SMTP_VERB_RCPT, "Postmaster", -1,
	    0, 0 },
	{ "RCPT TO:<>", -1, "501 5.1.3", SMTP_VERB_RCPT, NULL, -1, 0, 0 },
	{ "RCPT TO:<c@>", -1, "501 5.1.3", SMTP_VERB_RCPT, NULL, -1, 0, 0 },
	{ "RCPT TO:<c@d.example> NOTIFY=NEVER", -1, "555 5.5.4",
	    SMTP_VERB_RCPT, NULL, -1, 0, 0 },
	{ "DATA", 0, NULL, SMTP_VERB_DATA, NULL, -1, 0, 0 },
	{ "data", 0, NULL, SMTP_VERB_DATA, NULL, -1, 0, 0 },
	{ "DATA x", -1, "501 5.5.4", SMTP_VERB_DATA, NULL, -1, 0, 0 },
	{ "RSET", 0, NULL, SMTP_VERB_RSET, NULL, -1, 0, 0 },
	{ "NOOP anything", 0, NULL, SMTP_VERB_NOOP, "anything", -1, 0, 0 },
	{ "QUIT", 0, NULL, SMTP_VERB_QUIT, NULL, -1, 0, 0 },
	{ "VRFY postmaster", 0, NULL, SMTP_VERB_VRFY, "postmaster", -1, 0, 0 },
	{ "VRFY", -1, "501 5.5.4", SMTP_VERB_VRFY, NULL, -1, 0, 0 },
	{ "HELP", 0, NULL, SMTP_VERB_HELP, "", -1, 0, 0 },
	{ "StartTLS", 0, NULL, SMTP_VERB_STARTTLS, NULL, -1, 0, 0 },
	{ "STARTTLS now", -1, "501 5.5.4", SMTP_VERB_STARTTLS, NULL, -1, 0,
	    0 },
	{ "XFORWARD ADDR=192.0.2.1", 0, NULL, SMTP_VERB_XFORWARD,
	    "ADDR=192.0.2.1", -1, 0, 0 },
	{ "XFORWARD", -1, "501 5.5.4", SMTP_VERB_XFORWARD, NULL, -1, 0, 0 },
	{ "FOO", -1, "500 5.5.1", SMTP_VERB_NONE, NULL, -1, 0, 0 },
	{ "", -1, "500 5.5.1", SMTP_VERB_NONE, NULL, -1, 0, 0 },
	{ "MAILFROM:<a@b.example>", -1, "500 5.5.1", SMTP_VERB_NONE, NULL, -1,
	    0, 0 },
	{ "NOOP\rx", -1, "500 5.5.2", SMTP_VERB_NONE, NULL, -1, 0, 0 },
	{ "NOOP\nx", -1, "500 5.5.2", SMTP_VERB_NONE, NULL, -1, 0, 0 },
};

static void
test_cmd_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(cmd_cases) / sizeof(cmd_cases[0]); i++) {
		const struct cmd_case *c = &cmd_cases[i];
		struct smtp_cmd cmd;
		char reply[512] = "";
		int rc;

		rc = smtp_cmd_parse(c->line, strlen(c->line), &cmd, reply,
		    sizeof(reply));
		if (rc != c->rc)
			fail_msg("%s: rc %d, reply %s", c->line, rc, reply);
		if (rc == -1) {
			if (strncmp(reply, c->reply, strlen(c->reply)) != 0)
				fail_msg("%s: reply \"%s\", want \"%s\"",
				    c->line, reply, c->reply);
			continue;
		}
		assert_int_equal(cmd.verb, c->verb);
		if (c->path != NULL) {
			const char *got = (c->verb == SMTP_VERB_MAIL ||
			    c->verb == SMTP_VERB_RCPT) ? cmd.path : cmd.arg;

			if (strcmp(got, c->path) != 0)
				fail_msg("%s: got \"%s\"", c->line, got);
		}
		assert_int_equal(cmd.size, c->size);
		assert_int_equal(cmd.smtputf8, c->utf8);
		assert_int_equal(cmd.body_8bit, c->body8);
	}
}

static void
test_cmd_bdat(void **state)
{
	struct smtp_cmd cmd;
	char reply[512];

	(void)state;
	assert_int_equal(smtp_cmd_parse("BDAT 1000", 9, &cmd, reply,
	    sizeof(reply)), 0);
	assert_int_equal(cmd.verb, SMTP_VERB_BDAT);
	assert_int_equal(cmd.chunk_size, 1000);
	assert_int_equal(cmd.last, 0);
	assert_int_equal(smtp_cmd_parse("bdat 0 last", 11, &cmd, reply,
	    sizeof(reply)), 0);
	assert_int_equal(cmd.chunk_size, 0);
	assert_int_equal(cmd.last, 1);
	assert_int_equal(smtp_cmd_parse("BDAT", 4, &cmd, reply,
	    sizeof(reply)), -1);
	assert_int_equal(smtp_cmd_parse("BDAT -1", 7, &cmd, reply,
	    sizeof(reply)), -1);
	assert_int_equal(smtp_cmd_parse("BDAT 12 FIRST", 13, &cmd, reply,
	    sizeof(reply)), -1);
	assert_int_equal(smtp_cmd_parse("BDAT 9999999999999999999", 24, &cmd,
	    reply, sizeof(reply)), -1);
	assert_string_equal(reply, "501 5.5.4 BDAT chunk size too large");
}

static void
test_cmd_not_terminated(void **state)
{
	struct smtp_cmd cmd;
	char reply[512];
	char *line = malloc(4);

	(void)state;
	/* len bounds the line: no terminating NUL is read. */
	memcpy(line, "QUIT", 4);
	assert_int_equal(smtp_cmd_parse(line, 4, &cmd, reply, sizeof(reply)),
	    0);
	assert_int_equal(cmd.verb, SMTP_VERB_QUIT);
	assert_int_equal(smtp_cmd_parse("NOOP\0x", 6, &cmd, reply,
	    sizeof(reply)), -1);
	free(line);
}

/* Feeds input to a DATA reader writing to a temp file; returns the file. */
static char *
data_run(const char *in, size_t len, int dot, size_t max, size_t step,
    int *end, struct smtp_data *d, size_t *consumed)
{
	char path[] = "/tmp/test_smtp_data.XXXXXX";
	size_t off = 0, used;
	char *out;
	int fd;
	off_t n;

	fd = mkstemp(path);
	assert_true(fd != -1);
	unlink(path);
	smtp_data_init(d, fd, max, dot);
	*end = 0;
	while (off < len && !*end) {
		size_t k = len - off < step ? len - off : step;

		*end = smtp_data_feed(d, (const unsigned char *)in + off, k,
		    &used);
		off += used;
	}
	*consumed = off;
	smtp_data_finish(d);
	n = lseek(fd, 0, SEEK_END);
	out = calloc(1, n + 1);
	assert_int_equal(pread(fd, out, n, 0), n);
	close(fd);
	return out;
}

struct data_case {
	const char	*in;
	int		 end;	/* CRLF.CRLF seen */
	int		 bare;
	const char	*out;	/* kept bytes if not bare */
	size_t		 consumed;	/* 0: all */
};

static const struct data_case data_cases[] = {
	{ "a\r\n.\r\n", 1, 0, "a\r\n", 0 },
	{ ".\r\n", 1, 0, "", 0 },
	{ "..x\r\n.y\r\n.\r\nMAIL", 1, 0, ".x\r\ny\r\n", 12 },
	{ "a\n.\nb\r\n.\r\n", 1, 1, NULL, 0 },
	{ "a\n.\r\nb\r\n.\r\n", 1, 1, NULL, 0 },
	{ "a\r.\rb\r\n.\r\n", 1, 1, NULL, 0 },
	{ "a\r.\r\nb\r\n.\r\n", 1, 1, NULL, 0 },
	{ "a\r\n.\rb\r\n.\r\n", 1, 1, NULL, 0 },
	{ "a\n.\rb\r\n.\r\n", 1, 1, NULL, 0 },
	{ "a\n.\n", 0, 1, NULL, 0 },
	{ "a\r\n.\n", 0, 1, NULL, 0 },
	{ "a\r\r\n.\r\n", 1, 1, NULL, 0 },
};

static void
test_data_table(void **state)
{
	static const size_t steps[] = { 1, 2, 3, 7, 4096 };

	(void)state;
	for (size_t i = 0; i < sizeof(data_cases) / sizeof(data_cases[0]);
	    i++) {
		const struct data_case *c = &data_cases[i];

		for (size_t s = 0; s < sizeof(steps) / sizeof(steps[0]); s++) {
			struct smtp_data *d = malloc(sizeof(*d));
			size_t consumed;
			int end;
			char *out;

			out = data_run(c->in, strlen(c->in), 1, 0, steps[s],
			    &end, d, &consumed);
			if (end != c->end || d->bare != c->bare)
				fail_msg("case %zu step %zu: end %d bare %d",
				    i, steps[s], end, d->bare);
			if (!c->bare)
				assert_string_equal(out, c->out);
			assert_int_equal(consumed, c->consumed ? c->consumed :
			    strlen(c->in));
			free(out);
			free(d);
		}
	}
}

static void
test_data_size_and_bdat(void **state)
{
	struct smtp_data *d = malloc(sizeof(*d));
	size_t consumed;
	int end;
	char *out;

	(void)state;
	out = data_run("12345\r\n67890\r\n.\r\n", 17, 1, 10, 3, &end, d,
	    &consumed);
	assert_true(end);
	assert_true(d->too_big);
	free(out);
	/* BDAT: no dot handling, missing final CRLF is added. */
	out = data_run("x\r\n.\r\ny", 7, 0, 0, 2, &end, d, &consumed);
	assert_false(end);
	assert_false(d->bare);
	assert_string_equal(out, "x\r\n.\r\ny\r\n");
	free(out);
	out = data_run("x\ny\r\n", 5, 0, 0, 1, &end, d, &consumed);
	assert_true(d->bare);
	free(out);
	out = data_run("x\r", 2, 0, 0, 1, &end, d, &consumed);
	assert_true(d->bare);	/* a chunk ending in CR with nothing after */
	free(out);
	free(d);
}

static void
test_data_large_run(void **state)
{
	size_t n = 3 * SMTP_DATA_BUFSZ + 17, consumed;
	struct smtp_data *d = malloc(sizeof(*d));
	char *in = malloc(n + 5), *out;
	int end;

	(void)state;
	memset(in, 'q', n);
	memcpy(in + n, "\r\n.\r\n", 5);
	out = data_run(in, n + 5, 1, 0, n + 5, &end, d, &consumed);
	assert_true(end);
	assert_int_equal(d->size, n + 2);
	assert_int_equal(strlen(out), n + 2);
	free(out);
	free(in);
	free(d);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cmd_table),
		cmocka_unit_test(test_cmd_bdat),
		cmocka_unit_test(test_cmd_not_terminated),
		cmocka_unit_test(test_data_table),
		cmocka_unit_test(test_data_size_and_bdat),
		cmocka_unit_test(test_data_large_run),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
