"""Shared fixtures for integration tests: real daemons on loopback, real
aiosmtpd next hops. Daemons announce readiness with a log line ending in
": ready"; tests wait for that line, never for a fixed time."""

import os
import queue
import re
import signal
import socket
import subprocess
import threading
import time

import pytest
from aiosmtpd.controller import Controller

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD = os.environ.get("POSTERN_BUILD", os.path.join(ROOT, "build"))
READY_TIMEOUT = 30

# The ASan/UBSan build: every report is a failure of the test that caused
# it, leak reports included. Known one-time allocations of third-party
# libraries are suppressed in lsan.supp (each entry says why). A report
# makes the process exit SANITIZER_EXIT, which no program of ours uses.
SANITIZER_EXIT = 86
LSAN_SUPP = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                         "lsan.supp")
SANITIZER_ENV = {
    "ASAN_OPTIONS": f"detect_leaks=1:abort_on_error=0:"
                    f"exitcode={SANITIZER_EXIT}",
    "LSAN_OPTIONS": f"suppressions={LSAN_SUPP}:print_suppressions=0:"
                    f"exitcode={SANITIZER_EXIT}",
    "UBSAN_OPTIONS": f"print_stacktrace=1:halt_on_error=1:"
                     f"exitcode={SANITIZER_EXIT}",
}
# postern-cli and the harness programs inherit these too.
for _k, _v in SANITIZER_ENV.items():
    os.environ.setdefault(_k, _v)

# ASan, LeakSanitizer and UBSan reports, also the one-line forms.
SANITIZER_RX = re.compile(
    r"ERROR: (AddressSanitizer|LeakSanitizer)|"
    r"SUMMARY: (AddressSanitizer|LeakSanitizer|UndefinedBehaviorSanitizer)|"
    r"AddressSanitizer:DEADLYSIGNAL|runtime error: ")


def sanitizer_report(text):
    """The lines of text that are sanitizer reports, or []."""
    return [l for l in text.splitlines() if SANITIZER_RX.search(l)]


def check_sanitizer(what, text, returncode=None):
    """Fails when text (a program's output) holds a sanitizer report or the
    program exited with the sanitizers' exit status."""
    bad = sanitizer_report(text)
    if bad or returncode == SANITIZER_EXIT:
        pytest.fail(f"sanitizer report from {what}:\n{text}", pytrace=False)


def bin_path(name):
    p = os.path.join(BUILD, name)
    if not os.path.exists(p):
        pytest.fail(f"{p} is not built (run make)")
    return p


_given_ports = set()


def vmhwm_kib(pid):
    """Peak resident memory (VmHWM) of one process, in KiB."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    raise AssertionError(f"no VmHWM for {pid}")


BROWSER_DIR = os.path.join(ROOT, "tests", "browser")


def require_browser():
    """Skips the calling test when Debian's chromium or npm playwright-core
    is missing (make deps installs both); under CI (CI set) that fails."""
    if os.path.exists("/usr/bin/chromium") and os.path.isdir(
            os.path.join(BROWSER_DIR, "node_modules", "playwright-core")):
        return
    if _ci() or os.environ.get("CI"):
        pytest.fail("chromium or playwright-core missing under CI "
                    "(run make deps)")
    pytest.skip("chromium or playwright-core missing (run make deps)")


def _ci():
    return os.environ.get("CI") == "true"


def needs_root(reason):
    """Marks a test that needs root. Not root: skipped with the reason
    (pytest -rs shows it), or failed under CI (CI=true), where make check
    runs as root."""
    return pytest.mark.needs_root(reason=reason)


def pytest_configure(config):
    config.addinivalue_line("markers",
                            "needs_root(reason): the test needs root")


def pytest_runtest_setup(item):
    m = item.get_closest_marker("needs_root")
    if m is None or os.geteuid() == 0:
        return
    why = m.kwargs.get("reason", "")
    if _ci():
        pytest.fail(f"needs root ({why}), and CI=true", pytrace=False)
    pytest.skip(f"needs root: {why}")


def unmet(reason):
    """A requirement of the machine is unmet (tmpfs, overlay mounts...).
    As root, or under CI, that is a failure: make check as root must test
    what it claims; otherwise a skip with the reason."""
    if os.geteuid() == 0 or _ci():
        pytest.fail(f"requirement unmet: {reason}", pytrace=False)
    pytest.skip(reason)


def free_port(host="127.0.0.1"):
    """A port nothing listens on, never the same one twice in a run."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind((host, 0))
            port = s.getsockname()[1]
        if port not in _given_ports:
            _given_ports.add(port)
            return port


