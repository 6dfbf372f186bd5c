"""Add-on mode under load and failure: a 100 MB message through the
gateway and the portal with flat memory, two copies of one tunnel message
arriving at once, and a partial failure retried in the embedded mode
without Postfix."""

import os
import re
import smtplib
import threading

import pytest

from conftest import Sink, vmhwm_kib
from gwutil import Gateway, make_message
from test_portal_ingest import Portal
from test_smime import pids_by_proc
from test_tunnel import G, SENDER, TUNNEL, gw_send, keygen, tunnel  # noqa: F401
from test_web_stream import _socket_inodes

BIG = 100 * 1024 * 1024


def ingest_pid(portal):
    """The ingest worker: the child of external-portal that holds the SMTP
    listening socket."""
    inodes = _socket_inodes(portal.port)
    parent = portal.daemon.proc.pid
    with open(f"/proc/{parent}/task/{parent}/children") as f:
        kids = [int(x) for x in f.read().split()]
    for pid in kids:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                link = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            m = re.match(r"socket:\[(\d+)\]", link)
            if m and m.group(1) in inodes:
                return pid
    raise AssertionError("no ingest worker found")


@pytest.fixture
def pair(tmp_path, monkeypatch):
    """The gateway relaying its portal copies straight to the portal (the
    embedded mode), the tunnel on both, room for a 100 MB message."""
    # ASan's quarantine would keep freed memory and measure ASan itself.
    opts = os.environ.get("ASAN_OPTIONS", "detect_leaks=0:abort_on_error=0")
    monkeypatch.setenv("ASAN_OPTIONS", opts + ":quarantine_size_mb=4")
    d = str(tmp_path)
    out = Sink()
    portal = Portal(tmp_path, start=False)
    with open(portal.conf) as f:
        text = f.read()
    with open(portal.conf, "w") as f:
        f.write(text.replace("mynetworks", "max_message_size = 200000000;\n"
                             "  mynetworks", 1))
    gw = Gateway(tmp_path, portal.port, out.port, start=False,
                 smtp_extra="max_message_size = 150000000;", props=[
                     G + ("remote-portal-enabled", "--value", "true"),
                     G + ("webmail-enabled", "--value", "true"),
                     G + ("webmail-only-if-mandatory", "--value", "false"),
                     G + ("webmail-tunnel-enabled", "--value", "true"),
                     G + ("webmail-recipient", "--value", TUNNEL)])
    _, gcrt = keygen(gw, "gateway", SENDER, d)
    pkey, pcrt = keygen(portal, "portal", TUNNEL, d)
    gw.cli("cert", "import", "--file", pcrt)
    with open(portal.conf, "a") as f:
        f.write(f'tunnel = {{ key = "{pkey}"; cert = "{pcrt}"; '
                f'gateway_cert = "{gcrt}"; }};\n')
    portal.cli("property", *G, "webmail-recipient", "--value", TUNNEL)
    portal.cli("property", *G, "require-tunnel", "--value", "true")
    portal.cli("property", *G, "quota", "--value", "0")
    portal.start()
    gw.start()
    yield {"gw": gw, "portal": portal}
    gw.stop()
    portal.stop()
    out.stop()


def test_hundred_megabytes_in_flat_memory(pair):
    gw, portal = pair["gw"], pair["portal"]
    gw_send(gw, "warm@example.org", make_message(to="warm@example.org"))
    assert len(portal.messages("warm@example.org")) == 1
    ingest, smtp = ingest_pid(portal), pids_by_proc(gw)["smtp"]
    base, gbase = vmhwm_kib(ingest), vmhwm_kib(smtp)
    line = bytes(0x41 + i % 26 for i in range(76)) + b"\r\n"
    big = (make_message(to="big@example.org", subject="Large 7f3a",
                        body="start\n") + line * (BIG // len(line)) +
           b"end 7f3a\r\n")
    gw_send(gw, "big@example.org", big)
    rows = portal.messages("big@example.org")
    assert len(rows) == 1, portal.daemon.log()
    grown, ggrown = vmhwm_kib(ingest) - base, vmhwm_kib(smtp) - gbase
    print(f"ingest VmHWM grew by {grown} KiB, gateway worker by "
          f"{ggrown} KiB")
    # Flat: a few MiB of buffers whatever the size, not the message.
    assert grown < 16 * 1024, grown
    assert ggrown < 16 * 1024, ggrown
    # Byte for byte what the gateway received.
    with open(os.path.join(portal.store, rows[0][3]), "rb") as f:
        assert f.read() == big


def _staged(port, data):
    """An SMTP session to the portal with data sent but the final dot
    not yet."""
    s = smtplib.SMTP("127.0.0.1", port, timeout=120)
    s.ehlo()
    assert s.mail(SENDER)[0] == 250
    assert s.rcpt(TUNNEL)[0] == 250
    assert s.docmd("DATA")[0] == 354
    s.send(re.sub(rb"(?m)^\.", b"..", data))
    return s


def test_two_copies_at_once_store_one(tunnel):  # noqa: F811
    gw, portal, cap = tunnel["gw"], tunnel["portal"], tunnel["capture"]
    # A few megabytes, so that both deliveries are at work together.
    body = "".join(f"line {i:07d} of the race\n" for i in range(200000))
    gw_send(gw, "race@example.org", make_message(to="race@example.org",
                                                  body=body))
    raw = cap.wait(1)[0]["data"]
    sessions = [_staged(portal.port, raw) for _ in range(2)]
    codes = [None, None]

    def finish(i):
        sessions[i].send(b".\r\n")
        codes[i] = sessions[i].getreply()

    threads = [threading.Thread(target=finish, args=(i,)) for i in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for s in sessions:
        s.quit()
    assert sorted(c[0] for c in codes) == [250, 550], codes
    assert b"5.7." in [c for c in codes if c[0] == 550][0][1]
    portal.daemon.wait_for("replayed tunnel id")
    assert len(portal.messages("race@example.org")) == 1


def test_partial_failure_retried_without_duplicates(pair):
    """One recipient over quota: the portal stores the other and defers
    the tunnel message; the sender's retry of the same message gets the
    same tunnel id, so the stored recipient is skipped."""
    gw, portal = pair["gw"], pair["portal"]
    portal.cli("property", "user", "set", "--email", "carol@example.org",
               "--name", "quota", "--value", "1")
    rcpts = ["bob@example.org", "carol@example.org"]
    msg = make_message(to="bob@example.org, carol@example.org",
                       subject="Twice 51c2")
    with pytest.raises(smtplib.SMTPDataError) as e:
        with smtplib.SMTP("127.0.0.1", gw.port, timeout=60) as s:
            s.sendmail("alice@example.com", rcpts, msg)
    assert e.value.smtp_code == 451, e.value
    assert len(portal.messages("bob@example.org")) == 1
    assert portal.messages("carol@example.org") == []
    first = portal.daemon.wait_for(
        r"tunnel id (\w+): 1 recipient\(s\) deferred").group(1)

    portal.cli("property", "user", "set", "--email", "carol@example.org",
               "--name", "quota", "--value", "0")
    with smtplib.SMTP("127.0.0.1", gw.port, timeout=60) as s:
        s.sendmail("alice@example.com", rcpts, msg)
    assert len(portal.messages("bob@example.org")) == 1
    assert len(portal.messages("carol@example.org")) == 1
    portal.daemon.wait_for(f"tunnel id={first} ")
