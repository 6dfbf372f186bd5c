"""make bench: Postern against the tools a mail admin would otherwise use,
in one run, on loopback, on this machine.

Starts privately, each on a free loopback port under one temporary
directory, and stops at the end (also on error or ^C): Postfix's
smtp-sink as every next hop, a throw-away Postfix relay, Dovecot LMTP,
nginx, and Postern's internal-gw and external-portal from --build. The
load generator is Postfix's smtp-source for every SMTP and LMTP figure and
wrk for every web figure. Postern and its reference are interleaved,
round after round, and each figure is the median of the rounds.

Prints figures and ratios next to the targets; asserts nothing. A
missing reference tool makes its figures "n/a" with the reason."""

import argparse
import email.message
import os
import platform
import re
import smtplib
import statistics
import subprocess
import sys
import tempfile
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "integration"))

import benchlib as B  # noqa: E402
from benchlib import Unavailable  # noqa: E402
import bench_pgp  # noqa: E402
import bench_pg  # noqa: E402

G = ("global", "set", "--name")
RELAY = "relay-to-webmail.private"
PASSWORD = "correct horse battery staple 42"
MIB = 1024 * 1024


class Figures:
    """Runs of every figure, and why a figure is missing."""

    def __init__(self):
        self.runs = {}
        self.why = {}
        self.extra = {}

    def attempt(self, key, fn):
        try:
            v = fn()
        except Unavailable as e:
            self.why.setdefault(key, str(e))
            return None
        except Exception as e:      # a figure fails, the bench goes on
            self.why.setdefault(key, f"{type(e).__name__}: {e}")
            if os.environ.get("BENCH_DEBUG"):
                traceback.print_exc()
            return None
        self.runs.setdefault(key, []).append(v)
        return v

    def fail(self, keys, why):
        for k in keys:
            self.why.setdefault(k, why)

    def med(self, key):
        r = self.runs.get(key)
        return statistics.median(r) if r else None


F = Figures()


def say(msg):
    print(f"bench: {msg}", flush=True)


# --- Postern's daemons ---------------------------------------------------------

def bin_path(build, name):
    p = os.path.join(build, name)
    if not os.path.exists(p):
        raise Unavailable(f"{p} is not built (make all)")
    return p


def cli(build, conf, *args):
    r = subprocess.run([bin_path(build, "postern-cli"), "-c", conf, *args],
                       capture_output=True, text=True)
    if r.returncode != 0:
        raise Unavailable(f"postern-cli {' '.join(args)}: "
                          f"{r.stderr.strip()}{r.stdout.strip()}")
    return r.stdout


def start_daemon(argv, readies):
    import conftest
    d = conftest.Daemon(argv, ready=None)
    B.on_cleanup(d.stop)
    with B._lock:
        B._procs.append(d.proc)
    for r in readies:
        d.wait_for(r, timeout=60)
    return d


def tree_hwm(pid):
    return [(p, B.vmhwm_kib(p)) for p in B.tree(pid)]


class Gateway:
    """internal-gw with the shipped defaults (workers, limits), its own
    database, spool and keys; the portal domain and everything else go to
    the given next hops."""

    def __init__(self, build, work, name, portal_port, out_port, props=(),
                 certs=(), max_size=None, setup=None):
        from gwutil import pki_dir
        self.build = build
        self.dir = os.path.join(work, name)
        for sub in ("spool", "keys"):
            os.makedirs(os.path.join(self.dir, sub))
        pki = pki_dir()
        self.port = B.free_port()
        transport = os.path.join(self.dir, "transport")
        with open(transport, "w") as f:
            f.write(f"{RELAY} smtp:[127.0.0.1]:{portal_port}\n"
                    f"*  smtp:[127.0.0.1]:{out_port}\n")
        size = f"max_message_size = {max_size};" if max_size else ""
        self.conf = os.path.join(self.dir, "internal-gw.conf")
        with open(self.conf, "w") as f:
            f.write(f'''node = "internal-gw";
hostname = "gw.bench.test";
database = "{self.dir}/gw.db";
spool_dir = "{self.dir}/spool";
keys_dir = "{self.dir}/keys";
trust_anchors = "{pki}/ca-bundle.pem";
smtp = {{
  listen = [ "127.0.0.1:{self.port}" ];
  xforward_from = [ "127.0.0.1/32" ];
  {size}
}};
relay = {{
  transport_map = "{transport}";
  default_tls = "may";
  timeout = 60;
}};
''')
        for p in props:
            cli(build, self.conf, "property", *p)
        for c in certs:
            cli(build, self.conf, "cert", "import", *c)
        if setup is not None:
            setup(self)
        self.d = start_daemon([bin_path(build, "internal-gw"), "-c",
                               self.conf], [r": ready$"])

    def stop(self):
        self.d.stop()


