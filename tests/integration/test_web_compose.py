"""Webmail Messenger's outgoing side over real HTTPS: replies and new
messages reach the reply relay (an aiosmtpd sink) threaded and only for
reply-allowed-domains; oversize uploads are 413; read receipts go once;
winmail.dat attachments are unpacked; attached messages open in the page."""

import email
import email.policy
import os
import re
import ssl
import uuid

import pytest

from conftest import Sink
from test_web_portal import PKI, Browser, Portal, _mail, _signup

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
def rportal(tmp_path, notify_sink, reply_sink):
    p = Portal(str(tmp_path), notify_sink,
               extra=REPLY_CONF.format(port=reply_sink.port))
    p.cli("property", "global", "set", "--name", "reply-allowed-domains",
          "--value", "example.com, corp.example")
    yield p
    p.stop()


def _multipart(fields, files=()):
    b = "----postern" + uuid.uuid4().hex
    out = b""
    for k, v in fields.items():
        out += (f"--{b}\r\nContent-Disposition: form-data; name=\"{k}\""
                f"\r\n\r\n{v}\r\n").encode()
    for field, name, ctype, data in files:
        out += (f"--{b}\r\nContent-Disposition: form-data; name=\"{field}\";"
                f" filename=\"{name}\"\r\nContent-Type: {ctype}\r\n\r\n"
                ).encode() + data + b"\r\n"
    out += f"--{b}--\r\n".encode()
    return out, f"multipart/form-data; boundary={b}"


def _post_compose(br, page, fields, files=()):
    fields = dict(fields)
    fields["csrf"] = br.csrf(page)
    body, ctype = _multipart(fields, files)
    st, r, data = br.request("POST", "/compose", body,
                             {"Content-Type": ctype})
    return st, r, data.decode("utf-8", "replace")


def _first_id(br):
    st, r, page = br.get("/inbox")
    return re.search(r'href="/message\?id=(\d+)"', page).group(1)


def _original(msgid="<orig-1@example.com>"):
    m = _mail(subject="Quarterly figures",
              body="Line one\nLine two\n")
    m["Message-ID"] = msgid
    m["References"] = "<older-0@example.com>"
    return m


def test_reply_threads_and_reaches_reply_relay(rportal, notify_sink,
                                               reply_sink):
    rportal.deliver("ext@example.org", _original())
    br = Browser(rportal)
    _signup(rportal, notify_sink, br)
    mid = _first_id(br)
    st, r, page = br.get(f"/message?id={mid}")
    assert f'href="/compose?reply={mid}"' in page
    # Compose is off by default: no link, and the page is 404.
    assert 'href="/compose"' not in page
    assert br.get("/compose")[0] == 404

    st, r, form = br.get(f"/compose?reply={mid}")
    assert st == 200 and 'enctype="multipart/form-data"' in form
    assert 'value="alice@example.com"' in form
    assert 'value="Re: Quarterly figures"' in form
    assert "&gt; Line one" in form

    st, r, page = _post_compose(br, form, {
        "reply": mid, "to": "alice@example.com", "cc": "",
        "subject": "Re: Quarterly figures",
        "body": "Thanks, gr\u00fc\u00dfe!\r\n\r\n> Line one\r\n"},
        files=[("attachment", "notes.txt", "text/plain", b"my notes\n")])
    assert st == 303, page
    assert r.getheader("Location") == "/inbox?folder=sent&sent=1"
    got = reply_sink.wait(1)[0]
    assert got["from"] == "ext@example.org"
    assert got["to"] == ["alice@example.com"]
    m = email.message_from_bytes(got["data"], policy=email.policy.default)
    assert m["In-Reply-To"] == "<orig-1@example.com>"
    assert m["References"].split() == ["<older-0@example.com>",
                                       "<orig-1@example.com>"]
    assert m["From"] == "ext@example.org"
    assert m["Message-ID"] and m["Date"]
    body = m.get_body(("plain",)).get_content()
    assert "Thanks, gr\u00fc\u00dfe!" in body
    att = [p for p in m.iter_attachments()]
    assert [(p.get_filename(), p.get_content()) for p in att] == \
        [("notes.txt", "my notes\n")]

    # The spool file goes with the last outbox row that needs it.
    rportal.d.wait_for(r"outbox: reply to alice@example.com sent")
    spool = os.path.join(os.path.dirname(rportal.conf), "spool")
    assert [f for f in os.listdir(spool) if f.startswith("reply.")] == []

    # The Sent folder keeps a copy, readable like any message.
    st, r, page = br.follow(st, r)
    assert "Your reply has been sent." in page
    assert "Re: Quarterly figures" in page
    assert 'class="unread"' not in page
    sid = re.search(r'href="/message\?id=(\d+)"', page).group(1)
    st, r, page = br.get(f"/message?id={sid}")
    assert st == 200 and "Thanks, gr\u00fc\u00dfe!" in page
    assert "/compose?reply=" not in page      # no reply to a sent copy
    assert br.get(f"/compose?reply={sid}")[0] == 404
    st, r, page = _post_compose(br, form, {
        "reply": sid, "to": "alice@example.com", "subject": "x",
        "body": "y"})
    assert st == 404


