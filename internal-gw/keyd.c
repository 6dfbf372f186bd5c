/*
 * The key holder process (DESIGN §4), after OpenSMTPD's ca.c. It is the
 * only process that maps a private key. It sees no peer input: its one
 * socket leads to the gateway parent, which sends typed requests with a
 * bounded length; a malformed request is a broken invariant (fatalx). The
 * data it signs is mail from outside, but it only hashes it.
 *
 * Wire format, both directions: struct keyd_hdr, then len payload bytes.
 * On the signing channel (fd 3):
 *   SIGN     uint32 signer length, signer, data   -> OK DER | ERR text
 *   SIGNERS  (empty)                               -> OK "a\0b\0"
 *   RELOAD   (empty)                               -> OK uint32 count
 * On the TLS channel (fd 4, its own thread; the TLS keys never change):
 *   TLS_KEYS  (empty)            -> OK { uint32 id, uint32 len, SPKI DER }*
 *   TLS_RSA   uint32 id, uint32 padding, block  -> OK result | ERR text
 *   TLS_ECDSA uint32 id, digest                 -> OK DER signature | ERR
 * A request type is allowed on its own channel only. The TLS requests are
 * raw private-key operations, as in OpenSMTPD's ca.c: whoever holds the
 * channel can have things signed, but the key itself never leaves.
 */
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pthread.h>
#include <pwd.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <openssl/cms.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <openssl/store.h>
#include <openssl/x509.h>

#include "certstore.h"
#include "keyd.h"
#include "log.h"
#include "xmalloc.h"

enum keyd_type {
	KEYD_SIGN = 1,
	KEYD_SIGNERS,
	KEYD_RELOAD,
	KEYD_TLS_KEYS = 50,
	KEYD_TLS_RSA,
	KEYD_TLS_ECDSA,
	KEYD_OK = 100,
	KEYD_ERR,
};

struct keyd_hdr {
	uint32_t	type;
	uint32_t	len;
};

/* A signature with its chain, or the list of signers. */
#define KEYD_MAX_REPLY	(16 * 1024 * 1024)
#define KEYD_MAX_KEYS	10000

struct keyd_key {
	char		 *file;
	EVP_PKEY	 *pkey;
	X509		 *cert;
	STACK_OF(X509)	 *chain;
	char		**emails;
	size_t		  nemails;
};

struct keyd_client {
	int		 fd;
	pthread_mutex_t	 mtx;
};

static struct keyd_key	*keyd_keys;
static size_t		 keyd_nkeys;
static const char	*keyd_dir;
static EVP_PKEY		*keyd_tls_key[KEYD_TLS_MAX_KEYS];
static size_t		 keyd_ntls;

/* ---- framing, shared by both sides ---- */