class Portal:
    """external-portal with SMTP, LMTP and HTTPS listeners; webmail-standalone
    (smtp-source adds no trigger header), no quota."""

    def __init__(self, build, work, name, notify_port, max_size=None,
                 database=None):
        from gwutil import pki_dir
        self.build = build
        self.dir = os.path.join(work, name)
        for sub in ("spool", "messages"):
            os.makedirs(os.path.join(self.dir, sub))
        self.pki = pki_dir()
        # An SQLite file of its own, or the PostgreSQL URL given.
        self.db = database or os.path.join(self.dir, "portal.db")
        self.store = os.path.join(self.dir, "messages")
        self.smtp_port = B.free_port()
        self.lmtp_port = B.free_port()
        self.web_port = B.free_port()
        self.max_size = max_size
        self.conf = os.path.join(self.dir, "portal.conf")
        self.write_conf(notify_port)
        cli(build, self.conf, "domain", "add", "--domain", RELAY)
        cli(build, self.conf, "property", "domain", "set", "--domain", RELAY,
            "--name", "revert-rewrite-recipient", "--value", "true")
        cli(build, self.conf, "property", *G, "webmail-standalone",
            "--value", "true")
        cli(build, self.conf, "property", *G, "quota", "--value", "0")
        self.d = None
        self.start()

    def write_conf(self, notify_port):
        size = f"max_message_size = {self.max_size};" if self.max_size \
            else ""
        with open(self.conf, "w") as f:
            f.write(f'''node = "external-portal";
hostname = "portal.bench.test";
database = "{self.db}";
store_dir = "{self.store}";
spool_dir = "{self.dir}/spool";
smtp = {{
  listeners = (
    {{ listen = "127.0.0.1:{self.smtp_port}"; protocol = "smtp"; }},
    {{ listen = "127.0.0.1:{self.lmtp_port}"; protocol = "lmtp"; }}
  );
  mynetworks = [ "127.0.0.1/32" ];
  tls_cert = "{self.pki}/portal-tls-chain.pem";
  tls_key = "{self.pki}/portal-tls.key";
  {size}
}};
notify = {{
  relay_host = "127.0.0.1";
  relay_port = {notify_port};
  relay_tls = "none";
  sender = "no-reply@portal.bench.test";
  base_url = "https://127.0.0.1:{self.web_port}";
  retry_initial = 1;
}};
web = {{
  listen = "127.0.0.1:{self.web_port}";
  tls_cert = "{self.pki}/portal-tls-chain.pem";
  tls_key = "{self.pki}/portal-tls.key";
  base_url = "https://127.0.0.1:{self.web_port}";
}};
''')

    def start(self):
        self.d = start_daemon([bin_path(self.build, "external-portal"), "-c",
                               self.conf],
                              [r"ingest: ready$", r"web: ready$"])

    def restart(self, notify_port):
        self.d.stop()
        self.write_conf(notify_port)
        self.start()

    def send(self, owner, msg):
        local, dom = owner.split("@")
        with smtplib.SMTP("127.0.0.1", self.smtp_port, timeout=60) as s:
            s.sendmail("sender@example.com", [f"{local}={dom}@{RELAY}"],
                       msg)

    def stop(self):
        self.d.stop()


def mail(to, subject, body, attachment=None):
    m = email.message.EmailMessage(policy=email.policy.SMTP)
    m["From"] = "Alice Example <alice@example.com>"
    m["To"] = to
    m["Subject"] = subject
    m["Date"] = "Mon, 02 Mar 2026 10:00:00 +0000"
    m["Message-ID"] = f"<{os.urandom(6).hex()}@bench.test>"
    m.set_content(body)
    if attachment:
        m.add_attachment(attachment, maintype="application",
                         subtype="octet-stream", filename="report.bin")
    return m.as_bytes()


