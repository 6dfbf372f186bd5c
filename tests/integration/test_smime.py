"""The running gateway keeps private keys in the key holder only: a signing
gateway's key holder has alice's private key in memory, its SMTP worker and
its parent do not; and what it signs verifies with openssl cms."""

import hashlib
import os
import re
import subprocess

import pytest

from conftest import Sink, needs_root, vmhwm_kib
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


def keyd_pid(gw):
    """keyd's pid: the child of internal-gw that logs as keyd."""
    parent = gw.daemon.proc.pid
    with open(f"/proc/{parent}/task/{parent}/children") as f:
        children = {int(x) for x in f.read().split()}
    pid = pids_by_proc(gw)["keyd"]
    assert pid in children, (pid, children)
    return pid


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


@needs_root("reads /proc/PID/mem")
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


def test_signature_logged(signing_gw, tmp_path):
    """keyd logs every signature: the signer, the purpose, the requesting
    message's log id (the id the SMTP worker logs the message under; a
    forged trigger field makes it log one) and the first 8 bytes of the
    digest it signed."""
    gw, out = signing_gw
    msg = (b"From: alice@example.com\r\nTo: x@example.org\r\n"
           b"X-Keep-CipherMail-To-Webmail: True\r\n"
           b"Subject: logged\r\n\r\nlogged\r\n")
    with smtplib.SMTP("127.0.0.1", gw.port) as s:
        s.sendmail("alice@example.com", ["x@example.org"], msg)
    data = out.wait(1)[0]["data"]
    boundary = re.search(rb'boundary="([^"]+)"', data).group(1)
    entity = data.split(b"--" + boundary + b"\r\n", 1)[1]
    entity = entity.split(b"\r\n--" + boundary, 1)[0]
    digest = hashlib.sha256(entity).hexdigest()[:16]
    keyd = keyd_pid(gw)
    pat = re.compile(rf"\[{keyd}\] keyd: id=(\S+) signed as "
                     rf"alice@example\.com for mail, digest {digest}$")
    ids = [m.group(1) for m in map(pat.search, gw.daemon.lines) if m]
    assert len(ids) == 1, gw.daemon.log()
    smtp = pids_by_proc(gw)["smtp"]
    assert any(f"[{smtp}] smtp: id={ids[0]} " in line
               for line in gw.daemon.lines), gw.daemon.log()


def test_large_message_signed_and_encrypted_in_flat_memory(tmp_path):
    """S/MIME streams through the spool: signing and encrypting a 20 MiB
    message grows the SMTP worker's peak memory by far less than the
    message (it used to hold three copies, and keyd a fourth), and keyd's
    not at all beyond a small bound (it signs a digest); both results are
    correct for openssl cms."""
    portal, out = Sink(), Sink()
    pki = pki_dir()
    gw = Gateway(tmp_path, portal.port, out.port, start=False,
                 props=[("user", "set", "--email", "alice@example.com",
                         "--name", "sign-enabled", "--value", "true"),
                        ("global", "set", "--name", "encrypt-mode",
                         "--value", "mandatory")],
                 certs=[("--file", f"{pki}/alice.p12", "--password",
                         "secret"),
                        ("--file", f"{pki}/bob.crt")])
    # ASan's quarantine would keep freed memory and measure itself.
    gw.start(env={"ASAN_OPTIONS":
                  "detect_leaks=0:abort_on_error=0:quarantine_size_mb=4"})
    try:
        with smtplib.SMTP("127.0.0.1", gw.port) as s:
            s.sendmail("alice@example.com", ["bob@example.net"],
                       make_message(to="bob@example.net", body="warm up\n"))
        out.wait(1)
        worker = pids_by_proc(gw)["smtp"]
        base = vmhwm_kib(worker)
        keyd = keyd_pid(gw)
        keyd_base = vmhwm_kib(keyd)
        line = "".join(chr(0x41 + i % 26) for i in range(76)) + "\n"
        body = "large message 5e1d\n" + line * (20 * 1024 * 1024 // 77)
        with smtplib.SMTP("127.0.0.1", gw.port) as s:
            s.sendmail("alice@example.com", ["bob@example.net"],
                       make_message(to="bob@example.net", body=body))
        data = out.wait(2)[1]["data"]
        grown = vmhwm_kib(worker) - base
        print(f"worker VmHWM grew by {grown} KiB for a "
              f"{len(body) >> 20} MiB message")
        assert grown < 8 * 1024, grown
        keyd_grown = vmhwm_kib(keyd) - keyd_base
        print(f"keyd VmHWM grew by {keyd_grown} KiB")
        assert keyd_grown < 1024, keyd_grown
        assert b"application/pkcs7-mime" in data
        enc = tmp_path / "large.eml"
        enc.write_bytes(data)
        dec = tmp_path / "large.dec"
        r = subprocess.run(["openssl", "cms", "-decrypt", "-in", str(enc),
                            "-recip", f"{pki}/bob.crt", "-inkey",
                            f"{pki}/bob.key", "-out", str(dec)],
                           capture_output=True)
        assert r.returncode == 0, r.stderr
        r = subprocess.run(["openssl", "cms", "-verify", "-in", str(dec),
                            "-CAfile", f"{pki}/ca-bundle.pem", "-out",
                            str(tmp_path / "large.txt")],
                           capture_output=True)
        assert r.returncode == 0, r.stderr
        text = (tmp_path / "large.txt").read_bytes()
        assert b"large message 5e1d" in text
        assert text.count(line.encode().rstrip(b"\n")) == \
            20 * 1024 * 1024 // 77
    finally:
        gw.stop()
        portal.stop()
        out.stop()
