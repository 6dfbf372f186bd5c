/*
 * PGP/MIME signing (RFC 3156 section 5) in the SMTP worker, with the
 * signature made by the key holder from a digest.
 *
 * SECURITY: the message comes from the LAN: any bytes up to the accepted
 * size. Only its top-level header is split (header.h, bounded); the entity
 * is streamed, normalised to CRLF, into the output and the hash, never
 * parsed. The worker holds no secret key: it builds the v4 signature
 * packet (RFC 4880 section 5.2.3) itself, hashes the entity and the
 * packet's hashed part and trailer, and keyd signs that SHA-256 digest.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/rand.h>

#include "header.h"
#include "keyd_pgp.h"
#include "log.h"
#include "pgp.h"
#include "xmalloc.h"

#define PGP_SIGN_MAX_HEADER	(4 * 1024 * 1024)
#define PGP_SIGN_CHUNK		65536

static int
pgp_sign_put(FILE *out, EVP_MD_CTX *md, const void *p, size_t n)
{
	if (md != NULL && !EVP_DigestUpdate(md, p, n))
		fatalx("pgp: SHA-256");
	return n == 0 || fwrite(p, 1, n, out) == n ? 0 : -1;
}

/* The body from in, bare LF made CRLF, to out and the hash. */
static int
pgp_sign_body(FILE *in, FILE *out, EVP_MD_CTX *md)
{
	char buf[PGP_SIGN_CHUNK], norm[2 * PGP_SIGN_CHUNK];
	size_t n, o;
	int prev_cr = 0;

	while ((n = fread(buf, 1, sizeof(buf), in)) > 0) {
		o = 0;
		for (size_t i = 0; i < n; i++) {
			if (buf[i] == '\n' && !prev_cr)
				norm[o++] = '\r';
			norm[o++] = buf[i];
			prev_cr = buf[i] == '\r';
		}
		if (pgp_sign_put(out, md, norm, o) == -1)
			return -1;
	}
	return ferror(in) ? -1 : 0;
}

/* CRC-24 of RFC 4880 section 6.1. */
static uint32_t
pgp_sign_crc24(const unsigned char *p, size_t n)
{
	uint32_t crc = 0xb704ceL;

	for (size_t i = 0; i < n; i++) {
		crc ^= (uint32_t)p[i] << 16;
		for (int j = 0; j < 8; j++) {
			crc <<= 1;
			if (crc & 0x1000000)
				crc ^= 0x1864cfbL;
		}
	}
	return crc & 0xffffffL;
}

/* The packet in ASCII armour, CRLF lines of 64 characters. */
static int
pgp_sign_armor(FILE *out, const unsigned char *pkt, size_t n)
{
	unsigned char line[80], crc[3];
	uint32_t c = pgp_sign_crc24(pkt, n);

	if (fputs("-----BEGIN PGP SIGNATURE-----\r\n\r\n", out) == EOF)
		return -1;
	for (size_t off = 0; off < n; off += 48) {
		size_t k = n - off < 48 ? n - off : 48;

		EVP_EncodeBlock(line, pkt + off, (int)k);
		if (fprintf(out, "%s\r\n", line) < 0)
			return -1;
	}
	crc[0] = (unsigned char)(c >> 16);
	crc[1] = (unsigned char)(c >> 8);
	crc[2] = (unsigned char)c;
	EVP_EncodeBlock(line, crc, 3);
	return fprintf(out, "=%s\r\n-----END PGP SIGNATURE-----\r\n", line) <
	    0 ? -1 : 0;
}

