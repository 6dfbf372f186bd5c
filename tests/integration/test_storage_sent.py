"""Encrypted storage and the Sent folder: the copy of a reply the user
sends from the portal is sealed like an ingested message (its file to the
storage and escrow certificates, recipients and subject in sealed_meta
with the file's key, the clear columns empty), nothing the user wrote
lies in clear in the state directory or the database once the reply
relay took the message, and the Sent list, the message page, the .eml
download and delete work for the user as before. postern-cli storage
encrypt-existing seals Sent copies stored before encryption was on."""

import os
import re
import subprocess
import types
import urllib.parse


from conftest import Daemon, bin_path, free_port
from dbutil import db_connect, db_url
from test_storage_crypt import PW, _grep, _setup
from test_web_compose import REPLY_CONF, _original, _post_compose
from test_web_portal import PASSWORD, Browser, Portal, _signup

# Words that lie only in what the user writes: the subject, a recipient's
# display name, the body and an attachment's name and content.
SUBJ_WORD, NAME_WORD, BODY_WORD = ("kestrelmosaic", "Wrenharbour",
                                   "pelicanquarry")
FILE_WORD, ATT_WORD = "otterledger", "gravelsonnet"
WORDS = [SUBJ_WORD, NAME_WORD, BODY_WORD, FILE_WORD, ATT_WORD]


def _portal(tmp, notify_sink, reply_sink, sealed):
    extra = REPLY_CONF.format(port=reply_sink.port)
    if sealed:
        extra += _setup(tmp)
    p = Portal(tmp, notify_sink, extra=extra)
    p.tmp = tmp
    p.cli("property", "global", "set", "--name", "reply-allowed-domains",
          "--value", "example.com")
    return p


def _reply_form(p, notify_sink):
    """Delivers the original, signs up and opens the reply form:
    (browser, the original's id, the form page)."""
    p.deliver("ext@example.org", _original())
    br = Browser(p)
    _signup(p, notify_sink, br)
    st, r, page = br.get("/inbox")
    mid = re.search(r'href="/message\?id=(\d+)"', page).group(1)
    st, r, form = br.get(f"/compose?reply={mid}")
    assert st == 200
    return br, mid, form


def _reply(p, notify_sink, reply_sink):
    """Signs up, answers the one inbox message; the Sent copy's id."""
    br, mid, form = _reply_form(p, notify_sink)
    st, r, page = _post_compose(br, form, {
        "reply": mid, "to": f'"{NAME_WORD} Finch" <alice@example.com>',
        "cc": "", "subject": f"Plans for {SUBJ_WORD}",
        "body": f"The {BODY_WORD} budget is attached.\r\n"},
        files=[("attachment", f"{FILE_WORD}.txt", "text/plain",
                f"{ATT_WORD}\n".encode())])
    assert st == 303, page
    got = reply_sink.wait(1)[0]
    assert BODY_WORD.encode() in got["data"]
    # Sent: the outbox's spool file (plain until then) is gone.
    assert p.d.wait_for(r"outbox: reply to alice@example.com sent")
    assert [f for f in os.listdir(p.spool) if f.startswith("reply.")] == []
    st, r, page = br.get("/inbox?folder=sent")
    sid = re.search(r'href="/message\?id=(\d+)"', page).group(1)
    return br, sid


def _sent_row(tmp):
    db = db_connect(db_url(tmp, "portal"))
    try:
        return db.execute("SELECT id, hdr_from, subject, sealed_meta, path "
                          "FROM portal_messages WHERE folder = 'sent'"
                          ).fetchall()
    finally:
        db.close()


def _escrow_open(tmp, path):
    r = subprocess.run(["openssl", "cms", "-decrypt", "-inform", "DER",
                        "-in", path, "-inkey",
                        os.path.join(tmp, "keys", "escrow.key")],
                       capture_output=True)
    assert r.returncode == 0, r.stderr
    return r.stdout


def _assert_sealed(tmp):
    (sid, hfrom, subj, meta, name), = _sent_row(tmp)
    assert hfrom in (None, "") and subj in (None, "")
    assert meta is not None and len(meta) > 0
    path = os.path.join(tmp, "messages", name)
    data = open(path, "rb").read()
    assert data.startswith(b"\x30\x80")     # CMS EnvelopedData, BER
    for w in WORDS:
        assert w.encode() not in data
    # Sealed to the escrow certificate too, as ingested mail is.
    text = _escrow_open(tmp, path)
    assert BODY_WORD.encode() in text and SUBJ_WORD.encode() in text
    # Nowhere in clear: store directory, spool, database (the SQLite
    # file with its WAL, or a dump of the PostgreSQL database).
    assert _grep(tmp, WORDS) == []
    return sid


