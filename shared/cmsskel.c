/*
 * Splits a CMS (Auth)EnvelopedData into its skeleton and its encrypted
 * content (see cmsskel.h).
 *
 * SECURITY: the input is a message from the Internet. This is a walker
 * over BER tag-length headers only, never a decoder of values: OpenSSL
 * decodes the skeleton afterwards. Every length is checked against what
 * is left of its parent and of the skeleton limit before anything is
 * read or allocated; nesting is limited to CMSSKEL_MAX_DEPTH; only
 * low-numbered tags and lengths of at most 8 bytes are accepted; the
 * number of recipients is capped by the caller. A declared size larger
 * than the input ends in "truncated" when the input ends, never in an
 * allocation of that size.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmsskel.h"
#include "log.h"
#include "xmalloc.h"

/* DER of the contentType OIDs (tag, length, value). */
static const unsigned char cmsskel_oid_env[] = {
	0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x03 };
static const unsigned char cmsskel_oid_signed[] = {
	0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x02 };
static const unsigned char cmsskel_oid_authenv[] = {
	0x06, 0x0b, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x10,
	0x01, 0x17 };

#define CMSSKEL_INDEF	UINT64_MAX

struct cmsskel_tlv {
	unsigned char	 id;		/* identifier octet */
	uint64_t	 len;		/* CMSSKEL_INDEF: indefinite */
	unsigned char	 raw[10];	/* the header bytes */
	size_t		 rawlen;
};

struct cmsskel_rd {
	FILE		*in;
	FILE		*content;
	const char	*why;
};

static int
cmsskel_fail(struct cmsskel_rd *r, const char *why)
{
	if (r->why == NULL)
		r->why = why;
	return -1;
}

/* Reads a tag-length header; *used counts its bytes. */
static int
cmsskel_tlv(struct cmsskel_rd *r, struct cmsskel_tlv *t)
{
	int c, n;

	t->rawlen = 0;
	if ((c = getc(r->in)) == EOF)
		return cmsskel_fail(r, "truncated CMS structure");
	if ((c & 0x1f) == 0x1f)
		return cmsskel_fail(r, "unexpected high tag number in CMS");
	t->id = t->raw[t->rawlen++] = (unsigned char)c;
	if ((c = getc(r->in)) == EOF)
		return cmsskel_fail(r, "truncated CMS structure");
	t->raw[t->rawlen++] = (unsigned char)c;
	if (c < 0x80) {
		t->len = (uint64_t)c;
		return 0;
	}
	if (c == 0x80) {
		if (!(t->id & 0x20))
			return cmsskel_fail(r, "indefinite length on a "
			    "primitive CMS element");
		t->len = CMSSKEL_INDEF;
		return 0;
	}
	n = c & 0x7f;
	if (n > 8)
		return cmsskel_fail(r, "CMS length field too long");
	t->len = 0;
	while (n-- > 0) {
		if ((c = getc(r->in)) == EOF)
			return cmsskel_fail(r, "truncated CMS structure");
		t->raw[t->rawlen++] = (unsigned char)c;
		t->len = t->len << 8 | (uint64_t)c;
	}
	if (t->len == CMSSKEL_INDEF)
		return cmsskel_fail(r, "CMS length out of range");
	return 0;
}

static int
cmsskel_eoc(const struct cmsskel_tlv *t)
{
	return t->id == 0 && t->len == 0;
}

/* Room left in a definite parent of *left bytes for a child of n bytes. */
static int
cmsskel_take(struct cmsskel_rd *r, uint64_t *left, uint64_t n)
{
	if (left == NULL)
		return 0;
	if (n > *left)
		return cmsskel_fail(r, "CMS element longer than its parent");
	*left -= n;
	return 0;
}

static int
cmsskel_put(struct cmsskel_rd *r, struct buf *b, const void *p, size_t n)
{
	if (buf_put(b, p, n) == -1)
		return cmsskel_fail(r, "CMS structure too large");
	return 0;
}

/*
 * Copies the rest of an element whose header t was read into b (header
 * included); left (NULL: indefinite parent) is the parent's remainder.
 */
