"""Encrypted storage against the real daemon: messages are sealed (CMS
EnvelopedData) to the portal's and an escrow certificate, the web decrypts
them through pkeyd, nothing of the body or attachment names lies in clear
in the state directory, `openssl cms -decrypt` opens a file with the escrow
key, and while the key is locked mail is still accepted and the web
answers 503 until postern-cli or a password agent unlocks it."""

import glob
import os
import re
import socket
import subprocess
import time

import pytest

from conftest import bin_path
from dbutil import PG, db_holds, db_url
from test_web_portal import Browser, Portal, _mail, _signup  # noqa: F401

PW = "storage pass phrase 7"


def _keypair(d, name, pw):
    key, cert = os.path.join(d, f"{name}.key"), os.path.join(d, f"{name}.pem")
    args = ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-keyout",
            key, "-out", cert, "-subj", f"/CN=postern {name}", "-days", "30"]
    args += ["-passout", f"pass:{pw}"] if pw else ["-noenc"]
    subprocess.run(args, check=True, capture_output=True)
    return key, cert


def _setup(tmp, unlock="environment", keys=None, certs=None):
    kd = os.path.join(tmp, "keys")
    os.makedirs(kd, exist_ok=True)
    if keys is None:
        pkey, pcert = _keypair(kd, "portal", PW)
        ekey, ecert = _keypair(kd, "escrow", None)
        certs = os.path.join(kd, "webmail-encryption.pem")
        with open(certs, "w") as f:
            f.write(open(pcert).read() + open(ecert).read())
        keys = [pkey]
    klist = ", ".join(f'"{k}"' for k in keys)
    return f"""
storage_encryption = {{
  enabled = true;
  certificates = "{certs}";
  private_key = [ {klist} ];
  unlock = "{unlock}";
  control_socket = "{tmp}/storage.sock";
  ask_dir = "{tmp}/ask";
}};
"""


def _state_files(tmp):
    for root, _, files in os.walk(tmp):
        if "/keys" in root:
            continue
        for f in files:
            p = os.path.join(root, f)
            if os.path.isfile(p):
                yield p


def _grep(tmp, words):
    found = []
    for p in _state_files(tmp):
        data = open(p, "rb").read()
        for w in words:
            if w.encode() in data:
                found.append((p, w))
    if PG:
        # The database is not in the state directory: its dump.
        found += [("database", w) for w in db_holds(db_url(tmp, "portal"),
                                                    words)]
    return found


# Words that lie only in the subject, the display name of From and an
# attachment's file name.
SUBJ_WORD, NAME_WORD, FILE_WORD = ("orchidvortex", "Plumtreeperson",
                                   "strategyplanname")


def _message_with_attachment():
    m = _mail(subject=f"Quarterly {SUBJ_WORD} figures",
              sender=f'"{NAME_WORD} Quillmore" <alice@example.com>',
              body="The zebrafishquux figures are in.")
    m.add_attachment(b"%PDF-1.4 tangerineblob\n", maintype="application",
                     subtype="pdf", filename="strategyplanname.pdf")
    return m


def _cli(portal, *args, input=None):
    return subprocess.run([bin_path("postern-cli"), "-c", portal.conf,
                           *args], capture_output=True, text=True,
                          input=input)


@pytest.fixture
def sealed_portal(tmp_path, notify_sink, monkeypatch):
    tmp = str(tmp_path)
    monkeypatch.setenv("POSTERN_STORAGE_PASSWORD", PW)
    p = Portal(tmp, notify_sink, extra=_setup(tmp))
    p.tmp = tmp
    yield p
    p.stop()


def test_sealed_read_grep_and_escrow(sealed_portal, notify_sink):
    p = sealed_portal
    assert p.d.wait_for(r"storage unlocked")
    p.deliver("ext@example.org", _message_with_attachment())
    br = Browser(p)
    _signup(p, notify_sink, br)
    st, r, page = br.get("/inbox")
    # The inbox shows From and Subject, sealed in the row, opened.
    assert SUBJ_WORD in page and NAME_WORD in page
    mid = re.search(r'href="/message\?id=(\d+)"', page).group(1)
    st, r, page = br.get(f"/message?id={mid}")
    assert st == 200 and "zebrafishquux" in page
    assert "strategyplanname.pdf" in page
    st, r, body = br.get(f"/message/eml?id={mid}")
    assert st == 200 and "zebrafishquux" in body
    parts = re.findall(r'href="(/message/part\?[^"]+)"', page)
    assert parts
    st, r, att = br.get(parts[0].replace("&amp;", "&"))
    assert st == 200 and "tangerineblob" in att

    # Nothing of the content in clear anywhere in the state directory:
    # body, attachment, and subject, display name and file name, which
    # the database holds sealed (the log file included).
    assert _grep(p.tmp, ["zebrafishquux", "tangerineblob", FILE_WORD,
                         SUBJ_WORD, NAME_WORD]) == []
    # The CLI, which has no key, lists the message without them.
    lst = _cli(p, "mailbox", "list", "--email", "ext@example.org")
    assert lst.returncode == 0, lst.stderr
    assert "(sealed)" in lst.stdout and SUBJ_WORD not in lst.stdout

    # The escrow key alone opens the file with openssl.
    files = glob.glob(os.path.join(p.tmp, "messages", "m-*"))
    assert len(files) == 1
    out = subprocess.run(["openssl", "cms", "-decrypt", "-inform", "DER",
                          "-in", files[0], "-inkey",
                          os.path.join(p.tmp, "keys", "escrow.key")],
                         capture_output=True, check=True)
    assert b"zebrafishquux" in out.stdout
    assert b"strategyplanname.pdf" in out.stdout


