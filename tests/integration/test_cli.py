"""postern-cli: properties at every level, domains, usage and error exits,
policy explain, and docs/properties.md against the built-in table."""

import os
import re
import stat
import subprocess

import pytest

from conftest import ROOT, bin_path, needs_root, unmet
from dbutil import db_url, sqlite_only


def run(conf, *args, env=None):
    e = dict(os.environ)
    e.setdefault("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=0")
    e.setdefault("UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=1")
    e.pop("POSTERN_CONF", None)
    if env:
        e.update(env)
    argv = [bin_path("postern-cli")]
    if conf is not None:
        argv += ["-c", conf]
    r = subprocess.run(argv + list(args), capture_output=True, text=True,
                       env=e)
    assert "AddressSanitizer" not in r.stderr, r.stderr
    assert "runtime error" not in r.stderr, r.stderr
    return r


def ok(conf, *args, **kw):
    r = run(conf, *args, **kw)
    assert r.returncode == 0, f"{args}: {r.returncode} {r.stderr}"
    return r


def write_conf(tmp_path, node, name):
    db = db_url(tmp_path, name)
    conf = tmp_path / f"{name}.conf"
    # Keys the CLI does not use must be tolerated.
    conf.write_text(f'''# test node
node = "{node}";
hostname = "{name}.test";
database = "{db}";
workers = 2;
smtp = {{ listen = [ "127.0.0.1:1" ]; max_message_size = 1048576; }};
''')
    return str(conf), str(db)


@pytest.fixture
def gw(tmp_path):
    return write_conf(tmp_path, "internal-gw", "gw")[0]


@pytest.fixture
def portal(tmp_path):
    return write_conf(tmp_path, "external-portal", "portal")[0]


def test_global_set_get_list_unset(gw):
    assert ok(gw, "property", "global", "get", "--name",
              "remote-portal-enabled").stdout == "false\n"
    ok(gw, "property", "global", "set", "--name", "remote-portal-enabled",
       "--value", "TRUE")
    r = ok(gw, "property", "global", "get", "--name",
           "remote-portal-enabled", "--explain")
    assert r.stdout == "true\n"
    assert "from global" in r.stderr
    ok(gw, "property", "global", "set", "--name", "subject-trigger",
       "--value", r"\[(secure|encrypt)\]")
    assert ok(gw, "property", "global", "list").stdout == (
        "remote-portal-enabled = true\n"
        "subject-trigger = \\[(secure|encrypt)\\]\n")
    ok(gw, "property", "global", "unset", "--name", "remote-portal-enabled")
    r = ok(gw, "property", "global", "get", "--name",
           "remote-portal-enabled", "--explain")
    assert r.stdout == "false\n" and "from default" in r.stderr
    assert ok(gw, "property", "global", "list").stdout == (
        "subject-trigger = \\[(secure|encrypt)\\]\n")


def test_levels_inherit(gw):
    ok(gw, "property", "global", "set", "--name", "encrypt-mode",
       "--value", "no-encryption")
    ok(gw, "property", "domain", "set", "--domain", "Example.NET", "--name",
       "encrypt-mode", "--value", "mandatory")
    ok(gw, "property", "user", "set", "--email", "Bob@example.net",
       "--name", "encrypt-mode", "--value", "allow")

    def get(level, *key):
        r = ok(gw, "property", level, "get", *key, "--name", "encrypt-mode",
               "--explain")
        return r.stdout.strip(), re.search(r"from (\w+)", r.stderr)[1]

    assert get("user", "--email", "bob@example.net") == ("allow", "user")
    assert get("user", "--email", "carol@example.net") == ("mandatory",
                                                          "domain")
    assert get("user", "--email", "dave@example.org") == ("no-encryption",
                                                         "global")
    assert get("domain", "--domain", "example.net") == ("mandatory",
                                                       "domain")
    assert get("global") == ("no-encryption", "global")
    assert ok(gw, "property", "domain", "list", "--domain",
              "example.net").stdout == "encrypt-mode = mandatory\n"
    assert ok(gw, "property", "user", "list", "--email",
              "BOB@example.net").stdout == "encrypt-mode = allow\n"

    ok(gw, "property", "user", "unset", "--email", "bob@example.net",
       "--name", "encrypt-mode")
    assert get("user", "--email", "bob@example.net") == ("mandatory",
                                                        "domain")
    ok(gw, "property", "domain", "unset", "--domain", "example.net",
       "--name", "encrypt-mode")
    assert get("user", "--email", "bob@example.net") == ("no-encryption",
                                                        "global")
    assert ok(gw, "property", "user", "list", "--email",
              "bob@example.net").stdout == ""


