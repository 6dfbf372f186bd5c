/*
 * Accounts on the portal's web side: first sign-in from the sign-up link,
 * sign-in with password and TOTP, throttling, password reset by mail, and
 * the settings page (password, 2FA, recovery codes, sign out everywhere).
 * SECURITY: input is form fields from any browser (bounded by web_form), tokens from
 * links. One generic error for a wrong address or password, so the pages
 * never tell whether an account exists. Runs on the worker pool: Argon2
 * and SQLite block.
 */
#include <sys/socket.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <gmime/gmime.h>
#include <openssl/crypto.h>

#include "store/accounts.h"
#include "log.h"
#include "store/store.h"
#include "web/web_auth.h"
#include "web/web_pages.h"
#include "web/web_qr.h"
#include "web/web_routes.h"
#include "web/web_session.h"
#include "web/web_totp.h"
#include "xmalloc.h"

#define WEB_AUTH_ADDR_FREE	4	/* per address: this many times more */

static pthread_once_t web_auth_dummy_once = PTHREAD_ONCE_INIT;
static char *web_auth_dummy_hash;
static const struct web_password_cost *web_auth_dummy_cost;

static void
web_auth_dummy_init(void)
{
	web_auth_dummy_hash = web_password_hash("postern-no-such-account",
	    web_auth_dummy_cost);
}

/* Verifies pw for user (or a dummy, taking as long) in constant shape. */
static int
web_auth_verify(struct web_req *r, const struct store_user *u, int found,
    const char *pw)
{
	if (found && u->state == STORE_USER_ACTIVE && u->password_hash)
		return web_password_verify(u->password_hash, pw) == 1;
	web_auth_dummy_cost = &r->conf->argon2;
	pthread_once(&web_auth_dummy_once, web_auth_dummy_init);
	if (web_auth_dummy_hash != NULL)
		web_password_verify(web_auth_dummy_hash, pw);
	return 0;
}

static void
web_auth_set_session(struct web_req *r, const char *email, int stage)
{
	char sid[WEB_SESSION_ID_LEN + 1], *c;

	/* A fresh id at every step up: a planted id is worth nothing. */
	if (r->sid[0] != '\0')
		web_session_end(r->sessions, r->sid);
	if (web_session_create(r->sessions, email, stage, time(NULL),
	    sid) == -1) {
		web_page_tempfail(r);
		return;
	}
	c = web_cookie_set("sid", sid, -1);
	web_header(r, "Set-Cookie", c);
	free(c);
	OPENSSL_cleanse(sid, sizeof(sid));
	web_redirect(r, stage == WEB_SESSION_FULL ? "/inbox" : "/login/totp");
}

static int
web_auth_field_ok(const char *v, size_t max)
{
	return v != NULL && *v != '\0' && strlen(v) <= max;
}

/* --- sign-in ---------------------------------------------------------------- */

void
web_auth_root(struct web_req *r)
{
	web_redirect(r, r->signed_in ? "/inbox" : "/login");
}

static void
web_auth_login_page(struct web_req *r, int status, const char *err)
{
	r->status = status;
	web_page_begin(r, web_text_get("login.title"), 0);
	if (err != NULL)
		web_page_notice(r, "error", err);
	web_page_form(r, "/login", NULL);
	web_page_input(r, "email", "email", web_text_get("login.email"),
	    NULL, "username");
	web_page_input(r, "password", "password",
	    web_text_get("login.password"), NULL, "current-password");
	web_page_submit(r, "login.submit");
	web_buf_adds(&r->out, "<p><a href=\"/forgot\">");
	web_page_t(r, "forgot.link");
	web_buf_adds(&r->out, "</a></p>\n");
	web_page_end(r);
}

void
web_auth_login_form(struct web_req *r)
{
	if (r->signed_in) {
		web_redirect(r, "/inbox");
		return;
	}
	web_auth_login_page(r, 200, NULL);
}

void
web_auth_client_key(const char *client, char *out, size_t outlen)
{
	struct in6_addr a6;
	char buf[INET6_ADDRSTRLEN];

	if (inet_pton(AF_INET6, client, &a6) != 1) {
		snprintf(out, outlen, "%s", client);
		return;
	}
	if (IN6_IS_ADDR_V4MAPPED(&a6)) {
		/* One IPv4 address, written the IPv6 way. */
		if (inet_ntop(AF_INET, &a6.s6_addr[12], buf, sizeof(buf)) ==
		    NULL)
			fatalx("web_auth_client_key: inet_ntop");
		snprintf(out, outlen, "%s", buf);
		return;
	}
	/* One subscriber gets a /64: the whole prefix is one client. */
	memset(&a6.s6_addr[8], 0, 8);
	if (inet_ntop(AF_INET6, &a6, buf, sizeof(buf)) == NULL)
		fatalx("web_auth_client_key: inet_ntop");
	snprintf(out, outlen, "%s/64", buf);
}

/* The throttle key for kind and who ("acct", "totp", "mail", "addr"). */
static char *
web_auth_key(struct web_req *r, const char *kind, const char *who)
{
	char ck[INET6_ADDRSTRLEN + 4], fold[3 * ADDR_MAX + 4], *key;

	if (strcmp(kind, "addr") == 0) {
		web_auth_client_key(r->client, ck, sizeof(ck));
		who = ck;
	} else if (addr_fold(who, fold, sizeof(fold)) == 0)
		who = fold;	/* one counter per mailbox, however spelled */
	xasprintf(&key, "%s:%s", kind, who);
	return key;
}

