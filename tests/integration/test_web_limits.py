"""Limits of the portal's web side against the real daemon: recipients a
relay could read another way, and session addresses that do not fit."""

import hashlib
import os
import re
import sqlite3
import time

import pytest

from conftest import Sink
from test_web_compose import _first_id, _original, _post_compose
from test_web_portal import Browser, Portal, _signup

REPLY_CONF = """
reply = {{
  relay_host = "127.0.0.1";
  relay_port = {port};
  relay_tls = "none";
  max_attachments = 3;
  max_size = 4096;
}};
"""


@pytest.fixture
def notify_sink():
    s = Sink()
    yield s
    s.stop()


@pytest.fixture
def reply_sink():
    s = Sink()
    yield s
    s.stop()


@pytest.fixture
def rportal(tmp_path, notify_sink, reply_sink):
    p = Portal(str(tmp_path), notify_sink,
               extra=REPLY_CONF.format(port=reply_sink.port))
    p.cli("property", "global", "set", "--name", "reply-allowed-domains",
          "--value", "example.com, corp.example")
    p.cli("property", "global", "set", "--name", "webmail-compose-enabled",
          "--value", "true")
    p.tmp = str(tmp_path)
    yield p
    p.stop()


@pytest.mark.parametrize("to", [
    '"victim@evil.test"@corp.example',
    "victim%evil.test@corp.example",
    "evil.test!victim@corp.example",
    "<@evil.test:victim@corp.example>",
    "Bob <@evil.test,@hop.test:victim@corp.example>",
])
def test_relay_routing_recipients_refused(rportal, notify_sink, reply_sink,
                                          to):
    rportal.deliver("ext@example.org", _original())
    br = Browser(rportal)
    _signup(rportal, notify_sink, br)
    mid = _first_id(br)
    st, r, form = br.get(f"/compose?reply={mid}")
    for fields in ({"reply": mid, "to": to},
                   {"reply": mid, "to": "bob@corp.example", "cc": to}):
        fields.update(subject="x", body="y")
        st, r, page = _post_compose(br, form, fields)
        assert st == 400, (to, page)
        assert 'id="compose-error"' in page
        assert "This is not a valid e-mail address:" in page
    # None of them reached the relay: the next good reply is the first.
    st, r, page = _post_compose(br, form, {
        "reply": mid, "to": "bob@corp.example", "subject": "ok",
        "body": "fine"})
    assert st == 303
    got = reply_sink.wait(1)
    assert len(got) == 1 and got[0]["to"] == ["bob@corp.example"]


def test_session_address_too_long_fails_closed(rportal, notify_sink):
    # A session row whose address is longer than any the web side holds:
    # it must not be cut to a prefix (which may be someone else's).
    rportal.deliver("ext@example.org", _original())
    br = Browser(rportal)
    _signup(rportal, notify_sink, br)
    assert br.get("/inbox")[0] == 200
    sid = "B" * 43
    longer = "x" * 2000 + "@example.org"
    db = sqlite3.connect(os.path.join(rportal.tmp, "portal.db"))
    now = int(time.time())
    db.execute("INSERT INTO web_sessions (id_hash, email, stage, created, "
               "last_seen) VALUES (?, ?, 1, ?, ?)",
               (hashlib.sha256(sid.encode()).hexdigest(), longer, now, now))
    db.commit()
    db.close()
    other = Browser(rportal)
    other.cookies["__Host-sid"] = sid
    st, r, page = other.get("/inbox")
    assert st == 303 and r.getheader("Location") == "/login"
    assert "Set-Cookie" in dict(r.getheaders())
    assert any("a session address longer than" in l
               for l in rportal.d.lines)
