"""postern-cli storage encrypt-existing: messages stored before encrypted
storage was turned on are sealed in place (CMS EnvelopedData the escrow
key opens with openssl) and read through the web once unlocked; a run
killed with SIGKILL between writing a sealed copy and renaming it leaves
every message whole (plain or sealed), and a second run finishes the
job."""

import glob
import os
import re
import signal
import subprocess
import time

from conftest import Daemon, bin_path
from test_storage_crypt import PW, _grep, _setup
from test_web_portal import (PASSWORD, Browser, Portal, _mail,  # noqa: F401
                             _signup)
from dbutil import db_connect, db_holds, db_url

WORDS = ["alpacaquill", "bramblefjord", "cobaltmirth", "dunlinvortex"]


def _rows(tmp):
    db = db_connect(db_url(tmp, "portal"))
    try:
        return db.execute("SELECT id, path FROM portal_messages "
                          "ORDER BY id").fetchall()
    finally:
        db.close()


def _parts(tmp):
    db = db_connect(db_url(tmp, "portal"))
    try:
        return db.execute("SELECT count(*) FROM portal_parts").fetchone()[0]
    finally:
        db.close()


def _wait_rows(tmp, n, deadline=30):
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if len(_rows(tmp)) >= n:
            return
        time.sleep(0.05)
    raise AssertionError(f"{n} messages not stored")


def _escrow_open(tmp, path):
    return subprocess.run(["openssl", "cms", "-decrypt", "-inform", "DER",
                           "-in", path, "-inkey",
                           os.path.join(tmp, "keys", "escrow.key")],
                          capture_output=True)


def _content(tmp, path):
    """The message text of a store file, plain or sealed."""
    data = open(path, "rb").read()
    if not data.startswith(b"\x30\x80"):    # BER SEQUENCE, indefinite
        return data, False
    r = _escrow_open(tmp, path)
    assert r.returncode == 0, r.stderr
    return r.stdout, True


def _encrypt_existing(conf, env=None):
    return subprocess.run([bin_path("postern-cli"), "-c", conf, "storage",
                           "encrypt-existing"], capture_output=True,
                          text=True, env=dict(os.environ, **(env or {})))


def test_encrypt_existing_interrupted_and_resumed(tmp_path, notify_sink,
                                                  monkeypatch):
    tmp = str(tmp_path)
    monkeypatch.setenv("POSTERN_STORAGE_PASSWORD", PW)
    p = Portal(tmp, notify_sink)
    try:
        for w in WORDS:
            m = _mail(subject=f"About {w}", body=f"The {w} notes.")
            if w == WORDS[0]:
                m.add_attachment(b"%PDF-1.4 quincepebble\n",
                                 maintype="application", subtype="pdf",
                                 filename="heronledger.pdf")
            p.deliver("ext@example.org", m)
        _wait_rows(tmp, len(WORDS))
        _signup(p, notify_sink, Browser(p))
    finally:
        p.stop()
    rows = _rows(tmp)
    assert _parts(tmp) > 0
    mdir = os.path.join(tmp, "messages")
    for _, name in rows:
        assert not _content(tmp, os.path.join(mdir, name))[1]

    # Refused while encryption is off: the web could not read the result.
    r = _encrypt_existing(p.conf)
    assert r.returncode != 0 and "not enabled" in r.stderr

    with open(p.conf, "a") as f:
        f.write(_setup(tmp))

    # Killed (SIGKILL) after two messages, with the third one's sealed
    # copy written but not yet renamed over the plain file.
    r = _encrypt_existing(p.conf, {"POSTERN_TEST_SEAL_KILL_AFTER": "2"})
    assert r.returncode == -signal.SIGKILL, r.stderr
    assert r.stdout.count("sealed message") == 2
    assert glob.glob(os.path.join(mdir, "tmp-seal-*"))
    sealed = []
    for (_, name), w in zip(rows, WORDS):
        text, s = _content(tmp, os.path.join(mdir, name))
        assert w.encode() in text
        sealed.append(s)
    assert sealed == [True, True, False, False]

    # The second run skips the sealed ones and finishes.
    r = _encrypt_existing(p.conf)
    assert r.returncode == 0, r.stderr
    assert "2 sealed, 2 already sealed" in r.stdout
    assert not glob.glob(os.path.join(mdir, "tmp-seal-*"))
    assert _rows(tmp) == rows
    # The part offsets (attachment names in clear) went with the sealing.
    assert _parts(tmp) == 0
    for (_, name), w in zip(rows, WORDS):
        text, s = _content(tmp, os.path.join(mdir, name))
        assert s and w.encode() in text
        assert w.encode() not in open(os.path.join(mdir, name), "rb").read()
    # Nor in the database, which with PostgreSQL holds the store's bytes
    # too (the subjects, with the words, are in clear by design).
    assert db_holds(db_url(tmp, "portal"),
                    [f"The {w} notes" for w in WORDS]) == []
    r = _encrypt_existing(p.conf)
    assert r.returncode == 0 and "0 sealed, 4 already sealed" in r.stdout
    # The subjects (which hold the words) went from the database too.
    assert _grep(tmp, WORDS + ["heronledger"]) == []

    # The portal, unlocked, reads every one of them through the web.
    p.d = Daemon([bin_path("external-portal"), "-c", p.conf], ready=None)
    try:
        assert p.d.wait_for(r"storage unlocked")
        p.d.wait_for(r"web: ready$")
        br = Browser(p)
        st, r, page = br.post("/login", {"email": "ext@example.org",
                                         "password": PASSWORD})
        assert st == 303, page
        st, r, page = br.get("/inbox")
        for w in WORDS:
            assert f"About {w}" in page
        for (mid, _), w in zip(rows, WORDS):
            st, r, page = br.get(f"/message?id={mid}")
            assert st == 200 and w in page
            if w == WORDS[0]:
                assert "heronledger.pdf" in page
                part = re.search(r'href="(/message/part\?[^"]+)"', page)
                st, r, att = br.get(part.group(1).replace("&amp;", "&"))
                assert st == 200 and "quincepebble" in att
    finally:
        p.d.stop()


