"""Attachments served from the MIME part offsets the portal records at
delivery (the portal_parts table), against the real daemon over HTTPS:
byte for byte what the parsing path serves, for every encoding; parts it
does not record (an attached message) and messages stored before the
table existed are still served by the parse; rows go with their message;
another user's message stays 404."""

import os
import re
from email.message import EmailMessage

import pytest

from conftest import Daemon, bin_path
from test_web_portal import Browser, Portal, _mail, _signup
from dbutil import db_connect, sqlite_only

BIG = os.urandom(300 * 1024)            # streamed: above the inline limit
SMALL = os.urandom(100 * 1024)
QP_TEXT = ("Gr\u00fc\u00dfe = caf\u00e9, a long line " * 20 + "\n") * 30


@pytest.fixture
def portal(tmp_path, notify_sink):
    p = Portal(str(tmp_path), notify_sink)
    yield p
    p.stop()


def _message():
    inner = EmailMessage()
    inner["From"] = "Carol <carol@example.net>"
    inner["Subject"] = "inner"
    inner.set_content("inner text")
    m = _mail(subject="parts")
    m.add_alternative("<p>html body</p>", subtype="html")
    m.add_attachment(SMALL, maintype="application", subtype="octet-stream",
                     filename="small.bin")
    m.add_attachment(QP_TEXT, subtype="plain", cte="quoted-printable",
                     filename="notes.txt")
    m.add_attachment(b"seven bit text\r\nsecond line\r\n", maintype="text",
                     subtype="plain", cte="7bit", filename="seven.txt")
    m.add_attachment(BIG, maintype="application", subtype="octet-stream",
                     filename="big.bin")
    m.add_attachment(inner)
    return m


def _rows(portal, mid=None):
    with db_connect(portal.db) as c:
        if mid is None:
            return c.execute("SELECT COUNT(*) FROM portal_parts").fetchone()[0]
        return [r[0] for r in c.execute(
            "SELECT part FROM portal_parts WHERE msg = ? ORDER BY part",
            (int(mid),))]


def _forget(portal, mid):
    with db_connect(portal.db) as c:
        c.execute("DELETE FROM portal_parts WHERE msg = ?", (int(mid),))


def _open(br):
    st, r, page = br.get("/inbox")
    mid = re.search(r'href="/message\?id=(\d+)"', page).group(1)
    st, r, page = br.get(f"/message?id={mid}")
    assert st == 200
    links = dict(re.findall(r'/message/part\?id=\d+&amp;part=(\d+)" '
                            r'download>([^<]*)<', page))
    return mid, {name: int(p) for p, name in links.items()}


def _fetch_all(br, mid, links):
    out = {}
    for name, part in links.items():
        st, r, raw = br.request("GET",
                                f"/message/part?id={mid}&part={part}")
        assert st == 200, name
        out[name] = (raw, r.getheader("Content-Type"),
                     r.getheader("Content-Disposition"),
                     r.getheader("Content-Length"))
    return out


def test_recorded_parts_match_the_parse(portal, notify_sink):
    portal.deliver("ext@example.org", _message())
    br = Browser(portal)
    _signup(portal, notify_sink, br)
    mid, links = _open(br)
    assert {"small.bin", "notes.txt", "seven.txt", "big.bin",
            "inner.eml"} <= set(links), links
    # Every leaf part but the attached message has its row.
    recorded = _rows(portal, mid)
    assert links["inner.eml"] not in recorded
    for name in ("small.bin", "notes.txt", "seven.txt", "big.bin"):
        assert links[name] in recorded, name
    fast = _fetch_all(br, mid, links)
    assert fast["small.bin"][0] == SMALL
    assert fast["big.bin"][0] == BIG
    assert fast["notes.txt"][0] == QP_TEXT.replace("\n", "\r\n").encode()
    assert fast["seven.txt"][0] == b"seven bit text\r\nsecond line\r\n"
    # Small parts in one reply with their length, large ones too.
    assert fast["small.bin"][3] == str(len(SMALL))
    assert fast["big.bin"][3] == str(len(BIG))
    for name, (raw, ctype, cd, _) in fast.items():
        assert ctype == "application/octet-stream", name
        assert cd.startswith("attachment"), name
    # Without the rows the same requests parse the message: same answers.
    _forget(portal, mid)
    slow = _fetch_all(br, mid, links)
    for name in links:
        assert slow[name][:3] == fast[name][:3], name


@sqlite_only("a store made before the parts table; PostgreSQL databases "
             "start with it")
def test_message_stored_before_the_table(portal, notify_sink):
    portal.deliver("ext@example.org", _message())
    br = Browser(portal)
    _signup(portal, notify_sink, br)
    mid, links = _open(br)
    # The store as it was before: no parts table, and no schema versions
    # (a database made before they were kept), so none of what later
    # versions added either (the sealed_meta column, the listing's
    # index). The table is created again, empty, when the portal starts.
    portal.d.stop()
    with db_connect(portal.db) as c:
        c.execute("DROP TABLE portal_parts")
        c.execute("DROP TABLE postern_schema")
        c.execute("DROP INDEX portal_messages_list")
        c.execute("ALTER TABLE portal_messages DROP COLUMN sealed_meta")
    portal.d = Daemon([bin_path("external-portal"), "-c", portal.conf],
                      ready=None)
    portal.d.wait_for(r"web: ready$")
    assert _rows(portal) == 0
    got = _fetch_all(br, mid, links)
    assert got["small.bin"][0] == SMALL
    assert got["big.bin"][0] == BIG
    assert got["notes.txt"][0] == QP_TEXT.replace("\n", "\r\n").encode()


def test_rows_go_with_the_message_and_stay_private(portal, notify_sink):
    portal.deliver("ext@example.org", _message())
    br = Browser(portal)
    _signup(portal, notify_sink, br)
    mid, links = _open(br)
    assert _rows(portal, mid)
    # Another signed-in user asking for ext's recorded part: not found.
    portal.deliver("other@example.org", _mail(to="other@example.org"))
    other = Browser(portal)
    _signup(portal, notify_sink, other, rcpt="other@example.org", count=2)
    st, r, page = other.get(
        f"/message/part?id={mid}&part={links['small.bin']}")
    assert st == 404
    st, r, page = br.post("/message/delete", {"id": mid},
                          from_page=br.get(f"/message?id={mid}")[2])
    assert st == 303
    assert _rows(portal, mid) == []
