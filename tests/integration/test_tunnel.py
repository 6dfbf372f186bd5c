"""Add-on mode: the S/MIME tunnel between internal-gw and the portal.

The gateway's tunnel mail is captured by a sink (the raw DATA it sent),
checked to hold nothing of the original, then handed to the portal, which
stores it. The refusals are tunnel messages this file builds with the
openssl CLI: a flipped byte, a signature by another certificate, no
signature, encryption to another certificate, a replay, a stale
timestamp, a manifest that does not parse."""

import hashlib
import os
import re
import secrets
import smtplib
import subprocess
import time

import pytest

from conftest import Sink
from gwutil import Gateway, make_message
from test_portal_ingest import Portal

G = ("global", "set", "--name")
SENDER = "gateway@relay-to-webmail.private"
TUNNEL = "webmail@relay-to-webmail.private"


def keygen(node, role, addr, d):
    cert = os.path.join(d, f"{role}-tunnel.crt")
    key = os.path.join(d, f"{role}-tunnel.key")
    args = ["tunnel", "keygen", "--role", role, "--address", addr,
            "--cert-out", cert]
    if role == "portal":
        args += ["--key-out", key]
    node.cli(*args)
    return key, cert


def selfsigned(d, name, ku=None):
    key, crt = os.path.join(d, f"{name}.key"), os.path.join(d, f"{name}.crt")
    args = ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
            "-subj", f"/CN={name}", "-days", "2", "-keyout", key, "-out", crt]
    if ku:
        args += ["-addext", f"keyUsage=critical,{ku}"]
    subprocess.run(args, check=True, capture_output=True)
    return key, crt


@pytest.fixture
def tunnel(tmp_path):
    """A portal with its tunnel key and a gateway with the webmail sender
    key, each with the other's certificate only; the gateway's tunnel mail
    goes to a capturing sink."""
    d = str(tmp_path)
    capture, out = Sink(), Sink()
    gw = Gateway(tmp_path, capture.port, out.port, start=False, props=[
        G + ("remote-portal-enabled", "--value", "true"),
        G + ("webmail-enabled", "--value", "true"),
        G + ("webmail-only-if-mandatory", "--value", "false"),
        G + ("webmail-tunnel-enabled", "--value", "true"),
        G + ("webmail-recipient", "--value", TUNNEL),
        ("user", "set", "--email", "pdf@example.org", "--name",
         "pdf-otp-enabled", "--value", "true"),
        ("user", "set", "--email", "pdf@example.org", "--name",
         "encrypt-mode", "--value", "mandatory"),
        ("user", "set", "--email", "pdf@example.org", "--name",
         "webmail-enabled", "--value", "false"),
    ])
    gkey_unused, gcrt = keygen(gw, "gateway", SENDER, d)
    portal = Portal(tmp_path, start=False)
    pkey, pcrt = keygen(portal, "portal", TUNNEL, d)
    # Only the certificates cross: each node imports the other's.
    gw.cli("cert", "import", "--file", pcrt)
    with open(portal.conf, "a") as f:
        f.write(f'tunnel = {{ key = "{pkey}"; cert = "{pcrt}"; '
                f'gateway_cert = "{gcrt}"; }};\n')
    portal.cli("property", *G, "webmail-recipient", "--value", TUNNEL)
    portal.cli("property", *G, "require-tunnel", "--value", "true")
    portal.start()
    gw.start()
    env = {"gw": gw, "portal": portal, "capture": capture, "out": out,
           "pcrt": pcrt, "pkey": pkey, "gcrt": gcrt, "d": d}
    yield env
    gw.stop()
    portal.stop()
    capture.stop()
    out.stop()


def gw_send(gw, rcpt, data):
    with smtplib.SMTP("127.0.0.1", gw.port, timeout=30) as s:
        s.sendmail("alice@example.com", [rcpt], data)


def portal_send(portal, data, frm=SENDER, rcpt=TUNNEL):
    with smtplib.SMTP("127.0.0.1", portal.port, timeout=30) as s:
        s.sendmail(frm, [rcpt], data)


