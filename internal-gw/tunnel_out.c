/*
 * The gateway's end of the add-on tunnel; see tunnel_out.h and
 * shared/tunnel.h for the layout. Runs on the SMTP process's worker
 * threads: blocking work (keyd, CMS, files) is fine here.
 *
 * Input: the message (already stripped of forged triggers) and the
 * recipients the policy sent to the portal. The message is copied byte for
 * byte and never parsed here; only its digest and size go into the
 * manifest, and only the manifest's digest goes to keyd.
 */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <openssl/cms.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "db.h"
#include "keyd.h"
#include "log.h"
#include "props.h"
#include "tunnel_out.h"
#include "xmalloc.h"

#define TUNNEL_OUT_CHUNK	65536

static const char tunnel_out_rfc822[] = "Content-Type: message/rfc822\r\n\r\n";

static BIO_METHOD *tunnel_out_b64_meth;
static const EVP_CIPHER *tunnel_out_aes;
static const EVP_MD *tunnel_out_sha256;
static pthread_once_t tunnel_out_once = PTHREAD_ONCE_INIT;

static void tunnel_out_init(void);

int
tunnel_out_settings(struct props *p, struct tunnel_out *t)
{
	int on;

	memset(t, 0, sizeof(*t));
	if ((on = props_get_bool(p, NULL, "webmail-tunnel-enabled")) != 1)
		return on;
	t->sender = props_get(p, NULL, "webmail-sender", NULL);
	t->recipient = props_get(p, NULL, "webmail-recipient", NULL);
	if (t->sender == NULL || t->recipient == NULL) {
		tunnel_out_free(t);
		return -1;
	}
	if (*t->sender == '\0' || *t->recipient == '\0') {
		log_warnx("webmail-tunnel-enabled is true but webmail-sender "
		    "or webmail-recipient is not set");
		tunnel_out_free(t);
		return -1;
	}
	return 1;
}

void
tunnel_out_free(struct tunnel_out *t)
{
	free(t->sender);
	free(t->recipient);
	memset(t, 0, sizeof(*t));
}

/*
 * The certificates tunnel_out_cert parsed, per thread, by fingerprint: the
 * query still runs for every message, so an import or a removal shows at
 * once, but a certificate's PEM is read and parsed only the first time.
 */
#define TUNNEL_OUT_CERTS	4

struct tunnel_out_cached {
	char	 fpr[96];	/* certs.fingerprint; "" when free */
	X509	*x;
	int	 ku_ok;		/* may encipher keys */
};

struct tunnel_out_tls {
	struct tunnel_out_cached c[TUNNEL_OUT_CERTS];
	unsigned int		 next;	/* the slot to reuse */
};

static pthread_key_t	tunnel_out_tls_key;
static pthread_once_t	tunnel_out_tls_once = PTHREAD_ONCE_INIT;

static void
tunnel_out_tls_free(void *arg)
{
	struct tunnel_out_tls *t = arg;

	for (int i = 0; i < TUNNEL_OUT_CERTS; i++)
		X509_free(t->c[i].x);
	free(t);
}

static void
tunnel_out_tls_init(void)
{
	if (pthread_key_create(&tunnel_out_tls_key, tunnel_out_tls_free) != 0)
		fatalx("tunnel_out: pthread_key_create");
}

/* The parsed certificate of one certs row, from the cache or the PEM. */
static struct tunnel_out_cached *
tunnel_out_parse(struct db_stmt *st)
{
	struct tunnel_out_tls *t;
	struct tunnel_out_cached *c;
	const char *fpr = (const char *)db_col_text(st, 0);
	uint32_t ku;
	X509 *x;
	BIO *b;

	pthread_once(&tunnel_out_tls_once, tunnel_out_tls_init);
	if ((t = pthread_getspecific(tunnel_out_tls_key)) == NULL) {
		t = xcalloc(1, sizeof(*t));
		if (pthread_setspecific(tunnel_out_tls_key, t) != 0)
			fatalx("tunnel_out: pthread_setspecific");
	}
	if (fpr == NULL || strlen(fpr) >= sizeof(t->c[0].fpr))
		fpr = "";
	for (int i = 0; *fpr != '\0' && i < TUNNEL_OUT_CERTS; i++)
		if (strcmp(t->c[i].fpr, fpr) == 0)
			return &t->c[i];
	if ((b = BIO_new_mem_buf(db_col_blob(st, 1),
	    db_col_bytes(st, 1))) == NULL)
		fatalx("tunnel_out: BIO_new_mem_buf");
	x = PEM_read_bio_X509(b, NULL, NULL, NULL);
	BIO_free(b);
	if (x == NULL)
		return NULL;
	c = &t->c[t->next++ % TUNNEL_OUT_CERTS];
	X509_free(c->x);
	c->x = x;
	ku = X509_get_key_usage(x);
	c->ku_ok = ku == UINT32_MAX || (ku & KU_KEY_ENCIPHERMENT);
	snprintf(c->fpr, sizeof(c->fpr), "%s", fpr);
	return c;
}

