/*
 * winmail.dat unpacking; see web_tnef.h. libytnef parses the stream (its
 * memory reader checks every length against the buffer); we copy out the
 * file data and names and never trust a size it reports beyond the bytes
 * it actually holds.
 *
 * SECURITY: the stream comes from any Internet sender and libytnef is a
 * third-party parser, so the web worker never runs it itself. A child
 * forked for one stream closes every descriptor but its two pipes and
 * stderr, limits its CPU time, and enters a seccomp filter that allows
 * reading its input pipe, writing its output pipe and stderr, memory
 * management and exit; anything else (open, socket, exec...) kills it.
 * It answers in a framed format that the parent checks against fixed
 * bounds before it believes a byte of it; a dead, killed or garbled child
 * is an error, never a partial result.
 */
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <ytnef.h>

#include "log.h"
#include "web/web_tnef.h"
#include "xmalloc.h"

#define WEB_TNEF_NAME_MAX	1024
#define WEB_TNEF_CPU_SECONDS	5
#define WEB_TNEF_WAIT_MS	20000	/* for each read of the answer */
#define WEB_TNEF_IN		0	/* the child's descriptors */
#define WEB_TNEF_OUT		3
#define WEB_TNEF_END		0xffffffffU

static char *
web_tnef_name(Attachment *a)
{
	variableLength *v;

	v = MAPIFindProperty(&a->MAPI, PROP_TAG(PT_STRING8,
	    PR_ATTACH_LONG_FILENAME));
	if (v == MAPI_UNDEFINED || v == NULL || v->size <= 0 ||
	    v->data == NULL) {
		v = &a->Title;
		if (v->size <= 0 || v->data == NULL)
			return NULL;
	}
	/* Strings in TNEF carry their NUL; strndup stops at the first. */
	return xstrndup((const char *)v->data, v->size);
}

int
web_tnef_unpack(const unsigned char *data, size_t len,
    struct web_tnef_file *out, int max)
{
	TNEFStruct t;
	Attachment *a;
	int n = 0;

	if (len < 6 || len > 0x7fffffff)
		return 0;
	TNEFInitialize(&t);
	t.Debug = 0;
	/* ytnef only reads the buffer; its prototype lacks the const. */
	if (TNEFParseMemory((BYTE *)(uintptr_t)data, (long)len, &t) < 0) {
		TNEFFree(&t);
		return 0;
	}
	for (a = t.starting_attach.next; a != NULL && n < max; a = a->next) {
		variableLength *d = &a->FileData;
		size_t off = 0;

		if (d->size <= 0 || d->data == NULL) {
			/* An embedded object: its data follows a 16-byte IID. */
			d = MAPIFindProperty(&a->MAPI, PROP_TAG(PT_OBJECT,
			    PR_ATTACH_DATA_OBJ));
			if (d == MAPI_UNDEFINED || d == NULL || d->size <= 16 ||
			    d->data == NULL)
				continue;
			off = 16;
		}
		out[n].name = web_tnef_name(a);
		out[n].len = d->size - off;
		out[n].data = xmalloc(out[n].len ? out[n].len : 1);
		memcpy(out[n].data, d->data + off, out[n].len);
		n++;
	}
	TNEFFree(&t);
	return n;
}

void
web_tnef_free(struct web_tnef_file *f, int n)
{
	for (int i = 0; i < n; i++) {
		free(f[i].name);
		free(f[i].data);
	}
}

/* --- the sandboxed child --------------------------------------------------- */

#if defined(__x86_64__)
#define WEB_TNEF_ARCH	AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define WEB_TNEF_ARCH	AUDIT_ARCH_AARCH64
#else
#error "web_tnef: no seccomp architecture for this CPU"
#endif

#define WEB_TNEF_LD(f)	(struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, \
			    offsetof(struct seccomp_data, f))
#define WEB_TNEF_RET(v)	(struct sock_filter)BPF_STMT(BPF_RET | BPF_K, (v))
/* if (acc == k) skip t instructions, else skip f */
#define WEB_TNEF_IF(k, t, f) (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | \
			    BPF_K, (k), (t), (f))