def test_locked_start_cli_unlock(tmp_path, notify_sink, monkeypatch):
    tmp = str(tmp_path)
    monkeypatch.delenv("POSTERN_STORAGE_PASSWORD", raising=False)
    p = Portal(tmp, notify_sink, extra=_setup(tmp))
    try:
        # Locked: mail is accepted and sealed, the web answers 503.
        p.deliver("ext@example.org", _message_with_attachment())
        assert p.d.wait_for(r"stored msg=")
        assert _grep(tmp, ["zebrafishquux", "tangerineblob", SUBJ_WORD,
                           NAME_WORD, FILE_WORD]) == []
        br = Browser(p)
        st, r, page = br.get("/login")
        assert st == 503 and "temporarily unavailable" in page
        assert _cli(p, "storage", "status").stdout == "locked\n"
        r = _cli(p, "storage", "unlock", "--password-file", "-",
                 input="not the password\n")
        assert r.returncode != 0 and "wrong password" in r.stderr
        assert p.d.wait_for(r"wrong password")
        assert _cli(p, "storage", "status").stdout == "locked\n"
        r = _cli(p, "storage", "unlock", "--password-file", "-",
                 input=PW + "\n")
        assert r.returncode == 0, r.stderr
        assert _cli(p, "storage", "status").stdout == "unlocked\n"
        # The message stored while locked reads now.
        _signup(p, notify_sink, br)
        st, r, page = br.get("/inbox")
        mid = re.search(r'href="/message\?id=(\d+)"', page).group(1)
        st, r, page = br.get(f"/message?id={mid}")
        assert st == 200 and "zebrafishquux" in page
    finally:
        p.stop()


def _agent_answer(askdir, password, deadline=30):
    """A minimal password agent: the ask file's Socket gets '+password'."""
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        for f in glob.glob(os.path.join(askdir, "ask.*")):
            text = open(f).read()
            if "NotAfter=0" not in text:
                continue
            sock = re.search(r"^Socket=(.+)$", text, re.M).group(1)
            s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            s.sendto(b"+" + password.encode(), sock)
            s.close()
            return f
        time.sleep(0.05)
    raise AssertionError("no ask file")


def test_ask_agent_unlock(tmp_path, notify_sink, monkeypatch):
    tmp = str(tmp_path)
    os.makedirs(os.path.join(tmp, "ask"))
    monkeypatch.delenv("POSTERN_STORAGE_PASSWORD", raising=False)
    p = Portal(tmp, notify_sink, extra=_setup(tmp, unlock="ask"))
    try:
        assert p.d.wait_for(r"asking for the password")
        _agent_answer(os.path.join(tmp, "ask"), "wrong one")
        assert p.d.wait_for(r"wrong password \(from the password agent\)")
        assert _cli(p, "storage", "status").stdout == "locked\n"
        _agent_answer(os.path.join(tmp, "ask"), PW)
        assert p.d.wait_for(r"storage unlocked \(password from the "
                            r"password agent\)")
        assert _cli(p, "storage", "status").stdout == "unlocked\n"
        st, r, page = Browser(p).get("/login")
        assert st == 200
    finally:
        p.stop()


def test_check_names_mismatches(sealed_portal):
    p = sealed_portal
    kd = os.path.join(p.tmp, "keys")
    good = subprocess.run([bin_path("external-portal"), "-c", p.conf,
                           "--check"], capture_output=True, text=True,
                          env=dict(os.environ,
                                   POSTERN_STORAGE_PASSWORD=PW))
    assert good.returncode == 0, good.stderr
    assert "escrow" in good.stderr and "has no key" in good.stderr
    # Only the escrow certificate: the portal key matches nothing.
    conf = open(p.conf).read().replace("webmail-encryption.pem",
                                       "escrow.pem")
    bad = os.path.join(p.tmp, "bad.conf")
    open(bad, "w").write(conf)
    r = subprocess.run([bin_path("external-portal"), "-c", bad, "--check"],
                       capture_output=True, text=True,
                       env=dict(os.environ, POSTERN_STORAGE_PASSWORD=PW))
    assert r.returncode != 0
    assert f"{kd}/portal.key: no certificate" in r.stderr
    r = subprocess.run([bin_path("external-portal"), "-c", p.conf,
                        "--check"], capture_output=True, text=True,
                       env=dict(os.environ, POSTERN_STORAGE_PASSWORD="no"))
    assert r.returncode != 0 and "password does not open it" in r.stderr
