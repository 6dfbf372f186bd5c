"""PDF Messenger with a one-time password through the whole pair, real
daemons on loopback: a message sent to internal-gw for an outside
recipient whose properties route it to PDF OTP (pdf-otp-enabled,
remote-portal-enabled) is tagged and relayed to external-portal, which
mails the encrypted PDF to the notification relay (an aiosmtpd sink).
The recipient signs up with the link in that mail, reads the password at
/pdf/<token>, and qpdf and pdftotext open the PDF with it. The message is
never in Webmail: not in the inbox, /message is 404 for it, also for a
new user who got in through /newlink ("send me a new link") while the
content was still on the portal; other users get 404 for the password
page."""

import email
import email.policy
import re
import smtplib
import subprocess
from email.message import EmailMessage

import pytest
from aiosmtpd.controller import Controller

from conftest import Sink, _Recorder, free_port
from gwutil import Gateway
from test_web_portal import PASSWORD, Browser, Portal
from dbutil import db_connect, db_url

G = ("global", "set", "--name")
PDF_PROPS = [
    G + ("remote-portal-enabled", "--value", "true"),
    G + ("pdf-otp-enabled", "--value", "true"),
    G + ("pdf-otp-only-if-mandatory", "--value", "false"),
]
BODY = "Board minutes in the PDF only, codeword marshwren."
SUBJECT = "Board minutes"
EXT, NEWBIE = "ext@example.org", "newbie@example.org"


class _Holding(_Recorder):
    """The sink's recorder, which answers 451 at the end of data to PDF
    mails for the addresses in hold (the relay refuses them for now)."""

    def __init__(self):
        super().__init__()
        self.hold = set()

    async def handle_DATA(self, server, session, envelope):
        data = envelope.original_content or envelope.content
        if b"application/pdf" in data and \
                self.hold & set(envelope.rcpt_tos):
            return "451 4.3.0 held by the test"
        return await super().handle_DATA(server, session, envelope)


class HoldingSink(Sink):
    def __init__(self):
        self.host = "127.0.0.1"
        self.port = free_port()
        self.handler = _Holding()
        self.controller = Controller(self.handler, hostname=self.host,
                                     port=self.port, decode_data=False,
                                     enable_SMTPUTF8=True)
        self.controller.start()

    def wait_for(self, pred, what, timeout=30):
        with self.handler.cond:
            ok = self.handler.cond.wait_for(
                lambda: [m for m in self.handler.messages if pred(m)],
                timeout)
        assert ok, f"no {what} in the sink: {self.handler.messages}"
        return ok[0]


@pytest.fixture
def pair(tmp_path):
    sink = HoldingSink()
    portal = Portal(str(tmp_path), sink)
    gw = Gateway(tmp_path, portal.smtp_port, free_port(), props=PDF_PROPS)
    yield gw, portal, sink
    gw.stop()
    portal.stop()
    sink.stop()


def _message():
    m = EmailMessage()
    m["From"] = "Alice <alice@example.com>"
    m["To"] = f"{EXT}, {NEWBIE}"
    m["Subject"] = SUBJECT
    m["Date"] = "Tue, 03 Mar 2026 09:00:00 +0000"
    m["Message-ID"] = "<minutes-1@example.com>"
    m.set_content(BODY + "\n")
    m.add_attachment(b"item,owner\nbudget,alice\n", maintype="text",
                     subtype="csv", filename="actions.csv")
    return m.as_bytes(policy=email.policy.SMTP)


def _parts(raw):
    m = email.message_from_bytes(raw, policy=email.policy.default)
    text = pdf = None
    for p in m.walk():
        if p.get_content_type() == "text/plain" and text is None:
            text = p.get_content()
        elif p.get_content_type() == "application/pdf":
            pdf = p.get_content()
    return m, text, pdf


def _is_pdf_mail(rcpt):
    return lambda m: m["to"] == [rcpt] and b"application/pdf" in m["data"]


def _signup(br, portal, link):
    st, r, page = br.get(link[len(portal.base):])
    assert st == 200, page
    st, r, page = br.post("/signup", {
        "token": re.search(r'name="token" value="([0-9a-f]+)"',
                           page).group(1),
        "password": PASSWORD, "confirm": PASSWORD}, from_page=page)
    assert st == 303 and r.getheader("Location") == "/inbox", page


def _password(br, token):
    st, r, page = br.get(f"/pdf/{token}")
    assert st == 200, page
    assert BODY not in page and "marshwren" not in page
    return re.search(r'data-pw="([a-z0-9]+)"', page).group(1)


def _not_in_webmail(br, msg_id):
    st, r, inbox = br.get("/inbox")
    assert st == 200 and SUBJECT not in inbox and "marshwren" not in inbox
    for path in ("/message", "/message/body", "/message/eml",
                 "/message/part"):
        st, r, page = br.get(f"{path}?id={msg_id}&part=1")
        assert st == 404, (path, page)
        assert "marshwren" not in page
    # Nor can Webmail delete it (the PDF would never be sent).
    st, r, page = br.post("/message/delete", {"id": str(msg_id)},
                          from_page=inbox)
    assert st == 404, page
    st, r, page = br.post("/inbox/delete", {"id": str(msg_id)},
                          from_page=inbox)
    assert st == 303, page


