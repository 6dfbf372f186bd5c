"""Replying to a PDF-OTP message ("Reply securely"): the PDF's link and
the password page lead to /pdf-reply/<token>, for the signed-in owner
only. The reply works after the message's content is gone (the row kept
the address, subject, Message-ID and References) and reaches the reply
relay addressed to the original sender, threaded; another user gets 404
for the page and for a forged post."""

import email
import email.policy
import re
import subprocess

import pytest

from test_pdf_otp import _db, _parts, _pdf_mail, _signup_with
from test_web_compose import REPLY_CONF, _post_compose
from test_web_portal import Browser, Portal, _mail


@pytest.fixture
def rportal(tmp_path, notify_sink, reply_sink):
    p = Portal(str(tmp_path), notify_sink,
               extra=REPLY_CONF.format(port=reply_sink.port))
    p.tmp = str(tmp_path)
    p.cli("property", "global", "set", "--name", "reply-allowed-domains",
          "--value", "example.com")
    yield p
    p.stop()


def test_pdf_reply_after_content_gone(rportal, notify_sink, reply_sink,
                                      tmp_path):
    m = _pdf_mail(subject="Merger plans")
    m["Message-ID"] = "<orig-1@example.com>"
    m["References"] = "<root-0@example.com>"
    rportal.deliver("ext@example.org", m)
    got = notify_sink.wait(1)[0]
    _, text, _, pdf = _parts(got["data"])
    token = re.search(r"/pdf/([0-9a-f]{24})", text).group(1)
    signup = re.search(r"https://\S+/signup\?token=[0-9a-f]{64}",
                       text).group(0)
    # Accepted by the relay: the content is gone before anyone replies.
    rportal.d.wait_for(r"pdfotp: PDF of message \d+ accepted")
    assert _db(rportal, "SELECT COUNT(*) FROM portal_messages") == [(0,)]

    br = Browser(rportal)
    _signup_with(br, rportal, signup)
    st, r, page = br.get(f"/pdf/{token}")
    assert st == 200 and f'href="/pdf-reply/{token}"' in page
    pw = re.search(r'data-pw="([a-z0-9]+)"', page).group(1)
    # The PDF's "Reply securely" line leads to the same page.
    path = str(tmp_path / "got.pdf")
    open(path, "wb").write(pdf)
    out = subprocess.run(["pdftotext", "-upw", pw, path, "-"],
                         capture_output=True, text=True, check=True).stdout
    assert f"/pdf-reply/{token}" in re.sub(r"\s", "", out)

    st, r, page = br.get(f"/pdf-reply/{token}")
    assert st == 200, page
    assert 'value="alice@example.com"' in page
    assert "Re: Merger plans" in page
    assert f'name="pdf" value="{token}"' in page
    st, r, data = _post_compose(br, page, {
        "pdf": token, "to": "alice@example.com",
        "subject": "Re: Merger plans", "body": "Received, thanks."})
    assert st == 303, data
    sent = reply_sink.wait(1)[0]
    assert sent["to"] == ["alice@example.com"]
    assert sent["from"] == "ext@example.org"
    msg = email.message_from_bytes(sent["data"], policy=email.policy.default)
    assert msg["In-Reply-To"] == "<orig-1@example.com>"
    assert msg["References"] == "<root-0@example.com> <orig-1@example.com>"
    assert "Received, thanks." in msg.get_body().get_content()


def test_pdf_reply_other_user_404(rportal, notify_sink, reply_sink):
    rportal.deliver("ext@example.org", _pdf_mail())
    rportal.d.wait_for(r"pdfotp: PDF of message \d+ accepted")
    token = _db(rportal, "SELECT token FROM portal_pdf")[0][0]

    rportal.deliver("other@example.org", _mail(subject="x",
                                               to="other@example.org"))
    msgs = notify_sink.wait(2)
    link = [re.search(r"https://\S+/signup\?token=[0-9a-f]{64}",
                      _parts(x["data"])[1]).group(0) for x in msgs
            if x["to"] == ["other@example.org"]][0]
    other = Browser(rportal)
    _signup_with(other, rportal, link)
    st, r, _ = other.get(f"/pdf-reply/{token}")
    assert st == 404
    st, r, _ = other.get(f"/pdf-reply/{token}x")
    assert st == 404
    # A forged post with another's token sends nothing.
    st, r, page = other.get("/pdf")
    assert st == 200 and token not in page
    st, r, _ = _post_compose(other, page, {
        "pdf": token, "to": "alice@example.com", "subject": "Re: x",
        "body": "forged"})
    assert st == 404
    assert reply_sink.messages == []
