/*
 * PDF Messenger with a one-time password: a thread next to the outbox
 * sender that turns each stored PDF-OTP message into a PDF encrypted with
 * a fresh password (shared/pdf.c), mails it to the recipient through the
 * outbox (from the notification sender, with text and HTML parts that
 * say where the password is: <base>/pdf/<token>) and, once the relay has
 * accepted that mail, deletes the message's content, keeping the
 * password for the portal's password page. A message that cannot be
 * rendered is tried again, then reported to its sender; so is a PDF mail
 * the relay refuses or that times out in the outbox.
 */
#ifndef PORTAL_PDFOTP_H
#define PORTAL_PDFOTP_H

#include <stdint.h>

#include "outbox/notify.h"
#include "store/store.h"

struct outbox;

struct pdfotp_conf {
	const char		*dbpath;
	const char		*spool_dir;	/* PDF mails and reports */
	struct notify_conf	 notify;	/* sender, base_url, hostname */
	int64_t			 retry;		/* seconds before a new try */
	int			 attempts;	/* renders before giving up */
	int64_t			 token_lifetime; /* sign-up links */
	int			 poll;		/* seconds between scans */
	struct outbox		*outbox;	/* woken for each PDF mail */
};

struct pdfotp;

/* Starts the thread; fatal if it cannot. */
struct pdfotp	*pdfotp_start(struct store *, const struct pdfotp_conf *);
void		 pdfotp_wake(struct pdfotp *);
void		 pdfotp_stop(struct pdfotp *);

/*
 * The outbox finished the raw message at o->path: ok when the relay
 * accepted it. For a PDF mail: accepted, the content goes; refused or
 * given up, a report goes to the original sender. Other files: nothing.
 */
void		 pdfotp_outbox_done(struct store *, const char *spool_dir,
		    const struct notify_conf *, const struct store_outbox *o,
		    int ok);

#endif
