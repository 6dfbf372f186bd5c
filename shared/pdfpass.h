/*
 * Passwords for encrypted PDFs: random, from an alphabet without
 * characters that look alike (no 0/O/o, 1/l/I/i, no capitals at all), so
 * a recipient can copy one by hand. Shown in groups of PDFPASS_GROUP for
 * reading; the password itself has no separators.
 */
#ifndef POSTERN_PDFPASS_H
#define POSTERN_PDFPASS_H

#include <stddef.h>

/* 8 digits and 23 lower-case letters: log2(31) = 4.95 bits a character. */
#define PDFPASS_ALPHABET	"23456789abcdefghjkmnpqrstuvwxyz"
#define PDFPASS_LEN		20	/* about 99 bits */
#define PDFPASS_GROUP		4
/* Room for the password, its group separators and the NUL. */
#define PDFPASS_SHOWN_MAX	(PDFPASS_LEN + PDFPASS_LEN / PDFPASS_GROUP + 1)

/*
 * Writes a fresh password of len characters (len >= 16) and a NUL into
 * out (outlen > len). 0, or -1 when the RNG failed or len is out of
 * range.
 */
int	 pdfpass_generate(char *out, size_t outlen, size_t len);
/* Bits of entropy of a generated password of len characters. */
double	 pdfpass_bits(size_t len);
/* "abcd efgh ..." (sep between groups) into out; truncates to fit. */
void	 pdfpass_group(const char *pw, char sep, char *out, size_t outlen);

#endif
