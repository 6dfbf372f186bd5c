#!/usr/bin/python3
"""Ansible module: brings a Postern node's domains and policy properties to
the wanted values with postern-cli. Reads every level once, sets only what
differs (so a second run reports no change), honours --check and --diff."""

import os

from ansible.module_utils.basic import AnsibleModule

DOCUMENTATION = r"""
---
module: postern_properties
short_description: Set Postern domains and properties idempotently
description:
  - Runs C(postern-cli domain list) and C(property LEVEL list) once per
    level, then C(domain add) and C(property LEVEL set) for what differs.
options:
  cli:
    description: Path of postern-cli.
    type: str
    default: /usr/bin/postern-cli
  config:
    description: The node's configuration file (postern-cli -c).
    type: path
    required: true
  domains:
    description: Domains that must exist.
    type: list
    elements: str
    default: []
  properties:
    description:
      - Wanted values, each a dict with level (global, domain or user),
        domain (for level domain), email (for level user), name and value.
    type: list
    default: []
"""


def _text(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def _scope(p):
    level = p["level"]
    if level == "global":
        return ("global",)
    if level == "domain":
        return ("domain", "--domain", p["domain"])
    if level == "user":
        return ("user", "--email", p["email"])
    raise ValueError(f"unknown level {level}")


def main():
    m = AnsibleModule(
        argument_spec={
            "cli": {"type": "str", "default": "/usr/bin/postern-cli"},
            "config": {"type": "path", "required": True},
            "domains": {"type": "list", "elements": "str", "default": []},
            # elements are dicts; not declared so that linters do not
            # try to evaluate the templated list
            "properties": {"type": "list", "default": []},
        },
        supports_check_mode=True)
    base = [m.params["cli"], "-c", m.params["config"]]

    def cli(*args):
        rc, out, err = m.run_command(base + list(args))
        if rc != 0:
            m.fail_json(msg=f"postern-cli {' '.join(args)}: {err.strip()}",
                        rc=rc)
        return out

    changes = []
    if m.check_mode and not os.path.exists(m.params["config"]):
        # a first run in check mode: the node is not configured yet
        m.exit_json(changed=True, changes=["(new node) all of them"])
    have = {d.strip().lower() for d in cli("domain", "list").splitlines()}
    for d in m.params["domains"]:
        if d.lower() not in have:
            changes.append((f"domain {d}", ("domain", "add", "--domain", d)))
            have.add(d.lower())

    levels = {}
    for p in m.params["properties"]:
        if not isinstance(p, dict):
            m.fail_json(msg=f"bad property entry {p!r}: not a dict")
        try:
            scope = _scope(p)
        except (KeyError, ValueError) as e:
            m.fail_json(msg=f"bad property entry {p}: {e}")
        if scope not in levels:
            if scope[0] == "domain" and scope[2].lower() not in have:
                levels[scope] = {}      # added above; nothing set yet
            else:
                cur = {}
                for line in cli("property", *scope[:1], "list",
                                *scope[1:]).splitlines():
                    name, sep, value = line.partition(" = ")
                    if sep:
                        cur[name.strip()] = value
                levels[scope] = cur
        want = _text(p["value"])
        if levels[scope].get(p["name"]) != want:
            label = " ".join(scope) + f" {p['name']}"
            changes.append((f"{label} = {want}",
                            ("property", scope[0], "set", *scope[1:],
                             "--name", p["name"], "--value", want)))
            levels[scope][p["name"]] = want

    if not m.check_mode:
        for _, args in changes:
            cli(*args)
    diff = {"before": "", "after": "".join(c[0] + "\n" for c in changes)}
    m.exit_json(changed=bool(changes), changes=[c[0] for c in changes],
                diff=diff)


if __name__ == "__main__":
    main()
