/*
 * What both daemons' parent processes do the same way: start from a clean
 * signal mask, drop privileges, fork workers and supervise them. If any
 * worker dies the parent stops the others and exits non-zero (fail closed;
 * systemd restarts the daemon).
 */
#ifndef POSTERN_DAEMON_H
#define POSTERN_DAEMON_H

#include <sys/types.h>

struct conf;
struct conf_key;
struct event_base;

struct daemon_child {
	pid_t		 pid;
	const char	*name;		/* "smtp", "keyd", "web", ... */
};

/*
 * The start both daemons share: parses `-c FILE [--check] [-d]` (usage: exit
 * 2), starts logging as node, clears the inherited signal mask, loads FILE
 * (default def_file) against schema and checks that its `node` names this
 * daemon (either error: the message on stderr, exit 1), and adds syslog when
 * log.syslog is set. Sets *check for --check.
 */
void	daemon_start(int argc, char **argv, const char *node,
	    const char *def_file, const struct conf_key *schema, struct conf *,
	    int *check);
/*
 * The start of a forked worker: logs as proc, dies with the parent, ignores
 * SIGPIPE, makes libevent thread-safe and returns a new event base (fatal
 * on failure).
 */
struct event_base *daemon_worker_start(const char *proc);
/* Clears a signal mask inherited from whoever started us. */
void	daemon_clear_sigmask(void);
/* Drops to user when running as root (and sets no_new_privs); fatal on
 * failure. NULL or not root: nothing to do. */
void	daemon_drop_privileges(const char *user);
/* Blocks the signals the supervisor waits for; call before daemon_fork. */
void	daemon_supervise_prepare(void);
/* fork(2) whose child starts with the signal mask cleared; fatal on error. */
pid_t	daemon_fork(void);
/*
 * Waits for SIGTERM/SIGINT (stop every child in array order, return 0), a
 * child's exit (log it, stop the others, return 1) or SIGHUP (sent on to hup_to when it
 * is not -1).
 */
int	daemon_supervise(struct daemon_child *, size_t n, pid_t hup_to);

#endif
