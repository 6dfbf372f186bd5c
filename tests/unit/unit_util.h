/*
 * Small helpers the unit tests share.
 */
#ifndef POSTERN_TEST_UNIT_UTIL_H
#define POSTERN_TEST_UNIT_UTIL_H

#include <sys/wait.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

/* Runs a shell command built from fmt; its exit status, -1 if it did not
 * exit. */
static inline int __attribute__((format(printf, 1, 2)))
run(const char *fmt, ...)
{
	char cmd[4096];
	va_list ap;
	int st;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	st = system(cmd);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

#endif
