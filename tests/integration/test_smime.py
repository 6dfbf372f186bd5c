"""The running gateway keeps private keys in the key holder only: a signing
gateway's key holder has alice's private key in memory, its SMTP worker and
its parent do not; and what it signs verifies with openssl cms."""

import os
import re
import subprocess

import pytest

from conftest import Sink
from gwutil import Gateway, make_message, pki_dir
import smtplib


def private_fragments(keyfile):
    """Byte strings that only a process holding the key can have: a slice
    of the first RSA prime, in both byte orders (BIGNUM limbs are little
    endian on this machine). Not a line of the PEM text: its first lines
    encode the public modulus, which every signature's certificate
    carries."""
    r = subprocess.run(["openssl", "rsa", "-in", keyfile, "-noout", "-text"],
                       capture_output=True, text=True, check=True)
    m = re.search(r"prime1:\n((?:\s+[0-9a-f:]+\n)+)", r.stdout)
    p = bytes.fromhex(re.sub(r"[\s:]", "", m.group(1)))
    if p[0] == 0:
        p = p[1:]
    mid = p[32:64]
    return [mid, mid[::-1]]


def memory_has(pid, needles):
    """True when a readable mapping of pid contains one of needles."""
    found = False
    with open(f"/proc/{pid}/maps") as maps, \
            open(f"/proc/{pid}/mem", "rb", 0) as mem:
        for line in maps:
            addr, perms = line.split()[:2]
            if not perms.startswith("r"):
                continue
            if line.rstrip().endswith(("[vvar]", "[vsyscall]")):
                continue
            lo, hi = (int(x, 16) for x in addr.split("-"))
            # ASan reserves terabytes of shadow; real data is far smaller.
            if hi - lo > (4 << 30):
                continue
            overlap = max(len(n) for n in needles)
            pos, tail = lo, b""
            while pos < hi:
                try:
                    mem.seek(pos)
                    chunk = mem.read(min(hi - pos, 8 << 20))
                except (OSError, ValueError, OverflowError):
                    break
                if not chunk:
                    break
                if any(n in tail + chunk for n in needles):
                    return True
                tail = chunk[-overlap:]
                pos += len(chunk)
    return found


def pids_by_proc(gw):
    """{procname: pid} from the gateway's log prefix "name[pid] proc:"."""
    res = {}
    for line in gw.daemon.lines:
        m = re.match(r"\S+\[(\d+)\] (\w+): ", line)
        if m:
            res.setdefault(m.group(2), int(m.group(1)))
    return res


@pytest.fixture
def signing_gw(tmp_path):
    portal, out = Sink(), Sink()
    pki = pki_dir()
    gw = Gateway(tmp_path, portal.port, out.port,
                 props=[("user", "set", "--email", "alice@example.com",
                         "--name", "sign-enabled", "--value", "true")],
                 certs=[("--file", f"{pki}/alice.p12", "--password",
                         "secret")])
    yield gw, out
    gw.stop()
    portal.stop()
    out.stop()


@pytest.mark.skipif(os.geteuid() != 0, reason="reads /proc/PID/mem")
def test_only_keyd_holds_the_private_key(signing_gw, tmp_path):
    gw, out = signing_gw
    pki = pki_dir()
    with smtplib.SMTP("127.0.0.1", gw.port) as s:
        s.sendmail("alice@example.com", ["x@example.org"],
                   make_message(to="x@example.org", body="signed by keyd\n"))
    data = out.wait(1)[0]["data"]
    p = tmp_path / "signed.eml"
    p.write_bytes(data)
    r = subprocess.run(["openssl", "cms", "-verify", "-in", str(p),
                        "-CAfile", f"{pki}/ca-bundle.pem"],
                       capture_output=True)
    assert r.returncode == 0, r.stderr
    assert b"signed by keyd" in r.stdout

    procs = pids_by_proc(gw)
    assert "keyd" in procs, gw.daemon.log()
    keyd = procs["keyd"]
    others = {gw.daemon.proc.pid} | {pid for name, pid in procs.items()
                                     if name != "keyd"}
    assert keyd not in others
    needles = private_fragments(f"{pki}/alice.key")
    # The scan works: the key holder has the key ...
    assert memory_has(keyd, needles)
    # ... and no other gateway process has it, after signing a message.
    for pid in others:
        if os.path.exists(f"/proc/{pid}"):
            assert not memory_has(pid, needles), f"key material in {pid}"
