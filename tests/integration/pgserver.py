"""A throw-away PostgreSQL server for tests and `make bench`.

initdb in a directory of the caller's, owned by the postgres user when
run as root (the server refuses root); a unix socket in that directory
(mode 0700: only its owner and root reach it) and no TCP listener; fsync
and synchronous_commit on, the durability of SQLite's synchronous=FULL.
One database owned by an unprivileged role; `url` is what a node's
`database` setting takes. stop() ends the server (pg_ctl stop, then
SIGKILL to what is left)."""

import glob
import os
import pwd
import re
import shutil
import signal
import subprocess
import tempfile
import time

ROLE = "postern"
DBNAME = "postern"


class PgUnavailable(Exception):
    """PostgreSQL is not installed or did not start."""


def bindir():
    """The installed PostgreSQL's programs, 15 (Debian 12's) preferred."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                   key=lambda p: int(p.split("/")[4]))
    if not found:
        raise PgUnavailable("PostgreSQL is not installed (postgresql-15)")
    for p in found:
        if "/15/" in p:
            return os.path.dirname(p)
    return os.path.dirname(found[-1])


class PgServer:
    def __init__(self, parent=None, options=""):
        """parent: a directory the server's user can traverse; by default
        one of its own under /tmp (pytest's are private to root),
        removed by stop()."""
        self.bin = bindir()
        self.own = None
        if parent is None:
            parent = self.own = tempfile.mkdtemp(prefix="postern-pg-")
            os.chmod(parent, 0o755)
        self.dir = os.path.join(parent, "pg")
        self.data = os.path.join(self.dir, "data")
        self.sock = os.path.join(self.dir, "sock")
        self.log = os.path.join(self.dir, "server.log")
        self.options = options
        self._conn = None
        pw = pwd.getpwnam("postgres") if os.geteuid() == 0 else \
            pwd.getpwuid(os.getuid())
        self.uid, self.gid = pw.pw_uid, pw.pw_gid
        for d in (self.dir, self.sock):
            os.makedirs(d, mode=0o700)
            os.chown(d, self.uid, self.gid)
        try:
            self._run("initdb", "-D", self.data, "-U", "postgres", "-E",
                      "UTF8", "--locale=C", "--auth=trust",
                      "--no-instructions")
            self.start()
            self.psql(f"CREATE ROLE {ROLE} LOGIN")
            self.psql(f"CREATE DATABASE {DBNAME} OWNER {ROLE}")
        except BaseException:
            self.stop()
            raise
        self.url = f"postgresql://{ROLE}@/{DBNAME}?host={self.sock}"

    def _drop(self):
        uid, gid = self.uid, self.gid
        if uid == os.getuid():
            return None

        def drop():
            os.setgroups([])
            os.setgid(gid)
            os.setuid(uid)
        return drop

    def _run(self, prog, *args):
        try:
            r = subprocess.run([os.path.join(self.bin, prog), *args],
                               cwd=self.dir, capture_output=True, text=True,
                               timeout=120, preexec_fn=self._drop(),
                               start_new_session=True)
        except (OSError, subprocess.SubprocessError) as e:
            raise PgUnavailable(f"{prog}: {e}")
        if r.returncode != 0:
            raise PgUnavailable(f"{prog}: {(r.stderr or r.stdout).strip()}"
                                f" {self.log_tail()}")
        return r.stdout

    def log_tail(self, n=3):
        try:
            with open(self.log, errors="replace") as f:
                return " | ".join(f.read().splitlines()[-n:])
        except OSError:
            return ""

    def start(self):
        opts = ("-c listen_addresses='' "
                f"-c unix_socket_directories='{self.sock}' "
                "-c fsync=on -c synchronous_commit=on "
                "-c full_page_writes=on -c max_connections=200 "
                + self.options)
        self._run("pg_ctl", "-D", self.data, "-l", self.log, "-w", "-t",
                  "60", "-o", opts, "start")

    def restart(self):
        """Stops the server (every connection breaks) and starts it."""
        self._close()
        self._run("pg_ctl", "-D", self.data, "-m", "fast", "-w", "-t",
                  "60", "stop")
        self.start()

    def psql(self, sql):
        return self._run("psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h",
                         self.sock, "-U", "postgres", "-d", "postgres",
                         "-c", sql)

    def count(self, sql):
        """One number from the database, over a kept connection."""
        import psycopg2
        if self._conn is None:
            self._conn = psycopg2.connect(host=self.sock, user=ROLE,
                                          dbname=DBNAME)
            self._conn.autocommit = True
        with self._conn.cursor() as c:
            c.execute(sql)
            return c.fetchone()[0]

    def version(self):
        try:
            m = re.search(r"\(PostgreSQL\) (\S+)",
                          self._run("postgres", "--version"))
        except PgUnavailable:
            return "?"
        return m.group(1) if m else "?"

    def _close(self):
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def stop(self):
        self._stop()
        if self.own is not None:
            shutil.rmtree(self.own, ignore_errors=True)
            self.own = None

    def _stop(self):
        self._close()
        pidfile = os.path.join(self.data, "postmaster.pid")
        if not os.path.exists(pidfile):
            return
        try:
            self._run("pg_ctl", "-D", self.data, "-m", "fast", "-w", "-t",
                      "30", "stop")
            return
        except PgUnavailable:
            pass
        try:
            with open(pidfile) as f:
                pid = int(f.readline())
            os.kill(pid, signal.SIGKILL)
        except (OSError, ValueError):
            return
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except OSError:
                return
            time.sleep(0.05)
