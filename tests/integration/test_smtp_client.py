"""The outbound SMTP client (shared/smtp_client.c) through the smtp_send
harness, against real aiosmtpd next hops: byte-exact delivery, status and
per-recipient codes, STARTTLS levels and certificate checks, streaming of a
large message, SMTPUTF8."""

import hashlib
import json
import os
import ssl
import subprocess
import threading

import pytest
from aiosmtpd.controller import Controller

from conftest import Sink, bin_path, free_port

TIMEOUT = 120


def run_send(host, port, to, path, sender="alice@example.com", tls=None,
             extra=()):
    argv = [bin_path("harness/smtp_send"), "--host", host, "--port",
            str(port), "--from", sender, "--timeout", "20"]
    if tls:
        argv += ["--tls", tls]
    for t in to:
        argv += ["--to", t]
    argv += list(extra) + [str(path)]
    env = dict(os.environ)
    env.setdefault("ASAN_OPTIONS", "detect_leaks=1")
    p = subprocess.run(argv, capture_output=True, timeout=TIMEOUT, env=env)
    assert p.returncode == 0, p.stderr.decode()
    assert b"runtime error" not in p.stderr, p.stderr.decode()
    return json.loads(p.stdout)


def write(tmp_path, name, data):
    p = tmp_path / name
    p.write_bytes(data)
    return p


# A message libesmtp would have "fixed": no Date, From or Message-ID, a
# Return-Path, a repeated To, dot lines, 8-bit text, a long folded header.
AWKWARD = (b"Return-Path: <bounce@example.com>\r\n"
           b"To: a@example.net\r\n"
           b"To: b@example.net\r\n"
           b"Subject: byte exact\r\n"
           b"X-Long: " + b"x" * 300 + b"\r\n\t continued\r\n"
           b"\r\n"
           b".leading dot\r\n"
           b"..two dots\r\n"
           b".\r\n"
           b"caf\xc3\xa9\r\n"
           b"last line\r\n")


def test_delivery_is_byte_exact(sink, tmp_path):
    msg = write(tmp_path, "m.eml", AWKWARD)
    r = run_send(sink.host, sink.port, ["a@example.net"], msg)
    assert r["status"] == 2 and r["code"] == 250, r
    assert r["rcpt"] == [250]
    got = sink.wait(1)[0]
    assert got["data"] == AWKWARD
    assert got["from"] == "alice@example.com"
    assert got["to"] == ["a@example.net"]


def test_null_sender_and_multiple_recipients(sink, tmp_path):
    msg = write(tmp_path, "m.eml", b"Subject: x\r\n\r\nbody\r\n")
    r = run_send(sink.host, sink.port, ["a@example.net", "b@example.net"],
                 msg, sender="")
    assert r["status"] == 2 and r["rcpt"] == [250, 250], r
    got = sink.wait(1)[0]
    assert got["from"] in ("", "<>")
    assert got["to"] == ["a@example.net", "b@example.net"]


def test_one_recipient_4xx_is_status_4_per_recipient(sink, tmp_path):
    sink.handler.rcpt_replies["b@example.net"] = "450 4.2.0 try later"
    msg = write(tmp_path, "m.eml", b"Subject: x\r\n\r\nbody\r\n")
    r = run_send(sink.host, sink.port, ["a@example.net", "b@example.net"],
                 msg)
    assert r["status"] == 4, r
    assert r["rcpt"] == [250, 450]
    assert "try later" in r["rcpt_reply"][1]
    # The accepted recipient has the message; the deferred one does not.
    got = sink.wait(1)
    assert [m["to"] for m in got] == [["a@example.net"]]


def test_partial_5xx_is_status_5_per_recipient(sink, tmp_path):
    sink.handler.rcpt_replies["b@example.net"] = "550 5.1.1 no such user"
    msg = write(tmp_path, "m.eml", b"Subject: x\r\n\r\nbody\r\n")
    r = run_send(sink.host, sink.port, ["a@example.net", "b@example.net"],
                 msg)
    assert r["status"] == 5 and r["rcpt"] == [250, 550], r


def test_every_recipient_refused_is_5(sink, tmp_path):
    sink.handler.rcpt_replies["a@example.net"] = "550 5.1.1 no such user"
    msg = write(tmp_path, "m.eml", b"Subject: x\r\n\r\nbody\r\n")
    r = run_send(sink.host, sink.port, ["a@example.net"], msg)
    assert r["status"] == 5 and r["code"] == 550, r
    assert "no such user" in r["reply"]
    assert sink.messages == []


