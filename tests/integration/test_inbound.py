"""Inbound S/MIME for internal recipients (locality = internal): messages
made with `openssl cms` here are decrypted with keys the key holder has,
signatures are verified, the result goes into X-Postern-* fields that
only the gateway writes, and a valid signer's certificate is harvested so
the next outgoing message to that partner is encrypted."""

import os
import re
import signal
import smtplib
import subprocess

import pytest

from conftest import Sink
from gwutil import Gateway, pki_dir

INTERNAL = ("alice@example.com", "carol@example.com")


def crlf(b):
    return b.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def cms(tmp, *args, data=None):
    """Runs openssl cms; returns its output as CRLF bytes."""
    inp = tmp / ("in-%s" % os.urandom(4).hex())
    out = tmp / ("out-%s" % os.urandom(4).hex())
    inp.write_bytes(data or b"")
    r = subprocess.run(["openssl", "cms", *args, "-in", str(inp),
                        "-out", str(out)], capture_output=True)
    assert r.returncode == 0, r.stderr
    return crlf(out.read_bytes())


def inner(body=b"secret body 7f3a\r\n", subject=None):
    h = b"Content-Type: text/plain; charset=utf-8\r\n"
    return h + b"\r\n" + body


def outer(frm, to, subject, entity, extra=b""):
    """Outer header fields + entity (which has its own Content-* fields)."""
    return (b"From: %s\r\nTo: %s\r\nSubject: %s\r\nMessage-ID: <%s@t>\r\n"
            b"MIME-Version: 1.0\r\n" % (frm.encode(), to.encode(),
                                         subject.encode(),
                                         os.urandom(6).hex().encode())
            + extra + entity)


def encrypt(tmp, entity, certs, gcm=False):
    pki = pki_dir()
    args = ["-encrypt", "-binary", "-aes-256-gcm" if gcm else "-aes256"]
    for c in certs:
        args += ["-recip", f"{pki}/{c}"]
    return cms(tmp, *args, data=entity)


def sign(tmp, entity, who, opaque=False, certfile=None, keyfile=None):
    pki = pki_dir()
    args = ["-sign", "-signer", certfile or f"{pki}/{who}.crt",
            "-inkey", keyfile or f"{pki}/{who}.key",
            "-certfile", f"{pki}/intermediate-ca.crt"]
    if opaque:
        args.append("-nodetach")
    return cms(tmp, *args, data=entity)


def send(gw, frm, rcpts, msg):
    with smtplib.SMTP("127.0.0.1", gw.port) as s:
        s.sendmail(frm, rcpts, msg)


def headers(data):
    head = data.split(b"\r\n\r\n", 1)[0].decode()
    return re.findall(r"^(X-Postern-[\w-]+): ([^\r\n]*)", head, re.M)


@pytest.fixture
def gw(tmp_path):
    portal, out = Sink(), Sink()
    pki = pki_dir()
    carol = tmp_path / "carol-key.pem"
    carol.write_bytes(open(f"{pki}/carol.key", "rb").read() +
                      open(f"{pki}/carol-chain.pem", "rb").read())
    props = [("user", "set", "--email", a, "--name", "locality", "--value",
              "internal") for a in INTERNAL]
    g = Gateway(tmp_path, portal.port, out.port, props=props,
                certs=[("--file", f"{pki}/alice.p12", "--password",
                        "secret"), ("--file", str(carol))])
    yield g, out
    g.stop()
    portal.stop()
    out.stop()


def test_rsa_recipient_decrypted(gw, tmp_path):
    g, out = gw
    body = enc_message(tmp_path, "bob@example.net", "alice@example.com",
                       "rsa", ["alice.crt"])
    send(g, "bob@example.net", ["alice@example.com"], body)
    data = out.wait(1)[0]["data"]
    assert b"secret body 7f3a" in data, data[:400]
    assert b"pkcs7-mime" not in data
    assert ("X-Postern-Encrypted", "decrypted") in headers(data)
    assert any("unwrapped a content key for alice@example.com" in ln
               for ln in g.daemon.lines), g.daemon.log()


