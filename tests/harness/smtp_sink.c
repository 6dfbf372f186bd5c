/*
 * smtp_sink: a small SMTP/LMTP server on the shared engine, for tests. Each
 * accepted message is written to --out as N.eml (the spooled bytes) and
 * N.env (its envelope as JSON, written last, so a test that sees N.env
 * sees a complete pair). --reply ADDR=CODE:TEXT answers a recipient with
 * that code instead of 250.
 */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <event2/event.h>

#include "log.h"
#include "netaddr.h"
#include "smtp_server.h"
#include "tls.h"
#include "workq.h"
#include "xmalloc.h"

struct sink_reply {
	char	*addr;
	int	 code;
	char	*text;
};

struct sink {
	const char		*out;
	struct sink_reply	*replies;
	size_t			 nreplies;
	pthread_mutex_t		 mtx;
	unsigned int		 seq;
};

static void
sink_usage(void)
{
	fprintf(stderr, "usage: smtp_sink [--listen ADDR:PORT] [--lmtp] "
	    "[--hostname NAME] --spool DIR [--out DIR]\n"
	    "\t[--max-line N] [--max-size N] [--max-rcpts N] [--max-conn N]\n"
	    "\t[--max-per-ip N] [--cmd-timeout S] [--data-timeout S] "
	    "[--max-errors N]\n"
	    "\t[--tls-cert F --tls-key F] [--tls-required] [--client-ca F]\n"
	    "\t[--xforward-from CIDR]... [--reply ADDR=CODE:TEXT]...\n");
	exit(2);
}

static void
sink_json_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			fprintf(f, "\\%c", c);
		else if (c < 0x20)
			fprintf(f, "\\u%04x", c);
		else
			fputc(c, f);
	}
	fputc('"', f);
}

static int
sink_copy(const char *from, const char *to)
{
	char buf[65536];
	ssize_t n;
	int in, out, rc = 0;

	if ((in = open(from, O_RDONLY | O_CLOEXEC)) == -1)
		return -1;
	if ((out = open(to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
	    0600)) == -1) {
		close(in);
		return -1;
	}
	while ((n = read(in, buf, sizeof(buf))) > 0)
		if (write(out, buf, n) != n) {
			rc = -1;
			break;
		}
	if (n < 0)
		rc = -1;
	close(in);
	if (close(out) == -1)
		rc = -1;
	return rc;
}

static int
sink_store(struct sink *sk, struct smtp_txn *t)
{
	char eml[1024], env[1024], tmp[1100];
	unsigned int n;
	FILE *f;
	int first = 1;

	pthread_mutex_lock(&sk->mtx);
	n = ++sk->seq;
	pthread_mutex_unlock(&sk->mtx);
	snprintf(eml, sizeof(eml), "%s/%u.eml", sk->out, n);
	snprintf(env, sizeof(env), "%s/%u.env", sk->out, n);
	snprintf(tmp, sizeof(tmp), "%s.tmp", env);
	if (sink_copy(t->spool_path, eml) == -1) {
		log_warn("sink: copy to %s", eml);
		return -1;
	}
	if ((f = fopen(tmp, "w")) == NULL) {
		log_warn("sink: %s", tmp);
		return -1;
	}
	fprintf(f, "{\"id\": ");
	sink_json_str(f, t->id);
	fprintf(f, ", \"from\": ");
	sink_json_str(f, t->mail_from);
	fprintf(f, ", \"to\": [");
	for (size_t i = 0; i < t->nrcpts; i++) {
		if (t->rcpts[i].code / 100 != 2)
			continue;
		fprintf(f, "%s", first ? "" : ", ");
		sink_json_str(f, t->rcpts[i].addr);
		first = 0;
	}
	fprintf(f, "], \"size\": %lld, \"smtputf8\": %s, \"body_8bit\": %s, "
	    "\"tls\": %s, \"lmtp\": %s, \"client_addr\": ", (long long)t->size,
	    t->smtputf8 ? "true" : "false", t->body_8bit ? "true" : "false",
	    t->tls ? "true" : "false", t->lmtp ? "true" : "false");
	sink_json_str(f, t->client_addr);
	fprintf(f, ", \"client_name\": ");
	sink_json_str(f, t->client_name);
	fprintf(f, ", \"helo\": ");
	sink_json_str(f, t->helo);
	fprintf(f, ", \"tls_peer_fp\": ");
	sink_json_str(f, t->tls_peer_fp);
	fprintf(f, "}\n");
	if (fclose(f) == EOF || rename(tmp, env) == -1) {
		log_warn("sink: %s", env);
		return -1;
	}
	return 0;
}

