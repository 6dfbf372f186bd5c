"""End to end across real network boundaries.

Four network namespaces: LAN (192.0.2.0/24: the sending client, Postfix and
internal-gw), DMZ (198.51.100.0/24: Postfix and external-portal), Internet
(203.0.113.0/24: the recipient's mail server and headless Chromium) and a
router between them
whose nftables forward only LAN->DMZ:25, Internet->DMZ:443 and
DMZ->Internet:25. The Ansible playbook deploys both nodes, each into its
own root directory (ansible_connection=local with postern_root), and the
daemons run inside the namespaces by the units' ExecStart line. A message
sent in the LAN must be stored by the portal and its notification must
reach the Internet sink, where Chromium follows its sign-up link and reads
the message over HTTPS; the DMZ root must hold no private key but the
portal's TLS key.
"""

import base64
import hashlib
import importlib.util
import os
import re
import shutil
import subprocess
import tempfile
import email
import email.policy

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
BUILD = os.environ.get("POSTERN_BUILD", os.path.join(ROOT, "build"))
PY = "/usr/bin/python3"

_spec = importlib.util.spec_from_file_location(
    "postern_it_conftest", os.path.join(ROOT, "tests", "integration",
                                        "conftest.py"))
_it = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_it)
Daemon = _it.Daemon

LAN_GW, LAN_OTHER, LAN_RTR = "192.0.2.20", "192.0.2.99", "192.0.2.1"
DMZ_PORTAL, DMZ_RTR = "198.51.100.10", "198.51.100.1"
# The PostgreSQL scenario: two more portals on one database in the DMZ.
PG_PORTAL_A, PG_PORTAL_B, DMZ_PG = ("198.51.100.12", "198.51.100.11",
                                    "198.51.100.30")
INET_MX, INET_RTR = "203.0.113.10", "203.0.113.1"

# scripts/e2e.sh passes its own tag so it can clean up after a timeout.
TAG = os.environ.get("E2E_TAG", f"pe{os.getpid() % 100000}")
NS = {"lan": f"{TAG}l", "dmz": f"{TAG}d", "inet": f"{TAG}i",
      "rtr": f"{TAG}r"}

ROUTER_NFT = f"""
table inet e2e_router {{
	chain forward {{
		type filter hook forward priority filter; policy drop;
		ct state established,related accept
		iifname "{TAG}rl" ip daddr {DMZ_PORTAL} tcp dport 25 accept
		iifname "{TAG}ri" ip daddr {DMZ_PORTAL} tcp dport 443 accept
		iifname "{TAG}ri" ip daddr {{ {PG_PORTAL_A}, {PG_PORTAL_B} }} tcp dport 443 accept
		iifname "{TAG}rd" ip daddr 203.0.113.0/24 tcp dport 25 accept
		meta l4proto tcp reject with tcp reset
		reject
	}}
}}
"""


def run(argv, check=True, timeout=120, **kw):
    r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=timeout, **kw)
    out = r.stdout.decode("utf-8", "replace")
    if check and r.returncode != 0:
        raise AssertionError(f"{' '.join(argv)} exited {r.returncode}:\n{out}")
    return r.returncode, out


def swaks_final_reply(out):
    """The reply to the end of DATA in a swaks transcript, as (code, text):
    the last line of the first reply after the lone "." line. An earlier
    250 (to MAIL or RCPT) says nothing about the message."""
    lines = out.splitlines()
    for i, line in enumerate(lines):
        if not re.match(r"^ *[-~]> \.$", line):
            continue
        for r in lines[i + 1:]:
            m = re.match(r"^ *<(?:-|~|\*\*|~\*) +(\d{3})([ -])(.*)$", r)
            if m and m.group(2) == " ":
                return int(m.group(1)), m.group(3)
        break
    raise AssertionError("no reply to the end of DATA in:\n" + out)


