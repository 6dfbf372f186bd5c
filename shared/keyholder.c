/*
 * The key-holder core; see keyholder.h. After OpenSMTPD's ca.c and
 * OpenSSH's privilege separation: the process that holds keys answers
 * typed, bounded requests and does nothing else.
 */
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "daemon.h"
#include "keyholder.h"
#include "log.h"
#include "xmalloc.h"

/* The most key memory to lock; more keys than fit are refused at load. */
#define KEYHOLDER_SECURE_MAX	(8 * 1024 * 1024)
#define KEYHOLDER_SECURE_MIN	(64 * 1024)

struct keyholder_conn {
	int		 fd;
	pthread_mutex_t	 mtx;
};

struct keyholder_client {
	struct keyholder_conn	*conn;
	size_t			 n;
	unsigned int		 next;		/* where the search starts */
};

static size_t	keyholder_secure;
static void	(*keyholder_start_fn)(void *);
static void	*keyholder_start_arg;

/* ---- framing, both sides ---- */

int
keyholder_read_full(int fd, void *buf, size_t len)
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

/*
 * One frame in one sendmsg: a header and its body written separately
 * wake the reader twice (it reads the header, then sleeps again until the
 * body follows), and each wake-up costs more than the request itself.
 */
int
keyholder_send(int fd, uint32_t type, const void *a, size_t alen,
    const void *b, size_t blen)
{
	struct keyholder_hdr h;
	struct iovec iov[3], *v = iov;
	struct msghdr mh;
	int niov = 0;
	ssize_t n;

	if (alen > UINT32_MAX || blen > UINT32_MAX - alen)
		fatalx("keyholder: message too long");
	h.type = type;
	h.len = (uint32_t)(alen + blen);
	iov[niov].iov_base = &h;
	iov[niov++].iov_len = sizeof(h);
	if (alen > 0) {
		iov[niov].iov_base = (void *)a;
		iov[niov++].iov_len = alen;
	}
	if (blen > 0) {
		iov[niov].iov_base = (void *)b;
		iov[niov++].iov_len = blen;
	}
	while (niov > 0) {
		memset(&mh, 0, sizeof(mh));
		mh.msg_iov = v;
		mh.msg_iovlen = (size_t)niov;
		if ((n = sendmsg(fd, &mh, MSG_NOSIGNAL)) == -1) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		/* A partial write: skip what went, go on with the rest. */
		while (niov > 0 && (size_t)n >= v->iov_len) {
			n -= (ssize_t)v->iov_len;
			v++;
			niov--;
		}
		if (niov > 0) {
			v->iov_base = (char *)v->iov_base + n;
			v->iov_len -= (size_t)n;
		}
	}
	return 0;
}

int
keyholder_frame(const unsigned char *buf, size_t len, size_t max,
    struct keyholder_hdr *h)
{
	if (len < sizeof(*h))
		return -1;
	memcpy(h, buf, sizeof(*h));
	if (h->len > max)
		return -1;
	return 0;
}

/* ---- the key holder's side ---- */

void
keyholder_reply(struct keyholder_chan *ch, const void *p, size_t len)
{
	if (keyholder_send(ch->fd, KEYHOLDER_OK, p, len, NULL, 0) == -1)
		fatal("%s channel: send", ch->name);
}

void
keyholder_reply_err(struct keyholder_chan *ch, const char *reason)
{
	if (keyholder_send(ch->fd, KEYHOLDER_ERR, reason, strlen(reason),
	    NULL, 0) == -1)
		fatal("%s channel: send", ch->name);
}

int
keyholder_workers(int configured)
{
	long n = configured;

	if (n <= 0 && (n = sysconf(_SC_NPROCESSORS_ONLN)) < 1)
		n = 1;
	return n > KEYHOLDER_MAX_WORKERS ? KEYHOLDER_MAX_WORKERS : (int)n;
}

size_t
keyholder_locked(void)
{
	return keyholder_secure;
}

/*
 * Reads and drops len bytes of a refused request, so the channel stays in
 * step. Returns 0, or -1 at end of file or on error.
 */
static int
keyholder_drain(int fd, uint32_t len)
{
	unsigned char buf[4096];
	size_t n;

	while (len > 0) {
		n = len < sizeof(buf) ? len : sizeof(buf);
		if (keyholder_read_full(fd, buf, n) == -1)
			return -1;
		len -= (uint32_t)n;
	}
	return 0;
}

