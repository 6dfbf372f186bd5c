/*
 * A thread pool beside a libevent loop; see workq.h. Finished jobs are put
 * on a done list and the loop is woken through an eventfd, so done() always
 * runs on the loop thread and libevent needs no locking of its own.
 */
#include <sys/eventfd.h>

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

#include <event2/event.h>

#include "log.h"
#include "workq.h"
#include "xmalloc.h"

struct workq_job {
	void			(*work)(void *);
	void			(*done)(void *);
	void			*arg;
	struct workq_job	*next;
};

struct workq {
	pthread_mutex_t		 mtx;
	pthread_cond_t		 cond;
	struct workq_job	*todo, **todo_tail;
	struct workq_job	*done, **done_tail;
	int			 stopping;
	pthread_t		*threads;
	int			 nthreads;
	int			 efd;
	struct event		*ev;
};

static void
workq_run_done(struct workq *wq)
{
	struct workq_job *list, *j;

	pthread_mutex_lock(&wq->mtx);
	list = wq->done;
	wq->done = NULL;
	wq->done_tail = &wq->done;
	pthread_mutex_unlock(&wq->mtx);
	while ((j = list) != NULL) {
		list = j->next;
		if (j->done != NULL)
			j->done(j->arg);
		free(j);
	}
}

static void
workq_wakeup(evutil_socket_t fd, short ev, void *arg)
{
	uint64_t n;

	(void)ev;
	while (read(fd, &n, sizeof(n)) == -1 && errno == EINTR)
		;
	workq_run_done(arg);
}

static void *
workq_thread(void *arg)
{
	struct workq *wq = arg;
	struct workq_job *j;
	uint64_t one = 1;

	for (;;) {
		pthread_mutex_lock(&wq->mtx);
		while (wq->todo == NULL && !wq->stopping)
			pthread_cond_wait(&wq->cond, &wq->mtx);
		if ((j = wq->todo) == NULL) {
			pthread_mutex_unlock(&wq->mtx);
			return NULL;
		}
		if ((wq->todo = j->next) == NULL)
			wq->todo_tail = &wq->todo;
		pthread_mutex_unlock(&wq->mtx);

		j->work(j->arg);

		pthread_mutex_lock(&wq->mtx);
		j->next = NULL;
		*wq->done_tail = j;
		wq->done_tail = &j->next;
		pthread_mutex_unlock(&wq->mtx);
		while (write(wq->efd, &one, sizeof(one)) == -1 &&
		    errno == EINTR)
			;
	}
}

struct workq *
workq_new(struct event_base *base, int nthreads)
{
	struct workq *wq;

	if (nthreads < 1)
		nthreads = 1;
	wq = xcalloc(1, sizeof(*wq));
	pthread_mutex_init(&wq->mtx, NULL);
	pthread_cond_init(&wq->cond, NULL);
	wq->todo_tail = &wq->todo;
	wq->done_tail = &wq->done;
	if ((wq->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) == -1)
		fatal("workq: eventfd");
	wq->ev = event_new(base, wq->efd, EV_READ | EV_PERSIST, workq_wakeup,
	    wq);
	if (wq->ev == NULL || event_add(wq->ev, NULL) == -1)
		fatalx("workq: event_add");
	wq->threads = xcalloc(nthreads, sizeof(*wq->threads));
	for (int i = 0; i < nthreads; i++) {
		if ((errno = pthread_create(&wq->threads[i], NULL,
		    workq_thread, wq)) != 0)
			fatal("workq: pthread_create");
		wq->nthreads++;
	}
	return wq;
}

void
workq_submit(struct workq *wq, void (*work)(void *), void (*done)(void *),
    void *arg)
{
	struct workq_job *j;

	j = xcalloc(1, sizeof(*j));
	j->work = work;
	j->done = done;
	j->arg = arg;
	pthread_mutex_lock(&wq->mtx);
	if (wq->stopping)
		fatalx("workq_submit after workq_free");
	*wq->todo_tail = j;
	wq->todo_tail = &j->next;
	pthread_cond_signal(&wq->cond);
	pthread_mutex_unlock(&wq->mtx);
}

void
workq_free(struct workq *wq)
{
	if (wq == NULL)
		return;
	pthread_mutex_lock(&wq->mtx);
	wq->stopping = 1;
	pthread_cond_broadcast(&wq->cond);
	pthread_mutex_unlock(&wq->mtx);
	for (int i = 0; i < wq->nthreads; i++)
		pthread_join(wq->threads[i], NULL);
	/* Owners of finished jobs still get their done() callback. */
	workq_run_done(wq);
	event_free(wq->ev);
	close(wq->efd);
	pthread_mutex_destroy(&wq->mtx);
	pthread_cond_destroy(&wq->cond);
	free(wq->threads);
	free(wq);
}
