"""Portal accounts against the real daemon: a deleted account's session
dies, sign-up invitations and reminders, no mailbox in the relay domain,
and one mailbox for every spelling of an address (Unicode case, A-label
or U-label domain)."""

import email.policy
import re
import smtplib

import pytest

from test_web_portal import Browser, Portal, _mail, _signup, _text_of

PASSWORD_FORM = "Use at least 12 characters"


@pytest.fixture
def portal(tmp_path, notify_sink):
    p = Portal(str(tmp_path), notify_sink)
    yield p
    p.stop()


def _links(msgs, rcpt):
    out = []
    for m in msgs:
        if rcpt not in m["to"]:
            continue
        found = re.search(r"https://\S+/signup\?token=[0-9a-f]{64}",
                          _text_of(m["data"]))
        if found:
            out.append(found.group(0))
    return out


def test_deleted_user_session_is_dead(portal, notify_sink):
    portal.deliver("ext@example.org", _mail())
    br = Browser(portal)
    _signup(portal, notify_sink, br)
    st, r, page = br.get("/inbox")
    assert st == 200
    assert "deleted" in portal.cli("user", "delete", "--email",
                                   "ext@example.org")
    st, r, page = br.get("/inbox")
    assert st == 303 and r.getheader("Location") == "/login"
    # A new account of the same address does not revive the old cookie.
    portal.deliver("ext@example.org", _mail(subject="again"))
    st, r, page = br.get("/inbox")
    assert st == 303 and r.getheader("Location") == "/login"


def test_one_invitation_and_first_link_stays_valid(portal, notify_sink):
    for i in range(3):
        portal.deliver("ext@example.org", _mail(subject=f"m{i}"))
    # The outbox sends in queue order: once the marker's invitation has
    # arrived, everything queued for ext before it has been sent too.
    portal.deliver("marker@example.org", _mail(to="marker@example.org"))
    msgs = notify_sink.wait(2)
    assert [m["to"] for m in msgs] == [["ext@example.org"],
                                          ["marker@example.org"]]
    br = Browser(portal)
    path = _signup(portal, notify_sink, br)
    assert path.startswith("/signup?token=")
    st, r, page = br.get("/inbox")
    assert st == 200 and "m2" in page


def test_reminder_links_do_not_revoke_each_other(portal, notify_sink):
    portal.cli("property", "global", "set", "--name",
               "signup-reminder-interval", "--value", "0")
    portal.deliver("ext@example.org", _mail(subject="one"))
    portal.deliver("ext@example.org", _mail(subject="two"))
    links = _links(notify_sink.wait(2), "ext@example.org")
    assert len(links) == 2 and links[0] != links[1]
    br = Browser(portal)
    for link in links:
        st, r, page = br.get(link[len(portal.base):])
        assert st == 200 and PASSWORD_FORM in page
    # The first (older) link still signs up.
    st, r, page = br.get(links[0][len(portal.base):])
    token = re.search(r'name="token" value="([0-9a-f]+)"', page).group(1)
    st, r, page = br.post("/signup", {"token": token, "password":
                                      "correct horse battery staple 42",
                                      "confirm":
                                      "correct horse battery staple 42"},
                          from_page=page)
    assert st == 303 and r.getheader("Location") == "/inbox"


def test_no_mailbox_in_relay_domain(portal, notify_sink):
    m = _mail()
    m["X-Keep-CipherMail-To-Webmail"] = "True"
    with smtplib.SMTP("127.0.0.1", portal.smtp_port) as s:
        with pytest.raises(smtplib.SMTPRecipientsRefused) as e:
            s.sendmail("sender@example.com",
                       ["victim=relay-to-webmail.private"
                        "@relay-to-webmail.private"],
                       m.as_bytes(policy=email.policy.SMTP))
    code, text = list(e.value.recipients.values())[0]
    assert code == 550 and b"5.1.1" in text and b"relay domain" in text
    assert "victim" not in portal.cli("user", "list")


def _deliver_utf8(portal, rcpt, subject):
    local, dom = rcpt.rsplit("@", 1)
    m = _mail(subject=subject, to="someone@example.org")
    m["X-Keep-CipherMail-To-Webmail"] = "True"
    with smtplib.SMTP("127.0.0.1", portal.smtp_port) as s:
        s.sendmail("sender@example.com",
                   [f"{local}={dom}@relay-to-webmail.private"],
                   m.as_bytes(policy=email.policy.SMTP),
                   mail_options=["SMTPUTF8"])


def test_unicode_spellings_are_one_mailbox(portal, notify_sink):
    _deliver_utf8(portal, "JÜRGEN@BÜCHER.EXAMPLE", "upper")
    _deliver_utf8(portal, "jürgen@bücher.example", "lower")
    _deliver_utf8(portal, "Jürgen@xn--bcher-kva.example", "a-label")
    users = portal.cli("user", "list")
    assert users.count("bücher.example") == 1, users
    out = portal.cli("user", "show", "--email", "JÜRGEN@xn--BCHER-kva.example")
    assert "email: jürgen@bücher.example" in out
    assert "messages: 3" in out
