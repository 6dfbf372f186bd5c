"""The playbook and roles pass ansible-lint (production profile) offline."""

import os
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