static int
cmsskel_copy(struct cmsskel_rd *r, const struct cmsskel_tlv *t,
    struct buf *b, uint64_t *left, int depth)
{
	unsigned char chunk[4096];
	struct cmsskel_tlv c;
	uint64_t n, mine;

	if (depth > CMSSKEL_MAX_DEPTH)
		return cmsskel_fail(r, "CMS nested too deeply");
	if (cmsskel_take(r, left, t->rawlen) == -1 ||
	    cmsskel_put(r, b, t->raw, t->rawlen) == -1)
		return -1;
	if (t->len != CMSSKEL_INDEF) {
		if (cmsskel_take(r, left, t->len) == -1)
			return -1;
		if (t->len > CMSSKEL_MAX_SKEL)
			return cmsskel_fail(r, "CMS structure too large");
		for (n = t->len; n > 0; n -= mine) {
			mine = n < sizeof(chunk) ? n : sizeof(chunk);
			if (fread(chunk, 1, mine, r->in) != mine)
				return cmsskel_fail(r, "truncated CMS "
				    "structure");
			if (cmsskel_put(r, b, chunk, mine) == -1)
				return -1;
		}
		return 0;
	}
	for (;;) {
		if (cmsskel_tlv(r, &c) == -1)
			return -1;
		if (cmsskel_eoc(&c)) {
			return cmsskel_take(r, left, 2) == -1 ? -1 :
			    cmsskel_put(r, b, c.raw, c.rawlen);
		}
		if (cmsskel_copy(r, &c, b, left, depth + 1) == -1)
			return -1;
	}
}

/* Streams an (possibly constructed) OCTET STRING's bytes to content. */
static int
cmsskel_octets(struct cmsskel_rd *r, const struct cmsskel_tlv *t,
    uint64_t *left, int depth, unsigned long long *total)
{
	unsigned char chunk[16384];
	struct cmsskel_tlv c;
	uint64_t n, mine, inner;

	if (depth > CMSSKEL_MAX_DEPTH)
		return cmsskel_fail(r, "CMS nested too deeply");
	if (cmsskel_take(r, left, t->rawlen) == -1)
		return -1;
	if (!(t->id & 0x20)) {
		if (cmsskel_take(r, left, t->len) == -1)
			return -1;
		for (n = t->len; n > 0; n -= mine) {
			mine = n < sizeof(chunk) ? n : sizeof(chunk);
			if (fread(chunk, 1, mine, r->in) != mine)
				return cmsskel_fail(r, "truncated CMS content");
			if (r->content != NULL &&
			    fwrite(chunk, 1, mine, r->content) != mine)
				return cmsskel_fail(r, "cannot write the "
				    "encrypted content to the spool");
			*total += mine;
		}
		return 0;
	}
	if (t->len != CMSSKEL_INDEF) {
		if (cmsskel_take(r, left, t->len) == -1)
			return -1;
		inner = t->len;
		while (inner > 0) {
			if (cmsskel_tlv(r, &c) == -1)
				return -1;
			if ((c.id & 0x1f) != 0x04)
				return cmsskel_fail(r, "CMS content chunk is "
				    "not an OCTET STRING");
			if (cmsskel_octets(r, &c, &inner, depth + 1,
			    total) == -1)
				return -1;
		}
		return 0;
	}
	for (;;) {
		if (cmsskel_tlv(r, &c) == -1)
			return -1;
		if (cmsskel_eoc(&c))
			return cmsskel_take(r, left, 2);
		if ((c.id & 0x1f) != 0x04)
			return cmsskel_fail(r, "CMS content chunk is not an "
			    "OCTET STRING");
		if (cmsskel_octets(r, &c, left, depth + 1, total) == -1)
			return -1;
	}
}

/* The next child of a constructed parent; 0 at its end, 1 with one. */
static int
cmsskel_next(struct cmsskel_rd *r, const uint64_t *left,
    struct cmsskel_tlv *t)
{
	if (left != NULL && *left == 0)
		return 0;
	if (cmsskel_tlv(r, t) == -1)
		return -1;
	if (cmsskel_eoc(t)) {
		if (left != NULL)
			return cmsskel_fail(r, "end-of-contents in a "
			    "definite-length CMS element");
		return 0;
	}
	return 1;
}

