/*
 * libFuzzer: the form parsers. The first input line is the Content-Type,
 * the rest the body; small limits so the fuzzer reaches them.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "web/web_form.h"

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	struct web_form_limits	 l = { .max_fields = 8, .max_name = 16,
	    .max_value = 256, .max_parts = 8, .max_part_header = 256,
	    .max_files = 2, .max_file = 512 };
	struct web_form		 f;
	const uint8_t		*nl;
	char			*ct, *name;
	size_t			 ctlen;

	if ((nl = memchr(data, '\n', len)) == NULL)
		return 0;
	ctlen = (size_t)(nl - data);
	ct = malloc(ctlen + 1);
	memcpy(ct, data, ctlen);
	ct[ctlen] = '\0';
	if (web_form_parse(ct, (const char *)nl + 1, len - ctlen - 1, &l, &f)
	    == WEB_FORM_OK) {
		for (size_t i = 0; i < f.nfiles; i++)
			if (strchr(f.files[i].filename, '/') != NULL ||
			    f.files[i].filename[0] == '\0')
				abort();
		web_form_free(&f);
	}
	name = web_form_safe_filename(ct);
	if (strchr(name, '/') != NULL || strchr(name, '\\') != NULL)
		abort();
	free(name);
	free(ct);
	return 0;
}