def test_data_refused_5xx(sink, tmp_path):
    sink.handler.data_reply = "554 5.6.0 content rejected"
    msg = write(tmp_path, "m.eml", b"Subject: x\r\n\r\nbody\r\n")
    r = run_send(sink.host, sink.port, ["a@example.net"], msg)
    assert r["status"] == 5 and r["code"] == 554 and r["rcpt"] == [554], r
    assert "content rejected" in r["reply"]


def test_data_refused_4xx(sink, tmp_path):
    sink.handler.data_reply = "451 4.3.0 disk full"
    msg = write(tmp_path, "m.eml", b"Subject: x\r\n\r\nbody\r\n")
    r = run_send(sink.host, sink.port, ["a@example.net"], msg)
    assert r["status"] == 4 and r["rcpt"] == [451], r


def test_connection_refused_is_4(tmp_path):
    msg = write(tmp_path, "m.eml", b"Subject: x\r\n\r\nbody\r\n")
    r = run_send("127.0.0.1", free_port(), ["a@example.net"], msg)
    assert r["status"] == 4 and r["code"] == 0 and r["rcpt"] == [0], r
    assert "refused" in r["reply"].lower()


# --- STARTTLS ----------------------------------------------------------

def openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True,
                   capture_output=True)


def make_ca(d, name):
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt",
            "ec_paramgen_curve:P-256", "-nodes", "-days", "2",
            "-subj", f"/CN={name}", "-keyout", f"{name}.key",
            "-out", f"{name}.pem", "-addext",
            "basicConstraints=critical,CA:TRUE", "-addext",
            "keyUsage=critical,keyCertSign", cwd=d)


def make_leaf(d, ca, name, san, eku):
    openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
            "-nodes", "-subj", f"/CN={name}", "-keyout", f"{name}.key",
            "-out", f"{name}.csr", cwd=d)
    (d / f"{name}.ext").write_text(
        f"subjectAltName={san}\nextendedKeyUsage={eku}\n")
    openssl("x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.pem",
            "-CAkey", f"{ca}.key", "-CAcreateserial", "-days", "2",
            "-extfile", f"{name}.ext", "-out", f"{name}.pem", cwd=d)


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    d = tmp_path_factory.mktemp("pki")
    make_ca(d, "ca")
    make_ca(d, "otherca")
    make_leaf(d, "ca", "server", "IP:127.0.0.1,DNS:localhost", "serverAuth")
    make_leaf(d, "ca", "client", "DNS:gateway.test", "clientAuth")
    return d


def server_ctx(pki, client_ca=None):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(pki / "server.pem", pki / "server.key")
    if client_ca:
        ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.load_verify_locations(client_ca)
    return ctx


@pytest.fixture
def tls_sink(pki):
    s = Sink(tls_context=server_ctx(pki))
    yield s
    s.stop()


def test_tls_may_uses_starttls(tls_sink, tmp_path):
    msg = write(tmp_path, "m.eml", AWKWARD)
    r = run_send(tls_sink.host, tls_sink.port, ["a@example.net"], msg,
                 tls="may")
    assert r["status"] == 2, r
    got = tls_sink.wait(1)[0]
    assert got["tls"] is True
    assert got["data"] == AWKWARD


def test_tls_none_stays_plain(tls_sink, tmp_path):
    msg = write(tmp_path, "m.eml", b"Subject: x\r\n\r\nbody\r\n")
    r = run_send(tls_sink.host, tls_sink.port, ["a@example.net"], msg,
                 tls="none")
    assert r["status"] == 2, r
    assert tls_sink.wait(1)[0]["tls"] is False


def test_tls_may_without_starttls_sends_plain(sink, tmp_path):
    msg = write(tmp_path, "m.eml", b"Subject: x\r\n\r\nbody\r\n")
    r = run_send(sink.host, sink.port, ["a@example.net"], msg, tls="may")
    assert r["status"] == 2, r
    assert sink.wait(1)[0]["tls"] is False


def test_tls_encrypt_against_plain_sink_fails(sink, tmp_path, pki):
    msg = write(tmp_path, "m.eml", b"Subject: x\r\n\r\nbody\r\n")
    r = run_send(sink.host, sink.port, ["a@example.net"], msg,
                 tls="encrypt", extra=["--ca", str(pki / "ca.pem")])
    assert r["status"] == 4 and r["rcpt"] == [0], r
    assert "STARTTLS" in r["reply"]
    assert sink.messages == []


def test_tls_encrypt_with_right_ca(tls_sink, tmp_path, pki):
    msg = write(tmp_path, "m.eml", AWKWARD)
    r = run_send(tls_sink.host, tls_sink.port, ["a@example.net"], msg,
                 tls="encrypt", extra=["--ca", str(pki / "ca.pem")])
    assert r["status"] == 2, r
    got = tls_sink.wait(1)[0]
    assert got["tls"] is True and got["data"] == AWKWARD


