/*
 * The key-holder core: what a process that holds private keys for a
 * network-facing sibling needs, whatever the keys are for. internal-gw's
 * keyd is built on it; the portal's key holder is meant to be.
 *
 * A key holder is a child forked before any thread starts. It keeps only
 * its channels (socketpairs to the parent side) and stderr, locks the
 * memory OpenSSL keeps private keys in (the OpenSSL secure heap, mlocked),
 * is not dumpable, drops privileges, and then cannot open a network socket
 * (a seccomp filter lets socket(2) make only AF_UNIX sockets, for syslog).
 * Each channel is served by a thread of its own: read one request, call
 * the dispatch function, which sends exactly one reply.
 *
 * Wire format, both directions: struct keyholder_hdr (host byte order: both
 * ends are one machine), then len payload bytes. Replies are KEYHOLDER_OK
 * with a payload or KEYHOLDER_ERR with a reason (text). A request longer
 * than its channel's limit is read and dropped, answered KEYHOLDER_ERR and
 * logged; the key holder stays up. It exits when a channel's peer closes.
 *
 * SECURITY: the requests come from the sibling, which is network facing
 * and may be compromised. Every request is length-bounded before it is
 * read; the dispatch functions parse payloads with the size known.
 */
#ifndef POSTERN_KEYHOLDER_H
#define POSTERN_KEYHOLDER_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define KEYHOLDER_OK		100
#define KEYHOLDER_ERR		101
#define KEYHOLDER_MAX_CHANS	32	/* channels of one key holder */
#define KEYHOLDER_MAX_WORKERS	8	/* serving threads per channel kind */

struct keyholder_hdr {
	uint32_t	type;
	uint32_t	len;
};

/* ---- both sides ---- */

/* Reads all of len bytes; -1 on error or end of file (errno 0). */
int	keyholder_read_full(int fd, void *, size_t len);
/* One message, in one write: a header and the payload a followed by b. */
int	keyholder_send(int fd, uint32_t type, const void *a, size_t alen,
	    const void *b, size_t blen);
/*
 * The header at the start of buf (len bytes), for parsers that work on
 * memory. Returns 0 and the header, or -1 when buf is short or the payload
 * announced is longer than max.
 */
int	keyholder_frame(const unsigned char *buf, size_t len, size_t max,
	    struct keyholder_hdr *);

/* ---- the key holder's side ---- */

struct keyholder_chan;
/*
 * Handles one request of a channel; answers it with keyholder_reply() or
 * keyholder_reply_err() exactly once.
 */
typedef void keyholder_dispatch_fn(struct keyholder_chan *, uint32_t type,
    const unsigned char *payload, size_t len);

struct keyholder_chan {
	int			 fd;
	const char		*name;		/* "signing", "TLS": for the log */
	size_t			 max_req;	/* payload limit */
	keyholder_dispatch_fn	*dispatch;
};

void	keyholder_reply(struct keyholder_chan *, const void *, size_t);
void	keyholder_reply_err(struct keyholder_chan *, const char *reason);

/*
 * The number of serving threads per channel kind for a configured count:
 * 0 means the number of online CPUs; the result lies in
 * 1..KEYHOLDER_MAX_WORKERS.
 */
int	keyholder_workers(int configured);
/*
 * Forks a key holder with n channels. Returns the child's pid with the
 * parent's ends of the channels in parent_fds[0..n-1] (close-on-exec), or
 * -1 (log_warn). In the child: logs as proc, keeps stdin/stdout on
 * /dev/null, stderr and the channels only, sets up the locked key memory
 * and non-dumpable state, calls load(arg) (with the privileges of the
 * caller: keys are read here), drops to user when root (NULL: stays),
 * forbids network sockets, and serves chans[i] on its end of channel i
 * until a peer closes. The fd members of chans are filled in by the child.
 */
pid_t	keyholder_spawn(const char *proc, struct keyholder_chan *chans,
	    size_t n, const char *user, void (*load)(void *), void *arg,
	    int *parent_fds);
/*
 * In the child, from load(): fn(arg) runs once privileges are dropped and
 * the network is closed, before the channels are served (a key holder's
 * own threads start there, under the same restrictions).
 */
void	keyholder_set_start(void (*fn)(void *), void *arg);
/* The number of bytes of locked key memory (0: none could be locked). */
size_t	keyholder_locked(void);

/* ---- the client's side ---- */

struct keyholder_client;

/*
 * A pool of channels to one key holder, all serving the same requests:
 * a request takes a free one, so n callers can be served at once. Takes
 * ownership of the fds. Safe to share among threads.
 */
struct keyholder_client	*keyholder_client_new(const int *fds, size_t n);
/* Closes the channels (the key holder then exits) and frees. */
void			 keyholder_client_free(struct keyholder_client **);
/*
 * One request and its reply on a free channel. Returns the reply type
 * (KEYHOLDER_OK or KEYHOLDER_ERR) with *reply (caller frees; NUL-terminated
 * after *replylen bytes), or -1 (logged) when the key holder is gone. A
 * reply of another type or longer than max_reply is a broken invariant.
 */
int	keyholder_request(struct keyholder_client *, uint32_t type,
	    const void *a, size_t alen, const void *b, size_t blen,
	    size_t max_reply, unsigned char **reply, size_t *replylen);

#endif