def test_swaks_final_reply_parser():
    ok = (" -> MAIL FROM:<a@x>\n<-  250 2.1.0 Ok\n -> .\n"
          "<-  250-2.0.0 first\n<-  250 2.0.0 Ok: queued as 1\n"
          " -> QUIT\n<-  221 Bye\n")
    assert swaks_final_reply(ok) == (250, "2.0.0 Ok: queued as 1")
    refused = (" -> RCPT TO:<b@x>\n<-  250 2.1.5 Ok\n -> .\n"
               "<** 451 4.3.0 later\n -> QUIT\n<-  221 Bye\n")
    assert swaks_final_reply(refused)[0] == 451
    tls = " ~> .\n<~* 554 5.7.1 no\n ~> QUIT\n<~  221 Bye\n"
    assert swaks_final_reply(tls)[0] == 554
    with pytest.raises(AssertionError):
        swaks_final_reply(" -> RCPT TO:<b@x>\n<-  250 2.1.5 Ok\n")


def nsexec(ns, *argv):
    return ["ip", "netns", "exec", NS[ns], *argv]


def connect_from(ns, host, port, src=None):
    """Connects from inside a namespace; returns 'open', 'refused' or the
    error text."""
    code = (
        "import socket,sys\n"
        "s=socket.socket()\n"
        "s.settimeout(10)\n"
        f"src={src!r}\n"
        "if src: s.bind((src,0))\n"
        "try:\n"
        f"    s.connect(({host!r},{port}))\n"
        "    print('open')\n"
        "except ConnectionRefusedError:\n"
        "    print('refused')\n"
        "except OSError as e:\n"
        "    print('error', e)\n")
    _, out = run(nsexec(ns, PY, "-c", code), timeout=30)
    return out.strip()


