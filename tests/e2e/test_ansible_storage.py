"""The portal role with encrypted storage, on this host under a scratch
postern_root (no packages, services, Postfix or firewall): it writes the
storage_encryption group, a key pair whose key opens with the password
(external-portal --check opens it), a certificate file with the escrow
certificate, the root-only EnvironmentFile for unlock "environment" and
none for "ask"; the DMZ key check passes with the storage key and still
fails on any other private key."""

import json
import os
import shutil
import stat
import subprocess
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
BUILD = os.environ.get("POSTERN_BUILD", os.path.join(ROOT, "build"))
PW = "vault storage pass 9"


def _run_role(work, extra):
    host = {"ansible_connection": "local",
            "ansible_python_interpreter": "/usr/bin/python3",
            "postern_root": os.path.join(work, "root"),
            "postern_package_source": "none",
            "postern_sbin_dir": BUILD,
            "postern_cli": os.path.join(BUILD, "postern-cli"),
            "postern_manage_services": False,
            "postern_user": "", "postern_keyd_user": "",
            "postern_portal_gateway_hosts": [],
            "postern_portal_pin_gateway_cert": False,
            "postern_portal_manage_postfix": False,
            "postern_portal_nftables": False,
            "postern_portal_storage_encryption": True}
    host.update(extra)
    inv = os.path.join(work, "inventory.json")
    with open(inv, "w") as f:
        json.dump({"portals": {"hosts": {"portal.test": host}}}, f)
    play = os.path.join(work, "play.yml")
    with open(play, "w") as f:
        f.write("- hosts: portals\n  gather_facts: false\n"
                "  roles: [postern_portal]\n")
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible",
                                                       "ansible.cfg"),
               ANSIBLE_ROLES_PATH=os.path.join(ROOT, "ansible", "roles"),
               ANSIBLE_NOCOLOR="1",
               ANSIBLE_LOCAL_TEMP=os.path.join(work, "ansible-tmp"))
    return subprocess.run(["ansible-playbook", "-i", inv, play],
                          capture_output=True, text=True, env=env,
                          timeout=300)


def test_role_storage_environment_then_ask():
    work = tempfile.mkdtemp(prefix="postern-ansible-storage-")
    try:
        _check_role(work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _check_role(work):
    esc_key = os.path.join(work, "escrow.key")
    esc = os.path.join(work, "escrow.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048",
                    "-noenc", "-keyout", esc_key, "-out", esc, "-subj",
                    "/CN=escrow", "-days", "30"], check=True,
                   capture_output=True)
    r = _run_role(work, {"postern_portal_storage_password": PW,
                         "postern_portal_storage_escrow_certificates":
                         [open(esc).read()]})
    assert r.returncode == 0, r.stdout + r.stderr
    assert PW not in r.stdout
    etc = os.path.join(work, "root", "etc", "postern")
    conf = open(os.path.join(etc, "external-portal.conf")).read()
    assert "storage_encryption = {" in conf
    assert 'unlock = "environment";' in conf
    envf = os.path.join(etc, "storage.env")
    st = os.stat(envf)
    assert stat.S_IMODE(st.st_mode) == 0o600
    assert open(envf).read() == f"POSTERN_STORAGE_PASSWORD='{PW}'\n"
    key = os.path.join(etc, "private", "storage.key")
    assert stat.S_IMODE(os.stat(key).st_mode) == 0o600
    assert "ENCRYPTED PRIVATE KEY" in open(key).read()
    certs = open(os.path.join(etc, "private",
                              "webmail-encryption.pem")).read()
    assert certs.count("BEGIN CERTIFICATE") == 2
    assert open(esc).read().strip() in certs

    # unlock "ask": the password is stored nowhere.
    r = _run_role(work, {"postern_portal_storage_unlock": "ask",
                         "postern_portal_storage_password": PW})
    assert r.returncode == 0, r.stdout + r.stderr
    assert not os.path.exists(envf)
    assert 'unlock = "ask";' in open(os.path.join(
        etc, "external-portal.conf")).read()

    # Any other private key on the portal still fails the run.
    with open(os.path.join(etc, "private", "stray.key"), "w") as f:
        f.write(open(esc_key).read())
    r = _run_role(work, {"postern_portal_storage_password": PW})
    assert r.returncode != 0
    assert "stray.key" in r.stdout