def test_round_trip_webmail_and_nothing_of_the_original_on_the_wire(tunnel):
    gw, portal, cap = tunnel["gw"], tunnel["portal"], tunnel["capture"]
    original = make_message(to="ext@example.org",
                            subject="Merger plan Kestrel",
                            body="The numbers are 4711 and 0815.\n")
    gw_send(gw, "ext@example.org", original)
    sent = cap.wait(1)[0]
    assert sent["from"] == SENDER and sent["to"] == [TUNNEL]
    raw = sent["data"]
    for leak in (b"Kestrel", b"4711", b"ext@example.org", b"ext=example.org",
                 b"example.org", b"alice"):
        assert leak not in raw, leak
    assert b"application/pkcs7-mime" in raw

    # OpenSSL's CMS code, not only the portal, opens it with the portal's
    # key: the original byte for byte after the signed manifest.
    r = subprocess.run(["openssl", "cms", "-decrypt", "-inkey",
                        tunnel["pkey"], "-recip", tunnel["pcrt"], "-binary"],
                       input=raw, capture_output=True)
    assert r.returncode == 0, r.stderr
    assert b"application/x-postern-manifest" in r.stdout
    assert b"Content-Type: message/rfc822\r\n\r\n" + original in r.stdout

    # The captured bytes are the tunnel message: the portal stores them.
    portal_send(portal, raw)
    rows = portal.messages("ext@example.org")
    assert len(rows) == 1, portal.daemon.log()
    assert rows[0][1] == "webmail"
    stored = portal.file(rows[0][3])
    assert b"Subject: Merger plan Kestrel" in stored
    assert b"The numbers are 4711 and 0815." in stored
    assert b"X-Keep-" not in stored and b"postern-manifest" not in stored
    portal.daemon.wait_for("tunnel id=")

    # Sent again: a replay.
    with pytest.raises(smtplib.SMTPDataError) as e:
        portal_send(portal, raw)
    assert e.value.smtp_code == 550 and b"5.7." in e.value.smtp_error
    portal.daemon.wait_for("replayed tunnel id")
    assert len(portal.messages("ext@example.org")) == 1


def test_round_trip_pdf_otp(tunnel):
    gw, portal, cap = tunnel["gw"], tunnel["portal"], tunnel["capture"]
    gw_send(gw, "pdf@example.org", make_message(to="pdf@example.org",
                                                body="as a PDF\n"))
    sent = cap.wait(1)[0]
    assert sent["to"] == [TUNNEL] and b"pdf@example.org" not in sent["data"]
    portal_send(portal, sent["data"])
    rows = portal.messages("pdf@example.org")
    assert len(rows) == 1, portal.daemon.log()
    # Stored in the PDF state, as split mode stores PDF OTP mail.
    assert rows[0][1] == "pdf-pending"
    portal.daemon.wait_for("route=pdf-otp")


def test_require_tunnel_refuses_split_mode(tunnel):
    portal = tunnel["portal"]
    data = (b"From: alice@example.com\r\nSubject: x\r\n"
            b"X-Keep-CipherMail-To-Webmail: True\r\n\r\nhi\r\n")
    with pytest.raises(smtplib.SMTPRecipientsRefused) as e:
        portal.send(["bob=example.org@relay-to-webmail.private"], data)
    code, msg = list(e.value.recipients.values())[0]
    assert code == 550 and b"5.7.1" in msg
    assert portal.messages("bob@example.org") == []


# --- tunnel messages built here --------------------------------------------

def manifest(rcpts, msg, route="webmail", when=None, tid=None):
    return ("Postern-Tunnel: 1\r\nId: %s\r\nTime: %d\r\nRoute: %s\r\n"
            "Size: %d\r\nSHA256: %s\r\n" % (
                tid or secrets.token_hex(16),
                int(time.time()) if when is None else when, route,
                len(msg), hashlib.sha256(msg).hexdigest()) +
            "".join(f"Recipient: {r}\r\n" for r in rcpts)).encode()


def sign(d, man, key, crt):
    mp = os.path.join(d, "manifest")
    open(mp, "wb").write(man)
    return subprocess.run(["openssl", "cms", "-sign", "-binary", "-in", mp,
                           "-signer", crt, "-inkey", key, "-outform", "DER"],
                          check=True, capture_output=True).stdout


def entity(man, sig, msg):
    import base64
    b = "=_tunnel_" + secrets.token_hex(8)
    e = (f'Content-Type: multipart/mixed; boundary="{b}"\r\n\r\n'
         f"--{b}\r\nContent-Type: application/x-postern-manifest\r\n\r\n"
         ).encode() + man + f"\r\n--{b}\r\n".encode()
    if sig is not None:
        b64 = base64.encodebytes(sig).replace(b"\n", b"\r\n")
        e += (b"Content-Type: application/pkcs7-signature; "
              b"name=manifest.p7s\r\nContent-Transfer-Encoding: base64\r\n"
              b"\r\n" + b64 + f"\r\n--{b}\r\n".encode())
    return e + (b"Content-Type: message/rfc822\r\n\r\n" + msg +
                f"\r\n--{b}--\r\n".encode())