X509 *
tunnel_out_cert(struct db *db, const char *recipient, char *err, size_t errlen)
{
	struct tunnel_out_cached *c;
	struct db_stmt *st;
	X509 *found = NULL;
	int rc;

	snprintf(err, errlen, "no webmail recipient certificate for <%s> "
	    "(import the portal's tunnel certificate)", recipient);
	if ((st = db_prepare_cached(db, "SELECT fingerprint, pem FROM certs"
	    " WHERE has_key = 0 AND"
	    " instr(',' || emails || ',', ',' || lower(?1) || ',') > 0"
	    " ORDER BY not_after DESC")) == NULL ||
	    db_bind(st, "t", recipient) == -1) {
		if (st != NULL)
			db_finalize(st);
		snprintf(err, errlen, "database failure");
		return NULL;
	}
	while (found == NULL && (rc = db_step(st)) == DB_ROW) {
		if ((c = tunnel_out_parse(st)) == NULL)
			continue;
		if (c->ku_ok &&
		    X509_cmp_current_time(X509_get0_notBefore(c->x)) < 0 &&
		    X509_cmp_current_time(X509_get0_notAfter(c->x)) > 0) {
			if (!X509_up_ref(c->x))
				fatalx("tunnel_out: X509_up_ref");
			found = c->x;
		}
	}
	db_finalize(st);
	ERR_clear_error();
	return found;
}

/* Size and hex SHA-256 of what in holds; in is rewound. */
static int
tunnel_out_digest(FILE *in, long long *size, char hex[65])
{
	unsigned char md[32], *buf = xmalloc(TUNNEL_OUT_CHUNK);
	EVP_MD_CTX *ctx;
	size_t n;

	*size = 0;
	pthread_once(&tunnel_out_once, tunnel_out_init);
	if ((ctx = EVP_MD_CTX_new()) == NULL ||
	    !EVP_DigestInit_ex(ctx, tunnel_out_sha256, NULL))
		fatalx("tunnel_out: EVP_DigestInit_ex");
	while ((n = fread(buf, 1, TUNNEL_OUT_CHUNK, in)) > 0) {
		if (!EVP_DigestUpdate(ctx, buf, n))
			fatalx("tunnel_out: EVP_DigestUpdate");
		*size += n;
	}
	if (!EVP_DigestFinal_ex(ctx, md, NULL))
		fatalx("tunnel_out: EVP_DigestFinal_ex");
	EVP_MD_CTX_free(ctx);
	free(buf);
	for (size_t i = 0; i < sizeof(md); i++)
		snprintf(hex + 2 * i, 3, "%02x", md[i]);
	if (ferror(in))
		return -1;
	rewind(in);
	return 0;
}

/* Writes all of p to the encrypting BIO b. */
static int
tunnel_out_put(BIO *b, const void *p, size_t n)
{
	const char *q = p;
	int w;

	while (n > 0) {
		w = BIO_write(b, q, n > INT_MAX ? INT_MAX : (int)n);
		if (w <= 0)
			return -1;
		q += w;
		n -= (size_t)w;
	}
	return 0;
}

/*
 * The plain tunnel entity (shared/tunnel.h) into b, the encrypting
 * stream: nothing of it touches a file in clear.
 */
