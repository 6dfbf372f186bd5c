/*
 * keyd's detached CMS signatures from a per-key template: the parts of a
 * SignedData that never change for a key (certificates, signer id,
 * algorithms, the constant signed attributes) are encoded once, when the
 * key is loaded; a signature then encodes only the signing time and the
 * message digest, signs, and joins the pieces.
 */
#ifndef POSTERN_KEYD_CMS_H
#define POSTERN_KEYD_CMS_H

#include <time.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#define KEYD_CMS_DIGEST_LEN	32	/* SHA-256 */

struct keyd_cms_tmpl;

/*
 * The template for cert (whose key is pkey) and chain, taken from a
 * SignedData that OpenSSL builds once, so the output has the same shape
 * as CMS_sign's. NULL when the key needs something a template cannot
 * give (a signature algorithm with parameters of its own, such as
 * RSA-PSS): the caller then signs with OpenSSL's CMS code.
 */
struct keyd_cms_tmpl	*keyd_cms_tmpl_new(X509 *cert, STACK_OF(X509) *chain,
			    EVP_PKEY *pkey);
void			 keyd_cms_tmpl_free(struct keyd_cms_tmpl *);

/*
 * A detached SignedData (DER, in *der, OPENSSL_free it) whose
 * messageDigest is md and whose signingTime is now. Returns the length,
 * or -1. Safe to call from several threads with one template.
 */
int	keyd_cms_tmpl_sign(const struct keyd_cms_tmpl *, EVP_PKEY *pkey,
	    const unsigned char md[KEYD_CMS_DIGEST_LEN], time_t now,
	    unsigned char **der);

/* OpenSSL's own encoding (CMS_sign), with the same inputs. */
int	keyd_cms_openssl(X509 *cert, STACK_OF(X509) *chain, EVP_PKEY *pkey,
	    const unsigned char md[KEYD_CMS_DIGEST_LEN], const time_t *now,
	    unsigned char **der);

#endif