static int
keyd_write_full(int fd, const void *buf, size_t len)
{
	const unsigned char *p = buf;
	ssize_t n;

	while (len > 0) {
		n = send(fd, p, len, MSG_NOSIGNAL);
		if (n == -1) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Returns 0, or -1 on error or end of file (errno 0). */
static int
keyd_read_full(int fd, void *buf, size_t len)
{
	unsigned char *p = buf;
	ssize_t n;

	while (len > 0) {
		n = read(fd, p, len);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0) {
			if (n == 0)
				errno = 0;
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int
keyd_send(int fd, uint32_t type, const void *a, size_t alen, const void *b,
    size_t blen)
{
	struct keyd_hdr h;

	if (alen + blen > UINT32_MAX)
		fatalx("keyd: message too long");
	h.type = type;
	h.len = (uint32_t)(alen + blen);
	if (keyd_write_full(fd, &h, sizeof(h)) == -1 ||
	    (alen && keyd_write_full(fd, a, alen) == -1) ||
	    (blen && keyd_write_full(fd, b, blen) == -1))
		return -1;
	return 0;
}

/* ---- the key holder side ---- */

static void
keyd_key_clear(struct keyd_key *k)
{
	free(k->file);
	EVP_PKEY_free(k->pkey);
	X509_free(k->cert);
	sk_X509_pop_free(k->chain, X509_free);
	certstore_emails_free(&k->emails);
	memset(k, 0, sizeof(*k));
}

/* Loads one key file; returns 0, or -1 (logged) when it holds no usable key. */
static int
keyd_load_file(const char *path, struct keyd_key *k)
{
	OSSL_STORE_CTX *st;
	OSSL_STORE_INFO *info;
	STACK_OF(X509) *certs;
	X509 *x;
	int i, n;

	memset(k, 0, sizeof(*k));
	if ((st = OSSL_STORE_open(path, NULL, NULL, NULL, NULL)) == NULL) {
		log_warnx("keyd: %s: cannot open", path);
		ERR_clear_error();
		return -1;
	}
	certs = sk_X509_new_null();
	while (!OSSL_STORE_eof(st)) {
		if ((info = OSSL_STORE_load(st)) == NULL)
			continue;
		switch (OSSL_STORE_INFO_get_type(info)) {
		case OSSL_STORE_INFO_PKEY:
			if (k->pkey == NULL)
				k->pkey = OSSL_STORE_INFO_get1_PKEY(info);
			break;
		case OSSL_STORE_INFO_CERT:
			sk_X509_push(certs, OSSL_STORE_INFO_get1_CERT(info));
			break;
		default:
			break;
		}
		OSSL_STORE_INFO_free(info);
	}
	OSSL_STORE_close(st);
	ERR_clear_error();

	if (k->pkey == NULL) {
		log_warnx("keyd: %s: no private key", path);
		goto fail;
	}
	n = sk_X509_num(certs);
	for (i = 0; i < n; i++) {
		x = sk_X509_value(certs, i);
		if (X509_check_private_key(x, k->pkey) == 1) {
			k->cert = sk_X509_delete(certs, i);
			break;
		}
	}
	ERR_clear_error();
	if (k->cert == NULL) {
		log_warnx("keyd: %s: no certificate matches the key", path);
		goto fail;
	}
	k->chain = certs;
	k->nemails = certstore_emails(k->cert, &k->emails);
	k->file = xstrdup(path);
	return 0;
fail:
	sk_X509_pop_free(certs, X509_free);
	keyd_key_clear(k);
	return -1;
}

static void
keyd_load_all(void)
{
	struct keyd_key *keys = NULL;
	struct dirent *de;
	DIR *d;
	size_t n = 0, len, i;
	char *path;

	if ((d = opendir(keyd_dir)) == NULL) {
		log_warn("keyd: %s", keyd_dir);
	} else {
		while ((de = readdir(d)) != NULL && n < KEYD_MAX_KEYS) {
			len = strlen(de->d_name);
			if (de->d_name[0] == '.' || len < 5 ||
			    strcmp(de->d_name + len - 4, ".pem") != 0)
				continue;
			keys = xreallocarray(keys, n + 1, sizeof(*keys));
			xasprintf(&path, "%s/%s", keyd_dir, de->d_name);
			if (keyd_load_file(path, &keys[n]) == 0)
				n++;
			free(path);
		}
		closedir(d);
	}
	for (i = 0; i < keyd_nkeys; i++)
		keyd_key_clear(&keyd_keys[i]);
	free(keyd_keys);
	keyd_keys = keys;
	keyd_nkeys = n;
	log_info("loaded %zu signing key%s from %s", n, n == 1 ? "" : "s",
	    keyd_dir);
}

static int
keyd_cert_current(X509 *x)
{
	return X509_cmp_current_time(X509_get0_notBefore(x)) < 0 &&
	    X509_cmp_current_time(X509_get0_notAfter(x)) > 0;
}

/* The key for signer: a currently valid one first, then the latest expiry. */
static struct keyd_key *
keyd_find(const char *signer)
{
	struct keyd_key *best = NULL, *k;
	size_t i, j;
	int cur, bestcur = 0;

	for (i = 0; i < keyd_nkeys; i++) {
		k = &keyd_keys[i];
		for (j = 0; j < k->nemails; j++)
			if (strcasecmp(k->emails[j], signer) == 0)
				break;
		if (j == k->nemails)
			continue;
		cur = keyd_cert_current(k->cert);
		if (best == NULL || cur > bestcur || (cur == bestcur &&
		    ASN1_TIME_compare(X509_get0_notAfter(k->cert),
		    X509_get0_notAfter(best->cert)) > 0)) {
			best = k;
			bestcur = cur;
		}
	}
	return best;
}

static void
keyd_reply_err(int fd, const char *msg)
{
	if (keyd_send(fd, KEYD_ERR, msg, strlen(msg), NULL, 0) == -1)
		fatal("keyd: send");
}

/*
 * SIGN: u32 signer length, the signer, the SHA-256 digest of the content.
 * The SignerInfo is built without the content: the digest goes into the
 * messageDigest attribute and the signed attributes are signed, as
 * CMS_final() would do after hashing the content itself.
 */
static void
keyd_do_sign(int fd, const unsigned char *p, size_t len)
{
	struct keyd_key *k;
	CMS_ContentInfo *cms = NULL;
	CMS_SignerInfo *si;
	unsigned char *der = NULL;
	char signer[KEYD_MAX_SIGNER + 1];
	uint32_t slen;
	unsigned int flags = CMS_DETACHED | CMS_BINARY | CMS_PARTIAL;
	int derlen, i;

	if (len < sizeof(slen))
		fatalx("keyd: short SIGN request");
	memcpy(&slen, p, sizeof(slen));
	if (slen == 0 || slen > KEYD_MAX_SIGNER ||
	    len != sizeof(slen) + slen + KEYD_DIGEST_LEN)
		fatalx("keyd: bad SIGN request (signer length %u)", slen);
	memcpy(signer, p + sizeof(slen), slen);
	signer[slen] = '\0';
	if (strlen(signer) != slen)
		fatalx("keyd: NUL in signer");
	p += sizeof(slen) + slen;

	if ((k = keyd_find(signer)) == NULL) {
		keyd_reply_err(fd, "no signing key for this sender");
		return;
	}
	if ((cms = CMS_sign(NULL, NULL, NULL, NULL, flags)) == NULL ||
	    (si = CMS_add1_signer(cms, k->cert, k->pkey, EVP_sha256(),
	    flags)) == NULL)
		goto fail;
	for (i = 0; i < sk_X509_num(k->chain); i++)
		if (!CMS_add1_cert(cms, sk_X509_value(k->chain, i)))
			goto fail;
	if (!CMS_signed_add1_attr_by_NID(si, NID_pkcs9_contentType,
	    V_ASN1_OBJECT, OBJ_nid2obj(NID_pkcs7_data), -1) ||
	    !CMS_signed_add1_attr_by_NID(si, NID_pkcs9_messageDigest,
	    V_ASN1_OCTET_STRING, p, KEYD_DIGEST_LEN) ||
	    !CMS_SignerInfo_sign(si) ||
	    (derlen = i2d_CMS_ContentInfo(cms, &der)) <= 0)
		goto fail;
	if (keyd_send(fd, KEYD_OK, der, (size_t)derlen, NULL, 0) == -1)
		fatal("keyd: send");
	OPENSSL_free(der);
	CMS_ContentInfo_free(cms);
	return;
fail:
	log_warnx("keyd: signing as %s failed: %s", signer,
	    ERR_reason_error_string(ERR_peek_last_error()));
	ERR_clear_error();
	CMS_ContentInfo_free(cms);
	keyd_reply_err(fd, "signing failed");
}

static void
keyd_do_signers(int fd)
{
	char *buf = NULL;
	size_t len = 0, l, i, j;

	for (i = 0; i < keyd_nkeys; i++)
		for (j = 0; j < keyd_keys[i].nemails; j++) {
			l = strlen(keyd_keys[i].emails[j]) + 1;
			if (len + l > KEYD_MAX_REPLY)
				break;
			buf = xreallocarray(buf, len + l, 1);
			memcpy(buf + len, keyd_keys[i].emails[j], l);
			len += l;
		}
	if (keyd_send(fd, KEYD_OK, buf, len, NULL, 0) == -1)
		fatal("keyd: send");
	free(buf);
}

static void __attribute__((noreturn))
keyd_serve(int fd)
{
	struct keyd_hdr h;
	unsigned char *buf;
	uint32_t count;

	for (;;) {
		if (keyd_read_full(fd, &h, sizeof(h)) == -1) {
			if (errno == 0)
				_exit(0);	/* the parent closed: we are done */
			fatal("keyd: read");
		}
		if (h.len > sizeof(uint32_t) + KEYD_MAX_SIGNER +
		    KEYD_DIGEST_LEN)
			fatalx("keyd: request of %u bytes", h.len);
		buf = xmalloc(h.len + 1);
		if (keyd_read_full(fd, buf, h.len) == -1)
			fatalx("keyd: truncated request");
		switch (h.type) {
		case KEYD_SIGN:
			keyd_do_sign(fd, buf, h.len);
			break;
		case KEYD_SIGNERS:
			keyd_do_signers(fd);
			break;
		case KEYD_RELOAD:
			keyd_load_all();
			count = (uint32_t)keyd_nkeys;
			if (keyd_send(fd, KEYD_OK, &count, sizeof(count),
			    NULL, 0) == -1)
				fatal("keyd: send");
			break;
		default:
			fatalx("keyd: unknown request type %u", h.type);
		}
		free(buf);
	}
}

/* ---- the TLS channel, key holder side ---- */

static void
keyd_tls_load(const char *path)
{
	OSSL_STORE_CTX *st;
	OSSL_STORE_INFO *info;
	EVP_PKEY *pkey = NULL;

	if ((st = OSSL_STORE_open(path, NULL, NULL, NULL, NULL)) == NULL)
		fatalx("keyd: TLS key %s: cannot open", path);
	while (pkey == NULL && !OSSL_STORE_eof(st)) {
		if ((info = OSSL_STORE_load(st)) == NULL)
			continue;
		if (OSSL_STORE_INFO_get_type(info) == OSSL_STORE_INFO_PKEY)
			pkey = OSSL_STORE_INFO_get1_PKEY(info);
		OSSL_STORE_INFO_free(info);
	}
	OSSL_STORE_close(st);
	ERR_clear_error();
	if (pkey == NULL)
		fatalx("keyd: TLS key %s: no private key", path);
	if (!EVP_PKEY_is_a(pkey, "RSA") && !EVP_PKEY_is_a(pkey, "EC"))
		fatalx("keyd: TLS key %s: only RSA and EC keys are supported",
		    path);
	keyd_tls_key[keyd_ntls++] = pkey;
}

static void
keyd_tls_do_keys(int fd)
{
	unsigned char *buf = NULL, *der;
	size_t len = 0;
	uint32_t v[2];
	int dlen;

	for (size_t i = 0; i < keyd_ntls; i++) {
		der = NULL;
		if ((dlen = i2d_PUBKEY(keyd_tls_key[i], &der)) <= 0)
			fatalx("keyd: cannot encode TLS public key %zu", i);
		v[0] = (uint32_t)i;
		v[1] = (uint32_t)dlen;
		buf = xreallocarray(buf, len + sizeof(v) + (size_t)dlen, 1);
		memcpy(buf + len, v, sizeof(v));
		memcpy(buf + len + sizeof(v), der, (size_t)dlen);
		len += sizeof(v) + (size_t)dlen;
		OPENSSL_free(der);
	}
	if (keyd_send(fd, KEYD_OK, buf, len, NULL, 0) == -1)
		fatal("keyd: send");
	free(buf);
}

/*
 * One private-key operation on in: with no digest set, OpenSSL's RSA
 * signature applies only the padding asked for (none: a raw private
 * operation on a block libssl already PSS-encoded) and ECDSA signs in as
 * the digest.
 */
static void
keyd_tls_do_op(int fd, uint32_t type, const unsigned char *p, size_t len)
{
	EVP_PKEY_CTX *ctx = NULL;
	EVP_PKEY *pkey;
	unsigned char out[KEYD_TLS_MAX_IN + 256];
	size_t outlen = sizeof(out), hlen;
	uint32_t id, pad = 0;
	int rsa = type == KEYD_TLS_RSA;

	hlen = rsa ? 2 * sizeof(uint32_t) : sizeof(uint32_t);
	if (len < hlen || len - hlen > KEYD_TLS_MAX_IN)
		fatalx("keyd: TLS request of %zu bytes", len);
	memcpy(&id, p, sizeof(id));
	if (rsa)
		memcpy(&pad, p + sizeof(id), sizeof(pad));
	p += hlen;
	len -= hlen;
	if (id >= keyd_ntls)
		fatalx("keyd: no TLS key %u", id);
	pkey = keyd_tls_key[id];
	if (rsa != EVP_PKEY_is_a(pkey, "RSA"))
		fatalx("keyd: TLS key %u has another type", id);
	if (rsa && pad != RSA_PKCS1_PADDING && pad != RSA_NO_PADDING) {
		keyd_reply_err(fd, "RSA padding not supported");
		return;
	}
	if (rsa && pad == RSA_NO_PADDING &&
	    len != (size_t)EVP_PKEY_get_size(pkey)) {
		keyd_reply_err(fd, "RSA block of the wrong size");
		return;
	}
	if ((ctx = EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL)) == NULL ||
	    EVP_PKEY_sign_init(ctx) <= 0 ||
	    (rsa && EVP_PKEY_CTX_set_rsa_padding(ctx, (int)pad) <= 0) ||
	    EVP_PKEY_sign(ctx, out, &outlen, p, len) <= 0) {
		log_warnx("keyd: TLS key %u: private-key operation failed: %s",
		    id, ERR_reason_error_string(ERR_peek_last_error()));
		ERR_clear_error();
		EVP_PKEY_CTX_free(ctx);
		keyd_reply_err(fd, "private-key operation failed");
		return;
	}
	EVP_PKEY_CTX_free(ctx);
	if (keyd_send(fd, KEYD_OK, out, outlen, NULL, 0) == -1)
		fatal("keyd: send");
	OPENSSL_cleanse(out, sizeof(out));
}

static void *
keyd_serve_tls(void *arg)
{
	struct keyd_hdr h;
	unsigned char buf[2 * sizeof(uint32_t) + KEYD_TLS_MAX_IN];
	int fd = *(int *)arg;

	for (;;) {
		if (keyd_read_full(fd, &h, sizeof(h)) == -1) {
			if (errno == 0)
				_exit(0);
			fatal("keyd: read");
		}
		if (h.len > sizeof(buf))
			fatalx("keyd: TLS request of %u bytes", h.len);
		if (keyd_read_full(fd, buf, h.len) == -1)
			fatalx("keyd: truncated TLS request");
		switch (h.type) {
		case KEYD_TLS_KEYS:
			keyd_tls_do_keys(fd);
			break;
		case KEYD_TLS_RSA:
		case KEYD_TLS_ECDSA:
			keyd_tls_do_op(fd, h.type, buf, h.len);
			break;
		default:
			fatalx("keyd: request type %u on the TLS channel",
			    h.type);
		}
	}
}

static void
keyd_drop_privileges(const char *user)
{
	struct passwd *pw;

	if (geteuid() == 0 && user != NULL) {
		if ((pw = getpwnam(user)) == NULL)
			fatalx("keyd: unknown user %s", user);
		if (setgroups(1, &pw->pw_gid) == -1 ||
		    setresgid(pw->pw_gid, pw->pw_gid, pw->pw_gid) == -1 ||
		    setresuid(pw->pw_uid, pw->pw_uid, pw->pw_uid) == -1)
			fatal("keyd: cannot drop privileges to %s", user);
	}
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == -1)
		fatal("keyd: PR_SET_NO_NEW_PRIVS");
}

pid_t
keyd_spawn(const char *keys_dir, const char *user, int *client_fd)
{
	int tls_fd;

	return keyd_spawn_tls(keys_dir, NULL, 0, user, client_fd, &tls_fd);
}

pid_t
keyd_spawn_tls(const char *keys_dir, const char *const *tls_keys,
    size_t ntls, const char *user, int *client_fd, int *tls_fd)
{
	static int tls_chan = 4;
	int sv[2], tv[2] = { -1, -1 }, devnull, a, b = -1;
	pthread_t thr;
	pid_t pid;

	if (ntls > KEYD_TLS_MAX_KEYS)
		fatalx("keyd: more than %d TLS keys", KEYD_TLS_MAX_KEYS);
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == -1) {
		log_warn("keyd: socketpair");
		return -1;
	}
	if (ntls > 0 &&
	    socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, tv) == -1) {
		log_warn("keyd: socketpair");
		close(sv[0]);
		close(sv[1]);
		return -1;
	}
	if ((pid = fork()) == -1) {
		log_warn("keyd: fork");
		close(sv[0]);
		close(sv[1]);
		if (ntls > 0) {
			close(tv[0]);
			close(tv[1]);
		}
		return -1;
	}
	if (pid > 0) {
		close(sv[1]);
		*client_fd = sv[0];
		*tls_fd = tv[0];
		if (ntls > 0)
			close(tv[1]);
		return pid;
	}

	/*
	 * Child: keep only stderr (the log) and the sockets, as fds 3 and 4.
	 * Both are moved above 4 first so neither dup2 clobbers the other.
	 */
	log_setproc("keyd");
	if ((a = fcntl(sv[1], F_DUPFD, 10)) == -1 ||
	    (ntls > 0 && (b = fcntl(tv[1], F_DUPFD, 10)) == -1) ||
	    dup2(a, 3) == -1 || (ntls > 0 && dup2(b, tls_chan) == -1))
		fatal("keyd: dup2");
	if ((devnull = open("/dev/null", O_RDWR)) == -1 ||
	    dup2(devnull, STDIN_FILENO) == -1 ||
	    dup2(devnull, STDOUT_FILENO) == -1)
		fatal("keyd: /dev/null");
	if (close_range(ntls > 0 ? 5 : 4, ~0U, 0) == -1)
		fatal("keyd: close_range");
	signal(SIGPIPE, SIG_IGN);
	signal(SIGINT, SIG_DFL);
	signal(SIGTERM, SIG_DFL);

	keyd_dir = keys_dir;
	keyd_load_all();
	for (size_t i = 0; i < ntls; i++)
		keyd_tls_load(tls_keys[i]);
	if (ntls > 0)
		log_info("loaded %zu TLS key%s", ntls, ntls == 1 ? "" : "s");
	keyd_drop_privileges(user);
	if (ntls > 0 && pthread_create(&thr, NULL, keyd_serve_tls,
	    &tls_chan) != 0)
		fatalx("keyd: pthread_create");
	keyd_serve(3);
}

