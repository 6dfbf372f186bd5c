/*
 * The key holder's own rules, against a real keyd child: the request-size
 * limit (refused, keyd stays up), malformed requests, the purpose of a
 * signature (the tunnel key signs no user mail, a user key never signs as
 * the tunnel), the process setup of the shared core (locked key memory,
 * no network, a thread per channel). Runs from the source root; the PKI
 * comes from tests/pki/mkpki.sh in $POSTERN_PKI (default build/pki).
 */
#include <sys/types.h>
#include <sys/wait.h>

#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "unit_util.h"

#include "../../internal-gw/keyd.h"
#include "keyholder.h"

#define TUNNEL	"gateway@relay-to-webmail.private"
#define USER	"carol@example.com"

static char pki[512], tmp[512];
static struct keyd_client *kc, *tc;
static pid_t keyd_pid;
static const char *tls_keys[1];
static char tlspath[700];

static int
setup(void **state)
{
	const char *p = getenv("POSTERN_PKI");
	struct keyd_conf conf;

	(void)state;
	snprintf(pki, sizeof(pki), "%s", p ? p : "build/pki");
	if (run("sh tests/pki/mkpki.sh %s", pki) != 0)
		return -1;
	snprintf(tmp, sizeof(tmp), "/tmp/postern-keyd-XXXXXX");
	if (mkdtemp(tmp) == NULL)
		return -1;
	if (run("cat %s/carol.key %s/carol-chain.pem > %s/carol.pem && "
	    "cat %s/gateway.key %s/gateway-chain.pem > %s/gateway.pem",
	    pki, pki, tmp, pki, pki, tmp) != 0)
		return -1;
	snprintf(tlspath, sizeof(tlspath), "%s/gw-tls.key", pki);
	tls_keys[0] = tlspath;
	memset(&conf, 0, sizeof(conf));
	conf.keys_dir = tmp;
	conf.tls_keys = tls_keys;
	conf.ntls = 1;
	conf.tunnel_signer = TUNNEL;
	conf.workers = 2;
	if ((keyd_pid = keyd_spawn(&conf, &kc, &tc)) == -1)
		return -1;
	return 0;
}

static int
teardown(void **state)
{
	int st;

	(void)state;
	keyd_client_free(&tc);
	keyd_client_free(&kc);
	waitpid(keyd_pid, &st, 0);
	run("rm -rf %s", tmp);
	return 0;
}

static int
sign(const char *signer, enum keyd_purpose purpose, const char *msgid,
    char *err, size_t errlen)
{
	unsigned char md[KEYD_DIGEST_LEN], *der;
	size_t derlen;
	int rc;

	memset(md, 0xab, sizeof(md));
	rc = keyd_sign_digest(kc, signer, purpose, msgid, md, &der, &derlen,
	    err, errlen);
	if (rc == 0) {
		assert_true(derlen > 100);
		free(der);
	}
	return rc;
}

/* One field of /proc/PID/status, as a number. */
static long
proc_status(pid_t pid, const char *field)
{
	char path[64], line[256];
	long v = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	assert_non_null(f = fopen(path, "r"));
	while (fgets(line, sizeof(line), f) != NULL)
		if (strncmp(line, field, strlen(field)) == 0) {
			v = strtol(line + strlen(field), NULL, 10);
			break;
		}
	fclose(f);
	assert_int_not_equal(v, -1);
	return v;
}

/*
 * A request longer than the channel's limit is read, refused and logged;
 * keyd answers the next request as before. Both kinds of channel.
 */
static void
test_oversized_refused(void **state)
{
	static unsigned char big[1024 * 1024];
	unsigned char *reply;
	size_t rlen;
	char err[128];

	(void)state;
	memset(big, 'a', sizeof(big));
	assert_int_equal(keyholder_request(keyd_client_core(kc), 1, big,
	    KEYD_MAX_SIGN_REQ + 1, NULL, 0, 4096, &reply, &rlen),
	    KEYHOLDER_ERR);
	assert_string_equal((char *)reply, "request too large");
	free(reply);
	assert_int_equal(keyholder_request(keyd_client_core(kc), 1, big,
	    sizeof(big), NULL, 0, 4096, &reply, &rlen), KEYHOLDER_ERR);
	assert_string_equal((char *)reply, "request too large");
	free(reply);
	assert_int_equal(keyholder_request(keyd_client_core(tc), 51, big,
	    KEYD_MAX_TLS_REQ + 1, NULL, 0, 4096, &reply, &rlen),
	    KEYHOLDER_ERR);
	assert_string_equal((char *)reply, "request too large");
	free(reply);
	/* Still up, on every channel. */
	for (int i = 0; i < 4; i++)
		assert_int_equal(sign(USER, KEYD_PURPOSE_MAIL, "after-big",
		    err, sizeof(err)), 0);
	assert_int_equal(kill(keyd_pid, 0), 0);
}

