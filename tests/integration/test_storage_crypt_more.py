"""Encrypted storage, the harder cases against the real daemon: a kill -9
of the portal while several clients stream mail in loses no acknowledged
message and leaves no half-sealed file (every stored file opens with
`openssl cms -decrypt` and the escrow key, and through the web after
unlock); key rotation keeps old messages readable and seals new ones to the
new certificate and the escrow one."""

import os
import re
import smtplib
import subprocess
import threading

from test_portal_ingest import Portal as IngestPortal, RELAY, message
from test_storage_crypt import PW, _keypair, _setup
from test_web_portal import Browser, Portal, _mail, _signup

from conftest import Daemon, bin_path
from dbutil import db_connect, db_holds, db_url


def _restart(p):
    """The same web portal started again on its configuration (the
    previous daemon is gone)."""
    p.d = Daemon([bin_path("external-portal"), "-c", p.conf], ready=None)
    p.d.wait_for(r"ingest: ready$")
    p.d.wait_for(r"web: ready$")
    return p


def _escrow_open(path, key):
    """The plaintext of a sealed file, opened with openssl alone."""
    r = subprocess.run(["openssl", "cms", "-decrypt", "-inform", "DER",
                        "-in", path, "-inkey", key], capture_output=True)
    assert r.returncode == 0, (path, r.stderr)
    return r.stdout


def _recipients(path):
    """The serial numbers the file's content key is wrapped to."""
    r = subprocess.run(["openssl", "cms", "-cmsout", "-print", "-inform",
                        "DER", "-in", path], capture_output=True, text=True,
                       check=True)
    return set(re.findall(r"serialNumber: (?:0x)?([0-9A-Fa-f]+)", r.stdout))


def _serial(cert):
    r = subprocess.run(["openssl", "x509", "-noout", "-serial", "-in", cert],
                       capture_output=True, text=True, check=True)
    return r.stdout.strip().split("=", 1)[1]


def _norm(serials):
    return {s.upper().lstrip("0") for s in serials}


def test_kill9_during_sealed_stream(tmp_path, monkeypatch):
    monkeypatch.setenv("POSTERN_STORAGE_PASSWORD", PW)
    p = IngestPortal(tmp_path, start=False)
    with open(p.conf, "a") as f:
        f.write(_setup(p.dir))
    escrow = os.path.join(p.dir, "keys", "escrow.key")
    p.start()
    acked, lock = [], threading.Lock()
    stop, enough = threading.Event(), threading.Event()

    def stream(k):
        i = 0
        while not stop.is_set():
            subj = f"sealed{k}x{i}"
            body = (f"marker-{subj}-end\r\n".encode() +
                    os.urandom(300 + 211 * (i % 17)).hex().encode() + b"\r\n")
            try:
                with smtplib.SMTP("127.0.0.1", p.port, timeout=10) as s:
                    s.sendmail("alice@example.com",
                               [f"bob=example.org@{RELAY}"],
                               message(subj, body=body))
                with lock:
                    acked.append(subj)
                    if len(acked) >= 20:
                        enough.set()
            except (OSError, smtplib.SMTPException):
                pass
            i += 1

    threads = [threading.Thread(target=stream, args=(k,)) for k in range(3)]
    for t in threads:
        t.start()
    try:
        assert enough.wait(120), "no messages acknowledged"
        p.daemon.kill9()
    finally:
        stop.set()
        for t in threads:
            t.join()
    with lock:
        acked = list(acked)
    p.start()
    try:
        p.daemon.wait_for(r"store: recovery")
        rows = p.rows("SELECT id, path FROM portal_messages WHERE owner = ? "
                      "ORDER BY id", ("bob@example.org",))
        files = set(os.listdir(p.store))
        assert files == {r[1] for r in rows}
        # Every stored file is a whole CMS envelope the escrow key opens,
        # and every acknowledged message is among them.
        opened = set()
        for _, name in rows:
            plain = _escrow_open(os.path.join(p.store, name), escrow)
            m = re.search(rb"marker-(sealed\d+x\d+)-end", plain)
            assert m, name
            opened.add(m.group(1).decode())
        missing = [s for s in acked if s not in opened]
        assert not missing, f"acknowledged but lost: {missing}"
        # Nothing of the bodies in clear anywhere in the state directory
        # (the database and the spool included).
        for root, _, names in os.walk(p.dir):
            if root.endswith("/keys"):
                continue
            for n in names:
                with open(os.path.join(root, n), "rb") as f:
                    assert b"marker-sealed" not in f.read(), n
        assert db_holds(p.db, ["marker-sealed"]) == []
    finally:
        p.stop()


