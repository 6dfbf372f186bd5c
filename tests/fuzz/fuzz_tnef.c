/*
 * libFuzzer: winmail.dat unpacking (libytnef under our bounds), as the
 * web worker does it for any attachment of type application/ms-tnef.
 */
#include <stddef.h>
#include <stdint.h>

#include "web/web_tnef.h"

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);
const char *__lsan_default_suppressions(void);

/*
 * libytnef 2.0 (Debian 12) loses an attachment's title and data buffers
 * when a malformed stream repeats them; not ours to free, and bounded by
 * the message size.
 */
const char *
__lsan_default_suppressions(void)
{
	return "leak:libytnef.so\n";
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	struct web_tnef_file f[4];
	int n;

	n = web_tnef_unpack(data, len, f, 4);
	web_tnef_free(f, n);
	return 0;
}
