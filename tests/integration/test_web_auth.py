"""Sign-in hardening of the portal's web side, against the real daemon:
the second step's own throttle (however often the password is entered
again), foreign cookies, re-authentication for 2FA settings, the
password-min-length property, single-use recovery codes, used sign-up
links, and /forgot doing the same work for known and unknown addresses.
Valid TOTP codes come from oathtool."""

import http.client
import re
import statistics
import time
import urllib.parse

import pytest

from test_web_portal import (PASSWORD, Browser, Portal, _mail,  # noqa: F401
                             _oathtool, _signup, _text_of)

FAILED = "The code is wrong or has already been used."
LOCKED = "Too many wrong codes."


@pytest.fixture
def portal(tmp_path, notify_sink):  # noqa: F811
    p = Portal(str(tmp_path), notify_sink)
    yield p
    p.stop()


def _enrol(portal, br):
    """Turns 2FA on for the signed-in browser; returns secret, codes."""
    st, r, page = br.get("/settings")
    st, r, page = br.post("/settings/totp/start", {"current": PASSWORD},
                          from_page=page)
    secret = re.search(r'id="totp-secret">([A-Z2-7]+)<', page).group(1)
    st, r, page = br.post("/settings/totp/enable",
                          {"code": _oathtool(secret)}, from_page=page)
    codes = re.findall(r"<li>([A-Z2-9]{10})</li>", page)
    assert len(codes) == 10, page
    return secret, codes


def _user_with_2fa(portal, sink):
    portal.deliver("ext@example.org", _mail())
    br = Browser(portal)
    _signup(portal, sink, br)
    return _enrol(portal, br)


def _password_step(portal):
    br = Browser(portal)
    st, r, page = br.post("/login", {"email": "ext@example.org",
                                     "password": PASSWORD})
    assert st == 303 and r.getheader("Location") == "/login/totp", st
    return br


def _guesses(portal):
    return sum(1 for line in list(portal.d.lines)
               if "wrong 2FA code for ext@example.org" in line)


def test_totp_guesses_bounded_however_often_password_entered(
        portal, notify_sink):  # noqa: F811
    portal.cli("property", "global", "set", "--name", "totp-max-attempts",
               "--value", "4")
    secret, _ = _user_with_2fa(portal, notify_sink)
    tried = 0
    for _ in range(8):
        br = _password_step(portal)
        st, r, page = br.get("/login/totp")
        for _ in range(5):
            st, r, page = br.post("/login/totp", {"code": "000000"},
                                  from_page=page)
            tried += 1
            if st != 200:
                break
        # The half-signed session is over: the password is due again.
        assert st == 429 and LOCKED in page
        assert "__Host-sid" not in br.cookies
        st, r, _ = br.get("/login/totp")
        assert st == 303 and r.getheader("Location") == "/login"
    assert tried > 8
    # At most the configured number of codes were checked, in 8 logins.
    assert _guesses(portal) == 4
    # Even the right code waits now: the lock is the account's.
    br = _password_step(portal)
    st, r, page = br.get("/login/totp")
    st, r, page = br.post("/login/totp", {"code": _oathtool(secret)},
                          from_page=page)
    assert st == 429 and LOCKED in page
    st, r, _ = br.get("/inbox")
    assert st == 303 and r.getheader("Location") == "/login"


def test_half_signed_session_ends_after_max_failures(portal, notify_sink):  # noqa: F811
    secret, _ = _user_with_2fa(portal, notify_sink)
    br = _password_step(portal)
    st, r, page = br.get("/login/totp")
    for i in range(4):      # default totp-max-attempts: 5
        st, r, page = br.post("/login/totp", {"code": "000000"},
                              from_page=page)
        assert st == 200 and FAILED in page, i
    st, r, page = br.post("/login/totp", {"code": "000000"}, from_page=page)
    assert st == 429 and LOCKED in page
    assert "__Host-sid" not in br.cookies
    portal.d.wait_for(r"half-signed session of ext@example.org ended")


def test_full_sign_in_clears_the_2fa_counter(portal, notify_sink):  # noqa: F811
    secret, codes = _user_with_2fa(portal, notify_sink)
    for _ in range(2):
        br = _password_step(portal)
        st, r, page = br.get("/login/totp")
        for _ in range(4):
            st, r, page = br.post("/login/totp", {"code": "000000"},
                                  from_page=page)
            assert st == 200 and FAILED in page
        st, r, page = br.post("/login/totp", {"code": codes.pop()},
                              from_page=page)
        assert st == 303 and r.getheader("Location") == "/inbox"


def test_recovery_code_works_once(portal, notify_sink):  # noqa: F811
    secret, codes = _user_with_2fa(portal, notify_sink)
    br = _password_step(portal)
    st, r, page = br.get("/login/totp")
    st, r, page = br.post("/login/totp", {"code": codes[3]}, from_page=page)
    assert st == 303 and r.getheader("Location") == "/inbox"
    st, r, page = br.post("/logout", {}, from_page=br.get("/inbox")[2])
    assert st == 200
    br = _password_step(portal)
    st, r, page = br.get("/login/totp")
    st, r, page = br.post("/login/totp", {"code": codes[3]}, from_page=page)
    assert st == 200 and FAILED in page
    st, r, _ = br.get("/inbox")
    assert st == 303


