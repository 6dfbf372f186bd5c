/*
 * A pool of worker threads for blocking work (CMS, libesmtp, SQLite,
 * Argon2) next to a libevent loop: work() runs on a pool thread, done() then
 * runs on the event loop thread.
 */
#ifndef POSTERN_WORKQ_H
#define POSTERN_WORKQ_H

#include <event2/event.h>

struct workq;

struct workq	*workq_new(struct event_base *, int nthreads);
void		 workq_submit(struct workq *, void (*work)(void *),
		    void (*done)(void *), void *arg);
/* Waits for queued work to finish, then stops the threads. */
void		 workq_free(struct workq *);

#endif
