/*
 * OpenPGP packet framing (see pgp_packet.h).
 *
 * SECURITY: reads hostile bytes (mail from outside, key files): every
 * length is compared with what is left before it is used; indeterminate
 * old-format lengths are refused.
 */
#include "pgp_packet.h"

int
pgp_packet_next(const unsigned char *p, size_t len, size_t *off, int *tag,
    const unsigned char **body, size_t *blen, int ok_partial)
{
	size_t o = *off, n = 0, hl;
	unsigned char c;

	if (o >= len)
		return 1;
	c = p[o++];
	if (!(c & 0x80))
		return -1;
	if (c & 0x40) {
		*tag = c & 0x3f;
		if (o >= len)
			return -1;
		if (p[o] < 192) {
			n = p[o];
			hl = 1;
		} else if (p[o] < 224) {
			if (o + 1 >= len)
				return -1;
			n = ((size_t)(p[o] - 192) << 8) + p[o + 1] + 192;
			hl = 2;
		} else if (p[o] == 255) {
			if (len - o < 5)
				return -1;
			n = (size_t)p[o + 1] << 24 | (size_t)p[o + 2] << 16 |
			    (size_t)p[o + 3] << 8 | p[o + 4];
			hl = 5;
		} else {
			if (!ok_partial)
				return -1;
			*body = p + o + 1;
			*blen = (size_t)-1;
			*off = len;
			return 0;
		}
	} else {
		*tag = (c >> 2) & 0x0f;
		if ((c & 3) == 3) {
			if (!ok_partial)
				return -1;
			*body = p + o;
			*blen = (size_t)-1;
			*off = len;
			return 0;
		}
		hl = (size_t)1 << (c & 3);
		if (len - o < hl)
			return -1;
		for (size_t i = 0; i < hl; i++)
			n = n << 8 | p[o + i];
	}
	o += hl;
	if (n > len - o)
		return -1;
	*body = p + o;
	*blen = n;
	*off = o + n;
	return 0;
}
