"""The portal's HTTPS side against the real daemon: mail is delivered
through its SMTP ingest, the sign-up link comes from the notification the
outbox sends to an aiosmtpd sink, and every page is fetched over TLS with
http.client, verified against the test CA."""

import email
import email.policy
import http.client
import os
import re
import smtplib
import ssl
import subprocess
import urllib.parse
from email.message import EmailMessage

import pytest

from conftest import ROOT, BUILD, Daemon, bin_path, free_port
from dbutil import db_url

PKI = os.path.join(BUILD, "pki")
CSP = ("default-src 'none'; style-src 'self'; img-src 'self' data:; "
       "form-action 'self'; frame-src 'self'; frame-ancestors 'none'; "
       "base-uri 'none'")
PASSWORD = "correct horse battery staple 42"


def _pki():
    subprocess.run(["sh", os.path.join(ROOT, "tests/pki/mkpki.sh"), PKI],
                   check=True, capture_output=True)


class Portal:
    def __init__(self, tmp, sink, throttle_free=3, extra="", database=None):
        _pki()
        self.smtp_port = free_port()
        self.web_port = free_port()
        self.base = f"https://127.0.0.1:{self.web_port}"
        for d in ("messages", "spool"):
            os.makedirs(os.path.join(tmp, d), exist_ok=True)
        self.spool = os.path.join(tmp, "spool")
        self.db = database or db_url(tmp, "portal")
        self.conf = os.path.join(tmp, "portal.conf")
        with open(self.conf, "w") as f:
            f.write(f"""
node = "external-portal";
hostname = "portal.test";
database = "{self.db}";
store_dir = "{tmp}/messages";
spool_dir = "{tmp}/spool";
workers = 2;
smtp = {{
  listeners = ( {{ listen = "127.0.0.1:{self.smtp_port}"; }} );
  mynetworks = [ "127.0.0.1/32" ];
}};
notify = {{
  relay_host = "127.0.0.1";
  relay_port = {sink.port};
  relay_tls = "none";
  sender = "no-reply@portal.test";
  base_url = "{self.base}";
  retry_initial = 1;
}};
web = {{
  listen = "127.0.0.1:{self.web_port}";
  tls_cert = "{PKI}/portal-tls-chain.pem";
  tls_key = "{PKI}/portal-tls.key";
  argon2_t_cost = 1;
  argon2_m_cost_kib = 1024;
  throttle_free_attempts = {throttle_free};
  throttle_delay = 600;
  page_size = 5;
  product_name = "Example Secure Mail";
}};
{extra}
""")
        self.cli("domain", "add", "--domain", "relay-to-webmail.private")
        self.cli("property", "domain", "set", "--domain",
                 "relay-to-webmail.private", "--name",
                 "revert-rewrite-recipient", "--value", "true")
        self.d = Daemon([bin_path("external-portal"), "-c", self.conf],
                        ready=None)
        self.d.wait_for(r"ingest: ready$")
        self.d.wait_for(r"web: ready$")

    def cli(self, *args):
        r = subprocess.run([bin_path("postern-cli"), "-c", self.conf,
                            *args], capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        return r.stdout

    def deliver(self, rcpt, msg):
        local, dom = rcpt.split("@")
        if "X-Keep-CipherMail-To-Webmail" not in msg:
            msg["X-Keep-CipherMail-To-Webmail"] = "True"
        with smtplib.SMTP("127.0.0.1", self.smtp_port) as s:
            s.sendmail("sender@example.com",
                       [f"{local}={dom}@relay-to-webmail.private"],
                       msg.as_bytes(policy=email.policy.SMTP))

    def stop(self):
        self.d.stop()


class Browser:
    """A cookie-keeping HTTPS client that trusts only the test CA."""

    def __init__(self, portal):
        self.portal = portal
        self.ctx = ssl.create_default_context(
            cafile=os.path.join(PKI, "ca-bundle.pem"))
        self.cookies = {}

    def request(self, method, path, body=None, headers=None):
        c = http.client.HTTPSConnection("127.0.0.1", self.portal.web_port,
                                        context=self.ctx, timeout=30)
        h = dict(headers or {})
        if self.cookies:
            h["Cookie"] = "; ".join(f"{k}={v}"
                                    for k, v in self.cookies.items())
        c.request(method, path, body=body, headers=h)
        r = c.getresponse()
        data = r.read()
        for k, v in r.getheaders():
            if k.lower() == "set-cookie":
                name, val = v.split(";")[0].split("=", 1)
                if "Max-Age=0" in v or val == "":
                    self.cookies.pop(name, None)
                else:
                    self.cookies[name] = val
        c.close()
        return r.status, r, data

    def get(self, path):
        st, r, data = self.request("GET", path)
        return st, r, data.decode("utf-8", "replace")

    def csrf(self, page):
        m = re.search(r'name="csrf" value="([^"]+)"', page)
        assert m, page
        return m.group(1)

    def post(self, path, fields, csrf=True, from_page=None):
        fields = dict(fields)
        if csrf:
            page = from_page
            if page is None:
                st, r, page = self.get("/login")
                if st == 303:
                    page = self.get(r.getheader("Location"))[2]
            fields.setdefault("csrf", self.csrf(page))
        body = urllib.parse.urlencode(fields)
        st, r, data = self.request(
            "POST", path, body,
            {"Content-Type": "application/x-www-form-urlencoded"})
        return st, r, data.decode("utf-8", "replace")

    def follow(self, st, r):
        assert st == 303, (st, r.getheader("Location"))
        return self.get(r.getheader("Location"))


@pytest.fixture
def portal(tmp_path, notify_sink):
    p = Portal(str(tmp_path), notify_sink)
    yield p
    p.stop()


def _text_of(raw):
    m = email.message_from_bytes(raw, policy=email.policy.default)
    parts = [p for p in m.walk() if p.get_content_type() == "text/plain"]
    return parts[0].get_content()


def _mail(subject="Hello", body="Hi there, see https://example.com/x",
          sender="Alice <alice@example.com>", to="ext@example.org"):
    m = EmailMessage()
    m["From"] = sender
    m["To"] = to
    m["Subject"] = subject
    m["Date"] = "Mon, 02 Mar 2026 10:00:00 +0000"
    m.set_content(body)
    return m


def _signup(portal, sink, br, rcpt="ext@example.org", count=1):
    msgs = sink.wait(count)
    link = re.search(r"https://\S+/signup\?token=[0-9a-f]{64}",
                     _text_of(msgs[count - 1]["data"])).group(0)
    path = link[len(portal.base):]
    st, r, page = br.get(path)
    assert st == 200 and "Use at least 12 characters" in page
    st, r, page = br.post("/signup", {
        "token": re.search(r'name="token" value="([0-9a-f]+)"',
                           page).group(1),
        "password": PASSWORD, "confirm": PASSWORD}, from_page=page)
    assert st == 303 and r.getheader("Location") == "/inbox"
    return path


def test_security_headers_and_cookies(portal):
    br = Browser(portal)
    st, r, page = br.get("/login")
    assert st == 200
    assert r.getheader("Content-Security-Policy") == CSP
    assert r.getheader("X-Content-Type-Options") == "nosniff"
    assert r.getheader("Referrer-Policy") == "no-referrer"
    assert "max-age=" in r.getheader("Strict-Transport-Security")
    assert r.getheader("Cache-Control") == "no-store"
    cookie = r.getheader("Set-Cookie")
    assert cookie.startswith("__Host-pre=")
    for attr in ("Secure", "HttpOnly", "SameSite=Strict", "Path=/"):
        assert attr in cookie
    assert "<script" not in page and "style=" not in page
    st, r, css = br.get("/static/portal.css")
    assert st == 200 and r.getheader("Content-Type").startswith("text/css")
    assert r.getheader("X-Content-Type-Options") == "nosniff"


def test_tls_1_1_refused(portal):
    ctx = ssl.create_default_context(
        cafile=os.path.join(PKI, "ca-bundle.pem"))
    ctx.options &= ~ssl.OP_NO_TLSv1_1
    ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
    ctx.maximum_version = ssl.TLSVersion.TLSv1_1
    c = http.client.HTTPSConnection("127.0.0.1", portal.web_port,
                                    context=ctx, timeout=10)
    with pytest.raises((ssl.SSLError, ConnectionResetError)):
        c.request("GET", "/login")
        c.getresponse()


def test_signup_inbox_read_and_reused_link(portal, notify_sink):
    portal.deliver("ext@example.org", _mail(
        subject="=?UTF-8?B?R3LDvMOfZSBhdXMgS8O2bG4=?="))
    br = Browser(portal)
    path = _signup(portal, notify_sink, br)

    st, r, page = br.get("/inbox")
    assert st == 200 and r.getheader("Cache-Control") == "no-store"
    assert "Grüße aus Köln" in page
    assert 'class="unread"' in page
    assert "Alice &lt;alice@example.com&gt;" in page
    assert re.search(r'id="quota">Storage used: [0-9.]+ [KB ]+', page)
    assert "100.0 MB" in page       # default quota shown
    mid = re.search(r'href="/message\?id=(\d+)"', page).group(1)

    st, r, page = br.get(f"/message?id={mid}")
    assert st == 200 and "Grüße aus Köln" in page
    assert ('<a href="https://example.com/x" rel="noopener noreferrer"'
            in page)
    st, r, page = br.get("/inbox")
    assert 'class="unread"' not in page

    # The used link: no password form, the way to sign in; a new link
    # (through the outbox) is still one request away.
    other = Browser(portal)
    st, r, page = other.get(path)
    assert st == 410 and "already used" in page
    assert 'name="password"' not in page
    st, r, page = other.get("/newlink")
    st, r, page = other.post("/newlink", {"email": "ext@example.org"},
                             from_page=page)
    assert st == 200 and "new link is on its way" in page
    msgs = notify_sink.wait(2)
    assert "/reset?token=" in _text_of(msgs[1]["data"])


def test_weak_password_refused_and_token_survives(portal, notify_sink):
    portal.deliver("ext@example.org", _mail())
    msgs = notify_sink.wait(1)
    link = re.search(r"https://\S+/signup\?token=[0-9a-f]{64}",
                     _text_of(msgs[0]["data"])).group(0)
    br = Browser(portal)
    st, r, page = br.get(link[len(portal.base):])
    tok = re.search(r'name="token" value="([0-9a-f]+)"', page).group(1)
    st, r, page = br.post("/signup", {"token": tok, "password": "short",
                                      "confirm": "short"}, from_page=page)
    assert st == 200 and "too short" in page
    tok2 = re.search(r'name="token" value="([0-9a-f]+)"', page).group(1)
    assert tok2 != tok
    st, r, page = br.post("/signup", {"token": tok2, "password": PASSWORD,
                                      "confirm": PASSWORD}, from_page=page)
    assert st == 303


def test_expired_or_bogus_token(portal):
    br = Browser(portal)
    st, r, page = br.get("/signup?token=" + "ab" * 32)
    assert st == 410 and "no longer works" in page
    assert 'name="password"' not in page
    st, r, page = br.post("/signup", {"token": "ab" * 32,
                                      "password": PASSWORD,
                                      "confirm": PASSWORD}, from_page=page)
    assert st == 410 and "no longer works" in page
    st, r, page = br.get("/signup?token=<script>")
    assert st == 410 and "<script>" not in page


def test_wrong_password_generic_and_throttling(portal, notify_sink):
    portal.deliver("ext@example.org", _mail())
    _signup(portal, notify_sink, Browser(portal))
    br = Browser(portal)
    st, r, wrong = br.post("/login", {"email": "ext@example.org",
                                      "password": "not the password"})
    st2, r2, unknown = br.post("/login", {"email": "nobody@example.org",
                                          "password": "not the password"})
    assert st == st2 == 200
    assert "The e-mail address or password is wrong." in wrong
    assert "The e-mail address or password is wrong." in unknown
    assert "sid" not in "".join(br.cookies)
    br.post("/login", {"email": "ext@example.org", "password": "nope"})
    br.post("/login", {"email": "ext@example.org", "password": "nope2"})
    # Three failures: now even the right password waits.
    st, r, page = br.post("/login", {"email": "ext@example.org",
                                     "password": PASSWORD})
    assert st == 429 and "Too many failed attempts" in page
    assert "__Host-sid" not in br.cookies
    portal.d.wait_for(r"acct ext@example.org locked out after 3")


def test_csrf_logout_and_session_end(portal, notify_sink):
    portal.deliver("ext@example.org", _mail())
    br = Browser(portal)
    _signup(portal, notify_sink, br)
    st, r, page = br.get("/inbox")
    mid = re.search(r'href="/message\?id=(\d+)"', page).group(1)
    st, r, page = br.post("/message/delete", {"id": mid}, csrf=False)
    assert st == 403
    st, r, page = br.post("/message/delete", {"id": mid, "csrf": "x" * 43})
    assert st == 403
    st, r, page = br.get(f"/message?id={mid}")
    assert st == 200        # still there
    stolen = dict(br.cookies)
    st, r, page = br.post("/logout", {}, from_page=page)
    assert st == 200 and "signed out" in page
    thief = Browser(portal)
    thief.cookies = stolen
    st, r, page = thief.get("/inbox")
    assert st == 303 and r.getheader("Location") == "/login"


def test_other_users_message_is_404(portal, notify_sink):
    portal.deliver("ext@example.org", _mail(subject="for ext"))
    portal.deliver("two@example.org", _mail(subject="for two",
                                            to="two@example.org"))
    a, b = Browser(portal), Browser(portal)
    msgs = notify_sink.wait(2)
    for br, rcpt in ((a, "ext@example.org"), (b, "two@example.org")):
        m = [x for x in msgs if rcpt in x["to"]][0]
        link = re.search(r"https://\S+/signup\?token=[0-9a-f]{64}",
                         _text_of(m["data"])).group(0)
        st, r, page = br.get(link[len(portal.base):])
        tok = re.search(r'name="token" value="([0-9a-f]+)"', page).group(1)
        st, r, page = br.post("/signup", {"token": tok, "password": PASSWORD,
                                          "confirm": PASSWORD},
                              from_page=page)
        assert st == 303
    st, r, page = b.get("/inbox")
    bid = re.search(r'href="/message\?id=(\d+)"', page).group(1)
    for path in (f"/message?id={bid}", f"/message/eml?id={bid}",
                 f"/message/part?id={bid}&part=1",
                 f"/message/body?id={bid}"):
        st, r, page = a.get(path)
        assert st == 404, path
    st, r, page = a.post("/message/delete", {"id": bid},
                         from_page=a.get("/inbox")[2])
    assert st == 404
    st, r, page = b.get(f"/message?id={bid}")
    assert st == 200 and "for two" in page


def test_hostile_attachment_name_and_html_body(portal, notify_sink):
    m = EmailMessage()
    m["From"] = "Mallory <m@example.com>"
    m["To"] = "ext@example.org"
    m["Subject"] = "files"
    m.set_content("plain part")
    m.add_alternative('<p id="x">Hello<script>document.title="pwned"'
                      '</script><img src="https://evil.example/t.png">'
                      '<a href="javascript:alert(1)">j</a></p>',
                      subtype="html")
    m.add_attachment(b"MZ evil bytes", maintype="application",
                     subtype="octet-stream",
                     filename='../../etc/pass"wd\u202e\\X-Evil: 1.exe')
    m.add_attachment("<script>alert(1)</script>".encode(), maintype="text",
                     subtype="html", filename="päge.html")
    portal.deliver("ext@example.org", m)
    br = Browser(portal)
    _signup(portal, notify_sink, br)
    st, r, page = br.get("/inbox")
    mid = re.search(r'href="/message\?id=(\d+)"', page).group(1)
    assert "Has attachments" in page
    st, r, page = br.get(f"/message?id={mid}")
    assert '<iframe class="html-body" sandbox' in page
    assert "Remote images in this message were blocked" in page
    parts = re.findall(r'/message/part\?id=\d+&amp;part=(\d+)" download>'
                       r'([^<]*)<', page)
    assert len(parts) == 2, page
    names = {n: p for p, n in parts}
    evil = [n for n in names if n.endswith(".exe")][0]
    assert "/" not in evil and "\\" not in evil and "\u202e" not in evil

    st, r, raw = br.request("GET", f"/message/part?id={mid}&part="
                            f"{names[evil]}")
    assert st == 200 and raw == b"MZ evil bytes"
    cd = r.getheader("Content-Disposition")
    assert cd.startswith("attachment;") and "filename*=UTF-8''" in cd
    assert "\r" not in cd and "\n" not in cd and "/" not in cd
    assert r.getheader("Content-Type") == "application/octet-stream"
    assert [k for k, v in r.getheaders() if k.lower() == "x-evil"] == []

    html_name = [n for n in names if n.endswith(".html")][0]
    st, r, raw = br.request("GET", f"/message/part?id={mid}&part="
                            f"{names[html_name]}")
    assert r.getheader("Content-Type") == "application/octet-stream"
    assert "filename*=UTF-8''p%C3%A4ge.html" in \
        r.getheader("Content-Disposition")

    st, r, body = br.get(f"/message/body?id={mid}")
    assert st == 200 and "Hello" in body
    assert "<script" not in body and "javascript:" not in body
    assert "evil.example" not in body
    csp = r.getheader("Content-Security-Policy")
    assert "sandbox" in csp and "script-src" not in csp
    assert "default-src 'none'" in csp
    st, r, body = br.get(f"/message/body?id={mid}&images=1")
    assert "https://evil.example/t.png" in body

    st, r, raw = br.request("GET", f"/message/eml?id={mid}")
    assert st == 200 and b"Subject: files" in raw
    assert r.getheader("Content-Disposition").startswith("attachment;")


def test_pagination_and_delete_many(portal, notify_sink):
    for i in range(7):
        portal.deliver("ext@example.org", _mail(subject=f"msg {i}"))
    br = Browser(portal)
    # One invitation for the seven messages (then reminders at most daily).
    _signup(portal, notify_sink, br)
    st, r, page = br.get("/inbox")
    subjects = re.findall(r">msg (\d)</a>", page)
    assert subjects == ["6", "5", "4", "3", "2"]
    nxt = re.search(r'href="(/inbox\?folder=inbox&amp;before=\d+)"',
                    page).group(1).replace("&amp;", "&")
    st, r, page2 = br.get(nxt)
    assert re.findall(r">msg (\d)</a>", page2) == ["1", "0"]
    ids = re.findall(r'name="id" value="(\d+)"', page)[:2]
    body = urllib.parse.urlencode([("csrf", br.csrf(page))] +
                                  [("id", i) for i in ids])
    st, r, _ = br.request("POST", "/inbox/delete", body, {
        "Content-Type": "application/x-www-form-urlencoded"})
    assert st == 303
    st, r, page = br.get("/inbox")
    assert re.findall(r">msg (\d)</a>", page) == ["4", "3", "2", "1", "0"]


def _oathtool(secret):
    return subprocess.run(["oathtool", "--totp", "-b", secret],
                          capture_output=True, text=True,
                          check=True).stdout.strip()


def test_totp_enrol_signin_and_reset_keeps_2fa(portal, notify_sink):
    portal.deliver("ext@example.org", _mail())
    br = Browser(portal)
    _signup(portal, notify_sink, br)
    st, r, page = br.get("/settings")
    st, r, page = br.post("/settings/totp/start", {"current": PASSWORD},
                          from_page=page)
    assert st == 200 and "<svg" in page
    secret = re.search(r'id="totp-secret">([A-Z2-7]+)<', page).group(1)
    st, r, page = br.post("/settings/totp/enable", {"code": "000000"},
                          from_page=page)
    assert "Two-step verification is off." in page   # wrong code
    st, r, page = br.post("/settings/totp/start", {"current": PASSWORD},
                          from_page=page)
    secret = re.search(r'id="totp-secret">([A-Z2-7]+)<', page).group(1)
    code = _oathtool(secret)
    st, r, page = br.post("/settings/totp/enable", {"code": code},
                          from_page=page)
    assert "Recovery codes" in page
    codes = re.findall(r"<li>([A-Z2-9]{10})</li>", page)
    assert len(codes) == 10

    br2 = Browser(portal)
    st, r, page = br2.post("/login", {"email": "ext@example.org",
                                      "password": PASSWORD})
    assert st == 303 and r.getheader("Location") == "/login/totp"
    st, r, page = br2.get("/inbox")
    assert st == 303        # half signed-in sees nothing
    st, r, page = br2.get("/login/totp")
    st, r, page2 = br2.post("/login/totp", {"code": code}, from_page=page)
    assert "wrong or has already been used" in page2   # replay refused
    st, r, page = br2.post("/login/totp", {"code": codes[0]},
                           from_page=page2)
    assert st == 303 and r.getheader("Location") == "/inbox"
    st, r, page = br2.get("/inbox")
    assert st == 200

    # Forgot password: the mailbox stays, 2FA still applies.
    br3 = Browser(portal)
    st, r, page = br3.post("/forgot", {"email": "ext@example.org"})
    assert st == 200
    msgs = notify_sink.wait(2)
    link = re.search(r"https://\S+/reset\?token=[0-9a-f]{64}",
                     _text_of(msgs[1]["data"])).group(0)
    # Once sent, the reset mail (it holds a live token) is not left on disk.
    portal.d.wait_for(r"outbox: message to ext@example.org sent")
    left = [n for n in os.listdir(portal.spool) if n.startswith("reset.")]
    assert left == [], f"reset mail left in spool: {left}"
    st, r, page = br3.get(link[len(portal.base):])
    tok = re.search(r'name="token" value="([0-9a-f]+)"', page).group(1)
    newpw = "another long passphrase 77"
    st, r, page = br3.post("/reset", {"token": tok, "password": newpw,
                                      "confirm": newpw}, from_page=page)
    assert st == 303 and r.getheader("Location") == "/login/totp"
    # The old sessions ended with the new password.
    st, r, page = br2.get("/inbox")
    assert st == 303
    st, r, page = br3.get("/login/totp")
    st, r, page = br3.post("/login/totp", {"code": codes[1]}, from_page=page)
    st, r, page = br3.get("/inbox")
    assert st == 200 and "Hello" in page