def test_foreign_cookie_ignored_ours_strict(portal, notify_sink):  # noqa: F811
    br = Browser(portal)
    st, r, page = br.request("GET", "/login",
                             headers={"Cookie": "_tracker=a b"})
    assert st == 200
    portal.deliver("ext@example.org", _mail())
    _signup(portal, notify_sink, br)
    sid = br.cookies["__Host-sid"]
    bare = Browser(portal)      # sends only the Cookie header given here
    for cookie in (f"_tracker=a b; __Host-sid={sid}",
                   f'__Host-sid={sid}; x="open; =; y=\x7f'):
        st, r, page = bare.request("GET", "/inbox",
                                   headers={"Cookie": cookie})
        assert st == 200 and b"Hello" in page, cookie
    for cookie in ("__Host-sid=a b", f"__Host-sid={sid} x",
                   f"_tracker=a b; __Host-sid={sid}; __Host-sid={sid}"):
        bare.cookies.clear()
        st, r, page = bare.request("GET", "/inbox",
                                   headers={"Cookie": cookie})
        assert st == 400, cookie


@pytest.fixture
def lenient_portal(tmp_path, notify_sink):  # noqa: F811
    """Room for the wrong answers a test gives on purpose."""
    p = Portal(str(tmp_path), notify_sink, throttle_free=20)
    yield p
    p.stop()


def test_totp_settings_ask_for_password_and_code(lenient_portal,
                                                 notify_sink):  # noqa: F811
    portal = lenient_portal
    portal.cli("property", "global", "set", "--name", "totp-max-attempts",
               "--value", "20")
    portal.deliver("ext@example.org", _mail())
    br = Browser(portal)
    _signup(portal, notify_sink, br)
    st, r, page = br.get("/settings")
    assert 'id="f-enrol-current"' in page
    for fields in ({}, {"current": "not the password"}):
        st, r, page = br.post("/settings/totp/start", fields,
                              from_page=page)
        assert "The current password is wrong." in page
        assert "totp-secret" not in page
    st, r, page = br.post("/settings/totp/start", {"current": PASSWORD},
                          from_page=page)
    secret = re.search(r'id="totp-secret">([A-Z2-7]+)<', page).group(1)
    st, r, page = br.post("/settings/totp/enable",
                          {"code": _oathtool(secret)}, from_page=page)
    old = re.findall(r"<li>([A-Z2-9]{10})</li>", page)
    assert len(old) == 10

    # New recovery codes: password and code, both right.
    st, r, page = br.get("/settings")
    assert 'id="f-recovery-current"' in page and 'id="f-recovery-code"' \
        in page
    nxt = _oathtool_at(secret, "now + 30 seconds")
    for fields in ({}, {"current": PASSWORD},
                   {"current": PASSWORD, "code": "000000"},
                   {"current": "not the password", "code": nxt}):
        st, r, page = br.post("/settings/recovery", fields, from_page=page)
        assert "The password or the code is wrong." in page, fields
        assert not re.findall(r"<li>([A-Z2-9]{10})</li>", page)
    st, r, page = br.post("/settings/recovery",
                          {"current": PASSWORD, "code": nxt},
                          from_page=page)
    new = re.findall(r"<li>([A-Z2-9]{10})</li>", page)
    assert len(new) == 10 and not set(new) & set(old)

    # 2FA off: the same; a recovery code stands in for the app.
    st, r, page = br.get("/settings")
    for fields in ({"code": new[0]}, {"current": PASSWORD},
                   {"current": "not the password", "code": new[0]},
                   {"current": PASSWORD, "code": old[0]}):
        st, r, page = br.post("/settings/totp/disable", fields,
                              from_page=page)
        assert "The password or the code is wrong." in page, fields
        assert "Two-step verification is on." in page
    st, r, page = br.post("/settings/totp/disable",
                          {"current": PASSWORD, "code": new[0]},
                          from_page=page)
    assert "Two-step verification is off." in page
    assert 'id="f-enrol-current"' in page


def _oathtool_at(secret, when):
    import subprocess
    return subprocess.run(["oathtool", "--totp", "-b", "-N", when, secret],
                          capture_output=True, text=True,
                          check=True).stdout.strip()


def _signup_page(portal, sink, rcpt, n):
    msgs = sink.wait(n)
    m = [x for x in msgs if rcpt in x["to"]][0]
    link = re.search(r"https://\S+/signup\?token=[0-9a-f]{64}",
                     _text_of(m["data"])).group(0)
    br = Browser(portal)
    st, r, page = br.get(link[len(portal.base):])
    assert st == 200
    return br, page


