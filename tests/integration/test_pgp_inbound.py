"""Inbound OpenPGP for internal recipients: gpg (in a temporary home) is
the outside sender; the gateway holds the internal recipient's secret key
in keyd, decrypts PGP/MIME and inline PGP, verifies signatures and writes
X-Postern-Encrypted / X-Postern-Signature; keys come in through Autocrypt
and signed key attachments."""

import base64
import email
import os
import re
import smtplib
from email import policy

import pytest

from conftest import Sink
from gwutil import Gateway, make_message, pki_dir
from pgputil import (GpgHome, pgp_mime_encrypted, pgp_mime_signed,
                     plain_message, pgp_mime_parts)

INTERNAL = ("domain", "set", "--domain", "example.com", "--name",
            "locality", "--value", "internal")
CAROL = "carol@example.com"
ALICE = "alice@partner.example"


@pytest.fixture
def sinks():
    portal, out = Sink(), Sink()
    yield portal, out
    portal.stop()
    out.stop()


@pytest.fixture
def world(tmp_path, sinks):
    """carol (internal; secret key in the gateway), alice (outside, gpg)
    who has carol's public key; a gateway not yet started."""
    carol = GpgHome(tmp_path / "carol")
    carol.make_key(CAROL, "Carol")
    alice = GpgHome(tmp_path / "alice")
    alice.make_key(ALICE, "Alice")
    alice.import_keys(carol.export(CAROL))
    carol_sec = str(tmp_path / "carol.sec")
    carol.export(CAROL, secret=True, path=carol_sec)
    gw = Gateway(tmp_path / "gw", sinks[0].port, sinks[1].port,
                 props=[INTERNAL], start=False)
    gw.cli("key", "import", "--file", carol_sec)
    w = type("World", (), {})()
    w.carol, w.alice, w.gw, w.tmp = carol, alice, gw, tmp_path
    w.out = sinks[1]
    yield w
    gw.stop()


def send(gw, frm, to, data):
    with smtplib.SMTP("127.0.0.1", gw.port, timeout=30) as s:
        return s.sendmail(frm, to, data)


def trust_alice(w):
    path = str(w.tmp / "alice.asc")
    w.alice.export(ALICE, path=path)
    w.gw.cli("key", "import", "--file", path)


def field(data, name):
    head = data.split(b"\r\n\r\n", 1)[0].decode()
    return [line.split(":", 1)[1].strip()
            for line in head.split("\r\n")
            if line.lower().startswith(name.lower() + ":")]


ENTITY = (b"Content-Type: text/plain; charset=utf-8\r\n\r\n"
          b"Meet at noon.\r\n")


def test_round_trip_in_pgp_mime_decrypted(world):
    w = world
    w.gw.start()
    armour = w.alice.encrypt(ENTITY, CAROL)
    send(w.gw, ALICE, [CAROL], pgp_mime_encrypted(ALICE, CAROL, armour))
    data = w.out.wait(1)[0]["data"]
    assert field(data, "X-Postern-Encrypted") == ["decrypted"]
    assert field(data, "X-Postern-Signature") == []
    assert b"BEGIN PGP MESSAGE" not in data
    msg = email.message_from_bytes(data, policy=policy.default)
    assert msg.get_content_type() == "text/plain"
    assert msg.get_content().replace("\r\n", "\n") == "Meet at noon.\n"
    assert msg["Subject"] == "secret"
    assert re.search(r"OpenPGP session key decrypted with key",
                     w.gw.daemon.log())


def test_signed_and_encrypted_valid_and_forged_fields_removed(world):
    w = world
    trust_alice(w)
    w.gw.start()
    armour = w.alice.encrypt(ENTITY, CAROL, sign_as=ALICE)
    send(w.gw, ALICE, [CAROL], pgp_mime_encrypted(
        ALICE, CAROL, armour, extra=["X-Postern-Signature: valid; "
                                     "signer=<boss@example.com>",
                                     "x-postern-encrypted: decrypted"]))
    data = w.out.wait(1)[0]["data"]
    assert field(data, "X-Postern-Encrypted") == ["decrypted"]
    assert field(data, "X-Postern-Signature") == [
        f"valid; signer=<{ALICE}>"]
    assert b"boss@example.com" not in data


def test_not_for_us_passes_unchanged(world, tmp_path):
    w = world
    dave = GpgHome(tmp_path / "dave")
    dave.make_key("dave@example.com")
    w.alice.import_keys(dave.export("dave@example.com"))
    w.gw.start()
    armour = w.alice.encrypt(ENTITY, "dave@example.com")
    send(w.gw, ALICE, ["dave@example.com"],
         pgp_mime_encrypted(ALICE, "dave@example.com", armour))
    data = w.out.wait(1)[0]["data"]
    assert field(data, "X-Postern-Encrypted") == ["not-for-us"]
    assert b"BEGIN PGP MESSAGE" in data