def test_tls_encrypt_with_wrong_ca_fails(tls_sink, tmp_path, pki):
    msg = write(tmp_path, "m.eml", b"Subject: x\r\n\r\nbody\r\n")
    r = run_send(tls_sink.host, tls_sink.port, ["a@example.net"], msg,
                 tls="encrypt", extra=["--ca", str(pki / "otherca.pem")])
    assert r["status"] == 4, r
    assert "not trusted" in r["reply"]
    assert tls_sink.messages == []


def test_tls_encrypt_checks_the_host_name(tls_sink, tmp_path, pki):
    # The certificate names 127.0.0.1 and localhost, not 127.0.0.2.
    s = Sink(host="127.0.0.2", tls_context=server_ctx(pki))
    try:
        msg = write(tmp_path, "m.eml", b"Subject: x\r\n\r\nbody\r\n")
        r = run_send(s.host, s.port, ["a@example.net"], msg, tls="encrypt",
                     extra=["--ca", str(pki / "ca.pem")])
        assert r["status"] == 4 and "not trusted" in r["reply"], r
        assert s.messages == []
        r = run_send("localhost", tls_sink.port, ["a@example.net"], msg,
                     tls="encrypt", extra=["--ca", str(pki / "ca.pem")])
        assert r["status"] == 2, r
    finally:
        s.stop()


def test_client_certificate_is_presented(tmp_path, pki):
    s = Sink(tls_context=server_ctx(pki, client_ca=pki / "ca.pem"),
             require_starttls=True)
    try:
        msg = write(tmp_path, "m.eml", b"Subject: x\r\n\r\nbody\r\n")
        r = run_send(s.host, s.port, ["a@example.net"], msg, tls="encrypt",
                     extra=["--ca", str(pki / "ca.pem")])
        assert r["status"] == 4, r
        assert s.messages == []
        r = run_send(s.host, s.port, ["a@example.net"], msg, tls="encrypt",
                     extra=["--ca", str(pki / "ca.pem"),
                            "--cert", str(pki / "client.pem"),
                            "--key", str(pki / "client.key")])
        assert r["status"] == 2, r
        assert s.wait(1)[0]["tls"] is True
    finally:
        s.stop()


# --- size and SMTPUTF8 ------------------------------------------------------

class _Capture:
    """Records envelope options and a digest of the data (not the bytes)."""

    def __init__(self):
        self.got = []
        self.done = threading.Event()

    async def handle_DATA(self, server, session, envelope):
        data = envelope.original_content or envelope.content
        self.got.append({"mail_options": list(envelope.mail_options),
                         "to": list(envelope.rcpt_tos),
                         "len": len(data),
                         "sha": hashlib.sha256(data).hexdigest()})
        self.done.set()
        return "250 2.0.0 OK"


def start_capture(**kw):
    h = _Capture()
    c = Controller(h, hostname="127.0.0.1", port=free_port(), **kw)
    c.start()
    return h, c


def test_50mb_message_is_streamed(tmp_path):
    line = b"0123456789" * 7 + b"\r\n"
    big = tmp_path / "big.eml"
    with open(big, "wb") as f:
        f.write(b"Subject: big\r\n\r\n")
        chunk = line * 8192
        while f.tell() < 50 * 1024 * 1024:
            f.write(chunk)
    data = big.read_bytes()
    h, c = start_capture(data_size_limit=0, decode_data=False)
    try:
        r = run_send("127.0.0.1", c.port, ["a@example.net"], big)
        assert r["status"] == 2, r
        assert h.done.wait(TIMEOUT)
        assert h.got[0]["len"] == len(data)
        assert h.got[0]["sha"] == hashlib.sha256(data).hexdigest()
        # The whole file never sits in memory: the peak resident set of
        # the sender stays far below the message size.
        assert 0 < r["vmhwm_kb"] < 25 * 1024, r["vmhwm_kb"]
    finally:
        c.stop()


def test_smtputf8_recipient(tmp_path):
    h, c = start_capture(enable_SMTPUTF8=True, decode_data=False)
    try:
        msg = write(tmp_path, "m.eml",
                    "Subject: ünï\r\n\r\nbody\r\n".encode())
        rcpt = "用户@例子.test"
        r = run_send("127.0.0.1", c.port, [rcpt], msg,
                     sender="josé@example.com",
                     extra=["--smtputf8", "--8bit"])
        assert r["status"] == 2, r
        assert h.done.wait(TIMEOUT)
        assert h.got[0]["to"] == [rcpt]
        assert "SMTPUTF8" in h.got[0]["mail_options"]
        assert "BODY=8BITMIME" in h.got[0]["mail_options"]
    finally:
        c.stop()