def _teardown_netns():
    for name in NS.values():
        r = subprocess.run(["ip", "netns", "pids", name],
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        for pid in r.stdout.split():
            try:
                os.kill(int(pid), 9)
            except (ProcessLookupError, ValueError):
                pass
        subprocess.run(["ip", "netns", "del", name], stderr=subprocess.DEVNULL)


@pytest.fixture(scope="module")
def netns():
    _teardown_netns()
    try:
        for name in NS.values():
            run(["ip", "netns", "add", name])
            run(["ip", "-n", name, "link", "set", "lo", "up"])
        for side, host, rtr in (("l", LAN_GW, LAN_RTR),
                                ("d", DMZ_PORTAL, DMZ_RTR),
                                ("i", INET_MX, INET_RTR)):
            ns = {"l": "lan", "d": "dmz", "i": "inet"}[side]
            run(["ip", "link", "add", f"{TAG}r{side}", "netns", NS["rtr"],
                 "type", "veth", "peer", "name", "eth0", "netns", NS[ns]])
            run(["ip", "-n", NS["rtr"], "addr", "add", f"{rtr}/24", "dev",
                 f"{TAG}r{side}"])
            run(["ip", "-n", NS["rtr"], "link", "set", f"{TAG}r{side}", "up"])
            run(["ip", "-n", NS[ns], "addr", "add", f"{host}/24", "dev",
                 "eth0"])
            run(["ip", "-n", NS[ns], "link", "set", "eth0", "up"])
            run(["ip", "-n", NS[ns], "route", "add", "default", "via", rtr])
        # The PostgreSQL scenario's portals and database server.
        for a in (PG_PORTAL_A, PG_PORTAL_B, DMZ_PG):
            run(["ip", "-n", NS["dmz"], "addr", "add", f"{a}/24", "dev",
                 "eth0"])
        # A second LAN host that is not the gateway.
        run(["ip", "-n", NS["lan"], "addr", "add", f"{LAN_OTHER}/24", "dev",
             "eth0"])
        run(nsexec("rtr", "sysctl", "-qw", "net.ipv4.ip_forward=1"))
        run(nsexec("rtr", "nft", "-f", "-"), input=ROUTER_NFT.encode())
        yield NS
    finally:
        _teardown_netns()


def _inventory(work):
    lan, dmz = os.path.join(work, "lan"), os.path.join(work, "dmz")
    common = {
        "ansible_connection": "local",
        "ansible_python_interpreter": PY,
        "postern_package_source": "none",
        "postern_sbin_dir": BUILD,
        "postern_cli": os.path.join(BUILD, "postern-cli"),
        "postern_manage_services": False,
        "postern_user": "",
        "postern_keyd_user": "",
        "postern_postfix_maillog_file": "/dev/stdout",
        "postern_webmail_tunnel": TUNNEL,
    }
    inv = {"all": {"vars": common, "children": {
        "internal_gateways": {"hosts": {"gw.lan.test": {
            "postern_root": lan,
            "postern_gateway_address": LAN_GW,
            "postern_gateway_mynetworks": ["192.0.2.0/24"],
            "postern_gateway_internal_domains": ["example.com"],
        }}},
        "portals": {"hosts": {"portal.dmz.test": {
            "postern_root": dmz,
            "postern_portal_address": DMZ_PORTAL,
            "postern_portal_base_url": "https://portal.dmz.test",
            "postern_portal_web_enabled": WEB,
            "postern_portal_web_listen": f"{DMZ_PORTAL}:443",
            "postern_portal_relayhost": f"[{INET_MX}]:25",
            "postern_portal_nftables_apply": False,
            "postern_portal_require_tunnel": TUNNEL,
        }}},
    }}}
    import json
    path = os.path.join(work, "inventory.json")
    with open(path, "w") as f:
        json.dump(inv, f, indent=1)
    return path


# Add-on mode (the S/MIME tunnel through both Postfixes, the portal
# requiring it) unless POSTERN_E2E_TUNNEL=0 (split mode with triggers).
TUNNEL = os.environ.get("POSTERN_E2E_TUNNEL", "1") == "1"
# The portal's web part; POSTERN_E2E_WEB=0 leaves it out.
WEB = os.environ.get("POSTERN_E2E_WEB", "1") == "1"


def playbook(inventory, *extra, hosts=("gw.lan.test", "portal.dmz.test"),
             ns=None):
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible",
                                                       "ansible.cfg"),
               ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0",
               ANSIBLE_PIPELINING="1",
               ANSIBLE_LOCAL_TEMP=os.path.join(os.path.dirname(inventory),
                                               "ansible-tmp"))
    argv = ["ansible-playbook", "-i", inventory, *extra,
            os.path.join(ROOT, "ansible", "site.yml")]
    rc, out = run(nsexec(ns, *argv) if ns else argv,
                  check=False, timeout=300, env=env,
                  cwd=os.path.join(ROOT, "ansible"))
    assert rc == 0, out
    recap = dict(re.findall(r"^(\S+)\s*:\s*ok=\d+\s+changed=(\d+)", out,
                            re.M))
    assert set(recap) == set(hosts), out
    return {h: int(c) for h, c in recap.items()}, out


@pytest.fixture(scope="module")
def deployed(netns):
    work = tempfile.mkdtemp(prefix=f"postern-e2e-{TAG}-")
    os.chmod(work, 0o755)
    inv = _inventory(work)
    first, out1 = playbook(inv)
    second, out2 = playbook(inv)
    check, out3 = playbook(inv, "--check", "--diff")
    yield {"work": work, "first": first, "second": second, "check": check,
           "outputs": (out1, out2, out3)}
    if os.environ.get("POSTERN_E2E_KEEP") != "1":
        shutil.rmtree(work, ignore_errors=True)


