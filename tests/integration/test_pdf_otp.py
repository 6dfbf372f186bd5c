"""PDF Messenger with a one-time password against the real portal: a
message with the PDF-OTP trigger becomes an encrypted PDF mailed to the
recipient (an aiosmtpd sink) from the notification sender; the recipient
signs up with the link in that mail, reads the password at /pdf/<token>
and opens the PDF with qpdf and pdftotext. The message never shows in
Webmail, other users get 404, and the content is gone once the PDF mail
was accepted."""

import email
import email.policy
import os
import re
import subprocess

from test_web_portal import PASSWORD, Browser, Portal, _mail  # noqa: F401
import pytest
from dbutil import db_connect

BODY = "The merger closes on Friday, codeword bluefinch."


@pytest.fixture
def portal(tmp_path, notify_sink):  # noqa: F811
    p = Portal(str(tmp_path), notify_sink)
    p.tmp = str(tmp_path)
    yield p
    p.stop()


def _pdf_mail(subject="Merger plans", to="ext@example.org"):
    m = _mail(subject=subject, body=BODY, to=to)
    m.add_attachment(b"col1,col2\n1,2\n", maintype="text", subtype="csv",
                     filename="numbers.csv")
    m["X-Keep-CipherMail-To-PDF-OTP"] = "True"
    return m


def _parts(raw):
    m = email.message_from_bytes(raw, policy=email.policy.default)
    text = html = pdf = None
    for p in m.walk():
        ct = p.get_content_type()
        if ct == "text/plain":
            text = p.get_content()
        elif ct == "text/html":
            html = p.get_content()
        elif ct == "application/pdf":
            pdf = p.get_content()
    return m, text, html, pdf


def _db(portal, sql, args=()):
    c = db_connect(portal.db)
    try:
        return c.execute(sql, args).fetchall()
    finally:
        c.close()


def _signup_with(br, portal, link):
    st, r, page = br.get(link[len(portal.base):])
    assert st == 200, page
    st, r, page = br.post("/signup", {
        "token": re.search(r'name="token" value="([0-9a-f]+)"',
                           page).group(1),
        "password": PASSWORD, "confirm": PASSWORD}, from_page=page)
    assert st == 303


def test_pdf_otp_end_to_end(portal, notify_sink, tmp_path):
    portal.deliver("ext@example.org", _pdf_mail())
    got = notify_sink.wait(1)[0]
    assert got["to"] == ["ext@example.org"], portal.d.log()
    assert got["from"] == "no-reply@portal.test"
    raw = got["data"]
    m, text, html, pdf = _parts(raw)
    assert text and html and pdf
    # Neither the body nor (by default) the subject in clear.
    assert b"bluefinch" not in raw and b"Merger" not in raw
    assert "Merger" not in str(m["Subject"])
    link = re.search(r"https://\S+/pdf/([0-9a-f]{24})", text)
    assert link and link.group(0) in html
    token = link.group(1)
    signup = re.search(r"https://\S+/signup\?token=[0-9a-f]{64}", text)
    assert signup, text

    # The PDF needs a password, is R6, and nothing opens without it.
    path = str(tmp_path / "got.pdf")
    open(path, "wb").write(pdf)
    assert subprocess.run(["qpdf", "--requires-password", path]).returncode \
        == 0
    assert subprocess.run(["pdftotext", "-q", path, "-"],
                          capture_output=True).returncode != 0

    # Not signed in: the page sends to the sign-in.
    br = Browser(portal)
    st, r, _ = br.get(f"/pdf/{token}")
    assert st == 303 and r.getheader("Location") == "/login"
    _signup_with(br, portal, signup.group(0))
    st, r, page = br.get(f"/pdf/{token}")
    assert st == 200, page
    assert r.getheader("Cache-Control") and "no-store" in \
        r.getheader("Cache-Control")
    pw = re.search(r'data-pw="([a-z0-9]+)"', page).group(1)
    assert len(pw) >= 16
    assert "bluefinch" not in page and "alice@example.com" in page
    # Shown in groups, selectable as one.
    assert f"<span>{pw[:4]}</span><span>{pw[4:8]}</span>" in page
    enc = subprocess.run(["qpdf", f"--password={pw}", "--show-encryption",
                          path], capture_output=True, text=True).stdout
    assert "R = 6" in enc and "print high resolution: allowed" in enc
    assert "modify other: not allowed" in enc
    out = subprocess.run(["pdftotext", "-upw", pw, path, "-"],
                         capture_output=True, text=True, check=True).stdout
    assert "bluefinch" in out and "Merger plans" in out
    assert f"/pdf-reply/{token}" in re.sub(r"\s", "", out)
    det = subprocess.run(["pdfdetach", "-upw", pw, "-list", path],
                         capture_output=True, text=True, check=True).stdout
    assert "numbers.csv" in det

    # The list holds it; the inbox does not, nor does /message.
    st, r, page = br.get("/pdf")
    assert st == 200 and f"/pdf/{token}" in page
    st, r, page = br.get("/inbox")
    assert st == 200 and "Merger" not in page

    # Accepted by the relay: the content is gone, the password stays.
    rows = _db(portal, "SELECT state, msg_id, password FROM portal_pdf")
    assert rows == [("sent", None, pw)]
    assert _db(portal, "SELECT COUNT(*) FROM portal_messages") == [(0,)]
    assert not [f for f in os.listdir(os.path.join(portal.tmp, "messages"))
                if f.startswith("m-")]