/* ---- the client side ---- */

struct keyd_client *
keyd_client_new(int fd)
{
	struct keyd_client *c;

	c = xcalloc(1, sizeof(*c));
	c->fd = fd;
	if (pthread_mutex_init(&c->mtx, NULL) != 0)
		fatalx("keyd: pthread_mutex_init");
	return c;
}

void
keyd_client_free(struct keyd_client **cp)
{
	struct keyd_client *c = *cp;

	if (c == NULL)
		return;
	close(c->fd);
	pthread_mutex_destroy(&c->mtx);
	free(c);
	*cp = NULL;
}

/*
 * One request and its reply under the client's lock. Returns the reply
 * type with *reply (caller frees, NUL-terminated), or -1 when the key
 * holder is gone.
 */
static int
keyd_request(struct keyd_client *c, uint32_t type, const void *a,
    size_t alen, const void *b, size_t blen, unsigned char **reply,
    size_t *replylen)
{
	struct keyd_hdr h;
	unsigned char *buf = NULL;
	int rv = -1;

	*reply = NULL;
	*replylen = 0;
	pthread_mutex_lock(&c->mtx);
	if (keyd_send(c->fd, type, a, alen, b, blen) == -1 ||
	    keyd_read_full(c->fd, &h, sizeof(h)) == -1) {
		log_warn("key holder unavailable");
		goto out;
	}
	if ((h.type != KEYD_OK && h.type != KEYD_ERR) || h.len > KEYD_MAX_REPLY)
		fatalx("keyd: bad reply type %u length %u", h.type, h.len);
	buf = xmalloc((size_t)h.len + 1);
	if (keyd_read_full(c->fd, buf, h.len) == -1) {
		log_warn("key holder unavailable");
		free(buf);
		goto out;
	}
	buf[h.len] = '\0';
	*reply = buf;
	*replylen = h.len;
	rv = (int)h.type;
out:
	pthread_mutex_unlock(&c->mtx);
	return rv;
}

