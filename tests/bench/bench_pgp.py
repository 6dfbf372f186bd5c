"""make bench, phase "pgp": PGP/MIME encryption of 20 KiB messages for one
recipient with an Ed25519/X25519 key against S/MIME encryption for one
recipient with an EC (P-256) certificate, both through internal-gw into
smtp-sink with smtp-source as the client, interleaved round after round.
The target: the OpenPGP rate is at least half the S/MIME one."""

import os
import subprocess
import time

from benchlib import Unavailable

KEYS = ["smime-ec10", "pgp10"]


def _x25519_key(work):
    """An Ed25519 primary key with an X25519 subkey for bob@example.org,
    made by gpg in a home of its own; returns the exported public key."""
    home = os.path.join(work, "gpg-bench")
    os.makedirs(home, mode=0o700, exist_ok=True)
    base = ["gpg", "--homedir", home, "--batch", "--pinentry-mode",
            "loopback", "--passphrase", ""]
    try:
        subprocess.run(base + ["--quick-gen-key", "Bob <bob@example.org>",
                               "ed25519", "sign,cert", "never"],
                       check=True, capture_output=True)
        out = subprocess.run(base + ["--list-keys", "--with-colons",
                                     "bob@example.org"], check=True,
                             capture_output=True, text=True).stdout
        fpr = [ln.split(":")[9] for ln in out.splitlines()
               if ln.startswith("fpr:")][0]
        subprocess.run(base + ["--quick-add-key", fpr, "cv25519", "encr",
                               "never"], check=True, capture_output=True)
        pub = os.path.join(work, "bob-x25519.asc")
        with open(pub, "wb") as f:
            f.write(subprocess.run(base + ["--armor", "--export",
                                           "bob@example.org"], check=True,
                                   capture_output=True).stdout)
    except (OSError, subprocess.CalledProcessError, IndexError) as e:
        raise Unavailable(f"gpg cannot make the X25519 key: {e}")
    return pub


def phase_pgp(a, work, F, B, Gateway, cli, say):
    """Fills F.runs["smime-ec10"] and F.runs["pgp10"] (msg/s)."""
    from gwutil import pki_dir
    pki = pki_dir()
    targets = {}
    try:
        pub = _x25519_key(work)
        sink = B.CountingSink(work, "sink-gw-smime-ec")
        gw = Gateway(a.build, work, "gw-smime-ec", sink.port, sink.port,
                     certs=[("--file", f"{pki}/bob.crt")])
        targets["smime-ec10"] = (sink, gw.port, "bob@example.net")
        sink = B.CountingSink(work, "sink-gw-pgp")
        gw = Gateway(a.build, work, "gw-pgp", sink.port, sink.port,
                     props=[("global", "set", "--name", "pgp-enabled",
                             "--value", "true")])
        cli(a.build, gw.conf, "key", "import", "--file", pub)
        targets["pgp10"] = (sink, gw.port, "bob@example.org")
    except Unavailable as e:
        F.fail(KEYS, str(e))
        return
    for rnd in range(a.rounds):
        say(f"OpenPGP round {rnd + 1}/{a.rounds}")
        order = KEYS if rnd % 2 == 0 else KEYS[::-1]
        for key in order:
            sink, port, rcpt = targets[key]
            r = F.attempt(key, lambda: B.relay_rate(sink, port, a.n, 10,
                                                    rcpt=rcpt))
            if r is not None:
                F.runs[key][-1] = r[0]


def report_row(F, fmt, ratio, rtxt):
    """The table row of this phase."""
    p, s = F.med("pgp10"), F.med("smime-ec10")
    return (f"| PGP/MIME encryption, X25519 recipient, 20 KiB, 10 sessions "
            f"| {fmt(p, ' msg/s')} | internal-gw S/MIME encryption, P-256 "
            f"recipient certificate {fmt(s, ' msg/s')} | "
            f"{rtxt(ratio(p, s), 'of S/MIME', '≥ 0.5')} |")
