/*
 * The relay's idempotency ledger, through relay_send(): a variant already
 * delivered to a recipient is not sent again; another variant, recipient
 * or message is; entries expire. The next hop is either a socket that is
 * bound but not listening (any attempt to send fails with 451) or a tiny
 * SMTP server thread that counts transactions.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <pthread.h>
#include <signal.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <cmocka.h>

#include "log.h"
#include "../../internal-gw/relay.h"

#define TTL	3600

struct fixture {
	char		 dir[64];
	char		 map[128], db[128], msg[128];
	int		 dead_fd;	/* bound, never listening */
	int		 dead_port;
	struct relay	*relay;
};

static int
bind_port(int *port)
{
	struct sockaddr_in sin;
	socklen_t sl = sizeof(sin);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	assert_true(fd != -1);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &sl), 0);
	*port = ntohs(sin.sin_port);
	return fd;
}

static void
write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static struct relay *
new_relay(struct fixture *fx, const char *maptext)
{
	struct relay_conf rc;
	struct relay *r;
	char *err = NULL;

	write_file(fx->map, maptext);
	memset(&rc, 0, sizeof(rc));
	rc.transport_map = fx->map;
	rc.default_tls = "none";
	rc.helo = "gw.test";
	rc.timeout = 10;
	rc.dbpath = fx->db;
	rc.ledger_ttl = TTL;
	if ((r = relay_new(&rc, &err)) == NULL)
		fail_msg("relay_new: %s", err);
	return r;
}

static int
setup(void **state)
{
	struct fixture *fx = calloc(1, sizeof(*fx));
	char map[128];

	assert_non_null(fx);
	snprintf(fx->dir, sizeof(fx->dir), "/tmp/test_relay.XXXXXX");
	assert_non_null(mkdtemp(fx->dir));
	snprintf(fx->map, sizeof(fx->map), "%s/transport", fx->dir);
	snprintf(fx->db, sizeof(fx->db), "%s/gw.db", fx->dir);
	snprintf(fx->msg, sizeof(fx->msg), "%s/msg.eml", fx->dir);
	write_file(fx->msg, "Subject: ledger\r\n\r\nbody\r\n");
	fx->dead_fd = bind_port(&fx->dead_port);
	snprintf(map, sizeof(map), "* smtp:[127.0.0.1]:%d\n", fx->dead_port);
	fx->relay = new_relay(fx, map);
	*state = fx;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *fx = *state;
	char path[192];

	relay_free(fx->relay);
	close(fx->dead_fd);
	unlink(fx->map);
	unlink(fx->msg);
	unlink(fx->db);
	snprintf(path, sizeof(path), "%s-wal", fx->db);
	unlink(path);
	snprintf(path, sizeof(path), "%s-shm", fx->db);
	unlink(path);
	rmdir(fx->dir);
	free(fx);
	return 0;
}

static void
send_variant(struct fixture *fx, const char *key, const char *kind,
    const char *const *rcpts, size_t n, int *codes, char (*replies)[512])
{
	struct relay_variant v;

	memset(&v, 0, sizeof(v));
	v.kind = kind;
	v.path = fx->msg;
	v.from = "alice@example.com";
	v.rcpts = rcpts;
	v.nrcpts = n;
	assert_int_equal(relay_send(fx->relay, key, &v, codes, replies), 0);
}

static void
nexthop(struct fixture *fx, char *out, size_t len)
{
	snprintf(out, len, "[127.0.0.1]:%d", fx->dead_port);
}

static void
test_recorded_variant_is_skipped(void **state)
{
	struct fixture *fx = *state;
	const char *rcpts[] = { "bob@example.net" };
	char hop[64], replies[1][512];
	int codes[1];

	nexthop(fx, hop, sizeof(hop));
	/* Not recorded: an attempt is made, and the dead hop refuses it. */
	send_variant(fx, "k1", "smime", rcpts, 1, codes, replies);
	assert_int_equal(codes[0], 451);

	assert_int_equal(relay_ledger_record(fx->relay, "k1", "smime", hop,
	    "bob@example.net", time(NULL)), 0);
	send_variant(fx, "k1", "smime", rcpts, 1, codes, replies);
	assert_int_equal(codes[0], 250);
	assert_non_null(strstr(replies[0], "already delivered"));
}

