/*
 * postern-cli groups of the portal's store: user, mailbox, stats, cleanup.
 * Admin input (addresses) reaches the store only as bound parameters.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "store/retention.h"
#include "store/store.h"
#include "cli.h"
#include "xmalloc.h"

#define CLI_USER_USAGE \
    "usage: postern-cli user list\n" \
    "       postern-cli user show|delete|reset-password|reset-2fa|" \
    "resend-invite --email ADDRESS\n"
#define CLI_MAILBOX_USAGE \
    "usage: postern-cli mailbox list --email ADDRESS [--limit N]\n"
#define CLI_CLEANUP_USAGE "usage: postern-cli cleanup [--dry-run]\n"

static struct store *
cli_user_store(struct cli *cli)
{
	struct store *s;
	const char *dir;
	char *err = NULL;

	if (cli_open(cli) == -1)
		return NULL;
	if (cli->node != CLI_NODE_PORTAL) {
		cli_err("%s: this command is for external-portal, not %s",
		    cli->conf_path, cli_node_name(cli->node));
		return NULL;
	}
	if ((dir = cli_conf_str(cli, "store_dir")) == NULL) {
		cli_err("%s: store_dir is not set", cli->conf_path);
		return NULL;
	}
	if ((s = store_open(cli->dbpath, dir, 0, &err)) == NULL) {
		cli_err("%s", err);
		free(err);
	}
	return s;
}

static void
cli_user_time(int64_t t, char *buf, size_t len)
{
	time_t tt = (time_t)t;
	struct tm tm;

	gmtime_r(&tt, &tm);
	strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* Finds "--name VALUE" in argv; NULL if absent. */
static const char *
cli_user_opt(int argc, char **argv, const char *name)
{
	for (int i = 2; i < argc - 1; i++)
		if (strcmp(argv[i], name) == 0)
			return argv[i + 1];
	return NULL;
}

static int
cli_user_flag(int argc, char **argv, const char *name)
{
	for (int i = 1; i < argc; i++)
		if (strcmp(argv[i], name) == 0)
			return 1;
	return 0;
}

struct cli_user_list {
	struct store	*store;
	int		 n;
};

static void
cli_user_list_cb(void *arg, const struct store_user *u)
{
	struct cli_user_list *l = arg;
	char t[32];

	cli_user_time(u->created, t, sizeof(t));
	printf("%-40s %-8s 2fa=%s created=%s messages=%lld bytes=%lld\n",
	    u->email, u->state == STORE_USER_ACTIVE ? "active" : "pending",
	    u->totp_enabled ? "on" : "off", t,
	    (long long)store_msg_count(l->store, u->email),
	    (long long)store_usage(l->store, u->email));
	l->n++;
}

int
cli_user(struct cli *cli, int argc, char **argv)
{
	struct store *s;
	struct store_user u;
	const char *verb = argc > 1 ? argv[1] : NULL, *email;
	char t[32];
	int rc = CLI_ERR, r;

	if (verb == NULL)
		return cli_usage(CLI_USER_USAGE, "missing verb");
	if (!cli_verb_ok(verb, (const char *const[]){ "list", "show",
	    "delete", "reset-password", "reset-2fa", "resend-invite", NULL }))
		return cli_usage(CLI_USER_USAGE, "unknown verb \"%s\"", verb);
	email = cli_user_opt(argc, argv, "--email");
	if (strcmp(verb, "list") != 0 && email == NULL)
		return cli_usage(CLI_USER_USAGE, "%s needs --email", verb);
	if ((s = cli_user_store(cli)) == NULL)
		return CLI_ERR;

	if (strcmp(verb, "list") == 0) {
		struct cli_user_list l = { s, 0 };

		if (store_user_list(s, cli_user_list_cb, &l) == 0) {
			printf("%d users\n", l.n);
			rc = CLI_OK;
		}
		goto out;
	}
	if ((r = store_user_get(s, email, &u)) != 0) {
		if (r == STORE_NOTFOUND)
			cli_err("no portal user %s", email);
		goto out;
	}
	if (strcmp(verb, "show") == 0) {
		cli_user_time(u.created, t, sizeof(t));
		printf("email: %s\nstate: %s\npassword: %s\n2fa: %s\n"
		    "created: %s\nmessages: %lld\nbytes: %lld\n", u.email,
		    u.state == STORE_USER_ACTIVE ? "active" : "pending",
		    u.password_hash ? "set" : "not set",
		    u.totp_enabled ? "enabled" : "disabled", t,
		    (long long)store_msg_count(s, u.email),
		    (long long)store_usage(s, u.email));
		rc = CLI_OK;
	} else if (strcmp(verb, "delete") == 0) {
		if (store_user_delete(s, u.email) == 0) {
			printf("deleted %s and their messages\n", u.email);
			rc = CLI_OK;
		}
	} else if (strcmp(verb, "reset-password") == 0) {
		if (store_user_reset_password(s, u.email) == 0 &&
		    store_outbox_add(s, STORE_OUTBOX_SIGNUP, u.email, NULL,
		    NULL, NULL) == 0) {
			printf("%s: password and 2FA cleared; a new sign-up "
			    "link is queued\n", u.email);
			rc = CLI_OK;
		}
	} else if (strcmp(verb, "reset-2fa") == 0) {
		if (store_user_set_totp(s, u.email, NULL, 0) == 0) {
			printf("%s: 2FA cleared\n", u.email);
			rc = CLI_OK;
		}
	} else {
		if (u.state == STORE_USER_ACTIVE)
			cli_err("%s has already signed up (use reset-password)",
			    u.email);
		else if (store_outbox_add(s, STORE_OUTBOX_SIGNUP, u.email,
		    NULL, NULL, NULL) == 0) {
			printf("%s: a new sign-up link is queued\n", u.email);
			rc = CLI_OK;
		}
	}
	store_user_free(&u);
out:
	if (rc == CLI_ERR && verb != NULL)
		fprintf(stderr, "postern-cli: user %s failed\n", verb);
	store_close(s);
	return rc;
}

