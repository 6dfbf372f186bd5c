"""Failures under a stream of mail with the portal on PostgreSQL: one of
two portals killed with SIGKILL while several clients send to it (every
message it acknowledged is readable through the other), and the database
server stopped and started again while a client sends (451 4.3.0 and a
503 page while it is down, never a 250 for a message not stored; after
the restart everything resumes without restarting the portal, nothing
lost, nothing duplicated). Real daemons, smtplib clients, HTTPS with
http.client, the server driven with pg_ctl."""

import os
import pwd
import shutil
import smtplib
import tempfile
import threading


import dbutil
from hautil import HaPortal, blob, pgdb, poll, rows, trigger_mail  # noqa: F401
from test_web_portal import Browser, _signup


class Stream:
    """Clients sending one message per SMTP session to a portal until
    stopped, or until the portal is gone. Every answer is kept:
    (marker, code, text) with code 0 for a broken connection."""

    def __init__(self, port, clients, stop_on_error=False):
        self.port = port
        self.results = []
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.stop_on_error = stop_on_error
        self.threads = [threading.Thread(target=self._run, args=(i,),
                                         daemon=True)
                        for i in range(clients)]
        for t in self.threads:
            t.start()

    def _send(self, marker):
        data = trigger_mail(marker, f"Body of {marker}.")
        rcpt = "ext=example.org@relay-to-webmail.private"
        try:
            with smtplib.SMTP("127.0.0.1", self.port, timeout=30) as s:
                s.sendmail("sender@example.com", [rcpt], data)
            return 250, ""
        except smtplib.SMTPRecipientsRefused as e:
            code, text = e.recipients[rcpt]
            return code, text.decode()
        except smtplib.SMTPResponseException as e:
            return e.smtp_code, e.smtp_error.decode()
        except (OSError, smtplib.SMTPException) as e:
            return 0, str(e)

    def _run(self, i):
        n = 0
        while not self.stopping.is_set():
            marker = f"c{i}-m{n}"
            n += 1
            code, text = self._send(marker)
            with self.lock:
                self.results.append((marker, code, text))
            if code == 0 and self.stop_on_error:
                return

    def count(self, pred):
        with self.lock:
            return sum(1 for r in self.results if pred(r))

    def stop(self):
        self.stopping.set()
        for t in self.threads:
            t.join(timeout=60)

    def acked(self):
        with self.lock:
            return [m for m, c, _ in self.results if c == 250]


def _signed_in(portal, sink):
    """A browser signed in through portal as ext@example.org."""
    portal.deliver("ext@example.org", trigger_mail("welcome", "Hello."))
    br = Browser(portal)
    _signup(portal, sink, br)
    return br


def _readable(br, db, marker):
    """The message with subject marker, exactly one row, read through
    br's node as the raw message."""
    got = rows(db, "SELECT id, path FROM portal_messages WHERE subject = ?",
               (marker,))
    assert len(got) == 1, (marker, got)
    mid, path = got[0]
    st, r, raw = br.request("GET", f"/message/eml?id={mid}")
    assert st == 200, (marker, st)
    assert f"Body of {marker}.".encode() in raw
    assert raw == blob(db, path)


def test_kill9_one_portal_mid_stream_acked_mail_readable_on_other(
        tmp_path, pgdb, notify_sink):
    a = HaPortal(tmp_path, "a", pgdb, notify_sink.port, setup=True)
    b = HaPortal(tmp_path, "b", pgdb, notify_sink.port)
    stream = None
    try:
        br = _signed_in(b, notify_sink)
        stream = Stream(a.smtp_port, clients=4, stop_on_error=True)
        poll("20 acknowledged messages",
              lambda: stream.count(lambda r: r[1] == 250) >= 20)
        a.kill9()
        stream.stop()
        acked = stream.acked()
        assert len(acked) >= 20
        # Every client saw the portal go (not a refusal of ours).
        assert stream.count(lambda r: r[1] not in (0, 250)) == 0
        for marker in acked:
            _readable(br, pgdb, marker)
        # Nothing stored twice, acknowledged or not.
        assert rows(pgdb, "SELECT subject FROM portal_messages GROUP BY "
                    "subject HAVING COUNT(*) > 1") == []
    finally:
        if stream is not None:
            stream.stop()
        b.stop()