def enc_message(tmp, frm, to, subject, certs, entity=None, gcm=False,
                extra=b""):
    e = encrypt(tmp, entity or inner(), certs, gcm=gcm)
    # openssl's output: MIME-Version, Content-* fields, blank line, base64.
    return outer(frm, to, subject, e.split(b"MIME-Version: 1.0\r\n", 1)[1],
                 extra)


@pytest.mark.parametrize("gcm", [False, True])
def test_ec_recipient_and_auth_enveloped(gw, tmp_path, gcm):
    g, out = gw
    send(g, "bob@example.net", ["carol@example.com"],
         enc_message(tmp_path, "bob@example.net", "carol@example.com",
                     "ec", ["carol.crt"], gcm=gcm))
    data = out.wait(1)[0]["data"]
    assert b"secret body 7f3a" in data, data[:600]
    assert ("X-Postern-Encrypted", "decrypted") in headers(data)


def test_two_recipients_different_keys(gw, tmp_path):
    g, out = gw
    send(g, "bob@example.net", ["carol@example.com"],
         enc_message(tmp_path, "bob@example.net", "alice@example.com, "
                     "carol@example.com", "two", ["alice.crt", "carol.crt"],
                     gcm=True))
    data = out.wait(1)[0]["data"]
    assert b"secret body 7f3a" in data


def test_key_not_held_passes_unchanged(gw, tmp_path):
    g, out = gw
    msg = enc_message(tmp_path, "carol@example.com", "alice@example.com",
                      "nokey", ["bob.crt"])
    send(g, "carol@example.com", ["alice@example.com"], msg)
    data = out.wait(1)[0]["data"]
    assert b"application/pkcs7-mime" in data
    assert msg.split(b"\r\n\r\n", 1)[1] in data
    hs = dict(headers(data))
    assert hs["X-Postern-Encrypted"].startswith("not-for-us")
    assert any("not decrypted, passed unchanged: no key held" in ln
               for ln in g.daemon.lines), g.daemon.log()


def test_one_recipient_info_not_held(gw, tmp_path):
    """A message for a partner whose key the gateway lacks and for alice:
    the RecipientInfo nobody here holds is skipped, alice's opens it."""
    g, out = gw
    send(g, "bob@example.net", ["alice@example.com"],
         enc_message(tmp_path, "bob@example.net", "bob@example.net, "
                     "alice@example.com", "mixed", ["bob.crt", "alice.crt"]))
    data = out.wait(1)[0]["data"]
    assert b"secret body 7f3a" in data, data[:400]
    assert ("X-Postern-Encrypted", "decrypted") in headers(data)


def test_key_imported_later_is_used(gw, tmp_path):
    """The worker caches the certificates of the keys keyd holds; a key
    imported (and keyd reloaded) after a message passed undecrypted opens
    the next message at once."""
    g, out = gw
    pki = pki_dir()
    msg = enc_message(tmp_path, "carol@example.com", "bob@example.net",
                      "later", ["bob.crt"])
    g.cli("property", "user", "set", "--email", "bob@example.net", "--name",
          "locality", "--value", "internal")
    send(g, "carol@example.com", ["bob@example.net"], msg)
    assert dict(headers(out.wait(1)[0]["data"]))[
        "X-Postern-Encrypted"].startswith("not-for-us")
    g.cli("cert", "import", "--file", f"{pki}/bob.p12", "--password",
          "secret")
    os.kill(g.daemon.proc.pid, signal.SIGHUP)
    g.daemon.wait_for(r"keys reloaded")
    send(g, "carol@example.com", ["bob@example.net"], msg)
    data = out.wait(2)[1]["data"]
    assert ("X-Postern-Encrypted", "decrypted") in headers(data), data[:600]


