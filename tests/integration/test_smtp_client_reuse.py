"""Connection reuse in the outbound SMTP client (shared/smtp_client.c):
the next hop sees fewer connections than messages, a cached connection the
server dropped costs nothing but a fresh one, and MAIL/RCPT/DATA are
pipelined when the server offers PIPELINING."""

import json
import os
import socket
import subprocess
import threading

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP

from conftest import bin_path, free_port

TIMEOUT = 120


def send(port, path, count, rcpts=("b@example.net",), extra=()):
    argv = [bin_path("harness/smtp_send"), "--host", "127.0.0.1", "--port",
            str(port), "--from", "a@example.com", "--timeout", "10",
            "--count", str(count)]
    for r in rcpts:
        argv += ["--to", r]
    argv += list(extra) + [str(path)]
    p = subprocess.run(argv, capture_output=True, timeout=TIMEOUT)
    assert p.returncode == 0, p.stderr.decode()
    assert b"runtime error" not in p.stderr, p.stderr.decode()
    return [json.loads(l) for l in p.stdout.splitlines()]


class _Counting:
    def __init__(self):
        self.connections = 0
        self.messages = []
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):
        with self.lock:
            self.messages.append(envelope.content)
        return "250 2.0.0 OK"


class CountingSink(Controller):
    """aiosmtpd as a next hop that counts the connections it accepts."""

    def __init__(self):
        self.counter = _Counting()
        super().__init__(self.counter, hostname="127.0.0.1",
                         port=free_port(), decode_data=False)

    def factory(self):
        counter = self.counter

        class _SMTP(SMTP):
            def connection_made(self, transport):
                with counter.lock:
                    counter.connections += 1
                super().connection_made(transport)

        return _SMTP(self.handler, **self.SMTP_kwargs)


def test_messages_to_one_hop_share_a_connection(tmp_path):
    msg = tmp_path / "m.eml"
    msg.write_bytes(b"Subject: reuse\r\n\r\nbody\r\n")
    sink = CountingSink()
    sink.start()
    before = sink.counter.connections   # start() probes the port once
    try:
        res = send(sink.port, msg, 10)
        assert [r["status"] for r in res] == [2] * 10, res
        assert len(sink.counter.messages) == 10
        assert sink.counter.connections - before == 1
    finally:
        sink.stop()


def test_cache_off_opens_a_connection_per_message(tmp_path):
    # The same run with the cache turned off: what the test above saves.
    msg = tmp_path / "m.eml"
    msg.write_bytes(b"Subject: no reuse\r\n\r\nbody\r\n")
    sink = CountingSink()
    sink.start()
    before = sink.counter.connections
    try:
        res = send(sink.port, msg, 4, extra=["--idle", "0"])
        assert [r["status"] for r in res] == [2] * 4, res
        assert sink.counter.connections - before == 4
    finally:
        sink.stop()


class Raw:
    """A raw SMTP server for several connections, one after another.
    behave(conn_no, line) returns the bytes to send for a command line,
    or None to hang up without a word."""

    def __init__(self, behave, pipelining=False):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(4)
        self.port = self.sock.getsockname()[1]
        self.behave = behave
        self.pipelining = pipelining
        self.connections = 0
        self.messages = []
        self.t = threading.Thread(target=self._run, daemon=True)
        self.t.start()

    def _run(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            with c:
                try:
                    self._session(c, self.connections)
                except OSError:
                    pass

    def _session(self, c, n):
        f = c.makefile("rb")
        c.sendall(b"220 raw\r\n")
        for line in f:
            cmd = line.upper()
            if cmd.startswith(b"EHLO"):
                c.sendall(b"250-raw\r\n" +
                          (b"250-PIPELINING\r\n" if self.pipelining else b"")
                          + b"250 8BITMIME\r\n")
                continue
            if cmd.startswith(b"QUIT"):
                c.sendall(b"221 bye\r\n")
                return
            out = self.behave(n, line, f, c)
            if out is None:
                return
            c.sendall(out)

    def stop(self):
        self.sock.close()


def test_a_dropped_cached_connection_is_retried_on_a_fresh_one(tmp_path):
    # The server hangs up on the second MAIL of its first connection, as a
    # server whose idle timer fired would: nothing is lost, nothing is 4xx.
    state = {"mails": 0}

    def behave(n, line, f, c):
        cmd = line.upper()
        if cmd.startswith(b"MAIL"):
            state["mails"] += 1
            if n == 1 and state["mails"] == 2:
                return None
            return b"250 ok\r\n"
        if cmd.startswith(b"RCPT"):
            return b"250 ok\r\n"
        if cmd.startswith(b"DATA"):
            c.sendall(b"354 go\r\n")
            data = b""
            for l in f:
                if l == b".\r\n":
                    break
                data += l
            raw.messages.append(data)
            return b"250 queued\r\n"
        return b"250 ok\r\n"

    raw = Raw(behave)
    msg = tmp_path / "m.eml"
    msg.write_bytes(b"Subject: dropped\r\n\r\nbody\r\n")
    try:
        res = send(raw.port, msg, 3)
        assert [r["status"] for r in res] == [2, 2, 2], res
        assert len(raw.messages) == 3
        assert raw.connections == 2
    finally:
        raw.stop()


def test_pipelining_sends_mail_rcpt_data_in_one_go(tmp_path):
    # This server answers nothing until it has read MAIL, both RCPTs and
    # DATA: a client that waits for each reply would time out.
    def behave(n, line, f, c):
        if not line.upper().startswith(b"MAIL"):
            return b"500 unexpected\r\n"
        got = [line] + [f.readline() for _ in range(3)]
        assert [g.split(b":")[0].split()[0].upper() for g in got] == \
            [b"MAIL", b"RCPT", b"RCPT", b"DATA"], got
        c.sendall(b"250 ok\r\n250 ok\r\n550 5.1.1 no such user\r\n"
                  b"354 go\r\n")
        data = b""
        for l in f:
            if l == b".\r\n":
                break
            data += l
        raw.messages.append(data)
        return b"250 queued\r\n"

    raw = Raw(behave, pipelining=True)
    msg = tmp_path / "m.eml"
    msg.write_bytes(b"Subject: pipelined\r\n\r\nbody\r\n")
    try:
        res = send(raw.port, msg, 1, rcpts=("b@example.net", "c@example.net"))
        assert res[0]["status"] == 5 and res[0]["rcpt"] == [250, 550], res
        assert raw.messages == [b"Subject: pipelined\r\n\r\nbody\r\n"]
    finally:
        raw.stop()


def test_gateway_relays_many_messages_over_few_connections(tmp_path):
    import smtplib
    from conftest import Sink
    from gwutil import Gateway, make_message

    portal, out = Sink(), CountingSink()
    out.start()
    before = out.counter.connections
    gw = Gateway(tmp_path, portal.port, out.port)
    try:
        n = 12
        for i in range(n):
            with smtplib.SMTP("127.0.0.1", gw.port, timeout=30) as s:
                s.sendmail("alice@example.com", ["bob@example.net"],
                           make_message(subject="reuse %d" % i))
        # Every message is there before its 250; the gateway's two SMTP
        # worker threads keep a connection each at most.
        assert len(out.counter.messages) == n
        assert out.counter.connections - before <= 2
    finally:
        gw.stop()
        portal.stop()
        out.stop()
