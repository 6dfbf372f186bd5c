"""Two portals on one PostgreSQL database, as behind a load balancer: each
with its own store and spool directory, both running ingest, outbox,
retention and web. Mail that came in through one is read through the
other with the same session cookie (its bytes come from the database);
every queued notification is sent exactly once; every expired message is
removed once. Real daemons, smtplib, an aiosmtpd notify sink, HTTPS with
http.client."""

import os
import re
import time

import pytest

import dbutil
from conftest import Sink, free_port
from hautil import HaPortal, blob, pgdb, poll, rows, trigger_mail  # noqa: F401
from test_web_portal import PASSWORD, Browser, _oathtool, _signup

DAY = 86400


@pytest.fixture
def pair(tmp_path, pgdb, notify_sink):
    made = []

    def make(extra=""):
        a = HaPortal(tmp_path, "a", pgdb, notify_sink.port, extra=extra,
                     setup=True)
        made.append(a)
        b = HaPortal(tmp_path, "b", pgdb, notify_sink.port, extra=extra)
        made.append(b)
        return a, b
    yield make
    for p in made:
        p.stop()


def test_mail_in_through_a_read_through_b_with_a_cookie(pair, notify_sink):
    a, b = pair()
    payload = os.urandom(3000)
    a.deliver("ext@example.org", trigger_mail(
        "Through A", "The body that came in through A.",
        attachment=("figures.bin", payload)))
    path = rows(a.db, "SELECT path FROM portal_messages WHERE owner = ?",
                ("ext@example.org",))[0][0]
    assert os.path.exists(os.path.join(a.store, path))
    assert not os.path.exists(os.path.join(b.store, path))

    # Signed up through A's web (the link came from whichever node's
    # outbox took the notification).
    br_a = Browser(a)
    _signup(a, notify_sink, br_a)
    assert "__Host-sid" in br_a.cookies
    st, r, page = br_a.get("/inbox")
    assert st == 200 and "Through A" in page

    # The same cookie on B.
    br_b = Browser(b)
    br_b.cookies = dict(br_a.cookies)
    st, r, page = br_b.get("/inbox")
    assert st == 200, page
    assert "Through A" in page
    mid = re.search(r'href="/message\?id=(\d+)"', page).group(1)
    st, r, page = br_b.get(f"/message?id={mid}")
    assert st == 200 and "The body that came in through A." in page
    part = re.search(r'/message/part\?id=\d+&amp;part=(\d+)" download>',
                     page).group(1)
    st, r, raw = br_b.request("GET", f"/message/part?id={mid}&part={part}")
    assert st == 200
    assert raw == payload
    assert "figures.bin" in r.getheader("Content-Disposition")
    # B served it from the database into its own cache directory.
    with open(os.path.join(b.store, path), "rb") as f:
        assert f.read() == blob(a.db, path)
    # A form posted on B with the session's CSRF token works, and
    # signing out on B ends the session on A too.
    st, r, page = br_b.post("/logout", {}, from_page=page)
    assert st == 200 and "signed out" in page
    st, r, page = br_a.get("/inbox")
    assert st == 303 and r.getheader("Location") == "/login"


def test_outbox_sent_once_across_two_portals(tmp_path, pgdb):
    # The relay is down while the notifications are queued, so both
    # nodes hold due rows when it comes up and race for each.
    relay_port = free_port()
    a = HaPortal(tmp_path, "a", pgdb, relay_port, setup=True)
    b = HaPortal(tmp_path, "b", pgdb, relay_port)
    sink = None
    try:
        rcpts = [f"user{i}@example.org" for i in range(10)]
        for i, rcpt in enumerate(rcpts):
            (a if i % 2 else b).deliver(rcpt, trigger_mail(
                f"note {i}", "Hello.", to=rcpt))
        assert rows(pgdb, "SELECT COUNT(*) FROM portal_outbox") == [(10,)]
        for p in (a, b):
            p.d.wait_for(r"outbox: mail to \S+ deferred \(attempt 1\)")
        sink = Sink(port=relay_port)
        sink.wait(10, timeout=90)
        # Sent rows are deleted: once none is left, none can be sent again.
        poll("an empty outbox", lambda: rows(
            pgdb, "SELECT COUNT(*) FROM portal_outbox") == [(0,)])
        got = sorted(m["to"][0] for m in sink.messages)
        assert got == sorted(rcpts)
        def sent():
            return {p.name: len(re.findall(r"outbox: notification to \S+ "
                                           r"sent", p.d.log()))
                    for p in (a, b)}
        # The log line follows the commit: its reader may lag the sink.
        poll("a log line per notification sent",
              lambda: sum(sent().values()) >= 10, timeout=20)
        assert sum(sent().values()) == 10, sent()
    finally:
        a.stop()
        b.stop()
        if sink is not None:
            sink.stop()


