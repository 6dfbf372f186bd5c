"""internal-gw: the idempotency ledger suppresses only a retry of the same
transaction, "never 250 too early", partial refusal with a DSN, refusals
at RCPT, the signing identity and internal recipients' copies. Real
daemon, smtplib as the LAN MTA, aiosmtpd next hops, openssl cms."""

import email
import os
import re
import smtplib
import socket
import subprocess
from email import policy

import pytest

from conftest import Daemon, bin_path, free_port
import dbutil
from gwutil import make_message, pki_dir
from test_gateway import G, PORTAL_PROPS, gw_factory, send, sinks  # noqa
from test_e2e_loopback import pair  # noqa

TRIGGER_PROPS = PORTAL_PROPS + [
    G + ("subject-trigger-enabled", "--value", "true"),
    G + ("webmail-only-if-mandatory", "--value", "true"),
]


def fixed(subject, msgid="<same-id@test.example>", extra=b""):
    return (b"From: alice@example.com\r\nTo: ext@example.org\r\n"
            b"Message-ID: " + msgid.encode() + b"\r\n" + extra +
            b"Subject: " + subject.encode() + b"\r\n\r\nQ3 numbers.\r\n")


def test_tag_placement_gives_two_messages(gw_factory, sinks):
    portal, out = sinks
    gw = gw_factory(props=TRIGGER_PROPS)
    send(gw, "alice@example.com", ["ext@example.org"], fixed("[encrypt] Q3"))
    send(gw, "alice@example.com", ["ext@example.org"], fixed("Q3 [encrypt]"))
    assert len(portal.wait(2)) == 2
    assert "not sent" not in gw.daemon.log()


def test_forged_trigger_copy_also_arrives(gw_factory, sinks):
    portal, out = sinks
    gw = gw_factory()
    send(gw, "alice@example.com", ["ext@example.org"], fixed("news"))
    send(gw, "alice@example.com", ["ext@example.org"], fixed(
        "news", extra=b"X-Keep-CipherMail-To-Webmail: True\r\n"))
    assert len(out.wait(2)) == 2


def test_byte_identical_resend_arrives_again(gw_factory, sinks):
    portal, out = sinks
    gw = gw_factory(props=PORTAL_PROPS)
    data = fixed("again")
    for _ in range(2):
        send(gw, "alice@example.com", ["ext@example.org", "x@example.net"],
             data)
    msgs = portal.wait(2)
    assert [len(m["to"]) for m in msgs] == [2, 2]


def test_retry_after_4xx_same_hop_does_not_duplicate(gw_factory, sinks):
    portal, out = sinks
    gw = gw_factory()
    out.handler.rcpt_replies["b@example.org"] = "451 4.3.0 later"
    data = fixed("retry")
    rcpts = ["a@example.org", "b@example.org"]
    with pytest.raises(smtplib.SMTPResponseException) as e:
        send(gw, "alice@example.com", rcpts, data)
    assert e.value.smtp_code // 100 == 4
    assert out.wait(1)[0]["to"] == ["a@example.org"]
    out.handler.rcpt_replies.clear()
    send(gw, "alice@example.com", rcpts, data)      # the MTA retries
    msgs = out.wait(2)
    assert [m["to"] for m in msgs] == [["a@example.org"], ["b@example.org"]]
    # That answer was final: a new submission of it goes to both.
    send(gw, "alice@example.com", rcpts, data)
    assert out.wait(3)[2]["to"] == rcpts


@pytest.mark.parametrize("reply,code", [("451 4.3.0 disk full", 4),
                                        ("554 5.6.0 content refused", 5)])
def test_next_hop_answer_after_data_propagates(gw_factory, sinks, reply,
                                               code):
    portal, out = sinks
    out.handler.data_reply = reply
    gw = gw_factory()
    with pytest.raises(smtplib.SMTPResponseException) as e:
        send(gw, "alice@example.com", ["x@example.org"],
             make_message(to="x@example.org"))
    assert e.value.smtp_code // 100 == code


