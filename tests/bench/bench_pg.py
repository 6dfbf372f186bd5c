"""make bench, phase "pg": the portal on PostgreSQL against the portal on
SQLite, in the same run, on this machine.

Starts a private PostgreSQL server (initdb in the temporary directory,
owned by the postgres user when run as root, since the server refuses
root; a unix socket in that directory and no TCP listener; fsync and
synchronous_commit on, the durability of SQLite's synchronous=FULL) with
one database owned by an unprivileged role, and two portals with the
same configuration but the `database` line: one on that server, one on
an SQLite file. Both get the same users and the same 10,000-message
mailbox (build/harness/inbox_fill, through the store's own code), then
LMTP ingest (smtp-source, 10 sessions) and the inbox page (wrk) are
measured on both, alternating A/B round after round; each figure is the
median of the rounds. The target: PostgreSQL reaches at least half of
SQLite's figures. The server is stopped at the end of the phase, also on
an error or ^C."""

import glob
import os
import pwd
import re
import subprocess
import time

from benchlib import Unavailable

KEYS = ["pg-ingest", "pg-notified", "lite-ingest", "lite-notified",
        "pg-inbox", "lite-inbox"]
ROLE = "postern"
DBNAME = "postern"


def _bindir():
    """The newest installed PostgreSQL's programs, preferring 15 (the
    version Debian 12 ships)."""
    dirs = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                  key=lambda p: int(p.split("/")[4]))
    if not dirs:
        raise Unavailable("PostgreSQL is not installed (postgresql-15)")
    for d in dirs:
        if "/15/" in d:
            return os.path.dirname(d)
    return os.path.dirname(dirs[-1])


class PgServer:
    """A throw-away PostgreSQL cluster under work/pg, on a unix socket
    only reachable by its owner (and root)."""

    def __init__(self, B, work):
        self.B = B
        self.bin = _bindir()
        self.dir = os.path.join(work, "pg")
        self.data = os.path.join(self.dir, "data")
        self.sock = os.path.join(self.dir, "sock")
        self.log = os.path.join(self.dir, "server.log")
        if B.is_root():
            try:
                pw = pwd.getpwnam("postgres")
            except KeyError:
                raise Unavailable("no postgres user to run the server as")
        else:
            pw = pwd.getpwuid(os.getuid())
        self.uid, self.gid = pw.pw_uid, pw.pw_gid
        for d in (self.dir, self.sock):
            os.makedirs(d, mode=0o700)
            os.chown(d, self.uid, self.gid)
        self._run("initdb", "-D", self.data, "-U", "postgres", "-E", "UTF8",
                  "--locale=C", "--auth=trust", "--no-instructions")
        opts = ("-c listen_addresses='' "
                f"-c unix_socket_directories='{self.sock}' "
                "-c fsync=on -c synchronous_commit=on "
                "-c full_page_writes=on -c max_connections=200")
        B.on_cleanup(self.stop)
        self._run("pg_ctl", "-D", self.data, "-l", self.log, "-w", "-t",
                  "60", "-o", opts, "start")
        self.psql(f"CREATE ROLE {ROLE} LOGIN")
        self.psql(f"CREATE DATABASE {DBNAME} OWNER {ROLE}")
        self.url = f"postgresql://{ROLE}@/{DBNAME}?host={self.sock}"
        self._conn = None

    def _as_owner(self):
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
                               timeout=120, preexec_fn=self._as_owner(),
                               start_new_session=True)
        except (OSError, subprocess.SubprocessError) as e:
            raise Unavailable(f"{prog}: {e}")
        if r.returncode != 0:
            raise Unavailable(f"{prog}: {(r.stderr or r.stdout).strip()} "
                              f"{self.B.tail(self.log, 3)}")
        return r.stdout

    def psql(self, sql):
        return self._run("psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h",
                         self.sock, "-U", "postgres", "-d", "postgres",
                         "-c", sql)

    def count(self, sql):
        """One number from the bench database, over a kept connection."""
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
            out = self._run("postgres", "--version")
        except Unavailable:
            return "?"
        m = re.search(r"\(PostgreSQL\) (\S+)", out)
        return m.group(1) if m else "?"

    def stop(self):
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        pidfile = os.path.join(self.data, "postmaster.pid")
        if not os.path.exists(pidfile):
            return
        try:
            self._run("pg_ctl", "-D", self.data, "-m", "fast", "-w", "-t",
                      "30", "stop")
        except Unavailable:
            pass
        try:
            with open(pidfile) as f:
                pid = int(f.readline())
        except (OSError, ValueError):
            return
        self.B.kill_group(os.getpgid(pid) if self._alive(pid) else pid,
                          timeout=5)

    @staticmethod
    def _alive(pid):
        try:
            os.kill(pid, 0)
            return True
        except OSError:
            return False