def test_password_min_length_property(portal, notify_sink):  # noqa: F811
    portal.cli("domain", "add", "--domain", "example.org")
    portal.cli("property", "domain", "set", "--domain", "example.org",
               "--name", "password-min-length", "--value", "20")
    portal.deliver("ext@example.org", _mail())
    portal.deliver("two@example.net", _mail(to="two@example.net"))
    br, page = _signup_page(portal, notify_sink, "ext@example.org", 2)
    assert "Use at least 20 characters" in page
    tok = re.search(r'name="token" value="([0-9a-f]+)"', page).group(1)
    pw16 = "blue harbour kit"
    st, r, page = br.post("/signup", {"token": tok, "password": pw16,
                                      "confirm": pw16}, from_page=page)
    assert st == 200 and "too short" in page
    assert "Use at least 20 characters" in page
    br2, page2 = _signup_page(portal, notify_sink, "two@example.net", 2)
    assert "Use at least 12 characters" in page2
    tok = re.search(r'name="token" value="([0-9a-f]+)"', page2).group(1)
    st, r, _ = br2.post("/signup", {"token": tok, "password": pw16,
                                    "confirm": pw16}, from_page=page2)
    assert st == 303
    # The user level wins over the domain, on the settings page too.
    portal.cli("property", "user", "set", "--email", "two@example.net",
               "--name", "password-min-length", "--value", "18")
    st, r, page = br2.get("/settings")
    pw17 = "blue harbour kite!"[:17]
    st, r, page = br2.post("/settings/password", {
        "current": pw16, "password": pw17, "confirm": pw17},
        from_page=page)
    assert st == 200 and "too short" in page
    pw18 = "blue harbour kites"
    st, r, page = br2.post("/settings/password", {
        "current": pw16, "password": pw18, "confirm": pw18},
        from_page=page)
    assert st == 303


def test_used_signup_link_says_sign_in(portal, notify_sink):  # noqa: F811
    portal.deliver("ext@example.org", _mail())
    br = Browser(portal)
    path = _signup(portal, notify_sink, br)
    tok = path.split("token=")[1]
    # Signed in: straight to the inbox.
    st, r, page = br.get(path)
    assert st == 303 and r.getheader("Location") == "/inbox"
    other = Browser(portal)
    st, r, page = other.get(path)
    assert st == 410 and "already used" in page
    assert 'name="password"' not in page and 'href="/login"' in page
    st, r, page = other.post("/signup", {"token": tok, "password": PASSWORD,
                                         "confirm": PASSWORD},
                             from_page=other.get("/login")[2])
    assert st == 410 and "already used" in page
    # An unknown token is not "used": it offers a new link.
    st, r, page = other.get("/signup?token=" + "ab" * 32)
    assert st == 410 and "Send me a new link" in page
    assert "link was already used" not in page


class _KeepAlive:
    """One TLS connection for many requests, as a browser keeps it."""

    def __init__(self, portal, br):
        self.c = http.client.HTTPSConnection("127.0.0.1", portal.web_port,
                                             context=br.ctx, timeout=30)
        st, r, page = br.get("/forgot")
        self.cookie = "; ".join(f"{k}={v}" for k, v in br.cookies.items())
        self.csrf = br.csrf(page)

    def forgot(self, addr):
        body = urllib.parse.urlencode({"email": addr, "csrf": self.csrf})
        t = time.perf_counter()
        self.c.request("POST", "/forgot", body, {
            "Content-Type": "application/x-www-form-urlencoded",
            "Cookie": self.cookie})
        r = self.c.getresponse()
        data = r.read()
        t = time.perf_counter() - t
        assert r.status == 200 and b"on its way" in data
        return t


def test_forgot_costs_the_same_for_unknown_addresses(tmp_path, notify_sink):  # noqa: F811
    # Enough free attempts that no throttle decides the path taken.
    p = Portal(str(tmp_path), notify_sink, throttle_free=1000)
    try:
        p.deliver("ext@example.org", _mail())
        _signup(p, notify_sink, Browser(p))
        ka = _KeepAlive(p, Browser(p))
        for _ in range(5):
            ka.forgot("ext@example.org")
            ka.forgot("nobody@example.org")
        # Each known request is paired with the unknown one next to it, so
        # load from elsewhere on the machine hits both sides of a pair;
        # the median of the pair ratios is what is compared.
        ratios = []
        for _ in range(5):
            pairs = []
            for i in range(60):
                if i % 2:
                    k = ka.forgot("ext@example.org")
                    u = ka.forgot("nobody@example.org")
                else:
                    u = ka.forgot("nobody@example.org")
                    k = ka.forgot("ext@example.org")
                pairs.append(k / u)
            ratios.append(statistics.median(pairs))
            if abs(ratios[-1] - 1) <= 0.10:
                break
        assert abs(ratios[-1] - 1) <= 0.10, ratios
        # The known address did get its links.
        p.d.wait_for(r"new reset link for ext@example.org queued")
        # ...and the unknown one none (a full queue may drop requests of
        # either with a warning, which says nothing about the address).
        assert not any("link for nobody@example.org queued" in line
                       for line in list(p.d.lines))
    finally:
        p.stop()
