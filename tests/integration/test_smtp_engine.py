"""The shared SMTP/LMTP engine, driven through the smtp_sink harness with
smtplib, raw sockets and the openssl CLI."""

import glob
import json
import os
import smtplib
import socket
import ssl
import subprocess

import pytest

from conftest import Daemon, bin_path, free_port, vmhwm_kib


class Sink:
    def __init__(self, tmp_path, *args, env=None):
        self.port = free_port()
        self.spool = tmp_path / "spool"
        self.out = tmp_path / "out"
        self.spool.mkdir(exist_ok=True)
        self.out.mkdir(exist_ok=True)
        self.d = Daemon([bin_path("harness/smtp_sink"), "--listen",
                         f"127.0.0.1:{self.port}", "--spool", str(self.spool),
                         "--out", str(self.out)] + list(args), env=env)

    def messages(self):
        """[(envelope dict, bytes)] in arrival order."""
        envs = sorted(glob.glob(str(self.out / "*.env")),
                      key=lambda p: int(os.path.basename(p).split(".")[0]))
        res = []
        for e in envs:
            with open(e) as f:
                env = json.load(f)
            with open(e[:-4] + ".eml", "rb") as f:
                res.append((env, f.read()))
        return res

    def smtp(self):
        return smtplib.SMTP("127.0.0.1", self.port, timeout=30)

    def raw(self):
        return Raw(self.port)

    def stop(self):
        self.d.stop()


class Raw:
    """A raw SMTP client: bytes out, one (possibly multi-line) reply in."""

    def __init__(self, port, host="127.0.0.1"):
        self.sock = socket.create_connection((host, port), timeout=30)
        self.f = self.sock.makefile("rb")
        self.greeting = self.reply()

    def send(self, data):
        self.sock.sendall(data)

    def reply(self):
        lines = []
        while True:
            line = self.f.readline()
            if not line:
                raise EOFError("connection closed; got %r" % lines)
            lines.append(line.decode("utf-8", "replace").rstrip("\r\n"))
            if len(line) < 4 or line[3:4] != b"-":
                return lines[-1][:3], "\n".join(lines)

    def cmd(self, line):
        self.send(line.encode() + b"\r\n")
        return self.reply()

    def closed(self):
        return self.f.readline() == b""

    def close(self):
        self.f.close()
        self.sock.close()


@pytest.fixture
def mksink(tmp_path):
    sinks = []

    def make(*args, env=None):
        s = Sink(tmp_path, *args, env=env)
        sinks.append(s)
        return s
    yield make
    for s in sinks:
        s.stop()


def start_txn(c, rcpts=("rcpt@example.org",), hello="EHLO client.test"):
    assert c.cmd(hello)[0] == "250"
    assert c.cmd("MAIL FROM:<sender@example.com>")[0] == "250"
    for r in rcpts:
        assert c.cmd(f"RCPT TO:<{r}>")[0] == "250"


def test_ehlo_extensions(mksink):
    s = mksink()
    with s.smtp() as c:
        code, _ = c.ehlo("client.test")
        assert code == 250
        for ext in ("pipelining", "size", "8bitmime", "enhancedstatuscodes",
                    "smtputf8", "chunking"):
            assert c.has_extn(ext), ext
        assert c.esmtp_features["size"] == str(50 * 1024 * 1024)
        assert not c.has_extn("starttls")  # no TLS configured
        assert not c.has_extn("xforward")  # client not trusted
        assert c.verify("x")[0] == 252
        assert c.docmd("HELP")[0] == 214
        assert c.docmd("LHLO x")[0] == 500
        assert c.docmd("FOO")[0] == 500


