"""portal-require-tunnel-signature: only mail S/MIME-signed with the
gateway's tunnel key (checked with its public certificate) is stored; a
forged trigger from inside mynetworks is refused. Signatures are made with
the openssl CLI."""

import smtplib
import subprocess

import pytest

from test_portal_ingest import Portal, RELAY


def keypair(d, name):
    key, crt = d / f"{name}.key", d / f"{name}.crt"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048",
                    "-nodes", "-subj", f"/CN={name}", "-days", "2",
                    "-keyout", str(key), "-out", str(crt)], check=True,
                   capture_output=True)
    return key, crt


def signed(d, key, crt, trigger_inside=True):
    """A tunnel message as internal-gw makes it: the trigger outside for
    routing and, when trigger_inside, inside the signed entity as well."""
    inner = d / "inner.eml"
    inner.write_bytes((b"X-Keep-CipherMail-To-Webmail: True\r\n"
                       if trigger_inside else b"") +
                      b"Content-Type: text/plain\r\n\r\nSigned body.\r\n")
    r = subprocess.run(["openssl", "smime", "-sign", "-in", str(inner),
                        "-signer", str(crt), "-inkey", str(key), "-binary",
                        "-crlfeol"], check=True, capture_output=True)
    return (b"From: alice@example.com\r\nSubject: tunnel\r\n"
            b"X-Keep-CipherMail-To-Webmail: True\r\n" +
            r.stdout.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n"))


def test_tunnel_signature_required(tmp_path):
    gkey, gcrt = keypair(tmp_path, "gateway-tunnel")
    okey, ocrt = keypair(tmp_path, "other")
    p = Portal(tmp_path, start=False)
    text = open(p.conf).read().replace(
        "mynetworks", f'gateway_tunnel_cert = "{gcrt}";\n  mynetworks')
    open(p.conf, "w").write(text)
    p.cli("property", "global", "set", "--name",
          "portal-require-tunnel-signature", "--value", "true")
    p.start()
    try:
        rcpt = [f"bob=example.org@{RELAY}"]
        forged = (b"From: alice@example.com\r\nSubject: forged\r\n"
                  b"X-Keep-CipherMail-To-Webmail: True\r\n\r\nhi\r\n")
        # Unsigned; signed by another key; signed by the gateway but with
        # the trigger outside the signature (could have been swapped).
        for data in (forged, signed(tmp_path, okey, ocrt),
                     signed(tmp_path, gkey, gcrt, trigger_inside=False)):
            with pytest.raises(smtplib.SMTPDataError) as e:
                p.send(rcpt, data)
            assert e.value.smtp_code == 550 and b"5.7.1" in e.value.smtp_error
        assert p.messages("bob@example.org") == []
        p.send(rcpt, signed(tmp_path, gkey, gcrt))
        rows = p.messages("bob@example.org")
        assert len(rows) == 1
        stored = p.file(rows[0][3])
        # Stored unwrapped, without the tunnel or the trigger.
        assert b"Signed body." in stored and b"pkcs7" not in stored
        assert b"X-Keep-" not in stored and b"Subject: tunnel" in stored
    finally:
        p.stop()
