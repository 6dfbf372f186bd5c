"""The message page's rendering cache (web_mail_cache.c), against the real
daemon over HTTPS: a page read again is the same page; the cached message
stays another user's 404; a message deleted through the web, or removed
from the store behind the web process's back, is gone at once; a read
receipt that becomes due after the page was cached is still sent."""

import re

import pytest

from test_web_compose import REPLY_CONF, _original
from test_web_portal import Browser, Portal, _mail, _signup
from dbutil import db_connect


@pytest.fixture
def portal(tmp_path, notify_sink, reply_sink):
    p = Portal(str(tmp_path), notify_sink,
               extra=REPLY_CONF.format(port=reply_sink.port))
    p.cli("property", "global", "set", "--name", "reply-allowed-domains",
          "--value", "example.com")
    yield p
    p.stop()


def _message():
    m = _mail(subject="Cached figures", body="Secret line for one reader\n")
    m.add_attachment(b"x" * 5000, maintype="application",
                     subtype="octet-stream", filename="sheet.bin")
    return m


def _ids(br):
    st, r, page = br.get("/inbox")
    assert st == 200
    return re.findall(r'href="/message\?id=(\d+)"', page)


def test_cached_page_is_the_page_and_never_another_users(portal,
                                                         notify_sink):
    portal.deliver("ext@example.org", _message())
    a = Browser(portal)
    _signup(portal, notify_sink, a)
    mid = _ids(a)[0]
    st, r, first = a.get(f"/message?id={mid}")
    assert st == 200 and "Secret line for one reader" in first
    assert "sheet.bin" in first and "4.9 KB" in first
    st, r, again = a.get(f"/message?id={mid}")
    assert st == 200 and again == first

    # Another user, signed in, asks for the cached message: not found.
    portal.deliver("other@example.org", _mail(subject="for two"))
    b = Browser(portal)
    _signup(portal, notify_sink, b, rcpt="other@example.org", count=2)
    for path in (f"/message?id={mid}", f"/message?id={mid}&images=1"):
        st, r, page = b.get(path)
        assert st == 404, path
        assert "Secret line" not in page
    bid = _ids(b)[0]
    st, r, page = b.get(f"/message?id={bid}")
    assert st == 200 and "for two" in page and "Secret line" not in page


def test_deleted_message_is_gone_from_the_cache(portal, notify_sink):
    portal.deliver("ext@example.org", _message())
    portal.deliver("ext@example.org", _mail(subject="Second one",
                                            body="Removed behind its back"))
    a = Browser(portal)
    _signup(portal, notify_sink, a, count=1)
    ids = _ids(a)
    assert len(ids) == 2
    for mid in ids:
        for _ in range(2):
            assert a.get(f"/message?id={mid}")[0] == 200
    # Deleted through the web.
    st, r, page = a.post("/message/delete", {"id": ids[1]},
                         from_page=a.get(f"/message?id={ids[1]}")[2])
    assert st == 303
    st, r, page = a.get(f"/message?id={ids[1]}")
    assert st == 404 and "Secret line" not in page
    # Removed from the store by another process (as retention does).
    with db_connect(portal.db) as c:
        c.execute("DELETE FROM portal_messages WHERE id = ?",
                  (int(ids[0]),))
    st, r, page = a.get(f"/message?id={ids[0]}")
    assert st == 404 and "Removed behind" not in page


def test_receipt_due_after_the_page_was_cached(portal, notify_sink,
                                               reply_sink):
    portal.deliver("ext@example.org", _original())
    br = Browser(portal)
    _signup(portal, notify_sink, br)
    mid = _ids(br)[0]
    for _ in range(2):
        assert br.get(f"/message?id={mid}")[0] == 200
    portal.cli("property", "global", "set", "--name",
               "webmail-read-receipt", "--value", "true")
    assert br.get(f"/message?id={mid}")[0] == 200
    portal.d.wait_for(r"read receipt to sender@example.com sent")
    got = reply_sink.wait(1)
    assert got[0]["to"] == ["sender@example.com"]
