/*
 * The public third-party corpora (XSS payloads, TOTP vectors) stay outside
 * the project because their licences differ from ours: they are read from
 * $POSTERN_CORPORA, else ../shared/corpora beside the clone. A test that
 * needs one skips visibly when it is absent (a user's clone), and fails
 * under CI (CI=true), where the corpora are always laid out. Include after
 * <cmocka.h>.
 */
#ifndef POSTERN_TEST_CORPORA_H
#define POSTERN_TEST_CORPORA_H

#include <stdlib.h>
#include <string.h>

static inline const char *
corpora_dir(void)
{
	const char *d = getenv("POSTERN_CORPORA");

	return d != NULL && *d != '\0' ? d : "../shared/corpora";
}

static inline int
corpora_required(void)
{
	const char *ci = getenv("CI");

	return ci != NULL && strcmp(ci, "true") == 0;
}

/* A corpus file is missing: fail under CI, else skip with the reason. */
#define corpora_missing(path) do {					\
	if (corpora_required())						\
		fail_msg("corpus %s is missing and CI=true", (path));	\
	print_message("SKIPPED: corpus %s is missing (set "		\
	    "POSTERN_CORPORA to the corpora folder)\n", (path));	\
	skip();								\
} while (0)

#endif