/*
 * A definite element's remainder as a counter, or NULL for indefinite.
 * After the children, an indefinite parent's EOC was read by
 * cmsskel_next; the definite one must come out at exactly zero.
 */
static uint64_t *
cmsskel_enter(struct cmsskel_rd *r, const struct cmsskel_tlv *t,
    uint64_t *left, uint64_t *mine)
{
	if (cmsskel_take(r, left, t->rawlen) == -1)
		return NULL;
	if (t->len == CMSSKEL_INDEF) {
		*mine = 0;
		return NULL;
	}
	if (cmsskel_take(r, left, t->len) == -1)
		return NULL;
	*mine = t->len;
	return mine;
}

/* Appends a DER header for tag with length len. */
static void
cmsskel_hdr(struct buf *b, unsigned char tag, size_t len)
{
	unsigned char h[10];
	size_t hl = 0, k;
	int n = 0;

	h[hl++] = tag;
	if (len < 0x80)
		h[hl++] = (unsigned char)len;
	else {
		for (k = len; k > 0; k >>= 8)
			n++;
		h[hl++] = (unsigned char)(0x80 | n);
		while (n-- > 0)
			h[hl++] = (unsigned char)(len >> (8 * n));
	}
	if (buf_put(b, h, hl) == -1)
		fatalx("cmsskel: header");
}

/* The encryptedContentInfo: contentType and algorithm kept, content out. */
static int
cmsskel_eci(struct cmsskel_rd *r, const struct cmsskel_tlv *t,
    uint64_t *left, struct cmsskel *sk)
{
	struct cmsskel_tlv c;
	struct buf b;
	uint64_t mine, *lp;
	int i, n, rc = -1;

	if (t->id != 0x30)
		return cmsskel_fail(r, "malformed CMS encryptedContentInfo");
	lp = cmsskel_enter(r, t, left, &mine);
	if (r->why != NULL)
		return -1;
	buf_init(&b, CMSSKEL_MAX_SKEL);
	for (i = 0; (n = cmsskel_next(r, lp, &c)) == 1; i++) {
		if (i < 2) {
			if (c.id != (i == 0 ? 0x06 : 0x30))
				goto bad;
			if (cmsskel_copy(r, &c, &b, lp, 1) == -1)
				goto out;
		} else if (i == 2 && (c.id == 0x80 || c.id == 0xa0)) {
			if (cmsskel_octets(r, &c, lp, 1, &sk->content_len) == -1)
				goto out;
		} else
			goto bad;
	}
	if (n == -1 || i < 2)
		goto bad;
	if (b.len > CMSSKEL_MAX_SKEL - sk->post.len - 16)
		goto bad;
	cmsskel_hdr(&sk->post, 0x30, b.len);
	if (cmsskel_put(r, &sk->post, b.data, b.len) == -1)
		goto out;
	rc = 0;
	goto out;
bad:
	cmsskel_fail(r, "malformed CMS encryptedContentInfo");
out:
	buf_free(&b);
	return rc;
}

static int
cmsskel_ris(struct cmsskel_rd *r, const struct cmsskel_tlv *t,
    uint64_t *left, size_t maxri, struct cmsskel *sk)
{
	struct cmsskel_tlv c;
	uint64_t mine, *lp;
	size_t before;
	int n;

	lp = cmsskel_enter(r, t, left, &mine);
	if (r->why != NULL)
		return -1;
	while ((n = cmsskel_next(r, lp, &c)) == 1) {
		if (sk->nri >= maxri)
			return cmsskel_fail(r, "more CMS recipients than "
			    "allowed");
		before = sk->ris.len;
		if (cmsskel_copy(r, &c, &sk->ris, lp, 1) == -1)
			return -1;
		sk->rioff = xreallocarray(sk->rioff, sk->nri + 1,
		    sizeof(*sk->rioff));
		sk->rilen = xreallocarray(sk->rilen, sk->nri + 1,
		    sizeof(*sk->rilen));
		sk->rioff[sk->nri] = before;
		sk->rilen[sk->nri++] = sk->ris.len - before;
	}
	if (n == 0 && sk->nri == 0)
		return cmsskel_fail(r, "CMS without recipients");
	return n;
}