def test_domains(gw):
    ok(gw, "domain", "add", "--domain", "Example.NET")
    ok(gw, "domain", "add", "--domain", "relay-to-webmail.private")
    assert ok(gw, "domain", "list").stdout == (
        "example.net\nrelay-to-webmail.private\n")
    # A seed's commands may be run again: adding a known domain is a no-op.
    r = run(gw, "domain", "add", "--domain", "EXAMPLE.net")
    assert r.returncode == 0 and "already present" in r.stdout
    assert ok(gw, "domain", "list").stdout == (
        "example.net\nrelay-to-webmail.private\n")
    r = run(gw, "domain", "add", "--domain", "not a domain")
    assert r.returncode == 1 and "not a domain name" in r.stderr

    ok(gw, "property", "domain", "set", "--domain", "example.net", "--name",
       "locality", "--value", "internal")
    ok(gw, "domain", "remove", "--domain", "example.net")
    assert ok(gw, "domain", "list").stdout == "relay-to-webmail.private\n"
    # Its properties went with it.
    assert ok(gw, "property", "domain", "list", "--domain",
              "example.net").stdout == ""
    r = run(gw, "domain", "remove", "--domain", "example.net")
    assert r.returncode == 1 and "no such domain" in r.stderr


@pytest.mark.parametrize("args", [
    (),
    ("frobnicate",),
    ("property",),
    ("property", "global"),
    ("property", "galactic", "get", "--name", "quota"),
    ("property", "global", "frob", "--name", "quota"),
    ("property", "global", "get"),
    ("property", "global", "set", "--name", "sign-enabled"),
    ("property", "global", "get", "--name", "sign-enabled", "--value", "x"),
    ("property", "global", "get", "--name", "sign-enabled", "--bogus"),
    ("property", "global", "get", "--name"),
    ("property", "global", "get", "--name", "sign-enabled", "extra"),
    ("property", "global", "get", "--name", "sign-enabled", "--domain",
     "example.net"),
    ("property", "domain", "get", "--name", "sign-enabled"),
    ("property", "user", "set", "--name", "sign-enabled", "--value", "true"),
    ("property", "user", "list", "--email", "a@example.com", "--name", "x"),
    ("domain",),
    ("domain", "add"),
    ("domain", "list", "--domain", "example.net"),
    ("domain", "rename", "--domain", "example.net"),
    ("policy",),
    ("policy", "explain", "--from", "a@example.com"),
    ("policy", "explain", "--to", "b@example.net"),
    ("policy", "judge", "--from", "a@example.com", "--to", "b@example.net"),
])
def test_usage_errors_exit_2(gw, args):
    r = run(gw, *args)
    assert r.returncode == 2, (args, r.returncode, r.stderr)
    assert "usage: postern-cli" in r.stderr
    assert r.stdout == ""


def test_usage_error_before_config(tmp_path):
    # A usage error is reported even when the config is missing.
    r = run(str(tmp_path / "missing.conf"), "property", "global", "get")
    assert r.returncode == 2 and "--name is missing" in r.stderr


@pytest.mark.parametrize("args,msg", [
    (("property", "global", "get", "--name", "no-such-property"),
     'unknown property "no-such-property"'),
    (("property", "global", "set", "--name", "no-such-property", "--value",
      "1"), 'unknown property "no-such-property"'),
    (("property", "global", "set", "--name", "sign-enabled", "--value",
      "yes"), "not a boolean"),
    (("property", "global", "set", "--name", "encrypt-mode", "--value",
      "always"), "not one of no-encryption|allow|mandatory"),
    (("property", "global", "set", "--name", "subject-trigger", "--value",
      "(("), "bad regular expression"),
    (("property", "global", "set", "--name", "encrypt-header-trigger",
      "--value", "X-Secure"), "Name: value"),
    (("property", "user", "set", "--email", "bob@example.net", "--name",
      "remote-portal-enabled", "--value", "true"),
     "cannot be set at user level (allowed: global)"),
    (("property", "global", "set", "--name", "locality", "--value",
      "internal"), "cannot be set at global level"),
    (("property", "user", "set", "--email", "not-an-address", "--name",
      "sign-enabled", "--value", "true"), "not an email address"),
    (("property", "user", "get", "--email", "nobody", "--name",
      "sign-enabled"), "not an email address"),
    (("property", "global", "set", "--name", "quota", "--value", "1"),
     "property quota is not used on internal-gw"),
])
def test_errors_exit_1(gw, args, msg):
    r = run(gw, *args)
    assert r.returncode == 1, (args, r.returncode, r.stderr)
    assert msg in r.stderr
    assert r.stdout == ""
    assert ok(gw, "property", "global", "list").stdout == ""


