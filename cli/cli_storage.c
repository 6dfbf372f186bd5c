/*
 * postern-cli storage: the encrypted storage of external-portal.
 *   status                         locked or unlocked
 *   unlock [--password-file F|-]   gives the key holder the password
 *   encrypt-existing               seals the plain messages (cli_storage_seal.c)
 * The first two talk to the key holder's root-only control socket
 * (storage_encryption.control_socket).
 */
#include <sys/socket.h>
#include <sys/un.h>

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "cli.h"

#define CLI_STORAGE_USAGE \
	"usage: postern-cli storage status\n" \
	"       postern-cli storage unlock [--password-file FILE|-]\n" \
	"       postern-cli storage encrypt-existing\n"
#define CLI_STORAGE_SOCKET	"/run/postern/portal-storage.sock"
#define CLI_STORAGE_PASS_MAX	1024

/* Sends req (len bytes) and reads the one-line answer into out. */
static int
cli_storage_ask(struct cli *c, const char *req, size_t len, char *out,
    size_t outlen)
{
	const char *path = cli_conf_str(c, "storage_encryption.control_socket");
	struct sockaddr_un sun;
	size_t have = 0;
	ssize_t n;
	int fd;

	if (path == NULL)
		path = CLI_STORAGE_SOCKET;
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sun.sun_path))
		return cli_err("%s: path too long", path);
	memcpy(sun.sun_path, path, strlen(path) + 1);
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1 ||
	    connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1) {
		int e = errno;

		if (fd != -1)
			close(fd);
		return cli_err("%s: %s (is external-portal running with "
		    "storage_encryption on? run as root)", path, strerror(e));
	}
	if (write(fd, req, len) != (ssize_t)len || shutdown(fd, SHUT_WR) ==
	    -1) {
		close(fd);
		return cli_err("%s: %s", path, strerror(errno));
	}
	while (have < outlen - 1 && (n = read(fd, out + have,
	    outlen - 1 - have)) > 0)
		have += (size_t)n;
	close(fd);
	out[have] = '\0';
	out[strcspn(out, "\n")] = '\0';
	return CLI_OK;
}

/* The password from file ("-": stdin) or the terminal, echo off. */
static int
cli_storage_password(const char *file, char *pw, size_t len)
{
	struct termios t, old;
	FILE *f;
	int tty = 0;

	if (file != NULL)
		f = strcmp(file, "-") == 0 ? stdin : fopen(file, "r");
	else {
		if ((f = fopen("/dev/tty", "r+")) == NULL)
			return cli_err("no terminal: use --password-file");
		tty = 1;
		fputs("Storage key password: ", f);
		fflush(f);
		if (tcgetattr(fileno(f), &old) == 0) {
			t = old;
			t.c_lflag &= ~(tcflag_t)ECHO;
			tcsetattr(fileno(f), TCSAFLUSH, &t);
		} else
			tty = 2;
	}
	if (f == NULL)
		return cli_err("%s: %s", file, strerror(errno));
	if (fgets(pw, (int)len, f) == NULL)
		pw[0] = '\0';
	if (tty == 1) {
		tcsetattr(fileno(f), TCSAFLUSH, &old);
		fputc('\n', f);
	}
	if (f != stdin)
		fclose(f);
	pw[strcspn(pw, "\r\n")] = '\0';
	if (pw[0] == '\0')
		return cli_err("empty password");
	return CLI_OK;
}

int
cli_storage(struct cli *c, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "password-file", required_argument, NULL, 'p' },
		{ NULL, 0, NULL, 0 },
	};
	char req[CLI_STORAGE_PASS_MAX + 16], pw[CLI_STORAGE_PASS_MAX];
	char ans[128];
	const char *file = NULL, *verb;
	int ch, rc;

	if (argc < 2)
		return cli_usage(CLI_STORAGE_USAGE, "a verb is needed");
	verb = argv[1];
	optind = 2;
	while ((ch = getopt_long(argc, argv, ":", opts, NULL)) != -1) {
		if (ch == 'p')
			file = optarg;
		else
			return cli_bad_option(CLI_STORAGE_USAGE, ch,
			    argv[optind - 1]);
	}
	if (optind != argc)
		return cli_usage(CLI_STORAGE_USAGE, "unexpected %s",
		    argv[optind]);
	if (strcmp(verb, "status") == 0) {
		if (cli_open(c) == -1)
			return CLI_ERR;
		if ((rc = cli_storage_ask(c, "status\n", 7, ans, sizeof(ans)))
		    != CLI_OK)
			return rc;
		printf("%s\n", ans);
		return strcmp(ans, "unlocked") == 0 ||
		    strcmp(ans, "locked") == 0 ? CLI_OK : CLI_ERR;
	}
	if (strcmp(verb, "unlock") == 0) {
		if (cli_open(c) == -1)
			return CLI_ERR;
		if ((rc = cli_storage_password(file, pw, sizeof(pw))) != CLI_OK)
			return rc;
		snprintf(req, sizeof(req), "unlock\n%s\n", pw);
		rc = cli_storage_ask(c, req, strlen(req), ans, sizeof(ans));
		OPENSSL_cleanse(pw, sizeof(pw));
		OPENSSL_cleanse(req, sizeof(req));
		if (rc != CLI_OK)
			return rc;
		if (strcmp(ans, "unlocked") != 0)
			return cli_err("%s", ans);
		printf("unlocked\n");
		return CLI_OK;
	}
	if (strcmp(verb, "encrypt-existing") == 0) {
		if (file != NULL)
			return cli_usage(CLI_STORAGE_USAGE, "encrypt-existing "
			    "needs no password");
		return cli_storage_encrypt_existing(c);
	}
	return cli_usage(CLI_STORAGE_USAGE, "unknown verb %s", verb);
}
