"""external-portal ingest against the real daemon on loopback: who may
connect, recipient revert, trigger routing, trigger removal, quota, LMTP
per-recipient replies, durability under kill -9, --check."""

import os
import socket
import smtplib
import subprocess
import threading

import pytest

from conftest import (Daemon, bin_path, check_sanitizer, free_port,
                      needs_root, unmet)
from dbutil import PG, db_connect, db_url, sqlite_only

RELAY = "relay-to-webmail.private"
WEBMAIL = b"X-Keep-CipherMail-To-Webmail: True\r\n"
PDF = b"X-Keep-CipherMail-To-PDF-OTP: True\r\n"


def message(subject="hello", trigger=WEBMAIL, body=b"The secret body.\r\n",
            extra=b""):
    return (b"From: Alice Sender <alice@example.com>\r\n"
            b"To: bob@example.org\r\n"
            b"Subject: " + subject.encode() + b"\r\n" + trigger + extra +
            b"Message-ID: <" + os.urandom(6).hex().encode() +
            b"@test.example>\r\n\r\n" + body)


class Portal:
    """external-portal with its database, store and spool in tmpdir."""

    def __init__(self, tmpdir, mynetworks='"127.0.0.1/32"', notify_port=None,
                 extra_notify="", start=True, db=None):
        self.dir = os.path.join(str(tmpdir), "portal")
        os.makedirs(os.path.join(self.dir, "spool"), exist_ok=True)
        # Portals that share a database are given the same db.
        self.db = db or db_url(self.dir, "portal")
        self.store = os.path.join(self.dir, "messages")
        self.port = free_port()
        self.lmtp_port = free_port()
        self.notify_port = notify_port or free_port()
        self.conf = os.path.join(self.dir, "portal.conf")
        with open(self.conf, "w") as f:
            f.write(f"""
node = "external-portal";
hostname = "portal.test";
database = "{self.db}";
store_dir = "{self.store}";
spool_dir = "{self.dir}/spool";
workers = 2;
smtp = {{
  listeners = (
    {{ listen = "127.0.0.1:{self.port}"; protocol = "smtp"; }},
    {{ listen = "127.0.0.1:{self.lmtp_port}"; protocol = "lmtp"; }}
  );
  mynetworks = [ {mynetworks} ];
}};
notify = {{
  relay_host = "127.0.0.1";
  relay_port = {self.notify_port};
  relay_tls = "none";
  sender = "no-reply@portal.test";
  base_url = "https://portal.test";
  retry_initial = 1;
  retry_max = 2;
  {extra_notify}
}};
""")
        self.cli("domain", "add", "--domain", RELAY)
        self.cli("property", "domain", "set", "--domain", RELAY, "--name",
                 "revert-rewrite-recipient", "--value", "true")
        self.daemon = None
        if start:
            self.start()

    def start(self):
        self.daemon = Daemon([bin_path("external-portal"), "-c", self.conf])
        return self.daemon

    def cli(self, *args, check=True):
        r = subprocess.run([bin_path("postern-cli"), "-c", self.conf, *args],
                           capture_output=True, text=True)
        check_sanitizer("postern-cli", r.stderr, r.returncode)
        if check and r.returncode != 0:
            raise AssertionError(f"postern-cli {args}: {r.stderr}{r.stdout}")
        return r

    def rows(self, sql, args=()):
        c = db_connect(self.db)
        try:
            return c.execute(sql, args).fetchall()
        finally:
            c.close()

    def messages(self, owner):
        return self.rows("SELECT id, state, subject, path FROM "
                         "portal_messages WHERE owner = ? ORDER BY id",
                         (owner,))

    def file(self, name):
        with open(os.path.join(self.store, name), "rb") as f:
            return f.read()

    def send(self, rcpts, data, frm="alice@example.com"):
        with smtplib.SMTP("127.0.0.1", self.port) as s:
            return s.sendmail(frm, rcpts, data)

    def stop(self):
        if self.daemon:
            self.daemon.stop()