def test_message_roundtrip_dot_unstuffing(mksink):
    s = mksink()
    with s.smtp() as c:
        c.sendmail("a@example.com", ["b@example.org", "c@example.org"],
                   b"Subject: t\r\n\r\n.leading dot\r\n..two\r\nend\r\n")
    [(env, data)] = s.messages()
    assert env["from"] == "a@example.com"
    assert env["to"] == ["b@example.org", "c@example.org"]
    assert data == b"Subject: t\r\n\r\n.leading dot\r\n..two\r\nend\r\n"
    assert env["size"] == len(data)
    assert os.listdir(s.spool) == []  # spool file removed after the reply
    s.d.wait_for(r"id=[0-9a-f]{16} client=127\.0\.0\.1 .*from=<a@example"
                 r"\.com> nrcpts=2 size=\d+ .*result=250")


def test_parameters_and_syntax(mksink):
    s = mksink("--max-size", "1000")
    c = s.raw()
    assert c.cmd("MAIL FROM:<a@b.example>")[0] == "503"  # before EHLO
    assert c.cmd("EHLO client.test")[0] == "250"
    assert c.cmd("RCPT TO:<x@y.example>")[0] == "503"  # before MAIL
    code, text = c.cmd("MAIL FROM:<a@b.example> SIZE=1001")
    assert (code, text[4:9]) == ("552", "5.3.4")
    code, text = c.cmd("MAIL FROM:<a@b.example> FOO=bar")
    assert (code, text[4:9]) == ("555", "5.5.4")
    code, text = c.cmd("MAIL FROM:<a b@example>")
    assert (code, text[4:9]) == ("501", "5.1.7")
    code, text = c.cmd("MAIL FROM:<jörg@example.de>")
    assert (code, text[4:9]) == ("501", "5.1.7")  # UTF-8 needs SMTPUTF8
    assert c.cmd("MAIL FROM:<> BODY=8BITMIME SIZE=10")[0] == "250"
    code, text = c.cmd("RCPT TO:<jörg@example.de>")
    assert (code, text[4:9]) == ("501", "5.1.3")
    code, text = c.cmd("DATA")
    assert (code, text[4:9]) == ("554", "5.5.1")
    assert c.cmd("RSET")[0] == "250"
    assert c.cmd("MAIL FROM:<jörg@example.de> SMTPUTF8")[0] == "250"
    assert c.cmd("RCPT TO:<müller@example.de>")[0] == "250"
    assert c.cmd("DATA")[0] == "354"
    c.send(b"Subject: x\r\n\r\nhi\r\n.\r\n")
    assert c.reply()[0] == "250"
    [(env, _)] = s.messages()
    assert env["from"] == "jörg@example.de" and env["smtputf8"] is True


def test_size_limit_while_streaming(mksink):
    s = mksink("--max-size", "1000")
    c = s.raw()
    start_txn(c)
    assert c.cmd("DATA")[0] == "354"
    c.send(b"Subject: big\r\n\r\n" + b"x" * 70 + b"\r\n")
    c.send((b"y" * 998 + b"\r\n") * 20 + b".\r\n")
    code, text = c.reply()
    assert (code, text[4:9]) == ("552", "5.3.4")
    assert c.cmd("NOOP")[0] == "250"  # all data was read; session goes on
    assert s.messages() == []


def test_recipient_limit(mksink):
    s = mksink("--max-rcpts", "2")
    c = s.raw()
    start_txn(c, rcpts=("a@example.org", "b@example.org"))
    code, text = c.cmd("RCPT TO:<c@example.org>")
    assert (code, text[4:9]) == ("452", "4.5.3")
    assert c.cmd("DATA")[0] == "354"
    c.send(b"Subject: x\r\n\r\nhi\r\n.\r\n")
    assert c.reply()[0] == "250"
    [(env, _)] = s.messages()
    assert env["to"] == ["a@example.org", "b@example.org"]


def test_line_too_long_and_bare_lf_in_command(mksink):
    s = mksink("--max-line", "600")
    c = s.raw()
    code, text = c.cmd("NOOP " + "x" * 1000)
    assert (code, text[4:9]) == ("500", "5.5.2")
    assert c.cmd("NOOP")[0] == "250"  # the rest of the long line was skipped
    c.send(b"NOOP\n")
    code, text = c.reply()
    assert (code, text[4:9]) == ("500", "5.5.2")
    c.send(b"NO\rOP\r\n")
    assert c.reply()[0] == "500"
    assert c.cmd("NOOP")[0] == "250"


