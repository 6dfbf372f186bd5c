"""internal-gw's fast paths keep behaviour: the property cache sees a
change made by postern-cli while the daemon runs, the ledger entries held
back for a message's last transaction are written when the answer is 4xx
(a retry sends no copy twice, whichever copy failed), and the portal copy
relayed without a temporary file is the trigger field followed by the
message as received. Real daemon, smtplib as the LAN MTA, aiosmtpd next
hops."""

import os
import smtplib

import pytest

from gwutil import make_message
from test_gateway import G, PORTAL_PROPS, gw_factory, keep_headers, send, \
    sinks  # noqa: F401

INTERNAL = [("domain", "add", "--domain", "example.com"),
            ("domain", "set", "--domain", "example.com", "--name",
             "locality", "--value", "internal")]
RELAYED = "ext=example.org@relay-to-webmail.private"


def test_property_set_while_running_takes_effect(gw_factory, sinks):
    portal, out = sinks
    gw = gw_factory()
    # The same properties are read for every message, and cached.
    for _ in range(3):
        send(gw, "alice@example.com", ["ext@example.org"],
             make_message(to="ext@example.org"))
    assert len(out.wait(3)) == 3 and portal.messages == []
    for p in PORTAL_PROPS:
        gw.cli("property", *p)
    send(gw, "alice@example.com", ["ext@example.org"],
         make_message(to="ext@example.org"))
    assert portal.wait(1)[0]["to"] == [RELAYED]
    assert len(out.messages) == 3
    gw.cli("property", "global", "unset", "--name", "webmail-enabled")
    send(gw, "alice@example.com", ["ext@example.org"],
         make_message(to="ext@example.org"))
    assert len(out.wait(4)) == 4 and len(portal.messages) == 1


def test_retry_when_the_last_copy_failed_sends_no_copy_twice(gw_factory,
                                                             sinks):
    # The internal copy goes first and is recorded at once; the portal
    # copy, the message's last transaction, is refused with 451.
    portal, out = sinks
    gw = gw_factory(props=PORTAL_PROPS + INTERNAL)
    portal.handler.rcpt_replies[RELAYED] = "451 4.3.0 later"
    data = make_message(to="ext@example.org, colleague@example.com")
    rcpts = ["ext@example.org", "colleague@example.com"]
    with pytest.raises(smtplib.SMTPResponseException) as e:
        send(gw, "alice@example.com", rcpts, data)
    assert e.value.smtp_code // 100 == 4
    assert out.wait(1)[0]["to"] == ["colleague@example.com"]
    portal.handler.rcpt_replies.clear()
    send(gw, "alice@example.com", rcpts, data)
    assert portal.wait(1)[0]["to"] == [RELAYED]
    assert len(out.messages) == 1, "internal copy relayed twice"
    # That answer was final: the same bytes again are a new message.
    send(gw, "alice@example.com", rcpts, data)
    assert len(out.wait(2)) == 2 and len(portal.wait(2)) == 2


def test_retry_when_part_of_the_last_transaction_failed(gw_factory, sinks):
    # One transaction (the last), two recipients, one deferred: the held
    # entry of the accepted one must be written.
    portal, out = sinks
    gw = gw_factory(props=PORTAL_PROPS)
    both = [RELAYED, "x=example.org@relay-to-webmail.private"]
    portal.handler.rcpt_replies[both[1]] = "451 4.3.0 later"
    data = make_message(to="ext@example.org, x@example.org")
    rcpts = ["ext@example.org", "x@example.org"]
    with pytest.raises(smtplib.SMTPResponseException):
        send(gw, "alice@example.com", rcpts, data)
    assert portal.wait(1)[0]["to"] == [both[0]]
    portal.handler.rcpt_replies.clear()
    send(gw, "alice@example.com", rcpts, data)
    assert [m["to"] for m in portal.wait(2)] == [[both[0]], [both[1]]]


def test_portal_copy_is_trigger_field_then_message_as_received(gw_factory,
                                                               sinks):
    portal, out = sinks
    gw = gw_factory(props=PORTAL_PROPS)
    data = (b"From: alice@example.com\r\nTo: ext@example.org\r\n"
            b"Subject: q3\r\nMessage-ID: <fast-1@test.example>\r\n\r\n"
            b"first line\r\n.leading dot\r\n\r\nlast line\r\n")
    send(gw, "alice@example.com", ["ext@example.org"], data)
    got = portal.wait(1)[0]["data"]
    assert got == b"X-Keep-CipherMail-To-Webmail: True\r\n" + data


def test_portal_copy_of_forged_trigger_has_one_trigger(gw_factory, sinks):
    portal, out = sinks
    gw = gw_factory(props=PORTAL_PROPS)
    data = (b"From: alice@example.com\r\nTo: ext@example.org\r\n"
            b"x-keep-ciphermail-to-webmail: forged\r\n"
            b"Subject: q3\r\n\r\nbody\r\n")
    send(gw, "alice@example.com", ["ext@example.org"], data)
    got = portal.wait(1)[0]["data"]
    assert keep_headers(got) == [b"X-Keep-CipherMail-To-Webmail: True"]
    assert b"forged" not in got
    assert "removed 1 forged trigger header(s)" in gw.daemon.log()


def smtp_threads(gw):
    """Threads of the gateway's smtp process (the one logging as smtp)."""
    from test_smime import pids_by_proc
    pid = pids_by_proc(gw)["smtp"]
    return len(os.listdir(f"/proc/{pid}/task"))


@pytest.mark.parametrize("setting", ["workers = 1;", "workers = 9;", ""])
def test_workers_sets_the_number_of_message_threads(gw_factory, setting):
    gw = gw_factory(start=False)
    with open(gw.conf) as f:
        conf = f.read()
    assert "workers = 2;" in conf
    with open(gw.conf, "w") as f:
        f.write(conf.replace("workers = 2;", setting))
    gw.start()
    n = smtp_threads(gw)
    gw.stop()
    with open(gw.conf, "w") as f:
        f.write(conf)
    gw.start()
    base = smtp_threads(gw) - 2          # without its 2 workers
    want = {"workers = 1;": 1, "workers = 9;": 9, "": 16}[setting]
    assert n == base + want, (n, base)
