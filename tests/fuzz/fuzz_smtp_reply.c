/*
 * libFuzzer target for the SMTP client's reply parser, which reads what a
 * next hop (or anyone answering on its address) sends. The first byte
 * says whether the replies answer EHLO (odd) or another command (even);
 * the rest arrives on a socket that is then closed. Invariants: no
 * overrun, a reply counted as well formed has a code from 200 to 599, and
 * its text is a terminated string of the buffer's size at most.
 */
#include <sys/socket.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "smtp_client.h"

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct smtp_client_replies r;
	int sv[2], ehlo;
	size_t off = 0;
	ssize_t n;

	/* More than a socket buffer would block the write below. */
	if (size < 1 || size > 65536)
		return 0;
	ehlo = data[0] & 1;
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == -1)
		abort();
	while (off < size - 1) {
		n = write(sv[1], data + 1 + off, size - 1 - off);
		if (n <= 0)
			abort();
		off += (size_t)n;
	}
	close(sv[1]);
	smtp_client_read_replies(sv[0], ehlo, &r);
	close(sv[0]);
	if (r.count < 0)
		abort();
	if (r.count > 0 && (r.code < 200 || r.code > 599))
		abort();
	if (memchr(r.text, '\0', sizeof(r.text)) == NULL)
		abort();
	return 0;
}
