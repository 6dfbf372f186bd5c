"""OpenPGP on the gateway: keys imported with postern-cli key, PGP/MIME
encryption to the recipient's usable subkey, decided by pgp-enabled and
encryption-method-order; gpg in a temporary home is the peer that made the
keys and reads what the gateway sent."""

import os
import re
import smtplib

import pytest

from conftest import Sink
from gwutil import Gateway, make_message, pki_dir
from pgputil import GpgHome, pgp_mime_parts
from dbutil import db_connect

G = ("global", "set", "--name")
PGP_ON = [G + ("pgp-enabled", "--value", "true")]


@pytest.fixture
def sinks():
    portal, out = Sink(), Sink()
    yield portal, out
    portal.stop()
    out.stop()


@pytest.fixture
def gw_factory(tmp_path, sinks):
    made = []

    def make(**kw):
        g = Gateway(tmp_path / ("gw%d" % len(made)), sinks[0].port,
                    sinks[1].port, **kw)
        made.append(g)
        return g
    yield make
    for g in made:
        g.stop()


@pytest.fixture
def bob(tmp_path):
    h = GpgHome(tmp_path / "bob")
    h.make_key("bob@example.org", "Bob")
    h.export("bob@example.org", path=str(tmp_path / "bob.asc"))
    h.pub = str(tmp_path / "bob.asc")
    return h


def send(gw, frm, to, data):
    with smtplib.SMTP("127.0.0.1", gw.port, timeout=30) as s:
        return s.sendmail(frm, to, data)


def explain(gw, to):
    return gw.cli("policy", "explain", "--from", "alice@example.com",
                  "--to", to).stdout


def test_key_import_list_remove(gw_factory, bob, tmp_path):
    gw = gw_factory(start=False)
    r = gw.cli("key", "import", "--file", bob.pub)
    assert "imported 1 key" in r.stdout
    fpr = bob.fpr("bob@example.org")
    listing = gw.cli("key", "list").stdout
    assert fpr in listing and "bob@example.org" in listing
    # A public key has no secret part: nothing for the key holder.
    assert not os.path.exists(os.path.join(gw.dir, "keys", "openpgp",
                                           fpr + ".pgp"))
    assert "removed 1 key" in gw.cli("key", "remove", "--email",
                                     "BOB@example.org").stdout
    assert fpr not in gw.cli("key", "list").stdout
    r = gw.cli("key", "remove", "--fingerprint", fpr, check=False)
    assert r.returncode == 1 and "no key matches" in r.stderr


def test_secret_key_goes_only_to_the_key_holder_store(gw_factory, tmp_path):
    alice = GpgHome(tmp_path / "alice")
    alice.make_key("alice@example.com", "Alice")
    sec = str(tmp_path / "alice.sec")
    secret = alice.export("alice@example.com", secret=True, path=sec)
    gw = gw_factory(start=False)
    gw.cli("key", "import", "--file", sec)
    fpr = alice.fpr("alice@example.com")
    path = os.path.join(gw.dir, "keys", "openpgp", fpr + ".pgp")
    assert os.stat(path).st_mode & 0o777 == 0o600
    listing = gw.cli("key", "list").stdout
    assert re.search(fpr + r"\s+\S+\s+yes", listing)
    # The database holds the public key only: no secret key packet
    # (tag 5, old or new format) in what is stored.
    db = db_connect(gw.db)
    (blob,) = db.execute("SELECT data FROM pgp_keys").fetchone()
    db.close()
    assert blob[0] in (0x98, 0x99, 0xc6)    # public key packet
    assert b"\x95" not in blob[:1] and blob[0] != 0xc5
    # The stored file is the secret key; gpg reads it back.
    other = GpgHome(tmp_path / "other")
    with open(path, "rb") as f:
        other.import_keys(f.read())
    out = other.run("--list-secret-keys", "--with-colons").stdout.decode()
    assert fpr in out
    assert len(secret) > 0


def test_round_trip_out_pgp_mime_decrypts_with_gpg(gw_factory, sinks, bob):
    portal, out = sinks
    gw = gw_factory(props=PGP_ON)
    gw.cli("key", "import", "--file", bob.pub)
    send(gw, "alice@example.com", ["bob@example.org"],
         make_message(to="bob@example.org", subject="quarterly",
                      body="The numbers are in.\n"))
    msg = out.wait(1)[0]
    head = msg["data"].split(b"\r\n\r\n", 1)[0]
    assert re.search(rb"(?i)content-type: multipart/encrypted;\s+"
                     rb"protocol=\"application/pgp-encrypted\"", head)
    assert b"Subject: quarterly" in head
    assert b"The numbers are in" not in msg["data"]
    version, armour = pgp_mime_parts(msg["data"])
    assert b"Version: 1" in version
    r = bob.decrypt(armour)
    inner = r.stdout.replace(b"\r\n", b"\n")
    assert b"Content-Type: text/plain" in inner
    assert b"The numbers are in." in inner
    assert re.search(r"to=<bob@example.org> decision=pgp ",
                     gw.daemon.log())