/* 1 when key must wait (logged), 0 when it may try, -1 on failure. */
static int
web_auth_throttled(struct web_req *r, const char *kind, const char *who,
    int free_attempts)
{
	char *key;
	int64_t wait;

	key = web_auth_key(r, kind, who);
	wait = web_session_throttle_wait(r->sessions, key, time(NULL),
	    free_attempts, r->conf->throttle_base);
	free(key);
	if (wait > 0)
		log_warnx("web: sign-in refused for %s %s from %s: locked "
		    "for %lld more seconds", kind, who, r->client,
		    (long long)wait);
	return wait > 0 ? 1 : wait < 0 ? -1 : 0;
}

/* Counts a failure of kind for who; returns the count (or -1). */
static int
web_auth_fail(struct web_req *r, const char *kind, const char *who,
    int free_attempts)
{
	char *key;
	int n;

	key = web_auth_key(r, kind, who);
	n = web_session_throttle_fail(r->sessions, key, time(NULL));
	free(key);
	if (n >= free_attempts)
		log_warnx("web: %s %s locked out after %d failed attempts "
		    "(client %s)", kind, who, n, r->client);
	return n;
}

static void
web_auth_clear(struct web_req *r, const char *kind, const char *who)
{
	char *key = web_auth_key(r, kind, who);

	web_session_throttle_clear(r->sessions, key);
	free(key);
}

/* Wrong second-step codes the account may give (totp-max-attempts). */
static int
web_auth_totp_max(struct web_req *r)
{
	return (int)web_prop_int_user(r, r->email, "totp-max-attempts");
}

/*
 * The second step has its own counter per account, "totp:<email>", which
 * only a complete sign-in clears: entering the password again gives no
 * fresh guesses. 1 locked, 0 may try, -1 failure.
 */
static int
web_auth_totp_throttled(struct web_req *r)
{
	int a, b, max = web_auth_totp_max(r);

	a = web_auth_throttled(r, "totp", r->email, max);
	b = web_auth_throttled(r, "addr", r->client,
	    r->conf->throttle_free * WEB_AUTH_ADDR_FREE);
	return a == -1 || b == -1 ? -1 : a || b;
}

/* Counts a wrong code; 1 when the account has used up its attempts. */
static int
web_auth_totp_fail(struct web_req *r)
{
	int n, max = web_auth_totp_max(r);

	n = web_auth_fail(r, "totp", r->email, max);
	web_auth_fail(r, "addr", r->client,
	    r->conf->throttle_free * WEB_AUTH_ADDR_FREE);
	return n == -1 || n >= max;
}

static int
web_auth_throttle_check(struct web_req *r, const char *email)
{
	int a, b;

	a = web_auth_throttled(r, "acct", email, r->conf->throttle_free);
	b = web_auth_throttled(r, "addr", r->client,
	    r->conf->throttle_free * WEB_AUTH_ADDR_FREE);
	return a == -1 || b == -1 ? -1 : a || b;
}

static void
web_auth_fail_both(struct web_req *r, const char *email)
{
	web_auth_fail(r, "acct", email, r->conf->throttle_free);
	web_auth_fail(r, "addr", r->client,
	    r->conf->throttle_free * WEB_AUTH_ADDR_FREE);
}

void
web_auth_login(struct web_req *r)
{
	const char *email = web_param(r, "email");
	const char *pw = web_param(r, "password");
	struct store_user u;
	char *nh;
	int rc, ok;

	if (!web_auth_field_ok(email, ADDR_MAX - 1) ||
	    !web_auth_field_ok(pw, WEB_PASSWORD_MAX_BYTES)) {
		web_auth_login_page(r, 400, web_text_get("login.failed"));
		return;
	}
	if ((rc = web_auth_throttle_check(r, email)) != 0) {
		if (rc == -1)
			web_page_tempfail(r);
		else
			web_auth_login_page(r, 429,
			    web_text_get("login.locked"));
		return;
	}
	if ((rc = store_user_get(r->store, email, &u)) == -1) {
		web_page_tempfail(r);
		return;
	}
	ok = web_auth_verify(r, &u, rc == 0, pw);
	if (!ok) {
		if (rc == 0)
			store_user_free(&u);
		web_auth_fail_both(r, email);
		log_info("web: sign-in failed for %s from %s", email,
		    r->client);
		web_auth_login_page(r, 200, web_text_get("login.failed"));
		return;
	}
	/* The password step only: the second step keeps its own count. */
	web_auth_clear(r, "acct", u.email);
	if (web_password_needs_rehash(u.password_hash, &r->conf->argon2) &&
	    (nh = web_password_hash(pw, &r->conf->argon2)) != NULL) {
		store_user_set_password(r->store, u.email, nh);
		free(nh);
	}
	log_info("web: %s signed in from %s%s", u.email, r->client,
	    u.totp_enabled ? " (2FA due)" : "");
	web_auth_set_session(r, u.email, u.totp_enabled ? WEB_SESSION_HALF :
	    WEB_SESSION_FULL);
	store_user_free(&u);
}

static void
web_auth_totp_page(struct web_req *r, int status, const char *err)
{
	r->status = status;
	web_page_begin(r, web_text_get("totp.title"), 0);
	if (err != NULL)
		web_page_notice(r, "error", err);
	web_page_form(r, "/login/totp", NULL);
	web_page_input(r, "code", "text", web_text_get("totp.code.or_recovery"),
	    NULL, "one-time-code");
	web_page_submit(r, "totp.submit");
	web_page_end(r);
}

void
web_auth_totp_form(struct web_req *r)
{
	web_auth_totp_page(r, 200, NULL);
}

