"""Helpers for the tests of several nodes on one PostgreSQL database (the
high-availability layout): portals with their own store and spool
directories and one shared database, as behind a load balancer. These
tests are about PostgreSQL, so they take a PostgreSQL database from
dbutil.pg_url() whatever POSTERN_TEST_DB says."""

import os
import smtplib
import subprocess
import time

import pytest

import dbutil
from conftest import Daemon, bin_path, check_sanitizer, free_port
from test_web_portal import _pki, PKI

RELAY = "relay-to-webmail.private"
# What the notifications link to: the load balancer's name, the same on
# every node.
BASE_URL = "https://portal.test"


@pytest.fixture
def pgdb(tmp_path):
    """A fresh PostgreSQL database URI for the test's nodes to share. In
    the SQLite run the databases are dropped here; in the PostgreSQL run
    conftest drops them."""
    keep = dbutil.made_count()
    yield dbutil.pg_url(tmp_path, "shared")
    if not dbutil.PG:
        dbutil.drop_made(keep)


class HaPortal:
    """external-portal (ingest, outbox, web) on the shared database db,
    with its own directories in top/name. setup=True also adds the relay
    domain with recipient revert to the database (once per database)."""

    def __init__(self, top, name, db, notify_port, extra="", setup=False,
                 start=True):
        _pki()
        self.name = name
        self.dir = os.path.join(str(top), name)
        self.store = os.path.join(self.dir, "messages")
        self.spool = os.path.join(self.dir, "spool")
        for d in (self.store, self.spool):
            os.makedirs(d, exist_ok=True)
        self.db = db
        self.smtp_port = free_port()
        self.web_port = free_port()
        self.base = BASE_URL
        self.conf = os.path.join(self.dir, "portal.conf")
        with open(self.conf, "w") as f:
            f.write(f"""
node = "external-portal";
hostname = "{name}.portal.test";
database = "{db}";
store_dir = "{self.store}";
spool_dir = "{self.spool}";
workers = 2;
smtp = {{
  listeners = ( {{ listen = "127.0.0.1:{self.smtp_port}"; }} );
  mynetworks = [ "127.0.0.1/32" ];
}};
notify = {{
  relay_host = "127.0.0.1";
  relay_port = {notify_port};
  relay_tls = "none";
  sender = "no-reply@portal.test";
  base_url = "{BASE_URL}";
  retry_initial = 1;
  retry_max = 2;
}};
web = {{
  listen = "127.0.0.1:{self.web_port}";
  tls_cert = "{PKI}/portal-tls-chain.pem";
  tls_key = "{PKI}/portal-tls.key";
  argon2_t_cost = 1;
  argon2_m_cost_kib = 1024;
  throttle_free_attempts = 3;
  throttle_delay = 600;
  page_size = 50;
}};
{extra}
""")
        if setup:
            self.cli("domain", "add", "--domain", RELAY)
            self.cli("property", "domain", "set", "--domain", RELAY,
                     "--name", "revert-rewrite-recipient", "--value", "true")
        self.d = None
        if start:
            self.start()

    def start(self):
        self.d = Daemon([bin_path("external-portal"), "-c", self.conf],
                        ready=None)
        self.d.wait_for(r"ingest: ready$")
        self.d.wait_for(r"web: ready$")
        return self.d

    def cli(self, *args, check=True):
        r = subprocess.run([bin_path("postern-cli"), "-c", self.conf, *args],
                           capture_output=True, text=True)
        check_sanitizer("postern-cli", r.stderr, r.returncode)
        if check and r.returncode != 0:
            raise AssertionError(f"postern-cli {args}: {r.stderr}{r.stdout}")
        return r

    def deliver(self, rcpt, data, frm="sender@example.com", timeout=30):
        """Sends data (bytes) to rcpt through the relay domain, as the
        gateway does."""
        local, dom = rcpt.split("@")
        with smtplib.SMTP("127.0.0.1", self.smtp_port,
                          timeout=timeout) as s:
            return s.sendmail(frm, [f"{local}={dom}@{RELAY}"], data)

    def stop(self):
        if self.d is not None:
            self.d.stop()

    def kill9(self):
        self.d.kill9()


def rows(db, sql, args=()):
    c = dbutil.db_connect(db)
    try:
        return c.execute(sql, args).fetchall()
    finally:
        c.close()


def blob(db, name):
    """The bytes the database holds for a stored file (its chunks in
    order), or None when it has none."""
    got = rows(db, "SELECT data FROM portal_blobs WHERE name = ? "
               "ORDER BY seq", (name,))
    if not got:
        return None
    return b"".join(r[0] for r in got)


def trigger_mail(subject, body, to="ext@example.org", attachment=None):
    """A webmail-triggered message as bytes; attachment: (name, bytes)."""
    from email.message import EmailMessage
    from email import policy
    m = EmailMessage()
    m["From"] = "Alice <alice@example.com>"
    m["To"] = to
    m["Subject"] = subject
    m["Date"] = "Mon, 02 Mar 2026 10:00:00 +0000"
    m["Message-ID"] = f"<{os.urandom(6).hex()}@test.example>"
    m["X-Keep-CipherMail-To-Webmail"] = "True"
    m.set_content(body)
    if attachment is not None:
        m.add_attachment(attachment[1], maintype="application",
                         subtype="octet-stream", filename=attachment[0])
    return m.as_bytes(policy=policy.SMTP)


def poll(what, cond, timeout=60):
    """cond()'s first true value, asked every 50 ms until timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = cond()
        if v:
            return v
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")