def test_forged_headers_inside_encrypted_stripped(gw, tmp_path):
    g, out = gw
    ent = (b"X-Postern-Signature: valid; signer=ceo@example.com; reason=ok"
           b"\r\nX-Postern-Encrypted: none\r\n" + inner())
    send(g, "bob@example.net", ["alice@example.com"],
         enc_message(tmp_path, "bob@example.net", "alice@example.com",
                     "inside", ["alice.crt"], entity=ent))
    data = out.wait(1)[0]["data"]
    assert headers(data) == [("X-Postern-Encrypted", "decrypted")], data[:600]
    assert b"ceo@example.com" not in data


@pytest.mark.parametrize("kind", ["malformed", "oversized"])
def test_bad_header_inside_encrypted(gw, tmp_path, kind):
    """A decrypted message whose header is malformed or larger than
    smtp.max_header_size is bad input, not a local failure: it passes
    unchanged (still encrypted) with the reason, or gets 554 with
    inbound-reject-malformed; never 4xx, never the partial plaintext."""
    g, out = gw
    if kind == "malformed":
        # A continuation line with no field before it.
        ent = b" folded: nothing\r\nContent-Type: text/plain\r\n\r\n"
    else:
        ent = (b"Content-Type: text/plain\r\nX-Filler: " +
               b"a" * 70 + (b"\r\n " + b"a" * 70) * 16000 + b"\r\n\r\n")
    ent += b"inner body 3b9d\r\n"
    msg = enc_message(tmp_path, "bob@example.net", "alice@example.com",
                      kind, ["alice.crt"], entity=ent)
    send(g, "bob@example.net", ["alice@example.com"], msg)
    data = out.wait(1)[0]["data"]
    assert b"inner body 3b9d" not in data
    assert msg.split(b"\r\n\r\n", 1)[1] in data
    enc = dict(headers(data))["X-Postern-Encrypted"]
    assert enc.startswith("not-for-us") and "malformed or oversized" in enc
    g.cli("property", "global", "set", "--name", "inbound-reject-malformed",
          "--value", "true")
    with pytest.raises(smtplib.SMTPDataError) as e:
        send(g, "bob@example.net", ["alice@example.com"], msg)
    assert e.value.smtp_code == 554, e.value


def signed_message(tmp, frm, subject, signer, opaque=False, **kw):
    s = sign(tmp, inner(b"signed text 51c2\r\n"), signer, opaque=opaque,
             **kw)
    return outer(frm, "alice@example.com", subject,
                 s.split(b"MIME-Version: 1.0\r\n", 1)[1])


def sig_header(data):
    return dict(headers(data)).get("X-Postern-Signature", "")


def test_signed_valid_multipart_and_opaque(gw, tmp_path):
    g, out = gw
    send(g, "bob@example.net", ["alice@example.com"],
         signed_message(tmp_path, "bob@example.net", "ms", "bob"))
    send(g, "bob@example.net", ["alice@example.com"],
         signed_message(tmp_path, "bob@example.net", "op", "bob",
                        opaque=True))
    msgs = out.wait(2)
    for m in msgs:
        h = sig_header(m["data"])
        assert h.startswith("valid; signer=bob@example.net"), h
        assert ("X-Postern-Encrypted", "none") in headers(m["data"])


def test_signed_and_encrypted(gw, tmp_path):
    g, out = gw
    s = sign(tmp_path, inner(b"signed then sealed\r\n"), "bob")
    ent = s.split(b"MIME-Version: 1.0\r\n", 1)[1]
    send(g, "bob@example.net", ["alice@example.com"],
         enc_message(tmp_path, "bob@example.net", "alice@example.com", "se",
                     ["alice.crt"], entity=ent))
    data = out.wait(1)[0]["data"]
    assert ("X-Postern-Encrypted", "decrypted") in headers(data)
    assert sig_header(data).startswith("valid; signer=bob@example.net")
    assert b"signed then sealed" in data