/*
 * Checks a TOTP code or, failing that, a recovery code of user. 1 ok,
 * 0 wrong, -1 failure.
 */
static int
web_auth_second_factor(struct web_req *r, const struct store_user *u,
    const char *code, int allow_recovery)
{
	int64_t step;
	int rc;

	if (code == NULL || strlen(code) > 64 || u->totp_secret == NULL)
		return 0;
	rc = web_totp_verify(u->totp_secret, code, time(NULL),
	    u->totp_last_step, &step);
	if (rc == 1) {
		rc = store_user_totp_step(r->store, u->email, step);
		return rc == 0 ? 1 : rc == 1 ? 0 : -1;
	}
	if (rc == -1 || !allow_recovery)
		return rc;
	if ((rc = web_session_recovery_use(r->sessions, u->email, code)) == 1)
		log_info("web: %s used a recovery code", u->email);
	return rc;
}

/* Ends the half-signed session: the password must be entered again. */
static void
web_auth_end_half(struct web_req *r)
{
	char *c;

	web_session_end(r->sessions, r->sid);
	r->sid[0] = '\0';
	c = web_cookie_clear("sid");
	web_header(r, "Set-Cookie", c);
	free(c);
	r->half_signed = 0;
	web_page_simple(r, 429, web_text_get("totp.title"),
	    web_text_get("totp.locked"), "/login",
	    web_text_get("login.submit"));
}

void
web_auth_totp(struct web_req *r)
{
	const char *code = web_param(r, "code");
	struct store_user u;
	int rc;

	if ((rc = web_auth_totp_throttled(r)) != 0) {
		if (rc == -1)
			web_page_tempfail(r);
		else
			web_auth_end_half(r);
		return;
	}
	if (store_user_get(r->store, r->email, &u) != 0) {
		web_page_tempfail(r);
		return;
	}
	rc = u.totp_enabled ? web_auth_second_factor(r, &u, code, 1) : 1;
	store_user_free(&u);
	if (rc == -1) {
		web_page_tempfail(r);
		return;
	}
	if (rc == 0) {
		log_info("web: wrong 2FA code for %s from %s", r->email,
		    r->client);
		if (web_auth_totp_fail(r)) {
			log_warnx("web: half-signed session of %s ended after "
			    "too many wrong 2FA codes (client %s)", r->email,
			    r->client);
			web_auth_end_half(r);
		} else
			web_auth_totp_page(r, 200, web_text_get("totp.failed"));
		return;
	}
	log_info("web: %s passed 2FA", r->email);
	web_auth_clear(r, "totp", r->email);
	web_auth_clear(r, "acct", r->email);
	web_auth_set_session(r, r->email, WEB_SESSION_FULL);
}

void
web_auth_logout(struct web_req *r)
{
	char *c;

	if (r->sid[0] != '\0') {
		web_session_end(r->sessions, r->sid);
		log_info("web: %s signed out", r->email);
	}
	c = web_cookie_clear("sid");
	web_header(r, "Set-Cookie", c);
	free(c);
	r->signed_in = 0;
	web_page_simple(r, 200, web_text_get("logout.title"),
	    web_text_get("logout.done"), "/login",
	    web_text_get("login.submit"));
}

/* --- sign-up and reset links ----------------------------------------------- */

/* The shortest password email may choose: property password-min-length. */
static size_t
web_auth_password_min(struct web_req *r, const char *email)
{
	long long v = web_prop_int_user(r, email, "password-min-length");

	return v > 0 ? (size_t)v : 1;
}

static void
web_auth_password_page(struct web_req *r, const char *action,
    const char *token, const char *email, const char *err)
{
	char *rules = web_password_rules_text(web_auth_password_min(r, email));

	web_page_begin(r, web_text_get("password.set.title"), 0);
	if (err != NULL)
		web_page_notice(r, "error", err);
	web_buf_adds(&r->out, "<p id=\"rules\">");
	web_page_text(r, rules);
	web_buf_adds(&r->out, "</p>\n");
	free(rules);
	web_page_form(r, action, NULL);
	web_buf_adds(&r->out, "<input type=\"hidden\" name=\"token\" "
	    "value=\"");
	web_page_text(r, token);
	web_buf_adds(&r->out, "\">\n");
	web_page_input(r, "password", "password", web_text_get("password.new"),
	    NULL, "new-password");
	web_page_input(r, "confirm", "password",
	    web_text_get("password.confirm"), NULL, "new-password");
	web_page_submit(r, "common.save");
	web_page_end(r);
}

/* A page asking for the address to send a new link to. */
static void
web_auth_email_page(struct web_req *r, const char *title, const char *err,
    const char *action)
{
	web_page_begin(r, title, 0);
	if (err != NULL)
		web_page_notice(r, "error", err);
	web_page_form(r, action, NULL);
	web_page_input(r, "email", "email", web_text_get("login.email"),
	    NULL, "email");
	web_page_submit(r, "link.new");
	web_page_end(r);
}

static void
web_auth_expired(struct web_req *r)
{
	r->status = 410;
	web_auth_email_page(r, web_text_get("link.expired.title"),
	    web_text_get("link.expired"), "/newlink");
}

static int
web_auth_token_shape(const char *t)
{
	if (t == NULL || strlen(t) != ACCOUNTS_TOKEN_LEN)
		return 0;
	return strspn(t, "0123456789abcdef") == ACCOUNTS_TOKEN_LEN;
}

/*
 * 1 when a link that no longer works was a sign-up link whose account is
 * active: the recipient chose a password already and should sign in.
 */