def test_corrupt_ciphertext_never_delivers_plaintext(world):
    w = world
    w.gw.start()
    armour = w.alice.encrypt(b"Content-Type: text/plain\r\n\r\n" +
                             b"PLAINTEXT-MARKER " * 4000, CAROL,
                             armor=False)
    # Flip a byte deep in the encrypted data: the MDC check fails.
    bad = bytearray(armour)
    bad[len(bad) // 2] ^= 0x55
    text = b"-----BEGIN PGP MESSAGE-----\n\n" + base64.encodebytes(
        bytes(bad)) + b"-----END PGP MESSAGE-----\n"
    send(w.gw, ALICE, [CAROL], pgp_mime_encrypted(ALICE, CAROL, text))
    data = w.out.wait(1)[0]["data"]
    assert b"PLAINTEXT-MARKER" not in data
    (enc,) = field(data, "X-Postern-Encrypted")
    assert enc.startswith("not-for-us; reason=decryption failed")


@pytest.mark.parametrize("case", ["valid", "bad", "expired", "revoked",
                                  "unknown"])
def test_signed_only(world, tmp_path, case):
    w = world
    signer = w.alice
    faked = None
    if case == "expired":
        signer = GpgHome(tmp_path / "old")
        signer.make_key(ALICE, "Alice", expire="1d",
                        faked="20200101T000000")
        faked = "20200101T060000"
    fpr = signer.fpr(ALICE)
    sig = signer.detach_sign(ENTITY, ALICE, faked=faked)
    if case == "revoked":
        signer.revoke(fpr)
    if case != "unknown":
        path = str(tmp_path / "signer.asc")
        signer.export(ALICE, path=path)
        w.gw.cli("key", "import", "--file", path)
    w.gw.start()
    entity = ENTITY.replace(b"noon", b"nine") if case == "bad" else ENTITY
    send(w.gw, ALICE, [CAROL], pgp_mime_signed(ALICE, CAROL, entity, sig))
    data = w.out.wait(1)[0]["data"]
    (s,) = field(data, "X-Postern-Signature")
    assert field(data, "X-Postern-Encrypted") == ["none"]
    want = {
        "valid": f"valid; signer=<{ALICE}>",
        "bad": f"invalid; signer=<{ALICE}>; reason=bad signature",
        "expired": f"invalid; signer=<{ALICE}>; reason=signer key expired",
        "revoked": f"invalid; signer=<{ALICE}>; reason=signer key revoked",
        "unknown": "untrusted; reason=no public key for the signer",
    }[case]
    assert s == want
    # The signed part is delivered byte for byte.
    assert entity in data


def test_inline_pgp_with_a_latin1_charset(world):
    w = world
    w.gw.start()
    text = "Grüße aus Köln, 20 €uro".encode("iso-8859-15")
    armour = w.alice.encrypt(text + b"\n", CAROL)
    msg = plain_message(ALICE, CAROL, b"Before.\n" + armour + b"After.\n",
                        charset="iso-8859-15")
    send(w.gw, ALICE, [CAROL], msg)
    data = w.out.wait(1)[0]["data"]
    assert field(data, "X-Postern-Encrypted") == ["decrypted"]
    m = email.message_from_bytes(data, policy=policy.default)
    assert m.get_content_charset() == "iso-8859-15"
    raw = m.get_payload(decode=True)
    assert text in raw
    assert raw.startswith(b"Before.") and raw.rstrip().endswith(b"After.")
    assert b"BEGIN PGP" not in raw


def test_autocrypt_import_then_outbound_pgp(world, tmp_path):
    w = world
    erin = GpgHome(tmp_path / "erin")
    erin.make_key("erin@partner.example", "Erin")
    keydata = erin.run("--export", "erin@partner.example").stdout
    b64 = base64.b64encode(keydata).decode()
    folded = " ".join(b64[i:i + 70] for i in range(0, len(b64), 70))
    w.gw.cli("property", "global", "set", "--name", "pgp-enabled",
             "--value", "true")
    w.gw.start()
    msg = plain_message("Erin <erin@partner.example>", CAROL, b"hi\n",
                        extra=["Autocrypt: addr=erin@partner.example; "
                               "prefer-encrypt=mutual; keydata=" + folded])
    send(w.gw, "erin@partner.example", [CAROL], msg)
    w.out.wait(1)
    assert "erin@partner.example" in w.gw.cli("key", "list").stdout
    # The next message to erin is encrypted to that key.
    send(w.gw, CAROL, ["erin@partner.example"],
         make_message(frm=CAROL, to="erin@partner.example",
                      body="reply\n"))
    data = w.out.wait(2)[1]["data"]
    _, armour = pgp_mime_parts(data)
    assert b"reply" in erin.decrypt(armour).stdout


def test_autocrypt_for_another_address_is_ignored(world, tmp_path):
    w = world
    erin = GpgHome(tmp_path / "erin")
    erin.make_key("erin@partner.example", "Erin")
    b64 = base64.b64encode(erin.run("--export").stdout).decode()
    w.gw.start()
    msg = plain_message("mallory@partner.example", CAROL, b"hi\n",
                        extra=["Autocrypt: addr=erin@partner.example; "
                               "keydata=" + b64])
    send(w.gw, "mallory@partner.example", [CAROL], msg)
    w.out.wait(1)
    assert "erin@partner.example" not in w.gw.cli("key", "list").stdout


def test_signed_key_attachment_imported(world):
    """First contact: the signer's key is attached to the signed part; the
    signature checks with it, the key is imported, and the next message
    is valid."""
    w = world
    w.gw.start()
    key = w.alice.export(ALICE)
    entity = (b'Content-Type: multipart/mixed; boundary="m1"\r\n\r\n'
              b"--m1\r\nContent-Type: text/plain\r\n\r\nHello.\r\n"
              b"--m1\r\nContent-Type: application/pgp-keys\r\n\r\n" +
              key.replace(b"\n", b"\r\n") + b"\r\n--m1--\r\n")
    sig = w.alice.detach_sign(entity, ALICE)
    send(w.gw, ALICE, [CAROL], pgp_mime_signed(ALICE, CAROL, entity, sig))
    data = w.out.wait(1)[0]["data"]
    assert field(data, "X-Postern-Signature") == [
        f"untrusted; signer=<{ALICE}>; reason=key first seen in this "
        "message"]
    assert ALICE in w.gw.cli("key", "list").stdout
    sig = w.alice.detach_sign(ENTITY, ALICE)
    send(w.gw, ALICE, [CAROL], pgp_mime_signed(ALICE, CAROL, ENTITY, sig))
    data = w.out.wait(2)[1]["data"]
    assert field(data, "X-Postern-Signature") == [f"valid; signer=<{ALICE}>"]


def test_mixed_recipients_each_handled(world, sinks, tmp_path):
    """One message to an S/MIME, an OpenPGP, a portal and an internal
    recipient."""
    w = world
    portal, out = sinks
    pki = pki_dir()
    bob = GpgHome(tmp_path / "bob")
    bob.make_key("bob@example.org", "Bob")
    path = str(tmp_path / "bob.asc")
    bob.export("bob@example.org", path=path)
    w.gw.cli("key", "import", "--file", path)
    w.gw.cli("cert", "import", "--file", f"{pki}/bob.crt")
    for name, value in [("pgp-enabled", "true"),
                        ("remote-portal-enabled", "true"),
                        ("webmail-enabled", "true"),
                        ("webmail-only-if-mandatory", "false")]:
        w.gw.cli("property", "global", "set", "--name", name, "--value",
                 value)
    w.gw.start()
    rcpts = ["bob@example.net", "bob@example.org", "erin@example.info",
             CAROL]
    send(w.gw, "dave@example.com", rcpts,
         make_message(frm="dave@example.com", to=", ".join(rcpts),
                      body="For everyone.\n"))
    got = out.wait(3)
    by = {tuple(m["to"]): m["data"] for m in got}
    smime = by[("bob@example.net",)]
    assert b"application/pkcs7-mime" in smime
    assert b"For everyone" not in smime
    pgpd = by[("bob@example.org",)]
    _, armour = pgp_mime_parts(pgpd)
    assert b"For everyone." in bob.decrypt(armour).stdout
    internal = by[(CAROL,)]
    assert b"For everyone." in internal
    assert "decrypted" not in field(internal, "X-Postern-Encrypted")
    p = portal.wait(1)[0]
    assert p["to"] == ["erin=example.info@relay-to-webmail.private"]
    log = w.gw.daemon.log()
    for rcpt, dec in [("bob@example.net", "encrypt"),
                      ("bob@example.org", "pgp"),
                      ("erin@example.info", "portal-webmail"),
                      (CAROL, "pass")]:
        assert re.search(rf"to=<{re.escape(rcpt)}> decision={dec} ", log)


def test_compression_bomb_is_bounded(world):
    """80 MiB of zeros compress to a few hundred KiB: decompressing stops
    at the output limit and nothing of the plaintext is delivered."""
    w = world
    w.gw.start()
    # The marker has a '-', which base64 never does: it cannot turn up in
    # the armoured ciphertext by chance.
    bomb = b"Content-Type: text/plain\r\n\r\nBOMB-MARKER" + bytes(80 << 20)
    armour = w.alice.run("--armor", "--trust-model", "always",
                         "--compress-algo", "zlib", "-z", "9", "--encrypt",
                         "-r", CAROL, input=bomb).stdout
    assert len(armour) < 2 << 20
    send(w.gw, ALICE, [CAROL], pgp_mime_encrypted(ALICE, CAROL, armour))
    data = w.out.wait(1)[0]["data"]
    (enc,) = field(data, "X-Postern-Encrypted")
    assert enc.startswith("not-for-us; reason=decryption failed")
    assert b"BOMB-MARKER" not in data and len(data) < 4 << 20