def test_bad_signatures(gw, tmp_path):
    g, out = gw
    pki = pki_dir()
    good = signed_message(tmp_path, "bob@example.net", "tamper", "bob")
    tampered = good.replace(b"signed text 51c2", b"signed text 51c3")
    send(g, "bob@example.net", ["alice@example.com"], tampered)
    send(g, "expired@example.net", ["alice@example.com"],
         signed_message(tmp_path, "expired@example.net", "exp", "expired"))
    send(g, "untrusted@example.net", ["alice@example.com"],
         signed_message(tmp_path, "untrusted@example.net", "untr",
                        "untrusted"))
    send(g, "mallory@example.net", ["alice@example.com"],
         signed_message(tmp_path, "mallory@example.net", "from", "bob"))
    msgs = {re.search(rb"Subject: (\w+)", m["data"]).group(1).decode():
            sig_header(m["data"]) for m in out.wait(4)}
    assert msgs["tamper"].startswith("invalid;"), msgs
    assert msgs["exp"].startswith("invalid;") and "expired" in msgs["exp"]
    assert msgs["untr"].startswith("untrusted;"), msgs
    assert msgs["from"].startswith("invalid;") and "From" in msgs["from"]


def test_forged_headers_stripped_and_tags(gw, tmp_path):
    g, out = gw
    g.cli("property", "global", "set", "--name",
          "subject-tag-signed-valid-enabled", "--value", "true")
    g.cli("property", "global", "set", "--name",
          "subject-tag-decrypted-enabled", "--value", "true")
    forged = (b"X-Postern-Signature: valid; signer=ceo@example.com; "
              b"reason=ok\r\nx-postern-encrypted: decrypted\r\n")
    send(g, "carol@example.com", ["alice@example.com"],
         outer("carol@example.com", "alice@example.com", "plain",
               b"Content-Type: text/plain\r\n\r\nhi\r\n", extra=forged))
    send(g, "bob@example.net", ["alice@example.com"],
         enc_message(tmp_path, "bob@example.net", "alice@example.com",
                     "sealed", ["alice.crt"]))
    a, b = out.wait(2)
    assert headers(a["data"]) == [("X-Postern-Encrypted", "none")]
    assert b"ceo@example.com" not in a["data"]
    assert b"Subject: [decrypted] sealed" in b["data"]


def test_remove_signature(gw, tmp_path):
    g, out = gw
    g.cli("property", "global", "set", "--name", "remove-signature",
          "--value", "true")
    send(g, "bob@example.net", ["alice@example.com"],
         signed_message(tmp_path, "bob@example.net", "rm", "bob"))
    data = out.wait(1)[0]["data"]
    assert sig_header(data).startswith("valid;")
    assert b"pkcs7-signature" not in data and b"multipart/signed" not in data
    assert b"signed text 51c2" in data


def test_malformed_passes_or_refused(gw, tmp_path):
    g, out = gw
    junk = (b"Content-Type: application/pkcs7-mime; smime-type="
            b"enveloped-data\r\nContent-Transfer-Encoding: base64\r\n\r\n"
            b"MIIBBgYJKoZIhvcNAQcDoIH4MIH1AgEAMYHA\r\n")
    msg = outer("bob@example.net", "alice@example.com", "junk", junk)
    send(g, "bob@example.net", ["alice@example.com"], msg)
    data = out.wait(1)[0]["data"]
    assert b"MIIBBgYJKoZIhvcNAQcDoIH4MIH1AgEAMYHA" in data
    assert "truncated" in dict(headers(data))["X-Postern-Encrypted"]
    g.cli("property", "global", "set", "--name", "inbound-reject-malformed",
          "--value", "true")
    with pytest.raises(smtplib.SMTPDataError) as e:
        send(g, "bob@example.net", ["alice@example.com"], msg)
    assert e.value.smtp_code == 554