static int
web_auth_link_spent(struct web_req *r, enum store_token_kind kind,
    const char *token)
{
	char email[ADDR_MAX];
	struct store_user u;
	int live, spent;

	if (kind != STORE_TOKEN_SIGNUP || accounts_token_peek(r->store, kind,
	    token, email, sizeof(email), &live) != 0 || live)
		return 0;
	if (store_user_get(r->store, email, &u) != 0)
		return 0;
	spent = u.state == STORE_USER_ACTIVE;
	store_user_free(&u);
	return spent;
}

/* A used sign-up link: no password form, but the way in. */
static void
web_auth_link_used(struct web_req *r)
{
	if (r->signed_in) {
		web_redirect(r, "/inbox");
		return;
	}
	web_page_simple(r, 410, web_text_get("link.used.title"),
	    web_text_get("link.used"), "/login", web_text_get("login.submit"));
}

static void
web_auth_token_form(struct web_req *r, enum store_token_kind kind,
    const char *action)
{
	const char *token = web_param(r, "token");
	char email[ADDR_MAX];
	int rc, live = 0;

	/* Opening the link uses nothing up: mail scanners follow links. */
	if (!web_auth_token_shape(token)) {
		web_auth_expired(r);
		return;
	}
	rc = accounts_token_peek(r->store, kind, token, email, sizeof(email),
	    &live);
	if (rc == -1) {
		web_page_tempfail(r);
		return;
	}
	if (rc != 0 || !live) {
		if (web_auth_link_spent(r, kind, token))
			web_auth_link_used(r);
		else
			web_auth_expired(r);
		return;
	}
	r->no_store = 1;
	web_auth_password_page(r, action, token, email, NULL);
}

void
web_auth_signup_form(struct web_req *r)
{
	web_auth_token_form(r, STORE_TOKEN_SIGNUP, "/signup");
}

void
web_auth_reset_form(struct web_req *r)
{
	web_auth_token_form(r, STORE_TOKEN_RESET, "/reset");
}

/* Sets a new password from a token form (sign-up or reset). */
static void
web_auth_token_set(struct web_req *r, enum store_token_kind kind,
    const char *action)
{
	const char *token = web_param(r, "token");
	const char *pw = web_param(r, "password");
	const char *confirm = web_param(r, "confirm");
	const char *why = NULL;
	char email[ADDR_MAX], fresh[ACCOUNTS_TOKEN_LEN + 1], *hash;
	struct store_user u;
	int rc;

	if (token == NULL || pw == NULL || confirm == NULL) {
		web_page_error(r, 400);
		return;
	}
	rc = accounts_token_redeem(r->store, kind, token, email,
	    sizeof(email));
	if (rc == STORE_NOTFOUND) {
		if (web_auth_link_spent(r, kind, token))
			web_auth_link_used(r);
		else
			web_auth_expired(r);
		return;
	}
	if (rc == -1) {
		web_page_tempfail(r);
		return;
	}
	if (strcmp(pw, confirm) != 0)
		why = "password.mismatch";
	else
		why = web_password_check(pw, email,
		    web_auth_password_min(r, email));
	if (why != NULL) {
		/* The token is used; this browser proved it had it. */
		if (accounts_token_issue(r->store, kind, email,
		    r->conf->token_lifetime, fresh) == -1) {
			web_page_tempfail(r);
			return;
		}
		r->status = 200;
		r->no_store = 1;
		web_auth_password_page(r, action, fresh, email,
		    web_text_get(why));
		OPENSSL_cleanse(fresh, sizeof(fresh));
		return;
	}
	if ((hash = web_password_hash(pw, &r->conf->argon2)) == NULL ||
	    store_user_set_password(r->store, email, hash) == -1 ||
	    store_user_get(r->store, email, &u) != 0) {
		free(hash);
		web_page_tempfail(r);
		return;
	}
	free(hash);
	/* A new password ends every old session. */
	web_session_end_all(r->sessions, email);
	r->sid[0] = '\0';
	log_info("web: %s %s", email, kind == STORE_TOKEN_SIGNUP ?
	    "chose a password (account active)" : "reset the password");
	web_auth_set_session(r, email, u.totp_enabled ? WEB_SESSION_HALF :
	    WEB_SESSION_FULL);
	store_user_free(&u);
}

void
web_auth_signup(struct web_req *r)
{
	web_auth_token_set(r, STORE_TOKEN_SIGNUP, "/signup");
}

void
web_auth_reset(struct web_req *r)
{
	web_auth_token_set(r, STORE_TOKEN_RESET, "/reset");
}