@pytest.fixture(scope="module")
def services(deployed):
    work = deployed["work"]
    lan, dmz = os.path.join(work, "lan"), os.path.join(work, "dmz")
    procs = []
    try:
        # The DMZ host's own firewall, as the playbook wrote it.
        run(nsexec("dmz", "nft", "-f",
                   os.path.join(dmz, "etc/nftables.d/postern-portal.nft")))
        sink = Daemon(nsexec("inet", PY, os.path.join(HERE, "sink.py"),
                             INET_MX, "25", os.path.join(work, "inet")))
        procs.append(sink)
        portal = Daemon(nsexec("dmz", os.path.join(BUILD, "external-portal"),
                               "-c", f"{dmz}/etc/postern/external-portal.conf"))
        procs.append(portal)
        dmz_mta = Daemon(nsexec("dmz", "postfix", "-c", f"{dmz}/etc/postfix",
                                "start-fg"), ready=r"daemon started")
        procs.append(dmz_mta)
        gw = Daemon(nsexec("lan", os.path.join(BUILD, "internal-gw"),
                           "-c", f"{lan}/etc/postern/internal-gw.conf"))
        procs.append(gw)
        lan_mta = Daemon(nsexec("lan", "postfix", "-c", f"{lan}/etc/postfix",
                                "start-fg"), ready=r"daemon started")
        procs.append(lan_mta)
        yield {"sink": sink, "portal": portal, "dmz_mta": dmz_mta, "gw": gw,
               "lan_mta": lan_mta, "lan": lan, "dmz": dmz, "work": work}
    finally:
        for conf in (f"{lan}/etc/postfix", f"{dmz}/etc/postfix"):
            subprocess.run(["postfix", "-c", conf, "stop"],
                           stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, timeout=60)
        # Every daemon is stopped; then a sanitizer report of any of them
        # fails the run (it is not only printed).
        errors = []
        for p in reversed(procs):
            try:
                p.stop()
            except (AssertionError, pytest.fail.Exception) as e:
                errors.append(str(e))
        if errors:
            pytest.fail("\n".join(errors), pytrace=False)


def test_playbook_second_run_changes_nothing(deployed):
    assert all(c > 0 for c in deployed["first"].values()), deployed["first"]
    assert deployed["second"] == {"gw.lan.test": 0, "portal.dmz.test": 0}, \
        deployed["outputs"][1]
    assert deployed["check"] == {"gw.lan.test": 0, "portal.dmz.test": 0}, \
        deployed["outputs"][2]


@pytest.fixture(scope="module")
def delivered(services):
    """Sends the message in the LAN and follows it to the Internet sink."""
    body = "Quarterly figures for Bob, e2e marker 7f3a91"
    _, out = run(nsexec("lan", "swaks", "--server", f"{LAN_GW}:25",
                        "--from", "alice@example.com",
                        "--to", "bob@example.org",
                        "--header", "Subject: [encrypt] Q3 figures",
                        "--header", "X-Keep-CipherMail-To-Webmail: True",
                        "--body", body), timeout=60)
    assert swaks_final_reply(out)[0] == 250, out
    # internal-gw chose the portal and its copy crossed to the DMZ over TLS
    services["gw"].wait_for(r"to=<bob@example\.org>.*decision=portal-webmail"
                            r".*status=250", 60)
    # (the gateway keeps its connection to the DMZ Postfix open for the
    # next message, so Postfix logs its TLS only at the disconnect; the
    # DMZ Postfix relays for nobody without the pinned client certificate,
    # test_portal_postfix_relays_only_for_the_pinned_certificate)
    services["dmz_mta"].wait_for(r": client=\S+\[192\.0\.2\.20\]", 60)
    # the portal stored it for the original recipient
    if TUNNEL:
        # through the tunnel: Postfix on both nodes saw only the tunnel
        # envelope, the DMZ queue only ciphertext
        services["dmz_mta"].wait_for(
            r"to=<webmail@relay-to-webmail\.private>, "
            r"relay=127\.0\.0\.1\[127\.0\.0\.1\]:\d+, .*status=sent", 60)
        services["portal"].wait_for(
            r"tunnel to=<bob@example\.org> owner=bob@example\.org "
            r"route=webmail stored", 60)
    else:
        services["portal"].wait_for(
            r"to=<bob=example\.org@relay-to-webmail\.private> "
            r"owner=bob@example\.org route=webmail .* stored", 60)
    store = os.path.join(services["dmz"], "var/lib/postern/messages")
    found = []
    for d, _, files in os.walk(store):
        for f in files:
            with open(os.path.join(d, f), "rb") as fh:
                data = fh.read()
            if b"7f3a91" in data:
                found.append(data)
    assert found, "message body not in the portal store"
    # the notification crossed DMZ -> Internet
    m = services["sink"].wait_for(
        r"sink: message from=<[^>]*> to=<bob@example\.org> "
        r"peer=198\.51\.100\.10 file=(\S+)", 90)
    with open(m.group(1), "rb") as fh:
        note = fh.read()
    return {"stored": found[0], "notification": note, "marker": "7f3a91"}


