/*
 * Runs the gateway's inbound path on one message, for benchmarks:
 *
 *   inbound_decrypt -c CONF -r RCPT [-t THREADS] [-s SECONDS] MESSAGE
 *
 * It reads the gateway's configuration file, spawns the real key holder
 * (keys_dir, keyd_workers) as internal-gw does, and then calls
 * inbound_process(), the function the SMTP worker calls for internal
 * recipients (RecipientInfo extraction, keyd UNWRAP, content decryption
 * from the spool file, signature check, result header fields), on MESSAGE
 * for RCPT from THREADS threads (default: one per CPU) during SECONDS
 * seconds (default 3). The SMTP session and the relay are left out, so
 * the figure is the decryption path itself. The first result must say
 * "X-Postern-Encrypted: decrypted", else it stops with status 1. Prints
 * one JSON line: threads, messages, seconds, messages per second.
 */
#include <sys/wait.h>

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <gmime/gmime.h>

#include "../../internal-gw/certstore.h"
#include "config.h"
#include "../../internal-gw/gateway.h"
#include "../../internal-gw/gw_conf.h"
#include "../../internal-gw/inbound.h"
#include "../../internal-gw/keyd.h"
#include "log.h"

struct inbound_decrypt_run {
	struct gateway	*gw;
	const char	*msg;
	char		*rcpt;
	int		 idx;
	double		 until;
	long		 count;
	int		 failed;
};

static double
inbound_decrypt_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* One message through inbound_process; 0 when it was decrypted. */
static int
inbound_decrypt_one(struct inbound_decrypt_run *r, long seq, int check)
{
	char id[64], out[4096], note[512], buf[65536];
	struct props *p;
	FILE *f;
	size_t n;
	int rc, ok = 1;

	if ((p = gateway_props(r->gw)) == NULL)
		return -1;
	snprintf(id, sizeof(id), "bench%02d%010ld", r->idx, seq);
	rc = inbound_process(r->gw, p, id, r->msg, &r->rcpt, 1, out,
	    sizeof(out), note, sizeof(note));
	if (rc != INBOUND_OK) {
		fprintf(stderr, "inbound_decrypt: inbound_process %d: %s\n",
		    rc, note);
		return -1;
	}
	if (check) {
		if ((f = fopen(out, "r")) == NULL)
			return -1;
		n = fread(buf, 1, sizeof(buf) - 1, f);
		buf[n] = '\0';
		fclose(f);
		ok = strstr(buf, "X-Postern-Encrypted: decrypted") != NULL;
		if (!ok)
			fprintf(stderr, "inbound_decrypt: not decrypted%s\n",
			    note);
	}
	unlink(out);
	return ok ? 0 : -1;
}

static void *
inbound_decrypt_thread(void *arg)
{
	struct inbound_decrypt_run *r = arg;

	while (inbound_decrypt_now() < r->until) {
		if (inbound_decrypt_one(r, r->count, 0) == -1) {
			r->failed = 1;
			break;
		}
		r->count++;
	}
	return NULL;
}

static void
inbound_decrypt_usage(void)
{
	fprintf(stderr, "usage: inbound_decrypt -c CONF -r RCPT [-t THREADS] "
	    "[-s SECONDS] MESSAGE\n");
	exit(2);
}

int
main(int argc, char **argv)
{
	struct conf c;
	struct keyd_conf kconf;
	struct keyd_client *signk, *tlsk;
	struct gateway gw;
	struct inbound_decrypt_run *runs, first;
	pthread_t *th;
	const char *conffile = NULL, *rcpt = NULL;
	char *err = NULL;
	double secs = 3, t0, t1;
	long total = 0;
	int ch, nthr = (int)sysconf(_SC_NPROCESSORS_ONLN), failed = 0;
	pid_t pid;

	while ((ch = getopt(argc, argv, "c:r:s:t:")) != -1) {
		switch (ch) {
		case 'c':
			conffile = optarg;
			break;
		case 'r':
			rcpt = optarg;
			break;
		case 's':
			secs = atof(optarg);
			break;
		case 't':
			nthr = atoi(optarg);
			break;
		default:
			inbound_decrypt_usage();
		}
	}
	if (conffile == NULL || rcpt == NULL || optind != argc - 1 ||
	    nthr < 1 || secs <= 0)
		inbound_decrypt_usage();
	log_init("inbound_decrypt", LOG_TO_STDERR, 0);
	gateway_malloc_init();	/* as internal-gw does */
	g_mime_init();
	if (conf_load(&c, conffile, gw_conf_schema, &err) == -1) {
		fprintf(stderr, "inbound_decrypt: %s", err);
		return 1;
	}

	memset(&kconf, 0, sizeof(kconf));
	kconf.keys_dir = conf_str(&c, "keys_dir");
	kconf.tunnel_signer = conf_str(&c, "portal.tunnel_signer");
	kconf.workers = conf_int(&c, "keyd_workers");
	if ((pid = keyd_spawn(&kconf, &signk, &tlsk)) == -1)
		fatalx("cannot start keyd");
	log_setproc("bench");

	memset(&gw, 0, sizeof(gw));
	gw.hostname = conf_str(&c, "hostname");
	gw.dbpath = conf_str(&c, "database");
	gw.spool_dir = conf_str(&c, "spool_dir");
	gw.max_header = conf_int(&c, "smtp.max_header_size");
	gw.tunnel_signer = conf_str(&c, "portal.tunnel_signer");
	gw.keyd = signk;
	if (conf_str(&c, "trust_anchors") != NULL &&
	    (gw.trust = certstore_trust_load(conf_str(&c, "trust_anchors"),
	    &err)) == NULL)
		fatalx("trust_anchors: %s", err);

	memset(&first, 0, sizeof(first));
	first.gw = &gw;
	first.msg = argv[optind];
	first.rcpt = (char *)rcpt;
	if (inbound_decrypt_one(&first, 0, 1) == -1) {
		fprintf(stderr, "inbound_decrypt: the message was not "
		    "decrypted\n");
		return 1;
	}

	runs = calloc((size_t)nthr, sizeof(*runs));
	th = calloc((size_t)nthr, sizeof(*th));
	if (runs == NULL || th == NULL)
		fatal("calloc");
	t0 = inbound_decrypt_now();
	for (int i = 0; i < nthr; i++) {
		runs[i] = first;
		runs[i].idx = i;
		runs[i].count = 0;
		runs[i].until = t0 + secs;
		if (pthread_create(&th[i], NULL, inbound_decrypt_thread,
		    &runs[i]) != 0)
			fatalx("pthread_create");
	}
	for (int i = 0; i < nthr; i++) {
		pthread_join(th[i], NULL);
		total += runs[i].count;
		failed |= runs[i].failed;
	}
	t1 = inbound_decrypt_now();
	printf("{\"threads\": %d, \"messages\": %ld, \"seconds\": %.3f, "
	    "\"rate\": %.1f, \"failed\": %s}\n", nthr, total, t1 - t0,
	    total / (t1 - t0), failed ? "true" : "false");
	fflush(stdout);

	keyd_client_free(&signk);
	keyd_client_free(&tlsk);
	waitpid(pid, NULL, 0);
	X509_STORE_free(gw.trust);
	free(runs);
	free(th);
	conf_free(&c);
	g_mime_shutdown();
	return failed;
}
