/*
 * libFuzzer target: address parsing and the rewrite codec. Any input must
 * parse or be refused without a crash, and whatever rewrites must revert
 * to the canonical form of the original.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "addr.h"

#define RELAY "relay-to-webmail.private"

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char in[ADDR_MAX + 1], rw[ADDR_MAX * 2], back[ADDR_MAX * 2];
	char canon[ADDR_MAX * 2];
	struct addr a;
	const char *why;

	if (size == 0 || size > ADDR_MAX)
		return 0;
	memcpy(in, data + 1, size - 1);
	in[size - 1] = '\0';
	for (int utf8 = 0; utf8 <= 1; utf8++) {
		if (addr_parse(in, utf8, &a, &why) == -1)
			continue;
		if (addr_format(&a, canon, sizeof(canon)) == -1)
			continue;
		if (addr_rewrite(in, RELAY, utf8, rw, sizeof(rw), &why) == -1)
			continue;
		if (addr_revert(rw, RELAY, utf8, back, sizeof(back), &why) == -1)
			abort();	/* a rewrite that does not revert */
		if (strcmp(back, canon) != 0)
			abort();	/* round trip changed the address */
	}
	/* Revert arbitrary input too. */
	(void)addr_revert(in, RELAY, data[0] & 1, back, sizeof(back), &why);
	return 0;
}