/* Queues a reset-password mail for email through the outbox. */
static int
web_auth_reset_mail(struct store *st_, const struct web_conf *conf,
    const char *email)
{
	char token[ACCOUNTS_TOKEN_LEN + 1], *link, *path, *body, *mid;
	GMimeMessage *m;
	GMimeTextPart *t;
	GMimeStream *st;
	GMimeFormatOptions *fo;
	GDateTime *now;
	FILE *f;
	int fd, rc = 0;

	if (accounts_token_issue(st_, STORE_TOKEN_RESET, email,
	    conf->token_lifetime, token) == -1)
		return -1;
	xasprintf(&link, "%s/reset?token=%s", conf->base_url, token);
	OPENSSL_cleanse(token, sizeof(token));
	xasprintf(&body, "%s\r\n\r\n%s\r\n\r\n%s\r\n",
	    web_text_get("reset.mail.intro"), link,
	    web_text_get("reset.mail.outro"));
	xfree_secret(&link);

	m = g_mime_message_new(TRUE);
	g_mime_message_add_mailbox(m, GMIME_ADDRESS_TYPE_FROM,
	    conf->product_name, conf->notify_sender);
	g_mime_message_add_mailbox(m, GMIME_ADDRESS_TYPE_TO, NULL, email);
	g_mime_message_set_subject(m, web_text_get("reset.mail.subject"),
	    "utf-8");
	now = g_date_time_new_now_local();
	g_mime_message_set_date(m, now);
	g_date_time_unref(now);
	mid = g_mime_utils_generate_message_id(conf->hostname);
	g_mime_message_set_message_id(m, mid);
	g_free(mid);
	g_mime_object_set_header(GMIME_OBJECT(m), "Auto-Submitted",
	    "auto-generated", NULL);
	t = g_mime_text_part_new_with_subtype("plain");
	g_mime_text_part_set_text(t, body);
	g_mime_text_part_set_charset(t, "utf-8");
	g_mime_part_set_content_encoding(GMIME_PART(t),
	    GMIME_CONTENT_ENCODING_QUOTEDPRINTABLE);
	g_mime_message_set_mime_part(m, GMIME_OBJECT(t));
	g_object_unref(t);
	xfree_secret(&body);

	xasprintf(&path, "%s/reset.XXXXXX", conf->spool_dir);
	if ((fd = mkstemp(path)) == -1 || (f = fdopen(fd, "w")) == NULL) {
		log_warn("web: %s", path);
		if (fd != -1) {
			close(fd);
			unlink(path);
		}
		free(path);
		g_object_unref(m);
		return -1;
	}
	fo = g_mime_format_options_new();
	g_mime_format_options_set_newline_format(fo, GMIME_NEWLINE_FORMAT_DOS);
	st = g_mime_stream_file_new(f);
	g_mime_stream_file_set_owner(GMIME_STREAM_FILE(st), FALSE);
	if (g_mime_object_write_to_stream(GMIME_OBJECT(m), fo, st) == -1 ||
	    g_mime_stream_flush(st) == -1)
		rc = -1;
	g_object_unref(st);
	g_mime_format_options_free(fo);
	g_object_unref(m);
	if (fsync(fileno(f)) == -1 || fclose(f) == EOF || rc == -1) {
		log_warn("web: writing %s", path);
		unlink(path);
		free(path);
		return -1;
	}
	if (store_outbox_add(st_, STORE_OUTBOX_RAW, email, NULL, NULL,
	    path) == -1) {
		unlink(path);
		rc = -1;
	}
	free(path);
	return rc;
}

void
web_auth_newlink_form(struct web_req *r)
{
	web_auth_email_page(r, web_text_get("link.expired.title"), NULL,
	    "/newlink");
}

void
web_auth_forgot_form(struct web_req *r)
{
	web_auth_email_page(r, web_text_get("forgot.title"), NULL, "/forgot");
}

/*
 * Links are mailed off the request: the answer costs the same whether the
 * account exists or not (a reset link means a token, a MIME message and an
 * fsync'ed spool file; an unknown address means nothing), so its timing
 * cannot tell the two apart. One thread works through a bounded queue;
 * when it is full, a request is dropped with a warning (the answer is the
 * same non-committal page either way).
 */
#define WEB_AUTH_LINKQ_MAX	64

static struct {
	pthread_mutex_t		 mtx;
	pthread_cond_t		 cond;
	struct store		*store;
	const struct web_conf	*conf;
	char			 email[WEB_AUTH_LINKQ_MAX][ADDR_MAX];
	size_t			 head, n;
	int			 running, stop;
	pthread_t		 thread;
} web_auth_linkq = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER,
    NULL, NULL, { { 0 } }, 0, 0, 0, 0, 0 };

/* Sends what an address gets from /forgot or /newlink, if anything. */
static void
web_auth_link_send(struct store *st, const struct web_conf *conf,
    const char *email)
{
	struct store_user u;
	int rc;

	if ((rc = store_user_get(st, email, &u)) != 0) {
		if (rc == -1)
			log_warnx("web: no new link for %s: store failure",
			    email);
		return;
	}
	if (u.state == STORE_USER_PENDING)
		rc = store_outbox_add(st, STORE_OUTBOX_SIGNUP, u.email, NULL,
		    NULL, NULL);
	else
		rc = web_auth_reset_mail(st, conf, u.email);
	if (rc == 0)
		log_info("web: new %s link for %s queued",
		    u.state == STORE_USER_PENDING ? "sign-up" : "reset",
		    u.email);
	else
		log_warnx("web: new link for %s not queued", u.email);
	store_user_free(&u);
}

static void *
web_auth_link_thread(void *arg)
{
	char email[ADDR_MAX];

	(void)arg;
	pthread_mutex_lock(&web_auth_linkq.mtx);
	for (;;) {
		while (web_auth_linkq.n == 0 && !web_auth_linkq.stop)
			pthread_cond_wait(&web_auth_linkq.cond,
			    &web_auth_linkq.mtx);
		if (web_auth_linkq.stop)
			break;
		memcpy(email, web_auth_linkq.email[web_auth_linkq.head],
		    sizeof(email));
		web_auth_linkq.head = (web_auth_linkq.head + 1) %
		    WEB_AUTH_LINKQ_MAX;
		web_auth_linkq.n--;
		pthread_mutex_unlock(&web_auth_linkq.mtx);
		web_auth_link_send(web_auth_linkq.store, web_auth_linkq.conf,
		    email);
		pthread_mutex_lock(&web_auth_linkq.mtx);
	}
	pthread_mutex_unlock(&web_auth_linkq.mtx);
	return NULL;
}

