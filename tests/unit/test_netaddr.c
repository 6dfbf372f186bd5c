/* netaddr: CIDR lists, IPv4-mapped clients, listen specs, ntop. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <cmocka.h>

#include "netaddr.h"

static struct sockaddr_storage
sa_of(const char *s)
{
	struct sockaddr_storage ss;

	memset(&ss, 0, sizeof(ss));
	if (strchr(s, ':') != NULL) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;

		s6->sin6_family = AF_INET6;
		assert_int_equal(inet_pton(AF_INET6, s, &s6->sin6_addr), 1);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;

		s4->sin_family = AF_INET;
		assert_int_equal(inet_pton(AF_INET, s, &s4->sin_addr), 1);
	}
	return ss;
}

static const struct {
	const char	*client;
	int		 match;
} match_cases[] = {
	{ "192.0.2.1", 1 },		/* 192.0.2.0/24 */
	{ "192.0.2.255", 1 },
	{ "192.0.3.1", 0 },
	{ "198.51.100.7", 1 },		/* plain address */
	{ "198.51.100.8", 0 },
	{ "203.0.113.130", 1 },		/* 203.0.113.128/25 */
	{ "203.0.113.127", 0 },
	{ "::ffff:192.0.2.9", 1 },	/* mapped client, IPv4 entry */
	{ "::ffff:192.0.3.9", 0 },
	{ "2001:db8::1", 1 },		/* 2001:db8::/32 */
	{ "2001:db9::1", 0 },
	{ "::1", 1 },
	{ "::2", 0 },
	{ "10.1.2.3", 1 },		/* ::ffff:10.0.0.0/104 = 10/8 */
	{ "11.1.2.3", 0 },
};

static void
test_match(void **state)
{
	static const char *const list[] = {
		"192.0.2.0/24", "198.51.100.7", "203.0.113.128/25",
		"2001:db8::/32", "::1", "::ffff:10.0.0.0/104",
	};
	struct netaddr_list *l;
	char *err;

	(void)state;
	l = netaddr_list_parse(list, sizeof(list) / sizeof(list[0]), &err);
	assert_non_null(l);
	for (size_t i = 0; i < sizeof(match_cases) / sizeof(match_cases[0]);
	    i++) {
		struct sockaddr_storage ss = sa_of(match_cases[i].client);

		if (netaddr_list_match(l, (struct sockaddr *)&ss) !=
		    match_cases[i].match)
			fail_msg("%s", match_cases[i].client);
	}
	netaddr_list_free(l);
}

static void
test_zero_prefix_and_empty(void **state)
{
	static const char *const all4[] = { "0.0.0.0/0" };
	struct sockaddr_storage v4 = sa_of("203.0.113.1");
	struct sockaddr_storage v6 = sa_of("2001:db8::1");
	struct netaddr_list *l;
	char *err;

	(void)state;
	l = netaddr_list_parse(all4, 1, &err);
	assert_true(netaddr_list_match(l, (struct sockaddr *)&v4));
	assert_false(netaddr_list_match(l, (struct sockaddr *)&v6));
	netaddr_list_free(l);
	l = netaddr_list_parse(NULL, 0, &err);
	assert_false(netaddr_list_match(l, (struct sockaddr *)&v4));
	netaddr_list_free(l);
	assert_false(netaddr_list_match(NULL, (struct sockaddr *)&v4));
}

static void
test_bad_entries(void **state)
{
	static const char *const bad[] = {
		"192.0.2.0/33", "192.0.2.0/", "2001:db8::/129", "example.com",
		"192.0.2", "192.0.2.0/-1", "192.0.2.0/8x", "",
	};
	char *err;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		const char *one[] = { bad[i] };

		if (netaddr_list_parse(one, 1, &err) != NULL)
			fail_msg("accepted %s", bad[i]);
		assert_non_null(err);
		assert_non_null(strstr(err, bad[i]));
		free(err);
	}
}

static void
test_ntop(void **state)
{
	struct sockaddr_storage ss;
	char buf[NETADDR_STRLEN];

	(void)state;
	ss = sa_of("::ffff:192.0.2.5");
	netaddr_ntop((struct sockaddr *)&ss, buf, sizeof(buf));
	assert_string_equal(buf, "192.0.2.5");
	ss = sa_of("2001:db8::5");
	netaddr_ntop((struct sockaddr *)&ss, buf, sizeof(buf));
	assert_string_equal(buf, "2001:db8::5");
	ss = sa_of("198.51.100.1");
	netaddr_ntop((struct sockaddr *)&ss, buf, sizeof(buf));
	assert_string_equal(buf, "198.51.100.1");
}

static void
test_listen(void **state)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	char *err;
	int fd;

	(void)state;
	fd = netaddr_listen("127.0.0.1:0", 5, &err);
	assert_true(fd >= 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&ss, &len), 0);
	assert_int_equal(ss.ss_family, AF_INET);
	close(fd);
	fd = netaddr_listen("[::1]:0", 5, &err);
	if (fd >= 0) {	/* hosts without IPv6 loopback skip this */
		len = sizeof(ss);
		assert_int_equal(getsockname(fd, (struct sockaddr *)&ss, &len),
		    0);
		assert_int_equal(ss.ss_family, AF_INET6);
		close(fd);
	} else
		free(err);
	fd = netaddr_listen("*:0", 5, &err);
	assert_true(fd >= 0);
	close(fd);
	static const char *const bad[] = { "127.0.0.1", "[::1]25", ":25",
	    "127.0.0.1:", "*:99999", "::1:25" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if ((fd = netaddr_listen(bad[i], 5, &err)) != -1)
			fail_msg("listened on %s", bad[i]);
		assert_non_null(err);
		free(err);
	}
}

/* Accepted sockets must not wait on Nagle: replies are small. */
static void
test_accepted_socket_has_nodelay(void **state)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss), olen;
	char *err;
	int lfd, cfd, afd, on = 0;

	(void)state;
	lfd = netaddr_listen("127.0.0.1:0", 5, &err);
	assert_true(lfd >= 0);
	assert_int_equal(getsockname(lfd, (struct sockaddr *)&ss, &len), 0);
	cfd = socket(AF_INET, SOCK_STREAM, 0);
	assert_int_equal(connect(cfd, (struct sockaddr *)&ss, len), 0);
	do
		afd = accept(lfd, NULL, NULL);
	while (afd == -1);
	olen = sizeof(on);
	assert_int_equal(getsockopt(afd, IPPROTO_TCP, TCP_NODELAY, &on,
	    &olen), 0);
	assert_int_not_equal(on, 0);
	close(afd);
	close(cfd);
	close(lfd);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_match),
		cmocka_unit_test(test_zero_prefix_and_empty),
		cmocka_unit_test(test_bad_entries),
		cmocka_unit_test(test_ntop),
		cmocka_unit_test(test_listen),
		cmocka_unit_test(test_accepted_socket_has_nodelay),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