def test_harvest_then_outgoing_encrypted(gw, tmp_path):
    g, out = gw
    pki = pki_dir()
    r = g.cli("policy", "explain", "--from", "alice@example.com", "--to",
              "bob@example.net")
    assert "decision: encrypt" not in r.stdout
    send(g, "bob@example.net", ["alice@example.com"],
         signed_message(tmp_path, "bob@example.net", "hv", "bob"))
    out.wait(1)
    r = g.cli("policy", "explain", "--from", "alice@example.com", "--to",
              "bob@example.net")
    assert "decision: encrypt" in r.stdout, r.stdout
    assert "harvested from a valid signature of <bob@example.net>" in \
        r.stdout, r.stdout
    send(g, "alice@example.com", ["bob@example.net"],
         outer("alice@example.com", "bob@example.net", "reply",
               b"Content-Type: text/plain\r\n\r\nreply 9d1e\r\n"))
    data = out.wait(2)[1]["data"]
    assert b"application/pkcs7-mime" in data
    p = tmp_path / "reply.eml"
    p.write_bytes(data)
    r = subprocess.run(["openssl", "cms", "-decrypt", "-in", str(p),
                        "-recip", f"{pki}/bob.crt", "-inkey",
                        f"{pki}/bob.key"], capture_output=True)
    assert r.returncode == 0, r.stderr
    assert b"reply 9d1e" in r.stdout


def test_no_harvest_of_invalid(gw, tmp_path):
    g, out = gw
    send(g, "expired@example.net", ["alice@example.com"],
         signed_message(tmp_path, "expired@example.net", "exp", "expired"))
    out.wait(1)
    r = g.cli("cert", "list")
    assert "expired@example.net" not in r.stdout


def make_revoked(tmp):
    """A partner certificate from the test intermediate CA, with a CRL
    distribution point, and a CRL (signed by that CA) that revokes it."""
    pki = pki_dir()
    d = tmp / "ca"
    d.mkdir()
    (d / "index.txt").write_text("")
    (d / "serial").write_text("5000\n")
    (d / "crlnumber").write_text("01\n")
    (d / "ca.cnf").write_text(f"""[ca]
default_ca = int
[int]
dir = {d}
database = {d}/index.txt
serial = {d}/serial
crlnumber = {d}/crlnumber
new_certs_dir = {d}
certificate = {pki}/intermediate-ca.crt
private_key = {pki}/intermediate-ca.key
default_md = sha256
default_days = 365
default_crl_days = 7
policy = any
unique_subject = no
[any]
commonName = supplied
[ext]
basicConstraints = CA:false
keyUsage = critical, digitalSignature, keyEncipherment, keyAgreement
extendedKeyUsage = emailProtection
subjectAltName = email:revoked@example.net
crlDistributionPoints = URI:http://crl.example.net/intermediate.crl
""")

    def run(*a):
        r = subprocess.run(a, capture_output=True, cwd=d)
        assert r.returncode == 0, r.stderr

    run("openssl", "genpkey", "-algorithm", "EC", "-pkeyopt",
        "ec_paramgen_curve:P-256", "-out", "revoked.key")
    run("openssl", "req", "-new", "-key", "revoked.key", "-subj",
        "/CN=Revoked", "-out", "revoked.csr")
    run("openssl", "ca", "-batch", "-config", "ca.cnf", "-in", "revoked.csr",
        "-out", "revoked.crt", "-extensions", "ext", "-notext")
    run("openssl", "ca", "-config", "ca.cnf", "-revoke", "revoked.crt")
    run("openssl", "ca", "-config", "ca.cnf", "-gencrl", "-out", "int.crl")
    return d


