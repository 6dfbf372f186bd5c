"""Parts the portal opens instead of only offering as downloads, over real
HTTPS: the files inside an Exchange winmail.dat (a TNEF stream generated
here), and attached messages (message/rfc822) shown like a message."""

import re
import struct
from email.message import EmailMessage

import pytest

from test_web_portal import Browser, Portal, _mail, _signup


@pytest.fixture
def portal(tmp_path, notify_sink):
    p = Portal(str(tmp_path), notify_sink)
    yield p
    p.stop()


def _tnef_attr(level, att, data):
    return (struct.pack("<BII", level, att, len(data)) + data +
            struct.pack("<H", sum(data) & 0xFFFF))


def _tnef(files):
    """A minimal TNEF stream (MS-OXTNEF): version, message class, then
    per attachment its rendering data, title and bytes."""
    out = struct.pack("<IH", 0x223E9F78, 0x0001)
    out += _tnef_attr(1, 0x00089006, struct.pack("<I", 0x00010000))
    out += _tnef_attr(1, 0x00069007, struct.pack("<II", 1252, 0))
    out += _tnef_attr(1, 0x00078008, b"IPM.Microsoft Mail.Note\x00")
    for name, data in files:
        out += _tnef_attr(2, 0x00069002,
                          struct.pack("<HIHHI", 1, 0xFFFFFFFF, 0, 0, 0))
        out += _tnef_attr(2, 0x00018010, name.encode() + b"\x00")
        out += _tnef_attr(2, 0x0006800F, data)
    return out


def _open(br):
    st, r, page = br.get("/inbox")
    mid = re.search(r'href="/message\?id=(\d+)"', page).group(1)
    st, r, page = br.get(f"/message?id={mid}")
    assert st == 200
    return mid, page


def _links(page):
    return {n: p for p, n in re.findall(
        r'/message/part\?id=\d+&amp;part=(\d+)(?:&amp;sub=[0-9.]+)?" '
        r'download>([^<]*)<', page)}


@pytest.mark.parametrize("ctype,name", [
    ("application/ms-tnef", "winmail.dat"),
    ("application/octet-stream", "WINMAIL.DAT"),
])
def test_winmail_dat_unpacked(portal, notify_sink, ctype, name):
    report = bytes(range(256)) * 40
    files = [("report.pdf", report), ("notes.txt", b"hello from Outlook\n")]
    m = _mail(subject="from Exchange")
    maintype, subtype = ctype.split("/")
    m.add_attachment(_tnef(files), maintype=maintype, subtype=subtype,
                     filename=name)
    portal.deliver("ext@example.org", m)
    br = Browser(portal)
    _signup(portal, notify_sink, br)
    mid, page = _open(br)
    links = _links(page)
    assert set(links) == {"report.pdf", "notes.txt"}, page
    for fname, data in files:
        st, r, raw = br.request(
            "GET", f"/message/part?id={mid}&part={links[fname]}")
        assert st == 200 and raw == data, fname
        assert f"filename*=UTF-8''{fname}" in \
            r.getheader("Content-Disposition")


def test_broken_winmail_dat_stays_downloadable(portal, notify_sink):
    m = _mail(subject="broken")
    m.add_attachment(b"\x78\x9f\x3e\x22garbage", maintype="application",
                     subtype="ms-tnef", filename="winmail.dat")
    portal.deliver("ext@example.org", m)
    br = Browser(portal)
    _signup(portal, notify_sink, br)
    mid, page = _open(br)
    assert "winmail.dat" in _links(page)


def test_attached_message_opens_in_page(portal, notify_sink):
    inner = EmailMessage()
    inner["From"] = "Carol <carol@example.net>"
    inner["To"] = "alice@example.com"
    inner["Subject"] = "The forwarded one"
    inner["Date"] = "Sun, 01 Mar 2026 09:00:00 +0000"
    inner.set_content("Inner text with https://example.net/doc")
    inner.add_attachment(b"inner attachment bytes", maintype="application",
                         subtype="octet-stream", filename="inner.bin")
    outer = _mail(subject="Fwd: forwarded", body="See attached.")
    outer.add_attachment(inner)
    portal.deliver("ext@example.org", outer)
    br = Browser(portal)
    _signup(portal, notify_sink, br)
    mid, page = _open(br)
    sub = re.search(r'href="/message\?id=\d+&amp;sub=(\d+)">Open</a>',
                    page).group(1)
    st, r, page = br.get(f"/message?id={mid}&sub={sub}")
    assert st == 200
    assert "<title>The forwarded one" in page
    assert "carol@example.net" in page
    assert "Inner text with" in page
    assert "2026-03-01 09:00" in page
    assert f'href="/message?id={mid}"' in page      # back to the outer one
    assert "/message/delete" not in page
    links = _links(page)
    st, r, raw = br.request(
        "GET", f"/message/part?id={mid}&part={links['inner.bin']}&sub={sub}")
    assert st == 200 and raw == b"inner attachment bytes"
    # A sub path that is not an attached message is 404.
    for bad in ("1", "99", "x", f"{sub}.9", "1.", ""):
        if bad == "":
            continue
        assert br.get(f"/message?id={mid}&sub={bad}")[0] == 404, bad
