"""The portal in a real browser: tests/browser/portal.mjs drives the
Debian chromium through playwright-core against the real daemon, with a
reply relay sink for the reply step. Skipped when chromium or
playwright-core is not installed (make deps installs both), except under
CI (the environment variable CI set), where that is a failure."""

import email
import email.policy
import os
import re
import subprocess
from email.message import EmailMessage


from conftest import BROWSER_DIR, BUILD, require_browser
from test_web_portal import Portal, _text_of  # noqa: F401
from test_web_compose import REPLY_CONF  # noqa: F401


def test_browser_flow(tmp_path, notify_sink, reply_sink):  # noqa: F811
    require_browser()
    p = Portal(str(tmp_path), notify_sink,
               extra=REPLY_CONF.format(port=reply_sink.port))
    p.cli("property", "global", "set", "--name", "reply-allowed-domains",
          "--value", "example.com")
    try:
        m = EmailMessage()
        m["Message-ID"] = "<browser-1@example.com>"
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
        # The reply the browser sent reached the reply relay, threaded.
        got = reply_sink.wait(1)[0]
        assert got["from"] == "ext@example.org"
        assert got["to"] == ["alice@example.com"]
        reply = email.message_from_bytes(got["data"],
                                         policy=email.policy.default)
        assert reply["In-Reply-To"] == "<browser-1@example.com>"
        assert "Reply from the browser." in \
            reply.get_body(("plain",)).get_content()
        assert [(a.get_filename(), a.get_content())
                for a in reply.iter_attachments()] == \
            [("answer.txt", "answer body\n")]
    finally:
        p.stop()
