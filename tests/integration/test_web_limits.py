"""Limits of the portal's web side against the real daemon: request bodies
(small for every route but a signed-in compose), recipients a relay could
read another way, and session addresses that do not fit."""

import email
import email.policy
import hashlib
import os
import socket
import ssl
import time

import pytest

from test_web_compose import _first_id, _multipart, _original, _post_compose
from test_web_portal import PKI, Browser, Portal, _signup
from dbutil import db_connect

REPLY_CONF = """
reply = {{
  relay_host = "127.0.0.1";
  relay_port = {port};
  relay_tls = "none";
  max_attachments = 3;
  max_size = 2097152;
}};
"""


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


def _head_only(portal, path, length, cookie=None, body=None):
    """Sends a POST head announcing length body bytes and only 100 of
    them (or all of body); returns the portal's status line."""
    ctx = ssl.create_default_context(
        cafile=os.path.join(PKI, "ca-bundle.pem"))
    raw = socket.create_connection(("127.0.0.1", portal.web_port),
                                   timeout=20)
    s = ctx.wrap_socket(raw, server_hostname="127.0.0.1")
    ctype = "application/x-www-form-urlencoded"
    if body is not None:
        body, ctype = body
        length = len(body)
    head = (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Content-Type: {ctype}\r\nContent-Length: {length}\r\n")
    if cookie:
        head += f"Cookie: {cookie}\r\n"
    s.sendall(head.encode() + b"\r\n" + (body or b"a" * 100))
    got = b""
    while b"\r\n" not in got:
        chunk = s.recv(4096)
        if not chunk:
            break
        got += chunk
    s.close()
    return got.split(b"\r\n")[0].decode()


def _cookie(br):
    return "; ".join(f"{k}={v}" for k, v in br.cookies.items())


def test_anonymous_large_body_refused_before_reading(rportal, notify_sink):
    # The portal answers 413 with only 100 of the 1 MiB body sent: it
    # decided on the head and did not wait for (or buffer) the body.
    for path in ("/login", "/signup", "/forgot", "/compose"):
        assert " 413 " in _head_only(rportal, path, 1024 * 1024), path
    # A signed-in user gets the small limit everywhere but compose, and a
    # made-up session id gets nothing more.
    rportal.deliver("ext@example.org", _original())
    br = Browser(rportal)
    _signup(rportal, notify_sink, br)
    assert " 413 " in _head_only(rportal, "/settings/password", 1024 * 1024,
                                 _cookie(br))
    assert " 413 " in _head_only(rportal, "/compose", 1024 * 1024,
                                 "__Host-sid=" + "A" * 43)
    # The signed-in compose is read whole (then refused: no CSRF token).
    form = _multipart({"to": "bob@corp.example"}, [
        ("attachment", "a.bin", "application/octet-stream",
         b"a" * 1024 * 1024)])
    assert " 403 " in _head_only(rportal, "/compose", 0, _cookie(br),
                                 body=form)


def test_signed_in_compose_with_attachment(rportal, notify_sink, reply_sink):
    rportal.deliver("ext@example.org", _original())
    br = Browser(rportal)
    _signup(rportal, notify_sink, br)
    st, r, form = br.get("/compose")
    assert st == 200
    data = os.urandom(600 * 1024)
    st, r, page = _post_compose(br, form, {
        "to": "bob@corp.example", "subject": "big file", "body": "here"},
        files=[("attachment", "data.bin", "application/octet-stream",
                data)])
    assert st == 303, page
    got = reply_sink.wait(1)
    assert len(got) == 1
    m = email.message_from_bytes(got[0]["data"], policy=email.policy.SMTP)
    att = list(m.iter_attachments())
    assert att[0].get_payload(decode=True) == data


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
    db = db_connect(rportal.db)
    now = int(time.time())
    # The account exists (sessions of deleted accounts are dead anyway).
    db.execute("INSERT INTO portal_users (email, domain, state, created, "
               "generation) VALUES (?, 'example.org', 'active', ?, 7)",
               (longer, now))
    db.execute("INSERT INTO web_sessions (id_hash, email, stage, created, "
               "last_seen, user_gen) VALUES (?, ?, 1, ?, ?, 7)",
               (hashlib.sha256(sid.encode()).hexdigest(), longer, now, now))
    db.commit()
    db.close()
    other = Browser(rportal)
    other.cookies["__Host-sid"] = sid
    st, r, page = other.get("/inbox")
    assert st == 303 and r.getheader("Location") == "/login"
    assert "Set-Cookie" in dict(r.getheaders())
    rportal.d.wait_for("a session address longer than", timeout=20)