SMUGGLE = [b"\n.\n", b"\n.\r\n", b"\r.\r", b"\r.\r\n", b"\r\n.\r", b"\n.\r"]


@pytest.mark.parametrize("seq", SMUGGLE, ids=[repr(x) for x in SMUGGLE])
def test_smtp_smuggling(mksink, seq):
    s = mksink()
    c = s.raw()
    start_txn(c)
    assert c.cmd("DATA")[0] == "354"
    c.send(b"Subject: first\r\n\r\nfirst body" + seq +
           b"MAIL FROM:<evil@attacker.example>\r\n"
           b"RCPT TO:<victim@example.org>\r\n"
           b"DATA\r\n"
           b"Subject: smuggled\r\n\r\nsmuggled body\r\n"
           b".\r\n")
    code, text = c.reply()
    assert code.startswith("5"), text
    # Nothing hidden in the data was run as a command: the next reply
    # answers our NOOP, not a smuggled MAIL.
    code, text = c.cmd("NOOP")
    assert text == "250 2.0.0 Ok"
    # A legitimate transaction afterwards on the same connection.
    assert c.cmd("MAIL FROM:<sender@example.com>")[0] == "250"
    assert c.cmd("RCPT TO:<rcpt@example.org>")[0] == "250"
    assert c.cmd("DATA")[0] == "354"
    c.send(b"Subject: legit\r\n\r\nlegit body\r\n.\r\n")
    assert c.reply()[0] == "250"
    msgs = s.messages()
    assert len(msgs) == 1
    env, data = msgs[0]
    assert env["from"] == "sender@example.com"
    assert b"legit body" in data and b"smuggled" not in data
    assert not any(m[0]["from"] == "evil@attacker.example" for m in msgs)


def test_bdat(mksink):
    s = mksink()
    c = s.raw()
    start_txn(c)
    c.send(b"BDAT 14\r\nSubject: b\r\n\r\nBDAT 10 LAST\r\nhello\r\n.\r\n")
    code, text = c.reply()
    assert code == "250" and "14 octets" in text
    assert c.reply()[0] == "250"
    [(_, data)] = s.messages()
    assert data == b"Subject: b\r\n\r\nhello\r\n.\r\n"  # no unstuffing in BDAT
    # BDAT then DATA in one transaction.
    start_txn(c)
    c.send(b"BDAT 5\r\nabc\r\n")
    assert c.reply()[0] == "250"
    code, text = c.cmd("DATA")
    assert (code, text[4:9]) == ("503", "5.5.1")
    assert c.cmd("RSET")[0] == "250"
    # BDAT without a transaction: the chunk is still read, then refused.
    c.send(b"BDAT 6 LAST\r\nNOOP\r\n")
    assert c.reply()[0] == "503"
    assert c.cmd("NOOP")[0] == "250"
    # Bare LF inside a chunk refuses the message.
    start_txn(c)
    c.send(b"BDAT 9 LAST\r\nSub\nj\r\n\r\n")
    code, text = c.reply()
    assert code.startswith("5"), text
    # BDAT 0 LAST with earlier chunks.
    start_txn(c)
    c.send(b"BDAT 6\r\nx\r\ny\r\nBDAT 0 LAST\r\n")
    assert c.reply()[0] == "250"
    assert c.reply()[0] == "250"
    assert len(s.messages()) == 2


