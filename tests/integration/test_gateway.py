"""internal-gw end to end on loopback: real daemon, smtplib as the LAN MTA,
aiosmtpd next hops for the portal and for onward mail, openssl cms to check
what was signed or encrypted."""

import os
import email
import re
import smtplib
from email import policy
import socket
import ssl
import subprocess

import pytest

from conftest import Sink, bin_path
from gwutil import Gateway, make_message, pki_dir

G = ("global", "set", "--name")

PORTAL_PROPS = [
    G + ("remote-portal-enabled", "--value", "true"),
    G + ("webmail-enabled", "--value", "true"),
    G + ("webmail-only-if-mandatory", "--value", "false"),
]


@pytest.fixture
def sinks():
    portal, out = Sink(), Sink()
    yield portal, out
    portal.stop()
    out.stop()


@pytest.fixture
def gw_factory(tmp_path, sinks):
    made = []

    def make(**kw):
        g = Gateway(tmp_path / str(len(made)), sinks[0].port, sinks[1].port,
                    **kw)
        made.append(g)
        return g
    yield make
    for g in made:
        g.stop()


def send(gw, frm, to, data, port=None):
    with smtplib.SMTP("127.0.0.1", port or gw.port, timeout=30) as s:
        return s.sendmail(frm, to, data)


def keep_headers(data):
    return re.findall(rb"(?im)^x-keep-[^\r\n]*", data.split(b"\r\n\r\n")[0])


def test_portal_copy_tagged_and_rewritten(gw_factory, sinks):
    portal, out = sinks
    gw = gw_factory(props=PORTAL_PROPS)
    send(gw, "alice@example.com", ["ext@example.org"],
         make_message(to="ext@example.org"))
    msg = portal.wait(1)[0]
    assert msg["to"] == ["ext=example.org@relay-to-webmail.private"]
    assert keep_headers(msg["data"]) == [b"X-Keep-CipherMail-To-Webmail: True"]
    assert out.messages == []
    assert re.search(r"to=<ext@example.org> decision=portal-webmail",
                     gw.daemon.log())


def test_pdf_otp_copy(gw_factory, sinks):
    portal, out = sinks
    gw = gw_factory(props=[
        G + ("remote-portal-enabled", "--value", "true"),
        ("user", "set", "--email", "ext@example.org", "--name",
         "pdf-otp-enabled", "--value", "true"),
        ("user", "set", "--email", "ext@example.org", "--name",
         "encrypt-mode", "--value", "mandatory"),
    ])
    send(gw, "alice@example.com", ["ext@example.org"],
         make_message(to="ext@example.org"))
    msg = portal.wait(1)[0]
    assert keep_headers(msg["data"]) == [b"X-Keep-CipherMail-To-PDF-OTP: True"]


def test_onward_copy_has_no_keep_header_and_forged_trigger_removed(
        gw_factory, sinks):
    portal, out = sinks
    gw = gw_factory()
    data = (b"From: alice@example.com\r\nTo: x@example.org\r\n"
            b"X-Keep-CipherMail-To-Webmail: True\r\n"
            b"x-keep-ciphermail-to-pdf-otp:\r\n True\r\n"
            b"Subject: forged\r\n\r\nbody\r\n")
    send(gw, "alice@example.com", ["x@example.org"], data)
    msg = out.wait(1)[0]
    assert keep_headers(msg["data"]) == []
    assert b"Subject: forged" in msg["data"]
    assert portal.messages == []
    assert "removed 2 forged trigger header(s)" in gw.daemon.log()


def test_subject_trigger_makes_mandatory_and_is_removed(gw_factory, sinks):
    portal, out = sinks
    gw = gw_factory(props=[
        G + ("remote-portal-enabled", "--value", "true"),
        G + ("webmail-enabled", "--value", "true"),
        G + ("subject-trigger-enabled", "--value", "true"),
    ])
    # Without the tag: webmail only if mandatory -> relayed plain.
    send(gw, "alice@example.com", ["ext@example.org"],
         make_message(to="ext@example.org", subject="plain news"))
    out.wait(1)
    send(gw, "alice@example.com", ["ext@example.org"],
         make_message(to="ext@example.org", subject="[encrypt] secret plan"))
    msg = portal.wait(1)[0]
    assert re.search(rb"(?m)^Subject: +secret plan\r$", msg["data"]) or \
        re.search(rb"(?m)^Subject: secret plan\r$", msg["data"])
    assert b"[encrypt]" not in msg["data"]