def _prepare(a, work, name, database, ctx, notify_port, capture):
    """A portal on database with the bench's two users and the mailbox of
    a.inbox messages; restarted with notify_port as its notification
    relay. Returns it."""
    B = ctx.B
    p = ctx.Portal(a.build, work, name, capture.port, database=database)
    ctx.say(f"pg: {name}: signing up two users")
    ctx.signup(p, capture, "web@example.org")
    ctx.signup(p, capture, "lmtp@example.org")
    p.d.stop()
    fill = a.inbox - 3
    ctx.say(f"pg: {name}: filling web@example.org with {fill} messages "
            "through the store")
    argv = [ctx.bin_path(a.build, "harness/inbox_fill"), p.db, p.store,
            "web@example.org", str(fill)]
    env = dict(os.environ)
    # Setup only: the measured paths keep every fsync. SQLite's are
    # skipped by eatmydata, PostgreSQL's commit wait by this session's
    # synchronous_commit (the server's own setting stays on).
    env["PGOPTIONS"] = "-c synchronous_commit=off"
    if B.shutil.which("eatmydata"):
        argv.insert(0, B.shutil.which("eatmydata"))
    t = time.monotonic()
    out = subprocess.run(argv, capture_output=True, text=True, env=env,
                         timeout=1800)
    if out.returncode != 0:
        raise Unavailable(f"inbox_fill ({name}): " + out.stderr.strip())
    ctx.F.extra[f"{name}-fill"] = (fill, time.monotonic() - t, out.stdout)
    p.restart(notify_port)
    return p