static void
web_tnef_seccomp(void)
{
	/* Syscalls allowed whatever their arguments. */
	static const int plain[] = {
		__NR_exit, __NR_exit_group, __NR_brk, __NR_mmap, __NR_munmap,
		__NR_mremap, __NR_madvise, __NR_mprotect, __NR_rt_sigreturn,
		__NR_futex, __NR_close, __NR_sigaltstack, __NR_rt_sigprocmask,
	};
	enum { NPLAIN = sizeof(plain) / sizeof(plain[0]) };
	struct sock_filter f[8 + NPLAIN + 12];
	struct sock_fprog prog;
	int n = 0, i;

	f[n++] = WEB_TNEF_LD(arch);
	f[n++] = WEB_TNEF_IF(WEB_TNEF_ARCH, 1, 0);
	f[n++] = WEB_TNEF_RET(SECCOMP_RET_KILL_PROCESS);
	f[n++] = WEB_TNEF_LD(nr);
	/*
	 * After the plain list, at P: P+0..2 read check, P+3..7 write
	 * check, P+8..9 stat, P+10 kill, P+11 EBADF, P+12 allow.
	 */
	for (i = 0; i < NPLAIN; i++)
		f[n++] = WEB_TNEF_IF(plain[i], NPLAIN - i + 11, 0);
	/* read(WEB_TNEF_IN, ...) */
	f[n++] = WEB_TNEF_IF(__NR_read, 0, 2);
	f[n++] = WEB_TNEF_LD(args[0]);
	f[n++] = WEB_TNEF_IF(WEB_TNEF_IN, 9, 7);
	/* write(WEB_TNEF_OUT or stderr, ...); other descriptors: EBADF */
	f[n++] = WEB_TNEF_IF(__NR_write, 0, 4);
	f[n++] = WEB_TNEF_LD(args[0]);
	f[n++] = WEB_TNEF_IF(WEB_TNEF_OUT, 6, 0);
	f[n++] = WEB_TNEF_IF(STDERR_FILENO, 5, 0);
	f[n++] = WEB_TNEF_RET(SECCOMP_RET_ERRNO | EBADF);
	/* stdio asks for fstat before it writes: EBADF, not death. */
#ifdef __NR_newfstatat
	f[n++] = WEB_TNEF_IF(__NR_newfstatat, 2, 0);
#else
	f[n++] = WEB_TNEF_IF(__NR_fstat, 2, 0);
#endif
	f[n++] = WEB_TNEF_IF(__NR_fstat, 1, 0);
	f[n++] = WEB_TNEF_RET(SECCOMP_RET_KILL_PROCESS);
	f[n++] = WEB_TNEF_RET(SECCOMP_RET_ERRNO | EBADF);
	f[n++] = WEB_TNEF_RET(SECCOMP_RET_ALLOW);
	prog.len = n;
	prog.filter = f;
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == -1 ||
	    prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) == -1)
		_exit(3);
}

static int
web_tnef_put(const void *p, size_t len)
{
	const char *c = p;
	ssize_t n;

	while (len > 0) {
		if ((n = write(WEB_TNEF_OUT, c, len)) <= 0) {
			if (n == -1 && errno == EINTR)
				continue;
			return -1;
		}
		c += n;
		len -= n;
	}
	return 0;
}

static void __attribute__((noreturn))
web_tnef_child(size_t maxin)
{
	struct web_tnef_file f[WEB_TNEF_MAX_FILES];
	struct rlimit rl = { WEB_TNEF_CPU_SECONDS, WEB_TNEF_CPU_SECONDS };
	const char *hook = getenv("POSTERN_TEST_TNEF_HOOK");
	unsigned char *data = NULL;
	size_t len = 0, cap = 0;
	uint32_t v;
	ssize_t got;
	int n;

	setrlimit(RLIMIT_CPU, &rl);
	web_tnef_seccomp();
	/* For the tests: a parser that tries to leave its sandbox. */
	if (hook != NULL && strcmp(hook, "escape") == 0)
		(void)open("/etc/hostname", O_RDONLY);
	for (;;) {
		if (len == cap) {
			cap = cap ? cap * 2 : 65536;
			if (cap > maxin)
				cap = maxin;
			if ((data = realloc(data, cap)) == NULL)
				_exit(4);
		}
		if ((got = read(WEB_TNEF_IN, data + len, cap - len)) == 0)
			break;
		if (got < 0) {
			if (errno == EINTR)
				continue;
			_exit(5);
		}
		if ((len += got) == maxin)
			_exit(6);
	}
	n = web_tnef_unpack(data, len, f, WEB_TNEF_MAX_FILES);
	for (int i = 0; i < n; i++) {
		size_t nl = f[i].name ? strlen(f[i].name) : 0;

		if (nl > WEB_TNEF_NAME_MAX)
			nl = WEB_TNEF_NAME_MAX;
		v = nl;
		if (web_tnef_put(&v, 4) == -1 ||
		    web_tnef_put(f[i].name ? f[i].name : "", nl) == -1)
			_exit(7);
		v = f[i].len;
		if (web_tnef_put(&v, 4) == -1 ||
		    web_tnef_put(f[i].data, f[i].len) == -1)
			_exit(7);
	}
	v = WEB_TNEF_END;
	if (web_tnef_put(&v, 4) == -1)
		_exit(7);
	_exit(0);
}