@pytest.fixture
def portal(tmp_path):
    p = Portal(tmp_path)
    yield p
    p.stop()


def test_client_outside_mynetworks_refused_at_greeting(portal):
    with pytest.raises(smtplib.SMTPConnectError) as e:
        smtplib.SMTP("127.0.0.1", portal.port,
                     source_address=("127.0.0.2", 0))
    assert e.value.smtp_code == 554
    assert b"5.7.1" in e.value.smtp_error
    portal.daemon.wait_for(r"refused connection from 127\.0\.0\.2: not in "
                           r"mynetworks")
    # The gateway's address still gets in.
    with smtplib.SMTP("127.0.0.1", portal.port) as s:
        assert s.noop()[0] == 250


def test_webmail_trigger_stored_with_trigger_removed(portal):
    data = message("webmail one", extra=b"X-Other: kept\r\n")
    portal.send([f"bob=example.org@{RELAY}"], data)
    rows = portal.messages("bob@example.org")
    assert len(rows) == 1 and rows[0][1] == "webmail"
    stored = portal.file(rows[0][3])
    # Byte for byte, except the trigger field.
    assert stored == data.replace(WEBMAIL, b"")
    assert b"X-Keep-CipherMail" not in stored
    assert portal.rows("SELECT state FROM portal_users WHERE email = ?",
                       ("bob@example.org",)) == [("pending",)]


def test_pdf_trigger_stored_waiting_for_pdf(portal):
    portal.send([f"carol=example.org@{RELAY}"], message("pdf", trigger=PDF))
    rows = portal.messages("carol@example.org")
    assert len(rows) == 1 and rows[0][1] == "pdf-pending"
    assert b"PDF-OTP" not in portal.file(rows[0][3])


def test_trigger_matching_is_case_and_space_insensitive_and_folded(portal):
    portal.send([f"bob=example.org@{RELAY}"],
                message(trigger=b"x-keep-ciphermail-to-webmail:\r\n   true \r\n"))
    assert len(portal.messages("bob@example.org")) == 1


def test_disabled_trigger_is_ignored(portal):
    portal.cli("property", "global", "set", "--name",
               "trigger-webmail-header-enabled", "--value", "false")
    with pytest.raises(smtplib.SMTPDataError) as e:
        portal.send([f"bob=example.org@{RELAY}"], message())
    assert e.value.smtp_code == 550
    assert portal.messages("bob@example.org") == []


def test_no_trigger_refused_unless_standalone(portal):
    with pytest.raises(smtplib.SMTPDataError) as e:
        portal.send([f"bob=example.org@{RELAY}"], message(trigger=b""))
    assert e.value.smtp_code == 550 and b"5.7.0" in e.value.smtp_error
    assert portal.messages("bob@example.org") == []
    portal.daemon.wait_for(r"refused: no portal trigger header")

    portal.cli("property", "global", "set", "--name", "webmail-standalone",
               "--value", "true")
    portal.send([f"bob=example.org@{RELAY}"], message(trigger=b""))
    rows = portal.messages("bob@example.org")
    assert len(rows) == 1 and rows[0][1] == "webmail"


def test_revert_and_direct_recipients(portal):
    portal.cli("domain", "add", "--domain", "example.net")
    portal.send([f"first.last=Example.ORG@{RELAY}", "dave@example.net"],
                message())
    assert len(portal.messages("first.last@example.org")) == 1
    assert len(portal.messages("dave@example.net")) == 1
    # No revert without the property, and no mailbox in the relay domain.
    portal.cli("property", "domain", "set", "--domain", RELAY, "--name",
               "revert-rewrite-recipient", "--value", "false")
    rcpt = f"erin=example.org@{RELAY}"
    with pytest.raises(smtplib.SMTPRecipientsRefused) as e:
        portal.send([rcpt], message())
    code, text = e.value.recipients[rcpt]
    assert code == 550 and text.startswith(b"5.1.1"), text
    assert portal.messages("erin@example.org") == []
    assert portal.messages(rcpt) == []