def test_revoked_after_crl_import(gw, tmp_path):
    g, out = gw
    d = make_revoked(tmp_path)
    g.cli("cert", "import", "--file", str(d / "revoked.crt"))
    r = g.cli("crl", "distribution-points")
    assert "http://crl.example.net/intermediate.crl" in r.stdout.split("\n")

    def explain():
        return g.cli("policy", "explain", "--from", "alice@example.com",
                     "--to", "revoked@example.net").stdout

    def signed():
        n = len(out.messages)
        send(g, "revoked@example.net", ["alice@example.com"],
             signed_message(tmp_path, "revoked@example.net", "rev", None,
                            certfile=str(d / "revoked.crt"),
                            keyfile=str(d / "revoked.key")))
        return sig_header(out.wait(n + 1)[n]["data"])

    assert "decision: encrypt" in explain()
    assert signed().startswith("valid;")
    r = g.cli("crl", "import", "--file", str(d / "int.crl"))
    assert "1 revoked certificate" in r.stdout
    assert "revoked=1" in g.cli("crl", "list").stdout
    assert "decision: encrypt" not in explain()
    h = signed()
    assert h.startswith("invalid;") and "revoked" in h, h
    # A CRL nobody we know signed is refused.
    r = g.cli("crl", "import", "--file", f"{pki_dir()}/root-ca.crt",
              check=False)
    assert r.returncode != 0


def test_thousand_recipients_bounded(gw, tmp_path):
    """A message encrypted to more RecipientInfos than allowed passes
    unchanged with the reason; the gateway keeps running."""
    g, out = gw
    pki = pki_dir()
    certs = ["bob.crt"] * 70 + ["alice.crt"]
    send(g, "bob@example.net", ["alice@example.com"],
         enc_message(tmp_path, "bob@example.net", "alice@example.com",
                     "many", certs))
    data = out.wait(1)[0]["data"]
    assert b"application/pkcs7-mime" in data
    assert "more CMS recipients than allowed" in \
        dict(headers(data))["X-Postern-Encrypted"]


def test_large_message_decrypted_in_flat_memory(tmp_path):
    """A 20 MiB encrypted message is decrypted from the spool: the SMTP
    worker's peak memory grows far less than the message, keyd's not at
    all beyond a small bound (it unwraps a key), and the body is whole."""
    from conftest import vmhwm_kib
    from test_smime import keyd_pid, pids_by_proc
    portal, out = Sink(), Sink()
    pki = pki_dir()
    g = Gateway(tmp_path, portal.port, out.port, start=False,
                props=[("user", "set", "--email", "alice@example.com",
                        "--name", "locality", "--value", "internal")],
                certs=[("--file", f"{pki}/alice.p12", "--password",
                        "secret")])
    g.start(env={"ASAN_OPTIONS":
                 "detect_leaks=0:abort_on_error=0:quarantine_size_mb=4"})
    try:
        send(g, "bob@example.net", ["alice@example.com"],
             enc_message(tmp_path, "bob@example.net", "alice@example.com",
                         "warm", ["alice.crt"]))
        out.wait(1)
        worker = pids_by_proc(g)["smtp"]
        base, kbase = vmhwm_kib(worker), vmhwm_kib(keyd_pid(g))
        line = b"".join(bytes([0x41 + i % 26]) for i in range(76)) + b"\r\n"
        ent = (b"Content-Type: text/plain\r\n\r\nbig 0c7e\r\n" +
               line * (20 * 1024 * 1024 // 78) + b"end 0c7e\r\n")
        send(g, "bob@example.net", ["alice@example.com"],
             enc_message(tmp_path, "bob@example.net", "alice@example.com",
                         "big", ["alice.crt"], entity=ent))
        data = out.wait(2)[1]["data"]
        grown = vmhwm_kib(worker) - base
        print(f"worker VmHWM grew by {grown} KiB")
        assert grown < 8 * 1024, grown
        assert vmhwm_kib(keyd_pid(g)) - kbase < 1024
        assert ("X-Postern-Encrypted", "decrypted") in headers(data)
        assert data.endswith(b"end 0c7e\r\n") and b"big 0c7e" in data
        assert len(data) > 20 * 1024 * 1024
    finally:
        g.stop()
        portal.stop()
        out.stop()
