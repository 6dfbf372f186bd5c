"""Two internal-gw nodes on one PostgreSQL database share the idempotency
ledger: a message partly relayed by one gateway (the next hop deferred
one recipient, so the LAN MTA got a 4xx) and retried through the other
reaches only the recipients still missing. The nodes find their
database through a libpq multi-host URL whose first host is down. A
gateway whose database is stopped answers 4xx and relays nothing, and
resumes when it is back. Real daemons, smtplib as the LAN MTA, aiosmtpd
next hops."""

import smtplib

import pytest

import dbutil
from gwutil import Gateway, make_message
from hautil import HaPortal, pgdb, rows, trigger_mail  # noqa: F401
from test_gateway import PORTAL_PROPS, send, sinks  # noqa: F401


def _fixed(subject):
    return (b"From: alice@example.com\r\nTo: a@example.org\r\n"
            b"Message-ID: <ha-retry@test.example>\r\n"
            b"Subject: " + subject.encode() + b"\r\n\r\nQ3 numbers.\r\n")


@pytest.fixture
def two_gateways(tmp_path, pgdb, sinks):
    made = []

    def make(db=None):
        for name in ("a", "b"):
            made.append(Gateway(tmp_path / name, sinks[0].port,
                                sinks[1].port, db=db or pgdb))
        return made
    yield make
    for g in made:
        g.stop()


def test_retry_on_the_other_gateway_does_not_duplicate(two_gateways, sinks):
    portal, out = sinks
    a, b = two_gateways()
    out.handler.rcpt_replies["b@example.org"] = "451 4.3.0 later"
    data = _fixed("retry")
    rcpts = ["a@example.org", "b@example.org"]
    with pytest.raises(smtplib.SMTPResponseException) as e:
        send(a, "alice@example.com", rcpts, data)
    assert e.value.smtp_code // 100 == 4
    assert out.wait(1)[0]["to"] == ["a@example.org"]
    out.handler.rcpt_replies.clear()
    # The LAN MTA retries through the other gateway.
    send(b, "alice@example.com", rcpts, data)
    msgs = out.wait(2)
    assert [m["to"] for m in msgs] == [["a@example.org"], ["b@example.org"]]
    # The retry completed the transaction: a new submission of the same
    # bytes, through either gateway, goes to both again.
    send(a, "alice@example.com", rcpts, data)
    assert out.wait(3)[2]["to"] == rcpts


def _multi_host(url, form):
    """url (postgresql://user@/db?host=SOCKDIR) as a multi-host URL whose
    first host is down: a socket directory with no server, or a port
    nothing listens on."""
    base, sockdir = url.split("?host=")
    if form == "hosts":
        return (f"{base}?host=/nonexistent-pg-socket-dir,{sockdir}"
                f"&target_session_attrs=read-write")
    return (f"{base}?host={sockdir},{sockdir}&port=5999,5432"
            f"&target_session_attrs=read-write")


@pytest.mark.parametrize("form", ["hosts", "ports"])
def test_multi_host_url_first_host_down(tmp_path, pgdb, sinks, form):
    portal_sink, out = sinks
    url = _multi_host(pgdb, form)
    p = HaPortal(tmp_path, "portal", url, out.port, setup=True)
    gw = None
    try:
        p.deliver("ext@example.org", trigger_mail("over two hosts", "Hi."))
        assert rows(pgdb, "SELECT subject FROM portal_messages") == \
            [("over two hosts",)]
        gw = Gateway(tmp_path / "gw", portal_sink.port, out.port, db=url,
                     props=PORTAL_PROPS)
        send(gw, "alice@example.com", ["ext@example.org"],
             make_message(to="ext@example.org"))
        assert portal_sink.wait(1)[0]["to"] == [
            "ext=example.org@relay-to-webmail.private"]
        # The gateway's properties went to the same database.
        assert rows(pgdb, "SELECT COUNT(*) FROM props_global WHERE name = ?",
                    ("remote-portal-enabled",)) == [(1,)]
    finally:
        if gw is not None:
            gw.stop()
        p.stop()


def test_gateway_database_down_is_4xx_and_nothing_leaves(tmp_path, sinks):
    # A server of its own: this test stops it. While it is down nothing
    # may be decided on default properties: the message would leave by
    # the wrong route (here: plain, to the Internet, not to the portal).
    portal, out = sinks
    server = dbutil.PgServer()
    server.init()
    gw = None
    try:
        db = server.url(server.create_db("gwdown"))
        gw = Gateway(tmp_path / "gw", portal.port, out.port, db=db,
                     props=PORTAL_PROPS)
        send(gw, "alice@example.com", ["ext@example.org"],
             make_message(to="ext@example.org", subject="before"))
        assert len(portal.wait(1)) == 1
        server.stop("fast")
        for i in range(3):
            with pytest.raises(smtplib.SMTPException) as e:
                send(gw, "alice@example.com", ["ext@example.org"],
                     make_message(to="ext@example.org", subject=f"down {i}"))
            code = getattr(e.value, "smtp_code", None)
            if code is None:
                code = list(e.value.recipients.values())[0][0]
            assert code // 100 == 4, e.value
        server.start()
        send(gw, "alice@example.com", ["ext@example.org"],
             make_message(to="ext@example.org", subject="after"))
        msgs = portal.wait(2)
        assert len(msgs) == 2 and b"Subject: after" in msgs[1]["data"]
        assert out.messages == []
        assert gw.daemon.proc.poll() is None
    finally:
        if gw is not None:
            gw.stop()
        server.destroy()
