/*
 * Logging: one line per event to stderr (foreground, systemd journal) and/or
 * syslog. A line about a message carries its id ("id=1a2b3c...") so every
 * event of one message can be found with one grep.
 */
#ifndef POSTERN_LOG_H
#define POSTERN_LOG_H

#include <stdarg.h>

#define LOG_TO_STDERR	0x1
#define LOG_TO_SYSLOG	0x2

void	log_init(const char *progname, int dest, int debug);
void	log_setproc(const char *procname);	/* "smtp", "keyd", ... */
void	log_debug(const char *, ...) __attribute__((format(printf, 1, 2)));
void	log_info(const char *, ...) __attribute__((format(printf, 1, 2)));
void	log_warnx(const char *, ...) __attribute__((format(printf, 1, 2)));
/* log_warn appends ": strerror(errno)". */
void	log_warn(const char *, ...) __attribute__((format(printf, 1, 2)));
/* Broken invariant: log and exit(1). fatal appends strerror(errno). */
void	fatal(const char *, ...)
	    __attribute__((format(printf, 1, 2), noreturn));
void	fatalx(const char *, ...)
	    __attribute__((format(printf, 1, 2), noreturn));

/* A fresh per-message id: 16 lowercase hex characters. */
#define LOG_ID_LEN 16
void	log_new_id(char out[LOG_ID_LEN + 1]);

#endif