int
cli_mailbox(struct cli *cli, int argc, char **argv)
{
	struct store *s;
	struct store_msg page[100];
	const char *email, *lim;
	int64_t before = 0;
	long left = 1000;
	int n;
	char t[32];

	if (argc < 2)
		return cli_usage(CLI_MAILBOX_USAGE, NULL);
	if (strcmp(argv[1], "list") != 0)
		return cli_usage(CLI_MAILBOX_USAGE, "unknown verb \"%s\"",
		    argv[1]);
	if ((email = cli_user_opt(argc, argv, "--email")) == NULL)
		return cli_usage(CLI_MAILBOX_USAGE, "list needs --email");
	if ((lim = cli_user_opt(argc, argv, "--limit")) != NULL &&
	    (left = strtol(lim, NULL, 10)) <= 0)
		return cli_usage(CLI_MAILBOX_USAGE, "bad --limit %s", lim);
	if ((s = cli_user_store(cli)) == NULL)
		return CLI_ERR;
	for (int f = STORE_FOLDER_INBOX; f <= STORE_FOLDER_SENT; f++) {
		before = 0;
		while (left > 0 && (n = store_msg_list(s, email, f, before,
		    left < 100 ? left : 100, page)) > 0) {
			for (int i = 0; i < n; i++) {
				cli_user_time(page[i].created, t, sizeof(t));
				printf("%lld\t%s\t%s\t%s\t%s\t%lld\t%s\t%s\n",
				    (long long)page[i].id, t,
				    f == STORE_FOLDER_INBOX ? "inbox" : "sent",
				    page[i].state == STORE_MSG_WEBMAIL ?
				    "webmail" : "pdf-pending",
				    page[i].unread ? "unread" : "read",
				    (long long)page[i].size,
				    page[i].sealed_meta != NULL ? "(sealed)" :
				    page[i].hdr_from ? page[i].hdr_from : "",
				    page[i].sealed_meta != NULL ? "(sealed)" :
				    page[i].subject ? page[i].subject : "");
				before = page[i].id;
				store_msg_free(&page[i]);
				left--;
			}
		}
	}
	store_close(s);
	return CLI_OK;
}

int
cli_stats(struct cli *cli, int argc, char **argv)
{
	struct store *s;
	struct store_stats st;
	int rc = CLI_ERR;

	(void)argv;
	if (argc > 1)
		return cli_usage("usage: postern-cli stats\n", "no options");
	if ((s = cli_user_store(cli)) == NULL)
		return CLI_ERR;
	if (store_stats(s, &st) == 0) {
		printf("users: %lld (pending %lld, active %lld)\n"
		    "messages: %lld (waiting for PDF %lld)\n"
		    "bytes: %lld\noutbox: %lld\nlive tokens: %lld\n",
		    (long long)st.users, (long long)st.users_pending,
		    (long long)st.users_active, (long long)st.messages,
		    (long long)st.messages_pdf_pending, (long long)st.bytes,
		    (long long)st.outbox, (long long)st.tokens_live);
		rc = CLI_OK;
	}
	store_close(s);
	return rc;
}

static void
cli_cleanup_each(void *arg, const struct store_msg *m)
{
	char t[32];

	cli_user_time(m->created, t, sizeof(t));
	printf("%s %lld\t%s\t%s\t%lld bytes\n", *(int *)arg ? "would remove" :
	    "removing", (long long)m->id, m->owner, t, (long long)m->size);
}

int
cli_cleanup(struct cli *cli, int argc, char **argv)
{
	struct store *s;
	struct retention_result r;
	int dry = cli_user_flag(argc, argv, "--dry-run"), rc = CLI_ERR;

	for (int i = 1; i < argc; i++)
		if (strcmp(argv[i], "--dry-run") != 0)
			return cli_usage(CLI_CLEANUP_USAGE, "unknown option %s",
			    argv[i]);
	if ((s = cli_user_store(cli)) == NULL)
		return CLI_ERR;
	if (retention_run(s, cli->props, time(NULL), dry, cli_cleanup_each,
	    &dry, &r) == 0) {
		printf("%s %lld messages (%lld bytes)%s\n", dry ?
		    "would remove" : "removed", (long long)r.messages,
		    (long long)r.bytes, r.errors ? ", with errors" : "");
		rc = r.errors ? CLI_ERR : CLI_OK;
	}
	store_close(s);
	return rc;
}
