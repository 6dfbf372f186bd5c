"""internal-gw's TLS private keys live in the key holder: STARTTLS with an
RSA and an ECDSA server key over TLS 1.2 and 1.3 (Python ssl and openssl
s_client, each signature scheme libssl picks), the relay's client
certificate accepted by a next hop that requires one, and after all that
the TLS keys' private fragments are in keyd's memory only."""

import hashlib
import os
import re
import smtplib
import ssl
import subprocess

import pytest
from aiosmtpd.controller import Controller

from conftest import Sink, _Recorder, bin_path, free_port, needs_root
from gwutil import Gateway, make_message, pki_dir
from test_smime import memory_has, pids_by_proc

SERVER = {"ec": "gw-tls", "rsa": "gw-tls-rsa"}
CLIENT = {"ec": "gw-client", "rsa": "gw-client-rsa"}
VERSIONS = {"1.2": ssl.TLSVersion.TLSv1_2, "1.3": ssl.TLSVersion.TLSv1_3}


def start_gw(tmp_path, server, client=None, out_port=None):
    """A gateway whose STARTTLS key is PKI name server, relaying everything
    to out_port, with the client certificate PKI name client."""
    pki = pki_dir()
    portal = Sink()
    out_port = out_port or free_port()
    gw = Gateway(tmp_path, portal.port, out_port, start=False)
    with open(gw.conf) as f:
        conf = f.read()
    conf = conf.replace(f"{pki}/gw-tls-chain.pem", f"{pki}/{server}-chain.pem")
    conf = conf.replace(f"{pki}/gw-tls.key", f"{pki}/{server}.key")
    if client:
        conf = conf.replace(
            'default_tls = "may";',
            f'default_tls = "may";\n  client_cert = "{pki}/{client}-chain.pem";'
            f'\n  client_key = "{pki}/{client}.key";')
    with open(gw.conf, "w") as f:
        f.write(conf)
    gw.start()
    gw.portal = portal
    return gw


def stop_gw(gw):
    gw.stop()
    gw.portal.stop()


@pytest.fixture(params=["ec", "rsa"])
def tls_gw(request, tmp_path):
    gw = start_gw(tmp_path, SERVER[request.param])
    gw.kind = request.param
    yield gw
    stop_gw(gw)


def cert_fingerprint(pem_file):
    r = subprocess.run(["openssl", "x509", "-in", pem_file, "-outform",
                        "DER"], capture_output=True, check=True)
    return hashlib.sha256(r.stdout).hexdigest()


@pytest.mark.parametrize("version", ["1.2", "1.3"])
def test_starttls_python(tls_gw, version):
    pki = pki_dir()
    ctx = ssl.create_default_context(cafile=f"{pki}/ca-bundle.pem")
    ctx.minimum_version = ctx.maximum_version = VERSIONS[version]
    with smtplib.SMTP("127.0.0.1", tls_gw.port) as s:
        code, _ = s.starttls(context=ctx)
        assert code == 220
        assert s.sock.version() == f"TLSv{version}"
        der = s.sock.getpeercert(binary_form=True)
        assert hashlib.sha256(der).hexdigest() == cert_fingerprint(
            f"{pki}/{SERVER[tls_gw.kind]}.crt")
        assert s.ehlo()[0] == 250
        assert s.noop()[0] == 250


# (key, TLS version, signature scheme asked for, as s_client reports it)
S_CLIENT_CASES = [
    ("ec", "1.2", "ecdsa_secp256r1_sha256", "ECDSA", "SHA256"),
    ("ec", "1.3", "ecdsa_secp256r1_sha256", "ECDSA", "SHA256"),
    ("rsa", "1.2", "rsa_pkcs1_sha256", "RSA", "SHA256"),
    ("rsa", "1.2", "rsa_pss_rsae_sha256", "RSA-PSS", "SHA256"),
    ("rsa", "1.3", "rsa_pss_rsae_sha256", "RSA-PSS", "SHA256"),
    ("rsa", "1.3", "rsa_pss_rsae_sha512", "RSA-PSS", "SHA512"),
]


@pytest.mark.parametrize("kind,version,sigalg,sigtype,md", S_CLIENT_CASES)
def test_starttls_openssl(tmp_path, kind, version, sigalg, sigtype, md):
    pki = pki_dir()
    gw = start_gw(tmp_path, SERVER[kind])
    try:
        r = subprocess.run(
            ["openssl", "s_client", "-starttls", "smtp", "-connect",
             f"127.0.0.1:{gw.port}", "-tls" + version.replace(".", "_"),
             "-sigalgs", sigalg, "-CAfile", f"{pki}/ca-bundle.pem",
             "-verify_return_error", "-verify_ip", "127.0.0.1", "-brief"],
            input=b"QUIT\r\n", capture_output=True, timeout=60)
        err = r.stderr.decode()
        assert r.returncode == 0, err
        assert f"Protocol version: TLSv{version}" in err, err
        assert "Verification: OK" in err, err
        assert re.search(rf"^Signature type: {sigtype}$", err, re.M), err
        assert re.search(rf"^Hash used: {md}$", err, re.M), err
    finally:
        stop_gw(gw)


class _PeerCertRecorder(_Recorder):
    """Records the client certificate the sender showed (DER)."""

    async def handle_DATA(self, server, session, envelope):
        obj = session.ssl.get("ssl_object") if session.ssl else None
        self.peer = obj.getpeercert(binary_form=True) if obj else None
        return await super().handle_DATA(server, session, envelope)


