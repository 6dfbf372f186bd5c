"""make demo: both daemons on loopback with the example configurations,
a local sink standing in for the outside world, one sample message sent
through the gateway. State in demo-state/ is reused by a second run."""

import email
import os
import re
import signal
import smtplib
import subprocess
import sys
import threading
import time
from email.message import EmailMessage
from email import policy

from aiosmtpd.controller import Controller

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
os.chdir(ROOT)
BUILD = os.path.join(ROOT, "build")
STATE = os.path.join(ROOT, "demo-state")
GW_CONF = "config/internal-gw.conf"
PORTAL_CONF = "config/external-portal.conf"
SINK_PORT = 10026
GW_PORT = 10025


def step(msg):
    sys.stdout.write(f"==> {msg}\n")
    sys.stdout.flush()


def cli(conf, *args, ok_codes=(0,)):
    r = subprocess.run([f"{BUILD}/postern-cli", "-c", conf, *args],
                       capture_output=True, text=True)
    if r.returncode not in ok_codes:
        sys.exit(f"postern-cli {' '.join(args)}: {r.stderr.strip()}")
    return r


class SinkHandler:
    def __init__(self):
        self.count = len(os.listdir(f"{STATE}/sink"))
        self.cond = threading.Condition()
        self.messages = []

    async def handle_DATA(self, server, session, envelope):
        with self.cond:
            self.count += 1
            path = f"{STATE}/sink/{self.count:04d}.eml"
            with open(path, "wb") as f:
                f.write(envelope.original_content or envelope.content)
            self.messages.append((envelope.rcpt_tos, path))
            self.cond.notify_all()
        # One write per line: the main thread prints at the same time.
        sys.stdout.write(f"    sink: message for "
                         f"{', '.join(envelope.rcpt_tos)} -> "
                         f"{os.path.relpath(path)}\n")
        sys.stdout.flush()
        return "250 2.0.0 OK demo sink"


class Proc:
    def __init__(self, name, argv, env=None):
        self.name = name
        self.ready = threading.Event()
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT,
                                     start_new_session=True, env=env)
        self.log = open(f"{STATE}/{name}.log", "ab")
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            self.log.write(line)
            self.log.flush()
            text = line.decode("utf-8", "replace").rstrip()
            if text.endswith(": ready"):
                self.ready.set()
            if " id=" in text or "warn" in text.lower() or "fatal" in text:
                print(f"    {text}", flush=True)
        self.ready.set()

    def wait_ready(self):
        self.ready.wait(60)
        if self.proc.poll() is not None:
            sys.exit(f"{self.name} exited; see demo-state/{self.name}.log")

    def stop(self):
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(15)


def sample_message():
    m = EmailMessage(policy=policy.SMTP)
    m["From"] = "Alice Example <alice@example.com>"
    m["To"] = "Robin Recipient <robin@example.org>"
    m["Subject"] = "[encrypt] Quartalsbericht Q3 — vertraulich ✓"
    m["Message-ID"] = f"<demo-{int(time.time())}@example.com>"
    m.set_content("Hello Robin,\n\nthe Q3 report is attached.\n\nAlice\n")
    m.add_alternative(
        "<html><body><h1>Q3 report</h1><p>Hello Robin,</p>"
        "<p>the <b>Q3 report</b> is attached. Grüße, Alice</p>"
        "<script>document.title='pwned'</script></body></html>",
        subtype="html")
    m.add_attachment("quarter,revenue\nQ3,1000000\n".encode(),
                     maintype="text", subtype="csv",
                     filename="Q3-Übersicht.csv")
    return m.as_bytes()


PDF_RCPT = "pat@example.net"


def demo_pdf(handler):
    """Sends the sample to PDF_RCPT and shows where its PDF mail landed."""
    before = len(handler.messages)
    step(f"sending the sample to {PDF_RCPT}, routed to PDF OTP")
    with smtplib.SMTP("127.0.0.1", GW_PORT) as s:
        s.sendmail("alice@example.com", [PDF_RCPT], sample_message())
    with handler.cond:
        handler.cond.wait_for(
            lambda: any(PDF_RCPT in r for r, _ in
                        handler.messages[before:]), 120)
    for rcpts, path in handler.messages[before:]:
        if PDF_RCPT not in rcpts:
            continue
        text = open(path, "rb").read().decode("utf-8", "replace")
        m = re.search(r"https?://\S+?/pdf/[0-9a-f]+", text)
        step(f"PDF mail for {PDF_RCPT} in the sink: {os.path.relpath(path)}")
        if m:
            step(f"password page (sign in first): {m.group(0)}")