def _assert_readable(br, sid):
    st, r, page = br.get("/inbox?folder=sent")
    assert st == 200
    assert f"Plans for {SUBJ_WORD}" in page and NAME_WORD in page
    st, r, page = br.get(f"/message?id={sid}")
    assert st == 200
    assert BODY_WORD in page and SUBJ_WORD in page and NAME_WORD in page
    assert f"{FILE_WORD}.txt" in page
    st, r, eml = br.get(f"/message/eml?id={sid}")
    assert st == 200 and BODY_WORD in eml and SUBJ_WORD in eml


def test_sent_copy_sealed_and_readable(tmp_path, notify_sink, reply_sink,
                                       monkeypatch):
    tmp = str(tmp_path)
    monkeypatch.setenv("POSTERN_STORAGE_PASSWORD", PW)
    p = _portal(tmp, notify_sink, reply_sink, sealed=True)
    try:
        assert p.d.wait_for(r"storage unlocked")
        br, sid = _reply(p, notify_sink, reply_sink)
        assert int(sid) == _assert_sealed(tmp)
        _assert_readable(br, sid)

        # Delete from the Sent folder: row and file go.
        (_, _, _, _, name), = _sent_row(tmp)
        st, r, page = br.get("/inbox?folder=sent")
        body = urllib.parse.urlencode([("csrf", br.csrf(page)),
                                       ("folder", "sent"), ("id", sid)])
        st, r, _ = br.request("POST", "/inbox/delete", body, {
            "Content-Type": "application/x-www-form-urlencoded"})
        assert st == 303
        assert _sent_row(tmp) == []
        assert not os.path.exists(os.path.join(tmp, "messages", name))
        st, r, page = br.get("/inbox?folder=sent")
        assert SUBJ_WORD not in page
        assert br.get(f"/message?id={sid}")[0] == 404
    finally:
        p.stop()


def test_encrypt_existing_seals_sent_copies(tmp_path, notify_sink,
                                            reply_sink, monkeypatch):
    tmp = str(tmp_path)
    monkeypatch.setenv("POSTERN_STORAGE_PASSWORD", PW)
    p = _portal(tmp, notify_sink, reply_sink, sealed=False)
    try:
        _reply(p, notify_sink, reply_sink)
    finally:
        p.stop()
    # Stored before encryption was on: in clear.
    (_, hfrom, subj, meta, name), = _sent_row(tmp)
    assert SUBJ_WORD in subj and NAME_WORD in hfrom and meta is None
    with open(p.conf, "a") as f:
        f.write(_setup(tmp))
    r = subprocess.run([bin_path("postern-cli"), "-c", p.conf, "storage",
                        "encrypt-existing"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "2 sealed" in r.stdout      # the inbox message and the Sent copy
    sid = _assert_sealed(tmp)

    p.d = Daemon([bin_path("external-portal"), "-c", p.conf], ready=None)
    try:
        assert p.d.wait_for(r"storage unlocked")
        p.d.wait_for(r"web: ready$")
        br = Browser(p)
        st, r, page = br.post("/login", {"email": "ext@example.org",
                                         "password": PASSWORD})
        assert st == 303, page
        _assert_readable(br, str(sid))
    finally:
        p.d.stop()


def test_pending_reply_row_keeps_no_subject(tmp_path, notify_sink,
                                            monkeypatch):
    """While the reply relay is down the reply waits in the outbox: its
    rows name the recipient but not the subject (only the spool file,
    removed once sent, holds the message)."""
    tmp = str(tmp_path)
    monkeypatch.setenv("POSTERN_STORAGE_PASSWORD", PW)
    down = types.SimpleNamespace(port=free_port())   # nothing listens
    p = _portal(tmp, notify_sink, down, sealed=True)
    try:
        assert p.d.wait_for(r"storage unlocked")
        br, mid, form = _reply_form(p, notify_sink)
        st, r, page = _post_compose(br, form, {
            "reply": mid, "to": "alice@example.com", "cc": "",
            "subject": f"Plans for {SUBJ_WORD}", "body": "short"})
        assert st == 303, page
        db = db_connect(db_url(tmp, "portal"))
        try:
            rows = db.execute("SELECT rcpt, subject FROM portal_outbox "
                              "WHERE kind = 'reply'").fetchall()
        finally:
            db.close()
        assert rows == [("alice@example.com", None)]
        assert _sent_row(tmp)[0][2] is None
    finally:
        p.stop()
