"""winmail.dat is parsed in a sandboxed child process, not in the web
worker: a parser that tries to open a file is killed by its seccomp
filter, the page says something went wrong and still offers the
winmail.dat, and the portal keeps serving."""


import pytest

from test_web_parts import _links, _open, _tnef
from test_web_portal import Browser, Portal, _mail, _signup


@pytest.fixture
def escaping_portal(tmp_path, notify_sink, monkeypatch):
    # Test hook read only by the forked parser: it tries to open a file
    # before parsing, as an exploited parser would.
    monkeypatch.setenv("POSTERN_TEST_TNEF_HOOK", "escape")
    p = Portal(str(tmp_path), notify_sink)
    yield p
    p.stop()


def test_parser_leaving_its_sandbox_is_killed(escaping_portal, notify_sink):
    portal = escaping_portal
    m = _mail(subject="from Exchange")
    m.add_attachment(_tnef([("notes.txt", b"hello from Outlook\n")]),
                     maintype="application", subtype="ms-tnef",
                     filename="winmail.dat")
    portal.deliver("ext@example.org", m)
    br = Browser(portal)
    _signup(portal, notify_sink, br)
    mid, page = _open(br)
    assert 'id="tnef-error"' in page
    assert "notes.txt" not in _links(page)
    assert "winmail.dat" in _links(page)
    portal.d.wait_for(r"winmail.dat parser broke its sandbox and was killed")
    # The web worker itself is unharmed.
    st, r, page = br.get(f"/message?id={mid}")
    assert st == 200
    assert br.get("/inbox")[0] == 200