static void * __attribute__((noreturn))
keyholder_serve(void *arg)
{
	struct keyholder_chan *ch = arg;
	struct keyholder_hdr h;
	unsigned char *buf = xmalloc(ch->max_req + 1);

	for (;;) {
		if (keyholder_read_full(ch->fd, &h, sizeof(h)) == -1) {
			if (errno == 0)
				_exit(0);	/* the peer closed: done */
			fatal("%s channel: read", ch->name);
		}
		if (h.len > ch->max_req) {
			log_warnx("%s channel: request type %u of %u bytes "
			    "refused (at most %zu)", ch->name, h.type, h.len,
			    ch->max_req);
			if (keyholder_drain(ch->fd, h.len) == -1)
				fatalx("%s channel: truncated request",
				    ch->name);
			keyholder_reply_err(ch, "request too large");
			continue;
		}
		if (keyholder_read_full(ch->fd, buf, h.len) == -1)
			fatalx("%s channel: truncated request", ch->name);
		buf[h.len] = '\0';
		ch->dispatch(ch, h.type, buf, h.len);
	}
}

/*
 * Locks the memory OpenSSL keeps private keys in: its secure heap, as
 * large as RLIMIT_MEMLOCK allows (root is not bound by it) up to
 * KEYHOLDER_SECURE_MAX. Below KEYHOLDER_SECURE_MIN the keys stay in
 * ordinary memory, with a warning.
 */
static void
keyholder_lock_memory(void)
{
	struct rlimit rl;
	size_t want = KEYHOLDER_SECURE_MAX;

	if (geteuid() != 0 && getrlimit(RLIMIT_MEMLOCK, &rl) == 0 &&
	    rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < want) {
		while (want > rl.rlim_cur)
			want /= 2;
		/* What libcrypto and the guard pages use besides. */
		want /= 2;
	}
	if (want < KEYHOLDER_SECURE_MIN ||
	    CRYPTO_secure_malloc_init(want, 16) != 1) {
		log_warnx("key memory is not locked (RLIMIT_MEMLOCK too "
		    "small?): keys may be swapped out");
		return;
	}
	keyholder_secure = want;
}

/*
 * No network: socket(2) makes AF_UNIX sockets only (syslog); any other
 * family fails with EACCES. Another architecture's system calls kill.
 */
static void
keyholder_no_network(void)
{
#if defined(__x86_64__)
#define KEYHOLDER_ARCH	AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define KEYHOLDER_ARCH	AUDIT_ARCH_AARCH64
#endif
#ifdef KEYHOLDER_ARCH
	struct sock_filter f[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
		    offsetof(struct seccomp_data, arch)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, KEYHOLDER_ARCH, 1, 0),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
		    offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_socket, 0, 4),
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
		    offsetof(struct seccomp_data, args[0])),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AF_UNIX, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EACCES),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = { sizeof(f) / sizeof(f[0]), f };

	if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) == -1)
		fatal("seccomp");
#else
	log_warnx("no seccomp filter on this architecture: network sockets "
	    "stay possible");
#endif
}

