"""external-portal notifications show who sent the message: the sender's
display name and address by default (notification-show-sender), nothing of
it when the property is false, and a hostile display name reaches neither
part as markup nor as a new header line."""

import email
from email import policy

from test_portal_ingest import Portal, RELAY, message


def parts(got):
    m = email.message_from_bytes(got["data"], policy=policy.default)
    return (m, m.get_body(("plain",)).get_content(),
            m.get_body(("html",)).get_content())


def test_sender_shown_by_default(tmp_path, sink):
    p = Portal(tmp_path, notify_port=sink.port)
    try:
        p.send([f"bob=example.org@{RELAY}"], message("Quarterly numbers"))
        m, text, html = parts(sink.wait(1)[0])
        assert "Alice Sender <alice@example.com>" in text
        assert "Alice Sender &lt;alice@example.com&gt;" in html
        # The subject stays behind notification-show-subject.
        assert "Quarterly" not in text and "Quarterly" not in html
        assert "Quarterly" not in str(m["Subject"])
    finally:
        p.stop()


def test_sender_hidden_when_property_false(tmp_path, sink):
    p = Portal(tmp_path, notify_port=sink.port)
    try:
        p.cli("property", "global", "set", "--name",
              "notification-show-sender", "--value", "false")
        p.send([f"bob=example.org@{RELAY}"], message("Quarterly numbers"))
        got = sink.wait(1)[0]
        m, text, html = parts(got)
        for body in (text, html):
            assert "Alice" not in body
            assert "alice@example.com" not in body
        assert b"alice@example.com" not in got["data"]
    finally:
        p.stop()


def test_hostile_display_name(tmp_path, sink):
    p = Portal(tmp_path, notify_port=sink.port)
    try:
        p.cli("property", "global", "set", "--name",
              "notification-show-subject", "--value", "true")
        # An encoded CR LF, markup, a bidi override and a long name.
        name = (b"=?UTF-8?Q?=3Cscript=3Ealert(1)=3C/script=3E"
                b"=0D=0ABcc=3A_evil=40x.test_=E2=80=AE"
                + b"N" * 200 + b"?=")
        raw = message("=?UTF-8?Q?Hi=0D=0ABcc=3A_evil=40x.test?=").replace(
            b"From: Alice Sender <alice@example.com>",
            b"From: " + name + b" <eve@evil.test>")
        p.send([f"bob=example.org@{RELAY}"], raw)
        got = sink.wait(1)[0]
        m, text, html = parts(got)
        assert "<script>" not in html
        assert "\u202e" not in text and "\u202e" not in html
        assert m["Bcc"] is None
        line = [ln for ln in text.splitlines() if ln.startswith("From:")][0]
        assert line.endswith(" <eve@evil.test>")
        assert "scriptalert(1)/scriptBcc: evil@x.test" in line
        # The name is cut (and marked) well before 200 characters.
        assert "\u2026" in line and len(line) < 100
        assert "Hi" in str(m["Subject"]) and "\n" not in str(m["Subject"])
    finally:
        p.stop()
