"""The optional postern_postgresql role, run for real: a primary and a
streaming replica, each in its own network namespace (198.51.100.30 and
.31, joined by a veth pair) and its own mount namespace in which scratch
directories stand in for /etc/postgresql, /var/lib/postgresql,
/run/postgresql, /var/log/postgresql and /etc/postgresql-common, so the
machine's own PostgreSQL files are never touched. The playbook (site.yml,
group databases) runs once per host inside its namespaces; the clusters
are started by the role with pg_ctlcluster, as on a host without systemd.

Checked: the replica streams from the primary through its slot; a row
written by the Postern role over TLS with its password reaches the
replica; the replica refuses writes; a host that is not a client is
refused; a second run changes nothing. Needs root (run by scripts/e2e.sh
with the split scenario)."""

import json
import os
import re
import shutil
import subprocess
import tempfile
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
PY = "/usr/bin/python3"
TAG = os.environ.get("E2E_TAG", f"pe{os.getpid() % 100000}")
NS = {"db1": f"{TAG}p", "db2": f"{TAG}q"}
ADDR = {"db1": "198.51.100.30", "db2": "198.51.100.31"}
HIDDEN = ["/etc/postgresql", "/etc/postgresql-common", "/var/lib/postgresql",
          "/run/postgresql", "/var/log/postgresql"]
DB_PASSWORD = "pg e2e: db \\ secret"          # ':' and '\' on purpose
REPL_PASSWORD = "pg e2e repl secret"


def run(argv, check=True, timeout=120, **kw):
    r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=timeout, **kw)
    out = r.stdout.decode("utf-8", "replace")
    if check and r.returncode != 0:
        raise AssertionError(f"{' '.join(argv)} exited {r.returncode}:\n{out}")
    return r.returncode, out


def _netns_pids(name):
    r = subprocess.run(["ip", "netns", "pids", name], stdout=subprocess.PIPE,
                       stderr=subprocess.DEVNULL)
    return [int(p) for p in r.stdout.split()]


def _teardown():
    for name in NS.values():
        for pid in _netns_pids(name):
            try:
                os.kill(pid, 9)
            except ProcessLookupError:
                pass
        subprocess.run(["ip", "netns", "del", name], stderr=subprocess.DEVNULL)


def _scratch_root(work, host):
    """Directories that replace the PostgreSQL paths for one host."""
    base = os.path.join(work, host)
    binds = []
    for path in HIDDEN:
        d = os.path.join(base, path.strip("/").replace("/", "_"))
        if path == "/etc/postgresql-common":
            shutil.copytree(path, d, symlinks=True)
        else:
            os.makedirs(d)
        if path != "/etc/postgresql-common":
            shutil.chown(d, "postgres", "postgres")
        binds.append((d, path))
    return binds


def _mount_script(binds):
    return "; ".join(f"mount --bind {src} {dst}" for src, dst in binds)


@pytest.fixture(scope="module")
def pg_hosts():
    if os.geteuid() != 0:
        pytest.fail("needs root (network and mount namespaces)")
    for t in ("pg_ctlcluster", "pg_lsclusters", "unshare", "nsenter"):
        assert shutil.which(t), f"{t} missing; run make deps"
    _teardown()
    work = tempfile.mkdtemp(prefix=f"postern-e2e-{TAG}-pg-")
    os.chmod(work, 0o755)
    try:
        for name in NS.values():
            run(["ip", "netns", "add", name])
            run(["ip", "-n", name, "link", "set", "lo", "up"])
        run(["ip", "link", "add", "eth0", "netns", NS["db1"], "type", "veth",
             "peer", "name", "eth0", "netns", NS["db2"]])
        for h in NS:
            run(["ip", "-n", NS[h], "addr", "add", f"{ADDR[h]}/24", "dev",
                 "eth0"])
            run(["ip", "-n", NS[h], "link", "set", "eth0", "up"])
        # A TLS pair of our own (the key readable by postgres only).
        tls = os.path.join(work, "tls")
        os.makedirs(tls)
        run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
             "ec_paramgen_curve:P-256", "-nodes", "-days", "2",
             "-subj", "/CN=db.dmz.test", "-keyout", f"{tls}/db.key",
             "-out", f"{tls}/db.crt"])
        shutil.chown(f"{tls}/db.key", "postgres", "postgres")
        os.chmod(f"{tls}/db.key", 0o600)
        common = {
            "ansible_connection": "local",
            "ansible_python_interpreter": PY,
            "postern_postgresql_install": False,
            "postern_postgresql_ssl_cert_file": f"{tls}/db.crt",
            "postern_postgresql_ssl_key_file": f"{tls}/db.key",
            # the replica's address is a client: the test writes from there
            "postern_postgresql_clients": [ADDR["db2"]],
            "postern_postgresql_db_password": DB_PASSWORD,
            "postern_postgresql_replication_password": REPL_PASSWORD,
        }
        inv = {"all": {"children": {"databases": {"vars": common, "hosts": {
            h: {"postern_postgresql_address": ADDR[h]} for h in NS}}}}}
        inv_path = os.path.join(work, "inventory.json")
        with open(inv_path, "w") as f:
            json.dump(inv, f)
        hosts = {h: {"binds": _scratch_root(work, h)} for h in NS}
        yield {"work": work, "inventory": inv_path, "hosts": hosts}
    finally:
        _teardown()
        if os.environ.get("POSTERN_E2E_KEEP") != "1":
            shutil.rmtree(work, ignore_errors=True)