void
web_auth_shutdown(void)
{
	int running;

	pthread_mutex_lock(&web_auth_linkq.mtx);
	running = web_auth_linkq.running;
	web_auth_linkq.stop = 1;
	pthread_cond_signal(&web_auth_linkq.cond);
	pthread_mutex_unlock(&web_auth_linkq.mtx);
	/* Links still queued are dropped: the user can ask again. */
	if (running && pthread_join(web_auth_linkq.thread, NULL) != 0)
		fatalx("web: pthread_join");
}

/* Hands email to the link thread (started on first use). 0 or -1. */
static int
web_auth_link_queue(struct web_req *r, const char *email)
{
	size_t i;
	int rc = 0;

	pthread_mutex_lock(&web_auth_linkq.mtx);
	if (web_auth_linkq.stop) {
		pthread_mutex_unlock(&web_auth_linkq.mtx);
		return -1;
	}
	if (!web_auth_linkq.running) {
		web_auth_linkq.store = r->store;
		web_auth_linkq.conf = r->conf;
		if (pthread_create(&web_auth_linkq.thread, NULL,
		    web_auth_link_thread, NULL) != 0) {
			pthread_mutex_unlock(&web_auth_linkq.mtx);
			log_warnx("web: cannot start the link thread");
			return -1;
		}
		web_auth_linkq.running = 1;
	}
	if (web_auth_linkq.n == WEB_AUTH_LINKQ_MAX) {
		log_warnx("web: link queue full, no new link for %s", email);
		rc = -1;
	} else {
		i = (web_auth_linkq.head + web_auth_linkq.n) %
		    WEB_AUTH_LINKQ_MAX;
		snprintf(web_auth_linkq.email[i], ADDR_MAX, "%s", email);
		web_auth_linkq.n++;
		pthread_cond_signal(&web_auth_linkq.cond);
	}
	pthread_mutex_unlock(&web_auth_linkq.mtx);
	return rc;
}

/*
 * A new link by mail: a sign-up invite while the account is pending, a
 * reset link once it is active. The answer, and the work done before it,
 * are the same whether the account exists or not; a mail-bombing guard
 * limits links per address (counted for every address asked for).
 */
static void
web_auth_send_link(struct web_req *r)
{
	const char *email = web_param(r, "email");
	int rc;

	if (!web_auth_field_ok(email, ADDR_MAX - 1)) {
		web_page_error(r, 400);
		return;
	}
	if ((rc = web_auth_throttled(r, "mail", email,
	    r->conf->throttle_free)) == 0)
		rc = web_auth_throttled(r, "addr", r->client,
		    r->conf->throttle_free * WEB_AUTH_ADDR_FREE);
	if (rc == -1) {
		web_page_tempfail(r);
		return;
	}
	if (rc == 0) {
		web_auth_fail(r, "mail", email, r->conf->throttle_free);
		web_auth_link_queue(r, email);
	}
	web_page_simple(r, 200, web_text_get("link.sent.title"),
	    web_text_get("link.sent"), "/login", web_text_get("login.submit"));
}

void
web_auth_newlink(struct web_req *r)
{
	web_auth_send_link(r);
}

void
web_auth_forgot(struct web_req *r)
{
	web_auth_send_link(r);
}

/* --- settings ------------------------------------------------------------- */

/*
 * The fields that confirm a sensitive change: the current password, and
 * the current code when 2FA is on. Ids carry the form's name, as several
 * such forms share the page.
 */
static void
web_auth_reauth_inputs(struct web_req *r, const char *form, int code)
{
	web_buf_addf(&r->out, "<p class=\"field\"><label for=\"f-%s-current\">",
	    form);
	web_page_t(r, "settings.current_password");
	web_buf_addf(&r->out, "</label>\n<input id=\"f-%s-current\" "
	    "name=\"current\" type=\"password\" "
	    "autocomplete=\"current-password\" required></p>\n", form);
	if (!code)
		return;
	web_buf_addf(&r->out, "<p class=\"field\"><label for=\"f-%s-code\">",
	    form);
	web_page_t(r, "totp.code.or_recovery");
	web_buf_addf(&r->out, "</label>\n<input id=\"f-%s-code\" "
	    "name=\"code\" type=\"text\" autocomplete=\"one-time-code\" "
	    "required></p>\n", form);
}

