"""make bench, phase "pg": the portal on PostgreSQL against the portal on
SQLite, in the same run, on this machine.

Starts a private PostgreSQL server (tests/integration/pgserver.py:
initdb in the temporary directory, a unix socket only, fsync and
synchronous_commit on, the durability of SQLite's synchronous=FULL; one
database owned by an unprivileged role) and two portals with the
same configuration but the `database` line: one on that server, one on
an SQLite file. Both get the same users and the same 10,000-message
mailbox (build/harness/inbox_fill, through the store's own code), then
LMTP ingest (smtp-source, 10 sessions) and the inbox page (wrk) are
measured on both, alternating A/B round after round; each figure is the
median of the rounds. The target: PostgreSQL reaches at least half of
SQLite's figures. The server is stopped at the end of the phase, also on
an error or ^C."""

import importlib.util
import os
import subprocess
import time

from benchlib import Unavailable
from pgserver import ROLE, PgServer, PgUnavailable

KEYS = ["pg-ingest", "pg-notified", "lite-ingest", "lite-notified",
        "pg-inbox", "lite-inbox"]


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
    if importlib.util.find_spec("psycopg2") is None:
        F.fail(KEYS, "python3-psycopg2 is not installed")
        return
    try:
        capture = conftest.Sink()
    except Exception as e:
        F.fail(KEYS, f"aiosmtpd: {e}")
        return
    B.on_cleanup(capture.stop)
    try:
        try:
            pg = PgServer(work)
        except PgUnavailable as e:
            raise Unavailable(str(e))
        B.on_cleanup(pg.stop)
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
    try:
        F.extra["pg-connections"] = pg.count(
            "SELECT COUNT(*) FROM pg_stat_activity WHERE usename = "
            f"'{ROLE}' AND pid <> pg_backend_pid()")
    except Exception as e:      # a detail only
        F.extra["pg-connections"] = f"not read ({e})"
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
