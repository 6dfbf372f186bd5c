"""make bench: Webmail Messenger with 10,000 messages in one mailbox.

Fills the mailbox through the real store (build/harness/inbox_fill, which
also prints SQLite's plan for the listing query), then times over HTTPS
the first inbox page, a page deep in the mailbox, opening a message and
deleting a page of messages. Prints figures; asserts nothing."""

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=None)
    ap.add_argument("-n", type=int, default=10000)
    ap.add_argument("--repeat", type=int, default=10)
    a = ap.parse_args()
    if a.build:
        os.environ["POSTERN_BUILD"] = a.build
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..",
                                    "integration"))
    import conftest  # noqa: E402
    from conftest import Sink  # noqa: E402
    from test_web_portal import Browser, Portal, _mail, _signup  # noqa

    def timed(fn):
        runs = []
        for _ in range(a.repeat):
            t = time.perf_counter()
            fn()
            runs.append((time.perf_counter() - t) * 1000)
        return statistics.median(runs), max(runs)

    sink = Sink()
    with tempfile.TemporaryDirectory() as tmp:
        p = Portal(tmp, sink)
        try:
            p.deliver("ext@example.org", _mail(subject="first"))
            br = Browser(p)
            _signup(p, sink, br)
            t = time.perf_counter()
            out = subprocess.run(
                [conftest.bin_path("harness/inbox_fill"),
                 os.path.join(tmp, "portal.db"),
                 os.path.join(tmp, "messages"), "ext@example.org",
                 str(a.n - 1)], check=True, capture_output=True, text=True)
            fill = time.perf_counter() - t
            print(f"inbox: filled {a.n} messages through the store in "
                  f"{fill:.1f} s ({a.n / fill:.0f} msg/s)")
            for line in out.stdout.splitlines():
                print(f"inbox: {line}")
            if "USING COVERING INDEX portal_messages_list" not in out.stdout:
                print("inbox: WARNING: the listing does not use the "
                      "listing index")

            # Over HTTPS each request is a new TLS connection (http.client,
            # no keep-alive): the figures include the handshake.
            st, r, page = br.get("/inbox")
            ids = re.findall(r'name="id" value="(\d+)"', page)
            newest = int(ids[0])
            deep = newest - a.n + 100      # a page near the oldest
            med, worst = timed(lambda: br.get("/inbox"))
            print(f"inbox: first page: median {med:.1f} ms, "
                  f"max {worst:.1f} ms")
            med, worst = timed(lambda: br.get(f"/inbox?before={deep}"))
            print(f"inbox: deep page (before={deep}): median {med:.1f} ms,"
                  f" max {worst:.1f} ms")
            med, worst = timed(lambda: br.get(f"/message?id={newest}"))
            print(f"inbox: open a message: median {med:.1f} ms, "
                  f"max {worst:.1f} ms")

            runs = []
            for _ in range(a.repeat):
                st, r, page = br.get("/inbox")
                ids = re.findall(r'name="id" value="(\d+)"', page)
                body = urllib.parse.urlencode(
                    [("csrf", br.csrf(page))] + [("id", i) for i in ids])
                t = time.perf_counter()
                br.request("POST", "/inbox/delete", body, {
                    "Content-Type": "application/x-www-form-urlencoded"})
                runs.append((time.perf_counter() - t) * 1000)
            print(f"inbox: delete a page of {len(ids)}: median "
                  f"{statistics.median(runs):.1f} ms, max {max(runs):.1f} ms")
        finally:
            p.stop()
            sink.stop()


if __name__ == "__main__":
    main()
