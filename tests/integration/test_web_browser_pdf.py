"""The PDF OTP pages in a real browser (tests/browser/pdf.mjs): sign-up
from the link in the PDF mail, the PDF password list and the password
page at 375 and 1280 px, with screenshots in build/browser-shots/. Skipped
like test_web_browser.py when chromium or playwright-core is missing."""

import os
import re
import subprocess

from conftest import BROWSER_DIR, BUILD, require_browser
from test_pdf_otp import _parts, _pdf_mail
from test_web_portal import Portal  # noqa: F401


def test_browser_pdf_pages(tmp_path, notify_sink):  # noqa: F811
    require_browser()
    p = Portal(str(tmp_path), notify_sink)
    try:
        p.deliver("ext@example.org", _pdf_mail())
        text = _parts(notify_sink.wait(1)[0]["data"])[1]
        signup = re.search(r"https://\S+/signup\?token=[0-9a-f]{64}",
                           text).group(0)
        pdf = re.search(r"https://\S+(/pdf/[0-9a-f]{24})", text).group(1)
        shots = os.path.join(BUILD, "browser-shots")
        os.makedirs(shots, exist_ok=True)
        env = dict(os.environ, BASE=p.base, SIGNUP=signup[len(p.base):],
                   PDF=pdf, SHOTS=shots)
        r = subprocess.run(["node", os.path.join(BROWSER_DIR, "pdf.mjs")],
                           cwd=BROWSER_DIR, env=env, capture_output=True,
                           text=True, timeout=180)
        assert r.returncode == 0, r.stdout + r.stderr + p.d.log()
        assert "all steps passed" in r.stdout
        for name in ("pdf-list", "pdf-password"):
            for w in (375, 1280):
                assert os.path.getsize(
                    os.path.join(shots, f"{name}-{w}.png")) > 0
    finally:
        p.stop()
