"""Versioned schema: the nodes create and migrate their tables at start,
record each component's version in postern_schema, and refuse to run on
a database whose version is newer than they know. Runs on the back end
of the run (SQLite or PostgreSQL, POSTERN_TEST_DB)."""

import subprocess

from conftest import bin_path, check_sanitizer
from dbutil import db_connect, db_url


def _conf(tmp_path, node):
    db = db_url(tmp_path, node)
    conf = tmp_path / f"{node}.conf"
    if node == "internal-gw":
        conf.write_text(f'''node = "{node}";
hostname = "{node}.test";
database = "{db}";
workers = 1;
smtp = {{ listen = [ "127.0.0.1:1" ]; }};
''')
        return str(conf), db
    conf.write_text(f'''node = "external-portal";
hostname = "portal.test";
database = "{db}";
store_dir = "{tmp_path}/messages";
spool_dir = "{tmp_path}";
workers = 1;
smtp = {{
  listeners = ( {{ listen = "127.0.0.1:1"; protocol = "smtp"; }} );
  mynetworks = [ "127.0.0.1/32" ];
}};
notify = {{
  relay_host = "127.0.0.1";
  relay_port = 1;
  relay_tls = "none";
  sender = "no-reply@portal.test";
  base_url = "https://portal.test";
}};
''')
    return str(conf), db


def _cli(conf, *args):
    r = subprocess.run([bin_path("postern-cli"), "-c", conf, *args],
                       capture_output=True, text=True)
    check_sanitizer("postern-cli", r.stderr, r.returncode)
    return r


def _versions(db):
    with db_connect(db) as c:
        return dict(c.execute("SELECT component, version FROM "
                              "postern_schema").fetchall())


def test_portal_records_and_refuses_newer_schema(tmp_path):
    conf, db = _conf(tmp_path, "external-portal")
    r = _cli(conf, "mailbox", "list", "--email", "x@example.org")
    assert r.returncode in (0, 1), r.stderr
    v = _versions(db)
    assert v["props"] >= 1 and v["portal-store"] >= 2, v
    # A release newer than this build migrated the store further.
    with db_connect(db) as c:
        c.execute("UPDATE postern_schema SET version = ? WHERE component = "
                  "'portal-store'", (v["portal-store"] + 1,))
    r = _cli(conf, "mailbox", "list", "--email", "x@example.org")
    assert r.returncode != 0
    assert "refusing" in r.stderr and "portal-store" in r.stderr, r.stderr
    r = subprocess.run([bin_path("external-portal"), "-c", conf, "--check"],
                       capture_output=True, text=True)
    check_sanitizer("external-portal", r.stderr, r.returncode)
    assert r.returncode != 0
    assert "portal-store" in r.stderr + r.stdout
    # Nothing was changed by the refusing runs.
    assert _versions(db)["portal-store"] == v["portal-store"] + 1


def test_gateway_refuses_newer_property_schema(tmp_path):
    conf, db = _conf(tmp_path, "internal-gw")
    r = _cli(conf, "property", "global", "get", "--name", "encrypt-mode")
    assert r.returncode == 0, r.stderr
    v = _versions(db)
    with db_connect(db) as c:
        c.execute("UPDATE postern_schema SET version = ? WHERE component = "
                  "'props'", (v["props"] + 5,))
    r = _cli(conf, "property", "global", "get", "--name", "encrypt-mode")
    assert r.returncode != 0
    assert "refusing" in r.stderr, r.stderr
