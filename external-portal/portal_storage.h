/* Encrypted storage in the daemon's start-up (portal_storage.c). */
#ifndef PORTAL_STORAGE_H
#define PORTAL_STORAGE_H

#include "config.h"

struct pkeyd_conf;
struct store_crypt;

/* storage_encryption is configured and enabled. */
int	 portal_storage_on(const struct conf *);
/*
 * POSTERN_STORAGE_PASSWORD, copied (caller cleanses and frees), and wiped
 * from the environment; NULL when unset.
 */
char	*portal_storage_password(void);
/* The storage members of pc (storage_keys: caller frees). */
void	 portal_storage_pkeyd_conf(const struct conf *, struct pkeyd_conf *,
	    const char *password);
/* The certificates new messages are sealed to; NULL when off. */
struct store_crypt *portal_storage_crypt(const struct conf *);
/*
 * Removes the spool files (<id>.spool) a crash left in spool_dir: each is
 * a transaction that was never acknowledged, and it may hold a message in
 * clear. Runs before the workers start; returns how many went.
 */
int	 portal_storage_sweep_spool(const char *spool_dir);
/* --check; prints each problem, -1 on an error. */
int	 portal_storage_check(const struct conf *);

#endif