static int
tunnel_out_entity(BIO *b, const char *manifest, const unsigned char *der,
    size_t derlen, FILE *in)
{
	char boundary[TUNNEL_BOUNDARY_MAX + 1], *head, line[80];
	unsigned char *buf;
	size_t n;
	int len, rv = -1;

	tunnel_boundary_new(boundary);
	len = xasprintf(&head, "Content-Type: multipart/mixed; boundary=\"%s\""
	    "\r\n\r\n--%s\r\nContent-Type: " TUNNEL_MANIFEST_TYPE "\r\n\r\n%s"
	    "\r\n--%s\r\n"
	    "Content-Type: application/pkcs7-signature; name=manifest.p7s\r\n"
	    "Content-Transfer-Encoding: base64\r\n\r\n", boundary, boundary,
	    manifest, boundary);
	if (tunnel_out_put(b, head, (size_t)len) == -1) {
		free(head);
		return -1;
	}
	free(head);
	for (size_t off = 0; off < derlen; off += 57) {
		n = derlen - off < 57 ? derlen - off : 57;
		len = EVP_EncodeBlock((unsigned char *)line, der + off, (int)n);
		line[len++] = '\r';
		line[len++] = '\n';
		if (tunnel_out_put(b, line, (size_t)len) == -1)
			return -1;
	}
	len = snprintf(line, sizeof(line), "\r\n--%s\r\n", boundary);
	if (tunnel_out_put(b, line, (size_t)len) == -1 ||
	    tunnel_out_put(b, tunnel_out_rfc822, sizeof(tunnel_out_rfc822) - 1) ==
	    -1)
		return -1;
	buf = xmalloc(TUNNEL_OUT_CHUNK);
	while ((n = fread(buf, 1, TUNNEL_OUT_CHUNK, in)) > 0)
		if (tunnel_out_put(b, buf, n) == -1)
			goto out;
	if (ferror(in))
		goto out;
	len = snprintf(line, sizeof(line), "\r\n--%s--\r\n", boundary);
	rv = tunnel_out_put(b, line, (size_t)len);
out:
	free(buf);
	return rv;
}

/*
 * The sink of the encrypting stream: base64 in lines of 76 characters,
 * each ended by CRLF, straight into a FILE (a table encoder: OpenSSL's
 * base64 filter costs more and ends its lines in a bare LF). Bytes that
 * do not fill a line wait in in[]; a flush writes them out, padded, so it
 * comes once, at the end.
 */
#define TUNNEL_OUT_LINE		57	/* bytes per 76-character line */
#define TUNNEL_OUT_LINES	64	/* lines per fwrite */

struct tunnel_out_b64 {
	FILE		*f;
	unsigned char	 in[TUNNEL_OUT_LINE];
	size_t		 nin;
	char		 out[TUNNEL_OUT_LINES * 78];
	size_t		 nout;
};