def _postmaster(host):
    """A process of the host's cluster, to enter its namespaces."""
    for pid in _netns_pids(NS[host]):
        try:
            with open(f"/proc/{pid}/comm") as f:
                if f.read().strip() == "postgres":
                    return pid
        except FileNotFoundError:
            continue
    return None


def in_host(host, binds, argv):
    """argv inside the host's namespaces: the running cluster's if there
    is one, else new ones with the scratch directories mounted."""
    pid = _postmaster(host)
    if pid:
        return ["nsenter", "-t", str(pid), "-m", "-n", "--", *argv]
    script = _mount_script(binds) + '; exec "$@"'
    return ["ip", "netns", "exec", NS[host], "unshare", "-m",
            "--propagation", "private", "sh", "-c", script, "sh", *argv]


def playbook(pg, host):
    work = pg["work"]
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible",
                                                       "ansible.cfg"),
               ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0",
               ANSIBLE_LOCAL_TEMP=os.path.join(work, "ansible-tmp"))
    rc, out = run(in_host(host, pg["hosts"][host]["binds"], [
        "ansible-playbook", "-i", pg["inventory"], "--limit", host,
        os.path.join(ROOT, "ansible", "site.yml")]),
        check=False, timeout=300, env=env, cwd=os.path.join(ROOT, "ansible"))
    assert rc == 0, out
    recap = {h: int(c) for h, c in re.findall(
        r"^(\S+)\s*:\s*ok=\d+\s+changed=(\d+)", out, re.M)}
    assert list(recap) == [host], out
    return recap[host], out


def psql(pg, host, sql, conn="dbname=postgres", user="postgres", env=None,
         check=True):
    argv = ["runuser", "-u", user, "--", "psql", "-XAtq", "-v",
            "ON_ERROR_STOP=1", "-d", conn, "-c", sql]
    return run(in_host(host, pg["hosts"][host]["binds"], argv), check=check,
               timeout=60, env=env)


def poll(what, fn, deadline=60):
    end = time.monotonic() + deadline
    while True:
        got = fn()
        if got:
            return got
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


@pytest.fixture(scope="module")
def deployed(pg_hosts):
    first = {h: playbook(pg_hosts, h) for h in NS}
    second = {h: playbook(pg_hosts, h) for h in NS}
    return {"pg": pg_hosts, "first": first, "second": second}


def test_first_run_builds_second_run_changes_nothing(deployed):
    assert all(c > 0 for c, _ in deployed["first"].values())
    for h, (changed, out) in deployed["second"].items():
        assert changed == 0, out


def test_replica_streams_from_the_primary(deployed):
    pg = deployed["pg"]
    row = poll("the replica streaming", lambda: psql(
        pg, "db1", "SELECT application_name, state FROM pg_stat_replication"
    )[1].strip())
    assert row == "db2|streaming", row
    _, slots = psql(pg, "db1", "SELECT slot_name, active FROM "
                    "pg_replication_slots")
    assert slots.strip() == "db2|t"
    _, rec = psql(pg, "db2", "SELECT pg_is_in_recovery()")
    assert rec.strip() == "t"
    # the replica's connection holds no password: it is in its .pgpass
    _, conninfo = psql(pg, "db2", "SHOW primary_conninfo")
    assert "password" not in conninfo and "198.51.100.30" in conninfo


def test_postern_role_writes_over_tls_and_the_replica_has_it(deployed):
    pg = deployed["pg"]
    passfile = os.path.join(pg["work"], "postern.pgpass")
    with open(passfile, "w") as f:
        f.write("*:*:*:*:" + DB_PASSWORD.replace("\\", "\\\\")
                .replace(":", "\\:") + "\n")
    os.chmod(passfile, 0o600)
    conn = (f"host={ADDR['db1']} dbname=postern user=postern "
            f"sslmode=require passfile={passfile}")
    _, out = psql(pg, "db2", "CREATE TABLE e2e (v text); "
                  "INSERT INTO e2e VALUES ('replicated 5c1e'); "
                  "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
                  conn=conn, user="root")
    assert out.strip() == "t", out
    got = poll("the row on the replica", lambda: psql(
        pg, "db2", "SELECT v FROM e2e", conn="dbname=postern",
        check=False)[1].strip() == "replicated 5c1e")
    assert got
    rc, out = psql(pg, "db2", "INSERT INTO e2e VALUES ('x')",
                   conn="dbname=postern", check=False)
    assert rc != 0 and "read-only transaction" in out, out
    # the primary itself is no client: pg_hba refuses it
    rc, out = psql(pg, "db1", "SELECT 1", conn=conn, user="root",
                   check=False)
    assert rc != 0 and "no pg_hba.conf entry" in out, out
