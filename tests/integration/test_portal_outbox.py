"""external-portal notifications: the outbox keeps a notification while the
relay is down and delivers it once the relay is up; the mail carries the
sign-up link (a live, hashed token) and never the message body."""

import email
import hashlib
import os
import re
from email import policy

from conftest import Sink
from test_portal_ingest import Portal, RELAY, message
from dbutil import db_connect


def test_outbox_retries_until_relay_up_and_mail_has_link_only(tmp_path):
    p = Portal(tmp_path)
    try:
        p.send([f"bob=example.org@{RELAY}"],
               message("Quarterly numbers", body=b"TOP-SECRET-BODY\r\n"))
        p.daemon.wait_for(r"outbox: mail to bob@example\.org deferred "
                          r"\(attempt 1\)")
        assert p.rows("SELECT COUNT(*) FROM portal_outbox") == [(1,)]
        sink = Sink(port=p.notify_port)
        try:
            got = sink.wait(1, timeout=30)[0]
        finally:
            sink.stop()
        p.daemon.wait_for(r"outbox: notification to bob@example\.org sent")
        assert got["to"] == ["bob@example.org"]
        assert got["from"] == "no-reply@portal.test"
        raw = got["data"]
        assert b"TOP-SECRET-BODY" not in raw
        m = email.message_from_bytes(raw, policy=policy.default)
        assert m.get_content_type() == "multipart/alternative"
        parts = {pt.get_content_type(): pt for pt in m.iter_parts()}
        assert set(parts) == {"text/plain", "text/html"}
        text = parts["text/plain"].get_content()
        html = parts["text/html"].get_content()
        for body in (text, html):
            assert "TOP-SECRET-BODY" not in body
            # notification-show-subject is false by default.
            assert "Quarterly numbers" not in body
        assert "Quarterly" not in str(m["Subject"])
        tok = re.search(r"https://portal\.test/signup\?token=([0-9a-f]{64})",
                        text)
        assert tok, text
        assert tok.group(0) in html
        h = hashlib.sha256(tok.group(1).encode()).hexdigest()
        assert p.rows("SELECT email, used FROM portal_tokens WHERE hash = ? "
                      "AND kind = 'signup'", (h,)) == [("bob@example.org", 0)]
        # The token is stored only hashed.
        assert p.rows("SELECT COUNT(*) FROM portal_tokens WHERE hash = ?",
                      (tok.group(1),)) == [(0,)]
        assert p.rows("SELECT COUNT(*) FROM portal_outbox") == [(0,)]
    finally:
        p.stop()


def test_show_subject_and_active_user_gets_login_link(tmp_path, sink):
    p = Portal(tmp_path, notify_port=sink.port)
    try:
        p.cli("property", "global", "set", "--name",
              "notification-show-subject", "--value", "true")
        p.send([f"bob=example.org@{RELAY}"], message("Visible subject"))
        first = sink.wait(1)[0]
        m = email.message_from_bytes(first["data"], policy=policy.default)
        text = m.get_body(("plain",)).get_content()
        assert "Visible subject" in text and "Alice Sender" in text
        assert "The secret body" not in text

        # An active account gets a plain "new message" with /login.
        c = db_connect(p.db)
        c.execute("UPDATE portal_users SET state = 'active', "
                  "password_hash = 'x' WHERE email = 'bob@example.org'")
        c.commit()
        c.close()
        p.send([f"bob=example.org@{RELAY}"], message("Second"))
        second = sink.wait(2)[1]
        m = email.message_from_bytes(second["data"], policy=policy.default)
        text = m.get_body(("plain",)).get_content()
        assert "https://portal.test/login" in text
        assert "signup?token" not in text
    finally:
        p.stop()


def test_cli_user_admin(tmp_path, sink):
    p = Portal(tmp_path, notify_port=sink.port)
    try:
        p.send([f"bob=example.org@{RELAY}"], message("one"))
        sink.wait(1)
        out = p.cli("user", "list").stdout
        assert "bob@example.org" in out and "pending" in out
        assert "one" in p.cli("mailbox", "list", "--email",
                              "bob@example.org").stdout
        assert "messages: 1" in p.cli("stats").stdout
        p.cli("user", "resend-invite", "--email", "bob@example.org")
        sink.wait(2)
        assert "would remove 0" in p.cli("cleanup", "--dry-run").stdout
        # Retention (default 90 days): age one message past it.
        p.send([f"bob=example.org@{RELAY}"], message("old"))
        old = [r for r in p.messages("bob@example.org") if r[2] == "old"][0]
        c = db_connect(p.db)
        c.execute("UPDATE portal_messages SET created = created - 91 * 86400"
                  " WHERE id = ?", (old[0],))
        c.commit()
        c.close()
        assert "would remove 1 messages" in p.cli("cleanup",
                                                  "--dry-run").stdout
        assert len(p.messages("bob@example.org")) == 2
        assert "removed 1 messages" in p.cli("cleanup").stdout
        assert [r[2] for r in p.messages("bob@example.org")] == ["one"]
        assert not os.path.exists(os.path.join(p.store, old[3]))
        p.cli("user", "delete", "--email", "bob@example.org")
        assert p.messages("bob@example.org") == []
        r = p.cli("user", "show", "--email", "bob@example.org", check=False)
        assert r.returncode == 1
    finally:
        p.stop()