static const char tunnel_out_abc[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
/* Every 12 bits as their two base64 characters (tunnel_out_init). */
static char tunnel_out_pairs[4096][2];

static int
tunnel_out_b64_drain(struct tunnel_out_b64 *c)
{
	if (c->nout > 0 && fwrite(c->out, 1, c->nout, c->f) != c->nout)
		return -1;
	c->nout = 0;
	return 0;
}

/* One line of n (1..57) bytes of p. */
static int
tunnel_out_b64_line(struct tunnel_out_b64 *c, const unsigned char *p,
    size_t n)
{
	char *o;
	size_t i;
	unsigned int v;

	if (c->nout + 78 > sizeof(c->out) && tunnel_out_b64_drain(c) == -1)
		return -1;
	o = c->out + c->nout;
	for (i = 0; i + 3 <= n; i += 3) {
		v = (unsigned int)p[i] << 16 | (unsigned int)p[i + 1] << 8 |
		    p[i + 2];
		memcpy(o, tunnel_out_pairs[v >> 12], 2);
		memcpy(o + 2, tunnel_out_pairs[v & 4095], 2);
		o += 4;
	}
	if (i < n) {
		v = (unsigned int)p[i] << 16;
		if (i + 1 < n)
			v |= (unsigned int)p[i + 1] << 8;
		*o++ = tunnel_out_abc[v >> 18];
		*o++ = tunnel_out_abc[(v >> 12) & 63];
		*o++ = i + 1 < n ? tunnel_out_abc[(v >> 6) & 63] : '=';
		*o++ = '=';
	}
	*o++ = '\r';
	*o++ = '\n';
	c->nout = (size_t)(o - c->out);
	return 0;
}

static int
tunnel_out_b64_write(BIO *b, const char *p, int len)
{
	struct tunnel_out_b64 *c = BIO_get_data(b);
	const unsigned char *q = (const unsigned char *)p;
	size_t n = len > 0 ? (size_t)len : 0, k;

	if (c->nin > 0) {
		k = TUNNEL_OUT_LINE - c->nin;
		if (k > n)
			k = n;
		memcpy(c->in + c->nin, q, k);
		c->nin += k;
		q += k;
		n -= k;
		if (c->nin < TUNNEL_OUT_LINE)
			return len;
		if (tunnel_out_b64_line(c, c->in, TUNNEL_OUT_LINE) == -1)
			return -1;
		c->nin = 0;
	}
	for (; n >= TUNNEL_OUT_LINE; q += TUNNEL_OUT_LINE,
	    n -= TUNNEL_OUT_LINE)
		if (tunnel_out_b64_line(c, q, TUNNEL_OUT_LINE) == -1)
			return -1;
	memcpy(c->in, q, n);
	c->nin = n;
	return len;
}

static long
tunnel_out_b64_ctrl(BIO *b, int cmd, long num, void *ptr)
{
	struct tunnel_out_b64 *c = BIO_get_data(b);

	(void)num;
	(void)ptr;
	if (cmd != BIO_CTRL_FLUSH)
		return 0;
	if (c->nin > 0 && tunnel_out_b64_line(c, c->in, c->nin) == -1)
		return 0;
	c->nin = 0;
	if (tunnel_out_b64_drain(c) == -1 || fflush(c->f) == EOF)
		return 0;
	return 1;
}

/* Once: the sink's method and the algorithms, fetched once for all. */
static void
tunnel_out_init(void)
{
	if ((tunnel_out_b64_meth = BIO_meth_new(BIO_get_new_index() |
	    BIO_TYPE_SOURCE_SINK, "postern base64")) == NULL ||
	    !BIO_meth_set_write(tunnel_out_b64_meth, tunnel_out_b64_write) ||
	    !BIO_meth_set_ctrl(tunnel_out_b64_meth, tunnel_out_b64_ctrl))
		fatalx("tunnel_out: BIO_meth_new");
	for (int i = 0; i < 4096; i++) {
		tunnel_out_pairs[i][0] = tunnel_out_abc[i >> 6];
		tunnel_out_pairs[i][1] = tunnel_out_abc[i & 63];
	}
	if ((tunnel_out_aes = EVP_CIPHER_fetch(NULL, "AES-256-CBC",
	    NULL)) == NULL ||
	    (tunnel_out_sha256 = EVP_MD_fetch(NULL, "SHA256", NULL)) == NULL)
		fatalx("tunnel_out: EVP_CIPHER_fetch");
}

/*
 * The tunnel message: an outer header with nothing of the original, then
 * the entity encrypted (AES-256-CBC) to cert as S/MIME enveloped data, in
 * one streaming pass: the entity is written into OpenSSL's streaming CMS
 * BIO, whose BER goes through base64 into out with CRLF line ends.
 */
static int
tunnel_out_encrypt(const struct tunnel_out *t, const char *id, X509 *cert,
    const char *manifest, const unsigned char *der, size_t derlen, FILE *in,
    FILE *out, char *err, size_t errlen)
{
	unsigned int flags = CMS_BINARY | CMS_STREAM | CMS_PARTIAL;
	STACK_OF(X509) *sk;
	CMS_ContentInfo *cms = NULL;
	struct tunnel_out_b64 sink;
	BIO *b64, *cb = NULL, *next;
	char date[64];
	time_t now = time(NULL);
	struct tm tm;
	int rv = -1;

	gmtime_r(&now, &tm);
	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S +0000", &tm);
	if (fprintf(out, "From: <%s>\r\nTo: <%s>\r\nSubject: Postern tunnel\r\n"
	    "Date: %s\r\nMessage-ID: <%s@tunnel.postern>\r\n"
	    "MIME-Version: 1.0\r\n"
	    "Content-Disposition: attachment; filename=\"smime.p7m\"\r\n"
	    "Content-Type: application/pkcs7-mime; smime-type=enveloped-data;"
	    " name=\"smime.p7m\"\r\n"
	    "Content-Transfer-Encoding: base64\r\n\r\n", t->sender,
	    t->recipient, date, id) < 0) {
		snprintf(err, errlen, "write: %s", strerror(errno));
		return -1;
	}
	pthread_once(&tunnel_out_once, tunnel_out_init);
	sink.f = out;
	sink.nin = sink.nout = 0;
	if ((sk = sk_X509_new_null()) == NULL || !sk_X509_push(sk, cert) ||
	    (b64 = BIO_new(tunnel_out_b64_meth)) == NULL)
		fatalx("tunnel_out: out of memory");
	BIO_set_data(b64, &sink);
	BIO_set_init(b64, 1);
	if ((cms = CMS_encrypt(sk, NULL, tunnel_out_aes, flags)) == NULL ||
	    (cb = BIO_new_CMS(b64, cms)) == NULL) {
		snprintf(err, errlen, "encryption failed: %s",
		    ERR_reason_error_string(ERR_peek_last_error()));
		goto out;
	}
	if (tunnel_out_entity(cb, manifest, der, derlen, in) == -1 ||
	    BIO_flush(cb) != 1) {
		snprintf(err, errlen, "writing the tunnel message: %s",
		    ferror(in) ? "cannot read the message" :
		    "encryption failed");
		goto out;
	}
	/* BIO_new_CMS put its filters before b64: free them, keep b64. */
	while (cb != b64) {
		next = BIO_pop(cb);
		BIO_free(cb);
		cb = next;
	}
	cb = NULL;
	if (BIO_flush(b64) != 1 || fflush(out) == EOF || ferror(out)) {
		snprintf(err, errlen, "write: %s", strerror(errno));
		goto out;
	}
	rv = 0;
out:
	while (cb != NULL && cb != b64) {
		next = BIO_pop(cb);
		BIO_free(cb);
		cb = next;
	}
	ERR_clear_error();
	CMS_ContentInfo_free(cms);
	BIO_free(b64);
	sk_X509_free(sk);
	return rv;
}

int
tunnel_out_build(struct keyd_client *kc, const struct tunnel_out *t,
    X509 *cert, enum tunnel_route route, const char *const *rcpts,
    size_t nrcpts, const char *seed, const char *msgid, FILE *in, FILE *out,
    char id[TUNNEL_ID_LEN + 1], char *err, size_t errlen)
{
	struct tunnel_manifest m;
	unsigned char md[KEYD_DIGEST_LEN], *der = NULL;
	size_t derlen;
	char *manifest = NULL;
	int rv = -1;

	memset(&m, 0, sizeof(m));
	if (seed != NULL)
		tunnel_id_derive(seed, route, rcpts, nrcpts, m.id);
	else
		tunnel_id_new(m.id);
	m.time = (long long)time(NULL);
	m.route = route;
	m.rcpts = (char **)rcpts;
	m.nrcpts = nrcpts;
	if (tunnel_out_digest(in, &m.size, m.sha256) == -1) {
		snprintf(err, errlen, "reading the message: %s",
		    strerror(errno));
		return -1;
	}
	if ((manifest = tunnel_manifest_format(&m)) == NULL) {
		snprintf(err, errlen, "no manifest for %zu recipient(s)",
		    nrcpts);
		return -1;
	}
	if (!EVP_Digest(manifest, strlen(manifest), md, NULL,
	    tunnel_out_sha256, NULL))
		fatalx("tunnel_out: EVP_Digest");
	if (keyd_sign_digest(kc, t->sender, KEYD_PURPOSE_TUNNEL, msgid, md,
	    &der, &derlen, err, errlen) == -1)
		goto out;
	if (tunnel_out_encrypt(t, m.id, cert, manifest, der, derlen, in, out,
	    err, errlen) == -1)
		goto out;
	memcpy(id, m.id, TUNNEL_ID_LEN + 1);
	rv = 0;
out:
	free(der);
	free(manifest);
	return rv;
}

char *
tunnel_out_signer(const char *dbpath)
{
	struct props *p;
	char *err = NULL, *s = NULL;

	if ((p = props_open(dbpath, &err)) == NULL) {
		log_warnx("database %s: %s", db_redact(dbpath), err);
		free(err);
		return NULL;
	}
	if ((s = props_get(p, NULL, "webmail-sender", NULL)) != NULL &&
	    *s == '\0')
		xfree(&s);
	props_close(p);
	return s;
}
