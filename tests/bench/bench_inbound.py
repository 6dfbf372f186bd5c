"""The inbound phase of `make bench` (--only inbound): internal-gw
decrypting S/MIME for an internal recipient. Prints its own lines; the
main table is left as it is.

- The decryption path itself: the harness inbound_decrypt spawns the real
  keyd with an RSA-2048 key and runs inbound_process() (RecipientInfo
  extraction, keyd UNWRAP, content decryption from the spool file, the
  result header fields) on a 20 KiB message from one thread per core for
  3 seconds; right after it, `openssl speed -seconds 3 -multi <cores>
  rsa2048` gives the private-key operations per second of all cores
  (OpenSSL 3.0 prints sign/s; an RSA decryption is the same private
  operation). The target is 80 % of that.
- The same messages end to end over 4 SMTP sessions (SMTP in, decryption,
  relay to a sink), labelled as such: that figure includes the SMTP
  relay.
- One message of --big-mib MiB: the time, and how much the peak memory
  (VmHWM) of the gateway's processes grew."""

import json
import os
import re
import smtplib
import subprocess
import threading
import time

import benchlib as B


def _encrypt(work, name, entity, pki):
    src = os.path.join(work, name + ".in")
    out = os.path.join(work, name + ".p7m")
    with open(src, "wb") as f:
        f.write(entity)
    subprocess.run(["openssl", "cms", "-encrypt", "-binary", "-stream",
                    "-aes256", "-recip", f"{pki}/alice.crt", "-in", src,
                    "-out", out], check=True)
    os.unlink(src)
    with open(out, "rb") as f:
        data = f.read()
    os.unlink(out)
    data = data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    return data.split(b"MIME-Version: 1.0\r\n", 1)[1]


def openssl_multi_rate(cores, seconds=3):
    """rsa2048 private-key operations per second over all cores."""
    r = subprocess.run([B.tool("openssl"), "speed", "-seconds", str(seconds),
                        "-multi", str(cores), "rsa2048"],
                       capture_output=True, text=True,
                       timeout=20 * seconds + 60)
    m = re.search(r"^rsa\s+2048 bits\s+[\d.]+s\s+[\d.]+s\s+([\d.]+)",
                  r.stdout, re.M)
    if not m:
        raise B.Unavailable("openssl speed -multi: no rsa 2048 line: "
                            + r.stderr.strip()[-200:])
    return float(m.group(1))


def decrypt_path(a, gw, msgfile, cores, say):
    """The harness on the gateway's configuration, then openssl speed."""
    harness = os.path.join(a.build, "harness", "inbound_decrypt")
    if not os.path.exists(harness):
        raise B.Unavailable(f"{harness} is not built (make all)")
    r = subprocess.run([harness, "-c",
                        gw.conf, "-r", "alice@example.com", "-t", str(cores),
                        "-s", "3", msgfile], capture_output=True, text=True,
                       timeout=120)
    if r.returncode != 0:
        raise B.Unavailable("inbound_decrypt: " + r.stderr.strip()[-300:])
    res = json.loads(r.stdout.strip().splitlines()[-1])
    ossl = openssl_multi_rate(cores)
    say(f"inbound: decryption path (inbound_process + keyd, {cores} "
        f"threads, 20 KiB RSA-2048): {res['rate']:.0f} msg/s; openssl "
        f"speed -multi {cores} rsa2048: {ossl:.0f} private ops/s; ratio "
        f"{res['rate'] / ossl:.0%} (target 80 %)")
    return res["rate"], ossl


def _send(port, msgs):
    with smtplib.SMTP("127.0.0.1", port, timeout=300) as s:
        for m in msgs:
            s.sendmail("bob@example.net", ["alice@example.com"], m)


def phase_inbound(a, work, Gateway, tree_hwm, say):
    from gwutil import pki_dir
    pki = pki_dir()
    sink = B.CountingSink(work, "sink-inbound")
    gw = Gateway(a.build, work, "gw-inbound", sink.port, sink.port,
                 props=[("user", "set", "--email", "alice@example.com",
                         "--name", "locality", "--value", "internal")],
                 certs=[("--file", f"{pki}/alice.p12", "--password",
                         "secret")],
                 max_size=(2 * a.big_mib + 16) << 20)
    line = b"".join(bytes([0x41 + i % 26]) for i in range(76)) + b"\r\n"
    ent = (b"Content-Type: text/plain\r\n\r\n" + line * (20480 // 78))
    body = _encrypt(work, "small", ent, pki)
    n = max(200, a.n // 4)
    msgs = [b"From: bob@example.net\r\nTo: alice@example.com\r\n"
            b"Subject: bench\r\nMessage-ID: <%d.inbound@bench>\r\n"
            b"MIME-Version: 1.0\r\n" % i + body for i in range(n)]
    cores = os.cpu_count() or 1
    msgfile = os.path.join(work, "inbound-20k.eml")
    with open(msgfile, "wb") as f:
        f.write(msgs[0])
    decrypt_path(a, gw, msgfile, cores, say)   # the daemon stays idle
    _, w0 = sink.counts()
    _send(gw.port, msgs[:4])
    sink.wait_mesg(w0 + 4, timeout=60)
    s0, m0 = sink.counts()
    t0 = time.monotonic()
    th = [threading.Thread(target=_send, args=(gw.port, msgs[4 + i::4]))
          for i in range(4)]
    for t in th:
        t.start()
    for t in th:
        t.join()
    t_last = sink.wait_mesg(m0 + n - 4, timeout=600)
    rate = (n - 4) / ((t_last or time.monotonic()) - t0)
    say(f"inbound: SMTP end to end (4 sessions in, decrypt, relay to a "
        f"sink; includes the SMTP relay): {rate:.0f} msg/s")

    big = _encrypt(work, "big", b"Content-Type: text/plain\r\n\r\n" +
                   line * (a.big_mib * 1024 * 1024 // 78), pki)
    msg = (b"From: bob@example.net\r\nTo: alice@example.com\r\n"
           b"Subject: big\r\nMessage-ID: <big.inbound@bench>\r\n"
           b"MIME-Version: 1.0\r\n" + big)
    del big
    h0 = dict(tree_hwm(gw.d.proc.pid))
    _, m0 = sink.counts()
    t0 = time.monotonic()
    _send(gw.port, [msg])
    sink.wait_mesg(m0 + 1, timeout=600)
    dt = time.monotonic() - t0
    h1 = dict(tree_hwm(gw.d.proc.pid))
    grown = max(h1.get(p, 0) - h0.get(p, 0) for p in h1)
    say(f"inbound: one {len(msg) >> 20} MiB encrypted message decrypted in "
        f"{dt:.1f} s; peak RSS of the gateway's processes grew by at most "
        f"{grown} KiB")
    gw.stop()
