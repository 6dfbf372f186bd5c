/*
 * libFuzzer: the web worker's MIME walk over a stored message, as the
 * message page does it: GMime parses, the walk numbers the leaf parts and
 * picks the text and HTML bodies, every part is measured and its start
 * decoded through the chunked readers, and the first attached messages
 * are narrowed to. winmail.dat stays packed here (fuzz_tnef covers it).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <gmime/gmime.h>

#include "web/web_mail.h"

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	static int init;
	struct web_mail m;
	GMimeStream *st;
	char *b;
	size_t blen;

	if (!init) {
		web_mail_init();
		init = 1;
	}
	memset(&m, 0, sizeof(m));
	m.no_tnef = 1;
	st = g_mime_stream_mem_new_with_buffer((const char *)data, len);
	if (web_mail_parse_stream(&m, st) == 0) {
		for (int i = 0; i < m.nparts; i++) {
			(void)web_mail_part_size(m.parts[i]);
			(void)web_mail_is_attachment(m.parts[i]);
			b = web_mail_part_bytes(m.parts[i], &blen, 1, 4096);
			free(b);
		}
		(void)web_mail_narrow_sub(&m, "1");
		(void)web_mail_narrow_sub(&m, "2.1");
	}
	web_mail_free(&m);
	g_object_unref(st);
	return 0;
}
