"""The playbook and roles pass ansible-lint (production profile) offline,
and docs/deploy.md documents every role variable."""

import glob
import os
import re
import subprocess

ANSIBLE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                       "ansible")


def test_ansible_lint_passes():
    r = subprocess.run(["ansible-lint", "--offline", "--nocolor"],
                       cwd=ANSIBLE, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=300,
                       env=dict(os.environ, ANSIBLE_CONFIG=os.path.join(
                           ANSIBLE, "ansible.cfg")))
    out = r.stdout.decode("utf-8", "replace")
    assert r.returncode == 0, out
    assert "0 failure(s)" in out, out


def documented_names(text):
    """Variable names docs/deploy.md documents, including the short form
    `postern_x_a_port`, `_b_port` (the second shares the first's stem)."""
    names = set()
    for line in text.splitlines():
        full = re.findall(r"`(postern_\w+)`", line)
        names.update(full)
        for short in re.findall(r"`(_\w+)`", line):
            for n in full:
                names.add(n.rsplit("_", short.count("_"))[0] + short)
    return names


def test_every_role_variable_is_documented():
    with open(os.path.join(ANSIBLE, "..", "docs", "deploy.md")) as f:
        documented = documented_names(f.read())
    missing = []
    for path in glob.glob(os.path.join(ANSIBLE, "roles", "*", "defaults",
                                       "main.yml")):
        with open(path) as f:
            for name in re.findall(r"^(postern_\w+):", f.read(), re.M):
                if name not in documented:
                    missing.append(f"{os.path.relpath(path, ANSIBLE)}: "
                                   f"{name}")
    assert missing == []
