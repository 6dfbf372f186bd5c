"""The PDF builder's figures for `make bench`: a 20 KiB HTML message with
a 1 MiB attachment made into an AES-256 PDF by build/harness/pdf_build
(the code both nodes run), in one process warmed up on a small message
first (fontconfig and pango load each face once per process: the warm-up
uses the same regular, bold, italic and link styles and a small
attachment, so the growth measured is what the message costs, not the
process's one-time font loading). Prints the time of
the first and of the best of five runs, and how much the peak resident
set size grew for the message, against three times its size."""

import json
import os
import subprocess
import tempfile
from email.message import EmailMessage


def make_message(path):
    words = ("Quarterly <b>figures</b> and <i>notes</i>, "
             "<a href=\"https://example.org/r\">report</a>. ")
    html = "<html><body>"
    n = 0
    while len(html) < 20 * 1024:
        html += f"<p>Paragraph {n}: " + words * 3 + "</p>\n"
        n += 1
    html += "</body></html>"
    m = EmailMessage()
    m["From"] = "Alice <alice@example.com>"
    m["To"] = "bob@outside.example"
    m["Subject"] = "Bench: 20 KiB HTML and 1 MiB attachment"
    m["Date"] = "Mon, 01 Jan 2024 10:00:00 +0000"
    m.set_content("text alternative")
    m.add_alternative(html, subtype="html")
    m.add_attachment(os.urandom(1024 * 1024), maintype="application",
                     subtype="octet-stream", filename="data.bin")
    open(path, "wb").write(bytes(m))


def run(build):
    harness = os.path.join(build, "harness", "pdf_build")
    with tempfile.TemporaryDirectory(prefix="postern-bench-pdf-") as d:
        big, small = os.path.join(d, "big.eml"), os.path.join(d, "small.eml")
        make_message(big)
        w = EmailMessage()
        w["From"] = "Alice <alice@example.com>"
        w["To"] = "bob@outside.example"
        w["Subject"] = "warm up"
        w.set_content("warm up")
        w.add_alternative("<p>Warm <b>up</b> <i>now</i>, <a href=\"https://"
                          "example.org/\">link</a>.</p><ul><li>one</li>"
                          "</ul>", subtype="html")
        w.add_attachment(b"x" * 100, maintype="application",
                         subtype="octet-stream", filename="w.bin")
        open(small, "wb").write(bytes(w))
        r = subprocess.run([harness, "-n", "5", "-w", small, big,
                            os.path.join(d, "out.pdf"),
                            "bench-password-0123"],
                           capture_output=True, text=True)
        print("\n### PDF builder (shared/pdf.c, one process)")
        if r.returncode != 0:
            print(f"- n/a: {r.stderr.strip()}")
            return
        j = json.loads(r.stdout)
        growth = (j["hwm_end_kb"] - j["hwm_warm_kb"]) * 1024
        print("| what | figure |\n|---|---|")
        print(f"| message: 20 KiB HTML + 1 MiB attachment | "
              f"{j['size'] / 1048576:.2f} MiB |")
        print(f"| to an encrypted PDF, first / best of 5 | "
              f"{j['first_ms']:.0f} ms / {j['best_ms']:.0f} ms |")
        print(f"| peak RSS growth for the message (after warm-up) | "
              f"{growth / 1048576:.2f} MiB = "
              f"{growth / j['size']:.2f} x message size "
              f"(bound: < 3 x) |")
        print(f"| peak RSS after the font warm-up | "
              f"{j['hwm_warm_kb'] / 1024:.1f} MiB |")


if __name__ == "__main__":
    import sys
    run(sys.argv[1] if len(sys.argv) > 1 else
        os.path.join(os.path.dirname(__file__), "..", "..", "build"))