class ClientCertSink:
    """A next hop that requires STARTTLS and a client certificate from the
    test CA."""

    def __init__(self):
        pki = pki_dir()
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH,
                                         cafile=f"{pki}/ca-bundle.pem")
        ctx.load_cert_chain(f"{pki}/portal-tls-chain.pem",
                            f"{pki}/portal-tls.key")
        ctx.verify_mode = ssl.CERT_REQUIRED
        self.port = free_port()
        self.handler = _PeerCertRecorder()
        self.handler.peer = None
        self.controller = Controller(self.handler, hostname="127.0.0.1",
                                     port=self.port, decode_data=False,
                                     tls_context=ctx, require_starttls=True)
        self.controller.start()

    def wait(self, count=1, timeout=30):
        with self.handler.cond:
            ok = self.handler.cond.wait_for(
                lambda: len(self.handler.messages) >= count, timeout)
        assert ok, "the next hop got no message"
        return self.handler.messages

    def stop(self):
        self.controller.stop()


def relay_one(gw, body):
    with smtplib.SMTP("127.0.0.1", gw.port) as s:
        s.sendmail("alice@example.com", ["x@example.org"],
                   make_message(to="x@example.org", body=body))


@pytest.mark.parametrize("kind", ["ec", "rsa"])
def test_relay_presents_client_certificate(tmp_path, kind):
    pki = pki_dir()
    sink = ClientCertSink()
    gw = start_gw(tmp_path, SERVER[kind], CLIENT[kind], out_port=sink.port)
    try:
        relay_one(gw, "client cert through keyd\n")
        msg = sink.wait(1)[0]
        assert msg["tls"]
        assert b"client cert through keyd" in msg["data"]
        assert hashlib.sha256(sink.handler.peer).hexdigest() == \
            cert_fingerprint(f"{pki}/{CLIENT[kind]}.crt")
    finally:
        stop_gw(gw)
        sink.stop()


def test_relay_without_client_certificate_is_refused(tmp_path):
    """The control for the test above: the next hop really insists."""
    sink = ClientCertSink()
    gw = start_gw(tmp_path, SERVER["ec"], None, out_port=sink.port)
    try:
        with pytest.raises(smtplib.SMTPException):
            relay_one(gw, "no client cert\n")
        assert sink.handler.messages == []
    finally:
        stop_gw(gw)
        sink.stop()


def private_fragments(keyfile):
    """Slices of a private value only a key holder has: the first RSA
    prime or the EC private scalar, in both byte orders (BIGNUM limbs are
    little endian here)."""
    r = subprocess.run(["openssl", "pkey", "-in", keyfile, "-noout",
                        "-text"], capture_output=True, text=True, check=True)
    m = re.search(r"(?:prime1|priv):\n((?:\s+[0-9a-f:]+\n)+)", r.stdout)
    p = bytes.fromhex(re.sub(r"[\s:]", "", m.group(1))).lstrip(b"\0")
    mid = p[8:24]
    return [mid, mid[::-1]]


@needs_root("reads /proc/PID/mem")
@pytest.mark.parametrize("kind", ["ec", "rsa"])
def test_only_keyd_holds_the_tls_keys(tmp_path, kind):
    pki = pki_dir()
    sink = ClientCertSink()
    gw = start_gw(tmp_path, SERVER[kind], CLIENT[kind], out_port=sink.port)
    try:
        ctx = ssl.create_default_context(cafile=f"{pki}/ca-bundle.pem")
        with smtplib.SMTP("127.0.0.1", gw.port) as s:
            s.starttls(context=ctx)
            s.sendmail("alice@example.com", ["x@example.org"],
                       make_message(to="x@example.org", body="both keys\n"))
        sink.wait(1)
        assert sink.handler.peer is not None

        procs = pids_by_proc(gw)
        assert "keyd" in procs, gw.daemon.log()
        keyd = procs["keyd"]
        others = {gw.daemon.proc.pid} | {pid for name, pid in procs.items()
                                         if name != "keyd"}
        assert keyd not in others and len(others) >= 2, gw.daemon.log()
        for key in (SERVER[kind], CLIENT[kind]):
            needles = private_fragments(f"{pki}/{key}.key")
            # The scan works: the key holder has the key ...
            assert memory_has(keyd, needles), key
            # ... and the SMTP worker and the parent, after using it, not.
            for pid in others:
                if os.path.exists(f"/proc/{pid}"):
                    assert not memory_has(pid, needles), \
                        f"{key} material in {pid}"
    finally:
        stop_gw(gw)
        sink.stop()


def start_broken(tmp_path, key):
    """Runs a gateway whose STARTTLS key file is key; returns its exit
    status and log."""
    gw = Gateway(tmp_path, free_port(), free_port(), start=False)
    with open(gw.conf) as f:
        conf = f.read().replace(f"{pki_dir()}/gw-tls.key", key)
    with open(gw.conf, "w") as f:
        f.write(conf)
    r = subprocess.run([bin_path("internal-gw"), "-c", gw.conf],
                       capture_output=True, text=True, timeout=60)
    return r.returncode, r.stdout + r.stderr


def test_unreadable_tls_key_fails_closed(tmp_path):
    rc, log = start_broken(tmp_path, str(tmp_path / "missing.key"))
    assert rc != 0
    assert re.search(r"keyd: .*missing\.key: cannot open", log), log
    assert ": ready" not in log


def test_mismatched_tls_key_fails_closed(tmp_path):
    rc, log = start_broken(tmp_path, f"{pki_dir()}/gw-tls-rsa.key")
    assert rc != 0
    assert "the key holder has no private key for this certificate" in log
    assert ": ready" not in log