int
keyd_sign_digest(struct keyd_client *c, const char *signer,
    const unsigned char md[KEYD_DIGEST_LEN], unsigned char **der,
    size_t *derlen, char *err, size_t errlen)
{
	unsigned char *pre, *reply;
	size_t slen = strlen(signer), rlen;
	uint32_t s32;
	int t;

	*der = NULL;
	*derlen = 0;
	if (slen == 0 || slen > KEYD_MAX_SIGNER) {
		snprintf(err, errlen, "bad signer address");
		return -1;
	}
	s32 = (uint32_t)slen;
	pre = xmalloc(sizeof(s32) + slen);
	memcpy(pre, &s32, sizeof(s32));
	memcpy(pre + sizeof(s32), signer, slen);
	t = keyd_request(c, KEYD_SIGN, pre, sizeof(s32) + slen, md,
	    KEYD_DIGEST_LEN, &reply, &rlen);
	free(pre);
	if (t == -1) {
		snprintf(err, errlen, "key holder unavailable");
		return -1;
	}
	if (t == KEYD_ERR) {
		snprintf(err, errlen, "%s", (char *)reply);
		free(reply);
		return -1;
	}
	*der = reply;
	*derlen = rlen;
	return 0;
}

int
keyd_signers(struct keyd_client *c, char ***out)
{
	unsigned char *reply;
	size_t rlen, off, n = 0;
	char **v;

	*out = NULL;
	if (keyd_request(c, KEYD_SIGNERS, NULL, 0, NULL, 0, &reply, &rlen) !=
	    KEYD_OK) {
		free(reply);
		return -1;
	}
	v = xcalloc(1, sizeof(*v));
	for (off = 0; off < rlen; off += strlen((char *)reply + off) + 1) {
		v = xreallocarray(v, n + 2, sizeof(*v));
		v[n++] = xstrdup((char *)reply + off);
		v[n] = NULL;
	}
	free(reply);
	*out = v;
	return (int)n;
}

