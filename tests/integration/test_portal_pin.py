"""The portal's pin on the gateway's TLS client certificate
(smtp.gateway_cert_sha256, docs/external-portal.md): only a client that
presents the pinned certificate may name recipients; any other client,
with another certificate (even a valid chain), none, or without TLS at
all, gets "554 5.7.1" at RCPT."""

import os
import smtplib
import ssl
import subprocess

import pytest

from gwutil import pki_dir
from test_portal_ingest import RELAY, Portal, message

RCPT = f"bob=example.org@{RELAY}"
REFUSAL = (554, b"5.7.1 Only the gateway may send here: client certificate "
           b"required")


def sha256_pin(crt):
    r = subprocess.run(["openssl", "x509", "-in", crt, "-noout",
                        "-fingerprint", "-sha256"], check=True,
                       capture_output=True, text=True)
    # "sha256 Fingerprint=AB:CD:..." (the portal accepts the colons)
    return r.stdout.strip().split("=", 1)[1]


@pytest.fixture
def pinned_portal(tmp_path):
    pki = pki_dir()
    p = Portal(tmp_path, start=False)
    with open(p.conf) as f:
        conf = f.read()
    old = 'mynetworks = [ "127.0.0.1/32" ];'
    assert old in conf
    conf = conf.replace(old, old + f"""
  tls_cert = "{pki}/portal-tls-chain.pem";
  tls_key = "{pki}/portal-tls.key";
  tls_client_ca = "{pki}/root-ca.crt";
  gateway_cert_sha256 = [ "{sha256_pin(f'{pki}/gw-client.crt')}" ];""")
    with open(p.conf, "w") as f:
        f.write(conf)
    p.start()
    yield p
    p.stop()


def other_cert(tmp_path):
    """A client certificate that is not the pinned one, made here."""
    crt, key = str(tmp_path / "other.crt"), str(tmp_path / "other.key")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec",
                    "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                    "-keyout", key, "-out", crt, "-days", "2",
                    "-subj", "/CN=gateway.example.com"],
                   check=True, capture_output=True)
    return crt, key


def client_ctx(crt=None, key=None):
    ctx = ssl.create_default_context(cafile=os.path.join(pki_dir(),
                                                         "root-ca.crt"))
    ctx.check_hostname = False
    if crt:
        ctx.load_cert_chain(crt, key)
    return ctx


def rcpt_reply(port, ctx):
    with smtplib.SMTP("127.0.0.1", port) as s:
        s.ehlo("gw.test")
        if ctx is not None:
            s.starttls(context=ctx)
            s.ehlo("gw.test")
        assert s.mail("alice@example.com")[0] == 250
        return s.rcpt(RCPT)


def test_pinned_certificate_is_accepted(pinned_portal):
    pki = pki_dir()
    ctx = client_ctx(f"{pki}/gw-client-chain.pem", f"{pki}/gw-client.key")
    with smtplib.SMTP("127.0.0.1", pinned_portal.port) as s:
        s.starttls(context=ctx)
        assert s.sendmail("alice@example.com", [RCPT], message()) == {}
    assert len(pinned_portal.messages("bob@example.org")) == 1


def test_other_certificate_is_refused_at_rcpt(pinned_portal, tmp_path):
    crt, key = other_cert(tmp_path)
    assert rcpt_reply(pinned_portal.port, client_ctx(crt, key)) == REFUSAL
    pinned_portal.daemon.wait_for(r"refused 127\.0\.0\.1: TLS client "
                                  r"certificate is not the gateway's")
    assert pinned_portal.messages("bob@example.org") == []


def test_valid_chain_but_not_the_pin_is_refused(pinned_portal):
    # Issued by the same CA as the gateway's: the pin, not the chain,
    # decides.
    pki = pki_dir()
    ctx = client_ctx(f"{pki}/gw-client-rsa-chain.pem",
                     f"{pki}/gw-client-rsa.key")
    assert rcpt_reply(pinned_portal.port, ctx) == REFUSAL


def test_no_certificate_or_no_tls_is_refused(pinned_portal):
    assert rcpt_reply(pinned_portal.port, client_ctx()) == REFUSAL
    assert rcpt_reply(pinned_portal.port, None) == REFUSAL
    assert pinned_portal.messages("bob@example.org") == []