def test_message_from_lan_reaches_portal_and_notification_internet(
        delivered):
    # the portal removed the trigger before storing
    assert b"X-Keep-CipherMail-To-Webmail" not in delivered["stored"]
    assert b"https://portal.dmz.test/signup" in delivered["notification"]


@pytest.mark.skipif(not TUNNEL, reason="split mode: triggers are trusted")
def test_forged_trigger_without_tunnel_is_refused(services, delivered):
    # Even with the gateway's address and its pinned client certificate,
    # a message that did not come through the tunnel never gets stored:
    # the portal requires it.
    tls = os.path.join(services["lan"], "etc/postern/tls")
    rc, out = run(nsexec("lan", "swaks", "--server", f"{DMZ_PORTAL}:25",
                         "--tls", "--local-interface", LAN_GW,
                         "--tls-cert", f"{tls}/gateway-client.crt",
                         "--tls-key", f"{tls}/gateway-client.key",
                         "--from", "mallory@example.com",
                         "--to", "eve=example.org@relay-to-webmail.private",
                         "--header", "Subject: forged",
                         "--header", "X-Keep-CipherMail-To-Webmail: True",
                         "--body", "forged trigger 91c0"),
                  check=False, timeout=60)
    assert swaks_final_reply(out)[0] == 250, out   # the DMZ Postfix took it...
    services["dmz_mta"].wait_for(
        r"to=<eve=example\.org@relay-to-webmail\.private>, "
        r"relay=127\.0\.0\.1\[127\.0\.0\.1\]:10024, .*status=bounced", 60)
    store = os.path.join(services["dmz"], "var/lib/postern/messages")
    for d, _, files in os.walk(store):
        for f in files:
            with open(os.path.join(d, f), "rb") as fh:
                assert b"91c0" not in fh.read()


def test_internet_cannot_reach_portal_smtp(services):
    assert connect_from("inet", DMZ_PORTAL, 25) == "refused"


def test_only_the_gateway_reaches_portal_smtp(services):
    # the router lets LAN->DMZ:25 through; the DMZ host's own rules
    # (written by the playbook) refuse every LAN host but the gateway
    assert connect_from("lan", DMZ_PORTAL, 25, src=LAN_OTHER) == "refused"
    assert connect_from("lan", DMZ_PORTAL, 25, src=LAN_GW) == "open"


def test_portal_postfix_relays_only_for_the_pinned_certificate(services):
    # from the gateway's own address, over TLS, but without its client
    # certificate: the DMZ Postfix refuses to relay
    rc, out = run(nsexec("lan", "swaks", "--server", f"{DMZ_PORTAL}:25",
                         "--tls", "--from", "mallory@example.com",
                         "--to", "bob=example.org@relay-to-webmail.private",
                         "--local-interface", LAN_GW, "--quit-after", "RCPT"),
                  check=False, timeout=60)
    assert re.search(r"<~\* 554 5\.7\.1 .*(Relay access|Access) denied", out), out


def test_lan_cannot_reach_internet_directly(services):
    assert connect_from("lan", INET_MX, 25) == "refused"


@pytest.mark.skipif(not WEB, reason="portal web part left out "
                    "(POSTERN_E2E_WEB=0)")
def test_internet_reaches_portal_https(services):
    assert connect_from("inet", DMZ_PORTAL, 443) == "open"
    # ...but the LAN does not (the router forwards only :25 into the DMZ)
    assert connect_from("lan", DMZ_PORTAL, 443) == "refused"


BROWSER_DIR = _it.BROWSER_DIR


@pytest.mark.skipif(not WEB, reason="portal web part left out "
                    "(POSTERN_E2E_WEB=0)")