def test_portal_node(portal):
    ok(portal, "property", "global", "set", "--name", "quota", "--value",
       "2048")
    ok(portal, "property", "domain", "set", "--domain",
       "relay-to-webmail.private", "--name", "revert-rewrite-recipient",
       "--value", "true")
    assert ok(portal, "property", "user", "get", "--email",
              "x@example.org", "--name", "quota").stdout == "2048\n"
    r = run(portal, "property", "global", "set", "--name", "password-min-length",
            "--value", "7")
    assert r.returncode == 1 and "out of range 8..128" in r.stderr
    r = run(portal, "property", "global", "set", "--name",
            "remote-portal-enabled", "--value", "true")
    assert r.returncode == 1 and "not used on external-portal" in r.stderr
    r = run(portal, "policy", "explain", "--from", "a@example.com", "--to",
            "b@example.net")
    assert r.returncode == 1 and "internal-gw" in r.stderr
    # an unknown verb is named as such, before any missing option
    for args in (("user", "bogus"), ("domain", "bogus"), ("property",
                 "global", "bogus"), ("mailbox", "bogus")):
        r = run(portal, *args)
        assert r.returncode == 2 and "unknown verb \"bogus\"" in r.stderr, \
            (args, r.stderr)


def test_config_from_env_and_errors(tmp_path, gw):
    ok(gw, "property", "global", "set", "--name", "sign-enabled", "--value",
       "true")
    r = ok(None, "property", "global", "get", "--name", "sign-enabled",
           env={"POSTERN_CONF": gw})
    assert r.stdout == "true\n"

    r = run(str(tmp_path / "missing.conf"), "domain", "list")
    assert r.returncode == 1 and "missing.conf" in r.stderr
    bad = tmp_path / "bad.conf"
    bad.write_text('node = "internal-gw";\ndatabase = ;\n')
    r = run(str(bad), "domain", "list")
    assert r.returncode == 1 and "bad.conf:2" in r.stderr
    bad.write_text('node = "dmz-thing";\ndatabase = "/tmp/x.db";\n')
    r = run(str(bad), "domain", "list")
    assert r.returncode == 1 and "dmz-thing" in r.stderr
    bad.write_text('node = "internal-gw";\n')
    r = run(str(bad), "domain", "list")
    assert r.returncode == 1 and "database: missing" in r.stderr


@sqlite_only("the mode of the database file")
def test_database_created_private(tmp_path):
    conf, db = write_conf(tmp_path, "internal-gw", "fresh")
    ok(conf, "domain", "list")
    assert stat.S_IMODE(os.stat(db).st_mode) == 0o600


def explain(gw, *args):
    r = ok(gw, "policy", "explain", *args)
    out = {}
    blocks = r.stdout.strip().split("\n\n")
    for b in blocks:
        fields = dict(l.split(": ", 1) for l in b.splitlines())
        if "recipient" in fields:
            out[fields["recipient"]] = fields
        else:
            out.update(fields)
    return out


def test_policy_explain(gw):
    for args in [
        ("global", "set", "--name", "remote-portal-enabled", "--value",
         "true"),
        ("global", "set", "--name", "webmail-enabled", "--value", "true"),
        ("domain", "set", "--domain", "example.net", "--name",
         "encrypt-mode", "--value", "mandatory"),
        ("domain", "set", "--domain", "example.com", "--name", "locality",
         "--value", "internal"),
        ("user", "set", "--email", "alice@example.com", "--name",
         "subject-trigger-enabled", "--value", "true"),
        ("user", "set", "--email", "carol@example.org", "--name",
         "webmail-enabled", "--value", "false"),
    ]:
        ok(gw, "property", *args)

    d = explain(gw, "--from", "alice@example.com", "--to", "bob@example.net",
                "--to", "dave@example.com", "--to", "erin@example.org")
    bob = d["bob@example.net"]
    assert bob["decision"] == "portal-webmail"
    assert bob["because"] == (
        "encrypt-mode=mandatory (domain example.net); no valid certificate"
        " for bob@example.net; pdf-encryption-enabled=false (default); "
        "webmail-enabled=true (global); "
        "remote-portal-enabled=true (global)")
    assert d["dave@example.com"]["decision"] == "pass"
    assert "locality=internal (domain example.com)" in \
        d["dave@example.com"]["because"]
    erin = d["erin@example.org"]
    assert erin["decision"] == "relay"
    assert "webmail-only-if-mandatory=true and encryption is not " \
        "mandatory" in erin["because"]

    # The sender's subject trigger; carol cannot use webmail: refused.
    d = explain(gw, "--from", "alice@example.com", "--to",
                "carol@example.org", "--subject", "[Encrypt] salary")
    assert d["subject"] == "salary"
    carol = d["carol@example.org"]
    assert carol["decision"] == "refuse"
    assert "subject-trigger-enabled=true (user alice@example.com)" in \
        carol["because"]
    assert "webmail-enabled=false (user carol@example.org)" in \
        carol["because"]
    assert "mandatory" in carol["reason"]

    # The header trigger.
    ok(gw, "property", "global", "set", "--name", "encrypt-header-trigger",
       "--value", "X-Secure: yes")
    d = explain(gw, "--from", "zed@example.com", "--to", "erin@example.org",
                "--header", "X-Secure: YES")
    assert d["erin@example.org"]["decision"] == "portal-webmail"
    assert "encrypt-header-trigger=X-Secure: yes (global)" in \
        d["erin@example.org"]["because"]

    r = run(gw, "policy", "explain", "--from", "alice@example.com", "--to",
            "not an address")
    assert r.returncode == 1 and "--to" in r.stderr
    r = run(gw, "policy", "explain", "--from", "alice@example.com", "--to",
            "b@example.net", "--header", "no colon")
    assert r.returncode == 1 and "Name: value" in r.stderr


