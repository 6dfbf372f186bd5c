/*
 * The storage keys of encrypted storage, in the portal's key holder
 * (pkeyd.h). At load, with root's rights, it reads the certificate file
 * and the encrypted key files (the keys stay encrypted until a password
 * opens them), makes the root-only control socket of `postern-cli
 * storage`, and with unlock "ask" posts a question in systemd's
 * ask-password directory. The password comes from the environment (given
 * by the parent), from the control socket or from a password agent; a
 * wrong one is logged and the key holder keeps asking. Unlocked, it
 * answers the web worker's requests: unwrap the content-encryption key of
 * one sealed file.
 *
 * SECURITY: requests on the web channels come from the web worker, which
 * faces the Internet and may be compromised: a request is a RecipientInfos
 * SET of bounded size, parsed with every length checked
 * (store_crypt_rinfo_find). The most a compromised worker can do is have
 * stored messages' keys unwrapped, which its role allows anyway; it never
 * sees a private key, and web channels cannot reach the tunnel key. The
 * control socket is 0600 and accepts only root (or the daemon's own user
 * when it does not run as root); the agent socket takes one datagram at a
 * time of bounded size.
 */
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include "keyholder.h"
#include "log.h"
#include "pkeyd.h"
#include "store/store_crypt.h"
#include "xmalloc.h"

#define PS_PASS_MAX	1024

struct ps_pair {
	X509		*cert;
	EVP_PKEY	*key;
};

/* The key holder's state (child only). */
static pthread_mutex_t	 ps_mtx = PTHREAD_MUTEX_INITIALIZER;
static int		 ps_unlocked;
static struct ps_pair	*ps_pairs;
static int		 ps_npairs;
static char		**ps_pem;	/* the key files, still encrypted */
static size_t		*ps_pemlen;
static const char	**ps_names;
static size_t		 ps_nkeys;
static X509		**ps_certs;	/* certificate file and key files */
static int		 ps_ncerts;
static int		 ps_ctl = -1, ps_ask = -1;
static uid_t		 ps_uid;
static char		 ps_askfile[512], ps_asksock[512];

/* The bytes of a file; NULL with *err. */
static char *
ps_slurp(const char *path, size_t *len, char **err)
{
	char *b = NULL;
	FILE *f;
	long n;

	if ((f = fopen(path, "r")) == NULL || fseek(f, 0, SEEK_END) == -1 ||
	    (n = ftell(f)) < 0 || n > 1024 * 1024 || fseek(f, 0, SEEK_SET) ==
	    -1 || (b = xmalloc((size_t)n + 1)) == NULL ||
	    fread(b, 1, (size_t)n, f) != (size_t)n) {
		xasprintf(err, "%s: %s", path, errno ? strerror(errno) :
		    "cannot read");
		free(b);
		if (f != NULL)
			fclose(f);
		return NULL;
	}
	fclose(f);
	b[n] = '\0';
	*len = (size_t)n;
	return b;
}

/* Certificates in PEM bytes, appended to *certs. */
static void
ps_add_certs(const char *pem, size_t len, X509 ***certs, int *n)
{
	BIO *b = BIO_new_mem_buf(pem, (int)len);
	X509 *x;

	while ((x = PEM_read_bio_X509(b, NULL, NULL, NULL)) != NULL) {
		*certs = xreallocarray(*certs, (size_t)*n + 1, sizeof(**certs));
		(*certs)[(*n)++] = x;
	}
	ERR_clear_error();
	BIO_free(b);
}

/* The key in pem opened with password, or NULL. */
static EVP_PKEY *
ps_open_key(const char *pem, size_t len, const char *password)
{
	BIO *b = BIO_new_mem_buf(pem, (int)len);
	EVP_PKEY *k;

	k = PEM_read_bio_PrivateKey(b, NULL, NULL, (void *)password);
	ERR_clear_error();
	BIO_free(b);
	return k;
}

static const char *
ps_subject(X509 *x, char *buf, size_t len)
{
	X509_NAME_oneline(X509_get_subject_name(x), buf, (int)len);
	return buf;
}

/* ---- unlocking ---- */