def signup(portal, sink, owner):
    """A user of the portal through the real sign-up: the link from the
    notification, the password form."""
    n0 = len(sink.messages)
    portal.send(owner, mail(owner, "Welcome", "First message.\n"))
    deadline = time.monotonic() + 60
    link = None
    while link is None and time.monotonic() < deadline:
        for m in sink.messages[n0:]:
            if m["to"] == [owner]:
                x = re.search(r"/signup\?token=[0-9a-f]+",
                              B.text_of(m["data"]))
                link = x.group(0) if x else None
        time.sleep(0.05)
    if link is None:
        raise Unavailable(f"no sign-up notification for {owner}")
    br = B.Browser(portal.web_port)
    st, r, page = br.get(link)
    tok = re.search(r'name="token" value="([0-9a-f]+)"', page)
    if st != 200 or not tok:
        raise Unavailable(f"sign-up page answered {st}")
    st, r, page = br.post("/signup", {"token": tok.group(1),
                                      "password": PASSWORD,
                                      "confirm": PASSWORD}, page)
    if st != 303:
        raise Unavailable(f"sign-up answered {st}")


def login(portal, owner):
    br = B.Browser(portal.web_port)
    st, r, page = br.get("/login")
    st, r, page = br.post("/login", {"email": owner, "password": PASSWORD},
                          page)
    if st != 303 or r.getheader("Location") != "/inbox":
        raise Unavailable(f"sign-in answered {st} "
                          f"{r.getheader('Location')}")
    return br


# --- phases -------------------------------------------------------------------

SMTP_KEYS = ["direct10", "postfix10", "plain10", "portal10",
             "direct1", "postfix1", "plain1", "portal1", "sign10", "openssl",
             "tunnel10", "tunnel1"]
TUNNEL_SENDER = f"gateway@{RELAY}"
TUNNEL_RCPT = f"webmail@{RELAY}"


def tunnel_setup(work):
    """Add-on mode on a bench gateway: its webmail sender key made by
    postern-cli, the portal's recipient certificate (keyEncipherment
    only) made with openssl and imported as a public certificate."""
    def setup(gw):
        crt = os.path.join(gw.dir, "portal-tunnel.crt")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:3072",
                        "-nodes", "-days", "2", "-subj", "/CN=bench portal",
                        "-keyout", os.path.join(gw.dir, "portal-tunnel.key"),
                        "-out", crt, "-addext",
                        f"subjectAltName=email:{TUNNEL_RCPT}", "-addext",
                        "keyUsage=critical,keyEncipherment"],
                       check=True, capture_output=True)
        cli(gw.build, gw.conf, "cert", "import", "--file", crt)
        cli(gw.build, gw.conf, "tunnel", "keygen", "--role", "gateway",
            "--address", TUNNEL_SENDER, "--cert-out",
            os.path.join(gw.dir, "gateway-tunnel.crt"))
    return setup


