"""external-portal's per-account usage counter (portal_users.used_bytes):
it equals the sum of the sizes of the account's message rows after
delivery, web delete, retention (postern-cli cleanup), account delete and
a kill -9 of the portal while messages stream in; an older database gets
it from its rows; the quota is enforced (452) from the counter."""

import os
import re
import smtplib
import threading
import urllib.parse

import pytest

from test_portal_ingest import Portal as IngestPortal, RELAY, message
from test_web_portal import Browser, Portal as WebPortal, _mail, _signup

from dbutil import db_connect, sqlite_only


@pytest.fixture
def web_portal(tmp_path, notify_sink):  # noqa: F811
    p = WebPortal(str(tmp_path), notify_sink)
    yield p
    p.stop()


def counter(db, owner):
    """(used_bytes, SUM(size) of the rows) of owner; used_bytes None when
    the account has no row."""
    c = db_connect(db)
    try:
        row = c.execute("SELECT used_bytes FROM portal_users WHERE email = ?",
                        (owner,)).fetchone()
        total = c.execute("SELECT COALESCE(SUM(size), 0) FROM "
                          "portal_messages WHERE owner = ?",
                          (owner,)).fetchone()[0]
    finally:
        c.close()
    return (row[0] if row else None), total


def assert_exact(db, owner, nonzero=True):
    used, total = counter(db, owner)
    assert used == total, (used, total)
    if nonzero:
        assert total > 0
    return used


def test_counter_across_deliver_web_delete_retention_user_delete(
        web_portal, notify_sink):  # noqa: F811
    p, owner = web_portal, "ext@example.org"
    db = p.db
    for i in range(6):
        p.deliver(owner, _mail(subject=f"msg {i}", body="x" * (100 * i + 1)))
    br = Browser(p)
    _signup(p, notify_sink, br)
    before = assert_exact(db, owner)

    # Web delete of two messages.
    st, r, page = br.get("/inbox")
    ids = re.findall(r'name="id" value="(\d+)"', page)[:2]
    body = urllib.parse.urlencode([("csrf", br.csrf(page))] +
                                  [("id", i) for i in ids])
    st, r, _ = br.request("POST", "/inbox/delete", body, {
        "Content-Type": "application/x-www-form-urlencoded"})
    assert st == 303
    after_web = assert_exact(db, owner)
    assert after_web < before

    # Retention through the CLI: one message aged past the default.
    c = db_connect(db)
    c.execute("UPDATE portal_messages SET created = created - 91 * 86400 "
              "WHERE id = (SELECT MIN(id) FROM portal_messages WHERE "
              "owner = ?)", (owner,))
    c.commit()
    c.close()
    assert "removed 1 messages" in p.cli("cleanup")
    assert assert_exact(db, owner) < after_web

    # The CLI shows the counter.
    used = assert_exact(db, owner)
    assert f"bytes: {used}" in p.cli("user", "show", "--email", owner)

    # Account delete: rows and counter go together.
    p.cli("user", "delete", "--email", owner)
    assert counter(db, owner) == (None, 0)


@sqlite_only("a database made before the usage counter; PostgreSQL "
             "databases start with it")
def test_old_database_gets_the_counter_from_its_rows(tmp_path):
    p = IngestPortal(tmp_path)
    owner = "bob@example.org"
    try:
        for i in range(3):
            p.send([f"bob=example.org@{RELAY}"],
                   message(f"m{i}", body=b"z" * (700 * (i + 1)) + b"\r\n"))
    finally:
        p.stop()
    total = counter(p.db, owner)[1]
    assert total > 0
    # The database as a release before the counter left it.
    c = db_connect(p.db)
    for t in ("portal_usage_ins", "portal_usage_del", "portal_usage_upd",
              "portal_usage_user"):
        c.execute(f"DROP TRIGGER {t}")
    c.execute("ALTER TABLE portal_users DROP COLUMN used_bytes")
    c.commit()
    c.close()
    # Any store open migrates: here postern-cli.
    assert f"bytes: {total}" in p.cli("user", "show", "--email",
                                      owner).stdout
    assert counter(p.db, owner) == (total, total)


def test_quota_is_enforced_from_the_counter(tmp_path):
    p = IngestPortal(tmp_path)
    owner, rcpt = "bob@example.org", [f"bob=example.org@{RELAY}"]
    data = message("q", body=b"x" * 1000 + b"\r\n")
    try:
        p.cli("property", "global", "set", "--name", "quota",
              "--value", str(len(data) * 3))
        p.send(rcpt, data)
        p.send(rcpt, data)
        assert_exact(p.db, owner)
        # The third would pass on the rows' sum alone if the counter said
        # less; make the counter the only thing that can refuse it.
        c = db_connect(p.db)
        c.execute("UPDATE portal_users SET used_bytes = used_bytes + ? "
                  "WHERE email = ?", (len(data) * 2, owner))
        c.commit()
        c.close()
        with pytest.raises(smtplib.SMTPDataError) as e:
            p.send(rcpt, data)
        assert e.value.smtp_code == 452 and b"4.2.2" in e.value.smtp_error
        assert len(p.messages(owner)) == 2
        # Back to the truth: the third fits again, the fourth does not.
        c = db_connect(p.db)
        c.execute("UPDATE portal_users SET used_bytes = used_bytes - ? "
                  "WHERE email = ?", (len(data) * 2, owner))
        c.commit()
        c.close()
        p.send(rcpt, data)
        with pytest.raises(smtplib.SMTPDataError) as e:
            p.send(rcpt, data)
        assert e.value.smtp_code == 452
        assert_exact(p.db, owner)
    finally:
        p.stop()


def test_counter_exact_after_kill9_during_a_stream(tmp_path):
    p = IngestPortal(tmp_path)
    owner = "bob@example.org"
    acked, lock = [], threading.Lock()
    stop, enough = threading.Event(), threading.Event()

    def stream(k):
        i = 0
        while not stop.is_set():
            subj = f"s{k}-{i}"
            body = os.urandom(200 + 97 * (i % 23)).hex().encode() + b"\r\n"
            try:
                with smtplib.SMTP("127.0.0.1", p.port, timeout=10) as s:
                    s.sendmail("alice@example.com",
                               [f"bob=example.org@{RELAY}"],
                               message(subj, body=body))
                with lock:
                    acked.append(subj)
                    if len(acked) >= 20:
                        enough.set()
            except (OSError, smtplib.SMTPException):
                pass
            i += 1

    threads = [threading.Thread(target=stream, args=(k,)) for k in range(3)]
    for t in threads:
        t.start()
    try:
        assert enough.wait(90), "no messages acknowledged"
        p.daemon.kill9()
    finally:
        stop.set()
        for t in threads:
            t.join()
    p.start()
    p.daemon.wait_for(r"store: recovery")
    try:
        subjects = {r[2] for r in p.messages(owner)}
        missing = [s for s in acked if s not in subjects]
        assert not missing, f"acknowledged but lost: {missing}"
        assert_exact(p.db, owner)
        # And it keeps counting after the restart.
        p.send([f"bob=example.org@{RELAY}"], message("after"))
        assert_exact(p.db, owner)
    finally:
        p.stop()