static void
sink_message(void *arg, struct smtp_txn *t)
{
	struct sink *sk = arg;
	int all2 = 1, any2 = 0;

	for (size_t i = 0; i < t->nrcpts; i++) {
		struct smtp_rcpt *r = &t->rcpts[i];

		r->code = 250;
		snprintf(r->reply, sizeof(r->reply), "2.0.0 Ok: queued as %s",
		    t->id);
		for (size_t j = 0; j < sk->nreplies; j++) {
			if (strcasecmp(sk->replies[j].addr, r->addr) == 0) {
				r->code = sk->replies[j].code;
				snprintf(r->reply, sizeof(r->reply), "%s",
				    sk->replies[j].text);
			}
		}
		if (r->code / 100 == 2)
			any2 = 1;
		else
			all2 = 0;
	}
	/* SMTP refuses the whole message unless every recipient is 2xx. */
	if (sk->out == NULL || !(t->lmtp ? any2 : all2))
		return;
	if (sink_store(sk, t) == -1) {
		for (size_t i = 0; i < t->nrcpts; i++) {
			t->rcpts[i].code = 451;
			snprintf(t->rcpts[i].reply, sizeof(t->rcpts[i].reply),
			    "4.3.0 sink could not store the message");
		}
	}
}

static void
sink_signal(evutil_socket_t sig, short ev, void *arg)
{
	(void)sig;
	(void)ev;
	event_base_loopbreak(arg);
}

static long
sink_num(const char *s)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (*s == '\0' || *end != '\0' || v < 0 || errno != 0)
		sink_usage();
	return v;
}

