/*
 * libFuzzer target for keyd's request parsing: the input is a stream of
 * frames (struct keyholder_hdr, payload) as the SMTP worker would write
 * them on a channel. The first byte picks the channel's limit (signing or
 * TLS) and the RSA modulus size for the TLS checks. Each frame goes
 * through keyholder_frame() with the channel's limit, then SIGN payloads
 * through keyd_parse_sign() and TLS_RSA inputs through
 * keyd_tls_rsa_allowed(). Invariants: nothing reads past a frame, a frame
 * longer than the limit is refused, and a parsed SIGN request has a
 * signer and a log id of the allowed lengths without NUL, space or
 * control bytes, and a digest inside its frame.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/rsa.h>

#include "keyholder.h"
#include "../../internal-gw/keyd.h"

static void
fuzz_sign(const unsigned char *p, size_t len)
{
	struct keyd_sign_req r;
	const char *why = NULL;
	size_t sl, il;

	if (keyd_parse_sign(p, len, &r, &why) == -1) {
		if (why == NULL)
			abort();
		return;
	}
	sl = strlen(r.signer);
	il = strlen(r.msgid);
	if (sl == 0 || sl > KEYD_MAX_SIGNER || il == 0 || il > KEYD_MAX_MSGID)
		abort();
	if (r.md < p || r.md + KEYD_DIGEST_LEN != p + len)
		abort();
	for (size_t i = 0; i < il; i++)
		if (r.msgid[i] <= ' ' || r.msgid[i] > '~')
			abort();
	if (r.purpose != KEYD_PURPOSE_MAIL && r.purpose != KEYD_PURPOSE_TUNNEL)
		abort();
}

static void
fuzz_tls(const unsigned char *p, size_t len, int modbits)
{
	uint32_t v[2];
	unsigned char *copy;

	if (len < sizeof(v))
		return;
	memcpy(v, p, sizeof(v));
	/* An exact-size copy, so ASan sees any read past the input. */
	copy = malloc(len - sizeof(v) + 1);
	memcpy(copy, p + sizeof(v), len - sizeof(v));
	(void)keyd_tls_rsa_allowed((int)v[1], copy, len - sizeof(v), modbits);
	(void)keyd_tls_rsa_allowed(RSA_NO_PADDING, copy, len - sizeof(v),
	    modbits);
	(void)keyd_tls_rsa_allowed(RSA_PKCS1_PADDING, copy, len - sizeof(v),
	    modbits);
	free(copy);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const int bits[4] = { 2048, 2047, 3072, 4096 };
	struct keyholder_hdr h;
	unsigned char *frame;
	size_t max, off = 1;
	int tls, modbits;

	if (size < 1)
		return 0;
	tls = data[0] & 1;
	modbits = bits[(data[0] >> 1) & 3];
	max = tls ? KEYD_MAX_TLS_REQ : KEYD_MAX_SIGN_REQ;
	while (off < size) {
		if (keyholder_frame(data + off, size - off, max, &h) == -1) {
			if (size - off >= sizeof(h) && h.len <= max)
				abort();
			return 0;
		}
		off += sizeof(h);
		if (h.len > size - off)
			return 0;
		frame = malloc(h.len + 1);
		memcpy(frame, data + off, h.len);
		if (!tls && h.type == 1)
			fuzz_sign(frame, h.len);
		else if (tls)
			fuzz_tls(frame, h.len, modbits);
		free(frame);
		off += h.len;
	}
	return 0;
}
