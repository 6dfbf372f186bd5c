/*
 * The portal's end of the add-on tunnel: mail for webmail-recipient is
 * decrypted, checked (signature, manifest, time, replay) and stored for
 * the recipients its manifest lists; see tunnel_in.c.
 */
#ifndef PORTAL_TUNNEL_IN_H
#define PORTAL_TUNNEL_IN_H

#include <stddef.h>

struct ingest;
struct smtp_txn;

/*
 * RCPT: 1 when addr is the tunnel recipient and accepted, -1 refused
 * (reply set: a second recipient beside the tunnel, no tunnel key, or
 * require-tunnel refusing any other recipient), 0 not the tunnel's
 * business (split mode goes on).
 */
int	tunnel_in_rcpt(struct ingest *, const struct smtp_txn *,
	    const char *addr, char *reply, size_t replylen);
/* DATA: 1 when txn was tunnel mail and is answered, 0 when not. */
int	tunnel_in_message(struct ingest *, struct smtp_txn *);

#endif