def test_lmtp_per_recipient_replies(mksink):
    s = mksink("--lmtp", "--reply", "b@example.org=450:4.2.0 mailbox busy",
               "--reply", "c@example.org=550:5.1.1 no such user")
    c = s.raw()
    assert "LMTP" in c.greeting[1]
    assert c.cmd("EHLO client.test")[0] == "500"
    assert c.cmd("HELO client.test")[0] == "500"
    start_txn(c, ("a@example.org", "b@example.org", "c@example.org"),
              hello="LHLO client.test")
    assert c.cmd("DATA")[0] == "354"
    c.send(b"Subject: x\r\n\r\nhi\r\n.\r\n")
    replies = [c.reply()[1] for _ in range(3)]
    assert replies[0].startswith("250 2.0.0")
    assert replies[1] == "450 4.2.0 mailbox busy"
    assert replies[2] == "550 5.1.1 no such user"
    assert c.cmd("NOOP")[1] == "250 2.0.0 Ok"  # exactly three, in order
    [(env, _)] = s.messages()
    assert env["to"] == ["a@example.org"] and env["lmtp"] is True
    # BDAT LAST in LMTP: one reply per recipient too.
    start_txn(c, ("a@example.org", "c@example.org"), hello="LHLO x.test")
    c.send(b"BDAT 5 LAST\r\nx\r\n\r\n")
    assert c.reply()[0] == "250"
    assert c.reply()[0] == "550"


def test_smtp_reply_composition(mksink):
    s = mksink("--reply", "b@example.org=450:4.2.0 mailbox busy",
               "--reply", "c@example.org=550:5.1.1 no such user")
    c = s.raw()
    for rcpts, want in ((("a@example.org", "c@example.org"),
                         "550 5.1.1 no such user"),
                        (("c@example.org", "b@example.org"),
                         "450 4.2.0 mailbox busy")):
        start_txn(c, rcpts)
        assert c.cmd("DATA")[0] == "354"
        c.send(b"Subject: x\r\n\r\nhi\r\n.\r\n")
        assert c.reply()[1] == want
    assert s.messages() == []


@pytest.fixture(scope="module")
def cert(tmp_path_factory):
    d = tmp_path_factory.mktemp("pki")
    key, crt = str(d / "key.pem"), str(d / "cert.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec",
                    "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                    "-keyout", key, "-out", crt, "-days", "2",
                    "-subj", "/CN=sink.test"], check=True,
                   capture_output=True)
    ckey, ccrt = str(d / "ckey.pem"), str(d / "ccert.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec",
                    "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                    "-keyout", ckey, "-out", ccrt, "-days", "2",
                    "-subj", "/CN=client.test"], check=True,
                   capture_output=True)
    return {"key": key, "cert": crt, "ckey": ckey, "ccert": ccrt}


def client_ctx():
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def test_starttls(mksink, cert):
    s = mksink("--tls-cert", cert["cert"], "--tls-key", cert["key"],
               "--tls-required", "--client-ca", cert["ccert"])
    with s.smtp() as c:
        c.ehlo("client.test")
        assert c.has_extn("starttls")
        code, text = c.mail("a@example.com")
        assert (code, text[:5]) == (530, b"5.7.0")
        ctx = client_ctx()
        ctx.load_cert_chain(cert["ccert"], cert["ckey"])
        c.starttls(context=ctx)
        c.ehlo("client.test")
        assert not c.has_extn("starttls")
        c.sendmail("a@example.com", ["b@example.org"], b"Subject: tls\r\n\r\nx\r\n")
    [(env, _)] = s.messages()
    assert env["tls"] is True
    fp = subprocess.run(["openssl", "x509", "-in", cert["ccert"], "-noout",
                         "-fingerprint", "-sha256"], check=True,
                        capture_output=True, text=True).stdout
    assert env["tls_peer_fp"] == fp.split("=")[1].strip().replace(":", "").lower()
    s.d.wait_for(r"disconnect client=127\.0\.0\.1 .*tls=TLSv1\.[23]:")


def test_starttls_discards_pipelined_plaintext(mksink, cert):
    s = mksink("--tls-cert", cert["cert"], "--tls-key", cert["key"])
    c = s.raw()
    assert c.cmd("EHLO client.test")[0] == "250"
    c.send(b"STARTTLS\r\nNOOP\r\n")  # the injection
    assert c.reply()[0] == "220"
    tls = client_ctx().wrap_socket(c.sock, server_hostname="sink.test")
    f = tls.makefile("rb")
    tls.sendall(b"EHLO client.test\r\n")
    first = f.readline()
    assert first.startswith(b"250-sink.test"), first  # not NOOP's 250 Ok
    s.d.wait_for(r"discarded 6 bytes pipelined after STARTTLS")
    tls.close()


