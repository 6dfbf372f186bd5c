/* Logging to stderr and syslog; see log.h. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include <openssl/rand.h>

#include "log.h"

static const char	*log_prog = "postern";
static const char	*log_proc = NULL;
static int		 log_dest = LOG_TO_STDERR;
static int		 log_debug_on;
static pthread_mutex_t	 log_mtx = PTHREAD_MUTEX_INITIALIZER;

void
log_init(const char *progname, int dest, int debug)
{
	log_prog = progname;
	log_dest = dest;
	log_debug_on = debug;
	if (dest & LOG_TO_SYSLOG)
		openlog(progname, LOG_PID | LOG_NDELAY, LOG_MAIL);
	tzset();
}

void
log_setproc(const char *procname)
{
	log_proc = procname;
}

static void
log_vwrite(int pri, const char *fmt, va_list ap, const char *suffix)
{
	char msg[4096];
	int n;

	n = vsnprintf(msg, sizeof(msg), fmt, ap);
	if (n < 0)
		return;
	/* One event, one line: never let peer data split a log line. */
	for (char *p = msg; *p != '\0'; p++)
		if (*p == '\n' || *p == '\r')
			*p = ' ';
	pthread_mutex_lock(&log_mtx);
	if (log_dest & LOG_TO_STDERR) {
		fprintf(stderr, "%s[%ld]%s%s: %s%s%s\n", log_prog, (long)getpid(),
		    log_proc ? " " : "", log_proc ? log_proc : "", msg,
		    suffix ? ": " : "", suffix ? suffix : "");
		fflush(stderr);
	}
	if (log_dest & LOG_TO_SYSLOG)
		syslog(pri, "%s%s%s%s%s", log_proc ? log_proc : "",
		    log_proc ? ": " : "", msg, suffix ? ": " : "",
		    suffix ? suffix : "");
	pthread_mutex_unlock(&log_mtx);
}

void
log_debug(const char *fmt, ...)
{
	va_list ap;

	if (!log_debug_on)
		return;
	va_start(ap, fmt);
	log_vwrite(LOG_DEBUG, fmt, ap, NULL);
	va_end(ap);
}

void
log_info(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vwrite(LOG_INFO, fmt, ap, NULL);
	va_end(ap);
}

void
log_warnx(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vwrite(LOG_WARNING, fmt, ap, NULL);
	va_end(ap);
}

void
log_warn(const char *fmt, ...)
{
	va_list ap;
	char buf[256];
	int saved = errno;
	const char *err = strerror_r(saved, buf, sizeof(buf));

	va_start(ap, fmt);
	log_vwrite(LOG_WARNING, fmt, ap, err);
	va_end(ap);
	errno = saved;
}

void
fatal(const char *fmt, ...)
{
	va_list ap;
	char buf[256];
	const char *err = strerror_r(errno, buf, sizeof(buf));

	va_start(ap, fmt);
	log_vwrite(LOG_CRIT, fmt, ap, err);
	va_end(ap);
	exit(1);
}

void
fatalx(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vwrite(LOG_CRIT, fmt, ap, NULL);
	va_end(ap);
	exit(1);
}

void
log_new_id(char out[LOG_ID_LEN + 1])
{
	unsigned char r[LOG_ID_LEN / 2];
	static const char hex[] = "0123456789abcdef";

	if (RAND_bytes(r, sizeof(r)) != 1)
		fatalx("RAND_bytes failed");
	for (size_t i = 0; i < sizeof(r); i++) {
		out[2 * i] = hex[r[i] >> 4];
		out[2 * i + 1] = hex[r[i] & 0xf];
	}
	out[LOG_ID_LEN] = '\0';
}
