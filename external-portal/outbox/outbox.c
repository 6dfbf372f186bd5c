/*
 * The outbox sender thread; see outbox.h. It reads only rows we wrote and
 * talks to the configured relay; the relay's replies are logged, never
 * interpreted beyond success, temporary or permanent failure.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "store/accounts.h"
#include "log.h"
#include "outbox/outbox.h"
#include "outbox/pdfotp.h"
#include "props.h"
#include "xmalloc.h"

struct outbox {
	struct store		*store;
	struct outbox_conf	 conf;
	pthread_t		 thread;
	pthread_mutex_t		 mtx;
	pthread_cond_t		 cond;
	int			 wake, stop;
};

int64_t
outbox_backoff(const struct outbox_conf *c, int attempts)
{
	int64_t d = c->retry_initial;

	for (int i = 1; i < attempts && d < c->retry_max; i++)
		d *= 2;
	return d < c->retry_max ? d : c->retry_max;
}

/* Builds the notification for row o into a spool file; NULL on failure. */
static char *
outbox_build(struct outbox *ob, struct store_outbox *o)
{
	struct notify_vars v;
	struct store_user u;
	struct props *p;
	enum notify_kind kind = NOTIFY_NEWMSG;
	char token[ACCOUNTS_TOKEN_LEN + 1], *link = NULL, *path;
	FILE *f;
	int fd, rc;

	if ((rc = store_user_get(ob->store, o->rcpt, &u)) == STORE_NOTFOUND) {
		log_info("outbox: %s has no account any more, notification "
		    "dropped", o->rcpt);
		return xstrdup("");
	}
	if (rc == -1)
		return NULL;
	/* Activated meanwhile: no invite needed any more. */
	if (o->kind == STORE_OUTBOX_SIGNUP && u.state == STORE_USER_PENDING)
		kind = NOTIFY_SIGNUP;
	store_user_free(&u);

	if (kind == NOTIFY_SIGNUP) {
		if (accounts_token_issue(ob->store, STORE_TOKEN_SIGNUP, o->rcpt,
		    ob->conf.token_lifetime, token) == -1)
			return NULL;
		xasprintf(&link, "%s/signup?token=%s", ob->conf.notify.base_url,
		    token);
		OPENSSL_cleanse(token, sizeof(token));
	} else
		xasprintf(&link, "%s/login", ob->conf.notify.base_url);

	memset(&v, 0, sizeof(v));
	v.rcpt = o->rcpt;
	v.link = link;
	v.orig_from = o->sender_name;
	v.orig_subject = o->subject;
	if ((p = props_thread(ob->conf.dbpath, PROPS_NODE_PORTAL)) == NULL) {
		xfree_secret(&link);
		return NULL;
	}
	v.show_details = props_get_bool(p, o->rcpt,
	    "notification-show-subject") == 1;
	v.show_sender = props_get_bool(p, o->rcpt,
	    "notification-show-sender") == 1;

	xasprintf(&path, "%s/notify.XXXXXX", ob->conf.spool_dir);
	if ((fd = mkstemp(path)) == -1 || (f = fdopen(fd, "w")) == NULL) {
		log_warn("outbox: %s", path);
		if (fd != -1) {
			close(fd);
			unlink(path);
		}
		free(path);
		xfree_secret(&link);
		return NULL;
	}
	rc = notify_build(&ob->conf.notify, kind, &v, f);
	if (fclose(f) == EOF)
		rc = -1;
	xfree_secret(&link);
	if (rc == -1) {
		unlink(path);
		free(path);
		return NULL;
	}
	return path;
}

static int
outbox_is_file(enum store_outbox_kind k)
{
	return k == STORE_OUTBOX_RAW || k == STORE_OUTBOX_REPLY ||
	    k == STORE_OUTBOX_RECEIPT;
}

/*
 * The row is finished (sent or given up). A message file belongs to its
 * rows: the last one removes it (a reset mail holds a live token).
 */
static void
outbox_finish(struct outbox *ob, struct store_outbox *o, int ok)
{
	pdfotp_outbox_done(ob->store, ob->conf.spool_dir, &ob->conf.notify,
	    o, ok);
	store_outbox_done(ob->store, o->id);
	if (outbox_is_file(o->kind) && o->path != NULL && *o->path != '\0' &&
	    store_outbox_path_refs(ob->store, o->path) == 0) {
		store_outbox_file_done(ob->store, o->path);
		unlink(o->path);
	}
}