def parse_doc_table():
    rows = {}
    with open(os.path.join(ROOT, "docs", "properties.md")) as f:
        for line in f:
            m = re.match(r"^\| `([a-z0-9-]+)` \|(.*)\|\s*$", line)
            if not m:
                continue
            cells = [c.strip().replace("\\|", "|") for c in
                     re.split(r"(?<!\\)\|", m[2])]
            rows[m[1]] = cells
    return rows


def test_docs_cover_every_property(gw):
    out = ok(None, "property", "defaults").stdout
    doc = parse_doc_table()
    builtin = [l.split("\t") for l in out.splitlines()]
    assert len(builtin) >= 28
    for name, typ, default, scopes, node, _ in builtin:
        assert name in doc, f"docs/properties.md misses {name}"
        dtype, ddefault, dscopes, dnode = doc[name][:4]
        assert dtype == typ, name
        assert ddefault == (f"`{default}`" if default else "(empty)"), name
        assert dscopes.replace(" ", "") == scopes, name
        assert dnode == node, name
    extra = set(doc) - {b[0] for b in builtin}
    assert not extra, f"docs/properties.md documents unknown {extra}"


@needs_root("a private mount namespace")
def test_default_config_is_the_installed_node(tmp_path):
    # In a private mount namespace with /etc overlaid, so the real /etc is
    # never touched: without -c and $POSTERN_CONF the CLI uses the one
    # node config the packages installed, and postern.conf when present.
    gwc, _ = write_conf(tmp_path, "internal-gw", "gw")
    pc, _ = write_conf(tmp_path, "external-portal", "portal")
    for d in ("upper", "work"):
        (tmp_path / d).mkdir()
    before = os.path.exists("/etc/postern/postern.conf")
    script = f'''set -e
mount -t overlay overlay -o lowerdir=/etc,upperdir={tmp_path}/upper,\
workdir={tmp_path}/work /etc
mkdir -p /etc/postern
cli={bin_path("postern-cli")}
$cli property global get --name sign-enabled 2>&1 || echo "rc=$?"
cp {gwc} /etc/postern/internal-gw.conf
$cli property global get --explain --name sign-enabled 2>&1
cp {pc} /etc/postern/external-portal.conf
$cli property global get --name sign-enabled 2>&1 || echo "rc=$?"
rm /etc/postern/internal-gw.conf
$cli property global get --name quota 2>&1
cp {gwc} /etc/postern/postern.conf
$cli property global get --name sign-enabled 2>&1
'''
    e = dict(os.environ)
    e.pop("POSTERN_CONF", None)
    e.setdefault("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=0")
    r = subprocess.run(["unshare", "-m", "--propagation", "private", "sh",
                        "-c", script], capture_output=True, text=True, env=e)
    if "overlay" in r.stderr and "mount" in r.stderr:
        unmet(f"no overlay mounts here: {r.stderr}")
    assert r.returncode == 0, r.stdout + r.stderr
    out = r.stdout.splitlines()
    # neither installed: the message names the file it looked for
    assert "/etc/postern/postern.conf" in out[0] and out[1] == "rc=1", out
    # only the gateway's config: it is used
    assert "default" in "".join(out[2:4]) and "false" in out[2:4], out
    # both installed: ambiguous, so postern.conf is asked for again
    assert "/etc/postern/postern.conf" in out[4] and out[5] == "rc=1", out
    # only the portal's: a portal-only property answers (the gateway's
    # config would refuse it)
    assert out[6].isdigit(), out
    # postern.conf wins when the admin wrote one
    assert out[7] == "false", out
    # the real /etc was not touched
    assert os.path.exists("/etc/postern/postern.conf") == before
