"""The database back end of an integration run: SQLite files (the default)
or a real PostgreSQL 15 server started for the run from Debian's packages.

POSTERN_TEST_DB picks the back end: "sqlite" (default) or "postgresql".
With PostgreSQL, one server serves the whole run: initdb in a temporary
directory, no TCP listener, a unix socket in that directory, started with
pg_ctl -w (which waits for readiness itself) on first use and stopped at
the end of the session. Every db_url() call makes a fresh database owned
by an unprivileged role, as a site's admin would; the databases a test
made are dropped after it.

Tests never open a node's database by path: db_url() gives what follows
"database =" in a node config, and db_connect() opens that with the
matching DB-API module; the SQL of the tests is written with "?"
placeholders and runs on both."""

import atexit
import itertools
import os
import pwd
import re
import shutil
import subprocess
import tempfile

import pytest

BACKEND = os.environ.get("POSTERN_TEST_DB", "sqlite")
if BACKEND not in ("sqlite", "postgresql"):
    raise RuntimeError(f"POSTERN_TEST_DB={BACKEND!r}: want sqlite or "
                       "postgresql")
PG = BACKEND == "postgresql"
PG_BIN = os.environ.get("POSTERN_PG_BIN", "/usr/lib/postgresql/15/bin")
# The role the daemons, postern-cli and the tests log in as: it owns the
# databases it uses and is no superuser.
PG_ROLE = "postern"
# The server's superuser, used to create and drop databases only.
PG_ADMIN = "postgres"


def sqlite_only(why):
    """Marks a test of something only SQLite has (a file, its mode, its
    locking); the reason is printed with the skip under pytest -rs."""
    return pytest.mark.skipif(PG, reason=f"SQLite only: {why}")