/* 0 when password opens every key (then unlocked), -1 when not. */
static int
ps_try(const char *password, const char *how)
{
	struct ps_pair *pairs = NULL;
	EVP_PKEY **keys;
	int npairs = 0, rc = -1;
	size_t i;

	pthread_mutex_lock(&ps_mtx);
	if (ps_unlocked) {
		pthread_mutex_unlock(&ps_mtx);
		return 0;
	}
	keys = xcalloc(ps_nkeys, sizeof(*keys));
	for (i = 0; i < ps_nkeys; i++)
		if ((keys[i] = ps_open_key(ps_pem[i], ps_pemlen[i],
		    password)) == NULL) {
			log_warnx("storage: wrong password (from %s) for %s; "
			    "still locked", how, ps_names[i]);
			goto out;
		}
	for (i = 0; i < ps_nkeys; i++)
		for (int j = 0; j < ps_ncerts; j++)
			if (X509_check_private_key(ps_certs[j], keys[i]) == 1) {
				pairs = xreallocarray(pairs, (size_t)npairs + 1,
				    sizeof(*pairs));
				pairs[npairs].cert = ps_certs[j];
				EVP_PKEY_up_ref(keys[i]);
				pairs[npairs++].key = keys[i];
			}
	ERR_clear_error();
	if (npairs == 0) {
		log_warnx("storage: no storage key matches a certificate; "
		    "still locked");
		goto out;
	}
	ps_pairs = pairs;
	ps_npairs = npairs;
	pairs = NULL;
	ps_unlocked = 1;
	rc = 0;
	log_info("storage unlocked (password from %s): %zu keys, %d "
	    "certificates matched; %zu bytes of locked key memory", how,
	    ps_nkeys, npairs, keyholder_locked());
out:
	for (i = 0; i < ps_nkeys; i++)
		EVP_PKEY_free(keys[i]);
	free(keys);
	free(pairs);
	pthread_mutex_unlock(&ps_mtx);
	return rc;
}

/* ---- the systemd password agent protocol ---- */

static void
ps_ask_write(int done)
{
	char tmp[600];
	FILE *f;

	if (ps_askfile[0] == '\0')
		return;
	if (done && unlink(ps_askfile) == 0)
		return;
	/* Rewritten in place: agents watching the directory ask again. */
	snprintf(tmp, sizeof(tmp), "%s", ps_askfile);
	if ((f = fopen(tmp, "w")) == NULL) {
		log_warn("storage: %s", tmp);
		return;
	}
	fprintf(f, "[Ask]\nPID=%ld\nSocket=%s\nAcceptCached=0\nEcho=0\n"
	    "NotAfter=%s\nId=postern:storage\nIcon=dialog-password\n"
	    "Message=Postern portal: password of the storage key\n",
	    (long)getpid(), ps_asksock, done ? "1" : "0");
	fclose(f);
}

static void *
ps_ask_thread(void *arg)
{
	char buf[PS_PASS_MAX + 2];
	ssize_t n;

	(void)arg;
	for (;;) {
		if ((n = recv(ps_ask, buf, sizeof(buf) - 1, 0)) == -1) {
			if (errno == EINTR)
				continue;
			log_warn("storage: password agent socket");
			return NULL;
		}
		buf[n] = '\0';
		if (n < 1 || buf[0] != '+') {
			log_info("storage: the password agent gave no "
			    "password; still locked");
			OPENSSL_cleanse(buf, sizeof(buf));
			continue;
		}
		if (ps_try(buf + 1, "the password agent") == 0) {
			OPENSSL_cleanse(buf, sizeof(buf));
			ps_ask_write(1);
			return NULL;
		}
		OPENSSL_cleanse(buf, sizeof(buf));
		ps_ask_write(0);
	}
}