TUNNEL_SENDER = "gateway@relay-to-webmail.private"
TUNNEL_RCPT = "webmail@relay-to-webmail.private"


def addon_setup():
    """Add-on mode: each node makes its own tunnel key, only the
    certificates cross; the portal runs from a copy of its config with the
    tunnel group added. Returns that config's path."""
    gw_crt = f"{STATE}/gw/gateway-tunnel.crt"
    p_key, p_crt = f"{STATE}/portal/tunnel.key", f"{STATE}/portal/tunnel.crt"
    conf = f"{STATE}/portal/external-portal-addon.conf"
    step("add-on tunnel keys: postern-cli tunnel keygen on each node")
    if not os.path.exists(gw_crt):
        cli(GW_CONF, "tunnel", "keygen", "--role", "gateway", "--address",
            TUNNEL_SENDER, "--cert-out", gw_crt)
    if not os.path.exists(p_crt):
        cli(PORTAL_CONF, "tunnel", "keygen", "--role", "portal", "--address",
            TUNNEL_RCPT, "--key-out", p_key, "--cert-out", p_crt)
        cli(GW_CONF, "cert", "import", "--file", p_crt)
    with open(PORTAL_CONF) as f, open(conf, "w") as g:
        g.write(f.read() + f'\ntunnel = {{\n\tkey = "{p_key}";\n'
                f'\tcert = "{p_crt}";\n\tgateway_cert = "{gw_crt}";\n}};\n')
    for name, value in (("webmail-sender", TUNNEL_SENDER),
                        ("webmail-recipient", TUNNEL_RCPT)):
        cli(GW_CONF, "property", "global", "set", "--name", name,
            "--value", value)
    cli(conf, "property", "global", "set", "--name", "webmail-recipient",
        "--value", TUNNEL_RCPT)
    return conf


STORAGE_PASSWORD = "demo storage password"
ESCROW_KEY = "demo-state/escrow.key"


def demo_keypair(key, cert, cn, password):
    """A self-signed RSA pair; the key is encrypted PKCS#8 with password
    (None: in clear, as an escrow key kept offline would be)."""
    if os.path.exists(key) and os.path.exists(cert):
        return
    args = ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-days",
            "3650", "-subj", f"/CN={cn}", "-keyout", key, "-out", cert]
    args += ["-passout", f"pass:{password}"] if password else ["-noenc"]
    subprocess.run(args, check=True, capture_output=True)
    os.chmod(key, 0o600)


def storage_setup(conf):
    """Encrypted storage: the portal's storage key pair and an escrow pair,
    webmail-encryption.pem with both certificates, and a copy of conf with
    the storage_encryption group (unlock from the environment). Returns
    that copy's path and the environment the portal runs with."""
    step("encrypted storage: storage and escrow key pairs, "
         "demo-state/webmail-encryption.pem")
    demo_keypair(f"{STATE}/portal/storage.key", f"{STATE}/portal/storage.pem",
                 "demo portal storage", STORAGE_PASSWORD)
    demo_keypair(f"{STATE}/escrow.key", f"{STATE}/escrow.pem",
                 "demo storage escrow", None)
    with open(f"{STATE}/webmail-encryption.pem", "w") as f:
        for c in (f"{STATE}/portal/storage.pem", f"{STATE}/escrow.pem"):
            with open(c) as g:
                f.write(g.read())
    out = conf[:-len(".conf")] + "-storage.conf"
    if conf.startswith("config/"):
        out = f"{STATE}/portal/" + os.path.basename(out)
    with open(conf) as f, open(out, "w") as g:
        g.write(f.read() + '\nstorage_encryption = {\n\tenabled = true;\n'
                '\tcertificates = "demo-state/webmail-encryption.pem";\n'
                '\tprivate_key = [ "demo-state/portal/storage.key" ];\n'
                '\tunlock = "environment";\n'
                '\tcontrol_socket = "demo-state/portal/storage.sock";\n};\n')
    env = dict(os.environ, POSTERN_STORAGE_PASSWORD=STORAGE_PASSWORD)
    step(f'encrypted storage on: unlock = "environment", password '
         f'"{STORAGE_PASSWORD}" in POSTERN_STORAGE_PASSWORD')
    return out, env


