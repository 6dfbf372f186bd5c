/*
 * libFuzzer: the PDF builder on arbitrary MIME. The input is written to
 * a memory file and pdf_build() renders, embeds and encrypts it; bounds
 * are small so one input stays fast. Any crash, leak report or sanitizer
 * error is a bug; a -1 (environment) is not expected either, since a
 * message that does not parse is drawn as raw text.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <gmime/gmime.h>

#include "pdf.h"

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);
const char *__asan_default_options(void);

/* fontconfig keeps its font cache for the life of the process. */
const char *
__asan_default_options(void)
{
	return "detect_leaks=0";
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	static int init;
	static char out[64];
	struct pdf_opts o;
	struct pdf_info info;
	char err[256];
	int fd;

	if (!init) {
		g_mime_init();
		snprintf(out, sizeof(out), "/tmp/fuzz_pdf.%d.pdf", (int)getpid());
		init = 1;
	}
	if ((fd = memfd_create("fuzz_pdf", MFD_CLOEXEC)) == -1)
		abort();
	if (len > 0 && write(fd, data, len) != (ssize_t)len)
		abort();
	lseek(fd, 0, SEEK_SET);
	memset(&o, 0, sizeof(o));
	o.password = "fuzz-password-1234";
	o.owner_password = "fuzz-owner-password";
	o.reply_url = "https://portal.example/pdf/0123";
	o.max_text = 64 * 1024;
	o.max_attach = 256 * 1024;
	if (pdf_build(fd, &o, out, &info, err, sizeof(err)) == -1) {
		fprintf(stderr, "pdf_build: %s\n", err);
		abort();
	}
	close(fd);
	unlink(out);
	return 0;
}