pid_t
keyholder_spawn(const char *proc, struct keyholder_chan *chans, size_t n,
    const char *user, void (*load)(void *), void *arg, int *parent_fds)
{
	pthread_t thr;
	int sv[KEYHOLDER_MAX_CHANS][2], hi[KEYHOLDER_MAX_CHANS], devnull;
	size_t i;
	pid_t pid;

	if (n == 0 || n > KEYHOLDER_MAX_CHANS)
		fatalx("keyholder: %zu channels", n);
	for (i = 0; i < n; i++)
		if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0,
		    sv[i]) == -1) {
			log_warn("%s: socketpair", proc);
			while (i-- > 0) {
				close(sv[i][0]);
				close(sv[i][1]);
			}
			return -1;
		}
	if ((pid = fork()) == -1) {
		log_warn("%s: fork", proc);
		for (i = 0; i < n; i++) {
			close(sv[i][0]);
			close(sv[i][1]);
		}
		return -1;
	}
	if (pid > 0) {
		for (i = 0; i < n; i++) {
			close(sv[i][1]);
			parent_fds[i] = sv[i][0];
		}
		return pid;
	}

	/*
	 * The child keeps its channels as fds 3.. 3+n-1: each is first moved
	 * above them, so no dup2 clobbers another.
	 */
	log_setproc(proc);
	for (i = 0; i < n; i++)
		if ((hi[i] = fcntl(sv[i][1], F_DUPFD, 3 + KEYHOLDER_MAX_CHANS))
		    == -1)
			fatal("%s: fcntl", proc);
	for (i = 0; i < n; i++) {
		if (dup2(hi[i], 3 + (int)i) == -1)
			fatal("%s: dup2", proc);
		chans[i].fd = 3 + (int)i;
	}
	if ((devnull = open("/dev/null", O_RDWR)) == -1 ||
	    dup2(devnull, STDIN_FILENO) == -1 ||
	    dup2(devnull, STDOUT_FILENO) == -1)
		fatal("%s: /dev/null", proc);
	if (close_range(3 + (unsigned int)n, ~0U, 0) == -1)
		fatal("%s: close_range", proc);
	signal(SIGPIPE, SIG_IGN);
	signal(SIGINT, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) == -1)
		fatal("%s: PR_SET_DUMPABLE", proc);
	keyholder_lock_memory();

	load(arg);

	daemon_drop_privileges(user);
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == -1)
		fatal("%s: PR_SET_NO_NEW_PRIVS", proc);
	keyholder_no_network();
	if (keyholder_start_fn != NULL)
		keyholder_start_fn(keyholder_start_arg);
	for (i = 1; i < n; i++)
		if (pthread_create(&thr, NULL, keyholder_serve, &chans[i]) != 0)
			fatalx("%s: pthread_create", proc);
	keyholder_serve(&chans[0]);
}

void
keyholder_set_start(void (*fn)(void *), void *arg)
{
	keyholder_start_fn = fn;
	keyholder_start_arg = arg;
}

/* ---- the client's side ---- */

struct keyholder_client *
keyholder_client_new(const int *fds, size_t n)
{
	struct keyholder_client *c;

	if (n == 0)
		fatalx("keyholder: a client without channels");
	c = xcalloc(1, sizeof(*c));
	c->conn = xcalloc(n, sizeof(*c->conn));
	c->n = n;
	for (size_t i = 0; i < n; i++) {
		c->conn[i].fd = fds[i];
		if (pthread_mutex_init(&c->conn[i].mtx, NULL) != 0)
			fatalx("keyholder: pthread_mutex_init");
	}
	return c;
}

void
keyholder_client_free(struct keyholder_client **cp)
{
	struct keyholder_client *c = *cp;

	if (c == NULL)
		return;
	for (size_t i = 0; i < c->n; i++) {
		close(c->conn[i].fd);
		pthread_mutex_destroy(&c->conn[i].mtx);
	}
	free(c->conn);
	free(c);
	*cp = NULL;
}

/* A free channel, locked; when all are busy, waits for one. */
static struct keyholder_conn *
keyholder_take(struct keyholder_client *c)
{
	unsigned int start;
	size_t i;

	start = __atomic_fetch_add(&c->next, 1, __ATOMIC_RELAXED);
	for (i = 0; i < c->n; i++)
		if (pthread_mutex_trylock(&c->conn[(start + i) % c->n].mtx)
		    == 0)
			return &c->conn[(start + i) % c->n];
	pthread_mutex_lock(&c->conn[start % c->n].mtx);
	return &c->conn[start % c->n];
}

int
keyholder_request(struct keyholder_client *c, uint32_t type, const void *a,
    size_t alen, const void *b, size_t blen, size_t max_reply,
    unsigned char **reply, size_t *replylen)
{
	struct keyholder_conn *k;
	struct keyholder_hdr h;
	unsigned char *buf = NULL;
	int rv = -1;

	*reply = NULL;
	*replylen = 0;
	k = keyholder_take(c);
	if (keyholder_send(k->fd, type, a, alen, b, blen) == -1 ||
	    keyholder_read_full(k->fd, &h, sizeof(h)) == -1) {
		log_warn("key holder unavailable");
		goto out;
	}
	if ((h.type != KEYHOLDER_OK && h.type != KEYHOLDER_ERR) ||
	    h.len > max_reply)
		fatalx("key holder: bad reply type %u length %u", h.type,
		    h.len);
	buf = xmalloc((size_t)h.len + 1);
	if (keyholder_read_full(k->fd, buf, h.len) == -1) {
		log_warn("key holder unavailable");
		free(buf);
		goto out;
	}
	buf[h.len] = '\0';
	*reply = buf;
	*replylen = h.len;
	rv = (int)h.type;
out:
	pthread_mutex_unlock(&k->mtx);
	return rv;
}