void
keyd_signers_free(char ***vp)
{
	char **v = *vp;

	if (v == NULL)
		return;
	for (size_t i = 0; v[i] != NULL; i++)
		free(v[i]);
	free(v);
	*vp = NULL;
}

int
keyd_can_sign(struct keyd_client *c, const char *signer)
{
	char **v;
	int n, found = 0;

	if ((n = keyd_signers(c, &v)) == -1)
		return -1;
	for (int i = 0; i < n && !found; i++)
		found = strcasecmp(v[i], signer) == 0;
	keyd_signers_free(&v);
	return found;
}

int
keyd_reload(struct keyd_client *c)
{
	unsigned char *reply;
	size_t rlen;
	uint32_t count;

	if (keyd_request(c, KEYD_RELOAD, NULL, 0, NULL, 0, &reply, &rlen) !=
	    KEYD_OK || rlen != sizeof(count)) {
		free(reply);
		return -1;
	}
	memcpy(&count, reply, sizeof(count));
	free(reply);
	return (int)count;
}

int
keyd_tls_keys(struct keyd_client *c, struct keyd_tls_pub **out)
{
	struct keyd_tls_pub *v = NULL;
	unsigned char *reply;
	size_t rlen, off = 0;
	uint32_t hv[2];
	int n = 0;

	*out = NULL;
	if (keyd_request(c, KEYD_TLS_KEYS, NULL, 0, NULL, 0, &reply, &rlen) !=
	    KEYD_OK) {
		free(reply);
		return -1;
	}
	while (off < rlen) {
		if (rlen - off < sizeof(hv))
			fatalx("keyd: truncated TLS key list");
		memcpy(hv, reply + off, sizeof(hv));
		off += sizeof(hv);
		if (hv[1] > rlen - off || n >= KEYD_TLS_MAX_KEYS)
			fatalx("keyd: bad TLS key list");
		v = xreallocarray(v, (size_t)n + 1, sizeof(*v));
		v[n].id = hv[0];
		v[n].spkilen = hv[1];
		v[n].spki = xmalloc(hv[1]);
		memcpy(v[n].spki, reply + off, hv[1]);
		off += hv[1];
		n++;
	}
	free(reply);
	*out = v;
	return n;
}

