/*
 * The OpenPGP packet framing (RFC 4880 section 4.2), read with every
 * length checked, for the key holder's key files and the worker's view of
 * an encrypted message's top level. Bodies are never interpreted here.
 */
#ifndef POSTERN_PGP_PACKET_H
#define POSTERN_PGP_PACKET_H

#include <stddef.h>

#define PGP_TAG_PKESK		1
#define PGP_TAG_SIG		2
#define PGP_TAG_SKESK		3
#define PGP_TAG_SECKEY		5
#define PGP_TAG_PUBKEY		6
#define PGP_TAG_SECSUB		7
#define PGP_TAG_SED		9
#define PGP_TAG_UID		13
#define PGP_TAG_PUBSUB		14
#define PGP_TAG_SEIPD		18
#define PGP_TAG_AEAD		20

/*
 * The next packet of p (len bytes) at *off: its tag, body and the offset
 * past it. With partial lengths allowed (ok_partial), a packet with a
 * partial body length returns its header only: *body points at the first
 * chunk and *blen is (size_t)-1; the caller then takes the rest of p.
 * Returns 0, 1 at the end, -1 when malformed.
 */
int	pgp_packet_next(const unsigned char *p, size_t len, size_t *off,
	    int *tag, const unsigned char **body, size_t *blen,
	    int ok_partial);

#endif