def test_unknown_domain_and_undecodable_refused(portal):
    for rcpt in ["bob@unknown.example", f"no-equals-sign@{RELAY}",
                 f"bob=@{RELAY}"]:
        with pytest.raises(smtplib.SMTPRecipientsRefused) as e:
            portal.send([rcpt], message())
        code, text = e.value.recipients[rcpt]
        assert code == 550 and text.startswith(b"5.1.1"), (rcpt, text)


def test_quota_gives_452(portal):
    data = message("q", body=b"x" * 1000 + b"\r\n")
    portal.cli("property", "global", "set", "--name", "quota",
               "--value", str(int(len(data) * 1.5)))
    portal.send([f"bob=example.org@{RELAY}"], data)
    with pytest.raises(smtplib.SMTPDataError) as e:
        portal.send([f"bob=example.org@{RELAY}"], data)
    assert e.value.smtp_code == 452 and b"4.2.2" in e.value.smtp_error
    portal.daemon.wait_for(r"to=<bob@example\.org> deferred: mailbox over "
                           r"quota")
    assert len(portal.messages("bob@example.org")) == 1


def lmtp_session(port, rcpts, data):
    """A raw LMTP session; returns the RCPT replies and the per-recipient
    replies after DATA."""
    s = socket.create_connection(("127.0.0.1", port))
    f = s.makefile("rb")

    def reply():
        lines = []
        while True:
            line = f.readline()
            lines.append(line)
            if line[3:4] != b"-":
                return lines[-1].rstrip(b"\r\n")

    reply()
    s.sendall(b"LHLO gw.test\r\n")
    reply()
    s.sendall(b"MAIL FROM:<alice@example.com>\r\n")
    assert reply().startswith(b"250")
    accepted, rcpt_replies = [], []
    for r in rcpts:
        s.sendall(b"RCPT TO:<" + r.encode() + b">\r\n")
        rr = reply()
        rcpt_replies.append(rr)
        if rr.startswith(b"250"):
            accepted.append(r)
    s.sendall(b"DATA\r\n")
    assert reply().startswith(b"354")
    s.sendall(data + b".\r\n")
    per = [reply() for _ in accepted]
    s.sendall(b"QUIT\r\n")
    s.close()
    return rcpt_replies, per


def test_lmtp_replies_per_recipient(portal):
    data = message("lmtp", body=b"y" * 500 + b"\r\n")
    # carol's own quota is too small; bob's is the default.
    portal.cli("property", "user", "set", "--email", "carol@example.org",
               "--name", "quota", "--value", "100")
    rcpt_replies, per = lmtp_session(
        portal.lmtp_port, [f"bob=example.org@{RELAY}", "x@unknown.example",
                           f"carol=example.org@{RELAY}"], data)
    assert rcpt_replies[1].startswith(b"550 5.1.1")
    assert per[0].startswith(b"250"), per
    assert per[1].startswith(b"452 4.2.2"), per
    assert len(portal.messages("bob@example.org")) == 1
    assert portal.messages("carol@example.org") == []