def test_pgp_disabled_relays_in_clear(gw_factory, sinks, bob):
    out = sinks[1]
    gw = gw_factory()
    gw.cli("key", "import", "--file", bob.pub)
    send(gw, "alice@example.com", ["bob@example.org"],
         make_message(to="bob@example.org", body="plain words\n"))
    assert b"plain words" in out.wait(1)[0]["data"]


@pytest.mark.parametrize("kind", ["expired", "revoked", "sign-only"])
def test_unusable_keys_are_skipped(gw_factory, tmp_path, kind):
    h = GpgHome(tmp_path / "carol")
    if kind == "expired":
        h.make_key("carol@example.org", expire="1d",
                   faked="20200101T000000")
    else:
        fpr = h.make_key("carol@example.org", enc=kind != "sign-only")
        if kind == "revoked":
            h.revoke(fpr)
    path = str(tmp_path / "carol.asc")
    h.export("carol@example.org", path=path)
    gw = gw_factory(props=PGP_ON, start=False)
    gw.cli("key", "import", "--file", path)
    text = explain(gw, "carol@example.org")
    assert "decision: relay" in text
    assert "no usable OpenPGP key for carol@example.org" in text


def test_method_order_prefers_smime_then_pgp(gw_factory, tmp_path):
    """bob@example.net has an S/MIME certificate and an OpenPGP key."""
    pki = pki_dir()
    h = GpgHome(tmp_path / "bobnet")
    h.make_key("bob@example.net", "Bob")
    path = str(tmp_path / "bobnet.asc")
    h.export("bob@example.net", path=path)
    gw = gw_factory(props=PGP_ON, certs=[("--file", f"{pki}/bob.crt")],
                    start=False)
    gw.cli("key", "import", "--file", path)
    text = explain(gw, "bob@example.net")
    assert "decision: encrypt" in text
    assert "methods: smime,pgp,pdf,portal (default)" in text
    gw.cli("property", "user", "set", "--email", "bob@example.net",
           "--name", "encryption-method-order", "--value", "pgp,smime")
    text = explain(gw, "bob@example.net")
    assert "decision: pgp" in text
    assert "methods: pgp,smime (user)" in text
    assert "encryption-method-order=pgp,smime (user bob@example.net)" in text


def test_mandatory_recipient_with_only_a_key_is_not_refused(gw_factory,
                                                            sinks, bob):
    out = sinks[1]
    gw = gw_factory(props=PGP_ON + [
        ("domain", "set", "--domain", "example.org", "--name",
         "encrypt-mode", "--value", "mandatory")])
    gw.cli("key", "import", "--file", bob.pub)
    send(gw, "alice@example.com", ["bob@example.org"],
         make_message(to="bob@example.org", body="secret words\n"))
    data = out.wait(1)[0]["data"]
    assert b"multipart/encrypted" in data and b"secret words" not in data


def signed_parts(entity):
    """(signed bytes, armoured signature) of a multipart/signed entity."""
    m = re.search(rb'boundary="([^"]+)"', entity)
    b = b"--" + m.group(1)
    start = entity.index(b + b"\r\n") + len(b) + 2
    end = entity.index(b"\r\n" + b, start)
    sig = entity[end:].split(b"\r\n\r\n", 1)[1]
    return entity[start:end], sig