int
pgp_sign(struct keyd_client *kc, const char *signer, const char *msgid,
    FILE *in, FILE *out, char *err, size_t errlen)
{
	unsigned char fpr[20], hashed[64], trailer[6], digest[32];
	unsigned char sig[KEYD_PGP_MAX_SIG], pkt[KEYD_PGP_MAX_SIG + 128];
	unsigned char rnd[12];
	char boundary[48];
	struct header hdr;
	EVP_MD_CTX *md = NULL;
	size_t hl = 0, pl, bl;
	unsigned int dlen;
	uint32_t now = (uint32_t)time(NULL);
	int algo, r, siglen, rv = -1;

	memset(&hdr, 0, sizeof(hdr));
	if ((r = keyd_pgp_info(kc, signer, &algo, fpr)) != 1) {
		snprintf(err, errlen, "%s", r == -1 ? "key holder unavailable" :
		    "no OpenPGP signing key for the sender");
		return -1;
	}
	if ((r = header_read(in, PGP_SIGN_MAX_HEADER, &hdr)) != 0) {
		snprintf(err, errlen, "%s", r == -2 ? "malformed or oversized "
		    "message header" : "cannot read the message");
		return -1;
	}
	if (RAND_bytes(rnd, sizeof(rnd)) != 1)
		fatalx("pgp: RAND_bytes");
	snprintf(boundary, sizeof(boundary), "=-pgps-");
	for (size_t i = 0; i < sizeof(rnd); i++)
		snprintf(boundary + strlen(boundary), 3, "%02x", rnd[i]);

	for (size_t i = 0; i < hdr.nfields; i++) {
		const struct header_field *f = &hdr.fields[i];

		if (strncasecmp(f->name, "Content-", 8) != 0 &&
		    strcasecmp(f->name, "MIME-Version") != 0 &&
		    pgp_sign_put(out, NULL, f->raw, f->rawlen) == -1)
			goto ioerr;
	}
	if (fprintf(out, "MIME-Version: 1.0\r\n"
	    "Content-Type: multipart/signed; micalg=pgp-sha256;\r\n"
	    "\tprotocol=\"application/pgp-signature\";\r\n"
	    "\tboundary=\"%s\"\r\n\r\n"
	    "This is an OpenPGP/MIME signed message (RFC 4880 and 3156).\r\n"
	    "--%s\r\n", boundary, boundary) < 0)
		goto ioerr;

	/* The signed entity: content fields, the empty line, the body. */
	if ((md = EVP_MD_CTX_new()) == NULL ||
	    !EVP_DigestInit_ex(md, EVP_sha256(), NULL))
		fatalx("pgp: SHA-256");
	for (size_t i = 0; i < hdr.nfields; i++) {
		const struct header_field *f = &hdr.fields[i];

		if (strncasecmp(f->name, "Content-", 8) == 0 &&
		    pgp_sign_put(out, md, f->raw, f->rawlen) == -1)
			goto ioerr;
	}
	if (pgp_sign_put(out, md, "\r\n", 2) == -1 ||
	    pgp_sign_body(in, out, md) == -1)
		goto ioerr;

	/* The hashed part: version, binary document, algorithms, the
	 * creation time and the issuer fingerprint subpackets. */
	hashed[hl++] = 4;
	hashed[hl++] = 0x00;
	hashed[hl++] = (unsigned char)algo;
	hashed[hl++] = 8;			/* SHA-256 */
	hashed[hl++] = 0;
	hashed[hl++] = 6 + 23;
	hashed[hl++] = 5;
	hashed[hl++] = 2;
	hashed[hl++] = (unsigned char)(now >> 24);
	hashed[hl++] = (unsigned char)(now >> 16);
	hashed[hl++] = (unsigned char)(now >> 8);
	hashed[hl++] = (unsigned char)now;
	hashed[hl++] = 22;
	hashed[hl++] = 33;
	hashed[hl++] = 4;
	memcpy(hashed + hl, fpr, 20);
	hl += 20;
	trailer[0] = 4;
	trailer[1] = 0xff;
	trailer[2] = (unsigned char)(hl >> 24);
	trailer[3] = (unsigned char)(hl >> 16);
	trailer[4] = (unsigned char)(hl >> 8);
	trailer[5] = (unsigned char)hl;
	if (!EVP_DigestUpdate(md, hashed, hl) ||
	    !EVP_DigestUpdate(md, trailer, sizeof(trailer)) ||
	    !EVP_DigestFinal_ex(md, digest, &dlen) || dlen != 32)
		fatalx("pgp: SHA-256");
	if ((siglen = keyd_pgp_sign(kc, signer, msgid, digest, sig,
	    sizeof(sig), err, errlen)) == -1)
		goto out;

	/* The packet body: hashed part, the issuer key ID unhashed, the
	 * digest's first two bytes, the signature MPIs. */
	bl = hl + 2 + 10 + 2 + (size_t)siglen;
	pl = 0;
	pkt[pl++] = 0xc2;			/* new format, tag 2 */
	if (bl < 192)
		pkt[pl++] = (unsigned char)bl;
	else {
		pkt[pl++] = (unsigned char)(((bl - 192) >> 8) + 192);
		pkt[pl++] = (unsigned char)(bl - 192);
	}
	memcpy(pkt + pl, hashed, hl);
	pl += hl;
	pkt[pl++] = 0;
	pkt[pl++] = 10;
	pkt[pl++] = 9;
	pkt[pl++] = 16;
	memcpy(pkt + pl, fpr + 12, 8);
	pl += 8;
	pkt[pl++] = digest[0];
	pkt[pl++] = digest[1];
	memcpy(pkt + pl, sig, (size_t)siglen);
	pl += (size_t)siglen;

	if (fprintf(out, "\r\n--%s\r\n"
	    "Content-Type: application/pgp-signature; name=\"signature.asc\""
	    "\r\n"
	    "Content-Description: OpenPGP digital signature\r\n"
	    "Content-Disposition: attachment; filename=\"signature.asc\""
	    "\r\n\r\n", boundary) < 0 || pgp_sign_armor(out, pkt, pl) == -1 ||
	    fprintf(out, "\r\n--%s--\r\n", boundary) < 0)
		goto ioerr;
	rv = 0;
	goto out;
ioerr:
	snprintf(err, errlen, "write: %s", strerror(errno));
out:
	EVP_MD_CTX_free(md);
	header_free(&hdr);
	return rv;
}