def test_pdf_otp_never_in_webmail_and_other_users_404(portal, notify_sink):
    # ext@ is an active Webmail user already.
    portal.deliver("ext@example.org", _mail(subject="first"))
    note = notify_sink.wait(1)[0]
    signup = re.search(r"https://\S+/signup\?token=[0-9a-f]{64}",
                       _parts(note["data"])[1]).group(0)
    br = Browser(portal)
    _signup_with(br, portal, signup)

    # A relay that refuses the PDF mail keeps the content and the row
    # while the outbox retries (the relay is down for it here).
    notify_sink.handler.rcpt_replies["ext@example.org"] = \
        "451 4.3.0 try later"
    portal.deliver("ext@example.org", _pdf_mail(subject="PDF only"))
    portal.d.wait_for(r"pdfotp: message \d+ for <ext@example.org> rendered")
    portal.d.wait_for(r"outbox: mail to ext@example.org deferred")
    (msg_id,) = _db(portal, "SELECT id FROM portal_messages WHERE state = "
                    "'pdf-pending'")[0]
    st, r, page = br.get("/inbox")
    assert st == 200 and "PDF only" not in page
    for path in ("/message", "/message/eml", "/message/body"):
        st, r, _ = br.get(f"{path}?id={msg_id}")
        assert st == 404, path
    # /newlink for a fresh account does not open it either: there is no
    # Webmail message to open, only the PDF password (checked below).
    token = _db(portal, "SELECT token FROM portal_pdf")[0][0]
    st, r, page = br.get(f"/pdf/{token}")
    assert st == 200

    # Another user of the portal gets 404, as for a token that is not.
    portal.deliver("other@example.org", _mail(subject="x",
                                              to="other@example.org"))
    msgs = notify_sink.wait(2)
    link = [re.search(r"https://\S+/signup\?token=[0-9a-f]{64}",
                      _parts(x["data"])[1]).group(0) for x in msgs
            if x["to"] == ["other@example.org"]][0]
    other = Browser(portal)
    _signup_with(other, portal, link)
    st, r, _ = other.get(f"/pdf/{token}")
    assert st == 404
    st, r, _ = other.get("/pdf/" + "0" * 24)
    assert st == 404
    st, r, page = other.get("/pdf")
    assert st == 200 and token not in page