def test_tls_1_1_refused(mksink, cert):
    s = mksink("--tls-cert", cert["cert"], "--tls-key", cert["key"])

    def s_client(*proto):
        return subprocess.run(
            ["openssl", "s_client", "-starttls", "smtp", "-connect",
             f"127.0.0.1:{s.port}", "-cipher", "DEFAULT@SECLEVEL=0"] +
            list(proto), input=b"QUIT\r\n", capture_output=True, timeout=60)
    old = s_client("-tls1_1")
    assert old.returncode != 0, old.stdout
    good = s_client("-tls1_2")
    assert good.returncode == 0 and b"TLSv1.2" in good.stdout


def test_per_ip_connection_limit(mksink):
    s = mksink("--max-per-ip", "2")
    a, b = s.raw(), s.raw()
    assert a.greeting[0] == b.greeting[0] == "220"
    c = s.raw()
    assert c.greeting[1].startswith("421 4.7.0")
    assert c.closed()
    a.close()
    s.d.wait_for(r"disconnect client=127\.0\.0\.1 .*reason=lost connection")
    d = s.raw()  # a slot is free again
    assert d.greeting[0] == "220"


def test_command_timeout(mksink):
    s = mksink("--cmd-timeout", "1")
    c = s.raw()
    code, text = c.reply()  # nothing sent: the server gives up
    assert (code, text[4:9]) == ("421", "4.4.2")
    assert c.closed()


def test_data_timeout(mksink):
    s = mksink("--data-timeout", "1", "--cmd-timeout", "60")
    c = s.raw()
    start_txn(c)
    assert c.cmd("DATA")[0] == "354"
    c.send(b"Subject: slow\r\n")
    code, text = c.reply()
    assert (code, text[4:9]) == ("421", "4.4.2")
    assert c.closed()
    assert s.messages() == []


def test_total_connection_limit(mksink):
    s = mksink("--max-conn", "1", "--max-per-ip", "5")
    a = s.raw()
    assert a.greeting[0] == "220"
    b = s.raw()
    assert b.greeting[1].startswith("421 4.7.0")
    assert b.closed()


def test_pipelining_behind_message(mksink):
    s = mksink()
    c = s.raw()
    start_txn(c)
    assert c.cmd("DATA")[0] == "354"
    # Everything in one write: the commands wait until the message has
    # its answer, then run in order.
    c.send(b"Subject: one\r\n\r\n1\r\n.\r\n"
           b"MAIL FROM:<s2@example.com>\r\nRCPT TO:<r2@example.org>\r\n"
           b"DATA\r\n")
    assert c.reply()[1].startswith("250 2.0.0 Ok: queued")
    assert c.reply()[1] == "250 2.1.0 Ok"
    assert c.reply()[1] == "250 2.1.5 Ok"
    assert c.reply()[0] == "354"
    c.send(b"Subject: two\r\n\r\n2\r\n.\r\nQUIT\r\n")
    c.sock.shutdown(socket.SHUT_WR)
    assert c.reply()[0] == "250"
    assert c.reply()[0] == "221"
    msgs = s.messages()
    assert [m[0]["from"] for m in msgs] == ["sender@example.com",
                                            "s2@example.com"]


def test_too_many_errors(mksink):
    s = mksink("--max-errors", "3")
    c = s.raw()
    assert c.cmd("BOGUS")[0] == "500"
    assert c.cmd("RCPT TO:<a@b.example>")[0] == "503"
    assert c.cmd("MAIL FROM:<no-domain>")[0] in ("501", "503")
    code, text = c.reply()
    assert (code, text[4:9]) == ("421", "4.7.0")
    assert c.closed()


