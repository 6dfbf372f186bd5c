/*
 * Sealing the web worker's own stored copies (web_seal.h). The ingest
 * seals every message it stores; the Sent copy of what a user writes
 * on the portal goes the same way here, so that with storage encryption
 * on nothing the user wrote (body, attachments, recipients' display
 * names, subject) lies in clear in the store directory or the database.
 * The outbox's spool file of the same message is transient and stays
 * plain until the reply relay took it, like the ingest's spool file.
 *
 * SECURITY: the input is a message the web worker built itself from a
 * form it already checked; nothing here parses it. Only the public
 * storage certificates are loaded; the content key chosen for the file
 * is wiped once the row's values are sealed with it.
 */
#include <stdlib.h>

#include <openssl/crypto.h>

#include "store/store.h"
#include "store/store_crypt.h"
#include "web/web_seal.h"

static struct store_crypt	*web_seal_sc;

void
web_seal_init(struct store_crypt *sc)
{
	web_seal_sc = sc;
}

int
web_seal_on(void)
{
	return web_seal_sc != NULL;
}

int
web_seal_msg(struct store *s, struct store_tmp *t, struct store_msg *m)
{
	unsigned char cek[STORE_CRYPT_KEYLEN];
	const char *v[STORE_CRYPT_META_N];
	int rc;

	if (web_seal_sc == NULL)
		return 0;
	if (store_crypt_seal(web_seal_sc, s, t, cek) == -1)
		return -1;
	v[STORE_CRYPT_META_FROM] = m->hdr_from;
	v[STORE_CRYPT_META_SUBJECT] = m->subject;
	rc = store_crypt_meta_seal(cek, v, STORE_CRYPT_META_N,
	    &m->sealed_meta, &m->sealed_metalen);
	OPENSSL_cleanse(cek, sizeof(cek));
	if (rc == -1)
		return -1;
	m->hdr_from = NULL;
	m->subject = NULL;
	return 0;
}
