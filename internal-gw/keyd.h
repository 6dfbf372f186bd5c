/*
 * The key holder: the one internal-gw process that loads private keys.
 * The parent spawns it over a socketpair before it starts any thread; the
 * child serves typed, length-bounded requests (SIGN, SIGNERS, RELOAD) and
 * never touches the network. Everything else, the SMTP worker included,
 * reaches the keys only through a struct keyd_client.
 */
#ifndef POSTERN_KEYD_H
#define POSTERN_KEYD_H

#include <stddef.h>
#include <sys/types.h>

#define KEYD_MAX_SIGNER	512			/* bytes of a signer address */
#define KEYD_MAX_DATA	(256UL * 1024 * 1024)	/* bytes to sign */

/*
 * Forks the key holder. It loads every "<fingerprint>.pem" in keys_dir (a
 * private key, its certificate and chain certificates, as `postern-cli cert
 * import` writes them), drops to user when run as root (NULL: stays), and
 * serves requests on the other end of *client_fd. Call before starting
 * threads. Returns the child's pid, or -1 (log_warn) when it cannot fork.
 */
pid_t	keyd_spawn(const char *keys_dir, const char *user, int *client_fd);

struct keyd_client;

/* Wraps the parent's end of the socketpair; safe to share among threads. */
struct keyd_client	*keyd_client_new(int fd);
/* Closes the socket (the key holder then exits) and frees. */
void			 keyd_client_free(struct keyd_client **);

/*
 * Signs data as signer: a detached CMS SignedData (SHA-256) in DER with the
 * signer certificate and its chain, in *der (caller frees). Returns 0, or -1
 * with a reason in err: no key for the signer, or the key holder is gone.
 */
int	keyd_sign(struct keyd_client *, const char *signer, const void *data,
	    size_t len, unsigned char **der, size_t *derlen, char *err,
	    size_t errlen);
/* 1 when the key holder has a key for signer, 0 when not, -1 when gone. */
int	keyd_can_sign(struct keyd_client *, const char *signer);
/*
 * The addresses the key holder can sign for: a NULL-terminated array of
 * strings, freed with keyd_signers_free(). Returns the count, or -1.
 */
int	keyd_signers(struct keyd_client *, char ***out);
void	keyd_signers_free(char ***);
/* Re-reads keys_dir; returns the number of keys now loaded, or -1. */
int	keyd_reload(struct keyd_client *);

#endif
