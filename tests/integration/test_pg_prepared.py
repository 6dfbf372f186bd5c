"""The portal on PostgreSQL keeps its frequent statements prepared on the
server (parsed and planned once per connection, then executed by name),
and prepares them again after the server restarted under it: a
connection reset loses the server's prepared statements."""

import re
import time

import pytest

from conftest import Sink
from pgserver import PgServer, PgUnavailable
from test_web_portal import Browser, Portal, _mail, _signup


@pytest.fixture
def pg():
    try:
        # Every statement in the server's log, with how it was run.
        s = PgServer(options="-c log_statement=all")
    except PgUnavailable as e:
        pytest.fail(f"PostgreSQL: {e}")
    yield s
    s.stop()


def _log(pg):
    with open(pg.log, errors="replace") as f:
        return f.read()


def _inbox_ok(br):
    st, r, page = br.get("/inbox")
    return st == 200 and "Quarterly figures" in page


def test_statements_prepared_by_name_and_again_after_restart(tmp_path, pg):
    sink = Sink()
    p = Portal(str(tmp_path), sink, database=pg.url)
    try:
        p.deliver("ext@example.org", _mail(subject="Quarterly figures"))
        br = Browser(p)
        _signup(p, sink, br)
        for _ in range(4):
            assert _inbox_ok(br)
        # The listing ran by a server-side name, not parsed each time.
        named = re.compile(r"execute (postern_\d+): SELECT id, date, size, "
                           r"unread, has_attachments")
        assert named.search(_log(pg)), "the listing was never run by name"

        pg.restart()
        mark = len(_log(pg))
        # The first requests may meet the broken connection (503) while
        # it is reset; then every request is answered again.
        deadline = time.monotonic() + 30
        while not _inbox_ok(br):
            assert time.monotonic() < deadline, "no inbox after restart"
            time.sleep(0.1)
        for _ in range(8):
            assert _inbox_ok(br), "a statement prepared before the " \
                "restart was executed by its lost name"
        after = _log(pg)[mark:]
        assert "does not exist" not in after
        assert named.search(after), "not prepared again after the restart"
    finally:
        p.stop()
        sink.stop()


def _lookups(text):
    return text.count("FROM props_user WHERE email = ")


def test_ingest_property_cache_on_postgresql(tmp_path, pg):
    """Ingest reads its properties from the thread's cache while no
    property changed (one version read per unit of work instead of a
    dozen lookups per message), and a property set by postern-cli (a write
    the triggers count) is read anew at once."""
    import smtplib
    sink = Sink()
    p = Portal(str(tmp_path), sink, database=pg.url)
    try:
        mark = len(_log(pg))
        p.deliver("ext@example.org", _mail(subject="one"))
        cold = _lookups(_log(pg)[mark:])
        assert cold > 0
        mark = len(_log(pg))
        for i in range(8):
            p.deliver("ext@example.org", _mail(subject=f"more {i}"))
        warm = _lookups(_log(pg)[mark:])
        # Without the cache: about `cold` lookups for every message; with
        # it, only threads not used before read (two ingest workers).
        assert warm <= 2 * cold, (cold, warm)

        # A quota below what the mailbox holds: the next message is
        # refused, which the cached "no limit" would have let in.
        p.cli("property", "user", "set", "--email", "ext@example.org",
              "--name", "quota", "--value", "1")
        with pytest.raises(smtplib.SMTPException):
            p.deliver("ext@example.org", _mail(subject="over quota"))
    finally:
        p.stop()
        sink.stop()