def phase_pg(a, work, ctx):
    """Fills ctx.F.runs[k] for k in KEYS. ctx: F, B, Portal, signup,
    login, bin_path, say."""
    import conftest
    F, B = ctx.F, ctx.B
    try:
        import psycopg2  # noqa: F401
    except ImportError:
        F.fail(KEYS, "python3-psycopg2 is not installed")
        return
    try:
        capture = conftest.Sink()
    except Exception as e:
        F.fail(KEYS, f"aiosmtpd: {e}")
        return
    B.on_cleanup(capture.stop)
    try:
        pg = PgServer(B, work)
        ctx.say(f"pg: PostgreSQL {pg.version()} on {pg.sock}")
        F.extra["pg-version"] = pg.version()
        portals = {}
        for key, database in (("lite", None), ("pg", pg.url)):
            notify = B.CountingSink(work, f"sink-notify-{key}")
            portals[key] = (_prepare(a, work, f"portal-{key}", database,
                                     ctx, notify.port, capture), notify)
    except Unavailable as e:
        F.fail(KEYS, str(e))
        return

    def outbox_left(key):
        p, _ = portals[key]
        sql = "SELECT COUNT(*) FROM portal_outbox"
        return pg.count(sql) if key == "pg" else B.sqlite_count(p.db, sql)

    def lmtp(key):
        p, notify = portals[key]
        s0, m0 = notify.counts()
        t0, t_src = B.smtp_source(p.lmtp_port, a.n, 10, lmtp=True,
                                  rcpt=f"lmtp=example.org@{ctx.RELAY}")
        deadline = time.monotonic() + 300
        while (left := outbox_left(key)) != 0:
            if time.monotonic() > deadline:
                raise Unavailable(f"{left} notifications still queued "
                                  "after 300 s")
            time.sleep(0.01)
        s1, m1 = notify.counts()
        t_done = max(t_src, notify.t_mesg) if m1 > m0 else t_src
        F.runs.setdefault(f"{key}-ingest", []).append(a.n / (t_src - t0))
        return a.n / (t_done - t0)

    cookies = {}
    try:
        for key, (p, _) in portals.items():
            br = ctx.login(p, "web@example.org")
            st, r, page = br.request("GET", "/inbox")
            if st != 200 or page.count(b'href="/message?id=') < 50:
                raise Unavailable(f"{key}: the inbox page answered {st}")
            cookies[key] = br.cookie_header()
            F.extra[f"{key}-inbox-bytes"] = len(page)
    except Unavailable as e:
        F.fail(["pg-inbox", "lite-inbox"], str(e))

    def inbox(key):
        if key not in cookies:
            raise Unavailable(f"no session on the {key} portal")
        p, _ = portals[key]
        return B.wrk(f"https://127.0.0.1:{p.web_port}/inbox", cookies[key],
                     seconds=a.wrk_seconds)

    jobs = [("lite-notified", lambda: lmtp("lite")),
            ("pg-notified", lambda: lmtp("pg")),
            ("lite-inbox", lambda: inbox("lite")),
            ("pg-inbox", lambda: inbox("pg"))]
    for rnd in range(a.rounds):
        ctx.say(f"pg round {rnd + 1}/{a.rounds}")
        # A/B pairs; which engine goes first alternates.
        for i in (0, 2):
            pair = jobs[i:i + 2]
            for key, fn in (pair if rnd % 2 == 0 else pair[::-1]):
                F.attempt(key, fn)
    F.extra["pg-connections"] = pg.count(
        "SELECT COUNT(*) FROM pg_stat_activity WHERE usename = "
        f"'{ROLE}'")
    for p, _ in portals.values():
        p.stop()
    pg.stop()


def report_rows(F, fmt, ratio, rtxt):
    """The table rows of this phase."""
    m = F.med
    v = F.extra.get("pg-version", "")
    pi, li = m("pg-ingest"), m("lite-ingest")
    pn, ln = m("pg-notified"), m("lite-notified")
    pb, lb = m("pg-inbox"), m("lite-inbox")
    return [
        f"| LMTP ingest on PostgreSQL {v}, 10 sessions | "
        f"{fmt(pi, ' msg/s')}, {fmt(pn)} counting its notifications | "
        f"the same portal on SQLite {fmt(li)}, {fmt(ln)} | "
        f"{rtxt(ratio(pi, li), 'of SQLite', '≥ 0.5')}; "
        f"{rtxt(ratio(pn, ln), 'with notifications')} |",
        f"| inbox page on PostgreSQL {v}, `wrk -c16` | {fmt(pb, ' req/s')} "
        f"| the same portal on SQLite {fmt(lb)} | "
        f"{rtxt(ratio(pb, lb), 'of SQLite', '≥ 0.5')} |"]


def report_details(F):
    for key in ("lite", "pg"):
        if f"portal-{key}-fill" in F.extra:
            n, dt, out = F.extra[f"portal-{key}-fill"]
            print(f"- inbox_fill ({key}): {n} messages in {dt:.1f} s")
            for line in out.splitlines():
                print(f"  - {line}")
        if f"{key}-inbox-bytes" in F.extra:
            print(f"- {key}-inbox: {F.extra[key + '-inbox-bytes']:,} bytes "
                  "per response")
    if "pg-connections" in F.extra:
        print("- PostgreSQL connections the portal held at the end: "
              f"{F.extra['pg-connections']}")
