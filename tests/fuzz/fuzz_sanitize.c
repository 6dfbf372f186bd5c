/* libFuzzer: the HTML mail sanitiser and the CSS filter on any bytes. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "web/web_sanitize.h"
#include "web/web_text.h"

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static char *
fuzz_cid(void *arg, const char *cid)
{
	(void)arg;
	return strlen(cid) % 2 ? NULL : web_html_escape(cid);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	struct web_sanitize_opts o = { .cid_url = fuzz_cid };
	char	*out, *css, *s;
	int	 remote;

	o.show_remote_images = len > 0 && (data[0] & 1);
	o.keep_blocked_src = len > 0 && (data[0] & 2);
	out = web_sanitize_html((const char *)data, len, &o, &remote);
	if (out != NULL && strstr(out, "<script") != NULL)
		abort();
	free(out);
	s = malloc(len + 1);
	memcpy(s, data, len);
	s[len] = '\0';
	css = web_sanitize_css(s);
	free(css);
	out = web_text_plain_to_html((const char *)data, len);
	free(out);
	free(s);
	return 0;
}
