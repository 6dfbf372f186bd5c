/*
 * libFuzzer target for the add-on tunnel's readers (shared/tunnel.c): the
 * manifest parser and the fixed-layout reader of the decrypted entity.
 * The first byte picks which. Invariants: a parsed manifest has 1 to
 * TUNNEL_MAX_RCPTS recipients, a 32-hex id, a 64-hex digest and a known
 * route, and formats back to exactly the bytes it was parsed from; a
 * refused input always says why; an unpacked entity's parts lie within
 * their limits.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tunnel.h"

static void
fuzz_manifest(const char *p, size_t len)
{
	struct tunnel_manifest m;
	const char *why = NULL;
	char *again;

	if (tunnel_manifest_parse(p, len, &m, &why) == -1) {
		if (why == NULL)
			abort();
		return;
	}
	if (m.nrcpts == 0 || m.nrcpts > TUNNEL_MAX_RCPTS ||
	    strlen(m.id) != TUNNEL_ID_LEN || strlen(m.sha256) != 64 ||
	    (m.route != TUNNEL_ROUTE_WEBMAIL && m.route != TUNNEL_ROUTE_PDF))
		abort();
	/* Numbers may carry leading zeros; only canonical text round-trips. */
	if ((again = tunnel_manifest_format(&m)) == NULL)
		abort();
	if (strlen(again) == len && memcmp(again, p, len) != 0)
		abort();
	free(again);
	tunnel_manifest_free(&m);
}

static void
fuzz_entity(const uint8_t *p, size_t len)
{
	struct tunnel_parts parts;
	const char *why = NULL;
	char sha[65];
	FILE *in, *out;

	if ((in = fmemopen((void *)p, len, "r")) == NULL)
		return;
	if (tunnel_unpack(in, &parts, &why) == -1) {
		if (why == NULL)
			abort();
		fclose(in);
		return;
	}
	if (parts.manifest_len > TUNNEL_MAX_MANIFEST ||
	    (parts.sig != NULL && parts.sig_len > TUNNEL_MAX_SIG * 2) ||
	    strlen(parts.boundary) == 0)
		abort();
	if ((out = fopen("/dev/null", "w")) != NULL) {
		(void)tunnel_copy_message(in, parts.boundary, len % 4096, out,
		    sha, &why);
		fclose(out);
	}
	tunnel_parts_free(&parts);
	fclose(in);
}

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0)
		return 0;
	if (data[0] & 1)
		fuzz_entity(data + 1, size - 1);
	else
		fuzz_manifest((const char *)data + 1, size - 1);
	return 0;
}