def phase_smtp(a, work):
    """SMTP relay, 20 KB messages: direct, Postfix relay, internal-gw."""
    from gwutil import pki_dir
    targets = {}
    try:
        direct = B.CountingSink(work, "sink-direct")
        targets["direct"] = (direct, direct.port)
    except Unavailable as e:
        F.fail(SMTP_KEYS, str(e))
        return
    try:
        pf_sink = B.CountingSink(work, "sink-postfix")
        pf = B.PostfixRelay(work, pf_sink.port)
        targets["postfix"] = (pf_sink, pf.port)
    except Unavailable as e:
        F.fail(["postfix10", "postfix1"], str(e))
    pki = pki_dir()
    modes = {
        "plain": ([], []),
        "portal": ([G + ("remote-portal-enabled", "--value", "true"),
                    G + ("webmail-enabled", "--value", "true"),
                    G + ("webmail-only-if-mandatory", "--value", "false")],
                   []),
        "sign": ([("user", "set", "--email", "alice@example.com", "--name",
                   "sign-enabled", "--value", "true")],
                 [("--file", f"{pki}/alice.p12", "--password", "secret")]),
    }
    # The portal route again, in add-on mode (the S/MIME tunnel).
    modes["tunnel"] = (modes["portal"][0] + [
        G + ("webmail-tunnel-enabled", "--value", "true"),
        G + ("webmail-sender", "--value", TUNNEL_SENDER),
        G + ("webmail-recipient", "--value", TUNNEL_RCPT)], [])
    for mode, (props, certs) in modes.items():
        try:
            sink = B.CountingSink(work, f"sink-gw-{mode}")
            gw = Gateway(a.build, work, f"gw-{mode}", sink.port, sink.port,
                         props=props, certs=certs, setup=tunnel_setup(work)
                         if mode == "tunnel" else None)
            targets[mode] = (sink, gw.port)
            F.extra[f"gw-{mode}-pid"] = gw.d.proc.pid
        except Unavailable as e:
            F.fail([k for k in SMTP_KEYS if k.startswith(mode)], str(e))

    def job(key, target, n, sessions):
        def run():
            if target not in targets:
                return
            sink, port = targets[target]
            rate, accepts = F.attempt(key, lambda: B.relay_rate(
                sink, port, n, sessions)) or (None, None)
            if rate is not None:
                F.runs[key][-1] = rate
                F.extra.setdefault(key + "-accepts", []).append(accepts)
        return run

    def sign_job():
        if "sign" not in targets:
            return
        pids = B.tree(F.extra["gw-sign-pid"])
        c0 = [B.cpu_seconds([p]) for p in pids]
        t0 = time.monotonic()
        job("sign10", "sign", a.n, 10)()
        c1 = [B.cpu_seconds([p]) for p in pids]
        dt = time.monotonic() - t0
        F.extra.setdefault("sign-cpu", []).append(
            [(p, (y - x) / dt) for p, x, y in zip(pids, c0, c1)])

    jobs = []
    for t in ("direct", "postfix", "plain", "portal", "tunnel"):
        jobs.append((f"{t} 10 sessions", job(f"{t}10", t, a.n, 10)))
    for t in ("direct", "postfix", "plain", "portal", "tunnel"):
        jobs.append((f"{t} 1 session", job(f"{t}1", t, a.n1, 1)))
    jobs.append(("internal-gw signing", sign_job))
    jobs.append(("openssl speed rsa2048",
                 lambda: F.attempt("openssl", B.openssl_sign_rate)))
    for rnd in range(a.rounds):
        say(f"SMTP round {rnd + 1}/{a.rounds}")
        k = rnd % len(jobs)
        for name, fn in jobs[k:] + jobs[:k]:   # a new order each round
            fn()


LMTP_KEYS = ["lmtp-ingest", "lmtp-notified", "dovecot"]
WEB_KEYS = ["inbox", "nginx-inbox", "message", "nginx-message", "part",
            "nginx-part"]