static void
test_other_variant_or_recipients_not_skipped(void **state)
{
	struct fixture *fx = *state;
	const char *both[] = { "bob@example.net", "carol@example.net" };
	const char *carol[] = { "carol@example.net" };
	char hop[64], replies[2][512];
	int codes[2];

	nexthop(fx, hop, sizeof(hop));
	assert_int_equal(relay_ledger_record(fx->relay, "k2", "smime", hop,
	    "bob@example.net", time(NULL)), 0);

	/* Another variant kind of the same message. */
	send_variant(fx, "k2", "plain", both, 1, codes, replies);
	assert_int_equal(codes[0], 451);
	/* Another message. */
	send_variant(fx, "k3", "smime", both, 1, codes, replies);
	assert_int_equal(codes[0], 451);
	/* Another recipient set: only the recorded recipient is skipped. */
	send_variant(fx, "k2", "smime", both, 2, codes, replies);
	assert_int_equal(codes[0], 250);
	assert_int_equal(codes[1], 451);
	send_variant(fx, "k2", "smime", carol, 1, codes, replies);
	assert_int_equal(codes[0], 451);
	/* Another next hop for the same recipient. */
	assert_int_equal(relay_ledger_delivered(fx->relay, "k2", "smime",
	    "[192.0.2.1]:25", "bob@example.net", time(NULL)), 0);
	assert_int_equal(relay_ledger_delivered(fx->relay, "k2", "smime",
	    hop, "bob@example.net", time(NULL)), 1);
}

static void
test_expiry(void **state)
{
	struct fixture *fx = *state;
	const char *rcpts[] = { "bob@example.net" };
	char hop[64], replies[1][512];
	time_t now = time(NULL), old = now - TTL - 10;
	int codes[1];

	nexthop(fx, hop, sizeof(hop));
	assert_int_equal(relay_ledger_record(fx->relay, "k4", "smime", hop,
	    "bob@example.net", old), 0);
	/* Still stored (seen from its own time), but expired now. */
	assert_int_equal(relay_ledger_delivered(fx->relay, "k4", "smime", hop,
	    "bob@example.net", old + 1), 1);
	assert_int_equal(relay_ledger_delivered(fx->relay, "k4", "smime", hop,
	    "bob@example.net", now), 0);
	send_variant(fx, "k4", "smime", rcpts, 1, codes, replies);
	assert_int_equal(codes[0], 451);
	/* relay_send purged it: gone even when looked at from back then. */
	assert_int_equal(relay_ledger_delivered(fx->relay, "k4", "smime", hop,
	    "bob@example.net", old + 1), 0);

	/* A fresh entry survives a purge. */
	assert_int_equal(relay_ledger_record(fx->relay, "k5", "smime", hop,
	    "bob@example.net", now), 0);
	assert_int_equal(relay_ledger_purge(fx->relay, now), 0);
	assert_int_equal(relay_ledger_delivered(fx->relay, "k5", "smime", hop,
	    "bob@example.net", now), 1);
}

/* A one-connection-at-a-time SMTP server that accepts everything. */
struct mini {
	int		 fd, port, messages;
	pthread_t	 t;
};

static void *
mini_run(void *arg)
{
	struct mini *s = arg;
	char line[1024];
	int c, indata;
	FILE *f;

	while ((c = accept(s->fd, NULL, NULL)) != -1) {
		if ((f = fdopen(c, "r+")) == NULL)
			break;
		setvbuf(f, NULL, _IONBF, 0);
		fputs("220 mini\r\n", f);
		indata = 0;
		while (fgets(line, sizeof(line), f) != NULL) {
			if (indata) {
				if (strcmp(line, ".\r\n") == 0) {
					indata = 0;
					s->messages++;
					fputs("250 2.0.0 taken\r\n", f);
				}
			} else if (strncmp(line, "DATA", 4) == 0) {
				indata = 1;
				fputs("354 go\r\n", f);
			} else if (strncmp(line, "QUIT", 4) == 0) {
				fputs("221 bye\r\n", f);
				break;
			} else
				fputs("250 ok\r\n", f);
		}
		fclose(f);
	}
	return NULL;
}

