/*
 * Autocrypt (level 1) on inbound mail: the sender's key from the one
 * Autocrypt header field into the key store (see pgp_in.h).
 *
 * SECURITY: the field comes from outside. Its length is bounded before it
 * is copied, the key data is base64 of at most PGP_IN_MAX_KEYDATA bytes,
 * and librnp parses it in an ffi of its own; only a key that names the
 * From: address and can be encrypted to is stored, and only its public
 * part.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>
#include <rnp/rnp.h>
#include <rnp/rnp_err.h>

#include "addr.h"
#include "header.h"
#include "log.h"
#include "pgp.h"
#include "pgp_in.h"
#include "xmalloc.h"

/*
 * Autocrypt level 1: the one Autocrypt field, for the From: address, its
 * key imported when it is usable and names that address. Attributes other
 * than addr, prefer-encrypt and keydata that do not start with "_" make
 * the field invalid, as the specification says.
 */
void
pgp_autocrypt_import(struct pgp_in_ctx *ctx, const struct header *h)
{
	const struct header_field *ac = NULL;
	char *v, *attr, *save = NULL, addr[320] = "", *err = NULL;
	const char *keydata = NULL;
	unsigned char *key = NULL;
	rnp_ffi_t ffi = NULL;
	rnp_input_t in = NULL;
	int n = 0, bad = 0, klen, imported;

	for (size_t i = 0; i < h->nfields; i++)
		if (strcasecmp(h->fields[i].name, "Autocrypt") == 0) {
			ac = &h->fields[i];
			n++;
		}
	if (n != 1 || ctx->from[0] == '\0' ||
	    strlen(ac->value) > PGP_IN_MAX_KEYDATA * 4 / 3 + 1024)
		return;
	v = xstrdup(ac->value);
	for (attr = strtok_r(v, ";", &save); attr != NULL && !bad;
	    attr = strtok_r(NULL, ";", &save)) {
		char *eq;

		while (*attr == ' ' || *attr == '\t')
			attr++;
		if ((eq = strchr(attr, '=')) == NULL) {
			bad = 1;
			break;
		}
		*eq++ = '\0';
		if (strcmp(attr, "addr") == 0) {
			if (addr_fold(eq, addr, sizeof(addr)) == -1)
				bad = 1;
		} else if (strcmp(attr, "keydata") == 0)
			keydata = eq;
		else if (strcmp(attr, "prefer-encrypt") != 0 && attr[0] != '_')
			bad = 1;
	}
	if (bad || keydata == NULL || strcmp(addr, ctx->from) != 0)
		goto out;
	/* Base64 with folding white space removed. */
	{
		char *b64 = xmalloc(strlen(keydata) + 1);
		size_t bl = 0;

		for (const char *p = keydata; *p != '\0'; p++)
			if (*p != ' ' && *p != '\t' && *p != '\r' && *p != '\n')
				b64[bl++] = *p;
		b64[bl] = '\0';
		key = xmalloc(bl / 4 * 3 + 3);
		klen = bl % 4 == 0 ? EVP_DecodeBlock(key,
		    (unsigned char *)b64, (int)bl) : -1;
		if (klen > 0 && bl >= 2 && b64[bl - 1] == '=')
			klen -= b64[bl - 2] == '=' ? 2 : 1;
		free(b64);
	}
	if (klen <= 0 || klen > PGP_IN_MAX_KEYDATA)
		goto out;
	/* Only a key that names addr and can be encrypted to. */
	if (rnp_ffi_create(&ffi, "GPG", "GPG") != RNP_SUCCESS)
		fatalx("pgp: rnp_ffi_create");
	if (rnp_input_from_memory(&in, key, (size_t)klen, false) !=
	    RNP_SUCCESS || rnp_import_keys(ffi, in, RNP_LOAD_SAVE_PUBLIC_KEYS,
	    NULL) != RNP_SUCCESS)
		goto out;
	if (pgp_keys_usable_in(ffi, addr) != 1) {
		log_info("id=%s Autocrypt key of %s not imported: no usable "
		    "key for the address", ctx->msgid, addr);
		goto out;
	}
	if ((imported = pgp_keys_import_public(ctx->db, key, (size_t)klen,
	    &err)) == -1) {
		log_warnx("id=%s Autocrypt key of %s not imported: %s",
		    ctx->msgid, addr, err);
		free(err);
	} else
		log_info("id=%s imported the Autocrypt key of %s", ctx->msgid,
		    addr);
out:
	rnp_input_destroy(in);
	rnp_ffi_destroy(ffi);
	free(key);
	free(v);
}