def phase_portal(a, work):
    """LMTP ingest with notifications against Dovecot, then the web pages
    against nginx serving the same bytes."""
    import conftest
    try:
        capture = conftest.Sink()
    except Exception as e:
        F.fail(LMTP_KEYS + WEB_KEYS, f"aiosmtpd: {e}")
        return
    B.on_cleanup(capture.stop)
    try:
        notify = B.CountingSink(work, "sink-notify")
        p = Portal(a.build, work, "portal", capture.port)
        say("portal: signing up two users")
        signup(p, capture, "web@example.org")
        signup(p, capture, "lmtp@example.org")
        p.d.stop()
        fill = a.inbox - 3
        say(f"portal: filling web@example.org with {fill} messages "
            "through the store (inbox_fill"
            + (", under eatmydata)" if B.shutil.which("eatmydata") else ")"))
        argv = [bin_path(a.build, "harness/inbox_fill"), p.db, p.store,
                "web@example.org", str(fill)]
        if B.shutil.which("eatmydata"):
            argv.insert(0, B.shutil.which("eatmydata"))
        t = time.monotonic()
        out = subprocess.run(argv, capture_output=True, text=True,
                             timeout=900)
        if out.returncode != 0:
            raise Unavailable("inbox_fill: " + out.stderr.strip())
        F.extra["fill"] = (fill, time.monotonic() - t, out.stdout)
        p.restart(notify.port)
    except Unavailable as e:
        F.fail(LMTP_KEYS + WEB_KEYS, str(e))
        return

    # LMTP, interleaved with Dovecot.
    try:
        dove = B.DovecotLmtp(work)
    except Unavailable as e:
        dove = None
        F.fail(["dovecot"], str(e))

    def portal_lmtp():
        s0, m0 = notify.counts()
        t0, t_src = B.smtp_source(p.lmtp_port, a.n, 10, lmtp=True,
                                  rcpt=f"lmtp=example.org@{RELAY}")
        deadline = time.monotonic() + 300
        while True:
            try:
                left = B.sqlite_count(p.db, "SELECT COUNT(*) FROM "
                                      "portal_outbox")
            except Exception as e:
                raise Unavailable(f"cannot read the outbox: {e}")
            if left == 0:
                break
            if time.monotonic() > deadline:
                raise Unavailable(f"{left} notifications still queued "
                                  "after 300 s")
            time.sleep(0.01)
        s1, m1 = notify.counts()
        t_done = max(t_src, notify.t_mesg) if m1 > m0 else t_src
        F.runs.setdefault("lmtp-ingest", []).append(a.n / (t_src - t0))
        F.extra.setdefault("notifications", []).append(m1 - m0)
        F.extra.setdefault("notify-accepts", []).append(s1 - s0)
        return a.n / (t_done - t0)

    def dovecot_lmtp():
        if dove is None:
            raise Unavailable(F.why["dovecot"])
        t0, t1 = B.smtp_source(dove.port, a.n, 10, lmtp=True,
                               rcpt="bench@example.org")
        return a.n / (t1 - t0)

    for rnd in range(a.rounds):
        say(f"LMTP round {rnd + 1}/{a.rounds}")
        pair = [("lmtp-notified", portal_lmtp), ("dovecot", dovecot_lmtp)]
        for key, fn in (pair if rnd % 2 == 0 else pair[::-1]):
            F.attempt(key, fn)
    if dove is not None:
        dove.stop()

    # Web: the pages once from the portal, the same bytes from nginx.
    try:
        p.send("web@example.org", mail(
            "web@example.org", "Quarterly report",
            ("The figures for the quarter are attached. " * 40 + "\n") * 12))
        p.send("web@example.org", mail(
            "web@example.org", "Report with attachment",
            "See the attachment.\n", attachment=os.urandom(100 * 1024)))
        br = login(p, "web@example.org")
        st, r, inbox = br.request("GET", "/inbox")
        ids = re.findall(rb'href="/message\?id=(\d+)"', inbox)
        if st != 200 or len(ids) < 2:
            raise Unavailable(f"inbox page answered {st}, {len(ids)} rows")
        att_id, text_id = int(ids[0]), int(ids[1])
        st, r, msg_page = br.request("GET", f"/message?id={text_id}")
        st2, r, att_page = br.request("GET", f"/message?id={att_id}")
        part = re.search(rb'/message/part\?id=\d+&amp;part=\d+', att_page)
        if st != 200 or st2 != 200 or not part:
            raise Unavailable(f"message pages answered {st}, {st2}")
        part_path = part.group(0).decode().replace("&amp;", "&")
        st, r, part_bytes = br.request("GET", part_path)
        if st != 200 or len(part_bytes) != 100 * 1024:
            raise Unavailable(f"attachment answered {st}, "
                              f"{len(part_bytes)} bytes")
        www = os.path.join(work, "www")
        os.makedirs(www)
        os.chmod(www, 0o755)
        pages = {"inbox": ("/inbox", "inbox.html", inbox),
                 "message": (f"/message?id={text_id}", "message.html",
                             msg_page),
                 "part": (part_path, "part.bin", part_bytes)}
        for k, (path, fname, data) in pages.items():
            with open(os.path.join(www, fname), "wb") as f:
                f.write(data)
            os.chmod(os.path.join(www, fname), 0o644)
            F.extra[f"{k}-bytes"] = len(data)
        cookie = br.cookie_header()
    except Unavailable as e:
        F.fail(WEB_KEYS, str(e))
        p.stop()
        return
    try:
        ngx = B.Nginx(work, www, f"{p.pki}/portal-tls-chain.pem",
                      f"{p.pki}/portal-tls.key")
    except Unavailable as e:
        ngx = None
        F.fail(["nginx-inbox", "nginx-message", "nginx-part"], str(e))
    jobs = []
    for k, (path, fname, _) in pages.items():
        jobs.append((k, lambda path=path: B.wrk(
            f"https://127.0.0.1:{p.web_port}{path}", cookie,
            seconds=a.wrk_seconds)))
        if ngx is not None:
            jobs.append((f"nginx-{k}", lambda fname=fname: B.wrk(
                f"https://127.0.0.1:{ngx.port}/{fname}", cookie,
                seconds=a.wrk_seconds)))
    for rnd in range(a.rounds):
        say(f"web round {rnd + 1}/{a.rounds}")
        k = rnd % len(jobs)
        for key, fn in jobs[k:] + jobs[:k]:
            F.attempt(key, fn)
    if ngx is not None:
        ngx.stop()
    p.stop()


