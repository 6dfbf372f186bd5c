"""A 100 MiB message with encrypted storage on: the ingest seals it as a
stream, pkeyd unwraps its key, the web worker serves the download
decrypting as it reads, and none of the three processes' peak memory
(VmHWM) grows by more than a few MiB of buffers, whatever the size."""

import hashlib
import http.client
import os
import re

from conftest import Daemon, bin_path, vmhwm_kib
from test_storage_crypt import PW, _setup
from test_web_portal import Browser, Portal, _mail, _signup  # noqa: F401

BIG = 100 * 1024 * 1024
# Flat: buffers, not the message (ASan's own overhead included).
BOUND_KIB = 16 * 1024


def _pids(d):
    """{process name: pid} from the log prefix "name[pid] proc: "."""
    res = {}
    for line in d.lines:
        m = re.match(r"\S+\[(\d+)\] (\w+): ", line)
        if m:
            res.setdefault(m.group(2), int(m.group(1)))
    return res


def _download(br, path):
    """Streams the answer: its status, size and SHA-256."""
    c = http.client.HTTPSConnection("127.0.0.1", br.portal.web_port,
                                    context=br.ctx, timeout=300)
    c.request("GET", path, headers={"Cookie": "; ".join(
        f"{k}={v}" for k, v in br.cookies.items())})
    r = c.getresponse()
    h, n = hashlib.sha256(), 0
    while True:
        b = r.read(1 << 20)
        if not b:
            break
        h.update(b)
        n += len(b)
    c.close()
    return r.status, n, h.hexdigest()


def test_hundred_megabytes_sealed_in_flat_memory(tmp_path, notify_sink,
                                                 monkeypatch):
    tmp = str(tmp_path)
    monkeypatch.setenv("POSTERN_STORAGE_PASSWORD", PW)
    # Under ASan freed memory waits in a quarantine (256 MiB by default)
    # and stays resident: that is the sanitizer's peak, not ours.
    if "ASAN_OPTIONS" in os.environ:
        monkeypatch.setenv("ASAN_OPTIONS", os.environ["ASAN_OPTIONS"] +
                           ":quarantine_size_mb=1")
    p = Portal(tmp, notify_sink, extra=_setup(tmp))
    p.stop()
    conf = open(p.conf).read().replace(
        'mynetworks = [ "127.0.0.1/32" ];',
        'mynetworks = [ "127.0.0.1/32" ];\n  max_message_size = '
        f'{2 * BIG};', 1)
    open(p.conf, "w").write(conf)
    p.cli("property", "global", "set", "--name", "quota", "--value", "0")
    p.d = Daemon([bin_path("external-portal"), "-c", p.conf], ready=None)
    try:
        assert p.d.wait_for(r"storage unlocked")
        p.d.wait_for(r"web: ready$")
        # Warm every process up with a small message, read once.
        p.deliver("ext@example.org", _mail(subject="warm"))
        br = Browser(p)
        _signup(p, notify_sink, br)
        st, r, page = br.get("/inbox")
        wid = re.search(r'href="/message\?id=(\d+)"', page).group(1)
        assert _download(br, f"/message/eml?id={wid}")[0] == 200
        pids = _pids(p.d)
        assert {"ingest", "pkeyd", "web"} <= set(pids), pids
        base = {k: vmhwm_kib(pids[k]) for k in ("ingest", "pkeyd", "web")}

        m = _mail(subject="Large sealed 5be1", body="start\n")
        line = "".join(chr(0x41 + i % 26) for i in range(76)) + "\n"
        m.set_content("start\n" + line * (BIG // len(line)) + "end 5be1\n",
                      cte="7bit")
        m["X-Keep-CipherMail-To-Webmail"] = "True"
        p.deliver("ext@example.org", m)
        p.d.wait_for(r"stored msg=\d+", timeout=300)

        # Sealed on disk: no line of the body in clear.
        files = sorted(os.path.join(tmp, "messages", f)
                       for f in os.listdir(os.path.join(tmp, "messages")))
        big = max(files, key=os.path.getsize)
        assert os.path.getsize(big) > BIG
        with open(big, "rb") as f:
            assert line.encode()[:40] not in f.read(8 << 20)

        st, r, page = br.get("/inbox")
        assert "Large sealed 5be1" in page
        bid = re.search(r'href="/message\?id=(\d+)"', page).group(1)
        assert bid != wid
        st, n, digest = _download(br, f"/message/eml?id={bid}")
        assert st == 200 and n > BIG

        grown = {k: vmhwm_kib(pid) - base[k] for k, pid in pids.items()
                 if k in base}
        print(f"VmHWM growth (KiB): {grown}")
        assert all(g < BOUND_KIB for g in grown.values()), grown
    finally:
        p.d.stop()
