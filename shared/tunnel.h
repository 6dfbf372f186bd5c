/*
 * The add-on tunnel between internal-gw and the portal: what both nodes
 * must agree on. The gateway puts the original message, unchanged, into a
 * multipart/mixed entity with a manifest (route, recipients, tunnel id,
 * time, size and SHA-256 of the message) and a detached CMS signature
 * over the manifest bytes, then encrypts that entity (S/MIME enveloped
 * data) to the portal's tunnel certificate. The portal decrypts, checks the
 * signature against the gateway's tunnel certificate, parses the manifest
 * and copies the message out, checking its size and digest.
 *
 * The decrypted entity, CRLF lines, B a random boundary:
 *
 *	Content-Type: multipart/mixed; boundary="B"
 *
 *	--B
 *	Content-Type: application/x-postern-manifest
 *
 *	<manifest>
 *	--B
 *	Content-Type: application/pkcs7-signature; name=manifest.p7s
 *	Content-Transfer-Encoding: base64
 *
 *	<base64 of the DER signature>
 *	--B
 *	Content-Type: message/rfc822
 *
 *	<the message, Size bytes>
 *	--B--
 *
 * The manifest, in this order, one field a line:
 *
 *	Postern-Tunnel: 1
 *	Id: <32 lowercase hex digits>
 *	Time: <seconds since the epoch>
 *	Route: webmail | pdf-otp
 *	Size: <bytes of the message>
 *	SHA256: <64 lowercase hex digits>
 *	Recipient: <address>		(1..TUNNEL_MAX_RCPTS lines)
 */
#ifndef POSTERN_TUNNEL_H
#define POSTERN_TUNNEL_H

#include <stddef.h>
#include <stdio.h>
#include <time.h>

#define TUNNEL_VERSION		1
#define TUNNEL_ID_LEN		32	/* hex digits */
#define TUNNEL_MAX_RCPTS	1000
#define TUNNEL_MAX_MANIFEST	(512 * 1024)
#define TUNNEL_MAX_SIG		(64 * 1024)	/* DER bytes */
#define TUNNEL_BOUNDARY_MAX	70
#define TUNNEL_MANIFEST_TYPE	"application/x-postern-manifest"

enum tunnel_route {
	TUNNEL_ROUTE_WEBMAIL = 1,
	TUNNEL_ROUTE_PDF,
};

struct tunnel_manifest {
	char			 id[TUNNEL_ID_LEN + 1];
	long long		 time;
	enum tunnel_route	 route;
	long long		 size;
	char			 sha256[65];
	char			**rcpts;
	size_t			 nrcpts;
};

/* The parts before the message, read by tunnel_unpack. */
struct tunnel_parts {
	char		 boundary[TUNNEL_BOUNDARY_MAX + 1];
	char		*manifest;	/* the signed bytes, NUL-terminated */
	size_t		 manifest_len;
	unsigned char	*sig;		/* DER; NULL when the part is absent */
	size_t		 sig_len;
};

const char	*tunnel_route_name(enum tunnel_route);
/* 0 and *out for "webmail" or "pdf-otp", -1 for anything else. */
int		 tunnel_route_parse(const char *, enum tunnel_route *out);

/* A fresh random id (TUNNEL_ID_LEN hex digits). */
void		 tunnel_id_new(char out[TUNNEL_ID_LEN + 1]);
/*
 * The id of a tunnel message derived from seed (the gateway's hash of
 * the envelope sender and the received bytes), the route and the
 * recipients in their order: a retry of the same message for the same
 * recipients gets the same id, so the portal skips the recipients it
 * already stored; anything else gets another.
 */
void		 tunnel_id_derive(const char *seed, enum tunnel_route,
		    const char *const *rcpts, size_t nrcpts,
		    char out[TUNNEL_ID_LEN + 1]);
/* A fresh random boundary that never occurs in base64 text. */
void		 tunnel_boundary_new(char out[TUNNEL_BOUNDARY_MAX + 1]);

/* The manifest text (CRLF lines); caller frees. NULL when m is invalid. */
char		*tunnel_manifest_format(const struct tunnel_manifest *);
/*
 * Parses len bytes of manifest text into m (free with
 * tunnel_manifest_free). Returns 0, or -1 with *why when anything is
 * missing, repeated, out of order, unknown or malformed.
 */
int		 tunnel_manifest_parse(const char *, size_t len,
		    struct tunnel_manifest *, const char **why);
void		 tunnel_manifest_free(struct tunnel_manifest *);

/*
 * Reads the decrypted entity from in up to the start of the message part:
 * the boundary, the manifest and the signature (p->sig NULL when the
 * entity has no signature part). Returns 0, or -1 with *why when it is
 * not the layout above or a part is too large.
 */
int		 tunnel_unpack(FILE *in, struct tunnel_parts *,
		    const char **why);
void		 tunnel_parts_free(struct tunnel_parts *);
/*
 * Copies the message part (size bytes) from in, positioned by
 * tunnel_unpack, to out, then checks the closing delimiter. sha256 gets
 * the hex digest of what was copied. Returns 0, -1 with *why for a bad
 * layout, -2 when writing out failed.
 */
int		 tunnel_copy_message(FILE *in, const char *boundary,
		    long long size, FILE *out, char sha256[65],
		    const char **why);

#endif
