/*
 * Encrypted storage for what the web worker stores itself (web_seal.c):
 * the Sent-folder copy of a reply or new message is sealed like an
 * ingested message, its file to the storage certificates and its row's
 * From (here: the recipients) and Subject with the same content key.
 * Sealing is public-key encryption: the web worker needs the
 * certificates only, never a private key.
 */
#ifndef PORTAL_WEB_SEAL_H
#define PORTAL_WEB_SEAL_H

struct store;
struct store_crypt;
struct store_msg;
struct store_tmp;

/*
 * The storage certificates (portal_storage_crypt), taken over; NULL:
 * storage encryption is off and web_seal_msg leaves everything plain.
 */
void	web_seal_init(struct store_crypt *);
/* 1 when what the web stores is sealed. */
int	web_seal_on(void);
/*
 * With storage encryption on: replaces the plain temp file t by a sealed
 * one and moves m->hdr_from and m->subject into a new m->sealed_meta
 * (the caller frees it), setting both to NULL. Off: changes nothing.
 * 0, or -1 (logged; m unchanged, t to be discarded).
 */
int	web_seal_msg(struct store *, struct store_tmp *t, struct store_msg *m);

#endif