def test_gateway_portal_sink_pdf_otp(pair, tmp_path):
    gw, portal, sink = pair
    # The new user's PDF mail is held back by the relay, so its content is
    # still on the portal when that user gets in through /newlink.
    sink.handler.hold.add(NEWBIE)
    with smtplib.SMTP("127.0.0.1", gw.port, timeout=60) as s:
        s.sendmail("alice@example.com", [EXT, NEWBIE], _message())
    for rcpt in (EXT, NEWBIE):
        gw.daemon.wait_for(rf"to=<{re.escape(rcpt)}> decision=portal-pdf")

    # The PDF mail arrives from the notification sender, without the
    # body or the subject in clear.
    got = sink.wait_for(_is_pdf_mail(EXT), f"PDF mail for {EXT}")
    assert got["from"] == "no-reply@portal.test"
    assert b"marshwren" not in got["data"] and b"Board" not in got["data"]
    m, text, pdf = _parts(got["data"])
    assert SUBJECT not in str(m["Subject"])
    token = re.search(r"https://\S+/pdf/([0-9a-f]{24})", text).group(1)
    signup = re.search(r"https://\S+/signup\?token=[0-9a-f]{64}", text)
    assert signup, text
    msg_id = int(portal.d.wait_for(
        rf"pdfotp: message (\d+) for <{re.escape(EXT)}> rendered").group(1))

    # Sign up through the link in it; the password page shows the password.
    br = Browser(portal)
    _signup(br, portal, signup.group(0))
    pw = _password(br, token)
    assert len(pw) >= 16

    # qpdf and pdftotext open the PDF with it, and only with it.
    enc = str(tmp_path / "message.pdf")
    dec = str(tmp_path / "decrypted.pdf")
    open(enc, "wb").write(pdf)
    assert subprocess.run(["qpdf", "--requires-password", enc]).returncode \
        == 0
    assert subprocess.run(["qpdf", "--decrypt", "--password=wrong-password",
                           enc, dec], capture_output=True).returncode != 0
    subprocess.run(["qpdf", "--decrypt", f"--password={pw}", enc, dec],
                   check=True, capture_output=True)
    assert subprocess.run(["qpdf", "--requires-password", dec]).returncode \
        == 2
    for argv in (["pdftotext", "-upw", pw, enc, "-"],
                 ["pdftotext", dec, "-"]):
        out = subprocess.run(argv, capture_output=True, text=True,
                             check=True).stdout
        assert "marshwren" in out and SUBJECT in out, out
    det = subprocess.run(["pdfdetach", "-upw", pw, "-list", enc],
                         capture_output=True, text=True, check=True).stdout
    assert "actions.csv" in det

    # Not in Webmail, and /message is 404 for its id.
    _not_in_webmail(br, msg_id)
    st, r, page = br.get("/pdf")
    assert st == 200 and f"/pdf/{token}" in page

    # The new user: the PDF mail is held, the content is on the portal.
    portal.d.wait_for(rf"outbox: mail to {re.escape(NEWBIE)} deferred")
    rows = _rows(tmp_path, "SELECT id, state FROM portal_messages WHERE "
                 "owner = ?", (NEWBIE,))
    assert len(rows) == 1 and rows[0][1] == "pdf-pending", rows
    new_id = rows[0][0]
    (new_token,) = _rows(tmp_path, "SELECT token FROM portal_pdf WHERE "
                         "owner = ?", (NEWBIE,))[0]
    # "Send me a new link" for that address, as a new user would try.
    nb = Browser(portal)
    st, r, page = nb.get("/newlink")
    assert st == 200
    st, r, page = nb.post("/newlink", {"email": NEWBIE}, from_page=page)
    assert st == 200, page
    note = sink.wait_for(lambda x: x["to"] == [NEWBIE] and
                         b"application/pdf" not in x["data"],
                         f"new sign-up link for {NEWBIE}")
    assert b"marshwren" not in note["data"]
    link = re.search(r"https://\S+/signup\?token=[0-9a-f]{64}",
                     _parts(note["data"])[1]).group(0)
    _signup(nb, portal, link)
    # Signed in, the content still on the portal, and still not readable.
    _not_in_webmail(nb, new_id)
    assert _rows(tmp_path, "SELECT COUNT(*) FROM portal_messages WHERE "
                 "id = ?", (new_id,)) == [(1,)]

    # Other users get 404 for a password page that is not theirs, as for
    # a token that does not exist; their list does not show it.
    st, r, page = nb.get(f"/pdf/{token}")
    assert st == 404 and pw not in page
    st, r, page = nb.get("/pdf/" + "0" * 24)
    assert st == 404
    st, r, page = nb.get("/pdf")
    assert st == 200 and token not in page
    st, r, page = br.get(f"/pdf/{new_token}")
    assert st == 404

    # The relay takes the held mail at last: the new user's password
    # page opens its PDF.
    sink.handler.hold.clear()
    got = sink.wait_for(_is_pdf_mail(NEWBIE), f"PDF mail for {NEWBIE}")
    _, text, pdf = _parts(got["data"])
    assert f"/pdf/{new_token}" in text
    pw2 = _password(nb, new_token)
    assert pw2 != pw
    open(enc, "wb").write(pdf)
    out = subprocess.run(["pdftotext", "-upw", pw2, enc, "-"],
                         capture_output=True, text=True, check=True).stdout
    assert "marshwren" in out


def _rows(tmp_path, sql, args=()):
    c = db_connect(db_url(tmp_path, "portal"))
    try:
        return c.execute(sql, args).fetchall()
    finally:
        c.close()
