/*
 * The outbox sender: a thread that sends what the portal generates
 * (notifications, PDFs, replies, read receipts) from the durable outbox
 * table through the configured relay, with exponential backoff, giving up
 * after a configured time. It never runs on the ingest event loop; new
 * rows wake it, and it also polls so rows added by postern-cli are sent.
 */
#ifndef PORTAL_OUTBOX_H
#define PORTAL_OUTBOX_H

#include <stdint.h>

#include "outbox/notify.h"
#include "smtp_client.h"
#include "store/store.h"

struct outbox_conf {
	struct smtp_client_target target;
	/* Replies and read receipts: the organisation's own mail server. */
	struct smtp_client_target reply_target;
	int			 reply_set;	/* else target takes them */
	struct notify_conf	 notify;
	const char		*dbpath;	/* for the property lookups */
	const char		*spool_dir;	/* notifications are built here */
	int64_t			 retry_initial;	/* seconds */
	int64_t			 retry_max;
	int64_t			 give_up;
	int64_t			 token_lifetime;
	int			 poll;		/* seconds between scans */
};

struct outbox;

/* Starts the sender thread; fatal if it cannot. */
struct outbox	*outbox_start(struct store *, const struct outbox_conf *);
void		 outbox_wake(struct outbox *);
void		 outbox_stop(struct outbox *);
/* Seconds to wait before attempt number attempts+1 (attempts >= 1). */
int64_t		 outbox_backoff(const struct outbox_conf *, int attempts);

#endif