PG_BIN = "/usr/lib/postgresql/15/bin"


class DemoPostgres:
    """DB=postgresql: a private PostgreSQL 15 server for the demo, in a
    temporary directory (as root it runs as the postgres user; the server
    refuses root), a unix socket only, removed when the demo stops. Both
    nodes get a database of their own on it."""

    def __init__(self):
        import tempfile
        self.top = tempfile.mkdtemp(prefix="postern-demo-pg-")
        self.user = None
        if os.geteuid() == 0:
            import pwd
            pw = pwd.getpwnam("postgres")
            os.chown(self.top, pw.pw_uid, pw.pw_gid)
            self.user = "postgres"
        step(f"DB=postgresql: initdb and a private server in {self.top} "
             "(unix socket only)")
        self.run(f"{PG_BIN}/initdb", "-D", f"{self.top}/data", "-A", "trust",
                 "-U", "postgres", "--no-sync")
        self.run(f"{PG_BIN}/pg_ctl", "-D", f"{self.top}/data", "-w", "-l",
                 f"{self.top}/log", "-o",
                 f"-c listen_addresses='' -c unix_socket_directories={self.top}",
                 "start")
        for db in ("postern_gw", "postern_portal"):
            self.run("psql", "-h", self.top, "-U", "postgres", "-qc",
                     f"CREATE DATABASE {db}")

    def run(self, *argv, check=True):
        if self.user:
            argv = ("runuser", "-u", self.user, "--") + argv
        subprocess.run(argv, check=check, stdout=subprocess.DEVNULL)

    def url(self, db):
        return f"postgresql:///{db}?host={self.top}&user=postgres"

    def conf(self, conf, db, out):
        """A copy of conf whose database is db on this server."""
        with open(conf) as f, open(out, "w") as g:
            for line in f:
                if line.startswith("database"):
                    line = f'database = "{self.url(db)}";\n'
                g.write(line)
        return out

    def stop(self):
        import shutil
        self.run(f"{PG_BIN}/pg_ctl", "-D", f"{self.top}/data", "-m", "fast",
                 "stop", check=False)
        shutil.rmtree(self.top, ignore_errors=True)


def newest_message():
    """The message file stored last (demo-state/portal/messages/m-...)."""
    d = f"{STATE}/portal/messages"
    files = [os.path.join(d, f) for f in os.listdir(d)
             if f.startswith("m-")]
    return max(files, key=os.path.getmtime) if files else None


