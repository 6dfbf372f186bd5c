/*
 * Base64 decoding, sixteen digits at a time where the CPU can (SSSE3).
 * A helper of the table decoders of the callers: it decodes the long
 * runs of whole groups of digits and line breaks, and leaves everything
 * else ('=', junk, a group cut short, the last bytes) to them.
 */
#ifndef POSTERN_B64_H
#define POSTERN_B64_H

#include <stddef.h>

/*
 * Decodes base64 digits from in (n bytes) into out in whole groups of
 * four, 16 digits a load, skipping CR and LF between groups, and stops
 * before the first group that holds any other byte ('=', junk, a group
 * cut by a line break) or within the last 15 bytes. Sets *used to the
 * bytes consumed (0 without SSSE3) and returns the bytes written. out
 * needs room for n bytes (a whole block's store is 16 bytes wide) and
 * may be in itself at or before in: a block is loaded before anything
 * is stored, and no store reaches past the bytes consumed.
 */
size_t	b64_decode_blocks(const unsigned char *in, size_t n,
	    unsigned char *out, size_t *used);

#endif
