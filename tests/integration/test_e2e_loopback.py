"""The pair end to end on loopback: a message sent to internal-gw for an
external recipient is tagged, rewritten and relayed over STARTTLS to
external-portal, which reverts the recipient, stores it in that
recipient's mailbox and sends the notification to the outside world."""

import email
import re
from email import policy

import pytest

from conftest import Sink
from gwutil import Gateway, make_message, pki_dir
from test_portal_ingest import Portal

G = ("global", "set", "--name")
PORTAL_PROPS = [
    G + ("remote-portal-enabled", "--value", "true"),
    G + ("webmail-enabled", "--value", "true"),
    G + ("webmail-only-if-mandatory", "--value", "false"),
]


def with_smtp_lines(conf, lines):
    text = open(conf).read().replace("  mynetworks = [",
                                     lines + "\n  mynetworks = [", 1)
    open(conf, "w").write(text)


@pytest.fixture
def pair(tmp_path):
    made = []
    notify, out = Sink(), Sink()

    def make(gw_props=(), gw_certs=(), portal_props=(), portal_smtp=""):
        pki = pki_dir()
        portal = Portal(tmp_path, notify_port=notify.port, start=False)
        with_smtp_lines(portal.conf,
                        f'  tls_cert = "{pki}/portal-tls-chain.pem";\n'
                        f'  tls_key = "{pki}/portal-tls.key";\n' + portal_smtp)
        for p in portal_props:
            portal.cli("property", *p)
        portal.start()
        made.append(portal)
        gw = Gateway(tmp_path, portal.port, out.port,
                     props=PORTAL_PROPS + list(gw_props), certs=gw_certs)
        made.append(gw)
        return gw, portal
    yield make, notify, out
    for m in reversed(made):
        m.stop()
    notify.stop()
    out.stop()


def send(gw, rcpts, data, frm="alice@example.com"):
    import smtplib
    with smtplib.SMTP("127.0.0.1", gw.port, timeout=30) as s:
        return s.sendmail(frm, rcpts, data)


def test_gateway_to_portal_mailbox_and_notification(pair):
    make, notify, out = pair
    gw, portal = make()
    body = "Quarterly numbers, strictly confidential.\n"
    send(gw, ["ext@example.org"], make_message(to="ext@example.org",
                                               subject="Q3", body=body))
    rows = portal.messages("ext@example.org")
    assert len(rows) == 1, portal.daemon.log()
    msg_id, state, subject, path = rows[0]
    assert state == "webmail"
    stored = portal.file(path)
    assert b"X-Keep-" not in stored
    assert b"strictly confidential" in stored
    # The hop between the nodes used STARTTLS.
    assert re.search(r"from=<alice@example.com> nrcpts=1 size=\d+ tls=yes "
                     r"result=250", portal.daemon.log()), portal.daemon.log()
    assert out.messages == []

    note = notify.wait(1)[0]
    assert note["to"] == ["ext@example.org"]
    m = email.message_from_bytes(note["data"], policy=policy.default)
    text = m.get_body(preferencelist=("plain",)).get_content()
    assert re.search(r"https://portal\.test/signup\?token=[0-9a-f]{32,}",
                     text), text
    assert "strictly confidential" not in note["data"].decode("utf-8",
                                                               "replace")


def test_forged_trigger_from_upstream_never_reaches_portal(pair):
    make, notify, out = pair
    gw, portal = make(gw_props=[
        G + ("webmail-only-if-mandatory", "--value", "true")])
    data = (b"From: mallory@example.com\r\nTo: ext@example.org\r\n"
            b"X-Keep-CipherMail-To-Webmail: True\r\nSubject: x\r\n\r\nhi\r\n")
    send(gw, ["ext@example.org"], data, frm="mallory@example.com")
    assert out.wait(1)[0]["to"] == ["ext@example.org"]
    assert portal.messages("ext@example.org") == []
