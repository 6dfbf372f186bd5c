/*
 * libFuzzer target for the SMTP engine's peer-facing parsers. The first
 * byte picks the target: even, smtp_cmd_parse() on each CRLF-separated
 * line; odd, the DATA (or BDAT) body reader fed in pieces whose size comes
 * from that byte. Invariants: a parse never overruns, a refusal is a full
 * 5xx reply, DATA ends only on
 * CRLF.CRLF and whatever follows it is never consumed, BDAT never ends on
 * its own, and the bytes kept stay within the limit.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "smtp_data.h"
#include "smtp_server.h"

static void
fuzz_cmd(const uint8_t *p, size_t n)
{
	struct smtp_cmd cmd;
	char reply[512];
	size_t start = 0;

	for (size_t i = 0; i <= n; i++) {
		if (i < n && !(p[i] == '\n' && i > start && p[i - 1] == '\r'))
			continue;
		size_t len = i < n ? i - 1 - start : n - start;

		reply[0] = '\0';
		if (smtp_cmd_parse((const char *)p + start, len, &cmd, reply,
		    sizeof(reply)) == -1) {
			if (reply[0] != '5' || strlen(reply) < 9)
				abort();
		} else if (cmd.verb == SMTP_VERB_NONE)
			abort();
		start = i + 1;
	}
}

static void
fuzz_data(uint8_t sel, const uint8_t *p, size_t n)
{
	static struct smtp_data d;
	size_t step = (sel >> 2) + 1, off = 0, used;
	int dot = (sel & 2) != 0, end = 0;

	smtp_data_init(&d, -1, 4096, dot);
	while (off < n && !end) {
		size_t k = n - off < step ? n - off : step;

		end = smtp_data_feed(&d, p + off, k, &used);
		if (used > k || (!end && used != k))
			abort();
		off += used;
	}
	if (end && (off < 3 || memcmp(p + off - 3, ".\r\n", 3) != 0))
		abort();
	if (!dot && end)
		abort();
	smtp_data_finish(&d);
	if (d.size > 4096 + 2)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0)
		return 0;
	if ((data[0] & 1) == 0)
		fuzz_cmd(data + 1, size - 1);
	else
		fuzz_data(data[0], data + 1, size - 1);
	return 0;
}
