/*
 * libFuzzer: S/MIME signing and encryption of any input, as internal-gw
 * does it for mail that came from outside: the header split, the entity
 * streamed through temporary files, GMime's 7-bit re-encoding of hostile
 * MIME, and CMS. A real key holder signs (alice's key from tests/pki);
 * run from the repository root.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/pem.h>

#include "../../internal-gw/keyd.h"
#include "../../internal-gw/smime.h"

int LLVMFuzzerInitialize(int *, char ***);
int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static char		 tmpdir[] = "/tmp/fuzz_smime.XXXXXX";
static struct keyd_client *kc;
static X509		*cert;
static FILE		*devnull;
static pid_t		 self;

static void
cleanup(void)
{
	char cmd[64];

	if (getpid() != self)
		return;
	snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
	(void)system(cmd);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char keys[64], cmd[256];
	struct keyd_conf kconf;
	struct keyd_client *tls;
	FILE *f;

	(void)argc;
	(void)argv;
	if (mkdtemp(tmpdir) == NULL)
		abort();
	self = getpid();
	atexit(cleanup);
	snprintf(keys, sizeof(keys), "%s/keys", tmpdir);
	snprintf(cmd, sizeof(cmd), "mkdir %s && cat tests/pki/alice.key "
	    "tests/pki/alice-chain.pem > %s/alice.pem", keys, keys);
	if (system(cmd) != 0)
		abort();
	memset(&kconf, 0, sizeof(kconf));
	kconf.keys_dir = keys;
	kconf.workers = 1;
	if (keyd_spawn(&kconf, &kc, &tls) == -1)
		abort();
	if ((f = fopen("tests/pki/alice.crt", "r")) == NULL ||
	    (cert = PEM_read_X509(f, NULL, NULL, NULL)) == NULL)
		abort();
	fclose(f);
	if ((devnull = fopen("/dev/null", "w")) == NULL)
		abort();
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	char err[256];
	FILE *in;

	if (len == 0)
		return 0;
	if ((in = fmemopen((void *)data, len, "r")) == NULL)
		abort();
	(void)smime_sign(kc, "alice@example.com", KEYD_PURPOSE_MAIL, "fuzz", in,
	    devnull, tmpdir, err, sizeof(err));
	rewind(in);
	(void)smime_encrypt(&cert, 1, in, devnull, tmpdir, err, sizeof(err));
	fclose(in);
	return 0;
}
