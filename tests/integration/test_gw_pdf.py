"""internal-gw's password PDFs against the real daemon: with
pdf-encryption-enabled a recipient without a certificate gets only a mail
carrying an AES-256 PDF of the message; the password is pdf-password, or
with pdf-password-send-to-originator one made for the message and mailed
to the sender first. policy explain shows the decision, ordered after
S/MIME and before the portal."""

import email
import email.policy
import re
import subprocess

import pytest

from conftest import Sink, free_port
from gwutil import Gateway, make_message

G = ("global", "set", "--name")
BODY = "Salary review attached, codeword quillwort.\n"


@pytest.fixture
def out():
    s = Sink()
    yield s
    s.stop()


def _send(gw, rcpts, data, frm="alice@example.com"):
    import smtplib
    with smtplib.SMTP("127.0.0.1", gw.port, timeout=60) as s:
        return s.sendmail(frm, rcpts, data)


def _pdf_of(raw, path):
    m = email.message_from_bytes(raw, policy=email.policy.default)
    for p in m.walk():
        if p.get_content_type() == "application/pdf":
            open(path, "wb").write(p.get_content())
            return m
    raise AssertionError("no PDF in the mail")


def _text(path, pw):
    return subprocess.run(["pdftotext", "-upw", pw, path, "-"],
                          capture_output=True, text=True,
                          check=True).stdout


def test_fixed_password_pdf_only(tmp_path, out):
    gw = Gateway(tmp_path, free_port(), out.port, props=[
        G + ("pdf-encryption-enabled", "--value", "true"),
        ("domain", "set", "--domain", "example.org", "--name",
         "pdf-password", "--value", "shared-secret-2024"),
        G + ("remote-portal-enabled", "--value", "true"),
        G + ("webmail-enabled", "--value", "true"),
    ])
    try:
        r = gw.cli("policy", "explain", "--from", "alice@example.com",
                   "--to", "ext@example.org").stdout
        assert "pdf" in r and "pdf-encryption-enabled=true" in r, r
        _send(gw, ["ext@example.org"], make_message(
            to="ext@example.org", subject="Salaries", body=BODY))
        got = out.wait(1)
        assert len(got) == 1 and got[0]["to"] == ["ext@example.org"]
        raw = got[0]["data"]
        assert b"quillwort" not in raw
        path = str(tmp_path / "fixed.pdf")
        m = _pdf_of(raw, path)
        assert m["Subject"] == "Salaries"
        assert subprocess.run(["qpdf", "--requires-password",
                               path]).returncode == 0
        assert "quillwort" in _text(path, "shared-secret-2024")
        assert subprocess.run(["pdftotext", "-q", path, "-"],
                              capture_output=True).returncode != 0
        assert re.search(r"to=<ext@example.org> decision=pdf .*status=250",
                         gw.daemon.log()), gw.daemon.log()
    finally:
        gw.stop()


def test_password_sent_to_originator(tmp_path, out):
    gw = Gateway(tmp_path, free_port(), out.port, props=[
        G + ("pdf-encryption-enabled", "--value", "true"),
        G + ("pdf-password-send-to-originator", "--value", "true"),
    ])
    try:
        _send(gw, ["ext@example.org"], make_message(
            to="ext@example.org", subject="Salaries", body=BODY))
        got = out.wait(2)
        pwmail = [g for g in got if g["to"] == ["alice@example.com"]]
        pdfmail = [g for g in got if g["to"] == ["ext@example.org"]]
        assert len(pwmail) == 1 and len(pdfmail) == 1, got
        assert pwmail[0]["from"] in ("", "<>")
        text = pwmail[0]["data"].decode()
        assert "ext@example.org" in text and "quillwort" not in text
        shown = re.search(r"\n    ((?:[a-z0-9]{4} ){4}[a-z0-9]{4})\r?\n",
                          text).group(1)
        pw = shown.replace(" ", "")
        assert len(pw) == 20
        path = str(tmp_path / "rand.pdf")
        _pdf_of(pdfmail[0]["data"], path)
        assert b"quillwort" not in pdfmail[0]["data"]
        assert "quillwort" in _text(path, pw)
        enc = subprocess.run(["qpdf", f"--password={pw}",
                              "--show-encryption", path],
                             capture_output=True, text=True).stdout
        assert "R = 6" in enc
    finally:
        gw.stop()


def test_certificate_wins_and_only_if_mandatory(tmp_path, out):
    gw = Gateway(tmp_path, free_port(), out.port, props=[
        G + ("pdf-encryption-enabled", "--value", "true"),
        G + ("pdf-only-if-mandatory", "--value", "true"),
        G + ("pdf-password", "--value", "x-fixed-password-1"),
    ], start=False)
    r = gw.cli("policy", "explain", "--from", "alice@example.com", "--to",
               "ext@example.org").stdout
    assert "pdf-only-if-mandatory=true and encryption is not mandatory" \
        in r, r
    assert "decision" not in r or "pdf\n" not in r