static void
ps_ask_setup(const struct pkeyd_conf *pc)
{
	struct sockaddr_un sun;
	struct passwd *pw;
	int fd;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if ((size_t)snprintf(ps_asksock, sizeof(ps_asksock),
	    "%s/sck.postern-%ld", pc->ask_dir, (long)getpid()) >=
	    sizeof(sun.sun_path) || (size_t)snprintf(ps_askfile,
	    sizeof(ps_askfile), "%s/ask.postern-%ld", pc->ask_dir,
	    (long)getpid()) >= sizeof(ps_askfile))
		fatalx("storage: ask_dir %s is too long", pc->ask_dir);
	memcpy(sun.sun_path, ps_asksock, strlen(ps_asksock) + 1);
	unlink(ps_asksock);
	if ((ps_ask = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0)) == -1 ||
	    bind(ps_ask, (struct sockaddr *)&sun, sizeof(sun)) == -1 ||
	    chmod(ps_asksock, 0600) == -1)
		fatal("storage: password agent socket %s", ps_asksock);
	/* The file is rewritten after a wrong password, by pkeyd's user. */
	if ((fd = open(ps_askfile, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
	    0600)) == -1)
		fatal("storage: %s", ps_askfile);
	if (geteuid() == 0 && pc->user != NULL &&
	    (pw = getpwnam(pc->user)) != NULL) {
		if (fchown(fd, pw->pw_uid, pw->pw_gid) == -1 ||
		    chown(ps_asksock, pw->pw_uid, pw->pw_gid) == -1)
			log_warn("storage: chown %s", ps_askfile);
	}
	close(fd);
	ps_ask_write(0);
	log_info("storage locked: asking for the password through %s "
	    "(systemd-tty-ask-password-agent answers it)", ps_askfile);
}

/* ---- the control socket (postern-cli storage) ---- */

static void
ps_ctl_serve(int fd)
{
	char buf[PS_PASS_MAX + 64], *nl;
	struct ucred cr;
	socklen_t crlen = sizeof(cr);
	size_t have = 0;
	ssize_t n;
	const char *reply;

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &crlen) == -1 ||
	    (cr.uid != 0 && cr.uid != ps_uid)) {
		if (write(fd, "refused\n", 8) == -1)
			log_debug("storage: control socket peer gone");
		return;
	}
	/* Until the peer shuts its side down (a command is small). */
	while (have < sizeof(buf) - 1 && (n = read(fd, buf + have,
	    sizeof(buf) - 1 - have)) > 0)
		have += (size_t)n;
	buf[have] = '\0';
	if (strncmp(buf, "status\n", 7) == 0) {
		pthread_mutex_lock(&ps_mtx);
		reply = ps_unlocked ? "unlocked\n" : "locked\n";
		pthread_mutex_unlock(&ps_mtx);
	} else if (strncmp(buf, "unlock\n", 7) == 0) {
		if ((nl = strchr(buf + 7, '\n')) != NULL)
			*nl = '\0';
		if (ps_try(buf + 7, "postern-cli") == 0) {
			reply = "unlocked\n";
			ps_ask_write(1);
		} else
			reply = "wrong password\n";
	} else
		reply = "unknown command\n";
	OPENSSL_cleanse(buf, sizeof(buf));
	if (write(fd, reply, strlen(reply)) == -1)
		log_debug("storage: control socket peer gone");
}

static void *
ps_ctl_thread(void *arg)
{
	int fd;

	(void)arg;
	for (;;) {
		if ((fd = accept4(ps_ctl, NULL, NULL, SOCK_CLOEXEC)) == -1) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			log_warn("storage: control socket");
			return NULL;
		}
		ps_ctl_serve(fd);
		close(fd);
	}
}

static void
ps_start(void *arg)
{
	pthread_t t;

	(void)arg;
	if (pthread_create(&t, NULL, ps_ctl_thread, NULL) != 0)
		fatalx("storage: pthread_create");
	pthread_detach(t);
	if (ps_ask != -1) {
		if (pthread_create(&t, NULL, ps_ask_thread, NULL) != 0)
			fatalx("storage: pthread_create");
		pthread_detach(t);
	}
}

