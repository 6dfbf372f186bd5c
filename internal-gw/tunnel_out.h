/*
 * The gateway's end of the add-on tunnel (shared/tunnel.h): with the
 * global property webmail-tunnel-enabled, each portal copy leaves as one
 * S/MIME message from webmail-sender to webmail-recipient that holds the
 * original message and a manifest signed with the webmail sender key
 * (through keyd), encrypted to the portal's webmail recipient certificate.
 */
#ifndef POSTERN_TUNNEL_OUT_H
#define POSTERN_TUNNEL_OUT_H

struct db;

#include <stddef.h>
#include <stdio.h>

#include <openssl/x509.h>

#include "tunnel.h"

struct keyd_client;
struct props;

struct tunnel_out {
	char	*sender;	/* webmail-sender */
	char	*recipient;	/* webmail-recipient */
};

/*
 * The tunnel settings: 1 with *t filled in (free with tunnel_out_free)
 * when webmail-tunnel-enabled is true, 0 when it is off, -1 when the
 * database failed or the addresses are not set (logged).
 */
int	tunnel_out_settings(struct props *, struct tunnel_out *);
void	tunnel_out_free(struct tunnel_out *);

/*
 * The portal's webmail recipient certificate: an imported certificate
 * without a key that names recipient, valid now, allowed to encipher keys;
 * the newest such. NULL when there is none (err says why).
 */
X509	*tunnel_out_cert(struct db *, const char *recipient, char *err,
	    size_t errlen);

/*
 * Writes the tunnel message for the message in (CRLF lines) to out: the
 * manifest for route and rcpts (as the portal delivers them), signed by
 * keyd as t->sender for the tunnel, the whole encrypted to cert, in one
 * pass over the message after the one that hashes it; no plaintext goes
 * to a file. The tunnel id is derived from seed (tunnel_id_derive), or
 * random when seed is NULL, and goes to id. Returns 0, or -1 with a
 * reason in err.
 */
int	tunnel_out_build(struct keyd_client *, const struct tunnel_out *,
	    X509 *cert, enum tunnel_route, const char *const *rcpts,
	    size_t nrcpts, const char *seed, const char *msgid, FILE *in,
	    FILE *out, char id[TUNNEL_ID_LEN + 1], char *err, size_t errlen);

/* The webmail-sender the node starts with (keyd's tunnel signer), or
 * NULL when it is not set or the database cannot be read. */
char	*tunnel_out_signer(const char *dbpath);

#endif