def test_encrypt_existing_needs_no_password(tmp_path, notify_sink,
                                            monkeypatch):
    tmp = str(tmp_path)
    monkeypatch.delenv("POSTERN_STORAGE_PASSWORD", raising=False)
    p = Portal(tmp, notify_sink)
    try:
        p.deliver("ext@example.org", _mail(body="The gannetplume notes."))
        _wait_rows(tmp, 1)
    finally:
        p.stop()
    with open(p.conf, "a") as f:
        f.write(_setup(tmp))
    r = _encrypt_existing(p.conf)
    assert r.returncode == 0, r.stderr
    assert "1 sealed" in r.stdout
    (_, name), = _rows(tmp)
    text, s = _content(tmp, os.path.join(tmp, "messages", name))
    assert s and b"gannetplume" in text


def test_encrypt_existing_killed_between_row_and_rename(tmp_path,
                                                        notify_sink,
                                                        monkeypatch):
    """Killed after the row's From and Subject were sealed with the new
    copy's key but before the copy replaced the plain file: the next run
    seals the file again and takes From and Subject from its header, so
    the inbox still shows them."""
    tmp = str(tmp_path)
    monkeypatch.setenv("POSTERN_STORAGE_PASSWORD", PW)
    p = Portal(tmp, notify_sink)
    try:
        p.deliver("ext@example.org",
                  _mail(subject="Notes on egretmarrow",
                        sender='"Tamarind Osprey" <ts@example.com>',
                        body="The egretmarrow body."))
        _wait_rows(tmp, 1)
        _signup(p, notify_sink, Browser(p))
    finally:
        p.stop()
    with open(p.conf, "a") as f:
        f.write(_setup(tmp))
    r = _encrypt_existing(p.conf, {"POSTERN_TEST_SEAL_KILL_AFTER": "0",
                                   "POSTERN_TEST_SEAL_KILL_LATE": "1"})
    assert r.returncode == -signal.SIGKILL, r.stderr
    (_, name), = _rows(tmp)
    assert not _content(tmp, os.path.join(tmp, "messages", name))[1]
    r = _encrypt_existing(p.conf)
    assert r.returncode == 0 and "1 sealed" in r.stdout, r.stderr
    assert _grep(tmp, ["egretmarrow", "Tamarind"]) == []

    p.d = Daemon([bin_path("external-portal"), "-c", p.conf], ready=None)
    try:
        assert p.d.wait_for(r"storage unlocked")
        p.d.wait_for(r"web: ready$")
        br = Browser(p)
        st, r, page = br.post("/login", {"email": "ext@example.org",
                                         "password": PASSWORD})
        assert st == 303, page
        st, r, page = br.get("/inbox")
        assert "Notes on egretmarrow" in page and "Tamarind Osprey" in page
    finally:
        p.d.stop()
