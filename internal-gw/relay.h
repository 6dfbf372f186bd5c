/*
 * Relaying the gateway's variants to their next hops (transport map, TLS
 * policy per next hop), with an idempotency ledger so that a message the
 * sender's MTA retries after a partial failure does not reach anybody
 * twice. Blocking (outbound SMTP): call from worker threads only.
 */
#ifndef POSTERN_RELAY_H
#define POSTERN_RELAY_H

#include <limits.h>
#include <stddef.h>
#include <time.h>

#include "smtp_client.h"

struct relay_tls_policy {
	char			nexthop[300];	/* "[host]:port" as in the map */
	enum smtp_client_tls	level;
	char			ca_file[PATH_MAX]; /* "": relay_conf.ca_file */
};

struct relay_conf {
	const char		*transport_map;	/* path */
	const char		*default_tls;	/* none|may|encrypt; NULL: may */
	const char		*ca_file;	/* trust for encrypt; NULL: system */
	const char		*cert_file;	/* client certificate, or NULL */
	const char		*key_file;
	EVP_PKEY		*client_key;	/* instead of key_file (keyd) */
	const char		*helo;
	int			 timeout;	/* seconds per SMTP step */
	const char		*dbpath;	/* holds table relay_ledger */
	long long		 ledger_ttl;	/* seconds an entry is kept;
						 * 0: RELAY_LEDGER_TTL */
	struct relay_tls_policy	*tls_policy;
	size_t			 ntls_policy;
};

/* A ledger entry relay_send held back instead of writing it. */
struct relay_held {
	const char		*kind;		/* the variant's */
	char			 nexthop[300];
	size_t			 vidx;		/* index into the variant's rcpts */
	time_t			 when;
};

/*
 * The ledger work of one message, shared by its relay_send calls. Most
 * messages are answered 250 (or 5xx) at once, and then their entries
 * would be deleted right after being written: entries of the message's
 * last SMTP transaction are therefore held here, and written by the
 * caller (relay_ledger_record) only when the answer turns out 4xx.
 */
struct relay_hold {
	int			 fresh;	/* in: the ledger has no entry for
					 * msgkey (relay_ledger_known): skip
					 * the per-recipient lookups */
	int			 last;	/* in: this call is the message's
					 * last; hold its last transaction */
	size_t			 recorded;	/* out: entries written */
	struct relay_held	*held;		/* out: entries held */
	size_t			 nheld;
};

struct relay_variant {
	const char		*kind;	/* "portal-webmail", "smime", ... */
	const char		*path;	/* message file, CRLF lines */
	const char		*head;	/* NULL, or header lines sent ahead
					 * of the file (smtp_client_msg) */
	const char		*from;
	const char *const	*rcpts;
	size_t			 nrcpts;
	int			 smtputf8, body_8bit;
	struct relay_hold	*hold;	/* NULL: write every entry at once */
};

/* The upstream retry window by default: Postfix gives up after 5 days. */
#define RELAY_LEDGER_TTL	(120 * 3600)

struct relay;

/* Loads the transport map, checks the policies, creates the ledger table. */
struct relay	*relay_new(const struct relay_conf *, char **err);
void		 relay_free(struct relay *);

/*
 * Sends one variant, split by next hop. codes[i]/replies[i] get the final
 * answer for rcpts[i]: 2xx delivered (or delivered by an earlier attempt
 * of the same transaction: the ledger entry for (msgkey, kind, next hop,
 * recipient) is younger than the TTL, and then nothing is sent to that
 * recipient again), 4xx/5xx refused or failed; a ledger error is 451.
 * Delivered recipients are recorded, or held in v->hold (see struct
 * relay_hold). Returns 0 when every code is set, -1 when the relay could
 * not run at all (ledger unusable; codes 0).
 */
int		 relay_send(struct relay *, const char *msgkey,
		    const struct relay_variant *, int *codes,
		    char (*replies)[512]);

/* The next hop ("[host]:port") the transport map gives rcpt; -1: no route. */
int		 relay_nexthop(const struct relay *, const char *rcpt, char *out,
		    size_t outlen);

/*
 * The ledger key of a message: hex SHA-256 over the envelope sender and
 * the bytes of the message as received (the spool file, before anything
 * is stripped or rewritten), so two submissions that differ anywhere never
 * share a key. An unreadable file gives a random key (never a match).
 */
void		 relay_msgkey(const char *from, const char *path, char out[65]);

/* The ledger itself, for tests and housekeeping; -1 on database errors. */
int		 relay_ledger_delivered(struct relay *, const char *msgkey,
		    const char *kind, const char *nexthop, const char *rcpt,
		    time_t now);	/* 1 yes, 0 no */
int		 relay_ledger_record(struct relay *, const char *msgkey,
		    const char *kind, const char *nexthop, const char *rcpt,
		    time_t when);
int		 relay_ledger_purge(struct relay *, time_t now);
/* 1 when the ledger holds some entry for msgkey, 0 when none. */
int		 relay_ledger_known(struct relay *, const char *msgkey);
void		 relay_hold_clear(struct relay_hold *);
/*
 * The answer for msgkey is final (2xx or 5xx to the sender's MTA, which
 * will not retry): drop its entries, for rcpt (as relayed) or all (NULL).
 */
int		 relay_ledger_forget(struct relay *, const char *msgkey,
		    const char *rcpt);

#endif
