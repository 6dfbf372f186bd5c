"""make bench, --only storage: encrypted storage against the same portal
without it, in the same run. Two portals side by side (one with
storage_encryption on, "environment" unlock, a 3072-bit storage key and an
escrow certificate, as a deployment would have), each with one mailbox of
--inbox messages filled through the real store (inbox_fill; sealed as the
ingest seals on the encrypted one). Measured, in interleaved rounds:
LMTP ingest (smtp-source, 10 sessions), the first inbox page and a message
page (wrk). Prints figures and ratios; asserts nothing."""

import os
import re
import subprocess
import time

import benchlib as B
from benchlib import Unavailable

STORAGE_KEYS = ["ingest-plain", "ingest-sealed", "inbox-plain",
                "inbox-sealed", "message-plain", "message-sealed"]
PW = "bench storage password"


def _keypair(d, name, pw):
    key, crt = os.path.join(d, f"{name}.key"), os.path.join(d, f"{name}.pem")
    args = ["openssl", "req", "-x509", "-newkey", "rsa:3072", "-keyout", key,
            "-out", crt, "-subj", f"/CN=bench {name}", "-days", "2"]
    args += ["-passout", f"pass:{pw}"] if pw else ["-noenc"]
    r = subprocess.run(args, capture_output=True, text=True)
    if r.returncode != 0:
        raise Unavailable(f"openssl req: {r.stderr.strip()[-200:]}")
    return key, crt


def _sealed_conf(d):
    key, crt = _keypair(d, "storage", PW)
    _, ecrt = _keypair(d, "escrow", None)
    certs = os.path.join(d, "webmail-encryption.pem")
    with open(certs, "w") as f:
        f.write(open(crt).read() + open(ecrt).read())
    return certs, f"""
storage_encryption = {{
  enabled = true;
  certificates = "{certs}";
  private_key = [ "{key}" ];
  unlock = "environment";
  control_socket = "{d}/storage.sock";
  ask_dir = "{d}/ask";
}};
"""


def phase_storage(a, work, F, Portal, signup, login, bin_path, say, mail):
    import conftest
    try:
        capture = conftest.Sink()
    except Exception as e:
        F.fail(STORAGE_KEYS, f"aiosmtpd: {e}")
        return
    B.on_cleanup(capture.stop)
    os.environ["POSTERN_STORAGE_PASSWORD"] = PW
    portals = {}
    try:
        kd = os.path.join(work, "storage-keys")
        os.makedirs(kd)
        certs, extra = _sealed_conf(kd)
        for kind in ("plain", "sealed"):
            p = Portal(a.build, work, f"storage-{kind}", capture.port)
            if kind == "sealed":
                p.d.stop()
                base = p.write_conf

                def write_conf(port, base=base, p=p):
                    base(port)
                    with open(p.conf, "a") as f:
                        f.write(extra)
                p.write_conf = write_conf
                p.restart(capture.port)
                p.d.wait_for(r"storage unlocked", timeout=60)
            portals[kind] = p
            say(f"storage: {kind} portal: signing up, filling "
                f"{a.inbox - 3} messages")
            signup(p, capture, "web@example.org")
            signup(p, capture, "lmtp@example.org")
            p.d.stop()
            argv = [bin_path(a.build, "harness/inbox_fill"), p.db, p.store,
                    "web@example.org", str(a.inbox - 3)]
            if kind == "sealed":
                argv.append(certs)
            if B.shutil.which("eatmydata"):
                argv.insert(0, B.shutil.which("eatmydata"))
            t = time.monotonic()
            out = subprocess.run(argv, capture_output=True, text=True,
                                 timeout=1800)
            if out.returncode != 0:
                raise Unavailable("inbox_fill: " + out.stderr.strip())
            F.extra[f"storage-fill-{kind}"] = time.monotonic() - t
            p.restart(capture.port)
            if kind == "sealed":
                p.d.wait_for(r"storage unlocked", timeout=60)
    except Unavailable as e:
        F.fail(STORAGE_KEYS, str(e))
        return

    # The pages: the first inbox page and a text message of each.
    urls = {}
    try:
        for kind, p in portals.items():
            p.send("web@example.org", mail(
                "web@example.org", "Quarterly report",
                ("The figures for the quarter are attached. " * 40 + "\n")
                * 12))
            br = login(p, "web@example.org")
            st, r, inbox = br.request("GET", "/inbox")
            ids = re.findall(rb'href="/message\?id=(\d+)"', inbox)
            if st != 200 or not ids or b"Quarterly report" not in inbox:
                raise Unavailable(f"{kind} inbox page answered {st}")
            st, r, page = br.request("GET", f"/message?id={int(ids[0])}")
            if st != 200 or b"figures for the quarter" not in page:
                raise Unavailable(f"{kind} message page answered {st}")
            F.extra[f"storage-inbox-bytes-{kind}"] = len(inbox)
            base = f"https://127.0.0.1:{p.web_port}"
            urls[kind] = (br.cookie_header(), base + "/inbox",
                          f"{base}/message?id={int(ids[0])}")
    except Unavailable as e:
        F.fail(STORAGE_KEYS, str(e))
        for p in portals.values():
            p.stop()
        return

    def ingest(kind):
        p = portals[kind]
        t0, t1 = B.smtp_source(p.lmtp_port, a.n, 10, lmtp=True,
                               rcpt="lmtp=example.org@"
                               "relay-to-webmail.private")
        return a.n / (t1 - t0)

    jobs = []
    for kind in ("plain", "sealed"):
        cookie, inbox, message = urls[kind]
        jobs += [(f"ingest-{kind}", lambda k=kind: ingest(k)),
                 (f"inbox-{kind}", lambda c=cookie, u=inbox: B.wrk(
                     u, c, seconds=a.wrk_seconds)),
                 (f"message-{kind}", lambda c=cookie, u=message: B.wrk(
                     u, c, seconds=a.wrk_seconds))]
    # plain and sealed of one figure back to back, the order alternating.
    pairs = [(jobs[i], jobs[i + 3]) for i in range(3)]
    for rnd in range(a.rounds):
        say(f"storage round {rnd + 1}/{a.rounds}")
        for x, y in pairs:
            for key, fn in ((x, y) if rnd % 2 == 0 else (y, x)):
                F.attempt(key, fn)
    for p in portals.values():
        p.stop()


def report_rows(a, F, fmt, ratio, rtxt):
    m = F.med
    rows = []
    for k, nm, unit in (
            ("ingest", "LMTP ingest, 10 sessions, 20 KB messages",
             " msg/s"),
            ("inbox", f"inbox page, {a.inbox:,} messages, `wrk -c16`",
             " req/s"),
            ("message", "message page, `wrk -c16`", " req/s")):
        s, p = m(f"{k}-sealed"), m(f"{k}-plain")
        rows.append(f"| encrypted storage: {nm} | sealed {fmt(s, unit)} | "
                    f"the same portal without encryption {fmt(p)} | "
                    + rtxt(ratio(s, p), "of plain", "≥ 0.8") + " |")
    return rows