class Daemon:
    """A daemon in the foreground; its stderr is collected line by line."""

    def __init__(self, argv, env=None, ready=r": ready$"):
        e = dict(os.environ)
        for k, v in SANITIZER_ENV.items():
            e.setdefault(k, v)
        if env:
            e.update(env)
        self.argv = argv
        self.lines = []
        self.checked = False
        self._q = queue.Queue()
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, env=e,
                                     start_new_session=True)
        _daemons.append(self)
        self._t = threading.Thread(target=self._reader, daemon=True)
        self._t.start()
        if ready:
            self.wait_for(ready, READY_TIMEOUT)

    def _reader(self):
        for raw in self.proc.stdout:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            self.lines.append(line)
            self._q.put(line)
        self._q.put(None)

    def wait_for(self, pattern, timeout=READY_TIMEOUT):
        """Blocks until a log line matches pattern; returns the match."""
        rx = re.compile(pattern)
        for line in list(self.lines):
            m = rx.search(line)
            if m:
                return m
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(
                    f"no log line matching {pattern!r}; log:\n" + self.log())
            try:
                line = self._q.get(timeout=left)
            except queue.Empty:
                continue
            if line is None:
                raise AssertionError(
                    f"daemon exited ({self.proc.wait()}) before {pattern!r};"
                    " log:\n" + self.log())
            m = rx.search(line)
            if m:
                return m

    def log(self):
        return "\n".join(self.lines)

    def kill9(self):
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()
        self._drain()
        self.checked = True

    def _drain(self):
        """Waits for the end of the output: children of the daemon (its
        workers) may still write their exit reports after it is gone."""
        self._t.join(timeout=15)
        if self._t.is_alive():
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self._t.join(timeout=5)

    def stop(self):
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self._drain()
        self.checked = True
        # Sanitizer reports mean a bug even when the test passed, also
        # those written while the daemon exits (leaks).
        check_sanitizer(" ".join(self.argv), self.log(),
                        self.proc.returncode)


# Every Daemon of the run, so that none escapes the sanitizer check.
_daemons = []


@pytest.fixture(autouse=True)
def _sanitizer_watch():
    """After each test (and after its fixtures stopped their daemons):
    a report from any daemon it started fails this test, whether or not
    the daemon was stopped; one still running is checked again later."""
    first = len(_daemons)
    yield
    for d in list(_daemons[first:]):
        if d.checked:
            _daemons.remove(d)
            continue
        bad = sanitizer_report(d.log())
        if bad:
            d.checked = True
            _daemons.remove(d)
            check_sanitizer(" ".join(d.argv), d.log())
        elif d.proc.poll() is not None:
            d._drain()
            _daemons.remove(d)
            d.checked = True
            check_sanitizer(" ".join(d.argv), d.log(), d.proc.returncode)


class _Recorder:
    """aiosmtpd handler that records messages and answers per recipient
    from a table: {address: "450 4.2.0 try later"}; data_reply overrides
    the end-of-data answer."""

    def __init__(self):
        self.messages = []
        self.rcpt_replies = {}
        self.data_reply = None
        self.cond = threading.Condition()

    async def handle_RCPT(self, server, session, envelope, address, options):
        r = self.rcpt_replies.get(address)
        if r:
            return r
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.data_reply:
            return self.data_reply
        with self.cond:
            self.messages.append({
                "from": envelope.mail_from,
                "to": list(envelope.rcpt_tos),
                "data": envelope.original_content or envelope.content,
                "tls": session.ssl is not None,
            })
            self.cond.notify_all()
        return "250 2.0.0 OK sink"


class Sink:
    """A real SMTP server (aiosmtpd) standing in for a next hop."""

    def __init__(self, host="127.0.0.1", port=None, tls_context=None,
                 require_starttls=False):
        self.host = host
        self.port = port or free_port(host)
        self.handler = _Recorder()
        kw = {}
        if tls_context is not None:
            kw["tls_context"] = tls_context
            kw["require_starttls"] = require_starttls
        self.controller = Controller(self.handler, hostname=host,
                                     port=self.port, decode_data=False,
                                     enable_SMTPUTF8=True, **kw)
        self.controller.start()

    @property
    def messages(self):
        return self.handler.messages

    def wait(self, count=1, timeout=20):
        """Waits until count messages arrived; returns them."""
        with self.handler.cond:
            ok = self.handler.cond.wait_for(
                lambda: len(self.handler.messages) >= count, timeout)
        assert ok, f"sink got {len(self.handler.messages)} of {count} messages"
        return self.handler.messages

    def stop(self):
        self.controller.stop()


@pytest.fixture
def sink():
    s = Sink()
    yield s
    s.stop()


@pytest.fixture
def sink2():
    s = Sink()
    yield s
    s.stop()


# The portal's notification relay and the relay its users' replies go to.
@pytest.fixture
def notify_sink():
    s = Sink()
    yield s
    s.stop()


@pytest.fixture
def reply_sink():
    s = Sink()
    yield s
    s.stop()


# The database back end (POSTERN_TEST_DB=sqlite|postgresql): see dbutil.
# This file is also loaded by path (tests/e2e), with its folder not on
# the module path.
import sys  # noqa: E402
if os.path.dirname(os.path.abspath(__file__)) not in sys.path:
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dbutil  # noqa: E402


@pytest.fixture(scope="session")
def pg():
    """The run's PostgreSQL server (dbutil.PgServer), for tests of what
    only a shared database gives (several nodes on one database, the
    database going away); skipped in the SQLite run."""
    if not dbutil.PG:
        pytest.skip("PostgreSQL only: run with POSTERN_TEST_DB=postgresql")
    return dbutil.pg_server()


@pytest.fixture(autouse=True)
def _test_databases():
    """Drops the PostgreSQL databases a test made, once its daemons are
    stopped (autouse fixtures are torn down after the test's own)."""
    keep = dbutil.made_count()
    yield
    # Also in the SQLite run: the tests about PostgreSQL itself make
    # databases there too (dbutil.pg_url).
    dbutil.drop_made(keep)


def pytest_sessionfinish(session, exitstatus):
    dbutil.stop_server()


def pytest_report_header(config):
    return f"postern database back end: {dbutil.BACKEND}"
