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
struct db;
struct props;

struct gateway {
	const char		*hostname;	/* in DSNs */
	const char		*dbpath;
	const char		*spool_dir;
	size_t			 max_header;
	const char		*tunnel_signer;	/* keyd signer or NULL */
	struct keyd_client	*keyd;
	X509_STORE		*trust;		/* recipient cert anchors */
	struct relay		*relay;
};

/*
 * smtp_server_ops callbacks; arg is a struct gateway. gateway_rcpt refuses
 * at RCPT what needs no content: the portal relay domain (550 5.1.1) and
 * recipients the policy refuses whatever the message (550 5.7.1).
 */
int	gateway_rcpt(void *arg, const struct smtp_txn *, const char *addr,
	    char *reply, size_t replylen);
void	gateway_message(void *arg, struct smtp_txn *);

/* The calling thread's database handles (opened on first use). */
/* Sets the allocator for the worker threads; call before they start. */
void		 gateway_malloc_init(void);
struct props	*gateway_props(struct gateway *);
struct db	*gateway_db(struct gateway *);

#endif