def main():
    global GW_CONF, PORTAL_CONF
    for d in ("pki", "gw/spool", "gw/keys", "portal/spool", "portal/messages",
              "sink"):
        os.makedirs(f"{STATE}/{d}", exist_ok=True)
    step("test CA, certificates and keys (demo-state/pki)")
    subprocess.run(["sh", "tests/pki/mkpki.sh", f"{STATE}/pki"], check=True)
    with open(f"{STATE}/pki/ca-bundle.pem", "rb") as f, \
            open(f"{STATE}/pki/trust.pem", "wb") as g:
        g.write(f.read())

    have_portal = os.path.exists(f"{BUILD}/external-portal") and \
        os.path.exists(PORTAL_CONF)

    pg = None
    dbkind = os.environ.get("DB", "sqlite")
    if dbkind not in ("sqlite", "postgresql"):
        raise SystemExit(f"DB={dbkind}: sqlite (default) or postgresql")
    if dbkind == "postgresql":
        import atexit
        pg = DemoPostgres()
        atexit.register(pg.stop)
        GW_CONF = pg.conf(GW_CONF, "postern_gw",
                          f"{STATE}/gw/internal-gw-pg.conf")
        PORTAL_CONF = pg.conf(PORTAL_CONF, "postern_portal",
                              f"{STATE}/portal/external-portal-pg.conf")
        step(f"both nodes on PostgreSQL: {pg.url('postern_gw')} and "
             f"{pg.url('postern_portal')} (message bytes in the database "
             "too; demo-state/portal/messages is a cache)")

    step("internal-gw properties: portal delivery on [encrypt], example.com internal")
    for name, value in (("remote-portal-enabled", "true"),
                        ("webmail-enabled", "true"),
                        ("subject-trigger-enabled", "true")):
        cli(GW_CONF, "property", "global", "set", "--name", name,
            "--value", value)
    cli(GW_CONF, "domain", "add", "--domain", "example.com", ok_codes=(0, 1))
    cli(GW_CONF, "property", "domain", "set", "--domain", "example.com",
        "--name", "locality", "--value", "internal")
    # A second outside recipient gets the message as a PDF with a
    # one-time password (PDF Messenger) instead of Webmail.
    for name, value in (("webmail-enabled", "false"),
                        ("pdf-otp-enabled", "true")):
        cli(GW_CONF, "property", "user", "set", "--email", PDF_RCPT,
            "--name", name, "--value", value)
    if "alice@example.com" not in cli(GW_CONF, "cert", "list").stdout:
        cli(GW_CONF, "cert", "import", "--file", f"{STATE}/pki/alice.p12",
            "--password", "secret")

    mode = os.environ.get("MODE", "split")
    if mode not in ("split", "addon"):
        raise SystemExit(f"MODE={mode}: split (default) or addon")
    portal_conf = PORTAL_CONF
    step(f"mode: {mode}" + (" (S/MIME tunnel between the nodes, the portal "
                            "requires it)" if mode == "addon" else
                            " (header triggers)"))
    cli(GW_CONF, "property", "global", "set", "--name",
        "webmail-tunnel-enabled", "--value", str(mode == "addon").lower())
    if mode == "addon" and have_portal:
        portal_conf = addon_setup()

    portal_env = None
    if have_portal:
        portal_conf, portal_env = storage_setup(portal_conf)

    handler = SinkHandler()
    step(f"sink for the outside world on 127.0.0.1:{SINK_PORT}")
    sink = Controller(handler, hostname="127.0.0.1", port=SINK_PORT,
                      decode_data=False, enable_SMTPUTF8=True)
    sink.start()

    procs = []
    try:
        if have_portal:
            step("external-portal properties: relay domain, revert, triggers")
            cli(portal_conf, "domain", "add", "--domain",
                "relay-to-webmail.private", ok_codes=(0, 1))
            cli(portal_conf, "property", "global", "set", "--name",
                "require-tunnel", "--value", str(mode == "addon").lower())
            cli(portal_conf, "property", "domain", "set", "--domain",
                "relay-to-webmail.private", "--name",
                "revert-rewrite-recipient", "--value", "true")
            step("starting external-portal")
            procs.append(Proc("external-portal", [
                f"{BUILD}/external-portal", "-c", portal_conf],
                env=portal_env))
            procs[-1].wait_ready()
        step("starting internal-gw")
        procs.append(Proc("internal-gw", [f"{BUILD}/internal-gw", "-c",
                                          GW_CONF]))
        procs[-1].wait_ready()

        before = len(handler.messages)
        step(f"sending a sample message (HTML, attachment, Unicode subject) "
             f"to 127.0.0.1:{GW_PORT}")
        with smtplib.SMTP("127.0.0.1", GW_PORT) as s:
            s.sendmail("alice@example.com", ["robin@example.org"],
                       sample_message())
        step("accepted by internal-gw (it answers only after the next hop did)")

        if have_portal:
            with handler.cond:
                handler.cond.wait_for(
                    lambda: len(handler.messages) > before, 60)
            link = None
            for rcpts, path in handler.messages[before:]:
                msg = email.message_from_bytes(open(path, "rb").read(),
                                               policy=policy.default)
                part = msg.get_body(preferencelist=("plain",))
                text = part.get_content() if part else ""
                m = re.search(r"https?://\S+?/(?:signup|login)\S*", text)
                if m:
                    link = m.group(0).rstrip(">\")'.,")
            step("portal: https://127.0.0.1:8443/ (certificate from the demo "
                 "CA: demo-state/pki/ca-bundle.pem)")
            if link:
                step(f"sign-up link from the notification: {link}")
            sealed = newest_message()
            if sealed:
                step("stored sealed (CMS); recovery with the escrow key: "
                     f"openssl cms -decrypt -inform DER -in "
                     f"{os.path.relpath(sealed)} -inkey {ESCROW_KEY} "
                     f"-out message.eml")
        if have_portal:
            demo_pdf(handler)
        print("\nThe pair is running; Ctrl-C stops it. Logs: demo-state/*.log",
              flush=True)
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *a: stop.set())
        while not stop.wait(1):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        for p in reversed(procs):
            p.stop()
        sink.stop()
        step("stopped")


if __name__ == "__main__":
    main()