def test_kill9_then_web_reads_after_unlock(tmp_path, notify_sink,
                                           monkeypatch):
    """The same crash, read back through the web: the portal restarts
    locked, is unlocked with postern-cli, and the message page shows the
    acknowledged messages."""
    tmp = str(tmp_path)
    monkeypatch.setenv("POSTERN_STORAGE_PASSWORD", PW)
    p = Portal(tmp, notify_sink, extra=_setup(tmp))
    acked, lock = [], threading.Lock()
    stop, enough = threading.Event(), threading.Event()

    def stream(k):
        i = 0
        while not stop.is_set():
            word = f"webmark{k}y{i}"
            try:
                p.deliver("ext@example.org",
                          _mail(subject=f"s {word}", body=f"b {word} b"))
                with lock:
                    acked.append(word)
                    if len(acked) >= 8:
                        enough.set()
            except (OSError, smtplib.SMTPException):
                pass
            i += 1

    threads = [threading.Thread(target=stream, args=(k,)) for k in range(2)]
    for t in threads:
        t.start()
    try:
        assert enough.wait(120), "no messages acknowledged"
        p.d.kill9()
    finally:
        stop.set()
        for t in threads:
            t.join()
    monkeypatch.delenv("POSTERN_STORAGE_PASSWORD")
    p2 = _restart(p)
    try:
        r = subprocess.run([bin_path("postern-cli"), "-c", p.conf, "storage",
                            "unlock", "--password-file", "-"],
                           input=PW + "\n", capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        br = Browser(p2)
        _signup(p2, notify_sink, br)
        ids, path = [], "/inbox"
        while path:
            st, _, page = br.get(path)
            assert st == 200
            ids += re.findall(r'href="/message\?id=(\d+)"', page)
            nxt = re.search(r'href="(/inbox\?[^"]*before=\d+)" rel="next"',
                            page)
            path = nxt.group(1).replace("&amp;", "&") if nxt else None
        seen = set()
        for mid in ids:
            st, _, page = br.get(f"/message?id={mid}")
            assert st == 200
            seen |= set(re.findall(r"webmark\d+y\d+", page))
        missing = [w for w in acked if w not in seen]
        assert not missing, f"acknowledged but unreadable: {missing}"
    finally:
        p2.d.stop()


def _read_all(br):
    """The text of every message page of the inbox, one string."""
    out, path = [], "/inbox"
    while path:
        st, _, page = br.get(path)
        assert st == 200, page
        for mid in re.findall(r'href="/message\?id=(\d+)"', page):
            st, _, msg = br.get(f"/message?id={mid}")
            assert st == 200
            out.append(msg)
        nxt = re.search(r'href="(/inbox\?[^"]*before=\d+)" rel="next"', page)
        path = nxt.group(1).replace("&amp;", "&") if nxt else None
    return "\n".join(out)


def _stored(tmp):
    c = db_connect(db_url(tmp, "portal"))
    try:
        return [r[0] for r in c.execute("SELECT path FROM portal_messages")]
    finally:
        c.close()


def test_rotation_keeps_old_messages_and_seals_to_the_new_key(
        tmp_path, notify_sink, monkeypatch):
    tmp = str(tmp_path)
    kd = os.path.join(tmp, "keys")
    monkeypatch.setenv("POSTERN_STORAGE_PASSWORD", PW)
    p = Portal(tmp, notify_sink, extra=_setup(tmp))
    store = os.path.join(tmp, "messages")
    try:
        p.deliver("ext@example.org", _mail(subject="before",
                                           body="oldrotationword"))
        br = Browser(p)
        _signup(p, notify_sink, br)
        assert "oldrotationword" in _read_all(br)
    finally:
        p.stop()
    (old_file,) = _stored(tmp)

    # Rotate: a new key pair; the certificate file names the new
    # certificate and the escrow one; the old key stays listed, after the
    # new one, with its certificate appended.
    nkey, ncert = _keypair(kd, "portal2", PW)
    okey, ocert = os.path.join(kd, "portal.key"), os.path.join(kd,
                                                               "portal.pem")
    ecert = os.path.join(kd, "escrow.pem")
    with open(okey, "a") as f:
        f.write(open(ocert).read())
    with open(os.path.join(kd, "webmail-encryption.pem"), "w") as f:
        f.write(open(ncert).read() + open(ecert).read())
    conf = open(p.conf).read()
    conf = conf.replace(f'private_key = [ "{okey}" ]',
                        f'private_key = [ "{nkey}", "{okey}" ]')
    assert nkey in conf
    open(p.conf, "w").write(conf)
    r = subprocess.run([bin_path("external-portal"), "-c", p.conf,
                        "--check"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr

    _restart(p)
    try:
        assert p.d.wait_for(r"storage unlocked")
        p.deliver("ext@example.org", _mail(subject="after",
                                           body="newrotationword"))
        assert p.d.wait_for(r"stored msg=")
        (new_file,) = set(_stored(tmp)) - {old_file}
        # Both read through the web, the old one with the old key.
        text = _read_all(br)
        assert "oldrotationword" in text and "newrotationword" in text
        # The new file is sealed to the new certificate and the escrow
        # one, not to the retired certificate; the old file as before.
        new_to = _norm(_recipients(os.path.join(store, new_file)))
        old_to = _norm(_recipients(os.path.join(store, old_file)))
        assert new_to == _norm({_serial(ncert), _serial(ecert)})
        assert old_to == _norm({_serial(ocert), _serial(ecert)})
        # And openssl agrees: the new key opens the new file, the
        # escrow key both.
        r = subprocess.run(["openssl", "cms", "-decrypt", "-inform", "DER",
                            "-in", os.path.join(store, new_file), "-inkey",
                            nkey, "-passin", f"pass:{PW}"],
                           capture_output=True)
        assert r.returncode == 0 and b"newrotationword" in r.stdout
        for f in (old_file, new_file):
            _escrow_open(os.path.join(store, f),
                         os.path.join(kd, "escrow.key"))
    finally:
        p.stop()
