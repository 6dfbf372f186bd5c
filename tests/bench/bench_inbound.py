"""The inbound phase of `make bench` (--only inbound): internal-gw
decrypting S/MIME for an internal recipient. Prints its own lines; the
main table is left as it is.

- 20 KiB messages encrypted with `openssl cms` to an RSA-2048 key the
  gateway holds, sent over 4 SMTP sessions: decrypted messages per second,
  against `openssl speed rsa2048` private-key operations per second times
  the number of cores (measured in the same run).
- One message of --big-mib MiB: the time, and how much the peak memory
  (VmHWM) of the gateway's processes grew."""

import os
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
    ossl = B.openssl_sign_rate()
    cores = os.cpu_count() or 1
    say(f"inbound: decrypting 20 KiB RSA-2048 messages, 4 sessions: "
        f"{rate:.0f} msg/s; openssl speed rsa2048 private ops "
        f"{ossl:.0f}/s x {cores} cores = {ossl * cores:.0f}/s; "
        f"ratio {rate / (ossl * cores):.0%}")

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