void
keyd_tls_keys_free(struct keyd_tls_pub **vp, int n)
{
	struct keyd_tls_pub *v = *vp;

	if (v == NULL)
		return;
	for (int i = 0; i < n; i++)
		free(v[i].spki);
	free(v);
	*vp = NULL;
}

static int
keyd_tls_call(struct keyd_client *c, uint32_t type, const uint32_t *hv,
    size_t nhv, const unsigned char *in, size_t inlen, unsigned char *out,
    size_t outlen)
{
	unsigned char *reply;
	size_t rlen;
	int t;

	if (inlen > KEYD_TLS_MAX_IN) {
		log_warnx("keyd: TLS operation on %zu bytes refused", inlen);
		return -1;
	}
	t = keyd_request(c, type, hv, nhv * sizeof(*hv), in, inlen, &reply,
	    &rlen);
	if (t == -1)
		return -1;
	if (t == KEYD_ERR || rlen > outlen) {
		log_warnx("keyd: TLS key %u: %s", hv[0], t == KEYD_ERR ?
		    (char *)reply : "reply too long");
		free(reply);
		return -1;
	}
	memcpy(out, reply, rlen);
	free(reply);
	return (int)rlen;
}

int
keyd_tls_rsa(struct keyd_client *c, uint32_t id, int padding,
    const unsigned char *in, size_t inlen, unsigned char *out,
    size_t outlen)
{
	uint32_t hv[2] = { id, (uint32_t)padding };

	return keyd_tls_call(c, KEYD_TLS_RSA, hv, 2, in, inlen, out, outlen);
}

int
keyd_tls_ecdsa(struct keyd_client *c, uint32_t id,
    const unsigned char *dgst, size_t dlen, unsigned char *out,
    size_t outlen)
{
	uint32_t hv[1] = { id };

	return keyd_tls_call(c, KEYD_TLS_ECDSA, hv, 1, dgst, dlen, out,
	    outlen);
}
