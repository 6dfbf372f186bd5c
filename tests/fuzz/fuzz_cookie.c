/*
 * libFuzzer: the Cookie header parser. The input is the header; the value
 * found must fit the buffer and consist of cookie-octets only.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "web/web_cookie.h"

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static void
fuzz_cookie_one(const char *h, const char *name)
{
	char	 out[WEB_SESSION_ID_LEN + 1];
	size_t	 i;
	int	 rc;

	memset(out, 'Z', sizeof(out));
	rc = web_cookie_get(h, name, out, sizeof(out));
	if (rc < -1 || rc > 1)
		abort();
	if (rc != 1)
		return;
	for (i = 0; i < sizeof(out) && out[i] != '\0'; i++)
		if (out[i] <= 0x20 || out[i] >= 0x7f || out[i] == '"' ||
		    out[i] == ',' || out[i] == ';' || out[i] == '\\')
			abort();
	if (i == sizeof(out))
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	char	*h;

	if (len > WEB_COOKIE_HEADER_MAX + 16)
		return 0;
	h = malloc(len + 1);
	memcpy(h, data, len);
	h[len] = '\0';
	fuzz_cookie_one(h, "sid");
	fuzz_cookie_one(h, "pre");
	free(h);
	return 0;
}
