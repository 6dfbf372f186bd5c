/*
 * The SMTP worker's cache of the certificates of the decryption keys keyd
 * holds, per address, so that picking the RecipientInfo to unwrap costs no
 * request to keyd and no certificate parsing per message. The cache is
 * only a hint: keyd decides in UNWRAP whether a key opens a
 * RecipientInfo, and the caller refreshes an entry (one CERTS request)
 * when the cached certificates match no RecipientInfo or keyd refused.
 */
#ifndef POSTERN_KEYCACHE_H
#define POSTERN_KEYCACHE_H

#include <openssl/x509.h>

struct keyd_client;

/*
 * The certificates of addr's keys: from the cache, or (when absent or
 * refresh is set) from keyd, then cached. A NULL-terminated array of
 * references in *out, freed with keyd_certs_free(); *cached tells
 * whether it came from the cache. Returns the count, or -1 when the key
 * holder is gone.
 */
int	keycache_get(struct keyd_client *, const char *addr, int refresh,
	    X509 ***out, int *cached);

#endif