def test_signed_output_verifies(gw_factory, sinks, tmp_path):
    portal, out = sinks
    pki = pki_dir()
    gw = gw_factory(
        props=[("user", "set", "--email", "alice@example.com", "--name",
                "sign-enabled", "--value", "true")],
        certs=[("--file", f"{pki}/alice.p12", "--password", "secret")])
    body = "Grüße, signed text.\n"
    send(gw, "alice@example.com", ["x@example.org"],
         make_message(to="x@example.org", body=body))
    msg = out.wait(1)[0]
    assert b"multipart/signed" in msg["data"]
    p = tmp_path / "signed.eml"
    p.write_bytes(msg["data"])
    r = subprocess.run(["openssl", "cms", "-verify", "-in", str(p),
                        "-CAfile", f"{pki}/ca-bundle.pem", "-purpose",
                        "smimesign"], capture_output=True)
    assert r.returncode == 0, r.stderr
    inner = email.message_from_bytes(r.stdout, policy=policy.default)
    assert inner.get_content() .replace("\r\n", "\n") == body


def test_encrypted_output_decrypts(gw_factory, sinks, tmp_path):
    portal, out = sinks
    pki = pki_dir()
    gw = gw_factory(certs=[("--file", f"{pki}/bob.crt")])
    send(gw, "alice@example.com", ["bob@example.net"],
         make_message(body="for bob only\n"))
    msg = out.wait(1)[0]
    assert b"application/pkcs7-mime" in msg["data"]
    assert b"for bob only" not in msg["data"]
    p = tmp_path / "enc.eml"
    p.write_bytes(msg["data"])
    r = subprocess.run(["openssl", "cms", "-decrypt", "-in", str(p),
                        "-recip", f"{pki}/bob.crt", "-inkey",
                        f"{pki}/bob.key"], capture_output=True)
    assert r.returncode == 0, r.stderr
    assert b"for bob only" in r.stdout


def test_untrusted_certificate_not_used(gw_factory, sinks):
    portal, out = sinks
    pki = pki_dir()
    gw = gw_factory(certs=[("--file", f"{pki}/untrusted.crt")])
    send(gw, "alice@example.com", ["untrusted@example.net"],
         make_message(to="untrusted@example.net", body="clear\n"))
    msg = out.wait(1)[0]
    assert b"pkcs7-mime" not in msg["data"]


@pytest.mark.parametrize("reply,code", [("450 4.2.0 busy", 4),
                                        ("550 5.1.1 no such user", 5)])
def test_next_hop_status_propagates(gw_factory, sinks, reply, code):
    portal, out = sinks
    out.handler.rcpt_replies["x@example.org"] = reply
    gw = gw_factory()
    with pytest.raises(smtplib.SMTPResponseException) as e:
        send(gw, "alice@example.com", ["x@example.org"],
             make_message(to="x@example.org"))
    assert e.value.smtp_code // 100 == code


def test_mandatory_without_method_refuses(gw_factory, sinks):
    portal, out = sinks
    gw = gw_factory(props=[
        ("domain", "add", "--domain", "example.org"),
        ("domain", "set", "--domain", "example.org", "--name",
         "encrypt-mode", "--value", "mandatory"),
    ])
    # Known without the content: refused at RCPT already.
    with pytest.raises(smtplib.SMTPRecipientsRefused) as e:
        send(gw, "alice@example.com", ["x@example.org"],
             make_message(to="x@example.org"))
    code, text = e.value.recipients["x@example.org"]
    assert code == 550 and text.startswith(b"5.7.1"), text
    assert out.messages == [] and portal.messages == []