def test_recipient_outside_allowed_domains_refused(rportal, notify_sink,
                                                   reply_sink):
    rportal.deliver("ext@example.org", _original())
    br = Browser(rportal)
    _signup(rportal, notify_sink, br)
    mid = _first_id(br)
    st, r, form = br.get(f"/compose?reply={mid}")
    for to, cc in (("attacker@evil.example", ""),
                   ("alice@example.com", "spam@world.example"),
                   ("not an address", "")):
        st, r, page = _post_compose(br, form, {
            "reply": mid, "to": to, "cc": cc, "subject": "x", "body": "y"})
        assert st == 400, (to, cc)
        assert 'id="compose-error"' in page
    st, r, page = _post_compose(br, form, {
        "reply": mid, "to": "attacker@evil.example", "subject": "x",
        "body": "y"})
    assert "You can only write to addresses in these domains:" in page
    assert re.search(r"domains: example\.com, ?corp\.example<", page)
    # Nothing was queued: a later allowed reply is the first to arrive.
    st, r, page = _post_compose(br, form, {
        "reply": mid, "to": "bob@corp.example", "subject": "ok",
        "body": "fine"})
    assert st == 303
    got = reply_sink.wait(1)
    assert len(got) == 1 and got[0]["to"] == ["bob@corp.example"]
    st, r, page = br.get("/inbox?folder=sent")
    assert len(re.findall(r'href="/message\?id=\d+"', page)) == 1


def test_compose_enabled_and_oversize_attachment(rportal, notify_sink,
                                                 reply_sink):
    rportal.cli("property", "global", "set", "--name",
                "webmail-compose-enabled", "--value", "true")
    rportal.deliver("ext@example.org", _mail())
    br = Browser(rportal)
    _signup(rportal, notify_sink, br)
    st, r, page = br.get("/inbox")
    assert 'href="/compose"' in page
    st, r, form = br.get("/compose")
    assert st == 200
    st, r, page = _post_compose(br, form, {
        "to": "alice@example.com", "subject": "big", "body": "b"},
        files=[("attachment", "big.bin", "application/octet-stream",
                b"x" * 5000)])
    assert st == 413
    st, r, page = _post_compose(br, form, {
        "to": "alice@example.com", "subject": "many", "body": "b"},
        files=[("attachment", f"f{i}.txt", "text/plain", b"a")
               for i in range(4)])
    assert st == 413
    st, r, page = _post_compose(br, form, {
        "to": "Alice <alice@example.com>", "subject": "New topic",
        "body": "hello"})
    assert st == 303
    got = reply_sink.wait(1)
    assert len(got) == 1
    m = email.message_from_bytes(got[0]["data"], policy=email.policy.default)
    assert m["Subject"] == "New topic" and m["In-Reply-To"] is None
    # Without CSRF nothing is sent.
    body, ctype = _multipart({"to": "alice@example.com", "body": "x"})
    st, r, data = br.request("POST", "/compose", body,
                             {"Content-Type": ctype})
    assert st == 403


def test_reply_disabled_is_404(rportal, notify_sink):
    rportal.cli("property", "global", "set", "--name",
                "webmail-reply-enabled", "--value", "false")
    rportal.deliver("ext@example.org", _original())
    br = Browser(rportal)
    _signup(rportal, notify_sink, br)
    mid = _first_id(br)
    st, r, page = br.get(f"/message?id={mid}")
    assert "/compose?reply=" not in page
    assert br.get(f"/compose?reply={mid}")[0] == 404


