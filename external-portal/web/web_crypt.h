/*
 * Encrypted storage in the web worker (web_crypt.c): sealed message files
 * read through a seekable GMime stream that decrypts as it reads, with
 * the content-encryption key unwrapped by the key holder; and the "locked"
 * state, in which every page answers 503.
 */
#ifndef PORTAL_WEB_CRYPT_H
#define PORTAL_WEB_CRYPT_H

#include <stdint.h>

#include <gmime/gmime.h>

struct pkeyd_client;
struct store_msg;
struct web_req;

/* The key holder's storage channel; NULL: storage encryption is off. */
void		 web_crypt_init(struct pkeyd_client *);
/* 1 while the storage keys are locked (then answer 503), else 0. */
int		 web_crypt_locked(void);
/* The plain "temporarily unavailable" page of the locked state. */
void		 web_crypt_page_locked(struct web_req *);
/*
 * The message file at path as a GMime stream of its plaintext, sealed or
 * not; *size its plaintext size. NULL (logged) on failure.
 */
GMimeStream	*web_crypt_open(const char *path, int64_t *size);
/*
 * A listed message's sealed From and Subject (m->sealed_meta) opened
 * into m->hdr_from and m->subject with its file's CEK (web_cek.h cache,
 * else pkeyd). 0 (also when nothing is sealed), or -1 (logged; both stay
 * NULL).
 */
int		 web_crypt_meta(struct store *, struct store_msg *);

#endif
