/* Parent-process plumbing shared by the daemons; see daemon.h. */
#include <sys/prctl.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <errno.h>
#include <getopt.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/thread.h>

#include "config.h"
#include "daemon.h"
#include "log.h"

void
daemon_clear_sigmask(void)
{
	sigset_t none;

	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
}

void
daemon_drop_privileges(const char *user)
{
	struct passwd *pw;

	if (user == NULL || geteuid() != 0)
		return;
	if ((pw = getpwnam(user)) == NULL)
		fatalx("unknown user %s", user);
	if (setgroups(1, &pw->pw_gid) == -1 ||
	    setresgid(pw->pw_gid, pw->pw_gid, pw->pw_gid) == -1 ||
	    setresuid(pw->pw_uid, pw->pw_uid, pw->pw_uid) == -1)
		fatal("cannot drop privileges to %s", user);
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == -1)
		fatal("PR_SET_NO_NEW_PRIVS");
}

static void
daemon_sigset(sigset_t *set)
{
	sigemptyset(set);
	sigaddset(set, SIGCHLD);
	sigaddset(set, SIGTERM);
	sigaddset(set, SIGINT);
	sigaddset(set, SIGHUP);
}

void
daemon_supervise_prepare(void)
{
	sigset_t set;

	daemon_sigset(&set);
	sigprocmask(SIG_BLOCK, &set, NULL);
}

pid_t
daemon_fork(void)
{
	pid_t pid;

	if ((pid = fork()) == -1)
		fatal("fork");
	if (pid == 0)
		daemon_clear_sigmask();
	return pid;
}

static const char *
daemon_name(struct daemon_child *c, size_t n, pid_t pid)
{
	for (size_t i = 0; i < n; i++)
		if (c[i].pid == pid)
			return c[i].name;
	return "child";
}

/*
 * Stops the children one by one, in array order, so a worker can finish
 * with a helper (internal-gw's keyd) that is still there. When failing,
 * a child that was already dying on its own (not by our SIGTERM) is named
 * too: it may be the one whose death started this.
 */
static void
daemon_stop_all(struct daemon_child *c, size_t n, int failing)
{
	int status;

	for (size_t i = 0; i < n; i++) {
		if (c[i].pid <= 0)
			continue;
		kill(c[i].pid, SIGTERM);
		while (waitpid(c[i].pid, &status, 0) == -1 && errno == EINTR)
			;
		if (failing && !(WIFSIGNALED(status) &&
		    WTERMSIG(status) == SIGTERM) &&
		    !(WIFEXITED(status) && WEXITSTATUS(status) == 0))
			log_warnx("%s process %ld exited (status %d); failing "
			    "closed", c[i].name, (long)c[i].pid, status);
	}
}

int
daemon_supervise(struct daemon_child *c, size_t n, pid_t hup_to)
{
	sigset_t set;
	pid_t pid;
	int sig, status, dead = 0;

	daemon_sigset(&set);
	for (;;) {
		/*
		 * A child may have died before we got here: reap first. Every
		 * child already gone is named, not only the first one waitpid
		 * returns: when one dies its peer may follow at once (keyd
		 * ends when the SMTP worker's socket closes), and the log must
		 * still show the one that died first.
		 */
		while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
			log_warnx("%s process %ld exited (status %d); failing "
			    "closed", daemon_name(c, n, pid), (long)pid,
			    status);
			for (size_t i = 0; i < n; i++)
				if (c[i].pid == pid)
					c[i].pid = -1;
			dead = 1;
		}
		if (dead) {
			daemon_stop_all(c, n, 1);
			return 1;
		}
		if ((sig = sigwaitinfo(&set, NULL)) == -1) {
			if (errno == EINTR)
				continue;
			fatal("sigwaitinfo");
		}
		switch (sig) {
		case SIGHUP:
			if (hup_to != -1)
				kill(hup_to, SIGHUP);
			break;
		case SIGTERM:
		case SIGINT:
			daemon_stop_all(c, n, 0);
			log_info("stopped");
			return 0;
		default:	/* SIGCHLD: reaped at the top */
			break;
		}
	}
}

static void
daemon_usage(const char *node)
{
	fprintf(stderr, "usage: %s -c FILE [--check] [-d]\n", node);
	exit(2);
}

void
daemon_start(int argc, char **argv, const char *node, const char *def_file,
    const struct conf_key *schema, struct conf *c, int *check)
{
	static const struct option longopts[] = {
		{ "check", no_argument, NULL, 'C' },
		{ "config", required_argument, NULL, 'c' },
		{ "debug", no_argument, NULL, 'd' },
		{ NULL, 0, NULL, 0 },
	};
	const char *file = def_file;
	config_setting_t *s;
	char *err = NULL;
	int ch, debug = 0;

	*check = 0;
	while ((ch = getopt_long(argc, argv, "c:d", longopts, NULL)) != -1) {
		switch (ch) {
		case 'c': file = optarg; break;
		case 'C': *check = 1; break;
		case 'd': debug = 1; break;
		default: daemon_usage(node);
		}
	}
	if (optind != argc)
		daemon_usage(node);

	log_init(node, LOG_TO_STDERR, debug);
	/* Whoever started us may have blocked signals: a daemon that cannot
	 * be stopped is worse than one that dies. */
	daemon_clear_sigmask();
	if (conf_load(c, file, schema, &err) == -1) {
		fputs(err, stderr);
		free(err);
		exit(1);
	}
	if (strcmp(conf_str(c, "node"), node) != 0) {
		s = conf_setting(c, "node");
		fprintf(stderr, "%s:%d: node: must be \"%s\"\n", file,
		    s != NULL ? config_setting_source_line(s) : 0, node);
		exit(1);
	}
	if (conf_bool(c, "log.syslog"))
		log_init(node, LOG_TO_STDERR | LOG_TO_SYSLOG,
		    debug || conf_bool(c, "log.debug"));
}

struct event_base *
daemon_worker_start(const char *proc)
{
	struct event_base *base;

	log_setproc(proc);
	prctl(PR_SET_PDEATHSIG, SIGTERM);
	signal(SIGPIPE, SIG_IGN);
	if (evthread_use_pthreads() == -1)
		fatalx("evthread_use_pthreads");
	if ((base = event_base_new()) == NULL)
		fatalx("event_base_new");
	return base;
}
