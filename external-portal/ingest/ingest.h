/*
 * The portal's ingest: the smtp_server_ops behind the SMTP and LMTP
 * listeners that only the internal gateway may use. It refuses other
 * clients, reverts the recipient rewrite, routes by trigger header
 * (Webmail Messenger, PDF OTP), strips the triggers and stores each
 * recipient's copy durably before answering 250.
 */
#ifndef PORTAL_INGEST_H
#define PORTAL_INGEST_H

#include <pthread.h>
#include <stddef.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "header.h"
#include "smtp_server.h"

struct netaddr_list;
struct outbox;
struct props;
struct store;
struct store_crypt;

struct pdfotp;

struct ingest {
	struct store		*store;
	const char		*dbpath;	/* props_thread(), tunnel_seen */
	struct netaddr_list	*mynetworks;
	const char *const	*pins;		/* gateway cert SHA-256, hex */
	size_t			 npins;
	size_t			 max_header;
	X509			*tunnel_cert;	/* NULL: none configured */
	struct outbox		*outbox;	/* NULL: no wake-ups */
	struct pdfotp		*pdfotp;	/* NULL: no wake-ups */
	/* The add-on tunnel (tunnel_in.c). */
	X509			*tunnel_own_cert; /* the portal's; NULL: none */
	EVP_PKEY		*tunnel_pkey;	/* decrypts through pkeyd */
	/* Encrypted storage: the certificates to seal to; NULL: off. */
	struct store_crypt	*crypt;
};

extern const struct smtp_server_ops ingest_ops;

/*
 * The calling thread's property reader (props_thread()); NULL, which the
 * props_get family reads as a database failure, when it cannot be opened.
 */
struct props	*ingest_props(struct ingest *);

enum ingest_route {
	INGEST_ROUTE_NONE,
	INGEST_ROUTE_WEBMAIL,
	INGEST_ROUTE_PDF,
};

struct ingest_triggers {
	const char	*webmail;	/* "Name: Value" spec */
	int		 webmail_enabled;
	const char	*otp;
	int		 otp_enabled;
};

/* Which trigger the header carries; PDF OTP wins when both do. */
enum ingest_route ingest_classify(const struct header *,
		    const struct ingest_triggers *);

/*
 * The mailbox owner for a recipient: reverted when revert is set and the
 * address is in relay_domain, else the address itself; canonical and
 * folded (addr_fold). -1 with *why when it does not decode or is (still)
 * in relay_domain: the portal has no mailboxes there.
 */
int		 ingest_owner(const char *rcpt, const char *relay_domain,
		    int revert, int utf8, char *out, size_t outlen,
		    const char **why);

/*
 * What the properties say about one recipient: 0 with its mailbox owner,
 * 1 when it has none here (*why), -1 on a database failure.
 */
int		 ingest_lookup(struct ingest *, const char *rcpt, int utf8,
		    char *owner, size_t ownerlen, const char **why);
/* The metadata the web portal lists, from the stored header. */
struct store_msg;
void		 ingest_meta(const struct header *, struct store_msg *);
/*
 * Encrypted storage: From and Subject of m sealed with the message file's
 * CEK into m->sealed_meta (caller frees). 0, or -1 (logged).
 */
int		 ingest_meta_seal(struct store_msg *, const unsigned char *key);

/* Normalises a configured fingerprint (colons dropped, lowercase) into
 * out; -1 unless it is 64 hex digits. */
int		 ingest_pin_parse(const char *in, char out[65]);

#endif
