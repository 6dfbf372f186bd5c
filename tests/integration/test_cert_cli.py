"""postern-cli cert: import PEM and PKCS#12, list, remove, with the real
binary on a temporary gateway configuration."""

import os
import stat
import subprocess

import pytest

from conftest import needs_root
from dbutil import db_url
from gwutil import cli, pki_dir


@pytest.fixture
def conf(tmp_path):
    d = tmp_path / "gw"
    d.mkdir()
    p = d / "internal-gw.conf"
    p.write_text(f'''node = "internal-gw";
database = "{db_url(d, "gw")}";
spool_dir = "{d}/spool";
keys_dir = "{d}/keys";
smtp = {{ listen = [ "127.0.0.1:1" ]; }};
relay = {{ transport_map = "{d}/transport"; }};
''')
    return str(p)


def keys_dir(conf):
    return os.path.join(os.path.dirname(conf), "keys")


def fingerprint(path):
    r = subprocess.run(["openssl", "x509", "-in", path, "-noout",
                        "-fingerprint", "-sha256"], capture_output=True,
                       text=True, check=True)
    return r.stdout.strip().split("=", 1)[1]


def rows(conf):
    """cert list as {fingerprint: (key, emails)}."""
    out = cli(conf, "cert", "list").stdout.splitlines()
    assert out[0].startswith("FINGERPRINT")
    res = {}
    for line in out[1:]:
        f = line.split()
        res[f[0]] = (f[3], f[4])
    return res


def fpr_hex(path):
    return fingerprint(path).replace(":", "").lower()


def test_import_pem_certificate_list_remove(conf):
    pki = pki_dir()
    r = cli(conf, "cert", "import", "--file", f"{pki}/bob-chain.pem")
    assert "imported 2 certificates" in r.stdout
    bob = fpr_hex(f"{pki}/bob.crt")
    assert rows(conf)[bob] == ("no", "bob@example.net")
    assert fpr_hex(f"{pki}/intermediate-ca.crt") in rows(conf)
    assert not os.path.exists(os.path.join(keys_dir(conf), bob + ".pem"))
    # Remove by the colon form openssl prints.
    r = cli(conf, "cert", "remove", "--fingerprint",
            fingerprint(f"{pki}/bob.crt"))
    assert "removed 1 certificate" in r.stdout
    assert bob not in rows(conf)
    r = cli(conf, "cert", "remove", "--fingerprint", bob, check=False)
    assert r.returncode == 1 and "no certificate matches" in r.stderr


def test_import_pem_with_key(conf, tmp_path):
    pki = pki_dir()
    both = tmp_path / "carol.pem"
    both.write_bytes(open(f"{pki}/carol.key", "rb").read() +
                     open(f"{pki}/carol-chain.pem", "rb").read())
    cli(conf, "cert", "import", "--file", str(both))
    carol = fpr_hex(f"{pki}/carol.crt")
    assert rows(conf)[carol] == ("yes", "carol@example.com")
    kf = os.path.join(keys_dir(conf), carol + ".pem")
    assert stat.S_IMODE(os.stat(kf).st_mode) == 0o600
    # The key file holds the same key and the chain for the key holder.
    r = subprocess.run(["openssl", "pkey", "-in", kf, "-pubout"],
                       capture_output=True, check=True)
    r2 = subprocess.run(["openssl", "pkey", "-in", f"{pki}/carol.key",
                         "-pubout"], capture_output=True, check=True)
    assert r.stdout == r2.stdout
    assert open(kf).read().count("BEGIN CERTIFICATE") == 2


def test_import_p12_password(conf, tmp_path):
    pki = pki_dir()
    r = cli(conf, "cert", "import", "--file", f"{pki}/alice.p12",
            "--password", "wrong", check=False)
    assert r.returncode == 1
    assert "password" in r.stderr
    assert rows(conf) == {}
    kd = keys_dir(conf)
    assert not os.path.isdir(kd) or os.listdir(kd) == []

    pw = tmp_path / "pw"
    pw.write_text("secret\n")
    cli(conf, "cert", "import", "--file", f"{pki}/alice.p12",
        "--password-file", str(pw))
    alice = fpr_hex(f"{pki}/alice.crt")
    assert rows(conf)[alice] == ("yes", "alice@example.com")

    cli(conf, "cert", "import", "--file", f"{pki}/bob.p12", "--password",
        "secret")
    assert rows(conf)[fpr_hex(f"{pki}/bob.crt")][0] == "yes"


def test_remove_by_email(conf):
    pki = pki_dir()
    cli(conf, "cert", "import", "--file", f"{pki}/alice.p12", "--password",
        "secret")
    alice = fpr_hex(f"{pki}/alice.crt")
    kf = os.path.join(keys_dir(conf), alice + ".pem")
    assert os.path.exists(kf)
    r = cli(conf, "cert", "remove", "--email", "Alice@Example.com")
    assert "removed 1 certificate" in r.stdout
    assert alice not in rows(conf)
    assert not os.path.exists(kf)


@pytest.mark.parametrize("args", [
    ["import"],
    ["import", "--file", "x", "--password", "a", "--password-file", "b"],
    ["remove"],
    ["remove", "--fingerprint", "ab", "--email", "a@b"],
    ["list", "--file", "x"],
    ["frobnicate"],
])
def test_usage_errors(conf, args):
    r = cli(conf, "cert", *args, check=False)
    assert r.returncode == 2
    assert "usage: postern-cli cert" in r.stderr


def test_not_a_certificate(conf, tmp_path):
    junk = tmp_path / "junk.txt"
    junk.write_text("hello\n")
    r = cli(conf, "cert", "import", "--file", str(junk), check=False)
    assert r.returncode == 1 and "no certificate found" in r.stderr


@needs_root("chown of the keys")
def test_imported_key_belongs_to_keys_dir_owner(conf):
    """keyd drops to keyd_user and must still re-read keys on SIGHUP."""
    pki = pki_dir()
    kd = keys_dir(conf)
    os.makedirs(kd, mode=0o700)
    os.chown(kd, 65534, 65534)
    cli(conf, "cert", "import", "--file", f"{pki}/alice.p12", "--password",
        "secret")
    files = [os.path.join(kd, f) for f in os.listdir(kd)]
    assert len(files) == 1
    st = os.stat(files[0])
    assert (st.st_uid, st.st_gid) == (65534, 65534)
    assert stat.S_IMODE(st.st_mode) == 0o600