/* --- the parent ---------------------------------------------------------- */

/* Reads exactly len bytes of the answer; -1 on EOF, error or timeout. */
static int
web_tnef_get(int fd, void *p, size_t len)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	char *c = p;
	ssize_t n;

	while (len > 0) {
		if (poll(&pfd, 1, WEB_TNEF_WAIT_MS) <= 0)
			return -1;
		if ((n = read(fd, c, len)) <= 0) {
			if (n == -1 && errno == EINTR)
				continue;
			return -1;
		}
		c += n;
		len -= n;
	}
	return 0;
}

int
web_tnef_unpack_sandboxed(ssize_t (*rd)(void *, char *, size_t),
    void *arg, size_t maxin, struct web_tnef_file *out, int max)
{
	int in[2], res[2], status, n = 0, rc = -1, big = 0;
	size_t total = 0;
	char buf[16384];
	uint32_t v;
	ssize_t got;
	pid_t pid;

	if (pipe2(in, O_CLOEXEC) == -1)
		return -1;
	if (pipe2(res, O_CLOEXEC) == -1) {
		close(in[0]);
		close(in[1]);
		return -1;
	}
	if ((pid = fork()) == -1) {
		log_warn("web: fork for winmail.dat");
		close(in[0]);
		close(in[1]);
		close(res[0]);
		close(res[1]);
		return -1;
	}
	if (pid == 0) {
		/* Only the pipes and stderr stay open. */
		if (dup2(in[0], WEB_TNEF_IN) == -1 ||
		    dup2(res[1], WEB_TNEF_OUT) == -1)
			_exit(2);
		close(STDOUT_FILENO);
		if (close_range(WEB_TNEF_OUT + 1, ~0U, 0) == -1)
			_exit(2);
		web_tnef_child(maxin);
	}
	close(in[0]);
	close(res[1]);
	/* The child reads all of its input before it answers. */
	while ((got = rd(arg, buf, sizeof(buf))) > 0) {
		if (total + got >= maxin) {
			big = 1;
			break;
		}
		total += got;
		if (write(in[1], buf, got) != got)
			break;
	}
	close(in[1]);
	if (big || got < 0) {
		kill(pid, SIGKILL);
		goto done;
	}
	for (;;) {
		if (web_tnef_get(res[0], &v, 4) == -1)
			goto done;
		if (v == WEB_TNEF_END)
			break;
		if (n == max || v > WEB_TNEF_NAME_MAX)
			goto done;
		out[n].name = xmalloc(v + 1);
		out[n].data = NULL;
		if (web_tnef_get(res[0], out[n].name, v) == -1) {
			free(out[n].name);
			goto done;
		}
		out[n].name[v] = '\0';
		/* The files were inside the input: never more than it. */
		if (web_tnef_get(res[0], &v, 4) == -1 || v > total) {
			free(out[n].name);
			goto done;
		}
		out[n].data = xmalloc(v ? v : 1);
		out[n].len = v;
		total -= v;
		n++;
		if (web_tnef_get(res[0], out[n - 1].data, v) == -1)
			goto done;
	}
	rc = 0;
 done:
	close(res[0]);
	if (rc == -1)
		kill(pid, SIGKILL);
	while (waitpid(pid, &status, 0) == -1 && errno == EINTR)
		;
	if (rc == 0 && (!WIFEXITED(status) || WEXITSTATUS(status) != 0))
		rc = -1;
	if (big) {
		log_info("web: a winmail.dat over %zu bytes is not unpacked",
		    maxin);
		rc = 0;
	} else if (rc == -1) {
		if (WIFSIGNALED(status) && WTERMSIG(status) == SIGSYS)
			log_warnx("web: the winmail.dat parser broke its "
			    "sandbox and was killed");
		else
			log_warnx("web: the winmail.dat parser failed (%s %d)",
			    WIFSIGNALED(status) ? "signal" : "exit",
			    WIFSIGNALED(status) ? WTERMSIG(status) :
			    WEXITSTATUS(status));
	}
	if (rc == -1 || big) {
		web_tnef_free(out, n);
		return rc;
	}
	return n;
}