void
pkeyd_storage_load(const struct pkeyd_conf *pc)
{
	struct sockaddr_un sun;
	char *err = NULL;
	mode_t um;

	/* Root, or the user the daemon was started as. */
	ps_uid = geteuid();
	{
		size_t len;
		char *b = ps_slurp(pc->storage_certs, &len, &err);

		if (b == NULL)
			fatalx("storage_encryption.certificates: %s", err);
		ps_add_certs(b, len, &ps_certs, &ps_ncerts);
		free(b);
	}
	ps_nkeys = pc->nstorage_keys;
	ps_pem = xcalloc(ps_nkeys, sizeof(*ps_pem));
	ps_pemlen = xcalloc(ps_nkeys, sizeof(*ps_pemlen));
	ps_names = xcalloc(ps_nkeys, sizeof(*ps_names));
	for (size_t i = 0; i < ps_nkeys; i++) {
		ps_names[i] = pc->storage_keys[i];
		if ((ps_pem[i] = ps_slurp(pc->storage_keys[i], &ps_pemlen[i],
		    &err)) == NULL)
			fatalx("storage_encryption.private_key: %s", err);
		/* A key file may carry its own certificate (rotation). */
		ps_add_certs(ps_pem[i], ps_pemlen[i], &ps_certs, &ps_ncerts);
	}

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (strlen(pc->control_socket) >= sizeof(sun.sun_path))
		fatalx("storage_encryption.control_socket: too long");
	memcpy(sun.sun_path, pc->control_socket,
	    strlen(pc->control_socket) + 1);
	unlink(pc->control_socket);
	um = umask(0077);
	if ((ps_ctl = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1 ||
	    bind(ps_ctl, (struct sockaddr *)&sun, sizeof(sun)) == -1 ||
	    chmod(pc->control_socket, 0600) == -1 || listen(ps_ctl, 8) == -1)
		fatal("storage: control socket %s", pc->control_socket);
	umask(um);

	if (pc->storage_password != NULL && pc->storage_password[0] != '\0')
		(void)ps_try(pc->storage_password, "the environment");
	else if (strcmp(pc->storage_unlock, "environment") == 0)
		log_warnx("storage: POSTERN_STORAGE_PASSWORD is not set; "
		    "locked until `postern-cli storage unlock`");
	if (!ps_unlocked && strcmp(pc->storage_unlock, "ask") == 0)
		ps_ask_setup(pc);
	else if (!ps_unlocked)
		log_info("storage locked: mail is accepted and stored "
		    "encrypted; web pages answer 503 until `postern-cli "
		    "storage unlock`");
	keyholder_set_start(ps_start, NULL);
}

void
pkeyd_storage_dispatch(struct keyholder_chan *ch, uint32_t type,
    const unsigned char *p, size_t len)
{
	unsigned char out[PKEYD_MAX_WRAPPED];
	const unsigned char *ek;
	size_t eklen, outlen;
	EVP_PKEY_CTX *ctx;
	int ok = 0, unlocked;

	pthread_mutex_lock(&ps_mtx);
	unlocked = ps_unlocked;
	pthread_mutex_unlock(&ps_mtx);
	if (type == PKEYD_STORAGE_STATUS) {
		keyholder_reply(ch, unlocked ? "1" : "0", 1);
		return;
	}
	if (type != PKEYD_STORAGE_UNWRAP) {
		keyholder_reply_err(ch, "bad request");
		return;
	}
	if (!unlocked) {
		keyholder_reply_err(ch, "locked");
		return;
	}
	for (int i = 0; i < ps_npairs && !ok; i++) {
		if (store_crypt_rinfo_find(p, len, ps_pairs[i].cert, &ek,
		    &eklen) == -1 || eklen > PKEYD_MAX_WRAPPED)
			continue;
		if ((ctx = EVP_PKEY_CTX_new(ps_pairs[i].key, NULL)) == NULL)
			fatalx("pkeyd: EVP_PKEY_CTX_new");
		outlen = sizeof(out);
		ok = EVP_PKEY_decrypt_init(ctx) == 1 &&
		    EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING) == 1 &&
		    EVP_PKEY_decrypt(ctx, out, &outlen, ek, eklen) == 1 &&
		    outlen == STORE_CRYPT_KEYLEN;
		EVP_PKEY_CTX_free(ctx);
		ERR_clear_error();
	}
	if (ok)
		keyholder_reply(ch, out, STORE_CRYPT_KEYLEN);
	else
		keyholder_reply_err(ch, "no storage key opens it");
	OPENSSL_cleanse(out, sizeof(out));
}

/* ---- the clients' side ---- */

int
pkeyd_storage_status(struct pkeyd_client *c)
{
	unsigned char *reply = NULL;
	size_t rlen = 0;
	int t, rc = -1;

	t = keyholder_request(pkeyd_kh(c), PKEYD_STORAGE_STATUS, NULL, 0,
	    NULL, 0, 16, &reply, &rlen);
	if (t == KEYHOLDER_OK && rlen == 1)
		rc = reply[0] == '1';
	free(reply);
	return rc;
}