def test_recipient_signs_up_and_reads_in_chromium(services, delivered):
    _it.require_browser()
    note = email.message_from_bytes(delivered["notification"],
                                    policy=email.policy.default)
    text = note.get_body(preferencelist=("plain",)).get_content()
    url = re.search(r"https://portal\.dmz\.test/signup\?token=[0-9a-f]+",
                    text)
    assert url, text
    # Chromium trusts exactly the portal's key, as deployed by the playbook.
    crt = os.path.join(services["dmz"], "etc/postern/tls/portal.crt")
    pub = subprocess.run(["openssl", "x509", "-pubkey", "-noout", "-in", crt],
                         check=True, capture_output=True).stdout
    der = subprocess.run(["openssl", "pkey", "-pubin", "-outform", "DER"],
                         input=pub, check=True, capture_output=True).stdout
    spki = base64.b64encode(hashlib.sha256(der).digest()).decode()
    shots = os.path.join(BUILD, "browser-shots")
    os.makedirs(shots, exist_ok=True)
    env = dict(os.environ, SIGNUP=url.group(0), PORTAL_IP=DMZ_PORTAL,
               SPKI=spki, PASSWORD="correct horse battery e2e 42",
               SUBJECT="Q3 figures", MARKER=delivered["marker"], SHOTS=shots)
    rc, out = run(nsexec("inet", "node",
                         os.path.join(BROWSER_DIR, "e2e-read.mjs")),
                  check=False, timeout=180, env=env, cwd=BROWSER_DIR)
    assert rc == 0 and "read the message" in out, out
    services["portal"].wait_for(
        r"web: bob@example\.org chose a password", 30)


@pytest.mark.skipif(not WEB, reason="portal web part left out "
                    "(POSTERN_E2E_WEB=0)")
def test_portal_certificate_verifies_from_internet(services):
    # The name in the base URL matches the certificate the playbook made.
    ca = os.path.join(services["dmz"], "etc/postern/tls/portal.crt")
    code = (
        "import socket,ssl\n"
        f"ctx=ssl.create_default_context(cafile={ca!r})\n"
        f"s=socket.create_connection(({DMZ_PORTAL!r},443),timeout=10)\n"
        "t=ctx.wrap_socket(s,server_hostname='portal.dmz.test')\n"
        "print('verified', t.version())\n")
    _, out = run(nsexec("inet", PY, "-c", code), timeout=30)
    assert re.match(r"verified TLSv1\.[23]", out), out


def test_no_private_key_in_dmz_but_tls_key(services):
    dmz = services["dmz"]
    allowed = {os.path.join(dmz, "etc/postern/tls/portal.key")}
    if TUNNEL:
        # the tunnel decryption key, which cannot sign
        allowed.add(os.path.join(dmz, "etc/postern/tls/portal-tunnel.key"))
    keys = []
    for d, _, files in os.walk(dmz):
        for f in files:
            p = os.path.join(d, f)
            if not os.path.isfile(p) or os.path.islink(p):
                continue
            with open(p, "rb") as fh:
                data = fh.read()
            if re.search(rb"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----", data) \
                    or f.endswith((".p12", ".pfx")):
                keys.append(p)
    assert set(keys) == allowed, keys
    # ...while the LAN root does hold the gateway's keys
    lan_keys = os.listdir(os.path.join(services["lan"], "etc/postern/tls"))
    assert "gateway-client.key" in lan_keys


# --- PostgreSQL in the DMZ, two portals on it --------------------------------
#
# A PostgreSQL 15 server (initdb in the work directory) listens on
# DMZ_PG in the DMZ namespace; the playbook deploys two more portal roots
# with postern_database_url pointing at it (web on PG_PORTAL_A and
# PG_PORTAL_B, one certificate for the portal's name on both). A message
# delivered to portal A is read in Chromium through portal B with the
# session cookie portal A gave at sign-up. Their notifications leave
# through the DMZ Postfix of the scenario above. POSTERN_E2E_PG=0 leaves
# this out.