@pytest.mark.parametrize("algo", ["ed25519", "rsa2048", "nistp256"])
def test_signed_and_encrypted_signature_made_by_keyd(gw_factory, sinks, bob,
                                                      tmp_path, algo):
    """alice's secret key goes to keyd; the worker hashes, keyd signs the
    digest, gpg verifies the PGP/MIME signature inside the encryption."""
    out = sinks[1]
    alice = GpgHome(tmp_path / "alice")
    alice.make_key("alice@example.com", "Alice", algo=algo)
    sec = str(tmp_path / "alice.sec")
    alice.export("alice@example.com", secret=True, path=sec)
    gw = gw_factory(props=PGP_ON + [
        ("user", "set", "--email", "alice@example.com", "--name",
         "sign-enabled", "--value", "true")], start=False)
    gw.cli("key", "import", "--file", sec)
    gw.cli("key", "import", "--file", bob.pub)
    gw.start()
    send(gw, "alice@example.com", ["bob@example.org"],
         make_message(to="bob@example.org", body="Signed words.\n"))
    msg = out.wait(1)[0]
    _, armour = pgp_mime_parts(msg["data"])
    inner = bob.decrypt(armour).stdout
    assert re.search(rb"(?i)content-type: multipart/signed; "
                     rb"micalg=pgp-sha256", inner)
    data, sig = signed_parts(inner)
    assert b"Signed words." in data
    bob.import_keys(alice.export("alice@example.com"))
    r = bob.verify_detached(sig, data)
    assert r.returncode == 0, r.stderr
    assert b"Good signature" in r.stderr
    # A changed byte breaks it: gpg checked this signature.
    r = bob.verify_detached(sig, data.replace(b"Signed", b"signed"))
    assert r.returncode != 0
    assert re.search(r"signed \(OpenPGP\) as alice@example.com",
                     gw.daemon.log())
    assert "decision=pgp " in gw.daemon.log()


def test_no_secret_key_encrypts_unsigned(gw_factory, sinks, bob):
    out = sinks[1]
    gw = gw_factory(props=PGP_ON + [
        ("user", "set", "--email", "alice@example.com", "--name",
         "sign-enabled", "--value", "true")])
    gw.cli("key", "import", "--file", bob.pub)
    send(gw, "alice@example.com", ["bob@example.org"],
         make_message(to="bob@example.org", body="unsigned\n"))
    _, armour = pgp_mime_parts(out.wait(1)[0]["data"])
    inner = bob.decrypt(armour).stdout
    assert b"multipart/signed" not in inner and b"unsigned" in inner
    assert "no OpenPGP signing key for <alice@example.com>" in \
        gw.daemon.log()


def test_huge_key_file_refused(gw_factory, tmp_path):
    big = tmp_path / "big.asc"
    big.write_bytes(b"\x99" + os.urandom(2 << 20))
    gw = gw_factory(start=False)
    r = gw.cli("key", "import", "--file", str(big), check=False)
    assert r.returncode == 1 and "larger than 1048576 bytes" in r.stderr
    junk = tmp_path / "junk.asc"
    junk.write_bytes(b"-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nAAAA\n"
                     b"-----END PGP PUBLIC KEY BLOCK-----\n")
    r = gw.cli("key", "import", "--file", str(junk), check=False)
    assert r.returncode == 1 and "no OpenPGP" in r.stderr


def test_protected_secret_key_needs_its_password(gw_factory, tmp_path):
    h = GpgHome(tmp_path / "dan")
    h.run("--passphrase", "s3cret", "--quick-gen-key",
          "Dan <dan@example.com>", "ed25519", "sign,cert", "never")
    sec = str(tmp_path / "dan.sec")
    with open(sec, "wb") as f:
        f.write(h.run("--passphrase", "s3cret", "--armor",
                      "--export-secret-keys", "dan@example.com").stdout)
    gw = gw_factory(start=False)
    r = gw.cli("key", "import", "--file", sec, check=False)
    assert r.returncode == 1 and "give its password" in r.stderr
    r = gw.cli("key", "import", "--file", sec, "--password", "wrong",
               check=False)
    assert r.returncode == 1
    gw.cli("key", "import", "--file", sec, "--password", "s3cret")
    fpr = h.fpr("dan@example.com")
    path = os.path.join(gw.dir, "keys", "openpgp", fpr + ".pgp")
    # Stored for keyd without protection: gpg lists it without a
    # passphrase.
    other = GpgHome(tmp_path / "other")
    with open(path, "rb") as f:
        other.import_keys(f.read())
    out = other.run("--list-packets", path).stdout.decode()
    assert "protected" not in out


def test_method_order_checked_when_set(gw_factory):
    gw = gw_factory(start=False)
    for bad, why in (("smime,gpg", '"gpg" is not a choice'),
                     ("pgp,smime,pgp", '"pgp" is repeated'),
                     (" , ", "empty")):
        r = gw.cli("property", "global", "set", "--name",
                   "encryption-method-order", "--value", bad, check=False)
        assert r.returncode == 1 and why in r.stderr, r.stderr
    gw.cli("property", "global", "set", "--name", "encryption-method-order",
           "--value", " portal , smime")
    assert gw.cli("property", "global", "get", "--name",
                  "encryption-method-order").stdout.strip() == "portal,smime"
