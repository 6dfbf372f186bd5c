/*
 * Retention: messages older than the owner's `retention-days` property
 * (0: keep forever) are removed, file and row. The daemon runs it
 * periodically; `postern-cli cleanup [--dry-run]` runs it on demand.
 */
#ifndef PORTAL_RETENTION_H
#define PORTAL_RETENTION_H

#include <stdint.h>

#include "store/store.h"

struct props;

struct retention_result {
	int64_t	messages;	/* removed (or, dry run, would be) */
	int64_t	bytes;
	int64_t	errors;
	int	skipped;	/* another portal holds the retention lock */
};

/*
 * Applies retention as of now. dry_run only counts. each (may be NULL) is
 * called for every message concerned. 0 or -1.
 */
int	retention_run(struct store *, struct props *, int64_t now, int dry_run,
	    void (*each)(void *, const struct store_msg *), void *arg,
	    struct retention_result *);

#endif