def test_no_reply_relay_no_reply(tmp_path, notify_sink):
    p = Portal(str(tmp_path), notify_sink)
    try:
        p.deliver("ext@example.org", _original())
        br = Browser(p)
        _signup(p, notify_sink, br)
        mid = _first_id(br)
        assert "/compose?reply=" not in br.get(f"/message?id={mid}")[2]
        assert br.get(f"/compose?reply={mid}")[0] == 404
    finally:
        p.stop()


def test_read_receipt_sent_once(rportal, notify_sink, reply_sink):
    rportal.cli("property", "global", "set", "--name",
                "webmail-read-receipt", "--value", "true")
    rportal.deliver("ext@example.org", _original())
    br = Browser(rportal)
    _signup(rportal, notify_sink, br)
    mid = _first_id(br)
    for _ in range(3):
        assert br.get(f"/message?id={mid}")[0] == 200
    rportal.d.wait_for(r"read receipt to sender@example.com sent")
    got = reply_sink.wait(1)
    assert got[0]["from"] in ("", "<>")     # null sender (RFC 8098)
    assert got[0]["to"] == ["sender@example.com"]
    m = email.message_from_bytes(got[0]["data"], policy=email.policy.default)
    assert m.get_content_type() == "multipart/report"
    assert m.get_param("report-type") == "disposition-notification"
    assert m["Subject"] == "Read: Quarterly figures"
    dn = [p for p in m.walk()
          if p.get_content_type() == "message/disposition-notification"]
    raw = dn[0].as_bytes()
    assert b"Original-Message-ID: <orig-1@example.com>" in raw
    assert b"Disposition: manual-action/MDN-sent-automatically; displayed" \
        in raw
    # A second message proves the outbox is past the first one's reads.
    rportal.deliver("ext@example.org", _original("<orig-2@example.com>"))
    notify_sink.wait(2)
    mid2 = _first_id(br)
    assert mid2 != mid
    br.get(f"/message?id={mid2}")
    got = reply_sink.wait(2)
    assert len(got) == 2
    ids = [email.message_from_bytes(g["data"]).as_string().count(
        "orig-1@example.com") > 0 for g in got]
    assert ids == [True, False]


def test_read_receipt_off_by_default(rportal, notify_sink, reply_sink):
    rportal.deliver("ext@example.org", _original())
    br = Browser(rportal)
    _signup(rportal, notify_sink, br)
    mid = _first_id(br)
    br.get(f"/message?id={mid}")
    # A reply after the read is the first mail the relay sees.
    st, r, form = br.get(f"/compose?reply={mid}")
    _post_compose(br, form, {"reply": mid, "to": "alice@example.com",
                             "subject": "s", "body": "b"})
    got = reply_sink.wait(1)
    assert got[0]["from"] == "ext@example.org"


def test_reply_relay_starttls_verified(tmp_path, notify_sink):
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(os.path.join(PKI, "portal-tls-chain.pem"),
                        os.path.join(PKI, "portal-tls.key"))
    tls_sink = Sink(tls_context=ctx, require_starttls=True)
    conf = REPLY_CONF.format(port=tls_sink.port).replace(
        'relay_tls = "none";',
        f'relay_tls = "encrypt"; ca_file = "{PKI}/ca-bundle.pem";')
    p = Portal(str(tmp_path), notify_sink, extra=conf)
    try:
        p.cli("property", "global", "set", "--name",
              "reply-allowed-domains", "--value", "example.com")
        p.deliver("ext@example.org", _original())
        br = Browser(p)
        _signup(p, notify_sink, br)
        mid = _first_id(br)
        st, r, form = br.get(f"/compose?reply={mid}")
        st, r, page = _post_compose(br, form, {
            "reply": mid, "to": "alice@example.com", "subject": "tls",
            "body": "over STARTTLS"})
        assert st == 303
        got = tls_sink.wait(1)
        assert b"over STARTTLS" in got[0]["data"]
    finally:
        p.stop()
        tls_sink.stop()