static void
outbox_send(struct outbox *ob, struct store_outbox *o, int64_t now)
{
	struct smtp_client_msg msg;
	struct smtp_client_result res;
	const struct smtp_client_target *target = &ob->conf.target;
	const char *rcpts[2] = { o->rcpt, NULL };
	int rcode = 0;
	char *path = NULL;
	int64_t next;

	if (now - o->created > ob->conf.give_up) {
		log_warnx("outbox: giving up on mail to %s after %d attempts "
		    "over %lld s", o->rcpt, o->attempts,
		    (long long)(now - o->created));
		outbox_finish(ob, o, 0);
		return;
	}
	if (outbox_is_file(o->kind) && o->path != NULL && *o->path != '\0') {
		if ((path = store_outbox_fetch(ob->store, o->path,
		    ob->conf.spool_dir)) == NULL) {
			store_outbox_retry(ob->store, o->id, now +
			    outbox_backoff(&ob->conf, o->attempts + 1),
			    "the message file is missing");
			return;
		}
	} else if (outbox_is_file(o->kind))
		path = xstrdup("");
	else if ((path = outbox_build(ob, o)) == NULL) {
		store_outbox_retry(ob->store, o->id, now +
		    outbox_backoff(&ob->conf, o->attempts + 1),
		    "building the notification failed");
		return;
	}
	if (*path == '\0') {
		store_outbox_done(ob->store, o->id);
		free(path);
		return;
	}

	memset(&msg, 0, sizeof(msg));
	memset(&res, 0, sizeof(res));
	msg.from = ob->conf.notify.sender;
	if (o->kind == STORE_OUTBOX_REPLY)
		msg.from = o->sender_name ? o->sender_name : "";
	else if (o->kind == STORE_OUTBOX_RECEIPT)
		msg.from = "";
	if (o->kind == STORE_OUTBOX_REPLY || o->kind == STORE_OUTBOX_RECEIPT)
		target = ob->conf.reply_set ? &ob->conf.reply_target :
		    &ob->conf.target;
	msg.rcpts = rcpts;
	msg.nrcpts = 1;
	msg.path = path;
	msg.smtputf8 = 0;
	res.rcpt_code = &rcode;
	smtp_client_send(target, &msg, &res);
	if (!outbox_is_file(o->kind))
		unlink(path);
	free(path);

	switch (res.status) {
	case 2:
		outbox_finish(ob, o, 1);
		log_info("outbox: %s to %s sent via %s:%d",
		    o->kind == STORE_OUTBOX_REPLY ? "reply" :
		    o->kind == STORE_OUTBOX_RECEIPT ? "read receipt" :
		    o->kind == STORE_OUTBOX_RAW ? "message" : "notification",
		    o->rcpt, target->host, target->port);
		break;
	case 5:
		log_warnx("outbox: relay refused mail to %s permanently: %d %s;"
		    " giving up", o->rcpt, res.code, res.reply);
		outbox_finish(ob, o, 0);
		break;
	default:
		next = outbox_backoff(&ob->conf, o->attempts + 1);
		log_warnx("outbox: mail to %s deferred (attempt %d): %s; "
		    "retry in %lld s", o->rcpt, o->attempts + 1,
		    res.reply[0] ? res.reply : "relay unavailable",
		    (long long)next);
		store_outbox_retry(ob->store, o->id, now + next, res.reply);
		break;
	}
}

static void *
outbox_main(void *arg)
{
	struct outbox *ob = arg;
	struct store_outbox o;
	struct timespec ts;
	int64_t now, wake;

	pthread_mutex_lock(&ob->mtx);
	while (!ob->stop) {
		ob->wake = 0;
		pthread_mutex_unlock(&ob->mtx);
		now = time(NULL);
		while (!ob->stop &&
		    store_outbox_next(ob->store, now, &o) == 0) {
			outbox_send(ob, &o, now);
			store_outbox_free(&o);
			now = time(NULL);
		}
		wake = store_outbox_wake_time(ob->store);
		if (wake < 0 || wake > now + ob->conf.poll)
			wake = now + ob->conf.poll;
		pthread_mutex_lock(&ob->mtx);
		if (ob->wake || ob->stop)
			continue;
		memset(&ts, 0, sizeof(ts));
		ts.tv_sec = wake;
		while (!ob->wake && !ob->stop &&
		    pthread_cond_timedwait(&ob->cond, &ob->mtx, &ts) == 0)
			;
	}
	pthread_mutex_unlock(&ob->mtx);
	return NULL;
}

struct outbox *
outbox_start(struct store *s, const struct outbox_conf *c)
{
	struct outbox *ob = xcalloc(1, sizeof(*ob));

	ob->store = s;
	ob->conf = *c;
	if (ob->conf.poll <= 0)
		ob->conf.poll = 30;
	pthread_mutex_init(&ob->mtx, NULL);
	pthread_cond_init(&ob->cond, NULL);
	if (pthread_create(&ob->thread, NULL, outbox_main, ob) != 0)
		fatalx("outbox: cannot start the sender thread");
	return ob;
}

void
outbox_wake(struct outbox *ob)
{
	pthread_mutex_lock(&ob->mtx);
	ob->wake = 1;
	pthread_cond_signal(&ob->cond);
	pthread_mutex_unlock(&ob->mtx);
}

void
outbox_stop(struct outbox *ob)
{
	if (ob == NULL)
		return;
	pthread_mutex_lock(&ob->mtx);
	ob->stop = 1;
	pthread_cond_signal(&ob->cond);
	pthread_mutex_unlock(&ob->mtx);
	pthread_join(ob->thread, NULL);
	pthread_mutex_destroy(&ob->mtx);
	pthread_cond_destroy(&ob->cond);
	free(ob);
}