def _removed(p):
    return sum(int(n) for n in re.findall(r"retention: removed (\d+) "
                                          r"messages", p.d.log()))


def test_retention_runs_once_across_two_portals(pair, notify_sink):
    a, b = pair(extra="retention_interval = 1;")
    subjects = [f"mail {i}" for i in range(12)]
    for i, s in enumerate(subjects):
        (a if i % 2 else b).deliver("ext@example.org",
                                    trigger_mail(s, "Old or new."))
    old = subjects[:8]
    paths = dict(rows(a.db, "SELECT subject, path FROM portal_messages"))
    assert sorted(paths) == sorted(subjects)
    # Enough expired rows that a sweep takes longer than the 1 s between
    # the nodes' timers: without the lock their runs would overlap, and
    # both would count the rows they raced for.
    bulk = 400
    past = int(time.time()) - 100 * DAY
    c = dbutil.db_connect(a.db)
    with c:
        c.execute("INSERT INTO portal_messages (owner, domain, folder, "
                  "state, mail_from, hdr_from, subject, date, size, "
                  "has_attachments, unread, path, created) SELECT owner, "
                  "domain, folder, state, mail_from, hdr_from, 'bulk', "
                  "date, size, has_attachments, unread, path || '-' || g, "
                  "? FROM portal_messages, generate_series(1, ?) g WHERE "
                  "subject = ?", (past, bulk, subjects[-1]))
        for s in old:
            c.execute("UPDATE portal_messages SET created = ? WHERE "
                      "subject = ?", (past, s))
    c.close()
    want = len(old) + bulk
    poll("the expired messages removed",
          lambda: _removed(a) + _removed(b) >= want, timeout=120)
    left = sorted(r[0] for r in rows(a.db, "SELECT subject FROM "
                                     "portal_messages"))
    assert left == sorted(subjects[8:])
    for s in old:
        assert blob(a.db, paths[s]) is None
    # Each expired message counted by exactly one node, no errors.
    poll("retention's log lines", lambda: _removed(a) + _removed(b) >= want,
          timeout=20)
    assert _removed(a) + _removed(b) == want
    for p in (a, b):
        assert not re.search(r"retention: removed \d+ messages \(\d+ "
                             r"bytes\), [1-9]", p.d.log())
        assert "cleanup incomplete" not in p.d.log()


def test_signup_token_single_use_and_throttle_shared(pair, notify_sink):
    a, b = pair()
    a.deliver("ext@example.org", trigger_mail("hello", "Hi."))
    path = _signup(a, notify_sink, Browser(a))
    # The link used on A is spent on B too.
    st, r, page = Browser(b).get(path)
    assert st == 410 and "already used" in page
    # Failed sign-ins counted on A lock the account on B as well
    # (throttle_free_attempts = 3).
    br_a = Browser(a)
    for pw in ("nope1", "nope2", "nope3"):
        st, r, page = br_a.post("/login", {"email": "ext@example.org",
                                           "password": pw})
        assert st == 200 and "password is wrong" in page
    br_b = Browser(b)
    st, r, page = br_b.post("/login", {"email": "ext@example.org",
                                       "password": PASSWORD})
    assert st == 429 and "Too many failed attempts" in page
    assert "__Host-sid" not in br_b.cookies


def test_totp_replay_and_recovery_codes_shared(pair, notify_sink):
    a, b = pair()
    a.deliver("ext@example.org", trigger_mail("hello", "Hi."))
    br = Browser(a)
    _signup(a, notify_sink, br)
    st, r, page = br.get("/settings")
    st, r, page = br.post("/settings/totp/start", {"current": PASSWORD},
                          from_page=page)
    secret = re.search(r'id="totp-secret">([A-Z2-7]+)<', page).group(1)
    code = _oathtool(secret)
    st, r, page = br.post("/settings/totp/enable", {"code": code},
                          from_page=page)
    codes = re.findall(r"<li>([A-Z2-9]{10})</li>", page)
    assert len(codes) == 10, page

    def second_step(portal, answer):
        b2 = Browser(portal)
        st, r, page = b2.post("/login", {"email": "ext@example.org",
                                         "password": PASSWORD})
        assert st == 303 and r.getheader("Location") == "/login/totp"
        st, r, page = b2.get("/login/totp")
        return b2.post("/login/totp", {"code": answer}, from_page=page)

    # The code A took when 2FA was turned on is spent on B as well.
    st, r, page = second_step(b, code)
    assert st == 200 and "wrong or has already been used" in page
    # A recovery code used on B is spent on A.
    st, r, page = second_step(b, codes[0])
    assert st == 303 and r.getheader("Location") == "/inbox"
    st, r, page = second_step(a, codes[0])
    assert st == 200 and "wrong or has already been used" in page