def test_xforward_trusted(mksink):
    s = mksink("--xforward-from", "127.0.0.0/8")
    c = s.raw()
    code, text = c.cmd("EHLO relay.test")
    assert "XFORWARD NAME ADDR PORT PROTO HELO IDENT SOURCE" in text
    assert c.cmd("XFORWARD NAME=mx.outside.example ADDR=192.0.2.7 "
                 "PORT=4711")[0] == "250"
    assert c.cmd("XFORWARD HELO=outside+2Eexample PROTO=ESMTP "
                 "IDENT=[UNAVAILABLE]")[0] == "250"
    assert c.cmd("XFORWARD FOO=bar")[0] == "501"
    assert c.cmd("MAIL FROM:<a@example.com>")[0] == "250"
    assert c.cmd("XFORWARD NAME=x")[0] == "503"
    assert c.cmd("RCPT TO:<b@example.org>")[0] == "250"
    assert c.cmd("DATA")[0] == "354"
    c.send(b"Subject: x\r\n\r\nhi\r\n.\r\n")
    assert c.reply()[0] == "250"
    [(env, _)] = s.messages()
    assert env["client_addr"] == "192.0.2.7"
    assert env["client_name"] == "mx.outside.example"
    assert env["helo"] == "outside.example"
    s.d.wait_for(r"client=192\.0\.2\.7 helo=outside\.example .*result=250")


def test_xforward_untrusted(mksink):
    s = mksink("--xforward-from", "192.0.2.0/24")
    c = s.raw()
    code, text = c.cmd("EHLO relay.test")
    assert "XFORWARD" not in text
    code, text = c.cmd("XFORWARD ADDR=192.0.2.7")
    assert (code, text[4:9]) == ("550", "5.7.0")


def test_100mb_message_streams(mksink):
    size = 100 * 1024 * 1024
    # ASan's quarantine keeps up to 256 MB of freed memory by default,
    # which would measure the sanitizer, not us.
    s = mksink("--max-size", str(size + 1024 * 1024), env={
        "ASAN_OPTIONS": "detect_leaks=0:abort_on_error=0:quarantine_size_mb=4"})
    base = vmhwm_kib(s.d.proc.pid)
    c = s.raw()
    start_txn(c)
    assert c.cmd("DATA")[0] == "354"
    line = b"z" * 1022 + b"\r\n"
    block = line * 1024  # 1 MiB
    for _ in range(100):
        c.send(block)
    c.send(b".\r\n")
    assert c.reply()[0] == "250"
    [(env, _)] = s.messages()
    assert env["size"] == size
    grown = vmhwm_kib(s.d.proc.pid) - base
    print(f"VmHWM grew by {grown} kB for a {size >> 20} MiB message")
    assert grown < 20 * 1024, grown


def test_nul_byte_refused_in_data_and_bdat(mksink):
    s = mksink()
    c = s.raw()
    start_txn(c)
    assert c.cmd("DATA")[0] == "354"
    c.send(b"Subject: nul\r\n\r\nbefore\x00after\r\n.\r\n")
    code, text = c.reply()
    assert (code, text[4:9]) == ("550", "5.6.0"), text
    # The session goes on; BDAT is refused the same way.
    start_txn(c)
    c.send(b"BDAT 9 LAST\r\nab\x00cd\r\n\r\n")
    code, text = c.reply()
    assert (code, text[4:9]) == ("550", "5.6.0"), text
    assert c.cmd("NOOP")[0] == "250"
    assert s.messages() == []


def test_address_longer_than_254_octets_refused(mksink):
    s = mksink()
    c = s.raw()
    assert c.cmd("EHLO client.test")[0] == "250"
    dom = "@" + ".".join(["d" * 60] * 3) + ".example"   # 192 octets
    ok = "a" * (254 - len(dom)) + dom
    long = "a" + ok
    assert len(ok) == 254 and len(long) == 255
    code, text = c.cmd(f"MAIL FROM:<{long}>")
    assert code in ("501", "553"), text
    assert c.cmd(f"MAIL FROM:<{ok}>")[0] == "250"
    code, text = c.cmd(f"RCPT TO:<{long}>")
    assert code in ("501", "553"), text
    assert c.cmd(f"RCPT TO:<{ok}>")[0] == "250"