def phase_memory(a, work):
    """One message of a.big_mib MiB through internal-gw (portal route) and
    external-portal, and one signed and encrypted by internal-gw: VmHWM of
    every process of fresh daemons."""
    from gwutil import pki_dir
    size = a.big_mib * MIB
    limit = 2 * size + MIB
    try:
        notify = B.CountingSink(work, "sink-mem-notify")
        out = B.CountingSink(work, "sink-mem-out")
        p = Portal(a.build, work, "mem-portal", notify.port, max_size=limit)
        gw = Gateway(a.build, work, "mem-gw", p.smtp_port, out.port,
                     props=[G + ("remote-portal-enabled", "--value", "true"),
                            G + ("webmail-enabled", "--value", "true"),
                            G + ("webmail-only-if-mandatory", "--value",
                                 "false")], max_size=limit)
        say(f"memory: one {a.big_mib} MiB message through both nodes")
        t0, t1 = B.smtp_source(gw.port, 1, 1, size=size)
        if B.sqlite_count(p.db, "SELECT COUNT(*) FROM portal_messages") != 1:
            raise Unavailable("the portal did not store the message")
        stored = B.sqlite_count(p.db, "SELECT size FROM portal_messages")
        F.extra["mem-portal-route"] = (t1 - t0, tree_hwm(gw.d.proc.pid),
                                       tree_hwm(p.d.proc.pid), stored)
        gw.stop()
        p.stop()
    except Unavailable as e:
        F.fail(["mem-route"], str(e))
    try:
        pki = pki_dir()
        out = B.CountingSink(work, "sink-mem-smime")
        gw = Gateway(a.build, work, "mem-gw-smime", out.port, out.port,
                     props=[("user", "set", "--email", "alice@example.com",
                             "--name", "sign-enabled", "--value", "true"),
                            G + ("encrypt-mode", "--value", "mandatory")],
                     certs=[("--file", f"{pki}/alice.p12", "--password",
                             "secret"), ("--file", f"{pki}/bob.crt")],
                     max_size=limit)
        say(f"memory: one {a.big_mib} MiB message signed and encrypted")
        t0, t1 = B.smtp_source(gw.port, 1, 1, size=size,
                               rcpt="bob@example.net")
        if out.wait_mesg(1, 60) is None:
            raise Unavailable("the sink did not get the message")
        F.extra["mem-smime"] = (t1 - t0, tree_hwm(gw.d.proc.pid))
        gw.stop()
    except Unavailable as e:
        F.fail(["mem-smime"], str(e))


# --- report -------------------------------------------------------------------

def fmt(v, unit=""):
    if v is None:
        return "n/a"
    s = f"{v:,.0f}" if v >= 100 else f"{v:,.1f}"
    return s + unit


def ratio(a, b):
    if a is None or b is None or b == 0:
        return None
    return a / b


def rtxt(r, what, target=None, times=False):
    if r is None:
        return f"n/a {what}"
    s = f"{r:.2f}×" if times else f"{r:.2f}"
    s += f" {what}"
    if target:
        s += f" (target {target})"
    return s


def version(argv, rx):
    try:
        r = subprocess.run(argv, capture_output=True, text=True, timeout=20)
        m = re.search(rx, r.stdout + r.stderr)
        return m.group(1) if m else "?"
    except (OSError, subprocess.SubprocessError):
        return "not installed"