def test_unreachable_next_hop_is_4xx(gw_factory, sinks):
    portal, out = sinks
    gw = gw_factory(start=False)
    dead = free_port()
    open(gw.transport, "w").write(f"*  smtp:[127.0.0.1]:{dead}\n")
    gw.start()
    with pytest.raises(smtplib.SMTPResponseException) as e:
        send(gw, "alice@example.com", ["x@example.org"],
             make_message(to="x@example.org"))
    assert e.value.smtp_code // 100 == 4


def test_partial_refusal_accepted_with_dsn(gw_factory, sinks):
    portal, out = sinks
    out.handler.rcpt_replies["gone@example.org"] = "550 5.1.1 no such user"
    gw = gw_factory()
    with smtplib.SMTP("127.0.0.1", gw.port, timeout=30) as s:
        s.ehlo()
        s.mail("alice@example.com")
        assert s.rcpt("ok@example.org")[0] == 250
        assert s.rcpt("gone@example.org")[0] == 250
        code, text = s.data(make_message(to="ok@example.org",
                                         subject="quarterly"))
    assert code == 250, text
    msgs = out.wait(2)
    assert msgs[0]["to"] == ["ok@example.org"]
    dsn = msgs[1]
    assert dsn["from"] in ("", "<>") and dsn["to"] == ["alice@example.com"]
    m = email.message_from_bytes(dsn["data"], policy=policy.default)
    assert m.get_content_type() == "multipart/report"
    assert m.get_param("report-type") == "delivery-status"
    parts = [p.get_content_type() for p in m.iter_parts()]
    assert parts == ["text/plain", "message/delivery-status",
                     "text/rfc822-headers"]
    status = dsn["data"].decode()
    assert "Final-Recipient: rfc822; gone@example.org" in status
    assert "Action: failed" in status and "Status: 5.1.1" in status
    assert "Diagnostic-Code: smtp;" in status
    report = status.split("Content-Type: message/delivery-status")[1] \
        .split("Content-Type: text/rfc822-headers")[0]
    assert "ok@example.org" not in report
    assert "Subject: quarterly" in status


def test_partial_refusal_null_sender_no_dsn(gw_factory, sinks):
    portal, out = sinks
    out.handler.rcpt_replies["gone@example.org"] = "550 5.1.1 no such user"
    gw = gw_factory()
    send(gw, "", ["ok@example.org", "gone@example.org"],
         make_message(to="ok@example.org"))
    assert len(out.wait(1)) == 1
    gw.daemon.wait_for(r"null sender: no DSN")
    assert len(out.messages) == 1


def test_lmtp_partial_refusal_per_recipient_no_dsn(gw_factory, sinks):
    portal, out = sinks
    out.handler.rcpt_replies["gone@example.org"] = "550 5.1.1 no such user"
    gw = gw_factory()
    with smtplib.LMTP("127.0.0.1", gw.lmtp_port) as s:
        s.ehlo_or_helo_if_needed = lambda: s.ehlo("t")
        s.ehlo("t")
        s.mail("alice@example.com")
        s.rcpt("ok@example.org")
        s.rcpt("gone@example.org")
        s.putcmd("data")
        assert s.getreply()[0] == 354
        s.send(b"Subject: t\r\n\r\nbody\r\n.\r\n")
        assert s.getreply()[0] == 250
        assert s.getreply()[0] == 550
    assert len(out.wait(1)) == 1
    assert "dsn to=" not in gw.daemon.log()


@pytest.mark.parametrize("dom", ["relay-to-webmail.private",
                                 "Relay-To-Webmail.PRIVATE"])
def test_relay_domain_refused_at_rcpt(gw_factory, sinks, dom):
    portal, out = sinks
    gw = gw_factory(props=PORTAL_PROPS)
    with smtplib.SMTP("127.0.0.1", gw.port, timeout=30) as s:
        s.ehlo()
        s.mail("alice@example.com")
        code, text = s.rcpt(f"victim=example.org@{dom}")
        assert code == 550 and text.startswith(b"5.1.1"), text


