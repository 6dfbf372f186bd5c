/*
 * libFuzzer: the gateway's readers of OpenPGP from outside. The first
 * byte picks one:
 *   0  a whole inbound message for internal recipients (PGP/MIME,
 *      inline PGP, Autocrypt, key attachments), with no key holder;
 *   1  a key holder key file (keyd_pgp_parse);
 *   2  public key data into the key store (Autocrypt, attachments);
 *   3  OpenPGP data to decrypt: armour, the top-level packets, librnp;
 *   4  the packet framing alone;
 *   5  keyd's OpenPGP requests (the next byte: PGP_INFO, PGP_SIGN or
 *      PGP_DECRYPT) against the throw-away key of tests/fixtures/pgp,
 *      answered on a socketpair that is drained after each request.
 * The key store is an SQLite database in a temporary file.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <unistd.h>

#include <gmime/gmime.h>

#include "db.h"
#include "keyholder.h"
#include "log.h"
#include "../../internal-gw/keyd_pgp.h"
#include "../../internal-gw/pgp.h"
#include "../../internal-gw/pgp_in.h"
#include "../../internal-gw/pgp_packet.h"

int LLVMFuzzerInitialize(int *, char ***);
int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static struct db	*db;
static char	 dbpath[] = "/tmp/fuzz_pgp.XXXXXX";
static char	 keysdir[] = "/tmp/fuzz_pgp_keys.XXXXXX";
static int	 chfd[2];
static pid_t	 self;

static void
cleanup(void)
{
	char p[sizeof(dbpath) + 8];

	if (getpid() != self)
		return;
	db_close(db);
	(void)unlink(dbpath);
	{
		char cmd[128];

		snprintf(cmd, sizeof(cmd), "rm -rf %s", keysdir);
		(void)system(cmd);
	}
	snprintf(p, sizeof(p), "%s-wal", dbpath);
	(void)unlink(p);
	snprintf(p, sizeof(p), "%s-shm", dbpath);
	(void)unlink(p);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char *err = NULL;
	int fd;

	(void)argc;
	(void)argv;
	log_init("fuzz_pgp", 0, 0);
	g_mime_init();
	self = getpid();
	if ((fd = mkstemp(dbpath)) == -1)
		abort();
	close(fd);
	atexit(cleanup);
	{
		char cmd[256];

		if (mkdtemp(keysdir) == NULL)
			abort();
		snprintf(cmd, sizeof(cmd), "mkdir %s/openpgp && cp "
		    "tests/fixtures/pgp/unit.sec %s/openpgp/unit.pgp", keysdir,
		    keysdir);
		if (system(cmd) != 0 || keyd_pgp_load(keysdir) != 1)
			abort();
		if (socketpair(AF_UNIX, SOCK_STREAM, 0, chfd) == -1)
			abort();
	}
	if ((db = db_open(dbpath, &err)) == NULL ||
	    pgp_keys_init(db, &err) == -1)
		abort();
	return 0;
}

static void
fuzz_message(const uint8_t *p, size_t n)
{
	FILE *in = tmpfile(), *out = tmpfile();

	if (in == NULL || out == NULL)
		abort();
	if (fwrite(p, 1, n, in) != n || fflush(in) != 0)
		abort();
	rewind(in);
	(void)pgp_in_message(db, NULL, "fuzz", 1, in, out);
	fclose(in);
	fclose(out);
}

static void
fuzz_keyd(const uint8_t *p, size_t n)
{
	static const uint32_t types[3] = { KEYD_PGP_INFO, KEYD_PGP_SIGN,
	    KEYD_PGP_DECRYPT };
	struct keyholder_chan ch = { .fd = chfd[0], .name = "fuzz",
	    .max_req = KEYD_MAX_SIGN_REQ, .dispatch = keyd_pgp_dispatch };
	unsigned char *copy, buf[4096];

	if (n < 1 || n - 1 > KEYD_MAX_SIGN_REQ)
		return;
	/* An exact-size copy, so ASan sees any read past the request. */
	copy = malloc(n - 1 ? n - 1 : 1);
	memcpy(copy, p + 1, n - 1);
	keyd_pgp_dispatch(&ch, types[p[0] % 3], copy, n - 1);
	free(copy);
	while (recv(chfd[1], buf, sizeof(buf), MSG_DONTWAIT) > 0)
		;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct pgp_in_ctx ctx;
	struct pgp_sig_result sig;
	unsigned char fpr[20], *out = NULL;
	const unsigned char *body;
	char **emails = NULL, *err = NULL, why[256];
	const char *reason;
	size_t nsubs, outlen, off = 0, blen;
	int algo, tag;

	if (size < 1)
		return 0;
	switch (data[0] % 6) {
	case 0:
		fuzz_message(data + 1, size - 1);
		break;
	case 1:
		if (keyd_pgp_parse(data + 1, size - 1, &emails, &algo, fpr,
		    &nsubs, &reason) == 0)
			keyd_pgp_emails_free(&emails);
		break;
	case 2:
		if (pgp_keys_import_public(db, data + 1, size - 1, &err) == -1)
			free(err);
		if (db_exec(db, "DELETE FROM pgp_keys", &err) == -1)
			abort();
		break;
	case 3:
		memset(&ctx, 0, sizeof(ctx));
		ctx.db = db;
		ctx.msgid = "fuzz";
		ctx.max_out = 1024 * 1024;
		snprintf(ctx.from, sizeof(ctx.from), "a@example.org");
		(void)pgp_dec_message(&ctx, data + 1, size - 1, &out, &outlen,
		    &sig, why, sizeof(why));
		free(out);
		break;
	case 4:
		while (pgp_packet_next(data + 1, size - 1, &off, &tag, &body,
		    &blen, 1) == 0)
			;
		break;
	case 5:
		fuzz_keyd(data + 1, size - 1);
		break;
	}
	return 0;
}
