/*
 * The internal gateway's message pipeline: strip forged triggers, decide per
 * recipient, build each variant (plain, signed, encrypted, portal copy) and
 * relay them, answering only when every variant was accepted.
 */
#ifndef POSTERN_GATEWAY_H
#define POSTERN_GATEWAY_H

#include <stddef.h>
#include <openssl/x509_vfy.h>

struct keyd_client;
struct relay;
struct smtp_txn;
struct sqlite3;
struct props;

struct gateway {
	const char		*dbpath;
	const char		*spool_dir;
	size_t			 max_header;
	const char		*tunnel_signer;	/* keyd signer or NULL */
	struct keyd_client	*keyd;
	X509_STORE		*trust;		/* recipient cert anchors */
	struct relay		*relay;
};

/* smtp_server_ops callbacks; arg is a struct gateway. */
void	gateway_message(void *arg, struct smtp_txn *);

/* The calling thread's database handles (opened on first use). */
struct props	*gateway_props(struct gateway *);
struct sqlite3	*gateway_db(struct gateway *);

/* The header field names treated as triggers (forged ones are removed). */
size_t	gateway_trigger_names(struct props *, char names[][256], size_t max);

#endif