def report(a, t_total, load0):
    m = F.med
    lines = []
    add = lines.append
    add("")
    add(f"## make bench: median of {a.rounds} interleaved rounds, "
        f"{os.cpu_count()} cores, load average {load0} at the start, "
        f"{os.getloadavg()[0]:.2f} at the end; {t_total / 60:.1f} min")
    add("")
    add("| what | Postern | reference, same run | ratio |")
    add("|---|---|---|---|")
    pv = version(["postconf", "-d", "mail_version"], r"= (\S+)")
    for s, nm in ((10, "SMTP relay, 10 sessions"), (1, "same, 1 session")):
        d, pf = m(f"direct{s}"), m(f"postfix{s}")
        pl, po = m(f"plain{s}"), m(f"portal{s}")
        rs = []
        for label, v in (("plain", pl), ("portal route", po)):
            if s == 10:
                rs.append(f"{label}: "
                          + rtxt(ratio(v, d), "of direct", "≥ 0.4") + "; "
                          + rtxt(ratio(v, pf), "Postfix", "≥ 1.5", True))
            else:
                rs.append(f"{label}: "
                          + rtxt(ratio(v, d), "of direct") + "; "
                          + rtxt(ratio(v, pf), "Postfix", "≥ 1.0", True))
        add(f"| {nm} | internal-gw plain {fmt(pl, ' msg/s')}, portal route "
            f"{fmt(po)} | `smtp-source`→`smtp-sink` direct {fmt(d)}; "
            f"Postfix {pv} relay {fmt(pf)} | {'<br>'.join(rs)} |")
    sg, o, pl = m("sign10"), m("openssl"), m("plain10")
    add(f"| RSA-2048 signing, 10 sessions | {fmt(sg, ' msg/s')} | "
        f"`openssl speed rsa2048`: {fmt(o, ' sign/s')} (1 process) | "
        f"{rtxt(ratio(sg, o), 'of openssl')}; "
        + rtxt(ratio(sg, pl), "of the plain relay rate",
               "≥ 0.7: signing costs at most 30 %") + " |")
    for s in (10, 1):
        tu, po = m(f"tunnel{s}"), m(f"portal{s}")
        add(f"| add-on tunnel, {s} session{'s' if s > 1 else ''} | "
            f"internal-gw portal route through the S/MIME tunnel "
            f"{fmt(tu, ' msg/s')} | the same route without the tunnel "
            f"{fmt(po)} | " + rtxt(ratio(tu, po), "of the portal route",
                                   "≥ 0.7: the tunnel costs at most 30 %")
            + " |")
    li, ln, dv = m("lmtp-ingest"), m("lmtp-notified"), m("dovecot")
    dvv = version(["dovecot", "--version"], r"^(\S+)")
    add(f"| LMTP ingest, 10 sessions | {fmt(li, ' msg/s')}, {fmt(ln)} "
        f"counting its notifications | Dovecot {dvv} LMTP {fmt(dv)} | "
        f"{rtxt(ratio(ln, dv), 'with notifications', '≥ 1.0', True)}; "
        f"{rtxt(ratio(li, dv), 'ingest alone', times=True)} |")
    for k, nm, tg in (("inbox", f"inbox page, {a.inbox:,} messages, "
                       "`wrk -c16`", "≥ 0.25"),
                      ("message", "message page", "≥ 0.25"),
                      ("part", "100 KiB attachment", "≥ 0.5")):
        v, n = m(k), m(f"nginx-{k}")
        add(f"| {nm} | {fmt(v, ' req/s')} | nginx, same bytes static, same "
            f"TLS key {fmt(n)} | {rtxt(ratio(v, n), 'of nginx', tg)} |")
    mem = []
    worst = 0
    if "mem-portal-route" in F.extra:
        dt, g, p, stored = F.extra["mem-portal-route"]
        mem += [h for _, h in g + p if h]
    if "mem-smime" in F.extra:
        dt, g = F.extra["mem-smime"]
        mem += [h for _, h in g if h]
    if mem:
        worst = max(mem) / 1024
        add(f"| memory, one {a.big_mib} MiB message through both nodes, "
            f"and signed + encrypted | peak RSS {worst:.1f} MiB in the "
            f"largest of {len(mem)} processes | | "
            f"{'under' if worst < 32 else 'OVER'} 32 MiB (target: every "
            f"process under 32 MiB) |")
    else:
        add(f"| memory, {a.big_mib} MiB message | n/a | | |")
    if "pgp" in a.only.split(","):
        add(bench_pgp.report_row(F, fmt, ratio, rtxt))
    if "storage" in a.only.split(","):
        import bench_storage
        for row in bench_storage.report_rows(a, F, fmt, ratio, rtxt):
            add(row)
    if "pg" in a.only.split(","):
        lines.extend(bench_pg.report_rows(F, fmt, ratio, rtxt))
    for line in lines:
        print(line)

    print("\n### details")
    for k in sorted(F.runs):
        print(f"- {k}: runs " + ", ".join(fmt(v) for v in F.runs[k]))
    for k in ("direct10", "postfix10", "plain10", "portal10", "sign10",
              "direct1", "postfix1", "plain1", "portal1", "tunnel10",
              "tunnel1"):
        acc = F.extra.get(k + "-accepts")
        if acc:
            print(f"- {k}: sessions the sink saw end, per run: {acc} for "
                  f"{a.n if k.endswith('10') else a.n1} messages each")
    for i, run in enumerate(F.extra.get("sign-cpu", [])):
        print(f"- internal-gw CPU while signing, run {i + 1}, cores used "
              "per process (pid: cores; the first is the parent): "
              + ", ".join(f"{p}: {c:.2f}" for p, c in run)
              + f"; together {sum(c for _, c in run):.2f}")
    if F.extra.get("notifications"):
        print(f"- portal: notifications per run {F.extra['notifications']} "
              f"for {a.n} messages, over {F.extra['notify-accepts']} "
              "connections")
    if "fill" in F.extra:
        n, dt, out = F.extra["fill"]
        print(f"- inbox_fill: {n} messages in {dt:.1f} s")
        for line in out.splitlines():
            print(f"  - {line}")
        if "USING COVERING INDEX portal_messages_list" not in out:
            print("  - WARNING: the listing does not use its index")
    for k in ("inbox", "message", "part"):
        if f"{k}-bytes" in F.extra:
            print(f"- {k}: {F.extra[k + '-bytes']:,} bytes per response")
    if "mem-portal-route" in F.extra:
        dt, g, p, stored = F.extra["mem-portal-route"]
        print(f"- {a.big_mib} MiB through both nodes ({stored:,} bytes "
              f"stored) in {dt:.1f} s; peak "
              "RSS (MiB) internal-gw "
              + ", ".join(f"{h / 1024:.1f}" for _, h in g if h)
              + "; external-portal "
              + ", ".join(f"{h / 1024:.1f}" for _, h in p if h))
    if "mem-smime" in F.extra:
        dt, g = F.extra["mem-smime"]
        print(f"- {a.big_mib} MiB signed and encrypted in {dt:.1f} s; peak "
              "RSS (MiB) internal-gw "
              + ", ".join(f"{h / 1024:.1f}" for _, h in g if h))
    bench_pg.report_details(F)
    if F.why:
        print("\n### n/a")
        for k, why in sorted(F.why.items()):
            print(f"- {k}: {why}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build", default=os.path.join(B.ROOT, "build"))
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("-n", type=int, default=2000,
                    help="messages per run with 10 sessions")
    ap.add_argument("--n1", type=int, default=500,
                    help="messages per run with 1 session")
    ap.add_argument("--inbox", type=int, default=10000)
    ap.add_argument("--wrk-seconds", type=int, default=5)
    ap.add_argument("--big-mib", type=int, default=100)
    ap.add_argument("--only",
                    default="smtp,portal,memory,inbound,pdf,pgp,storage,pg")
    a = ap.parse_args()
    os.environ["POSTERN_BUILD"] = a.build
    B.become_subreaper()
    B.install_signal_handlers()
    t0 = time.monotonic()
    load0 = f"{os.getloadavg()[0]:.2f}"
    say(f"{platform.node()}: {os.cpu_count()} cores, load average {load0}, "
        f"build {a.build}")
    say(B.system_postfix_state())
    work = tempfile.mkdtemp(prefix="postern-bench-")
    os.chmod(work, 0o755)   # Postfix and Dovecot users traverse it
    try:
        only = a.only.split(",")
        if "smtp" in only:
            phase_smtp(a, work)
            B.stop_all()
        if "portal" in only:
            phase_portal(a, work)
            B.stop_all()
        if "memory" in only:
            phase_memory(a, work)
            B.stop_all()
        if "inbound" in only:
            from bench_inbound import phase_inbound
            try:
                phase_inbound(a, work, Gateway, tree_hwm, say)
            except (Unavailable, OSError) as e:
                say(f"inbound: not measured: {e}")
        if "pgp" in only:
            bench_pgp.phase_pgp(a, work, F, B, Gateway, cli, say)
            B.stop_all()
        if "storage" in only:
            import bench_storage
            bench_storage.phase_storage(a, work, F, Portal, signup, login,
                                        bin_path, say, mail)
            B.stop_all()
        if "pg" in only:
            bench_pg.phase_pg(a, work, argparse.Namespace(
                F=F, B=B, Portal=Portal, signup=signup, login=login,
                bin_path=bin_path, say=say, RELAY=RELAY))
            B.stop_all()
    except KeyboardInterrupt:
        say("interrupted; stopping everything")
    finally:
        B.stop_all()
        if os.environ.get("BENCH_KEEP"):
            say(f"kept {work}")
        else:
            B.shutil.rmtree(work, ignore_errors=True)
    report(a, time.monotonic() - t0, load0)
    if "pdf" in a.only.split(","):
        import bench_pdf
        bench_pdf.run(a.build)


if __name__ == "__main__":
    main()