PG = os.environ.get("POSTERN_E2E_PG", "1") == "1"
PG_BIN = "/usr/lib/postgresql/15/bin"
PG_PASSWORD = "e2e: portal db secret"      # ':' must survive the passfile
PG_URL = f"postgresql://postern@{DMZ_PG}:5432/postern?sslmode=disable"
PG_HOSTS = {"pa.dmz.test": (PG_PORTAL_A, 10034),
            "pb.dmz.test": (PG_PORTAL_B, 10035)}


@pytest.fixture(scope="module")
def dmz_postgres(services):
    d = os.path.join(services["work"], "pg")
    os.makedirs(d)
    shutil.chown(d, "postgres", "postgres")
    data = os.path.join(d, "data")
    run(["runuser", "-u", "postgres", "--", f"{PG_BIN}/initdb", "-D", data,
         "-U", "postgres", "--auth-local=peer", "--auth-host=scram-sha-256",
         "--encoding=UTF8", "--locale=C.UTF-8"])
    with open(os.path.join(data, "pg_hba.conf"), "w") as f:
        f.write("local all postgres peer\n"
                "host postern postern 198.51.100.0/24 scram-sha-256\n")
    db = Daemon(nsexec("dmz", "runuser", "-u", "postgres", "--",
                       f"{PG_BIN}/postgres", "-D", data,
                       "-c", f"listen_addresses={DMZ_PG}",
                       "-c", f"unix_socket_directories={d}"),
                ready=r"ready to accept connections")
    try:
        psql = nsexec("dmz", "runuser", "-u", "postgres", "--", "psql",
                      "-XAtq", "-v", "ON_ERROR_STOP=1", "-h", d,
                      "-d", "postgres", "-c")
        run(psql + [f"CREATE ROLE postern LOGIN PASSWORD '{PG_PASSWORD}'"])
        run(psql + ["CREATE DATABASE postern OWNER postern"])
        yield {"dir": d, "daemon": db}
    finally:
        db.stop()


@pytest.fixture(scope="module")
def pg_portals(dmz_postgres, services):
    work = services["work"]
    tls = os.path.join(work, "pg-tls")
    os.makedirs(tls)
    sans = ",".join(["DNS:portal.dmz.test"]
                    + [f"IP:{a}" for a, _ in PG_HOSTS.values()])
    run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
         "ec_paramgen_curve:P-256", "-nodes", "-days", "2",
         "-subj", "/CN=portal.dmz.test", "-addext", f"subjectAltName={sans}",
         "-keyout", f"{tls}/portal.key", "-out", f"{tls}/portal.crt"])
    common = {
        "ansible_connection": "local",
        "ansible_python_interpreter": PY,
        "postern_package_source": "none",
        "postern_sbin_dir": BUILD,
        "postern_cli": os.path.join(BUILD, "postern-cli"),
        "postern_manage_services": False,
        "postern_user": "",
        "postern_keyd_user": "",
        "postern_webmail_tunnel": False,
        "postern_database_url": PG_URL,
        "postern_database_password": PG_PASSWORD,
        "postern_portal_base_url": "https://portal.dmz.test",
        "postern_portal_tls_cert": f"{tls}/portal.crt",
        "postern_portal_tls_key": f"{tls}/portal.key",
        "postern_portal_gateway_hosts": [],
        "postern_portal_pin_gateway_cert": False,
        "postern_portal_manage_postfix": False,
        "postern_portal_nftables": False,
    }
    roots = {h: os.path.join(work, h.split(".")[0]) for h in PG_HOSTS}
    inv = {"all": {"vars": common, "children": {"portals": {"hosts": {
        h: {"postern_root": roots[h],
            "postern_portal_address": a,
            "postern_portal_web_listen": f"{a}:443",
            "postern_portal_lmtp_port": port}
        for h, (a, port) in PG_HOSTS.items()}}}}}
    import json
    path = os.path.join(work, "inventory-pg.json")
    with open(path, "w") as f:
        json.dump(inv, f, indent=1)
    # in the DMZ: postern-cli (properties) reaches the database there
    first, out = playbook(path, hosts=PG_HOSTS, ns="dmz")
    assert all(c > 0 for c in first.values()), out
    procs = {}
    try:
        for h in PG_HOSTS:
            procs[h] = Daemon(nsexec(
                "dmz", os.path.join(BUILD, "external-portal"), "-c",
                f"{roots[h]}/etc/postern/external-portal.conf"))
        yield {"roots": roots, "portals": procs, "tls": tls}
    finally:
        errors = []
        for p in procs.values():
            try:
                p.stop()
            except (AssertionError, pytest.fail.Exception) as e:
                errors.append(str(e))
        if errors:
            pytest.fail("\n".join(errors), pytrace=False)