static int
cmsskel_walk(struct cmsskel_rd *r, size_t maxri, struct cmsskel *sk)
{
	struct cmsskel_tlv t, c;
	uint64_t m0, m1, m2, *l0, *l1, *l2;
	int n, seen_ris = 0, seen_eci = 0;

	if (cmsskel_tlv(r, &t) == -1 || t.id != 0x30)
		return cmsskel_fail(r, "not a CMS ContentInfo");
	l0 = cmsskel_enter(r, &t, NULL, &m0);
	if (cmsskel_next(r, l0, &c) != 1 || c.id != 0x06 || c.len > 32 ||
	    cmsskel_copy(r, &c, &sk->oid, l0, 1) == -1)
		return cmsskel_fail(r, "not a CMS ContentInfo");
	if (sk->oid.len == sizeof(cmsskel_oid_env) &&
	    memcmp(sk->oid.data, cmsskel_oid_env, sk->oid.len) == 0)
		sk->type = CMSSKEL_ENVELOPED;
	else if (sk->oid.len == sizeof(cmsskel_oid_authenv) &&
	    memcmp(sk->oid.data, cmsskel_oid_authenv, sk->oid.len) == 0)
		sk->type = CMSSKEL_AUTH_ENVELOPED;
	else if (sk->oid.len == sizeof(cmsskel_oid_signed) &&
	    memcmp(sk->oid.data, cmsskel_oid_signed, sk->oid.len) == 0) {
		sk->type = CMSSKEL_SIGNED;
		return 0;
	} else
		return 0;
	if (cmsskel_next(r, l0, &t) != 1 || t.id != 0xa0)
		return cmsskel_fail(r, "CMS ContentInfo without content");
	l1 = cmsskel_enter(r, &t, l0, &m1);
	if (r->why != NULL || cmsskel_next(r, l1, &t) != 1 || t.id != 0x30)
		return cmsskel_fail(r, "malformed CMS EnvelopedData");
	l2 = cmsskel_enter(r, &t, l1, &m2);
	if (r->why != NULL)
		return -1;
	while ((n = cmsskel_next(r, l2, &c)) == 1) {
		if (!seen_ris && c.id == 0x31) {
			if (cmsskel_ris(r, &c, l2, maxri, sk) == -1)
				return -1;
			seen_ris = 1;
		} else if (seen_ris && !seen_eci) {
			if (cmsskel_eci(r, &c, l2, sk) == -1)
				return -1;
			seen_eci = 1;
		} else if (cmsskel_copy(r, &c, seen_ris ? &sk->post : &sk->pre,
		    l2, 1) == -1)
			return -1;
	}
	if (n == -1 || !seen_eci)
		return cmsskel_fail(r, "malformed CMS EnvelopedData");
	/* The closing of [0] and ContentInfo. */
	if ((l1 == NULL && cmsskel_next(r, NULL, &t) != 0) ||
	    (l1 != NULL && *l1 != 0) ||
	    (l0 == NULL && cmsskel_next(r, NULL, &t) != 0) ||
	    (l0 != NULL && *l0 != 0))
		return cmsskel_fail(r, "malformed CMS ContentInfo");
	return 0;
}

int
cmsskel_read(FILE *in, FILE *content, size_t maxri, struct cmsskel *sk,
    const char **why)
{
	struct cmsskel_rd r = { in, content, NULL };

	memset(sk, 0, sizeof(*sk));
	buf_init(&sk->oid, 64);
	buf_init(&sk->pre, CMSSKEL_MAX_SKEL);
	buf_init(&sk->ris, CMSSKEL_MAX_SKEL);
	buf_init(&sk->post, CMSSKEL_MAX_SKEL);
	if (cmsskel_walk(&r, maxri, sk) == -1) {
		*why = r.why ? r.why : "malformed CMS structure";
		return -1;
	}
	if (sk->pre.len + sk->ris.len + sk->post.len > CMSSKEL_MAX_SKEL) {
		*why = "CMS structure too large";
		return -1;
	}
	return 0;
}

