"""The portal's periodic retention sweep against the real daemon: the
ingest worker runs it on its own timer (retention_interval), honours
retention-days per user, per domain and globally, and 0 means keep.
Message age is set by back-dating the rows the daemon stored; the test
waits for the sweep's own log line, never for a fixed time."""

import time

import pytest

from test_web_portal import Portal, _mail
from dbutil import db_connect

DAY = 86400


@pytest.fixture
def portal(tmp_path, notify_sink):
    p = Portal(str(tmp_path), notify_sink, extra="retention_interval = 1;")
    p.tmp = str(tmp_path)
    yield p
    p.stop()


def _subjects(portal):
    db = db_connect(portal.db)
    try:
        return sorted(r[0] for r in db.execute(
            "SELECT subject FROM portal_messages"))
    finally:
        db.close()


def test_periodic_sweep_levels_and_zero_keeps(portal):
    portal.cli("property", "user", "set", "--email", "short@example.org",
               "--name", "retention-days", "--value", "1")
    portal.cli("property", "domain", "set", "--domain", "brief.example",
               "--name", "retention-days", "--value", "1")
    portal.cli("property", "domain", "set", "--domain", "keep.example",
               "--name", "retention-days", "--value", "0")
    # A user setting wins over its domain's 0.
    portal.cli("property", "user", "set", "--email", "one@keep.example",
               "--name", "retention-days", "--value", "1")
    ages = {
        "user-1d-old": ("short@example.org", 2),
        "global-90d-old": ("plain@example.org", 100),
        "global-90d-young": ("plain@example.org", 2),
        "domain-1d-old": ("x@brief.example", 2),
        "domain-0-kept": ("y@keep.example", 4000),
        "user-over-domain-0": ("one@keep.example", 2),
    }
    for subject, (rcpt, _) in ages.items():
        portal.deliver(rcpt, _mail(subject=subject, to=rcpt))
    now = int(time.time())
    db = db_connect(portal.db,
                         timeout=10)
    with db:
        for subject, (_, days) in ages.items():
            db.execute("UPDATE portal_messages SET created = ? "
                       "WHERE subject = ?", (now - days * DAY, subject))
    db.close()
    # One pass of the daemon's own timer removes all four at once.
    portal.d.wait_for(r"retention: removed 4 messages", timeout=30)
    assert _subjects(portal) == ["domain-0-kept", "global-90d-young"]
