"""Downloads of large messages over real HTTPS: the .eml original and an
attachment are streamed from the store file in bounded chunks, so the web
process's peak resident memory (VmHWM) stays small however large the
message and however many downloads run at once, and every byte arrives."""

import hashlib
import http.client
import os
import re
import ssl
import threading

import pytest

from conftest import vmhwm_kib
from test_web_portal import PKI, Browser, Portal, _mail, _signup

LIMIT_KIB = 64 * 1024
PARALLEL = 8


@pytest.fixture
def portal(tmp_path, notify_sink, monkeypatch):
    # On the ASan build, freed memory waits in ASan's quarantine (256 MiB
    # by default) instead of being reused, which would measure ASan, not
    # the portal. A small quarantine still catches use after free.
    opts = os.environ.get("ASAN_OPTIONS", "detect_leaks=0:abort_on_error=0")
    monkeypatch.setenv("ASAN_OPTIONS", opts + ":quarantine_size_mb=4")
    p = Portal(str(tmp_path), notify_sink)
    yield p
    p.stop()


def _socket_inodes(port):
    """Inodes of the listening TCP sockets on port."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                next(f)
                for line in f:
                    cols = line.split()
                    if int(cols[1].rsplit(":", 1)[1], 16) == port and \
                            cols[3] == "0A":
                        found.add(cols[9])
        except FileNotFoundError:
            pass
    return found


def web_pid(portal):
    """The web worker: the child of external-portal that holds the HTTPS
    listening socket."""
    inodes = _socket_inodes(portal.web_port)
    parent = portal.d.proc.pid
    with open(f"/proc/{parent}/task/{parent}/children") as f:
        kids = [int(x) for x in f.read().split()]
    for pid in kids:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                link = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            m = re.match(r"socket:\[(\d+)\]", link)
            if m and m.group(1) in inodes:
                return pid
    raise AssertionError("no web worker found")


def _big_message():
    """About 50 MB on the wire: a 36 MiB attachment in base64."""
    payload = os.urandom(1024 * 1024) * 36
    m = _mail(subject="large one", body="The large file is attached.")
    m.add_attachment(payload, maintype="application", subtype="zip",
                     filename="large.zip")
    return m, payload


def _download(br, path, out, i):
    ctx = ssl.create_default_context(
        cafile=os.path.join(PKI, "ca-bundle.pem"))
    c = http.client.HTTPSConnection("127.0.0.1", br.portal.web_port,
                                    context=ctx, timeout=120)
    c.request("GET", path, headers={"Cookie": "; ".join(
        f"{k}={v}" for k, v in br.cookies.items())})
    r = c.getresponse()
    h = hashlib.sha256()
    n = 0
    while True:
        chunk = r.read(65536)
        if not chunk:
            break
        h.update(chunk)
        n += len(chunk)
    out[i] = (r.status, n, h.hexdigest())
    c.close()


def _parallel(br, paths):
    out = [None] * len(paths)
    ts = [threading.Thread(target=_download, args=(br, p, out, i))
          for i, p in enumerate(paths)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return out


def test_parallel_large_downloads_stay_small(portal, notify_sink):
    m, payload = _big_message()
    raw = m.as_bytes()
    portal.deliver("ext@example.org", m)
    br = Browser(portal)
    _signup(portal, notify_sink, br)
    st, r, page = br.get("/inbox")
    mid = re.search(r'href="/message\?id=(\d+)"', page).group(1)

    # The message page lists the attachment with its size, without
    # holding the message in memory.
    st, r, page = br.get(f"/message?id={mid}")
    assert st == 200 and "The large file is attached." in page
    part = re.search(r'/message/part\?id=\d+&amp;part=(\d+)" '
                     r'download>large.zip<', page).group(1)
    assert "36.0 MB" in page

    # The stored copy is what was delivered plus the portal's headers;
    # its size is in the store, and the .eml carries it whole.
    st, r, eml = br.request("GET", f"/message/eml?id={mid}")
    assert st == 200
    assert int(r.getheader("Content-Length")) == len(eml) > len(raw)
    eml_hash = hashlib.sha256(eml).hexdigest()
    del eml
    want_part = hashlib.sha256(payload).hexdigest()

    pid = web_pid(portal)
    paths = ([f"/message/eml?id={mid}"] * (PARALLEL // 2) +
             [f"/message/part?id={mid}&part={part}"] * (PARALLEL // 2))
    res = _parallel(br, paths)
    for path, (status, n, digest) in zip(paths, res):
        assert status == 200, path
        if "/eml" in path:
            assert digest == eml_hash, path
        else:
            assert n == len(payload) and digest == want_part, path
    peak = vmhwm_kib(pid)
    assert peak < LIMIT_KIB, f"web worker peaked at {peak} KiB"
    # The portal is still up and serving.
    assert br.get("/inbox")[0] == 200


def test_download_cut_short_by_client(portal, notify_sink):
    m, payload = _big_message()
    portal.deliver("ext@example.org", m)
    br = Browser(portal)
    _signup(portal, notify_sink, br)
    st, r, page = br.get("/inbox")
    mid = re.search(r'href="/message\?id=(\d+)"', page).group(1)
    ctx = ssl.create_default_context(
        cafile=os.path.join(PKI, "ca-bundle.pem"))
    for _ in range(3):
        c = http.client.HTTPSConnection("127.0.0.1", portal.web_port,
                                        context=ctx, timeout=60)
        c.request("GET", f"/message/eml?id={mid}", headers={
            "Cookie": "; ".join(f"{k}={v}" for k, v in br.cookies.items())})
        r = c.getresponse()
        assert r.status == 200
        assert len(r.read(100000)) == 100000
        c.close()       # gone after the first chunks
    # The worker survives clients that leave early.
    st, r, eml = br.request("GET", f"/message/eml?id={mid}")
    assert st == 200 and len(eml) == int(r.getheader("Content-Length"))


def test_head_of_download_has_no_body(portal, notify_sink):
    portal.deliver("ext@example.org", _mail(subject="small"))
    br = Browser(portal)
    _signup(portal, notify_sink, br)
    st, r, page = br.get("/inbox")
    mid = re.search(r'href="/message\?id=(\d+)"', page).group(1)
    st, r, body = br.request("HEAD", f"/message/eml?id={mid}")
    assert st == 200 and body == b""
    size = int(r.getheader("Content-Length"))
    st, r, eml = br.request("GET", f"/message/eml?id={mid}")
    assert len(eml) == size > 0