def encrypt(d, ent, crt):
    ep = os.path.join(d, "entity")
    open(ep, "wb").write(ent)
    r = subprocess.run(["openssl", "cms", "-encrypt", "-binary", "-aes256",
                        "-in", ep, crt], check=True, capture_output=True)
    return (f"From: <{SENDER}>\r\nTo: <{TUNNEL}>\r\n".encode() +
            r.stdout.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n"))


def refused(portal, data, reason):
    with pytest.raises(smtplib.SMTPDataError) as e:
        portal_send(portal, data)
    assert e.value.smtp_code == 550 and e.value.smtp_error.startswith(
        b"5.7."), e.value.smtp_error
    # The log is read from a pipe: wait for the line, do not race it.
    portal.daemon.wait_for(re.escape(reason))
    assert portal.messages("bob@example.org") == []


def test_refusals(tunnel):
    """Each case is refused with 550 5.7.x, a log line naming the reason,
    and nothing stored; the well-made message from the same builder is
    stored, so the refusals are about the one thing each case breaks."""
    gw, portal, d = tunnel["gw"], tunnel["portal"], tunnel["d"]
    # The gateway key as keyd holds it (the test reads it from keys_dir).
    keys = os.path.join(gw.dir, "keys")
    gkey = os.path.join(keys, [f for f in os.listdir(keys)
                               if f.endswith(".pem")][0])
    gcrt, pcrt = tunnel["gcrt"], tunnel["pcrt"]
    okey, ocrt = selfsigned(d, "other", "keyEncipherment,digitalSignature")
    msg = make_message(to="bob@example.org", body="tunnelled by hand\n")
    rc = ["bob@example.org"]

    def good(**kw):
        man = manifest(rc, msg, **kw)
        return encrypt(d, entity(man, sign(d, man, gkey, gcrt), msg), pcrt)

    refused(portal, good(when=int(time.time()) - 4000),
            "timestamp outside the tunnel-max-age window")
    refused(portal, good(when=int(time.time()) + 4000),
            "timestamp outside the tunnel-max-age window")
    man = manifest(rc, msg)
    refused(portal, encrypt(d, entity(man, sign(d, man, okey, ocrt), msg),
                            pcrt), "not signed by the gateway's tunnel")
    refused(portal, encrypt(d, entity(man, None, msg), pcrt),
            "refused: unsigned")
    refused(portal, encrypt(d, entity(man, sign(d, man, gkey, gcrt), msg),
                            ocrt), "not encrypted to this portal's tunnel")
    bad = man.replace(b"Route: webmail", b"Route: carrier-pigeon")
    refused(portal, encrypt(d, entity(bad, sign(d, bad, gkey, gcrt), msg),
                            pcrt), "manifest does not parse: unknown route")
    # The message part altered after signing: its digest no longer fits.
    refused(portal, encrypt(d, entity(man, sign(d, man, gkey, gcrt),
                                      msg.replace(b"hand", b"HAND")), pcrt),
            "message digest differs from the manifest")
    # A flipped byte in the ciphertext (middle of the base64 body).
    data = bytearray(good())
    body = data.index(b"\r\n\r\n") + 4
    i = body + (len(data) - body) // 2
    while data[i:i + 1] in (b"\r", b"\n"):
        i += 1
    data[i] = ord("A") if data[i] != ord("A") else ord("B")
    with pytest.raises(smtplib.SMTPDataError) as e:
        portal_send(portal, bytes(data))
    assert e.value.smtp_code == 550 and e.value.smtp_error.startswith(b"5.")
    assert portal.messages("bob@example.org") == []

    ok = good()
    portal_send(portal, ok)
    assert len(portal.messages("bob@example.org")) == 1
    refused_replay = pytest.raises(smtplib.SMTPDataError)
    with refused_replay as e:
        portal_send(portal, ok)
    assert e.value.smtp_code == 550
    portal.daemon.wait_for("replayed tunnel id")
    assert len(portal.messages("bob@example.org")) == 1


def test_tunnel_recipient_only_from_mynetworks(tmp_path):
    p = Portal(tmp_path, mynetworks='"192.0.2.0/24"')
    try:
        with pytest.raises(smtplib.SMTPConnectError):
            portal_send(p, b"x\r\n")
    finally:
        p.stop()


def test_portal_refuses_a_tunnel_key_that_can_sign(tmp_path):
    d = str(tmp_path)
    key, crt = selfsigned(d, "signing", "digitalSignature,keyEncipherment")
    p = Portal(tmp_path, start=False)
    with open(p.conf, "a") as f:
        f.write(f'tunnel = {{ key = "{key}"; cert = "{crt}"; '
                f'gateway_cert = "{crt}"; }};\n')
    from conftest import bin_path
    r = subprocess.run([bin_path("external-portal"), "-c", p.conf, "--check"],
                       capture_output=True, text=True)
    assert r.returncode != 0
    assert "keyEncipherment only" in r.stderr, r.stderr


def test_old_tunnel_settings_get_a_check_error(tmp_path):
    p = Portal(tmp_path, start=False)
    text = open(p.conf).read().replace(
        "mynetworks", 'gateway_tunnel_cert = "/nonexistent.crt";\n  '
        "mynetworks", 1)
    open(p.conf, "w").write(text)
    from conftest import bin_path
    r = subprocess.run([bin_path("external-portal"), "-c", p.conf, "--check"],
                       capture_output=True, text=True)
    assert r.returncode != 0 and "tunnel.gateway_cert" in r.stderr, r.stderr
    gw = Gateway(tmp_path, 1, 1, start=False)
    with open(gw.conf, "a") as f:
        f.write('portal = { tunnel_signer = "gateway@example.com"; };\n')
    r = subprocess.run([bin_path("internal-gw"), "-c", gw.conf, "--check"],
                       capture_output=True, text=True)
    assert r.returncode != 0 and "webmail-sender" in r.stderr, r.stderr