def test_check_names_file_line_key(portal, tmp_path):
    ok = subprocess.run([bin_path("external-portal"), "-c", portal.conf,
                         "--check"], capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    bad = tmp_path / "bad.conf"
    text = open(portal.conf).read().replace(
        'mynetworks = [ "127.0.0.1/32" ];', 'mynetworks = [ "127.0.0.1/33" ];'
    ).replace("retry_max = 2;", "retry_max = 2;\n  bogus = 1;")
    bad.write_text(text)
    r = subprocess.run([bin_path("external-portal"), "-c", str(bad),
                        "--check"], capture_output=True, text=True)
    assert r.returncode == 1
    assert "bad.conf:" in r.stderr and "notify.bogus: unknown key" in r.stderr


def test_kill9_loses_no_acknowledged_message(tmp_path):
    p = Portal(tmp_path)
    acked, stop = [], threading.Event()
    enough = threading.Event()

    def stream():
        i = 0
        while not stop.is_set():
            subj = f"durable-{i}"
            try:
                with smtplib.SMTP("127.0.0.1", p.port, timeout=10) as s:
                    s.sendmail("alice@example.com",
                               [f"bob=example.org@{RELAY}"],
                               message(subj, body=os.urandom(3000).hex()
                                       .encode() + b"\r\n"))
                acked.append(subj)
                if len(acked) >= 15:
                    enough.set()
            except (OSError, smtplib.SMTPException):
                pass
            i += 1

    threads = [threading.Thread(target=stream) for _ in range(2)]
    for t in threads:
        t.start()
    assert enough.wait(60), "no messages acknowledged"
    p.daemon.kill9()
    stop.set()
    for t in threads:
        t.join()
    p.start()
    p.daemon.wait_for(r"store: recovery")
    if not PG:
        # (PostgreSQL recovers from its WAL; a crash of a client cannot
        # damage the server's files.)
        assert p.rows("PRAGMA integrity_check") == [("ok",)]
    rows = p.messages("bob@example.org")
    subjects = {r[2] for r in rows}
    missing = [s for s in acked if s not in subjects]
    assert not missing, f"acknowledged but lost: {missing}"
    files = set(os.listdir(p.store))
    names = {r[3] for r in rows}
    assert files == names, (files - names, names - files)
    for r in rows:
        assert r[2].encode() in p.file(r[3])
    p.stop()


def test_fails_closed_when_ingest_worker_dies(portal):
    import re
    import signal
    pid = None
    for line in portal.daemon.lines:
        m = re.match(r"\S+\[(\d+)\] ingest: ", line)
        if m:
            pid = int(m.group(1))
            break
    assert pid, portal.daemon.log()
    os.kill(pid, signal.SIGKILL)
    portal.daemon.wait_for(rf"ingest process {pid} exited .*failing closed")
    assert portal.daemon.proc.wait(timeout=30) == 1
    portal.daemon = None


def _mount_tmpfs(path, size):
    os.makedirs(path, exist_ok=True)
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}",
                        "tmpfs", path], capture_output=True)
    return r.returncode == 0


@needs_root("mounts a tmpfs")
def test_disk_full_gives_451_never_250(tmp_path):
    p = Portal(tmp_path, start=False)
    if not _mount_tmpfs(p.store, "256k"):
        unmet("cannot mount tmpfs here")
    try:
        p.start()
        rcpt = [f"bob=example.org@{RELAY}"]
        p.send(rcpt, message(body=b"fits\r\n"))
        # Fill the file system, then a message cannot be made durable.
        with open(os.path.join(p.store, "filler"), "wb") as f:
            try:
                f.write(b"\0" * (512 * 1024))
            except OSError:
                pass
        with pytest.raises(smtplib.SMTPDataError) as e:
            p.send(rcpt, message(body=b"x" * 60000 + b"\r\n"))
        assert e.value.smtp_code == 451 and b"4.3.0" in e.value.smtp_error
        assert len(p.messages("bob@example.org")) == 1
    finally:
        try:
            p.stop()
        finally:
            subprocess.run(["umount", "-l", p.store])


@sqlite_only("the whole-file write lock; PostgreSQL locks rows, and its "
             "outage is tested by stopping the server")
def test_database_locked_gives_451(tmp_path):
    p = Portal(tmp_path)
    try:
        rcpt = [f"bob=example.org@{RELAY}"]
        p.send(rcpt, message())
        lock = db_connect(p.db, timeout=1)
        lock.execute("BEGIN EXCLUSIVE")
        try:
            with pytest.raises(smtplib.SMTPDataError) as e:
                p.send(rcpt, message(subject="while locked"))
            assert e.value.smtp_code == 451
        finally:
            lock.rollback()
            lock.close()
        assert [r[2] for r in p.messages("bob@example.org")] == ["hello"]
    finally:
        p.stop()
