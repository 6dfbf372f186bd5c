/*
 * Test harness around smtp_client_send():
 *   smtp_send --host H --port P [--tls none|may|encrypt] [--ca F]
 *       [--cert F --key F] [--helo NAME] [--timeout S] [--smtputf8]
 *       [--8bit] [--count N] [--idle S] --from A --to B [--to C ...] FILE
 * Sends FILE N times (default 1) from one thread, so the connection cache
 * applies between sends (--idle sets its timeout; 0 turns it off). Prints
 * one JSON line per send: status, code, reply, per-recipient codes and
 * replies, and the peak resident set size (vmhwm_kb).
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "smtp_client.h"
#include "xmalloc.h"

#define SMTP_SEND_MAX_RCPTS	1000

static void
smtp_send_usage(void)
{
	fprintf(stderr, "usage: smtp_send --host H --port P [--tls none|may|"
	    "encrypt] [--ca F] [--cert F --key F] [--helo N] [--timeout S] "
	    "[--smtputf8] [--8bit] [--count N] [--idle S] --from A --to B "
	    "[--to C...] FILE\n");
	exit(2);
}

static void
smtp_send_json_str(const char *s)
{
	putchar('"');
	for (; *s != '\0'; s++) {
		unsigned char ch = (unsigned char)*s;

		if (ch == '"' || ch == '\\')
			printf("\\%c", ch);
		else if (ch < 0x20)
			printf("\\u%04x", ch);
		else
			putchar(ch);
	}
	putchar('"');
}

static long
smtp_send_vmhwm(void)
{
	char line[256];
	long kb = -1;
	FILE *f;

	if ((f = fopen("/proc/self/status", "r")) == NULL)
		return -1;
	while (fgets(line, sizeof(line), f) != NULL)
		if (strncmp(line, "VmHWM:", 6) == 0)
			kb = strtol(line + 6, NULL, 10);
	fclose(f);
	return kb;
}

int
main(int argc, char *argv[])
{
	struct smtp_client_target t;
	struct smtp_client_msg m;
	struct smtp_client_result r;
	const char **rcpts;
	const char *file = NULL;
	size_t i, n = 0;
	int a, k, count = 1;

	log_init("smtp_send", LOG_TO_STDERR, 0);
	signal(SIGPIPE, SIG_IGN);
	memset(&t, 0, sizeof(t));
	memset(&m, 0, sizeof(m));
	t.tls = SMTP_CLIENT_TLS_NONE;
	t.timeout = 30;
	t.helo = "smtp-send.test";
	m.from = "";
	rcpts = xcalloc(SMTP_SEND_MAX_RCPTS, sizeof(*rcpts));

	for (a = 1; a < argc; a++) {
		const char *o = argv[a];

		if (strcmp(o, "--smtputf8") == 0) {
			m.smtputf8 = 1;
			continue;
		}
		if (strcmp(o, "--8bit") == 0) {
			m.body_8bit = 1;
			continue;
		}
		if (strncmp(o, "--", 2) != 0) {
			if (file != NULL)
				smtp_send_usage();
			file = o;
			continue;
		}
		if (a + 1 >= argc)
			smtp_send_usage();
		const char *v = argv[++a];
		if (strcmp(o, "--host") == 0)
			snprintf(t.host, sizeof(t.host), "%s", v);
		else if (strcmp(o, "--port") == 0)
			t.port = atoi(v);
		else if (strcmp(o, "--tls") == 0) {
			if (strcmp(v, "none") == 0)
				t.tls = SMTP_CLIENT_TLS_NONE;
			else if (strcmp(v, "may") == 0)
				t.tls = SMTP_CLIENT_TLS_MAY;
			else if (strcmp(v, "encrypt") == 0)
				t.tls = SMTP_CLIENT_TLS_ENCRYPT;
			else
				smtp_send_usage();
		} else if (strcmp(o, "--ca") == 0)
			t.ca_file = v;
		else if (strcmp(o, "--cert") == 0)
			t.cert_file = v;
		else if (strcmp(o, "--key") == 0)
			t.key_file = v;
		else if (strcmp(o, "--helo") == 0)
			t.helo = v;
		else if (strcmp(o, "--timeout") == 0)
			t.timeout = atoi(v);
		else if (strcmp(o, "--count") == 0)
			count = atoi(v);
		else if (strcmp(o, "--idle") == 0)
			smtp_client_cache_idle(atoi(v));
		else if (strcmp(o, "--from") == 0)
			m.from = v;
		else if (strcmp(o, "--to") == 0) {
			if (n == SMTP_SEND_MAX_RCPTS)
				smtp_send_usage();
			rcpts[n++] = v;
		} else
			smtp_send_usage();
	}
	if (file == NULL || t.host[0] == '\0' || t.port <= 0 || n == 0 ||
	    count < 1)
		smtp_send_usage();
	m.rcpts = rcpts;
	m.nrcpts = n;
	m.path = file;
	memset(&r, 0, sizeof(r));
	r.rcpt_code = xcalloc(n, sizeof(*r.rcpt_code));
	r.rcpt_reply = xcalloc(n, sizeof(*r.rcpt_reply));

	for (k = 0; k < count; k++) {
		smtp_client_send(&t, &m, &r);
		printf("{\"status\": %d, \"code\": %d, \"reply\": ",
		    r.status, r.code);
		smtp_send_json_str(r.reply);
		printf(", \"rcpt\": [");
		for (i = 0; i < n; i++)
			printf("%s%d", i ? ", " : "", r.rcpt_code[i]);
		printf("], \"rcpt_reply\": [");
		for (i = 0; i < n; i++) {
			printf("%s", i ? ", " : "");
			smtp_send_json_str(r.rcpt_reply[i]);
		}
		printf("], \"vmhwm_kb\": %ld}\n", smtp_send_vmhwm());
		fflush(stdout);
	}
	smtp_client_cache_flush();
	free(r.rcpt_code);
	free(r.rcpt_reply);
	free(rcpts);
	return 0;
}