/* A request that parses wrong is refused with a reason, keyd stays up. */
static void
test_malformed_refused(void **state)
{
	unsigned char *reply, req[64];
	uint32_t v[3] = { KEYD_PURPOSE_MAIL, 40, 4 };
	size_t rlen;
	char err[128];

	(void)state;
	memset(req, 'x', sizeof(req));
	memcpy(req, v, sizeof(v));
	assert_int_equal(keyholder_request(keyd_client_core(kc), 1, req,
	    sizeof(req), NULL, 0, 4096, &reply, &rlen), KEYHOLDER_ERR);
	assert_string_equal((char *)reply, "bad SIGN request lengths");
	free(reply);
	assert_int_equal(keyholder_request(keyd_client_core(kc), 77, NULL, 0,
	    NULL, 0, 4096, &reply, &rlen), KEYHOLDER_ERR);
	free(reply);
	/* A log id that would forge a log line. */
	assert_int_equal(sign(USER, KEYD_PURPOSE_MAIL, "x signed as ceo", err,
	    sizeof(err)), -1);
	assert_non_null(strstr(err, "space"));
	assert_int_equal(sign(USER, KEYD_PURPOSE_MAIL, "ok-id", err,
	    sizeof(err)), 0);
}

/* The tunnel key signs only for the tunnel, a user key only user mail. */
static void
test_purpose(void **state)
{
	char err[128];

	(void)state;
	assert_int_equal(sign(TUNNEL, KEYD_PURPOSE_MAIL, "m1", err,
	    sizeof(err)), -1);
	assert_string_equal(err, "the tunnel key signs no user mail");
	assert_int_equal(sign("Gateway@Relay-To-Webmail.Private",
	    KEYD_PURPOSE_MAIL, "m2", err, sizeof(err)), -1);
	assert_int_equal(sign(USER, KEYD_PURPOSE_TUNNEL, "m3", err,
	    sizeof(err)), -1);
	assert_string_equal(err, "not the tunnel signer");
	assert_int_equal(sign(TUNNEL, KEYD_PURPOSE_TUNNEL, "m4", err,
	    sizeof(err)), 0);
	assert_int_equal(sign(USER, KEYD_PURPOSE_MAIL, "m5", err,
	    sizeof(err)), 0);
}

static void
test_parse_sign(void **state)
{
	struct keyd_sign_req r;
	unsigned char req[KEYD_MAX_SIGN_REQ];
	uint32_t v[3] = { KEYD_PURPOSE_TUNNEL, 5, 2 };
	const char *why;
	size_t len = sizeof(v) + 5 + 2 + KEYD_DIGEST_LEN;

	(void)state;
	memcpy(req, v, sizeof(v));
	memcpy(req + sizeof(v), "a@b.cid", 7);
	memset(req + sizeof(v) + 7, 1, KEYD_DIGEST_LEN);
	assert_int_equal(keyd_parse_sign(req, len, &r, &why), 0);
	assert_string_equal(r.signer, "a@b.c");
	assert_string_equal(r.msgid, "id");
	assert_int_equal(r.purpose, KEYD_PURPOSE_TUNNEL);
	assert_int_equal(keyd_parse_sign(req, len - 1, &r, &why), -1);
	assert_int_equal(keyd_parse_sign(req, len + 1, &r, &why), -1);
	req[sizeof(v) + 1] = '\0';
	assert_int_equal(keyd_parse_sign(req, len, &r, &why), -1);
	req[sizeof(v) + 1] = 'b';
	v[0] = 3;
	memcpy(req, v, sizeof(v));
	assert_int_equal(keyd_parse_sign(req, len, &r, &why), -1);
	assert_string_equal(why, "unknown purpose");
}

/*
 * The core's process setup: key memory locked, a seccomp filter (no
 * network), not dumpable, and one thread per channel (2 signing, 2
 * decryption, 2 TLS).
 */
static void
test_process_setup(void **state)
{
	char err[128];
	int fd;

	(void)state;
	/* An answer means setup is over. */
	assert_int_equal(sign(USER, KEYD_PURPOSE_MAIL, "setup", err,
	    sizeof(err)), 0);
	assert_true(proc_status(keyd_pid, "VmLck:") > 0);
	assert_int_equal(proc_status(keyd_pid, "Seccomp:"), 2);
	assert_int_equal(proc_status(keyd_pid, "NoNewPrivs:"), 1);
	assert_int_equal(proc_status(keyd_pid, "Threads:"), 6);
	/* Not dumpable: even its owner cannot read its memory. */
	if (geteuid() != 0) {
		char path[64];

		snprintf(path, sizeof(path), "/proc/%d/mem", (int)keyd_pid);
		fd = open(path, 0);
		assert_int_equal(fd, -1);
	}
}

/* keyholder_workers: 0 is one per CPU, and there is a ceiling. */
static void
test_workers(void **state)
{
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);

	(void)state;
	assert_int_equal(keyholder_workers(0), cpus > KEYHOLDER_MAX_WORKERS ?
	    KEYHOLDER_MAX_WORKERS : cpus);
	assert_int_equal(keyholder_workers(3), 3);
	assert_int_equal(keyholder_workers(100), KEYHOLDER_MAX_WORKERS);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_oversized_refused),
		cmocka_unit_test(test_malformed_refused),
		cmocka_unit_test(test_purpose),
		cmocka_unit_test(test_parse_sign),
		cmocka_unit_test(test_process_setup),
		cmocka_unit_test(test_workers),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, setup, teardown);
}