def test_retry_after_partial_failure_no_duplicate(gw_factory, sinks):
    portal, out = sinks
    gw = gw_factory(props=PORTAL_PROPS + [
        ("domain", "add", "--domain", "example.com"),
        ("domain", "set", "--domain", "example.com", "--name", "locality",
         "--value", "internal")])
    out.handler.rcpt_replies["colleague@example.com"] = "451 4.3.0 later"
    data = make_message(to="ext@example.org, colleague@example.com")
    rcpts = ["ext@example.org", "colleague@example.com"]
    with pytest.raises(smtplib.SMTPResponseException) as e:
        send(gw, "alice@example.com", rcpts, data)
    assert e.value.smtp_code // 100 == 4
    assert len(portal.wait(1)) == 1
    out.handler.rcpt_replies.clear()
    send(gw, "alice@example.com", rcpts, data)   # the sender's MTA retries
    out.wait(1)
    assert len(portal.messages) == 1, "portal copy relayed twice"


SMUGGLE = [b"\n.\n", b"\n.\r\n", b"\r.\r", b"\r.\r\n", b"\r\n.\r", b"\n.\r"]


@pytest.mark.parametrize("seq", SMUGGLE)
def test_smuggling_refused(gw_factory, sinks, seq):
    portal, out = sinks
    gw = gw_factory()
    s = socket.create_connection(("127.0.0.1", gw.port), timeout=30)
    f = s.makefile("rb")
    f.readline()
    s.sendall(b"EHLO t\r\n")
    while not f.readline().startswith(b"250 "):
        pass
    s.sendall(b"MAIL FROM:<a@example.com>\r\nRCPT TO:<x@example.org>\r\n"
              b"DATA\r\n")
    assert f.readline().startswith(b"250")
    assert f.readline().startswith(b"250")
    assert f.readline().startswith(b"354")
    s.sendall(b"Subject: one\r\n\r\nfirst" + seq +
              b"MAIL FROM:<evil@example.com>\r\nRCPT TO:<victim@example.org>\r\n"
              b"DATA\r\nSubject: smuggled\r\n\r\nevil\r\n.\r\n")
    reply = f.readline()
    assert reply[:1] == b"5", reply
    s.sendall(b"QUIT\r\n")
    s.close()
    assert out.messages == [] and portal.messages == []


def test_oversize_552(gw_factory, sinks):
    portal, out = sinks
    gw = gw_factory(smtp_extra="max_message_size = 10000;")
    with pytest.raises(smtplib.SMTPResponseException) as e:
        send(gw, "a@example.com", ["x@example.org"],
             make_message(body="x" * 20000))
    assert e.value.smtp_code == 552
    assert out.messages == []


def test_recipient_limit(gw_factory, sinks):
    portal, out = sinks
    gw = gw_factory(smtp_extra="max_recipients = 2;")
    with smtplib.SMTP("127.0.0.1", gw.port) as s:
        s.ehlo()
        s.mail("a@example.com")
        assert s.rcpt("x1@example.org")[0] == 250
        assert s.rcpt("x2@example.org")[0] == 250
        assert s.rcpt("x3@example.org")[0] == 452


def test_lmtp_per_recipient_replies(gw_factory, sinks):
    portal, out = sinks
    out.handler.rcpt_replies["bad@example.org"] = "550 5.1.1 unknown"
    gw = gw_factory()
    s = socket.create_connection(("127.0.0.1", gw.lmtp_port), timeout=30)
    f = s.makefile("rb")
    f.readline()
    s.sendall(b"LHLO t\r\n")
    while not f.readline().startswith(b"250 "):
        pass
    s.sendall(b"MAIL FROM:<a@example.com>\r\nRCPT TO:<good@example.org>\r\n"
              b"RCPT TO:<bad@example.org>\r\nDATA\r\n")
    for _ in range(3):
        assert f.readline().startswith(b"250")
    assert f.readline().startswith(b"354")
    s.sendall(b"Subject: t\r\n\r\nbody\r\n.\r\n")
    first, second = f.readline(), f.readline()
    assert first.startswith(b"250"), first
    assert second.startswith(b"550"), second
    s.close()
    assert out.wait(1)[0]["to"] == ["good@example.org"]


