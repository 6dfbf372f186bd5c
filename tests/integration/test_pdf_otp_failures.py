"""PDF Messenger's failure paths against the real portal, with short retry
settings: a message whose PDF cannot be built is tried 3 times, then the
original sender gets a plain report through the outbox and a log line says
why; a PDF mail the relay refuses for now, or a relay that is down, is
retried by the outbox until notify.give_up_after, then the same report.
The message is never dropped: its content stays on the portal, and it is
never Webmail."""

import email
import email.policy
import os
import re
import subprocess

import pytest

from conftest import Daemon, Sink, bin_path, free_port
from test_pdf_otp_pair import HoldingSink
from test_portal_ingest import PDF, RELAY, Portal, message

OWNER = "carol@example.org"
SENDER = "alice@example.com"
SHORT = "give_up_after = 10;"


def _start(portal, env=None):
    portal.daemon = Daemon([bin_path("external-portal"), "-c", portal.conf],
                           env=env)


def _deliver(portal, subject):
    portal.send([f"carol=example.org@{RELAY}"],
                message(subject, trigger=PDF,
                        body=b"Do not lose this, codeword sandpiper.\r\n"),
                frm=SENDER)
    rows = portal.messages(OWNER)
    assert len(rows) == 1 and rows[0][1] == "pdf-pending", rows
    return rows[0][0]


def _report(sink, subject):
    """The report to the original sender: plain text from the notification
    sender, naming the recipient, without the body."""
    got = [m for m in sink.wait(1) if m["to"] == [SENDER]]
    assert len(got) == 1, sink.messages
    assert got[0]["from"] == "no-reply@portal.test"
    m = email.message_from_bytes(got[0]["data"], policy=email.policy.default)
    assert m.get_content_type() == "text/plain"
    assert m["Subject"] == "Undelivered: secure message"
    text = m.get_content()
    assert f"<{OWNER}>" in text and subject in text, text
    assert b"sandpiper" not in got[0]["data"]
    return text


def _kept(portal, msg_id):
    """Never dropped: the row and the file are there, still not Webmail,
    and the PDF row says it failed."""
    rows = portal.rows("SELECT state, path FROM portal_messages WHERE id = ?",
                       (msg_id,))
    assert rows and rows[0][0] == "pdf-pending", rows
    assert b"sandpiper" in portal.file(rows[0][1])
    assert portal.rows("SELECT state, password FROM portal_pdf WHERE "
                       "msg_id = ?", (msg_id,)) == [("failed", None)]


def test_render_failure_retried_then_report(tmp_path):
    sink = Sink()
    portal = Portal(tmp_path, notify_port=sink.port, start=False)
    try:
        _start(portal, env={"POSTERN_TEST_PDF_HOOK": "render-fail"})
        msg_id = _deliver(portal, "quarterly plan")
        d = portal.daemon
        for n in (1, 2, 3):
            d.wait_for(rf"pdfotp: message {msg_id} for <{OWNER}>: attempt "
                       rf"{n} failed: .*nonexistent")
        d.wait_for(rf"pdfotp: message {msg_id} to <{OWNER}> from "
                   rf"<{SENDER}> not delivered as a PDF: the message could "
                   r"not be made into a PDF; sender notified")
        text = _report(sink, "quarterly plan")
        assert "could not be delivered as a PDF" in text
        d.wait_for(rf"outbox: message to {SENDER} sent")
        # No PDF mail ever went to the recipient, and no fourth try.
        assert not [m for m in sink.messages if m["to"] == [OWNER]]
        assert not re.search(r"attempt 4 failed", d.log())
        _kept(portal, msg_id)
    finally:
        portal.stop()
        sink.stop()


def test_relay_refuses_pdf_mail_retried_then_report(tmp_path):
    sink = HoldingSink()
    sink.handler.hold.add(OWNER)
    portal = Portal(tmp_path, notify_port=sink.port, extra_notify=SHORT)
    try:
        msg_id = _deliver(portal, "board notes")
        d = portal.daemon
        d.wait_for(rf"pdfotp: message {msg_id} for <{OWNER}> rendered")
        for n in (1, 2):
            d.wait_for(rf"outbox: mail to {OWNER} deferred \(attempt {n}\): "
                       r"4\.3\.0 held by the test")
        d.wait_for(rf"outbox: giving up on mail to {OWNER}")
        d.wait_for(rf"pdfotp: message {msg_id} to <{OWNER}> from "
                   rf"<{SENDER}> not delivered as a PDF: the PDF mail was "
                   r"not accepted .*; sender notified")
        _report(sink, "board notes")
        assert not [m for m in sink.messages if m["to"] == [OWNER]]
        _kept(portal, msg_id)
        # The PDF mail is gone from the spool; the password with it.
        assert not [f for f in os.listdir(os.path.join(portal.dir, "spool"))
                    if f.startswith("pdfmail-")]
    finally:
        portal.stop()
        sink.stop()


def test_relay_down_retried_then_report(tmp_path):
    port = free_port()
    portal = Portal(tmp_path, notify_port=port, extra_notify=SHORT)
    sink = None
    try:
        msg_id = _deliver(portal, "site visit")
        d = portal.daemon
        for n in (1, 2):
            d.wait_for(rf"outbox: mail to {OWNER} deferred \(attempt {n}\): "
                       r"connect to 127\.0\.0\.1 port \d+: Connection refused")
        d.wait_for(rf"pdfotp: message {msg_id} to <{OWNER}> from "
                   rf"<{SENDER}> not delivered as a PDF: the PDF mail was "
                   r"not accepted .*; sender notified")
        # The report waits in the outbox until the relay is back.
        d.wait_for(rf"outbox: mail to {SENDER} deferred")
        sink = Sink(port=port)
        _report(sink, "site visit")
        assert not [m for m in sink.messages if m["to"] == [OWNER]]
        _kept(portal, msg_id)
    finally:
        portal.stop()
        if sink is not None:
            sink.stop()


@pytest.mark.parametrize("value,ok", [("10", True), ("9", False)])
def test_give_up_after_floor(tmp_path, value, ok):
    portal = Portal(tmp_path, extra_notify=f"give_up_after = {value};",
                    start=False)
    r = subprocess.run([bin_path("external-portal"), "-c", portal.conf,
                        "--check"], capture_output=True, text=True)
    if ok:
        assert r.returncode == 0, r.stderr
    else:
        assert r.returncode == 1 and "notify.give_up_after" in r.stderr