def test_database_stopped_and_restarted_during_stream(tmp_path,
                                                      notify_sink):
    # A server of its own: this test stops it.
    server = dbutil.PgServer()
    server.init()
    p = stream = None
    try:
        db = server.url(server.create_db("restart"))
        p = HaPortal(tmp_path, "a", db, notify_sink.port, setup=True)
        br = _signed_in(p, notify_sink)
        stream = Stream(p.smtp_port, clients=2)
        poll("acknowledged messages",
              lambda: stream.count(lambda r: r[1] == 250) >= 6)

        before = len(stream.results)
        server.stop("fast")
        poll("4xx answers while the database is down", lambda: sum(
            1 for r in stream.results[before:] if r[1] // 100 == 4) >= 4)
        down = stream.results[before:]
        st, r, page = br.get("/inbox")
        assert st == 503, st
        st, r, page = Browser(p).get("/login")
        assert st == 503, st

        server.start()
        after = len(stream.results)
        poll("acknowledged messages after the restart", lambda: sum(
            1 for r in stream.results[after:] if r[1] == 250) >= 6)
        stream.stop()
        st, r, page = br.get("/inbox")
        assert st == 200, st

        # The portal was not restarted.
        assert p.d.proc.poll() is None
        p.d.wait_for("re-established", timeout=20)
        codes = {(c, t[:5]) for _, c, t in stream.results}
        assert codes <= {(250, ""), (451, "4.3.0")}, codes
        assert any(c == 451 for _, c, _ in down)
        acked = stream.acked()
        for marker in acked:
            _readable(br, db, marker)
        refused = [m for m, c, _ in stream.results if c != 250]
        assert refused
        for marker in refused:
            assert rows(db, "SELECT COUNT(*) FROM portal_messages WHERE "
                        "subject = ?", (marker,)) == [(0,)], marker
        # Nothing duplicated: one row per acknowledged message, and the
        # welcome message.
        assert rows(db, "SELECT COUNT(*) FROM portal_messages") == \
            [(len(acked) + 1,)]
    finally:
        if stream is not None:
            stream.stop()
        if p is not None:
            p.stop()
        server.destroy()


def test_primary_moving_to_second_host_of_url_is_followed(tmp_path,
                                                          notify_sink):
    # The server comes back at the second address of a multi-host URL,
    # as a promoted replica would: the portal follows it without a
    # restart (the same data directory stands in for the replica).
    server = dbutil.PgServer()
    server.init()
    other = tempfile.mkdtemp(prefix="postern-pg2-")
    if os.geteuid() == 0:
        pw = pwd.getpwnam("postgres")
        os.chown(other, pw.pw_uid, pw.pw_gid)
    p = None
    try:
        name = server.create_db("moving")
        url = (f"postgresql://{dbutil.PG_ROLE}@/{name}?host="
               f"{server.sockdir},{other}&target_session_attrs=read-write")
        p = HaPortal(tmp_path, "a", url, notify_sink.port, setup=True)
        br = _signed_in(p, notify_sink)
        p.deliver("ext@example.org", trigger_mail("before", "Body of before."))

        server.stop("fast")
        r = server._as_owner([
            os.path.join(dbutil.PG_BIN, "pg_ctl"), "-D", server.data,
            "-l", server.logfile, "-o",
            f"-c listen_addresses='' -c unix_socket_directories='{other}'",
            "-w", "-t", "60", "start"])
        assert r.returncode == 0, r.stderr
        server.running = True

        p.deliver("ext@example.org", trigger_mail("after", "Body of after."))
        st, r, page = br.get("/inbox")
        assert st == 200 and "before" in page and "after" in page
        moved = f"postgresql://{dbutil.PG_ROLE}@/{name}?host={other}"
        for marker in ("before", "after"):
            _readable(br, moved, marker)
        assert p.d.proc.poll() is None
        p.d.wait_for("PostgreSQL connection re-established", timeout=20)
    finally:
        if p is not None:
            p.stop()
        server.destroy()
        shutil.rmtree(other, ignore_errors=True)
