/*
 * The inbound path: mail for recipients with locality = internal. An
 * S/MIME message is decrypted when keyd holds a key of one of them, its
 * signature is verified, the result is written into X-Postern-Signature
 * and X-Postern-Encrypted (copies from outside are removed first), subject
 * tags are added on request, and the certificates of a valid signature
 * are harvested into the certificate store.
 */
#ifndef POSTERN_INBOUND_H
#define POSTERN_INBOUND_H

#include <stddef.h>

struct gateway;
struct props;

#define INBOUND_OK	0
#define INBOUND_LOCAL	(-1)	/* 4xx: try again */
#define INBOUND_REJECT	(-2)	/* 5xx: the reason is in note */

/*
 * Processes the message in (triggers already stripped) for the internal
 * recipients rcpts into a new spool file, whose path goes to out (empty
 * on failure). note gets text for the log line ("; ..."), or the reason
 * of a refusal.
 */
int	inbound_process(struct gateway *, struct props *, const char *msgid,
	    const char *in, char *const *rcpts, size_t nrcpts, char *out,
	    size_t outlen, char *note, size_t notelen);

#endif