def test_configured_relay_domain_refused_at_rcpt(gw_factory, sinks):
    portal, out = sinks
    gw = gw_factory(props=[G + ("portal-relay-domain", "--value",
                                "portal.internal")])
    with smtplib.SMTP("127.0.0.1", gw.port, timeout=30) as s:
        s.ehlo()
        s.mail("alice@example.com")
        assert s.rcpt("v=example.org@portal.internal")[0] == 550
        assert s.rcpt("v=example.org@relay-to-webmail.private")[0] == 250


def test_internal_recipient_keeps_subject_tag(gw_factory, sinks):
    portal, out = sinks
    gw = gw_factory(props=TRIGGER_PROPS + [
        ("domain", "add", "--domain", "example.com"),
        ("domain", "set", "--domain", "example.com", "--name", "locality",
         "--value", "internal")])
    send(gw, "alice@example.com", ["colleague@example.com",
                                   "ext@example.org"],
         make_message(to="colleague@example.com", subject="[encrypt] plan"))
    inner = out.wait(1)[0]
    assert inner["to"] == ["colleague@example.com"]
    assert re.search(rb"(?m)^Subject: \[encrypt\] plan\r$", inner["data"])
    ext = portal.wait(1)[0]
    assert b"[encrypt]" not in ext["data"]


def _signed_as(data, tmp_path, name="m.eml"):
    """The signer certificate's e-mail addresses, or None when unsigned."""
    if b"multipart/signed" not in data:
        return None
    p = tmp_path / name
    p.write_bytes(data)
    certs = tmp_path / (name + ".signer.pem")
    r = subprocess.run(["openssl", "cms", "-verify", "-in", str(p),
                        "-noverify", "-signer", str(certs), "-out",
                        "/dev/null"], capture_output=True)
    assert r.returncode == 0, r.stderr
    r = subprocess.run(["openssl", "x509", "-in", str(certs), "-noout",
                        "-email"], capture_output=True, text=True)
    return r.stdout.split()


SIGN_ALL = [G + ("sign-enabled", "--value", "true")]


def _tunnel_bundle(tmp_path):
    pki = pki_dir()
    bundle = tmp_path / "gateway-with-key.pem"
    bundle.write_bytes(open(f"{pki}/gateway-chain.pem", "rb").read() +
                       open(f"{pki}/gateway.key", "rb").read())
    return str(bundle)


def test_sign_as_from_not_envelope(gw_factory, sinks, tmp_path):
    portal, out = sinks
    pki = pki_dir()
    gw = gw_factory(props=SIGN_ALL, certs=[
        ("--file", f"{pki}/alice.p12", "--password", "secret")])
    # Aligned: signed as alice.
    send(gw, "alice@example.com", ["x@example.org"],
         make_message(frm="alice@example.com", to="x@example.org"))
    assert _signed_as(out.wait(1)[0]["data"], tmp_path, "a.eml") == \
        ["alice@example.com"]
    # MAIL FROM alice, From: the CEO: not signed as alice.
    send(gw, "alice@example.com", ["x@example.org"],
         make_message(frm="CEO <ceo@example.com>", to="x@example.org"))
    assert _signed_as(out.wait(2)[1]["data"], tmp_path, "b.eml") is None
    # Two From: mailboxes: not signed.
    send(gw, "alice@example.com", ["x@example.org"],
         make_message(frm="alice@example.com, ceo@example.com",
                      to="x@example.org"))
    assert _signed_as(out.wait(3)[2]["data"], tmp_path, "c.eml") is None
    assert "is not MAIL FROM" in gw.daemon.log()