@pytest.mark.skipif(not PG or not WEB, reason="PostgreSQL scenario left out "
                    "(POSTERN_E2E_PG=0 or POSTERN_E2E_WEB=0)")
def test_two_portals_on_postgresql_share_mail_and_session(services,
                                                          pg_portals):
    _it.require_browser()
    roots = pg_portals["roots"]
    # The configuration names the database by URL and the password file;
    # the password is in that file (0600) only, and there is no SQLite file.
    ra = roots["pa.dmz.test"]
    with open(f"{ra}/etc/postern/external-portal.conf") as f:
        conf = f.read()
    assert (f'database = "{PG_URL}&passfile={ra}/etc/postern/pgpass";'
            in conf), conf
    assert PG_PASSWORD not in conf
    assert os.stat(f"{ra}/etc/postern/pgpass").st_mode & 0o077 == 0
    assert not os.path.exists(f"{ra}/var/lib/postern/portal.db")

    # Portal A stores a message (LMTP, as its Postfix would hand it over).
    marker = "2b8e44"
    _, out = run(nsexec("dmz", "swaks", "--protocol", "LMTP",
                        "--server", f"127.0.0.1:{PG_HOSTS['pa.dmz.test'][1]}",
                        "--from", "alice@example.com",
                        "--to", "carol=example.org@relay-to-webmail.private",
                        "--header", "Subject: HA figures",
                        "--header", "X-Keep-CipherMail-To-Webmail: True",
                        "--body", f"Figures for Carol, e2e marker {marker}"),
                 timeout=60)
    assert swaks_final_reply(out)[0] == 250, out
    pa, pb = pg_portals["portals"].values()
    pa.wait_for(r"to=<carol=example\.org@relay-to-webmail\.private> "
                r"owner=carol@example\.org route=webmail .* stored", 60)
    m = services["sink"].wait_for(
        r"sink: message from=<[^>]*> to=<carol@example\.org> "
        r"peer=198\.51\.100\.10 file=(\S+)", 90)
    with open(m.group(1), "rb") as fh:
        note = email.message_from_bytes(fh.read(), policy=email.policy.default)
    text = note.get_body(preferencelist=("plain",)).get_content()
    url = re.search(r"https://portal\.dmz\.test/signup\?token=[0-9a-f]+",
                    text)
    assert url, text

    crt = os.path.join(pg_portals["tls"], "portal.crt")
    pub = subprocess.run(["openssl", "x509", "-pubkey", "-noout", "-in", crt],
                         check=True, capture_output=True).stdout
    der = subprocess.run(["openssl", "pkey", "-pubin", "-outform", "DER"],
                         input=pub, check=True, capture_output=True).stdout
    spki = base64.b64encode(hashlib.sha256(der).digest()).decode()
    shots = os.path.join(BUILD, "browser-shots")
    os.makedirs(shots, exist_ok=True)
    env = dict(os.environ, SIGNUP=url.group(0), PORTAL_A=PG_PORTAL_A,
               PORTAL_B=PG_PORTAL_B, SPKI=spki,
               PASSWORD="correct horse battery e2e 43",
               SUBJECT="HA figures", MARKER=marker, SHOTS=shots)
    rc, out = run(nsexec("inet", "node",
                         os.path.join(BROWSER_DIR, "e2e-two-portals.mjs")),
                  check=False, timeout=180, env=env, cwd=BROWSER_DIR)
    assert rc == 0 and "read the message on portal B" in out, out
    pa.wait_for(r"web: carol@example\.org chose a password", 30)