static void
web_auth_settings_page(struct web_req *r, const char *ok, const char *err)
{
	struct store_user u;

	if (store_user_get(r->store, r->email, &u) != 0) {
		web_page_tempfail(r);
		return;
	}
	web_page_begin(r, web_text_get("settings.title"), 1);
	if (ok != NULL)
		web_page_notice(r, "ok", ok);
	if (err != NULL)
		web_page_notice(r, "error", err);

	web_buf_adds(&r->out, "<section aria-labelledby=\"h-pw\"><h2 "
	    "id=\"h-pw\">");
	web_page_t(r, "settings.password");
	web_buf_adds(&r->out, "</h2>\n");
	web_page_form(r, "/settings/password", NULL);
	web_page_input(r, "current", "password",
	    web_text_get("settings.current_password"), NULL,
	    "current-password");
	web_page_input(r, "password", "password", web_text_get("password.new"),
	    NULL, "new-password");
	web_page_input(r, "confirm", "password",
	    web_text_get("password.confirm"), NULL, "new-password");
	web_buf_adds(&r->out, "<button type=\"submit\">");
	web_page_t(r, "common.save");
	web_buf_adds(&r->out, "</button>\n</form></section>\n");

	web_buf_adds(&r->out, "<section aria-labelledby=\"h-2fa\"><h2 "
	    "id=\"h-2fa\">");
	web_page_t(r, "totp.title");
	web_buf_adds(&r->out, "</h2>\n<p>");
	web_page_t(r, u.totp_enabled ? "settings.totp_on" :
	    "settings.totp_off");
	web_buf_adds(&r->out, "</p>\n");
	if (u.totp_enabled) {
		web_page_form(r, "/settings/recovery", NULL);
		web_auth_reauth_inputs(r, "recovery", 1);
		web_page_submit(r, "settings.recovery_new");
		web_page_form(r, "/settings/totp/disable", NULL);
		web_auth_reauth_inputs(r, "disable", 1);
		web_buf_adds(&r->out, "<button type=\"submit\" "
		    "class=\"danger\">");
		web_page_t(r, "settings.totp_disable");
		web_buf_adds(&r->out, "</button>\n</form>\n");
	} else {
		web_page_form(r, "/settings/totp/start", NULL);
		web_auth_reauth_inputs(r, "enrol", 0);
		web_page_submit(r, "settings.totp_enable");
	}
	web_buf_adds(&r->out, "</section>\n<section aria-labelledby=\"h-ses\">"
	    "<h2 id=\"h-ses\">");
	web_page_t(r, "settings.sessions");
	web_buf_adds(&r->out, "</h2>\n");
	web_page_form(r, "/settings/logout-all", NULL);
	web_buf_adds(&r->out, "<button type=\"submit\">");
	web_page_t(r, "settings.logout_all");
	web_buf_adds(&r->out, "</button>\n</form></section>\n");
	web_page_end(r);
	store_user_free(&u);
}

void
web_auth_settings(struct web_req *r)
{
	web_auth_settings_page(r, NULL, NULL);
}

/* Checks the current password field; 1 ok, 0 wrong (throttled), -1. */
static int
web_auth_current_password(struct web_req *r, struct store_user *u)
{
	const char *pw = web_param(r, "current");
	int rc;

	if ((rc = web_auth_throttle_check(r, r->email)) != 0)
		return rc == 1 ? 0 : -1;
	if (!web_auth_field_ok(pw, WEB_PASSWORD_MAX_BYTES) ||
	    !web_auth_verify(r, u, 1, pw)) {
		web_auth_fail_both(r, r->email);
		return 0;
	}
	return 1;
}

/*
 * Re-authentication for a sensitive change (2FA on or off, new recovery
 * codes): the current password, and the current code (or a recovery
 * code) when 2FA is on. Failures count like sign-in failures. 1 ok,
 * 0 wrong or locked, -1 failure.
 */
static int
web_auth_reauth(struct web_req *r, struct store_user *u)
{
	int rc;

	if ((rc = web_auth_current_password(r, u)) != 1)
		return rc;
	if (!u->totp_enabled)
		return 1;
	if ((rc = web_auth_totp_throttled(r)) != 0)
		return rc == 1 ? 0 : -1;
	rc = web_auth_second_factor(r, u, web_param(r, "code"), 1);
	if (rc == 0)
		web_auth_totp_fail(r);
	else if (rc == 1)
		web_auth_clear(r, "totp", r->email);
	return rc;
}

void
web_auth_password(struct web_req *r)
{
	const char *pw = web_param(r, "password");
	const char *confirm = web_param(r, "confirm");
	const char *why;
	struct store_user u;
	char *hash;
	int rc;

	if (pw == NULL || confirm == NULL) {
		web_page_error(r, 400);
		return;
	}
	if (store_user_get(r->store, r->email, &u) != 0) {
		web_page_tempfail(r);
		return;
	}
	rc = web_auth_current_password(r, &u);
	store_user_free(&u);
	if (rc != 1) {
		if (rc == -1)
			web_page_tempfail(r);
		else
			web_auth_settings_page(r, NULL,
			    web_text_get("settings.wrong_password"));
		return;
	}
	why = strcmp(pw, confirm) != 0 ? "password.mismatch" :
	    web_password_check(pw, r->email,
	    web_auth_password_min(r, r->email));
	if (why != NULL) {
		web_auth_settings_page(r, NULL, web_text_get(why));
		return;
	}
	if ((hash = web_password_hash(pw, &r->conf->argon2)) == NULL ||
	    store_user_set_password(r->store, r->email, hash) == -1) {
		free(hash);
		web_page_tempfail(r);
		return;
	}
	free(hash);
	log_info("web: %s changed the password", r->email);
	web_session_end_all(r->sessions, r->email);
	r->sid[0] = '\0';
	web_auth_set_session(r, r->email, WEB_SESSION_FULL);
}

void
web_auth_totp_start(struct web_req *r)
{
	struct store_user u;
	char *secret, *uri, *svg;
	int rc;
	const char *issuer = r->conf->product_name ? r->conf->product_name :
	    web_text_get("app.title");

	if (store_user_get(r->store, r->email, &u) != 0) {
		web_page_tempfail(r);
		return;
	}
	if (u.totp_enabled) {
		store_user_free(&u);
		web_redirect(r, "/settings");
		return;
	}
	rc = web_auth_reauth(r, &u);
	store_user_free(&u);
	if (rc != 1) {
		if (rc == -1)
			web_page_tempfail(r);
		else
			web_auth_settings_page(r, NULL,
			    web_text_get("settings.wrong_password"));
		return;
	}
	secret = web_totp_secret_new();
	if (store_user_set_totp(r->store, r->email, secret, 0) == -1) {
		xfree_secret(&secret);
		web_page_tempfail(r);
		return;
	}
	uri = web_totp_uri(issuer, r->email, secret);
	svg = web_qr_svg(uri, 220, NULL);
	r->no_store = 1;
	web_page_begin(r, web_text_get("totp.enrol.title"), 1);
	web_buf_adds(&r->out, "<p>");
	web_page_t(r, "totp.enrol.help");
	web_buf_adds(&r->out, "</p>\n<div class=\"qr\" role=\"img\" "
	    "aria-label=\"QR\">");
	if (svg != NULL)
		web_buf_adds(&r->out, svg);	/* our own SVG, no input in it */
	web_buf_adds(&r->out, "</div>\n<p>");
	web_page_t(r, "totp.secret");
	web_buf_adds(&r->out, ": <code class=\"secret\" id=\"totp-secret\">");
	web_page_text(r, secret);
	web_buf_adds(&r->out, "</code></p>\n");
	web_page_form(r, "/settings/totp/enable", NULL);
	web_page_input(r, "code", "text", web_text_get("totp.code"), NULL,
	    "one-time-code");
	web_page_submit(r, "totp.submit");
	web_page_end(r);
	free(svg);
	xfree_secret(&uri);
	xfree_secret(&secret);
}