int
main(int argc, char *argv[])
{
	enum { O_LISTEN = 256, O_LMTP, O_HOST, O_SPOOL, O_OUT, O_MAXLINE,
	    O_MAXSIZE, O_MAXRCPT, O_MAXCONN, O_PERIP, O_CMDTO, O_DATATO,
	    O_MAXERR, O_CERT, O_KEY, O_TLSREQ, O_CA, O_XF, O_REPLY };
	static const struct option opts[] = {
		{ "listen", required_argument, NULL, O_LISTEN },
		{ "lmtp", no_argument, NULL, O_LMTP },
		{ "hostname", required_argument, NULL, O_HOST },
		{ "spool", required_argument, NULL, O_SPOOL },
		{ "out", required_argument, NULL, O_OUT },
		{ "max-line", required_argument, NULL, O_MAXLINE },
		{ "max-size", required_argument, NULL, O_MAXSIZE },
		{ "max-rcpts", required_argument, NULL, O_MAXRCPT },
		{ "max-conn", required_argument, NULL, O_MAXCONN },
		{ "max-per-ip", required_argument, NULL, O_PERIP },
		{ "cmd-timeout", required_argument, NULL, O_CMDTO },
		{ "data-timeout", required_argument, NULL, O_DATATO },
		{ "max-errors", required_argument, NULL, O_MAXERR },
		{ "tls-cert", required_argument, NULL, O_CERT },
		{ "tls-key", required_argument, NULL, O_KEY },
		{ "tls-required", no_argument, NULL, O_TLSREQ },
		{ "client-ca", required_argument, NULL, O_CA },
		{ "xforward-from", required_argument, NULL, O_XF },
		{ "reply", required_argument, NULL, O_REPLY },
		{ NULL, 0, NULL, 0 },
	};
	struct smtp_server_conf conf;
	struct smtp_server_ops ops = { NULL, NULL, sink_message };
	const char *listen = "127.0.0.1:2525", *cert = NULL, *key = NULL;
	const char *ca = NULL;
	const char **xf = NULL;
	size_t nxf = 0;
	struct netaddr_list *xfl = NULL;
	struct event_base *base;
	struct event *sigterm, *sigint;
	struct smtp_server *srv;
	struct workq *wq;
	struct sink sk;
	char *err;
	int ch, fd;

	memset(&conf, 0, sizeof(conf));
	memset(&sk, 0, sizeof(sk));
	pthread_mutex_init(&sk.mtx, NULL);
	conf.hostname = "sink.test";
	log_init("smtp_sink", LOG_TO_STDERR, getenv("SINK_DEBUG") != NULL);
	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (ch) {
		case O_LISTEN: listen = optarg; break;
		case O_LMTP: conf.lmtp = 1; break;
		case O_HOST: conf.hostname = optarg; break;
		case O_SPOOL: conf.spool_dir = optarg; break;
		case O_OUT: sk.out = optarg; break;
		case O_MAXLINE: conf.max_line = sink_num(optarg); break;
		case O_MAXSIZE: conf.max_message_size = sink_num(optarg); break;
		case O_MAXRCPT: conf.max_recipients = sink_num(optarg); break;
		case O_MAXCONN: conf.max_connections = sink_num(optarg); break;
		case O_PERIP: conf.max_per_ip = sink_num(optarg); break;
		case O_CMDTO: conf.cmd_timeout = sink_num(optarg); break;
		case O_DATATO: conf.data_timeout = sink_num(optarg); break;
		case O_MAXERR: conf.max_errors = sink_num(optarg); break;
		case O_CERT: cert = optarg; break;
		case O_KEY: key = optarg; break;
		case O_TLSREQ: conf.tls_required = 1; break;
		case O_CA: ca = optarg; break;
		case O_XF:
			xf = xreallocarray(xf, nxf + 1, sizeof(*xf));
			xf[nxf++] = optarg;
			break;
		case O_REPLY: {
			char *eq = strchr(optarg, '='), *colon;
			struct sink_reply *r;

			if (eq == NULL || (colon = strchr(eq, ':')) == NULL)
				sink_usage();
			sk.replies = xreallocarray(sk.replies, sk.nreplies + 1,
			    sizeof(*sk.replies));
			r = &sk.replies[sk.nreplies++];
			r->addr = xstrndup(optarg, eq - optarg);
			*colon = '\0';
			r->code = (int)sink_num(eq + 1);
			r->text = colon + 1;
			break;
		}
		default:
			sink_usage();
		}
	}
	if (conf.spool_dir == NULL || argc != optind || (cert == NULL) !=
	    (key == NULL))
		sink_usage();
	signal(SIGPIPE, SIG_IGN);
	if (cert != NULL && (conf.tls_ctx = tls_server_ctx(cert, key, ca,
	    &err)) == NULL)
		fatalx("%s", err);
	if (nxf > 0 && (xfl = netaddr_list_parse(xf, nxf, &err)) == NULL)
		fatalx("%s", err);
	conf.xforward_from = xfl;
	if ((fd = netaddr_listen(listen, 128, &err)) == -1)
		fatalx("%s", err);
	if ((base = event_base_new()) == NULL)
		fatalx("event_base_new");
	wq = workq_new(base, 2);
	srv = smtp_server_new(base, &conf, &ops, &sk, wq);
	if (smtp_server_add_listener(srv, fd) == -1)
		fatalx("cannot listen on %s", listen);
	sigterm = evsignal_new(base, SIGTERM, sink_signal, base);
	sigint = evsignal_new(base, SIGINT, sink_signal, base);
	evsignal_add(sigterm, NULL);
	evsignal_add(sigint, NULL);
	log_info("listening on %s%s", listen, conf.lmtp ? " (LMTP)" : "");
	log_info("ready");
	event_base_dispatch(base);
	smtp_server_free(srv);
	workq_free(wq);
	event_free(sigterm);
	event_free(sigint);
	event_base_free(base);
	netaddr_list_free(xfl);
	SSL_CTX_free(conf.tls_ctx);
	for (size_t i = 0; i < sk.nreplies; i++)
		free(sk.replies[i].addr);
	free(sk.replies);
	free(xf);
	return 0;
}
