/*
 * The web worker's cache of content-encryption keys (web_cek.c): the CEK
 * of a sealed message file, by file name, once pkeyd unwrapped it. An
 * inbox page lists 50 messages whose sealed From and Subject each need
 * their file's CEK; with the cache a page costs 50 unwraps the first time
 * and none after, and opening a listed message needs none either.
 */
#ifndef PORTAL_WEB_CEK_H
#define PORTAL_WEB_CEK_H

#include "store/store_crypt.h"

/* Entries kept at most: WEB_CEK_SETS * WEB_CEK_WAYS. */
#define WEB_CEK_SETS	1024
#define WEB_CEK_WAYS	8

/* The CEK of the store file name into key: 0, or -1 when not cached. */
int	web_cek_get(const char *name, unsigned char key[STORE_CRYPT_KEYLEN]);
/* Keeps it, evicting (and wiping) the least recently used of its set. */
void	web_cek_put(const char *name,
	    const unsigned char key[STORE_CRYPT_KEYLEN]);
/* Entries held now (for tests and logs). */
size_t	web_cek_count(void);

#endif
