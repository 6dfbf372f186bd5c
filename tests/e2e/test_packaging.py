"""`make deb`: the three packages build, lintian finds no error (make deb
fails on one), each package holds its program, unit, manual page and
configuration as a conffile, and the systemd units are hardened (one
process per trust boundary, no new privileges, a read-only system):
checked by systemd's own offline security analysis and unit verifier, not
only by reading the files."""

import glob
import os
import re
import subprocess

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
DEB = os.path.join(ROOT, "build", "deb")

PACKAGES = {
    "postern-internal-gw": ("usr/sbin/internal-gw",
                            "usr/share/man/man8/internal-gw.8.gz",
                            "lib/systemd/system/postern-internal-gw.service",
                            "etc/postern/internal-gw.conf"),
    "postern-external-portal": (
        "usr/sbin/external-portal",
        "usr/share/man/man8/external-portal.8.gz",
        "lib/systemd/system/postern-external-portal.service",
        "etc/postern/external-portal.conf"),
    "postern-common": ("usr/bin/postern-cli",
                       "usr/share/man/man8/postern-cli.8.gz"),
}

HARDENING = ("NoNewPrivileges=yes", "ProtectSystem=strict",
             "ReadWritePaths=", "PrivateTmp=yes", "CapabilityBoundingSet=",
             "RestrictAddressFamilies=", "SystemCallFilter=@system-service")


def run(argv, **kw):
    r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       **kw)
    return r.returncode, r.stdout.decode("utf-8", "replace")


@pytest.fixture(scope="module")
def debs(tmp_path_factory):
    rc, out = run(["make", "-C", ROOT, "deb"], timeout=600)
    assert rc == 0, out[-6000:]
    # lintian ran inside make deb with --fail-on error; nothing above
    # warnings may show up in its output either
    assert not re.search(r"^E: ", out, re.M), out[-6000:]
    roots = {}
    for name in PACKAGES:
        files = glob.glob(os.path.join(DEB, f"{name}_*_*.deb"))
        assert len(files) == 1, (name, files)
        root = tmp_path_factory.mktemp(name)
        assert run(["dpkg-deb", "-x", files[0], str(root)])[0] == 0
        ctl = tmp_path_factory.mktemp(name + "-ctl")
        assert run(["dpkg-deb", "-e", files[0], str(ctl)])[0] == 0
        roots[name] = (str(root), str(ctl))
    return roots


@pytest.mark.parametrize("name", sorted(PACKAGES))
def test_package_contents(debs, name):
    root, ctl = debs[name]
    for path in PACKAGES[name]:
        assert os.path.isfile(os.path.join(root, path)), path
    conf = [p for p in PACKAGES[name] if p.startswith("etc/")]
    if conf:
        with open(os.path.join(ctl, "conffiles")) as f:
            assert "/" + conf[0] in f.read().split()


@pytest.mark.parametrize("name", ["postern-internal-gw",
                                  "postern-external-portal"])
def test_unit_is_hardened(debs, name):
    root, _ = debs[name]
    unit = os.path.join(root, "lib/systemd/system", name + ".service")
    with open(unit) as f:
        text = f.read()
    for d in HARDENING:
        assert re.search(rf"^{re.escape(d)}", text, re.M), d
    # systemd's own judgement of the unit's exposure (0 best .. 10 worst)
    rc, out = run(["systemd-analyze", "security", "--offline=yes", unit],
                  timeout=60)
    m = re.search(r"Overall exposure level for \S+: (\d+\.\d)", out)
    assert m, out
    assert float(m.group(1)) <= 3.0, out
    # the unit parses; the only complaint allowed is that our programs are
    # not installed on this machine
    rc, out = run(["systemd-analyze", "verify", "--man=no", unit], timeout=60)
    other = [ln for ln in out.splitlines() if ln.strip() and not re.search(
        r"Command /usr/sbin/(internal-gw|external-portal) is not "
        r"executable", ln)]
    assert other == [], out


def test_portal_package_ships_no_private_key(debs):
    # A PEM private key: the armour line followed by base64 key material.
    # (The daemon itself names the armour line, to check a key file's kind.)
    pem_key = re.compile(rb"-----BEGIN [A-Z ]*PRIVATE KEY-----\r?\n"
                         rb"[A-Za-z0-9+/=]{40,}")
    root, _ = debs["postern-external-portal"]
    for d, _, files in os.walk(root):
        for f in files:
            with open(os.path.join(d, f), "rb") as fh:
                assert not pem_key.search(fh.read()), f
