"""Helpers to run internal-gw in tests: a temp config, a transport map
pointing at aiosmtpd sinks, properties set with the real postern-cli."""

import os
import subprocess
import tempfile
from email.message import EmailMessage
from email import policy

from conftest import Daemon, bin_path, check_sanitizer, free_port, ROOT
from dbutil import db_url

_PKI = None


def pki_dir():
    """The test PKI (tests/pki/mkpki.sh), built once per test run."""
    global _PKI
    if _PKI is None:
        d = os.environ.get("POSTERN_TEST_PKI") or os.path.join(
            tempfile.gettempdir(), "postern-test-pki-%d" % os.getuid())
        subprocess.run(["sh", os.path.join(ROOT, "tests/pki/mkpki.sh"), d],
                       check=True)
        _PKI = d
    return _PKI


def cli(conf, *args, check=True, input=None):
    r = subprocess.run([bin_path("postern-cli"), "-c", conf, *args],
                       capture_output=True, text=True, input=input)
    check_sanitizer("postern-cli " + " ".join(args), r.stderr, r.returncode)
    if check and r.returncode != 0:
        raise AssertionError(f"postern-cli {' '.join(args)} failed "
                             f"({r.returncode}): {r.stderr}{r.stdout}")
    return r


def make_message(frm="alice@example.com", to="bob@example.net",
                 subject="hello", body="Hello there.\n", headers=()):
    m = EmailMessage(policy=policy.SMTP)
    m["From"] = frm
    m["To"] = to
    m["Subject"] = subject
    m["Message-ID"] = "<%s@test.example>" % os.urandom(6).hex()
    for k, v in headers:
        m[k] = v
    m.set_content(body)
    return m.as_bytes()


class Gateway:
    """internal-gw with its own database, spool and keys in tmpdir."""

    def __init__(self, tmpdir, portal_port, out_port, props=(),
                 certs=(), smtp_extra="", start=True, db=None):
        self.dir = os.path.join(str(tmpdir), "gw")
        for sub in ("spool", "keys"):
            os.makedirs(os.path.join(self.dir, sub), exist_ok=True)
        # Gateways that share a database are given the same db.
        self.db = db or db_url(self.dir, "gw")
        self.pki = pki_dir()
        self.port = free_port()
        self.lmtp_port = free_port()
        self.transport = os.path.join(self.dir, "transport")
        with open(self.transport, "w") as f:
            f.write(f"relay-to-webmail.private smtp:[127.0.0.1]:{portal_port}\n"
                    f"*  smtp:[127.0.0.1]:{out_port}\n")
        self.conf = os.path.join(self.dir, "internal-gw.conf")
        with open(self.conf, "w") as f:
            f.write(f'''node = "internal-gw";
hostname = "gw.test";
database = "{self.db}";
spool_dir = "{self.dir}/spool";
keys_dir = "{self.dir}/keys";
trust_anchors = "{self.pki}/ca-bundle.pem";
workers = 2;
smtp = {{
  listen = [ "127.0.0.1:{self.port}" ];
  lmtp_listen = [ "127.0.0.1:{self.lmtp_port}" ];
  tls_cert = "{self.pki}/gw-tls-chain.pem";
  tls_key = "{self.pki}/gw-tls.key";
  xforward_from = [ "127.0.0.1/32" ];
  {smtp_extra}
}};
relay = {{
  transport_map = "{self.transport}";
  default_tls = "may";
  timeout = 30;
}};
''')
        # The webmail sender key's address: keyd never lets it sign user
        # mail (read at start).
        self.cli("property", "global", "set", "--name", "webmail-sender",
                 "--value", "gateway@relay-to-webmail.private")
        for p in props:
            self.cli("property", *p)
        for c in certs:
            self.cli("cert", "import", *c)
        self.daemon = None
        if start:
            self.start()

    def cli(self, *args, **kw):
        return cli(self.conf, *args, **kw)

    def start(self, env=None):
        self.daemon = Daemon([bin_path("internal-gw"), "-c", self.conf],
                             env=env)

    def stop(self):
        if self.daemon:
            self.daemon.stop()
            self.daemon = None
