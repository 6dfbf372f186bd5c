/*
 * The skeleton of a CMS EnvelopedData or AuthEnvelopedData read from a
 * file: everything but the encrypted content, which is streamed into a
 * second file. OpenSSL parses a whole ContentInfo in memory; splitting the
 * content off lets OpenSSL parse the small rest (recipients, algorithm,
 * MAC) while the content, of any size, is decrypted from the file as
 * detached content.
 */
#ifndef POSTERN_CMSSKEL_H
#define POSTERN_CMSSKEL_H

#include <stddef.h>
#include <stdio.h>

#include "buf.h"

#define CMSSKEL_MAX_DEPTH	16		/* BER nesting */
#define CMSSKEL_MAX_SKEL	(512 * 1024)	/* bytes without content */

enum cmsskel_type {
	CMSSKEL_OTHER = 0,
	CMSSKEL_ENVELOPED,
	CMSSKEL_AUTH_ENVELOPED,
	CMSSKEL_SIGNED,
};

struct cmsskel {
	enum cmsskel_type type;
	struct buf	 oid;		/* contentType element */
	struct buf	 pre;		/* children before recipientInfos */
	struct buf	 ris;		/* RecipientInfo elements, concatenated */
	size_t		*rioff, *rilen;
	size_t		 nri;
	struct buf	 post;		/* contentless ECI and later children */
	unsigned long long content_len;	/* bytes written to the content file */
};

/*
 * Reads the ContentInfo (DER or BER) from in. For the two enveloped types
 * the encrypted content goes to content (raw ciphertext bytes) and the
 * rest into sk. Other types only set sk->type (the rest is not read).
 * At most maxri recipients. Returns 0, or -1 with a reason in why
 * (malformed, truncated, too deep, too many recipients, too large, or an
 * I/O error writing content).
 */
int	cmsskel_read(FILE *in, FILE *content, size_t maxri, struct cmsskel *,
	    const char **why);
/* The contentType of the ContentInfo at in's position (it moves). */
enum cmsskel_type cmsskel_peek(FILE *in);
/* Same from memory, discarding the content (the fuzz target). */
int	cmsskel_read_mem(const unsigned char *, size_t, size_t maxri,
	    struct cmsskel *, const char **why);
/*
 * A DER ContentInfo of the skeleton without content: with every
 * recipient (only < 0) or only recipient number only. Caller frees *out.
 */
void	cmsskel_der(const struct cmsskel *, long only, unsigned char **out,
	    size_t *outlen);
void	cmsskel_free(struct cmsskel *);

#endif
