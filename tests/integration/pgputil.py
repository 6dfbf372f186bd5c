"""OpenPGP peers for the tests: keys and messages made by GnuPG (gpg) in
a temporary home of their own, never the gateway's code."""

import atexit
import os
import re
import subprocess

GPG_BASE = ["gpg", "--batch", "--no-tty", "--pinentry-mode", "loopback",
            "--passphrase", ""]


_homes = []


@atexit.register
def _stop_agents():
    """Each home's gpg-agent outlives gpg; stop them with the tests."""
    for path in _homes:
        if os.path.isdir(path):
            subprocess.run(["gpgconf", "--homedir", path, "--kill",
                            "gpg-agent"], capture_output=True)


class GpgHome:
    """One user's GnuPG home in dir."""

    def __init__(self, path):
        self.path = str(path)
        os.makedirs(self.path, mode=0o700, exist_ok=True)
        _homes.append(self.path)

    def run(self, *args, input=None, check=True, faked=None):
        argv = GPG_BASE + ["--homedir", self.path]
        if faked:
            # Frozen ("!"): a ticking fake clock restarts at the same
            # instant in each gpg run, so a subkey added a second later
            # would predate its primary key ("Time conflict").
            argv += ["--faked-system-time",
                     faked if faked.endswith("!") else faked + "!"]
        r = subprocess.run(argv + list(args), input=input,
                           capture_output=True)
        if check and r.returncode != 0:
            raise AssertionError(f"gpg {' '.join(args)}: "
                                 f"{r.stderr.decode(errors='replace')}")
        return r

    def fpr(self, uid):
        out = self.run("--list-keys", "--with-colons", uid).stdout.decode()
        return re.search(r"^fpr:+([0-9A-F]{40}):", out, re.M).group(1)

    def make_key(self, email, name="Test", enc=True, expire="never",
                 faked=None, algo="ed25519"):
        """A primary key (algo: ed25519, rsa2048, nistp256) with an
        encryption subkey (none when enc is False); both expire as expire
        says."""
        uid = f"{name} <{email}>"
        self.run("--quick-gen-key", uid, algo, "sign,cert", expire,
                 faked=faked)
        fpr = self.fpr(email)
        if enc:
            sub = {"ed25519": "cv25519"}.get(algo, algo)
            self.run("--quick-add-key", fpr, sub, "encr", expire,
                     faked=faked)
        return fpr

    def revoke(self, fpr):
        rev = os.path.join(self.path, "openpgp-revocs.d", fpr + ".rev")
        with open(rev) as f:
            text = f.read().replace(":-----BEGIN", "-----BEGIN")
        self.run("--import", input=text.encode())

    def export(self, email, secret=False, path=None):
        data = self.run("--armor", "--export-secret-keys" if secret
                        else "--export", email).stdout
        if path:
            with open(path, "wb") as f:
                f.write(data)
        return data

    def import_keys(self, data):
        self.run("--import", input=data)

    def encrypt(self, data, to, sign_as=None, armor=True, faked=None):
        args = ["--trust-model", "always", "--encrypt", "-r", to]
        if sign_as:
            args += ["--sign", "--local-user", sign_as, "--digest-algo",
                     "SHA256"]
        if armor:
            args.insert(0, "--armor")
        return self.run(*args, input=data, faked=faked).stdout

    def detach_sign(self, data, who, faked=None):
        return self.run("--armor", "--detach-sign", "--local-user", who,
                        "--digest-algo", "SHA256", input=data,
                        faked=faked).stdout

    def decrypt(self, data, check=True):
        return self.run("--decrypt", input=data, check=check)

    def verify_detached(self, sig, data):
        sp = os.path.join(self.path, "sig.asc")
        dp = os.path.join(self.path, "data.bin")
        with open(sp, "wb") as f:
            f.write(sig)
        with open(dp, "wb") as f:
            f.write(data)
        return self.run("--verify", sp, dp, check=False)


def pgp_mime_parts(data):
    """The two parts of a multipart/encrypted message: (version, armour)."""
    head, body = data.split(b"\r\n\r\n", 1)
    m = re.search(rb'boundary="([^"]+)"', head)
    assert m, head
    b = b"--" + m.group(1)
    parts = body.split(b)
    return parts[1], parts[2]


def _headers(frm, to, subject, extra=()):
    h = [f"From: {frm}", f"To: {to}", f"Subject: {subject}",
         "Message-ID: <%s@peer.example>" % os.urandom(6).hex(),
         "MIME-Version: 1.0"] + list(extra)
    return "\r\n".join(h).encode() + b"\r\n"


def pgp_mime_encrypted(frm, to, armour, subject="secret", extra=()):
    """A PGP/MIME multipart/encrypted message around armour."""
    return (_headers(frm, to, subject, extra) +
            b'Content-Type: multipart/encrypted; '
            b'protocol="application/pgp-encrypted"; boundary="b1"\r\n\r\n'
            b"--b1\r\nContent-Type: application/pgp-encrypted\r\n\r\n"
            b"Version: 1\r\n\r\n--b1\r\n"
            b"Content-Type: application/octet-stream\r\n\r\n" +
            armour.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n") +
            b"\r\n--b1--\r\n")


def pgp_mime_signed(frm, to, entity, sig, subject="signed", extra=()):
    """A PGP/MIME multipart/signed message: entity (CRLF) and its
    armoured detached signature."""
    return (_headers(frm, to, subject, extra) +
            b'Content-Type: multipart/signed; micalg=pgp-sha256; '
            b'protocol="application/pgp-signature"; boundary="s1"\r\n\r\n'
            b"--s1\r\n" + entity + b"\r\n--s1\r\n"
            b"Content-Type: application/pgp-signature\r\n\r\n" +
            sig.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n") +
            b"\r\n--s1--\r\n")


def plain_message(frm, to, body, charset="utf-8", subject="inline",
                  extra=()):
    return (_headers(frm, to, subject, extra) +
            f"Content-Type: text/plain; charset={charset}\r\n"
            "Content-Transfer-Encoding: 8bit\r\n\r\n".encode() +
            body.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n"))