def test_bdat(gw_factory, sinks):
    portal, out = sinks
    gw = gw_factory()
    body = b"Subject: chunked\r\n\r\nline one\r\n"
    s = socket.create_connection(("127.0.0.1", gw.port), timeout=30)
    f = s.makefile("rb")
    f.readline()
    s.sendall(b"EHLO t\r\n")
    lines = []
    while True:
        l = f.readline()
        lines.append(l)
        if l.startswith(b"250 "):
            break
    assert any(b"CHUNKING" in l for l in lines)
    s.sendall(b"MAIL FROM:<a@example.com>\r\nRCPT TO:<x@example.org>\r\n")
    f.readline(), f.readline()
    s.sendall(b"BDAT %d\r\n" % 10 + body[:10])
    assert f.readline().startswith(b"250")
    s.sendall(b"BDAT %d LAST\r\n" % (len(body) - 10) + body[10:])
    assert f.readline().startswith(b"250")
    s.close()
    assert out.wait(1)[0]["data"].startswith(b"Subject: chunked")


def test_starttls_with_real_client(gw_factory, sinks):
    portal, out = sinks
    gw = gw_factory()
    ctx = ssl.create_default_context(cafile=f"{pki_dir()}/ca-bundle.pem")
    ctx.check_hostname = False
    with smtplib.SMTP("127.0.0.1", gw.port) as s:
        s.starttls(context=ctx)
        s.ehlo()
        assert not s.has_extn("starttls")
        s.sendmail("a@example.com", ["x@example.org"], make_message())
    out.wait(1)


def test_check_broken_config_names_file_and_line(gw_factory, tmp_path):
    gw = gw_factory(start=False)
    text = open(gw.conf).read().replace(
        "workers = 2;", "workers = 2;\nworkerz = 3;")
    bad = tmp_path / "bad.conf"
    bad.write_text(text)
    r = subprocess.run([bin_path("internal-gw"), "-c", str(bad), "--check"],
                       capture_output=True, text=True)
    assert r.returncode == 1
    assert re.search(re.escape(str(bad)) + r":\d+: workerz: unknown key",
                     r.stderr), r.stderr
    ok = subprocess.run([bin_path("internal-gw"), "-c", gw.conf, "--check"],
                        capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr


def test_policy_explain(gw_factory):
    gw = gw_factory(props=PORTAL_PROPS + [
        ("domain", "add", "--domain", "example.org"),
        ("domain", "set", "--domain", "example.org", "--name",
         "encrypt-mode", "--value", "mandatory")], start=False)
    r = gw.cli("policy", "explain", "--from", "alice@example.com", "--to",
               "ext@example.org")
    assert "portal-webmail" in r.stdout
    assert "encrypt-mode" in r.stdout and "domain" in r.stdout


@pytest.mark.parametrize("victim", ["keyd", "smtp"])
def test_fails_closed_when_a_child_dies(gw_factory, victim):
    import signal
    gw = gw_factory()
    pids = {}
    for line in gw.daemon.lines:
        m = re.match(r"\S+\[(\d+)\] (keyd|smtp): ", line)
        if m:
            pids.setdefault(m.group(2), int(m.group(1)))
    assert set(pids) == {"keyd", "smtp"}, gw.daemon.log()
    os.kill(pids[victim], signal.SIGKILL)
    gw.daemon.wait_for(rf"{victim} process {pids[victim]} exited .*"
                       r"failing closed")
    assert gw.daemon.proc.wait(timeout=30) == 1
    for pid in pids.values():          # no orphan left serving
        assert not os.path.exists(f"/proc/{pid}") or \
            "zombie" in open(f"/proc/{pid}/status").read().lower() or \
            open(f"/proc/{pid}/stat").read().split()[2] == "Z"
    gw.daemon = None
