"""make demo's script (scripts/demo.py), run from a scratch copy of the
tree so the developer's demo-state/ is untouched: it prints its progress,
the portal URL and a sign-up link that works over HTTPS with the demo CA,
stays up until interrupted, and a second run reuses its state (the same
CA, the second message stored next to the first)."""

import hashlib
import os
import queue
import re
import shutil
import signal
import socket
import ssl
import subprocess
import threading
import urllib.request

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD = os.environ.get("POSTERN_BUILD", os.path.join(ROOT, "build"))
PORTS = (10024, 10025, 10026, 10027, 10028, 8443)


def port_busy(port):
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


class Demo:
    def __init__(self, root, mode=None):
        self.root = root
        env = dict(os.environ)
        if mode is not None:
            env["MODE"] = mode
        self.proc = subprocess.Popen(
            ["/usr/bin/python3", os.path.join(root, "scripts", "demo.py")],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            start_new_session=True, env=env)
        self.lines = []
        self.q = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            self.q.put(line.rstrip("\n"))
        self.q.put(None)

    def wait_for(self, pattern, timeout=120):
        rx = re.compile(pattern)
        while True:
            try:
                line = self.q.get(timeout=timeout)
            except queue.Empty:
                raise AssertionError(f"no {pattern!r} in:\n" +
                                     "\n".join(self.lines))
            if line is None:
                raise AssertionError(f"demo ended before {pattern!r}:\n" +
                                     "\n".join(self.lines))
            self.lines.append(line)
            m = rx.search(line)
            if m:
                return m

    def saw(self, pattern):
        """The first match of pattern in the lines read so far."""
        rx = re.compile(pattern)
        for line in self.lines:
            m = rx.search(line)
            if m:
                return m
        raise AssertionError(f"no {pattern!r} in:\n" + "\n".join(self.lines))

    def interrupt(self):
        os.killpg(self.proc.pid, signal.SIGINT)
        self.wait_for(r"^==> stopped$", 60)
        return self.proc.wait(timeout=60)

    def kill(self):
        """After a failure: the script and the daemons it started (each in
        a session of its own) go."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        prefix = os.path.join(self.root, "build") + "/"
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    argv0 = f.read().split(b"\0")[0].decode()
            except OSError:
                continue
            if argv0.startswith(prefix):
                try:
                    os.kill(int(pid), signal.SIGTERM)
                except ProcessLookupError:
                    pass


@pytest.fixture
def tree(tmp_path):
    busy = [p for p in PORTS if port_busy(p)]
    if busy:
        pytest.skip(f"demo ports in use (a demo running?): {busy}")
    root = tmp_path / "tree"
    (root / "scripts").mkdir(parents=True)
    shutil.copy(os.path.join(ROOT, "scripts", "demo.py"), root / "scripts")
    os.symlink(os.path.join(ROOT, "config"), root / "config")
    os.symlink(os.path.join(ROOT, "tests"), root / "tests")
    os.symlink(BUILD, root / "build")
    return root


def ca_digest(root):
    with open(root / "demo-state" / "pki" / "ca-bundle.pem", "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def test_demo_runs_and_second_run_reuses_state(tree):
    demo = Demo(str(tree))
    try:
        # Daemon log lines interleave with the steps: wait for the end of
        # the start-up, then look at everything it printed.
        demo.wait_for(r"Ctrl-C stops it")
        demo.saw(r"^==> test CA, certificates and keys")
        demo.saw(r"^==> starting external-portal$")
        demo.saw(r"^==> starting internal-gw$")
        demo.saw(r"to=<robin@example\.org> decision=portal-webmail .*"
                 r"status=250")
        demo.saw(r"owner=robin@example\.org route=webmail .* stored msg=1\b")
        demo.saw(r"^==> portal: https://127\.0\.0\.1:8443/")
        # The second outside recipient got a PDF with a one-time password.
        pdfmail = demo.saw(r"==> PDF mail for pat@example\.net in the sink: "
                           r"(demo-state/sink/\d+\.eml)$")
        assert b"application/pdf" in open(tree / pdfmail.group(1),
                                           "rb").read()
        demo.saw(r"==> password page \(sign in first\): "
                 r"https://127\.0\.0\.1:8443/pdf/[0-9a-f]{24}$")
        link = demo.saw(r"^==> sign-up link from the notification: "
                        r"(https://127\.0\.0\.1:8443/signup\?token="
                        r"[0-9a-f]{64})$").group(1)
        # The link works, over TLS verified with the demo's own CA.
        ctx = ssl.create_default_context(
            cafile=str(tree / "demo-state" / "pki" / "ca-bundle.pem"))
        with urllib.request.urlopen(link, context=ctx, timeout=30) as r:
            page = r.read().decode()
        assert r.status == 200
        assert 'type="password"' in page and "csrf" in page, page
        # Encrypted storage is on: the stored file is CMS EnvelopedData,
        # and the recovery command the demo prints opens it with the
        # escrow key from demo-state/.
        demo.saw(r'^==> encrypted storage on: unlock = "environment"')
        for f in ("webmail-encryption.pem", "escrow.key"):
            assert os.path.exists(tree / "demo-state" / f), f
        with open(tree / "demo-state" / "webmail-encryption.pem") as f:
            assert f.read().count("BEGIN CERTIFICATE") == 2
        cmd = demo.saw(r"^==> stored sealed \(CMS\); recovery with the "
                       r"escrow key: (openssl cms -decrypt .*)$").group(1)
        argv = cmd.split()
        sealed = tree / argv[argv.index("-in") + 1]
        with open(sealed, "rb") as f:
            assert b"Hello Robin" not in f.read()
        info = subprocess.run(["openssl", "cms", "-cmsout", "-print",
                               "-inform", "DER", "-in", str(sealed)],
                              capture_output=True, text=True, check=True)
        assert "pkcs7-envelopedData" in info.stdout
        r = subprocess.run(argv[:argv.index("-out")], cwd=tree,
                           capture_output=True)
        assert r.returncode == 0, r.stderr
        assert b"Hello Robin" in r.stdout
        assert demo.interrupt() == 0
    finally:
        demo.kill()
    ca = ca_digest(tree)

    demo = Demo(str(tree))
    try:
        demo.wait_for(r"Ctrl-C stops it")
        # Message 2 of the first run was the PDF OTP copy for pat@.
        demo.saw(r"owner=robin@example\.org route=webmail .* stored msg=3\b")
        assert demo.interrupt() == 0
    finally:
        demo.kill()
    assert ca_digest(tree) == ca


def test_demo_addon_mode_runs_the_tunnel(tree):
    """make demo MODE=addon: the portal copy crosses as tunnel mail and the
    portal requires it."""
    demo = Demo(str(tree), mode="addon")
    try:
        demo.wait_for(r"Ctrl-C stops it")
        demo.saw(r"^==> mode: addon")
        demo.saw(r"^==> add-on tunnel keys")
        demo.saw(r"to=<robin@example\.org> decision=portal-webmail .*"
                 r"tunnel id [0-9a-f]{32}.*status=250")
        demo.saw(r"tunnel to=<robin@example\.org> owner=robin@example\.org "
                 r"route=webmail stored msg=1\b")
        demo.saw(r"tunnel id=[0-9a-f]{32} route=webmail "
                 r"from=<gateway@relay-to-webmail\.private>")
        assert demo.interrupt() == 0
    finally:
        demo.kill()
