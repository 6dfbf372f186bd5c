/* Fuzzes trigger matching on a peer-supplied header section, and the
 * trigger removal that produces the stored copy. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "header.h"
#include "ingest/ingest.h"

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *names[] = { "X-Keep-CipherMail-To-Webmail",
	    "X-Keep-CipherMail-To-PDF-OTP" };
	struct ingest_triggers t = { "X-Keep-CipherMail-To-Webmail: True", 1,
	    "X-Keep-CipherMail-To-PDF-OTP: True", 1 };
	struct header h;
	FILE *in, *out;
	char *buf = NULL;
	size_t len = 0;
	int removed;

	if (header_parse_mem((const char *)data, size, 65536, &h) == 0) {
		(void)ingest_classify(&h, &t);
		header_free(&h);
	}
	if ((in = fmemopen((void *)data, size ? size : 1, "r")) == NULL)
		return 0;
	if ((out = open_memstream(&buf, &len)) == NULL) {
		fclose(in);
		return 0;
	}
	if (size > 0 && header_rewrite(in, out, 65536, names, 2, NULL,
	    &removed) == 0) {
		fflush(out);
		/* The stored copy never carries a trigger that matches. */
		if (header_parse_mem(buf, len, 65536, &h) == 0) {
			if (ingest_classify(&h, &t) != INGEST_ROUTE_NONE)
				abort();
			header_free(&h);
		}
	}
	fclose(in);
	fclose(out);
	free(buf);
	return 0;
}