class PgServer:
    """A PostgreSQL server of its own in a temporary directory. As root,
    initdb and the server run as the postgres user (the server refuses
    root); otherwise as the user running the tests."""

    def __init__(self):
        self.top = None
        self.running = False
        self._names = itertools.count(1)

    @property
    def data(self):
        return os.path.join(self.top, "data")

    @property
    def sockdir(self):
        return self.top

    @property
    def logfile(self):
        return os.path.join(self.top, "server.log")

    def _as_owner(self, argv, **kw):
        if os.geteuid() == 0:
            argv = ["runuser", "-u", "postgres", "--"] + argv
        return subprocess.run(argv, capture_output=True, text=True, **kw)

    def _must(self, what, r):
        if r.returncode != 0:
            raise RuntimeError(f"{what} failed ({r.returncode}):\n"
                               f"{r.stdout}{r.stderr}\n{self.log_tail()}")

    def init(self):
        if not os.path.exists(os.path.join(PG_BIN, "initdb")):
            raise RuntimeError(f"{PG_BIN}/initdb missing: install "
                               "postgresql-15 (make deps)")
        # Short: the socket path must fit in sun_path.
        self.top = tempfile.mkdtemp(prefix="postern-pg-")
        if os.geteuid() == 0:
            pw = pwd.getpwnam("postgres")
            os.chown(self.top, pw.pw_uid, pw.pw_gid)
        r = self._as_owner([os.path.join(PG_BIN, "initdb"), "-D", self.data,
                            "-U", PG_ADMIN, "-A", "trust", "-E", "UTF8",
                            "--locale=C.UTF-8", "--no-sync"])
        self._must("initdb", r)
        self.start()
        self.psql(f"CREATE ROLE {PG_ROLE} LOGIN")

    def start(self):
        """Starts the server; returns when it accepts connections. Tests
        that stop the database on purpose call stop() and start()."""
        opts = (f"-c listen_addresses='' -c unix_socket_directories="
                f"'{self.sockdir}' -c fsync=on -c max_connections=200")
        r = self._as_owner([os.path.join(PG_BIN, "pg_ctl"), "-D", self.data,
                            "-l", self.logfile, "-o", opts, "-w", "-t", "60",
                            "start"])
        self._must("pg_ctl start", r)
        self.running = True

    def stop(self, mode="fast"):
        """Stops the server: "fast" ends the sessions cleanly, "immediate"
        is a crash (recovery on the next start)."""
        r = self._as_owner([os.path.join(PG_BIN, "pg_ctl"), "-D", self.data,
                            "-m", mode, "-w", "-t", "60", "stop"])
        self._must("pg_ctl stop", r)
        self.running = False

    def destroy(self):
        if self.top is None:
            return
        if self.running:
            try:
                self.stop("immediate")
            except RuntimeError:
                pass
        shutil.rmtree(self.top, ignore_errors=True)
        self.top = None

    def url(self, dbname, user=PG_ROLE):
        return f"postgresql://{user}@/{dbname}?host={self.sockdir}"

    def psql(self, sql, db="postgres", user=PG_ADMIN):
        """Runs sql through psql; returns its unaligned output."""
        r = subprocess.run([os.path.join(PG_BIN, "psql"), "-X", "-q", "-A",
                            "-t", "-v", "ON_ERROR_STOP=1",
                            "-d", self.url(db, user), "-c", sql],
                           capture_output=True, text=True)
        self._must(f"psql {sql!r}", r)
        return r.stdout

    def create_db(self, name):
        """A new empty database owned by the test role; returns its name."""
        base = re.sub(r"[^a-z0-9_]", "_", name.lower())[:40]
        db = f"t{next(self._names)}_{base}"
        self.psql(f"CREATE DATABASE {db} OWNER {PG_ROLE}")
        return db

    def drop_db(self, db):
        self.psql(f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")

    def log_tail(self, lines=40):
        try:
            with open(self.logfile) as f:
                return "server log:\n" + "".join(f.readlines()[-lines:])
        except (OSError, TypeError):
            return ""


_server = None
# The databases made, oldest first: (key, name).
_made = []
# key (the SQLite path the call stands for) -> PostgreSQL URI.
_urls = {}


def pg_server():
    """The run's PostgreSQL server, started on first use."""
    if not PG:
        raise RuntimeError("pg_server() with POSTERN_TEST_DB="
                           f"{BACKEND}")
    return pg_server_any()


def stop_server():
    """Stops and removes the run's server, if one was started."""
    global _server
    if _server is not None:
        _server.destroy()
        _server = None


def db_url(tmpdir, name):
    """What follows "database =" in a node config: with SQLite the file
    <tmpdir>/<name>.db, with PostgreSQL the URI of a database made for
    it. Like the file, the database is the same for the same tmpdir and
    name (a node restarted on its old config finds its data), and empty
    for a new one. Nodes that share a database are given the same value."""
    path = os.path.join(str(tmpdir), f"{name}.db")
    if not PG:
        return path
    key = os.path.realpath(path)
    if key not in _urls:
        s = pg_server()
        db = s.create_db(name)
        _made.append((key, db))
        _urls[key] = s.url(db)
    return _urls[key]


def drop_made(keep=0):
    """Drops the databases made after the first keep of them (they belong
    to longer-lived fixtures). Connections left to them are ended."""
    while len(_made) > keep:
        key, db = _made.pop()
        del _urls[key]
        if _server is not None and _server.running:
            _server.drop_db(db)


def made_count():
    return len(_made)


def is_pg_url(url):
    return url.startswith(("postgresql://", "postgres://"))


def q(sql):
    """sql written for sqlite3 ("?" placeholders) in psycopg2's paramstyle:
    "?" outside quotes becomes %s, a literal % becomes %%."""
    out = []
    quote = None
    for ch in sql:
        if quote:
            if ch == quote:
                quote = None
            out.append("%%" if ch == "%" else ch)
            continue
        if ch in ("'", '"'):
            quote = ch
            out.append(ch)
        elif ch == "?":
            out.append("%s")
        elif ch == "%":
            out.append("%%")
        else:
            out.append(ch)
    return "".join(out)


def _plain(row):
    # bytea arrives as memoryview; sqlite3 gives bytes.
    if row is None:
        return None
    return tuple(bytes(v) if isinstance(v, memoryview) else v for v in row)


class _PgCursor:
    def __init__(self, cur):
        self._c = cur

    def fetchone(self):
        return _plain(self._c.fetchone())

    def fetchall(self):
        return [_plain(r) for r in self._c.fetchall()]

    def __iter__(self):
        return iter(self.fetchall())

    @property
    def rowcount(self):
        return self._c.rowcount


class _PgConn:
    """The part of sqlite3.Connection the tests use, over psycopg2."""

    def __init__(self, url, timeout=None):
        import psycopg2
        kw = {}
        if timeout is not None:
            # sqlite3's busy timeout, as a lock wait limit.
            kw["options"] = f"-c lock_timeout={int(timeout * 1000)}"
        self._db = psycopg2.connect(url, **kw)

    def execute(self, sql, args=()):
        cur = self._db.cursor()
        cur.execute(q(sql), tuple(args))
        return _PgCursor(cur)

    def executemany(self, sql, seq):
        cur = self._db.cursor()
        cur.executemany(q(sql), [tuple(a) for a in seq])
        return _PgCursor(cur)

    def commit(self):
        self._db.commit()

    def rollback(self):
        self._db.rollback()

    def close(self):
        self._db.close()

    def __enter__(self):
        return self

    def __exit__(self, et, ev, tb):
        # Like sqlite3: commit or roll back, and stay open.
        if et is None:
            self._db.commit()
        else:
            self._db.rollback()
        return False


def db_connect(url, timeout=None):
    """A DB-API connection to a node's database (the value db_url() gave),
    sqlite3's or one with the same execute/commit/close over psycopg2;
    SQL is written with "?" placeholders for both."""
    if is_pg_url(url):
        return _PgConn(url, timeout)
    import sqlite3
    if timeout is None:
        return sqlite3.connect(url)
    return sqlite3.connect(url, timeout=timeout)


def pg_server_any():
    """The run's PostgreSQL server whatever POSTERN_TEST_DB says: for the
    tests about PostgreSQL itself (several nodes on one database, the
    server going away), which run in the SQLite run too. Shared with
    pg_server() when the run is on PostgreSQL."""
    global _server
    if _server is None:
        s = PgServer()
        atexit.register(s.destroy)
        try:
            s.init()
        except Exception:
            s.destroy()
            raise
        _server = s
    elif not _server.running:
        _server.start()
    return _server


def pg_url(tmpdir, name):
    """As db_url(), but always a PostgreSQL URI on pg_server_any()'s
    server. The database is dropped with the others a test made
    (drop_made)."""
    key = os.path.realpath(os.path.join(str(tmpdir), f"{name}.db"))
    if key not in _urls:
        s = pg_server_any()
        db = s.create_db(name)
        _made.append((key, db))
        _urls[key] = s.url(db)
    return _urls[key]


def db_holds(url, words):
    """The words (str) found anywhere in the data of a node's database:
    the SQLite file with its WAL, or a pg_dump of the PostgreSQL database
    (bytea and large objects appear there as hex, so the hex of each word
    is looked for too)."""
    if not is_pg_url(url):
        data = b""
        for p in (url, url + "-wal"):
            if os.path.exists(p):
                with open(p, "rb") as f:
                    data += f.read()
        return [w for w in words if w.encode() in data]
    db = url.split("/")[3].split("?")[0]
    s = pg_server_any()
    r = subprocess.run([os.path.join(PG_BIN, "pg_dump"), "--data-only",
                        "--blobs", "-d", s.url(db, PG_ADMIN)],
                       capture_output=True)
    if r.returncode != 0:
        raise RuntimeError(f"pg_dump {db}: {r.stderr.decode()}")
    dump = r.stdout.lower()
    return [w for w in words if w.encode().lower() in dump or
            w.encode().hex().encode() in dump]