enum cmsskel_type
cmsskel_peek(FILE *in)
{
	struct cmsskel_rd r = { in, NULL, NULL };
	struct cmsskel_tlv t;
	struct cmsskel sk;
	enum cmsskel_type type = CMSSKEL_OTHER;

	memset(&sk, 0, sizeof(sk));
	buf_init(&sk.oid, 64);
	if (cmsskel_tlv(&r, &t) == 0 && t.id == 0x30 &&
	    cmsskel_tlv(&r, &t) == 0 && t.id == 0x06 && t.len <= 32 &&
	    cmsskel_copy(&r, &t, &sk.oid, NULL, 1) == 0) {
		if (sk.oid.len == sizeof(cmsskel_oid_env) &&
		    memcmp(sk.oid.data, cmsskel_oid_env, sk.oid.len) == 0)
			type = CMSSKEL_ENVELOPED;
		else if (sk.oid.len == sizeof(cmsskel_oid_authenv) &&
		    memcmp(sk.oid.data, cmsskel_oid_authenv, sk.oid.len) == 0)
			type = CMSSKEL_AUTH_ENVELOPED;
		else if (sk.oid.len == sizeof(cmsskel_oid_signed) &&
		    memcmp(sk.oid.data, cmsskel_oid_signed, sk.oid.len) == 0)
			type = CMSSKEL_SIGNED;
	}
	buf_free(&sk.oid);
	return type;
}

int
cmsskel_read_mem(const unsigned char *p, size_t len, size_t maxri,
    struct cmsskel *sk, const char **why)
{
	FILE *f;
	int rc;

	if (len == 0) {
		memset(sk, 0, sizeof(*sk));
		*why = "empty";
		return -1;
	}
	if ((f = fmemopen((void *)(uintptr_t)p, len, "r")) == NULL)
		fatalx("cmsskel: fmemopen");
	rc = cmsskel_read(f, NULL, maxri, sk, why);
	fclose(f);
	return rc;
}

void
cmsskel_der(const struct cmsskel *sk, long only, unsigned char **out,
    size_t *outlen)
{
	struct buf set, seq, ctx, ci, all;
	size_t i;

	buf_init(&set, 0);
	buf_init(&seq, 0);
	buf_init(&ctx, 0);
	buf_init(&ci, 0);
	for (i = 0; i < sk->nri; i++)
		if (only < 0 || (size_t)only == i)
			buf_put(&set, sk->ris.data + sk->rioff[i], sk->rilen[i]);
	buf_put(&seq, sk->pre.data, sk->pre.len);
	cmsskel_hdr(&seq, 0x31, set.len);
	buf_put(&seq, set.data, set.len);
	buf_put(&seq, sk->post.data, sk->post.len);
	cmsskel_hdr(&ctx, 0x30, seq.len);
	buf_put(&ctx, seq.data, seq.len);
	buf_put(&ci, sk->oid.data, sk->oid.len);
	cmsskel_hdr(&ci, 0xa0, ctx.len);
	buf_put(&ci, ctx.data, ctx.len);
	buf_init(&all, 0);
	cmsskel_hdr(&all, 0x30, ci.len);
	buf_put(&all, ci.data, ci.len);
	*out = xmalloc(all.len);
	memcpy(*out, all.data, all.len);
	*outlen = all.len;
	buf_free(&all);
	buf_free(&set);
	buf_free(&seq);
	buf_free(&ctx);
	buf_free(&ci);
}

void
cmsskel_free(struct cmsskel *sk)
{
	buf_free(&sk->oid);
	buf_free(&sk->pre);
	buf_free(&sk->ris);
	buf_free(&sk->post);
	free(sk->rioff);
	free(sk->rilen);
	memset(sk, 0, sizeof(*sk));
}
