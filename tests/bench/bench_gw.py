"""make bench: messages per second and peak memory of internal-gw.

Sends N messages of about 20 KB over a few parallel SMTP connections to
internal-gw, once tagging for the portal only and once signing with an
RSA-2048 key, to an aiosmtpd sink; then one 20 MiB message signed and
encrypted. Prints figures; asserts nothing."""

import argparse
import os
import smtplib
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..",
                                "integration"))
import conftest  # noqa: E402
from conftest import Sink  # noqa: E402
from gwutil import Gateway, make_message, pki_dir  # noqa: E402

G = ("global", "set", "--name")


def tree_hwm_kib(pid):
    """Peak resident memory (VmHWM) of pid and its children, in KiB."""
    total = 0
    pids = [pid]
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            pids += [int(p) for p in f.read().split()]
    except OSError:
        pass
    for p in pids:
        try:
            with open(f"/proc/{p}/status") as f:
                for line in f:
                    if line.startswith("VmHWM:"):
                        total += int(line.split()[1])
        except OSError:
            pass
    return total


def run(label, n, conns, props, certs, sender):
    with tempfile.TemporaryDirectory() as tmp:
        portal, out = Sink(), Sink()
        gw = Gateway(tmp, portal.port, out.port, props=props, certs=certs)
        body = ("Lorem ipsum dolor sit amet, consectetur adipiscing elit. "
                * 350)[:20000]
        # Each message is distinct (own Message-ID), as real mail is: the
        # gateway's ledger would rightly treat identical bytes as a retry.
        msgs = [make_message(frm=sender, to="ext@example.org", body=body)
                for _ in range(n)]
        msg = msgs[0]
        per = n // conns
        errors = []

        def worker(k):
            try:
                with smtplib.SMTP("127.0.0.1", gw.port, timeout=120) as s:
                    for i in range(per):
                        s.sendmail(sender, ["ext@example.org"],
                                   msgs[k * per + i])
            except Exception as e:  # report, don't hide
                errors.append(e)

        threads = [threading.Thread(target=worker, args=(k,))
                   for k in range(conns)]
        t0 = time.monotonic()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        dt = time.monotonic() - t0
        sent = per * conns
        hwm = tree_hwm_kib(gw.daemon.proc.pid)
        gw.stop()
        portal.stop()
        out.stop()
        got = len(portal.messages) + len(out.messages)
        print(f"{label:28s} {sent:6d} msgs  {sent / dt:8.1f} msg/s  "
              f"{len(msg) / 1024:5.1f} KiB each  peak RSS {hwm / 1024:6.1f} MiB"
              f" (all processes)  delivered {got}"
              + (f"  errors {len(errors)}: {errors[0]}" if errors else ""))


def run_large(mib):
    """One message of mib MiB, signed and encrypted: time and peak memory
    of all gateway processes before and after."""
    pki = pki_dir()
    with tempfile.TemporaryDirectory() as tmp:
        portal, out = Sink(), Sink()
        gw = Gateway(tmp, portal.port, out.port,
                     props=[("user", "set", "--email", "alice@example.com",
                             "--name", "sign-enabled", "--value", "true"),
                            G + ("encrypt-mode", "--value", "mandatory")],
                     certs=[("--file", f"{pki}/alice.p12", "--password",
                             "secret"), ("--file", f"{pki}/bob.crt")])
        line = "The quick brown fox jumps over the lazy dog 0123456789." \
            " abcdefghijklmnop\n"
        msg = make_message(frm="alice@example.com", to="bob@example.net",
                           body=line * (mib * 1024 * 1024 // len(line)))
        before = tree_hwm_kib(gw.daemon.proc.pid)
        t0 = time.monotonic()
        with smtplib.SMTP("127.0.0.1", gw.port, timeout=300) as s:
            s.sendmail("alice@example.com", ["bob@example.net"], msg)
        dt = time.monotonic() - t0
        after = tree_hwm_kib(gw.daemon.proc.pid)
        gw.stop()
        portal.stop()
        out.stop()
        print(f"{'sign+encrypt ' + str(mib) + ' MiB':28s} {1:6d} msg   "
              f"{dt:8.2f} s      peak RSS {before / 1024:6.1f} -> "
              f"{after / 1024:6.1f} MiB (all processes)  delivered "
              f"{len(out.messages)}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=conftest.BUILD)
    ap.add_argument("-n", type=int, default=3000)
    ap.add_argument("--conns", type=int, default=4)
    a = ap.parse_args()
    conftest.BUILD = a.build
    pki = pki_dir()
    print(f"internal-gw benchmark, build {a.build}, {os.cpu_count()} cores")
    run("tag for portal", a.n, a.conns,
        [G + ("remote-portal-enabled", "--value", "true"),
         G + ("webmail-enabled", "--value", "true"),
         G + ("webmail-only-if-mandatory", "--value", "false")], [],
        "alice@example.com")
    run("sign RSA-2048", a.n, a.conns,
        [("user", "set", "--email", "alice@example.com", "--name",
          "sign-enabled", "--value", "true")],
        [("--file", f"{pki}/alice.p12", "--password", "secret")],
        "alice@example.com")
    run_large(20)


if __name__ == "__main__":
    main()