static void
web_auth_recovery_page(struct web_req *r)
{
	char codes[WEB_TOTP_RECOVERY_COUNT][WEB_TOTP_RECOVERY_LEN + 1];
	char hashes[WEB_TOTP_RECOVERY_COUNT][WEB_TOTP_HASH_HEX + 1];

	web_totp_recovery_new(codes, hashes, WEB_TOTP_RECOVERY_COUNT);
	if (web_session_recovery_set(r->sessions, r->email, hashes,
	    WEB_TOTP_RECOVERY_COUNT) == -1) {
		web_page_tempfail(r);
		return;
	}
	r->no_store = 1;
	web_page_begin(r, web_text_get("totp.recovery.title"), 1);
	web_page_notice(r, "ok", web_text_get("settings.totp_on"));
	web_buf_adds(&r->out, "<p>");
	web_page_t(r, "totp.recovery.help");
	web_buf_adds(&r->out, "</p>\n<ul class=\"codes\">");
	for (int i = 0; i < WEB_TOTP_RECOVERY_COUNT; i++) {
		web_buf_adds(&r->out, "<li>");
		web_page_text(r, codes[i]);
		web_buf_adds(&r->out, "</li>");
	}
	web_buf_adds(&r->out, "</ul>\n<p><a class=\"button\" "
	    "href=\"/settings\">");
	web_page_t(r, "common.back");
	web_buf_adds(&r->out, "</a></p>\n");
	web_page_end(r);
	OPENSSL_cleanse(codes, sizeof(codes));
}

void
web_auth_totp_enable(struct web_req *r)
{
	struct store_user u;
	const char *code;
	int64_t step;
	int rc;

	if (store_user_get(r->store, r->email, &u) != 0) {
		web_page_tempfail(r);
		return;
	}
	if (u.totp_enabled || u.totp_secret == NULL) {
		store_user_free(&u);
		web_redirect(r, "/settings");
		return;
	}
	code = web_param(r, "code");
	rc = code == NULL || strlen(code) > 64 ? 0 :
	    web_totp_verify(u.totp_secret, code, time(NULL), -1, &step);
	/* Enabling resets the replay guard: record the step after it. */
	if (rc == 1 && (store_user_set_totp(r->store, r->email, u.totp_secret,
	    1) == -1 || store_user_totp_step(r->store, r->email, step) == -1))
		rc = -1;
	store_user_free(&u);
	if (rc == -1) {
		web_page_tempfail(r);
		return;
	}
	if (rc == 0) {
		web_auth_settings_page(r, NULL, web_text_get("totp.failed"));
		return;
	}
	log_info("web: %s enabled 2FA", r->email);
	web_auth_recovery_page(r);
}

/*
 * Turning 2FA off and new recovery codes ask for the password and a code
 * (both exist only with 2FA on). 1 when given; 0 when the page already
 * says why not.
 */
static int
web_auth_settings_reauth(struct web_req *r)
{
	struct store_user u;
	int rc;

	if (store_user_get(r->store, r->email, &u) != 0) {
		web_page_tempfail(r);
		return 0;
	}
	rc = u.totp_enabled ? web_auth_reauth(r, &u) : 0;
	store_user_free(&u);
	if (rc == -1)
		web_page_tempfail(r);
	else if (rc == 0)
		web_auth_settings_page(r, NULL,
		    web_text_get("settings.wrong_password_or_code"));
	return rc == 1;
}

void
web_auth_totp_disable(struct web_req *r)
{
	if (!web_auth_settings_reauth(r))
		return;
	if (store_user_set_totp(r->store, r->email, NULL, 0) == -1 ||
	    web_session_recovery_clear(r->sessions, r->email) == -1) {
		web_page_tempfail(r);
		return;
	}
	log_info("web: %s disabled 2FA", r->email);
	web_auth_settings_page(r, web_text_get("settings.totp_off"), NULL);
}

void
web_auth_recovery(struct web_req *r)
{
	if (!web_auth_settings_reauth(r))
		return;
	log_info("web: %s made new recovery codes", r->email);
	web_auth_recovery_page(r);
}

void
web_auth_logout_all(struct web_req *r)
{
	char *c;

	web_session_end_all(r->sessions, r->email);
	log_info("web: %s signed out everywhere", r->email);
	c = web_cookie_clear("sid");
	web_header(r, "Set-Cookie", c);
	free(c);
	r->signed_in = 0;
	web_page_simple(r, 200, web_text_get("logout.title"),
	    web_text_get("logout.done"), "/login",
	    web_text_get("login.submit"));
}
