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

X509 *
tunnel_out_cert(sqlite3 *db, const char *recipient, char *err, size_t errlen)
{
	sqlite3_stmt *st;
	X509 *x, *found = NULL;
	uint32_t ku;
	BIO *b;
	int rc;

	snprintf(err, errlen, "no webmail recipient certificate for <%s> "
	    "(import the portal's tunnel certificate)", recipient);
	if ((st = db_prepare(db, "SELECT pem FROM certs WHERE has_key = 0 AND"
	    " instr(',' || emails || ',', ',' || lower(?1) || ',') > 0"
	    " ORDER BY not_after DESC")) == NULL ||
	    db_bind(st, "t", recipient) == -1) {
		if (st != NULL)
			db_finalize(st);
		snprintf(err, errlen, "database failure");
		return NULL;
	}
	while (found == NULL && (rc = db_step(st)) == DB_ROW) {
		if ((b = BIO_new_mem_buf(sqlite3_column_blob(st, 0),
		    sqlite3_column_bytes(st, 0))) == NULL)
			fatalx("tunnel_out: BIO_new_mem_buf");
		x = PEM_read_bio_X509(b, NULL, NULL, NULL);
		BIO_free(b);
		if (x == NULL)
			continue;
		ku = X509_get_key_usage(x);
		if (X509_cmp_current_time(X509_get0_notBefore(x)) < 0 &&
		    X509_cmp_current_time(X509_get0_notAfter(x)) > 0 &&
		    (ku == UINT32_MAX || (ku & KU_KEY_ENCIPHERMENT)))
			found = x;
		else
			X509_free(x);
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
	if ((ctx = EVP_MD_CTX_new()) == NULL ||
	    !EVP_DigestInit_ex(ctx, EVP_sha256(), NULL))
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
 * A sink BIO over a FILE that ends every line in CRLF: OpenSSL's base64
 * filter ends its lines in a bare LF, SMTP needs CRLF.
 */
struct tunnel_out_crlf {
	FILE	*f;
	int	 cr;		/* the last byte written was CR */
};

static int
tunnel_out_crlf_write(BIO *b, const char *p, int len)
{
	struct tunnel_out_crlf *c = BIO_get_data(b);

	const char *q = p, *end = p + len, *nl;
	size_t n;

	while (q < end) {
		nl = memchr(q, '\n', end - q);
		n = (nl != NULL ? nl : end) - q;
		if (n > 0 && fwrite(q, 1, n, c->f) != n)
			return -1;
		if (n > 0)
			c->cr = q[n - 1] == '\r';
		if (nl == NULL)
			break;
		if ((!c->cr && putc('\r', c->f) == EOF) ||
		    putc('\n', c->f) == EOF)
			return -1;
		c->cr = 0;
		q = nl + 1;
	}
	return len;
}

static long
tunnel_out_crlf_ctrl(BIO *b, int cmd, long num, void *ptr)
{
	struct tunnel_out_crlf *c = BIO_get_data(b);

	(void)num;
	(void)ptr;
	if (cmd == BIO_CTRL_FLUSH)
		return fflush(c->f) == EOF ? 0 : 1;
	return 0;
}

static BIO_METHOD *tunnel_out_crlf_meth;
static pthread_once_t tunnel_out_crlf_once = PTHREAD_ONCE_INIT;

static void
tunnel_out_crlf_init(void)
{
	if ((tunnel_out_crlf_meth = BIO_meth_new(BIO_get_new_index() |
	    BIO_TYPE_SOURCE_SINK, "postern crlf")) == NULL ||
	    !BIO_meth_set_write(tunnel_out_crlf_meth, tunnel_out_crlf_write) ||
	    !BIO_meth_set_ctrl(tunnel_out_crlf_meth, tunnel_out_crlf_ctrl))
		fatalx("tunnel_out: BIO_meth_new");
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
	struct tunnel_out_crlf crlf = { out, 0 };
	BIO *b64, *bout, *cb = NULL, *next;
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
	pthread_once(&tunnel_out_crlf_once, tunnel_out_crlf_init);
	if ((sk = sk_X509_new_null()) == NULL || !sk_X509_push(sk, cert) ||
	    (b64 = BIO_new(BIO_f_base64())) == NULL ||
	    (bout = BIO_new(tunnel_out_crlf_meth)) == NULL)
		fatalx("tunnel_out: out of memory");
	BIO_set_data(bout, &crlf);
	BIO_set_init(bout, 1);
	BIO_push(b64, bout);
	if ((cms = CMS_encrypt(sk, NULL, EVP_aes_256_cbc(), flags)) == NULL ||
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
	BIO_free_all(b64);
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
	if (!EVP_Digest(manifest, strlen(manifest), md, NULL, EVP_sha256(),
	    NULL))
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
		log_warnx("database %s: %s", dbpath, err);
		free(err);
		return NULL;
	}
	if ((s = props_get(p, NULL, "webmail-sender", NULL)) != NULL &&
	    *s == '\0')
		xfree(&s);
	props_close(p);
	return s;
}
