"""What a user sees in the inbox and the header, over real HTTPS: the
attachment mark is a drawn icon with a text alternative (no emoji, which
shows as a box where no emoji font exists), and the header's links and
the sign-out button share one baseline rule."""

import re

import pytest

from test_web_portal import Browser, Portal, _mail, _signup


@pytest.fixture
def portal(tmp_path, notify_sink):
    p = Portal(str(tmp_path), notify_sink)
    yield p
    p.stop()


def test_attachment_mark_is_an_icon_with_text(portal, notify_sink):
    m = _mail(subject="with file")
    m.add_attachment(b"data", maintype="application", subtype="pdf",
                     filename="a.pdf")
    portal.deliver("ext@example.org", m)
    br = Browser(portal)
    _signup(portal, notify_sink, br)
    st, r, page = br.get("/inbox")
    clip = re.search(r'<span class="clip" title="([^"]+)">(.*?)</span>'
                     r'</span>', page).group(2)
    assert "\U0001F4CE" not in page and "&#128206;" not in page
    assert re.search(r'<svg class="icon" aria-hidden="true"', clip)
    assert '<span class="skip">Has attachments' in clip or \
        re.search(r'<span class="skip">[^<]+$', clip)
    st, r, css = br.get("/static/portal.css")
    assert "nav li{display:flex;align-items:center}" in css
    assert ".top button.link{margin:0" in css
