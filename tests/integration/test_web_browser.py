"""The portal in a real browser: tests/browser/portal.mjs drives the
Debian chromium through playwright-core against the real daemon. Skipped
only when chromium or playwright-core is not installed (make deps installs
both)."""

import os
import re
import subprocess
from email.message import EmailMessage

import pytest

from conftest import ROOT, BUILD
from test_web_portal import Portal, _text_of, notify_sink  # noqa: F401

BROWSER_DIR = os.path.join(ROOT, "tests", "browser")


def test_browser_flow(tmp_path, notify_sink):  # noqa: F811
    if not os.path.exists("/usr/bin/chromium") or not os.path.isdir(
            os.path.join(BROWSER_DIR, "node_modules", "playwright-core")):
        pytest.skip("chromium or playwright-core missing (run make deps)")
    p = Portal(str(tmp_path), notify_sink)
    try:
        m = EmailMessage()
        m["From"] = "Alice <alice@example.com>"
        m["To"] = "ext@example.org"
        m["Subject"] = "html test"
        m.set_content("plain version")
        m.add_alternative(
            "<p id=\"m\">safe</p><script>document.getElementById('m')"
            ".textContent='PWNED';window.parent.__pwned=1</script>",
            subtype="html")
        m.add_attachment(b"attachment body\n", maintype="text",
                         subtype="plain", filename="report.txt")
        p.deliver("ext@example.org", m)
        link = re.search(r"https://\S+/signup\?token=[0-9a-f]{64}",
                         _text_of(notify_sink.wait(1)[0]["data"])).group(0)
        shots = os.path.join(BUILD, "browser-shots")
        os.makedirs(shots, exist_ok=True)
        env = dict(os.environ, BASE=p.base, SIGNUP=link[len(p.base):],
                   SHOTS=shots)
        r = subprocess.run(["node", os.path.join(BROWSER_DIR, "portal.mjs")],
                           cwd=BROWSER_DIR, env=env, capture_output=True,
                           text=True, timeout=180)
        assert r.returncode == 0, r.stdout + r.stderr + p.d.log()
        assert "all steps passed" in r.stdout
    finally:
        p.stop()
