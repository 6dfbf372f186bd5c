"""external-portal coalesces "new message" notifications per recipient
(notify.coalesce): a burst of messages to one active account gives one
mail, a burst after the window its own; 0 gives one mail per message;
invitations keep their own schedule; the outbox sends queued rows back to
back over one cached relay connection."""

import time

from test_portal_ingest import Portal, RELAY, message
from test_smtp_client_reuse import CountingSink
from dbutil import db_connect

DEADLINE = 60


def activate(p, owner):
    c = db_connect(p.db)
    c.execute("UPDATE portal_users SET state = 'active', password_hash = "
              "'x' WHERE email = ?", (owner,))
    c.commit()
    c.close()


def outbox_empty(p):
    """Polls until the outbox sent everything it holds."""
    end = time.monotonic() + DEADLINE
    while p.rows("SELECT COUNT(*) FROM portal_outbox") != [(0,)]:
        assert time.monotonic() < end, p.rows("SELECT * FROM portal_outbox")
        time.sleep(0.05)


def received(sink):
    with sink.counter.lock:
        return len(sink.counter.messages)


def burst(p, n, tag):
    for i in range(n):
        p.send([f"bob=example.org@{RELAY}"], message(f"{tag}-{i}"))


def start(tmp_path, coalesce):
    sink = CountingSink()
    sink.start()
    p = Portal(tmp_path, notify_port=sink.port,
               extra_notify=f"coalesce = {coalesce};")
    return sink, p


def test_burst_gives_one_mail_and_the_next_burst_its_own(tmp_path):
    # A window no test run outlasts; "later" is made by moving the
    # account's last notification back, not by waiting.
    sink, p = start(tmp_path, 3600)
    try:
        p.send([f"bob=example.org@{RELAY}"], message("first"))
        outbox_empty(p)
        assert received(sink) == 1          # the invitation
        activate(p, "bob@example.org")

        burst(p, 5, "a")
        outbox_empty(p)
        assert received(sink) == 2
        assert len(p.messages("bob@example.org")) == 6

        # Still inside the window: covered by that mail.
        burst(p, 2, "b")
        outbox_empty(p)
        assert received(sink) == 2

        c = db_connect(p.db)
        c.execute("UPDATE portal_users SET last_notify = last_notify - 3600"
                  " WHERE email = 'bob@example.org'")
        c.commit()
        c.close()
        burst(p, 4, "c")
        outbox_empty(p)
        assert received(sink) == 3
        assert len(p.messages("bob@example.org")) == 12
        # Each mail says "new message", with the sign-in link.
        assert all(b"/login" in m for m in sink.counter.messages[1:])
    finally:
        p.stop()
        sink.stop()


def test_zero_sends_one_mail_per_message(tmp_path):
    sink, p = start(tmp_path, 0)
    try:
        p.send([f"bob=example.org@{RELAY}"], message("first"))
        outbox_empty(p)
        activate(p, "bob@example.org")
        burst(p, 4, "a")
        outbox_empty(p)
        assert received(sink) == 5
    finally:
        p.stop()
        sink.stop()


def test_invitations_keep_their_schedule(tmp_path):
    sink, p = start(tmp_path, 0)
    try:
        # A pending account: one invitation for a burst, whatever the
        # coalescing (reminders at most per signup-reminder-interval).
        burst(p, 4, "a")
        outbox_empty(p)
        assert received(sink) == 1
        assert b"/signup?token=" in sink.counter.messages[0]
    finally:
        p.stop()
        sink.stop()


def test_outbox_sends_queued_rows_over_one_connection(tmp_path):
    sink, p = start(tmp_path, 5)
    try:
        # One message to six new accounts: six invitations queued in one
        # transaction each, then one wake-up of the outbox.
        rcpts = [f"u{i}=example.org@{RELAY}" for i in range(6)]
        p.send(rcpts, message("to many"))
        outbox_empty(p)
        assert received(sink) == 6
        assert sink.counter.connections < 6, sink.counter.connections
    finally:
        p.stop()
        sink.stop()