int
pkeyd_storage_unwrap(struct pkeyd_client *c, const unsigned char *ris,
    size_t len, unsigned char *key)
{
	unsigned char *reply = NULL;
	size_t rlen = 0;
	int t, rc = -1;

	if (len > PKEYD_STORAGE_MAX_REQ)
		return -1;
	t = keyholder_request(pkeyd_kh(c), PKEYD_STORAGE_UNWRAP, ris, len,
	    NULL, 0, 256, &reply, &rlen);
	if (t == KEYHOLDER_OK && rlen == STORE_CRYPT_KEYLEN) {
		memcpy(key, reply, STORE_CRYPT_KEYLEN);
		rc = 0;
	} else if (t == KEYHOLDER_ERR && strcmp((char *)reply, "locked") == 0)
		rc = 1;
	else if (t == KEYHOLDER_ERR)
		log_warnx("storage: %s", reply);
	if (reply != NULL)
		OPENSSL_cleanse(reply, rlen);
	free(reply);
	return rc;
}

int
pkeyd_storage_check(const struct pkeyd_conf *pc, const char *password)
{
	X509 **certs = NULL;
	int ncerts = 0, nfile, bad = 0, *used;
	char *err = NULL, name[256];
	struct store_crypt *sc;
	size_t len;

	if ((sc = store_crypt_new(pc->storage_certs, &err)) == NULL) {
		fprintf(stderr, "storage_encryption.certificates: %s\n", err);
		free(err);
		return -1;
	}
	store_crypt_free(sc);
	{
		char *b = ps_slurp(pc->storage_certs, &len, &err);

		ps_add_certs(b, len, &certs, &ncerts);
		free(b);
	}
	nfile = ncerts;
	used = xcalloc((size_t)ncerts + 64 * pc->nstorage_keys + 1,
	    sizeof(*used));
	for (size_t i = 0; i < pc->nstorage_keys; i++) {
		char *pem;
		EVP_PKEY *k;
		int matched = 0;

		if ((pem = ps_slurp(pc->storage_keys[i], &len, &err)) == NULL) {
			fprintf(stderr, "storage_encryption.private_key: %s\n",
			    err);
			xfree(&err);
			bad = 1;
			continue;
		}
		if (strstr(pem, "-----BEGIN ENCRYPTED PRIVATE KEY-----") ==
		    NULL) {
			fprintf(stderr, "storage_encryption.private_key: %s: "
			    "not an encrypted PKCS#8 PEM key\n",
			    pc->storage_keys[i]);
			bad = 1;
		}
		if (ncerts < nfile + 64 * (int)(i + 1))
			ps_add_certs(pem, len, &certs, &ncerts);
		if (password == NULL) {
			free(pem);
			continue;
		}
		if ((k = ps_open_key(pem, len, password)) == NULL) {
			fprintf(stderr, "storage_encryption.private_key: %s: "
			    "the password does not open it\n",
			    pc->storage_keys[i]);
			bad = 1;
		} else {
			for (int j = 0; j < ncerts; j++)
				if (X509_check_private_key(certs[j], k) == 1) {
					used[j] = 1;
					matched = 1;
				}
			ERR_clear_error();
			if (!matched) {
				fprintf(stderr, "storage_encryption.private_"
				    "key: %s: no certificate in %s or in the "
				    "key file matches this key\n",
				    pc->storage_keys[i], pc->storage_certs);
				bad = 1;
			}
			EVP_PKEY_free(k);
		}
		OPENSSL_cleanse(pem, len);
		free(pem);
	}
	if (password != NULL) {
		int current = 0;

		for (int j = 0; j < nfile; j++) {
			if (used[j]) {
				current = 1;
				continue;
			}
			fprintf(stderr, "storage_encryption.certificates: "
			    "certificate %d (%s) has no key in private_key "
			    "(fine for an escrow certificate)\n", j + 1,
			    ps_subject(certs[j], name, sizeof(name)));
		}
		if (!current) {
			fprintf(stderr, "storage_encryption: no certificate of "
			    "%s matches a key of private_key: new messages "
			    "could not be read\n", pc->storage_certs);
			bad = 1;
		}
	}
	for (int j = 0; j < ncerts; j++)
		X509_free(certs[j]);
	free(certs);
	free(used);
	return bad ? -1 : 0;
}