def test_smtputf8_to_a_hop_without_it_is_5(tmp_path):
    h, c = start_capture(enable_SMTPUTF8=False, decode_data=False)
    try:
        msg = write(tmp_path, "m.eml", b"Subject: x\r\n\r\nbody\r\n")
        r = run_send("127.0.0.1", c.port, ["用户@例子.test"], msg,
                     extra=["--smtputf8"])
        assert r["status"] == 5 and r["rcpt"] == [550], r
        assert "5.6.7" in r["reply"]
        assert h.got == []
    finally:
        c.stop()


# --- misbehaving next hops -------------------------------------------------

class Scripted:
    """A raw TCP server for one connection: greets, then answers each
    command line with the reply whose key starts it (bytes sent as-is)."""

    def __init__(self, greeting, replies):
        import socket
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(1)
        self.port = self.sock.getsockname()[1]
        self.greeting = greeting
        self.replies = replies
        self.seen = []
        self.t = threading.Thread(target=self._run, daemon=True)
        self.t.start()

    def _run(self):
        try:
            c, _ = self.sock.accept()
        except OSError:
            return
        with c:
            f = c.makefile("rb")
            try:
                c.sendall(self.greeting)
                for line in f:
                    self.seen.append(line)
                    for k, v in self.replies:
                        if line.upper().startswith(k):
                            c.sendall(v)
                            break
                    else:
                        c.sendall(b"250 ok\r\n")
                    if line.upper().startswith(b"QUIT"):
                        return
            except OSError:
                pass    # the client hung up on us: that is the point

    def stop(self):
        self.sock.close()
        self.t.join(10)


def test_silent_server_times_out_as_4(tmp_path):
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(1)    # the kernel completes the handshake; nobody ever greets
    try:
        msg = write(tmp_path, "m.eml", b"Subject: x\r\n\r\nbody\r\n")
        argv = [bin_path("harness/smtp_send"), "--host", "127.0.0.1",
                "--port", str(s.getsockname()[1]), "--timeout", "1",
                "--from", "a@example.com", "--to", "b@example.net", str(msg)]
        p = subprocess.run(argv, capture_output=True, timeout=TIMEOUT)
        r = json.loads(p.stdout)
        assert r["status"] == 4 and r["rcpt"] == [0], r
        assert "timeout" in r["reply"]
    finally:
        s.close()


def test_multiline_replies_and_greeting_refusal(tmp_path):
    msg = write(tmp_path, "m.eml", b"Subject: x\r\n\r\nbody\r\n")
    srv = Scripted(b"220-first\r\n220 second\r\n",
                   [(b"EHLO", b"250-hello\r\n250-SIZE 10\r\n250 8BITMIME\r\n")])
    try:
        # The advertised SIZE limit is honoured before MAIL.
        r = run_send("127.0.0.1", srv.port, ["b@example.net"], msg)
        assert r["status"] == 5 and r["rcpt"] == [552], r
        assert not any(l.startswith(b"MAIL") for l in srv.seen)
    finally:
        srv.stop()
    srv = Scripted(b"554-go away\r\n554 5.7.1 not in mynetworks\r\n", [])
    try:
        r = run_send("127.0.0.1", srv.port, ["b@example.net"], msg)
        assert r["status"] == 5 and r["code"] == 554, r
        assert "not in mynetworks" in r["reply"]
    finally:
        srv.stop()


def test_malformed_reply_is_4(tmp_path):
    msg = write(tmp_path, "m.eml", b"Subject: x\r\n\r\nbody\r\n")
    for bad in (b"250-ok\r\n251 mismatch\r\n", b"2x0 what\r\n",
                b"250 " + b"x" * 5000 + b"\r\n"):
        srv = Scripted(b"220 hi\r\n", [(b"EHLO", bad)])
        try:
            r = run_send("127.0.0.1", srv.port, ["b@example.net"], msg)
            assert r["status"] == 4 and r["rcpt"] == [0], (bad[:20], r)
            assert not any(l.startswith(b"MAIL") for l in srv.seen)
        finally:
            srv.stop()


def test_starttls_response_injection_refused(tmp_path):
    # Bytes queued behind "220" would be read as if sent over TLS.
    msg = write(tmp_path, "m.eml", b"Subject: x\r\n\r\nbody\r\n")
    srv = Scripted(b"220 hi\r\n",
                   [(b"EHLO", b"250-hi\r\n250 STARTTLS\r\n"),
                    (b"STARTTLS", b"220 go ahead\r\n250 injected\r\n")])
    try:
        r = run_send("127.0.0.1", srv.port, ["b@example.net"], msg,
                     tls="may")
        assert r["status"] == 4 and "ahead of TLS" in r["reply"], r
    finally:
        srv.stop()