static void
test_delivery_is_recorded(void **state)
{
	struct fixture *fx = *state;
	const char *rcpts[] = { "bob@example.net", "carol@example.org" };
	char map[256], hop[64], replies[2][512];
	struct mini s;
	int codes[2];

	s.messages = 0;
	s.fd = bind_port(&s.port);
	assert_int_equal(listen(s.fd, 4), 0);
	assert_int_equal(pthread_create(&s.t, NULL, mini_run, &s), 0);
	/* example.net goes to the server, example.org to the dead hop. */
	snprintf(map, sizeof(map), "example.net smtp:[127.0.0.1]:%d\n"
	    "* smtp:[127.0.0.1]:%d\n", s.port, fx->dead_port);
	relay_free(fx->relay);
	fx->relay = new_relay(fx, map);

	send_variant(fx, "k6", "portal-webmail", rcpts, 2, codes, replies);
	assert_int_equal(codes[0], 250);
	assert_non_null(strstr(replies[0], "taken"));
	assert_int_equal(codes[1], 451);
	assert_int_equal(s.messages, 1);
	snprintf(hop, sizeof(hop), "[127.0.0.1]:%d", s.port);
	assert_int_equal(relay_ledger_delivered(fx->relay, "k6",
	    "portal-webmail", hop, "bob@example.net", time(NULL)), 1);

	/* The retry reaches only the recipient that did not get it. */
	send_variant(fx, "k6", "portal-webmail", rcpts, 2, codes, replies);
	assert_int_equal(codes[0], 250);
	assert_int_equal(codes[1], 451);
	assert_int_equal(s.messages, 1);

	/* The client keeps its connection for the next message: let go. */
	smtp_client_cache_flush();
	shutdown(s.fd, SHUT_RDWR);
	close(s.fd);
	pthread_join(s.t, NULL);
}

static void
test_no_route(void **state)
{
	struct fixture *fx = *state;
	const char *rcpts[] = { "bob@example.net" };
	char replies[1][512];
	int codes[1];

	relay_free(fx->relay);
	fx->relay = new_relay(fx, "example.com smtp:[127.0.0.1]:9\n");
	send_variant(fx, "k7", "plain", rcpts, 1, codes, replies);
	assert_int_equal(codes[0], 451);
	assert_non_null(strstr(replies[0], "no transport route"));
}

static void
test_conf_errors(void **state)
{
	struct fixture *fx = *state;
	struct relay_tls_policy pol;
	struct relay_conf rc;
	enum smtp_client_tls l;
	char *err = NULL;

	assert_int_equal(smtp_client_tls_level("encrypt", &l), 0);
	assert_int_equal(l, SMTP_CLIENT_TLS_ENCRYPT);
	assert_int_equal(smtp_client_tls_level("secure", &l), -1);

	memset(&rc, 0, sizeof(rc));
	rc.transport_map = fx->map;
	rc.dbpath = fx->db;
	rc.default_tls = "bogus";
	assert_null(relay_new(&rc, &err));
	assert_non_null(strstr(err, "default_tls"));
	free(err);

	rc.default_tls = NULL;
	memset(&pol, 0, sizeof(pol));
	snprintf(pol.nexthop, sizeof(pol.nexthop), "[h]:99999");
	rc.tls_policy = &pol;
	rc.ntls_policy = 1;
	assert_null(relay_new(&rc, &err));
	assert_non_null(strstr(err, "invalid port"));
	free(err);
}

static void
test_msgkey(void **state)
{
	struct fixture *fx = *state;
	char a[65], b[65], c[65], d[65], e[65];

	relay_msgkey("alice@example.com", fx->msg, a);
	relay_msgkey("alice@example.com", fx->msg, b);
	relay_msgkey("mallory@example.com", fx->msg, c);
	assert_int_equal(strlen(a), 64);
	assert_string_equal(a, b);
	assert_string_not_equal(a, c);
	write_file(fx->msg, "Subject: ledger\r\n\r\nbody!\r\n");
	relay_msgkey("alice@example.com", fx->msg, d);
	assert_string_not_equal(a, d);
	/* Unreadable: a random key, never equal to another. */
	relay_msgkey("alice@example.com", "/nonexistent/msg", d);
	relay_msgkey("alice@example.com", "/nonexistent/msg", e);
	assert_string_not_equal(d, e);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_recorded_variant_is_skipped,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_other_variant_or_recipients_not_skipped, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_expiry, setup, teardown),
		cmocka_unit_test_setup_teardown(test_delivery_is_recorded,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_no_route, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_conf_errors, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_msgkey, setup, teardown),
	};

	log_init("test_relay_ledger", LOG_TO_STDERR, 0);
	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests_name("relay_ledger", tests, NULL, NULL);
}
