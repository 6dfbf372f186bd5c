/* Fuzzes the portal's recipient decoding (addr_revert via ingest_owner):
 * any RCPT address from the gateway must decode or be refused, and what
 * decodes must be a valid address. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "addr.h"
#include "ingest/ingest.h"

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char in[1024], out[2 * ADDR_MAX + 2];
	const char *why;
	struct addr a;

	if (size >= sizeof(in) || size < 1)
		return 0;
	memcpy(in, data + 1, size - 1);
	in[size - 1] = '\0';
	if (ingest_owner(in, "relay-to-webmail.private", data[0] & 1,
	    (data[0] >> 1) & 1, out, sizeof(out), &why) == 0 &&
	    addr_parse(out, 1, &a, &why) != 0)
		abort();
	return 0;
}