def test_tunnel_key_never_signs_user_mail(gw_factory, sinks, tmp_path):
    portal, out = sinks
    gw = gw_factory(props=SIGN_ALL + [
        G + ("sign-require-aligned-from", "--value", "false")],
        certs=[("--file", _tunnel_bundle(tmp_path))])
    tunnel = "gateway@relay-to-webmail.private"
    for frm, hdr in ((tunnel, tunnel), (tunnel, "alice@example.com"),
                     ("alice@example.com", tunnel)):
        send(gw, frm, ["x@example.org"],
             make_message(frm=hdr, to="x@example.org"))
    msgs = out.wait(3)
    for i, m in enumerate(msgs):
        assert _signed_as(m["data"], tmp_path, f"t{i}.eml") is None
    assert gw.daemon.log().count("the tunnel key never signs user mail") \
        >= 3


def _no_leak_check():
    from conftest import SANITIZER_ENV
    opts = os.environ.get("ASAN_OPTIONS", SANITIZER_ENV.get("ASAN_OPTIONS",
                                                            ""))
    return ":".join([o for o in opts.split(":") if o and
                     not o.startswith("detect_leaks")] + ["detect_leaks=0"])


def test_ledger_uses_one_connection_per_thread(gw_factory, sinks, tmp_path):
    portal, out = sinks
    gw = gw_factory(start=False)
    text = open(gw.conf).read().replace("workers = 2;", "workers = 1;")
    open(gw.conf, "w").write(text)
    trace = tmp_path / "strace.out"
    # LeakSanitizer cannot run under ptrace: leaks are checked by every
    # other test that starts the gateway.
    gw.daemon = Daemon(["strace", "-f", "-qq", "-y", "-o", str(trace), "-e",
                        "trace=openat,connect,fsync,fdatasync",
                        bin_path("internal-gw"), "-c", gw.conf],
                       env={"ASAN_OPTIONS": _no_leak_check()})

    # A database connection: the SQLite file opened, or a connect to
    # the PostgreSQL server's socket.
    conn_rx = (r'connect\(.*\.s\.PGSQL\.\d+"' if dbutil.PG else
               r'openat\(.*gw\.db"')

    def opens():
        return len(re.findall(conn_rx, trace.read_text()))

    send(gw, "alice@example.com", ["x@example.org"], make_message())
    out.wait(1)
    first = opens()
    for i in range(4):
        send(gw, "alice@example.com", ["x@example.org"], make_message())
    out.wait(5)
    assert opens() == first, "database opened per message"
    # The spool file is never fsync'd: the next hop has the message
    # before the client gets its 250.
    assert not re.search(r"fsync\(\d+<[^>]*\.spool>", trace.read_text())


def test_message_of_exactly_the_advertised_size_reaches_the_portal(pair):
    from test_e2e_loopback import send as pair_send
    make, notify, out = pair
    gw, portal = make()
    with smtplib.SMTP("127.0.0.1", gw.port, timeout=30) as s:
        s.ehlo()
        size = int(s.esmtp_features["size"])
    head = make_message(to="ext@example.org", subject="big", body="x\n")
    head = head[:head.index(b"\r\n\r\n") + 4]
    line = b"y" * 998 + b"\r\n"
    fill = size - len(head)
    body = line * (fill // len(line))
    rest = fill - len(body)
    body += b"z" * (rest - 2) + b"\r\n" if rest else b""
    data = head + body
    assert len(data) == size
    pair_send(gw, ["ext@example.org"], data)
    rows = portal.messages("ext@example.org")
    assert len(rows) == 1, portal.daemon.log()


def test_old_ledger_ttl_days_key_is_named_at_check(gw_factory):
    gw = gw_factory(start=False)
    text = open(gw.conf).read().replace("timeout = 30;",
                                        "timeout = 30;\n  ledger_ttl_days = 7;")
    open(gw.conf, "w").write(text)
    r = subprocess.run([bin_path("internal-gw"), "-c", gw.conf, "--check"],
                       capture_output=True, text=True)
    assert r.returncode == 1
    assert "ledger_ttl_days" in r.stderr and "ledger_ttl_hours" in r.stderr
